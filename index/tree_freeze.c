/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Freezing the merged name table into the compact, immutable tree.
 *
 * Inode numbers are given breadth first from the root, with each
 * directory's children in name byte order. A hardlinked inode takes its
 * number from the first of its names met that way. The numbers therefore
 * depend only on the merged tree, never on hash order or on how the names
 * were added, so two mounts of one image agree.
 *
 * The result is three arrays (inodes, directory entries, one string pool
 * for the names), about 40 bytes plus the name per entry, and no pointer
 * per node.
 */
#include "index/tree_merge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct freezer {
	struct im_merge *m;
	struct im_tree *t;
	uint32_t *queue;        /* name ids of directories, in numbering order */
	uint32_t queue_len;
	uint32_t *children;     /* scratch: the live children of one directory */
	size_t names_cap;
};

static int compare_names(const void *a, const void *b, void *arg)
{
	const struct im_merge *m = arg;
	const struct im_merge_name *x = &m->names[*(const uint32_t *)a];
	const struct im_merge_name *y = &m->names[*(const uint32_t *)b];
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);

	if (c != 0)
		return c;
	return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* Copy a name into the pool with a NUL. Return: its offset, or -E2BIG/-ENOMEM. */
static int64_t pool_add(struct freezer *f, const char *name, size_t len)
{
	struct im_tree *t = f->t;
	size_t need = t->names_len + len + 1;
	int64_t off = (int64_t)t->names_len;

	if (need > UINT32_MAX)
		return -E2BIG;

	if (need > f->names_cap) {
		size_t cap = f->names_cap ? f->names_cap * 2 : 65536;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(t->names, cap);
		if (!p)
			return -ENOMEM;
		t->names = p;
		f->names_cap = cap;
	}

	memcpy(t->names + t->names_len, name, len);
	t->names[t->names_len + len] = '\0';
	t->names_len = need;
	return off;
}

/* Number the inode of name on first sight. Return: its inode number. */
static uint32_t number_inode(struct freezer *f, uint32_t name, uint32_t parent_ino)
{
	struct im_merge_inode *mi = &f->m->inodes[f->m->names[name].inode];
	struct im_tree_inode *ti;
	struct im_entry e;

	if (mi->ino != 0)
		return mi->ino;

	mi->ino = ++f->t->n_inodes;
	ti = &f->t->inodes[mi->ino];
	memset(ti, 0, sizeof(*ti));
	ti->layer = mi->layer;
	ti->entry = mi->entry;
	ti->parent = parent_ino;
	ti->type = (uint8_t)mi->type;
	ti->nlink = mi->type == IM_ENTRY_DIR ? 2 : 0;

	if (mi->type == IM_ENTRY_REG) {
		im_layer_index_entry(f->m->layers[mi->layer], mi->entry, &e);
		f->t->total_size += e.size;
	}
	return mi->ino;
}

/* Emit the sorted children of directory dir and number their inodes. */
static int freeze_directory(struct freezer *f, uint32_t dir)
{
	struct im_merge *m = f->m;
	struct im_tree *t = f->t;
	uint32_t dir_ino = m->inodes[m->names[dir].inode].ino;
	struct im_tree_inode *dir_node = &t->inodes[dir_ino];
	uint32_t n = 0;

	for (uint32_t c = m->names[dir].first_child; c != IM_MERGE_NONE; c = m->names[c].next_sibling)
		f->children[n++] = c;
	qsort_r(f->children, n, sizeof(*f->children), compare_names, m);

	dir_node->child_first = t->n_dirents;
	dir_node->child_count = n;

	for (uint32_t i = 0; i < n; i++) {
		const struct im_merge_name *name = &m->names[f->children[i]];
		struct im_tree_dirent *d = &t->dirents[t->n_dirents++];
		int64_t off = pool_add(f, name->name, name->name_len);
		uint32_t ino;

		if (off < 0)
			return (int)off;

		ino = number_inode(f, f->children[i], dir_ino);
		d->name_off = (uint32_t)off;
		d->name_len = name->name_len;
		d->ino = ino;

		if (t->inodes[ino].type == IM_ENTRY_DIR) {
			t->inodes[dir_ino].nlink++;
			f->queue[f->queue_len++] = f->children[i];
		} else {
			t->inodes[ino].nlink++;
		}
	}
	return 0;
}

static int freeze(struct freezer *f)
{
	struct im_merge *m = f->m;
	struct im_tree *t = f->t;
	int r;

	/* Upper bounds: every live name is one dirent (the root excepted). */
	t->inodes = calloc((size_t)m->n_live + 1, sizeof(*t->inodes));
	t->dirents = calloc(m->n_live, sizeof(*t->dirents));
	f->queue = malloc((size_t)m->n_live * sizeof(*f->queue));
	f->children = malloc((size_t)m->n_live * sizeof(*f->children));
	if (!t->inodes || !t->dirents || !f->queue || !f->children)
		return -ENOMEM;

	number_inode(f, IM_MERGE_ROOT, IM_TREE_ROOT_INO);
	f->queue[f->queue_len++] = IM_MERGE_ROOT;

	for (uint32_t head = 0; head < f->queue_len; head++) {
		r = freeze_directory(f, f->queue[head]);
		if (r < 0)
			return r;
	}
	return 0;
}

int im_merge_freeze(struct im_merge *m, struct im_tree **ret)
{
	struct freezer f = { .m = m };
	struct im_tree *t;
	int r;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	f.t = t;

	t->n_layers = m->n_layers;
	t->layers = calloc(m->n_layers ? m->n_layers : 1, sizeof(*t->layers));
	if (!t->layers) {
		r = -ENOMEM;
		goto fail;
	}
	memcpy(t->layers, m->layers, m->n_layers * sizeof(*t->layers));

	r = freeze(&f);
	if (r < 0)
		goto fail;

	free(f.queue);
	free(f.children);
	*ret = t;
	return 0;
fail:
	free(f.queue);
	free(f.children);
	im_tree_free(t);
	return r;
}
