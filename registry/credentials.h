/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry credentials from the files Docker, Podman and skopeo write:
 * the "auths", "credHelpers" and "credsStore" members of a Docker
 * config.json or a containers auth.json, and the credential helper
 * programs (docker-credential-NAME) they name.
 *
 * Nothing here logs a password, a token or a helper's output.
 */
#ifndef IM_REGISTRY_CREDENTIALS_H
#define IM_REGISTRY_CREDENTIALS_H

/* Credentials for one registry host. Either field set may be empty. */
struct im_credentials {
	char *username;       /* basic auth user, or NULL */
	char *password;       /* basic auth password, or NULL */
	char *identity_token; /* OAuth2 refresh token for the token realm, or NULL */
	char *source;         /* the file or helper they came from, for messages */
};

/* Wipe the secrets and free every field. */
void im_credentials_clear(struct im_credentials *c);

/*
 * Find credentials for host ("name" or "name:port"; "docker.io" also
 * matches Docker Hub's "https://index.docker.io/v1/" key).
 *
 * With auth_file, only that file is read, and it must exist. Without it,
 * the first of these files that has an entry for host is used:
 * $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
 * $DOCKER_CONFIG/config.json (or ~/.docker/config.json when
 * DOCKER_CONFIG is unset). Missing files are skipped.
 *
 * Within a file, credHelpers[host] wins, then an "auths" entry with
 * "auth" (base64 of "user:password"), "username"/"password" or
 * "identitytoken", then credsStore. A helper runs as
 * `docker-credential-NAME get` from PATH with the server on stdin, for at
 * most 10 s and 64 KiB of output.
 *
 * Return: 1 with *ret filled, 0 when no file or helper has credentials for
 * host, or a negative errno after logging the file or helper that failed.
 */
int im_credentials_find(const char *host, const char *auth_file, struct im_credentials *ret);

/*
 * Find credentials for repository ("org/app") on host, like
 * im_credentials_find(), except that "auths" keys scoped to a namespace
 * ("host/org/app", "host/org") also match, and the longest matching key
 * wins over the host's own key, as in Podman's auth.json. Helpers are
 * still chosen by host only. repository NULL looks up host keys only.
 */
int im_credentials_find_repository(const char *host, const char *repository,
				   const char *auth_file, struct im_credentials *ret);

/*
 * Run `docker-credential-NAME get` for server and parse its JSON output
 * ({"Username": ..., "Secret": ...}; the user "<token>" makes Secret an
 * identity token). Return: 1 with *ret filled, 0 when the helper has no
 * credentials for server, or -EINVAL/-EIO/-ETIMEDOUT/-ENOENT after logging.
 */
int im_credentials_from_helper(const char *name, const char *server, struct im_credentials *ret);

#endif
