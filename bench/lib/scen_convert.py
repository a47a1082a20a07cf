# SPDX-License-Identifier: Apache-2.0
"""Conversion of image large (quick: minbase) from its gzip source.

The gzip image is first copied from its local OCI layout into a scratch
docker-registry on 127.0.0.1 that this scenario starts in the work dir, so
that `imgmount convert` reads and writes over loopback. The time is then the
conversion's, not the shaped link's, and the link registry's storage stays
unchanged.

Peers, all with uncompressed throughput (MB/s, 10^6 bytes per second) and
output size:
- imgmount: `imgmount convert` from the scratch registry to the scratch
  registry, wall time.
- zstd-3 -T1 and zstd-3 -T0: `zstd -3` of each layer's tar, decompressed
  from the gzip blob to a file beforehand. Only zstd is timed, summed over
  the layers.
- estargz: ctr-remote's conversion time, only when images.json records it
  as "convert_seconds".

Every row also carries the gzip source's size (`gzip_source_bytes`), which
has no time of its own and so gets no row.
"""

import json
import shutil
import subprocess
import urllib.request

from . import common, link, local_trees

NAME = "convert"
WHAT = "convert from gzip"
IMAGE = "large"
QUICK_IMAGE = "minbase"
CONVERT_TIMEOUT_SECONDS = 1800
ZSTD_TIMEOUT_SECONDS = 1800
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def run(ctx):
    image = QUICK_IMAGE if ctx.quick else IMAGE
    if not local_trees.available_images(ctx, [image], NAME):
        return []

    work = local_trees.fresh_dir(ctx, NAME)
    try:
        tars = _decompress_layers(ctx, image, work / "tars")
        sizes = {"uncompressed": sum(t.stat().st_size for t in tars),
                 "gzip": ctx.images[image]["gzip"]["compressed_bytes"]}
        rows = _imgmount_rows(ctx, image, work, sizes)
        rows += _zstd_rows(ctx, image, tars, sizes)
        rows += _estargz_rows(ctx, image, sizes)
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _row(ctx, image, fmt, peer, rep, seconds, output_bytes, sizes, **extra):
    return common.row(NAME, image, fmt, peer, "warm", rep, seconds, what=WHAT,
                      mb_per_s=round(sizes["uncompressed"] / seconds / 1e6, 1),
                      output_bytes=output_bytes,
                      output_vs_gzip=round(output_bytes / sizes["gzip"], 3)
                      if output_bytes else None,
                      uncompressed_bytes=sizes["uncompressed"],
                      gzip_source_bytes=sizes["gzip"], **extra)


def _decompress_layers(ctx, image, directory):
    """Write each gzip layer of `image` as a plain tar file; return the
    paths, lowest layer first."""
    layout, tag = local_trees.oci_layout(ctx, image)
    directory.mkdir(parents=True)
    tars = []
    for number, descriptor in enumerate(local_trees.layout_layers(layout, tag)):
        path = directory / f"{number}.tar"
        with open(path, "wb") as output:
            subprocess.run(["gzip", "--decompress", "--stdout",
                            str(local_trees.layer_blob(layout, descriptor))],
                           stdout=output, check=True, timeout=ZSTD_TIMEOUT_SECONDS)
        tars.append(path)
    return tars


def _manifest_layers_bytes(registry, repo, digest):
    request = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{digest}",
                                     headers={"Accept": MANIFEST_ACCEPT})
    with urllib.request.urlopen(request, timeout=30) as response:
        manifest = json.load(response)
    return sum(layer["size"] for layer in manifest["layers"])


def _imgmount_rows(ctx, image, work, sizes):
    registry = f"127.0.0.1:{link.free_port()}"
    process = link.start_registry(work / "registry-storage", registry,
                                  work / "registry")
    try:
        link.wait_for_registry(registry, process)
        layout, tag = local_trees.oci_layout(ctx, image)
        source = f"{registry}/bench/{image}:gzip"
        common.run(["skopeo", "copy", "--dest-tls-verify=false",
                    f"oci:{layout}:{tag}", f"docker://{source}"],
                   timeout=local_trees.SKOPEO_TIMEOUT_SECONDS)

        rows = []
        for rep in range(ctx.reps):
            # A repository per repetition: the push skips blobs that its
            # repository already has, which would leave the upload out.
            repo = f"bench/{image}-converted-{rep}"
            with common.stopwatch() as timer:
                result = common.run([ctx.imgmount, "convert", source,
                                     f"{registry}/{repo}:rep{rep}"],
                                    timeout=CONVERT_TIMEOUT_SECONDS)
            lines = result.stdout.split()
            digest = lines[-1] if lines else ""
            if not digest.startswith("sha256:"):
                raise RuntimeError(f"imgmount convert printed no manifest digest; "
                                   f"stdout was {result.stdout.strip()[-200:]!r}")
            output_bytes = _manifest_layers_bytes(registry, repo, digest)
            rows.append(_row(ctx, image, "zstd:chunked", "imgmount", rep,
                             timer.seconds, output_bytes, sizes))
        return rows
    finally:
        link.stop_process(process)


def _zstd_rows(ctx, image, tars, sizes):
    rows = []
    for threads in ("-T1", "-T0"):
        for rep in range(ctx.reps):
            seconds = 0.0
            output_bytes = 0
            for tar in tars:
                output = tar.with_suffix(".tar.zst")
                with common.stopwatch() as timer:
                    common.run(["zstd", "-3", threads, "--quiet", "--force",
                                str(tar), "-o", str(output)],
                               timeout=ZSTD_TIMEOUT_SECONDS)
                seconds += timer.seconds
                output_bytes += output.stat().st_size
                output.unlink()
            rows.append(_row(ctx, image, "zstd", f"zstd-3 {threads} (tar only)", rep,
                             seconds, output_bytes, sizes))
    return rows


def _estargz_rows(ctx, image, sizes):
    record = ctx.images[image].get("estargz", {})
    seconds = record.get("convert_seconds")
    if not seconds:
        return []
    return [_row(ctx, image, "estargz", "ctr-remote", 0, seconds,
                 record.get("compressed_bytes"), sizes)]
