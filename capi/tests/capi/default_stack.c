/*
 * vde_default_stack: while a default stack is set, a plain socket() creates
 * its socket on that stack; after vde_default_stack(NULL) socket() gives
 * kernel sockets again. Two stacks on the VDE network given as argv[1]:
 * A (10.0.0.1) with a listener, B (10.0.0.2) as the default stack.
 *
 * The program runs in a network namespace of its own where only lo is up
 * (tests/capi.rs sees to it). The proof that a socket lives on stack B: it
 * reaches A's listener at 10.0.0.1, which exists only on the private network.
 * The proof that a socket is a kernel socket: it binds 127.0.0.1 of the
 * namespace and talks to another kernel socket, and its connect to 10.0.0.1
 * fails at once with ENETUNREACH (the namespace has no route there).
 *
 * AF_UNIX with a default stack set: the man page says every socket() call
 * uses the stack; the reference creates the socket inside the stack's network
 * namespace, where a pathname AF_UNIX socket is an ordinary unix socket. We
 * expect the same from vdestack: socket(AF_UNIX, ...) gives a real AF_UNIX
 * socket (the stack only provides the Internet families), which binds to a
 * path and connects to a unix socket created without a default stack.
 *
 * Exits 0 on success; otherwise prints the failing call with errno, exits 1.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/un.h>
#include <vdestack.h>

#include "testlib.h"

#define PORT 7

/* Asserts that the non-blocking listener has no pending connection. */
static void nothing_pending(int listener)
{
	int fd;
	errno = 0;
	fd = accept(listener, NULL, NULL);
	CHECK(fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
	      "no connection reached stack A's listener");
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	struct sockaddr_in addr;
	struct sockaddr_un un;
	socklen_t alen;
	struct pollfd p;
	int listener, fd, conn, k1, k2, u1, u2, ul;
	char dir[] = "/tmp/vdestack-default-XXXXXX";

	need_vdenet(argc, argv);
	hang_guard("default_stack.c", 30);

	two_stacks(argv[1], &a, &b);
	listener = vde_msocket(a, AF_INET, SOCK_STREAM, 0);
	CHECK(listener >= 0, "vde_msocket a");
	addr = inet("0.0.0.0", PORT);
	CHECK(bind(listener, (struct sockaddr *)&addr, sizeof addr) == 0, "bind a");
	CHECK(listen(listener, 8) == 0, "listen a");
	CHECK(fcntl(listener, F_SETFL, O_NONBLOCK) == 0, "fcntl O_NONBLOCK listener");

	/* Default stack B: socket() is a socket of stack B. */
	vde_default_stack(b);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "socket() with default stack b");
	addr = inet("10.0.0.1", PORT);
	CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0,
	      "connect to 10.0.0.1 (only reachable from the private network)");
	alen = sizeof addr;
	CHECK(getsockname(fd, (struct sockaddr *)&addr, &alen) == 0 &&
		      addr.sin_addr.s_addr == inet_addr("10.0.0.2"),
	      "getsockname is 10.0.0.2 of stack b");
	p.fd = listener;
	p.events = POLLIN;
	CHECK(poll(&p, 1, 10000) == 1, "poll listener for the connection");
	conn = accept(listener, NULL, NULL);
	CHECK(conn >= 0, "accept on stack a");
	exchange(fd, conn);
	CHECK(close(conn) == 0 && close(fd) == 0, "close");

	/* AF_UNIX with a default stack set: an ordinary unix socket (see above). */
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	snprintf(un.sun_path, sizeof un.sun_path, "%s/sock", dir);
	ul = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(ul >= 0, "socket(AF_UNIX) with a default stack");
	CHECK(bind(ul, (struct sockaddr *)&un, sizeof un) == 0, "bind AF_UNIX");
	CHECK(listen(ul, 1) == 0, "listen AF_UNIX");
	u1 = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(u1 >= 0, "socket(AF_UNIX) with a default stack");
	vde_default_stack(NULL);
	CHECK(connect(u1, (struct sockaddr *)&un, sizeof un) == 0, "connect AF_UNIX");
	u2 = accept(ul, NULL, NULL);
	CHECK(u2 >= 0, "accept AF_UNIX");
	exchange(u1, u2);
	/* And a unix socket made without a default stack reaches it too. */
	k1 = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(k1 >= 0, "socket(AF_UNIX) without a default stack");
	CHECK(connect(k1, (struct sockaddr *)&un, sizeof un) == 0,
	      "connect AF_UNIX without a default stack");
	k2 = accept(ul, NULL, NULL);
	CHECK(k2 >= 0, "accept AF_UNIX (2)");
	exchange(k1, k2);
	close(k1);
	close(k2);
	close(u1);
	close(u2);
	close(ul);
	unlink(un.sun_path);
	rmdir(dir);

	/* Default stack unset: socket() is a kernel socket. */
	k1 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(k1 >= 0, "socket() after vde_default_stack(NULL)");
	addr = inet("127.0.0.1", 0);
	CHECK(bind(k1, (struct sockaddr *)&addr, sizeof addr) == 0,
	      "bind 127.0.0.1:0 of the kernel");
	CHECK(listen(k1, 1) == 0, "listen on the kernel's lo");
	alen = sizeof addr;
	CHECK(getsockname(k1, (struct sockaddr *)&addr, &alen) == 0 &&
		      alen == sizeof addr &&
		      addr.sin_addr.s_addr == inet_addr("127.0.0.1") &&
		      addr.sin_port != 0,
	      "getsockname of a kernel socket");
	k2 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(k2 >= 0, "socket() (2)");
	CHECK(connect(k2, (struct sockaddr *)&addr, sizeof addr) == 0,
	      "connect to the kernel's 127.0.0.1");
	conn = accept(k1, NULL, NULL);
	CHECK(conn >= 0, "accept on the kernel's lo");
	exchange(k2, conn);
	close(conn);
	close(k2);
	close(k1);

	/* A kernel socket's connect to 10.0.0.1 does not reach stack A: the
	 * namespace has no route there. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "socket() (3)");
	addr = inet("10.0.0.1", PORT);
	FAILS_WITH(connect(fd, (struct sockaddr *)&addr, sizeof addr), ENETUNREACH,
		   "a kernel socket's connect to 10.0.0.1");
	close(fd);
	nothing_pending(listener);

	CHECK(close(listener) == 0, "close listener");
	vde_delstack(a);
	vde_delstack(b);
	printf("default_stack: ok\n");
	return 0;
}
