# SPDX-License-Identifier: Apache-2.0
"""A private docker-registry (CNCF distribution 2.8) on 127.0.0.1.

The registry stores blobs under a temporary directory, has no auth
unless an htpasswd file is given (then every request needs basic
credentials that the file lists), and writes an access log line per request in the Apache combined format to its
stdout, which goes to registry.log next to the storage. Tests read that log
to count blob GETs and the bytes sent for them, and find a blob's data file
in the storage to tamper with it.
"""

import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

from . import procs

CONFIG = """\
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
"""

# The password file contains bcrypt entries, made by `htpasswd -B`.
HTPASSWD_AUTH = """\
auth:
  htpasswd:
    realm: imgmount-test
    path: {path}
"""

# 127.0.0.1 - - [02/Jan/2024:10:00:00 +0000] "GET /v2/x/blobs/sha256:.. HTTP/1.1" 206 1024 "" "ua"
_ACCESS_LINE = re.compile(
    rb'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" '
    rb'(?P<status>\d{3}) (?P<bytes>\d+|-)')


def free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AccessEntry:
    """One request from the access log: method, path, status, bytes sent."""

    def __init__(self, method, path, status, sent):
        self.method = method
        self.path = path
        self.status = status
        self.sent = sent

    def __repr__(self):
        return f"{self.method} {self.path} {self.status} {self.sent}"


class Registry:
    """A running docker-registry; use start() and stop(), or the context."""

    def __init__(self, workdir, htpasswd=None):
        self.workdir = os.fspath(workdir)
        self.htpasswd = htpasswd
        self.root = os.path.join(self.workdir, "storage")
        self.log_path = os.path.join(self.workdir, "registry.log")
        self.process = None
        self.port = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, attempts=3):
        """Start the server on a free port and wait until GET /v2/ succeeds."""
        os.makedirs(self.root, exist_ok=True)
        last_error = None
        for _ in range(attempts):
            self.port = free_port()
            try:
                self._start_once()
                return
            except RuntimeError as error:
                last_error = error
                self.stop()
        raise RuntimeError(f"docker-registry did not start after {attempts} "
                           f"attempts: {last_error}")

    def _start_once(self):
        config_path = os.path.join(self.workdir, "config.yml")
        with open(config_path, "w", encoding="utf-8") as stream:
            stream.write(CONFIG.format(root=self.root, port=self.port))
            if self.htpasswd:
                stream.write(HTPASSWD_AUTH.format(path=self.htpasswd))

        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", config_path],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        procs.record_process(self.process.pid)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited with status "
                                   f"{self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            if self._answers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"docker-registry on {self.host} did not answer "
                           f"GET /v2/ within 30 s:\n{self.log_tail()}")

    def _answers(self):
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/",
                                        timeout=2) as response:
                return response.status == 200
        except urllib.error.HTTPError as error:
            # With htpasswd auth a running registry responds 401.
            return self.htpasswd is not None and error.code == 401
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def stop(self):
        if self.process is not None:
            procs.stop_process(self.process)
            self.process = None

    def log_tail(self, size=4000):
        try:
            with open(self.log_path, "rb") as stream:
                return stream.read()[-size:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_offset(self):
        """Return the current log size, to read only later requests."""
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def access_log(self, since=0):
        """Return the AccessEntry list for requests logged after byte since."""
        entries = []
        with open(self.log_path, "rb") as stream:
            stream.seek(since)
            for line in stream:
                match = _ACCESS_LINE.match(line)
                if not match:
                    continue
                sent = match["bytes"]
                entries.append(AccessEntry(
                    match["method"].decode(), match["path"].decode(),
                    int(match["status"]), 0 if sent == b"-" else int(sent)))
        return entries

    def blob_requests(self, digest, since=0, method="GET"):
        """Return the logged requests for blob digest with the given method."""
        suffix = f"/blobs/{digest}"
        return [entry for entry in self.access_log(since)
                if entry.method == method and entry.path.endswith(suffix)]

    def blob_bytes_sent(self, digest, since=0):
        """Return the body bytes the registry sent for GETs of blob digest."""
        return sum(entry.sent for entry in self.blob_requests(digest, since))

    def blob_data_path(self, digest):
        """Return the storage file that contains blob digest ("sha256:HEX")."""
        algorithm, hex_digest = digest.split(":", 1)
        return os.path.join(self.root, "docker", "registry", "v2", "blobs",
                            algorithm, hex_digest[:2], hex_digest, "data")

    def get(self, path, headers=None, timeout=30):
        """Send GET http://HOST/PATH and return (status, headers, body)."""
        request = urllib.request.Request(f"http://{self.host}{path}",
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()
