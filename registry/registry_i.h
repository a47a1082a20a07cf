/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry client's state, private to registry/. One struct im_registry
 * serves every thread of a mount: the fields set by im_registry_new() are
 * read-only afterwards, and the comment on each other field names its lock.
 */
#ifndef IM_REGISTRY_I_H
#define IM_REGISTRY_I_H

#include <pthread.h>
#include <stdbool.h>

#include <curl/curl.h>

#include "registry/registry.h"

/* Idle easy handles kept for reuse; more are created when threads need them. */
#define IM_REGISTRY_HANDLE_POOL 8

struct im_auth;

struct im_registry {
	char *host;             /* as given to im_registry_new() */
	char *base_url;         /* "https://HOST", no trailing slash */
	char *origin;           /* "scheme://host:port" of base_url, lowercase */
	bool plain_http;
	bool tls_verify;
	char *ca_file;
	char *username;         /* NULL when no credentials were given */
	char *password;
	long timeout_seconds;

	/* Connections, DNS answers and TLS sessions shared by all handles. */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	pthread_mutex_t pool_lock;
	CURL *pool[IM_REGISTRY_HANDLE_POOL]; /* protected by pool_lock */
	size_t n_pool;                       /* protected by pool_lock */

	struct im_auth *auth;
};

/*
 * Build BASE/v2/REPO/KIND/NAME (KIND is "manifests" or "blobs") after
 * checking that repo is a valid repository name. Return: 0, -EINVAL, -ENOMEM.
 */
int im_registry_url(struct im_registry *r, const char *repo, const char *kind,
		    const char *name, char **ret);

/* Whether reference is a tag or a digest "sha256:HEX". */
bool im_registry_reference_is_valid(const char *reference);

/* Token scope "repository:REPO:ACTIONS" ("pull" or "pull,push"). */
int im_registry_scope(const char *repo, const char *actions, char **ret);

#endif
