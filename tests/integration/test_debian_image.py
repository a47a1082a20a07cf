# SPDX-License-Identifier: Apache-2.0
"""The main job on a real image: Debian 12 minbase plus python3.

scripts/build-debian-image.sh builds the image once from Debian's packages
(debootstrap, then apt-get install python3 in a second layer with real
whiteouts) and caches it in $IMGMOUNT_DEMO_DIR or /var/cache/imgmount-demo.
The tests push it to the class's registry, convert it, and check the mount
and the inspection commands against `umoci unpack` of the source image.
"""

import hashlib
import json
import os
import subprocess
import unittest

from lib import mount, oci, procs
from lib.case import IntegrationCase, PushedImage, timeout

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_SCRIPT = os.path.join(REPO_DIR, "scripts", "build-debian-image.sh")
IMAGE_DIR = os.environ.get("IMGMOUNT_DEMO_DIR", "/var/cache/imgmount-demo")
SOURCE_TAG = "bookworm-python"
PYTHON_COMMAND = "import json, sqlite3; print(1)"

# Share of the image's compressed bytes that starting python3 may fetch.
# One run fetched 6.8%; the bound leaves room for chunking changes while
# still failing if the mount fetched whole layers.
MAX_FETCHED_SHARE = 0.15


def manifest_digest(layout, tag):
    """Digest of the manifest tagged tag in an OCI layout."""
    with open(os.path.join(layout, "index.json")) as stream:
        index = json.load(stream)
    for descriptor in index["manifests"]:
        if descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return descriptor["digest"]
    raise KeyError(f"tag {tag!r} not found in {layout}")


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DebianImageTest(IntegrationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            procs.run([BUILD_SCRIPT, IMAGE_DIR], 2400)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, RuntimeError) as error:
            raise unittest.SkipTest(f"building the Debian image failed (is Debian's "
                                    f"mirror reachable?): {error}")

        repo = "test/debian"
        oci.push_layout(IMAGE_DIR, SOURCE_TAG, cls.registry.host, repo, SOURCE_TAG,
                        timeout=900)
        cls.source = PushedImage(cls.registry.host, repo, SOURCE_TAG, IMAGE_DIR, None)
        cls.source_digest = manifest_digest(IMAGE_DIR, SOURCE_TAG)
        digest = mount.convert(f"{cls.registry.host}/{repo}:{SOURCE_TAG}",
                               f"{cls.registry.host}/{repo}:{SOURCE_TAG}-zstdchunked",
                               timeout=900)
        cls.converted = f"{cls.registry.host}/{repo}@{digest}"

    def source_by_digest(self):
        return f"{self.source.registry_host}/{self.source.repo}@{self.source_digest}"

    def converted_size(self):
        repo, digest = self.converted.split("/", 1)[1].split("@")
        status, _, body = self.registry.get(f"/v2/{repo}/manifests/{digest}",
                                            {"Accept": oci.MEDIA_MANIFEST})
        self.assertEqual(status, 200)
        return sum(layer["size"] for layer in json.loads(body)["layers"])

    @timeout(1200)
    def test_mount_matches_umoci_unpack(self):
        reference = self.reference_rootfs(self.source_by_digest())
        reference_dump = self.dump(reference)
        daemon = self.mount_image(self.converted)
        self.assert_matches_reference(reference_dump, self.dump(daemon.mountpoint))
        self.assertEqual(daemon.stats()["verify_failures"], 0)

    @timeout(600)
    def test_python_starts_lazily_in_chroot(self):
        daemon = self.mount_image(self.converted)
        result = procs.run(["chroot", daemon.mountpoint, "python3", "-c", PYTHON_COMMAND],
                           300)
        self.assertEqual(result.stdout, b"1\n")

        stats = daemon.stats()
        image_size = self.converted_size()
        self.assertGreater(stats["registry_bytes"], 0)
        self.assertLess(stats["registry_bytes"], image_size * MAX_FETCHED_SHARE,
                        f"fetched {stats['registry_bytes']} of {image_size} bytes")
        self.assertEqual(stats["verify_failures"], 0)

    @timeout(1200)
    def test_inspection_commands_match_unpack(self):
        reference = self.reference_rootfs(self.source_by_digest())
        cache = ["--cache-dir", self.path("cache")]

        listing = json.loads(mount.run_imgmount(
            ["ls", "-R", "-a", "--json", *cache, self.converted, "/"], 600).stdout)
        listed = {entry["path"] for entry in listing if entry["name"] not in (".", "..")}
        expected = set()
        for directory, dirs, files in os.walk(reference):
            for name in dirs + files:
                relative = os.path.relpath(os.path.join(directory, name), reference)
                expected.add("/" + os.fsdecode(relative))
        self.assertEqual(listed, expected)

        python = "/usr/bin/python3.11"
        stat = json.loads(mount.run_imgmount(
            ["stat", "--json", *cache, self.converted, python]).stdout)
        info = os.lstat(os.path.join(reference, python.lstrip("/")))
        self.assertEqual(stat["size"], info.st_size)
        self.assertEqual(stat["mode"], info.st_mode & 0o7777)
        self.assertEqual(stat["type"], "file")
        self.assertGreater(stat["chunks"], 1)

        content = mount.run_imgmount(["cat", *cache, self.converted, python]).stdout
        self.assertEqual(hashlib.sha256(content).hexdigest(),
                         file_sha256(os.path.join(reference, python.lstrip("/"))))

        inspect = json.loads(mount.run_imgmount(
            ["inspect", "--json", *cache, self.converted]).stdout)
        self.assertTrue(inspect["lazy"])
        self.assertEqual(len(inspect["layers"]), 2)
        self.assertEqual(inspect["cmd"], ["/bin/sh"])

        tree = mount.run_imgmount(["tree", *cache, self.converted, "/etc/apt"]).stdout
        self.assertIn(b"sources.list", tree)


if __name__ == "__main__":
    unittest.main()
