# SPDX-License-Identifier: Apache-2.0
"""Metadata walk: lstat every entry of an image's tree, cold and warm.

Peers: imgmount (zstd:chunked image, fresh cache per repetition), kernel
overlayfs over the layers unpacked on local disk, and one local directory
unpacked by umoci. The workload is `local_trees.walk` (find -xdev with stat
fields) for every peer. Cold drops the page, dentry and inode caches after
the mount and before the walk. Warm repeats the walk right after on the same
mount. Every row records the entry count, and `entries_match` is False when
the peers disagree about it.
"""

import logging
import shutil

from . import common, local_trees

NAME = "metadata"
WHAT = "find+lstat"
FMT = "zstd:chunked"
# The local trees have no image format of their own.
TREE_FMT = ""
IMAGES = ("large", "many")
QUICK_IMAGES = ("minbase",)

log = logging.getLogger("bench.metadata")


def run(ctx):
    rows = []
    names = QUICK_IMAGES if ctx.quick else IMAGES
    for image in local_trees.available_images(ctx, names, NAME):
        image_rows = (_imgmount_rows(ctx, image) + _overlayfs_rows(ctx, image)
                      + _local_rows(ctx, image))
        _check_entry_counts(image, image_rows)
        rows += image_rows
    return rows


def _walk_rows(ctx, image, fmt, peer, rep, root, **extra):
    """Walk `root` cold, then warm; return the two rows."""
    rows = []
    for state in ("cold", "warm"):
        if state == "cold":
            common.drop_caches()
        before = ctx.link.rx_bytes()
        with common.stopwatch() as timer:
            entries = local_trees.walk(root)
        rows.append(common.row(NAME, image, fmt, peer, state, rep, timer.seconds,
                               what=WHAT, link_bytes=ctx.link.rx_bytes() - before,
                               entries=entries, **extra))
    return rows


def _imgmount_rows(ctx, image):
    rows = []
    for rep in range(ctx.reps):
        cache_dir = local_trees.fresh_dir(ctx, NAME, f"{image}-cache")
        mountpoint = local_trees.fresh_dir(ctx, NAME, f"{image}-imgmount-{rep}")
        try:
            before = ctx.link.rx_bytes()
            with common.imgmount_mount(ctx, ctx.ref(image, FMT), mountpoint,
                                              cache_dir):
                mount_bytes = ctx.link.rx_bytes() - before
                rows += _walk_rows(ctx, image, FMT, "imgmount", rep, mountpoint,
                                   mount_link_bytes=mount_bytes)
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
    return rows


def _overlayfs_rows(ctx, image):
    lowerdirs = local_trees.overlay_lowerdirs(ctx, image)
    mountpoint = local_trees.fresh_dir(ctx, NAME, f"{image}-overlay")
    rows = []
    for rep in range(ctx.reps):
        with local_trees.overlay_mount(ctx, lowerdirs, mountpoint):
            rows += _walk_rows(ctx, image, TREE_FMT, "overlayfs", rep, mountpoint,
                               layers=len(lowerdirs))
    return rows


def _local_rows(ctx, image):
    root = local_trees.local_rootfs(ctx, image)
    rows = []
    for rep in range(ctx.reps):
        rows += _walk_rows(ctx, image, TREE_FMT, "local", rep, root)
    return rows


def _check_entry_counts(image, rows):
    counts = {(r["peer"], r["extra"]["entries"]) for r in rows}
    distinct = {entries for _, entries in counts}
    match = len(distinct) == 1
    if not match:
        log.warning("metadata walk of image %s found different entry counts "
                    "per peer: %s", image, sorted(counts))
    for r in rows:
        r["extra"]["entries_match"] = match
