/* SPDX-License-Identifier: Apache-2.0 */
/*
 * WWW-Authenticate parser after RFC 7235 section 4.1: a comma-separated
 * list of challenges, each a scheme followed by either a token68 or
 * comma-separated name=value parameters whose values are tokens or quoted
 * strings with backslash escapes. A new challenge starts where a list item
 * is not a parameter. The value comes from the network: its length, the
 * parameter count and every stored value are bounded.
 */
#include "registry/auth.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#define CHALLENGE_MAX_PARAMS 64

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token68_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("-._~+/", c));
}

static void skip_ows(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

static void skip_separators(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == ',')
		(*p)++;
}

static size_t token_length(const char *p)
{
	size_t n = 0;

	while (is_tchar(p[n]))
		n++;
	return n;
}

/* Whether p starts "name = value" rather than a scheme or a token68. */
static bool looks_like_param(const char *p)
{
	size_t n = token_length(p);

	if (n == 0)
		return false;
	p += n;
	skip_ows(&p);
	if (*p != '=')
		return false;
	p++;
	skip_ows(&p);
	return *p == '"' || is_tchar(*p);
}

/*
 * Read a token or a quoted string into out (NULL: check and skip it).
 * Return: 0, or -EBADMSG for an unterminated string, a control character or
 * a value that does not fit.
 */
static int read_value(const char **p, char *out, size_t size)
{
	size_t n = 0;

	if (**p != '"') {
		n = token_length(*p);
		if (out) {
			if (n >= size)
				return -EBADMSG;
			memcpy(out, *p, n);
			out[n] = '\0';
		}
		*p += n;
		return 0;
	}

	for ((*p)++;; (*p)++) {
		char c = **p;

		if (c == '\0')
			return -EBADMSG;
		if (c == '"')
			break;
		if (c == '\\') {
			(*p)++;
			c = **p;
			if (c == '\0')
				return -EBADMSG;
		}
		if ((unsigned char)c < 0x20 && c != '\t')
			return -EBADMSG;
		if (out) {
			if (n + 1 >= size)
				return -EBADMSG;
			out[n] = c;
		}
		n++;
	}
	(*p)++;
	if (out)
		out[n] = '\0';
	return 0;
}

/* Where a parameter's value goes, or NULL to drop it. */
static char *param_slot(struct im_auth_challenge *c, const char *name, size_t len,
			size_t *ret_size)
{
	static const struct {
		const char *name;
		size_t offset;
		size_t size;
	} slots[] = {
		{ "realm", offsetof(struct im_auth_challenge, realm), sizeof(c->realm) },
		{ "service", offsetof(struct im_auth_challenge, service), sizeof(c->service) },
		{ "scope", offsetof(struct im_auth_challenge, scope), sizeof(c->scope) },
	};

	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		if (len == strlen(slots[i].name) && strncasecmp(name, slots[i].name, len) == 0) {
			*ret_size = slots[i].size;
			return (char *)c + slots[i].offset;
		}
	}
	*ret_size = 0;
	return NULL;
}

static int read_param(const char **p, struct im_auth_challenge *c)
{
	const char *name = *p;
	size_t len = token_length(name);
	size_t size;
	char *slot = param_slot(c, name, len, &size);

	*p += len;
	skip_ows(p);
	(*p)++; /* '=', checked by looks_like_param() */
	skip_ows(p);

	/* Parameters of schemes this client does not use are only skipped. */
	if (c->scheme == IM_AUTH_NONE)
		slot = NULL;
	return read_value(p, slot, size);
}

static void skip_token68(const char **p)
{
	while (is_token68_char(**p))
		(*p)++;
	while (**p == '=')
		(*p)++;
}

static enum im_auth_scheme scheme_of(const char *name, size_t len)
{
	if (len == 5 && strncasecmp(name, "Basic", 5) == 0)
		return IM_AUTH_BASIC;
	if (len == 6 && strncasecmp(name, "Bearer", 6) == 0)
		return IM_AUTH_BEARER;
	return IM_AUTH_NONE;
}

/* Parse one challenge at *p and leave *p at the start of the next one. */
static int parse_one(const char **p, struct im_auth_challenge *c)
{
	size_t len = token_length(*p);
	unsigned params = 0;

	*c = (struct im_auth_challenge){};
	if (len == 0)
		return -EBADMSG;
	c->scheme = scheme_of(*p, len);
	*p += len;
	if (**p != ' ' && **p != '\t' && **p != ',' && **p != '\0')
		return -EBADMSG;
	skip_ows(p);

	if (**p != ',' && **p != '\0' && !looks_like_param(*p)) {
		skip_token68(p);
		skip_ows(p);
		if (**p != ',' && **p != '\0')
			return -EBADMSG;
	}

	/* Each pass starts at a parameter, a ',' or the end. */
	for (;;) {
		int r;

		skip_separators(p);
		if (!looks_like_param(*p))
			return 0;
		if (++params > CHALLENGE_MAX_PARAMS)
			return -EBADMSG;

		r = read_param(p, c);
		if (r < 0)
			return r;

		skip_ows(p);
		if (**p != ',' && **p != '\0')
			return -EBADMSG;
	}
}

int im_auth_parse_challenge(const char *text, struct im_auth_challenge *ret)
{
	struct im_auth_challenge c;
	const char *p = text;

	*ret = (struct im_auth_challenge){};
	if (!text)
		return 0;
	if (strlen(text) > IM_AUTH_CHALLENGE_MAX_LENGTH)
		return -EBADMSG;

	skip_separators(&p);
	while (*p) {
		int r = parse_one(&p, &c);

		if (r < 0) {
			*ret = (struct im_auth_challenge){};
			return r;
		}
		if (c.scheme == IM_AUTH_BEARER && ret->scheme != IM_AUTH_BEARER)
			*ret = c;
		else if (c.scheme == IM_AUTH_BASIC && ret->scheme == IM_AUTH_NONE)
			*ret = c;
		skip_separators(&p);
	}
	return 0;
}
