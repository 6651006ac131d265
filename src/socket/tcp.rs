//! TCP streams and listeners, mirroring `std::net` with the stack as first argument.

use super::{each_addr, sys};
use crate::pump::{decode_accept, ConnShared, Control, PumpHandle};
use crate::stack::{Stack, StackCtx};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The backlog `std::net::TcpListener::bind` uses.
const DEFAULT_BACKLOG: usize = 128;

/// A TCP connection on a [`Stack`].
///
/// Its descriptor is a real kernel fd: besides `Read`/`Write`, it can be handed to
/// `poll`, `epoll` or mio, or sent to another thread.
///
/// ```no_run
/// use std::io::{Read, Write};
/// # fn main() -> std::io::Result<()> {
/// let stack = vdestack::Stack::new("vde:///tmp/sw", None)?;
/// stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;
/// let mut stream = vdestack::TcpStream::connect(&stack, "10.0.0.1:7")?;
/// stream.write_all(b"hello")?;
/// let mut reply = [0; 5];
/// stream.read_exact(&mut reply)?;
/// # Ok(()) }
/// ```
pub struct TcpStream {
    fd: OwnedFd,
    id: u64,
    shared: Arc<ConnShared>,
    pump: PumpHandle,
    local: SocketAddr,
    peer: SocketAddr,
    nodelay: AtomicBool,
}

impl TcpStream {
    /// Opens a connection from `stack` to `addr`, waiting until it is established.
    ///
    /// Errors as Linux gives them: `ECONNREFUSED`, `ENETUNREACH` (no route),
    /// `EHOSTUNREACH` (the next hop does not answer ARP), `ETIMEDOUT`.
    pub fn connect<A: ToSocketAddrs>(stack: &Stack, addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |addr| Self::open(stack, addr, None))
    }

    /// Like [`TcpStream::connect`], giving up after `timeout` (`ETIMEDOUT`).
    pub fn connect_timeout(
        stack: &Stack,
        addr: &SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        Self::open(stack, *addr, Some(timeout))
    }

    fn open(stack: &Stack, remote: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let (app_end, pump_end) = sys::pair(libc::SOCK_STREAM)?;
        let pump = stack.pump().clone();
        let id = stack.ctx().next_socket_id();
        let shared = Arc::new(ConnShared::default());
        let (reply, answer) = crossbeam_channel::bounded(1);
        pump.send(Control::Connect {
            id,
            fd: pump_end,
            remote,
            local: None,
            shared: shared.clone(),
            reply,
        })?;
        let result = match timeout {
            None => answer.recv().map_err(|_| gone()),
            Some(timeout) => match answer.recv_timeout(timeout) {
                Ok(result) => Ok(result),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    let _ = pump.send(Control::CancelConnect { id });
                    return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
                }
                Err(_) => Err(gone()),
            },
        };
        let local = result??;
        Ok(TcpStream {
            fd: app_end,
            id,
            shared,
            pump,
            local,
            peer: remote,
            nodelay: AtomicBool::new(false),
        })
    }

    /// A second handle to the same connection (a `dup` of the descriptor), e.g. to
    /// read in one thread and write in another.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            fd: self.fd.try_clone()?,
            id: self.id,
            shared: self.shared.clone(),
            pump: self.pump.clone(),
            local: self.local,
            peer: self.peer,
            nodelay: AtomicBool::new(self.nodelay.load(Ordering::Relaxed)),
        })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Shuts down reading, writing or both. Shutting down writing sends FIN once the
    /// bytes written before it are delivered.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        sys::shutdown(self.fd.as_fd(), how)
    }

    /// Enables or disables Nagle's algorithm (TCP_NODELAY).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.pump.send(Control::SetNodelay {
            id: self.id,
            on: nodelay,
        })?;
        self.nodelay.store(nodelay, Ordering::Relaxed);
        Ok(())
    }

    /// Whether TCP_NODELAY is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.nodelay.load(Ordering::Relaxed))
    }

    /// Moves the descriptor into or out of non-blocking mode.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::set_nonblocking(self.fd.as_fd(), nonblocking)
    }

    /// Read timeout (`None`: block forever). A zero duration is an error, as in std.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        sys::set_timeout(self.fd.as_fd(), libc::SO_RCVTIMEO, timeout)
    }

    /// Write timeout (`None`: block forever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        sys::set_timeout(self.fd.as_fd(), libc::SO_SNDTIMEO, timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        sys::timeout(self.fd.as_fd(), libc::SO_RCVTIMEO)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        sys::timeout(self.fd.as_fd(), libc::SO_SNDTIMEO)
    }

    /// The pending socket error (SO_ERROR), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.shared.take_error())
    }

    fn read_fd(&self, buf: &mut [u8]) -> io::Result<usize> {
        match sys::read(self.fd.as_fd(), buf) {
            // EOF after a reset is the reset (once), as on a kernel socket.
            Ok(0) if !buf.is_empty() => self.shared.take_error().map_or(Ok(0), Err),
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                self.shared.take_error();
                Err(e)
            }
            other => other,
        }
    }

    fn write_fd(&self, buf: &[u8]) -> io::Result<usize> {
        match sys::send(self.fd.as_fd(), buf) {
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                Err(self.shared.take_error().unwrap_or(e))
            }
            other => other,
        }
    }
}

fn gone() -> io::Error {
    io::Error::from_raw_os_error(libc::ENETDOWN)
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_fd(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_fd(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_fd(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_fd(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.fd.as_raw_fd())
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl IntoRawFd for TcpStream {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

impl From<TcpStream> for OwnedFd {
    fn from(stream: TcpStream) -> OwnedFd {
        stream.fd
    }
}

/// A TCP listener on a [`Stack`].
///
/// Holds a backlog of 128 connections that completed their handshake but were not
/// accepted yet; SYNs beyond that are dropped (the peer retries), as on Linux.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let stack = vdestack::Stack::new("vde:///tmp/sw", None)?;
/// stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
/// let listener = vdestack::TcpListener::bind(&stack, "0.0.0.0:7")?;
/// let (stream, peer) = listener.accept()?;
/// # Ok(()) }
/// ```
pub struct TcpListener {
    fd: OwnedFd,
    local: SocketAddr,
    ctx: StackCtx,
    accepted: Arc<AtomicU64>,
}

impl TcpListener {
    /// Listens on `addr` (port 0: an ephemeral port). `EADDRINUSE` if the port is
    /// taken, `EADDRNOTAVAIL` if the stack does not have the address.
    pub fn bind<A: ToSocketAddrs>(stack: &Stack, addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |addr| Self::bind_one(stack, addr))
    }

    fn bind_one(stack: &Stack, addr: SocketAddr) -> io::Result<TcpListener> {
        let pump = stack.pump();
        let local = pump.request(|reply| Control::Bind { local: addr, reply })??;
        let (app_end, pump_end) = sys::pair(libc::SOCK_SEQPACKET)?;
        let accepted = Arc::new(AtomicU64::new(0));
        let id = stack.ctx().next_socket_id();
        pump.request(|reply| Control::Listen {
            id,
            fd: pump_end,
            local,
            backlog: DEFAULT_BACKLOG,
            accepted: accepted.clone(),
            reply,
        })??;
        Ok(TcpListener {
            fd: app_end,
            local,
            ctx: stack.ctx().clone(),
            accepted,
        })
    }

    /// Waits for a connection (or `WouldBlock` when non-blocking and none waits).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut payload = [0u8; 64];
        let (len, fd) = sys::recv_with_fd(self.fd.as_fd(), &mut payload)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let (id, local, peer) = decode_accept(&payload[..len])
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EPROTO))?;
        let shared = self
            .ctx
            .take_handoff(id)
            .unwrap_or_else(|| Arc::new(ConnShared::default()));
        // Wake the pump: a backlog slot is free, and SYNs it dropped will be retried.
        let _ = self.ctx.pump.waker.wake();
        let stream = TcpStream {
            fd,
            id,
            shared,
            pump: self.ctx.pump.clone(),
            local,
            peer,
            nodelay: AtomicBool::new(false),
        };
        Ok((stream, peer))
    }

    /// An iterator over incoming connections, as `std::net::TcpListener::incoming`.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// The address listened on (with the port filled in).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Moves the descriptor into or out of non-blocking mode.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::set_nonblocking(self.fd.as_fd(), nonblocking)
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.fd.as_raw_fd())
            .field("local", &self.local)
            .finish()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
