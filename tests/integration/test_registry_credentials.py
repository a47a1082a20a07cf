# SPDX-License-Identifier: Apache-2.0
"""Mounts take registry credentials from Docker config files and helpers.

tests/integration/authproxy.py runs on 127.0.0.1 in front of the class's
docker-registry and issues bearer tokens only to clients that prove who
they are: basic credentials on GET /token (--user, --password), or an
OAuth2 refresh-token POST (--identity-token). Each test writes a config
file (and a credential helper script) under its temporary directory and
mounts the union-replacements image through the proxy.
"""

import base64
import json
import os
import sys

from lib import mount, procs
from lib.case import IntegrationCase
from test_token_auth import AuthProxy

USER = "alice"
PASSWORD = "pa:ss word"
REFRESH_TOKEN = "refresh-0123456789"
# A file of union-replacements that the top layer sets, and its contents.
PROBE_FILE = "/keep"
PROBE_TEXT = "keep v3"

# Drops the page cache of one file on the mount, so that the next read
# reaches the daemon. Run as a child process like every mount access.
DROP_PAGE_CACHE = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
"""


class RegistryCredentialsTest(IntegrationCase):
    def image_path(self):
        if not hasattr(RegistryCredentialsTest, "_image"):
            pushed = self.push_image("union-replacements", "gzip")
            RegistryCredentialsTest._image = self.convert_image(pushed).split("/", 1)[1]
        return RegistryCredentialsTest._image

    def write_json(self, name, value):
        path = self.path(name)
        with open(path, "w") as stream:
            json.dump(value, stream)
        os.chmod(path, 0o600)
        return path

    def set_env(self, name, value):
        old = os.environ.get(name)
        os.environ[name] = value
        self.addCleanup(lambda: os.environ.__setitem__(name, old) if old is not None
                        else os.environ.pop(name, None))

    def assert_mount_reads(self, proxy, *extra_args):
        daemon = self.mount_image(f"{proxy.host}/{self.image_path()}", extra_args=extra_args)
        self.assertEqual(self.read_text(daemon.mountpoint, PROBE_FILE), PROBE_TEXT)
        self.assertGreaterEqual(daemon.stats()["token_requests"], 1)
        self.assertEqual(proxy.stats()["auth_leaks"], 0)
        return daemon

    def test_authfile_auth_member_gives_password(self):
        proxy = AuthProxy(self.registry.port, "--user", USER, "--password", PASSWORD).start()
        self.addCleanup(proxy.stop)
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        authfile = self.write_json("auth.json", {"auths": {proxy.host: {"auth": auth}}})

        daemon = self.assert_mount_reads(proxy, "--authfile", authfile)
        self.assertGreaterEqual(proxy.stats()["token_requests"], 1)
        self.assertNotIn(PASSWORD, daemon.log())

    def test_wrong_password_in_authfile_fails_mount(self):
        proxy = AuthProxy(self.registry.port, "--user", USER, "--password", PASSWORD).start()
        self.addCleanup(proxy.stop)
        auth = base64.b64encode(f"{USER}:wrong".encode()).decode()
        authfile = self.write_json("auth.json", {"auths": {proxy.host: {"auth": auth}}})

        mountpoint = self.path("mnt")
        os.mkdir(mountpoint)
        result = procs.run([mount.binary(), "mount", "-f", "--cache-dir", self.path("cache"),
                            "--authfile", authfile, f"{proxy.host}/{self.image_path()}",
                            mountpoint], timeout=120, check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertFalse(procs.is_mounted(mountpoint))
        self.assertNotIn(b"wrong", result.stderr)

    def test_credential_helper_from_docker_config(self):
        proxy = AuthProxy(self.registry.port, "--user", USER, "--password", PASSWORD).start()
        self.addCleanup(proxy.stop)

        # The helper returns credentials only for the proxy's host, as real ones do.
        helper_dir = self.path("bin")
        os.mkdir(helper_dir)
        helper = os.path.join(helper_dir, "docker-credential-imgmount-test")
        answer = json.dumps({"ServerURL": proxy.host, "Username": USER, "Secret": PASSWORD})
        with open(helper, "w") as stream:
            stream.write("#!/bin/sh\n"
                         "[ \"$1\" = get ] || exit 2\n"
                         "read -r server\n"
                         f"[ \"$server\" = '{proxy.host}' ] || "
                         "{ echo 'credentials not found in native keychain'; exit 1; }\n"
                         f"echo \"$server\" >> '{self.path('helper-calls')}'\n"
                         f"cat <<'EOF'\n{answer}\nEOF\n")
        os.chmod(helper, 0o755)

        docker_config = self.path("docker")
        os.mkdir(docker_config)
        with open(os.path.join(docker_config, "config.json"), "w") as stream:
            json.dump({"auths": {}, "credHelpers": {proxy.host: "imgmount-test"}}, stream)
        self.set_env("PATH", helper_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"))
        self.set_env("DOCKER_CONFIG", docker_config)
        self.set_env("REGISTRY_AUTH_FILE", self.path("absent.json"))
        self.set_env("XDG_RUNTIME_DIR", self.path("runtime"))

        self.assert_mount_reads(proxy)
        with open(self.path("helper-calls")) as stream:
            self.assertEqual(stream.read().split(), [proxy.host])

    def test_identity_token_uses_refresh_grant(self):
        proxy = AuthProxy(self.registry.port, "--user", USER, "--password", PASSWORD,
                          "--identity-token", REFRESH_TOKEN).start()
        self.addCleanup(proxy.stop)
        authfile = self.write_json("auth.json", {"auths": {proxy.host: {
            "auth": base64.b64encode(b"ignored:ignored").decode(),
            "identitytoken": REFRESH_TOKEN}}})

        daemon = self.assert_mount_reads(proxy, "--authfile", authfile)
        self.assertGreaterEqual(proxy.stats()["oauth_requests"], 1)
        self.assertNotIn(REFRESH_TOKEN, daemon.log())

    def test_cached_reads_outlive_registry_and_credentials(self):
        proxy = AuthProxy(self.registry.port, "--user", USER, "--password", PASSWORD).start()
        self.addCleanup(proxy.stop)
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        authfile = self.write_json("auth.json", {"auths": {proxy.host: {"auth": auth}}})
        daemon = self.assert_mount_reads(proxy, "--authfile", authfile)

        proxy.stop()
        os.unlink(authfile)
        before = daemon.stats()
        procs.run([sys.executable, "-c", DROP_PAGE_CACHE,
                   daemon.mountpoint + PROBE_FILE], timeout=60)
        self.assertEqual(self.read_text(daemon.mountpoint, PROBE_FILE), PROBE_TEXT)
        after = daemon.stats()
        self.assertGreater(after["fuse_reads"], before["fuse_reads"],
                           "the read was served by the page cache, not the daemon")
        self.assertEqual(after["fuse_read_errors"], before["fuse_read_errors"])
        self.assertEqual(after["registry_requests"], before["registry_requests"])

    def test_restart_without_registry_or_credentials_serves_cached_files(self):
        proxy = AuthProxy(self.registry.port, "--user", USER, "--password", PASSWORD).start()
        self.addCleanup(proxy.stop)
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        authfile = self.write_json("auth.json", {"auths": {proxy.host: {"auth": auth}}})
        daemon = self.assert_mount_reads(proxy, "--authfile", authfile)
        cache_dir = daemon.cache_dir
        daemon.stop()

        # The daemon restarts by digest after the registry and the
        # credentials are gone: the manifest and the compiled indexes come
        # from the cache, so the mount starts and cached files read.
        proxy.stop()
        os.unlink(authfile)
        restarted = self.mount_image(f"{proxy.host}/{self.image_path()}", cache_dir=cache_dir)
        self.assertEqual(self.read_text(restarted.mountpoint, PROBE_FILE), PROBE_TEXT)
        stats = restarted.stats()
        self.assertEqual(stats["registry_requests"], 0)
        self.assertEqual(stats["fuse_read_errors"], 0)

        # A file never read needs the registry: EIO for that file only.
        result = self.probe_one(restarted.mountpoint, "read", "/file-over-dir")
        self.assertEqual(result.get("errno"), "EIO")
        self.assertEqual(self.read_text(restarted.mountpoint, PROBE_FILE), PROBE_TEXT)
