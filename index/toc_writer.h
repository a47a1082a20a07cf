/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writes the zstd:chunked table of contents (TOC) as containers/storage
 * defines it: {"version":1,"entries":[...]} with one JSON object per tar
 * entry and one per further chunk of a regular file, zero-valued fields
 * left out. Each entry is serialized with json-c as soon as it is known and
 * fed to a zstd stream, so memory contains the compressed TOC, never the
 * JSON of the whole layer. Internal to the converter.
 */
#ifndef IM_TOC_WRITER_H
#define IM_TOC_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zstd.h>

#include "common/digest.h"
#include "index/tar_reader.h"

/* One compressed chunk of a regular file. */
struct im_toc_chunk {
	uint64_t file_offset;
	uint64_t length;        /* uncompressed bytes */
	uint64_t blob_offset;   /* the chunk's zstd frame in the blob */
	uint64_t blob_end;
	struct im_digest digest; /* SHA-256 of the uncompressed bytes */
	bool zeros;             /* every byte is zero */
};

struct im_toc_writer {
	ZSTD_CCtx *cctx;
	uint8_t *compressed;
	size_t compressed_len, compressed_cap;
	uint64_t json_len;      /* uncompressed TOC bytes so far */
	uint64_t n_entries;
};

int im_toc_writer_init(struct im_toc_writer *t, int level);
void im_toc_writer_clear(struct im_toc_writer *t);

/*
 * Append the TOC entries for one tar entry: its own entry and, for a
 * regular file of more than one chunk, a "chunk" entry per further chunk.
 * file_digest is the SHA-256 of the whole file (ignored for empty files).
 * Return: 0, -EINVAL for an mtime outside the years 0000..9999 that
 * RFC 3339 can express (logged), -EFBIG past IM_TOC_MAX_LENGTH, -ENOMEM.
 */
int im_toc_writer_add(struct im_toc_writer *t, const struct im_tar_entry *e,
		      const struct im_digest *file_digest,
		      const struct im_toc_chunk *chunks, size_t n_chunks);

/*
 * Close the JSON document and the zstd frame. Afterwards t->compressed
 * contains compressed_len bytes that decompress to json_len bytes.
 */
int im_toc_writer_finish(struct im_toc_writer *t);

/*
 * Format seconds and nanoseconds since the epoch as RFC 3339 UTC the way
 * Go's time.Time marshals to JSON: "2022-02-08T12:57:13.182744228Z", with
 * trailing zeros of the fraction dropped and no fraction when it is zero.
 * out needs 32 bytes. Return: 0, or -ERANGE outside the years 0000..9999.
 */
int im_toc_format_time(int64_t sec, uint32_t nsec, char *out, size_t out_size);

/* Standard base64 with padding (RFC 4648) into a malloc'd string. */
char *im_toc_base64_encode(const uint8_t *data, size_t len);

#endif
