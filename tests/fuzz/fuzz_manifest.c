/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the manifest and index parsers: every input goes
 * through im_manifest_parse() under each Content-Type the registry may
 * send, through im_index_select() for two platforms, and, when it parses,
 * through im_manifest_to_json() and back, which must succeed and agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
	NULL,
	IM_MEDIA_OCI_MANIFEST,
	IM_MEDIA_DOCKER_MANIFEST,
	"application/json",
};

static void round_trip(const struct im_manifest *m)
{
	struct im_manifest again;
	char *json = NULL;
	size_t len = 0;

	/* Sizes above INT64_MAX cannot be written, and the parser never makes them. */
	if (im_manifest_to_json(m, &json, &len) < 0)
		abort();
	if (im_manifest_parse(json, len, IM_MEDIA_OCI_MANIFEST, &again) < 0)
		abort();
	if (again.n_layers != m->n_layers || again.config.size != m->config.size)
		abort();
	for (size_t i = 0; i < m->n_layers; i++)
		if (!im_digest_equal(&again.layers[i].digest, &m->layers[i].digest) ||
		    again.layers[i].n_annotations != m->layers[i].n_annotations)
			abort();
	im_manifest_clear(&again);
	free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct im_digest digest;

	im_log_set_level(IM_LOG_ERR - 1);

	for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++) {
		struct im_manifest m;

		if (im_manifest_parse(data, size, content_types[i], &m) == 0) {
			round_trip(&m);
			im_manifest_clear(&m);
		}
	}

	im_index_select(data, size, "linux", "amd64", NULL, &digest);
	im_index_select(data, size, "linux", "arm64", "v8", &digest);
	return 0;
}
