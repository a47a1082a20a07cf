/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Docker credential helpers: `docker-credential-NAME get` reads a server
 * name on stdin and writes {"ServerURL", "Username", "Secret"} on stdout,
 * or exits non-zero with "credentials not found" when it has none. The
 * helper is spawned from PATH without a shell, its output is bounded and it
 * is killed when it runs past the time limit, so a broken helper cannot
 * hang a mount. Its stderr is discarded because helpers may print secrets
 * there.
 */
#include "registry/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "registry/json.h"

#define HELPER_OUTPUT_MAX (64u << 10)
#define HELPER_TIMEOUT_MS 10000
#define HELPER_NAME_MAX 64
/* Docker's marker for an identity token stored in place of a password. */
#define IDENTITY_TOKEN_USER "<token>"

extern char **environ;

/* Names become part of a program name looked up in PATH: no '/', no
 * shell or option characters. */
static bool helper_name_is_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > HELPER_NAME_MAX || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static int spawn_helper(const char *program, int in_fd, int out_fd, pid_t *ret_pid)
{
	posix_spawn_file_actions_t actions;
	char *argv[] = { (char *)program, (char *)"get", NULL };
	int rc;

	rc = posix_spawn_file_actions_init(&actions);
	if (rc != 0)
		return -rc;
	rc = posix_spawn_file_actions_adddup2(&actions, in_fd, STDIN_FILENO);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
	if (rc == 0)
		rc = posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	if (rc == 0)
		rc = posix_spawnp(ret_pid, program, &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	return -rc;
}

/* Read the helper's stdout until EOF, the size limit or the deadline. */
static int read_output(int fd, char *buf, size_t max, size_t *ret_len)
{
	uint64_t deadline = im_now_ns() + (uint64_t)HELPER_TIMEOUT_MS * 1000000u;
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = im_now_ns();
		ssize_t n;
		int ready;

		if (now >= deadline)
			return -ETIMEDOUT;
		ready = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0)
			return -errno;
		if (ready == 0)
			continue;

		if (len == max)
			return -EFBIG;
		n = read(fd, buf + len, max - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret_len = len;
	return 0;
}

static int parse_output(const char *program, const char *output, size_t len,
			struct im_credentials *ret)
{
	struct json_object *obj;
	const char *user = NULL, *secret = NULL;
	int rc;

	rc = im_json_parse_object(output, len, "credential helper output", &obj);
	if (rc < 0) {
		im_err("credential helper \"%s\" printed invalid JSON", program);
		return -EIO;
	}
	rc = im_json_get_string(obj, "Username", &user);
	if (rc == 0)
		rc = im_json_get_string(obj, "Secret", &secret);
	if (rc < 0 || !secret || !secret[0]) {
		im_err("credential helper \"%s\" printed no \"Secret\"", program);
		json_object_put(obj);
		return -EIO;
	}

	if (user && strcmp(user, IDENTITY_TOKEN_USER) == 0) {
		ret->identity_token = strdup(secret);
		rc = ret->identity_token ? 1 : -ENOMEM;
	} else {
		ret->username = strdup(user ? user : "");
		ret->password = strdup(secret);
		rc = ret->username && ret->password ? 1 : -ENOMEM;
	}
	json_object_put(obj);
	return rc;
}

/* Wait for the helper, killing it first when it has not finished. */
static int reap(pid_t pid, bool kill_first)
{
	int status;

	if (kill_first)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return status;
}

int im_credentials_from_helper(const char *name, const char *server, struct im_credentials *ret)
{
	_cleanup_close_ int in_read = -1, in_write = -1, out_read = -1, out_write = -1;
	_cleanup_free_ char *program = NULL;
	_cleanup_free_ char *output = NULL;
	struct sigaction ignore = { .sa_handler = SIG_IGN }, old;
	size_t len = 0;
	int fds[2], status, rc;
	pid_t pid;

	*ret = (struct im_credentials){};
	if (!helper_name_is_valid(name)) {
		im_err("invalid credential helper name \"%.64s\": expected letters, digits, '-', '_' "
		       "or '.'; fix credHelpers or credsStore in the config file", name);
		return -EINVAL;
	}
	if (asprintf(&program, "docker-credential-%s", name) < 0)
		return -ENOMEM;
	output = malloc(HELPER_OUTPUT_MAX);
	if (!output)
		return -ENOMEM;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	in_read = fds[0];
	in_write = fds[1];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	out_read = fds[0];
	out_write = fds[1];

	rc = spawn_helper(program, in_read, out_write, &pid);
	if (rc < 0) {
		im_err("running credential helper \"%s\" failed: %s; install it in PATH or "
		       "remove it from the config file", program, strerror(-rc));
		return rc == -ENOENT ? -ENOENT : -EIO;
	}
	close(im_steal_fd(&in_read));
	close(im_steal_fd(&out_write));

	/* A helper that exits without reading stdin must not kill us with SIGPIPE. */
	sigaction(SIGPIPE, &ignore, &old);
	rc = im_write_full(in_write, server, strlen(server));
	sigaction(SIGPIPE, &old, NULL);
	close(im_steal_fd(&in_write));
	if (rc == -EPIPE)
		rc = 0; /* the exit status and output still tell what happened */
	if (rc == 0)
		rc = read_output(out_read, output, HELPER_OUTPUT_MAX, &len);

	status = reap(pid, rc < 0);
	if (rc == -ETIMEDOUT || rc == -EFBIG) {
		im_err("credential helper \"%s\" %s; it was stopped", program,
		       rc == -ETIMEDOUT ? "did not finish within 10 s" : "printed more than 64 KiB");
		return rc == -EFBIG ? -EIO : rc;
	}
	if (status < 0 || !WIFEXITED(status)) {
		im_err("credential helper \"%s\" was killed by a signal", program);
		return -EIO;
	}
	if (WEXITSTATUS(status) != 0) {
		/* Helpers exit with 1 and "credentials not found" when they have
		 * nothing for this server; an anonymous pull may still work. */
		im_debug("credential helper \"%s\" has no credentials for \"%s\" (exit status %d)",
			 program, server, WEXITSTATUS(status));
		return 0;
	}

	rc = parse_output(program, output, len, ret);
	explicit_bzero(output, len);
	if (rc > 0)
		ret->source = strdup(program);
	return rc;
}
