/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image manifests and indexes (OCI and Docker schema 2), parsed with json-c
 * from untrusted bytes that the caller has already checked against their
 * digest. Docker schema 1 is rejected.
 */
#ifndef IM_MANIFEST_H
#define IM_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

#define IM_MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define IM_MEDIA_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define IM_MEDIA_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define IM_MEDIA_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define IM_MEDIA_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define IM_MEDIA_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define IM_MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define IM_MEDIA_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define IM_MEDIA_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define IM_MEDIA_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

#define IM_MANIFEST_MAX_LAYERS 1024

struct im_annotation {
	char *key;
	char *value;
};

struct im_descriptor {
	char *media_type;
	struct im_digest digest;
	uint64_t size;
	struct im_annotation *annotations;
	size_t n_annotations;
};

struct im_manifest {
	char *media_type;
	struct im_descriptor config;
	struct im_descriptor *layers;
	size_t n_layers;
};

enum im_layer_compression {
	IM_COMPRESSION_UNKNOWN = 0,
	IM_COMPRESSION_NONE,
	IM_COMPRESSION_GZIP,
	IM_COMPRESSION_ZSTD,
};

/* True when media_type names an index or a manifest list. */
bool im_media_type_is_index(const char *media_type);

/*
 * Parse an image manifest. media_type is the Content-Type the registry sent
 * (may be NULL; the "mediaType" field is used then).
 * Return: 0, or -EBADMSG / -ENOTSUP (schema 1, unknown type) with a logged
 * reason.
 */
int im_manifest_parse(const void *json, size_t len, const char *media_type,
		      struct im_manifest *ret);
void im_manifest_clear(struct im_manifest *m);

/*
 * Pick the manifest for os/arch[/variant] from an index or manifest list.
 * variant may be NULL. Return: 0, -ENOENT (no match; the platforms present
 * are logged), -EBADMSG.
 */
int im_index_select(const void *json, size_t len, const char *os,
		    const char *arch, const char *variant,
		    struct im_digest *ret);

/* Value of annotation key, or NULL. */
const char *im_descriptor_annotation(const struct im_descriptor *d, const char *key);

enum im_layer_compression im_layer_media_compression(const char *media_type);

/* Serialize an OCI image manifest (schemaVersion 2) into a malloc'd buffer. */
int im_manifest_to_json(const struct im_manifest *m, char **ret, size_t *ret_len);

#endif
