/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-registry host configuration in containerd's certs.d layout, private
 * to registry/: CERTS_DIR/HOST/hosts.toml names mirrors and their TLS
 * settings, and CERTS_DIR/HOST/{ca.crt,client.cert,client.key} set TLS
 * for the registry itself. HOST is "name" or "name:port" as in the image
 * reference; CERTS_DIR/_default/ is used when HOST has no directory.
 */
#ifndef IM_REGISTRY_HOSTS_H
#define IM_REGISTRY_HOSTS_H

#include <stdbool.h>
#include <stddef.h>

/* Mirrors beyond this count are ignored with a warning. */
#define IM_HOSTS_MAX_MIRRORS 8

enum {
	IM_HOST_PULL = 1 << 0,    /* blobs, and manifests by digest */
	IM_HOST_RESOLVE = 1 << 1, /* manifests by tag */
};

/* One [host."URL"] table of hosts.toml. */
struct im_host_config {
	char *url;            /* "scheme://host[:port][/path]" without a trailing '/' */
	unsigned capabilities;
	bool skip_verify;     /* do not verify the server certificate */
	bool override_path;   /* url's path is the API root: "/v2" is not appended */
	char *ca_file;        /* absolute, or NULL */
	char *client_cert;    /* absolute PEM file, or NULL */
	char *client_key;     /* absolute PEM file, or NULL (then in client_cert) */
};

struct im_hosts {
	char *server;         /* hosts.toml "server": the registry's own URL, or NULL */
	struct im_host_config mirrors[IM_HOSTS_MAX_MIRRORS]; /* in file order */
	size_t n_mirrors;
	char *ca_file;        /* CERTS_DIR/HOST/ca.crt when it exists, else NULL */
	char *client_cert;    /* CERTS_DIR/HOST/client.cert when it exists */
	char *client_key;     /* CERTS_DIR/HOST/client.key when it exists */
};

/*
 * Read the configuration of host under certs_dir. A missing directory or
 * hosts.toml is no error and leaves *ret empty.
 * Return: 0, or -EINVAL/-EFBIG/-EIO/-ENOMEM after logging the file and
 * the line at fault.
 */
int im_hosts_load(const char *certs_dir, const char *host, struct im_hosts *ret);
void im_hosts_free(struct im_hosts *hosts);

#endif
