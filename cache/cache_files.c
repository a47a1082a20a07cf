/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cache directory walker and a sorted digest set, shared by the size
 * accounting, eviction, `cache verify` and `cache prune`.
 */
#include "cache/cache_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

#define HEX_LEN (2 * IM_SHA256_LEN)

static bool is_hex(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

/* Parse a name of 64 hex digits followed by suffix. */
static bool parse_name(const char *name, const char *suffix, struct im_digest *ret)
{
	char text[IM_DIGEST_STRING_LEN];

	if (strlen(name) != HEX_LEN + strlen(suffix) || !is_hex(name, HEX_LEN) ||
	    strcmp(name + HEX_LEN, suffix) != 0)
		return false;
	snprintf(text, sizeof(text), "sha256:%.*s", HEX_LEN, name);
	return im_digest_parse(text, ret) == 0;
}

/* Call fn for every regular file of dir_fd named <hex><suffix>. */
static int walk_dir(int dir_fd, enum im_cache_file_kind kind, const char *suffix,
		    im_cache_file_fn fn, void *ctx)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = dup(dir_fd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}

	while (r == 0 && (de = readdir(d))) {
		struct im_cache_file file = {
			.kind = kind,
			.dir_fd = dir_fd,
			.name = de->d_name,
		};

		if (!parse_name(de->d_name, suffix, &file.digest))
			continue;
		if (fstatat(dir_fd, de->d_name, &file.st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISREG(file.st.st_mode))
			continue;
		r = fn(&file, ctx);
	}
	closedir(d);
	return r;
}

static int open_dir_at(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	return fd < 0 ? -errno : fd;
}

static int walk_chunks(int root_fd, im_cache_file_fn fn, void *ctx)
{
	_cleanup_close_ int chunks_fd = -1;
	int r;

	chunks_fd = open_dir_at(root_fd, "chunks");
	if (chunks_fd == -ENOENT)
		return 0;
	if (chunks_fd < 0)
		return chunks_fd;

	for (unsigned prefix = 0; prefix < 256; prefix++) {
		_cleanup_close_ int sub_fd = -1;
		char name[3];

		snprintf(name, sizeof(name), "%02x", prefix);
		sub_fd = open_dir_at(chunks_fd, name);
		if (sub_fd == -ENOENT)
			continue;
		if (sub_fd < 0)
			return sub_fd;
		r = walk_dir(sub_fd, IM_CACHE_CHUNK, "", fn, ctx);
		if (r < 0)
			return r;
	}
	return 0;
}

int im_cache_walk(const char *dir, im_cache_file_fn fn, void *ctx)
{
	_cleanup_close_ int root_fd = -1;
	_cleanup_close_ int index_fd = -1;
	int r;

	root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return -errno;

	r = walk_chunks(root_fd, fn, ctx);
	if (r < 0)
		return r;

	index_fd = open_dir_at(root_fd, "index");
	if (index_fd == -ENOENT)
		return 0;
	if (index_fd < 0)
		return index_fd;
	return walk_dir(index_fd, IM_CACHE_INDEX, ".idx", fn, ctx);
}

int im_digest_set_add(struct im_digest_set *set, const struct im_digest *digest)
{
	if (set->count == set->capacity) {
		size_t capacity = set->capacity ? 2 * set->capacity : 64;
		struct im_digest *items;

		items = reallocarray(set->items, capacity, sizeof(*items));
		if (!items)
			return -ENOMEM;
		set->items = items;
		set->capacity = capacity;
	}
	set->items[set->count++] = *digest;
	return 0;
}

static int compare_digests(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct im_digest));
}

void im_digest_set_seal(struct im_digest_set *set)
{
	size_t kept = 0;

	if (set->count == 0)
		return;
	qsort(set->items, set->count, sizeof(*set->items), compare_digests);
	for (size_t i = 1; i < set->count; i++) {
		if (!im_digest_equal(&set->items[kept], &set->items[i]))
			set->items[++kept] = set->items[i];
	}
	set->count = kept + 1;
}

bool im_digest_set_contains(const struct im_digest_set *set, const struct im_digest *digest)
{
	if (set->count == 0)
		return false;
	return bsearch(digest, set->items, set->count, sizeof(*set->items),
		       compare_digests) != NULL;
}

void im_digest_set_clear(struct im_digest_set *set)
{
	free(set->items);
	*set = (struct im_digest_set){ 0 };
}
