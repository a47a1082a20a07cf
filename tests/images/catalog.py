# SPDX-License-Identifier: Apache-2.0
"""The test images: each is a list of layers, bottom first, built in memory.

Every image exercises one union rule or one tar encoding that real layer
appliers or lazy filesystems have got wrong. The expected result for each is
asserted in tests/integration/test_layer_rules.py. The docstring of each
builder describes the image and the rule it tests.

Unless an entry sets other values, directories are 0755, files 0644, owner
0:0, and the mtime is MTIME, so a mount that loses an mtime shows up as a
difference from the reference unpack instead of matching a default of 0.
"""

import dataclasses
import hashlib
import random

from .tarwriter import TarBuilder

MTIME = 1700000000  # 2023-11-14 22:13:20 UTC

# The 20-byte security.capability value of `setcap cap_net_raw=p`:
# VFS_CAP_REVISION_2 without the effective bit, permitted bit 13
# (CAP_NET_RAW), no inheritable bits, and a zero second word.
CAP_NET_RAW_P = bytes.fromhex("00000002" "00200000" "00000000"
                              "00000000" "00000000")

# Size of the sparse test file and its only data; the rest is holes.
SPARSE_SIZE = 10 * 1024 * 1024
SPARSE_OFFSET = 5000000
SPARSE_DATA = b"toto"

# The big-file image: 8 GiB of zeros whose last byte is "z".
BIG_FILE_SIZE = 8 * 1024 * 1024 * 1024


@dataclasses.dataclass
class Layer:
    """One layer: its uncompressed tar stream and an optional fixed compression.

    tar is bytes, or a callable returning an iterable of bytes pieces for a
    stream too large for memory. compression overrides the image variant's
    compression for this layer ("gzip", "zstd" or "tar"). raw_blob, when not
    None, is stored as the blob exactly (an empty layer as a 0-byte blob).
    """

    tar: object = b""
    compression: str = None
    raw_blob: bytes = None

    def pieces(self):
        if callable(self.tar):
            return self.tar()
        return [self.tar]


@dataclasses.dataclass
class ImageSpec:
    name: str
    build: object          # callable returning the list of Layer
    compressions: tuple = ("gzip", "zstd", "tar")
    slow: bool = False

    def layers(self):
        return self.build()


IMAGES = {}


def image(name, compressions=("gzip", "zstd", "tar"), slow=False):
    """Register a layer builder under name."""
    def register(build):
        IMAGES[name] = ImageSpec(name, build, compressions, slow)
        return build
    return register


def tar():
    return TarBuilder(default_mtime=MTIME)


def layer(builder, compression=None):
    return Layer(builder.bytes(), compression)


def random_bytes(size, seed):
    return random.Random(seed).randbytes(size)


@image("whiteout-one-path")
def whiteout_one_path():
    """A root whiteout .wh.test removes /test but not /sub/test."""
    lower = tar()
    lower.dir("root/")
    lower.reg("test", "top\n")
    lower.dir("sub/")
    lower.reg("sub/test", "inner\n")
    upper = tar()
    upper.reg(".wh.test", mode=0o000)
    return [layer(lower), layer(upper)]


@image("opaque-subtree")
def opaque_subtree():
    """An opaque marker hides a/b and everything below it; a/ itself stays."""
    lower = tar()
    lower.dir("a/")
    lower.dir("a/b/")
    lower.reg("a/b/foo", "old")
    lower.dir("a/b/__pycache__/")
    lower.reg("a/b/__pycache__/x.pyc", "old")
    upper = tar()
    upper.dir("a/", mode=0o700, uid=1000, gid=1000)
    upper.reg("a/.wh..wh..opq", mode=0o000)
    return [layer(lower), layer(upper)]


@image("opaque-after-children")
def opaque_after_children():
    """Opaque markers listed after new children of the same layer keep them."""
    lower = tar()
    lower.dir("app/")
    lower.reg("app/old.txt", "old")
    lower.dir("usr/")
    lower.dir("usr/share/")
    lower.dir("usr/share/doc/")
    lower.dir("usr/share/doc/curl/")
    lower.reg("usr/share/doc/curl/README", "r")
    upper = tar()
    upper.dir("app/")
    upper.reg("app/TestFile.txt", "new")
    upper.reg("app/.wh..wh..opq")
    upper.dir("usr/share/doc/curl/")
    upper.sym("usr/share/doc/curl/copyright", "../libcurl4/copyright")
    upper.reg("usr/share/doc/curl/.wh..wh..opq")
    return [layer(lower), layer(upper)]


@image("whiteout-inside-whited-dir")
def whiteout_inside_whited_dir():
    """One layer whites out test and test/test; nothing may come back."""
    lower = tar()
    lower.dir("test/")
    lower.reg("test/test", "hi")
    upper = tar()
    upper.dir("./")
    upper.reg(".wh.test")
    upper.reg("test/.wh.test")
    return [layer(lower), layer(upper)]


@image("bare-whiteout")
def bare_whiteout():
    """Whiteouts with an empty basename (".wh.") must reject the image."""
    lower = tar()
    lower.dir("etc/")
    lower.reg("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
    upper = tar()
    upper.reg("etc/.wh.")
    upper.reg(".wh.")
    upper.reg("etc/config.txt", "c")
    return [layer(lower), layer(upper)]


@image("opaque-near-miss")
def opaque_near_miss():
    """.wh..wh.opq (one dot) is an ordinary whiteout of .wh.opq, not opaque."""
    lower = tar()
    lower.dir("d1/")
    lower.reg("d1/keep", "k")
    lower.dir("d2/")
    lower.reg("d2/gone", "g")
    upper = tar()
    upper.reg("d1/.wh..wh.opq")
    upper.reg("d2/.wh..wh..opq")
    return [layer(lower), layer(upper)]


@image("whiteout-hardlinks")
def whiteout_hardlinks():
    """A whiteout stored as a hardlink to another whiteout is still a whiteout."""
    lower = tar()
    for path in ("var/", "var/lib/", "var/lib/apt/", "var/lib/apt/lists/"):
        lower.dir(path)
    lower.reg("var/lib/apt/lists/a", "A")
    lower.hard("var/lib/apt/lists/b", "var/lib/apt/lists/a")
    upper = tar()
    upper.reg("var/lib/apt/lists/.wh.a", mode=0o000)
    upper.hard("var/lib/apt/lists/.wh.b", "var/lib/apt/lists/.wh.a")
    return [layer(lower), layer(upper)]


@image("hardlink-alias-replaced")
def hardlink_alias_replaced():
    """t1, t2, t3 share an inode until a later layer replaces t1 alone."""
    first = tar()
    first.reg("t2", "123\n")
    second = tar()
    second.reg("t1", "123\n")
    second.hard("t2", "t1")
    second.hard("t3", "t1")
    third = tar()
    third.reg("t1", "456\n")
    return [layer(first), layer(second), layer(third)]


@image("hardlink-to-symlink")
def hardlink_to_symlink():
    """A hardlink to a symlink shares the symlink's inode; it is not followed."""
    lower = tar()
    lower.dir("tmp/")
    lower.reg("tmp/zzz", "z")
    lower.sym("tmp/xxx", "/tmp/zzz")
    lower.hard("tmp/yyy", "tmp/xxx")
    return [layer(lower)]


@image("implied-parents")
def implied_parents():
    """Files and hardlinks whose parent directories have no tar entry."""
    lower = tar()
    lower.reg("bin/app.repo_mapping", "m", mode=0o755)
    lower.reg("bin/app", "ELF", mode=0o755)
    lower.reg("bin/app.runfiles/_main/main.go", "go", mode=0o755)
    lower.hard("bin/app.runfiles/_repo_mapping", "bin/app.repo_mapping")
    lower.hard("bin/app.runfiles/_main/app_/app", "bin/app")
    return [layer(lower)]


@image("duplicate-entries")
def duplicate_entries():
    """Repeated entries in one layer: the later one wins, dirs merge."""
    lower = tar()
    lower.dir("usr/")
    lower.dir("usr/lib/")
    lower.dir("usr/lib/gcc/")
    lower.reg("etc/conf", "v1")
    lower.dir("usr/lib/gcc/", mode=0o2755)
    lower.reg("etc/conf", "v2-longer")
    lower.reg("x/y", "file")
    lower.dir("x/y/")
    lower.reg("x/y/z", "dir-child")
    return [layer(lower)]


@image("symlink-replaced-by-file")
def symlink_replaced_by_file():
    """A regular file replaces a lower symlink; it is not written through it."""
    lower = tar()
    lower.dir("bin/")
    lower.reg("bin/busybox", "BUSYBOX", mode=0o755)
    lower.dir("usr/")
    lower.dir("usr/bin/")
    lower.sym("usr/bin/env", "/bin/busybox")
    lower.sym("bin/systemd", "/lib/systemd/systemd")
    upper = tar()
    upper.reg("usr/bin/env", "COREUTILS-ENV", mode=0o755)
    upper.sym("bin/systemd", "/usr/lib/systemd/systemd")
    return [layer(lower), layer(upper)]


@image("path-spellings")
def path_spellings():
    """Names with ./, a leading /, //, .., and entries for the root itself."""
    lower = tar()
    lower.dir("./", mode=0o755)
    lower.dir("./etc/")
    lower.reg("./etc/passwd", "p1")
    lower.reg("./etc/group", "g1")
    lower.reg("/etc/hostname", "h")
    lower.reg("etc//motd", "m")
    upper = tar()
    upper.dir("./", mode=0o700)
    upper.reg("./etc/.wh.passwd")
    upper.reg("../escape", "e")
    upper.reg("etc/../../escape2", "e2")
    return [layer(lower), layer(upper)]


@image("symlink-parents")
def symlink_parents():
    """Parent components resolve through symlinks, confined to the image root."""
    lower = tar()
    lower.dir("etc/")
    lower.sym("pwn", "/etc")
    lower.sym("up", "../../../../tmp")
    lower.sym("rel", "etc")
    lower.dir("usr/")
    lower.dir("usr/lib/")
    lower.sym("lib", "usr/lib")
    lower.sym("chain", "lib")
    upper = tar()
    upper.reg("pwn/evil.conf", "E")
    upper.reg("up/evil2", "E2")
    upper.reg("rel/via-relative", "R")
    upper.reg("chain/via-chain.so", "C")
    return [layer(lower), layer(upper)]


@image("xattrs")
def xattrs():
    """SCHILY.xattr records are xattrs; other PAX records are not."""
    lower = tar()
    lower.dir("usr/")
    lower.dir("usr/bin/")
    lower.reg("usr/bin/ping", "PING", mode=0o755, mtime="1700000000.5",
              xattrs={"security.capability": CAP_NET_RAW_P,
                      "user.note": b"a=b,c"},
              pax={"path": "usr/bin/ping",
                   "LIBARCHIVE.xattr.user.other": "dmFs",
                   "SCHILY.fflags": "nodump"})
    lower.dir("data/", xattrs={"user.dir-attr": b"\x00\x01\x02\xff"})
    return [layer(lower)]


@image("xattr-empty-value")
def xattr_empty_value():
    """An SCHILY.xattr record with an empty value, next to a non-empty one.

    POSIX pax defines a record with an empty value as deleting the keyword,
    so the file has no user.empty xattr. Go's archive/tar, which containerd
    and umoci use, reads it that way.
    """
    lower = tar()
    lower.reg("empty-value", "e", xattrs={"user.empty": b"", "user.kept": b"v"})
    return [layer(lower)]


@image("mode-bits-and-owners")
def mode_bits_and_owners():
    """setuid, setgid and sticky bits, and owners other than root."""
    lower = tar()
    lower.dir("usr/")
    lower.dir("usr/bin/")
    lower.reg("usr/bin/sudo", "SUDO", mode=0o4111)
    lower.reg("usr/bin/wall", "WALL", mode=0o2755, gid=5)
    lower.dir("tmp/", mode=0o1777)
    lower.dir("srv/", mode=0o3775, gid=100)
    lower.dir("home/")
    lower.dir("home/user/", mode=0o700, uid=1000, gid=1000)
    lower.reg("home/user/notes", "n", mode=0o600, uid=1000, gid=1000)
    lower.reg("nobody-file", "x", uid=65534, gid=65534)
    lower.reg("big-ids", "x", uid=1000000, gid=2000000)
    lower.reg("no-perms", "x", mode=0o000)
    return [layer(lower)]


@image("size-encodings")
def size_encodings():
    """Sizes in a GNU base-256 field and in a PAX record over a ustar 0."""
    lower = tar()
    lower.reg("base256.bin", random_bytes(3000, 256), size_encoding="base256")
    lower.reg("pax-size.bin", random_bytes(5000, 5000), size_encoding="pax")
    lower.reg("after.txt", "after")
    return [layer(lower)]


def _long_names():
    return {
        "gnu": "d/" + "a" * 60 + "/" + "b" * 60 + "/" + "c" * 60 + "/" + "f" * 100,
        "prefix": "u/" + "p" * 150 + "/" + "n" * 77,
        "exact512": "g/" + "y" * 200 + "/" + "z" * 200 + "/" + "w" * 108,
        "symlink_target": "/" + "/".join(["t" * 49] * 4) + "/" + "e" * 3,
    }


LONG_NAMES = _long_names()


@image("long-names")
def long_names():
    """GNU L and K blocks, PAX path and linkpath, ustar prefix, 512-byte names."""
    names = LONG_NAMES
    lower = tar()
    lower.reg(names["gnu"], "gnu long name", long_name="gnu")
    lower.sym("long-target", names["symlink_target"], long_link="gnu")
    lower.reg(names["prefix"], "ustar prefix", long_name="prefix")
    lower.reg("short-name", "pax path", pax={"path": "pax/overridden-name.txt"})
    lower.reg(names["exact512"], "512 bytes", long_name="gnu")
    lower.hard("hardlink-to-long", names["gnu"], long_link="pax")
    return [layer(lower)]


@image("sparse-pax")
def sparse_pax():
    """A GNU PAX 1.0 sparse file, as `tar --posix --sparse` writes it."""
    lower = tar()
    lower.pax_sparse("sparse.bin", SPARSE_SIZE, [(SPARSE_OFFSET, SPARSE_DATA)],
                     mtime=MTIME)
    lower.reg("after.txt", "after")
    return [layer(lower)]


@image("sparse-gnu")
def sparse_gnu():
    """An old-GNU type 'S' sparse file."""
    lower = tar()
    lower.gnu_sparse("sparse.bin", SPARSE_SIZE,
                     [(SPARSE_OFFSET, SPARSE_DATA), (SPARSE_SIZE, b"")],
                     mtime=MTIME)
    lower.reg("after.txt", "after")
    return [layer(lower)]


def sparse_dense_sha256():
    data = bytearray(SPARSE_SIZE)
    data[SPARSE_OFFSET:SPARSE_OFFSET + len(SPARSE_DATA)] = SPARSE_DATA
    return hashlib.sha256(data).hexdigest()


@image("empty-layers")
def empty_layers():
    """Empty layers: gzip of 1024 and 10240 zero bytes, a 0-byte blob, zstd."""
    first = tar()
    first.reg("hello", "hi")
    last = tar()
    last.reg("empty", "")
    last.dir("emptydir/")
    return [
        layer(first),
        Layer(bytes(1024), "gzip"),
        Layer(bytes(10240), "gzip"),
        Layer(b"", "tar", raw_blob=b""),
        Layer(bytes(1024), "zstd"),
        layer(last),
    ]


@image("devices")
def devices():
    """Character and block devices, a FIFO, and a 0/0 char device."""
    lower = tar()
    lower.dir("dev/")
    lower.chr("dev/null", 1, 3, mode=0o666)
    lower.blk("dev/sda", 8, 0, mode=0o660, gid=6)
    lower.dir("run/")
    lower.fifo("run/ctl", mode=0o620)
    lower.chr("dev/wh", 0, 0, mode=0o000)
    # A minor above 255 and a major above 255 catch a wrong makedev().
    lower.chr("dev/wide", 300, 1048575, mode=0o600)
    return [layer(lower)]


@image("timestamps")
def timestamps():
    """Fractional, negative and zero mtimes; a dir mtime not bumped by a child."""
    lower = tar()
    lower.reg("f1", "1", mtime="1644325033.182744228")
    lower.reg("f2", "2", mtime=-2146608000)
    lower.reg("f3", "3", mtime=0)
    lower.dir("d/", mtime=1600000000)
    lower.reg("d/x", "x", mtime=1700000000)
    lower.sym("link", "f1", mtime=1500000000)
    return [layer(lower)]


@image("whiteouts-hidden")
def whiteouts_hidden():
    """Whiteouts in the only layer delete nothing but are never visible."""
    lower = tar()
    lower.dir("root/")
    lower.reg("root/.wh..wh..opq")
    lower.reg(".wh.changelog.txt")
    lower.reg("keep", "k")
    return [layer(lower)]


@image("deleted-in-upper")
def deleted_in_upper():
    """A file deleted by the upper layer (served out of order by a proxy)."""
    lower = tar()
    lower.reg("this-will-be-deleted", "x")
    lower.reg("stays", "s")
    upper = tar()
    upper.reg(".wh.this-will-be-deleted")
    return [layer(lower), layer(upper)]


@image("hardlink-group")
def hardlink_group():
    """Three names of one file: one inode, link count 3."""
    lower = tar()
    lower.dir("usr/")
    lower.dir("usr/bin/")
    lower.reg("usr/bin/x", "X", mode=0o755)
    lower.hard("usr/bin/y", "usr/bin/x")
    lower.hard("usr/bin/z", "usr/bin/x")
    return [layer(lower)]


@image("dir-link-counts")
def dir_link_counts():
    """Directory link counts after a subdirectory is whited out."""
    lower = tar()
    lower.dir("d/")
    lower.dir("d/s1/")
    lower.dir("d/s2/")
    lower.reg("d/f", "f")
    upper = tar()
    upper.reg("d/.wh.s2")
    upper.dir("d/s3/")
    return [layer(lower), layer(upper)]


SYMLINK_255 = "/" + "/".join(["s" * 50] * 5)


@image("symlink-sizes")
def symlink_sizes():
    """Symlink st_size is the target length: 13 and 255 bytes.

    One symlink has mode 0644 in its tar header, as Python's tarfile writes
    them; Linux (and so the mount) shows every symlink as 0777.
    """
    lower = tar()
    lower.dir("usr/")
    lower.dir("usr/lib/")
    lower.sym("usr/lib/libpq.so", "libpq.so.5.13")
    lower.sym("usr/lib/header-mode-0644", "libpq.so", mode=0o644)
    lower.sym("a", SYMLINK_255)
    return [layer(lower)]


@image("union-replacements")
def union_replacements():
    """Later layers win: dir over file, file over dir, delete and re-create."""
    lower = tar()
    lower.reg("keep", "keep v1")
    lower.dir("file-over-dir/")
    lower.reg("file-over-dir/child", "c")
    lower.dir("file-over-dir/sub/")
    lower.reg("file-over-dir/sub/deep", "d")
    lower.reg("dir-over-file", "was a file")
    lower.dir("recreated/", mode=0o750)
    lower.reg("recreated/old", "old")
    lower.dir("recreated-later/")
    lower.reg("recreated-later/old", "old")
    lower.sym("link-over-file", "keep")
    lower.reg("file-over-link-target", "t")
    lower.sym("file-over-link", "file-over-link-target")

    middle = tar()
    middle.reg("keep", "keep v2")
    middle.reg("file-over-dir", "now a file")
    middle.dir("dir-over-file/", mode=0o711)
    middle.reg("dir-over-file/child", "child")
    middle.reg(".wh.recreated")
    middle.dir("recreated/", mode=0o755, uid=7, gid=7)
    middle.reg("recreated/new", "new")
    middle.reg(".wh.recreated-later")
    middle.reg("link-over-file", "now a file")
    middle.reg("file-over-link", "regular now")
    # A directory listed after its children.
    middle.reg("late/child", "c")
    middle.dir("late/sub/")
    middle.dir("late/", mode=0o750, uid=1, gid=1, mtime=1234567890)

    upper = tar()
    upper.reg("keep", "keep v3")
    upper.dir("recreated-later/", mode=0o700)
    upper.reg("recreated-later/new", "new")
    return [layer(lower), layer(middle), layer(upper)]


@image("odd-names-and-empty-files")
def odd_names_and_empty_files():
    """Non-UTF-8 names (and a whiteout of one), empty files, odd characters."""
    lower = tar()
    lower.reg(b"caf\xe9", "latin-1 name")
    lower.reg(b"\xff\xfe", "invalid UTF-8")
    lower.dir(b"dir\x80/")
    lower.reg(b"dir\x80/inside", "in")
    lower.reg("with space", "s")
    lower.reg("new\nline", "n")
    lower.reg("equals=sign", "e")
    lower.reg("back\\slash", "b")
    lower.reg("empty-1", "")
    lower.reg("empty-2", "", mode=0o600)
    lower.reg("gone-\xe9", "utf-8 e-acute")
    upper = tar()
    upper.reg(b".wh.caf\xe9")
    upper.reg(".wh.gone-\xe9")
    upper.reg(b"dir\x80/empty-3", "")
    return [layer(lower), layer(upper)]


def big_file_stream():
    """Yield the tar stream of the big-file image in 64 MiB pieces."""
    builder = TarBuilder(default_mtime=MTIME)
    builder.entry(b"0", "big.bin", size=BIG_FILE_SIZE, size_encoding="pax")
    yield builder.bytes(end_blocks=0)

    piece = bytes(64 * 1024 * 1024)
    remaining = BIG_FILE_SIZE - 1
    while remaining > 0:
        size = min(remaining, len(piece))
        yield piece[:size]
        remaining -= size
    yield b"z"  # the size is a multiple of 512, so no padding follows

    tail = TarBuilder(default_mtime=MTIME)
    tail.reg("after.txt", "after")
    yield tail.bytes()


# Only gzip: the plain variant would push an 8 GiB blob and zstd's takes as
# long to make as gzip's, so one variant keeps the test to minutes.
@image("big-file", compressions=("gzip",), slow=True)
def big_file():
    """An 8 GiB file of zeros ending in "z", its size in a PAX record."""
    return [Layer(big_file_stream)]


@image("lazy-large")
def lazy_large():
    """Four 8 MiB random files and one small file, for lazy-fetch counting."""
    lower = tar()
    lower.dir("data/")
    for index in range(4):
        lower.reg(f"data/blob{index}.bin", random_bytes(8 << 20, index))
    upper = tar()
    upper.reg("small.txt", "just this file\n")
    return [layer(lower), layer(upper)]


SHARED_FILES = {
    "shared/one.bin": random_bytes(600 * 1024, 101),
    "shared/two.bin": random_bytes(300 * 1024, 102),
}


@image("shared-a")
def shared_a():
    """Files whose contents the shared-b image has too, in another layer."""
    lower = tar()
    lower.dir("shared/")
    for path, data in SHARED_FILES.items():
        lower.reg(path, data)
    lower.reg("only-a.txt", "a")
    return [layer(lower)]


@image("shared-b")
def shared_b():
    """The shared-a files under other names, after an unrelated layer."""
    first = tar()
    first.reg("only-b.txt", "b")
    second = tar()
    second.dir("copy/")
    for path, data in SHARED_FILES.items():
        second.reg("copy/" + path.split("/")[-1], data, mtime=MTIME + 1)
    return [layer(first), layer(second)]


TAMPER_FILES = {
    "victim.bin": random_bytes(1 << 20, 7),
    "bystander.bin": random_bytes(1 << 20, 8),
    "small.txt": b"small and fine\n",
}


@image("tamper")
def tamper():
    """Two 1 MiB random files and a small one; a test corrupts one chunk."""
    lower = tar()
    for path, data in TAMPER_FILES.items():
        lower.reg(path, data)
    return [layer(lower)]
