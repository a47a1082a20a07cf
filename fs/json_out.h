/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON output of the inspection commands, built with json-c. Names and
 * link targets from an image are arbitrary bytes, but JSON strings are
 * Unicode. So a value that is not valid UTF-8 is written twice: as a
 * string with U+FFFD in place of each invalid byte, and exactly, as hex,
 * under the key with "_hex" appended. docs/inspect-json.md describes the
 * documents.
 */
#ifndef IM_JSON_OUT_H
#define IM_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

#include "common/digest.h"
#include "index/layer_index.h"

/*
 * Add value under key, taking the reference the caller holds. A NULL
 * value (a failed json_object_new_*()) is reported, not added.
 * Return: 0 or -ENOMEM.
 */
int im_json_add(struct json_object *obj, const char *key, struct json_object *value);

/* Add a JSON null, which json-c represents as a NULL object. */
int im_json_add_null(struct json_object *obj, const char *key);

/* Add s as a string, or null when s is NULL. */
int im_json_add_string_or_null(struct json_object *obj, const char *key, const char *s);

/* A new string of s (len bytes) with U+FFFD in place of every byte that
 * is not part of valid UTF-8, or NULL when out of memory. */
struct json_object *im_json_new_bytes(const char *s, size_t len);

/* Add s (len bytes) as a string, plus key + "_hex" when s is not UTF-8. */
int im_json_add_bytes(struct json_object *obj, const char *key, const char *s, size_t len);

/* Add data (len bytes) as a string of lowercase hex digits. */
int im_json_add_hex(struct json_object *obj, const char *key, const void *data, size_t len);

/* Add "sha256:<hex>". */
int im_json_add_digest(struct json_object *obj, const char *key, const struct im_digest *d);

/*
 * Add the attributes of e shown as type (for merged entries the tree's
 * type, never HARDLINK): type, mode, mode_text, uid, gid, size, mtime
 * (RFC 3339, UTC), mtime_sec, mtime_nsec, and rdev_major and rdev_minor
 * for devices or target for symlinks.
 * Return: 0 or -ENOMEM.
 */
int im_json_add_attributes(struct json_object *obj, enum im_entry_type type,
			   const struct im_entry *e);

/* Print obj and a newline, indented when pretty. Return: 0 or -EIO. */
int im_json_print(FILE *out, struct json_object *obj, bool pretty);

/*
 * A JSON array written one element at a time, so that a listing of a
 * large image is never held in memory. The output is "[", then one
 * compact element per line, then "]".
 */
struct im_json_array_writer {
	FILE *out;
	size_t count;
};

void im_json_array_begin(struct im_json_array_writer *w, FILE *out);
/* Write element and drop the caller's reference to it.
 * Return: 0, -ENOMEM for a NULL element, or -EIO. */
int im_json_array_add(struct im_json_array_writer *w, struct json_object *element);
void im_json_array_end(struct im_json_array_writer *w);

#endif
