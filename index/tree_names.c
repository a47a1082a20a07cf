/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The name table of the union merge: name and inode records in growable
 * arrays, a chained hash map from (directory, name bytes) to a name, and
 * removal of whole subtrees.
 *
 * Names come from untrusted layers, so the hash is seeded with random bytes
 * per merge: a layer cannot be crafted to put every name in one bucket. The
 * seed only affects speed, because the merged tree never depends on hash
 * order.
 */
#include "index/tree_merge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#define INITIAL_BUCKETS 1024u
/* Ids are uint32_t and IM_MERGE_NONE is reserved. */
#define MAX_RECORDS (UINT32_MAX - 1u)

static int grow(void **array, uint32_t *cap, uint32_t needed, size_t elem_size)
{
	uint64_t new_cap;
	void *p;

	if (needed <= *cap)
		return 0;
	if (needed > MAX_RECORDS)
		return -E2BIG;

	new_cap = *cap ? (uint64_t)*cap * 2 : 256;
	if (new_cap < needed)
		new_cap = needed;
	if (new_cap > MAX_RECORDS)
		new_cap = MAX_RECORDS;

	p = reallocarray(*array, new_cap, elem_size);
	if (!p)
		return -ENOMEM;

	*array = p;
	*cap = (uint32_t)new_cap;
	return 0;
}

static uint32_t hash_name(const struct im_merge *m, uint32_t dir, const char *name, size_t len)
{
	return (uint32_t)XXH3_64bits_withSeed(name, len, m->seed ^ ((uint64_t)dir * 0x9e3779b97f4a7c15ull));
}

static void bucket_insert(struct im_merge *m, uint32_t id)
{
	uint32_t b = m->names[id].hash & (m->n_buckets - 1);

	m->names[id].hash_next = m->buckets[b];
	m->buckets[b] = id;
}

static void bucket_unlink(struct im_merge *m, uint32_t id)
{
	uint32_t *link = &m->buckets[m->names[id].hash & (m->n_buckets - 1)];

	while (*link != IM_MERGE_NONE) {
		if (*link == id) {
			*link = m->names[id].hash_next;
			return;
		}
		link = &m->names[*link].hash_next;
	}
}

/* Double the bucket count once the chains average more than one name. */
static int maybe_rehash(struct im_merge *m)
{
	uint32_t n;
	uint32_t *b;

	if (m->n_live <= m->n_buckets || m->n_buckets >= (1u << 31))
		return 0;

	n = m->n_buckets * 2;
	b = malloc((size_t)n * sizeof(*b));
	if (!b)
		return -ENOMEM;
	memset(b, 0xff, (size_t)n * sizeof(*b));

	free(m->buckets);
	m->buckets = b;
	m->n_buckets = n;

	for (uint32_t id = 1; id < m->n_names; id++)
		if (m->names[id].alive)
			bucket_insert(m, id);
	return 0;
}

int im_merge_init(struct im_merge *m, struct im_layer_index *const *layers, size_t n)
{
	struct im_merge_name *root;
	uint32_t ino;
	int r;

	memset(m, 0, sizeof(*m));
	m->layers = layers;
	m->n_layers = n;

	/* A failed getrandom() leaves a fixed seed: slower on crafted input, never wrong. */
	if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) != sizeof(m->seed))
		m->seed = 0x5bd1e9955bd1e995ull;

	m->n_buckets = INITIAL_BUCKETS;
	m->buckets = malloc(INITIAL_BUCKETS * sizeof(*m->buckets));
	if (!m->buckets)
		return -ENOMEM;
	memset(m->buckets, 0xff, INITIAL_BUCKETS * sizeof(*m->buckets));

	r = im_merge_add_inode(m, IM_TREE_NO_LAYER, 0, IM_ENTRY_DIR, &ino);
	if (r < 0)
		return r;

	r = grow((void **)&m->names, &m->cap_names, 1, sizeof(*m->names));
	if (r < 0)
		return r;

	/* The root is in no bucket: nothing looks it up by name. */
	root = &m->names[IM_MERGE_ROOT];
	memset(root, 0, sizeof(*root));
	root->name = "";
	root->parent = IM_MERGE_ROOT;
	root->inode = ino;
	root->hash_next = IM_MERGE_NONE;
	root->first_child = IM_MERGE_NONE;
	root->next_sibling = IM_MERGE_NONE;
	root->prev_sibling = IM_MERGE_NONE;
	root->alive = true;
	m->n_names = 1;
	m->n_live = 1;
	return 0;
}

void im_merge_release(struct im_merge *m)
{
	free(m->names);
	free(m->inodes);
	free(m->buckets);
	memset(m, 0, sizeof(*m));
}

uint32_t im_merge_lookup(const struct im_merge *m, uint32_t dir, const char *name, size_t len)
{
	uint32_t h = hash_name(m, dir, name, len);

	for (uint32_t id = m->buckets[h & (m->n_buckets - 1)]; id != IM_MERGE_NONE;
	     id = m->names[id].hash_next) {
		const struct im_merge_name *n = &m->names[id];

		if (n->hash == h && n->parent == dir && n->name_len == len &&
		    memcmp(n->name, name, len) == 0)
			return id;
	}
	return IM_MERGE_NONE;
}

int im_merge_add_inode(struct im_merge *m, uint32_t layer, uint32_t entry,
		       enum im_entry_type type, uint32_t *ret)
{
	struct im_merge_inode *inode;
	int r;

	r = grow((void **)&m->inodes, &m->cap_inodes, m->n_inodes + 1, sizeof(*m->inodes));
	if (r < 0)
		return r;

	inode = &m->inodes[m->n_inodes];
	inode->layer = layer;
	inode->entry = entry;
	inode->type = type;
	inode->ino = 0;
	*ret = m->n_inodes++;
	return 0;
}

int im_merge_add_name(struct im_merge *m, uint32_t dir, const char *name, size_t len,
		      uint32_t inode, uint32_t *ret)
{
	struct im_merge_name *n, *parent;
	uint32_t id;
	int r;

	if (len > UINT32_MAX)
		return -E2BIG;

	r = grow((void **)&m->names, &m->cap_names, m->n_names + 1, sizeof(*m->names));
	if (r < 0)
		return r;

	id = m->n_names++;
	n = &m->names[id];
	n->name = name;
	n->name_len = (uint32_t)len;
	n->hash = hash_name(m, dir, name, len);
	n->parent = dir;
	n->inode = inode;
	n->first_child = IM_MERGE_NONE;
	n->alive = true;

	parent = &m->names[dir];
	n->prev_sibling = IM_MERGE_NONE;
	n->next_sibling = parent->first_child;
	if (parent->first_child != IM_MERGE_NONE)
		m->names[parent->first_child].prev_sibling = id;
	parent->first_child = id;

	bucket_insert(m, id);
	m->n_live++;
	*ret = id;

	/* The name is in place either way, and a failed rehash only keeps chains long. */
	(void)maybe_rehash(m);
	return 0;
}

/* Unlink one name that has no live children. */
static void kill_leaf(struct im_merge *m, uint32_t id)
{
	struct im_merge_name *n = &m->names[id];
	struct im_merge_name *parent = &m->names[n->parent];

	if (n->prev_sibling != IM_MERGE_NONE)
		m->names[n->prev_sibling].next_sibling = n->next_sibling;
	else
		parent->first_child = n->next_sibling;
	if (n->next_sibling != IM_MERGE_NONE)
		m->names[n->next_sibling].prev_sibling = n->prev_sibling;

	bucket_unlink(m, id);
	n->alive = false;
	m->n_live--;
}

/*
 * Post-order removal without a stack: descend to a leaf, remove it, go back
 * to its parent. Each name is descended into once and removed once, so a
 * subtree of k names costs O(k) and the depth of the tree does not matter.
 */
static void remove_below(struct im_merge *m, uint32_t top, bool remove_top)
{
	uint32_t cur = top;

	for (;;) {
		uint32_t child = m->names[cur].first_child;
		uint32_t parent;

		if (child != IM_MERGE_NONE) {
			cur = child;
			continue;
		}
		if (cur == top)
			break;

		parent = m->names[cur].parent;
		kill_leaf(m, cur);
		cur = parent;
	}

	if (remove_top && top != IM_MERGE_ROOT)
		kill_leaf(m, top);
}

void im_merge_remove(struct im_merge *m, uint32_t name)
{
	if (!m->names[name].alive)
		return;
	m->parent_path = NULL;
	remove_below(m, name, true);
}

void im_merge_remove_children(struct im_merge *m, uint32_t dir)
{
	if (!m->names[dir].alive)
		return;
	m->parent_path = NULL;
	remove_below(m, dir, false);
}
