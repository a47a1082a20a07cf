/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Size limit, pins and memory cache for `imgmount mount`; see mount_cache.h.
 */
#include "fs/mount_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache/cache_pins.h"
#include "common/log.h"
#include "common/util.h"

/* Without --cache-size the cache may use this percentage of its file
 * system, as a cache that shares a disk with other data should. */
#define DEFAULT_CACHE_PERCENT 10u

/* ...but at most this much. 10% of a multi-terabyte disk is far more than
 * the chunks a node's mounts read, and every scan of the limit stats each
 * chunk file: 20 GiB of 256 KiB chunks is 80,000 files. */
#define DEFAULT_CACHE_MAX_BYTES (20ull << 30)

static int default_cache_bytes(const char *dir, uint64_t *ret)
{
	struct statvfs st;
	uint64_t bytes;

	if (statvfs(dir, &st) < 0)
		return im_log_errno(-errno, "measuring the file system of cache directory \"%s\" "
				    "failed; pass --cache-size", dir);
	bytes = (uint64_t)st.f_blocks * st.f_frsize / 100 * DEFAULT_CACHE_PERCENT;
	*ret = bytes < DEFAULT_CACHE_MAX_BYTES ? bytes : DEFAULT_CACHE_MAX_BYTES;
	return 0;
}

static void pin_indexes(struct im_image *img, struct im_mount_cache *mc)
{
	const char *dir = im_chunk_store_dir(img->store);
	_cleanup_free_ struct im_digest *tocs = NULL;
	size_t n = 0;
	int r;

	tocs = calloc(img->n_layers ? img->n_layers : 1, sizeof(*tocs));
	if (!tocs) {
		im_warn("pinning the indexes of %s failed: out of memory", img->display_name);
		return;
	}
	for (size_t i = 0; i < img->n_layers; i++)
		if (img->indexes[i])
			tocs[n++] = *im_layer_index_toc_digest(img->indexes[i]);

	r = im_cache_pin(dir, tocs, n, &mc->pin_fd);
	if (r < 0)
		im_warn("pinning the indexes of %s in cache directory \"%s\" failed: %s; "
			"eviction or 'imgmount cache prune' may delete them, and the next "
			"mount then compiles them again", img->display_name, dir, strerror(-r));
}

int im_mount_cache_setup(struct im_image *img, struct im_fetcher *fetcher,
			 uint64_t cache_bytes, uint64_t memory_bytes,
			 struct im_mount_cache *ret)
{
	const char *dir = im_chunk_store_dir(img->store);
	int r;

	*ret = (struct im_mount_cache){ .pin_fd = -1 };
	if (cache_bytes == 0) {
		r = default_cache_bytes(dir, &cache_bytes);
		if (r < 0)
			return r;
	}
	r = im_chunk_store_set_limit(img->store, cache_bytes);
	if (r < 0)
		return im_log_errno(r, "setting the size limit of cache directory \"%s\" failed", dir);
	im_info("cache directory \"%s\" is limited to %llu bytes", dir,
		(unsigned long long)cache_bytes);

	pin_indexes(img, ret);

	if (memory_bytes > 0) {
		r = im_memory_cache_new(memory_bytes, &ret->memory);
		if (r < 0)
			return im_log_errno(r, "creating the memory cache failed");
		im_fetcher_set_memory_cache(fetcher, ret->memory);
	}
	return 0;
}

void im_mount_cache_clear(struct im_mount_cache *mc)
{
	im_memory_cache_free(mc->memory);
	mc->memory = NULL;
	if (mc->pin_fd >= 0)
		close(mc->pin_fd);
	mc->pin_fd = -1;
}
