# SPDX-License-Identifier: Apache-2.0
"""Build the benchmark images once, push them to the persistent registry
storage in every format, and describe them in images.json.

Images (each as gzip, zstd:chunked and estargz unless noted):

- minbase: `debootstrap --variant=minbase bookworm`, one layer.
- python: minbase plus python3, two layers (scripts/build-debian-image.sh).
- large: python plus gcc and g++ from Debian, three layers.
- bigfile: one layer with /data/big.bin, 1 GiB (128 MiB in quick mode) of
  incompressible bytes from a seeded generator, so every build is the same.
- many: one layer with 500,000 entries (50,000 in quick mode), small files
  in about 500 per directory; gzip and zstd:chunked only.

minbase, python and large share their layers in one OCI layout, so the
layer of minbase is the same blob as the first layer of python. Quick mode only changes bigfile and
many, which are stored as separate repositories (bench/bigfile-quick,
bench/many-quick) so that both sets stay cached side by side.

Everything lives under CACHE_DIR (default /var/cache/imgmount-bench):

    layouts/<id>/        OCI layouts built with umoci (gzip layers)
    registry/storage/    docker-registry storage that the benchmark link serves
    records/<id>.json    what was pushed for one image, by format
    images.json          the full set; images-quick.json the quick set

Run `python3 -m bench.lib.images [--quick]` from the repository root to
build everything ahead of a benchmark run.
"""

import argparse
import gzip
import hashlib
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.lib.common import FORMATS, REPO_DIR, run
from bench.lib.link import free_port, start_registry, stop_process, \
    wait_for_registry

log = logging.getLogger("bench.images")

DEFAULT_CACHE_DIR = Path("/var/cache/imgmount-bench")
DEMO_LAYOUT = Path("/var/cache/imgmount-demo")
DEMO_TAG = "bookworm-python"
NAMES = ("minbase", "python", "large", "bigfile", "many")
DEBIAN_NAMES = ("minbase", "python", "large")
LARGE_PACKAGES = ("gcc", "g++")
FORMAT_TAGS = {"gzip": "gzip", "zstd:chunked": "zstd-chunked",
               "estargz": "estargz"}
MANY_FORMATS = ("gzip", "zstd:chunked")

BIGFILE_BYTES = {False: 1 << 30, True: 128 << 20}
MANY_ENTRIES = {False: 500_000, True: 50_000}
MANY_FILES_PER_DIR = 500
MANY_DIRS_PER_PARENT = 100
MANY_MAX_FILE_BYTES = 300
SEED = 20240501

IMAGE_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
UMOCI_TIMEOUT = 1800
APT_TIMEOUT = 1800
PUSH_TIMEOUT = 1800


def image_id(name, quick):
    """Return the repository and layout name of `name`. Quick mode has its
    own bigfile and many, but the Debian images are the same in both."""
    if quick and name in ("bigfile", "many"):
        return f"{name}-quick"
    return name


def formats_of(name):
    return MANY_FORMATS if name == "many" else FORMATS


def images_json_path(cache_dir, quick):
    return Path(cache_dir) / ("images-quick.json" if quick else "images.json")


# --- OCI layout helpers -------------------------------------------------------

def read_blob(layout, digest):
    algorithm, hex_digest = digest.split(":", 1)
    return (Path(layout) / "blobs" / algorithm / hex_digest).read_bytes()


def write_blob(layout, data):
    """Store `data` as a blob of `layout` and return its digest."""
    hex_digest = hashlib.sha256(data).hexdigest()
    path = Path(layout) / "blobs" / "sha256" / hex_digest
    if not path.exists():
        path.write_bytes(data)
    return f"sha256:{hex_digest}"


def layout_tags(layout):
    """Return {tag: manifest descriptor} from an OCI layout's index.json."""
    index_path = Path(layout) / "index.json"
    if not index_path.exists():
        return {}
    index = json.loads(index_path.read_text())
    tags = {}
    for descriptor in index.get("manifests", []):
        name = descriptor.get("annotations", {}).get(
            "org.opencontainers.image.ref.name")
        if name:
            tags[name] = descriptor
    return tags


def add_layout_tag(layout, tag, manifest_bytes):
    """Point `tag` in `layout` at a new manifest, replacing an old `tag`."""
    digest = write_blob(layout, manifest_bytes)
    index_path = Path(layout) / "index.json"
    index = json.loads(index_path.read_text())
    index["manifests"] = [
        d for d in index["manifests"]
        if d.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    index["manifests"].append({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": len(manifest_bytes),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    })
    index_path.write_text(json.dumps(index))


def umoci(*args, timeout=UMOCI_TIMEOUT):
    return run(["umoci", *map(str, args)], timeout=timeout)


def new_empty_image(layout, tag):
    umoci("init", "--layout", layout)
    umoci("new", "--image", f"{layout}:{tag}")
    umoci("config", "--image", f"{layout}:{tag}", "--config.cmd", "/bin/sh",
          "--config.env", IMAGE_PATH_ENV)


# --- chroot helpers -------------------------------------------------------------

def apt_in_chroot(root, *args):
    """Run apt-get in a chroot of `root` with /proc mounted and the host's
    resolv.conf; both are gone again when this returns."""
    root = Path(root)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    run(["mount", "-t", "proc", "proc", str(root / "proc")], timeout=30)
    try:
        run(["env", "-i", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C",
             IMAGE_PATH_ENV, "chroot", str(root), "apt-get", "-q", *args],
            timeout=APT_TIMEOUT)
    finally:
        run(["umount", "-l", str(root / "proc")], timeout=30, check=False)
        (root / "etc/resolv.conf").unlink(missing_ok=True)


def remove_tree(path):
    """Remove a scratch tree, refusing when something is mounted inside."""
    path = Path(path)
    if not path.exists():
        return
    prefix = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        busy = [line.split()[1] for line in mounts
                if line.split()[1] == prefix or line.split()[1].startswith(prefix + "/")]
    if busy:
        log.error("not removing %s because %s is still mounted; unmount and "
                  "remove it by hand", path, busy[0])
        return
    shutil.rmtree(path)


# --- building the layouts -------------------------------------------------------

def ensure_debian_layout(cache_dir):
    """Return the layout with tags minbase, python and large, building the
    missing ones."""
    layout = Path(cache_dir) / "layouts" / "debian"
    if not (layout / "index.json").exists():
        copy_python_layout(cache_dir, layout)

    tags = layout_tags(layout)
    if "minbase" not in tags:
        tag_first_layer(layout, "python", "minbase")
    if "large" not in tags:
        build_large(layout, cache_dir)
    return layout


def copy_python_layout(cache_dir, layout):
    """Copy the python image of scripts/build-debian-image.sh, building it
    in the cache when /var/cache/imgmount-demo does not have it."""
    source = DEMO_LAYOUT
    if DEMO_TAG not in layout_tags(source):
        source = Path(cache_dir) / "layouts" / "python-build"
        log.info("building the python image with build-debian-image.sh in %s",
                 source)
        run([str(REPO_DIR / "scripts" / "build-debian-image.sh"), str(source)],
            timeout=3600)

    stage = layout.with_name(layout.name + ".tmp")
    remove_tree(stage)
    shutil.copytree(source, stage)
    descriptor = layout_tags(stage)[DEMO_TAG]
    add_layout_tag(stage, "python", read_blob(stage, descriptor["digest"]))
    stage.rename(layout)


def tag_first_layer(layout, source_tag, tag):
    """Make `tag` an image of only the first layer of `source_tag`, sharing
    that layer's blob. The config keeps the first layer's history entries."""
    manifest = json.loads(read_blob(layout, layout_tags(layout)[source_tag]["digest"]))
    config = json.loads(read_blob(layout, manifest["config"]["digest"]))

    config["rootfs"]["diff_ids"] = config["rootfs"]["diff_ids"][:1]
    history, layers_seen = [], 0
    for entry in config.get("history", []):
        if not entry.get("empty_layer"):
            if layers_seen == 1:
                break
            layers_seen += 1
        history.append(entry)
    config["history"] = history

    config_bytes = json.dumps(config).encode()
    manifest["config"] = {"mediaType": manifest["config"]["mediaType"],
                          "digest": write_blob(layout, config_bytes),
                          "size": len(config_bytes)}
    manifest["layers"] = manifest["layers"][:1]
    add_layout_tag(layout, tag, json.dumps(manifest).encode())


def build_large(layout, cache_dir):
    """Add a third layer with gcc and g++ on top of python."""
    work = Path(tempfile.mkdtemp(prefix="large.", dir=Path(cache_dir) / "layouts"))
    try:
        umoci("tag", "--image", f"{layout}:python", "large-build")
        bundle = work / "bundle"
        umoci("unpack", "--image", f"{layout}:large-build", bundle)
        root = bundle / "rootfs"
        log.info("large: apt-get install %s in a chroot", " ".join(LARGE_PACKAGES))
        apt_in_chroot(root, "update")
        apt_in_chroot(root, "install", "-y", "--no-install-recommends",
                      *LARGE_PACKAGES)
        apt_in_chroot(root, "clean")
        for entry in (root / "var/lib/apt/lists").iterdir():
            if entry.name != "partial":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        log.info("large: umoci repack")
        umoci("repack", "--image", f"{layout}:large-build", "--history.created_by",
              f"apt-get install --no-install-recommends {' '.join(LARGE_PACKAGES)}",
              bundle)
        umoci("tag", "--image", f"{layout}:large-build", "large")
        umoci("rm", "--image", f"{layout}:large-build")
        umoci("gc", "--layout", layout)
    finally:
        remove_tree(work)


def build_synthetic(cache_dir, ident, fill):
    """Build a one-layer image `ident` whose root `fill(rootfs)` populates."""
    layout = Path(cache_dir) / "layouts" / ident
    if "gzip" in layout_tags(layout):
        return layout
    remove_tree(layout)
    work = Path(tempfile.mkdtemp(prefix=f"{ident}.", dir=Path(cache_dir) / "layouts"))
    try:
        stage = work / "layout"
        new_empty_image(stage, "gzip")
        bundle = work / "bundle"
        umoci("unpack", "--image", f"{stage}:gzip", bundle)
        created_by = fill(bundle / "rootfs")
        log.info("%s: umoci repack", ident)
        umoci("repack", "--image", f"{stage}:gzip", "--history.created_by",
              created_by, bundle)
        umoci("gc", "--layout", stage)
        stage.rename(layout)
    finally:
        remove_tree(work)
    return layout


def fill_bigfile(size):
    def fill(root):
        data = root / "data"
        data.mkdir(mode=0o755)
        generator = random.Random(SEED)
        remaining = size
        log.info("bigfile: writing %d bytes of seeded random data", size)
        with open(data / "big.bin", "wb") as out:
            while remaining:
                step = min(remaining, 8 << 20)
                out.write(generator.randbytes(step))
                remaining -= step
        os.chmod(data / "big.bin", 0o644)
        return f"{size} bytes from random.Random({SEED}).randbytes"
    return fill


def many_tree_shape(entries):
    """Split `entries` into (top directories, leaf directories, files) so
    that directories hold about MANY_FILES_PER_DIR files and
    MANY_DIRS_PER_PARENT subdirectories, and the total including /many is
    exactly `entries`."""
    leaves = max(1, entries // (MANY_FILES_PER_DIR + 1))
    tops = max(1, round(leaves / MANY_DIRS_PER_PARENT))
    files = entries - 1 - tops - leaves
    if files < 0:
        raise ValueError(f"{entries} entries are too few for a tree")
    return tops, leaves, files


def fill_many(entries):
    extensions = (".py", ".h", ".c", ".txt", ".json", ".so.1", "", ".pyc", ".md")

    def fill(root):
        tops, leaves, files = many_tree_shape(entries)
        generator = random.Random(SEED)
        base = root / "many"
        base.mkdir(mode=0o755)
        log.info("many: writing %d directories and %d files", 1 + tops + leaves, files)
        for leaf in range(leaves):
            top = base / f"pkg{leaf % tops:03d}"
            top.mkdir(mode=0o755, exist_ok=True)
            directory = top / f"mod{leaf // tops:04d}"
            directory.mkdir(mode=0o755)
            count = files // leaves + (1 if leaf < files % leaves else 0)
            for n in range(count):
                name = f"f{n:04d}{extensions[generator.randrange(len(extensions))]}"
                size = generator.randrange(MANY_MAX_FILE_BYTES + 1)
                (directory / name).write_bytes(generator.randbytes(size))
        return f"synthetic tree of {entries} entries, seed {SEED}"
    return fill


# --- pushing and converting -----------------------------------------------------

class Pusher:
    """A docker-registry on loopback over the persistent storage, plus a
    containerd for ctr-remote, both started on first use and stopped by
    close()."""

    def __init__(self, cache_dir, build_dir):
        self.cache_dir = Path(cache_dir)
        self.build_dir = Path(build_dir)
        self.work = Path(tempfile.mkdtemp(prefix="imgmount-bench-images."))
        self.registry_process = None
        self.registry = None
        self.containerd_process = None
        self.socket = self.work / "containerd" / "containerd.sock"

    def close(self):
        stop_process(self.containerd_process)
        stop_process(self.registry_process)
        for path in (self.work / "containerd" / "state", self.work / "containerd" / "root"):
            unmount_under(path)
        remove_tree(self.work)

    def ensure_registry(self):
        if self.registry is None:
            port = free_port()
            self.registry = f"127.0.0.1:{port}"
            self.registry_process = start_registry(
                storage_dir(self.cache_dir), self.registry, self.work / "registry")
            wait_for_registry(self.registry, self.registry_process)
        return self.registry

    def ensure_containerd(self):
        if self.containerd_process is not None:
            return
        base = self.work / "containerd"
        base.mkdir(parents=True, exist_ok=True)
        config = base / "config.toml"
        config.write_text(f"""version = 2
root = "{base / 'root'}"
state = "{base / 'state'}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.socket}"
""")
        with open(base / "containerd.log", "ab") as log_file:
            self.containerd_process = subprocess.Popen(
                ["containerd", "--config", str(config)], stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=log_file)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.containerd_process.poll() is not None:
                raise RuntimeError(f"containerd exited with "
                                   f"{self.containerd_process.returncode}; see "
                                   f"{base / 'containerd.log'}")
            probe = self.ctr("version", check=False)
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"containerd did not answer on {self.socket} within 30s")

    def ctr(self, *args, check=True, timeout=PUSH_TIMEOUT):
        return run(["ctr-remote", "--address", str(self.socket), "--namespace",
                    "bench", *args], check=check, timeout=timeout)

    def push_layout(self, layout, tag, repo):
        registry = self.ensure_registry()
        destination = f"{registry}/{repo}:{FORMAT_TAGS['gzip']}"
        log.info("push %s:%s to %s", layout, tag, destination)
        run(["skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false",
             f"oci:{layout}:{tag}", f"docker://{destination}"], timeout=PUSH_TIMEOUT)

    def convert_zstd_chunked(self, repo):
        registry = self.ensure_registry()
        source = f"{registry}/{repo}:{FORMAT_TAGS['gzip']}"
        destination = f"{registry}/{repo}:{FORMAT_TAGS['zstd:chunked']}"
        log.info("imgmount convert %s %s", source, destination)
        run([str(self.build_dir / "fs" / "imgmount"), "convert", source,
             destination], timeout=PUSH_TIMEOUT)

    def convert_estargz(self, repo):
        registry = self.ensure_registry()
        self.ensure_containerd()
        source = f"{registry}/{repo}:{FORMAT_TAGS['gzip']}"
        destination = f"{registry}/{repo}:{FORMAT_TAGS['estargz']}"
        log.info("ctr-remote image convert --estargz %s %s", source, destination)
        self.ctr("image", "pull", "--plain-http", source)
        self.ctr("image", "convert", "--estargz", "--oci", source, destination)
        self.ctr("image", "push", "--plain-http", destination)
        self.ctr("image", "rm", source, destination, check=False)


def unmount_under(path):
    """Lazily unmount everything at or below `path` (containerd's snapshot
    and shm mounts)."""
    prefix = str(Path(path).resolve())
    with open("/proc/self/mounts") as mounts:
        targets = [line.split()[1] for line in mounts
                   if line.split()[1] == prefix or line.split()[1].startswith(prefix + "/")]
    for target in sorted(targets, reverse=True):
        run(["umount", "-l", target], timeout=30, check=False)


def storage_dir(cache_dir):
    """Return the docker-registry storage directory that Link serves."""
    return Path(cache_dir) / "registry" / "storage"


def blob_path(cache_dir, digest):
    algorithm, hex_digest = digest.split(":", 1)
    return (storage_dir(cache_dir) / "docker/registry/v2/blobs" / algorithm
            / hex_digest[:2] / hex_digest / "data")


def manifest_stored(cache_dir, repo, digest):
    algorithm, hex_digest = digest.split(":", 1)
    return (storage_dir(cache_dir) / "docker/registry/v2/repositories" / repo
            / "_manifests/revisions" / algorithm / hex_digest / "link").exists()


def fetch_manifest(registry, repo, tag):
    """(digest, manifest) of repo:tag from the registry."""
    request = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{tag}",
                                     headers={"Accept": MANIFEST_ACCEPT})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        digest = response.headers.get("Docker-Content-Digest")
    computed = "sha256:" + hashlib.sha256(body).hexdigest()
    if digest and digest != computed:
        raise RuntimeError(f"manifest {repo}:{tag}: registry digest {digest} "
                           f"differs from the body's {computed}")
    return computed, json.loads(body)


def uncompressed_size(path, media_type):
    """Bytes of the tar stream inside a gzip or zstd layer blob."""
    total = 0
    if "zstd" in media_type:
        with subprocess.Popen(["zstd", "-dc", "-q", str(path)],
                              stdout=subprocess.PIPE) as process:
            while chunk := process.stdout.read(1 << 20):
                total += len(chunk)
        if process.returncode != 0:
            raise RuntimeError(f"zstd -dc {path} exited with {process.returncode}")
        return total
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
    return total


def describe(cache_dir, registry, repo, fmt):
    """Return the images.json record of one pushed image."""
    tag = FORMAT_TAGS[fmt]
    digest, manifest = fetch_manifest(registry, repo, tag)
    layers = []
    for layer in manifest["layers"]:
        layers.append({
            "digest": layer["digest"],
            "mediaType": layer["mediaType"],
            "size": layer["size"],
            "uncompressed_bytes": uncompressed_size(
                blob_path(cache_dir, layer["digest"]), layer["mediaType"]),
        })
    return {
        "repo": repo,
        "tag": tag,
        "digest": digest,
        "compressed_bytes": sum(layer["size"] for layer in layers),
        "uncompressed_bytes": sum(layer["uncompressed_bytes"] for layer in layers),
        "layers": layers,
    }


# --- the cached records ---------------------------------------------------------

def load_record(cache_dir, ident):
    path = Path(cache_dir) / "records" / f"{ident}.json"
    if not path.exists():
        return {}
    record = json.loads(path.read_text())
    return {fmt: entry for fmt, entry in record.items()
            if manifest_stored(cache_dir, entry["repo"], entry["digest"])}


def save_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    temporary.rename(path)


def build_layout(cache_dir, name, quick):
    """(layout, tag) of the gzip image `name`, building it when missing."""
    if name in DEBIAN_NAMES:
        return ensure_debian_layout(cache_dir), name
    ident = image_id(name, quick)
    if name == "bigfile":
        return build_synthetic(cache_dir, ident, fill_bigfile(BIGFILE_BYTES[quick])), "gzip"
    if name == "many":
        return build_synthetic(cache_dir, ident, fill_many(MANY_ENTRIES[quick])), "gzip"
    raise ValueError(f"unknown image '{name}'; expected one of {', '.join(NAMES)}")


def ensure_image(pusher, cache_dir, name, quick):
    """Build, push and convert what is missing of one image; return its
    images.json entry {format: record}."""
    ident = image_id(name, quick)
    repo = f"bench/{ident}"
    record = load_record(cache_dir, ident)
    missing = [fmt for fmt in formats_of(name) if fmt not in record]
    if not missing:
        return record

    log.info("%s: building %s", ident, ", ".join(missing))
    if "gzip" in missing:
        layout, tag = build_layout(cache_dir, name, quick)
        pusher.push_layout(layout, tag, repo)
    for fmt in missing:
        if fmt == "zstd:chunked":
            pusher.convert_zstd_chunked(repo)
        elif fmt == "estargz":
            pusher.convert_estargz(repo)
        record[fmt] = describe(cache_dir, pusher.ensure_registry(), repo, fmt)
        save_json(Path(cache_dir) / "records" / f"{ident}.json", record)
    return record


def ensure_images(cache_dir=DEFAULT_CACHE_DIR, build_dir=REPO_DIR / "build",
                  names=NAMES, quick=False):
    """Make sure every image in `names` is in the registry storage under
    `cache_dir` in all its formats, write images.json (images-quick.json in
    quick mode) and return it: {name: {format: record}}."""
    cache_dir = Path(cache_dir)
    (cache_dir / "layouts").mkdir(parents=True, exist_ok=True)
    for name in names:
        if name not in NAMES:
            raise ValueError(f"unknown image '{name}'; expected one of {', '.join(NAMES)}")

    path = images_json_path(cache_dir, quick)
    images = json.loads(path.read_text()) if path.exists() else {}
    pusher = Pusher(cache_dir, build_dir)
    try:
        for name in names:
            images[name] = ensure_image(pusher, cache_dir, name, quick)
            save_json(path, images)
    finally:
        pusher.close()
    return {name: images[name] for name in names}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m bench.lib.images",
        description="Build, push and convert the benchmark images that are "
                    "not cached yet, then print images.json.")
    parser.add_argument("--quick", action="store_true",
                        help="build the small bigfile (128 MiB) and many "
                             "(50,000 entries) variants")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                        help=f"persistent cache (default {DEFAULT_CACHE_DIR})")
    parser.add_argument("--build-dir", type=Path, default=REPO_DIR / "build",
                        help="meson build directory with fs/imgmount "
                             "(default build/ in the repository)")
    parser.add_argument("names", nargs="*", default=list(NAMES),
                        help=f"images to build (default: {' '.join(NAMES)})")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s")
    images = ensure_images(args.cache_dir, args.build_dir, args.names, args.quick)
    json.dump(images, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
