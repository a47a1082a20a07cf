#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Run file-system calls under ROOT and print their results as JSON.

Usage: probe.py ROOT < OPS.json

OPS is a JSON list of objects {"op": NAME, "path": "/p", ...}; paths are
relative to ROOT and may carry non-UTF-8 bytes as Python's surrogateescape
code points. The output is a JSON list with one result per op: the values
the call returned, or {"errno": "ENOENT"} (the errno name) when it failed.

The test process never touches a FUSE mount itself. It runs this script as
a child with a timeout, so a hung mount fails the test instead of hanging it.

Ops: lstat, stat, readlink, read (optional offset and length; returns hex),
sha256, listdir (names sorted, "." and ".." excluded), xattrs (every name
with its hex value, not following symlinks), getxattr (name), statvfs,
open (flags: a list of os.O_* names), mkdir, rmdir, unlink, rename (to),
symlink (target), link (to), chmod (mode), truncate (size), setxattr
(name), mknod, utime, and parallel_lstat (paths, count, threads: stats the
paths count times from threads and returns each distinct (path, st_ino,
st_nlink) seen).
"""

import concurrent.futures
import errno
import hashlib
import json
import os
import stat
import sys


def stat_result(info):
    return {
        "type": _type(info.st_mode),
        "mode": stat.S_IMODE(info.st_mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "size": info.st_size,
        "nlink": info.st_nlink,
        "ino": info.st_ino,
        "mtime_ns": info.st_mtime_ns,
        "rdev": [os.major(info.st_rdev), os.minor(info.st_rdev)],
        "blocks": info.st_blocks,
    }


def _type(mode):
    for check, name in ((stat.S_ISREG, "reg"), (stat.S_ISDIR, "dir"),
                        (stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "chr"),
                        (stat.S_ISBLK, "blk"), (stat.S_ISFIFO, "fifo"),
                        (stat.S_ISSOCK, "sock")):
        if check(mode):
            return name
    return "unknown"


def read_range(path, offset=0, length=None):
    with open(path, "rb", buffering=0) as stream:
        stream.seek(offset)
        data = stream.read() if length is None else stream.read(length)
    return {"hex": data.hex(), "length": len(data)}


def sha256(path):
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as stream:
        while True:
            data = stream.read(1 << 20)
            if not data:
                return {"sha256": digest.hexdigest(), "length": size}
            size += len(data)
            digest.update(data)


def xattrs(path):
    values = {}
    for name in os.listxattr(path, follow_symlinks=False):
        values[name] = os.getxattr(path, name, follow_symlinks=False).hex()
    return values


def statvfs(path):
    info = os.statvfs(path)
    return {field: getattr(info, field) for field in (
        "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
        "f_ffree", "f_favail", "f_flag", "f_namemax")}


def open_flags(path, flags):
    value = 0
    for name in flags:
        value |= getattr(os, name)
    fd = os.open(path, value)
    os.close(fd)
    return {"ok": True}


def parallel_lstat(root, paths, count, threads):
    targets = [root + os.fsencode(path) for path in paths] * count

    def one(index):
        info = os.lstat(targets[index])
        return (os.fsdecode(targets[index][len(root):]), info.st_ino,
                info.st_nlink)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        seen = set(pool.map(one, range(len(targets))))
    return {"distinct": sorted(list(item) for item in seen)}


def run_op(root, op):
    name = op["op"]
    path = root + os.fsencode(op.get("path", ""))

    if name == "lstat":
        return stat_result(os.lstat(path))
    if name == "stat":
        return stat_result(os.stat(path))
    if name == "readlink":
        return {"target": os.fsdecode(os.readlink(path))}
    if name == "read":
        return read_range(path, op.get("offset", 0), op.get("length"))
    if name == "sha256":
        return sha256(path)
    if name == "listdir":
        return {"names": sorted(os.fsdecode(n) for n in os.listdir(path))}
    if name == "xattrs":
        return {"xattrs": xattrs(path)}
    if name == "getxattr":
        value = os.getxattr(path, op["name"], follow_symlinks=False)
        return {"hex": value.hex()}
    if name == "statvfs":
        return statvfs(path)
    if name == "open":
        return open_flags(path, op["flags"])
    if name == "parallel_lstat":
        return parallel_lstat(root, op["paths"], op["count"], op["threads"])
    return run_write_op(name, root, path, op)


def run_write_op(name, root, path, op):
    """Run one modifying call; on the read-only mount each should fail."""
    if name == "mkdir":
        os.mkdir(path)
    elif name == "rmdir":
        os.rmdir(path)
    elif name == "unlink":
        os.unlink(path)
    elif name == "rename":
        os.rename(path, root + os.fsencode(op["to"]))
    elif name == "symlink":
        os.symlink(op["target"], path)
    elif name == "link":
        os.link(path, root + os.fsencode(op["to"]))
    elif name == "chmod":
        os.chmod(path, op["mode"], follow_symlinks=False)
    elif name == "truncate":
        os.truncate(path, op["size"])
    elif name == "setxattr":
        os.setxattr(path, op["name"], b"v", follow_symlinks=False)
    elif name == "mknod":
        os.mknod(path, 0o644 | stat.S_IFIFO)
    elif name == "utime":
        os.utime(path, (0, 0), follow_symlinks=False)
    else:
        raise ValueError(f"unknown probe op {name!r}")
    return {"ok": True}


def main(argv):
    if len(argv) != 1:
        sys.stderr.write("usage: probe.py ROOT < OPS.json\n")
        return 2
    root = os.fsencode(argv[0]).rstrip(b"/")
    ops = json.load(sys.stdin)
    results = []
    for op in ops:
        try:
            results.append(run_op(root, op))
        except OSError as error:
            results.append({"errno": errno.errorcode.get(error.errno,
                                                         str(error.errno))})
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
