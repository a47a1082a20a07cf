/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The compiled layer index: imgmount's own binary form of one layer's table
 * of contents (TOC). It is written once per TOC digest, stored in the cache
 * directory, and then used in place through mmap(2) with no parse pass.
 *
 * Every byte of an index file is untrusted (it lives in a directory other
 * processes can write). im_layer_index_open() checks every offset, count,
 * string and chunk list once, so the accessors below cannot fail and never
 * read out of bounds for any i below the counts they return.
 *
 * Entries keep the TOC order. Paths are already cleaned (no leading "/" or
 * "./", no "." or ".." components, no "//", never the root itself except
 * for an opaque marker at the root), and
 * whiteouts and opaque markers are classified by name, so the union merge
 * needs no string tricks.
 */
#ifndef IM_LAYER_INDEX_H
#define IM_LAYER_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

/* Largest uncompressed chunk accepted from a TOC: bounds read buffers. */
#define IM_CHUNK_MAX_LENGTH (64u << 20)

enum im_entry_type {
	IM_ENTRY_REG = 1,
	IM_ENTRY_DIR = 2,
	IM_ENTRY_SYMLINK = 3,
	IM_ENTRY_HARDLINK = 4,
	IM_ENTRY_CHAR = 5,
	IM_ENTRY_BLOCK = 6,
	IM_ENTRY_FIFO = 7,
	/* ".wh.NAME": path is the cleaned path of NAME, the path it removes
	 * from lower layers. Decided by name alone, whatever the tar type. */
	IM_ENTRY_WHITEOUT = 8,
	/* ".wh..wh..opq": path is the directory whose lower children it hides;
	 * "" (path_len 0) for the root, the only entry with an empty path. */
	IM_ENTRY_OPAQUE = 9,
};

/* The chunk is all zero bytes and has nothing to fetch. */
#define IM_CHUNK_ZEROS 0x1u

struct im_entry {
	enum im_entry_type type;
	uint32_t mode;          /* the 12 permission bits (07777), no type bits */
	uint32_t uid;
	uint32_t gid;
	int64_t mtime_sec;      /* may be negative (before 1970) */
	uint32_t mtime_nsec;
	uint32_t rdev_major;
	uint32_t rdev_minor;
	uint64_t size;          /* bytes of a regular file, 0 for other types */
	const char *path;       /* NUL-terminated, path_len bytes, no NUL inside */
	uint32_t path_len;
	const char *link;       /* symlink target as stored, or the cleaned target
				   path of a hardlink; "" (len 0) otherwise */
	uint32_t link_len;
	uint32_t chunk_first;   /* chunks of a regular file, in file order */
	uint32_t chunk_count;
	uint32_t xattr_first;
	uint32_t xattr_count;
};

struct im_chunk {
	uint64_t file_offset;   /* first byte of the chunk in the file */
	uint64_t length;        /* uncompressed bytes, 1..IM_CHUNK_MAX_LENGTH */
	uint64_t blob_offset;   /* compressed bytes in the layer blob */
	uint64_t blob_length;
	struct im_digest sha256; /* of the uncompressed bytes; the cache key */
	uint32_t flags;         /* IM_CHUNK_* */
};

struct im_xattr {
	const char *name;       /* NUL-terminated */
	uint32_t name_len;
	const uint8_t *value;   /* arbitrary bytes, NUL bytes included */
	uint32_t value_len;
};

struct im_layer_index;

/*
 * Map and validate the index file at path. The file stays mapped until
 * im_layer_index_free(); pointers in entries and xattrs stay valid as long.
 * Return: 0, -EBADMSG (corrupt or wrong version; the caller should delete the
 * file and compile again), or -errno.
 */
int im_layer_index_open(const char *path, struct im_layer_index **ret);

/* Same checks over a buffer the caller keeps alive (tests and fuzzers). */
int im_layer_index_open_buffer(const void *data, size_t len,
			       struct im_layer_index **ret);

void im_layer_index_free(struct im_layer_index *idx);

/* TOC digest the index was compiled from, and the blob size it was checked
 * against. */
const struct im_digest *im_layer_index_toc_digest(const struct im_layer_index *idx);
uint64_t im_layer_index_blob_size(const struct im_layer_index *idx);

uint32_t im_layer_index_entry_count(const struct im_layer_index *idx);
uint32_t im_layer_index_chunk_count(const struct im_layer_index *idx);
uint32_t im_layer_index_xattr_count(const struct im_layer_index *idx);

/* Decode entry i (i < entry count). */
void im_layer_index_entry(const struct im_layer_index *idx, uint32_t i,
			  struct im_entry *ret);
/* Decode chunk i (i < chunk count); an entry's chunks are
 * chunk_first .. chunk_first + chunk_count - 1. */
void im_layer_index_chunk(const struct im_layer_index *idx, uint32_t i,
			  struct im_chunk *ret);
void im_layer_index_xattr(const struct im_layer_index *idx, uint32_t i,
			  struct im_xattr *ret);

/*
 * Builder: collects entries in order and writes an index file. Used by the
 * TOC readers. Strings are copied.
 */
struct im_index_builder;

int im_index_builder_new(const struct im_digest *toc_digest, uint64_t blob_size,
			 struct im_index_builder **ret);
void im_index_builder_free(struct im_index_builder *b);

/*
 * Append an entry. entry->path must already be cleaned and entry->type
 * classified; chunk_* and xattr_* fields are ignored and filled from the
 * calls below, which apply to the entry added last.
 * Return: 0 or -ENOMEM/-EINVAL/-E2BIG.
 */
int im_index_builder_add_entry(struct im_index_builder *b, const struct im_entry *entry);
int im_index_builder_add_chunk(struct im_index_builder *b, const struct im_chunk *chunk);
int im_index_builder_add_xattr(struct im_index_builder *b, const char *name,
			       const void *value, size_t value_len);

/*
 * Check the chunk lists (contiguous from 0, sum equals size, ranges inside
 * the blob) and write the file to path through a temporary file and
 * rename(2), so a reader sees the old file, the new one, or none.
 * Return: 0, -EBADMSG with a logged reason, or -errno.
 */
int im_index_builder_write(struct im_index_builder *b, const char *path);

/* Same, into a malloc'd buffer (tests and fuzzers). */
int im_index_builder_write_buffer(struct im_index_builder *b, void **ret_data,
				  size_t *ret_len);

#endif
