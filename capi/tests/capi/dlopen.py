"""The library loaded with dlopen after libc, as Python's ctypes loads it.

usage: python3 dlopen.py VDENET

libc comes first in the lookup order here: the program's own socket calls are
libc's, and the library's functions are reached through its handle. Its
dlsym(RTLD_NEXT, ...) finds nothing after it, so calls it passes on must still
reach libc (not fail with ENOSYS), and its own calls on a stack socket must
answer for the stack (AF_INET), never as the AF_UNIX pair underneath.

Run by tests/capi.rs in a network namespace of its own, on either backend
(VDESTACK_BACKEND). Exits 0 on success; otherwise prints what failed, exits 1.
"""

import ctypes
import os
import socket
import struct
import sys

AF_UNIX, AF_INET = socket.AF_UNIX, socket.AF_INET
SOCK_STREAM = socket.SOCK_STREAM


def fail(what):
    err = ctypes.get_errno()
    print(f"dlopen.py: {what} failed: errno {err} ({os.strerror(err)})", file=sys.stderr)
    sys.exit(1)


def check(cond, what):
    if not cond:
        fail(what)


lib = ctypes.CDLL("libvdestack.so.0", use_errno=True)
lib.vde_addstack.restype = ctypes.c_void_p
lib.vde_addstack.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
for name in ("vde_stackcmd",):
    getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.vde_msocket.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
lib.vde_delstack.argtypes = [ctypes.c_void_p]
SockAddr = ctypes.c_char * 128
for name in ("bind", "connect"):
    getattr(lib, name).argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
for name in ("getsockname", "getpeername", "accept"):
    getattr(lib, name).argtypes = [ctypes.c_int, SockAddr, ctypes.POINTER(ctypes.c_uint)]
lib.socket.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
lib.listen.argtypes = [ctypes.c_int, ctypes.c_int]


def inet(ip, port):
    return struct.pack("=HH4s8x", AF_INET, socket.htons(port), socket.inet_aton(ip))


def name_of(call, fd):
    """(family, port) of what lib.getsockname/getpeername writes."""
    buf = SockAddr()
    length = ctypes.c_uint(ctypes.sizeof(buf))
    check(call(fd, buf, ctypes.byref(length)) == 0, call.__name__)
    family, port = struct.unpack_from("=HH", buf.raw)
    return family, socket.ntohs(port)


if len(sys.argv) != 2:
    print("usage: dlopen.py VDENET", file=sys.stderr)
    sys.exit(2)

stack = lib.vde_addstack(sys.argv[1].encode(), None)
check(stack, "vde_addstack")
check(
    lib.vde_stackcmd(
        stack,
        b"/bin/ip link set lo up; /bin/ip link set vde0 up;"
        b"/bin/ip addr add 10.0.0.1/24 dev vde0",
    )
    == 0,
    "vde_stackcmd",
)

# A listener and a connection on the stack, through the library's own calls.
listener = lib.vde_msocket(stack, AF_INET, SOCK_STREAM, 0)
check(listener >= 0, "vde_msocket listener")
check(lib.bind(listener, inet("10.0.0.1", 7007), 16) == 0, "bind")
check(lib.listen(listener, 4) == 0, "listen")
check(name_of(lib.getsockname, listener) == (AF_INET, 7007), "getsockname of the listener")
client = lib.vde_msocket(stack, AF_INET, SOCK_STREAM, 0)
check(client >= 0, "vde_msocket client")
check(lib.connect(client, inet("10.0.0.1", 7007), 16) == 0, "connect")
peer = SockAddr()
peer_len = ctypes.c_uint(ctypes.sizeof(peer))
conn = lib.accept(listener, peer, ctypes.byref(peer_len))
check(conn >= 0, "accept")
check(name_of(lib.getpeername, conn)[0] == AF_INET, "getpeername of the accepted socket is AF_INET")
check(name_of(lib.getpeername, client) == (AF_INET, 7007), "getpeername of the client")

# Bytes both ways with plain read and write (libc's: the descriptors need nothing more).
check(os.write(client, b"ping") == 4, "write client")
check(os.read(conn, 4) == b"ping", "read conn")
check(os.write(conn, b"pong") == 4, "write conn")
check(os.read(client, 4) == b"pong", "read client")

# Descriptors that are not the stack's go on to libc.
left, right = socket.socketpair()
check(name_of(lib.getsockname, left.fileno())[0] == AF_UNIX, "getsockname of an AF_UNIX pair (libc's)")
kernel = lib.socket(AF_UNIX, SOCK_STREAM, 0)
check(kernel >= 0, "socket(AF_UNIX) through the library (libc's)")
os.close(kernel)

for fd in (client, conn, listener):
    os.close(fd)
lib.vde_delstack(stack)
print("dlopen.py: ok")
