#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Install, from Debian 12's archive, everything needed to build imgmount, run
# its tests and run scripts/demo.sh. Run as root. Running it again installs
# nothing new, because apt-get skips packages that are already installed.
set -eu

PACKAGES="
	build-essential meson ninja-build pkg-config clang
	libfuse3-dev fuse3
	libcurl4-openssl-dev libzstd-dev zstd libssl-dev libxxhash-dev
	libjson-c-dev zlib1g-dev
	docker-registry skopeo umoci debootstrap debian-archive-keyring
	attr libcap2-bin python3 curl ca-certificates
	apache2-utils nginx-light openssl
	containerd runc stargz-snapshotter fio iproute2 python3-matplotlib
"

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: must run as root, because it calls apt-get install; run: sudo $0" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# -qq drops the progress output but apt-get still prints every error.
if ! apt-get -qq update; then
	echo "install-deps.sh: apt-get update failed; check /etc/apt/sources.list and the network" >&2
	exit 1
fi

# --no-install-recommends keeps the install small. debian-archive-keyring
# is listed because it is only a recommendation of debootstrap, which needs
# it to verify the mirror's Release file. The tests use htpasswd from
# apache2-utils for docker-registry's bcrypt password file, and
# nginx-light as an HTTP/2 TLS front end. The last line is bench/run's:
# the peers it measures (containerd, runc, ctr-remote from
# stargz-snapshotter), fio, ip and tc, and matplotlib for its plots.
# shellcheck disable=SC2086 # PACKAGES is a word list on purpose
if ! apt-get -qq install -y --no-install-recommends $PACKAGES >/dev/null; then
	echo "install-deps.sh: apt-get install failed (its error is printed above); fix that and rerun this script" >&2
	exit 1
fi

echo "install-deps.sh: all build, test and demo packages are installed"
