/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's chunk cache on disk, shared by every mount and process.
 *
 * Chunks are keyed by the SHA-256 of their uncompressed bytes, so a chunk
 * that two layers or images share is stored once. A chunk file appears under
 * its name only when complete (written to tmp/, then renamed). Each file
 * carries an xxHash of its payload that every read checks, so a file damaged
 * on disk is dropped and reported as a miss instead of being served.
 *
 * Layout under the cache directory:
 *   chunks/AB/ABCDEF...   one file per chunk (AB = first two hex digits)
 *   index/HEX.idx         compiled layer indexes, keyed by TOC digest
 *   tmp/                  files being written
 *
 * Thread safety: all functions may be called concurrently.
 */
#ifndef IM_CHUNK_STORE_H
#define IM_CHUNK_STORE_H

#include <stddef.h>

#include "common/digest.h"

struct im_chunk_store;

/* Open (and create) the cache at dir. Return: 0 or -errno. */
int im_chunk_store_open(const char *dir, struct im_chunk_store **ret);
void im_chunk_store_free(struct im_chunk_store *s);

/*
 * Read the chunk with this digest and exactly len payload bytes into buf.
 * Return: 0; -ENOENT when absent, or when present but damaged (the file is
 * then removed, logged, and counted in im_stats.cache_corrupt); or -errno.
 */
int im_chunk_store_get(struct im_chunk_store *s, const struct im_digest *digest,
		       void *buf, size_t len);

/*
 * Store a chunk whose SHA-256 the caller has verified. An existing entry is
 * left alone. Return: 0 or -errno (ENOSPC included; callers serve the data
 * anyway).
 */
int im_chunk_store_put(struct im_chunk_store *s, const struct im_digest *digest,
		       const void *buf, size_t len);

/* Path of the compiled index for toc_digest, into out (PATH_MAX bytes). */
void im_chunk_store_index_path(const struct im_chunk_store *s,
			       const struct im_digest *toc_digest, char *out);

const char *im_chunk_store_dir(const struct im_chunk_store *s);

#endif
