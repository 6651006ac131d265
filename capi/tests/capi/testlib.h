/*
 * Helpers shared by the C test programs of tests/capi/ (compiled and run by
 * tests/capi.rs), so that each program holds only what it tests: failure
 * reporting (CHECK), the guard against hangs, two stacks on one switch, a
 * listener, a connection and the exchanges over it.
 *
 * Included as "testlib.h", so it is found beside the including program with
 * no -I option. It includes <vdestack.h> as the programs do, so it compiles
 * against whichever vdestack.h the program is built with (ours or Debian's
 * reference header).
 *
 * Before including it a program may define TESTLIB_PID_IN_FAILURES to have
 * the pid in every failure message (for programs that fork).
 *
 * Everything is static; unused helpers are marked so, for -Wall -Wextra
 * -Werror.
 */
#ifndef VDESTACK_TESTLIB_H
#define VDESTACK_TESTLIB_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vdestack.h>

#define TESTLIB_UNUSED __attribute__((unused))

/* What the program is doing: reported when the hang guard fires. */
static const char *volatile step = "start";
/* The program's file name, for the hang guard's message. */
static const char *volatile program = "?";

/* Prints "FILE:LINE: WHAT failed: errno ..." (FILE without its directory)
 * and exits 1. */
static void fail(const char *file, int line, const char *what)
{
	int e = errno;
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
#ifdef TESTLIB_PID_IN_FAILURES
	fprintf(stderr, "%s:%d (pid %d): %s failed: errno %d (%s)\n", base, line,
		(int)getpid(), what, e, strerror(e));
#else
	fprintf(stderr, "%s:%d: %s failed: errno %d (%s)\n", base, line, what, e,
		strerror(e));
#endif
	exit(1);
}

#define CHECK(cond, what)                                                      \
	do {                                                                   \
		step = (what);                                                 \
		if (!(cond))                                                   \
			fail(__FILE__, __LINE__, (what));                      \
	} while (0)

/* A call that must fail with -1 and errno `err`; otherwise prints what it did
 * instead ("FILE:LINE: WHAT: expected ...") and exits 1. */
#define FAILS_WITH(call, err, what)                                            \
	do {                                                                   \
		int rc_;                                                       \
		const char *base_ = strrchr(__FILE__, '/');                    \
		step = (what);                                                 \
		errno = 0;                                                     \
		rc_ = (call);                                                  \
		if (rc_ != -1 || errno != (err)) {                             \
			fprintf(stderr,                                        \
				"%s:%d: %s: expected -1 with errno %d (%s), "  \
				"got %d with errno %d (%s)\n",                 \
				base_ ? base_ + 1 : __FILE__, __LINE__,        \
				(what), (err), strerror(err), rc_, errno,      \
				strerror(errno));                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

static void on_alarm(int sig)
{
	static const char msg[] = ": timed out in: ";
	(void)sig;
	if (write(2, program, strlen(program)) < 0 ||
	    write(2, msg, sizeof msg - 1) < 0 || write(2, step, strlen(step)) < 0 ||
	    write(2, "\n", 1) < 0)
		_exit(1);
	_exit(1);
}

/* After `seconds`, prints "NAME: timed out in: STEP" and exits 1. */
static void hang_guard(const char *name, unsigned seconds)
{
	program = name;
	signal(SIGALRM, on_alarm);
	alarm(seconds);
}

/* The usage "PROGRAM VDENET": anything else exits 2. */
TESTLIB_UNUSED static void need_vdenet(int argc, char *argv[])
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s VDENET\n", argv[0]);
		exit(2);
	}
}

TESTLIB_UNUSED static struct sockaddr_in inet(const char *ip, int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = inet_addr(ip);
	return a;
}

/* Stacks a and b on the VDE network vdenet, not configured. */
TESTLIB_UNUSED static void add_two_stacks(char *vdenet, struct vdestack **a,
			   struct vdestack **b)
{
	*a = vde_addstack(vdenet, NULL);
	CHECK(*a != NULL, "vde_addstack a");
	*b = vde_addstack(vdenet, NULL);
	CHECK(*b != NULL, "vde_addstack b");
}

/* Stacks a (10.0.0.1/24) and b (10.0.0.2/24) on vdenet, vde0 up in both. */
TESTLIB_UNUSED static void two_stacks(char *vdenet, struct vdestack **a,
				      struct vdestack **b)
{
	add_two_stacks(vdenet, a, b);
	CHECK(vde_stackcmd(*a, "/bin/ip link set vde0 up;"
			       "/bin/ip addr add 10.0.0.1/24 dev vde0") == 0,
	      "vde_stackcmd a");
	CHECK(vde_stackcmd(*b, "/bin/ip link set vde0 up;"
			       "/bin/ip addr add 10.0.0.2/24 dev vde0") == 0,
	      "vde_stackcmd b");
}

/* A TCP listener of stack a on 0.0.0.0:port. */
TESTLIB_UNUSED static int stack_listener(struct vdestack *a, int port,
					 int backlog)
{
	struct sockaddr_in addr = inet("0.0.0.0", port);
	int fd = vde_msocket(a, AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "vde_msocket a");
	CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0, "bind");
	CHECK(listen(fd, backlog) == 0, "listen");
	return fd;
}

/* A TCP socket of stack b connected to ip:port. */
TESTLIB_UNUSED static int stack_connect(struct vdestack *b, const char *ip,
					int port)
{
	struct sockaddr_in addr = inet(ip, port);
	int fd = vde_msocket(b, AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "vde_msocket b");
	CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0, "connect");
	return fd;
}

/* Reads exactly len bytes; returns 0 on success, -1 on error or early EOF. */
TESTLIB_UNUSED static int read_full(int fd, char *buf, size_t len)
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

/* Writes all len bytes; returns 0 on success, -1 on error. */
TESTLIB_UNUSED static int write_full(int fd, const char *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* One byte each way over a connected pair. */
TESTLIB_UNUSED static void exchange(int x, int y)
{
	char c = 0;
	CHECK(write(x, "x", 1) == 1, "write x");
	CHECK(read(y, &c, 1) == 1 && c == 'x', "read x");
	CHECK(write(y, "y", 1) == 1, "write y");
	CHECK(read(x, &c, 1) == 1 && c == 'y', "read y");
}

#endif /* VDESTACK_TESTLIB_H */
