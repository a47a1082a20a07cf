/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enumerating the files of a cache directory: every chunk under chunks/AB/
 * and every compiled index under index/, with its lstat(2) data. Files
 * whose names are not 64 lowercase hex digits (plus ".idx" for indexes)
 * are skipped, so a stray file is never mistaken for a cache entry.
 *
 * Other processes add and remove files while a walk runs: a file that
 * disappears between readdir(3) and fstatat(2) is skipped.
 *
 * Internal to cache/.
 */
#ifndef IM_CACHE_FILES_H
#define IM_CACHE_FILES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/digest.h"

enum im_cache_file_kind {
	IM_CACHE_CHUNK,
	IM_CACHE_INDEX,
};

struct im_cache_file {
	enum im_cache_file_kind kind;
	struct im_digest digest;   /* chunk SHA-256, or the index's TOC digest */
	int dir_fd;                /* directory that contains name */
	const char *name;          /* file name relative to dir_fd */
	struct stat st;
};

/* Called once per file; a negative return stops the walk and is returned. */
typedef int (*im_cache_file_fn)(const struct im_cache_file *file, void *ctx);

/* Walk dir's chunks and indexes. Missing subdirectories are empty.
 * Return: 0, the callback's error, or -errno when dir cannot be read. */
int im_cache_walk(const char *dir, im_cache_file_fn fn, void *ctx);

/* Bytes that a file occupies on disk (st_blocks, in 512-byte units). */
static inline uint64_t im_cache_file_bytes(const struct stat *st)
{
	return (uint64_t)st->st_blocks * 512u;
}

/* Sorted set of digests, searched with bsearch(3). */
struct im_digest_set {
	struct im_digest *items;
	size_t count;
	size_t capacity;
};

int im_digest_set_add(struct im_digest_set *set, const struct im_digest *digest);
/* Sort and drop duplicates; call once after the last add. */
void im_digest_set_seal(struct im_digest_set *set);
bool im_digest_set_contains(const struct im_digest_set *set, const struct im_digest *digest);
void im_digest_set_clear(struct im_digest_set *set);

#endif
