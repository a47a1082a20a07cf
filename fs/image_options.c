/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The --platform and --cache-dir handling shared by the commands that open
 * an image.
 */
#include "fs/image_options.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/paths.h"

int im_image_options_set_platform(char *platform, struct im_image_options *opts)
{
	char *arch, *variant;

	/* Check the whole value before cutting it, so the message quotes it
	 * unchanged. */
	arch = strchr(platform, '/');
	if (!arch || arch == platform || arch[1] == '\0' || arch[1] == '/')
		goto invalid;
	variant = strchr(arch + 1, '/');
	if (variant && (variant[1] == '\0' || strchr(variant + 1, '/')))
		goto invalid;

	*arch++ = '\0';
	if (variant)
		*variant++ = '\0';
	opts->os = platform;
	opts->arch = arch;
	opts->variant = variant;
	return 0;

invalid:
	fprintf(stderr, "imgmount: invalid --platform \"%s\": expected OS/ARCH or OS/ARCH/VARIANT, "
		"for example linux/amd64\n", platform);
	return -EINVAL;
}

int im_image_options_prepare_cache_dir(const char *requested, char *out)
{
	char path[PATH_MAX];
	int r;

	if (requested)
		r = im_absolute_path(requested, path, sizeof(path));
	else
		r = im_default_cache_dir(path, sizeof(path));
	if (r < 0)
		return im_log_errno(r, "finding the cache directory failed; pass one with --cache-dir");

	r = im_mkdir_p(path, geteuid() == 0 ? 0755 : 0700);
	if (r < 0)
		return im_log_errno(r, "creating cache directory \"%s\" failed", path);
	if (!realpath(path, out))
		return im_log_errno(-errno, "resolving cache directory \"%s\" failed", path);
	return 0;
}
