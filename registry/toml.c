/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TOML subset reader of toml.h: a recursive-descent scanner over one
 * in-memory buffer. Input is untrusted (fuzzed by tests/fuzz/fuzz_toml.c):
 * every read checks the end of the buffer, every count has a limit, and a
 * failure frees everything built so far.
 */
#include "registry/toml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct key_path {
	char *keys[IM_TOML_MAX_DEPTH];
	size_t n;
};

struct parser {
	const char *text;
	size_t len;
	size_t pos;
	unsigned line;
	struct key_path table;          /* the current [table] */
	struct key_path *headers;       /* every [table] seen, to reject repeats */
	size_t n_headers;
	struct im_toml doc;
	char *error;
	size_t error_size;
};

/* A growable string for decoded keys and values. */
struct buffer {
	char *data;
	size_t len;
	size_t allocated;
};

static int fail(struct parser *p, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, int rc, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (p->error_size)
		snprintf(p->error, p->error_size, "line %u: %s", p->line, what);
	return rc;
}

static int peek(const struct parser *p)
{
	return p->pos < p->len ? (unsigned char)p->text[p->pos] : -1;
}

static bool starts_with(const struct parser *p, const char *s)
{
	size_t n = strlen(s);

	return p->len - p->pos >= n && memcmp(p->text + p->pos, s, n) == 0;
}

static void skip_blanks(struct parser *p)
{
	while (peek(p) == ' ' || peek(p) == '\t')
		p->pos++;
}

static void skip_comment(struct parser *p)
{
	if (peek(p) != '#')
		return;
	while (p->pos < p->len && p->text[p->pos] != '\n')
		p->pos++;
}

/* Consume a line end ("\n" or "\r\n"). Return whether there was one. */
static bool take_newline(struct parser *p)
{
	if (starts_with(p, "\r\n")) {
		p->pos += 2;
		p->line++;
		return true;
	}
	if (peek(p) == '\n') {
		p->pos++;
		p->line++;
		return true;
	}
	return false;
}

/* After a header or a value: blanks, an optional comment, then a line end. */
static int end_of_line(struct parser *p)
{
	skip_blanks(p);
	skip_comment(p);
	if (p->pos == p->len || take_newline(p))
		return 0;
	return fail(p, -EBADMSG, "unexpected character '%c' after the value; expected a new line",
		    p->text[p->pos]);
}

static void free_path(struct key_path *path)
{
	for (size_t i = 0; i < path->n; i++)
		free(path->keys[i]);
	path->n = 0;
}

static int buffer_put(struct buffer *b, const char *data, size_t n)
{
	if (b->len + n + 1 > b->allocated) {
		size_t size = (b->len + n + 1) * 2;
		char *grown = realloc(b->data, size);

		if (!grown)
			return -ENOMEM;
		b->data = grown;
		b->allocated = size;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* Append code point cp as UTF-8. Surrogates, NUL and values past U+10FFFF
 * are rejected by the caller. */
static int buffer_put_utf8(struct buffer *b, uint32_t cp)
{
	char out[4];
	size_t n;

	if (cp < 0x80) {
		out[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		out[0] = (char)(0xf0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buffer_put(b, out, n);
}

static int parse_unicode_escape(struct parser *p, size_t digits, struct buffer *b)
{
	uint32_t cp = 0;

	for (size_t i = 0; i < digits; i++) {
		int c = peek(p);
		int v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return fail(p, -EBADMSG, "invalid \\u escape: expected %zu hex digits", digits);
		cp = cp * 16 + (uint32_t)v;
		p->pos++;
	}
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return fail(p, -EBADMSG, "invalid \\u escape: U+%04X is not allowed", (unsigned)cp);
	return buffer_put_utf8(b, cp);
}

static int parse_escape(struct parser *p, struct buffer *b)
{
	static const char from[] = "btnfr\"\\";
	static const char to[] = "\b\t\n\f\r\"\\";
	const char *found;
	int c = peek(p);

	if (c == 'u' || c == 'U') {
		p->pos++;
		return parse_unicode_escape(p, c == 'u' ? 4 : 8, b);
	}
	found = c > 0 ? strchr(from, c) : NULL;
	if (!found)
		return fail(p, -EBADMSG, "invalid escape in a string");
	p->pos++;
	return buffer_put(b, &to[found - from], 1);
}

/* A single-line basic ("...") or literal ('...') string. *ret is malloc'd. */
static int parse_string(struct parser *p, char **ret)
{
	struct buffer b = {};
	char quote = (char)peek(p);
	int rc = 0;

	if (starts_with(p, "\"\"\"") || starts_with(p, "'''"))
		return fail(p, -EBADMSG, "multi-line strings are not supported");
	p->pos++;
	rc = buffer_put(&b, "", 0);

	while (rc == 0) {
		int c = peek(p);

		if (c < 0 || c == '\n' || c == '\r') {
			rc = fail(p, -EBADMSG, "unterminated string");
			break;
		}
		p->pos++;
		if (c == quote)
			break;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			rc = fail(p, -EBADMSG, "control character in a string");
		else if (c == '\\' && quote == '"')
			rc = parse_escape(p, &b);
		else
			rc = buffer_put(&b, (const char *)&p->text[p->pos - 1], 1);
	}
	if (rc < 0) {
		free(b.data);
		return rc;
	}
	*ret = b.data;
	return 0;
}

static bool is_bare_key_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static int parse_simple_key(struct parser *p, char **ret)
{
	size_t start = p->pos;
	int c = peek(p);

	if (c == '"' || c == '\'')
		return parse_string(p, ret);

	while (is_bare_key_char(peek(p)))
		p->pos++;
	if (p->pos == start)
		return fail(p, -EBADMSG, "expected a key");
	*ret = strndup(p->text + start, p->pos - start);
	return *ret ? 0 : -ENOMEM;
}

/* key ( "." key )*, appended to path. */
static int parse_key(struct parser *p, struct key_path *path)
{
	for (;;) {
		char *key;
		int rc;

		skip_blanks(p);
		if (path->n == IM_TOML_MAX_DEPTH)
			return fail(p, -EFBIG, "key has more than %d parts", IM_TOML_MAX_DEPTH);
		rc = parse_simple_key(p, &key);
		if (rc < 0)
			return rc;
		path->keys[path->n++] = key;

		skip_blanks(p);
		if (peek(p) != '.')
			return 0;
		p->pos++;
	}
}

static bool paths_equal(const struct key_path *a, char *const *keys, size_t n)
{
	if (a->n != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(a->keys[i], keys[i]) != 0)
			return false;
	return true;
}

static int add_entry(struct parser *p, struct im_toml_entry *e)
{
	struct im_toml_entry *grown;

	if (p->doc.n_entries == IM_TOML_MAX_ENTRIES)
		return fail(p, -EFBIG, "more than %d keys and tables", IM_TOML_MAX_ENTRIES);
	grown = realloc(p->doc.entries, (p->doc.n_entries + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	p->doc.entries = grown;
	p->doc.entries[p->doc.n_entries++] = *e;
	return 0;
}

static void entry_free(struct im_toml_entry *e);

/* Record a [table] header as an entry with its own copy of the name. */
static int add_table_entry(struct parser *p, const struct key_path *path, unsigned line)
{
	struct im_toml_entry e = { .type = IM_TOML_TABLE, .line = line };
	int rc;

	for (size_t i = 0; i < path->n; i++) {
		e.keys[i] = strdup(path->keys[i]);
		if (!e.keys[i]) {
			entry_free(&e);
			return -ENOMEM;
		}
		e.n_keys++;
	}
	rc = add_entry(p, &e);
	if (rc < 0)
		entry_free(&e);
	return rc;
}

static int parse_table_header(struct parser *p)
{
	struct key_path path = {};
	struct key_path *grown;
	unsigned line = p->line;
	int rc;

	if (starts_with(p, "[["))
		return fail(p, -EBADMSG, "arrays of tables are not supported");
	p->pos++;
	rc = parse_key(p, &path);
	if (rc == 0 && peek(p) != ']')
		rc = fail(p, -EBADMSG, "expected ']' after the table name");
	if (rc < 0)
		goto fail;
	p->pos++;

	for (size_t i = 0; i < p->n_headers; i++) {
		if (paths_equal(&p->headers[i], path.keys, path.n)) {
			rc = fail(p, -EBADMSG, "table \"%.80s\" is defined twice", path.keys[path.n - 1]);
			goto fail;
		}
	}
	if (p->n_headers == IM_TOML_MAX_ENTRIES) {
		rc = fail(p, -EFBIG, "more than %d tables", IM_TOML_MAX_ENTRIES);
		goto fail;
	}
	grown = realloc(p->headers, (p->n_headers + 1) * sizeof(*grown));
	if (!grown) {
		rc = -ENOMEM;
		goto fail;
	}
	p->headers = grown;
	p->headers[p->n_headers++] = path;

	/* The current table shares the strings that headers owns. */
	p->table = path;
	rc = end_of_line(p);
	if (rc == 0)
		rc = add_table_entry(p, &path, line);
	return rc;

fail:
	free_path(&path);
	return rc;
}

/* Blanks, comments and line ends between array elements. */
static void skip_array_space(struct parser *p)
{
	for (;;) {
		skip_blanks(p);
		skip_comment(p);
		if (!take_newline(p))
			return;
	}
}

static int parse_array(struct parser *p, struct im_toml_entry *e)
{
	e->type = IM_TOML_STRING_ARRAY;
	p->pos++;

	for (;;) {
		char *item, **grown;
		int c, rc;

		skip_array_space(p);
		c = peek(p);
		if (c == ']') {
			p->pos++;
			return 0;
		}
		if (c == '[')
			return fail(p, -EBADMSG, "nested arrays are not supported");
		if (c != '"' && c != '\'')
			return fail(p, -EBADMSG, "only arrays of strings are supported");
		if (e->n_strings == IM_TOML_MAX_ARRAY)
			return fail(p, -EFBIG, "array has more than %d elements", IM_TOML_MAX_ARRAY);

		rc = parse_string(p, &item);
		if (rc < 0)
			return rc;
		grown = realloc(e->strings, (e->n_strings + 1) * sizeof(*grown));
		if (!grown) {
			free(item);
			return -ENOMEM;
		}
		e->strings = grown;
		e->strings[e->n_strings++] = item;

		skip_array_space(p);
		if (peek(p) == ',')
			p->pos++;
		else if (peek(p) != ']')
			return fail(p, -EBADMSG, "expected ',' or ']' in an array");
	}
}

static bool word_ends(const struct parser *p, size_t at)
{
	if (at >= p->len)
		return true;
	return strchr(" \t\r\n#,]", p->text[at]) != NULL;
}

static int parse_value(struct parser *p, struct im_toml_entry *e)
{
	int c = peek(p);

	if (c == '"' || c == '\'') {
		e->type = IM_TOML_STRING;
		return parse_string(p, &e->string);
	}
	if (c == '[')
		return parse_array(p, e);
	if (starts_with(p, "true") && word_ends(p, p->pos + 4)) {
		e->type = IM_TOML_BOOL;
		e->boolean = true;
		p->pos += 4;
		return 0;
	}
	if (starts_with(p, "false") && word_ends(p, p->pos + 5)) {
		e->type = IM_TOML_BOOL;
		p->pos += 5;
		return 0;
	}
	if (c == '{')
		return fail(p, -EBADMSG, "inline tables are not supported");
	return fail(p, -EBADMSG, "unsupported value: expected a string, a boolean or an array "
		    "of strings");
}

static void entry_free(struct im_toml_entry *e)
{
	for (size_t i = 0; i < e->n_keys; i++)
		free(e->keys[i]);
	free(e->string);
	for (size_t i = 0; i < e->n_strings; i++)
		free(e->strings[i]);
	free(e->strings);
	*e = (struct im_toml_entry){};
}

/* TOML forbids a key that repeats another, or that a value already
 * occupies as a table (a = "x" then a.b = "y"), and the reverse. */
static int check_unique(struct parser *p, const struct im_toml_entry *e)
{
	for (size_t i = 0; i < p->doc.n_entries; i++) {
		const struct im_toml_entry *other = &p->doc.entries[i];
		size_t n = other->n_keys < e->n_keys ? other->n_keys : e->n_keys;
		size_t same = 0;

		/* Tables contain keys; repeated headers are caught on their own. */
		if (other->type == IM_TOML_TABLE)
			continue;

		while (same < n && strcmp(other->keys[same], e->keys[same]) == 0)
			same++;
		if (same == n)
			return fail(p, -EBADMSG, "key \"%.80s\" is defined twice or conflicts with "
				    "line %u", e->keys[e->n_keys - 1], other->line);
	}
	return 0;
}

static int parse_key_value(struct parser *p)
{
	struct im_toml_entry e = { .line = p->line };
	struct key_path key = {};
	int rc;

	rc = parse_key(p, &key);
	if (rc == 0 && p->table.n + key.n > IM_TOML_MAX_DEPTH)
		rc = fail(p, -EFBIG, "key has more than %d parts", IM_TOML_MAX_DEPTH);
	if (rc < 0) {
		free_path(&key);
		return rc;
	}

	/* The entry owns copies of the table names and the key's own strings. */
	for (size_t i = 0; i < p->table.n; i++) {
		e.keys[e.n_keys] = strdup(p->table.keys[i]);
		if (!e.keys[e.n_keys]) {
			rc = -ENOMEM;
			goto fail;
		}
		e.n_keys++;
	}
	for (size_t i = 0; i < key.n; i++)
		e.keys[e.n_keys++] = key.keys[i];
	key.n = 0;

	if (peek(p) != '=') {
		rc = fail(p, -EBADMSG, "expected '=' after key \"%.80s\"", e.keys[e.n_keys - 1]);
		goto fail;
	}
	p->pos++;
	skip_blanks(p);

	rc = parse_value(p, &e);
	if (rc == 0)
		rc = check_unique(p, &e);
	if (rc == 0)
		rc = end_of_line(p);
	if (rc == 0)
		rc = add_entry(p, &e);
	if (rc < 0)
		goto fail;
	return 0;

fail:
	entry_free(&e);
	return rc;
}

static int parse_document(struct parser *p)
{
	while (p->pos < p->len) {
		int rc = 0;

		skip_blanks(p);
		skip_comment(p);
		if (p->pos == p->len || take_newline(p))
			continue;
		if (peek(p) == '[')
			rc = parse_table_header(p);
		else
			rc = parse_key_value(p);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void im_toml_free(struct im_toml *doc)
{
	for (size_t i = 0; i < doc->n_entries; i++)
		entry_free(&doc->entries[i]);
	free(doc->entries);
	*doc = (struct im_toml){};
}

int im_toml_parse(const char *text, size_t len, struct im_toml *ret, char *error,
		  size_t error_size)
{
	struct parser p = {
		.text = text,
		.len = len,
		.line = 1,
		.error = error,
		.error_size = error_size,
	};
	int rc;

	*ret = (struct im_toml){};
	if (error_size)
		error[0] = '\0';
	if (len > IM_TOML_MAX_LENGTH)
		return fail(&p, -EFBIG, "file is larger than %u bytes", IM_TOML_MAX_LENGTH);
	if (memchr(text, '\0', len))
		return fail(&p, -EBADMSG, "file contains a NUL byte");

	rc = parse_document(&p);
	for (size_t i = 0; i < p.n_headers; i++)
		free_path(&p.headers[i]);
	free(p.headers);
	if (rc < 0) {
		im_toml_free(&p.doc);
		return rc;
	}
	*ret = p.doc;
	return 0;
}

bool im_toml_entry_has_prefix(const struct im_toml_entry *entry, const char *const *prefix,
			      size_t n)
{
	if (entry->n_keys < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(entry->keys[i], prefix[i]) != 0)
			return false;
	return true;
}
