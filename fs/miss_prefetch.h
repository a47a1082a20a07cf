/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prefetch on a file's first miss. When a read finds a chunk of a file in
 * neither cache, the rest of that file and the files of its directory with
 * the same extension are queued for background fetching. This happens once
 * per file and once per directory for the life of the mount. A program
 * that starts (a loader mapping libraries, an interpreter importing
 * modules) opens many files of a few directories one after another.
 * Without prefetch each cold file costs its reader a round trip. With it,
 * later reads find the chunks in the store or wait for a request that is
 * already in flight.
 *
 * Private to fs/. The state belongs to the one FUSE session of the
 * process: the init callback creates it and the destroy callback frees it.
 */
#ifndef IM_MISS_PREFETCH_H
#define IM_MISS_PREFETCH_H

#include <stdint.h>

#include "fs/daemon.h"
#include "index/tree.h"

/* Create the per-inode state for cfg's tree. Without it (-ENOMEM, logged)
 * nothing is queued and reads work as before. Return: 0 or -ENOMEM. */
int im_miss_prefetch_init(const struct im_daemon_config *cfg);

void im_miss_prefetch_free(void);

/*
 * Queue the prefetch for a read of regular file ino (node, e) that missed.
 * [skip_start, skip_end) are the file bytes that the read requests. The
 * chunks that the read may add to its request are queued too, and the
 * read fetches those it can still claim. Called on the reading thread
 * before the read's own fetch starts, so it only plans and queues.
 */
void im_miss_prefetch_queue(const struct im_daemon_config *cfg, uint64_t ino,
			    const struct im_tree_node *node, const struct im_entry *e,
			    uint64_t skip_start, uint64_t skip_end);

#endif
