/*
 * UDP through the C calls: socket/bind/sendto/recvfrom, autobind on the first
 * send, connect with read/write on the descriptor, sendmsg/recvmsg with
 * several parts, connect(AF_UNSPEC), SO_BROADCAST, SO_TYPE, and the errno
 * values Linux gives (EDESTADDRREQ, EACCES, ECONNREFUSED).
 *
 * usage: udp VDENET
 *
 * A switch may drop a datagram: every exchange that must complete retries a
 * bounded number of times, waiting with poll().
 */
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include "testlib.h"

#define SA(a) ((struct sockaddr *)&(a))

/* Waits up to 200 ms for fd to be readable. */
static int readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 200) == 1;
}

/* Sends msg from `from` to `to` until `to` receives a datagram; returns its
 * length, the datagram in buf and its source in src. */
static ssize_t deliver(int from, int to, const struct sockaddr_in *dest,
		       const char *msg, char *buf, size_t len,
		       struct sockaddr_in *src)
{
	for (int i = 0; i < 25; i++) {
		socklen_t slen = sizeof *src;
		CHECK(sendto(from, msg, strlen(msg), 0,
			     (const struct sockaddr *)dest,
			     sizeof *dest) == (ssize_t)strlen(msg),
		      "sendto");
		if (readable(to)) {
			int waiting = -1;
			CHECK(ioctl(to, FIONREAD, &waiting) == 0 &&
				      waiting == (int)strlen(msg),
			      "FIONREAD gives the datagram's length");
			ssize_t n = recvfrom(to, buf, len, 0, SA(*src), &slen);
			CHECK(n >= 0, "recvfrom");
			CHECK(slen == sizeof *src, "recvfrom address length");
			return n;
		}
	}
	fprintf(stderr, "udp.c: no datagram arrived after 25 tries\n");
	exit(1);
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	char buf[256];
	struct sockaddr_in src, local;
	socklen_t len;
	int type = 0;

	need_vdenet(argc, argv);
	hang_guard("udp", 60);
	two_stacks(argv[1], &a, &b);

	int server = vde_msocket(a, AF_INET, SOCK_DGRAM, 0);
	CHECK(server >= 0, "vde_msocket a");
	struct sockaddr_in any7 = inet("0.0.0.0", 7);
	CHECK(bind(server, SA(any7), sizeof any7) == 0, "bind");
	len = sizeof type;
	CHECK(getsockopt(server, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
		      type == SOCK_DGRAM,
	      "SO_TYPE is SOCK_DGRAM");

	int client = vde_msocket(b, AF_INET, SOCK_DGRAM, IPPROTO_UDP);
	CHECK(client >= 0, "vde_msocket b");
	errno = 0;
	CHECK(send(client, "x", 1, 0) == -1 && errno == EDESTADDRREQ,
	      "send unconnected gives EDESTADDRREQ");

	/* The first sendto binds the client to an ephemeral port. */
	struct sockaddr_in to_server = inet("10.0.0.1", 7);
	ssize_t n = deliver(client, server, &to_server, "hello", buf,
			    sizeof buf, &src);
	CHECK(n == 5 && memcmp(buf, "hello", 5) == 0, "datagram intact");
	len = sizeof local;
	CHECK(getsockname(client, SA(local), &len) == 0, "getsockname");
	CHECK(ntohs(local.sin_port) >= 32768, "ephemeral port");
	CHECK(src.sin_addr.s_addr == inet_addr("10.0.0.2") &&
		      src.sin_port == local.sin_port,
	      "recvfrom gives the true source");

	/* Answer with sendmsg in two parts; receive with recvmsg in two parts. */
	struct iovec out[2] = { { "ans", 3 }, { "wer", 3 } };
	struct msghdr m = { .msg_name = &src, .msg_namelen = sizeof src,
			    .msg_iov = out, .msg_iovlen = 2 };
	char p1[2], p2[16];
	struct iovec in[2] = { { p1, sizeof p1 }, { p2, sizeof p2 } };
	struct sockaddr_in from;
	int got = 0;
	for (int i = 0; i < 25 && !got; i++) {
		CHECK(sendmsg(server, &m, 0) == 6, "sendmsg");
		if (readable(client)) {
			struct msghdr r = { .msg_name = &from,
					    .msg_namelen = sizeof from,
					    .msg_iov = in,
					    .msg_iovlen = 2 };
			CHECK(recvmsg(client, &r, 0) == 6, "recvmsg");
			CHECK(memcmp(p1, "an", 2) == 0 &&
				      memcmp(p2, "swer", 4) == 0,
			      "recvmsg scatters the datagram");
			CHECK(from.sin_addr.s_addr == inet_addr("10.0.0.1") &&
				      ntohs(from.sin_port) == 7,
			      "recvmsg gives the source");
			got = 1;
		}
	}
	CHECK(got, "the answer arrived");

	/* Connected: plain write and read on the descriptor. */
	CHECK(connect(client, SA(to_server), sizeof to_server) == 0, "connect");
	len = sizeof from;
	CHECK(getpeername(client, SA(from), &len) == 0 &&
		      ntohs(from.sin_port) == 7,
	      "getpeername");
	got = 0;
	for (int i = 0; i < 25 && !got; i++) {
		CHECK(write(client, "ping", 4) == 4, "write");
		if (readable(server)) {
			len = sizeof from;
			n = recvfrom(server, buf, sizeof buf, 0, SA(from), &len);
			CHECK(n == 4 && memcmp(buf, "ping", 4) == 0, "server got ping");
			CHECK(sendto(server, "pong", 4, 0, SA(from), len) == 4,
			      "sendto pong");
			if (readable(client)) {
				CHECK(read(client, buf, sizeof buf) == 4 &&
					      memcmp(buf, "pong", 4) == 0,
				      "read pong");
				got = 1;
			}
		}
	}
	CHECK(got, "ping-pong over a connected socket");

	/* A closed port: ECONNREFUSED on a connected socket. */
	struct sockaddr_in closed = inet("10.0.0.1", 9);
	CHECK(connect(client, SA(closed), sizeof closed) == 0, "connect closed");
	int refused = 0;
	for (int i = 0; i < 25 && !refused; i++) {
		errno = 0;
		if (send(client, "?", 1, 0) < 0) {
			CHECK(errno == ECONNREFUSED, "send error is ECONNREFUSED");
			refused = 1;
		} else if (readable(client)) {
			errno = 0;
			CHECK(recv(client, buf, sizeof buf, 0) == -1 &&
				      errno == ECONNREFUSED,
			      "recv gives ECONNREFUSED");
			refused = 1;
		}
	}
	CHECK(refused, "ECONNREFUSED reported");

	/* Dissolve the association. */
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	CHECK(connect(client, &unspec, sizeof unspec) == 0, "connect AF_UNSPEC");
	errno = 0;
	len = sizeof from;
	CHECK(getpeername(client, SA(from), &len) == -1 && errno == ENOTCONN,
	      "no peer after AF_UNSPEC");

	/* Broadcast needs SO_BROADCAST. */
	struct sockaddr_in brd = inet("10.0.0.255", 7);
	errno = 0;
	CHECK(sendto(client, "b", 1, 0, SA(brd), sizeof brd) == -1 &&
		      errno == EACCES,
	      "broadcast without SO_BROADCAST gives EACCES");
	int on = 1;
	CHECK(setsockopt(client, SOL_SOCKET, SO_BROADCAST, &on, sizeof on) == 0,
	      "SO_BROADCAST");
	on = 0;
	len = sizeof on;
	CHECK(getsockopt(client, SOL_SOCKET, SO_BROADCAST, &on, &len) == 0 &&
		      on == 1,
	      "SO_BROADCAST reads back");
	n = deliver(client, server, &brd, "brd", buf, sizeof buf, &src);
	CHECK(n == 3 && memcmp(buf, "brd", 3) == 0, "broadcast arrived");

	errno = 0;
	CHECK(listen(server, 1) == -1 && errno == EOPNOTSUPP,
	      "listen on UDP gives EOPNOTSUPP");

	/* A ping socket, as Linux has them: echo requests out, replies in. A new
	 * kernel namespace allows them to nobody; the userspace stack runs only
	 * ip, so this command fails there, harmlessly. */
	(void)vde_stackcmd(b, "/sbin/sysctl -q -w 'net.ipv4.ping_group_range=0 0'");
	int ping = vde_msocket(b, AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	CHECK(ping >= 0, "vde_msocket ping");
	int proto = 0;
	socklen_t plen = sizeof proto;
	CHECK(getsockopt(ping, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) == 0 &&
		      proto == IPPROTO_ICMP,
	      "SO_PROTOCOL is IPPROTO_ICMP");
	unsigned char echo[12] = { 8, 0, 0, 0, 0, 0, 0, 1, 'p', 'i', 'n', 'g' };
	struct sockaddr_in peer = inet("10.0.0.1", 0);
	unsigned char reply[64];
	got = 0;
	for (int i = 0; i < 25 && !got; i++) {
		CHECK(sendto(ping, echo, sizeof echo, 0, SA(peer), sizeof peer) ==
			      (ssize_t)sizeof echo,
		      "sendto echo request");
		if (readable(ping)) {
			len = sizeof from;
			n = recvfrom(ping, reply, sizeof reply, 0, SA(from), &len);
			CHECK(n == (ssize_t)sizeof echo && reply[0] == 0 &&
				      memcmp(reply + 8, "ping", 4) == 0,
			      "echo reply");
			CHECK(from.sin_addr.s_addr == inet_addr("10.0.0.1"),
			      "reply from the pinged stack");
			got = 1;
		}
	}
	CHECK(got, "pinged");
	echo[0] = 13; /* a timestamp request: not for a ping socket */
	errno = 0;
	CHECK(sendto(ping, echo, sizeof echo, 0, SA(peer), sizeof peer) == -1 &&
		      errno == EINVAL,
	      "only echo requests");
	close(ping);
	CHECK(close(client) == 0 && close(server) == 0, "close");
	vde_delstack(a);
	vde_delstack(b);
	return 0;
}
