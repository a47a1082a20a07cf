/* SPDX-License-Identifier: Apache-2.0 */
/*
 * On-disk layout of the compiled layer index, shared by the reader
 * (layer_index.c) and the writer (index_builder.c).
 *
 * All integers are little-endian. The file is a fixed header, then four
 * sections in this order: entry records, chunk records, xattr records and
 * the string pool. Every section starts at a multiple of 8 and every record
 * size is a multiple of 8, so records are naturally aligned in a mapping.
 * Strings are (offset, length) pairs into the pool. Each is followed by a
 * NUL byte and has none inside, except xattr values, which are raw bytes.
 * Pool byte 0 is NUL, so offset 0 with length 0 is the empty string.
 *
 * header (168 bytes):
 *     0  magic "IMGMIDX\0"
 *     8  u32 version
 *    12  u32 header size
 *    16  u64 file size
 *    24  u64 blob size
 *    32  32 bytes SHA-256 of the compressed TOC
 *    64  u32 section count (4)
 *    68  u32 CRC-32 (zlib) of the whole file, computed with these 4 bytes 0
 *    72  4 section descriptors of 24 bytes:
 *        u64 offset, u64 length, u32 record count, u32 record size
 *        (the string pool has 1-byte records: count is its length)
 *
 * entry record (88 bytes):
 *     0  u32 type             4  u32 mode          8  u32 uid
 *    12  u32 gid             16  s64 mtime_sec    24  u32 mtime_nsec
 *    28  u32 rdev_major      32  u32 rdev_minor   36  u32 path length
 *    40  u64 size            48  u64 path offset  56  u64 link offset
 *    64  u32 link length     68  u32 chunk_first  72  u32 chunk_count
 *    76  u32 xattr_first     80  u32 xattr_count  84  u32 reserved (0)
 *
 * chunk record (72 bytes):
 *     0  u64 file_offset      8  u64 length       16  u64 blob_offset
 *    24  u64 blob_length     32  32 bytes SHA-256 64  u32 flags
 *    68  u32 reserved (0)
 *
 * xattr record (24 bytes):
 *     0  u64 name offset      8  u64 value offset 16  u32 name length
 *    20  u32 value length
 *
 * Change the version whenever the meaning of any byte changes: an index of
 * another version is rejected and compiled again from the TOC.
 */
#ifndef IM_LAYER_INDEX_INTERNAL_H
#define IM_LAYER_INDEX_INTERNAL_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define IDX_MAGIC "IMGMIDX"     /* 7 characters plus the NUL: 8 bytes */
#define IDX_MAGIC_LEN 8
/* 2: symlinks are compiled with mode 0777. */
#define IDX_VERSION 2u

#define IDX_HEADER_SIZE 168u
#define IDX_H_MAGIC 0
#define IDX_H_VERSION 8
#define IDX_H_HEADER_SIZE 12
#define IDX_H_FILE_SIZE 16
#define IDX_H_BLOB_SIZE 24
#define IDX_H_TOC_DIGEST 32
#define IDX_H_SECTION_COUNT 64
#define IDX_H_CRC 68
#define IDX_H_SECTIONS 72

enum idx_section {
	IDX_SECTION_ENTRIES = 0,
	IDX_SECTION_CHUNKS = 1,
	IDX_SECTION_XATTRS = 2,
	IDX_SECTION_STRINGS = 3,
	IDX_SECTION_COUNT = 4,
};

#define IDX_SECTION_DESC_SIZE 24u
#define IDX_S_OFFSET 0
#define IDX_S_LENGTH 8
#define IDX_S_COUNT 16
#define IDX_S_RECORD_SIZE 20

#define IDX_ENTRY_SIZE 88u
#define IDX_E_TYPE 0
#define IDX_E_MODE 4
#define IDX_E_UID 8
#define IDX_E_GID 12
#define IDX_E_MTIME_SEC 16
#define IDX_E_MTIME_NSEC 24
#define IDX_E_RDEV_MAJOR 28
#define IDX_E_RDEV_MINOR 32
#define IDX_E_PATH_LEN 36
#define IDX_E_SIZE 40
#define IDX_E_PATH_OFF 48
#define IDX_E_LINK_OFF 56
#define IDX_E_LINK_LEN 64
#define IDX_E_CHUNK_FIRST 68
#define IDX_E_CHUNK_COUNT 72
#define IDX_E_XATTR_FIRST 76
#define IDX_E_XATTR_COUNT 80
#define IDX_E_RESERVED 84

#define IDX_CHUNK_SIZE 72u
#define IDX_C_FILE_OFFSET 0
#define IDX_C_LENGTH 8
#define IDX_C_BLOB_OFFSET 16
#define IDX_C_BLOB_LENGTH 24
#define IDX_C_SHA256 32
#define IDX_C_FLAGS 64
#define IDX_C_RESERVED 68

#define IDX_XATTR_SIZE 24u
#define IDX_X_NAME_OFF 0
#define IDX_X_VALUE_OFF 8
#define IDX_X_NAME_LEN 16
#define IDX_X_VALUE_LEN 20

/* The string pool is a section of 1-byte records. */
#define IDX_STRING_RECORD_SIZE 1u

/* Record counts, and so the string pool's length in bytes, stay below
 * 2^31 so that they fit an int and a uint32_t. */
#define IDX_MAX_COUNT 0x7fffffffu
/* Linux limits: XATTR_NAME_MAX and XATTR_SIZE_MAX. */
#define IDX_XATTR_NAME_MAX 255u
#define IDX_XATTR_VALUE_MAX 65536u

static inline uint32_t idx_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t idx_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline void idx_put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void idx_put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* Section addresses and record counts of a validated index. */
struct idx_layout {
	uint64_t blob_size;
	const uint8_t *toc_digest;
	const uint8_t *entries;
	const uint8_t *chunks;
	const uint8_t *xattrs;
	const uint8_t *strings;
	uint32_t entry_count;
	uint32_t chunk_count;
	uint32_t xattr_count;
	uint64_t strings_len;
};

/* CRC-32 of data[0..len) with the 4 checksum bytes of the header read as
 * zero. len must be at least IDX_HEADER_SIZE. */
uint32_t im_layer_index_checksum(const uint8_t *data, size_t len);

/*
 * Validate a whole index image and fill *ret. On failure, write a reason
 * for the log into reason, naming the entry and its path where there is one.
 * Return: 0 or -EBADMSG.
 */
int im_layer_index_validate(const uint8_t *data, size_t len, struct idx_layout *ret,
			    char *reason, size_t reason_size);

#endif
