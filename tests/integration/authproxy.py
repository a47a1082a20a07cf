#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Loopback HTTP proxy that puts bearer-token auth and faults in front of a registry.

It listens on 127.0.0.1 only, forwards authorized requests to an upstream
registry (Debian's docker-registry, usually without auth), and serves the
token endpoint of the Docker token protocol itself:

  * A /v2/ request without a valid token gets 401 with
      WWW-Authenticate: Bearer realm="http://127.0.0.1:PORT/token",
                        service="SERVICE",scope="repository:REPO:ACTIONS"
    where ACTIONS is "pull" for GET and HEAD and "pull,push" otherwise.
  * GET /token?service=...&scope=... returns
      {"token": T, "access_token": T, "expires_in": N, "issued_at": ...}
    granting the scopes asked for. With --user, the request needs matching
    basic credentials, or it gets 401.
  * GET /_stats returns counters as JSON: token_requests, tokens_rejected,
    proxied, faults, redirects, storage_requests, auth_leaks.
  * POST /_revoke discards every token issued, so that clients holding one
    get 401 on their next request.

Options:
  --upstream URL        registry to forward to, e.g. http://127.0.0.1:5000 (required)
  --port N              port to listen on; 0 (the default) picks a free one
  --service NAME        service in challenges (default: imgmount-test)
  --token-expiry SEC    lifetime of tokens, in seconds (default: 60)
  --user NAME           require basic credentials on /token ...
  --password TEXT       ... with this password
  --no-auth             forward without asking for tokens (faults only)
  --fail-requests N     respond to the first N forwarded requests with 503 and
                        Retry-After: 1
  --ignore-range        drop Range headers, so blob reads get 200 and the
                        whole blob
  --tls-cert FILE       serve HTTPS with this PEM certificate ...
  --tls-key FILE        ... and this PEM key (the token realm is then https)
  --redirect-blobs      respond to blob GET and HEAD with 307 to a second
                        listener (another port, so another origin) that
                        forwards them without credentials; a request that
                        reaches it with an Authorization header counts as
                        an auth leak and gets 400
  --verbose             log each request on stderr

When it is ready it prints the port it listens on, alone on one line of
stdout. Stop it with SIGTERM or SIGINT.
"""

import argparse
import base64
import http.client
import http.server
import json
import re
import secrets
import signal
import ssl
import sys
import threading
import time
import urllib.parse

REPO_PATH = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags)/")
HOP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
               "te", "trailer", "transfer-encoding", "upgrade", "host", "authorization"}
COPY_CHUNK = 64 * 1024


class State:
    """Counters, issued tokens and fault budgets, shared by all handler threads."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = {}  # token -> (expiry time, set of (repository, action))
        self.failures_left = args.fail_requests
        self.counters = {name: 0 for name in (
            "token_requests", "tokens_rejected", "proxied", "faults", "redirects",
            "storage_requests", "auth_leaks")}
        self.port = 0
        self.storage_port = 0
        self.scheme = "https" if args.tls_cert else "http"

    def count(self, name):
        with self.lock:
            self.counters[name] += 1

    def take_failure(self):
        with self.lock:
            if self.failures_left <= 0:
                return False
            self.failures_left -= 1
            self.counters["faults"] += 1
            return True

    def issue(self, grants):
        token = secrets.token_hex(24)
        with self.lock:
            self.tokens[token] = (time.monotonic() + self.args.token_expiry, grants)
        return token

    def allows(self, token, repository, action):
        with self.lock:
            entry = self.tokens.get(token)
        if not entry:
            return False
        expiry, grants = entry
        return time.monotonic() < expiry and (repository, action) in grants


def parse_scopes(values):
    """Turn scope parameters ("repository:NAME:pull,push", space separated) into grants."""
    grants = set()
    for value in values:
        for scope in value.split():
            parts = scope.split(":")
            if len(parts) < 3 or parts[0] != "repository":
                continue
            name = ":".join(parts[1:-1])
            for action in parts[-1].split(","):
                grants.add((name, action))
    return grants


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set on the subclass per listener
    storage = False

    def log_message(self, fmt, *args):
        if self.state.args.verbose:
            sys.stderr.write("authproxy: %s\n" % (fmt % args))

    def send_json(self, status, body, extra_headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in extra_headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def drain_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            chunk = self.rfile.read(min(length, COPY_CHUNK))
            if not chunk:
                break
            length -= len(chunk)

    def do_GET(self):
        self.route()

    def do_HEAD(self):
        self.route()

    def do_POST(self):
        self.route()

    def do_PUT(self):
        self.route()

    def do_PATCH(self):
        self.route()

    def do_DELETE(self):
        self.route()

    def route(self):
        path = urllib.parse.urlsplit(self.path).path
        if self.storage:
            self.serve_storage()
        elif path == "/token":
            self.serve_token()
        elif path == "/_stats":
            with self.state.lock:
                counters = dict(self.state.counters)
            self.send_json(200, counters)
        elif path == "/_revoke" and self.command == "POST":
            self.drain_body()
            with self.state.lock:
                self.state.tokens.clear()
            self.send_json(200, {})
        elif path.startswith("/v2/"):
            self.serve_registry(path)
        else:
            self.drain_body()
            self.send_json(404, {"errors": [{"code": "NOT_FOUND"}]})

    def serve_token(self):
        args = self.state.args
        self.state.count("token_requests")
        if args.user is not None:
            expected = "Basic " + base64.b64encode(
                ("%s:%s" % (args.user, args.password or "")).encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_json(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                               [("WWW-Authenticate", 'Basic realm="token"')])
                return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if query.get("service", [""])[0] != args.service:
            self.send_json(400, {"errors": [{"code": "DENIED", "message": "unknown service"}]})
            return
        token = self.state.issue(parse_scopes(query.get("scope", [])))
        self.send_json(200, {"token": token, "access_token": token,
                             "expires_in": args.token_expiry,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def challenge(self, repository, action):
        args = self.state.args
        value = 'Bearer realm="%s://127.0.0.1:%d/token",service="%s"' % (
            self.state.scheme, self.state.port, args.service)
        if repository:
            scope = "pull" if action == "pull" else "pull,push"
            value += ',scope="repository:%s:%s"' % (repository, scope)
        return value

    def authorized(self, repository, action):
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        token = header[len("Bearer "):]
        if repository is None:
            with self.state.lock:
                entry = self.state.tokens.get(token)
            return bool(entry) and time.monotonic() < entry[0]
        return self.state.allows(token, repository, action)

    def serve_registry(self, path):
        args = self.state.args
        match = REPO_PATH.match(path)
        repository = match.group(1) if match else None
        action = "pull" if self.command in ("GET", "HEAD") else "push"

        if not args.no_auth and not self.authorized(repository, action):
            if self.headers.get("Authorization"):
                self.state.count("tokens_rejected")
            self.drain_body()
            self.send_json(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                           [("WWW-Authenticate", self.challenge(repository, action))])
            return

        if self.state.take_failure():
            self.drain_body()
            self.send_json(503, {"errors": [{"code": "UNAVAILABLE"}]}, [("Retry-After", "1")])
            return

        if (args.redirect_blobs and match and match.group(2) == "blobs"
                and self.command in ("GET", "HEAD") and "/uploads/" not in path):
            self.state.count("redirects")
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:%d/storage%s" % (
                self.state.storage_port, self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        self.forward(self.path)

    def serve_storage(self):
        self.state.count("storage_requests")
        if self.headers.get("Authorization"):
            self.state.count("auth_leaks")
            self.drain_body()
            self.send_json(400, {"errors": [{"code": "DENIED",
                                             "message": "credentials sent to storage"}]})
            return
        if not self.path.startswith("/storage/"):
            self.send_json(404, {"errors": [{"code": "NOT_FOUND"}]})
            return
        self.forward(self.path[len("/storage"):])

    def forward(self, target):
        args = self.state.args
        self.state.count("proxied")
        upstream = urllib.parse.urlsplit(args.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        headers = {name: value for name, value in self.headers.items()
                   if name.lower() not in HOP_HEADERS}
        if args.ignore_range:
            headers.pop("Range", None)
        # The registry builds upload Locations from Host and
        # X-Forwarded-Proto: make them point back at this proxy.
        headers["Host"] = self.headers.get("Host", "127.0.0.1")
        headers["X-Forwarded-Proto"] = self.state.scheme

        length = int(self.headers.get("Content-Length") or 0)
        connection.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        while length > 0:
            chunk = self.rfile.read(min(length, COPY_CHUNK))
            if not chunk:
                break
            connection.send(chunk)
            length -= len(chunk)

        response = connection.getresponse()
        self.send_response(response.status)
        body_length = None
        for name, value in response.getheaders():
            lower = name.lower()
            if lower in HOP_HEADERS:
                continue
            if lower == "content-length":
                body_length = value
            if lower == "location":
                value = value.replace(args.upstream, "%s://127.0.0.1:%d" % (
                    self.state.scheme, self.state.port))
            self.send_header(name, value)
        if body_length is None and self.command != "HEAD" and response.status not in (204, 304):
            # Unknown length: close the connection to mark the end of the body.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            while True:
                chunk = response.read(COPY_CHUNK)
                if not chunk:
                    break
                self.wfile.write(chunk)
        connection.close()


def make_server(state, storage):
    handler = type("Handler", (ProxyHandler,), {"state": state, "storage": storage})
    port = state.args.port if not storage else 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--service", default="imgmount-test")
    parser.add_argument("--token-expiry", type=int, default=60)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--no-auth", action="store_true")
    parser.add_argument("--fail-requests", type=int, default=0)
    parser.add_argument("--ignore-range", action="store_true")
    parser.add_argument("--redirect-blobs", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    host = urllib.parse.urlsplit(args.upstream).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--upstream must be a loopback address")

    state = State(args)
    server = make_server(state, storage=False)
    storage = make_server(state, storage=True)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    state.storage_port = storage.server_address[1]

    threading.Thread(target=storage.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())

    print(state.port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    storage.shutdown()


if __name__ == "__main__":
    main()
