# SPDX-License-Identifier: Apache-2.0
"""A mount that reads for longer than a token lives keeps working.

tests/integration/authproxy.py runs on 127.0.0.1 in front of the class's
docker-registry and issues bearer tokens that expire after TOKEN_SECONDS;
every blob GET needs a valid one. The client renews a token when a tenth
of its lifetime is left (registry/auth.c), and concurrent requests that
find it stale share one token request. Reads use the lazy-large image
(four 8 MiB random files in one layer), each read a chunk not yet cached,
and compare the bytes with the catalog's.
"""

import hashlib
import json
import sys
import time

from images import catalog
from lib import procs
from lib.case import IntegrationCase, timeout
from test_token_auth import AuthProxy

FILE_SIZE = 8 << 20
CHUNK_SIZE = 256 << 10
PIECE_LENGTH = 4096
TOKEN_SECONDS = 2
READ_SECONDS = 10
READ_INTERVAL = 0.1
CONCURRENT_READS = 32

# Reads the (path, offset) pieces given as JSON on stdin, LENGTH bytes each
# and one thread per piece, starting piece i at i * INTERVAL seconds. It
# prints, per piece, the SHA-256 hex of the bytes read or the errno name.
PACED_READER = """
import concurrent.futures, errno, hashlib, json, os, sys, time
root, length, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pieces = json.load(sys.stdin)
start = time.monotonic()
def read(indexed):
    index, (path, offset) = indexed
    delay = start + index * interval - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    try:
        fd = os.open(root + path, os.O_RDONLY)
        try:
            return hashlib.sha256(os.pread(fd, length, offset)).hexdigest()
        finally:
            os.close(fd)
    except OSError as error:
        return errno.errorcode.get(error.errno, str(error.errno))
with concurrent.futures.ThreadPoolExecutor(len(pieces)) as pool:
    print(json.dumps(list(pool.map(read, enumerate(pieces)))))
"""


class TokenExpiryTest(IntegrationCase):
    def converted_path(self):
        if not hasattr(TokenExpiryTest, "_path"):
            pushed = self.push_image("lazy-large", "gzip")
            TokenExpiryTest._path = self.convert_image(pushed).split("/", 1)[1]
        return TokenExpiryTest._path

    def mount_with_short_tokens(self):
        proxy = AuthProxy(self.registry.port, "--token-expiry", str(TOKEN_SECONDS)).start()
        self.addCleanup(proxy.stop)
        daemon = self.mount_image(f"{proxy.host}/{self.converted_path()}")
        return proxy, daemon

    def read_pieces(self, daemon, pieces, interval):
        """Read (file index, offset) pieces, piece i after i * interval s; check every byte."""
        paths = [[f"/data/blob{index}.bin", offset] for index, offset in pieces]
        result = procs.run([sys.executable, "-c", PACED_READER, daemon.mountpoint,
                            str(PIECE_LENGTH), str(interval)],
                           timeout=READ_SECONDS + 120, input=json.dumps(paths).encode())
        outputs = json.loads(result.stdout)
        for (index, offset), output in zip(pieces, outputs):
            data = catalog.random_bytes(FILE_SIZE, index)[offset:offset + PIECE_LENGTH]
            if output != hashlib.sha256(data).hexdigest():
                self.fail(f"blob{index}.bin at {offset}: {output}; daemon log:\n"
                          f"{daemon.log()[-3000:]}")

    @timeout(240)
    def test_continuous_reads_across_expiries(self):
        proxy, daemon = self.mount_with_short_tokens()
        before = proxy.stats()

        # One read of a new chunk every READ_INTERVAL for READ_SECONDS,
        # the files interleaved so that no read finds its chunk prefetched
        # by the one before.
        count = int(READ_SECONDS / READ_INTERVAL)
        pieces = [(i % 4, (i // 4) * CHUNK_SIZE) for i in range(count)]
        start = time.monotonic()
        self.read_pieces(daemon, pieces, READ_INTERVAL)
        elapsed = time.monotonic() - start
        after = proxy.stats()

        self.assertGreaterEqual(elapsed, READ_SECONDS - 1)
        stats = daemon.stats()
        self.assertEqual(stats["fuse_read_errors"], 0)
        self.assertEqual(stats["verify_failures"], 0)
        # The fetcher may fetch neighbouring chunks ahead, so there are fewer
        # GETs than reads, but still several per token lifetime.
        self.assertGreaterEqual(after["blob_gets"] - before["blob_gets"],
                                2 * READ_SECONDS // TOKEN_SECONDS)

        # A token is renewed after 0.9 * TOKEN_SECONDS of use, so at most
        # about one request per lifetime (plus one at each end), never one
        # per read. A lifetime in which prefetched chunks served every read
        # needs no token, so the lower bound only shows renewals happened.
        tokens = after["token_requests"] - before["token_requests"]
        lifetimes = elapsed / (0.9 * TOKEN_SECONDS)
        message = f"{tokens} token requests in {elapsed:.1f} s"
        self.assertGreaterEqual(tokens, 2, message)
        self.assertLessEqual(tokens, int(lifetimes) + 2, message)

    @timeout(240)
    def test_token_without_expires_in_lasts_60_s(self):
        # The token protocol's default lifetime is 60 s, so the client
        # renews at 54 s (a tenth before the end). The proxy's tokens stay
        # valid for 63 s, so the renewal must come before any 401.
        proxy = AuthProxy(self.registry.port, "--omit-expires-in",
                          "--token-expiry", "63").start()
        self.addCleanup(proxy.stop)
        daemon = self.mount_image(f"{proxy.host}/{self.converted_path()}")
        self.read_pieces(daemon, [(0, 0)], 0)
        start = time.monotonic()
        before = proxy.stats()

        # Half way through the lifetime the token is still used.
        time.sleep(30)
        self.read_pieces(daemon, [(1, 0)], 0)
        middle = proxy.stats()
        self.assertEqual(middle["token_requests"], before["token_requests"])
        self.assertGreater(middle["blob_gets"], before["blob_gets"])

        # Past 54 s it is renewed once, before it expires.
        time.sleep(max(0.0, 56 - (time.monotonic() - start)))
        self.read_pieces(daemon, [(2, 0)], 0)
        after = proxy.stats()
        self.assertEqual(after["token_requests"] - before["token_requests"], 1)
        self.assertEqual(after["tokens_rejected"], before["tokens_rejected"])
        self.assertEqual(daemon.stats()["fuse_read_errors"], 0)

    @timeout(180)
    def test_concurrent_reads_at_expiry_share_token(self):
        proxy, daemon = self.mount_with_short_tokens()
        self.read_pieces(daemon, [(0, 0)], 0)

        # All reads find the token expired at once.
        time.sleep(TOKEN_SECONDS + 1)
        before = proxy.stats()
        pieces = [(1 + i % 3, (i // 3) * CHUNK_SIZE) for i in range(CONCURRENT_READS)]
        self.read_pieces(daemon, pieces, 0)
        after = proxy.stats()

        self.assertEqual(after["token_requests"] - before["token_requests"], 1)
        self.assertGreater(after["blob_gets"] - before["blob_gets"], 1)
        self.assertEqual(after["tokens_rejected"], before["tokens_rejected"])
        self.assertEqual(daemon.stats()["fuse_read_errors"], 0)
