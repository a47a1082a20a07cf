/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the pieces behind `imgmount ls`, `stat`, `cat` and `tree`
 * that need no registry: the symlink-following lookup in a merged tree
 * (fs/resolve.c), the text forms of attributes (fs/entry_text.c), and the
 * JSON form of names that are not UTF-8 (fs/json_out.c). The trees are
 * built in memory with the index builder, as the TOC compiler emits them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fs/entry_text.h"
#include "fs/json_out.h"
#include "fs/resolve.h"
#include "index/layer_index.h"
#include "index/tree.h"
#include "tests/unit/check.h"

/* One layer under construction, then its index and merged tree. */
static struct {
	struct im_index_builder *builder;
	struct im_layer_index *layer;
	void *buffer;
	struct im_tree *tree;
} image;

static void add_entry(enum im_entry_type type, const char *path, const char *link)
{
	struct im_entry e = {
		.type = type,
		.mode = type == IM_ENTRY_SYMLINK ? 0777 : 0755,
		.path = path,
		.path_len = (uint32_t)strlen(path),
		.link = link ? link : "",
		.link_len = link ? (uint32_t)strlen(link) : 0,
	};

	CHECK_INT(im_index_builder_add_entry(image.builder, &e), 0);
}

static void build_tree(void)
{
	struct im_digest digest;
	size_t len = 0;

	im_sha256("resolve", 7, &digest);
	CHECK_INT(im_index_builder_new(&digest, 1 << 20, &image.builder), 0);

	add_entry(IM_ENTRY_DIR, "etc", NULL);
	add_entry(IM_ENTRY_REG, "etc/passwd", NULL);
	add_entry(IM_ENTRY_DIR, "usr", NULL);
	add_entry(IM_ENTRY_DIR, "usr/lib", NULL);
	add_entry(IM_ENTRY_REG, "usr/lib/x.so", NULL);
	add_entry(IM_ENTRY_SYMLINK, "usr/lib/rel", "../../etc");
	add_entry(IM_ENTRY_SYMLINK, "lib", "usr/lib");
	add_entry(IM_ENTRY_SYMLINK, "chain", "lib");
	add_entry(IM_ENTRY_SYMLINK, "abs", "/etc");
	add_entry(IM_ENTRY_SYMLINK, "up", "../../../etc");
	add_entry(IM_ENTRY_SYMLINK, "self", "self");
	add_entry(IM_ENTRY_SYMLINK, "ping", "pong");
	add_entry(IM_ENTRY_SYMLINK, "pong", "ping");
	add_entry(IM_ENTRY_SYMLINK, "dangling", "nothere");
	add_entry(IM_ENTRY_SYMLINK, "to-file", "etc/passwd");

	/* hop0 -> hop1 -> ... -> hop40 -> etc/passwd. From hop1 that is 40
	 * links, the maximum a lookup follows, and from hop0 it is 41. */
	for (int i = 0; i <= 40; i++) {
		char name[16], target[16];

		snprintf(name, sizeof(name), "hop%d", i);
		snprintf(target, sizeof(target), "hop%d", i + 1);
		add_entry(IM_ENTRY_SYMLINK, name, i == 40 ? "etc/passwd" : target);
	}

	CHECK_INT(im_index_builder_write_buffer(image.builder, &image.buffer, &len), 0);
	CHECK_INT(im_layer_index_open_buffer(image.buffer, len, &image.layer), 0);
	CHECK_INT(im_tree_build(&image.layer, 1, &image.tree), 0);
	im_index_builder_free(image.builder);
	image.builder = NULL;
}

static void free_tree(void)
{
	im_tree_free(image.tree);
	im_layer_index_free(image.layer);
	free(image.buffer);
	memset(&image, 0, sizeof(image));
}

/* Inode of path without following any symlink, or 0. */
static uint64_t ino_of(const char *path)
{
	uint64_t ino = 0;

	CHECK_INT(im_tree_lookup_path(image.tree, path, &ino), 0);
	return ino;
}

static void test_resolve_paths(void)
{
	static const struct {
		const char *path;
		bool follow_last;
		const char *expected;   /* path of the result without symlinks */
	} cases[] = {
		{ "", true, "" },
		{ "/", true, "" },
		{ "etc", true, "etc" },
		{ "/etc/", true, "etc" },
		{ "etc/./passwd", true, "etc/passwd" },
		{ "lib", false, "lib" },
		{ "lib", true, "usr/lib" },
		{ "lib/", false, "usr/lib" },
		{ "chain/x.so", false, "usr/lib/x.so" },
		{ "abs/passwd", true, "etc/passwd" },
		{ "up/passwd", true, "etc/passwd" },
		{ "usr/lib/rel/passwd", true, "etc/passwd" },
		{ "usr/lib/../../etc/passwd", true, "etc/passwd" },
		{ "../../etc", true, "etc" },
		{ "self", false, "self" },
		{ "to-file", true, "etc/passwd" },
		{ "to-file", false, "to-file" },
		{ "hop1", true, "etc/passwd" },
	};

	build_tree();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ino = 0;
		int r = im_resolve_path(image.tree, cases[i].path, cases[i].follow_last, &ino);

		if (r != 0 || ino != ino_of(cases[i].expected))
			fprintf(stderr, "case %zu: \"%s\"\n", i, cases[i].path);
		CHECK_INT(r, 0);
		CHECK_INT(ino, ino_of(cases[i].expected));
	}
	free_tree();
}

static void test_resolve_errors(void)
{
	static const struct {
		const char *path;
		bool follow_last;
		int expected;
	} cases[] = {
		{ "nothere", true, -ENOENT },
		{ "etc/nothere", true, -ENOENT },
		{ "dangling", true, -ENOENT },
		{ "self", true, -ELOOP },
		{ "ping", true, -ELOOP },
		{ "ping/x", false, -ELOOP },
		{ "hop0", true, -ELOOP },
		{ "etc/passwd/x", true, -ENOTDIR },
		{ "etc/passwd/", false, -ENOTDIR },
		{ "to-file/", false, -ENOTDIR },
	};

	build_tree();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ino = 0;
		int r = im_resolve_path(image.tree, cases[i].path, cases[i].follow_last, &ino);

		if (r != cases[i].expected)
			fprintf(stderr, "case %zu: \"%s\"\n", i, cases[i].path);
		CHECK_INT(r, cases[i].expected);
	}
	free_tree();
}

static void test_mode_strings(void)
{
	static const struct {
		enum im_entry_type type;
		uint32_t mode;
		const char *expected;
	} cases[] = {
		{ IM_ENTRY_REG, 0644, "-rw-r--r--" },
		{ IM_ENTRY_REG, 04755, "-rwsr-xr-x" },
		{ IM_ENTRY_REG, 04644, "-rwSr--r--" },
		{ IM_ENTRY_REG, 02755, "-rwxr-sr-x" },
		{ IM_ENTRY_REG, 02745, "-rwxr-Sr-x" },
		{ IM_ENTRY_DIR, 01777, "drwxrwxrwt" },
		{ IM_ENTRY_DIR, 01776, "drwxrwxrwT" },
		{ IM_ENTRY_DIR, 07000, "d--S--S--T" },
		{ IM_ENTRY_SYMLINK, 0777, "lrwxrwxrwx" },
		{ IM_ENTRY_CHAR, 0666, "crw-rw-rw-" },
		{ IM_ENTRY_BLOCK, 0660, "brw-rw----" },
		{ IM_ENTRY_FIFO, 0620, "prw--w----" },
		{ IM_ENTRY_WHITEOUT, 0, "c---------" },
		{ IM_ENTRY_OPAQUE, 0, "----------" },
	};
	char out[IM_MODE_STRING_LEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		im_format_mode(cases[i].type, cases[i].mode, out);
		CHECK_STR(out, cases[i].expected);
	}
}

static void test_utf8_validation(void)
{
	static const struct {
		const char *text;
		bool valid;
	} cases[] = {
		{ "plain", true },
		{ "caf\xc3\xa9", true },
		{ "\xf0\x9f\x98\x80", true },
		{ "\xef\xbf\xbd", true },
		{ "caf\xe9", false },          /* Latin-1 */
		{ "\xc0\xaf", false },         /* overlong "/" */
		{ "\xe0\x80\xaf", false },     /* overlong "/" */
		{ "\xed\xa0\x80", false },     /* surrogate */
		{ "\xf4\x90\x80\x80", false }, /* above U+10FFFF */
		{ "\xe2\x82", false },         /* truncated */
		{ "\x80", false },             /* lone continuation byte */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool valid = im_utf8_valid(cases[i].text, strlen(cases[i].text));

		if (valid != cases[i].valid)
			fprintf(stderr, "case %zu\n", i);
		CHECK(valid == cases[i].valid);
	}
}

/* im_fput_escaped() of text into a string the caller frees. */
static char *escaped(const char *text, size_t len)
{
	char *out = NULL;
	size_t out_len = 0;
	FILE *stream = open_memstream(&out, &out_len);

	CHECK(stream != NULL);
	if (!stream)
		return NULL;
	im_fput_escaped(text, len, stream);
	fclose(stream);
	return out;
}

static void test_escaping(void)
{
	static const struct {
		const char *text;
		const char *expected;
	} cases[] = {
		{ "plain name", "plain name" },
		{ "back\\slash", "back\\\\slash" },
		{ "new\nline", "new\\nline" },
		{ "tab\there", "tab\\there" },
		{ "\x1b[31mred", "\\x1b[31mred" },
		{ "del\x7f", "del\\x7f" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
		{ "caf\xe9", "caf\\xe9" },
		{ "c1\xc2\x9b", "c1\\xc2\\x9b" },
		{ "\xff\xfe", "\\xff\\xfe" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = escaped(cases[i].text, strlen(cases[i].text));

		CHECK_STR(out, cases[i].expected);
		free(out);
	}

	/* A NUL byte inside the text is escaped too, not a terminator. */
	char *out = escaped("a\0b", 3);

	CHECK_STR(out, "a\\x00b");
	free(out);
}

static void test_time_formats(void)
{
	char out[48];

	im_format_time(0, 0, false, out, sizeof(out));
	CHECK_STR(out, "1970-01-01 00:00:00");
	im_format_time(1700000000, 500000000, true, out, sizeof(out));
	CHECK_STR(out, "2023-11-14 22:13:20.500000000");
	im_format_time(-2146608000, 0, false, out, sizeof(out));
	CHECK_STR(out, "1901-12-24 00:00:00");
	im_format_time(INT64_MAX, 0, true, out, sizeof(out));
	CHECK_STR(out, "@9223372036854775807");
}

static void test_json_names(void)
{
	struct json_object *obj = json_object_new_object();
	struct json_object *value;

	CHECK_INT(im_json_add_bytes(obj, "name", "caf\xc3\xa9", 5), 0);
	CHECK(json_object_object_get_ex(obj, "name", &value));
	CHECK_STR(json_object_get_string(value), "caf\xc3\xa9");
	CHECK(!json_object_object_get_ex(obj, "name_hex", &value));

	CHECK_INT(im_json_add_bytes(obj, "path", "d\xe9/\xff", 4), 0);
	CHECK(json_object_object_get_ex(obj, "path", &value));
	CHECK_STR(json_object_get_string(value), "d\xef\xbf\xbd/\xef\xbf\xbd");
	CHECK(json_object_object_get_ex(obj, "path_hex", &value));
	CHECK_STR(json_object_get_string(value), "64e92fff");

	CHECK_INT(im_json_add_null(obj, "layer"), 0);
	CHECK(json_object_object_get_ex(obj, "layer", &value));
	CHECK(value == NULL);
	json_object_put(obj);
}

int main(void)
{
	RUN_TEST(test_resolve_paths);
	RUN_TEST(test_resolve_errors);
	RUN_TEST(test_mode_strings);
	RUN_TEST(test_utf8_validation);
	RUN_TEST(test_escaping);
	RUN_TEST(test_time_formats);
	RUN_TEST(test_json_names);
	return check_exit_status();
}
