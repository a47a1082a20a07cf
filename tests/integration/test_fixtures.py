# SPDX-License-Identifier: Apache-2.0
"""Checks of the test fixtures themselves, with no imgmount involved.

The mount tests trust three things: the tar writer produces the encodings
it claims, the umoci reference unpack is deterministic and the same for
every compression variant, and a dump comparison reports differences. These
tests show each with real tools (GNU tar, Python's tarfile, skopeo, umoci,
docker-registry).
"""

import io
import subprocess
import tarfile
import unittest

from images import catalog
from images.tarwriter import TarBuilder, pax_record
from lib import dumptree, oci
from lib.case import IntegrationCase, timeout


def tar_members(data):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        return {member.name: member for member in archive.getmembers()}


class TarWriterTest(unittest.TestCase):
    """The hand-made encodings read back as intended with tarfile and GNU tar."""

    def test_pax_record_length_counts_itself(self):
        self.assertEqual(pax_record("path", "a"), b"9 path=a\n")
        # 99 bytes of body plus 3 digits: the length crosses 100 exactly.
        record = pax_record("k", "v" * 93)
        self.assertEqual(int(record.split(b" ")[0]), len(record))

    def test_size_encodings_read_back(self):
        data = b"".join(catalog.IMAGES["size-encodings"].layers()[0].pieces())
        members = tar_members(data)
        self.assertEqual(members["base256.bin"].size, 3000)
        self.assertEqual(members["pax-size.bin"].size, 5000)
        self.assertEqual(members["after.txt"].size, 5)
        # The ustar size field of the PAX-sized entry really is 0.
        header_offset = members["pax-size.bin"].offset_data - 512
        self.assertEqual(data[header_offset + 124:header_offset + 136],
                         b"00000000000\0")
        # The base-256 field starts with the 0x80 marker byte.
        base256_offset = members["base256.bin"].offset_data - 512
        self.assertEqual(data[base256_offset + 124], 0x80)

    def test_long_names_read_back(self):
        data = b"".join(catalog.IMAGES["long-names"].layers()[0].pieces())
        members = tar_members(data)
        names = catalog.LONG_NAMES
        self.assertEqual(len(names["exact512"]), 512)
        self.assertEqual(len(names["prefix"]), 230)
        self.assertEqual(len(names["symlink_target"]), 204)
        for name in (names["gnu"], names["prefix"], names["exact512"],
                     "pax/overridden-name.txt", "long-target",
                     "hardlink-to-long"):
            self.assertIn(name, members)
        self.assertEqual(members["long-target"].linkname, names["symlink_target"])
        self.assertEqual(members["hardlink-to-long"].linkname, names["gnu"])

    def test_ustar_prefix_is_used(self):
        data = b"".join(catalog.IMAGES["long-names"].layers()[0].pieces())
        name = catalog.LONG_NAMES["prefix"].encode()
        prefix, rest = name.rsplit(b"/", 1)
        index = data.index(rest + b"\0")
        header = index - (index % 512)
        self.assertEqual(data[header + 345:header + 345 + len(prefix)], prefix)
        self.assertEqual(data[header + 257:header + 263], b"ustar\0")

    def test_gnu_tar_lists_every_catalog_layer(self):
        for name, spec in catalog.IMAGES.items():
            if spec.slow:
                continue
            for index, layer in enumerate(spec.layers()):
                data = b"".join(layer.pieces())
                if not data.strip(b"\0"):
                    continue
                with self.subTest(image=name, layer=index):
                    result = subprocess.run(["tar", "-tf", "-"], input=data,
                                            capture_output=True, timeout=60)
                    self.assertEqual(result.returncode, 0,
                                     result.stderr.decode(errors="replace"))

    def test_negative_and_fractional_mtime_records(self):
        builder = TarBuilder()
        builder.reg("old", "x", mtime=-2146608000)
        builder.reg("fraction", "x", mtime="1644325033.182744228")
        members = tar_members(builder.bytes())
        self.assertEqual(members["old"].pax_headers["mtime"], "-2146608000")
        self.assertEqual(members["fraction"].pax_headers["mtime"],
                         "1644325033.182744228")


class DumpTreeTest(unittest.TestCase):
    def test_escape_round_trips_any_bytes(self):
        raw = bytes(range(256))
        self.assertEqual(dumptree.unescape(dumptree.escape(raw)), raw)
        self.assertEqual(dumptree.escape(b"a b=c\\d\xe9"),
                         "a\\x20b\\x3dc\\x5cd\\xe9")

    def test_diff_names_each_difference(self):
        left = {"/a": {"type": "reg", "mode": "0644"},
                "/gone": {"type": "dir"}}
        right = {"/a": {"type": "reg", "mode": "0755"},
                 "/new": {"type": "fifo"}}
        text = dumptree.diff_dumps(left, right, "umoci", "mount")
        self.assertEqual(text.splitlines(), [
            "/a: mode: umoci=0644 mount=0755",
            "only in umoci: /gone type=dir",
            "only in mount: /new type=fifo",
        ])


class ReferenceUnpackTest(IntegrationCase):
    """umoci unpacks of the catalog images are deterministic and comparable."""

    def unpack(self, name, compression, label):
        pushed = self.push_image(name, compression)
        rootfs = self.reference_rootfs(pushed.by_digest, label)
        return self.dump(rootfs, "--symlink-mtime")

    @timeout(900)
    def test_every_variant_unpacks_to_one_tree(self):
        for name, spec in catalog.IMAGES.items():
            if spec.slow or name in ("bare-whiteout", "sparse-gnu"):
                continue  # umoci rejects these two (see test_layer_rules)
            dumps = {}
            for compression in spec.compressions:
                with self.subTest(image=name, compression=compression):
                    dumps[compression] = self.unpack(name, compression,
                                                     f"{name}-{compression}")
            if len(dumps) < 2:
                continue
            first = dumps.pop(spec.compressions[0])
            for compression, other in dumps.items():
                with self.subTest(image=name, compared=compression):
                    self.assert_matches_reference_dumps(first, other)

    def assert_matches_reference_dumps(self, first, other):
        # Implied directories carry the unpack time, so they differ between
        # two unpacks; every other field must be identical.
        def without_fresh_mtimes(tree):
            limit = self.unpack_started_ns - 600 * 1_000_000_000
            result = {}
            for path, fields in tree.items():
                fields = dict(fields)
                if fields["type"] == "dir" and int(fields["mtime"]) >= limit:
                    fields["mtime"] = "unpack-time"
                result[path] = fields
            return result

        self.assertDumpsEqual(without_fresh_mtimes(first),
                              without_fresh_mtimes(other), "first", "second")

    def test_repeated_unpack_gives_identical_dump(self):
        first = self.unpack("union-replacements", "gzip", "first")
        second = self.unpack("union-replacements", "gzip", "second")
        self.assertGreater(len(first), 10)
        self.assert_matches_reference_dumps(first, second)

    def test_different_image_shows_readable_diff(self):
        original = self.unpack("whiteout-one-path", "gzip", "original")
        changed = self.unpack("opaque-near-miss", "gzip", "changed")
        text = dumptree.diff_dumps(original, changed, "one", "two")
        self.assertIn("only in one: /sub/test type=reg", text)
        self.assertIn("only in two: /d1/keep type=reg", text)

    def test_xattrs_and_devices_reach_the_reference(self):
        tree = self.unpack("xattrs", "tar", "xattrs")
        ping = tree["/usr/bin/ping"]
        self.assertEqual(ping["xattr.security.capability"],
                         catalog.CAP_NET_RAW_P.hex())
        self.assertEqual(ping["xattr.user.note"], b"a=b,c".hex())
        self.assertEqual(ping["mtime"], "1700000000500000000")
        devices = self.unpack("devices", "gzip", "devices")
        self.assertEqual(devices["/dev/wide"]["rdev"], "300:1048575")
        self.assertEqual(devices["/dev/wh"]["rdev"], "0:0")


class RegistryFixtureTest(IntegrationCase):
    def test_access_log_counts_range_bytes(self):
        pushed = self.push_image("tamper", "tar")
        layer = pushed.image.layer_digests[0]
        offset = self.registry.log_offset()
        status, headers, body = self.registry.get(
            f"/v2/{pushed.repo}/blobs/{layer}", {"Range": "bytes=100-1123"})
        self.assertEqual(status, 206)
        self.assertEqual(len(body), 1024)
        requests = self.registry.blob_requests(layer, since=offset)
        self.assertEqual(len(requests), 1)
        self.assertEqual(requests[0].status, 206)
        self.assertEqual(self.registry.blob_bytes_sent(layer, since=offset), 1024)

    def test_blob_data_path_holds_the_blob(self):
        pushed = self.push_image("tamper", "gzip")
        layer = pushed.image.layer_digests[0]
        self.assertEqual(oci.sha256_file(self.registry.blob_data_path(layer)),
                         layer)


if __name__ == "__main__":
    unittest.main()
