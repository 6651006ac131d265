/*
 * A peer's reset through the plain C calls: read(), recv() and recvfrom() on a
 * connection the peer reset give -1 with ECONNRESET once, then 0 (end of
 * stream), and a write after that fails with EPIPE, as on a Linux socket. The
 * descriptor is one end of a socket pair, which by itself can only say EOF.
 *
 * Built with 64-bit file offsets, as many programs are (glibc then names
 * fcntl fcntl64): a copy made with F_DUPFD is still the same socket.
 *
 * usage: reset VDENET
 */
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <signal.h>

#include "testlib.h"

#define SA(a) ((struct sockaddr *)&(a))

/* A connection from b to a's listener, reset by a's side (SO_LINGER 0 and
 * close); returns b's descriptor. */
static int reset_connection(struct vdestack *b, int lfd)
{
	int conn = stack_connect(b, "10.0.0.1", 80);
	int peer = accept(lfd, NULL, NULL);
	CHECK(peer >= 0, "accept");
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	CHECK(setsockopt(peer, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0,
	      "SO_LINGER 0");
	CHECK(close(peer) == 0, "close with linger 0");
	return conn;
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	char buf[64];

	need_vdenet(argc, argv);
	hang_guard("reset", 60);
	signal(SIGPIPE, SIG_IGN);
	two_stacks(argv[1], &a, &b);
	int lfd = stack_listener(a, 80, 4);

	int conn = reset_connection(b, lfd);
	errno = 0;
	CHECK(read(conn, buf, sizeof buf) == -1 && errno == ECONNRESET,
	      "read after the peer's reset gives ECONNRESET");
	CHECK(read(conn, buf, sizeof buf) == 0, "then end of stream");
	errno = 0;
	CHECK(write(conn, "x", 1) == -1 && errno == EPIPE, "then write gives EPIPE");
	close(conn);

	conn = reset_connection(b, lfd);
	errno = 0;
	CHECK(recv(conn, buf, sizeof buf, 0) == -1 && errno == ECONNRESET,
	      "recv after the peer's reset gives ECONNRESET");
	CHECK(recv(conn, buf, sizeof buf, 0) == 0, "then end of stream (recv)");
	close(conn);

	conn = reset_connection(b, lfd);
	errno = 0;
	CHECK(recvfrom(conn, buf, sizeof buf, 0, NULL, NULL) == -1 &&
		      errno == ECONNRESET,
	      "recvfrom after the peer's reset gives ECONNRESET");
	close(conn);

	/* A clean close stays a clean end of stream, on an F_DUPFD copy too. */
	int original = stack_connect(b, "10.0.0.1", 80);
	conn = fcntl(original, F_DUPFD, 50);
	CHECK(conn >= 50, "fcntl F_DUPFD");
	CHECK(close(original) == 0, "close the original");
	struct sockaddr_in peer_addr;
	socklen_t alen = sizeof peer_addr;
	memset(&peer_addr, 0, sizeof peer_addr);
	CHECK(getpeername(conn, SA(peer_addr), &alen) == 0 &&
		      alen == sizeof peer_addr &&
		      peer_addr.sin_family == AF_INET &&
		      peer_addr.sin_port == htons(80),
	      "getpeername on the F_DUPFD copy");
	int peer = accept(lfd, NULL, NULL);
	CHECK(peer >= 0, "accept");
	CHECK(close(peer) == 0, "close");
	CHECK(read(conn, buf, sizeof buf) == 0, "a FIN reads as end of stream");
	close(conn);

	close(lfd);
	vde_delstack(a);
	vde_delstack(b);
	printf("reset: ok\n");
	return 0;
}
