/*
 * An epoll-driven echo server on stack A (10.0.0.1) and non-blocking clients
 * on stack B (10.0.0.2), both on the VDE network given as argv[1]: the event
 * loop calls a C programmer writes for kernel sockets, unchanged.
 *
 * Server: non-blocking listener (fcntl O_NONBLOCK), accept4(SOCK_NONBLOCK),
 * EPOLLIN/EPOLLOUT with a bounded buffer per connection, so that a client
 * that writes faster than it reads makes the server wait for EPOLLOUT.
 * Clients: non-blocking connect -> EINPROGRESS, poll(POLLOUT), SO_ERROR;
 * ECONNREFUSED the same way; getsockopt, getsockname/getpeername, dup,
 * select, shutdown(SHUT_WR).
 *
 * Exits 0 on success; otherwise prints the failing call with errno, exits 1.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <vdestack.h>

#include "testlib.h"

#define PORT 7
#define CLOSED_PORT 9
#define NCLIENTS 5
#define BULK (8 * 1024 * 1024)
#define CONNBUF 65536
#define MAXCONN 64

static int sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;
	CHECK(getsockopt(fd, level, name, &v, &len) == 0, "getsockopt");
	CHECK(len == sizeof v, "getsockopt length");
	return v;
}

static int same_addr(const struct sockaddr_in *a, const char *ip, int port)
{
	return a->sin_family == AF_INET && a->sin_addr.s_addr == inet_addr(ip) &&
	       (port < 0 || a->sin_port == htons((unsigned short)port));
}

/* Waits up to 10 s for events on fd; returns revents (0 on timeout). */
static short wait_for(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;
	do
		n = poll(&p, 1, 10000);
	while (n < 0 && errno == EINTR);
	CHECK(n >= 0, "poll");
	return n == 0 ? 0 : p.revents;
}

/* Non-blocking read of exactly len bytes, polling for POLLIN. */
static void read_exact_nb(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			CHECK(wait_for(fd, POLLIN) & (POLLIN | POLLHUP | POLLERR),
			      "poll POLLIN for the echo");
			continue;
		}
		CHECK(n > 0, "recv the echo");
		got += (size_t)n;
	}
}

static void write_all_nb(int fd, const char *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			CHECK(wait_for(fd, POLLOUT) & POLLOUT, "poll POLLOUT to send");
			continue;
		}
		CHECK(n > 0, "send");
		done += (size_t)n;
	}
}

/* ---- the server: one thread, one epoll loop ---- */

struct conn {
	int fd;
	char buf[CONNBUF];
	size_t len, off; /* bytes buffered, bytes of them already echoed */
};

struct server {
	int listener, stop, epfd;
	int accepted, closed;
	int stalls; /* writes that met EAGAIN: the server then waited for EPOLLOUT */
	struct conn *conns[MAXCONN];
};

static void watch(struct server *s, struct conn *c, int op)
{
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	/* Read while there is nothing to echo; otherwise wait to write. */
	ev.events = c->len > c->off ? EPOLLOUT : EPOLLIN;
	ev.data.ptr = c;
	CHECK(epoll_ctl(s->epfd, op, c->fd, &ev) == 0, "epoll_ctl connection");
}

static void drop(struct server *s, struct conn *c)
{
	int i;
	CHECK(epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL) == 0, "epoll_ctl DEL");
	CHECK(close(c->fd) == 0, "server close");
	for (i = 0; i < MAXCONN; i++)
		if (s->conns[i] == c)
			s->conns[i] = NULL;
	free(c);
	s->closed++;
}

/* Echoes what is buffered, until done or EAGAIN. */
static void flush(struct server *s, struct conn *c)
{
	while (c->off < c->len) {
		ssize_t n = write(c->fd, c->buf + c->off, c->len - c->off);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			s->stalls++;
			return;
		}
		CHECK(n > 0, "server write");
		c->off += (size_t)n;
	}
	c->len = c->off = 0;
}

static void accept_all(struct server *s)
{
	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof peer;
		struct conn *c;
		int i, fd = accept4(s->listener, (struct sockaddr *)&peer, &plen,
				    SOCK_NONBLOCK);
		if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		CHECK(fd >= 0, "accept4");
		CHECK(plen == sizeof peer && same_addr(&peer, "10.0.0.2", -1),
		      "accept4 gives the client's address");
		CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK, "accept4 SOCK_NONBLOCK");
		CHECK(sockopt(fd, SOL_SOCKET, SO_ACCEPTCONN) == 0,
		      "SO_ACCEPTCONN == 0 on an accepted socket");
		c = calloc(1, sizeof *c);
		CHECK(c != NULL, "calloc");
		c->fd = fd;
		for (i = 0; i < MAXCONN && s->conns[i]; i++)
			;
		CHECK(i < MAXCONN, "room for the connection");
		s->conns[i] = c;
		s->accepted++;
		watch(s, c, EPOLL_CTL_ADD);
	}
}

static void *serve(void *arg)
{
	struct server *s = arg;
	struct epoll_event ev, events[16];
	int running = 1, i;

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK(s->epfd >= 0, "epoll_create1");
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = &s->listener;
	CHECK(epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listener, &ev) == 0,
	      "epoll_ctl listener");
	ev.data.ptr = &s->stop; /* a kernel pipe in the same epoll set */
	CHECK(epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stop, &ev) == 0, "epoll_ctl pipe");

	while (running) {
		int n = epoll_wait(s->epfd, events, 16, -1);
		if (n < 0 && errno == EINTR)
			continue;
		CHECK(n > 0, "epoll_wait");
		for (i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			if (events[i].data.ptr == &s->listener) {
				accept_all(s);
				continue;
			}
			if (events[i].data.ptr == &s->stop) {
				running = 0;
				continue;
			}
			if (c->len > c->off) {
				/* EPOLLOUT (or an error, which write reports). */
				flush(s, c);
			} else {
				ssize_t r = read(c->fd, c->buf, sizeof c->buf);
				if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
					continue;
				CHECK(r >= 0, "server read");
				if (r == 0) {
					drop(s, c);
					continue;
				}
				c->len = (size_t)r;
				c->off = 0;
				flush(s, c);
			}
			watch(s, c, EPOLL_CTL_MOD);
		}
	}
	for (i = 0; i < MAXCONN; i++)
		if (s->conns[i])
			drop(s, s->conns[i]);
	CHECK(close(s->epfd) == 0, "close epoll");
	return NULL;
}

/* ---- the clients ---- */

/* A non-blocking connect from stack b; returns the connected socket. */
static int connect_nb(struct vdestack *b, int port, int *err)
{
	struct sockaddr_in to = inet("10.0.0.1", port);
	int fd = vde_msocket(b, AF_INET, SOCK_STREAM, 0);
	int flags;
	short rev;
	CHECK(fd >= 0, "vde_msocket b");
	flags = fcntl(fd, F_GETFL);
	CHECK(flags >= 0, "fcntl F_GETFL");
	CHECK(fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0, "fcntl F_SETFL O_NONBLOCK");
	CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK, "O_NONBLOCK is set");
	errno = 0;
	if (connect(fd, (struct sockaddr *)&to, sizeof to) == 0) {
		errno = 0;
		CHECK(0, "non-blocking connect returns -1 EINPROGRESS (it returned 0)");
	}
	if (errno == ECONNREFUSED) {
		/* Linux may also report a refusal at once. */
		*err = ECONNREFUSED;
		return fd;
	}
	CHECK(errno == EINPROGRESS, "non-blocking connect gives EINPROGRESS");
	rev = wait_for(fd, POLLOUT);
	CHECK(rev & (POLLOUT | POLLERR | POLLHUP), "poll POLLOUT after connect");
	*err = sockopt(fd, SOL_SOCKET, SO_ERROR);
	return fd;
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	struct server srv;
	struct sockaddr_in addr;
	socklen_t alen;
	pthread_t thread;
	int pipefd[2], clients[NCLIENTS], err, fd, i, dupfd;
	char msg[64], buf[64];
	char *bulk, *back;
	fd_set rfds;
	struct timeval tv;

	need_vdenet(argc, argv);
	hang_guard("epoll_echo.c", 45);

	two_stacks(argv[1], &a, &b);

	/* The listener. */
	memset(&srv, 0, sizeof srv);
	srv.listener = stack_listener(a, PORT, 16);
	CHECK(fcntl(srv.listener, F_SETFL, O_NONBLOCK) == 0,
	      "fcntl F_SETFL O_NONBLOCK on the listener");
	CHECK(sockopt(srv.listener, SOL_SOCKET, SO_TYPE) == SOCK_STREAM,
	      "SO_TYPE == SOCK_STREAM");
	CHECK(sockopt(srv.listener, SOL_SOCKET, SO_DOMAIN) == AF_INET,
	      "SO_DOMAIN == AF_INET");
	CHECK(sockopt(srv.listener, SOL_SOCKET, SO_ACCEPTCONN) == 1,
	      "SO_ACCEPTCONN == 1 on the listener");
	alen = sizeof addr;
	CHECK(getsockname(srv.listener, (struct sockaddr *)&addr, &alen) == 0,
	      "getsockname listener");
	CHECK(alen == sizeof addr && same_addr(&addr, "0.0.0.0", PORT),
	      "getsockname listener is 0.0.0.0:7");
	errno = 0;
	CHECK(accept(srv.listener, NULL, NULL) < 0 &&
		      (errno == EAGAIN || errno == EWOULDBLOCK),
	      "accept with nothing pending gives EAGAIN");

	CHECK(pipe(pipefd) == 0, "pipe");
	srv.stop = pipefd[0];
	errno = pthread_create(&thread, NULL, serve, &srv);
	CHECK(errno == 0, "pthread_create");

	/* A port nobody listens on: ECONNREFUSED through poll + SO_ERROR. */
	fd = connect_nb(b, CLOSED_PORT, &err);
	errno = err;
	CHECK(err == ECONNREFUSED, "SO_ERROR is ECONNREFUSED for a closed port");
	CHECK(close(fd) == 0, "close refused socket");

	/* Several clients at once. */
	for (i = 0; i < NCLIENTS; i++) {
		clients[i] = connect_nb(b, PORT, &err);
		errno = err;
		CHECK(err == 0, "SO_ERROR == 0 after connecting");
	}
	for (i = 0; i < NCLIENTS; i++) {
		fd = clients[i];
		CHECK(sockopt(fd, SOL_SOCKET, SO_ACCEPTCONN) == 0,
		      "SO_ACCEPTCONN == 0 on a connected socket");
		CHECK(sockopt(fd, SOL_SOCKET, SO_TYPE) == SOCK_STREAM,
		      "SO_TYPE of a connected socket");
		alen = sizeof addr;
		CHECK(getsockname(fd, (struct sockaddr *)&addr, &alen) == 0,
		      "getsockname client");
		CHECK(alen == sizeof addr && same_addr(&addr, "10.0.0.2", -1) &&
			      addr.sin_port != 0,
		      "getsockname client is 10.0.0.2 with a port");
		alen = sizeof addr;
		CHECK(getpeername(fd, (struct sockaddr *)&addr, &alen) == 0,
		      "getpeername client");
		CHECK(alen == sizeof addr && same_addr(&addr, "10.0.0.1", PORT),
		      "getpeername client is 10.0.0.1:7");
		snprintf(msg, sizeof msg, "message of client %d", i);
		write_all_nb(fd, msg, strlen(msg));
	}
	for (i = NCLIENTS - 1; i >= 0; i--) {
		snprintf(msg, sizeof msg, "message of client %d", i);
		memset(buf, 0, sizeof buf);
		read_exact_nb(clients[i], buf, strlen(msg));
		CHECK(memcmp(buf, msg, strlen(msg)) == 0, "echo matches");
	}

	/* select() reports readability of a connected socket. */
	write_all_nb(clients[0], "select", 6);
	FD_ZERO(&rfds);
	FD_SET(clients[0], &rfds);
	tv.tv_sec = 10;
	tv.tv_usec = 0;
	CHECK(select(clients[0] + 1, &rfds, NULL, NULL, &tv) == 1 &&
		      FD_ISSET(clients[0], &rfds),
	      "select reports the echo readable");
	read_exact_nb(clients[0], buf, 6);
	CHECK(memcmp(buf, "select", 6) == 0, "echo after select");

	/* A dup of a connected socket is the same socket, and survives close. */
	dupfd = dup(clients[1]);
	CHECK(dupfd >= 0, "dup");
	write_all_nb(dupfd, "via the dup", 11);
	read_exact_nb(clients[1], buf, 11);
	CHECK(memcmp(buf, "via the dup", 11) == 0, "echo of the dup read on the original");
	CHECK(close(clients[1]) == 0, "close the original");
	write_all_nb(dupfd, "dup alone", 9);
	read_exact_nb(dupfd, buf, 9);
	CHECK(memcmp(buf, "dup alone", 9) == 0, "the dup works after closing the original");
	clients[1] = dupfd;

	/* So is a copy made by fcntl(F_DUPFD_CLOEXEC): it keeps its addresses
	 * once the original is closed. */
	dupfd = fcntl(clients[1], F_DUPFD_CLOEXEC, 100);
	CHECK(dupfd >= 100, "fcntl F_DUPFD_CLOEXEC");
	CHECK(close(clients[1]) == 0, "close the original of the fcntl copy");
	memset(&addr, 0, sizeof addr);
	alen = sizeof addr;
	CHECK(getpeername(dupfd, (struct sockaddr *)&addr, &alen) == 0 &&
		      alen == sizeof addr && same_addr(&addr, "10.0.0.1", PORT),
	      "getpeername on the fcntl copy is 10.0.0.1:7");
	write_all_nb(dupfd, "fcntl copy", 10);
	read_exact_nb(dupfd, buf, 10);
	CHECK(memcmp(buf, "fcntl copy", 10) == 0, "the fcntl copy works alone");
	clients[1] = dupfd;

	/* Bulk: 8 MiB, written faster than read, so the server meets EAGAIN. */
	bulk = malloc(BULK);
	back = malloc(BULK);
	CHECK(bulk && back, "malloc");
	for (i = 0; i < BULK; i++)
		bulk[i] = (char)(i * 7 + i / 251);
	{
		size_t sent = 0, got = 0;
		fd = clients[2];
		/* Write without reading until nothing moves for 300 ms: the
		 * echo fills our receive queue, then the server's send queue. */
		while (sent < BULK) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			ssize_t n;
			int r = poll(&p, 1, 300);
			CHECK(r >= 0, "poll POLLOUT during the bulk send");
			if (r == 0)
				break;
			n = send(fd, bulk + sent, BULK - sent, MSG_NOSIGNAL);
			CHECK(n > 0 || errno == EAGAIN, "bulk send");
			if (n > 0)
				sent += (size_t)n;
		}
		/* Then both ways until the whole echo is back. */
		while (got < BULK) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ssize_t n;
			int r;
			if (sent < BULK)
				p.events |= POLLOUT;
			step = "bulk poll";
			r = poll(&p, 1, 10000);
			CHECK(r > 0, "poll during the bulk echo (0 = stalled 10 s)");
			if ((p.revents & POLLOUT) && sent < BULK) {
				n = send(fd, bulk + sent, BULK - sent, MSG_NOSIGNAL);
				CHECK(n > 0 || errno == EAGAIN, "bulk send");
				if (n > 0)
					sent += (size_t)n;
			}
			if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
				n = recv(fd, back + got, BULK - got, 0);
				CHECK(n > 0 || (n < 0 && errno == EAGAIN), "bulk recv");
				if (n > 0)
					got += (size_t)n;
			}
		}
		CHECK(memcmp(bulk, back, BULK) == 0, "bulk echo matches");
	}
	free(bulk);
	free(back);

	/* shutdown(SHUT_WR): the server sees EOF and closes; we read EOF. */
	CHECK(shutdown(clients[3], SHUT_WR) == 0, "shutdown SHUT_WR");
	CHECK(wait_for(clients[3], POLLIN) & (POLLIN | POLLHUP), "poll for EOF");
	CHECK(recv(clients[3], buf, sizeof buf, 0) == 0, "EOF after the server closed");

	for (i = 0; i < NCLIENTS; i++)
		CHECK(close(clients[i]) == 0, "close client");
	CHECK(write(pipefd[1], "x", 1) == 1, "stop the server");
	errno = pthread_join(thread, NULL);
	CHECK(errno == 0, "pthread_join");
	errno = 0;
	CHECK(srv.accepted == NCLIENTS, "the server accepted every client");
	CHECK(close(srv.listener) == 0, "close listener");
	close(pipefd[0]);
	close(pipefd[1]);
	vde_delstack(a);
	vde_delstack(b);
	printf("epoll_echo: ok (the server waited for EPOLLOUT %d times)\n",
	       srv.stalls);
	return 0;
}
