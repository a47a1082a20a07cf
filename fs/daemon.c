/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE daemon's life cycle: create the libfuse session, mount, detach,
 * serve with the multithreaded loop, and unmount.
 *
 * Order matters. fuse_daemonize() forks, and a fork keeps only the calling
 * thread, so no thread may exist before it: the control socket thread and
 * the loop's workers start after it. It is also called only once the mount
 * succeeded, so the parent process (the shell's `imgmount mount`) returns
 * when the mount is already visible. SIGTERM, SIGINT and SIGHUP end the
 * loop through libfuse's handlers. The loop's workers and the control
 * thread block them, so they reach the main thread that waits in the loop.
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/control.h"
#include "fs/fuse_ops.h"

/* libfuse's default maximum of worker threads (FUSE_LOOP_MT_DEF_MAX_THREADS
 * in its lib/fuse_loop_mt.c), used as the idle limit when the caller sets
 * no maximum. */
#define DEFAULT_MAX_THREADS 10

/* "fsname=" with ',' and '\' escaped, so libfuse's option parser keeps the
 * name whole. Return: a malloc'd option, or NULL. */
static char *fsname_option(const char *fsname)
{
	size_t len = strlen(fsname);
	char *opt = malloc(sizeof("fsname=") + 2 * len);
	char *p;

	if (!opt)
		return NULL;

	p = stpcpy(opt, "fsname=");
	for (const char *s = fsname; *s; s++) {
		if (*s == ',' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	return opt;
}

static struct fuse_session *new_session(const struct im_daemon_config *cfg)
{
	_cleanup_free_ char *fsname = NULL;
	char *argv[16];
	int argc = 0;
	struct fuse_args args;
	struct fuse_session *se;

	fsname = fsname_option(cfg->fsname ? cfg->fsname : "imgmount");
	if (!fsname)
		return NULL;

	argv[argc++] = "imgmount";
	argv[argc++] = "-o";
	argv[argc++] = "ro";
	argv[argc++] = "-o";
	argv[argc++] = fsname;
	argv[argc++] = "-o";
	argv[argc++] = "subtype=imgmount";
	argv[argc++] = "-o";
	argv[argc++] = "default_permissions";
	if (cfg->allow_other) {
		argv[argc++] = "-o";
		argv[argc++] = "allow_other";
	}
	if (cfg->debug)
		argv[argc++] = "-d";
	argv[argc] = NULL;

	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	se = fuse_session_new(&args, &im_ll_ops, sizeof(im_ll_ops), (void *)cfg);
	fuse_opt_free_args(&args);
	return se;
}

/*
 * Send the messages of a detached daemon to syslog, or, on a system without
 * a syslog socket (containers, minimal installs), to a file next to the
 * control socket, so that read errors and digest mismatches are not lost.
 */
static void redirect_logs(const char *mountpoint)
{
	char path[PATH_MAX];
	int fd;

	if (access("/dev/log", W_OK) == 0) {
		im_log_use_syslog("imgmount");
		return;
	}
	if (im_control_log_path(mountpoint, path, sizeof(path)) < 0)
		return;

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	dup2(fd, STDERR_FILENO);
	close(fd);
	im_info("this system has no syslog socket; logging to \"%s\"", path);
}

/* Start the control socket with the stop signals blocked, so its thread
 * inherits a mask that leaves them to the main thread. */
static bool start_control(const char *mountpoint)
{
	sigset_t stop, old;
	int r;

	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, &old);

	r = im_control_start(mountpoint);

	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		im_warn("the control socket of \"%s\" is not available, so 'imgmount stats' "
			"cannot read this mount: %s", mountpoint, strerror(-r));
		return false;
	}
	return true;
}

/* Serve until an unmount or a stop signal. Return: 0 or a negative errno. */
static int serve(struct fuse_session *se, const struct im_daemon_config *cfg)
{
	struct fuse_loop_config *loop;
	unsigned threads = cfg->max_threads ? cfg->max_threads : DEFAULT_MAX_THREADS;
	int r;

	loop = fuse_loop_cfg_create();
	if (!loop)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(loop, 1);
	/* Keep every worker once started: a read may wait on the network, and
	 * starting threads again on the next burst costs more than idle ones. */
	fuse_loop_cfg_set_idle_threads(loop, threads);
	if (cfg->max_threads)
		fuse_loop_cfg_set_max_threads(loop, cfg->max_threads);

	r = fuse_session_loop_mt(se, loop);
	fuse_loop_cfg_destroy(loop);

	/* libfuse returns the (positive) number of the signal that ended the
	 * loop, a negative errno on failure, and 0 after an unmount. */
	if (r > 0) {
		im_info("signal %d received: unmounting \"%s\"", r, cfg->mountpoint);
		return 0;
	}
	if (r < 0)
		return im_log_errno(r, "serving \"%s\" failed", cfg->mountpoint);
	return 0;
}

int im_daemon_run(const struct im_daemon_config *cfg)
{
	bool foreground = cfg->foreground || cfg->debug;
	bool control = false;
	struct fuse_session *se;
	int r;

	if (!cfg->mountpoint || !cfg->tree || !cfg->fetcher || (cfg->n_layers && !cfg->layers))
		return -EINVAL;

	/* A second mount on top would take over the control socket, and the
	 * lower daemon would keep serving with no way to read its counters. */
	if (im_control_is_live(cfg->mountpoint)) {
		im_err("\"%s\" is already served by an imgmount daemon; unmount it first "
		       "('imgmount umount %s')", cfg->mountpoint, cfg->mountpoint);
		return -EBUSY;
	}

	se = new_session(cfg);
	if (!se) {
		im_err("creating the FUSE session for \"%s\" failed; libfuse printed the reason above",
		       cfg->mountpoint);
		return -EINVAL;
	}

	if (fuse_session_mount(se, cfg->mountpoint) != 0) {
		im_err("mounting at \"%s\" failed; libfuse printed the reason above "
		       "(is /dev/fuse available, and is the mountpoint an existing directory?)",
		       cfg->mountpoint);
		r = -EIO;
		goto destroy;
	}

	if (fuse_daemonize(foreground) != 0) {
		r = im_log_errno(errno ? -errno : -EIO,
				 "detaching from the terminal failed for \"%s\"", cfg->mountpoint);
		goto unmount;
	}
	if (!foreground)
		redirect_logs(cfg->mountpoint);

	if (fuse_set_signal_handlers(se) != 0) {
		r = im_log_errno(errno ? -errno : -EIO,
				 "installing signal handlers failed for \"%s\"", cfg->mountpoint);
		goto unmount;
	}

	control = start_control(cfg->mountpoint);
	im_info("serving \"%s\" at \"%s\"", cfg->fsname ? cfg->fsname : "imgmount",
		cfg->mountpoint);

	r = serve(se, cfg);

	if (control)
		im_control_stop();
	fuse_remove_signal_handlers(se);
unmount:
	fuse_session_unmount(se);
	if (r == 0)
		im_info("unmounted \"%s\"", cfg->mountpoint);
destroy:
	fuse_session_destroy(se);
	return r;
}
