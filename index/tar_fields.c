/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Field and pax record parsers for the tar reader. Numbers from headers are
 * untrusted: every accumulation is overflow-checked and nothing is parsed
 * through floating point, so a pax mtime keeps all nine fractional digits.
 */
#include "index/tar_fields.h"

#include <errno.h>
#include <string.h>

/* Offset and width of the checksum field in a header block. */
#define CHECKSUM_OFFSET 148
#define CHECKSUM_WIDTH 8

static bool is_padding(uint8_t c)
{
	return c == ' ' || c == '\0';
}

static int parse_octal(const uint8_t *field, size_t len, int64_t *ret)
{
	size_t start = 0, end = len;
	uint64_t value = 0;

	while (start < end && is_padding(field[start]))
		start++;
	while (end > start && is_padding(field[end - 1]))
		end--;

	for (size_t i = start; i < end; i++) {
		if (field[i] < '0' || field[i] > '7')
			return -EINVAL;
		if (value > (uint64_t)INT64_MAX >> 3)
			return -ERANGE;
		value = value << 3 | (uint64_t)(field[i] - '0');
	}
	if (value > (uint64_t)INT64_MAX)
		return -ERANGE;

	*ret = (int64_t)value;
	return 0;
}

/*
 * GNU base-256: the high bit of the first byte marks the encoding and the
 * remaining bits are a big-endian two's complement number. A negative
 * number has every bit inverted, so it is read inverted and flipped back.
 */
static int parse_base256(const uint8_t *field, size_t len, int64_t *ret)
{
	uint8_t invert = (field[0] & 0x40) ? 0xff : 0x00;
	uint64_t value = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = field[i] ^ invert;

		if (i == 0)
			c &= 0x7f;
		if (value >> 56)
			return -ERANGE;
		value = value << 8 | c;
	}
	if (value >> 63)
		return -ERANGE;

	*ret = invert ? ~(int64_t)value : (int64_t)value;
	return 0;
}

int im_tar_parse_numeric(const uint8_t *field, size_t len, int64_t *ret)
{
	if (len > 0 && (field[0] & 0x80))
		return parse_base256(field, len, ret);
	return parse_octal(field, len, ret);
}

bool im_tar_checksum_ok(const uint8_t *block)
{
	uint64_t unsigned_sum = 0;
	int64_t signed_sum = 0;
	int64_t stored;

	if (parse_octal(block + CHECKSUM_OFFSET, CHECKSUM_WIDTH, &stored) < 0)
		return false;

	for (size_t i = 0; i < 512; i++) {
		bool in_field = i >= CHECKSUM_OFFSET && i < CHECKSUM_OFFSET + CHECKSUM_WIDTH;
		uint8_t c = in_field ? ' ' : block[i];

		unsigned_sum += c;
		signed_sum += (int8_t)c;
	}
	return (uint64_t)stored == unsigned_sum || stored == signed_sum;
}

size_t im_tar_field_length(const uint8_t *field, size_t len)
{
	const uint8_t *nul = memchr(field, '\0', len);

	return nul ? (size_t)(nul - field) : len;
}

/* Accumulate decimal digits into *value. Return: 0, -EINVAL or -ERANGE. */
static int add_decimal_digits(const char *text, size_t len, uint64_t *value)
{
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
		if (*value > ((uint64_t)INT64_MAX - (uint64_t)(text[i] - '0')) / 10)
			return -ERANGE;
		*value = *value * 10 + (uint64_t)(text[i] - '0');
	}
	return 0;
}

int im_tar_parse_pax_decimal(const char *text, size_t len, uint64_t *ret)
{
	uint64_t value = 0;
	int r;

	if (len == 0)
		return -EINVAL;
	r = add_decimal_digits(text, len, &value);
	if (r < 0)
		return r;

	*ret = value;
	return 0;
}

/* Nanoseconds from the fraction digits: the first nine count, the rest are
 * dropped (truncation, as Go's archive/tar does). */
static int parse_fraction(const char *text, size_t len, uint32_t *ret)
{
	uint32_t nsec = 0;

	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -EINVAL;
	}
	for (size_t i = 0; i < 9; i++)
		nsec = nsec * 10 + (i < len ? (uint32_t)(text[i] - '0') : 0);

	*ret = nsec;
	return 0;
}

int im_tar_parse_pax_time(const char *text, size_t len, int64_t *ret_sec,
			  uint32_t *ret_nsec)
{
	const char *dot;
	size_t sec_len;
	uint64_t sec = 0;
	uint32_t nsec = 0;
	bool negative = false;
	int r;

	if (len > 0 && (text[0] == '-' || text[0] == '+')) {
		negative = text[0] == '-';
		text++;
		len--;
	}

	dot = memchr(text, '.', len);
	sec_len = dot ? (size_t)(dot - text) : len;
	if (sec_len == 0)
		return -EINVAL;
	r = add_decimal_digits(text, sec_len, &sec);
	if (r < 0)
		return r;

	if (dot) {
		r = parse_fraction(dot + 1, len - sec_len - 1, &nsec);
		if (r < 0)
			return r;
	}

	/* -S.F means -(S + F): one more second down, then 1 - F up. */
	if (negative && nsec > 0) {
		*ret_sec = -(int64_t)sec - 1;
		*ret_nsec = 1000000000u - nsec;
	} else {
		*ret_sec = negative ? -(int64_t)sec : (int64_t)sec;
		*ret_nsec = nsec;
	}
	return 0;
}

int im_tar_pax_next(const uint8_t *data, size_t len, size_t *pos,
		    struct im_pax_record *ret)
{
	size_t start = *pos, i = *pos, record_len = 0;
	const uint8_t *record, *equals;

	if (start == len)
		return 0;

	while (i < len && data[i] >= '0' && data[i] <= '9') {
		/* A length past the end of the data is rejected before it can
		 * overflow. */
		if (record_len > (len - start) / 10)
			return -EBADMSG;
		record_len = record_len * 10 + (size_t)(data[i] - '0');
		if (record_len > len - start)
			return -EBADMSG;
		i++;
	}
	if (i == start || i == len || data[i] != ' ')
		return -EBADMSG;
	i++;

	/* The length counts the digits, the space, KEY=VALUE and the newline. */
	if (record_len < i - start + 3)
		return -EBADMSG;
	record = data + start;
	if (record[record_len - 1] != '\n')
		return -EBADMSG;

	equals = memchr(data + i, '=', start + record_len - 1 - i);
	if (!equals || equals == data + i)
		return -EBADMSG;
	if (memchr(data + i, '\0', (size_t)(equals - (data + i))))
		return -EBADMSG;

	ret->key = (const char *)(data + i);
	ret->key_len = (size_t)(equals - (data + i));
	ret->value = equals + 1;
	ret->value_len = (size_t)(record + record_len - 1 - (equals + 1));
	*pos = start + record_len;
	return 1;
}
