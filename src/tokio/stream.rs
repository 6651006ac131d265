//! The async TCP stream: a [`crate::TcpStream`] in tokio's `AsyncFd`, connected by a
//! non-blocking `connect` through `bsd`.

use super::split::{self, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use super::{addresses, poll_io, register, Direction, READ_WRITE};
use crate::bsd;
use crate::socket::{no_addresses, TcpStream as StdStream, ToStackAddrs};
use crate::stack::Stack;
use ::tokio::io::unix::AsyncFd;
use ::tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

/// A TCP connection on a [`Stack`], for tokio: `tokio::net::TcpStream`'s shape,
/// over a [`crate::TcpStream`].
///
/// It reads and writes through [`AsyncRead`] and [`AsyncWrite`] (vectored writes
/// too), so `tokio::io`'s helpers, hyper (through `hyper_util::rt::TokioIo`) and
/// anything else written for tokio's streams work on it unchanged.
///
/// ```no_run
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let stack = vdestack::Stack::new("vde:///tmp/sw", None)?;
/// stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;
/// let mut stream = vdestack::tokio::TcpStream::connect(&stack, "10.0.0.1:7").await?;
/// stream.write_all(b"hello").await?;
/// let mut reply = [0; 5];
/// stream.read_exact(&mut reply).await?;
/// # Ok(()) }
/// ```
pub struct TcpStream {
    io: AsyncFd<StdStream>,
}

impl TcpStream {
    /// Opens a connection from `stack` to `addr`, trying each address it stands
    /// for in turn (names resolved through the stack, see the [module
    /// doc](super)), without blocking a worker thread.
    ///
    /// Errors as [`crate::TcpStream::connect`]'s: `ECONNREFUSED`, `ENETUNREACH`
    /// (no route), `EHOSTUNREACH`, `ETIMEDOUT`; `ENETDOWN` when the stack is gone.
    /// Dropping the future before it is ready closes the socket: nothing is left
    /// behind.
    pub async fn connect<A: ToStackAddrs>(stack: &Stack, addr: A) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in addresses(stack, addr).await? {
            match Self::connect_addr(stack, addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(no_addresses))
    }

    async fn connect_addr(stack: &Stack, addr: SocketAddr) -> io::Result<TcpStream> {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let fd = bsd::socket(stack, domain, ty, 0)?;
        match bsd::connect(fd.as_fd(), addr) {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            other => other?,
        }
        let fd = register(fd, Interest::WRITABLE)?;
        // Writable once the connect is decided, and SO_ERROR says how.
        fd.async_io(Interest::WRITABLE, |fd| connect_outcome(fd.as_fd()))
            .await?;
        Self::from_std(bsd::tcp_stream(fd.into_inner())?)
    }

    /// Wraps a connected blocking stream, putting it in non-blocking mode (tokio's
    /// own `from_std` leaves that to the caller). Must be called inside a runtime.
    pub fn from_std(stream: StdStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream {
            io: register(stream, READ_WRITE)?,
        })
    }

    /// The blocking stream inside, deregistered from the runtime. It stays in
    /// non-blocking mode, as tokio's `into_std` leaves it:
    /// [`crate::TcpStream::set_nonblocking`] changes that.
    pub fn into_std(self) -> io::Result<StdStream> {
        Ok(self.io.into_inner())
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Enables or disables Nagle's algorithm (`TCP_NODELAY`).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// `IP_TTL` of the segments sent (see [`crate::TcpStream::set_ttl`]).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// `SO_LINGER` (see [`crate::TcpStream::set_linger`]: `Some(Duration::ZERO)`
    /// resets the connection when the stream is dropped).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.io.get_ref().set_linger(linger)
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.io.get_ref().linger()
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Waits until the stream may be read (data, end of stream or an error).
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await.map(drop)
    }

    /// Waits until the stream may be written.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await.map(drop)
    }

    /// Polls for read readiness, as [`TcpStream::readable`] waits for it.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_read_ready(cx).map_ok(drop)
    }

    /// Polls for write readiness, as [`TcpStream::writable`] waits for it.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_write_ready(cx).map_ok(drop)
    }

    /// Reads what is there without waiting: `WouldBlock` when the runtime has not
    /// seen the stream readable since the last `WouldBlock` (wait with
    /// [`TcpStream::readable`]); 0 at end of stream.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .try_io(Interest::READABLE, |mut stream| stream.read(buf))
    }

    /// Like [`TcpStream::try_read`], into several buffers in order.
    pub fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.io
            .try_io(Interest::READABLE, |mut stream| stream.read_vectored(bufs))
    }

    /// Writes what fits without waiting: `WouldBlock` when the runtime has not
    /// seen the stream writable since the last `WouldBlock` (wait with
    /// [`TcpStream::writable`]).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .try_io(Interest::WRITABLE, |mut stream| stream.write(buf))
    }

    /// Like [`TcpStream::try_write`], from several buffers in order.
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io
            .try_io(Interest::WRITABLE, |mut stream| stream.write_vectored(bufs))
    }

    /// Receives bytes without taking them: the next read gets them again
    /// (`MSG_PEEK`). Waits for some; 0 at end of stream.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .async_io(Interest::READABLE, |stream| stream.peek(buf))
            .await
    }

    /// Splits the stream into a reading and a writing half that borrow it, to
    /// read and write at once in one task (`tokio::io::copy` between them...).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        split::split(self)
    }

    /// Splits the stream into halves that own it, to read and write from two
    /// tasks; [`OwnedReadHalf::reunite`] makes the stream again. Dropping the
    /// writing half shuts the stream down for writing (the peer reads end of
    /// stream), unless [`OwnedWriteHalf::forget`] was called.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split::into_split(self)
    }

    pub(super) fn poll_read_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(poll_io(&self.io, cx, Direction::Read, |mut stream| {
            stream.read(buf.initialize_unfilled())
        }))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    pub(super) fn poll_write_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_io(&self.io, cx, Direction::Write, |mut stream| {
            stream.write(buf)
        })
    }

    pub(super) fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_io(&self.io, cx, Direction::Write, |mut stream| {
            stream.write_vectored(bufs)
        })
    }

    /// Shuts the stream down (writing: FIN once what was written is delivered).
    pub(super) fn shutdown_std(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }
}

/// Whether the non-blocking connect on `fd` ended: its error, or `WouldBlock`
/// while it is under way (the runtime's readiness is then cleared, and the
/// task waits for the next).
fn connect_outcome(fd: BorrowedFd<'_>) -> io::Result<()> {
    if let Some(e) = bsd::take_error(fd)? {
        return Err(e);
    }
    match bsd::peer_addr(fd) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e),
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored_priv(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Nothing to flush: a write is on the descriptor when it returns.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts the stream down for writing (`SHUT_WR`): the peer reads end of stream
    /// after the bytes written before.
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_std(Shutdown::Write))
    }
}

super::async_socket_traits!(TcpStream, StdStream);
