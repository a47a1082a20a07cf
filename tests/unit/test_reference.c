/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image reference parsing and formatting: a table of valid references with
 * the fields they must produce, a table of invalid ones, and the loopback
 * host check that decides where plain HTTP tokens may go.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "registry/reference.h"
#include "tests/unit/check.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct valid_case {
	const char *text;
	const char *registry;
	const char *repository;
	const char *tag;        /* NULL: no tag */
	bool has_digest;
	const char *formatted;
};

static const struct valid_case valid_cases[] = {
	{ "debian", "docker.io", "library/debian", "latest", false,
	  "docker.io/library/debian:latest" },
	{ "debian:12", "docker.io", "library/debian", "12", false,
	  "docker.io/library/debian:12" },
	{ "library/debian", "docker.io", "library/debian", "latest", false,
	  "docker.io/library/debian:latest" },
	{ "docker.io/debian", "docker.io", "library/debian", "latest", false,
	  "docker.io/library/debian:latest" },
	{ "index.docker.io/user/app:v1", "docker.io", "user/app", "v1", false,
	  "docker.io/user/app:v1" },
	{ "user/app", "docker.io", "user/app", "latest", false,
	  "docker.io/user/app:latest" },
	{ "localhost/app", "localhost", "app", "latest", false,
	  "localhost/app:latest" },
	{ "localhost:5000/app:1.0", "localhost:5000", "app", "1.0", false,
	  "localhost:5000/app:1.0" },
	{ "127.0.0.1:5000/a/b/c:_x", "127.0.0.1:5000", "a/b/c", "_x", false,
	  "127.0.0.1:5000/a/b/c:_x" },
	{ "[::1]:5000/app", "[::1]:5000", "app", "latest", false,
	  "[::1]:5000/app:latest" },
	{ "quay.io/org/app@sha256:" HEX64, "quay.io", "org/app", NULL, true,
	  "quay.io/org/app@sha256:" HEX64 },
	{ "quay.io/org/app:v2@sha256:" HEX64, "quay.io", "org/app", "v2", true,
	  "quay.io/org/app@sha256:" HEX64 },
	{ "ghcr.io/a.b_c__d-e---f/g:Tag.With-All_9", "ghcr.io", "a.b_c__d-e---f/g",
	  "Tag.With-All_9", false, "ghcr.io/a.b_c__d-e---f/g:Tag.With-All_9" },
	{ "my-host.example.com:443/x", "my-host.example.com:443", "x", "latest", false,
	  "my-host.example.com:443/x:latest" },
	{ "docker.io/library/debian:12@sha256:" HEX64, "docker.io", "library/debian", "12",
	  true, "docker.io/library/debian@sha256:" HEX64 },
	{ "index.docker.io/debian", "docker.io", "library/debian", "latest", false,
	  "docker.io/library/debian:latest" },
	/* Host names are case-insensitive; only the repository must be lowercase. */
	{ "Registry.Example.com:5000/app", "Registry.Example.com:5000", "app", "latest", false,
	  "Registry.Example.com:5000/app:latest" },
	{ "localhost:5000/a:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "localhost:5000", "a",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false,
	  "localhost:5000/a:"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	/* One component without "." or ":" is a repository, not a host. */
	{ "foo/bar", "docker.io", "foo/bar", "latest", false, "docker.io/foo/bar:latest" },
	/* An upper case letter makes the first component a host, as in Docker. */
	{ "Foo/bar", "Foo", "bar", "latest", false, "Foo/bar:latest" },
	{ "MyRegistry/org/app:1", "MyRegistry", "org/app", "1", false, "MyRegistry/org/app:1" },
};

static void test_valid_references(void)
{
	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		const struct valid_case *c = &valid_cases[i];
		struct im_reference ref;
		char *formatted;
		int r = im_reference_parse(c->text, &ref);

		fprintf(stderr, "  case \"%s\"\n", c->text);
		CHECK_INT(r, 0);
		if (r < 0)
			continue;

		CHECK_STR(ref.registry, c->registry);
		CHECK_STR(ref.repository, c->repository);
		if (c->tag)
			CHECK_STR(ref.tag, c->tag);
		else
			CHECK(ref.tag == NULL);
		CHECK_INT(ref.has_digest, c->has_digest);

		formatted = im_reference_format(&ref);
		CHECK_STR(formatted, c->formatted);
		free(formatted);
		im_reference_clear(&ref);
	}
}

static void test_digest_bytes(void)
{
	struct im_reference ref;

	CHECK_INT(im_reference_parse("x.io/a@sha256:" HEX64, &ref), 0);
	CHECK_INT(ref.digest.bytes[0], 0x01);
	CHECK_INT(ref.digest.bytes[1], 0x23);
	CHECK_INT(ref.digest.bytes[31], 0xef);
	im_reference_clear(&ref);
}

struct invalid_case {
	const char *text;
	const char *message;    /* expected in the logged error */
};

static const struct invalid_case invalid_cases[] = {
	{ "", "empty reference" },
	{ "http://x.io/app", "a reference has no scheme, remove \"http://\"" },
	{ "https://localhost:5000/app:1", "remove \"https://\"" },
	{ "docker://debian", "remove \"docker://\"" },
	{ "Foo/Bar", "repository component \"Bar\" must be lowercase" },
	{ "Foo_x/bar", "registry host \"Foo_x\" is not a valid host name" },
	{ "Debian", "repository component \"Debian\" must be lowercase" },
	{ "debian/Sid", "repository component \"Sid\" must be lowercase" },
	{ "x.io/App:1", "repository component \"App\" must be lowercase" },
	{ "localhost:5000/", "missing repository name" },
	{ "localhost:5000//app", "repository component \"\" is empty" },
	{ "app/", "repository component \"\" is empty" },
	{ "/app", "repository component \"\" is empty" },
	{ "-app", "repository component \"-app\" must be runs of [a-z0-9]" },
	{ "app-", "repository component \"app-\" ends with a separator" },
	{ "a...b", "repository component \"a...b\" must be runs" },
	{ "a___b", "repository component \"a___b\" must be runs" },
	{ "a b", "repository component \"a b\" must be runs" },
	{ "a/b:", "empty tag after ':'" },
	{ "a:-tag", "tag \"-tag\" must start with a letter, a digit or '_'" },
	{ "a:.tag", "tag \".tag\" must start" },
	/* "a:ta" contains ':', so it is read as a host with port "ta". */
	{ "a:ta/g", "registry port \"ta\" is not a number" },
	{ "a:t+g", "tag \"t+g\" contains a character outside [A-Za-z0-9_.-]" },
	{ "a@sha512:" HEX64, "digest \"sha512:" HEX64 "\" is not sha256" },
	{ "a@sha256:0123", "digest \"sha256:0123\" is not \"sha256:\" and 64 lowercase hex" },
	{ "a@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	  "digest \"sha256:0123456789ABCDEF" },
	{ "a@sha256:" HEX64 "00", "is not \"sha256:\" and 64 lowercase hex" },
	{ "a@", "digest \"\" is not sha256" },
	{ "@sha256:" HEX64, "missing repository name" },
	{ "a:1@sha256:" HEX64 "@sha256:" HEX64, "digest \"sha256:" HEX64 "@sha256:" },
	{ "localhost:0/app", "registry port \"0\" is not a number from 1 to 65535" },
	{ "localhost:65536/app", "registry port \"65536\"" },
	{ "localhost:5x/app", "registry port \"5x\"" },
	{ "localhost:/app", "registry port \"\"" },
	{ "bad_host.io/app", "registry host \"bad_host.io\" is not a valid host name" },
	{ "-bad.io/app", "registry host \"-bad.io\" is not a valid host name" },
	{ "x..io/app", "registry host \"x..io\" is not a valid host name" },
	{ "[::1/app", "registry host \"[::1\" has an unbalanced '['" },
	{ "[::1]x/app", "has an unbalanced '[' or text after ']'" },
	{ "[nothex]:5000/app", "registry host \"[nothex]\" is not an IPv6 address" },
	{ "x.io/a:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "is longer than 128 characters" },
};

/*
 * Parse text with stderr sent to a temporary file, and return the logged
 * output in a malloc'd string (NULL if capturing failed).
 */
static char *parse_capturing_log(const char *text, struct im_reference *ref, int *ret)
{
	FILE *log = tmpfile();
	int saved = dup(STDERR_FILENO);
	char *output = NULL;
	long size;

	if (!log || saved < 0) {
		if (log)
			fclose(log);
		*ret = im_reference_parse(text, ref);
		return NULL;
	}

	fflush(stderr);
	dup2(fileno(log), STDERR_FILENO);
	*ret = im_reference_parse(text, ref);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	size = ftell(log);
	output = calloc(1, size > 0 ? (size_t)size + 1 : 1);
	rewind(log);
	if (output && size > 0 && fread(output, 1, (size_t)size, log) != (size_t)size) {
		free(output);
		output = NULL;
	}
	fclose(log);
	return output;
}

static void test_invalid_references(void)
{
	for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
		const struct invalid_case *c = &invalid_cases[i];
		struct im_reference ref = {};
		int r;
		char *message = parse_capturing_log(c->text, &ref, &r);

		fprintf(stderr, "  case \"%s\"\n", c->text);
		CHECK_INT(r, -EINVAL);
		CHECK(ref.registry == NULL);
		CHECK(message != NULL);
		if (!message)
			continue;

		if (!strstr(message, c->message)) {
			/* Two calls, because gcc 12 with ASan reports c->message as a
			 * NULL "%s" argument (-Wformat-overflow) in one combined call. */
			fprintf(stderr, "    logged: %s", message);
			fprintf(stderr, "    expected it to contain: %s\n", c->message);
		}
		CHECK(strstr(message, c->message) != NULL);
		free(message);
	}
}

static void test_long_repository(void)
{
	char text[300];
	struct im_reference ref;
	char *message;
	int r;

	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	message = parse_capturing_log(text, &ref, &r);
	CHECK_INT(r, -EINVAL);
	CHECK(message != NULL);
	CHECK(message == NULL || strstr(message, "is longer than 255 characters") != NULL);
	free(message);

	text[250] = '\0';
	CHECK_INT(im_reference_parse(text, &ref), 0);
	im_reference_clear(&ref);
}

static void test_loopback_hosts(void)
{
	CHECK(im_registry_host_is_loopback("localhost"));
	CHECK(im_registry_host_is_loopback("localhost:5000"));
	CHECK(im_registry_host_is_loopback("127.0.0.1"));
	CHECK(im_registry_host_is_loopback("127.1.2.3:80"));
	CHECK(im_registry_host_is_loopback("[::1]:5000"));
	CHECK(im_registry_host_is_loopback("[::1]"));
	CHECK(im_registry_host_is_loopback("::1"));

	CHECK(!im_registry_host_is_loopback("128.0.0.1"));
	CHECK(!im_registry_host_is_loopback("10.0.0.1:5000"));
	CHECK(!im_registry_host_is_loopback("localhost.example.com"));
	CHECK(!im_registry_host_is_loopback("127.0.0.1.example.com"));
	CHECK(!im_registry_host_is_loopback("[::2]:5000"));
	CHECK(!im_registry_host_is_loopback("localhost:99999"));
	CHECK(!im_registry_host_is_loopback(""));
	CHECK(!im_registry_host_is_loopback(NULL));
}

int main(void)
{
	/* Errors are logged; test_invalid_references captures and checks them. */
	im_log_set_level(IM_LOG_ERR);

	RUN_TEST(test_valid_references);
	RUN_TEST(test_digest_bytes);
	RUN_TEST(test_invalid_references);
	RUN_TEST(test_long_repository);
	RUN_TEST(test_loopback_hosts);
	return check_exit_status();
}
