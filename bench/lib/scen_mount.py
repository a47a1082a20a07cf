# SPDX-License-Identifier: Apache-2.0
"""Mount time, daemon memory and index size for the largest images.

Mount time runs from the start of the mount command until stat(2) of the
mount's root returns the new file system.

- imgmount (zstd:chunked): cold mounts with an empty cache after dropping
  the page cache, so the TOCs cross the link and are compiled into indexes.
  Warm mounts again with the same cache, so the indexes are local. Each row
  records the daemon's VmRSS and VmHWM right after the mount and after a
  full metadata walk, and the size of the compiled indexes on disk.
- overlayfs: mounting the unpacked layers, cold after dropping caches, then
  warm.
- stargz (only with --stargz-grpc): `ctr-remote image rpull` of the estargz
  image, which mounts every layer lazily, after removing all images and
  snapshots from the private containerd. Both states run this way.
"""

import os
import shutil
import time
from pathlib import Path

from . import common, local_trees

NAME = "mount"
WHAT = "mount to first stat /"
FMT = "zstd:chunked"
IMAGES = ("large", "many")
QUICK_IMAGES = ("minbase", "many")
STAT_TIMEOUT_SECONDS = 30


def run(ctx):
    rows = []
    names = QUICK_IMAGES if ctx.quick else IMAGES
    for image in local_trees.available_images(ctx, names, NAME):
        rows += _imgmount_rows(ctx, image)
        rows += _overlayfs_rows(ctx, image)
        if getattr(ctx.opts, "stargz_grpc", None) and "estargz" in ctx.images[image]:
            rows += _stargz_rows(ctx, image)
    return rows


def wait_for_root(mountpoint):
    """Call stat(2) on `mountpoint` until it reports a device other than its
    parent's; raise after STAT_TIMEOUT_SECONDS."""
    parent_device = os.stat(Path(mountpoint).parent).st_dev
    deadline = time.monotonic() + STAT_TIMEOUT_SECONDS
    while os.stat(mountpoint).st_dev == parent_device:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{mountpoint} is still not mounted "
                               f"{STAT_TIMEOUT_SECONDS}s after the mount command")
        time.sleep(0.001)


def index_bytes(cache_dir):
    """Return the disk usage in bytes of the compiled indexes in an imgmount
    cache directory."""
    return sum(path.stat().st_blocks * 512
               for path in Path(cache_dir).glob("index/*.idx"))


def _memory_extra(pid, when):
    rss, hwm = common.rss_kib(pid) if pid is not None else (None, None)
    return {f"rss_kib_{when}": rss, f"hwm_kib_{when}": hwm}


def _imgmount_rows(ctx, image):
    rows = []
    for rep in range(ctx.reps):
        cache_dir = local_trees.fresh_dir(ctx, NAME, f"{image}-cache")
        try:
            for state in ("cold", "warm"):
                mountpoint = local_trees.fresh_dir(ctx, NAME,
                                                   f"{image}-imgmount-{rep}-{state}")
                if state == "cold":
                    common.drop_caches()
                before = ctx.link.rx_bytes()
                start = time.monotonic()
                with common.imgmount_mount(ctx, ctx.ref(image, FMT),
                                                  mountpoint, cache_dir) as pid:
                    wait_for_root(mountpoint)
                    seconds = time.monotonic() - start
                    link_bytes = ctx.link.rx_bytes() - before

                    extra = _memory_extra(pid, "mount")
                    extra["entries"] = local_trees.walk(mountpoint)
                    extra.update(_memory_extra(pid, "walk"))
                    extra["index_bytes"] = index_bytes(cache_dir)
                rows.append(common.row(NAME, image, FMT, "imgmount", state, rep,
                                       seconds, what=WHAT, link_bytes=link_bytes,
                                       **extra))
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
    return rows


def _overlayfs_rows(ctx, image):
    lowerdirs = local_trees.overlay_lowerdirs(ctx, image)
    mountpoint = local_trees.fresh_dir(ctx, NAME, f"{image}-overlay")
    rows = []
    for rep in range(ctx.reps):
        for state in ("cold", "warm"):
            if state == "cold":
                common.drop_caches()
            start = time.monotonic()
            with local_trees.overlay_mount(ctx, lowerdirs, mountpoint):
                wait_for_root(mountpoint)
                seconds = time.monotonic() - start
            rows.append(common.row(NAME, image, "", "overlayfs", state, rep,
                                   seconds, what=WHAT, layers=len(lowerdirs)))
    return rows


def _containerd(ctx):
    """Return the run's private containerd, starting it on first use
    (bench/run stops it at the end)."""
    if ctx.containerd is None:
        from .containerd import Containerd
        ctx.containerd = Containerd(ctx.work_dir / "containerd",
                                    stargz_grpc=ctx.opts.stargz_grpc,
                                    insecure_hosts=[ctx.link.registry])
    return ctx.containerd


def _stargz_rows(ctx, image):
    # NOTE: never run yet, because Debian 12 has no containerd-stargz-grpc.
    # Its own cache directory outlives remove_all(), so "cold" may be warm.
    containerd = _containerd(ctx)
    ref = ctx.tag_ref(image, "estargz")
    rows = []
    try:
        for rep in range(ctx.reps):
            for state in ("cold", "warm"):
                containerd.remove_all()
                if state == "cold":
                    common.drop_caches()
                before = ctx.link.rx_bytes()
                with common.stopwatch() as timer:
                    containerd.pull(ref, snapshotter="stargz")
                rows.append(common.row(NAME, image, "estargz", "stargz", state, rep,
                                       timer.seconds, what=WHAT,
                                       link_bytes=ctx.link.rx_bytes() - before))
    finally:
        containerd.remove_all()
    return rows
