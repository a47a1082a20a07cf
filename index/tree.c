/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The merged tree's entry point and its read-only accessors. The merge
 * itself is in tree_apply.c (rules), tree_resolve.c (root-scoped path
 * walk), tree_names.c (name table) and tree_freeze.c (final numbering).
 *
 * Accessors check every inode number they are given, because the FUSE
 * layer passes numbers that come from the kernel.
 */
#include "index/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "index/tree_merge.h"

int im_tree_build(struct im_layer_index *const *layers, size_t n, struct im_tree **ret)
{
	struct im_merge m;
	int r;

	if (n >= IM_TREE_NO_LAYER)
		return -E2BIG;

	r = im_merge_init(&m, layers, n);
	if (r < 0)
		goto out;

	for (size_t i = 0; i < n; i++) {
		r = im_merge_apply_layer(&m, (uint32_t)i);
		if (r < 0)
			goto out;
	}

	if (m.n_skipped > IM_MERGE_SKIP_LOG_MAX)
		im_warn("%llu entries skipped in total because a name was empty or longer "
			"than 255 bytes", (unsigned long long)m.n_skipped);

	r = im_merge_freeze(&m, ret);
out:
	if (r == -ENOMEM || r == -E2BIG)
		im_log_errno(r, "merge of %zu layers failed", n);
	im_merge_release(&m);
	return r;
}

void im_tree_free(struct im_tree *t)
{
	if (!t)
		return;
	free(t->layers);
	free(t->inodes);
	free(t->dirents);
	free(t->names);
	free(t);
}

uint64_t im_tree_inode_count(const struct im_tree *t)
{
	return t->n_inodes;
}

uint64_t im_tree_total_size(const struct im_tree *t)
{
	return t->total_size;
}

static const struct im_tree_inode *get_inode(const struct im_tree *t, uint64_t ino)
{
	if (ino == 0 || ino > t->n_inodes)
		return NULL;
	return &t->inodes[ino];
}

int im_tree_get_node(const struct im_tree *t, uint64_t ino, struct im_tree_node *ret)
{
	const struct im_tree_inode *i = get_inode(t, ino);

	if (!i)
		return -ENOENT;

	*ret = (struct im_tree_node){
		.type = (enum im_entry_type)i->type,
		.layer = i->layer,
		.entry = i->entry,
		.nlink = i->nlink,
		.parent = i->parent,
		.child_count = i->child_count,
	};
	return 0;
}

int im_tree_get_entry(const struct im_tree *t, uint64_t ino, struct im_entry *ret)
{
	const struct im_tree_inode *i = get_inode(t, ino);

	if (!i)
		return -ENOENT;

	if (i->layer == IM_TREE_NO_LAYER) {
		*ret = (struct im_entry){
			.type = IM_ENTRY_DIR,
			.mode = 0755,
			.path = "",
			.link = "",
		};
		return 0;
	}

	im_layer_index_entry(t->layers[i->layer], i->entry, ret);
	return 0;
}

static int compare_name(const struct im_tree *t, const struct im_tree_dirent *d,
			const char *name, size_t len)
{
	size_t n = d->name_len < len ? d->name_len : len;
	int c = memcmp(t->names + d->name_off, name, n);

	if (c != 0)
		return c;
	return (d->name_len > len) - (d->name_len < len);
}

int im_tree_lookup(const struct im_tree *t, uint64_t dir, const char *name, size_t len,
		   uint64_t *ret)
{
	const struct im_tree_inode *i = get_inode(t, dir);
	const struct im_tree_dirent *children;
	size_t lo = 0, hi;

	if (!i)
		return -ENOENT;
	if (i->type != IM_ENTRY_DIR)
		return -ENOTDIR;

	children = t->dirents + i->child_first;
	hi = i->child_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = compare_name(t, &children[mid], name, len);

		if (c == 0) {
			*ret = children[mid].ino;
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

int im_tree_lookup_path(const struct im_tree *t, const char *path, uint64_t *ret)
{
	uint64_t ino = IM_TREE_ROOT_INO;
	const char *p = path;

	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		int r;

		if (len > 0 && !(len == 1 && p[0] == '.')) {
			r = im_tree_lookup(t, ino, p, len, &ino);
			if (r < 0)
				return r;
		}
		p += len;
		if (*p == '/')
			p++;
	}

	*ret = ino;
	return 0;
}

int im_tree_get_child(const struct im_tree *t, uint64_t dir, uint64_t index,
		      struct im_tree_child *ret)
{
	const struct im_tree_inode *i = get_inode(t, dir);
	const struct im_tree_dirent *d;

	if (!i)
		return -ENOENT;
	if (i->type != IM_ENTRY_DIR)
		return -ENOTDIR;
	if (index >= i->child_count)
		return -ENOENT;

	d = &t->dirents[i->child_first + index];
	*ret = (struct im_tree_child){
		.name = t->names + d->name_off,
		.name_len = d->name_len,
		.ino = d->ino,
		.type = (enum im_entry_type)t->inodes[d->ino].type,
	};
	return 0;
}
