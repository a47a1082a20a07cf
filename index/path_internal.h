/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Path helpers shared by the TOC reader and the layer index, not part of
 * the public path API.
 */
#ifndef IM_PATH_INTERNAL_H
#define IM_PATH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* Longest cleaned entry path or link target kept in a layer index. */
#define IM_PATH_MAX_LENGTH 4096

/*
 * Check that path (len bytes) is what im_path_clean() produces for a name
 * that is not the root: no empty, "." or ".." component, no leading or
 * trailing "/", no NUL byte.
 */
bool im_path_is_clean(const char *path, size_t len);

/*
 * Copy s (len bytes, untrusted) into out for a log message: control bytes,
 * '"' and '\' become \xHH, and a copy that does not fit ends in "...".
 * An out_size below 16 gets an empty string.
 */
void im_path_quote(const char *s, size_t len, char *out, size_t out_size);

#endif
