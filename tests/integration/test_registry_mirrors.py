# SPDX-License-Identifier: Apache-2.0
"""Mirrors from a certs.d/HOST/hosts.toml are used first and skipped while down.

Two authproxy.py instances (tests/integration/authproxy.py, --no-auth) run
on 127.0.0.1 in front of the class's docker-registry: one is the registry
named in the image reference ("origin"), the other its mirror. The test
writes CERTS/127.0.0.1:ORIGIN_PORT/hosts.toml and mounts with --certs-dir,
then counts the blob GETs each proxy served. registry/mirror.c skips a
failed mirror for 1 s, doubling per failure up to 8 s.
"""

import base64
import hashlib
import json
import os
import time
import urllib.request

from images import catalog
from lib import mount
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

    def write_authfile(self, entries):
        """Write an auth.json with an "auths" entry per (host, user, password)."""
        auths = {host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
                 for host, user, password in entries}
        path = self.path("auth.json")
        with open(path, "w") as stream:
            json.dump({"auths": auths}, stream)
        os.chmod(path, 0o600)
        return path

    def mirror_with_auth(self):
        """An origin and a mirror that each want their own user on /token."""
        origin = self.start_proxy_with_auth("origin-user", "origin-password")
        mirror = self.start_proxy_with_auth("mirror-user", "mirror-password")
        certs = self.write_hosts_toml(origin, f"""
[host."http://{mirror.host}"]
  capabilities = ["pull"]
""")
        return origin, mirror, certs

    def start_proxy_with_auth(self, user, password):
        proxy = AuthProxy(self.registry.port, "--user", user, "--password", password).start()
        self.addCleanup(proxy.stop)
        return proxy

    def test_mirror_uses_its_own_credentials(self):
        origin, mirror, certs = self.mirror_with_auth()
        authfile = self.write_authfile([(origin.host, "origin-user", "origin-password"),
                                        (mirror.host, "mirror-user", "mirror-password")])
        daemon = self.mount_image(f"{origin.host}/{self.converted_path()}",
                                  extra_args=["--certs-dir", certs, "--authfile", authfile])
        self.assert_reads(daemon, 0)

        mirror_stats = mirror.stats()
        self.assertGreater(mirror_stats["blob_gets"], 0)
        self.assertGreaterEqual(mirror_stats["token_requests"], 1)
        self.assertEqual(mirror_stats["credentials_rejected"], 0)
        self.assertEqual(origin.stats()["blob_gets"], 0)
        self.assertEqual(daemon.stats()["fuse_read_errors"], 0)
        self.assertNotIn("mirror-password", daemon.log())

    def test_mirror_never_gets_origin_credentials(self):
        # Only the origin has an entry, so the mirror is asked anonymously,
        # refuses, and every read falls back to the origin.
        origin, mirror, certs = self.mirror_with_auth()
        authfile = self.write_authfile([(origin.host, "origin-user", "origin-password")])
        daemon = self.mount_image(f"{origin.host}/{self.converted_path()}",
                                  extra_args=["--certs-dir", certs, "--authfile", authfile])
        self.assert_reads(daemon, 1)

        mirror_stats = mirror.stats()
        self.assertGreaterEqual(mirror_stats["token_requests"], 1)
        self.assertEqual(mirror_stats["credentials_rejected"], 0,
                         "the origin's credentials were sent to the mirror")
        self.assertEqual(mirror_stats["blob_gets"], 0)
        self.assertGreater(origin.stats()["blob_gets"], 0)
        self.assertEqual(daemon.stats()["fuse_read_errors"], 0)

    def convert_through(self, origin, certs, dest_tag):
        """Convert lazy-large, named through origin, with --certs-dir certs;
        return (new manifest digest, convert's stderr)."""
        pushed = self.push_image("lazy-large", "gzip")
        self.converted_path()
        result = mount.run_imgmount(
            ["convert", "--certs-dir", certs, f"{origin.host}/{pushed.repo}:{pushed.tag}",
             f"{self.registry.host}/{pushed.repo}:{dest_tag}"], timeout=600)
        return result.stdout.decode().strip(), result.stderr.decode(errors="replace")

    def test_convert_downloads_from_mirror(self):
        origin = self.start_proxy()
        mirror = self.start_proxy()
        certs = self.write_hosts_toml(origin, f"""
[host."http://{mirror.host}"]
  capabilities = ["pull", "resolve"]
""")
        digest, _ = self.convert_through(origin, certs, "via-mirror")

        # Conversion is deterministic, so the result equals the class's.
        self.assertEqual(digest, self.converted_path().split("@", 1)[1])
        self.assertGreater(mirror.stats()["blob_gets"], 0)
        self.assertEqual(origin.stats()["blob_gets"], 0)
        self.assertEqual(origin.stats()["proxied"], 0)

    def test_convert_resumes_at_origin_after_mirror_cut(self):
        origin = self.start_proxy()
        mirror = self.start_proxy()
        certs = self.write_hosts_toml(origin, f"""
[host."http://{mirror.host}"]
  capabilities = ["pull", "resolve"]
""")
        # Every blob GET from the mirror ends after 1 MiB with a FIN. The
        # layer of four 8 MiB random files is far larger than that.
        request = urllib.request.Request(
            f"http://{mirror.host}/_faults", method="POST",
            data=json.dumps({"cut_count": 100, "cut_after": 1 << 20,
                             "cut_mode": "fin"}).encode())
        urllib.request.urlopen(request, timeout=30).close()

        digest, stderr = self.convert_through(origin, certs, "via-cut-mirror")
        self.assertEqual(digest, self.converted_path().split("@", 1)[1])
        self.assertGreater(mirror.stats()["cuts"], 0)
        self.assertGreater(origin.stats()["blob_gets"], 0)
        self.assertRegex(stderr, r"resuming the download of blob sha256:[0-9a-f]{64} "
                                 r"at byte [1-9][0-9]* from \"" + origin.host)

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
