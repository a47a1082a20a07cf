/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the TOML subset reader (registry/toml.c). Every
 * input must parse or fail cleanly, and a parsed document must satisfy the
 * limits of toml.h and hold only NUL-terminated strings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const struct im_toml_entry *e)
{
	if (e->n_keys == 0 || e->n_keys > IM_TOML_MAX_DEPTH)
		abort();
	for (size_t i = 0; i < e->n_keys; i++)
		(void)strlen(e->keys[i]);
	if (e->type == IM_TOML_STRING)
		(void)strlen(e->string);
	if (e->type == IM_TOML_STRING_ARRAY) {
		if (e->n_strings > IM_TOML_MAX_ARRAY)
			abort();
		for (size_t i = 0; i < e->n_strings; i++)
			(void)strlen(e->strings[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct im_toml doc;
	char error[256];

	if (im_toml_parse((const char *)data, size, &doc, error, sizeof(error)) < 0) {
		if (!memchr(error, '\0', sizeof(error)))
			abort();
		return 0;
	}
	if (doc.n_entries > IM_TOML_MAX_ENTRIES)
		abort();
	for (size_t i = 0; i < doc.n_entries; i++)
		check_entry(&doc.entries[i]);
	im_toml_free(&doc);
	return 0;
}
