/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zstd frame writer for the converter. Frames carry the content checksum
 * (XXH64), so a stock decoder verifies each frame on its own, and chunk
 * frames carry their content size.
 */
#include "index/zstd_writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define OUTPUT_BUFFER_SIZE (256u << 10)

int im_zstd_writer_init(struct im_zstd_writer *w, int fd, int level)
{
	size_t ret;

	*w = (struct im_zstd_writer) { .fd = fd };
	w->buffer = malloc(OUTPUT_BUFFER_SIZE);
	w->sha256 = im_sha256_new();
	w->cctx = ZSTD_createCCtx();
	if (!w->buffer || !w->sha256 || !w->cctx) {
		im_zstd_writer_clear(w);
		return -ENOMEM;
	}

	ret = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(ret))
		ret = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
	if (ZSTD_isError(ret)) {
		im_err("setting zstd compression level %d failed: %s", level,
		       ZSTD_getErrorName(ret));
		im_zstd_writer_clear(w);
		return -EINVAL;
	}
	return 0;
}

void im_zstd_writer_clear(struct im_zstd_writer *w)
{
	free(w->buffer);
	im_sha256_free(w->sha256);
	ZSTD_freeCCtx(w->cctx);
	w->buffer = NULL;
	w->sha256 = NULL;
	w->cctx = NULL;
}

static int flush_buffer(struct im_zstd_writer *w)
{
	int r;

	if (w->buffer_len == 0)
		return 0;
	r = im_write_full(w->fd, w->buffer, w->buffer_len);
	if (r < 0)
		return im_log_errno(r, "writing the converted layer failed");
	im_sha256_update(w->sha256, w->buffer, w->buffer_len);
	w->buffer_len = 0;
	return 0;
}

/* Run the compressor until the input is consumed, and for ZSTD_e_end until
 * the frame is complete. */
static int run_compressor(struct im_zstd_writer *w, const void *data, size_t len,
			  ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = { data, len, 0 };

	for (;;) {
		ZSTD_outBuffer out = { w->buffer, OUTPUT_BUFFER_SIZE, w->buffer_len };
		size_t remaining = ZSTD_compressStream2(w->cctx, &out, &in, mode);
		int r;

		if (ZSTD_isError(remaining)) {
			im_err("zstd compression failed: %s", ZSTD_getErrorName(remaining));
			return -EIO;
		}
		w->offset += out.pos - w->buffer_len;
		w->buffer_len = out.pos;
		if (w->buffer_len == OUTPUT_BUFFER_SIZE) {
			r = flush_buffer(w);
			if (r < 0)
				return r;
		}

		if (mode == ZSTD_e_end ? remaining == 0 : in.pos == in.size)
			return 0;
	}
}

int im_zstd_writer_pledge(struct im_zstd_writer *w, uint64_t size)
{
	size_t ret;

	if (w->frame_open)
		return -EINVAL;
	ret = ZSTD_CCtx_setPledgedSrcSize(w->cctx, size);
	return ZSTD_isError(ret) ? -EINVAL : 0;
}

int im_zstd_writer_compress(struct im_zstd_writer *w, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	w->frame_open = true;
	return run_compressor(w, data, len, ZSTD_e_continue);
}

int im_zstd_writer_end_frame(struct im_zstd_writer *w)
{
	int r;

	if (!w->frame_open)
		return 0;
	r = run_compressor(w, NULL, 0, ZSTD_e_end);
	if (r < 0)
		return r;
	w->frame_open = false;
	w->n_frames++;
	return 0;
}

int im_zstd_writer_empty_frame(struct im_zstd_writer *w)
{
	int r;

	if (w->frame_open)
		return -EINVAL;
	r = run_compressor(w, NULL, 0, ZSTD_e_end);
	if (r < 0)
		return r;
	w->n_frames++;
	return 0;
}

/* Copy bytes that are not compressed (skippable frames) to the output. */
static int append_plain(struct im_zstd_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		size_t n = OUTPUT_BUFFER_SIZE - w->buffer_len;
		int r;

		if (n > len)
			n = len;
		memcpy(w->buffer + w->buffer_len, p, n);
		w->buffer_len += n;
		w->offset += n;
		p += n;
		len -= n;
		if (w->buffer_len == OUTPUT_BUFFER_SIZE) {
			r = flush_buffer(w);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int im_zstd_writer_skippable(struct im_zstd_writer *w, const void *data, size_t len)
{
	uint8_t header[IM_ZSTD_SKIPPABLE_HEADER_SIZE];
	int r;

	if (w->frame_open || len > UINT32_MAX)
		return -EINVAL;
	put_le32(header, IM_ZSTD_SKIPPABLE_MAGIC);
	put_le32(header + 4, (uint32_t)len);

	r = append_plain(w, header, sizeof(header));
	if (r < 0)
		return r;
	return append_plain(w, data, len);
}

int im_zstd_writer_finish(struct im_zstd_writer *w, struct im_digest *ret)
{
	int r = flush_buffer(w);

	if (r < 0)
		return r;
	im_sha256_final(w->sha256, ret);
	return 0;
}
