/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for im_toc_compile(). Beyond not crashing, it checks
 * the contract between the TOC compiler and the index: a TOC that compiles
 * must write an index that opens, with cleaned paths and chunk lists that
 * cover each file inside the blob. Either failing is an abort.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "common/log.h"
#include "index/layer_index.h"
#include "index/path_internal.h"
#include "index/toc.h"

/* Seeds in tests/fuzz/corpus/toc use offsets below this blob size. */
#define FUZZ_BLOB_SIZE (1u << 20)

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static void check_index(const struct im_layer_index *idx)
{
	uint32_t chunks = im_layer_index_chunk_count(idx);

	REQUIRE(im_layer_index_blob_size(idx) == FUZZ_BLOB_SIZE);
	for (uint32_t i = 0; i < im_layer_index_entry_count(idx); i++) {
		struct im_entry e;
		uint64_t covered = 0;

		im_layer_index_entry(idx, i, &e);
		REQUIRE(e.path_len == 0 ? e.type == IM_ENTRY_OPAQUE
					: im_path_is_clean(e.path, e.path_len));
		REQUIRE(e.type != IM_ENTRY_HARDLINK || im_path_is_clean(e.link, e.link_len));
		REQUIRE(e.chunk_first <= chunks);
		REQUIRE(e.chunk_count <= chunks - e.chunk_first);

		for (uint32_t k = 0; k < e.chunk_count; k++) {
			struct im_chunk c;

			im_layer_index_chunk(idx, e.chunk_first + k, &c);
			REQUIRE(c.file_offset == covered);
			REQUIRE(c.blob_offset + c.blob_length <= FUZZ_BLOB_SIZE);
			covered += c.length;
		}
		REQUIRE(covered == e.size);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct im_digest toc_digest;
	struct im_index_builder *b = NULL;
	struct im_layer_index *idx = NULL;
	void *image = NULL;
	size_t image_len = 0;
	int r;

	im_log_set_level(LOG_CRIT);
	memset(&toc_digest, 0x5a, sizeof(toc_digest));

	if (im_toc_compile(data, size, &toc_digest, FUZZ_BLOB_SIZE, &b) < 0)
		return 0;

	r = im_index_builder_write_buffer(b, &image, &image_len);
	im_index_builder_free(b);
	if (r == -ENOMEM)
		return 0;
	REQUIRE(r == 0);

	REQUIRE(im_layer_index_open_buffer(image, image_len, &idx) == 0);
	check_index(idx);
	im_layer_index_free(idx);
	free(image);
	return 0;
}
