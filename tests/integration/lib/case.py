# SPDX-License-Identifier: Apache-2.0
"""The base TestCase of the integration tests and its decorators.

IntegrationCase gives each test class a private docker-registry and a
temporary directory. Its helpers push a catalog image, convert it, mount
it, unpack the reference with skopeo and umoci, dump trees and probe mounts. Everything a helper starts or mounts is undone by
a cleanup registered at once, so a failing test still unmounts and stops
its servers. Every access to a FUSE mount runs in a child process under a
timeout (dumptree.py and probe.py), so a hung mount fails the test instead
of hanging it.
"""

import functools
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

from . import dumptree, mount, oci, procs
from .registry import Registry

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from images import catalog  # noqa: E402  (needs TESTS_DIR on sys.path)

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
SLOW_ENV = "IMGMOUNT_SLOW_TESTS"

# Seconds a single dump or probe of a mount may take before the test fails.
MOUNT_ACCESS_TIMEOUT = 120


def timeout(seconds):
    """Set the hard time limit of one test (the default is 300 s)."""
    def mark(function):
        function.imgmount_timeout = seconds
        return function
    return mark


def slow(function):
    """Mark a test slow: tests/run runs it only with --slow."""
    function.imgmount_slow = True

    @functools.wraps(function)
    def wrapper(self, *args, **kwargs):
        if os.environ.get(SLOW_ENV) != "1":
            self.skipTest("slow test: run tests/run --slow to include it")
        return function(self, *args, **kwargs)
    return wrapper


class PushedImage:
    """An image in the test registry: its layout, digests and references."""

    def __init__(self, registry_host, repo, tag, layout, image):
        self.registry_host = registry_host
        self.repo = repo
        self.tag = tag
        self.layout = layout
        self.image = image

    @property
    def by_tag(self):
        return f"{self.registry_host}/{self.repo}:{self.tag}"

    @property
    def by_digest(self):
        return f"{self.registry_host}/{self.repo}@{self.image.manifest_digest}"


def remove_workdir(path):
    """Remove a test directory, but never descend into a live mount."""
    leftover = [line for line in _mounts_under(path)]
    for mountpoint in leftover:
        procs.lazy_unmount(mountpoint)
    if any(True for _ in _mounts_under(path)):
        raise AssertionError(f"mounts still present under {path}; "
                             f"not removing it")
    shutil.rmtree(path, ignore_errors=True)


def _mounts_under(path):
    prefix = os.fsencode(os.path.realpath(path)) + b"/"
    with open("/proc/self/mountinfo", "rb") as stream:
        for line in stream:
            mountpoint = procs.unescape_mountinfo(line.split(b" ")[4])
            if mountpoint.startswith(prefix):
                yield mountpoint


class IntegrationCase(unittest.TestCase):
    """Base class: a registry per class, a work directory per test."""

    registry = None
    class_dir = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.class_dir = tempfile.mkdtemp(prefix="imgmount-test-")
        procs.record_directory(cls.class_dir)
        cls.addClassCleanup(remove_workdir, cls.class_dir)
        cls.registry = Registry(os.path.join(cls.class_dir, "registry"))
        cls.registry.start()
        cls.addClassCleanup(cls.registry.stop)
        cls._pushed = {}

    def setUp(self):
        super().setUp()
        self.workdir = tempfile.mkdtemp(dir=self.class_dir,
                                        prefix=self._testMethodName[:40] + "-")

    def path(self, *parts):
        """Return a path inside this test's work directory."""
        return os.path.join(self.workdir, *parts)

    # Images -------------------------------------------------------------

    def push_image(self, name, compression, registry=None):
        """Push catalog image name with compression; return a PushedImage.

        The result is cached per class and registry, since pushing the same
        image twice gives the same digests.
        """
        registry = registry or self.registry
        key = (name, compression, registry.host)
        cached = type(self)._pushed.get(key)
        if cached is not None:
            return cached

        spec = catalog.IMAGES[name]
        layout = os.path.join(self.class_dir, "layouts", f"{name}-{compression}")
        image = oci.write_layout(layout, spec.layers(), compression, tag="src")
        repo = f"test/{name}"
        tag = compression
        oci.push_layout(layout, "src", registry.host, repo, tag, timeout=900)
        pushed = PushedImage(registry.host, repo, tag, layout, image)
        self.assert_registry_has_manifest(registry, repo, image.manifest_digest)
        type(self)._pushed[key] = pushed
        return pushed

    def assert_registry_has_manifest(self, registry, repo, digest):
        status, _, _ = registry.get(
            f"/v2/{repo}/manifests/{digest}",
            {"Accept": oci.MEDIA_MANIFEST})
        self.assertEqual(status, 200, f"skopeo did not keep manifest {digest} "
                         f"of {repo} byte for byte")

    def convert_image(self, pushed, timeout=600):
        """Run imgmount convert on pushed; return the converted by-digest ref."""
        dest_tag = pushed.tag + "-zstdchunked"
        digest = mount.convert(pushed.by_tag,
                               f"{pushed.registry_host}/{pushed.repo}:{dest_tag}",
                               timeout=timeout)
        return f"{pushed.registry_host}/{pushed.repo}@{digest}"

    def reference_rootfs(self, reference, name="reference"):
        """Copy reference out with skopeo, unpack it with umoci; return rootfs.

        Zstd layers are decompressed first, because umoci 0.4.7 cannot read
        them (see oci.decompress_zstd_layers). self.unpack_started_ns is
        set to the time just before the unpack, so compare_with_reference
        can tell the directories that umoci created "now" for lack of an
        entry.
        """
        layout = self.path(name + "-layout")
        oci.pull_layout(reference, layout, "ref")
        oci.decompress_zstd_layers(layout, "ref")
        self.unpack_started_ns = time.time_ns()
        return oci.umoci_unpack(layout, "ref", self.path(name + "-bundle"))

    def assert_matches_reference(self, reference_dump, mount_dump,
                                 mount_name="mount"):
        """Assert a mount's dump equals the umoci unpack's, with two rules.

        The root is left out: umoci applies root entries ("./") to it and
        leaves its mtime at 0 or the unpack time, while imgmount keeps the
        root at 0755 0:0 mtime 0 (asserted by test_layer_rules). umoci gives
        directories that have no entry in the image the unpack time. On the
        mount they must have mtime 0, so those are compared against 0.
        """
        expected = {path: dict(fields) for path, fields in
                    reference_dump.items() if path != "/"}
        actual = {path: dict(fields) for path, fields in mount_dump.items()
                  if path != "/"}
        implied_after = self.unpack_started_ns - 1_000_000_000
        for fields in expected.values():
            if fields["type"] == "dir" and int(fields["mtime"]) >= implied_after:
                fields["mtime"] = "0"
        self.assertDumpsEqual(expected, actual, "umoci", mount_name)

    def mount_image(self, reference, cache_dir=None, mountpoint=None,
                    extra_args=()):
        """Mount reference with imgmount; unmounted in the test's cleanup."""
        self._serial_mount = getattr(self, "_serial_mount", 0) + 1
        serial = self._serial_mount
        cache_dir = cache_dir or self.path(f"cache{serial}")
        mountpoint = mountpoint or self.path(f"mnt{serial}")
        daemon = mount.Mount(reference, mountpoint, cache_dir,
                             self.path(f"imgmount{serial}.log"), extra_args)
        self.addCleanup(daemon.stop)
        daemon.start()
        return daemon

    # Looking at trees ---------------------------------------------------

    def dump(self, root, *flags):
        """Return the parsed dumptree.py output for root (run as a child)."""
        result = procs.run([PYTHON, os.path.join(LIB_DIR, "dumptree.py"),
                            *flags, root], MOUNT_ACCESS_TIMEOUT)
        return dumptree.parse_dump(result.stdout.decode("ascii"))

    def probe(self, root, ops, timeout=MOUNT_ACCESS_TIMEOUT):
        """Run probe.py ops against root in a child; return its results."""
        result = procs.run([PYTHON, os.path.join(LIB_DIR, "probe.py"), root],
                           timeout, input=json.dumps(ops).encode())
        return json.loads(result.stdout)

    def probe_one(self, root, op, path, **arguments):
        return self.probe(root, [dict(op=op, path=path, **arguments)])[0]

    def lstat(self, root, path):
        return self.probe_one(root, "lstat", path)

    def read_text(self, root, path):
        result = self.probe_one(root, "read", path)
        self.assertNotIn("errno", result, f"reading {path} failed")
        return bytes.fromhex(result["hex"]).decode()

    def listdir(self, root, path):
        result = self.probe_one(root, "listdir", path)
        self.assertNotIn("errno", result, f"listing {path} failed")
        return result["names"]

    def assertDumpsEqual(self, expected, actual, expected_name, actual_name):
        difference = dumptree.diff_dumps(expected, actual, expected_name,
                                         actual_name)
        if difference:
            self.fail(f"trees differ ({expected_name} vs {actual_name}):\n"
                      f"{difference}")
