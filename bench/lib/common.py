# SPDX-License-Identifier: Apache-2.0
"""Shared pieces of the benchmark harness: the context every scenario gets,
the shape of a result row, and the few system helpers all scenarios need.

Contract between bench/run and the scenario modules (bench/lib/scen_*.py):

- Each scenario module has `NAME` (the --scenarios word) and
  `run(ctx) -> list[dict]`. It returns one row per measured repetition and
  leaves nothing mounted or running when it returns or raises.
- A row is made by `row(...)` below. `seconds` is the measured time, lower
  is better, and the report ranks peers by it. Throughput and memory go in
  `extra` and are printed next to it.
- Rows that compare peers share (scenario, image, state, what); each
  (peer, fmt) pair is one line of that group, because each peer reads the
  format it is built for. The report divides each line's median time by
  the fastest line's.

Image descriptions (ctx.images) come from bench/lib/images.py and look like:

    {"python": {"gzip":    {"repo": "bench/python", "digest": "sha256:...",
                            "compressed_bytes": N, "layers": [...]},
                "zstd:chunked": {...}, "estargz": {...}},
     "minbase": {...}, "large": {...}, "bigfile": {...}, "many": {...}}

`ctx.ref(name, fmt)` turns one of them into "HOST:PORT/repo@digest" on the
benchmark link.
"""

import contextlib
import dataclasses
import logging
import os
import subprocess
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]

log = logging.getLogger("bench.common")

FORMATS = ("gzip", "zstd:chunked", "estargz")


@dataclasses.dataclass
class Context:
    """Everything a scenario needs. Built once by bench/run."""

    link: object            # bench.lib.link.Link: .registry, .rx_bytes()
    images: dict            # see the module comment
    build_dir: Path         # meson build directory with fs/imgmount
    work_dir: Path          # scratch space for this run, removed at the end
    reps: int               # repetitions of every measurement
    quick: bool             # --quick: smaller inputs, fewer peers
    opts: object            # the parsed command line of bench/run
    containerd: object = None  # bench.lib.containerd.Containerd, started lazily

    @property
    def imgmount(self):
        return str(self.build_dir / "fs" / "imgmount")

    def ref(self, name, fmt):
        image = self.images[name][fmt]
        return f"{self.link.registry}/{image['repo']}@{image['digest']}"

    def tag_ref(self, name, fmt):
        """Return the same image by tag, for tools that need one (ctr, skopeo)."""
        image = self.images[name][fmt]
        return f"{self.link.registry}/{image['repo']}:{image['tag']}"


def row(scenario, image, fmt, peer, state, rep, seconds, what="",
        link_bytes=None, **extra):
    """Make the row of one measurement. `state` is "cold" or "warm", and
    `what` names the workload when a scenario measures several ("find+lstat")."""
    return {
        "scenario": scenario,
        "image": image,
        "fmt": fmt,
        "peer": peer,
        "state": state,
        "what": what,
        "rep": rep,
        "seconds": seconds,
        "link_bytes": link_bytes,
        "extra": extra,
    }


def run(argv, timeout=600, check=True, **kwargs):
    """subprocess.run with a timeout that is always set, text output, and the
    command's stderr in the exception when it fails."""
    result = subprocess.run(argv, timeout=timeout, text=True,
                            capture_output=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited with "
                           f"{result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


def drop_caches():
    """Empty the page cache, dentries and inodes, for cold runs."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


@contextlib.contextmanager
def stopwatch():
    """`with stopwatch() as t: ...; t.seconds` measures wall time."""
    class Timer:
        seconds = None

    timer = Timer()
    start = time.monotonic()
    try:
        yield timer
    finally:
        timer.seconds = time.monotonic() - start


def unmount(path):
    """Unmount a FUSE or kernel mount, lazily if it is busy. Failures and
    timeouts are ignored, because callers run this in cleanup paths."""
    for argv in (["fusermount3", "-u", "-z", str(path)], ["umount", "-l", str(path)]):
        try:
            if subprocess.run(argv, capture_output=True, timeout=30).returncode == 0:
                return
        except subprocess.TimeoutExpired:
            continue


def is_mounted(path):
    target = os.path.realpath(path)
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


@contextlib.contextmanager
def imgmount_mount(ctx, ref, mountpoint, cache_dir, *options):
    """Mount `ref` with imgmount; yield the daemon's PID; always unmount."""
    Path(mountpoint).mkdir(parents=True, exist_ok=True)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    registry_host = ref.split("/", 1)[0]
    run([ctx.imgmount, "mount", "--cache-dir", str(cache_dir),
         "--insecure-registry", registry_host, *options, ref, str(mountpoint)],
        timeout=300)
    pid = daemon_pid(mountpoint)
    try:
        yield pid
    finally:
        unmount(mountpoint)
        if pid is not None:
            wait_for_exit(pid)


def wait_for_exit(pid, timeout=60):
    """Wait until process `pid` is gone, so that the next mount at the same
    place neither finds its control socket live nor shares the machine with
    it. Log a warning and return after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            log.warning("imgmount daemon pid %d did not exit within %d s of its "
                        "unmount", pid, timeout)
            return
        time.sleep(0.01)


def daemon_pid(mountpoint):
    """PID of the imgmount daemon serving `mountpoint`, or None."""
    target = os.path.realpath(mountpoint)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"imgmount") and b"mount" in argv \
                and target.encode() in argv:
            return int(proc.name)
    return None


def rss_kib(pid):
    """(VmRSS, VmHWM) of a process in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields.get("VmRSS"), fields.get("VmHWM")
