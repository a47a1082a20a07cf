/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bearer tokens and basic auth for one registry, after the Docker token
 * protocol that every OCI registry with token auth speaks: a 401 carries
 * "WWW-Authenticate: Bearer realm=...,service=...,scope=...", and a GET of
 * realm?service=...&scope=... (with basic credentials when configured)
 * returns {"token": ..., "expires_in": seconds}.
 *
 * Tokens are cached per scope. Threads that need the same missing token
 * wait for the one fetch in flight (a condition variable per scope), so a
 * burst of FUSE reads costs one token request. A token is renewed shortly
 * before it expires and when the registry rejects it. Once the registry has
 * named its realm, tokens for new scopes are fetched before the first
 * request instead of after a 401. With an identity token from a Docker
 * config file, tokens come from the OAuth2 refresh-token grant (a form
 * POST to the realm) instead of the GET.
 */
#include "registry/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "registry/http.h"
#include "registry/json.h"
#include "registry/reference.h"
#include "registry/registry_i.h"

#define TOKEN_RESPONSE_MAX_LENGTH (256u << 10)
#define TOKEN_MAX_LENGTH (64u << 10)
/* The Docker token protocol's default lifetime when expires_in is absent. */
#define TOKEN_DEFAULT_SECONDS 60
#define TOKEN_MAX_SECONDS (24 * 3600)
/* Renew this share of the lifetime before expiry, at most 30 s before. */
#define RENEW_DIVISOR 10
#define RENEW_MAX_MARGIN_NS (30 * NS_PER_SECOND)
/* Maximum cached scopes. Beyond it, an entry that no thread uses is dropped. */
#define MAX_SCOPES 64
#define NS_PER_SECOND 1000000000ull

struct token {
	struct token *next;
	char *scope;
	char *header;          /* "Authorization: Bearer ...", or NULL */
	uint64_t renew_ns;     /* im_now_ns() after which the token is renewed */
	uint64_t expire_ns;    /* im_now_ns() after which it is not sent */
	uint64_t generation;   /* unique per token received, 0 before the first */
	bool fetching;         /* a thread is fetching a token for this scope */
	unsigned users;        /* threads waiting on or fetching for this entry */
	uint64_t fetches;      /* fetches finished, for waiters to see theirs */
	int fetch_error;       /* result of the last fetch */
	pthread_cond_t done;   /* broadcast when a fetch finishes */
};

struct im_auth {
	pthread_mutex_t lock;  /* protects everything here and in each token */
	struct token *tokens;
	size_t n_tokens;
	char *realm;           /* token endpoint from the last Bearer challenge */
	char *service;
	bool basic;            /* the registry requested basic auth */
	uint64_t last_generation;
};

int im_auth_new(struct im_auth **ret)
{
	struct im_auth *auth = calloc(1, sizeof(*auth));

	if (!auth)
		return -ENOMEM;
	pthread_mutex_init(&auth->lock, NULL);
	*ret = auth;
	return 0;
}

static void token_free(struct token *t)
{
	free(t->scope);
	free(t->header);
	pthread_cond_destroy(&t->done);
	free(t);
}

void im_auth_free(struct im_auth *auth)
{
	if (!auth)
		return;
	while (auth->tokens) {
		struct token *t = auth->tokens;

		auth->tokens = t->next;
		token_free(t);
	}
	free(auth->realm);
	free(auth->service);
	pthread_mutex_destroy(&auth->lock);
	free(auth);
}

void im_auth_credentials_clear(struct im_auth_credentials *c)
{
	free(c->header);
	*c = (struct im_auth_credentials){};
}

static struct token *find_token(struct im_auth *auth, const char *scope)
{
	for (struct token *t = auth->tokens; t; t = t->next)
		if (strcmp(t->scope, scope) == 0)
			return t;
	return NULL;
}

/* Drop one cached entry that no thread is using, the first expired one
 * if there is one. Called with the lock held. */
static void evict_one(struct im_auth *auth, uint64_t now)
{
	struct token **victim = NULL;

	for (struct token **p = &auth->tokens; *p; p = &(*p)->next) {
		if ((*p)->users > 0 || (*p)->fetching)
			continue;
		if (!victim || (*p)->expire_ns <= now)
			victim = p;
		if ((*p)->expire_ns <= now)
			break;
	}
	if (victim) {
		struct token *t = *victim;

		*victim = t->next;
		token_free(t);
		auth->n_tokens--;
	}
}

static struct token *add_token(struct im_auth *auth, const char *scope)
{
	struct token *t;

	if (auth->n_tokens >= MAX_SCOPES)
		evict_one(auth, im_now_ns());

	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->scope = strdup(scope);
	if (!t->scope) {
		free(t);
		return NULL;
	}
	pthread_cond_init(&t->done, NULL);
	t->next = auth->tokens;
	auth->tokens = t;
	auth->n_tokens++;
	return t;
}

static bool token_usable(const struct token *t, uint64_t now)
{
	return t->header && now < t->expire_ns;
}

static bool token_fresh(const struct token *t, uint64_t now)
{
	return t->header && now < t->renew_ns;
}

/* Tokens go into a header line: anything but visible ASCII could end it. */
static bool token_is_valid(const char *token)
{
	size_t len = strlen(token);

	if (len == 0 || len > TOKEN_MAX_LENGTH)
		return false;
	for (size_t i = 0; i < len; i++)
		if (token[i] < 0x21 || token[i] > 0x7e)
			return false;
	return true;
}

static int parse_token_response(const struct im_http_buffer *body, char **ret_header,
				int64_t *ret_seconds)
{
	struct json_object *obj, *expires;
	const char *token = NULL;
	int r;

	r = im_json_parse_object(body->data, body->len, "token response", &obj);
	if (r < 0)
		return r;

	r = im_json_get_string(obj, "token", &token);
	if (r == 0 && !token)
		r = im_json_get_string(obj, "access_token", &token);
	if (r < 0 || !token || !token_is_valid(token)) {
		im_err("invalid token response: no usable \"token\" or \"access_token\"");
		json_object_put(obj);
		return -EBADMSG;
	}

	*ret_seconds = TOKEN_DEFAULT_SECONDS;
	if (json_object_object_get_ex(obj, "expires_in", &expires) &&
	    json_object_is_type(expires, json_type_int)) {
		int64_t seconds = json_object_get_int64(expires);

		if (seconds > 0)
			*ret_seconds = seconds < TOKEN_MAX_SECONDS ? seconds : TOKEN_MAX_SECONDS;
	}

	r = asprintf(ret_header, "Authorization: Bearer %s", token) < 0 ? -ENOMEM : 0;
	json_object_put(obj);
	return r;
}

static int token_url(const char *realm, const char *service, const char *scope, char **ret)
{
	_cleanup_free_ char *with_service = NULL;
	_cleanup_free_ char *query = NULL;
	int r;

	if (service && service[0]) {
		if (asprintf(&query, "service=%s", service) < 0)
			return -ENOMEM;
		r = im_http_resolve_url(NULL, realm, query, &with_service);
		if (r < 0)
			return r;
		realm = with_service;
		free(im_steal_pointer(&query));
	}

	if (asprintf(&query, "scope=%s", scope) < 0)
		return -ENOMEM;
	return im_http_resolve_url(NULL, realm, query, ret);
}

/* Append "&name=value" (no '&' when *form is empty), value URL-encoded. */
static int append_form_field(char **form, const char *name, const char *value)
{
	char *escaped = curl_easy_escape(NULL, value, 0);
	char *grown = NULL;
	int n;

	if (!escaped)
		return -ENOMEM;
	n = asprintf(&grown, "%s%s%s=%s", *form ? *form : "", *form ? "&" : "", name, escaped);
	curl_free(escaped);
	if (n < 0)
		return -ENOMEM;
	if (*form)
		explicit_bzero(*form, strlen(*form));
	free(*form);
	*form = grown;
	return 0;
}

/* The OAuth2 refresh-token grant of the Docker token protocol: the body of
 * a POST to the realm that trades an identity token for an access token. */
static int refresh_token_form(struct im_registry *r, const char *service, const char *scope,
			      char **ret)
{
	char *form = NULL;
	int rc;

	rc = append_form_field(&form, "grant_type", "refresh_token");
	if (rc == 0 && service && service[0])
		rc = append_form_field(&form, "service", service);
	if (rc == 0)
		rc = append_form_field(&form, "scope", scope);
	if (rc == 0)
		rc = append_form_field(&form, "client_id", "imgmount");
	if (rc == 0)
		rc = append_form_field(&form, "refresh_token", r->identity_token);
	if (rc < 0) {
		free(form);
		return rc;
	}
	*ret = form;
	return 0;
}

/* Fetch a token for scope: GET with the realm's query, or POST with an
 * identity token. Runs without the lock. */
static int request_token(struct im_registry *r, const char *realm, const char *service,
			 const char *scope, char **ret_header, int64_t *ret_seconds)
{
	_cleanup_free_ char *url = NULL;
	char *form = NULL;
	struct im_http_source form_source = { .fd = -1 };
	struct im_http_buffer body = {
		.max = TOKEN_RESPONSE_MAX_LENGTH,
		.description = "token response",
	};
	struct im_http_sink sink = im_http_buffer_sink(&body);
	struct im_http_request req = {
		.method = "GET",
		.flags = IM_HTTP_TOKEN_REQUEST,
		.sink = &sink,
	};
	struct im_http_response resp;
	int rc;

	if (r->identity_token) {
		rc = im_http_resolve_url(NULL, realm, NULL, &url);
		if (rc == 0)
			rc = refresh_token_form(r, service, scope, &form);
	} else {
		rc = token_url(realm, service, scope, &url);
	}
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		im_err("invalid token realm \"%.200s\" from registry \"%s\"", realm, r->host);
		return -EACCES;
	}
	req.url = url;
	if (form) {
		form_source.buf = form;
		form_source.size = strlen(form);
		req.method = "POST";
		req.content_type = "application/x-www-form-urlencoded";
		req.source = &form_source;
	}

	im_stats_add(token_requests, 1);
	rc = im_http_perform(r, &req, &resp);
	im_http_response_clear(&resp);
	if (form) {
		explicit_bzero(form, strlen(form));
		free(form);
	}
	if (rc == 0)
		rc = parse_token_response(&body, ret_header, ret_seconds);
	free(body.data);

	if (rc == -EACCES || rc == -ENOENT)
		return -EACCES;
	return rc < 0 ? -EIO : 0;
}

static void store_token(struct im_auth *auth, struct token *t, char *header, int64_t seconds)
{
	uint64_t now = im_now_ns();
	uint64_t lifetime = (uint64_t)seconds * NS_PER_SECOND;
	uint64_t margin = lifetime / RENEW_DIVISOR;

	if (margin > RENEW_MAX_MARGIN_NS)
		margin = RENEW_MAX_MARGIN_NS;

	free(t->header);
	t->header = header;
	t->expire_ns = now + lifetime;
	t->renew_ns = now + lifetime - margin;
	t->generation = ++auth->last_generation;
}

/*
 * Ensure that t contains a token newer than generation stale, fetched once
 * for all threads that request it at the same time. Called with the lock
 * held and returns with it held, but drops it while fetching.
 */
static int fetch_token(struct im_registry *r, struct token *t, uint64_t stale,
		       const char *scope)
{
	struct im_auth *auth = r->auth;
	_cleanup_free_ char *realm = NULL;
	_cleanup_free_ char *service = NULL;
	_cleanup_free_ char *scope_copy = NULL;
	uint64_t seen = t->fetches;
	char *header = NULL;
	int64_t seconds = 0;
	int rc;

	t->users++;
	while (t->fetching)
		pthread_cond_wait(&t->done, &auth->lock);

	if (t->generation != stale && token_usable(t, im_now_ns())) {
		t->users--;
		return 0;
	}
	if (t->fetches != seen && t->fetch_error < 0) {
		/* The fetch this thread waited for failed: share its result. */
		t->users--;
		return t->fetch_error;
	}

	realm = strdup(auth->realm);
	service = auth->service ? strdup(auth->service) : NULL;
	scope_copy = strdup(scope ? scope : t->scope);
	if (!realm || !scope_copy || (auth->service && !service)) {
		t->users--;
		return -ENOMEM;
	}

	t->fetching = true;
	pthread_mutex_unlock(&auth->lock);
	rc = request_token(r, realm, service, scope_copy, &header, &seconds);
	pthread_mutex_lock(&auth->lock);
	t->fetching = false;

	if (rc == 0)
		store_token(auth, t, header, seconds);
	t->fetches++;
	t->fetch_error = rc;
	t->users--;
	pthread_cond_broadcast(&t->done);
	return rc;
}

int im_auth_prepare(struct im_registry *r, const char *scope,
		    struct im_auth_credentials *ret)
{
	struct im_auth *auth = r->auth;
	struct token *t;
	uint64_t now;
	int rc = 0;

	*ret = (struct im_auth_credentials){};
	if (!scope)
		return 0;

	pthread_mutex_lock(&auth->lock);
	if (auth->basic) {
		ret->basic = true;
		goto out;
	}

	t = find_token(auth, scope);
	if (!t && !auth->realm)
		goto out; /* anonymous until the registry sends a challenge */
	if (!t)
		t = add_token(auth, scope);
	if (!t) {
		rc = -ENOMEM;
		goto out;
	}

	now = im_now_ns();
	if (!token_fresh(t, now) && auth->realm) {
		rc = fetch_token(r, t, t->generation, NULL);
		/* A renewal that failed leaves the old token while it lasts. */
		if (rc < 0 && token_usable(t, im_now_ns()))
			rc = 0;
		if (rc < 0)
			goto out;
	}

	if (token_usable(t, im_now_ns())) {
		ret->header = strdup(t->header);
		ret->generation = t->generation;
		if (!ret->header)
			rc = -ENOMEM;
	}
out:
	pthread_mutex_unlock(&auth->lock);
	return rc;
}

static int use_basic(struct im_registry *r, const struct im_auth_credentials *sent)
{
	if (!r->username) {
		im_err("registry \"%s\" requires a user name and password (basic auth), and no "
		       "credentials file has an entry for it; run `podman login %s` or "
		       "`docker login %s`, or pass --authfile FILE", r->host, r->host, r->host);
		return -EACCES;
	}
	if (sent->basic) {
		im_err("registry \"%s\" rejected the password of user \"%s\"; fix its entry in "
		       "the credentials file (--authfile, or the default files) or log in again",
		       r->host, r->username);
		return -EACCES;
	}

	pthread_mutex_lock(&r->auth->lock);
	r->auth->basic = true;
	pthread_mutex_unlock(&r->auth->lock);
	return 0;
}

/* Tokens may be requested over plain HTTP only where the registry itself is
 * plain HTTP or the token server is on this host. */
static int check_realm(struct im_registry *r, const char *realm)
{
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *origin = NULL;
	const char *host;

	if (im_http_resolve_url(NULL, realm, NULL, &url) < 0 || im_http_origin(url, &origin) < 0) {
		im_err("registry \"%s\" sent an invalid token realm \"%.200s\"", r->host, realm);
		return -EACCES;
	}
	if (strncmp(url, "https://", 8) == 0 || r->plain_http)
		return 0;

	/* origin is "http://HOST:PORT", and the loopback check takes HOST:PORT. */
	host = origin + strlen("http://");
	if (im_registry_host_is_loopback(host))
		return 0;

	im_err("registry \"%s\" sent a plain HTTP token realm \"%.200s\"; "
	       "refusing to send credentials over it", r->host, realm);
	return -EACCES;
}

static int set_realm(struct im_auth *auth, const struct im_auth_challenge *c)
{
	char *realm = strdup(c->realm);
	char *service = c->service[0] ? strdup(c->service) : NULL;

	if (!realm || (c->service[0] && !service)) {
		free(realm);
		free(service);
		return -ENOMEM;
	}
	free(auth->realm);
	free(auth->service);
	auth->realm = realm;
	auth->service = service;
	return 0;
}

static int use_bearer(struct im_registry *r, const char *scope,
		      const struct im_auth_challenge *c,
		      const struct im_auth_credentials *sent)
{
	struct im_auth *auth = r->auth;
	struct token *t;
	int rc;

	if (!c->realm[0]) {
		im_err("registry \"%s\" sent a Bearer challenge without a realm", r->host);
		return -EACCES;
	}
	rc = check_realm(r, c->realm);
	if (rc < 0)
		return rc;

	pthread_mutex_lock(&auth->lock);
	rc = set_realm(auth, c);
	if (rc == 0) {
		t = find_token(auth, scope);
		if (!t)
			t = add_token(auth, scope);
		rc = t ? fetch_token(r, t, sent->generation, c->scope[0] ? c->scope : NULL)
		       : -ENOMEM;
	}
	pthread_mutex_unlock(&auth->lock);
	return rc;
}

int im_auth_challenge(struct im_registry *r, const char *scope,
		      const char *www_authenticate,
		      const struct im_auth_credentials *sent)
{
	struct im_auth_challenge *c;
	int rc;

	if (!scope)
		return -EACCES;

	/* The struct contains a few KiB of bounded strings, so keep it off the stack. */
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;

	rc = im_auth_parse_challenge(www_authenticate, c);
	if (rc < 0) {
		im_err("registry \"%s\" sent a malformed WWW-Authenticate header", r->host);
		rc = -EACCES;
	} else if (c->scheme == IM_AUTH_BEARER) {
		rc = use_bearer(r, scope, c, sent);
	} else if (c->scheme == IM_AUTH_BASIC) {
		rc = use_basic(r, sent);
	} else {
		im_err("registry \"%s\" answered 401 without a Basic or Bearer challenge", r->host);
		rc = -EACCES;
	}
	free(c);
	return rc;
}
