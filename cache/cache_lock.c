/* SPDX-License-Identifier: Apache-2.0 */
#include "cache/cache_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

int im_cache_lock(const char *dir, bool wait)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/lock", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 && (errno == EROFS || errno == EACCES))
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;

	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		int error = errno;

		if (error == EINTR)
			continue;
		close(fd);
		return -error;
	}
	return fd;
}
