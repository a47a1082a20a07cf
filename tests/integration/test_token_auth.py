# SPDX-License-Identifier: Apache-2.0
"""A mount keeps reading from a registry that demands bearer tokens.

tests/integration/authproxy.py runs in front of the test registry: every
/v2/ request needs a token from its /token endpoint, tokens expire after
TOKEN_SECONDS, and blob requests are redirected to a second listener (another
origin) that rejects any Authorization header. The mount is made by digest
through the proxy, its contents are read only after the first token has
expired, and the tree must still equal the umoci unpack of the source image.
"""

import json
import os
import subprocess
import sys
import time
import unittest
import urllib.request

from lib import mount, procs
from lib.case import IntegrationCase

TOKEN_SECONDS = 2
PROXY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "authproxy.py")


class AuthProxy:
    """authproxy.py as a child process on 127.0.0.1, stopped by PID."""

    def __init__(self, upstream_port, *options):
        self.command = [sys.executable, PROXY,
                        "--upstream", f"http://127.0.0.1:{upstream_port}",
                        *options]
        self.process = None
        self.port = None

    def start(self, timeout=30):
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        procs.record_process(self.process.pid)
        deadline = time.monotonic() + timeout
        line = self.process.stdout.readline()
        if not line.strip().isdigit() or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"authproxy did not print its port: {line!r}")
        self.port = int(line)
        return self

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def stats(self):
        with urllib.request.urlopen(f"http://{self.host}/_stats",
                                    timeout=30) as response:
            return json.load(response)

    def stop(self):
        if self.process is not None:
            procs.stop_process(self.process)
            self.process.stdout.close()
            self.process = None


class TokenAuthTest(IntegrationCase):
    def test_mount_renews_expired_tokens(self):
        pushed = self.push_image("union-replacements", "gzip")
        converted = self.convert_image(pushed)
        reference_dump = self.dump(self.reference_rootfs(pushed.by_digest))
        repo_and_digest = converted.split("/", 1)[1]

        # Storage URLs expire with the token, so that reads after the
        # expiry go back to the registry instead of reusing a redirect.
        proxy = AuthProxy(self.registry.port,
                          "--token-expiry", str(TOKEN_SECONDS),
                          "--redirect-blobs",
                          "--storage-url-ttl", str(TOKEN_SECONDS)).start()
        self.addCleanup(proxy.stop)

        daemon = self.mount_image(f"{proxy.host}/{repo_and_digest}")
        tokens_at_mount = proxy.stats()["token_requests"]
        self.assertGreaterEqual(tokens_at_mount, 1)

        # Every chunk is fetched after the token of the mount has expired.
        time.sleep(TOKEN_SECONDS + 1)
        self.assert_matches_reference(reference_dump, self.dump(daemon.mountpoint))

        proxy_stats = proxy.stats()
        self.assertGreater(proxy_stats["token_requests"], tokens_at_mount)
        self.assertGreater(proxy_stats["redirects"], 0)
        self.assertEqual(proxy_stats["auth_leaks"], 0)

        stats = daemon.stats()
        self.assertGreaterEqual(stats["token_requests"], 2)
        self.assertGreater(stats["chunks_from_network"], 0)
        self.assertEqual(stats["verify_failures"], 0)

    def test_wrong_password_fails_mount(self):
        pushed = self.push_image("union-replacements", "gzip")
        converted = self.convert_image(pushed)
        repo_and_digest = converted.split("/", 1)[1]

        # The proxy wants credentials on /token and imgmount sends none, so
        # the mount must fail with a clear error rather than hang or mount.
        proxy = AuthProxy(self.registry.port, "--user", "alice",
                          "--password", "secret").start()
        self.addCleanup(proxy.stop)

        mountpoint = self.path("mnt")
        os.mkdir(mountpoint)
        result = procs.run([mount.binary(), "mount", "-f",
                            "--cache-dir", self.path("cache"),
                            f"{proxy.host}/{repo_and_digest}", mountpoint],
                           timeout=120, check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(b"manifest", result.stderr)
        self.assertFalse(procs.is_mounted(mountpoint))


if __name__ == "__main__":
    unittest.main()
