/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry authentication, private to registry/: the WWW-Authenticate
 * challenge parser, and a per-scope cache of bearer tokens that fetches one
 * token for concurrent misses, renews shortly before expiry and after a
 * 401, and switches to basic auth when the registry requests it.
 * Tokens and passwords are never logged.
 */
#ifndef IM_REGISTRY_AUTH_H
#define IM_REGISTRY_AUTH_H

#include <stdbool.h>
#include <stdint.h>

struct im_registry;
struct im_auth;

/* Header values longer than this are rejected as malformed. */
#define IM_AUTH_CHALLENGE_MAX_LENGTH 8192

enum im_auth_scheme {
	IM_AUTH_NONE = 0,   /* no challenge with a scheme this client supports */
	IM_AUTH_BASIC,
	IM_AUTH_BEARER,
};

struct im_auth_challenge {
	enum im_auth_scheme scheme;
	char realm[2048];
	char service[512];
	char scope[1024];
};

/*
 * Parse a WWW-Authenticate value (RFC 7235: challenges separated by commas,
 * parameters as tokens or quoted strings with backslash escapes). Bearer is
 * preferred over Basic when both are offered; other schemes are skipped.
 * Return: 0 (scheme IM_AUTH_NONE when nothing usable was offered), or
 * -EBADMSG when the value is malformed or a parameter is too long.
 */
int im_auth_parse_challenge(const char *text, struct im_auth_challenge *ret);

int im_auth_new(struct im_auth **ret);
void im_auth_free(struct im_auth *auth);

/* Credentials for one request, from im_auth_prepare(). */
struct im_auth_credentials {
	char *header;         /* "Authorization: Bearer ..." (malloc'd), or NULL */
	bool basic;           /* send the configured user name and password */
	uint64_t generation;  /* identifies the token sent; 0 for none */
};

void im_auth_credentials_clear(struct im_auth_credentials *c);

/*
 * Get the credentials for a request in scope ("repository:REPO:pull").
 * Blocks while a token is fetched: once the registry has named its token
 * realm, a missing or nearly expired token is fetched before the request.
 * Return: 0 (possibly with no credentials: anonymous), or -EACCES/-EIO when
 * a needed token could not be fetched.
 */
int im_auth_prepare(struct im_registry *r, const char *scope,
		    struct im_auth_credentials *ret);

/*
 * Handle a 401 response to a request in scope that carried the credentials sent. Fetches a new token
 * for a Bearer challenge (unless another thread already replaced the one
 * sent), or turns on basic auth for a Basic challenge.
 * Return: 0 when sending the request again may succeed, -EACCES when it
 * cannot (no credentials, rejected credentials, unsupported scheme), or
 * -EIO when the token server failed.
 */
int im_auth_challenge(struct im_registry *r, const char *scope,
		      const char *www_authenticate,
		      const struct im_auth_credentials *sent);

#endif
