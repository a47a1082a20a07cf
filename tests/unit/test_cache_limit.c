/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the memory cache, LRU eviction, pins, verify, prune, the
 * per-chunk fetch locks, and eviction racing with readers, on directories
 * under /tmp.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/cache_admin.h"
#include "cache/cache_pins.h"
#include "cache/chunk_store.h"
#include "cache/memory_cache.h"
#include "common/digest.h"
#include "index/layer_index.h"
#include "tests/unit/check.h"

#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define CHUNK_LEN 8192

static char base_dir[PATH_MAX];

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static void make_test_dir(const char *name, char *out)
{
	snprintf(out, PATH_MAX, "%s/%s", base_dir, name);
	CHECK(mkdir(out, 0755) == 0);
}

/* Chunk number seed: CHUNK_LEN bytes derived from seed, and their digest. */
static void make_chunk(unsigned seed, uint8_t *buf, struct im_digest *digest)
{
	for (size_t i = 0; i < CHUNK_LEN; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
	im_sha256(buf, CHUNK_LEN, digest);
}

static void chunk_path(const char *dir, const struct im_digest *d, char *out)
{
	char hex[2 * IM_SHA256_LEN + 1];

	im_digest_format_hex(d, hex);
	snprintf(out, PATH_MAX, "%s/chunks/%.2s/%s", dir, hex, hex);
}

/* Set a chunk's atime to seconds since the epoch, as an old read would. */
static void set_atime(const char *dir, const struct im_digest *d, time_t when)
{
	struct timespec times[2] = { { .tv_sec = when }, { .tv_nsec = UTIME_OMIT } };
	char path[PATH_MAX];

	chunk_path(dir, d, path);
	CHECK(utimensat(AT_FDCWD, path, times, 0) == 0);
}

static bool chunk_exists(const char *dir, const struct im_digest *d)
{
	char path[PATH_MAX];

	chunk_path(dir, d, path);
	return access(path, F_OK) == 0;
}

static void test_memory_cache_lru(void)
{
	struct im_memory_cache *mc;
	uint8_t buf[CHUNK_LEN], out[CHUNK_LEN];
	struct im_digest d[5];

	CHECK(im_memory_cache_new(4 * CHUNK_LEN, &mc) == 0);
	for (unsigned i = 0; i < 4; i++) {
		make_chunk(i, buf, &d[i]);
		im_memory_cache_put(mc, &d[i], buf, CHUNK_LEN);
	}
	CHECK_INT(im_memory_cache_bytes(mc), 4 * CHUNK_LEN);

	/* Use chunk 0, so chunk 1 is the least recently used one. */
	CHECK(im_memory_cache_get(mc, &d[0], out, CHUNK_LEN));
	make_chunk(0, buf, &d[0]);
	CHECK(memcmp(out, buf, CHUNK_LEN) == 0);

	make_chunk(4, buf, &d[4]);
	im_memory_cache_put(mc, &d[4], buf, CHUNK_LEN);
	CHECK_INT(im_memory_cache_bytes(mc), 4 * CHUNK_LEN);
	CHECK(!im_memory_cache_get(mc, &d[1], out, CHUNK_LEN));
	CHECK(im_memory_cache_get(mc, &d[0], out, CHUNK_LEN));
	CHECK(im_memory_cache_get(mc, &d[4], out, CHUNK_LEN));
	CHECK(memcmp(out, buf, CHUNK_LEN) == 0);

	/* A wrong length is a miss, and a chunk over a quarter is not kept. */
	CHECK(!im_memory_cache_get(mc, &d[4], out, CHUNK_LEN - 1));
	im_memory_cache_put(mc, &d[1], buf, CHUNK_LEN + 1);
	CHECK(!im_memory_cache_get(mc, &d[1], out, CHUNK_LEN + 1));
	im_memory_cache_free(mc);
}

struct memory_stress {
	struct im_memory_cache *mc;
	unsigned seed;
	atomic_int wrong;
};

static void *memory_stress_thread(void *arg)
{
	struct memory_stress *st = arg;
	uint8_t buf[CHUNK_LEN], out[CHUNK_LEN];
	struct im_digest d;

	for (unsigned i = 0; i < 2000; i++) {
		unsigned seed = (i * 7 + st->seed) % 64;

		make_chunk(seed, buf, &d);
		if (im_memory_cache_get(st->mc, &d, out, CHUNK_LEN)) {
			if (memcmp(out, buf, CHUNK_LEN) != 0)
				atomic_fetch_add(&st->wrong, 1);
		} else {
			im_memory_cache_put(st->mc, &d, buf, CHUNK_LEN);
		}
	}
	return NULL;
}

/* Eight threads over 64 chunks in a cache of 16: constant eviction while
 * others copy; every hit must return the right bytes. */
static void test_memory_cache_threads(void)
{
	struct memory_stress st = { 0 };
	pthread_t threads[8];

	CHECK(im_memory_cache_new(16 * CHUNK_LEN, &st.mc) == 0);
	for (unsigned i = 0; i < 8; i++)
		CHECK(pthread_create(&threads[i], NULL, memory_stress_thread, &st) == 0);
	for (unsigned i = 0; i < 8; i++)
		pthread_join(threads[i], NULL);
	CHECK_INT(atomic_load(&st.wrong), 0);
	CHECK(im_memory_cache_bytes(st.mc) <= 16 * CHUNK_LEN);
	im_memory_cache_free(st.mc);
}

static void test_evict_oldest_first(void)
{
	char dir[PATH_MAX];
	struct im_chunk_store *s;
	struct im_cache_usage usage;
	struct im_cache_evict_result result;
	uint8_t buf[CHUNK_LEN];
	struct im_digest d[6];

	make_test_dir("evict", dir);
	CHECK(im_chunk_store_open(dir, &s) == 0);
	for (unsigned i = 0; i < 6; i++) {
		make_chunk(i, buf, &d[i]);
		CHECK(im_chunk_store_put(s, &d[i], buf, CHUNK_LEN) == 0);
		/* Chunk 0 is the oldest, chunk 5 the newest. */
		set_atime(dir, &d[i], 1000000 + i);
	}
	CHECK(im_cache_usage_scan(dir, &usage) == 0);
	CHECK_INT(usage.chunk_count, 6);
	CHECK(usage.bytes >= 6 * CHUNK_LEN);

	/* Keep room for four: chunks 0 and 1 go. */
	CHECK(im_cache_evict(dir, usage.bytes / 6 * 4, true, &result) == 0);
	CHECK_INT(result.removed_files, 2);
	CHECK(!chunk_exists(dir, &d[0]));
	CHECK(!chunk_exists(dir, &d[1]));
	for (unsigned i = 2; i < 6; i++)
		CHECK(chunk_exists(dir, &d[i]));
	CHECK(result.bytes_after <= usage.bytes / 6 * 4);

	/* A hit refreshes the atime, so chunk 2 now outlives chunk 3. */
	CHECK(im_chunk_store_get(s, &d[2], buf, CHUNK_LEN) == 0);
	CHECK(im_cache_evict(dir, usage.bytes / 6 * 3, true, &result) == 0);
	CHECK_INT(result.removed_files, 1);
	CHECK(chunk_exists(dir, &d[2]));
	CHECK(!chunk_exists(dir, &d[3]));
	im_chunk_store_free(s);
}

static void test_evict_lock_busy(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct im_cache_evict_result result;
	int fd;

	make_test_dir("lock-busy", dir);
	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0);
	CHECK(flock(fd, LOCK_EX) == 0);
	/* flock locks of two open file descriptions conflict even within
	 * one process, as they do between two daemons. */
	CHECK_INT(im_cache_evict(dir, 0, false, &result), -EWOULDBLOCK);
	close(fd);
	CHECK_INT(im_cache_evict(dir, 0, false, &result), 0);
}

/* Write an index for toc that references the chunks d[0..n). */
static void write_index(const char *dir, const struct im_digest *toc,
			const struct im_digest *d, size_t n)
{
	struct im_index_builder *b;
	struct im_entry entry = {
		.path = "file",
		.path_len = 4,
		.link = "",
		.type = IM_ENTRY_REG,
		.mode = 0644,
		.size = n * CHUNK_LEN,
	};
	char hex[2 * IM_SHA256_LEN + 1], path[PATH_MAX];

	CHECK(im_index_builder_new(toc, 1u << 30, &b) == 0);
	CHECK(im_index_builder_add_entry(b, &entry) == 0);
	for (size_t i = 0; i < n; i++) {
		struct im_chunk c = {
			.file_offset = i * CHUNK_LEN,
			.length = CHUNK_LEN,
			.blob_offset = i * CHUNK_LEN,
			.blob_length = CHUNK_LEN,
			.sha256 = d[i],
		};
		CHECK(im_index_builder_add_chunk(b, &c) == 0);
	}
	im_digest_format_hex(toc, hex);
	snprintf(path, sizeof(path), "%s/index/%s.idx", dir, hex);
	CHECK(im_index_builder_write(b, path) == 0);
	im_index_builder_free(b);
}

static void toc_digest(unsigned n, struct im_digest *out)
{
	char text[16];

	snprintf(text, sizeof(text), "toc-%u", n);
	im_sha256(text, strlen(text), out);
}

static bool index_exists(const char *dir, const struct im_digest *toc)
{
	char hex[2 * IM_SHA256_LEN + 1], path[PATH_MAX];

	im_digest_format_hex(toc, hex);
	snprintf(path, sizeof(path), "%s/index/%s.idx", dir, hex);
	return access(path, F_OK) == 0;
}

static int count_pins(const char *dir)
{
	struct im_digest_set set = { 0 };
	int count;

	CHECK(im_cache_read_pins(dir, &set) == 0);
	count = (int)set.count;
	im_digest_set_clear(&set);
	return count;
}

/* Pins held by a live process are read; a dead process's pin is deleted. */
static void test_pins_follow_process(void)
{
	char dir[PATH_MAX];
	struct im_digest tocs[2];
	int pipe_fds[2], fd = -1;
	pid_t child;
	char byte;

	make_test_dir("pins", dir);
	toc_digest(1, &tocs[0]);
	toc_digest(2, &tocs[1]);

	CHECK(im_cache_pin(dir, tocs, 2, &fd) == 0);
	CHECK_INT(count_pins(dir), 2);
	close(fd);
	CHECK_INT(count_pins(dir), 0);

	/* A child pins and is killed with SIGKILL: its pin dies with it. */
	CHECK(pipe(pipe_fds) == 0);
	child = fork();
	if (child == 0) {
		int pin_fd;

		if (im_cache_pin(dir, tocs, 1, &pin_fd) < 0)
			_exit(1);
		(void)!write(pipe_fds[1], "x", 1);
		pause();
		_exit(0);
	}
	CHECK(read(pipe_fds[0], &byte, 1) == 1);
	CHECK_INT(count_pins(dir), 1);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK_INT(count_pins(dir), 0);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
}

static void test_prune_keeps_pinned(void)
{
	char dir[PATH_MAX];
	struct im_chunk_store *s;
	struct im_cache_prune_result result;
	struct im_cache_evict_result evicted;
	uint8_t buf[CHUNK_LEN];
	struct im_digest d[4], toc_pinned, toc_free;
	int pin_fd;

	make_test_dir("prune", dir);
	CHECK(im_chunk_store_open(dir, &s) == 0);
	for (unsigned i = 0; i < 4; i++) {
		make_chunk(i, buf, &d[i]);
		CHECK(im_chunk_store_put(s, &d[i], buf, CHUNK_LEN) == 0);
	}
	toc_digest(10, &toc_pinned);
	toc_digest(11, &toc_free);
	write_index(dir, &toc_pinned, d, 2);      /* chunks 0 and 1 */
	write_index(dir, &toc_free, d + 2, 1);    /* chunk 2; chunk 3 in none */
	CHECK(im_cache_pin(dir, &toc_pinned, 1, &pin_fd) == 0);

	/* Eviction to zero deletes everything but the pinned index. */
	CHECK(im_cache_evict(dir, 0, true, &evicted) == 0);
	CHECK(index_exists(dir, &toc_pinned));
	CHECK(!index_exists(dir, &toc_free));
	for (unsigned i = 0; i < 4; i++)
		CHECK(!chunk_exists(dir, &d[i]));

	for (unsigned i = 0; i < 4; i++) {
		make_chunk(i, buf, &d[i]);
		CHECK(im_chunk_store_put(s, &d[i], buf, CHUNK_LEN) == 0);
	}
	write_index(dir, &toc_free, d + 2, 1);
	CHECK(im_cache_prune(dir, &result) == 0);
	CHECK_INT(result.removed_indexes, 1);
	CHECK_INT(result.removed_chunks, 2);
	CHECK(index_exists(dir, &toc_pinned));
	CHECK(chunk_exists(dir, &d[0]));
	CHECK(chunk_exists(dir, &d[1]));
	CHECK(!chunk_exists(dir, &d[2]));
	CHECK(!chunk_exists(dir, &d[3]));

	/* Once the pin is gone, prune deletes the rest. */
	close(pin_fd);
	CHECK(im_cache_prune(dir, &result) == 0);
	CHECK_INT(result.removed_indexes, 1);
	CHECK_INT(result.removed_chunks, 2);
	im_chunk_store_free(s);
}

static void test_verify_finds_damage(void)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct im_chunk_store *s;
	struct im_cache_check_result result;
	uint8_t buf[CHUNK_LEN];
	struct im_digest d[3];
	int fd;

	make_test_dir("verify", dir);
	CHECK(im_chunk_store_open(dir, &s) == 0);
	for (unsigned i = 0; i < 3; i++) {
		make_chunk(i, buf, &d[i]);
		CHECK(im_chunk_store_put(s, &d[i], buf, CHUNK_LEN) == 0);
	}
	CHECK(im_cache_verify(dir, &result) == 0);
	CHECK_INT(result.checked, 3);
	CHECK_INT(result.bad, 0);

	/* Chunk 1: one payload byte flipped. Chunk 2: a valid file with
	 * another chunk's bytes, which only the SHA-256 check can catch. */
	chunk_path(dir, &d[1], path);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK(pread(fd, buf, 1, 100) == 1);
	buf[0] ^= 0x01;
	CHECK(pwrite(fd, buf, 1, 100) == 1);
	close(fd);
	{
		char from[PATH_MAX];
		struct im_digest other;

		make_chunk(7, buf, &other);
		CHECK(im_chunk_store_put(s, &other, buf, CHUNK_LEN) == 0);
		chunk_path(dir, &other, from);
		chunk_path(dir, &d[2], path);
		CHECK(rename(from, path) == 0);
	}

	CHECK(im_cache_verify(dir, &result) == 0);
	CHECK_INT(result.checked, 3);
	CHECK_INT(result.bad, 2);
	CHECK(chunk_exists(dir, &d[0]));
	CHECK(!chunk_exists(dir, &d[1]));
	CHECK(!chunk_exists(dir, &d[2]));
	im_chunk_store_free(s);
}

/* The fetch lock is exclusive between processes and waits can be made. */
static void test_chunk_lock_exclusive(void)
{
	char dir[PATH_MAX];
	struct im_chunk_store *s;
	struct im_digest d;
	uint8_t buf[CHUNK_LEN];
	int fd, status;
	pid_t child;

	make_test_dir("chunk-lock", dir);
	CHECK(im_chunk_store_open(dir, &s) == 0);
	make_chunk(1, buf, &d);

	fd = im_chunk_store_lock_chunk(s, &d, false);
	CHECK(fd >= 0);
	child = fork();
	if (child == 0) {
		int other = im_chunk_store_lock_chunk(s, &d, false);

		_exit(other == -EWOULDBLOCK ? 0 : 1);
	}
	CHECK(waitpid(child, &status, 0) == child);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), 0);
	im_chunk_store_unlock_chunk(s, &d, fd);

	fd = im_chunk_store_lock_chunk(s, &d, false);
	CHECK(fd >= 0);
	im_chunk_store_unlock_chunk(s, &d, fd);
	im_chunk_store_free(s);
}

struct race {
	const char *dir;
	struct im_chunk_store *store;
	struct im_digest digests[16];
	atomic_bool stop;
	atomic_int wrong;
	atomic_int hits;
};

static void *race_reader(void *arg)
{
	struct race *race = arg;
	uint8_t buf[CHUNK_LEN], expected[CHUNK_LEN];
	struct im_digest d;

	while (!atomic_load(&race->stop)) {
		for (unsigned i = 0; i < 16; i++) {
			make_chunk(i, expected, &d);
			if (im_chunk_store_get(race->store, &d, buf, CHUNK_LEN) == 0) {
				atomic_fetch_add(&race->hits, 1);
				if (memcmp(buf, expected, CHUNK_LEN) != 0)
					atomic_fetch_add(&race->wrong, 1);
			} else {
				/* A miss is what a reader sees after an eviction:
				 * fetch again, here by storing the bytes. */
				im_chunk_store_put(race->store, &d, expected, CHUNK_LEN);
			}
		}
	}
	return NULL;
}

/*
 * Readers loop over 16 chunks while eviction empties the cache 200 times.
 * Every read must be a hit with the right bytes or a clean miss. The
 * store's only lookup is openat(), so no window exists between a lookup
 * and an open in which an eviction could fail a read.
 */
static void test_eviction_during_reads(void)
{
	char dir[PATH_MAX];
	struct race race = { 0 };
	struct im_cache_evict_result result;
	uint64_t removed = 0;
	pthread_t readers[4];

	make_test_dir("race", dir);
	race.dir = dir;
	CHECK(im_chunk_store_open(dir, &race.store) == 0);
	for (unsigned i = 0; i < 4; i++)
		CHECK(pthread_create(&readers[i], NULL, race_reader, &race) == 0);
	for (unsigned round = 0; round < 200; round++) {
		CHECK(im_cache_evict(dir, 0, true, &result) == 0);
		removed += result.removed_files;
		usleep(500);
	}
	atomic_store(&race.stop, true);
	for (unsigned i = 0; i < 4; i++)
		pthread_join(readers[i], NULL);

	CHECK_INT(atomic_load(&race.wrong), 0);
	CHECK(atomic_load(&race.hits) > 0);
	CHECK(removed > 0);
	im_chunk_store_free(race.store);
}

int main(void)
{
	snprintf(base_dir, sizeof(base_dir), "/tmp/test_cache_limit.XXXXXX");
	if (!mkdtemp(base_dir)) {
		perror("mkdtemp");
		return 1;
	}

	RUN_TEST(test_memory_cache_lru);
	RUN_TEST(test_memory_cache_threads);
	RUN_TEST(test_evict_oldest_first);
	RUN_TEST(test_evict_lock_busy);
	RUN_TEST(test_pins_follow_process);
	RUN_TEST(test_prune_keeps_pinned);
	RUN_TEST(test_verify_finds_damage);
	RUN_TEST(test_chunk_lock_exclusive);
	RUN_TEST(test_eviction_during_reads);

	nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return check_exit_status();
}
