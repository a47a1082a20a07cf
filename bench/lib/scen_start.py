# SPDX-License-Identifier: Apache-2.0
"""Start scenario: time from nothing local to a short workload exiting.

The workload is `python3 -c 'import json, sqlite3; print(1)'` in the
"python" image. In --quick mode without a "python" image, it is `/bin/true`
in "minbase". Each peer gets the image its own way:

- containerd: `ctr image pull` (overlayfs snapshotter, gzip image), then
  `ctr run`. Warm: `ctr run` again with the image local.
- skopeo+umoci: `skopeo copy` to an OCI layout, `umoci unpack`, `chroot`.
  Warm: `chroot` into the unpacked tree again.
- imgmount: `imgmount mount` of the zstd:chunked image with an empty cache,
  then `chroot`. Warm: unmount, mount again with the cache kept, `chroot`.
- stargz (only with --stargz-grpc): `ctr-remote image rpull` of the estargz
  image, then `ctr run` with the stargz snapshotter. Warm: `ctr run` again.
- local: `chroot` into a tree unpacked on local disk beforehand (warm only).

Cold rows start with nothing local and the page cache dropped. Every row
carries link_bytes, the bytes that crossed the link towards this host during
the measurement. It also carries the extra `workload_bytes`: the bytes the
workload reads from local disk with the kernel's default readahead. The
report divides the first by the second. The peers use different image formats, so each
row's `fmt` is the format that peer pulled.
"""

import json
import shutil
import time
from pathlib import Path

from . import common

NAME = "start"

WORKLOADS = {
    "python": ["python3", "-c", "import json, sqlite3; print(1)"],
    "minbase": ["/bin/true"],
}

# The environment a container gets from these images' configs, so that
# chroot peers do not inherit the caller's variables.
CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}

COPY_TIMEOUT_SECONDS = 900
WORKLOAD_TIMEOUT_SECONDS = 300


def run(ctx):
    rows = []
    for image in _images(ctx):
        rows += _run_image(ctx, image)
    return rows


def _images(ctx):
    if "python" in ctx.images:
        return ["python"]
    if ctx.quick and "minbase" in ctx.images:
        return ["minbase"]
    raise RuntimeError("start: image 'python' is not built (and 'minbase' is "
                       "used only with --quick); add python to --images")


def _run_image(ctx, image):
    argv = WORKLOADS[image]
    work = ctx.work_dir / "start" / image
    work.mkdir(parents=True, exist_ok=True)

    # The local tree is unpacked before any measurement, from the same gzip
    # image the full-pull peers fetch.
    local_rootfs = _unpack(ctx, image, work / "local-oci", work / "local") / "rootfs"
    extra = {"workload_bytes": _workload_bytes(local_rootfs, argv)}

    peers = [_containerd, _skopeo_umoci, _imgmount]
    if ctx.opts.stargz_grpc and "estargz" in ctx.images[image]:
        peers.append(_stargz)

    rows = []
    try:
        for rep in range(ctx.reps):
            for peer in peers:
                rows += peer(ctx, image, argv, work, rep, extra)
            rows.append(_local(image, argv, local_rootfs, rep, extra))
    finally:
        if ctx.containerd is not None:
            ctx.containerd.remove_all()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _chroot(rootfs, argv):
    common.run(["chroot", str(rootfs), *argv], env=CHROOT_ENV,
               timeout=WORKLOAD_TIMEOUT_SECONDS)


def _read_bytes():
    for line in Path("/proc/self/io").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "read_bytes":
            return int(value)
    raise RuntimeError("/proc/self/io has no read_bytes line; is the kernel "
                       "built with CONFIG_TASK_IO_ACCOUNTING?")


def _workload_bytes(rootfs, argv):
    """Measure the bytes `argv` reads from disk in `rootfs` after the page
    cache is dropped, so readahead counts as the kernel's default does it.

    read_bytes in /proc/PID/io counts bytes a task caused to be read from the
    block layer: file reads, page faults on mapped libraries, readahead and
    metadata blocks. When a parent reaps a child, the kernel adds the child's
    counters to the parent's, so our own counter grows by what the whole
    process tree of the workload read. The host's chroot binary and libc are
    read once before the measurement, so that only the tree's files count.
    """
    common.drop_caches()
    common.run(["chroot", "--version"])
    before = _read_bytes()
    _chroot(rootfs, argv)
    return _read_bytes() - before


def _unpack(ctx, image, layout, bundle):
    """Copy the gzip image into the OCI layout `layout` with skopeo and
    unpack it into `bundle` with umoci. Return `bundle`, whose tree is
    bundle/rootfs."""
    for path in (layout, bundle):
        shutil.rmtree(path, ignore_errors=True)
    common.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                f"docker://{ctx.ref(image, 'gzip')}", f"oci:{layout}:{image}"],
               timeout=COPY_TIMEOUT_SECONDS)
    common.run(["umoci", "unpack", "--image", f"{layout}:{image}", str(bundle)],
               timeout=COPY_TIMEOUT_SECONDS)
    return bundle


def _containerd_instance(ctx):
    if ctx.containerd is None:
        from .containerd import Containerd
        ctx.containerd = Containerd(ctx.work_dir / "containerd",
                                    stargz_grpc=ctx.opts.stargz_grpc,
                                    insecure_hosts=[ctx.link.registry])
    return ctx.containerd


def _pull_and_run(ctx, image, fmt, peer, snapshotter, argv, rep, extra):
    containerd = _containerd_instance(ctx)
    ref = ctx.tag_ref(image, fmt)

    containerd.remove_all()
    common.drop_caches()
    rx_before = ctx.link.rx_bytes()
    with common.stopwatch() as cold:
        with common.stopwatch() as pull:
            containerd.pull(ref, snapshotter)
        containerd.run(ref, argv, snapshotter)
    link_bytes = ctx.link.rx_bytes() - rx_before

    rx_before = ctx.link.rx_bytes()
    warm_seconds = containerd.run(ref, argv, snapshotter)
    warm_bytes = ctx.link.rx_bytes() - rx_before

    return [
        common.row(NAME, image, fmt, peer, "cold", rep, cold.seconds,
                   link_bytes=link_bytes, pull_seconds=pull.seconds, **extra),
        common.row(NAME, image, fmt, peer, "warm", rep, warm_seconds,
                   link_bytes=warm_bytes, **extra),
    ]


def _containerd(ctx, image, argv, work, rep, extra):
    return _pull_and_run(ctx, image, "gzip", "containerd", "overlayfs",
                         argv, rep, extra)


def _stargz(ctx, image, argv, work, rep, extra):
    # NOTE: never run on the development machine, because Debian 12 has no
    # containerd-stargz-grpc binary to pass as --stargz-grpc.
    return _pull_and_run(ctx, image, "estargz", "stargz", "stargz",
                         argv, rep, extra)


def _skopeo_umoci(ctx, image, argv, work, rep, extra):
    layout = work / "oci"
    bundle = work / "bundle"
    for path in (layout, bundle):
        shutil.rmtree(path, ignore_errors=True)

    common.drop_caches()
    rx_before = ctx.link.rx_bytes()
    with common.stopwatch() as cold:
        with common.stopwatch() as pull:
            _unpack(ctx, image, layout, bundle)
        _chroot(bundle / "rootfs", argv)
    link_bytes = ctx.link.rx_bytes() - rx_before

    rx_before = ctx.link.rx_bytes()
    with common.stopwatch() as warm:
        _chroot(bundle / "rootfs", argv)
    warm_bytes = ctx.link.rx_bytes() - rx_before

    shutil.rmtree(layout, ignore_errors=True)
    shutil.rmtree(bundle, ignore_errors=True)
    return [
        common.row(NAME, image, "gzip", "skopeo+umoci", "cold", rep,
                   cold.seconds, link_bytes=link_bytes,
                   pull_seconds=pull.seconds, **extra),
        common.row(NAME, image, "gzip", "skopeo+umoci", "warm", rep,
                   warm.seconds, link_bytes=warm_bytes, **extra),
    ]


def _imgmount(ctx, image, argv, work, rep, extra):
    fmt = "zstd:chunked"
    ref = ctx.ref(image, fmt)
    cache = work / "imgmount-cache"
    mountpoint = work / "mnt"
    shutil.rmtree(cache, ignore_errors=True)

    common.drop_caches()
    cold = _mount_and_run(ctx, ref, mountpoint, cache, argv)
    warm = _mount_and_run(ctx, ref, mountpoint, cache, argv)

    shutil.rmtree(cache, ignore_errors=True)
    rows = []
    for state, (seconds, link_bytes, stats) in (("cold", cold), ("warm", warm)):
        rows.append(common.row(NAME, image, fmt, "imgmount", state, rep,
                               seconds, link_bytes=link_bytes,
                               mount_seconds=stats["mount_seconds"],
                               registry_bytes=stats["registry_bytes"],
                               fetched_bytes=stats["fetched_bytes"], **extra))
    return rows


def _mount_and_run(ctx, ref, mountpoint, cache, argv):
    """Mount, run `argv` in a chroot of the mount, and unmount. Return
    (seconds for mount plus workload, link bytes, stats). The unmount is not
    timed."""
    rx_before = ctx.link.rx_bytes()
    start = time.monotonic()
    with common.imgmount_mount(ctx, ref, mountpoint, cache):
        mount_seconds = time.monotonic() - start
        _chroot(mountpoint, argv)
        seconds = time.monotonic() - start
        link_bytes = ctx.link.rx_bytes() - rx_before
        registry_bytes = _stat(ctx, mountpoint, "registry_bytes")
        fetched_bytes = _stat(ctx, mountpoint, "bytes_from_network")
    return seconds, link_bytes, {"mount_seconds": mount_seconds,
                                 "registry_bytes": registry_bytes,
                                 "fetched_bytes": fetched_bytes}


def _stat(ctx, mountpoint, key):
    """Read one counter of `imgmount stats`: registry_bytes (response
    bodies, compressed) or bytes_from_network (the uncompressed bytes of
    the chunks fetched). Return None when it reports none."""
    result = common.run([ctx.imgmount, "stats", str(mountpoint)], check=False,
                        timeout=60)
    if result.returncode != 0:
        return None
    try:
        return _find_key(json.loads(result.stdout), key)
    except ValueError:
        return None


def _find_key(value, key):
    if isinstance(value, dict):
        if key in value:
            return value[key]
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _find_key(item, key)
            if found is not None:
                return found
    return None


def _local(image, argv, rootfs, rep, extra):
    # Cold peers drop the page cache, so one untimed run makes the tree warm.
    _chroot(rootfs, argv)
    with common.stopwatch() as warm:
        _chroot(rootfs, argv)
    return common.row(NAME, image, "gzip", "local", "warm", rep, warm.seconds,
                      **extra)
