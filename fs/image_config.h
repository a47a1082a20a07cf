/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fields of an image config blob (OCI image config or Docker image
 * JSON) that `imgmount inspect` reports: platform, user, entrypoint, cmd,
 * environment and working directory.
 */
#ifndef IM_IMAGE_CONFIG_H
#define IM_IMAGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "fs/image.h"

/* Largest config blob accepted. It bounds the allocation for a config
 * from an untrusted registry; typical configs are a few KiB. */
#define IM_IMAGE_CONFIG_MAX_LENGTH (4u << 20)

/* A string from the config: any bytes (NUL included) and their count. The
 * text is NULL when the field is absent or null. */
struct im_config_string {
	char *text;
	size_t len;
};

/* An array of strings, with present false when the field is absent or null. */
struct im_config_list {
	struct im_config_string *items;
	size_t count;
	bool present;
};

struct im_image_config {
	struct im_config_string os;
	struct im_config_string architecture;
	struct im_config_string variant;
	struct im_config_string user;
	struct im_config_string working_dir;
	struct im_config_list entrypoint;
	struct im_config_list cmd;
	struct im_config_list env;
};

/*
 * Fetch the config blob of img with one request, verify it against the
 * digest in the manifest, and parse it with json-c. Every failure is
 * logged.
 * Return: 0, -EFBIG (larger than IM_IMAGE_CONFIG_MAX_LENGTH), -EINVAL (not
 * a JSON object, or a field of the wrong type), -EBADMSG (digest
 * mismatch), or another errno of the registry client.
 */
int im_image_config_fetch(const struct im_image *img, struct im_image_config *ret);
void im_image_config_clear(struct im_image_config *c);

#endif
