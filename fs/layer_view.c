/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One layer's entries as its table of contents lists them. The compiled
 * index keeps whiteouts and opaque markers as entries whose path is what
 * they act on. The listing turns them back into the ".wh." names of the
 * tar stream, as `tar tv` of the layer shows them, and marks them with
 * their meaning.
 *
 * Text output is one entry per line. With -l it takes the form of
 * `tar tv`: mode, uid/gid, size, mtime (UTC) and path, in aligned columns.
 */
#include "fs/layer_view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/entry_text.h"
#include "fs/json_out.h"
#include "index/path.h"

#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_NAME ".wh..wh..opq"

struct layer_listing {
	const struct im_layer_index *idx;
	const char *dir;        /* cleaned directory path, "" for the root */
	size_t dir_len;
	bool recursive;
	bool long_format;
	bool json;
	struct im_json_array_writer writer;
	int owner_width;        /* -l column widths */
	int size_width;
	bool found;             /* an entry is at or below dir */
};

/*
 * The entry's name in the tar stream, relative to the root: "a/.wh.b" for
 * the whiteout of "a/b", "a/.wh..wh..opq" for the opaque marker of "a",
 * and the path itself for every other entry. Return: a malloc'd string.
 */
static char *tar_name(const struct im_entry *e, size_t *ret_len)
{
	const char *slash;
	size_t dir_len, base_len, n = 0;
	const char *base;
	char *name;

	if (e->type == IM_ENTRY_OPAQUE) {
		dir_len = e->path_len;
		base = OPAQUE_NAME;
		base_len = strlen(OPAQUE_NAME);
	} else if (e->type == IM_ENTRY_WHITEOUT) {
		slash = memrchr(e->path, '/', e->path_len);
		dir_len = slash ? (size_t)(slash - e->path) : 0;
		base = slash ? slash + 1 : e->path;
		base_len = e->path_len - (size_t)(base - e->path);
	} else {
		*ret_len = e->path_len;
		return strndup(e->path, e->path_len);
	}

	/* dir "/" ".wh." base NUL, with each part at most path_len or
	 * OPAQUE_NAME long */
	name = malloc((size_t)e->path_len + 1 + strlen(WHITEOUT_PREFIX) + strlen(OPAQUE_NAME) + 1);
	if (!name)
		return NULL;
	if (dir_len > 0) {
		memcpy(name, e->path, dir_len);
		name[dir_len] = '/';
		n = dir_len + 1;
	}
	if (e->type == IM_ENTRY_WHITEOUT) {
		memcpy(name + n, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX));
		n += strlen(WHITEOUT_PREFIX);
	}
	memcpy(name + n, base, base_len);
	n += base_len;
	name[n] = '\0';

	*ret_len = n;
	return name;
}

static bool is_below(const struct layer_listing *l, const char *name, size_t len)
{
	if (l->dir_len == 0)
		return len > 0;
	return len > l->dir_len && name[l->dir_len] == '/' &&
	       memcmp(name, l->dir, l->dir_len) == 0;
}

/* Decide whether the entry named name is listed, and note whether the
 * directory was found at all. */
static bool is_listed(struct layer_listing *l, const struct im_entry *e, const char *name,
		      size_t len)
{
	bool below = is_below(l, name, len);
	bool same = len == l->dir_len && memcmp(name, l->dir, len) == 0;
	size_t start = l->dir_len > 0 ? l->dir_len + 1 : 0;

	if (below || same)
		l->found = true;
	if (same)
		return e->type != IM_ENTRY_DIR;
	if (!below)
		return false;
	return l->recursive || !memchr(name + start, '/', len - start);
}

static void format_size(const struct im_entry *e, char *out, size_t out_size)
{
	if (e->type == IM_ENTRY_CHAR || e->type == IM_ENTRY_BLOCK)
		snprintf(out, out_size, "%" PRIu32 ",%" PRIu32, e->rdev_major, e->rdev_minor);
	else
		snprintf(out, out_size, "%" PRIu64, im_entry_display_size(e));
}

static void widen(struct layer_listing *l, const struct im_entry *e)
{
	char text[48];
	int n;

	n = snprintf(text, sizeof(text), "%" PRIu32 "/%" PRIu32, e->uid, e->gid);
	if (n > l->owner_width)
		l->owner_width = n;
	format_size(e, text, sizeof(text));
	n = (int)strlen(text);
	if (n > l->size_width)
		l->size_width = n;
}

static void print_marker(const struct im_entry *e)
{
	if (e->type == IM_ENTRY_WHITEOUT) {
		fputs("  (whiteout: removes /", stdout);
		im_fput_escaped(e->path, e->path_len, stdout);
		fputs(" of lower layers)", stdout);
	} else if (e->type == IM_ENTRY_OPAQUE) {
		fputs("  (opaque: hides what lower layers have in /", stdout);
		im_fput_escaped(e->path, e->path_len, stdout);
		fputc(')', stdout);
	}
}

static void print_text(const struct layer_listing *l, const struct im_entry *e,
		       const char *name, size_t len)
{
	char mode[IM_MODE_STRING_LEN], owner[32], size[48], mtime[48];

	if (l->long_format) {
		im_format_mode(e->type, e->mode, mode);
		snprintf(owner, sizeof(owner), "%" PRIu32 "/%" PRIu32, e->uid, e->gid);
		format_size(e, size, sizeof(size));
		im_format_time(e->mtime_sec, e->mtime_nsec, false, mtime, sizeof(mtime));
		printf("%s %-*s %*s %s ", mode, l->owner_width, owner, l->size_width, size, mtime);
	}

	putchar('/');
	im_fput_escaped(name, len, stdout);
	if (l->long_format && e->type == IM_ENTRY_SYMLINK) {
		fputs(" -> ", stdout);
		im_fput_escaped(e->link, e->link_len, stdout);
	} else if (l->long_format && e->type == IM_ENTRY_HARDLINK) {
		fputs(" link to /", stdout);
		im_fput_escaped(e->link, e->link_len, stdout);
	}
	print_marker(e);
	putchar('\n');
}

/* Prefix a relative path from the index with "/". */
static int add_absolute(struct json_object *obj, const char *key, const char *path, size_t len)
{
	_cleanup_free_ char *text = malloc(len + 2);

	if (!text)
		return -ENOMEM;
	text[0] = '/';
	memcpy(text + 1, path, len);
	text[len + 1] = '\0';
	return im_json_add_bytes(obj, key, text, len + 1);
}

static struct json_object *entry_json(uint32_t i, const struct im_entry *e, const char *name,
				      size_t len)
{
	struct json_object *obj = json_object_new_object();
	int r;

	if (!obj)
		return NULL;
	r = im_json_add(obj, "index", json_object_new_int64(i));
	if (r == 0)
		r = add_absolute(obj, "path", name, len);
	if (r == 0)
		r = im_json_add_attributes(obj, e->type, e);
	if (r == 0 && e->type == IM_ENTRY_HARDLINK)
		r = add_absolute(obj, "target", e->link, e->link_len);
	if (r == 0 && (e->type == IM_ENTRY_WHITEOUT || e->type == IM_ENTRY_OPAQUE))
		r = add_absolute(obj, "applies_to", e->path, e->path_len);
	if (r == 0 && e->type == IM_ENTRY_REG)
		r = im_json_add(obj, "chunks", json_object_new_int64(e->chunk_count));
	if (r < 0) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* One pass over the index: measure the columns, or print. */
static int walk_entries(struct layer_listing *l, bool measure)
{
	uint32_t count = im_layer_index_entry_count(l->idx);

	for (uint32_t i = 0; i < count; i++) {
		_cleanup_free_ char *name = NULL;
		struct im_entry e;
		size_t len;
		int r = 0;

		im_layer_index_entry(l->idx, i, &e);
		name = tar_name(&e, &len);
		if (!name)
			return -ENOMEM;
		if (!is_listed(l, &e, name, len))
			continue;

		if (measure)
			widen(l, &e);
		else if (l->json)
			r = im_json_array_add(&l->writer, entry_json(i, &e, name, len));
		else
			print_text(l, &e, name, len);
		if (r < 0)
			return r;
	}
	return 0;
}

int im_layer_view_list(const struct im_image *img, uint64_t layer, const char *path,
		       bool recursive, bool long_format, bool json)
{
	struct layer_listing l = {
		.recursive = recursive,
		.long_format = long_format,
		.json = json,
	};
	_cleanup_free_ char *dir = NULL;
	size_t path_len = strlen(path);
	int r;

	if (layer >= img->n_layers) {
		im_err("invalid --layer %" PRIu64 ": %s has %zu layers, numbered from 0 (the bottom)",
		       layer, img->display_name, img->n_layers);
		return -EINVAL;
	}
	l.idx = img->indexes[layer];

	dir = malloc(path_len + 1);
	if (!dir)
		return -ENOMEM;
	r = im_path_clean(path, path_len, dir, path_len + 1);
	if (r < 0)
		return im_log_errno(r, "invalid path \"%s\"", path);
	l.dir = dir;
	l.dir_len = (size_t)r;
	l.found = l.dir_len == 0;

	if (long_format && !json) {
		r = walk_entries(&l, true);
		if (r < 0)
			return r;
	}

	if (json)
		im_json_array_begin(&l.writer, stdout);
	r = walk_entries(&l, false);
	if (json)
		im_json_array_end(&l.writer);
	if (r == 0 && !l.found) {
		im_err("\"%s\" not found in layer %" PRIu64 " of %s; list the layer with "
		       "'imgmount ls --layer %" PRIu64 " -R'", path, layer, img->display_name, layer);
		r = -ENOENT;
	}
	return r;
}
