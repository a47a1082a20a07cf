/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Text forms of entry attributes for the inspection commands: the
 * `ls -l` mode string, type names, times in UTC, and escaped names. A
 * name from an image is escaped so that it can neither break the
 * one-line-per-entry layout nor send control sequences to a terminal.
 */
#ifndef IM_ENTRY_TEXT_H
#define IM_ENTRY_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "index/layer_index.h"

/* Size of the mode string: type letter, nine permission letters, NUL. */
#define IM_MODE_STRING_LEN 11

/*
 * Format type and the 12 permission bits as `ls -l` does, "drwxr-xr-x",
 * with s/S for setuid and setgid and t/T for the sticky bit. Whiteouts are
 * shown as character devices ('c'), the way overlayfs stores them, and
 * opaque markers as regular files.
 */
void im_format_mode(enum im_entry_type type, uint32_t mode, char out[IM_MODE_STRING_LEN]);

/* Short type name used in text and JSON: "file", "dir", "symlink",
 * "hardlink", "char", "block", "fifo", "whiteout", "opaque", or "unknown". */
const char *im_entry_type_name(enum im_entry_type type);

/* The size that stat(2) reports on a mount: bytes of a regular file, the
 * target length of a symlink, 0 for everything else. */
uint64_t im_entry_display_size(const struct im_entry *e);

/*
 * Format a time in UTC as "2023-11-14 22:13:20" and, with nsec_digits,
 * ".500000000" after it. Times gmtime_r() cannot represent are written as
 * "@SECONDS". out_size of 48 bytes is always enough.
 */
void im_format_time(int64_t sec, uint32_t nsec, bool nsec_digits, char *out, size_t out_size);

/* Length (1 to 4) of the well-formed UTF-8 sequence that starts s (len
 * bytes, len > 0), or 0 when s does not start with one. */
size_t im_utf8_sequence_length(const char *s, size_t len);

/* True when s (len bytes) is valid UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF). */
bool im_utf8_valid(const char *s, size_t len);

/*
 * Write s (len bytes) to out, escaping what is not printable: "\\" for a
 * backslash, "\n", "\t" and "\xHH" for other control characters (C1
 * controls included) and for bytes that are not part of valid UTF-8.
 * Printable ASCII and valid UTF-8 text pass through unchanged.
 */
void im_fput_escaped(const char *s, size_t len, FILE *out);

#endif
