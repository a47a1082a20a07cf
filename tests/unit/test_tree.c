/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the union merge (index/tree*.c). Each test builds small
 * layer indexes in memory with the index builder, exactly as the TOC
 * compiler would emit them (paths cleaned, ".wh." names already classified
 * as WHITEOUT or OPAQUE entries), merges them, and checks the resulting
 * tree: which paths exist, their attributes, inode sharing and link counts,
 * and the inode numbers.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "index/layer_index.h"
#include "index/tree.h"
#include "tests/unit/check.h"

#define MAX_LAYERS 8

/* Layers under construction and the buffers their indexes live in. */
static struct {
	struct im_index_builder *builder;
	struct im_layer_index *layers[MAX_LAYERS];
	void *buffers[MAX_LAYERS];
	size_t n;
} image;

static void image_reset(void)
{
	for (size_t i = 0; i < image.n; i++) {
		im_layer_index_free(image.layers[i]);
		free(image.buffers[i]);
	}
	memset(&image, 0, sizeof(image));
}

static void layer_begin(void)
{
	struct im_digest digest;

	im_sha256(&image.n, sizeof(image.n), &digest);
	CHECK_INT(im_index_builder_new(&digest, 1 << 20, &image.builder), 0);
}

static void layer_end(void)
{
	size_t len = 0;

	CHECK(image.n < MAX_LAYERS);
	CHECK_INT(im_index_builder_write_buffer(image.builder, &image.buffers[image.n], &len), 0);
	CHECK_INT(im_layer_index_open_buffer(image.buffers[image.n], len,
					     &image.layers[image.n]), 0);
	im_index_builder_free(image.builder);
	image.builder = NULL;
	image.n++;
}

/* Add one entry with full attributes. A regular file gets one zero chunk. */
static void add_full(enum im_entry_type type, const char *path, uint32_t mode, uint32_t uid,
		     uint32_t gid, int64_t mtime, uint64_t size, const char *link)
{
	struct im_entry e = {
		.type = type,
		.mode = mode,
		.uid = uid,
		.gid = gid,
		.mtime_sec = mtime,
		.size = type == IM_ENTRY_REG ? size : 0,
		.path = path,
		.path_len = (uint32_t)strlen(path),
		.link = link ? link : "",
		.link_len = link ? (uint32_t)strlen(link) : 0,
	};
	int r = im_index_builder_add_entry(image.builder, &e);

	if (r < 0)
		fprintf(stderr, "adding entry '%s' failed: %s\n", path, strerror(-r));
	CHECK_INT(r, 0);

	if (type == IM_ENTRY_REG && size > 0) {
		struct im_chunk c = { .length = size, .flags = IM_CHUNK_ZEROS };

		CHECK_INT(im_index_builder_add_chunk(image.builder, &c), 0);
	}
}

static void add_dir(const char *path)
{
	add_full(IM_ENTRY_DIR, path, 0755, 0, 0, 1000, 0, NULL);
}

static void add_reg(const char *path, uint64_t size)
{
	add_full(IM_ENTRY_REG, path, 0644, 0, 0, 1000, size, NULL);
}

static void add_sym(const char *path, const char *target)
{
	add_full(IM_ENTRY_SYMLINK, path, 0777, 0, 0, 1000, 0, target);
}

static void add_hard(const char *path, const char *target)
{
	add_full(IM_ENTRY_HARDLINK, path, 0644, 0, 0, 1000, 0, target);
}

/* A ".wh.NAME" entry as compiled: the path is the one it removes. */
static void add_whiteout(const char *removed_path)
{
	add_full(IM_ENTRY_WHITEOUT, removed_path, 0, 0, 0, 0, 0, NULL);
}

/* A ".wh..wh..opq" entry as compiled: the path is its directory. */
static void add_opaque(const char *dir)
{
	add_full(IM_ENTRY_OPAQUE, dir, 0, 0, 0, 0, 0, NULL);
}

static struct im_tree *merge(void)
{
	struct im_tree *t = NULL;

	CHECK_INT(im_tree_build(image.layers, image.n, &t), 0);
	return t;
}

static int merge_error(void)
{
	struct im_tree *t = NULL;
	int r = im_tree_build(image.layers, image.n, &t);

	CHECK(r < 0);
	im_tree_free(t);
	return r;
}

static bool exists(const struct im_tree *t, const char *path)
{
	uint64_t ino;

	return t && im_tree_lookup_path(t, path, &ino) == 0;
}

static uint64_t ino_of(const struct im_tree *t, const char *path)
{
	uint64_t ino = 0;

	if (!t || im_tree_lookup_path(t, path, &ino) < 0)
		fprintf(stderr, "path '%s' not found\n", path);
	return ino;
}

static struct im_tree_node node_of(const struct im_tree *t, const char *path)
{
	struct im_tree_node node = { 0 };
	uint64_t ino = ino_of(t, path);

	if (ino)
		CHECK_INT(im_tree_get_node(t, ino, &node), 0);
	return node;
}

static struct im_entry entry_of(const struct im_tree *t, const char *path)
{
	struct im_entry e = { .path = "", .link = "" };
	uint64_t ino = ino_of(t, path);

	if (ino)
		CHECK_INT(im_tree_get_entry(t, ino, &e), 0);
	return e;
}

/* Names in directory path joined by spaces, in tree order. */
static const char *list(const struct im_tree *t, const char *path)
{
	static char out[1024];
	struct im_tree_child child;
	uint64_t dir = ino_of(t, path);
	size_t used = 0;

	out[0] = '\0';
	for (uint64_t i = 0; dir && im_tree_get_child(t, dir, i, &child) == 0; i++) {
		int n = snprintf(out + used, sizeof(out) - used, "%s%s", used ? " " : "", child.name);

		if (n < 0 || (size_t)n >= sizeof(out) - used)
			break;
		used += (size_t)n;
	}
	return out;
}

static void test_whiteout_removes_exact_path(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("root");
	add_reg("test", 4);
	add_dir("sub");
	add_reg("sub/test", 6);
	layer_end();
	layer_begin();
	add_whiteout("test");
	layer_end();

	t = merge();
	CHECK_STR(list(t, ""), "root sub");
	CHECK(!exists(t, "test"));
	CHECK(exists(t, "sub/test"));
	CHECK_INT(entry_of(t, "sub/test").size, 6);
	im_tree_free(t);
	image_reset();
}

static void test_opaque_hides_lower_subtree(void)
{
	struct im_tree *t;
	struct im_entry e;

	layer_begin();
	add_dir("a");
	add_dir("a/b");
	add_reg("a/b/foo", 3);
	add_dir("a/b/__pycache__");
	add_reg("a/b/__pycache__/x.pyc", 3);
	layer_end();
	layer_begin();
	add_full(IM_ENTRY_DIR, "a", 0700, 1000, 1000, 2000, 0, NULL);
	add_opaque("a");
	layer_end();

	t = merge();
	CHECK_STR(list(t, "a"), "");
	CHECK(!exists(t, "a/b"));
	CHECK(!exists(t, "a/b/__pycache__/x.pyc"));
	e = entry_of(t, "a");
	CHECK_INT(e.mode, 0700);
	CHECK_INT(e.uid, 1000);
	CHECK_INT(e.gid, 1000);
	CHECK_INT(node_of(t, "a").nlink, 2);
	im_tree_free(t);
	image_reset();
}

static void test_opaque_after_new_children(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("app");
	add_reg("app/old.txt", 3);
	add_dir("usr");
	add_dir("usr/share");
	add_dir("usr/share/doc");
	add_dir("usr/share/doc/curl");
	add_reg("usr/share/doc/curl/README", 1);
	layer_end();
	layer_begin();
	add_dir("app");
	add_reg("app/TestFile.txt", 3);
	add_opaque("app");
	add_dir("usr/share/doc/curl");
	add_sym("usr/share/doc/curl/copyright", "../libcurl4/copyright");
	add_opaque("usr/share/doc/curl");
	layer_end();

	t = merge();
	CHECK_STR(list(t, "app"), "TestFile.txt");
	CHECK_STR(list(t, "usr/share/doc/curl"), "copyright");
	CHECK_STR(entry_of(t, "usr/share/doc/curl/copyright").link, "../libcurl4/copyright");
	CHECK_INT(node_of(t, "usr/share/doc/curl/copyright").type, IM_ENTRY_SYMLINK);
	im_tree_free(t);
	image_reset();
}

static void test_whiteouts_affect_only_lower_layers(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("a");
	add_reg("a/old", 1);
	layer_end();
	layer_begin();
	add_reg("a/new", 1);
	add_whiteout("a");
	layer_end();

	t = merge();
	CHECK(exists(t, "a/new"));
	CHECK(!exists(t, "a/old"));
	/* a was whited out, so a/new's parent is a fresh implied directory. */
	CHECK_INT(entry_of(t, "a").mtime_sec, 0);
	im_tree_free(t);
	image_reset();
}

static void test_whiteout_inside_whited_out_dir(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("test");
	add_reg("test/test", 2);
	layer_end();
	layer_begin();
	add_whiteout("test");
	add_whiteout("test/test");
	layer_end();

	t = merge();
	CHECK(!exists(t, "test"));
	CHECK(!exists(t, "test/test"));
	CHECK_STR(list(t, ""), "");
	im_tree_free(t);
	image_reset();

	/* The same with the inner whiteout listed first. */
	layer_begin();
	add_dir("test");
	add_reg("test/test", 2);
	layer_end();
	layer_begin();
	add_whiteout("test/test");
	add_whiteout("test");
	layer_end();

	t = merge();
	CHECK(!exists(t, "test"));
	CHECK_STR(list(t, ""), "");
	im_tree_free(t);
	image_reset();
}

static void test_opaque_near_miss_is_whiteout(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("d1");
	add_reg("d1/keep", 1);
	add_dir("d2");
	add_reg("d2/gone", 1);
	layer_end();
	layer_begin();
	/* "d1/.wh..wh.opq" (one dot) whites out the absent "d1/.wh.opq". */
	add_whiteout("d1/.wh.opq");
	add_opaque("d2");
	layer_end();

	t = merge();
	CHECK_STR(list(t, "d1"), "keep");
	CHECK_STR(list(t, "d2"), "");
	im_tree_free(t);
	image_reset();
}

static void test_whiteouts_in_first_layer_hidden(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("root");
	add_opaque("root");
	add_whiteout("changelog.txt");
	add_reg("keep", 1);
	layer_end();

	t = merge();
	CHECK_STR(list(t, ""), "keep root");
	CHECK_STR(list(t, "root"), "");
	CHECK(!exists(t, "changelog.txt"));
	im_tree_free(t);
	image_reset();
}

static void test_whiteout_hardlinked_whiteouts(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("var");
	add_dir("var/lib");
	add_dir("var/lib/apt");
	add_dir("var/lib/apt/lists");
	add_reg("var/lib/apt/lists/a", 1);
	add_hard("var/lib/apt/lists/b", "var/lib/apt/lists/a");
	layer_end();
	layer_begin();
	/* Both ".wh.a" and the hardlink ".wh.b -> .wh.a" compile to whiteouts. */
	add_whiteout("var/lib/apt/lists/a");
	add_whiteout("var/lib/apt/lists/b");
	layer_end();

	t = merge();
	CHECK_STR(list(t, "var/lib/apt/lists"), "");
	im_tree_free(t);
	image_reset();
}

static void test_opaque_at_root(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("etc");
	add_reg("etc/passwd", 1);
	add_reg("bin", 1);
	layer_end();
	layer_begin();
	add_reg("new", 1);
	add_opaque("");
	layer_end();

	t = merge();
	CHECK_STR(list(t, ""), "new");
	CHECK_INT(node_of(t, "").nlink, 2);
	im_tree_free(t);
	image_reset();
}

static void test_whiteout_through_symlinked_parent(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("d");
	add_reg("d/f", 1);
	add_reg("d/g", 1);
	add_sym("lnk", "d");
	layer_end();
	layer_begin();
	add_whiteout("lnk/f");
	layer_end();

	t = merge();
	CHECK_STR(list(t, "d"), "g");
	CHECK(exists(t, "lnk"));
	im_tree_free(t);
	image_reset();
}

static void test_hardlink_alias_overwritten(void)
{
	struct im_tree *t;
	uint64_t i1, i2, i3;

	layer_begin();
	add_reg("t2", 4);
	layer_end();
	layer_begin();
	add_reg("t1", 4);
	add_hard("t2", "t1");
	add_hard("t3", "t1");
	layer_end();
	layer_begin();
	add_reg("t1", 40);
	layer_end();

	t = merge();
	i1 = ino_of(t, "t1");
	i2 = ino_of(t, "t2");
	i3 = ino_of(t, "t3");
	CHECK(i1 != i2);
	CHECK_INT(i2, i3);
	CHECK_INT(node_of(t, "t1").nlink, 1);
	CHECK_INT(node_of(t, "t2").nlink, 2);
	CHECK_INT(entry_of(t, "t1").size, 40);
	CHECK_INT(entry_of(t, "t3").size, 4);
	/* Each regular inode counts once: 40 + 4. */
	CHECK_INT(im_tree_total_size(t), 44);
	im_tree_free(t);
	image_reset();
}

static void test_hardlinks_share_one_inode(void)
{
	struct im_tree *t;

	layer_begin();
	add_reg("usr/bin/x", 1);
	add_hard("usr/bin/y", "usr/bin/x");
	add_hard("usr/bin/z", "usr/bin/x");
	layer_end();

	t = merge();
	CHECK_INT(ino_of(t, "usr/bin/x"), ino_of(t, "usr/bin/y"));
	CHECK_INT(ino_of(t, "usr/bin/x"), ino_of(t, "usr/bin/z"));
	CHECK_INT(node_of(t, "usr/bin/x").nlink, 3);
	CHECK_INT(node_of(t, "usr/bin/x").type, IM_ENTRY_REG);
	CHECK_INT(im_tree_total_size(t), 1);
	im_tree_free(t);
	image_reset();
}

static void test_hardlink_survives_target_whiteout(void)
{
	struct im_tree *t;

	layer_begin();
	add_reg("a", 5);
	add_hard("b", "a");
	layer_end();
	layer_begin();
	add_whiteout("a");
	layer_end();

	t = merge();
	CHECK(!exists(t, "a"));
	CHECK(exists(t, "b"));
	CHECK_INT(node_of(t, "b").nlink, 1);
	CHECK_INT(entry_of(t, "b").size, 5);
	im_tree_free(t);
	image_reset();
}

static void test_hardlink_to_symlink(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("tmp");
	add_reg("tmp/zzz", 1);
	add_sym("tmp/xxx", "/tmp/zzz");
	add_hard("tmp/yyy", "tmp/xxx");
	layer_end();

	t = merge();
	CHECK_INT(node_of(t, "tmp/yyy").type, IM_ENTRY_SYMLINK);
	CHECK_STR(entry_of(t, "tmp/yyy").link, "/tmp/zzz");
	CHECK_INT(ino_of(t, "tmp/yyy"), ino_of(t, "tmp/xxx"));
	CHECK_INT(node_of(t, "tmp/xxx").nlink, 2);
	CHECK_INT(node_of(t, "tmp/zzz").nlink, 1);
	im_tree_free(t);
	image_reset();
}

static void test_hardlink_bad_target_rejected(void)
{
	layer_begin();
	add_reg("a", 1);
	add_hard("b", "missing");
	layer_end();
	CHECK_INT(merge_error(), -EBADMSG);
	image_reset();

	layer_begin();
	add_dir("d");
	add_hard("b", "d");
	layer_end();
	CHECK_INT(merge_error(), -EBADMSG);
	image_reset();

	/* A hardlink's target resolves in the tree so far, not later entries. */
	layer_begin();
	add_hard("b", "a");
	add_reg("a", 1);
	layer_end();
	CHECK_INT(merge_error(), -EBADMSG);
	image_reset();
}

static void test_hardlink_to_itself_keeps_inode(void)
{
	struct im_tree *t;

	layer_begin();
	add_reg("a", 3);
	add_hard("b", "a");
	layer_end();
	layer_begin();
	add_hard("a", "a");
	layer_end();

	t = merge();
	CHECK_INT(ino_of(t, "a"), ino_of(t, "b"));
	CHECK_INT(node_of(t, "a").nlink, 2);
	im_tree_free(t);
	image_reset();
}

static void test_implied_parents(void)
{
	struct im_tree *t;
	const char *dirs[] = { "bin", "bin/app.runfiles", "bin/app.runfiles/_main",
			       "bin/app.runfiles/_main/app_" };

	layer_begin();
	add_full(IM_ENTRY_REG, "bin/app.repo_mapping", 0755, 0, 0, 1000, 1, NULL);
	add_full(IM_ENTRY_REG, "bin/app", 0755, 0, 0, 1000, 3, NULL);
	add_full(IM_ENTRY_REG, "bin/app.runfiles/_main/main.go", 0755, 0, 0, 1000, 2, NULL);
	add_hard("bin/app.runfiles/_repo_mapping", "bin/app.repo_mapping");
	add_hard("bin/app.runfiles/_main/app_/app", "bin/app");
	layer_end();

	t = merge();
	CHECK(exists(t, "bin/app.repo_mapping"));
	CHECK(exists(t, "bin/app.runfiles/_main/main.go"));
	CHECK_INT(ino_of(t, "bin/app.runfiles/_main/app_/app"), ino_of(t, "bin/app"));
	CHECK_INT(ino_of(t, "bin/app.runfiles/_repo_mapping"), ino_of(t, "bin/app.repo_mapping"));
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct im_entry e = entry_of(t, dirs[i]);

		CHECK_INT(node_of(t, dirs[i]).type, IM_ENTRY_DIR);
		CHECK_INT(node_of(t, dirs[i]).layer, IM_TREE_NO_LAYER);
		CHECK_INT(e.mode, 0755);
		CHECK_INT(e.uid, 0);
		CHECK_INT(e.gid, 0);
		CHECK_INT(e.mtime_sec, 0);
	}
	im_tree_free(t);
	image_reset();
}

static void test_implied_parent_keeps_lower_dir(void)
{
	struct im_tree *t;

	layer_begin();
	add_full(IM_ENTRY_DIR, "opt", 0750, 7, 8, 1234, 0, NULL);
	layer_end();
	layer_begin();
	add_reg("opt/tool", 1);
	layer_end();

	t = merge();
	CHECK_INT(entry_of(t, "opt").mode, 0750);
	CHECK_INT(entry_of(t, "opt").uid, 7);
	CHECK_INT(entry_of(t, "opt").mtime_sec, 1234);
	CHECK_INT(node_of(t, "opt").layer, 0);
	im_tree_free(t);
	image_reset();
}

static void test_duplicate_entries_later_wins(void)
{
	struct im_tree *t;

	layer_begin();
	add_full(IM_ENTRY_DIR, "usr/lib/gcc", 0755, 0, 0, 1000, 0, NULL);
	add_reg("usr/lib/gcc/keep", 1);
	add_reg("etc/conf", 2);
	add_full(IM_ENTRY_DIR, "usr/lib/gcc", 02755, 0, 0, 1000, 0, NULL);
	add_reg("etc/conf", 9);
	add_reg("x/y", 4);
	add_dir("x/y");
	add_reg("x/y/z", 9);
	layer_end();

	t = merge();
	CHECK_INT(entry_of(t, "etc/conf").size, 9);
	CHECK_INT(node_of(t, "etc/conf").nlink, 1);
	CHECK_INT(entry_of(t, "usr/lib/gcc").mode, 02755);
	CHECK(exists(t, "usr/lib/gcc/keep"));
	CHECK_INT(node_of(t, "x/y").type, IM_ENTRY_DIR);
	CHECK_STR(list(t, "x/y"), "z");
	im_tree_free(t);
	image_reset();
}

static void test_file_over_dir_removes_subtree(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("d");
	add_dir("d/sub");
	add_reg("d/sub/f", 1);
	add_reg("d/g", 1);
	add_hard("keep", "d/g");
	layer_end();
	layer_begin();
	add_reg("d", 7);
	add_sym("s", "/d");
	layer_end();

	t = merge();
	CHECK_INT(node_of(t, "d").type, IM_ENTRY_REG);
	CHECK(!exists(t, "d/sub"));
	CHECK_INT(entry_of(t, "d").size, 7);
	/* The name outside the removed subtree keeps its inode. */
	CHECK_INT(node_of(t, "keep").nlink, 1);
	CHECK_INT(node_of(t, "").nlink, 2);
	im_tree_free(t);
	image_reset();
}

static void test_dir_over_file_replaces_it(void)
{
	struct im_tree *t;

	layer_begin();
	add_reg("x", 3);
	add_sym("l", "target");
	layer_end();
	layer_begin();
	add_dir("x");
	add_reg("x/child", 1);
	add_dir("l");
	layer_end();

	t = merge();
	CHECK_INT(node_of(t, "x").type, IM_ENTRY_DIR);
	CHECK_STR(list(t, "x"), "child");
	CHECK_INT(node_of(t, "l").type, IM_ENTRY_DIR);
	CHECK(!exists(t, "target"));
	im_tree_free(t);
	image_reset();
}

static void test_symlink_replaced_by_file(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("bin");
	add_reg("bin/busybox", 7);
	add_dir("usr");
	add_dir("usr/bin");
	add_sym("usr/bin/env", "/bin/busybox");
	add_sym("bin/systemd", "/lib/systemd/systemd");
	layer_end();
	layer_begin();
	add_reg("usr/bin/env", 13);
	add_sym("bin/systemd", "/usr/lib/systemd/systemd");
	layer_end();

	t = merge();
	CHECK_INT(node_of(t, "usr/bin/env").type, IM_ENTRY_REG);
	CHECK_INT(entry_of(t, "usr/bin/env").size, 13);
	CHECK_INT(entry_of(t, "bin/busybox").size, 7);
	CHECK_STR(entry_of(t, "bin/systemd").link, "/usr/lib/systemd/systemd");
	im_tree_free(t);
	image_reset();
}

static void test_symlink_parents_stay_in_root(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("etc");
	add_sym("pwn", "/etc");
	add_sym("up", "../../../../tmp");
	add_sym("rel", "etc");
	add_sym("dotdot", "etc/../etc/./");
	add_sym("etc/abs", "/etc");
	layer_end();
	layer_begin();
	add_reg("etc/abs/a", 5);
	add_reg("pwn/evil.conf", 1);
	add_reg("up/evil2", 2);
	add_reg("rel/r", 3);
	add_reg("dotdot/d", 4);
	layer_end();

	t = merge();
	CHECK(exists(t, "etc/evil.conf"));
	CHECK(exists(t, "tmp/evil2"));
	CHECK(exists(t, "etc/r"));
	CHECK(exists(t, "etc/d"));
	CHECK_INT(entry_of(t, "etc/a").size, 5);
	CHECK_STR(entry_of(t, "pwn").link, "/etc");
	CHECK_STR(entry_of(t, "up").link, "../../../../tmp");
	CHECK_INT(node_of(t, "pwn").type, IM_ENTRY_SYMLINK);
	CHECK_INT(entry_of(t, "tmp").mode, 0755);
	CHECK_STR(list(t, ""), "dotdot etc pwn rel tmp up");
	im_tree_free(t);
	image_reset();
}

static void test_symlink_to_missing_dir_walks_by_name(void)
{
	struct im_tree *t;

	/* "ghost/x/.." names ghost, and no ghost/x may be left behind. */
	layer_begin();
	add_sym("l", "ghost/x/..");
	layer_end();
	layer_begin();
	add_reg("l/f", 1);
	layer_end();

	t = merge();
	CHECK(exists(t, "ghost/f"));
	CHECK_STR(list(t, "ghost"), "f");
	im_tree_free(t);
	image_reset();
}

/* A chain of n symlinks l1 -> l2 -> ... -> ln -> d, then an entry under l1. */
static void build_link_chain(int n)
{
	char path[32], target[32];

	layer_begin();
	add_dir("d");
	for (int i = 1; i <= n; i++) {
		snprintf(path, sizeof(path), "l%d", i);
		if (i == n)
			snprintf(target, sizeof(target), "d");
		else
			snprintf(target, sizeof(target), "/l%d", i + 1);
		add_sym(path, target);
	}
	layer_end();
	layer_begin();
	add_reg("l1/f", 1);
	layer_end();
}

static void test_symlink_hop_limit(void)
{
	struct im_tree *t;

	build_link_chain(40);
	t = merge();
	CHECK(exists(t, "d/f"));
	im_tree_free(t);
	image_reset();

	build_link_chain(41);
	CHECK_INT(merge_error(), -ELOOP);
	image_reset();

	layer_begin();
	add_sym("a", "b");
	add_sym("b", "a");
	add_reg("a/x", 1);
	layer_end();
	CHECK_INT(merge_error(), -ELOOP);
	image_reset();
}

static void test_parent_that_is_a_file_rejected(void)
{
	layer_begin();
	add_reg("f", 1);
	layer_end();
	layer_begin();
	add_reg("f/x", 1);
	layer_end();
	CHECK_INT(merge_error(), -EBADMSG);
	image_reset();
}

static void test_parent_replaced_mid_layer(void)
{
	struct im_tree *t;

	/* The second entry replaces the first one's parent with a symlink, so
	 * the third must resolve its parent again, through the new link. */
	layer_begin();
	add_reg("x/y/f1", 1);
	add_sym("x/y", "/z");
	add_reg("x/y/f2", 2);
	layer_end();

	t = merge();
	CHECK_INT(node_of(t, "x/y").type, IM_ENTRY_SYMLINK);
	CHECK(exists(t, "z/f2"));
	CHECK(!exists(t, "z/f1"));
	CHECK_STR(list(t, "x"), "y");
	im_tree_free(t);
	image_reset();
}

static void test_dir_nlink_counts_visible_subdirs(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("d");
	add_dir("d/s1");
	add_dir("d/s2");
	add_reg("d/f", 1);
	layer_end();
	layer_begin();
	add_whiteout("d/s2");
	add_dir("d/s3");
	layer_end();

	t = merge();
	CHECK_INT(node_of(t, "d").nlink, 4);
	CHECK_INT(node_of(t, "d/s1").nlink, 2);
	CHECK_INT(node_of(t, "").nlink, 3);
	CHECK_STR(list(t, "d"), "f s1 s3");
	im_tree_free(t);
	image_reset();
}

static void test_inode_numbers_breadth_first(void)
{
	struct im_tree *t;

	layer_begin();
	add_dir("b");
	add_reg("b/c", 1);
	add_reg("a", 1);
	add_hard("b/a-link", "a");
	layer_end();

	t = merge();
	CHECK_INT(ino_of(t, ""), IM_TREE_ROOT_INO);
	CHECK_INT(ino_of(t, "a"), 2);
	CHECK_INT(ino_of(t, "b"), 3);
	CHECK_INT(ino_of(t, "b/a-link"), 2);
	CHECK_INT(ino_of(t, "b/c"), 4);
	CHECK_INT(im_tree_inode_count(t), 4);
	CHECK_INT(node_of(t, "b").parent, IM_TREE_ROOT_INO);
	CHECK_INT(node_of(t, "").parent, IM_TREE_ROOT_INO);
	im_tree_free(t);
	image_reset();
}

/* The same final tree reached by different entry orders and layer splits. */
static void build_numbering_image(bool reversed)
{
	const char *files[] = { "z/1", "y/2", "x/3", "w/4/5", "v", "u/6" };
	size_t n = sizeof(files) / sizeof(files[0]);

	layer_begin();
	for (size_t i = 0; i < n; i++)
		add_reg(files[reversed ? n - 1 - i : i], 1);
	layer_end();
	if (reversed) {
		layer_begin();
		add_reg("v", 1);
		layer_end();
	}
}

static void test_inode_numbers_deterministic(void)
{
	const char *paths[] = { "z/1", "y/2", "x/3", "w/4/5", "w/4", "v", "u/6", "u" };
	uint64_t first[8], second[8], third[8];
	struct im_tree *t1, *t2, *t3;

	build_numbering_image(false);
	t1 = merge();
	t2 = merge();
	image_reset();
	build_numbering_image(true);
	t3 = merge();

	for (size_t i = 0; i < 8; i++) {
		first[i] = ino_of(t1, paths[i]);
		second[i] = ino_of(t2, paths[i]);
		third[i] = ino_of(t3, paths[i]);
		CHECK_INT(first[i], second[i]);
		CHECK_INT(first[i], third[i]);
	}
	im_tree_free(t1);
	im_tree_free(t2);
	im_tree_free(t3);
	image_reset();
}

static void test_lookup_byte_strings(void)
{
	struct im_tree *t;
	uint64_t ino;

	layer_begin();
	add_reg("\xff\xfe", 1);
	add_reg("a", 1);
	add_reg("B", 1);
	add_reg("ab", 1);
	layer_end();

	t = merge();
	CHECK_STR(list(t, ""), "B a ab \xff\xfe");
	CHECK_INT(im_tree_lookup(t, IM_TREE_ROOT_INO, "\xff\xfe", 2, &ino), 0);
	CHECK_INT(im_tree_lookup(t, IM_TREE_ROOT_INO, "\xff", 1, &ino), -ENOENT);
	CHECK_INT(im_tree_lookup(t, IM_TREE_ROOT_INO, "A", 1, &ino), -ENOENT);
	CHECK_INT(im_tree_lookup(t, ino_of(t, "a"), "x", 1, &ino), -ENOTDIR);
	CHECK_INT(im_tree_lookup(t, 999, "a", 1, &ino), -ENOENT);
	CHECK_INT(im_tree_lookup(t, 0, "a", 1, &ino), -ENOENT);
	im_tree_free(t);
	image_reset();
}

static void test_overlong_names_skipped(void)
{
	char longname[300];
	char nested[310];
	struct im_tree *t;

	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	snprintf(nested, sizeof(nested), "%.290s/f", longname);

	layer_begin();
	add_reg(longname, 1);
	add_reg(nested, 1);
	add_reg("ok", 1);
	layer_end();

	t = merge();
	CHECK_STR(list(t, ""), "ok");
	im_tree_free(t);
	image_reset();
}

static void test_root_attributes_fixed(void)
{
	struct im_tree *t;
	struct im_entry e;

	layer_begin();
	add_reg("f", 1);
	layer_end();

	t = merge();
	e = entry_of(t, "");
	CHECK_INT(e.type, IM_ENTRY_DIR);
	CHECK_INT(e.mode, 0755);
	CHECK_INT(e.uid, 0);
	CHECK_INT(e.mtime_sec, 0);
	CHECK_INT(e.xattr_count, 0);
	im_tree_free(t);
	image_reset();

	/* No layers at all: only the root. */
	t = merge();
	CHECK_INT(im_tree_inode_count(t), 1);
	CHECK_INT(node_of(t, "").nlink, 2);
	CHECK_INT(node_of(t, "").child_count, 0);
	im_tree_free(t);
	image_reset();
}

static void test_special_files(void)
{
	struct im_tree *t;
	struct im_entry e = {
		.type = IM_ENTRY_CHAR,
		.mode = 0666,
		.rdev_major = 1,
		.rdev_minor = 3,
		.path = "dev/null",
		.path_len = 8,
		.link = "",
	};

	layer_begin();
	CHECK_INT(im_index_builder_add_entry(image.builder, &e), 0);
	add_full(IM_ENTRY_FIFO, "run/ctl", 0620, 0, 0, 1, 0, NULL);
	add_full(IM_ENTRY_CHAR, "dev/wh", 0, 0, 0, 1, 0, NULL);
	layer_end();

	t = merge();
	CHECK_INT(node_of(t, "dev/null").type, IM_ENTRY_CHAR);
	CHECK_INT(entry_of(t, "dev/null").rdev_minor, 3);
	CHECK_INT(node_of(t, "run/ctl").type, IM_ENTRY_FIFO);
	/* A 0/0 character device not named ".wh." is an ordinary entry. */
	CHECK(exists(t, "dev/wh"));
	im_tree_free(t);
	image_reset();
}

static void test_many_entries(void)
{
	struct im_tree *t;
	char path[64];

	/* Enough names to grow the hash map and the arrays several times. */
	layer_begin();
	for (int i = 0; i < 20000; i++) {
		snprintf(path, sizeof(path), "d%d/f%d", i % 100, i);
		add_reg(path, 1);
	}
	layer_end();
	layer_begin();
	for (int i = 0; i < 100; i += 2) {
		snprintf(path, sizeof(path), "d%d", i);
		add_whiteout(path);
	}
	layer_end();

	t = merge();
	CHECK_INT(im_tree_inode_count(t), 1 + 50 + 10000);
	CHECK(exists(t, "d1/f1"));
	CHECK(!exists(t, "d0/f0"));
	CHECK_INT(node_of(t, "").nlink, 52);
	im_tree_free(t);
	image_reset();
}

int main(void)
{
	/* The rejection tests log errors on purpose. */
	im_log_set_level(IM_LOG_ERR - 1);

	RUN_TEST(test_whiteout_removes_exact_path);
	RUN_TEST(test_opaque_hides_lower_subtree);
	RUN_TEST(test_opaque_after_new_children);
	RUN_TEST(test_whiteouts_affect_only_lower_layers);
	RUN_TEST(test_whiteout_inside_whited_out_dir);
	RUN_TEST(test_opaque_near_miss_is_whiteout);
	RUN_TEST(test_whiteouts_in_first_layer_hidden);
	RUN_TEST(test_whiteout_hardlinked_whiteouts);
	RUN_TEST(test_opaque_at_root);
	RUN_TEST(test_whiteout_through_symlinked_parent);
	RUN_TEST(test_hardlink_alias_overwritten);
	RUN_TEST(test_hardlinks_share_one_inode);
	RUN_TEST(test_hardlink_survives_target_whiteout);
	RUN_TEST(test_hardlink_to_symlink);
	RUN_TEST(test_hardlink_bad_target_rejected);
	RUN_TEST(test_hardlink_to_itself_keeps_inode);
	RUN_TEST(test_implied_parents);
	RUN_TEST(test_implied_parent_keeps_lower_dir);
	RUN_TEST(test_duplicate_entries_later_wins);
	RUN_TEST(test_file_over_dir_removes_subtree);
	RUN_TEST(test_dir_over_file_replaces_it);
	RUN_TEST(test_symlink_replaced_by_file);
	RUN_TEST(test_symlink_parents_stay_in_root);
	RUN_TEST(test_symlink_to_missing_dir_walks_by_name);
	RUN_TEST(test_symlink_hop_limit);
	RUN_TEST(test_parent_that_is_a_file_rejected);
	RUN_TEST(test_parent_replaced_mid_layer);
	RUN_TEST(test_dir_nlink_counts_visible_subdirs);
	RUN_TEST(test_inode_numbers_breadth_first);
	RUN_TEST(test_inode_numbers_deterministic);
	RUN_TEST(test_lookup_byte_strings);
	RUN_TEST(test_overlong_names_skipped);
	RUN_TEST(test_root_attributes_fixed);
	RUN_TEST(test_special_files);
	RUN_TEST(test_many_entries);
	return check_exit_status();
}
