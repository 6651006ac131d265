//! Async sockets of a stack for tokio (cargo feature `tokio`): [`TcpStream`],
//! [`TcpListener`] and [`UdpSocket`], shaped like `tokio::net`'s, with the stack
//! as the constructors' first argument.
//!
//! Most Rust network code is async; a stack's descriptors already fit tokio's
//! reactor, since they are AF_UNIX socket pairs bridged by the stack's thread (the
//! userspace backend) or kernel sockets in the stack's namespace (the kernel
//! backend), both of which epoll watches. So each type here is the blocking type
//! of the crate root ([`crate::TcpStream`]...) in non-blocking mode inside tokio's
//! [`AsyncFd`]: the runtime says when the descriptor is ready, and each call is the
//! blocking type's own, which gives the same errors (a reset read as
//! `ECONNRESET` once, `EPIPE`, `ENETDOWN` once the stack is gone...) and asks the
//! stack what the descriptor cannot say (addresses, options, the pending error).
//!
//! What waits, and where:
//!
//! - [`TcpStream::connect`] never blocks a worker thread: it makes a non-blocking
//!   connect through [`crate::bsd`] (`EINPROGRESS`), waits for the descriptor to
//!   turn writable, and reads `SO_ERROR`. The future owns the descriptor: dropping
//!   it before the connection is up closes the descriptor, and the stack abandons
//!   the handshake.
//! - Addresses are [`ToStackAddrs`], as for the blocking
//!   types. Numeric ones are used at once; names are resolved through the stack
//!   ([`Stack::lookup_host`]) on tokio's blocking pool
//!   ([`spawn_blocking`](::tokio::task::spawn_blocking)), since a lookup waits for
//!   the stack's name servers (a future dropped meanwhile leaves the lookup to
//!   end on its thread, within the resolver's timeouts). A socket's `connect` and
//!   `send_to` take addresses only, as the blocking types' do.
//! - Binding, listening, a UDP `connect` and options are requests the stack's own
//!   thread (or its namespace's helper) answers at once: they are made on the
//!   calling task, as tokio makes its system calls there.
//!
//! Everything here must run inside a tokio runtime with I/O enabled
//! (`enable_io`, or `enable_all`), as `tokio::net` must.
//!
//! ```no_run
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use vdestack::tokio::{TcpListener, TcpStream};
//!
//! # #[tokio::main]
//! # async fn main() -> std::io::Result<()> {
//! let server = vdestack::Stack::new("vde:///tmp/sw", None)?;
//! let client = vdestack::Stack::new("vde:///tmp/sw", None)?;
//! server.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
//! client.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;
//!
//! let listener = TcpListener::bind(&server, "0.0.0.0:7").await?;
//! tokio::spawn(async move {
//!     while let Ok((mut stream, _)) = listener.accept().await {
//!         tokio::spawn(async move {
//!             let (mut rd, mut wr) = stream.split();
//!             let _ = tokio::io::copy(&mut rd, &mut wr).await;
//!         });
//!     }
//! });
//!
//! let mut stream = TcpStream::connect(&client, "10.0.0.1:7").await?;
//! stream.write_all(b"hello").await?;
//! let mut reply = [0; 5];
//! stream.read_exact(&mut reply).await?;
//! # Ok(()) }
//! ```

/// What every socket type here has over its `io: AsyncFd<$std>` field, as
/// `tokio::net`'s types have it: `AsFd` and `AsRawFd`, `TryFrom<$std>` (its
/// `from_std`), and the blocking type's `Debug`.
macro_rules! async_socket_traits {
    ($t:ident, $std:ty) => {
        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.io.get_ref())
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.io)
            }
        }

        impl TryFrom<$std> for $t {
            type Error = std::io::Error;

            #[doc = concat!("[`", stringify!($t), "::from_std`].")]
            fn try_from(socket: $std) -> std::io::Result<$t> {
                $t::from_std(socket)
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.io.get_ref().fmt(f)
            }
        }
    };
}
use async_socket_traits;

mod listener;
mod split;
mod stream;
mod udp;

pub use listener::TcpListener;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use stream::TcpStream;
pub use udp::UdpSocket;

use crate::socket::{no_addresses, Targets, ToStackAddrs};
use crate::stack::Stack;
use ::tokio::io::unix::AsyncFd;
use ::tokio::io::Interest;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::task::{ready, Context, Poll};

/// The addresses `addr` stands for on `stack`: numeric ones at once, names
/// resolved through the stack on the blocking pool.
async fn addresses<A: ToStackAddrs>(stack: &Stack, addr: A) -> io::Result<Vec<SocketAddr>> {
    let targets = Targets::of(addr)?;
    if let Some(addrs) = targets.numeric() {
        return Ok(addrs);
    }
    let stack = stack.clone();
    ::tokio::task::spawn_blocking(move || targets.resolve(Some(&stack)))
        .await
        // The lookup panicked, or the runtime is shutting down.
        .map_err(io::Error::other)?
}

/// The one address a datagram goes to (the first `addr` stands for; names are
/// refused, as [`crate::UdpSocket::send_to`] refuses them).
fn first_address<A: ToStackAddrs>(addr: A) -> io::Result<SocketAddr> {
    Targets::of(addr)?
        .resolve(None)?
        .into_iter()
        .next()
        .ok_or_else(no_addresses)
}

/// Registers `socket`, a socket type of this crate, with the current runtime's
/// reactor (`AsyncFd`), for the readiness of `interest`.
///
/// tokio 1.54 deprecates `AsyncFd::new` and `with_interest` for their
/// `unsafe` successors (`register`), because an arbitrary `AsRawFd` value need not
/// own its descriptor, which could then be closed under the reactor. The types
/// registered here own theirs (an `OwnedFd` field, never replaced), which is the
/// contract `register` states; calling it would bring `unsafe` into this module,
/// which the crate keeps to the modules that talk to the system.
#[allow(deprecated)]
fn register<T: AsRawFd>(socket: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    AsyncFd::with_interest(socket, interest)
}

/// Both readinesses: what a socket's `AsyncFd` waits for.
const READ_WRITE: Interest = Interest::READABLE.add(Interest::WRITABLE);

/// Which readiness a call waits for.
#[derive(Clone, Copy)]
enum Direction {
    Read,
    Write,
}

/// Polls `f` on `io`'s inner socket until it does not answer `WouldBlock`, each
/// `WouldBlock` clearing the readiness the runtime reported, so that the task
/// waits for the next.
fn poll_io<T: AsRawFd, R>(
    io: &AsyncFd<T>,
    cx: &mut Context<'_>,
    direction: Direction,
    mut f: impl FnMut(&T) -> io::Result<R>,
) -> Poll<io::Result<R>> {
    loop {
        let mut guard = ready!(match direction {
            Direction::Read => io.poll_read_ready(cx),
            Direction::Write => io.poll_write_ready(cx),
        })?;
        if let Ok(result) = guard.try_io(|io| f(io.get_ref())) {
            return Poll::Ready(result);
        }
    }
}
