/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cache side of a mount: the size limit on the shared cache, the pin
 * that keeps the image's compiled indexes from eviction and pruning, and
 * the daemon's memory cache.
 */
#ifndef IM_MOUNT_CACHE_H
#define IM_MOUNT_CACHE_H

#include <stdint.h>

#include "cache/fetcher.h"
#include "cache/memory_cache.h"
#include "fs/image.h"

/* Default --memory-cache-size: 256 chunks of the 256 KiB that `imgmount
 * convert` writes, enough to keep the chunks of many small repeated reads,
 * and small next to the kernel's page cache, which keeps file pages anyway. */
#define IM_DEFAULT_MEMORY_CACHE_BYTES (64ull << 20)

struct im_mount_cache {
	struct im_memory_cache *memory;   /* NULL when disabled */
	int pin_fd;                       /* -1 when the pin could not be written */
};

/*
 * Limit the cache to cache_bytes (0: the default, see mount_cache.c), pin
 * img's indexes for the life of the process, and give fetcher a memory
 * cache of memory_bytes (0: none). A pin that cannot be written (a full or
 * read-only cache) is only logged.
 * Return: 0 or -errno, logged.
 */
int im_mount_cache_setup(struct im_image *img, struct im_fetcher *fetcher,
			 uint64_t cache_bytes, uint64_t memory_bytes,
			 struct im_mount_cache *ret);
void im_mount_cache_clear(struct im_mount_cache *mc);

#endif
