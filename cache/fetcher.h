/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fetch scheduler: turns "these chunks of this layer blob" into cache hits
 * or coalesced range requests, and verifies every fetched chunk against its
 * SHA-256 before it is stored or returned.
 *
 * Concurrent requests for the same chunk share one fetch (single flight),
 * within the process through the flight table and across processes that
 * share the cache through per-chunk file locks.
 * A chunk whose digest does not match is never stored; the read fails with
 * -EIO and both digests are logged.
 */
#ifndef IM_FETCHER_H
#define IM_FETCHER_H

#include <stddef.h>
#include <stdint.h>

#include "cache/chunk_store.h"
#include "common/digest.h"
#include "index/layer_index.h"

struct im_registry;

/* One layer blob and where to get it. The fetcher borrows these pointers. */
struct im_blob_ref {
	struct im_registry *registry;
	const char *repository;
	struct im_digest digest;
	uint64_t size;
};

struct im_fetcher;

struct im_memory_cache;

int im_fetcher_new(struct im_chunk_store *store, struct im_fetcher **ret);
void im_fetcher_free(struct im_fetcher *f);

/* Consult mc before the store, and add every chunk read from the store or
 * fetched to it. The fetcher borrows mc; call before the first read. */
void im_fetcher_set_memory_cache(struct im_fetcher *f, struct im_memory_cache *mc);

/*
 * Fill buf with the uncompressed bytes of chunks[0..n) of blob, back to
 * back (buf holds the sum of their lengths). The chunks must be in file
 * order and belong to one file. Zero chunks (IM_CHUNK_ZEROS) are filled
 * without I/O.
 * Return: 0, or -EIO (network failure or verification failure, logged).
 */
int im_fetcher_read(struct im_fetcher *f, const struct im_blob_ref *blob,
		    const struct im_chunk *chunks, size_t n, void *buf);

/*
 * Like im_fetcher_read(), but chunks[n..n + n_next) are the chunks that
 * follow chunks[0..n) in the same file. When the last requested chunk is
 * fetched, the range request also takes following chunks that are adjacent
 * in the blob, missing from the store and not being fetched, up to about
 * 1 MiB of compressed bytes. They are verified and stored but not returned,
 * and their failure does not fail the read.
 */
int im_fetcher_read_extended(struct im_fetcher *f, const struct im_blob_ref *blob,
			     const struct im_chunk *chunks, size_t n, size_t n_next,
			     void *buf);

/* Called by im_fetcher_read_on_miss() on the reading thread. */
typedef void im_fetcher_miss_fn(void *context);

/*
 * Like im_fetcher_read_extended(), and call on_miss(context) once when a
 * requested chunk is in neither the memory cache nor the store, before
 * anything is fetched. Prefetch that on_miss queues then runs while this
 * read waits for its own fetch.
 */
int im_fetcher_read_on_miss(struct im_fetcher *f, const struct im_blob_ref *blob,
			    const struct im_chunk *chunks, size_t n, size_t n_next,
			    void *buf, im_fetcher_miss_fn *on_miss, void *context);

/*
 * Queue a background fetch of those chunks[0..n) that are missing and not
 * being fetched. Chunks in blob order whose compressed ranges are at most
 * 16 KiB apart go out in one range request of up to 512 KiB, and the
 * requests run in parallel on up to 4 worker threads. A read that needs a
 * chunk being prefetched waits for that request instead of sending its
 * own. Return at once; the chunks are copied and *blob's pointers are
 * borrowed until im_fetcher_free(). Return: 0, -EAGAIN when the queue is
 * full and some of the chunks were dropped, or -ENOMEM.
 */
int im_fetcher_prefetch(struct im_fetcher *f, const struct im_blob_ref *blob,
			const struct im_chunk *chunks, size_t n);

#endif
