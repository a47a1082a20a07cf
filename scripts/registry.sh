#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Start or stop a local OCI registry (Debian's docker-registry, the CNCF
# distribution server) for the demo, the integration tests and the benchmarks.
#
#   registry.sh start DIR [PORT]   serve on 127.0.0.1:PORT (default 5000)
#   registry.sh stop DIR
#
# DIR receives config.yml, the blob storage (DIR/storage), registry.log with
# the access log, and registry.pid. The registry has no authentication and
# plain HTTP only, and it listens on loopback only. It does not use the
# system service or /etc/docker/registry/config.yml, because that file turns
# on htpasswd authentication.
set -euo pipefail

readonly START_TIMEOUT_SECONDS=15
readonly STOP_TIMEOUT_SECONDS=10

die() {
	echo "registry.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: registry.sh start DIR [PORT] | registry.sh stop DIR" >&2
	exit 2
}

# Succeed if PID is alive and is a docker-registry process, so that a stale
# pid file never makes us signal an unrelated process that reused the PID.
is_registry_pid() {
	local pid=$1

	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'docker-registry serve'
}

write_config() {
	local dir=$1 port=$2

	cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: "$dir/storage"
  delete:
    enabled: true
http:
  addr: "127.0.0.1:$port"
  headers:
    X-Content-Type-Options: [nosniff]
YAML
}

start() {
	local dir=$1 port=$2
	local pid_file="$dir/registry.pid"
	local url pid deadline

	if ! [[ $port =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
		die "invalid port '$port'; expected a number from 1 to 65535"
	fi
	port=$((10#$port))
	url="http://127.0.0.1:$port/v2/"
	command -v docker-registry >/dev/null ||
		die "docker-registry not found; install it with scripts/install-deps.sh"

	if [[ -f $pid_file ]] && is_registry_pid "$(cat "$pid_file")"; then
		die "a registry is already running from '$dir' (pid $(cat "$pid_file")); run: registry.sh stop '$dir'"
	fi

	# Without this check, another server that already responds on the port
	# would pass the readiness probe below while our registry fails to bind.
	if curl -sS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
		die "port $port on 127.0.0.1 is already in use; choose another PORT"
	fi

	mkdir -p "$dir/storage"
	write_config "$dir" "$port"

	# The registry logs to stderr. stdin is closed so that it never reads
	# the caller's terminal.
	docker-registry serve "$dir/config.yml" </dev/null >>"$dir/registry.log" 2>&1 &
	pid=$!
	echo "$pid" >"$pid_file"

	deadline=$((SECONDS + START_TIMEOUT_SECONDS))
	until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$pid_file"
			tail -n 20 "$dir/registry.log" >&2 || true
			die "docker-registry exited during startup (log above, full log in '$dir/registry.log'); is port $port in use?"
		fi
		if ((SECONDS >= deadline)); then
			kill "$pid" 2>/dev/null || true
			rm -f "$pid_file"
			die "registry did not respond to GET $url within ${START_TIMEOUT_SECONDS}s; see '$dir/registry.log'"
		fi
		sleep 0.2
	done

	echo "registry.sh: serving $url (pid $pid, storage '$dir/storage', log '$dir/registry.log')"
}

stop() {
	local dir=$1
	local pid_file="$dir/registry.pid"
	local pid deadline

	if [[ ! -f $pid_file ]]; then
		echo "registry.sh: no pid file '$pid_file'; nothing to stop" >&2
		return 0
	fi
	pid=$(cat "$pid_file")

	if ! is_registry_pid "$pid"; then
		echo "registry.sh: pid $pid from '$pid_file' is not a running docker-registry; removing the stale pid file" >&2
		rm -f "$pid_file"
		return 0
	fi

	kill -TERM "$pid"
	deadline=$((SECONDS + STOP_TIMEOUT_SECONDS))
	while is_registry_pid "$pid"; do
		if ((SECONDS >= deadline)); then
			echo "registry.sh: pid $pid still running ${STOP_TIMEOUT_SECONDS}s after SIGTERM; sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done

	rm -f "$pid_file"
	echo "registry.sh: stopped pid $pid"
}

main() {
	(($# >= 2)) || usage
	local command=$1 dir

	dir=$(realpath -m "$2")

	case $command in
	start)
		(($# <= 3)) || usage
		start "$dir" "${3:-5000}"
		;;
	stop)
		(($# == 2)) || usage
		stop "$dir"
		;;
	*)
		usage
		;;
	esac
}

main "$@"
