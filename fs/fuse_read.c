/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File data: open, read and release of regular files.
 *
 * A read finds the chunks that cover the requested range by binary search
 * on their file offsets. The fetcher fills one buffer with exactly those
 * chunks (from the cache, or fetched and verified against their SHA-256),
 * and the reply carries the requested slice. Files are opened with keep_cache,
 * because their bytes never change while the mount lives.
 *
 * Fewer round trips on a cold start come from three places. Each read
 * passes the file's following chunks to the fetcher, which adds the missing
 * ones to its range request up to about 1 MiB. Each open file also tracks
 * whether its reads are sequential, and then queues read-ahead of a window
 * that doubles from 1 MiB to 8 MiB, fetched in the background. And the
 * first read of a file that misses queues the rest of the file and files
 * of the same kind in its directory (fs/miss_prefetch.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "fs/fuse_ops.h"
#include "fs/miss_prefetch.h"

/* Following chunks passed to the fetcher with a read. The fetcher takes
 * them up to 1 MiB compressed, so this only bounds the array. */
#define FOLLOWING_MAX_CHUNKS 32
#define FOLLOWING_MAX_BYTES (1u << 20)

/* A read counts as sequential when it starts within this many bytes of
 * where the previous read ended, because the kernel's read-ahead requests
 * of one file can reach the daemon's threads out of order. */
#define SEQUENTIAL_SLACK (1u << 20)

#define WINDOW_MIN (1u << 20)
#define WINDOW_MAX (8u << 20)

/* Chunks in one read-ahead request: 8 MiB of 256 KiB chunks, with room
 * for smaller ones. */
#define READ_AHEAD_MAX_CHUNKS 128

/* Sequential-read state of one open file, kept in fi->fh. */
struct read_stream {
	pthread_mutex_t lock;
	uint64_t next_offset;  /* end of the previous read, 0 before the first */
	uint64_t window;       /* read-ahead bytes, 0 while reads are not sequential */
	uint64_t ahead_end;    /* end of the range read-ahead has queued */
};

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

	/* Without the state the file is read without read-ahead. */
	struct read_stream *stream = calloc(1, sizeof(*stream));

	if (stream)
		pthread_mutex_init(&stream->lock, NULL);
	fi->fh = (uint64_t)(uintptr_t)stream;

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
 * Append to chunks[n..) the file's chunks after chunk number next, for the
 * fetcher to fetch with a missing read: at most FOLLOWING_MAX_CHUNKS and
 * FOLLOWING_MAX_BYTES compressed, stopping at a zero chunk.
 * Return: how many were appended.
 */
static size_t collect_following(const struct im_layer_index *idx, const struct im_entry *e,
				uint32_t next, struct im_chunk *chunks)
{
	uint64_t compressed = 0;
	size_t n = 0;

	for (uint32_t i = next; i < e->chunk_count && n < FOLLOWING_MAX_CHUNKS; i++) {
		struct im_chunk c;

		im_layer_index_chunk(idx, e->chunk_first + i, &c);
		if ((c.flags & IM_CHUNK_ZEROS) || c.length > IM_CHUNK_MAX_LENGTH)
			break;
		compressed += c.blob_length;
		if (compressed > FOLLOWING_MAX_BYTES)
			break;
		chunks[n++] = c;
	}
	return n;
}

/* The file a read is for, and the bytes it requests, for on_miss(). */
struct read_target {
	const struct im_daemon_config *cfg;
	uint64_t ino;
	const struct im_tree_node *node;
	const struct im_entry *e;
	uint64_t fetch_start;
	uint64_t fetch_end;
};

static void on_miss(void *context)
{
	const struct read_target *t = context;

	im_miss_prefetch_queue(t->cfg, t->ino, t->node, t->e, t->fetch_start, t->fetch_end);
}

/*
 * Read [off, end) of regular file ino into a new buffer through the
 * fetcher. The buffer starts at the first covering chunk's file_offset, so
 * the bytes asked for begin at *ret_skip.
 */
static int read_range(const struct im_daemon_config *cfg, uint64_t ino,
		      const struct im_tree_node *node, const struct im_entry *e,
		      uint64_t off, uint64_t end, char **ret_buf, size_t *ret_skip)
{
	const struct im_mount_layer *layer = &cfg->layers[node->layer];
	struct im_chunk *chunks = NULL;
	char *buf = NULL;
	uint64_t total;
	uint32_t first;
	size_t n, n_next;
	int r;

	r = find_chunk(layer->index, e, off, &first);
	if (r < 0)
		return r;
	r = collect_chunks(layer->index, e, first, off, end, NULL, &n, &total);
	if (r < 0)
		return r;

	chunks = calloc(n + FOLLOWING_MAX_CHUNKS, sizeof(*chunks));
	buf = malloc(total);
	if (!chunks || !buf) {
		r = -ENOMEM;
		goto out;
	}
	r = collect_chunks(layer->index, e, first, off, end, chunks, &n, &total);
	if (r < 0)
		goto out;
	n_next = collect_following(layer->index, e, first + (uint32_t)n, chunks + n);

	struct read_target target = {
		.cfg = cfg,
		.ino = ino,
		.node = node,
		.e = e,
		.fetch_start = chunks[0].file_offset,
		.fetch_end = chunks[n - 1].file_offset + chunks[n - 1].length,
	};
	r = im_fetcher_read_on_miss(cfg->fetcher, &layer->blob, chunks, n, n_next, buf,
				    on_miss, &target);
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

/*
 * Record a read of [off, end) and return in [*start, *stop) the range to
 * read ahead, empty when reads are not sequential or the queued read-ahead
 * still covers half a window past end.
 */
static void plan_read_ahead(struct read_stream *stream, uint64_t off, uint64_t end,
			    uint64_t *start, uint64_t *stop)
{
	bool sequential;

	*start = *stop = 0;
	pthread_mutex_lock(&stream->lock);

	sequential = stream->next_offset != 0 &&
		     off + SEQUENTIAL_SLACK >= stream->next_offset &&
		     off <= stream->next_offset + SEQUENTIAL_SLACK;
	if (!sequential) {
		stream->window = 0;
		stream->ahead_end = 0;
		stream->next_offset = end;
		pthread_mutex_unlock(&stream->lock);
		return;
	}

	if (end > stream->next_offset)
		stream->next_offset = end;
	if (stream->window == 0)
		stream->window = WINDOW_MIN;
	else if (stream->window < WINDOW_MAX)
		stream->window *= 2;

	if (stream->ahead_end < end + stream->window / 2) {
		*start = stream->ahead_end > end ? stream->ahead_end : end;
		*stop = end + stream->window;
		stream->ahead_end = *stop;
	}
	pthread_mutex_unlock(&stream->lock);
}

/* Queue a background fetch of the chunks with data that overlap [start, stop). */
static void queue_read_ahead(const struct im_daemon_config *cfg, const struct im_tree_node *node,
			     const struct im_entry *e, uint64_t start, uint64_t stop)
{
	const struct im_mount_layer *layer = &cfg->layers[node->layer];
	struct im_chunk chunks[READ_AHEAD_MAX_CHUNKS];
	uint32_t first;
	size_t n = 0;

	if (start >= e->size || find_chunk(layer->index, e, start, &first) < 0)
		return;

	for (uint32_t i = first; i < e->chunk_count && n < READ_AHEAD_MAX_CHUNKS; i++) {
		struct im_chunk c;

		im_layer_index_chunk(layer->index, e->chunk_first + i, &c);
		if (c.file_offset >= stop)
			break;
		if (c.flags & IM_CHUNK_ZEROS)
			continue;
		if (c.length > IM_CHUNK_MAX_LENGTH)
			break;
		chunks[n++] = c;
	}

	/* A full queue drops the request; a later read queues the range again. */
	im_fetcher_prefetch(cfg->fetcher, &layer->blob, chunks, n);
}

/*
 * Record a read of [off, end) of a sequentially read file and return in
 * [*start, *stop) the range to read ahead. This must run before the read
 * gets its reply, because the kernel may release the file, and so free its
 * state, as soon as the last read on it has been replied to.
 */
static void plan_after_read(const struct im_entry *e, struct fuse_file_info *fi,
			    uint64_t off, uint64_t end, uint64_t *start, uint64_t *stop)
{
	struct read_stream *stream = (struct read_stream *)(uintptr_t)fi->fh;

	*start = *stop = 0;
	if (!stream || end >= e->size)
		return;
	plan_read_ahead(stream, off, end, start, stop);
}

void im_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	struct im_tree_node node;
	struct im_entry e;
	uint64_t ahead_start, ahead_stop;
	char *buf = NULL;
	size_t skip = 0;
	uint64_t end;
	int r;

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

	r = read_range(cfg, ino, &node, &e, (uint64_t)off, end, &buf, &skip);
	if (r < 0)
		goto fail;

	plan_after_read(&e, fi, (uint64_t)off, end, &ahead_start, &ahead_stop);
	fuse_reply_buf(req, buf + skip, (size_t)(end - (uint64_t)off));
	free(buf);
	if (ahead_start < ahead_stop)
		queue_read_ahead(cfg, &node, &e, ahead_start, ahead_stop);
	return;
fail:
	im_stats_add(fuse_read_errors, 1);
	im_debug("read of inode %llu at %lld+%zu failed: %s", (unsigned long long)ino,
		 (long long)off, size, strerror(-r));
	fuse_reply_err(req, r == -ENOMEM || r == -EINVAL ? -r : EIO);
}

void im_ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct read_stream *stream = (struct read_stream *)(uintptr_t)fi->fh;

	(void)ino;
	if (stream) {
		pthread_mutex_destroy(&stream->lock);
		free(stream);
	}
	fuse_reply_err(req, 0);
}
