/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `imgmount cat IMAGE PATH`: write one file of the image to stdout without
 * mounting it. The file's chunks are read in batches through the fetcher,
 * which takes them from the cache or fetches them with range requests and
 * checks each against its SHA-256. A batch is written only once all of it
 * has been verified. So when a chunk fails verification, the output stops
 * at the end of the last good chunk and no byte of the bad one is written.
 *
 * The fetcher reports a network failure and a verification failure with
 * the same -EIO. To give them different exit statuses, a failed batch is
 * read again chunk by chunk, with the good chunks now from the cache. The
 * chunk that still fails is classified. Verification failed when the
 * verify_failures counter rose, or when the registry still serves the
 * chunk's bytes that the fetcher rejects. The network failed when the
 * registry cannot serve them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/stats.h"
#include "common/util.h"
#include "fs/commands.h"
#include "fs/inspect.h"

/* Maximum uncompressed bytes requested from the fetcher at once, so that
 * adjacent chunks share a range request. A larger chunk is read alone. */
#define BATCH_MAX_BYTES (8u << 20)
#define BATCH_MAX_CHUNKS 1024u

/* Zero bytes written at a time for a chunk that has no data. */
#define ZERO_PIECE (64u * 1024)

struct cat_args {
	struct im_inspect_args common;
	const char *image;
	const char *path;
};

/* The file being written and the state of the copy. */
struct cat_job {
	const char *path;
	const char *image;
	struct im_fetcher *fetcher;
	const struct im_blob_ref *blob;
	const struct im_layer_index *index;
	struct im_entry entry;
	uint64_t written;             /* bytes written to stdout so far */
	struct im_chunk batch[BATCH_MAX_CHUNKS];
	uint8_t *buf;
	size_t buf_size;
};

static void cat_usage(FILE *out)
{
	fprintf(out,
		"usage: imgmount cat [OPTIONS] IMAGE PATH\n\n"
		"Write the contents of file PATH in IMAGE to standard output, without\n"
		"mounting it. Only the chunks of that file are fetched; each is checked\n"
		"against its SHA-256 before any of its bytes is written, and kept in the\n"
		"cache. When a chunk fails the check, the output stops before it and the\n"
		"exit status is 4. Symlinks, PATH included, are followed inside the image\n"
		"(at most 40).\n\n"
		"options:\n");
	im_inspect_usage_common(out, false);
}

/* Return: 0 to run, 1 after --help, or -EINVAL after printing the problem. */
static int parse_cat_args(int argc, char **argv, struct cat_args *a)
{
	static const struct im_inspect_parser parser = {
		.command = "cat",
		.usage = cat_usage,
		.short_options = "",
		.min_operands = 2,
		.max_operands = 2,
	};
	int r;

	r = im_inspect_parse_args(argc, argv, &parser, &a->common, NULL);
	if (r != 0)
		return r;
	if (a->common.json) {
		fprintf(stderr, "imgmount: cat writes the file's bytes; --json does not apply\n");
		return -EINVAL;
	}
	a->image = argv[optind];
	a->path = argv[optind + 1];
	return 0;
}

static int write_out(struct cat_job *job, const void *data, size_t len)
{
	int r = im_write_full(STDOUT_FILENO, data, len);

	if (r < 0)
		return im_log_errno(r, "writing \"%s\" to standard output failed", job->path);
	job->written += len;
	return 0;
}

static int write_zeros(struct cat_job *job, uint64_t len)
{
	static const uint8_t zeros[ZERO_PIECE];

	while (len > 0) {
		size_t piece = len < ZERO_PIECE ? (size_t)len : ZERO_PIECE;
		int r = write_out(job, zeros, piece);

		if (r < 0)
			return r;
		len -= piece;
	}
	return 0;
}

static int grow_buffer(struct cat_job *job, size_t size)
{
	uint8_t *buf;

	if (size <= job->buf_size)
		return 0;
	buf = realloc(job->buf, size);
	if (!buf)
		return -ENOMEM;
	job->buf = buf;
	job->buf_size = size;
	return 0;
}

/* Chunk i of the file, checked to start at offset (where the previous
 * chunk ends) and to stay inside the file. */
static int get_chunk(const struct cat_job *job, uint32_t i, uint64_t offset, struct im_chunk *c)
{
	uint64_t end;

	im_layer_index_chunk(job->index, job->entry.chunk_first + i, c);
	if (c->file_offset != offset || c->length == 0 ||
	    im_add_u64(c->file_offset, c->length, &end) < 0 || end > job->entry.size) {
		im_err("\"%s\" in %s has an invalid chunk list at chunk %" PRIu32
		       " (file offset %" PRIu64 ", length %" PRIu64 ", expected offset %" PRIu64 ")",
		       job->path, job->image, i, c->file_offset, c->length, offset);
		return -EBADMSG;
	}
	if (!(c->flags & IM_CHUNK_ZEROS) && c->length > IM_CHUNK_MAX_LENGTH) {
		im_err("\"%s\" in %s: chunk %" PRIu32 " is %" PRIu64 " bytes, more than the "
		       "maximum of %u", job->path, job->image, i, c->length, IM_CHUNK_MAX_LENGTH);
		return -EBADMSG;
	}
	return 0;
}

/*
 * Tell a verification failure of chunk c from a network failure, once the
 * fetcher has failed to read it alone. verify_before is the
 * verify_failures counter before that read.
 * Return: -EBADMSG, or the registry client's error for the chunk's range
 * (-EIO when the registry cannot be reached).
 */
static int classify_failure(struct cat_job *job, const struct im_chunk *c, uint64_t verify_before)
{
	uint8_t probe;
	int r;

	if (atomic_load(&im_stats.verify_failures) > verify_before)
		return -EBADMSG;

	/* The fetcher also rejects data that does not decompress, without
	 * counting it. If the registry still serves the chunk's first byte,
	 * the network works and the data is what is wrong.
	 * NOTE: a network outage that ends between the failed read and this
	 * probe is reported as a verification failure. */
	r = im_registry_get_blob_range(job->blob->registry, job->blob->repository,
				       &job->blob->digest, c->blob_offset, 1, &probe);
	return r < 0 ? r : -EBADMSG;
}

/* Read the chunks of a failed batch one at a time, writing each good one,
 * until the one that fails. Return: 0 when all of them read this time,
 * else the error of classify_failure(). */
static int retry_one_by_one(struct cat_job *job, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		const struct im_chunk *c = &job->batch[k];
		uint64_t verify_before = atomic_load(&im_stats.verify_failures);
		int r;

		r = im_fetcher_read(job->fetcher, job->blob, c, 1, job->buf);
		if (r < 0)
			return classify_failure(job, c, verify_before);
		r = write_out(job, job->buf, c->length);
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_batch(struct cat_job *job, size_t n, size_t total)
{
	int r;

	r = grow_buffer(job, total);
	if (r < 0)
		return r;

	r = im_fetcher_read(job->fetcher, job->blob, job->batch, n, job->buf);
	if (r == 0)
		return write_out(job, job->buf, total);
	if (r != -EIO)
		return r;
	return retry_one_by_one(job, n);
}

/* Gather the data chunks from chunk *i on into job->batch, up to the batch
 * limits (always at least one chunk). */
static int fill_batch(struct cat_job *job, uint32_t *i, size_t *ret_n, size_t *ret_total)
{
	size_t n = 0, total = 0;

	while (*i < job->entry.chunk_count && n < BATCH_MAX_CHUNKS) {
		struct im_chunk c;
		int r;

		r = get_chunk(job, *i, job->written + total, &c);
		if (r < 0)
			return r;
		if ((c.flags & IM_CHUNK_ZEROS) || (n > 0 && total + c.length > BATCH_MAX_BYTES))
			break;

		job->batch[n++] = c;
		total += c.length;
		(*i)++;
	}

	*ret_n = n;
	*ret_total = total;
	return 0;
}

static int copy_file(struct cat_job *job)
{
	uint32_t i = 0;
	int r;

	while (i < job->entry.chunk_count) {
		struct im_chunk c;
		size_t n, total;

		r = get_chunk(job, i, job->written, &c);
		if (r < 0)
			return r;
		if (c.flags & IM_CHUNK_ZEROS) {
			r = write_zeros(job, c.length);
			if (r < 0)
				return r;
			i++;
			continue;
		}

		r = fill_batch(job, &i, &n, &total);
		if (r == 0)
			r = read_batch(job, n, total);
		if (r < 0)
			return r;
	}

	if (job->written != job->entry.size) {
		im_err("\"%s\" in %s has chunks for %" PRIu64 " of its %" PRIu64 " bytes",
		       job->path, job->image, job->written, job->entry.size);
		return -EBADMSG;
	}
	return 0;
}

static void log_copy_failure(const struct cat_job *job, int r)
{
	if (r == -EBADMSG)
		im_err("cat of \"%s\" in %s stopped after %" PRIu64 " bytes: the next chunk "
		       "failed verification and none of its bytes were written; the registry "
		       "serves data that does not match the image", job->path, job->image,
		       job->written);
	else if (r == -EIO)
		im_err("cat of \"%s\" in %s stopped after %" PRIu64 " bytes: the registry could "
		       "not be reached; run the command again once it is reachable", job->path,
		       job->image, job->written);
}

static int open_job(const struct im_inspect *in, const char *path, struct cat_job *job)
{
	struct im_tree_node node;
	uint64_t ino;
	int r;

	r = im_inspect_lookup(in, path, true, &ino);
	if (r < 0)
		return r;
	r = im_tree_get_node(in->tree, ino, &node);
	if (r == 0)
		r = im_tree_get_entry(in->tree, ino, &job->entry);
	if (r < 0)
		return r;

	if (node.type == IM_ENTRY_DIR) {
		im_err("\"%s\" in %s is a directory; list it with 'imgmount ls'",
		       path, in->img->display_name);
		return -EISDIR;
	}
	if (node.type != IM_ENTRY_REG) {
		im_err("\"%s\" in %s is not a regular file; see it with 'imgmount stat'",
		       path, in->img->display_name);
		return -EINVAL;
	}

	job->path = path;
	job->image = in->img->display_name;
	job->blob = &in->img->blobs[node.layer];
	job->index = in->img->indexes[node.layer];
	return 0;
}

static int run_cat(const struct cat_args *args, const struct im_inspect *in)
{
	_cleanup_free_ char *path = NULL;
	struct cat_job *job;
	int r;

	path = im_inspect_absolute_path(args->path);
	job = calloc(1, sizeof(*job));
	if (!path || !job) {
		free(job);
		return -ENOMEM;
	}

	r = open_job(in, path, job);
	if (r == 0)
		r = im_fetcher_new(in->img->store, &job->fetcher);
	if (r == 0) {
		r = copy_file(job);
		log_copy_failure(job, r);
	}

	im_fetcher_free(job->fetcher);
	free(job->buf);
	free(job);
	return r;
}

int im_cmd_cat(int argc, char **argv)
{
	struct cat_args args = { 0 };
	struct im_inspect *in = NULL;
	int r;

	r = parse_cat_args(argc, argv, &args);
	if (r != 0)
		return r > 0 ? IM_INSPECT_EXIT_OK : IM_INSPECT_EXIT_USAGE;

	r = im_inspect_open(&args.common, args.image, IM_INSPECT_TREE, &in);
	if (r == 0)
		r = run_cat(&args, in);

	im_inspect_free(in);
	return im_inspect_finish(&args.common, r);
}
