# SPDX-License-Identifier: Apache-2.0
"""Run commands with timeouts and record what the tests start and mount.

Every server PID, mountpoint and temporary directory a test creates is also
written to the directory named by $IMGMOUNT_TEST_STATE (set by tests/run).
When a test module is killed on timeout, its own cleanups never run, so
tests/run reads those files afterwards, kills what is still running,
lazily unmounts what is still mounted and removes the directories. Outside tests/run the variable is unset and nothing is
recorded.
"""

import os
import signal
import subprocess
import time

STATE_ENV = "IMGMOUNT_TEST_STATE"


class CommandError(AssertionError):
    """A command failed or timed out; the message carries its output."""


def describe(cmd):
    return " ".join(str(part) for part in cmd)


def run(cmd, timeout, check=True, input=None, env=None):
    """Run cmd with a timeout, capturing stdout and stderr as bytes.

    Raises CommandError with the command, exit status and stderr when check
    is true and the status is not 0, and always when the timeout expires.
    """
    try:
        result = subprocess.run([str(part) for part in cmd], input=input,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=timeout,
                                env=env)
    except subprocess.TimeoutExpired as error:
        stderr = (error.stderr or b"").decode(errors="replace")
        raise CommandError(f"timed out after {timeout} s: {describe(cmd)}\n"
                           f"stderr:\n{stderr}") from None

    if check and result.returncode != 0:
        raise CommandError(
            f"exit status {result.returncode}: {describe(cmd)}\n"
            f"stderr:\n{result.stderr.decode(errors='replace')}\n"
            f"stdout:\n{result.stdout[:4000].decode(errors='replace')}")
    return result


def _record(kind, line):
    state = os.environ.get(STATE_ENV)
    if not state:
        return
    os.makedirs(state, exist_ok=True)
    with open(os.path.join(state, kind), "a", encoding="utf-8",
              errors="surrogateescape") as stream:
        stream.write(line + "\n")


def record_process(pid):
    """Record a started server so tests/run can kill it if the test dies.

    The process start time (field 22 of /proc/PID/stat) is stored with the
    PID, so a PID that the kernel later reuses is never killed.
    """
    _record("pids", f"{pid} {process_start_time(pid)}")


def record_mount(mountpoint):
    """Record a mountpoint so tests/run can unmount it if the test dies."""
    _record("mounts", os.fsdecode(mountpoint))


def record_directory(path):
    """Record a temporary directory so tests/run can remove it if the test dies."""
    _record("dirs", os.fsdecode(path))


def process_start_time(pid):
    """Return the start time of a live pid in clock ticks, else None.

    A zombie counts as gone: it has exited and only waits to be reaped.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            stat = stream.read()
    except FileNotFoundError:
        return None
    # The command name in field 2 may contain spaces, so split after its ")".
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] == b"Z":
        return None
    return int(fields[19])


def stop_process(process, grace=10):
    """Send SIGTERM to a Popen, then SIGKILL after grace seconds; reap it."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


def is_mounted(mountpoint):
    """Return the fstype if mountpoint is in /proc/self/mountinfo, else None.

    Reading mountinfo never touches the FUSE filesystem, so this cannot hang
    on a stuck daemon the way stat(2) of the mountpoint can.
    """
    target = os.path.realpath(os.fsdecode(mountpoint))
    with open("/proc/self/mountinfo", "rb") as stream:
        for line in stream:
            fields = line.split(b" ")
            separator = fields.index(b"-")
            if unescape_mountinfo(fields[4]) == os.fsencode(target):
                fstype = fields[separator + 1].decode()
                return fstype
    return None


def unescape_mountinfo(field):
    """Decode the octal escapes (\\040 and the like) of a mountinfo path."""
    out = bytearray()
    index = 0
    while index < len(field):
        if field[index:index + 1] == b"\\" and field[index + 1:index + 4].isdigit():
            out.append(int(field[index + 1:index + 4], 8))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return bytes(out)


def lazy_unmount(mountpoint, timeout=30):
    """Detach mountpoint with fusermount3 -u -z, falling back to umount -l."""
    if is_mounted(mountpoint) is None:
        return
    result = run(["fusermount3", "-u", "-z", mountpoint], timeout, check=False)
    if result.returncode != 0 and is_mounted(mountpoint) is not None:
        run(["umount", "-l", mountpoint], timeout, check=False)


def wait_until(predicate, timeout, interval=0.05):
    """Poll predicate until it returns a true value or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)
