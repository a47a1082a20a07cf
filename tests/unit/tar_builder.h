/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Builds tar archives in memory, header block by header block, for the tar
 * reader and converter tests: ustar, GNU and star magic, octal and base-256
 * numbers, pax records with binary values, GNU long names, deliberate
 * checksum errors. Test code only: allocation failures abort the test.
 */
#ifndef IM_TAR_BUILDER_H
#define IM_TAR_BUILDER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define TB_BLOCK 512

#define TB_MAGIC_USTAR "ustar\0" "00"
#define TB_MAGIC_GNU "ustar  \0"

struct tar_buffer {
	uint8_t *data;
	size_t len, cap;
};

/* Fields of one header block; zero values give sensible defaults. */
struct tar_header {
	const char *name;
	const char *prefix;             /* ustar prefix field */
	const char *link;
	char type;                      /* '0' when 0 */
	uint32_t mode;
	uint64_t uid, gid;
	uint64_t size;
	int64_t mtime;
	uint32_t dev_major, dev_minor;
	const char *magic;              /* 8 bytes; TB_MAGIC_USTAR when NULL */
	bool v7;                        /* no magic at all */
	bool nul_type;                  /* store type '\0' (pre-POSIX file) */
	bool star;                      /* "tar\0" trailer at 508 */
	bool size_base256;
	bool mtime_base256;
	bool bad_checksum;
	bool signed_checksum;           /* store the signed byte sum */
};

static inline void tb_append(struct tar_buffer *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;

		while (cap < t->len + n)
			cap *= 2;
		t->data = realloc(t->data, cap);
		if (!t->data)
			abort();
		t->cap = cap;
	}
	if (n)
		memcpy(t->data + t->len, p, n);
	t->len += n;
}

static inline void tb_zeros(struct tar_buffer *t, size_t n)
{
	static const uint8_t zero[TB_BLOCK];

	while (n > 0) {
		size_t k = n < sizeof(zero) ? n : sizeof(zero);

		tb_append(t, zero, k);
		n -= k;
	}
}

static inline void tb_pad(struct tar_buffer *t)
{
	tb_zeros(t, (TB_BLOCK - t->len % TB_BLOCK) % TB_BLOCK);
}

/* width - 1 octal digits and a NUL, as GNU tar writes them. */
static inline void tb_octal(uint8_t *field, size_t width, uint64_t value)
{
	field[width - 1] = '\0';
	for (size_t i = width - 1; i-- > 0;) {
		field[i] = (uint8_t)('0' + (value & 7));
		value >>= 3;
	}
}

/* Big-endian two's complement with the high bit of the first byte set. */
static inline void tb_base256(uint8_t *field, size_t width, int64_t value)
{
	uint64_t v = (uint64_t)value;

	for (size_t i = width; i-- > 0;) {
		field[i] = (uint8_t)v;
		v = (uint64_t)((int64_t)v >> 8);
	}
	field[0] |= 0x80;
}

static inline void tb_string(uint8_t *field, size_t width, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	memcpy(field, s ? s : "", n < width ? n : width);
}

static inline void tb_header(struct tar_buffer *t, const struct tar_header *h)
{
	uint8_t b[TB_BLOCK] = { 0 };
	uint64_t usum = 0;
	int64_t ssum = 0;

	tb_string(b + 0, 100, h->name);
	tb_octal(b + 100, 8, h->mode ? h->mode : 0644);
	tb_octal(b + 108, 8, h->uid);
	tb_octal(b + 116, 8, h->gid);
	if (h->size_base256)
		tb_base256(b + 124, 12, (int64_t)h->size);
	else
		tb_octal(b + 124, 12, h->size);
	if (h->mtime_base256)
		tb_base256(b + 136, 12, h->mtime);
	else
		tb_octal(b + 136, 12, (uint64_t)h->mtime);
	b[156] = h->nul_type ? 0 : (uint8_t)(h->type ? h->type : '0');
	tb_string(b + 157, 100, h->link);
	if (!h->v7) {
		memcpy(b + 257, h->magic ? h->magic : TB_MAGIC_USTAR, 8);
		tb_string(b + 265, 32, "user");
		tb_string(b + 297, 32, "group");
		tb_octal(b + 329, 8, h->dev_major);
		tb_octal(b + 337, 8, h->dev_minor);
		tb_string(b + 345, h->star ? 131 : 155, h->prefix);
		if (h->star)
			memcpy(b + 508, "tar\0", 4);
	}

	memset(b + 148, ' ', 8);
	for (size_t i = 0; i < TB_BLOCK; i++) {
		usum += b[i];
		ssum += (int8_t)b[i];
	}
	tb_octal(b + 148, 7, h->signed_checksum ? (uint64_t)ssum & 0777777 : usum);
	b[155] = ' ';
	if (h->bad_checksum)
		b[148 + 5] = b[148 + 5] == '7' ? '6' : (uint8_t)(b[148 + 5] + 1);

	tb_append(t, b, sizeof(b));
}

static inline void tb_data(struct tar_buffer *t, const void *data, size_t len)
{
	tb_append(t, data, len);
	tb_pad(t);
}

/* A file header and its data in one call. */
static inline void tb_file(struct tar_buffer *t, const char *name, const void *data,
			   size_t len)
{
	struct tar_header h = { .name = name, .size = len };

	tb_header(t, &h);
	tb_data(t, data, len);
}

/* Append one pax record "LEN key=value\n" (value may hold NUL bytes). */
static inline void tb_pax_record(struct tar_buffer *records, const char *key,
				 const void *value, size_t value_len)
{
	size_t body = 1 + strlen(key) + 1 + value_len + 1;
	size_t total = body + 1;
	char prefix[32];

	/* The length counts its own digits: iterate to the fixed point. */
	for (;;) {
		size_t digits = (size_t)snprintf(NULL, 0, "%zu", total);

		if (body + digits == total)
			break;
		total = body + digits;
	}
	snprintf(prefix, sizeof(prefix), "%zu ", total);
	tb_append(records, prefix, strlen(prefix));
	tb_append(records, key, strlen(key));
	tb_append(records, "=", 1);
	tb_append(records, value, value_len);
	tb_append(records, "\n", 1);
}

static inline void tb_pax_string(struct tar_buffer *records, const char *key, const char *value)
{
	tb_pax_record(records, key, value, strlen(value));
}

/* An extension header ('x', 'g', 'L' or 'K') with the given data. */
static inline void tb_extension(struct tar_buffer *t, char type, const void *data, size_t len)
{
	struct tar_header h = {
		.name = type == 'L' || type == 'K' ? "././@LongLink" : "PaxHeaders/x",
		.type = type,
		.size = len,
		.magic = type == 'L' || type == 'K' ? TB_MAGIC_GNU : TB_MAGIC_USTAR,
	};

	tb_header(t, &h);
	tb_data(t, data, len);
}

static inline void tb_end(struct tar_buffer *t)
{
	tb_zeros(t, 2 * TB_BLOCK);
}

static inline void tb_free(struct tar_buffer *t)
{
	free(t->data);
	*t = (struct tar_buffer) { 0 };
}

/* A read callback over memory that returns at most max_read bytes a call,
 * to exercise short reads. */
struct memory_source {
	const uint8_t *data;
	size_t len, pos;
	size_t max_read;
};

static inline ssize_t memory_read(void *opaque, void *buf, size_t len)
{
	struct memory_source *m = opaque;
	size_t n = m->len - m->pos;

	if (n > len)
		n = len;
	if (m->max_read && n > m->max_read)
		n = m->max_read;
	if (n > 0)
		memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

#endif
