/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `imgmount cache du|verify|gc|prune [--cache-dir DIR]`: inspect and trim
 * the shared chunk cache. The commands are safe while daemons use the same
 * directory: gc and prune take the cache's deletion lock and keep every
 * index that a running mount has pinned.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cache/cache_admin.h"
#include "cache/chunk_store.h"
#include "common/log.h"
#include "common/util.h"
#include "fs/commands.h"
#include "fs/image_options.h"

struct cache_args {
	const char *subcommand;
	const char *cache_dir;
	bool json;
	bool has_size;
	uint64_t size;
};

static void cache_usage(FILE *out)
{
	fprintf(out,
		"usage: imgmount cache SUBCOMMAND [OPTIONS]\n\n"
		"Inspect and trim the chunk cache that mounts share.\n\n"
		"subcommands:\n"
		"  du               print the disk usage, chunk count and index count\n"
		"  verify           check every chunk's SHA-256 against its name and every\n"
		"                   index's CRC; delete damaged files (exit status 1 if any)\n"
		"  gc --size BYTES  evict least recently used files until the cache uses at\n"
		"                   most BYTES (K, M, G suffixes)\n"
		"  prune            delete indexes no running mount uses, then chunks that\n"
		"                   no remaining index references\n\n"
		"options:\n"
		"      --cache-dir DIR  cache directory (default: /var/cache/imgmount for root,\n"
		"                       ~/.cache/imgmount for other users)\n"
		"      --json           du: print one JSON object\n"
		"      --size BYTES     gc: target size\n"
		"  -h, --help           show this help\n");
}

static int parse_cache_args(int argc, char **argv, struct cache_args *args)
{
	enum { OPT_CACHE_DIR = 256, OPT_JSON, OPT_SIZE };
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "size", required_argument, NULL, OPT_SIZE },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'h':
			cache_usage(stdout);
			exit(IM_EXIT_OK);
		case OPT_CACHE_DIR:
			args->cache_dir = optarg;
			break;
		case OPT_JSON:
			args->json = true;
			break;
		case OPT_SIZE:
			if (im_parse_size(optarg, &args->size) < 0) {
				fprintf(stderr, "imgmount: invalid --size \"%s\": expected a size "
					"such as 2G or 500M\n", optarg);
				return -EINVAL;
			}
			args->has_size = true;
			break;
		default:
			return -EINVAL;
		}
	}
	if (argc - optind != 1) {
		cache_usage(stderr);
		return -EINVAL;
	}
	args->subcommand = argv[optind];
	if (strcmp(args->subcommand, "gc") == 0 && !args->has_size) {
		fprintf(stderr, "imgmount: cache gc needs --size BYTES\n");
		return -EINVAL;
	}
	return 0;
}

static int print_json(struct json_object *obj)
{
	const char *text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!text)
		return -ENOMEM;
	printf("%s\n", text);
	return 0;
}

static int run_du(const char *dir, bool json)
{
	struct im_cache_usage usage;
	struct json_object *obj;
	int r;

	r = im_cache_usage_scan(dir, &usage);
	if (r < 0)
		return im_log_errno(r, "measuring cache directory \"%s\" failed", dir);

	if (!json) {
		printf("%llu bytes in %s: %llu chunks (%llu bytes), %llu indexes (%llu bytes)\n",
		       (unsigned long long)usage.bytes, dir,
		       (unsigned long long)usage.chunk_count, (unsigned long long)usage.chunk_bytes,
		       (unsigned long long)usage.index_count, (unsigned long long)usage.index_bytes);
		return 0;
	}

	obj = json_object_new_object();
	if (!obj)
		return -ENOMEM;
	json_object_object_add(obj, "cache_dir", json_object_new_string(dir));
	json_object_object_add(obj, "bytes", json_object_new_uint64(usage.bytes));
	json_object_object_add(obj, "chunks", json_object_new_uint64(usage.chunk_count));
	json_object_object_add(obj, "chunk_bytes", json_object_new_uint64(usage.chunk_bytes));
	json_object_object_add(obj, "indexes", json_object_new_uint64(usage.index_count));
	json_object_object_add(obj, "index_bytes", json_object_new_uint64(usage.index_bytes));
	r = print_json(obj);
	json_object_put(obj);
	return r;
}

/* Return: 0 when everything was intact, 1 when damage was found, -errno. */
static int run_verify(const char *dir)
{
	struct im_cache_check_result result;
	int r;

	r = im_cache_verify(dir, &result);
	if (r < 0)
		return im_log_errno(r, "verifying cache directory \"%s\" failed", dir);
	printf("checked %llu files in %s: %llu damaged and removed\n",
	       (unsigned long long)result.checked, dir, (unsigned long long)result.bad);
	return result.bad > 0 ? 1 : 0;
}

static int run_gc(const char *dir, uint64_t size)
{
	struct im_cache_evict_result result;
	int r;

	r = im_cache_evict(dir, size, true, &result);
	if (r < 0)
		return im_log_errno(r, "evicting from cache directory \"%s\" failed", dir);
	printf("removed %llu files (%llu bytes) from %s; it now uses %llu bytes\n",
	       (unsigned long long)result.removed_files, (unsigned long long)result.removed_bytes,
	       dir, (unsigned long long)result.bytes_after);
	return 0;
}

static int run_prune(const char *dir)
{
	struct im_cache_prune_result result;
	int r;

	r = im_cache_prune(dir, &result);
	if (r < 0)
		return im_log_errno(r, "pruning cache directory \"%s\" failed", dir);
	printf("removed %llu indexes and %llu chunks (%llu bytes) from %s\n",
	       (unsigned long long)result.removed_indexes,
	       (unsigned long long)result.removed_chunks,
	       (unsigned long long)result.removed_bytes, dir);
	return 0;
}

int im_cmd_cache(int argc, char **argv)
{
	struct cache_args args = { 0 };
	char dir[PATH_MAX];
	int r;

	if (parse_cache_args(argc, argv, &args) < 0)
		return IM_EXIT_USAGE;

	r = im_image_options_prepare_cache_dir(args.cache_dir, dir);
	if (r < 0)
		return IM_EXIT_FAILURE;

	if (strcmp(args.subcommand, "du") == 0) {
		r = run_du(dir, args.json);
	} else if (strcmp(args.subcommand, "verify") == 0) {
		r = run_verify(dir);
	} else if (strcmp(args.subcommand, "gc") == 0) {
		r = run_gc(dir, args.size);
	} else if (strcmp(args.subcommand, "prune") == 0) {
		r = run_prune(dir);
	} else {
		fprintf(stderr, "imgmount: unknown cache subcommand \"%s\"; expected du, "
			"verify, gc or prune\n", args.subcommand);
		return IM_EXIT_USAGE;
	}
	if (r < 0)
		return IM_EXIT_FAILURE;
	return r == 0 ? IM_EXIT_OK : IM_EXIT_FAILURE;
}
