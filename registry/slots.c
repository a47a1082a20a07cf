/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A counting semaphore that bounds the HTTP requests one struct im_registry
 * has in flight. Each registry and each mirror has its own struct, so the
 * bound applies per host. Requests that follow a redirect to object
 * storage count against the registry that sent the redirect. A slot is held
 * only while libcurl performs one request, never across a backoff sleep or
 * a token fetch, so a token request cannot wait behind the reads that need
 * its token.
 */
#include <errno.h>
#include <time.h>

#include "common/util.h"
#include "registry/registry_i.h"

int im_registry_slots_init(struct im_registry *r, unsigned max_in_flight)
{
	pthread_condattr_t attr;
	int rc;

	r->max_in_flight = max_in_flight ? max_in_flight : IM_REGISTRY_MAX_IN_FLIGHT_DEFAULT;
	r->in_flight = 0;

	rc = pthread_condattr_init(&attr);
	if (rc != 0)
		return -rc;
	/* Deadlines are im_now_ns() values, which are CLOCK_MONOTONIC. */
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&r->slot_freed, &attr);
	pthread_condattr_destroy(&attr);
	if (rc != 0)
		return -rc;

	pthread_mutex_init(&r->slots_lock, NULL);
	r->slots_ready = true;
	return 0;
}

void im_registry_slots_destroy(struct im_registry *r)
{
	if (!r->slots_ready)
		return;
	pthread_cond_destroy(&r->slot_freed);
	pthread_mutex_destroy(&r->slots_lock);
	r->slots_ready = false;
}

int im_registry_slot_acquire(struct im_registry *r, uint64_t deadline_ns)
{
	struct timespec until = {
		.tv_sec = (time_t)(deadline_ns / 1000000000u),
		.tv_nsec = (long)(deadline_ns % 1000000000u),
	};
	int rc = 0;

	pthread_mutex_lock(&r->slots_lock);
	while (r->in_flight >= r->max_in_flight && rc == 0) {
		if (deadline_ns == 0)
			pthread_cond_wait(&r->slot_freed, &r->slots_lock);
		else if (pthread_cond_timedwait(&r->slot_freed, &r->slots_lock, &until) == ETIMEDOUT)
			rc = -ETIMEDOUT;
	}
	if (rc == 0)
		r->in_flight++;
	pthread_mutex_unlock(&r->slots_lock);
	return rc;
}

void im_registry_slot_release(struct im_registry *r)
{
	pthread_mutex_lock(&r->slots_lock);
	r->in_flight--;
	pthread_cond_signal(&r->slot_freed);
	pthread_mutex_unlock(&r->slots_lock);
}
