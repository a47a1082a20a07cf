/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A daemon's enforcement of the cache size limit. Internal to cache/; the
 * store calls im_cache_limit_account() after every chunk it writes.
 *
 * Accounting: a full scan of the cache (im_cache_usage_scan) gives the
 * usage, and every chunk this process writes adds its size on top. Other
 * processes' writes are only seen by the next scan, so a scan also runs at
 * least every RESCAN_INTERVAL while chunks are being written. A shared
 * counter file was rejected: it needs a lock or an atomic file update on
 * every write in every process, and it drifts for good after a crash
 * between a write and its count, while a scan is always right.
 *
 * When the usage passes the high watermark (95% of the limit), a
 * background thread evicts down to the low watermark (85%), so eviction
 * runs in bursts rather than on every write. The thread is started on
 * demand, never before the first write, because the daemon forks in
 * fuse_daemonize() after the cache is opened and a fork keeps only the
 * calling thread.
 */
#ifndef IM_CACHE_LIMIT_H
#define IM_CACHE_LIMIT_H

#include <stdint.h>

struct im_cache_limit;

int im_cache_limit_new(const char *dir, uint64_t max_bytes, struct im_cache_limit **ret);
/* Waits for a running eviction to finish. */
void im_cache_limit_free(struct im_cache_limit *l);

/* Count bytes just written to the cache; may start an eviction. */
void im_cache_limit_account(struct im_cache_limit *l, uint64_t bytes);

#endif
