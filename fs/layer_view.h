/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `imgmount ls --layer N`: one layer's own entries, read from its compiled
 * index in table of contents order, before any union rule applies.
 */
#ifndef IM_LAYER_VIEW_H
#define IM_LAYER_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "fs/image.h"

/*
 * Print the entries of layer `layer` of img that are directly in directory
 * path ("/" for the root), or with recursive everywhere below it. Paths
 * are printed absolute and as the layer's tar stream names them. So a
 * whiteout of "/a/b" shows as "/a/.wh.b" and the opaque marker of "/a" as
 * "/a/.wh..wh..opq", each marked with what it removes. The path itself is
 * listed when it is not a directory.
 * Return: 0, -EINVAL (no such layer, logged), -ENOENT (no entry at or
 * below path, logged), -ENOMEM or -EIO.
 */
int im_layer_view_list(const struct im_image *img, uint64_t layer, const char *path,
		       bool recursive, bool long_format, bool json);

#endif
