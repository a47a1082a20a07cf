/* SPDX-License-Identifier: Apache-2.0 */
#include "common/digest.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

static const char prefix[] = "sha256:";

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int im_digest_parse_n(const char *text, size_t len, struct im_digest *ret)
{
	size_t plen = sizeof(prefix) - 1;

	if (!text || len != plen + 2 * IM_SHA256_LEN)
		return -EINVAL;
	if (memcmp(text, prefix, plen) != 0)
		return -EINVAL;

	text += plen;
	for (size_t i = 0; i < IM_SHA256_LEN; i++) {
		int hi = hex_value(text[2 * i]);
		int lo = hex_value(text[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		ret->bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int im_digest_parse(const char *text, struct im_digest *ret)
{
	if (!text)
		return -EINVAL;
	return im_digest_parse_n(text, strlen(text), ret);
}

void im_digest_format_hex(const struct im_digest *digest, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < IM_SHA256_LEN; i++) {
		out[2 * i] = hex[digest->bytes[i] >> 4];
		out[2 * i + 1] = hex[digest->bytes[i] & 0xf];
	}
	out[2 * IM_SHA256_LEN] = '\0';
}

void im_digest_format(const struct im_digest *digest, char *out)
{
	memcpy(out, prefix, sizeof(prefix) - 1);
	im_digest_format_hex(digest, out + sizeof(prefix) - 1);
}

bool im_digest_equal(const struct im_digest *a, const struct im_digest *b)
{
	return memcmp(a->bytes, b->bytes, IM_SHA256_LEN) == 0;
}

void im_sha256(const void *data, size_t len, struct im_digest *ret)
{
	unsigned int out_len = IM_SHA256_LEN;

	EVP_Digest(data, len, ret->bytes, &out_len, EVP_sha256(), NULL);
}

struct im_sha256_ctx *im_sha256_new(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx)
		return NULL;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return NULL;
	}
	return (struct im_sha256_ctx *)ctx;
}

void im_sha256_update(struct im_sha256_ctx *ctx, const void *data, size_t len)
{
	EVP_DigestUpdate((EVP_MD_CTX *)ctx, data, len);
}

void im_sha256_final(struct im_sha256_ctx *ctx, struct im_digest *ret)
{
	unsigned int out_len = IM_SHA256_LEN;

	EVP_DigestFinal_ex((EVP_MD_CTX *)ctx, ret->bytes, &out_len);
}

void im_sha256_reset(struct im_sha256_ctx *ctx)
{
	EVP_DigestInit_ex((EVP_MD_CTX *)ctx, EVP_sha256(), NULL);
}

void im_sha256_free(struct im_sha256_ctx *ctx)
{
	EVP_MD_CTX_free((EVP_MD_CTX *)ctx);
}
