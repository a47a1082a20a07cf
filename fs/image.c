/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Opening an image: reference -> manifest (verified against its digest) ->
 * per-layer TOC (verified against the digest in the layer's annotations) ->
 * compiled index, stored in the cache keyed by TOC digest so that a second
 * mount or a restart never parses JSON again.
 */
#include "fs/image.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "cache/manifest_cache.h"
#include "common/util.h"
#include "index/toc.h"
#include "registry/credentials.h"

const char *im_host_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__i386__)
	return "386";
#elif defined(__arm__)
	return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "ppc64le";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
	return "riscv64";
#else
	return "unknown";
#endif
}

static bool host_is_insecure(const char *host, const struct im_image_options *opts)
{
	if (im_registry_host_is_loopback(host))
		return true;
	for (size_t i = 0; i < opts->n_insecure_hosts; i++) {
		if (strcmp(host, opts->insecure_hosts[i]) == 0)
			return true;
	}
	return false;
}

static int connect_registry(struct im_image *img, const struct im_image_options *opts)
{
	struct im_credentials creds;
	struct im_registry_options ropts = {
		.plain_http = host_is_insecure(img->ref.registry, opts),
		.tls_verify = true,
		.timeout_seconds = opts->read_timeout_seconds,
		.certs_dir = opts->certs_dir ? opts->certs_dir : IM_DEFAULT_CERTS_DIR,
		.ca_file = opts->ca_file,
		.mirror_credentials = true,
		.auth_file = opts->auth_file,
		.repository = img->ref.repository,
	};
	int r;

	r = im_credentials_find_repository(img->ref.registry, img->ref.repository,
					   opts->auth_file, &creds);
	if (r < 0)
		return r;
	ropts.username = creds.username;
	ropts.password = creds.password;
	ropts.identity_token = creds.identity_token;

	r = im_registry_new(img->ref.registry, &ropts, &img->registry);
	im_credentials_clear(&creds);
	return r;
}

/*
 * Get the manifest named by reference (a tag or a digest string). One named
 * by digest comes from the cache when it was fetched before, so a remount
 * needs no registry. Every fetched manifest is verified by the registry
 * client and then cached by its digest.
 */
static int get_manifest(struct im_image *img, const char *reference,
			uint8_t **body, size_t *len, char **media_type,
			struct im_digest *digest)
{
	int r;

	if (im_digest_parse(reference, digest) == 0) {
		r = im_manifest_cache_get(img->store, digest, body, len, media_type);
		if (r == 0) {
			im_debug("manifest %s of %s/%s read from the cache", reference,
				 img->ref.registry, img->ref.repository);
			return 0;
		}
	}

	r = im_registry_get_manifest(img->registry, img->ref.repository, reference,
				     body, len, media_type, digest);
	if (r < 0)
		return im_log_errno(r, "fetching manifest \"%s\" of %s/%s failed",
				    reference, img->ref.registry, img->ref.repository);

	r = im_manifest_cache_put(img->store, digest, *body, *len, *media_type);
	if (r < 0)
		im_debug("caching manifest %s failed: %s", reference, strerror(-r));
	return 0;
}

/*
 * Resolve the reference to one image manifest. A tag is resolved once and
 * the digest is logged. An index is narrowed to the requested platform, and
 * the chosen manifest is fetched by digest.
 */
static int resolve_manifest(struct im_image *img, const struct im_image_options *opts)
{
	char digest_text[IM_DIGEST_STRING_LEN];
	_cleanup_free_ uint8_t *body = NULL;
	_cleanup_free_ char *media_type = NULL;
	struct im_digest digest;
	size_t len;
	int r;

	if (img->ref.has_digest)
		im_digest_format(&img->ref.digest, digest_text);
	r = get_manifest(img, img->ref.has_digest ? digest_text : img->ref.tag,
			 &body, &len, &media_type, &digest);
	if (r < 0)
		return r;

	if (im_media_type_is_index(media_type)) {
		struct im_digest chosen;

		r = im_index_select(body, len, opts->os, opts->arch, opts->variant, &chosen);
		if (r < 0)
			return r;
		free(body);
		free(media_type);
		body = NULL;
		media_type = NULL;
		im_digest_format(&chosen, digest_text);
		r = get_manifest(img, digest_text, &body, &len, &media_type, &digest);
		if (r < 0)
			return r;
	}

	im_digest_format(&digest, digest_text);
	if (!img->ref.has_digest || !im_digest_equal(&digest, &img->ref.digest))
		im_info("resolved %s/%s:%s to %s", img->ref.registry, img->ref.repository,
			img->ref.tag ? img->ref.tag : "", digest_text);

	r = im_manifest_parse(body, len, media_type, &img->manifest);
	if (r < 0)
		return r;
	img->manifest_digest = digest;

	if (asprintf(&img->display_name, "%s/%s@%s", img->ref.registry,
		     img->ref.repository, digest_text) < 0) {
		img->display_name = NULL;
		return -ENOMEM;
	}
	return 0;
}

static const char *annotation_either(const struct im_descriptor *d,
				     const char *key, const char *old_key)
{
	const char *value = im_descriptor_annotation(d, key);

	return value ? value : im_descriptor_annotation(d, old_key);
}

/* Fetch the TOC with one range request, verify, decompress and compile it
 * into an index file at path. */
/*
 * A full or read-only cache must not fail the mount: keep the index in
 * memory for this process instead. Return: 1 with img->indexes[i] set, or
 * -errno.
 */
static int keep_index_in_memory(struct im_image *img, size_t i,
				struct im_index_builder *builder, const char *path,
				int error)
{
	size_t len;
	int r;

	r = im_index_builder_write_buffer(builder, &img->index_buffers[i], &len);
	if (r < 0)
		return r;
	r = im_layer_index_open_buffer(img->index_buffers[i], len, &img->indexes[i]);
	if (r < 0)
		return r;
	im_warn("cannot store compiled index \"%s\": %s; keeping it in memory, so the "
		"next mount fetches the table of contents again", path, strerror(-error));
	return 1;
}

static int compile_layer_index(struct im_image *img, size_t i,
			       const struct im_toc_location *loc, const char *path)
{
	const struct im_descriptor *desc = &img->manifest.layers[i];
	struct im_index_builder *builder = NULL;
	_cleanup_free_ uint8_t *compressed = NULL;
	_cleanup_free_ void *json = NULL;
	char expected[IM_DIGEST_STRING_LEN], actual[IM_DIGEST_STRING_LEN];
	struct im_digest digest;
	int r;

	if (loc->length > IM_TOC_MAX_LENGTH)
		return -EFBIG;
	compressed = malloc(loc->length ? loc->length : 1);
	if (!compressed)
		return -ENOMEM;

	r = im_registry_get_blob_range(img->registry, img->ref.repository, &desc->digest,
				       loc->offset, loc->length, compressed);
	if (r < 0)
		return im_log_errno(r, "fetching the table of contents of layer %zu failed", i);

	im_sha256(compressed, loc->length, &digest);
	if (!im_digest_equal(&digest, &loc->digest)) {
		im_digest_format(&loc->digest, expected);
		im_digest_format(&digest, actual);
		im_err("table of contents of layer %zu does not match its annotation: expected %s, got %s",
		       i, expected, actual);
		return -EBADMSG;
	}

	r = im_toc_decompress(compressed, loc->length, loc, &json);
	if (r < 0)
		return im_log_errno(r, "decompressing the table of contents of layer %zu failed", i);

	r = im_toc_compile(json, loc->uncompressed_length, &loc->digest, desc->size, &builder);
	if (r < 0) {
		im_err("layer %zu of %s has an invalid table of contents; the image cannot be mounted",
		       i, img->display_name);
		return r;
	}

	r = im_index_builder_write(builder, path);
	if (r == -ENOSPC || r == -EDQUOT || r == -EROFS || r == -EACCES)
		r = keep_index_in_memory(img, i, builder, path, r);
	im_index_builder_free(builder);
	if (r < 0)
		return im_log_errno(r, "writing compiled index \"%s\" failed", path);
	return r;
}

/* Open a cached index only if it is intact and belongs to this TOC and blob. */
static int open_cached_index(const char *path, const struct im_toc_location *loc,
			     uint64_t blob_size, struct im_layer_index **ret)
{
	struct im_layer_index *idx;
	int r;

	r = im_layer_index_open(path, &idx);
	if (r < 0)
		return r;

	if (!im_digest_equal(im_layer_index_toc_digest(idx), &loc->digest) ||
	    im_layer_index_blob_size(idx) != blob_size) {
		im_layer_index_free(idx);
		return -EBADMSG;
	}
	*ret = idx;
	return 0;
}

static int load_layer_index(struct im_image *img, size_t i,
			    const struct im_image_options *opts)
{
	const struct im_descriptor *desc = &img->manifest.layers[i];
	const char *position, *checksum;
	struct im_toc_location loc;
	char path[PATH_MAX];
	int r;

	position = annotation_either(desc, IM_ZSTD_CHUNKED_POSITION_KEY,
				     IM_ZSTD_CHUNKED_OLD_POSITION_KEY);
	checksum = annotation_either(desc, IM_ZSTD_CHUNKED_CHECKSUM_KEY,
				     IM_ZSTD_CHUNKED_OLD_CHECKSUM_KEY);
	if ((!position || !checksum) && opts->allow_unindexed_layers)
		return 0;
	if (!position || !checksum) {
		/* TODO: read gzip and plain zstd layers through a side index or a
		 * whole-layer fetch instead of rejecting them. */
		im_err("layer %zu (%s) of %s has no zstd:chunked table of contents; "
		       "convert the image with 'imgmount convert' and mount the result",
		       i, desc->media_type ? desc->media_type : "no media type", img->display_name);
		return -ENOTSUP;
	}

	r = im_toc_location_parse(position, checksum, desc->size, &loc);
	if (r < 0)
		return r;

	im_chunk_store_index_path(img->store, &loc.digest, path);
	r = open_cached_index(path, &loc, desc->size, &img->indexes[i]);
	if (r == 0)
		return 0;
	if (r == -EBADMSG) {
		im_warn("cached index \"%s\" is damaged or stale; compiling it again", path);
		unlink(path);
	}

	r = compile_layer_index(img, i, &loc, path);
	if (r < 0)
		return r;
	if (r == 1)
		return 0;
	return open_cached_index(path, &loc, desc->size, &img->indexes[i]);
}

static int load_layers(struct im_image *img, const struct im_image_options *opts)
{
	size_t n = img->manifest.n_layers;

	img->indexes = calloc(n ? n : 1, sizeof(*img->indexes));
	img->blobs = calloc(n ? n : 1, sizeof(*img->blobs));
	img->index_buffers = calloc(n ? n : 1, sizeof(*img->index_buffers));
	if (!img->indexes || !img->blobs || !img->index_buffers)
		return -ENOMEM;
	img->n_layers = n;

	/* TODO: fetch the TOCs of several layers in parallel. */
	for (size_t i = 0; i < n; i++) {
		int r = load_layer_index(img, i, opts);

		if (r < 0)
			return r;
		img->blobs[i] = (struct im_blob_ref) {
			.registry = img->registry,
			.repository = img->ref.repository,
			.digest = img->manifest.layers[i].digest,
			.size = img->manifest.layers[i].size,
		};
	}
	return 0;
}

int im_image_open(const char *reference, const struct im_image_options *opts,
		  struct im_image **ret)
{
	struct im_image *img;
	int r;

	img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;

	r = im_reference_parse(reference, &img->ref);
	if (r < 0)
		goto fail;

	r = connect_registry(img, opts);
	if (r < 0)
		goto fail;

	r = im_chunk_store_open(opts->cache_dir, &img->store);
	if (r < 0) {
		im_log_errno(r, "opening cache directory \"%s\" failed", opts->cache_dir);
		goto fail;
	}

	r = resolve_manifest(img, opts);
	if (r < 0)
		goto fail;

	r = load_layers(img, opts);
	if (r < 0)
		goto fail;

	*ret = img;
	return 0;

fail:
	im_image_free(img);
	return r;
}

void im_image_free(struct im_image *img)
{
	if (!img)
		return;

	for (size_t i = 0; i < img->n_layers; i++)
		im_layer_index_free(img->indexes[i]);
	for (size_t i = 0; i < img->n_layers && img->index_buffers; i++)
		free(img->index_buffers[i]);
	free(img->index_buffers);
	free(img->indexes);
	free(img->blobs);
	im_manifest_clear(&img->manifest);
	im_chunk_store_free(img->store);
	im_registry_free(img->registry);
	free(img->display_name);
	im_reference_clear(&img->ref);
	free(img);
}
