/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lexical cleaning of layer entry names, with the result containerd's
 * applier gets from filepath.Clean("/" + name) minus the leading "/".
 * Nothing touches the file system, so symlinks play no part.
 *
 * The name is scanned from its end: a ".." component hides the next
 * component to its left, and ".." left over at the start is dropped because
 * nothing climbs above the root. Scanning backwards needs no stack, so a
 * long name that cleans to a short one ("a/b/../../c") is cleaned without
 * any buffer beyond out.
 */
#include "index/path.h"
#include "index/path_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/*
 * Find the component that ends at *end (exclusive), skipping the slashes
 * before it. Return false when only slashes are left.
 */
static bool previous_component(const char *name, size_t *end, size_t *ret_start)
{
	size_t e = *end;
	size_t s;

	while (e > 0 && name[e - 1] == '/')
		e--;
	if (e == 0)
		return false;

	s = e;
	while (s > 0 && name[s - 1] != '/')
		s--;

	*end = e;
	*ret_start = s;
	return true;
}

static bool is_dot(const char *c, size_t len)
{
	return len == 1 && c[0] == '.';
}

static bool is_dot_dot(const char *c, size_t len)
{
	return len == 2 && c[0] == '.' && c[1] == '.';
}

/*
 * Walk the components right to left and return the length of the cleaned
 * path. When out is not NULL, also write the kept components into
 * out[0..out_len) from its end backwards; out_len must be that length.
 */
static size_t walk_kept(const char *name, size_t len, char *out, size_t out_len)
{
	size_t end = len;
	size_t start;
	size_t pending_up = 0;
	size_t total = 0;
	size_t write_end = out_len;

	while (previous_component(name, &end, &start)) {
		const char *c = name + start;
		size_t clen = end - start;

		end = start;
		if (is_dot(c, clen))
			continue;
		if (is_dot_dot(c, clen)) {
			pending_up++;
			continue;
		}
		if (pending_up > 0) {
			pending_up--;
			continue;
		}

		/* A separator goes between this component and the one
		 * already placed to its right. */
		if (total > 0) {
			total++;
			if (out) {
				write_end--;
				out[write_end] = '/';
			}
		}
		total += clen;
		if (out) {
			write_end -= clen;
			memcpy(out + write_end, c, clen);
		}
	}
	return total;
}

int im_path_clean(const char *name, size_t len, char *out, size_t out_size)
{
	size_t cleaned;

	if (!name || !out || out_size == 0)
		return -EINVAL;
	if (memchr(name, '\0', len))
		return -EINVAL;

	/* First pass measures, second pass writes from the end backwards. */
	cleaned = walk_kept(name, len, NULL, 0);
	if (cleaned >= out_size || cleaned > INT_MAX)
		return -ENAMETOOLONG;

	walk_kept(name, len, out, cleaned);
	out[cleaned] = '\0';
	return (int)cleaned;
}

bool im_path_is_clean(const char *path, size_t len)
{
	size_t start = 0;

	if (len == 0)
		return false;

	while (start <= len) {
		const char *slash = memchr(path + start, '/', len - start);
		size_t end = slash ? (size_t)(slash - path) : len;
		size_t clen = end - start;

		if (clen == 0 || is_dot(path + start, clen) ||
		    is_dot_dot(path + start, clen))
			return false;
		start = end + 1;
	}
	return !memchr(path, '\0', len);
}

void im_path_quote(const char *s, size_t len, char *out, size_t out_size)
{
	static const char ellipsis[] = "...";
	size_t o = 0;

	if (out_size < 16) {
		if (out_size)
			out[0] = '\0';
		return;
	}

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[5];
		size_t n;

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			n = 4;
		} else {
			esc[0] = (char)c;
			n = 1;
		}

		/* Keep room for "..." and the NUL in case more follows. */
		if (o + n + sizeof(ellipsis) > out_size) {
			memcpy(out + o, ellipsis, sizeof(ellipsis));
			return;
		}
		memcpy(out + o, esc, n);
		o += n;
	}
	out[o] = '\0';
}
