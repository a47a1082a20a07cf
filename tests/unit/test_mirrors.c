/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of certs.d reading (registry/hosts.c) and of mirror
 * selection and back-off (registry/mirror.c), on directories written
 * under /tmp. No request is sent.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "registry/hosts.h"
#include "registry/registry_i.h"

static char dir[PATH_MAX];

static void write_file(const char *host, const char *name, const char *text)
{
	char path[PATH_MAX + 128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, host);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, host, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static const char *host_of(const struct im_registry *r)
{
	return r ? im_registry_host(r) : NULL;
}

static void test_hosts_toml_mirrors(void)
{
	char expected[PATH_MAX + 128];
	struct im_hosts hosts;

	write_file("reg.example:5000", "hosts.toml",
		   "server = \"https://reg.example:5000\"\n"
		   "[host.\"https://m1.example/\"]\n"
		   "  capabilities = [\"pull\"]\n"
		   "  ca = \"m1-ca.pem\"\n"
		   "  client = \"/etc/m1-client.pem\"\n"
		   "[host.\"http://127.0.0.1:5001/prefix\"]\n"
		   "  skip_verify = true\n"
		   "  override_path = true\n"
		   "  [host.\"http://127.0.0.1:5001/prefix\".header]\n"
		   "    x-ignored = \"yes\"\n");
	write_file("reg.example:5000", "ca.crt", "not parsed here\n");

	CHECK_INT(im_hosts_load(dir, "reg.example:5000", &hosts), 0);
	CHECK_STR(hosts.server, "https://reg.example:5000");
	snprintf(expected, sizeof(expected), "%s/reg.example:5000/ca.crt", dir);
	CHECK_STR(hosts.ca_file, expected);
	CHECK(hosts.client_cert == NULL);
	CHECK_INT(hosts.n_mirrors, 2);
	if (hosts.n_mirrors == 2) {
		CHECK_STR(hosts.mirrors[0].url, "https://m1.example");
		CHECK_INT(hosts.mirrors[0].capabilities, IM_HOST_PULL);
		snprintf(expected, sizeof(expected), "%s/reg.example:5000/m1-ca.pem", dir);
		CHECK_STR(hosts.mirrors[0].ca_file, expected);
		CHECK_STR(hosts.mirrors[0].client_cert, "/etc/m1-client.pem");
		CHECK(!hosts.mirrors[0].skip_verify);

		CHECK_STR(hosts.mirrors[1].url, "http://127.0.0.1:5001/prefix");
		CHECK_INT(hosts.mirrors[1].capabilities, IM_HOST_PULL | IM_HOST_RESOLVE);
		CHECK(hosts.mirrors[1].skip_verify);
		CHECK(hosts.mirrors[1].override_path);
	}
	im_hosts_free(&hosts);
}

static void test_default_dir_and_missing(void)
{
	struct im_hosts hosts;

	/* Without a directory for the host and without _default: nothing. */
	CHECK_INT(im_hosts_load(dir, "none.example", &hosts), 0);
	CHECK_INT(hosts.n_mirrors, 0);
	CHECK(hosts.server == NULL);

	write_file("_default", "hosts.toml", "[host.\"https://any.example\"]\n");
	CHECK_INT(im_hosts_load(dir, "none.example", &hosts), 0);
	CHECK_INT(hosts.n_mirrors, 1);
	im_hosts_free(&hosts);
}

static void test_invalid_hosts_toml(void)
{
	static const char *const texts[] = {
		"[host.\"ftp://m.example\"]\ncapabilities = [\"pull\"]\n",
		"[host.\"https://m.example\"]\ncapabilities = [\"pull\", \"delete\"]\n",
		"[host.\"https://m.example\"]\nskip_verify = \"yes\"\n",
		"server = true\n",
		"server = 5000\n",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct im_hosts hosts;

		write_file("bad.example", "hosts.toml", texts[i]);
		CHECK_INT(im_hosts_load(dir, "bad.example", &hosts), -EINVAL);
		CHECK_INT(hosts.n_mirrors, 0);
	}
}

/* Mirror order, capabilities and back-off on a registry with two mirrors
 * that no request ever reaches. */
static void test_mirror_selection_and_backoff(void)
{
	struct im_registry_options opts = { .tls_verify = true, .certs_dir = dir };
	struct im_registry *r = NULL, *m;
	size_t i = 0;

	write_file("sel.example", "hosts.toml",
		   "[host.\"https://pull-only.example\"]\ncapabilities = [\"pull\"]\n"
		   "[host.\"https://both.example\"]\n");
	CHECK_INT(im_registry_new("sel.example", &opts, &r), 0);
	if (!r)
		return;
	CHECK_INT(r->n_mirrors, 2);
	CHECK_STR(r->api_url, "https://sel.example/v2");

	m = im_mirror_next(r, &i, IM_HOST_RESOLVE);
	CHECK_STR(host_of(m), "both.example");
	CHECK(im_mirror_next(r, &i, IM_HOST_RESOLVE) == NULL);

	i = 0;
	m = im_mirror_next(r, &i, IM_HOST_PULL);
	CHECK_STR(host_of(m), "pull-only.example");
	CHECK_INT(m->max_attempts, 1);

	/* A 404 only falls through; a network error skips the mirror. */
	im_mirror_report(r, 0, -ENOENT);
	i = 0;
	m = im_mirror_next(r, &i, IM_HOST_PULL);
	CHECK_STR(host_of(m), "pull-only.example");

	im_mirror_report(r, 0, -EIO);
	i = 0;
	m = im_mirror_next(r, &i, IM_HOST_PULL);
	CHECK_STR(host_of(m), "both.example");

	im_mirror_report(r, 0, 0);
	i = 0;
	m = im_mirror_next(r, &i, IM_HOST_PULL);
	CHECK_STR(host_of(m), "pull-only.example");
	im_registry_free(r);
}

static void test_override_path(void)
{
	struct im_registry_options opts = { .tls_verify = true, .certs_dir = dir };
	struct im_registry *r = NULL;
	char *url = NULL;
	size_t i = 0;

	write_file("path.example", "hosts.toml",
		   "[host.\"https://m.example/api/\"]\noverride_path = true\n"
		   "[host.\"https://n.example/sub\"]\n");
	CHECK_INT(im_registry_new("path.example", &opts, &r), 0);
	if (!r)
		return;
	CHECK_INT(r->n_mirrors, 2);
	if (r->n_mirrors != 2) {
		im_registry_free(r);
		return;
	}
	CHECK_INT(im_registry_url(im_mirror_next(r, &i, IM_HOST_PULL), "lib/x", "blobs", "d",
				  &url), 0);
	CHECK_STR(url, "https://m.example/api/lib/x/blobs/d");
	free(url);
	CHECK_INT(im_registry_url(im_mirror_next(r, &i, IM_HOST_PULL), "lib/x", "blobs", "d",
				  &url), 0);
	CHECK_STR(url, "https://n.example/sub/v2/lib/x/blobs/d");
	free(url);
	im_registry_free(r);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/imgmount-test-mirrors-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}

	RUN_TEST(test_hosts_toml_mirrors);
	RUN_TEST(test_default_dir_and_missing);
	RUN_TEST(test_invalid_hosts_toml);
	RUN_TEST(test_mirror_selection_and_backoff);
	RUN_TEST(test_override_path);

	if (check_exit_status() == 0) {
		char command[PATH_MAX + 16];

		snprintf(command, sizeof(command), "rm -rf '%s'", dir);
		if (system(command) != 0)
			fprintf(stderr, "removing %s failed\n", dir);
	}
	return check_exit_status();
}
