/*
 * The EXAMPLE of libvdestack(3), completed into a program: two stacks on the
 * VDE network given as argv[1], configured with vde_stackcmd, a TCP listener
 * on the first served by a thread, a connection from the second, a message
 * and its reply, then both stacks deleted.
 *
 * Builds against our include/vdestack.h and against the reference header of
 * Debian's libvdestack-dev alike. Exits 0 on success; otherwise prints the
 * failing call with errno and exits 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vdestack.h>

#define PORT 5000
static const char question[] = "hello from stack b";
static const char answer[] = "hello back from stack a";

static const char *volatile step = "start";

static void fail(int line, const char *what)
{
	int e = errno;
	fprintf(stderr, "man_example.c:%d: %s failed: errno %d (%s)\n", line, what, e,
		strerror(e));
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
	static const char msg[] = "man_example.c: timed out in: ";
	(void)sig;
	if (write(2, msg, sizeof msg - 1) < 0 || write(2, step, strlen(step)) < 0 ||
	    write(2, "\n", 1) < 0)
		_exit(1);
	_exit(1);
}

/* Reads exactly len bytes; returns 0 on success, -1 on error or early EOF. */
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

static int write_full(int fd, const char *buf, size_t len)
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

/* The server thread: accepts one connection, reads the question, answers. */
static void *serve(void *arg)
{
	int listener = *(int *)arg;
	struct sockaddr_in peer;
	socklen_t peerlen = sizeof peer;
	char buf[sizeof question];
	int conn = accept(listener, (struct sockaddr *)&peer, &peerlen);
	CHECK(conn >= 0, "accept");
	CHECK(peerlen == sizeof peer && peer.sin_family == AF_INET &&
		      peer.sin_addr.s_addr == inet_addr("10.0.0.2"),
	      "accept returns the client's address 10.0.0.2");
	CHECK(read_full(conn, buf, sizeof question) == 0, "server read");
	CHECK(memcmp(buf, question, sizeof question) == 0, "server got the question");
	CHECK(write_full(conn, answer, sizeof answer) == 0, "server write");
	CHECK(close(conn) == 0, "close server connection");
	return NULL;
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	struct sockaddr_in addr;
	pthread_t server;
	char buf[sizeof answer];
	int listener, client, rc;

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
	rc = vde_stackcmd(a, "/bin/ip link set vde0 up;"
			     "/bin/ip addr add 10.0.0.1/24 dev vde0");
	CHECK(rc == 0, "vde_stackcmd a");
	rc = vde_stackcmd(b, "/bin/ip link set vde0 up;"
			     "/bin/ip addr add 10.0.0.2/24 dev vde0");
	CHECK(rc == 0, "vde_stackcmd b");

	listener = vde_msocket(a, AF_INET, SOCK_STREAM, 0);
	CHECK(listener >= 0, "vde_msocket a");
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons(PORT);
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	CHECK(bind(listener, (struct sockaddr *)&addr, sizeof addr) == 0, "bind");
	CHECK(listen(listener, 5) == 0, "listen");
	errno = pthread_create(&server, NULL, serve, &listener);
	CHECK(errno == 0, "pthread_create");

	client = vde_msocket(b, AF_INET, SOCK_STREAM, 0);
	CHECK(client >= 0, "vde_msocket b");
	addr.sin_addr.s_addr = inet_addr("10.0.0.1");
	CHECK(connect(client, (struct sockaddr *)&addr, sizeof addr) == 0, "connect");
	CHECK(write_full(client, question, sizeof question) == 0, "client write");
	CHECK(read_full(client, buf, sizeof answer) == 0, "client read");
	CHECK(memcmp(buf, answer, sizeof answer) == 0, "client got the answer");
	errno = pthread_join(server, NULL);
	CHECK(errno == 0, "pthread_join");
	/* The server closed its end: end of file. */
	CHECK(read(client, buf, sizeof buf) == 0, "client reads EOF");
	CHECK(close(client) == 0, "close client");
	CHECK(close(listener) == 0, "close listener");

	vde_delstack(b);
	vde_delstack(a);
	printf("man_example: ok\n");
	return 0;
}
