/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the streaming tar reader and its field parsers, on archives
 * built byte by byte in tar_builder.h. Every archive that the reader
 * accepts is also checked for the pass-through invariant: the raw header
 * bytes, the data and the trailer concatenate to the input exactly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/log.h"
#include "common/util.h"
#include "index/tar_fields.h"
#include "index/tar_reader.h"
#include "tar_builder.h"

/* Entries read from one archive, copied out of the reader. */
#define MAX_ENTRIES 16

struct read_entry {
	struct im_tar_entry e;
	char name[70000];
	char link[70000];
	char xattr_names[4][64];
	uint8_t xattr_values[4][64];
	size_t xattr_lens[4];
	uint8_t data[8192];
	size_t data_len;
};

struct read_result {
	int status;                     /* last return of next() or read() */
	size_t n;
	struct read_entry *entries;
	struct tar_buffer copy;         /* raw + data + trailer */
	uint8_t trailer[4096];
	size_t trailer_len;
};

static void save_entry(struct read_entry *out, const struct im_tar_entry *e)
{
	out->e = *e;
	memcpy(out->name, e->name, e->name_len + 1);
	memcpy(out->link, e->link_name, e->link_name_len + 1);
	for (size_t i = 0; i < e->n_xattrs && i < 4; i++) {
		snprintf(out->xattr_names[i], sizeof(out->xattr_names[i]), "%s", e->xattrs[i].name);
		out->xattr_lens[i] = e->xattrs[i].value_len;
		memcpy(out->xattr_values[i], e->xattrs[i].value,
		       e->xattrs[i].value_len < 64 ? e->xattrs[i].value_len : 64);
	}
}

/* Read every entry and its data, then the trailer; max_read limits each
 * source read to exercise short reads. */
static struct read_result read_archive(const struct tar_buffer *tar, size_t max_read)
{
	struct memory_source src = { tar->data, tar->len, 0, max_read };
	struct read_result res = { 0 };
	struct im_tar_reader *tr;
	const struct im_tar_entry *e;
	const uint8_t *raw;
	size_t raw_len;

	res.entries = calloc(MAX_ENTRIES, sizeof(*res.entries));
	if (!res.entries || im_tar_reader_new(memory_read, &src, &tr) < 0)
		abort();

	for (;;) {
		struct read_entry *out;
		ssize_t got;

		res.status = im_tar_reader_next(tr, &e);
		if (res.status <= 0)
			break;
		im_tar_reader_raw(tr, &raw, &raw_len);
		tb_append(&res.copy, raw, raw_len);

		out = &res.entries[res.n < MAX_ENTRIES ? res.n : MAX_ENTRIES - 1];
		res.n++;
		save_entry(out, e);
		while ((got = im_tar_reader_read(tr, out->data + out->data_len,
						 sizeof(out->data) - out->data_len)) > 0) {
			tb_append(&res.copy, out->data + out->data_len, (size_t)got);
			out->data_len += (size_t)got;
		}
		if (got < 0) {
			res.status = (int)got;
			break;
		}
	}

	if (res.status == 0) {
		ssize_t got;

		im_tar_reader_raw(tr, &raw, &raw_len);
		tb_append(&res.copy, raw, raw_len);
		while ((got = im_tar_reader_read_trailer(tr, res.trailer + res.trailer_len,
							 sizeof(res.trailer) - res.trailer_len)) > 0) {
			tb_append(&res.copy, res.trailer + res.trailer_len, (size_t)got);
			res.trailer_len += (size_t)got;
		}
	}
	im_tar_reader_free(tr);
	return res;
}

static void check_pass_through(const struct read_result *res, const struct tar_buffer *tar)
{
	CHECK_INT(res->copy.len, tar->len);
	if (res->copy.len == tar->len)
		CHECK(memcmp(res->copy.data, tar->data, tar->len) == 0);
}

static void free_result(struct read_result *res)
{
	free(res->entries);
	tb_free(&res->copy);
}

static void test_ustar_entry_types(void)
{
	struct tar_buffer t = { 0 };
	struct tar_header dir = { .name = "etc/", .type = '5', .mode = 0755, .mtime = 1700000000 };
	struct tar_header file = { .name = "etc/hosts", .size = 10, .mode = 04755, .uid = 1000,
				   .gid = 2000, .mtime = 1700000001 };
	struct tar_header sym = { .name = "etc/link", .type = '2', .link = "hosts" };
	struct tar_header hard = { .name = "etc/hard", .type = '1', .link = "etc/hosts" };
	struct tar_header chr = { .name = "dev/null", .type = '3', .dev_major = 1, .dev_minor = 3 };
	struct tar_header fifo = { .name = "run/fifo", .type = '6' };
	struct read_result res;

	tb_header(&t, &dir);
	tb_header(&t, &file);
	tb_data(&t, "127.0.0.1\n", 10);
	tb_header(&t, &sym);
	tb_header(&t, &hard);
	tb_header(&t, &chr);
	tb_header(&t, &fifo);
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 6);
	CHECK_INT(res.entries[0].e.type, IM_TAR_DIR);
	CHECK_STR(res.entries[0].name, "etc/");
	CHECK_INT(res.entries[0].e.mode, 0755);
	CHECK_INT(res.entries[0].e.offset, 0);

	CHECK_INT(res.entries[1].e.type, IM_TAR_REG);
	CHECK_STR(res.entries[1].name, "etc/hosts");
	CHECK_INT(res.entries[1].e.mode, 04755);
	CHECK_INT(res.entries[1].e.uid, 1000);
	CHECK_INT(res.entries[1].e.gid, 2000);
	CHECK_INT(res.entries[1].e.size, 10);
	CHECK_INT(res.entries[1].e.mtime_sec, 1700000001);
	CHECK_INT(res.entries[1].e.mtime_nsec, 0);
	CHECK_INT(res.entries[1].e.offset, 512);
	CHECK_INT(res.entries[1].data_len, 10);
	CHECK(memcmp(res.entries[1].data, "127.0.0.1\n", 10) == 0);

	CHECK_INT(res.entries[2].e.type, IM_TAR_SYMLINK);
	CHECK_STR(res.entries[2].link, "hosts");
	CHECK_INT(res.entries[2].e.offset, 1536);
	CHECK_INT(res.entries[3].e.type, IM_TAR_HARDLINK);
	CHECK_STR(res.entries[3].link, "etc/hosts");
	CHECK_INT(res.entries[4].e.type, IM_TAR_CHAR);
	CHECK_INT(res.entries[4].e.dev_major, 1);
	CHECK_INT(res.entries[4].e.dev_minor, 3);
	CHECK_INT(res.entries[5].e.type, IM_TAR_FIFO);
	CHECK_INT(res.entries[5].e.dev_major, 0);
	check_pass_through(&res, &t);
	free_result(&res);

	/* The same archive through one-byte and odd-sized reads. */
	res = read_archive(&t, 1);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 6);
	check_pass_through(&res, &t);
	free_result(&res);
	res = read_archive(&t, 777);
	CHECK_INT(res.n, 6);
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&t);
}

static void test_raw_includes_padding(void)
{
	struct tar_buffer t = { 0 };
	const struct im_tar_entry *e;
	struct memory_source src;
	struct im_tar_reader *tr;
	const uint8_t *raw;
	size_t raw_len;
	char buf[16];

	tb_file(&t, "a", "x", 1);
	tb_file(&t, "b", "", 0);
	tb_end(&t);
	src = (struct memory_source) { t.data, t.len, 0, 0 };
	CHECK_INT(im_tar_reader_new(memory_read, &src, &tr), 0);

	CHECK_INT(im_tar_reader_next(tr, &e), 1);
	im_tar_reader_raw(tr, &raw, &raw_len);
	CHECK_INT(raw_len, 512);
	CHECK_INT(im_tar_reader_read(tr, buf, sizeof(buf)), 1);
	CHECK_INT(im_tar_reader_read(tr, buf, sizeof(buf)), 0);

	/* 511 bytes of padding after "x", then b's header. */
	CHECK_INT(im_tar_reader_next(tr, &e), 1);
	im_tar_reader_raw(tr, &raw, &raw_len);
	CHECK_INT(raw_len, 511 + 512);
	CHECK_STR(e->name, "b");
	CHECK_INT(e->offset, 1024);

	CHECK_INT(im_tar_reader_next(tr, &e), 0);
	im_tar_reader_raw(tr, &raw, &raw_len);
	CHECK_INT(raw_len, 1024);
	CHECK_INT(im_tar_reader_next(tr, &e), 0);
	CHECK_INT(im_tar_reader_read_trailer(tr, buf, sizeof(buf)), 0);
	im_tar_reader_free(tr);
	tb_free(&t);
}

static void test_unread_data_skipped(void)
{
	struct tar_buffer t = { 0 };
	uint8_t big[3000];
	struct read_result res;
	struct memory_source src;
	struct im_tar_reader *tr;
	const struct im_tar_entry *e;

	memset(big, 'q', sizeof(big));
	tb_file(&t, "big", big, sizeof(big));
	tb_file(&t, "next", "n", 1);
	tb_end(&t);

	src = (struct memory_source) { t.data, t.len, 0, 100 };
	CHECK_INT(im_tar_reader_new(memory_read, &src, &tr), 0);
	CHECK_INT(im_tar_reader_next(tr, &e), 1);
	CHECK_INT(im_tar_reader_next(tr, &e), 1);
	CHECK_STR(e->name, "next");
	CHECK_INT(e->offset, 512 + 3072);
	CHECK_INT(im_tar_reader_next(tr, &e), 0);
	im_tar_reader_free(tr);

	res = read_archive(&t, 0);
	CHECK_INT(res.entries[0].data_len, 3000);
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&t);
}

static void test_ustar_prefix(void)
{
	struct tar_buffer t = { 0 };
	struct tar_header h = { .name = "file.txt", .prefix = "usr/share/doc/some-package" };
	struct tar_header gnu = { .name = "gnu.txt", .prefix = "ignored", .magic = TB_MAGIC_GNU };
	struct tar_header star = { .name = "s.txt", .prefix = "starprefix", .star = true };
	struct tar_header v7 = { .name = "old/dir/", .nul_type = true, .v7 = true };
	struct read_result res;

	tb_header(&t, &h);
	tb_header(&t, &gnu);
	tb_header(&t, &star);
	tb_header(&t, &v7);
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 4);
	CHECK_STR(res.entries[0].name, "usr/share/doc/some-package/file.txt");
	CHECK_INT(res.entries[0].e.name_len, strlen("usr/share/doc/some-package/file.txt"));
	/* GNU headers have no prefix field: those bytes are atime/ctime. */
	CHECK_STR(res.entries[1].name, "gnu.txt");
	CHECK_STR(res.entries[2].name, "starprefix/s.txt");
	/* A pre-POSIX '\0' type with a trailing slash is a directory. */
	CHECK_STR(res.entries[3].name, "old/dir/");
	CHECK_INT(res.entries[3].e.type, IM_TAR_DIR);
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&t);
}

static void test_pax_long_names(void)
{
	struct tar_buffer t = { 0 }, records = { 0 };
	struct tar_header h = { .name = "truncated-name", .type = '2', .link = "truncated-link" };
	char long_name[301], long_link[401];
	struct read_result res;

	memset(long_name, 'n', 300);
	long_name[300] = '\0';
	memset(long_link, 'l', 400);
	long_link[400] = '\0';
	tb_pax_string(&records, "path", long_name);
	tb_pax_string(&records, "linkpath", long_link);
	tb_pax_string(&records, "uname", "someone");
	tb_extension(&t, 'x', records.data, records.len);
	tb_header(&t, &h);
	tb_file(&t, "plain", "p", 1);
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 2);
	CHECK_STR(res.entries[0].name, long_name);
	CHECK_INT(res.entries[0].e.name_len, 300);
	CHECK_STR(res.entries[0].link, long_link);
	CHECK_INT(res.entries[0].e.link_name_len, 400);
	CHECK_INT(res.entries[0].e.offset, 0);
	/* pax records apply to one entry only. */
	CHECK_STR(res.entries[1].name, "plain");
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&records);
	tb_free(&t);
}

static void test_gnu_long_names(void)
{
	struct tar_buffer t = { 0 };
	struct tar_header h = { .name = "short", .type = '1', .link = "short-link",
				.magic = TB_MAGIC_GNU };
	static char long_name[60001], long_link[5001];
	struct read_result res;

	memset(long_name, 'a', 60000);
	memset(long_link, 'b', 5000);
	/* The long name is NUL-terminated inside its data. */
	tb_extension(&t, 'L', long_name, 60001);
	tb_extension(&t, 'K', long_link, 5001);
	tb_header(&t, &h);
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 1);
	CHECK_INT(res.entries[0].e.name_len, 60000);
	CHECK_STR(res.entries[0].name, long_name);
	CHECK_INT(res.entries[0].e.link_name_len, 5000);
	CHECK_STR(res.entries[0].link, long_link);
	CHECK_INT(res.entries[0].e.type, IM_TAR_HARDLINK);
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&t);
}

static void test_gnu_name_beats_pax_path(void)
{
	struct tar_buffer t = { 0 }, records = { 0 };
	struct read_result res;

	tb_pax_string(&records, "path", "from-pax");
	tb_extension(&t, 'x', records.data, records.len);
	tb_extension(&t, 'L', "from-gnu", 9);
	tb_file(&t, "from-header", "", 0);
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.n, 1);
	CHECK_STR(res.entries[0].name, "from-gnu");
	free_result(&res);
	tb_free(&t);

	/* An empty GNU long name does not hide the pax path. */
	tb_extension(&t, 'x', records.data, records.len);
	tb_extension(&t, 'L', "", 1);
	tb_file(&t, "from-header", "", 0);
	tb_end(&t);
	res = read_archive(&t, 0);
	CHECK_INT(res.n, 1);
	CHECK_STR(res.entries[0].name, "from-pax");
	free_result(&res);
	tb_free(&records);
	tb_free(&t);
}

static void test_long_name_over_cap(void)
{
	struct tar_buffer t = { 0 };
	uint8_t *name = calloc(1, IM_TAR_MAX_LONG_NAME + 1);
	struct read_result res;

	memset(name, 'a', IM_TAR_MAX_LONG_NAME);
	tb_extension(&t, 'L', name, IM_TAR_MAX_LONG_NAME + 1);
	tb_file(&t, "x", "", 0);
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.status, -EBADMSG);
	CHECK_INT(res.n, 0);
	free_result(&res);
	free(name);
	tb_free(&t);
}

static void test_base256_size(void)
{
	struct tar_buffer t = { 0 };
	struct tar_header h = { .name = "b256", .size = 700, .size_base256 = true,
				.magic = TB_MAGIC_GNU };
	uint8_t data[700];
	struct read_result res;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	tb_header(&t, &h);
	tb_data(&t, data, sizeof(data));
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.entries[0].e.size, 700);
	CHECK_INT(res.entries[0].data_len, 700);
	CHECK(memcmp(res.entries[0].data, data, 700) == 0);
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&t);
}

/* An 8 GiB size cannot be stored in 11 octal digits; pax carries it. The
 * archive is cut after the header, so the reader must report the size and
 * then a truncated stream, without allocating anything of that size. */
static void test_pax_size_8gib(void)
{
	struct tar_buffer t = { 0 }, records = { 0 };
	const struct im_tar_entry *e;
	struct memory_source src;
	struct im_tar_reader *tr;
	char buf[64];

	tb_pax_string(&records, "size", "8589934592");
	tb_extension(&t, 'x', records.data, records.len);
	tb_file(&t, "huge", "", 0);
	tb_zeros(&t, 1024);

	src = (struct memory_source) { t.data, t.len, 0, 0 };
	CHECK_INT(im_tar_reader_new(memory_read, &src, &tr), 0);
	CHECK_INT(im_tar_reader_next(tr, &e), 1);
	CHECK_INT(e->size, 8589934592ll);
	CHECK_STR(e->name, "huge");
	CHECK_INT(im_tar_reader_read(tr, buf, sizeof(buf)), sizeof(buf));
	CHECK_INT(im_tar_reader_next(tr, &e), -EBADMSG);
	/* A failed reader keeps failing. */
	CHECK_INT(im_tar_reader_next(tr, &e), -EBADMSG);
	im_tar_reader_free(tr);
	tb_free(&records);
	tb_free(&t);
}

static void test_mtimes(void)
{
	struct tar_buffer t = { 0 }, r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	struct tar_header neg = { .name = "neg", .mtime = -86400, .mtime_base256 = true,
				  .magic = TB_MAGIC_GNU };
	struct read_result res;

	tb_pax_string(&r1, "mtime", "1644324233.182744228");
	tb_extension(&t, 'x', r1.data, r1.len);
	tb_file(&t, "fraction", "", 0);
	tb_pax_string(&r2, "mtime", "-1.5");
	tb_extension(&t, 'x', r2.data, r2.len);
	tb_file(&t, "negative-fraction", "", 0);
	tb_header(&t, &neg);
	tb_pax_string(&r3, "mtime", "12.1234567891234");
	tb_extension(&t, 'x', r3.data, r3.len);
	tb_file(&t, "long-fraction", "", 0);
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 4);
	CHECK_INT(res.entries[0].e.mtime_sec, 1644324233);
	CHECK_INT(res.entries[0].e.mtime_nsec, 182744228);
	CHECK_INT(res.entries[1].e.mtime_sec, -2);
	CHECK_INT(res.entries[1].e.mtime_nsec, 500000000);
	CHECK_INT(res.entries[2].e.mtime_sec, -86400);
	CHECK_INT(res.entries[2].e.mtime_nsec, 0);
	CHECK_INT(res.entries[3].e.mtime_sec, 12);
	CHECK_INT(res.entries[3].e.mtime_nsec, 123456789);
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&r1);
	tb_free(&r2);
	tb_free(&r3);
	tb_free(&t);
}

static void test_schily_xattrs(void)
{
	struct tar_buffer t = { 0 }, records = { 0 };
	static const uint8_t binary[] = { 'a', 0, 'b', 0, 0xff };
	struct read_result res;

	tb_pax_record(&records, "SCHILY.xattr.user.bin", binary, sizeof(binary));
	tb_pax_string(&records, "SCHILY.xattr.security.capability", "old");
	tb_pax_string(&records, "LIBARCHIVE.xattr.user.bin", "YQBiAP8=");
	tb_pax_string(&records, "SCHILY.xattr.security.capability", "new");
	tb_pax_string(&records, "SCHILY.xattr.user.empty", "");
	tb_pax_string(&records, "SCHILY.xattr.user.gone", "set");
	tb_pax_string(&records, "SCHILY.xattr.user.gone", "");
	tb_extension(&t, 'x', records.data, records.len);
	tb_file(&t, "with-xattrs", "", 0);
	tb_file(&t, "without", "", 0);
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 2);
	/* LIBARCHIVE.xattr.* is ignored; a repeated name keeps the last value;
	 * an empty value deletes the attribute, as in Go's archive/tar. */
	CHECK_INT(res.entries[0].e.n_xattrs, 2);
	CHECK_STR(res.entries[0].xattr_names[0], "user.bin");
	CHECK_INT(res.entries[0].xattr_lens[0], 5);
	CHECK(memcmp(res.entries[0].xattr_values[0], binary, 5) == 0);
	CHECK_STR(res.entries[0].xattr_names[1], "security.capability");
	CHECK_INT(res.entries[0].xattr_lens[1], 3);
	CHECK(memcmp(res.entries[0].xattr_values[1], "new", 3) == 0);
	CHECK_INT(res.entries[1].e.n_xattrs, 0);
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&records);
	tb_free(&t);
}

static void test_pax_overrides(void)
{
	struct tar_buffer t = { 0 }, records = { 0 }, global = { 0 };
	struct tar_header h = { .name = "ids", .uid = 1, .gid = 2, .size = 3 };
	struct read_result res;

	tb_pax_string(&global, "path", "global-path-is-ignored");
	tb_pax_string(&global, "comment", "0123456789abcdef");
	tb_extension(&t, 'g', global.data, global.len);
	tb_pax_string(&records, "uid", "4294967296");
	tb_pax_string(&records, "gid", "70000");
	tb_pax_string(&records, "size", "2");
	/* An empty value deletes the earlier record: the header's path counts. */
	tb_pax_string(&records, "path", "replaced");
	tb_pax_string(&records, "path", "");
	tb_extension(&t, 'x', records.data, records.len);
	tb_header(&t, &h);
	tb_data(&t, "ok", 2);
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 1);
	CHECK_STR(res.entries[0].name, "ids");
	CHECK_INT(res.entries[0].e.uid, 4294967296ll);
	CHECK_INT(res.entries[0].e.gid, 70000);
	CHECK_INT(res.entries[0].e.size, 2);
	CHECK_INT(res.entries[0].data_len, 2);
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&records);
	tb_free(&global);
	tb_free(&t);
}

static void test_bad_checksum(void)
{
	struct tar_buffer t = { 0 };
	struct tar_header bad = { .name = "bad", .bad_checksum = true };
	struct tar_header signed_sum = { .name = "caf\xc3\xa9", .signed_checksum = true };
	struct read_result res;

	tb_file(&t, "good", "g", 1);
	tb_header(&t, &bad);
	tb_end(&t);
	res = read_archive(&t, 0);
	CHECK_INT(res.status, -EBADMSG);
	CHECK_INT(res.n, 1);
	free_result(&res);
	tb_free(&t);

	/* Old writers summed signed bytes; that checksum is accepted too. */
	tb_header(&t, &signed_sum);
	tb_end(&t);
	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 1);
	free_result(&res);
	tb_free(&t);
}

/* Cut the archive at every interesting length and expect -EBADMSG. */
static void test_truncation(void)
{
	struct tar_buffer t = { 0 }, records = { 0 };
	uint8_t data[1000];
	static const size_t cuts[] = {
		100,            /* inside the pax header block */
		700,            /* inside the pax records */
		1024 + 300,     /* inside the file's header */
		1536 + 10,      /* inside the data */
		1536 + 1000 + 5, /* inside the padding */
		2560 + 100,     /* inside the second file's header */
		3072 + 512 + 7, /* inside the second end-of-archive block */
	};

	memset(data, 'd', sizeof(data));
	tb_pax_string(&records, "path", "pax-name");
	tb_extension(&t, 'x', records.data, records.len);
	tb_file(&t, "data", data, sizeof(data));
	tb_file(&t, "second", "", 0);
	tb_end(&t);
	CHECK_INT(t.len, 3072 + 1024);

	for (size_t i = 0; i < IM_ARRAY_SIZE(cuts); i++) {
		struct tar_buffer cut = { t.data, cuts[i], cuts[i] };
		struct read_result res = read_archive(&cut, 0);

		if (res.status != -EBADMSG)
			fprintf(stderr, "cut at %zu\n", cuts[i]);
		CHECK_INT(res.status, -EBADMSG);
		free_result(&res);
	}
	tb_free(&records);
	tb_free(&t);
}

static void test_end_of_archive_forms(void)
{
	struct tar_buffer t = { 0 };
	struct read_result res;

	/* No end marker at all, at a header boundary: accepted. */
	tb_file(&t, "a", "a", 1);
	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 1);
	check_pass_through(&res, &t);
	free_result(&res);

	/* One zero block, then the end of the stream: accepted. */
	tb_zeros(&t, 512);
	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	check_pass_through(&res, &t);
	free_result(&res);

	/* A zero block followed by a header: rejected. */
	tb_file(&t, "b", "", 0);
	res = read_archive(&t, 0);
	CHECK_INT(res.status, -EBADMSG);
	free_result(&res);
	tb_free(&t);

	/* An empty stream is an empty archive. */
	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 0);
	free_result(&res);
}

static void test_trailing_bytes(void)
{
	struct tar_buffer t = { 0 };
	struct read_result res;

	tb_file(&t, "a", "abc", 3);
	tb_end(&t);
	tb_zeros(&t, 1000);
	tb_append(&t, "junk after the end", 18);

	res = read_archive(&t, 3);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 1);
	CHECK_INT(res.trailer_len, 1018);
	CHECK(memcmp(res.trailer + 1000, "junk after the end", 18) == 0);
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&t);
}

static void test_duplicates_pass_through(void)
{
	struct tar_buffer t = { 0 };
	struct tar_header child = { .name = "d/f", .size = 0 };
	struct tar_header dir = { .name = "d/", .type = '5' };
	struct read_result res;

	tb_header(&t, &child);
	tb_header(&t, &dir);
	tb_file(&t, "x", "1", 1);
	tb_file(&t, "x", "2", 1);
	tb_end(&t);

	res = read_archive(&t, 0);
	CHECK_INT(res.status, 0);
	CHECK_INT(res.n, 4);
	CHECK_STR(res.entries[1].name, "d/");
	CHECK_STR(res.entries[3].name, "x");
	CHECK_INT(res.entries[3].data[0], '2');
	check_pass_through(&res, &t);
	free_result(&res);
	tb_free(&t);
}

static void test_sparse_rejected(void)
{
	struct tar_buffer t = { 0 }, records = { 0 };
	struct tar_header old_gnu = { .name = "sparse", .type = 'S', .magic = TB_MAGIC_GNU };
	struct read_result res;

	tb_header(&t, &old_gnu);
	tb_end(&t);
	res = read_archive(&t, 0);
	CHECK_INT(res.status, -ENOTSUP);
	free_result(&res);
	tb_free(&t);

	tb_pax_string(&records, "GNU.sparse.major", "1");
	tb_pax_string(&records, "GNU.sparse.minor", "0");
	tb_extension(&t, 'x', records.data, records.len);
	tb_file(&t, "GNUSparseFile.0/f", "", 0);
	tb_end(&t);
	res = read_archive(&t, 0);
	CHECK_INT(res.status, -ENOTSUP);
	free_result(&res);
	tb_free(&records);
	tb_free(&t);
}

static void test_malformed_headers(void)
{
	static const char *const bad_records[] = {
		"8 path=x\n",           /* length one short */
		"11 path=x\n",          /* length one long */
		"9 path x\n",           /* no '=' */
		"6 =xx\n",              /* empty key */
		"x path=x\n",           /* no length */
		"99999999999999999999999 path=x\n",
		"11 size=-1\n",
		"14 mtime=1.2a\n",
		"13 uid=12345\n\n",     /* bytes after the last record */
	};
	struct tar_header vendor = { .name = "volume", .type = 'V' };
	struct tar_header empty_name = { .name = "" };
	struct tar_buffer t = { 0 };
	struct read_result res;

	for (size_t i = 0; i < IM_ARRAY_SIZE(bad_records); i++) {
		tb_extension(&t, 'x', bad_records[i], strlen(bad_records[i]));
		tb_file(&t, "f", "", 0);
		tb_end(&t);
		res = read_archive(&t, 0);
		if (res.status != -EBADMSG)
			fprintf(stderr, "record \"%s\"\n", bad_records[i]);
		CHECK_INT(res.status, -EBADMSG);
		free_result(&res);
		tb_free(&t);
	}

	tb_header(&t, &vendor);
	tb_end(&t);
	res = read_archive(&t, 0);
	CHECK_INT(res.status, -ENOTSUP);
	free_result(&res);
	tb_free(&t);

	tb_header(&t, &empty_name);
	tb_end(&t);
	res = read_archive(&t, 0);
	CHECK_INT(res.status, -EBADMSG);
	free_result(&res);
	tb_free(&t);

	/* Extension headers with no entry after them. */
	tb_extension(&t, 'L', "name", 5);
	tb_end(&t);
	res = read_archive(&t, 0);
	CHECK_INT(res.status, -EBADMSG);
	free_result(&res);
	tb_free(&t);
}

static void test_numeric_fields(void)
{
	int64_t v;

	CHECK_INT(im_tar_parse_numeric((const uint8_t *)"0000644\0", 8, &v), 0);
	CHECK_INT(v, 0644);
	CHECK_INT(im_tar_parse_numeric((const uint8_t *)"  644 \0\0", 8, &v), 0);
	CHECK_INT(v, 0644);
	CHECK_INT(im_tar_parse_numeric((const uint8_t *)"\0\0\0\0\0\0\0\0", 8, &v), 0);
	CHECK_INT(v, 0);
	CHECK_INT(im_tar_parse_numeric((const uint8_t *)"0006 44\0", 8, &v), -EINVAL);
	CHECK_INT(im_tar_parse_numeric((const uint8_t *)"0000008\0", 8, &v), -EINVAL);
	CHECK_INT(im_tar_parse_numeric((const uint8_t *)"7777777777777777777777", 22, &v), -ERANGE);

	static const uint8_t pos[12] = { 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00 };
	static const uint8_t neg[12] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					 0xff, 0xff, 0xff, 0xfe };
	static const uint8_t huge[12] = { 0x80, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0 };
	CHECK_INT(im_tar_parse_numeric(pos, 12, &v), 0);
	CHECK_INT(v, 512);
	CHECK_INT(im_tar_parse_numeric(neg, 12, &v), 0);
	CHECK_INT(v, -2);
	CHECK_INT(im_tar_parse_numeric(huge, 12, &v), -ERANGE);
}

static void test_pax_time_parser(void)
{
	int64_t sec;
	uint32_t nsec;

	CHECK_INT(im_tar_parse_pax_time("0", 1, &sec, &nsec), 0);
	CHECK_INT(sec, 0);
	CHECK_INT(im_tar_parse_pax_time("-0.25", 5, &sec, &nsec), 0);
	CHECK_INT(sec, -1);
	CHECK_INT(nsec, 750000000);
	CHECK_INT(im_tar_parse_pax_time("-7", 2, &sec, &nsec), 0);
	CHECK_INT(sec, -7);
	CHECK_INT(nsec, 0);
	CHECK_INT(im_tar_parse_pax_time("+5.000000001", 12, &sec, &nsec), 0);
	CHECK_INT(sec, 5);
	CHECK_INT(nsec, 1);
	CHECK_INT(im_tar_parse_pax_time(".5", 2, &sec, &nsec), -EINVAL);
	CHECK_INT(im_tar_parse_pax_time("", 0, &sec, &nsec), -EINVAL);
	CHECK_INT(im_tar_parse_pax_time("1e9", 3, &sec, &nsec), -EINVAL);
	CHECK_INT(im_tar_parse_pax_time("99999999999999999999", 20, &sec, &nsec), -ERANGE);
}

int main(void)
{
	/* Rejections are expected; keep their log lines out of the output. */
	im_log_set_level(IM_LOG_ERR - 1);

	RUN_TEST(test_ustar_entry_types);
	RUN_TEST(test_raw_includes_padding);
	RUN_TEST(test_unread_data_skipped);
	RUN_TEST(test_ustar_prefix);
	RUN_TEST(test_pax_long_names);
	RUN_TEST(test_gnu_long_names);
	RUN_TEST(test_gnu_name_beats_pax_path);
	RUN_TEST(test_long_name_over_cap);
	RUN_TEST(test_base256_size);
	RUN_TEST(test_pax_size_8gib);
	RUN_TEST(test_mtimes);
	RUN_TEST(test_schily_xattrs);
	RUN_TEST(test_pax_overrides);
	RUN_TEST(test_bad_checksum);
	RUN_TEST(test_truncation);
	RUN_TEST(test_end_of_archive_forms);
	RUN_TEST(test_trailing_bytes);
	RUN_TEST(test_duplicates_pass_through);
	RUN_TEST(test_sparse_rejected);
	RUN_TEST(test_malformed_headers);
	RUN_TEST(test_numeric_fields);
	RUN_TEST(test_pax_time_parser);
	return check_exit_status();
}
