/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the streaming tar reader: any input must end in an
 * entry list, a clean end or an error, never a crash, a leak or a read out
 * of bounds. Reads are cut into pieces whose sizes come from the input, so
 * short reads are fuzzed too. The pass-through invariant is checked as
 * well: raw header bytes, data and trailer must concatenate to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "index/tar_reader.h"

struct source {
	const uint8_t *data;
	size_t len, pos;
	size_t max_read;
};

static ssize_t source_read(void *opaque, void *buf, size_t len)
{
	struct source *s = opaque;
	size_t n = s->len - s->pos;

	if (n > len)
		n = len;
	if (n > s->max_read)
		n = s->max_read;
	memcpy(buf, s->data + s->pos, n);
	s->pos += n;
	return (ssize_t)n;
}

/* Compare the bytes the reader handed back with the input at *offset. */
static void check_same(const uint8_t *input, size_t input_len, size_t *offset,
		       const uint8_t *p, size_t n)
{
	if (*offset + n > input_len || memcmp(input + *offset, p, n) != 0)
		abort();
	*offset += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct source src = { data, size, 0, 0 };
	struct im_tar_reader *tr;
	const struct im_tar_entry *e;
	uint8_t buf[4096];
	size_t echoed = 0;
	int r;

	im_log_set_level(IM_LOG_ERR - 1);
	/* The first byte picks the read size: 1 to 256 bytes, or unlimited. */
	src.max_read = size > 0 && data[0] != 0 ? data[0] : SIZE_MAX;

	if (im_tar_reader_new(source_read, &src, &tr) < 0)
		return 0;

	for (;;) {
		const uint8_t *raw;
		size_t raw_len;
		ssize_t got;

		r = im_tar_reader_next(tr, &e);
		if (r <= 0)
			break;
		im_tar_reader_raw(tr, &raw, &raw_len);
		check_same(data, size, &echoed, raw, raw_len);
		if (e->name_len != strlen(e->name) || e->link_name_len != strlen(e->link_name))
			abort();
		for (size_t i = 0; i < e->n_xattrs; i++) {
			if (e->xattrs[i].value[e->xattrs[i].value_len] != '\0')
				abort();
		}

		while ((got = im_tar_reader_read(tr, buf, sizeof(buf))) > 0)
			check_same(data, size, &echoed, buf, (size_t)got);
		if (got < 0)
			break;
	}

	if (r == 0) {
		const uint8_t *raw;
		size_t raw_len;
		ssize_t got;

		im_tar_reader_raw(tr, &raw, &raw_len);
		check_same(data, size, &echoed, raw, raw_len);
		while ((got = im_tar_reader_read_trailer(tr, buf, sizeof(buf))) > 0)
			check_same(data, size, &echoed, buf, (size_t)got);
		if (got < 0 || echoed != size)
			abort();
	}

	im_tar_reader_free(tr);
	return 0;
}
