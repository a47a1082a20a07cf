/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Live tests for the fetcher against a real registry on loopback.
 *
 * Usage: test_fetcher HOST:PORT
 * The registry must serve plain HTTP without auth;
 * tests/integration/fetcher_live.sh starts one and runs this program.
 *
 * The test pushes one blob built from independent zstd frames of random and
 * zero data, with junk bytes between two of them. Its chunks cover the frame
 * layouts the fetcher must handle: a chunk split over two frames, a chunk
 * behind a skippable frame, a chunk whose range runs into the next frame,
 * and three 3 MiB chunks. Every test uses a new cache directory and checks
 * the im_stats counters by their change over the test.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "cache/chunk_store.h"
#include "cache/fetcher.h"
#include "common/digest.h"
#include "common/stats.h"
#include "common/util.h"
#include "registry/registry.h"
#include "tests/unit/check.h"

/* Paths here are short names under /tmp, built into PATH_MAX buffers. */
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define REPOSITORY "imgmount-test/fetcher"
#define BIG_CHUNK_LENGTH (3u << 20)

enum chunk_id {
	CHUNK_RANDOM,        /* random bytes */
	CHUNK_ZERO_DATA,     /* compressed zero bytes, adjacent to CHUNK_RANDOM */
	CHUNK_AFTER_JUNK,    /* after 37 junk bytes */
	CHUNK_TWO_FRAMES,    /* split over two frames */
	CHUNK_SKIPPABLE,     /* range starts with a skippable frame */
	CHUNK_TRAILING,      /* range ends 10 bytes into the next frame */
	CHUNK_NEXT,          /* the frame those 10 bytes belong to */
	CHUNK_BIG1,          /* three adjacent 3 MiB chunks of random bytes */
	CHUNK_BIG2,
	CHUNK_BIG3,
	CHUNK_COUNT,
};

struct test_blob {
	uint8_t *data;
	size_t len;
	size_t cap;
	struct im_digest digest;
	struct im_chunk chunks[CHUNK_COUNT];
	uint8_t *content[CHUNK_COUNT];   /* uncompressed bytes of each chunk */
};

static struct im_registry *registry;
static struct test_blob blob;
static struct im_blob_ref blob_ref;
static char base_dir[PATH_MAX];

/* One cache directory and fetcher per test. */
struct env {
	struct im_chunk_store *store;
	struct im_fetcher *fetcher;
};

struct counters {
	uint64_t requests, from_network, from_cache, verify_failures;
};

static struct counters read_counters(void)
{
	return (struct counters){
		.requests = atomic_load(&im_stats.registry_requests),
		.from_network = atomic_load(&im_stats.chunks_from_network),
		.from_cache = atomic_load(&im_stats.chunks_from_cache),
		.verify_failures = atomic_load(&im_stats.verify_failures),
	};
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static void fill_random(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		rng_state ^= rng_state << 13;
		rng_state ^= rng_state >> 7;
		rng_state ^= rng_state << 17;
		buf[i] = (uint8_t)rng_state;
	}
}

static void blob_append(const void *data, size_t len)
{
	if (blob.len + len > blob.cap) {
		blob.cap = (blob.len + len) * 2;
		blob.data = realloc(blob.data, blob.cap);
		if (!blob.data)
			abort();
	}
	memcpy(blob.data + blob.len, data, len);
	blob.len += len;
}

static void blob_append_frame(const void *src, size_t len)
{
	size_t bound = ZSTD_compressBound(len);
	uint8_t *frame = malloc(bound);
	size_t n = ZSTD_compress(frame, bound, src, len, 3);

	if (ZSTD_isError(n))
		abort();
	blob_append(frame, n);
	free(frame);
}

/* A skippable frame (magic 0x184D2A50, 4-byte little-endian size) that a
 * decoder must step over. */
static void blob_append_skippable(void)
{
	static const uint8_t frame[] = { 0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0,
					 'i', 'm', 'g', 'm' };

	blob_append(frame, sizeof(frame));
}

static uint8_t *new_content(enum chunk_id id, size_t len, bool zeros)
{
	uint8_t *content = calloc(1, len);

	if (!content)
		abort();
	if (!zeros)
		fill_random(content, len);
	blob.content[id] = content;
	blob.chunks[id].length = len;
	im_sha256(content, len, &blob.chunks[id].sha256);
	return content;
}

static void begin_chunk(enum chunk_id id)
{
	blob.chunks[id].blob_offset = blob.len;
}

static void end_chunk(enum chunk_id id)
{
	blob.chunks[id].blob_length = blob.len - blob.chunks[id].blob_offset;
}

static void build_blob(void)
{
	static const uint8_t junk[37] = "this is not a zstd frame, skip it...";
	uint8_t *c;

	c = new_content(CHUNK_RANDOM, 100000, false);
	begin_chunk(CHUNK_RANDOM);
	blob_append_frame(c, 100000);
	end_chunk(CHUNK_RANDOM);

	c = new_content(CHUNK_ZERO_DATA, 65536, true);
	begin_chunk(CHUNK_ZERO_DATA);
	blob_append_frame(c, 65536);
	end_chunk(CHUNK_ZERO_DATA);

	blob_append(junk, sizeof(junk));

	c = new_content(CHUNK_AFTER_JUNK, 200000, false);
	begin_chunk(CHUNK_AFTER_JUNK);
	blob_append_frame(c, 200000);
	end_chunk(CHUNK_AFTER_JUNK);

	c = new_content(CHUNK_TWO_FRAMES, 50000, false);
	begin_chunk(CHUNK_TWO_FRAMES);
	blob_append_frame(c, 20000);
	blob_append_frame(c + 20000, 30000);
	end_chunk(CHUNK_TWO_FRAMES);

	c = new_content(CHUNK_SKIPPABLE, 30000, false);
	begin_chunk(CHUNK_SKIPPABLE);
	blob_append_skippable();
	blob_append_frame(c, 30000);
	end_chunk(CHUNK_SKIPPABLE);

	c = new_content(CHUNK_TRAILING, 40000, false);
	begin_chunk(CHUNK_TRAILING);
	blob_append_frame(c, 40000);
	end_chunk(CHUNK_TRAILING);
	blob.chunks[CHUNK_TRAILING].blob_length += 10;

	c = new_content(CHUNK_NEXT, 45000, false);
	begin_chunk(CHUNK_NEXT);
	blob_append_frame(c, 45000);
	end_chunk(CHUNK_NEXT);

	for (enum chunk_id id = CHUNK_BIG1; id <= CHUNK_BIG3; id++) {
		c = new_content(id, BIG_CHUNK_LENGTH, false);
		begin_chunk(id);
		blob_append_frame(c, BIG_CHUNK_LENGTH);
		end_chunk(id);
	}

	for (size_t i = 0; i < CHUNK_COUNT; i++)
		blob.chunks[i].file_offset = 0;
	im_sha256(blob.data, blob.len, &blob.digest);
}

static void env_open(struct env *e, const char *name)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/%s", base_dir, name);
	e->store = NULL;
	e->fetcher = NULL;
	CHECK_INT(im_chunk_store_open(dir, &e->store), 0);
	CHECK_INT(im_fetcher_new(e->store, &e->fetcher), 0);
}

static void env_close(struct env *e)
{
	im_fetcher_free(e->fetcher);
	im_chunk_store_free(e->store);
}

/* Copy the descriptors of ids into out, in that order. */
static size_t select_chunks(const enum chunk_id *ids, size_t n,
			    struct im_chunk *out, size_t *ret_total)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++) {
		out[i] = blob.chunks[ids[i]];
		total += out[i].length;
	}
	*ret_total = total;
	return n;
}

/* Check that buf contains the content of ids back to back. */
static void check_content(const enum chunk_id *ids, size_t n, const uint8_t *buf)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = blob.chunks[ids[i]].length;

		if (memcmp(buf, blob.content[ids[i]], len) != 0) {
			fprintf(stderr, "content of chunk %d (position %zu) differs\n",
				ids[i], i);
			CHECK(!"chunk content matches");
		}
		buf += len;
	}
}

/* Read ids with the fetcher and check the bytes. Return: the read's result. */
static int read_and_check(struct im_fetcher *fetcher, const enum chunk_id *ids,
			  size_t n)
{
	struct im_chunk chunks[16];
	uint8_t *buf;
	size_t total;
	int r;

	select_chunks(ids, n, chunks, &total);
	buf = malloc(total);
	r = im_fetcher_read(fetcher, &blob_ref, chunks, n, buf);
	if (r == 0)
		check_content(ids, n, buf);
	free(buf);
	return r;
}

static bool chunk_file_exists(const struct env *e, const struct im_digest *d)
{
	char hex[2 * IM_SHA256_LEN + 1];
	char path[PATH_MAX];

	im_digest_format_hex(d, hex);
	snprintf(path, sizeof(path), "%s/chunks/%.2s/%s",
		 im_chunk_store_dir(e->store), hex, hex);
	return access(path, F_OK) == 0;
}

static void test_single_chunk(void)
{
	static const enum chunk_id ids[] = { CHUNK_RANDOM };
	struct counters before = read_counters(), after;
	struct env e;

	env_open(&e, "single_chunk");
	CHECK_INT(read_and_check(e.fetcher, ids, 1), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 1);
	CHECK_INT(after.from_network - before.from_network, 1);
	CHECK(chunk_file_exists(&e, &blob.chunks[CHUNK_RANDOM].sha256));
	env_close(&e);
}

static void test_adjacent_run(void)
{
	/* RANDOM and ZERO_DATA are adjacent: one request. AFTER_JUNK is
	 * separated by junk: a second request. */
	static const enum chunk_id ids[] = { CHUNK_RANDOM, CHUNK_ZERO_DATA,
					     CHUNK_AFTER_JUNK };
	struct counters before = read_counters(), after;
	struct env e;

	env_open(&e, "adjacent_run");
	CHECK_INT(read_and_check(e.fetcher, ids, 3), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 2);
	CHECK_INT(after.from_network - before.from_network, 3);
	env_close(&e);
}

static void test_frame_layouts(void)
{
	static const enum chunk_id ids[] = { CHUNK_TWO_FRAMES, CHUNK_SKIPPABLE,
					     CHUNK_TRAILING, CHUNK_NEXT };
	struct counters before = read_counters(), after;
	struct env e;

	env_open(&e, "frame_layouts");
	for (size_t i = 0; i < IM_ARRAY_SIZE(ids); i++)
		CHECK_INT(read_and_check(e.fetcher, &ids[i], 1), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 4);
	CHECK_INT(after.verify_failures - before.verify_failures, 0);
	env_close(&e);
}

static void test_overlapping_ranges(void)
{
	/* TRAILING's range ends inside NEXT's frame, so the two ranges are
	 * not adjacent and go out as two requests. */
	static const enum chunk_id ids[] = { CHUNK_TRAILING, CHUNK_NEXT };
	struct counters before = read_counters(), after;
	struct env e;

	env_open(&e, "overlapping_ranges");
	CHECK_INT(read_and_check(e.fetcher, ids, 2), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 2);
	env_close(&e);
}

static void test_cache_hits(void)
{
	static const enum chunk_id ids[] = { CHUNK_RANDOM, CHUNK_ZERO_DATA,
					     CHUNK_AFTER_JUNK, CHUNK_TWO_FRAMES };
	struct counters first, second, third;
	struct env e;

	env_open(&e, "cache_hits");
	first = read_counters();
	CHECK_INT(read_and_check(e.fetcher, ids, 4), 0);
	second = read_counters();
	CHECK_INT(second.from_network - first.from_network, 4);

	CHECK_INT(read_and_check(e.fetcher, ids, 4), 0);
	third = read_counters();
	CHECK_INT(third.from_network, second.from_network);
	CHECK_INT(third.requests, second.requests);
	CHECK_INT(third.from_cache - second.from_cache, 4);
	env_close(&e);
}

static void test_cache_shared(void)
{
	/* A second fetcher on the same directory (another mount) hits. */
	static const enum chunk_id ids[] = { CHUNK_AFTER_JUNK };
	struct counters before, after;
	struct env e1, e2;

	env_open(&e1, "cache_shared");
	CHECK_INT(read_and_check(e1.fetcher, ids, 1), 0);
	env_open(&e2, "cache_shared");
	before = read_counters();
	CHECK_INT(read_and_check(e2.fetcher, ids, 1), 0);
	after = read_counters();
	CHECK_INT(after.requests, before.requests);
	CHECK_INT(after.from_cache - before.from_cache, 1);
	env_close(&e2);
	env_close(&e1);
}

static void test_zero_chunk(void)
{
	struct im_chunk chunks[3];
	struct counters before = read_counters(), after;
	uint8_t *buf;
	size_t total;
	struct env e;
	static const enum chunk_id ids[] = { CHUNK_RANDOM, CHUNK_RANDOM,
					     CHUNK_ZERO_DATA };

	env_open(&e, "zero_chunk");
	select_chunks(ids, 3, chunks, &total);
	/* The middle chunk is a hole: no range, no digest to check. */
	chunks[1] = (struct im_chunk){ .length = 5000, .flags = IM_CHUNK_ZEROS };
	total = chunks[0].length + 5000 + chunks[2].length;
	buf = malloc(total);
	memset(buf, 0xaa, total);

	CHECK_INT(im_fetcher_read(e.fetcher, &blob_ref, chunks, 3, buf), 0);
	CHECK(memcmp(buf, blob.content[CHUNK_RANDOM], chunks[0].length) == 0);
	for (size_t i = 0; i < 5000; i++) {
		if (buf[chunks[0].length + i] != 0) {
			CHECK(!"hole is zero-filled");
			break;
		}
	}
	CHECK(memcmp(buf + chunks[0].length + 5000, blob.content[CHUNK_ZERO_DATA],
		     chunks[2].length) == 0);
	/* Chunks 0 and 2 are adjacent in the blob: the hole between them in
	 * the file does not split the run. */
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 1);

	free(buf);
	env_close(&e);
}

static void test_duplicate_in_one_read(void)
{
	static const enum chunk_id ids[] = { CHUNK_NEXT, CHUNK_RANDOM, CHUNK_NEXT };
	struct counters before = read_counters(), after;
	struct env e;

	env_open(&e, "duplicate");
	CHECK_INT(read_and_check(e.fetcher, ids, 3), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 2);
	env_close(&e);
}

static void test_run_split(void)
{
	/* Three adjacent 3 MiB chunks exceed one 8 MiB request: two requests. */
	static const enum chunk_id ids[] = { CHUNK_BIG1, CHUNK_BIG2, CHUNK_BIG3 };
	struct counters before = read_counters(), after;
	struct env e;

	env_open(&e, "run_split");
	CHECK_INT(read_and_check(e.fetcher, ids, 3), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 2);
	CHECK_INT(after.from_network - before.from_network, 3);
	env_close(&e);
}

static void test_digest_mismatch(void)
{
	struct im_chunk chunk = blob.chunks[CHUNK_AFTER_JUNK];
	struct counters before = read_counters(), after;
	struct im_digest actual = chunk.sha256;
	uint8_t *buf = malloc(chunk.length);
	struct env e;

	env_open(&e, "digest_mismatch");
	chunk.sha256.bytes[5] ^= 0x40;

	CHECK_INT(im_fetcher_read(e.fetcher, &blob_ref, &chunk, 1, buf), -EIO);
	after = read_counters();
	CHECK_INT(after.verify_failures - before.verify_failures, 1);
	CHECK_INT(after.from_network, before.from_network);
	CHECK(!chunk_file_exists(&e, &chunk.sha256));
	CHECK(!chunk_file_exists(&e, &actual));

	/* A second failure is counted again (and not logged again). */
	CHECK_INT(im_fetcher_read(e.fetcher, &blob_ref, &chunk, 1, buf), -EIO);
	CHECK_INT(read_counters().verify_failures - before.verify_failures, 2);

	free(buf);
	env_close(&e);
}

static void test_short_range(void)
{
	struct im_chunk chunk = blob.chunks[CHUNK_AFTER_JUNK];
	uint8_t *buf = malloc(chunk.length);
	struct env e;

	env_open(&e, "short_range");
	chunk.blob_length -= 100;
	CHECK_INT(im_fetcher_read(e.fetcher, &blob_ref, &chunk, 1, buf), -EIO);
	CHECK(!chunk_file_exists(&e, &chunk.sha256));

	/* A range that starts in the junk is not zstd data. */
	chunk = blob.chunks[CHUNK_AFTER_JUNK];
	chunk.blob_offset -= 20;
	chunk.blob_length += 20;
	CHECK_INT(im_fetcher_read(e.fetcher, &blob_ref, &chunk, 1, buf), -EIO);
	CHECK(!chunk_file_exists(&e, &chunk.sha256));

	free(buf);
	env_close(&e);
}

static void test_invalid_descriptor(void)
{
	struct im_chunk chunk = blob.chunks[CHUNK_RANDOM];
	struct counters before = read_counters();
	uint8_t *buf = malloc(chunk.length);
	struct env e;

	env_open(&e, "invalid_descriptor");
	chunk.blob_offset = blob.len - 10;
	CHECK_INT(im_fetcher_read(e.fetcher, &blob_ref, &chunk, 1, buf), -EIO);

	chunk = blob.chunks[CHUNK_RANDOM];
	chunk.blob_offset = UINT64_MAX - 5;
	CHECK_INT(im_fetcher_read(e.fetcher, &blob_ref, &chunk, 1, buf), -EIO);

	chunk = blob.chunks[CHUNK_RANDOM];
	chunk.length = 0;
	CHECK_INT(im_fetcher_read(e.fetcher, &blob_ref, &chunk, 1, buf), -EIO);

	CHECK_INT(read_counters().requests, before.requests);
	free(buf);
	env_close(&e);
}

static void test_missing_blob(void)
{
	struct im_chunk chunk = blob.chunks[CHUNK_RANDOM];
	struct im_blob_ref missing = blob_ref;
	uint8_t *buf = malloc(chunk.length);
	struct env e;

	env_open(&e, "missing_blob");
	im_sha256("no such blob", 12, &missing.digest);
	CHECK_INT(im_fetcher_read(e.fetcher, &missing, &chunk, 1, buf), -EIO);
	CHECK(!chunk_file_exists(&e, &chunk.sha256));
	free(buf);
	env_close(&e);
}

struct reader {
	struct im_fetcher *fetcher;
	pthread_barrier_t *barrier;
	enum chunk_id ids[CHUNK_COUNT];
	size_t n;
	int result;
};

/* Read ids[0..n) with the following chunks next[0..n_next) through
 * im_fetcher_read_extended() and check the requested bytes. */
static int read_extended(struct im_fetcher *fetcher, const enum chunk_id *ids, size_t n,
			 const enum chunk_id *next, size_t n_next)
{
	struct im_chunk chunks[16];
	uint8_t *buf;
	size_t total, next_total;
	int r;

	select_chunks(ids, n, chunks, &total);
	select_chunks(next, n_next, chunks + n, &next_total);
	buf = malloc(total);
	r = im_fetcher_read_extended(fetcher, &blob_ref, chunks, n, n_next, buf);
	if (r == 0)
		check_content(ids, n, buf);
	free(buf);
	return r;
}

static void test_extend_with_following(void)
{
	/* SKIPPABLE follows TWO_FRAMES in the blob, and TRAILING follows
	 * SKIPPABLE: one request fetches all three. */
	static const enum chunk_id ids[] = { CHUNK_TWO_FRAMES };
	static const enum chunk_id next[] = { CHUNK_SKIPPABLE, CHUNK_TRAILING };
	static const enum chunk_id later[] = { CHUNK_SKIPPABLE, CHUNK_TRAILING };
	struct counters before = read_counters(), after;
	struct env e;

	env_open(&e, "extend_following");
	CHECK_INT(read_extended(e.fetcher, ids, 1, next, 2), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 1);
	CHECK_INT(after.from_network - before.from_network, 3);
	CHECK(chunk_file_exists(&e, &blob.chunks[CHUNK_SKIPPABLE].sha256));
	CHECK(chunk_file_exists(&e, &blob.chunks[CHUNK_TRAILING].sha256));

	before = after;
	CHECK_INT(read_and_check(e.fetcher, later, 2), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 0);
	CHECK_INT(after.from_cache - before.from_cache, 2);
	env_close(&e);
}

static void test_extend_stops_at_cached(void)
{
	static const enum chunk_id cached[] = { CHUNK_SKIPPABLE };
	static const enum chunk_id ids[] = { CHUNK_TWO_FRAMES };
	static const enum chunk_id next[] = { CHUNK_SKIPPABLE, CHUNK_TRAILING };
	struct counters before, after;
	struct env e;

	env_open(&e, "extend_cached");
	CHECK_INT(read_and_check(e.fetcher, cached, 1), 0);

	before = read_counters();
	CHECK_INT(read_extended(e.fetcher, ids, 1, next, 2), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 1);
	CHECK_INT(after.from_network - before.from_network, 1);
	CHECK(!chunk_file_exists(&e, &blob.chunks[CHUNK_TRAILING].sha256));
	env_close(&e);
}

static void test_extend_skips_cached_request(void)
{
	/* A read served from the store sends no request for its following
	 * chunks. */
	static const enum chunk_id ids[] = { CHUNK_TWO_FRAMES };
	static const enum chunk_id next[] = { CHUNK_SKIPPABLE };
	struct counters before, after;
	struct env e;

	env_open(&e, "extend_cached_request");
	CHECK_INT(read_and_check(e.fetcher, ids, 1), 0);

	before = read_counters();
	CHECK_INT(read_extended(e.fetcher, ids, 1, next, 1), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 0);
	CHECK(!chunk_file_exists(&e, &blob.chunks[CHUNK_SKIPPABLE].sha256));
	env_close(&e);
}

static void test_extend_bounded(void)
{
	/* BIG1 alone is 3 MiB compressed, past the 1 MiB extension bound, so
	 * BIG2 is not added. */
	static const enum chunk_id ids[] = { CHUNK_BIG1 };
	static const enum chunk_id next[] = { CHUNK_BIG2 };
	struct counters before = read_counters(), after;
	struct env e;

	env_open(&e, "extend_bounded");
	CHECK_INT(read_extended(e.fetcher, ids, 1, next, 1), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 1);
	CHECK_INT(after.from_network - before.from_network, 1);
	CHECK(!chunk_file_exists(&e, &blob.chunks[CHUNK_BIG2].sha256));
	env_close(&e);
}

static void test_prefetch_in_background(void)
{
	static const enum chunk_id ids[] = { CHUNK_TWO_FRAMES, CHUNK_SKIPPABLE };
	struct counters before = read_counters(), after;
	struct im_chunk chunks[2];
	size_t total;
	struct env e;
	int waited_ms = 0;

	env_open(&e, "prefetch");
	select_chunks(ids, 2, chunks, &total);
	CHECK_INT(im_fetcher_prefetch(e.fetcher, &blob_ref, chunks, 2), 0);

	/* The workers store the chunks; wait up to 10 s for both files. */
	while (waited_ms < 10000 &&
	       !(chunk_file_exists(&e, &chunks[0].sha256) &&
		 chunk_file_exists(&e, &chunks[1].sha256))) {
		usleep(10000);
		waited_ms += 10;
	}
	CHECK(chunk_file_exists(&e, &chunks[0].sha256));
	CHECK(chunk_file_exists(&e, &chunks[1].sha256));
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 1);

	before = after;
	CHECK_INT(read_and_check(e.fetcher, ids, 2), 0);
	after = read_counters();
	CHECK_INT(after.requests - before.requests, 0);
	env_close(&e);
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;

	pthread_barrier_wait(rd->barrier);
	rd->result = read_and_check(rd->fetcher, rd->ids, rd->n);
	return NULL;
}

static void run_readers(struct reader *readers, size_t count)
{
	pthread_t threads[16];
	pthread_barrier_t barrier;

	pthread_barrier_init(&barrier, NULL, (unsigned)count);
	for (size_t i = 0; i < count; i++) {
		readers[i].barrier = &barrier;
		CHECK(pthread_create(&threads[i], NULL, reader_main, &readers[i]) == 0);
	}
	for (size_t i = 0; i < count; i++) {
		pthread_join(threads[i], NULL);
		CHECK_INT(readers[i].result, 0);
	}
	pthread_barrier_destroy(&barrier);
}

static void test_single_flight(void)
{
	struct reader readers[16];
	struct counters before = read_counters(), after;
	struct env e;

	env_open(&e, "single_flight");
	for (size_t i = 0; i < 16; i++)
		readers[i] = (struct reader){ .fetcher = e.fetcher,
					      .ids = { CHUNK_BIG1 }, .n = 1 };
	run_readers(readers, 16);

	after = read_counters();
	CHECK_INT(after.requests - before.requests, 1);
	CHECK_INT(after.from_network - before.from_network, 1);
	env_close(&e);
}

static void test_crossed_readers(void)
{
	/* Readers list the same chunks in different orders, so each owns some
	 * chunks that others wait for. All must finish with the right bytes. */
	static const enum chunk_id pool[] = { CHUNK_RANDOM, CHUNK_ZERO_DATA,
					      CHUNK_AFTER_JUNK, CHUNK_TWO_FRAMES,
					      CHUNK_SKIPPABLE, CHUNK_TRAILING,
					      CHUNK_NEXT };
	const size_t pool_size = IM_ARRAY_SIZE(pool);

	for (int round = 0; round < 5; round++) {
		struct reader readers[8];
		char name[32];
		struct env e;

		snprintf(name, sizeof(name), "crossed_%d", round);
		env_open(&e, name);
		for (size_t i = 0; i < 8; i++) {
			readers[i] = (struct reader){ .fetcher = e.fetcher, .n = pool_size };
			for (size_t k = 0; k < pool_size; k++) {
				size_t pick = i % 2 ? pool_size - 1 - k : k;

				readers[i].ids[k] = pool[(pick + i) % pool_size];
			}
		}
		run_readers(readers, 8);
		env_close(&e);
	}
}

static int setup(const char *host)
{
	struct im_registry_options opts = { .plain_http = true };
	int r;

	r = im_registry_new(host, &opts, &registry);
	if (r < 0) {
		fprintf(stderr, "cannot create a registry client for '%s': %s\n",
			host, strerror(-r));
		return r;
	}

	build_blob();
	r = im_registry_push_blob_buffer(registry, REPOSITORY, blob.data, blob.len,
					 &blob.digest);
	if (r < 0) {
		fprintf(stderr, "cannot push the test blob (%zu bytes) to '%s': %s\n",
			blob.len, host, strerror(-r));
		return r;
	}

	blob_ref = (struct im_blob_ref){
		.registry = registry,
		.repository = REPOSITORY,
		.digest = blob.digest,
		.size = blob.len,
	};

	snprintf(base_dir, sizeof(base_dir), "/tmp/imgmount-test-fetcher-XXXXXX");
	if (!mkdtemp(base_dir)) {
		perror("mkdtemp");
		return -errno;
	}
	return 0;
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base_dir);
	if (base_dir[0] && system(cmd) != 0)
		fprintf(stderr, "cannot remove '%s'\n", base_dir);
	im_registry_free(registry);
	for (size_t i = 0; i < CHUNK_COUNT; i++)
		free(blob.content[i]);
	free(blob.data);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s HOST:PORT (a plain-HTTP registry without auth)\n",
			argv[0]);
		return 2;
	}
	if (setup(argv[1]) < 0)
		return 1;

	RUN_TEST(test_single_chunk);
	RUN_TEST(test_adjacent_run);
	RUN_TEST(test_frame_layouts);
	RUN_TEST(test_overlapping_ranges);
	RUN_TEST(test_cache_hits);
	RUN_TEST(test_cache_shared);
	RUN_TEST(test_zero_chunk);
	RUN_TEST(test_duplicate_in_one_read);
	RUN_TEST(test_run_split);
	RUN_TEST(test_digest_mismatch);
	RUN_TEST(test_short_range);
	RUN_TEST(test_invalid_descriptor);
	RUN_TEST(test_missing_blob);
	RUN_TEST(test_single_flight);
	RUN_TEST(test_crossed_readers);
	RUN_TEST(test_extend_with_following);
	RUN_TEST(test_extend_stops_at_cached);
	RUN_TEST(test_extend_skips_cached_request);
	RUN_TEST(test_extend_bounded);
	RUN_TEST(test_prefetch_in_background);

	teardown();
	return check_exit_status();
}
