/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The single-flight table: a fixed array of hash buckets under one mutex.
 * The lock is held only to look up, link and unlink flights and to update
 * reference counts; copies of chunk bytes happen outside it.
 */
#include "cache/flight.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Power of two. Keys are SHA-256 values, so their first bytes are already
 * uniformly spread. */
#define FLIGHT_BUCKETS 256

struct im_flight {
	struct im_flight *next;   /* bucket chain, protected by the table lock */
	struct im_digest digest;
	uint64_t length;
	const void *owner;        /* written once, read only by the owner */
	size_t owner_slot;
	unsigned refs;            /* owner + waiters, protected by the table lock */
	bool done;                /* protected by the table lock */
	int result;               /* valid once done */
	uint8_t *data;            /* length bytes once done and result is 0 */
	pthread_cond_t done_cond;
};

struct im_flight_table {
	pthread_mutex_t lock;
	struct im_flight *buckets[FLIGHT_BUCKETS];
};

int im_flight_table_new(struct im_flight_table **ret)
{
	struct im_flight_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	*ret = t;
	return 0;
}

void im_flight_table_free(struct im_flight_table *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static struct im_flight **bucket_of(struct im_flight_table *t,
				    const struct im_digest *digest)
{
	return &t->buckets[digest->bytes[0] % FLIGHT_BUCKETS];
}

static void free_flight(struct im_flight *f)
{
	pthread_cond_destroy(&f->done_cond);
	free(f->data);
	free(f);
}

/* Unlink f from its bucket. Called with the lock held. */
static void unlink_flight(struct im_flight_table *t, struct im_flight *f)
{
	struct im_flight **p = bucket_of(t, &f->digest);

	while (*p != f)
		p = &(*p)->next;
	*p = f->next;
	f->next = NULL;
}

/* Find the flight for (digest, length). Called with the lock held. */
static struct im_flight *find_flight(struct im_flight_table *t,
				     const struct im_digest *digest, uint64_t length)
{
	struct im_flight *f;

	for (f = *bucket_of(t, digest); f; f = f->next)
		if (f->length == length && im_digest_equal(&f->digest, digest))
			return f;
	return NULL;
}

/* Create and link a flight owned by caller. Called with the lock held. */
static struct im_flight *start_flight(struct im_flight_table *t,
				      const struct im_digest *digest, uint64_t length,
				      const void *caller, size_t slot)
{
	struct im_flight **bucket = bucket_of(t, digest);
	struct im_flight *f;

	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->digest = *digest;
	f->length = length;
	f->owner = caller;
	f->owner_slot = slot;
	f->refs = 1;
	pthread_cond_init(&f->done_cond, NULL);
	f->next = *bucket;
	*bucket = f;
	return f;
}

int im_flight_join(struct im_flight_table *t, const struct im_digest *digest,
		   uint64_t length, const void *caller, size_t slot,
		   struct im_flight **ret_flight, size_t *ret_slot)
{
	struct im_flight *f;
	int role;

	pthread_mutex_lock(&t->lock);
	f = find_flight(t, digest, length);

	if (f && f->owner == caller) {
		*ret_slot = f->owner_slot;
		role = IM_FLIGHT_DUPLICATE;
	} else if (f) {
		f->refs++;
		role = IM_FLIGHT_WAITING;
	} else {
		f = start_flight(t, digest, length, caller, slot);
		if (!f) {
			pthread_mutex_unlock(&t->lock);
			return -ENOMEM;
		}
		role = IM_FLIGHT_STARTED;
	}
	pthread_mutex_unlock(&t->lock);

	*ret_flight = f;
	return role;
}

int im_flight_try_start(struct im_flight_table *t, const struct im_digest *digest,
			uint64_t length, const void *caller, size_t slot,
			struct im_flight **ret_flight)
{
	struct im_flight *f;
	int r = IM_FLIGHT_STARTED;

	pthread_mutex_lock(&t->lock);
	if (find_flight(t, digest, length)) {
		r = -EBUSY;
	} else {
		f = start_flight(t, digest, length, caller, slot);
		if (f)
			*ret_flight = f;
		else
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

void im_flight_finish(struct im_flight_table *t, struct im_flight *f,
		      int result, const void *data)
{
	uint8_t *copy = NULL;

	/* Without waiters, unlink and free under one lock hold, so that no
	 * waiter can join a flight that will never publish a copy. */
	pthread_mutex_lock(&t->lock);
	if (f->refs == 1) {
		unlink_flight(t, f);
		pthread_mutex_unlock(&t->lock);
		free_flight(f);
		return;
	}
	pthread_mutex_unlock(&t->lock);

	/* Waiters that join during the copy still find the flight and get
	 * the copy too. */
	if (result == 0) {
		copy = malloc(f->length ? f->length : 1);
		if (copy)
			memcpy(copy, data, f->length);
		else
			result = -ENOMEM;
	}

	pthread_mutex_lock(&t->lock);
	unlink_flight(t, f);
	f->result = result;
	f->data = copy;
	f->done = true;
	f->refs--;
	pthread_cond_broadcast(&f->done_cond);
	pthread_mutex_unlock(&t->lock);
}

int im_flight_wait(struct im_flight_table *t, struct im_flight *f, void *buf)
{
	bool last;
	int result;

	pthread_mutex_lock(&t->lock);
	while (!f->done)
		pthread_cond_wait(&f->done_cond, &t->lock);
	result = f->result;
	pthread_mutex_unlock(&t->lock);

	/* data is immutable once done, and our reference keeps it alive. */
	if (result == 0)
		memcpy(buf, f->data, f->length);

	pthread_mutex_lock(&t->lock);
	last = --f->refs == 0;
	pthread_mutex_unlock(&t->lock);

	if (last)
		free_flight(f);
	return result;
}
