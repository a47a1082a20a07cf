/* SPDX-License-Identifier: Apache-2.0 */
/*
 * WWW-Authenticate parsing: the Bearer challenge real registries send,
 * quoted strings with commas and escapes, several challenges in one value,
 * token68 schemes, and malformed or oversized values.
 */
#include <errno.h>
#include <string.h>

#include "registry/auth.h"
#include "tests/unit/check.h"

static void test_bearer_challenge(void)
{
	struct im_auth_challenge c;
	static const char text[] =
		"Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\","
		"scope=\"repository:samalba/my-app:pull,push\"";

	CHECK_INT(im_auth_parse_challenge(text, &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_BEARER);
	CHECK_STR(c.realm, "https://auth.example.com/token");
	CHECK_STR(c.service, "registry.example.com");
	CHECK_STR(c.scope, "repository:samalba/my-app:pull,push");
}

static void test_case_and_spacing(void)
{
	struct im_auth_challenge c;

	CHECK_INT(im_auth_parse_challenge("bearer  Realm = \"r\" ,  SERVICE=s", &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_BEARER);
	CHECK_STR(c.realm, "r");
	CHECK_STR(c.service, "s");
	CHECK_STR(c.scope, "");
}

static void test_escapes(void)
{
	struct im_auth_challenge c;

	CHECK_INT(im_auth_parse_challenge("Bearer realm=\"a\\\"b\\\\c,d\",error=\"x, y\"", &c), 0);
	CHECK_STR(c.realm, "a\"b\\c,d");
}

static void test_basic_challenge(void)
{
	struct im_auth_challenge c;

	CHECK_INT(im_auth_parse_challenge("Basic realm=\"Registry Realm\"", &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_BASIC);
	CHECK_STR(c.realm, "Registry Realm");

	CHECK_INT(im_auth_parse_challenge("Basic", &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_BASIC);
}

static void test_several_challenges(void)
{
	struct im_auth_challenge c;

	/* Bearer wins over Basic in either order. */
	CHECK_INT(im_auth_parse_challenge("Basic realm=\"b\", Bearer realm=\"t\",service=\"s\"", &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_BEARER);
	CHECK_STR(c.realm, "t");
	CHECK_STR(c.service, "s");

	CHECK_INT(im_auth_parse_challenge("Bearer realm=\"t\", Basic realm=\"b\"", &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_BEARER);
	CHECK_STR(c.realm, "t");

	/* Unknown schemes, with token68 or parameters, are skipped. */
	CHECK_INT(im_auth_parse_challenge("Negotiate abc+/x==, Basic realm=\"b\"", &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_BASIC);
	CHECK_STR(c.realm, "b");

	CHECK_INT(im_auth_parse_challenge("Digest realm=\"d\", nonce=\"n\", Basic realm=\"b\"", &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_BASIC);
	CHECK_STR(c.realm, "b");

	CHECK_INT(im_auth_parse_challenge("Negotiate", &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_NONE);
	CHECK_INT(im_auth_parse_challenge("", &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_NONE);
	CHECK_INT(im_auth_parse_challenge(NULL, &c), 0);
	CHECK_INT(c.scheme, IM_AUTH_NONE);
}

static void test_malformed(void)
{
	static const char *const cases[] = {
		"Bearer realm=\"unterminated",
		"Bearer realm=\"a\" service=\"b\"",   /* missing comma */
		"Bearer realm=\"a\\",
		"Bearer=x",
		"\"Bearer\"",
		"Bearer realm=\"a\x01\"",
	};
	struct im_auth_challenge c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fprintf(stderr, "  case \"%s\"\n", cases[i]);
		CHECK_INT(im_auth_parse_challenge(cases[i], &c), -EBADMSG);
		CHECK_INT(c.scheme, IM_AUTH_NONE);
	}
}

static void test_bounds(void)
{
	static char text[IM_AUTH_CHALLENGE_MAX_LENGTH + 64];
	struct im_auth_challenge c;
	size_t n;

	/* A realm that does not fit its buffer. */
	n = (size_t)sprintf(text, "Bearer realm=\"");
	memset(text + n, 'a', sizeof(c.realm));
	n += sizeof(c.realm);
	strcpy(text + n, "\"");
	CHECK_INT(im_auth_parse_challenge(text, &c), -EBADMSG);

	/* A value longer than the header limit. */
	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	memcpy(text, "Bearer realm=", 13);
	CHECK_INT(im_auth_parse_challenge(text, &c), -EBADMSG);

	/* Too many parameters. */
	n = (size_t)sprintf(text, "Bearer realm=r");
	for (int i = 0; i < 100; i++)
		n += (size_t)sprintf(text + n, ",p%d=v", i);
	CHECK_INT(im_auth_parse_challenge(text, &c), -EBADMSG);

	/* A realm that just fits. */
	n = (size_t)sprintf(text, "Bearer realm=\"");
	memset(text + n, 'b', sizeof(c.realm) - 1);
	n += sizeof(c.realm) - 1;
	strcpy(text + n, "\"");
	CHECK_INT(im_auth_parse_challenge(text, &c), 0);
	CHECK_INT(strlen(c.realm), sizeof(c.realm) - 1);
}

int main(void)
{
	RUN_TEST(test_bearer_challenge);
	RUN_TEST(test_case_and_spacing);
	RUN_TEST(test_escapes);
	RUN_TEST(test_basic_challenge);
	RUN_TEST(test_several_challenges);
	RUN_TEST(test_malformed);
	RUN_TEST(test_bounds);
	return check_exit_status();
}
