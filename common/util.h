/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by every component: cleanup attributes that keep
 * errno intact, full reads and writes that retry on EINTR and short counts,
 * and directory creation.
 */
#ifndef IM_UTIL_H
#define IM_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define IM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void im_freep(void *p)
{
	int saved = errno;

	free(*(void **)p);
	errno = saved;
}

static inline void im_closep(int *fd)
{
	int saved = errno;

	if (*fd >= 0)
		close(*fd);
	errno = saved;
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(im_freep)
#define _cleanup_close_ _cleanup_(im_closep)

/* Hand ownership of *pp to the caller and leave NULL behind. */
#define im_steal_pointer(pp) ({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define im_steal_fd(fdp) ({ int _fd = *(fdp); *(fdp) = -1; _fd; })

/* Read exactly len bytes. Return: 0, -EIO on early end of file, or -errno. */
int im_read_full(int fd, void *buf, size_t len);
/* pread exactly len bytes at off. Same returns as im_read_full(). */
int im_pread_full(int fd, void *buf, size_t len, off_t off);
/* Write all of buf. Return: 0 or -errno. */
int im_write_full(int fd, const void *buf, size_t len);

/* mkdir -p with the given mode for created components. Return: 0 or -errno. */
int im_mkdir_p(const char *path, mode_t mode);

/* Overflow-checked addition for offsets from untrusted input. */
static inline int im_add_u64(uint64_t a, uint64_t b, uint64_t *ret)
{
	if (__builtin_add_overflow(a, b, ret))
		return -EOVERFLOW;
	return 0;
}

/* Parse a whole decimal unsigned number. Return: 0 or -EINVAL/-ERANGE. */
int im_parse_u64(const char *text, uint64_t *ret);

/* Parse a size such as "512M", "10G" or "4096" (bytes). Return: 0 or -EINVAL. */
int im_parse_size(const char *text, uint64_t *ret);

/* Monotonic time in nanoseconds. */
uint64_t im_now_ns(void);

#endif
