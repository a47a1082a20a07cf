/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsers for the fields of one tar header block and for pax extended
 * header records. Internal to the tar reader; separate so that unit tests
 * reach every rule directly. All input is untrusted and never
 * NUL-terminated; no function reads past the length it is given.
 */
#ifndef IM_TAR_FIELDS_H
#define IM_TAR_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parse a numeric header field: octal digits with any leading or trailing
 * spaces and NULs (an empty field is 0), or GNU base-256 when the first
 * byte has its high bit set (two's complement, so it may be negative).
 * Return: 0, or -EINVAL for other characters or -ERANGE beyond int64_t.
 */
int im_tar_parse_numeric(const uint8_t *field, size_t len, int64_t *ret);

/*
 * Check the header checksum of a 512-byte block: the stored octal value
 * must equal the sum of all bytes, with the checksum field counted as
 * spaces, either as unsigned or as signed bytes (old writers used signed).
 */
bool im_tar_checksum_ok(const uint8_t *block);

/* Length of a NUL-padded string field: bytes up to the first NUL or len. */
size_t im_tar_field_length(const uint8_t *field, size_t len);

/* Parse a pax decimal number ("size", "uid", "gid"): digits only, at most
 * INT64_MAX. Return: 0, -EINVAL or -ERANGE. */
int im_tar_parse_pax_decimal(const char *text, size_t len, uint64_t *ret);

/*
 * Parse a pax time such as "1644324233.182744228" or "-1.5": an optional
 * sign, decimal seconds, and an optional fraction of which the first nine
 * digits count. The result is normalized so that 0 <= *ret_nsec < 1e9,
 * e.g. "-1.5" gives -2 s + 500000000 ns.
 * Return: 0, -EINVAL or -ERANGE.
 */
int im_tar_parse_pax_time(const char *text, size_t len, int64_t *ret_sec,
			  uint32_t *ret_nsec);

/* One pax record "LENGTH KEY=VALUE\n"; pointers into the parsed buffer. */
struct im_pax_record {
	const char *key;
	size_t key_len;
	const uint8_t *value;
	size_t value_len;
};

/*
 * Parse the record at *pos of a pax header's data (len bytes) and advance
 * *pos past it. The key must be non-empty and free of NUL bytes; the
 * value may hold any bytes.
 * Return: 1 with *ret set, 0 when *pos == len, or -EBADMSG.
 */
int im_tar_pax_next(const uint8_t *data, size_t len, size_t *pos,
		    struct im_pax_record *ret);

#endif
