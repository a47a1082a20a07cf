# SPDX-License-Identifier: Apache-2.0
"""Random 4 KiB reads of /data/big.bin of image bigfile with 16 threads, warm.

fio (psync, buffered, 16 threads, time based) runs on imgmount (zstd:chunked,
fresh cache, so the first full read fetches every chunk), on kernel
overlayfs over the unpacked layer, and on the local unpacked directory. The
file is read in full before every fio run, so every run starts with the file
in the page cache.

Rows record fio's IOPS. `seconds` is the time that FIXED_READS reads take at
that rate, so that lower is better as for every other scenario.
"""

import contextlib
import shutil

from . import common, local_trees

NAME = "randread"
FMT = "zstd:chunked"
# The local trees have no image format of their own.
PEER_FMT = {"imgmount": FMT, "overlayfs": "", "local": ""}
IMAGE = "bigfile"
FILE = "data/big.bin"
JOBS = 16
FIXED_READS = 1_000_000
RUNTIME_SECONDS = 10
QUICK_RUNTIME_SECONDS = 3
WHAT = f"fio randread 4k x{JOBS}"


def run(ctx):
    if not local_trees.available_images(ctx, [IMAGE], NAME):
        return []

    runtime = QUICK_RUNTIME_SECONDS if ctx.quick else RUNTIME_SECONDS
    rows = []
    for peer, tree in (("imgmount", _imgmount_tree), ("overlayfs", _overlayfs_tree),
                       ("local", _local_tree)):
        with tree(ctx) as root:
            path = root / FILE
            for rep in range(ctx.reps):
                # Read the file before every run, not once, so that a page
                # cache dropped in between (by another run on the machine)
                # cannot turn a warm run cold.
                local_trees.read_file(path)
                iops, reads = local_trees.fio_randread(path, runtime, jobs=JOBS)
                rows.append(common.row(NAME, IMAGE, PEER_FMT[peer], peer, "warm", rep,
                                       FIXED_READS / iops, what=WHAT,
                                       iops=round(iops), reads=reads,
                                       runtime_s=runtime))
    return rows


@contextlib.contextmanager
def _imgmount_tree(ctx):
    cache_dir = local_trees.fresh_dir(ctx, NAME, "cache")
    mountpoint = local_trees.fresh_dir(ctx, NAME, "imgmount")
    try:
        with common.imgmount_mount(ctx, ctx.ref(IMAGE, FMT), mountpoint,
                                          cache_dir):
            yield mountpoint
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


@contextlib.contextmanager
def _overlayfs_tree(ctx):
    mountpoint = local_trees.fresh_dir(ctx, NAME, "overlay")
    with local_trees.overlay_mount(ctx, local_trees.overlay_lowerdirs(ctx, IMAGE),
                                   mountpoint):
        yield mountpoint


@contextlib.contextmanager
def _local_tree(ctx):
    yield local_trees.local_rootfs(ctx, IMAGE)
