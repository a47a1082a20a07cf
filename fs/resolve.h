/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Path lookup in a merged image tree that follows symlinks, for the
 * commands that read an image without mounting it. The walk behaves like
 * the kernel's inside a chroot at the image root: an absolute link target
 * starts again at the root, ".." never climbs above it, and only the
 * in-memory tree is consulted, never a host path.
 */
#ifndef IM_RESOLVE_H
#define IM_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>

#include "index/tree.h"

/* Symlinks followed in one lookup before it fails with -ELOOP (the limit
 * of Linux path walks). */
#define IM_RESOLVE_MAX_HOPS 40

/*
 * Find path, a "/"-separated path in which a leading "/" is optional and
 * "" names the root. Symlinks in the middle of the path are always
 * followed. A symlink as the last component is followed only with
 * follow_last, or when a trailing "/" comes after it. A non-directory
 * followed by "/" fails with -ENOTDIR.
 * Return: 0 with the inode number in *ret, -ENOENT, -ENOTDIR, -ELOOP,
 * -ENAMETOOLONG (the path grows past 1 MiB with link targets spliced in),
 * or -ENOMEM.
 */
int im_resolve_path(const struct im_tree *t, const char *path, bool follow_last,
		    uint64_t *ret);

#endif
