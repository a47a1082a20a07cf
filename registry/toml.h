/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A reader for the subset of TOML 1.0 that containerd's hosts.toml files
 * use: comments, [table] headers, bare, quoted and dotted keys, basic and
 * literal strings (single line), booleans, and arrays of strings (which
 * may span lines and end with a comma). Anything else (numbers, dates,
 * inline tables, arrays of tables, multi-line strings, nested arrays) is
 * rejected with the line number, so a file is never half understood.
 *
 * The document is flattened: every key/value pair is one entry with its
 * full key path, table names first, in file order, and every [table]
 * header is an entry of type IM_TOML_TABLE, so that empty tables are seen.
 * Duplicate keys and tables are an error, as TOML requires.
 */
#ifndef IM_REGISTRY_TOML_H
#define IM_REGISTRY_TOML_H

#include <stdbool.h>
#include <stddef.h>

/* Limits that bound memory whatever the input. */
#define IM_TOML_MAX_LENGTH (256u << 10)
#define IM_TOML_MAX_ENTRIES 1024
#define IM_TOML_MAX_DEPTH 8        /* keys in one full path */
#define IM_TOML_MAX_ARRAY 64       /* strings in one array */

enum im_toml_type {
	IM_TOML_STRING,
	IM_TOML_BOOL,
	IM_TOML_STRING_ARRAY,
	IM_TOML_TABLE,  /* a [table] header; keys is its name, there is no value */
};

struct im_toml_entry {
	char *keys[IM_TOML_MAX_DEPTH]; /* table path, then the dotted key */
	size_t n_keys;
	enum im_toml_type type;
	char *string;                  /* IM_TOML_STRING */
	bool boolean;                  /* IM_TOML_BOOL */
	char **strings;                /* IM_TOML_STRING_ARRAY */
	size_t n_strings;
	unsigned line;                 /* 1-based, for messages */
};

struct im_toml {
	struct im_toml_entry *entries;
	size_t n_entries;
};

/*
 * Parse len bytes of text. On failure, error (error_size bytes) receives
 * "line N: what is wrong", and *ret is left empty.
 * Return: 0, -EBADMSG for invalid or unsupported input, -EFBIG when a
 * limit above is exceeded, or -ENOMEM.
 */
int im_toml_parse(const char *text, size_t len, struct im_toml *ret, char *error,
		  size_t error_size);
void im_toml_free(struct im_toml *doc);

/* Whether the first n keys of entry equal prefix. */
bool im_toml_entry_has_prefix(const struct im_toml_entry *entry, const char *const *prefix,
			      size_t n);

#endif
