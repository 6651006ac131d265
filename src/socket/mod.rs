//! Sockets of a stack as the application sees them: ordinary file descriptors.
//!
//! A [`TcpStream`] is one end of an AF_UNIX stream socket pair whose other end the
//! pump bridges to a smoltcp socket, so `read`, `write`, `poll` and `epoll` work on it
//! from any thread with no help from this library. A [`TcpListener`] is one end of a
//! SOCK_SEQPACKET pair on which the pump passes each new connection's descriptor
//! (SCM_RIGHTS): the listener becomes readable when a connection waits, and `accept`
//! is a `recvmsg`.
//!
//! The few things a socket pair cannot say by itself (a reset peer, the addresses)
//! travel beside the descriptor.
//!
//! On a stack of the kernel backend, both types hold a real kernel socket made in
//! the stack's namespace instead, and the system calls do everything (`connect`,
//! `bind`, `listen`, `accept4`, `getsockname`...): nothing travels beside it.

pub(crate) mod sys;
mod tcp;

#[cfg(feature = "capi")]
pub(crate) use tcp::{Acceptor, Conn};
pub use tcp::{TcpListener, TcpStream};

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `addr` the way std::net does, trying each address until `f` succeeds.
pub(crate) fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
