/*
 * Errors instead of crashes, and errno values as Linux gives them.
 *
 * usage: errors VDENET [--reference]
 *
 * With --reference, the checks where VirtualSquare's libvdestack crashes,
 * hangs or legitimately differs are skipped, so that the rest can be checked
 * against it:
 *  - NULL arguments (the reference dereferences them);
 *  - loopback-only stacks (vde_addstack(NULL or "", ...)): the reference
 *    creates them, but its vde_stackcmd on them never returns;
 *  - vde_delstack with sockets still open (the reference's sockets are kernel
 *    sockets that outlive the namespace's interface: they just stall).
 *
 * Exits 0 on success; otherwise prints the failing call with errno, exits 1.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/un.h>
#include <vdestack.h>

#include "testlib.h"

#define STATUS(stack, cmd, want)                                               \
	do {                                                                   \
		int st_;                                                       \
		step = (cmd);                                                  \
		st_ = vde_stackcmd((stack), (cmd));                            \
		if (st_ != (want)) {                                           \
			fprintf(stderr,                                        \
				"errors.c:%d: vde_stackcmd(\"%s\") returned "  \
				"%d, expected %d\n",                           \
				__LINE__, (cmd), st_, (want));                 \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define SA(a) ((struct sockaddr *)&(a))

/* A listener on ip:port of the stack (NULL: a kernel socket). */
static int listener_on(struct vdestack *s, const char *ip, int port)
{
	struct sockaddr_in addr = inet(ip, port);
	int fd = s ? vde_msocket(s, AF_INET, SOCK_STREAM, 0)
		   : socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "socket for a listener");
	CHECK(bind(fd, SA(addr), sizeof addr) == 0, "bind listener");
	CHECK(listen(fd, 4) == 0, "listen");
	return fd;
}

/* Connects a new socket of the stack (NULL: kernel) to the listener's address. */
static int connect_to(struct vdestack *s, int listener, const char *ip)
{
	struct sockaddr_in addr;
	socklen_t alen = sizeof addr;
	int fd = s ? vde_msocket(s, AF_INET, SOCK_STREAM, 0)
		   : socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "socket for a client");
	CHECK(getsockname(listener, SA(addr), &alen) == 0, "getsockname listener");
	addr.sin_addr.s_addr = inet_addr(ip);
	CHECK(connect(fd, SA(addr), sizeof addr) == 0, "connect");
	return fd;
}

/* TCP over 127.0.0.1 on a loopback-only stack. */
static void loopback_only(char *vdenet)
{
	struct vdestack *s = vde_addstack(vdenet, NULL);
	struct sockaddr_in addr = inet("127.0.0.1", 7);
	int fd, l, c, conn;
	CHECK(s != NULL, "vde_addstack of a loopback-only stack");
	fd = vde_msocket(s, AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "vde_msocket loopback-only");
	/* lo starts down, as in a new network namespace. */
	FAILS_WITH(connect(fd, SA(addr), sizeof addr), ENETUNREACH,
		   "connect to 127.0.0.1 with lo down");
	close(fd);
	STATUS(s, "/bin/ip link set vde0 up", 1); /* there is no vde0 */
	STATUS(s, "/bin/ip link set lo up", 0);
	l = listener_on(s, "127.0.0.1", 7);
	c = connect_to(s, l, "127.0.0.1");
	conn = accept(l, NULL, NULL);
	CHECK(conn >= 0, "accept on loopback-only");
	exchange(c, conn);
	close(c);
	close(conn);
	close(l);
	vde_delstack(s);
}

int main(int argc, char *argv[])
{
	struct vdestack *a, *b;
	struct sockaddr_in addr;
	struct sockaddr_un un;
	struct pollfd p;
	char buf[16];
	char dir[] = "/tmp/vdestack-errors-XXXXXX";
	int reference, fd, l, l2, c, conn, sv[2];
	ssize_t n;

	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--reference"))) {
		fprintf(stderr, "usage: %s VDENET [--reference]\n", argv[0]);
		return 2;
	}
	reference = argc == 3;
	hang_guard("errors.c", 40);
	signal(SIGPIPE, SIG_IGN);

	/* A switch that is not there. */
	errno = 0;
	CHECK(vde_addstack("/nonexistent-vdestack-test/sw", NULL) == NULL &&
		      errno == ENOENT,
	      "vde_addstack on a missing switch gives NULL/ENOENT");
	errno = 0;
	CHECK(vde_addstack("vde:///nonexistent-vdestack-test/sw", NULL) == NULL &&
		      errno == ENOENT,
	      "vde_addstack on a missing vde:// switch gives NULL/ENOENT");

	add_two_stacks(argv[1], &a, &b);

	/* vde_stackcmd returns the exit status of iproute2's ip. */
	STATUS(a, "", 0);
	STATUS(a, " ; ;", 0);
	STATUS(a, "/bin/ip addr add 10.0.0.x/24 dev vde0", 1);
	STATUS(a, "ip link set vde0 up", 2); /* no full pathname */
	STATUS(a, "/bin/ip link set nosuchdev up", 1);
	STATUS(a, "/bin/ip foo", 1);
	STATUS(a, "/bin/ip link set lo up; /bin/ip link set vde0 up;"
		  "/bin/ip addr add 10.0.0.1/24 dev vde0", 0);
	STATUS(a, "/bin/ip addr add 10.0.0.1/24 dev vde0", 2); /* again */
	STATUS(a, "/bin/ip link set vde0 up; /bin/ip foo; /bin/ip bar", 1);
	STATUS(b, "/bin/ip link set lo up; /bin/ip link set vde0 up;"
		  "/bin/ip addr add 10.0.0.2/24 dev vde0", 0);

	/* vde_msocket: errno as socket(2) gives it. */
	FAILS_WITH(vde_msocket(a, 12345, SOCK_STREAM, 0), EAFNOSUPPORT,
		   "vde_msocket with an unknown family");

	/* errno of socket calls on a stack, as on Linux. */
	l = listener_on(a, "0.0.0.0", 7);
	fd = vde_msocket(a, AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "vde_msocket a");
	addr = inet("0.0.0.0", 7);
	FAILS_WITH(bind(fd, SA(addr), sizeof addr), EADDRINUSE, "bind a port in use");
	addr = inet("10.9.9.9", 0);
	FAILS_WITH(bind(fd, SA(addr), sizeof addr), EADDRNOTAVAIL,
		   "bind an address the stack does not have");
	addr = inet("127.0.0.1", 9);
	FAILS_WITH(connect(fd, SA(addr), sizeof addr), ECONNREFUSED,
		   "connect to a closed port");
	close(fd);
	fd = vde_msocket(a, AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "vde_msocket a");
	addr = inet("10.1.0.1", 9);
	FAILS_WITH(connect(fd, SA(addr), sizeof addr), ENETUNREACH,
		   "connect without a route");
	close(fd);
	fd = vde_msocket(a, AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "vde_msocket a");
	FAILS_WITH(accept(fd, NULL, NULL), EINVAL, "accept on a socket not listening");
	FAILS_WITH(getpeername(fd, SA(addr), &(socklen_t){ sizeof addr }), ENOTCONN,
		   "getpeername of an unconnected socket");
	close(fd);

	if (!reference) {
		/* NULL where the reference would crash: EINVAL, or nothing. */
		FAILS_WITH(vde_stackcmd(NULL, "/bin/ip link set lo up"), EINVAL,
			   "vde_stackcmd(NULL, ...)");
		FAILS_WITH(vde_stackcmd(a, NULL), EINVAL, "vde_stackcmd(stack, NULL)");
		FAILS_WITH(vde_msocket(NULL, AF_INET, SOCK_STREAM, 0), EINVAL,
			   "vde_msocket(NULL, ...)");
		step = "vde_delstack(NULL)";
		vde_delstack(NULL);
		step = "vde_default_stack(NULL)";
		vde_default_stack(NULL);

		/* Loopback-only stacks. */
		loopback_only(NULL);
		loopback_only("");

		/* vde_delstack with sockets open: no hang, the fds fail cleanly. */
		c = connect_to(b, l, "10.0.0.1");
		conn = accept(l, NULL, NULL);
		CHECK(conn >= 0, "accept");
		exchange(c, conn);
		l2 = listener_on(a, "0.0.0.0", 8);
		step = "vde_delstack with sockets open";
		vde_delstack(a);
		p.fd = conn;
		p.events = POLLIN;
		CHECK(poll(&p, 1, 10000) == 1,
		      "poll reports a socket of a deleted stack ready");
		n = read(conn, buf, sizeof buf);
		CHECK(n == 0 || n == -1, "read on a socket of a deleted stack");
		n = write(conn, "late", 4);
		CHECK(n == -1 && (errno == EPIPE || errno == ECONNRESET ||
				  errno == ENETDOWN),
		      "write on a socket of a deleted stack fails with "
		      "EPIPE/ECONNRESET/ENETDOWN");
		CHECK(accept(l2, NULL, NULL) == -1,
		      "accept on a listener of a deleted stack fails");
		CHECK(accept(l, NULL, NULL) == -1,
		      "accept on a listener of a deleted stack fails");
		CHECK(close(conn) == 0, "close a socket of a deleted stack");
		CHECK(close(l2) == 0, "close a listener of a deleted stack");
		CHECK(close(l) == 0, "close a listener of a deleted stack");
		/* b still works; delete it with a connected socket open. */
		fd = vde_msocket(b, AF_INET, SOCK_STREAM, 0);
		CHECK(fd >= 0, "vde_msocket b after deleting a");
		step = "vde_delstack b with sockets open";
		vde_delstack(b);
		close(c);
		close(fd);
	} else {
		close(l);
		vde_delstack(a);
		vde_delstack(b);
	}

	/* Kernel sockets go straight to libc: TCP on the host's 127.0.0.1... */
	l = listener_on(NULL, "127.0.0.1", 0);
	c = connect_to(NULL, l, "127.0.0.1");
	conn = accept(l, NULL, NULL);
	CHECK(conn >= 0, "accept on a kernel socket");
	exchange(c, conn);
	close(c);
	close(conn);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "kernel socket");
	addr = inet("127.0.0.1", 0);
	CHECK(bind(fd, SA(addr), sizeof addr) == 0, "bind a kernel socket");
	CHECK(getsockname(fd, SA(addr), &(socklen_t){ sizeof addr }) == 0,
	      "getsockname of a kernel socket");
	close(fd); /* now addr is a closed port */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0, "kernel socket");
	FAILS_WITH(connect(fd, SA(addr), sizeof addr), ECONNREFUSED,
		   "kernel connect to a closed port");
	close(fd);
	close(l);
	/* ...and AF_UNIX. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	exchange(sv[0], sv[1]);
	close(sv[0]);
	close(sv[1]);
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	snprintf(un.sun_path, sizeof un.sun_path, "%s/sock", dir);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(l >= 0 && bind(l, (struct sockaddr *)&un, sizeof un) == 0 &&
		      listen(l, 1) == 0,
	      "AF_UNIX listener");
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(c >= 0 && connect(c, (struct sockaddr *)&un, sizeof un) == 0,
	      "AF_UNIX connect");
	conn = accept(l, NULL, NULL);
	CHECK(conn >= 0, "AF_UNIX accept");
	exchange(c, conn);
	close(c);
	close(conn);
	close(l);
	unlink(un.sun_path);
	rmdir(dir);

	printf("errors: ok%s\n", reference ? " (reference subset)" : "");
	return 0;
}
