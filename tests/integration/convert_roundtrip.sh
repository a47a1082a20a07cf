#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Round trip of `imgmount convert` through a real registry, checked with
# tools that know nothing of imgmount:
#  1. build an OCI layout with three layers (gzip, plain tar, zstd) that
#     hold every entry type, a whiteout, an opaque directory, pax long
#     names, nanosecond mtimes, an xattr and multi-chunk files;
#  2. push it with skopeo to a private docker-registry on 127.0.0.1;
#  3. run `imgmount convert` to another repository of that registry;
#  4. copy the result back with skopeo and check that every layer is
#     zstd:chunked (annotations, footer magic) and that `zstd -d` of each
#     layer hashes to the diff ID in the unchanged config;
#  5. unpack source and result with umoci and compare the two trees
#     (types, modes, owners, mtimes, link targets, contents, xattrs,
#     hard links).
#
# Usage: convert_roundtrip.sh PATH/TO/imgmount
# Exit status: 0 when every check passes, 1 on a failure, 77 (skipped) when
# a required tool is missing. Everything lives in one temporary directory
# that is removed on exit, together with the registry it started.

set -euo pipefail

imgmount=$(realpath "${1:?usage: convert_roundtrip.sh PATH/TO/imgmount}")

for tool in docker-registry skopeo umoci zstd curl python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "skip: $tool is not installed" >&2
		exit 77
	fi
done

work=$(mktemp -d /tmp/imgmount-convert-roundtrip-XXXXXX)
registry_pid=

cleanup() {
	if [[ -n $registry_pid ]]; then
		kill "$registry_pid" 2>/dev/null || true
		wait "$registry_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Start the registry on the given port and wait until GET /v2/ responds.
# Return 1 when it exits first (most likely the port was taken).
start_registry() {
	local port=$1

	cat >"$work/registry.yml" <<CONFIG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
CONFIG

	docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
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
	tail -n 20 "$work/registry.log" >&2
	fail "docker-registry on 127.0.0.1:$port did not respond to GET /v2/ within 30 s"
}

port=
for _ in 1 2 3 4 5; do
	candidate=$((20000 + RANDOM % 20000))
	if start_registry "$candidate"; then
		port=$candidate
		break
	fi
done
[[ -n $port ]] || fail "docker-registry did not start on 5 random ports; see $work/registry.log"
registry=127.0.0.1:$port

# --- 1. the source image --------------------------------------------------
python3 - "$work/src" <<'PYTHON'
import gzip, hashlib, io, json, os, subprocess, sys, tarfile

layout = sys.argv[1]
os.makedirs(os.path.join(layout, "blobs", "sha256"))

def store(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)

def add(t, name, kind=tarfile.REGTYPE, data=b"", **fields):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = fields.pop("mode", 0o644)
    info.mtime = fields.pop("mtime", 1644325033)
    for key, value in fields.items():
        setattr(info, key, value)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(info, io.BytesIO(data) if data else None)

def tar_bytes(build):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        build(t)
    return buf.getvalue()

def layer1(t):
    add(t, "etc/", tarfile.DIRTYPE, mode=0o755)
    add(t, "etc/hosts", data=b"127.0.0.1 localhost\n")
    add(t, "etc/motd", data=b"hello\n", mode=0o600, uid=1000, gid=1000)
    add(t, "usr/", tarfile.DIRTYPE, mode=0o755)
    add(t, "usr/big", data=os.urandom(300 * 1024) + b"tail")
    add(t, "usr/zeros", data=bytes(200 * 1024) + b"z")
    add(t, "usr/empty")
    add(t, "usr/link", tarfile.SYMTYPE, linkname="big", mode=0o777)
    add(t, "usr/hard", tarfile.LNKTYPE, linkname="usr/big")
    add(t, "usr/fifo", tarfile.FIFOTYPE)
    # Every directory is explicit: umoci gives implicit ones the current time.
    add(t, "usr/" + "long-directory-name-" * 6 + "/", tarfile.DIRTYPE, mode=0o755)
    add(t, "usr/" + "long-directory-name-" * 6 + "/" + "f" * 120, data=b"long\n")
    add(t, "usr/setuid", data=b"#!/bin/sh\n", mode=0o4755)
    add(t, "opaque/", tarfile.DIRTYPE, mode=0o755)
    add(t, "opaque/hidden", data=b"lower\n")

def layer2(t):
    add(t, "etc/.wh.hosts")
    add(t, "opaque/", tarfile.DIRTYPE, mode=0o755)
    add(t, "opaque/.wh..wh..opq")
    add(t, "opaque/upper", data=b"upper\n")
    info = tarfile.TarInfo("usr/nanoseconds")
    info.size = 3
    info.pax_headers = {"mtime": "1644325033.182744228",
                        "SCHILY.xattr.user.comment": "a\x00b"}
    t.addfile(info, io.BytesIO(b"ns\n"))

def layer3(t):
    add(t, "var/", tarfile.DIRTYPE, mode=0o755)
    add(t, "var/old", data=b"1969\n", mtime=-86400)
    add(t, "usr/big2", data=os.urandom(70 * 1024))

tars = [tar_bytes(layer1), tar_bytes(layer2), tar_bytes(layer3)]
zstd = subprocess.run(["zstd", "-q", "-c", "-19"], input=tars[2], stdout=subprocess.PIPE,
                      check=True).stdout
blobs = [(gzip.compress(tars[0]), "application/vnd.oci.image.layer.v1.tar+gzip"),
         (tars[1], "application/vnd.oci.image.layer.v1.tar"),
         (zstd, "application/vnd.oci.image.layer.v1.tar+zstd")]

config = {
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/bin:/bin"]},
    "rootfs": {"type": "layers",
               "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]},
}
config_digest, config_size = store(json.dumps(config).encode())
layers = []
for data, media_type in blobs:
    digest, size = store(data)
    layers.append({"mediaType": media_type, "digest": digest, "size": size})
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": config_digest, "size": config_size},
    "layers": layers,
}
manifest_digest, manifest_size = store(json.dumps(manifest).encode())
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": manifest_digest, "size": manifest_size,
         "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
PYTHON

# --- 2. push, 3. convert, 4. copy back ------------------------------------
timeout 300 skopeo copy --quiet --dest-tls-verify=false \
	"oci:$work/src:v1" "docker://$registry/src:v1" ||
	fail "skopeo could not push the source image"

status=0
timeout 300 "$imgmount" convert --chunk-size 64K "$registry/src:v1" "$registry/converted:v1" \
	>"$work/digest" 2>"$work/convert.log" || status=$?
if [[ $status != 0 ]]; then
	cat "$work/convert.log" >&2
	fail "imgmount convert exited with status $status"
fi
# A sanitizer build reports some errors without exiting.
if grep -Eq 'runtime error:|Sanitizer' "$work/convert.log"; then
	cat "$work/convert.log" >&2
	fail "imgmount convert printed a sanitizer report"
fi
grep -Eqx 'sha256:[0-9a-f]{64}' "$work/digest" ||
	fail "imgmount convert printed \"$(cat "$work/digest")\", not a manifest digest"

timeout 300 skopeo copy --quiet --src-tls-verify=false \
	"docker://$registry/converted:v1" "oci:$work/out:v1" ||
	fail "skopeo could not pull the converted image"

# Check the converted layers, then rewrite zstd layers as plain tar in both
# layouts, because umoci 0.4.7 (Debian 12) rejects tar+zstd layers.
python3 - "$work" "$(cat "$work/digest")" <<'PYTHON'
import hashlib, json, os, struct, subprocess, sys

work, printed_digest = sys.argv[1], sys.argv[2]
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
POSITION = "io.github.containers.zstd-chunked.manifest-position"
CHECKSUM = "io.github.containers.zstd-chunked.manifest-checksum"

def blob_path(layout, digest):
    return os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])

def read_json(layout, digest):
    with open(blob_path(layout, digest)) as f:
        return json.load(f)

def manifest_of(layout):
    with open(os.path.join(layout, "index.json")) as f:
        return json.load(f)["manifests"][0]

def fail(message):
    sys.exit("FAIL: " + message)

def store(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(layout, digest), "wb") as f:
        f.write(data)
    return digest, len(data)

def zstd_decompress(path):
    with open(path, "rb") as f:
        return subprocess.run(["zstd", "-q", "-d", "-c"], stdin=f, stdout=subprocess.PIPE,
                              check=True, timeout=300).stdout

def check_converted(layout, source):
    desc = manifest_of(layout)
    if desc["digest"] != printed_digest:
        fail(f"the registry holds manifest {desc['digest']}, convert printed {printed_digest}")
    manifest = read_json(layout, desc["digest"])
    src_manifest = read_json(source, manifest_of(source)["digest"])
    if manifest["config"]["digest"] != src_manifest["config"]["digest"]:
        fail("the config blob changed")
    diff_ids = read_json(layout, manifest["config"]["digest"])["rootfs"]["diff_ids"]
    if len(manifest["layers"]) != len(diff_ids):
        fail("layer count and diff ID count differ")

    for i, layer in enumerate(manifest["layers"]):
        if layer["mediaType"] != ZSTD_LAYER:
            fail(f"layer {i} has media type {layer['mediaType']}")
        notes = layer.get("annotations", {})
        if POSITION not in notes or CHECKSUM not in notes:
            fail(f"layer {i} lacks the zstd:chunked annotations: {notes}")
        with open(blob_path(layout, layer["digest"]), "rb") as f:
            blob = f.read()
        if blob[-8:] != b"GNUlInUx":
            fail(f"layer {i} does not end with the zstd:chunked footer magic")
        offset, length, uncompressed, kind = map(int, notes[POSITION].split(":"))
        footer = struct.unpack("<7Q", blob[-64:-8])
        if footer[:4] != (offset, length, uncompressed, 1):
            fail(f"layer {i}: footer {footer[:4]} and annotation {notes[POSITION]} differ")
        toc = blob[offset:offset + length]
        if "sha256:" + hashlib.sha256(toc).hexdigest() != notes[CHECKSUM]:
            fail(f"layer {i}: the TOC does not match its checksum annotation")
        tar = zstd_decompress(blob_path(layout, layer["digest"]))
        if "sha256:" + hashlib.sha256(tar).hexdigest() != diff_ids[i]:
            fail(f"layer {i}: zstd -d output does not hash to diff ID {diff_ids[i]}")
        print(f"layer {i}: {len(blob)} bytes, zstd -d gives diff ID {diff_ids[i]}")

def rewrite_zstd_layers(layout):
    """Replace tar+zstd layers by their decompressed tar in a new manifest."""
    desc = manifest_of(layout)
    manifest = read_json(layout, desc["digest"])
    for layer in manifest["layers"]:
        if layer["mediaType"].endswith("+zstd"):
            digest, size = store(layout, zstd_decompress(blob_path(layout, layer["digest"])))
            layer.update({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                          "digest": digest, "size": size})
            layer.pop("annotations", None)
    digest, size = store(layout, json.dumps(manifest).encode())
    desc.update({"digest": digest, "size": size})
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [desc]}, f)

check_converted(os.path.join(work, "out"), os.path.join(work, "src"))
rewrite_zstd_layers(os.path.join(work, "src"))
rewrite_zstd_layers(os.path.join(work, "out"))
PYTHON

# --- 5. unpack both and compare --------------------------------------------
for side in src out; do
	timeout 300 umoci unpack --image "$work/$side:v1" "$work/$side-bundle" \
		>"$work/umoci-$side.log" 2>&1 || {
		cat "$work/umoci-$side.log" >&2
		fail "umoci could not unpack the $side image"
	}
done

python3 - "$work/src-bundle/rootfs" "$work/out-bundle/rootfs" <<'PYTHON'
import hashlib, os, stat, sys

def describe(root):
    tree, inodes = {}, {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            entry = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                     st.st_gid, st.st_mtime_ns]
            if stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    entry.append(hashlib.sha256(f.read()).hexdigest())
                inodes.setdefault(st.st_ino, []).append(rel)
            try:
                entry.append(sorted((k, os.getxattr(path, k, follow_symlinks=False))
                                    for k in os.listxattr(path, follow_symlinks=False)))
            except OSError:
                entry.append("no xattrs")
            tree[rel] = entry
    links = sorted(sorted(paths) for paths in inodes.values() if len(paths) > 1)
    return tree, links

src_tree, src_links = describe(sys.argv[1])
out_tree, out_links = describe(sys.argv[2])
problems = []
for path in sorted(set(src_tree) | set(out_tree)):
    if src_tree.get(path) != out_tree.get(path):
        problems.append(f"{path}: source {src_tree.get(path)}, converted {out_tree.get(path)}")
if src_links != out_links:
    problems.append(f"hard links: source {src_links}, converted {out_links}")
for expected in ("usr/big", "usr/nanoseconds", "opaque/upper", "var/old"):
    if expected not in src_tree:
        problems.append(f"{expected} is missing from the unpacked source")
nanoseconds = src_tree.get("usr/nanoseconds", [None] * 7)
if nanoseconds[4] != 1644325033182744228:
    problems.append(f"usr/nanoseconds has mtime {nanoseconds[4]} ns in the unpacked source")
if nanoseconds[6] not in ([("user.comment", b"a\x00b")], "no xattrs"):
    problems.append(f"usr/nanoseconds has xattrs {nanoseconds[6]} in the unpacked source")
for gone in ("etc/hosts", "opaque/hidden"):
    if gone in src_tree:
        problems.append(f"{gone} should have been removed by a whiteout")
if problems:
    sys.exit("FAIL: unpacked trees differ:\n  " + "\n  ".join(problems))
print(f"unpacked trees match: {len(src_tree)} entries, {len(src_links)} hard link groups, "
      f"xattrs of usr/nanoseconds: {nanoseconds[6]}")
PYTHON

echo "convert round trip: ok"
