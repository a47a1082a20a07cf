/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the chunk store, on directories under /tmp. The tests for a
 * full and a read-only filesystem mount a small tmpfs and need root; they
 * are skipped, with a message, without it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/chunk_store.h"
#include "common/digest.h"
#include "common/stats.h"
#include "tests/unit/check.h"

/* Paths here are short names under /tmp, built into PATH_MAX buffers. */
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define HEADER_SIZE 32

static char base_dir[PATH_MAX];

static uint64_t stat_value(atomic_uint_fast64_t *counter)
{
	return atomic_load(counter);
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_tree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* A new empty directory under base_dir for one test. */
static void make_test_dir(const char *name, char *out)
{
	snprintf(out, PATH_MAX, "%s/%s", base_dir, name);
	CHECK(mkdir(out, 0755) == 0);
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

static void chunk_path(const char *dir, const struct im_digest *d, char *out)
{
	char hex[2 * IM_SHA256_LEN + 1];

	im_digest_format_hex(d, hex);
	snprintf(out, PATH_MAX, "%s/chunks/%.2s/%s", dir, hex, hex);
}

/* Number of entries in dir other than "." and "..", or -1. */
static int count_entries(const char *dir)
{
	struct dirent *de;
	int count = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			count++;
	closedir(d);
	return count;
}

static void test_round_trip(void)
{
	char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
	struct im_chunk_store *s = NULL;
	uint8_t data[5000], out[5000];
	struct im_digest d;
	struct stat st;

	make_test_dir("round_trip", dir);
	fill_pattern(data, sizeof(data), 1);
	im_sha256(data, sizeof(data), &d);

	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	CHECK_INT(im_chunk_store_get(s, &d, out, sizeof(out)), -ENOENT);
	CHECK_INT(im_chunk_store_put(s, &d, data, sizeof(data)), 0);
	CHECK_INT(im_chunk_store_get(s, &d, out, sizeof(out)), 0);
	CHECK(memcmp(data, out, sizeof(data)) == 0);

	chunk_path(dir, &d, path);
	CHECK(stat(path, &st) == 0);
	CHECK_INT(st.st_size, HEADER_SIZE + sizeof(data));

	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	CHECK_INT(count_entries(tmp), 0);
	CHECK_STR(im_chunk_store_dir(s), dir);

	im_chunk_store_free(s);
}

static void test_put_existing_kept(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct im_chunk_store *s = NULL;
	uint8_t data[100];
	struct im_digest d;
	struct stat before, after;

	make_test_dir("put_existing", dir);
	fill_pattern(data, sizeof(data), 2);
	im_sha256(data, sizeof(data), &d);
	chunk_path(dir, &d, path);

	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	CHECK_INT(im_chunk_store_put(s, &d, data, sizeof(data)), 0);
	CHECK(stat(path, &before) == 0);
	CHECK_INT(im_chunk_store_put(s, &d, data, sizeof(data)), 0);
	CHECK(stat(path, &after) == 0);
	CHECK_INT(after.st_ino, before.st_ino);

	im_chunk_store_free(s);
}

static void test_zero_length_chunk(void)
{
	char dir[PATH_MAX];
	struct im_chunk_store *s = NULL;
	uint8_t out[1];
	struct im_digest d;

	make_test_dir("zero_length", dir);
	im_sha256("", 0, &d);

	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	CHECK_INT(im_chunk_store_put(s, &d, "", 0), 0);
	CHECK_INT(im_chunk_store_get(s, &d, out, 0), 0);

	im_chunk_store_free(s);
}

static void test_wrong_length_kept(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct im_chunk_store *s = NULL;
	uint8_t data[4096], out[4097];
	uint64_t corrupt_before = stat_value(&im_stats.cache_corrupt);
	struct im_digest d;

	make_test_dir("wrong_length", dir);
	fill_pattern(data, sizeof(data), 3);
	im_sha256(data, sizeof(data), &d);
	chunk_path(dir, &d, path);

	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	CHECK_INT(im_chunk_store_put(s, &d, data, sizeof(data)), 0);
	CHECK_INT(im_chunk_store_get(s, &d, out, sizeof(data) - 1), -ENOENT);
	CHECK_INT(im_chunk_store_get(s, &d, out, sizeof(data) + 1), -ENOENT);

	/* An intact file is not this request's chunk but stays for others. */
	CHECK(access(path, F_OK) == 0);
	CHECK_INT(stat_value(&im_stats.cache_corrupt), corrupt_before);
	CHECK_INT(im_chunk_store_get(s, &d, out, sizeof(data)), 0);
	CHECK(memcmp(data, out, sizeof(data)) == 0);

	im_chunk_store_free(s);
}

/* Damage the stored file with edit(), then expect a removed file and a
 * counted corruption. */
static void check_damage(const char *name, void (*edit)(const char *path))
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct im_chunk_store *s = NULL;
	uint8_t data[8192], out[8192];
	uint64_t corrupt_before;
	struct im_digest d;

	make_test_dir(name, dir);
	fill_pattern(data, sizeof(data), 4);
	im_sha256(data, sizeof(data), &d);
	chunk_path(dir, &d, path);

	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	CHECK_INT(im_chunk_store_put(s, &d, data, sizeof(data)), 0);
	edit(path);

	corrupt_before = stat_value(&im_stats.cache_corrupt);
	CHECK_INT(im_chunk_store_get(s, &d, out, sizeof(out)), -ENOENT);
	CHECK_INT(stat_value(&im_stats.cache_corrupt), corrupt_before + 1);
	CHECK(access(path, F_OK) < 0);
	CHECK_INT(errno, ENOENT);

	/* The next get is a plain miss, and a new put repairs the entry. */
	CHECK_INT(im_chunk_store_get(s, &d, out, sizeof(out)), -ENOENT);
	CHECK_INT(stat_value(&im_stats.cache_corrupt), corrupt_before + 1);
	CHECK_INT(im_chunk_store_put(s, &d, data, sizeof(data)), 0);
	CHECK_INT(im_chunk_store_get(s, &d, out, sizeof(out)), 0);

	im_chunk_store_free(s);
}

static void overwrite_at(const char *path, off_t offset)
{
	static const uint8_t junk[16] = "0123456789abcdef";
	int fd = open(path, O_WRONLY);

	CHECK(fd >= 0);
	CHECK(pwrite(fd, junk, sizeof(junk), offset) == (ssize_t)sizeof(junk));
	close(fd);
}

static void truncate_payload(const char *path)
{
	CHECK(truncate(path, HEADER_SIZE + 4000) == 0);
}

static void truncate_header(const char *path)
{
	CHECK(truncate(path, 10) == 0);
}

static void overwrite_payload(const char *path)
{
	overwrite_at(path, HEADER_SIZE + 1000);
}

static void overwrite_header(const char *path)
{
	overwrite_at(path, 0);
}

static void append_byte(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	CHECK(fd >= 0);
	CHECK(write(fd, "x", 1) == 1);
	close(fd);
}

static void test_truncated_payload(void)
{
	check_damage("truncated_payload", truncate_payload);
}

static void test_truncated_header(void)
{
	check_damage("truncated_header", truncate_header);
}

static void test_overwritten_payload(void)
{
	check_damage("overwritten_payload", overwrite_payload);
}

static void test_overwritten_header(void)
{
	check_damage("overwritten_header", overwrite_header);
}

static void test_trailing_bytes(void)
{
	check_damage("trailing_bytes", append_byte);
}

static void set_age(const char *path, time_t seconds)
{
	struct timespec times[2];

	clock_gettime(CLOCK_REALTIME, &times[0]);
	times[0].tv_sec -= seconds;
	times[1] = times[0];
	CHECK(utimensat(AT_FDCWD, path, times, 0) == 0);
}

/* A temporary file is stale when no writer holds its flock, whatever its
 * age: a fresh unlocked file is swept and an old locked one is kept. */
static void test_stale_tmp_swept(void)
{
	char dir[PATH_MAX], stray_path[PATH_MAX], live_path[PATH_MAX];
	struct im_chunk_store *s = NULL;
	int fd, live_fd;

	make_test_dir("stale_tmp", dir);
	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	im_chunk_store_free(s);
	s = NULL;

	snprintf(stray_path, sizeof(stray_path), "%s/tmp/stray.tmp", dir);
	snprintf(live_path, sizeof(live_path), "%s/tmp/chunk-live", dir);
	fd = open(stray_path, O_WRONLY | O_CREAT, 0644);
	CHECK(fd >= 0);
	close(fd);
	live_fd = open(live_path, O_WRONLY | O_CREAT, 0644);
	CHECK(live_fd >= 0);
	CHECK(flock(live_fd, LOCK_EX) == 0);
	set_age(live_path, 2 * 3600);

	/* flock(2) locks belong to the open file description, so a second
	 * open in this process does not get the lock either. */
	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	CHECK(access(stray_path, F_OK) < 0);
	CHECK_INT(errno, ENOENT);
	CHECK(access(live_path, F_OK) == 0);
	im_chunk_store_free(s);
	s = NULL;

	close(live_fd);
	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	CHECK(access(live_path, F_OK) < 0);
	im_chunk_store_free(s);
}

static void test_directory_modes(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct im_chunk_store *s = NULL;
	mode_t mask = umask(0);
	mode_t dir_mode = geteuid() == 0 ? 0755 : 0700;
	mode_t file_mode = geteuid() == 0 ? 0644 : 0600;
	uint8_t data[64];
	struct im_digest d;
	struct stat st;

	umask(mask);
	make_test_dir("modes", dir);
	fill_pattern(data, sizeof(data), 5);
	im_sha256(data, sizeof(data), &d);

	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	CHECK_INT(im_chunk_store_put(s, &d, data, sizeof(data)), 0);

	snprintf(path, sizeof(path), "%s/chunks", dir);
	CHECK(stat(path, &st) == 0);
	CHECK_INT(st.st_mode & 07777, dir_mode & ~mask);
	snprintf(path, sizeof(path), "%s/index", dir);
	CHECK(stat(path, &st) == 0);
	CHECK(S_ISDIR(st.st_mode));
	chunk_path(dir, &d, path);
	CHECK(stat(path, &st) == 0);
	CHECK_INT(st.st_mode & 07777, file_mode & ~mask);

	im_chunk_store_free(s);
}

static void test_index_path(void)
{
	char dir[PATH_MAX], path[PATH_MAX], expected[PATH_MAX];
	struct im_chunk_store *s = NULL;
	char hex[2 * IM_SHA256_LEN + 1];
	struct im_digest d;

	make_test_dir("index_path", dir);
	im_sha256("toc", 3, &d);
	im_digest_format_hex(&d, hex);
	snprintf(expected, sizeof(expected), "%s/index/%s.idx", dir, hex);

	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	im_chunk_store_index_path(s, &d, path);
	CHECK_STR(path, expected);

	im_chunk_store_free(s);
}

struct put_thread {
	struct im_chunk_store *store;
	const struct im_digest *digest;
	const uint8_t *data;
	size_t len;
	int result;
};

static void *put_thread_main(void *arg)
{
	struct put_thread *t = arg;

	t->result = im_chunk_store_put(t->store, t->digest, t->data, t->len);
	return NULL;
}

static void test_concurrent_puts(void)
{
	enum { THREADS = 8, LEN = 256 * 1024 };
	char dir[PATH_MAX], tmp[PATH_MAX];
	struct im_chunk_store *s = NULL;
	struct put_thread threads[THREADS];
	pthread_t ids[THREADS];
	uint8_t *data = malloc(LEN), *out = malloc(LEN);
	struct im_digest d;

	make_test_dir("concurrent_puts", dir);
	fill_pattern(data, LEN, 6);
	im_sha256(data, LEN, &d);

	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	for (int i = 0; i < THREADS; i++) {
		threads[i] = (struct put_thread){ s, &d, data, LEN, -1 };
		CHECK(pthread_create(&ids[i], NULL, put_thread_main, &threads[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(ids[i], NULL);
		CHECK_INT(threads[i].result, 0);
	}

	CHECK_INT(im_chunk_store_get(s, &d, out, LEN), 0);
	CHECK(memcmp(data, out, LEN) == 0);
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	CHECK_INT(count_entries(tmp), 0);

	im_chunk_store_free(s);
	free(data);
	free(out);
}

/* Fill the filesystem at dir until a write fails with ENOSPC. */
static void fill_filesystem(const char *dir)
{
	char path[PATH_MAX];
	uint8_t block[4096] = { 0 };
	int fd;

	snprintf(path, sizeof(path), "%s/filler", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	while (write(fd, block, sizeof(block)) == (ssize_t)sizeof(block))
		;
	close(fd);
}

static void test_full_and_read_only(void)
{
	char mnt[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX];
	struct im_chunk_store *s = NULL;
	uint8_t small[4096], big[65536], out[65536];
	struct im_digest small_digest, big_digest;
	uint64_t errors_before;

	if (geteuid() != 0) {
		fprintf(stderr, "skip test_full_and_read_only: mounting a tmpfs needs root\n");
		return;
	}

	make_test_dir("tmpfs", mnt);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0755") < 0) {
		fprintf(stderr, "skip test_full_and_read_only: cannot mount tmpfs on '%s': %s\n",
			mnt, strerror(errno));
		return;
	}
	snprintf(dir, sizeof(dir), "%s/cache", mnt);
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);

	fill_pattern(small, sizeof(small), 7);
	fill_pattern(big, sizeof(big), 8);
	im_sha256(small, sizeof(small), &small_digest);
	im_sha256(big, sizeof(big), &big_digest);

	CHECK_INT(im_chunk_store_open(dir, &s), 0);
	CHECK_INT(im_chunk_store_put(s, &small_digest, small, sizeof(small)), 0);

	fill_filesystem(mnt);
	errors_before = stat_value(&im_stats.cache_write_errors);
	CHECK_INT(im_chunk_store_put(s, &big_digest, big, sizeof(big)), -ENOSPC);
	CHECK_INT(stat_value(&im_stats.cache_write_errors), errors_before + 1);
	CHECK_INT(count_entries(tmp), 0);
	CHECK_INT(im_chunk_store_get(s, &small_digest, out, sizeof(small)), 0);
	CHECK(memcmp(small, out, sizeof(small)) == 0);

	CHECK(mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0);
	CHECK_INT(im_chunk_store_put(s, &big_digest, big, sizeof(big)), -EROFS);
	CHECK_INT(stat_value(&im_stats.cache_write_errors), errors_before + 2);
	CHECK_INT(im_chunk_store_get(s, &small_digest, out, sizeof(small)), 0);
	CHECK(memcmp(small, out, sizeof(small)) == 0);

	im_chunk_store_free(s);
	CHECK(umount2(mnt, MNT_DETACH) == 0);
}

int main(void)
{
	snprintf(base_dir, sizeof(base_dir), "/tmp/imgmount-test-chunk-store-XXXXXX");
	if (!mkdtemp(base_dir)) {
		perror("mkdtemp");
		return 1;
	}

	RUN_TEST(test_round_trip);
	RUN_TEST(test_put_existing_kept);
	RUN_TEST(test_zero_length_chunk);
	RUN_TEST(test_wrong_length_kept);
	RUN_TEST(test_truncated_payload);
	RUN_TEST(test_truncated_header);
	RUN_TEST(test_overwritten_payload);
	RUN_TEST(test_overwritten_header);
	RUN_TEST(test_trailing_bytes);
	RUN_TEST(test_stale_tmp_swept);
	RUN_TEST(test_directory_modes);
	RUN_TEST(test_index_path);
	RUN_TEST(test_concurrent_puts);
	RUN_TEST(test_full_and_read_only);

	remove_tree(base_dir);
	return check_exit_status();
}
