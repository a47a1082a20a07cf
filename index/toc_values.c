/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoders for TOC field values that JSON leaves as strings: RFC 3339
 * modification times and base64 xattr values. Both take untrusted text of
 * a given length (not NUL-terminated) and never read past it.
 */
#include "index/toc_internal.h"

#include <errno.h>
#include <stdbool.h>

#include <openssl/evp.h>

static bool parse_fixed_digits(const char *s, size_t n, uint32_t *ret)
{
	uint32_t v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	*ret = v;
	return true;
}

static bool is_leap_year(uint32_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static uint32_t days_in_month(uint32_t y, uint32_t m)
{
	static const uint8_t days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar,
 * counting in 400-year eras that start on March 1 so that leap days fall
 * at the end of each year. */
static int64_t days_from_civil(int64_t y, uint32_t m, uint32_t d)
{
	int64_t era;
	int64_t yoe;
	int64_t doy;
	int64_t doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * Parse an RFC 3339 date-time, "YYYY-MM-DDTHH:MM:SS[.F]Z" or with a
 * "+hh:mm"/"-hh:mm" offset, into seconds since the epoch (negative before
 * 1970) and nanoseconds. The fraction has 1 to 9 digits and is read as an
 * integer, so no nanosecond is lost to floating point. Second 60 (a leap
 * second) is accepted and counts as the first second of the next minute.
 */
int im_toc_parse_rfc3339(const char *s, size_t len, int64_t *ret_sec, uint32_t *ret_nsec)
{
	uint32_t year, month, day, hour, minute, second;
	uint32_t nsec = 0;
	int64_t offset = 0;
	size_t pos = 19;

	if (len < 20)
		return -EINVAL;
	if (!parse_fixed_digits(s, 4, &year) || s[4] != '-' ||
	    !parse_fixed_digits(s + 5, 2, &month) || s[7] != '-' ||
	    !parse_fixed_digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
	    !parse_fixed_digits(s + 11, 2, &hour) || s[13] != ':' ||
	    !parse_fixed_digits(s + 14, 2, &minute) || s[16] != ':' ||
	    !parse_fixed_digits(s + 17, 2, &second))
		return -EINVAL;

	if (s[pos] == '.') {
		size_t digits = 0;

		pos++;
		while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
			if (++digits > 9)
				return -EINVAL;
			nsec = nsec * 10 + (uint32_t)(s[pos] - '0');
			pos++;
		}
		if (digits == 0)
			return -EINVAL;
		for (size_t i = digits; i < 9; i++)
			nsec *= 10;
	}

	if (pos < len && (s[pos] == 'Z' || s[pos] == 'z')) {
		pos++;
	} else if (pos < len && (s[pos] == '+' || s[pos] == '-')) {
		uint32_t oh, om;

		if (len - pos < 6 || !parse_fixed_digits(s + pos + 1, 2, &oh) ||
		    s[pos + 3] != ':' || !parse_fixed_digits(s + pos + 4, 2, &om) ||
		    oh > 23 || om > 59)
			return -EINVAL;
		offset = (int64_t)oh * 3600 + om * 60;
		if (s[pos] == '-')
			offset = -offset;
		pos += 6;
	} else {
		return -EINVAL;
	}
	if (pos != len)
		return -EINVAL;

	if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
	    hour > 23 || minute > 59 || second > 60)
		return -EINVAL;

	/* Local time minus its offset from UTC is UTC. */
	*ret_sec = days_from_civil(year, month, day) * 86400 +
		   (int64_t)hour * 3600 + minute * 60 + second - offset;
	*ret_nsec = nsec;
	return 0;
}

static bool is_base64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * Decode padded standard base64 (what Go's encoding/base64.StdEncoding
 * writes) into out, which has room for len / 4 * 3 bytes. Every character
 * is checked first because EVP_DecodeBlock() skips surrounding whitespace,
 * and the padding is subtracted because it counts "=" as zero bytes.
 */
int im_toc_decode_base64(const char *in, size_t len, uint8_t *out, size_t *ret_len)
{
	size_t pad = 0;
	int n;

	if (len % 4 != 0)
		return -EINVAL;
	if (len == 0) {
		*ret_len = 0;
		return 0;
	}

	while (pad < 2 && in[len - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++) {
		if (!is_base64_char(in[i]))
			return -EINVAL;
	}

	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0 || (size_t)n != len / 4 * 3)
		return -EINVAL;
	*ret_len = (size_t)n - pad;
	return 0;
}
