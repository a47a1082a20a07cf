/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cleaning of entry names from layers, the way containerd's applier does:
 * a leading "/" or "./" is dropped, "//" and "." components vanish, and ".."
 * pops a component but never climbs above the root.
 */
#ifndef IM_PATH_H
#define IM_PATH_H

#include <stddef.h>

/*
 * Clean name (len bytes) into out (out_size bytes, NUL-terminated).
 * Return: the length of the cleaned path, 0 when the name resolves to the
 * root, -EINVAL when it contains a NUL byte, -ENAMETOOLONG when it does not
 * fit.
 */
int im_path_clean(const char *name, size_t len, char *out, size_t out_size);

#endif
