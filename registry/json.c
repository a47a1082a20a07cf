/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Strict json-c access for registry documents. Strings with an embedded NUL
 * are rejected so that later C string comparisons see the same value that
 * the digest of the document covered.
 */
#include "registry/json.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common/log.h"

/* A manifest nests 4 levels deep (layers[].annotations.key); 16 is ample. */
#define JSON_MAX_DEPTH 16

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int im_json_parse_object(const void *data, size_t len, const char *label,
			 struct json_object **ret)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error error;
	size_t end;

	if (len > INT32_MAX) {
		im_err("invalid %s: %zu bytes is too large to parse", label, len);
		return -EBADMSG;
	}

	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;

	obj = json_tokener_parse_ex(tok, data, (int)len);
	error = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (!obj || error != json_tokener_success) {
		/* json_tokener_continue means the document ended early. */
		im_err("invalid %s JSON: %s", label,
		       error == json_tokener_continue ? "unexpected end of data"
						      : json_tokener_error_desc(error));
		json_object_put(obj);
		return -EBADMSG;
	}

	for (; end < len; end++) {
		if (!is_json_space(((const char *)data)[end])) {
			im_err("invalid %s JSON: data after the end of the document", label);
			json_object_put(obj);
			return -EBADMSG;
		}
	}

	if (!json_object_is_type(obj, json_type_object)) {
		im_err("invalid %s JSON: the document is not an object", label);
		json_object_put(obj);
		return -EBADMSG;
	}
	*ret = obj;
	return 0;
}

int im_json_get_string(struct json_object *obj, const char *key, const char **ret)
{
	struct json_object *value;
	const char *s;

	*ret = NULL;
	if (!json_object_object_get_ex(obj, key, &value) ||
	    json_object_is_type(value, json_type_null))
		return 0;
	if (!json_object_is_type(value, json_type_string)) {
		im_err("invalid JSON member \"%s\": not a string", key);
		return -EBADMSG;
	}

	s = json_object_get_string(value);
	if (strlen(s) != (size_t)json_object_get_string_len(value)) {
		im_err("invalid JSON member \"%s\": contains a NUL character", key);
		return -EBADMSG;
	}
	*ret = s;
	return 0;
}

int im_json_get_required_string(struct json_object *obj, const char *key, const char **ret)
{
	int r = im_json_get_string(obj, key, ret);

	if (r < 0)
		return r;
	if (!*ret) {
		im_err("invalid registry document: missing \"%s\"", key);
		return -EBADMSG;
	}
	return 0;
}

int im_json_check_schema_version(struct json_object *obj)
{
	struct json_object *value;
	int64_t version;

	if (!json_object_object_get_ex(obj, "schemaVersion", &value)) {
		im_err("invalid manifest: missing \"schemaVersion\"");
		return -EBADMSG;
	}
	if (!json_object_is_type(value, json_type_int)) {
		im_err("invalid manifest: \"schemaVersion\" is not an integer");
		return -EBADMSG;
	}

	version = json_object_get_int64(value);
	if (version == 1) {
		im_err("%s", IM_DOCKER_SCHEMA1_MESSAGE);
		return -ENOTSUP;
	}
	if (version != 2) {
		im_err("unsupported manifest schemaVersion %" PRId64 ": only version 2 is supported",
		       version);
		return -ENOTSUP;
	}
	return 0;
}

int im_json_get_digest(struct json_object *obj, struct im_digest *ret)
{
	const char *text;
	int r = im_json_get_required_string(obj, "digest", &text);

	if (r < 0)
		return r;
	if (im_digest_parse(text, ret) == 0)
		return 0;

	if (strncmp(text, "sha256:", 7) != 0) {
		im_err("unsupported digest \"%.80s\" in manifest: only sha256 is supported", text);
		return -ENOTSUP;
	}
	im_err("invalid digest \"%.80s\" in manifest", text);
	return -EBADMSG;
}
