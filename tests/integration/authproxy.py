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
    basic credentials, or it gets 401 (counted in credentials_rejected when
    the request carried some other Authorization header).
  * GET /_stats returns counters as JSON: token_requests, tokens_rejected,
    proxied, faults, redirects, storage_requests, auth_leaks.
  * POST /_revoke discards every token issued, so that clients holding one
    get 401 on their next request.
  * POST /_faults with a JSON object sets faults for the blob GETs that
    follow (keys left out keep their value; counts go down as faults fire):
      {"status": 429, "status_count": N, "retry_after": 3 or null}
          respond to the next N blob GETs with that status (and
          Retry-After when not null) instead of forwarding them;
      {"penalty_window": SECONDS, "retry_after": N}
          a rate limit's penalty: from the first blob GET after this is
          set, answer every blob GET for SECONDS with 429 and Retry-After:
          N (counted in penalty_faults), then forward them again;
      {"cut_count": N, "cut_after": BYTES, "cut_mode": "reset" or "fin"}
          forward the next N blob GETs but close the connection after
          BYTES of the body, with a TCP reset or an orderly FIN, so the
          client receives fewer bytes than Content-Length announced;
      {"stall": true}
          hold every blob GET without a response until stall is false,
          then close its connection;
      {"delay": SECONDS}
          hold every blob GET this long before forwarding it, so that
          concurrent requests overlap (counted in delayed). The largest
          number held at once is delayed_at_once_max. It never exceeds the
          client's requests in flight, because a held request has no
          response yet;
      {"whole_first_range": true}
          answer the first GET of each blob whose Range starts past byte 0
          with 200 and the whole blob, as servers without range support
          do; later GETs of that blob get their 206 (counted in
          whole_responses);
      {"drop_content_type": true}
          forward 206 responses without their Content-Type header
          (counted in untyped_responses).
    Counters of these: status_faults, cuts, stalled, penalty_faults.
  * Every blob GET is counted in blob_gets. A Range header with more than
    one range gets 416 and counts in multi_range_requests: imgmount only
    sends single ranges.

Options:
  --upstream URL        registry to forward to, e.g. http://127.0.0.1:5000 (required)
  --port N              port to listen on; 0 (the default) picks a free one
  --service NAME        service in challenges (default: imgmount-test)
  --token-expiry SEC    lifetime of tokens, in seconds (default: 60)
  --omit-expires-in     leave expires_in out of token responses, so clients
                        must assume the token protocol's default of 60 s
  --user NAME           require basic credentials on /token ...
  --password TEXT       ... with this password
  --identity-token TEXT also issue tokens for a form POST to /token with
                        grant_type=refresh_token and this refresh_token (the
                        OAuth2 grant that Docker config "identitytoken"
                        entries use); a wrong refresh_token gets 401
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
  --storage-url-ttl SEC with --redirect-blobs, make redirect targets expire
                        like signed storage URLs: each Location carries its
                        expiry time, and the storage listener responds 403
                        (counted in expired_urls) once it has passed
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
import socket
import ssl
import struct
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
            "storage_requests", "auth_leaks", "oauth_requests", "blob_gets",
            "multi_range_requests", "status_faults", "cuts", "stalled", "expired_urls",
            "delayed", "whole_responses", "untyped_responses",
            "delayed_at_once_max", "credentials_rejected", "penalty_faults")}
        self.delayed_now = 0
        self.whole_blobs_sent = set()
        self.faults = {"status": 0, "status_count": 0, "retry_after": None,
                       "cut_count": 0, "cut_after": 0, "cut_mode": "reset",
                       "stall": False, "delay": 0, "whole_first_range": False,
                       "drop_content_type": False, "penalty_window": 0}
        self.penalty_ends = None  # time.monotonic() when the window closes
        self.stall_released = threading.Condition(self.lock)
        self.port = 0
        self.storage_port = 0
        self.scheme = "https" if args.tls_cert else "http"

    def count(self, name):
        with self.lock:
            self.counters[name] += 1

    def set_faults(self, changes):
        with self.lock:
            for key, value in changes.items():
                if key not in self.faults:
                    raise ValueError(f"unknown fault {key!r}")
                self.faults[key] = value
            if "penalty_window" in changes:
                self.penalty_ends = None
            self.stall_released.notify_all()

    def take_status_fault(self):
        """Return (status, retry_after) for a blob GET to fail, or None."""
        with self.lock:
            if self.faults["penalty_window"]:
                now = time.monotonic()
                if self.penalty_ends is None:
                    self.penalty_ends = now + self.faults["penalty_window"]
                if now < self.penalty_ends:
                    self.counters["penalty_faults"] += 1
                    return 429, self.faults["retry_after"]
            if self.faults["status_count"] <= 0:
                return None
            self.faults["status_count"] -= 1
            self.counters["status_faults"] += 1
            return self.faults["status"], self.faults["retry_after"]

    def take_cut(self):
        """Return (bytes, mode) for a blob GET to cut short, or None."""
        with self.lock:
            if self.faults["cut_count"] <= 0:
                return None
            self.faults["cut_count"] -= 1
            self.counters["cuts"] += 1
            return self.faults["cut_after"], self.faults["cut_mode"]

    def wait_while_stalled(self):
        """Block while stall is set; return whether this request was held."""
        with self.lock:
            if not self.faults["stall"]:
                return False
            self.counters["stalled"] += 1
            while self.faults["stall"]:
                self.stall_released.wait()
            return True

    def hold_blob_get(self):
        """Sleep for the delay fault, counting the blob GETs held at once."""
        with self.lock:
            delay = self.faults["delay"]
            if not delay:
                return
            self.counters["delayed"] += 1
            self.delayed_now += 1
            self.counters["delayed_at_once_max"] = max(
                self.counters["delayed_at_once_max"], self.delayed_now)
        time.sleep(delay)
        with self.lock:
            self.delayed_now -= 1

    def take_whole_blob(self, path, range_header):
        """Return whether to drop the Range of this blob GET (see whole_first_range)."""
        match = re.match(r"bytes=(\d+)-", range_header or "")
        with self.lock:
            if (not self.faults["whole_first_range"] or not match or int(match.group(1)) == 0
                    or path in self.whole_blobs_sent):
                return False
            self.whole_blobs_sent.add(path)
            self.counters["whole_responses"] += 1
            return True

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
        elif path == "/_faults" and self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            try:
                self.state.set_faults(json.loads(self.rfile.read(length) or b"{}"))
            except ValueError as error:
                self.send_json(400, {"error": str(error)})
                return
            self.send_json(200, self.state.faults)
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

    def serve_oauth_token(self):
        """The OAuth2 refresh-token grant: a form POST to the realm."""
        args = self.state.args
        self.state.count("oauth_requests")
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"))
        if (form.get("grant_type", [""])[0] != "refresh_token"
                or form.get("refresh_token", [""])[0] != args.identity_token
                or args.identity_token is None):
            self.send_json(401, {"error": "invalid_grant"})
            return
        if form.get("service", [""])[0] != args.service:
            self.send_json(400, {"error": "invalid_request"})
            return
        token = self.state.issue(parse_scopes(form.get("scope", [])))
        self.send_json(200, {"access_token": token, "expires_in": args.token_expiry,
                             "scope": " ".join(form.get("scope", []))})

    def serve_token(self):
        args = self.state.args
        self.state.count("token_requests")
        if self.command == "POST":
            self.serve_oauth_token()
            return
        if args.user is not None:
            expected = "Basic " + base64.b64encode(
                ("%s:%s" % (args.user, args.password or "")).encode()).decode()
            if self.headers.get("Authorization") != expected:
                if self.headers.get("Authorization"):
                    self.state.count("credentials_rejected")
                self.send_json(401, {"errors": [{"code": "UNAUTHORIZED"}]},
                               [("WWW-Authenticate", 'Basic realm="token"')])
                return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if query.get("service", [""])[0] != args.service:
            self.send_json(400, {"errors": [{"code": "DENIED", "message": "unknown service"}]})
            return
        token = self.state.issue(parse_scopes(query.get("scope", [])))
        body = {"token": token, "access_token": token, "expires_in": args.token_expiry,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if args.omit_expires_in:
            del body["expires_in"]
        self.send_json(200, body)

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

        is_blob_get = (match and match.group(2) == "blobs" and self.command == "GET"
                       and "/uploads/" not in path)
        if is_blob_get and not args.redirect_blobs and not self.blob_faults():
            return

        if (args.redirect_blobs and match and match.group(2) == "blobs"
                and self.command in ("GET", "HEAD") and "/uploads/" not in path):
            self.state.count("redirects")
            self.send_response(307)
            expiry = ""
            if args.storage_url_ttl:
                expiry = "?expires=%.3f" % (time.time() + args.storage_url_ttl)
            self.send_header("Location", "http://127.0.0.1:%d/storage%s%s" % (
                self.state.storage_port, self.path, expiry))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        self.forward(self.path)

    def blob_faults(self):
        """Count a blob GET and apply the faults set; return whether to forward it."""
        self.state.count("blob_gets")
        if "," in self.headers.get("Range", ""):
            self.state.count("multi_range_requests")
            self.send_json(416, {"errors": [{"code": "RANGE_INVALID",
                                             "message": "multiple ranges"}]})
            return False
        if self.state.wait_while_stalled():
            self.close_connection = True
            return False
        fault = self.state.take_status_fault()
        if fault:
            status, retry_after = fault
            extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
            self.send_json(status, {"errors": [{"code": "TOOMANYREQUESTS" if status == 429
                                                else "UNAVAILABLE"}]}, extra)
            return False
        self.state.hold_blob_get()
        self.cut = self.state.take_cut()
        self.whole_blob = self.state.take_whole_blob(urllib.parse.urlsplit(self.path).path,
                                                     self.headers.get("Range"))
        return True

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
        target = urllib.parse.urlsplit(self.path[len("/storage"):])
        expires = urllib.parse.parse_qs(target.query).get("expires")
        if expires and time.time() > float(expires[0]):
            self.state.count("expired_urls")
            self.send_json(403, {"errors": [{"code": "DENIED", "message": "URL expired"}]})
            return
        if self.command == "GET" and not self.blob_faults():
            return
        self.forward(target.path)

    def write_cut_body(self, response, limit, mode):
        """Send at most limit body bytes, then drop the connection."""
        sent = 0
        while sent < limit:
            chunk = response.read(min(COPY_CHUNK, limit - sent))
            if not chunk:
                break
            self.wfile.write(chunk)
            sent += len(chunk)
        self.wfile.flush()
        if mode == "reset":
            # SO_LINGER with a zero timeout makes close() send a RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        else:
            self.connection.shutdown(socket.SHUT_WR)
        self.close_connection = True

    def forward(self, target):
        args = self.state.args
        self.state.count("proxied")
        upstream = urllib.parse.urlsplit(args.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        headers = {name: value for name, value in self.headers.items()
                   if name.lower() not in HOP_HEADERS}
        if args.ignore_range or getattr(self, "whole_blob", False):
            headers.pop("Range", None)
        self.whole_blob = False
        with self.state.lock:
            drop_content_type = self.state.faults["drop_content_type"]
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
            if lower == "content-type" and response.status == 206 and drop_content_type:
                self.state.count("untyped_responses")
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
        cut = getattr(self, "cut", None)
        self.cut = None
        if cut and self.command == "GET":
            self.write_cut_body(response, *cut)
        elif self.command != "HEAD":
            while True:
                chunk = response.read(COPY_CHUNK)
                if not chunk:
                    break
                self.wfile.write(chunk)
        connection.close()


def make_server(state, storage):
    handler = type("Handler", (ProxyHandler,), {"state": state, "storage": storage})
    port = state.args.port if not storage else 0
    # socketserver's listen backlog of 5 drops SYNs of bursts of concurrent
    # clients, which then retry a second later.
    server_class = type("Server", (http.server.ThreadingHTTPServer,),
                        {"request_queue_size": 128})
    server = server_class(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--service", default="imgmount-test")
    parser.add_argument("--token-expiry", type=int, default=60)
    parser.add_argument("--omit-expires-in", action="store_true")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--identity-token")
    parser.add_argument("--no-auth", action="store_true")
    parser.add_argument("--fail-requests", type=int, default=0)
    parser.add_argument("--ignore-range", action="store_true")
    parser.add_argument("--redirect-blobs", action="store_true")
    parser.add_argument("--storage-url-ttl", type=float, default=0)
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
