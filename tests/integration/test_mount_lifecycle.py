# SPDX-License-Identifier: Apache-2.0
"""How a mount starts and ends: stacking, detaching, and its log.

A second `imgmount mount` on a mountpoint that a live imgmount daemon
serves is rejected, so the first daemon keeps its control socket. A
detached daemon on a system without a syslog socket writes its messages to
a file next to its control socket.
"""

import glob
import os
import time
import unittest

from lib import mount, procs
from lib.case import IntegrationCase


def daemon_pids(mountpoint):
    """PIDs of the processes whose command line names mountpoint."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as stream:
                arguments = stream.read().split(b"\0")
        except OSError:
            continue
        if os.fsencode(mountpoint) in arguments:
            pids.append(int(entry))
    return pids


def socket_log_files():
    return set(glob.glob("/run/imgmount/*.log"))


class MountLifecycleTest(IntegrationCase):
    def test_mount_on_live_mountpoint_rejected(self):
        image = self.convert_image(self.push_image("symlink-sizes", "tar"))
        daemon = self.mount_image(image)

        result = procs.run([mount.binary(), "mount", "-f", "--cache-dir",
                            self.path("cache-second"), image, daemon.mountpoint],
                           120, check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(b"already served by an imgmount daemon", result.stderr)
        # The first daemon still serves its mount and its counters.
        self.assertEqual(daemon.stats()["verify_failures"], 0)
        self.assertEqual(self.lstat(daemon.mountpoint, "/a")["size"], 255)

    @unittest.skipIf(os.path.exists("/dev/log"),
                     "this system has a syslog socket, so a detached daemon logs there")
    def test_detached_daemon_logs_to_file(self):
        image = self.convert_image(self.push_image("symlink-sizes", "tar"))
        mountpoint = self.path("mnt")
        os.mkdir(mountpoint)
        before = socket_log_files()

        procs.record_mount(mountpoint)
        self.addCleanup(procs.lazy_unmount, mountpoint)
        mount.run_imgmount(["mount", "--cache-dir", self.path("cache"), image,
                            mountpoint], 120)
        self.assertEqual(procs.is_mounted(mountpoint), "fuse.imgmount")
        self.assertEqual(self.lstat(mountpoint, "/usr/lib/libpq.so")["size"], 13)
        daemons = daemon_pids(mountpoint)
        self.assertEqual(len(daemons), 1, daemons)

        new_logs = socket_log_files() - before
        logs = new_logs or socket_log_files()
        text = ""
        for path in logs:
            with open(path, errors="replace") as stream:
                text += stream.read()
        self.assertIn(f"serving \"{image}\"", text)

        mount.run_imgmount(["umount", mountpoint], 60)
        deadline = time.monotonic() + 30
        while procs.is_mounted(mountpoint) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(procs.is_mounted(mountpoint))

        # The daemon exits once unmounted; a thread started before it
        # detached (and so missing after the fork) once made it hang here.
        deadline = time.monotonic() + 30
        while procs.process_start_time(daemons[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIsNone(procs.process_start_time(daemons[0]),
                          "the detached daemon did not exit after the unmount")


if __name__ == "__main__":
    unittest.main()
