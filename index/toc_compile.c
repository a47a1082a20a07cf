/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compilation of zstd:chunked TOC JSON into a layer index builder.
 *
 * The TOC format is the one containers/storage writes
 * (pkg/chunked/internal/minimal/compression.go: a JSON object with
 * "version" 1 and "entries"), which stargz-snapshotter's zstd:chunked
 * writer also follows, without "endOffset". Each entry is one tar entry,
 * except "chunk" entries, which add chunks to the regular file just before
 * them.
 *
 * The TOC is untrusted until the index is written: every field's JSON
 * type and range is checked, names are cleaned like containerd does, and
 * every chunk list must cover its file exactly, inside the blob. Any
 * violation rejects the whole layer, because serving a partial layer would
 * show a tree that no runtime would have unpacked.
 */
#include "index/toc.h"
#include "index/toc_internal.h"
#include "index/path.h"
#include "index/path_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/log.h"
#include "common/util.h"

/* Nesting of the TOC: object, entries array, entry, xattrs object, value. */
#define TOC_JSON_MAX_DEPTH 16
/* Go writes these fields as int64, so a larger value is not from a TOC. */
#define TOC_INT_MAX ((uint64_t)INT64_MAX)
/* Linux limits on xattrs (XATTR_SIZE_MAX, XATTR_NAME_MAX), and the length
 * of the base64 text of the largest value. */
#define XATTR_VALUE_MAX 65536u
#define XATTR_NAME_MAX_LEN 255u
#define XATTR_BASE64_MAX (((XATTR_VALUE_MAX + 2) / 3) * 4)

#define QUOTE_SIZE 160

/* The fields of one TOC entry that imgmount uses, with omitted fields 0
 * or empty. Strings point into the JSON tree. */
struct toc_entry {
	const char *type;
	const char *name;
	size_t name_len;
	const char *link;
	size_t link_len;
	uint64_t mode;
	uint64_t size;
	uint64_t uid;
	uint64_t gid;
	uint64_t dev_major;
	uint64_t dev_minor;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t offset;
	uint64_t end_offset;
	uint64_t chunk_offset;
	uint64_t chunk_size;
	bool has_digest;
	struct im_digest digest;
	bool has_chunk_digest;
	struct im_digest chunk_digest;
	bool zeros;
	struct json_object *xattrs;
};

struct compiler {
	char toc_digest[IM_DIGEST_STRING_LEN];
	uint64_t blob_size;
	struct json_object *entries;
	size_t entry_count;
	struct im_index_builder *builder;

	/* Entry being compiled, for messages. */
	size_t index;
	char quoted_name[QUOTE_SIZE];

	/* Sorted distinct "offset" values of all entries, built on first use
	 * to find where a chunk without "endOffset" ends. */
	uint64_t *offsets;
	size_t offset_count;
	bool offsets_ready;

	/* Scratch space for the chunks of one regular file. */
	struct im_chunk *chunks;
	size_t chunk_cap;
	uint8_t *xattr_value;
};

__attribute__((format(printf, 2, 3)))
static int reject(const struct compiler *c, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);

	im_err("TOC %s: %s: layer rejected", c->toc_digest, detail);
	return -EBADMSG;
}

/* Reject with the current entry's index and name in front of the reason. */
__attribute__((format(printf, 2, 3)))
static int reject_entry(const struct compiler *c, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);

	return reject(c, "entry %zu \"%s\": %s", c->index, c->quoted_name, detail);
}

/*
 * Read an optional string field. JSON null counts as omitted. Return: 0
 * with *ret set ("" when omitted), or -EBADMSG for another JSON type.
 */
static int get_string(const struct compiler *c, struct json_object *obj, const char *key,
		      const char **ret, size_t *ret_len)
{
	struct json_object *v;

	*ret = "";
	*ret_len = 0;
	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return reject_entry(c, "\"%s\" is not a string", key);

	*ret = json_object_get_string(v);
	*ret_len = (size_t)json_object_get_string_len(v);
	return 0;
}

/* Read an optional integer field in 0..max. */
static int get_uint(const struct compiler *c, struct json_object *obj, const char *key,
		    uint64_t max, uint64_t *ret)
{
	struct json_object *v;
	uint64_t u;

	*ret = 0;
	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return reject_entry(c, "\"%s\" is not an integer", key);

	/* json-c saturates: a negative value reads as 0 through the uint64
	 * getter, so the sign comes from the int64 one. */
	if (json_object_get_int64(v) < 0)
		return reject_entry(c, "\"%s\" is negative", key);
	u = json_object_get_uint64(v);
	if (u > max)
		return reject_entry(c, "\"%s\" is %llu, more than %llu", key,
				    (unsigned long long)u, (unsigned long long)max);
	*ret = u;
	return 0;
}

static int get_digest(const struct compiler *c, struct json_object *obj, const char *key,
		      bool *ret_present, struct im_digest *ret)
{
	const char *s;
	size_t len;
	int r;

	*ret_present = false;
	r = get_string(c, obj, key, &s, &len);
	if (r < 0 || len == 0)
		return r;
	if (im_digest_parse_n(s, len, ret) < 0)
		return reject_entry(c, "\"%s\" is not a sha256 digest", key);
	*ret_present = true;
	return 0;
}

/* Read the fields that a "chunk" entry and a regular file share. */
static int parse_chunk_fields(const struct compiler *c, struct json_object *obj,
			      struct toc_entry *e)
{
	const char *chunk_type;
	size_t len;
	uint64_t inner_offset;
	int r;

	r = get_uint(c, obj, "offset", c->blob_size, &e->offset);
	if (r < 0)
		return r;
	r = get_uint(c, obj, "endOffset", c->blob_size, &e->end_offset);
	if (r < 0)
		return r;
	r = get_uint(c, obj, "chunkOffset", TOC_INT_MAX, &e->chunk_offset);
	if (r < 0)
		return r;
	r = get_uint(c, obj, "chunkSize", TOC_INT_MAX, &e->chunk_size);
	if (r < 0)
		return r;
	r = get_digest(c, obj, "chunkDigest", &e->has_chunk_digest, &e->chunk_digest);
	if (r < 0)
		return r;

	r = get_string(c, obj, "chunkType", &chunk_type, &len);
	if (r < 0)
		return r;
	if (len == 5 && memcmp(chunk_type, "zeros", 5) == 0)
		e->zeros = true;
	else if (len != 0)
		return reject_entry(c, "unknown chunkType \"%.32s\"", chunk_type);

	/* eStargz can pack several files into one compressed stream and
	 * point into it with innerOffset, but the fetcher decompresses only
	 * from the start of a range. */
	r = get_uint(c, obj, "innerOffset", TOC_INT_MAX, &inner_offset);
	if (r < 0)
		return r;
	if (inner_offset != 0)
		return reject_entry(c, "\"innerOffset\" is not supported");
	return 0;
}

static int parse_modtime(const struct compiler *c, struct json_object *obj,
			 struct toc_entry *e)
{
	const char *s;
	size_t len;
	int r;

	r = get_string(c, obj, "modtime", &s, &len);
	if (r < 0 || len == 0)
		return r;
	if (im_toc_parse_rfc3339(s, len, &e->mtime_sec, &e->mtime_nsec) < 0)
		return reject_entry(c, "\"modtime\" \"%.64s\" is not an RFC 3339 time", s);
	return 0;
}

/* Read every field of a non-chunk entry except "type" and "name". */
static int parse_entry_fields(const struct compiler *c, struct json_object *obj,
			      struct toc_entry *e)
{
	struct json_object *xattrs;
	int r;

	r = get_string(c, obj, "linkName", &e->link, &e->link_len);
	if (r < 0)
		return r;
	r = get_uint(c, obj, "mode", TOC_INT_MAX, &e->mode);
	if (r < 0)
		return r;
	r = get_uint(c, obj, "size", TOC_INT_MAX, &e->size);
	if (r < 0)
		return r;
	r = get_uint(c, obj, "uid", UINT32_MAX, &e->uid);
	if (r < 0)
		return r;
	r = get_uint(c, obj, "gid", UINT32_MAX, &e->gid);
	if (r < 0)
		return r;
	r = get_uint(c, obj, "devMajor", UINT32_MAX, &e->dev_major);
	if (r < 0)
		return r;
	r = get_uint(c, obj, "devMinor", UINT32_MAX, &e->dev_minor);
	if (r < 0)
		return r;
	r = parse_modtime(c, obj, e);
	if (r < 0)
		return r;
	r = get_digest(c, obj, "digest", &e->has_digest, &e->digest);
	if (r < 0)
		return r;
	r = parse_chunk_fields(c, obj, e);
	if (r < 0)
		return r;

	if (json_object_object_get_ex(obj, "xattrs", &xattrs) && xattrs) {
		if (!json_object_is_type(xattrs, json_type_object))
			return reject_entry(c, "\"xattrs\" is not an object");
		e->xattrs = xattrs;
	}
	return 0;
}

/* Read "type" and "name" of entry i, and name it in later messages. */
static int parse_entry_head(struct compiler *c, size_t i, struct toc_entry *e)
{
	struct json_object *obj = json_object_array_get_idx(c->entries, i);
	size_t type_len;
	int r;

	memset(e, 0, sizeof(*e));
	c->index = i;
	c->quoted_name[0] = '\0';

	if (!json_object_is_type(obj, json_type_object))
		return reject_entry(c, "not a JSON object");
	r = get_string(c, obj, "name", &e->name, &e->name_len);
	if (r < 0)
		return r;
	im_path_quote(e->name, e->name_len, c->quoted_name, sizeof(c->quoted_name));
	return get_string(c, obj, "type", &e->type, &type_len);
}

static bool type_is(const struct toc_entry *e, const char *type)
{
	return strcmp(e->type, type) == 0;
}

/* Check whether entry i exists and is a "chunk" entry. Nothing is
 * rejected here, because the entry is fully checked when it is compiled. */
static bool is_chunk_entry(const struct compiler *c, size_t i)
{
	struct json_object *obj;
	struct json_object *type;

	if (i >= c->entry_count)
		return false;
	obj = json_object_array_get_idx(c->entries, i);
	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, "type", &type) ||
	    !json_object_is_type(type, json_type_string))
		return false;
	return strcmp(json_object_get_string(type), "chunk") == 0;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Collect and sort the "offset" of every entry. Malformed values are
 * skipped here and rejected when their entry is compiled. */
static int collect_offsets(struct compiler *c)
{
	size_t n = 0;

	c->offsets = malloc((c->entry_count ? c->entry_count : 1) * sizeof(*c->offsets));
	if (!c->offsets)
		return -ENOMEM;

	for (size_t i = 0; i < c->entry_count; i++) {
		struct json_object *obj = json_object_array_get_idx(c->entries, i);
		struct json_object *v;

		if (!json_object_is_type(obj, json_type_object) ||
		    !json_object_object_get_ex(obj, "offset", &v) ||
		    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0 ||
		    json_object_get_uint64(v) > c->blob_size)
			continue;
		c->offsets[n++] = json_object_get_uint64(v);
	}
	qsort(c->offsets, n, sizeof(*c->offsets), compare_u64);

	c->offset_count = n;
	c->offsets_ready = true;
	return 0;
}

/* Find the smallest entry offset above offset, or else the blob size:
 * where a chunk whose TOC gives no end stops at the latest. */
static int next_offset(struct compiler *c, uint64_t offset, uint64_t *ret)
{
	size_t lo = 0;
	size_t hi;
	int r;

	if (!c->offsets_ready) {
		r = collect_offsets(c);
		if (r < 0)
			return r;
	}

	hi = c->offset_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->offsets[mid] <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret = lo < c->offset_count ? c->offsets[lo] : c->blob_size;
	return 0;
}

/*
 * Set chunk->blob_length from its start and end in the blob. When the TOC
 * gives no end, the next entry offset after the start is the end.
 * NOTE: that range can run far past the chunk's frame (for the last file,
 * over the TOC to the end of the blob). The fetcher decompresses only
 * `length` bytes, so it stays correct but may download more than needed.
 */
static int set_blob_range(struct compiler *c, struct im_chunk *chunk, uint64_t end,
			  bool end_known)
{
	int r;

	if (!end_known) {
		r = next_offset(c, chunk->blob_offset, &end);
		if (r < 0)
			return r;
	}

	if (end > chunk->blob_offset) {
		chunk->blob_length = end - chunk->blob_offset;
		return 0;
	}
	/* A zero-filled chunk is never fetched, so its range may be empty. */
	if (chunk->flags & IM_CHUNK_ZEROS) {
		chunk->blob_length = 0;
		return 0;
	}
	return reject_entry(c, "chunk at file offset %llu: blob range %llu..%llu is empty",
			    (unsigned long long)chunk->file_offset,
			    (unsigned long long)chunk->blob_offset, (unsigned long long)end);
}

static int reserve_chunks(struct compiler *c, size_t n)
{
	struct im_chunk *p;

	if (n <= c->chunk_cap)
		return 0;
	p = realloc(c->chunks, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	c->chunks = p;
	c->chunk_cap = n;
	return 0;
}

/* Parse the "chunk" entries first..first+n-1 that follow a regular file
 * and check that they name it. */
static int parse_chunk_entries(struct compiler *c, const struct toc_entry *file,
			       const char *path, size_t path_len, size_t first, size_t n,
			       struct toc_entry *ret)
{
	char cleaned[IM_PATH_MAX_LENGTH + 1];
	int r;

	for (size_t k = 0; k < n; k++) {
		struct json_object *obj = json_object_array_get_idx(c->entries, first + k);
		struct toc_entry *e = &ret[k];
		int len;

		r = parse_entry_head(c, first + k, e);
		if (r < 0)
			return r;
		if (e->name_len > 0) {
			len = im_path_clean(e->name, e->name_len, cleaned, sizeof(cleaned));
			if (len < 0 || (size_t)len != path_len || memcmp(cleaned, path, path_len) != 0)
				return reject_entry(c, "chunk entry does not name the file before it");
		}
		r = parse_chunk_fields(c, obj, e);
		if (r < 0)
			return r;
	}

	/* Later messages are about the file. */
	c->index = first - 1;
	im_path_quote(file->name, file->name_len, c->quoted_name, sizeof(c->quoted_name));
	return 0;
}

/* Fill a chunk from its TOC entry: its place in the file and its digest. */
static int fill_chunk(struct compiler *c, const struct toc_entry *file,
		      const struct toc_entry *e, bool last, struct im_chunk *chunk)
{
	memset(chunk, 0, sizeof(*chunk));
	chunk->file_offset = e->chunk_offset;
	chunk->blob_offset = e->offset;
	chunk->flags = e->zeros ? IM_CHUNK_ZEROS : 0;

	/* eStargz leaves out the size of a file's last chunk: it runs to the
	 * end of the file. */
	chunk->length = e->chunk_size;
	if (chunk->length == 0 && last && e->chunk_offset < file->size)
		chunk->length = file->size - e->chunk_offset;
	if (chunk->length == 0)
		return reject_entry(c, "chunk at file offset %llu has no size",
				    (unsigned long long)e->chunk_offset);
	if (chunk->length > IM_CHUNK_MAX_LENGTH && !e->zeros)
		return reject_entry(c, "chunk at file offset %llu is %llu bytes, more than the "
				    "%u MiB limit", (unsigned long long)e->chunk_offset,
				    (unsigned long long)chunk->length, IM_CHUNK_MAX_LENGTH >> 20);

	if (e->has_chunk_digest)
		chunk->sha256 = e->chunk_digest;
	else if (!e->zeros)
		return reject_entry(c, "chunk at file offset %llu has no chunkDigest",
				    (unsigned long long)e->chunk_offset);
	return 0;
}

/* Check that the chunks cover the file from 0 to its size, in order. */
static int check_coverage(const struct compiler *c, const struct toc_entry *file,
			  const struct im_chunk *chunks, size_t n)
{
	uint64_t covered = 0;

	for (size_t k = 0; k < n; k++) {
		if (chunks[k].file_offset != covered)
			return reject_entry(c, "chunk at file offset %llu, expected %llu "
					    "(chunks overlap or leave a gap)",
					    (unsigned long long)chunks[k].file_offset,
					    (unsigned long long)covered);
		if (im_add_u64(covered, chunks[k].length, &covered) < 0 || covered > file->size)
			return reject_entry(c, "chunks run past the file size %llu",
					    (unsigned long long)file->size);
	}
	if (covered != file->size)
		return reject_entry(c, "chunks cover %llu bytes, the file size is %llu",
				    (unsigned long long)covered, (unsigned long long)file->size);
	return 0;
}

/* The chunk of a file that has no "chunk" entries: the whole file, in the
 * blob range [offset, endOffset), verified by the file's digest. */
static int single_chunk(struct compiler *c, const struct toc_entry *file)
{
	struct im_chunk *chunk = &c->chunks[0];

	if (file->chunk_offset != 0 || (file->chunk_size != 0 && file->chunk_size != file->size))
		return reject_entry(c, "chunkOffset %llu and chunkSize %llu do not cover the "
				    "file size %llu", (unsigned long long)file->chunk_offset,
				    (unsigned long long)file->chunk_size,
				    (unsigned long long)file->size);

	memset(chunk, 0, sizeof(*chunk));
	chunk->length = file->size;
	chunk->blob_offset = file->offset;
	chunk->flags = file->zeros ? IM_CHUNK_ZEROS : 0;
	if (file->has_digest)
		chunk->sha256 = file->digest;
	else if (file->has_chunk_digest)
		chunk->sha256 = file->chunk_digest;
	else if (!file->zeros)
		return reject_entry(c, "regular file has no digest");

	/* NOTE: writers that compress every file as one frame (no "chunk"
	 * entries) produce such chunks for large files, and the whole layer
	 * is then rejected rather than served. */
	if (chunk->length > IM_CHUNK_MAX_LENGTH && !file->zeros)
		return reject_entry(c, "file is %llu bytes in one chunk, more than the %u MiB "
				    "chunk limit", (unsigned long long)file->size,
				    IM_CHUNK_MAX_LENGTH >> 20);

	return set_blob_range(c, chunk, file->end_offset, file->end_offset != 0);
}

/*
 * Build the chunk list of a regular file from its entry and the n "chunk"
 * entries after it (at index first). Return the number of chunks in
 * c->chunks, or -errno.
 */
static int build_chunks(struct compiler *c, const struct toc_entry *file,
			const char *path, size_t path_len, size_t first, size_t n)
{
	_cleanup_free_ struct toc_entry *parts = NULL;
	int r;

	if (file->size == 0) {
		if (n > 0)
			return reject_entry(c, "empty file followed by chunk entries");
		return 0;
	}

	r = reserve_chunks(c, n + 1);
	if (r < 0)
		return r;
	if (n == 0) {
		r = single_chunk(c, file);
		return r < 0 ? r : 1;
	}

	parts = calloc(n + 1, sizeof(*parts));
	if (!parts)
		return -ENOMEM;
	parts[0] = *file;
	r = parse_chunk_entries(c, file, path, path_len, first, n, parts + 1);
	if (r < 0)
		return r;

	for (size_t k = 0; k <= n; k++) {
		r = fill_chunk(c, file, &parts[k], k == n, &c->chunks[k]);
		if (r < 0)
			return r;
	}
	r = check_coverage(c, file, c->chunks, n + 1);
	if (r < 0)
		return r;

	/* Each chunk's compressed frames end where the next chunk's begin;
	 * the last ends at the file's "endOffset". */
	for (size_t k = 0; k <= n; k++) {
		bool last = k == n;
		uint64_t end = last ? file->end_offset : parts[k + 1].offset;

		r = set_blob_range(c, &c->chunks[k], end, !last || file->end_offset != 0);
		if (r < 0)
			return r;
	}
	return (int)(n + 1);
}

/* Map the TOC type to an index type; "chunk" and unknown types are not
 * entries of their own. */
static int entry_type(const struct toc_entry *e, enum im_entry_type *ret)
{
	static const struct {
		const char *name;
		enum im_entry_type type;
	} types[] = {
		{ "reg", IM_ENTRY_REG },
		{ "dir", IM_ENTRY_DIR },
		{ "symlink", IM_ENTRY_SYMLINK },
		{ "hardlink", IM_ENTRY_HARDLINK },
		{ "char", IM_ENTRY_CHAR },
		{ "block", IM_ENTRY_BLOCK },
		{ "fifo", IM_ENTRY_FIFO },
	};

	for (size_t i = 0; i < IM_ARRAY_SIZE(types); i++) {
		if (type_is(e, types[i].name)) {
			*ret = types[i].type;
			return 0;
		}
	}
	return -EINVAL;
}

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_PREFIX_LEN 4
#define OPAQUE_NAME ".wh..wh..opq"

/*
 * Classify a cleaned path by its last component. An opaque marker turns
 * into its directory and a whiteout ".wh.NAME" into the path it removes,
 * both written back into path. Return: 0 with *ret_type set to
 * IM_ENTRY_OPAQUE, IM_ENTRY_WHITEOUT or 0 (an ordinary name), or -EBADMSG.
 */
static int classify_name(const struct compiler *c, char *path, size_t *path_len,
			 enum im_entry_type *ret_type)
{
	char *slash = memrchr(path, '/', *path_len);
	size_t base_start = slash ? (size_t)(slash - path) + 1 : 0;
	char *base = path + base_start;
	size_t base_len = *path_len - base_start;
	size_t parent_len = slash ? base_start - 1 : 0;

	*ret_type = 0;
	if (base_len < WHITEOUT_PREFIX_LEN || memcmp(base, WHITEOUT_PREFIX, WHITEOUT_PREFIX_LEN) != 0)
		return 0;

	if (base_len == strlen(OPAQUE_NAME) && memcmp(base, OPAQUE_NAME, base_len) == 0) {
		*path_len = parent_len;
		path[parent_len] = '\0';
		*ret_type = IM_ENTRY_OPAQUE;
		return 0;
	}

	/* ".wh." alone names nothing, and ".wh.." and ".wh..." would remove
	 * the directory itself or its parent. */
	if (base_len == 4 || (base_len == 5 && base[4] == '.') ||
	    (base_len == 6 && base[4] == '.' && base[5] == '.')) {
		char quoted[QUOTE_SIZE];

		im_path_quote(path, *path_len, quoted, sizeof(quoted));
		return reject(c, "invalid whiteout name \"%.*s\" at \"%s\"",
			      (int)base_len, base, quoted);
	}

	memmove(base, base + WHITEOUT_PREFIX_LEN, base_len - WHITEOUT_PREFIX_LEN);
	*path_len -= WHITEOUT_PREFIX_LEN;
	path[*path_len] = '\0';
	*ret_type = IM_ENTRY_WHITEOUT;
	return 0;
}

static int add_xattrs(struct compiler *c, struct json_object *xattrs)
{
	int r;

	json_object_object_foreach(xattrs, name, value) {
		size_t name_len = strlen(name);
		const char *text;
		size_t text_len;
		size_t value_len;

		if (name_len == 0 || name_len > XATTR_NAME_MAX_LEN)
			return reject_entry(c, "xattr name of %zu bytes, expected 1 to %u",
					    name_len, XATTR_NAME_MAX_LEN);
		if (!json_object_is_type(value, json_type_string))
			return reject_entry(c, "xattr \"%.64s\" value is not a string", name);

		text = json_object_get_string(value);
		text_len = (size_t)json_object_get_string_len(value);
		if (text_len > XATTR_BASE64_MAX)
			return reject_entry(c, "xattr \"%.64s\" value is more than %u bytes",
					    name, XATTR_VALUE_MAX);
		if (im_toc_decode_base64(text, text_len, c->xattr_value, &value_len) < 0)
			return reject_entry(c, "xattr \"%.64s\" value is not padded base64", name);
		if (value_len > XATTR_VALUE_MAX)
			return reject_entry(c, "xattr \"%.64s\" value is more than %u bytes",
					    name, XATTR_VALUE_MAX);

		r = im_index_builder_add_xattr(c->builder, name, c->xattr_value, value_len);
		if (r < 0)
			return r == -ENOMEM ? r : reject_entry(c, "too many xattrs");
	}
	return 0;
}

/* Set the link of an ordinary entry: a symlink's target verbatim, a
 * hardlink's target cleaned. link_buf has IM_PATH_MAX_LENGTH + 1 bytes. */
static int set_link(const struct compiler *c, const struct toc_entry *e,
		    char *link_buf, struct im_entry *entry)
{
	int len;

	entry->link = "";
	entry->link_len = 0;

	if (entry->type == IM_ENTRY_SYMLINK) {
		if (e->link_len > IM_PATH_MAX_LENGTH || memchr(e->link, '\0', e->link_len))
			return reject_entry(c, "symlink target is longer than %u bytes or "
					    "contains a NUL byte", IM_PATH_MAX_LENGTH);
		entry->link = e->link;
		entry->link_len = (uint32_t)e->link_len;
		return 0;
	}
	if (entry->type == IM_ENTRY_HARDLINK) {
		len = im_path_clean(e->link, e->link_len, link_buf, IM_PATH_MAX_LENGTH + 1);
		if (len <= 0)
			return reject_entry(c, "hardlink target is empty, the root, longer "
					    "than %u bytes or contains a NUL byte",
					    IM_PATH_MAX_LENGTH);
		entry->link = link_buf;
		entry->link_len = (uint32_t)len;
	}
	return 0;
}

static int add_entry(struct compiler *c, const struct im_entry *entry)
{
	int r = im_index_builder_add_entry(c->builder, entry);

	if (r == -ENOMEM)
		return r;
	if (r == -E2BIG)
		return reject_entry(c, "too many entries or too much text for one layer index");
	if (r < 0)
		return reject_entry(c, "entry cannot be stored in the layer index");
	return 0;
}

/* Add an ordinary entry (not a marker) with its chunks and xattrs. */
static int compile_ordinary(struct compiler *c, const struct toc_entry *e,
			    enum im_entry_type type, const char *path, size_t path_len,
			    size_t chunk_first, size_t chunk_n)
{
	char link[IM_PATH_MAX_LENGTH + 1];
	struct im_entry entry = {
		.type = type,
		/* Linux gives every symlink mode 0777 whatever mode the tar
		 * header stores, and so do umoci and containerd when they
		 * unpack one. */
		.mode = type == IM_ENTRY_SYMLINK ? 0777 : (uint32_t)(e->mode & 07777),
		.uid = (uint32_t)e->uid,
		.gid = (uint32_t)e->gid,
		.mtime_sec = e->mtime_sec,
		.mtime_nsec = e->mtime_nsec,
		.path = path,
		.path_len = (uint32_t)path_len,
	};
	int nchunks = 0;
	int r;

	if (type == IM_ENTRY_CHAR || type == IM_ENTRY_BLOCK) {
		entry.rdev_major = (uint32_t)e->dev_major;
		entry.rdev_minor = (uint32_t)e->dev_minor;
	}
	if (type == IM_ENTRY_REG) {
		entry.size = e->size;
		nchunks = build_chunks(c, e, path, path_len, chunk_first, chunk_n);
		if (nchunks < 0)
			return nchunks;
	} else if (chunk_n > 0) {
		return reject_entry(c, "chunk entries follow an entry that is not a regular file");
	}

	r = set_link(c, e, link, &entry);
	if (r < 0)
		return r;
	r = add_entry(c, &entry);
	if (r < 0)
		return r;

	for (int k = 0; k < nchunks; k++) {
		r = im_index_builder_add_chunk(c->builder, &c->chunks[k]);
		if (r < 0)
			return r == -ENOMEM ? r : reject_entry(c, "too many chunks");
	}
	if (e->xattrs)
		return add_xattrs(c, e->xattrs);
	return 0;
}

/*
 * Compile the entry at c->index and the "chunk" entries after it. Return
 * the number of TOC entries consumed, or -errno.
 */
static int compile_entry(struct compiler *c, size_t i)
{
	char path[IM_PATH_MAX_LENGTH + 1];
	struct json_object *obj = json_object_array_get_idx(c->entries, i);
	enum im_entry_type marker;
	enum im_entry_type type;
	struct toc_entry e;
	size_t chunk_n = 0;
	size_t path_len;
	int len;
	int r;

	r = parse_entry_head(c, i, &e);
	if (r < 0)
		return r;
	if (type_is(&e, "chunk"))
		return reject_entry(c, "chunk entry does not follow a regular file");
	while (is_chunk_entry(c, i + 1 + chunk_n))
		chunk_n++;

	r = parse_entry_fields(c, obj, &e);
	if (r < 0)
		return r;

	len = im_path_clean(e.name, e.name_len, path, sizeof(path));
	if (len < 0)
		return reject_entry(c, "name is longer than %u bytes or contains a NUL byte",
				    IM_PATH_MAX_LENGTH);
	/* The root's attributes come from no layer, so entries for it (and
	 * the chunks of such an entry) are skipped. */
	if (len == 0)
		return (int)(1 + chunk_n);
	path_len = (size_t)len;

	r = classify_name(c, path, &path_len, &marker);
	if (r < 0)
		return r;
	if (marker) {
		struct im_entry entry = {
			.type = marker,
			.path = path,
			.path_len = (uint32_t)path_len,
			.link = "",
		};

		r = add_entry(c, &entry);
		return r < 0 ? r : (int)(1 + chunk_n);
	}

	if (entry_type(&e, &type) < 0)
		return reject_entry(c, "unknown entry type \"%.32s\"", e.type);
	r = compile_ordinary(c, &e, type, path, path_len, i + 1, chunk_n);
	return r < 0 ? r : (int)(1 + chunk_n);
}

/*
 * Reject any "\u0000" escape. json-c cuts object keys at a NUL, which
 * would silently rename an xattr, and no field of a valid TOC contains
 * one. A backslash always starts an escape inside a JSON string and never
 * appears outside one, so scanning escape by escape is exact.
 */
static bool has_escaped_nul(const char *json, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (json[i] != '\\')
			continue;
		if (json[i + 1] == 'u' && len - i >= 6 && memcmp(json + i + 2, "0000", 4) == 0)
			return true;
		i++;
	}
	return false;
}

static bool only_whitespace(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	}
	return true;
}

static int parse_json(const struct compiler *c, const char *json, size_t len,
		      struct json_object **ret)
{
	struct json_tokener *tok;
	struct json_object *root;
	enum json_tokener_error err;
	size_t end;

	if (len > IM_TOC_MAX_LENGTH)
		return reject(c, "%zu bytes, more than the %u MiB limit",
			      len, IM_TOC_MAX_LENGTH >> 20);
	if (has_escaped_nul(json, len))
		return reject(c, "escaped NUL character (\\u0000) in the JSON");

	tok = json_tokener_new_ex(TOC_JSON_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, json, (int)len);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (err == json_tokener_continue)
		return reject(c, "invalid JSON: unexpected end of the text");
	if (!root || err != json_tokener_success) {
		json_object_put(root);
		return reject(c, "invalid JSON at byte %zu: %s", end,
			      json_tokener_error_desc(err));
	}
	/* The tokener stops after the first value, or at a NUL byte. */
	if (end > len || !only_whitespace(json + end, len - end)) {
		json_object_put(root);
		return reject(c, "invalid JSON: data after the top-level object at byte %zu", end);
	}

	*ret = root;
	return 0;
}

/* Check "version" and find "entries" (null or omitted means none). */
static int find_entries(struct compiler *c, struct json_object *root)
{
	struct json_object *v;

	if (!json_object_is_type(root, json_type_object))
		return reject(c, "not a JSON object");

	if (!json_object_object_get_ex(root, "version", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) != 1)
		return reject(c, "\"version\" is missing or not 1");

	if (!json_object_object_get_ex(root, "entries", &v) || !v) {
		c->entries = NULL;
		c->entry_count = 0;
		return 0;
	}
	if (!json_object_is_type(v, json_type_array))
		return reject(c, "\"entries\" is not an array");

	c->entries = v;
	c->entry_count = json_object_array_length(v);
	return 0;
}

int im_toc_compile(const void *json, size_t len, const struct im_digest *toc_digest,
		   uint64_t blob_size, struct im_index_builder **ret)
{
	struct json_object *root = NULL;
	struct compiler c = { .blob_size = blob_size };
	int r;

	if ((!json && len > 0) || !toc_digest || !ret)
		return -EINVAL;
	im_digest_format(toc_digest, c.toc_digest);

	r = parse_json(&c, json ? (const char *)json : "", len, &root);
	if (r < 0)
		return r;
	r = find_entries(&c, root);
	if (r < 0)
		goto out;

	c.xattr_value = malloc(XATTR_BASE64_MAX / 4 * 3);
	if (!c.xattr_value) {
		r = -ENOMEM;
		goto out;
	}
	r = im_index_builder_new(toc_digest, blob_size, &c.builder);
	if (r < 0)
		goto out;

	for (size_t i = 0; i < c.entry_count; ) {
		r = compile_entry(&c, i);
		if (r < 0)
			goto out;
		i += (size_t)r;
	}

	*ret = im_steal_pointer(&c.builder);
	r = 0;
out:
	im_index_builder_free(c.builder);
	free(c.offsets);
	free(c.chunks);
	free(c.xattr_value);
	json_object_put(root);
	return r;
}
