/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control socket of a mount: a unix socket in the runtime directory,
 * named after the mountpoint, over which `imgmount stats` reads the
 * daemon's counters. It never adds anything to the mounted tree.
 */
#ifndef IM_CONTROL_H
#define IM_CONTROL_H

#include <stddef.h>

/* Path of the socket for mountpoint (resolved to an absolute path) in out. */
int im_control_socket_path(const char *mountpoint, char *out, size_t out_size);

/* Start serving the socket from a thread. Return: 0 or -errno. */
int im_control_start(const char *mountpoint);

/* Stop the thread and remove the socket. */
void im_control_stop(void);

/* Client side: print the counters of the daemon at mountpoint to stdout. */
int im_control_print_stats(const char *mountpoint);

#endif
