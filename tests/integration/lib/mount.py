# SPDX-License-Identifier: Apache-2.0
"""Run the imgmount command: convert, mount in the foreground, stats.

The binary is $IMGMOUNT_BUILD_DIR/fs/imgmount; tests/run sets that variable
from its --build option, and without it the default is build/ at the
repository root.
"""

import json
import os
import subprocess
import time

from . import procs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))

# Lines that the sanitizers print; any of them in the daemon's stderr fails
# the test even when the mount itself behaved.
SANITIZER_MARKERS = (b"AddressSanitizer", b"runtime error:", b"LeakSanitizer")


def build_dir():
    return os.environ.get("IMGMOUNT_BUILD_DIR",
                          os.path.join(REPO_ROOT, "build"))


def binary():
    """Return the imgmount path, or raise AssertionError saying how to build it."""
    path = os.path.join(build_dir(), "fs", "imgmount")
    if not os.access(path, os.X_OK):
        raise AssertionError(f"imgmount binary not found at {path}: build it "
                             f"with `ninja -C {build_dir()}`")
    return path


def sanitizer_report(stderr_bytes):
    """Return the sanitizer lines in stderr_bytes, or "" when there are none."""
    if not any(marker in stderr_bytes for marker in SANITIZER_MARKERS):
        return ""
    return stderr_bytes.decode(errors="replace")[-6000:]


def run_imgmount(args, timeout=300, check=True):
    """Run `imgmount ARGS...`; fail on a sanitizer report in its stderr."""
    result = procs.run([binary(), *args], timeout, check=check)
    report = sanitizer_report(result.stderr)
    if report:
        raise AssertionError(f"sanitizer report from imgmount "
                             f"{' '.join(args)}:\n{report}")
    return result


def convert(source, dest, timeout=600, extra_args=()):
    """Run `imgmount convert SOURCE DEST`; return the printed manifest digest."""
    result = run_imgmount(["convert", *extra_args, source, dest], timeout)
    digest = result.stdout.decode().strip()
    if not digest.startswith("sha256:") or len(digest) != 71:
        raise AssertionError(f"imgmount convert printed {digest!r}, expected "
                             f"one \"sha256:<64 hex>\" digest on stdout")
    return digest


class Mount:
    """One `imgmount mount -f` daemon; start() waits until the mount is live.

    The mount is ready when /proc/self/mountinfo lists the mountpoint with
    fstype fuse.imgmount. stop() lazily unmounts, then ends the daemon with
    SIGTERM and, after a grace period, SIGKILL, and raises AssertionError if
    its stderr contains a sanitizer report.
    """

    def __init__(self, image, mountpoint, cache_dir, log_path,
                 extra_args=()):
        self.image = image
        self.mountpoint = os.fspath(mountpoint)
        self.cache_dir = os.fspath(cache_dir)
        self.log_path = os.fspath(log_path)
        self.extra_args = list(extra_args)
        self.process = None

    def command(self):
        return [binary(), "mount", "-f", "--cache-dir", self.cache_dir,
                *self.extra_args, self.image, self.mountpoint]

    def start(self, timeout=60):
        os.makedirs(self.mountpoint, exist_ok=True)
        os.makedirs(self.cache_dir, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log,
                                            stderr=log,
                                            stdin=subprocess.DEVNULL)
        procs.record_process(self.process.pid)
        procs.record_mount(self.mountpoint)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fstype = procs.is_mounted(self.mountpoint)
            if fstype == "fuse.imgmount":
                return self
            if self.process.poll() is not None:
                raise AssertionError(
                    f"imgmount mount exited with status "
                    f"{self.process.returncode} before {self.mountpoint} was "
                    f"mounted:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.mountpoint} was not mounted as "
                             f"fuse.imgmount within {timeout} s:\n{self.log()}")

    def log(self):
        try:
            with open(self.log_path, "rb") as stream:
                return stream.read()[-8000:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stats(self, timeout=30):
        """Return the daemon's counters from `imgmount stats MOUNTPOINT`."""
        result = run_imgmount(["stats", self.mountpoint], timeout)
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError as error:
            raise AssertionError(f"imgmount stats printed invalid JSON "
                                 f"({error}): {result.stdout[:2000]!r}") from None

    def stop(self):
        """Unmount, stop the daemon, and fail on a sanitizer report."""
        procs.lazy_unmount(self.mountpoint)
        if self.process is not None:
            procs.stop_process(self.process)
        with open(self.log_path, "rb") as stream:
            report = sanitizer_report(stream.read())
        if report:
            raise AssertionError(f"sanitizer report from the imgmount daemon "
                                 f"of {self.mountpoint}:\n{report}")
