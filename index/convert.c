/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The converter's main loop: tar entries in, zstd frames and TOC entries
 * out. The frame layout is described in convert.h.
 */
#include "index/convert.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "index/tar_reader.h"
#include "index/toc_writer.h"
#include "index/zstd_writer.h"

#define DATA_BUFFER_SIZE (128u << 10)

struct converter {
	const struct im_convert_options *opts;
	im_read_fn source;
	void *source_opaque;
	struct im_sha256_ctx *tar_sha256;       /* of every byte read from source */
	uint64_t tar_size;

	struct im_tar_reader *tar;
	struct im_zstd_writer out;
	struct im_toc_writer toc;

	uint8_t *data;                          /* DATA_BUFFER_SIZE bytes */
	struct im_sha256_ctx *file_sha256;
	struct im_sha256_ctx *chunk_sha256;
	struct im_toc_chunk *chunks;            /* of the current file */
	size_t n_chunks, chunks_cap;
	uint64_t total_chunks;
};

/* The tar reader pulls through this, so the diff ID covers what it reads. */
static ssize_t hashing_read(void *opaque, void *buf, size_t len)
{
	struct converter *c = opaque;
	ssize_t got = c->source(c->source_opaque, buf, len);

	if (got > 0) {
		im_sha256_update(c->tar_sha256, buf, (size_t)got);
		c->tar_size += (uint64_t)got;
	}
	return got;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i])
			return false;
	}
	return true;
}

/* Chunk length for a file of size bytes: the option, grown so that the
 * file needs at most IM_CONVERT_MAX_FILE_CHUNKS chunks. */
static int file_chunk_size(const struct converter *c, const struct im_tar_entry *e,
			   uint64_t *ret)
{
	uint64_t size = c->opts->chunk_size;
	uint64_t needed = e->size / IM_CONVERT_MAX_FILE_CHUNKS +
			  (e->size % IM_CONVERT_MAX_FILE_CHUNKS != 0);

	if (needed > size)
		size = needed;
	if (size > IM_CONVERT_MAX_CHUNK_SIZE) {
		im_err("tar entry \"%s\" at offset %" PRIu64 " has %" PRIu64 " bytes, more than "
		       "%u chunks of at most %u bytes can describe",
		       e->name, e->offset, e->size, IM_CONVERT_MAX_FILE_CHUNKS,
		       IM_CONVERT_MAX_CHUNK_SIZE);
		return -EFBIG;
	}
	*ret = size;
	return 0;
}

static int push_chunk(struct converter *c, const struct im_toc_chunk *chunk)
{
	if (c->n_chunks == c->chunks_cap) {
		size_t cap = c->chunks_cap ? 2 * c->chunks_cap : 64;
		struct im_toc_chunk *p = reallocarray(c->chunks, cap, sizeof(*p));

		if (!p)
			return -ENOMEM;
		c->chunks = p;
		c->chunks_cap = cap;
	}
	c->chunks[c->n_chunks++] = *chunk;
	return 0;
}

/* Compress length bytes of the current file's data as one frame. */
static int write_chunk(struct converter *c, uint64_t file_offset, uint64_t length)
{
	struct im_toc_chunk chunk = {
		.file_offset = file_offset,
		.length = length,
		.blob_offset = c->out.offset,
		.zeros = true,
	};
	uint64_t left = length;
	int r;

	r = im_zstd_writer_pledge(&c->out, length);
	if (r < 0)
		return r;
	im_sha256_reset(c->chunk_sha256);

	while (left > 0) {
		size_t want = left < DATA_BUFFER_SIZE ? (size_t)left : DATA_BUFFER_SIZE;
		ssize_t got = im_tar_reader_read(c->tar, c->data, want);

		if (got < 0)
			return (int)got;
		if (got == 0)
			return -EBADMSG;

		im_sha256_update(c->file_sha256, c->data, (size_t)got);
		im_sha256_update(c->chunk_sha256, c->data, (size_t)got);
		if (chunk.zeros && !all_zero(c->data, (size_t)got))
			chunk.zeros = false;
		r = im_zstd_writer_compress(&c->out, c->data, (size_t)got);
		if (r < 0)
			return r;
		left -= (uint64_t)got;
	}

	r = im_zstd_writer_end_frame(&c->out);
	if (r < 0)
		return r;
	chunk.blob_end = c->out.offset;
	im_sha256_final(c->chunk_sha256, &chunk.digest);
	c->total_chunks++;
	return push_chunk(c, &chunk);
}

/* End the metadata frame and write the file's data as chunk frames. */
static int write_file_data(struct converter *c, const struct im_tar_entry *e,
			   struct im_digest *ret_digest)
{
	uint64_t chunk_size, offset = 0;
	int r;

	r = file_chunk_size(c, e, &chunk_size);
	if (r < 0)
		return r;
	r = im_zstd_writer_end_frame(&c->out);
	if (r < 0)
		return r;
	im_sha256_reset(c->file_sha256);

	/* TODO: content-defined chunk boundaries (a rolling checksum, as
	 * containers/storage uses) would let similar files share chunks. */
	while (offset < e->size) {
		uint64_t length = e->size - offset < chunk_size ? e->size - offset : chunk_size;

		r = write_chunk(c, offset, length);
		if (r < 0)
			return r;
		offset += length;
	}

	im_sha256_final(c->file_sha256, ret_digest);
	return 0;
}

static int convert_entry(struct converter *c, const struct im_tar_entry *e)
{
	struct im_digest file_digest = { { 0 } };
	const uint8_t *raw;
	size_t raw_len;
	int r;

	im_tar_reader_raw(c->tar, &raw, &raw_len);
	r = im_zstd_writer_compress(&c->out, raw, raw_len);
	if (r < 0)
		return r;

	c->n_chunks = 0;
	if (e->type == IM_TAR_REG && e->size > 0) {
		r = write_file_data(c, e, &file_digest);
		if (r < 0)
			return r;
	}

	return im_toc_writer_add(&c->toc, e, &file_digest, c->chunks, c->n_chunks);
}

/* Padding, end-of-archive blocks and trailing bytes form the last frame. */
static int write_trailer(struct converter *c)
{
	const uint8_t *raw;
	size_t raw_len;
	int r;

	im_tar_reader_raw(c->tar, &raw, &raw_len);
	r = im_zstd_writer_compress(&c->out, raw, raw_len);
	if (r < 0)
		return r;

	for (;;) {
		ssize_t got = im_tar_reader_read_trailer(c->tar, c->data, DATA_BUFFER_SIZE);

		if (got < 0)
			return (int)got;
		if (got == 0)
			break;
		r = im_zstd_writer_compress(&c->out, c->data, (size_t)got);
		if (r < 0)
			return r;
	}

	r = im_zstd_writer_end_frame(&c->out);
	if (r < 0)
		return r;
	/* An empty tar stream still gets one frame, so the blob starts with a
	 * regular zstd frame like any other zstd layer. */
	if (c->out.n_frames == 0)
		return im_zstd_writer_empty_frame(&c->out);
	return 0;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Append the TOC and the footer as skippable frames. */
static int write_toc_and_footer(struct converter *c, struct im_convert_result *res)
{
	uint8_t footer[IM_ZSTD_CHUNKED_FOOTER_SIZE] = { 0 };
	int r;

	r = im_toc_writer_finish(&c->toc);
	if (r < 0)
		return r;

	res->toc_offset = c->out.offset + IM_ZSTD_SKIPPABLE_HEADER_SIZE;
	res->toc_length = c->toc.compressed_len;
	res->toc_uncompressed_length = c->toc.json_len;
	im_sha256(c->toc.compressed, c->toc.compressed_len, &res->toc_digest);
	r = im_zstd_writer_skippable(&c->out, c->toc.compressed, c->toc.compressed_len);
	if (r < 0)
		return r;

	/* TODO: write the tar-split frame (vbatts/tar-split JSON lines) so that
	 * Podman and CRI-O can pull partially. Its file entries need CRC-64/ISO
	 * checksums, which none of the project's libraries provide, so the
	 * tar-split fields of the footer stay 0 for now. */
	put_le64(footer + 0, res->toc_offset);
	put_le64(footer + 8, res->toc_length);
	put_le64(footer + 16, res->toc_uncompressed_length);
	put_le64(footer + 24, IM_ZSTD_CHUNKED_MANIFEST_TYPE);
	memcpy(footer + 56, IM_ZSTD_CHUNKED_FOOTER_MAGIC, 8);
	return im_zstd_writer_skippable(&c->out, footer, sizeof(footer));
}

static int run(struct converter *c, struct im_convert_result *res)
{
	const struct im_tar_entry *e;
	int r;

	for (;;) {
		r = im_tar_reader_next(c->tar, &e);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		r = convert_entry(c, e);
		if (r < 0)
			return r;
		res->n_entries++;
	}

	r = write_trailer(c);
	if (r < 0)
		return r;
	r = write_toc_and_footer(c, res);
	if (r < 0)
		return r;

	r = im_zstd_writer_finish(&c->out, &res->blob_digest);
	if (r < 0)
		return r;
	res->blob_size = c->out.offset;
	res->n_chunks = c->total_chunks;
	res->tar_size = c->tar_size;
	im_sha256_final(c->tar_sha256, &res->diff_id);
	return 0;
}

int im_convert_check_options(const struct im_convert_options *opts)
{
	if (opts->chunk_size < IM_CONVERT_MIN_CHUNK_SIZE ||
	    opts->chunk_size > IM_CONVERT_MAX_CHUNK_SIZE) {
		im_err("chunk size %" PRIu64 " is invalid; use %u to %u bytes",
		       opts->chunk_size, IM_CONVERT_MIN_CHUNK_SIZE, IM_CONVERT_MAX_CHUNK_SIZE);
		return -EINVAL;
	}
	if (opts->level < ZSTD_minCLevel() || opts->level > ZSTD_maxCLevel()) {
		im_err("zstd level %d is invalid; use %d to %d", opts->level,
		       ZSTD_minCLevel(), ZSTD_maxCLevel());
		return -EINVAL;
	}
	return 0;
}

int im_convert_tar(im_read_fn read, void *opaque, int out_fd,
		   const struct im_convert_options *opts, struct im_convert_result *ret)
{
	struct converter c = {
		.opts = opts,
		.source = read,
		.source_opaque = opaque,
	};
	struct im_convert_result res = { 0 };
	bool out_ready = false, toc_ready = false;
	int r;

	r = im_convert_check_options(opts);
	if (r < 0)
		return r;

	c.tar_sha256 = im_sha256_new();
	c.file_sha256 = im_sha256_new();
	c.chunk_sha256 = im_sha256_new();
	c.data = malloc(DATA_BUFFER_SIZE);
	r = -ENOMEM;
	if (!c.tar_sha256 || !c.file_sha256 || !c.chunk_sha256 || !c.data)
		goto out;

	r = im_tar_reader_new(hashing_read, &c, &c.tar);
	if (r < 0)
		goto out;
	r = im_zstd_writer_init(&c.out, out_fd, opts->level);
	if (r < 0)
		goto out;
	out_ready = true;
	r = im_toc_writer_init(&c.toc, opts->level);
	if (r < 0)
		goto out;
	toc_ready = true;

	r = run(&c, &res);
	if (r == 0)
		*ret = res;

out:
	if (toc_ready)
		im_toc_writer_clear(&c.toc);
	if (out_ready)
		im_zstd_writer_clear(&c.out);
	im_tar_reader_free(c.tar);
	im_sha256_free(c.tar_sha256);
	im_sha256_free(c.file_sha256);
	im_sha256_free(c.chunk_sha256);
	free(c.data);
	free(c.chunks);
	return r;
}

void im_convert_format_position(const struct im_convert_result *res, char *out,
				size_t out_size)
{
	snprintf(out, out_size, "%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%d", res->toc_offset,
		 res->toc_length, res->toc_uncompressed_length, IM_ZSTD_CHUNKED_MANIFEST_TYPE);
}
