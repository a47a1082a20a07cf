/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON helpers over json-c. Every string value goes through json-c, which
 * does the escaping. Only the brackets and commas of a streamed array are
 * written here.
 */
#include "fs/json_out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fs/entry_text.h"

#define PRINT_FLAGS (JSON_C_TO_STRING_NOSLASHESCAPE)

int im_json_add(struct json_object *obj, const char *key, struct json_object *value)
{
	if (!value)
		return -ENOMEM;
	if (json_object_object_add(obj, key, value) < 0) {
		json_object_put(value);
		return -ENOMEM;
	}
	return 0;
}

int im_json_add_null(struct json_object *obj, const char *key)
{
	return json_object_object_add(obj, key, NULL) < 0 ? -ENOMEM : 0;
}

int im_json_add_string_or_null(struct json_object *obj, const char *key, const char *s)
{
	if (!s)
		return im_json_add_null(obj, key);
	return im_json_add(obj, key, json_object_new_string(s));
}

struct json_object *im_json_new_bytes(const char *s, size_t len)
{
	_cleanup_free_ char *text = NULL;
	size_t n = 0;

	if (len > INT32_MAX / 3)
		return NULL;
	/* Each byte becomes at most the 3 bytes of U+FFFD. */
	text = malloc(len * 3 + 1);
	if (!text)
		return NULL;

	for (size_t i = 0; i < len;) {
		size_t k = im_utf8_sequence_length(s + i, len - i);

		if (k > 0) {
			memcpy(text + n, s + i, k);
			n += k;
			i += k;
		} else {
			memcpy(text + n, "\xef\xbf\xbd", 3);
			n += 3;
			i++;
		}
	}

	return json_object_new_string_len(text, (int)n);
}

int im_json_add_hex(struct json_object *obj, const char *key, const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *bytes = data;
	_cleanup_free_ char *hex = NULL;

	if (len > INT32_MAX / 2)
		return -ENOMEM;
	hex = malloc(len * 2 + 1);
	if (!hex)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		hex[2 * i] = digits[bytes[i] >> 4];
		hex[2 * i + 1] = digits[bytes[i] & 0xf];
	}
	return im_json_add(obj, key, json_object_new_string_len(hex, (int)(len * 2)));
}

int im_json_add_bytes(struct json_object *obj, const char *key, const char *s, size_t len)
{
	char hex_key[64];
	int r;

	if (len > INT32_MAX / 3)
		return -ENOMEM;
	if (im_utf8_valid(s, len))
		return im_json_add(obj, key, json_object_new_string_len(s, (int)len));

	r = im_json_add(obj, key, im_json_new_bytes(s, len));
	if (r < 0)
		return r;
	snprintf(hex_key, sizeof(hex_key), "%s_hex", key);
	return im_json_add_hex(obj, hex_key, s, len);
}

int im_json_add_digest(struct json_object *obj, const char *key, const struct im_digest *d)
{
	char text[IM_DIGEST_STRING_LEN];

	im_digest_format(d, text);
	return im_json_add(obj, key, json_object_new_string(text));
}

static int add_mtime(struct json_object *obj, const struct im_entry *e)
{
	char text[64];
	int r;

	im_format_time(e->mtime_sec, e->mtime_nsec, true, text, sizeof(text));
	if (text[0] == '@') {
		/* Outside the years gmtime_r() handles: only the numbers. */
		r = im_json_add_null(obj, "mtime");
	} else {
		/* "2023-11-14 22:13:20.5..." becomes RFC 3339 "2023-11-14T22:13:20.5...Z". */
		text[10] = 'T';
		strcat(text, "Z");
		r = im_json_add(obj, "mtime", json_object_new_string(text));
	}
	if (r == 0)
		r = im_json_add(obj, "mtime_sec", json_object_new_int64(e->mtime_sec));
	if (r == 0)
		r = im_json_add(obj, "mtime_nsec", json_object_new_int64(e->mtime_nsec));
	return r;
}

int im_json_add_attributes(struct json_object *obj, enum im_entry_type type,
			   const struct im_entry *e)
{
	char mode_text[IM_MODE_STRING_LEN];
	int r;

	im_format_mode(type, e->mode, mode_text);
	r = im_json_add(obj, "type", json_object_new_string(im_entry_type_name(type)));
	if (r == 0)
		r = im_json_add(obj, "mode", json_object_new_int64(e->mode & 07777));
	if (r == 0)
		r = im_json_add(obj, "mode_text", json_object_new_string(mode_text));
	if (r == 0)
		r = im_json_add(obj, "uid", json_object_new_int64(e->uid));
	if (r == 0)
		r = im_json_add(obj, "gid", json_object_new_int64(e->gid));
	if (r == 0)
		r = im_json_add(obj, "size", json_object_new_uint64(im_entry_display_size(e)));
	if (r == 0)
		r = add_mtime(obj, e);
	if (r < 0)
		return r;

	if (type == IM_ENTRY_CHAR || type == IM_ENTRY_BLOCK) {
		r = im_json_add(obj, "rdev_major", json_object_new_int64(e->rdev_major));
		if (r == 0)
			r = im_json_add(obj, "rdev_minor", json_object_new_int64(e->rdev_minor));
	} else if (type == IM_ENTRY_SYMLINK) {
		r = im_json_add_bytes(obj, "target", e->link, e->link_len);
	}
	return r;
}

/* Write obj compactly, without a newline. */
static int print_plain(FILE *out, struct json_object *obj, int flags)
{
	const char *text = json_object_to_json_string_ext(obj, PRINT_FLAGS | flags);

	if (!text)
		return -ENOMEM;
	if (fputs(text, out) == EOF)
		return -EIO;
	return 0;
}

int im_json_print(FILE *out, struct json_object *obj, bool pretty)
{
	int r;

	r = print_plain(out, obj, pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
					  : JSON_C_TO_STRING_PLAIN);
	if (r == 0 && fputc('\n', out) == EOF)
		r = -EIO;
	return r;
}

void im_json_array_begin(struct im_json_array_writer *w, FILE *out)
{
	w->out = out;
	w->count = 0;
	fputc('[', out);
}

int im_json_array_add(struct im_json_array_writer *w, struct json_object *element)
{
	int r;

	if (!element)
		return -ENOMEM;
	fputs(w->count == 0 ? "\n" : ",\n", w->out);
	r = print_plain(w->out, element, JSON_C_TO_STRING_PLAIN);
	json_object_put(element);
	w->count++;
	return r;
}

void im_json_array_end(struct im_json_array_writer *w)
{
	fputs(w->count == 0 ? "]\n" : "\n]\n", w->out);
}
