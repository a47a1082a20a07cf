# SPDX-License-Identifier: Apache-2.0
"""Write OCI image layouts, push them with skopeo, and unpack with umoci.

A layer is an object like images.catalog.Layer. Its pieces() returns the
uncompressed tar stream as an iterable of bytes, so layers too large for
memory can be streamed. Its compression names a fixed compression, or is
None to use the image's. Its raw_blob, when not None, is stored verbatim. The
stream is compressed here as gzip, zstd (the zstd command) or left as plain
tar. The diff ID is the SHA-256 of the uncompressed stream, as the OCI image
config requires.
"""

import dataclasses
import gzip
import hashlib
import json
import os
import platform
import subprocess
import tempfile

from . import procs

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = {
    "tar": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}

# Go's GOARCH names for the machines the tests run on.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclasses.dataclass
class Image:
    """Digests of an image written to a layout."""

    manifest_digest: str
    config_digest: str
    layer_digests: list
    diff_ids: list
    layer_media_types: list


def sha256_file(path, block=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while True:
            data = stream.read(block)
            if not data:
                return "sha256:" + digest.hexdigest()
            digest.update(data)


def _store_blob(layout, source_path):
    """Move a file into blobs/sha256 under its digest; return the digest."""
    digest = sha256_file(source_path)
    target = os.path.join(layout, "blobs", "sha256", digest.split(":")[1])
    os.replace(source_path, target)
    return digest


def _store_bytes(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    target = os.path.join(layout, "blobs", "sha256", digest.split(":")[1])
    with open(target, "wb") as stream:
        stream.write(data)
    return digest, len(data)


def _write_layer(layout, layer, compression):
    """Compress one layer into the layout; return (digest, size, diff_id)."""
    blob_dir = os.path.join(layout, "blobs", "sha256")
    if layer.raw_blob is not None:
        digest, size = _store_bytes(layout, layer.raw_blob)
        return digest, size, digest

    diff = hashlib.sha256()
    fd, temp_path = tempfile.mkstemp(dir=blob_dir, prefix=".layer-")
    with os.fdopen(fd, "wb") as out:
        if compression == "gzip":
            # mtime=0 keeps the gzip header, and so the digest, reproducible.
            with gzip.GzipFile(fileobj=out, mode="wb", mtime=0,
                               compresslevel=6) as stream:
                for piece in layer.pieces():
                    diff.update(piece)
                    stream.write(piece)
        elif compression == "zstd":
            _zstd_compress(layer.pieces(), out, diff)
        elif compression == "tar":
            for piece in layer.pieces():
                diff.update(piece)
                out.write(piece)
        else:
            raise ValueError(f"unknown compression {compression!r}")

    size = os.path.getsize(temp_path)
    digest = _store_blob(layout, temp_path)
    return digest, size, "sha256:" + diff.hexdigest()


def _zstd_compress(pieces, out, diff):
    process = subprocess.Popen(["zstd", "-q", "-3", "-c", "-"],
                               stdin=subprocess.PIPE, stdout=out,
                               stderr=subprocess.PIPE)
    try:
        for piece in pieces:
            diff.update(piece)
            process.stdin.write(piece)
        process.stdin.close()
        stderr = process.stderr.read()
        status = process.wait(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if status != 0:
        raise RuntimeError(f"zstd failed with status {status}: "
                           f"{stderr.decode(errors='replace')}")


def write_layout(layout, layers, compression, tag="latest"):
    """Write an OCI image layout at layout with one image tagged tag.

    compression applies to every layer without its own. Returns an Image.
    """
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as stream:
        json.dump({"imageLayoutVersion": "1.0.0"}, stream)

    descriptors, diff_ids = [], []
    for layer in layers:
        layer_compression = layer.compression or compression
        digest, size, diff_id = _write_layer(layout, layer, layer_compression)
        descriptors.append({"mediaType": MEDIA_LAYER[layer_compression],
                            "digest": digest, "size": size})
        diff_ids.append(diff_id)

    config = {
        "architecture": _GOARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"imgmount test layer {index}"}
                    for index in range(len(layers))],
    }
    config_digest, config_size = _store_bytes(
        layout, json.dumps(config, sort_keys=True).encode())

    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest,
                   "size": config_size},
        "layers": descriptors,
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    manifest_digest, manifest_size = _store_bytes(layout, manifest_bytes)

    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST, "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }
    with open(os.path.join(layout, "index.json"), "w") as stream:
        json.dump(index, stream)

    return Image(manifest_digest, config_digest,
                 [d["digest"] for d in descriptors], diff_ids,
                 [d["mediaType"] for d in descriptors])


def push_layout(layout, source_tag, registry_host, repo, tag, timeout=600,
                dest_creds=None):
    """Copy layout:source_tag to REGISTRY/REPO:TAG with skopeo.

    --preserve-digests makes skopeo fail instead of recompressing a layer
    or rewriting the manifest. dest_creds is "USER:PASSWORD" for a registry
    with basic auth.
    """
    creds = ["--dest-creds", dest_creds] if dest_creds else []
    procs.run(["skopeo", "copy", "--quiet", "--preserve-digests",
               "--dest-tls-verify=false", *creds, f"oci:{layout}:{source_tag}",
               f"docker://{registry_host}/{repo}:{tag}"], timeout)


def pull_layout(reference, layout, tag, timeout=600):
    """Copy docker://reference into the OCI layout dir as tag with skopeo.

    Plain tar layers stay plain (skopeo would gzip them by default), so the
    layout contains exactly the blobs the registry has.
    """
    procs.run(["skopeo", "copy", "--quiet", "--preserve-digests",
               "--src-tls-verify=false",
               "--dest-oci-accept-uncompressed-layers",
               f"docker://{reference}", f"oci:{layout}:{tag}"], timeout)


def umoci_unpack(layout, tag, bundle, timeout=600):
    """Unpack layout:tag into bundle with umoci as root; return the rootfs."""
    procs.run(["umoci", "unpack", "--image", f"{layout}:{tag}", bundle],
              timeout)
    return os.path.join(bundle, "rootfs")


def decompress_zstd_layers(layout, tag, timeout=600):
    """Rewrite layout:tag so its zstd layers are plain tar; return diff IDs.

    umoci 0.4.7 (Debian 12) rejects layers of media type tar+zstd, so the
    reference unpack of a zstd image goes through this copy. Each zstd blob
    is decompressed with the zstd command, which skips the skippable frames
    that zstd:chunked adds, and the SHA-256 of its output is returned per
    layer (None for layers that were not zstd). The diff IDs in the config
    do not change, so the rewritten image is the same image to umoci.
    """
    manifest = read_manifest(layout, tag)
    computed = []
    for descriptor in manifest["layers"]:
        if not descriptor["mediaType"].endswith("+zstd"):
            computed.append(None)
            continue
        fd, temp_path = tempfile.mkstemp(
            dir=os.path.join(layout, "blobs", "sha256"), prefix=".tar-")
        with os.fdopen(fd, "wb") as out:
            with open(blob_path(layout, descriptor["digest"]), "rb") as source:
                result = subprocess.run(["zstd", "-q", "-d", "-c"],
                                        stdin=source, stdout=out,
                                        stderr=subprocess.PIPE,
                                        timeout=timeout)
        if result.returncode != 0:
            os.unlink(temp_path)
            raise procs.CommandError(
                f"zstd -d of layer {descriptor['digest']} failed: "
                f"{result.stderr.decode(errors='replace')}")
        size = os.path.getsize(temp_path)
        digest = _store_blob(layout, temp_path)
        computed.append(digest)
        descriptor.update({"mediaType": MEDIA_LAYER["tar"], "digest": digest,
                           "size": size})
        descriptor.pop("annotations", None)

    manifest_digest, manifest_size = _store_bytes(
        layout, json.dumps(manifest, sort_keys=True).encode())
    index_path = os.path.join(layout, "index.json")
    with open(index_path) as stream:
        index = json.load(stream)
    for descriptor in index["manifests"]:
        annotations = descriptor.get("annotations", {})
        if annotations.get("org.opencontainers.image.ref.name") == tag:
            descriptor.update({"mediaType": MEDIA_MANIFEST,
                               "digest": manifest_digest,
                               "size": manifest_size})
    with open(index_path, "w") as stream:
        json.dump(index, stream)
    return computed


def read_config(layout, tag):
    """Return the parsed image config of layout:tag."""
    manifest = read_manifest(layout, tag)
    return json.loads(read_blob(layout, manifest["config"]["digest"]))


def read_manifest(layout, tag):
    """Return the parsed manifest of layout:tag."""
    with open(os.path.join(layout, "index.json")) as stream:
        index = json.load(stream)
    for descriptor in index["manifests"]:
        annotations = descriptor.get("annotations", {})
        if annotations.get("org.opencontainers.image.ref.name") == tag:
            return json.loads(read_blob(layout, descriptor["digest"]))
    raise KeyError(f"tag {tag!r} not found in {layout}/index.json")


def read_blob(layout, digest):
    path = os.path.join(layout, "blobs", *digest.split(":", 1))
    with open(path, "rb") as stream:
        return stream.read()


def blob_path(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))

