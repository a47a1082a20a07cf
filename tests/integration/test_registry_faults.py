# SPDX-License-Identifier: Apache-2.0
"""Mounts keep serving correct bytes through a registry that misbehaves.

tests/integration/authproxy.py runs on 127.0.0.1 in front of the class's
docker-registry and injects one fault at a time into blob GETs (see its
/_faults endpoint): error statuses with and without Retry-After, bodies
cut short by a reset or a FIN, Range headers ignored, and a server that
stops responding. Each test reads files of the lazy-large image (four
8 MiB random files) and compares their SHA-256 with the catalog's bytes,
then checks the proxy's counters and `imgmount stats`.

The client sends a request at most 4 times and never
retries past the mount's --read-timeout (registry/http.c), so the bounds
below follow from those two numbers.
"""

import hashlib
import json
import os
import sys
import time
import unittest
import urllib.request

from images import catalog
from lib import procs
from lib.case import IntegrationCase, timeout
from test_token_auth import AuthProxy
from test_token_expiry import PACED_READER

FILE_SIZE = 8 << 20
MAX_ATTEMPTS = 4
PENALTY_SECONDS = 2
PENALTY_READERS = 16
PENALTY_READ_INTERVAL = 0.1
PENALTY_PIECE_LENGTH = 4096


def expected_sha256(index):
    return hashlib.sha256(catalog.random_bytes(FILE_SIZE, index)).hexdigest()


class RegistryFaultTest(IntegrationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._converted = None

    def converted(self):
        """Push and convert lazy-large once per class."""
        if RegistryFaultTest._converted is None:
            pushed = self.push_image("lazy-large", "gzip")
            RegistryFaultTest._converted = self.convert_image(pushed)
        return RegistryFaultTest._converted

    def start_proxy(self, *options):
        proxy = AuthProxy(self.registry.port, "--no-auth", *options).start()
        self.addCleanup(proxy.stop)
        return proxy

    def set_faults(self, proxy, **faults):
        request = urllib.request.Request(f"http://{proxy.host}/_faults",
                                         data=json.dumps(faults).encode(),
                                         method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def mount_through(self, proxy, *extra_args):
        repo_and_digest = self.converted().split("/", 1)[1]
        return self.mount_image(f"{proxy.host}/{repo_and_digest}",
                                extra_args=extra_args)

    def read_sha256(self, daemon, index, timeout_seconds=120):
        """Return (sha256 hex or None, errno name or None, seconds)."""
        start = time.monotonic()
        result = self.probe(daemon.mountpoint,
                            [dict(op="sha256", path=f"/data/blob{index}.bin")],
                            timeout=timeout_seconds)[0]
        return result.get("sha256"), result.get("errno"), time.monotonic() - start

    def assert_reads_correctly(self, daemon, index):
        digest, error, _ = self.read_sha256(daemon, index)
        self.assertIsNone(error, f"reading blob{index}.bin failed")
        self.assertEqual(digest, expected_sha256(index))

    def assert_nothing_wrong_cached(self, daemon):
        stats = daemon.stats()
        self.assertEqual(stats["verify_failures"], 0)
        self.assertEqual(stats["cache_corrupt"], 0)
        return stats

    def test_range_answered_with_whole_blob(self):
        proxy = self.start_proxy("--ignore-range")
        daemon = self.mount_through(proxy)
        self.assert_reads_correctly(daemon, 0)
        stats = self.assert_nothing_wrong_cached(daemon)
        self.assertGreater(stats["chunks_from_network"], 0)
        self.assertEqual(proxy.stats()["multi_range_requests"], 0)

        # A second mount on the same cache reads every chunk from disk,
        # so what the first one stored was right.
        again = self.mount_image(daemon.image, cache_dir=daemon.cache_dir)
        self.assert_reads_correctly(again, 0)
        self.assertEqual(again.stats()["chunks_from_network"], 0)

    def test_whole_blob_for_first_range_only(self):
        # The first GET of each layer with a Range past byte 0 gets 200 and
        # the whole blob. That GET reads the TOC at the end of the blob, and
        # lazy-large has two layers. Every later GET gets its 206.
        proxy = self.start_proxy()
        self.set_faults(proxy, whole_first_range=True)
        daemon = self.mount_through(proxy)
        self.assert_reads_correctly(daemon, 2)

        counters = proxy.stats()
        self.assertEqual(counters["whole_responses"], 2)
        self.assertGreater(counters["blob_gets"], 1)
        self.assertEqual(counters["multi_range_requests"], 0)
        stats = self.assert_nothing_wrong_cached(daemon)
        self.assertGreater(stats["chunks_from_network"], 0)

        again = self.mount_image(daemon.image, cache_dir=daemon.cache_dir)
        self.assert_reads_correctly(again, 2)
        self.assertEqual(again.stats()["chunks_from_network"], 0)

    def test_partial_content_without_content_type(self):
        proxy = self.start_proxy()
        self.set_faults(proxy, drop_content_type=True)
        daemon = self.mount_through(proxy)
        self.assert_reads_correctly(daemon, 3)
        self.assertGreater(proxy.stats()["untyped_responses"], 0)
        self.assert_nothing_wrong_cached(daemon)

    def test_only_single_ranges_sent(self):
        proxy = self.start_proxy()
        daemon = self.mount_through(proxy)
        self.assert_reads_correctly(daemon, 1)
        counters = proxy.stats()
        self.assertGreater(counters["blob_gets"], 0)
        self.assertEqual(counters["multi_range_requests"], 0)

    @timeout(180)
    def test_429_waits_for_retry_after(self):
        proxy = self.start_proxy()
        daemon = self.mount_through(proxy)
        before = daemon.stats()["registry_retries"]

        self.set_faults(proxy, status=429, status_count=2, retry_after=3)
        start = time.monotonic()
        self.assert_reads_correctly(daemon, 0)
        elapsed = time.monotonic() - start

        self.assertGreaterEqual(elapsed, 6, "two Retry-After: 3 waits were not honoured")
        self.assertEqual(proxy.stats()["status_faults"], 2)
        self.assertGreaterEqual(daemon.stats()["registry_retries"] - before, 2)

    @timeout(180)
    def test_429_without_retry_after_fails_after_bound(self):
        proxy = self.start_proxy()
        daemon = self.mount_through(proxy)
        before = daemon.stats()

        self.set_faults(proxy, status=429, status_count=1000, retry_after=None)
        _, error, elapsed = self.read_sha256(daemon, 2)
        self.assertEqual(error, "EIO")
        faults = proxy.stats()["status_faults"]
        self.set_faults(proxy, status_count=0)

        # One FUSE read fails after MAX_ATTEMPTS requests; the kernel may
        # issue a few reads (read-ahead), each bounded the same way.
        self.assertGreaterEqual(faults, MAX_ATTEMPTS)
        self.assertLessEqual(faults, 8 * MAX_ATTEMPTS)
        self.assertLess(elapsed, 60)
        after = daemon.stats()
        self.assertGreaterEqual(after["registry_retries"] - before["registry_retries"],
                                MAX_ATTEMPTS - 1)
        self.assertGreater(after["fuse_read_errors"], before["fuse_read_errors"])

        # Once the registry recovers, the same mount reads the file.
        self.assert_reads_correctly(daemon, 2)

    @timeout(240)
    def test_429_with_retry_after_fails_after_bound(self):
        proxy = self.start_proxy()
        daemon = self.mount_through(proxy)
        before = daemon.stats()

        self.set_faults(proxy, status=429, status_count=1000, retry_after=3)
        _, error, elapsed = self.read_sha256(daemon, 1, timeout_seconds=180)
        faults = proxy.stats()["status_faults"]
        self.set_faults(proxy, status_count=0)

        # One FUSE read sends MAX_ATTEMPTS requests and waits Retry-After
        # (3 s) between them, then fails; read-ahead may add a few reads
        # bounded the same way.
        self.assertEqual(error, "EIO")
        self.assertGreaterEqual(elapsed, 3 * (MAX_ATTEMPTS - 1))
        self.assertGreaterEqual(faults, MAX_ATTEMPTS)
        self.assertLessEqual(faults, 8 * MAX_ATTEMPTS)
        after = daemon.stats()
        self.assertGreater(after["fuse_read_errors"], before["fuse_read_errors"])
        self.assertEqual(after["verify_failures"], 0)

        self.assert_reads_correctly(daemon, 1)

    @timeout(180)
    def test_429_window_holds_back_all_readers(self):
        proxy = self.start_proxy()
        daemon = self.mount_through(proxy)
        before = daemon.stats()

        # From the first blob GET on, the proxy responds 429 with
        # Retry-After: 2 for 2 s. Reader i starts at i * 0.1 s, so 16
        # readers start inside the window, each at a chunk 2 MiB from any
        # other (well past the fetcher's read-ahead).
        self.set_faults(proxy, penalty_window=PENALTY_SECONDS, retry_after=PENALTY_SECONDS)
        pieces = [(i % 4, (i // 4) * (2 << 20)) for i in range(PENALTY_READERS)]
        paths = [[f"/data/blob{index}.bin", offset] for index, offset in pieces]
        start = time.monotonic()
        result = procs.run([sys.executable, "-c", PACED_READER, daemon.mountpoint,
                            str(PENALTY_PIECE_LENGTH), str(PENALTY_READ_INTERVAL)],
                           timeout=120, input=json.dumps(paths).encode())
        elapsed = time.monotonic() - start
        outputs = json.loads(result.stdout)

        for (index, offset), output in zip(pieces, outputs):
            data = catalog.random_bytes(FILE_SIZE, index)[offset:offset + PENALTY_PIECE_LENGTH]
            self.assertEqual(output, hashlib.sha256(data).hexdigest(),
                             f"blob{index}.bin at {offset}")

        # Only requests already in flight when the first 429 arrived reach
        # the proxy inside the window: not one per reader, let alone one
        # per reader per retry.
        counters = proxy.stats()
        self.assertGreaterEqual(counters["penalty_faults"], 1)
        self.assertLessEqual(counters["penalty_faults"], 3,
                             f"{counters['penalty_faults']} requests inside the window")
        self.assertGreaterEqual(elapsed, PENALTY_SECONDS)
        after = daemon.stats()
        self.assertGreaterEqual(after["registry_retries"] - before["registry_retries"], 1)
        self.assertEqual(after["fuse_read_errors"], before["fuse_read_errors"])
        self.assertEqual(after["verify_failures"], 0)

    def test_503_burst_is_retried(self):
        proxy = self.start_proxy()
        daemon = self.mount_through(proxy)
        before = daemon.stats()["registry_retries"]

        self.set_faults(proxy, status=503, status_count=3, retry_after=None)
        self.assert_reads_correctly(daemon, 3)
        self.assertEqual(proxy.stats()["status_faults"], 3)
        self.assertGreaterEqual(daemon.stats()["registry_retries"] - before, 3)
        self.assert_nothing_wrong_cached(daemon)

    def check_cut_body(self, mode):
        proxy = self.start_proxy()
        daemon = self.mount_through(proxy)
        before = daemon.stats()["registry_retries"]

        # Each blob GET of a chunk is about 256 KiB; the first three lose
        # their connection after 100 KiB.
        self.set_faults(proxy, cut_count=3, cut_after=100 * 1024, cut_mode=mode)
        self.assert_reads_correctly(daemon, 1)
        self.assertEqual(proxy.stats()["cuts"], 3)
        stats = self.assert_nothing_wrong_cached(daemon)
        self.assertGreaterEqual(stats["registry_retries"] - before, 3)

        again = self.mount_image(daemon.image, cache_dir=daemon.cache_dir)
        self.assert_reads_correctly(again, 1)
        self.assertEqual(again.stats()["chunks_from_network"], 0)

    def test_connection_reset_mid_body_is_retried(self):
        self.check_cut_body("reset")

    def test_short_body_then_fin_is_retried(self):
        self.check_cut_body("fin")

    @timeout(240)
    def test_stalled_registry_fails_read_by_deadline(self):
        read_timeout = 4
        proxy = self.start_proxy()
        daemon = self.mount_through(proxy, "--read-timeout", str(read_timeout))
        before = daemon.stats()

        self.set_faults(proxy, stall=True)
        _, error, elapsed = self.read_sha256(daemon, 0, timeout_seconds=180)
        self.assertEqual(error, "EIO")
        self.assertGreater(proxy.stats()["stalled"], 0)
        # The kernel may send a few reads one after another, each with its
        # own deadline, so allow several deadlines but far less than a hang.
        self.assertLess(elapsed, 8 * read_timeout + 10)

        self.set_faults(proxy, stall=False)
        self.assert_reads_correctly(daemon, 0)
        after = daemon.stats()
        self.assertGreater(after["fuse_read_errors"], before["fuse_read_errors"])
        self.assertEqual(after["verify_failures"], 0)


if __name__ == "__main__":
    unittest.main()
