/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Platform selection in an OCI image index or a Docker manifest list. The
 * document is untrusted, so entries are type-checked and counted. Entries
 * that are not image manifests (attestations, nested indexes) or whose
 * digest is not sha256 are skipped. A failed match logs the platforms that
 * the index does offer, so the user can pick one.
 */
#include "registry/manifest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "registry/json.h"

#define INDEX_MAX_MANIFESTS 4096
/* Platforms listed in the "no match" message before it is cut short. */
#define INDEX_MAX_LOGGED_PLATFORMS 16

struct platform {
	const char *os;
	const char *arch;
	const char *variant;
};

static int parse_platform(struct json_object *entry, struct platform *ret)
{
	struct json_object *platform;
	int r;

	*ret = (struct platform){};
	if (!json_object_object_get_ex(entry, "platform", &platform))
		return 0;
	if (!json_object_is_type(platform, json_type_object)) {
		im_err("invalid image index: \"platform\" is not an object");
		return -EBADMSG;
	}

	r = im_json_get_string(platform, "os", &ret->os);
	if (r < 0)
		return r;
	r = im_json_get_string(platform, "architecture", &ret->arch);
	if (r < 0)
		return r;
	return im_json_get_string(platform, "variant", &ret->variant);
}

static bool string_equal(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/*
 * A requested variant must match exactly, except that arm64 entries commonly
 * omit the variant, which then means "v8". Without a requested variant, any
 * variant of the architecture matches.
 */
static bool platform_matches(const struct platform *p, const char *os,
			     const char *arch, const char *variant)
{
	if (!string_equal(p->os, os) || !string_equal(p->arch, arch))
		return false;
	if (!variant || string_equal(p->variant, variant))
		return true;
	return !p->variant && strcmp(arch, "arm64") == 0 && strcmp(variant, "v8") == 0;
}

static void append_platform(char *list, size_t size, const struct platform *p)
{
	size_t used = strlen(list);

	if (used >= size - 1)
		return;
	snprintf(list + used, size - used, "%s%.32s/%.32s%s%.32s", used ? ", " : "",
		 p->os ? p->os : "?", p->arch ? p->arch : "?",
		 p->variant ? "/" : "", p->variant ? p->variant : "");
}

static int get_manifests(struct json_object *obj, struct json_object **ret, size_t *ret_n)
{
	struct json_object *manifests;
	size_t n;

	if (!json_object_object_get_ex(obj, "manifests", &manifests) ||
	    !json_object_is_type(manifests, json_type_array)) {
		im_err("invalid image index: missing \"manifests\" array");
		return -EBADMSG;
	}

	n = json_object_array_length(manifests);
	if (n > INDEX_MAX_MANIFESTS) {
		im_err("invalid image index: %zu entries, the limit is %d", n, INDEX_MAX_MANIFESTS);
		return -EBADMSG;
	}
	*ret = manifests;
	*ret_n = n;
	return 0;
}

/*
 * Check one entry and report whether it is a candidate. Return: 1 when it is
 * an image manifest with a sha256 digest (*ret_digest set), 0 to skip it, or
 * -EBADMSG when it is malformed.
 */
static int parse_entry(struct json_object *entry, struct platform *ret_platform,
		       struct im_digest *ret_digest)
{
	const char *media_type;
	const char *digest_text;
	int r;

	if (!json_object_is_type(entry, json_type_object)) {
		im_err("invalid image index: an entry is not an object");
		return -EBADMSG;
	}

	r = im_json_get_required_string(entry, "mediaType", &media_type);
	if (r < 0)
		return r;
	r = im_json_get_required_string(entry, "digest", &digest_text);
	if (r < 0)
		return r;
	r = parse_platform(entry, ret_platform);
	if (r < 0)
		return r;

	if (!im_media_type_is_manifest(media_type))
		return 0;
	if (im_digest_parse(digest_text, ret_digest) < 0) {
		im_debug("skipping index entry with digest \"%.80s\": only sha256 is supported",
			 digest_text);
		return 0;
	}
	return 1;
}

static int select_entry(struct json_object *manifests, size_t n, const char *os,
			const char *arch, const char *variant, struct im_digest *ret)
{
	char offered[INDEX_MAX_LOGGED_PLATFORMS * 48] = "";
	size_t n_offered = 0;

	for (size_t i = 0; i < n; i++) {
		struct platform p;
		struct im_digest digest;
		int r = parse_entry(json_object_array_get_idx(manifests, i), &p, &digest);

		if (r < 0)
			return r;
		if (r == 0)
			continue;

		if (platform_matches(&p, os, arch, variant)) {
			*ret = digest;
			return 0;
		}
		if (n_offered++ < INDEX_MAX_LOGGED_PLATFORMS)
			append_platform(offered, sizeof(offered), &p);
	}

	im_err("image index has no manifest for platform \"%s/%s%s%s\"; it offers: %s%s",
	       os, arch, variant ? "/" : "", variant ? variant : "",
	       n_offered ? offered : "no image manifests",
	       n_offered > INDEX_MAX_LOGGED_PLATFORMS ? ", ..." : "");
	return -ENOENT;
}

int im_index_select(const void *json, size_t len, const char *os,
		    const char *arch, const char *variant,
		    struct im_digest *ret)
{
	struct json_object *obj = NULL;
	struct json_object *manifests;
	size_t n;
	int r;

	if (!json || !os || !arch || !ret)
		return -EINVAL;

	r = im_json_parse_object(json, len, "image index", &obj);
	if (r < 0)
		return r;

	r = im_json_check_schema_version(obj);
	if (r < 0)
		goto out;

	r = get_manifests(obj, &manifests, &n);
	if (r < 0)
		goto out;

	r = select_entry(manifests, n, os, arch, variant, ret);
out:
	json_object_put(obj);
	return r;
}
