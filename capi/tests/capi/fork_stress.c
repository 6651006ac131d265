/*
 * fork() while other threads are inside socket calls. Threads open, use and close
 * stack sockets in a loop (socket() on the default stack, setsockopt, connect,
 * getsockname, write/read, dup, close; UDP sendto; a server thread's accept),
 * while the main thread forks again and again. Each child must find no lock held
 * by a thread that is not in it, and no call may wait for the parent's stack
 * thread, which is not in it either:
 *  - close, dup and dup2 of inherited stack descriptors work (they are libc's);
 *  - calls the stack would answer on an inherited socket fail at once (EBADF);
 *  - socket(AF_UNIX) is an ordinary unix socket; socket(AF_INET) on the parent's
 *    default stack fails at once (ENETDOWN);
 *  - reading and writing an inherited connection still work (the parent's
 *    stack thread serves it).
 * The child then exits 0; the parent waits for it with a bounded wait.
 *
 * usage: fork_stress VDENET
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>

#define TESTLIB_PID_IN_FAILURES
#include "testlib.h"

#define SA(a) ((struct sockaddr *)&(a))
#define PORT 7
#define UDP_PORT 9
#define WORKERS 3
#define FORKS 30
/* How long a child may take, in ms, before it counts as hung. */
#define CHILD_DEADLINE 10000

static int listener; /* on stack a (10.0.0.1) */
/* The workers stop first, then the server (a worker's last round needs it). */
static volatile int stop_workers, stop_server;
static volatile long rounds;

/* Accepts connections and echoes one byte on each. */
static void *serve(void *arg)
{
	(void)arg;
	while (!stop_server) {
		struct pollfd p = { .fd = listener, .events = POLLIN };
		char x;
		int conn;
		if (poll(&p, 1, 100) <= 0)
			continue;
		conn = accept(listener, NULL, NULL);
		if (conn < 0) {
			CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "server accept");
			continue;
		}
		if (read(conn, &x, 1) == 1)
			CHECK(write(conn, &x, 1) == 1, "server echo");
		CHECK(close(conn) == 0, "server close");
	}
	return NULL;
}

/* Opens, uses and closes sockets of the default stack (b) until told to stop. */
static void *work(void *arg)
{
	struct sockaddr_in to = inet("10.0.0.1", PORT);
	struct sockaddr_in udp_to = inet("10.0.0.1", UDP_PORT);
	(void)arg;
	while (!stop_workers) {
		struct sockaddr_in local;
		socklen_t len = sizeof local;
		int one = 1, fd, copy, udp;
		char x = 'x';

		fd = socket(AF_INET, SOCK_STREAM, 0);
		CHECK(fd >= 0, "worker socket");
		CHECK(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == 0,
		      "worker setsockopt");
		CHECK(connect(fd, SA(to), sizeof to) == 0, "worker connect");
		CHECK(getsockname(fd, SA(local), &len) == 0 &&
			      local.sin_addr.s_addr == inet_addr("10.0.0.2"),
		      "worker getsockname");
		CHECK(write(fd, &x, 1) == 1, "worker write");
		CHECK(read(fd, &x, 1) == 1 && x == 'x', "worker read the echo");
		copy = dup(fd);
		CHECK(copy >= 0, "worker dup");
		CHECK(close(fd) == 0 && close(copy) == 0, "worker close");

		udp = socket(AF_INET, SOCK_DGRAM, 0);
		CHECK(udp >= 0, "worker UDP socket");
		CHECK(sendto(udp, "u", 1, 0, SA(udp_to), sizeof udp_to) == 1,
		      "worker sendto");
		CHECK(close(udp) == 0, "worker UDP close");
		__atomic_add_fetch(&rounds, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* What a child does with what it inherited; exits 0 unless a check fails. */
static void child(int held)
{
	struct sockaddr_in to = inet("10.0.0.1", PORT);
	int one = 1, copy, unix_fd;
	char x = 'c';

	/* A child hung in a lock would never exit: the alarm (pending alarms are
	 * not inherited) makes it fail instead. */
	alarm(CHILD_DEADLINE / 1000);
	copy = dup(held);
	CHECK(copy >= 0, "child dup of an inherited stack socket");
	CHECK(dup2(held, 200) == 200, "child dup2 of an inherited stack socket");
	CHECK(close(200) == 0 && close(copy) == 0, "child close of the copies");

	FAILS_WITH(setsockopt(held, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one),
		   EBADF, "child setsockopt on an inherited stack socket");
	FAILS_WITH(connect(held, SA(to), sizeof to), EBADF,
		   "child connect on an inherited stack socket");

	unix_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(unix_fd >= 0, "child socket(AF_UNIX) with a default stack");
	CHECK(close(unix_fd) == 0, "child close AF_UNIX");
	FAILS_WITH(socket(AF_INET, SOCK_STREAM, 0), ENETDOWN,
		   "child socket(AF_INET) on the parent's default stack");
	FAILS_WITH(socket(AF_INET6, SOCK_DGRAM, 0), ENETDOWN,
		   "child socket(AF_INET6) on the parent's default stack");

	/* The inherited connection still carries bytes. */
	CHECK(write(held, &x, 1) == 1, "child write on the inherited connection");
	CHECK(read(held, &x, 1) == 1 && x == 'c',
	      "child read on the inherited connection");
	CHECK(close(held) == 0, "child close of the inherited connection");
	exit(0);
}

/* Waits up to CHILD_DEADLINE ms for `pid`; kills it and fails if it is still
 * running then. */
static void wait_bounded(pid_t pid)
{
	int status, waited;
	for (waited = 0; waited < CHILD_DEADLINE; waited += 10) {
		pid_t done = waitpid(pid, &status, WNOHANG);
		CHECK(done >= 0, "waitpid");
		if (done == pid) {
			errno = 0;
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "the child exited 0");
			return;
		}
		poll(NULL, 0, 10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	errno = 0;
	CHECK(0, "the child ended in time (it hung)");
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	pthread_t server, workers[WORKERS];
	int udp_server, held, conn, i;
	struct sockaddr_in any = inet("0.0.0.0", UDP_PORT);
	char x;

	need_vdenet(argc, argv);
	hang_guard("fork_stress.c", 120);
	two_stacks(argv[1], &a, &b);
	listener = stack_listener(a, PORT, 64);
	CHECK(fcntl(listener, F_SETFL, O_NONBLOCK) == 0, "fcntl O_NONBLOCK listener");
	udp_server = vde_msocket(a, AF_INET, SOCK_DGRAM, 0);
	CHECK(udp_server >= 0 && bind(udp_server, SA(any), sizeof any) == 0,
	      "UDP server");

	/* A connection every child inherits, echoed by a's side. */
	held = stack_connect(b, "10.0.0.1", PORT);
	for (i = 0; i < 50; i++) {
		struct pollfd p = { .fd = listener, .events = POLLIN };
		CHECK(poll(&p, 1, 200) >= 0, "poll the listener");
		conn = accept(listener, NULL, NULL);
		if (conn >= 0)
			break;
	}
	CHECK(conn >= 0, "accept the held connection");

	vde_default_stack(b);
	errno = pthread_create(&server, NULL, serve, NULL);
	CHECK(errno == 0, "pthread_create server");
	for (i = 0; i < WORKERS; i++) {
		errno = pthread_create(&workers[i], NULL, work, NULL);
		CHECK(errno == 0, "pthread_create worker");
	}

	for (i = 0; i < FORKS; i++) {
		pid_t pid;
		fflush(NULL);
		pid = fork();
		CHECK(pid >= 0, "fork");
		if (pid == 0)
			child(held);
		/* Echo what the child wrote on the inherited connection. */
		CHECK(read(conn, &x, 1) == 1, "read what the child wrote");
		CHECK(write(conn, &x, 1) == 1, "echo it");
		wait_bounded(pid);
	}

	stop_workers = 1;
	for (i = 0; i < WORKERS; i++)
		CHECK(pthread_join(workers[i], NULL) == 0, "join worker");
	stop_server = 1;
	CHECK(pthread_join(server, NULL) == 0, "join server");
	CHECK(rounds > 0, "the workers made connections");
	vde_default_stack(NULL);
	close(conn);
	close(held);
	close(udp_server);
	close(listener);
	vde_delstack(a);
	vde_delstack(b);
	printf("fork_stress: ok (%ld rounds of the workers during %d forks)\n",
	       rounds, FORKS);
	return 0;
}
