/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch scheduler. One im_fetcher_read() call goes through these steps:
 *   1. zero chunks are filled, and the memory cache (if set) and then the
 *      chunk store are tried for the rest. If a requested chunk is still
 *      missing, the caller's on_miss runs;
 *   2. each chunk still missing joins the single-flight table, which makes
 *      this call the chunk's owner or a waiter on another call's fetch;
 *   3. each owned chunk's cross-process lock is tried. A chunk that
 *      another process is fetching is put off, and one that another
 *      process has stored meanwhile is read from the store. Owned chunks
 *      whose compressed ranges are adjacent in the blob are fetched
 *      together, one range request per run of up to RUN_MAX_BYTES. Then
 *      the put-off chunks are waited for one at a time and read from the
 *      store, or fetched when the other process failed;
 *   4. each chunk is decompressed, checked against its SHA-256, stored, and
 *      published to its waiters;
 *   5. this call then waits for the chunks other calls own.
 * In step 3 the run that ends with the last requested chunk also takes the
 * optional following chunks that claim_optional() gets without waiting.
 * Background prefetch (prefetch_job) claims and fetches optional chunks only.
 * A call finishes its own flights before it waits on others', so two calls
 * that each own a chunk the other needs cannot deadlock. It waits for a
 * cross-process lock only while it holds no other, so two daemons cannot
 * deadlock either.
 *
 * Counters: chunks_from_cache and chunks_from_network count the chunks this
 * call read from the store or fetched itself. A chunk served from another
 * call's fetch, or listed twice in one call and copied, is counted in
 * neither, and a memory cache hit only in memory_cache_hits.
 */
#include "cache/fetcher.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cache/chunk_decompress.h"
#include "cache/flight.h"
#include "cache/memory_cache.h"
#include "cache/prefetch_pool.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "registry/registry.h"

/* Largest compressed bytes fetched in one range request. A single chunk
 * whose range is larger is fetched alone. */
#define RUN_MAX_BYTES (8u << 20)

/* Compressed bytes up to which a missing run that ends with a call's last
 * requested chunk is extended with the file's following chunks. A cold
 * start then pays about one round trip per MiB instead of one per chunk. */
#define EXTEND_MAX_BYTES (1u << 20)

/* Largest span of one background range request, so that an on-demand
 * read waiting on a prefetched chunk waits for a short fetch, and a large
 * prefetch is spread over several workers. */
#define PREFETCH_RUN_MAX_BYTES (512u << 10)

/* Largest hole between two chunks that one background range request
 * spans. Between the files of one directory, a zstd:chunked layer contains
 * the next file's tar header frame of usually a few hundred compressed
 * bytes, and fetching it costs less than a round trip of its own. */
#define PREFETCH_GAP_MAX_BYTES (16u << 10)

/* Largest uncompressed bytes of optional chunks in one call, which bounds
 * its scratch buffer. A chunk past it is left to a later read. */
#define OPTIONAL_MAX_BYTES (32u << 20)

/* Prefetch worker threads, so at most this many background requests are
 * in flight. Each waits on the network most of the time. Four leave most
 * of a host's default 16 request slots (registry/registry.h) to on-demand
 * reads.
 * NOTE: with 8 workers, test_registry_http2.py saw 49 connections for 59
 * requests, because the registry client keeps only a few idle connections
 * and closes the rest. More workers need a larger connection cache. */
#define PREFETCH_THREADS 4

/* Largest compressed range accepted for one chunk: twice the largest chunk,
 * far above zstd's worst-case expansion, so that a bad index cannot make
 * the fetcher allocate without bound. */
#define CHUNK_RANGE_MAX_BYTES (2ull * IM_CHUNK_MAX_LENGTH)

/* Chunk digests whose verification failure was already logged; later
 * failures of new digests are only counted once this many are listed. */
#define REPORTED_MAX 256

struct im_fetcher {
	struct im_chunk_store *store;
	struct im_flight_table *flights;
	struct im_dctx_pool *dctx_pool;
	struct im_memory_cache *memory;           /* may be NULL */
	/* Started by the first im_fetcher_prefetch(), not by im_fetcher_new().
	 * The mount daemon forks after making its fetcher, and a fork keeps only
	 * the calling thread. Workers started earlier would not exist in the
	 * daemon, and joining them at exit would hang. */
	struct im_prefetch_pool *prefetch;        /* protected by prefetch_lock */
	pthread_mutex_t prefetch_lock;

	pthread_mutex_t reported_lock;
	struct im_digest reported[REPORTED_MAX];  /* protected by reported_lock */
	unsigned reported_count;                  /* protected by reported_lock */
	bool reported_full;                       /* protected by reported_lock */
};

enum slot_state {
	SLOT_DONE,       /* served (zeros, store, fetch) or failed: see result */
	SLOT_MISSING,    /* not in the store, not yet in the flight table */
	SLOT_FETCH,      /* this call owns the chunk's flight */
	SLOT_WAIT,       /* another call owns the chunk's flight */
	SLOT_DUPLICATE,  /* same chunk as slot `source` of this call */
	SLOT_DEFERRED,   /* owned, but another process is fetching it */
};

/* Per-chunk state of one read or background prefetch. */
struct slot {
	enum slot_state state;
	int result;           /* 0 or -EIO once SLOT_DONE */
	uint8_t *out;         /* where the chunk's bytes go */
	struct im_flight *flight;
	size_t source;
	int lock_fd;          /* cross-process fetch lock, or -1 */
};

/*
 * One im_fetcher_read() or background prefetch. chunks[0..n) are requested
 * and land in buf. chunks[n..n + n_optional) are fetched only when they
 * cost no extra round trip or wait, and land in the scratch buffer.
 */
struct read_call {
	struct im_fetcher *fetcher;
	const struct im_blob_ref *blob;
	const struct im_chunk *chunks;
	size_t n;
	size_t n_optional;
	uint8_t *buf;
	uint8_t *scratch;
	struct slot *slots;
};

static void prefetch_job(void *context, const struct im_blob_ref *blob,
			 const struct im_chunk *chunks, size_t n);

int im_fetcher_new(struct im_chunk_store *store, struct im_fetcher **ret)
{
	struct im_fetcher *f;
	int r;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->store = store;
	pthread_mutex_init(&f->reported_lock, NULL);
	pthread_mutex_init(&f->prefetch_lock, NULL);

	r = im_flight_table_new(&f->flights);
	if (r < 0)
		goto fail;
	r = im_dctx_pool_new(&f->dctx_pool);
	if (r < 0)
		goto fail;

	*ret = f;
	return 0;

fail:
	im_fetcher_free(f);
	return r;
}

void im_fetcher_set_memory_cache(struct im_fetcher *f, struct im_memory_cache *mc)
{
	f->memory = mc;
}

void im_fetcher_free(struct im_fetcher *f)
{
	if (!f)
		return;
	/* First, because running jobs use everything else. */
	im_prefetch_pool_free(f->prefetch);
	im_flight_table_free(f->flights);
	im_dctx_pool_free(f->dctx_pool);
	pthread_mutex_destroy(&f->prefetch_lock);
	pthread_mutex_destroy(&f->reported_lock);
	free(f);
}

/* Return true the first time a digest is passed, false after that. */
static bool first_report(struct im_fetcher *f, const struct im_digest *digest)
{
	bool first = true;

	pthread_mutex_lock(&f->reported_lock);
	for (unsigned i = 0; i < f->reported_count; i++) {
		if (im_digest_equal(&f->reported[i], digest)) {
			first = false;
			break;
		}
	}
	if (first && f->reported_count < REPORTED_MAX) {
		f->reported[f->reported_count++] = *digest;
	} else if (first && !f->reported_full) {
		f->reported_full = true;
		im_warn("more than %u chunks failed verification: further failures "
			"are only counted in verify_failures", REPORTED_MAX);
		first = false;
	} else {
		first = false;
	}
	pthread_mutex_unlock(&f->reported_lock);
	return first;
}

static const char *check_chunk(const struct im_blob_ref *blob,
			       const struct im_chunk *c)
{
	uint64_t end;

	if (c->length == 0 || c->length > IM_CHUNK_MAX_LENGTH)
		return "length out of range";
	if (c->flags & IM_CHUNK_ZEROS)
		return NULL;
	if (c->blob_length == 0 || c->blob_length > CHUNK_RANGE_MAX_BYTES)
		return "compressed length out of range";
	if (im_add_u64(c->blob_offset, c->blob_length, &end) < 0)
		return "compressed range overflows";
	if (blob->size != 0 && end > blob->size)
		return "compressed range ends past the blob";
	return NULL;
}

/* Check every descriptor before any byte is written to buf. */
static int check_chunks(const struct im_blob_ref *blob,
			const struct im_chunk *chunks, size_t n)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++) {
		const char *reason = check_chunk(blob, &chunks[i]);

		if (!reason && im_add_u64(total, chunks[i].length, &total) < 0)
			reason = "total length overflows";
		if (!reason && total > SIZE_MAX)
			reason = "total length exceeds the address space";
		if (reason) {
			char chunk_text[IM_DIGEST_STRING_LEN];
			char blob_text[IM_DIGEST_STRING_LEN];

			im_digest_format(&chunks[i].sha256, chunk_text);
			im_digest_format(&blob->digest, blob_text);
			im_err("chunk %s of blob %s at blob offset %" PRIu64
			       ": invalid chunk descriptor: %s", chunk_text,
			       blob_text, chunks[i].blob_offset, reason);
			return -EIO;
		}
	}
	return 0;
}

/* Try the store for slot i. Return: true on a hit, counted. */
static bool read_from_store(struct read_call *call, size_t i)
{
	const struct im_chunk *c = &call->chunks[i];
	uint8_t *out = call->slots[i].out;

	if (im_chunk_store_get(call->fetcher->store, &c->sha256, out, c->length) < 0)
		return false;

	if (call->fetcher->memory)
		im_memory_cache_put(call->fetcher->memory, &c->sha256, out, c->length);
	im_stats_add(chunks_from_cache, 1);
	im_stats_add(bytes_from_cache, c->length);
	return true;
}

/* Try the memory cache for slot i. Return: true on a hit, counted. */
static bool read_from_memory(struct read_call *call, size_t i)
{
	const struct im_chunk *c = &call->chunks[i];
	uint8_t *out = call->slots[i].out;

	if (!call->fetcher->memory ||
	    !im_memory_cache_get(call->fetcher->memory, &c->sha256, out, c->length))
		return false;

	im_stats_add(memory_cache_hits, 1);
	return true;
}

/* Step 1: zero chunks, memory and store hits. */
static void read_local(struct read_call *call)
{
	size_t offset = 0;

	for (size_t i = 0; i < call->n; i++) {
		const struct im_chunk *c = &call->chunks[i];
		struct slot *slot = &call->slots[i];

		slot->out = call->buf + offset;
		slot->lock_fd = -1;
		offset += c->length;

		if (c->flags & IM_CHUNK_ZEROS) {
			memset(slot->out, 0, c->length);
			slot->state = SLOT_DONE;
		} else if (read_from_memory(call, i)) {
			slot->state = SLOT_DONE;
		} else if (read_from_store(call, i)) {
			slot->state = SLOT_DONE;
		} else {
			slot->state = SLOT_MISSING;
		}
	}
}

/* Step 2: join or start the flight of every missing chunk. */
static void join_flights(struct read_call *call)
{
	struct im_flight_table *flights = call->fetcher->flights;

	for (size_t i = 0; i < call->n; i++) {
		const struct im_chunk *c = &call->chunks[i];
		struct slot *slot = &call->slots[i];
		int role;

		if (slot->state != SLOT_MISSING)
			continue;

		role = im_flight_join(flights, &c->sha256, c->length, call, i,
				      &slot->flight, &slot->source);
		switch (role) {
		case IM_FLIGHT_STARTED:
			/* Another call may have stored the chunk and finished its
			 * flight between our store miss and the join. It stores
			 * before it finishes, so a second look finds it. */
			slot->state = SLOT_FETCH;
			if (read_from_store(call, i)) {
				slot->state = SLOT_DONE;
				im_flight_finish(flights, slot->flight, 0, slot->out);
			}
			break;
		case IM_FLIGHT_WAITING:
			slot->state = SLOT_WAIT;
			break;
		case IM_FLIGHT_DUPLICATE:
			slot->state = SLOT_DUPLICATE;
			break;
		default:
			im_log_errno(role, "cannot track the fetch of a chunk");
			slot->state = SLOT_DONE;
			slot->result = -EIO;
			break;
		}
	}
}

static void report_bad_chunk(struct read_call *call, const struct im_chunk *c,
			     const char *what)
{
	char chunk_text[IM_DIGEST_STRING_LEN];
	char blob_text[IM_DIGEST_STRING_LEN];

	if (!first_report(call->fetcher, &c->sha256))
		return;

	im_digest_format(&c->sha256, chunk_text);
	im_digest_format(&call->blob->digest, blob_text);
	im_err("chunk %s of blob %s at blob offset %" PRIu64 ": %s",
	       chunk_text, blob_text, c->blob_offset, what);
}

/* Step 4 for one chunk: decompress src into out and verify it. */
static int decode_chunk(struct read_call *call, const struct im_chunk *c,
			const uint8_t *src, uint8_t *out)
{
	char detail[160];
	const char *reason = NULL;
	struct im_digest actual;
	int r;

	r = im_chunk_decompress(call->fetcher->dctx_pool, src, c->blob_length,
				out, c->length, &reason);
	if (r == -ENOMEM) {
		im_log_errno(r, "cannot decompress a chunk");
		return -EIO;
	}
	if (r < 0) {
		snprintf(detail, sizeof(detail), "invalid zstd data: %s", reason);
		report_bad_chunk(call, c, detail);
		return -EIO;
	}

	im_sha256(out, c->length, &actual);
	if (!im_digest_equal(&actual, &c->sha256)) {
		char actual_text[IM_DIGEST_STRING_LEN];

		im_digest_format(&actual, actual_text);
		snprintf(detail, sizeof(detail), "digest mismatch, got %s", actual_text);
		im_stats_add(verify_failures, 1);
		report_bad_chunk(call, c, detail);
		return -EIO;
	}
	return 0;
}

static void log_run_failure(struct read_call *call, uint64_t offset,
			    uint64_t length, size_t count, int error)
{
	char blob_text[IM_DIGEST_STRING_LEN];

	im_digest_format(&call->blob->digest, blob_text);
	im_log_errno(error, "fetch of blob %s range %" PRIu64 "+%" PRIu64
		     " (%zu chunk%s) from %s/%s failed", blob_text, offset, length,
		     count, count == 1 ? "" : "s",
		     im_registry_host(call->blob->registry), call->blob->repository);
}

static void fetch_run(struct read_call *call, const size_t *idx, size_t count,
		      uint64_t run_length);

/* Record the outcome of an owned chunk and publish it to its waiters. The
 * chunk is stored first, so a call that joins later finds it there. */
static void finish_owned(struct read_call *call, size_t i, int result)
{
	const struct im_chunk *c = &call->chunks[i];
	struct slot *slot = &call->slots[i];
	uint8_t *out = slot->out;

	if (result == 0) {
		/* A failed put is counted and logged by the store; the
		 * verified bytes are served anyway. */
		im_chunk_store_put(call->fetcher->store, &c->sha256, out, c->length);
		if (call->fetcher->memory)
			im_memory_cache_put(call->fetcher->memory, &c->sha256, out, c->length);
		im_stats_add(chunks_from_network, 1);
		im_stats_add(bytes_from_network, c->length);
	}

	/* Stored first, then unlocked: a process waiting on the lock finds
	 * the chunk in the store. */
	im_chunk_store_unlock_chunk(call->fetcher->store, &c->sha256, slot->lock_fd);
	slot->lock_fd = -1;
	slot->state = SLOT_DONE;
	slot->result = result < 0 ? -EIO : 0;
	im_flight_finish(call->fetcher->flights, slot->flight, slot->result, out);
}

/*
 * Take slot i's cross-process lock, waiting for it when wait is true.
 * Return: true when the chunk is done (another process stored it), false
 * when this call must fetch it; with wait false and the lock held
 * elsewhere, the slot becomes SLOT_DEFERRED. A cache where lock files
 * cannot be created (read-only, full) is fetched from without a lock.
 */
static bool lock_owned(struct read_call *call, size_t i, bool wait)
{
	const struct im_chunk *c = &call->chunks[i];
	struct slot *slot = &call->slots[i];
	int fd;

	fd = im_chunk_store_lock_chunk(call->fetcher->store, &c->sha256, wait);
	if (fd == -EWOULDBLOCK && !wait) {
		slot->state = SLOT_DEFERRED;
		return false;
	}
	slot->state = SLOT_FETCH;
	if (fd < 0)
		return false;
	slot->lock_fd = fd;

	if (!read_from_store(call, i))
		return false;
	im_chunk_store_unlock_chunk(call->fetcher->store, &c->sha256, fd);
	slot->lock_fd = -1;
	slot->state = SLOT_DONE;
	im_flight_finish(call->fetcher->flights, slot->flight, 0, slot->out);
	return true;
}

/* Step 3, last part: chunks another process was fetching, one at a time. */
static void fetch_deferred(struct read_call *call)
{
	for (size_t i = 0; i < call->n; i++) {
		if (call->slots[i].state != SLOT_DEFERRED)
			continue;
		if (lock_owned(call, i, true))
			continue;
		fetch_run(call, &i, 1, call->chunks[i].blob_length);
	}
}

/* Steps 3 and 4 for the owned slots idx[0..count), whose compressed ranges
 * are adjacent and together run_length bytes. */
static void fetch_run(struct read_call *call, const size_t *idx, size_t count,
		      uint64_t run_length)
{
	const struct im_blob_ref *blob = call->blob;
	uint64_t run_offset = call->chunks[idx[0]].blob_offset;
	_cleanup_free_ uint8_t *compressed = NULL;
	int r;

	compressed = malloc(run_length);
	if (!compressed)
		r = -ENOMEM;
	else
		r = im_registry_get_blob_range(blob->registry, blob->repository,
					       &blob->digest, run_offset, run_length,
					       compressed);
	if (r < 0)
		log_run_failure(call, run_offset, run_length, count, r);

	for (size_t k = 0; k < count; k++) {
		const struct im_chunk *c = &call->chunks[idx[k]];
		uint8_t *out = call->slots[idx[k]].out;
		int chunk_r = r;

		if (chunk_r == 0)
			chunk_r = decode_chunk(call, c,
					       compressed + (c->blob_offset - run_offset),
					       out);
		finish_owned(call, idx[k], chunk_r);
	}
}

static bool ranges_adjacent(const struct im_chunk *a, const struct im_chunk *b)
{
	/* check_chunks() ruled out overflow of a's end. */
	return a->blob_offset + a->blob_length == b->blob_offset;
}

/*
 * Whether chunk b can join a background run that starts at run_offset and
 * ends with chunk a: b starts at or after a's end, at most
 * PREFETCH_GAP_MAX_BYTES later, and the run then spans at most
 * PREFETCH_RUN_MAX_BYTES. The chunks were checked by check_chunk().
 */
static bool joins_prefetch_run(uint64_t run_offset, const struct im_chunk *a,
			       const struct im_chunk *b)
{
	uint64_t a_end = a->blob_offset + a->blob_length;

	return b->blob_offset >= a_end &&
	       b->blob_offset - a_end <= PREFETCH_GAP_MAX_BYTES &&
	       b->blob_offset + b->blob_length - run_offset <= PREFETCH_RUN_MAX_BYTES;
}

/*
 * Claim optional slot i without waiting: try its cross-process lock, then
 * the store, then a new flight. The memory cache is not consulted. A chunk
 * in it is normally in the store too, and fetching it again wastes bytes
 * but serves nothing wrong.
 * Return: true when this call owns the flight and must fetch the chunk.
 */
static bool claim_optional(struct read_call *call, size_t i)
{
	struct im_fetcher *f = call->fetcher;
	const struct im_chunk *c = &call->chunks[i];
	struct slot *slot = &call->slots[i];
	int fd, role;

	if (c->flags & IM_CHUNK_ZEROS)
		return false;

	/* As in lock_owned(), a cache without lock files is fetched from
	 * unlocked. */
	fd = im_chunk_store_lock_chunk(f->store, &c->sha256, false);
	if (fd == -EWOULDBLOCK)
		return false;
	if (fd < 0)
		fd = -1;

	if (im_chunk_store_get(f->store, &c->sha256, slot->out, c->length) == 0) {
		im_chunk_store_unlock_chunk(f->store, &c->sha256, fd);
		return false;
	}
	role = im_flight_try_start(f->flights, &c->sha256, c->length, call, i,
				   &slot->flight);
	if (role != IM_FLIGHT_STARTED) {
		im_chunk_store_unlock_chunk(f->store, &c->sha256, fd);
		return false;
	}

	slot->lock_fd = fd;
	slot->state = SLOT_FETCH;
	return true;
}

/*
 * Append to the run idx[0..*count) the optional chunks that follow it in
 * the blob, while they are adjacent, missing and unclaimed, and the run
 * stays within max_bytes. Stop at the first that is not.
 */
static void extend_run(struct read_call *call, size_t *idx, size_t *count,
		       uint64_t *run_length, uint64_t max_bytes)
{
	size_t end = call->n + call->n_optional;

	for (size_t i = call->n; i < end; i++) {
		const struct im_chunk *prev = &call->chunks[idx[*count - 1]];
		const struct im_chunk *next = &call->chunks[i];

		if (!ranges_adjacent(prev, next) ||
		    *run_length + next->blob_length > max_bytes)
			break;
		if (!claim_optional(call, i))
			break;
		idx[(*count)++] = i;
		*run_length += next->blob_length;
	}
}

/*
 * Step 3: group the owned slots, in file order, into runs of adjacent
 * compressed ranges, and fetch each run. The run that ends with the last
 * requested chunk is extended with optional chunks to EXTEND_MAX_BYTES.
 */
static void fetch_owned(struct read_call *call)
{
	_cleanup_free_ size_t *idx = NULL;
	size_t count = 0;

	idx = calloc(call->n + call->n_optional, sizeof(*idx));
	if (!idx)
		im_log_errno(-ENOMEM, "cannot schedule chunk fetches");

	for (size_t i = 0; i < call->n; i++) {
		if (call->slots[i].state != SLOT_FETCH)
			continue;
		if (lock_owned(call, i, false) || call->slots[i].state == SLOT_DEFERRED)
			continue;
		/* Every owned flight must be finished, even on failure, or its
		 * waiters would hang. */
		if (idx)
			idx[count++] = i;
		else
			finish_owned(call, i, -ENOMEM);
	}

	for (size_t start = 0, end; start < count; start = end) {
		uint64_t run_length = call->chunks[idx[start]].blob_length;

		for (end = start + 1; end < count; end++) {
			const struct im_chunk *prev = &call->chunks[idx[end - 1]];
			const struct im_chunk *next = &call->chunks[idx[end]];

			if (!ranges_adjacent(prev, next) ||
			    run_length + next->blob_length > RUN_MAX_BYTES)
				break;
			run_length += next->blob_length;
		}
		if (end == count && idx[end - 1] == call->n - 1) {
			extend_run(call, idx, &count, &run_length, EXTEND_MAX_BYTES);
			end = count;
		}
		fetch_run(call, idx + start, end - start, run_length);
	}

	fetch_deferred(call);
}

/* Copy chunks listed twice in this call from the slot that fetched them. */
static void copy_duplicates(struct read_call *call)
{
	for (size_t i = 0; i < call->n; i++) {
		struct slot *slot = &call->slots[i];
		const struct slot *source = &call->slots[slot->source];

		if (slot->state != SLOT_DUPLICATE)
			continue;

		slot->state = SLOT_DONE;
		slot->result = source->result;
		if (source->result == 0)
			memcpy(slot->out, source->out, call->chunks[i].length);
	}
}

/* Step 5: wait for the chunks that other calls fetch. */
static void wait_flights(struct read_call *call)
{
	for (size_t i = 0; i < call->n; i++) {
		struct slot *slot = &call->slots[i];
		int r;

		if (slot->state != SLOT_WAIT)
			continue;

		r = im_flight_wait(call->fetcher->flights, slot->flight, slot->out);
		/* The owner logged its failure. It may still have stored the
		 * chunk (when it could not keep a copy for waiters), or another
		 * process may have. */
		if (r < 0 && read_from_store(call, i))
			r = 0;

		slot->state = SLOT_DONE;
		slot->result = r < 0 ? -EIO : 0;
	}
}

/* Point the optional slots into call->scratch, back to back. */
static void place_optional(struct read_call *call)
{
	size_t offset = 0;

	for (size_t i = call->n; i < call->n + call->n_optional; i++) {
		call->slots[i].out = call->scratch + offset;
		call->slots[i].lock_fd = -1;
		call->slots[i].state = SLOT_DONE;
		offset += call->chunks[i].length;
	}
}

/*
 * Count the leading chunks of chunks[0..n) that are valid and fit in
 * OPTIONAL_MAX_BYTES together, and store their uncompressed total in
 * *ret_bytes. An invalid optional chunk is dropped silently, because the
 * read that requests it reports it.
 */
static size_t count_optional(const struct im_blob_ref *blob, const struct im_chunk *chunks,
			     size_t n, size_t *ret_bytes)
{
	size_t total = 0, i;

	for (i = 0; i < n; i++) {
		if (check_chunk(blob, &chunks[i]) ||
		    chunks[i].length > OPTIONAL_MAX_BYTES - total)
			break;
		total += chunks[i].length;
	}
	*ret_bytes = total;
	return i;
}

/* Return true when some requested chunk was found neither in memory nor
 * in the store. */
static bool any_missing(const struct read_call *call)
{
	for (size_t i = 0; i < call->n; i++)
		if (call->slots[i].state == SLOT_MISSING)
			return true;
	return false;
}

int im_fetcher_read_on_miss(struct im_fetcher *f, const struct im_blob_ref *blob,
			    const struct im_chunk *chunks, size_t n, size_t n_next,
			    void *buf, im_fetcher_miss_fn *on_miss, void *context)
{
	_cleanup_free_ struct slot *slots = NULL;
	_cleanup_free_ uint8_t *scratch = NULL;
	struct read_call call;
	size_t scratch_bytes;
	int r;

	if (n == 0)
		return 0;
	r = check_chunks(blob, chunks, n);
	if (r < 0)
		return r;
	n_next = count_optional(blob, chunks + n, n_next, &scratch_bytes);

	slots = calloc(n + n_next, sizeof(*slots));
	if (!slots) {
		im_log_errno(-ENOMEM, "cannot read %zu chunks", n);
		return -EIO;
	}
	/* Without room for the following chunks, read only the requested. */
	if (n_next > 0) {
		scratch = malloc(scratch_bytes);
		if (!scratch)
			n_next = 0;
	}

	call = (struct read_call){
		.fetcher = f,
		.blob = blob,
		.chunks = chunks,
		.n = n,
		.n_optional = n_next,
		.buf = buf,
		.scratch = scratch,
		.slots = slots,
	};
	read_local(&call);
	place_optional(&call);
	if (on_miss && any_missing(&call))
		on_miss(context);
	join_flights(&call);
	fetch_owned(&call);
	copy_duplicates(&call);
	wait_flights(&call);

	for (size_t i = 0; i < n; i++)
		if (slots[i].result < 0)
			return -EIO;
	return 0;
}

int im_fetcher_read_extended(struct im_fetcher *f, const struct im_blob_ref *blob,
			     const struct im_chunk *chunks, size_t n, size_t n_next,
			     void *buf)
{
	return im_fetcher_read_on_miss(f, blob, chunks, n, n_next, buf, NULL, NULL);
}

int im_fetcher_read(struct im_fetcher *f, const struct im_blob_ref *blob,
		    const struct im_chunk *chunks, size_t n, void *buf)
{
	return im_fetcher_read_extended(f, blob, chunks, n, 0, buf);
}

/*
 * Fetch the missing, unclaimed chunks of chunks[0..n) on a prefetch worker,
 * in runs that joins_prefetch_run() allows. A run spans the holes between
 * its chunks, and those bytes are discarded. Every chunk is optional, so
 * nothing here waits for another fetch.
 */
static void prefetch_job(void *context, const struct im_blob_ref *blob,
			 const struct im_chunk *chunks, size_t n)
{
	struct im_fetcher *f = context;
	_cleanup_free_ struct slot *slots = NULL;
	_cleanup_free_ uint8_t *scratch = NULL;
	_cleanup_free_ size_t *idx = NULL;
	struct read_call call;
	size_t count = 0, scratch_bytes;
	uint64_t run_offset = 0;

	n = count_optional(blob, chunks, n, &scratch_bytes);
	if (n == 0)
		return;
	slots = calloc(n, sizeof(*slots));
	idx = calloc(n, sizeof(*idx));
	scratch = malloc(scratch_bytes);
	if (!slots || !idx || !scratch)
		return;

	call = (struct read_call){
		.fetcher = f,
		.blob = blob,
		.chunks = chunks,
		.n_optional = n,
		.scratch = scratch,
		.slots = slots,
	};
	place_optional(&call);

	for (size_t i = 0; i < n; i++) {
		const struct im_chunk *c = &chunks[i];
		bool joins = count > 0 && joins_prefetch_run(run_offset, &chunks[idx[count - 1]], c);

		/* Fetch the current run before claiming a chunk it cannot take,
		 * so that no flight is held longer than its own fetch. */
		if (count > 0 && !joins) {
			const struct im_chunk *last = &chunks[idx[count - 1]];

			fetch_run(&call, idx, count, last->blob_offset + last->blob_length - run_offset);
			count = 0;
		}
		if (!claim_optional(&call, i))
			continue;
		if (count == 0)
			run_offset = c->blob_offset;
		idx[count++] = i;
	}
	if (count > 0) {
		const struct im_chunk *last = &chunks[idx[count - 1]];

		fetch_run(&call, idx, count, last->blob_offset + last->blob_length - run_offset);
	}
}

/* Start the prefetch workers on first use. Return: the pool, or NULL. */
static struct im_prefetch_pool *prefetch_pool(struct im_fetcher *f)
{
	struct im_prefetch_pool *pool;
	int r = 0;

	pthread_mutex_lock(&f->prefetch_lock);
	if (!f->prefetch)
		r = im_prefetch_pool_new(PREFETCH_THREADS, prefetch_job, f, &f->prefetch);
	pool = f->prefetch;
	pthread_mutex_unlock(&f->prefetch_lock);
	return r < 0 ? NULL : pool;
}

int im_fetcher_prefetch(struct im_fetcher *f, const struct im_blob_ref *blob,
			const struct im_chunk *chunks, size_t n)
{
	struct im_prefetch_pool *pool = prefetch_pool(f);
	size_t dropped = 0;
	int r = 0;

	if (!pool)
		return -ENOMEM;

	/* One job per prospective run, so that the workers fetch the runs of
	 * one large request in parallel. Chunks that are cached or being
	 * fetched when a job runs split its run further. */
	for (size_t start = 0, end; start < n; start = end) {
		int job_r;

		for (end = start + 1; end < n; end++) {
			if (check_chunk(blob, &chunks[end - 1]) || check_chunk(blob, &chunks[end]) ||
			    !joins_prefetch_run(chunks[start].blob_offset, &chunks[end - 1],
						&chunks[end]))
				break;
		}
		job_r = im_prefetch_pool_submit(pool, blob, chunks + start, end - start);
		if (job_r == -EAGAIN)
			dropped += end - start;
		if (job_r < 0 && r == 0)
			r = job_r;
	}

	if (dropped > 0)
		im_debug("prefetch queue full: dropped %zu of %zu chunks", dropped, n);
	return r;
}
