# SPDX-License-Identifier: Apache-2.0
"""Basic auth against Debian's docker-registry with an htpasswd file.

The class starts a second docker-registry on 127.0.0.1 with `auth:
htpasswd` and a bcrypt entry made by `htpasswd -Bbn` (apache2-utils), so
every request needs basic credentials. skopeo pushes the
union-replacements image with --dest-creds, and `imgmount convert` turns
it into zstd:chunked in the same registry with credentials from
--authfile. Each test then mounts the converted image: with the right
credentials it reads, and with a wrong or a missing password the mount
fails with a message that names the registry and the fix. The password
and its base64 form must never appear in imgmount's output or log.
"""

import base64
import json
import os
import subprocess

from lib import mount, procs
from lib.case import IntegrationCase
from lib.registry import Registry

USER = "alice"
PASSWORD = "htpasswd-secret-9f2c"
PROBE_FILE = "/keep"
PROBE_TEXT = "keep v3"


def make_htpasswd(path, user, password):
    result = subprocess.run(["htpasswd", "-Bbn", user, password], check=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    with open(path, "wb") as stream:
        stream.write(result.stdout)


class RegistryBasicAuthTest(IntegrationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        workdir = os.path.join(cls.class_dir, "basic-registry")
        os.makedirs(workdir)
        htpasswd = os.path.join(workdir, "htpasswd")
        make_htpasswd(htpasswd, USER, PASSWORD)
        cls.basic = Registry(workdir, htpasswd=htpasswd)
        cls.basic.start()
        cls.addClassCleanup(cls.basic.stop)
        cls._converted = None

    def write_authfile(self, name, user, password):
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        path = self.path(name)
        with open(path, "w") as stream:
            json.dump({"auths": {self.basic.host: {"auth": auth}}}, stream)
        os.chmod(path, 0o600)
        return path

    def converted(self):
        """REGISTRY/REPO@DIGEST of the converted image, made once per class."""
        if RegistryBasicAuthTest._converted is None:
            pushed = self.push_image("union-replacements", "gzip")
            repo = "private/union"
            procs.run(["skopeo", "copy", "--quiet", "--preserve-digests",
                       "--src-tls-verify=false", "--dest-tls-verify=false",
                       "--dest-creds", f"{USER}:{PASSWORD}",
                       f"docker://{pushed.by_digest}",
                       f"docker://{self.basic.host}/{repo}:gzip"], timeout=600)
            authfile = self.write_authfile("convert-auth.json", USER, PASSWORD)
            digest = mount.convert(f"{self.basic.host}/{repo}:gzip",
                                   f"{self.basic.host}/{repo}:chunked",
                                   extra_args=["--authfile", authfile])
            RegistryBasicAuthTest._converted = f"{self.basic.host}/{repo}@{digest}"
        return RegistryBasicAuthTest._converted

    def assert_no_secret(self, text):
        encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.assertNotIn(PASSWORD, text)
        self.assertNotIn(encoded, text)

    def failed_mount(self, *extra_args, env=None):
        """Run a mount that must fail; return its stderr as text."""
        mountpoint = self.path("mnt")
        os.mkdir(mountpoint)
        result = procs.run([mount.binary(), "mount", "-f", "--cache-dir", self.path("cache"),
                            *extra_args, self.converted(), mountpoint],
                           timeout=120, check=False, env=env)
        self.assertNotEqual(result.returncode, 0)
        self.assertFalse(procs.is_mounted(mountpoint))
        stderr = result.stderr.decode(errors="replace")
        self.assert_no_secret(stderr + result.stdout.decode(errors="replace"))
        return stderr

    def test_mount_reads_with_authfile(self):
        authfile = self.write_authfile("auth.json", USER, PASSWORD)
        since = self.basic.log_offset()
        daemon = self.mount_image(self.converted(), extra_args=["--authfile", authfile])
        self.assertEqual(self.read_text(daemon.mountpoint, PROBE_FILE), PROBE_TEXT)

        stats = daemon.stats()
        self.assertGreater(stats["chunks_from_network"], 0)
        self.assertEqual(stats["verify_failures"], 0)
        # Basic auth needs no token service.
        self.assertEqual(stats["token_requests"], 0)

        # The registry served the chunk GETs with status 206, so it accepted
        # the credentials; anonymous requests would all be 401.
        repo_digest = self.converted().split("/", 1)[1]
        blob_gets = [entry for entry in self.basic.access_log(since)
                     if entry.method == "GET" and "/blobs/" in entry.path]
        self.assertTrue(any(entry.status == 206 for entry in blob_gets),
                        f"no 206 blob GET for {repo_digest}: {blob_gets}")
        self.assert_no_secret(daemon.log())
        self.assert_no_secret(self.basic.log_tail(1 << 20))

    def test_wrong_password_names_registry_and_fix(self):
        authfile = self.write_authfile("wrong.json", USER, "not-the-password")
        stderr = self.failed_mount("--authfile", authfile)
        self.assertIn(f'registry "{self.basic.host}" rejected the password of user "{USER}"',
                      stderr)
        self.assertIn("--authfile", stderr)
        self.assertNotIn("not-the-password", stderr)

    def test_missing_credentials_name_registry_and_fix(self):
        # An empty environment of credential files: no --authfile, and the
        # default files point into this test's directory, where none exist.
        env = dict(os.environ, HOME=self.path("home"),
                   REGISTRY_AUTH_FILE=self.path("absent.json"),
                   XDG_RUNTIME_DIR=self.path("runtime"),
                   DOCKER_CONFIG=self.path("docker"))
        stderr = self.failed_mount(env=env)
        self.assertIn(f'registry "{self.basic.host}" requires a user name and password',
                      stderr)
        self.assertIn(f"login {self.basic.host}", stderr)
