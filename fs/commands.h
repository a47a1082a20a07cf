/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Entry points of the imgmount subcommands. Each takes the arguments after
 * "imgmount" (argv[0] is the subcommand name) and returns the process exit
 * status.
 */
#ifndef IM_COMMANDS_H
#define IM_COMMANDS_H

int im_cmd_mount(int argc, char **argv);
int im_cmd_umount(int argc, char **argv);
int im_cmd_stats(int argc, char **argv);
int im_cmd_convert(int argc, char **argv);
int im_cmd_ls(int argc, char **argv);
int im_cmd_stat(int argc, char **argv);
int im_cmd_cat(int argc, char **argv);
int im_cmd_tree(int argc, char **argv);
int im_cmd_inspect(int argc, char **argv);
int im_cmd_cache(int argc, char **argv);

/* Exit statuses shared by the commands. */
enum {
	IM_EXIT_OK = 0,
	IM_EXIT_FAILURE = 1,   /* anything not listed below */
	IM_EXIT_USAGE = 2,     /* invalid arguments */
};

#endif
