/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to fs/: the libfuse low-level operations that serve a merged
 * tree, split by concept over fuse_ops.c (table, entries, attributes,
 * EROFS), fuse_read.c (file data), fuse_dir.c (listings) and fuse_xattr.c.
 *
 * The session's userdata must be the struct im_daemon_config being served.
 * It and the tree are only read, so no handler takes a lock, and every
 * handler sends exactly one reply on every path.
 */
#ifndef IM_FUSE_OPS_H
#define IM_FUSE_OPS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include "fs/daemon.h"
#include "index/tree.h"

/* Seconds the kernel may cache entries and attributes: the tree never changes. */
#define IM_FUSE_CACHE_TIMEOUT 86400.0

/* Block size reported by getattr and statfs. */
#define IM_FUSE_BLOCK_SIZE 4096

extern const struct fuse_lowlevel_ops im_ll_ops;

static inline const struct im_daemon_config *im_fuse_config(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Fill the attributes of ino. Return: 0, -ENOENT, or -EIO for a corrupt entry. */
int im_fuse_fill_attr(const struct im_tree *t, fuse_ino_t ino, struct stat *st);

void im_ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void im_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void im_ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* Record what the kernel offers for directories; call from init. */
void im_fuse_dir_init(struct fuse_conn_info *conn);
void im_ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void im_ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void im_ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi);
void im_ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

void im_ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void im_ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

#endif
