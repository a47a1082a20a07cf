# SPDX-License-Identifier: Apache-2.0
"""The benchmark link: a registry behind a shaped, delayed network path.

`Link` creates a network namespace `imb<pid>` joined to the host by a veth
pair (host 10.203.0.1/30, namespace 10.203.0.2/30, or the next free /30 in
10.203.0.0/16). Both veth ends get an HTB class at the configured rate, so
the rate limits each direction. Inside the namespace, docker-registry serves
the persistent storage on 127.0.0.1:5000, and `delay_forward` listens on
NAMESPACE_ADDR:5000 and forwards to it, holding every byte for half the
round trip in each direction. The kernel here has no netem, which is why the
delay comes from a user-space forwarder.

`LoopbackLink` has the same interface with a registry on 127.0.0.1 of the
host and no shaping, for debugging the harness only.

Both are context managers. On exit, also after an error or Ctrl-C, they stop
the processes they started (by PID), delete the namespace and the veth.
"""

import ipaddress
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger("bench.link")

REGISTRY_PORT = 5000
SUBNET_POOL = ipaddress.ip_network("10.203.0.0/16")
READY_TIMEOUT_SECONDS = 20
STOP_TIMEOUT_SECONDS = 10


def write_registry_config(path, storage_dir, listen):
    """Write a docker-registry config: no authentication, plain HTTP, the
    filesystem driver on `storage_dir`. The system config is not used
    because Debian's turns on htpasswd authentication."""
    Path(path).write_text(f"""version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "{storage_dir}"
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: "{listen}"
""")


def start_registry(storage_dir, listen, work_dir, netns=None):
    """Start docker-registry serving `storage_dir` on `listen` (HOST:PORT),
    inside `netns` when given. Return the Popen; the caller stops it with
    stop_process(). Does not wait for readiness (see wait_for_registry)."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    Path(storage_dir).mkdir(parents=True, exist_ok=True)
    config = work_dir / "registry.yml"
    write_registry_config(config, storage_dir, listen)

    argv = ["docker-registry", "serve", str(config)]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    with open(work_dir / "registry.log", "ab") as log_file:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                   stdout=log_file, stderr=log_file)
    log.info("started docker-registry pid %d on %s (storage %s)",
             process.pid, listen, storage_dir)
    return process


def wait_for_registry(registry, process=None, timeout=READY_TIMEOUT_SECONDS):
    """Poll http://REGISTRY/v2/ until it returns 200. Raise RuntimeError on
    timeout or when `process` exits first."""
    url = f"http://{registry}/v2/"
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.pid} ({process.args[0]}) "
                               f"exited with {process.returncode} before "
                               f"{url} responded")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last_error = error
        time.sleep(0.1)
    raise RuntimeError(f"registry {url} timed out: no 200 response within "
                       f"{timeout}s; last error: {last_error}")


def stop_process(process, timeout=STOP_TIMEOUT_SECONDS):
    """Send SIGTERM to a Popen we started and SIGKILL after `timeout`.
    Logs failures in place of raising them, so cleanup paths can call it."""
    if process is None or process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not exit %ds after SIGTERM; sending SIGKILL",
                        process.pid, timeout)
            process.kill()
            process.wait(timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("stopping pid %d failed: %s", process.pid, error)


def free_port(host="127.0.0.1"):
    """Return a TCP port that was free a moment ago on `host`. Another
    program may take it before the caller binds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def ip(*args, netns=None, check=True):
    argv = ["ip", *(["-n", netns] if netns else []), *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          check=check)


def pick_subnet():
    """Return the first /30 of SUBNET_POOL, starting with 10.203.0.0/30,
    that overlaps no address or route of the host."""
    used = []
    for argv in (["ip", "-4", "-o", "addr", "show"], ["ip", "-4", "route", "show", "table", "all"]):
        output = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                check=True).stdout
        for word in output.split():
            try:
                used.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                continue
    used = [net for net in used if net.prefixlen > 0]
    for subnet in SUBNET_POOL.subnets(new_prefix=30):
        if not any(subnet.overlaps(net) for net in used):
            return subnet
    raise RuntimeError(f"no free /30 left in {SUBNET_POOL}")


def htb_burst_bytes(rate_mbit):
    """HTB burst for `rate_mbit`: the bytes of 4 ms at the rate, at least
    64 KiB. HTB refills tokens on the kernel timer, so a burst below one
    timer tick of data (rate / HZ, up to 4 ms at HZ=250) caps the rate
    below the setting, and a GSO packet on veth can be 64 KiB."""
    return max(64 * 1024, int(rate_mbit * 1e6 / 8 * 0.004))


def shape(interface, rate_mbit, netns=None):
    """Limit the egress of `interface` to `rate_mbit` with one HTB class."""
    burst = htb_burst_bytes(rate_mbit)
    ip_tc = ["tc", *(["-n", netns] if netns else [])]
    for argv in (
            [*ip_tc, "qdisc", "replace", "dev", interface, "root", "handle", "1:",
             "htb", "default", "10"],
            # quantum only matters between classes; set it so that HTB does
            # not warn about the default rate/r2q being too large.
            [*ip_tc, "class", "add", "dev", interface, "parent", "1:", "classid", "1:10",
             "htb", "rate", f"{rate_mbit}mbit", "ceil", f"{rate_mbit}mbit",
             "burst", str(burst), "cburst", str(burst), "quantum", "65536"]):
        subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)


class _LinkBase:
    """Context manager shared by both links: start() on entry, close() on
    exit, and close() also when start() fails part way."""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()


class Link(_LinkBase):
    """The registry behind a veth pair in a network namespace, with `rate_mbit`
    each way and `rtt_ms` round trip. Attributes: registry ("ADDR:5000"),
    netns, host_interface, subnet."""

    def __init__(self, rtt_ms, rate_mbit, storage_dir, forwarder_path, work_dir):
        if rtt_ms < 0 or rate_mbit <= 0:
            raise ValueError(f"invalid link: rtt {rtt_ms} ms, rate {rate_mbit} Mbit/s; "
                             f"expected rtt >= 0 and rate > 0")
        self.rtt_ms = rtt_ms
        self.rate_mbit = rate_mbit
        self.storage_dir = Path(storage_dir)
        self.forwarder_path = Path(forwarder_path)
        self.work_dir = Path(work_dir)
        self.netns = f"imb{os.getpid()}"
        self.host_interface = f"{self.netns}h"
        self.netns_interface = f"{self.netns}n"
        self.subnet = None
        self.registry = None
        self.processes = []
        self.created_netns = False
        self.created_veth = False

    def start(self):
        if not self.forwarder_path.is_file():
            raise RuntimeError(f"delay forwarder '{self.forwarder_path}' not found; "
                               f"build it with: ninja -C build bench/delay_forward")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.subnet = pick_subnet()
        host_address, netns_address = list(self.subnet.hosts())
        self.registry = f"{netns_address}:{REGISTRY_PORT}"

        ip("netns", "add", self.netns)
        self.created_netns = True
        ip("link", "add", self.host_interface, "type", "veth", "peer", "name",
           self.netns_interface, "netns", self.netns)
        self.created_veth = True
        ip("addr", "add", f"{host_address}/30", "dev", self.host_interface)
        ip("link", "set", self.host_interface, "up")
        ip("link", "set", "lo", "up", netns=self.netns)
        ip("addr", "add", f"{netns_address}/30", "dev", self.netns_interface, netns=self.netns)
        ip("link", "set", self.netns_interface, "up", netns=self.netns)
        shape(self.host_interface, self.rate_mbit)
        shape(self.netns_interface, self.rate_mbit, netns=self.netns)

        registry = start_registry(self.storage_dir, f"127.0.0.1:{REGISTRY_PORT}",
                                  self.work_dir / "link-registry", netns=self.netns)
        self.processes.append(registry)
        forwarder = self.start_forwarder(netns_address)
        self.processes.append(forwarder)
        wait_for_registry(self.registry, forwarder)
        if registry.poll() is not None:
            raise RuntimeError(f"docker-registry in {self.netns} exited with "
                               f"{registry.returncode}; see {self.work_dir / 'link-registry'}")
        log.info("link up: registry %s in netns %s, %s Mbit/s, %s ms round trip",
                 self.registry, self.netns, self.rate_mbit, self.rtt_ms)

    def start_forwarder(self, netns_address):
        argv = ["ip", "netns", "exec", self.netns, str(self.forwarder_path),
                f"{netns_address}:{REGISTRY_PORT}", f"127.0.0.1:{REGISTRY_PORT}",
                f"{self.rtt_ms / 2:g}"]
        with open(self.work_dir / "delay_forward.log", "ab") as log_file:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                       stdout=log_file, stderr=log_file)
        log.info("started delay_forward pid %d in %s", process.pid, self.netns)
        return process

    def rx_bytes(self):
        """Bytes received by the host end of the veth: what crossed the link
        towards the node, headers included."""
        path = Path("/sys/class/net") / self.host_interface / "statistics" / "rx_bytes"
        return int(path.read_text())

    def close(self):
        """Stop the forwarder and the registry, delete the namespace and the
        veth. Safe to call twice; logs but does not raise on failures."""
        for process in reversed(self.processes):
            stop_process(process)
        self.processes = []
        if self.created_veth:
            ip("link", "del", self.host_interface, check=False)
            self.created_veth = False
        if self.created_netns:
            result = ip("netns", "del", self.netns, check=False)
            if result.returncode != 0:
                log.warning("ip netns del %s failed: %s", self.netns, result.stderr.strip())
            self.created_netns = False


class LoopbackLink(_LinkBase):
    """The same interface without a link: a registry on 127.0.0.1 of the host,
    no delay and no rate limit. rx_bytes() counts all of `lo`, so other
    loopback traffic inflates it. For debugging the harness only."""

    def __init__(self, rtt_ms, rate_mbit, storage_dir, forwarder_path, work_dir):
        self.rtt_ms = 0
        self.rate_mbit = None
        self.storage_dir = Path(storage_dir)
        self.work_dir = Path(work_dir)
        self.registry = None
        self.process = None

    def start(self):
        self.registry = f"127.0.0.1:{free_port()}"
        self.process = start_registry(self.storage_dir, self.registry,
                                      self.work_dir / "link-registry")
        wait_for_registry(self.registry, self.process)

    def rx_bytes(self):
        return int(Path("/sys/class/net/lo/statistics/rx_bytes").read_text())

    def close(self):
        stop_process(self.process)
        self.process = None
