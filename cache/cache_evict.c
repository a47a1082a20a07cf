/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Measuring the cache and evicting its least recently used files.
 *
 * Eviction lists every chunk and unpinned index with its atime and disk
 * usage, sorts the list oldest first and deletes from the front until the
 * total is at most the target. The list costs about 80 bytes per file, so
 * a cache of a million chunks needs about 80 MB for the length of one
 * eviction.
 * NOTE: a chunk read again between the listing and its deletion is still
 * deleted; the next read of it fetches it again.
 */
#include "cache/cache_admin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cache/cache_files.h"
#include "cache/cache_lock.h"
#include "cache/cache_pins.h"
#include "common/log.h"
#include "common/util.h"

static int add_usage(const struct im_cache_file *file, void *ctx)
{
	struct im_cache_usage *usage = ctx;
	uint64_t bytes = im_cache_file_bytes(&file->st);

	usage->bytes += bytes;
	if (file->kind == IM_CACHE_CHUNK) {
		usage->chunk_count++;
		usage->chunk_bytes += bytes;
	} else {
		usage->index_count++;
		usage->index_bytes += bytes;
	}
	return 0;
}

int im_cache_usage_scan(const char *dir, struct im_cache_usage *ret)
{
	*ret = (struct im_cache_usage){ 0 };
	return im_cache_walk(dir, add_usage, ret);
}

struct victim {
	int64_t atime_ns;
	uint64_t bytes;
	enum im_cache_file_kind kind;
	struct im_digest digest;
};

struct victim_list {
	struct victim *items;
	size_t count;
	size_t capacity;
	uint64_t total_bytes;          /* every file, pinned ones included */
	const struct im_digest_set *pins;
};

static int add_victim(const struct im_cache_file *file, void *ctx)
{
	struct victim_list *list = ctx;
	uint64_t bytes = im_cache_file_bytes(&file->st);

	list->total_bytes += bytes;
	if (file->kind == IM_CACHE_INDEX && im_digest_set_contains(list->pins, &file->digest))
		return 0;

	if (list->count == list->capacity) {
		size_t capacity = list->capacity ? 2 * list->capacity : 1024;
		struct victim *items = reallocarray(list->items, capacity, sizeof(*items));

		if (!items)
			return -ENOMEM;
		list->items = items;
		list->capacity = capacity;
	}
	list->items[list->count++] = (struct victim){
		.atime_ns = (int64_t)file->st.st_atim.tv_sec * 1000000000 + file->st.st_atim.tv_nsec,
		.bytes = bytes,
		.kind = file->kind,
		.digest = file->digest,
	};
	return 0;
}

static int compare_atime(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	return (x->atime_ns > y->atime_ns) - (x->atime_ns < y->atime_ns);
}

static int remove_victim(const char *dir, const struct victim *v)
{
	char hex[2 * IM_SHA256_LEN + 1];
	char path[PATH_MAX];

	im_digest_format_hex(&v->digest, hex);
	if (v->kind == IM_CACHE_CHUNK)
		snprintf(path, sizeof(path), "%s/chunks/%.2s/%s", dir, hex, hex);
	else
		snprintf(path, sizeof(path), "%s/index/%s.idx", dir, hex);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int evict_locked(const char *dir, uint64_t target_bytes,
			struct im_cache_evict_result *ret)
{
	struct im_digest_set pins = { 0 };
	struct victim_list list = { .pins = &pins };
	uint64_t total;
	int r;

	r = im_cache_read_pins(dir, &pins);
	if (r < 0)
		goto out;
	im_digest_set_seal(&pins);

	r = im_cache_walk(dir, add_victim, &list);
	if (r < 0)
		goto out;
	if (list.count > 0)
		qsort(list.items, list.count, sizeof(*list.items), compare_atime);

	total = list.total_bytes;
	for (size_t i = 0; i < list.count && total > target_bytes; i++) {
		r = remove_victim(dir, &list.items[i]);
		if (r < 0) {
			im_log_errno(r, "evicting a file from cache directory \"%s\" failed", dir);
			goto out;
		}
		total -= list.items[i].bytes;
		ret->removed_files++;
		ret->removed_bytes += list.items[i].bytes;
	}
	ret->bytes_after = total;

out:
	free(list.items);
	im_digest_set_clear(&pins);
	return r;
}

int im_cache_evict(const char *dir, uint64_t target_bytes, bool wait,
		   struct im_cache_evict_result *ret)
{
	_cleanup_close_ int lock_fd = -1;

	*ret = (struct im_cache_evict_result){ 0 };
	lock_fd = im_cache_lock(dir, wait);
	if (lock_fd < 0)
		return lock_fd;
	return evict_locked(dir, target_bytes, ret);
}
