# SPDX-License-Identifier: Apache-2.0
"""Local copies of the benchmark images and the workloads run on every peer.

The "local" peer is one directory unpacked by `umoci unpack`. The
"overlayfs" peer is kernel overlayfs over one directory per layer, each
layer extracted by GNU tar and its OCI whiteouts rewritten as overlayfs
whiteouts. Both come from the image's gzip OCI layout, because umoci 0.4.7
(Debian 12) rejects zstd layers, and every format of an image contains the
same files.

Trees live under ctx.work_dir/trees and are built once per run, so the
scenarios of one run share them. The workloads (`walk`, `read_file`,
`fio_randread`) are the same code for every peer, so that only the file
system under them differs.
"""

import contextlib
import json
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path

from . import common

log = logging.getLogger("bench.local_trees")

SKOPEO_TIMEOUT_SECONDS = 1800
UNPACK_TIMEOUT_SECONDS = 1800
WALK_TIMEOUT_SECONDS = 600
MOUNT_TIMEOUT_SECONDS = 60

READ_BLOCK_BYTES = 1 << 20

DEFAULT_CACHE_DIR = Path("/var/cache/imgmount-bench")
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

# OCI image layer whiteouts: ".wh.NAME" deletes NAME from the layers below,
# and ".wh..wh..opq" hides every lower entry of its directory.
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"

# The find(1) fields that make it lstat(2) every entry: inode, type, mode,
# link count, owner, size and mtime.
WALK_FORMAT = "%i %y %m %n %U %G %s %T@\n"

TAR_DECOMPRESS_FLAGS = {
    "application/vnd.oci.image.layer.v1.tar+gzip": ["--gzip"],
    "application/vnd.docker.image.rootfs.diff.tar.gzip": ["--gzip"],
    "application/vnd.oci.image.layer.v1.tar+zstd": ["--zstd"],
    "application/vnd.oci.image.layer.v1.tar": [],
}


def available_images(ctx, names, scenario):
    """Return the images of `names` that this run has (bench/run --images
    may leave some out), logging the ones it skips."""
    missing = [name for name in names if name not in ctx.images]
    if missing:
        log.info("%s: skipping images %s, not in this run's image set",
                 scenario, ", ".join(missing))
    return [name for name in names if name in ctx.images]


def trees_dir(ctx):
    return Path(ctx.work_dir) / "trees"


def _done_marker(path):
    return Path(str(path) + ".done")


def _build_once(path, build):
    """Run build(path) unless an earlier call finished it. A partial result
    from a failed call is removed first."""
    path = Path(path)
    if _done_marker(path).exists():
        return path
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    build(path)
    _done_marker(path).touch()
    return path


def oci_layout(ctx, name, fmt="gzip"):
    """Return (layout directory, tag) of image `name` in `fmt`: the layout
    under the persistent cache directory that contains the image's
    manifest when there is one, otherwise a `skopeo copy` from the link's registry
    into the work dir. Not timed, so the copy may use the shaped link."""
    image = ctx.images[name][fmt]
    found = find_cached_layout(ctx, image["digest"])
    if found:
        return found

    tag = image["tag"]

    def copy(layout):
        common.run(["skopeo", "copy", "--src-tls-verify=false",
                    f"docker://{ctx.tag_ref(name, fmt)}", f"oci:{layout}:{tag}"],
                   timeout=SKOPEO_TIMEOUT_SECONDS)

    fmt_word = fmt.replace(":", "-")
    return _build_once(trees_dir(ctx) / f"{name}-{fmt_word}.oci", copy), tag


def find_cached_layout(ctx, manifest_digest):
    """Return (layout, tag) of the OCI layout under CACHE_DIR/layouts (the
    layouts that bench/lib/images.py pushed from) whose index.json tags
    `manifest_digest`, or None."""
    cache_dir = Path(getattr(ctx.opts, "cache_dir", None) or DEFAULT_CACHE_DIR)
    for index_path in sorted(cache_dir.glob("layouts/*/index.json")):
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            continue
        for descriptor in index.get("manifests", []):
            tag = descriptor.get("annotations", {}).get(REF_NAME_ANNOTATION)
            if descriptor.get("digest") == manifest_digest and tag:
                return index_path.parent, tag
    return None


def _blob_path(layout, digest):
    algorithm, _, hex_digest = digest.partition(":")
    return Path(layout) / "blobs" / algorithm / hex_digest


def layout_layers(layout, tag):
    """Return the layer descriptors (dicts with mediaType, digest, size) of
    the manifest tagged `tag` in an OCI layout, lowest layer first."""
    index = json.loads((Path(layout) / "index.json").read_text())
    for descriptor in index["manifests"]:
        if descriptor.get("annotations", {}).get(REF_NAME_ANNOTATION) == tag:
            manifest = json.loads(_blob_path(layout, descriptor["digest"]).read_text())
            return manifest["layers"]
    raise RuntimeError(f"tag {tag!r} not found in {layout}/index.json")


def layer_blob(layout, descriptor):
    return _blob_path(layout, descriptor["digest"])


def local_rootfs(ctx, name):
    """Return the root of image `name` unpacked by umoci into one directory
    (the "local" peer)."""
    layout, tag = oci_layout(ctx, name)

    def unpack(bundle):
        common.run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)],
                   timeout=UNPACK_TIMEOUT_SECONDS)

    return _build_once(trees_dir(ctx) / name / "local", unpack) / "rootfs"


def overlay_lowerdirs(ctx, name):
    """Return one extracted directory per layer of image `name`, lowest
    first, with OCI whiteouts turned into overlayfs whiteouts."""
    layout, tag = oci_layout(ctx, name)
    lowerdirs = []
    for number, descriptor in enumerate(layout_layers(layout, tag)):
        def extract(directory, descriptor=descriptor):
            extract_layer(layer_blob(layout, descriptor), descriptor["mediaType"],
                          directory)

        lowerdirs.append(_build_once(trees_dir(ctx) / name / "layers" / str(number),
                                     extract))
    return lowerdirs


def extract_layer(blob, media_type, directory):
    """Extract one layer tar into `directory` with owners, modes and
    extended attributes, then convert its whiteouts."""
    flags = TAR_DECOMPRESS_FLAGS.get(media_type)
    if flags is None:
        raise RuntimeError(f"unsupported layer media type {media_type!r} of {blob}")

    directory.mkdir(parents=True)
    common.run(["tar", "--extract", *flags, "--file", str(blob),
                "--directory", str(directory), "--numeric-owner",
                "--same-permissions", "--xattrs", "--xattrs-include=*"],
               timeout=UNPACK_TIMEOUT_SECONDS)
    convert_whiteouts(directory)


def convert_whiteouts(directory):
    """Rewrite OCI whiteouts as overlayfs expects them: ".wh.NAME" becomes a
    0/0 character device NAME, and ".wh..wh..opq" becomes the xattr
    trusted.overlay.opaque="y" on its directory."""
    for parent, dirnames, filenames in os.walk(directory):
        for entry in filenames + dirnames:
            if not entry.startswith(WHITEOUT_PREFIX):
                continue

            path = os.path.join(parent, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

            if entry == OPAQUE_WHITEOUT:
                os.setxattr(parent, "trusted.overlay.opaque", b"y")
            else:
                hidden = os.path.join(parent, entry[len(WHITEOUT_PREFIX):])
                os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0))

        # Do not descend into whiteout directories that were just removed.
        dirnames[:] = [d for d in dirnames if not d.startswith(WHITEOUT_PREFIX)]


def empty_lowerdir(ctx):
    """Create and return an empty directory that pads a one-layer overlay,
    because overlayfs without an upper directory rejects a single lower
    directory (kernel 6.18 here logs "at least 2 lowerdir are needed")."""
    path = trees_dir(ctx) / "empty-lower"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def overlay_mount(ctx, lowerdirs, mountpoint):
    """Mount read-only overlayfs over `lowerdirs` (lowest first) at
    `mountpoint`; always unmount."""
    lowerdirs = list(lowerdirs)
    if len(lowerdirs) < 2:
        lowerdirs.insert(0, empty_lowerdir(ctx))

    # overlayfs lists the top layer first.
    option = "lowerdir=" + ":".join(str(d) for d in reversed(lowerdirs))
    Path(mountpoint).mkdir(parents=True, exist_ok=True)
    common.run(["mount", "-t", "overlay", "overlay", "-o", option, str(mountpoint)],
               timeout=MOUNT_TIMEOUT_SECONDS)
    try:
        yield Path(mountpoint)
    finally:
        common.unmount(mountpoint)


def walk(root):
    """lstat every entry under `root` without crossing mounts (find -xdev
    with stat fields in -printf); return the number of entries, `root`
    included."""
    result = subprocess.run(["find", str(root), "-xdev", "-printf", WALK_FORMAT],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=WALK_TIMEOUT_SECONDS, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"find {root} exited with {result.returncode}: "
                           f"{result.stderr.decode(errors='replace').strip()[-2000:]}")
    return result.stdout.count(b"\n")


def read_file(path, block_bytes=READ_BLOCK_BYTES):
    """Read `path` from start to end in `block_bytes` reads; return the
    number of bytes read."""
    buffer = bytearray(block_bytes)
    total = 0
    with open(path, "rb", buffering=0) as file:
        while True:
            count = file.readinto(buffer)
            if not count:
                return total
            total += count


def fio_randread(path, runtime_seconds, jobs=16):
    """Run fio's random 4 KiB buffered reads of `path` with `jobs` threads
    for `runtime_seconds`; return (IOPS, reads completed)."""
    argv = ["fio", "--name=randread", f"--filename={path}", "--readonly",
            "--rw=randread", "--bs=4k", f"--numjobs={jobs}", "--thread",
            "--direct=0", "--ioengine=psync", "--invalidate=0",
            "--time_based", f"--runtime={runtime_seconds}",
            "--group_reporting", "--output-format=json"]
    result = common.run(argv, timeout=runtime_seconds + 120)
    report = json.loads(result.stdout[result.stdout.index("{"):])
    job = report["jobs"][0]["read"]
    if job.get("total_ios", 0) == 0 or report["jobs"][0].get("error"):
        raise RuntimeError(f"fio on {path} completed no reads: {result.stderr.strip()}")
    return job["iops"], job["total_ios"]


def fresh_dir(ctx, *parts):
    """Return an empty directory ctx.work_dir/PARTS..., removing any
    earlier contents."""
    path = Path(ctx.work_dir).joinpath(*parts)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def link_rate_bytes_per_second(ctx):
    """Return the configured link rate in bytes per second, or None when
    there is none (with --link none, or no --rate-mbit)."""
    rate_mbit = getattr(ctx.opts, "rate_mbit", None)
    if not rate_mbit or getattr(ctx.opts, "link", None) == "none":
        return None
    return rate_mbit * 1e6 / 8
