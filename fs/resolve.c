/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Symlink-following lookup in the merged tree. The text still to walk is
 * kept in one buffer. Following a link replaces the consumed part with the
 * link target, so "a/link/b" with link -> "x/y" continues as "x/y/b" from
 * the directory that contains the link. Directories have exactly one name in
 * the tree, so a directory's parent inode is what ".." means, and the walk
 * needs no stack of the directories entered.
 */
#include "fs/resolve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Maximum length of the walk's text once link targets are spliced in.
 * Forty hops of PATH_MAX-long targets fit several times over. */
#define WALK_MAX_LENGTH (1u << 20)

struct walk {
	char *text;           /* remaining path, NUL-terminated */
	size_t pos;           /* next byte of text to consume */
	uint64_t dir;         /* directory the next component is looked up in */
	unsigned hops;
};

/*
 * Replace the consumed part of the walk's text with target, keeping what
 * follows pos, so the walk continues inside the target. The rest is empty
 * or starts with "/", so no separator is added.
 */
static int splice_target(struct walk *w, const char *target, size_t target_len)
{
	size_t rest_len = strlen(w->text + w->pos);
	size_t total = target_len + rest_len;
	char *text;

	if (total >= WALK_MAX_LENGTH)
		return -ENAMETOOLONG;

	text = malloc(total + 1);
	if (!text)
		return -ENOMEM;
	memcpy(text, target, target_len);
	memcpy(text + target_len, w->text + w->pos, rest_len + 1);

	free(w->text);
	w->text = text;
	w->pos = 0;
	return 0;
}

/* Follow the symlink ino found in w->dir. */
static int follow_link(const struct im_tree *t, struct walk *w, uint64_t ino)
{
	struct im_entry e;
	int r;

	if (++w->hops > IM_RESOLVE_MAX_HOPS)
		return -ELOOP;

	r = im_tree_get_entry(t, ino, &e);
	if (r < 0)
		return r;
	/* Linux fails a walk through an empty link target with ENOENT. */
	if (e.link_len == 0)
		return -ENOENT;

	if (e.link[0] == '/')
		w->dir = IM_TREE_ROOT_INO;
	return splice_target(w, e.link, e.link_len);
}

/* Step into component name (len bytes) of w->dir. Return: 0 when the walk
 * goes on, 1 when the component is the result (stored in *ret). */
static int walk_component(const struct im_tree *t, struct walk *w, const char *name,
			  size_t len, bool last, bool follow_last, uint64_t *ret)
{
	struct im_tree_node node;
	uint64_t ino;
	int r;

	if (len == 1 && name[0] == '.')
		return 0;
	if (len == 2 && name[0] == '.' && name[1] == '.') {
		r = im_tree_get_node(t, w->dir, &node);
		if (r < 0)
			return r;
		w->dir = node.parent;
		return 0;
	}

	r = im_tree_lookup(t, w->dir, name, len, &ino);
	if (r < 0)
		return r;
	r = im_tree_get_node(t, ino, &node);
	if (r < 0)
		return r;

	if (node.type == IM_ENTRY_SYMLINK && (!last || follow_last))
		return follow_link(t, w, ino);
	if (node.type == IM_ENTRY_DIR) {
		w->dir = ino;
		return 0;
	}
	if (!last)
		return -ENOTDIR;
	*ret = ino;
	return 1;
}

int im_resolve_path(const struct im_tree *t, const char *path, bool follow_last,
		    uint64_t *ret)
{
	struct walk w = { .dir = IM_TREE_ROOT_INO };
	int r = 0;

	if (strlen(path) >= WALK_MAX_LENGTH)
		return -ENAMETOOLONG;
	w.text = strdup(path);
	if (!w.text)
		return -ENOMEM;

	for (;;) {
		const char *name, *slash;
		size_t len;
		bool last;

		while (w.text[w.pos] == '/')
			w.pos++;
		if (w.text[w.pos] == '\0') {
			*ret = w.dir;
			r = 0;
			break;
		}

		name = w.text + w.pos;
		slash = strchr(name, '/');
		len = slash ? (size_t)(slash - name) : strlen(name);
		/* A trailing "/" makes the component a directory lookup, so
		 * it is not the last one: a symlink there is followed and a
		 * file there fails with ENOTDIR, as in the kernel. */
		last = slash == NULL;
		w.pos += len;

		r = walk_component(t, &w, name, len, last, follow_last, ret);
		if (r != 0) {
			if (r > 0)
				r = 0;
			break;
		}
	}

	free(w.text);
	return r;
}
