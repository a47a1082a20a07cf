/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The position of a zstd:chunked TOC in the layer blob (from its
 * annotation) and its decompression. Both inputs come from the registry: the
 * annotation from the manifest and the compressed bytes from a range
 * request, so every number is range-checked and the output buffer is
 * bounded by IM_TOC_MAX_LENGTH before anything is allocated.
 */
#include "index/toc.h"
#include "index/path_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "common/log.h"
#include "common/util.h"

/* Type of the only TOC format defined in the position annotation. */
#define TOC_POSITION_TYPE 1

#define QUOTE_SIZE 160

/* Parse a decimal field of the position annotation: digits only, no sign,
 * no leading zero unless the value is 0. */
static int parse_decimal(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;

	if (len == 0 || (len > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

/* Split "A:B:C:D" into four decimal numbers. */
static int parse_position_fields(const char *text, uint64_t field[4])
{
	const char *p = text;
	int r;

	for (int i = 0; i < 4; i++) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);

		if ((i < 3) != (colon != NULL))
			return -EINVAL;
		r = parse_decimal(p, len, &field[i]);
		if (r < 0)
			return r;
		p += len + 1;
	}
	return 0;
}

__attribute__((format(printf, 2, 3)))
static int reject_position(const char *position, const char *fmt, ...)
{
	char quoted[QUOTE_SIZE];
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);

	im_path_quote(position, strlen(position), quoted, sizeof(quoted));
	im_err("invalid zstd:chunked TOC position \"%s\": %s", quoted, reason);
	return -EINVAL;
}

int im_toc_location_parse(const char *position, const char *checksum,
			  uint64_t blob_size, struct im_toc_location *ret)
{
	struct im_toc_location loc;
	uint64_t field[4];
	uint64_t end;

	if (!position || !checksum || !ret)
		return -EINVAL;

	if (parse_position_fields(position, field) < 0)
		return reject_position(position, "expected OFFSET:LENGTH:UNCOMPRESSED_LENGTH:TYPE "
				       "in plain decimal");
	if (field[3] != TOC_POSITION_TYPE)
		return reject_position(position, "TOC type %llu, only %d is defined",
				       (unsigned long long)field[3], TOC_POSITION_TYPE);

	loc.offset = field[0];
	loc.length = field[1];
	loc.uncompressed_length = field[2];
	if (loc.length == 0 || loc.uncompressed_length == 0)
		return reject_position(position, "empty TOC");
	if (loc.length > IM_TOC_MAX_LENGTH || loc.uncompressed_length > IM_TOC_MAX_LENGTH)
		return reject_position(position, "TOC larger than the %u MiB limit",
				       IM_TOC_MAX_LENGTH >> 20);
	if (im_add_u64(loc.offset, loc.length, &end) < 0 || end > blob_size)
		return reject_position(position, "range runs past the blob size %llu",
				       (unsigned long long)blob_size);

	if (im_digest_parse(checksum, &loc.digest) < 0) {
		char quoted[QUOTE_SIZE];

		im_path_quote(checksum, strlen(checksum), quoted, sizeof(quoted));
		im_err("invalid zstd:chunked TOC checksum \"%s\": expected sha256:<64 hex digits>",
		       quoted);
		return -EINVAL;
	}

	*ret = loc;
	return 0;
}

int im_toc_decompress(const void *compressed, size_t len,
		      const struct im_toc_location *loc, void **ret)
{
	_cleanup_free_ void *buf = NULL;
	unsigned long long content_size;
	size_t n;

	if (!compressed || !loc || !ret)
		return -EINVAL;
	if (len != loc->length) {
		im_err("TOC is %zu bytes, the position annotation gives %llu",
		       len, (unsigned long long)loc->length);
		return -EBADMSG;
	}
	if (loc->uncompressed_length == 0 || loc->uncompressed_length > IM_TOC_MAX_LENGTH) {
		im_err("uncompressed TOC length %llu outside 1..%u",
		       (unsigned long long)loc->uncompressed_length, IM_TOC_MAX_LENGTH);
		return -EBADMSG;
	}

	content_size = ZSTD_getFrameContentSize(compressed, len);
	if (content_size == ZSTD_CONTENTSIZE_ERROR) {
		im_err("TOC decompression failed: not a zstd frame");
		return -EBADMSG;
	}
	if (content_size != ZSTD_CONTENTSIZE_UNKNOWN &&
	    content_size != loc->uncompressed_length) {
		im_err("TOC frame holds %llu bytes, the position annotation gives %llu",
		       content_size, (unsigned long long)loc->uncompressed_length);
		return -EBADMSG;
	}

	buf = malloc(loc->uncompressed_length);
	if (!buf)
		return -ENOMEM;

	/* A frame that would decompress to more than the buffer fails here
	 * with dstSize_tooSmall, so the output stays bounded. */
	n = ZSTD_decompress(buf, loc->uncompressed_length, compressed, len);
	if (ZSTD_isError(n)) {
		im_err("TOC decompression failed: %s", ZSTD_getErrorName(n));
		return -EBADMSG;
	}
	if (n != loc->uncompressed_length) {
		im_err("TOC decompressed to %zu bytes, the position annotation gives %llu",
		       n, (unsigned long long)loc->uncompressed_length);
		return -EBADMSG;
	}

	*ret = im_steal_pointer(&buf);
	return 0;
}
