/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Digest-keyed manifest copies in the cache directory (manifest_cache.h).
 * The file is untrusted on read like every cache file: its size is bounded
 * by IM_MANIFEST_MAX_LENGTH plus the header, the header must parse, and the
 * body must hash to the digest in the name.
 */
#include "cache/manifest_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "registry/registry.h"

#define MAGIC_LINE "imgmount-manifest 1\n"
#define MAX_MEDIA_TYPE 255
#define MAX_FILE_SIZE (sizeof(MAGIC_LINE) + MAX_MEDIA_TYPE + 1 + IM_MANIFEST_MAX_LENGTH)

static void manifest_path(const struct im_chunk_store *s, const struct im_digest *digest,
			  char *out)
{
	char hex[2 * IM_SHA256_LEN + 1];

	im_digest_format_hex(digest, hex);
	snprintf(out, PATH_MAX, "%s/index/%s.manifest", im_chunk_store_dir(s), hex);
}

/* A media type is short printable ASCII without spaces. */
static bool valid_media_type(const char *text, size_t len)
{
	if (len == 0 || len > MAX_MEDIA_TYPE)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] <= ' ' || text[i] > '~')
			return false;
	}
	return true;
}

/* Read the whole file at path into a malloc'd buffer, at most MAX_FILE_SIZE
 * bytes. Return: 0, -ENOENT, -EFBIG or -errno. */
static int read_file(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *data = NULL;
	struct stat st;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_FILE_SIZE)
		return -EFBIG;

	data = malloc((size_t)st.st_size + 1);
	if (!data)
		return -ENOMEM;
	r = im_read_full(fd, data, (size_t)st.st_size);
	if (r < 0)
		return r;
	data[st.st_size] = '\0';

	*ret = data;
	*ret_len = (size_t)st.st_size;
	data = NULL;
	return 0;
}

/* Split a file into media type and body, and check the body's digest.
 * Return: 0, or -EBADMSG with *reason set. */
static int parse_file(const char *data, size_t len, const struct im_digest *digest,
		      size_t *type_len, size_t *body_off, const char **reason)
{
	const size_t magic_len = strlen(MAGIC_LINE);
	const char *type, *newline;
	struct im_digest actual;

	if (len < magic_len || memcmp(data, MAGIC_LINE, magic_len) != 0) {
		*reason = "the header is missing";
		return -EBADMSG;
	}

	type = data + magic_len;
	newline = memchr(type, '\n', len - magic_len);
	if (!newline || !valid_media_type(type, (size_t)(newline - type))) {
		*reason = "the media type line is invalid";
		return -EBADMSG;
	}
	*type_len = (size_t)(newline - type);
	*body_off = (size_t)(newline + 1 - data);

	im_sha256(data + *body_off, len - *body_off, &actual);
	if (!im_digest_equal(&actual, digest)) {
		*reason = "its SHA-256 does not match the file name";
		return -EBADMSG;
	}
	return 0;
}

int im_manifest_cache_get(const struct im_chunk_store *s, const struct im_digest *digest,
			  uint8_t **body, size_t *len, char **media_type)
{
	_cleanup_free_ char *data = NULL;
	const char *reason = NULL;
	char path[PATH_MAX];
	size_t data_len = 0, type_len = 0, body_off = 0;
	int r;

	manifest_path(s, digest, path);
	r = read_file(path, &data, &data_len);
	if (r == -ENOENT)
		return r;
	if (r == -EFBIG)
		reason = "it is not a regular file of at most 4 MiB";
	else if (r < 0)
		return im_log_errno(r, "reading cached manifest \"%s\" failed", path);
	else
		r = parse_file(data, data_len, digest, &type_len, &body_off, &reason);

	if (r < 0) {
		im_warn("cached manifest \"%s\" is damaged (%s); removing it and fetching "
			"the manifest again", path, reason);
		unlink(path);
		return -ENOENT;
	}

	*media_type = strndup(data + strlen(MAGIC_LINE), type_len);
	*body = malloc(data_len - body_off + 1);
	if (!*media_type || !*body) {
		free(*media_type);
		free(*body);
		return -ENOMEM;
	}
	memcpy(*body, data + body_off, data_len - body_off);
	*len = data_len - body_off;
	return 0;
}

int im_manifest_cache_put(const struct im_chunk_store *s, const struct im_digest *digest,
			  const uint8_t *body, size_t len, const char *media_type)
{
	_cleanup_close_ int fd = -1;
	char path[PATH_MAX], tmp[PATH_MAX];
	int r;

	if (!media_type || !valid_media_type(media_type, strlen(media_type)) ||
	    len > IM_MANIFEST_MAX_LENGTH)
		return -EINVAL;

	manifest_path(s, digest, path);
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;

	r = im_write_full(fd, MAGIC_LINE, strlen(MAGIC_LINE));
	if (r == 0)
		r = im_write_full(fd, media_type, strlen(media_type));
	if (r == 0)
		r = im_write_full(fd, "\n", 1);
	if (r == 0)
		r = im_write_full(fd, body, len);
	if (r == 0 && fchmod(fd, 0644) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}
