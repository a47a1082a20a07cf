/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reader of the compiled layer index (format in layer_index_internal.h).
 *
 * The file is mapped read-only and checked once, completely, by
 * im_layer_index_validate() before any accessor runs. That single pass is
 * what lets the accessors decode records without bounds checks and without
 * failing.
 *
 * NOTE: the mapping is MAP_PRIVATE over a file in a shared cache
 * directory. A process that truncates the file in place (rather than
 * replacing it through rename(2), as the builder does) makes later reads
 * fault with SIGBUS; the CRC-32 catches changed bytes only at open time.
 */
#include "index/layer_index.h"
#include "index/layer_index_internal.h"
#include "index/path_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

struct im_layer_index {
	struct idx_layout layout;
	struct im_digest toc_digest;
	void *map;              /* NULL for im_layer_index_open_buffer() */
	size_t map_len;
};

#define REASON_SIZE 512
#define QUOTED_PATH_SIZE 160

static int index_new(const void *data, size_t len, const char *origin,
		     struct im_layer_index **ret)
{
	struct im_layer_index *idx;
	char reason[REASON_SIZE];
	int r;

	idx = calloc(1, sizeof(*idx));
	if (!idx)
		return -ENOMEM;

	r = im_layer_index_validate(data, len, &idx->layout, reason, sizeof(reason));
	if (r < 0) {
		im_err("invalid layer index %s: %s", origin, reason);
		free(idx);
		return r;
	}

	memcpy(idx->toc_digest.bytes, idx->layout.toc_digest, IM_SHA256_LEN);
	*ret = idx;
	return 0;
}

int im_layer_index_open_buffer(const void *data, size_t len,
			       struct im_layer_index **ret)
{
	if (!data && len > 0)
		return -EINVAL;
	return index_new(data, len, "in memory", ret);
}

int im_layer_index_open(const char *path, struct im_layer_index **ret)
{
	_cleanup_close_ int fd = -1;
	char origin[QUOTED_PATH_SIZE + 2];
	char quoted[QUOTED_PATH_SIZE];
	struct im_layer_index *idx;
	struct stat st;
	void *map;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;

	im_path_quote(path, strlen(path), quoted, sizeof(quoted));
	snprintf(origin, sizeof(origin), "\"%s\"", quoted);
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)IDX_HEADER_SIZE) {
		im_err("invalid layer index %s: not a regular file of at least %u bytes",
		       origin, IDX_HEADER_SIZE);
		return -EBADMSG;
	}

	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return -errno;

	r = index_new(map, (size_t)st.st_size, origin, &idx);
	if (r < 0) {
		munmap(map, (size_t)st.st_size);
		return r;
	}

	idx->map = map;
	idx->map_len = (size_t)st.st_size;
	*ret = idx;
	return 0;
}

void im_layer_index_free(struct im_layer_index *idx)
{
	if (!idx)
		return;
	if (idx->map)
		munmap(idx->map, idx->map_len);
	free(idx);
}

const struct im_digest *im_layer_index_toc_digest(const struct im_layer_index *idx)
{
	return &idx->toc_digest;
}

uint64_t im_layer_index_blob_size(const struct im_layer_index *idx)
{
	return idx->layout.blob_size;
}

uint32_t im_layer_index_entry_count(const struct im_layer_index *idx)
{
	return idx->layout.entry_count;
}

uint32_t im_layer_index_chunk_count(const struct im_layer_index *idx)
{
	return idx->layout.chunk_count;
}

uint32_t im_layer_index_xattr_count(const struct im_layer_index *idx)
{
	return idx->layout.xattr_count;
}

void im_layer_index_entry(const struct im_layer_index *idx, uint32_t i,
			  struct im_entry *ret)
{
	const struct idx_layout *l = &idx->layout;
	const uint8_t *rec;

	assert(i < l->entry_count);
	rec = l->entries + (size_t)i * IDX_ENTRY_SIZE;

	ret->type = (enum im_entry_type)idx_get32(rec + IDX_E_TYPE);
	ret->mode = idx_get32(rec + IDX_E_MODE);
	ret->uid = idx_get32(rec + IDX_E_UID);
	ret->gid = idx_get32(rec + IDX_E_GID);
	ret->mtime_sec = (int64_t)idx_get64(rec + IDX_E_MTIME_SEC);
	ret->mtime_nsec = idx_get32(rec + IDX_E_MTIME_NSEC);
	ret->rdev_major = idx_get32(rec + IDX_E_RDEV_MAJOR);
	ret->rdev_minor = idx_get32(rec + IDX_E_RDEV_MINOR);
	ret->size = idx_get64(rec + IDX_E_SIZE);
	ret->path = (const char *)l->strings + idx_get64(rec + IDX_E_PATH_OFF);
	ret->path_len = idx_get32(rec + IDX_E_PATH_LEN);
	ret->link = (const char *)l->strings + idx_get64(rec + IDX_E_LINK_OFF);
	ret->link_len = idx_get32(rec + IDX_E_LINK_LEN);
	ret->chunk_first = idx_get32(rec + IDX_E_CHUNK_FIRST);
	ret->chunk_count = idx_get32(rec + IDX_E_CHUNK_COUNT);
	ret->xattr_first = idx_get32(rec + IDX_E_XATTR_FIRST);
	ret->xattr_count = idx_get32(rec + IDX_E_XATTR_COUNT);
}

void im_layer_index_chunk(const struct im_layer_index *idx, uint32_t i,
			  struct im_chunk *ret)
{
	const struct idx_layout *l = &idx->layout;
	const uint8_t *rec;

	assert(i < l->chunk_count);
	rec = l->chunks + (size_t)i * IDX_CHUNK_SIZE;

	ret->file_offset = idx_get64(rec + IDX_C_FILE_OFFSET);
	ret->length = idx_get64(rec + IDX_C_LENGTH);
	ret->blob_offset = idx_get64(rec + IDX_C_BLOB_OFFSET);
	ret->blob_length = idx_get64(rec + IDX_C_BLOB_LENGTH);
	memcpy(ret->sha256.bytes, rec + IDX_C_SHA256, IM_SHA256_LEN);
	ret->flags = idx_get32(rec + IDX_C_FLAGS);
}

void im_layer_index_xattr(const struct im_layer_index *idx, uint32_t i,
			  struct im_xattr *ret)
{
	const struct idx_layout *l = &idx->layout;
	const uint8_t *rec;

	assert(i < l->xattr_count);
	rec = l->xattrs + (size_t)i * IDX_XATTR_SIZE;

	ret->name = (const char *)l->strings + idx_get64(rec + IDX_X_NAME_OFF);
	ret->name_len = idx_get32(rec + IDX_X_NAME_LEN);
	ret->value = l->strings + idx_get64(rec + IDX_X_VALUE_OFF);
	ret->value_len = idx_get32(rec + IDX_X_VALUE_LEN);
}
