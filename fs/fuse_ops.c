/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The operations table, and the operations on names and attributes:
 * init, lookup, forget, getattr, readlink, statfs, and every operation
 * that would modify the tree, which fails with EROFS.
 *
 * The tree is immutable for the life of the mount, so inode numbers are
 * indexes into it, FORGET frees nothing, and the replies let the kernel
 * cache entries, attributes, negative lookups and symlink targets for a day.
 */
#include "fs/fuse_ops.h"
#include "fs/miss_prefetch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

static mode_t type_bits(enum im_entry_type type)
{
	switch (type) {
	case IM_ENTRY_DIR:
		return S_IFDIR;
	case IM_ENTRY_SYMLINK:
		return S_IFLNK;
	case IM_ENTRY_CHAR:
		return S_IFCHR;
	case IM_ENTRY_BLOCK:
		return S_IFBLK;
	case IM_ENTRY_FIFO:
		return S_IFIFO;
	default:
		return S_IFREG;
	}
}

int im_fuse_fill_attr(const struct im_tree *t, fuse_ino_t ino, struct stat *st)
{
	struct im_tree_node node;
	struct im_entry e;
	uint64_t size = 0;
	int r;

	r = im_tree_get_node(t, ino, &node);
	if (r < 0)
		return r;
	r = im_tree_get_entry(t, ino, &e);
	if (r < 0)
		return r;

	if (node.type == IM_ENTRY_REG)
		size = e.size;
	else if (node.type == IM_ENTRY_SYMLINK)
		size = e.link_len;
	if (size > INT64_MAX || e.mtime_nsec >= 1000000000u)
		return -EIO;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = type_bits(node.type) | (e.mode & 07777);
	st->st_nlink = node.nlink;
	st->st_uid = e.uid;
	st->st_gid = e.gid;
	if (node.type == IM_ENTRY_CHAR || node.type == IM_ENTRY_BLOCK)
		st->st_rdev = makedev(e.rdev_major, e.rdev_minor);
	st->st_size = (off_t)size;
	st->st_blksize = IM_FUSE_BLOCK_SIZE;
	st->st_blocks = (blkcnt_t)(size / 512 + (size % 512 != 0));
	st->st_mtim.tv_sec = e.mtime_sec;
	st->st_mtim.tv_nsec = e.mtime_nsec;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
	return 0;
}

static void im_ll_init(void *userdata, struct fuse_conn_info *conn)
{
	const struct im_daemon_config *cfg = userdata;

	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;

	/* Bytes come from our own buffers, so splicing would save nothing. */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);

	/* mtimes never change, so automatic invalidation would only cost getattr calls. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;

	/* conn->max_readahead arrives set to the kernel's offer, so leaving it
	 * unchanged requests all of it. */
	conn->time_gran = 1;
	im_fuse_dir_init(conn);

	/* Without its state, prefetch on a miss is off and reads still work. */
	im_miss_prefetch_init(cfg);
}

static void im_ll_destroy(void *userdata)
{
	(void)userdata;
	im_miss_prefetch_free();
}

static void im_ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	struct fuse_entry_param e = {
		.generation = 1,
		.attr_timeout = IM_FUSE_CACHE_TIMEOUT,
		.entry_timeout = IM_FUSE_CACHE_TIMEOUT,
	};
	struct im_tree_node dir;
	uint64_t ino;
	int r;

	r = im_tree_get_node(cfg->tree, parent, &dir);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}

	r = im_tree_lookup(cfg->tree, parent, name, strlen(name), &ino);
	if (r == -ENOENT) {
		/* ino 0 is a negative entry that the kernel caches for entry_timeout. */
		fuse_reply_entry(req, &e);
		return;
	}
	if (r == 0)
		r = im_fuse_fill_attr(cfg->tree, ino, &e.attr);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}

	e.ino = ino;
	fuse_reply_entry(req, &e);
}

static void im_ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void im_ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void im_ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	struct stat st;
	int r;

	(void)fi;
	r = im_fuse_fill_attr(cfg->tree, ino, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_attr(req, &st, IM_FUSE_CACHE_TIMEOUT);
}

static void im_ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	struct im_tree_node node;
	struct im_entry e;
	char *target;
	int r;

	r = im_tree_get_node(cfg->tree, ino, &node);
	if (r == 0 && node.type != IM_ENTRY_SYMLINK)
		r = -EINVAL;
	if (r == 0)
		r = im_tree_get_entry(cfg->tree, ino, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}

	/* The index does not promise a NUL after the target. */
	target = malloc((size_t)e.link_len + 1);
	if (!target) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(target, e.link, e.link_len);
	target[e.link_len] = '\0';
	fuse_reply_readlink(req, target);
	free(target);
}

/*
 * A read-only mount has no free space: f_bfree, f_bavail and f_ffree are 0,
 * while f_blocks and f_files cover the image, so df lists the mount with
 * its real size.
 */
static void im_ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	const struct im_daemon_config *cfg = im_fuse_config(req);
	uint64_t bytes = im_tree_total_size(cfg->tree);
	struct statvfs st = {
		.f_bsize = IM_FUSE_BLOCK_SIZE,
		.f_frsize = IM_FUSE_BLOCK_SIZE,
		.f_blocks = bytes / IM_FUSE_BLOCK_SIZE + (bytes % IM_FUSE_BLOCK_SIZE != 0),
		.f_files = im_tree_inode_count(cfg->tree),
		.f_namemax = 255,
	};

	(void)ino;
	fuse_reply_statfs(req, &st);
}

/* Every operation that would change the tree. */

static void im_ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	(void)ino;
	(void)attr;
	(void)to_set;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void im_ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			dev_t rdev)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)rdev;
	fuse_reply_err(req, EROFS);
}

static void im_ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent;
	(void)name;
	(void)mode;
	fuse_reply_err(req, EROFS);
}

static void im_ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent;
	(void)name;
	fuse_reply_err(req, EROFS);
}

static void im_ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			  const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EROFS);
}

static void im_ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	(void)parent;
	(void)name;
	(void)newparent;
	(void)newname;
	(void)flags;
	fuse_reply_err(req, EROFS);
}

static void im_ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		       const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EROFS);
}

static void im_ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	(void)buf;
	(void)size;
	(void)off;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void im_ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void im_ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   const char *value, size_t size, int flags)
{
	(void)ino;
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, EROFS);
}

static void im_ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	(void)name;
	fuse_reply_err(req, EROFS);
}

static void im_ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			    off_t length, struct fuse_file_info *fi)
{
	(void)ino;
	(void)mode;
	(void)offset;
	(void)length;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops im_ll_ops = {
	.init = im_ll_init,
	.destroy = im_ll_destroy,
	.lookup = im_ll_lookup,
	.forget = im_ll_forget,
	.forget_multi = im_ll_forget_multi,
	.getattr = im_ll_getattr,
	.readlink = im_ll_readlink,
	.open = im_ll_open,
	.read = im_ll_read,
	.release = im_ll_release,
	.opendir = im_ll_opendir,
	.readdir = im_ll_readdir,
	.readdirplus = im_ll_readdirplus,
	.releasedir = im_ll_releasedir,
	.statfs = im_ll_statfs,
	.getxattr = im_ll_getxattr,
	.listxattr = im_ll_listxattr,
	.setattr = im_ll_setattr,
	.mknod = im_ll_mknod,
	.mkdir = im_ll_mkdir,
	.unlink = im_ll_unlink,
	.rmdir = im_ll_unlink,
	.symlink = im_ll_symlink,
	.rename = im_ll_rename,
	.link = im_ll_link,
	.write = im_ll_write,
	.create = im_ll_create,
	.setxattr = im_ll_setxattr,
	.removexattr = im_ll_removexattr,
	.fallocate = im_ll_fallocate,
};
