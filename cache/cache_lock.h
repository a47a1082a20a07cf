/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cache-wide deletion lock, CACHE/lock: an exclusive flock(2) held by
 * the one process that evicts or prunes. Internal to cache/.
 */
#ifndef IM_CACHE_LOCK_H
#define IM_CACHE_LOCK_H

#include <stdbool.h>

/* Take the lock, waiting for it when wait is true. Closing the returned fd
 * releases it. Return: an fd, -EWOULDBLOCK when held elsewhere and wait is
 * false, or -errno. */
int im_cache_lock(const char *dir, bool wait);

#endif
