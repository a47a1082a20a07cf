/* SPDX-License-Identifier: Apache-2.0 */
#include "common/stats.h"

#include <inttypes.h>

struct im_stats im_stats;

#define LOAD(field) ((uint64_t)atomic_load_explicit(&im_stats.field, memory_order_relaxed))

void im_stats_write_json(FILE *out)
{
	fprintf(out,
		"{\"registry_requests\":%" PRIu64 ",\"registry_bytes\":%" PRIu64
		",\"registry_retries\":%" PRIu64 ",\"token_requests\":%" PRIu64
		",\"chunks_from_cache\":%" PRIu64 ",\"chunks_from_network\":%" PRIu64
		",\"bytes_from_cache\":%" PRIu64 ",\"bytes_from_network\":%" PRIu64
		",\"verify_failures\":%" PRIu64 ",\"cache_corrupt\":%" PRIu64
		",\"cache_write_errors\":%" PRIu64 ",\"fuse_reads\":%" PRIu64
		",\"fuse_read_errors\":%" PRIu64 ",\"cache_evictions\":%" PRIu64
		",\"cache_bytes\":%" PRIu64 ",\"memory_cache_hits\":%" PRIu64 "}\n",
		LOAD(registry_requests), LOAD(registry_bytes),
		LOAD(registry_retries), LOAD(token_requests),
		LOAD(chunks_from_cache), LOAD(chunks_from_network),
		LOAD(bytes_from_cache), LOAD(bytes_from_network),
		LOAD(verify_failures), LOAD(cache_corrupt),
		LOAD(cache_write_errors), LOAD(fuse_reads),
		LOAD(fuse_read_errors), LOAD(cache_evictions),
		LOAD(cache_bytes), LOAD(memory_cache_hits));
}
