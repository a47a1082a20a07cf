/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Read cost of the chunk cache's layout: one file per chunk (the chunk
 * store as built, through im_chunk_store_get()) against one pack file per
 * layer with an in-memory offset table, read with pread(2) and the same
 * XXH3 check. Both read the same N chunks of 64 KiB to 1 MiB in the same
 * random order, first cold (each file's page cache dropped with
 * posix_fadvise(POSIX_FADV_DONTNEED)), then warm.
 *
 * usage: bench_cache_layout DIR [N]   (DIR must not exist; it is removed)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "cache/chunk_store.h"
#include "common/digest.h"
#include "common/util.h"

#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define MIN_CHUNK (64u << 10)
#define MAX_CHUNK (1u << 20)

struct chunk {
	struct im_digest digest;
	size_t length;
	uint64_t pack_offset;
	uint64_t xxh3;
};

static double now_seconds(void)
{
	return (double)im_now_ns() / 1e9;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void drop_file(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return;
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

static void drop_chunk_files(const char *dir, const struct chunk *chunks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char hex[2 * IM_SHA256_LEN + 1], path[PATH_MAX];

		im_digest_format_hex(&chunks[i].digest, hex);
		snprintf(path, sizeof(path), "%s/files/chunks/%.2s/%s", dir, hex, hex);
		drop_file(path);
	}
}

static double read_files(struct im_chunk_store *s, const struct chunk *chunks,
			 const size_t *order, size_t n, uint8_t *buf)
{
	double start = now_seconds();

	for (size_t k = 0; k < n; k++) {
		const struct chunk *c = &chunks[order[k]];

		if (im_chunk_store_get(s, &c->digest, buf, c->length) < 0) {
			fprintf(stderr, "chunk %zu missing from the store\n", order[k]);
			exit(1);
		}
	}
	return now_seconds() - start;
}

static double read_pack(int fd, const struct chunk *chunks, const size_t *order,
			size_t n, uint8_t *buf)
{
	double start = now_seconds();

	for (size_t k = 0; k < n; k++) {
		const struct chunk *c = &chunks[order[k]];

		if (im_pread_full(fd, buf, c->length, (off_t)c->pack_offset) < 0 ||
		    XXH3_64bits(buf, c->length) != c->xxh3) {
			fprintf(stderr, "chunk %zu damaged in the pack\n", order[k]);
			exit(1);
		}
	}
	return now_seconds() - start;
}

int main(int argc, char **argv)
{
	char files_dir[PATH_MAX], pack_path[PATH_MAX];
	struct im_chunk_store *store;
	struct chunk *chunks;
	size_t *order;
	uint8_t *buf;
	uint64_t total = 0, offset = 0;
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000;
	int pack_fd;

	if (argc < 2 || n == 0) {
		fprintf(stderr, "usage: %s DIR [N]\n", argv[0]);
		return 2;
	}
	if (mkdir(argv[1], 0700) < 0) {
		fprintf(stderr, "cannot create \"%s\": %s\n", argv[1], strerror(errno));
		return 1;
	}
	snprintf(files_dir, sizeof(files_dir), "%s/files", argv[1]);
	snprintf(pack_path, sizeof(pack_path), "%s/layer.pack", argv[1]);

	chunks = calloc(n, sizeof(*chunks));
	order = calloc(n, sizeof(*order));
	buf = malloc(MAX_CHUNK);
	if (!chunks || !order || !buf || im_chunk_store_open(files_dir, &store) < 0)
		return 1;
	pack_fd = open(pack_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (pack_fd < 0)
		return 1;

	srand(1);
	for (size_t i = 0; i < n; i++) {
		struct chunk *c = &chunks[i];

		c->length = MIN_CHUNK + (size_t)rand() % (MAX_CHUNK - MIN_CHUNK + 1);
		for (size_t j = 0; j < c->length; j++)
			buf[j] = (uint8_t)rand();
		im_sha256(buf, c->length, &c->digest);
		c->xxh3 = XXH3_64bits(buf, c->length);
		c->pack_offset = offset;
		if (im_chunk_store_put(store, &c->digest, buf, c->length) < 0 ||
		    im_write_full(pack_fd, buf, c->length) < 0)
			return 1;
		offset += c->length;
		total += c->length;
		order[i] = i;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}

	drop_chunk_files(argv[1], chunks, n);
	drop_file(pack_path);
	double files_cold = read_files(store, chunks, order, n, buf);
	double files_warm = read_files(store, chunks, order, n, buf);
	double pack_cold = read_pack(pack_fd, chunks, order, n, buf);
	/* Cold again for the pack: the reads above warmed it partly. */
	drop_file(pack_path);
	pack_cold = read_pack(pack_fd, chunks, order, n, buf);
	double pack_warm = read_pack(pack_fd, chunks, order, n, buf);

	printf("%zu chunks, %.1f MiB, 64 KiB..1 MiB each, random order\n", n,
	       (double)total / (1 << 20));
	printf("%-22s %10s %10s\n", "layout", "cold MB/s", "warm MB/s");
	printf("%-22s %10.0f %10.0f\n", "one file per chunk",
	       (double)total / 1e6 / files_cold, (double)total / 1e6 / files_warm);
	printf("%-22s %10.0f %10.0f\n", "pack file per layer",
	       (double)total / 1e6 / pack_cold, (double)total / 1e6 / pack_warm);
	printf("%-22s %10.1f %10.1f\n", "per chunk, us (files)",
	       files_cold * 1e6 / (double)n, files_warm * 1e6 / (double)n);
	printf("%-22s %10.1f %10.1f\n", "per chunk, us (pack)",
	       pack_cold * 1e6 / (double)n, pack_warm * 1e6 / (double)n);

	close(pack_fd);
	im_chunk_store_free(store);
	nftw(argv[1], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(chunks);
	free(order);
	free(buf);
	return 0;
}
