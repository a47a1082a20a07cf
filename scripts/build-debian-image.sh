#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Build a two-layer OCI image layout from real Debian 12 files:
#
#   build-debian-image.sh OUTDIR
#
# Layer 1 is `debootstrap --variant=minbase bookworm` without the .deb files
# debootstrap leaves in apt's cache. Layer 2 adds python3, installed with
# apt-get in a chroot of the unpacked layer 1. It is a real diff layer: it
# deletes the package lists that layer 1 contains, and umoci records each
# deleted file as a `.wh.` whiteout. umoci writes both layers as gzip tar, as
# an ordinary image build would. The image's tag in OUTDIR is bookworm-python,
# its Cmd is ["/bin/sh"] and its Env sets PATH.
#
# The result is cached: when OUTDIR already contains the tag, the script only
# prints the layer sizes. The image is built next to OUTDIR and renamed into
# place at the end, so an interrupted build never leaves a partial OUTDIR.
#
# Needs root (debootstrap, chroot, mount) and the network path to the Debian
# mirror, which DEBIAN_MIRROR overrides (default http://deb.debian.org/debian).
set -euo pipefail

readonly TAG=bookworm-python
readonly SUITE=bookworm
readonly MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly IMAGE_PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
readonly DEBOOTSTRAP_TIMEOUT=1800
readonly APT_TIMEOUT=900
readonly UMOCI_TIMEOUT=600

# Set by main and read by cleanup.
work_dir=
stage_dir=

log() {
	echo "build-debian-image.sh: $*"
}

die() {
	echo "build-debian-image.sh: $*" >&2
	exit 1
}

# Print each mount point at or below $1, deepest first, so that nested mounts
# are unmounted before their parents.
mounts_under() {
	local prefix=$1

	awk -v prefix="$prefix" \
		'$2 == prefix || index($2, prefix "/") == 1 { print $2 }' /proc/self/mounts |
		sort -r
}

# Unmount everything below $1. Return non-zero if anything stays mounted.
unmount_all_under() {
	local dir=$1 target

	while read -r target; do
		umount "$target" || umount -l "$target" || true
	done < <(mounts_under "$dir")

	[[ -z $(mounts_under "$dir") ]]
}

cleanup() {
	local status=$?

	if [[ -n $work_dir && -d $work_dir ]]; then
		# debootstrap mounts /proc and /sys in its target and the chroot
		# step mounts /proc: removing the tree with those still mounted
		# would descend into the host's files.
		if unmount_all_under "$work_dir"; then
			rm -rf --one-file-system "$work_dir"
		else
			echo "build-debian-image.sh: something is still mounted under '$work_dir'; unmount it and remove the directory by hand" >&2
		fi
	fi
	if [[ -n $stage_dir && -d $stage_dir ]]; then
		rm -rf --one-file-system "$stage_dir"
	fi

	exit "$status"
}

# Succeed if $1 is an OCI image layout that contains the tag.
contains_image() {
	local layout=$1

	[[ -f $layout/index.json ]] &&
		umoci stat --image "$layout:$TAG" >/dev/null 2>&1
}

check_tools() {
	local tool

	[[ $(id -u) -eq 0 ]] ||
		die "must run as root, because debootstrap, chroot and mount need it; run: sudo $0 OUTDIR"
	for tool in debootstrap umoci chroot mount python3 gzip tar timeout; do
		command -v "$tool" >/dev/null ||
			die "'$tool' not found; install the dependencies with scripts/install-deps.sh"
	done
}

build_base_tree() {
	local root=$1

	log "layer 1: debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes)"
	if ! timeout "$DEBOOTSTRAP_TIMEOUT" debootstrap --variant=minbase \
		"$SUITE" "$root" "$MIRROR" >"$work_dir/debootstrap.log" 2>&1; then
		tail -n 20 "$work_dir/debootstrap.log" >&2 || true
		die "debootstrap of $SUITE from '$MIRROR' failed or timed out after ${DEBOOTSTRAP_TIMEOUT}s (log above)"
	fi

	# debootstrap copies the build host's resolv.conf and hostname into the
	# target. A container runtime supplies both, and the host's values do
	# not belong in an image.
	rm -f "$root/etc/resolv.conf" "$root/etc/hostname"

	# debootstrap also leaves the .deb files it installed (30 MiB for bookworm) in
	# apt's cache. They are removed here, as apt-get clean would. The
	# package lists stay, so that apt works in layer 1 as debootstrap left it.
	rm -f "$root"/var/cache/apt/archives/*.deb
}

create_empty_image() {
	local layout=$1

	timeout "$UMOCI_TIMEOUT" umoci init --layout "$layout"
	timeout "$UMOCI_TIMEOUT" umoci new --image "$layout:$TAG"
	timeout "$UMOCI_TIMEOUT" umoci config --image "$layout:$TAG" \
		--config.cmd /bin/sh --config.env "$IMAGE_PATH_ENV" \
		--history.created_by "umoci config --config.cmd /bin/sh --config.env $IMAGE_PATH_ENV"
}

pack_base_layer() {
	local layout=$1 bundle=$2 base=$3

	timeout "$UMOCI_TIMEOUT" umoci unpack --image "$layout:$TAG" "$bundle"

	# cp -a keeps owners, modes, timestamps, hardlinks, xattrs and device
	# nodes. The trailing /. also copies the attributes of the root itself.
	cp -a "$base/." "$bundle/rootfs/"
	rm -rf --one-file-system "$base"

	# --refresh-bundle records the packed state in the bundle, so the next
	# repack diffs against layer 1 and not against the empty image.
	log "layer 1: umoci repack"
	timeout "$UMOCI_TIMEOUT" umoci repack --refresh-bundle --image "$layout:$TAG" \
		--history.created_by "debootstrap --variant=minbase $SUITE $MIRROR" \
		"$bundle"
}

# Run apt-get with its arguments in a chroot of $1, with /proc mounted for
# the maintainer scripts and the host's resolv.conf for name lookups. Both
# are removed again before returning, also when apt-get fails, so neither
# ends up in layer 2.
apt_in_chroot() {
	local root=$1
	shift

	local status=0

	# set -e does not apply inside a function called from an if condition,
	# so every step checks its own status. The EXIT trap unmounts /proc if
	# this function is interrupted.
	cp /etc/resolv.conf "$root/etc/resolv.conf" || return 1
	mount -t proc proc "$root/proc" || return 1

	timeout "$APT_TIMEOUT" env -i DEBIAN_FRONTEND=noninteractive LC_ALL=C \
		"$IMAGE_PATH_ENV" chroot "$root" apt-get -q "$@" \
		>>"$work_dir/apt.log" 2>&1 || status=$?

	umount "$root/proc" || return 1
	rm -f "$root/etc/resolv.conf" || return 1
	return "$status"
}

pack_python_layer() {
	local layout=$1 bundle=$2
	local root=$bundle/rootfs

	log "layer 2: apt-get install --no-install-recommends python3 in a chroot"
	if ! apt_in_chroot "$root" update ||
		! apt_in_chroot "$root" install -y --no-install-recommends python3 ||
		! apt_in_chroot "$root" clean; then
		tail -n 20 "$work_dir/apt.log" >&2 || true
		die "apt-get in the chroot failed or timed out after ${APT_TIMEOUT}s (log above)"
	fi

	# The package lists are only needed to install. Layer 1 contains the
	# lists debootstrap downloaded, so deleting them here puts whiteouts
	# for files of layer 1 into layer 2.
	find "$root/var/lib/apt/lists" -mindepth 1 -maxdepth 1 ! -name partial \
		-exec rm -rf {} +

	log "layer 2: umoci repack"
	timeout "$UMOCI_TIMEOUT" umoci repack --image "$layout:$TAG" \
		--history.created_by "apt-get install --no-install-recommends python3" \
		"$bundle"
	timeout "$UMOCI_TIMEOUT" umoci gc --layout "$layout"
}

# Print each layer's media type, compressed and uncompressed size, and the
# number of whiteout entries in it.
print_layer_sizes() {
	local layout=$1 n=0 media_type digest size uncompressed whiteouts blob

	log "image $layout:$TAG"
	while read -r media_type digest size; do
		n=$((n + 1))
		blob=$layout/blobs/${digest/://}
		uncompressed=$(gzip -dc "$blob" | wc -c)
		whiteouts=$(tar -tzf "$blob" | grep -c -E '(^|/)\.wh\.' || true)
		printf '  layer %d: %s\n    %s\n    compressed %d bytes, uncompressed %d bytes, %d whiteouts\n' \
			"$n" "$digest" "$media_type" "$size" "$uncompressed" "$whiteouts"
	done < <(python3 - "$layout" "$TAG" <<'PY'
import json
import sys

layout, tag = sys.argv[1], sys.argv[2]
with open(f"{layout}/index.json") as f:
    index = json.load(f)
manifests = [m for m in index["manifests"]
             if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
if len(manifests) != 1:
    sys.exit(f"expected one manifest tagged '{tag}' in {layout}/index.json, found {len(manifests)}")
algorithm, hex_digest = manifests[0]["digest"].split(":", 1)
with open(f"{layout}/blobs/{algorithm}/{hex_digest}") as f:
    manifest = json.load(f)
for layer in manifest["layers"]:
    print(layer["mediaType"], layer["digest"], layer["size"])
PY
	)
}

main() {
	(($# == 1)) || die "usage: build-debian-image.sh OUTDIR"
	local out parent bundle

	check_tools
	out=$(realpath -m "$1")

	if contains_image "$out"; then
		log "'$out' already contains $TAG; not rebuilding (remove the directory to rebuild)"
		print_layer_sizes "$out"
		return 0
	fi
	if [[ -e $out ]]; then
		rmdir "$out" 2>/dev/null ||
			die "'$out' exists but does not contain the image $TAG; remove it or choose another OUTDIR"
	fi

	parent=$(dirname "$out")
	mkdir -p "$parent"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	# Both directories sit next to OUTDIR so that the final mv is a rename
	# on one filesystem.
	work_dir=$(mktemp -d "$parent/.imgmount-image-work.XXXXXX")
	stage_dir=$(mktemp -d "$parent/.imgmount-image-stage.XXXXXX")
	rmdir "$stage_dir"
	bundle=$work_dir/bundle

	build_base_tree "$work_dir/base"
	create_empty_image "$stage_dir"
	pack_base_layer "$stage_dir" "$bundle" "$work_dir/base"
	pack_python_layer "$stage_dir" "$bundle"

	mv -T "$stage_dir" "$out"
	stage_dir=
	print_layer_sizes "$out"
}

main "$@"
