# SPDX-License-Identifier: Apache-2.0
"""Prefetch on a file's first miss.

When a read misses, the daemon queues the rest of that file (up to 2 MiB
compressed) and the files of its directory with the same extension (up to
128 KiB each, 512 KiB per directory). The image below has a directory of
modules with one odd file out, and a file of six chunks. The checks wait
for the background fetches through `imgmount stats`, then read the files
and assert from the counters that they come from the cache.
"""

import time
import unittest

from images import catalog
from lib.case import IntegrationCase

# How long the background fetches of one miss may take on a loaded machine.
PREFETCH_DEADLINE_SECONDS = 30

MODULE_SIZE = 20 * 1024
MODULES = [f"pkg/mod{index}.pyc" for index in range(6)]
# 6 chunks of 256 KiB of random bytes, so that the rest of the file after
# its first read is below the 2 MiB bound.
WHOLE_SIZE = 1536 * 1024
WHOLE_CHUNKS = 6


def module_bytes(index):
    return catalog.random_bytes(MODULE_SIZE, 500 + index)


@catalog.image("miss-prefetch", compressions=("gzip",))
def miss_prefetch():
    """A directory of six small modules of one kind, a text file, a module
    too big to prefetch and a program without extension. Another directory
    has a file of 6 chunks."""
    layer = catalog.tar()
    layer.dir("pkg/")
    for index, path in enumerate(MODULES):
        layer.reg(path, module_bytes(index))
    layer.reg("pkg/readme.txt", catalog.random_bytes(MODULE_SIZE, 600))
    layer.reg("pkg/huge.pyc", catalog.random_bytes(1 << 20, 601))
    layer.reg("pkg/tool", catalog.random_bytes(MODULE_SIZE, 602))
    layer.dir("lib/")
    layer.reg("lib/whole.bin", catalog.random_bytes(WHOLE_SIZE, 603))
    return [catalog.layer(layer)]


class MissPrefetchTest(IntegrationCase):
    def mount_converted(self):
        pushed = self.push_image("miss-prefetch", "gzip")
        return self.mount_image(self.convert_image(pushed))

    def read_bytes(self, root, path, length):
        result = self.probe_one(root, "read", path, offset=0, length=length)
        return bytes.fromhex(result["hex"])

    def wait_for_network_chunks(self, daemon, expected):
        """Poll the daemon's counters until chunks_from_network reaches
        expected; return the counters."""
        deadline = time.monotonic() + PREFETCH_DEADLINE_SECONDS
        stats = daemon.stats()
        while stats["chunks_from_network"] < expected and time.monotonic() < deadline:
            time.sleep(0.05)
            stats = daemon.stats()
        self.assertEqual(stats["chunks_from_network"], expected,
                         f"background fetches did not reach {expected} chunks "
                         f"within {PREFETCH_DEADLINE_SECONDS} s: {stats}")
        return stats

    def test_miss_prefetches_same_extension(self):
        daemon = self.mount_converted()
        root = daemon.mountpoint

        self.assertEqual(self.read_bytes(root, "/" + MODULES[0], MODULE_SIZE),
                         module_bytes(0))
        before = self.wait_for_network_chunks(daemon, len(MODULES))

        for index, path in enumerate(MODULES[1:], start=1):
            self.assertEqual(self.read_bytes(root, "/" + path, MODULE_SIZE),
                             module_bytes(index))
        after = daemon.stats()
        self.assertEqual(after["chunks_from_network"], len(MODULES))
        self.assertEqual(after["registry_requests"], before["registry_requests"])
        self.assertEqual(after["fuse_read_errors"], 0)

        # Another extension, no extension, or more than 128 KiB compressed:
        # none of them was prefetched.
        self.read_bytes(root, "/pkg/readme.txt", MODULE_SIZE)
        self.assertEqual(daemon.stats()["chunks_from_network"], len(MODULES) + 1)
        self.read_bytes(root, "/pkg/tool", MODULE_SIZE)
        self.assertEqual(daemon.stats()["chunks_from_network"], len(MODULES) + 2)
        self.read_bytes(root, "/pkg/huge.pyc", 4096)
        self.assertGreater(daemon.stats()["chunks_from_network"], len(MODULES) + 2)

    def test_miss_prefetches_rest_of_file(self):
        daemon = self.mount_converted()
        root = daemon.mountpoint
        expected = catalog.random_bytes(WHOLE_SIZE, 603)

        self.assertEqual(self.read_bytes(root, "/lib/whole.bin", 4096), expected[:4096])
        before = self.wait_for_network_chunks(daemon, WHOLE_CHUNKS)

        self.assertEqual(self.read_bytes(root, "/lib/whole.bin", WHOLE_SIZE), expected)
        after = daemon.stats()
        self.assertEqual(after["chunks_from_network"], WHOLE_CHUNKS)
        self.assertEqual(after["registry_requests"], before["registry_requests"])


if __name__ == "__main__":
    unittest.main()
