/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `imgmount convert SOURCE DEST`: copy an image from one registry
 * reference to another, rewriting every layer as zstd:chunked so that
 * imgmount (and Podman or CRI-O) can read it lazily.
 *
 * Each layer is downloaded to an unlinked temporary file (the registry
 * client verifies its digest), decompressed and converted as a stream into
 * a second temporary file, checked against the config's diff ID, and
 * pushed. The config blob is pushed unchanged, so the image ID and every
 * diff ID stay the same; only the manifest is new. Temporary files live in
 * $TMPDIR, or /var/tmp when it is unset, because layers can be larger than
 * a tmpfs /tmp. Progress and errors go to stderr; stdout receives only the
 * digest of the pushed manifest.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/digest.h"
#include "common/log.h"
#include "common/util.h"
#include "fs/commands.h"
#include "fs/image.h"
#include "index/convert.h"
#include "index/decompress.h"
#include "index/toc.h"
#include "registry/credentials.h"
#include "registry/manifest.h"
#include "registry/reference.h"
#include "registry/registry.h"

/* Largest image config accepted; real ones are a few KiB to a few MiB. */
#define CONFIG_MAX_LENGTH (16u << 20)
#define MAX_INSECURE_HOSTS 16

struct convert_args {
	const char *source;
	const char *dest;
	const char *insecure_hosts[MAX_INSECURE_HOSTS];
	size_t n_insecure_hosts;
	const char *auth_file;      /* --authfile, or NULL for the default files */
	const char *certs_dir;      /* --certs-dir, or NULL for IM_DEFAULT_CERTS_DIR */
	const char *ca_file;        /* --ca-file, or NULL for the system's CAs */
	struct im_convert_options options;
};

/* The image being converted: where it comes from and goes to, and what is
 * known about it so far. */
struct conversion {
	const struct convert_args *args;
	struct im_reference src_ref, dst_ref;
	struct im_registry *src, *dst;
	struct im_manifest manifest;            /* of the source */
	uint8_t *config;
	size_t config_len;
	struct im_digest *diff_ids;             /* one per layer */
	struct im_descriptor *new_layers;       /* filled as layers are pushed */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: imgmount convert [OPTIONS] SOURCE DEST\n"
		"\n"
		"Copy the image SOURCE to DEST, both HOST[:PORT]/REPOSITORY[:TAG|@DIGEST],\n"
		"rewriting every layer as zstd:chunked, and print the digest of the new\n"
		"manifest. DEST needs a tag (\"latest\" when none is given).\n"
		"\n"
		"options:\n"
		"  --insecure-registry HOST  reach HOST over plain HTTP (loopback hosts\n"
		"                            always are); may be repeated\n"
		"  --chunk-size BYTES        uncompressed bytes per chunk, e.g. 256K\n"
		"                            (default 256K, from 4K to 64M)\n"
		"  --level N                 zstd compression level (default %d)\n"
		"  --authfile FILE           registry credentials file (Docker config.json\n"
		"                            format; default: the files that `mount --help`\n"
		"                            lists), used for SOURCE and DEST\n"
		"  --certs-dir DIR           containerd-style certs.d directory: DIR/HOST/\n"
		"                            hosts.toml mirrors (tried before SOURCE's\n"
		"                            registry for its manifests and layers), ca.crt,\n"
		"                            client.cert and client.key (default:\n"
		"                            " IM_DEFAULT_CERTS_DIR ")\n"
		"  --ca-file FILE            PEM CA certificates to verify registries with,\n"
		"                            instead of the system's\n"
		"  -v, --debug               log every step\n"
		"  -h, --help                show this help\n",
		IM_CONVERT_DEFAULT_LEVEL);
}

/* Return: 0 to go on, 1 after --help, or -EINVAL after a logged error. */
static int parse_args(int argc, char **argv, struct convert_args *a)
{
	static const struct option options[] = {
		{ "insecure-registry", required_argument, NULL, 'i' },
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "level", required_argument, NULL, 'l' },
		{ "authfile", required_argument, NULL, 'a' },
		{ "certs-dir", required_argument, NULL, 'C' },
		{ "ca-file", required_argument, NULL, 'A' },
		{ "debug", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*a = (struct convert_args) {
		.options = {
			.chunk_size = IM_CONVERT_DEFAULT_CHUNK_SIZE,
			.level = IM_CONVERT_DEFAULT_LEVEL,
		},
	};

	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", options, NULL)) != -1) {
		char *end;
		long level;

		switch (opt) {
		case 'i':
			if (a->n_insecure_hosts == MAX_INSECURE_HOSTS) {
				im_err("too many --insecure-registry options; at most %d are accepted",
				       MAX_INSECURE_HOSTS);
				return -EINVAL;
			}
			a->insecure_hosts[a->n_insecure_hosts++] = optarg;
			break;
		case 'a':
			a->auth_file = optarg;
			break;
		case 'C':
			a->certs_dir = optarg;
			break;
		case 'A':
			a->ca_file = optarg;
			break;
		case 'c':
			if (im_parse_size(optarg, &a->options.chunk_size) < 0) {
				im_err("invalid --chunk-size \"%s\"; give bytes such as 262144 or 256K",
				       optarg);
				return -EINVAL;
			}
			break;
		case 'l':
			errno = 0;
			level = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || level < INT_MIN || level > INT_MAX) {
				im_err("invalid --level \"%s\"; give an integer such as 3", optarg);
				return -EINVAL;
			}
			a->options.level = (int)level;
			break;
		case 'v':
			im_log_set_level(IM_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}

	/* Reject bad options before any network traffic. */
	if (im_convert_check_options(&a->options) < 0)
		return -EINVAL;

	if (argc - optind != 2) {
		im_err("convert needs SOURCE and DEST, got %d arguments", argc - optind);
		usage(stderr);
		return -EINVAL;
	}
	a->source = argv[optind];
	a->dest = argv[optind + 1];
	return 0;
}

static bool host_is_insecure(const struct convert_args *a, const char *host)
{
	if (im_registry_host_is_loopback(host))
		return true;
	for (size_t i = 0; i < a->n_insecure_hosts; i++) {
		if (strcmp(a->insecure_hosts[i], host) == 0)
			return true;
	}
	return false;
}

/* Connect to the registry of ref with the same certs.d, CA and credential
 * rules as mount, mirrors included. */
static int connect_registry(const struct convert_args *a, const struct im_reference *ref,
			    struct im_registry **ret)
{
	const char *host = ref->registry;
	struct im_credentials creds;
	struct im_registry_options opts = {
		.plain_http = host_is_insecure(a, host),
		.tls_verify = true,
		.certs_dir = a->certs_dir ? a->certs_dir : IM_DEFAULT_CERTS_DIR,
		.ca_file = a->ca_file,
		.mirror_credentials = true,
		.auth_file = a->auth_file,
		.repository = ref->repository,
	};
	int r;

	r = im_credentials_find_repository(host, ref->repository, a->auth_file, &creds);
	if (r < 0)
		return r;
	opts.username = creds.username;
	opts.password = creds.password;
	opts.identity_token = creds.identity_token;

	r = im_registry_new(host, &opts, ret);
	im_credentials_clear(&creds);
	if (r < 0)
		return im_log_errno(r, "connecting to registry \"%s\" failed", host);
	return 0;
}

static int fetch_manifest(struct conversion *cv, const char *reference, uint8_t **body,
			  size_t *len, char **media_type, struct im_digest *digest)
{
	int r = im_registry_get_manifest(cv->src, cv->src_ref.repository, reference, body, len,
					 media_type, digest);

	if (r < 0)
		return im_log_errno(r, "fetching manifest \"%s\" of %s/%s failed", reference,
				    cv->src_ref.registry, cv->src_ref.repository);
	return 0;
}

/* Resolve the source to one image manifest, choosing linux and the host's
 * architecture from an index, and parse it. */
static int resolve_source(struct conversion *cv)
{
	char reference[IM_DIGEST_STRING_LEN];
	_cleanup_free_ uint8_t *body = NULL;
	_cleanup_free_ char *media_type = NULL;
	struct im_digest digest;
	size_t len;
	int r;

	if (cv->src_ref.has_digest)
		im_digest_format(&cv->src_ref.digest, reference);
	r = fetch_manifest(cv, cv->src_ref.has_digest ? reference : cv->src_ref.tag, &body, &len,
			   &media_type, &digest);
	if (r < 0)
		return r;

	if (im_media_type_is_index(media_type)) {
		r = im_index_select(body, len, "linux", im_host_arch(), NULL, &digest);
		if (r < 0)
			return r;
		free(body);
		free(media_type);
		body = NULL;
		media_type = NULL;
		im_digest_format(&digest, reference);
		r = fetch_manifest(cv, reference, &body, &len, &media_type, &digest);
		if (r < 0)
			return r;
	}

	im_digest_format(&digest, reference);
	im_info("converting %s/%s@%s", cv->src_ref.registry, cv->src_ref.repository, reference);
	return im_manifest_parse(body, len, media_type, &cv->manifest);
}

/* Read rootfs.diff_ids from the config: one digest per layer. */
static int parse_diff_ids(struct conversion *cv)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *root = NULL, *rootfs, *ids;
	size_t n = cv->manifest.n_layers;
	int r = -EBADMSG;

	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, (const char *)cv->config, (int)cv->config_len);
	json_tokener_free(tok);

	if (!root || !json_object_object_get_ex(root, "rootfs", &rootfs) ||
	    !json_object_object_get_ex(rootfs, "diff_ids", &ids) ||
	    !json_object_is_type(ids, json_type_array)) {
		im_err("the image config has no rootfs.diff_ids array");
		goto out;
	}
	if (json_object_array_length(ids) != n) {
		im_err("the image config lists %zu diff IDs for %zu layers",
		       json_object_array_length(ids), n);
		goto out;
	}

	cv->diff_ids = calloc(n ? n : 1, sizeof(*cv->diff_ids));
	if (!cv->diff_ids) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *text = json_object_get_string(json_object_array_get_idx(ids, i));

		if (!text || im_digest_parse(text, &cv->diff_ids[i]) < 0) {
			im_err("diff ID %zu of the image config, \"%.80s\", is not a sha256 digest",
			       i, text ? text : "");
			goto out;
		}
	}
	r = 0;

out:
	json_object_put(root);
	return r;
}

static int fetch_config(struct conversion *cv)
{
	char digest[IM_DIGEST_STRING_LEN];
	int r;

	r = im_registry_get_blob_buffer(cv->src, cv->src_ref.repository,
					&cv->manifest.config.digest, CONFIG_MAX_LENGTH,
					&cv->config, &cv->config_len);
	if (r < 0) {
		im_digest_format(&cv->manifest.config.digest, digest);
		return im_log_errno(r, "fetching image config %s failed", digest);
	}
	return parse_diff_ids(cv);
}

/* An unlinked read-write file in the temporary directory. */
static int open_temporary(void)
{
	const char *dir = getenv("TMPDIR");
	char path[PATH_MAX];
	int fd;

	if (!dir || !*dir)
		dir = "/var/tmp";

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;

	/* File systems without O_TMPFILE: create and unlink at once. */
	if (snprintf(path, sizeof(path), "%s/imgmount-convert.XXXXXX", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return im_log_errno(-errno, "creating a temporary file in \"%s\" failed; "
				    "set TMPDIR to a writable directory", dir);
	unlink(path);
	return fd;
}

static int write_to_fd(void *opaque, const void *data, size_t len)
{
	return im_write_full(*(int *)opaque, data, len);
}

static enum im_compression layer_compression(const char *media_type)
{
	switch (im_layer_media_compression(media_type)) {
	case IM_COMPRESSION_NONE:
		return IM_COMPRESSION_IS_NONE;
	case IM_COMPRESSION_GZIP:
		return IM_COMPRESSION_IS_GZIP;
	case IM_COMPRESSION_ZSTD:
		return IM_COMPRESSION_IS_ZSTD;
	default:
		return IM_COMPRESSION_DETECT;
	}
}

/* Download layer i into a temporary file, positioned at its start. */
static int download_layer(struct conversion *cv, size_t i, int *ret_fd)
{
	const struct im_descriptor *d = &cv->manifest.layers[i];
	_cleanup_close_ int fd = open_temporary();
	char digest[IM_DIGEST_STRING_LEN];
	int r;

	if (fd < 0)
		return fd;

	im_digest_format(&d->digest, digest);
	im_info("layer %zu/%zu: downloading %s (%" PRIu64 " bytes)", i + 1,
		cv->manifest.n_layers, digest, d->size);
	r = im_registry_get_blob(cv->src, cv->src_ref.repository, &d->digest, write_to_fd, &fd);
	if (r < 0)
		return im_log_errno(r, "downloading layer %zu (%s) failed", i + 1, digest);
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;

	*ret_fd = im_steal_fd(&fd);
	return 0;
}

/* Decompress and convert the downloaded layer into out_fd. */
static int convert_layer_file(struct conversion *cv, size_t i, int in_fd, int out_fd,
			      struct im_convert_result *res)
{
	const struct im_descriptor *d = &cv->manifest.layers[i];
	struct im_decompressor *dec;
	int r;

	r = im_decompressor_new(layer_compression(d->media_type), im_read_fd, &in_fd, &dec);
	if (r < 0)
		return r;
	r = im_convert_tar(im_decompressor_read, dec, out_fd, &cv->args->options, res);
	im_decompressor_free(dec);
	if (r < 0) {
		char digest[IM_DIGEST_STRING_LEN];

		im_digest_format(&d->digest, digest);
		return im_log_errno(r, "converting layer %zu (%s, %s) failed", i + 1, digest,
				    d->media_type ? d->media_type : "no media type");
	}
	return 0;
}

static int check_diff_id(const struct conversion *cv, size_t i,
			 const struct im_convert_result *res)
{
	char expected[IM_DIGEST_STRING_LEN], actual[IM_DIGEST_STRING_LEN];

	if (im_digest_equal(&res->diff_id, &cv->diff_ids[i]))
		return 0;

	im_digest_format(&cv->diff_ids[i], expected);
	im_digest_format(&res->diff_id, actual);
	im_err("layer %zu decompresses to %s, but the image config lists the diff ID %s; "
	       "the source image is inconsistent", i + 1, actual, expected);
	return -EBADMSG;
}

static int set_annotation(struct im_annotation *a, const char *key, const char *value)
{
	a->key = strdup(key);
	a->value = strdup(value);
	return a->key && a->value ? 0 : -ENOMEM;
}

/* The descriptor of a converted layer, with the zstd:chunked annotations. */
static int describe_layer(const struct im_convert_result *res, struct im_descriptor *d)
{
	char position[80], checksum[IM_DIGEST_STRING_LEN];
	int r;

	im_convert_format_position(res, position, sizeof(position));
	im_digest_format(&res->toc_digest, checksum);

	d->media_type = strdup(IM_MEDIA_OCI_LAYER_ZSTD);
	d->digest = res->blob_digest;
	d->size = res->blob_size;
	d->annotations = calloc(2, sizeof(*d->annotations));
	if (!d->media_type || !d->annotations)
		return -ENOMEM;
	d->n_annotations = 2;

	r = set_annotation(&d->annotations[0], IM_ZSTD_CHUNKED_CHECKSUM_KEY, checksum);
	if (r < 0)
		return r;
	return set_annotation(&d->annotations[1], IM_ZSTD_CHUNKED_POSITION_KEY, position);
}

static int convert_layer(struct conversion *cv, size_t i)
{
	_cleanup_close_ int in_fd = -1;
	_cleanup_close_ int out_fd = -1;
	struct im_convert_result res;
	char digest[IM_DIGEST_STRING_LEN];
	int r;

	r = download_layer(cv, i, &in_fd);
	if (r < 0)
		return r;
	out_fd = open_temporary();
	if (out_fd < 0)
		return out_fd;

	r = convert_layer_file(cv, i, in_fd, out_fd, &res);
	if (r < 0)
		return r;
	r = check_diff_id(cv, i, &res);
	if (r < 0)
		return r;

	im_digest_format(&res.blob_digest, digest);
	im_info("layer %zu/%zu: converted %" PRIu64 " tar bytes, %" PRIu64 " entries, %" PRIu64
		" chunks into %s (%" PRIu64 " bytes); pushing", i + 1, cv->manifest.n_layers,
		res.tar_size, res.n_entries, res.n_chunks, digest, res.blob_size);
	r = im_registry_push_blob_fd(cv->dst, cv->dst_ref.repository, out_fd, res.blob_size,
				     &res.blob_digest);
	if (r < 0)
		return im_log_errno(r, "pushing layer %zu (%s) to %s/%s failed", i + 1, digest,
				    cv->dst_ref.registry, cv->dst_ref.repository);

	return describe_layer(&res, &cv->new_layers[i]);
}

/* Push the config unchanged and the new manifest; print its digest. */
static int push_manifest(struct conversion *cv)
{
	const char *config_type = cv->manifest.config.media_type;
	struct im_manifest m = {
		.config = {
			.digest = cv->manifest.config.digest,
			.size = cv->config_len,
		},
		.layers = cv->new_layers,
		.n_layers = cv->manifest.n_layers,
	};
	_cleanup_free_ char *json = NULL;
	char digest_text[IM_DIGEST_STRING_LEN];
	struct im_digest digest;
	const char *tag = cv->dst_ref.tag ? cv->dst_ref.tag : "latest";
	size_t len;
	int r;

	r = im_registry_push_blob_buffer(cv->dst, cv->dst_ref.repository, cv->config,
					 cv->config_len, &cv->manifest.config.digest);
	if (r < 0)
		return im_log_errno(r, "pushing the image config to %s/%s failed",
				    cv->dst_ref.registry, cv->dst_ref.repository);

	/* Docker configs keep their media type; anything else becomes OCI. */
	m.config.media_type = (char *)(config_type && strcmp(config_type, IM_MEDIA_DOCKER_CONFIG) == 0
				       ? IM_MEDIA_DOCKER_CONFIG : IM_MEDIA_OCI_CONFIG);
	r = im_manifest_to_json(&m, &json, &len);
	if (r < 0)
		return im_log_errno(r, "serializing the new manifest failed");

	r = im_registry_put_manifest(cv->dst, cv->dst_ref.repository, tag, IM_MEDIA_OCI_MANIFEST,
				     json, len);
	if (r < 0)
		return im_log_errno(r, "pushing the manifest to %s/%s:%s failed",
				    cv->dst_ref.registry, cv->dst_ref.repository, tag);

	im_sha256(json, len, &digest);
	im_digest_format(&digest, digest_text);
	im_info("pushed %s/%s:%s as %s", cv->dst_ref.registry, cv->dst_ref.repository, tag,
		digest_text);
	printf("%s\n", digest_text);
	return fflush(stdout) == 0 ? 0 : -EIO;
}

static int run(struct conversion *cv)
{
	int r;

	r = connect_registry(cv->args, &cv->src_ref, &cv->src);
	if (r < 0)
		return r;
	r = connect_registry(cv->args, &cv->dst_ref, &cv->dst);
	if (r < 0)
		return r;

	r = resolve_source(cv);
	if (r < 0)
		return r;
	r = fetch_config(cv);
	if (r < 0)
		return r;

	cv->new_layers = calloc(cv->manifest.n_layers ? cv->manifest.n_layers : 1,
				sizeof(*cv->new_layers));
	if (!cv->new_layers)
		return -ENOMEM;
	for (size_t i = 0; i < cv->manifest.n_layers; i++) {
		r = convert_layer(cv, i);
		if (r < 0)
			return r;
	}

	return push_manifest(cv);
}

static void conversion_clear(struct conversion *cv)
{
	for (size_t i = 0; cv->new_layers && i < cv->manifest.n_layers; i++) {
		struct im_descriptor *d = &cv->new_layers[i];

		for (size_t k = 0; k < d->n_annotations; k++) {
			free(d->annotations[k].key);
			free(d->annotations[k].value);
		}
		free(d->annotations);
		free(d->media_type);
	}
	free(cv->new_layers);
	free(cv->diff_ids);
	free(cv->config);
	im_manifest_clear(&cv->manifest);
	im_registry_free(cv->src);
	im_registry_free(cv->dst);
	im_reference_clear(&cv->src_ref);
	im_reference_clear(&cv->dst_ref);
}

int im_cmd_convert(int argc, char **argv)
{
	struct convert_args args;
	struct conversion cv = { .args = &args };
	int r;

	r = parse_args(argc, argv, &args);
	if (r != 0)
		return r > 0 ? IM_EXIT_OK : IM_EXIT_USAGE;

	r = im_reference_parse(args.source, &cv.src_ref);
	if (r == 0)
		r = im_reference_parse(args.dest, &cv.dst_ref);
	if (r < 0) {
		conversion_clear(&cv);
		return IM_EXIT_USAGE;
	}
	if (cv.dst_ref.has_digest) {
		im_err("destination \"%s\" names a digest; give a tag instead, because the "
		       "converted manifest has a new digest", args.dest);
		conversion_clear(&cv);
		return IM_EXIT_USAGE;
	}

	r = run(&cv);
	conversion_clear(&cv);
	if (r < 0) {
		im_err("converting \"%s\" to \"%s\" failed", args.source, args.dest);
		return IM_EXIT_FAILURE;
	}
	return IM_EXIT_OK;
}
