/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoders shared inside the TOC reader (toc_values.c), not part of the
 * public TOC API.
 */
#ifndef IM_TOC_INTERNAL_H
#define IM_TOC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse an RFC 3339 date-time of len bytes into seconds since the epoch
 * (negative before 1970) and nanoseconds.
 * Return: 0 or -EINVAL.
 */
int im_toc_parse_rfc3339(const char *s, size_t len, int64_t *ret_sec, uint32_t *ret_nsec);

/*
 * Decode padded standard base64 of len bytes into out, which has room for
 * len / 4 * 3 bytes, and set *ret_len to the decoded length.
 * Return: 0 or -EINVAL.
 */
int im_toc_decode_base64(const char *in, size_t len, uint8_t *out, size_t *ret_len);

#endif
