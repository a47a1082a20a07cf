/* SPDX-License-Identifier: Apache-2.0 */
#include "fs/paths.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write a followed by b into out. */
static int join_path(char *out, size_t out_size, const char *a, const char *b)
{
	int n = snprintf(out, out_size, "%s%s", a, b);

	if (n < 0 || (size_t)n >= out_size)
		return -ENAMETOOLONG;
	return 0;
}

static const char *home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home && home[0] == '/')
		return home;
	pw = getpwuid(getuid());
	return pw ? pw->pw_dir : NULL;
}

int im_default_cache_dir(char *out, size_t out_size)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home;

	if (geteuid() == 0)
		return join_path(out, out_size, "/var/cache/imgmount", "");
	if (xdg && xdg[0] == '/')
		return join_path(out, out_size, xdg, "/imgmount");

	home = home_dir();
	if (!home)
		return -ENOENT;
	return join_path(out, out_size, home, "/.cache/imgmount");
}

int im_runtime_dir(char *out, size_t out_size)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char uid[32];

	if (geteuid() == 0)
		return join_path(out, out_size, "/run/imgmount", "");
	if (xdg && xdg[0] == '/')
		return join_path(out, out_size, xdg, "/imgmount");

	snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
	return join_path(out, out_size, "/tmp/imgmount-", uid);
}

int im_absolute_path(const char *path, char *out, size_t out_size)
{
	char cwd[PATH_MAX];
	int n;

	if (path[0] == '/')
		return join_path(out, out_size, path, "");
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;

	n = snprintf(out, out_size, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, path);
	if (n < 0 || (size_t)n >= out_size)
		return -ENAMETOOLONG;
	return 0;
}
