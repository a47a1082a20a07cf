/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whole-cache operations: measuring, least-recently-used eviction,
 * verification and pruning. The daemons' size limit (cache_limit.c) and
 * `imgmount cache` use them.
 *
 * Recency is the chunk file's atime, which every process sees: the store
 * sets it on a hit (rate-limited, see chunk_store.c), and a new file starts
 * with the time it was written. Sizes are disk usage (st_blocks), not
 * payload bytes, because the limit protects the file system.
 *
 * Eviction and prune run under an exclusive flock(2) on CACHE/lock, so only
 * one process at a time deletes. Neither ever deletes a pinned index
 * (cache_pins.h). Deleting a chunk is safe against readers: the store has
 * no lookup step apart from openat(2), a reader that has the file open
 * keeps reading the unlinked inode, and one that comes after the unlink
 * gets a miss and fetches the chunk again.
 */
#ifndef IM_CACHE_ADMIN_H
#define IM_CACHE_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

struct im_cache_usage {
	uint64_t bytes;            /* chunks and indexes, disk usage */
	uint64_t chunk_count;
	uint64_t chunk_bytes;
	uint64_t index_count;
	uint64_t index_bytes;
};

/* Measure dir. Return: 0 or -errno. */
int im_cache_usage_scan(const char *dir, struct im_cache_usage *ret);

struct im_cache_evict_result {
	uint64_t removed_files;
	uint64_t removed_bytes;
	uint64_t bytes_after;      /* usage when eviction stopped */
};

/*
 * Delete the least recently used chunks and unpinned indexes until the
 * cache uses at most target_bytes. With wait false, return -EWOULDBLOCK
 * at once when another process holds CACHE/lock.
 * Return: 0 or -errno.
 */
int im_cache_evict(const char *dir, uint64_t target_bytes, bool wait,
		   struct im_cache_evict_result *ret);

struct im_cache_check_result {
	uint64_t checked;
	uint64_t bad;              /* found damaged and deleted */
};

/*
 * Read every chunk and check its header, XXH3 and SHA-256 against its file
 * name, and open every index (which checks its CRC-32). Damaged files are
 * logged and deleted. Return: 0 or -errno (damage is not an error).
 */
int im_cache_verify(const char *dir, struct im_cache_check_result *ret);

struct im_cache_prune_result {
	uint64_t removed_indexes;
	uint64_t removed_chunks;
	uint64_t removed_bytes;
};

/*
 * Delete the indexes that no live pin lists, then the chunks that no
 * remaining index references. Return: 0 or -errno.
 */
int im_cache_prune(const char *dir, struct im_cache_prune_result *ret);

#endif
