# SPDX-License-Identifier: Apache-2.0
"""A corrupted chunk in the registry fails reads of its file, and only those.

The tests rewrite one chunk frame of victim.bin inside the registry's blob
storage, so the registry serves the changed bytes. In the first test the
frame still decodes, because its zstd checksum is recomputed, so only the
SHA-256 check of the chunk can catch it. In the second test the zstd
decoder itself rejects the frame. Either way reads of victim.bin fail with EIO, other files
read correctly, and the cache never stores the bad chunk. Each test class
has its own registry, so the tampering never reaches another test.
"""

import hashlib
import json
import os
import unittest

from images import catalog
from lib import oci, zstdchunked
from lib.case import IntegrationCase

VICTIM = "victim.bin"


class TamperBase:
    def tamper(self, change_frame):
        """Convert the tamper image, rewrite victim.bin's second chunk.

        Returns (converted reference, the tampered chunk's digest).
        """
        pushed = self.push_image("tamper", "tar")
        converted = self.convert_image(pushed)
        repo, digest = converted.split("/", 1)[1].split("@")
        status, _, body = self.registry.get(f"/v2/{repo}/manifests/{digest}",
                                            {"Accept": oci.MEDIA_MANIFEST})
        self.assertEqual(status, 200)
        layer = json.loads(body)["layers"][0]

        data_path = self.registry.blob_data_path(layer["digest"])
        with open(data_path, "rb") as stream:
            blob = stream.read()
        chunks = zstdchunked.file_chunks(zstdchunked.read_toc(blob, layer), VICTIM)
        self.assertGreaterEqual(len(chunks), 2, "victim.bin needs two chunks")
        target = chunks[1]

        frame = blob[target["offset"]:target["end"]]
        changed = change_frame(frame)
        self.assertEqual(len(changed), len(frame))
        with open(data_path, "r+b") as stream:
            stream.seek(target["offset"])
            stream.write(changed)
        return converted, target

    def assert_other_files_fine(self, root):
        for name, data in catalog.TAMPER_FILES.items():
            if name == VICTIM:
                continue
            result = self.probe_one(root, "sha256", "/" + name)
            self.assertEqual(result.get("sha256"),
                             hashlib.sha256(data).hexdigest(), name)

    def assert_victim_fails(self, root, target):
        self.assertEqual(self.probe_one(root, "sha256", "/" + VICTIM),
                         {"errno": "EIO"})
        inside = self.probe_one(root, "read", "/" + VICTIM,
                                offset=target["chunk_offset"] + 10, length=100)
        self.assertEqual(inside, {"errno": "EIO"})

    def assert_not_cached(self, cache_dir, target):
        hex_digest = target["digest"].split(":")[1]
        stored = [os.path.join(directory, name)
                  for directory, _, names in os.walk(cache_dir)
                  for name in names if hex_digest in name]
        self.assertEqual(stored, [], "the corrupt chunk reached the cache")


class ChunkDigestMismatchTest(TamperBase, IntegrationCase):
    def test_digest_mismatch_gives_eio_and_caches_nothing(self):
        converted, target = self.tamper(zstdchunked.corrupt_frame_content)
        daemon = self.mount_image(converted)
        root = daemon.mountpoint

        self.assert_victim_fails(root, target)
        self.assert_other_files_fine(root)
        self.assertGreaterEqual(daemon.stats()["verify_failures"], 1)
        self.assert_not_cached(daemon.cache_dir, target)

        # A second attempt fetches and fails again instead of serving a
        # remembered bad chunk.
        self.assert_victim_fails(root, target)
        self.assertGreaterEqual(daemon.stats()["verify_failures"], 2)
        self.assertIn("digest mismatch", daemon.log())
        self.assertIn(target["digest"], daemon.log())


class CorruptFrameTest(TamperBase, IntegrationCase):
    def test_undecodable_frame_gives_eio_and_caches_nothing(self):
        def flip_middle_byte(frame):
            changed = bytearray(frame)
            changed[len(frame) // 2] ^= 0xFF
            return bytes(changed)

        converted, target = self.tamper(flip_middle_byte)
        daemon = self.mount_image(converted)
        root = daemon.mountpoint

        self.assert_victim_fails(root, target)
        self.assert_other_files_fine(root)
        self.assert_not_cached(daemon.cache_dir, target)


if __name__ == "__main__":
    unittest.main()
