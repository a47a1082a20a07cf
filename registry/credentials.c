/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry credentials from Docker's config.json and the containers
 * auth.json (same format): the files are searched in the order that
 * Podman and skopeo use, and the first with an entry for the host wins.
 * The files are untrusted input: they are read up to 1 MiB, and every
 * member is type-checked.
 */
#include "registry/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "registry/json.h"

#define CONFIG_FILE_MAX (1u << 20)
#define KEY_MAX 512
/* The key `docker login` writes for Docker Hub, and the server name its
 * credential helpers are asked about. */
#define DOCKER_HUB_KEY "https://index.docker.io/v1/"

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void im_credentials_clear(struct im_credentials *c)
{
	wipe_free(c->username);
	wipe_free(c->password);
	wipe_free(c->identity_token);
	free(c->source);
	*c = (struct im_credentials){};
}

static bool is_docker_hub(const char *host)
{
	return strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0 ||
	       strcmp(host, "registry-1.docker.io") == 0;
}

/*
 * Whether a key of "auths" or "credHelpers" names host. Keys are "host",
 * "host:port" or a URL such as "https://index.docker.io/v1/", whose path is
 * ignored. A key with a path but no scheme ("quay.io/org", which
 * containers auth.json allows) names one namespace only: find_auths_entry()
 * matches those.
 */
static bool key_matches(const char *key, const char *host)
{
	char name[KEY_MAX];
	size_t len;

	if (strncmp(key, "https://", 8) == 0)
		key += 8;
	else if (strncmp(key, "http://", 7) == 0)
		key += 7;
	else if (strchr(key, '/'))
		return false;

	len = strcspn(key, "/");
	if (len == 0 || len >= sizeof(name))
		return false;
	memcpy(name, key, len);
	name[len] = '\0';

	if (strcasecmp(name, host) == 0)
		return true;
	return is_docker_hub(host) && is_docker_hub(name);
}

static struct json_object *find_member(struct json_object *map, const char *host)
{
	struct json_object *value;

	if (!map || !json_object_is_type(map, json_type_object))
		return NULL;
	if (json_object_object_get_ex(map, host, &value))
		return value;
	json_object_object_foreach(map, key, member) {
		if (key_matches(key, host))
			return member;
	}
	return NULL;
}

/*
 * Find the "auths" entry for repository on host, as Podman and skopeo do
 * (containers-auth.json(5)). A key "host/NAMESPACE" names every repository
 * under NAMESPACE. Keys are tried from "host/org/app" down to "host/org"
 * and then the host's own key, so the longest match wins.
 */
static struct json_object *find_auths_entry(struct json_object *auths, const char *host,
					    const char *repository)
{
	_cleanup_free_ char *key = NULL;
	struct json_object *value;
	size_t len;

	if (!auths || !json_object_is_type(auths, json_type_object))
		return NULL;
	if (repository && repository[0] && asprintf(&key, "%s/%s", host, repository) < 0)
		key = NULL;

	/* Drop the last path component after each miss, down to "host/X". */
	len = key ? strlen(key) : 0;
	while (key && len > strlen(host) + 1) {
		key[len] = '\0';
		if (json_object_object_get_ex(auths, key, &value))
			return value;
		while (len > strlen(host) && key[len - 1] != '/')
			len--;
		len--;
	}
	return find_member(auths, host);
}

static int base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode standard base64 (RFC 4648 section 4, padding optional) into a
 * NUL-terminated malloc'd string. */
static int base64_decode(const char *text, char **ret)
{
	size_t len = strlen(text);
	uint32_t bits = 0;
	unsigned n_bits = 0;
	size_t out_len = 0;
	char *out;

	while (len > 0 && text[len - 1] == '=')
		len--;
	/* Zeroed, so that wipe_free() finds a terminator on every path. */
	out = calloc(1, len * 3 / 4 + 1);
	if (!out)
		return -ENOMEM;

	for (size_t i = 0; i < len; i++) {
		int v = base64_value(text[i]);

		if (v < 0) {
			wipe_free(out);
			return -EBADMSG;
		}
		bits = (bits << 6) | (uint32_t)v;
		n_bits += 6;
		if (n_bits >= 8) {
			n_bits -= 8;
			out[out_len++] = (char)((bits >> n_bits) & 0xff);
		}
	}
	out[out_len] = '\0';
	if (strlen(out) != out_len) {
		wipe_free(out);
		return -EBADMSG; /* a NUL byte inside */
	}
	*ret = out;
	return 0;
}

/* "auth" is base64 of "user:password". */
static int parse_auth_member(const char *path, const char *auth, struct im_credentials *ret)
{
	char *decoded = NULL;
	char *colon;

	if (base64_decode(auth, &decoded) < 0 || !(colon = strchr(decoded, ':'))) {
		wipe_free(decoded);
		im_err("invalid \"auth\" value in \"%s\": expected base64 of USER:PASSWORD", path);
		return -EINVAL;
	}
	*colon = '\0';
	ret->username = strdup(decoded);
	ret->password = strdup(colon + 1);
	*colon = ':';
	wipe_free(decoded);
	return ret->username && ret->password ? 1 : -ENOMEM;
}

/* Read an "auths" entry. Return 1 with credentials, 0 when it has none. */
static int parse_auths_entry(const char *path, struct json_object *entry,
			     struct im_credentials *ret)
{
	const char *auth = NULL, *user = NULL, *password = NULL, *identity = NULL;

	if (!json_object_is_type(entry, json_type_object) ||
	    im_json_get_string(entry, "auth", &auth) < 0 ||
	    im_json_get_string(entry, "username", &user) < 0 ||
	    im_json_get_string(entry, "password", &password) < 0 ||
	    im_json_get_string(entry, "identitytoken", &identity) < 0) {
		im_err("invalid \"auths\" entry in \"%s\": expected an object of strings", path);
		return -EINVAL;
	}

	if (identity && identity[0]) {
		ret->identity_token = strdup(identity);
		return ret->identity_token ? 1 : -ENOMEM;
	}
	if (auth && auth[0])
		return parse_auth_member(path, auth, ret);
	if (user && user[0] && password) {
		ret->username = strdup(user);
		ret->password = strdup(password);
		return ret->username && ret->password ? 1 : -ENOMEM;
	}
	return 0;
}

static int read_config(const char *path, bool required, struct json_object **ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *data = NULL;
	struct stat st;
	int rc;

	*ret = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno == ENOENT && !required)
		return 0;
	if (fd < 0)
		return im_log_errno(-errno, "opening credentials file \"%s\" failed", path);
	if (fstat(fd, &st) < 0)
		return im_log_errno(-errno, "reading credentials file \"%s\" failed", path);
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)CONFIG_FILE_MAX) {
		im_err("credentials file \"%s\" is not a regular file of at most 1 MiB", path);
		return -EINVAL;
	}

	data = malloc((size_t)st.st_size + 1);
	if (!data)
		return -ENOMEM;
	rc = im_read_full(fd, data, (size_t)st.st_size);
	if (rc < 0)
		return im_log_errno(rc, "reading credentials file \"%s\" failed", path);
	if (st.st_size == 0)
		return 0;

	rc = im_json_parse_object(data, (size_t)st.st_size, "credentials file", ret);
	explicit_bzero(data, (size_t)st.st_size);
	if (rc < 0) {
		im_err("credentials file \"%s\" is not a JSON object; fix or remove it", path);
		return -EINVAL;
	}
	return 0;
}

static int run_helper(struct json_object *name, const char *path, const char *host,
		      struct im_credentials *ret)
{
	if (!json_object_is_type(name, json_type_string)) {
		im_err("invalid credential helper name in \"%s\": expected a string", path);
		return -EINVAL;
	}
	return im_credentials_from_helper(json_object_get_string(name),
					  is_docker_hub(host) ? DOCKER_HUB_KEY : host, ret);
}

/* Look host up in one parsed file. Return 1, 0 or -errno as the caller does. */
static int find_in_config(struct json_object *config, const char *path, const char *host,
			  const char *repository, struct im_credentials *ret)
{
	struct json_object *helpers = NULL, *auths = NULL, *store = NULL;
	struct json_object *helper, *entry;
	int rc;

	json_object_object_get_ex(config, "credHelpers", &helpers);
	json_object_object_get_ex(config, "auths", &auths);
	json_object_object_get_ex(config, "credsStore", &store);

	helper = find_member(helpers, host);
	if (helper)
		return run_helper(helper, path, host, ret);

	entry = find_auths_entry(auths, host, repository);
	if (entry) {
		rc = parse_auths_entry(path, entry, ret);
		if (rc != 0)
			return rc;
	}

	/* Docker keeps only empty placeholders in "auths" when a store is set. */
	if (store && !(json_object_is_type(store, json_type_string) &&
		       json_object_get_string_len(store) == 0))
		return run_helper(store, path, host, ret);
	return 0;
}

static int find_in_file(const char *path, bool required, const char *host,
			const char *repository, struct im_credentials *ret)
{
	struct json_object *config = NULL;
	int rc;

	rc = read_config(path, required, &config);
	if (rc < 0 || !config)
		return rc;

	rc = find_in_config(config, path, host, repository, ret);
	json_object_put(config);
	if (rc > 0 && !ret->source)
		ret->source = strdup(path);
	return rc;
}

static const char *home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home && home[0] == '/')
		return home;
	pw = getpwuid(geteuid());
	return pw ? pw->pw_dir : NULL;
}

/* Fill paths with the default search list; entries are "" when unset. */
static void default_paths(char paths[3][PATH_MAX])
{
	const char *auth_file = getenv("REGISTRY_AUTH_FILE");
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	const char *docker = getenv("DOCKER_CONFIG");
	const char *home;

	paths[0][0] = paths[1][0] = paths[2][0] = '\0';
	if (auth_file && auth_file[0])
		snprintf(paths[0], PATH_MAX, "%s", auth_file);
	if (runtime && runtime[0])
		snprintf(paths[1], PATH_MAX, "%s/containers/auth.json", runtime);
	if (docker && docker[0]) {
		snprintf(paths[2], PATH_MAX, "%s/config.json", docker);
	} else {
		home = home_dir();
		if (home)
			snprintf(paths[2], PATH_MAX, "%s/.docker/config.json", home);
	}
}

int im_credentials_find(const char *host, const char *auth_file, struct im_credentials *ret)
{
	return im_credentials_find_repository(host, NULL, auth_file, ret);
}

int im_credentials_find_repository(const char *host, const char *repository,
				   const char *auth_file, struct im_credentials *ret)
{
	char paths[3][PATH_MAX];
	int rc;

	*ret = (struct im_credentials){};
	if (auth_file) {
		rc = find_in_file(auth_file, true, host, repository, ret);
		goto out;
	}

	default_paths(paths);
	for (size_t i = 0; i < IM_ARRAY_SIZE(paths); i++) {
		if (!paths[i][0])
			continue;
		rc = find_in_file(paths[i], false, host, repository, ret);
		if (rc != 0)
			goto out;
	}
	rc = 0;
out:
	if (rc <= 0)
		im_credentials_clear(ret);
	else
		im_debug("using credentials for \"%s\" from %s", host, ret->source ? ret->source : "?");
	return rc;
}
