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
 *   index/HEX.manifest    manifests, keyed by digest (manifest_cache.h)
 *   tmp/                  files being written
 *   locks/chunks          per-chunk fetch locks, one byte each (chunk_lock.c)
 *   pins/                 indexes in use by running daemons (cache_pins.h)
 *   lock                  flock(2) held by the one process deleting files
 *
 * Thread safety: all functions may be called concurrently.
 */
#ifndef IM_CHUNK_STORE_H
#define IM_CHUNK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/*
 * Keep the cache at most max_bytes on disk by evicting least recently used
 * files from then on (cache/cache_limit.h). Call once, before the first
 * im_chunk_store_put(). Return: 0 or -errno.
 */
int im_chunk_store_set_limit(struct im_chunk_store *s, uint64_t max_bytes);

/*
 * Take the cross-process fetch lock of one chunk (a byte lock in
 * locks/chunks), so that daemons sharing the cache fetch a chunk once. With
 * wait false, return -EWOULDBLOCK when another process holds it.
 * Return: a lock fd for im_chunk_store_unlock_chunk(), or -errno.
 */
int im_chunk_store_lock_chunk(struct im_chunk_store *s, const struct im_digest *digest,
			      bool wait);
/* Release the lock. Call after the chunk was stored (or its fetch failed). */
void im_chunk_store_unlock_chunk(struct im_chunk_store *s, const struct im_digest *digest,
				 int lock_fd);

/*
 * Check the chunk file open at fd completely: header, XXH3 and the SHA-256
 * of the payload against digest (for `cache verify`; reads use only the
 * XXH3 check). Return: 0; -EBADMSG with *reason set; or -errno.
 */
int im_chunk_file_verify(int fd, const struct im_digest *digest, const char **reason);

#endif
