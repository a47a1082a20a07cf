/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Serialization of an OCI image manifest with json-c, for `imgmount
 * convert`, which pushes the manifest of the converted image. The output
 * always carries the OCI manifest media type; the descriptors keep the
 * media types the caller set.
 */
#include "registry/manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* Add key to obj, taking the reference to value even on failure. */
static int add(struct json_object *obj, const char *key, struct json_object *value)
{
	if (!value)
		return -ENOMEM;
	if (json_object_object_add(obj, key, value) < 0) {
		json_object_put(value);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *annotations_to_json(const struct im_descriptor *d)
{
	struct json_object *obj = json_object_new_object();

	if (!obj)
		return NULL;
	for (size_t i = 0; i < d->n_annotations; i++) {
		if (add(obj, d->annotations[i].key,
			json_object_new_string(d->annotations[i].value)) < 0) {
			json_object_put(obj);
			return NULL;
		}
	}
	return obj;
}

static int descriptor_to_json(const struct im_descriptor *d, struct json_object **ret)
{
	char digest[IM_DIGEST_STRING_LEN];
	struct json_object *obj;
	int r;

	if (!d->media_type || d->size > INT64_MAX)
		return -EINVAL;

	obj = json_object_new_object();
	if (!obj)
		return -ENOMEM;

	im_digest_format(&d->digest, digest);
	r = add(obj, "mediaType", json_object_new_string(d->media_type));
	if (r == 0)
		r = add(obj, "digest", json_object_new_string(digest));
	if (r == 0)
		r = add(obj, "size", json_object_new_int64((int64_t)d->size));
	if (r == 0 && d->n_annotations > 0)
		r = add(obj, "annotations", annotations_to_json(d));

	if (r < 0) {
		json_object_put(obj);
		return r;
	}
	*ret = obj;
	return 0;
}

static int layers_to_json(const struct im_manifest *m, struct json_object **ret)
{
	struct json_object *layers = json_object_new_array_ext((int)m->n_layers);

	if (!layers)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_layers; i++) {
		struct json_object *layer;
		int r = descriptor_to_json(&m->layers[i], &layer);

		if (r == 0 && json_object_array_add(layers, layer) < 0) {
			json_object_put(layer);
			r = -ENOMEM;
		}
		if (r < 0) {
			json_object_put(layers);
			return r;
		}
	}
	*ret = layers;
	return 0;
}

static int manifest_to_object(const struct im_manifest *m, struct json_object *obj)
{
	struct json_object *config, *layers;
	int r;

	r = add(obj, "schemaVersion", json_object_new_int(2));
	if (r < 0)
		return r;
	r = add(obj, "mediaType", json_object_new_string(IM_MEDIA_OCI_MANIFEST));
	if (r < 0)
		return r;

	r = descriptor_to_json(&m->config, &config);
	if (r < 0)
		return r;
	r = add(obj, "config", config);
	if (r < 0)
		return r;

	r = layers_to_json(m, &layers);
	if (r < 0)
		return r;
	return add(obj, "layers", layers);
}

int im_manifest_to_json(const struct im_manifest *m, char **ret, size_t *ret_len)
{
	struct json_object *obj;
	const char *text;
	size_t len;
	int r;

	if (!m || !ret || m->n_layers > IM_MANIFEST_MAX_LAYERS)
		return -EINVAL;

	obj = json_object_new_object();
	if (!obj)
		return -ENOMEM;

	r = manifest_to_object(m, obj);
	if (r < 0)
		goto out;

	text = json_object_to_json_string_length(obj,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!text) {
		r = -ENOMEM;
		goto out;
	}

	*ret = strndup(text, len);
	if (!*ret) {
		r = -ENOMEM;
		goto out;
	}
	if (ret_len)
		*ret_len = len;
out:
	json_object_put(obj);
	return r;
}
