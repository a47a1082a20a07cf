/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI distribution client for one registry host, on libcurl.
 *
 * Thread safety: every function may be called from any number of threads
 * at once on one struct im_registry; connections are reused across calls.
 * Auth: anonymous, bearer tokens from the WWW-Authenticate challenge
 * (cached per scope, renewed on expiry and on 401), and basic auth.
 * Plain HTTP is used only when the options allow it, or for a mirror or
 * server that certs.d/HOST/hosts.toml names with an http:// URL.
 * Mirrors from hosts.toml are tried in file order before the registry for
 * manifests and blob reads; one that fails is skipped for a back-off time.
 *
 * Every response is untrusted: sizes are capped before allocation, digests
 * are checked where the protocol gives one, and a range request answered
 * with 200 and the whole blob is handled by skipping to the offset.
 */
#ifndef IM_REGISTRY_H
#define IM_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

#define IM_MANIFEST_MAX_LENGTH (4u << 20)

struct im_registry_options {
	bool plain_http;          /* use http:// instead of https:// */
	bool tls_verify;          /* verify the server certificate (https) */
	const char *ca_file;      /* CA bundle used instead of the system's, or NULL */
	const char *client_cert;  /* PEM client certificate for TLS, or NULL */
	const char *client_key;   /* its PEM key, or NULL when client_cert has it */
	/* containerd's certs.d directory (certs.d/HOST/hosts.toml mirrors, and
	 * ca.crt, client.cert, client.key for fields left NULL above), or NULL */
	const char *certs_dir;
	const char *username;     /* basic credentials, or NULL */
	const char *password;
	/* OAuth2 refresh token ("identitytoken" of a Docker config file),
	 * exchanged at the token realm with grant_type=refresh_token; or NULL */
	const char *identity_token;
	/* Whether each hosts.toml mirror gets credentials of its own, found by
	 * im_credentials_find_repository() for the mirror's host and
	 * repository in auth_file (NULL: the default files). Mirrors never get
	 * username, password or identity_token above; without this flag they
	 * are reached anonymously. */
	bool mirror_credentials;
	const char *auth_file;
	const char *repository;   /* for namespace-scoped keys, or NULL */
	/* Deadline of one range read or small fetch, every retry included;
	 * 0 means the default (30). Whole-blob streams only fail when no
	 * byte arrives for this long. */
	unsigned timeout_seconds;
	/* Requests in flight at once to this host (and to each mirror, counted
	 * separately); more wait for a free slot. 0 means the default (16). */
	unsigned max_requests_per_host;
};

struct im_registry;

/* Return: 0 or -ENOMEM/-EINVAL. host is "host" or "host:port". */
int im_registry_new(const char *host, const struct im_registry_options *opts,
		    struct im_registry **ret);
void im_registry_free(struct im_registry *r);
const char *im_registry_host(const struct im_registry *r);

/*
 * GET /v2/REPO/manifests/REFERENCE (a tag or "sha256:..."), accepting OCI
 * and Docker schema 2 manifests and indexes. *ret_digest is the SHA-256 of
 * the bytes received; when reference is a digest the bytes must match it
 * (else -EBADMSG). Caller frees *ret_body and *ret_media_type.
 * Return: 0, -ENOENT (404), -EACCES (401/403 after auth), -EBADMSG,
 * -EFBIG (over IM_MANIFEST_MAX_LENGTH), -EIO (network, 5xx after retries).
 */
int im_registry_get_manifest(struct im_registry *r, const char *repo,
			     const char *reference, uint8_t **ret_body,
			     size_t *ret_len, char **ret_media_type,
			     struct im_digest *ret_digest);

/*
 * Read len bytes at offset of blob into buf with a range request. Exactly
 * len bytes or an error: a short body is an error, never partial data.
 * Return: 0, -ENOENT, -EACCES, -EIO.
 */
int im_registry_get_blob_range(struct im_registry *r, const char *repo,
			       const struct im_digest *blob, uint64_t offset,
			       uint64_t len, void *buf);

/*
 * Stream a whole blob to sink, checking its SHA-256 at the end (-EBADMSG on
 * mismatch, after the sink has seen the bytes: callers must treat their
 * output as invalid then). A sink returning < 0 stops the transfer and that
 * value is returned.
 */
typedef int (*im_blob_sink_fn)(void *opaque, const void *data, size_t len);
int im_registry_get_blob(struct im_registry *r, const char *repo,
			 const struct im_digest *blob, im_blob_sink_fn sink,
			 void *opaque);

/* Fetch a small blob (a config) of at most max bytes, verified. */
int im_registry_get_blob_buffer(struct im_registry *r, const char *repo,
				const struct im_digest *blob, size_t max,
				uint8_t **ret_body, size_t *ret_len);

/* HEAD the blob. Return: 1 present (size in *ret_size if not NULL),
 * 0 absent, or a negative errno. */
int im_registry_blob_exists(struct im_registry *r, const char *repo,
			    const struct im_digest *blob, uint64_t *ret_size);

/* Upload a blob (POST then PUT with the digest), skipped when it exists.
 * The fd is read from offset 0 for size bytes. */
int im_registry_push_blob_fd(struct im_registry *r, const char *repo, int fd,
			     uint64_t size, const struct im_digest *digest);
int im_registry_push_blob_buffer(struct im_registry *r, const char *repo,
				 const void *data, size_t len,
				 const struct im_digest *digest);

/* PUT /v2/REPO/manifests/REFERENCE with the given media type. */
int im_registry_put_manifest(struct im_registry *r, const char *repo,
			     const char *reference, const char *media_type,
			     const void *body, size_t len);

#endif
