# SPDX-License-Identifier: Apache-2.0
"""Lazy fetching: a read fetches the file's chunks and nothing else.

The lazy-large image has a 32 MiB layer of random files and a small file in
another layer. The registry's access log and `imgmount stats` show what a
mount and a read cost. The limits below allow the TOCs, the footers, the
chunks read and a stated allowance, which stays far below the layer size.
"""

import json
import unittest

from images import catalog
from lib import oci, zstdchunked
from lib.case import IntegrationCase

# Bytes a mount may fetch per layer beyond its TOC: the footer and any
# fixed-size tail read used to find it.
PER_LAYER_ALLOWANCE = 128 * 1024
# Bytes one small read of a large file may fetch: the chunk under it plus
# coalescing and read-ahead (the design aims at about 1 MiB per request).
PARTIAL_READ_LIMIT = 2560 * 1024


class LazyFetchTest(IntegrationCase):
    def converted_manifest(self, converted):
        repo, digest = converted.split("/", 1)[1].split("@")
        status, _, body = self.registry.get(f"/v2/{repo}/manifests/{digest}",
                                            {"Accept": oci.MEDIA_MANIFEST})
        self.assertEqual(status, 200)
        return json.loads(body)

    def layer_bytes(self, manifest, since):
        """Return {layer index: bytes sent} for GETs logged after since."""
        sent = {}
        for index, layer in enumerate(manifest["layers"]):
            requests = self.registry.blob_requests(layer["digest"], since)
            for entry in requests:
                self.assertEqual(entry.status, 206,
                                 f"layer {index} was fetched without a "
                                 f"range: {entry}")
            sent[index] = sum(entry.sent for entry in requests)
        return sent

    def toc_lengths(self, manifest):
        return [zstdchunked.parse_position(
            layer["annotations"][zstdchunked.POSITION_KEY])[1]
            for layer in manifest["layers"]]

    def test_small_read_fetches_only_metadata_and_its_chunk(self):
        pushed = self.push_image("lazy-large", "gzip")
        converted = self.convert_image(pushed)
        manifest = self.converted_manifest(converted)
        big_layer_size = manifest["layers"][0]["size"]
        self.assertGreater(big_layer_size, 32 << 20)

        offset = self.registry.log_offset()
        daemon = self.mount_image(converted)
        self.assertEqual(self.read_text(daemon.mountpoint, "/small.txt"),
                         "just this file\n")

        stats = daemon.stats()
        self.assertEqual(stats["chunks_from_network"], 1)
        self.assertEqual(stats["bytes_from_network"], 15)
        self.assertEqual(stats["chunks_from_cache"], 0)

        sent = self.layer_bytes(manifest, offset)
        tocs = self.toc_lengths(manifest)
        self.assertLessEqual(sent[0], tocs[0] + PER_LAYER_ALLOWANCE,
                             "the mount read file data of the big layer")
        self.assertLessEqual(sent[1], tocs[1] + PER_LAYER_ALLOWANCE + 4096)
        self.assertLess(stats["registry_bytes"], 1 << 20)

        manifest_gets = [entry for entry in self.registry.access_log(offset)
                         if entry.method == "GET" and "/manifests/" in entry.path]
        self.assertGreaterEqual(len(manifest_gets), 1)

    def test_partial_read_of_large_file_stays_partial(self):
        pushed = self.push_image("lazy-large", "gzip")
        converted = self.convert_image(pushed)
        manifest = self.converted_manifest(converted)
        daemon = self.mount_image(converted)

        offset = self.registry.log_offset()
        start = 3 << 20
        result = self.probe_one(daemon.mountpoint, "read", "/data/blob2.bin",
                                offset=start, length=4096)
        expected = catalog.random_bytes(8 << 20, 2)[start:start + 4096]
        self.assertEqual(bytes.fromhex(result["hex"]), expected)

        sent = self.layer_bytes(manifest, offset)
        self.assertGreater(sent[0], 0)
        self.assertLessEqual(sent[0], PARTIAL_READ_LIMIT)
        self.assertEqual(sent[1], 0)


if __name__ == "__main__":
    unittest.main()
