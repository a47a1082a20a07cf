/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reuse of blob redirect targets, private to registry/. Registries that
 * keep blobs in object storage redirect each blob GET to a signed storage
 * URL, which stays valid for minutes. Chunk reads of one layer all GET the
 * same blob URL, so the target of the last redirect is sent to directly
 * until it fails. Then one thread requests a new redirect from the
 * registry while the others wait for its result instead of sending their
 * own requests.
 */
#ifndef IM_REGISTRY_REDIRECTS_H
#define IM_REGISTRY_REDIRECTS_H

#include <stdbool.h>
#include <stdint.h>

struct im_redirects;

/* Blob URLs whose targets are kept; beyond it the oldest entry is dropped. */
#define IM_REDIRECTS_MAX 256

int im_redirects_new(struct im_redirects **ret);
void im_redirects_free(struct im_redirects *c);

/*
 * Return a malloc'd copy of the target stored for url, or NULL, with its
 * generation in *ret_generation. While another thread renews the target,
 * wait for it, at most until deadline_ns (im_now_ns() time; 0 for no
 * limit).
 */
char *im_redirects_lookup(struct im_redirects *c, const char *url, uint64_t deadline_ns,
			  uint64_t *ret_generation);

/*
 * Report that the target of generation failed. Return true when the
 * caller is to renew it (ask the registry, then call im_redirects_store()
 * or im_redirects_abandon()), false when another thread already renews or
 * renewed it: look it up again then.
 */
bool im_redirects_begin_renew(struct im_redirects *c, const char *url, uint64_t generation);

/* Store target for url (a renewal's result, or a first redirect). */
void im_redirects_store(struct im_redirects *c, const char *url, const char *target);

/* End a renewal that found no target; waiting threads ask the registry. */
void im_redirects_abandon(struct im_redirects *c, const char *url);

#endif
