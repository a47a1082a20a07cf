/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TOC writer for the converter. Field names, order and omissions follow
 * containers/storage's FileMetadata (pkg/chunked/internal/minimal): Go's
 * "omitempty" drops zero numbers and empty strings, the first chunk's
 * chunkOffset 0 included.
 */
#include "index/toc_writer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/log.h"
#include "common/util.h"
#include "index/toc.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define TOC_START "{\"version\":1,\"entries\":["
#define TOC_END "]}"

int im_toc_writer_init(struct im_toc_writer *t, int level)
{
	size_t ret;

	*t = (struct im_toc_writer) { 0 };
	t->cctx = ZSTD_createCCtx();
	if (!t->cctx)
		return -ENOMEM;
	ret = ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_compressionLevel, level);
	if (ZSTD_isError(ret)) {
		im_toc_writer_clear(t);
		return -EINVAL;
	}
	return 0;
}

void im_toc_writer_clear(struct im_toc_writer *t)
{
	ZSTD_freeCCtx(t->cctx);
	free(t->compressed);
	*t = (struct im_toc_writer) { 0 };
}

/* Compress text into the growing buffer. */
static int feed(struct im_toc_writer *t, const char *text, size_t len, ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = { text, len, 0 };

	if (t->json_len + len > IM_TOC_MAX_LENGTH) {
		im_err("the table of contents exceeds %u bytes; split the layer into smaller layers",
		       IM_TOC_MAX_LENGTH);
		return -EFBIG;
	}
	t->json_len += len;

	for (;;) {
		ZSTD_outBuffer out;
		size_t remaining;

		if (t->compressed_cap - t->compressed_len < ZSTD_CStreamOutSize()) {
			size_t cap = t->compressed_cap ? 2 * t->compressed_cap : 4 * ZSTD_CStreamOutSize();
			uint8_t *p = realloc(t->compressed, cap);

			if (!p)
				return -ENOMEM;
			t->compressed = p;
			t->compressed_cap = cap;
		}

		out = (ZSTD_outBuffer) { t->compressed, t->compressed_cap, t->compressed_len };
		remaining = ZSTD_compressStream2(t->cctx, &out, &in, mode);
		if (ZSTD_isError(remaining)) {
			im_err("compressing the table of contents failed: %s",
			       ZSTD_getErrorName(remaining));
			return -EIO;
		}
		t->compressed_len = out.pos;

		if (mode == ZSTD_e_end ? remaining == 0 : in.pos == in.size)
			return 0;
	}
}

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *im_toc_base64_encode(const uint8_t *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	char *p = out;

	if (!out)
		return NULL;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t group = (uint32_t)data[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;

		if (n > 1)
			group |= (uint32_t)data[i + 1] << 8;
		if (n > 2)
			group |= data[i + 2];

		*p++ = base64_alphabet[(group >> 18) & 63];
		*p++ = base64_alphabet[(group >> 12) & 63];
		*p++ = n > 1 ? base64_alphabet[(group >> 6) & 63] : '=';
		*p++ = n > 2 ? base64_alphabet[group & 63] : '=';
	}
	*p = '\0';
	return out;
}

int im_toc_format_time(int64_t sec, uint32_t nsec, char *out, size_t out_size)
{
	time_t t = (time_t)sec;
	char fraction[11] = "";
	struct tm tm;
	int n;

	if ((int64_t)t != sec || !gmtime_r(&t, &tm))
		return -ERANGE;
	if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999 || nsec >= 1000000000u)
		return -ERANGE;

	if (nsec > 0) {
		size_t len;

		snprintf(fraction, sizeof(fraction), ".%09" PRIu32, nsec);
		len = strlen(fraction);
		while (fraction[len - 1] == '0')
			fraction[--len] = '\0';
	}

	n = snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fraction);
	return n < 0 || (size_t)n >= out_size ? -ERANGE : 0;
}

static const char *toc_type(enum im_tar_type type)
{
	switch (type) {
	case IM_TAR_REG:
		return "reg";
	case IM_TAR_HARDLINK:
		return "hardlink";
	case IM_TAR_SYMLINK:
		return "symlink";
	case IM_TAR_CHAR:
		return "char";
	case IM_TAR_BLOCK:
		return "block";
	case IM_TAR_DIR:
		return "dir";
	default:
		return "fifo";
	}
}

/*
 * A JSON object under construction. Allocation failures of json-c are
 * recorded instead of checked at every field, and the object is rejected
 * as a whole, so a TOC never misses a field silently.
 */
struct builder {
	struct json_object *obj;
	bool failed;
};

static void put(struct builder *b, const char *key, struct json_object *value)
{
	if (!value || json_object_object_add(b->obj, key, value) < 0) {
		json_object_put(value);
		b->failed = true;
	}
}

/* Numbers are left out when zero, as Go's omitempty does. */
static void put_number(struct builder *b, const char *key, uint64_t value)
{
	if (value != 0)
		put(b, key, json_object_new_uint64(value));
}

static void put_string(struct builder *b, const char *key, const char *value, size_t len)
{
	put(b, key, json_object_new_string_len(value, (int)len));
}

static void put_digest(struct builder *b, const char *key, const struct im_digest *d)
{
	char text[IM_DIGEST_STRING_LEN];

	im_digest_format(d, text);
	put(b, key, json_object_new_string(text));
}

/* The chunk fields shared by a multi-chunk reg entry and its chunk entries. */
static void put_chunk_fields(struct builder *b, const struct im_toc_chunk *c)
{
	put_number(b, "chunkSize", c->length);
	put_number(b, "chunkOffset", c->file_offset);
	put_digest(b, "chunkDigest", &c->digest);
	if (c->zeros)
		put(b, "chunkType", json_object_new_string("zeros"));
}

/* Extended attributes: name -> base64 of the binary value. */
static void put_xattrs(struct builder *b, const struct im_tar_entry *e)
{
	struct builder xattrs = { NULL, false };

	if (e->n_xattrs == 0)
		return;
	xattrs.obj = json_object_new_object();
	if (!xattrs.obj) {
		b->failed = true;
		return;
	}

	for (size_t i = 0; i < e->n_xattrs; i++) {
		_cleanup_free_ char *value = im_toc_base64_encode(e->xattrs[i].value,
								  e->xattrs[i].value_len);

		if (!value) {
			xattrs.failed = true;
			break;
		}
		put(&xattrs, e->xattrs[i].name, json_object_new_string(value));
	}

	b->failed |= xattrs.failed;
	put(b, "xattrs", xattrs.obj);
}

static int build_entry(struct builder *b, const struct im_tar_entry *e,
		       const struct im_digest *file_digest,
		       const struct im_toc_chunk *chunks, size_t n_chunks)
{
	char mtime[32];

	if (im_toc_format_time(e->mtime_sec, e->mtime_nsec, mtime, sizeof(mtime)) < 0) {
		im_err("tar entry \"%s\" at offset %" PRIu64 " has the modification time %" PRId64
		       " s, outside the years 0000..9999 that the table of contents can hold",
		       e->name, e->offset, e->mtime_sec);
		return -EINVAL;
	}

	/* NOTE: names that are not UTF-8 are written as their raw bytes. json-c
	 * and this project's TOC reader keep them, but Go's encoding/json (and
	 * so containers/storage) reads them with U+FFFD replacements. */
	put(b, "type", json_object_new_string(toc_type(e->type)));
	put_string(b, "name", e->name, e->name_len);
	if (e->link_name_len > 0)
		put_string(b, "linkName", e->link_name, e->link_name_len);
	put_number(b, "mode", e->mode);
	put_number(b, "size", e->size);
	put_number(b, "uid", e->uid);
	put_number(b, "gid", e->gid);
	put(b, "modtime", json_object_new_string(mtime));
	put_number(b, "devMajor", e->dev_major);
	put_number(b, "devMinor", e->dev_minor);
	put_xattrs(b, e);

	if (n_chunks > 0) {
		put_digest(b, "digest", file_digest);
		put_number(b, "offset", chunks[0].blob_offset);
		put_number(b, "endOffset", chunks[n_chunks - 1].blob_end);
		if (n_chunks > 1)
			put_chunk_fields(b, &chunks[0]);
	}
	return 0;
}

/* Serialize the object, prefixed with a comma after the first entry, and
 * free it. */
static int emit(struct im_toc_writer *t, struct builder *b)
{
	const char *json = NULL;
	size_t len = 0;
	int r;

	if (!b->failed)
		json = json_object_to_json_string_length(b->obj, JSON_FLAGS, &len);
	if (!json) {
		json_object_put(b->obj);
		return -ENOMEM;
	}

	if (t->n_entries == 0)
		r = feed(t, TOC_START, strlen(TOC_START), ZSTD_e_continue);
	else
		r = feed(t, ",", 1, ZSTD_e_continue);
	if (r == 0)
		r = feed(t, json, len, ZSTD_e_continue);
	json_object_put(b->obj);
	if (r < 0)
		return r;
	t->n_entries++;
	return 0;
}

int im_toc_writer_add(struct im_toc_writer *t, const struct im_tar_entry *e,
		      const struct im_digest *file_digest,
		      const struct im_toc_chunk *chunks, size_t n_chunks)
{
	struct builder b = { json_object_new_object(), false };
	int r;

	if (!b.obj)
		return -ENOMEM;
	r = build_entry(&b, e, file_digest, chunks, n_chunks);
	if (r < 0) {
		json_object_put(b.obj);
		return r;
	}
	r = emit(t, &b);
	if (r < 0)
		return r;

	for (size_t i = 1; i < n_chunks; i++) {
		b = (struct builder) { json_object_new_object(), false };
		if (!b.obj)
			return -ENOMEM;
		put(&b, "type", json_object_new_string("chunk"));
		put_string(&b, "name", e->name, e->name_len);
		put_number(&b, "offset", chunks[i].blob_offset);
		put_chunk_fields(&b, &chunks[i]);
		r = emit(t, &b);
		if (r < 0)
			return r;
	}
	return 0;
}

int im_toc_writer_finish(struct im_toc_writer *t)
{
	int r;

	if (t->n_entries == 0) {
		r = feed(t, TOC_START, strlen(TOC_START), ZSTD_e_continue);
		if (r < 0)
			return r;
	}
	return feed(t, TOC_END, strlen(TOC_END), ZSTD_e_end);
}
