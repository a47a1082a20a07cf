#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Show the main job on a real image. The script pushes a Debian 12 image with
# python3 to a local registry and converts it to zstd:chunked. It mounts the
# converted image by digest with an empty cache and runs python3 in a chroot
# of the mount. Then it prints how many bytes were fetched from the registry
# against the image's size.
#
#   sudo scripts/demo.sh [--port N] [--keep]
#
#   --port N   registry port on 127.0.0.1 (default 5000)
#   --keep     leave the mount, the registry and the temporary directory in
#              place, and print the commands that remove them
#
# The image is built once by scripts/build-debian-image.sh and cached in
# $IMGMOUNT_DEMO_DIR (default /var/cache/imgmount-demo). Everything else
# (registry storage, chunk cache, mountpoint) lives in a temporary directory
# that the script removes at exit. $IMGMOUNT overrides the imgmount binary
# (default: build/fs/imgmount in this repository). Needs root for chroot.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly script_dir
readonly repo_dir=${script_dir%/*}
readonly imgmount=${IMGMOUNT:-$repo_dir/build/fs/imgmount}
readonly demo_dir=${IMGMOUNT_DEMO_DIR:-/var/cache/imgmount-demo}
readonly source_tag=bookworm-python
readonly converted_tag=bookworm-python-zstdchunked
readonly python_command='import json, sqlite3; print(1)'

# Time limits in seconds for each step.
readonly BUILD_TIMEOUT=2400
readonly REGISTRY_TIMEOUT=60
readonly PUSH_TIMEOUT=600
readonly CONVERT_TIMEOUT=900
readonly MOUNT_TIMEOUT=300
readonly RUN_TIMEOUT=300
readonly QUICK_TIMEOUT=60

port=5000
keep=false

# Set by main and read by cleanup.
temp_dir=
registry_dir=
mount_dir=

log() {
	echo "demo: $*"
}

die() {
	echo "demo: $*" >&2
	exit 1
}

usage() {
	echo "usage: demo.sh [--port N] [--keep]" >&2
	exit 2
}

parse_args() {
	while (($# > 0)); do
		case $1 in
		--port)
			(($# >= 2)) || usage
			port=$2
			shift 2
			;;
		--keep)
			keep=true
			shift
			;;
		-h | --help)
			sed -n '3,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
			exit 0
			;;
		*)
			usage
			;;
		esac
	done

	if ! [[ $port =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
		die "invalid --port '$port'; expected a number from 1 to 65535"
	fi
	port=$((10#$port))
}

check_tools() {
	local tool

	[[ $(id -u) -eq 0 ]] ||
		die "must run as root, because the demo runs chroot on the mount; run: sudo $0"
	[[ -x $imgmount ]] ||
		die "'$imgmount' not found; build it first: meson setup build && ninja -C build"
	for tool in skopeo curl python3 zstd chroot timeout fusermount3; do
		command -v "$tool" >/dev/null ||
			die "'$tool' not found; install the dependencies with scripts/install-deps.sh"
	done
}

# Succeed if $1 is a mount point in /proc/self/mounts. Unlike mountpoint(1),
# this also finds a FUSE mount whose daemon died, where stat fails.
is_mounted() {
	[[ -n $1 ]] && awk -v dir="$1" '$2 == dir { found = 1 } END { exit !found }' /proc/self/mounts
}

cleanup() {
	local status=$?

	if [[ $keep == true ]]; then
		print_keep_commands
		exit "$status"
	fi

	if is_mounted "$mount_dir"; then
		if ! timeout "$QUICK_TIMEOUT" "$imgmount" umount "$mount_dir"; then
			echo "demo: imgmount umount '$mount_dir' failed; detaching it with fusermount3 -u -z" >&2
			fusermount3 -u -z "$mount_dir" || true
		fi
	fi
	if [[ -n $registry_dir ]]; then
		timeout "$QUICK_TIMEOUT" "$script_dir/registry.sh" stop "$registry_dir" >/dev/null || true
	fi
	if [[ -n $temp_dir && -d $temp_dir ]]; then
		if is_mounted "$mount_dir"; then
			echo "demo: '$mount_dir' is still mounted; not removing '$temp_dir'" >&2
		else
			rm -rf --one-file-system "$temp_dir"
		fi
	fi

	exit "$status"
}

print_keep_commands() {
	[[ -n $temp_dir ]] || return 0
	echo "demo: --keep: left running; remove them with:"
	is_mounted "$mount_dir" && echo "  $imgmount umount $mount_dir"
	[[ -n $registry_dir ]] && echo "  $script_dir/registry.sh stop $registry_dir"
	echo "  rm -rf $temp_dir"
}

# Print seconds since the epoch with microseconds.
now() {
	echo "$EPOCHREALTIME"
}

# Print $2 - $1 in seconds with three decimals.
elapsed() {
	python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"
}

# Print $1 as a percentage of $2 with one decimal.
percent() {
	python3 -c 'import sys; print(f"{100 * int(sys.argv[1]) / int(sys.argv[2]):.1f}")' "$1" "$2"
}

# Print the manifest of debian@$1 (a tag or a digest) from the local registry.
fetch_manifest() {
	curl -fsS --max-time "$QUICK_TIMEOUT" \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://127.0.0.1:$port/v2/debian/manifests/$1"
}

# Print the digest and the size of every layer in the manifest on stdin.
manifest_layers() {
	python3 -c '
import json, sys
for layer in json.load(sys.stdin)["layers"]:
    print(layer["digest"], layer["size"])
'
}

# Print the sum of the uncompressed sizes of the layers of debian@$1. Each
# blob is decompressed whole with the zstd tool, which skips the skippable
# frames that hold zstd:chunked's table of contents, so the count is the
# layer's tar stream.
uncompressed_size() {
	local total=0 digest bytes

	while read -r digest _; do
		bytes=$(curl -fsS --max-time "$QUICK_TIMEOUT" \
			"http://127.0.0.1:$port/v2/debian/blobs/$digest" | zstd -dcq | wc -c)
		total=$((total + bytes))
	done < <(fetch_manifest "$1" | manifest_layers)

	echo "$total"
}

# Print the distinct layer media types of debian@$1, comma-separated.
layer_media_types() {
	fetch_manifest "$1" | python3 -c '
import json, sys
print(", ".join(sorted({layer["mediaType"] for layer in json.load(sys.stdin)["layers"]})))
'
}

compressed_size() {
	fetch_manifest "$1" | manifest_layers | awk '{ total += $2 } END { print total }'
}

# Print the registry_bytes counter from `imgmount stats` JSON on stdin,
# wherever it is nested.
registry_bytes() {
	python3 -c '
import json, sys

def find(value):
    if isinstance(value, dict):
        if "registry_bytes" in value:
            return value["registry_bytes"]
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = find(item)
            if found is not None:
                return found
    return None

found = find(json.load(sys.stdin))
if found is None:
    sys.exit("demo: imgmount stats printed no registry_bytes field")
print(found)
'
}

main() {
	local source_ref converted_ref convert_output digest mounted_ref
	local start mount_seconds run_seconds stats fetched compressed uncompressed source_compressed

	parse_args "$@"
	check_tools
	trap 'echo "demo: failed: $BASH_COMMAND" >&2' ERR

	log "image: building or reusing $demo_dir"
	timeout "$BUILD_TIMEOUT" "$script_dir/build-debian-image.sh" "$demo_dir"

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	temp_dir=$(mktemp -d /tmp/imgmount-demo.XXXXXX)
	registry_dir=$temp_dir/registry
	mount_dir=$temp_dir/mnt
	mkdir "$mount_dir" "$temp_dir/cache"

	timeout "$REGISTRY_TIMEOUT" "$script_dir/registry.sh" start "$registry_dir" "$port"

	source_ref=127.0.0.1:$port/debian:$source_tag
	converted_ref=127.0.0.1:$port/debian:$converted_tag
	log "push: skopeo copy oci:$demo_dir:$source_tag docker://$source_ref"
	timeout "$PUSH_TIMEOUT" skopeo copy --quiet --dest-tls-verify=false \
		"oci:$demo_dir:$source_tag" "docker://$source_ref"

	log "convert: imgmount convert $source_ref $converted_ref"
	convert_output=$(timeout "$CONVERT_TIMEOUT" "$imgmount" convert "$source_ref" "$converted_ref")
	echo "$convert_output"
	digest=$(grep -oE 'sha256:[0-9a-f]{64}' <<<"$convert_output" | tail -n 1) ||
		die "imgmount convert printed no sha256 digest for '$converted_ref'"

	mounted_ref=127.0.0.1:$port/debian@$digest
	log "mount: imgmount mount --cache-dir $temp_dir/cache $mounted_ref $mount_dir"
	start=$(now)
	timeout "$MOUNT_TIMEOUT" "$imgmount" mount --cache-dir "$temp_dir/cache" "$mounted_ref" "$mount_dir"
	mount_seconds=$(elapsed "$start" "$(now)")
	is_mounted "$mount_dir" ||
		die "imgmount mount returned but '$mount_dir' is not a mount point"

	log "run: chroot $mount_dir python3 -c '$python_command'"
	start=$(now)
	timeout "$RUN_TIMEOUT" chroot "$mount_dir" python3 -c "$python_command"
	run_seconds=$(elapsed "$start" "$(now)")

	stats=$(timeout "$QUICK_TIMEOUT" "$imgmount" stats "$mount_dir")
	fetched=$(registry_bytes <<<"$stats")

	# Measured after the stats, so that these downloads are not counted.
	compressed=$(compressed_size "$digest")
	uncompressed=$(uncompressed_size "$digest")
	source_compressed=$(compressed_size "$source_tag")

	echo
	printf 'image %s\n' "$mounted_ref"
	printf '  layers:                %s\n' "$(layer_media_types "$digest")"
	printf '  size compressed:       %11d bytes (gzip original: %d bytes)\n' "$compressed" "$source_compressed"
	printf '  size uncompressed:     %11d bytes\n' "$uncompressed"
	printf '  fetched from registry: %11d bytes (%s%% of compressed, %s%% of uncompressed)\n' \
		"$fetched" "$(percent "$fetched" "$compressed")" "$(percent "$fetched" "$uncompressed")"
	printf '  mount time:            %11s s (empty cache)\n' "$mount_seconds"
	printf '  python3 run time:      %11s s\n' "$run_seconds"
}

main "$@"
