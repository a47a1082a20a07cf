/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-chunk fetch locks shared by every process using a cache directory:
 * an exclusive flock(2) on CACHE/locks/<hex> while the chunk is fetched.
 *
 * The holder deletes the lock file once the chunk is stored, so locks/
 * stays small. A process that opened the file before the deletion then
 * holds a lock on an unlinked inode, which would let a third process take
 * a second lock on a new file of the same name. So after flock() returns,
 * the lock is kept only if the name still refers to the locked inode, and
 * otherwise the open and lock are retried.
 */
#include "cache/chunk_store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

static void lock_path(struct im_chunk_store *s, const struct im_digest *digest, char *out)
{
	char hex[2 * IM_SHA256_LEN + 1];

	im_digest_format_hex(digest, hex);
	/* im_chunk_store_open() checked that the directory leaves room. */
	snprintf(out, PATH_MAX, "%s/locks/%s", im_chunk_store_dir(s), hex);
}

static int open_lock_file(struct im_chunk_store *s, const char *path)
{
	char dir[PATH_MAX];
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 || errno != ENOENT)
		return fd < 0 ? -errno : fd;

	snprintf(dir, sizeof(dir), "%s/locks", im_chunk_store_dir(s));
	if (mkdir(dir, geteuid() == 0 ? 0755 : 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	return fd < 0 ? -errno : fd;
}

/* Return true when path still names the inode that fd has open. */
static bool still_linked(int fd, const char *path)
{
	struct stat locked, named;

	if (fstat(fd, &locked) < 0 || stat(path, &named) < 0)
		return false;
	return locked.st_dev == named.st_dev && locked.st_ino == named.st_ino;
}

int im_chunk_store_lock_chunk(struct im_chunk_store *s, const struct im_digest *digest,
			      bool wait)
{
	char path[PATH_MAX];

	lock_path(s, digest, path);
	for (;;) {
		_cleanup_close_ int fd = -1;

		fd = open_lock_file(s, path);
		if (fd < 0)
			return fd;
		if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (still_linked(fd, path))
			return im_steal_fd(&fd);
	}
}

void im_chunk_store_unlock_chunk(struct im_chunk_store *s, const struct im_digest *digest,
				 int lock_fd)
{
	char path[PATH_MAX];

	if (lock_fd < 0)
		return;
	lock_path(s, digest, path);
	/* Unlink while still holding the lock, so that a waiter cannot lock
	 * the name between our unlock and our unlink. */
	unlink(path);
	close(lock_fd);
}
