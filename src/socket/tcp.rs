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
    /// `None` for a kernel socket (the kernel backend), which needs nothing beside
    /// its descriptor.
    conn: Option<Conn>,
}

/// What a connection is beside its descriptor: shared by [`TcpStream`] and the C ABI.
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) shared: Arc<ConnShared>,
    pub(crate) pump: PumpHandle,
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
    nodelay: AtomicBool,
}

impl Conn {
    pub(crate) fn new(
        id: u64,
        shared: Arc<ConnShared>,
        pump: PumpHandle,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Conn {
        Conn {
            id,
            shared,
            pump,
            local,
            peer,
            nodelay: AtomicBool::new(false),
        }
    }

    /// TCP_NODELAY, applied by the pump.
    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.pump.send(Control::SetNodelay {
            id: self.id,
            on: nodelay,
        })?;
        self.nodelay.store(nodelay, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn nodelay(&self) -> bool {
        self.nodelay.load(Ordering::Relaxed)
    }
}

impl Clone for Conn {
    fn clone(&self) -> Conn {
        Conn {
            id: self.id,
            shared: self.shared.clone(),
            pump: self.pump.clone(),
            local: self.local,
            peer: self.peer,
            nodelay: AtomicBool::new(self.nodelay()),
        }
    }
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
        #[cfg(feature = "kernel-ns")]
        if let Some(kernel) = stack.kernel() {
            let domain = if remote.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            let fd = kernel.socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)?;
            sys::connect(fd.as_fd(), &remote, timeout)?;
            return Ok(TcpStream { fd, conn: None });
        }
        let (app_end, pump_end) = sys::pair(libc::SOCK_STREAM)?;
        let pump = stack.pump()?.clone();
        let id = stack.ctx()?.next_socket_id();
        let shared = Arc::new(ConnShared::default());
        let (reply, answer) = crossbeam_channel::bounded(1);
        pump.send(Control::Connect {
            id,
            fd: Some(pump_end),
            junk: 0,
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
            conn: Some(Conn::new(id, shared, pump, local, remote)),
        })
    }

    /// A second handle to the same connection (a `dup` of the descriptor), e.g. to
    /// read in one thread and write in another.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            fd: self.fd.try_clone()?,
            conn: self.conn.clone(),
        })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.conn {
            Some(conn) => Ok(conn.peer),
            None => self.kernel().peer_addr(),
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.conn {
            Some(conn) => Ok(conn.local),
            None => self.kernel().local_addr(),
        }
    }

    /// The kernel socket of a kernel-backend stream, seen through std's wrappers.
    fn kernel(&self) -> std::mem::ManuallyDrop<std::net::TcpStream> {
        sys::std_view(self.fd.as_fd())
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
        match &self.conn {
            Some(conn) => conn.set_nodelay(nodelay),
            None => self.kernel().set_nodelay(nodelay),
        }
    }

    /// Whether TCP_NODELAY is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        match &self.conn {
            Some(conn) => Ok(conn.nodelay()),
            None => self.kernel().nodelay(),
        }
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
        match &self.conn {
            Some(conn) => Ok(conn.shared.take_error()),
            None => self.kernel().take_error(),
        }
    }

    fn read_fd(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(conn) = &self.conn else {
            return sys::read(self.fd.as_fd(), buf);
        };
        match sys::read(self.fd.as_fd(), buf) {
            // EOF after a reset is the reset (once), as on a kernel socket.
            Ok(0) if !buf.is_empty() => conn.shared.take_error().map_or(Ok(0), Err),
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                conn.shared.take_error();
                Err(e)
            }
            other => other,
        }
    }

    fn write_fd(&self, buf: &[u8]) -> io::Result<usize> {
        match sys::send(self.fd.as_fd(), buf) {
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => match &self.conn {
                Some(conn) => Err(conn.shared.take_error().unwrap_or(e)),
                None => Err(e),
            },
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
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
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
/// Listens with a backlog of 128: it holds 129 connections that completed their
/// handshake but were not accepted yet (Linux queues one more than the backlog);
/// SYNs beyond that are dropped (the peer retries), as on Linux.
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
    /// `None` for a kernel socket (the kernel backend).
    acceptor: Option<Acceptor>,
}

/// What a listener is beside its descriptor: shared by [`TcpListener`] and the C ABI.
#[derive(Clone)]
pub(crate) struct Acceptor {
    ctx: StackCtx,
    pub(crate) local: SocketAddr,
    accepted: Arc<AtomicU64>,
}

impl Acceptor {
    /// Reserves `addr` (port 0: ephemeral) and listens on it; returns the
    /// application's end of the listener's socket pair.
    pub(crate) fn listen(
        ctx: &StackCtx,
        addr: SocketAddr,
        backlog: usize,
    ) -> io::Result<(OwnedFd, Acceptor)> {
        let local = ctx
            .pump
            .request(|reply| Control::Bind { local: addr, reply })??;
        Self::listen_bound(ctx, local, backlog)
    }

    /// Listens on an address already reserved with a `Bind` control.
    pub(crate) fn listen_bound(
        ctx: &StackCtx,
        local: SocketAddr,
        backlog: usize,
    ) -> io::Result<(OwnedFd, Acceptor)> {
        let (app_end, pump_end) = sys::pair(libc::SOCK_SEQPACKET)?;
        let accepted = Arc::new(AtomicU64::new(0));
        let id = ctx.next_socket_id();
        ctx.pump.request(|reply| Control::Listen {
            id,
            fd: pump_end,
            local,
            backlog,
            accepted: accepted.clone(),
            reply,
        })??;
        let acceptor = Acceptor {
            ctx: ctx.clone(),
            local,
            accepted,
        };
        Ok((app_end, acceptor))
    }

    /// Takes the next connection from the listener's end `fd` (blocking unless `fd`
    /// is non-blocking): its descriptor and what it is.
    pub(crate) fn accept(&self, fd: BorrowedFd<'_>) -> io::Result<(OwnedFd, Conn)> {
        let mut payload = [0u8; 64];
        let (len, conn_fd) = sys::recv_with_fd(fd, &mut payload)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        self.accepted.fetch_add(1, Ordering::Relaxed);
        // Wake the pump: a backlog slot is free, and SYNs it dropped will be retried.
        let _ = self.ctx.pump.waker.wake();
        let (id, local, peer) = decode_accept(&payload[..len])
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EPROTO))?;
        let shared = self
            .ctx
            .take_handoff(id)
            .unwrap_or_else(|| Arc::new(ConnShared::default()));
        let conn = Conn::new(id, shared, self.ctx.pump.clone(), local, peer);
        Ok((conn_fd, conn))
    }
}

impl TcpListener {
    /// Listens on `addr` (port 0: an ephemeral port). `EADDRINUSE` if the port is
    /// taken, `EADDRNOTAVAIL` if the stack does not have the address.
    pub fn bind<A: ToSocketAddrs>(stack: &Stack, addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |addr| Self::bind_one(stack, addr))
    }

    fn bind_one(stack: &Stack, addr: SocketAddr) -> io::Result<TcpListener> {
        #[cfg(feature = "kernel-ns")]
        if let Some(kernel) = stack.kernel() {
            let domain = if addr.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            let fd = kernel.socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)?;
            sys::reuse_addr(fd.as_fd())?;
            sys::bind(fd.as_fd(), &addr)?;
            sys::listen(fd.as_fd(), DEFAULT_BACKLOG)?;
            return Ok(TcpListener { fd, acceptor: None });
        }
        let (fd, acceptor) = Acceptor::listen(stack.ctx()?, addr, DEFAULT_BACKLOG)?;
        Ok(TcpListener {
            fd,
            acceptor: Some(acceptor),
        })
    }

    /// Waits for a connection (or `WouldBlock` when non-blocking and none waits).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let Some(acceptor) = &self.acceptor else {
            let listener: std::mem::ManuallyDrop<std::net::TcpListener> =
                sys::std_view(self.fd.as_fd());
            let (stream, peer) = listener.accept()?;
            let stream = TcpStream {
                fd: stream.into(),
                conn: None,
            };
            return Ok((stream, peer));
        };
        let (fd, conn) = acceptor.accept(self.fd.as_fd())?;
        let peer = conn.peer;
        Ok((
            TcpStream {
                fd,
                conn: Some(conn),
            },
            peer,
        ))
    }

    /// An iterator over incoming connections, as `std::net::TcpListener::incoming`.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// The address listened on (with the port filled in).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.acceptor {
            Some(acceptor) => Ok(acceptor.local),
            None => sys::std_view::<std::net::TcpListener>(self.fd.as_fd()).local_addr(),
        }
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
            .field("local", &self.local_addr().ok())
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
