/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cache verify` and `cache prune` over a whole cache directory.
 *
 * Verification reads every byte, so it costs as much I/O as the cache is
 * large; it takes no lock, because a daemon only ever renames complete
 * files into place and deleting a damaged file races with nothing that
 * could make it good again.
 */
#include "cache/cache_admin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache_files.h"
#include "cache/cache_lock.h"
#include "cache/cache_pins.h"
#include "cache/chunk_store.h"
#include "common/log.h"
#include "common/util.h"
#include "index/layer_index.h"

static void index_path(const char *dir, const struct im_digest *toc, char *out)
{
	char hex[2 * IM_SHA256_LEN + 1];

	im_digest_format_hex(toc, hex);
	snprintf(out, PATH_MAX, "%s/index/%s.idx", dir, hex);
}

struct verify_state {
	const char *dir;
	struct im_cache_check_result *result;
};

static int verify_file(const struct im_cache_file *file, void *ctx)
{
	struct verify_state *state = ctx;
	char text[IM_DIGEST_STRING_LEN];
	const char *reason = NULL;
	int r;

	state->result->checked++;
	if (file->kind == IM_CACHE_CHUNK) {
		_cleanup_close_ int fd = -1;

		fd = openat(file->dir_fd, file->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return 0;
		r = im_chunk_file_verify(fd, &file->digest, &reason);
	} else {
		struct im_layer_index *idx = NULL;
		char path[PATH_MAX];

		index_path(state->dir, &file->digest, path);
		r = im_layer_index_open(path, &idx);
		if (r == 0 && !im_digest_equal(im_layer_index_toc_digest(idx), &file->digest))
			r = -EBADMSG;
		if (r < 0 && r != -ENOENT && r != -ENOMEM)
			reason = "invalid compiled index";
		im_layer_index_free(idx);
	}
	if (!reason)
		return r == -ENOMEM ? r : 0;

	im_digest_format(&file->digest, text);
	state->result->bad++;
	if (unlinkat(file->dir_fd, file->name, 0) < 0 && errno != ENOENT)
		im_warn("cached %s %s is damaged (%s) and cannot be removed: %s",
			file->kind == IM_CACHE_CHUNK ? "chunk" : "index", text, reason,
			strerror(errno));
	else
		im_warn("cached %s %s is damaged (%s): removed it",
			file->kind == IM_CACHE_CHUNK ? "chunk" : "index", text, reason);
	return 0;
}

int im_cache_verify(const char *dir, struct im_cache_check_result *ret)
{
	struct verify_state state = { .dir = dir, .result = ret };

	*ret = (struct im_cache_check_result){ 0 };
	return im_cache_walk(dir, verify_file, &state);
}

struct prune_state {
	const char *dir;
	struct im_digest_set pins;
	struct im_digest_set referenced;    /* chunks of the kept indexes */
	struct im_cache_prune_result *result;
};

static int add_index_chunks(struct prune_state *state, const struct im_digest *toc)
{
	struct im_layer_index *idx;
	char path[PATH_MAX];
	uint32_t count;
	int r;

	index_path(state->dir, toc, path);
	r = im_layer_index_open(path, &idx);
	if (r < 0)
		return r == -ENOENT ? 0 : r;

	count = im_layer_index_chunk_count(idx);
	for (uint32_t i = 0; i < count && r == 0; i++) {
		struct im_chunk chunk;

		im_layer_index_chunk(idx, i, &chunk);
		if (!(chunk.flags & IM_CHUNK_ZEROS))
			r = im_digest_set_add(&state->referenced, &chunk.sha256);
	}
	im_layer_index_free(idx);
	return r;
}

static int prune_index(const struct im_cache_file *file, void *ctx)
{
	struct prune_state *state = ctx;
	int r;

	if (file->kind != IM_CACHE_INDEX)
		return 0;
	if (im_digest_set_contains(&state->pins, &file->digest)) {
		r = add_index_chunks(state, &file->digest);
		/* A pinned index that cannot be read references nothing we
		 * can list, so keeping every chunk is the only safe choice. */
		return r < 0 ? -EBADMSG : 0;
	}
	if (unlinkat(file->dir_fd, file->name, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	state->result->removed_indexes++;
	state->result->removed_bytes += im_cache_file_bytes(&file->st);
	return 0;
}

static int prune_chunk(const struct im_cache_file *file, void *ctx)
{
	struct prune_state *state = ctx;

	if (file->kind != IM_CACHE_CHUNK ||
	    im_digest_set_contains(&state->referenced, &file->digest))
		return 0;
	if (unlinkat(file->dir_fd, file->name, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	state->result->removed_chunks++;
	state->result->removed_bytes += im_cache_file_bytes(&file->st);
	return 0;
}

int im_cache_prune(const char *dir, struct im_cache_prune_result *ret)
{
	struct prune_state state = { .dir = dir, .result = ret };
	_cleanup_close_ int lock_fd = -1;
	int r;

	*ret = (struct im_cache_prune_result){ 0 };
	lock_fd = im_cache_lock(dir, true);
	if (lock_fd < 0)
		return lock_fd;

	r = im_cache_read_pins(dir, &state.pins);
	if (r < 0)
		goto out;
	im_digest_set_seal(&state.pins);

	r = im_cache_walk(dir, prune_index, &state);
	if (r == -EBADMSG) {
		im_err("a pinned index in cache directory \"%s\" cannot be read, so no "
		       "chunk was pruned; run 'imgmount cache verify' first", dir);
		goto out;
	}
	if (r < 0)
		goto out;
	im_digest_set_seal(&state.referenced);
	r = im_cache_walk(dir, prune_chunk, &state);

out:
	im_digest_set_clear(&state.pins);
	im_digest_set_clear(&state.referenced);
	return r;
}
