/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zstd decompression of one chunk from its compressed range in a layer
 * blob, with a pool of reusable decompression contexts.
 *
 * Internal to cache/. Thread safety: all functions may be called
 * concurrently on one pool.
 */
#ifndef IM_CHUNK_DECOMPRESS_H
#define IM_CHUNK_DECOMPRESS_H

#include <stddef.h>

struct im_dctx_pool;

int im_dctx_pool_new(struct im_dctx_pool **ret);
void im_dctx_pool_free(struct im_dctx_pool *p);

/*
 * Decompress src into exactly len bytes at dst. src may hold several zstd
 * frames (skippable frames included) and may end with bytes of a following
 * frame: decoding stops once len bytes came out. src is untrusted.
 * Return: 0; -EBADMSG with *ret_reason set (a static string) when the data
 * is invalid or yields fewer than len bytes; or -ENOMEM.
 */
int im_chunk_decompress(struct im_dctx_pool *p, const void *src, size_t src_len,
			void *dst, size_t len, const char **ret_reason);

#endif
