/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Text forms of entry attributes. UTF-8 is checked against the
 * well-formed byte sequences of RFC 3629 section 4.
 */
#include "fs/entry_text.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

static char type_letter(enum im_entry_type type)
{
	switch (type) {
	case IM_ENTRY_DIR:
		return 'd';
	case IM_ENTRY_SYMLINK:
		return 'l';
	case IM_ENTRY_CHAR:
	case IM_ENTRY_WHITEOUT:
		return 'c';
	case IM_ENTRY_BLOCK:
		return 'b';
	case IM_ENTRY_FIFO:
		return 'p';
	default:
		return '-';
	}
}

/* Letter for an execute position: x, or s/t (special bit and x) or S/T
 * (special bit without x). */
static char exec_letter(uint32_t mode, uint32_t exec_bit, uint32_t special_bit, char special)
{
	bool exec = mode & exec_bit;

	if (mode & special_bit)
		return exec ? special : (char)(special - 'a' + 'A');
	return exec ? 'x' : '-';
}

void im_format_mode(enum im_entry_type type, uint32_t mode, char out[IM_MODE_STRING_LEN])
{
	out[0] = type_letter(type);
	out[1] = mode & 0400 ? 'r' : '-';
	out[2] = mode & 0200 ? 'w' : '-';
	out[3] = exec_letter(mode, 0100, 04000, 's');
	out[4] = mode & 040 ? 'r' : '-';
	out[5] = mode & 020 ? 'w' : '-';
	out[6] = exec_letter(mode, 010, 02000, 's');
	out[7] = mode & 04 ? 'r' : '-';
	out[8] = mode & 02 ? 'w' : '-';
	out[9] = exec_letter(mode, 01, 01000, 't');
	out[10] = '\0';
}

const char *im_entry_type_name(enum im_entry_type type)
{
	switch (type) {
	case IM_ENTRY_REG:
		return "file";
	case IM_ENTRY_DIR:
		return "dir";
	case IM_ENTRY_SYMLINK:
		return "symlink";
	case IM_ENTRY_HARDLINK:
		return "hardlink";
	case IM_ENTRY_CHAR:
		return "char";
	case IM_ENTRY_BLOCK:
		return "block";
	case IM_ENTRY_FIFO:
		return "fifo";
	case IM_ENTRY_WHITEOUT:
		return "whiteout";
	case IM_ENTRY_OPAQUE:
		return "opaque";
	default:
		return "unknown";
	}
}

uint64_t im_entry_display_size(const struct im_entry *e)
{
	if (e->type == IM_ENTRY_REG)
		return e->size;
	if (e->type == IM_ENTRY_SYMLINK)
		return e->link_len;
	return 0;
}

void im_format_time(int64_t sec, uint32_t nsec, bool nsec_digits, char *out, size_t out_size)
{
	time_t t = (time_t)sec;
	struct tm tm;
	size_t n;

	if ((int64_t)t != sec || !gmtime_r(&t, &tm) ||
	    (n = strftime(out, out_size, "%Y-%m-%d %H:%M:%S", &tm)) == 0) {
		snprintf(out, out_size, "@%" PRId64, sec);
		return;
	}
	if (nsec_digits)
		snprintf(out + n, out_size - n, ".%09" PRIu32, nsec);
}

size_t im_utf8_sequence_length(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (len < n)
		return 0;

	/* The second byte's range excludes overlong forms (E0, F0),
	 * surrogates (ED) and code points above U+10FFFF (F4). */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;

	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return n;
}

bool im_utf8_valid(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = im_utf8_sequence_length(s + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static void put_ascii_escaped(unsigned char c, FILE *out)
{
	if (c == '\\')
		fputs("\\\\", out);
	else if (c == '\n')
		fputs("\\n", out);
	else if (c == '\t')
		fputs("\\t", out);
	else if (c < 0x20 || c == 0x7f)
		fprintf(out, "\\x%02x", c);
	else
		fputc(c, out);
}

void im_fput_escaped(const char *s, size_t len, FILE *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = im_utf8_sequence_length(s + i, len - i);

		if (n == 1) {
			put_ascii_escaped(p[i], out);
		} else if (n == 0 || (n == 2 && p[i] == 0xc2 && p[i + 1] <= 0x9f)) {
			/* Invalid, or a C1 control (U+0080..U+009F), which
			 * some terminals act on: escape every byte. */
			if (n == 0)
				n = 1;
			for (size_t k = 0; k < n; k++)
				fprintf(out, "\\x%02x", p[i + k]);
		} else {
			fwrite(p + i, 1, n, out);
		}
		i += n;
	}
}
