/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Validation of a compiled layer index image (format in
 * layer_index_internal.h), run once when an index is opened and on every
 * image the builder writes.
 *
 * It checks the header and its CRC-32, the section table, every record,
 * every string and every chunk list. Afterwards every string offset and
 * length lies in the pool, every first/count pair lies in its array, and
 * every regular file's chunks cover it from offset 0 to its size, inside
 * the blob, so any record can be decoded without bounds checks.
 */
#include "index/layer_index.h"
#include "index/layer_index_internal.h"
#include "index/path_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <zlib.h>

#include "common/util.h"

/* Sizes of a failure reason and of an entry path quoted inside one. */
#define REASON_SIZE 512
#define QUOTED_PATH_SIZE 160

struct validator {
	const uint8_t *data;
	size_t len;
	struct idx_layout *layout;
	char *reason;
	size_t reason_size;
	/* Entry being checked and its quoted path ("" until the path is
	 * valid), for failure reasons. */
	uint32_t entry;
	char path[QUOTED_PATH_SIZE];
	uint32_t chunks_seen;
	uint32_t xattrs_seen;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct validator *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->reason, v->reason_size, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

__attribute__((format(printf, 2, 3)))
static int fail_entry(struct validator *v, const char *fmt, ...)
{
	char detail[REASON_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return fail(v, "entry %u \"%s\": %s", v->entry, v->path, detail);
}

uint32_t im_layer_index_checksum(const uint8_t *data, size_t len)
{
	static const uint8_t zero[4];
	unsigned long crc = crc32_z(0, Z_NULL, 0);

	crc = crc32_z(crc, data, IDX_H_CRC);
	crc = crc32_z(crc, zero, sizeof(zero));
	crc = crc32_z(crc, data + IDX_H_CRC + 4, len - IDX_H_CRC - 4);
	return (uint32_t)crc;
}

static int check_header(struct validator *v)
{
	const uint8_t *d = v->data;
	uint32_t version;

	if (v->len < IDX_HEADER_SIZE)
		return fail(v, "file is %zu bytes, shorter than the %u-byte header",
			    v->len, IDX_HEADER_SIZE);
	if (memcmp(d + IDX_H_MAGIC, IDX_MAGIC, IDX_MAGIC_LEN) != 0)
		return fail(v, "bad magic, not a layer index");

	version = idx_get32(d + IDX_H_VERSION);
	if (version != IDX_VERSION)
		return fail(v, "version %u, expected %u", version, IDX_VERSION);
	if (idx_get32(d + IDX_H_HEADER_SIZE) != IDX_HEADER_SIZE)
		return fail(v, "header size %u, expected %u",
			    idx_get32(d + IDX_H_HEADER_SIZE), IDX_HEADER_SIZE);
	if (idx_get64(d + IDX_H_FILE_SIZE) != v->len)
		return fail(v, "header gives %llu bytes but the file has %zu",
			    (unsigned long long)idx_get64(d + IDX_H_FILE_SIZE), v->len);
	if (idx_get32(d + IDX_H_SECTION_COUNT) != IDX_SECTION_COUNT)
		return fail(v, "%u sections, expected %u",
			    idx_get32(d + IDX_H_SECTION_COUNT), IDX_SECTION_COUNT);
	if (idx_get32(d + IDX_H_CRC) != im_layer_index_checksum(d, v->len))
		return fail(v, "CRC-32 mismatch, the file is corrupt");

	v->layout->blob_size = idx_get64(d + IDX_H_BLOB_SIZE);
	v->layout->toc_digest = d + IDX_H_TOC_DIGEST;
	return 0;
}

/*
 * Check one section descriptor: aligned, after the previous section,
 * inside the file, and exactly count records of the expected size.
 */
static int check_section(struct validator *v, unsigned i, uint64_t *prev_end,
			 const uint8_t **ret_base, uint32_t *ret_count)
{
	static const uint32_t record_size[IDX_SECTION_COUNT] = {
		IDX_ENTRY_SIZE, IDX_CHUNK_SIZE, IDX_XATTR_SIZE, IDX_STRING_RECORD_SIZE,
	};
	static const char *const name[IDX_SECTION_COUNT] = {
		"entries", "chunks", "xattrs", "strings",
	};
	const uint8_t *desc = v->data + IDX_H_SECTIONS + i * IDX_SECTION_DESC_SIZE;
	uint64_t offset = idx_get64(desc + IDX_S_OFFSET);
	uint64_t length = idx_get64(desc + IDX_S_LENGTH);
	uint32_t count = idx_get32(desc + IDX_S_COUNT);
	uint32_t size = idx_get32(desc + IDX_S_RECORD_SIZE);
	uint64_t end;

	if (size != record_size[i])
		return fail(v, "%s section: record size %u, expected %u",
			    name[i], size, record_size[i]);
	if (count > IDX_MAX_COUNT)
		return fail(v, "%s section: %u records, more than 2^31 - 1", name[i], count);
	if (length != (uint64_t)count * size)
		return fail(v, "%s section: length %llu is not %u records of %u bytes",
			    name[i], (unsigned long long)length, count, size);
	if (offset % 8 != 0)
		return fail(v, "%s section: offset %llu is not a multiple of 8",
			    name[i], (unsigned long long)offset);
	if (offset < *prev_end)
		return fail(v, "%s section: offset %llu overlaps the data before it",
			    name[i], (unsigned long long)offset);
	if (im_add_u64(offset, length, &end) < 0 || end > v->len)
		return fail(v, "%s section: %llu bytes at offset %llu run past the end of the file",
			    name[i], (unsigned long long)length, (unsigned long long)offset);

	*prev_end = end;
	*ret_base = v->data + offset;
	*ret_count = count;
	return 0;
}

static int check_sections(struct validator *v)
{
	struct idx_layout *l = v->layout;
	const uint8_t *base[IDX_SECTION_COUNT];
	uint32_t count[IDX_SECTION_COUNT];
	uint64_t prev_end = IDX_HEADER_SIZE;
	int r;

	for (unsigned i = 0; i < IDX_SECTION_COUNT; i++) {
		r = check_section(v, i, &prev_end, &base[i], &count[i]);
		if (r < 0)
			return r;
	}

	l->entries = base[IDX_SECTION_ENTRIES];
	l->chunks = base[IDX_SECTION_CHUNKS];
	l->xattrs = base[IDX_SECTION_XATTRS];
	l->strings = base[IDX_SECTION_STRINGS];
	l->entry_count = count[IDX_SECTION_ENTRIES];
	l->chunk_count = count[IDX_SECTION_CHUNKS];
	l->xattr_count = count[IDX_SECTION_XATTRS];
	l->strings_len = count[IDX_SECTION_STRINGS];

	if (l->strings_len == 0 || l->strings[0] != '\0')
		return fail(v, "strings section does not start with the empty string");
	return 0;
}

/* A string is len bytes in the pool, none of them NUL, then a NUL. */
static bool string_is_valid(const struct idx_layout *l, uint64_t off, uint64_t len)
{
	const uint8_t *s;

	if (len >= l->strings_len || off > l->strings_len - 1 - len)
		return false;
	s = l->strings + off;
	return s[len] == '\0' && !memchr(s, '\0', len);
}

static int check_entry_path(struct validator *v, const uint8_t *rec, uint32_t type)
{
	uint64_t off = idx_get64(rec + IDX_E_PATH_OFF);
	uint32_t len = idx_get32(rec + IDX_E_PATH_LEN);
	const char *path;

	if (len > IM_PATH_MAX_LENGTH)
		return fail_entry(v, "path is %u bytes, more than %u", len, IM_PATH_MAX_LENGTH);
	if (!string_is_valid(v->layout, off, len))
		return fail_entry(v, "path (%u bytes at %llu) is not a string in the pool",
				  len, (unsigned long long)off);

	path = (const char *)v->layout->strings + off;
	im_path_quote(path, len, v->path, sizeof(v->path));

	if (len == 0 && type != IM_ENTRY_OPAQUE)
		return fail_entry(v, "empty path on an entry that is not an opaque marker");
	if (len > 0 && !im_path_is_clean(path, len))
		return fail_entry(v, "path is not in cleaned form");
	return 0;
}

static int check_entry_link(struct validator *v, const uint8_t *rec, uint32_t type)
{
	uint64_t off = idx_get64(rec + IDX_E_LINK_OFF);
	uint32_t len = idx_get32(rec + IDX_E_LINK_LEN);
	const char *link;

	if (len > IM_PATH_MAX_LENGTH)
		return fail_entry(v, "link is %u bytes, more than %u", len, IM_PATH_MAX_LENGTH);
	if (!string_is_valid(v->layout, off, len))
		return fail_entry(v, "link (%u bytes at %llu) is not a string in the pool",
				  len, (unsigned long long)off);

	link = (const char *)v->layout->strings + off;
	switch (type) {
	case IM_ENTRY_SYMLINK:
		return 0;
	case IM_ENTRY_HARDLINK:
		if (len == 0 || !im_path_is_clean(link, len))
			return fail_entry(v, "hardlink target is empty or not in cleaned form");
		return 0;
	default:
		if (len != 0)
			return fail_entry(v, "link target on an entry that is not a link");
		return 0;
	}
}

static int check_chunk(struct validator *v, uint32_t i, uint64_t expected_offset)
{
	const uint8_t *rec = v->layout->chunks + (size_t)i * IDX_CHUNK_SIZE;
	uint64_t file_offset = idx_get64(rec + IDX_C_FILE_OFFSET);
	uint64_t length = idx_get64(rec + IDX_C_LENGTH);
	uint64_t blob_offset = idx_get64(rec + IDX_C_BLOB_OFFSET);
	uint64_t blob_length = idx_get64(rec + IDX_C_BLOB_LENGTH);
	uint32_t flags = idx_get32(rec + IDX_C_FLAGS);
	uint64_t blob_end;

	if (flags & ~IM_CHUNK_ZEROS)
		return fail_entry(v, "chunk %u has unknown flags 0x%x", i, flags);
	if (idx_get32(rec + IDX_C_RESERVED) != 0)
		return fail_entry(v, "chunk %u has a nonzero reserved field", i);
	if (file_offset != expected_offset)
		return fail_entry(v, "chunk %u starts at file offset %llu, expected %llu",
				  i, (unsigned long long)file_offset,
				  (unsigned long long)expected_offset);
	if (length == 0)
		return fail_entry(v, "chunk %u is empty", i);
	if (length > IM_CHUNK_MAX_LENGTH && !(flags & IM_CHUNK_ZEROS))
		return fail_entry(v, "chunk %u is %llu bytes, more than %u",
				  i, (unsigned long long)length, IM_CHUNK_MAX_LENGTH);
	if (blob_length == 0 && !(flags & IM_CHUNK_ZEROS))
		return fail_entry(v, "chunk %u has an empty blob range", i);
	if (im_add_u64(blob_offset, blob_length, &blob_end) < 0 ||
	    blob_end > v->layout->blob_size)
		return fail_entry(v, "chunk %u blob range %llu+%llu runs past the blob size %llu",
				  i, (unsigned long long)blob_offset,
				  (unsigned long long)blob_length,
				  (unsigned long long)v->layout->blob_size);
	return 0;
}

/* An entry's chunks follow the previous entry's, and a regular file's
 * chunks cover it from offset 0 to its size without gap or overlap. */
static int check_entry_chunks(struct validator *v, const uint8_t *rec, uint32_t type)
{
	uint32_t first = idx_get32(rec + IDX_E_CHUNK_FIRST);
	uint32_t count = idx_get32(rec + IDX_E_CHUNK_COUNT);
	uint64_t size = idx_get64(rec + IDX_E_SIZE);
	uint64_t covered = 0;
	int r;

	if (first != v->chunks_seen)
		return fail_entry(v, "chunk_first is %u, expected %u", first, v->chunks_seen);
	if (count > v->layout->chunk_count - first)
		return fail_entry(v, "%u chunks from %u run past the %u chunk records",
				  count, first, v->layout->chunk_count);
	if (type != IM_ENTRY_REG && (count != 0 || size != 0))
		return fail_entry(v, "size or chunks on an entry that is not a regular file");

	for (uint32_t i = first; i < first + count; i++) {
		const uint8_t *c = v->layout->chunks + (size_t)i * IDX_CHUNK_SIZE;

		r = check_chunk(v, i, covered);
		if (r < 0)
			return r;
		if (im_add_u64(covered, idx_get64(c + IDX_C_LENGTH), &covered) < 0 ||
		    covered > size)
			return fail_entry(v, "chunks cover more than the size %llu",
					  (unsigned long long)size);
	}
	if (covered != size)
		return fail_entry(v, "chunks cover %llu bytes, size is %llu",
				  (unsigned long long)covered, (unsigned long long)size);

	v->chunks_seen += count;
	return 0;
}

static int check_xattr(struct validator *v, uint32_t i)
{
	const struct idx_layout *l = v->layout;
	const uint8_t *rec = l->xattrs + (size_t)i * IDX_XATTR_SIZE;
	uint64_t name_off = idx_get64(rec + IDX_X_NAME_OFF);
	uint64_t value_off = idx_get64(rec + IDX_X_VALUE_OFF);
	uint32_t name_len = idx_get32(rec + IDX_X_NAME_LEN);
	uint32_t value_len = idx_get32(rec + IDX_X_VALUE_LEN);

	if (name_len == 0 || name_len > IDX_XATTR_NAME_MAX)
		return fail_entry(v, "xattr %u name is %u bytes, expected 1 to %u",
				  i, name_len, IDX_XATTR_NAME_MAX);
	if (!string_is_valid(l, name_off, name_len))
		return fail_entry(v, "xattr %u name is not a string in the pool", i);
	if (value_len > IDX_XATTR_VALUE_MAX)
		return fail_entry(v, "xattr %u value is %u bytes, more than %u",
				  i, value_len, IDX_XATTR_VALUE_MAX);
	if (value_off > l->strings_len || value_len > l->strings_len - value_off)
		return fail_entry(v, "xattr %u value runs past the string pool", i);
	return 0;
}

static int check_entry_xattrs(struct validator *v, const uint8_t *rec)
{
	uint32_t first = idx_get32(rec + IDX_E_XATTR_FIRST);
	uint32_t count = idx_get32(rec + IDX_E_XATTR_COUNT);
	int r;

	if (first != v->xattrs_seen)
		return fail_entry(v, "xattr_first is %u, expected %u", first, v->xattrs_seen);
	if (count > v->layout->xattr_count - first)
		return fail_entry(v, "%u xattrs from %u run past the %u xattr records",
				  count, first, v->layout->xattr_count);

	for (uint32_t i = first; i < first + count; i++) {
		r = check_xattr(v, i);
		if (r < 0)
			return r;
	}

	v->xattrs_seen += count;
	return 0;
}

static int check_entry(struct validator *v, uint32_t i)
{
	const uint8_t *rec = v->layout->entries + (size_t)i * IDX_ENTRY_SIZE;
	uint32_t type = idx_get32(rec + IDX_E_TYPE);
	uint32_t mode = idx_get32(rec + IDX_E_MODE);
	int r;

	v->entry = i;
	v->path[0] = '\0';

	if (type < IM_ENTRY_REG || type > IM_ENTRY_OPAQUE)
		return fail_entry(v, "unknown type %u", type);
	r = check_entry_path(v, rec, type);
	if (r < 0)
		return r;
	if (mode & ~07777u)
		return fail_entry(v, "mode 0%o has bits beyond 07777", mode);
	if (idx_get32(rec + IDX_E_MTIME_NSEC) >= 1000000000u)
		return fail_entry(v, "mtime nanoseconds %u out of range",
				  idx_get32(rec + IDX_E_MTIME_NSEC));
	if (idx_get32(rec + IDX_E_RESERVED) != 0)
		return fail_entry(v, "nonzero reserved field");

	r = check_entry_link(v, rec, type);
	if (r < 0)
		return r;
	r = check_entry_chunks(v, rec, type);
	if (r < 0)
		return r;
	return check_entry_xattrs(v, rec);
}

int im_layer_index_validate(const uint8_t *data, size_t len, struct idx_layout *ret,
			    char *reason, size_t reason_size)
{
	struct validator v = {
		.data = data,
		.len = len,
		.layout = ret,
		.reason = reason,
		.reason_size = reason_size,
	};
	int r;

	r = check_header(&v);
	if (r < 0)
		return r;
	r = check_sections(&v);
	if (r < 0)
		return r;

	for (uint32_t i = 0; i < ret->entry_count; i++) {
		r = check_entry(&v, i);
		if (r < 0)
			return r;
	}

	/* Records that no entry owns would be harmless but mean a broken
	 * writer, so they reject the file as well. */
	if (v.chunks_seen != ret->chunk_count)
		return fail(&v, "%u chunk records but the entries use %u",
			    ret->chunk_count, v.chunks_seen);
	if (v.xattrs_seen != ret->xattr_count)
		return fail(&v, "%u xattr records but the entries use %u",
			    ret->xattr_count, v.xattrs_seen);
	return 0;
}
