# SPDX-License-Identifier: Apache-2.0
"""Blob redirect targets are reused until they expire, then renewed once.

tests/integration/authproxy.py runs on 127.0.0.1 in front of the class's
docker-registry with bearer tokens and --redirect-blobs: every blob GET
to the registry gets 307 to a second listener (another origin), whose
URLs expire after URL_TTL seconds (--storage-url-ttl) with 403. The
proxy counts the redirects it sent ("redirects", one per registry round
trip) and the expired URLs it refused. Reads use the lazy-large image
(four 8 MiB random files in one layer) and compare bytes with the catalog.
"""

import json
import os
import sys
import time

from images import catalog
from lib import procs
from lib.case import IntegrationCase, timeout
from test_token_auth import AuthProxy

FILE_SIZE = 8 << 20
CHUNK_SIZE = 256 << 10
PIECE_LENGTH = 4096
URL_TTL = 3
CONCURRENT_READS = 64

# Reads (path, offset) pieces from THREADS threads at once and prints, per
# piece, the hex bytes or the errno name. Run as a child like every access
# to a mount.
PARALLEL_READER = """
import concurrent.futures, errno, json, os, sys
root, length = sys.argv[1], int(sys.argv[2])
pieces = json.load(sys.stdin)
def read(piece):
    path, offset = piece
    try:
        fd = os.open(root + path, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset).hex()
        finally:
            os.close(fd)
    except OSError as error:
        return errno.errorcode.get(error.errno, str(error.errno))
with concurrent.futures.ThreadPoolExecutor(len(pieces)) as pool:
    print(json.dumps(list(pool.map(read, pieces))))
"""


class RedirectReuseTest(IntegrationCase):
    def converted_path(self):
        if not hasattr(RedirectReuseTest, "_path"):
            pushed = self.push_image("lazy-large", "gzip")
            RedirectReuseTest._path = self.convert_image(pushed).split("/", 1)[1]
        return RedirectReuseTest._path

    def read_pieces(self, daemon, pieces):
        """Read pieces ((file index, offset) pairs) at once; check every byte."""
        paths = [[f"/data/blob{index}.bin", offset] for index, offset in pieces]
        result = procs.run([sys.executable, "-c", PARALLEL_READER, daemon.mountpoint,
                            str(PIECE_LENGTH)], timeout=120,
                           input=json.dumps(paths).encode())
        outputs = json.loads(result.stdout)
        for (index, offset), output in zip(pieces, outputs):
            expected = catalog.random_bytes(FILE_SIZE, index)[offset:offset + PIECE_LENGTH]
            self.assertEqual(output, expected.hex(),
                             f"blob{index}.bin at {offset}: {output[:20]}")

    @timeout(240)
    def test_expired_target_renewed_for_concurrent_reads(self):
        proxy = AuthProxy(self.registry.port, "--redirect-blobs",
                          "--storage-url-ttl", str(URL_TTL)).start()
        self.addCleanup(proxy.stop)
        daemon = self.mount_image(f"{proxy.host}/{self.converted_path()}")

        # Sequential reads of one layer share one redirect target.
        self.read_pieces(daemon, [(0, 0)])
        after_first = proxy.stats()["redirects"]
        for step in range(1, 11):
            self.read_pieces(daemon, [(0, step * 2 * CHUNK_SIZE)])
        self.assertEqual(proxy.stats()["redirects"], after_first,
                         "reads of a cached redirect target went to the registry")

        # Once the target has expired, 64 reads at once renew it with few
        # registry round trips, and none of them fails.
        time.sleep(URL_TTL + 1)
        before = proxy.stats()
        pieces = [(1 + i % 3, (i // 3) * CHUNK_SIZE) for i in range(CONCURRENT_READS)]
        self.read_pieces(daemon, pieces)
        after = proxy.stats()

        self.assertGreater(after["expired_urls"], before["expired_urls"])
        self.assertGreaterEqual(after["redirects"] - before["redirects"], 1)
        self.assertLessEqual(after["redirects"] - before["redirects"], 4)
        self.assertEqual(after["auth_leaks"], 0)

        stats = daemon.stats()
        self.assertEqual(stats["fuse_read_errors"], 0)
        self.assertEqual(stats["verify_failures"], 0)
        self.assertGreater(stats["chunks_from_network"], CONCURRENT_READS // 2)
