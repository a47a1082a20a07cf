# SPDX-License-Identifier: Apache-2.0
"""A file of 8 GiB: its size only fits a PAX record, and reads reach its end.

The ustar size field can store at most 8 GiB - 1, so the image stores the size
in a PAX "size" record over a ustar size of 0; a reader that ignores the
record misparses every later entry. umoci is not used as a reference here
because unpacking would write 8 GiB to disk; the expected values are
asserted instead. Marked slow: making, converting and pushing the image
takes minutes.
"""

import unittest

from images import catalog
from lib.case import IntegrationCase, slow, timeout


class BigFileTest(IntegrationCase):
    @slow
    @timeout(2400)
    def test_eight_gib_file_size_and_last_byte(self):
        pushed = self.push_image("big-file", "gzip")
        converted = self.convert_image(pushed, timeout=1800)
        daemon = self.mount_image(converted)
        root = daemon.mountpoint

        self.assertEqual(self.lstat(root, "/big.bin")["size"],
                         catalog.BIG_FILE_SIZE)
        last = self.probe_one(root, "read", "/big.bin",
                              offset=catalog.BIG_FILE_SIZE - 1, length=10)
        self.assertEqual(last, {"hex": b"z".hex(), "length": 1})
        middle = self.probe_one(root, "read", "/big.bin",
                                offset=catalog.BIG_FILE_SIZE // 2, length=4096)
        self.assertEqual(middle, {"hex": bytes(4096).hex(), "length": 4096})
        self.assertEqual(self.read_text(root, "/after.txt"), "after")


if __name__ == "__main__":
    unittest.main()
