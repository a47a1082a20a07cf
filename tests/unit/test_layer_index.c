/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the compiled layer index: builder -> image -> reader round trips
 * of every entry type, the builder's input checks, and corrupted images
 * (every truncation, flipped bytes with and without a repaired CRC-32),
 * which must be rejected or, when accepted, read only inside the image.
 * Run under ASan to make the last point meaningful.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/log.h"
#include "index/layer_index.h"
#include "index/layer_index_internal.h"
#include "tests/unit/check.h"

#define BLOB_SIZE 100000u

static const uint8_t binary_value[] = { 0x00, 0x01, 0x00, 0xff, 0x00 };

static struct im_digest digest_of(const char *text)
{
	struct im_digest d;

	im_sha256(text, strlen(text), &d);
	return d;
}

static int add(struct im_index_builder *b, enum im_entry_type type, const char *path,
	       const char *link, uint32_t mode, uint64_t size)
{
	struct im_entry e = {
		.type = type,
		.mode = mode,
		.uid = 1000,
		.gid = 100,
		.mtime_sec = 1700000000,
		.mtime_nsec = 5,
		.size = size,
		.path = path,
		.path_len = (uint32_t)strlen(path),
		.link = link ? link : "",
		.link_len = link ? (uint32_t)strlen(link) : 0,
	};

	return im_index_builder_add_entry(b, &e);
}

static int add_chunk(struct im_index_builder *b, uint64_t file_offset, uint64_t length,
		     uint64_t blob_offset, uint64_t blob_length, uint32_t flags)
{
	struct im_chunk c = {
		.file_offset = file_offset,
		.length = length,
		.blob_offset = blob_offset,
		.blob_length = blob_length,
		.sha256 = digest_of("chunk"),
		.flags = flags,
	};

	c.sha256.bytes[0] = (uint8_t)file_offset;
	return im_index_builder_add_chunk(b, &c);
}

/*
 * A builder holding one entry of every type: a chunked file with a zero
 * chunk, an empty file, links, devices, markers, binary xattrs and times
 * before 1970.
 */
static struct im_index_builder *sample_builder(void)
{
	struct im_digest toc = digest_of("toc");
	struct im_index_builder *b = NULL;
	struct im_entry e;
	int r;

	r = im_index_builder_new(&toc, BLOB_SIZE, &b);
	CHECK_INT(r, 0);
	if (r < 0)
		return NULL;

	CHECK_INT(add(b, IM_ENTRY_DIR, "etc", NULL, 0755, 0), 0);
	CHECK_INT(im_index_builder_add_xattr(b, "user.empty", NULL, 0), 0);
	CHECK_INT(add(b, IM_ENTRY_REG, "etc/passwd", NULL, 04644, 3000), 0);
	CHECK_INT(add_chunk(b, 0, 1000, 10, 90, 0), 0);
	CHECK_INT(add_chunk(b, 1000, 1500, 100, 20, IM_CHUNK_ZEROS), 0);
	CHECK_INT(add_chunk(b, 2500, 500, 120, 40, 0), 0);
	CHECK_INT(im_index_builder_add_xattr(b, "user.bin", binary_value, sizeof(binary_value)), 0);
	CHECK_INT(im_index_builder_add_xattr(b, "security.capability", "\x01\x02", 2), 0);
	CHECK_INT(add(b, IM_ENTRY_REG, "etc/empty", NULL, 0600, 0), 0);
	CHECK_INT(add(b, IM_ENTRY_SYMLINK, "etc/link", "../target//x/.", 0777, 0), 0);
	CHECK_INT(add(b, IM_ENTRY_HARDLINK, "etc/hard", "etc/passwd", 0644, 0), 0);

	e = (struct im_entry){ .type = IM_ENTRY_CHAR, .mode = 0666, .path = "dev/null",
			       .path_len = 8, .rdev_major = 1, .rdev_minor = 3,
			       .mtime_sec = -1, .mtime_nsec = 999999999 };
	CHECK_INT(im_index_builder_add_entry(b, &e), 0);
	e = (struct im_entry){ .type = IM_ENTRY_BLOCK, .mode = 0660, .path = "dev/sda",
			       .path_len = 7, .rdev_major = 8, .rdev_minor = 0,
			       .mtime_sec = -62135596800, .mtime_nsec = 1 };
	CHECK_INT(im_index_builder_add_entry(b, &e), 0);

	CHECK_INT(add(b, IM_ENTRY_FIFO, "run/fifo", NULL, 0600, 0), 0);
	CHECK_INT(add(b, IM_ENTRY_WHITEOUT, "etc/gone", NULL, 0, 0), 0);
	CHECK_INT(add(b, IM_ENTRY_OPAQUE, "", NULL, 0, 0), 0);
	CHECK_INT(add(b, IM_ENTRY_OPAQUE, "var/cache", NULL, 0, 0), 0);
	return b;
}

static int sample_image(void **data, size_t *len)
{
	struct im_index_builder *b = sample_builder();
	int r;

	if (!b)
		return -ENOMEM;
	r = im_index_builder_write_buffer(b, data, len);
	im_index_builder_free(b);
	return r;
}

static void check_sample(const struct im_layer_index *idx)
{
	struct im_digest toc = digest_of("toc");
	struct im_entry e;
	struct im_chunk c;
	struct im_xattr x;

	CHECK(im_digest_equal(im_layer_index_toc_digest(idx), &toc));
	CHECK_INT(im_layer_index_blob_size(idx), BLOB_SIZE);
	CHECK_INT(im_layer_index_entry_count(idx), 12);
	CHECK_INT(im_layer_index_chunk_count(idx), 3);
	CHECK_INT(im_layer_index_xattr_count(idx), 3);
	if (im_layer_index_entry_count(idx) != 12 || im_layer_index_chunk_count(idx) != 3 ||
	    im_layer_index_xattr_count(idx) != 3)
		return;

	im_layer_index_entry(idx, 0, &e);
	CHECK_INT(e.type, IM_ENTRY_DIR);
	CHECK_STR(e.path, "etc");
	CHECK_INT(e.path_len, 3);
	CHECK_INT(e.mode, 0755);
	CHECK_INT(e.uid, 1000);
	CHECK_INT(e.gid, 100);
	CHECK_INT(e.mtime_sec, 1700000000);
	CHECK_INT(e.mtime_nsec, 5);
	CHECK_STR(e.link, "");
	CHECK_INT(e.chunk_count, 0);
	CHECK_INT(e.xattr_first, 0);
	CHECK_INT(e.xattr_count, 1);
	im_layer_index_xattr(idx, 0, &x);
	CHECK_STR(x.name, "user.empty");
	CHECK_INT(x.name_len, 10);
	CHECK_INT(x.value_len, 0);

	im_layer_index_entry(idx, 1, &e);
	CHECK_INT(e.type, IM_ENTRY_REG);
	CHECK_STR(e.path, "etc/passwd");
	CHECK_INT(e.mode, 04644);
	CHECK_INT(e.size, 3000);
	CHECK_INT(e.chunk_first, 0);
	CHECK_INT(e.chunk_count, 3);
	CHECK_INT(e.xattr_first, 1);
	CHECK_INT(e.xattr_count, 2);

	im_layer_index_chunk(idx, 0, &c);
	CHECK_INT(c.file_offset, 0);
	CHECK_INT(c.length, 1000);
	CHECK_INT(c.blob_offset, 10);
	CHECK_INT(c.blob_length, 90);
	CHECK_INT(c.flags, 0);
	CHECK_INT(c.sha256.bytes[0], 0);
	im_layer_index_chunk(idx, 1, &c);
	CHECK_INT(c.file_offset, 1000);
	CHECK_INT(c.length, 1500);
	CHECK_INT(c.flags, IM_CHUNK_ZEROS);
	CHECK_INT(c.sha256.bytes[0], (uint8_t)1000);
	im_layer_index_chunk(idx, 2, &c);
	CHECK_INT(c.file_offset, 2500);
	CHECK_INT(c.length, 500);
	CHECK_INT(c.blob_offset, 120);
	CHECK_INT(c.blob_length, 40);

	im_layer_index_xattr(idx, 1, &x);
	CHECK_STR(x.name, "user.bin");
	CHECK_INT(x.value_len, sizeof(binary_value));
	CHECK(memcmp(x.value, binary_value, sizeof(binary_value)) == 0);
	im_layer_index_xattr(idx, 2, &x);
	CHECK_STR(x.name, "security.capability");
	CHECK_INT(x.value_len, 2);
	CHECK(memcmp(x.value, "\x01\x02", 2) == 0);

	im_layer_index_entry(idx, 2, &e);
	CHECK_INT(e.type, IM_ENTRY_REG);
	CHECK_STR(e.path, "etc/empty");
	CHECK_INT(e.size, 0);
	CHECK_INT(e.chunk_first, 3);
	CHECK_INT(e.chunk_count, 0);

	im_layer_index_entry(idx, 3, &e);
	CHECK_INT(e.type, IM_ENTRY_SYMLINK);
	CHECK_STR(e.link, "../target//x/.");
	CHECK_INT(e.link_len, 14);

	im_layer_index_entry(idx, 4, &e);
	CHECK_INT(e.type, IM_ENTRY_HARDLINK);
	CHECK_STR(e.path, "etc/hard");
	CHECK_STR(e.link, "etc/passwd");

	im_layer_index_entry(idx, 5, &e);
	CHECK_INT(e.type, IM_ENTRY_CHAR);
	CHECK_INT(e.rdev_major, 1);
	CHECK_INT(e.rdev_minor, 3);
	CHECK_INT(e.mtime_sec, -1);
	CHECK_INT(e.mtime_nsec, 999999999);

	im_layer_index_entry(idx, 6, &e);
	CHECK_INT(e.type, IM_ENTRY_BLOCK);
	CHECK_INT(e.rdev_major, 8);
	CHECK_INT(e.mtime_sec, -62135596800);
	CHECK_INT(e.mtime_nsec, 1);

	im_layer_index_entry(idx, 7, &e);
	CHECK_INT(e.type, IM_ENTRY_FIFO);
	CHECK_STR(e.path, "run/fifo");

	im_layer_index_entry(idx, 8, &e);
	CHECK_INT(e.type, IM_ENTRY_WHITEOUT);
	CHECK_STR(e.path, "etc/gone");

	im_layer_index_entry(idx, 9, &e);
	CHECK_INT(e.type, IM_ENTRY_OPAQUE);
	CHECK_STR(e.path, "");
	CHECK_INT(e.path_len, 0);

	im_layer_index_entry(idx, 10, &e);
	CHECK_INT(e.type, IM_ENTRY_OPAQUE);
	CHECK_STR(e.path, "var/cache");

	im_layer_index_entry(idx, 11, &e);
	CHECK_INT(e.type, IM_ENTRY_WHITEOUT);
	CHECK_STR(e.path, "etc/gone2");
}

static void test_round_trip_buffer(void)
{
	struct im_index_builder *b = sample_builder();
	struct im_layer_index *idx = NULL;
	void *data = NULL;
	size_t len = 0;

	if (!b)
		return;
	CHECK_INT(add(b, IM_ENTRY_WHITEOUT, "etc/gone2", NULL, 0, 0), 0);
	CHECK_INT(im_index_builder_write_buffer(b, &data, &len), 0);
	im_index_builder_free(b);

	CHECK_INT(im_layer_index_open_buffer(data, len, &idx), 0);
	if (idx)
		check_sample(idx);
	im_layer_index_free(idx);
	free(data);
}

static void test_round_trip_file(void)
{
	char dir[] = "/tmp/test_layer_index.XXXXXX";
	char path[256];
	struct im_index_builder *b;
	struct im_layer_index *idx = NULL;
	struct dirent *de;
	struct stat st;
	DIR *d;
	int files = 0;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/index", dir);

	b = sample_builder();
	if (!b)
		return;
	CHECK_INT(add(b, IM_ENTRY_WHITEOUT, "etc/gone2", NULL, 0, 0), 0);
	CHECK_INT(im_index_builder_write(b, path), 0);
	/* Writing again replaces the file in place. */
	CHECK_INT(im_index_builder_write(b, path), 0);
	im_index_builder_free(b);

	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 07777, 0644);
	d = opendir(dir);
	CHECK(d != NULL);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] != '.')
			files++;
	}
	if (d)
		closedir(d);
	CHECK_INT(files, 1);

	CHECK_INT(im_layer_index_open(path, &idx), 0);
	if (idx)
		check_sample(idx);
	im_layer_index_free(idx);

	unlink(path);
	rmdir(dir);
}

static void test_open_errors(void)
{
	char dir[] = "/tmp/test_layer_index.XXXXXX";
	char path[256];
	struct im_layer_index *idx = NULL;
	void *data = NULL;
	size_t len = 0;
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/missing", dir);
	CHECK_INT(im_layer_index_open(path, &idx), -ENOENT);

	im_log_set_level(LOG_CRIT);
	CHECK_INT(im_layer_index_open(dir, &idx), -EBADMSG);

	/* A file cut short on disk. */
	CHECK_INT(sample_image(&data, &len), 0);
	snprintf(path, sizeof(path), "%s/short", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, data, len - 8), (ssize_t)(len - 8));
	close(fd);
	CHECK_INT(im_layer_index_open(path, &idx), -EBADMSG);

	/* An empty file. */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	close(fd);
	CHECK_INT(im_layer_index_open(path, &idx), -EBADMSG);
	im_log_set_level(IM_LOG_INFO);

	unlink(path);
	rmdir(dir);
	free(data);
}

static void test_empty_index(void)
{
	struct im_digest toc = digest_of("empty");
	struct im_index_builder *b = NULL;
	struct im_layer_index *idx = NULL;
	void *data = NULL;
	size_t len = 0;

	CHECK_INT(im_index_builder_new(&toc, 0, &b), 0);
	CHECK_INT(im_index_builder_write_buffer(b, &data, &len), 0);
	im_index_builder_free(b);
	CHECK_INT(im_layer_index_open_buffer(data, len, &idx), 0);
	if (idx) {
		CHECK_INT(im_layer_index_entry_count(idx), 0);
		CHECK_INT(im_layer_index_chunk_count(idx), 0);
		CHECK_INT(im_layer_index_xattr_count(idx), 0);
		CHECK_INT(im_layer_index_blob_size(idx), 0);
	}
	im_layer_index_free(idx);
	free(data);
}

static void test_builder_rejects_bad_entries(void)
{
	struct im_digest toc = digest_of("toc");
	struct im_index_builder *b = NULL;
	struct im_entry e = { .type = IM_ENTRY_DIR, .path = "a", .path_len = 1, .link = "" };
	char long_path[5000];

	CHECK_INT(im_index_builder_new(&toc, BLOB_SIZE, &b), 0);
	if (!b)
		return;

	CHECK_INT(add_chunk(b, 0, 1, 0, 1, 0), -EINVAL);
	CHECK_INT(im_index_builder_add_xattr(b, "user.x", "v", 1), -EINVAL);

	CHECK_INT(add(b, IM_ENTRY_DIR, "a/../b", NULL, 0755, 0), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_DIR, "/a", NULL, 0755, 0), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_DIR, "a/", NULL, 0755, 0), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_DIR, "./a", NULL, 0755, 0), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_DIR, "", NULL, 0755, 0), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_DIR, "a", NULL, 0100755, 0), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_DIR, "a", NULL, 0755, 10), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_DIR, "a", "target", 0755, 0), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_HARDLINK, "a", "x/../y", 0644, 0), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_HARDLINK, "a", "", 0644, 0), -EINVAL);
	CHECK_INT(add(b, 0, "a", NULL, 0644, 0), -EINVAL);
	CHECK_INT(add(b, 10, "a", NULL, 0644, 0), -EINVAL);

	e.mtime_nsec = 1000000000;
	CHECK_INT(im_index_builder_add_entry(b, &e), -EINVAL);
	e.mtime_nsec = 0;
	e.path = "a\0b";
	e.path_len = 3;
	CHECK_INT(im_index_builder_add_entry(b, &e), -EINVAL);

	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	CHECK_INT(add(b, IM_ENTRY_DIR, long_path, NULL, 0755, 0), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_SYMLINK, "s", long_path, 0777, 0), -EINVAL);

	CHECK_INT(add(b, IM_ENTRY_DIR, "a", NULL, 0755, 0), 0);
	CHECK_INT(add_chunk(b, 0, 1, 0, 1, 0), -EINVAL);
	CHECK_INT(im_index_builder_add_xattr(b, "", "v", 1), -EINVAL);
	CHECK_INT(im_index_builder_add_xattr(b, "user.big", long_path, 65537), -EINVAL);
	CHECK_INT(add(b, IM_ENTRY_REG, "f", NULL, 0644, 1), 0);
	CHECK_INT(add_chunk(b, 0, 1, 0, 1, 0x2), -EINVAL);

	im_index_builder_free(b);
}

/* Write a builder with one regular file of the given size and chunks, and
 * return what write_buffer returned. */
static int write_one_file(uint64_t size, const struct im_chunk *chunks, size_t n)
{
	struct im_digest toc = digest_of("toc");
	struct im_index_builder *b = NULL;
	void *data = NULL;
	size_t len = 0;
	int r;

	CHECK_INT(im_index_builder_new(&toc, BLOB_SIZE, &b), 0);
	if (!b)
		return -ENOMEM;
	CHECK_INT(add(b, IM_ENTRY_REG, "f", NULL, 0644, size), 0);
	for (size_t i = 0; i < n; i++)
		CHECK_INT(im_index_builder_add_chunk(b, &chunks[i]), 0);

	r = im_index_builder_write_buffer(b, &data, &len);
	im_index_builder_free(b);
	free(data);
	return r;
}

static void test_builder_rejects_bad_chunks(void)
{
	const uint64_t big = (uint64_t)IM_CHUNK_MAX_LENGTH + 1;
	struct im_chunk good[] = {
		{ .file_offset = 0, .length = 10, .blob_offset = 0, .blob_length = 5 },
		{ .file_offset = 10, .length = 10, .blob_offset = 5, .blob_length = 5 },
	};
	struct im_chunk gap[] = {
		{ .file_offset = 0, .length = 10, .blob_offset = 0, .blob_length = 5 },
		{ .file_offset = 11, .length = 9, .blob_offset = 5, .blob_length = 5 },
	};
	struct im_chunk overlap[] = {
		{ .file_offset = 0, .length = 10, .blob_offset = 0, .blob_length = 5 },
		{ .file_offset = 9, .length = 11, .blob_offset = 5, .blob_length = 5 },
	};
	struct im_chunk past_blob[] = {
		{ .file_offset = 0, .length = 20, .blob_offset = BLOB_SIZE - 4, .blob_length = 5 },
	};
	struct im_chunk wrapping[] = {
		{ .file_offset = 0, .length = 20, .blob_offset = UINT64_MAX, .blob_length = 2 },
	};
	struct im_chunk empty_range[] = {
		{ .file_offset = 0, .length = 20, .blob_offset = 7, .blob_length = 0 },
	};
	struct im_chunk zeros_empty_range[] = {
		{ .file_offset = 0, .length = 20, .flags = IM_CHUNK_ZEROS },
	};
	struct im_chunk too_long[] = {
		{ .file_offset = 0, .length = big, .blob_offset = 0, .blob_length = 5 },
	};
	struct im_chunk zeros_long[] = {
		{ .file_offset = 0, .length = big, .blob_offset = 0, .blob_length = 5,
		  .flags = IM_CHUNK_ZEROS },
	};

	im_log_set_level(LOG_CRIT);
	CHECK_INT(write_one_file(20, good, 2), 0);
	CHECK_INT(write_one_file(21, good, 2), -EBADMSG);
	CHECK_INT(write_one_file(19, good, 2), -EBADMSG);
	CHECK_INT(write_one_file(20, good, 1), -EBADMSG);
	CHECK_INT(write_one_file(20, NULL, 0), -EBADMSG);
	CHECK_INT(write_one_file(20, gap, 2), -EBADMSG);
	CHECK_INT(write_one_file(20, overlap, 2), -EBADMSG);
	CHECK_INT(write_one_file(20, past_blob, 1), -EBADMSG);
	CHECK_INT(write_one_file(20, wrapping, 1), -EBADMSG);
	CHECK_INT(write_one_file(20, empty_range, 1), -EBADMSG);
	CHECK_INT(write_one_file(20, zeros_empty_range, 1), 0);
	CHECK_INT(write_one_file(big, too_long, 1), -EBADMSG);
	CHECK_INT(write_one_file(big, zeros_long, 1), 0);
	im_log_set_level(IM_LOG_INFO);
}

/*
 * Decode every record of an accepted image and check that each pointer and
 * length stays inside [data, data + len) and that counts agree.
 */
static void walk_in_bounds(const struct im_layer_index *idx, const uint8_t *data, size_t len)
{
	const uint8_t *end = data + len;
	uint32_t entries = im_layer_index_entry_count(idx);
	uint32_t chunks = im_layer_index_chunk_count(idx);
	uint32_t xattrs = im_layer_index_xattr_count(idx);

	for (uint32_t i = 0; i < entries; i++) {
		struct im_entry e;
		uint64_t covered = 0;

		im_layer_index_entry(idx, i, &e);
		CHECK((const uint8_t *)e.path >= data);
		CHECK((const uint8_t *)e.path + e.path_len < end);
		CHECK((const uint8_t *)e.link >= data);
		CHECK((const uint8_t *)e.link + e.link_len < end);
		CHECK_INT(strlen(e.path), e.path_len);
		CHECK_INT(strlen(e.link), e.link_len);
		CHECK(e.chunk_first <= chunks);
		CHECK(e.chunk_count <= chunks - e.chunk_first);
		CHECK(e.xattr_first <= xattrs);
		CHECK(e.xattr_count <= xattrs - e.xattr_first);
		CHECK(e.mode <= 07777);

		for (uint32_t k = 0; k < e.chunk_count && e.chunk_first + k < chunks; k++) {
			struct im_chunk c;

			im_layer_index_chunk(idx, e.chunk_first + k, &c);
			CHECK_INT(c.file_offset, covered);
			CHECK(c.length >= 1);
			covered += c.length;
			CHECK(c.blob_offset + c.blob_length >= c.blob_offset);
			CHECK(c.blob_offset + c.blob_length <= im_layer_index_blob_size(idx));
		}
		if (e.type == IM_ENTRY_REG)
			CHECK_INT(covered, e.size);

		for (uint32_t k = 0; k < e.xattr_count && e.xattr_first + k < xattrs; k++) {
			struct im_xattr x;

			im_layer_index_xattr(idx, e.xattr_first + k, &x);
			CHECK((const uint8_t *)x.name >= data);
			CHECK((const uint8_t *)x.name + x.name_len < end);
			CHECK_INT(strlen(x.name), x.name_len);
			CHECK(x.value >= data);
			CHECK(x.value + x.value_len <= end);
		}
	}
}

/* Open a private copy of exactly len bytes, so ASan reports any read past it. */
static int open_copy(const void *data, size_t len, bool repair_crc, uint8_t **ret_copy,
		     struct im_layer_index **ret)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	if (repair_crc && len >= IDX_HEADER_SIZE)
		idx_put32(copy + IDX_H_CRC, im_layer_index_checksum(copy, len));

	*ret_copy = copy;
	return im_layer_index_open_buffer(copy, len, ret);
}

static void test_every_truncation_rejected(void)
{
	void *data = NULL;
	size_t len = 0;

	CHECK_INT(sample_image(&data, &len), 0);
	im_log_set_level(LOG_CRIT);
	for (size_t n = 0; n < len; n++) {
		struct im_layer_index *idx = NULL;
		uint8_t *copy = NULL;

		/* Even with a matching CRC, the size in the header differs. */
		CHECK_INT(open_copy(data, n, true, &copy, &idx), -EBADMSG);
		im_layer_index_free(idx);
		free(copy);
	}
	im_log_set_level(IM_LOG_INFO);
	free(data);
}

static void test_flipped_bytes(void)
{
	static const uint8_t masks[] = { 0x01, 0x10, 0x80, 0xff };
	void *data = NULL;
	size_t len = 0;
	unsigned accepted = 0;
	unsigned rejected = 0;

	CHECK_INT(sample_image(&data, &len), 0);
	im_log_set_level(LOG_CRIT);
	for (size_t pos = 0; pos < len; pos++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			struct im_layer_index *idx = NULL;
			uint8_t *copy = NULL;
			int r;

			((uint8_t *)data)[pos] ^= masks[m];

			/* Without repair the CRC-32 catches every flip. */
			CHECK_INT(open_copy(data, len, false, &copy, &idx), -EBADMSG);
			free(copy);

			/* With the CRC repaired, the structural checks run. */
			r = open_copy(data, len, true, &copy, &idx);
			if (r == 0) {
				accepted++;
				walk_in_bounds(idx, copy, len);
			} else {
				rejected++;
				CHECK_INT(r, -EBADMSG);
			}
			im_layer_index_free(idx);
			free(copy);

			((uint8_t *)data)[pos] ^= masks[m];
		}
	}
	im_log_set_level(IM_LOG_INFO);

	/* Flips in the magic, counts and offsets must be caught. Flips in
	 * uid, gid or digest bytes are legitimately accepted. */
	CHECK(rejected > 0);
	CHECK(accepted > 0);
	fprintf(stderr, "  %u flips accepted, %u rejected\n", accepted, rejected);
	free(data);
}

/* Flips in the header fields each hit a specific check. */
static void test_header_fields_checked(void)
{
	static const size_t fields[] = {
		IDX_H_MAGIC, IDX_H_VERSION, IDX_H_HEADER_SIZE, IDX_H_FILE_SIZE,
		IDX_H_SECTION_COUNT,
		IDX_H_SECTIONS + IDX_S_OFFSET,
		IDX_H_SECTIONS + IDX_S_COUNT,
		IDX_H_SECTIONS + IDX_S_RECORD_SIZE,
		IDX_H_SECTIONS + IDX_SECTION_DESC_SIZE + IDX_S_LENGTH,
		IDX_H_SECTIONS + 3 * IDX_SECTION_DESC_SIZE + IDX_S_OFFSET,
	};
	void *data = NULL;
	size_t len = 0;

	CHECK_INT(sample_image(&data, &len), 0);
	im_log_set_level(LOG_CRIT);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		struct im_layer_index *idx = NULL;
		uint8_t *copy = NULL;

		((uint8_t *)data)[fields[i]] ^= 0x01;
		CHECK_INT(open_copy(data, len, true, &copy, &idx), -EBADMSG);
		((uint8_t *)data)[fields[i]] ^= 0x01;
		im_layer_index_free(idx);
		free(copy);
	}
	im_log_set_level(IM_LOG_INFO);
	free(data);
}

int main(void)
{
	RUN_TEST(test_round_trip_buffer);
	RUN_TEST(test_round_trip_file);
	RUN_TEST(test_open_errors);
	RUN_TEST(test_empty_index);
	RUN_TEST(test_builder_rejects_bad_entries);
	RUN_TEST(test_builder_rejects_bad_chunks);
	RUN_TEST(test_every_truncation_rejected);
	RUN_TEST(test_flipped_bytes);
	RUN_TEST(test_header_fields_checked);
	return check_exit_status();
}
