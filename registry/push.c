/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The write side of the OCI distribution API, for `imgmount convert`: blob
 * uploads as one monolithic PUT (POST /v2/REPO/blobs/uploads/, then PUT to
 * the returned Location with ?digest=), skipped when a HEAD finds the blob,
 * and manifest PUTs. Bodies stream from a file descriptor or a buffer, so a
 * layer of any size never sits in memory.
 */
#include "registry/registry.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "registry/http.h"
#include "registry/manifest.h"
#include "registry/registry_i.h"

/* POST an upload session. Return: 0 with the absolute upload URL. */
static int start_upload(struct im_registry *r, const char *repo, const char *scope,
			char **ret_url)
{
	_cleanup_free_ char *url = NULL;
	struct im_http_request req = {
		.method = "POST",
		.scope = scope,
	};
	struct im_http_response resp;
	int rc;

	rc = im_registry_url(r, repo, "blobs", "uploads/", &url);
	if (rc < 0)
		return rc;
	req.url = url;

	rc = im_http_perform(r, &req, &resp);
	if (rc == 0 && resp.status != 202)
		im_warn("registry \"%s\" answered an upload request with HTTP %ld instead of 202",
			r->host, resp.status);
	if (rc == 0 && !resp.location) {
		im_err("upload to repository \"%s\" failed: the registry sent no valid Location",
		       repo);
		rc = -EIO;
	}
	if (rc == 0)
		*ret_url = im_steal_pointer(&resp.location);
	im_http_response_clear(&resp);
	return rc;
}

static int finish_upload(struct im_registry *r, const char *repo, const char *scope,
			 const char *location, const struct im_http_source *source,
			 const struct im_digest *digest)
{
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *query = NULL;
	char text[IM_DIGEST_STRING_LEN];
	struct im_http_request req = {
		.method = "PUT",
		.scope = scope,
		.content_type = "application/octet-stream",
		.flags = IM_HTTP_STREAMING,
		.source = source,
	};
	struct im_http_response resp;
	int rc;

	im_digest_format(digest, text);
	if (asprintf(&query, "digest=%s", text) < 0)
		return -ENOMEM;

	/* The Location keeps its own query (the upload state) and gets digest appended. */
	rc = im_http_resolve_url(NULL, location, query, &url);
	if (rc < 0) {
		im_err("upload of blob %s to repository \"%s\" failed: invalid upload URL",
		       text, repo);
		return rc;
	}
	req.url = url;

	rc = im_http_perform(r, &req, &resp);
	if (rc == 0 && resp.status != 201)
		im_warn("registry \"%s\" answered the upload of blob %s with HTTP %ld instead of 201",
			r->host, text, resp.status);
	im_http_response_clear(&resp);
	return rc;
}

static int push_blob(struct im_registry *r, const char *repo,
		     const struct im_http_source *source, const struct im_digest *digest)
{
	_cleanup_free_ char *scope = NULL;
	_cleanup_free_ char *location = NULL;
	uint64_t size = 0;
	int rc;

	if (!digest || source->size > INT64_MAX)
		return -EINVAL;

	rc = im_registry_blob_exists(r, repo, digest, &size);
	if (rc < 0)
		return rc;
	if (rc == 1 && size == source->size) {
		im_debug("blob already in repository \"%s\": upload skipped", repo);
		return 0;
	}

	rc = im_registry_scope(repo, "pull,push", &scope);
	if (rc < 0)
		return rc;

	/* A PUT sent again after a 5xx can find its upload session gone (404
	 * BLOB_UPLOAD_UNKNOWN): one new session is worth a try then. */
	for (int attempt = 1;; attempt++) {
		rc = start_upload(r, repo, scope, &location);
		if (rc < 0)
			return rc;

		rc = finish_upload(r, repo, scope, location, source, digest);
		free(im_steal_pointer(&location));
		if (rc != -ENOENT || attempt == 2)
			return rc;
		im_warn("upload session in repository \"%s\" was lost; starting a new one", repo);
	}
}

int im_registry_push_blob_fd(struct im_registry *r, const char *repo, int fd,
			     uint64_t size, const struct im_digest *digest)
{
	struct im_http_source source = { .fd = fd, .size = size };

	if (fd < 0)
		return -EBADF;
	return push_blob(r, repo, &source, digest);
}

int im_registry_push_blob_buffer(struct im_registry *r, const char *repo,
				 const void *data, size_t len,
				 const struct im_digest *digest)
{
	struct im_http_source source = { .fd = -1, .buf = data, .size = len };

	if (!data && len > 0)
		return -EINVAL;
	return push_blob(r, repo, &source, digest);
}

int im_registry_put_manifest(struct im_registry *r, const char *repo,
			     const char *reference, const char *media_type,
			     const void *body, size_t len)
{
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *scope = NULL;
	struct im_http_source source = { .fd = -1, .buf = body, .size = len };
	struct im_http_request req = {
		.method = "PUT",
		.content_type = media_type,
		.source = &source,
	};
	struct im_http_response resp;
	int rc;

	if (!media_type || !body || len > IM_MANIFEST_MAX_LENGTH)
		return -EINVAL;
	if (!im_registry_reference_is_valid(reference)) {
		im_err("invalid manifest reference \"%.140s\"", reference ? reference : "(null)");
		return -EINVAL;
	}
	if (strpbrk(media_type, "\r\n")) {
		im_err("invalid media type \"%.140s\" for a manifest", media_type);
		return -EINVAL;
	}

	rc = im_registry_url(r, repo, "manifests", reference, &url);
	if (rc == 0)
		rc = im_registry_scope(repo, "pull,push", &scope);
	if (rc < 0)
		return rc;
	req.url = url;
	req.scope = scope;

	rc = im_http_perform(r, &req, &resp);
	if (rc == 0 && resp.status != 201)
		im_warn("registry \"%s\" answered a manifest upload with HTTP %ld instead of 201",
			r->host, resp.status);
	im_http_response_clear(&resp);
	return rc;
}
