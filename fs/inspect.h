/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Plumbing shared by the commands that read an image without mounting it
 * (`ls`, `stat`, `cat`, `tree`, `inspect`): their common options, opening
 * the image and merging its layers, and the exit statuses.
 *
 * These commands run as any user. They fetch the manifest and the layers'
 * tables of contents through fs/image.h (or reuse the compiled indexes in
 * the cache directory), and only `cat` fetches file contents.
 */
#ifndef IM_INSPECT_H
#define IM_INSPECT_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "fs/image.h"
#include "index/tree.h"

/* Exit statuses of the inspection commands, documented in their --help. */
enum {
	IM_INSPECT_EXIT_OK = 0,
	IM_INSPECT_EXIT_FAILURE = 1,     /* anything not listed below */
	IM_INSPECT_EXIT_USAGE = 2,       /* invalid arguments or input */
	IM_INSPECT_EXIT_NOT_FOUND = 3,   /* image or path not found */
	IM_INSPECT_EXIT_VERIFY = 4,      /* a digest did not match */
	IM_INSPECT_EXIT_NETWORK = 5,     /* the registry could not be reached */
};

#define IM_INSPECT_MAX_INSECURE_HOSTS 32

/* Values of the options that every inspection command accepts. */
struct im_inspect_args {
	const char *cache_dir;          /* NULL for the default */
	const char *insecure_hosts[IM_INSPECT_MAX_INSECURE_HOSTS];
	size_t n_insecure_hosts;
	char *platform;                 /* "os/arch[/variant]", NULL for the host's */
	const char *auth_file;          /* --authfile, NULL for the default files */
	bool json;
	bool stats;
};

/* getopt_long() values of the common options. Commands number their own
 * long-only options from IM_INSPECT_OPT_FIRST_FREE. */
enum {
	IM_INSPECT_OPT_CACHE_DIR = 0x100,
	IM_INSPECT_OPT_INSECURE,
	IM_INSPECT_OPT_PLATFORM,
	IM_INSPECT_OPT_JSON,
	IM_INSPECT_OPT_STATS,
	IM_INSPECT_OPT_AUTHFILE,
	IM_INSPECT_OPT_FIRST_FREE,
};

/* The common entries of a command's struct option table ("-v" and "-h"
 * belong in its short option string). */
#define IM_INSPECT_LONG_OPTIONS \
	{ "cache-dir", required_argument, NULL, IM_INSPECT_OPT_CACHE_DIR }, \
	{ "insecure-registry", required_argument, NULL, IM_INSPECT_OPT_INSECURE }, \
	{ "platform", required_argument, NULL, IM_INSPECT_OPT_PLATFORM }, \
	{ "json", no_argument, NULL, IM_INSPECT_OPT_JSON }, \
	{ "stats", no_argument, NULL, IM_INSPECT_OPT_STATS }, \
	{ "authfile", required_argument, NULL, IM_INSPECT_OPT_AUTHFILE }, \
	{ "verbose", no_argument, NULL, 'v' }, \
	{ "help", no_argument, NULL, 'h' }

/*
 * Handle option opt (a getopt_long() return value) when it is a common one.
 * Return: 1 when handled, 0 when opt is not a common option, or -EINVAL
 * after printing why the value is invalid.
 */
int im_inspect_parse_option(struct im_inspect_args *args, int opt, char *arg);

/* Parser description of one command: the common options plus its own. The
 * command's own options go to parse_option with userdata, the getopt_long()
 * value and its argument. */
struct im_inspect_parser {
	const char *command;                  /* "ls", for messages */
	void (*usage)(FILE *out);             /* prints the command's help */
	const char *short_options;            /* the command's own, "" for none */
	const struct option *long_options;    /* its own, NULL-terminated, or NULL */
	/* Return: 0 when handled, or -EINVAL after printing why. NULL when the
	 * command has no options of its own. */
	int (*parse_option)(void *userdata, int opt, char *arg);
	int min_operands;
	int max_operands;
};

/*
 * Parse argv with parser's options. The operands start at argv[optind]
 * afterwards, and there are min_operands to max_operands of them.
 * Return: 0 to run, 1 after --help, or -EINVAL after printing the problem.
 */
int im_inspect_parse_args(int argc, char **argv, const struct im_inspect_parser *parser,
			  struct im_inspect_args *args, void *userdata);

/* Print the help lines of the common options (--json only when the command
 * supports it) and the exit statuses. */
void im_inspect_usage_common(FILE *out, bool with_json);

/* An opened image and, when requested, its merged tree. */
struct im_inspect {
	struct im_image *img;
	struct im_tree *tree;           /* NULL unless IM_INSPECT_TREE */
};

/* Flags of im_inspect_open(). */
#define IM_INSPECT_TREE 0x1u            /* merge the layers into a tree */
#define IM_INSPECT_ANY_LAYERS 0x2u      /* accept layers without a TOC */

/*
 * Check reference, open the image with the common options and, with
 * IM_INSPECT_TREE, merge its layers. Failures are logged with the image
 * named and what to do next.
 * Return: 0, or a negative errno for im_inspect_exit_status().
 */
int im_inspect_open(const struct im_inspect_args *args, const char *reference,
		    unsigned flags, struct im_inspect **ret);
void im_inspect_free(struct im_inspect *in);

/*
 * Find path in the merged tree with im_resolve_path() and log a failure
 * with the path and the image named.
 * Return: 0 with the inode in *ret, or the negative errno of the lookup.
 */
int im_inspect_lookup(const struct im_inspect *in, const char *path, bool follow_last,
		      uint64_t *ret);

/* path as an absolute path without trailing "/" ("/" for the root), in a
 * malloc'd string, or NULL when out of memory. */
char *im_inspect_absolute_path(const char *path);

/* Join a directory path from im_inspect_absolute_path() and a name (len
 * bytes) into a malloc'd string, or NULL when out of memory. */
char *im_inspect_join_path(const char *dir, const char *name, size_t len);

/* Map the result of a command (0 or a negative errno) to its exit status. */
int im_inspect_exit_status(int r);

/*
 * End a command: print the process counters as JSON to stderr when --stats
 * was given, flush stdout (a failed write is an error), and return the
 * exit status for r.
 */
int im_inspect_finish(const struct im_inspect_args *args, int r);

#endif
