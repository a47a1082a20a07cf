# SPDX-License-Identifier: Apache-2.0
"""The shared chunk cache under pressure: size limits, damage, crashes.

These tests mount real images from a local registry and look at the cache
directory, `imgmount stats` and `imgmount cache` from outside. Reads that
must reach the daemon again drop the kernel's page cache of the file first
(posix_fadvise DONTNEED), because the mount keeps file pages cached.
"""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import unittest

from images import catalog
from lib import mount, procs
from lib.case import IntegrationCase, timeout

# A child process that reads files with several threads and checks each
# read against the expected SHA-256. Arguments: a JSON object with "files"
# ({path: sha256}), "threads", "rounds" and "drop_cache". Prints a JSON
# object of counts, with the first errors.
READER = r"""
import concurrent.futures, hashlib, json, os, sys
spec = json.loads(sys.argv[1])
def read_once(path, expected):
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            if spec["drop_cache"]:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            digest = hashlib.sha256()
            while True:
                block = os.read(fd, 1 << 20)
                if not block:
                    break
                digest.update(block)
        finally:
            os.close(fd)
    except OSError as error:
        return f"{path}: {os.strerror(error.errno)}"
    if digest.hexdigest() != expected:
        return f"{path}: wrong sha256 {digest.hexdigest()}"
    return None
jobs = [(path, expected) for _ in range(spec["rounds"])
        for path, expected in spec["files"].items()]
errors = []
with concurrent.futures.ThreadPoolExecutor(spec["threads"]) as pool:
    for result in pool.map(lambda job: read_once(*job), jobs):
        if result:
            errors.append(result)
print(json.dumps({"reads": len(jobs), "errors": len(errors), "first": errors[:5]}))
"""

LAZY_FILES = {f"data/blob{index}.bin": catalog.random_bytes(8 << 20, index)
              for index in range(4)}


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


class CacheCase(IntegrationCase):
    def lazy_image(self):
        return self.convert_image(self.push_image("lazy-large", "zstd"))

    def read_files(self, root, files, threads=4, rounds=1, drop_cache=True,
                   timeout_seconds=300):
        """Read files ({path: bytes}) under root in a child; return its counts."""
        spec = {"files": {os.path.join(root, path.lstrip("/")): sha256_hex(data)
                          for path, data in files.items()},
                "threads": threads, "rounds": rounds, "drop_cache": drop_cache}
        result = procs.run([sys.executable, "-c", READER, json.dumps(spec)],
                           timeout_seconds)
        return json.loads(result.stdout)

    def assert_reads_ok(self, root, files, **options):
        counts = self.read_files(root, files, **options)
        self.assertEqual(counts["errors"], 0, counts["first"])
        return counts

    def cache(self, *args, check=True):
        return mount.run_imgmount(["cache", *args], check=check)

    def du(self, cache_dir):
        return json.loads(self.cache("du", "--json", "--cache-dir", cache_dir).stdout)

    def chunk_files(self, cache_dir):
        chunks = os.path.join(cache_dir, "chunks")
        return sorted(os.path.join(directory, name)
                      for directory, _, names in os.walk(chunks) for name in names)

    def index_files(self, cache_dir):
        """The compiled indexes; the manifests beside them are not counted,
        because gc and prune keep them (a few KiB each)."""
        return sorted(name for name in os.listdir(os.path.join(cache_dir, "index"))
                      if name.endswith(".idx"))


class CacheDamageTest(CacheCase):
    def damage_and_remount(self, damage):
        """Fill a cache from one mount, damage one chunk, read from another.

        Returns (damaged chunk's digest, the second mount's stats, its log).
        """
        image = self.lazy_image()
        cache_dir = self.path("cache")
        first = self.mount_image(image, cache_dir=cache_dir)
        self.assert_reads_ok(first.mountpoint, {"data/blob0.bin": LAZY_FILES["data/blob0.bin"]})
        first.stop()

        victim = self.chunk_files(cache_dir)[0]
        damage(victim)
        second = self.mount_image(image, cache_dir=cache_dir,
                                  extra_args=["--memory-cache-size", "0"])
        self.assert_reads_ok(second.mountpoint, {"data/blob0.bin": LAZY_FILES["data/blob0.bin"]})
        # A second read finds the re-fetched chunk in the store.
        self.assert_reads_ok(second.mountpoint, {"data/blob0.bin": LAZY_FILES["data/blob0.bin"]})
        self.assertTrue(os.path.exists(victim), "the damaged chunk was not stored again")
        return "sha256:" + os.path.basename(victim), second.stats(), second.log()

    def test_flipped_bytes_refetched_once(self):
        def flip(path):
            with open(path, "r+b") as stream:
                stream.seek(1000)
                byte = stream.read(1)
                stream.seek(1000)
                stream.write(bytes([byte[0] ^ 0xFF]))

        digest, stats, log = self.damage_and_remount(flip)
        self.assertEqual(stats["chunks_from_network"], 1)
        self.assertEqual(stats["cache_corrupt"], 1)
        self.assertIn(digest, log)
        self.assertIn("damaged", log)

    def test_truncated_chunk_refetched_once(self):
        def truncate(path):
            os.truncate(path, os.path.getsize(path) // 2)

        digest, stats, log = self.damage_and_remount(truncate)
        self.assertEqual(stats["chunks_from_network"], 1)
        self.assertEqual(stats["cache_corrupt"], 1)
        self.assertIn(digest, log)

    def test_verify_reports_damage(self):
        image = self.lazy_image()
        cache_dir = self.path("cache")
        daemon = self.mount_image(image, cache_dir=cache_dir)
        self.assert_reads_ok(daemon.mountpoint, {"data/blob1.bin": LAZY_FILES["data/blob1.bin"]})

        clean = self.cache("verify", "--cache-dir", cache_dir)
        self.assertIn(b" 0 damaged", clean.stdout)
        victim = self.chunk_files(cache_dir)[3]
        with open(victim, "r+b") as stream:
            stream.seek(-1, os.SEEK_END)
            last = stream.read(1)
            stream.seek(-1, os.SEEK_END)
            stream.write(bytes([last[0] ^ 0x01]))

        damaged = self.cache("verify", "--cache-dir", cache_dir, check=False)
        self.assertEqual(damaged.returncode, 1, damaged.stdout)
        self.assertIn(b" 1 damaged", damaged.stdout)
        self.assertIn(os.path.basename(victim).encode(), damaged.stderr)
        self.assertFalse(os.path.exists(victim))
        again = self.cache("verify", "--cache-dir", cache_dir)
        self.assertIn(b" 0 damaged", again.stdout)


class CacheTrimTest(CacheCase):
    @timeout(600)
    def test_gc_and_prune_keep_mounted_image(self):
        image = self.lazy_image()
        other = self.convert_image(self.push_image("shared-a", "tar"))
        cache_dir = self.path("cache")
        mounted = self.mount_image(image, cache_dir=cache_dir,
                                   extra_args=["--memory-cache-size", "0"])
        self.assert_reads_ok(mounted.mountpoint, LAZY_FILES)
        mounted_indexes = self.index_files(cache_dir)

        unpinned = self.mount_image(other, cache_dir=cache_dir)
        self.read_text(unpinned.mountpoint, "/only-a.txt")
        unpinned.stop()
        all_indexes = self.index_files(cache_dir)
        self.assertGreater(len(all_indexes), len(mounted_indexes))

        self.cache("gc", "--size", "0", "--cache-dir", cache_dir)
        self.assertEqual(self.index_files(cache_dir), mounted_indexes)
        self.assertEqual(self.chunk_files(cache_dir), [])
        self.assert_reads_ok(mounted.mountpoint, LAZY_FILES)

        # The reads stored the chunks again; prune keeps them, because the
        # mounted image's pinned indexes reference them.
        before = self.chunk_files(cache_dir)
        self.assertGreater(len(before), 0)
        self.cache("prune", "--cache-dir", cache_dir)
        self.assertEqual(self.index_files(cache_dir), mounted_indexes)
        self.assertEqual(self.chunk_files(cache_dir), before)
        self.assert_reads_ok(mounted.mountpoint, LAZY_FILES)

        # Unmounted, nothing is pinned and prune empties the cache.
        mounted.stop()
        self.cache("prune", "--cache-dir", cache_dir)
        self.assertEqual(self.index_files(cache_dir), [])
        self.assertEqual(self.chunk_files(cache_dir), [])

    @timeout(600)
    def test_eviction_while_reading_no_eio(self):
        image = self.lazy_image()
        cache_dir = self.path("cache")
        daemon = self.mount_image(image, cache_dir=cache_dir,
                                  extra_args=["--memory-cache-size", "0"])
        files = {"data/blob2.bin": LAZY_FILES["data/blob2.bin"]}
        spec = {"files": {os.path.join(daemon.mountpoint, path): sha256_hex(data)
                          for path, data in files.items()},
                "threads": 4, "rounds": 40, "drop_cache": True}
        reader = subprocess.Popen([sys.executable, "-c", READER, json.dumps(spec)],
                                  stdout=subprocess.PIPE)
        procs.record_process(reader.pid)
        evictions = 0
        while reader.poll() is None and evictions < 200:
            self.cache("gc", "--size", "0", "--cache-dir", cache_dir)
            evictions += 1
        output, _ = reader.communicate(timeout=300)
        counts = json.loads(output)
        self.assertEqual(counts["errors"], 0, counts["first"])
        self.assertGreater(evictions, 1)
        self.assertEqual(daemon.stats()["fuse_read_errors"], 0)


class CacheLimitTest(CacheCase):
    @timeout(600)
    def test_limit_below_image_size(self):
        image = self.lazy_image()
        cache_dir = self.path("cache")
        limit = 12 << 20
        daemon = self.mount_image(image, cache_dir=cache_dir,
                                  extra_args=["--cache-size", "12M",
                                              "--memory-cache-size", "0"])
        for _ in range(2):
            self.assert_reads_ok(daemon.mountpoint, LAZY_FILES, threads=2)
            time.sleep(0.5)
        # Let the last eviction finish: it runs in the background.
        self.read_text(daemon.mountpoint, "/small.txt")
        self.assertTrue(procs.wait_until(
            lambda: self.du(cache_dir)["bytes"] <= limit, 20),
            f"the cache stays above its limit of {limit} bytes: {self.du(cache_dir)}")
        stats = daemon.stats()
        self.assertGreater(stats["cache_evictions"], 0)
        self.assertGreater(stats["cache_bytes"], 0)
        # The second pass found most chunks evicted and fetched them again.
        self.assertGreater(stats["chunks_from_network"], 32 * 1024 // 256)

    @timeout(600)
    def test_full_tmpfs_keeps_reads_working(self):
        image = self.lazy_image()
        tmpfs = self.path("tmpfs")
        os.makedirs(tmpfs)
        procs.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", tmpfs], 30)
        self.addCleanup(procs.run, ["umount", "-l", tmpfs], 30)
        procs.record_mount(tmpfs)
        cache_dir = os.path.join(tmpfs, "cache")

        # The limit is larger than the file system, so writes hit ENOSPC.
        daemon = self.mount_image(image, cache_dir=cache_dir,
                                  extra_args=["--cache-size", "1G",
                                              "--memory-cache-size", "0"])
        self.assert_reads_ok(daemon.mountpoint, LAZY_FILES)
        self.assert_reads_ok(daemon.mountpoint, LAZY_FILES)
        stats = daemon.stats()
        self.assertGreater(stats["cache_write_errors"], 0)
        self.assertEqual(stats["fuse_read_errors"], 0)
        self.assertEqual(daemon.log().count("cannot store chunk"), 1)

        # Another image on the full cache still mounts, with its indexes
        # kept in memory, and reads correctly.
        fill_file_system(os.path.join(tmpfs, "filler"))
        other = self.convert_image(self.push_image("shared-a", "tar"))
        second = self.mount_image(other, cache_dir=cache_dir)
        self.assert_reads_ok(second.mountpoint, catalog.SHARED_FILES)
        self.assertIn("keeping it in memory", second.log())


class CacheSharingAcrossDaemonsTest(CacheCase):
    @timeout(600)
    def test_two_daemons_fetch_shared_chunks_once(self):
        image_a = self.convert_image(self.push_image("shared-a", "gzip"))
        image_b = self.convert_image(self.push_image("shared-b", "tar"))
        cache_dir = self.path("cache")
        mount_a = self.mount_image(image_a, cache_dir=cache_dir)
        mount_b = self.mount_image(image_b, cache_dir=cache_dir)

        files = {}
        for path, data in catalog.SHARED_FILES.items():
            files[os.path.join(mount_a.mountpoint, path)] = data
            files[os.path.join(mount_b.mountpoint, "copy", path.split("/")[-1])] = data
        spec_files = {path: sha256_hex(data) for path, data in files.items()}
        offset = self.registry.log_offset()
        readers = []
        for _ in range(2):
            spec = {"files": spec_files, "threads": 16, "rounds": 4, "drop_cache": False}
            reader = subprocess.Popen([sys.executable, "-c", READER, json.dumps(spec)],
                                      stdout=subprocess.PIPE)
            procs.record_process(reader.pid)
            readers.append(reader)
        for reader in readers:
            output, _ = reader.communicate(timeout=300)
            counts = json.loads(output)
            self.assertEqual(counts["errors"], 0, counts["first"])

        # Every shared chunk is fetched by one daemon: 256 KiB chunks of
        # the 600 KiB and 300 KiB files.
        chunk = 256 * 1024
        distinct = sum(-(-len(data) // chunk) for data in catalog.SHARED_FILES.values())
        fetched = (mount_a.stats()["chunks_from_network"]
                   + mount_b.stats()["chunks_from_network"])
        self.assertEqual(fetched, distinct)
        blob_gets = [entry for entry in self.registry.access_log(offset)
                     if "/blobs/" in entry.path and entry.method == "GET"]
        self.assertLessEqual(len(blob_gets), distinct, blob_gets)


class CrashTest(CacheCase):
    @timeout(900)
    def test_kill9_during_reads_then_remount(self):
        image = self.lazy_image()
        reference = self.dump(self.reference_rootfs(image))
        cache_dir = self.path("cache")
        mountpoint = self.path("mnt")
        daemon = self.mount_image(image, cache_dir=cache_dir, mountpoint=mountpoint)

        spec = {"files": {os.path.join(mountpoint, path): sha256_hex(data)
                          for path, data in LAZY_FILES.items()},
                "threads": 16, "rounds": 2, "drop_cache": True}
        reader = subprocess.Popen([sys.executable, "-c", READER, json.dumps(spec)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.record_process(reader.pid)
        self.assertTrue(procs.wait_until(
            lambda: len(self.chunk_files(cache_dir)) >= 8, 60))
        os.kill(daemon.process.pid, signal.SIGKILL)
        daemon.process.wait(timeout=30)
        reader.wait(timeout=120)

        # The old mount now fails with ENOTCONN, although stat() may still
        # succeed from the kernel's attribute cache. The new mount must
        # detach it and serve the same tree from the same cache.
        with self.assertRaises(OSError):
            os.statvfs(mountpoint)
        again = mount.Mount(image, mountpoint, cache_dir, self.path("again.log"))
        self.addCleanup(again.stop)
        again.start()
        self.assertTrue(procs.wait_until(lambda: _lists_image(mountpoint), 60), again.log())
        self.assertIn("stale mount", again.log())
        self.assert_matches_reference(reference, self.dump(mountpoint))
        self.assert_reads_ok(mountpoint, LAZY_FILES)
        self.assertEqual(again.stats()["verify_failures"], 0)


def fill_file_system(path):
    """Write zeros to path until the file system is full."""
    with open(path, "wb", buffering=0) as stream:
        try:
            while True:
                stream.write(bytes(64 * 1024))
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise


def _lists_image(path):
    """Return True once path shows the image's root (not the stale mount,
    and not the empty directory under it)."""
    try:
        return "small.txt" in os.listdir(path)
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
