# SPDX-License-Identifier: Apache-2.0
"""Sequential read of /data/big.bin of image bigfile in 1 MiB reads.

Peers:
- imgmount: mount the zstd:chunked image with a fresh cache, drop caches,
  time the read (cold, over the link), then read again (warm). The mount is
  not timed.
- skopeo+umoci: cold times the full pull of the gzip image over the link
  (`skopeo copy`), `umoci unpack` and the read of the unpacked file, because
  umoci 0.4.7 cannot unpack zstd layers. Warm reads the unpacked file again.
- local: the file in a directory unpacked before the measurement, cold after
  dropping caches and then warm.

Rows carry the throughput in MB/s (10^6 bytes per second) and the bytes that
crossed the link. Cold rows of the peers that read over the link also carry
the throughput as a fraction of the configured link rate.
"""

import shutil

from . import common, local_trees

NAME = "seqread"
WHAT = "read /data/big.bin"
FMT = "zstd:chunked"
# The format each peer reads; the local tree has none of its own.
PEER_FMT = {"imgmount": FMT, "skopeo+umoci": "gzip", "local": ""}
IMAGE = "bigfile"
FILE = "data/big.bin"


def run(ctx):
    if not local_trees.available_images(ctx, [IMAGE], NAME):
        return []
    return _imgmount_rows(ctx) + _skopeo_umoci_rows(ctx) + _local_rows(ctx)


def _row(ctx, peer, state, rep, seconds, size, link_bytes, **extra):
    megabytes_per_second = size / seconds / 1e6
    rate = local_trees.link_rate_bytes_per_second(ctx)
    over_link = state == "cold" and peer != "local"
    fraction = size / seconds / rate if rate and over_link else None
    return common.row(NAME, IMAGE, PEER_FMT[peer], peer, state, rep, seconds, what=WHAT,
                      link_bytes=link_bytes, bytes=size,
                      mb_per_s=round(megabytes_per_second, 1),
                      link_rate_fraction=None if fraction is None else round(fraction, 3),
                      **extra)


def _timed_read(ctx, path):
    before = ctx.link.rx_bytes()
    with common.stopwatch() as timer:
        size = local_trees.read_file(path)
    return timer.seconds, size, ctx.link.rx_bytes() - before


def _imgmount_rows(ctx):
    rows = []
    for rep in range(ctx.reps):
        cache_dir = local_trees.fresh_dir(ctx, NAME, "cache")
        mountpoint = local_trees.fresh_dir(ctx, NAME, f"imgmount-{rep}")
        try:
            with common.imgmount_mount(ctx, ctx.ref(IMAGE, FMT), mountpoint,
                                              cache_dir):
                for state in ("cold", "warm"):
                    if state == "cold":
                        common.drop_caches()
                    seconds, size, link_bytes = _timed_read(ctx, mountpoint / FILE)
                    rows.append(_row(ctx, "imgmount", state, rep, seconds, size,
                                     link_bytes))
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
    return rows


def _skopeo_umoci_rows(ctx):
    rows = []
    tag = ctx.images[IMAGE]["gzip"]["tag"]
    for rep in range(ctx.reps):
        directory = local_trees.fresh_dir(ctx, NAME, "skopeo-umoci")
        layout, bundle = directory / "oci", directory / "bundle"
        try:
            common.drop_caches()
            before = ctx.link.rx_bytes()
            with common.stopwatch() as total:
                with common.stopwatch() as pull:
                    common.run(["skopeo", "copy", "--src-tls-verify=false",
                                f"docker://{ctx.tag_ref(IMAGE, 'gzip')}",
                                f"oci:{layout}:{tag}"],
                               timeout=local_trees.SKOPEO_TIMEOUT_SECONDS)
                    common.run(["umoci", "unpack", "--image", f"{layout}:{tag}",
                                str(bundle)],
                               timeout=local_trees.UNPACK_TIMEOUT_SECONDS)
                size = local_trees.read_file(bundle / "rootfs" / FILE)
            rows.append(_row(ctx, "skopeo+umoci", "cold", rep, total.seconds, size,
                             ctx.link.rx_bytes() - before,
                             pull_unpack_seconds=round(pull.seconds, 3)))

            seconds, size, link_bytes = _timed_read(ctx, bundle / "rootfs" / FILE)
            rows.append(_row(ctx, "skopeo+umoci", "warm", rep, seconds, size,
                             link_bytes))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return rows


def _local_rows(ctx):
    path = local_trees.local_rootfs(ctx, IMAGE) / FILE
    rows = []
    for rep in range(ctx.reps):
        for state in ("cold", "warm"):
            if state == "cold":
                common.drop_caches()
            seconds, size, link_bytes = _timed_read(ctx, path)
            rows.append(_row(ctx, "local", state, rep, seconds, size, link_bytes))
    return rows
