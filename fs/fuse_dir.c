/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Directory listings: opendir, readdir, readdirplus and releasedir.
 *
 * Offset 0 is ".", 1 is "..", and 2 + i is child i in name byte order. So
 * an offset handed to the kernel stays valid for the life of the mount, and
 * the kernel may cache the listing (cache_readdir).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fuse_ops.h"

/* Largest readdir buffer allocated, whatever size the request names. */
#define READDIR_BUFFER_MAX (1u << 20)

/* Set once in init, before the first request, and only read afterwards. */
static bool zero_message_opendir;

void im_fuse_dir_init(struct fuse_conn_info *conn)
{
	zero_message_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
}

void im_ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	struct im_tree_node node;
	int r;

	r = im_tree_get_node(cfg->tree, ino, &node);
	if (r == 0 && node.type != IM_ENTRY_DIR)
		r = -ENOTDIR;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}

	/* Listings keep no per-open state. A kernel that supports it takes
	 * ENOSYS as a request to open directories itself from now on, with
	 * the listing cached and kept. That saves an OPENDIR and a RELEASEDIR
	 * round trip per directory in a walk of the tree. */
	if (zero_message_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}

	/* Listings never change, so the kernel may keep and reuse them. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/*
 * Name and inode at directory offset pos: 0 is ".", 1 is "..", and 2 + i
 * is child i in name order, so an offset stays valid across calls.
 * Return: 0, or -ENOENT past the last child.
 */
static int dirent_at(const struct im_tree *t, fuse_ino_t dir, const struct im_tree_node *node,
		     uint64_t pos, const char **ret_name, uint64_t *ret_ino)
{
	struct im_tree_child child;
	int r;

	if (pos == 0) {
		*ret_name = ".";
		*ret_ino = dir;
		return 0;
	}
	if (pos == 1) {
		*ret_name = "..";
		*ret_ino = node->parent;
		return 0;
	}

	r = im_tree_get_child(t, dir, pos - 2, &child);
	if (r < 0)
		return r;
	*ret_name = child.name;
	*ret_ino = child.ino;
	return 0;
}

/* Add one entry at buf. Return: the bytes it needs, which may exceed room. */
static size_t add_dirent(fuse_req_t req, const struct im_tree *t, bool plus, char *buf,
			 size_t room, const char *name, uint64_t ino, uint64_t pos, bool dot)
{
	struct fuse_entry_param e = {
		.generation = 1,
		.attr_timeout = IM_FUSE_CACHE_TIMEOUT,
		.entry_timeout = IM_FUSE_CACHE_TIMEOUT,
	};

	if (im_fuse_fill_attr(t, ino, &e.attr) < 0)
		memset(&e.attr, 0, sizeof(e.attr));

	if (!plus)
		return fuse_add_direntry(req, buf, room, name, &e.attr, (off_t)(pos + 1));

	/* ino 0 for "." and "..": the kernel then makes no dentry and takes no
	 * lookup reference for them. */
	e.ino = dot ? 0 : ino;
	return fuse_add_direntry_plus(req, buf, room, name, &e, (off_t)(pos + 1));
}

static void reply_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	struct im_tree_node node;
	size_t used = 0;
	char *buf;
	int r;

	r = im_tree_get_node(cfg->tree, ino, &node);
	if (r == 0 && node.type != IM_ENTRY_DIR)
		r = -ENOTDIR;
	if (r == 0 && off < 0)
		r = -EINVAL;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}

	if (size > READDIR_BUFFER_MAX)
		size = READDIR_BUFFER_MAX;
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}

	for (uint64_t pos = (uint64_t)off;; pos++) {
		const char *name;
		uint64_t child;
		size_t need;

		if (dirent_at(cfg->tree, ino, &node, pos, &name, &child) < 0)
			break;
		need = add_dirent(req, cfg->tree, plus, buf + used, size - used, name, child, pos,
				  pos < 2);
		if (need > size - used)
			break;
		used += need;
	}

	fuse_reply_buf(req, buf, used);
	free(buf);
}

void im_ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	(void)fi;
	reply_readdir(req, ino, size, off, false);
}

void im_ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			      struct fuse_file_info *fi)
{
	(void)fi;
	reply_readdir(req, ino, size, off, true);
}

void im_ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}
