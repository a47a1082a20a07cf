# SPDX-License-Identifier: Apache-2.0
"""A loopback HTTP proxy in front of the test registry that delays some blobs.

Requests pass through unchanged, except that a request whose path contains
one of the delayed digests waits the given number of seconds before it is
forwarded. The out-of-order test uses it to serve the lower layer's TOC
after the upper layer's. It runs in threads of the test process and serves
only 127.0.0.1.
"""

import http.client
import http.server
import threading
import time

# Hop-by-hop headers (RFC 9110 section 7.6.1) are not forwarded.
_HOP_HEADERS = {"connection", "keep-alive", "proxy-connection",
                "transfer-encoding", "te", "trailer", "upgrade"}


class DelayProxy:
    """Start with start(); stop() shuts the server down and joins its thread."""

    def __init__(self, upstream_host, upstream_port, delays):
        self.upstream = (upstream_host, upstream_port)
        self.delays = dict(delays)  # digest -> seconds
        self.events = []            # (monotonic time, "start"|"end", path)
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    @property
    def host(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def record(self, kind, path):
        with self.lock:
            self.events.append((time.monotonic(), kind, path))

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def do_GET(self):
                self.forward()

            def do_HEAD(self):
                self.forward()

            def forward(self):
                proxy.record("start", self.path)
                for digest, seconds in proxy.delays.items():
                    if digest in self.path:
                        time.sleep(seconds)
                connection = http.client.HTTPConnection(*proxy.upstream,
                                                        timeout=60)
                headers = {key: value for key, value in self.headers.items()
                           if key.lower() not in _HOP_HEADERS}
                connection.request(self.command, self.path, headers=headers)
                response = connection.getresponse()
                body = response.read()
                connection.close()

                # A HEAD response keeps the upstream Content-Length (the
                # blob's size); other responses carry the body just read.
                skipped = set(_HOP_HEADERS)
                if self.command != "HEAD":
                    skipped.add("content-length")
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in skipped:
                        self.send_header(key, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                proxy.record("end", self.path)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=10)
            self.server = None
