# SPDX-License-Identifier: Apache-2.0
"""`imgmount ls`, `stat`, `cat`, `tree` and `inspect`, which read images unmounted.

Each test pushes catalog images (tests/images/catalog.py) to the class's
docker-registry, converts them with `imgmount convert`, and runs the
commands against the converted image by digest. What they report is
compared with `umoci unpack` of the same image: the listing, every
attribute, every xattr and the SHA-256 of every file's contents. Other tests
check one layer's own listing against the layer's table of contents (TOC).
They check that `cat` of a corrupted chunk stops with status 4 before the
chunk. The registry's access log shows that listing fetches nothing but
the manifest and the TOCs.
"""

import hashlib
import json
import os
import shutil
import stat
import tempfile
import unittest

from images import catalog
from lib import dumptree, oci, procs, zstdchunked
from lib.case import IntegrationCase, timeout
from lib.mount import binary, run_imgmount
from lib.registry import free_port

# Seconds one imgmount command may take. It talks only to the loopback
# registry, and a network failure gives up after about 2 s of retries.
COMMAND_TIMEOUT = 120

# Exit statuses from the commands' --help.
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_VERIFY = 4
EXIT_NETWORK = 5

# ls --json type names and the dumptree.py names for the same types.
DUMP_TYPES = {"file": "reg", "dir": "dir", "symlink": "symlink",
              "char": "chr", "block": "blk", "fifo": "fifo"}

# Bytes a listing may fetch per layer beyond its TOC (as in
# test_lazy_fetch.py: a footer or a fixed-size tail read).
PER_LAYER_ALLOWANCE = 128 * 1024

UNUSED_UID = 65534


def json_bytes(entry, key):
    """Return the raw bytes of a name or path field of the JSON output."""
    if key + "_hex" in entry:
        return bytes.fromhex(entry[key + "_hex"])
    return entry[key].encode()


def toc_paths(toc):
    """Return the cleaned names of the TOC's entries, in TOC order."""
    paths = []
    for entry in toc["entries"]:
        if entry["type"] == "chunk":
            continue
        name = entry["name"]
        while name.startswith("./"):
            name = name[2:]
        paths.append("/" + name.strip("/"))
    return paths


class InspectBase:
    """Helpers shared by the test classes, mixed into IntegrationCase."""

    def imgmount(self, *args, check=True, cache_dir=None):
        """Run an imgmount command with this test's cache and return the result."""
        cache_dir = cache_dir or self.path("cache")
        result = run_imgmount([args[0], "--cache-dir", cache_dir, *args[1:]],
                              COMMAND_TIMEOUT, check=check)
        return result

    def imgmount_json(self, *args, cache_dir=None):
        result = self.imgmount(args[0], "--json", *args[1:], cache_dir=cache_dir)
        return json.loads(result.stdout)

    def converted(self, name, compression="gzip"):
        """Push and convert catalog image name and return its reference by digest."""
        key = ("converted", name, compression)
        cache = type(self)._pushed
        if key not in cache:
            cache[key] = self.convert_image(self.push_image(name, compression))
        return cache[key]

    def manifest_of(self, reference):
        repo, digest = reference.split("/", 1)[1].split("@")
        status, _, body = self.registry.get(f"/v2/{repo}/manifests/{digest}",
                                            {"Accept": oci.MEDIA_MANIFEST})
        self.assertEqual(status, 200, f"manifest of {reference}")
        return json.loads(body)

    def layer_toc(self, descriptor):
        with open(self.registry.blob_data_path(descriptor["digest"]), "rb") as stream:
            return zstdchunked.read_toc(stream.read(), descriptor)


class InspectTest(InspectBase, IntegrationCase):
    # Against umoci ------------------------------------------------------

    def dump_from_commands(self, reference):
        """Build a dumptree.py-style dump of reference from ls, stat and cat."""
        listing = self.imgmount_json("ls", "-R", "-a", reference)
        entries = [entry for entry in listing if entry["name"] not in (".", "..")]
        by_inode = {}
        for entry in entries:
            by_inode.setdefault(entry["inode"], []).append(json_bytes(entry, "path"))

        dump = {}
        for entry in entries:
            path = json_bytes(entry, "path")
            dump[dumptree.escape(path)] = self.dump_fields(reference, entry, path,
                                                           by_inode[entry["inode"]])
        return dump

    def dump_fields(self, reference, entry, path, names):
        kind = DUMP_TYPES[entry["type"]]
        fields = {"type": kind, "mode": format(entry["mode"], "04o"),
                  "uid": str(entry["uid"]), "gid": str(entry["gid"])}
        if kind in ("reg", "symlink"):
            fields["size"] = str(entry["size"])
        fields["mtime"] = str(entry["mtime_sec"] * 1_000_000_000 + entry["mtime_nsec"])
        if kind in ("chr", "blk"):
            fields["rdev"] = f"{entry['rdev_major']}:{entry['rdev_minor']}"
        if kind == "symlink":
            fields["target"] = dumptree.escape(json_bytes(entry, "target"))
        if kind == "reg":
            data = self.imgmount("cat", reference, os.fsdecode(path)).stdout
            fields["sha256"] = hashlib.sha256(data).hexdigest()
        if kind != "dir":
            fields["nlink"] = str(entry["nlink"])
            if entry["nlink"] > 1:
                fields["link"] = dumptree.escape(min(names))

        info = self.imgmount_json("stat", reference, os.fsdecode(path))
        for xattr in info["xattrs"]:
            fields["xattr." + dumptree.escape(json_bytes(xattr, "name"))] = xattr["value_hex"]
        return fields

    def assert_commands_match_umoci(self, name):
        pushed = self.push_image(name, "gzip")
        reference = self.converted(name)
        rootfs = self.reference_rootfs(pushed.by_digest, name)
        self.assert_matches_reference(self.dump(rootfs, "--symlink-mtime"),
                                      self.dump_from_commands(reference),
                                      "imgmount ls/stat/cat")

    @timeout(600)
    def test_union_layers_match_umoci(self):
        self.assert_commands_match_umoci("union-replacements")

    @timeout(600)
    def test_xattrs_and_times_match_umoci(self):
        self.assert_commands_match_umoci("xattrs")
        self.assert_commands_match_umoci("timestamps")

    @timeout(600)
    def test_devices_and_modes_match_umoci(self):
        self.assert_commands_match_umoci("devices")
        self.assert_commands_match_umoci("mode-bits-and-owners")

    @timeout(600)
    def test_odd_names_and_hardlinks_match_umoci(self):
        self.assert_commands_match_umoci("odd-names-and-empty-files")
        self.assert_commands_match_umoci("hardlink-group")

    # Text output --------------------------------------------------------

    def test_long_listing_modes_match_filemode(self):
        """ls -l mode strings equal Python's stat.filemode() of umoci's files."""
        pushed = self.push_image("mode-bits-and-owners", "gzip")
        reference = self.converted("mode-bits-and-owners")
        rootfs = self.reference_rootfs(pushed.by_digest)

        for directory in ("/", "/usr/bin", "/home"):
            lines = self.imgmount("ls", "-l", reference, directory).stdout.decode().splitlines()
            names = sorted(os.listdir(rootfs + directory))
            self.assertEqual([line.split()[-1] for line in lines], names, directory)
            name_columns = {len(line) - len(line.split()[-1]) for line in lines}
            self.assertEqual(len(name_columns), 1, f"names of {directory} not aligned:\n"
                             + "\n".join(lines))
            for line in lines:
                fields = line.split()
                info = os.lstat(os.path.join(rootfs + directory, fields[-1]))
                self.assertEqual(fields[0], stat.filemode(info.st_mode), line)
                self.assertEqual(fields[2:4], [str(info.st_uid), str(info.st_gid)], line)

    def test_long_listing_shows_devices_and_links(self):
        reference = self.converted("devices")
        lines = self.imgmount("ls", "-l", reference, "/dev").stdout.decode().splitlines()
        null = [line for line in lines if line.endswith(" null")]
        self.assertEqual(len(null), 1, lines)
        self.assertRegex(null[0], r"^crw-rw-rw- +1 +0 +0 +1, +3 ")

        reference = self.converted("symlink-sizes")
        lines = self.imgmount("ls", "-l", reference, "/usr/lib").stdout.decode().splitlines()
        self.assertEqual(len(lines), 2, lines)
        # A symlink whose tar header says 0644 still lists as lrwxrwxrwx.
        self.assertRegex(lines[0], r"^lrwxrwxrwx +1 +0 +0 +8 .* header-mode-0644 -> libpq\.so$")
        self.assertRegex(lines[1], r"^lrwxrwxrwx +1 +0 +0 +13 .* libpq\.so -> libpq\.so\.5\.13$")

    def test_names_escaped_in_text(self):
        reference = self.converted("odd-names-and-empty-files")
        lines = self.imgmount("ls", reference).stdout.decode("ascii").splitlines()
        self.assertIn("new\\nline", lines)
        self.assertIn("back\\\\slash", lines)
        self.assertIn("\\xff\\xfe", lines)
        self.assertIn("dir\\x80", lines)

    # One layer ----------------------------------------------------------

    def test_layer_listing_follows_toc(self):
        reference = self.converted("union-replacements")
        manifest = self.manifest_of(reference)
        for index, descriptor in enumerate(manifest["layers"]):
            with self.subTest(layer=index):
                listing = self.imgmount_json("ls", "-R", "--layer", str(index), reference)
                self.assertEqual([entry["path"] for entry in listing],
                                 toc_paths(self.layer_toc(descriptor)))

        listing = self.imgmount_json("ls", "--layer", "1", reference)
        whiteouts = {entry["path"]: entry for entry in listing if entry["type"] == "whiteout"}
        self.assertEqual(sorted(whiteouts), ["/.wh.recreated", "/.wh.recreated-later"])
        self.assertEqual(whiteouts["/.wh.recreated"]["applies_to"], "/recreated")
        self.assertNotIn("/late/child", [entry["path"] for entry in listing],
                         "without -R only the root's own entries are listed")

        text = self.imgmount("ls", "--layer", "1", reference).stdout.decode()
        self.assertIn("/.wh.recreated  (whiteout: removes /recreated of lower layers)\n", text)

    def test_layer_listing_marks_opaque(self):
        reference = self.converted("opaque-subtree")
        listing = self.imgmount_json("ls", "--layer", "1", reference, "/a")
        self.assertEqual([(entry["path"], entry["type"]) for entry in listing],
                         [("/a/.wh..wh..opq", "opaque")])
        self.assertEqual(listing[0]["applies_to"], "/a")

        lower = self.imgmount_json("ls", "-R", "--layer", "0", reference, "/a")
        self.assertEqual([entry["path"] for entry in lower],
                         ["/a/b", "/a/b/foo", "/a/b/__pycache__", "/a/b/__pycache__/x.pyc"])

        merged = self.imgmount_json("ls", reference, "/a")
        self.assertEqual(merged, [], "the opaque marker hides a/b in the merged view")

    # stat, cat, tree ----------------------------------------------------

    def test_stat_reports_layer_and_chunks(self):
        reference = self.converted("tamper")
        descriptor = self.manifest_of(reference)["layers"][0]
        info = self.imgmount_json("stat", reference, "/victim.bin")
        chunks = zstdchunked.file_chunks(self.layer_toc(descriptor), "victim.bin")
        self.assertEqual(info["layer"], {"index": 0, "digest": descriptor["digest"]})
        self.assertEqual(info["chunks"], len(chunks))
        self.assertEqual(info["size"], 1 << 20)

        reference = self.converted("xattrs")
        text = self.imgmount("stat", reference, "/usr/bin/ping").stdout.decode()
        self.assertIn("security.capability = 0x" + catalog.CAP_NET_RAW_P.hex() + "\n", text)
        self.assertIn("mtime:   2023-11-14 22:13:20.500000000 UTC (1700000000.500000000)\n",
                      text)

        root = self.imgmount_json("stat", reference, "/")
        self.assertEqual((root["type"], root["inode"], root["layer"]), ("dir", 1, None))

    def test_stat_of_symlink_and_dereference(self):
        reference = self.converted("symlink-parents")
        link = self.imgmount_json("stat", reference, "/chain")
        self.assertEqual((link["type"], link["target"]), ("symlink", "lib"))
        target = self.imgmount_json("stat", "-L", reference, "/chain")
        self.assertEqual(target["type"], "dir")
        self.assertEqual(target["inode"], self.imgmount_json("stat", reference, "/usr/lib")["inode"])

    def test_cat_follows_symlinks_inside_image(self):
        reference = self.converted("symlink-parents")
        cases = {"/chain/via-chain.so": b"C", "/lib/via-chain.so": b"C",
                 "/pwn/evil.conf": b"E", "/up/evil2": b"E2", "/rel/via-relative": b"R"}
        for path, expected in cases.items():
            with self.subTest(path=path):
                self.assertEqual(self.imgmount("cat", reference, path).stdout, expected)

    def test_cat_large_file_in_chunks(self):
        reference = self.converted("tamper")
        for name, data in catalog.TAMPER_FILES.items():
            with self.subTest(name=name):
                self.assertEqual(self.imgmount("cat", reference, "/" + name).stdout, data)

    def test_tree_agrees_with_listing(self):
        reference = self.converted("symlink-parents")
        listing = self.imgmount_json("ls", "-R", reference)
        dirs = sum(1 for entry in listing if entry["type"] == "dir")
        files = len(listing) - dirs

        text = self.imgmount("tree", reference).stdout.decode()
        self.assertTrue(text.endswith(f"\n{dirs} directories, {files} files\n"), text)
        self.assertIn("\u251c\u2500\u2500 chain -> lib\n", text)

        document = self.imgmount_json("tree", reference)
        paths = []
        stack = [("", child) for child in document["tree"]["children"]]
        while stack:
            parent, node = stack.pop()
            path = parent + "/" + node["name"]
            paths.append(path)
            stack.extend((path, child) for child in node.get("children", []))
        self.assertEqual(sorted(paths), sorted(entry["path"] for entry in listing))
        self.assertEqual((document["directories"], document["files"]), (dirs, files))

        top = self.imgmount("tree", "-L", "1", reference).stdout.decode()
        self.assertNotIn("via-chain.so", top)

    # inspect ------------------------------------------------------------

    def test_inspect_reports_manifest_and_config(self):
        pushed = self.push_image("union-replacements", "gzip")
        reference = self.converted("union-replacements")
        manifest = self.manifest_of(reference)
        config = oci.read_config(pushed.layout, "src")
        report = self.imgmount_json("inspect", reference)

        self.assertEqual(report["manifest"]["digest"], reference.split("@")[1])
        self.assertEqual(report["config"]["digest"], manifest["config"]["digest"])
        self.assertEqual(report["platform"], {"os": config["os"], "variant": None,
                                              "architecture": config["architecture"]})
        self.assertEqual(report["env"], config["config"]["Env"])
        self.assertEqual((report["entrypoint"], report["cmd"], report["user"]),
                         (None, None, None))
        self.assertTrue(report["lazy"])
        self.assertEqual(len(report["layers"]), len(manifest["layers"]))
        for layer, descriptor in zip(report["layers"], manifest["layers"]):
            annotations = descriptor["annotations"]
            toc = self.layer_toc(descriptor)
            self.assertEqual(layer["digest"], descriptor["digest"])
            self.assertEqual(layer["media_type"], descriptor["mediaType"])
            self.assertEqual(layer["size"], descriptor["size"])
            self.assertEqual(layer["toc_digest"], annotations[zstdchunked.CHECKSUM_KEY])
            self.assertEqual(layer["entries"], len(toc_paths(toc)))
            self.assertTrue(layer["lazy"])

    def test_inspect_unconverted_image_not_lazy(self):
        pushed = self.push_image("union-replacements", "gzip")
        report = self.imgmount_json("inspect", pushed.by_digest)
        self.assertFalse(report["lazy"])
        self.assertEqual([(layer["lazy"], layer["toc_digest"], layer["entries"])
                          for layer in report["layers"]],
                         [(False, None, None)] * len(pushed.image.layer_digests))

        text = self.imgmount("inspect", pushed.by_digest).stdout.decode()
        self.assertIn("lazy:        no, convert the image", text)

        result = self.imgmount("ls", pushed.by_digest, check=False)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(b"imgmount convert", result.stderr)

    # Exit statuses ------------------------------------------------------

    def test_exit_statuses(self):
        reference = self.converted("symlink-parents")
        missing_image = f"{self.registry.host}/test/symlink-parents:no-such-tag"
        unreachable = f"127.0.0.1:{free_port()}/test/x@" + reference.split("@")[1]
        cases = [
            (("ls", "not a reference"), EXIT_USAGE),
            (("ls", "--layer", "9", reference), EXIT_USAGE),
            (("ls", "--platform", "linux", reference), EXIT_USAGE),
            (("cat", reference, "/etc"), EXIT_USAGE),
            (("stat", reference), EXIT_USAGE),
            (("ls", missing_image), EXIT_NOT_FOUND),
            (("stat", reference, "/no/such/path"), EXIT_NOT_FOUND),
            (("cat", reference, "/etc/evil.conf/x"), EXIT_NOT_FOUND),
            (("inspect", unreachable), EXIT_NETWORK),
        ]
        for args, expected in cases:
            with self.subTest(args=args):
                result = self.imgmount(*args, check=False)
                self.assertEqual(result.returncode, expected, result.stderr.decode())
                self.assertEqual(result.stdout, b"")

        help_text = self.imgmount("cat", "--help").stdout.decode()
        self.assertIn("4  verification failure", help_text)

    # Users and caches ---------------------------------------------------

    def test_other_user_gets_own_cache(self):
        reference = self.converted("symlink-parents")
        home = tempfile.mkdtemp(prefix="imgmount-home-")
        self.addCleanup(shutil.rmtree, home, ignore_errors=True)
        os.chown(home, UNUSED_UID, UNUSED_UID)
        command = ["setpriv", f"--reuid={UNUSED_UID}", f"--regid={UNUSED_UID}",
                   "--clear-groups", "env", f"HOME={home}", "XDG_CACHE_HOME=",
                   binary()]

        result = procs.run(command + ["cat", reference, "/chain/via-chain.so"],
                           COMMAND_TIMEOUT)
        self.assertEqual(result.stdout, b"C")
        cache = os.path.join(home, ".cache", "imgmount")
        info = os.stat(cache)
        self.assertEqual((info.st_uid, stat.S_IMODE(info.st_mode)), (UNUSED_UID, 0o700))
        self.assertTrue(os.listdir(os.path.join(cache, "index")),
                        "the compiled indexes were not cached")


class LazyListingTest(InspectBase, IntegrationCase):
    """What the commands fetch, from the registry's access log."""

    def layer_requests(self, manifest, since):
        """Return {layer index: [access log entries]} for blob GETs after since."""
        return {index: self.registry.blob_requests(layer["digest"], since)
                for index, layer in enumerate(manifest["layers"])}

    @timeout(600)
    def test_listing_fetches_only_tocs(self):
        reference = self.converted("lazy-large")
        manifest = self.manifest_of(reference)
        offset = self.registry.log_offset()

        result = self.imgmount("ls", "-lR", "--stats", reference)
        self.assertIn(b"blob3.bin", result.stdout)
        stats = json.loads(result.stderr.decode().strip().splitlines()[-1])
        self.assertEqual(stats["registry_requests"], 1 + len(manifest["layers"]))
        self.assertEqual(stats["chunks_from_network"], 0)

        log = self.registry.access_log(offset)
        self.assertEqual(len([entry for entry in log if "/manifests/" in entry.path]), 1)
        for index, requests in self.layer_requests(manifest, offset).items():
            toc_length = zstdchunked.parse_position(
                manifest["layers"][index]["annotations"][zstdchunked.POSITION_KEY])[1]
            self.assertEqual([entry.status for entry in requests], [206],
                             f"layer {index}: one range request for its TOC")
            self.assertLessEqual(requests[0].sent, toc_length + PER_LAYER_ALLOWANCE)

        # A second listing uses the compiled indexes in the cache.
        offset = self.registry.log_offset()
        self.imgmount("tree", reference)
        self.assertEqual(self.layer_requests(manifest, offset), {0: [], 1: []})

    @timeout(600)
    def test_cat_fetches_only_its_chunks(self):
        reference = self.converted("lazy-large")
        manifest = self.manifest_of(reference)
        self.imgmount("ls", reference)

        offset = self.registry.log_offset()
        result = self.imgmount("cat", "--stats", reference, "/small.txt")
        self.assertEqual(result.stdout, b"just this file\n")
        stats = json.loads(result.stderr.decode().strip().splitlines()[-1])
        self.assertEqual((stats["chunks_from_network"], stats["bytes_from_network"]), (1, 15))
        requests = self.layer_requests(manifest, offset)
        self.assertEqual(requests[0], [], "the big layer was read")

        offset = self.registry.log_offset()
        data = self.imgmount("cat", reference, "/data/blob2.bin").stdout
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         hashlib.sha256(catalog.random_bytes(8 << 20, 2)).hexdigest())
        sent = sum(entry.sent for entry in self.layer_requests(manifest, offset)[0])
        self.assertGreaterEqual(sent, 8 << 20)
        self.assertLess(sent, (8 << 20) + (1 << 20), "more than blob2.bin was fetched")


class TamperedCatTest(InspectBase, IntegrationCase):
    """cat of a file with a corrupted chunk stops before that chunk."""

    def tamper_chunk(self, reference, index, change_frame):
        """Rewrite chunk index of victim.bin in the registry's storage.

        The original bytes are put back in the test's cleanup. Returns the
        chunk as zstdchunked.file_chunks() describes it.
        """
        descriptor = self.manifest_of(reference)["layers"][0]
        data_path = self.registry.blob_data_path(descriptor["digest"])
        with open(data_path, "rb") as stream:
            blob = stream.read()
        chunks = zstdchunked.file_chunks(zstdchunked.read_toc(blob, descriptor), "victim.bin")
        target = chunks[index]
        frame = blob[target["offset"]:target["end"]]
        changed = change_frame(frame)
        self.assertEqual(len(changed), len(frame))

        def write(data):
            with open(data_path, "r+b") as stream:
                stream.seek(target["offset"])
                stream.write(data)

        write(changed)
        self.addCleanup(write, frame)
        return target

    def assert_cat_stops_before(self, reference, target, message):
        victim = catalog.TAMPER_FILES["victim.bin"]
        for attempt in ("first", "again with the cache"):
            with self.subTest(attempt=attempt):
                result = self.imgmount("cat", reference, "/victim.bin", check=False)
                self.assertEqual(result.returncode, EXIT_VERIFY, result.stderr.decode())
                self.assertEqual(len(result.stdout), target["chunk_offset"])
                self.assertEqual(result.stdout, victim[:target["chunk_offset"]])
                self.assertIn(message, result.stderr)

        cached = [name for _, _, names in os.walk(self.path("cache"))
                  for name in names if target["digest"].split(":")[1] in name]
        self.assertEqual(cached, [], "the corrupt chunk reached the cache")
        bystander = self.imgmount("cat", reference, "/bystander.bin").stdout
        self.assertEqual(bystander, catalog.TAMPER_FILES["bystander.bin"])

    def test_digest_mismatch_exits_4(self):
        reference = self.converted("tamper")
        target = self.tamper_chunk(reference, 1, zstdchunked.corrupt_frame_content)
        self.assert_cat_stops_before(reference, target, b"digest mismatch")

    def test_undecodable_chunk_exits_4(self):
        def flip_middle_byte(frame):
            changed = bytearray(frame)
            changed[len(frame) // 2] ^= 0xFF
            return bytes(changed)

        reference = self.converted("tamper")
        target = self.tamper_chunk(reference, 2, flip_middle_byte)
        self.assert_cat_stops_before(reference, target, b"failed verification")


if __name__ == "__main__":
    unittest.main()
