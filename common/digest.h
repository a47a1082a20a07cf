/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SHA-256 digests in the OCI form "sha256:<64 lowercase hex>", and a thin
 * wrapper over OpenSSL so that no other file includes it. Only sha256 is
 * accepted: it is what every registry and both lazy layer formats use.
 */
#ifndef IM_DIGEST_H
#define IM_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IM_SHA256_LEN 32
/* "sha256:" + 64 hex digits + NUL */
#define IM_DIGEST_STRING_LEN (7 + 2 * IM_SHA256_LEN + 1)

struct im_digest {
	uint8_t bytes[IM_SHA256_LEN];
};

/*
 * Parse "sha256:<hex>". Upper-case hex and other algorithms are rejected.
 * Return: 0, or -EINVAL when text is not a sha256 digest.
 */
int im_digest_parse(const char *text, struct im_digest *ret);

/* Same as im_digest_parse() but for a text that is not NUL-terminated. */
int im_digest_parse_n(const char *text, size_t len, struct im_digest *ret);

/* Format as "sha256:<hex>" into out, which has IM_DIGEST_STRING_LEN bytes. */
void im_digest_format(const struct im_digest *digest, char *out);

/* Format only the 64 hex digits (plus NUL) into out. */
void im_digest_format_hex(const struct im_digest *digest, char *out);

bool im_digest_equal(const struct im_digest *a, const struct im_digest *b);

/* One-shot SHA-256 of a buffer. */
void im_sha256(const void *data, size_t len, struct im_digest *ret);

/* Incremental SHA-256; the context is opaque. */
struct im_sha256_ctx;

struct im_sha256_ctx *im_sha256_new(void);
void im_sha256_update(struct im_sha256_ctx *ctx, const void *data, size_t len);
/* Finish and write the digest; the context may then be freed or reset. */
void im_sha256_final(struct im_sha256_ctx *ctx, struct im_digest *ret);
void im_sha256_reset(struct im_sha256_ctx *ctx);
void im_sha256_free(struct im_sha256_ctx *ctx);

#endif
