/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The size limit's background eviction; see cache_limit.h.
 */
#include "cache/cache_limit.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_admin.h"
#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"

#define HIGH_WATERMARK_PERCENT 95u
#define LOW_WATERMARK_PERCENT 85u

/* Longest time that writes of other processes can go unseen while this
 * process writes. A scan stats every file, so more often would cost too
 * much on a large cache. */
#define RESCAN_INTERVAL_NS (30ull * 1000000000ull)

/* Shortest time between two evictions. When pinned indexes alone exceed
 * the high watermark, eviction cannot get below it, and without this every
 * write would start another full scan. */
#define MIN_EVICTION_INTERVAL_NS (100ull * 1000000ull)

struct im_cache_limit {
	char *dir;
	uint64_t max_bytes;
	uint64_t high_bytes;
	uint64_t low_bytes;

	atomic_uint_fast64_t usage;         /* last scan plus this process's writes */
	atomic_uint_fast64_t last_scan_ns;  /* 0 before the first scan */

	pthread_mutex_t lock;
	pthread_t thread;                   /* protected by lock */
	bool thread_started;                /* protected by lock: not yet joined */
	atomic_bool running;
};

int im_cache_limit_new(const char *dir, uint64_t max_bytes, struct im_cache_limit **ret)
{
	struct im_cache_limit *l;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->dir = strdup(dir);
	if (!l->dir) {
		free(l);
		return -ENOMEM;
	}
	l->max_bytes = max_bytes;
	l->high_bytes = max_bytes / 100 * HIGH_WATERMARK_PERCENT;
	l->low_bytes = max_bytes / 100 * LOW_WATERMARK_PERCENT;
	pthread_mutex_init(&l->lock, NULL);
	*ret = l;
	return 0;
}

void im_cache_limit_free(struct im_cache_limit *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	if (l->thread_started)
		pthread_join(l->thread, NULL);
	pthread_mutex_unlock(&l->lock);
	pthread_mutex_destroy(&l->lock);
	free(l->dir);
	free(l);
}

static void run_eviction(struct im_cache_limit *l)
{
	struct im_cache_evict_result result;
	struct im_cache_usage usage;
	int r;

	r = im_cache_usage_scan(l->dir, &usage);
	if (r < 0) {
		im_log_errno(r, "measuring cache directory \"%s\" failed", l->dir);
		return;
	}
	atomic_store(&l->usage, usage.bytes);
	atomic_store(&l->last_scan_ns, im_now_ns());
	atomic_store_explicit(&im_stats.cache_bytes, usage.bytes, memory_order_relaxed);
	if (usage.bytes <= l->high_bytes)
		return;

	r = im_cache_evict(l->dir, l->low_bytes, false, &result);
	if (r == -EWOULDBLOCK) {
		/* Another process is evicting; its result shows in our next scan. */
		return;
	}
	if (r < 0) {
		im_log_errno(r, "evicting from cache directory \"%s\" failed", l->dir);
		return;
	}

	atomic_store(&l->usage, result.bytes_after);
	atomic_store_explicit(&im_stats.cache_bytes, result.bytes_after, memory_order_relaxed);
	im_stats_add(cache_evictions, result.removed_files);
	im_debug("evicted %llu files (%llu bytes) from cache directory \"%s\"; it now uses %llu of %llu bytes",
		 (unsigned long long)result.removed_files,
		 (unsigned long long)result.removed_bytes, l->dir,
		 (unsigned long long)result.bytes_after, (unsigned long long)l->max_bytes);
}

static void *eviction_thread(void *arg)
{
	struct im_cache_limit *l = arg;

	run_eviction(l);
	atomic_store(&l->running, false);
	return NULL;
}

/* Start the eviction thread unless one is running. */
static void start_eviction(struct im_cache_limit *l)
{
	bool idle = false;
	int r;

	if (!atomic_compare_exchange_strong(&l->running, &idle, true))
		return;

	pthread_mutex_lock(&l->lock);
	if (l->thread_started)
		pthread_join(l->thread, NULL);
	l->thread_started = false;
	r = pthread_create(&l->thread, NULL, eviction_thread, l);
	if (r == 0)
		l->thread_started = true;
	pthread_mutex_unlock(&l->lock);

	if (r != 0) {
		atomic_store(&l->running, false);
		im_log_errno(-r, "starting cache eviction failed");
	}
}

void im_cache_limit_account(struct im_cache_limit *l, uint64_t bytes)
{
	uint64_t usage = atomic_fetch_add(&l->usage, bytes) + bytes;
	uint64_t last_scan = atomic_load(&l->last_scan_ns);
	uint64_t since_scan = im_now_ns() - last_scan;

	atomic_fetch_add_explicit(&im_stats.cache_bytes, bytes, memory_order_relaxed);
	if (last_scan == 0 || since_scan > RESCAN_INTERVAL_NS ||
	    (usage > l->high_bytes && since_scan > MIN_EVICTION_INTERVAL_NS))
		start_eviction(l);
}
