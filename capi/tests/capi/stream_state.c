/*
 * Calls that move bytes check the socket's state as Linux does (issue 12, item
 * 6): on a TCP socket that is not connected, send fails with EPIPE (and
 * SIGPIPE unless MSG_NOSIGNAL) and recv with ENOTCONN, at once; bytes written
 * before connect never reach the peer; shutdown is the stack's (ENOTCONN,
 * SHUT_WR sends FIN, SHUT_RD ends reads without resetting, a listener stops
 * accepting); a connected UDP socket shut down refuses sends and stops
 * waiting for datagrams. read and readv, the socket pair's own calls, give
 * ENOTCONN at once too (on a socket never connected, and on a listener), and
 * read what arrives once connected.
 *
 * usage: stream_state VDENET
 * Runs on either backend (VDESTACK_BACKEND). Exits 0 on success; otherwise
 * prints the failing call with errno, exits 1.
 */
#include <pthread.h>
#include <sys/uio.h>

#include "testlib.h"

#define SA(a) ((struct sockaddr *)&(a))

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

static struct vdestack *a, *b;

static int tcp(struct vdestack *s)
{
	int fd = vde_msocket(s, AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "vde_msocket");
	return fd;
}

/* Sends `call`, which must fail with EPIPE and raise SIGPIPE `signals` times. */
#define SEND_REFUSED(call, signals, what)                                       \
	do {                                                                   \
		int before_ = sigpipes;                                        \
		FAILS_WITH((int)(call), EPIPE, what);                          \
		CHECK(sigpipes == before_ + (signals), what ": SIGPIPE count"); \
	} while (0)

static void unconnected(void)
{
	struct sockaddr_in to = inet("10.0.0.1", 80), name;
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	char buf[8];
	int fd = tcp(b);

	SEND_REFUSED(send(fd, "x", 1, 0), 1, "send before connect");
	SEND_REFUSED(send(fd, "x", 1, MSG_NOSIGNAL), 0,
		     "send MSG_NOSIGNAL before connect");
	SEND_REFUSED(sendto(fd, "x", 1, 0, SA(to), sizeof to), 1,
		     "sendto before connect");
	SEND_REFUSED(sendmsg(fd, &msg, MSG_NOSIGNAL), 0, "sendmsg before connect");
	/* A blocking socket: these must not wait (the hang guard would fire). */
	FAILS_WITH((int)recv(fd, buf, sizeof buf, 0), ENOTCONN,
		   "recv before connect");
	FAILS_WITH((int)recvfrom(fd, buf, sizeof buf, 0, NULL, NULL), ENOTCONN,
		   "recvfrom before connect");
	iov.iov_base = buf;
	iov.iov_len = sizeof buf;
	FAILS_WITH((int)recvmsg(fd, &msg, 0), ENOTCONN, "recvmsg before connect");
	FAILS_WITH((int)read(fd, buf, sizeof buf), ENOTCONN, "read before connect");
	FAILS_WITH((int)readv(fd, &iov, 1), ENOTCONN, "readv before connect");
	FAILS_WITH(getpeername(fd, SA(name), &(socklen_t){ sizeof name }),
		   ENOTCONN, "getpeername before connect");
	FAILS_WITH(shutdown(fd, SHUT_RD), ENOTCONN, "shutdown(SHUT_RD) unconnected");
	FAILS_WITH(shutdown(fd, SHUT_WR), ENOTCONN, "shutdown(SHUT_WR) unconnected");
	FAILS_WITH(shutdown(fd, SHUT_RDWR), ENOTCONN,
		   "shutdown(SHUT_RDWR) unconnected");
	FAILS_WITH(shutdown(fd, 7), EINVAL, "shutdown(7)");
	close(fd);
}

/* Bytes written before connect never reach the peer (Linux refuses them). */
static void early_bytes(int listener)
{
	struct sockaddr_in to = inet("10.0.0.1", 80);
	char buf[8];
	int fd = tcp(b), conn;

	(void)!write(fd, "early", 5); /* EPIPE on Linux; dropped by the stack */
	CHECK(connect(fd, SA(to), sizeof to) == 0, "connect after an early write");
	conn = accept(listener, NULL, NULL);
	CHECK(conn >= 0, "accept");
	CHECK(write(fd, "late", 4) == 4, "write once connected");
	CHECK(read_full(conn, buf, 4) == 0 && memcmp(buf, "late", 4) == 0,
	      "the peer gets what was written once connected, and only that");
	close(fd);
	close(conn);
}

/* A connection from b to `listener` on a: b's end; a's in *conn. */
static int connected(int listener, int *conn)
{
	struct sockaddr_in to = inet("10.0.0.1", 80);
	int c = tcp(b);

	CHECK(connect(c, SA(to), sizeof to) == 0, "connect");
	*conn = accept(listener, NULL, NULL);
	CHECK(*conn >= 0, "accept");
	return c;
}

static void shutdowns(int listener)
{
	char buf[8];
	int conn, c = connected(listener, &conn);

	/* SHUT_WR: the peer reads the end; the other way still works. */
	CHECK(write(c, "ab", 2) == 2, "write before SHUT_WR");
	CHECK(shutdown(c, SHUT_WR) == 0, "shutdown(SHUT_WR)");
	CHECK(read_full(conn, buf, 2) == 0 && memcmp(buf, "ab", 2) == 0,
	      "what was written before SHUT_WR arrives");
	CHECK(read(conn, buf, sizeof buf) == 0, "then the end of the stream");
	SEND_REFUSED(send(c, "x", 1, 0), 1, "send after SHUT_WR");
	CHECK(write(conn, "cd", 2) == 2, "write toward a half-closed socket");
	CHECK(read_full(c, buf, 2) == 0 && memcmp(buf, "cd", 2) == 0,
	      "a half-closed socket still reads");

	/* SHUT_RD on the other side: reads end at once, nothing is reset. */
	CHECK(shutdown(conn, SHUT_RD) == 0, "shutdown(SHUT_RD)");
	CHECK(recv(conn, buf, sizeof buf, 0) == 0,
	      "a blocking recv after SHUT_RD returns 0 at once");
	CHECK(write(c, "gone", 4) == -1 && errno == EPIPE,
	      "SHUT_WR still refuses writes");
	CHECK(write(conn, "ef", 2) == 2, "writing after SHUT_RD");
	CHECK(read_full(c, buf, 2) == 0 && memcmp(buf, "ef", 2) == 0,
	      "the connection lives on after SHUT_RD");
	close(conn);
	close(c);
}

static void *accept_in_thread(void *listener)
{
	long rc = accept(*(int *)listener, NULL, NULL);
	return (void *)(rc == -1 && errno == EINVAL ? 0L : 1L);
}

/* Once connected, read and readv read (the check before them is gone). */
static void reads_once_connected(int listener)
{
	struct iovec iov;
	char buf[8];
	int conn, fd = connected(listener, &conn);

	CHECK(write_full(conn, "hello", 5) == 0, "write");
	CHECK(read_full(fd, buf, 3) == 0 && memcmp(buf, "hel", 3) == 0,
	      "read once connected");
	iov.iov_base = buf;
	iov.iov_len = 2;
	CHECK(readv(fd, &iov, 1) == 2 && memcmp(buf, "lo", 2) == 0,
	      "readv once connected");
	close(conn);
	CHECK(read(fd, buf, sizeof buf) == 0, "read at the end of the stream");
	close(fd);
}

static void listener_calls(void)
{
	struct sockaddr_in at = inet("10.0.0.1", 81);
	pthread_t waiter;
	void *failed;
	char buf[4];
	int l = tcp(a);

	CHECK(bind(l, SA(at), sizeof at) == 0, "bind");
	CHECK(listen(l, 4) == 0, "listen");
	SEND_REFUSED(send(l, "x", 1, MSG_NOSIGNAL), 0, "send on a listener");
	FAILS_WITH((int)recv(l, buf, sizeof buf, 0), ENOTCONN, "recv on a listener");
	FAILS_WITH((int)read(l, buf, sizeof buf), ENOTCONN, "read on a listener");
	CHECK(shutdown(l, SHUT_WR) == 0, "shutdown(SHUT_WR) of a listener");
	/* SHUT_RD stops listening: an accept waiting, or to come, fails. */
	CHECK(pthread_create(&waiter, NULL, accept_in_thread, &l) == 0,
	      "pthread_create");
	CHECK(shutdown(l, SHUT_RD) == 0, "shutdown(SHUT_RD) of a listener");
	CHECK(pthread_join(waiter, &failed) == 0 && failed == NULL,
	      "accept fails with EINVAL once the listener is shut down");
	FAILS_WITH(accept(l, NULL, NULL), EINVAL, "accept after shutdown");
	close(l);
}

static void datagrams(void)
{
	struct sockaddr_in at = inet("10.0.0.1", 5000), to = inet("10.0.0.2", 5000);
	char buf[8];
	int u = vde_msocket(a, AF_INET, SOCK_DGRAM, 0);

	CHECK(u >= 0, "vde_msocket udp");
	CHECK(bind(u, SA(at), sizeof at) == 0, "bind udp");
	FAILS_WITH(shutdown(u, SHUT_WR), ENOTCONN, "shutdown of unconnected UDP");
	CHECK(connect(u, SA(to), sizeof to) == 0, "connect udp");
	CHECK(shutdown(u, SHUT_WR) == 0, "shutdown(SHUT_WR) of connected UDP");
	SEND_REFUSED(send(u, "x", 1, 0), 0, "UDP send after SHUT_WR (no SIGPIPE)");
	CHECK(shutdown(u, SHUT_RD) == 0, "shutdown(SHUT_RD) of connected UDP");
	CHECK(recv(u, buf, sizeof buf, 0) == 0,
	      "a blocking UDP recv after SHUT_RD returns 0");
	close(u);
}

int main(int argc, char *argv[])
{
	int listener;

	need_vdenet(argc, argv);
	hang_guard("stream_state", 40);
	signal(SIGPIPE, on_sigpipe);
	two_stacks(argv[1], &a, &b);
	listener = stack_listener(a, 80, 8);

	unconnected();
	early_bytes(listener);
	shutdowns(listener);
	reads_once_connected(listener);
	listener_calls();
	datagrams();

	close(listener);
	vde_delstack(a);
	vde_delstack(b);
	printf("stream_state: ok\n");
	return 0;
}
