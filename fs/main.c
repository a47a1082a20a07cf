/* SPDX-License-Identifier: Apache-2.0 */
/*
 * imgmount: mount OCI images lazily through FUSE, and the tools around it.
 * This file only dispatches to the subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "fs/commands.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "mount", im_cmd_mount, "mount IMAGE at MOUNTPOINT, fetching file contents on demand" },
	{ "umount", im_cmd_umount, "unmount MOUNTPOINT and stop its daemon" },
	{ "stats", im_cmd_stats, "print the counters of the daemon serving MOUNTPOINT as JSON" },
	{ "convert", im_cmd_convert, "convert SOURCE image to zstd:chunked and push it as DEST" },
	{ "ls", im_cmd_ls, "list a directory of IMAGE without mounting it" },
	{ "stat", im_cmd_stat, "print every attribute of a path in IMAGE" },
	{ "cat", im_cmd_cat, "write a file of IMAGE to stdout, verified chunk by chunk" },
	{ "tree", im_cmd_tree, "draw the directory tree of IMAGE" },
	{ "inspect", im_cmd_inspect, "print IMAGE's manifest, config and layers" },
	{ "cache", im_cmd_cache, "measure, verify and trim the shared chunk cache" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: imgmount COMMAND [OPTIONS] ARGS...\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nRun 'imgmount COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return IM_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return IM_EXIT_OK;
	}

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}

	fprintf(stderr, "imgmount: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return IM_EXIT_USAGE;
}
