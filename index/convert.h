/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conversion of an uncompressed tar stream into a zstd:chunked blob as
 * containers/storage writes it (pkg/chunked/compressor):
 *
 *   [zstd frames whose decompression is the tar stream, byte for byte]
 *   [skippable frame: the zstd-compressed TOC JSON]
 *   [skippable frame: 64-byte footer]
 *
 * Header bytes (with pax and GNU extension headers, and the padding of the
 * previous entry's data) accumulate in a "metadata" frame. A regular file
 * with data ends that frame, and its data goes into one frame per chunk of
 * options.chunk_size bytes, the last one shorter. A new frame starts after
 * the last chunk. The end-of-archive blocks and any bytes after them form the last
 * frame. The footer holds, as little-endian u64: TOC offset, compressed
 * length, uncompressed length, manifest type 1, then tar-split offset and
 * lengths (all 0: no tar-split is written), then the magic "GNUlInUx".
 *
 * Memory stays bounded: data passes through fixed buffers, and the TOC is
 * compressed entry by entry. What grows is the compressed TOC and the chunk
 * list of the current file (at most IM_CONVERT_MAX_FILE_CHUNKS records).
 */
#ifndef IM_CONVERT_H
#define IM_CONVERT_H

#include <stdint.h>

#include "common/digest.h"
#include "index/stream.h"

#define IM_CONVERT_DEFAULT_CHUNK_SIZE (256u << 10)
#define IM_CONVERT_MIN_CHUNK_SIZE (4u << 10)
/* Readers reject larger chunks (IM_CHUNK_MAX_LENGTH in layer_index.h). */
#define IM_CONVERT_MAX_CHUNK_SIZE (64u << 20)
/*
 * Level 3 is the default because higher levels cost far more time than they
 * save space. One measurement used a 449 MB tar of Debian 12's /usr/bin and
 * Perl library directories, 256 KiB chunks and one thread of a 2-core AMD
 * EPYC VM. The blob was 38.8% of the tar at level 1 and 36.3% at level 3.
 * Level 9 gave 34.0% at about 3x the time of level 3, and level 19 gave
 * 31.4% at about 30x. A single `zstd -3` stream of the same tar is 34.1%,
 * so the frame per chunk costs about 7%.
 */
#define IM_CONVERT_DEFAULT_LEVEL 3
/* A file that would need more chunks gets larger chunks instead. */
#define IM_CONVERT_MAX_FILE_CHUNKS (1u << 18)

/* Footer: a skippable frame header and 64 bytes of content. */
#define IM_ZSTD_CHUNKED_FOOTER_SIZE 64u
#define IM_ZSTD_CHUNKED_FOOTER_MAGIC "GNUlInUx"
#define IM_ZSTD_CHUNKED_MANIFEST_TYPE 1

struct im_convert_options {
	uint64_t chunk_size;    /* IM_CONVERT_MIN_CHUNK_SIZE..IM_CONVERT_MAX_CHUNK_SIZE */
	int level;              /* zstd compression level */
};

struct im_convert_result {
	struct im_digest diff_id;       /* SHA-256 of the tar stream */
	uint64_t tar_size;
	struct im_digest blob_digest;   /* SHA-256 of the blob */
	uint64_t blob_size;
	struct im_digest toc_digest;    /* SHA-256 of the compressed TOC bytes */
	uint64_t toc_offset;            /* compressed TOC bytes in the blob */
	uint64_t toc_length;
	uint64_t toc_uncompressed_length;
	uint64_t n_entries;             /* tar entries */
	uint64_t n_chunks;              /* chunk frames written */
};

/* Check the chunk size and level ranges; log what is wrong.
 * Return: 0 or -EINVAL. */
int im_convert_check_options(const struct im_convert_options *opts);

/*
 * Read a tar stream from read and write the zstd:chunked blob to out_fd,
 * from its current position on (normally an empty file). The tar stream is
 * hashed on the way, so ret->diff_id covers every byte read, the bytes
 * after the end-of-archive marker included.
 * Return: 0, -EINVAL for bad options, -EBADMSG or -ENOTSUP for tar input
 * the converter cannot keep byte for byte (logged with the entry offset),
 * -EFBIG when the TOC or a file's chunk list would exceed its limit, or
 * the negative errno of a read or write.
 */
int im_convert_tar(im_read_fn read, void *opaque, int out_fd,
		   const struct im_convert_options *opts, struct im_convert_result *ret);

/* The manifest-position annotation "OFFSET:LENGTH:UNCOMPRESSED:1";
 * out needs 80 bytes. */
void im_convert_format_position(const struct im_convert_result *res, char *out,
				size_t out_size);

#endif
