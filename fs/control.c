/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Control socket: one unix stream socket per mount, in the runtime
 * directory, named after a hash of the absolute mountpoint so that any
 * spelling of the path finds it and nothing appears inside the mounted
 * tree. Each connection receives the counters as one JSON line and is
 * closed. Only the owner of the daemon (and root) can connect: the socket
 * is created with mode 0600.
 */
#include "fs/control.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "fs/paths.h"

static struct {
	int listen_fd;
	pthread_t thread;
	bool running;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} control = { .listen_fd = -1 };

static int socket_path_for(const char *absolute_mountpoint, char *out, size_t out_size)
{
	char runtime[PATH_MAX], hex[2 * IM_SHA256_LEN + 1];
	struct im_digest digest;
	int r, n;

	r = im_runtime_dir(runtime, sizeof(runtime));
	if (r < 0)
		return r;

	im_sha256(absolute_mountpoint, strlen(absolute_mountpoint), &digest);
	im_digest_format_hex(&digest, hex);
	hex[16] = '\0';

	n = snprintf(out, out_size, "%s/%s.sock", runtime, hex);
	if (n < 0 || (size_t)n >= out_size)
		return -ENAMETOOLONG;
	return 0;
}

int im_control_socket_path(const char *mountpoint, char *out, size_t out_size)
{
	char absolute[PATH_MAX];

	/* The client resolves symlinks; the daemon was given a resolved path. */
	if (!realpath(mountpoint, absolute)) {
		int r = im_absolute_path(mountpoint, absolute, sizeof(absolute));

		if (r < 0)
			return r;
	}
	return socket_path_for(absolute, out, out_size);
}

static void serve_connection(int fd)
{
	FILE *out = fdopen(fd, "w");

	if (!out) {
		close(fd);
		return;
	}
	im_stats_write_json(out);
	fclose(out);
}

static void *control_thread(void *arg)
{
	(void)arg;

	for (;;) {
		int fd = accept4(control.listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;  /* shut down by im_control_stop() */
		}
		serve_connection(fd);
	}
	return NULL;
}

/*
 * The runtime directory may be a fallback under /tmp that another user could
 * have created first to plant or block sockets: accept it only if it is a
 * directory owned by this user that nobody else can write.
 */
static int check_runtime_dir(const char *runtime)
{
	struct stat st;

	if (lstat(runtime, &st) < 0)
		return im_log_errno(-errno, "checking runtime directory \"%s\" failed", runtime);
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0022)) {
		im_err("runtime directory \"%s\" is not a directory owned by uid %u and writable "
		       "only by it; remove it or set XDG_RUNTIME_DIR", runtime, (unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}

int im_control_log_path(const char *mountpoint, char *out, size_t out_size)
{
	char runtime[PATH_MAX];
	size_t len;
	int r;

	r = im_runtime_dir(runtime, sizeof(runtime));
	if (r < 0)
		return r;
	r = im_mkdir_p(runtime, 0700);
	if (r < 0)
		return r;
	r = check_runtime_dir(runtime);
	if (r < 0)
		return r;

	r = socket_path_for(mountpoint, out, out_size);
	if (r < 0)
		return r;
	len = strlen(out);
	if (len < 5 || len - 5 + sizeof(".log") > out_size)
		return -ENAMETOOLONG;
	strcpy(out + len - 5, ".log");
	return 0;
}

bool im_control_is_live(const char *mountpoint)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if (socket_path_for(mountpoint, addr.sun_path, sizeof(addr.sun_path)) < 0)
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	return connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
}

int im_control_start(const char *mountpoint)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char runtime[PATH_MAX];
	mode_t old_umask;
	int r;

	/* mountpoint is already absolute and resolved: resolving it again here
	 * would stat the mount before its daemon serves requests. */
	r = socket_path_for(mountpoint, control.path, sizeof(control.path));
	if (r < 0)
		return r;
	r = im_runtime_dir(runtime, sizeof(runtime));
	if (r < 0)
		return r;
	r = im_mkdir_p(runtime, 0700);
	if (r < 0)
		return im_log_errno(r, "creating runtime directory \"%s\" failed", runtime);
	r = check_runtime_dir(runtime);
	if (r < 0)
		return r;

	control.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (control.listen_fd < 0)
		return -errno;

	/* A socket left by a daemon that was killed is replaced. */
	unlink(control.path);
	memcpy(addr.sun_path, control.path, strlen(control.path) + 1);
	old_umask = umask(0177);
	r = bind(control.listen_fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_umask);
	if (r < 0 || listen(control.listen_fd, 16) < 0) {
		r = -errno;
		goto fail;
	}

	r = -pthread_create(&control.thread, NULL, control_thread, NULL);
	if (r < 0)
		goto fail;
	control.running = true;
	return 0;

fail:
	im_log_errno(r, "starting control socket \"%s\" failed", control.path);
	close(control.listen_fd);
	control.listen_fd = -1;
	unlink(control.path);
	return r;
}

void im_control_stop(void)
{
	if (!control.running)
		return;

	shutdown(control.listen_fd, SHUT_RDWR);
	pthread_join(control.thread, NULL);
	close(control.listen_fd);
	control.listen_fd = -1;
	unlink(control.path);
	control.running = false;
}

int im_control_print_stats(const char *mountpoint)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	char buf[4096];
	ssize_t n;
	int r;

	r = im_control_socket_path(mountpoint, addr.sun_path, sizeof(addr.sun_path));
	if (r < 0)
		return im_log_errno(r, "finding the control socket of \"%s\" failed", mountpoint);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		im_err("no imgmount daemon answers for \"%s\" (socket %s): %s; is it an imgmount mount?",
		       mountpoint, addr.sun_path, strerror(-r));
		return r;
	}

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -EIO;
	}
	if (n < 0)
		return -errno;
	return 0;
}
