//! One socket of a userspace stack as the BSD calls see it: where it is in its life
//! ([`State`]), and what each call does to it.
//!
//! A socket starts as the application end of a socket pair whose other end the pump
//! adopted (`Stack::adopted_socket`). `connect` turns that pair into a connection's;
//! `listen` replaces the descriptor in place with the application end of a listener's
//! pair; a datagram socket's first `bind`, `connect` or send opens the engine's UDP (or
//! ping) socket on the same pair.

use super::{options, SocketKind, Transfer};
use crate::engine::{check_connect, DatagramProto, SocketOptions};
use crate::pump::{ConnShared, Control, EndToken, EndWatch};
use crate::socket::{Acceptor, Conn, Udp};
use crate::stack::{Stack, StackCtx, StackRef};
use crate::sys;
use crossbeam_channel::{Receiver, TryRecvError};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Linux's default `somaxconn`, the most `listen` grants.
const MAX_BACKLOG: usize = 4096;

/// Where a socket is in its life.
enum State {
    /// Made by `socket()`; maybe bound.
    Fresh {
        bound: Option<SocketAddr>,
    },
    /// A non-blocking `connect` under way; the pump answers on `answer`.
    Connecting {
        answer: Receiver<io::Result<SocketAddr>>,
        remote: SocketAddr,
        shared: Arc<ConnShared>,
        /// The options the connect was made with.
        sent: SocketOptions,
    },
    Connected(Conn),
    Listening(Acceptor),
    /// A UDP or ping socket, bound (explicitly, or by its first connect or send).
    Datagram(Arc<Udp>),
    /// A non-blocking connect failed: like a kernel socket after that, it is good for
    /// nothing but `close`.
    Failed,
}

/// What a socket keeps before it has a connection, listener or UDP socket to keep
/// it: the options set so far, and the pending `SO_ERROR`.
#[derive(Default)]
struct Pending {
    options: SocketOptions,
    error: i32,
}

/// A socket of a userspace stack, as the BSD calls track it.
pub(super) struct StackSocket {
    ctx: StackCtx,
    /// Tells whether the stack is gone (its sockets are then of no more use).
    stack: StackRef,
    /// The pump's id of the socket pair `socket()` made (until it connects or
    /// listens), or of the accepted connection.
    id: u64,
    /// AF_INET or AF_INET6.
    pub(super) family: i32,
    /// SOCK_STREAM or SOCK_DGRAM.
    pub(super) ty: i32,
    /// The protocol `socket()` named (0 or the type's own; IPPROTO_ICMP or
    /// IPPROTO_ICMPV6 for a ping socket).
    protocol: i32,
    state: Mutex<State>,
    pending: Mutex<Pending>,
    /// What `shutdown` shut of a datagram socket ([`SHUT_READ`], [`SHUT_WRITE`]):
    /// its pair carries both ways whatever this says.
    shut: AtomicU8,
}

/// [`StackSocket::shut`]: receives return 0 instead of waiting.
const SHUT_READ: u8 = 1;
/// [`StackSocket::shut`]: sends fail with `EPIPE`.
const SHUT_WRITE: u8 = 2;

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl StackSocket {
    /// A new socket (`socket()`), whose pair end the pump adopted under `id`.
    pub(super) fn new(
        stack: &Stack,
        id: u64,
        family: i32,
        ty: i32,
        protocol: i32,
    ) -> io::Result<StackSocket> {
        Ok(StackSocket {
            ctx: stack.ctx()?.clone(),
            stack: stack.downgrade(),
            id,
            family,
            ty: ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC),
            protocol,
            state: Mutex::new(State::Fresh { bound: None }),
            pending: Mutex::new(Pending::default()),
            shut: AtomicU8::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the stack the socket belongs to is gone.
    pub(super) fn stack_gone(&self) -> bool {
        self.stack.is_gone()
    }

    pub(super) fn is_datagram(&self) -> bool {
        self.ty == libc::SOCK_DGRAM
    }

    /// What `socket()` made.
    pub(super) fn kind(&self) -> SocketKind {
        SocketKind {
            domain: self.family,
            ty: self.ty,
            protocol: self.protocol(),
        }
    }

    /// What a call moving bytes meets first (see `bsd::check_transfer`).
    pub(super) fn check_transfer(&self, transfer: Transfer) -> io::Result<()> {
        if self.is_datagram() {
            let shut = self.shut.load(Ordering::Relaxed);
            return match transfer {
                Transfer::Send if shut & SHUT_WRITE != 0 => Err(errno(libc::EPIPE)),
                _ => Ok(()),
            };
        }
        let mut state = self.lock();
        if let State::Connecting { answer, .. } = &*state {
            match answer.try_recv() {
                // A failed non-blocking connect tells its error once.
                Ok(result) => self.settle(&mut state, result)?,
                // Under way: a send waits for it (or EAGAIN), a receive too.
                Err(_) => return Ok(()),
            }
        }
        match (&*state, transfer) {
            (State::Connected(_), _) => Ok(()),
            (_, Transfer::Send) => Err(errno(libc::EPIPE)),
            (_, Transfer::Receive) => Err(errno(libc::ENOTCONN)),
        }
    }

    /// Whether `shutdown` shut a datagram socket for reading.
    pub(super) fn reads_shut(&self) -> bool {
        self.shut.load(Ordering::Relaxed) & SHUT_READ != 0
    }

    /// `shutdown(2)` (see `bsd::shutdown`).
    pub(super) fn shutdown(&self, fd: BorrowedFd<'_>, how: Shutdown) -> io::Result<()> {
        let mut state = self.lock();
        match &*state {
            // The pair carries the shutdown: the pump reads EOF (FIN) after what
            // was written, and drops what comes once the application stopped
            // reading.
            State::Connected(_) => sys::shutdown(fd, how),
            State::Listening(_) if how == Shutdown::Write => Ok(()),
            // The pump closes the listener when its end hangs up; a blocked
            // accept reads the end of the pair (EINVAL).
            State::Listening(_) => sys::shutdown(fd, Shutdown::Both),
            State::Connecting { .. } => {
                // Linux abandons the handshake (and returns 0).
                self.ctx.pump.send(Control::CancelConnect { id: self.id })?;
                *state = State::Failed;
                Ok(())
            }
            State::Datagram(udp) if udp.peer_addr().is_ok() => {
                let bits = match how {
                    Shutdown::Read => SHUT_READ,
                    Shutdown::Write => SHUT_WRITE,
                    Shutdown::Both => SHUT_READ | SHUT_WRITE,
                };
                self.shut.fetch_or(bits, Ordering::Relaxed);
                Ok(())
            }
            State::Fresh { .. } | State::Failed | State::Datagram(_) => Err(errno(libc::ENOTCONN)),
        }
    }

    /// The protocol `SO_PROTOCOL` reports.
    pub(super) fn protocol(&self) -> i32 {
        match (self.is_datagram(), self.protocol) {
            (false, _) => libc::IPPROTO_TCP,
            (true, 0) => libc::IPPROTO_UDP,
            (true, p) => p,
        }
    }

    /// What a datagram socket carries.
    fn proto(&self) -> DatagramProto {
        match self.protocol {
            libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6 => DatagramProto::Ping,
            _ => DatagramProto::Udp,
        }
    }

    /// The socket's options, as `getsockopt` reads them.
    pub(super) fn options(&self) -> SocketOptions {
        match &*self.lock() {
            State::Connected(conn) => conn.options.get(),
            State::Listening(acceptor) => acceptor.options.get(),
            State::Datagram(udp) => udp.options.get(),
            _ => self.pending().options,
        }
    }

    /// Changes options, as `setsockopt` does: applied now where the socket has a
    /// connection, listener or UDP socket, else kept for when it gets one.
    pub(super) fn set_options(&self, change: impl FnOnce(&mut SocketOptions)) -> io::Result<()> {
        match &*self.lock() {
            State::Connected(conn) => conn.set_options(change),
            State::Listening(acceptor) => acceptor.set_options(change),
            State::Datagram(udp) => udp.set_options(change),
            _ => {
                change(&mut self.pending().options);
                Ok(())
            }
        }
    }

    /// `TCP_MAXSEG`: before a connection exists, the value set or Linux's default
    /// MSS (536); then the one the stack's link gives for this socket's family,
    /// capped by the value set.
    pub(super) fn mss(&self) -> i32 {
        let set = i32::from(self.options().max_segment);
        if !matches!(&*self.lock(), State::Connected(_)) {
            return if set == 0 { 536 } else { set };
        }
        let link = options::mss_for(&self.ctx.config(), self.family);
        if set == 0 {
            link
        } else {
            link.min(set)
        }
    }

    /// The stack's configuration as of its last command.
    pub(super) fn config(&self) -> Arc<crate::cmd::NetConfig> {
        self.ctx.config()
    }

    /// `TCP_INFO`: what the engine knows of the connection, or what Linux
    /// reports for a socket in this state without one.
    pub(super) fn tcp_info(&self) -> io::Result<options::TcpInfo> {
        let (state, id) = match &*self.lock() {
            State::Connected(conn) => (7, Some(conn.id)),
            State::Listening(_) => (10, None),
            State::Connecting { .. } => (2, None),
            _ => (7, None),
        };
        let stats = match id {
            Some(id) => self
                .ctx
                .pump
                .request(|reply| Control::TcpStats { id, reply })?,
            None => None,
        };
        Ok(options::tcp_info(state, stats, self.options().max_segment))
    }

    /// Whether the socket is bound (explicitly or by use): `IPV6_V6ONLY` can no
    /// longer change then.
    pub(super) fn is_bound(&self) -> bool {
        !matches!(&*self.lock(), State::Fresh { bound: None })
    }

    pub(super) fn is_listening(&self) -> bool {
        matches!(&*self.lock(), State::Listening(_))
    }

    fn check_family(&self, addr: &SocketAddr) -> io::Result<()> {
        match (self.family, addr) {
            (libc::AF_INET, SocketAddr::V4(_)) | (libc::AF_INET6, _) => Ok(()),
            _ => Err(errno(libc::EAFNOSUPPORT)),
        }
    }

    /// The wildcard address of the socket's family.
    fn any(&self) -> SocketAddr {
        if self.family == libc::AF_INET6 {
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
        } else {
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
        }
    }

    /// Reserves `local` in the stack (port 0: ephemeral) with the options set so far.
    fn reserve(&self, local: SocketAddr) -> io::Result<SocketAddr> {
        let options = self.pending().options;
        self.ctx.pump.request(|reply| Control::Bind {
            local,
            options,
            owner: Some(self.id),
            reply,
        })?
    }

    /// `bind(2)`.
    pub(super) fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.check_family(&addr)?;
        let mut state = self.lock();
        if self.is_datagram() {
            return match &*state {
                State::Fresh { bound: None } => {
                    *state = State::Datagram(self.open_datagram(addr)?);
                    Ok(())
                }
                _ => Err(errno(libc::EINVAL)),
            };
        }
        match &mut *state {
            State::Fresh {
                bound: bound @ None,
            } => {
                *bound = Some(self.reserve(addr)?);
                Ok(())
            }
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// Opens the engine's datagram socket bound to `local` on the adopted pair.
    fn open_datagram(&self, local: SocketAddr) -> io::Result<Arc<Udp>> {
        let options = self.pending().options;
        Udp::open(&self.ctx, self.id, self.proto(), None, local, options).map(Arc::new)
    }

    /// Applies what the pump answered a `connect`.
    fn settle(&self, state: &mut State, result: io::Result<SocketAddr>) -> io::Result<()> {
        let State::Connecting {
            remote,
            shared,
            sent,
            ..
        } = std::mem::replace(state, State::Failed)
        else {
            unreachable!("settle is only called on a connecting socket")
        };
        let local = result?;
        // Options set while the connect was under way apply now.
        let options = self.pending().options;
        let conn = Conn::new(self.id, shared, self.ctx.pump.clone(), local, remote, sent);
        if options != sent {
            conn.set_options(|o| *o = options)?;
        }
        *state = State::Connected(conn);
        Ok(())
    }

    /// `connect(2)`: blocks unless `fd` is non-blocking, which gives EINPROGRESS and
    /// leaves the outcome to `poll` (POLLOUT) and `SO_ERROR`.
    pub(super) fn connect(&self, fd: BorrowedFd<'_>, remote: SocketAddr) -> io::Result<()> {
        self.check_family(&remote)?;
        if self.is_datagram() {
            return self.datagram()?.connect(fd, Some(remote));
        }
        let mut state = self.lock();
        let bound = match &mut *state {
            State::Fresh { bound } => {
                // What Linux refuses inside connect(2) itself (no route) fails
                // here too, blocking or not, rather than after EINPROGRESS.
                check_connect(&self.ctx.config(), remote, &self.pending().options)?;
                bound.take()
            }
            State::Connecting { answer, .. } => {
                // Asked again while under way, as event loops do: the outcome if
                // known, else EALREADY.
                return match answer.try_recv() {
                    Ok(result) => self.settle(&mut state, result),
                    Err(_) => Err(errno(libc::EALREADY)),
                };
            }
            State::Connected(_) | State::Listening(_) => return Err(errno(libc::EISCONN)),
            State::Failed | State::Datagram(_) => return Err(errno(libc::ECONNABORTED)),
        };
        let options = self.pending().options;
        if let Some(local) = bound {
            // The connection takes the reserved port over.
            self.ctx.pump.send(Control::Unbind {
                local,
                options,
                owner: Some(self.id),
            })?;
        }
        let nonblocking = sys::is_nonblocking(fd);
        // A non-blocking connect fills the socket pair, so that the program's end
        // turns writable (POLLOUT) exactly when the pump has the connection up and
        // drains the filler.
        let junk = if nonblocking { fill(fd) } else { 0 };
        let shared = Arc::new(ConnShared::default());
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.ctx.pump.send(Control::Connect {
            id: self.id,
            fd: None,
            junk,
            remote,
            local: bound,
            options,
            shared: shared.clone(),
            reply,
        })?;
        *state = State::Connecting {
            answer: answer.clone(),
            remote,
            shared,
            sent: options,
        };
        if nonblocking {
            return Err(errno(libc::EINPROGRESS));
        }
        // Blocking: wait without holding the state, so other threads can use it.
        drop(state);
        // The answer comes after one round trip on the link: poll for it as long
        // as the pump polls, which keeps this CPU from idling (see `pump/idle.rs`).
        let mut early = None;
        self.ctx.pump.doorbell.wait_briefly(|| {
            early = answer.try_recv().ok();
            early.is_some()
        });
        let result = match early {
            Some(result) => result,
            None => answer.recv().map_err(|_| errno(libc::ENETDOWN))?,
        };
        let mut state = self.lock();
        let outcome = self.settle(&mut state, result);
        if outcome.is_err() {
            // A failed blocking connect leaves the socket usable, as on Linux.
            *state = State::Fresh { bound: None };
        }
        outcome
    }

    /// The UDP socket, bound to the wildcard address first if it is not yet, as
    /// Linux binds a UDP socket on its first connect or send.
    pub(super) fn datagram(&self) -> io::Result<Arc<Udp>> {
        let mut state = self.lock();
        match &*state {
            State::Datagram(udp) => Ok(udp.clone()),
            State::Fresh { bound: None } => {
                // Linux answers such an implicit bind EAGAIN when no ephemeral
                // port is left (a `bind` to port 0: EADDRINUSE).
                let udp = self
                    .open_datagram(self.any())
                    .map_err(|e| match e.raw_os_error() {
                        Some(libc::EADDRINUSE) => errno(libc::EAGAIN),
                        _ => e,
                    })?;
                *state = State::Datagram(udp.clone());
                Ok(udp)
            }
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// `connect(2)` with AF_UNSPEC: a UDP socket forgets its peer.
    pub(super) fn disconnect(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        if !self.is_datagram() {
            // Linux would abort a TCP connection this way; not done here.
            return Err(errno(libc::EOPNOTSUPP));
        }
        match &*self.lock() {
            State::Datagram(udp) => udp.clone(),
            State::Fresh { .. } => return Ok(()),
            _ => return Err(errno(libc::EINVAL)),
        }
        .connect(fd, None)
    }

    /// The error for an errno this socket reports: with the reason when it is the
    /// `ENETDOWN` of a stack whose thread failed.
    pub(super) fn error(&self, code: i32) -> io::Error {
        self.ctx.pump.failure.explain(errno(code))
    }

    /// `SO_ERROR`: the outcome of a non-blocking connect, or a reset, reported once;
    /// ENETDOWN once the stack's thread failed.
    pub(super) fn take_error(&self) -> i32 {
        let pending = std::mem::take(&mut self.pending().error);
        if pending != 0 {
            return pending;
        }
        let mut state = self.lock();
        match &*state {
            State::Connecting { answer, .. } => {
                let result = match answer.try_recv() {
                    Ok(result) => result,
                    Err(TryRecvError::Empty) => return 0,
                    // The pump stopped with the connect under way: the stack
                    // is gone (its descriptor turned writable and hung up).
                    Err(TryRecvError::Disconnected) => Err(errno(libc::ENETDOWN)),
                };
                match self.settle(&mut state, result) {
                    Ok(()) => 0,
                    Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
                }
            }
            State::Connected(conn) => conn
                .shared
                .take_error()
                .and_then(|e| e.raw_os_error())
                .unwrap_or(0),
            State::Datagram(udp) => udp
                .shared
                .take_error()
                .and_then(|e| e.raw_os_error())
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// `listen(2)`: the descriptor becomes the application end of a listener (the
    /// same number, now on a SOCK_SEQPACKET pair the pump passes connections on).
    /// Returns the watch of the listener's end, to be registered under its inode.
    pub(super) fn listen(&self, fd: BorrowedFd<'_>, backlog: i32) -> io::Result<Option<EndWatch>> {
        if self.is_datagram() {
            return Err(errno(libc::EOPNOTSUPP));
        }
        // As Linux: a negative backlog is taken as unsigned, so the maximum.
        let backlog = usize::try_from(backlog).map_or(MAX_BACKLOG, |b| b.min(MAX_BACKLOG));
        let mut state = self.lock();
        let local = match &mut *state {
            State::Listening(_) => return Ok(None),
            State::Fresh { bound } => match bound.take() {
                Some(local) => local,
                None => self.reserve(self.any())?,
            },
            _ => return Err(errno(libc::EINVAL)),
        };
        let options = self.pending().options;
        let (token, watch) = EndToken::new();
        let (listener_end, acceptor) = match Acceptor::listen_bound(
            &self.ctx,
            local,
            backlog,
            options,
            Some((token, self.id)),
        ) {
            Ok(listening) => listening,
            Err(e) => {
                *state = State::Fresh { bound: Some(local) };
                return Err(e);
            }
        };
        let nonblocking = sys::is_nonblocking(fd);
        // The program's descriptor number now names the listener: the pair it named
        // before is closed (its pump end sees the hang-up and goes).
        sys::replace(listener_end.as_fd(), fd, sys::is_cloexec(fd))?;
        drop(listener_end);
        sys::set_nonblocking(fd, nonblocking)?;
        *state = State::Listening(acceptor);
        Ok(Some(watch))
    }

    /// `accept4(2)`: the new descriptor, its socket, the watch of its pump end, and
    /// the peer's address.
    pub(super) fn accept(
        &self,
        fd: BorrowedFd<'_>,
        flags: i32,
    ) -> io::Result<(OwnedFd, StackSocket, EndWatch, SocketAddr)> {
        let acceptor = match &*self.lock() {
            State::Listening(acceptor) => acceptor.clone(),
            _ if self.is_datagram() => return Err(errno(libc::EOPNOTSUPP)),
            _ => return Err(errno(libc::EINVAL)),
        };
        let (conn_fd, conn, watch) = acceptor.accept(fd)?;
        // The pump hands over a new pair's end, which blocks.
        if flags & libc::SOCK_NONBLOCK != 0 {
            sys::set_nonblocking(conn_fd.as_fd(), true)?;
        }
        sys::set_cloexec(conn_fd.as_fd(), flags & libc::SOCK_CLOEXEC != 0)?;
        let peer = conn.peer;
        let socket = StackSocket {
            ctx: self.ctx.clone(),
            stack: self.stack.clone(),
            id: conn.id,
            family: self.family,
            ty: libc::SOCK_STREAM,
            protocol: 0,
            state: Mutex::new(State::Connected(conn)),
            pending: Mutex::new(Pending::default()),
            shut: AtomicU8::new(0),
        };
        Ok((conn_fd, socket, watch, peer))
    }

    /// `getsockname(2)`.
    pub(super) fn local_addr(&self) -> SocketAddr {
        match &*self.lock() {
            State::Fresh { bound } => bound.unwrap_or_else(|| self.any()),
            State::Connected(conn) => conn.local,
            State::Listening(acceptor) => acceptor.local,
            State::Datagram(udp) => udp.local_addr(),
            State::Connecting { .. } | State::Failed => self.any(),
        }
    }

    /// The hop limit and MTU of the path to the socket's peer (see
    /// [`crate::engine::Engine::path_to`]); `ENOTCONN` without one.
    pub(super) fn path_to_peer(&self) -> io::Result<(u8, usize)> {
        let peer = self.peer_addr()?.ip();
        self.ctx
            .pump
            .request(|reply| Control::PathTo { peer, reply })
    }

    /// `getpeername(2)`.
    pub(super) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &*self.lock() {
            State::Connected(conn) => Ok(conn.peer),
            State::Datagram(udp) => udp.peer_addr(),
            _ => Err(errno(libc::ENOTCONN)),
        }
    }

    /// The connection of a connected stream socket.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(super) fn connection(&self) -> Option<Conn> {
        match &*self.lock() {
            State::Connected(conn) => Some(conn.clone()),
            _ => None,
        }
    }

    /// Whether a datagram socket has a peer.
    pub(super) fn is_connected(&self) -> bool {
        match &*self.lock() {
            State::Connected(_) => true,
            State::Datagram(udp) => udp.peer_addr().is_ok(),
            _ => false,
        }
    }
}

/// Writes filler into `fd` (non-blocking) until the socket pair is full; returns how
/// many bytes went in.
fn fill(fd: BorrowedFd<'_>) -> usize {
    let filler = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match sys::send(fd, &filler) {
            Ok(n) if n > 0 => total += n,
            _ => return total,
        }
    }
}
