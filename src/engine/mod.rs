//! The sans-IO core of a stack: smoltcp plus what a BSD stack has and smoltcp lacks.
//!
//! An [`Engine`] is driven by `(now, frame)` calls and never touches a file
//! descriptor, a clock or a thread: the pump feeds it frames and time, takes frames
//! out of its outbox, and moves socket bytes through closures that point straight at
//! smoltcp's rings. That keeps every decision here unit-testable and replayable.
//!
//! What it adds on top of smoltcp:
//! - loopback: frames to our own MAC, and ARP requests for our own addresses, come
//!   back in instead of going out (only while `lo` is up, as in a Linux namespace);
//! - a listen backlog: a listening socket is created per incoming SYN, up to the
//!   backlog, instead of smoltcp's one socket per port;
//! - ephemeral ports, `EADDRINUSE`/`EADDRNOTAVAIL`/`ENETUNREACH` checks, and
//!   `EHOSTUNREACH` when the next hop never answers ARP;
//! - configuration from the `ip` model in [`crate::cmd`].

mod frames;
mod ports;

use crate::cmd::NetConfig;
use ports::PortTable;
use smoltcp::iface::{Config, Interface, Route, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, Ipv4Address,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(crate) use smoltcp::iface::SocketHandle as TcpHandle;
pub(crate) use smoltcp::socket::tcp::State as TcpState;

/// Bytes of smoltcp ring per direction and connection. 64 KiB keeps the effective
/// window within what a `vde_switch` port queues without loss (FACTS.md).
pub(crate) const TCP_BUFFER: usize = 64 * 1024;

/// How long an ACK for a single segment may wait for a second one.
const ACK_DELAY: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(1);

/// Frames waiting for the link before smoltcp is told to hold further ones.
const OUTBOX_LIMIT: usize = 512;

/// How long an unanswered ARP for a connect's next hop may take: Linux gives up after
/// 3 probes a second apart and reports EHOSTUNREACH.
const ARP_GIVE_UP: Duration = Duration::from_secs(3);

/// How long an established connection waits for a peer that acknowledges nothing
/// before it fails with ETIMEDOUT (Linux's default retries take about 15 minutes;
/// `TCP_USER_TIMEOUT` is how programs shorten that there).
pub(crate) const GIVE_UP: Duration = Duration::from_secs(120);

/// The longest a connection the application let go of is kept finishing its close.
const ORPHAN_LIMIT: Duration = Duration::from_secs(60);

/// Linux's connect timeout with the default `tcp_syn_retries` (6): 127 s.
const CONNECT_GIVE_UP: Duration = Duration::from_secs(127);

/// Names a listening endpoint inside the engine.
pub(crate) type ListenerId = u64;

/// Something the pump has to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// An active open completed.
    Connected(TcpHandle),
    /// An active open failed with this errno.
    ConnectFailed(TcpHandle, i32),
    /// A connection arrived on a listener; the socket is now the pump's to serve.
    Accepted {
        listener: ListenerId,
        handle: TcpHandle,
        local: SocketAddr,
        peer: SocketAddr,
    },
    /// An open connection ended abnormally with this errno (RST: ECONNRESET).
    Aborted(TcpHandle, i32),
}

enum Phase {
    Connecting {
        since: Duration,
        next_hop: Option<Ipv4Address>,
    },
    /// A listener's socket, waiting for its handshake to finish.
    Embryo(ListenerId),
    Open,
    /// The pump let go (at `since`); kept until the closing handshake is over.
    Orphan {
        since: Duration,
    },
}

struct Conn {
    phase: Phase,
    last_state: TcpState,
    port: u16,
    /// The peer's FIN has arrived.
    peer_fin: bool,
    /// Bytes waiting for an acknowledgement at the last look, and when that last
    /// went down (or was zero): how a silent peer is told from a reset.
    unacked: usize,
    progress_at: Duration,
    /// Received bytes moved out of smoltcp when the socket entered TIME-WAIT: when
    /// that ends, smoltcp resets the socket and would drop what the application has
    /// not read yet.
    rescued: Vec<u8>,
}

impl Conn {
    fn new(phase: Phase, last_state: TcpState, port: u16) -> Conn {
        Conn {
            phase,
            last_state,
            port,
            peer_fin: false,
            unacked: 0,
            progress_at: Duration::ZERO,
            rescued: Vec::new(),
        }
    }
}

struct Listener {
    local: SocketAddr,
    backlog: usize,
    embryos: usize,
    handed_out: u64,
    /// Incremented by whoever takes connections off the listener's queue.
    accepted: Arc<AtomicU64>,
}

/// One stack's protocol state.
pub(crate) struct Engine {
    iface: Interface,
    sockets: SocketSet<'static>,
    io: FrameIo,
    config: NetConfig,
    synced: Option<u64>,
    ports: PortTable,
    // Ordered maps: the order events come out in must not depend on hash seeds,
    // or runs of the deterministic mode would differ.
    conns: BTreeMap<TcpHandle, Conn>,
    listeners: BTreeMap<ListenerId, Listener>,
    next_listener: ListenerId,
    arp_seen: HashMap<Ipv4Address, Duration>,
    events: VecDeque<Event>,
    now: Duration,
}

impl Engine {
    /// A stack whose interface has this configuration model; `seed` randomises
    /// sequence numbers; `now` is the time since the pump started.
    pub(crate) fn new(config: NetConfig, seed: u64, now: Duration) -> Engine {
        let mac = config
            .links()
            .iter()
            .find(|l| l.kind == crate::cmd::LinkKind::Ether)
            .map(|l| l.mac)
            .unwrap_or([0x02, 0, 0, 0, 0, 1]);
        let mut io = FrameIo::new(EthernetAddress(mac), 1500);
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        iface_config.random_seed = seed;
        let iface = Interface::new(iface_config, &mut Port::idle(&mut io), instant(now));
        let mut engine = Engine {
            iface,
            sockets: SocketSet::new(Vec::new()),
            io,
            config,
            synced: None,
            ports: PortTable::default(),
            conns: BTreeMap::new(),
            listeners: BTreeMap::new(),
            next_listener: 1,
            arp_seen: HashMap::new(),
            events: VecDeque::new(),
            now,
        };
        engine.sync_config();
        engine
    }

    /// Runs a stackcmd string against the model and applies the result.
    pub(crate) fn run_cmd(&mut self, cmds: &str) -> Result<String, crate::cmd::CmdError> {
        let result = self.config.run(cmds);
        self.sync_config();
        result
    }

    /// Pushes the model's addresses, routes and link state into smoltcp and the
    /// frame plumbing, if the model changed since the last time.
    fn sync_config(&mut self) {
        let generation = self.config.generation();
        if self.synced == Some(generation) {
            return;
        }
        self.synced = Some(generation);
        let mut lo_up = false;
        let mut wire_up = false;
        let mut local_v4 = Vec::new();
        let mut cidrs: Vec<(u8, IpCidr)> = Vec::new();
        for link in self.config.links() {
            match link.kind {
                crate::cmd::LinkKind::Loopback => lo_up = link.up,
                crate::cmd::LinkKind::Ether => {
                    wire_up = link.up;
                    if self.io.mac.0 != link.mac {
                        self.io.mac = EthernetAddress(link.mac);
                        self.iface
                            .set_hardware_addr(HardwareAddress::Ethernet(self.io.mac));
                    }
                }
            }
            for addr in &link.addrs {
                if let IpAddr::V4(v4) = addr.addr {
                    local_v4.push(v4);
                }
                let rank = match (addr.addr, link.kind) {
                    (IpAddr::V4(_), crate::cmd::LinkKind::Ether) => 0,
                    (IpAddr::V4(_), crate::cmd::LinkKind::Loopback) => 1,
                    (IpAddr::V6(_), crate::cmd::LinkKind::Ether) => 2,
                    (IpAddr::V6(_), crate::cmd::LinkKind::Loopback) => 3,
                };
                cidrs.push((rank, IpCidr::new(addr.addr.into(), addr.prefix_len)));
            }
        }
        // smoltcp holds 8 addresses; the model allows 8 of the user's plus those the
        // kernel adds (127.0.0.1, ::1, fe80::). When they do not all fit, what TCP over
        // IPv4 needs goes first: the link's IPv4 addresses, then loopback's.
        cidrs.sort_by_key(|(rank, _)| *rank);
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            for (_, cidr) in cidrs {
                if addrs.push(cidr).is_err() {
                    break;
                }
            }
        });
        let routes = self.config.routes();
        self.iface.routes_mut().update(|table| {
            table.clear();
            for route in routes {
                let Some(via) = route.via else { continue };
                let entry = Route {
                    cidr: IpCidr::new(route.dst.into(), route.prefix_len),
                    via_router: via.into(),
                    preferred_until: None,
                    expires_at: None,
                };
                if table.push(entry).is_err() {
                    break;
                }
            }
        });
        self.io.lo_up = lo_up;
        self.io.wire_up = wire_up;
        self.io.local_v4 = local_v4;
    }

    // ---- frames and time ----

    /// Processes one frame that arrived from the link.
    pub(crate) fn receive(&mut self, now: Duration, frame: &[u8]) {
        self.now = now;
        if !self.io.wire_up {
            return;
        }
        self.ingest(frame);
    }

    fn ingest(&mut self, frame: &[u8]) {
        if let Some(sender) = frames::arp_sender(frame) {
            self.arp_seen.insert(sender, self.now);
        }
        if let Some(syn) = frames::tcp_syn(frame) {
            if !self.admit_syn(syn) {
                return;
            }
        }
        let now = instant(self.now);
        let mut port = Port {
            io: &mut self.io,
            rx: Some(frame),
        };
        self.iface
            .poll_ingress_single(now, &mut port, &mut self.sockets);
    }

    /// Processes frames that the stack sent to itself, a bounded number per call so
    /// a pump stays responsive ([`Engine::has_loopback`] tells if more wait).
    /// Returns true if it processed any.
    pub(crate) fn receive_loopback(&mut self, now: Duration) -> bool {
        self.now = now;
        let mut any = false;
        for _ in 0..OUTBOX_LIMIT {
            let Some(frame) = self.io.loopback.pop_front() else {
                break;
            };
            self.ingest(&frame);
            self.io.recycle(frame);
            any = true;
        }
        any
    }

    /// Lets smoltcp send what its sockets have ready, then updates connection states.
    pub(crate) fn transmit(&mut self, now: Duration) {
        self.now = now;
        let ts = instant(now);
        self.iface.poll_maintenance(ts);
        for _ in 0..64 {
            let mut port = Port::idle(&mut self.io);
            let result = self.iface.poll_egress(ts, &mut port, &mut self.sockets);
            if result == smoltcp::iface::PollResult::None || self.io.outbox_full() {
                break;
            }
        }
        self.update_connections();
    }

    /// The next frame for the link, if any.
    pub(crate) fn next_outgoing(&mut self) -> Option<Vec<u8>> {
        self.io.outbox.pop_front()
    }

    /// Puts back a frame the link could not take now; it goes first next time.
    pub(crate) fn unsend(&mut self, frame: Vec<u8>) {
        self.io.outbox.push_front(frame);
    }

    /// Returns a frame buffer after the link sent it, for reuse.
    pub(crate) fn recycle(&mut self, frame: Vec<u8>) {
        self.io.recycle(frame);
    }

    /// True while looped-back frames wait to be processed.
    pub(crate) fn has_loopback(&self) -> bool {
        !self.io.loopback.is_empty()
    }

    /// How long the pump may sleep before the engine needs time to pass.
    pub(crate) fn poll_delay(&mut self, now: Duration) -> Option<Duration> {
        let mut delay = self
            .iface
            .poll_delay(instant(now), &self.sockets)
            .map(|d| Duration::from_micros(d.total_micros()));
        for conn in self.conns.values() {
            if let Phase::Connecting { since, next_hop } = conn.phase {
                let limit = if next_hop.is_some() {
                    ARP_GIVE_UP
                } else {
                    CONNECT_GIVE_UP
                };
                let left = (since + limit).saturating_sub(now);
                delay = Some(delay.map_or(left, |d| d.min(left)));
            }
        }
        delay
    }

    /// The next event for the pump.
    pub(crate) fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- TCP ----

    fn new_tcp_socket() -> tcp::Socket<'static> {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
            tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
        );
        socket.set_congestion_control(tcp::CongestionControl::Cubic);
        // smoltcp acknowledges every second segment at once; the delay only holds
        // back the ACK of a lone segment. 10 ms (its default) stalls a fast link once
        // per window (FACTS.md); none at all doubles the ACK frames a switch carries.
        socket.set_ack_delay(Some(ACK_DELAY));
        socket
    }

    /// Starts an active open to `remote`, from `local` (unspecified parts chosen here).
    pub(crate) fn connect(
        &mut self,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) -> io::Result<TcpHandle> {
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(errno(libc::ECONNREFUSED));
        }
        let hop = self
            .config
            .lookup(remote.ip())
            .ok_or_else(|| errno(libc::ENETUNREACH))?;
        let local_ip = local.map(|l| l.ip()).filter(|ip| !ip.is_unspecified());
        if let Some(ip) = local_ip {
            if !self.config.is_local_addr(ip) {
                return Err(errno(libc::EADDRNOTAVAIL));
            }
        }
        let port = self
            .ports
            .take(local.map_or(0, |l| l.port()))
            .ok_or_else(|| errno(libc::EADDRINUSE))?;
        let mut socket = Self::new_tcp_socket();
        let endpoint = IpListenEndpoint {
            addr: local_ip.map(IpAddress::from),
            port,
        };
        if socket
            .connect(self.iface.context(), to_endpoint(remote), endpoint)
            .is_err()
        {
            self.ports.release(port);
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        let next_hop = match hop.addr {
            IpAddr::V4(v4) if !hop.local => Some(v4),
            _ => None,
        };
        let handle = self.sockets.add(socket);
        self.conns.insert(
            handle,
            Conn::new(
                Phase::Connecting {
                    since: self.now,
                    next_hop,
                },
                TcpState::SynSent,
                port,
            ),
        );
        Ok(handle)
    }

    /// Checks that `local` could be bound, and reserves its port (0: an ephemeral one).
    /// Returns the address with the port filled in.
    pub(crate) fn bind(&mut self, local: SocketAddr) -> io::Result<SocketAddr> {
        if !local.ip().is_unspecified() && !self.config.is_local_addr(local.ip()) {
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        let port = self
            .ports
            .take(local.port())
            .ok_or_else(|| errno(libc::EADDRINUSE))?;
        Ok(SocketAddr::new(local.ip(), port))
    }

    /// Releases a port taken by [`Engine::bind`] that was never used.
    pub(crate) fn unbind(&mut self, local: SocketAddr) {
        self.ports.release(local.port());
    }

    /// Listens on an address already reserved with [`Engine::bind`]. `accepted` is
    /// counted up by the application side as it takes connections.
    pub(crate) fn listen(
        &mut self,
        local: SocketAddr,
        backlog: usize,
        accepted: Arc<AtomicU64>,
    ) -> ListenerId {
        let id = self.next_listener;
        self.next_listener += 1;
        self.listeners.insert(
            id,
            Listener {
                local,
                // 0 too: Linux then queues one connection.
                backlog,
                embryos: 0,
                handed_out: 0,
                accepted,
            },
        );
        id
    }

    /// Stops listening: handshakes in progress are reset, the port is released.
    pub(crate) fn unlisten(&mut self, id: ListenerId) {
        let Some(listener) = self.listeners.remove(&id) else {
            return;
        };
        let embryos: Vec<TcpHandle> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Embryo(l) if l == id))
            .map(|(h, _)| *h)
            .collect();
        for handle in embryos {
            self.sockets.get_mut::<tcp::Socket>(handle).abort();
            self.conns.get_mut(&handle).expect("listed above").phase =
                Phase::Orphan { since: self.now };
        }
        self.ports.release(listener.local.port());
    }

    /// Decides whether an incoming SYN may reach smoltcp; makes a listening socket
    /// for it when it is for a listener with room in its backlog.
    fn admit_syn(&mut self, syn: frames::Syn) -> bool {
        let Some((&id, listener)) = self.listeners.iter_mut().find(|(_, l)| {
            l.local.port() == syn.dst.port()
                && (l.local.ip().is_unspecified() || l.local.ip() == syn.dst.ip())
        }) else {
            return true; // smoltcp answers with RST: connection refused
        };
        let sockets = &self.sockets;
        let existing = self.conns.iter().any(|(h, c)| {
            let s = sockets.get::<tcp::Socket>(*h);
            match c.phase {
                Phase::Embryo(l) if l == id && s.state() == TcpState::Listen => true,
                _ => {
                    s.remote_endpoint() == Some(to_endpoint(syn.src))
                        && s.local_endpoint().map(|e| e.port) == Some(syn.dst.port())
                }
            }
        });
        if existing {
            return true;
        }
        let unaccepted = listener
            .handed_out
            .saturating_sub(listener.accepted.load(Ordering::Relaxed))
            as usize;
        // Linux queues one connection more than the backlog (`sk_acceptq_is_full`
        // compares with `>`): the kernel backend, the oracle, holds 129 for 128.
        if listener.embryos + unaccepted > listener.backlog {
            return false; // a full backlog drops the SYN; the peer will retry
        }
        let mut socket = Self::new_tcp_socket();
        let endpoint = IpListenEndpoint {
            addr: (!listener.local.ip().is_unspecified()).then(|| listener.local.ip().into()),
            port: listener.local.port(),
        };
        if socket.listen(endpoint).is_err() {
            return true;
        }
        listener.embryos += 1;
        self.ports.share(listener.local.port());
        let handle = self.sockets.add(socket);
        self.conns.insert(
            handle,
            Conn::new(Phase::Embryo(id), TcpState::Listen, listener.local.port()),
        );
        true
    }

    /// The smoltcp socket behind `handle`, for moving bytes and reading state.
    pub(crate) fn tcp(&mut self, handle: TcpHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(handle)
    }

    /// Bytes received on `handle` and not taken yet.
    pub(crate) fn recv_queue(&mut self, handle: TcpHandle) -> usize {
        let rescued = self.conns.get(&handle).map_or(0, |c| c.rescued.len());
        rescued + self.sockets.get::<tcp::Socket>(handle).recv_queue()
    }

    /// Offers received bytes to `take`, which returns how many it took; stops when
    /// it takes fewer than offered or fails. Returns the total taken, or the error
    /// if nothing was.
    pub(crate) fn recv_with(
        &mut self,
        handle: TcpHandle,
        mut take: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut total = 0;
        if let Some(conn) = self.conns.get_mut(&handle) {
            if !conn.rescued.is_empty() {
                let offered = conn.rescued.len();
                match take(&conn.rescued) {
                    Ok(n) => {
                        conn.rescued.drain(..n);
                        total += n;
                        if n < offered {
                            return Ok(total);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        // At most two passes: the ring's filled part may wrap once.
        for _ in 0..2 {
            if !socket.can_recv() {
                break;
            }
            let mut failure = None;
            let offered_and_taken = socket.recv(|bytes| match take(bytes) {
                Ok(n) => (n, (bytes.len(), n)),
                Err(e) => {
                    failure = Some(e);
                    (0, (bytes.len(), 0))
                }
            });
            match (offered_and_taken, failure) {
                (_, Some(e)) if total == 0 => return Err(e),
                (_, Some(_)) => break,
                (Ok((offered, n)), None) => {
                    total += n;
                    if n < offered {
                        break;
                    }
                }
                (Err(_), None) => break,
            }
        }
        Ok(total)
    }

    /// The peer sent FIN and every byte before it has been taken: end of stream.
    pub(crate) fn recv_finished(&mut self, handle: TcpHandle) -> bool {
        let Some(conn) = self.conns.get(&handle) else {
            return false;
        };
        conn.peer_fin
            && conn.rescued.is_empty()
            && self.sockets.get::<tcp::Socket>(handle).recv_queue() == 0
    }

    /// The pump is done with `handle`: a graceful close continues in the background,
    /// an abort (`reset`) sends RST now.
    pub(crate) fn release(&mut self, handle: TcpHandle, reset: bool) {
        let Some(conn) = self.conns.get_mut(&handle) else {
            return;
        };
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        if reset {
            socket.abort();
        } else {
            socket.close();
        }
        conn.phase = Phase::Orphan { since: self.now };
    }

    fn forget(&mut self, handle: TcpHandle) {
        if let Some(conn) = self.conns.remove(&handle) {
            self.sockets.remove(handle);
            self.ports.release(conn.port);
        }
    }

    /// Turns smoltcp state changes into events, enforces connect deadlines and
    /// frees finished sockets.
    fn update_connections(&mut self) {
        let now = self.now;
        let mut finished = Vec::new();
        for (&handle, conn) in self.conns.iter_mut() {
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            let state = socket.state();
            let last = std::mem::replace(&mut conn.last_state, state);
            match conn.phase {
                Phase::Connecting { since, next_hop } => {
                    if state == TcpState::SynSent {
                        let waited = now.saturating_sub(since);
                        let arp_silent = next_hop.is_some_and(|hop| {
                            self.arp_seen.get(&hop).is_none_or(|&seen| seen < since)
                        });
                        let failure = if arp_silent && waited >= ARP_GIVE_UP {
                            Some(libc::EHOSTUNREACH)
                        } else if waited >= CONNECT_GIVE_UP {
                            Some(libc::ETIMEDOUT)
                        } else {
                            None
                        };
                        if let Some(err) = failure {
                            socket.abort();
                            conn.phase = Phase::Orphan { since: now };
                            self.events.push_back(Event::ConnectFailed(handle, err));
                        }
                    } else if state == TcpState::Closed {
                        conn.phase = Phase::Orphan { since: now };
                        self.events
                            .push_back(Event::ConnectFailed(handle, libc::ECONNREFUSED));
                    } else {
                        conn.phase = Phase::Open;
                        self.events.push_back(Event::Connected(handle));
                    }
                }
                Phase::Embryo(id) => match state {
                    TcpState::Listen | TcpState::SynReceived => {}
                    TcpState::Closed => {
                        conn.phase = Phase::Orphan { since: now };
                        if let Some(l) = self.listeners.get_mut(&id) {
                            l.embryos -= 1;
                        }
                    }
                    _ => {
                        conn.phase = Phase::Open;
                        if let Some(l) = self.listeners.get_mut(&id) {
                            l.embryos -= 1;
                            l.handed_out += 1;
                        }
                        let (Some(local), Some(peer)) =
                            (socket.local_endpoint(), socket.remote_endpoint())
                        else {
                            continue;
                        };
                        self.events.push_back(Event::Accepted {
                            listener: id,
                            handle,
                            local: from_endpoint(local),
                            peer: from_endpoint(peer),
                        });
                    }
                },
                Phase::Open => {
                    if matches!(
                        state,
                        TcpState::CloseWait
                            | TcpState::LastAck
                            | TcpState::Closing
                            | TcpState::TimeWait
                    ) {
                        conn.peer_fin = true;
                    }
                    if state == TcpState::TimeWait {
                        for _ in 0..2 {
                            let _ = socket.recv(|bytes| {
                                conn.rescued.extend_from_slice(bytes);
                                (bytes.len(), ())
                            });
                        }
                    }
                    // smoltcp's timeout also ends idle connections, so it is armed
                    // only while bytes wait for an acknowledgement: then a peer that
                    // says nothing for GIVE_UP has gone.
                    let waiting = socket.send_queue();
                    if waiting < conn.unacked || waiting == 0 {
                        conn.progress_at = now;
                    }
                    conn.unacked = waiting;
                    let armed = waiting > 0 && state != TcpState::Closed;
                    if armed != socket.timeout().is_some() {
                        socket.set_timeout(armed.then(|| {
                            smoltcp::time::Duration::from_micros(GIVE_UP.as_micros() as u64)
                        }));
                    }
                    let graceful = matches!(
                        last,
                        TcpState::LastAck | TcpState::TimeWait | TcpState::Closed
                    );
                    if state == TcpState::Closed && !graceful {
                        let silent = now.saturating_sub(conn.progress_at) >= GIVE_UP;
                        let errno = if silent {
                            libc::ETIMEDOUT
                        } else {
                            libc::ECONNRESET
                        };
                        self.events.push_back(Event::Aborted(handle, errno));
                    }
                }
                Phase::Orphan { .. } => {}
            }
            if let Phase::Orphan { since } = conn.phase {
                // A closed socket may still owe the peer its RST (smoltcp clears the
                // endpoints once that is sent); one that cannot send it in a few
                // seconds never will.
                let done = match state {
                    TcpState::TimeWait => true,
                    TcpState::Closed => {
                        socket.local_endpoint().is_none()
                            || now.saturating_sub(since) >= ARP_GIVE_UP
                    }
                    // Linux gives an orphan in FIN-WAIT-2 `tcp_fin_timeout` (60 s);
                    // a peer that never finishes its side gets no longer than that.
                    _ => now.saturating_sub(since) >= ORPHAN_LIMIT,
                };
                if done {
                    finished.push(handle);
                }
            }
        }
        for handle in finished {
            self.forget(handle);
        }
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn instant(since_start: Duration) -> Instant {
    Instant::from_micros(since_start.as_micros() as i64)
}

fn to_endpoint(addr: SocketAddr) -> IpEndpoint {
    IpEndpoint::new(addr.ip().into(), addr.port())
}

fn from_endpoint(endpoint: IpEndpoint) -> SocketAddr {
    SocketAddr::new(endpoint.addr.into(), endpoint.port)
}

/// Frame buffers between smoltcp and the link, and the loopback path.
struct FrameIo {
    mac: EthernetAddress,
    mtu: usize,
    lo_up: bool,
    wire_up: bool,
    local_v4: Vec<Ipv4Address>,
    loopback: VecDeque<Vec<u8>>,
    outbox: VecDeque<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    ack_sequence: frames::AckSequence,
}

impl FrameIo {
    fn new(mac: EthernetAddress, mtu: usize) -> FrameIo {
        FrameIo {
            mac,
            mtu,
            lo_up: false,
            wire_up: false,
            local_v4: Vec::new(),
            loopback: VecDeque::new(),
            outbox: VecDeque::new(),
            pool: Vec::new(),
            ack_sequence: frames::AckSequence::default(),
        }
    }

    fn outbox_full(&self) -> bool {
        self.outbox.len() >= OUTBOX_LIMIT
    }

    fn recycle(&mut self, frame: Vec<u8>) {
        if self.pool.len() < OUTBOX_LIMIT {
            self.pool.push(frame);
        }
    }

    fn is_local_v4(&self, addr: Ipv4Address) -> bool {
        (self.lo_up && addr.octets()[0] == 127) || self.local_v4.contains(&addr)
    }

    /// Sends a frame smoltcp built where it belongs: back in (loopback), out, or
    /// nowhere (a down link).
    fn route(&mut self, mut frame: Vec<u8>) {
        self.ack_sequence.on_egress(&mut frame);
        if frames::dst_mac(&frame) == Some(self.mac) {
            if self.lo_up {
                self.loopback.push_back(frame);
            } else {
                self.recycle(frame);
            }
            return;
        }
        if let Some((target, asker)) = frames::arp_request(&frame) {
            if self.is_local_v4(target) {
                if self.lo_up {
                    frames::write_arp_reply(&mut frame, self.mac, target, asker);
                    self.loopback.push_back(frame);
                } else {
                    self.recycle(frame);
                }
                return;
            }
        }
        if self.wire_up {
            self.outbox.push_back(frame);
        } else {
            self.recycle(frame);
        }
    }
}

/// The smoltcp device view of a [`FrameIo`], holding at most one received frame.
struct Port<'a> {
    io: &'a mut FrameIo,
    rx: Option<&'a [u8]>,
}

impl<'a> Port<'a> {
    fn idle(io: &'a mut FrameIo) -> Port<'a> {
        Port { io, rx: None }
    }
}

impl Device for Port<'_> {
    type RxToken<'b>
        = RxOne<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = TxOne<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(RxOne<'_>, TxOne<'_>)> {
        let frame = self.rx.take()?;
        Some((RxOne(frame), TxOne(self.io)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxOne<'_>> {
        if self.io.outbox_full() {
            return None;
        }
        Some(TxOne(self.io))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.io.mtu + 14;
        caps
    }
}

struct RxOne<'a>(&'a [u8]);

impl phy::RxToken for RxOne<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.0)
    }
}

struct TxOne<'a>(&'a mut FrameIo);

impl phy::TxToken for TxOne<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = self.0.pool.pop().unwrap_or_default();
        frame.clear();
        frame.resize(len, 0);
        let result = f(&mut frame);
        self.0.route(frame);
        result
    }
}

#[cfg(test)]
mod tests;
