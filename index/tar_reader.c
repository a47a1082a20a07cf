/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streaming tar reader. Header blocks and extension headers are appended
 * to one raw buffer (capped at IM_TAR_MAX_HEADER_BYTES) that is returned
 * verbatim. The decoded strings are copied into a separate arena once every
 * header of the entry has been read, because the raw buffer may move while
 * it grows. Entry data passes through the 64 KiB input buffer only.
 */
#include "index/tar_reader_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "index/tar_fields.h"

#define INPUT_BUFFER_SIZE (64u << 10)

int im_tar_reader_new(im_read_fn read, void *opaque, struct im_tar_reader **ret)
{
	struct im_tar_reader *tr = calloc(1, sizeof(*tr));

	if (!tr)
		return -ENOMEM;
	tr->input = malloc(INPUT_BUFFER_SIZE);
	if (!tr->input) {
		free(tr);
		return -ENOMEM;
	}
	tr->read = read;
	tr->opaque = opaque;
	*ret = tr;
	return 0;
}

void im_tar_reader_free(struct im_tar_reader *tr)
{
	if (!tr)
		return;
	free(tr->input);
	free(tr->raw);
	free(tr->xattr_refs);
	free(tr->arena);
	free(tr->xattrs);
	free(tr);
}

uint64_t im_tar_reader_offset(const struct im_tar_reader *tr)
{
	return tr->offset;
}

void im_tar_reader_raw(const struct im_tar_reader *tr, const uint8_t **ret_data,
		       size_t *ret_len)
{
	*ret_data = tr->raw;
	*ret_len = tr->raw_len;
}

int im_tar_fail(struct im_tar_reader *tr, int error, uint64_t entry_offset,
		const char *fmt, ...)
{
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);

	im_err("invalid tar entry at offset %" PRIu64 ": %s", entry_offset, message);
	tr->state = STATE_FAILED;
	tr->error = error;
	return error;
}

/*
 * Copy up to len bytes from the input buffer, refilling it from the source
 * when empty. Return: bytes copied (0 at the end of the stream) or the
 * source's negative errno.
 */
static ssize_t pull(struct im_tar_reader *tr, void *buf, size_t len)
{
	size_t n;

	if (tr->input_pos == tr->input_len) {
		ssize_t got = tr->read(tr->opaque, tr->input, INPUT_BUFFER_SIZE);

		if (got < 0)
			return got;
		tr->input_pos = 0;
		tr->input_len = (size_t)got;
		if (got == 0)
			return 0;
	}

	n = tr->input_len - tr->input_pos;
	if (n > len)
		n = len;
	if (buf)
		memcpy(buf, tr->input + tr->input_pos, n);
	tr->input_pos += n;
	tr->offset += n;
	return (ssize_t)n;
}

/* Read exactly len bytes unless the stream ends. buf NULL discards them.
 * Return: the bytes read (< len only at the end) or a negative errno. */
static ssize_t pull_full(struct im_tar_reader *tr, uint8_t *buf, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		uint64_t want = len - done;
		ssize_t got = pull(tr, buf ? buf + done : NULL,
				   want > SIZE_MAX ? SIZE_MAX : (size_t)want);

		if (got < 0)
			return got;
		if (got == 0)
			break;
		done += (uint64_t)got;
	}
	return (ssize_t)done;
}

/* Append len stream bytes to the raw buffer. Return: the bytes appended
 * (< len only at the end of the stream), -E2BIG past the cap, or -errno. */
static ssize_t pull_raw(struct im_tar_reader *tr, size_t len)
{
	if (len > IM_TAR_MAX_HEADER_BYTES - tr->raw_len)
		return -E2BIG;

	if (tr->raw_len + len > tr->raw_cap) {
		size_t cap = tr->raw_cap ? tr->raw_cap : 4096;
		uint8_t *raw;

		while (cap < tr->raw_len + len)
			cap *= 2;
		raw = realloc(tr->raw, cap);
		if (!raw)
			return -ENOMEM;
		tr->raw = raw;
		tr->raw_cap = cap;
	}

	ssize_t got = pull_full(tr, tr->raw + tr->raw_len, len);

	if (got > 0)
		tr->raw_len += (size_t)got;
	return got;
}

static bool is_zero_block(const uint8_t *block)
{
	for (size_t i = 0; i < IM_TAR_BLOCK_SIZE; i++) {
		if (block[i])
			return false;
	}
	return true;
}

/* Skip the rest of the current entry's data and move its padding into the
 * raw buffer. */
static int finish_data(struct im_tar_reader *tr)
{
	ssize_t got;

	if (tr->data_left > 0) {
		uint64_t want = tr->data_left;

		got = pull_full(tr, NULL, want);
		if (got < 0)
			return got;
		tr->data_left -= (uint64_t)got;
		if ((uint64_t)got < want)
			return im_tar_fail(tr, -EBADMSG, tr->entry.offset,
					   "\"%s\": the stream ends inside its data", tr->entry.name);
	}

	got = pull_raw(tr, tr->padding_left);
	if (got < 0)
		return got;
	if ((size_t)got < tr->padding_left)
		return im_tar_fail(tr, -EBADMSG, tr->entry.offset,
				   "\"%s\": the stream ends inside the padding after its data",
				   tr->entry.name);
	tr->padding_left = 0;
	tr->state = STATE_HEADER;
	return 0;
}

/*
 * Called on a zero header block: the archive ends if the next block is
 * zero too or the stream ends. Return: 0, or an error.
 */
static int read_end_marker(struct im_tar_reader *tr, uint64_t entry_offset)
{
	size_t block = tr->raw_len;
	ssize_t got;

	if (tr->n_extensions > 0)
		return im_tar_fail(tr, -EBADMSG, entry_offset,
				   "extension headers are followed by the end of the archive");

	got = pull_raw(tr, IM_TAR_BLOCK_SIZE);
	if (got < 0)
		return got;
	if (got > 0 && (size_t)got < IM_TAR_BLOCK_SIZE)
		return im_tar_fail(tr, -EBADMSG, entry_offset,
				   "the stream ends inside the second end-of-archive block");
	if (got > 0 && !is_zero_block(tr->raw + block))
		return im_tar_fail(tr, -EBADMSG, entry_offset,
				   "a zero block is followed by a non-zero block");

	tr->state = STATE_END;
	return 0;
}

/* Read the data of an extension header into the raw buffer. */
static int read_extension(struct im_tar_reader *tr, const uint8_t *block,
			  uint64_t entry_offset)
{
	char type = (char)block[TYPE_OFFSET];
	uint64_t max = (type == 'L' || type == 'K') ? IM_TAR_MAX_LONG_NAME
						    : IM_TAR_MAX_PAX_LENGTH;
	struct extension *ext;
	int64_t size;
	ssize_t got;
	int r;

	r = im_tar_number(tr, block, SIZE_OFFSET, TIME_WIDTH, "size", entry_offset, &size);
	if (r < 0)
		return r;
	if (size < 0 || (uint64_t)size > max)
		return im_tar_fail(tr, -EBADMSG, entry_offset,
				   "extension header '%c' has size %" PRId64 ", the limit is %" PRIu64,
				   type, size, max);
	if (tr->n_extensions == MAX_EXTENSIONS)
		return im_tar_fail(tr, -EBADMSG, entry_offset,
				   "more than %d extension headers precede one entry", MAX_EXTENSIONS);

	ext = &tr->extensions[tr->n_extensions++];
	ext->type = type;
	ext->data.offset = tr->raw_len;
	ext->data.len = (size_t)size;

	got = pull_raw(tr, (size_t)size + im_tar_padding((uint64_t)size));
	if (got == -E2BIG)
		return im_tar_fail(tr, -EBADMSG, entry_offset,
				   "its headers exceed %u bytes", IM_TAR_MAX_HEADER_BYTES);
	if (got < 0)
		return got;
	if ((size_t)got < (size_t)size + im_tar_padding((uint64_t)size))
		return im_tar_fail(tr, -EBADMSG, entry_offset,
				   "the stream ends inside extension header '%c'", type);
	return 0;
}

/* Read header blocks until an entry or the end of the archive. */
static int read_headers(struct im_tar_reader *tr)
{
	uint64_t entry_offset = tr->offset;

	tr->n_extensions = 0;
	for (;;) {
		size_t block_offset = tr->raw_len;
		const uint8_t *block;
		ssize_t got;
		char type;
		int r;

		got = pull_raw(tr, IM_TAR_BLOCK_SIZE);
		if (got == -E2BIG)
			return im_tar_fail(tr, -EBADMSG, entry_offset,
					   "its headers exceed %u bytes", IM_TAR_MAX_HEADER_BYTES);
		if (got < 0)
			return (int)got;
		if (got == 0 && tr->n_extensions == 0) {
			/* The stream ends at a header boundary, with no marker. */
			tr->state = STATE_END;
			return 0;
		}
		if ((size_t)got < IM_TAR_BLOCK_SIZE)
			return im_tar_fail(tr, -EBADMSG, entry_offset,
					   "the stream ends inside a header block");

		block = tr->raw + block_offset;
		if (is_zero_block(block)) {
			r = read_end_marker(tr, entry_offset);
			return r < 0 ? r : 0;
		}
		if (!im_tar_checksum_ok(block))
			return im_tar_fail(tr, -EBADMSG, entry_offset,
					   "the checksum of the header block at offset %" PRIu64
					   " does not match its contents",
					   tr->offset - IM_TAR_BLOCK_SIZE);

		type = (char)block[TYPE_OFFSET];
		if (type != 'x' && type != 'g' && type != 'L' && type != 'K')
			return im_tar_decode_entry(tr, block_offset, entry_offset);

		r = read_extension(tr, block, entry_offset);
		if (r < 0)
			return r;
	}
}

int im_tar_reader_next(struct im_tar_reader *tr, const struct im_tar_entry **ret)
{
	int r;

	switch (tr->state) {
	case STATE_FAILED:
		return tr->error;
	case STATE_END:
		return 0;
	default:
		break;
	}

	tr->raw_len = 0;
	if (tr->state == STATE_DATA) {
		r = finish_data(tr);
		if (r < 0)
			return r;
	}

	r = read_headers(tr);
	if (r < 0) {
		if (tr->state != STATE_FAILED) {
			tr->state = STATE_FAILED;
			tr->error = r;
		}
		return r;
	}
	if (r > 0)
		*ret = &tr->entry;
	return r;
}

ssize_t im_tar_reader_read(struct im_tar_reader *tr, void *buf, size_t len)
{
	ssize_t got;

	if (tr->state == STATE_FAILED)
		return tr->error;
	if (tr->state != STATE_DATA || tr->data_left == 0 || len == 0)
		return 0;

	if (len > tr->data_left)
		len = (size_t)tr->data_left;
	got = pull(tr, buf, len);
	if (got < 0)
		return got;
	if (got == 0)
		return im_tar_fail(tr, -EBADMSG, tr->entry.offset,
				   "\"%s\": the stream ends inside its data, %" PRIu64 " bytes short",
				   tr->entry.name, tr->data_left);
	tr->data_left -= (uint64_t)got;
	return got;
}

ssize_t im_tar_reader_read_trailer(struct im_tar_reader *tr, void *buf, size_t len)
{
	if (tr->state != STATE_END)
		return -EINVAL;
	if (len == 0)
		return 0;
	return pull(tr, buf, len);
}
