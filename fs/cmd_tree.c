/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `imgmount tree IMAGE [PATH]`: the directory tree of the merged image
 * below PATH, drawn like tree(1), from the compiled indexes alone.
 *
 * The walk keeps an explicit stack of open directories, one frame per
 * level. So a deep tree from an untrusted index cannot overflow the C
 * stack. Each frame remembers whether its directory was the last shown
 * entry of its parent, which decides between "│   " and "    " in the
 * prefix of the lines below it. With --json the same walk builds a nested
 * document instead, which is held in memory until it is printed.
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

struct tree_args {
	struct im_inspect_args common;
	const char *image;
	const char *path;
	bool all;
	uint64_t max_depth;           /* 0: no limit */
};

/* One directory being walked. */
struct frame {
	uint64_t ino;
	uint64_t count;               /* children */
	uint64_t next;                /* index of the next shown child, or count */
	bool last;                    /* last shown entry of its parent */
	struct json_object *children; /* --json: the array of this directory's entries */
};

struct walker {
	const struct tree_args *args;
	const struct im_tree *tree;
	struct frame *frames;
	size_t depth;
	size_t capacity;
	uint64_t dirs;
	uint64_t files;
};

static void tree_usage(FILE *out)
{
	fprintf(out,
		"usage: imgmount tree [OPTIONS] IMAGE [PATH]\n\n"
		"Draw the directory tree below PATH (default /) of IMAGE with all layers\n"
		"applied, like tree(1), without mounting it and without fetching file\n"
		"contents. Symlinks are shown with their targets and not descended into;\n"
		"a symlink as PATH itself is followed.\n\n"
		"options:\n"
		"  -a                          include names that start with \".\"\n"
		"  -L LEVEL                    descend at most LEVEL directories deep\n");
	im_inspect_usage_common(out, true);
}

static int parse_tree_option(void *userdata, int opt, char *arg)
{
	struct tree_args *a = userdata;

	switch (opt) {
	case 'a':
		a->all = true;
		return 0;
	case 'L':
		if (im_parse_u64(arg, &a->max_depth) < 0 || a->max_depth == 0) {
			fprintf(stderr, "imgmount: invalid -L \"%s\": expected a level of 1 "
				"or more\n", arg);
			return -EINVAL;
		}
		return 0;
	default:
		fprintf(stderr, "Run 'imgmount tree --help' for the options.\n");
		return -EINVAL;
	}
}

/* Return: 0 to run, 1 after --help, or -EINVAL after printing the problem. */
static int parse_tree_args(int argc, char **argv, struct tree_args *a)
{
	static const struct im_inspect_parser parser = {
		.command = "tree",
		.usage = tree_usage,
		.short_options = "aL:",
		.parse_option = parse_tree_option,
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

/* Index of the first shown child of dir at or after from, or count. */
static int next_shown(const struct walker *w, uint64_t dir, uint64_t from, uint64_t count,
		      uint64_t *ret)
{
	struct im_tree_child child;

	for (uint64_t i = from; i < count; i++) {
		int r = im_tree_get_child(w->tree, dir, i, &child);

		if (r < 0)
			return r;
		if (w->args->all || child.name[0] != '.') {
			*ret = i;
			return 0;
		}
	}
	*ret = count;
	return 0;
}

static int push_frame(struct walker *w, uint64_t ino, bool last, struct json_object *children)
{
	struct im_tree_node node;
	struct frame *f;
	int r;

	if (w->depth == w->capacity) {
		size_t capacity = w->capacity ? 2 * w->capacity : 32;
		struct frame *frames = reallocarray(w->frames, capacity, sizeof(*frames));

		if (!frames)
			return -ENOMEM;
		w->frames = frames;
		w->capacity = capacity;
	}

	r = im_tree_get_node(w->tree, ino, &node);
	if (r < 0)
		return r;
	f = &w->frames[w->depth];
	*f = (struct frame) {
		.ino = ino,
		.count = node.child_count,
		.last = last,
		.children = children,
	};
	r = next_shown(w, ino, 0, f->count, &f->next);
	if (r < 0)
		return r;
	w->depth++;
	return 0;
}

static void print_line(const struct walker *w, const struct im_tree_child *child, bool last,
		       const struct im_entry *e)
{
	/* Frame 0 is the top directory, which draws no connector. */
	for (size_t k = 1; k < w->depth; k++)
		fputs(w->frames[k].last ? "    " : "\u2502   ", stdout);
	fputs(last ? "\u2514\u2500\u2500 " : "\u251c\u2500\u2500 ", stdout);

	im_fput_escaped(child->name, child->name_len, stdout);
	if (child->type == IM_ENTRY_SYMLINK) {
		fputs(" -> ", stdout);
		im_fput_escaped(e->link, e->link_len, stdout);
	}
	putchar('\n');
}

/* A --json node: name, type, target for symlinks. */
static struct json_object *node_json(const char *name, size_t name_len, enum im_entry_type type,
				     const struct im_entry *e)
{
	struct json_object *obj = json_object_new_object();
	int r;

	if (!obj)
		return NULL;
	r = im_json_add_bytes(obj, "name", name, name_len);
	if (r == 0)
		r = im_json_add(obj, "type", json_object_new_string(im_entry_type_name(type)));
	if (r == 0 && type == IM_ENTRY_SYMLINK)
		r = im_json_add_bytes(obj, "target", e->link, e->link_len);
	if (r < 0) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* Show the next child of the top frame and descend into it if it is a
 * directory within the depth limit. */
static int visit_next(struct walker *w)
{
	struct frame *f = &w->frames[w->depth - 1];
	struct json_object *obj = NULL, *children = NULL;
	struct im_tree_child child;
	struct im_entry e;
	bool last;
	int r;

	r = im_tree_get_child(w->tree, f->ino, f->next, &child);
	if (r == 0)
		r = im_tree_get_entry(w->tree, child.ino, &e);
	if (r == 0)
		r = next_shown(w, f->ino, f->next + 1, f->count, &f->next);
	if (r < 0)
		return r;
	last = f->next == f->count;

	if (child.type == IM_ENTRY_DIR)
		w->dirs++;
	else
		w->files++;

	if (w->args->common.json) {
		obj = node_json(child.name, child.name_len, child.type, &e);
		if (!obj || json_object_array_add(f->children, obj) < 0) {
			json_object_put(obj);
			return -ENOMEM;
		}
		if (child.type == IM_ENTRY_DIR) {
			children = json_object_new_array();
			r = im_json_add(obj, "children", children);
			if (r < 0)
				return r;
		}
	} else {
		print_line(w, &child, last, &e);
	}

	if (child.type != IM_ENTRY_DIR ||
	    (w->args->max_depth > 0 && w->depth >= w->args->max_depth))
		return 0;
	return push_frame(w, child.ino, last, children);
}

static int walk(struct walker *w, uint64_t top, struct json_object *top_children)
{
	int r;

	r = push_frame(w, top, true, top_children);
	while (r == 0 && w->depth > 0) {
		struct frame *f = &w->frames[w->depth - 1];

		if (f->next == f->count)
			w->depth--;
		else
			r = visit_next(w);
	}
	return r;
}

static int print_json(struct walker *w, const struct im_inspect *in, const char *path,
		      uint64_t top, const struct im_tree_node *node)
{
	struct json_object *doc = json_object_new_object();
	struct json_object *root = NULL, *children = NULL;
	struct im_entry e;
	int r;

	if (!doc)
		return -ENOMEM;
	r = im_tree_get_entry(in->tree, top, &e);
	if (r == 0)
		r = im_json_add(doc, "image", json_object_new_string(in->img->display_name));
	if (r == 0) {
		root = node_json(path, strlen(path), node->type, &e);
		r = im_json_add(doc, "tree", root);
	}
	if (r == 0 && node->type == IM_ENTRY_DIR) {
		children = json_object_new_array();
		r = im_json_add(root, "children", children);
		if (r == 0)
			r = walk(w, top, children);
	} else if (r == 0) {
		w->files++;
	}
	if (r == 0)
		r = im_json_add(doc, "directories", json_object_new_uint64(w->dirs));
	if (r == 0)
		r = im_json_add(doc, "files", json_object_new_uint64(w->files));
	if (r == 0)
		r = im_json_print(stdout, doc, true);
	json_object_put(doc);
	return r;
}

static int print_text(struct walker *w, const char *path, uint64_t top,
		      const struct im_tree_node *node)
{
	int r = 0;

	im_fput_escaped(path, strlen(path), stdout);
	putchar('\n');
	if (node->type == IM_ENTRY_DIR)
		r = walk(w, top, NULL);
	else
		w->files++;
	if (r < 0)
		return r;

	printf("\n%" PRIu64 " director%s, %" PRIu64 " file%s\n", w->dirs, w->dirs == 1 ? "y" : "ies",
	       w->files, w->files == 1 ? "" : "s");
	return 0;
}

static int run_tree(const struct tree_args *args, const struct im_inspect *in)
{
	struct walker w = { .args = args, .tree = in->tree };
	_cleanup_free_ char *path = NULL;
	struct im_tree_node node;
	uint64_t top;
	int r;

	path = im_inspect_absolute_path(args->path);
	if (!path)
		return -ENOMEM;
	r = im_inspect_lookup(in, path, true, &top);
	if (r == 0)
		r = im_tree_get_node(in->tree, top, &node);
	if (r < 0)
		return r;

	if (args->common.json)
		r = print_json(&w, in, path, top, &node);
	else
		r = print_text(&w, path, top, &node);
	free(w.frames);
	return r;
}

int im_cmd_tree(int argc, char **argv)
{
	struct tree_args args = { 0 };
	struct im_inspect *in = NULL;
	int r;

	r = parse_tree_args(argc, argv, &args);
	if (r != 0)
		return r > 0 ? IM_INSPECT_EXIT_OK : IM_INSPECT_EXIT_USAGE;

	r = im_inspect_open(&args.common, args.image, IM_INSPECT_TREE, &in);
	if (r == 0)
		r = run_tree(&args, in);

	im_inspect_free(in);
	return im_inspect_finish(&args.common, r);
}
