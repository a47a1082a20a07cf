/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `imgmount umount MOUNTPOINT` and `imgmount stats MOUNTPOINT`.
 * Unmounting ends the daemon's session loop, so the daemon exits by itself.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "fs/commands.h"
#include "fs/control.h"

static bool is_help(int argc, char **argv)
{
	return argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0);
}

/* Unprivileged users unmount FUSE file systems through the setuid helper. */
static int run_fusermount(const char *mountpoint, bool lazy)
{
	pid_t pid;
	int status;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (lazy)
			execlp("fusermount3", "fusermount3", "-u", "-z", mountpoint, (char *)NULL);
		else
			execlp("fusermount3", "fusermount3", "-u", mountpoint, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int im_cmd_umount(int argc, char **argv)
{
	bool lazy = false;
	const char *mountpoint;
	int r;

	if (is_help(argc, argv)) {
		printf("usage: imgmount umount [-z] MOUNTPOINT\n\n"
		       "Unmount an imgmount mount; its daemon then exits.\n"
		       "  -z  detach now even if the mount is busy (lazy unmount)\n");
		return IM_EXIT_OK;
	}
	if (argc == 3 && strcmp(argv[1], "-z") == 0)
		lazy = true;
	else if (argc != 2) {
		fprintf(stderr, "usage: imgmount umount [-z] MOUNTPOINT\n");
		return IM_EXIT_USAGE;
	}
	mountpoint = argv[argc - 1];

	if (geteuid() == 0) {
		if (umount2(mountpoint, lazy ? MNT_DETACH : 0) == 0)
			return IM_EXIT_OK;
		r = -errno;
	} else {
		r = run_fusermount(mountpoint, lazy);
		if (r == 0)
			return IM_EXIT_OK;
	}

	if (r == -EINVAL)
		im_err("unmounting \"%s\" failed: it is not a mount point", mountpoint);
	else if (r == -EBUSY)
		im_err("unmounting \"%s\" failed: it is busy; close the files open there, "
		       "or use 'imgmount umount -z' to detach it now", mountpoint);
	else
		im_log_errno(r, "unmounting \"%s\" failed", mountpoint);
	return IM_EXIT_FAILURE;
}

int im_cmd_stats(int argc, char **argv)
{
	if (is_help(argc, argv)) {
		printf("usage: imgmount stats MOUNTPOINT\n\n"
		       "Print the counters of the daemon serving MOUNTPOINT as one JSON object.\n");
		return IM_EXIT_OK;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: imgmount stats MOUNTPOINT\n");
		return IM_EXIT_USAGE;
	}
	return im_control_print_stats(argv[1]) < 0 ? IM_EXIT_FAILURE : IM_EXIT_OK;
}
