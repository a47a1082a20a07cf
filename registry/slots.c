/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A counting semaphore that bounds the HTTP requests one struct im_registry
 * has in flight. Each registry and each mirror has its own struct, so the
 * bound applies per host. Requests that follow a redirect to object
 * storage count against the registry that sent the redirect. A slot is held
 * only while libcurl performs one request, never across a backoff sleep or
 * a token fetch, so a token request cannot wait behind the reads that need
 * its token.
 *
 * After a 429 the whole host is held off, not only the request that got
 * it. Some registries count rejected requests against the quota, so
 * readers that each sent a request inside the penalty window could
 * stretch it. During a hold, the only requests that reach the server are
 * those already in flight when the 429 arrived.
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

static struct timespec to_timespec(uint64_t ns)
{
	return (struct timespec){
		.tv_sec = (time_t)(ns / 1000000000u),
		.tv_nsec = (long)(ns % 1000000000u),
	};
}

/* Wait while a hold is in force. Called and returns with slots_lock held. */
static int wait_for_hold(struct im_registry *r, uint64_t deadline_ns)
{
	uint64_t now = im_now_ns();

	while (now < r->hold_until_ns) {
		struct timespec until;

		if (deadline_ns && deadline_ns <= r->hold_until_ns)
			return -EBUSY;
		/* slot_freed is also broadcast when the hold changes, so a
		 * wakeup rechecks the current end of the hold. */
		until = to_timespec(r->hold_until_ns);
		pthread_cond_timedwait(&r->slot_freed, &r->slots_lock, &until);
		now = im_now_ns();
	}
	return 0;
}

int im_registry_slot_acquire(struct im_registry *r, uint64_t deadline_ns)
{
	struct timespec until = to_timespec(deadline_ns);
	int rc;

	pthread_mutex_lock(&r->slots_lock);
	rc = wait_for_hold(r, deadline_ns);
	while (rc == 0 && r->in_flight >= r->max_in_flight) {
		if (deadline_ns == 0)
			pthread_cond_wait(&r->slot_freed, &r->slots_lock);
		else if (pthread_cond_timedwait(&r->slot_freed, &r->slots_lock, &until) == ETIMEDOUT)
			rc = -ETIMEDOUT;
		/* A 429 may have arrived while this thread waited for a slot. */
		if (rc == 0)
			rc = wait_for_hold(r, deadline_ns);
	}
	if (rc == 0)
		r->in_flight++;
	pthread_mutex_unlock(&r->slots_lock);
	return rc;
}

void im_registry_hold_off(struct im_registry *r, uint64_t until_ns)
{
	pthread_mutex_lock(&r->slots_lock);
	if (until_ns > r->hold_until_ns) {
		r->hold_until_ns = until_ns;
		pthread_cond_broadcast(&r->slot_freed);
	}
	pthread_mutex_unlock(&r->slots_lock);
}

void im_registry_slot_release(struct im_registry *r)
{
	pthread_mutex_lock(&r->slots_lock);
	r->in_flight--;
	/* Broadcast, because threads waiting for a hold to end share the
	 * condition variable and could take a signal meant for a slot waiter. */
	pthread_cond_broadcast(&r->slot_freed);
	pthread_mutex_unlock(&r->slots_lock);
}
