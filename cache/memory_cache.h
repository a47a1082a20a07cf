/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded in-memory LRU of verified chunks, consulted before the chunk
 * store so that small repeated reads of one chunk do not read and hash
 * its file each time. Keyed like the flight table, by SHA-256 and length.
 *
 * Thread safe. The mutex is held only for table and list updates: bytes
 * are copied in and out with it released, and an entry evicted while a
 * reader copies from it is freed by the last reader.
 */
#ifndef IM_MEMORY_CACHE_H
#define IM_MEMORY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

struct im_memory_cache;

/* max_bytes counts payload bytes only. Return: 0 or -ENOMEM. */
int im_memory_cache_new(uint64_t max_bytes, struct im_memory_cache **ret);
void im_memory_cache_free(struct im_memory_cache *mc);

/* Copy the chunk into buf (len bytes) and mark it used. Return: true on a hit. */
bool im_memory_cache_get(struct im_memory_cache *mc, const struct im_digest *digest,
			 void *buf, size_t len);

/* Add a verified chunk, evicting the least recently used ones to make
 * room. Chunks larger than a quarter of the cache are not kept, so one
 * large chunk cannot flush everything else. */
void im_memory_cache_put(struct im_memory_cache *mc, const struct im_digest *digest,
			 const void *buf, size_t len);

/* Payload bytes held now. */
uint64_t im_memory_cache_bytes(struct im_memory_cache *mc);

#endif
