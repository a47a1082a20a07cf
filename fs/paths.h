/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Default locations: the shared cache directory and the runtime directory
 * that holds control sockets.
 */
#ifndef IM_PATHS_H
#define IM_PATHS_H

#include <stddef.h>

/*
 * The default cache directory: /var/cache/imgmount for root, so every mount
 * on the node shares one cache; $XDG_CACHE_HOME/imgmount or
 * ~/.cache/imgmount for other users.
 * Return: 0, or -ENAMETOOLONG/-ENOENT (no home directory).
 */
int im_default_cache_dir(char *out, size_t out_size);

/* /run/imgmount for root, $XDG_RUNTIME_DIR/imgmount or /tmp/imgmount-UID
 * otherwise. */
int im_runtime_dir(char *out, size_t out_size);

/* Make path absolute against the working directory without touching the
 * file system (a FUSE mountpoint must not be stat'ed by its own daemon
 * before it serves requests). */
int im_absolute_path(const char *path, char *out, size_t out_size);

#endif
