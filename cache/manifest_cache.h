/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Manifests and image indexes kept in the cache directory, keyed by their
 * digest. Mounting an image by digest needs no registry once it has been
 * mounted before, because the manifest comes from here and the compiled
 * indexes and chunks from the chunk store.
 *
 * A manifest is content addressed, so a stored copy can never be stale;
 * it can only be damaged, and every read checks its SHA-256 against the
 * name. A tag is never looked up here, because tags move.
 *
 * File: CACHE/index/HEX.manifest, holding "imgmount-manifest 1\n", the
 * media type and "\n", then the manifest bytes exactly as served.
 */
#ifndef IM_MANIFEST_CACHE_H
#define IM_MANIFEST_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cache/chunk_store.h"
#include "common/digest.h"

/*
 * Read the manifest with this digest into malloc'd *body (*len bytes) and
 * its media type into malloc'd *media_type.
 * Return: 0; -ENOENT when absent, or when damaged (the file is then removed
 * and the damage logged); or -errno.
 */
int im_manifest_cache_get(const struct im_chunk_store *s, const struct im_digest *digest,
			  uint8_t **body, size_t *len, char **media_type);

/*
 * Store a manifest whose digest the caller has verified. An existing copy is
 * replaced atomically. Return: 0 or -errno; callers go on without the copy.
 */
int im_manifest_cache_put(const struct im_chunk_store *s, const struct im_digest *digest,
			  const uint8_t *body, size_t len, const char *media_type);

#endif
