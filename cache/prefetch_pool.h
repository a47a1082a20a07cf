/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Background prefetch: a bounded queue of "fetch these chunks of this blob"
 * jobs and a few worker threads that run them, so that read-ahead never
 * runs on the thread of an on-demand read. A job that does not fit in the
 * queue is dropped, because read-ahead is only an optimisation.
 *
 * Internal to cache/.
 */
#ifndef IM_PREFETCH_POOL_H
#define IM_PREFETCH_POOL_H

#include <stddef.h>

#include "cache/fetcher.h"

struct im_prefetch_pool;

/* Called on a worker thread for each job. The chunks live until it returns. */
typedef void im_prefetch_fn(void *context, const struct im_blob_ref *blob,
			    const struct im_chunk *chunks, size_t n);

/* Start threads workers that call fn(context, ...). Return: 0 or -errno. */
int im_prefetch_pool_new(unsigned threads, im_prefetch_fn *fn, void *context,
			 struct im_prefetch_pool **ret);

/* Drop the queued jobs, wait for the running ones and join the workers. */
void im_prefetch_pool_free(struct im_prefetch_pool *pool);

/*
 * Queue a copy of chunks[0..n). *blob is copied, but its registry and
 * repository pointers are borrowed until im_prefetch_pool_free().
 * Return: 0, -EAGAIN when the queue is full (the job is dropped), or
 * -ENOMEM.
 */
int im_prefetch_pool_submit(struct im_prefetch_pool *pool, const struct im_blob_ref *blob,
			    const struct im_chunk *chunks, size_t n);

#endif
