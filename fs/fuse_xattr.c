/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Extended attributes: exactly the SCHILY.xattr records of the entry that
 * gives an inode its attributes, with binary values (NUL bytes included).
 * They follow the size-probe protocol. Size 0 returns the length, a buffer
 * too small fails with ERANGE, and a missing name fails with ENODATA.
 */
#include <errno.h>
#include <linux/limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fuse_ops.h"

/*
 * Overlay markers are never shown. The merged view has already applied
 * them, and when this mount is an overlayfs lower directory the kernel
 * would read them as its own markers or copy them up as ordinary xattrs.
 */
static bool xattr_hidden(const char *name)
{
	return strncmp(name, "trusted.overlay.", 16) == 0 ||
	       strncmp(name, "user.overlay.", 13) == 0;
}

/* Decode the entry of ino for its xattrs. */
static int entry_for_xattrs(const struct im_daemon_config *cfg, fuse_ino_t ino,
			    struct im_tree_node *node, struct im_entry *e)
{
	int r;

	r = im_tree_get_node(cfg->tree, ino, node);
	if (r < 0)
		return r;
	r = im_tree_get_entry(cfg->tree, ino, e);
	if (r < 0)
		return r;
	if (node->layer == IM_TREE_NO_LAYER)
		e->xattr_count = 0;
	else if (node->layer >= cfg->n_layers)
		return -EIO;
	return 0;
}

void im_ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	struct im_tree_node node;
	struct im_entry e;
	int r;

	r = entry_for_xattrs(cfg, ino, &node, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (xattr_hidden(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}

	for (uint32_t i = 0; i < e.xattr_count; i++) {
		struct im_xattr x;

		im_layer_index_xattr(cfg->layers[node.layer].index, e.xattr_first + i, &x);
		if (strcmp(x.name, name) != 0)
			continue;

		if (x.value_len > XATTR_SIZE_MAX)
			fuse_reply_err(req, E2BIG);
		else if (size == 0)
			fuse_reply_xattr(req, x.value_len);
		else if (size < x.value_len)
			fuse_reply_err(req, ERANGE);
		else
			fuse_reply_buf(req, (const char *)x.value, x.value_len);
		return;
	}
	fuse_reply_err(req, ENODATA);
}

/* Write the visible xattr names of e, each with its NUL, into out (or only
 * count them with out NULL). Return: the bytes needed. */
static size_t list_names(const struct im_layer_index *idx, const struct im_entry *e, char *out)
{
	size_t total = 0;

	for (uint32_t i = 0; i < e->xattr_count; i++) {
		struct im_xattr x;

		im_layer_index_xattr(idx, e->xattr_first + i, &x);
		if (xattr_hidden(x.name))
			continue;
		if (out)
			memcpy(out + total, x.name, (size_t)x.name_len + 1);
		total += (size_t)x.name_len + 1;
	}
	return total;
}

void im_ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	const struct im_layer_index *idx;
	struct im_tree_node node;
	struct im_entry e;
	size_t total;
	char *buf;
	int r;

	r = entry_for_xattrs(cfg, ino, &node, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (e.xattr_count == 0) {
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}

	idx = cfg->layers[node.layer].index;
	total = list_names(idx, &e, NULL);
	if (total > XATTR_LIST_MAX) {
		fuse_reply_err(req, E2BIG);
		return;
	}
	if (size == 0) {
		fuse_reply_xattr(req, total);
		return;
	}
	if (size < total) {
		fuse_reply_err(req, ERANGE);
		return;
	}

	buf = malloc(total ? total : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	list_names(idx, &e, buf);
	fuse_reply_buf(req, buf, total);
	free(buf);
}
