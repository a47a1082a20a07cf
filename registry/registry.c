/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The read side of the OCI distribution API: manifests, blob ranges for
 * chunk reads, whole blobs for conversion, and blob HEADs. Every body is
 * bounded or verified. Manifests are capped and hashed, and whole blobs are
 * hashed as they stream. A range read returns exactly the bytes requested or
 * an error, whether the registry responds with 206 or with the whole blob.
 */
#include "registry/registry.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "registry/auth.h"
#include "registry/hosts.h"
#include "registry/http.h"
#include "registry/redirects.h"
#include "registry/json.h"
#include "registry/manifest.h"
#include "registry/registry_i.h"

#define DEFAULT_TIMEOUT_SECONDS 30
#define DOCKER_HUB "docker.io"
#define DOCKER_HUB_API "registry-1.docker.io"

static const char manifest_accept[] =
	IM_MEDIA_OCI_MANIFEST ", " IM_MEDIA_OCI_INDEX ", "
	IM_MEDIA_DOCKER_MANIFEST ", " IM_MEDIA_DOCKER_LIST;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *opaque)
{
	struct im_registry *r = opaque;

	(void)easy;
	(void)access;
	pthread_mutex_lock(&r->share_locks[data]);
}

static void share_unlock(CURL *easy, curl_lock_data data, void *opaque)
{
	struct im_registry *r = opaque;

	(void)easy;
	pthread_mutex_unlock(&r->share_locks[data]);
}

static int setup_share(struct im_registry *r)
{
	static const curl_lock_data shared[] = {
		CURL_LOCK_DATA_CONNECT, CURL_LOCK_DATA_DNS, CURL_LOCK_DATA_SSL_SESSION,
	};

	r->share = curl_share_init();
	if (!r->share)
		return -ENOMEM;
	if (curl_share_setopt(r->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(r->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(r->share, CURLSHOPT_USERDATA, r) != CURLSHE_OK)
		return -ENOMEM;

	for (size_t i = 0; i < IM_ARRAY_SIZE(shared); i++)
		if (curl_share_setopt(r->share, CURLSHOPT_SHARE, shared[i]) != CURLSHE_OK)
			return -ENOMEM;
	return 0;
}

/* A host is "name", "name:port", "[v6]" or "[v6]:port". Characters that
 * could change the meaning of a URL are rejected. */
static bool host_is_valid(const char *host)
{
	if (!host[0] || strlen(host) > 255)
		return false;
	for (const char *p = host; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("/?#@\\%", *p))
			return false;
	return true;
}

static char *dup_or_null(const char *s, bool *failed)
{
	char *copy;

	if (!s)
		return NULL;
	copy = strdup(s);
	if (!copy)
		*failed = true;
	return copy;
}

static int copy_options(struct im_registry *r, const struct im_registry_options *opts)
{
	bool failed = false;

	r->plain_http = opts->plain_http;
	r->tls_verify = opts->tls_verify;
	r->timeout_seconds = opts->timeout_seconds ? (long)opts->timeout_seconds
						   : DEFAULT_TIMEOUT_SECONDS;
	r->max_attempts = IM_HTTP_MAX_ATTEMPTS;
	r->ca_file = dup_or_null(opts->ca_file, &failed);
	r->client_cert = dup_or_null(opts->client_cert, &failed);
	r->client_key = dup_or_null(opts->client_key, &failed);
	r->username = dup_or_null(opts->username, &failed);
	r->password = dup_or_null(opts->password, &failed);
	r->identity_token = dup_or_null(opts->identity_token, &failed);
	return failed ? -ENOMEM : 0;
}

int im_registry_new_endpoint(const char *host, const char *url, bool override_path,
			     const struct im_registry_options *opts, struct im_registry **ret)
{
	struct im_registry *r;
	size_t len;
	int rc;

	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK) {
		im_err("libcurl initialization failed: %s", curl_easy_strerror(curl_init_result));
		return -ENOMEM;
	}

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < IM_ARRAY_SIZE(r->share_locks); i++)
		pthread_mutex_init(&r->share_locks[i], NULL);
	pthread_mutex_init(&r->pool_lock, NULL);

	rc = im_registry_slots_init(r, opts->max_requests_per_host);
	if (rc < 0)
		goto fail;

	rc = copy_options(r, opts);
	if (rc < 0)
		goto fail;
	r->plain_http = strncmp(url, "http://", 7) == 0;

	r->host = strdup(host);
	r->base_url = strdup(url);
	if (!r->host || !r->base_url) {
		rc = -ENOMEM;
		goto fail;
	}
	len = strlen(r->base_url);
	while (len > 0 && r->base_url[len - 1] == '/')
		r->base_url[--len] = '\0';
	if (asprintf(&r->api_url, "%s%s", r->base_url, override_path ? "" : "/v2") < 0) {
		r->api_url = NULL;
		rc = -ENOMEM;
		goto fail;
	}

	rc = im_http_origin(r->base_url, &r->origin);
	if (rc < 0) {
		im_err("invalid registry URL \"%.200s\" for \"%.100s\"", url, host);
		goto fail;
	}

	rc = setup_share(r);
	if (rc == 0)
		rc = im_auth_new(&r->auth);
	if (rc == 0)
		rc = im_redirects_new(&r->redirects);
	if (rc < 0)
		goto fail;

	*ret = r;
	return 0;

fail:
	im_registry_free(r);
	return rc;
}

/* The registry's own URL: hosts.toml "server", else from the host name. */
static int origin_url(const char *host, const struct im_registry_options *opts,
		      const struct im_hosts *hosts, char **ret)
{
	const char *api_host = strcmp(host, DOCKER_HUB) == 0 ? DOCKER_HUB_API : host;

	if (hosts->server) {
		*ret = strdup(hosts->server);
		return *ret ? 0 : -ENOMEM;
	}
	if (asprintf(ret, "%s://%s", opts->plain_http ? "http" : "https", api_host) < 0)
		return -ENOMEM;
	return 0;
}

int im_registry_new(const char *host, const struct im_registry_options *opts,
		    struct im_registry **ret)
{
	struct im_registry_options with_certs;
	struct im_hosts hosts = {};
	_cleanup_free_ char *url = NULL;
	struct im_registry *r = NULL;
	int rc;

	if (!host || !opts || !ret || !host_is_valid(host)) {
		im_err("invalid registry host \"%.100s\"", host ? host : "(null)");
		return -EINVAL;
	}

	if (opts->certs_dir) {
		rc = im_hosts_load(opts->certs_dir, host, &hosts);
		if (rc < 0)
			return rc;
	}

	/* Files given as options win over the certs.d directory's. */
	with_certs = *opts;
	if (!with_certs.ca_file)
		with_certs.ca_file = hosts.ca_file;
	if (!with_certs.client_cert) {
		with_certs.client_cert = hosts.client_cert;
		with_certs.client_key = hosts.client_key;
	}

	rc = origin_url(host, opts, &hosts, &url);
	if (rc == 0)
		rc = im_registry_new_endpoint(host, url, false, &with_certs, &r);
	if (rc == 0)
		rc = im_mirrors_setup(r, &hosts, opts);
	im_hosts_free(&hosts);
	if (rc < 0) {
		im_registry_free(r);
		return rc;
	}
	*ret = r;
	return 0;
}

void im_registry_free(struct im_registry *r)
{
	if (!r)
		return;

	im_mirrors_free(r);
	for (size_t i = 0; i < r->n_pool; i++)
		curl_easy_cleanup(r->pool[i]);
	if (r->share)
		curl_share_cleanup(r->share);
	im_auth_free(r->auth);
	im_redirects_free(r->redirects);

	for (size_t i = 0; i < IM_ARRAY_SIZE(r->share_locks); i++)
		pthread_mutex_destroy(&r->share_locks[i]);
	pthread_mutex_destroy(&r->pool_lock);
	im_registry_slots_destroy(r);

	free(r->host);
	free(r->base_url);
	free(r->api_url);
	free(r->origin);
	free(r->ca_file);
	free(r->client_cert);
	free(r->client_key);
	free(r->username);
	if (r->password)
		explicit_bzero(r->password, strlen(r->password));
	free(r->password);
	if (r->identity_token)
		explicit_bzero(r->identity_token, strlen(r->identity_token));
	free(r->identity_token);
	free(r);
}

const char *im_registry_host(const struct im_registry *r)
{
	return r->host;
}

/* Check a repository name against the characters of the distribution
 * grammar, so that a caller's string cannot add a query or a path to a URL. */
static bool repository_is_valid(const char *repo)
{
	if (!repo || !repo[0] || strlen(repo) > 255 || repo[0] == '/')
		return false;
	for (const char *p = repo; *p; p++) {
		bool lower = *p >= 'a' && *p <= 'z';
		bool digit = *p >= '0' && *p <= '9';

		if (!lower && !digit && !strchr("._-/", *p))
			return false;
		if (p[0] == '.' && p[1] == '.')
			return false;
	}
	return true;
}

bool im_registry_reference_is_valid(const char *reference)
{
	struct im_digest digest;

	if (!reference || !reference[0])
		return false;
	if (im_digest_parse(reference, &digest) == 0)
		return true;
	if (strlen(reference) > 128)
		return false;
	for (const char *p = reference; *p; p++) {
		bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9');

		if (!alnum && *p != '_' && *p != '.' && *p != '-')
			return false;
	}
	return reference[0] != '.' && reference[0] != '-';
}

int im_registry_url(struct im_registry *r, const char *repo, const char *kind,
		    const char *name, char **ret)
{
	if (!repository_is_valid(repo)) {
		im_err("invalid repository name \"%.100s\"", repo ? repo : "(null)");
		return -EINVAL;
	}
	if (asprintf(ret, "%s/%s/%s/%s", r->api_url, repo, kind, name) < 0)
		return -ENOMEM;
	return 0;
}

int im_registry_scope(const char *repo, const char *actions, char **ret)
{
	return asprintf(ret, "repository:%s:%s", repo, actions) < 0 ? -ENOMEM : 0;
}

static int blob_url(struct im_registry *r, const char *repo, const struct im_digest *blob,
		    char **ret)
{
	char digest[IM_DIGEST_STRING_LEN];

	im_digest_format(blob, digest);
	return im_registry_url(r, repo, "blobs", digest, ret);
}

/*
 * The media type to report for a manifest: the Content-Type when it names a
 * manifest or an index, else the document's own "mediaType" (some
 * registries send application/json or nothing).
 */
static char *manifest_media_type(const char *content_type, const uint8_t *body, size_t len)
{
	struct json_object *obj;
	const char *field = NULL;
	char *out = NULL;

	if (im_media_type_is_manifest(content_type) || im_media_type_is_index(content_type))
		return strndup(content_type, strcspn(content_type, "; "));

	if (im_json_parse_object(body, len, "manifest", &obj) == 0) {
		if (im_json_get_string(obj, "mediaType", &field) == 0 && field)
			out = strdup(field);
		json_object_put(obj);
	}
	if (!out)
		out = strdup(content_type ? content_type : "");
	return out;
}

static int check_manifest_digest(const char *repo, const char *reference,
				 const struct im_digest *actual)
{
	struct im_digest expected;
	char want[IM_DIGEST_STRING_LEN], got[IM_DIGEST_STRING_LEN];

	if (im_digest_parse(reference, &expected) < 0 || im_digest_equal(&expected, actual))
		return 0;

	im_digest_format(&expected, want);
	im_digest_format(actual, got);
	im_err("manifest \"%s@%s\" failed verification: the registry sent bytes with digest %s",
	       repo, want, got);
	return -EBADMSG;
}

static int get_manifest_at(struct im_registry *r, const char *repo,
			   const char *reference, uint8_t **ret_body,
			   size_t *ret_len, char **ret_media_type,
			   struct im_digest *ret_digest)
{
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *scope = NULL;
	struct im_http_buffer body = {
		.max = IM_MANIFEST_MAX_LENGTH,
		.description = "manifest",
	};
	struct im_http_sink sink = im_http_buffer_sink(&body);
	struct im_http_request req = {
		.method = "GET",
		.accept = manifest_accept,
		.sink = &sink,
	};
	struct im_http_response resp;
	struct im_digest digest;
	char *media_type;
	int rc;

	if (!im_registry_reference_is_valid(reference)) {
		im_err("invalid manifest reference \"%.140s\"", reference ? reference : "(null)");
		return -EINVAL;
	}
	rc = im_registry_url(r, repo, "manifests", reference, &url);
	if (rc == 0)
		rc = im_registry_scope(repo, "pull", &scope);
	if (rc < 0)
		return rc;
	req.url = url;
	req.scope = scope;

	rc = im_http_perform(r, &req, &resp);
	if (rc < 0)
		goto out;

	im_sha256(body.data, body.len, &digest);
	rc = check_manifest_digest(repo, reference, &digest);
	if (rc < 0)
		goto out;

	media_type = manifest_media_type(resp.content_type, body.data, body.len);
	if (!media_type) {
		rc = -ENOMEM;
		goto out;
	}

	*ret_body = im_steal_pointer(&body.data);
	*ret_len = body.len;
	*ret_media_type = media_type;
	*ret_digest = digest;
out:
	im_http_response_clear(&resp);
	free(body.data);
	return rc;
}

int im_registry_get_manifest(struct im_registry *r, const char *repo,
			     const char *reference, uint8_t **ret_body,
			     size_t *ret_len, char **ret_media_type,
			     struct im_digest *ret_digest)
{
	struct im_digest by_digest;
	unsigned capability;
	struct im_registry *mirror;
	size_t i = 0;
	int rc;

	/* A manifest by digest is content like a blob; a tag needs "resolve". */
	capability = reference && im_digest_parse(reference, &by_digest) == 0 ? IM_HOST_PULL
									       : IM_HOST_RESOLVE;
	while ((mirror = im_mirror_next(r, &i, capability))) {
		rc = get_manifest_at(mirror, repo, reference, ret_body, ret_len, ret_media_type,
				     ret_digest);
		im_mirror_report(r, i - 1, rc);
		if (rc == 0)
			return 0;
	}
	return get_manifest_at(r, repo, reference, ret_body, ret_len, ret_media_type, ret_digest);
}

/* State of a range read, filled by range_data(). */
struct range_read {
	const char *label;  /* "blob sha256:... range A+N", for messages */
	uint8_t *buf;
	uint64_t offset;
	uint64_t len;
	uint64_t got;       /* bytes stored in buf */
	uint64_t skipped;   /* bytes of a whole-blob response skipped before offset */
	bool checked;       /* the status and Content-Range were checked */
};

static int range_reset(void *opaque)
{
	struct range_read *rr = opaque;

	rr->got = 0;
	rr->skipped = 0;
	rr->checked = false;
	return 0;
}

/* Check "bytes FIRST-LAST/TOTAL" (TOTAL may be "*") against the request. */
static bool content_range_matches(const char *value, uint64_t first, uint64_t last)
{
	uint64_t a, b;
	char rest[2];
	int n;

	if (!value || sscanf(value, "bytes %" SCNu64 "-%" SCNu64 "%1[/]%n", &a, &b, rest, &n) < 3)
		return false;
	return a == first && b == last;
}

static int range_check(struct range_read *rr, const struct im_http_response *resp)
{
	rr->checked = true;
	if (resp->status == 200)
		return 0;
	if (resp->status != 206) {
		im_err("read of %s failed: unexpected HTTP %ld", rr->label, resp->status);
		return -EIO;
	}
	if (!content_range_matches(resp->content_range, rr->offset, rr->offset + rr->len - 1)) {
		im_err("read of %s failed: the registry answered with Content-Range \"%.80s\"",
		       rr->label, resp->content_range ? resp->content_range : "(none)");
		return -EIO;
	}
	return 0;
}

/*
 * Store the bytes of [offset, offset + len) into buf. A 206 body must be
 * exactly len bytes. A 200 body is the whole blob: the bytes before offset
 * are skipped, and the transfer stops once buf is full.
 */
static int range_data(void *opaque, const struct im_http_response *resp,
		      const void *data, size_t n)
{
	struct range_read *rr = opaque;
	const uint8_t *p = data;
	uint64_t take;
	int rc;

	if (!rr->checked) {
		rc = range_check(rr, resp);
		if (rc < 0)
			return rc;
	}

	if (resp->status == 200 && rr->skipped < rr->offset) {
		uint64_t skip = rr->offset - rr->skipped;

		if (skip > n)
			skip = n;
		rr->skipped += skip;
		p += skip;
		n -= (size_t)skip;
	}

	take = rr->len - rr->got;
	if (n > take && resp->status == 206) {
		im_err("read of %s failed: the registry sent more bytes than the range", rr->label);
		return -EIO;
	}
	if (take > n)
		take = n;
	memcpy(rr->buf + rr->got, p, (size_t)take);
	rr->got += take;

	return resp->status == 200 && rr->got == rr->len ? 1 : 0;
}

static int get_blob_range_at(struct im_registry *r, const char *repo,
			     const struct im_digest *blob, uint64_t offset,
			     uint64_t len, void *buf)
{
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *scope = NULL;
	char digest[IM_DIGEST_STRING_LEN];
	char label[IM_DIGEST_STRING_LEN + 64];
	struct range_read rr = { .label = label, .buf = buf, .offset = offset, .len = len };
	struct im_http_sink sink = { range_reset, range_data, &rr };
	struct im_http_request req = {
		.method = "GET",
		.has_range = true,
		.range_first = offset,
		.flags = IM_HTTP_FOLLOW_REDIRECTS,
		.sink = &sink,
	};
	struct im_http_response resp;
	uint64_t end;
	int rc;

	if (len == 0)
		return 0;
	if (!buf || len > SIZE_MAX || im_add_u64(offset, len, &end) < 0)
		return -EINVAL;
	req.range_last = end - 1;

	im_digest_format(blob, digest);
	snprintf(label, sizeof(label), "blob %s range %" PRIu64 "+%" PRIu64, digest, offset, len);

	rc = blob_url(r, repo, blob, &url);
	if (rc == 0)
		rc = im_registry_scope(repo, "pull", &scope);
	if (rc < 0)
		return rc;
	req.url = url;
	req.scope = scope;

	rc = im_http_perform(r, &req, &resp);
	im_http_response_clear(&resp);
	if (rc < 0)
		return rc;

	if (rr.got != len) {
		im_err("read of %s failed: the body ended after %" PRIu64 " of %" PRIu64 " bytes",
		       label, rr.got, len);
		return -EIO;
	}
	return 0;
}

/* NOTE: bytes from a mirror are only as good as the caller's check: chunk
 * reads are verified against the TOC's SHA-256 by the fetcher. */
int im_registry_get_blob_range(struct im_registry *r, const char *repo,
			       const struct im_digest *blob, uint64_t offset,
			       uint64_t len, void *buf)
{
	struct im_registry *mirror;
	size_t i = 0;
	int rc;

	while ((mirror = im_mirror_next(r, &i, IM_HOST_PULL))) {
		rc = get_blob_range_at(mirror, repo, blob, offset, len, buf);
		im_mirror_report(r, i - 1, rc);
		if (rc == 0)
			return 0;
	}
	return get_blob_range_at(r, repo, blob, offset, len, buf);
}

/* State of a whole-blob download, fed by stream_data(). It may pass through
 * several hosts: a mirror that fails part way is followed by the next host,
 * which is asked for the rest with an open-ended Range. */
struct blob_stream {
	im_blob_sink_fn sink;
	void *opaque;
	struct im_sha256_ctx *sha;
	uint64_t delivered;   /* bytes handed to sink */
	uint64_t start;       /* delivered when the current request was sent */
	uint64_t skipped;     /* bytes of a 200 body skipped up to start */
	bool checked;         /* the status of the current response was checked */
	int sink_error;       /* the sink's error, which ends the download */
};

static int stream_reset(void *opaque)
{
	struct blob_stream *bs = opaque;

	/* NOTE: a retry on the same host after the sink has seen bytes of this
	 * response would deliver them twice, so that retry fails instead and
	 * only the next host (a mirror's fallback) resumes with a Range. */
	if (bs->delivered > bs->start)
		return -EIO;
	if (bs->delivered == 0)
		im_sha256_reset(bs->sha);
	bs->skipped = 0;
	bs->checked = false;
	return 0;
}

/* A resumed download takes 206 from start, or 200 whose first start bytes
 * are skipped. */
static int stream_check(struct blob_stream *bs, const struct im_http_response *resp)
{
	uint64_t first;

	bs->checked = true;
	if (resp->status == 200)
		return 0;
	if (resp->status == 206 && bs->start > 0 && resp->content_range &&
	    sscanf(resp->content_range, "bytes %" SCNu64 "-", &first) == 1 && first == bs->start)
		return 0;
	im_err("blob download failed: unexpected HTTP %ld (Content-Range \"%.80s\") "
	       "for a download from byte %" PRIu64, resp->status,
	       resp->content_range ? resp->content_range : "(none)", bs->start);
	return -EIO;
}

static int stream_data(void *opaque, const struct im_http_response *resp,
		       const void *data, size_t n)
{
	struct blob_stream *bs = opaque;
	const uint8_t *p = data;
	int rc;

	if (!bs->checked) {
		rc = stream_check(bs, resp);
		if (rc < 0)
			return rc;
	}

	if (resp->status == 200 && bs->skipped < bs->start) {
		uint64_t skip = bs->start - bs->skipped;

		if (skip > n)
			skip = n;
		bs->skipped += skip;
		p += skip;
		n -= (size_t)skip;
		if (n == 0)
			return 0;
	}

	im_sha256_update(bs->sha, p, n);
	rc = bs->sink(bs->opaque, p, n);
	if (rc < 0) {
		bs->sink_error = rc;
		return rc;
	}
	bs->delivered += n;
	return 0;
}

static int verify_blob(const struct im_digest *expected, const struct im_digest *actual)
{
	char want[IM_DIGEST_STRING_LEN], got[IM_DIGEST_STRING_LEN];

	if (im_digest_equal(expected, actual))
		return 0;
	im_digest_format(expected, want);
	im_digest_format(actual, got);
	im_err("blob %s failed verification: the registry sent bytes with digest %s", want, got);
	return -EBADMSG;
}

/* Stream the rest of the blob, from bs->delivered on, from one host. */
static int get_blob_at(struct im_registry *r, const char *repo, const struct im_digest *blob,
		       struct blob_stream *bs)
{
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *scope = NULL;
	struct im_http_sink http_sink = { stream_reset, stream_data, bs };
	struct im_http_request req = {
		.method = "GET",
		.flags = IM_HTTP_FOLLOW_REDIRECTS | IM_HTTP_STREAMING,
		.sink = &http_sink,
		.has_range = bs->delivered > 0,
		.range_first = bs->delivered,
		.range_last = UINT64_MAX,
	};
	struct im_http_response resp;
	int rc;

	rc = blob_url(r, repo, blob, &url);
	if (rc == 0)
		rc = im_registry_scope(repo, "pull", &scope);
	if (rc < 0)
		return rc;
	req.url = url;
	req.scope = scope;

	bs->start = bs->delivered;
	if (bs->start > 0) {
		char digest[IM_DIGEST_STRING_LEN];

		im_digest_format(blob, digest);
		im_info("resuming the download of blob %s at byte %" PRIu64 " from \"%s\"",
			digest, bs->start, r->host);
	}
	rc = im_http_perform(r, &req, &resp);
	im_http_response_clear(&resp);
	return rc;
}

/* Mirrors are tried first, as for range reads. A mirror that fails part
 * way costs nothing already received: the next host resumes the stream. */
int im_registry_get_blob(struct im_registry *r, const char *repo,
			 const struct im_digest *blob, im_blob_sink_fn sink,
			 void *opaque)
{
	struct blob_stream bs = { .sink = sink, .opaque = opaque };
	struct im_registry *mirror;
	struct im_digest actual;
	size_t i = 0;
	int rc = -EIO;
	bool done = false;

	if (!sink)
		return -EINVAL;
	bs.sha = im_sha256_new();
	if (!bs.sha)
		return -ENOMEM;

	while (!done && (mirror = im_mirror_next(r, &i, IM_HOST_PULL))) {
		rc = get_blob_at(mirror, repo, blob, &bs);
		im_mirror_report(r, i - 1, rc);
		done = rc == 0 || bs.sink_error < 0;
	}
	if (!done)
		rc = get_blob_at(r, repo, blob, &bs);

	if (rc == 0) {
		im_sha256_final(bs.sha, &actual);
		rc = verify_blob(blob, &actual);
	}
	im_sha256_free(bs.sha);
	return rc;
}

static int get_blob_buffer_at(struct im_registry *r, const char *repo,
			      const struct im_digest *blob, size_t max,
			      uint8_t **ret_body, size_t *ret_len)
{
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *scope = NULL;
	char label[IM_DIGEST_STRING_LEN + 8];
	struct im_http_buffer body = { .max = max, .description = label };
	struct im_http_sink sink = im_http_buffer_sink(&body);
	struct im_http_request req = {
		.method = "GET",
		.flags = IM_HTTP_FOLLOW_REDIRECTS,
		.sink = &sink,
	};
	struct im_http_response resp;
	struct im_digest actual;
	int rc;

	im_digest_format(blob, label + 5);
	memcpy(label, "blob ", 5);

	rc = blob_url(r, repo, blob, &url);
	if (rc == 0)
		rc = im_registry_scope(repo, "pull", &scope);
	if (rc < 0)
		return rc;
	req.url = url;
	req.scope = scope;

	rc = im_http_perform(r, &req, &resp);
	im_http_response_clear(&resp);
	if (rc == 0) {
		im_sha256(body.data, body.len, &actual);
		rc = verify_blob(blob, &actual);
	}
	if (rc < 0) {
		free(body.data);
		return rc;
	}

	/* An empty blob still gets a buffer the caller can free. */
	*ret_body = body.data ? body.data : malloc(1);
	*ret_len = body.len;
	return *ret_body ? 0 : -ENOMEM;
}

int im_registry_get_blob_buffer(struct im_registry *r, const char *repo,
				const struct im_digest *blob, size_t max,
				uint8_t **ret_body, size_t *ret_len)
{
	struct im_registry *mirror;
	size_t i = 0;
	int rc;

	while ((mirror = im_mirror_next(r, &i, IM_HOST_PULL))) {
		rc = get_blob_buffer_at(mirror, repo, blob, max, ret_body, ret_len);
		im_mirror_report(r, i - 1, rc);
		if (rc == 0)
			return 0;
	}
	return get_blob_buffer_at(r, repo, blob, max, ret_body, ret_len);
}

int im_registry_blob_exists(struct im_registry *r, const char *repo,
			    const struct im_digest *blob, uint64_t *ret_size)
{
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *scope = NULL;
	struct im_http_request req = {
		.method = "HEAD",
		.flags = IM_HTTP_FOLLOW_REDIRECTS | IM_HTTP_QUIET_NOT_FOUND,
	};
	struct im_http_response resp;
	int rc;

	rc = blob_url(r, repo, blob, &url);
	if (rc == 0)
		rc = im_registry_scope(repo, "pull", &scope);
	if (rc < 0)
		return rc;
	req.url = url;
	req.scope = scope;

	rc = im_http_perform(r, &req, &resp);
	if (rc == 0 && ret_size)
		*ret_size = resp.has_content_length ? resp.content_length : 0;
	im_http_response_clear(&resp);

	if (rc == -ENOENT)
		return 0;
	return rc < 0 ? rc : 1;
}
