/*
 * A connected stack socket used by a child after fork(): the parent sets up
 * two stacks on the VDE network given as argv[1] and a TCP connection between
 * them, then forks. The child reads what the parent sent before the fork,
 * writes a message on the inherited descriptor and exits; the parent reads
 * that message at the other end, reaps the child, and goes on using the same
 * connection itself.
 *
 * Exits 0 on success; otherwise prints the failing call with errno, exits 1.
 */
#include <sys/wait.h>
#include <vdestack.h>

#define TESTLIB_PID_IN_FAILURES
#include "testlib.h"

#define PORT 7

static void expect(int fd, const char *msg)
{
	char buf[64];
	size_t len = strlen(msg);
	CHECK(len <= sizeof buf, "message length");
	CHECK(read_full(fd, buf, len) == 0, msg);
	CHECK(memcmp(buf, msg, len) == 0, msg);
}

static void say(int fd, const char *msg)
{
	size_t len = strlen(msg);
	CHECK(write(fd, msg, len) == (ssize_t)len, msg);
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	int listener, client, conn, status;
	pid_t child;

	need_vdenet(argc, argv);
	hang_guard("fork.c", 30);

	two_stacks(argv[1], &a, &b);
	listener = stack_listener(a, PORT, 1);
	client = stack_connect(b, "10.0.0.1", PORT);
	conn = accept(listener, NULL, NULL);
	CHECK(conn >= 0, "accept");
	say(conn, "before the fork");

	fflush(NULL);
	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		expect(client, "before the fork");
		say(client, "from the child");
		exit(0);
	}

	expect(conn, "from the child");
	CHECK(waitpid(child, &status, 0) == child, "waitpid");
	errno = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child succeeded");

	/* The connection outlives the child's copy of the descriptor. */
	say(client, "parent again");
	expect(conn, "parent again");
	say(conn, "and back");
	expect(client, "and back");

	CHECK(close(client) == 0, "close client");
	CHECK(read(conn, &status, 1) == 0, "EOF after close");
	CHECK(close(conn) == 0, "close conn");
	CHECK(close(listener) == 0, "close listener");
	vde_delstack(a);
	vde_delstack(b);
	printf("fork: ok\n");
	return 0;
}
