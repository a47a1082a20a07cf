/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE daemon: serves one merged tree at one mountpoint with the libfuse3
 * low-level API, multithreaded, until SIGTERM/SIGINT or an unmount.
 */
#ifndef IM_DAEMON_H
#define IM_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/fetcher.h"
#include "index/layer_index.h"
#include "index/tree.h"

/* One image layer as the daemon sees it: its index and where its blob is. */
struct im_mount_layer {
	struct im_layer_index *index;
	struct im_blob_ref blob;
};

struct im_daemon_config {
	const char *mountpoint;
	const char *fsname;           /* shown in /proc/mounts, e.g. the image reference */
	struct im_tree *tree;
	struct im_mount_layer *layers; /* tree layer i is layers[i] */
	size_t n_layers;
	struct im_fetcher *fetcher;
	bool foreground;              /* stay attached; otherwise daemonize once mounted */
	bool debug;                   /* libfuse debug output (implies foreground) */
	bool allow_other;             /* let other users read the mount */
	unsigned max_threads;         /* 0 means the libfuse default */
};

/*
 * Mount, detach unless foreground (the caller's process exits only after
 * the mount is visible), start the control socket, and serve until the
 * filesystem is unmounted or a SIGTERM/SIGINT arrives, which unmounts it.
 * Return: 0 on a clean exit, or a negative errno (logged).
 */
int im_daemon_run(const struct im_daemon_config *cfg);

#endif
