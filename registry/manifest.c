/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI image manifests and indexes, and their Docker schema 2 twins, parsed
 * with json-c. The bytes come from a registry, so every field is
 * type-checked and every count is bounded before allocation. Strings with
 * embedded NUL bytes are rejected, so that a later strcmp compares the same
 * value that the digest covered. Docker schema 1 manifests are rejected.
 */
#include "registry/manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "registry/json.h"

#define DESCRIPTOR_MAX_ANNOTATIONS 256

#define MEDIA_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MEDIA_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

bool im_media_type_matches(const char *media_type, const char *expected)
{
	size_t n = strlen(expected);

	if (!media_type || strncmp(media_type, expected, n) != 0)
		return false;
	return media_type[n] == '\0' || media_type[n] == ';' || media_type[n] == ' ';
}

bool im_media_type_is_index(const char *media_type)
{
	return im_media_type_matches(media_type, IM_MEDIA_OCI_INDEX) ||
	       im_media_type_matches(media_type, IM_MEDIA_DOCKER_LIST);
}

bool im_media_type_is_manifest(const char *media_type)
{
	return im_media_type_matches(media_type, IM_MEDIA_OCI_MANIFEST) ||
	       im_media_type_matches(media_type, IM_MEDIA_DOCKER_MANIFEST);
}

static bool media_type_is_schema1(const char *media_type)
{
	return im_media_type_matches(media_type, MEDIA_DOCKER_SCHEMA1) ||
	       im_media_type_matches(media_type, MEDIA_DOCKER_SCHEMA1_SIGNED);
}

static int parse_size_field(struct json_object *obj, uint64_t *ret)
{
	struct json_object *value;
	int64_t size;

	if (!json_object_object_get_ex(obj, "size", &value)) {
		im_err("invalid manifest: descriptor without \"size\"");
		return -EBADMSG;
	}
	if (!json_object_is_type(value, json_type_int)) {
		im_err("invalid manifest: descriptor \"size\" is not an integer");
		return -EBADMSG;
	}

	/* json-c clamps values beyond int64 to INT64_MAX; no blob is that big. */
	size = json_object_get_int64(value);
	if (size < 0 || size == INT64_MAX) {
		im_err("invalid manifest: descriptor size %" PRId64 " is out of range", size);
		return -EBADMSG;
	}
	*ret = (uint64_t)size;
	return 0;
}

static int parse_annotations(struct json_object *obj, struct im_descriptor *d)
{
	struct json_object *annotations;
	size_t n, i = 0;

	if (!json_object_object_get_ex(obj, "annotations", &annotations) ||
	    json_object_is_type(annotations, json_type_null))
		return 0;
	if (!json_object_is_type(annotations, json_type_object)) {
		im_err("invalid manifest: \"annotations\" is not an object");
		return -EBADMSG;
	}

	n = (size_t)json_object_object_length(annotations);
	if (n > DESCRIPTOR_MAX_ANNOTATIONS) {
		im_err("invalid manifest: %zu annotations on one descriptor, the limit is %d",
		       n, DESCRIPTOR_MAX_ANNOTATIONS);
		return -EBADMSG;
	}
	if (n == 0)
		return 0;

	d->annotations = calloc(n, sizeof(*d->annotations));
	if (!d->annotations)
		return -ENOMEM;

	json_object_object_foreach(annotations, key, value) {
		const char *s;

		if (!json_object_is_type(value, json_type_string)) {
			im_err("invalid manifest: annotation \"%.80s\" is not a string", key);
			return -EBADMSG;
		}
		s = json_object_get_string(value);
		if (strlen(s) != (size_t)json_object_get_string_len(value)) {
			im_err("invalid manifest: annotation \"%.80s\" contains a NUL character", key);
			return -EBADMSG;
		}

		d->annotations[i].key = strdup(key);
		d->annotations[i].value = strdup(s);
		d->n_annotations = ++i;
		if (!d->annotations[i - 1].key || !d->annotations[i - 1].value)
			return -ENOMEM;
	}
	return 0;
}

static void descriptor_clear(struct im_descriptor *d)
{
	for (size_t i = 0; i < d->n_annotations; i++) {
		free(d->annotations[i].key);
		free(d->annotations[i].value);
	}
	free(d->annotations);
	free(d->media_type);
	*d = (struct im_descriptor){};
}

/* Parse a descriptor object; d is cleared by the caller on failure. */
static int parse_descriptor(struct json_object *obj, struct im_descriptor *d)
{
	const char *media_type;
	int r;

	if (!json_object_is_type(obj, json_type_object)) {
		im_err("invalid manifest: a descriptor is not an object");
		return -EBADMSG;
	}

	r = im_json_get_required_string(obj, "mediaType", &media_type);
	if (r < 0)
		return r;
	d->media_type = strdup(media_type);
	if (!d->media_type)
		return -ENOMEM;

	r = im_json_get_digest(obj, &d->digest);
	if (r < 0)
		return r;

	r = parse_size_field(obj, &d->size);
	if (r < 0)
		return r;

	return parse_annotations(obj, d);
}

static int parse_layers(struct json_object *obj, struct im_manifest *m)
{
	struct json_object *layers;
	size_t n;

	if (!json_object_object_get_ex(obj, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array)) {
		im_err("invalid manifest: missing \"layers\" array");
		return -EBADMSG;
	}

	n = json_object_array_length(layers);
	if (n > IM_MANIFEST_MAX_LAYERS) {
		im_err("image has %zu layers, the limit is %d", n, IM_MANIFEST_MAX_LAYERS);
		return -EBADMSG;
	}
	if (n == 0)
		return 0;

	m->layers = calloc(n, sizeof(*m->layers));
	if (!m->layers)
		return -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		int r;

		m->n_layers = i + 1;
		r = parse_descriptor(json_object_array_get_idx(layers, i), &m->layers[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_config(struct json_object *obj, struct im_manifest *m)
{
	struct json_object *config;

	if (!json_object_object_get_ex(obj, "config", &config)) {
		im_err("invalid manifest: missing \"config\"");
		return -EBADMSG;
	}
	return parse_descriptor(config, &m->config);
}

/*
 * Decide the manifest type from the Content-Type and the "mediaType" member.
 * A generic Content-Type (some registries send application/json) defers to
 * the member; when both name a type they must agree.
 */
static int resolve_media_type(const char *content_type, const char *field, const char **ret)
{
	bool header_known = im_media_type_is_manifest(content_type) ||
			    im_media_type_is_index(content_type) ||
			    media_type_is_schema1(content_type);

	if (header_known && field && !im_media_type_matches(content_type, field)) {
		im_err("invalid manifest: mediaType \"%.100s\" contradicts Content-Type \"%.100s\"",
		       field, content_type);
		return -EBADMSG;
	}

	*ret = header_known ? content_type : field;
	if (!*ret) {
		/* The OCI image spec makes mediaType optional in a manifest. */
		*ret = IM_MEDIA_OCI_MANIFEST;
	}

	if (im_media_type_is_index(*ret)) {
		im_err("manifest is an image index (\"%s\"): select a platform first", *ret);
		return -ENOTSUP;
	}
	if (!im_media_type_is_manifest(*ret)) {
		im_err("unsupported manifest media type \"%.100s\"", *ret);
		return -ENOTSUP;
	}
	return 0;
}

static int manifest_from_object(struct json_object *obj, const char *content_type,
				struct im_manifest *m)
{
	const char *field, *media_type;
	int r;

	r = im_json_get_string(obj, "mediaType", &field);
	if (r < 0)
		return r;
	if (media_type_is_schema1(content_type) || media_type_is_schema1(field)) {
		im_err("%s", IM_DOCKER_SCHEMA1_MESSAGE);
		return -ENOTSUP;
	}

	r = im_json_check_schema_version(obj);
	if (r < 0)
		return r;

	r = resolve_media_type(content_type, field, &media_type);
	if (r < 0)
		return r;
	m->media_type = strndup(media_type, strcspn(media_type, "; "));
	if (!m->media_type)
		return -ENOMEM;

	r = parse_config(obj, m);
	if (r < 0)
		return r;

	return parse_layers(obj, m);
}

int im_manifest_parse(const void *json, size_t len, const char *media_type,
		      struct im_manifest *ret)
{
	struct json_object *obj = NULL;
	struct im_manifest m = {};
	int r;

	if (!json || !ret)
		return -EINVAL;

	r = im_json_parse_object(json, len, "manifest", &obj);
	if (r < 0)
		return r;

	r = manifest_from_object(obj, media_type, &m);
	json_object_put(obj);
	if (r < 0) {
		im_manifest_clear(&m);
		return r;
	}

	*ret = m;
	return 0;
}

void im_manifest_clear(struct im_manifest *m)
{
	if (!m)
		return;
	descriptor_clear(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		descriptor_clear(&m->layers[i]);
	free(m->layers);
	free(m->media_type);
	*m = (struct im_manifest){};
}

const char *im_descriptor_annotation(const struct im_descriptor *d, const char *key)
{
	for (size_t i = 0; i < d->n_annotations; i++)
		if (strcmp(d->annotations[i].key, key) == 0)
			return d->annotations[i].value;
	return NULL;
}

enum im_layer_compression im_layer_media_compression(const char *media_type)
{
	static const struct {
		const char *media_type;
		enum im_layer_compression compression;
	} table[] = {
		{ IM_MEDIA_OCI_LAYER, IM_COMPRESSION_NONE },
		{ IM_MEDIA_OCI_LAYER_GZIP, IM_COMPRESSION_GZIP },
		{ IM_MEDIA_OCI_LAYER_ZSTD, IM_COMPRESSION_ZSTD },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar", IM_COMPRESSION_NONE },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", IM_COMPRESSION_GZIP },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", IM_COMPRESSION_ZSTD },
		{ IM_MEDIA_DOCKER_LAYER_GZIP, IM_COMPRESSION_GZIP },
		{ "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", IM_COMPRESSION_GZIP },
		{ "application/vnd.docker.image.rootfs.diff.tar.zstd", IM_COMPRESSION_ZSTD },
	};

	for (size_t i = 0; i < IM_ARRAY_SIZE(table); i++)
		if (im_media_type_matches(media_type, table[i].media_type))
			return table[i].compression;
	return IM_COMPRESSION_UNKNOWN;
}
