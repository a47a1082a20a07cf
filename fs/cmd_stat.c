/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `imgmount stat IMAGE PATH`: every attribute of one entry of the merged
 * tree, read from the compiled indexes without mounting the image. The
 * attributes are type, mode, owner, size, link count, inode number (the
 * one a mount of the image uses), mtime with nanoseconds, device numbers,
 * symlink target and extended attributes with their values in hex. stat
 * also names the layer the entry comes from and counts its chunks.
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

struct stat_args {
	struct im_inspect_args common;
	const char *image;
	const char *path;
	bool dereference;
};

/* The entry that stat describes, gathered once for both output forms. */
struct stat_info {
	const char *path;
	uint64_t ino;
	struct im_tree_node node;
	struct im_entry entry;
	const struct im_layer_index *index;       /* NULL for implied directories */
	const struct im_descriptor *layer;        /* NULL for implied directories */
};

static void stat_usage(FILE *out)
{
	fprintf(out,
		"usage: imgmount stat [OPTIONS] IMAGE PATH\n\n"
		"Print every attribute of PATH in IMAGE with all layers applied: type, mode,\n"
		"uid, gid, size, link count, inode, mtime (UTC, with nanoseconds), device\n"
		"numbers, symlink target, extended attributes (values in hex), the layer\n"
		"the entry comes from, and its number of chunks. Nothing but the manifest\n"
		"and the tables of contents is fetched. Symlinks on the way to PATH are\n"
		"followed inside the image.\n\n"
		"options:\n"
		"  -L, --dereference           follow PATH itself when it is a symlink\n");
	im_inspect_usage_common(out, true);
}

static int parse_stat_option(void *userdata, int opt, char *arg)
{
	struct stat_args *a = userdata;

	(void)arg;
	if (opt != 'L') {
		fprintf(stderr, "Run 'imgmount stat --help' for the options.\n");
		return -EINVAL;
	}
	a->dereference = true;
	return 0;
}

/* Return: 0 to run, 1 after --help, or -EINVAL after printing the problem. */
static int parse_stat_args(int argc, char **argv, struct stat_args *a)
{
	static const struct option options[] = {
		{ "dereference", no_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct im_inspect_parser parser = {
		.command = "stat",
		.usage = stat_usage,
		.short_options = "L",
		.long_options = options,
		.parse_option = parse_stat_option,
		.min_operands = 2,
		.max_operands = 2,
	};
	int r;

	r = im_inspect_parse_args(argc, argv, &parser, &a->common, a);
	if (r != 0)
		return r;
	a->image = argv[optind];
	a->path = argv[optind + 1];
	return 0;
}

static int gather(const struct im_inspect *in, const char *path, uint64_t ino,
		  struct stat_info *info)
{
	int r;

	info->path = path;
	info->ino = ino;
	r = im_tree_get_node(in->tree, ino, &info->node);
	if (r == 0)
		r = im_tree_get_entry(in->tree, ino, &info->entry);
	if (r < 0)
		return r;

	info->index = NULL;
	info->layer = NULL;
	if (info->node.layer != IM_TREE_NO_LAYER) {
		info->index = in->img->indexes[info->node.layer];
		info->layer = &in->img->manifest.layers[info->node.layer];
	}
	return 0;
}

static void print_key(const char *key)
{
	printf("%-8s ", key);
}

static void print_xattrs_text(const struct stat_info *info)
{
	const struct im_entry *e = &info->entry;
	struct im_xattr x;

	print_key("xattrs:");
	printf("%" PRIu32 "\n", e->xattr_count);
	for (uint32_t i = 0; i < e->xattr_count; i++) {
		im_layer_index_xattr(info->index, e->xattr_first + i, &x);
		printf("%-8s ", "");
		im_fput_escaped(x.name, x.name_len, stdout);
		fputs(" = 0x", stdout);
		for (uint32_t k = 0; k < x.value_len; k++)
			printf("%02x", x.value[k]);
		putchar('\n');
	}
}

static void print_text(const struct stat_info *info)
{
	const struct im_entry *e = &info->entry;
	char mode[IM_MODE_STRING_LEN], mtime[48], digest[IM_DIGEST_STRING_LEN];

	im_format_mode(info->node.type, e->mode, mode);
	im_format_time(e->mtime_sec, e->mtime_nsec, true, mtime, sizeof(mtime));

	print_key("path:");
	im_fput_escaped(info->path, strlen(info->path), stdout);
	putchar('\n');
	print_key("type:");
	printf("%s\n", im_entry_type_name(info->node.type));
	print_key("mode:");
	printf("%04" PRIo32 " (%s)\n", e->mode & 07777, mode);
	print_key("uid:");
	printf("%" PRIu32 "\n", e->uid);
	print_key("gid:");
	printf("%" PRIu32 "\n", e->gid);
	print_key("size:");
	printf("%" PRIu64 "\n", im_entry_display_size(e));
	print_key("nlink:");
	printf("%" PRIu32 "\n", info->node.nlink);
	print_key("inode:");
	printf("%" PRIu64 "\n", info->ino);
	print_key("mtime:");
	printf("%s UTC (%" PRId64 ".%09" PRIu32 ")\n", mtime, e->mtime_sec, e->mtime_nsec);

	if (info->node.type == IM_ENTRY_CHAR || info->node.type == IM_ENTRY_BLOCK) {
		print_key("rdev:");
		printf("%" PRIu32 ", %" PRIu32 "\n", e->rdev_major, e->rdev_minor);
	}
	if (info->node.type == IM_ENTRY_SYMLINK) {
		print_key("target:");
		im_fput_escaped(e->link, e->link_len, stdout);
		putchar('\n');
	}

	print_key("layer:");
	if (info->layer) {
		im_digest_format(&info->layer->digest, digest);
		printf("%" PRIu32 " %s\n", info->node.layer, digest);
	} else {
		printf("none (a directory no layer has an entry for)\n");
	}
	print_key("chunks:");
	printf("%" PRIu32 "\n", info->node.type == IM_ENTRY_REG ? e->chunk_count : 0);
	print_xattrs_text(info);
}

static int add_layer_json(struct json_object *obj, const struct stat_info *info)
{
	struct json_object *layer;
	int r;

	if (!info->layer)
		return im_json_add_null(obj, "layer");

	layer = json_object_new_object();
	r = im_json_add(obj, "layer", layer);
	if (r == 0)
		r = im_json_add(layer, "index", json_object_new_int64(info->node.layer));
	if (r == 0)
		r = im_json_add_digest(layer, "digest", &info->layer->digest);
	return r;
}

static int add_xattrs_json(struct json_object *obj, const struct stat_info *info)
{
	const struct im_entry *e = &info->entry;
	struct json_object *list = json_object_new_array();
	int r;

	r = im_json_add(obj, "xattrs", list);
	for (uint32_t i = 0; r == 0 && i < e->xattr_count; i++) {
		struct json_object *item = json_object_new_object();
		struct im_xattr x;

		if (!item || json_object_array_add(list, item) < 0) {
			json_object_put(item);
			return -ENOMEM;
		}
		im_layer_index_xattr(info->index, e->xattr_first + i, &x);
		r = im_json_add_bytes(item, "name", x.name, x.name_len);
		if (r == 0)
			r = im_json_add_hex(item, "value_hex", x.value, x.value_len);
	}
	return r;
}

static int print_json(const struct im_inspect *in, const struct stat_info *info)
{
	struct json_object *obj = json_object_new_object();
	const struct im_entry *e = &info->entry;
	int r;

	if (!obj)
		return -ENOMEM;
	r = im_json_add(obj, "image", json_object_new_string(in->img->display_name));
	if (r == 0)
		r = im_json_add_bytes(obj, "path", info->path, strlen(info->path));
	if (r == 0)
		r = im_json_add_attributes(obj, info->node.type, e);
	if (r == 0)
		r = im_json_add(obj, "nlink", json_object_new_int64(info->node.nlink));
	if (r == 0)
		r = im_json_add(obj, "inode", json_object_new_uint64(info->ino));
	if (r == 0)
		r = add_layer_json(obj, info);
	if (r == 0)
		r = im_json_add(obj, "chunks", json_object_new_int64(
			info->node.type == IM_ENTRY_REG ? e->chunk_count : 0));
	if (r == 0)
		r = add_xattrs_json(obj, info);
	if (r == 0)
		r = im_json_print(stdout, obj, true);
	json_object_put(obj);
	return r;
}

static int run_stat(const struct stat_args *args, const struct im_inspect *in)
{
	_cleanup_free_ char *path = NULL;
	struct stat_info info;
	uint64_t ino;
	int r;

	path = im_inspect_absolute_path(args->path);
	if (!path)
		return -ENOMEM;

	r = im_inspect_lookup(in, path, args->dereference, &ino);
	if (r < 0)
		return r;
	r = gather(in, path, ino, &info);
	if (r < 0)
		return r;

	if (args->common.json)
		return print_json(in, &info);
	print_text(&info);
	return 0;
}

int im_cmd_stat(int argc, char **argv)
{
	struct stat_args args = { 0 };
	struct im_inspect *in = NULL;
	int r;

	r = parse_stat_args(argc, argv, &args);
	if (r != 0)
		return r > 0 ? IM_INSPECT_EXIT_OK : IM_INSPECT_EXIT_USAGE;

	r = im_inspect_open(&args.common, args.image, IM_INSPECT_TREE, &in);
	if (r == 0)
		r = run_stat(&args, in);

	im_inspect_free(in);
	return im_inspect_finish(&args.common, r);
}
