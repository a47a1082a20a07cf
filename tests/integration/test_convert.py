# SPDX-License-Identifier: Apache-2.0
"""`imgmount convert` output, checked with tools that know nothing of imgmount.

The converted image must be an ordinary image to every other runtime. Each
layer decompresses with the stock zstd decoder to exactly the source tar
stream, so its SHA-256 is the diff ID in the unchanged config. skopeo and
umoci unpack it to the same tree as the source. Its zstd:chunked
metadata must match containers/storage's layout: TOC position and checksum
annotations, and a footer ending in the "GNUlInUx" magic.
"""

import hashlib
import json
import unittest

from images import catalog
from lib import oci, zstdchunked
from lib.case import IntegrationCase, timeout

# Images whose converted form is unpacked and compared with the source;
# together they have every entry type, xattrs, hardlinks and long names.
ROUND_TRIP_IMAGES = ("union-replacements", "xattrs", "long-names",
                     "hardlink-alias-replaced", "devices", "timestamps",
                     "odd-names-and-empty-files", "empty-layers",
                     "size-encodings")


class ConvertTest(IntegrationCase):
    def converted_layout(self, pushed, label):
        """Convert pushed, copy the result out with skopeo; return its layout."""
        converted = self.convert_image(pushed)
        layout = self.path(label)
        oci.pull_layout(converted, layout, "ref")
        return converted, layout

    def dump_unpack(self, layout, label):
        oci.decompress_zstd_layers(layout, "ref")
        rootfs = oci.umoci_unpack(layout, "ref", self.path(label + "-bundle"))
        return self.dump(rootfs, "--symlink-mtime")

    @timeout(900)
    def test_converted_layers_decompress_to_diff_ids(self):
        for name in ROUND_TRIP_IMAGES:
            for compression in ("gzip", "zstd", "tar"):
                with self.subTest(image=name, compression=compression):
                    pushed = self.push_image(name, compression)
                    _, layout = self.converted_layout(
                        pushed, f"{name}-{compression}")
                    config = oci.read_config(layout, "ref")
                    manifest = oci.read_manifest(layout, "ref")

                    self.assertEqual(manifest["config"]["digest"],
                                     pushed.image.config_digest,
                                     "the config blob must not change")
                    self.assertEqual(config["rootfs"]["diff_ids"],
                                     pushed.image.diff_ids)
                    self.assertEqual(
                        [layer["mediaType"] for layer in manifest["layers"]],
                        [oci.MEDIA_LAYER["zstd"]] * len(pushed.image.diff_ids))

                    decompressed = oci.decompress_zstd_layers(layout, "ref")
                    self.assertEqual(decompressed, pushed.image.diff_ids)

    @timeout(900)
    def test_converted_image_unpacks_like_source(self):
        for name in ROUND_TRIP_IMAGES:
            for compression in ("gzip", "zstd", "tar"):
                with self.subTest(image=name, compression=compression):
                    pushed = self.push_image(name, compression)
                    source = self.dump(self.reference_rootfs(
                        pushed.by_digest, f"source-{name}-{compression}"),
                        "--symlink-mtime")
                    started = self.unpack_started_ns
                    _, layout = self.converted_layout(
                        pushed, f"converted-{name}-{compression}")
                    converted = self.dump_unpack(
                        layout, f"converted-{name}-{compression}")
                    self.assertDumpsEqual(
                        self.mask_unpack_times(source, started),
                        self.mask_unpack_times(converted, started),
                        "source", "converted")

    @staticmethod
    def mask_unpack_times(tree, started_ns):
        """Replace mtimes umoci set to the unpack time (no entry gave one)."""
        masked = {}
        for path, fields in tree.items():
            fields = dict(fields)
            if fields["type"] == "dir" and int(fields["mtime"]) >= started_ns - 10**9:
                fields["mtime"] = "unpack-time"
            masked[path] = fields
        return masked

    def test_toc_annotations_and_footer(self):
        pushed = self.push_image("tamper", "gzip")
        _, layout = self.converted_layout(pushed, "tamper")
        manifest = oci.read_manifest(layout, "ref")
        descriptor = manifest["layers"][0]
        blob = oci.read_blob(layout, descriptor["digest"])

        toc = zstdchunked.read_toc(blob, descriptor)
        self.assertEqual(toc["version"], 1)
        files = {entry["name"]: entry for entry in toc["entries"]
                 if entry["type"] == "reg"}
        self.assertEqual(sorted(files), ["bystander.bin", "small.txt",
                                         "victim.bin"])
        self.assertEqual(files["small.txt"]["size"], 15)
        self.assertEqual(files["small.txt"]["digest"],
                         "sha256:" + hashlib.sha256(b"small and fine\n").hexdigest())

        footer = zstdchunked.read_footer(blob)
        offset, length, uncompressed = zstdchunked.parse_position(
            descriptor["annotations"][zstdchunked.POSITION_KEY])
        self.assertEqual(footer[:4], (offset, length, uncompressed, 1))

    def test_chunks_cover_file_and_match_digests(self):
        pushed = self.push_image("tamper", "zstd")
        _, layout = self.converted_layout(pushed, "tamper")
        descriptor = oci.read_manifest(layout, "ref")["layers"][0]
        blob = oci.read_blob(layout, descriptor["digest"])
        toc = zstdchunked.read_toc(blob, descriptor)

        for name, data in catalog.TAMPER_FILES.items():
            chunks = zstdchunked.file_chunks(toc, name)
            position = 0
            for chunk in chunks:
                self.assertEqual(chunk["chunk_offset"], position, name)
                frame = blob[chunk["offset"]:chunk["end"]]
                content = zstdchunked.zstd_decompress(frame)
                self.assertEqual(len(content), chunk["chunk_size"], name)
                self.assertEqual(
                    "sha256:" + hashlib.sha256(content).hexdigest(),
                    chunk["digest"], f"{name} chunk at {position}")
                self.assertEqual(content, data[position:position + len(content)])
                position += len(content)
            self.assertEqual(position, len(data), name)

    def test_convert_prints_pushed_manifest_digest(self):
        pushed = self.push_image("whiteout-one-path", "gzip")
        converted = self.convert_image(pushed)
        repo, digest = converted.split("/", 1)[1].split("@")
        status, _, body = self.registry.get(
            f"/v2/{repo}/manifests/{digest}",
            {"Accept": oci.MEDIA_MANIFEST})
        self.assertEqual(status, 200)
        self.assertEqual("sha256:" + hashlib.sha256(body).hexdigest(), digest)
        self.assertEqual(json.loads(body)["mediaType"], oci.MEDIA_MANIFEST)


if __name__ == "__main__":
    unittest.main()
