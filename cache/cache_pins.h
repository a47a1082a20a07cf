/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pins: the compiled indexes that mounted images use, so that eviction and
 * `cache prune` never delete them (nor, for prune, their chunks).
 *
 * Each daemon writes CACHE/pins/<pid>-<random>.pin, one TOC digest
 * ("sha256:<hex>") per line, and holds a shared flock(2) on it for as long
 * as it runs. A pin is live exactly while some process holds that lock:
 * the kernel drops it when the last descriptor closes, including on
 * SIGKILL, and it survives the fork of fuse_daemonize() because flock locks
 * belong to the open file description. So no PID or start time has to be
 * compared, and a recycled PID cannot keep a dead pin alive. Readers that
 * can take an exclusive lock on a pin know it is dead and delete it.
 */
#ifndef IM_CACHE_PINS_H
#define IM_CACHE_PINS_H

#include <stddef.h>

#include "cache/cache_files.h"
#include "common/digest.h"

/*
 * Pin the indexes of tocs[0..n) until *ret_fd is closed (normally at exit).
 * The pin file is written under a temporary name and renamed into place
 * once locked, so a reader never sees an unlocked live pin.
 * Return: 0 or -errno.
 */
int im_cache_pin(const char *dir, const struct im_digest *tocs, size_t n, int *ret_fd);

/*
 * Add the TOC digests of every live pin to set (not sealed), and delete
 * the pin files of processes that are gone. Return: 0 or -errno.
 */
int im_cache_read_pins(const char *dir, struct im_digest_set *set);

#endif
