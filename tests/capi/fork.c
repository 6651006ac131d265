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
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vdestack.h>

#define PORT 7

static const char *volatile step = "start";

static void fail(int line, const char *what)
{
	int e = errno;
	fprintf(stderr, "fork.c:%d (pid %d): %s failed: errno %d (%s)\n", line,
		(int)getpid(), what, e, strerror(e));
	exit(1);
}

#define CHECK(cond, what)                                                      \
	do {                                                                   \
		step = (what);                                                 \
		if (!(cond))                                                   \
			fail(__LINE__, (what));                                \
	} while (0)

static void on_alarm(int sig)
{
	static const char msg[] = "fork.c: timed out in: ";
	(void)sig;
	if (write(2, msg, sizeof msg - 1) < 0 || write(2, step, strlen(step)) < 0 ||
	    write(2, "\n", 1) < 0)
		_exit(1);
	_exit(1);
}

static int read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

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
	struct sockaddr_in addr;
	int listener, client, conn, status;
	pid_t child;

	if (argc != 2) {
		fprintf(stderr, "usage: %s VDENET\n", argv[0]);
		return 2;
	}
	signal(SIGALRM, on_alarm);
	alarm(30);

	a = vde_addstack(argv[1], NULL);
	CHECK(a != NULL, "vde_addstack a");
	b = vde_addstack(argv[1], NULL);
	CHECK(b != NULL, "vde_addstack b");
	CHECK(vde_stackcmd(a, "/bin/ip link set vde0 up;"
			      "/bin/ip addr add 10.0.0.1/24 dev vde0") == 0,
	      "vde_stackcmd a");
	CHECK(vde_stackcmd(b, "/bin/ip link set vde0 up;"
			      "/bin/ip addr add 10.0.0.2/24 dev vde0") == 0,
	      "vde_stackcmd b");

	listener = vde_msocket(a, AF_INET, SOCK_STREAM, 0);
	CHECK(listener >= 0, "vde_msocket a");
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons(PORT);
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	CHECK(bind(listener, (struct sockaddr *)&addr, sizeof addr) == 0, "bind");
	CHECK(listen(listener, 1) == 0, "listen");
	client = vde_msocket(b, AF_INET, SOCK_STREAM, 0);
	CHECK(client >= 0, "vde_msocket b");
	addr.sin_addr.s_addr = inet_addr("10.0.0.1");
	CHECK(connect(client, (struct sockaddr *)&addr, sizeof addr) == 0, "connect");
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
