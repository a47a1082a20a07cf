/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control socket of a mount: a unix socket in the runtime directory,
 * named after the mountpoint, over which `imgmount stats` reads the
 * daemon's counters. It never adds anything to the mounted tree.
 */
#ifndef IM_CONTROL_H
#define IM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

/* Path of the socket for mountpoint (resolved to an absolute path) in out. */
int im_control_socket_path(const char *mountpoint, char *out, size_t out_size);

/* Path of the log file of a detached daemon on a system without syslog:
 * next to the control socket, with ".log" in place of ".sock". Creates the
 * runtime directory. */
int im_control_log_path(const char *mountpoint, char *out, size_t out_size);

/* True when a daemon accepts a connection on the socket of mountpoint (absolute and
 * resolved): the mountpoint is already served by imgmount. */
bool im_control_is_live(const char *mountpoint);

/* Start serving the socket from a thread. Return: 0 or -errno. */
int im_control_start(const char *mountpoint);

/* Stop the thread and remove the socket. */
void im_control_stop(void);

/* Client side: print the counters of the daemon at mountpoint to stdout. */
int im_control_print_stats(const char *mountpoint);

#endif
