/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process-wide counters that `imgmount stats` reports. Every field is an
 * atomic that any thread may add to; readers take a snapshot with
 * im_stats_snapshot(). One daemon serves one mount, so process-wide is
 * per-mount.
 */
#ifndef IM_STATS_H
#define IM_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

struct im_stats {
	atomic_uint_fast64_t registry_requests;   /* HTTP requests sent */
	atomic_uint_fast64_t registry_bytes;      /* response body bytes received */
	atomic_uint_fast64_t registry_retries;    /* requests sent again after a failure */
	atomic_uint_fast64_t token_requests;      /* bearer tokens fetched */
	atomic_uint_fast64_t chunks_from_cache;   /* chunk reads served from the chunk store */
	atomic_uint_fast64_t chunks_from_network; /* chunks fetched, verified and served */
	atomic_uint_fast64_t bytes_from_cache;    /* uncompressed bytes of those chunks */
	atomic_uint_fast64_t bytes_from_network;  /* uncompressed bytes of those chunks */
	atomic_uint_fast64_t verify_failures;     /* chunks whose SHA-256 did not match */
	atomic_uint_fast64_t cache_corrupt;       /* cached chunks that failed the xxHash check */
	atomic_uint_fast64_t cache_write_errors;  /* chunks that could not be stored */
	atomic_uint_fast64_t fuse_reads;          /* FUSE read requests */
	atomic_uint_fast64_t fuse_read_errors;    /* FUSE reads that failed */
	atomic_uint_fast64_t cache_evictions;     /* files this process evicted for the size limit */
	atomic_uint_fast64_t cache_bytes;         /* disk usage of the whole cache: last scan
						     plus this process's writes since */
	atomic_uint_fast64_t memory_cache_hits;   /* chunk reads served from the memory cache */
};

extern struct im_stats im_stats;

#define im_stats_add(field, n) atomic_fetch_add_explicit(&im_stats.field, (n), memory_order_relaxed)

/* Write the counters as one JSON object followed by a newline. */
void im_stats_write_json(FILE *out);

#endif
