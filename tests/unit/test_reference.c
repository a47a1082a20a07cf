/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image reference parsing and formatting: a table of valid references with
 * the fields they must produce, a table of invalid ones, and the loopback
 * host check that decides where plain HTTP tokens may go.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	/* One component without "." or ":" is a repository, not a host. */
	{ "foo/bar", "docker.io", "foo/bar", "latest", false, "docker.io/foo/bar:latest" },
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

static const char *const invalid_cases[] = {
	"",
	"Foo/bar",                       /* uppercase repository */
	"debian/Sid",
	"localhost:5000/",               /* empty repository */
	"localhost:5000//app",           /* empty component */
	"app/",
	"-app",                          /* leading separator */
	"app-",                          /* trailing separator */
	"a...b",                         /* "..": not a separator */
	"a___b",                         /* "___" */
	"a/b:",                          /* empty tag */
	"a:-tag",                        /* tag starts with '-' */
	"a:.tag",
	"a:ta/g",
	"a:t@g",
	"a@sha512:" HEX64,               /* other algorithms */
	"a@sha256:" "0123",              /* short digest */
	"a@sha256:" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	"a@",
	"localhost:0/app",               /* port out of range */
	"localhost:65536/app",
	"localhost:5x/app",
	"bad_host.io/app",               /* "_" in a host name */
	"-bad.io/app",
	"[::1/app",                      /* unbalanced bracket */
	"[nothex]:5000/app",
	"a b",
	"x.io/a:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

static void test_invalid_references(void)
{
	for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
		struct im_reference ref = {};
		int r = im_reference_parse(invalid_cases[i], &ref);

		fprintf(stderr, "  case \"%s\"\n", invalid_cases[i]);
		CHECK_INT(r, -EINVAL);
		CHECK(ref.registry == NULL);
	}
}

static void test_long_repository(void)
{
	char text[300];
	struct im_reference ref;

	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	CHECK_INT(im_reference_parse(text, &ref), -EINVAL);

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
	/* The invalid cases log one error each; keep the output to failures. */
	im_log_set_level(IM_LOG_ERR - 1);

	RUN_TEST(test_valid_references);
	RUN_TEST(test_digest_bytes);
	RUN_TEST(test_invalid_references);
	RUN_TEST(test_long_repository);
	RUN_TEST(test_loopback_hosts);
	return check_exit_status();
}
