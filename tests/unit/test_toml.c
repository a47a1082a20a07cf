/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the TOML subset reader (registry/toml.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "registry/toml.h"

static int parse(const char *text, struct im_toml *doc, char *error)
{
	return im_toml_parse(text, strlen(text), doc, error, 256);
}

static void test_hosts_toml_shape(void)
{
	static const char text[] =
		"# mirror first\r\n"
		"server = \"https://registry-1.docker.io\"  # origin\n"
		"\n"
		"[host.\"https://mirror.example:5000\"]\n"
		"  capabilities = [\"pull\", \"resolve\",]\n"
		"  skip_verify = true\n"
		"  ca = 'C:\\certs\\ca.pem'\n"
		"[ host . 'http://127.0.0.1:5001' ]\n"
		"  capabilities = [\n"
		"    \"pull\",  # only blobs\n"
		"  ]\n"
		"  override_path = false\n";
	const char *const host[] = { "host", "https://mirror.example:5000" };
	struct im_toml doc;
	char error[256];

	CHECK_INT(parse(text, &doc, error), 0);
	CHECK_INT(doc.n_entries, 8);
	if (doc.n_entries != 8)
		return;

	CHECK_INT(doc.entries[0].n_keys, 1);
	CHECK_STR(doc.entries[0].keys[0], "server");
	CHECK_STR(doc.entries[0].string, "https://registry-1.docker.io");

	/* Table headers are entries too, in file order. */
	CHECK_INT(doc.entries[1].type, IM_TOML_TABLE);
	CHECK_INT(doc.entries[1].n_keys, 2);
	CHECK_INT(doc.entries[1].line, 4);
	CHECK(im_toml_entry_has_prefix(&doc.entries[1], host, 2));

	CHECK(im_toml_entry_has_prefix(&doc.entries[2], host, 2));
	CHECK_STR(doc.entries[2].keys[2], "capabilities");
	CHECK_INT(doc.entries[2].type, IM_TOML_STRING_ARRAY);
	CHECK_INT(doc.entries[2].n_strings, 2);
	CHECK_STR(doc.entries[2].strings[1], "resolve");

	CHECK_INT(doc.entries[3].type, IM_TOML_BOOL);
	CHECK(doc.entries[3].boolean);
	CHECK_STR(doc.entries[4].string, "C:\\certs\\ca.pem");
	CHECK_INT(doc.entries[4].line, 7);

	CHECK_INT(doc.entries[5].type, IM_TOML_TABLE);
	CHECK_STR(doc.entries[6].keys[1], "http://127.0.0.1:5001");
	CHECK_INT(doc.entries[6].n_strings, 1);
	CHECK_INT(doc.entries[7].type, IM_TOML_BOOL);
	CHECK(!doc.entries[7].boolean);
	CHECK_INT(doc.entries[7].line, 12);
	CHECK(!im_toml_entry_has_prefix(&doc.entries[7], host, 2));
	im_toml_free(&doc);
}

static void test_escapes_and_dotted_keys(void)
{
	struct im_toml doc;
	char error[256];

	CHECK_INT(parse("a.\"b.c\".d = \"tab\\tq\\\"\\u00e9\\U0001F600\"\n", &doc, error), 0);
	CHECK_INT(doc.n_entries, 1);
	if (doc.n_entries == 1) {
		CHECK_INT(doc.entries[0].n_keys, 3);
		CHECK_STR(doc.entries[0].keys[1], "b.c");
		CHECK_STR(doc.entries[0].string, "tab\tq\"\xc3\xa9\xf0\x9f\x98\x80");
	}
	im_toml_free(&doc);

	CHECK_INT(parse("empty = \"\"\nlast = true", &doc, error), 0);
	CHECK_INT(doc.n_entries, 2);
	im_toml_free(&doc);

	/* An empty table is still seen. */
	CHECK_INT(parse("[host.\"https://m.example\"]\n", &doc, error), 0);
	CHECK_INT(doc.n_entries, 1);
	if (doc.n_entries == 1)
		CHECK_INT(doc.entries[0].type, IM_TOML_TABLE);
	im_toml_free(&doc);
}

/* Each case must fail, and the message must name its line. */
static void test_rejected_input(void)
{
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
		{ "port = 5000\n", "line 1: unsupported value" },
		{ "a = \"x\"\na = \"y\"\n", "line 2: key \"a\" is defined twice" },
		{ "a = \"x\"\n[a]\nb = true\n", "line 3: key \"b\" is defined twice or conflicts" },
		{ "[t]\n[t]\n", "line 2: table \"t\" is defined twice" },
		{ "[[hosts]]\n", "line 1: arrays of tables are not supported" },
		{ "a = \"\"\"x\"\"\"\n", "line 1: multi-line strings are not supported" },
		{ "a = [[\"x\"]]\n", "line 1: nested arrays are not supported" },
		{ "a = [1]\n", "line 1: only arrays of strings are supported" },
		{ "a = {b = 1}\n", "line 1: inline tables are not supported" },
		{ "a = \"open\n", "line 1: unterminated string" },
		{ "a = \"\\q\"\n", "line 1: invalid escape" },
		{ "a = \"\\u0000\"\n", "line 1: invalid \\u escape" },
		{ "a = \"\\uD800\"\n", "line 1: invalid \\u escape" },
		{ "a = \"x\" b\n", "line 1: unexpected character 'b'" },
		{ "a \"x\"\n", "line 1: expected '=' after key \"a\"" },
		{ "= 1\n", "line 1: expected a key" },
		{ "[a\n", "line 1: expected ']'" },
		{ "a = truex\n", "line 1: unsupported value" },
		{ "a = [\"x\" \"y\"]\n", "line 1: expected ',' or ']'" },
		{ "\n\na = \"\x01\"\n", "line 3: control character" },
		{ "a.b.c.d.e.f.g.h.i = true\n", "line 1: key has more than 8 parts" },
	};
	struct im_toml doc;
	char error[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(cases[i].text, &doc, error);

		CHECK(rc == -EBADMSG || rc == -EFBIG);
		CHECK_INT(doc.n_entries, 0);
		if (strncmp(error, cases[i].error, strlen(cases[i].error)) != 0) {
			fprintf(stderr, "case %zu: error \"%s\", expected \"%s...\"\n", i, error,
				cases[i].error);
			check_failures++;
		}
	}

	/* A NUL byte inside the given length is rejected, not cut off. */
	CHECK_INT(im_toml_parse("a = \"x\"\0b", 9, &doc, error, sizeof(error)), -EBADMSG);
}

static void test_limits(void)
{
	size_t size = IM_TOML_MAX_ENTRIES * 16 + 64;
	char *text = malloc(size);
	struct im_toml doc;
	char error[256];
	size_t len = 0;

	if (!text)
		return;
	for (int i = 0; i <= IM_TOML_MAX_ENTRIES; i++)
		len += (size_t)snprintf(text + len, size - len, "k%d = true\n", i);
	CHECK_INT(im_toml_parse(text, len, &doc, error, sizeof(error)), -EFBIG);
	CHECK(strstr(error, "more than 1024 keys and tables") != NULL);

	CHECK_INT(im_toml_parse(text, IM_TOML_MAX_LENGTH + 1, &doc, error, sizeof(error)), -EFBIG);
	free(text);
}

int main(void)
{
	RUN_TEST(test_hosts_toml_shape);
	RUN_TEST(test_escapes_and_dotted_keys);
	RUN_TEST(test_rejected_input);
	RUN_TEST(test_limits);
	return check_exit_status();
}
