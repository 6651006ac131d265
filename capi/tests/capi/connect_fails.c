/*
 * A connect that fails at once fails as Linux makes it fail (issue 12, item 3):
 * inside connect(2) itself, blocking or not, where Linux decides there (no
 * route; 127.0.0.1 while lo is down); otherwise the descriptor of a
 * non-blocking connect turns writable with POLLERR and SO_ERROR tells why
 * (a refused port on lo), and a blocking connect to a port nobody listens on
 * is refused at once, never after the 127 s of SYN retries.
 *
 * usage: connect_fails VDENET
 * Runs on either backend (VDESTACK_BACKEND). Exits 0 on success; otherwise
 * prints the failing call with errno, exits 1.
 */
#include <fcntl.h>
#include <poll.h>

#include "testlib.h"

#define SA(a) ((struct sockaddr *)&(a))

static struct vdestack *stack;

static int tcp_socket(int flags)
{
	int fd = vde_msocket(stack, AF_INET, SOCK_STREAM | flags, 0);
	CHECK(fd >= 0, "vde_msocket");
	return fd;
}

/* A non-blocking connect to ip:port fails inside connect(2) with `err`. */
static void fails_at_once(const char *ip, int port, int err, const char *what)
{
	struct sockaddr_in to = inet(ip, port);
	int fd = tcp_socket(SOCK_NONBLOCK);
	FAILS_WITH(connect(fd, SA(to), sizeof to), err, what);
	/* Still a fresh socket, as after a failed connect(2) on Linux. */
	FAILS_WITH(getpeername(fd, SA(to), &(socklen_t){ sizeof to }), ENOTCONN,
		   "getpeername after a connect that failed at once");
	close(fd);
}

/* Waits (bounded) for a non-blocking connect's outcome, until poll reports
 * every flag of `want`; returns SO_ERROR. A failed connect closes the pump's
 * end of the socket pair, and the kernel wakes a waiting poll with POLLERR and
 * POLLHUP before it frees the filler that kept the end from being writable, so
 * POLLOUT may come a moment later (under load, often): the first wake must
 * carry POLLERR or POLLOUT, and the end must turn writable. */
static int outcome(int fd, short want, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	short seen = 0;
	int err = -1;
	socklen_t len = sizeof err;
	step = what;
	for (int i = 0; i < 100 && (seen & want) != want; i++) {
		CHECK(poll(&p, 1, 10000) == 1, "poll: the descriptor turns writable");
		CHECK(seen != 0 || (p.revents & (POLLOUT | POLLERR)),
		      "poll: the first wake is writable or an error");
		seen |= p.revents;
	}
	if ((seen & want) != want) {
		fprintf(stderr, "connect_fails.c: %s: revents %#x, expected %#x\n",
			what, (unsigned)seen, (unsigned)want);
		exit(1);
	}
	CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0, "SO_ERROR");
	return err;
}

int main(int argc, char *argv[])
{
	struct sockaddr_in to;
	const char *backend = getenv("VDESTACK_BACKEND");
	int kernel = backend && strcmp(backend, "kernel") == 0;
	int fd;

	need_vdenet(argc, argv);
	hang_guard("connect_fails", 40);
	stack = vde_addstack(argv[1], NULL);
	CHECK(stack != NULL, "vde_addstack");

	/* lo starts down: 127.0.0.1 has no route. */
	fails_at_once("127.0.0.1", 9, ENETUNREACH, "non-blocking connect, lo down");
	CHECK(vde_stackcmd(stack, "/bin/ip link set lo up; /bin/ip link set vde0 up;"
				  "/bin/ip addr add 10.0.0.1/24 dev vde0") == 0,
	      "vde_stackcmd");
	fails_at_once("10.1.0.1", 9, ENETUNREACH, "non-blocking connect, no route");

	/* Refused on lo: blocking, at once (the hang guard bounds "at once")... */
	to = inet("127.0.0.1", 9);
	fd = tcp_socket(0);
	FAILS_WITH(connect(fd, SA(to), sizeof to), ECONNREFUSED,
		   "blocking connect to a port nobody listens on");
	/* ...and the socket may try again, as on Linux. */
	FAILS_WITH(connect(fd, SA(to), sizeof to), ECONNREFUSED,
		   "a second connect on the same socket");
	close(fd);
	to = inet("10.0.0.1", 9);
	fd = tcp_socket(0);
	FAILS_WITH(connect(fd, SA(to), sizeof to), ECONNREFUSED,
		   "blocking connect to the stack's own address");
	close(fd);

	/* Non-blocking: writable with POLLERR, SO_ERROR says why, once. */
	to = inet("127.0.0.1", 9);
	fd = tcp_socket(SOCK_NONBLOCK);
	FAILS_WITH(connect(fd, SA(to), sizeof to), EINPROGRESS,
		   "non-blocking connect to a refused port");
	CHECK(outcome(fd, POLLOUT | POLLERR, "refused") == ECONNREFUSED,
	      "SO_ERROR is ECONNREFUSED");
	CHECK(outcome(fd, POLLOUT, "refused, read again") == 0,
	      "SO_ERROR is cleared by reading it");
	close(fd);

	if (!kernel) {
		/* The stack refuses the connect after EINPROGRESS (the socket's
		 * address went away): the descriptor still turns writable. */
		struct sockaddr_in local = inet("10.0.0.1", 0);
		fd = tcp_socket(SOCK_NONBLOCK);
		CHECK(bind(fd, SA(local), sizeof local) == 0, "bind 10.0.0.1");
		CHECK(vde_stackcmd(stack, "/bin/ip addr del 10.0.0.1/24 dev vde0") == 0,
		      "ip addr del");
		to = inet("127.0.0.1", 9);
		FAILS_WITH(connect(fd, SA(to), sizeof to), EINPROGRESS,
			   "non-blocking connect from an address that went away");
		CHECK(outcome(fd, POLLOUT | POLLERR, "address gone") == EADDRNOTAVAIL,
		      "SO_ERROR is EADDRNOTAVAIL");
		close(fd);
	}

	vde_delstack(stack);
	printf("connect_fails: ok\n");
	return 0;
}
