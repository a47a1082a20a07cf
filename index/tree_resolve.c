/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Root-scoped path resolution for the union merge, the way containerd's
 * applier resolves the parent of each tar entry. Symlinks met on the way
 * are followed, but an absolute target starts again at the image root and
 * ".." never climbs above it, so no entry can land outside the image. Only
 * the in-memory tree is consulted, never a host path.
 *
 * The walk keeps a stack of the directories entered so far. A component
 * that does not exist is pushed as pending, and later components below it
 * are handled by name only (".." pops it), which is how a walk through a
 * missing directory behaves in a root-scoped join. Pending components are
 * created, if asked, only at the end.
 */
#include "index/tree_merge.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Path text being consumed: the original path, then one per symlink followed. */
struct frame {
	const char *text;
	size_t len;
	size_t pos;
};

struct step {
	uint32_t name;          /* name id, or IM_MERGE_NONE while pending */
	const char *pending;    /* name bytes of a pending component */
	size_t pending_len;
};

struct walk {
	struct frame frames[IM_MERGE_MAX_LINK_HOPS + 1];
	unsigned n_frames;
	unsigned hops;
	struct step *steps;
	size_t n_steps;
	size_t cap_steps;
};

/* Take the next non-empty component. Return: false once every frame is consumed. */
static bool next_component(struct walk *w, const char **ret, size_t *ret_len)
{
	while (w->n_frames > 0) {
		struct frame *f = &w->frames[w->n_frames - 1];
		const char *start, *slash;
		size_t left;

		if (f->pos >= f->len) {
			w->n_frames--;
			continue;
		}

		start = f->text + f->pos;
		left = f->len - f->pos;
		slash = memchr(start, '/', left);
		if (slash) {
			*ret_len = (size_t)(slash - start);
			f->pos += *ret_len + 1;
		} else {
			*ret_len = left;
			f->pos = f->len;
		}

		if (*ret_len == 0)
			continue;
		*ret = start;
		return true;
	}
	return false;
}

static int push_step(struct walk *w, uint32_t name, const char *pending, size_t pending_len)
{
	if (w->n_steps == w->cap_steps) {
		size_t cap = w->cap_steps ? w->cap_steps * 2 : 32;
		struct step *p = reallocarray(w->steps, cap, sizeof(*p));

		if (!p)
			return -ENOMEM;
		w->steps = p;
		w->cap_steps = cap;
	}

	w->steps[w->n_steps++] = (struct step){
		.name = name,
		.pending = pending,
		.pending_len = pending_len,
	};
	return 0;
}

/* Continue the walk inside the target of symlink name. */
static int follow_link(struct im_merge *m, struct walk *w, uint32_t name)
{
	const struct im_merge_inode *inode = &m->inodes[m->names[name].inode];
	struct im_entry e;

	if (w->hops >= IM_MERGE_MAX_LINK_HOPS)
		return -ELOOP;
	w->hops++;

	im_layer_index_entry(m->layers[inode->layer], inode->entry, &e);
	if (e.link_len == 0)
		return -ENOENT;

	/* An absolute target is relative to the image root. */
	if (e.link[0] == '/')
		w->n_steps = 1;

	w->frames[w->n_frames++] = (struct frame){ .text = e.link, .len = e.link_len };
	return 0;
}

/* One component: descend, follow a symlink, or record it as pending. */
static int walk_component(struct im_merge *m, struct walk *w, const char *c, size_t len)
{
	const struct step *top = &w->steps[w->n_steps - 1];
	uint32_t child;

	if (len == 1 && c[0] == '.')
		return 0;
	if (len == 2 && c[0] == '.' && c[1] == '.') {
		if (w->n_steps > 1)
			w->n_steps--;
		return 0;
	}
	if (len > NAME_MAX)
		return -ENAMETOOLONG;

	if (top->name == IM_MERGE_NONE)
		return push_step(w, IM_MERGE_NONE, c, len);

	child = im_merge_lookup(m, top->name, c, len);
	if (child == IM_MERGE_NONE)
		return push_step(w, IM_MERGE_NONE, c, len);

	switch (im_merge_type(m, child)) {
	case IM_ENTRY_DIR:
		return push_step(w, child, NULL, 0);
	case IM_ENTRY_SYMLINK:
		return follow_link(m, w, child);
	default:
		return -ENOTDIR;
	}
}

/* Make the pending steps real directories, top down. */
static int create_pending(struct im_merge *m, struct walk *w)
{
	for (size_t i = 1; i < w->n_steps; i++) {
		struct step *s = &w->steps[i];
		uint32_t inode;
		int r;

		if (s->name != IM_MERGE_NONE)
			continue;

		r = im_merge_add_inode(m, IM_TREE_NO_LAYER, 0, IM_ENTRY_DIR, &inode);
		if (r < 0)
			return r;

		r = im_merge_add_name(m, w->steps[i - 1].name, s->pending, s->pending_len,
				      inode, &s->name);
		if (r < 0)
			return r;
	}
	return 0;
}

int im_merge_resolve_dir(struct im_merge *m, const char *path, size_t len, bool create,
			 uint32_t *ret)
{
	struct walk w = {
		.frames[0] = { .text = path, .len = len },
		.n_frames = 1,
	};
	const char *c;
	size_t c_len;
	int r;

	r = push_step(&w, IM_MERGE_ROOT, NULL, 0);
	if (r < 0)
		goto out;

	while (next_component(&w, &c, &c_len)) {
		r = walk_component(m, &w, c, c_len);
		if (r < 0)
			goto out;
	}

	if (w.steps[w.n_steps - 1].name == IM_MERGE_NONE) {
		if (!create) {
			r = -ENOENT;
			goto out;
		}
		r = create_pending(m, &w);
		if (r < 0)
			goto out;
	}

	*ret = w.steps[w.n_steps - 1].name;
	r = 0;
out:
	free(w.steps);
	return r;
}
