//! The async TCP listener: a [`crate::TcpListener`] in tokio's `AsyncFd`.

use super::{addresses, poll_io, register, Direction, TcpStream};
use crate::socket::{TcpListener as StdListener, ToStackAddrs};
use crate::stack::Stack;
use ::tokio::io::unix::AsyncFd;
use ::tokio::io::Interest;
use std::io;
use std::net::SocketAddr;
use std::task::{ready, Context, Poll};

/// A TCP listener on a [`Stack`], for tokio: `tokio::net::TcpListener`'s shape,
/// over a [`crate::TcpListener`] (a backlog of 128).
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let stack = vdestack::Stack::new("vde:///tmp/sw", None)?;
/// stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
/// let listener = vdestack::tokio::TcpListener::bind(&stack, "0.0.0.0:80").await?;
/// loop {
///     let (stream, peer) = listener.accept().await?;
///     tokio::spawn(async move {
///         // serve `stream`
///         # drop((stream, peer));
///     });
/// }
/// # }
/// ```
pub struct TcpListener {
    io: AsyncFd<StdListener>,
}

impl TcpListener {
    /// Listens on `addr` (port 0: an ephemeral port), the first address it stands
    /// for that works (names resolved through the stack, see the [module
    /// doc](super)). Errors as [`crate::TcpListener::bind`]'s: `EADDRINUSE`,
    /// `EADDRNOTAVAIL`.
    pub async fn bind<A: ToStackAddrs>(stack: &Stack, addr: A) -> io::Result<TcpListener> {
        let addrs = addresses(stack, addr).await?;
        Self::from_std(StdListener::bind(stack, &addrs[..])?)
    }

    /// Waits for a connection: the stream and the peer's address. `EMFILE` when
    /// the process has no descriptor left (the connection stays queued), as
    /// [`crate::TcpListener::accept`].
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self
            .io
            .async_io(Interest::READABLE, |listener| listener.accept())
            .await?;
        Ok((TcpStream::from_std(stream)?, peer))
    }

    /// Polls for a connection, as [`TcpListener::accept`] waits for one.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (stream, peer) = ready!(poll_io(&self.io, cx, Direction::Read, |listener| {
            listener.accept()
        }))?;
        Poll::Ready(TcpStream::from_std(stream).map(|stream| (stream, peer)))
    }

    /// Wraps a blocking listener, putting it in non-blocking mode. Must be called
    /// inside a runtime.
    pub fn from_std(listener: StdListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            io: register(listener, Interest::READABLE)?,
        })
    }

    /// The blocking listener inside, deregistered from the runtime, still in
    /// non-blocking mode (as tokio's `into_std`).
    pub fn into_std(self) -> io::Result<StdListener> {
        Ok(self.io.into_inner())
    }

    /// The address listened on (with the port filled in).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// `IP_TTL` for the connections accepted from now on.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }
}

super::async_socket_traits!(TcpListener, StdListener);
