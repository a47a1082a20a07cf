/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streaming decompression of a layer blob into its tar stream: gzip (one
 * or more members) through zlib, zstd (one or more frames, skippable
 * frames ignored) through libzstd, or no compression. Memory stays bounded
 * whatever the blob holds: zstd frames that need a window over 128 MiB
 * (zstd's default limit, ZSTD_WINDOWLOG_LIMIT_DEFAULT = 27) are rejected.
 */
#ifndef IM_DECOMPRESS_H
#define IM_DECOMPRESS_H

#include <stddef.h>
#include <sys/types.h>

#include "index/stream.h"

enum im_compression {
	IM_COMPRESSION_DETECT = 0, /* decide from the first bytes of the stream */
	IM_COMPRESSION_IS_NONE,
	IM_COMPRESSION_IS_GZIP,
	IM_COMPRESSION_IS_ZSTD,
};

/*
 * Classify a stream by its first bytes. The gzip magic 1f 8b means gzip,
 * and the zstd frame magic 28 b5 2f fd or a skippable frame magic
 * (50..5f 2a 4d 18) means zstd. Anything else, such as a tar header or an
 * empty stream, is uncompressed.
 */
enum im_compression im_compression_sniff(const void *head, size_t len);

/* Name for messages: "gzip", "zstd" or "none". */
const char *im_compression_name(enum im_compression c);

struct im_decompressor;

/*
 * Create a decompressor that pulls compressed bytes from read. With
 * IM_COMPRESSION_DETECT the first bytes decide (im_compression_sniff()).
 * Return: 0 or -ENOMEM.
 */
int im_decompressor_new(enum im_compression compression, im_read_fn read,
			void *opaque, struct im_decompressor **ret);
void im_decompressor_free(struct im_decompressor *d);

/*
 * Read up to len bytes of decompressed data; it has the im_read_fn
 * signature, so it can feed the tar reader directly (opaque is the
 * decompressor).
 * Return: bytes read, 0 at the end, -EBADMSG for corrupt or truncated
 * input (logged), or the source's negative errno.
 */
ssize_t im_decompressor_read(void *opaque, void *buf, size_t len);

/* The compression in use; after the first read for IM_COMPRESSION_DETECT. */
enum im_compression im_decompressor_compression(const struct im_decompressor *d);

#endif
