/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to index/tree*.c: the mutable name table that the union merge
 * works on, and the compact tree it is frozen into.
 *
 * During the merge every name in a directory is a "name" record (a dentry)
 * that points at an "inode" record. Hardlinks are several names sharing one
 * inode. Names are found through a hash map keyed by (directory, bytes).
 * Records are never reused or freed until the merge ends: a removed name is
 * only marked dead, so ids taken before a removal stay meaningful, which the
 * two-phase layer application relies on.
 *
 * Name strings are borrowed from the layer indexes (entry paths and symlink
 * targets), are not NUL-terminated, and stay valid as long as the indexes.
 */
#ifndef IM_TREE_MERGE_H
#define IM_TREE_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/layer_index.h"
#include "index/tree.h"

#define IM_MERGE_NONE UINT32_MAX

/* Linux MAXSYMLINKS: symlinks followed while resolving one path. */
#define IM_MERGE_MAX_LINK_HOPS 40

/* Skipped entries logged one by one. The rest are only counted. */
#define IM_MERGE_SKIP_LOG_MAX 10

/* One name in a directory. */
struct im_merge_name {
	const char *name;       /* borrowed, name_len bytes, no NUL needed */
	uint32_t name_len;
	uint32_t hash;
	uint32_t parent;        /* name id of the directory (the root for the root) */
	uint32_t inode;
	uint32_t hash_next;     /* chain in the bucket, IM_MERGE_NONE at the end */
	uint32_t first_child;   /* directories: doubly linked list of live children */
	uint32_t next_sibling;
	uint32_t prev_sibling;
	bool alive;
};

/* One file object, which several names share after hardlinks. */
struct im_merge_inode {
	uint32_t layer;         /* IM_TREE_NO_LAYER for the root and implied directories */
	uint32_t entry;
	enum im_entry_type type; /* never HARDLINK, WHITEOUT or OPAQUE */
	uint32_t ino;           /* number given by im_merge_freeze(), 0 before */
};

struct im_merge {
	struct im_layer_index *const *layers;
	size_t n_layers;

	struct im_merge_name *names;    /* id 0 is the root */
	uint32_t n_names;
	uint32_t cap_names;
	uint32_t n_live;                /* names not removed, the root included */

	struct im_merge_inode *inodes;  /* id 0 is the root */
	uint32_t n_inodes;
	uint32_t cap_inodes;

	uint32_t *buckets;              /* power-of-two count */
	uint32_t n_buckets;
	uint64_t seed;                  /* random, so crafted names cannot force collisions */

	uint64_t n_skipped;             /* entries no path could reach, over all layers */

	/*
	 * The parent path resolved last and its directory. Consecutive TOC
	 * entries mostly share a parent, so this saves most walks. Adding names
	 * cannot change where an already resolved path leads, but a removal
	 * can, so every removal clears it.
	 */
	const char *parent_path;        /* borrowed, NULL when not valid */
	size_t parent_len;
	uint32_t parent_dir;
};

#define IM_MERGE_ROOT 0u

/* Set up an empty tree holding only the root. Return: 0 or -ENOMEM. */
int im_merge_init(struct im_merge *m, struct im_layer_index *const *layers, size_t n);
void im_merge_release(struct im_merge *m);

/* Name id of name (len bytes) in directory dir, or IM_MERGE_NONE. */
uint32_t im_merge_lookup(const struct im_merge *m, uint32_t dir, const char *name, size_t len);

/* Add a name for inode in dir, which must not contain name yet.
 * Return: 0 or -ENOMEM/-E2BIG. */
int im_merge_add_name(struct im_merge *m, uint32_t dir, const char *name, size_t len,
		      uint32_t inode, uint32_t *ret);

/* Create an inode record. Return: 0 or -ENOMEM/-E2BIG. */
int im_merge_add_inode(struct im_merge *m, uint32_t layer, uint32_t entry,
		       enum im_entry_type type, uint32_t *ret);

/* Remove a name, and every name below it when it is a directory. Never fails. */
void im_merge_remove(struct im_merge *m, uint32_t name);

/* Remove every child of directory dir (an opaque marker). Never fails. */
void im_merge_remove_children(struct im_merge *m, uint32_t dir);

static inline enum im_entry_type im_merge_type(const struct im_merge *m, uint32_t name)
{
	return m->inodes[m->names[name].inode].type;
}

/*
 * Resolve every component of path (len bytes, a cleaned entry path or a raw
 * symlink target) from the root, following symlinks inside the image root:
 * absolute targets start again at the root and ".." stops there. With
 * create, missing directories are made as implied directories (0755, 0:0,
 * mtime 0) once the walk is complete, so a ".." after a missing component
 * does not leave an extra directory behind.
 * Return: 0 with the name id of a directory in *ret, -ENOENT (missing and
 * not create, or an empty symlink target), -ENOTDIR (a component is neither
 * a directory nor a symlink), -ELOOP (more than IM_MERGE_MAX_LINK_HOPS
 * symlinks), -ENAMETOOLONG (a component longer than NAME_MAX), -ENOMEM.
 */
int im_merge_resolve_dir(struct im_merge *m, const char *path, size_t len, bool create,
			 uint32_t *ret);

/* Apply layer number layer (an index into m->layers) on top of the tree.
 * Return: 0, -EBADMSG or -ELOOP (logged with the paths), -ENOMEM. */
int im_merge_apply_layer(struct im_merge *m, uint32_t layer);

/* Give the live tree its final inode numbers and compact form.
 * Return: 0 or -ENOMEM/-E2BIG. */
int im_merge_freeze(struct im_merge *m, struct im_tree **ret);

/*
 * The frozen tree. Inode numbers are indexes into inodes[] (0 is unused),
 * and a directory's children are dirents[child_first .. child_first +
 * child_count), sorted by name bytes.
 */
struct im_tree_inode {
	uint32_t layer;
	uint32_t entry;
	uint32_t parent;
	uint32_t nlink;
	uint32_t child_first;
	uint32_t child_count;
	uint8_t type;           /* enum im_entry_type */
};

struct im_tree_dirent {
	uint32_t name_off;      /* into names[], NUL-terminated */
	uint32_t name_len;
	uint32_t ino;
};

struct im_tree {
	struct im_layer_index **layers; /* copy of the caller's array, indexes borrowed */
	size_t n_layers;
	struct im_tree_inode *inodes;   /* 1 .. n_inodes */
	uint32_t n_inodes;
	struct im_tree_dirent *dirents;
	uint32_t n_dirents;
	char *names;
	size_t names_len;
	uint64_t total_size;
};

#endif
