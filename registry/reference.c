/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references in the grammar of the CNCF distribution project:
 * [HOST[:PORT]/]REPOSITORY[:TAG][@sha256:HEX]. The first path component is a
 * host only when it contains "." or ":" or is "localhost". Otherwise the
 * reference names Docker Hub, where one-component repositories are under
 * "library/". The input comes from the command line and from files, so every
 * rule rejects with a message that quotes the reference and names the part
 * that broke it.
 */
#include "registry/reference.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define DOCKER_HUB "docker.io"
/* The distribution reference package caps a repository name at 255 characters. */
#define REPOSITORY_MAX_LENGTH 255
#define TAG_MAX_LENGTH 128
#define HOST_MAX_LENGTH 255

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_tag_char(char c)
{
	return is_alnum(c) || c == '_' || c == '.' || c == '-';
}

/* Log why text is not a reference; the detail quotes the part that broke it. */
static int invalid(const char *text, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int invalid(const char *text, const char *fmt, ...)
{
	_cleanup_free_ char *detail = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&detail, fmt, ap);
	va_end(ap);

	im_err("invalid reference \"%s\": %s", text, r < 0 ? fmt : detail);
	return -EINVAL;
}

/*
 * Check one repository path component: runs of [a-z0-9] joined by one of
 * ".", "_", "__" or one or more "-". Return: NULL, or the reason it is bad.
 */
static const char *check_path_component(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return "is empty";

	while (i < len) {
		size_t run = 0;

		while (i < len && is_lower_alnum(s[i])) {
			i++;
			run++;
		}
		if (run == 0)
			break;
		if (i == len)
			return NULL;

		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < len && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < len && s[i] == '-')
				i++;
		} else {
			break;
		}
		if (i == len)
			return "ends with a separator";
	}

	for (size_t j = 0; j < len; j++)
		if (s[j] >= 'A' && s[j] <= 'Z')
			return "must be lowercase";
	return "must be runs of [a-z0-9] joined by '.', '_', '__' or '-'";
}

static int check_repository(const char *text, const char *repo)
{
	size_t len = strlen(repo);
	const char *p = repo;

	if (len == 0)
		return invalid(text, "missing repository name");
	if (len > REPOSITORY_MAX_LENGTH)
		return invalid(text, "repository \"%s\" is longer than %d characters",
			       repo, REPOSITORY_MAX_LENGTH);

	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		const char *reason = check_path_component(p, n);

		if (reason)
			return invalid(text, "repository component \"%.*s\" %s",
				       (int)n, p, reason);
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

static int check_tag(const char *text, const char *tag)
{
	size_t len = strlen(tag);

	if (len == 0)
		return invalid(text, "empty tag after ':'");
	if (len > TAG_MAX_LENGTH)
		return invalid(text, "tag \"%s\" is longer than %d characters",
			       tag, TAG_MAX_LENGTH);
	if (!is_alnum(tag[0]) && tag[0] != '_')
		return invalid(text, "tag \"%s\" must start with a letter, a digit or '_'", tag);

	for (size_t i = 1; i < len; i++)
		if (!is_tag_char(tag[i]))
			return invalid(text, "tag \"%s\" contains a character outside [A-Za-z0-9_.-]",
				       tag);
	return 0;
}

static bool is_port(const char *s)
{
	size_t len = strlen(s);
	unsigned long value = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		value = value * 10 + (unsigned long)(s[i] - '0');
	}
	return value >= 1 && value <= 65535;
}

/* A DNS name component: [A-Za-z0-9] or [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]. */
static bool is_domain_component(const char *s, size_t len)
{
	if (len == 0 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	for (size_t i = 1; i + 1 < len; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool is_domain_name(const char *s, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (!is_domain_component(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

/*
 * Split "host[:port]" or "[v6]:port" into the address part and the port.
 * *ret_port is NULL when there is no port. Return: 0 or -EINVAL.
 */
static int split_host_port(char *host, char **ret_addr, char **ret_port)
{
	char *colon;

	if (host[0] == '[') {
		char *close = strchr(host, ']');

		if (!close)
			return -EINVAL;
		*close = '\0';
		*ret_addr = host + 1;
		if (close[1] == '\0') {
			*ret_port = NULL;
			return 0;
		}
		if (close[1] != ':')
			return -EINVAL;
		*ret_port = close + 2;
		return 0;
	}

	colon = strchr(host, ':');
	*ret_addr = host;
	*ret_port = NULL;
	if (colon) {
		*colon = '\0';
		*ret_port = colon + 1;
	}
	return 0;
}

static int check_host(const char *text, const char *host)
{
	_cleanup_free_ char *copy = NULL;
	char *addr, *port;
	struct in6_addr v6;
	bool bracketed = host[0] == '[';

	if (strlen(host) > HOST_MAX_LENGTH)
		return invalid(text, "registry host \"%s\" is longer than %d characters",
			       host, HOST_MAX_LENGTH);

	copy = strdup(host);
	if (!copy)
		return -ENOMEM;
	if (split_host_port(copy, &addr, &port) < 0)
		return invalid(text, "registry host \"%s\" has an unbalanced '[' or text after ']'",
			       host);

	if (port && !is_port(port))
		return invalid(text, "registry port \"%s\" is not a number from 1 to 65535", port);
	if (bracketed && inet_pton(AF_INET6, addr, &v6) != 1)
		return invalid(text, "registry host \"[%s]\" is not an IPv6 address in brackets",
			       addr);
	if (!bracketed && !is_domain_name(addr, strlen(addr)))
		return invalid(text, "registry host \"%s\" is not a valid host name", addr);
	return 0;
}

/*
 * Whether the first path component names a registry rather than a
 * repository: it contains '.' or ':', is "localhost", or has an upper case
 * letter. Repository paths must be lower case, so Docker's reference parser
 * (distribution/reference, splitDockerDomain) reads "Foo/bar" as host
 * "Foo", and so does this one.
 */
static bool is_host_component(const char *s, size_t len)
{
	if (len == strlen("localhost") && memcmp(s, "localhost", len) == 0)
		return true;
	if (memchr(s, '.', len) || memchr(s, ':', len))
		return true;
	for (size_t i = 0; i < len; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return true;
	return false;
}

/*
 * Reject "http://host/repo" and the like up front: without this check the
 * scheme would be read as a host "http:" with an empty port, and the
 * message would not point at the real mistake.
 */
static int check_no_scheme(const char *text)
{
	const char *sep = strstr(text, "://");
	const char *slash = strchr(text, '/');

	if (!sep || (slash && slash < sep))
		return 0;
	return invalid(text, "a reference has no scheme, remove \"%.*s\" and start with "
		       "the registry host (loopback hosts and --insecure-registry hosts "
		       "use plain HTTP)", (int)(sep - text + 3), text);
}

/* Split off "@digest" and check it. *ret_name ends where the digest began. */
static int parse_digest(const char *text, char *name, struct im_reference *ret)
{
	char *at = strchr(name, '@');

	if (!at)
		return 0;
	*at = '\0';

	if (strncmp(at + 1, "sha256:", 7) != 0)
		return invalid(text, "digest \"%s\" is not sha256, the only algorithm supported",
			       at + 1);
	if (im_digest_parse(at + 1, &ret->digest) < 0)
		return invalid(text, "digest \"%s\" is not \"sha256:\" and 64 lowercase hex digits",
			       at + 1);
	ret->has_digest = true;
	return 0;
}

/* Split off ":tag" from the last path component. */
static int parse_tag(const char *text, char *name, struct im_reference *ret)
{
	char *last = strrchr(name, '/');
	char *colon = strchr(last ? last : name, ':');
	int r;

	if (!colon)
		return 0;
	*colon = '\0';

	r = check_tag(text, colon + 1);
	if (r < 0)
		return r;
	ret->tag = strdup(colon + 1);
	return ret->tag ? 0 : -ENOMEM;
}

/* Split name into registry and repository, applying the Docker Hub defaults. */
static int parse_name(const char *text, const char *name, struct im_reference *ret)
{
	const char *slash = strchr(name, '/');
	const char *repo = name;
	int r;

	if (slash && is_host_component(name, (size_t)(slash - name))) {
		ret->registry = strndup(name, (size_t)(slash - name));
		repo = slash + 1;
	} else {
		ret->registry = strdup(DOCKER_HUB);
	}
	if (!ret->registry)
		return -ENOMEM;

	if (strcmp(ret->registry, "index.docker.io") == 0) {
		free(ret->registry);
		ret->registry = strdup(DOCKER_HUB);
		if (!ret->registry)
			return -ENOMEM;
	}

	r = check_host(text, ret->registry);
	if (r < 0)
		return r;
	r = check_repository(text, repo);
	if (r < 0)
		return r;

	if (strcmp(ret->registry, DOCKER_HUB) == 0 && !strchr(repo, '/')) {
		if (asprintf(&ret->repository, "library/%s", repo) < 0)
			ret->repository = NULL;
	} else {
		ret->repository = strdup(repo);
	}
	return ret->repository ? 0 : -ENOMEM;
}

int im_reference_parse(const char *text, struct im_reference *ret)
{
	_cleanup_free_ char *name = NULL;
	struct im_reference ref = {};
	int r;

	if (!text || !ret)
		return -EINVAL;
	if (text[0] == '\0')
		return invalid(text, "empty reference");
	r = check_no_scheme(text);
	if (r < 0)
		return r;

	name = strdup(text);
	if (!name)
		return -ENOMEM;

	r = parse_digest(text, name, &ref);
	if (r < 0)
		goto fail;

	r = parse_tag(text, name, &ref);
	if (r < 0)
		goto fail;

	r = parse_name(text, name, &ref);
	if (r < 0)
		goto fail;

	if (!ref.tag && !ref.has_digest) {
		ref.tag = strdup("latest");
		if (!ref.tag) {
			r = -ENOMEM;
			goto fail;
		}
	}

	*ret = ref;
	return 0;

fail:
	im_reference_clear(&ref);
	return r;
}

void im_reference_clear(struct im_reference *ref)
{
	if (!ref)
		return;
	free(ref->registry);
	free(ref->repository);
	free(ref->tag);
	*ref = (struct im_reference){};
}

char *im_reference_format(const struct im_reference *ref)
{
	char digest[IM_DIGEST_STRING_LEN];
	char *out = NULL;
	int r;

	if (ref->has_digest) {
		im_digest_format(&ref->digest, digest);
		r = asprintf(&out, "%s/%s@%s", ref->registry, ref->repository, digest);
	} else {
		r = asprintf(&out, "%s/%s:%s", ref->registry, ref->repository,
			     ref->tag ? ref->tag : "latest");
	}
	return r < 0 ? NULL : out;
}

bool im_registry_host_is_loopback(const char *host)
{
	_cleanup_free_ char *copy = NULL;
	struct in_addr v4;
	struct in6_addr v6;
	char *addr, *port;

	if (!host)
		return false;

	/* A bare IPv6 address has several colons and no port. */
	if (host[0] != '[' && strchr(host, ':') != strrchr(host, ':'))
		return inet_pton(AF_INET6, host, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);

	copy = strdup(host);
	if (!copy || split_host_port(copy, &addr, &port) < 0)
		return false;
	if (port && !is_port(port))
		return false;

	if (strcasecmp(addr, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, addr, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6);
	return false;
}
