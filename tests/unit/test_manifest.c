/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Manifest and index parsing: OCI and Docker schema 2 manifests, the media
 * type rules, schema 1 rejection, malformed and oversized documents, index
 * platform selection, layer compression from media types, and a
 * serialize-then-parse round trip.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/manifest.h"
#include "tests/unit/check.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D4 "sha256:4444444444444444444444444444444444444444444444444444444444444444"

static const char oci_manifest[] =
	"{\"schemaVersion\":2,"
	"\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	"\"digest\":\"" D1 "\",\"size\":1234},"
	"\"layers\":["
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\","
	"\"digest\":\"" D2 "\",\"size\":5678,"
	"\"annotations\":{\"io.github.containers.zstd-chunked.manifest-position\":\"1:2:3:4\","
	"\"other\":\"x\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
	"\"digest\":\"" D3 "\",\"size\":0}]}\n";

static const char docker_manifest[] =
	"{\n  \"schemaVersion\": 2,\n"
	"  \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
	"  \"config\": {\"mediaType\": \"application/vnd.docker.container.image.v1+json\","
	" \"size\": 7, \"digest\": \"" D1 "\"},\n"
	"  \"layers\": [{\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\","
	" \"size\": 9, \"digest\": \"" D2 "\"}]\n}";

static const char index_json[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	"\"manifests\":["
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\","
	"\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2 "\","
	"\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\","
	"\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D4 "\","
	"\"size\":1,\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"},"
	"\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"}}]}";

static int parse(const char *json, const char *media_type, struct im_manifest *m)
{
	return im_manifest_parse(json, strlen(json), media_type, m);
}

static void test_oci_manifest(void)
{
	struct im_manifest m;
	struct im_digest d;

	CHECK_INT(parse(oci_manifest, IM_MEDIA_OCI_MANIFEST, &m), 0);
	CHECK_STR(m.media_type, IM_MEDIA_OCI_MANIFEST);
	CHECK_STR(m.config.media_type, IM_MEDIA_OCI_CONFIG);
	CHECK_INT(m.config.size, 1234);
	CHECK_INT(im_digest_parse(D1, &d), 0);
	CHECK(im_digest_equal(&m.config.digest, &d));

	CHECK_INT(m.n_layers, 2);
	if (m.n_layers == 2) {
		CHECK_STR(m.layers[0].media_type, IM_MEDIA_OCI_LAYER_ZSTD);
		CHECK_INT(m.layers[0].size, 5678);
		CHECK_INT(m.layers[0].n_annotations, 2);
		CHECK_STR(im_descriptor_annotation(&m.layers[0],
			"io.github.containers.zstd-chunked.manifest-position"), "1:2:3:4");
		CHECK(im_descriptor_annotation(&m.layers[0], "missing") == NULL);
		CHECK_INT(m.layers[1].size, 0);
		CHECK_INT(m.layers[1].n_annotations, 0);
		CHECK_INT(im_digest_parse(D3, &d), 0);
		CHECK(im_digest_equal(&m.layers[1].digest, &d));
	}
	im_manifest_clear(&m);
}

static void test_docker_manifest(void)
{
	struct im_manifest m;

	CHECK_INT(parse(docker_manifest, IM_MEDIA_DOCKER_MANIFEST, &m), 0);
	CHECK_STR(m.media_type, IM_MEDIA_DOCKER_MANIFEST);
	CHECK_STR(m.config.media_type, IM_MEDIA_DOCKER_CONFIG);
	CHECK_INT(m.n_layers, 1);
	if (m.n_layers == 1)
		CHECK_INT(im_layer_media_compression(m.layers[0].media_type), IM_COMPRESSION_GZIP);
	im_manifest_clear(&m);
}

static void test_media_type_sources(void)
{
	struct im_manifest m;
	static const char no_field[] =
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\","
		"\"size\":1},\"layers\":[]}";

	/* No Content-Type: the member decides. */
	CHECK_INT(parse(docker_manifest, NULL, &m), 0);
	CHECK_STR(m.media_type, IM_MEDIA_DOCKER_MANIFEST);
	im_manifest_clear(&m);

	/* A generic Content-Type defers to the member. */
	CHECK_INT(parse(docker_manifest, "application/json", &m), 0);
	CHECK_STR(m.media_type, IM_MEDIA_DOCKER_MANIFEST);
	im_manifest_clear(&m);

	/* Parameters after the type are ignored. */
	CHECK_INT(parse(oci_manifest, IM_MEDIA_OCI_MANIFEST "; charset=utf-8", &m), 0);
	CHECK_STR(m.media_type, IM_MEDIA_OCI_MANIFEST);
	im_manifest_clear(&m);

	/* Neither: OCI makes the member optional. */
	CHECK_INT(parse(no_field, NULL, &m), 0);
	CHECK_STR(m.media_type, IM_MEDIA_OCI_MANIFEST);
	CHECK_INT(m.n_layers, 0);
	im_manifest_clear(&m);

	/* Content-Type and member disagree. */
	CHECK_INT(parse(docker_manifest, IM_MEDIA_OCI_MANIFEST, &m), -EBADMSG);

	/* An index is not a manifest. */
	CHECK_INT(parse(index_json, NULL, &m), -ENOTSUP);
	CHECK_INT(parse(oci_manifest, "application/vnd.unknown+json", &m), 0);
	im_manifest_clear(&m);
}

static void test_schema1_rejected(void)
{
	struct im_manifest m;
	static const char schema1[] =
		"{\"schemaVersion\":1,\"name\":\"x\",\"tag\":\"latest\",\"fsLayers\":[]}";

	CHECK_INT(parse(schema1, NULL, &m), -ENOTSUP);
	CHECK_INT(parse(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws", &m),
		  -ENOTSUP);
	CHECK_INT(parse(oci_manifest, "application/vnd.docker.distribution.manifest.v1+json", &m),
		  -ENOTSUP);
}

static const char *const malformed_manifests[] = {
	"",
	"{",
	"[]",
	"null",
	"{\"schemaVersion\":2}",
	"{\"schemaVersion\":\"2\",\"config\":{},\"layers\":[]}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\",\"size\":1}}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\",\"size\":1},"
	"\"layers\":{}}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\",\"size\":-1},"
	"\"layers\":[]}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\",\"size\":1.5},"
	"\"layers\":[]}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\","
	"\"size\":99999999999999999999},\"layers\":[]}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"sha256:12\",\"size\":1},"
	"\"layers\":[]}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\",\"size\":1},"
	"\"layers\":[5]}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":7,\"digest\":\"" D1 "\",\"size\":1},"
	"\"layers\":[]}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\\u0000x\",\"digest\":\"" D1 "\","
	"\"size\":1},\"layers\":[]}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\",\"size\":1,"
	"\"annotations\":{\"k\":1}},\"layers\":[]}",
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\",\"size\":1},"
	"\"layers\":[]} trailing",
	"{\"schemaVersion\":3,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\",\"size\":1},"
	"\"layers\":[]}",
};

static void test_malformed_manifests(void)
{
	for (size_t i = 0; i < sizeof(malformed_manifests) / sizeof(malformed_manifests[0]); i++) {
		struct im_manifest m = {};
		int r = parse(malformed_manifests[i], NULL, &m);

		fprintf(stderr, "  case %zu\n", i);
		CHECK(r == -EBADMSG || r == -ENOTSUP);
		CHECK(m.layers == NULL);
	}
}

static void test_sha512_digest_unsupported(void)
{
	struct im_manifest m;
	static const char json[] =
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"sha512:ab\","
		"\"size\":1},\"layers\":[]}";

	CHECK_INT(parse(json, NULL, &m), -ENOTSUP);
}

/* Build a manifest with n layers to check the layer limit. */
static char *manifest_with_layers(size_t n)
{
	static const char head[] =
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"c\",\"digest\":\"" D1 "\","
		"\"size\":1},\"layers\":[";
	static const char layer[] = "{\"mediaType\":\"l\",\"digest\":\"" D2 "\",\"size\":1}";
	size_t size = sizeof(head) + n * sizeof(layer) + 8;
	char *json = malloc(size);
	char *p = json;

	if (!json)
		abort();
	p += sprintf(p, "%s", head);
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? "," : "", layer);
	sprintf(p, "]}");
	return json;
}

static void test_layer_limit(void)
{
	struct im_manifest m;
	char *json = manifest_with_layers(IM_MANIFEST_MAX_LAYERS);

	CHECK_INT(parse(json, NULL, &m), 0);
	CHECK_INT(m.n_layers, IM_MANIFEST_MAX_LAYERS);
	im_manifest_clear(&m);
	free(json);

	json = manifest_with_layers(IM_MANIFEST_MAX_LAYERS + 1);
	CHECK_INT(parse(json, NULL, &m), -EBADMSG);
	free(json);
}

static void test_deep_nesting(void)
{
	char json[4096];
	struct im_manifest m;
	size_t n = 0;

	for (int i = 0; i < 1000; i++)
		json[n++] = '[';
	json[n] = '\0';
	CHECK_INT(parse(json, NULL, &m), -EBADMSG);
}

static void select_case(const char *os, const char *arch, const char *variant,
			int expected_r, const char *expected_digest)
{
	struct im_digest got, want;
	int r = im_index_select(index_json, strlen(index_json), os, arch, variant, &got);

	fprintf(stderr, "  platform %s/%s/%s\n", os, arch, variant ? variant : "-");
	CHECK_INT(r, expected_r);
	if (r == 0 && expected_digest) {
		CHECK_INT(im_digest_parse(expected_digest, &want), 0);
		CHECK(im_digest_equal(&got, &want));
	}
}

static void test_index_select(void)
{
	select_case("linux", "amd64", NULL, 0, D1);
	select_case("linux", "arm", "v7", 0, D2);
	select_case("linux", "arm", NULL, 0, D2);
	select_case("linux", "arm", "v6", -ENOENT, NULL);
	select_case("linux", "arm64", NULL, 0, D3);
	select_case("linux", "arm64", "v8", 0, D3);
	select_case("linux", "s390x", NULL, -ENOENT, NULL);
	select_case("windows", "amd64", NULL, -ENOENT, NULL);
	/* Attestation entries have os "unknown" and are never a platform. */
	select_case("unknown", "unknown", NULL, 0, D4);
}

static void test_index_docker_list(void)
{
	static const char list[] =
		"{\"schemaVersion\":2,"
		"\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
		"\"manifests\":[{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
		"\"digest\":\"" D2 "\",\"size\":1,"
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
	struct im_digest got, want;

	CHECK_INT(im_index_select(list, strlen(list), "linux", "amd64", NULL, &got), 0);
	CHECK_INT(im_digest_parse(D2, &want), 0);
	CHECK(im_digest_equal(&got, &want));
}

static void test_index_skips_other_entries(void)
{
	/* A nested index and a sha512 entry for the platform are skipped. */
	static const char json[] =
		"{\"schemaVersion\":2,\"manifests\":["
		"{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"" D1 "\","
		"\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha512:ab\","
		"\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
		"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3 "\","
		"\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
	struct im_digest got, want;

	CHECK_INT(im_index_select(json, strlen(json), "linux", "amd64", NULL, &got), 0);
	CHECK_INT(im_digest_parse(D3, &want), 0);
	CHECK(im_digest_equal(&got, &want));
}

static void test_index_malformed(void)
{
	static const char *const cases[] = {
		"{}",
		"{\"schemaVersion\":2}",
		"{\"schemaVersion\":2,\"manifests\":{}}",
		"{\"schemaVersion\":2,\"manifests\":[1]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\"}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D1 "\","
		"\"platform\":[]}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D1 "\","
		"\"platform\":{\"os\":1}}]}",
		"{\"schemaVersion\":1,\"manifests\":[]}",
		"not json",
	};
	struct im_digest got;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = im_index_select(cases[i], strlen(cases[i]), "linux", "amd64", NULL, &got);

		fprintf(stderr, "  case %zu\n", i);
		CHECK(r == -EBADMSG || r == -ENOTSUP);
	}
}

static void test_media_type_helpers(void)
{
	CHECK(im_media_type_is_index(IM_MEDIA_OCI_INDEX));
	CHECK(im_media_type_is_index(IM_MEDIA_DOCKER_LIST));
	CHECK(im_media_type_is_index(IM_MEDIA_OCI_INDEX "; charset=utf-8"));
	CHECK(!im_media_type_is_index(IM_MEDIA_OCI_MANIFEST));
	CHECK(!im_media_type_is_index(IM_MEDIA_OCI_INDEX "x"));
	CHECK(!im_media_type_is_index(NULL));

	CHECK_INT(im_layer_media_compression(IM_MEDIA_OCI_LAYER), IM_COMPRESSION_NONE);
	CHECK_INT(im_layer_media_compression(IM_MEDIA_OCI_LAYER_GZIP), IM_COMPRESSION_GZIP);
	CHECK_INT(im_layer_media_compression(IM_MEDIA_OCI_LAYER_ZSTD), IM_COMPRESSION_ZSTD);
	CHECK_INT(im_layer_media_compression(IM_MEDIA_DOCKER_LAYER_GZIP), IM_COMPRESSION_GZIP);
	CHECK_INT(im_layer_media_compression("application/octet-stream"), IM_COMPRESSION_UNKNOWN);
	CHECK_INT(im_layer_media_compression(NULL), IM_COMPRESSION_UNKNOWN);
}

static void test_round_trip(void)
{
	struct im_manifest m, again;
	char *json = NULL;
	size_t len = 0;

	CHECK_INT(parse(oci_manifest, NULL, &m), 0);
	CHECK_INT(im_manifest_to_json(&m, &json, &len), 0);
	CHECK(json != NULL);
	if (!json) {
		im_manifest_clear(&m);
		return;
	}
	CHECK_INT(len, strlen(json));
	CHECK(strstr(json, "\"schemaVersion\":2") != NULL);
	CHECK(strstr(json, "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"") != NULL);

	CHECK_INT(im_manifest_parse(json, len, IM_MEDIA_OCI_MANIFEST, &again), 0);
	CHECK_INT(again.n_layers, m.n_layers);
	CHECK_INT(again.config.size, m.config.size);
	CHECK(im_digest_equal(&again.config.digest, &m.config.digest));
	if (again.n_layers == 2) {
		CHECK_STR(again.layers[0].media_type, m.layers[0].media_type);
		CHECK(im_digest_equal(&again.layers[0].digest, &m.layers[0].digest));
		CHECK_INT(again.layers[0].n_annotations, 2);
		CHECK_STR(im_descriptor_annotation(&again.layers[0], "other"), "x");
		/* A layer without annotations gets no "annotations" member. */
		CHECK_INT(again.layers[1].n_annotations, 0);
	}

	im_manifest_clear(&again);
	im_manifest_clear(&m);
	free(json);
}

int main(void)
{
	/* The rejected cases log one error each; keep the output to failures. */
	im_log_set_level(IM_LOG_ERR - 1);

	RUN_TEST(test_oci_manifest);
	RUN_TEST(test_docker_manifest);
	RUN_TEST(test_media_type_sources);
	RUN_TEST(test_schema1_rejected);
	RUN_TEST(test_malformed_manifests);
	RUN_TEST(test_sha512_digest_unsupported);
	RUN_TEST(test_layer_limit);
	RUN_TEST(test_deep_nesting);
	RUN_TEST(test_index_select);
	RUN_TEST(test_index_docker_list);
	RUN_TEST(test_index_skips_other_entries);
	RUN_TEST(test_index_malformed);
	RUN_TEST(test_media_type_helpers);
	RUN_TEST(test_round_trip);
	return check_exit_status();
}
