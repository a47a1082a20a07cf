/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test-only program: mount a fixed two-layer image built in memory, with no
 * registry, so the FUSE daemon can be checked with ordinary tools (see
 * tests/integration/fuse_basic.sh, which also lists what it expects).
 *
 * Every regular file is empty or made of IM_CHUNK_ZEROS chunks, so the real
 * fetcher and chunk store serve it without any network request. The
 * control socket is replaced by a stub that only starts and stops a thread,
 * which is enough to check that stop signals still reach the main thread
 * while another thread exists.
 *
 * Usage: mount_local MOUNTPOINT CACHE_DIR [-d | -b]
 * -d turns on libfuse's debug output. Without -b it stays in the foreground
 * and ends itself with SIGALRM after SELF_TIMEOUT seconds, so a test that
 * hangs cannot leave it behind. With -b it detaches once mounted, like
 * `imgmount mount`. The alarm does not survive the fork, so the caller must
 * unmount it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/chunk_store.h"
#include "cache/fetcher.h"
#include "common/log.h"
#include "fs/control.h"
#include "fs/daemon.h"
#include "index/layer_index.h"
#include "index/tree.h"

#define SELF_TIMEOUT 300

#define N_LAYERS 2

/* 8 GiB: one zero chunk larger than IM_CHUNK_MAX_LENGTH, which the index
 * accepts for zeros. The read path must never allocate all of it. */
#define BIG_FILE_SIZE (8ull << 30)

/* Files in many/: enough for several readdir replies. */
#define MANY_FILES 2000

/* File capability v2, cap_net_raw permitted, no effective bit. */
static const unsigned char ping_capability[20] = { 0, 0, 0, 2, 0, 0x20 };

static struct im_index_builder *builder;

static int add(enum im_entry_type type, const char *path, uint32_t mode, uint32_t uid,
	       uint32_t gid, const char *link)
{
	struct im_entry e = {
		.type = type,
		.mode = mode,
		.uid = uid,
		.gid = gid,
		.mtime_sec = 1700000000,
		.path = path,
		.path_len = (uint32_t)strlen(path),
		.link = link ? link : "",
		.link_len = link ? (uint32_t)strlen(link) : 0,
	};

	return im_index_builder_add_entry(builder, &e);
}

static int add_device(enum im_entry_type type, const char *path, uint32_t mode, uint32_t gid,
		      uint32_t major, uint32_t minor)
{
	struct im_entry e = {
		.type = type,
		.mode = mode,
		.gid = gid,
		.mtime_sec = 1700000000,
		.rdev_major = major,
		.rdev_minor = minor,
		.path = path,
		.path_len = (uint32_t)strlen(path),
		.link = "",
	};

	return im_index_builder_add_entry(builder, &e);
}

/* A regular file of size zero bytes, split into zero chunks of chunk bytes. */
static int add_zeros(const char *path, uint32_t mode, uint64_t size, uint64_t chunk,
		     int64_t mtime_sec, uint32_t mtime_nsec)
{
	struct im_entry e = {
		.type = IM_ENTRY_REG,
		.mode = mode,
		.mtime_sec = mtime_sec,
		.mtime_nsec = mtime_nsec,
		.size = size,
		.path = path,
		.path_len = (uint32_t)strlen(path),
		.link = "",
	};
	int r;

	r = im_index_builder_add_entry(builder, &e);
	for (uint64_t off = 0; r == 0 && off < size; off += chunk) {
		struct im_chunk c = {
			.file_offset = off,
			.length = size - off < chunk ? size - off : chunk,
			.flags = IM_CHUNK_ZEROS,
		};

		r = im_index_builder_add_chunk(builder, &c);
	}
	return r;
}

static int add_lower_entries(void)
{
	char long_target[256], path[32];
	int r = 0;

	memset(long_target, 't', 255);
	long_target[255] = '\0';

	r |= add(IM_ENTRY_DIR, "etc", 0755, 0, 0, NULL);
	r |= add_zeros("etc/hostname", 0644, 6, 6, 1700000000, 0);
	r |= add_zeros("empty", 0644, 0, 1, 1700000000, 0);
	r |= add_zeros("zeros.bin", 0644, (1 << 20) + 5, 65536, 1700000000, 0);
	r |= add_zeros("big.bin", 0644, BIG_FILE_SIZE, BIG_FILE_SIZE, 1700000000, 0);
	r |= add_zeros("f1", 0644, 1, 1, 1644325033, 182744228);
	r |= add_zeros("f2", 0644, 1, 1, -2146608000, 0);

	r |= add(IM_ENTRY_SYMLINK, "usr/lib/libpq.so", 0777, 0, 0, "libpq.so.5.13");
	r |= add(IM_ENTRY_SYMLINK, "long", 0777, 0, 0, long_target);
	r |= add_device(IM_ENTRY_CHAR, "dev/null", 0666, 0, 1, 3);
	r |= add_device(IM_ENTRY_BLOCK, "dev/sda", 0660, 6, 8, 0);
	r |= add_device(IM_ENTRY_CHAR, "dev/wh", 0, 0, 0, 0);
	r |= add_device(IM_ENTRY_BLOCK, "dev/big", 0600, 0, 259, 65536);
	r |= add(IM_ENTRY_FIFO, "run/ctl", 0620, 0, 0, NULL);

	r |= add_zeros("usr/bin/ping", 0755, 4, 4, 1700000000, 0);
	r |= im_index_builder_add_xattr(builder, "security.capability", ping_capability,
					sizeof(ping_capability));
	r |= im_index_builder_add_xattr(builder, "user.note", "a=b,c", 5);
	r |= im_index_builder_add_xattr(builder, "trusted.overlay.opaque", "y", 1);
	r |= im_index_builder_add_xattr(builder, "user.overlay.opaque", "y", 1);
	r |= add_zeros("usr/bin/sudo", 04111, 4, 4, 1700000000, 0);
	r |= add(IM_ENTRY_DIR, "tmp", 01777, 0, 0, NULL);
	r |= add(IM_ENTRY_DIR, "srv", 03775, 0, 100, NULL);

	r |= add_zeros("usr/bin/x", 0755, 1, 1, 1700000000, 0);
	r |= add(IM_ENTRY_HARDLINK, "usr/bin/y", 0, 0, 0, "usr/bin/x");
	r |= add(IM_ENTRY_HARDLINK, "usr/bin/z", 0, 0, 0, "usr/bin/x");

	r |= add(IM_ENTRY_DIR, "d", 0755, 0, 0, NULL);
	r |= add(IM_ENTRY_DIR, "d/s1", 0755, 0, 0, NULL);
	r |= add(IM_ENTRY_DIR, "d/s2", 0755, 0, 0, NULL);
	r |= add_zeros("d/f", 0644, 1, 1, 1700000000, 0);

	r |= add(IM_ENTRY_DIR, "a", 0755, 0, 0, NULL);
	r |= add(IM_ENTRY_DIR, "a/b", 0755, 0, 0, NULL);
	r |= add_zeros("a/b/foo", 0644, 3, 3, 1700000000, 0);

	for (int i = 0; r == 0 && i < MANY_FILES; i++) {
		snprintf(path, sizeof(path), "many/f%04d", i);
		r |= add_zeros(path, 0644, 0, 1, 1700000000, 0);
	}
	return r;
}

static int add_upper_entries(void)
{
	int r = 0;

	r |= add(IM_ENTRY_WHITEOUT, "d/s2", 0, 0, 0, NULL);
	r |= add(IM_ENTRY_DIR, "d/s3", 0755, 0, 0, NULL);
	r |= add(IM_ENTRY_DIR, "a", 0700, 1000, 1000, NULL);
	r |= im_index_builder_add_xattr(builder, "trusted.overlay.opaque", "y", 1);
	r |= add(IM_ENTRY_OPAQUE, "a", 0, 0, 0, NULL);
	r |= add(IM_ENTRY_WHITEOUT, "changelog.txt", 0, 0, 0, NULL);
	return r;
}

static int build_layer(int n, void **ret_data, struct im_layer_index **ret)
{
	struct im_digest digest;
	size_t len;
	int r;

	im_sha256(&n, sizeof(n), &digest);
	r = im_index_builder_new(&digest, 1 << 20, &builder);
	if (r < 0)
		return r;

	r = n == 0 ? add_lower_entries() : add_upper_entries();
	if (r == 0)
		r = im_index_builder_write_buffer(builder, ret_data, &len);
	if (r == 0)
		r = im_layer_index_open_buffer(*ret_data, len, ret);

	im_index_builder_free(builder);
	builder = NULL;
	return r < 0 ? r : (r ? -EINVAL : 0);
}

/* Stand-in for the control socket: one thread that waits on a pipe. */
static int stub_pipe[2] = { -1, -1 };
static pthread_t stub_thread;

static void *stub_wait(void *arg)
{
	char c;

	(void)arg;
	while (read(stub_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

int im_control_log_path(const char *mountpoint, char *out, size_t out_size)
{
	(void)mountpoint;
	(void)out;
	(void)out_size;
	return -ENOTSUP;
}

bool im_control_is_live(const char *mountpoint)
{
	(void)mountpoint;
	return false;
}

int im_control_start(const char *mountpoint)
{
	(void)mountpoint;
	if (pipe(stub_pipe) < 0)
		return -errno;
	return -pthread_create(&stub_thread, NULL, stub_wait, NULL);
}

void im_control_stop(void)
{
	close(stub_pipe[1]);
	pthread_join(stub_thread, NULL);
	close(stub_pipe[0]);
}

int main(int argc, char **argv)
{
	struct im_layer_index *indexes[N_LAYERS] = { 0 };
	struct im_mount_layer layers[N_LAYERS] = { 0 };
	void *buffers[N_LAYERS] = { 0 };
	struct im_chunk_store *store = NULL;
	struct im_fetcher *fetcher = NULL;
	struct im_tree *tree = NULL;
	int r;

	bool debug = argc == 4 && strcmp(argv[3], "-d") == 0;
	bool background = argc == 4 && strcmp(argv[3], "-b") == 0;

	if (argc < 3 || argc > 4 || (argc == 4 && !debug && !background)) {
		fprintf(stderr, "usage: mount_local MOUNTPOINT CACHE_DIR [-d | -b]\n");
		return 2;
	}
	alarm(SELF_TIMEOUT);

	for (int i = 0; i < N_LAYERS; i++) {
		r = build_layer(i, &buffers[i], &indexes[i]);
		if (r < 0) {
			im_log_errno(r, "building test layer %d failed", i + 1);
			goto out;
		}
		layers[i].index = indexes[i];
		layers[i].blob.repository = "local/test";
		layers[i].blob.size = 1 << 20;
	}

	r = im_tree_build(indexes, N_LAYERS, &tree);
	if (r < 0)
		goto out;
	r = im_chunk_store_open(argv[2], &store);
	if (r < 0)
		goto out;
	r = im_fetcher_new(store, &fetcher);
	if (r < 0)
		goto out;

	struct im_daemon_config cfg = {
		.mountpoint = argv[1],
		.fsname = "mount_local,test",
		.tree = tree,
		.layers = layers,
		.n_layers = N_LAYERS,
		.fetcher = fetcher,
		.foreground = !background,
		.debug = debug,
	};
	r = im_daemon_run(&cfg);
out:
	im_fetcher_free(fetcher);
	im_chunk_store_free(store);
	im_tree_free(tree);
	for (int i = 0; i < N_LAYERS; i++) {
		im_layer_index_free(indexes[i]);
		free(buffers[i]);
	}
	return r < 0 ? 1 : 0;
}
