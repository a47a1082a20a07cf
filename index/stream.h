/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pull interface that connects the stages of the layer converter: the
 * downloaded blob file, the decompressor and the tar reader each read the
 * stage before them through one of these callbacks.
 */
#ifndef IM_STREAM_H
#define IM_STREAM_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Read up to len bytes (len > 0) into buf. A short count does not mean the
 * end of the stream.
 * Return: the number of bytes read, 0 at the end of the stream, or a
 * negative errno.
 */
typedef ssize_t (*im_read_fn)(void *opaque, void *buf, size_t len);

/* An im_read_fn over a file descriptor; opaque points to the int fd. */
ssize_t im_read_fd(void *opaque, void *buf, size_t len);

#endif
