/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `imgmount inspect IMAGE`: what an image is and whether imgmount can read
 * it lazily. It reports the manifest digest and media type, and the
 * config's platform, user, entrypoint, cmd, environment and working
 * directory. Per layer it reports the blob digest, media type and
 * compressed size. For a layer with a zstd:chunked table of contents
 * (TOC) it adds the TOC digest and the number of entries. Layers without
 * a TOC are listed as not lazily readable instead of failing the command,
 * so inspect also shows whether the image must be converted first.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/commands.h"
#include "fs/entry_text.h"
#include "fs/image_config.h"
#include "fs/inspect.h"
#include "fs/json_out.h"

struct inspect_args {
	struct im_inspect_args common;
	const char *image;
};

static void inspect_usage(FILE *out)
{
	fprintf(out,
		"usage: imgmount inspect [OPTIONS] IMAGE\n\n"
		"Print the manifest digest, platform, user, entrypoint, cmd, environment\n"
		"and working directory of IMAGE, and for each layer its digest, media type,\n"
		"compressed size, table of contents digest and entry count, and whether\n"
		"every layer can be read lazily (has a zstd:chunked table of contents).\n"
		"Fetches the manifest, the config (at most 4 MiB) and the tables of\n"
		"contents, never file contents.\n\n"
		"options:\n");
	im_inspect_usage_common(out, true);
}

/* Return: 0 to run, 1 after --help, or -EINVAL after printing the problem. */
static int parse_inspect_args(int argc, char **argv, struct inspect_args *a)
{
	static const struct im_inspect_parser parser = {
		.command = "inspect",
		.usage = inspect_usage,
		.short_options = "",
		.min_operands = 1,
		.max_operands = 1,
	};
	int r;

	r = im_inspect_parse_args(argc, argv, &parser, &a->common, NULL);
	if (r != 0)
		return r;
	a->image = argv[optind];
	return 0;
}

static bool all_layers_lazy(const struct im_image *img)
{
	for (size_t i = 0; i < img->n_layers; i++) {
		if (!img->indexes[i])
			return false;
	}
	return true;
}

static const char *or_none(const char *text)
{
	return text ? text : "none";
}

/* A config list as a new JSON array, or NULL when out of memory. */
static struct json_object *list_json(const struct im_config_list *l)
{
	struct json_object *array = json_object_new_array();

	for (size_t i = 0; array && i < l->count; i++) {
		struct json_object *item = im_json_new_bytes(l->items[i].text, l->items[i].len);

		if (!item || json_object_array_add(array, item) < 0) {
			json_object_put(item);
			json_object_put(array);
			return NULL;
		}
	}
	return array;
}

/* Add a config list as an array, or null when the field is absent. */
static int add_list_or_null(struct json_object *obj, const char *key,
			    const struct im_config_list *l)
{
	if (!l->present)
		return im_json_add_null(obj, key);
	return im_json_add(obj, key, list_json(l));
}

static int add_string_or_null(struct json_object *obj, const char *key,
			      const struct im_config_string *s)
{
	if (!s->text)
		return im_json_add_null(obj, key);
	return im_json_add_bytes(obj, key, s->text, s->len);
}

static void print_key(const char *key)
{
	printf("%-12s ", key);
}

static void print_config_string(const char *key, const struct im_config_string *s)
{
	print_key(key);
	if (s->text)
		im_fput_escaped(s->text, s->len, stdout);
	else
		fputs("none", stdout);
	putchar('\n');
}

/* Print a list as a JSON array, the form `docker inspect` shows. */
static int print_config_list(const char *key, const struct im_config_list *l)
{
	struct json_object *array;
	int r;

	print_key(key);
	if (!l->present) {
		puts("none");
		return 0;
	}
	array = list_json(l);
	if (!array)
		return -ENOMEM;
	r = im_json_print(stdout, array, false);
	json_object_put(array);
	return r;
}

static void print_env(const struct im_config_list *env)
{
	print_key("env:");
	if (!env->present || env->count == 0)
		puts("none");
	for (size_t i = 0; i < env->count; i++) {
		if (i > 0)
			print_key("");
		im_fput_escaped(env->items[i].text, env->items[i].len, stdout);
		putchar('\n');
	}
}

static void print_platform_part(const struct im_config_string *s)
{
	if (s->text)
		im_fput_escaped(s->text, s->len, stdout);
	else
		fputs("unknown", stdout);
}

static void print_platform(const struct im_image_config *c)
{
	print_key("platform:");
	print_platform_part(&c->os);
	putchar('/');
	print_platform_part(&c->architecture);
	if (c->variant.text) {
		putchar('/');
		im_fput_escaped(c->variant.text, c->variant.len, stdout);
	}
	putchar('\n');
}

static void print_layer_text(const struct im_image *img, size_t i)
{
	const struct im_descriptor *d = &img->manifest.layers[i];
	const struct im_layer_index *idx = img->indexes[i];
	char digest[IM_DIGEST_STRING_LEN];

	im_digest_format(&d->digest, digest);
	printf("  layer %zu:\n", i);
	printf("    %-12s %s\n", "digest:", digest);
	printf("    %-12s %s\n", "media type:", or_none(d->media_type));
	printf("    %-12s %" PRIu64 " bytes\n", "size:", d->size);
	if (idx) {
		im_digest_format(im_layer_index_toc_digest(idx), digest);
		printf("    %-12s %s\n", "toc:", digest);
		printf("    %-12s %" PRIu32 "\n", "entries:", im_layer_index_entry_count(idx));
	} else {
		printf("    %-12s none: not lazily readable\n", "toc:");
	}
}

static int print_text(const struct im_image *img, const struct im_image_config *c)
{
	char digest[IM_DIGEST_STRING_LEN];
	int r;

	print_key("image:");
	puts(img->display_name);
	im_digest_format(&img->manifest_digest, digest);
	print_key("manifest:");
	printf("%s (%s)\n", digest, or_none(img->manifest.media_type));
	im_digest_format(&img->manifest.config.digest, digest);
	print_key("config:");
	printf("%s (%" PRIu64 " bytes)\n", digest, img->manifest.config.size);

	print_platform(c);
	print_config_string("user:", &c->user);
	print_config_string("workdir:", &c->working_dir);
	r = print_config_list("entrypoint:", &c->entrypoint);
	if (r == 0)
		r = print_config_list("cmd:", &c->cmd);
	if (r < 0)
		return r;
	print_env(&c->env);

	print_key("lazy:");
	puts(all_layers_lazy(img) ? "yes, every layer has a zstd:chunked table of contents"
		 : "no, convert the image with 'imgmount convert' to mount it");
	print_key("layers:");
	printf("%zu\n", img->n_layers);
	for (size_t i = 0; i < img->n_layers; i++)
		print_layer_text(img, i);
	return 0;
}

static struct json_object *layer_json(const struct im_image *img, size_t i)
{
	const struct im_descriptor *d = &img->manifest.layers[i];
	const struct im_layer_index *idx = img->indexes[i];
	struct json_object *obj = json_object_new_object();
	int r;

	if (!obj)
		return NULL;
	r = im_json_add(obj, "index", json_object_new_uint64(i));
	if (r == 0)
		r = im_json_add_digest(obj, "digest", &d->digest);
	if (r == 0)
		r = im_json_add_string_or_null(obj, "media_type", d->media_type);
	if (r == 0)
		r = im_json_add(obj, "size", json_object_new_uint64(d->size));
	if (r == 0)
		r = im_json_add(obj, "lazy", json_object_new_boolean(idx != NULL));
	if (r == 0 && idx)
		r = im_json_add_digest(obj, "toc_digest", im_layer_index_toc_digest(idx));
	if (r == 0 && idx)
		r = im_json_add(obj, "entries",
				json_object_new_uint64(im_layer_index_entry_count(idx)));
	if (r == 0 && !idx)
		r = im_json_add_null(obj, "toc_digest");
	if (r == 0 && !idx)
		r = im_json_add_null(obj, "entries");
	if (r < 0) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

static int add_descriptors_json(struct json_object *doc, const struct im_image *img)
{
	struct json_object *manifest = json_object_new_object();
	struct json_object *config = json_object_new_object();
	const char *media_type = img->manifest.media_type;
	int r;

	r = im_json_add(doc, "manifest", manifest);
	if (r < 0) {
		json_object_put(config);
		return r;
	}
	r = im_json_add(doc, "config", config);
	if (r == 0)
		r = im_json_add_digest(manifest, "digest", &img->manifest_digest);
	if (r == 0)
		r = im_json_add_string_or_null(manifest, "media_type", media_type);
	if (r == 0)
		r = im_json_add_digest(config, "digest", &img->manifest.config.digest);
	if (r == 0)
		r = im_json_add(config, "size", json_object_new_uint64(img->manifest.config.size));
	return r;
}

static int add_config_json(struct json_object *doc, const struct im_image_config *c)
{
	struct json_object *platform = json_object_new_object();
	int r;

	r = im_json_add(doc, "platform", platform);
	if (r == 0)
		r = add_string_or_null(platform, "os", &c->os);
	if (r == 0)
		r = add_string_or_null(platform, "architecture", &c->architecture);
	if (r == 0)
		r = add_string_or_null(platform, "variant", &c->variant);
	if (r == 0)
		r = add_string_or_null(doc, "user", &c->user);
	if (r == 0)
		r = add_string_or_null(doc, "working_dir", &c->working_dir);
	if (r == 0)
		r = add_list_or_null(doc, "entrypoint", &c->entrypoint);
	if (r == 0)
		r = add_list_or_null(doc, "cmd", &c->cmd);
	if (r == 0)
		r = add_list_or_null(doc, "env", &c->env);
	return r;
}

static int print_json(const struct im_image *img, const struct im_image_config *c)
{
	struct json_object *doc = json_object_new_object();
	struct json_object *layers = json_object_new_array();
	int r;

	if (!doc || !layers) {
		json_object_put(doc);
		json_object_put(layers);
		return -ENOMEM;
	}

	r = im_json_add(doc, "image", json_object_new_string(img->display_name));
	if (r == 0)
		r = add_descriptors_json(doc, img);
	if (r == 0)
		r = add_config_json(doc, c);
	if (r == 0)
		r = im_json_add(doc, "lazy", json_object_new_boolean(all_layers_lazy(img)));
	if (r == 0)
		r = im_json_add(doc, "layers", json_object_get(layers));
	for (size_t i = 0; r == 0 && i < img->n_layers; i++) {
		struct json_object *layer = layer_json(img, i);

		if (!layer || json_object_array_add(layers, layer) < 0) {
			json_object_put(layer);
			r = -ENOMEM;
		}
	}
	if (r == 0)
		r = im_json_print(stdout, doc, true);

	json_object_put(layers);
	json_object_put(doc);
	return r;
}

int im_cmd_inspect(int argc, char **argv)
{
	struct inspect_args args = { 0 };
	struct im_image_config config = { 0 };
	struct im_inspect *in = NULL;
	int r;

	r = parse_inspect_args(argc, argv, &args);
	if (r != 0)
		return r > 0 ? IM_INSPECT_EXIT_OK : IM_INSPECT_EXIT_USAGE;

	r = im_inspect_open(&args.common, args.image, IM_INSPECT_ANY_LAYERS, &in);
	if (r == 0)
		r = im_image_config_fetch(in->img, &config);
	if (r == 0 && args.common.json)
		r = print_json(in->img, &config);
	else if (r == 0)
		r = print_text(in->img, &config);

	im_image_config_clear(&config);
	im_inspect_free(in);
	return im_inspect_finish(&args.common, r);
}
