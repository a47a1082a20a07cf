/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pin files under CACHE/pins/; see cache_pins.h for the locking protocol.
 */
#include "cache/cache_pins.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* A pin file lists at most this many digests. The bound is a guess far
 * above the layer count of real images, and it keeps the read buffer fixed. */
#define PIN_MAX_DIGESTS 4096
#define PIN_LINE_LEN (IM_DIGEST_STRING_LEN)

/* A temporary pin file is renamed within milliseconds of its creation. */
#define STALE_TMP_PIN_SECONDS 60

static int open_pins_dir(const char *dir)
{
	char path[PATH_MAX];
	int fd, r;

	if (snprintf(path, sizeof(path), "%s/pins", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	r = im_mkdir_p(path, geteuid() == 0 ? 0755 : 0700);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int write_digests(int fd, const struct im_digest *tocs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char line[PIN_LINE_LEN + 1];
		int r;

		im_digest_format(&tocs[i], line);
		strcat(line, "\n");
		r = im_write_full(fd, line, strlen(line));
		if (r < 0)
			return r;
	}
	return 0;
}

int im_cache_pin(const char *dir, const struct im_digest *tocs, size_t n, int *ret_fd)
{
	_cleanup_close_ int pins_fd = -1;
	_cleanup_close_ int fd = -1;
	char tmp_name[80], name[64];
	uint64_t id;
	int r;

	if (n > PIN_MAX_DIGESTS)
		return -E2BIG;
	pins_fd = open_pins_dir(dir);
	if (pins_fd < 0)
		return pins_fd;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		return -EIO;
	snprintf(name, sizeof(name), "%d-%016llx.pin", (int)getpid(), (unsigned long long)id);
	snprintf(tmp_name, sizeof(tmp_name), ".%s.tmp", name);

	fd = openat(pins_fd, tmp_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		    geteuid() == 0 ? 0644 : 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_SH) < 0) {
		r = -errno;
		goto fail;
	}
	r = write_digests(fd, tocs, n);
	if (r < 0)
		goto fail;
	if (renameat(pins_fd, tmp_name, pins_fd, name) < 0) {
		r = -errno;
		goto fail;
	}

	*ret_fd = im_steal_fd(&fd);
	return 0;

fail:
	unlinkat(pins_fd, tmp_name, 0);
	return r;
}

/* Parse a pin file's lines into set; stop at the first malformed line. */
static int read_digests(int fd, struct im_digest_set *set)
{
	char buf[PIN_MAX_DIGESTS * PIN_LINE_LEN];
	ssize_t len;
	size_t pos = 0;

	len = pread(fd, buf, sizeof(buf) - 1, 0);
	if (len < 0)
		return -errno;
	buf[len] = '\0';

	while (pos + PIN_LINE_LEN <= (size_t)len && buf[pos + PIN_LINE_LEN - 1] == '\n') {
		struct im_digest digest;
		int r;

		if (im_digest_parse_n(buf + pos, PIN_LINE_LEN - 1, &digest) < 0)
			break;
		r = im_digest_set_add(set, &digest);
		if (r < 0)
			return r;
		pos += PIN_LINE_LEN;
	}
	return 0;
}

/* Delete a temporary pin left by a crashed writer. The age check keeps a
 * writer's file alive between its creation and its flock(). */
static void remove_if_unlocked(int pins_fd, const char *name)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	fd = openat(pins_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0 || time(NULL) - st.st_mtime < STALE_TMP_PIN_SECONDS)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		unlinkat(pins_fd, name, 0);
}

/* Read one pin if its holder is alive, delete it otherwise. */
static int read_pin(int pins_fd, const char *name, struct im_digest_set *set)
{
	_cleanup_close_ int fd = -1;

	fd = openat(pins_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		/* No process has the pin locked, so its daemon has exited. */
		unlinkat(pins_fd, name, 0);
		return 0;
	}
	if (errno != EWOULDBLOCK)
		return -errno;
	return read_digests(fd, set);
}

int im_cache_read_pins(const char *dir, struct im_digest_set *set)
{
	_cleanup_close_ int pins_fd = -1;
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	pins_fd = open_pins_dir(dir);
	if (pins_fd == -EROFS || pins_fd == -EACCES)
		return 0;
	if (pins_fd < 0)
		return pins_fd;

	fd = dup(pins_fd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (r == 0 && (de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len > 4 && de->d_name[0] == '.' && strcmp(de->d_name + len - 4, ".tmp") == 0) {
			remove_if_unlocked(pins_fd, de->d_name);
			continue;
		}
		if (de->d_name[0] == '.' || len < 4 || strcmp(de->d_name + len - 4, ".pin") != 0)
			continue;
		r = read_pin(pins_fd, de->d_name, set);
	}
	closedir(d);
	return r;
}
