/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writer of the compiled layer index (format in layer_index_internal.h).
 *
 * The builder keeps entries, chunks and xattrs in growing arrays and all
 * strings in one pool, in the order they are added, so the file lists them
 * in TOC order. Per-call checks reject malformed entries early with
 * -EINVAL. Before anything is written, the finished image goes through the
 * same validation as im_layer_index_open(), so an unchanged file from this
 * builder passes it. That pass is also where chunk lists that do not cover
 * their file are caught.
 */
#include "index/layer_index.h"
#include "index/layer_index_internal.h"
#include "index/path_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

struct builder_entry {
	struct im_entry e;      /* path and link are unused: see the offsets */
	uint64_t path_off;
	uint64_t link_off;
};

struct builder_xattr {
	uint64_t name_off;
	uint64_t value_off;
	uint32_t name_len;
	uint32_t value_len;
};

struct im_index_builder {
	struct im_digest toc_digest;
	uint64_t blob_size;

	struct builder_entry *entries;
	size_t entry_count;
	size_t entry_cap;

	struct im_chunk *chunks;
	size_t chunk_count;
	size_t chunk_cap;

	struct builder_xattr *xattrs;
	size_t xattr_count;
	size_t xattr_cap;

	uint8_t *strings;
	size_t strings_len;
	size_t strings_cap;
};

/* Make room for one more element, doubling the capacity. */
static int grow(void **array, size_t *cap, size_t count, size_t elem_size)
{
	size_t new_cap;
	void *p;

	if (count < *cap)
		return 0;

	new_cap = *cap ? *cap * 2 : 64;
	if (new_cap > SIZE_MAX / elem_size)
		return -ENOMEM;
	p = realloc(*array, new_cap * elem_size);
	if (!p)
		return -ENOMEM;

	*array = p;
	*cap = new_cap;
	return 0;
}

/* Append len bytes and a NUL to the pool. The empty string is offset 0. */
static int add_string(struct im_index_builder *b, const void *data, size_t len,
		      uint64_t *ret_off)
{
	size_t need;

	if (len == 0) {
		*ret_off = 0;
		return 0;
	}
	if (b->strings_len >= IDX_MAX_COUNT || len >= IDX_MAX_COUNT - b->strings_len)
		return -E2BIG;

	need = b->strings_len + len + 1;
	if (need > b->strings_cap) {
		size_t new_cap = b->strings_cap * 2;
		uint8_t *p;

		if (new_cap < need)
			new_cap = need;
		p = realloc(b->strings, new_cap);
		if (!p)
			return -ENOMEM;
		b->strings = p;
		b->strings_cap = new_cap;
	}

	memcpy(b->strings + b->strings_len, data, len);
	b->strings[b->strings_len + len] = '\0';
	*ret_off = b->strings_len;
	b->strings_len = need;
	return 0;
}

int im_index_builder_new(const struct im_digest *toc_digest, uint64_t blob_size,
			 struct im_index_builder **ret)
{
	struct im_index_builder *b;

	if (!toc_digest || !ret)
		return -EINVAL;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;

	/* Pool byte 0 is the empty string that every empty field points at. */
	b->strings_cap = 4096;
	b->strings = calloc(1, b->strings_cap);
	if (!b->strings) {
		free(b);
		return -ENOMEM;
	}
	b->strings_len = 1;

	b->toc_digest = *toc_digest;
	b->blob_size = blob_size;
	*ret = b;
	return 0;
}

void im_index_builder_free(struct im_index_builder *b)
{
	if (!b)
		return;
	free(b->entries);
	free(b->chunks);
	free(b->xattrs);
	free(b->strings);
	free(b);
}

static bool string_has_nul(const char *s, size_t len)
{
	return len > 0 && memchr(s, '\0', len) != NULL;
}

static bool entry_is_valid(const struct im_entry *e)
{
	if (e->type < IM_ENTRY_REG || e->type > IM_ENTRY_OPAQUE)
		return false;
	if (e->mode & ~07777u || e->mtime_nsec >= 1000000000u)
		return false;
	if (e->type != IM_ENTRY_REG && e->size != 0)
		return false;

	if (e->path_len > IM_PATH_MAX_LENGTH || (e->path_len > 0 && !e->path))
		return false;
	if (e->path_len == 0 ? e->type != IM_ENTRY_OPAQUE
			     : !im_path_is_clean(e->path, e->path_len))
		return false;

	if (e->link_len > IM_PATH_MAX_LENGTH || (e->link_len > 0 && !e->link))
		return false;
	switch (e->type) {
	case IM_ENTRY_SYMLINK:
		return !string_has_nul(e->link, e->link_len);
	case IM_ENTRY_HARDLINK:
		return e->link_len > 0 && im_path_is_clean(e->link, e->link_len);
	default:
		return e->link_len == 0;
	}
}

int im_index_builder_add_entry(struct im_index_builder *b, const struct im_entry *entry)
{
	struct builder_entry *be;
	uint64_t path_off;
	uint64_t link_off;
	int r;

	if (!entry_is_valid(entry))
		return -EINVAL;
	if (b->entry_count >= IDX_MAX_COUNT)
		return -E2BIG;

	r = grow((void **)&b->entries, &b->entry_cap, b->entry_count, sizeof(*b->entries));
	if (r < 0)
		return r;
	r = add_string(b, entry->path, entry->path_len, &path_off);
	if (r < 0)
		return r;
	r = add_string(b, entry->link, entry->link_len, &link_off);
	if (r < 0)
		return r;

	be = &b->entries[b->entry_count++];
	be->e = *entry;
	be->e.path = NULL;
	be->e.link = NULL;
	be->e.chunk_first = (uint32_t)b->chunk_count;
	be->e.chunk_count = 0;
	be->e.xattr_first = (uint32_t)b->xattr_count;
	be->e.xattr_count = 0;
	be->path_off = path_off;
	be->link_off = link_off;
	return 0;
}

int im_index_builder_add_chunk(struct im_index_builder *b, const struct im_chunk *chunk)
{
	struct builder_entry *last;
	int r;

	if (b->entry_count == 0)
		return -EINVAL;
	last = &b->entries[b->entry_count - 1];
	if (last->e.type != IM_ENTRY_REG || chunk->flags & ~IM_CHUNK_ZEROS)
		return -EINVAL;
	if (b->chunk_count >= IDX_MAX_COUNT)
		return -E2BIG;

	r = grow((void **)&b->chunks, &b->chunk_cap, b->chunk_count, sizeof(*b->chunks));
	if (r < 0)
		return r;

	b->chunks[b->chunk_count++] = *chunk;
	last->e.chunk_count++;
	return 0;
}

int im_index_builder_add_xattr(struct im_index_builder *b, const char *name,
			       const void *value, size_t value_len)
{
	struct builder_xattr *x;
	uint64_t name_off;
	uint64_t value_off;
	size_t name_len;
	int r;

	if (b->entry_count == 0 || !name || (value_len > 0 && !value))
		return -EINVAL;
	name_len = strlen(name);
	if (name_len == 0 || name_len > IDX_XATTR_NAME_MAX || value_len > IDX_XATTR_VALUE_MAX)
		return -EINVAL;
	if (b->xattr_count >= IDX_MAX_COUNT)
		return -E2BIG;

	r = grow((void **)&b->xattrs, &b->xattr_cap, b->xattr_count, sizeof(*b->xattrs));
	if (r < 0)
		return r;
	r = add_string(b, name, name_len, &name_off);
	if (r < 0)
		return r;
	r = add_string(b, value, value_len, &value_off);
	if (r < 0)
		return r;

	x = &b->xattrs[b->xattr_count++];
	x->name_off = name_off;
	x->value_off = value_off;
	x->name_len = (uint32_t)name_len;
	x->value_len = (uint32_t)value_len;
	b->entries[b->entry_count - 1].e.xattr_count++;
	return 0;
}

static void put_section(uint8_t *data, unsigned i, uint64_t offset, size_t count,
			uint32_t record_size)
{
	uint8_t *desc = data + IDX_H_SECTIONS + i * IDX_SECTION_DESC_SIZE;

	idx_put64(desc + IDX_S_OFFSET, offset);
	idx_put64(desc + IDX_S_LENGTH, (uint64_t)count * record_size);
	idx_put32(desc + IDX_S_COUNT, (uint32_t)count);
	idx_put32(desc + IDX_S_RECORD_SIZE, record_size);
}

static void put_entry(uint8_t *rec, const struct builder_entry *be)
{
	const struct im_entry *e = &be->e;

	idx_put32(rec + IDX_E_TYPE, (uint32_t)e->type);
	idx_put32(rec + IDX_E_MODE, e->mode);
	idx_put32(rec + IDX_E_UID, e->uid);
	idx_put32(rec + IDX_E_GID, e->gid);
	idx_put64(rec + IDX_E_MTIME_SEC, (uint64_t)e->mtime_sec);
	idx_put32(rec + IDX_E_MTIME_NSEC, e->mtime_nsec);
	idx_put32(rec + IDX_E_RDEV_MAJOR, e->rdev_major);
	idx_put32(rec + IDX_E_RDEV_MINOR, e->rdev_minor);
	idx_put32(rec + IDX_E_PATH_LEN, e->path_len);
	idx_put64(rec + IDX_E_SIZE, e->size);
	idx_put64(rec + IDX_E_PATH_OFF, be->path_off);
	idx_put64(rec + IDX_E_LINK_OFF, be->link_off);
	idx_put32(rec + IDX_E_LINK_LEN, e->link_len);
	idx_put32(rec + IDX_E_CHUNK_FIRST, e->chunk_first);
	idx_put32(rec + IDX_E_CHUNK_COUNT, e->chunk_count);
	idx_put32(rec + IDX_E_XATTR_FIRST, e->xattr_first);
	idx_put32(rec + IDX_E_XATTR_COUNT, e->xattr_count);
}

static void put_chunk(uint8_t *rec, const struct im_chunk *c)
{
	idx_put64(rec + IDX_C_FILE_OFFSET, c->file_offset);
	idx_put64(rec + IDX_C_LENGTH, c->length);
	idx_put64(rec + IDX_C_BLOB_OFFSET, c->blob_offset);
	idx_put64(rec + IDX_C_BLOB_LENGTH, c->blob_length);
	memcpy(rec + IDX_C_SHA256, c->sha256.bytes, IM_SHA256_LEN);
	idx_put32(rec + IDX_C_FLAGS, c->flags);
}

static void put_xattr(uint8_t *rec, const struct builder_xattr *x)
{
	idx_put64(rec + IDX_X_NAME_OFF, x->name_off);
	idx_put64(rec + IDX_X_VALUE_OFF, x->value_off);
	idx_put32(rec + IDX_X_NAME_LEN, x->name_len);
	idx_put32(rec + IDX_X_VALUE_LEN, x->value_len);
}

/* Lay out and fill the image. Every record size is a multiple of 8, so
 * each section starts aligned. */
static int serialize(const struct im_index_builder *b, uint8_t **ret_data, size_t *ret_len)
{
	uint64_t entries_off = IDX_HEADER_SIZE;
	uint64_t chunks_off = entries_off + (uint64_t)b->entry_count * IDX_ENTRY_SIZE;
	uint64_t xattrs_off = chunks_off + (uint64_t)b->chunk_count * IDX_CHUNK_SIZE;
	uint64_t strings_off = xattrs_off + (uint64_t)b->xattr_count * IDX_XATTR_SIZE;
	uint64_t total = strings_off + b->strings_len;
	uint8_t *data;

	if (total > SIZE_MAX)
		return -E2BIG;
	data = calloc(1, (size_t)total);
	if (!data)
		return -ENOMEM;

	memcpy(data + IDX_H_MAGIC, IDX_MAGIC, IDX_MAGIC_LEN);
	idx_put32(data + IDX_H_VERSION, IDX_VERSION);
	idx_put32(data + IDX_H_HEADER_SIZE, IDX_HEADER_SIZE);
	idx_put64(data + IDX_H_FILE_SIZE, total);
	idx_put64(data + IDX_H_BLOB_SIZE, b->blob_size);
	memcpy(data + IDX_H_TOC_DIGEST, b->toc_digest.bytes, IM_SHA256_LEN);
	idx_put32(data + IDX_H_SECTION_COUNT, IDX_SECTION_COUNT);
	put_section(data, IDX_SECTION_ENTRIES, entries_off, b->entry_count, IDX_ENTRY_SIZE);
	put_section(data, IDX_SECTION_CHUNKS, chunks_off, b->chunk_count, IDX_CHUNK_SIZE);
	put_section(data, IDX_SECTION_XATTRS, xattrs_off, b->xattr_count, IDX_XATTR_SIZE);
	put_section(data, IDX_SECTION_STRINGS, strings_off, b->strings_len,
		    IDX_STRING_RECORD_SIZE);

	for (size_t i = 0; i < b->entry_count; i++)
		put_entry(data + entries_off + i * IDX_ENTRY_SIZE, &b->entries[i]);
	for (size_t i = 0; i < b->chunk_count; i++)
		put_chunk(data + chunks_off + i * IDX_CHUNK_SIZE, &b->chunks[i]);
	for (size_t i = 0; i < b->xattr_count; i++)
		put_xattr(data + xattrs_off + i * IDX_XATTR_SIZE, &b->xattrs[i]);
	memcpy(data + strings_off, b->strings, b->strings_len);

	idx_put32(data + IDX_H_CRC, im_layer_index_checksum(data, (size_t)total));
	*ret_data = data;
	*ret_len = (size_t)total;
	return 0;
}

int im_index_builder_write_buffer(struct im_index_builder *b, void **ret_data,
				  size_t *ret_len)
{
	_cleanup_free_ uint8_t *data = NULL;
	char digest[IM_DIGEST_STRING_LEN];
	char reason[512];
	struct idx_layout layout;
	size_t len;
	int r;

	r = serialize(b, &data, &len);
	if (r < 0)
		return r;

	r = im_layer_index_validate(data, len, &layout, reason, sizeof(reason));
	if (r < 0) {
		im_digest_format(&b->toc_digest, digest);
		im_err("cannot write the layer index of TOC %s: %s", digest, reason);
		return r;
	}

	*ret_data = im_steal_pointer(&data);
	*ret_len = len;
	return 0;
}

/* Write data to a new temporary file next to path, sync it, and rename it
 * over path. The temporary file is removed on any failure. */
static int write_file_atomic(const char *path, const void *data, size_t len)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;

	r = im_write_full(fd, data, len);
	/* mkostemp() creates the file 0600, but other readers of the shared
	 * cache need to open it. */
	if (r == 0 && fchmod(fd, 0644) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && close(im_steal_fd(&fd)) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;

	if (r < 0)
		unlink(tmp);
	return r;
}

int im_index_builder_write(struct im_index_builder *b, const char *path)
{
	_cleanup_free_ void *data = NULL;
	size_t len;
	int r;

	r = im_index_builder_write_buffer(b, &data, &len);
	if (r < 0)
		return r;
	return write_file_atomic(path, data, len);
}
