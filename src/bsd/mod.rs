//! The BSD socket calls on a stack's descriptors: `socket`, `bind`, `connect`,
//! `listen`, `accept`, `getsockname`, `getsockopt`, `sendto`, ... as functions of
//! file descriptors, with the semantics of Linux's calls.
//!
//! [`TcpStream`](crate::TcpStream), [`TcpListener`](crate::TcpListener) and
//! [`UdpSocket`](crate::UdpSocket) mirror `std::net`; this module mirrors the system
//! calls below it, for what `std::net` cannot say: a socket that exists before it is
//! bound or connected, options chosen between `socket` and `bind`, a non-blocking
//! `connect` whose outcome a poll loop learns, a descriptor shared by `dup`s and
//! threads. It is what the C library (`libvdestack.so.0`, the `vdestack-capi` crate)
//! is made of: that library only converts C types and answers libc's symbols with
//! these calls.
//!
//! # A guide
//!
//! [`socket`] makes a socket on a stack and returns its descriptor, an [`OwnedFd`].
//! Every other call takes the descriptor ([`BorrowedFd`], or anything `AsFd` gives
//! one of), so a `dup` of it, or a copy another thread holds, is the same socket.
//! Errors are the errno the Linux call gives (`io::Error::raw_os_error`).
//!
//! ```no_run
//! use std::os::fd::AsFd;
//! use vdestack::bsd::{self, OptValue, SockOpt};
//! # fn main() -> std::io::Result<()> {
//! let stack = vdestack::Stack::new("vde:///tmp/sw", None)?;
//! stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
//!
//! // A listener whose options are set before it binds, as in C.
//! let listener = bsd::socket(&stack, libc::AF_INET, libc::SOCK_STREAM, 0)?;
//! bsd::set_option(listener.as_fd(), SockOpt::ReuseAddress, OptValue::Int(1))?;
//! bsd::bind(listener.as_fd(), "0.0.0.0:80".parse().unwrap())?;
//! bsd::listen(listener.as_fd(), 128)?;
//! let (conn, peer) = bsd::accept(listener.as_fd(), libc::SOCK_CLOEXEC)?;
//! println!("{peer} connected");
//! bsd::send(conn.as_fd(), b"hello\n", 0)?;
//! # Ok(()) }
//! ```
//!
//! A non-blocking `connect` returns `EINPROGRESS` at once; the descriptor turns
//! writable when the connection is up or failed, and [`take_error`] (`SO_ERROR`)
//! tells which:
//!
//! ```no_run
//! use std::os::fd::AsFd;
//! use vdestack::bsd;
//! # fn main() -> std::io::Result<()> {
//! # let stack = vdestack::Stack::new("vde:///tmp/sw", None)?;
//! let fd = bsd::socket(&stack, libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)?;
//! match bsd::connect(fd.as_fd(), "10.0.0.2:80".parse().unwrap()) {
//!     Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
//!     other => other?,
//! }
//! // ... poll, epoll or mio until the descriptor is writable, then:
//! if let Some(e) = bsd::take_error(fd.as_fd())? {
//!     return Err(e); // ECONNREFUSED, ENETUNREACH, ETIMEDOUT...
//! }
//! # Ok(()) }
//! ```
//!
//! Reading and writing a connection need nothing of this module: `read`, `write`,
//! `poll` and `epoll` work on the descriptor itself. One thing a descriptor cannot
//! say by itself is a reset: a connection the peer reset reads end of stream and
//! fails writes with `EPIPE`, and [`take_error`] then gives `ECONNRESET` once
//! ([`recv`] and [`send`] do that for you). Datagram sockets carry each datagram's
//! address beside it while unconnected: use [`send_to`]/[`recv_from`] (or
//! [`send`]/[`recv`]) on them, not `read`/`write`.
//!
//! # Which descriptors
//!
//! A socket of a userspace stack is known by the descriptor's socket (see
//! `registry.rs`): the stack answers these calls for it. Every other descriptor,
//! including the kernel sockets of a [`Backend::Kernel`](crate::Backend) stack,
//! gets the kernel's own call. [`kind`] tells which a descriptor is.
//!
//! # fork
//!
//! A stack's thread lives in the process that made it. In a child forked after
//! that, calls on the parent's stack sockets fail at once with `EBADF`, except
//! reading and writing a connection, which the parent's thread still serves; a new
//! socket on the parent's stack fails with `ENETDOWN`. No call hangs, and no lock
//! another thread held at the fork is taken.

mod options;
mod registry;
mod stack_socket;

pub use options::{OptName, OptValue, SockOpt, TcpInfo};

use crate::stack::{Backend, Stack};
use crate::sys;
use stack_socket::StackSocket;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

fn errno_error(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// The stack socket `fd` is, for a call to act on: `None` for any other descriptor;
/// `EBADF` for the parent's socket in a forked child.
fn stack_socket(fd: BorrowedFd<'_>) -> io::Result<Option<Arc<StackSocket>>> {
    match registry::lookup(fd) {
        None => Ok(None),
        Some(found) if found.inherited => Err(errno_error(libc::EBADF)),
        Some(found) => Ok(Some(found.socket)),
    }
}

/// What `socket()` was asked for a stack socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketKind {
    /// `AF_INET` or `AF_INET6`.
    pub domain: i32,
    /// `SOCK_STREAM` or `SOCK_DGRAM` (without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`).
    pub ty: i32,
    /// `SO_PROTOCOL`: `IPPROTO_TCP`, `IPPROTO_UDP`, `IPPROTO_ICMP` or
    /// `IPPROTO_ICMPV6`.
    pub protocol: i32,
}

/// Creates a socket on `stack`, as `socket(2)`: `domain` `AF_INET` or `AF_INET6`,
/// `ty` `SOCK_STREAM` or `SOCK_DGRAM` (or'ed with `SOCK_NONBLOCK`, `SOCK_CLOEXEC`),
/// `protocol` 0 or the type's own (a `SOCK_DGRAM` with `IPPROTO_ICMP` or
/// `IPPROTO_ICMPV6` is a ping socket, as on Linux). Errors as `socket(2)`
/// (`EAFNOSUPPORT`, `EPROTONOSUPPORT`, `EINVAL`); `ENETDOWN` when the stack is gone
/// or belongs to the parent of this forked process.
///
/// On a [`Backend::Kernel`] stack it is `socket(2)` inside the stack's namespace: a
/// kernel socket, of any kind the kernel has.
pub fn socket(stack: &Stack, domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
    if stack.backend() == Backend::Kernel {
        return stack.msocket(domain, ty, protocol);
    }
    let (fd, id, watch) = stack.adopted_socket(domain, ty, protocol)?;
    let socket = StackSocket::new(stack, id, domain, ty, protocol)?;
    registry::register(fd.as_fd(), Arc::new(socket), watch)?;
    Ok(fd)
}

/// What `fd` is: `Some` for a socket of a userspace stack (also the parent's, in a
/// forked child), `None` for any other descriptor.
pub fn kind(fd: BorrowedFd<'_>) -> Option<SocketKind> {
    registry::lookup(fd).map(|found| found.socket.kind())
}

/// Whether `fd` is a socket of a userspace stack (see [`kind`]).
pub fn is_stack_socket(fd: BorrowedFd<'_>) -> bool {
    kind(fd).is_some()
}

/// `bind(2)`: `EADDRINUSE`, `EADDRNOTAVAIL` (not an address of the stack),
/// `EINVAL` (bound already), `EAFNOSUPPORT` (an IPv6 address for an IPv4 socket).
pub fn bind(fd: BorrowedFd<'_>, addr: SocketAddr) -> io::Result<()> {
    match stack_socket(fd)? {
        Some(s) => s.bind(addr),
        None => sys::bind(fd, &addr),
    }
}

/// `connect(2)`. Blocks until the connection is up or failed (`ECONNREFUSED`,
/// `ENETUNREACH`, `EHOSTUNREACH`, `ETIMEDOUT`), unless the descriptor is
/// non-blocking: then `EINPROGRESS`, and the descriptor turns writable when it is
/// decided ([`take_error`] says how). Asked again meanwhile: `EALREADY`, or the
/// outcome once known. A datagram socket takes `addr` as its peer.
pub fn connect(fd: BorrowedFd<'_>, addr: SocketAddr) -> io::Result<()> {
    match stack_socket(fd)? {
        Some(s) => s.connect(fd, addr),
        None => sys::KernelSocket(fd).connect(addr),
    }
}

/// `connect(2)` with an `AF_UNSPEC` address: a datagram socket forgets its peer.
/// (`EOPNOTSUPP` on a stack's stream socket.)
pub fn disconnect(fd: BorrowedFd<'_>) -> io::Result<()> {
    match stack_socket(fd)? {
        Some(s) => s.disconnect(fd),
        None => sys::KernelSocket(fd).disconnect(),
    }
}

/// `listen(2)`, with at most 4,096 connections waiting (Linux's `somaxconn`; a
/// negative `backlog` is the most). An unbound socket is bound to an ephemeral port
/// first.
///
/// On a userspace stack the descriptor number then refers to another socket, the
/// listener's (what `fd` referred to before is closed, as `dup2` closes it): a `dup`
/// made before `listen` is not the listener.
pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    let Some(s) = stack_socket(fd)? else {
        return sys::listen(fd, usize::try_from(backlog).unwrap_or(usize::MAX));
    };
    if let Some(watch) = s.listen(fd, backlog)? {
        registry::register(fd, s, watch)?;
    }
    Ok(())
}

/// `accept4(2)`: waits for a connection (unless the descriptor is non-blocking:
/// `EAGAIN`), returns its descriptor (`flags`: `SOCK_NONBLOCK`, `SOCK_CLOEXEC`) and
/// the peer's address. `EINVAL` on a socket that does not listen; `EMFILE` at once
/// when the process has no descriptor left, the connection staying queued.
pub fn accept(fd: BorrowedFd<'_>, flags: i32) -> io::Result<(OwnedFd, SocketAddr)> {
    let Some(s) = stack_socket(fd)? else {
        return sys::KernelSocket(fd).accept4(flags);
    };
    let (conn_fd, socket, watch, peer) = s.accept(fd, flags)?;
    registry::register(conn_fd.as_fd(), Arc::new(socket), watch)?;
    Ok((conn_fd, peer))
}

/// `getsockname(2)`: the wildcard address of the family before the socket is bound.
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    match stack_socket(fd)? {
        Some(s) => Ok(s.local_addr()),
        None => sys::KernelSocket(fd).local_addr(),
    }
}

/// `getpeername(2)`: `ENOTCONN` without a peer.
pub fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    match stack_socket(fd)? {
        Some(s) => s.peer_addr(),
        None => sys::KernelSocket(fd).peer_addr(),
    }
}

/// `SO_ERROR`, cleared by reading it: how a non-blocking connect ended, an ICMP
/// error of a datagram socket, or a connection's reset (see the module doc).
pub fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    match stack_socket(fd)? {
        Some(s) => Ok(match s.take_error() {
            0 => None,
            code => Some(s.error(code)),
        }),
        None => sys::KernelSocket(fd).take_error(),
    }
}

/// The descriptor of a connected stream socket as a [`TcpStream`](crate::TcpStream),
/// for the faces that make connections through these calls (the `tokio` module's
/// non-blocking connect): a stack socket's stream shares its connection with the
/// socket `bsd` keeps (options, the pending error), any other descriptor is taken
/// for a kernel socket. `ENOTCONN` for a stack socket that is not connected.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn tcp_stream(fd: OwnedFd) -> io::Result<crate::socket::TcpStream> {
    let conn = match stack_socket(fd.as_fd())? {
        Some(s) => Some(s.connection().ok_or_else(|| errno_error(libc::ENOTCONN))?),
        None => None,
    };
    Ok(crate::socket::TcpStream::from_parts(fd, conn))
}

/// `getsockopt(2)`. For an option of another level than the socket's (a TCP
/// option of a datagram socket, an IPv6 option of an IPv4 one), `EOPNOTSUPP` on
/// an IPv4 socket and `ENOPROTOOPT` on an IPv6 one, as Linux answers;
/// `ENOPROTOOPT` for one that cannot be read (the memberships).
pub fn get_option(fd: BorrowedFd<'_>, opt: SockOpt) -> io::Result<OptValue> {
    match stack_socket(fd)? {
        Some(s) => options::get(&s, opt),
        None => options::get_kernel(fd, opt),
    }
}

/// `setsockopt(2)`, with the rules Linux applies to the values: a buffer size is
/// doubled (and read back doubled), `-1` sets the default TTL, the keep-alive
/// times are checked (`EINVAL`), `IPV6_V6ONLY` is refused once bound (`EINVAL`), a
/// membership is for datagram sockets (`EPROTO`). Read-only options:
/// `ENOPROTOOPT`. Options set before `connect` or `listen` apply to the
/// connection or listener.
pub fn set_option(fd: BorrowedFd<'_>, opt: SockOpt, value: OptValue) -> io::Result<()> {
    match stack_socket(fd)? {
        Some(s) => options::set(&s, opt, value),
        None => options::set_kernel(fd, opt, value),
    }
}

/// Which way a call moves bytes (see [`check_transfer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transfer {
    /// `send`, `sendto`, `sendmsg`, `write`.
    Send,
    /// `recv`, `recvfrom`, `recvmsg`, `read`.
    Receive,
}

/// What `fd` is, for a call about to move bytes on it: `Ok(None)` for a
/// descriptor that is no stack socket, `Ok(Some(kind))` for a stack socket the
/// call may go on with. A stack stream socket that is not connected (never
/// connected, listening, or its connect failed) gets Linux's answer at once,
/// never a wait: `EPIPE` to send (a C caller raises `SIGPIPE` with it unless
/// `MSG_NOSIGNAL`, as Linux does), `ENOTCONN` to receive; a non-blocking
/// connect that failed gives its error once first, as `SO_ERROR` would.
///
/// A socket pair would take bytes written before `connect` (the stack discards
/// them when it connects), and a read would wait: [`send_to`] and [`recv`] make
/// this check themselves; it is here for callers that move a stream's bytes with
/// the descriptor's own calls. A datagram socket is always `Ok` here: its bytes
/// go through [`send_to`] and [`recv_from`], which check what `shutdown` shut.
pub fn check_transfer(fd: BorrowedFd<'_>, transfer: Transfer) -> io::Result<Option<SocketKind>> {
    let Some(s) = stack_socket(fd)? else {
        return Ok(None);
    };
    if !s.is_datagram() {
        s.check_transfer(transfer)?;
    }
    Ok(Some(s.kind()))
}

/// `shutdown(2)` (`how`: `SHUT_RD`, `SHUT_WR`, `SHUT_RDWR`; else `EINVAL`), as
/// Linux answers it: `ENOTCONN` on a socket that is not connected; on a
/// connection, `SHUT_WR` sends FIN once what was written is sent, `SHUT_RD` makes
/// reads end (what arrives after is dropped); a listener shut down for reading
/// stops listening (a blocked `accept` fails with `EINVAL`); a connect under way
/// is abandoned. A datagram socket must be connected; after `SHUT_WR` its sends
/// fail with `EPIPE`, after `SHUT_RD` its receives return 0 instead of waiting.
pub fn shutdown(fd: BorrowedFd<'_>, how: i32) -> io::Result<()> {
    let how = match how {
        libc::SHUT_RD => std::net::Shutdown::Read,
        libc::SHUT_WR => std::net::Shutdown::Write,
        libc::SHUT_RDWR => std::net::Shutdown::Both,
        _ => return Err(errno_error(libc::EINVAL)),
    };
    match stack_socket(fd)? {
        Some(s) => s.shutdown(fd, how),
        None => sys::shutdown(fd, how),
    }
}

/// `sendto(2)`: one datagram to `dest` (`None`: the connected peer; `EDESTADDRREQ`
/// without one). On a stream socket, `dest` is ignored once connected, as on Linux
/// (`EPIPE` before, see [`check_transfer`]). The first send binds an unbound
/// datagram socket. Never raises `SIGPIPE`; `flags` as `send(2)` (`MSG_DONTWAIT`...).
pub fn send_to(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    dest: Option<SocketAddr>,
    flags: i32,
) -> io::Result<usize> {
    let Some(s) = stack_socket(fd)? else {
        return sys::KernelSocket(fd).sendto(buf, dest.as_ref(), flags);
    };
    s.check_transfer(Transfer::Send)?;
    if s.is_datagram() {
        return s.datagram()?.send_to(fd, buf, dest, flags);
    }
    stream_outcome(&s, sys::KernelSocket(fd).sendto(buf, None, flags))
}

/// `send(2)`: [`send_to`] the connected peer.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: i32) -> io::Result<usize> {
    send_to(fd, buf, None, flags)
}

/// `recvfrom(2)`: one datagram (truncated to `buf`) and its source, or a stream's
/// bytes (as [`recv`]) and its peer. `flags` as `recv(2)` (`MSG_PEEK`,
/// `MSG_DONTWAIT`...).
pub fn recv_from(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: i32,
) -> io::Result<(usize, SocketAddr)> {
    match stack_socket(fd)? {
        Some(s) if s.is_datagram() => recv_datagram(&s, fd, buf, flags),
        Some(s) => {
            let n = recv_stream(&s, fd, buf, flags)?;
            Ok((n, s.peer_addr()?))
        }
        None => match sys::KernelSocket(fd).recvfrom(buf, flags)? {
            (n, Some(from)) => Ok((n, from)),
            (n, None) => Ok((n, sys::KernelSocket(fd).peer_addr()?)),
        },
    }
}

/// `recv(2)`: one datagram (truncated to `buf`), or a stream's bytes; a stream the
/// peer reset gives `ECONNRESET` once where the descriptor says end of stream.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<usize> {
    match stack_socket(fd)? {
        Some(s) if s.is_datagram() => recv_datagram(&s, fd, buf, flags).map(|(n, _)| n),
        Some(s) => recv_stream(&s, fd, buf, flags),
        None => sys::KernelSocket(fd).recvfrom(buf, flags).map(|(n, _)| n),
    }
}

/// A stack datagram socket's `recvfrom`: after `shutdown(SHUT_RD)`, 0 (and the
/// peer) when nothing is queued, instead of a wait.
fn recv_datagram(
    s: &StackSocket,
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: i32,
) -> io::Result<(usize, SocketAddr)> {
    let udp = s.datagram()?;
    if !s.reads_shut() {
        return udp.recv_from(fd, buf, flags);
    }
    match udp.recv_from(fd, buf, flags | libc::MSG_DONTWAIT) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((0, udp.peer_addr()?)),
        other => other,
    }
}

/// A stack stream socket's `recv`.
fn recv_stream(
    s: &StackSocket,
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: i32,
) -> io::Result<usize> {
    s.check_transfer(Transfer::Receive)?;
    let asked = buf.len();
    match sys::KernelSocket(fd).recvfrom(buf, flags).map(|(n, _)| n) {
        Ok(0) if asked > 0 => match s.take_error() {
            0 => Ok(0),
            code => Err(s.error(code)),
        },
        other => stream_outcome(s, other),
    }
}

/// A stream call's outcome, with the reset the pump recorded told once: in place of
/// the `EPIPE` the socket pair gives for it, or consumed by the `ECONNRESET` the
/// pair itself gave.
fn stream_outcome(s: &StackSocket, result: io::Result<usize>) -> io::Result<usize> {
    match result {
        Err(e) if e.raw_os_error() == Some(libc::EPIPE) => match s.take_error() {
            0 => Err(e),
            code => Err(s.error(code)),
        },
        Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
            s.take_error();
            Err(e)
        }
        other => other,
    }
}

/// `ioctl(FIONREAD)`: the bytes waiting on a stream socket, the length of the next
/// datagram on a datagram socket.
pub fn bytes_to_read(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let waiting = sys::bytes_readable(fd)?;
    match stack_socket(fd)? {
        // Unconnected, each datagram travels behind its address on the pair.
        Some(s) if s.is_datagram() && !s.is_connected() => {
            Ok(waiting.saturating_sub(crate::pump::ADDR_BYTES))
        }
        _ => Ok(waiting),
    }
}

/// The errno a C caller gets for `e`: its OS error, the one a stack's start failure
/// carries (the kernel backend explains it in a message), `ENETDOWN` for a stack
/// whose thread failed, or `EIO`.
pub fn errno(e: &io::Error) -> i32 {
    let code = crate::stack::errno_of(e);
    // A stack whose thread failed says why in an error of this kind.
    let down = (e.kind() == io::ErrorKind::NetworkDown).then_some(libc::ENETDOWN);
    code.or(down).unwrap_or(libc::EIO)
}
