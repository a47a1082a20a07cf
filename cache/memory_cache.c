/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory cache: a chained hash table that doubles when it contains more
 * entries than buckets, and a doubly linked list in recency order (head is
 * the most recently used). Entries carry a reference count so that copies
 * run without the mutex; see memory_cache.h.
 */
#include "cache/memory_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 256u

struct entry {
	struct im_digest digest;
	size_t length;
	unsigned refs;          /* the table's reference plus one per reader */
	struct entry *hash_next;
	struct entry *prev;     /* toward the head (more recent) */
	struct entry *next;
	uint8_t data[];
};

struct im_memory_cache {
	pthread_mutex_t lock;
	uint64_t max_bytes;
	uint64_t bytes;         /* payload bytes of the entries in the table */
	struct entry **buckets;
	size_t n_buckets;       /* a power of two */
	size_t count;
	struct entry *head;
	struct entry *tail;
};

int im_memory_cache_new(uint64_t max_bytes, struct im_memory_cache **ret)
{
	struct im_memory_cache *mc;

	mc = calloc(1, sizeof(*mc));
	if (!mc)
		return -ENOMEM;
	mc->buckets = calloc(INITIAL_BUCKETS, sizeof(*mc->buckets));
	if (!mc->buckets) {
		free(mc);
		return -ENOMEM;
	}
	mc->n_buckets = INITIAL_BUCKETS;
	mc->max_bytes = max_bytes;
	pthread_mutex_init(&mc->lock, NULL);
	*ret = mc;
	return 0;
}

void im_memory_cache_free(struct im_memory_cache *mc)
{
	if (!mc)
		return;
	for (struct entry *e = mc->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	free(mc->buckets);
	pthread_mutex_destroy(&mc->lock);
	free(mc);
}

/* The digest is a SHA-256, so its first bytes are already uniform. */
static size_t bucket_of(const struct im_memory_cache *mc, const struct im_digest *digest)
{
	size_t h;

	memcpy(&h, digest->bytes, sizeof(h));
	return h & (mc->n_buckets - 1);
}

static struct entry *find(struct im_memory_cache *mc, const struct im_digest *digest,
			  size_t len)
{
	for (struct entry *e = mc->buckets[bucket_of(mc, digest)]; e; e = e->hash_next)
		if (e->length == len && im_digest_equal(&e->digest, digest))
			return e;
	return NULL;
}

static void list_unlink(struct im_memory_cache *mc, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		mc->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		mc->tail = e->prev;
	e->prev = e->next = NULL;
}

static void list_push_head(struct im_memory_cache *mc, struct entry *e)
{
	e->prev = NULL;
	e->next = mc->head;
	if (mc->head)
		mc->head->prev = e;
	mc->head = e;
	if (!mc->tail)
		mc->tail = e;
}

static void hash_remove(struct im_memory_cache *mc, struct entry *e)
{
	struct entry **p = &mc->buckets[bucket_of(mc, &e->digest)];

	while (*p != e)
		p = &(*p)->hash_next;
	*p = e->hash_next;
	e->hash_next = NULL;
}

/* Double the bucket array; on allocation failure keep the longer chains. */
static void grow(struct im_memory_cache *mc)
{
	size_t n = mc->n_buckets * 2;
	struct entry **buckets = calloc(n, sizeof(*buckets));
	struct entry **old = mc->buckets;
	size_t old_n = mc->n_buckets;

	if (!buckets)
		return;
	mc->buckets = buckets;
	mc->n_buckets = n;
	for (size_t i = 0; i < old_n; i++) {
		for (struct entry *e = old[i], *next; e; e = next) {
			size_t b = bucket_of(mc, &e->digest);

			next = e->hash_next;
			e->hash_next = buckets[b];
			buckets[b] = e;
		}
	}
	free(old);
}

/* Drop the table's reference; the last reader frees a busy entry. */
static void remove_entry(struct im_memory_cache *mc, struct entry *e)
{
	hash_remove(mc, e);
	list_unlink(mc, e);
	mc->bytes -= e->length;
	mc->count--;
	if (--e->refs == 0)
		free(e);
}

bool im_memory_cache_get(struct im_memory_cache *mc, const struct im_digest *digest,
			 void *buf, size_t len)
{
	struct entry *e;

	pthread_mutex_lock(&mc->lock);
	e = find(mc, digest, len);
	if (e) {
		list_unlink(mc, e);
		list_push_head(mc, e);
		e->refs++;
	}
	pthread_mutex_unlock(&mc->lock);
	if (!e)
		return false;

	memcpy(buf, e->data, len);

	pthread_mutex_lock(&mc->lock);
	if (--e->refs == 0)
		free(e);
	pthread_mutex_unlock(&mc->lock);
	return true;
}

void im_memory_cache_put(struct im_memory_cache *mc, const struct im_digest *digest,
			 const void *buf, size_t len)
{
	struct entry *e;

	if (len == 0 || len > mc->max_bytes / 4)
		return;
	e = malloc(sizeof(*e) + len);
	if (!e)
		return;
	*e = (struct entry){ .digest = *digest, .length = len, .refs = 1 };
	memcpy(e->data, buf, len);

	pthread_mutex_lock(&mc->lock);
	if (find(mc, digest, len)) {
		pthread_mutex_unlock(&mc->lock);
		free(e);
		return;
	}
	while (mc->tail && mc->bytes + len > mc->max_bytes)
		remove_entry(mc, mc->tail);
	if (mc->count >= mc->n_buckets)
		grow(mc);

	size_t b = bucket_of(mc, digest);

	e->hash_next = mc->buckets[b];
	mc->buckets[b] = e;
	list_push_head(mc, e);
	mc->bytes += len;
	mc->count++;
	pthread_mutex_unlock(&mc->lock);
}

uint64_t im_memory_cache_bytes(struct im_memory_cache *mc)
{
	uint64_t bytes;

	pthread_mutex_lock(&mc->lock);
	bytes = mc->bytes;
	pthread_mutex_unlock(&mc->lock);
	return bytes;
}
