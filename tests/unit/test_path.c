/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of im_path_clean(): the table follows containerd's cleaning of
 * layer entry names, filepath.Clean("/" + name) without the leading "/".
 */
#include <errno.h>
#include <string.h>

#include "index/path.h"
#include "index/path_internal.h"
#include "tests/unit/check.h"

struct clean_case {
	const char *name;
	const char *expected;   /* NULL when an error is expected */
	int error;
};

static void test_clean_table(void)
{
	static const struct clean_case cases[] = {
		{ "./a", "a", 0 },
		{ "/etc/x", "etc/x", 0 },
		{ "a//b/", "a/b", 0 },
		{ "a/./b", "a/b", 0 },
		{ "../escape", "escape", 0 },
		{ "etc/../../escape2", "escape2", 0 },
		{ ".", "", 0 },
		{ "./", "", 0 },
		{ "/", "", 0 },
		{ "", "", 0 },
		{ "..", "", 0 },
		{ "../..", "", 0 },
		{ "a/..", "", 0 },
		{ "a/b/../..", "", 0 },
		{ "//a///b//", "a/b", 0 },
		{ "a/b/../c", "a/c", 0 },
		{ "a/b/c/../../d", "a/d", 0 },
		{ "a/../../b/../c", "c", 0 },
		{ "./usr/bin/", "usr/bin", 0 },
		{ "...", "...", 0 },
		{ "a/.../b", "a/.../b", 0 },
		{ ".hidden/..x", ".hidden/..x", 0 },
		{ "a/.wh..wh..opq", "a/.wh..wh..opq", 0 },
		{ "dir\xff\xfe/f\x80", "dir\xff\xfe/f\x80", 0 },
		{ "a\nb", "a\nb", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64];
		int r = im_path_clean(cases[i].name, strlen(cases[i].name), out, sizeof(out));

		CHECK_INT(r, (int)strlen(cases[i].expected));
		CHECK_STR(out, cases[i].expected);
		if (r != (int)strlen(cases[i].expected) || strcmp(out, cases[i].expected) != 0)
			fprintf(stderr, "  name was \"%s\"\n", cases[i].name);
	}
}

static void test_clean_nul_rejected(void)
{
	static const char name[] = "a\0b";
	char out[16];

	CHECK_INT(im_path_clean(name, sizeof(name) - 1, out, sizeof(out)), -EINVAL);
	CHECK_INT(im_path_clean("\0", 1, out, sizeof(out)), -EINVAL);
}

/* The name is len bytes, not NUL-terminated: bytes after it are ignored. */
static void test_clean_uses_length(void)
{
	char out[16];

	CHECK_INT(im_path_clean("abc/def", 3, out, sizeof(out)), 3);
	CHECK_STR(out, "abc");
	CHECK_INT(im_path_clean("./x/", 2, out, sizeof(out)), 0);
	CHECK_STR(out, "");
}

static void test_clean_output_size(void)
{
	char out[4];

	CHECK_INT(im_path_clean("abc", 3, out, sizeof(out)), 3);
	CHECK_STR(out, "abc");
	CHECK_INT(im_path_clean("abcd", 4, out, sizeof(out)), -ENAMETOOLONG);
	CHECK_INT(im_path_clean("a/bc", 4, out, sizeof(out)), -ENAMETOOLONG);
	CHECK_INT(im_path_clean("x", 1, out, 0), -EINVAL);
}

/* A long name that cleans to a short path needs no room for the long
 * intermediate form. */
static void test_clean_long_name_short_result(void)
{
	char name[12000];
	char out[8];
	size_t n = 0;

	for (int i = 0; i < 1000; i++) {
		memcpy(name + n, "abcdefg/", 8);
		n += 8;
	}
	for (int i = 0; i < 1000; i++) {
		memcpy(name + n, "../", 3);
		n += 3;
	}
	memcpy(name + n, "z", 1);
	n += 1;

	CHECK_INT(im_path_clean(name, n, out, sizeof(out)), 1);
	CHECK_STR(out, "z");
}

static void test_is_clean(void)
{
	CHECK(im_path_is_clean("a", 1));
	CHECK(im_path_is_clean("a/b/c", 5));
	CHECK(im_path_is_clean("...", 3));
	CHECK(!im_path_is_clean("", 0));
	CHECK(!im_path_is_clean("/a", 2));
	CHECK(!im_path_is_clean("a/", 2));
	CHECK(!im_path_is_clean("a//b", 4));
	CHECK(!im_path_is_clean("./a", 3));
	CHECK(!im_path_is_clean("a/..", 4));
	CHECK(!im_path_is_clean("a\0b", 3));
}

static void test_quote(void)
{
	char out[32];

	im_path_quote("plain/name", 10, out, sizeof(out));
	CHECK_STR(out, "plain/name");
	im_path_quote("a\nb\"c", 5, out, sizeof(out));
	CHECK_STR(out, "a\\x0ab\\x22c");
	im_path_quote("0123456789012345678901234567890123456789", 40, out, sizeof(out));
	CHECK_STR(out, "0123456789012345678901234567...");
	CHECK_INT(strlen(out), 31);
}

int main(void)
{
	RUN_TEST(test_clean_table);
	RUN_TEST(test_clean_nul_rejected);
	RUN_TEST(test_clean_uses_length);
	RUN_TEST(test_clean_output_size);
	RUN_TEST(test_clean_long_name_short_result);
	RUN_TEST(test_is_clean);
	RUN_TEST(test_quote);
	return check_exit_status();
}
