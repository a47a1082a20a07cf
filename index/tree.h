/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The merged tree: every layer of an image stacked into one immutable view,
 * built in memory at mount time following the OCI changeset rules
 * (whiteouts, opaque directories, later layers win, hardlinks share one
 * inode). Inode numbers are indexes into the tree, so they are stable for
 * the life of the mount and need no lock to look up. Two builds from the
 * same layers give the same numbers: the root is 1 and the others follow a
 * breadth-first walk with each directory's children in name order.
 *
 * Once built the tree is never modified, so every accessor below may be
 * called from any number of threads at once.
 */
#ifndef IM_TREE_H
#define IM_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "index/layer_index.h"

struct im_tree;

/* Inode number of the root (the same as FUSE_ROOT_ID). */
#define IM_TREE_ROOT_INO 1u

/* Layer number of inodes that have no entry: the root and implied parents. */
#define IM_TREE_NO_LAYER UINT32_MAX

/*
 * Merge layers[0..n) (bottom first). The tree borrows the indexes, which
 * must outlive it, and copies the array.
 * Return: 0, -EBADMSG (a layer the rules cannot apply, logged with the
 * path), -ELOOP (a parent path that follows more than 40 symlinks, logged),
 * -ENOMEM, -E2BIG (more than 2^32 - 2 names or inodes).
 */
int im_tree_build(struct im_layer_index *const *layers, size_t n,
		  struct im_tree **ret);
void im_tree_free(struct im_tree *t);

/* Number of inodes, the root included. */
uint64_t im_tree_inode_count(const struct im_tree *t);

/* Sum of the sizes of the regular files, each hardlinked file counted once. */
uint64_t im_tree_total_size(const struct im_tree *t);

struct im_tree_node {
	enum im_entry_type type;  /* never HARDLINK, WHITEOUT or OPAQUE */
	uint32_t layer;           /* index into the layers, or IM_TREE_NO_LAYER */
	uint32_t entry;           /* entry in that layer that gives the attributes
				     and, for a regular file, the chunks */
	uint32_t nlink;           /* names of a file, or 2 + subdirectories of a directory */
	uint64_t parent;          /* directory of the first name (the root for the root) */
	uint64_t child_count;     /* directories only, 0 otherwise */
};

/* Return: 0, or -ENOENT when ino is not an inode of the tree. */
int im_tree_get_node(const struct im_tree *t, uint64_t ino, struct im_tree_node *ret);

/*
 * Decode the entry that gives ino its attributes. The root and implied
 * directories get a synthesized directory entry: mode 0755, uid and gid 0,
 * mtime 0, no xattrs, path "". Pointers in *ret live as long as the indexes.
 * Return: 0 or -ENOENT.
 */
int im_tree_get_entry(const struct im_tree *t, uint64_t ino, struct im_entry *ret);

/*
 * Find name (len bytes, any bytes but '/' and NUL) in directory dir by
 * binary search, following no symlink.
 * Return: 0 with the inode number in *ret, -ENOENT, or -ENOTDIR when dir is
 * not a directory.
 */
int im_tree_lookup(const struct im_tree *t, uint64_t dir, const char *name, size_t len,
		   uint64_t *ret);

/*
 * Walk a "/"-separated path from the root with im_tree_lookup(), following
 * no symlinks ("", "/" and "." components name the current directory).
 * Return: 0 with the inode number in *ret, -ENOENT or -ENOTDIR.
 */
int im_tree_lookup_path(const struct im_tree *t, const char *path, uint64_t *ret);

struct im_tree_child {
	const char *name;         /* NUL-terminated, owned by the tree */
	size_t name_len;
	uint64_t ino;
	enum im_entry_type type;
};

/*
 * Child number index (0 .. child_count - 1, in name byte order) of dir.
 * Return: 0, -ENOENT past the end or for an unknown dir, -ENOTDIR.
 */
int im_tree_get_child(const struct im_tree *t, uint64_t dir, uint64_t index,
		      struct im_tree_child *ret);

#endif
