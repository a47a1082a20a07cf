/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the layer converter and the layer decompressor. A tar
 * archive built in the test is converted to zstd:chunked. The blob must
 * decompress to the input byte for byte, with libzstd and with the zstd
 * command. Its footer and TOC must describe it, every chunk frame must
 * decompress to bytes matching its digest, and the project's own TOC
 * compiler must accept the TOC.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <zlib.h>
#include <zstd.h>

#include "check.h"
#include "common/digest.h"
#include "common/log.h"
#include "common/util.h"
#include "index/convert.h"
#include "index/decompress.h"
#include "index/layer_index.h"
#include "index/toc.h"
#include "index/toc_writer.h"
#include "tar_builder.h"

#define CHUNK 4096u

struct blob {
	uint8_t *data;
	size_t len;
};

/* Fill with a pattern that compresses but is not constant. */
static void fill_pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 31 + seed) ^ (i >> 7));
}

static uint8_t small_data[100];
static uint8_t multi_data[10000];
static uint8_t zeros_data[8192 + 100];
static uint8_t xattr_file_data[5000];
static char long_name[200];

static void build_sample_tar(struct tar_buffer *t)
{
	struct tar_buffer r1 = { 0 }, r2 = { 0 };
	struct tar_header dir = { .name = "usr/", .type = '5', .mode = 0755 };
	struct tar_header sym = { .name = "usr/link", .type = '2', .link = "small",
				  .mtime = 1000 };
	struct tar_header hard = { .name = "usr/hard", .type = '1', .link = "usr/small" };
	struct tar_header chr = { .name = "dev/tty", .type = '3', .dev_major = 5,
				  .dev_minor = 1, .mode = 0620, .gid = 5 };
	struct tar_header whiteout = { .name = "usr/.wh.gone", .mode = 0600 };
	static const uint8_t binary[] = { 'a', 0, 'b' };

	fill_pattern(small_data, sizeof(small_data), 1);
	fill_pattern(multi_data, sizeof(multi_data), 2);
	memset(zeros_data + 8192, 'z', 100);
	fill_pattern(xattr_file_data, sizeof(xattr_file_data), 3);
	memset(long_name, 'n', sizeof(long_name) - 1);
	memcpy(long_name, "usr/", 4);

	tb_pax_string(&r1, "mtime", "1644325033.182744228");
	tb_extension(t, 'x', r1.data, r1.len);
	tb_header(t, &dir);
	tb_file(t, "usr/small", small_data, sizeof(small_data));
	tb_file(t, "usr/multi", multi_data, sizeof(multi_data));
	tb_file(t, "usr/zeros", zeros_data, sizeof(zeros_data));
	tb_file(t, "usr/empty", "", 0);
	tb_header(t, &sym);
	tb_header(t, &hard);
	tb_pax_string(&r2, "path", long_name);
	tb_pax_record(&r2, "SCHILY.xattr.user.bin", binary, sizeof(binary));
	tb_extension(t, 'x', r2.data, r2.len);
	tb_file(t, "truncated", xattr_file_data, sizeof(xattr_file_data));
	tb_header(t, &whiteout);
	tb_header(t, &chr);
	tb_end(t);
	tb_zeros(t, 1000);
	tb_free(&r1);
	tb_free(&r2);
}

/* Convert tar into a temporary file and read the blob back. */
static int convert_buffer(const struct tar_buffer *tar, uint64_t chunk_size,
			  struct im_convert_result *res, struct blob *out)
{
	struct memory_source src = { tar->data, tar->len, 0, 1000 };
	struct im_convert_options opts = { .chunk_size = chunk_size, .level = 3 };
	struct stat st;
	int fd, r;

	fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	if (fd < 0)
		return -errno;
	r = im_convert_tar(memory_read, &src, fd, &opts, res);
	if (r < 0) {
		close(fd);
		return r;
	}

	if (fstat(fd, &st) < 0)
		abort();
	out->len = (size_t)st.st_size;
	out->data = malloc(out->len ? out->len : 1);
	if (!out->data || im_pread_full(fd, out->data, out->len, 0) < 0)
		abort();
	close(fd);
	return 0;
}

/* Decompress a whole buffer of frames (skippable ones included). */
static int zstd_decompress_all(const uint8_t *data, size_t len, struct tar_buffer *out)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	ZSTD_inBuffer in = { data, len, 0 };
	uint8_t buf[65536];
	size_t ret = 0;

	while (in.pos < in.size || ret != 0) {
		ZSTD_outBuffer o = { buf, sizeof(buf), 0 };

		ret = ZSTD_decompressStream(dctx, &o, &in);
		if (ZSTD_isError(ret)) {
			ZSTD_freeDCtx(dctx);
			return -EBADMSG;
		}
		tb_append(out, buf, o.pos);
		if (o.pos == 0 && in.pos == in.size && ret != 0) {
			ZSTD_freeDCtx(dctx);
			return -EBADMSG;
		}
	}
	ZSTD_freeDCtx(dctx);
	return 0;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void check_footer(const struct blob *b, const struct im_convert_result *res)
{
	const uint8_t *f;

	CHECK(b->len >= 72);
	if (b->len < 72)
		return;
	f = b->data + b->len - 72;
	CHECK_INT(get_le32(f), 0x184D2A50);
	CHECK_INT(get_le32(f + 4), 64);
	CHECK_INT(get_le64(f + 8), res->toc_offset);
	CHECK_INT(get_le64(f + 16), res->toc_length);
	CHECK_INT(get_le64(f + 24), res->toc_uncompressed_length);
	CHECK_INT(get_le64(f + 32), 1);
	CHECK_INT(get_le64(f + 40), 0);
	CHECK_INT(get_le64(f + 48), 0);
	CHECK_INT(get_le64(f + 56), 0);
	CHECK(memcmp(f + 64, "GNUlInUx", 8) == 0);

	/* The TOC sits in a skippable frame that ends where the footer starts. */
	CHECK_INT(get_le32(b->data + res->toc_offset - 8), 0x184D2A50);
	CHECK_INT(get_le32(b->data + res->toc_offset - 4), res->toc_length);
	CHECK_INT(res->toc_offset + res->toc_length, b->len - 72);
}

/* Decompress the TOC and parse it. */
static struct json_object *load_toc(const struct blob *b, const struct im_convert_result *res,
				    char **ret_json)
{
	char *json = malloc(res->toc_uncompressed_length + 1);
	struct im_digest digest;
	size_t n;

	im_sha256(b->data + res->toc_offset, res->toc_length, &digest);
	CHECK(im_digest_equal(&digest, &res->toc_digest));

	n = ZSTD_decompress(json, res->toc_uncompressed_length, b->data + res->toc_offset,
			    res->toc_length);
	CHECK(!ZSTD_isError(n));
	CHECK_INT(n, res->toc_uncompressed_length);
	json[res->toc_uncompressed_length] = '\0';
	*ret_json = json;
	return json_tokener_parse(json);
}

static const char *get_str(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	return json_object_get_string(v);
}

static int64_t get_num(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return -1;
	return json_object_get_int64(v);
}

/* Decompress the frames in [start, end) of the blob; they must hold
 * exactly expected_len bytes equal to expected, with that digest. */
static void check_frame_range(const struct blob *b, uint64_t start, uint64_t end,
			      const uint8_t *expected, size_t expected_len,
			      const char *digest_text)
{
	struct tar_buffer out = { 0 };
	struct im_digest want, got;

	CHECK(start < end);
	CHECK(end <= b->len);
	if (!(start < end && end <= b->len))
		return;
	/* A chunk is exactly one frame. */
	CHECK_INT(ZSTD_findFrameCompressedSize(b->data + start, end - start), end - start);
	CHECK_INT(ZSTD_getFrameContentSize(b->data + start, end - start), expected_len);
	CHECK_INT(zstd_decompress_all(b->data + start, end - start, &out), 0);
	CHECK_INT(out.len, expected_len);
	if (out.len == expected_len)
		CHECK(memcmp(out.data, expected, expected_len) == 0);

	CHECK_INT(im_digest_parse(digest_text ? digest_text : "", &want), 0);
	im_sha256(expected, expected_len, &got);
	CHECK(im_digest_equal(&want, &got));
	tb_free(&out);
}

static struct json_object *find_entry(struct json_object *entries, const char *name,
				      size_t *ret_index)
{
	for (size_t i = 0; i < json_object_array_length(entries); i++) {
		struct json_object *e = json_object_array_get_idx(entries, i);
		const char *type = get_str(e, "type");

		if (strcmp(get_str(e, "name"), name) == 0 && strcmp(type, "chunk") != 0) {
			*ret_index = i;
			return e;
		}
	}
	*ret_index = 0;
	return NULL;
}

/* Check a regular file's entry and its chunk entries against its data. */
static void check_file_chunks(const struct blob *b, struct json_object *entries,
			      const char *name, const uint8_t *data, size_t len,
			      size_t expected_chunks)
{
	size_t i, n = 0;
	struct json_object *e = find_entry(entries, name, &i);
	uint64_t end_offset;

	CHECK(e != NULL);
	if (!e)
		return;
	CHECK_INT(get_num(e, "size"), len);
	end_offset = (uint64_t)get_num(e, "endOffset");

	if (expected_chunks == 1) {
		CHECK(get_str(e, "chunkDigest") == NULL);
		CHECK(get_str(e, "chunkSize") == NULL);
		check_frame_range(b, (uint64_t)get_num(e, "offset"), end_offset, data, len,
				  get_str(e, "digest"));
		return;
	}

	for (size_t k = 0; k < expected_chunks; k++) {
		struct json_object *c = json_object_array_get_idx(entries, i + k);
		struct json_object *next = json_object_array_get_idx(entries, i + k + 1);
		uint64_t offset = (uint64_t)get_num(c, "chunkOffset");
		uint64_t size = (uint64_t)get_num(c, "chunkSize");
		uint64_t start = (uint64_t)get_num(c, "offset");
		uint64_t end = k + 1 < expected_chunks ? (uint64_t)get_num(next, "offset") : end_offset;
		bool zeros = true;

		if (k == 0)
			CHECK(get_num(c, "chunkOffset") == -1); /* omitted when 0 */
		else
			CHECK_STR(get_str(c, "type"), "chunk");
		if (k == 0)
			offset = 0;
		CHECK_STR(get_str(c, "name"), name);
		CHECK_INT(offset, k * CHUNK);
		CHECK_INT(size, k + 1 < expected_chunks ? CHUNK : len - k * CHUNK);
		for (size_t j = 0; j < size; j++)
			zeros &= data[offset + j] == 0;
		if (zeros)
			CHECK_STR(get_str(c, "chunkType"), "zeros");
		else
			CHECK(get_str(c, "chunkType") == NULL);
		check_frame_range(b, start, end, data + offset, size, get_str(c, "chunkDigest"));
		n++;
	}
	CHECK_INT(n, expected_chunks);

	/* The whole-file digest covers all chunks. */
	{
		struct im_digest want, got;

		CHECK_INT(im_digest_parse(get_str(e, "digest"), &want), 0);
		im_sha256(data, len, &got);
		CHECK(im_digest_equal(&want, &got));
	}
}

static void check_toc_fields(struct json_object *entries)
{
	struct json_object *e, *xattrs;
	size_t i;

	CHECK_INT(json_object_array_length(entries), 10 + 2 + 2 + 1);

	e = find_entry(entries, "usr/", &i);
	CHECK_INT(i, 0);
	CHECK_STR(get_str(e, "type"), "dir");
	CHECK_INT(get_num(e, "mode"), 0755);
	CHECK_STR(get_str(e, "modtime"), "2022-02-08T12:57:13.182744228Z");
	CHECK(get_str(e, "size") == NULL);
	CHECK(get_str(e, "digest") == NULL);

	e = find_entry(entries, "usr/empty", &i);
	CHECK_STR(get_str(e, "type"), "reg");
	CHECK(get_str(e, "digest") == NULL);
	CHECK(get_str(e, "offset") == NULL);
	CHECK(get_str(e, "size") == NULL);
	CHECK_STR(get_str(e, "modtime"), "1970-01-01T00:00:00Z");

	e = find_entry(entries, "usr/link", &i);
	CHECK_STR(get_str(e, "type"), "symlink");
	CHECK_STR(get_str(e, "linkName"), "small");
	CHECK_STR(get_str(e, "modtime"), "1970-01-01T00:16:40Z");

	e = find_entry(entries, "usr/hard", &i);
	CHECK_STR(get_str(e, "type"), "hardlink");
	CHECK_STR(get_str(e, "linkName"), "usr/small");

	e = find_entry(entries, long_name, &i);
	CHECK(e != NULL);
	CHECK(json_object_object_get_ex(e, "xattrs", &xattrs));
	CHECK_STR(get_str(xattrs, "user.bin"), "YQBi");

	e = find_entry(entries, "usr/.wh.gone", &i);
	CHECK_STR(get_str(e, "type"), "reg");
	CHECK_INT(get_num(e, "mode"), 0600);

	e = find_entry(entries, "dev/tty", &i);
	CHECK_STR(get_str(e, "type"), "char");
	CHECK_INT(get_num(e, "devMajor"), 5);
	CHECK_INT(get_num(e, "devMinor"), 1);
	CHECK_INT(get_num(e, "gid"), 5);
	CHECK(get_str(e, "uid") == NULL);
}

/* Compile the TOC with the project's reader and verify every chunk by
 * decompressing its blob range. */
static void check_compiled_index(const struct blob *b, const struct im_convert_result *res,
				 const char *json)
{
	struct im_index_builder *builder = NULL;
	struct im_layer_index *idx = NULL;
	void *data = NULL;
	size_t len = 0;
	uint32_t verified = 0;

	CHECK_INT(im_toc_compile(json, res->toc_uncompressed_length, &res->toc_digest,
				 b->len, &builder), 0);
	if (!builder)
		return;
	CHECK_INT(im_index_builder_write_buffer(builder, &data, &len), 0);
	CHECK_INT(im_layer_index_open_buffer(data, len, &idx), 0);
	if (!idx)
		goto out;

	CHECK_INT(im_layer_index_entry_count(idx), 10);
	CHECK_INT(im_layer_index_chunk_count(idx), 1 + 3 + 3 + 2);
	for (uint32_t i = 0; i < im_layer_index_chunk_count(idx); i++) {
		struct im_chunk c;
		struct tar_buffer out = { 0 };
		struct im_digest got;

		im_layer_index_chunk(idx, i, &c);
		CHECK_INT(zstd_decompress_all(b->data + c.blob_offset, c.blob_length, &out), 0);
		CHECK_INT(out.len, c.length);
		im_sha256(out.data, out.len, &got);
		CHECK(im_digest_equal(&got, &c.sha256));
		verified += im_digest_equal(&got, &c.sha256);
		tb_free(&out);
	}
	CHECK_INT(verified, 9);

out:
	im_layer_index_free(idx);
	free(data);
	im_index_builder_free(builder);
}

/* A stock decoder must accept the blob: run the zstd command on it. */
static void check_zstd_command(const struct blob *b, const struct tar_buffer *tar)
{
	char dir[] = "/tmp/test_convert.XXXXXX", in[64], out[64], cmd[256];
	uint8_t *back;
	int fd;

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp failed");
		return;
	}
	snprintf(in, sizeof(in), "%s/blob.zst", dir);
	snprintf(out, sizeof(out), "%s/blob.tar", dir);
	fd = open(in, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_INT(im_write_full(fd, b->data, b->len), 0);
	close(fd);

	snprintf(cmd, sizeof(cmd), "zstd -q -t '%s' && zstd -q -d -c '%s' > '%s'", in, in, out);
	CHECK_INT(system(cmd), 0);

	back = malloc(tar->len + 1);
	fd = open(out, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_INT(lseek(fd, 0, SEEK_END), tar->len);
	CHECK_INT(im_pread_full(fd, back, tar->len, 0), 0);
	CHECK(memcmp(back, tar->data, tar->len) == 0);
	close(fd);
	free(back);

	unlink(in);
	unlink(out);
	rmdir(dir);
}

static void test_convert_round_trip(void)
{
	struct tar_buffer tar = { 0 }, back = { 0 };
	struct im_convert_result res;
	struct json_object *toc, *entries = NULL;
	struct im_digest digest;
	struct blob b;
	char *json = NULL;

	build_sample_tar(&tar);
	CHECK_INT(convert_buffer(&tar, CHUNK, &res, &b), 0);

	im_sha256(tar.data, tar.len, &digest);
	CHECK(im_digest_equal(&digest, &res.diff_id));
	CHECK_INT(res.tar_size, tar.len);
	im_sha256(b.data, b.len, &digest);
	CHECK(im_digest_equal(&digest, &res.blob_digest));
	CHECK_INT(res.blob_size, b.len);
	CHECK_INT(res.n_entries, 10);
	CHECK_INT(res.n_chunks, 1 + 3 + 3 + 2);

	CHECK_INT(zstd_decompress_all(b.data, b.len, &back), 0);
	CHECK_INT(back.len, tar.len);
	if (back.len == tar.len)
		CHECK(memcmp(back.data, tar.data, tar.len) == 0);

	check_footer(&b, &res);
	toc = load_toc(&b, &res, &json);
	CHECK(toc != NULL);
	CHECK_INT(get_num(toc, "version"), 1);
	CHECK(json_object_object_get_ex(toc, "entries", &entries));
	if (entries) {
		check_toc_fields(entries);
		check_file_chunks(&b, entries, "usr/small", small_data, sizeof(small_data), 1);
		check_file_chunks(&b, entries, "usr/multi", multi_data, sizeof(multi_data), 3);
		check_file_chunks(&b, entries, "usr/zeros", zeros_data, sizeof(zeros_data), 3);
		check_file_chunks(&b, entries, long_name, xattr_file_data,
				  sizeof(xattr_file_data), 2);
	}
	check_compiled_index(&b, &res, json);
	check_zstd_command(&b, &tar);

	json_object_put(toc);
	free(json);
	free(b.data);
	tb_free(&back);
	tb_free(&tar);
}

static void test_convert_single_chunk_file(void)
{
	struct tar_buffer tar = { 0 };
	struct im_convert_result res;
	struct json_object *toc, *entries = NULL;
	uint8_t data[3000];
	struct blob b;
	char *json;

	fill_pattern(data, sizeof(data), 9);
	tb_file(&tar, "one", data, sizeof(data));
	tb_end(&tar);
	CHECK_INT(convert_buffer(&tar, CHUNK, &res, &b), 0);
	toc = load_toc(&b, &res, &json);
	CHECK(json_object_object_get_ex(toc, "entries", &entries));
	CHECK_INT(json_object_array_length(entries), 1);
	check_file_chunks(&b, entries, "one", data, sizeof(data), 1);
	json_object_put(toc);
	free(json);
	free(b.data);
	tb_free(&tar);
}

static void test_convert_empty_stream(void)
{
	struct tar_buffer tar = { 0 }, back = { 0 };
	struct im_convert_result res;
	struct json_object *toc, *entries = NULL;
	struct blob b;
	char *json;

	CHECK_INT(convert_buffer(&tar, CHUNK, &res, &b), 0);
	CHECK_INT(res.tar_size, 0);
	CHECK_INT(zstd_decompress_all(b.data, b.len, &back), 0);
	CHECK_INT(back.len, 0);
	check_footer(&b, &res);
	toc = load_toc(&b, &res, &json);
	CHECK_STR(json, "{\"version\":1,\"entries\":[]}");
	CHECK(json_object_object_get_ex(toc, "entries", &entries));
	CHECK_INT(json_object_array_length(entries), 0);
	json_object_put(toc);
	free(json);
	free(b.data);
}

static void test_convert_rejects_bad_input(void)
{
	struct tar_buffer tar = { 0 };
	struct im_convert_result res;
	uint8_t data[2000] = { 0 };
	struct blob b;

	CHECK_INT(convert_buffer(&tar, 100, &res, &b), -EINVAL);

	tb_file(&tar, "cut", data, sizeof(data));
	tar.len -= 1000;
	CHECK_INT(convert_buffer(&tar, CHUNK, &res, &b), -EBADMSG);
	tb_free(&tar);
}

static void test_time_format(void)
{
	char out[32];

	CHECK_INT(im_toc_format_time(0, 0, out, sizeof(out)), 0);
	CHECK_STR(out, "1970-01-01T00:00:00Z");
	CHECK_INT(im_toc_format_time(-1, 500000000, out, sizeof(out)), 0);
	CHECK_STR(out, "1969-12-31T23:59:59.5Z");
	CHECK_INT(im_toc_format_time(1644325033, 182744228, out, sizeof(out)), 0);
	CHECK_STR(out, "2022-02-08T12:57:13.182744228Z");
	CHECK_INT(im_toc_format_time(-2208988800ll, 1000, out, sizeof(out)), 0);
	CHECK_STR(out, "1900-01-01T00:00:00.000001Z");
	CHECK_INT(im_toc_format_time(253402300800ll, 0, out, sizeof(out)), -ERANGE);
	CHECK_INT(im_toc_format_time(INT64_MIN, 0, out, sizeof(out)), -ERANGE);
}

static void test_base64(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{ "", 0, "" },
		{ "a", 1, "YQ==" },
		{ "ab", 2, "YWI=" },
		{ "abc", 3, "YWJj" },
		{ "\0\xff\xfe\x01", 4, "AP/+AQ==" },
	};

	for (size_t i = 0; i < IM_ARRAY_SIZE(cases); i++) {
		char *s = im_toc_base64_encode((const uint8_t *)cases[i].in, cases[i].len);

		CHECK_STR(s, cases[i].out);
		free(s);
	}
}

/* Decompress src through im_decompressor_read() with small reads. */
static int decompress_buffer(enum im_compression c, const uint8_t *data, size_t len,
			     struct tar_buffer *out, enum im_compression *ret_detected)
{
	struct memory_source src = { data, len, 0, 333 };
	struct im_decompressor *d;
	uint8_t buf[1000];
	ssize_t got;

	if (im_decompressor_new(c, memory_read, &src, &d) < 0)
		abort();
	while ((got = im_decompressor_read(d, buf, sizeof(buf))) > 0)
		tb_append(out, buf, (size_t)got);
	if (ret_detected)
		*ret_detected = im_decompressor_compression(d);
	im_decompressor_free(d);
	return got < 0 ? (int)got : 0;
}

static void gzip_member(struct tar_buffer *out, const uint8_t *data, size_t len)
{
	uint8_t buf[65536];
	z_stream z = { 0 };

	/* windowBits 15 + 16 writes a gzip header and trailer. */
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	z.next_in = (uint8_t *)data;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = sizeof(buf);
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	tb_append(out, buf, sizeof(buf) - z.avail_out);
	deflateEnd(&z);
}

static void test_decompress_gzip(void)
{
	struct tar_buffer gz = { 0 }, out = { 0 };
	enum im_compression detected;
	uint8_t a[20000], b[7000];

	fill_pattern(a, sizeof(a), 4);
	fill_pattern(b, sizeof(b), 5);
	gzip_member(&gz, a, sizeof(a));
	gzip_member(&gz, b, sizeof(b));

	CHECK_INT(decompress_buffer(IM_COMPRESSION_DETECT, gz.data, gz.len, &out, &detected), 0);
	CHECK_INT(detected, IM_COMPRESSION_IS_GZIP);
	CHECK_INT(out.len, sizeof(a) + sizeof(b));
	if (out.len == sizeof(a) + sizeof(b)) {
		CHECK(memcmp(out.data, a, sizeof(a)) == 0);
		CHECK(memcmp(out.data + sizeof(a), b, sizeof(b)) == 0);
	}
	tb_free(&out);

	CHECK_INT(decompress_buffer(IM_COMPRESSION_IS_GZIP, gz.data, gz.len - 5, &out, NULL),
		  -EBADMSG);
	tb_free(&out);

	tb_append(&gz, "garbage", 7);
	CHECK_INT(decompress_buffer(IM_COMPRESSION_IS_GZIP, gz.data, gz.len, &out, NULL), -EBADMSG);
	tb_free(&out);
	tb_free(&gz);
}

static void test_decompress_zstd(void)
{
	struct tar_buffer z = { 0 }, out = { 0 };
	static const uint8_t skippable[12] = { 0x5f, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4 };
	enum im_compression detected;
	uint8_t a[30000], frame[40000];
	size_t n;

	fill_pattern(a, sizeof(a), 6);
	n = ZSTD_compress(frame, sizeof(frame), a, 10000, 3);
	tb_append(&z, frame, n);
	tb_append(&z, skippable, sizeof(skippable));
	n = ZSTD_compress(frame, sizeof(frame), a + 10000, 20000, 19);
	tb_append(&z, frame, n);

	CHECK_INT(decompress_buffer(IM_COMPRESSION_DETECT, z.data, z.len, &out, &detected), 0);
	CHECK_INT(detected, IM_COMPRESSION_IS_ZSTD);
	CHECK_INT(out.len, sizeof(a));
	if (out.len == sizeof(a))
		CHECK(memcmp(out.data, a, sizeof(a)) == 0);
	tb_free(&out);

	CHECK_INT(decompress_buffer(IM_COMPRESSION_IS_ZSTD, z.data, z.len - 3, &out, NULL),
		  -EBADMSG);
	tb_free(&out);
	tb_free(&z);
}

static void test_decompress_plain_and_empty(void)
{
	struct tar_buffer tar = { 0 }, out = { 0 };
	enum im_compression detected;

	tb_file(&tar, "plain", "text", 4);
	tb_end(&tar);
	CHECK_INT(decompress_buffer(IM_COMPRESSION_DETECT, tar.data, tar.len, &out, &detected), 0);
	CHECK_INT(detected, IM_COMPRESSION_IS_NONE);
	CHECK_INT(out.len, tar.len);
	if (out.len == tar.len)
		CHECK(memcmp(out.data, tar.data, tar.len) == 0);
	tb_free(&out);

	/* A 0-byte blob is an empty tar stream whatever its media type. */
	for (int c = IM_COMPRESSION_DETECT; c <= IM_COMPRESSION_IS_ZSTD; c++) {
		CHECK_INT(decompress_buffer((enum im_compression)c, tar.data, 0, &out, NULL), 0);
		CHECK_INT(out.len, 0);
		tb_free(&out);
	}
	tb_free(&tar);
}

int main(void)
{
	im_log_set_level(IM_LOG_ERR - 1);

	RUN_TEST(test_convert_round_trip);
	RUN_TEST(test_convert_single_chunk_file);
	RUN_TEST(test_convert_empty_stream);
	RUN_TEST(test_convert_rejects_bad_input);
	RUN_TEST(test_time_format);
	RUN_TEST(test_base64);
	RUN_TEST(test_decompress_gzip);
	RUN_TEST(test_decompress_zstd);
	RUN_TEST(test_decompress_plain_and_empty);
	return check_exit_status();
}
