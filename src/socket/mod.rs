//! Sockets of a stack as the application sees them: ordinary file descriptors.
//!
//! A [`TcpStream`] is one end of an AF_UNIX stream socket pair whose other end the
//! pump bridges to a smoltcp socket, so `read`, `write`, `poll` and `epoll` work on it
//! from any thread with no help from this library. A [`TcpListener`] is one end of a
//! SOCK_SEQPACKET pair on which the pump passes each new connection's descriptor
//! (SCM_RIGHTS): the listener becomes readable when a connection waits, and `accept`
//! is a `recvmsg`.
//!
//! A [`UdpSocket`] is one end of a SOCK_SEQPACKET pair too, so that datagram
//! boundaries hold; its source and destination addresses travel in front of each
//! datagram until it is connected.
//!
//! The few things a socket pair cannot say by itself (a reset peer, the addresses)
//! travel beside the descriptor.
//!
//! On a stack of the kernel backend, both types hold a real kernel socket made in
//! the stack's namespace instead, and the system calls do everything (`connect`,
//! `bind`, `listen`, `accept4`, `getsockname`...): nothing travels beside it.

/// The descriptor traits of a socket type whose `fd` field is its descriptor:
/// `AsFd`, `AsRawFd`, `IntoRawFd` and `From<_> for OwnedFd`, as std's sockets
/// have them.
macro_rules! descriptor_traits {
    ($t:ty) => {
        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.fd)
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.fd)
            }
        }

        impl std::os::fd::IntoRawFd for $t {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.fd)
            }
        }

        impl From<$t> for std::os::fd::OwnedFd {
            fn from(socket: $t) -> std::os::fd::OwnedFd {
                socket.fd
            }
        }
    };
}
pub(crate) use descriptor_traits;

/// The controls every socket type's descriptor has on its own (the kernel keeps
/// them on the socket pair, or on the kernel socket): blocking mode and the
/// `SO_RCVTIMEO`/`SO_SNDTIMEO` timeouts, with std's signatures.
macro_rules! descriptor_controls {
    () => {
        /// Moves the descriptor into or out of non-blocking mode.
        pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
            $crate::sys::set_nonblocking(std::os::fd::AsFd::as_fd(&self.fd), nonblocking)
        }

        /// `SO_RCVTIMEO`: how long a read may block (`None`: forever; a zero
        /// duration is an error, as in std).
        pub fn set_read_timeout(
            &self,
            timeout: Option<std::time::Duration>,
        ) -> std::io::Result<()> {
            $crate::sys::set_timeout(
                std::os::fd::AsFd::as_fd(&self.fd),
                libc::SO_RCVTIMEO,
                timeout,
            )
        }

        /// `SO_SNDTIMEO`: how long a write may block (`None`: forever).
        pub fn set_write_timeout(
            &self,
            timeout: Option<std::time::Duration>,
        ) -> std::io::Result<()> {
            $crate::sys::set_timeout(
                std::os::fd::AsFd::as_fd(&self.fd),
                libc::SO_SNDTIMEO,
                timeout,
            )
        }

        /// `SO_RCVTIMEO`.
        pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            $crate::sys::timeout(std::os::fd::AsFd::as_fd(&self.fd), libc::SO_RCVTIMEO)
        }

        /// `SO_SNDTIMEO`.
        pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            $crate::sys::timeout(std::os::fd::AsFd::as_fd(&self.fd), libc::SO_SNDTIMEO)
        }
    };
}
pub(crate) use descriptor_controls;

mod options;
mod ping;
mod resolve;
mod tcp;
mod udp;

pub use options::SocketConfig;
pub(crate) use options::{checked_keepalive, checked_ttl};
pub use ping::PingSocket;
#[cfg(feature = "tokio")]
pub(crate) use resolve::Targets;
pub use resolve::ToStackAddrs;
pub(crate) use tcp::{Acceptor, Conn};
pub use tcp::{TcpListener, TcpStream};
pub(crate) use udp::Udp;
pub use udp::UdpSocket;

use std::io;
use std::net::SocketAddr;

/// For a stack of the kernel backend, the kernel socket a socket type holds, made
/// in the stack's namespace (through [`Stack::msocket`](crate::Stack::msocket), so without naming the
/// backend) for `addr`'s family: SOCK_STREAM (TCP), SOCK_DGRAM (UDP), or SOCK_RAW
/// here meaning a ping socket (SOCK_DGRAM with the family's ICMP, as Linux has
/// them). Close-on-exec. `None` for a userspace stack, whose sockets are pairs the
/// pump serves.
pub(crate) fn kernel_socket(
    stack: &crate::stack::Stack,
    addr: &SocketAddr,
    kind: libc::c_int,
) -> io::Result<Option<std::os::fd::OwnedFd>> {
    if stack.backend() != crate::Backend::Kernel {
        return Ok(None);
    }
    let v4 = addr.is_ipv4();
    let domain = if v4 { libc::AF_INET } else { libc::AF_INET6 };
    let (ty, protocol) = match kind {
        libc::SOCK_RAW if v4 => (libc::SOCK_DGRAM, libc::IPPROTO_ICMP),
        libc::SOCK_RAW => (libc::SOCK_DGRAM, libc::IPPROTO_ICMPV6),
        ty => (ty, 0),
    };
    stack
        .msocket(domain, ty | libc::SOCK_CLOEXEC, protocol)
        .map(Some)
}

/// Resolves `addr` as std::net does, its names through `stack` (none: names are
/// refused), trying each address until `f` succeeds.
pub(crate) fn each_addr<A: ToStackAddrs, T>(
    stack: Option<&crate::stack::Stack>,
    addr: A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in resolve::stack_addrs(stack, addr)? {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(no_addresses))
}

/// The error of an address argument that stands for no address at all, as std's.
pub(crate) fn no_addresses() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "could not resolve to any addresses",
    )
}
