# SPDX-License-Identifier: Apache-2.0
"""Reads over HTTP/2 through nginx reuse a few connections.

nginx (Debian's nginx-light) listens on 127.0.0.1 with TLS and HTTP/2, a
certificate from a test CA (made like test_registry_tls.py's), and proxies
to the class's docker-registry. The mount names the registry by nginx's
host and reaches it through CERTS/HOST/hosts.toml ("server" with the https
URL) and CERTS/HOST/ca.crt. nginx's access log records, per request,
$server_protocol, $connection (a serial number per connection) and
$connection_requests (the request's position on its connection), so the
test can tell which protocol the client spoke and how many connections
it opened for how many requests.
"""

import hashlib
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

from images import catalog
from lib import procs
from lib.case import IntegrationCase
from lib.registry import free_port
from test_registry_tls import make_certificates

FILE_SIZE = 8 << 20

NGINX_CONFIG = """\
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    log_format protocol '$server_protocol $connection $connection_requests '
                        '$status $request_method $uri';
    access_log {workdir}/access.log protocol;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {pki}/server.pem;
        ssl_certificate_key {pki}/server.key;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_buffering off;
            client_max_body_size 0;
        }}
    }}
}}
"""

# "HTTP/2.0 3 17 206 GET /v2/test/lazy-large/blobs/sha256:..."
ACCESS_LINE = re.compile(r"^(?P<protocol>\S+) (?P<connection>\d+) (?P<position>\d+) "
                         r"(?P<status>\d{3}) (?P<method>[A-Z]+) (?P<uri>\S+)$")


class Nginx:
    """nginx in the foreground on 127.0.0.1, stopped by PID."""

    def __init__(self, workdir, pki, upstream_port):
        self.workdir = workdir
        self.pki = pki
        self.upstream_port = upstream_port
        self.port = None
        self.process = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=30):
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port()
        config = os.path.join(self.workdir, "nginx.conf")
        with open(config, "w") as stream:
            stream.write(NGINX_CONFIG.format(workdir=self.workdir, pki=self.pki,
                                             port=self.port, upstream=self.upstream_port))
        # -e sends the errors of start-up, before the config is read, to
        # the work directory instead of /var/log/nginx.
        self.process = subprocess.Popen(
            ["nginx", "-c", config, "-p", self.workdir, "-e",
             os.path.join(self.workdir, "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.record_process(self.process.pid)

        context = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with status {self.process.returncode}:\n"
                                   f"{self.error_log()}")
            try:
                with urllib.request.urlopen(f"https://{self.host}/v2/", timeout=2,
                                            context=context) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx on {self.host} did not answer within {timeout} s:\n"
                           f"{self.error_log()}")

    def error_log(self):
        try:
            with open(os.path.join(self.workdir, "error.log"), errors="replace") as stream:
                return stream.read()[-4000:]
        except FileNotFoundError:
            return ""

    def access_log(self):
        """Return the matched access log lines as dicts."""
        entries = []
        with open(os.path.join(self.workdir, "access.log")) as stream:
            for line in stream:
                match = ACCESS_LINE.match(line.strip())
                if match:
                    entries.append(match.groupdict())
        return entries

    def stop(self):
        if self.process is not None:
            procs.stop_process(self.process)
            self.process = None


class RegistryHttp2Test(IntegrationCase):
    def test_reads_use_http2_and_reuse_connections(self):
        pushed = self.push_image("lazy-large", "gzip")
        repo_and_digest = self.convert_image(pushed).split("/", 1)[1]

        pki = self.path("pki")
        make_certificates(pki)
        nginx = Nginx(self.path("nginx"), pki, self.registry.port).start()
        self.addCleanup(nginx.stop)

        certs = self.path("certs.d", nginx.host)
        os.makedirs(certs)
        with open(os.path.join(certs, "hosts.toml"), "w") as stream:
            stream.write(f'server = "https://{nginx.host}"\n')
        with open(os.path.join(pki, "ca.pem")) as source, \
                open(os.path.join(certs, "ca.crt"), "w") as target:
            target.write(source.read())

        daemon = self.mount_image(f"{nginx.host}/{repo_and_digest}",
                                  extra_args=["--certs-dir", self.path("certs.d")])
        for index in range(2):
            result = self.probe(daemon.mountpoint,
                                [dict(op="sha256", path=f"/data/blob{index}.bin")])[0]
            self.assertNotIn("errno", result, f"reading blob{index}.bin failed")
            expected = hashlib.sha256(catalog.random_bytes(FILE_SIZE, index)).hexdigest()
            self.assertEqual(result["sha256"], expected)

        stats = daemon.stats()
        self.assertEqual(stats["fuse_read_errors"], 0)
        self.assertEqual(stats["verify_failures"], 0)

        # The probe of the start-up wait went over HTTP/1.1; imgmount's
        # requests are every /v2/ request after it.
        entries = [entry for entry in nginx.access_log() if entry["uri"] != "/v2/"]
        blob_gets = [entry for entry in entries if "/blobs/" in entry["uri"]]
        self.assertGreaterEqual(len(blob_gets), 8, f"too few blob GETs: {entries}")
        protocols = {entry["protocol"] for entry in entries}
        self.assertEqual(protocols, {"HTTP/2.0"})

        connections = {entry["connection"] for entry in entries}
        longest = max(int(entry["position"]) for entry in entries)
        summary = (f"{len(entries)} requests on {len(connections)} connections, "
                   f"at most {longest} on one")
        # Each concurrent easy handle may open its own connection, but a
        # connection serves many requests, and there are far fewer
        # connections than requests.
        self.assertLessEqual(len(connections) * 3, len(entries), summary)
        self.assertGreaterEqual(longest, 4, summary)
        self.assertLessEqual(stats["registry_requests"], len(entries) + 2, summary)
