#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Run the fetcher's live tests (tests/unit/test_fetcher.c) against a private
# docker-registry on 127.0.0.1: plain HTTP, no auth, storage in a temporary
# directory that is removed on exit, together with the server.
#
# Usage: fetcher_live.sh PATH/TO/test_fetcher
# Exit status: the test program's, or 77 (skipped) without docker-registry.

set -euo pipefail

test_bin=${1:?usage: fetcher_live.sh PATH/TO/test_fetcher}

if ! command -v docker-registry >/dev/null; then
	echo "skip: docker-registry not installed (apt-get install docker-registry)" >&2
	exit 77
fi

work=$(mktemp -d /tmp/imgmount-fetcher-live-XXXXXX)
registry_pid=

cleanup() {
	if [[ -n $registry_pid ]]; then
		kill "$registry_pid" 2>/dev/null || true
		wait "$registry_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# Start the registry on a random port and wait until GET /v2/ responds.
# Return 1 when it exits first (most likely the port was taken).
start_registry() {
	local port=$1

	cat >"$work/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
CONFIG

	docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
	registry_pid=$!

	for _ in $(seq 300); do
		if ! kill -0 "$registry_pid" 2>/dev/null; then
			wait "$registry_pid" 2>/dev/null || true
			registry_pid=
			return 1
		fi
		if curl -sf -o /dev/null "http://127.0.0.1:$port/v2/"; then
			return 0
		fi
		sleep 0.1
	done
	echo "docker-registry on 127.0.0.1:$port did not respond to GET /v2/ within 30 s" >&2
	tail -n 20 "$work/registry.log" >&2
	exit 1
}

port=
for _ in 1 2 3 4 5; do
	candidate=$((20000 + RANDOM % 20000))
	if start_registry "$candidate"; then
		port=$candidate
		break
	fi
done
if [[ -z $port ]]; then
	echo "docker-registry did not start after 5 attempts; its last log:" >&2
	tail -n 20 "$work/registry.log" >&2
	exit 1
fi

status=0
timeout 300 "$test_bin" "127.0.0.1:$port" || status=$?
if [[ $status -ne 0 ]]; then
	echo "test_fetcher failed with status $status; registry log tail:" >&2
	tail -n 20 "$work/registry.log" >&2
fi
exit "$status"
