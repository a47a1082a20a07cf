/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streaming reader for tar archives (ustar, pax and GNU), built for the
 * layer converter. Besides each decoded entry it returns the raw header
 * bytes it consumed, so that the converter can copy the archive byte for
 * byte. Bytes after the end-of-archive marker are passed through too.
 *
 * Formats and choices (Go's archive/tar reader, which containers/storage
 * uses, decides the same way unless noted):
 * - Names: a GNU 'L' long name wins over pax "path", which wins over the
 *   ustar prefix and name fields. The name is returned as stored, not
 *   cleaned. Link names come likewise from 'K', "linkpath" and the
 *   linkname field. An empty value counts as absent.
 * - Numbers: octal with leading or trailing spaces and NULs, GNU base-256,
 *   and the pax "size", "mtime", "uid" and "gid" records. A pax mtime keeps
 *   its sign and nanoseconds and is parsed as decimal text, never through
 *   floating point.
 * - Extended attributes come from "SCHILY.xattr.NAME" records only, and
 *   their values are binary (NUL bytes included). libarchive writes each
 *   attribute a second time as "LIBARCHIVE.xattr.NAME" (URL-encoded name,
 *   base64 value). Those records are ignored, as Go ignores them.
 * - Global pax headers ('g') are skipped and their records ignored. Go
 *   returns them to its caller as entries of their own, which
 *   containers/storage's converter then rejects as an unknown type. Their
 *   bytes are still part of the raw header bytes.
 * - GNU sparse files (old GNU type 'S' and the pax GNU.sparse.* records) are
 *   rejected, unlike in Go, because a zstd:chunked TOC that other readers
 *   understand cannot describe holes.
 * - Types '0', '\0' (a directory when the name ends in '/') and '7' are
 *   regular files, and '1'..'6' map to the other entry types. Any other
 *   type (GNU 'D', 'M', 'N', 'V', vendor types) is rejected.
 * - Hard links, symlinks, devices, directories and FIFOs carry no data,
 *   whatever their size field contains.
 * - The archive ends with two zero blocks, or with one zero block or the
 *   end of the stream at a header boundary. A zero block followed by a
 *   non-zero block is rejected.
 *
 * Every byte is untrusted. Header checksums are verified (unsigned or
 * signed sum), extension headers are capped (IM_TAR_MAX_PAX_LENGTH,
 * IM_TAR_MAX_LONG_NAME, IM_TAR_MAX_HEADER_BYTES), and every error names
 * the stream offset of the entry's first header block.
 *
 * Not thread-safe: one reader belongs to one thread at a time.
 */
#ifndef IM_TAR_READER_H
#define IM_TAR_READER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "index/stream.h"

#define IM_TAR_BLOCK_SIZE 512u

/* Largest data section of one pax 'x' or 'g' header. */
#define IM_TAR_MAX_PAX_LENGTH (1u << 20)
/* Largest data section of one GNU 'L' or 'K' header. */
#define IM_TAR_MAX_LONG_NAME (64u << 10)
/* Largest run of raw bytes returned for one entry: the padding of the
 * previous entry's data and every header block and extension header. */
#define IM_TAR_MAX_HEADER_BYTES (4u << 20)

/* Entry types, with the values of the tar typeflags they come from. */
enum im_tar_type {
	IM_TAR_REG = '0',
	IM_TAR_HARDLINK = '1',
	IM_TAR_SYMLINK = '2',
	IM_TAR_CHAR = '3',
	IM_TAR_BLOCK = '4',
	IM_TAR_DIR = '5',
	IM_TAR_FIFO = '6',
};

struct im_tar_xattr {
	const char *name;       /* NUL-terminated, without "SCHILY.xattr." */
	const uint8_t *value;   /* value_len bytes, NUL-terminated for convenience */
	size_t value_len;
};

/*
 * One decoded entry. Every pointer stays valid until the next call of
 * im_tar_reader_next() or im_tar_reader_free().
 */
struct im_tar_entry {
	uint64_t offset;        /* stream offset of the entry's first header block */
	enum im_tar_type type;
	const char *name;       /* NUL-terminated, name_len bytes, no NUL inside */
	size_t name_len;
	const char *link_name;  /* "" when the entry has none */
	size_t link_name_len;
	uint32_t mode;          /* permission bits only (07777) */
	uint64_t uid;
	uint64_t gid;
	int64_t mtime_sec;      /* may be negative (before 1970) */
	uint32_t mtime_nsec;
	uint64_t size;          /* data bytes that follow; 0 for types without data */
	uint32_t dev_major;     /* character and block devices only, else 0 */
	uint32_t dev_minor;
	const struct im_tar_xattr *xattrs;
	size_t n_xattrs;
};

struct im_tar_reader;

/* Return: 0, or -ENOMEM. */
int im_tar_reader_new(im_read_fn read, void *opaque, struct im_tar_reader **ret);
void im_tar_reader_free(struct im_tar_reader *tr);

/*
 * Skip what is left of the current entry's data and decode the next entry.
 * Errors are logged with the entry's offset.
 * Return: 1 with *ret set, 0 at the end of the archive, -EBADMSG for a
 * malformed or truncated archive, -ENOTSUP for sparse files and unknown
 * entry types, or the negative errno of the read callback.
 */
int im_tar_reader_next(struct im_tar_reader *tr, const struct im_tar_entry **ret);

/*
 * The raw bytes consumed by the last successful im_tar_reader_next(): the
 * padding after the previous entry's data, then every header block and
 * extension header of this entry, or at the end of the archive the padding
 * and the end-of-archive blocks. Data skipped unread by
 * im_tar_reader_next() is not included. Valid until the next call of
 * im_tar_reader_next().
 */
void im_tar_reader_raw(const struct im_tar_reader *tr, const uint8_t **ret_data,
		       size_t *ret_len);

/*
 * Read up to len bytes of the current entry's data.
 * Return: the number of bytes read, 0 when the data is exhausted, -EBADMSG
 * when the stream ends early, or the read callback's negative errno.
 */
ssize_t im_tar_reader_read(struct im_tar_reader *tr, void *buf, size_t len);

/*
 * After im_tar_reader_next() returned 0, read the bytes that follow the
 * end-of-archive blocks, up to the end of the stream.
 * Return: the number of bytes read, 0 at the end of the stream, -EINVAL
 * before the end of the archive, or the read callback's negative errno.
 */
ssize_t im_tar_reader_read_trailer(struct im_tar_reader *tr, void *buf, size_t len);

/* Stream offset of the next byte the reader will consume. */
uint64_t im_tar_reader_offset(const struct im_tar_reader *tr);

#endif
