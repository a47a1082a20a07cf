/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `imgmount mount [OPTIONS] IMAGE MOUNTPOINT`: open the image (manifest and
 * layer indexes), merge the layers into one tree, and hand it to the FUSE
 * daemon. Everything that can fail for a reason the user can fix happens
 * before the mount, so a mount that appears is a mount that works.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/commands.h"
#include "fs/daemon.h"
#include "fs/image.h"
#include "fs/image_options.h"
#include "fs/mount_cache.h"
#include "fs/paths.h"
#include "index/tree.h"

#define MAX_INSECURE_HOSTS 32

struct mount_args {
	const char *image;
	const char *mountpoint;
	const char *cache_dir;
	const char *insecure_hosts[MAX_INSECURE_HOSTS];
	size_t n_insecure_hosts;
	char *platform;             /* "os/arch[/variant]", parsed in place */
	bool foreground;
	bool debug;
	bool allow_other;
	unsigned max_threads;
	uint64_t cache_size;        /* bytes; 0 for the default */
	uint64_t memory_cache_size; /* bytes; 0 disables the memory cache */
	const char *auth_file;
	unsigned read_timeout;      /* seconds; 0 for the registry client's default */
	const char *certs_dir;      /* NULL for /etc/containerd/certs.d */
	const char *ca_file;
};

static void mount_usage(FILE *out)
{
	fprintf(out,
		"usage: imgmount mount [OPTIONS] IMAGE MOUNTPOINT\n\n"
		"Mount IMAGE (REGISTRY/REPOSITORY@sha256:DIGEST, or :TAG, resolved once)\n"
		"read-only at MOUNTPOINT. File contents are fetched on demand, verified\n"
		"against their SHA-256 and kept in the shared cache.\n\n"
		"options:\n"
		"  -f, --foreground            stay in the foreground (default: detach once mounted)\n"
		"  -d, --debug                 log every FUSE request and debug messages (implies -f)\n"
		"  -v, --verbose               log debug messages\n"
		"      --cache-dir DIR         chunk cache directory (default: /var/cache/imgmount\n"
		"                              for root, ~/.cache/imgmount for other users)\n"
		"      --insecure-registry HOST  reach HOST over plain HTTP (loopback always is)\n"
		"      --platform OS/ARCH[/VARIANT]  platform to pick from an image index\n"
		"                              (default: linux/%s)\n"
		"      --authfile FILE         registry credentials file (Docker config.json\n"
		"                              format; default: $REGISTRY_AUTH_FILE,\n"
		"                              $XDG_RUNTIME_DIR/containers/auth.json, then\n"
		"                              $DOCKER_CONFIG/config.json or ~/.docker/config.json)\n"
		"      --read-timeout SECONDS  fail a read with EIO when the registry has not\n"
		"                              delivered its data within SECONDS, retries\n"
		"                              included (default: 30)\n"
		"      --certs-dir DIR         containerd-style certs.d directory: DIR/HOST/\n"
		"                              hosts.toml mirrors, ca.crt, client.cert and\n"
		"                              client.key (default: /etc/containerd/certs.d)\n"
		"      --ca-file FILE          PEM CA certificates to verify the registry with,\n"
		"                              instead of the system's\n"
		"      --cache-size BYTES      size limit of the cache directory, with K, M or G\n"
		"                              suffixes (default: 10%% of its file system, at\n"
		"                              most 20G); every mount of the directory enforces\n"
		"                              its own limit, so the smallest one wins\n"
		"      --memory-cache-size BYTES  chunks kept in memory (default: 64M; 0: none)\n"
		"      --allow-other           let other users read the mount\n"
		"      --threads N             maximum idle FUSE worker threads\n"
		"  -h, --help                  show this help\n",
		im_host_arch());
}

static int parse_mount_args(int argc, char **argv, struct mount_args *args)
{
	enum {
		OPT_CACHE_DIR = 256, OPT_INSECURE, OPT_PLATFORM, OPT_ALLOW_OTHER, OPT_THREADS,
		OPT_AUTHFILE, OPT_READ_TIMEOUT, OPT_CERTS_DIR, OPT_CA_FILE, OPT_CACHE_SIZE, OPT_MEMORY_CACHE_SIZE,
	};
	static const struct option options[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "insecure-registry", required_argument, NULL, OPT_INSECURE },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "allow-other", no_argument, NULL, OPT_ALLOW_OTHER },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "authfile", required_argument, NULL, OPT_AUTHFILE },
		{ "read-timeout", required_argument, NULL, OPT_READ_TIMEOUT },
		{ "certs-dir", required_argument, NULL, OPT_CERTS_DIR },
		{ "ca-file", required_argument, NULL, OPT_CA_FILE },
		{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
		{ "memory-cache-size", required_argument, NULL, OPT_MEMORY_CACHE_SIZE },
		{}
	};
	uint64_t threads, seconds;
	int c;

	while ((c = getopt_long(argc, argv, "fdvh", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			args->foreground = true;
			break;
		case 'd':
			args->debug = true;
			args->foreground = true;
			im_log_set_level(IM_LOG_DEBUG);
			break;
		case 'v':
			im_log_set_level(IM_LOG_DEBUG);
			break;
		case 'h':
			mount_usage(stdout);
			exit(IM_EXIT_OK);
		case OPT_CACHE_DIR:
			args->cache_dir = optarg;
			break;
		case OPT_INSECURE:
			if (args->n_insecure_hosts == MAX_INSECURE_HOSTS) {
				fprintf(stderr, "imgmount: too many --insecure-registry options (at most %d)\n",
					MAX_INSECURE_HOSTS);
				return -EINVAL;
			}
			args->insecure_hosts[args->n_insecure_hosts++] = optarg;
			break;
		case OPT_PLATFORM:
			args->platform = optarg;
			break;
		case OPT_ALLOW_OTHER:
			args->allow_other = true;
			break;
		case OPT_THREADS:
			if (im_parse_u64(optarg, &threads) < 0 || threads == 0 || threads > 1024) {
				fprintf(stderr, "imgmount: invalid --threads \"%s\": expected 1 to 1024\n", optarg);
				return -EINVAL;
			}
			args->max_threads = (unsigned)threads;
			break;
		case OPT_AUTHFILE:
			args->auth_file = optarg;
			break;
		case OPT_READ_TIMEOUT:
			if (im_parse_u64(optarg, &seconds) < 0 || seconds == 0 || seconds > 3600) {
				fprintf(stderr, "imgmount: invalid --read-timeout \"%s\": expected 1 to 3600 "
					"seconds\n", optarg);
				return -EINVAL;
			}
			args->read_timeout = (unsigned)seconds;
			break;
		case OPT_CERTS_DIR:
			args->certs_dir = optarg;
			break;
		case OPT_CA_FILE:
			args->ca_file = optarg;
			break;
		case OPT_CACHE_SIZE:
			if (im_parse_size(optarg, &args->cache_size) < 0 || args->cache_size == 0) {
				fprintf(stderr, "imgmount: invalid --cache-size \"%s\": expected a "
					"positive size such as 2G or 500M\n", optarg);
				return -EINVAL;
			}
			break;
		case OPT_MEMORY_CACHE_SIZE:
			if (im_parse_size(optarg, &args->memory_cache_size) < 0) {
				fprintf(stderr, "imgmount: invalid --memory-cache-size \"%s\": expected "
					"a size such as 64M, or 0 to disable it\n", optarg);
				return -EINVAL;
			}
			break;
		default:
			return -EINVAL;
		}
	}

	if (argc - optind != 2) {
		mount_usage(stderr);
		return -EINVAL;
	}
	args->image = argv[optind];
	args->mountpoint = argv[optind + 1];
	return 0;
}

/*
 * A daemon that died leaves its mountpoint returning ENOTCONN to every call.
 * Detach such a stale mount so that mounting again works without manual
 * cleanup.
 */
static int clear_stale_mount(const char *mountpoint)
{
	struct statfs sfs;
	struct stat st;
	pid_t pid;
	int status;

	/* statfs(2), not stat(2): a dead FUSE mount still returns stat()
	 * results from the kernel's attribute cache, but statfs() always
	 * sends a request to the daemon. */
	if (statfs(mountpoint, &sfs) == 0) {
		if (stat(mountpoint, &st) < 0)
			return -errno;
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	}
	if (errno != ENOTCONN && errno != ECONNABORTED)
		return -errno;

	im_warn("\"%s\" is a stale mount of a daemon that exited; detaching it", mountpoint);
	if (umount2(mountpoint, MNT_DETACH) == 0)
		return 0;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", mountpoint, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EBUSY;
	return 0;
}

static int run_mount(struct mount_args *args)
{
	struct im_image_options opts = {
		.insecure_hosts = args->insecure_hosts,
		.n_insecure_hosts = args->n_insecure_hosts,
		.os = "linux",
		.arch = im_host_arch(),
		.auth_file = args->auth_file,
		.read_timeout_seconds = args->read_timeout,
		.certs_dir = args->certs_dir,
		.ca_file = args->ca_file,
	};
	struct im_mount_layer *layers = NULL;
	struct im_fetcher *fetcher = NULL;
	struct im_mount_cache mount_cache = { .pin_fd = -1 };
	struct im_image *img = NULL;
	struct im_tree *tree = NULL;
	char cache_dir[PATH_MAX], mountpoint[PATH_MAX];
	uint64_t start = im_now_ns();
	int r;

	if (args->platform) {
		r = im_image_options_set_platform(args->platform, &opts);
		if (r < 0)
			return r;
	}

	r = clear_stale_mount(args->mountpoint);
	if (r < 0)
		return im_log_errno(r, "mountpoint \"%s\" is not usable", args->mountpoint);
	if (!realpath(args->mountpoint, mountpoint))
		return im_log_errno(-errno, "resolving mountpoint \"%s\" failed", args->mountpoint);

	r = im_image_options_prepare_cache_dir(args->cache_dir, cache_dir);
	if (r < 0)
		return r;
	opts.cache_dir = cache_dir;

	r = im_image_open(args->image, &opts, &img);
	if (r < 0)
		goto out;

	r = im_tree_build(img->indexes, img->n_layers, &tree);
	if (r < 0) {
		im_err("merging the layers of %s failed; the image cannot be mounted", img->display_name);
		goto out;
	}

	r = im_fetcher_new(img->store, &fetcher);
	if (r < 0)
		goto out;

	r = im_mount_cache_setup(img, fetcher, args->cache_size, args->memory_cache_size,
				 &mount_cache);
	if (r < 0)
		goto out;

	layers = calloc(img->n_layers ? img->n_layers : 1, sizeof(*layers));
	if (!layers) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < img->n_layers; i++) {
		layers[i].index = img->indexes[i];
		layers[i].blob = img->blobs[i];
	}

	im_info("mounting %s at %s: %zu layers, %llu inodes, prepared in %.3f s",
		img->display_name, mountpoint, img->n_layers,
		(unsigned long long)im_tree_inode_count(tree),
		(double)(im_now_ns() - start) / 1e9);

	struct im_daemon_config cfg = {
		.mountpoint = mountpoint,
		.fsname = img->display_name,
		.tree = tree,
		.layers = layers,
		.n_layers = img->n_layers,
		.fetcher = fetcher,
		.foreground = args->foreground,
		.debug = args->debug,
		.allow_other = args->allow_other,
		.max_threads = args->max_threads,
	};
	r = im_daemon_run(&cfg);

out:
	free(layers);
	im_fetcher_free(fetcher);
	im_mount_cache_clear(&mount_cache);
	im_tree_free(tree);
	im_image_free(img);
	return r;
}

int im_cmd_mount(int argc, char **argv)
{
	struct mount_args args = { .memory_cache_size = IM_DEFAULT_MEMORY_CACHE_BYTES };
	int r;

	r = parse_mount_args(argc, argv, &args);
	if (r < 0)
		return IM_EXIT_USAGE;

	r = run_mount(&args);
	return r < 0 ? IM_EXIT_FAILURE : IM_EXIT_OK;
}
