# SPDX-License-Identifier: Apache-2.0
"""TLS to a registry whose certificate a private CA signed.

The test makes a CA and a server certificate for IP 127.0.0.1 with the
openssl command, and runs tests/integration/authproxy.py with them
(--tls-cert, --tls-key, --no-auth) in front of the class's docker-registry.
imgmount reaches loopback registries over plain HTTP unless a
hosts.toml sets another URL, so every case names the HTTPS URL with "server" in
CERTS/127.0.0.1:PORT/hosts.toml. The CA comes from --ca-file or from
CERTS/127.0.0.1:PORT/ca.crt, and without it the mount must fail.
"""

import json
import os
import ssl
import subprocess
import urllib.request

from lib import mount, procs
from lib.case import IntegrationCase
from test_token_auth import AuthProxy

PROBE_FILE = "/keep"
PROBE_TEXT = "keep v3"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certificates(directory):
    """Write ca.pem, server.pem and server.key for 127.0.0.1 into directory."""
    os.makedirs(directory, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=imgmount test CA", "-keyout", "ca.key", "-out", "ca.pem",
            cwd=directory)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr", cwd=directory)
    with open(os.path.join(directory, "san.cnf"), "w") as stream:
        stream.write("subjectAltName = IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server.pem",
            cwd=directory)


class RegistryTlsTest(IntegrationCase):
    def setUp(self):
        super().setUp()
        self.pki = self.path("pki")
        make_certificates(self.pki)
        self.proxy = AuthProxy(self.registry.port, "--no-auth",
                               "--tls-cert", os.path.join(self.pki, "server.pem"),
                               "--tls-key", os.path.join(self.pki, "server.key")).start()
        self.addCleanup(self.proxy.stop)

    def proxied(self):
        """The proxy's "proxied" counter, read over HTTPS with the test CA."""
        context = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        with urllib.request.urlopen(f"https://{self.proxy.host}/_stats", timeout=30,
                                    context=context) as response:
            return json.load(response)["proxied"]

    def image_path(self):
        if not hasattr(RegistryTlsTest, "_image"):
            pushed = self.push_image("union-replacements", "gzip")
            RegistryTlsTest._image = self.convert_image(pushed).split("/", 1)[1]
        return RegistryTlsTest._image

    def certs_dir(self, with_ca):
        directory = self.path("certs.d", self.proxy.host)
        os.makedirs(directory)
        with open(os.path.join(directory, "hosts.toml"), "w") as stream:
            stream.write(f'server = "https://{self.proxy.host}"\n')
        if with_ca:
            with open(os.path.join(self.pki, "ca.pem")) as source, \
                    open(os.path.join(directory, "ca.crt"), "w") as target:
                target.write(source.read())
        return self.path("certs.d")

    def assert_mount_reads(self, *extra_args):
        daemon = self.mount_image(f"{self.proxy.host}/{self.image_path()}",
                                  extra_args=extra_args)
        self.assertEqual(self.read_text(daemon.mountpoint, PROBE_FILE), PROBE_TEXT)
        stats = daemon.stats()
        self.assertGreater(stats["registry_requests"], 0)
        self.assertEqual(stats["verify_failures"], 0)
        self.assertGreater(self.proxied(), 0)

    def test_ca_from_certs_dir(self):
        self.assert_mount_reads("--certs-dir", self.certs_dir(with_ca=True))

    def test_ca_from_ca_file_option(self):
        self.assert_mount_reads("--certs-dir", self.certs_dir(with_ca=False),
                                "--ca-file", os.path.join(self.pki, "ca.pem"))

    def test_unknown_ca_fails_mount(self):
        mountpoint = self.path("mnt")
        os.mkdir(mountpoint)
        result = procs.run([mount.binary(), "mount", "-f", "--cache-dir", self.path("cache"),
                            "--certs-dir", self.certs_dir(with_ca=False),
                            f"{self.proxy.host}/{self.image_path()}", mountpoint],
                           timeout=120, check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertFalse(procs.is_mounted(mountpoint))
        self.assertIn(b"certificate", result.stderr)
        self.assertEqual(self.proxied(), 0)
