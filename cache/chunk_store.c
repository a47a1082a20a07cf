/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chunk store on disk: one file per chunk at chunks/AB/<64 hex>, written
 * under a random name in tmp/ and renamed into place, so that concurrent
 * processes share the cache with no lock and a reader never sees a partial
 * file under a real name.
 *
 * A chunk file is a 32-byte little-endian header followed by the
 * uncompressed payload:
 *   0   magic "IMCHUNK\0"
 *   8   u32 format version (CHUNK_FORMAT_VERSION)
 *   12  u32 reserved, written as 0
 *   16  u64 payload length in bytes
 *   24  u64 XXH3-64 of the payload
 * The payload was verified against its SHA-256 before it was stored, so the
 * cheap XXH3 check on every read only has to catch damage on disk and files
 * torn by a crash.
 *
 * Layout cost: one file per chunk makes a write one rename(2) and lets
 * eviction delete chunks one at a time, but it costs one inode, at least one
 * filesystem block per chunk and an open/pread/close per cached read.
 * NOTE: packing chunks into larger files has not been measured against this.
 *
 * Modes before the umask: 0755 directories and 0644 files when the store is
 * opened by root (a cache shared by the node's mounts), 0700 and 0600 for any
 * other user (a cache in that user's home).
 */
#include "cache/chunk_store.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "cache/cache_limit.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "index/layer_index.h"

#define CHUNK_MAGIC "IMCHUNK"
#define CHUNK_FORMAT_VERSION 1u
#define CHUNK_HEADER_SIZE 32


/* Write failures (a full disk) are logged at most once per interval, and
 * every one is counted in im_stats.cache_write_errors. */
#define WRITE_WARNING_INTERVAL_NS (60ull * 1000000000ull)

/* A hit sets the file's atime, the recency that eviction sorts by, unless
 * it is newer than this. So a chunk read in a loop costs one metadata write
 * per interval, and LRU order is only exact to within the interval. */
#define TOUCH_INTERVAL_SECONDS 10

/* "AB/" + 64 hex digits + NUL */
#define CHUNK_NAME_SIZE (3 + 2 * IM_SHA256_LEN + 1)
/* "/index/" + 64 hex digits + ".idx" + NUL */
#define INDEX_SUFFIX_SIZE (7 + 2 * IM_SHA256_LEN + 4 + 1)

struct im_chunk_store {
	char *dir;
	int chunks_fd;
	int tmp_fd;
	mode_t dir_mode;
	mode_t file_mode;
	/* im_now_ns() of the last logged write failure, 0 for none */
	atomic_uint_fast64_t last_write_warning_ns;
	struct im_cache_limit *limit;   /* NULL: no size limit */
};

static void chunk_name(const struct im_digest *digest, char *out)
{
	char hex[2 * IM_SHA256_LEN + 1];

	im_digest_format_hex(digest, hex);
	snprintf(out, CHUNK_NAME_SIZE, "%.2s/%s", hex, hex);
}

static void encode_header(uint8_t *out, uint64_t length, uint64_t xxh3)
{
	uint32_t version = htole32(CHUNK_FORMAT_VERSION);
	uint32_t reserved = 0;

	length = htole64(length);
	xxh3 = htole64(xxh3);
	memcpy(out, CHUNK_MAGIC, 8);
	memcpy(out + 8, &version, 4);
	memcpy(out + 12, &reserved, 4);
	memcpy(out + 16, &length, 8);
	memcpy(out + 24, &xxh3, 8);
}

/* Open the directory dir/name (creating it) and return its fd or -errno. */
static int open_subdir(const char *dir, const char *name, mode_t mode)
{
	char path[PATH_MAX];
	int fd, r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	r = im_mkdir_p(path, mode);
	if (r < 0)
		return im_log_errno(r, "cannot create cache directory '%s'", path);

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return im_log_errno(-errno, "cannot open cache directory '%s'", path);
	return fd;
}

/*
 * True when a file in tmp/ belongs to no live writer. A writer holds an
 * exclusive flock(2) on its temporary file from creation until after the
 * rename, and the kernel drops the lock when the writer exits or is killed,
 * so a file nobody has locked is left over from a crash. A writer caught
 * between its open and its flock loses its file: its rename then fails,
 * the chunk is served anyway and counted as a write error.
 */
static bool tmp_file_abandoned(int tmp_fd, const char *name)
{
	_cleanup_close_ int fd = -1;

	fd = openat(tmp_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return false;
	return flock(fd, LOCK_EX | LOCK_NB) == 0;
}

/* Remove temporary files left behind by writers that crashed. Failures
 * only leave files behind, so they are not errors. */
static void sweep_tmp(struct im_chunk_store *s)
{
	unsigned removed = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = dup(s->tmp_fd);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}

	while ((de = readdir(d))) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(s->tmp_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISREG(st.st_mode) || !tmp_file_abandoned(s->tmp_fd, de->d_name))
			continue;
		if (unlinkat(s->tmp_fd, de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);

	if (removed > 0)
		im_info("removed %u stale temporary files from cache directory '%s/tmp'",
			removed, s->dir);
}

int im_chunk_store_open(const char *dir, struct im_chunk_store **ret)
{
	struct im_chunk_store *s;
	bool shared = geteuid() == 0;
	int r;

	if (!dir || !*dir)
		return -EINVAL;
	if (strlen(dir) + INDEX_SUFFIX_SIZE > PATH_MAX)
		return im_log_errno(-ENAMETOOLONG, "cannot use cache directory '%s'", dir);

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->chunks_fd = -1;
	s->tmp_fd = -1;
	s->dir_mode = shared ? 0755 : 0700;
	s->file_mode = shared ? 0644 : 0600;
	s->dir = strdup(dir);
	if (!s->dir) {
		r = -ENOMEM;
		goto fail;
	}

	r = open_subdir(dir, "chunks", s->dir_mode);
	if (r < 0)
		goto fail;
	s->chunks_fd = r;

	r = open_subdir(dir, "tmp", s->dir_mode);
	if (r < 0)
		goto fail;
	s->tmp_fd = r;

	r = open_subdir(dir, "index", s->dir_mode);
	if (r < 0)
		goto fail;
	close(r);

	sweep_tmp(s);
	*ret = s;
	return 0;

fail:
	im_chunk_store_free(s);
	return r;
}

void im_chunk_store_free(struct im_chunk_store *s)
{
	if (!s)
		return;
	if (s->chunks_fd >= 0)
		close(s->chunks_fd);
	if (s->tmp_fd >= 0)
		close(s->tmp_fd);
	im_cache_limit_free(s->limit);
	free(s->dir);
	free(s);
}

/*
 * Remove a chunk file that failed a check and log why, unless another
 * reader has already removed or replaced it (a different inode under the
 * name).
 */
static void remove_damaged(struct im_chunk_store *s, const struct im_digest *digest,
			   const char *name, const struct stat *opened,
			   const char *reason)
{
	const char *outcome = "removed it, so the next read fetches it again";
	char text[IM_DIGEST_STRING_LEN];
	char failure[128];
	struct stat now;

	/* Concurrent readers of one damaged file all get here. Only the one
	 * that removes it counts and logs it, so each damaged file counts
	 * once in cache_corrupt. */
	if (fstatat(s->chunks_fd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
	    now.st_dev != opened->st_dev || now.st_ino != opened->st_ino)
		return;
	if (unlinkat(s->chunks_fd, name, 0) < 0) {
		if (errno == ENOENT)
			return;
		snprintf(failure, sizeof(failure), "cannot remove it: %s", strerror(errno));
		outcome = failure;
	}

	im_stats_add(cache_corrupt, 1);
	im_digest_format(digest, text);
	im_warn("cached chunk %s in cache directory '%s' is damaged (%s): %s",
		text, s->dir, reason, outcome);
}

/*
 * Check the header against the file and the requested length. Return: 0;
 * -ENOENT with *reason set when the file is damaged; -ENOENT with *reason
 * NULL when the file is intact but contains a different length.
 */
static int check_header(const uint8_t *h, const struct stat *st, size_t len,
			const char **reason, uint64_t *ret_xxh3)
{
	uint32_t version;
	uint64_t length;

	memcpy(&version, h + 8, 4);
	memcpy(&length, h + 16, 8);
	memcpy(ret_xxh3, h + 24, 8);
	version = le32toh(version);
	length = le64toh(length);
	*ret_xxh3 = le64toh(*ret_xxh3);

	*reason = NULL;
	if (memcmp(h, CHUNK_MAGIC, 8) != 0)
		*reason = "bad magic";
	else if (version != CHUNK_FORMAT_VERSION)
		*reason = "unsupported format version";
	else if (length > (uint64_t)st->st_size - CHUNK_HEADER_SIZE)
		*reason = "file shorter than its payload length";
	else if (length < (uint64_t)st->st_size - CHUNK_HEADER_SIZE)
		*reason = "file longer than its payload length";
	if (*reason)
		return -ENOENT;

	/* An intact file of another length cannot be this chunk's content, so
	 * the caller's chunk descriptor is wrong: the fetch that follows fails
	 * its SHA-256 check. Keep the file, which other readers still use. */
	if (length != len)
		return -ENOENT;
	return 0;
}

/* Mark a hit for LRU eviction. Failure (a read-only cache) only makes the
 * chunk look older, so it is ignored. */
static void touch(int fd, const struct stat *st)
{
	const struct timespec times[2] = {
		{ .tv_nsec = UTIME_NOW },
		{ .tv_nsec = UTIME_OMIT },
	};

	if (time(NULL) - st->st_atime < TOUCH_INTERVAL_SECONDS)
		return;
	(void)futimens(fd, times);
}

int im_chunk_store_get(struct im_chunk_store *s, const struct im_digest *digest,
		       void *buf, size_t len)
{
	char name[CHUNK_NAME_SIZE];
	uint8_t header[CHUNK_HEADER_SIZE];
	_cleanup_close_ int fd = -1;
	const char *reason = NULL;
	uint64_t xxh3;
	struct stat st;
	int r;

	chunk_name(digest, name);
	fd = openat(s->chunks_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOENT;

	if (st.st_size < CHUNK_HEADER_SIZE) {
		remove_damaged(s, digest, name, &st, "file shorter than its header");
		return -ENOENT;
	}
	r = im_pread_full(fd, header, sizeof(header), 0);
	if (r < 0)
		return r;

	r = check_header(header, &st, len, &reason, &xxh3);
	if (r < 0 && reason)
		remove_damaged(s, digest, name, &st, reason);
	if (r < 0)
		return r;

	/* Read straight into the caller's buffer: on a failed check the
	 * caller gets -ENOENT and must ignore the contents of buf. */
	r = im_pread_full(fd, buf, len, CHUNK_HEADER_SIZE);
	if (r == -EIO) {
		/* The file shrank after fstat(). */
		remove_damaged(s, digest, name, &st, "file shorter than its payload length");
		return -ENOENT;
	}
	if (r < 0)
		return r;

	if (XXH3_64bits(buf, len) != xxh3) {
		remove_damaged(s, digest, name, &st, "payload XXH3 mismatch");
		return -ENOENT;
	}

	touch(fd, &st);
	return 0;
}

/* Create tmp/chunk-<random> for writing. Return: its fd or -errno. */
static int create_tmp(struct im_chunk_store *s, char *name, size_t size)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		uint64_t id;
		int fd;

		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			return errno ? -errno : -EIO;
		snprintf(name, size, "chunk-%016llx", (unsigned long long)id);

		fd = openat(s->tmp_fd, name,
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			    s->file_mode);
		if (fd >= 0) {
			/* Marks the file as being written; see tmp_file_abandoned(). */
			if (flock(fd, LOCK_EX) < 0) {
				int r = -errno;

				unlinkat(s->tmp_fd, name, 0);
				close(fd);
				return r;
			}
			return fd;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int write_chunk_file(int fd, const void *buf, size_t len)
{
	uint8_t header[CHUNK_HEADER_SIZE];
	int r;

	encode_header(header, len, XXH3_64bits(buf, len));
	r = im_write_full(fd, header, sizeof(header));
	if (r < 0)
		return r;
	return im_write_full(fd, buf, len);
}

static int store_chunk(struct im_chunk_store *s, const struct im_digest *digest,
		       const void *buf, size_t len)
{
	char name[CHUNK_NAME_SIZE];
	char tmp_name[32];
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	chunk_name(digest, name);
	if (fstatat(s->chunks_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;

	/* name is "AB/<hex>": create the directory AB first. */
	name[2] = '\0';
	if (mkdirat(s->chunks_fd, name, s->dir_mode) < 0 && errno != EEXIST)
		return -errno;
	name[2] = '/';

	fd = create_tmp(s, tmp_name, sizeof(tmp_name));
	if (fd < 0)
		return fd;

	/*
	 * No fdatasync(): after a crash the renamed file may be empty or torn,
	 * and the length and XXH3 checks in im_chunk_store_get() then remove
	 * it, so durability would only cost latency on the read path.
	 */
	r = write_chunk_file(fd, buf, len);

	/* The fd stays open, and so locked, until after the rename, so that a
	 * sweep by another process never takes the file from under us.
	 * rename(2) replaces a file that a concurrent writer put there first,
	 * and that file contains the same bytes. */
	if (r == 0 && renameat(s->tmp_fd, tmp_name, s->chunks_fd, name) < 0)
		r = -errno;

	if (r < 0) {
		unlinkat(s->tmp_fd, tmp_name, 0);
		return r;
	}

	/* An estimate of the disk usage (whole 4 KiB blocks); the limit's
	 * periodic scans replace it with the real st_blocks sum. */
	if (s->limit)
		im_cache_limit_account(s->limit, (CHUNK_HEADER_SIZE + len + 4095) & ~(uint64_t)4095);
	return 0;
}

static void warn_write_failure(struct im_chunk_store *s,
			       const struct im_digest *digest, int error)
{
	uint_fast64_t now = im_now_ns();
	uint_fast64_t last = atomic_load(&s->last_write_warning_ns);
	char text[IM_DIGEST_STRING_LEN];

	if (last != 0 && now - last < WRITE_WARNING_INTERVAL_NS)
		return;
	if (!atomic_compare_exchange_strong(&s->last_write_warning_ns, &last, now))
		return;

	im_digest_format(digest, text);
	im_warn("cannot store chunk %s in cache directory '%s': %s; the data is "
		"still served, and further failures within 60 s are only counted "
		"in cache_write_errors", text, s->dir, strerror(-error));
}

int im_chunk_store_put(struct im_chunk_store *s, const struct im_digest *digest,
		       const void *buf, size_t len)
{
	int r;

	r = store_chunk(s, digest, buf, len);
	if (r < 0) {
		im_stats_add(cache_write_errors, 1);
		warn_write_failure(s, digest, r);
	}
	return r;
}

int im_chunk_store_set_limit(struct im_chunk_store *s, uint64_t max_bytes)
{
	if (s->limit)
		return -EALREADY;
	return im_cache_limit_new(s->dir, max_bytes, &s->limit);
}

int im_chunk_file_verify(int fd, const struct im_digest *digest, const char **reason)
{
	uint8_t header[CHUNK_HEADER_SIZE];
	_cleanup_free_ uint8_t *payload = NULL;
	struct im_digest actual;
	uint64_t xxh3, length;
	struct stat st;
	int r;

	*reason = NULL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size < CHUNK_HEADER_SIZE) {
		*reason = "file shorter than its header";
		return -EBADMSG;
	}
	r = im_pread_full(fd, header, sizeof(header), 0);
	if (r < 0)
		return r;

	memcpy(&length, header + 16, 8);
	length = le64toh(length);
	if (length > IM_CHUNK_MAX_LENGTH) {
		*reason = "payload length out of range";
		return -EBADMSG;
	}
	r = check_header(header, &st, length, reason, &xxh3);
	if (r < 0)
		return -EBADMSG;

	payload = malloc(length ? length : 1);
	if (!payload)
		return -ENOMEM;
	r = im_pread_full(fd, payload, length, CHUNK_HEADER_SIZE);
	if (r == -EIO) {
		*reason = "file shorter than its payload length";
		return -EBADMSG;
	}
	if (r < 0)
		return r;

	if (XXH3_64bits(payload, length) != xxh3) {
		*reason = "payload XXH3 mismatch";
		return -EBADMSG;
	}
	im_sha256(payload, length, &actual);
	if (!im_digest_equal(&actual, digest)) {
		*reason = "payload SHA-256 does not match the file name";
		return -EBADMSG;
	}
	return 0;
}

void im_chunk_store_index_path(const struct im_chunk_store *s,
			       const struct im_digest *toc_digest, char *out)
{
	char hex[2 * IM_SHA256_LEN + 1];

	/* im_chunk_store_open() checked that this fits in PATH_MAX. */
	im_digest_format_hex(toc_digest, hex);
	snprintf(out, PATH_MAX, "%s/index/%s.idx", s->dir, hex);
}

const char *im_chunk_store_dir(const struct im_chunk_store *s)
{
	return s->dir;
}
