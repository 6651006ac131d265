/*
 * The library preloaded after libc: LD_PRELOAD="libc.so.6 libvdestack.so.0",
 * with this program not linked with it. libc's socket calls come first in the
 * lookup order, so the program reaches the library's functions through its
 * handle, and the library's dlsym(RTLD_NEXT, ...) finds nothing after it: what
 * it passes on must still reach libc (not fail with ENOSYS), and its own calls
 * on a stack socket must answer for the stack, never as the AF_UNIX pair
 * underneath.
 *
 * usage: after_libc VDENET
 * Exits 0 on success; otherwise prints the failing call with errno, exits 1.
 */
#include <dlfcn.h>

#include "testlib.h"

#define SA(a) ((struct sockaddr *)&(a))

typedef struct vdestack *(*addstack_fn)(char *, char *);
typedef int (*stackcmd_fn)(struct vdestack *, char *);
typedef int (*msocket_fn)(struct vdestack *, int, int, int);
typedef int (*addr_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*name_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*listen_fn)(int, int);
typedef int (*socket_fn)(int, int, int);

static void *lib;

static void *sym(const char *name)
{
	void *f = dlsym(lib, name);
	CHECK(f != NULL, name);
	return f;
}

int main(int argc, char *argv[])
{
	struct sockaddr_in addr, got;
	struct sockaddr_storage name;
	socklen_t len;
	int l, c, conn, sv[2], kernel;

	need_vdenet(argc, argv);
	hang_guard("after_libc", 30);
	lib = dlopen("libvdestack.so.0", RTLD_NOW | RTLD_NOLOAD);
	CHECK(lib != NULL, "libvdestack.so.0 is preloaded");
	addstack_fn addstack = (addstack_fn)sym("vde_addstack");
	stackcmd_fn stackcmd = (stackcmd_fn)sym("vde_stackcmd");
	msocket_fn msocket = (msocket_fn)sym("vde_msocket");
	addr_fn vbind = (addr_fn)sym("bind"), vconnect = (addr_fn)sym("connect");
	name_fn vgetsockname = (name_fn)sym("getsockname");
	name_fn vgetpeername = (name_fn)sym("getpeername");
	name_fn vaccept = (name_fn)sym("accept");
	listen_fn vlisten = (listen_fn)sym("listen");
	socket_fn vsocket = (socket_fn)sym("socket");
	CHECK((void *)vconnect != (void *)connect,
	      "libc's connect comes first in the lookup order");

	struct vdestack *s = addstack(argv[1], NULL);
	CHECK(s != NULL, "vde_addstack");
	CHECK(stackcmd(s, "/bin/ip link set lo up; /bin/ip link set vde0 up;"
			  "/bin/ip addr add 10.0.0.1/24 dev vde0") == 0,
	      "vde_stackcmd");
	l = msocket(s, AF_INET, SOCK_STREAM, 0);
	CHECK(l >= 0, "vde_msocket");
	addr = inet("10.0.0.1", 7);
	CHECK(vbind(l, SA(addr), sizeof addr) == 0, "bind");
	CHECK(vlisten(l, 4) == 0, "listen");
	len = sizeof got;
	CHECK(vgetsockname(l, SA(got), &len) == 0 && got.sin_family == AF_INET &&
		      ntohs(got.sin_port) == 7,
	      "getsockname of a stack socket: AF_INET");
	c = msocket(s, AF_INET, SOCK_STREAM, 0);
	CHECK(c >= 0, "vde_msocket");
	CHECK(vconnect(c, SA(addr), sizeof addr) == 0, "connect");
	conn = vaccept(l, NULL, NULL);
	CHECK(conn >= 0, "accept");
	len = sizeof got;
	CHECK(vgetpeername(conn, SA(got), &len) == 0 && got.sin_family == AF_INET,
	      "getpeername of the accepted socket: AF_INET");
	exchange(c, conn);

	/* Descriptors of the kernel go on to libc. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	len = sizeof name;
	CHECK(vgetsockname(sv[0], SA(name), &len) == 0 &&
		      name.ss_family == AF_UNIX,
	      "getsockname of an AF_UNIX pair through the library");
	kernel = vsocket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK(kernel >= 0, "socket(AF_UNIX) through the library");
	close(kernel);
	close(sv[0]);
	close(sv[1]);
	close(c);
	close(conn);
	close(l);
	printf("after_libc: ok\n");
	return 0;
}
