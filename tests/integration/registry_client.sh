#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Live tests of the registry client (tests/unit/test_registry_live.c) against
# servers this script starts on 127.0.0.1 and stops by PID on exit:
#   1. Debian's docker-registry without auth, storage in a temp dir;
#   2. authproxy.py in front of it with bearer tokens, basic credentials on
#      the token endpoint, short token lifetimes and blob redirects;
#   3. authproxy.py without auth, with 503 faults and Range headers dropped,
#      once more serving HTTPS with a self-signed certificate, and once
#      with faults the tests set (delays, bodies cut short);
#   4. a server that accepts connections and never responds, and a port with
#      no server.
#
# Usage: registry_client.sh PATH/TO/test_registry_live
# Exits 77 (skipped) when docker-registry is not installed.
set -euo pipefail

test_program=$(realpath "${1:?usage: registry_client.sh PATH/TO/test_registry_live}")
here=$(dirname "$(realpath "$0")")
python=/usr/bin/python3

if ! command -v docker-registry >/dev/null; then
	echo "SKIP: docker-registry is not installed (apt-get install docker-registry)"
	exit 77
fi

work=$(mktemp -d /tmp/imgmount-registry-test.XXXXXX)
pids=()

cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

free_port() {
	"$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until URL returns any HTTP response, for at most 20 s.
wait_http() {
	local url=$1
	for _ in $(seq 1 100); do
		if curl -s -o /dev/null --max-time 1 "$url"; then
			return 0
		fi
		sleep 0.2
	done
	echo "FAIL: $url did not respond within 20 s" >&2
	return 1
}

# Start authproxy.py with the given options; sets proxy_port from the line
# it prints when ready.
start_proxy() {
	local out=$work/proxy-${#pids[@]}.out
	# Created here, because the background shell may open it only after the
	# first head below has run, and head on a missing file fails under set -e.
	: >"$out"
	"$python" "$here/authproxy.py" "$@" >"$out" 2>"$out.log" &
	pids+=($!)
	for _ in $(seq 1 100); do
		proxy_port=$(head -n 1 "$out")
		if [ -n "$proxy_port" ]; then
			return 0
		fi
		sleep 0.2
	done
	echo "FAIL: authproxy.py did not start" >&2
	cat "$out.log" >&2
	return 1
}

stats_field() {
	curl -s --max-time 5 "http://127.0.0.1:$1/_stats" |
		"$python" -c "import json, sys; print(json.load(sys.stdin)['$2'])"
}

failures=0
run() {
	echo "== $*"
	if timeout 300 "$test_program" "$@"; then
		echo "PASS: $1"
	else
		echo "FAIL: $1"
		failures=$((failures + 1))
	fi
}

# 1. docker-registry on a free loopback port.
registry_port=$(free_port)
mkdir -p "$work/storage"
cat >"$work/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$registry_port
EOF
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$registry_port/v2/"

run direct "127.0.0.1:$registry_port" "$work/storage"

# 2. Bearer tokens in front of the registry.
start_proxy --upstream "http://127.0.0.1:$registry_port" --user alice --password 's3cret,"pw' \
	--token-expiry 3 --redirect-blobs
auth_port=$proxy_port
run auth "127.0.0.1:$auth_port" alice 's3cret,"pw' 3
leaks=$(stats_field "$auth_port" auth_leaks)
storage_requests=$(stats_field "$auth_port" storage_requests)
echo "authproxy: $(stats_field "$auth_port" token_requests) token requests," \
	"$storage_requests redirected requests, $leaks credential leaks"
if [ "$leaks" != 0 ] || [ "$storage_requests" = 0 ]; then
	echo "FAIL: redirects leaked credentials or were never followed"
	failures=$((failures + 1))
fi

# 3. Faults: three 503 responses, and Range headers dropped.
start_proxy --upstream "http://127.0.0.1:$registry_port" --no-auth --fail-requests 3 --ignore-range
run faults "127.0.0.1:$proxy_port" 3

# 3b. HTTPS with a self-signed certificate for 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 \
	-keyout "$work/tls.key" -out "$work/tls.crt" 2>"$work/openssl.log"
start_proxy --upstream "http://127.0.0.1:$registry_port" --no-auth \
	--tls-cert "$work/tls.crt" --tls-key "$work/tls.key"
run tls "127.0.0.1:$proxy_port" "$work/tls.crt"

# 3c. Faults that the tests set: delayed blob GETs, to count the requests
# in flight, and large ranges cut short.
start_proxy --upstream "http://127.0.0.1:$registry_port" --no-auth
run proxy "127.0.0.1:$proxy_port"

# 4. A server that never responds, and a port where nothing listens.
stall_port=$(free_port)
"$python" -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
connections = []
deadline = time.monotonic() + 120
s.settimeout(1)
while time.monotonic() < deadline:
    try:
        connections.append(s.accept()[0])
    except socket.timeout:
        pass
' "$stall_port" &
pids+=($!)
sleep 0.5
run stall "127.0.0.1:$stall_port"
run refused "127.0.0.1:$(free_port)"

if [ "$failures" -ne 0 ]; then
	echo "registry client tests: $failures failed"
	exit 1
fi
echo "registry client tests: all passed"
