# SPDX-License-Identifier: Apache-2.0
"""The chunk cache is shared: by later mounts and by other images.

Chunks are keyed by the SHA-256 of their uncompressed bytes, so a second
mount of an image, or a mount of another image whose files have the same
contents, reads those files without fetching a chunk.
"""

import hashlib
import unittest

from images import catalog
from lib.case import IntegrationCase


class CacheSharingTest(IntegrationCase):
    def test_second_mount_reads_everything_from_cache(self):
        pushed = self.push_image("union-replacements", "zstd")
        converted = self.convert_image(pushed)
        cache = self.path("shared-cache")

        first = self.mount_image(converted, cache_dir=cache)
        first_dump = self.dump(first.mountpoint)
        self.assertGreater(first.stats()["chunks_from_network"], 0)
        first.stop()

        offset = self.registry.log_offset()
        second = self.mount_image(converted, cache_dir=cache)
        self.assertDumpsEqual(first_dump, self.dump(second.mountpoint),
                              "first mount", "second mount")
        stats = second.stats()
        self.assertEqual(stats["chunks_from_network"], 0)
        self.assertGreater(stats["chunks_from_cache"], 0)

        # Only metadata may be fetched again: no range request may carry
        # file data, which the TOC-sized responses below would exceed.
        toc_limit = 64 * 1024
        for entry in self.registry.access_log(offset):
            if "/blobs/" in entry.path and entry.method == "GET":
                self.assertLessEqual(entry.sent, toc_limit, entry)

    def test_other_image_reuses_shared_chunks(self):
        image_a = self.convert_image(self.push_image("shared-a", "gzip"))
        image_b = self.convert_image(self.push_image("shared-b", "tar"))
        cache = self.path("shared-cache")

        mount_a = self.mount_image(image_a, cache_dir=cache)
        for path, data in catalog.SHARED_FILES.items():
            result = self.probe_one(mount_a.mountpoint, "sha256", "/" + path)
            self.assertEqual(result["sha256"], hashlib.sha256(data).hexdigest())

        mount_b = self.mount_image(image_b, cache_dir=cache)
        for path, data in catalog.SHARED_FILES.items():
            copy = "/copy/" + path.split("/")[-1]
            result = self.probe_one(mount_b.mountpoint, "sha256", copy)
            self.assertEqual(result["sha256"], hashlib.sha256(data).hexdigest())
        stats = mount_b.stats()
        self.assertEqual(stats["chunks_from_network"], 0)
        # Every FUSE read counts the whole chunks it used, so one chunk
        # read in several requests counts more than once.
        shared_bytes = sum(len(data) for data in catalog.SHARED_FILES.values())
        self.assertGreaterEqual(stats["bytes_from_cache"], shared_bytes)

        self.assertEqual(self.read_text(mount_b.mountpoint, "/only-b.txt"), "b")
        self.assertEqual(mount_b.stats()["chunks_from_network"], 1)


if __name__ == "__main__":
    unittest.main()
