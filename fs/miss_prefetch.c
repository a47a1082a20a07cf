/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prefetch on a file's first miss: the choice of chunks, and the bitmap of
 * inodes whose prefetch was already queued.
 *
 * Siblings are the files of the directory with the same extension as the
 * file that missed. A program that reads one module of a package (foo.pyc,
 * bar.so) usually reads more of that kind, while a directory of mixed
 * files (/etc, /usr/bin) is usually read one file at a time. A file
 * without an extension gets no siblings. They are chosen smallest first,
 * because the large files of a directory are the ones most often never
 * read. The bounds keep the bytes fetched for nothing small next to what
 * a start reads: at most SIBLINGS_MAX_BYTES per directory, each directory
 * once.
 */
#include "fs/miss_prefetch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* A file whose chunks outside the missed read add up to more compressed
 * bytes than this gets no prefetch of its rest. Such a file is more often
 * data read in parts (a database, an archive) than a program loaded whole,
 * and sequential read-ahead covers one that is read through. */
#define FILE_REST_MAX_BYTES (2u << 20)

/* Compressed bytes of the siblings queued for one directory. */
#define SIBLINGS_MAX_BYTES (512u << 10)

/* Siblings larger than this, compressed, are never prefetched. */
#define SIBLING_MAX_BYTES (128u << 10)

/* Files with more chunks than this are left out, so that the planning on
 * the reading thread stays short for sparse files of many zero chunks. */
#define FILE_CHUNKS_MAX 4096

/* Children of a directory examined for siblings, so that a directory with
 * very many entries costs the missing read a bounded scan. */
#define SIBLINGS_SCAN_MAX 4096

/* One bit per inode number: set once the rest of that file, or the
 * siblings in that directory, were queued.
 * NOTE: a job that the full prefetch queue drops is not queued again. */
struct queued_bits {
	uint64_t inode_count;
	uint8_t bits[];
};

/* Written by the FUSE init callback before the kernel sends any read, and
 * freed by the destroy callback after the last one. */
static struct queued_bits *queued;

struct sibling {
	uint64_t ino;
	uint32_t layer;
	uint64_t compressed;   /* blob bytes of its chunks with data */
};

/* A chunk to prefetch, with the layer whose blob contains it. */
struct layer_chunk {
	uint32_t layer;
	struct im_chunk chunk;
};

int im_miss_prefetch_init(const struct im_daemon_config *cfg)
{
	uint64_t count = im_tree_inode_count(cfg->tree) + 1;
	struct queued_bits *q;

	q = calloc(1, sizeof(*q) + count / 8 + 1);
	if (!q) {
		im_log_errno(-ENOMEM, "cannot track prefetch of %llu inodes; files are "
			     "fetched only when read", (unsigned long long)count);
		return -ENOMEM;
	}
	q->inode_count = count;
	__atomic_store_n(&queued, q, __ATOMIC_RELEASE);
	return 0;
}

void im_miss_prefetch_free(void)
{
	free(__atomic_exchange_n(&queued, NULL, __ATOMIC_ACQ_REL));
}

/* Set ino's bit. Return: true for the call that set it. */
static bool mark_queued(struct queued_bits *q, uint64_t ino)
{
	uint8_t mask = (uint8_t)(1u << (ino % 8));

	if (ino >= q->inode_count)
		return false;
	return !(__atomic_fetch_or(&q->bits[ino / 8], mask, __ATOMIC_RELAXED) & mask);
}

static bool is_queued(const struct queued_bits *q, uint64_t ino)
{
	if (ino >= q->inode_count)
		return true;
	return __atomic_load_n(&q->bits[ino / 8], __ATOMIC_RELAXED) & (1u << (ino % 8));
}

/* Whether a chunk is one the fetcher can fetch: it has data and a length
 * the fetcher accepts. */
static bool has_data(const struct im_chunk *c)
{
	return !(c->flags & IM_CHUNK_ZEROS) && c->length <= IM_CHUNK_MAX_LENGTH;
}

/*
 * Queue the chunks of file e outside [skip_start, skip_end), unless they
 * add up to more than FILE_REST_MAX_BYTES compressed.
 */
static void queue_file_rest(const struct im_daemon_config *cfg, const struct im_tree_node *node,
			    const struct im_entry *e, uint64_t skip_start, uint64_t skip_end)
{
	const struct im_mount_layer *layer = &cfg->layers[node->layer];
	struct im_chunk *chunks;
	uint64_t compressed = 0;
	size_t n = 0;

	if (e->chunk_count > FILE_CHUNKS_MAX)
		return;
	for (uint32_t i = 0; i < e->chunk_count; i++) {
		struct im_chunk c;

		im_layer_index_chunk(layer->index, e->chunk_first + i, &c);
		if (!has_data(&c) || (c.file_offset >= skip_start && c.file_offset < skip_end))
			continue;
		compressed += c.blob_length;
		if (compressed > FILE_REST_MAX_BYTES)
			return;
		n++;
	}
	if (n == 0)
		return;

	chunks = calloc(n, sizeof(*chunks));
	if (!chunks)
		return;
	n = 0;
	for (uint32_t i = 0; i < e->chunk_count; i++) {
		struct im_chunk c;

		im_layer_index_chunk(layer->index, e->chunk_first + i, &c);
		if (has_data(&c) && !(c.file_offset >= skip_start && c.file_offset < skip_end))
			chunks[n++] = c;
	}
	im_fetcher_prefetch(cfg->fetcher, &layer->blob, chunks, n);
	im_debug("prefetch: %zu chunks (%llu compressed bytes) of the rest of %s", n,
		 (unsigned long long)compressed, e->path);
	free(chunks);
}

/*
 * Return the extension of a name: from its last '.' on, or NULL when the
 * name has no '.' after its first byte. An extension of digits only is a
 * version number (libm.so.6), not a kind of file, so it counts as none.
 */
static const char *extension(const char *name, size_t len)
{
	for (size_t i = len; i > 1; i--) {
		if (name[i - 1] != '.')
			continue;
		if (strspn(name + i, "0123456789") == len - i)
			return NULL;
		return name + i - 1;
	}
	return NULL;
}

/*
 * Describe child number index of dir as a prefetch candidate. Return: false
 * for a child that is not a regular file named with extension ext and with
 * data of at most SIBLING_MAX_BYTES, for the file that missed, and for
 * files whose rest was queued already.
 */
static bool describe_sibling(const struct im_daemon_config *cfg, const struct queued_bits *q,
			     uint64_t dir, uint64_t index, uint64_t self, const char *ext,
			     struct sibling *ret)
{
	struct im_tree_child child;
	struct im_tree_node node;
	struct im_entry e;
	uint64_t compressed = 0;
	const char *child_ext;

	if (im_tree_get_child(cfg->tree, dir, index, &child) < 0 || child.type != IM_ENTRY_REG ||
	    child.ino == self || is_queued(q, child.ino))
		return false;
	child_ext = extension(child.name, child.name_len);
	if (!child_ext || strcmp(child_ext, ext) != 0)
		return false;
	if (im_tree_get_node(cfg->tree, child.ino, &node) < 0 || node.layer >= cfg->n_layers ||
	    im_tree_get_entry(cfg->tree, child.ino, &e) < 0 || e.chunk_count > FILE_CHUNKS_MAX)
		return false;

	for (uint32_t i = 0; i < e.chunk_count; i++) {
		struct im_chunk c;

		im_layer_index_chunk(cfg->layers[node.layer].index, e.chunk_first + i, &c);
		if (!has_data(&c))
			continue;
		compressed += c.blob_length;
		if (compressed > SIBLING_MAX_BYTES)
			return false;
	}
	if (compressed == 0)
		return false;

	*ret = (struct sibling){ .ino = child.ino, .layer = node.layer, .compressed = compressed };
	return true;
}

static int compare_size(const void *a, const void *b)
{
	const struct sibling *x = a, *y = b;

	if (x->compressed != y->compressed)
		return x->compressed < y->compressed ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int compare_position(const void *a, const void *b)
{
	const struct layer_chunk *x = a, *y = b;

	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	if (x->chunk.blob_offset != y->chunk.blob_offset)
		return x->chunk.blob_offset < y->chunk.blob_offset ? -1 : 1;
	return 0;
}

/*
 * List the chunks with data of siblings[0..n) in *ret, sorted by layer
 * and blob offset, with chunks listed twice (hardlinks) once.
 * Return: the number of chunks, or 0 when memory ran out.
 */
static size_t list_sibling_chunks(const struct im_daemon_config *cfg,
				  const struct sibling *siblings, size_t n,
				  struct layer_chunk **ret)
{
	struct layer_chunk *chunks;
	size_t total = 0, count = 0, kept = 0;

	for (size_t k = 0; k < n; k++) {
		struct im_entry e;

		if (im_tree_get_entry(cfg->tree, siblings[k].ino, &e) == 0)
			total += e.chunk_count;
	}
	chunks = calloc(total ? total : 1, sizeof(*chunks));
	if (!chunks)
		return 0;

	for (size_t k = 0; k < n; k++) {
		const struct im_layer_index *index = cfg->layers[siblings[k].layer].index;
		struct im_entry e;

		if (im_tree_get_entry(cfg->tree, siblings[k].ino, &e) < 0)
			continue;
		for (uint32_t i = 0; i < e.chunk_count && count < total; i++) {
			struct layer_chunk *lc = &chunks[count];

			im_layer_index_chunk(index, e.chunk_first + i, &lc->chunk);
			lc->layer = siblings[k].layer;
			if (has_data(&lc->chunk))
				count++;
		}
	}

	qsort(chunks, count, sizeof(*chunks), compare_position);
	for (size_t i = 0; i < count; i++)
		if (kept == 0 || compare_position(&chunks[kept - 1], &chunks[i]) != 0)
			chunks[kept++] = chunks[i];

	*ret = chunks;
	return kept;
}

/* Queue chunks[0..n), sorted by layer, with one request per layer. */
static void queue_by_layer(const struct im_daemon_config *cfg, const struct layer_chunk *chunks,
			   size_t n)
{
	struct im_chunk *batch = calloc(n ? n : 1, sizeof(*batch));

	if (!batch)
		return;
	for (size_t start = 0, end; start < n; start = end) {
		size_t count = 0;

		for (end = start; end < n && chunks[end].layer == chunks[start].layer; end++)
			batch[count++] = chunks[end].chunk;
		im_fetcher_prefetch(cfg->fetcher, &cfg->layers[chunks[start].layer].blob,
				    batch, count);
	}
	free(batch);
}

/* Queue the smallest regular files of directory dir other than self whose
 * names end in ext, up to SIBLINGS_MAX_BYTES compressed. */
static void queue_siblings(const struct im_daemon_config *cfg, const struct queued_bits *q,
			   uint64_t dir, uint64_t self, const char *ext)
{
	struct im_tree_node dir_node;
	struct layer_chunk *chunks = NULL;
	struct sibling *siblings;
	uint64_t scan, budget = 0;
	size_t n = 0, chosen = 0, n_chunks;

	if (im_tree_get_node(cfg->tree, dir, &dir_node) < 0 || dir_node.type != IM_ENTRY_DIR)
		return;
	scan = dir_node.child_count < SIBLINGS_SCAN_MAX ? dir_node.child_count : SIBLINGS_SCAN_MAX;
	if (scan == 0)
		return;
	siblings = calloc(scan, sizeof(*siblings));
	if (!siblings)
		return;

	for (uint64_t i = 0; i < scan; i++)
		if (describe_sibling(cfg, q, dir, i, self, ext, &siblings[n]))
			n++;

	qsort(siblings, n, sizeof(*siblings), compare_size);
	while (chosen < n && budget + siblings[chosen].compressed <= SIBLINGS_MAX_BYTES)
		budget += siblings[chosen++].compressed;

	n_chunks = list_sibling_chunks(cfg, siblings, chosen, &chunks);
	if (n_chunks > 0)
		queue_by_layer(cfg, chunks, n_chunks);
	im_debug("prefetch: %zu of %zu files (%llu compressed bytes) of directory inode %llu",
		 chosen, n, (unsigned long long)budget, (unsigned long long)dir);
	free(chunks);
	free(siblings);
}

void im_miss_prefetch_queue(const struct im_daemon_config *cfg, uint64_t ino,
			    const struct im_tree_node *node, const struct im_entry *e,
			    uint64_t skip_start, uint64_t skip_end)
{
	struct queued_bits *q = __atomic_load_n(&queued, __ATOMIC_ACQUIRE);
	const char *base, *ext;

	if (!q || node->layer >= cfg->n_layers)
		return;

	if (mark_queued(q, ino))
		queue_file_rest(cfg, node, e, skip_start, skip_end);

	/* The entry's path is cleaned, so its last component is the name in
	 * the directory of its first name, node->parent. */
	base = memrchr(e->path, '/', e->path_len);
	base = base ? base + 1 : e->path;
	ext = extension(base, e->path_len - (size_t)(base - e->path));
	if (ext && mark_queued(q, node->parent))
		queue_siblings(cfg, q, node->parent, ino, ext);
}
