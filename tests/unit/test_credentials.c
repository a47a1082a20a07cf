/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of registry/credentials.c and registry/cred_helper.c: config
 * files written to a temporary directory, and credential helpers written
 * there as shell scripts and found through PATH.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/util.h"
#include "registry/credentials.h"

static char dir[PATH_MAX];

static void write_file(const char *name, const char *text, mode_t mode)
{
	char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* Write config.json and return its path (static storage). */
static const char *config(const char *text)
{
	static char path[PATH_MAX + 64];

	write_file("config.json", text, 0600);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	return path;
}

static void test_auth_member_base64(void)
{
	struct im_credentials c;

	/* "alice:s3cr:et" — the password may contain ':' */
	const char *path = config("{\"auths\": {\"127.0.0.1:5000\": "
				  "{\"auth\": \"YWxpY2U6czNjcjpldA==\"}}}");

	CHECK_INT(im_credentials_find("127.0.0.1:5000", path, &c), 1);
	CHECK_STR(c.username, "alice");
	CHECK_STR(c.password, "s3cr:et");
	CHECK(c.identity_token == NULL);
	im_credentials_clear(&c);

	CHECK_INT(im_credentials_find("127.0.0.1:5001", path, &c), 0);
	CHECK(c.username == NULL);
}

static void test_url_keys_and_docker_hub(void)
{
	struct im_credentials c;
	const char *path = config(
		"{\"auths\": {"
		"\"https://index.docker.io/v1/\": {\"auth\": \"aHViOnB3\"},"
		"\"http://registry.example:8443/v2/\": {\"username\": \"u\", \"password\": \"p\"},"
		"\"quay.example/org\": {\"auth\": \"b3JnOnB3\"}}}");

	CHECK_INT(im_credentials_find("docker.io", path, &c), 1);
	CHECK_STR(c.username, "hub");
	CHECK_STR(c.password, "pw");
	im_credentials_clear(&c);

	CHECK_INT(im_credentials_find("registry.example:8443", path, &c), 1);
	CHECK_STR(c.username, "u");
	CHECK_STR(c.password, "p");
	im_credentials_clear(&c);

	/* Namespace keys are not used for the whole host. */
	CHECK_INT(im_credentials_find("quay.example", path, &c), 0);
}

/* Base64 of "NAME:pw", for the table below. */
#define AUTH_HOST "aG9zdDpwdw=="   /* host:pw */
#define AUTH_ORG "b3JnOnB3"        /* org:pw */
#define AUTH_APP "YXBwOnB3"        /* app:pw */

static void check_user(const char *host, const char *repository, const char *path,
		       const char *expected)
{
	struct im_credentials c;

	fprintf(stderr, "  %s/%s\n", host, repository ? repository : "(none)");
	if (!expected) {
		CHECK_INT(im_credentials_find_repository(host, repository, path, &c), 0);
		return;
	}
	CHECK_INT(im_credentials_find_repository(host, repository, path, &c), 1);
	CHECK_STR(c.username, expected);
	im_credentials_clear(&c);
}

static void test_namespace_keys(void)
{
	const char *path = config(
		"{\"auths\": {"
		"\"r.example:5000\": {\"auth\": \"" AUTH_HOST "\"},"
		"\"r.example:5000/org\": {\"auth\": \"" AUTH_ORG "\"},"
		"\"r.example:5000/org/team/app\": {\"auth\": \"" AUTH_APP "\"},"
		"\"ns.example/org\": {\"auth\": \"" AUTH_ORG "\"}}}");

	/* The longest key that covers the repository wins. */
	check_user("r.example:5000", "org/team/app", path, "app");
	check_user("r.example:5000", "org/team/other", path, "org");
	check_user("r.example:5000", "org/app", path, "org");
	check_user("r.example:5000", "org", path, "org");
	check_user("r.example:5000", "other/app", path, "host");
	check_user("r.example:5000", NULL, path, "host");

	/* A key matches whole path components only: "org" does not cover "orgx". */
	check_user("r.example:5000", "orgx/app", path, "host");
	check_user("r.example:5000", "org/team/application", path, "org");

	/* Namespace keys never cover another namespace or the bare host. */
	check_user("ns.example", "org/app", path, "org");
	check_user("ns.example", "other/app", path, NULL);
	check_user("ns.example", NULL, path, NULL);
}

static void test_identity_token(void)
{
	struct im_credentials c;
	const char *path = config("{\"auths\": {\"r.example\": "
				  "{\"auth\": \"dTpw\", \"identitytoken\": \"refresh-me\"}}}");

	CHECK_INT(im_credentials_find("r.example", path, &c), 1);
	CHECK_STR(c.identity_token, "refresh-me");
	CHECK(c.username == NULL);
	im_credentials_clear(&c);
}

static void test_invalid_files(void)
{
	struct im_credentials c;
	char missing[PATH_MAX + 64];

	CHECK_INT(im_credentials_find("r.example",
				      config("{\"auths\": {\"r.example\": {\"auth\": \"***\"}}}"), &c),
		  -EINVAL);
	CHECK_INT(im_credentials_find("r.example",
				      config("{\"auths\": {\"r.example\": {\"auth\": \"bm9jb2xvbg==\"}}}"),
				      &c),
		  -EINVAL);
	CHECK_INT(im_credentials_find("r.example", config("[1, 2]"), &c), -EINVAL);
	CHECK_INT(im_credentials_find("r.example",
				      config("{\"auths\": {\"r.example\": {\"auth\": 7}}}"), &c),
		  -EINVAL);

	/* An explicit file must exist. */
	snprintf(missing, sizeof(missing), "%s/missing.json", dir);
	CHECK_INT(im_credentials_find("r.example", missing, &c), -ENOENT);
}

static void test_default_search_order(void)
{
	char first[PATH_MAX + 64], docker_dir[PATH_MAX + 64];
	struct im_credentials c;

	snprintf(first, sizeof(first), "%s/first.json", dir);
	snprintf(docker_dir, sizeof(docker_dir), "%s/docker", dir);
	mkdir(docker_dir, 0700);
	write_file("first.json", "{\"auths\": {\"a.example\": {\"auth\": \"Zmlyc3Q6MQ==\"}}}", 0600);
	write_file("docker/config.json",
		   "{\"auths\": {\"a.example\": {\"auth\": \"ZG9ja2VyOjI=\"},"
		   "\"b.example\": {\"auth\": \"ZG9ja2VyOjM=\"}}}", 0600);

	setenv("REGISTRY_AUTH_FILE", first, 1);
	setenv("XDG_RUNTIME_DIR", "/nonexistent-imgmount-test", 1);
	setenv("DOCKER_CONFIG", docker_dir, 1);

	/* The first file with an entry wins; later files fill in other hosts. */
	CHECK_INT(im_credentials_find("a.example", NULL, &c), 1);
	CHECK_STR(c.username, "first");
	im_credentials_clear(&c);
	CHECK_INT(im_credentials_find("b.example", NULL, &c), 1);
	CHECK_STR(c.username, "docker");
	CHECK_STR(c.password, "3");
	im_credentials_clear(&c);
	CHECK_INT(im_credentials_find("c.example", NULL, &c), 0);

	unsetenv("REGISTRY_AUTH_FILE");
	unsetenv("XDG_RUNTIME_DIR");
	unsetenv("DOCKER_CONFIG");
}

/* Helpers check the server they are asked about, so a wrong one fails. */
static void write_helpers(void)
{
	write_file("docker-credential-good",
		   "#!/bin/sh\n"
		   "read -r server\n"
		   "[ \"$1\" = get ] || exit 2\n"
		   "case \"$server\" in\n"
		   "127.0.0.1:5000) echo '{\"ServerURL\":\"x\",\"Username\":\"bob\",\"Secret\":\"hunter2\"}' ;;\n"
		   "https://index.docker.io/v1/) echo '{\"Username\":\"<token>\",\"Secret\":\"idtok\"}' ;;\n"
		   "*) echo 'credentials not found in native keychain'; exit 1 ;;\n"
		   "esac\n", 0755);
	write_file("docker-credential-garbage", "#!/bin/sh\necho '{not json'\n", 0755);
	write_file("docker-credential-flood",
		   "#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' x\n", 0755);
}

static void test_credential_helpers(void)
{
	struct im_credentials c;
	const char *path = config("{\"credHelpers\": {\"127.0.0.1:5000\": \"good\", "
				  "\"bad.example\": \"garbage\", \"big.example\": \"flood\", "
				  "\"evil.example\": \"../../bin/sh\", \"gone.example\": \"absent\"},"
				  "\"credsStore\": \"good\"}");

	CHECK_INT(im_credentials_find("127.0.0.1:5000", path, &c), 1);
	CHECK_STR(c.username, "bob");
	CHECK_STR(c.password, "hunter2");
	CHECK_STR(c.source, "docker-credential-good");
	im_credentials_clear(&c);

	/* credsStore covers hosts without a credHelpers entry; Docker Hub is
	 * asked for under its legacy URL. */
	CHECK_INT(im_credentials_find("docker.io", path, &c), 1);
	CHECK_STR(c.identity_token, "idtok");
	CHECK(c.password == NULL);
	im_credentials_clear(&c);

	CHECK_INT(im_credentials_find("other.example", path, &c), 0);
	CHECK_INT(im_credentials_find("bad.example", path, &c), -EIO);
	CHECK_INT(im_credentials_find("big.example", path, &c), -EIO);
	CHECK_INT(im_credentials_find("evil.example", path, &c), -EINVAL);
	CHECK_INT(im_credentials_find("gone.example", path, &c), -ENOENT);
}

int main(void)
{
	char path_env[PATH_MAX * 2];
	const char *old_path = getenv("PATH");

	snprintf(dir, sizeof(dir), "/tmp/imgmount-test-credentials-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	write_helpers();
	snprintf(path_env, sizeof(path_env), "%s:%s", dir, old_path ? old_path : "/usr/bin:/bin");
	setenv("PATH", path_env, 1);

	RUN_TEST(test_auth_member_base64);
	RUN_TEST(test_url_keys_and_docker_hub);
	RUN_TEST(test_namespace_keys);
	RUN_TEST(test_identity_token);
	RUN_TEST(test_invalid_files);
	RUN_TEST(test_default_search_order);
	RUN_TEST(test_credential_helpers);

	if (check_exit_status() == 0) {
		char command[PATH_MAX + 16];

		snprintf(command, sizeof(command), "rm -rf '%s'", dir);
		if (system(command) != 0)
			fprintf(stderr, "removing %s failed\n", dir);
	}
	return check_exit_status();
}
