/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading containerd's certs.d/HOST/ directory (see hosts.h). The keys
 * follow the hosts.toml format of containerd's docs/hosts.md: a top-level
 * "server", and per mirror a [host."URL"] table with
 * capabilities, skip_verify, ca, client and override_path. Unknown keys,
 * such as the "header" table, are ignored with a debug message, as
 * containerd does not reject them either.
 */
#include "registry/hosts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "registry/toml.h"

void im_hosts_free(struct im_hosts *hosts)
{
	free(hosts->server);
	for (size_t i = 0; i < hosts->n_mirrors; i++) {
		struct im_host_config *h = &hosts->mirrors[i];

		free(h->url);
		free(h->ca_file);
		free(h->client_cert);
		free(h->client_key);
	}
	free(hosts->ca_file);
	free(hosts->client_cert);
	free(hosts->client_key);
	*hosts = (struct im_hosts){};
}

/* Find the directory of host: CERTS_DIR/HOST, else CERTS_DIR/_default.
 * Return 1 with out filled, 0 when neither exists. */
static int find_dir(const char *certs_dir, const char *host, char *out, size_t size)
{
	const char *names[] = { host, "_default" };
	struct stat st;

	for (size_t i = 0; i < IM_ARRAY_SIZE(names); i++) {
		if ((size_t)snprintf(out, size, "%s/%s", certs_dir, names[i]) >= size)
			return -ENAMETOOLONG;
		if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
			return 1;
	}
	return 0;
}

/* Set *ret to dir/name when that file exists. */
static int optional_file(const char *dir, const char *name, char **ret)
{
	char *path;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	if (access(path, R_OK) == 0) {
		*ret = path;
		return 0;
	}
	free(path);
	return 0;
}

static int read_text(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	char *text;
	int rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)IM_TOML_MAX_LENGTH)
		return -EFBIG;

	text = malloc((size_t)st.st_size + 1);
	if (!text)
		return -ENOMEM;
	rc = im_read_full(fd, text, (size_t)st.st_size);
	if (rc < 0) {
		free(text);
		return rc;
	}
	text[st.st_size] = '\0';
	*ret = text;
	*ret_len = (size_t)st.st_size;
	return 0;
}

/* Paths in hosts.toml may be relative to its directory. */
static int resolve_path(const char *dir, const char *path, char **ret)
{
	int n = path[0] == '/' ? asprintf(ret, "%s", path) : asprintf(ret, "%s/%s", dir, path);

	return n < 0 ? -ENOMEM : 0;
}

static int check_url(const char *file, unsigned line, const char *url)
{
	if ((strncmp(url, "https://", 8) == 0 && url[8]) ||
	    (strncmp(url, "http://", 7) == 0 && url[7]))
		return 0;
	im_err("invalid host URL \"%.200s\" in \"%s\" line %u: expected http:// or https://",
	       url, file, line);
	return -EINVAL;
}

/* The mirror of the [host."URL"] table, added in file order on first use.
 * URLs are compared without trailing slashes. */
static struct im_host_config *find_or_add_mirror(struct im_hosts *hosts, const char *file,
						 unsigned line, const char *url, int *rc)
{
	_cleanup_free_ char *trimmed = strdup(url);
	struct im_host_config *h;
	size_t len;

	if (!trimmed) {
		*rc = -ENOMEM;
		return NULL;
	}
	len = strlen(trimmed);
	while (len > 0 && trimmed[len - 1] == '/')
		trimmed[--len] = '\0';

	for (size_t i = 0; i < hosts->n_mirrors; i++)
		if (strcmp(hosts->mirrors[i].url, trimmed) == 0)
			return &hosts->mirrors[i];

	*rc = check_url(file, line, trimmed);
	if (*rc < 0)
		return NULL;
	if (hosts->n_mirrors == IM_HOSTS_MAX_MIRRORS) {
		im_warn("\"%s\" line %u: more than %d hosts; \"%.200s\" is ignored", file, line,
			IM_HOSTS_MAX_MIRRORS, url);
		return NULL;
	}

	h = &hosts->mirrors[hosts->n_mirrors++];
	*h = (struct im_host_config){
		.url = im_steal_pointer(&trimmed),
		.capabilities = IM_HOST_PULL | IM_HOST_RESOLVE,
	};
	return h;
}

static int parse_capabilities(const char *file, const struct im_toml_entry *e, unsigned *ret)
{
	*ret = 0;
	for (size_t i = 0; i < e->n_strings; i++) {
		if (strcmp(e->strings[i], "pull") == 0) {
			*ret |= IM_HOST_PULL;
		} else if (strcmp(e->strings[i], "resolve") == 0) {
			*ret |= IM_HOST_RESOLVE;
		} else if (strcmp(e->strings[i], "push") != 0) {
			im_err("invalid capability \"%.40s\" in \"%s\" line %u: expected pull, "
			       "resolve or push", e->strings[i], file, e->line);
			return -EINVAL;
		}
	}
	return 0;
}

/* The first string of a string or an array of strings, or NULL. */
static const char *first_string(const struct im_toml_entry *e)
{
	if (e->type == IM_TOML_STRING)
		return e->string;
	if (e->type == IM_TOML_STRING_ARRAY && e->n_strings > 0)
		return e->strings[0];
	return NULL;
}

static int wrong_type(const char *file, const struct im_toml_entry *e, const char *expected)
{
	im_err("invalid \"%s\" in \"%s\" line %u: expected %s", e->keys[e->n_keys - 1], file,
	       e->line, expected);
	return -EINVAL;
}

static int apply_host_key(const char *dir, const char *file, const struct im_toml_entry *e,
			  struct im_host_config *h)
{
	const char *key = e->keys[2];
	const char *path;

	if (e->n_keys != 3) {
		im_debug("\"%s\" line %u: key \"%s\" is not used", file, e->line, key);
		return 0;
	}
	if (strcmp(key, "capabilities") == 0) {
		if (e->type != IM_TOML_STRING_ARRAY)
			return wrong_type(file, e, "an array of strings");
		return parse_capabilities(file, e, &h->capabilities);
	}
	if (strcmp(key, "skip_verify") == 0 || strcmp(key, "override_path") == 0) {
		if (e->type != IM_TOML_BOOL)
			return wrong_type(file, e, "true or false");
		*(key[0] == 's' ? &h->skip_verify : &h->override_path) = e->boolean;
		return 0;
	}
	if (strcmp(key, "ca") == 0 || strcmp(key, "client") == 0) {
		/* NOTE: only the first CA file or client certificate is used. */
		path = first_string(e);
		if (!path)
			return wrong_type(file, e, "a file name or an array of file names");
		return resolve_path(dir, path, key[0] == 'c' && key[1] == 'a' ? &h->ca_file
									   : &h->client_cert);
	}
	im_debug("\"%s\" line %u: key \"%s\" is not used", file, e->line, key);
	return 0;
}

static int apply_entry(const char *dir, const char *file, const struct im_toml_entry *e,
		       struct im_hosts *hosts)
{
	struct im_host_config *h;
	int rc = 0;

	if (e->n_keys == 1 && strcmp(e->keys[0], "server") == 0) {
		if (e->type != IM_TOML_STRING)
			return wrong_type(file, e, "a URL string");
		rc = check_url(file, e->line, e->string);
		if (rc == 0 && !(hosts->server = strdup(e->string)))
			rc = -ENOMEM;
		return rc;
	}
	if (e->type == IM_TOML_TABLE) {
		/* [host."URL"] alone declares a mirror with the default settings. */
		if (e->n_keys == 2 && strcmp(e->keys[0], "host") == 0)
			return find_or_add_mirror(hosts, file, e->line, e->keys[1], &rc) ? 0 : rc;
		return 0;
	}
	if (e->n_keys < 3 || strcmp(e->keys[0], "host") != 0) {
		im_debug("\"%s\" line %u: key \"%s\" is not used", file, e->line, e->keys[0]);
		return 0;
	}

	h = find_or_add_mirror(hosts, file, e->line, e->keys[1], &rc);
	if (!h)
		return rc;
	return apply_host_key(dir, file, e, h);
}

static int load_hosts_toml(const char *dir, struct im_hosts *hosts)
{
	_cleanup_free_ char *file = NULL;
	_cleanup_free_ char *text = NULL;
	struct im_toml doc;
	char error[256];
	size_t len = 0;
	int rc;

	if (asprintf(&file, "%s/hosts.toml", dir) < 0)
		return -ENOMEM;
	rc = read_text(file, &text, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return im_log_errno(rc, "reading \"%s\" failed", file);

	rc = im_toml_parse(text, len, &doc, error, sizeof(error));
	if (rc < 0) {
		im_err("invalid \"%s\": %s; fix the file or remove it", file, error);
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	for (size_t i = 0; i < doc.n_entries && rc == 0; i++)
		rc = apply_entry(dir, file, &doc.entries[i], hosts);
	im_toml_free(&doc);
	return rc;
}

int im_hosts_load(const char *certs_dir, const char *host, struct im_hosts *ret)
{
	char dir[PATH_MAX];
	int rc;

	*ret = (struct im_hosts){};
	rc = find_dir(certs_dir, host, dir, sizeof(dir));
	if (rc <= 0)
		return rc;

	rc = optional_file(dir, "ca.crt", &ret->ca_file);
	if (rc == 0)
		rc = optional_file(dir, "client.cert", &ret->client_cert);
	if (rc == 0)
		rc = optional_file(dir, "client.key", &ret->client_key);
	if (rc == 0)
		rc = load_hosts_toml(dir, ret);
	if (rc < 0)
		im_hosts_free(ret);
	else
		im_debug("registry \"%s\": %zu mirrors from \"%s\"", host, ret->n_mirrors, dir);
	return rc;
}
