/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writes a blob made of zstd frames and skippable frames to a file
 * descriptor, keeping the exact blob offset of every byte so that the
 * converter can record where each frame starts and ends. The SHA-256 of
 * everything written is computed on the way. Internal to the converter.
 */
#ifndef IM_ZSTD_WRITER_H
#define IM_ZSTD_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zstd.h>

#include "common/digest.h"

/* Magic of the first zstd skippable frame type, stored little-endian. */
#define IM_ZSTD_SKIPPABLE_MAGIC 0x184D2A50u
/* Magic number followed by the 4-byte frame length. */
#define IM_ZSTD_SKIPPABLE_HEADER_SIZE 8u

struct im_zstd_writer {
	int fd;
	uint8_t *buffer;                /* compressed bytes not yet written to fd */
	size_t buffer_len;
	uint64_t offset;                /* blob offset of the next byte produced */
	struct im_sha256_ctx *sha256;
	ZSTD_CCtx *cctx;
	bool frame_open;                /* input was given since the last frame end */
	uint64_t n_frames;              /* zstd frames ended so far */
};

/* Start writing at the current position of fd, which counts as offset 0.
 * Return: 0, -EINVAL for a level zstd rejects, or -ENOMEM. */
int im_zstd_writer_init(struct im_zstd_writer *w, int fd, int level);
void im_zstd_writer_clear(struct im_zstd_writer *w);

/*
 * Declare the uncompressed size of the next frame, so that its header
 * records the content size; the frame must then receive exactly size
 * bytes. Call only when no frame is open.
 */
int im_zstd_writer_pledge(struct im_zstd_writer *w, uint64_t size);

/* Compress data into the open frame, opening one if needed. */
int im_zstd_writer_compress(struct im_zstd_writer *w, const void *data, size_t len);

/* End the open frame; nothing happens when no frame is open. Afterwards
 * w->offset is the blob offset right after the frame. */
int im_zstd_writer_end_frame(struct im_zstd_writer *w);

/* Write an empty zstd frame (its content is zero bytes). */
int im_zstd_writer_empty_frame(struct im_zstd_writer *w);

/* Append a skippable frame holding len bytes of data. */
int im_zstd_writer_skippable(struct im_zstd_writer *w, const void *data, size_t len);

/* Flush everything to fd and return the blob's SHA-256. */
int im_zstd_writer_finish(struct im_zstd_writer *w, struct im_digest *ret);

#endif
