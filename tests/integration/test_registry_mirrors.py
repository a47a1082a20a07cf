# SPDX-License-Identifier: Apache-2.0
"""Mirrors from a certs.d/HOST/hosts.toml are used first and skipped while down.

Two authproxy.py instances (tests/integration/authproxy.py, --no-auth) run
on 127.0.0.1 in front of the class's docker-registry: one is the registry
named in the image reference ("origin"), the other its mirror. The test
writes CERTS/127.0.0.1:ORIGIN_PORT/hosts.toml and mounts with --certs-dir,
then counts the blob GETs each proxy served. registry/mirror.c skips a
failed mirror for 1 s, doubling per failure up to 8 s.
"""

import hashlib
import os
import time

from images import catalog
from lib.case import IntegrationCase, timeout
from test_token_auth import AuthProxy

FILE_SIZE = 8 << 20
BACKOFF_MAX_SECONDS = 8
OUTAGE_SECONDS = 10
# Reads of PIECE_LENGTH bytes CHUNK_STRIDE apart: the converter's chunks are
# 256 KiB, and the stride leaves one untouched chunk between reads so that
# kernel read-ahead does not fetch the next piece early.
CHUNK_STRIDE = 512 * 1024
PIECE_LENGTH = 4096


def expected_sha256(index):
    return hashlib.sha256(catalog.random_bytes(FILE_SIZE, index)).hexdigest()


class RegistryMirrorTest(IntegrationCase):
    def converted_path(self):
        """REPO@DIGEST of lazy-large, converted once per class."""
        if not hasattr(RegistryMirrorTest, "_path"):
            pushed = self.push_image("lazy-large", "gzip")
            RegistryMirrorTest._path = self.convert_image(pushed).split("/", 1)[1]
        return RegistryMirrorTest._path

    def start_proxy(self, *options):
        proxy = AuthProxy(self.registry.port, "--no-auth", *options).start()
        self.addCleanup(proxy.stop)
        return proxy

    def write_hosts_toml(self, origin, text):
        directory = self.path("certs.d", origin.host)
        os.makedirs(directory)
        with open(os.path.join(directory, "hosts.toml"), "w") as stream:
            stream.write(text)
        return self.path("certs.d")

    def read_sha256(self, daemon, index):
        result = self.probe(daemon.mountpoint,
                            [dict(op="sha256", path=f"/data/blob{index}.bin")])[0]
        self.assertNotIn("errno", result, f"reading blob{index}.bin failed")
        return result["sha256"]

    def assert_reads(self, daemon, index):
        self.assertEqual(self.read_sha256(daemon, index), expected_sha256(index))

    def test_pull_mirror_serves_digest_reads(self):
        origin = self.start_proxy()
        mirror = self.start_proxy()
        certs = self.write_hosts_toml(origin, f"""
server = "http://{origin.host}"

# Blobs and manifests by digest only.
[host."http://{mirror.host}"]
  capabilities = ["pull"]
""")
        daemon = self.mount_image(f"{origin.host}/{self.converted_path()}",
                                  extra_args=["--certs-dir", certs])
        self.assert_reads(daemon, 0)

        # The reference is a digest, so the manifest needs only "pull" too.
        self.assertGreater(mirror.stats()["blob_gets"], 0)
        self.assertEqual(origin.stats()["blob_gets"], 0)
        self.assertEqual(origin.stats()["proxied"], 0)
        stats = daemon.stats()
        self.assertEqual(stats["verify_failures"], 0)
        self.assertEqual(stats["fuse_read_errors"], 0)

    @timeout(300)
    def test_mirror_outage_falls_back_then_returns(self):
        origin = self.start_proxy()
        mirror = self.start_proxy()
        mirror_port = mirror.port
        certs = self.write_hosts_toml(origin, f"""
[host."http://{mirror.host}"]
  capabilities = ["pull", "resolve"]
""")
        daemon = self.mount_image(f"{origin.host}/{self.converted_path()}",
                                  extra_args=["--certs-dir", certs])
        pieces = self.pieces()
        self.assert_reads_piece(daemon, next(pieces))
        self.assertGreater(mirror.stats()["blob_gets"], 0)
        self.assertEqual(origin.stats()["blob_gets"], 0)

        # The mirror's port refuses connections for OUTAGE_SECONDS while
        # reads of new chunks go on; each must succeed through the origin.
        mirror.stop()
        outage_start = time.monotonic()
        while time.monotonic() - outage_start < OUTAGE_SECONDS:
            self.assert_reads_piece(daemon, next(pieces))
            time.sleep(0.5)
        self.assertGreater(origin.stats()["blob_gets"], 0)
        self.assertEqual(daemon.stats()["fuse_read_errors"], 0)

        mirror = AuthProxy(self.registry.port, "--no-auth",
                           "--port", str(mirror_port)).start()
        self.addCleanup(mirror.stop)

        # Within the longest back-off the mirror is tried again and used.
        deadline = time.monotonic() + BACKOFF_MAX_SECONDS + 10
        while mirror.stats()["blob_gets"] == 0 and time.monotonic() < deadline:
            self.assert_reads_piece(daemon, next(pieces))
            time.sleep(0.5)
        self.assertGreater(mirror.stats()["blob_gets"], 0,
                           "the mirror was not used again after it came back")

        # Once it works again, it is the first choice, not the origin.
        mirror_before = mirror.stats()["blob_gets"]
        origin_before = origin.stats()["blob_gets"]
        self.assert_reads_piece(daemon, next(pieces))
        self.assertGreater(mirror.stats()["blob_gets"], mirror_before)
        self.assertEqual(origin.stats()["blob_gets"], origin_before)

        stats = daemon.stats()
        self.assertEqual(stats["fuse_read_errors"], 0)
        self.assertEqual(stats["verify_failures"], 0)
        self.assertIn("works again", daemon.log())

    @staticmethod
    def pieces():
        """Yield (file index, offset) one chunk apart, so that every read
        needs a chunk that no earlier read fetched."""
        for offset in range(0, FILE_SIZE, CHUNK_STRIDE):
            for index in range(4):
                yield index, offset

    def assert_reads_piece(self, daemon, piece):
        index, offset = piece
        result = self.probe(daemon.mountpoint, [dict(
            op="read", path=f"/data/blob{index}.bin", offset=offset, length=PIECE_LENGTH)])[0]
        self.assertNotIn("errno", result, f"reading blob{index}.bin at {offset} failed")
        expected = catalog.random_bytes(FILE_SIZE, index)[offset:offset + PIECE_LENGTH]
        self.assertEqual(bytes.fromhex(result["hex"]), expected)
