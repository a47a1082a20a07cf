/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of the zstd:chunked TOC reader: the position annotation, TOC
 * decompression, and the compilation of hand-written TOC JSON into a layer
 * index, read back through im_layer_index_open_buffer().
 *
 * JSON in this file is written with single quotes, which json() turns into
 * double quotes, so that the cases stay readable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "common/digest.h"
#include "common/log.h"
#include "index/layer_index.h"
#include "index/toc.h"
#include "tests/unit/check.h"

#define BLOB_SIZE 10000u

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HEX_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define DIGEST_A "sha256:" HEX_A
#define DIGEST_B "sha256:" HEX_B
#define DIGEST_C "sha256:" HEX_C
#define DIGEST_D "sha256:" HEX_D

/* A TOC with the given entries, in the quoting described above. */
#define TOC(entries) "{'version':1,'entries':[" entries "],'tarSplitDigest':'" DIGEST_D "'}"

/* Replace single quotes with double quotes in a copy of text. */
static char *json(const char *text)
{
	char *s = strdup(text);

	for (char *p = s; p && *p; p++) {
		if (*p == '\'')
			*p = '"';
	}
	return s;
}

static struct im_digest parse_digest(const char *text)
{
	struct im_digest d = { { 0 } };

	CHECK_INT(im_digest_parse(text, &d), 0);
	return d;
}

/* Compile text (single-quoted JSON) and open the index it produces.
 * Return: what im_toc_compile() or a later step returned. */
static int compile_len(const char *text, size_t len, uint64_t blob_size,
		       struct im_layer_index **ret_idx, void **ret_data)
{
	struct im_digest toc = parse_digest(DIGEST_D);
	struct im_index_builder *b = NULL;
	size_t data_len = 0;
	int r;

	*ret_idx = NULL;
	*ret_data = NULL;
	r = im_toc_compile(text, len, &toc, blob_size, &b);
	if (r < 0)
		return r;

	r = im_index_builder_write_buffer(b, ret_data, &data_len);
	im_index_builder_free(b);
	if (r < 0)
		return r;
	return im_layer_index_open_buffer(*ret_data, data_len, ret_idx);
}

static int compile(const char *text, struct im_layer_index **ret_idx, void **ret_data)
{
	char *s = json(text);
	int r = compile_len(s, strlen(s), BLOB_SIZE, ret_idx, ret_data);

	free(s);
	return r;
}

/* Compile and expect rejection, quietly. */
static int compile_quiet(const char *text)
{
	struct im_layer_index *idx;
	void *data;
	int r;

	im_log_set_level(LOG_CRIT);
	r = compile(text, &idx, &data);
	im_log_set_level(IM_LOG_INFO);
	im_layer_index_free(idx);
	free(data);
	return r;
}

static void free_index(struct im_layer_index *idx, void *data)
{
	im_layer_index_free(idx);
	free(data);
}

static void check_chunk(const struct im_layer_index *idx, uint32_t i, uint64_t file_offset,
			uint64_t length, uint64_t blob_offset, uint64_t blob_length,
			const char *digest, uint32_t flags)
{
	struct im_digest expected = { { 0 } };
	struct im_chunk c;

	if (digest)
		expected = parse_digest(digest);
	im_layer_index_chunk(idx, i, &c);
	CHECK_INT(c.file_offset, file_offset);
	CHECK_INT(c.length, length);
	CHECK_INT(c.blob_offset, blob_offset);
	CHECK_INT(c.blob_length, blob_length);
	CHECK(im_digest_equal(&c.sha256, &expected));
	CHECK_INT(c.flags, flags);
}

static void test_unchunked_file(void)
{
	struct im_layer_index *idx;
	struct im_entry e;
	void *data;

	CHECK_INT(compile(TOC("{'type':'dir','name':'etc/','mode':16877,'uid':0,'gid':0,"
			      "'modtime':'2023-11-14T22:13:20Z'},"
			      "{'type':'reg','name':'etc/hostname','mode':33188,'size':5,"
			      "'uid':1000,'gid':4294967295,'modtime':'2023-11-14T22:13:20Z',"
			      "'digest':'" DIGEST_A "','offset':100,'endOffset':150,"
			      "'accesstime':'2023-11-14T22:13:20Z','userName':'ignored'}"),
			  &idx, &data), 0);
	if (!idx)
		return;

	CHECK_INT(im_layer_index_entry_count(idx), 2);
	CHECK_INT(im_layer_index_chunk_count(idx), 1);
	CHECK(im_digest_equal(im_layer_index_toc_digest(idx), &(struct im_digest){ { 0xdd, 0xdd,
		0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd,
		0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd,
		0xdd, 0xdd } }));
	CHECK_INT(im_layer_index_blob_size(idx), BLOB_SIZE);

	im_layer_index_entry(idx, 0, &e);
	CHECK_INT(e.type, IM_ENTRY_DIR);
	CHECK_STR(e.path, "etc");
	CHECK_INT(e.mode, 0755);
	CHECK_INT(e.mtime_sec, 1700000000);
	CHECK_INT(e.mtime_nsec, 0);
	CHECK_INT(e.size, 0);

	im_layer_index_entry(idx, 1, &e);
	CHECK_INT(e.type, IM_ENTRY_REG);
	CHECK_STR(e.path, "etc/hostname");
	CHECK_INT(e.mode, 0644);
	CHECK_INT(e.size, 5);
	CHECK_INT(e.uid, 1000);
	CHECK_INT(e.gid, 4294967295u);
	CHECK_INT(e.chunk_count, 1);
	check_chunk(idx, 0, 0, 5, 100, 50, DIGEST_A, 0);
	free_index(idx, data);
}

/* containers/storage form: the reg entry is chunk 0, and the last chunk
 * ends at the reg entry's endOffset. */
static void test_chunked_file_with_zeros(void)
{
	struct im_layer_index *idx;
	struct im_entry e;
	void *data;

	CHECK_INT(compile(TOC("{'type':'reg','name':'big','mode':420,'size':300,"
			      "'digest':'" DIGEST_A "','offset':200,'endOffset':500,"
			      "'chunkSize':100,'chunkDigest':'" DIGEST_B "'},"
			      "{'type':'chunk','name':'big','chunkOffset':100,'chunkSize':150,"
			      "'offset':300,'chunkType':'zeros','chunkDigest':'" DIGEST_C "'},"
			      "{'type':'chunk','name':'./big','chunkOffset':250,'chunkSize':50,"
			      "'offset':320,'chunkDigest':'" DIGEST_D "'},"
			      "{'type':'reg','name':'after','size':0}"),
			  &idx, &data), 0);
	if (!idx)
		return;

	CHECK_INT(im_layer_index_entry_count(idx), 2);
	CHECK_INT(im_layer_index_chunk_count(idx), 3);
	im_layer_index_entry(idx, 0, &e);
	CHECK_STR(e.path, "big");
	CHECK_INT(e.size, 300);
	CHECK_INT(e.chunk_first, 0);
	CHECK_INT(e.chunk_count, 3);
	check_chunk(idx, 0, 0, 100, 200, 100, DIGEST_B, 0);
	check_chunk(idx, 1, 100, 150, 300, 20, DIGEST_C, IM_CHUNK_ZEROS);
	check_chunk(idx, 2, 250, 50, 320, 180, DIGEST_D, 0);

	im_layer_index_entry(idx, 1, &e);
	CHECK_STR(e.path, "after");
	CHECK_INT(e.size, 0);
	CHECK_INT(e.chunk_count, 0);
	free_index(idx, data);
}

/* Older writers give no endOffset: a chunk ends at the next larger offset
 * of any entry, or at the end of the blob. eStargz also leaves out the
 * size of a file's last chunk. */
static void test_missing_end_offset(void)
{
	struct im_layer_index *idx;
	void *data;

	CHECK_INT(compile(TOC("{'type':'reg','name':'a','size':10,'digest':'" DIGEST_A "',"
			      "'offset':100},"
			      "{'type':'reg','name':'c','size':10,'digest':'" DIGEST_A "',"
			      "'offset':400},"
			      "{'type':'reg','name':'b','size':10,'digest':'" DIGEST_A "',"
			      "'offset':250},"
			      "{'type':'reg','name':'d','size':250,'offset':500,'chunkSize':100,"
			      "'chunkDigest':'" DIGEST_B "'},"
			      "{'type':'chunk','name':'d','chunkOffset':100,'offset':560,"
			      "'chunkDigest':'" DIGEST_C "'}"),
			  &idx, &data), 0);
	if (!idx)
		return;

	CHECK_INT(im_layer_index_chunk_count(idx), 5);
	check_chunk(idx, 0, 0, 10, 100, 150, DIGEST_A, 0);
	check_chunk(idx, 1, 0, 10, 400, 100, DIGEST_A, 0);
	check_chunk(idx, 2, 0, 10, 250, 150, DIGEST_A, 0);
	check_chunk(idx, 3, 0, 100, 500, 60, DIGEST_B, 0);
	check_chunk(idx, 4, 100, 150, 560, BLOB_SIZE - 560, DIGEST_C, 0);
	free_index(idx, data);
}

static void check_entry(const struct im_layer_index *idx, uint32_t i,
			enum im_entry_type type, const char *path)
{
	struct im_entry e;

	im_layer_index_entry(idx, i, &e);
	CHECK_INT(e.type, type);
	CHECK_STR(e.path, path);
	CHECK_INT(e.path_len, strlen(path));
}

static void test_whiteouts_and_opaque_markers(void)
{
	struct im_layer_index *idx;
	void *data;

	CHECK_INT(compile(TOC("{'type':'reg','name':'etc/.wh.passwd','size':0},"
			      "{'type':'char','name':'.wh.foo'},"
			      "{'type':'hardlink','name':'a/.wh.b','linkName':'x'},"
			      "{'type':'reg','name':'usr/.wh..wh..opq'},"
			      "{'type':'dir','name':'./.wh..wh..opq'},"
			      "{'type':'reg','name':'d/.wh..wh.opq'},"
			      "{'type':'reg','name':'/x/y/.wh..hidden','size':3,"
			      "'digest':'" DIGEST_A "','offset':10,'endOffset':20},"
			      "{'type':'chunk','name':'x/y/.wh..hidden','chunkOffset':1}"),
			  &idx, &data), 0);
	if (!idx)
		return;

	CHECK_INT(im_layer_index_entry_count(idx), 7);
	CHECK_INT(im_layer_index_chunk_count(idx), 0);
	check_entry(idx, 0, IM_ENTRY_WHITEOUT, "etc/passwd");
	check_entry(idx, 1, IM_ENTRY_WHITEOUT, "foo");
	check_entry(idx, 2, IM_ENTRY_WHITEOUT, "a/b");
	check_entry(idx, 3, IM_ENTRY_OPAQUE, "usr");
	check_entry(idx, 4, IM_ENTRY_OPAQUE, "");
	/* A near miss of the opaque name is a whiteout of ".wh.opq". */
	check_entry(idx, 5, IM_ENTRY_WHITEOUT, "d/.wh.opq");
	check_entry(idx, 6, IM_ENTRY_WHITEOUT, "x/y/.hidden");
	free_index(idx, data);
}

static void test_bare_whiteout_rejected(void)
{
	CHECK_INT(compile_quiet(TOC("{'type':'reg','name':'.wh.'}")), -EBADMSG);
	CHECK_INT(compile_quiet(TOC("{'type':'dir','name':'etc'},"
				    "{'type':'char','name':'etc/.wh.'}")), -EBADMSG);
	CHECK_INT(compile_quiet(TOC("{'type':'reg','name':'etc/.wh..'}")), -EBADMSG);
	CHECK_INT(compile_quiet(TOC("{'type':'reg','name':'etc/.wh...'}")), -EBADMSG);
}

static void test_names_cleaned_and_root_skipped(void)
{
	struct im_layer_index *idx;
	struct im_entry e;
	void *data;

	CHECK_INT(compile(TOC("{'type':'dir','name':'./'},"
			      "{'type':'dir','name':'/'},"
			      "{'type':'dir','name':'.'},"
			      "{'type':'dir','name':'../'},"
			      "{'type':'dir','name':'./usr/bin/'},"
			      "{'type':'dir','name':'../../escape'},"
			      "{'type':'symlink','name':'usr//lib/./x','linkName':'../x//y/.'},"
			      "{'type':'hardlink','name':'h','linkName':'./usr/../usr/bin/../bin'},"
			      "{'type':'reg','name':'./','size':4,'digest':'" DIGEST_A "'},"
			      "{'type':'chunk','name':'./'}"),
			  &idx, &data), 0);
	if (!idx)
		return;

	CHECK_INT(im_layer_index_entry_count(idx), 4);
	CHECK_INT(im_layer_index_chunk_count(idx), 0);
	check_entry(idx, 0, IM_ENTRY_DIR, "usr/bin");
	check_entry(idx, 1, IM_ENTRY_DIR, "escape");
	check_entry(idx, 2, IM_ENTRY_SYMLINK, "usr/lib/x");
	im_layer_index_entry(idx, 2, &e);
	CHECK_STR(e.link, "../x//y/.");
	check_entry(idx, 3, IM_ENTRY_HARDLINK, "h");
	im_layer_index_entry(idx, 3, &e);
	CHECK_STR(e.link, "usr/bin");
	free_index(idx, data);
}

static void test_devices_and_fifo(void)
{
	struct im_layer_index *idx;
	struct im_entry e;
	void *data;

	CHECK_INT(compile(TOC("{'type':'char','name':'dev/null','mode':8630,"
			      "'devMajor':1,'devMinor':3},"
			      "{'type':'block','name':'dev/sda','mode':25008,"
			      "'devMajor':8,'devMinor':4294967295},"
			      "{'type':'fifo','name':'run/p','mode':4516,'devMajor':7}"),
			  &idx, &data), 0);
	if (!idx)
		return;

	im_layer_index_entry(idx, 0, &e);
	CHECK_INT(e.type, IM_ENTRY_CHAR);
	CHECK_INT(e.mode, 0666);
	CHECK_INT(e.rdev_major, 1);
	CHECK_INT(e.rdev_minor, 3);
	im_layer_index_entry(idx, 1, &e);
	CHECK_INT(e.type, IM_ENTRY_BLOCK);
	CHECK_INT(e.mode, 0660);
	CHECK_INT(e.rdev_major, 8);
	CHECK_INT(e.rdev_minor, 4294967295u);
	im_layer_index_entry(idx, 2, &e);
	CHECK_INT(e.type, IM_ENTRY_FIFO);
	CHECK_INT(e.mode, 0644);
	CHECK_INT(e.rdev_major, 0);
	free_index(idx, data);
}

struct time_case {
	const char *text;
	int64_t sec;
	uint32_t nsec;
};

static void test_modtime_values(void)
{
	static const struct time_case cases[] = {
		{ "2023-11-14T22:13:20Z", 1700000000, 0 },
		{ "1969-12-31T23:59:59.5Z", -1, 500000000 },
		{ "1969-12-31T23:59:59.999999999Z", -1, 999999999 },
		{ "1970-01-01T00:00:00.000000001Z", 0, 1 },
		{ "0001-01-01T00:00:00Z", -62135596800, 0 },
		{ "1900-03-01T00:00:00Z", -2203891200, 0 },
		{ "2024-02-29T12:00:00.123456789+02:00", 1709200800, 123456789 },
		{ "2000-01-01T00:00:00-01:30", 946690200, 0 },
		{ "9999-12-31T23:59:59z", 253402300799, 0 },
		{ "2016-12-31t23:59:60Z", 1483228800, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		struct im_layer_index *idx;
		struct im_entry e;
		void *data;

		snprintf(text, sizeof(text), TOC("{'type':'dir','name':'d','modtime':'%s'}"),
			 cases[i].text);
		CHECK_INT(compile(text, &idx, &data), 0);
		if (!idx) {
			fprintf(stderr, "  modtime was %s\n", cases[i].text);
			continue;
		}
		im_layer_index_entry(idx, 0, &e);
		CHECK_INT(e.mtime_sec, cases[i].sec);
		CHECK_INT(e.mtime_nsec, cases[i].nsec);
		free_index(idx, data);
	}
}

static void test_modtime_invalid(void)
{
	static const char *const cases[] = {
		"2023-02-29T00:00:00Z",
		"2023-13-01T00:00:00Z",
		"2023-00-01T00:00:00Z",
		"2023-01-01T24:00:00Z",
		"2023-01-01T00:60:00Z",
		"2023-01-01T00:00:61Z",
		"2023-01-01T00:00:00.1234567891Z",
		"2023-01-01T00:00:00.Z",
		"2023-01-01 00:00:00Z",
		"2023-01-01T00:00:00",
		"2023-01-01T00:00:00+0100",
		"2023-01-01T00:00:00+24:00",
		"2023-01-01T00:00:00Zjunk",
		"23-01-01T00:00:00Z",
		"+2023-01-01T00:00:0Z",
		"yesterday",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		int r;

		snprintf(text, sizeof(text), TOC("{'type':'dir','name':'d','modtime':'%s'}"),
			 cases[i]);
		r = compile_quiet(text);
		CHECK_INT(r, -EBADMSG);
		if (r != -EBADMSG)
			fprintf(stderr, "  modtime was %s\n", cases[i]);
	}
}

static void test_binary_xattrs(void)
{
	static const uint8_t expected_bin[] = { 0x00, 0x01, 0x00, 0xff };
	struct im_layer_index *idx;
	struct im_entry e;
	struct im_xattr x;
	void *data;

	CHECK_INT(compile(TOC("{'type':'dir','name':'d','xattrs':{'user.bin':'AAEA/w==',"
			      "'security.capability':'AQID','user.empty':''}},"
			      "{'type':'reg','name':'.wh.x','xattrs':{'user.dropped':'AQID'}}"),
			  &idx, &data), 0);
	if (!idx)
		return;

	/* Markers carry no xattrs. */
	CHECK_INT(im_layer_index_xattr_count(idx), 3);
	im_layer_index_entry(idx, 0, &e);
	CHECK_INT(e.xattr_first, 0);
	CHECK_INT(e.xattr_count, 3);

	im_layer_index_xattr(idx, 0, &x);
	CHECK_STR(x.name, "user.bin");
	CHECK_INT(x.value_len, sizeof(expected_bin));
	CHECK(memcmp(x.value, expected_bin, sizeof(expected_bin)) == 0);
	im_layer_index_xattr(idx, 1, &x);
	CHECK_STR(x.name, "security.capability");
	CHECK_INT(x.value_len, 3);
	CHECK(memcmp(x.value, "\x01\x02\x03", 3) == 0);
	im_layer_index_xattr(idx, 2, &x);
	CHECK_STR(x.name, "user.empty");
	CHECK_INT(x.value_len, 0);

	im_layer_index_entry(idx, 1, &e);
	CHECK_INT(e.type, IM_ENTRY_WHITEOUT);
	CHECK_INT(e.xattr_count, 0);
	free_index(idx, data);
}

static void test_bad_xattrs_rejected(void)
{
	static const char *const cases[] = {
		TOC("{'type':'dir','name':'d','xattrs':{'user.x':'AAE'}}"),
		TOC("{'type':'dir','name':'d','xattrs':{'user.x':'AA=A'}}"),
		TOC("{'type':'dir','name':'d','xattrs':{'user.x':'A==='}}"),
		TOC("{'type':'dir','name':'d','xattrs':{'user.x':' AAA'}}"),
		TOC("{'type':'dir','name':'d','xattrs':{'user.x':'AA\\nA'}}"),
		TOC("{'type':'dir','name':'d','xattrs':{'user.x':5}}"),
		TOC("{'type':'dir','name':'d','xattrs':{'':'AAAA'}}"),
		TOC("{'type':'dir','name':'d','xattrs':['AAAA']}"),
		TOC("{'type':'dir','name':'d','xattrs':{'user.a\\u0000b':'AAAA'}}"),
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = compile_quiet(cases[i]);

		CHECK_INT(r, -EBADMSG);
		if (r != -EBADMSG)
			fprintf(stderr, "  case %zu\n", i);
	}
}

/* An xattr value of 65536 bytes is accepted and one of 65537 bytes is not. */
static void test_xattr_value_limit(void)
{
	static const char prefix[] = "{\"version\":1,\"entries\":[{\"type\":\"dir\",\"name\":\"d\","
				     "\"xattrs\":{\"user.big\":\"";
	static const char suffix[] = "\"}}]}";
	size_t b64_len = (65536 + 2) / 3 * 4;
	size_t cap = sizeof(prefix) + b64_len + 8 + sizeof(suffix);
	char *text = malloc(cap);
	struct im_layer_index *idx;
	struct im_xattr x;
	void *data;
	size_t n;

	if (!text)
		return;
	n = (size_t)snprintf(text, cap, "%s", prefix);
	/* 65535 bytes of "AAA" groups plus one byte "AA==" gives 65536. */
	for (size_t i = 0; i < 65535 / 3; i++, n += 4)
		memcpy(text + n, "AAAA", 4);
	memcpy(text + n, "AA==", 4);
	n += 4;
	memcpy(text + n, suffix, sizeof(suffix));
	n += sizeof(suffix) - 1;

	CHECK_INT(compile_len(text, n, BLOB_SIZE, &idx, &data), 0);
	if (idx) {
		im_layer_index_xattr(idx, 0, &x);
		CHECK_INT(x.value_len, 65536);
	}
	free_index(idx, data);

	/* "AAA=" in place of "AA==" makes 65537 bytes. */
	memcpy(text + n - (sizeof(suffix) - 1) - 4, "AAA=", 4);
	im_log_set_level(LOG_CRIT);
	CHECK_INT(compile_len(text, n, BLOB_SIZE, &idx, &data), -EBADMSG);
	im_log_set_level(IM_LOG_INFO);
	free_index(idx, data);
	free(text);
}

static void test_malformed_json_rejected(void)
{
	static const char *const cases[] = {
		"",
		"{",
		"{'version':1,'entries':[",
		"{'version':1,'entries':[]} trailing",
		"{'version':1,'entries':[]}{}",
		"[]",
		"'toc'",
		"{'entries':[]}",
		"{'version':2,'entries':[]}",
		"{'version':'1','entries':[]}",
		"{'version':1,'entries':{}}",
		"{'version':1,'entries':[5]}",
		"{'version':1,'entries':[{'type':'dir','name':'d',}]}",
		"{'version':1,'entries':[{'type':'dir','name':'a\\u0000b'}]}",
		"{'version':1,'entries':[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = compile_quiet(cases[i]);

		CHECK_INT(r, -EBADMSG);
		if (r != -EBADMSG)
			fprintf(stderr, "  case %zu: %s\n", i, cases[i]);
	}
}

static void test_nul_byte_in_json_rejected(void)
{
	static const char text[] = "{\"version\":1,\"entries\":[]}\0{}";
	struct im_layer_index *idx;
	void *data;

	im_log_set_level(LOG_CRIT);
	CHECK_INT(compile_len(text, sizeof(text) - 1, BLOB_SIZE, &idx, &data), -EBADMSG);
	im_log_set_level(IM_LOG_INFO);
	free_index(idx, data);
}

static void test_empty_entries(void)
{
	static const char *const cases[] = {
		"{'version':1}",
		"{'version':1,'entries':null}",
		"{'version':1,'entries':[]}",
		" \n{'version':1,'entries':[]}\r\n\t ",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct im_layer_index *idx;
		void *data;

		CHECK_INT(compile(cases[i], &idx, &data), 0);
		if (idx)
			CHECK_INT(im_layer_index_entry_count(idx), 0);
		free_index(idx, data);
	}
}

static void test_wrong_types_rejected(void)
{
	static const char *const cases[] = {
		TOC("{'type':'reg','name':'f','size':'5','digest':'" DIGEST_A "'}"),
		TOC("{'type':'dir','name':'d','mode':1.5}"),
		TOC("{'type':'dir','name':'d','mode':-1}"),
		TOC("{'type':'dir','name':'d','uid':-1}"),
		TOC("{'type':'dir','name':'d','uid':4294967296}"),
		TOC("{'type':'dir','name':'d','gid':true}"),
		TOC("{'type':'char','name':'c','devMajor':4294967296}"),
		TOC("{'type':'dir','name':5}"),
		TOC("{'type':7,'name':'d'}"),
		TOC("{'type':'symlink','name':'s','linkName':{}}"),
		TOC("{'type':'dir','name':'d','modtime':1700000000}"),
		TOC("{'type':'reg','name':'f','size':-5}"),
		TOC("{'type':'reg','name':'f','size':9223372036854775808}"),
		TOC("{'type':'reg','name':'f','size':1,'digest':'sha256:abc'}"),
		TOC("{'type':'reg','name':'f','size':1,'digest':5}"),
		TOC("{'type':'reg','name':'f','size':1,'digest':'" DIGEST_A "','chunkType':'holes'}"),
		TOC("{'type':'socket','name':'s'}"),
		TOC("{'name':'untyped'}"),
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = compile_quiet(cases[i]);

		CHECK_INT(r, -EBADMSG);
		if (r != -EBADMSG)
			fprintf(stderr, "  case %zu: %s\n", i, cases[i]);
	}
}

static void test_bad_chunk_lists_rejected(void)
{
	static const char *const cases[] = {
		/* gap: the second chunk starts at 110, not 100 */
		TOC("{'type':'reg','name':'f','size':300,'offset':10,'endOffset':90,"
		    "'chunkSize':100,'chunkDigest':'" DIGEST_A "'},"
		    "{'type':'chunk','name':'f','chunkOffset':110,'chunkSize':190,'offset':50,"
		    "'chunkDigest':'" DIGEST_B "'}"),
		/* overlap: the second chunk starts at 90 */
		TOC("{'type':'reg','name':'f','size':300,'offset':10,'endOffset':90,"
		    "'chunkSize':100,'chunkDigest':'" DIGEST_A "'},"
		    "{'type':'chunk','name':'f','chunkOffset':90,'chunkSize':210,'offset':50,"
		    "'chunkDigest':'" DIGEST_B "'}"),
		/* chunks cover 250 of 300 bytes */
		TOC("{'type':'reg','name':'f','size':300,'offset':10,'endOffset':90,"
		    "'chunkSize':100,'chunkDigest':'" DIGEST_A "'},"
		    "{'type':'chunk','name':'f','chunkOffset':100,'chunkSize':150,'offset':50,"
		    "'chunkDigest':'" DIGEST_B "'}"),
		/* chunks run past the size */
		TOC("{'type':'reg','name':'f','size':200,'offset':10,'endOffset':90,"
		    "'chunkSize':100,'chunkDigest':'" DIGEST_A "'},"
		    "{'type':'chunk','name':'f','chunkOffset':100,'chunkSize':150,'offset':50,"
		    "'chunkDigest':'" DIGEST_B "'}"),
		/* a chunk that is not last without a size */
		TOC("{'type':'reg','name':'f','size':300,'offset':10,'endOffset':90,"
		    "'chunkDigest':'" DIGEST_A "'},"
		    "{'type':'chunk','name':'f','chunkOffset':100,'chunkSize':200,'offset':50,"
		    "'chunkDigest':'" DIGEST_B "'}"),
		/* a data chunk without a digest */
		TOC("{'type':'reg','name':'f','size':200,'offset':10,'endOffset':90,"
		    "'chunkSize':100,'chunkDigest':'" DIGEST_A "'},"
		    "{'type':'chunk','name':'f','chunkOffset':100,'chunkSize':100,'offset':50}"),
		/* chunk of another file */
		TOC("{'type':'reg','name':'f','size':200,'offset':10,'endOffset':90,"
		    "'chunkSize':100,'chunkDigest':'" DIGEST_A "'},"
		    "{'type':'chunk','name':'g','chunkOffset':100,'chunkSize':100,'offset':50,"
		    "'chunkDigest':'" DIGEST_B "'}"),
		/* blob ranges out of order: the next chunk starts before this one */
		TOC("{'type':'reg','name':'f','size':200,'offset':60,'endOffset':90,"
		    "'chunkSize':100,'chunkDigest':'" DIGEST_A "'},"
		    "{'type':'chunk','name':'f','chunkOffset':100,'chunkSize':100,'offset':50,"
		    "'chunkDigest':'" DIGEST_B "'}"),
		/* unchunked file whose chunkSize disagrees with its size */
		TOC("{'type':'reg','name':'f','size':200,'offset':10,'endOffset':90,"
		    "'chunkSize':100,'digest':'" DIGEST_A "'}"),
		/* empty file with chunk entries */
		TOC("{'type':'reg','name':'f','size':0},"
		    "{'type':'chunk','name':'f','chunkOffset':0,'chunkSize':1,'offset':50,"
		    "'chunkDigest':'" DIGEST_B "'}"),
		/* file without a digest */
		TOC("{'type':'reg','name':'f','size':10,'offset':10,'endOffset':90}"),
		/* chunk entry with no file before it */
		TOC("{'type':'chunk','name':'f','chunkOffset':0,'chunkSize':1,'offset':50}"),
		/* chunk entry after a directory */
		TOC("{'type':'dir','name':'f'},"
		    "{'type':'chunk','name':'f','chunkOffset':0,'chunkSize':1,'offset':50,"
		    "'chunkDigest':'" DIGEST_B "'}"),
		/* eStargz innerOffset */
		TOC("{'type':'reg','name':'f','size':10,'offset':10,'endOffset':90,"
		    "'innerOffset':5,'digest':'" DIGEST_A "'}"),
		/* one data chunk over the 64 MiB limit */
		TOC("{'type':'reg','name':'f','size':67108865,'offset':10,'endOffset':90,"
		    "'digest':'" DIGEST_A "'}"),
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = compile_quiet(cases[i]);

		CHECK_INT(r, -EBADMSG);
		if (r != -EBADMSG)
			fprintf(stderr, "  case %zu: %s\n", i, cases[i]);
	}
}

static void test_offsets_past_blob_rejected(void)
{
	static const char *const cases[] = {
		TOC("{'type':'reg','name':'f','size':10,'offset':10001,"
		    "'digest':'" DIGEST_A "'}"),
		TOC("{'type':'reg','name':'f','size':10,'offset':10,'endOffset':10001,"
		    "'digest':'" DIGEST_A "'}"),
		TOC("{'type':'reg','name':'f','size':10,'offset':100,'endOffset':50,"
		    "'digest':'" DIGEST_A "'}"),
		TOC("{'type':'reg','name':'f','size':10,'offset':100,'endOffset':100,"
		    "'digest':'" DIGEST_A "'}"),
		TOC("{'type':'reg','name':'f','size':10,'offset':10000,"
		    "'digest':'" DIGEST_A "'}"),
		TOC("{'type':'dir','name':'d','offset':20000}"),
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = compile_quiet(cases[i]);

		CHECK_INT(r, -EBADMSG);
		if (r != -EBADMSG)
			fprintf(stderr, "  case %zu: %s\n", i, cases[i]);
	}
}

/* A file that ends exactly at the end of the blob is inside it. */
static void test_range_to_blob_end(void)
{
	struct im_layer_index *idx;
	void *data;

	CHECK_INT(compile(TOC("{'type':'reg','name':'f','size':10,'offset':9990,"
			      "'endOffset':10000,'digest':'" DIGEST_A "'}"),
			  &idx, &data), 0);
	if (idx)
		check_chunk(idx, 0, 0, 10, 9990, 10, DIGEST_A, 0);
	free_index(idx, data);
}

static void test_bad_links_rejected(void)
{
	static const char *const cases[] = {
		TOC("{'type':'hardlink','name':'h','linkName':''}"),
		TOC("{'type':'hardlink','name':'h','linkName':'./'}"),
		TOC("{'type':'hardlink','name':'h','linkName':'a/..'}"),
		TOC("{'type':'symlink','name':'s','linkName':'a\\u0000b'}"),
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = compile_quiet(cases[i]);

		CHECK_INT(r, -EBADMSG);
		if (r != -EBADMSG)
			fprintf(stderr, "  case %zu: %s\n", i, cases[i]);
	}
}

static void test_location_parse(void)
{
	struct im_toc_location loc;

	CHECK_INT(im_toc_location_parse("100:50:200:1", DIGEST_A, 1000, &loc), 0);
	CHECK_INT(loc.offset, 100);
	CHECK_INT(loc.length, 50);
	CHECK_INT(loc.uncompressed_length, 200);
	CHECK_INT(loc.digest.bytes[0], 0xaa);
	CHECK_INT(im_toc_location_parse("0:1000:1:1", DIGEST_A, 1000, &loc), 0);
	CHECK_INT(loc.offset, 0);
}

static void test_location_parse_invalid(void)
{
	static const char *const positions[] = {
		"100:50:200:2",
		"100:50:200",
		"100:50:200:1:5",
		"-1:50:200:1",
		"+100:50:200:1",
		"0100:50:200:1",
		" 100:50:200:1",
		"100:50:200:1 ",
		"100::200:1",
		"100:0:200:1",
		"100:50:0:1",
		"100:951:200:1",
		"18446744073709551615:2:200:1",
		"18446744073709551616:50:200:1",
		"100:50:536870913:1",
		"1e2:50:200:1",
		"",
	};
	struct im_toc_location loc;

	im_log_set_level(LOG_CRIT);
	for (size_t i = 0; i < sizeof(positions) / sizeof(positions[0]); i++) {
		int r = im_toc_location_parse(positions[i], DIGEST_A, 1050, &loc);

		CHECK_INT(r, -EINVAL);
		if (r != -EINVAL)
			fprintf(stderr, "  position was \"%s\"\n", positions[i]);
	}
	CHECK_INT(im_toc_location_parse("100:50:200:1", "sha256:abc", 1000, &loc), -EINVAL);
	CHECK_INT(im_toc_location_parse("100:50:200:1", "sha512:" HEX_A HEX_A, 1000, &loc),
		  -EINVAL);
	im_log_set_level(IM_LOG_INFO);
}

static void test_decompress(void)
{
	static const char text[] = "{\"version\":1,\"entries\":[]}";
	uint8_t frame[256];
	size_t frame_len = ZSTD_compress(frame, sizeof(frame), text, sizeof(text) - 1, 3);
	struct im_toc_location loc = {
		.offset = 0,
		.length = frame_len,
		.uncompressed_length = sizeof(text) - 1,
	};
	void *out = NULL;

	CHECK(!ZSTD_isError(frame_len));
	CHECK_INT(im_toc_decompress(frame, frame_len, &loc, &out), 0);
	CHECK(out != NULL);
	if (out)
		CHECK(memcmp(out, text, sizeof(text) - 1) == 0);
	free(out);
	out = NULL;

	im_log_set_level(LOG_CRIT);
	loc.uncompressed_length = sizeof(text);
	CHECK_INT(im_toc_decompress(frame, frame_len, &loc, &out), -EBADMSG);
	loc.uncompressed_length = sizeof(text) - 2;
	CHECK_INT(im_toc_decompress(frame, frame_len, &loc, &out), -EBADMSG);
	loc.uncompressed_length = sizeof(text) - 1;
	CHECK_INT(im_toc_decompress(frame, frame_len - 1, &loc, &out), -EBADMSG);
	loc.length = 8;
	CHECK_INT(im_toc_decompress("garbage!", 8, &loc, &out), -EBADMSG);
	loc.length = frame_len;
	loc.uncompressed_length = IM_TOC_MAX_LENGTH + 1ull;
	CHECK_INT(im_toc_decompress(frame, frame_len, &loc, &out), -EBADMSG);
	im_log_set_level(IM_LOG_INFO);
	CHECK(out == NULL);
}

/* Without a content size in the frame header, the output length is only
 * known after decompression, and must still match. */
static void test_decompress_without_content_size(void)
{
	static const char text[] = "{\"version\":1,\"entries\":[]}";
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	uint8_t frame[256];
	size_t frame_len;
	struct im_toc_location loc = { 0 };
	void *out = NULL;

	ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
	frame_len = ZSTD_compress2(cctx, frame, sizeof(frame), text, sizeof(text) - 1);
	ZSTD_freeCCtx(cctx);
	CHECK(!ZSTD_isError(frame_len));
	CHECK_INT(ZSTD_getFrameContentSize(frame, frame_len), ZSTD_CONTENTSIZE_UNKNOWN);

	loc.length = frame_len;
	loc.uncompressed_length = sizeof(text) - 1;
	CHECK_INT(im_toc_decompress(frame, frame_len, &loc, &out), 0);
	free(out);
	out = NULL;

	im_log_set_level(LOG_CRIT);
	loc.uncompressed_length = sizeof(text) - 5;
	CHECK_INT(im_toc_decompress(frame, frame_len, &loc, &out), -EBADMSG);
	loc.uncompressed_length = sizeof(text) + 5;
	CHECK_INT(im_toc_decompress(frame, frame_len, &loc, &out), -EBADMSG);
	im_log_set_level(IM_LOG_INFO);
	CHECK(out == NULL);
}

int main(void)
{
	RUN_TEST(test_unchunked_file);
	RUN_TEST(test_chunked_file_with_zeros);
	RUN_TEST(test_missing_end_offset);
	RUN_TEST(test_whiteouts_and_opaque_markers);
	RUN_TEST(test_bare_whiteout_rejected);
	RUN_TEST(test_names_cleaned_and_root_skipped);
	RUN_TEST(test_devices_and_fifo);
	RUN_TEST(test_modtime_values);
	RUN_TEST(test_modtime_invalid);
	RUN_TEST(test_binary_xattrs);
	RUN_TEST(test_bad_xattrs_rejected);
	RUN_TEST(test_xattr_value_limit);
	RUN_TEST(test_malformed_json_rejected);
	RUN_TEST(test_nul_byte_in_json_rejected);
	RUN_TEST(test_empty_entries);
	RUN_TEST(test_wrong_types_rejected);
	RUN_TEST(test_bad_chunk_lists_rejected);
	RUN_TEST(test_offsets_past_blob_rejected);
	RUN_TEST(test_range_to_blob_end);
	RUN_TEST(test_bad_links_rejected);
	RUN_TEST(test_location_parse);
	RUN_TEST(test_location_parse_invalid);
	RUN_TEST(test_decompress);
	RUN_TEST(test_decompress_without_content_size);
	return check_exit_status();
}
