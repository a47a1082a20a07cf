/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `imgmount ls [-l] [-R] [-a] IMAGE [PATH]`: list a directory of the
 * image's merged tree (all layers applied) without mounting it. The
 * listing comes from the layers' compiled indexes alone, so no file
 * contents are fetched. With --layer N it shows one layer's own entries
 * instead (fs/layer_view.c).
 *
 * Text output follows ls(1): one name per line, or with -l the mode
 * string, link count, numeric owner and group, size (major, minor for
 * devices), mtime in UTC and the name, in columns aligned per directory.
 * -R lists subdirectories depth first after their parent, each under a
 * "PATH:" header. The walk keeps its own stack, so the depth of an
 * image's tree cannot overflow the C stack.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/commands.h"
#include "fs/entry_text.h"
#include "fs/inspect.h"
#include "fs/json_out.h"
#include "fs/layer_view.h"

struct ls_args {
	struct im_inspect_args common;
	const char *image;
	const char *path;
	bool long_format;
	bool recursive;
	bool all;
	bool by_layer;
	uint64_t layer;
};

/* One line of `ls -l`, with the text of each column. */
struct row {
	char mode[IM_MODE_STRING_LEN];
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	char size[48];        /* bytes, or "MAJOR, MINOR" for devices */
	char mtime[48];
	const char *name;
	size_t name_len;
	const char *target;   /* symlink target, or NULL */
	size_t target_len;
};

/* Column widths of the rows of one directory. */
struct widths {
	int nlink;
	int uid;
	int gid;
	int size;
};

struct lister {
	const struct ls_args *args;
	const struct im_tree *tree;
	struct im_json_array_writer json;
	size_t dirs_listed;
};

/* A directory waiting to be listed by -R. */
struct pending_dir {
	uint64_t ino;
	char *path;
};

struct dir_stack {
	struct pending_dir *items;
	size_t count;
	size_t capacity;
};

static void ls_usage(FILE *out)
{
	fprintf(out,
		"usage: imgmount ls [OPTIONS] IMAGE [PATH]\n\n"
		"List directory PATH (default /) of IMAGE with all layers applied, without\n"
		"mounting it and without fetching file contents. A PATH that is not a\n"
		"directory is listed alone. Symlinks on the way are followed inside the\n"
		"image; a symlink as PATH itself is followed unless -l is given.\n\n"
		"options:\n"
		"  -l                          long format: mode, link count, uid, gid, size\n"
		"                              (major, minor for devices), mtime (UTC), name\n"
		"  -R                          list subdirectories recursively\n"
		"  -a                          include names that start with \".\", and \".\" and \"..\"\n"
		"      --layer N               list the entries of layer N (0 is the bottom)\n"
		"                              in table of contents order, whiteouts and\n"
		"                              opaque markers included and marked; PATH\n"
		"                              limits the listing to that directory\n");
	im_inspect_usage_common(out, true);
}

enum { OPT_LAYER = IM_INSPECT_OPT_FIRST_FREE };

static int parse_ls_option(void *userdata, int opt, char *arg)
{
	struct ls_args *a = userdata;

	switch (opt) {
	case 'l':
		a->long_format = true;
		return 0;
	case 'R':
		a->recursive = true;
		return 0;
	case 'a':
		a->all = true;
		return 0;
	case OPT_LAYER:
		if (im_parse_u64(arg, &a->layer) < 0) {
			fprintf(stderr, "imgmount: invalid --layer \"%s\": expected a layer "
				"number, 0 for the bottom layer\n", arg);
			return -EINVAL;
		}
		a->by_layer = true;
		return 0;
	default:
		fprintf(stderr, "Run 'imgmount ls --help' for the options.\n");
		return -EINVAL;
	}
}

/* Return: 0 to run, 1 after --help, or -EINVAL after printing the problem. */
static int parse_ls_args(int argc, char **argv, struct ls_args *a)
{
	static const struct option options[] = {
		{ "layer", required_argument, NULL, OPT_LAYER },
		{ NULL, 0, NULL, 0 },
	};
	static const struct im_inspect_parser parser = {
		.command = "ls",
		.usage = ls_usage,
		.short_options = "lRa",
		.long_options = options,
		.parse_option = parse_ls_option,
		.min_operands = 1,
		.max_operands = 2,
	};
	int r;

	r = im_inspect_parse_args(argc, argv, &parser, &a->common, a);
	if (r != 0)
		return r;
	a->image = argv[optind];
	a->path = argc - optind == 2 ? argv[optind + 1] : "/";
	return 0;
}

static int make_row(const struct im_tree *t, uint64_t ino, const char *name, size_t name_len,
		    struct row *row)
{
	struct im_tree_node node;
	struct im_entry e;
	int r;

	r = im_tree_get_node(t, ino, &node);
	if (r == 0)
		r = im_tree_get_entry(t, ino, &e);
	if (r < 0)
		return r;

	im_format_mode(node.type, e.mode, row->mode);
	row->nlink = node.nlink;
	row->uid = e.uid;
	row->gid = e.gid;
	if (node.type == IM_ENTRY_CHAR || node.type == IM_ENTRY_BLOCK)
		snprintf(row->size, sizeof(row->size), "%" PRIu32 ", %" PRIu32,
			 e.rdev_major, e.rdev_minor);
	else
		snprintf(row->size, sizeof(row->size), "%" PRIu64, im_entry_display_size(&e));
	im_format_time(e.mtime_sec, e.mtime_nsec, false, row->mtime, sizeof(row->mtime));
	row->name = name;
	row->name_len = name_len;
	row->target = node.type == IM_ENTRY_SYMLINK ? e.link : NULL;
	row->target_len = e.link_len;
	return 0;
}

static int digits_u32(uint32_t v)
{
	char text[16];

	return snprintf(text, sizeof(text), "%" PRIu32, v);
}

static void widen(struct widths *w, const struct row *row)
{
	int n;

	n = digits_u32(row->nlink);
	if (n > w->nlink)
		w->nlink = n;
	n = digits_u32(row->uid);
	if (n > w->uid)
		w->uid = n;
	n = digits_u32(row->gid);
	if (n > w->gid)
		w->gid = n;
	n = (int)strlen(row->size);
	if (n > w->size)
		w->size = n;
}

static void print_row(const struct row *row, const struct widths *w, bool long_format)
{
	if (long_format)
		printf("%s %*" PRIu32 " %*" PRIu32 " %*" PRIu32 " %*s %s ", row->mode,
		       w->nlink, row->nlink, w->uid, row->uid, w->gid, row->gid,
		       w->size, row->size, row->mtime);
	im_fput_escaped(row->name, row->name_len, stdout);
	if (long_format && row->target) {
		fputs(" -> ", stdout);
		im_fput_escaped(row->target, row->target_len, stdout);
	}
	putchar('\n');
}

static struct json_object *entry_json(const struct im_tree *t, uint64_t ino, const char *name,
				      size_t name_len, const char *path)
{
	struct json_object *obj = json_object_new_object();
	struct im_tree_node node;
	struct im_entry e;
	int r;

	if (!obj)
		return NULL;
	r = im_tree_get_node(t, ino, &node);
	if (r == 0)
		r = im_tree_get_entry(t, ino, &e);
	if (r == 0)
		r = im_json_add_bytes(obj, "name", name, name_len);
	if (r == 0)
		r = im_json_add_bytes(obj, "path", path, strlen(path));
	if (r == 0)
		r = im_json_add_attributes(obj, node.type, &e);
	if (r == 0)
		r = im_json_add(obj, "nlink", json_object_new_int64(node.nlink));
	if (r == 0)
		r = im_json_add(obj, "inode", json_object_new_uint64(ino));
	if (r == 0 && node.layer == IM_TREE_NO_LAYER)
		r = im_json_add_null(obj, "layer");
	else if (r == 0)
		r = im_json_add(obj, "layer", json_object_new_int64(node.layer));
	if (r < 0) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* Emit one shown name of directory dir_path, as JSON or as a row. */
static int emit(struct lister *l, const struct widths *w, uint64_t ino, const char *name,
		size_t name_len, const char *dir_path)
{
	_cleanup_free_ char *path = NULL;
	struct row row;
	int r;

	if (l->args->common.json) {
		path = im_inspect_join_path(dir_path, name, name_len);
		if (!path)
			return -ENOMEM;
		return im_json_array_add(&l->json, entry_json(l->tree, ino, name, name_len, path));
	}

	r = make_row(l->tree, ino, name, name_len, &row);
	if (r < 0)
		return r;
	print_row(&row, w, l->args->long_format);
	return 0;
}

static bool shown(const struct lister *l, const char *name)
{
	return l->args->all || name[0] != '.';
}

/* Compute the -l column widths of dir's shown names. */
static int measure_dir(struct lister *l, uint64_t dir, uint64_t parent, uint64_t count,
		       struct widths *w)
{
	struct im_tree_child child;
	struct row row;
	int r;

	if (l->args->all) {
		r = make_row(l->tree, dir, ".", 1, &row);
		if (r < 0)
			return r;
		widen(w, &row);
		r = make_row(l->tree, parent, "..", 2, &row);
		if (r < 0)
			return r;
		widen(w, &row);
	}

	for (uint64_t i = 0; i < count; i++) {
		r = im_tree_get_child(l->tree, dir, i, &child);
		if (r < 0)
			return r;
		if (!shown(l, child.name))
			continue;
		r = make_row(l->tree, child.ino, child.name, child.name_len, &row);
		if (r < 0)
			return r;
		widen(w, &row);
	}
	return 0;
}

/* List the shown names of directory dir, whose path is dir_path. */
static int list_dir(struct lister *l, uint64_t dir, const char *dir_path)
{
	struct widths w = { 0 };
	struct im_tree_node node;
	struct im_tree_child child;
	int r;

	r = im_tree_get_node(l->tree, dir, &node);
	if (r < 0)
		return r;

	if (l->args->long_format && !l->args->common.json) {
		r = measure_dir(l, dir, node.parent, node.child_count, &w);
		if (r < 0)
			return r;
	}

	if (l->args->all) {
		r = emit(l, &w, dir, ".", 1, dir_path);
		if (r == 0)
			r = emit(l, &w, node.parent, "..", 2, dir_path);
		if (r < 0)
			return r;
	}

	for (uint64_t i = 0; i < node.child_count; i++) {
		r = im_tree_get_child(l->tree, dir, i, &child);
		if (r < 0)
			return r;
		if (!shown(l, child.name))
			continue;
		r = emit(l, &w, child.ino, child.name, child.name_len, dir_path);
		if (r < 0)
			return r;
	}
	return 0;
}

static int stack_push(struct dir_stack *s, uint64_t ino, char *path)
{
	if (s->count == s->capacity) {
		size_t capacity = s->capacity ? 2 * s->capacity : 64;
		struct pending_dir *items = reallocarray(s->items, capacity, sizeof(*items));

		if (!items) {
			free(path);
			return -ENOMEM;
		}
		s->items = items;
		s->capacity = capacity;
	}
	s->items[s->count++] = (struct pending_dir) { .ino = ino, .path = path };
	return 0;
}

static void stack_clear(struct dir_stack *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->items[i].path);
	free(s->items);
}

/* Push the shown subdirectories of dir, last first, so they are listed
 * in name order. */
static int push_subdirs(struct lister *l, struct dir_stack *s, uint64_t dir, const char *dir_path)
{
	struct im_tree_node node;
	struct im_tree_child child;
	int r;

	r = im_tree_get_node(l->tree, dir, &node);
	if (r < 0)
		return r;

	for (uint64_t i = node.child_count; i > 0; i--) {
		char *path;

		r = im_tree_get_child(l->tree, dir, i - 1, &child);
		if (r < 0)
			return r;
		if (child.type != IM_ENTRY_DIR || !shown(l, child.name))
			continue;
		path = im_inspect_join_path(dir_path, child.name, child.name_len);
		if (!path)
			return -ENOMEM;
		r = stack_push(s, child.ino, path);
		if (r < 0)
			return r;
	}
	return 0;
}

static void print_header(struct lister *l, const char *path)
{
	if (l->args->common.json || !l->args->recursive)
		return;
	if (l->dirs_listed > 0)
		putchar('\n');
	im_fput_escaped(path, strlen(path), stdout);
	fputs(":\n", stdout);
}

/* List directory top and, with -R, every directory below it. */
static int list_tree(struct lister *l, uint64_t top, const char *top_path)
{
	struct dir_stack stack = { 0 };
	char *path;
	int r;

	path = strdup(top_path);
	if (!path)
		return -ENOMEM;
	r = stack_push(&stack, top, path);

	while (r == 0 && stack.count > 0) {
		struct pending_dir dir = stack.items[--stack.count];

		print_header(l, dir.path);
		r = list_dir(l, dir.ino, dir.path);
		l->dirs_listed++;
		if (r == 0 && l->args->recursive)
			r = push_subdirs(l, &stack, dir.ino, dir.path);
		free(dir.path);
	}

	stack_clear(&stack);
	return r;
}

/* List a PATH that is not a directory: the one entry, named as given. */
static int list_single(struct lister *l, uint64_t ino, const char *path)
{
	struct widths w = { 0 };
	const char *name = strrchr(path, '/') + 1;
	struct row row;
	int r;

	if (l->args->common.json)
		return im_json_array_add(&l->json, entry_json(l->tree, ino, name, strlen(name), path));

	r = make_row(l->tree, ino, path, strlen(path), &row);
	if (r < 0)
		return r;
	widen(&w, &row);
	print_row(&row, &w, l->args->long_format);
	return 0;
}

static int list_merged(const struct ls_args *args, struct im_inspect *in)
{
	struct lister l = { .args = args, .tree = in->tree };
	_cleanup_free_ char *path = NULL;
	struct im_tree_node node;
	uint64_t ino;
	int r;

	path = im_inspect_absolute_path(args->path);
	if (!path)
		return -ENOMEM;

	/* Like ls(1), -l shows a symlink given as PATH instead of its target. */
	r = im_inspect_lookup(in, path, !args->long_format, &ino);
	if (r < 0)
		return r;
	r = im_tree_get_node(in->tree, ino, &node);
	if (r < 0)
		return r;

	if (args->common.json)
		im_json_array_begin(&l.json, stdout);
	if (node.type == IM_ENTRY_DIR)
		r = list_tree(&l, ino, path);
	else
		r = list_single(&l, ino, path);
	if (args->common.json)
		im_json_array_end(&l.json);
	return r;
}

int im_cmd_ls(int argc, char **argv)
{
	struct ls_args args = { 0 };
	struct im_inspect *in = NULL;
	int r;

	r = parse_ls_args(argc, argv, &args);
	if (r != 0)
		return r > 0 ? IM_INSPECT_EXIT_OK : IM_INSPECT_EXIT_USAGE;

	r = im_inspect_open(&args.common, args.image, args.by_layer ? 0 : IM_INSPECT_TREE, &in);
	if (r == 0) {
		if (args.by_layer)
			r = im_layer_view_list(in->img, args.layer, args.path, args.recursive,
					       args.long_format, args.common.json);
		else
			r = list_merged(&args, in);
	}

	im_inspect_free(in);
	return im_inspect_finish(&args.common, r);
}
