/*
 * A forking server's child (issue 12, item 2: socat fork, sshd -r) calls
 * connect, setsockopt, listen or a first sendto on sockets it inherited or
 * makes: the stack's thread lives in the parent, and such calls waited for it
 * for ever (children even outlived SIGTERM). Each must fail at once instead,
 * as the reference fails them: EBADF on an inherited socket, ENETDOWN for a
 * new socket on the parent's stack; reading and writing an inherited
 * connection still works (the parent's thread serves it).
 *
 * usage: forked_child VDENET
 * The userspace backend's behaviour (on the kernel backend these are kernel
 * sockets, which work in the child). Exits 0 on success; otherwise prints the
 * failing call with errno, exits 1.
 */
#include <sys/wait.h>

#define TESTLIB_PID_IN_FAILURES
#include "testlib.h"

#define SA(a) ((struct sockaddr *)&(a))

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	struct sockaddr_in to = inet("10.0.0.1", 80), any = inet("0.0.0.0", 0),
			   name;
	int listener, client, conn, fresh, udp, bound_udp, one = 1, status;
	char x = 'x';
	pid_t child;

	need_vdenet(argc, argv);
	hang_guard("forked_child", 30);
	two_stacks(argv[1], &a, &b);
	listener = stack_listener(a, 80, 4);
	client = stack_connect(b, "10.0.0.1", 80);
	conn = accept(listener, NULL, NULL);
	CHECK(conn >= 0, "accept");
	fresh = vde_msocket(b, AF_INET, SOCK_STREAM, 0);
	udp = vde_msocket(a, AF_INET, SOCK_DGRAM, 0);
	bound_udp = vde_msocket(a, AF_INET, SOCK_DGRAM, 0);
	CHECK(fresh >= 0 && udp >= 0 && bound_udp >= 0, "vde_msocket");
	CHECK(bind(bound_udp, SA(any), sizeof any) == 0, "bind udp");

	fflush(NULL);
	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		/* A fresh alarm: a call that waits for the parent's thread hangs. */
		alarm(10);
		FAILS_WITH(setsockopt(conn, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one),
			   EBADF, "setsockopt on an accepted socket");
		FAILS_WITH(getpeername(conn, SA(name), &(socklen_t){ sizeof name }),
			   EBADF, "getpeername on an accepted socket");
		FAILS_WITH(connect(fresh, SA(to), sizeof to), EBADF,
			   "connect of an inherited fresh socket");
		FAILS_WITH(listen(fresh, 4), EBADF, "listen on an inherited socket");
		FAILS_WITH(bind(fresh, SA(any), sizeof any), EBADF,
			   "bind of an inherited socket");
		FAILS_WITH(accept(listener, NULL, NULL), EBADF,
			   "accept on an inherited listener");
		FAILS_WITH((int)sendto(udp, "x", 1, 0, SA(to), sizeof to), EBADF,
			   "first sendto of an inherited UDP socket");
		FAILS_WITH((int)sendto(bound_udp, "x", 1, 0, SA(to), sizeof to), EBADF,
			   "sendto of an inherited bound UDP socket");
		FAILS_WITH(vde_msocket(a, AF_INET, SOCK_STREAM, 0), ENETDOWN,
			   "a new socket on the parent's stack");
		CHECK(vde_stackcmd(a, "/bin/ip link set lo up") != 0,
		      "vde_stackcmd on the parent's stack fails");
		/* The inherited connection still carries bytes. */
		CHECK(write(conn, &x, 1) == 1, "write on the inherited connection");
		exit(0);
	}
	CHECK(read(client, &x, 1) == 1 && x == 'x', "the child's byte arrives");
	CHECK(waitpid(child, &status, 0) == child, "waitpid");
	errno = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child succeeded");

	/* The parent's sockets are untouched. */
	CHECK(connect(fresh, SA(to), sizeof to) == 0, "the parent connects");
	close(fresh);
	exchange(client, conn);
	close(client);
	close(conn);
	close(udp);
	close(bound_udp);
	close(listener);
	vde_delstack(a);
	vde_delstack(b);
	printf("forked_child: ok\n");
	return 0;
}
