/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-chunk fetch locks shared by every process using a cache directory:
 * a write lock on one byte of the file CACHE/locks/chunks, at an offset
 * taken from the chunk's digest, held while the chunk is fetched.
 *
 * The locks are open file description locks (F_OFD_SETLK). Each call opens
 * the file again, so two threads of one process exclude each other as two
 * processes do. Closing the descriptor releases the lock, also when the
 * process is killed. One file for all chunks means a fetch
 * creates and deletes no lock inode: on ext4 a file created and unlinked
 * per chunk cost more CPU than the chunk's decompression.
 *
 * Offsets come from 62 bits of the SHA-256, so two different chunks share a
 * lock byte with negligible probability, and when they do, one fetch merely
 * waits for the other.
 */
#include "cache/chunk_store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

static int open_lock_file(struct im_chunk_store *s)
{
	char path[PATH_MAX];
	int fd;

	/* im_chunk_store_open() checked that the directory leaves room. */
	snprintf(path, sizeof(path), "%s/locks/chunks", im_chunk_store_dir(s));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 || errno != ENOENT)
		return fd < 0 ? -errno : fd;

	snprintf(path, sizeof(path), "%s/locks", im_chunk_store_dir(s));
	if (mkdir(path, geteuid() == 0 ? 0755 : 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/locks/chunks", im_chunk_store_dir(s));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	return fd < 0 ? -errno : fd;
}

static off_t lock_offset(const struct im_digest *digest)
{
	uint64_t bits;

	memcpy(&bits, digest->bytes, sizeof(bits));
	return (off_t)(bits >> 2);
}

int im_chunk_store_lock_chunk(struct im_chunk_store *s, const struct im_digest *digest,
			      bool wait)
{
	_cleanup_close_ int fd = -1;
	struct flock lock = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = lock_offset(digest),
		.l_len = 1,
	};

	fd = open_lock_file(s);
	if (fd < 0)
		return fd;

	while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &lock) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EACCES)
			return -EWOULDBLOCK;
		return -errno;
	}
	return im_steal_fd(&fd);
}

void im_chunk_store_unlock_chunk(struct im_chunk_store *s, const struct im_digest *digest,
				 int lock_fd)
{
	(void)s;
	(void)digest;
	if (lock_fd >= 0)
		close(lock_fd);
}
