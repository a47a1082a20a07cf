#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Print a canonical dump of a directory tree, one line per path.

Usage: dumptree.py [--dir-nlink] [--symlink-mtime] [--no-hash] ROOT

Each line is the path (starting with "/", the root itself is "/") and then
space-separated fields:

  type=reg|dir|symlink|chr|blk|fifo|sock  mode=OCTAL (all 12 permission
  bits)  uid=  gid=  size= (regular files and symlinks)  mtime=NANOSECONDS
  (not for symlinks unless --symlink-mtime)  rdev=MAJOR:MINOR (devices)
  target= (symlinks)  sha256= (regular files; "error:ENAME" when reading
  fails)  nlink= (non-directories)  link=FIRSTPATH (non-directories with
  nlink > 1: the first path of the hardlink group in sorted order)
  xattr.NAME=HEX (every extended attribute)  dirnlink= (directories, only
  with --dir-nlink, because ext4 and a FUSE mount may count differently).

Paths, link targets and xattr names are bytes: every byte outside printable
ASCII, and the space, "=" and "\\" characters, is written as \\xHH, so
non-UTF-8 names survive. Lines are sorted by the raw path bytes.

The test process runs this as a child process with a timeout when ROOT is a
FUSE mount, because a read stuck in a hung mount ignores SIGALRM and only
SIGKILL ends it. Importing the module gives parse_dump() and diff_dumps().
"""

import errno
import hashlib
import os
import stat
import sys

_TYPES = [
    (stat.S_ISREG, "reg"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
    (stat.S_ISCHR, "chr"), (stat.S_ISBLK, "blk"), (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "sock"),
]


def escape(raw):
    """Escape bytes to printable ASCII with \\xHH for everything unusual."""
    out = []
    for byte in raw:
        if 0x21 <= byte <= 0x7e and byte not in b"\\=":
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def unescape(text):
    """Invert escape()."""
    out = bytearray()
    index = 0
    while index < len(text):
        if text.startswith("\\x", index):
            out.append(int(text[index + 2:index + 4], 16))
            index += 4
        else:
            out.extend(text[index].encode("ascii"))
            index += 1
    return bytes(out)


def file_type(mode):
    for predicate, name in _TYPES:
        if predicate(mode):
            return name
    return "unknown"


def hash_file(path):
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY)
    except OSError as error:
        return "error:" + errno.errorcode.get(error.errno, str(error.errno))
    try:
        while True:
            data = os.read(fd, 1 << 20)
            if not data:
                return digest.hexdigest()
            digest.update(data)
    except OSError as error:
        return "error:" + errno.errorcode.get(error.errno, str(error.errno))
    finally:
        os.close(fd)


def read_xattrs(path):
    """Return sorted (name, value) pairs of path's xattrs, not following links."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EPERM):
            return []
        raise
    pairs = []
    for name in names:
        value = os.getxattr(path, name, follow_symlinks=False)
        pairs.append((os.fsencode(name), value))
    return sorted(pairs)


def walk(root):
    """Yield (relative path bytes, absolute path bytes) for root and below."""
    root = os.fsencode(root)
    yield b"/", root
    stack = [b""]
    while stack:
        relative = stack.pop()
        directory = root + relative if relative else root
        with os.scandir(directory) as entries:
            for entry in entries:
                child = relative + b"/" + entry.name
                yield child, entry.path
                if entry.is_dir(follow_symlinks=False):
                    stack.append(child)


def collect(root, dir_nlink=False, symlink_mtime=False, hashes=True):
    """Return {path bytes: [(field, value), ...]} for the tree at root."""
    records = {}
    inodes = {}
    for relative, absolute in walk(root):
        info = os.lstat(absolute)
        kind = file_type(info.st_mode)
        fields = [("type", kind), ("mode", format(stat.S_IMODE(info.st_mode), "04o")),
                  ("uid", str(info.st_uid)), ("gid", str(info.st_gid))]

        if kind in ("reg", "symlink"):
            fields.append(("size", str(info.st_size)))
        if kind != "symlink" or symlink_mtime:
            fields.append(("mtime", str(info.st_mtime_ns)))
        if kind in ("chr", "blk"):
            fields.append(("rdev", f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"))
        if kind == "symlink":
            fields.append(("target", escape(os.readlink(absolute))))
        if kind == "reg" and hashes:
            fields.append(("sha256", hash_file(absolute)))
        if kind == "dir" and dir_nlink:
            fields.append(("dirnlink", str(info.st_nlink)))
        if kind != "dir":
            fields.append(("nlink", str(info.st_nlink)))
            if info.st_nlink > 1:
                inodes.setdefault((info.st_dev, info.st_ino), []).append(relative)

        for name, value in read_xattrs(absolute):
            fields.append(("xattr." + escape(name), value.hex()))
        records[relative] = fields

    for paths in inodes.values():
        first = min(paths)
        for path in paths:
            records[path].append(("link", escape(first)))
    return records


def format_dump(records):
    lines = []
    for path in sorted(records):
        fields = " ".join(f"{key}={value}" for key, value in records[path])
        lines.append(f"{escape(path)} {fields}")
    return "\n".join(lines) + "\n"


def parse_dump(text):
    """Parse dump text into {escaped path: {field: value}}."""
    tree = {}
    for line in text.splitlines():
        if not line:
            continue
        path, *fields = line.split(" ")
        tree[path] = dict(field.split("=", 1) for field in fields)
    return tree


def diff_dumps(expected, actual, expected_name="expected",
               actual_name="actual", limit=60):
    """Describe how two parsed dumps differ; return "" when they are equal."""
    lines = []
    for path in sorted(set(expected) | set(actual)):
        if path not in actual:
            lines.append(f"only in {expected_name}: {path} {_fields(expected[path])}")
        elif path not in expected:
            lines.append(f"only in {actual_name}: {path} {_fields(actual[path])}")
        else:
            left, right = expected[path], actual[path]
            for key in sorted(set(left) | set(right)):
                if left.get(key) != right.get(key):
                    lines.append(f"{path}: {key}: {expected_name}="
                                 f"{left.get(key, '(none)')} {actual_name}="
                                 f"{right.get(key, '(none)')}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more differences"]
    return "\n".join(lines)


def _fields(fields):
    return " ".join(f"{key}={value}" for key, value in fields.items())


def main(argv):
    options = {"--dir-nlink", "--symlink-mtime", "--no-hash"}
    flags = [arg for arg in argv if arg in options]
    paths = [arg for arg in argv if arg not in options]
    if len(paths) != 1:
        sys.stderr.write("usage: dumptree.py [--dir-nlink] [--symlink-mtime] "
                         "[--no-hash] ROOT\n")
        return 2
    records = collect(paths[0], dir_nlink="--dir-nlink" in flags,
                      symlink_mtime="--symlink-mtime" in flags,
                      hashes="--no-hash" not in flags)
    sys.stdout.write(format_dump(records))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
