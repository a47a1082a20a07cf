/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP exchanges with a registry on libcurl easy handles taken from a small
 * per-registry pool. Redirects are followed here, not by libcurl, so that
 * the bearer token, a header libcurl would forward to any host, goes only
 * to the registry's own origin. The target of a blob GET's redirect is
 * reused until it fails (registry/redirects.h). The body of a 2xx response streams into a
 * sink. Other bodies are dropped once their registry error code is read.
 * Every request and body byte is counted in im_stats.
 */
#include "registry/http.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "registry/auth.h"
#include "registry/redirects.h"

#define BACKOFF_FIRST_MS 250
/* Retry-After values above this are capped to it. */
#define RETRY_AFTER_MAX_SECONDS 10
#define MAX_REDIRECTS 5
#define CONNECT_TIMEOUT_SECONDS 10L
/* Maximum length of a response header value kept. Longer ones count as absent. */
#define HEADER_VALUE_MAX_LENGTH 8192
/* Bytes of an error body read for its error code. The rest is dropped. */
#define ERROR_BODY_MAX_LENGTH 4096
#define USER_AGENT "imgmount"

struct transfer {
	CURL *easy;
	const struct im_http_request *req;
	struct im_http_response *resp;
	char *url;                  /* the URL being sent (owned) */
	bool headers_read;
	int sink_error;             /* first error the sink returned */
	bool sink_done;             /* the sink stopped the transfer on purpose */
	bool error_body_full;       /* an error body was cut off on purpose */
	int source_error;           /* reading the request body failed */
	uint64_t upload_pos;
	char error_body[ERROR_BODY_MAX_LENGTH];
	size_t error_body_len;
	char curl_error[CURL_ERROR_SIZE];
	uint64_t deadline_ns;       /* im_now_ns() limit of the whole call; 0 for none */
	char cause[320];            /* why the last attempt failed, for the log */
	bool logged;                /* the failure was already logged */
};

void im_http_response_clear(struct im_http_response *resp)
{
	free(resp->content_type);
	free(resp->content_range);
	free(resp->location);
	free(resp->www_authenticate);
	free(resp->docker_content_digest);
	*resp = (struct im_http_response){};
}

void im_http_url_for_log(const char *url, char *out, size_t size)
{
	const char *scheme_end = strstr(url, "://");
	const char *start = url;
	size_t prefix = 0;
	size_t len;

	/* Drop "user:password@" after the scheme. */
	if (scheme_end) {
		const char *host = scheme_end + 3;
		const char *at = strchr(host, '@');
		const char *slash = strchr(host, '/');

		prefix = (size_t)(host - url);
		if (at && (!slash || at < slash))
			start = at + 1;
		else
			start = host;
	}

	len = strcspn(start, "?#");
	snprintf(out, size, "%.*s%.*s", (int)prefix, url, (int)len, start);
}

int im_http_origin(const char *url, char **ret)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;

	for (char *p = host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	r = asprintf(ret, "%s://%s:%s", scheme, host, port) < 0 ? -ENOMEM : 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return r;
}

bool im_http_same_origin(const struct im_registry *r, const char *url)
{
	_cleanup_free_ char *origin = NULL;

	if (im_http_origin(url, &origin) < 0)
		return false;
	return strcmp(origin, r->origin) == 0;
}

int im_http_resolve_url(const char *base, const char *reference, const char *query,
			char **ret)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *out = NULL;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;

	/* Setting a relative URL on a handle that has one resolves it. */
	if (base && curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
		goto out;
	if (curl_url_set(u, CURLUPART_URL, reference, 0) != CURLUE_OK)
		goto out;

	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		goto out;
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		goto out;

	if (query && curl_url_set(u, CURLUPART_QUERY, query,
				  CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK)
		goto out;

	if (curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK)
		goto out;
	*ret = strdup(out);
	r = *ret ? 0 : -ENOMEM;
out:
	curl_free(scheme);
	curl_free(out);
	curl_url_cleanup(u);
	return r;
}

static CURL *handle_get(struct im_registry *r)
{
	CURL *easy = NULL;

	pthread_mutex_lock(&r->pool_lock);
	if (r->n_pool > 0)
		easy = r->pool[--r->n_pool];
	pthread_mutex_unlock(&r->pool_lock);

	return easy ? easy : curl_easy_init();
}

static void handle_put(struct im_registry *r, CURL *easy)
{
	pthread_mutex_lock(&r->pool_lock);
	if (r->n_pool < IM_REGISTRY_HANDLE_POOL) {
		r->pool[r->n_pool++] = easy;
		easy = NULL;
	}
	pthread_mutex_unlock(&r->pool_lock);

	if (easy)
		curl_easy_cleanup(easy);
}

/* Copy of the named header of the latest response, or NULL. */
static char *header_dup(CURL *easy, const char *name)
{
	struct curl_header *h;

	if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return NULL;
	if (strlen(h->value) > HEADER_VALUE_MAX_LENGTH)
		return NULL;
	return strdup(h->value);
}

/* Every WWW-Authenticate header of the latest response joined with ", ",
 * which RFC 9110 makes equivalent to separate headers. */
static char *challenges_dup(CURL *easy)
{
	struct curl_header *h;
	char *joined = NULL;
	size_t amount, len = 0;

	if (curl_easy_header(easy, "WWW-Authenticate", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return NULL;

	amount = h->amount;
	for (size_t i = 0; i < amount; i++) {
		size_t n;
		char *grown;

		if (curl_easy_header(easy, "WWW-Authenticate", i, CURLH_HEADER, -1, &h) != CURLHE_OK)
			break;
		n = strlen(h->value);
		if (len + n + 3 > IM_AUTH_CHALLENGE_MAX_LENGTH)
			break;

		grown = realloc(joined, len + n + 3);
		if (!grown)
			break;
		joined = grown;
		len += (size_t)sprintf(joined + len, "%s%s", len ? ", " : "", h->value);
	}
	return joined;
}

static int read_headers(struct transfer *t)
{
	struct im_http_response *resp = t->resp;
	_cleanup_free_ char *location = NULL;
	_cleanup_free_ char *length = NULL;
	_cleanup_free_ char *retry_after = NULL;
	uint64_t value;

	t->headers_read = true;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &resp->status);

	resp->content_type = header_dup(t->easy, "Content-Type");
	resp->content_range = header_dup(t->easy, "Content-Range");
	resp->docker_content_digest = header_dup(t->easy, "Docker-Content-Digest");
	resp->www_authenticate = challenges_dup(t->easy);

	location = header_dup(t->easy, "Location");
	if (location && im_http_resolve_url(t->url, location, NULL, &resp->location) < 0)
		resp->location = NULL;

	length = header_dup(t->easy, "Content-Length");
	if (length && im_parse_u64(length, &value) == 0) {
		resp->content_length = value;
		resp->has_content_length = true;
	}

	retry_after = header_dup(t->easy, "Retry-After");
	if (retry_after && im_parse_u64(retry_after, &value) == 0)
		resp->retry_after = value > RETRY_AFTER_MAX_SECONDS ? RETRY_AFTER_MAX_SECONDS
								    : (unsigned)value;
	return 0;
}

static void keep_error_body(struct transfer *t, const char *data, size_t len)
{
	size_t room = sizeof(t->error_body) - t->error_body_len;

	if (len > room)
		len = room;
	memcpy(t->error_body + t->error_body_len, data, len);
	t->error_body_len += len;
}

static size_t write_body(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct transfer *t = opaque;
	const struct im_http_sink *sink = t->req->sink;
	size_t len = size * nmemb;
	int r;

	im_stats_add(registry_bytes, len);
	if (!t->headers_read)
		read_headers(t);

	if (t->resp->status < 200 || t->resp->status > 299) {
		keep_error_body(t, data, len);
		if (t->error_body_len < sizeof(t->error_body))
			return len;
		t->error_body_full = true;
		return 0;
	}
	if (!sink)
		return len;

	r = sink->data(sink->opaque, t->resp, data, len);
	if (r < 0) {
		t->sink_error = r;
		return 0;
	}
	if (r > 0) {
		t->sink_done = true;
		return 0;
	}
	return len;
}

static size_t read_body(char *buf, size_t size, size_t nmemb, void *opaque)
{
	struct transfer *t = opaque;
	const struct im_http_source *src = t->req->source;
	uint64_t left = src ? src->size - t->upload_pos : 0;
	size_t len = size * nmemb;
	ssize_t n;

	if (len > left)
		len = (size_t)left;
	if (len == 0)
		return 0;

	if (src->fd < 0) {
		memcpy(buf, (const uint8_t *)src->buf + t->upload_pos, len);
		t->upload_pos += len;
		return len;
	}

	do {
		n = pread(src->fd, buf, len, (off_t)t->upload_pos);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* A file shorter than the size given is an I/O error too. */
		t->source_error = n < 0 ? -errno : -EIO;
		return CURL_READFUNC_ABORT;
	}
	t->upload_pos += (uint64_t)n;
	return (size_t)n;
}

/* libcurl rewinds the body when it resends on a reused connection that died. */
static int seek_body(void *opaque, curl_off_t offset, int origin)
{
	struct transfer *t = opaque;

	uint64_t size = t->req->source ? t->req->source->size : 0;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > size)
		return CURL_SEEKFUNC_CANTSEEK;
	t->upload_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int buffer_reset(void *opaque)
{
	struct im_http_buffer *b = opaque;

	b->len = 0;
	return 0;
}

static int buffer_data(void *opaque, const struct im_http_response *resp,
		       const void *data, size_t len)
{
	struct im_http_buffer *b = opaque;
	size_t need;

	if (len == 0)
		return 0;
	if ((resp->has_content_length && resp->content_length > b->max) ||
	    len > b->max - b->len) {
		im_err("%s is larger than the limit of %zu bytes", b->description, b->max);
		return -EFBIG;
	}

	need = b->len + len;
	if (need > b->allocated) {
		/* Grow by doubling, or straight to the announced length. */
		size_t size = need * 2 > b->max ? b->max : need * 2;
		uint8_t *grown;

		if (resp->has_content_length && resp->content_length >= need)
			size = (size_t)resp->content_length;
		grown = realloc(b->data, size);
		if (!grown)
			return -ENOMEM;
		b->data = grown;
		b->allocated = size;
	}

	memcpy(b->data + b->len, data, len);
	b->len = need;
	return 0;
}

struct im_http_sink im_http_buffer_sink(struct im_http_buffer *b)
{
	return (struct im_http_sink){
		.reset = buffer_reset,
		.data = buffer_data,
		.opaque = b,
	};
}

/* Set an option or fail the request: only allocation failures and options
 * this libcurl lacks make curl_easy_setopt() fail. */
#define SETOPT(easy, option, value) do { \
	if (curl_easy_setopt((easy), (option), (value)) != CURLE_OK) \
		return -ENOMEM; \
} while (0)

static int set_transport_options(struct im_registry *r, struct transfer *t)
{
	CURL *easy = t->easy;
	long timeout = r->timeout_seconds;
	long timeout_ms = timeout * 1000;

	/* Every attempt gets what is left of the call's deadline. */
	if (t->deadline_ns) {
		uint64_t now = im_now_ns();

		timeout_ms = now < t->deadline_ns ? (long)((t->deadline_ns - now) / 1000000u) : 0;
		if (timeout_ms < 1)
			timeout_ms = 1;
	}

	SETOPT(easy, CURLOPT_URL, t->url);
	SETOPT(easy, CURLOPT_SHARE, r->share);
	SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
	SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	/* HTTP/2 when the server offers it in the TLS handshake (ALPN). */
	SETOPT(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	SETOPT(easy, CURLOPT_USERAGENT, USER_AGENT);
	SETOPT(easy, CURLOPT_ERRORBUFFER, t->curl_error);
	SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < CONNECT_TIMEOUT_SECONDS * 1000
							? timeout_ms : CONNECT_TIMEOUT_SECONDS * 1000);

	/* A transfer that moves no byte for timeout seconds has stalled. */
	SETOPT(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(easy, CURLOPT_LOW_SPEED_TIME, timeout);
	if (!(t->req->flags & IM_HTTP_STREAMING))
		SETOPT(easy, CURLOPT_TIMEOUT_MS, timeout_ms);

	SETOPT(easy, CURLOPT_SSL_VERIFYPEER, r->tls_verify ? 1L : 0L);
	SETOPT(easy, CURLOPT_SSL_VERIFYHOST, r->tls_verify ? 2L : 0L);
	if (r->ca_file)
		SETOPT(easy, CURLOPT_CAINFO, r->ca_file);
	if (r->client_cert)
		SETOPT(easy, CURLOPT_SSLCERT, r->client_cert);
	if (r->client_key)
		SETOPT(easy, CURLOPT_SSLKEY, r->client_key);

	SETOPT(easy, CURLOPT_WRITEFUNCTION, write_body);
	SETOPT(easy, CURLOPT_WRITEDATA, t);
	return 0;
}

static int set_method(struct transfer *t)
{
	const struct im_http_request *req = t->req;
	CURL *easy = t->easy;

	if (strcmp(req->method, "HEAD") == 0) {
		SETOPT(easy, CURLOPT_NOBODY, 1L);
		return 0;
	}
	if (strcmp(req->method, "POST") == 0) {
		/* Only in-memory bodies (token forms) are posted; uploads use PUT. */
		const struct im_http_source *src = req->source;
		bool has_body = src && src->fd < 0 && src->buf;

		if (src && !has_body)
			return -EINVAL;
		SETOPT(easy, CURLOPT_POST, 1L);
		SETOPT(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(has_body ? src->size : 0));
		SETOPT(easy, CURLOPT_POSTFIELDS, has_body ? src->buf : "");
		return 0;
	}
	if (strcmp(req->method, "PUT") == 0) {
		uint64_t size = req->source ? req->source->size : 0;

		if (size > INT64_MAX)
			return -EINVAL;
		SETOPT(easy, CURLOPT_UPLOAD, 1L);
		SETOPT(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
		SETOPT(easy, CURLOPT_READFUNCTION, read_body);
		SETOPT(easy, CURLOPT_READDATA, t);
		SETOPT(easy, CURLOPT_SEEKFUNCTION, seek_body);
		SETOPT(easy, CURLOPT_SEEKDATA, t);
		return 0;
	}
	return strcmp(req->method, "GET") == 0 ? 0 : -EINVAL;
}

static int append_header(struct curl_slist **list, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int append_header(struct curl_slist **list, const char *fmt, ...)
{
	_cleanup_free_ char *line = NULL;
	struct curl_slist *grown;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;

	grown = curl_slist_append(*list, line);
	if (!grown)
		return -ENOMEM;
	*list = grown;
	return 0;
}

static int build_headers(const struct im_http_request *req,
			 const struct im_auth_credentials *creds,
			 struct curl_slist **ret)
{
	int r = 0;

	/* Without this libcurl waits for "100 Continue" before a PUT body. */
	r = append_header(ret, "Expect:");
	if (r == 0 && req->accept)
		r = append_header(ret, "Accept: %s", req->accept);
	if (r == 0 && req->content_type)
		r = append_header(ret, "Content-Type: %s", req->content_type);
	if (r == 0 && req->has_range && req->range_last == UINT64_MAX)
		r = append_header(ret, "Range: bytes=%" PRIu64 "-", req->range_first);
	else if (r == 0 && req->has_range)
		r = append_header(ret, "Range: bytes=%" PRIu64 "-%" PRIu64,
				  req->range_first, req->range_last);
	if (r == 0 && creds->header) {
		struct curl_slist *grown = curl_slist_append(*ret, creds->header);

		r = grown ? 0 : -ENOMEM;
		if (grown)
			*ret = grown;
	}
	return r;
}

static int set_credentials(struct im_registry *r, struct transfer *t,
			   const struct im_auth_credentials *creds)
{
	if (!creds->basic || !r->username)
		return 0;

	SETOPT(t->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	SETOPT(t->easy, CURLOPT_USERNAME, r->username);
	SETOPT(t->easy, CURLOPT_PASSWORD, r->password ? r->password : "");
	return 0;
}

static void reset_transfer(struct transfer *t)
{
	t->headers_read = false;
	t->sink_error = 0;
	t->sink_done = false;
	t->error_body_full = false;
	t->source_error = 0;
	t->upload_pos = 0;
	t->error_body_len = 0;
	t->curl_error[0] = '\0';
	im_http_response_clear(t->resp);
}

/* Send the request once to t->url, within r's bound on requests in flight
 * and after any hold a 429 set. Return: 0 with *ret_code set, or -errno
 * when the request could not be set up, a hold lasts past the deadline
 * (-EBUSY) or no slot came free before it (-ETIMEDOUT). */
static int send_once(struct im_registry *r, struct transfer *t,
		     const struct im_auth_credentials *creds, CURLcode *ret_code)
{
	struct curl_slist *headers = NULL;
	int rc;

	curl_easy_reset(t->easy);
	reset_transfer(t);

	rc = set_transport_options(r, t);
	if (rc == 0)
		rc = set_method(t);
	if (rc == 0)
		rc = set_credentials(r, t, creds);
	if (rc == 0)
		rc = build_headers(t->req, creds, &headers);
	if (rc == 0 && curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, headers) != CURLE_OK)
		rc = -ENOMEM;
	if (rc < 0) {
		curl_slist_free_all(headers);
		return rc;
	}

	rc = im_registry_slot_acquire(r, t->deadline_ns);
	if (rc == -EBUSY) {
		snprintf(t->cause, sizeof(t->cause),
			 "%s asked clients to wait (HTTP 429 and Retry-After) past the read deadline",
			 r->host);
	} else if (rc < 0) {
		snprintf(t->cause, sizeof(t->cause),
			 "timed out waiting for one of the %u requests in flight to %s to end",
			 r->max_in_flight, r->host);
	}
	if (rc < 0) {
		curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(headers);
		return rc;
	}

	im_stats_add(registry_requests, 1);
	*ret_code = curl_easy_perform(t->easy);
	im_registry_slot_release(r);

	/* The slist contains the token, so detach it from the handle before freeing it. */
	curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);

	if (!t->headers_read)
		read_headers(t);
	return 0;
}

static bool curl_code_is_transient(CURLcode code)
{
	switch (code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		/* A time-out already used the whole budget, so it is not retried. */
		return false;
	}
}

static bool status_is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Read "errors[0].code" from a registry error body, keeping [A-Z_] only. */
static void read_error_code(struct transfer *t)
{
	struct json_tokener *tok = json_tokener_new_ex(8);
	struct json_object *obj, *errors, *code;
	const char *text;
	size_t n = 0;

	if (!tok)
		return;
	obj = json_tokener_parse_ex(tok, t->error_body, (int)t->error_body_len);
	json_tokener_free(tok);

	if (obj && json_object_object_get_ex(obj, "errors", &errors) &&
	    json_object_is_type(errors, json_type_array) &&
	    json_object_array_length(errors) > 0 &&
	    json_object_object_get_ex(json_object_array_get_idx(errors, 0), "code", &code) &&
	    json_object_is_type(code, json_type_string)) {
		text = json_object_get_string(code);
		for (; *text && n + 1 < sizeof(t->resp->error_code); text++)
			if ((*text >= 'A' && *text <= 'Z') || *text == '_')
				t->resp->error_code[n++] = *text;
	}
	t->resp->error_code[n] = '\0';
	json_object_put(obj);
}

static const char *status_hint(long status)
{
	switch (status) {
	case 401:
	case 403:
		return "; check the credentials and the repository name";
	case 404:
		return "; check the repository name, the tag or the digest";
	default:
		return "";
	}
}

static int status_error(struct transfer *t, long status, bool *ret_transient)
{
	if (status >= 200 && status <= 299)
		return 0;

	read_error_code(t);
	snprintf(t->cause, sizeof(t->cause), "HTTP %ld%s%s%s%s", status,
		 t->resp->error_code[0] ? " (" : "", t->resp->error_code,
		 t->resp->error_code[0] ? ")" : "", status_hint(status));

	*ret_transient = status == 408 || status == 429 || (status >= 500 && status <= 599);
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	return -EIO;
}

/* Judge the outcome of one send that reached libcurl's end. Return: 1 when
 * the status decides, or 0/-errno when the transfer itself decided. */
static int transfer_error(struct transfer *t, CURLcode code, bool *ret_transient)
{
	if (t->sink_error < 0) {
		t->logged = true; /* the sink logged its reason */
		return t->sink_error;
	}
	if (t->source_error < 0) {
		snprintf(t->cause, sizeof(t->cause), "reading the request body failed: %s",
			 strerror(-t->source_error));
		return t->source_error;
	}
	if (code == CURLE_WRITE_ERROR && (t->sink_done || t->error_body_full))
		return 1;
	/* An error status decides even when its body was cut short, because
	 * docker-registry 2.8 responds to an unsatisfiable range with 416, the
	 * blob's Content-Length and a short body. */
	if (code != CURLE_OK && t->resp->status >= 400)
		return 1;
	if (code != CURLE_OK) {
		snprintf(t->cause, sizeof(t->cause), "%s", t->curl_error[0] ? t->curl_error
									  : curl_easy_strerror(code));
		*ret_transient = curl_code_is_transient(code);
		return -EIO;
	}
	return 1;
}

/* Pick the credentials for a send to url: the registry's own, the basic
 * credentials for a token server, or none for any other origin. */
static int credentials_for(struct im_registry *r, const struct im_http_request *req,
			   const char *url, struct im_auth_credentials *ret)
{
	*ret = (struct im_auth_credentials){};

	if (req->flags & IM_HTTP_TOKEN_REQUEST) {
		/* An OAuth2 refresh-token POST carries its secret in the body. */
		ret->basic = r->username != NULL && !r->identity_token;
		return 0;
	}
	if (!im_http_same_origin(r, url))
		return 0;
	return im_auth_prepare(r, req->scope, ret);
}

static int next_redirect(struct im_registry *r, struct transfer *t, unsigned *redirects)
{
	char *next = t->resp->location;

	if (++*redirects > MAX_REDIRECTS) {
		snprintf(t->cause, sizeof(t->cause), "more than %d redirects", MAX_REDIRECTS);
		return -EIO;
	}
	if (!next) {
		snprintf(t->cause, sizeof(t->cause),
			 "HTTP %ld redirect without a valid Location", t->resp->status);
		return -EIO;
	}
	if (!r->plain_http && strncmp(next, "https://", 8) != 0) {
		snprintf(t->cause, sizeof(t->cause),
			 "redirect from HTTPS to plain HTTP rejected; use plain HTTP only for test registries");
		return -EIO;
	}

	free(t->url);
	t->url = im_steal_pointer(&t->resp->location);
	return 0;
}

/* State of one exchange's use of the redirect target cache (registry/redirects.h). */
struct redirect_use {
	bool cacheable;       /* a blob GET that may be redirected */
	bool from_cache;      /* t->url is a cached target */
	bool redirected;      /* the registry redirected this exchange */
	bool renewing;        /* this thread renews the cached target */
	uint64_t generation;  /* of the cached target sent */
	unsigned switches;    /* cached targets given up in this exchange */
};

/* Start at the cached target of req->url, or at req->url itself. */
static int first_url(struct im_registry *r, struct transfer *t, struct redirect_use *ru)
{
	const struct im_http_request *req = t->req;
	char *target = NULL;

	/* Whole-blob streams are left out: a renewal ends only with its body,
	 * and they have no deadline to bound the wait of other readers. */
	ru->cacheable = (req->flags & IM_HTTP_FOLLOW_REDIRECTS) &&
			!(req->flags & IM_HTTP_STREAMING) && strcmp(req->method, "GET") == 0;
	if (ru->cacheable)
		target = im_redirects_lookup(r->redirects, req->url, t->deadline_ns, &ru->generation);

	free(t->url);
	ru->from_cache = target != NULL;
	t->url = target ? target : strdup(req->url);
	return t->url ? 0 : -ENOMEM;
}

/* Whether the send to a cached target failed in a way that a fresh
 * redirect from the registry may fix: any error status (signed URLs
 * return 403 once expired) or a transport error. */
static bool cached_target_failed(const struct transfer *t, int rc)
{
	if (rc < 0)
		return t->sink_error == 0 && t->source_error == 0;
	return t->resp->status >= 400;
}

/*
 * Give up the cached target: renew it through the registry, or take the
 * target another thread renewed meanwhile. After two such switches in one
 * exchange the registry is asked without the cache.
 */
static int leave_cached_target(struct im_registry *r, struct transfer *t, struct redirect_use *ru)
{
	const struct im_http_request *req = t->req;
	char *target = NULL;

	ru->from_cache = false;
	if (++ru->switches <= 2) {
		if (im_redirects_begin_renew(r->redirects, req->url, ru->generation))
			ru->renewing = true;
		else
			target = im_redirects_lookup(r->redirects, req->url, t->deadline_ns,
						     &ru->generation);
	}
	im_debug("blob redirect target failed (%s); %s", t->cause[0] ? t->cause : "error status",
		 target ? "using the one another read renewed" : "asking the registry again");

	free(t->url);
	ru->from_cache = target != NULL;
	t->url = target ? target : strdup(req->url);
	if (!t->url)
		return -ENOMEM;

	/* A transport error may have left part of a body in the sink. */
	if (req->sink && req->sink->reset && req->sink->reset(req->sink->opaque) < 0)
		return -EIO;
	return 0;
}

/*
 * Send one logical exchange: the request, at most one resend after a 401
 * challenge, and the redirects. Return: 0, or -errno with *ret_transient telling whether a
 * retry may help.
 */
static int exchange_redirects(struct im_registry *r, struct transfer *t, bool *ret_transient,
			      struct redirect_use *ru)
{
	const struct im_http_request *req = t->req;
	unsigned redirects = 0;
	bool challenged = false;
	int first;

	first = first_url(r, t, ru);
	if (first < 0)
		return first;

	for (;;) {
		struct im_auth_credentials creds;
		CURLcode code;
		long status;
		int rc;

		rc = credentials_for(r, req, t->url, &creds);
		if (rc < 0) {
			snprintf(t->cause, sizeof(t->cause), "no credentials: %s", strerror(-rc));
			return rc;
		}

		rc = send_once(r, t, &creds, &code);
		if (rc == 0)
			rc = transfer_error(t, code, ret_transient);
		if (ru->from_cache && cached_target_failed(t, rc)) {
			im_auth_credentials_clear(&creds);
			rc = leave_cached_target(r, t, ru);
			if (rc < 0)
				return rc;
			continue;
		}
		if (rc <= 0) {
			im_auth_credentials_clear(&creds);
			return rc;
		}

		status = t->resp->status;
		if (im_log_get_level() >= IM_LOG_DEBUG) {
			char shown[512];

			im_http_url_for_log(t->url, shown, sizeof(shown));
			im_debug("registry %s %s: HTTP %ld", req->method, shown, status);
		}

		/* One challenge per exchange, plus one more when basic credentials
		 * were sent, so that im_auth_challenge() can report them rejected.
		 * It returns -EACCES then, so nothing is sent a third time. */
		if (status == 401 && (!challenged || creds.basic) && im_http_same_origin(r, t->url) &&
		    !(req->flags & IM_HTTP_TOKEN_REQUEST)) {
			challenged = true;
			rc = im_auth_challenge(r, req->scope, t->resp->www_authenticate, &creds);
			im_auth_credentials_clear(&creds);
			if (rc < 0) {
				/* Fill in the cause for the log. The status is not retried. */
				status_error(t, status, ret_transient);
				*ret_transient = false;
				return rc;
			}
			continue;
		}
		im_auth_credentials_clear(&creds);

		if (status_is_redirect(status) && (req->flags & IM_HTTP_FOLLOW_REDIRECTS)) {
			rc = next_redirect(r, t, &redirects);
			if (rc < 0)
				return rc;
			ru->redirected = true;
			continue;
		}

		rc = status_error(t, status, ret_transient);
		if (rc == 0 && ru->cacheable && ru->redirected) {
			im_redirects_store(r->redirects, req->url, t->url);
			ru->renewing = false;
		}
		return rc;
	}
}

static int exchange(struct im_registry *r, struct transfer *t, bool *ret_transient)
{
	struct redirect_use ru = {};
	int rc;

	rc = exchange_redirects(r, t, ret_transient, &ru);
	/* A renewal that ended without a target lets the waiting reads go on. */
	if (ru.renewing)
		im_redirects_abandon(r->redirects, t->req->url);
	return rc;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Milliseconds to wait before attempt + 1: Retry-After when the server
 * sent one, else an exponential backoff shortened by up to 25% at random,
 * so that readers that failed together do not retry together. The jitter
 * only shortens the wait, so that every retry that fits in the deadline
 * without jitter still fits.
 */
static unsigned retry_wait_ms(const struct im_http_response *resp, int attempt)
{
	unsigned backoff = BACKOFF_FIRST_MS << (attempt - 1);
	uint64_t mixed;

	if (resp->retry_after * 1000u > backoff)
		return resp->retry_after * 1000u;

	/* Any varying bits do: the jitter needs no quality, only spread. */
	mixed = im_now_ns() * 0x9e3779b97f4a7c15ull;
	return backoff - (unsigned)((mixed >> 40) % (backoff / 4 + 1));
}

/*
 * A 429 limits the client, not the request: hold back every request to
 * the host for the wait, so that other readers do not spend the quota
 * while it lasts. A 503 starts a hold only when it carries Retry-After.
 */
static void hold_host(struct im_registry *r, const struct im_http_response *resp,
		      unsigned wait_ms)
{
	if (resp->status == 429 || (resp->status == 503 && resp->retry_after > 0))
		im_registry_hold_off(r, im_now_ns() + (uint64_t)wait_ms * 1000000u);
}

static void log_failure(const struct im_http_request *req, const struct transfer *t,
			int attempts, int rc)
{
	char url[512];

	if (t->logged || (rc == -ENOENT && (req->flags & IM_HTTP_QUIET_NOT_FOUND)))
		return;

	im_http_url_for_log(t->url ? t->url : req->url, url, sizeof(url));
	if (attempts > 1)
		im_err("registry request %s %s failed after %d attempts: %s",
		       req->method, url, attempts, t->cause);
	else
		im_err("registry request %s %s failed: %s", req->method, url, t->cause);
}

int im_http_perform(struct im_registry *r, const struct im_http_request *req,
		    struct im_http_response *resp)
{
	struct transfer *t;
	char shown[512];
	int attempt, attempts = 0, rc = -EIO;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->req = req;
	t->resp = resp;
	*resp = (struct im_http_response){};

	t->easy = handle_get(r);
	if (!t->easy) {
		free(t);
		return -ENOMEM;
	}
	if (!(req->flags & IM_HTTP_STREAMING))
		t->deadline_ns = im_now_ns() + (uint64_t)r->timeout_seconds * 1000000000u;

	for (attempt = 1; attempt <= (int)r->max_attempts; attempt++) {
		bool transient = false;
		unsigned wait_ms;

		if (req->sink && req->sink->reset) {
			int reset = req->sink->reset(req->sink->opaque);

			if (reset < 0)
				break; /* keep the error of the previous attempt */
		}

		rc = exchange(r, t, &transient);
		attempts = attempt;
		if (rc == 0 || !transient)
			break;

		wait_ms = retry_wait_ms(resp, attempt);
		hold_host(r, resp, wait_ms);
		if (attempt == (int)r->max_attempts)
			break;
		if (t->deadline_ns && im_now_ns() + (uint64_t)wait_ms * 1000000u >= t->deadline_ns) {
			/* A retry could not finish in time: fail now rather than late. */
			snprintf(t->cause + strlen(t->cause), sizeof(t->cause) - strlen(t->cause),
				 "; no time left for a retry within %ld s", r->timeout_seconds);
			break;
		}
		im_http_url_for_log(t->url, shown, sizeof(shown));
		im_warn("registry request %s %s failed (%s); retrying in %u ms",
			req->method, shown, t->cause, wait_ms);
		im_stats_add(registry_retries, 1);
		sleep_ms(wait_ms);
	}

	if (rc < 0)
		log_failure(req, t, attempts, rc);

	/* Connections stay in the share, and the handle keeps only its settings. */
	curl_easy_reset(t->easy);
	handle_put(r, t->easy);
	free(t->url);
	free(t);
	return rc;
}
