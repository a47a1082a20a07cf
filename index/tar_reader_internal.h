/* SPDX-License-Identifier: Apache-2.0 */
/*
 * State of the tar reader, shared by its two halves: tar_reader.c reads
 * blocks from the stream into the raw buffer, and tar_entry.c decodes an
 * entry from the header blocks and extension headers in that buffer.
 */
#ifndef IM_TAR_READER_INTERNAL_H
#define IM_TAR_READER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/tar_reader.h"

/* Extension headers before one entry; real writers use at most three. */
#define MAX_EXTENSIONS 32

/* Field offsets and widths in a header block (POSIX ustar layout). */
#define NAME_OFFSET 0
#define NAME_WIDTH 100
#define MODE_OFFSET 100
#define UID_OFFSET 108
#define GID_OFFSET 116
#define ID_WIDTH 8
#define SIZE_OFFSET 124
#define MTIME_OFFSET 136
#define TIME_WIDTH 12
#define TYPE_OFFSET 156
#define LINKNAME_OFFSET 157
#define MAGIC_OFFSET 257
#define DEVMAJOR_OFFSET 329
#define DEVMINOR_OFFSET 337
#define PREFIX_OFFSET 345
#define PREFIX_WIDTH 155
#define STAR_PREFIX_WIDTH 131
#define STAR_TRAILER_OFFSET 508

enum reader_state {
	STATE_HEADER,   /* at a header boundary (or in the padding before it) */
	STATE_DATA,     /* inside an entry's data */
	STATE_END,      /* the end-of-archive blocks were consumed */
	STATE_FAILED,
};

/* A byte range of the raw buffer. */
struct span {
	size_t offset;
	size_t len;
};

struct extension {
	char type;      /* 'x', 'g', 'L' or 'K' */
	struct span data;
};

struct xattr_ref {
	struct span name;       /* after the "SCHILY.xattr." prefix */
	struct span value;
};

struct im_tar_reader {
	im_read_fn read;
	void *opaque;
	uint8_t *input;
	size_t input_pos, input_len;
	uint64_t offset;                /* bytes consumed from the stream */

	enum reader_state state;
	int error;                      /* returned again once failed */
	uint64_t data_left;
	size_t padding_left;

	uint8_t *raw;
	size_t raw_len, raw_cap;

	struct extension extensions[MAX_EXTENSIONS];
	size_t n_extensions;
	struct xattr_ref *xattr_refs;
	size_t n_xattr_refs, xattr_refs_cap;

	char *arena;                    /* decoded strings of the current entry */
	size_t arena_len, arena_cap;
	struct im_tar_xattr *xattrs;
	size_t xattrs_cap;
	struct im_tar_entry entry;
};

/* Log a problem with the entry whose headers start at entry_offset, make
 * every later call return the same error, and return error. */
int im_tar_fail(struct im_tar_reader *tr, int error, uint64_t entry_offset,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Parse a numeric field of a header block, logging a bad value. */
int im_tar_number(struct im_tar_reader *tr, const uint8_t *block, size_t offset,
			 size_t width, const char *field, uint64_t entry_offset,
			 int64_t *ret);

/*
 * Decode the entry whose own header block is at raw offset block_offset,
 * applying the extension headers recorded in tr->extensions.
 * Return: 1, or a negative errno after im_tar_fail().
 */
int im_tar_decode_entry(struct im_tar_reader *tr, size_t block_offset, uint64_t entry_offset);

/* Bytes of zero padding after size bytes of entry data. */
static inline size_t im_tar_padding(uint64_t size)
{
	return (size_t)((IM_TAR_BLOCK_SIZE - size % IM_TAR_BLOCK_SIZE) % IM_TAR_BLOCK_SIZE);
}

#endif
