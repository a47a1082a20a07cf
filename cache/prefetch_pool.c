/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The prefetch worker pool: a FIFO of jobs under one mutex, and workers
 * that sleep on a condition variable until a job or shutdown arrives.
 */
#include "cache/prefetch_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* Queued jobs beyond this are dropped. A job spans at most 512 KiB of a
 * blob, so the queue has room for the next 8 MiB read-ahead windows of a
 * few streams, or for the files that several cold directories queue. */
#define QUEUE_MAX 128

/* Upper bound on worker threads, so a bad argument cannot exhaust them. */
#define THREADS_MAX 16

struct job {
	struct job *next;
	struct im_blob_ref blob;
	size_t n;
	struct im_chunk chunks[];
};

struct im_prefetch_pool {
	im_prefetch_fn *fn;
	void *context;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *head;       /* protected by lock */
	struct job *tail;       /* protected by lock */
	unsigned queued;        /* protected by lock */
	bool stopping;          /* protected by lock */

	unsigned n_threads;
	pthread_t threads[THREADS_MAX];
};

/* Take the oldest job, waiting for one. Return: NULL on shutdown. */
static struct job *take_job(struct im_prefetch_pool *pool)
{
	struct job *job;

	pthread_mutex_lock(&pool->lock);
	while (!pool->head && !pool->stopping)
		pthread_cond_wait(&pool->wake, &pool->lock);

	job = pool->stopping ? NULL : pool->head;
	if (job) {
		pool->head = job->next;
		if (!pool->head)
			pool->tail = NULL;
		pool->queued--;
	}
	pthread_mutex_unlock(&pool->lock);
	return job;
}

static void *worker_main(void *arg)
{
	struct im_prefetch_pool *pool = arg;
	struct job *job;

	while ((job = take_job(pool))) {
		pool->fn(pool->context, &job->blob, job->chunks, job->n);
		free(job);
	}
	return NULL;
}

int im_prefetch_pool_new(unsigned threads, im_prefetch_fn *fn, void *context,
			 struct im_prefetch_pool **ret)
{
	struct im_prefetch_pool *pool;
	int r;

	if (threads == 0 || threads > THREADS_MAX)
		return -EINVAL;

	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pool->fn = fn;
	pool->context = context;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);

	for (unsigned i = 0; i < threads; i++) {
		r = -pthread_create(&pool->threads[i], NULL, worker_main, pool);
		if (r < 0) {
			im_log_errno(r, "cannot start prefetch thread %u of %u", i + 1, threads);
			im_prefetch_pool_free(pool);
			return r;
		}
		pool->n_threads++;
	}

	*ret = pool;
	return 0;
}

void im_prefetch_pool_free(struct im_prefetch_pool *pool)
{
	struct job *job;

	if (!pool)
		return;

	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);

	for (unsigned i = 0; i < pool->n_threads; i++)
		pthread_join(pool->threads[i], NULL);

	while ((job = pool->head)) {
		pool->head = job->next;
		free(job);
	}
	pthread_cond_destroy(&pool->wake);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

int im_prefetch_pool_submit(struct im_prefetch_pool *pool, const struct im_blob_ref *blob,
			    const struct im_chunk *chunks, size_t n)
{
	struct job *job;
	int r = 0;

	if (n == 0)
		return 0;
	if (n > (SIZE_MAX - sizeof(*job)) / sizeof(*chunks))
		return -ENOMEM;

	job = malloc(sizeof(*job) + n * sizeof(*chunks));
	if (!job)
		return -ENOMEM;
	job->next = NULL;
	job->blob = *blob;
	job->n = n;
	memcpy(job->chunks, chunks, n * sizeof(*chunks));

	pthread_mutex_lock(&pool->lock);
	if (pool->stopping || pool->queued >= QUEUE_MAX) {
		r = -EAGAIN;
	} else {
		if (pool->tail)
			pool->tail->next = job;
		else
			pool->head = job;
		pool->tail = job;
		pool->queued++;
		pthread_cond_signal(&pool->wake);
	}
	pthread_mutex_unlock(&pool->lock);

	if (r < 0)
		free(job);
	return r;
}
