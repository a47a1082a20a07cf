/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for im_layer_index_open_buffer(). The CRC-32 in the
 * header is repaired before each run, because otherwise nearly every
 * mutation would stop at the checksum and never reach the structural
 * checks. An accepted image is then read through every accessor; a read
 * outside the image is an ASan report, and a broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "index/layer_index.h"
#include "index/layer_index_internal.h"

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

/* Touch every byte that the accessors point at, so that ASan reports any
 * string or value that runs out of the image. */
static unsigned touch(const void *p, size_t len)
{
	const volatile uint8_t *b = p;
	unsigned sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return sum;
}

static void walk(const struct im_layer_index *idx)
{
	uint32_t chunks = im_layer_index_chunk_count(idx);
	uint32_t xattrs = im_layer_index_xattr_count(idx);
	uint64_t blob_size = im_layer_index_blob_size(idx);

	for (uint32_t i = 0; i < im_layer_index_entry_count(idx); i++) {
		struct im_entry e;
		uint64_t covered = 0;

		im_layer_index_entry(idx, i, &e);
		touch(e.path, e.path_len + 1);
		touch(e.link, e.link_len + 1);
		REQUIRE(strlen(e.path) == e.path_len);
		REQUIRE(strlen(e.link) == e.link_len);
		REQUIRE(e.path_len > 0 || e.type == IM_ENTRY_OPAQUE);
		REQUIRE(e.mode <= 07777);
		REQUIRE(e.mtime_nsec < 1000000000u);
		REQUIRE(e.chunk_first <= chunks);
		REQUIRE(e.chunk_count <= chunks - e.chunk_first);
		REQUIRE(e.xattr_first <= xattrs);
		REQUIRE(e.xattr_count <= xattrs - e.xattr_first);

		for (uint32_t k = 0; k < e.chunk_count; k++) {
			struct im_chunk c;

			im_layer_index_chunk(idx, e.chunk_first + k, &c);
			REQUIRE(c.file_offset == covered);
			REQUIRE(c.length >= 1);
			REQUIRE(c.blob_offset <= blob_size);
			REQUIRE(c.blob_length <= blob_size - c.blob_offset);
			covered += c.length;
		}
		REQUIRE(e.type != IM_ENTRY_REG || covered == e.size);

		for (uint32_t k = 0; k < e.xattr_count; k++) {
			struct im_xattr x;

			im_layer_index_xattr(idx, e.xattr_first + k, &x);
			touch(x.name, x.name_len + 1);
			touch(x.value, x.value_len);
			REQUIRE(strlen(x.name) == x.name_len);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct im_layer_index *idx = NULL;
	uint8_t *copy;

	im_log_set_level(LOG_CRIT);

	/* An exactly sized copy, so that ASan catches a read one past it. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (size >= IDX_HEADER_SIZE)
		idx_put32(copy + IDX_H_CRC, im_layer_index_checksum(copy, size));

	if (im_layer_index_open_buffer(copy, size, &idx) == 0) {
		walk(idx);
		im_layer_index_free(idx);
	}
	free(copy);
	return 0;
}
