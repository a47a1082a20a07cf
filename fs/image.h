/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An image opened for lazy reading: its reference resolved to a manifest
 * digest, the manifest verified and parsed, and one compiled layer index
 * per layer, loaded from the cache or compiled from the layer's TOC.
 * Shared by `mount` and the commands that read images without mounting.
 */
#ifndef IM_IMAGE_H
#define IM_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/chunk_store.h"
#include "cache/fetcher.h"
#include "common/digest.h"
#include "index/layer_index.h"
#include "registry/manifest.h"
#include "registry/reference.h"
#include "registry/registry.h"

/* containerd's default: hosts.toml mirrors and TLS files per registry. */
#define IM_DEFAULT_CERTS_DIR "/etc/containerd/certs.d"

struct im_image_options {
	const char *cache_dir;          /* absolute path */
	const char *const *insecure_hosts; /* registries reached over plain HTTP */
	size_t n_insecure_hosts;
	const char *os;                 /* platform for image indexes */
	const char *arch;
	const char *variant;            /* may be NULL */
	const char *auth_file;          /* --authfile, or NULL for the default files */
	unsigned read_timeout_seconds;  /* deadline of one registry read; 0: default */
	const char *certs_dir;          /* certs.d directory, NULL for IM_DEFAULT_CERTS_DIR */
	const char *ca_file;            /* CA bundle for the registry, or NULL */
	/* Leave indexes[i] NULL for a layer without a zstd:chunked TOC
	 * instead of failing with -ENOTSUP (for `inspect`, which reports
	 * such layers). */
	bool allow_unindexed_layers;
};

struct im_image {
	struct im_reference ref;
	char *display_name;             /* "registry/repo@sha256:..." */
	struct im_digest manifest_digest;
	struct im_manifest manifest;
	struct im_registry *registry;
	struct im_chunk_store *store;
	struct im_layer_index **indexes; /* one per layer, bottom first; NULL only
					    with allow_unindexed_layers */
	struct im_blob_ref *blobs;       /* one per layer */
	void **index_buffers;            /* per layer: the bytes of an index kept in
					    memory because the cache could not store
					    it, or NULL */
	size_t n_layers;
};

/*
 * Resolve reference (a tag is resolved to a digest once, and the digest is
 * logged), fetch and verify the manifest, and load or compile every layer
 * index. Return: 0, or a negative errno after logging what failed and what
 * to do about it.
 */
int im_image_open(const char *reference, const struct im_image_options *opts,
		  struct im_image **ret);
void im_image_free(struct im_image *img);

/* Host architecture in OCI terms ("amd64", "arm64", ...). */
const char *im_host_arch(void);

#endif
