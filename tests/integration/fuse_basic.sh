#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Mount the fixed image of tests/unit/mount_local.c (no registry, every file
# is zeros), and check the FUSE view with ordinary tools: ls, stat, getfattr,
# readlink, df, cmp.
#
# Then check the daemon's life cycle. `fusermount3 -u` ends it with status
# 0, and SIGTERM unmounts and exits 0. After SIGKILL the dead mount fails
# with ENOTCONN instead of hanging. A detached daemon is mounted by the time
# its starting command returns.
#
# Usage: fuse_basic.sh PATH_TO_MOUNT_LOCAL
# Needs root (or fusermount3), /dev/fuse, getfattr (package attr).
# Exit status: 0 all passed, 1 a check failed, 77 skipped (no FUSE).

set -u
export LC_ALL=C

mount_local=$1

if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "SKIP: /dev/fuse or fusermount3 is missing"
	exit 77
fi
if ! command -v getfattr >/dev/null; then
	echo "SKIP: getfattr is missing (install the attr package)"
	exit 77
fi

tmp=$(mktemp -d /tmp/imgmount-fuse-basic.XXXXXX)
mnt=$tmp/mnt
cache=$tmp/cache
log=$tmp/daemon.log
mkdir -p "$mnt" "$cache"
pid=
detached_pid=
failures=0

is_mounted() {
	awk -v m="$mnt" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

cleanup() {
	if is_mounted; then
		fusermount3 -u -z "$mnt"
	fi
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		wait "$pid"
	fi
	if [ -n "$detached_pid" ] && kill -0 "$detached_pid" 2>/dev/null; then
		kill -KILL "$detached_pid"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

check() {
	local name=$1 expected=$2 actual=$3

	if [ "$expected" = "$actual" ]; then
		echo "ok   $name"
	else
		echo "FAIL $name"
		echo "     expected: $(printf '%q' "$expected")"
		echo "     actual:   $(printf '%q' "$actual")"
		failures=$((failures + 1))
	fi
}

# Commands on the mount get a timeout, so a hung daemon fails the test.
on_mount() {
	(cd "$mnt" && timeout 20 "$@" 2>&1)
}

start_daemon() {
	"$mount_local" "$mnt" "$cache" >>"$log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		if is_mounted; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "FAIL the daemon did not mount $mnt within 10 s; its log:"
	cat "$log"
	exit 1
}

# Wait up to 20 s for the daemon to exit, and set exit_status to its status.
wait_daemon() {
	timeout 20 tail --pid="$pid" -f /dev/null
	wait "$pid"
	exit_status=$?
	pid=
}

check_tree() {
	check "mount type and source" "fuse.imgmount mount_local,test" \
		"$(awk -v m="$mnt" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") print $(i + 1), $(i + 2) }' /proc/self/mountinfo)"
	check "root lists no whiteouts" \
		"a big.bin d dev empty etc f1 f2 long many run srv tmp usr zeros.bin" \
		"$(on_mount ls -A | tr '\n' ' ' | sed 's/ $//')"
	check "whited-out name is absent" "stat: cannot statx 'changelog.txt': No such file or directory" \
		"$(on_mount stat changelog.txt)"
	check "missing name fails again (negative entry)" \
		"stat: cannot statx 'changelog.txt': No such file or directory" "$(on_mount stat changelog.txt)"
}

check_opaque() {
	check "opaque directory is empty" "" "$(on_mount ls -A a)"
	check "opaque directory attributes" "drwx------ 1000 1000 2" "$(on_mount stat -c '%A %u %g %h' a)"
	check "opaque directory shows no overlay xattrs" "" "$(on_mount getfattr -d -m - a)"
	check "overlay xattr reads as missing" "a: trusted.overlay.opaque: No such attribute" \
		"$(on_mount getfattr -n trusted.overlay.opaque a)"
}

check_xattrs() {
	check "xattrs are the binary values exactly" \
		"security.capability=0x0000000200200000000000000000000000000000
user.note=0x613d622c63" \
		"$(on_mount getfattr -d -m - -e hex usr/bin/ping | grep -v -e '^#' -e '^$')"
	check "xattr value length" "20" \
		"$(on_mount getfattr -n security.capability --only-values usr/bin/ping | wc -c)"
	check "missing xattr" "usr/bin/ping: user.missing: No such attribute" \
		"$(on_mount getfattr -n user.missing usr/bin/ping)"
	check "setxattr fails read-only" "setfattr: usr/bin/ping: Read-only file system" \
		"$(on_mount setfattr -n user.x -v 1 usr/bin/ping)"

	# The size-probe protocol, which getfattr hides: size 0 returns the
	# length, a short buffer fails with ERANGE (34).
	if command -v python3 >/dev/null; then
		check "xattr size probe and ERANGE" "5 -34 5 30 -34" \
			"$(timeout 20 python3 - "$mnt/usr/bin/ping" <<'EOF'
import ctypes
import sys

libc = ctypes.CDLL(None, use_errno=True)
path = sys.argv[1].encode()


def result(r):
    return r if r >= 0 else -ctypes.get_errno()


def get(name, size):
    buf = ctypes.create_string_buffer(size) if size else None
    return result(libc.getxattr(path, name, buf, ctypes.c_size_t(size)))


def names(size):
    buf = ctypes.create_string_buffer(size) if size else None
    return result(libc.listxattr(path, buf, ctypes.c_size_t(size)))


print(get(b"user.note", 0), get(b"user.note", 4), get(b"user.note", 5),
      names(0), names(5))
EOF
)"
	fi
}

check_special_files() {
	check "character device" "character special file 1:3 666" "$(on_mount stat -c '%F %t:%T %a' dev/null)"
	check "block device" "block special file 8:0 660 6" "$(on_mount stat -c '%F %t:%T %a %g' dev/sda)"
	check "0/0 device is an ordinary entry" "character special file 0:0 0" \
		"$(on_mount stat -c '%F %t:%T %a' dev/wh)"
	check "large minor number" "block special file 103:10000" "$(on_mount stat -c '%F %t:%T' dev/big)"
	check "fifo" "fifo 620" "$(on_mount stat -c '%F %a' run/ctl)"
	check "setuid, setgid and sticky bits" "---s--x--x drwxrwxrwt drwxrwsr-t" \
		"$(on_mount stat -c '%A' usr/bin/sudo tmp srv | tr '\n' ' ' | sed 's/ $//')"
}

check_links() {
	local x

	x=$(on_mount stat -c '%i %h' usr/bin/x)
	check "hardlink count" "3" "${x#* }"
	check "hardlinks share the inode" "$x
$x
$x" "$(on_mount stat -c '%i %h' usr/bin/x usr/bin/y usr/bin/z)"
	check "find -samefile" "./usr/bin/x ./usr/bin/y ./usr/bin/z" \
		"$(on_mount find . -samefile usr/bin/x | sort | tr '\n' ' ' | sed 's/ $//')"
	check "symlink sizes are target lengths" "13 255" \
		"$(on_mount stat -c '%s' usr/lib/libpq.so long | tr '\n' ' ' | sed 's/ $//')"
	check "readlink" "libpq.so.5.13" "$(on_mount readlink usr/lib/libpq.so)"
	check "directory link count" "4" "$(on_mount stat -c '%h' d)"
	check "root link count" "11" "$(on_mount stat -c '%h' .)"
	check "find sees the directories" "3" "$(on_mount find d -type d | wc -l)"
}

check_times() {
	check "sub-second and pre-1970 mtimes" \
		"2022-02-08 12:57:13.182744228 +0000
1901-12-24 00:00:00.000000000 +0000
1970-01-01 00:00:00.000000000 +0000" \
		"$(cd "$mnt" && TZ=UTC timeout 20 stat -c '%y' f1 f2 dev 2>&1)"
}

check_data() {
	check "empty file" "0" "$(on_mount cat empty | wc -c)"
	check "file across zero chunks" "" \
		"$(on_mount sh -c 'head -c 1048581 /dev/zero | cmp - zeros.bin')"
	# 1000 bytes, of which none is left once the zero bytes are removed.
	check "read across a chunk boundary" "1000 0" \
		"$(on_mount dd if=zeros.bin bs=1000 skip=65 count=1 status=none | wc -c) $(on_mount dd if=zeros.bin bs=1000 skip=65 count=1 status=none | tr -d '\0' | wc -c)"
	check "8 GiB file size" "8589934592" "$(on_mount stat -c '%s' big.bin)"
	check "last byte of the 8 GiB file" " 00" \
		"$(on_mount dd if=big.bin bs=1 skip=8589934591 count=1 status=none | od -An -tx1)"
	check "read past the end" "0" \
		"$(on_mount dd if=zeros.bin bs=4096 skip=1000 count=1 status=none | wc -c)"
}

check_dirs() {
	check "many entries listed" "2000" "$(on_mount ls many | wc -l)"
	check "readdir returns each entry once" "2002" "$(on_mount ls -f many | sort -u | wc -l)"
	check "readdir order" ". .. f0000 f1999" \
		"$(on_mount ls -f many | sed -n '1p;2p;3p;$p' | tr '\n' ' ' | sed 's/ $//')"
}

check_statfs() {
	local total files

	total=$(cd "$mnt" && timeout 60 find . -type f -printf '%i %s\n' | sort -u | awk '{ s += $2 } END { printf "%d\n", s }')
	files=$(cd "$mnt" && timeout 60 find . -printf '%i\n' | sort -u | wc -l)
	read -r bsize blocks bfree bavail nfiles ffree namemax < <(on_mount stat -f -c '%S %b %f %a %c %d %l' .)
	check "statfs block size" "4096" "$bsize"
	check "statfs blocks cover the files" "yes" "$([ $((blocks * 4096)) -ge "$total" ] && echo yes)"
	check "statfs inodes cover the entries" "yes" "$([ "$nfiles" -ge "$files" ] && echo yes)"
	check "statfs free counts" "0 0 0" "$bfree $bavail $ffree"
	check "statfs name length" "255" "$namemax"
	check "df lists the mount" "0" "$(on_mount df -P . >/dev/null; echo $?)"
}

check_read_only() {
	check "create fails read-only" "touch: cannot touch 'new': Read-only file system" \
		"$(on_mount touch new)"
	check "write fails read-only" "sh: 1: cannot create etc/hostname: Read-only file system" \
		"$(on_mount sh -c ': > etc/hostname')"
	check "mkdir fails read-only" "mkdir: cannot create directory 'x': Read-only file system" \
		"$(on_mount mkdir x)"
	check "unlink fails read-only" "rm: cannot remove 'empty': Read-only file system" \
		"$(on_mount rm -f empty)"
}

check_parallel_stat() {
	local expected jobs=()

	expected=$(on_mount stat -c '%i %h' usr/bin/x)
	for i in $(seq 200); do
		(cd "$mnt" && timeout 20 stat -c '%i %h' usr/bin/y >"$tmp/stat.$i") &
		jobs+=($!)
	done
	# Only these jobs: a bare `wait` would also wait for the daemon.
	wait "${jobs[@]}"
	check "parallel stat agrees" "$expected" "$(sort -u "$tmp"/stat.*)"
}

inode_listing() {
	(cd "$mnt" && timeout 60 find . -printf '%P %i %n\n' | sort)
}

# Mount 1: the tree, then an unmount from outside ends the daemon.
start_daemon
check_tree
check_opaque
check_xattrs
check_special_files
check_links
check_times
check_data
check_dirs
check_statfs
check_read_only
check_parallel_stat
inode_listing >"$tmp/inodes.1"
fusermount3 -u "$mnt"
wait_daemon
check "fusermount3 -u ends the daemon with status 0" "0" "$exit_status"
check "unmounted after fusermount3 -u" "no" "$(is_mounted && echo yes || echo no)"

# Mount 2: the same inode numbers, then SIGTERM unmounts cleanly.
start_daemon
check "inode numbers stable across mounts" "" "$(inode_listing | diff "$tmp/inodes.1" -)"
kill -TERM "$pid"
wait_daemon
check "SIGTERM exits with status 0" "0" "$exit_status"
check "unmounted after SIGTERM" "no" "$(is_mounted && echo yes || echo no)"

# Mount 3: after SIGKILL the mount is dead and fails fast with ENOTCONN.
start_daemon
{
	kill -KILL "$pid"
	wait "$pid"
} 2>/dev/null
pid=
check "dead mount fails with ENOTCONN" \
	"stat: cannot statx '$mnt': Transport endpoint is not connected" \
	"$(timeout 5 stat "$mnt" 2>&1)"
fusermount3 -u -z "$mnt"
check "dead mount removed lazily" "no" "$(is_mounted && echo yes || echo no)"

# Mount 4: detached, the way `imgmount mount` runs. The starting command
# returns only once the mount is visible, and an unmount ends the daemon.
timeout 20 "$mount_local" "$mnt" "$cache" -b >>"$log" 2>&1
check "detaching start exits with status 0" "0" "$?"
check "mounted when the starting command returns" "yes" "$(is_mounted && echo yes || echo no)"
for proc in /proc/[0-9]*; do
	if [ "$(tr '\0' ' ' 2>/dev/null <"$proc/cmdline")" = "$mount_local $mnt $cache -b " ]; then
		detached_pid=${proc#/proc/}
	fi
done
check "detached daemon found" "yes" "$([ -n "$detached_pid" ] && echo yes)"
check "detached daemon serves" "libpq.so.5.13" "$(on_mount readlink usr/lib/libpq.so)"
fusermount3 -u "$mnt"
if [ -n "$detached_pid" ]; then
	timeout 20 tail --pid="$detached_pid" -f /dev/null
	check "detached daemon exits after the unmount" "no" \
		"$(kill -0 "$detached_pid" 2>/dev/null && echo yes || echo no)"
fi

check "daemon log has no errors or sanitizer reports" "" \
	"$(grep -E 'imgmount: error|AddressSanitizer|LeakSanitizer|runtime error' "$log")"

if [ "$failures" -gt 0 ]; then
	echo "$failures checks failed; daemon log:"
	cat "$log"
	exit 1
fi
echo "all checks passed"
