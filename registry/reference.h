/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references: "HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]".
 * Docker Hub shorthands ("debian", "library/debian") expand to
 * "docker.io/library/debian"; docker.io's API host is registry-1.docker.io.
 */
#ifndef IM_REFERENCE_H
#define IM_REFERENCE_H

#include <stdbool.h>

#include "common/digest.h"

struct im_reference {
	char *registry;         /* "host" or "host:port" */
	char *repository;       /* "library/debian" */
	char *tag;              /* NULL when absent */
	bool has_digest;
	struct im_digest digest;
};

/*
 * Parse text. A reference with neither tag nor digest gets tag "latest".
 * Return: 0, or -EINVAL with a logged message that quotes the bad part.
 */
int im_reference_parse(const char *text, struct im_reference *ret);
void im_reference_clear(struct im_reference *ref);

/* Format "registry/repository@digest" (or ":tag" when there is no digest)
 * into a malloc'd string. */
char *im_reference_format(const struct im_reference *ref);

/* True for 127.0.0.0/8, ::1 and "localhost", with or without a port. */
bool im_registry_host_is_loopback(const char *host);

#endif
