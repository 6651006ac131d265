/*
 * A program that closes every descriptor it does not know of (ssh calls
 * closefrom(3) first thing) leaves the stacks working (issue 12, item 9): the
 * descriptors the library needs (its threads', its links', its ends of the
 * sockets' pairs) stay open through closefrom and close_range, the program's
 * own are closed, and the numbers it reuses are its own.
 *
 * usage: closefrom VDENET
 * Runs on either backend (VDESTACK_BACKEND). Exits 0 on success; otherwise
 * prints the failing call with errno, exits 1.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/wait.h>

#define TESTLIB_PID_IN_FAILURES
#include "testlib.h"

#define REUSED 8

static void closed(int fd, const char *what)
{
	FAILS_WITH(fcntl(fd, F_GETFD), EBADF, what);
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	int before, reused[REUSED], listener, client, conn, highest, status, i;
	pid_t child;

	need_vdenet(argc, argv);
	hang_guard("closefrom", 40);
	before = open("/dev/null", O_RDONLY);
	CHECK(before >= 3, "open before the stacks");
	two_stacks(argv[1], &a, &b);

	/* ssh's way, with the stacks made first (a preloaded library's). */
	closefrom(3);
	closed(before, "closefrom closed the program's descriptor");
	for (i = 0; i < REUSED; i++) {
		reused[i] = open("/dev/null", O_RDONLY);
		CHECK(reused[i] >= 3, "open after closefrom");
	}
	CHECK(vde_stackcmd(a, "/bin/ip link set lo up") == 0,
	      "vde_stackcmd after closefrom");
	listener = stack_listener(a, 80, 4);
	client = stack_connect(b, "10.0.0.1", 80);
	conn = accept(listener, NULL, NULL);
	CHECK(conn >= 0, "accept after closefrom");
	exchange(client, conn);

	/* With connections open: everything above the program's own goes, except
	 * the library's (its ends of these connections among them). */
	highest = listener > client ? listener : client;
	highest = conn > highest ? conn : highest;
	CHECK(close_range(highest + 1, ~0U, 0) == 0, "close_range above");
	CHECK(close_range(reused[0], reused[REUSED - 1], 0) == 0,
	      "close_range of the program's reused descriptors");
	for (i = 0; i < REUSED; i++)
		closed(reused[i], "close_range closed the program's descriptor");
	exchange(client, conn);
	CHECK(close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0,
	      "close_range CLOSE_RANGE_CLOEXEC");
	CHECK(fcntl(conn, F_GETFD) == FD_CLOEXEC, "marked close-on-exec");
	exchange(client, conn);

	/* A forked child closes everything (sshd's child does): the parent's
	 * stacks are not the child's. */
	fflush(NULL);
	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		alarm(10);
		closefrom(3);
		closed(conn, "the child's closefrom closes stack sockets too");
		exit(0);
	}
	CHECK(waitpid(child, &status, 0) == child, "waitpid");
	errno = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child succeeded");
	exchange(client, conn);

	close(client);
	close(conn);
	close(listener);
	vde_delstack(a);
	vde_delstack(b);
	printf("closefrom: ok\n");
	return 0;
}
