/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streaming decompression into the caller's buffer. A streaming context is
 * used instead of one-shot ZSTD_decompressDCtx() because the compressed
 * range from the table of contents may end inside the next frame when the
 * writer recorded no end offset, so the frame boundary is unknown up front.
 *
 * Memory: each context accepts windows up to 2^27 bytes (128 MiB, libzstd's
 * default limit), allocated only as large as a frame needs. Contexts that
 * grew past POOL_KEEP_MAX_BYTES are freed after use instead of pooled, so
 * one unusual frame does not pin its window for the life of the process.
 */
#include "cache/chunk_decompress.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <zstd.h>

#define WINDOW_LOG_MAX 27
#define POOL_SIZE 8
#define POOL_KEEP_MAX_BYTES (8u << 20)

struct im_dctx_pool {
	pthread_mutex_t lock;
	ZSTD_DCtx *idle[POOL_SIZE];   /* protected by lock */
	unsigned idle_count;          /* protected by lock */
};

int im_dctx_pool_new(struct im_dctx_pool **ret)
{
	struct im_dctx_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	*ret = p;
	return 0;
}

void im_dctx_pool_free(struct im_dctx_pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->idle_count; i++)
		ZSTD_freeDCtx(p->idle[i]);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static ZSTD_DCtx *take_dctx(struct im_dctx_pool *p)
{
	ZSTD_DCtx *dctx = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->idle_count > 0)
		dctx = p->idle[--p->idle_count];
	pthread_mutex_unlock(&p->lock);
	if (dctx)
		return dctx;

	dctx = ZSTD_createDCtx();
	if (!dctx)
		return NULL;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, WINDOW_LOG_MAX))) {
		ZSTD_freeDCtx(dctx);
		return NULL;
	}
	return dctx;
}

static void return_dctx(struct im_dctx_pool *p, ZSTD_DCtx *dctx)
{
	if (ZSTD_sizeof_DCtx(dctx) <= POOL_KEEP_MAX_BYTES) {
		pthread_mutex_lock(&p->lock);
		if (p->idle_count < POOL_SIZE) {
			p->idle[p->idle_count++] = dctx;
			dctx = NULL;
		}
		pthread_mutex_unlock(&p->lock);
	}
	ZSTD_freeDCtx(dctx);
}

static int decompress_stream(ZSTD_DCtx *dctx, const void *src, size_t src_len,
			     void *dst, size_t len, const char **ret_reason)
{
	ZSTD_inBuffer in = { .src = src, .size = src_len, .pos = 0 };
	ZSTD_outBuffer out = { .dst = dst, .size = len, .pos = 0 };

	/* A context that failed mid-frame last time must start clean; the
	 * window limit set at creation survives a session reset. */
	ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);

	/* Frames that end are followed by the next one in the same stream, so
	 * a chunk split over several frames decodes in this one loop. */
	while (out.pos < out.size) {
		size_t in_before = in.pos;
		size_t out_before = out.pos;
		size_t r = ZSTD_decompressStream(dctx, &out, &in);

		if (ZSTD_isError(r)) {
			*ret_reason = ZSTD_getErrorName(r);
			return -EBADMSG;
		}
		if (in.pos == in_before && out.pos == out_before) {
			*ret_reason = "compressed range ends before the chunk's length";
			return -EBADMSG;
		}
	}
	return 0;
}

int im_chunk_decompress(struct im_dctx_pool *p, const void *src, size_t src_len,
			void *dst, size_t len, const char **ret_reason)
{
	ZSTD_DCtx *dctx;
	int r;

	dctx = take_dctx(p);
	if (!dctx)
		return -ENOMEM;

	r = decompress_stream(dctx, src, src_len, dst, len, ret_reason);
	return_dctx(p, dctx);
	return r;
}
