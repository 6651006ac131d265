/*
 * Every socket option of the table in src/capi/options.rs, set and read back
 * through setsockopt/getsockopt on stack sockets, with Linux's errno for what
 * a socket of that kind does not take.
 *
 * usage: options VDENET
 */
#include <netinet/tcp.h>

#include "testlib.h"

#define SA(a) ((struct sockaddr *)&(a))

static int get_int(int fd, int level, int name)
{
	int v = -12345;
	socklen_t len = sizeof v;
	CHECK(getsockopt(fd, level, name, &v, &len) == 0 && len == sizeof v,
	      "getsockopt");
	return v;
}

static void set_int(int fd, int level, int name, int v)
{
	CHECK(setsockopt(fd, level, name, &v, sizeof v) == 0, "setsockopt");
}

/* Sets an int option and checks that it reads back as `expect`. */
static void round_trip(int fd, int level, int name, int v, int expect,
		       const char *what)
{
	step = what;
	set_int(fd, level, name, v);
	if (get_int(fd, level, name) != expect) {
		fprintf(stderr, "options.c: %s: set %d, read %d, expected %d\n",
			what, v, get_int(fd, level, name), expect);
		exit(1);
	}
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	int v = 0;
	/* The same program runs on the kernel backend (VDESTACK_BACKEND=kernel),
	 * where the few options the userspace stack cannot do work as on Linux. */
	const char *backend = getenv("VDESTACK_BACKEND");
	int kernel = backend && strcmp(backend, "kernel") == 0;

	need_vdenet(argc, argv);
	hang_guard("options", 60);
	two_stacks(argv[1], &a, &b);

	int tcp = vde_msocket(b, AF_INET, SOCK_STREAM, 0);
	CHECK(tcp >= 0, "vde_msocket tcp");
	CHECK(get_int(tcp, SOL_SOCKET, SO_TYPE) == SOCK_STREAM, "SO_TYPE");
	CHECK(get_int(tcp, SOL_SOCKET, SO_DOMAIN) == AF_INET, "SO_DOMAIN");
	CHECK(get_int(tcp, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP,
	      "SO_PROTOCOL");
	CHECK(get_int(tcp, SOL_SOCKET, SO_ACCEPTCONN) == 0, "SO_ACCEPTCONN");
	CHECK(get_int(tcp, SOL_SOCKET, SO_ERROR) == 0, "SO_ERROR");
	round_trip(tcp, SOL_SOCKET, SO_REUSEADDR, 1, 1, "SO_REUSEADDR");
	round_trip(tcp, SOL_SOCKET, SO_REUSEPORT, 1, 1, "SO_REUSEPORT");
	round_trip(tcp, SOL_SOCKET, SO_KEEPALIVE, 1, 1, "SO_KEEPALIVE");
	CHECK(get_int(tcp, IPPROTO_TCP, TCP_KEEPIDLE) == 7200, "TCP_KEEPIDLE default");
	round_trip(tcp, IPPROTO_TCP, TCP_KEEPIDLE, 30, 30, "TCP_KEEPIDLE");
	round_trip(tcp, IPPROTO_TCP, TCP_KEEPINTVL, 5, 5, "TCP_KEEPINTVL");
	round_trip(tcp, IPPROTO_TCP, TCP_KEEPCNT, 3, 3, "TCP_KEEPCNT");
	v = 0;
	FAILS_WITH(setsockopt(tcp, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof v),
		   EINVAL, "TCP_KEEPCNT 0");
	round_trip(tcp, IPPROTO_TCP, TCP_NODELAY, 1, 1, "TCP_NODELAY");
	CHECK(get_int(tcp, SOL_SOCKET, SO_RCVBUF) == 131072, "SO_RCVBUF default");
	CHECK(get_int(tcp, SOL_SOCKET, SO_SNDBUF) == 16384, "SO_SNDBUF default");
	round_trip(tcp, SOL_SOCKET, SO_RCVBUF, 50000, 100000, "SO_RCVBUF doubled");
	round_trip(tcp, SOL_SOCKET, SO_SNDBUF, 30000, 60000, "SO_SNDBUF doubled");
	CHECK(get_int(tcp, IPPROTO_IP, IP_TTL) == 64, "IP_TTL default");
	round_trip(tcp, IPPROTO_IP, IP_TTL, 17, 17, "IP_TTL");
	round_trip(tcp, IPPROTO_IP, IP_TTL, -1, 64, "IP_TTL -1 restores 64");
	v = 256;
	FAILS_WITH(setsockopt(tcp, IPPROTO_IP, IP_TTL, &v, sizeof v), EINVAL,
		   "IP_TTL 256");
	CHECK(get_int(tcp, IPPROTO_TCP, TCP_MAXSEG) == 536,
	      "TCP_MAXSEG before connecting: Linux's default MSS");
	v = 1000;
	if (kernel) {
		CHECK(setsockopt(tcp, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof v) == 0,
		      "TCP_MAXSEG set (Linux clamps the MSS)");
	} else {
		/* smoltcp has no MSS clamp: the userspace stack says so. */
		FAILS_WITH(setsockopt(tcp, IPPROTO_TCP, TCP_MAXSEG, &v,
				      sizeof v),
			   ENOPROTOOPT, "TCP_MAXSEG cannot be set");
	}
	v = 1;
	FAILS_WITH(setsockopt(tcp, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v),
		   ENOPROTOOPT, "IPV6_V6ONLY on AF_INET");
	if (!kernel)
		FAILS_WITH(setsockopt(tcp, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof v),
			   ENOPROTOOPT, "an option the userspace stack does not have");

	struct linger l = { .l_onoff = 1, .l_linger = 0 }, got;
	socklen_t len = sizeof got;
	CHECK(setsockopt(tcp, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0,
	      "SO_LINGER");
	CHECK(getsockopt(tcp, SOL_SOCKET, SO_LINGER, &got, &len) == 0 &&
		      len == sizeof got && got.l_onoff == 1 && got.l_linger == 0,
	      "SO_LINGER reads back");

	struct ip_mreq mreq;
	mreq.imr_multiaddr.s_addr = inet_addr("239.1.1.1");
	mreq.imr_interface.s_addr = htonl(INADDR_ANY);
	FAILS_WITH(setsockopt(tcp, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq,
			      sizeof mreq),
		   EPROTO, "IP_ADD_MEMBERSHIP on TCP");

	/* Options set before connecting apply to the connection. */
	int lfd = stack_listener(a, 80, 4);
	CHECK(get_int(lfd, SOL_SOCKET, SO_ACCEPTCONN) == 1, "SO_ACCEPTCONN");
	struct sockaddr_in to = inet("10.0.0.1", 80);
	CHECK(connect(tcp, SA(to), sizeof to) == 0, "connect");
	CHECK(get_int(tcp, IPPROTO_IP, IP_TTL) == 64 &&
		      get_int(tcp, SOL_SOCKET, SO_RCVBUF) == 100000 &&
		      get_int(tcp, IPPROTO_TCP, TCP_NODELAY) == 1,
	      "options survive connect");
	/* Connected: the MSS the link gives (Linux takes 12 more bytes off for
	 * TCP timestamps, which smoltcp does not send; with its clamp set above,
	 * 1000 there). */
	v = get_int(tcp, IPPROTO_TCP, TCP_MAXSEG);
	CHECK(kernel ? v <= 1000 : v == 1460, "TCP_MAXSEG when connected");
	round_trip(tcp, IPPROTO_IP, IP_TTL, 99, 99, "IP_TTL when connected");
	int conn = accept(lfd, NULL, NULL);
	CHECK(conn >= 0, "accept");
	close(conn);
	close(tcp);

	/* UDP, IPv4. Joining by INADDR_ANY takes the interface the group's route
	 * names, on Linux: give it one (the userspace stack has one link anyway). */
	CHECK(vde_stackcmd(b, "/bin/ip route add 224.0.0.0/4 dev vde0") == 0,
	      "multicast route");
	int udp = vde_msocket(b, AF_INET, SOCK_DGRAM, 0);
	CHECK(udp >= 0, "vde_msocket udp");
	CHECK(get_int(udp, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDP,
	      "SO_PROTOCOL udp");
	CHECK(get_int(udp, SOL_SOCKET, SO_RCVBUF) == 212992, "UDP SO_RCVBUF");
	round_trip(udp, SOL_SOCKET, SO_BROADCAST, 1, 1, "SO_BROADCAST");
	v = 1;
	FAILS_WITH(setsockopt(udp, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v),
		   ENOPROTOOPT, "TCP_NODELAY on UDP");
	CHECK(setsockopt(udp, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq,
			 sizeof mreq) == 0,
	      "IP_ADD_MEMBERSHIP");
	FAILS_WITH(setsockopt(udp, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq,
			      sizeof mreq),
		   EADDRINUSE, "IP_ADD_MEMBERSHIP twice");
	CHECK(setsockopt(udp, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mreq,
			 sizeof mreq) == 0,
	      "IP_DROP_MEMBERSHIP");
	FAILS_WITH(setsockopt(udp, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mreq,
			      sizeof mreq),
		   EADDRNOTAVAIL, "IP_DROP_MEMBERSHIP not joined");
	mreq.imr_multiaddr.s_addr = inet_addr("10.0.0.7");
	FAILS_WITH(setsockopt(udp, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq,
			      sizeof mreq),
		   EINVAL, "IP_ADD_MEMBERSHIP of a unicast address");
	round_trip(udp, IPPROTO_IP, IP_TTL, 3, 3, "IP_TTL on UDP");
	close(udp);

	/* IPv6. */
	int udp6 = vde_msocket(b, AF_INET6, SOCK_DGRAM, 0);
	CHECK(udp6 >= 0, "vde_msocket udp6");
	CHECK(get_int(udp6, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "V6ONLY default");
	round_trip(udp6, IPPROTO_IPV6, IPV6_V6ONLY, 1, 1, "IPV6_V6ONLY");
	round_trip(udp6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 5, 5,
		   "IPV6_UNICAST_HOPS");
	struct sockaddr_in6 any6;
	memset(&any6, 0, sizeof any6);
	any6.sin6_family = AF_INET6;
	CHECK(bind(udp6, SA(any6), sizeof any6) == 0, "bind udp6");
	v = 0;
	FAILS_WITH(setsockopt(udp6, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v),
		   EINVAL, "IPV6_V6ONLY after bind");
	struct ipv6_mreq m6;
	memset(&m6, 0, sizeof m6);
	inet_pton(AF_INET6, "ff12::1234", &m6.ipv6mr_multiaddr);
	CHECK(setsockopt(udp6, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &m6,
			 sizeof m6) == 0,
	      "IPV6_ADD_MEMBERSHIP");
	CHECK(setsockopt(udp6, IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP, &m6,
			 sizeof m6) == 0,
	      "IPV6_DROP_MEMBERSHIP");
	close(udp6);

	close(lfd);
	vde_delstack(a);
	vde_delstack(b);
	return 0;
}
