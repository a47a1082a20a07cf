# SPDX-License-Identifier: Apache-2.0
"""A private containerd for the benchmark, driven with Debian's `ctr`.

The daemon gets its own config file, root, state directory and socket under
`work_dir`, so it never touches the system containerd or its images. When
the path of a `containerd-stargz-grpc` binary is given, that daemon is
started too, with its own root and config, and registered as the proxy
snapshotter "stargz".

Every registry the benchmark uses speaks plain HTTP, so every pull passes
`--plain-http`.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from . import common

START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 20
PULL_TIMEOUT_SECONDS = 900
RUN_TIMEOUT_SECONDS = 600
CTR_TIMEOUT_SECONDS = 120

NAMESPACE = "imgmount-bench"


class Containerd:
    """A containerd daemon (and optionally containerd-stargz-grpc) that
    lives in `work_dir` until stop()."""

    def __init__(self, work_dir, stargz_grpc=None, insecure_hosts=()):
        """`insecure_hosts` lists the HOST:PORT registries that the stargz
        daemon reaches over plain HTTP; ctr gets --plain-http instead."""
        self.work_dir = Path(work_dir)
        self.stargz_grpc = stargz_grpc
        self.insecure_hosts = tuple(insecure_hosts)
        self.root = self.work_dir / "root"
        self.state = self.work_dir / "state"
        self.address = str(self.work_dir / "containerd.sock")
        self.fifo_dir = self.work_dir / "fifo"
        self.stargz_address = str(self.work_dir / "stargz" / "stargz.sock")
        self._processes = []
        self._container_number = 0
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.fifo_dir.mkdir(exist_ok=True)
        try:
            if stargz_grpc:
                self._start_stargz()
            self._start_containerd()
        except BaseException:
            self.stop()
            raise

    # Daemons

    def _write_config(self):
        # Version 2 of the config format; the CRI plugin is disabled because
        # it needs CNI and is not used by ctr.
        config = f"""version = 2
root = "{self.root}"
state = "{self.state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{self.address}"

[ttrpc]
  address = "{self.address}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{self.work_dir / 'opt'}"
"""
        if self.stargz_grpc:
            config += f"""
[proxy_plugins]
  [proxy_plugins.stargz]
    type = "snapshot"
    address = "{self.stargz_address}"
"""
        path = self.work_dir / "config.toml"
        path.write_text(config)
        return path

    def _spawn(self, argv, log_name):
        log = open(self.work_dir / log_name, "ab")
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        finally:
            log.close()
        self._processes.append(process)
        return process

    def _wait_for_socket(self, process, socket_path, log_name):
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not os.path.exists(socket_path):
            if process.poll() is not None:
                raise RuntimeError(
                    f"{process.args[0]} exited with {process.returncode} during "
                    f"startup; see {self.work_dir / log_name}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{process.args[0]} did not create {socket_path} within "
                    f"{START_TIMEOUT_SECONDS}s; see {self.work_dir / log_name}")
            time.sleep(0.1)

    def _start_containerd(self):
        config = self._write_config()
        process = self._spawn(["containerd", "--config", str(config)],
                              "containerd.log")
        self._wait_for_socket(process, self.address, "containerd.log")

        # The socket appears before every plugin is loaded; `ctr version`
        # succeeds only once the daemon serves requests.
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while self.ctr("version", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"containerd at {self.address} did not respond to `ctr version` "
                    f"within {START_TIMEOUT_SECONDS}s; see "
                    f"{self.work_dir / 'containerd.log'}")
            time.sleep(0.2)

    def _start_stargz(self):
        stargz_dir = self.work_dir / "stargz"
        stargz_dir.mkdir(exist_ok=True)

        # Registries on the benchmark link are plain HTTP. The stargz daemon
        # reads mirror settings from its own config, not from ctr's flags.
        # NOTE: written from the stargz-snapshotter config format
        # (resolver.host.<host>.mirrors, insecure) but never run here,
        # because Debian 12 ships no containerd-stargz-grpc binary.
        config_path = stargz_dir / "config.toml"
        config_path.write_text(self._stargz_config())
        process = self._spawn([self.stargz_grpc, "--address", self.stargz_address,
                               "--root", str(stargz_dir / "root"),
                               "--config", str(config_path),
                               "--log-level", "info"], "stargz.log")
        self._wait_for_socket(process, self.stargz_address, "stargz.log")

    def _stargz_config(self):
        lines = []
        for host in self.insecure_hosts:
            lines.append(f'[[resolver.host."{host}".mirrors]]\n'
                         f'  host = "{host}"\n  insecure = true\n')
        return "\n".join(lines)

    def stop(self):
        """Stop the daemons by PID: SIGTERM, then SIGKILL after a timeout.
        Also unmount anything left mounted under work_dir. Errors of the
        container removal are ignored, because stop runs in cleanup paths."""
        try:
            self._remove_containers()
        except Exception:  # noqa: BLE001 - best effort before stopping
            pass

        for process in reversed(self._processes):
            if process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                try:
                    process.wait(timeout=STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    pass
        self._processes = []

        for mountpoint in self._mounts_under_work_dir():
            common.unmount(mountpoint)

    def _mounts_under_work_dir(self):
        prefix = os.path.realpath(self.work_dir) + "/"
        with open("/proc/self/mounts") as mounts:
            points = [line.split()[1] for line in mounts]
        # Deepest first, so that nested mounts come off before their parents.
        return sorted((p for p in points if p.startswith(prefix)),
                      key=len, reverse=True)

    # Client

    def ctr(self, *args, timeout=CTR_TIMEOUT_SECONDS, check=True, binary="ctr"):
        """Run `ctr` (or `ctr-remote`) against this daemon."""
        return common.run([binary, "--address", self.address,
                           "--namespace", NAMESPACE, *args],
                          timeout=timeout, check=check)

    def pull(self, ref, snapshotter="overlayfs"):
        """Pull and unpack `ref` for `snapshotter`. With "stargz", use
        `ctr-remote image rpull`, which mounts layers lazily."""
        if snapshotter == "stargz":
            self.ctr("image", "rpull", "--plain-http", ref,
                     timeout=PULL_TIMEOUT_SECONDS, binary="ctr-remote")
        else:
            self.ctr("image", "pull", "--plain-http", "--snapshotter",
                     snapshotter, ref, timeout=PULL_TIMEOUT_SECONDS)

    def run(self, ref, argv, snapshotter="overlayfs"):
        """Run `argv` in a new container of the pulled image `ref` and wait
        for it to exit. Returns the wall time in seconds, container creation
        and removal included. Raises when the command fails."""
        self._container_number += 1
        container_id = f"bench-{os.getpid()}-{self._container_number}"
        with common.stopwatch() as timer:
            self.ctr("run", "--rm", "--snapshotter", snapshotter,
                     "--fifo-dir", str(self.fifo_dir), ref, container_id,
                     *argv, timeout=RUN_TIMEOUT_SECONDS)
        return timer.seconds

    def _remove_containers(self):
        for container_id in self._list("containers", "list"):
            self.ctr("task", "kill", "--signal", "SIGKILL", container_id,
                     check=False)
            self.ctr("task", "delete", "--force", container_id, check=False)
            self.ctr("container", "delete", container_id, check=False)

    def _list(self, *args):
        result = self.ctr(*args, "--quiet", check=False)
        return result.stdout.split() if result.returncode == 0 else []

    def remove_all(self):
        """Remove containers, leases, images, content and snapshots, so that
        the next pull starts from nothing local (a cold start)."""
        self._remove_containers()
        for lease in self._list("leases", "list"):
            self.ctr("leases", "delete", lease, check=False)

        images = self._list("images", "list")
        if images:
            # --sync waits for the garbage collector, which removes the
            # content and snapshots that only these images referenced.
            self.ctr("images", "remove", "--sync", *images)

        digests = self._list("content", "list")
        if digests:
            self.ctr("content", "remove", *digests)

        snapshotters = ["overlayfs"] + (["stargz"] if self.stargz_grpc else [])
        for snapshotter in snapshotters:
            # Children first: a snapshot with children cannot be removed, so
            # repeat until a pass removes nothing.
            while True:
                keys = self._snapshot_keys(snapshotter)
                removed = 0
                for key in keys:
                    result = self.ctr("snapshots", "--snapshotter", snapshotter,
                                      "remove", key, check=False)
                    removed += result.returncode == 0
                if not keys or removed == 0:
                    break

    def _snapshot_keys(self, snapshotter):
        # `ctr snapshots list` has no --quiet; its first line is a header.
        result = self.ctr("snapshots", "--snapshotter", snapshotter, "list",
                          check=False)
        if result.returncode != 0:
            return []
        return [line.split()[0] for line in result.stdout.splitlines()[1:]
                if line.strip()]
