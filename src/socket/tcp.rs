//! TCP streams and listeners, mirroring `std::net` with the stack as first argument.

use super::options::{
    apply_to_kernel_socket, checked_keepalive, checked_ttl, kernel_socket_options, OptionRecord,
    SocketConfig,
};
use super::{each_addr, ToStackAddrs};
use crate::engine::{SocketOptions, TCP_BUFFER};
use crate::pump::{decode_accept, ConnShared, Control, EndToken, EndWatch, PumpHandle};
use crate::stack::{Stack, StackCtx};
use crate::sys;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// What a connection is beside its descriptor: shared by [`TcpStream`] and `bsd`.
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) shared: Arc<ConnShared>,
    pub(crate) pump: PumpHandle,
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
    pub(crate) options: OptionRecord,
}

impl Conn {
    pub(crate) fn new(
        id: u64,
        shared: Arc<ConnShared>,
        pump: PumpHandle,
        local: SocketAddr,
        peer: SocketAddr,
        options: SocketOptions,
    ) -> Conn {
        Conn {
            id,
            shared,
            pump,
            local,
            peer,
            options: OptionRecord::new(options),
        }
    }

    /// Changes the connection's options; the pump applies them.
    pub(crate) fn set_options(&self, change: impl FnOnce(&mut SocketOptions)) -> io::Result<()> {
        self.options.update(&self.pump, self.id, change)
    }

    /// The pending error (a reset, a timeout), once; with the reason if the stack
    /// failed.
    pub(crate) fn take_error(&self) -> Option<io::Error> {
        let e = self.shared.take_error()?;
        Some(self.pump.failure.explain(e))
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
            // A clone is the same socket: it shares the record.
            options: self.options.clone(),
        }
    }
}

impl TcpStream {
    /// Opens a connection from `stack` to `addr`, waiting until it is established.
    ///
    /// Errors as Linux gives them: `ECONNREFUSED`, `ENETUNREACH` (no route),
    /// `EHOSTUNREACH` (the next hop does not answer ARP), `ETIMEDOUT`.
    pub fn connect<A: ToStackAddrs>(stack: &Stack, addr: A) -> io::Result<TcpStream> {
        Self::connect_with(stack, addr, &SocketConfig::default())
    }

    /// Like [`TcpStream::connect`], with options chosen before connecting
    /// (buffer sizes, keep-alive, ...).
    pub fn connect_with<A: ToStackAddrs>(
        stack: &Stack,
        addr: A,
        config: &SocketConfig,
    ) -> io::Result<TcpStream> {
        each_addr(Some(stack), addr, |addr| {
            Self::open(stack, addr, None, config.options)
        })
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
        Self::open(stack, *addr, Some(timeout), SocketOptions::default())
    }

    fn open(
        stack: &Stack,
        remote: SocketAddr,
        timeout: Option<Duration>,
        options: SocketOptions,
    ) -> io::Result<TcpStream> {
        if let Some(fd) = super::kernel_socket(stack, &remote, libc::SOCK_STREAM)? {
            apply_to_kernel_socket(fd.as_fd(), &options, libc::SOCK_STREAM)?;
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
            options,
            shared: shared.clone(),
            reply,
        })?;
        let result = match timeout {
            None => answer.recv().map_err(|_| pump.gone()),
            Some(timeout) => match answer.recv_timeout(timeout) {
                Ok(result) => Ok(result),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    let _ = pump.send(Control::CancelConnect { id });
                    return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
                }
                Err(_) => Err(pump.gone()),
            },
        };
        let local = result??;
        Ok(TcpStream {
            fd: app_end,
            conn: Some(Conn::new(id, shared, pump, local, remote, options)),
        })
    }

    /// A second handle to the same connection (a `dup` of the descriptor), e.g. to
    /// read in one thread and write in another.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            fd: sys::duplicate(self.fd.as_fd())?,
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

    /// The kernel socket of a kernel-backend stream.
    fn kernel(&self) -> sys::KernelSocket<'_> {
        sys::KernelSocket(self.fd.as_fd())
    }

    /// Shuts down reading, writing or both. Shutting down writing sends FIN once the
    /// bytes written before it are delivered.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        sys::shutdown(self.fd.as_fd(), how)
    }

    /// Enables or disables Nagle's algorithm (TCP_NODELAY).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.set_options(|o| o.nodelay = nodelay)
    }

    /// Whether TCP_NODELAY is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.options()?.nodelay)
    }

    /// The options of this stream: its record, or a kernel socket's own.
    fn options(&self) -> io::Result<SocketOptions> {
        match &self.conn {
            Some(conn) => Ok(conn.options.get()),
            None => kernel_socket_options(self.fd.as_fd()),
        }
    }

    /// Changes options: through the pump, or with setsockopt on a kernel socket.
    fn set_options(&self, change: impl FnOnce(&mut SocketOptions)) -> io::Result<()> {
        match &self.conn {
            Some(conn) => conn.set_options(change),
            None => {
                let mut options = kernel_socket_options(self.fd.as_fd())?;
                change(&mut options);
                apply_to_kernel_socket(self.fd.as_fd(), &options, libc::SOCK_STREAM)
            }
        }
    }

    /// `IP_TTL` / `IPV6_UNICAST_HOPS` of the segments sent (1 to 255; unset:
    /// 64, or over IPv6 a router advertisement's hop limit).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = checked_ttl(ttl)?;
        self.set_options(|o| o.set_hop_limit(Some(ttl)))
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        Ok(self.options()?.hop_limit.into())
    }

    /// `SO_LINGER`. `Some(Duration::ZERO)`: dropping the stream (closing its last
    /// descriptor) resets the connection instead of closing it. Other values are
    /// kept, but closing never blocks: the close finishes in the background.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.set_options(|o| o.linger = linger)
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        Ok(self.options()?.linger)
    }

    /// `SO_KEEPALIVE`: probe an idle connection and fail it with `ETIMEDOUT`
    /// once the peer stopped answering (see [`TcpStream::set_keepalive_params`]).
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.set_options(|o| o.keepalive = on)
    }

    /// `SO_KEEPALIVE`.
    pub fn keepalive(&self) -> io::Result<bool> {
        Ok(self.options()?.keepalive)
    }

    /// `TCP_KEEPIDLE`, `TCP_KEEPINTVL` and `TCP_KEEPCNT`: the first probe after
    /// `idle` without traffic, the connection given up after `idle + interval ×
    /// count` without an answer (defaults 7,200 s, 75 s, 9; whole seconds from 1 to
    /// 32,767, count 1 to 127, or `EINVAL`).
    pub fn set_keepalive_params(
        &self,
        idle: Duration,
        interval: Duration,
        count: u32,
    ) -> io::Result<()> {
        let (idle, interval, count) = checked_keepalive(idle, interval, count)?;
        self.set_options(|o| {
            o.keep_idle = idle;
            o.keep_interval = interval;
            o.keep_count = count;
        })
    }

    /// `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`.
    pub fn keepalive_params(&self) -> io::Result<(Duration, Duration, u32)> {
        let o = self.options()?;
        Ok((o.keep_idle, o.keep_interval, o.keep_count))
    }

    /// The stack's receive buffer of this connection (its largest window), as
    /// chosen with [`SocketConfig::recv_buffer_size`] before it opened (a kernel
    /// socket: its `SO_RCVBUF`).
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        Ok(self.options()?.tcp_buffers(TCP_BUFFER).0)
    }

    /// The stack's send buffer of this connection.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        Ok(self.options()?.tcp_buffers(TCP_BUFFER).1)
    }

    /// The pending socket error (SO_ERROR), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match &self.conn {
            Some(conn) => Ok(conn.take_error()),
            None => self.kernel().take_error(),
        }
    }

    /// A stream of a connection `bsd` made (`conn`: what the stack keeps beside
    /// the descriptor; `None` for a kernel socket).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn from_parts(fd: OwnedFd, conn: Option<Conn>) -> TcpStream {
        TcpStream { fd, conn }
    }

    fn read_fd(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.reset_told(sys::read(self.fd.as_fd(), buf), buf.len())
    }

    fn read_fd_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let asked = bufs.iter().map(|b| b.len()).sum();
        let read = sys::recv_vectored(self.fd.as_fd(), bufs, 0).map(|(n, _)| n);
        self.reset_told(read, asked)
    }

    /// Receives bytes into `buf` without taking them: the next read gets them
    /// again (`MSG_PEEK`). Blocks as a read does; 0 at end of stream.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let peeked = sys::recv_parts(self.fd.as_fd(), &mut [], buf, libc::MSG_PEEK);
        self.reset_told(peeked.map(|(n, _)| n), buf.len())
    }

    /// What a read of up to `asked` bytes returns once the reset of the
    /// connection (which the socket pair can only show as end of stream) is told:
    /// ECONNRESET once, as a kernel socket says it, then end of stream.
    fn reset_told(&self, read: io::Result<usize>, asked: usize) -> io::Result<usize> {
        let Some(conn) = &self.conn else {
            return read;
        };
        match read {
            // EOF after a reset is the reset (once), as on a kernel socket.
            Ok(0) if asked > 0 => conn.take_error().map_or(Ok(0), Err),
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                conn.take_error();
                Err(e)
            }
            other => other,
        }
    }

    fn write_fd(&self, buf: &[u8]) -> io::Result<usize> {
        self.pipe_told(sys::send(self.fd.as_fd(), buf))
    }

    fn write_fd_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.pipe_told(sys::send_vectored(self.fd.as_fd(), bufs, 0))
    }

    /// What a write returns once the reset of the connection (which the socket
    /// pair shows as `EPIPE`) is told: the stack's error in its place.
    fn pipe_told(&self, written: io::Result<usize>) -> io::Result<usize> {
        match written {
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => match &self.conn {
                Some(conn) => Err(conn.take_error().unwrap_or(e)),
                None => Err(e),
            },
            other => other,
        }
    }

    super::descriptor_controls!();
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_fd(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_fd_vectored(bufs)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_fd(buf)
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_fd_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_fd(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_fd_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_fd(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_fd_vectored(bufs)
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

/// What a listener is beside its descriptor: shared by [`TcpListener`] and `bsd`.
#[derive(Clone)]
pub(crate) struct Acceptor {
    ctx: StackCtx,
    id: u64,
    pub(crate) local: SocketAddr,
    accepted: Arc<AtomicU64>,
    /// The listener's options, which the connections it accepts start with.
    pub(crate) options: OptionRecord,
}

impl Acceptor {
    /// Reserves `addr` (port 0: ephemeral) and listens on it; returns the
    /// application's end of the listener's socket pair.
    pub(crate) fn listen(
        ctx: &StackCtx,
        addr: SocketAddr,
        backlog: usize,
        options: SocketOptions,
    ) -> io::Result<(OwnedFd, Acceptor)> {
        let local = ctx.pump.request(|reply| Control::Bind {
            local: addr,
            options,
            owner: None,
            reply,
        })??;
        let listening = Self::listen_bound(ctx, local, backlog, options, None);
        if listening.is_err() {
            let _ = ctx.pump.send(Control::Unbind {
                local,
                options,
                owner: None,
            });
        }
        listening
    }

    /// Listens on an address already reserved with a `Bind` control (with the
    /// same options); on failure the address stays reserved. `adopted`: the token
    /// the pump keeps beside its end of the listener (see `EndToken`), and the
    /// adopted socket whose reservation (`Control::Bind`'s owner) it takes over.
    pub(crate) fn listen_bound(
        ctx: &StackCtx,
        local: SocketAddr,
        backlog: usize,
        options: SocketOptions,
        adopted: Option<(EndToken, u64)>,
    ) -> io::Result<(OwnedFd, Acceptor)> {
        let (token, owner) = adopted.unzip();
        let (app_end, pump_end) = sys::pair(libc::SOCK_SEQPACKET)?;
        let accepted = Arc::new(AtomicU64::new(0));
        let id = ctx.next_socket_id();
        ctx.pump.request(|reply| Control::Listen {
            id,
            fd: pump_end,
            local,
            backlog,
            accepted: accepted.clone(),
            options,
            token,
            owner,
            reply,
        })??;
        let acceptor = Acceptor {
            ctx: ctx.clone(),
            id,
            local,
            accepted,
            options: OptionRecord::new(options),
        };
        Ok((app_end, acceptor))
    }

    /// Changes the listener's options (those its future connections start with).
    pub(crate) fn set_options(&self, change: impl FnOnce(&mut SocketOptions)) -> io::Result<()> {
        self.options.update(&self.ctx.pump, self.id, change)
    }

    /// Takes the next connection from the listener's end `fd` (blocking unless `fd`
    /// is non-blocking): its descriptor, what it is, and the watch of the token the
    /// pump keeps beside the connection's end.
    pub(crate) fn accept(&self, fd: BorrowedFd<'_>) -> io::Result<(OwnedFd, Conn, EndWatch)> {
        let mut payload = [0u8; 64];
        if !sys::is_readable(fd) && !sys::is_nonblocking(fd) {
            // As a blocking connect does (see `pump/idle.rs`).
            self.ctx.pump.doorbell.wait_briefly(|| sys::is_readable(fd));
        }
        // With no descriptor slot free: EMFILE, and the connection stays queued
        // for a later accept, as on Linux (see `recv_with_fd`).
        let (len, conn_fd) = match sys::recv_with_fd(fd, &mut payload)? {
            sys::FdMessage::Received(len, conn_fd) => (len, conn_fd),
            sys::FdMessage::Lost(len) => {
                // The last slot went to another thread meanwhile: the connection
                // is gone (its pump end sees the hang-up), and off the backlog.
                self.accepted.fetch_add(1, Ordering::Relaxed);
                if let Some((id, ..)) = decode_accept(&payload[..len]) {
                    drop(self.ctx.take_handoff(id));
                }
                return Err(io::Error::from_raw_os_error(libc::EMFILE));
            }
            // The end of the listener's pair: the stack stopped.
            sys::FdMessage::Closed => {
                return Err(self
                    .ctx
                    .pump
                    .failure
                    .error()
                    .unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
            }
        };
        // A backlog slot is free: the pump reads this when the next SYN comes (a
        // SYN it dropped is retried by its peer), so it is not woken for it.
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let (id, local, peer) = decode_accept(&payload[..len])
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EPROTO))?;
        let (shared, watch) = match self.ctx.take_handoff(id) {
            Some(handoff) => (handoff.shared, handoff.watch),
            // Not parked (the listener closed meanwhile): nothing the pump keeps.
            None => (Arc::new(ConnShared::default()), EndToken::new().1),
        };
        let conn = Conn::new(
            id,
            shared,
            self.ctx.pump.clone(),
            local,
            peer,
            self.options.get(),
        );
        Ok((conn_fd, conn, watch))
    }
}

impl TcpListener {
    /// Listens on `addr` (port 0: an ephemeral port). `EADDRINUSE` if the port is
    /// taken, `EADDRNOTAVAIL` if the stack does not have the address.
    pub fn bind<A: ToStackAddrs>(stack: &Stack, addr: A) -> io::Result<TcpListener> {
        Self::bind_with(stack, addr, &SocketConfig::default())
    }

    /// Like [`TcpListener::bind`], with options chosen before binding
    /// (`SO_REUSEADDR`, `SO_REUSEPORT`, `IPV6_V6ONLY`, ...). The connections it
    /// accepts start with its options, as on Linux.
    pub fn bind_with<A: ToStackAddrs>(
        stack: &Stack,
        addr: A,
        config: &SocketConfig,
    ) -> io::Result<TcpListener> {
        each_addr(Some(stack), addr, |addr| {
            Self::bind_one(stack, addr, &config.options)
        })
    }

    fn bind_one(
        stack: &Stack,
        addr: SocketAddr,
        options: &SocketOptions,
    ) -> io::Result<TcpListener> {
        if let Some(fd) = super::kernel_socket(stack, &addr, libc::SOCK_STREAM)? {
            sys::reuse_addr(fd.as_fd())?;
            apply_to_kernel_socket(fd.as_fd(), options, libc::SOCK_STREAM)?;
            sys::bind(fd.as_fd(), &addr)?;
            sys::listen(fd.as_fd(), DEFAULT_BACKLOG)?;
            return Ok(TcpListener { fd, acceptor: None });
        }
        let (fd, acceptor) = Acceptor::listen(stack.ctx()?, addr, DEFAULT_BACKLOG, *options)?;
        Ok(TcpListener {
            fd,
            acceptor: Some(acceptor),
        })
    }

    /// Waits for a connection (or `WouldBlock` when non-blocking and none waits).
    /// `EMFILE` at once when the process has no descriptor left for it, as on
    /// Linux: the connection stays queued for a later call.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let Some(acceptor) = &self.acceptor else {
            let (fd, peer) = sys::KernelSocket(self.fd.as_fd()).accept()?;
            let stream = TcpStream { fd, conn: None };
            return Ok((stream, peer));
        };
        let (fd, conn, _) = acceptor.accept(self.fd.as_fd())?;
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
            None => sys::KernelSocket(self.fd.as_fd()).local_addr(),
        }
    }

    /// Moves the descriptor into or out of non-blocking mode.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::set_nonblocking(self.fd.as_fd(), nonblocking)
    }

    /// A second handle to the same listener (a `dup` of the descriptor): either
    /// accepts the connections, which stop arriving once every handle is dropped.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            fd: self.fd.try_clone()?,
            acceptor: self.acceptor.clone(),
        })
    }

    /// The pending socket error (`SO_ERROR`), cleared by reading it. A listener of
    /// the userspace stack never has one (its connections carry their own).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match &self.acceptor {
            Some(_) => Ok(None),
            None => sys::KernelSocket(self.fd.as_fd()).take_error(),
        }
    }

    /// `IPV6_V6ONLY`, as chosen with [`SocketConfig::only_v6`] before binding:
    /// whether an IPv6 listener takes IPv6 connections only. `EOPNOTSUPP` on an
    /// IPv4 listener, as Linux answers.
    pub fn only_v6(&self) -> io::Result<bool> {
        match &self.acceptor {
            Some(acceptor) if acceptor.local.is_ipv4() => {
                Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
            }
            Some(acceptor) => Ok(acceptor.options.get().v6only),
            None => {
                sys::option::<libc::c_int>(self.fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)
                    .map(|on| on != 0)
            }
        }
    }

    /// `IP_TTL` for the connections accepted from now on.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = checked_ttl(ttl)?;
        match &self.acceptor {
            Some(acceptor) => acceptor.set_options(|o| o.set_hop_limit(Some(ttl))),
            None => sys::KernelSocket(self.fd.as_fd()).set_ttl(ttl.into()),
        }
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        match &self.acceptor {
            Some(acceptor) => Ok(acceptor.options.get().hop_limit.into()),
            None => sys::KernelSocket(self.fd.as_fd()).ttl(),
        }
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

super::descriptor_traits!(TcpStream);

super::descriptor_traits!(TcpListener);
