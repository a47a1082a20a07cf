/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One HTTP exchange with a registry, private to registry/: a libcurl
 * request with the registry's credentials, responses to 401 challenges, manual
 * redirects that drop credentials when they leave the registry's origin,
 * and bounded retries with backoff for connection errors, 5xx and 429.
 */
#ifndef IM_REGISTRY_HTTP_H
#define IM_REGISTRY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/registry_i.h"

/* Sends of one request at most, the first included, unless the registry
 * sets fewer (mirrors send once: the registry itself is their fallback). */
#define IM_HTTP_MAX_ATTEMPTS 4

enum {
	/* Follow 301/302/303/307/308 (blob GET and HEAD, which may be sent
	 * to storage); credentials go only to the registry's own origin. */
	IM_HTTP_FOLLOW_REDIRECTS = 1 << 0,
	/* 404 is an expected response: return -ENOENT without logging. */
	IM_HTTP_QUIET_NOT_FOUND = 1 << 1,
	/* The body has no size bound (whole blobs, uploads): no total
	 * timeout, only the stall limit. */
	IM_HTTP_STREAMING = 1 << 2,
	/* A token request: no registry credentials and no challenges, but
	 * the configured basic credentials when there are any. */
	IM_HTTP_TOKEN_REQUEST = 1 << 3,
};

/* Headers of the final response; strings are malloc'd or NULL. */
struct im_http_response {
	long status;
	char *content_type;
	char *content_range;
	char *location;          /* resolved to an absolute URL */
	char *www_authenticate;  /* every challenge, joined with ", " */
	char *docker_content_digest;
	uint64_t content_length;
	bool has_content_length;
	unsigned retry_after;    /* seconds; 0 when absent */
	char error_code[64];     /* first "errors[].code" of an error body */
};

void im_http_response_clear(struct im_http_response *resp);

/*
 * Receiver of a 2xx response body. reset() runs before every attempt, so a
 * retry starts over; it returns < 0 when bytes already handed on cannot be
 * taken back, and the request then fails instead of being retried. data()
 * returns 0 to go on, 1 when it has every byte it needs (the transfer stops
 * and counts as a success), or a negative errno that fails the request
 * unretried. Non-2xx bodies never reach the sink.
 */
struct im_http_sink {
	int (*reset)(void *opaque);
	int (*data)(void *opaque, const struct im_http_response *resp,
		    const void *data, size_t len);
	void *opaque;
};

/* Request body: size bytes from fd (read with pread from offset 0) or from
 * buf when fd < 0. */
struct im_http_source {
	int fd;
	const void *buf;
	uint64_t size;
};

struct im_http_request {
	const char *method;        /* "GET", "HEAD", "POST" or "PUT" */
	const char *url;           /* absolute */
	const char *scope;         /* token scope, e.g. "repository:library/debian:pull" */
	const char *accept;        /* Accept header value, or NULL */
	const char *content_type;  /* request Content-Type, or NULL */
	bool has_range;
	uint64_t range_first;      /* inclusive byte positions */
	uint64_t range_last;       /* UINT64_MAX: to the end ("bytes=FIRST-") */
	unsigned flags;            /* IM_HTTP_* */
	const struct im_http_sink *sink;     /* NULL discards the body */
	const struct im_http_source *source; /* NULL sends no body */
};

/* A sink that collects the body in memory, up to max bytes. */
struct im_http_buffer {
	uint8_t *data;      /* malloc'd; the caller frees it */
	size_t len;
	size_t allocated;   /* bytes allocated at data */
	size_t max;
	const char *description; /* names the body in the message when it is too large */
};

/*
 * Make a sink that fills b. A body over b->max bytes fails the request with
 * -EFBIG, logged once, before the excess is stored.
 */
struct im_http_sink im_http_buffer_sink(struct im_http_buffer *b);

/*
 * Send req and fill *resp with the final response. The failure is logged
 * once, with the method, the URL without its query and the cause.
 * Return: 0 for a 2xx response; -EACCES for 401/403 after authentication;
 * -ENOENT for 404; -EIO for other statuses, connection errors and time-outs
 * after the retries; or the sink's error.
 */
int im_http_perform(struct im_registry *r, const struct im_http_request *req,
		    struct im_http_response *resp);

/* Compute "scheme://host:port" of url, lowercase, with the default port
 * filled in. Return: 0, -EINVAL or -ENOMEM. */
int im_http_origin(const char *url, char **ret);

/* Whether url has the same scheme, host and port as the registry. */
bool im_http_same_origin(const struct im_registry *r, const char *url);

/*
 * Resolve reference (absolute, or relative to base) into a malloc'd
 * absolute http or https URL, appending query ("name=value", value
 * URL-encoded) when it is not NULL. Return: 0, -EINVAL or -ENOMEM.
 */
int im_http_resolve_url(const char *base, const char *reference, const char *query,
			char **ret);

/* Copy of url without query, fragment or user info, for log messages. */
void im_http_url_for_log(const char *url, char *out, size_t size);

#endif
