/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Application of one layer to the merged tree, following the OCI image
 * spec's changeset rules (image-spec layer.md) as containerd's tar applier
 * implements them.
 *
 * A layer is applied in two phases. First all its whiteouts and opaque
 * markers are resolved against the tree as it was before the layer, and
 * only then applied. So their order in the TOC never matters, and they never
 * touch what the layer itself adds. Then the other entries are applied in
 * TOC order, so a later duplicate wins:
 *   - a directory over a directory changes only the attributes,
 *   - any other entry over an existing name removes it (with its subtree)
 *     and creates a new inode,
 *   - a hardlink binds the name to the inode its target names right now.
 * Parents resolve through symlinks inside the image root, and missing ones
 * are created as implied directories. Whiteouts never create parents, so a
 * whiteout under a directory the same layer also whites out is a no-op.
 */
#include "index/tree_merge.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "index/path_internal.h"

/* Bytes of a path quoted in a log message, escapes and NUL included. */
#define QUOTE_SIZE 256

/* Quote an untrusted path for a log message (see im_path_quote()). */
static const char *quote(const char *p, size_t len, char out[QUOTE_SIZE])
{
	im_path_quote(p, len, out, QUOTE_SIZE);
	return out;
}

/* Split path at its last '/' into the parent part and the base name. */
static void split_path(const char *path, size_t len, size_t *dir_len,
		       const char **base, size_t *base_len)
{
	const char *slash = memrchr(path, '/', len);

	if (!slash) {
		*dir_len = 0;
		*base = path;
		*base_len = len;
		return;
	}
	*dir_len = (size_t)(slash - path);
	*base = slash + 1;
	*base_len = len - *dir_len - 1;
}

/* A removal planned in phase one: a name with its subtree, or a directory's children. */
struct removal {
	uint32_t name;
	bool children_only;
};

struct removals {
	struct removal *items;
	size_t n;
	size_t cap;
};

static int removals_push(struct removals *rs, uint32_t name, bool children_only)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct removal *p = reallocarray(rs->items, cap, sizeof(*p));

		if (!p)
			return -ENOMEM;
		rs->items = p;
		rs->cap = cap;
	}
	rs->items[rs->n++] = (struct removal){ .name = name, .children_only = children_only };
	return 0;
}

/*
 * Find what a whiteout or opaque marker removes in the tree before this
 * layer. A target that does not exist there (or sits below a file) is a
 * no-op, as is an opaque marker on a non-directory.
 */
static int plan_removal(struct im_merge *m, const struct im_entry *e, struct removals *rs)
{
	const char *base;
	size_t dir_len, base_len;
	uint32_t dir, name;
	int r;

	if (e->type == IM_ENTRY_OPAQUE) {
		r = im_merge_resolve_dir(m, e->path, e->path_len, false, &dir);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return 0;
		return removals_push(rs, dir, true);
	}

	split_path(e->path, e->path_len, &dir_len, &base, &base_len);
	r = im_merge_resolve_dir(m, e->path, dir_len, false, &dir);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return 0;

	name = im_merge_lookup(m, dir, base, base_len);
	if (name == IM_MERGE_NONE)
		return 0;
	return removals_push(rs, name, false);
}

static int apply_removals(struct im_merge *m, uint32_t layer)
{
	struct removals rs = { 0 };
	struct im_entry e;
	uint32_t count = im_layer_index_entry_count(m->layers[layer]);
	char q[QUOTE_SIZE];
	int r = 0;

	for (uint32_t i = 0; i < count; i++) {
		im_layer_index_entry(m->layers[layer], i, &e);
		if (e.type != IM_ENTRY_WHITEOUT && e.type != IM_ENTRY_OPAQUE)
			continue;

		if (e.type == IM_ENTRY_WHITEOUT && e.path_len == 0) {
			im_err("merge of layer %u/%zu failed: whiteout entry %u has an empty name "
			       "(a bare \".wh.\" in '%s'); the layer is invalid",
			       layer + 1, m->n_layers, i, quote(e.path, e.path_len, q));
			r = -EBADMSG;
			goto out;
		}

		r = plan_removal(m, &e, &rs);
		if (r < 0)
			goto out;
	}

	/* Names already removed with an ancestor are skipped by the remove calls. */
	for (size_t i = 0; i < rs.n; i++) {
		if (rs.items[i].children_only)
			im_merge_remove_children(m, rs.items[i].name);
		else
			im_merge_remove(m, rs.items[i].name);
	}
out:
	free(rs.items);
	return r;
}

/*
 * Find the inode a hardlink target names now: its parent resolved through
 * symlinks, its last component not followed (a hardlink to a symlink shares
 * the symlink). A missing target or a directory rejects the layer.
 */
static int resolve_hardlink(struct im_merge *m, uint32_t layer, uint32_t index,
			    const struct im_entry *e, uint32_t *ret)
{
	char q1[QUOTE_SIZE], q2[QUOTE_SIZE];
	const char *base;
	size_t dir_len, base_len;
	uint32_t dir, name = IM_MERGE_NONE;
	int r;

	split_path(e->link, e->link_len, &dir_len, &base, &base_len);
	r = im_merge_resolve_dir(m, e->link, dir_len, false, &dir);
	if (r == -ENOMEM)
		return r;
	if (r == 0 && base_len > 0)
		name = im_merge_lookup(m, dir, base, base_len);

	if (name == IM_MERGE_NONE) {
		im_err("merge of layer %u/%zu failed: hardlink '%s' (entry %u) names target '%s', "
		       "which does not exist in this or a lower layer",
		       layer + 1, m->n_layers, quote(e->path, e->path_len, q1), index,
		       quote(e->link, e->link_len, q2));
		return -EBADMSG;
	}
	if (im_merge_type(m, name) == IM_ENTRY_DIR) {
		im_err("merge of layer %u/%zu failed: hardlink '%s' (entry %u) names target '%s', "
		       "which is a directory",
		       layer + 1, m->n_layers, quote(e->path, e->path_len, q1), index,
		       quote(e->link, e->link_len, q2));
		return -EBADMSG;
	}

	*ret = m->names[name].inode;
	return 0;
}

/* Put one non-whiteout entry at base in directory dir. */
static int place_entry(struct im_merge *m, uint32_t layer, uint32_t index,
		       const struct im_entry *e, uint32_t dir, const char *base, size_t base_len)
{
	uint32_t existing = im_merge_lookup(m, dir, base, base_len);
	uint32_t inode, name;
	int r;

	if (e->type == IM_ENTRY_DIR && existing != IM_MERGE_NONE &&
	    im_merge_type(m, existing) == IM_ENTRY_DIR) {
		struct im_merge_inode *dir_inode = &m->inodes[m->names[existing].inode];

		dir_inode->layer = layer;
		dir_inode->entry = index;
		return 0;
	}

	/* Resolved before the old name goes, so a link to itself keeps its inode. */
	if (e->type == IM_ENTRY_HARDLINK)
		r = resolve_hardlink(m, layer, index, e, &inode);
	else
		r = im_merge_add_inode(m, layer, index, e->type, &inode);
	if (r < 0)
		return r;

	if (existing != IM_MERGE_NONE)
		im_merge_remove(m, existing);

	return im_merge_add_name(m, dir, base, base_len, inode, &name);
}

/*
 * Log a skipped entry. Only the first few are logged one by one, because a
 * crafted layer could hold millions. im_tree_build() logs the total.
 */
static void warn_skipped(struct im_merge *m, uint32_t layer, uint32_t index,
			 const struct im_entry *e, const char *reason)
{
	char q[QUOTE_SIZE];

	if (m->n_skipped++ >= IM_MERGE_SKIP_LOG_MAX)
		return;
	im_warn("layer %u/%zu: entry %u '%s' skipped: %s (a name must be 1 to %d bytes), "
		"so no path could reach it", layer + 1, m->n_layers, index,
		quote(e->path, e->path_len, q), reason, NAME_MAX);
}

static int apply_entry(struct im_merge *m, uint32_t layer, uint32_t index,
		       const struct im_entry *e)
{
	char q[QUOTE_SIZE];
	const char *base;
	size_t dir_len, base_len;
	uint32_t dir;
	int r;

	/* The compiler drops entries that name the root, so its attributes stay fixed. */
	if (e->path_len == 0)
		return 0;

	split_path(e->path, e->path_len, &dir_len, &base, &base_len);
	if (base_len == 0 || base_len > NAME_MAX) {
		warn_skipped(m, layer, index, e, "its name is empty or too long");
		return 0;
	}

	if (m->parent_path && m->parent_len == dir_len &&
	    memcmp(m->parent_path, e->path, dir_len) == 0) {
		dir = m->parent_dir;
		r = 0;
	} else {
		r = im_merge_resolve_dir(m, e->path, dir_len, true, &dir);
	}

	switch (r) {
	case 0:
		break;
	case -ENOMEM:
		return r;
	case -ENAMETOOLONG:
		warn_skipped(m, layer, index, e, "a parent component is too long");
		return 0;
	case -ELOOP:
		im_err("merge of layer %u/%zu failed: the parent of '%s' (entry %u) follows more than "
		       "%d symlinks", layer + 1, m->n_layers, quote(e->path, e->path_len, q), index,
		       IM_MERGE_MAX_LINK_HOPS);
		return -ELOOP;
	default:
		im_err("merge of layer %u/%zu failed: the parent of '%s' (entry %u) cannot be "
		       "resolved to a directory: %s", layer + 1, m->n_layers, quote(e->path, e->path_len, q),
		       index, strerror(-r));
		return -EBADMSG;
	}

	m->parent_path = e->path;
	m->parent_len = dir_len;
	m->parent_dir = dir;
	return place_entry(m, layer, index, e, dir, base, base_len);
}

int im_merge_apply_layer(struct im_merge *m, uint32_t layer)
{
	const struct im_layer_index *idx = m->layers[layer];
	uint32_t count = im_layer_index_entry_count(idx);
	char q[QUOTE_SIZE];
	struct im_entry e;
	int r;

	r = apply_removals(m, layer);
	if (r < 0)
		return r;

	for (uint32_t i = 0; i < count; i++) {
		im_layer_index_entry(idx, i, &e);

		switch (e.type) {
		case IM_ENTRY_WHITEOUT:
		case IM_ENTRY_OPAQUE:
			continue;
		case IM_ENTRY_REG:
		case IM_ENTRY_DIR:
		case IM_ENTRY_SYMLINK:
		case IM_ENTRY_HARDLINK:
		case IM_ENTRY_CHAR:
		case IM_ENTRY_BLOCK:
		case IM_ENTRY_FIFO:
			break;
		default:
			im_err("merge of layer %u/%zu failed: entry %u '%s' has unknown type %d",
			       layer + 1, m->n_layers, i, quote(e.path, e.path_len, q), (int)e.type);
			return -EBADMSG;
		}

		r = apply_entry(m, layer, i, &e);
		if (r < 0)
			return r;
	}
	return 0;
}
