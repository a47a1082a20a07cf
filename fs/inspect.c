/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Common options, image opening and exit statuses of the inspection
 * commands. Errors are logged where they happen, and fs/image.c names the
 * manifest, layer or TOC involved. This file adds one line that names the
 * image and the next step to try.
 */
#include "fs/inspect.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/stats.h"
#include "fs/image_options.h"
#include "fs/resolve.h"
#include "registry/reference.h"

int im_inspect_parse_option(struct im_inspect_args *args, int opt, char *arg)
{
	switch (opt) {
	case IM_INSPECT_OPT_CACHE_DIR:
		args->cache_dir = arg;
		return 1;
	case IM_INSPECT_OPT_INSECURE:
		if (args->n_insecure_hosts == IM_INSPECT_MAX_INSECURE_HOSTS) {
			fprintf(stderr, "imgmount: too many --insecure-registry options (at most %d)\n",
				IM_INSPECT_MAX_INSECURE_HOSTS);
			return -EINVAL;
		}
		args->insecure_hosts[args->n_insecure_hosts++] = arg;
		return 1;
	case IM_INSPECT_OPT_PLATFORM:
		args->platform = arg;
		return 1;
	case IM_INSPECT_OPT_JSON:
		args->json = true;
		return 1;
	case IM_INSPECT_OPT_STATS:
		args->stats = true;
		return 1;
	case IM_INSPECT_OPT_AUTHFILE:
		args->auth_file = arg;
		return 1;
	case 'v':
		im_log_set_level(IM_LOG_DEBUG);
		return 1;
	default:
		return 0;
	}
}

/* The combined tables of getopt_long(): the common options first, then the
 * command's. Return: 0, or -EINVAL when they do not fit (a programming
 * error, reported as such). */
static int merge_options(const struct im_inspect_parser *parser, struct option *longs,
			 size_t n_longs, char *shorts, size_t shorts_size)
{
	static const struct option common[] = { IM_INSPECT_LONG_OPTIONS };
	const size_t n_common = sizeof(common) / sizeof(common[0]);
	size_t n = 0;

	for (size_t i = 0; i < n_common; i++)
		longs[n++] = common[i];
	for (const struct option *o = parser->long_options; o && o->name; o++) {
		if (n + 1 >= n_longs)
			return -EINVAL;
		longs[n++] = *o;
	}
	longs[n] = (struct option){ NULL, 0, NULL, 0 };

	if (snprintf(shorts, shorts_size, "%svh", parser->short_options) >= (int)shorts_size)
		return -EINVAL;
	return 0;
}

int im_inspect_parse_args(int argc, char **argv, const struct im_inspect_parser *parser,
			  struct im_inspect_args *args, void *userdata)
{
	struct option longs[32];
	char shorts[32];
	int n_operands, opt, r;

	if (merge_options(parser, longs, sizeof(longs) / sizeof(longs[0]), shorts,
			  sizeof(shorts)) < 0) {
		fprintf(stderr, "imgmount %s: too many options for the parser\n", parser->command);
		return -EINVAL;
	}

	optind = 1;
	while ((opt = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		r = im_inspect_parse_option(args, opt, optarg);
		if (r < 0)
			return r;
		if (r > 0)
			continue;

		if (opt == 'h') {
			parser->usage(stdout);
			return 1;
		}
		if (opt != '?' && parser->parse_option) {
			r = parser->parse_option(userdata, opt, optarg);
			if (r < 0)
				return r;
			continue;
		}
		fprintf(stderr, "Run 'imgmount %s --help' for the options.\n", parser->command);
		return -EINVAL;
	}

	n_operands = argc - optind;
	if (n_operands < parser->min_operands || n_operands > parser->max_operands) {
		parser->usage(stderr);
		return -EINVAL;
	}
	return 0;
}

void im_inspect_usage_common(FILE *out, bool with_json)
{
	if (with_json)
		fprintf(out,
			"      --json                  print JSON instead of text (schema in\n"
			"                              docs/inspect-json.md)\n");
	fprintf(out,
		"      --cache-dir DIR         cache directory for compiled indexes and chunks\n"
		"                              (default: /var/cache/imgmount for root,\n"
		"                              ~/.cache/imgmount for other users)\n"
		"      --insecure-registry HOST  reach HOST over plain HTTP (loopback always is);\n"
		"                              may be repeated\n"
		"      --platform OS/ARCH[/VARIANT]  platform to pick from an image index\n"
		"                              (default: linux/%s)\n"
		"      --authfile FILE         registry credentials file (Docker config.json\n"
		"                              format; default: the files that `mount --help` lists)\n"
		"      --stats                 print the fetch counters as JSON to stderr at exit\n"
		"  -v, --verbose               log debug messages\n"
		"  -h, --help                  show this help\n"
		"\n"
		"IMAGE is HOST[:PORT]/REPOSITORY@sha256:DIGEST, or :TAG (resolved once and\n"
		"logged). Only the manifest and the layers' tables of contents are fetched,\n"
		"plus the file contents that `cat` prints and the config that `inspect` reads.\n"
		"\n"
		"exit status:\n"
		"  0  success\n"
		"  1  other failure\n"
		"  2  invalid arguments or input\n"
		"  3  image or path not found\n"
		"  4  verification failure: data from the registry does not match its digest\n"
		"  5  network failure: the registry could not be reached\n",
		im_host_arch());
}

int im_inspect_exit_status(int r)
{
	switch (r) {
	case 0:
		return IM_INSPECT_EXIT_OK;
	case -EINVAL:
	case -ENAMETOOLONG:
	case -EISDIR:
		return IM_INSPECT_EXIT_USAGE;
	case -ENOENT:
	case -ENOTDIR:
	case -ELOOP:
		return IM_INSPECT_EXIT_NOT_FOUND;
	case -EBADMSG:
		return IM_INSPECT_EXIT_VERIFY;
	case -EIO:
	case -ETIMEDOUT:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
		return IM_INSPECT_EXIT_NETWORK;
	default:
		return IM_INSPECT_EXIT_FAILURE;
	}
}

int im_inspect_finish(const struct im_inspect_args *args, int r)
{
	/* Allocation failures are passed up without a message on the way. */
	if (r == -ENOMEM)
		im_err("out of memory");

	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (r == 0)
			r = im_log_errno(-errno, "writing to standard output failed");
	}
	if (args->stats)
		im_stats_write_json(stderr);
	return im_inspect_exit_status(r);
}

/* Explain a failed open in one line: the image, and what to try next. */
static void log_open_failure(const char *reference, int r)
{
	switch (im_inspect_exit_status(r)) {
	case IM_INSPECT_EXIT_NOT_FOUND:
		im_err("image \"%s\" not found: check the repository, the tag or digest, "
		       "and --platform for an image index", reference);
		break;
	case IM_INSPECT_EXIT_VERIFY:
		im_err("image \"%s\" failed verification: the registry serves data that does "
		       "not match its digest; do not use this image", reference);
		break;
	case IM_INSPECT_EXIT_NETWORK:
		im_err("image \"%s\" could not be fetched: check that the registry is running "
		       "and reachable, and pass --insecure-registry for a plain HTTP one", reference);
		break;
	default:
		im_err("opening image \"%s\" failed: %s", reference, strerror(-r));
		break;
	}
}

static int fill_image_options(const struct im_inspect_args *args, unsigned flags,
			      struct im_image_options *opts, char *cache_dir)
{
	int r;

	*opts = (struct im_image_options) {
		.insecure_hosts = args->insecure_hosts,
		.n_insecure_hosts = args->n_insecure_hosts,
		.os = "linux",
		.arch = im_host_arch(),
		.allow_unindexed_layers = (flags & IM_INSPECT_ANY_LAYERS) != 0,
		.auth_file = args->auth_file,
	};

	if (args->platform) {
		r = im_image_options_set_platform(args->platform, opts);
		if (r < 0)
			return r;
	}

	r = im_image_options_prepare_cache_dir(args->cache_dir, cache_dir);
	if (r < 0)
		return r;
	opts->cache_dir = cache_dir;
	return 0;
}

int im_inspect_open(const struct im_inspect_args *args, const char *reference,
		    unsigned flags, struct im_inspect **ret)
{
	struct im_image_options opts;
	struct im_reference ref;
	struct im_inspect *in;
	char cache_dir[PATH_MAX];
	int r;

	/* Parse once up front so that a malformed reference is a usage error
	 * (im_reference_parse() logs the bad part) and not an open failure. */
	r = im_reference_parse(reference, &ref);
	if (r < 0) {
		im_err("invalid image reference \"%s\": expected "
		       "HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]", reference);
		return -EINVAL;
	}
	im_reference_clear(&ref);

	r = fill_image_options(args, flags, &opts, cache_dir);
	if (r < 0)
		return r;

	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;

	r = im_image_open(reference, &opts, &in->img);
	if (r < 0) {
		log_open_failure(reference, r);
		goto fail;
	}

	if (flags & IM_INSPECT_TREE) {
		r = im_tree_build(in->img->indexes, in->img->n_layers, &in->tree);
		if (r < 0) {
			im_err("merging the layers of %s failed: %s; the image cannot be listed",
			       in->img->display_name, strerror(-r));
			/* The layers verified but break the union rules (logged
			 * with the path), which is invalid input, not a digest
			 * mismatch. */
			if (r != -ENOMEM)
				r = -EINVAL;
			goto fail;
		}
	}

	*ret = in;
	return 0;

fail:
	im_inspect_free(in);
	return r;
}

void im_inspect_free(struct im_inspect *in)
{
	if (!in)
		return;
	im_tree_free(in->tree);
	im_image_free(in->img);
	free(in);
}

int im_inspect_lookup(const struct im_inspect *in, const char *path, bool follow_last,
		      uint64_t *ret)
{
	int r = im_resolve_path(in->tree, path, follow_last, ret);

	if (r == -ENOENT)
		im_err("\"%s\" not found in %s; list its directory with 'imgmount ls'",
		       path, in->img->display_name);
	else if (r == -ELOOP)
		im_err("looking up \"%s\" in %s failed: more than %d symbolic links on the "
		       "way, likely a loop", path, in->img->display_name, IM_RESOLVE_MAX_HOPS);
	else if (r < 0)
		im_log_errno(r, "looking up \"%s\" in %s failed", path, in->img->display_name);
	return r;
}

char *im_inspect_absolute_path(const char *path)
{
	size_t len = strlen(path);
	char *out;

	while (len > 0 && path[len - 1] == '/')
		len--;
	while (len > 0 && path[0] == '/') {
		path++;
		len--;
	}

	out = malloc(len + 2);
	if (!out)
		return NULL;
	out[0] = '/';
	memcpy(out + 1, path, len);
	out[len + 1] = '\0';
	return out;
}

char *im_inspect_join_path(const char *dir, const char *name, size_t len)
{
	size_t dir_len = strlen(dir);
	bool slash = dir_len == 0 || dir[dir_len - 1] != '/';
	char *out;

	out = malloc(dir_len + slash + len + 1);
	if (!out)
		return NULL;
	memcpy(out, dir, dir_len);
	if (slash)
		out[dir_len] = '/';
	memcpy(out + dir_len + slash, name, len);
	out[dir_len + slash + len] = '\0';
	return out;
}
