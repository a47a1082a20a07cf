/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mirrors of one registry, from certs.d/HOST/hosts.toml. Each mirror is a
 * registry client of its own (own connections, TLS settings and tokens)
 * that sends every request once. The read functions of registry.c ask
 * im_mirror_next() for each mirror in turn and fall back to the registry
 * itself. A mirror that fails with a network error, a 5xx or bad data is
 * skipped for a back-off time that doubles per failure (1 s up to 8 s).
 * An outage so costs one failed request per back-off period, and reads
 * return to the mirror within 8 s of its recovery. A 404 or 401/403 from a
 * mirror only falls through, because a mirror need not hold every
 * repository.
 *
 * A mirror is another server, so it never gets the registry's credentials.
 * When the options ask for it, the credentials stored for the mirror's own
 * host are looked up (registry/credentials.h) and used instead.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "registry/credentials.h"
#include "registry/hosts.h"
#include "registry/registry_i.h"

#define BACKOFF_FIRST_NS 1000000000ull
#define BACKOFF_MAX_NS 8000000000ull

struct im_mirror {
	struct im_registry *client;
	unsigned capabilities;
	atomic_uint_fast64_t retry_at_ns;  /* im_now_ns() before which it is skipped */
	atomic_uint failures;              /* consecutive failures */
};

/* "host:port" of url, for messages and the loopback check of token realms. */
static int url_authority(const char *url, char **ret)
{
	const char *start = strstr(url, "://");
	size_t len;

	if (!start)
		return -EINVAL;
	start += 3;
	len = strcspn(start, "/?#");
	*ret = strndup(start, len);
	return *ret ? 0 : -ENOMEM;
}

static int setup_mirror(struct im_mirror *m, const struct im_host_config *h,
			const struct im_registry_options *opts)
{
	_cleanup_free_ char *host = NULL;
	struct im_registry_options mirror_opts = {
		.tls_verify = opts->tls_verify && !h->skip_verify,
		.ca_file = h->ca_file,
		.client_cert = h->client_cert,
		.client_key = h->client_key,
		.timeout_seconds = opts->timeout_seconds,
		.max_requests_per_host = opts->max_requests_per_host,
	};
	struct im_credentials creds = {};
	int rc;

	rc = url_authority(h->url, &host);
	if (rc < 0)
		return rc;

	if (opts->mirror_credentials) {
		rc = im_credentials_find_repository(host, opts->repository, opts->auth_file, &creds);
		/* The registry itself remains, so a mirror without usable
		 * credentials is still tried, anonymously. */
		if (rc < 0)
			im_warn("no credentials for mirror \"%s\" (%s); trying it anonymously",
				host, strerror(-rc));
		mirror_opts.username = creds.username;
		mirror_opts.password = creds.password;
		mirror_opts.identity_token = creds.identity_token;
	}

	rc = im_registry_new_endpoint(host, h->url, h->override_path, &mirror_opts, &m->client);
	im_credentials_clear(&creds);
	if (rc < 0)
		return rc;
	m->client->max_attempts = 1;
	m->capabilities = h->capabilities;
	return 0;
}

int im_mirrors_setup(struct im_registry *r, const struct im_hosts *hosts,
		     const struct im_registry_options *opts)
{
	if (hosts->n_mirrors == 0)
		return 0;
	r->mirrors = calloc(hosts->n_mirrors, sizeof(*r->mirrors));
	if (!r->mirrors)
		return -ENOMEM;

	for (size_t i = 0; i < hosts->n_mirrors; i++) {
		int rc = setup_mirror(&r->mirrors[i], &hosts->mirrors[i], opts);

		if (rc < 0)
			return rc;
		r->n_mirrors++;
		im_info("registry \"%s\": mirror %s for%s%s", r->host, hosts->mirrors[i].url,
			(hosts->mirrors[i].capabilities & IM_HOST_PULL) ? " pull" : "",
			(hosts->mirrors[i].capabilities & IM_HOST_RESOLVE) ? " resolve" : "");
	}
	return 0;
}

void im_mirrors_free(struct im_registry *r)
{
	for (size_t i = 0; i < r->n_mirrors; i++)
		im_registry_free(r->mirrors[i].client);
	free(r->mirrors);
	r->mirrors = NULL;
	r->n_mirrors = 0;
}

struct im_registry *im_mirror_next(struct im_registry *r, size_t *index, unsigned capability)
{
	uint64_t now = im_now_ns();

	while (*index < r->n_mirrors) {
		struct im_mirror *m = &r->mirrors[(*index)++];

		if (!(m->capabilities & capability))
			continue;
		if (atomic_load(&m->retry_at_ns) > now)
			continue;
		return m->client;
	}
	return NULL;
}

void im_mirror_report(struct im_registry *r, size_t index, int rc)
{
	struct im_mirror *m = &r->mirrors[index];
	uint64_t backoff;
	unsigned failures;

	if (rc == 0) {
		if (atomic_exchange(&m->failures, 0) > 0)
			im_info("mirror \"%s\" of \"%s\" works again", m->client->host, r->host);
		atomic_store(&m->retry_at_ns, 0);
		return;
	}
	if (rc == -ENOENT || rc == -EACCES || rc == -EINVAL || rc == -ENOMEM)
		return;

	failures = atomic_fetch_add(&m->failures, 1) + 1;
	backoff = failures >= 4 ? BACKOFF_MAX_NS : BACKOFF_FIRST_NS << (failures - 1);
	atomic_store(&m->retry_at_ns, im_now_ns() + backoff);
	im_warn("mirror \"%s\" of \"%s\" failed (%s); using the next host for %.0f s",
		m->client->host, r->host, strerror(-rc), (double)backoff / 1e9);
}
