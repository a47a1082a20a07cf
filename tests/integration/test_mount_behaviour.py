# SPDX-License-Identifier: Apache-2.0
"""Behaviour of the mount itself: statfs, link counts, read-only, lifecycle.

These use a few catalog images in one compression; the layer rules
themselves are in test_layer_rules.py.
"""

import os
import signal
import time
import unittest

from lib import procs
from lib.case import IntegrationCase, MOUNT_ACCESS_TIMEOUT
from lib.mount import run_imgmount

STATS_FIELDS = (
    "registry_requests", "registry_bytes", "registry_retries",
    "token_requests", "chunks_from_cache", "chunks_from_network",
    "bytes_from_cache", "bytes_from_network", "verify_failures",
    "cache_corrupt", "cache_write_errors", "fuse_reads", "fuse_read_errors",
    "cache_evictions", "cache_bytes", "memory_cache_hits",
)

# A write-type call for each FUSE operation that must fail on the
# read-only mount, as probe.py ops.
WRITE_OPS = [
    {"op": "open", "path": "/keep", "flags": ["O_WRONLY"]},
    {"op": "open", "path": "/keep", "flags": ["O_RDWR"]},
    {"op": "open", "path": "/new-file", "flags": ["O_WRONLY", "O_CREAT"]},
    {"op": "mkdir", "path": "/new-dir"},
    {"op": "unlink", "path": "/keep"},
    {"op": "rmdir", "path": "/late/sub"},
    {"op": "rename", "path": "/keep", "to": "/renamed"},
    {"op": "symlink", "path": "/new-link", "target": "keep"},
    {"op": "link", "path": "/keep", "to": "/new-hardlink"},
    {"op": "chmod", "path": "/keep", "mode": 0o600},
    {"op": "truncate", "path": "/keep", "size": 0},
    {"op": "setxattr", "path": "/keep", "name": "user.x"},
    {"op": "mknod", "path": "/new-fifo"},
    {"op": "utime", "path": "/keep"},
]


class MountBehaviourTest(IntegrationCase):
    def mount_catalog(self, name, compression="zstd"):
        converted = self.convert_image(self.push_image(name, compression))
        return self.mount_image(converted)

    def test_statfs_reports_image_totals(self):
        daemon = self.mount_catalog("union-replacements")
        root = daemon.mountpoint
        tree = self.dump(root)
        file_bytes = sum(int(fields["size"]) for fields in tree.values()
                         if fields["type"] == "reg")

        info = self.probe_one(root, "statvfs", "/")
        self.assertGreater(info["f_bsize"], 0)
        self.assertGreaterEqual(info["f_blocks"] * info["f_bsize"], file_bytes)
        self.assertGreaterEqual(info["f_files"], len(tree))
        self.assertEqual(info["f_namemax"], 255)
        # Chosen behaviour: a read-only image has no free space or inodes.
        self.assertEqual((info["f_bfree"], info["f_bavail"], info["f_ffree"]),
                         (0, 0, 0))
        self.assertTrue(info["f_flag"] & os.ST_RDONLY)

        df = procs.run(["df", "-P", root], MOUNT_ACCESS_TIMEOUT)
        lines = df.stdout.decode().splitlines()
        self.assertEqual(len(lines), 2, df.stdout)
        self.assertEqual(lines[1].split()[-1], root)
        self.assertGreater(int(lines[1].split()[1]), 0)

    def test_directory_link_counts(self):
        daemon = self.mount_catalog("dir-link-counts")
        root = daemon.mountpoint
        # 2 + the subdirectories s1 and s3; the whited-out s2 does not count.
        self.assertEqual(self.lstat(root, "/d")["nlink"], 4)
        self.assertEqual(self.lstat(root, "/d/s1")["nlink"], 2)
        self.assertEqual(self.lstat(root, "/")["nlink"], 3)
        found = procs.run(["find", root + "/d", "-type", "d"],
                          MOUNT_ACCESS_TIMEOUT).stdout.decode().split()
        self.assertEqual(sorted(found), [root + "/d", root + "/d/s1",
                                         root + "/d/s3"])

    def test_every_directory_counts_its_subdirectories(self):
        daemon = self.mount_catalog("union-replacements")
        tree = self.dump(daemon.mountpoint, "--dir-nlink")
        for path, fields in tree.items():
            if fields["type"] != "dir":
                continue
            prefix = "/" if path == "/" else path + "/"
            subdirs = [child for child, child_fields in tree.items()
                       if child != path and child.startswith(prefix)
                       and "/" not in child[len(prefix):]
                       and child_fields["type"] == "dir"]
            self.assertEqual(int(fields["dirnlink"]), 2 + len(subdirs), path)

    def test_write_operations_fail_with_erofs(self):
        daemon = self.mount_catalog("union-replacements")
        results = self.probe(daemon.mountpoint, WRITE_OPS)
        for op, result in zip(WRITE_OPS, results):
            self.assertEqual(result, {"errno": "EROFS"}, op)
        self.assertEqual(self.read_text(daemon.mountpoint, "/keep"), "keep v3")

    def test_stats_json_fields(self):
        daemon = self.mount_catalog("whiteout-one-path")
        before = daemon.stats()
        self.assertEqual(sorted(before), sorted(STATS_FIELDS))
        for field in STATS_FIELDS:
            self.assertIsInstance(before[field], int, field)
            self.assertGreaterEqual(before[field], 0, field)
        self.assertGreater(before["registry_requests"], 0)

        self.assertEqual(self.read_text(daemon.mountpoint, "/sub/test"), "inner\n")
        after = daemon.stats()
        self.assertEqual(after["chunks_from_network"],
                         before["chunks_from_network"] + 1)
        self.assertEqual(after["bytes_from_network"],
                         before["bytes_from_network"] + 6)
        self.assertGreater(after["fuse_reads"], before["fuse_reads"])
        self.assertEqual(after["verify_failures"], 0)

    def test_no_overlay_xattrs_reach_kernel_overlay(self):
        daemon = self.mount_catalog("opaque-subtree")
        self.assertEqual(self.probe_one(daemon.mountpoint, "xattrs", "/a"),
                         {"xattrs": {}})
        for options in ("", ",userxattr"):
            with self.subTest(options=options or "default"):
                self.check_overlay_copy_up(daemon.mountpoint, options)

    def check_overlay_copy_up(self, lower, extra_options):
        label = "userxattr" if extra_options else "default"
        upper, work, merged = (self.path(f"overlay-{label}-{part}")
                               for part in ("upper", "work", "merged"))
        for directory in (upper, work, merged):
            os.makedirs(directory)
        options = f"lowerdir={lower},upperdir={upper},workdir={work}{extra_options}"
        procs.record_mount(merged)
        procs.run(["mount", "-t", "overlay", "overlay", "-o", options, merged],
                  MOUNT_ACCESS_TIMEOUT)
        self.addCleanup(procs.run, ["umount", merged], MOUNT_ACCESS_TIMEOUT)

        self.assertEqual(self.listdir(merged, "/a"), [])
        self.assertEqual(self.probe_one(merged, "open", "/a/new",
                                        flags=["O_WRONLY", "O_CREAT"]),
                         {"ok": True})
        names = self.probe_one(upper, "xattrs", "/a")["xattrs"]
        opaque = [name for name in names if name.endswith("overlay.opaque")]
        self.assertEqual(opaque, [], f"copied-up a/ has {names}")

    def test_umount_command_stops_daemon(self):
        daemon = self.mount_catalog("whiteout-one-path")
        run_imgmount(["umount", daemon.mountpoint], timeout=60)
        self.assertIsNone(procs.is_mounted(daemon.mountpoint))
        self.assertEqual(daemon.process.wait(timeout=30), 0, daemon.log())

    def test_sigterm_unmounts_and_exits_zero(self):
        daemon = self.mount_catalog("whiteout-one-path")
        daemon.process.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.process.wait(timeout=30), 0, daemon.log())
        self.assertIsNone(procs.is_mounted(daemon.mountpoint))

    def test_stopped_daemon_fails_read_by_timeout(self):
        # A hung mount must fail a test instead of hanging it, so a read
        # that the stopped daemon never serves ends at the probe timeout.
        daemon = self.mount_catalog("whiteout-one-path")
        daemon.process.send_signal(signal.SIGSTOP)
        self.addCleanup(daemon.process.send_signal, signal.SIGCONT)
        started = time.monotonic()
        with self.assertRaises(procs.CommandError) as raised:
            self.probe(daemon.mountpoint,
                       [{"op": "read", "path": "/sub/test"}], timeout=5)
        self.assertIn("timed out after 5 s", str(raised.exception))
        self.assertLess(time.monotonic() - started, 30)

    def test_fusermount_unmount_ends_daemon(self):
        daemon = self.mount_catalog("whiteout-one-path")
        procs.run(["fusermount3", "-u", daemon.mountpoint], 60)
        self.assertEqual(daemon.process.wait(timeout=30), 0, daemon.log())


if __name__ == "__main__":
    unittest.main()
