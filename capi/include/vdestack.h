/*
 * vdestack.h - private userspace TCP/IP stacks on VDE virtual Ethernet.
 *
 * The C interface of the vdestack crate (library libvdestack.so.0). The
 * prototypes are those of VirtualSquare's libvdestack, so programs written
 * for it build and run unchanged: link with `pkg-config --libs vdestack`.
 *
 * Each stack runs in a thread of the calling process; no kernel namespaces
 * and no privileges are needed. Socket descriptors returned by vde_msocket()
 * (or by socket() while a default stack is set) work with the usual BSD
 * calls: connect, bind, listen, accept/accept4, getsockname, getpeername,
 * getsockopt, setsockopt, shutdown, send/recv and friends, read/write,
 * poll/select/epoll, fcntl(O_NONBLOCK), dup/dup2 and close.
 */
#ifndef VDESTACK_H
#define VDESTACK_H

#ifdef __cplusplus
extern "C" {
#endif

/* An opaque handle to one private stack. */
struct vdestack;

/*
 * Creates a stack. vdenet selects the virtual network: a VDE locator such as
 * "vde:///run/sw" (see vde_plug(1)); "=command args" to exchange frames with
 * a coprocess over its stdin/stdout in VDE stream framing; NULL or "" for a
 * stack with the loopback interface only. ifname names the interface inside
 * the stack ("vde0" when NULL). Interfaces start down and without addresses.
 * Returns NULL with errno set on failure (e.g. ENOENT: no such switch).
 */
struct vdestack *vde_addstack(char *vdenet, char *ifname);

/*
 * Destroys a stack and its network connection. Sockets of the stack that the
 * program still holds stay valid descriptors but fail from then on (reads
 * return end-of-file or an error, writes fail with EPIPE). NULL is ignored.
 */
void vde_delstack(struct vdestack *stack);

/*
 * Sets the default stack: while it is set, every socket() call of the
 * process creates its socket on that stack, like vde_msocket(stack, ...).
 * NULL restores kernel sockets.
 */
void vde_default_stack(struct vdestack *stack);

/*
 * Configures a stack with a ';'-separated sequence of commands, each given by
 * its full pathname (e.g. "/bin/ip link set vde0 up; /bin/ip addr add
 * 10.0.0.1/24 dev vde0"). The ip link/addr/route commands are understood.
 * Returns the exit status of the first command that fails, with the exit
 * statuses of iproute2's ip, or 0 when all of them succeed. Returns -1 with
 * errno EINVAL when stack or stackcmd is NULL.
 */
int vde_stackcmd(struct vdestack *stack, char *stackcmd);

/*
 * Like socket(2), on the given stack. Returns a descriptor, or -1 with errno
 * set (e.g. EAFNOSUPPORT; EINVAL when stack is NULL).
 */
int vde_msocket(struct vdestack *stack, int domain, int type, int protocol);

#ifdef __cplusplus
}
#endif

#endif /* VDESTACK_H */
