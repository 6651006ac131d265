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

/* The name an option reads back, and its length. */
static socklen_t get_name(int fd, int level, int name, char *out, socklen_t size)
{
	memset(out, 0x55, size);
	CHECK(getsockopt(fd, level, name, out, &size) == 0, "getsockopt (name)");
	return size;
}

/* The options of issue 12, item 7, on a socket not yet connected, as Linux
 * takes them. */
static void linux_options(int tcp)
{
	char name[32];
	int v;

	/* IP_TOS: a stream's ECN bits are its own; the TOS class sets the
	 * priority. */
	round_trip(tcp, IPPROTO_IP, IP_TOS, 0x10, 0x10, "IP_TOS");
	CHECK(get_int(tcp, SOL_SOCKET, SO_PRIORITY) == 6,
	      "IP_TOS low delay makes SO_PRIORITY 6");
	round_trip(tcp, IPPROTO_IP, IP_TOS, 0xff, 0xfc,
		   "IP_TOS of a stream drops the ECN bits");
	round_trip(tcp, SOL_SOCKET, SO_PRIORITY, 3, 3, "SO_PRIORITY");
	round_trip(tcp, IPPROTO_IP, IP_RECVERR, 1, 1, "IP_RECVERR");
	round_trip(tcp, IPPROTO_IP, IP_PKTINFO, 1, 1, "IP_PKTINFO on TCP");
	CHECK(get_int(tcp, IPPROTO_TCP, TCP_QUICKACK) == 1, "TCP_QUICKACK default");
	round_trip(tcp, IPPROTO_TCP, TCP_QUICKACK, 0, 0, "TCP_QUICKACK off");
	round_trip(tcp, IPPROTO_TCP, TCP_QUICKACK, 1, 1, "TCP_QUICKACK on");

	/* SO_BINDTODEVICE: an interface of the stack, by name. */
	CHECK(get_name(tcp, SOL_SOCKET, SO_BINDTODEVICE, name, sizeof name) == 0,
	      "SO_BINDTODEVICE unbound reads nothing");
	FAILS_WITH(setsockopt(tcp, SOL_SOCKET, SO_BINDTODEVICE, "nosuch0", 7),
		   ENODEV, "SO_BINDTODEVICE to an interface the stack lacks");
	CHECK(setsockopt(tcp, SOL_SOCKET, SO_BINDTODEVICE, "vde0", 4) == 0,
	      "SO_BINDTODEVICE vde0");
	CHECK(get_name(tcp, SOL_SOCKET, SO_BINDTODEVICE, name, sizeof name) == 5 &&
		      strcmp(name, "vde0") == 0,
	      "SO_BINDTODEVICE reads back vde0");
	socklen_t short_len = 2;
	FAILS_WITH(getsockopt(tcp, SOL_SOCKET, SO_BINDTODEVICE, name, &short_len),
		   EINVAL, "SO_BINDTODEVICE into a short buffer");
	CHECK(setsockopt(tcp, SOL_SOCKET, SO_BINDTODEVICE, "", 0) == 0 &&
		      get_name(tcp, SOL_SOCKET, SO_BINDTODEVICE, name,
			       sizeof name) == 0,
	      "SO_BINDTODEVICE \"\" unbinds");

	/* TCP_CONGESTION: the controllers an unprivileged program may pick. */
	CHECK(setsockopt(tcp, IPPROTO_TCP, TCP_CONGESTION, "reno", 4) == 0,
	      "TCP_CONGESTION reno");
	CHECK(get_name(tcp, IPPROTO_TCP, TCP_CONGESTION, name, 16) == 16 &&
		      strcmp(name, "reno") == 0,
	      "TCP_CONGESTION reads back reno");
	CHECK(setsockopt(tcp, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5) == 0,
	      "TCP_CONGESTION cubic");
	CHECK(get_name(tcp, IPPROTO_TCP, TCP_CONGESTION, name, 16) == 16 &&
		      strcmp(name, "cubic") == 0,
	      "TCP_CONGESTION reads back cubic");
	FAILS_WITH(setsockopt(tcp, IPPROTO_TCP, TCP_CONGESTION, "nosuch", 6),
		   ENOENT, "TCP_CONGESTION of an unknown controller");

	/* TCP_INFO of a socket with no connection yet. */
	struct tcp_info info;
	socklen_t len = sizeof info;
	CHECK(getsockopt(tcp, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
		      len == sizeof info,
	      "TCP_INFO before connecting");
	CHECK(info.tcpi_state == TCP_CLOSE && info.tcpi_snd_cwnd == 10 &&
		      info.tcpi_rto == 1000000,
	      "TCP_INFO before connecting: CLOSE, Linux's initial window and RTO");
	v = 1;
	FAILS_WITH(setsockopt(tcp, IPPROTO_TCP, TCP_INFO, &v, sizeof v),
		   ENOPROTOOPT, "TCP_INFO cannot be set");
}

/* TCP_INFO of a connection that carried bytes, and of a listener. */
static void tcp_info(int tcp, int listener)
{
	struct tcp_info info;
	socklen_t len = sizeof info;
	CHECK(getsockopt(tcp, IPPROTO_TCP, TCP_INFO, &info, &len) == 0,
	      "TCP_INFO");
	if (info.tcpi_state != TCP_ESTABLISHED || info.tcpi_snd_mss == 0 ||
	    info.tcpi_snd_mss > 1000 || info.tcpi_rtt == 0 ||
	    info.tcpi_snd_cwnd == 0 || info.tcpi_rto == 0 || info.tcpi_pmtu != 1500) {
		fprintf(stderr,
			"options.c: TCP_INFO: state %u snd_mss %u rtt %u cwnd %u "
			"rto %u pmtu %u\n",
			info.tcpi_state, info.tcpi_snd_mss, info.tcpi_rtt,
			info.tcpi_snd_cwnd, info.tcpi_rto, info.tcpi_pmtu);
		exit(1);
	}
	len = sizeof info;
	CHECK(getsockopt(listener, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
		      info.tcpi_state == TCP_LISTEN,
	      "TCP_INFO of a listener");
}

/* IPV6_TCLASS (ssh and sshd set it): -1 is the default, 0; a stream keeps
 * the ECN bits it had, a datagram socket takes them; IPv6 sockets only. */
static void traffic_class(struct vdestack *stack)
{
	int udp6 = vde_msocket(stack, AF_INET6, SOCK_DGRAM, 0);
	int tcp6 = vde_msocket(stack, AF_INET6, SOCK_STREAM, 0);
	int tcp4 = vde_msocket(stack, AF_INET, SOCK_STREAM, 0);
	int v = 256;

	CHECK(udp6 >= 0 && tcp6 >= 0 && tcp4 >= 0, "vde_msocket (IPV6_TCLASS)");
	CHECK(get_int(tcp6, IPPROTO_IPV6, IPV6_TCLASS) == 0,
	      "IPV6_TCLASS default");
	round_trip(udp6, IPPROTO_IPV6, IPV6_TCLASS, 0xff, 0xff,
		   "IPV6_TCLASS on UDP keeps the ECN bits");
	round_trip(udp6, IPPROTO_IPV6, IPV6_TCLASS, -1, 0,
		   "IPV6_TCLASS -1 restores 0");
	FAILS_WITH(setsockopt(udp6, IPPROTO_IPV6, IPV6_TCLASS, &v, sizeof v),
		   EINVAL, "IPV6_TCLASS 256");
	round_trip(tcp6, IPPROTO_IPV6, IPV6_TCLASS, 0x10, 0x10, "IPV6_TCLASS");
	round_trip(tcp6, IPPROTO_IPV6, IPV6_TCLASS, 0xff, 0xfc,
		   "IPV6_TCLASS of a stream keeps its ECN bits");
	v = 0x10;
	FAILS_WITH(setsockopt(tcp4, IPPROTO_IPV6, IPV6_TCLASS, &v, sizeof v),
		   ENOPROTOOPT, "IPV6_TCLASS on AF_INET");
	close(udp6);
	close(tcp6);
	close(tcp4);
}

/* The path-MTU options QUIC, DNS and VPN programs set on UDP sockets (issue
 * 14): IP_MTU_DISCOVER, IPV6_MTU_DISCOVER, IPV6_DONTFRAG, IPV6_MTU, IP_MTU;
 * a datagram beyond the link's MTU (1500) with DO or DONTFRAG is EMSGSIZE. */
static void path_mtu(struct vdestack *stack)
{
	int udp4 = vde_msocket(stack, AF_INET, SOCK_DGRAM, 0);
	int udp6 = vde_msocket(stack, AF_INET6, SOCK_DGRAM, 0);
	char big[1473];
	unsigned char one = 1;
	int v;

	CHECK(udp4 >= 0 && udp6 >= 0, "vde_msocket (path MTU)");
	memset(big, 7, sizeof big);
	CHECK(get_int(udp4, IPPROTO_IP, IP_MTU_DISCOVER) == IP_PMTUDISC_WANT,
	      "IP_MTU_DISCOVER default");
	round_trip(udp4, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO,
		   IP_PMTUDISC_DO, "IP_MTU_DISCOVER");
	v = IP_PMTUDISC_OMIT + 1;
	FAILS_WITH(setsockopt(udp4, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v),
		   EINVAL, "IP_MTU_DISCOVER beyond OMIT");
	socklen_t len = sizeof v;
	FAILS_WITH(getsockopt(udp4, IPPROTO_IP, IP_MTU, &v, &len), ENOTCONN,
		   "IP_MTU unconnected");
	/* A host nobody is: no ICMP error comes back to race the checks. */
	struct sockaddr_in to = inet("10.0.0.99", 9);
	FAILS_WITH(sendto(udp4, big, 1473, 0, SA(to), sizeof to), EMSGSIZE,
		   "IP_PMTUDISC_DO beyond the MTU");
	CHECK(sendto(udp4, big, 1472, 0, SA(to), sizeof to) == 1472,
	      "IP_PMTUDISC_DO within the MTU");
	CHECK(connect(udp4, SA(to), sizeof to) == 0, "connect (IP_MTU)");
	CHECK(get_int(udp4, IPPROTO_IP, IP_MTU) == 1500, "IP_MTU connected");
	FAILS_WITH(send(udp4, big, 1473, 0), EMSGSIZE,
		   "IP_PMTUDISC_DO beyond the MTU, connected");

	CHECK(get_int(udp6, IPPROTO_IPV6, IPV6_MTU_DISCOVER) == IPV6_PMTUDISC_WANT,
	      "IPV6_MTU_DISCOVER default");
	round_trip(udp6, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE,
		   IPV6_PMTUDISC_PROBE, "IPV6_MTU_DISCOVER");
	round_trip(udp6, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_WANT,
		   IPV6_PMTUDISC_WANT, "IPV6_MTU_DISCOVER back to WANT");
	round_trip(udp6, IPPROTO_IPV6, IPV6_DONTFRAG, 1, 1, "IPV6_DONTFRAG");
	/* Set, it is the size of the fragments; read, the path's MTU (none
	 * without a peer). */
	step = "IPV6_MTU";
	set_int(udp6, IPPROTO_IPV6, IPV6_MTU, 1280);
	FAILS_WITH(getsockopt(udp6, IPPROTO_IPV6, IPV6_MTU, &v, &len), ENOTCONN,
		   "IPV6_MTU unconnected");
	v = 1279;
	FAILS_WITH(setsockopt(udp6, IPPROTO_IPV6, IPV6_MTU, &v, sizeof v),
		   EINVAL, "IPV6_MTU below 1280");
	FAILS_WITH(setsockopt(udp6, IPPROTO_IPV6, IPV6_MTU, &one, sizeof one),
		   EINVAL, "IPV6_MTU with a short optlen");
	/* Linux's own readings of a short value: a byte at the IPv4 level,
	 * and IPV6_DONTFRAG takes it as 0. */
	unsigned char probe = IP_PMTUDISC_PROBE;
	CHECK(setsockopt(udp6, IPPROTO_IP, IP_MTU_DISCOVER, &probe,
			 sizeof probe) == 0 &&
		      get_int(udp6, IPPROTO_IP, IP_MTU_DISCOVER) ==
			      IP_PMTUDISC_PROBE,
	      "IP_MTU_DISCOVER of one byte");
	CHECK(setsockopt(udp6, IPPROTO_IP, IP_MTU_DISCOVER, &probe, 0) == 0 &&
		      get_int(udp6, IPPROTO_IP, IP_MTU_DISCOVER) ==
			      IP_PMTUDISC_DONT,
	      "IP_MTU_DISCOVER of no byte is 0");
	CHECK(setsockopt(udp6, IPPROTO_IPV6, IPV6_DONTFRAG, &one, sizeof one) ==
			      0 &&
		      get_int(udp6, IPPROTO_IPV6, IPV6_DONTFRAG) == 0,
	      "IPV6_DONTFRAG of one byte is 0");
	FAILS_WITH(getsockopt(udp4, IPPROTO_IPV6, IPV6_DONTFRAG, &v, &len),
		   EOPNOTSUPP, "IPV6_DONTFRAG on AF_INET");
	close(udp4);
	close(udp6);
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
	v = 50;
	FAILS_WITH(setsockopt(tcp, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof v), EINVAL,
		   "TCP_MAXSEG below 88");
	round_trip(tcp, IPPROTO_TCP, TCP_MAXSEG, 1000, 1000,
		   "TCP_MAXSEG before connecting: the value set");
	linux_options(tcp);
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
	/* Connected: the MSS the link gives, capped by the value set (Linux
	 * takes 12 more bytes off for TCP timestamps, which smoltcp does not
	 * send). */
	v = get_int(tcp, IPPROTO_TCP, TCP_MAXSEG);
	CHECK(kernel ? v <= 1000 : v == 1000, "TCP_MAXSEG when connected");
	round_trip(tcp, IPPROTO_IP, IP_TTL, 99, 99, "IP_TTL when connected");
	int conn = accept(lfd, NULL, NULL);
	CHECK(conn >= 0, "accept");
	exchange(tcp, conn);
	tcp_info(tcp, lfd);
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
	round_trip(udp, IPPROTO_IP, IP_TOS, 0xff, 0xff,
		   "IP_TOS on UDP keeps the ECN bits");
	round_trip(udp, IPPROTO_IP, IP_PKTINFO, 1, 1, "IP_PKTINFO");
	round_trip(udp, IPPROTO_IP, IP_RECVERR, 1, 1, "IP_RECVERR");
	struct tcp_info info;
	len = sizeof info;
	FAILS_WITH(getsockopt(udp, IPPROTO_TCP, TCP_INFO, &info, &len),
		   EOPNOTSUPP, "TCP_INFO on IPv4 UDP (Linux's IPv4 layer)");
	close(udp);

	/* IPv6. */
	int udp6 = vde_msocket(b, AF_INET6, SOCK_DGRAM, 0);
	CHECK(udp6 >= 0, "vde_msocket udp6");
	CHECK(get_int(udp6, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "V6ONLY default");
	round_trip(udp6, IPPROTO_IPV6, IPV6_V6ONLY, 1, 1, "IPV6_V6ONLY");
	round_trip(udp6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 5, 5,
		   "IPV6_UNICAST_HOPS");
	traffic_class(b);
	path_mtu(b);
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
