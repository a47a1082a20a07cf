/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json-c helpers private to registry/: strict parsing of one JSON object
 * from untrusted bytes and typed member access. Every failure is logged
 * with the member name and returns -EBADMSG (-ENOTSUP for schema 1 and for
 * digests that are not sha256), so callers only pass the code on.
 */
#ifndef IM_REGISTRY_JSON_H
#define IM_REGISTRY_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "common/digest.h"

#define IM_DOCKER_SCHEMA1_MESSAGE \
	"docker schema 1 manifests are not supported; push the image again with a current client"

/* Compare a media type, ignoring parameters such as "; charset=utf-8". */
bool im_media_type_matches(const char *media_type, const char *expected);
/* OCI image manifest or Docker schema 2 manifest. */
bool im_media_type_is_manifest(const char *media_type);

/*
 * Parse exactly len bytes as one JSON object. Trailing bytes other than
 * white space are an error. label names the document in messages
 * ("manifest", "token response"). The caller owns *ret (json_object_put).
 */
int im_json_parse_object(const void *data, size_t len, const char *label,
			 struct json_object **ret);

/* Optional string member: *ret is NULL when absent or null. The string is
 * owned by obj. Present but not a NUL-free string -> -EBADMSG. */
int im_json_get_string(struct json_object *obj, const char *key, const char **ret);
int im_json_get_required_string(struct json_object *obj, const char *key, const char **ret);

/* Check that "schemaVersion" is 2. Version 1 is Docker schema 1 (-ENOTSUP). */
int im_json_check_schema_version(struct json_object *obj);

/* Parse the "digest" member as a sha256 digest. */
int im_json_get_digest(struct json_object *obj, struct im_digest *ret);

#endif
