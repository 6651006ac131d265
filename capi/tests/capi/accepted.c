/*
 * Accepted sockets stay the stack's (issue 12, item 1): the stack's thread
 * closes its copy of each accepted descriptor once it passed it on, and an
 * iperf3 server then saw getpeername answer for the AF_UNIX pair underneath
 * (port 0). Here every accepted socket must answer as a TCP socket of the
 * stack: getpeername names the client, getsockname the listener's address,
 * SO_DOMAIN is AF_INET, setsockopt takes TCP options; also after thousands of
 * sockets came and went on the stack since, and after the peer reset half of
 * them (the stack let those go: the program still holds them), where a reset
 * reads as ECONNRESET.
 *
 * usage: accepted VDENET
 * Runs on either backend (VDESTACK_BACKEND). Exits 0 on success; otherwise
 * prints the failing call with errno, exits 1.
 */
#include <netinet/tcp.h>

#include "testlib.h"

#define SA(a) ((struct sockaddr *)&(a))
#define CONNS 16
/* Sockets made and closed in between: more than the registry's first sweep. */
#define CHURN 2500

static int clients[CONNS], conns[CONNS];
/* Each client's port (network order), read when it connected. */
static in_port_t client_ports[CONNS];

/* The accepted socket `i` answers as its connection: peer, address, options. */
static void answers_as_tcp(int i, int reset)
{
	struct sockaddr_in peer, local;
	socklen_t len;
	int domain = -1, one = 1;
	socklen_t dlen = sizeof domain;

	len = sizeof local;
	CHECK(getsockname(conns[i], SA(local), &len) == 0, "getsockname");
	CHECK(local.sin_family == AF_INET && ntohs(local.sin_port) == 80 &&
		      local.sin_addr.s_addr == inet_addr("10.0.0.1"),
	      "getsockname names the listener's address");
	CHECK(getsockopt(conns[i], SOL_SOCKET, SO_DOMAIN, &domain, &dlen) == 0 &&
		      domain == AF_INET,
	      "SO_DOMAIN is AF_INET");
	CHECK(setsockopt(conns[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0,
	      "setsockopt TCP_NODELAY");
	len = sizeof peer;
	if (getpeername(conns[i], SA(peer), &len) != 0) {
		/* Linux: a connection that was reset has no peer any more. */
		CHECK(reset && errno == ENOTCONN, "getpeername");
		return;
	}
	CHECK(peer.sin_family == AF_INET && peer.sin_port == client_ports[i] &&
		      peer.sin_addr.s_addr == inet_addr("10.0.0.2"),
	      "getpeername names the client");
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	struct linger reset_on_close = { .l_onoff = 1, .l_linger = 0 };
	char x;
	int listener, i;

	need_vdenet(argc, argv);
	hang_guard("accepted", 60);
	two_stacks(argv[1], &a, &b);
	listener = stack_listener(a, 80, CONNS);
	for (i = 0; i < CONNS; i++) {
		struct sockaddr_in client;
		socklen_t len = sizeof client;
		clients[i] = stack_connect(b, "10.0.0.1", 80);
		CHECK(getsockname(clients[i], SA(client), &len) == 0,
		      "client getsockname");
		client_ports[i] = client.sin_port;
		conns[i] = accept(listener, NULL, NULL);
		CHECK(conns[i] >= 0, "accept");
		answers_as_tcp(i, 0);
	}

	/* The peer resets every other connection. */
	for (i = 0; i < CONNS; i += 2) {
		CHECK(setsockopt(clients[i], SOL_SOCKET, SO_LINGER, &reset_on_close,
				 sizeof reset_on_close) == 0,
		      "SO_LINGER 0");
		CHECK(close(clients[i]) == 0, "close with a reset");
	}
	for (i = 0; i < CONNS; i += 2) {
		errno = 0;
		CHECK(read(conns[i], &x, 1) == -1 && errno == ECONNRESET,
		      "the reset reads as ECONNRESET");
	}

	/* Many sockets come and go on the same stack. */
	for (i = 0; i < CHURN; i++) {
		int fd = vde_msocket(a, AF_INET, i % 2 ? SOCK_DGRAM : SOCK_STREAM, 0);
		CHECK(fd >= 0, "vde_msocket (churn)");
		CHECK(close(fd) == 0, "close (churn)");
	}
	for (i = 0; i < CONNS; i++)
		answers_as_tcp(i, i % 2 == 0);
	for (i = 1; i < CONNS; i += 2)
		exchange(clients[i], conns[i]);

	for (i = 0; i < CONNS; i++) {
		close(conns[i]);
		if (i % 2)
			close(clients[i]);
	}
	close(listener);
	vde_delstack(a);
	vde_delstack(b);
	printf("accepted: ok\n");
	return 0;
}
