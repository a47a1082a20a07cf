/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File data: open, read and release of regular files.
 *
 * A read finds the chunks that cover the requested range by binary search
 * on their file offsets. The fetcher fills one buffer with exactly those
 * chunks (from the cache, or fetched and verified against their SHA-256),
 * and the reply carries the requested slice. Files are opened with keep_cache,
 * because their bytes never change while the mount lives.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "fs/fuse_ops.h"

void im_ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	struct im_tree_node node;
	int r;

	r = im_tree_get_node(cfg->tree, ino, &node);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (node.type == IM_ENTRY_DIR) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (node.type != IM_ENTRY_REG) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}

	/* Pages stay valid across opens because the file never changes. */
	fi->keep_cache = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

/*
 * Find the chunk holding byte off of the file: the last chunk whose
 * file_offset is not after off, by binary search over the entry's chunks.
 * Return: 0 with the chunk number relative to e->chunk_first, or -EIO when
 * the chunk list does not cover off.
 */
static int find_chunk(const struct im_layer_index *idx, const struct im_entry *e,
		      uint64_t off, uint32_t *ret)
{
	uint32_t lo = 0, hi = e->chunk_count;
	struct im_chunk c;

	if (hi == 0)
		return -EIO;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		im_layer_index_chunk(idx, e->chunk_first + mid, &c);
		if (c.file_offset <= off)
			lo = mid;
		else
			hi = mid;
	}

	im_layer_index_chunk(idx, e->chunk_first + lo, &c);
	if (c.file_offset > off || off - c.file_offset >= c.length)
		return -EIO;
	*ret = lo;
	return 0;
}

/*
 * Cut a zero chunk down to its part inside [off, end). Zero chunks carry no
 * digest, and the index allows them beyond IM_CHUNK_MAX_LENGTH (a sparse
 * 8 GiB file may be one), so only the bytes asked for are ever allocated.
 */
static void clip_zero_chunk(struct im_chunk *c, uint64_t off, uint64_t end)
{
	uint64_t start = c->file_offset > off ? c->file_offset : off;
	uint64_t stop = c->file_offset + c->length < end ? c->file_offset + c->length : end;

	c->file_offset = start;
	c->length = stop - start;
}

/*
 * Decode the chunks covering [off, end), from chunk number first on,
 * checking that they are contiguous. With chunks NULL only count them and
 * sum their lengths. Chunks with data are kept whole, because the fetcher
 * verifies a chunk only as a whole.
 */
static int collect_chunks(const struct im_layer_index *idx, const struct im_entry *e,
			  uint32_t first, uint64_t off, uint64_t end, struct im_chunk *chunks,
			  size_t *ret_n, uint64_t *ret_len)
{
	uint64_t next = 0, total = 0;
	size_t n = 0;

	for (uint32_t i = first; i < e->chunk_count; i++) {
		struct im_chunk c;

		im_layer_index_chunk(idx, e->chunk_first + i, &c);
		if (n > 0 && c.file_offset != next)
			return -EIO;
		if (c.length == 0 || im_add_u64(c.file_offset, c.length, &next) < 0)
			return -EIO;

		if (c.flags & IM_CHUNK_ZEROS)
			clip_zero_chunk(&c, off, end);
		else if (c.length > IM_CHUNK_MAX_LENGTH)
			return -EIO;

		if (chunks)
			chunks[n] = c;
		n++;
		total += c.length;
		if (next >= end)
			break;
	}

	if (next < end)
		return -EIO;
	*ret_n = n;
	*ret_len = total;
	return 0;
}

/*
 * Read [off, end) of a regular file into a new buffer through the fetcher.
 * The buffer starts at the first covering chunk's file_offset, so the bytes
 * asked for begin at *ret_skip.
 */
static int read_range(const struct im_daemon_config *cfg, const struct im_tree_node *node,
		      const struct im_entry *e, uint64_t off, uint64_t end,
		      char **ret_buf, size_t *ret_skip)
{
	const struct im_mount_layer *layer = &cfg->layers[node->layer];
	struct im_chunk *chunks = NULL;
	char *buf = NULL;
	uint64_t total;
	uint32_t first;
	size_t n;
	int r;

	r = find_chunk(layer->index, e, off, &first);
	if (r < 0)
		return r;
	r = collect_chunks(layer->index, e, first, off, end, NULL, &n, &total);
	if (r < 0)
		return r;

	chunks = calloc(n, sizeof(*chunks));
	buf = malloc(total);
	if (!chunks || !buf) {
		r = -ENOMEM;
		goto out;
	}
	r = collect_chunks(layer->index, e, first, off, end, chunks, &n, &total);
	if (r < 0)
		goto out;

	r = im_fetcher_read(cfg->fetcher, &layer->blob, chunks, n, buf);
	if (r < 0)
		goto out;

	*ret_skip = off - chunks[0].file_offset;
	*ret_buf = buf;
	buf = NULL;
out:
	free(chunks);
	free(buf);
	return r;
}

void im_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	struct im_tree_node node;
	struct im_entry e;
	char *buf = NULL;
	size_t skip = 0;
	uint64_t end;
	int r;

	(void)fi;
	im_stats_add(fuse_reads, 1);

	r = im_tree_get_node(cfg->tree, ino, &node);
	if (r == 0 && (node.type != IM_ENTRY_REG || node.layer >= cfg->n_layers))
		r = -EIO;
	if (r == 0 && off < 0)
		r = -EINVAL;
	if (r == 0)
		r = im_tree_get_entry(cfg->tree, ino, &e);
	if (r < 0)
		goto fail;

	if ((uint64_t)off >= e.size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	end = e.size - (uint64_t)off < size ? e.size : (uint64_t)off + size;

	r = read_range(cfg, &node, &e, (uint64_t)off, end, &buf, &skip);
	if (r < 0)
		goto fail;

	fuse_reply_buf(req, buf + skip, (size_t)(end - (uint64_t)off));
	free(buf);
	return;
fail:
	im_stats_add(fuse_read_errors, 1);
	im_debug("read of inode %llu at %lld+%zu failed: %s", (unsigned long long)ino,
		 (long long)off, size, strerror(-r));
	fuse_reply_err(req, r == -ENOMEM || r == -EINVAL ? -r : EIO);
}

void im_ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}
