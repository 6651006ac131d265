//! The pump: one thread per stack that moves frames between the link and the engine,
//! and bytes between the engine and the socket pairs whose other ends the application
//! holds.
//!
//! It sleeps in mio until there is work (a frame, bytes from the application, room to
//! write to it, a control request, or the engine's next timer), so an idle stack uses
//! no CPU; while an exchange goes on, it polls for a short while before it sleeps
//! (`idle.rs`: waking a thread whose CPU idled is the dearest step of a connection
//! on a virtual machine). Bytes are read from a socket pair straight into smoltcp's transmit ring and
//! written from its receive ring straight to the socket pair: one copy each way, and
//! back-pressure is the TCP window itself: the pump stops reading a socket pair while
//! the ring is full and leaves data in the ring while the application does not read.
//!
//! A step costs what is ready: it serves the sockets mio reported, those the
//! engine says changed and those whose phase moved, from a queue; and an end is
//! watched for writability only once a write to it would block, so that the
//! application reading, or the switch taking a frame, does not wake the pump.

use crate::cmd::CmdError;
use crate::engine::{
    DatagramProto, DhcpAttempt, DhcpLease as Lease, Engine, Event, ListenerId, SocketOptions,
    TcpHandle, TcpStats, UdpHandle,
};
use crate::link::Link;
use crate::sys;
use crossbeam_channel::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

mod conn;
mod dhcp;
mod idle;
mod rings;
mod rx_batch;
mod threads;
mod udp;

use conn::{Conn, Phase, Verdict};
pub(crate) use idle::Doorbell;
use idle::{PollSlot, SpinWindow};
pub(crate) use threads::PumpThread;
pub(crate) use udp::UdpShared;

pub(crate) const WAKER: Token = Token(0);
const LINK_DATA: Token = Token(1);
const LINK_HANGUP: Token = Token(2);
/// Socket ids (and their mio tokens) start here.
pub(crate) const FIRST_SOCKET_ID: u64 = 16;

/// Frames taken from the link per wake-up before the pump looks at anything else.
const LINK_BURST: usize = 512;

/// Frames handed to the link per batch call (received: up to as many).
const LINK_BATCH: usize = rx_batch::MAX_BATCH;

/// State shared between a connection's application handle and the pump.
#[derive(Debug, Default)]
pub(crate) struct ConnShared {
    /// An errno to report once on the next read or write that fails or sees EOF.
    pub(crate) error: AtomicI32,
}

impl ConnShared {
    /// Takes the pending error, if any.
    pub(crate) fn take_error(&self) -> Option<io::Error> {
        match self.error.swap(0, Ordering::AcqRel) {
            0 => None,
            code => Some(io::Error::from_raw_os_error(code)),
        }
    }
}

/// Why a stack stopped serving before it was dropped: the panic of its pump thread.
/// Shared by the pump and every handle that reaches it; set at most once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failure(Arc<OnceLock<String>>);

impl Failure {
    /// The panic message, once the pump panicked.
    pub(crate) fn message(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    /// The error the stack's calls give once it failed: `ENETDOWN`'s kind, with
    /// the panic message.
    pub(crate) fn error(&self) -> Option<io::Error> {
        self.message()
            .map(|m| io::Error::new(io::ErrorKind::NetworkDown, StackFailed(m.to_owned())))
    }

    /// `e`, or the failure's own error when `e` is the bare `ENETDOWN` a dead
    /// stack's socket reports.
    pub(crate) fn explain(&self, e: io::Error) -> io::Error {
        match e.raw_os_error() {
            Some(libc::ENETDOWN) => self.error().unwrap_or(e),
            _ => e,
        }
    }
}

/// The error of a stack whose pump thread panicked.
#[derive(Debug)]
struct StackFailed(String);

impl std::fmt::Display for StackFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "vdestack: the stack stopped, its thread panicked: {} (its sockets are closed)",
            self.0
        )
    }
}

impl std::error::Error for StackFailed {}

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Kept by the pump beside the pump end of a socket for exactly as long as it keeps
/// that end; dropped with it. Its [`EndWatch`] tells whoever tracks the application
/// end (the `bsd` registry) that the pump let the socket go, without the pump
/// knowing who watches.
pub(crate) struct EndToken(#[allow(dead_code)] Arc<()>);

/// Watches an [`EndToken`]: [`EndWatch::released`] once the pump dropped it.
#[derive(Clone, Debug)]
pub(crate) struct EndWatch(Weak<()>);

impl EndToken {
    /// A token and its watch.
    pub(crate) fn new() -> (EndToken, EndWatch) {
        let token = Arc::new(());
        let watch = EndWatch(Arc::downgrade(&token));
        (EndToken(token), watch)
    }
}

impl EndWatch {
    /// Whether the pump let go of the socket's pump end (or never had it).
    pub(crate) fn released(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// What an accepted connection's application end needs, parked until `accept` takes it.
pub(crate) struct Handoff {
    pub(crate) shared: Arc<ConnShared>,
    /// The watch of the token the pump keeps beside the connection's pump end.
    pub(crate) watch: EndWatch,
}

/// Connections handed to listeners and not yet accepted, by id.
pub(crate) type Handoffs = Arc<Mutex<HashMap<u64, Handoff>>>;

/// A request from an application thread.
pub(crate) enum Control {
    /// Run a stackcmd string.
    Cmd {
        cmds: String,
        reply: Sender<Result<String, CmdError>>,
    },
    /// Actively open a TCP connection served through `fd` (the pump's end; `None`:
    /// the end of the `msocket` socket adopted under `id`). The first `junk` bytes
    /// the application end sent are filler, discarded once connected: a
    /// non-blocking connect fills the socket pair so that the application's end
    /// becomes writable exactly when the connection is up. On an adopted end,
    /// whatever the application wrote before it connected is discarded too: such
    /// bytes are refused on Linux (`EPIPE`), never sent once connected.
    Connect {
        id: u64,
        fd: Option<OwnedFd>,
        junk: usize,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        options: SocketOptions,
        shared: Arc<ConnShared>,
        reply: Sender<io::Result<SocketAddr>>,
    },
    /// Abandon a connect that the application stopped waiting for.
    CancelConnect { id: u64 },
    /// Reserve a local address (port 0: ephemeral); for the `msocket` socket
    /// adopted under `owner`, if any, whose close (while it is still unused)
    /// releases it, as Linux's `close` of a socket that was only bound.
    Bind {
        local: SocketAddr,
        options: SocketOptions,
        owner: Option<u64>,
        reply: Sender<io::Result<SocketAddr>>,
    },
    /// Release an address reserved with `Bind` (with these options, for `owner`)
    /// and never used.
    Unbind {
        local: SocketAddr,
        options: SocketOptions,
        owner: Option<u64>,
    },
    /// Listen on a bound address; connections go to `fd` (the pump's seqpacket end).
    Listen {
        id: u64,
        fd: OwnedFd,
        local: SocketAddr,
        backlog: usize,
        accepted: Arc<AtomicU64>,
        options: SocketOptions,
        /// Kept beside `fd` while the pump keeps it.
        token: Option<EndToken>,
        /// The adopted socket whose reserved address the listener takes over.
        owner: Option<u64>,
        reply: Sender<io::Result<()>>,
    },
    /// Keep a socket made by `msocket` until the application closes it, with `token`
    /// beside it (it follows the end into the connection or UDP socket it becomes).
    Adopt {
        id: u64,
        fd: OwnedFd,
        token: EndToken,
    },
    /// New socket options for the connection, listener or UDP socket `id`.
    SetOptions {
        id: u64,
        options: SocketOptions,
        reply: Sender<io::Result<()>>,
    },
    /// Open a UDP (or ping) socket bound to `local` (port 0: ephemeral), served
    /// through `fd` (`None`: the `msocket` end adopted under `id`). Replies with the
    /// bound address.
    UdpOpen {
        id: u64,
        proto: DatagramProto,
        fd: Option<OwnedFd>,
        local: SocketAddr,
        options: SocketOptions,
        shared: Arc<UdpShared>,
        reply: Sender<io::Result<SocketAddr>>,
    },
    /// Connect a UDP socket (`None`: dissolve the association). Replies with the
    /// local address; output to the application then waits for `UdpResume`.
    UdpConnect {
        id: u64,
        remote: Option<SocketAddr>,
        reply: Sender<io::Result<SocketAddr>>,
    },
    /// The application drained its end after `UdpConnect`.
    UdpResume { id: u64 },
    /// Send one datagram to `dest` from a connected UDP socket, beside the socket
    /// pair (which carries only the peer's datagrams then).
    UdpSendTo {
        id: u64,
        dest: SocketAddr,
        data: Vec<u8>,
        reply: Sender<io::Result<()>>,
    },
    /// The descriptors the pump holds now (its poll, the link's, its ends of the
    /// sockets' pairs, connections waiting to be accepted), for a program that
    /// closes every descriptor it does not know of.
    Descriptors { reply: Sender<Vec<RawFd>> },
    /// How many connections still have something to send or acknowledge
    /// (`Engine::unfinished_connections`).
    Unfinished { reply: Sender<usize> },
    /// Get a DHCP lease on interface `ifname`; the reply waits for the lease or
    /// for the attempt to give up (`ETIMEDOUT`).
    Dhcp {
        ifname: String,
        attempt: DhcpAttempt,
        reply: Sender<io::Result<Lease>>,
    },
    /// What `TCP_INFO` reports of connection `id` (`None`: the pump let it go).
    TcpStats {
        id: u64,
        reply: Sender<Option<TcpStats>>,
    },
    /// The hop limit and MTU of the path to `peer`, as the interface has
    /// them (a router may have advertised both for IPv6).
    PathTo {
        peer: std::net::IpAddr,
        reply: Sender<(u8, usize)>,
    },
    /// Join (or leave) a multicast group on a UDP socket.
    Membership {
        id: u64,
        group: std::net::IpAddr,
        join: bool,
        reply: Sender<io::Result<()>>,
    },
    /// Stop the pump.
    Shutdown,
    /// Make the pump panic, as a bug would (tests of the failure path).
    #[cfg(test)]
    Panic,
}

/// What a new connection is made of: its id, its pump end and token, and the state
/// it shares with the application.
struct NewConn {
    id: u64,
    fd: OwnedFd,
    token: Option<EndToken>,
    shared: Arc<ConnShared>,
    /// `fd` is an adopted end: non-blocking already, and watched for reading
    /// under `id` (all a connection needs at first).
    watched: bool,
}

struct ListenerEntry {
    fd: OwnedFd,
    listener: ListenerId,
    /// The end is watched for writability too (since a hand-over blocked): the
    /// application's `accept` makes room on it each time, and that is news only
    /// while connections wait to be handed over.
    watches_writable: bool,
    /// Accepted connections the seqpacket could not take yet.
    backlog: VecDeque<(u64, OwnedFd, Vec<u8>)>,
    /// Ids handed to this listener, still parked in `handoffs`.
    handed: Vec<u64>,
    /// Dropped with `fd` (see [`EndToken`]).
    _token: Option<EndToken>,
}

/// Bytes of an address as it travels beside data on a socket pair: family
/// (4 or 6), 16 address bytes (IPv4 in the first four), port (little-endian).
pub(crate) const ADDR_BYTES: usize = 19;

/// Encodes `addr` in [`ADDR_BYTES`] bytes.
pub(crate) fn encode_addr(addr: SocketAddr) -> [u8; ADDR_BYTES] {
    let mut out = [0u8; ADDR_BYTES];
    match addr {
        SocketAddr::V4(a) => {
            out[0] = 4;
            out[1..5].copy_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out[0] = 6;
            out[1..17].copy_from_slice(&a.ip().octets());
        }
    }
    out[17..].copy_from_slice(&addr.port().to_le_bytes());
    out
}

/// The inverse of [`encode_addr`]; `None` for anything it could not have made.
pub(crate) fn decode_addr(bytes: &[u8]) -> Option<SocketAddr> {
    let bytes: &[u8; ADDR_BYTES] = bytes.get(..ADDR_BYTES)?.try_into().ok()?;
    let port = u16::from_le_bytes([bytes[17], bytes[18]]);
    let ip: std::net::IpAddr = match bytes[0] {
        4 => std::net::Ipv4Addr::new(bytes[1], bytes[2], bytes[3], bytes[4]).into(),
        6 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[1..17]).ok()?).into(),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Encodes what `accept` learns beside the new descriptor.
pub(crate) fn encode_accept(id: u64, local: SocketAddr, peer: SocketAddr) -> Vec<u8> {
    let mut out = id.to_le_bytes().to_vec();
    out.extend_from_slice(&encode_addr(local));
    out.extend_from_slice(&encode_addr(peer));
    out
}

/// The inverse of [`encode_accept`].
pub(crate) fn decode_accept(bytes: &[u8]) -> Option<(u64, SocketAddr, SocketAddr)> {
    if bytes.len() != 8 + 2 * ADDR_BYTES {
        return None;
    }
    let id = u64::from_le_bytes(bytes[..8].try_into().ok()?);
    let local = decode_addr(&bytes[8..])?;
    let peer = decode_addr(&bytes[8 + ADDR_BYTES..])?;
    Some((id, local, peer))
}

/// Everything the pump thread owns.
pub(crate) struct Pump {
    poll: Poll,
    link: Box<dyn Link>,
    link_readable: bool,
    link_blocked: bool,
    link_dead: bool,
    engine: Engine,
    control: Receiver<Control>,
    /// Rung by the application threads' controls while the pump sleeps.
    doorbell: Arc<Doorbell>,
    /// How long the pump polls after news before it sleeps (see `idle.rs`).
    spin: SpinWindow,
    /// Bytes of frames in and out during the current step.
    carried: usize,
    /// The current turn of the loop sent a frame, served a socket, handled a
    /// control or an engine event: what makes the pump poll for a while after.
    acted: bool,
    /// The last step wrote received bytes to an application's end (see
    /// `Pump::serve`).
    woke_reader: bool,
    conns: HashMap<u64, Conn>,
    by_handle: HashMap<TcpHandle, u64>,
    /// The connections to serve at the next step (each once: `Conn::queued`):
    /// those mio reported, those the engine touched, those whose phase moved.
    /// A step serves these, not every connection.
    ready: Vec<u64>,
    /// The engine's touched connections, as it hands them over.
    touched: Vec<TcpHandle>,
    listeners: HashMap<u64, ListenerEntry>,
    by_listener: HashMap<ListenerId, u64>,
    handoffs: Handoffs,
    /// Sockets from `msocket` that no call has used yet, with their tokens.
    adopted: HashMap<u64, (OwnedFd, Option<EndToken>)>,
    /// The addresses reserved by `Bind` for adopted sockets, released when the
    /// socket is closed before it connects or listens.
    reserved: HashMap<u64, (SocketAddr, SocketOptions)>,
    udps: HashMap<u64, udp::UdpEntry>,
    by_udp: HashMap<UdpHandle, u64>,
    /// The UDP sockets to serve at the next step (each once).
    udp_ready: Vec<u64>,
    /// The UDP sockets holding a datagram smoltcp had no room for: served at
    /// every step until it leaves.
    udp_stalled: std::collections::HashSet<u64>,
    /// Room for the largest datagram an application may write, while the stack
    /// has UDP sockets (see `udp.rs`).
    udp_scratch: Vec<u8>,
    next_accept_id: u64,
    start: Instant,
    /// Receive buffers for one batch of frames, as many as the link needs.
    rx: rx_batch::RxBatch,
    /// Staging for one batch of outgoing frames (kept to reuse its allocation).
    tx_frames: Vec<Vec<u8>>,
    /// Where every frame in and out of the link is recorded, if anywhere.
    capture: Option<Capture>,
    /// A copy of the engine's configuration for application threads, which check
    /// a datagram's route before it leaves their hands (see [`ConfigView`]).
    config_view: ConfigView,
    /// Set if this pump panics.
    failure: Failure,
    /// Commands and requests waiting for the DHCP client (see `dhcp.rs`).
    dhcp_waiters: Vec<dhcp::Waiter>,
    /// The name servers of the last lease, for the stack to take in.
    lease_servers: LeaseServers,
    /// Room for the events [`Pump::catch_up`] takes in.
    late_events: Events,
}

/// The stack's configuration as application threads see it: replaced by the pump
/// after every command, read where a call must fail at once as on Linux
/// (`sendto` to an unreachable network).
pub(crate) type ConfigView = Arc<Mutex<Arc<crate::cmd::NetConfig>>>;

/// The name servers a DHCP lease brought, put there by the pump and taken in by
/// the stack, which keeps its name servers (a lease replaces them, as udhcpc's
/// script rewrites resolv.conf).
pub(crate) type LeaseServers = Arc<Mutex<Option<Vec<std::net::IpAddr>>>>;

/// A pcap file of the link's frames, stamped with wall-clock time.
pub(crate) type Capture = crate::pcap::PcapWriter<std::io::BufWriter<std::fs::File>>;

fn record(capture: &mut Option<Capture>, frame: &[u8]) {
    if let Some(pcap) = capture {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if pcap.write_frame(now, frame).is_err() {
            // A capture that cannot be written (disk full) is given up, not the stack.
            *capture = None;
        }
    }
}

impl Pump {
    /// A pump over `link` and `engine`, woken through `poll`'s waker by controls.
    /// Boxed: moved into its thread as a pointer, the pump is not copied onto
    /// that thread's stack (whose pages, once touched, stay the stack's).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        poll: Poll,
        link: Box<dyn Link>,
        mut engine: Engine,
        control: Receiver<Control>,
        doorbell: Arc<Doorbell>,
        handoffs: Handoffs,
        start: Instant,
        capture: Option<Capture>,
        config_view: ConfigView,
        failure: Failure,
        lease_servers: LeaseServers,
    ) -> io::Result<Box<Pump>> {
        if let Some(fd) = link.data_fd() {
            // Writability only while the link is blocked (see `Pump::block_link`):
            // the switch draining each frame sent is an edge that would wake the
            // pump for nothing.
            poll.registry()
                .register(&mut SourceFd(&fd), LINK_DATA, Interest::READABLE)?;
        }
        if let Some(fd) = link.hangup_fd() {
            poll.registry()
                .register(&mut SourceFd(&fd), LINK_HANGUP, Interest::READABLE)?;
        }
        // TCP rings on page mappings: no memory until bytes flow.
        engine.set_ring_source(Box::new(rings::PageRings::default()));
        let spin = SpinWindow::at_birth();
        doorbell.set_window(spin);
        Ok(Box::new(Pump {
            poll,
            link,
            link_readable: true,
            link_blocked: false,
            link_dead: false,
            engine,
            control,
            doorbell,
            spin,
            carried: 0,
            acted: false,
            woke_reader: false,
            conns: HashMap::new(),
            by_handle: HashMap::new(),
            ready: Vec::new(),
            touched: Vec::new(),
            listeners: HashMap::new(),
            by_listener: HashMap::new(),
            handoffs,
            adopted: HashMap::new(),
            reserved: HashMap::new(),
            udps: HashMap::new(),
            by_udp: HashMap::new(),
            udp_ready: Vec::new(),
            udp_stalled: std::collections::HashSet::new(),
            udp_scratch: Vec::new(),
            // Accepted connections get ids from the top half, so they never meet the
            // application's own counter.
            next_accept_id: 1 << 62,
            start,
            rx: rx_batch::RxBatch::new(),
            tx_frames: Vec::with_capacity(LINK_BATCH),
            capture,
            config_view,
            failure,
            dhcp_waiters: Vec::new(),
            lease_servers,
            late_events: Events::with_capacity(64),
        }))
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Runs until a `Shutdown` control arrives or every stack handle is gone. A
    /// panic is not let loose in the thread: it becomes the stack's [`Failure`],
    /// which every socket of the stack then reports (`ENETDOWN`, with the
    /// message), and the pump's descriptors close as they would at a shutdown.
    ///
    /// The link is given back rather than closed here: its owner closes it
    /// (see `threads.rs`).
    pub(crate) fn run(mut self: Box<Self>) -> Box<dyn Link> {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.serve()));
        if let Err(payload) = outcome {
            self.fail(panic_message(&*payload));
        }
        std::mem::replace(&mut self.link, Box::new(crate::link::NullLink))
    }

    /// Records the failure before anything closes, so that whoever meets a closed
    /// end finds the reason already there.
    fn fail(&mut self, message: String) {
        let _ = self.failure.0.set(message);
        for conn in self.conns.values() {
            conn.shared.error.store(libc::ENETDOWN, Ordering::Release);
        }
        self.udp_fail_all(libc::ENETDOWN);
    }

    /// The loop of [`Pump::run`]. After a step that acted (see `Pump::acted`)
    /// it polls for the spin window, yielding its CPU at each turn, before it
    /// sleeps until the next event or timer (see `idle.rs`).
    fn serve(&mut self) {
        let mut events = Events::with_capacity(256);
        // A new stack is used at once (see `SpinWindow::at_birth`): it polls from
        // its start as after news.
        let mut slot = (!self.spin.window().is_zero())
            .then(PollSlot::take)
            .flatten();
        let mut spin_until = match slot {
            Some(_) => self.now() + self.spin.window(),
            None => Duration::ZERO,
        };
        // Whether the pump yielded since the last news (see below).
        let mut yielded = false;
        loop {
            let now = self.now();
            let busy = self.engine.has_loopback()
                || self.link_readable
                || !self.ready.is_empty()
                || !self.udp_ready.is_empty()
                || !self.udp_stalled.is_empty();
            let mut timeout = if busy {
                Some(Duration::ZERO)
            } else {
                self.engine.poll_delay(now)
            };
            let spinning = timeout != Some(Duration::ZERO) && now < spin_until;
            if now >= spin_until {
                slot = None;
            }
            if spinning
                || (timeout != Some(Duration::ZERO)
                    && !self.doorbell.sleep_unless(|| !self.control.is_empty()))
            {
                timeout = Some(Duration::ZERO);
            }
            // In bulk, after handing bytes to an application: the reader that
            // write woke is most likely waiting for this CPU. Yielding it once
            // lets it take them now, while the switch queues the next frames,
            // and one look without sleeping then finds a batch where the pump
            // would have slept and been woken (an interrupt through the
            // hypervisor) for a smaller one (`idle.rs`).
            let woke_reader = std::mem::take(&mut self.woke_reader);
            if timeout != Some(Duration::ZERO) && !yielded && woke_reader && self.spin.heavy() {
                yielded = true;
                std::thread::yield_now();
                timeout = Some(Duration::ZERO);
            }
            let sleeps = timeout != Some(Duration::ZERO);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return;
                }
            }
            let news = !events.is_empty() || !self.control.is_empty();
            let slept = sleeps.then(|| {
                self.doorbell.awake();
                self.now().saturating_sub(now)
            });
            if spinning && !news {
                std::thread::yield_now();
                continue;
            }
            if news {
                yielded = false;
            }
            self.dispatch(&events);
            if !self.handle_controls() {
                return;
            }
            self.step();
            if std::mem::take(&mut self.acted) {
                // An answer to what it did may come soon. (A frame that asked
                // nothing of it, as the broadcasts of other stacks coming up,
                // neither makes it poll nor teaches its window.)
                if let Some(slept) = slept.filter(|_| news) {
                    self.spin.slept(slept);
                    self.doorbell.set_window(self.spin);
                }
                let window = self.spin.window();
                if slot.is_none() && !window.is_zero() {
                    slot = PollSlot::take();
                }
                spin_until = match slot {
                    Some(_) => self.now() + window,
                    None => Duration::ZERO,
                };
            }
        }
    }

    /// Notes what the poll reported.
    fn dispatch(&mut self, events: &Events) {
        for event in events.iter() {
            match event.token() {
                WAKER => {}
                LINK_DATA => {
                    if event.is_readable() {
                        self.link_readable = true;
                    }
                    if event.is_writable() && self.link_blocked {
                        self.watch_link(false);
                    }
                }
                LINK_HANGUP => {
                    if self.link.hung_up() {
                        self.link_down();
                    }
                }
                Token(id) => self.socket_event(id as u64, event),
            }
        }
    }

    /// Takes in the events the kernel has already posted but the last poll did not
    /// return, before a control that takes a port: a program that closes a socket
    /// and then binds its port must find it free, as on Linux, and the close is
    /// posted (the pump end's hang-up) before the control is sent.
    fn catch_up(&mut self) {
        let mut events = std::mem::replace(&mut self.late_events, Events::with_capacity(0));
        if self.poll.poll(&mut events, Some(Duration::ZERO)).is_ok() {
            self.dispatch(&events);
        }
        self.late_events = events;
    }

    /// One round of work: frames in, application bytes in, frames out, bytes out;
    /// for the connections that are ready only.
    fn step(&mut self) {
        let now = self.now();
        if self.link_readable && !self.link_dead {
            self.receive_frames(now);
        }
        self.engine.receive_loopback(now);
        self.take_touched();
        // Deliver before acknowledging: the ACK then advertises the window the
        // delivery opened, instead of a small one and a window update after it.
        let ready = std::mem::take(&mut self.ready);
        self.acted |= !ready.is_empty() || !self.udp_ready.is_empty();
        for &id in &ready {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.queued = false;
            }
        }
        for &id in &ready {
            self.serve_app_output(id);
        }
        for &id in &ready {
            self.serve_app_input(id);
        }
        if !self.udp_ready.is_empty() || !self.udp_stalled.is_empty() {
            self.service_udp();
        }
        self.engine.transmit(now);
        // Before the frames leave: a duplicate address detection solicitation
        // goes out with its solicited-node group already let in.
        // A stack that records its link takes every group's frames, as
        // tcpdump puts a NIC in promiscuous mode.
        if let Some(macs) = self.engine.take_multicast_filter() {
            if self.capture.is_none() {
                // Best effort: a link that cannot filter takes everything.
                let _ = self.link.set_multicast_filter(&macs);
            }
        }
        self.flush_link();
        self.handle_engine_events();
        // What the transmit changed (a timer ran out, a look noticed) is served
        // at the next step, at once.
        self.take_touched();
        if self.spin.carried(now, std::mem::take(&mut self.carried)) {
            self.doorbell.set_window(self.spin);
        }
        if let Some(pcap) = &mut self.capture {
            // So that `tcpdump -r` sees the frames while the stack runs.
            let _ = pcap.flush();
        }
    }

    fn receive_frames(&mut self, now: Duration) {
        let (mut received, mut largest) = (0, 0);
        while received < LINK_BURST {
            let (bufs, lens) = self.rx.slots();
            match self.link.recv_batch(bufs, lens) {
                Ok(count) => {
                    for frame in self.rx.frames(count) {
                        record(&mut self.capture, frame);
                        self.carried += frame.len();
                        self.engine.receive(now, frame);
                    }
                    received += count;
                    largest = largest.max(count);
                    if self.link.drained_by_last_batch() {
                        // The data fd is edge-triggered: a frame queued from now on
                        // wakes the pump again.
                        self.link_readable = false;
                        self.rx.drained(largest, now);
                        return;
                    }
                    self.rx.took(count, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.link_readable = false;
                    self.rx.drained(largest, now);
                    return;
                }
                Err(_) => {
                    self.link_down();
                    return;
                }
            }
        }
    }

    fn flush_link(&mut self) {
        while !self.link_blocked {
            let mut batch = std::mem::take(&mut self.tx_frames);
            while batch.len() < LINK_BATCH {
                match self.engine.next_outgoing() {
                    Some(frame) => batch.push(frame),
                    None => break,
                }
            }
            if batch.is_empty() {
                self.tx_frames = batch;
                return;
            }
            let sent = if self.link_dead {
                // Frames for a dead link are lost on the wire; TCP copes.
                batch.len()
            } else {
                // On the stack: a batch is sent per wake-up, no allocation for it.
                let mut slices: [&[u8]; LINK_BATCH] = [&[]; LINK_BATCH];
                for (slice, frame) in slices.iter_mut().zip(&batch) {
                    *slice = frame;
                }
                match self.link.send_batch(&slices[..batch.len()]) {
                    Ok(sent) => sent,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.watch_link(true);
                        0
                    }
                    // A frame the link refuses is a frame lost on the wire.
                    Err(_) => 1,
                }
            };
            for frame in batch.drain(sent..).rev() {
                self.engine.unsend(frame);
            }
            self.acted |= sent > 0;
            for frame in batch.drain(..) {
                record(&mut self.capture, &frame);
                self.carried += frame.len();
                self.engine.recycle(frame);
            }
            self.tx_frames = batch;
        }
    }

    /// Marks the link blocked (a send would block) or not, and watches its
    /// writability exactly while it is.
    fn watch_link(&mut self, blocked: bool) {
        self.link_blocked = blocked;
        if let Some(fd) = self.link.data_fd() {
            let interest = if blocked {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(&mut SourceFd(&fd), LINK_DATA, interest)
                .is_err()
            {
                // Not watched: try again at the next step rather than wait for
                // an edge that would not come.
                self.link_blocked = false;
            }
        }
    }

    /// The far end of the link is gone: stop polling it. Connections time out or
    /// fail as they would with a cable pulled.
    fn link_down(&mut self) {
        if self.link_dead {
            return;
        }
        self.link_dead = true;
        self.link_readable = false;
        for fd in [self.link.data_fd(), self.link.hangup_fd()]
            .into_iter()
            .flatten()
        {
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
    }

    /// Queues a connection for the next step.
    fn make_ready(&mut self, id: u64) {
        if let Some(conn) = self.conns.get_mut(&id) {
            if !conn.queued {
                conn.queued = true;
                self.ready.push(id);
            }
        }
    }

    /// Queues the connections the engine touched.
    fn take_touched(&mut self) {
        let mut touched = std::mem::take(&mut self.touched);
        self.engine.take_touched(&mut touched);
        for handle in touched.drain(..) {
            if let Some(&id) = self.by_handle.get(&handle) {
                self.make_ready(id);
            }
        }
        self.touched = touched;
    }

    fn socket_event(&mut self, id: u64, event: &mio::event::Event) {
        if self.udp_event(id, event) {
            return;
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            if event.is_readable() || event.is_read_closed() {
                conn.app_readable = true;
            }
            if event.is_read_closed() {
                conn.app_read_closed = true;
            }
            if event.is_writable() {
                conn.app_writable = true;
            }
            self.make_ready(id);
            let conn = self.conns.get_mut(&id).expect("looked up above");
            if event.is_write_closed() {
                let verdict = conn.on_app_closed();
                self.settle(id, verdict);
            }
            return;
        }
        if self.adopted.contains_key(&id) {
            // The application end of an unused socket hung up: it was closed.
            if event.is_read_closed() {
                // Closing it takes it out of the poll too (see `forget_fd`).
                self.adopted.remove(&id);
                if let Some((local, options)) = self.reserved.remove(&id) {
                    self.engine.unbind(local, &options);
                }
            }
            return;
        }
        if self.listeners.contains_key(&id) {
            // The application never writes on a listener: a hang-up is its close.
            if event.is_read_closed() {
                self.close_listener(id);
            }
            if event.is_writable() {
                self.flush_listener(id);
            }
        }
    }

    // ---- controls ----

    /// Handles every waiting control; false when the pump must stop.
    fn handle_controls(&mut self) -> bool {
        loop {
            let control = match self.control.try_recv() {
                Ok(control) => control,
                Err(crossbeam_channel::TryRecvError::Empty) => return true,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return false,
            };
            self.acted = true;
            // An ephemeral port is chosen among those free, whatever the
            // hang-ups not taken in yet: only a port asked for needs them.
            let port = |local: &SocketAddr| local.port() != 0;
            let takes_a_port = match &control {
                Control::Bind { local, .. } | Control::UdpOpen { local, .. } => port(local),
                Control::Connect { local, .. } => local.as_ref().is_some_and(port),
                Control::Listen { .. } => true,
                _ => false,
            };
            if takes_a_port {
                self.catch_up();
            }
            match control {
                Control::Shutdown => return false,
                #[cfg(test)]
                Control::Panic => panic!("a pump bug, on purpose"),
                Control::Cmd { cmds, reply } => {
                    // Lifetimes shown count to this moment, not to the
                    // engine's last turn, which may be long past.
                    self.engine.set_clock(self.now());
                    let cmds = crate::cmd::split_commands(&cmds).into();
                    self.run_cmds(cmds, String::new(), reply);
                }
                Control::Dhcp {
                    ifname,
                    attempt,
                    reply,
                } => self.dhcp(&ifname, attempt, reply),
                Control::Bind {
                    local,
                    options,
                    owner,
                    reply,
                } => {
                    let bound = self.engine.bind(local, &options);
                    if let (Ok(local), Some(owner)) = (&bound, owner) {
                        self.reserved.insert(owner, (*local, options));
                    }
                    let _ = reply.send(bound);
                }
                Control::Unbind {
                    local,
                    options,
                    owner,
                } => {
                    if let Some(owner) = owner {
                        self.reserved.remove(&owner);
                    }
                    self.engine.unbind(local, &options)
                }
                Control::Connect {
                    id,
                    fd,
                    junk,
                    remote,
                    local,
                    options,
                    shared,
                    reply,
                } => {
                    let Some((fd, token, watched)) = self.end_for(id, fd) else {
                        let _ = reply.send(Err(io::Error::from_raw_os_error(libc::EBADF)));
                        continue;
                    };
                    let conn = NewConn {
                        id,
                        fd,
                        token,
                        shared,
                        watched,
                    };
                    self.connect(conn, junk, remote, local, &options, reply)
                }
                Control::CancelConnect { id } => {
                    if self.conns.get(&id).is_some_and(Conn::is_connecting) {
                        self.drop_conn(id, true);
                    }
                }
                Control::Listen {
                    id,
                    fd,
                    local,
                    backlog,
                    accepted,
                    options,
                    token,
                    owner,
                    reply,
                } => {
                    let result = self.listen(id, fd, token, local, backlog, accepted, &options);
                    if let (Ok(()), Some(owner)) = (&result, owner) {
                        self.reserved.remove(&owner);
                    }
                    let _ = reply.send(result);
                }
                Control::Adopt { id, fd, token } => self.adopt(id, fd, Some(token), false),
                Control::SetOptions { id, options, reply } => {
                    let _ = reply.send(self.set_options(id, &options));
                }
                Control::UdpOpen {
                    id,
                    proto,
                    fd,
                    local,
                    options,
                    shared,
                    reply,
                } => {
                    let Some(end) = self.end_for(id, fd) else {
                        let _ = reply.send(Err(io::Error::from_raw_os_error(libc::EBADF)));
                        continue;
                    };
                    let _ = reply.send(self.udp_open(id, proto, end, local, &options, shared));
                }
                Control::UdpConnect { id, remote, reply } => {
                    let _ = reply.send(self.udp_connect(id, remote));
                }
                Control::UdpResume { id } => self.udp_resume(id),
                Control::Descriptors { reply } => {
                    let _ = reply.send(self.descriptors());
                }
                Control::Unfinished { reply } => {
                    let _ = reply.send(self.engine.unfinished_connections());
                }
                Control::TcpStats { id, reply } => {
                    let stats = self
                        .conns
                        .get(&id)
                        .and_then(|conn| self.engine.tcp_stats(conn.handle));
                    let _ = reply.send(stats);
                }
                Control::PathTo { peer, reply } => {
                    let _ = reply.send(self.engine.path_to(peer));
                }
                Control::UdpSendTo {
                    id,
                    dest,
                    data,
                    reply,
                } => {
                    let _ = reply.send(self.udp_send_aside(id, dest, &data));
                }
                Control::Membership {
                    id,
                    group,
                    join,
                    reply,
                } => {
                    let _ = reply.send(self.udp_membership(id, group, join));
                }
            }
        }
    }

    fn connect(
        &mut self,
        conn: NewConn,
        junk: usize,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        options: &SocketOptions,
        reply: Sender<io::Result<SocketAddr>>,
    ) {
        let handle = match self.engine.connect(remote, local, options) {
            Ok(handle) => handle,
            Err(e) => {
                let _ = reply.send(Err(e));
                if junk == 0 {
                    // The socket stays usable for another try, as after a failed
                    // connect(2).
                    self.adopt(conn.id, conn.fd, conn.token, conn.watched);
                }
                // With filler in it (a non-blocking connect), the pair closes, as
                // when a handshake fails: the application's end turns writable and
                // hung up, and SO_ERROR (answered above) tells why.
                return;
            }
        };
        let id = conn.id;
        let watched = conn.watched;
        let phase = Phase::Connecting {
            reply: reply.clone(),
        };
        match self.add_conn(conn, handle, phase) {
            Ok(()) => {
                let conn = self.conns.get_mut(&id).expect("just added");
                conn.filled = junk > 0;
                // Everything queued on an adopted end came before the connect:
                // the filler, and what the application wrote too early.
                conn.junk = if watched {
                    sys::bytes_readable(conn.fd.as_fd()).unwrap_or(junk)
                } else {
                    junk
                };
                // An adopted end's edges went to the adopted end: what is to be
                // discarded is there to read.
                conn.app_readable = watched && conn.junk > 0;
                conn.linger_zero = options.resets_on_close();
            }
            Err(e) => {
                self.engine.release(handle, true);
                let _ = reply.send(Err(e));
            }
        }
    }

    /// The pump end a control brings (with no token, not watched yet), or else
    /// the end of the `msocket` socket adopted under `id` (with its token, and
    /// watched for reading already), taken back to be put to use.
    fn end_for(
        &mut self,
        id: u64,
        fd: Option<OwnedFd>,
    ) -> Option<(OwnedFd, Option<EndToken>, bool)> {
        if let Some(fd) = fd {
            return Some((fd, None, false));
        }
        let (fd, token) = self.adopted.remove(&id)?;
        Some((fd, token, true))
    }

    /// Keeps the pump's end of an unused `msocket` socket until the application
    /// connects it or closes its end (`watched`: it is non-blocking and watched
    /// for reading under `id` already).
    fn adopt(&mut self, id: u64, fd: OwnedFd, token: Option<EndToken>, watched: bool) {
        let registered = watched
            || sys::set_nonblocking(fd.as_fd(), true)
                .and_then(|()| watch_end(self.poll.registry(), &fd, id))
                .is_ok();
        if registered {
            self.adopted.insert(id, (fd, token));
        }
    }

    /// Serves a new connection through its pump end. The end is watched for
    /// reading only: a socket pair's end is writable most of the time, and
    /// each of its edges (the application read something) would wake the pump
    /// for nothing. Writability is watched once a write would block.
    fn add_conn(&mut self, conn: NewConn, handle: TcpHandle, phase: Phase) -> io::Result<()> {
        let NewConn {
            id,
            fd,
            token,
            shared,
            watched,
        } = conn;
        if !watched {
            sys::set_nonblocking(fd.as_fd(), true)?;
            watch_end(self.poll.registry(), &fd, id)?;
        }
        self.by_handle.insert(handle, id);
        self.conns
            .insert(id, Conn::new(fd, handle, shared, phase, token));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn listen(
        &mut self,
        id: u64,
        fd: OwnedFd,
        token: Option<EndToken>,
        local: SocketAddr,
        backlog: usize,
        accepted: Arc<AtomicU64>,
        options: &SocketOptions,
    ) -> io::Result<()> {
        sys::set_nonblocking(fd.as_fd(), true)?;
        let listener = self.engine.listen(local, backlog, accepted, options)?;
        if let Err(e) = watch_end(self.poll.registry(), &fd, id) {
            self.engine.unlisten(listener);
            return Err(e);
        }
        self.by_listener.insert(listener, id);
        self.listeners.insert(
            id,
            ListenerEntry {
                fd,
                listener,
                watches_writable: false,
                backlog: VecDeque::new(),
                handed: Vec::new(),
                _token: token,
            },
        );
        Ok(())
    }

    // ---- engine events ----

    fn handle_engine_events(&mut self) {
        while let Some(event) = self.engine.next_event() {
            self.acted = true;
            match event {
                Event::Connected(handle) => {
                    let Some(&id) = self.by_handle.get(&handle) else {
                        continue;
                    };
                    let Some(local) = self.engine.local_addr(handle) else {
                        continue;
                    };
                    let conn = self.conns.get_mut(&id).expect("indexed");
                    if let Some(reply) = conn.on_connected() {
                        if reply.send(Ok(local)).is_err() {
                            // Nobody waits any more: the application gave up.
                            self.drop_conn(id, true);
                            continue;
                        }
                    }
                    // What the application wrote while it waited can go now (a
                    // blocking connect wrote nothing: nothing to serve yet).
                    let conn = &self.conns[&id];
                    if conn.app_readable || self.engine.recv_queue(handle) > 0 {
                        self.make_ready(id);
                    }
                }
                Event::ConnectFailed(handle, errno) => {
                    let Some(id) = self.by_handle.remove(&handle) else {
                        continue;
                    };
                    if let Some(conn) = self.conns.remove(&id) {
                        self.forget_fd(&conn.fd);
                        if !conn.filled {
                            // Usable for another connect, as a socket is after a failed
                            // connect(2); kept until the application closes it.
                            self.adopt(id, conn.fd, conn.token, false);
                        }
                        // With filler in it, the pair closes instead: the application's
                        // end turns writable and hung up, and SO_ERROR tells why.
                        if let Phase::Connecting { reply } = conn.phase {
                            let _ = reply.send(Err(io::Error::from_raw_os_error(errno)));
                        }
                    }
                }
                Event::Accepted {
                    listener,
                    handle,
                    local,
                    peer,
                } => self.accepted(listener, handle, local, peer),
                Event::UdpReadable(handle) => self.udp_readable(handle),
                Event::UdpError(handle) => self.udp_error(handle),
                Event::UdpDropped(handle) => self.udp_dropped(handle),
                Event::Dhcp(news) => self.dhcp_news(news),
                Event::Aborted(handle, errno) => {
                    let Some(&id) = self.by_handle.get(&handle) else {
                        continue;
                    };
                    if let Some(conn) = self.conns.get(&id) {
                        conn.shared.error.store(errno, Ordering::Release);
                    }
                    self.drop_conn(id, false);
                }
            }
        }
    }

    fn accepted(
        &mut self,
        listener: ListenerId,
        handle: TcpHandle,
        local: SocketAddr,
        peer: SocketAddr,
    ) {
        let Some(&listener_id) = self.by_listener.get(&listener) else {
            self.engine.release(handle, true);
            return;
        };
        let (app_end, pump_end) = match sys::pair(libc::SOCK_STREAM) {
            Ok(pair) => pair,
            Err(_) => {
                // Out of descriptors: refuse the connection as an overloaded host
                // would (Linux would queue it without a descriptor until accept).
                self.engine.never_accepted(listener);
                self.engine.release(handle, true);
                return;
            }
        };
        let id = self.next_accept_id;
        self.next_accept_id += 1;
        let shared = Arc::new(ConnShared::default());
        let (token, watch) = EndToken::new();
        let conn = NewConn {
            id,
            fd: pump_end,
            token: Some(token),
            shared: shared.clone(),
            watched: false,
        };
        if self.add_conn(conn, handle, Phase::Open).is_err() {
            self.engine.never_accepted(listener);
            self.engine.release(handle, true);
            return;
        }
        // Bytes may have come with the handshake's end.
        if self.engine.recv_queue(handle) > 0 {
            self.make_ready(id);
        }
        let mut handoffs = self.handoffs.lock().expect("handoff map poisoned");
        handoffs.insert(id, Handoff { shared, watch });
        let entry = self.listeners.get_mut(&listener_id).expect("indexed");
        // The ids accepted since are let go now and then (at each power of two):
        // a listener that lives long keeps none for each connection it ever had.
        if entry.handed.len() >= 64 && entry.handed.len().is_power_of_two() {
            entry.handed.retain(|handed| handoffs.contains_key(handed));
        }
        drop(handoffs);
        entry.handed.push(id);
        entry
            .backlog
            .push_back((id, app_end, encode_accept(id, local, peer)));
        self.flush_listener(listener_id);
    }

    /// Passes queued connections to the application's listener end.
    fn flush_listener(&mut self, id: u64) {
        loop {
            let Some(entry) = self.listeners.get_mut(&id) else {
                return;
            };
            let Some((conn_id, fd, payload)) = entry.backlog.front() else {
                return;
            };
            match sys::send_with_fd(entry.fd.as_fd(), payload, fd.as_fd()) {
                Ok(()) => {
                    entry.backlog.pop_front();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !entry.watches_writable {
                        entry.watches_writable =
                            watch_writable_too(self.poll.registry(), &entry.fd, id);
                    }
                    return;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => {
                    // The application closed the listener.
                    self.close_listener(id);
                    return;
                }
                Err(_) => {
                    // This connection cannot be passed on (ETOOMANYREFS: too many
                    // descriptors in flight for the user; no memory): it is
                    // refused, the listener goes on.
                    let (conn_id, listener) = (*conn_id, entry.listener);
                    entry.backlog.pop_front();
                    self.refuse_queued(listener, conn_id);
                }
            }
        }
    }

    /// Lets go of connection `id`, which `listener` handed out and the
    /// application will never accept, with a reset.
    fn refuse_queued(&mut self, listener: ListenerId, id: u64) {
        self.engine.never_accepted(listener);
        self.handoffs
            .lock()
            .expect("handoff map poisoned")
            .remove(&id);
        if let Some(conn) = self.conns.remove(&id) {
            self.by_handle.remove(&conn.handle);
            self.engine.release(conn.handle, true);
        }
    }

    fn close_listener(&mut self, id: u64) {
        let Some(entry) = self.listeners.remove(&id) else {
            return;
        };
        self.by_listener.remove(&entry.listener);
        self.engine.unlisten(entry.listener);
        let mut handoffs = self.handoffs.lock().expect("handoff map poisoned");
        for handed in entry.handed {
            handoffs.remove(&handed);
        }
        // Connections still queued here die with their application ends (dropped now):
        // their pump ends see the hang-up and close them.
    }

    // ---- bytes between the application and smoltcp ----

    /// Reads what the application wrote on connection `id` into its transmit
    /// ring, while there is room.
    fn serve_app_input(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if !conn.reads_app() || !conn.app_readable {
            return;
        }
        if conn.junk > 0 && !discard_junk(conn) {
            return;
        }
        // While the ring still holds plenty to send, wait for room for a large
        // read rather than making one read(2) per acknowledged segment (the
        // acknowledgements that make room touch the connection again).
        let socket = self.engine.tcp_ref(conn.handle);
        let free = socket.send_capacity() - socket.send_queue();
        if socket.send_queue() > 0 && free < socket.send_capacity() / 4 {
            return;
        }
        let socket = self.engine.tcp(conn.handle);
        let mut verdict = None;
        // At most two passes: the free space of a ring may wrap once.
        for _ in 0..2 {
            if !socket.can_send() {
                if !socket.may_send() {
                    // The connection cannot carry more (peer reset or closed):
                    // stop reading; the state change is reported separately.
                    conn.app_readable = false;
                }
                break;
            }
            let fd = conn.fd.as_fd();
            let result = socket.send(|buf| match sys::read(fd, buf) {
                Ok(n) => (n, Ok((n, buf.len()))),
                Err(e) => (0, Err(e)),
            });
            match result {
                Ok(Ok((0, _))) => {
                    // EOF: the application shut down writing or closed the socket.
                    socket.close();
                    verdict = Some(conn.on_app_eof());
                    break;
                }
                Ok(Ok((n, offered))) if n < offered && !conn.app_read_closed => {
                    // A short read took all there was: the next write is an edge
                    // of its own, so no read is spent to hear EAGAIN. (Once the
                    // end hung up, that edge came already: read on to the EOF.)
                    conn.app_readable = false;
                    break;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.app_readable = false;
                    break;
                }
                Ok(Err(e)) => {
                    verdict = Some(conn.on_app_error(&e));
                    break;
                }
                Err(_) => break,
            }
        }
        if let Some(verdict) = verdict {
            self.settle(id, verdict);
        }
    }

    /// Writes what arrived from the network on connection `id` to the
    /// application while it takes it, and passes on the peer's FIN once
    /// everything before it is delivered.
    fn serve_app_output(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.is_connecting() {
            return;
        }
        while (conn.app_writable || conn.app_reads_shut) && self.engine.recv_queue(conn.handle) > 0
        {
            let fd = conn.fd.as_fd();
            let app_reads_shut = conn.app_reads_shut;
            match self.engine.recv_with(conn.handle, |bytes| {
                if app_reads_shut {
                    Ok(bytes.len())
                } else {
                    sys::send(fd, bytes)
                }
            }) {
                Ok(0) => break,
                Ok(_) => self.woke_reader = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.app_writable = false;
                    if !conn.watches_writable {
                        // From now on its writability is news (see `add_conn`).
                        conn.watches_writable =
                            watch_writable_too(self.poll.registry(), &conn.fd, id);
                        conn.app_writable = !conn.watches_writable;
                    }
                }
                Err(_) if !sys::peer_closed(conn.fd.as_fd()) => {
                    // EPIPE with the end still held, and not shut for writing:
                    // the application shut it down for reading only. Linux keeps
                    // such a connection; what comes can never be read here.
                    conn.app_reads_shut = true;
                }
                Err(_) => {
                    // EPIPE: nobody will read this.
                    let verdict = conn.on_app_unwritable();
                    return self.settle(id, verdict);
                }
            }
        }
        if conn.awaits_peer_fin() && self.engine.recv_finished(conn.handle) {
            let _ = sys::shutdown(conn.fd.as_fd(), std::net::Shutdown::Write);
            let verdict = conn.on_peer_fin_passed();
            self.settle(id, verdict);
        }
    }

    /// Every descriptor the pump holds (see [`Control::Descriptors`]).
    fn descriptors(&self) -> Vec<RawFd> {
        let mut fds = vec![self.poll.as_raw_fd(), self.doorbell.fd()];
        fds.extend(self.link.fds());
        fds.extend(self.conns.values().map(|conn| conn.fd.as_raw_fd()));
        fds.extend(self.adopted.values().map(|(fd, _)| fd.as_raw_fd()));
        fds.extend(self.udp_descriptors());
        for entry in self.listeners.values() {
            fds.push(entry.fd.as_raw_fd());
            fds.extend(entry.backlog.iter().map(|(_, fd, _)| fd.as_raw_fd()));
        }
        fds
    }

    /// Stops watching `fd`, which stays open (to be watched again under another
    /// name). An end that is closed needs no such call: closing the pump's only
    /// descriptor of it takes it out of epoll, which saves a system call for
    /// every socket closed.
    fn forget_fd(&self, fd: &OwnedFd) {
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&fd.as_raw_fd()));
    }

    /// New options for the socket `id`, applied where they live.
    fn set_options(&mut self, id: u64, options: &SocketOptions) -> io::Result<()> {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.linger_zero = options.resets_on_close();
            self.engine.set_tcp_options(conn.handle, options);
        } else if let Some(entry) = self.listeners.get(&id) {
            self.engine.set_listener_options(entry.listener, options);
        } else {
            // A UDP socket's apply where it lives. Otherwise: a socket made by
            // `msocket` and not used yet, whose options are read when it is,
            // or one the pump let go (reset, closed both ways) while the
            // application holds it: its options are only recorded, as Linux
            // records them on a closed connection.
            self.udp_set_options(id, options);
        }
        Ok(())
    }

    /// Acts on what an event made of a connection.
    fn settle(&mut self, id: u64, verdict: Verdict) {
        if let Verdict::Release { reset } = verdict {
            self.drop_conn(id, reset);
        }
    }

    /// Lets go of a connection: the socket pair end closes, the engine finishes the
    /// TCP close in the background, or resets at once.
    fn drop_conn(&mut self, id: u64, reset: bool) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        self.by_handle.remove(&conn.handle);
        self.engine.release(conn.handle, reset);
    }
}

/// Watches a socket's pump end under `id`, for reading only: a socket pair's
/// end is writable nearly always, and each of its edges (the application read
/// something) would wake the pump for nothing.
pub(super) fn watch_end(registry: &mio::Registry, fd: &OwnedFd, id: u64) -> io::Result<()> {
    registry.register(
        &mut SourceFd(&fd.as_raw_fd()),
        Token(id as usize),
        Interest::READABLE,
    )
}

/// Watches an end for writability as well, once a write to it would block;
/// false if that failed (out of memory: the caller then treats the end as
/// writable, and the next write finds out).
pub(super) fn watch_writable_too(registry: &mio::Registry, fd: &OwnedFd, id: u64) -> bool {
    registry
        .reregister(
            &mut SourceFd(&fd.as_raw_fd()),
            Token(id as usize),
            Interest::READABLE | Interest::WRITABLE,
        )
        .is_ok()
}

/// Reads and drops the filler a non-blocking connect put in front of the
/// application's bytes (see [`Control::Connect`]). True once it is all gone.
fn discard_junk(conn: &mut Conn) -> bool {
    // On the heap: a stack buffer would make every pump thread's stack frame (and
    // the pages under it) that much larger.
    let mut scratch = vec![0u8; 16 * 1024];
    while conn.junk > 0 {
        let want = conn.junk.min(scratch.len());
        match sys::read(conn.fd.as_fd(), &mut scratch[..want]) {
            Ok(n) if n > 0 => conn.junk -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.app_readable = false;
                return false;
            }
            // EOF or an error: the application closed; the normal path sees it next.
            _ => {
                conn.junk = 0;
            }
        }
    }
    true
}

/// The application side's way to reach a pump.
#[derive(Clone)]
pub(crate) struct PumpHandle {
    pub(crate) tx: Sender<Control>,
    pub(crate) doorbell: Arc<Doorbell>,
    pub(crate) failure: Failure,
    /// The name servers of the last lease, not yet taken in by the stack.
    pub(crate) lease_servers: LeaseServers,
    /// The process the pump thread runs in. A child forked from it has a copy of
    /// this handle but no pump: nothing would ever answer its controls.
    pub(crate) pid: u32,
}

impl PumpHandle {
    /// Whether the pump runs in this process (not so in a child forked after the
    /// stack was made).
    pub(crate) fn is_here(&self) -> bool {
        sys::process_id() == self.pid
    }

    /// Sends a control and wakes the pump. ENETDOWN when the stack is gone (with
    /// the reason, if its pump failed), or is another process's (this one was
    /// forked after the stack was made): the channel's own locks are not even
    /// taken then, as another thread of the parent may have held them at the fork.
    pub(crate) fn send(&self, control: Control) -> io::Result<()> {
        if !self.is_here() {
            return Err(io::Error::from_raw_os_error(libc::ENETDOWN));
        }
        if let Some(e) = self.failure.error() {
            return Err(e);
        }
        self.tx.send(control).map_err(|_| self.gone())?;
        self.doorbell.ring()
    }

    /// Sends a request carrying a reply channel and waits for the answer.
    pub(crate) fn request<T>(&self, make: impl FnOnce(Sender<T>) -> Control) -> io::Result<T> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(make(reply))?;
        // A polling pump answers within microseconds: wait as long as it polls
        // before sleeping (see `idle.rs`).
        let mut early = None;
        self.doorbell.wait_briefly(|| {
            early = answer.try_recv().ok();
            early.is_some()
        });
        match early {
            Some(answer) => Ok(answer),
            None => answer.recv().map_err(|_| self.gone()),
        }
    }

    /// The error of a call that finds the pump gone: `ENETDOWN`, with the reason
    /// if the pump failed.
    pub(crate) fn gone(&self) -> io::Error {
        self.failure
            .error()
            .unwrap_or_else(|| io::Error::from_raw_os_error(libc::ENETDOWN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_payload_round_trips() {
        let local: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let peer: SocketAddr = "[fe80::1]:40000".parse().unwrap();
        let bytes = encode_accept(77, local, peer);
        assert_eq!(decode_accept(&bytes), Some((77, local, peer)));
        assert_eq!(decode_accept(&bytes[1..]), None);
    }
}
