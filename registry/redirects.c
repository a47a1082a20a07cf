/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The redirect target cache of redirects.h: a short list of entries under
 * one mutex, with one condition variable for threads waiting on a
 * renewal. Nothing here is logged, because targets are signed URLs.
 */
#include "registry/redirects.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

struct entry {
	struct entry *next;
	char *url;
	char *target;          /* NULL while renewing or after a failed renewal */
	uint64_t generation;   /* changes whenever target changes */
	bool renewing;
};

struct im_redirects {
	pthread_mutex_t lock;
	pthread_cond_t renewed;    /* broadcast when any renewal ends */
	struct entry *entries;     /* newest first */
	size_t n_entries;
	uint64_t last_generation;
};

int im_redirects_new(struct im_redirects **ret)
{
	struct im_redirects *c = calloc(1, sizeof(*c));
	pthread_condattr_t attr;

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->renewed, &attr);
	pthread_condattr_destroy(&attr);
	*ret = c;
	return 0;
}

static void entry_free(struct entry *e)
{
	free(e->url);
	free(e->target);
	free(e);
}

void im_redirects_free(struct im_redirects *c)
{
	if (!c)
		return;
	while (c->entries) {
		struct entry *e = c->entries;

		c->entries = e->next;
		entry_free(e);
	}
	pthread_cond_destroy(&c->renewed);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct entry *find(struct im_redirects *c, const char *url)
{
	for (struct entry *e = c->entries; e; e = e->next)
		if (strcmp(e->url, url) == 0)
			return e;
	return NULL;
}

/* Wait on renewed until deadline_ns (im_now_ns() time, 0: none). Return
 * false once the deadline has passed. */
static bool wait_renewed(struct im_redirects *c, uint64_t deadline_ns)
{
	struct timespec until;
	uint64_t now = im_now_ns();

	if (!deadline_ns) {
		pthread_cond_wait(&c->renewed, &c->lock);
		return true;
	}
	if (now >= deadline_ns)
		return false;

	/* im_now_ns() is CLOCK_MONOTONIC, the clock the condition uses. */
	until.tv_sec = (time_t)(deadline_ns / 1000000000u);
	until.tv_nsec = (long)(deadline_ns % 1000000000u);
	pthread_cond_timedwait(&c->renewed, &c->lock, &until);
	return true;
}

char *im_redirects_lookup(struct im_redirects *c, const char *url, uint64_t deadline_ns,
			  uint64_t *ret_generation)
{
	struct entry *e;
	char *target = NULL;

	*ret_generation = 0;
	pthread_mutex_lock(&c->lock);
	while ((e = find(c, url)) && e->renewing) {
		if (!wait_renewed(c, deadline_ns))
			break;
	}
	if (e && !e->renewing && e->target) {
		target = strdup(e->target);
		*ret_generation = e->generation;
	}
	pthread_mutex_unlock(&c->lock);
	return target;
}

bool im_redirects_begin_renew(struct im_redirects *c, const char *url, uint64_t generation)
{
	struct entry *e;
	bool mine = false;

	pthread_mutex_lock(&c->lock);
	e = find(c, url);
	if (e && !e->renewing && e->generation == generation) {
		e->renewing = true;
		free(e->target);
		e->target = NULL;
		mine = true;
	}
	pthread_mutex_unlock(&c->lock);
	return mine;
}

/* Drop the oldest entry that no renewal uses. Called with the lock held. */
static void evict_oldest(struct im_redirects *c)
{
	struct entry **victim = NULL;

	for (struct entry **p = &c->entries; *p; p = &(*p)->next)
		if (!(*p)->renewing)
			victim = p;
	if (victim) {
		struct entry *e = *victim;

		*victim = e->next;
		entry_free(e);
		c->n_entries--;
	}
}

void im_redirects_store(struct im_redirects *c, const char *url, const char *target)
{
	char *copy = strdup(target);
	struct entry *e;

	if (!copy) {
		im_redirects_abandon(c, url);
		return;
	}

	pthread_mutex_lock(&c->lock);
	e = find(c, url);
	if (!e) {
		if (c->n_entries >= IM_REDIRECTS_MAX)
			evict_oldest(c);
		e = calloc(1, sizeof(*e));
		if (e)
			e->url = strdup(url);
		if (e && !e->url) {
			free(e);
			e = NULL;
		}
		if (e) {
			e->next = c->entries;
			c->entries = e;
			c->n_entries++;
		}
	}
	if (e) {
		free(e->target);
		e->target = im_steal_pointer(&copy);
		e->generation = ++c->last_generation;
		e->renewing = false;
	}
	pthread_cond_broadcast(&c->renewed);
	pthread_mutex_unlock(&c->lock);
	free(copy);
}

void im_redirects_abandon(struct im_redirects *c, const char *url)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, url);
	if (e && e->renewing) {
		e->renewing = false;
		e->generation = ++c->last_generation;
	}
	pthread_cond_broadcast(&c->renewed);
	pthread_mutex_unlock(&c->lock);
}
