/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Layer decompression as a pull stream. The decompressor owns one input
 * buffer and writes its output straight into the caller's buffer. Memory
 * is therefore the input buffer plus the codec's own state: zlib's 32 KiB
 * window, or a zstd window capped by the library's default limit.
 */
#include "index/decompress.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "common/log.h"

#define INPUT_BUFFER_SIZE (128u << 10)
/* Bytes im_compression_sniff() needs to decide. */
#define SNIFF_LENGTH 4

/* zlib windowBits: a 32 KiB window, plus 32 to accept gzip or zlib headers. */
#define GZIP_WINDOW_BITS (15 + 32)

struct im_decompressor {
	enum im_compression compression;
	im_read_fn read;
	void *opaque;
	uint8_t *input;
	size_t input_pos, input_len;
	bool input_ended;
	uint64_t consumed;              /* compressed bytes handed to the codec */

	z_stream gzip;
	bool gzip_ready;                /* inflateInit2() succeeded */
	bool gzip_in_member;            /* a member started and has not ended */

	ZSTD_DCtx *zstd;
	bool zstd_in_frame;             /* a frame started and has not ended */
};

ssize_t im_read_fd(void *opaque, void *buf, size_t len)
{
	int fd = *(int *)opaque;

	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

enum im_compression im_compression_sniff(const void *head, size_t len)
{
	const uint8_t *p = head;

	if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return IM_COMPRESSION_IS_GZIP;
	if (len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
		return IM_COMPRESSION_IS_ZSTD;
	if (len >= 4 && (p[0] & 0xf0) == 0x50 && p[1] == 0x2a && p[2] == 0x4d && p[3] == 0x18)
		return IM_COMPRESSION_IS_ZSTD;
	return IM_COMPRESSION_IS_NONE;
}

const char *im_compression_name(enum im_compression c)
{
	switch (c) {
	case IM_COMPRESSION_IS_GZIP:
		return "gzip";
	case IM_COMPRESSION_IS_ZSTD:
		return "zstd";
	case IM_COMPRESSION_IS_NONE:
		return "none";
	default:
		return "undetected";
	}
}

int im_decompressor_new(enum im_compression compression, im_read_fn read,
			void *opaque, struct im_decompressor **ret)
{
	struct im_decompressor *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->input = malloc(INPUT_BUFFER_SIZE);
	if (!d->input) {
		free(d);
		return -ENOMEM;
	}
	d->compression = compression;
	d->read = read;
	d->opaque = opaque;
	*ret = d;
	return 0;
}

void im_decompressor_free(struct im_decompressor *d)
{
	if (!d)
		return;
	if (d->gzip_ready)
		inflateEnd(&d->gzip);
	ZSTD_freeDCtx(d->zstd);
	free(d->input);
	free(d);
}

enum im_compression im_decompressor_compression(const struct im_decompressor *d)
{
	return d->compression;
}

/* Append source bytes after the unconsumed input. Return: 0 or -errno. */
static int fill_input(struct im_decompressor *d)
{
	ssize_t got;

	if (d->input_ended)
		return 0;
	if (d->input_pos > 0) {
		memmove(d->input, d->input + d->input_pos, d->input_len - d->input_pos);
		d->input_len -= d->input_pos;
		d->input_pos = 0;
	}
	if (d->input_len == INPUT_BUFFER_SIZE)
		return 0;

	got = d->read(d->opaque, d->input + d->input_len, INPUT_BUFFER_SIZE - d->input_len);
	if (got < 0)
		return (int)got;
	if (got == 0)
		d->input_ended = true;
	d->input_len += (size_t)got;
	return 0;
}

static size_t input_available(const struct im_decompressor *d)
{
	return d->input_len - d->input_pos;
}

static void consume_input(struct im_decompressor *d, size_t n)
{
	d->input_pos += n;
	d->consumed += n;
}

static int start_codec(struct im_decompressor *d)
{
	while (d->compression == IM_COMPRESSION_DETECT) {
		int r;

		if (input_available(d) >= SNIFF_LENGTH || d->input_ended) {
			d->compression = im_compression_sniff(d->input + d->input_pos,
							      input_available(d));
			im_debug("layer compression detected from its first bytes: %s",
				 im_compression_name(d->compression));
			break;
		}
		r = fill_input(d);
		if (r < 0)
			return r;
	}

	if (d->compression == IM_COMPRESSION_IS_GZIP && !d->gzip_ready) {
		if (inflateInit2(&d->gzip, GZIP_WINDOW_BITS) != Z_OK)
			return -ENOMEM;
		d->gzip_ready = true;
	}
	if (d->compression == IM_COMPRESSION_IS_ZSTD && !d->zstd) {
		d->zstd = ZSTD_createDCtx();
		if (!d->zstd)
			return -ENOMEM;
	}
	return 0;
}

static ssize_t read_plain(struct im_decompressor *d, uint8_t *buf, size_t len)
{
	size_t n;
	int r;

	if (input_available(d) == 0) {
		r = fill_input(d);
		if (r < 0)
			return r;
	}
	n = input_available(d);
	if (n > len)
		n = len;
	memcpy(buf, d->input + d->input_pos, n);
	consume_input(d, n);
	return (ssize_t)n;
}

static ssize_t read_gzip(struct im_decompressor *d, uint8_t *buf, size_t len)
{
	for (;;) {
		size_t available, produced;
		int r;

		if (input_available(d) == 0) {
			r = fill_input(d);
			if (r < 0)
				return r;
		}
		available = input_available(d);
		if (available == 0 && d->input_ended) {
			if (!d->gzip_in_member)
				return 0;
			im_err("decompressing the gzip layer failed: the stream ends after "
			       "%" PRIu64 " bytes, inside a gzip member", d->consumed);
			return -EBADMSG;
		}

		d->gzip.next_in = d->input + d->input_pos;
		d->gzip.avail_in = available > UINT32_MAX ? UINT32_MAX : (uInt)available;
		d->gzip.next_out = buf;
		d->gzip.avail_out = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
		if (available > 0)
			d->gzip_in_member = true;

		r = inflate(&d->gzip, Z_NO_FLUSH);
		consume_input(d, available - d->gzip.avail_in);
		produced = (size_t)(d->gzip.next_out - buf);

		if (r == Z_STREAM_END) {
			/* Another member may follow (multi-member gzip). */
			d->gzip_in_member = false;
			if (inflateReset(&d->gzip) != Z_OK)
				return -EBADMSG;
		} else if (r != Z_OK && r != Z_BUF_ERROR) {
			im_err("decompressing the gzip layer failed at compressed offset %" PRIu64
			       ": %s", d->consumed, d->gzip.msg ? d->gzip.msg : zError(r));
			return -EBADMSG;
		}
		if (produced > 0)
			return (ssize_t)produced;
	}
}

static ssize_t read_zstd(struct im_decompressor *d, uint8_t *buf, size_t len)
{
	for (;;) {
		ZSTD_outBuffer out = { buf, len, 0 };
		ZSTD_inBuffer in;
		size_t ret;
		int r;

		if (input_available(d) == 0) {
			r = fill_input(d);
			if (r < 0)
				return r;
		}

		/* Called even without input, to flush output the codec holds. */
		in = (ZSTD_inBuffer) { d->input + d->input_pos, input_available(d), 0 };
		ret = ZSTD_decompressStream(d->zstd, &out, &in);
		consume_input(d, in.pos);
		if (ZSTD_isError(ret)) {
			im_err("decompressing the zstd layer failed at compressed offset %" PRIu64
			       ": %s", d->consumed, ZSTD_getErrorName(ret));
			return -EBADMSG;
		}
		/* 0 means a frame just ended; input consumed otherwise means one is
		 * under way (a call without input only returns a hint). */
		if (ret == 0)
			d->zstd_in_frame = false;
		else if (in.pos > 0)
			d->zstd_in_frame = true;

		if (out.pos > 0)
			return (ssize_t)out.pos;
		if (input_available(d) == 0 && d->input_ended) {
			if (!d->zstd_in_frame)
				return 0;
			im_err("decompressing the zstd layer failed: the stream ends after "
			       "%" PRIu64 " bytes, inside a frame", d->consumed);
			return -EBADMSG;
		}
	}
}

ssize_t im_decompressor_read(void *opaque, void *buf, size_t len)
{
	struct im_decompressor *d = opaque;
	int r;

	if (len == 0)
		return 0;
	r = start_codec(d);
	if (r < 0)
		return r;

	switch (d->compression) {
	case IM_COMPRESSION_IS_GZIP:
		return read_gzip(d, buf, len);
	case IM_COMPRESSION_IS_ZSTD:
		return read_zstd(d, buf, len);
	default:
		return read_plain(d, buf, len);
	}
}
