//! The stack sockets the C ABI knows, and what each BSD call does to them.
//!
//! A socket is found by the inode of the descriptor's socket, so that `dup`s share
//! it. The table counts the descriptors of each socket (the interposed `dup*` and
//! `close` keep the count), and forgets a socket when its last descriptor closes.

use crate::engine::{DatagramProto, SocketOptions};
use crate::pump::{ConnShared, Control};
use crate::socket::{Acceptor, Conn, Udp};
use crate::stack::{Stack, StackCtx};
use crate::sys;
use crossbeam_channel::Receiver;
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Linux's default `somaxconn`, the most `listen` grants.
const MAX_BACKLOG: usize = 4096;

/// Where a socket is in its life.
pub(super) enum State {
    /// Made by `socket()`; maybe bound.
    Fresh {
        bound: Option<SocketAddr>,
    },
    /// A non-blocking `connect` under way; the pump answers on `answer`.
    Connecting {
        answer: Receiver<io::Result<SocketAddr>>,
        id: u64,
        remote: SocketAddr,
        shared: Arc<ConnShared>,
        /// The options the connect was made with.
        sent: SocketOptions,
    },
    Connected(Conn),
    Listening(Acceptor),
    /// A UDP socket, bound (explicitly, or by its first connect or send).
    Datagram(Arc<Udp>),
    /// A connect failed: like a kernel socket after that, it is good for nothing but
    /// `close`.
    Failed,
}

/// What a socket keeps before it has a connection, listener or UDP socket to
/// keep it: the options set so far, and the pending SO_ERROR.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) options: SocketOptions,
    pub(super) error: i32,
}

/// A socket of a stack, as the C ABI tracks it.
pub(super) struct Socket {
    ctx: StackCtx,
    /// The pump's id of the `msocket` socket (until it connects or listens).
    id: u64,
    pub(super) family: i32,
    /// SOCK_STREAM or SOCK_DGRAM.
    pub(super) ty: i32,
    /// The protocol `socket()` named (0 or the type's own; IPPROTO_ICMP or
    /// IPPROTO_ICMPV6 for a ping socket).
    pub(super) protocol: i32,
    pub(super) state: Mutex<State>,
    pending: Mutex<Pending>,
}

struct Entry {
    socket: Arc<Socket>,
    /// Descriptors referring to it.
    fds: usize,
}

static TABLE: Mutex<Option<HashMap<u64, Entry>>> = Mutex::new(None);
/// How many sockets the table holds: 0 lets every interposed call go straight to
/// libc without a `fstat`.
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn table() -> MutexGuard<'static, Option<HashMap<u64, Entry>>> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The inode of the socket `fd` refers to (None: not a socket, or not open).
fn socket_inode(fd: RawFd) -> Option<u64> {
    // SAFETY: `stat` is plain data; fstat writes it fully on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for writes; an invalid fd just fails with EBADF.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    (st.st_mode & libc::S_IFMT == libc::S_IFSOCK).then_some(st.st_ino)
}

fn register(fd: RawFd, socket: Arc<Socket>) {
    let Some(ino) = socket_inode(fd) else { return };
    let mut table = table();
    let previous = table
        .get_or_insert_with(HashMap::new)
        .insert(ino, Entry { socket, fds: 1 });
    if previous.is_none() {
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

/// The stack socket `fd` refers to, if any.
pub(super) fn lookup(fd: RawFd) -> Option<Arc<Socket>> {
    if COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let ino = socket_inode(fd)?;
    table()
        .as_ref()?
        .get(&ino)
        .map(|entry| entry.socket.clone())
}

/// Counts one more descriptor for the socket `fd` refers to (after a `dup`).
pub(super) fn add_descriptor(fd: RawFd) {
    if COUNT.load(Ordering::Relaxed) == 0 {
        return;
    }
    let Some(ino) = socket_inode(fd) else { return };
    if let Some(entry) = table().as_mut().and_then(|t| t.get_mut(&ino)) {
        entry.fds += 1;
    }
}

/// Counts one descriptor less for the socket `fd` refers to (before it is closed);
/// forgets the socket with its last descriptor.
pub(super) fn drop_descriptor(fd: RawFd) {
    if COUNT.load(Ordering::Relaxed) == 0 {
        return;
    }
    let Some(ino) = socket_inode(fd) else { return };
    let mut table = table();
    let Some(map) = table.as_mut() else { return };
    if let Some(entry) = map.get_mut(&ino) {
        entry.fds -= 1;
        if entry.fds == 0 {
            map.remove(&ino);
            COUNT.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

pub(super) fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: only used for the duration of a call made by the program on `fd`,
    // which it keeps open for that call.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn is_nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags >= 0 && flags & libc::O_NONBLOCK != 0
}

/// `vde_msocket`.
pub(super) fn open(stack: &Stack, domain: i32, ty: i32, protocol: i32) -> io::Result<RawFd> {
    if stack.backend() == crate::Backend::Kernel {
        // A real kernel socket: not registered, so every call passes it to libc.
        return Ok(stack.msocket(domain, ty, protocol)?.into_raw_fd());
    }
    let (fd, id) = stack.msocket_with_id(domain, ty, protocol)?;
    let fd = fd.into_raw_fd();
    register(
        fd,
        Arc::new(Socket {
            ctx: stack.ctx()?.clone(),
            id,
            family: domain,
            ty: ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC),
            protocol,
            state: Mutex::new(State::Fresh { bound: None }),
            pending: Mutex::new(Pending::default()),
        }),
    );
    Ok(fd)
}

impl Socket {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Changes options, as `setsockopt` does: applied now where the socket has
    /// a connection, listener or UDP socket, else kept for when it gets one.
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

    /// `TCP_MAXSEG`: before a connection exists, Linux's default MSS (536); then
    /// the one the stack's link gives for this socket's family.
    pub(super) fn mss(&self) -> i32 {
        if !matches!(&*self.lock(), State::Connected(_)) {
            return 536;
        }
        let mtu = self
            .ctx
            .config()
            .links()
            .iter()
            .find(|l| l.kind == crate::cmd::LinkKind::Ether)
            .map_or(65_536, |l| l.mtu as usize);
        super::options::mss_for(mtu, self.family)
    }

    /// Whether the socket is bound (explicitly or by use): `IPV6_V6ONLY` can no
    /// longer change then.
    pub(super) fn is_bound(&self) -> bool {
        !matches!(&*self.lock(), State::Fresh { bound: None })
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

    /// `bind(2)`.
    pub(super) fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.check_family(&addr)?;
        let mut state = self.lock();
        if self.is_datagram() {
            return match &*state {
                State::Fresh { bound: None } => {
                    let options = self.pending().options;
                    let udp = Udp::open(&self.ctx, self.id, self.proto(), None, addr, options)?;
                    *state = State::Datagram(Arc::new(udp));
                    Ok(())
                }
                _ => Err(errno(libc::EINVAL)),
            };
        }
        match &mut *state {
            State::Fresh {
                bound: bound @ None,
            } => {
                let options = self.pending().options;
                let local = self.ctx.pump.request(|reply| Control::Bind {
                    local: addr,
                    options,
                    reply,
                })??;
                *bound = Some(local);
                Ok(())
            }
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// Applies what `connect` learned from the pump.
    fn settle(&self, state: &mut State, result: io::Result<SocketAddr>) -> io::Result<()> {
        let State::Connecting {
            id,
            remote,
            shared,
            sent,
            ..
        } = std::mem::replace(state, State::Failed)
        else {
            unreachable!("settle is only called on a connecting socket")
        };
        match result {
            Ok(local) => {
                // Options set while the connect was under way apply now.
                let options = self.pending().options;
                let conn = Conn::new(id, shared, self.ctx.pump.clone(), local, remote, sent);
                if options != sent {
                    conn.set_options(|o| *o = options)?;
                }
                *state = State::Connected(conn);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `connect(2)`: blocks unless `fd` is non-blocking, which gives EINPROGRESS
    /// and leaves the outcome to `poll` (POLLOUT) and SO_ERROR.
    pub(super) fn connect(&self, fd: RawFd, remote: SocketAddr) -> io::Result<()> {
        self.check_family(&remote)?;
        if self.is_datagram() {
            return self.datagram()?.connect(borrow(fd), Some(remote));
        }
        let mut state = self.lock();
        let bound = match &mut *state {
            State::Fresh { bound } => bound.take(),
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
            self.ctx.pump.send(Control::Unbind { local, options })?;
        }
        let nonblocking = is_nonblocking(fd);
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
            id: self.id,
            remote,
            shared,
            sent: options,
        };
        if nonblocking {
            return Err(errno(libc::EINPROGRESS));
        }
        // Blocking: wait without holding the state, so other threads can use it.
        drop(state);
        let result = answer.recv().map_err(|_| errno(libc::ENETDOWN))?;
        let mut state = self.lock();
        let outcome = self.settle(&mut state, result);
        if outcome.is_err() {
            // A failed blocking connect leaves the socket usable, as on Linux.
            *state = State::Fresh { bound: None };
        }
        outcome
    }

    pub(super) fn is_datagram(&self) -> bool {
        self.ty == libc::SOCK_DGRAM
    }

    /// What a datagram socket carries.
    fn proto(&self) -> DatagramProto {
        match self.protocol {
            libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6 => DatagramProto::Ping,
            _ => DatagramProto::Udp,
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

    /// The UDP socket, bound to the wildcard address first if it is not yet, as
    /// Linux binds a UDP socket on its first connect or send.
    pub(super) fn datagram(&self) -> io::Result<Arc<Udp>> {
        let mut state = self.lock();
        match &*state {
            State::Datagram(udp) => Ok(udp.clone()),
            State::Fresh { bound: None } => {
                let options = self.pending().options;
                let udp = Udp::open(&self.ctx, self.id, self.proto(), None, self.any(), options)?;
                let udp = Arc::new(udp);
                *state = State::Datagram(udp.clone());
                Ok(udp)
            }
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// `connect(2)` with AF_UNSPEC: a UDP socket forgets its peer.
    pub(super) fn disconnect(&self, fd: RawFd) -> io::Result<()> {
        match &*self.lock() {
            State::Datagram(udp) => udp.clone(),
            State::Fresh { .. } => return Ok(()),
            _ => return Err(errno(libc::EINVAL)),
        }
        .connect(borrow(fd), None)
    }

    /// SO_ERROR: the outcome of a non-blocking connect, or a reset, reported once;
    /// ENETDOWN (said once on stderr) when the stack's thread failed.
    pub(super) fn take_error(&self) -> i32 {
        let code = self.take_errno();
        if code == libc::ENETDOWN {
            if let Some(e) = self.ctx.pump.failure.error() {
                super::report_failure_once(&e);
            }
        }
        code
    }

    fn take_errno(&self) -> i32 {
        let pending = std::mem::take(&mut self.pending().error);
        if pending != 0 {
            return pending;
        }
        let mut state = self.lock();
        match &*state {
            State::Connecting { answer, .. } => match answer.try_recv() {
                Ok(result) => match self.settle(&mut state, result) {
                    Ok(()) => 0,
                    Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
                },
                Err(_) => 0,
            },
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
    pub(super) fn listen(self: &Arc<Socket>, fd: RawFd, backlog: i32) -> io::Result<()> {
        if self.is_datagram() {
            return Err(errno(libc::EOPNOTSUPP));
        }
        // As Linux: a negative backlog is taken as unsigned, so the maximum.
        let backlog = usize::try_from(backlog).map_or(MAX_BACKLOG, |b| b.min(MAX_BACKLOG));
        let mut state = self.lock();
        let local = match &mut *state {
            State::Listening(_) => return Ok(()),
            State::Fresh { bound } => match bound.take() {
                Some(local) => local,
                None => {
                    let local = self.any();
                    let options = self.pending().options;
                    self.ctx.pump.request(|reply| Control::Bind {
                        local,
                        options,
                        reply,
                    })??
                }
            },
            _ => return Err(errno(libc::EINVAL)),
        };
        let options = self.pending().options;
        let (listener_end, acceptor) =
            match Acceptor::listen_bound(&self.ctx, local, backlog, options) {
                Ok(listening) => listening,
                Err(e) => {
                    *state = State::Fresh { bound: Some(local) };
                    return Err(e);
                }
            };
        let nonblocking = is_nonblocking(fd);
        // SAFETY: F_GETFD takes no argument.
        let cloexec = unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC != 0;
        // The program's descriptor number now names the listener: the socket it named
        // before is closed by dup3 (its pump end sees the hang-up and goes).
        drop_descriptor(fd);
        let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
        // SAFETY: both descriptors are open; dup3 atomically replaces `fd`.
        let duplicated = unsafe { super::interpose::real_dup3(listener_end.as_fd(), fd, flags) };
        drop(listener_end);
        duplicated?;
        sys::set_nonblocking(borrow(fd), nonblocking)?;
        *state = State::Listening(acceptor);
        drop(state);
        register(fd, self.clone());
        Ok(())
    }

    /// `accept4(2)`: the new descriptor and the peer's address.
    pub(super) fn accept(&self, fd: RawFd, flags: i32) -> io::Result<(RawFd, SocketAddr)> {
        let acceptor = match &*self.lock() {
            State::Listening(acceptor) => acceptor.clone(),
            _ if self.is_datagram() => return Err(errno(libc::EOPNOTSUPP)),
            _ => return Err(errno(libc::EINVAL)),
        };
        let (conn_fd, conn) = acceptor.accept(borrow(fd))?;
        sys::set_nonblocking(conn_fd.as_fd(), flags & libc::SOCK_NONBLOCK != 0)?;
        sys::set_cloexec(conn_fd.as_fd(), flags & libc::SOCK_CLOEXEC != 0)?;
        let peer = conn.peer;
        let conn_fd = conn_fd.into_raw_fd();
        register(
            conn_fd,
            Arc::new(Socket {
                ctx: self.ctx.clone(),
                id: conn.id,
                family: self.family,
                ty: libc::SOCK_STREAM,
                protocol: 0,
                state: Mutex::new(State::Connected(conn)),
                pending: Mutex::new(Pending::default()),
            }),
        );
        Ok((conn_fd, peer))
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

    /// `getpeername(2)`.
    pub(super) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &*self.lock() {
            State::Connected(conn) => Ok(conn.peer),
            State::Datagram(udp) => udp.peer_addr(),
            _ => Err(errno(libc::ENOTCONN)),
        }
    }

    pub(super) fn is_listening(&self) -> bool {
        matches!(&*self.lock(), State::Listening(_))
    }

    pub(super) fn is_connected(&self) -> bool {
        match &*self.lock() {
            State::Connected(_) => true,
            State::Datagram(udp) => udp.peer_addr().is_ok(),
            _ => false,
        }
    }
}

/// Writes filler into `fd` (non-blocking) until the socket pair is full; returns
/// how many bytes went in.
fn fill(fd: RawFd) -> usize {
    let filler = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match sys::send(borrow(fd), &filler) {
            Ok(n) if n > 0 => total += n,
            _ => return total,
        }
    }
}
