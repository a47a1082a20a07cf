/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zstd:chunked table of contents (TOC): where it sits in the layer blob,
 * and its compilation into a layer index.
 *
 * Two generations of annotations exist. containers/storage writes
 * "io.github.containers.zstd-chunked.manifest-position" and
 * "...manifest-checksum"; older writers (stargz-snapshotter's ctr-remote
 * 0.12) use the same names without the "github." part. Both carry
 * "OFFSET:LENGTH:UNCOMPRESSED_LENGTH:TYPE" and the digest of the compressed
 * TOC bytes.
 */
#ifndef IM_TOC_H
#define IM_TOC_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "index/layer_index.h"

#define IM_ZSTD_CHUNKED_POSITION_KEY "io.github.containers.zstd-chunked.manifest-position"
#define IM_ZSTD_CHUNKED_CHECKSUM_KEY "io.github.containers.zstd-chunked.manifest-checksum"
#define IM_ZSTD_CHUNKED_TARSPLIT_KEY "io.github.containers.zstd-chunked.tarsplit-position"
#define IM_ZSTD_CHUNKED_OLD_POSITION_KEY "io.containers.zstd-chunked.manifest-position"
#define IM_ZSTD_CHUNKED_OLD_CHECKSUM_KEY "io.containers.zstd-chunked.manifest-checksum"

/* Largest uncompressed TOC accepted (bounds the decompression buffer). */
#define IM_TOC_MAX_LENGTH (512u << 20)

struct im_toc_location {
	uint64_t offset;              /* compressed TOC bytes in the blob */
	uint64_t length;
	uint64_t uncompressed_length;
	struct im_digest digest;      /* SHA-256 of the compressed TOC bytes */
};

/*
 * Parse the position and checksum annotation values, and check the range
 * against blob_size.
 * Return: 0 or -EINVAL (logged with the bad value).
 */
int im_toc_location_parse(const char *position, const char *checksum,
			  uint64_t blob_size, struct im_toc_location *ret);

/*
 * Decompress a TOC fetched from loc (the caller has already checked its
 * digest). The result must be exactly loc->uncompressed_length bytes.
 * Return: 0 with a malloc'd *ret, or -EBADMSG/-ENOMEM.
 */
int im_toc_decompress(const void *compressed, size_t len,
		      const struct im_toc_location *loc, void **ret);

/*
 * Parse TOC JSON (untrusted, len bytes, not NUL-terminated) and build the
 * layer index: names cleaned, whiteouts classified, chunks checked against
 * blob_size. A bare ".wh." name or any malformed field rejects the layer.
 * Return: 0 with a builder the caller writes and frees, or -EBADMSG with the
 * reason logged.
 */
int im_toc_compile(const void *json, size_t len, const struct im_digest *toc_digest,
		   uint64_t blob_size, struct im_index_builder **ret);

#endif
