/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoding of one tar entry from the header blocks that tar_reader.c
 * collected in the raw buffer. It detects the format by its magic, applies
 * pax records and GNU long names, parses the numeric fields, and copies
 * every string into the arena that the returned entry points to. The rules
 * are listed in tar_reader.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "index/tar_fields.h"
#include "index/tar_reader_internal.h"

#define XATTR_PREFIX "SCHILY.xattr."

enum header_format {
	FORMAT_V7,      /* no magic: no prefix and no device numbers */
	FORMAT_USTAR,   /* "ustar\0" "00", also pax */
	FORMAT_STAR,    /* ustar with "tar\0" at 508 and a 131-byte prefix */
	FORMAT_GNU,     /* "ustar " " \0": no prefix */
};

/* Values from pax records that replace header fields; a false has_* flag
 * means the header field counts. */
struct overrides {
	bool has_path, has_linkpath, has_size, has_mtime, has_uid, has_gid;
	bool sparse;    /* a GNU.sparse.* record was seen: rejected once the
			   entry's name is known, so the error can name it */
	struct span path, linkpath;
	uint64_t size, uid, gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
};

int im_tar_number(struct im_tar_reader *tr, const uint8_t *block, size_t offset,
		  size_t width, const char *field, uint64_t entry_offset,
		  int64_t *ret)
{
	int r = im_tar_parse_numeric(block + offset, width, ret);

	if (r < 0)
		return im_tar_fail(tr, -EBADMSG, entry_offset, "invalid %s field \"%.*s\"",
				   field, (int)width, (const char *)(block + offset));
	return 0;
}

static const uint8_t *raw_at(const struct im_tar_reader *tr, struct span s)
{
	return tr->raw + s.offset;
}

/*
 * Record an xattr. A later record for the same attribute replaces the
 * earlier one, and an empty value deletes it. pax gives an empty value that
 * meaning, and Go's archive/tar (used by containerd and umoci) drops such a
 * record, so an attribute with an empty value never reaches the image.
 */
static int add_xattr_ref(struct im_tar_reader *tr, struct span name, struct span value)
{
	for (size_t i = 0; i < tr->n_xattr_refs; i++) {
		struct xattr_ref *x = &tr->xattr_refs[i];

		if (x->name.len != name.len ||
		    memcmp(raw_at(tr, x->name), raw_at(tr, name), name.len) != 0)
			continue;
		if (value.len == 0)
			tr->xattr_refs[i] = tr->xattr_refs[--tr->n_xattr_refs];
		else
			x->value = value;
		return 0;
	}

	if (value.len == 0)
		return 0;

	if (tr->n_xattr_refs == tr->xattr_refs_cap) {
		size_t cap = tr->xattr_refs_cap ? 2 * tr->xattr_refs_cap : 8;
		struct xattr_ref *refs = reallocarray(tr->xattr_refs, cap, sizeof(*refs));

		if (!refs)
			return -ENOMEM;
		tr->xattr_refs = refs;
		tr->xattr_refs_cap = cap;
	}
	tr->xattr_refs[tr->n_xattr_refs++] = (struct xattr_ref) { name, value };
	return 0;
}

static bool key_is(const struct im_pax_record *rec, const char *key)
{
	return rec->key_len == strlen(key) && memcmp(rec->key, key, rec->key_len) == 0;
}

static bool key_has_prefix(const struct im_pax_record *rec, const char *prefix)
{
	size_t n = strlen(prefix);

	return rec->key_len >= n && memcmp(rec->key, prefix, n) == 0;
}

static struct span span_of(const struct im_tar_reader *tr, const uint8_t *p, size_t len)
{
	return (struct span) { (size_t)(p - tr->raw), len };
}

/*
 * Apply one pax record. An empty value deletes the override, so the header
 * field counts again, as in Go's archive/tar reader.
 */
static int apply_pax_record(struct im_tar_reader *tr, const struct im_pax_record *rec,
			    struct overrides *o, uint64_t entry_offset)
{
	const char *value = (const char *)rec->value;
	bool empty = rec->value_len == 0;
	bool has_nul = memchr(rec->value, '\0', rec->value_len) != NULL;
	int r = 0;

	if (key_has_prefix(rec, "GNU.sparse.")) {
		o->sparse = true;
		return 0;
	}

	if (key_has_prefix(rec, XATTR_PREFIX)) {
		size_t prefix = strlen(XATTR_PREFIX);

		if (rec->key_len == prefix)
			return im_tar_fail(tr, -EBADMSG, entry_offset,
					   "pax record \"%s\" has no attribute name", XATTR_PREFIX);
		return add_xattr_ref(tr, span_of(tr, (const uint8_t *)rec->key + prefix,
						 rec->key_len - prefix),
				     span_of(tr, rec->value, rec->value_len));
	}

	if (key_is(rec, "path") || key_is(rec, "linkpath")) {
		bool is_path = key_is(rec, "path");

		if (has_nul)
			return im_tar_fail(tr, -EBADMSG, entry_offset,
					   "pax record \"%s\" contains a NUL byte",
					   is_path ? "path" : "linkpath");
		if (is_path) {
			o->has_path = !empty;
			o->path = span_of(tr, rec->value, rec->value_len);
		} else {
			o->has_linkpath = !empty;
			o->linkpath = span_of(tr, rec->value, rec->value_len);
		}
	} else if (key_is(rec, "size")) {
		o->has_size = !empty;
		if (!empty)
			r = im_tar_parse_pax_decimal(value, rec->value_len, &o->size);
	} else if (key_is(rec, "uid")) {
		o->has_uid = !empty;
		if (!empty)
			r = im_tar_parse_pax_decimal(value, rec->value_len, &o->uid);
	} else if (key_is(rec, "gid")) {
		o->has_gid = !empty;
		if (!empty)
			r = im_tar_parse_pax_decimal(value, rec->value_len, &o->gid);
	} else if (key_is(rec, "mtime")) {
		o->has_mtime = !empty;
		if (!empty)
			r = im_tar_parse_pax_time(value, rec->value_len, &o->mtime_sec,
						  &o->mtime_nsec);
	}
	/* Other keys (atime, ctime, uname, gname, charset, comment,
	 * LIBARCHIVE.xattr.* and vendor keys) do not change the entry. */

	if (r < 0)
		return im_tar_fail(tr, -EBADMSG, entry_offset, "invalid pax record \"%.*s=%.*s\"",
				   (int)rec->key_len, rec->key,
				   (int)(rec->value_len > 64 ? 64 : rec->value_len), value);
	return 0;
}

static int apply_pax_header(struct im_tar_reader *tr, const struct extension *ext,
			    struct overrides *o, uint64_t entry_offset)
{
	const uint8_t *data = raw_at(tr, ext->data);
	struct im_pax_record rec;
	size_t pos = 0;
	int r;

	for (;;) {
		r = im_tar_pax_next(data, ext->data.len, &pos, &rec);
		if (r == 0)
			return 0;
		if (r < 0)
			return im_tar_fail(tr, -EBADMSG, entry_offset,
					   "malformed pax record at byte %zu of a pax header",
					   pos);

		r = apply_pax_record(tr, &rec, o, entry_offset);
		if (r < 0)
			return r;
	}
}

/*
 * Apply the extension headers in stream order; later ones override earlier
 * ones. A non-empty GNU long name or link wins over pax "path" or
 * "linkpath" whatever the order, as in Go's archive/tar reader.
 */
static int apply_extensions(struct im_tar_reader *tr, struct overrides *o,
			    struct span *long_name, struct span *long_link,
			    uint64_t entry_offset)
{
	tr->n_xattr_refs = 0;

	for (size_t i = 0; i < tr->n_extensions; i++) {
		const struct extension *ext = &tr->extensions[i];
		struct span text = ext->data;
		int r;

		switch (ext->type) {
		case 'x':
			r = apply_pax_header(tr, ext, o, entry_offset);
			if (r < 0)
				return r;
			break;
		case 'L':
		case 'K':
			text.len = im_tar_field_length(raw_at(tr, ext->data), ext->data.len);
			*(ext->type == 'L' ? long_name : long_link) = text;
			break;
		default:
			/* 'g': global records are ignored (see tar_reader.h). */
			break;
		}
	}

	if (long_name->len == 0 && o->has_path)
		*long_name = o->path;
	if (long_link->len == 0 && o->has_linkpath)
		*long_link = o->linkpath;
	return 0;
}

static enum header_format detect_format(const uint8_t *block)
{
	const uint8_t *magic = block + MAGIC_OFFSET;

	if (memcmp(magic, "ustar\0" "00", 8) == 0)
		return memcmp(block + STAR_TRAILER_OFFSET, "tar\0", 4) == 0 ? FORMAT_STAR
									    : FORMAT_USTAR;
	if (memcmp(magic, "ustar  \0", 8) == 0)
		return FORMAT_GNU;
	return FORMAT_V7;
}

/* Copy len bytes into the arena with a NUL after them. copy_strings() sizes
 * the arena for all strings of the entry first, so this never overflows. */
static const char *arena_add(struct im_tar_reader *tr, const void *data, size_t len)
{
	char *p = tr->arena + tr->arena_len;

	memcpy(p, data, len);
	p[len] = '\0';
	tr->arena_len += len + 1;
	return p;
}

/* Name and link strings of an entry before they are copied to the arena. */
struct entry_strings {
	const uint8_t *prefix, *name, *link;
	size_t prefix_len, name_len, link_len;
};

static int copy_strings(struct im_tar_reader *tr, const struct entry_strings *s)
{
	struct im_tar_entry *e = &tr->entry;
	size_t need = s->prefix_len + 1 + s->name_len + 1 + s->link_len + 1;
	char *name;

	for (size_t i = 0; i < tr->n_xattr_refs; i++)
		need += tr->xattr_refs[i].name.len + 1 + tr->xattr_refs[i].value.len + 1;

	if (need > tr->arena_cap) {
		char *arena = realloc(tr->arena, need);

		if (!arena)
			return -ENOMEM;
		tr->arena = arena;
		tr->arena_cap = need;
	}
	if (tr->n_xattr_refs > tr->xattrs_cap) {
		struct im_tar_xattr *x = reallocarray(tr->xattrs, tr->n_xattr_refs, sizeof(*x));

		if (!x)
			return -ENOMEM;
		tr->xattrs = x;
		tr->xattrs_cap = tr->n_xattr_refs;
	}

	tr->arena_len = 0;
	if (s->prefix_len > 0) {
		/* The ustar prefix and name are joined with a slash. */
		name = tr->arena;
		memcpy(name, s->prefix, s->prefix_len);
		name[s->prefix_len] = '/';
		tr->arena_len = s->prefix_len + 1;
		arena_add(tr, s->name, s->name_len);
		e->name_len = s->prefix_len + 1 + s->name_len;
	} else {
		name = (char *)arena_add(tr, s->name, s->name_len);
		e->name_len = s->name_len;
	}
	e->name = name;
	e->link_name = arena_add(tr, s->link, s->link_len);
	e->link_name_len = s->link_len;

	for (size_t i = 0; i < tr->n_xattr_refs; i++) {
		const struct xattr_ref *ref = &tr->xattr_refs[i];

		tr->xattrs[i].name = arena_add(tr, raw_at(tr, ref->name), ref->name.len);
		tr->xattrs[i].value = (const uint8_t *)arena_add(tr, raw_at(tr, ref->value),
								 ref->value.len);
		tr->xattrs[i].value_len = ref->value.len;
	}
	e->xattrs = tr->xattrs;
	e->n_xattrs = tr->n_xattr_refs;
	return 0;
}

static int decode_type(struct im_tar_reader *tr, char flag, const struct im_tar_entry *e,
		       uint64_t entry_offset, enum im_tar_type *ret)
{
	switch (flag) {
	case '\0':
		/* Pre-POSIX regular file; a trailing slash marks a directory. */
		*ret = e->name_len > 0 && e->name[e->name_len - 1] == '/' ? IM_TAR_DIR : IM_TAR_REG;
		return 0;
	case '0':
	case '7':
		*ret = IM_TAR_REG;
		return 0;
	case '1': case '2': case '3': case '4': case '5': case '6':
		*ret = (enum im_tar_type)flag;
		return 0;
	case 'S':
		return im_tar_fail(tr, -ENOTSUP, entry_offset,
				   "\"%s\" is a GNU sparse file, which is not supported; "
				   "recreate the layer without sparse files", e->name);
	default:
		return im_tar_fail(tr, -ENOTSUP, entry_offset,
				   "\"%s\" has the unsupported type '%c' (0x%02x)", e->name,
				   flag >= 0x20 && flag < 0x7f ? flag : '?',
				   (unsigned)(uint8_t)flag);
	}
}

/* Decode the numeric fields of the entry's own header block. */
static int decode_numbers(struct im_tar_reader *tr, const uint8_t *block,
			  enum header_format format, const struct overrides *o,
			  uint64_t entry_offset)
{
	struct im_tar_entry *e = &tr->entry;
	int64_t mode, uid, gid, size, mtime, major = 0, minor = 0;
	bool has_device_fields = format != FORMAT_V7 &&
				 (e->type == IM_TAR_CHAR || e->type == IM_TAR_BLOCK);
	const struct {
		size_t offset, width;
		const char *name;
		int64_t *value;
	} fields[] = {
		{ MODE_OFFSET, ID_WIDTH, "mode", &mode },
		{ UID_OFFSET, ID_WIDTH, "uid", &uid },
		{ GID_OFFSET, ID_WIDTH, "gid", &gid },
		{ SIZE_OFFSET, TIME_WIDTH, "size", &size },
		{ MTIME_OFFSET, TIME_WIDTH, "mtime", &mtime },
		/* V7 headers have no device fields; other types ignore them. */
		{ DEVMAJOR_OFFSET, ID_WIDTH, "devmajor", has_device_fields ? &major : NULL },
		{ DEVMINOR_OFFSET, ID_WIDTH, "devminor", has_device_fields ? &minor : NULL },
	};

	for (size_t i = 0; i < IM_ARRAY_SIZE(fields); i++) {
		int r;

		if (!fields[i].value)
			continue;
		r = im_tar_number(tr, block, fields[i].offset, fields[i].width, fields[i].name,
				  entry_offset, fields[i].value);
		if (r < 0)
			return r;
	}

	if (mode < 0 || uid < 0 || gid < 0 || size < 0 ||
	    major < 0 || major > UINT32_MAX || minor < 0 || minor > UINT32_MAX)
		return im_tar_fail(tr, -EBADMSG, entry_offset,
				   "\"%s\" has a negative or out-of-range mode, uid, gid, size or "
				   "device number", e->name);

	e->mode = (uint32_t)mode & 07777;
	e->uid = o->has_uid ? o->uid : (uint64_t)uid;
	e->gid = o->has_gid ? o->gid : (uint64_t)gid;
	e->size = o->has_size ? o->size : (uint64_t)size;
	e->mtime_sec = o->has_mtime ? o->mtime_sec : mtime;
	e->mtime_nsec = o->has_mtime ? o->mtime_nsec : 0;
	e->dev_major = (uint32_t)major;
	e->dev_minor = (uint32_t)minor;

	/* Only regular files carry data (see tar_reader.h). */
	if (e->type != IM_TAR_REG)
		e->size = 0;
	return 0;
}

int im_tar_decode_entry(struct im_tar_reader *tr, size_t block_offset, uint64_t entry_offset)
{
	struct im_tar_entry *e = &tr->entry;
	struct overrides o = { 0 };
	struct span long_name = { 0 }, long_link = { 0 };
	bool has_long_name, has_long_link;
	struct entry_strings s = { 0 };
	enum header_format format;
	const uint8_t *block;
	int r;

	r = apply_extensions(tr, &o, &long_name, &long_link, entry_offset);
	if (r < 0)
		return r;
	/* An empty pax value counts as absent, so a used override is non-empty. */
	has_long_name = long_name.len > 0;
	has_long_link = long_link.len > 0;

	block = tr->raw + block_offset;
	format = detect_format(block);

	if (has_long_name) {
		s.name = raw_at(tr, long_name);
		s.name_len = long_name.len;
	} else {
		size_t prefix_width = format == FORMAT_STAR ? STAR_PREFIX_WIDTH : PREFIX_WIDTH;

		s.name = block + NAME_OFFSET;
		s.name_len = im_tar_field_length(s.name, NAME_WIDTH);
		if (format == FORMAT_USTAR || format == FORMAT_STAR) {
			s.prefix = block + PREFIX_OFFSET;
			s.prefix_len = im_tar_field_length(s.prefix, prefix_width);
		}
	}
	if (has_long_link) {
		s.link = raw_at(tr, long_link);
		s.link_len = long_link.len;
	} else {
		s.link = block + LINKNAME_OFFSET;
		s.link_len = im_tar_field_length(s.link, NAME_WIDTH);
	}

	*e = (struct im_tar_entry) { .offset = entry_offset };
	r = copy_strings(tr, &s);
	if (r < 0)
		return r;
	if (e->name_len == 0)
		return im_tar_fail(tr, -EBADMSG, entry_offset, "the entry has an empty name");
	if (o.sparse)
		return im_tar_fail(tr, -ENOTSUP, entry_offset,
				   "\"%s\" is a GNU sparse file (pax GNU.sparse.* records), which is "
				   "not supported; recreate the layer without sparse files", e->name);

	r = decode_type(tr, (char)block[TYPE_OFFSET], e, entry_offset, &e->type);
	if (r < 0)
		return r;
	r = decode_numbers(tr, block, format, &o, entry_offset);
	if (r < 0)
		return r;
	if (e->size > INT64_MAX)
		return im_tar_fail(tr, -EBADMSG, entry_offset, "\"%s\" has the size %" PRIu64
				   ", larger than any tar reader accepts", e->name, e->size);

	tr->data_left = e->size;
	tr->padding_left = im_tar_padding(e->size);
	tr->state = STATE_DATA;
	return 1;
}

