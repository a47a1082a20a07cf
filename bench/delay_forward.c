/* SPDX-License-Identifier: Apache-2.0 */
/*
 * delay_forward: a TCP forwarder that adds a fixed one-way delay, so that the
 * benchmark link has a round-trip time on a kernel without netem.
 *
 *   delay_forward LISTEN_ADDR:PORT TARGET_ADDR:PORT ONE_WAY_DELAY_MS
 *
 * Every accepted connection gets its own connection to the target. Each byte
 * read from either side is written to the other side no earlier than the
 * delay after it was read, in order. The forwarder completes the client's TCP
 * handshake itself, without delay. To stand in for the handshake a real link
 * would cost, it delays the client's first bytes by one extra round trip after
 * accept(), so a new connection's first response arrives two round trips
 * after connect(), as over a real link.
 *
 * A FIN is passed on (shutdown(SHUT_WR)) once everything read before it has
 * been written. A reset or socket error on either side resets the other side
 * at once, without the delay, and drops the bytes still queued. At most
 * QUEUE_LIMIT_BYTES wait in each direction of a connection; beyond that the
 * forwarder stops reading, so TCP flow control and any tc shaping of the
 * link still set the throughput. That limit also caps one connection at
 * QUEUE_LIMIT_BYTES per delay (400 MB/s at 10 ms).
 *
 * One thread, edge-triggered epoll, a timerfd for the next due byte and a
 * signalfd for SIGTERM and SIGINT, which end the program with status 0.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define CHUNK_BYTES (256 * 1024)
#define QUEUE_LIMIT_BYTES (4 * 1024 * 1024)
#define MAX_DELAY_MS 60000
#define MAX_EVENTS 64
#define MAX_FREE_CHUNKS 64
#define LISTEN_BACKLOG 1024

enum endpoint_kind { ENDPOINT_LISTEN, ENDPOINT_TIMER, ENDPOINT_SIGNAL, ENDPOINT_SOCKET };

/* Target of an epoll event: one of the fixed fds or a pair's socket. */
struct endpoint {
	enum endpoint_kind kind;
	struct pair *pair;
	int side;
};

/* Bytes read at one time, due for writing at ready_ns. */
struct chunk {
	struct chunk *next;
	uint64_t ready_ns;
	size_t capacity;
	size_t len;
	size_t off;
	char data[];
};

/*
 * One direction of a pair: reads pair->fd[d] and writes pair->fd[1 - d].
 * readable and writable mirror the edge-triggered epoll state: they are
 * set by events and cleared when read() or write() returns EAGAIN.
 */
struct direction {
	struct chunk *head;
	struct chunk *tail;
	size_t queued;
	bool readable;
	bool writable;
	bool eof;
	bool shut;
};

/* A client connection (side 0) and its connection to the target (side 1). */
struct pair {
	int fd[2];
	struct endpoint endpoint[2];
	struct direction dir[2];
	bool connecting;
	int error;
	uint64_t hold_until_ns;
	struct pair *prev;
	struct pair *next;
};

struct forwarder {
	int epoll_fd;
	int listen_fd;
	int timer_fd;
	int signal_fd;
	struct addrinfo *target;
	uint64_t delay_ns;
	struct pair *pairs;
	struct chunk *free_chunks;
	size_t free_count;
	uint64_t armed_ns;
	struct endpoint listen_endpoint;
	struct endpoint timer_endpoint;
	struct endpoint signal_endpoint;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Resolve "HOST:PORT" or "[HOST]:PORT" (numeric only) into *ret. */
static int parse_address(const char *text, struct addrinfo **ret)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	};
	_cleanup_free_ char *host = strdup(text);
	char *port;
	int r;

	if (!host)
		return -ENOMEM;

	port = strrchr(host, ':');
	if (!port || port == host || port[1] == '\0')
		return -EINVAL;
	*port++ = '\0';

	if (host[0] == '[') {
		size_t len = strlen(host);

		if (len < 3 || host[len - 1] != ']')
			return -EINVAL;
		host[len - 1] = '\0';
		memmove(host, host + 1, len - 1);
	}

	r = getaddrinfo(host, port, &hints, ret);
	if (r != 0)
		return -EINVAL;
	return 0;
}

static int set_nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

static int epoll_add(struct forwarder *fw, int fd, uint32_t events, struct endpoint *endpoint)
{
	struct epoll_event event = { .events = events, .data.ptr = endpoint };

	if (epoll_ctl(fw->epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0)
		return -errno;
	return 0;
}

static int open_listener(struct forwarder *fw, const char *address)
{
	struct addrinfo *info = NULL;
	int one = 1;
	int fd, r;

	r = parse_address(address, &info);
	if (r < 0)
		return im_log_errno(r, "invalid listen address '%s', expected HOST:PORT", address);

	fd = socket(info->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		freeaddrinfo(info);
		return im_log_errno(r, "socket for '%s' failed", address);
	}
	fw->listen_fd = fd;

	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, info->ai_addr, info->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		r = -errno;
		freeaddrinfo(info);
		return im_log_errno(r, "listening on '%s' failed", address);
	}
	freeaddrinfo(info);

	return epoll_add(fw, fd, EPOLLIN, &fw->listen_endpoint);
}

static int open_timer_and_signals(struct forwarder *fw)
{
	sigset_t mask;
	int r;

	fw->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fw->timer_fd < 0)
		return im_log_errno(-errno, "timerfd_create failed");

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return im_log_errno(-errno, "blocking SIGTERM and SIGINT failed");
	fw->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fw->signal_fd < 0)
		return im_log_errno(-errno, "signalfd failed");

	r = epoll_add(fw, fw->timer_fd, EPOLLIN, &fw->timer_endpoint);
	if (r < 0)
		return r;
	return epoll_add(fw, fw->signal_fd, EPOLLIN, &fw->signal_endpoint);
}

/*
 * Full-size chunks are recycled: malloc serves CHUNK_BYTES with mmap, and
 * an mmap and munmap per read cost more than the copy itself.
 */
static struct chunk *get_chunk(struct forwarder *fw)
{
	struct chunk *chunk = fw->free_chunks;

	if (!chunk)
		return malloc(sizeof(*chunk) + CHUNK_BYTES);
	fw->free_chunks = chunk->next;
	fw->free_count--;
	return chunk;
}

static void put_chunk(struct forwarder *fw, struct chunk *chunk)
{
	if (chunk->capacity != CHUNK_BYTES || fw->free_count >= MAX_FREE_CHUNKS) {
		free(chunk);
		return;
	}
	chunk->next = fw->free_chunks;
	fw->free_chunks = chunk;
	fw->free_count++;
}

static void free_chunks(struct forwarder *fw, struct direction *dir)
{
	while (dir->head) {
		struct chunk *next = dir->head->next;

		put_chunk(fw, dir->head);
		dir->head = next;
	}
	dir->tail = NULL;
	dir->queued = 0;
}

/* Close both sockets; with reset, send an RST in place of a FIN. */
static void close_pair(struct forwarder *fw, struct pair *pair, bool reset)
{
	struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };

	for (int side = 0; side < 2; side++) {
		free_chunks(fw, &pair->dir[side]);
		if (pair->fd[side] < 0)
			continue;
		if (reset)
			(void)setsockopt(pair->fd[side], SOL_SOCKET, SO_LINGER,
					 &abort_on_close, sizeof(abort_on_close));
		close(pair->fd[side]);
	}

	if (pair->prev)
		pair->prev->next = pair->next;
	else
		fw->pairs = pair->next;
	if (pair->next)
		pair->next->prev = pair->prev;
	free(pair);
}

static int connect_target(struct forwarder *fw, struct pair *pair)
{
	const struct addrinfo *target = fw->target;
	int fd;

	fd = socket(target->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	pair->fd[1] = fd;
	(void)set_nodelay(fd);

	if (connect(fd, target->ai_addr, target->ai_addrlen) < 0 && errno != EINPROGRESS)
		return -errno;
	pair->connecting = true;
	return 0;
}

static int add_pair(struct forwarder *fw, int client_fd)
{
	const uint32_t events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	struct pair *pair;
	int r;

	pair = calloc(1, sizeof(*pair));
	if (!pair) {
		close(client_fd);
		return -ENOMEM;
	}
	pair->fd[0] = client_fd;
	pair->fd[1] = -1;
	pair->hold_until_ns = now_ns() + 2 * fw->delay_ns;
	for (int side = 0; side < 2; side++)
		pair->endpoint[side] = (struct endpoint){ ENDPOINT_SOCKET, pair, side };
	pair->next = fw->pairs;
	if (fw->pairs)
		fw->pairs->prev = pair;
	fw->pairs = pair;

	(void)set_nodelay(client_fd);
	r = connect_target(fw, pair);
	if (r >= 0)
		r = epoll_add(fw, pair->fd[0], events, &pair->endpoint[0]);
	if (r >= 0)
		r = epoll_add(fw, pair->fd[1], events, &pair->endpoint[1]);
	if (r < 0) {
		im_warn("forwarding a new connection failed: %s", strerror(-r));
		close_pair(fw, pair, true);
	}
	return r;
}

static void accept_all(struct forwarder *fw)
{
	for (;;) {
		int fd = accept4(fw->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				im_warn("accept failed: %s", strerror(errno));
			return;
		}
		(void)add_pair(fw, fd);
	}
}

/* Read from side d into its queue until EAGAIN, EOF or the queue limit. */
static int read_side(struct forwarder *fw, struct pair *pair, int d)
{
	struct direction *dir = &pair->dir[d];

	while (dir->readable && !dir->eof && dir->queued < QUEUE_LIMIT_BYTES) {
		struct chunk *chunk = get_chunk(fw);
		uint64_t read_ns;
		ssize_t n;

		if (!chunk)
			return -ENOMEM;
		n = read(pair->fd[d], chunk->data, CHUNK_BYTES);
		if (n <= 0) {
			int error = n < 0 ? errno : 0;

			chunk->capacity = CHUNK_BYTES;
			put_chunk(fw, chunk);
			if (n == 0) {
				dir->eof = true;
				return 0;
			}
			if (error == EAGAIN || error == EINTR) {
				dir->readable = error == EINTR;
				continue;
			}
			return -error;
		}

		/* Small reads (requests, headers) should not pin a whole chunk. */
		chunk->capacity = CHUNK_BYTES;
		if ((size_t)n < CHUNK_BYTES / 4) {
			struct chunk *smaller = realloc(chunk, sizeof(*chunk) + (size_t)n);

			if (smaller) {
				chunk = smaller;
				chunk->capacity = (size_t)n;
			}
		}

		read_ns = now_ns();
		if (d == 0 && read_ns < pair->hold_until_ns)
			read_ns = pair->hold_until_ns;
		chunk->next = NULL;
		chunk->ready_ns = read_ns + fw->delay_ns;
		chunk->len = (size_t)n;
		chunk->off = 0;
		if (dir->tail)
			dir->tail->next = chunk;
		else
			dir->head = chunk;
		dir->tail = chunk;
		dir->queued += (size_t)n;
	}
	return 0;
}

/* Write the due chunks of direction d; pass on a FIN once all is written. */
static int write_side(struct forwarder *fw, struct pair *pair, int d, uint64_t now)
{
	struct direction *dir = &pair->dir[d];
	int to = pair->fd[1 - d];

	if (d == 0 && pair->connecting)
		return 0;

	while (dir->writable && dir->head && dir->head->ready_ns <= now) {
		struct chunk *chunk = dir->head;
		ssize_t n = send(to, chunk->data + chunk->off, chunk->len - chunk->off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN) {
				dir->writable = false;
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}

		chunk->off += (size_t)n;
		dir->queued -= (size_t)n;
		if (chunk->off == chunk->len) {
			dir->head = chunk->next;
			if (!dir->head)
				dir->tail = NULL;
			put_chunk(fw, chunk);
		}
	}

	if (dir->eof && !dir->head && !dir->shut) {
		if (shutdown(to, SHUT_WR) < 0 && errno != ENOTCONN)
			return -errno;
		dir->shut = true;
	}
	return 0;
}

static int finish_connect(struct pair *pair)
{
	int error = 0;
	socklen_t len = sizeof(error);

	if (getsockopt(pair->fd[1], SOL_SOCKET, SO_ERROR, &error, &len) < 0)
		return -errno;
	if (error)
		return -error;
	pair->connecting = false;
	pair->dir[0].writable = true;
	return 0;
}

/* Record what an epoll event on one socket of a pair made possible. */
static int note_socket_event(struct pair *pair, int side, uint32_t events)
{
	int error = 0;
	socklen_t len = sizeof(error);

	if (events & EPOLLERR) {
		if (getsockopt(pair->fd[side], SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error)
			return -error;
		return -ECONNRESET;
	}
	if (side == 1 && pair->connecting && (events & (EPOLLOUT | EPOLLHUP))) {
		int r = finish_connect(pair);

		if (r < 0)
			return r;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
		pair->dir[side].readable = true;
	if ((events & EPOLLOUT) && !(side == 1 && pair->connecting))
		pair->dir[1 - side].writable = true;
	return 0;
}

/* Move every due byte of a pair; return 1 when the pair is finished. */
static int pump_pair(struct forwarder *fw, struct pair *pair)
{
	int r;

	if (pair->error < 0)
		return pair->error;

	for (int d = 0; d < 2; d++) {
		const struct direction *dir = &pair->dir[d];

		/* Read again while a write made room below the limit: reading
		 * stopped at the limit with data still in the socket, and
		 * edge-triggered epoll will not report that data again. */
		do {
			r = read_side(fw, pair, d);
			if (r < 0)
				return r;
			r = write_side(fw, pair, d, now_ns());
			if (r < 0)
				return r;
		} while (dir->readable && !dir->eof && dir->queued < QUEUE_LIMIT_BYTES &&
			 pair->error == 0);
	}
	return pair->dir[0].shut && pair->dir[1].shut;
}

/* Arm the timer for the earliest chunk that waits only for its time. */
static void arm_timer(struct forwarder *fw, uint64_t now)
{
	struct itimerspec spec = { 0 };
	uint64_t next = UINT64_MAX;

	for (struct pair *pair = fw->pairs; pair; pair = pair->next) {
		for (int d = 0; d < 2; d++) {
			const struct direction *dir = &pair->dir[d];

			if (dir->writable && dir->head && dir->head->ready_ns < next)
				next = dir->head->ready_ns;
		}
	}
	if (next == fw->armed_ns)
		return;
	fw->armed_ns = next;

	/* A due time in the past would disarm the timer, so use now + 1 ns. */
	if (next != UINT64_MAX) {
		if (next <= now)
			next = now + 1;
		spec.it_value.tv_sec = (time_t)(next / 1000000000u);
		spec.it_value.tv_nsec = (long)(next % 1000000000u);
	}
	if (timerfd_settime(fw->timer_fd, TFD_TIMER_ABSTIME, &spec, NULL) < 0)
		im_warn("timerfd_settime failed: %s", strerror(errno));
}

static void pump_all(struct forwarder *fw)
{
	struct pair *pair = fw->pairs;

	while (pair) {
		struct pair *next = pair->next;
		int r = pump_pair(fw, pair);

		if (r < 0)
			im_debug("resetting a connection: %s", strerror(-r));
		if (r != 0)
			close_pair(fw, pair, r < 0);
		pair = next;
	}
	arm_timer(fw, now_ns());
}

static void handle_event(struct forwarder *fw, const struct epoll_event *event, bool *stop)
{
	struct endpoint *endpoint = event->data.ptr;
	uint64_t expirations;
	struct signalfd_siginfo info;
	int r;

	switch (endpoint->kind) {
	case ENDPOINT_LISTEN:
		accept_all(fw);
		break;
	case ENDPOINT_TIMER:
		(void)!read(fw->timer_fd, &expirations, sizeof(expirations));
		fw->armed_ns = UINT64_MAX;
		break;
	case ENDPOINT_SIGNAL:
		if (read(fw->signal_fd, &info, sizeof(info)) == sizeof(info))
			im_info("received signal %u, exiting", info.ssi_signo);
		*stop = true;
		break;
	case ENDPOINT_SOCKET:
		/*
		 * A later event of this batch may belong to the same pair, so
		 * the pair is only closed in pump_all, after the batch.
		 */
		r = note_socket_event(endpoint->pair, endpoint->side, event->events);
		if (r < 0 && endpoint->pair->error == 0)
			endpoint->pair->error = r;
		break;
	}
}

static int run_loop(struct forwarder *fw)
{
	struct epoll_event events[MAX_EVENTS];
	bool stop = false;

	while (!stop) {
		int n = epoll_wait(fw->epoll_fd, events, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return im_log_errno(-errno, "epoll_wait failed");
		}

		for (int i = 0; i < n; i++)
			handle_event(fw, &events[i], &stop);
		pump_all(fw);
	}
	return 0;
}

/* Milliseconds, with a fraction if needed (an odd round trip halves to .5). */
static int parse_delay(const char *text, uint64_t *ret_ns)
{
	char *end;
	double ms;

	errno = 0;
	ms = strtod(text, &end);
	if (errno || end == text || *end != '\0' || !(ms >= 0 && ms <= MAX_DELAY_MS))
		return -EINVAL;
	*ret_ns = (uint64_t)(ms * 1e6 + 0.5);
	return 0;
}

int main(int argc, char **argv)
{
	struct forwarder fw = {
		.epoll_fd = -1, .listen_fd = -1, .timer_fd = -1, .signal_fd = -1,
		.armed_ns = UINT64_MAX,
		.listen_endpoint = { .kind = ENDPOINT_LISTEN },
		.timer_endpoint = { .kind = ENDPOINT_TIMER },
		.signal_endpoint = { .kind = ENDPOINT_SIGNAL },
	};
	int r;

	if (argc != 4) {
		fprintf(stderr, "usage: delay_forward LISTEN_ADDR:PORT TARGET_ADDR:PORT ONE_WAY_DELAY_MS\n"
				"Forward TCP connections, delaying every byte by ONE_WAY_DELAY_MS\n"
				"milliseconds (0 to %d, fractions allowed) in each direction.\n", MAX_DELAY_MS);
		return 2;
	}
	if (parse_delay(argv[3], &fw.delay_ns) < 0) {
		im_err("invalid delay '%s'; expected milliseconds from 0 to %d", argv[3], MAX_DELAY_MS);
		return 2;
	}
	if (parse_address(argv[2], &fw.target) < 0) {
		im_err("invalid target address '%s'; expected HOST:PORT with a numeric host", argv[2]);
		return 2;
	}

	fw.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	r = fw.epoll_fd < 0 ? im_log_errno(-errno, "epoll_create1 failed") : 0;
	if (r >= 0)
		r = open_timer_and_signals(&fw);
	if (r >= 0)
		r = open_listener(&fw, argv[1]);
	if (r >= 0) {
		im_info("forwarding %s to %s with %s ms one-way delay", argv[1], argv[2], argv[3]);
		r = run_loop(&fw);
	}

	while (fw.pairs)
		close_pair(&fw, fw.pairs, false);
	while (fw.free_chunks) {
		struct chunk *next = fw.free_chunks->next;

		free(fw.free_chunks);
		fw.free_chunks = next;
	}
	freeaddrinfo(fw.target);
	return r < 0 ? 1 : 0;
}
