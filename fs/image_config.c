/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fetching and reading the image config, which is untrusted JSON. Its
 * size is checked against the manifest and capped before the request. The
 * registry client verifies the bytes against the config digest, and
 * json-c parses them with a nesting limit. A field of the wrong type makes
 * the config invalid instead of being guessed at.
 */
#include "fs/image_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/log.h"
#include "common/util.h"

/* Maximum nesting accepted in a config. The fields read are at depth 3. */
#define CONFIG_MAX_DEPTH 64

static void clear_string(struct im_config_string *s)
{
	free(s->text);
	s->text = NULL;
	s->len = 0;
}

static void clear_list(struct im_config_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		clear_string(&l->items[i]);
	free(l->items);
	*l = (struct im_config_list) { 0 };
}

void im_image_config_clear(struct im_image_config *c)
{
	clear_string(&c->os);
	clear_string(&c->architecture);
	clear_string(&c->variant);
	clear_string(&c->user);
	clear_string(&c->working_dir);
	clear_list(&c->entrypoint);
	clear_list(&c->cmd);
	clear_list(&c->env);
}

static int copy_string(struct json_object *value, struct im_config_string *out)
{
	int len = json_object_get_string_len(value);
	const char *text = json_object_get_string(value);

	out->text = malloc((size_t)len + 1);
	if (!out->text)
		return -ENOMEM;
	memcpy(out->text, text, (size_t)len);
	out->text[len] = '\0';
	out->len = (size_t)len;
	return 0;
}

/* Read optional string field key of obj (absent and null leave out empty). */
static int read_string(struct json_object *obj, const char *key, struct im_config_string *out)
{
	struct json_object *value;

	if (!obj || !json_object_object_get_ex(obj, key, &value) || !value)
		return 0;
	if (!json_object_is_type(value, json_type_string)) {
		im_err("image config field \"%s\" is not a string", key);
		return -EINVAL;
	}
	return copy_string(value, out);
}

/* Read optional field key of obj, an array of strings. */
static int read_list(struct json_object *obj, const char *key, struct im_config_list *out)
{
	struct json_object *value;
	size_t n;

	if (!obj || !json_object_object_get_ex(obj, key, &value) || !value)
		return 0;
	if (!json_object_is_type(value, json_type_array)) {
		im_err("image config field \"%s\" is not an array", key);
		return -EINVAL;
	}

	n = json_object_array_length(value);
	out->present = true;
	out->items = calloc(n ? n : 1, sizeof(*out->items));
	if (!out->items)
		return -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		struct json_object *item = json_object_array_get_idx(value, i);
		int r;

		if (!json_object_is_type(item, json_type_string)) {
			im_err("image config field \"%s\" has an item %zu that is not a string",
			       key, i);
			return -EINVAL;
		}
		r = copy_string(item, &out->items[i]);
		if (r < 0)
			return r;
		out->count++;
	}
	return 0;
}

static int read_fields(struct json_object *root, struct im_image_config *c)
{
	struct json_object *run = NULL;
	int r;

	if (json_object_object_get_ex(root, "config", &run) && run &&
	    !json_object_is_type(run, json_type_object)) {
		im_err("image config field \"config\" is not an object");
		return -EINVAL;
	}

	r = read_string(root, "os", &c->os);
	if (r == 0)
		r = read_string(root, "architecture", &c->architecture);
	if (r == 0)
		r = read_string(root, "variant", &c->variant);
	if (r == 0)
		r = read_string(run, "User", &c->user);
	if (r == 0)
		r = read_string(run, "WorkingDir", &c->working_dir);
	if (r == 0)
		r = read_list(run, "Entrypoint", &c->entrypoint);
	if (r == 0)
		r = read_list(run, "Cmd", &c->cmd);
	if (r == 0)
		r = read_list(run, "Env", &c->env);
	return r;
}

/* True when only JSON whitespace follows the parsed value. */
static bool only_space_after(const uint8_t *data, size_t len, size_t end)
{
	for (size_t i = end; i < len; i++) {
		if (!strchr(" \t\r\n", data[i]) || data[i] == '\0')
			return false;
	}
	return true;
}

static int parse(const uint8_t *data, size_t len, struct im_image_config *c)
{
	enum json_tokener_error error;
	struct json_tokener *tok;
	struct json_object *root;
	int r = -EINVAL;

	tok = json_tokener_new_ex(CONFIG_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, (const char *)data, (int)len);
	error = json_tokener_get_error(tok);

	if (error == json_tokener_continue)
		im_err("image config is not valid JSON: it ends early");
	else if (!root || error != json_tokener_success)
		im_err("image config is not valid JSON: %s", json_tokener_error_desc(error));
	else if (!only_space_after(data, len, json_tokener_get_parse_end(tok)))
		im_err("image config has bytes after its JSON object");
	else if (!json_object_is_type(root, json_type_object))
		im_err("image config is not a JSON object");
	else
		r = read_fields(root, c);

	json_object_put(root);
	json_tokener_free(tok);
	return r;
}

int im_image_config_fetch(const struct im_image *img, struct im_image_config *ret)
{
	const struct im_descriptor *desc = &img->manifest.config;
	char digest[IM_DIGEST_STRING_LEN];
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	*ret = (struct im_image_config) { 0 };
	im_digest_format(&desc->digest, digest);
	if (desc->size > IM_IMAGE_CONFIG_MAX_LENGTH) {
		im_err("config %s of %s is %llu bytes, more than the maximum of %u",
		       digest, img->display_name, (unsigned long long)desc->size,
		       IM_IMAGE_CONFIG_MAX_LENGTH);
		return -EFBIG;
	}

	r = im_registry_get_blob_buffer(img->registry, img->ref.repository, &desc->digest,
					IM_IMAGE_CONFIG_MAX_LENGTH, &data, &len);
	if (r < 0)
		return im_log_errno(r, "fetching config %s of %s failed", digest, img->display_name);

	r = parse(data, len, ret);
	if (r < 0) {
		im_err("config %s of %s cannot be read", digest, img->display_name);
		im_image_config_clear(ret);
	}
	return r;
}
