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
#include <stdint.h>

#include <curl/curl.h>

#include "registry/registry.h"

/* Idle easy handles kept for reuse; more are created when threads need them. */
#define IM_REGISTRY_HANDLE_POOL 8
/* Requests in flight per host when im_registry_options sets none: enough
 * for every FUSE worker thread of a default mount to have one, while a
 * burst of reads cannot open hundreds of connections to one server. */
#define IM_REGISTRY_MAX_IN_FLIGHT_DEFAULT 16

struct im_auth;
struct im_mirror;
struct im_redirects;

struct im_registry {
	char *host;             /* as given to im_registry_new() */
	char *base_url;         /* "https://HOST", no trailing slash */
	char *api_url;          /* URL that "/REPO/blobs/..." is appended to: base_url
				   plus "/v2", or a hosts.toml URL with override_path */
	char *origin;           /* "scheme://host:port" of base_url, lowercase */
	bool plain_http;
	bool tls_verify;
	char *ca_file;
	char *client_cert;
	char *client_key;
	unsigned max_attempts;  /* sends per request, the first included */
	char *username;         /* NULL when no credentials were given */
	char *password;
	char *identity_token;   /* NULL unless a Docker config file gave one */
	long timeout_seconds;

	/* Connections, DNS answers and TLS sessions shared by all handles. */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	pthread_mutex_t pool_lock;
	CURL *pool[IM_REGISTRY_HANDLE_POOL]; /* protected by pool_lock */
	size_t n_pool;                       /* protected by pool_lock */

	/* Requests in flight (registry/slots.c); counted under slots_lock. */
	pthread_mutex_t slots_lock;
	pthread_cond_t slot_freed;
	unsigned in_flight;      /* protected by slots_lock */
	unsigned max_in_flight;  /* read-only after im_registry_new() */
	/* im_now_ns() before which no request starts, after a 429 or 503 with
	 * Retry-After; 0 for none. Protected by slots_lock. */
	uint64_t hold_until_ns;
	bool slots_ready;        /* slots_lock and slot_freed are initialized */

	struct im_auth *auth;
	struct im_redirects *redirects; /* blob redirect targets; has its own lock */

	/* Mirrors tried before this registry; each is a registry of its own
	 * without mirrors. Set up by im_registry_new(), then read-only. */
	struct im_mirror *mirrors;
	size_t n_mirrors;
};

/*
 * Create a client for the registry API at url ("scheme://host[:port][/path]",
 * the scheme deciding plain HTTP), labelled host in messages. "/v2" is
 * appended to url unless override_path. opts->certs_dir is not read.
 */
int im_registry_new_endpoint(const char *host, const char *url, bool override_path,
			     const struct im_registry_options *opts, struct im_registry **ret);

/* Requests in flight (registry/slots.c). max_in_flight 0 means the default. */
int im_registry_slots_init(struct im_registry *r, unsigned max_in_flight);
void im_registry_slots_destroy(struct im_registry *r);
/*
 * Wait for the end of a hold (see im_registry_hold_off()) and for a free
 * slot, and take it. deadline_ns is an im_now_ns() time, or 0 to wait
 * without a limit. Return: 0; -EBUSY when a hold lasts past the deadline;
 * or -ETIMEDOUT when the deadline passed while waiting for a slot. Give
 * the slot back with im_registry_slot_release().
 */
int im_registry_slot_acquire(struct im_registry *r, uint64_t deadline_ns);
void im_registry_slot_release(struct im_registry *r);
/*
 * Hold back every request to this host until until_ns (an im_now_ns()
 * time), as a 429 with Retry-After requests. A later hold extends an earlier
 * one, never shortens it.
 */
void im_registry_hold_off(struct im_registry *r, uint64_t until_ns);

/* Mirrors (registry/mirror.c). */
struct im_hosts;
int im_mirrors_setup(struct im_registry *r, const struct im_hosts *hosts,
		     const struct im_registry_options *opts);
void im_mirrors_free(struct im_registry *r);
/*
 * Return the next mirror from *index on that has capability (IM_HOST_*)
 * and is not backing off, advancing *index past it; NULL when none is left.
 * Report the result with im_mirror_report(r, *index - 1, rc).
 */
struct im_registry *im_mirror_next(struct im_registry *r, size_t *index, unsigned capability);
void im_mirror_report(struct im_registry *r, size_t index, int rc);

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
