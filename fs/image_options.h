/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Option handling that every command opening an image shares: the
 * --platform value and the cache directory. The commands parse their own
 * arguments and call these helpers, so the meaning of the options stays
 * the same across `mount`, `ls`, `stat`, `cat`, `tree` and `inspect`.
 */
#ifndef IM_IMAGE_OPTIONS_H
#define IM_IMAGE_OPTIONS_H

#include <stddef.h>

#include "fs/image.h"

/*
 * Split platform ("os/arch" or "os/arch/variant") in place and point
 * opts->os, opts->arch and opts->variant into it.
 * Return: 0, or -EINVAL after printing what is wrong with the value.
 */
int im_image_options_set_platform(char *platform, struct im_image_options *opts);

/*
 * Resolve the cache directory: requested (made absolute), or the default
 * of im_default_cache_dir() when requested is NULL. The directory is
 * created when missing (0755 for root, 0700 for other users) and its real
 * path is written to out, which has PATH_MAX bytes.
 * Return: 0, or a negative errno after logging the directory.
 */
int im_image_options_prepare_cache_dir(const char *requested, char *out);

#endif
