/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Single flight for chunk fetches: an in-process table of the chunks being
 * fetched, keyed by SHA-256 and length, so that concurrent reads of one
 * chunk send one range request. The first caller becomes the owner and
 * fetches; later callers wait and get a copy of the verified bytes.
 *
 * The key includes the length because a descriptor with the right digest
 * and a wrong length must fail on its own fetch instead of being served
 * bytes of another length.
 *
 * Protocol: every flight returned as IM_FLIGHT_STARTED must get exactly one
 * im_flight_finish() and every IM_FLIGHT_WAITING one exactly one
 * im_flight_wait(), or the waiters hang and the flight leaks. An owner must
 * finish its own flights before it waits on others, so that two readers that
 * each wait on the other's chunk cannot deadlock.
 *
 * Internal to cache/.
 */
#ifndef IM_FLIGHT_H
#define IM_FLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

struct im_flight;
struct im_flight_table;

enum im_flight_role {
	IM_FLIGHT_STARTED = 1,   /* the caller owns the new flight and fetches */
	IM_FLIGHT_WAITING = 2,   /* another caller fetches; wait for it */
	IM_FLIGHT_DUPLICATE = 3, /* the caller already owns this flight */
};

int im_flight_table_new(struct im_flight_table **ret);
/* The table must be empty: no flight unfinished or waited on. */
void im_flight_table_free(struct im_flight_table *t);

/*
 * Join the flight for (digest, length) or start one. caller identifies one
 * im_fetcher_read() call, and slot is that call's index for the chunk. For
 * IM_FLIGHT_DUPLICATE, *ret_slot is the slot given when the caller started
 * the flight.
 * Return: an enum im_flight_role with *ret_flight set, or -ENOMEM.
 */
int im_flight_join(struct im_flight_table *t, const struct im_digest *digest,
		   uint64_t length, const void *caller, size_t slot,
		   struct im_flight **ret_flight, size_t *ret_slot);

/*
 * Start the flight for (digest, length) only if none exists, without ever
 * joining one, for fetches that are optional and must not wait.
 * Return: IM_FLIGHT_STARTED with *ret_flight set, -EBUSY when the chunk is
 * already being fetched, or -ENOMEM.
 */
int im_flight_try_start(struct im_flight_table *t, const struct im_digest *digest,
			uint64_t length, const void *caller, size_t slot,
			struct im_flight **ret_flight);

/*
 * Publish the owner's result and drop its reference. On result 0, data is
 * the verified chunk (length bytes), and it is ignored otherwise. The bytes
 * are copied when someone waits, so the owner may reuse data on return.
 */
void im_flight_finish(struct im_flight_table *t, struct im_flight *f,
		      int result, const void *data);

/*
 * Wait for the owner, copy the chunk into buf (length bytes) and drop the
 * reference. Return: 0, the owner's error, or -ENOMEM when the owner could
 * not keep a copy (the chunk may then be in the store).
 */
int im_flight_wait(struct im_flight_table *t, struct im_flight *f, void *buf);

#endif
