# SPDX-License-Identifier: Apache-2.0
"""Union rules and tar encodings, checked on real mounts of converted images.

Each test pushes one catalog image (tests/images/catalog.py) in one
compression, converts it with `imgmount convert`, mounts the converted image
by digest, and compares a dump of the mount with a dump of `umoci unpack`
of the source image. Then it asserts the values the rule requires, so a
rule that umoci and imgmount both get wrong still fails. Where umoci cannot
serve as the reference (it fails on a bare ".wh." and on old-GNU sparse
entries), only the expected values are asserted.

The same tests run for gzip, zstd and plain tar source layers.
"""

import os
import stat
import unittest

from images import catalog
from lib import procs
from lib.case import IntegrationCase, MOUNT_ACCESS_TIMEOUT
from lib.mount import run_imgmount


def filemode(result):
    """Return `ls -l` / `stat -c %A` style text for a probe lstat result."""
    kinds = {"reg": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK,
             "chr": stat.S_IFCHR, "blk": stat.S_IFBLK, "fifo": stat.S_IFIFO}
    return stat.filemode(kinds[result["type"]] | result["mode"])


class LayerRules:
    """The tests; subclasses set compression and mix in IntegrationCase."""

    compression = None

    # Helpers -----------------------------------------------------------

    def mount_converted(self, name):
        """Push, convert and mount catalog image name; return (pushed, root)."""
        pushed = self.push_image(name, self.compression)
        converted = self.convert_image(pushed)
        daemon = self.mount_image(converted)
        self.daemon = daemon
        return pushed, daemon.mountpoint

    def mount_and_compare(self, name):
        """Mount name and assert it equals umoci's unpack; return the root."""
        pushed, root = self.mount_converted(name)
        reference = self.reference_rootfs(pushed.by_digest)
        self.assert_matches_reference(self.dump(reference, "--symlink-mtime"),
                                      self.dump(root, "--symlink-mtime"))
        self.assert_root_attributes(root)
        return root

    def assert_root_attributes(self, root):
        """Assert the root is 0755 0:0 with mtime 0: root entries never change it."""
        info = self.lstat(root, "/")
        self.assertEqual(info["type"], "dir")
        self.assertEqual(oct(info["mode"]), oct(0o755))
        self.assertEqual((info["uid"], info["gid"]), (0, 0))
        self.assertEqual(info["mtime_ns"], 0)

    def assertErrno(self, root, path, name="ENOENT"):
        result = self.lstat(root, path)
        self.assertEqual(result.get("errno"), name,
                         f"lstat {path}: expected {name}, got {result}")

    def assertText(self, root, path, expected):
        self.assertEqual(self.read_text(root, path), expected, path)

    def assertNoWhiteoutNames(self, root):
        tree = self.dump(root)
        leaked = [path for path in tree if "/.wh." in path]
        self.assertEqual(leaked, [], "whiteout entries are visible")

    def assert_mount_rejected(self, name, message):
        """Convert name, then assert mounting it fails with message."""
        pushed = self.push_image(name, self.compression)
        converted = self.convert_image(pushed)
        with self.assertRaises(AssertionError) as raised:
            self.mount_image(converted)
        text = str(raised.exception)
        self.assertIn("exited with status", text,
                      "the mount should fail before it is mounted")
        self.assertIn(message, text)

    # Whiteouts and opaque directories ---------------------------------

    def test_whiteout_removes_only_named_path(self):
        root = self.mount_and_compare("whiteout-one-path")
        self.assertEqual(self.listdir(root, "/"), ["root", "sub"])
        self.assertText(root, "/sub/test", "inner\n")
        self.assertErrno(root, "/test")
        self.assertErrno(root, "/.wh.test")
        self.assertNoWhiteoutNames(root)

    def test_opaque_marker_hides_lower_subtree(self):
        root = self.mount_and_compare("opaque-subtree")
        self.assertEqual(self.listdir(root, "/a"), [])
        info = self.lstat(root, "/a")
        self.assertEqual((info["type"], info["mode"]), ("dir", 0o700))
        self.assertEqual((info["uid"], info["gid"]), (1000, 1000))
        self.assertErrno(root, "/a/b")
        self.assertErrno(root, "/a/b/foo")
        self.assertErrno(root, "/a/b/__pycache__/x.pyc")
        self.assertErrno(root, "/a/.wh..wh..opq")
        # No overlay or whiteout bookkeeping leaks out as xattrs.
        xattrs = self.probe_one(root, "xattrs", "/a")
        self.assertEqual(xattrs, {"xattrs": {}})

    def test_opaque_marker_keeps_same_layer_children(self):
        root = self.mount_and_compare("opaque-after-children")
        self.assertEqual(self.listdir(root, "/app"), ["TestFile.txt"])
        self.assertText(root, "/app/TestFile.txt", "new")
        self.assertEqual(self.listdir(root, "/usr/share/doc/curl"),
                         ["copyright"])
        link = self.probe_one(root, "readlink", "/usr/share/doc/curl/copyright")
        self.assertEqual(link, {"target": "../libcurl4/copyright"})

    def test_whiteout_inside_whited_out_directory(self):
        # Chosen behaviour: /test is absent; no parent is made for a whiteout.
        root = self.mount_and_compare("whiteout-inside-whited-dir")
        self.assertEqual(self.listdir(root, "/"), [])
        self.assertErrno(root, "/test")
        self.assertErrno(root, "/test/test")

    def test_bare_whiteout_rejects_image(self):
        # umoci fails on this image with an unrelated lchown error, so only
        # imgmount's documented rejection is checked.
        self.assert_mount_rejected("bare-whiteout", 'invalid whiteout name ".wh."')

    def test_near_miss_opaque_name_is_plain_whiteout(self):
        root = self.mount_and_compare("opaque-near-miss")
        self.assertEqual(self.listdir(root, "/d1"), ["keep"])
        self.assertEqual(self.listdir(root, "/d2"), [])
        self.assertErrno(root, "/d1/.wh..wh.opq")
        self.assertErrno(root, "/d2/.wh..wh..opq")
        self.assertNoWhiteoutNames(root)

    def test_hardlinked_whiteouts_delete_both_names(self):
        root = self.mount_and_compare("whiteout-hardlinks")
        self.assertEqual(self.listdir(root, "/var/lib/apt/lists"), [])

    def test_first_layer_whiteouts_are_hidden(self):
        root = self.mount_and_compare("whiteouts-hidden")
        self.assertEqual(self.listdir(root, "/"), ["keep", "root"])
        self.assertEqual(self.listdir(root, "/root"), [])
        self.assertErrno(root, "/changelog.txt")
        self.assertNoWhiteoutNames(root)
        devices = [path for path, fields in self.dump(root).items()
                   if fields["type"] == "chr"]
        self.assertEqual(devices, [])

    # Replacement rules -------------------------------------------------

    def test_later_layers_replace_files_and_dirs(self):
        root = self.mount_and_compare("union-replacements")
        self.assertText(root, "/keep", "keep v3")

        self.assertEqual(self.lstat(root, "/file-over-dir")["type"], "reg")
        self.assertText(root, "/file-over-dir", "now a file")
        self.assertErrno(root, "/file-over-dir/child", "ENOTDIR")

        info = self.lstat(root, "/dir-over-file")
        self.assertEqual((info["type"], info["mode"]), ("dir", 0o711))
        self.assertEqual(self.listdir(root, "/dir-over-file"), ["child"])

        self.assertEqual(self.listdir(root, "/recreated"), ["new"])
        info = self.lstat(root, "/recreated")
        self.assertEqual((info["mode"], info["uid"], info["gid"]), (0o755, 7, 7))
        self.assertEqual(self.listdir(root, "/recreated-later"), ["new"])
        self.assertEqual(self.lstat(root, "/recreated-later")["mode"], 0o700)

        self.assertEqual(self.lstat(root, "/link-over-file")["type"], "reg")
        self.assertText(root, "/file-over-link", "regular now")
        self.assertText(root, "/file-over-link-target", "t")

    def test_directory_listed_after_children(self):
        root = self.mount_and_compare("union-replacements")
        info = self.lstat(root, "/late")
        self.assertEqual((info["mode"], info["uid"], info["gid"]), (0o750, 1, 1))
        self.assertEqual(info["mtime_ns"], 1234567890 * 10**9)
        self.assertEqual(self.listdir(root, "/late"), ["child", "sub"])

    def test_duplicate_entries_later_wins(self):
        root = self.mount_and_compare("duplicate-entries")
        self.assertText(root, "/etc/conf", "v2-longer")
        self.assertEqual(self.lstat(root, "/etc/conf")["size"], 9)
        self.assertEqual(self.lstat(root, "/usr/lib/gcc")["mode"], 0o2755)
        self.assertEqual(self.lstat(root, "/x/y")["type"], "dir")
        self.assertEqual(self.listdir(root, "/x/y"), ["z"])

    def test_file_replaces_lower_symlink(self):
        root = self.mount_and_compare("symlink-replaced-by-file")
        self.assertEqual(self.lstat(root, "/usr/bin/env")["type"], "reg")
        self.assertText(root, "/usr/bin/env", "COREUTILS-ENV")
        self.assertText(root, "/bin/busybox", "BUSYBOX")
        self.assertEqual(self.probe_one(root, "readlink", "/bin/systemd"),
                         {"target": "/usr/lib/systemd/systemd"})

    def test_implied_parents_are_0755_root_owned(self):
        root = self.mount_and_compare("implied-parents")
        for path in ("/bin", "/bin/app.runfiles", "/bin/app.runfiles/_main",
                     "/bin/app.runfiles/_main/app_"):
            info = self.lstat(root, path)
            self.assertEqual((info["type"], info["mode"], info["uid"],
                              info["gid"], info["mtime_ns"]),
                             ("dir", 0o755, 0, 0, 0), path)
        for path in ("/bin/app.repo_mapping", "/bin/app",
                     "/bin/app.runfiles/_main/main.go",
                     "/bin/app.runfiles/_repo_mapping",
                     "/bin/app.runfiles/_main/app_/app"):
            self.assertEqual(self.lstat(root, path)["type"], "reg", path)
        self.assertText(root, "/bin/app.runfiles/_main/app_/app", "ELF")

    # Paths and symlinks ------------------------------------------------

    def test_path_spellings_are_cleaned(self):
        root = self.mount_and_compare("path-spellings")
        self.assertEqual(self.listdir(root, "/etc"), ["group", "hostname", "motd"])
        self.assertEqual(self.listdir(root, "/"), ["escape", "escape2", "etc"])
        # ".." components are clamped at the image root.
        self.assertText(root, "/escape", "e")
        self.assertText(root, "/escape2", "e2")
        # Nothing named after an entry appears beside the mount or in the cache.
        for outside in (self.workdir, self.class_dir):
            self.assertFalse(os.path.exists(os.path.join(outside, "escape")))
            self.assertFalse(os.path.exists(os.path.join(outside, "escape2")))
        cached_names = [name for _, _, names in os.walk(self.daemon.cache_dir)
                        for name in names]
        self.assertFalse([name for name in cached_names if "escape" in name])

    def test_symlink_parents_resolve_inside_image(self):
        host_paths = ["/etc/evil.conf", "/tmp/evil2", "/etc/via-relative"]
        existed = {path: os.path.lexists(path) for path in host_paths}
        root = self.mount_and_compare("symlink-parents")

        self.assertEqual(self.probe_one(root, "readlink", "/pwn"),
                         {"target": "/etc"})
        self.assertEqual(self.probe_one(root, "readlink", "/up"),
                         {"target": "../../../../tmp"})
        self.assertText(root, "/etc/evil.conf", "E")
        self.assertText(root, "/tmp/evil2", "E2")
        self.assertText(root, "/etc/via-relative", "R")
        self.assertText(root, "/usr/lib/via-chain.so", "C")
        self.assertEqual(self.lstat(root, "/pwn")["type"], "symlink")
        for path in host_paths:
            self.assertEqual(os.path.lexists(path), existed[path],
                             f"host path {path} changed")

    def test_symlink_size_is_target_length(self):
        root = self.mount_and_compare("symlink-sizes")
        self.assertEqual(self.lstat(root, "/usr/lib/libpq.so")["size"], 13)
        self.assertEqual(self.lstat(root, "/a")["size"], 255)
        self.assertEqual(self.lstat(root, "/usr/lib/header-mode-0644")["mode"], 0o777)
        result = procs.run(["tar", "-cf", "/dev/null", "-C", root,
                            "usr/lib/libpq.so", "a"], MOUNT_ACCESS_TIMEOUT)
        self.assertEqual(result.stderr.decode(), "")

    # Hardlinks ---------------------------------------------------------

    def test_replacing_one_hardlink_alias_keeps_others(self):
        root = self.mount_and_compare("hardlink-alias-replaced")
        self.assertText(root, "/t1", "456\n")
        self.assertText(root, "/t2", "123\n")
        self.assertText(root, "/t3", "123\n")
        t1, t2, t3 = (self.lstat(root, path) for path in ("/t1", "/t2", "/t3"))
        self.assertEqual(t2["ino"], t3["ino"])
        self.assertEqual((t2["nlink"], t3["nlink"]), (2, 2))
        self.assertNotEqual(t1["ino"], t2["ino"])
        self.assertEqual(t1["nlink"], 1)

    def test_hardlink_to_symlink_shares_symlink_inode(self):
        root = self.mount_and_compare("hardlink-to-symlink")
        xxx, yyy = self.lstat(root, "/tmp/xxx"), self.lstat(root, "/tmp/yyy")
        self.assertEqual(yyy["type"], "symlink")
        self.assertEqual(self.probe_one(root, "readlink", "/tmp/yyy"),
                         {"target": "/tmp/zzz"})
        self.assertEqual(xxx["ino"], yyy["ino"])
        self.assertEqual((xxx["nlink"], yyy["nlink"]), (2, 2))

    def test_hardlinks_share_one_stable_inode(self):
        root = self.mount_and_compare("hardlink-group")
        names = ["/usr/bin/x", "/usr/bin/y", "/usr/bin/z"]
        infos = [self.lstat(root, name) for name in names]
        self.assertEqual(len({info["ino"] for info in infos}), 1)
        self.assertEqual([info["nlink"] for info in infos], [3, 3, 3])

        found = procs.run(["find", root, "-samefile", root + "/usr/bin/x"],
                          MOUNT_ACCESS_TIMEOUT).stdout.decode().split()
        self.assertEqual(sorted(found), [root + name for name in names])

        # The numbers survive dropping the kernel's dentry and inode caches.
        with open("/proc/sys/vm/drop_caches", "w") as stream:
            stream.write("3\n")
        self.assertEqual([self.lstat(root, name)["ino"] for name in names],
                         [infos[0]["ino"]] * 3)

        # A second mount of the same image numbers inodes the same way, and
        # 1000 parallel stats on each mount see one value per name.
        second = self.mount_image(self.daemon.image).mountpoint
        for mountpoint in (root, second):
            result = self.probe_one(mountpoint, "parallel_lstat", "",
                                    paths=names, count=334, threads=8)
            self.assertEqual(result["distinct"],
                             [[name, infos[0]["ino"], 3] for name in names])

    # Attributes --------------------------------------------------------

    def test_xattrs_exactly_schily_records(self):
        root = self.mount_and_compare("xattrs")
        self.assertEqual(self.probe_one(root, "xattrs", "/usr/bin/ping"), {
            "xattrs": {"security.capability": catalog.CAP_NET_RAW_P.hex(),
                       "user.note": b"a=b,c".hex()}})
        self.assertEqual(self.probe_one(root, "xattrs", "/data"),
                         {"xattrs": {"user.dir-attr": "000102ff"}})
        self.assertEqual(self.lstat(root, "/usr/bin/ping")["mtime_ns"],
                         1700000000500000000)

        ping = root + "/usr/bin/ping"
        getfattr = procs.run(["getfattr", "--absolute-names", "-d", "-m", "-",
                              "-e", "hex", ping], MOUNT_ACCESS_TIMEOUT)
        self.assertEqual(getfattr.stdout.decode().splitlines()[1:], [
            "security.capability=0x0000000200200000000000000000000000000000",
            "user.note=0x613d622c63", ""])
        getcap = procs.run(["getcap", ping], MOUNT_ACCESS_TIMEOUT)
        self.assertEqual(getcap.stdout.decode().split(), [ping, "cap_net_raw=p"])

    def test_empty_pax_xattr_value_means_no_xattr(self):
        root = self.mount_and_compare("xattr-empty-value")
        self.assertEqual(self.probe_one(root, "xattrs", "/empty-value"),
                         {"xattrs": {"user.kept": b"v".hex()}})

    def test_special_mode_bits_and_owners(self):
        root = self.mount_and_compare("mode-bits-and-owners")
        expected = {
            "/usr/bin/sudo": ("---s--x--x", 0, 0),
            "/usr/bin/wall": ("-rwxr-sr-x", 0, 5),
            "/tmp": ("drwxrwxrwt", 0, 0),
            "/srv": ("drwxrwsr-t", 0, 100),
            "/home/user": ("drwx------", 1000, 1000),
            "/nobody-file": ("-rw-r--r--", 65534, 65534),
            "/big-ids": ("-rw-r--r--", 1000000, 2000000),
            "/no-perms": ("----------", 0, 0),
        }
        for path, (mode, uid, gid) in expected.items():
            info = self.lstat(root, path)
            self.assertEqual((filemode(info), info["uid"], info["gid"]),
                             (mode, uid, gid), path)

    def test_timestamps_keep_nanoseconds(self):
        root = self.mount_and_compare("timestamps")
        expected = {
            "/f1": 1644325033182744228,
            "/f2": -2146608000 * 10**9,
            "/f3": 0,
            "/d": 1600000000 * 10**9,
            "/d/x": 1700000000 * 10**9,
            "/link": 1500000000 * 10**9,
        }
        for path, mtime in expected.items():
            self.assertEqual(self.lstat(root, path)["mtime_ns"], mtime, path)

    def test_device_nodes_and_fifo(self):
        root = self.mount_and_compare("devices")
        expected = {
            "/dev/null": ("chr", [1, 3], 0o666, 0),
            "/dev/sda": ("blk", [8, 0], 0o660, 6),
            "/dev/wide": ("chr", [300, 1048575], 0o600, 0),
            # An OCI whiteout is a name, so a 0/0 char device stays visible.
            "/dev/wh": ("chr", [0, 0], 0o000, 0),
        }
        for path, (kind, rdev, mode, gid) in expected.items():
            info = self.lstat(root, path)
            self.assertEqual((info["type"], info["rdev"], info["mode"],
                              info["gid"]), (kind, rdev, mode, gid), path)
        fifo = self.lstat(root, "/run/ctl")
        self.assertEqual((fifo["type"], fifo["mode"]), ("fifo", 0o620))

    # Tar encodings -----------------------------------------------------

    def test_size_fields_base256_and_pax(self):
        root = self.mount_and_compare("size-encodings")
        self.assertEqual(self.lstat(root, "/base256.bin")["size"], 3000)
        self.assertEqual(self.lstat(root, "/pax-size.bin")["size"], 5000)
        self.assertText(root, "/after.txt", "after")

    def test_long_names_all_encodings(self):
        root = self.mount_and_compare("long-names")
        names = catalog.LONG_NAMES
        self.assertText(root, "/" + names["gnu"], "gnu long name")
        self.assertText(root, "/" + names["prefix"], "ustar prefix")
        self.assertText(root, "/" + names["exact512"], "512 bytes")
        self.assertText(root, "/pax/overridden-name.txt", "pax path")
        self.assertErrno(root, "/short-name")
        self.assertEqual(self.probe_one(root, "readlink", "/long-target"),
                         {"target": names["symlink_target"]})
        linked = self.lstat(root, "/hardlink-to-long")
        self.assertEqual(linked["ino"], self.lstat(root, "/" + names["gnu"])["ino"])
        for path in self.dump(root):
            self.assertNotIn("LongLink", path)
            self.assertNotIn("PaxHeaders", path)

    def test_non_utf8_names_and_empty_files(self):
        root = self.mount_and_compare("odd-names-and-empty-files")
        names = self.listdir(root, "/")
        self.assertIn(os.fsdecode(b"\xff\xfe"), names)
        self.assertIn(os.fsdecode(b"dir\x80"), names)
        self.assertNotIn(os.fsdecode(b"caf\xe9"), names)
        self.assertNotIn("gone-\xe9", names)
        self.assertText(root, os.fsdecode(b"/dir\x80/inside"), "in")
        for path in ("/empty-1", "/empty-2", os.fsdecode(b"/dir\x80/empty-3")):
            self.assertEqual(self.lstat(root, path)["size"], 0, path)
            self.assertText(root, path, "")

    # For sparse files either outcome is allowed: the converter rejects the
    # layer with an error naming the entry, or the mount shows the dense file.

    def test_pax_sparse_file_rejected_or_dense(self):
        self.check_sparse_image("sparse-pax")

    def test_gnu_sparse_file_rejected_or_dense(self):
        self.check_sparse_image("sparse-gnu")

    def check_sparse_image(self, name):
        pushed = self.push_image(name, self.compression)
        dest = f"{pushed.registry_host}/{pushed.repo}:{pushed.tag}-zstdchunked"
        result = run_imgmount(["convert", pushed.by_tag, dest], check=False)
        if result.returncode != 0:
            errors = [line for line in result.stderr.decode().splitlines()
                      if "error:" in line]
            self.assertTrue(any("sparse" in line.lower() for line in errors),
                            errors)
            self.assertTrue(any("sparse.bin" in line for line in errors),
                            f"no error names the entry sparse.bin: {errors}")
            return

        converted = f"{pushed.registry_host}/{pushed.repo}@" \
                    f"{result.stdout.decode().strip()}"
        root = self.mount_image(converted).mountpoint
        self.assertEqual(self.lstat(root, "/sparse.bin")["size"],
                         catalog.SPARSE_SIZE)
        self.assertEqual(self.probe_one(root, "sha256", "/sparse.bin")["sha256"],
                         catalog.sparse_dense_sha256())
        self.assertText(root, "/after.txt", "after")
        for path in self.dump(root):
            self.assertNotIn("GNUSparseFile", path)

    def test_empty_layers_are_accepted(self):
        root = self.mount_and_compare("empty-layers")
        self.assertEqual(self.listdir(root, "/"), ["empty", "emptydir", "hello"])
        self.assertEqual(self.lstat(root, "/empty")["size"], 0)
        self.assertText(root, "/hello", "hi")

        # On a fresh mount with an empty cache, reading the empty file sends
        # no request for blob data.
        fresh = self.mount_image(self.daemon.image).mountpoint
        offset = self.registry.log_offset()
        self.assertText(fresh, "/empty", "")
        blob_gets = [entry for entry in self.registry.access_log(offset)
                     if "/blobs/" in entry.path]
        self.assertEqual(blob_gets, [])


class GzipLayerRulesTest(LayerRules, IntegrationCase):
    compression = "gzip"


class ZstdLayerRulesTest(LayerRules, IntegrationCase):
    compression = "zstd"


class TarLayerRulesTest(LayerRules, IntegrationCase):
    compression = "tar"


if __name__ == "__main__":
    unittest.main()
