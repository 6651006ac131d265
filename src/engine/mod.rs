//! The sans-IO core of a stack: smoltcp plus what a BSD stack has and smoltcp lacks.
//!
//! An [`Engine`] is driven by `(now, frame)` calls and never touches a file
//! descriptor, a clock or a thread: the pump feeds it frames and time, takes frames
//! out of its outbox, and moves socket bytes through closures that point straight at
//! smoltcp's rings. That keeps every decision here unit-testable and replayable.
//!
//! What it adds on top of smoltcp:
//! - loopback: frames to our own MAC, and ARP requests and neighbour solicitations
//!   for our own addresses, come back in instead of going out (only while `lo` is
//!   up, as in a Linux namespace), for all of 127.0.0.0/8 as Linux's `lo` holds
//!   it (smoltcp's interface has 127.0.0.1 alone);
//! - a listen backlog: a listening socket is created per incoming SYN, up to the
//!   backlog, instead of smoltcp's one socket per port;
//! - ephemeral ports, `EADDRINUSE`/`EADDRNOTAVAIL`/`ENETUNREACH` checks, and
//!   `EHOSTUNREACH` when the next hop never answers ARP;
//! - configuration from the `ip` model in [`crate::cmd`], applied while running:
//!   addresses, routes, link state, and the hardware address and MTU (kept at
//!   the device boundary, [`link_mtu`]: smoltcp reads a device's MTU once);
//! - IPv4 on IPv6 sockets as Linux has it with `IPV6_V6ONLY` off (the default): a
//!   listener on `[::]` takes IPv4 connections too and reports their addresses
//!   v4-mapped (`::ffff:a.b.c.d`), and a connect to a v4-mapped address is IPv4;
//! - neighbour discovery rate-limited per neighbour, as Linux does, not for the
//!   whole interface as smoltcp does ([`Engine::ask_neighbor`]);
//! - gratuitous ARP (and its IPv6 counterpart) when the hardware address changes,
//!   and the neighbour-cache update smoltcp skips when a peer announces a change;
//! - loss recovery smoltcp lacks ([`recovery`]): segments kept until
//!   acknowledged and sent again from the boundary as the peer's SACK blocks,
//!   RACK, NewReno's partial acknowledgements, a tail-loss probe or a 200 ms-floor
//!   timer find them lost, and the congestion window (CUBIC or NewReno);
//!   segments with every out-of-order range as SACK blocks and D-SACKs
//!   ([`sack`]), where smoltcp reports one block in some ACKs; each segment
//!   acknowledged at once for a while after a loss (Linux's quick-ACK mode),
//!   then every second one for longer, and so from a connection's start;
//!   and ACKs stamped with the highest sequence number sent
//!   (`frames::AckSequence`);
//! - IP fragmentation and reassembly for both families ([`ipv4_frag`],
//!   [`ipv6_frag`], [`reassembly`]): smoltcp has none for IPv6, and its IPv4 one
//!   holds 320 KiB of fixed buffers per stack; smoltcp's device claims the largest
//!   packet and the boundary keeps to the link's MTU ([`link_mtu`]);
//! - a DHCPv4 client ([`dhcp`]): smoltcp's DHCP socket in a set of its own,
//!   its leases applied to the `ip` model as udhcpc's default script does;
//! - multicast datagrams with their own hop limit, looped back to the stack's own
//!   members of the group ([`multicast`]);
//! - work in proportion to what happens: each connection in a smoltcp set of its
//!   own ([`tcp_table`]), datagram sockets in a set per port ([`datagram_sets`]),
//!   a frame handed to smoltcp with the set it is for ([`frames::demux`]), egress
//!   polled for the sockets that changed or whose timer came due, and the pump
//!   told which connections changed ([`Engine::take_touched`]).

mod ack_stretch;
mod config_plan;
mod datagram_sets;
mod detour;
mod dhcp;
mod flow_hash;
mod frames;
mod ipv4_frag;
mod ipv6_frag;
mod lifecycle;
mod link_filter;
mod link_mtu;
mod multicast;
mod neighbors;
mod options;
mod ping;
mod ports;
mod reassembly;
mod recovery;
mod rings;
mod sack;
mod slaac;
mod tcp_table;
mod time_wait;
mod udp;

use crate::cmd::{LinkStats, NetConfig};
use config_plan::{Plan, Running};
use datagram_sets::Group;
pub use dhcp::Lease as DhcpLease;
pub(crate) use dhcp::{Attempt as DhcpAttempt, DhcpNews};
use lifecycle::Look;
pub(crate) use options::{Congestion, DatagramShape, Mtus, SocketOptions};
pub(crate) use options::{MAX_BUFFER, MIN_BUFFER, PMTUDISC_OMIT};
pub(crate) use ping::check_echo_request;
pub(crate) use rings::{Bytes, Lease, RingSource, Rings};

use ports::{PortTable, PortUse};
use smoltcp::iface::{Config, Interface, Route, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, Ipv4Address,
    Ipv6Address,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
pub(crate) use udp::{
    check_send as udp_check_send, check_size as udp_check_size, datagram_mtus, DatagramProto,
    UdpHandle,
};

/// The largest datagram payload the stack sends or receives: UDP over IPv6.
pub(crate) const MAX_UDP_PAYLOAD: usize = ipv6_frag::MAX_UDP_V6;

pub(crate) use smoltcp::socket::tcp::State as TcpState;
pub(crate) use tcp_table::TcpHandle;

/// Bytes of smoltcp ring per direction and connection: Linux's first receive
/// buffer (`tcp_rmem`'s 131072). The window it allows, 90 full frames, stays
/// below the 100 to 150 frames a `vde_switch` port buffers before it drops
/// (FACTS.md); 64 KiB left bulk transfers waiting on round trips (ARCHITECTURE.md,
/// "The window").
pub(crate) const TCP_BUFFER: usize = 128 * 1024;

/// How long an ACK for a single segment may wait for a second one.
const ACK_DELAY: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(1);

/// Segments acknowledged at once after a sign of loss (Linux's
/// `TCP_MAX_QUICKACKS`).
const QUICK_ACKS: u8 = 16;

/// Segments after those (and a connection's first ones) during which every
/// second one is still acknowledged at once: under 1% loss or more, the time
/// between losses.
const LOSSY_SEGMENTS: u16 = 256;

/// The addresses smoltcp's interface holds (its feature `iface-max-addr-count-8`).
const IFACE_ADDRS: usize = 8;

/// Frames waiting for the link before smoltcp is told to hold further ones.
const OUTBOX_LIMIT: usize = 512;

/// How long smoltcp keeps a socket from sending after it found its neighbour's
/// address missing (its `DISCOVERY_SILENT_TIME`): a socket whose next poll is
/// this far off right after a send is taken to be waiting for a neighbour.
const NEIGHBOR_SILENCE: Duration = Duration::from_secs(1);

/// How long an unanswered ARP for a connect's next hop may take: Linux gives up after
/// 3 probes a second apart and reports EHOSTUNREACH.
const ARP_GIVE_UP: Duration = Duration::from_secs(3);

/// How long an established connection waits for a peer that acknowledges nothing
/// before it fails with ETIMEDOUT (Linux's default retries take about 15 minutes;
/// `TCP_USER_TIMEOUT` is how programs shorten that there).
pub(crate) const GIVE_UP: Duration = Duration::from_secs(120);

/// The longest a connection the application let go of is kept finishing its close.
const ORPHAN_LIMIT: Duration = Duration::from_secs(60);

/// How far off smoltcp's next deadline for a connection in TIME-WAIT must be for
/// it to owe its peer nothing (an ACK waits 1 ms, a neighbour 1 s; its own end of
/// TIME-WAIT is 10 s away): then the socket can give way to a record.
const TIME_WAIT_SETTLED: Duration = Duration::from_secs(2);

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
    /// A UDP socket's receive queue went from empty to not empty.
    UdpReadable(UdpHandle),
    /// A connected UDP socket has a pending error (an ICMP error from its peer).
    UdpError(UdpHandle),
    /// A UDP socket dropped a datagram, its receive queue being full: its count
    /// of drops changed.
    UdpDropped(UdpHandle),
    /// What became of the DHCP client (a lease applied, none, or one lost).
    Dhcp(DhcpNews),
}

enum Phase {
    Connecting {
        since: Duration,
        /// The IPv4 next hop, until a segment of the connection has left (its
        /// address was known then): a connect that never got that far because
        /// the hop never answered ARP fails with EHOSTUNREACH, as on Linux; one
        /// whose SYNs went out unanswered keeps retrying them.
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
    /// An IPv6 socket's IPv4 connection: its addresses are shown v4-mapped.
    mapped: bool,
    last_state: TcpState,
    port: u16,
    /// How the connection holds its port (for releasing it).
    port_use: PortUse,
    options: SocketOptions,
    /// An RST arrived for this connection: how a reset is told from a timeout.
    reset_seen: bool,
    /// Keep-alive: when bytes last moved either way (as seen at each transmit),
    /// and when the last probe went out.
    active_at: Duration,
    queues: (usize, usize),
    probed_at: Option<Duration>,
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
    /// What the ring source wants back once the socket is gone, and when the
    /// transmit ring's pages go back before that (see [`rings`]).
    lease: Option<Lease>,
    tx_pages: rings::TxPages,
    /// The acknowledgement number and window of the last segment it sent: what
    /// its TIME-WAIT record answers with (see [`time_wait`]).
    last_ack: Option<(smoltcp::wire::TcpSeqNumber, u16)>,
    /// Data segments still to acknowledge at once after a sign of loss, and
    /// then every second one ([`Engine::acknowledge_quickly`]); data segments
    /// in order since the connection last sent one.
    quick_acks: u8,
    lossy: u16,
    unacknowledged: u8,
    /// The last data segment that came was a full one (the largest yet), in
    /// order, without FIN: the peer may be in the middle of bulk, where ACKs
    /// are stretched ([`Conn::ack_stretch`]); `largest_in` is that size.
    steady: bool,
    largest_in: usize,
    /// The peer's FIN (a bare FIN segment) that came beyond a hole, which
    /// smoltcp drops: handed to it again once data fills the hole
    /// ([`Engine::keep_early_fin`]).
    early_fin: Option<Vec<u8>>,
}

impl Conn {
    /// Remembers what the last segment it sent acknowledged (none sent: kept).
    fn note_sent(&mut self, segment: Option<frames::EgressSegment>) {
        if let Some(segment) = segment.filter(|s| !s.rst) {
            // Every segment it sends carries its acknowledgement.
            self.unacknowledged = 0;
            if let Some(ack) = segment.ack {
                self.last_ack = Some((ack, segment.window));
            }
        }
    }

    /// How far beyond the last ACK sent a bare ACK may wait for the next
    /// ([`ack_stretch`]): a quarter of the receive ring (`ring` bytes) in
    /// steady bulk; none in slow start, after a loss, or after a short
    /// segment or a FIN.
    fn ack_stretch(&self, ring: usize) -> usize {
        if self.steady && self.quick_acks == 0 && self.lossy == 0 {
            ring / 4
        } else {
            0
        }
    }

    /// When the next keep-alive probe is due ([`lifecycle::probe_due`]); only an
    /// open connection probes.
    fn next_probe(&self) -> Option<Duration> {
        if !matches!(self.phase, Phase::Open) {
            return None;
        }
        lifecycle::probe_due(&self.options, self.active_at, self.probed_at)
    }

    fn new(phase: Phase, last_state: TcpState, port: u16, options: SocketOptions) -> Conn {
        Conn {
            phase,
            mapped: false,
            last_state,
            port,
            port_use: options.port_use(false),
            options,
            reset_seen: false,
            active_at: Duration::ZERO,
            queues: (0, 0),
            probed_at: None,
            peer_fin: false,
            unacked: 0,
            progress_at: Duration::ZERO,
            rescued: Vec::new(),
            lease: None,
            tx_pages: rings::TxPages::default(),
            last_ack: None,
            quick_acks: 0,
            steady: false,
            largest_in: 0,
            // A connection's first data is acknowledged as after a loss, every
            // second segment at once (Linux enters quick-ACK mode at the first
            // data: the sender is in slow start, and its window grows by what
            // each ACK reports).
            lossy: LOSSY_SEGMENTS,
            unacknowledged: 0,
            early_fin: None,
        }
    }
}

struct Listener {
    /// The address as the application bound it (a v4-mapped one stays so).
    local: SocketAddr,
    /// Given to every connection it accepts, as Linux's accepted sockets inherit
    /// their listener's options.
    options: SocketOptions,
    /// How it holds its port, listening, as settled at listen time (its
    /// connections hold it so too, not listening).
    port_use: PortUse,
    backlog: usize,
    embryos: usize,
    handed_out: u64,
    /// Incremented by whoever takes connections off the listener's queue.
    accepted: Arc<AtomicU64>,
}

/// One stack's protocol state.
pub(crate) struct Engine {
    iface: Interface,
    /// The datagram sockets (UDP and ping), in sets by port (see `datagram_sets`).
    datagrams: datagram_sets::DatagramSets,
    /// The datagram sets one transmit polls (kept for its allocation).
    polling: Vec<datagram_sets::Group>,
    /// No socket at all: what smoltcp gets with a frame no socket takes (it
    /// answers a TCP segment with RST), and for its own egress.
    no_sockets: SocketSet<'static>,
    /// Every TCP connection, each in a set of its own (see `tcp_table`).
    tcp: tcp_table::TcpTable,
    /// What is left of closed connections in TIME-WAIT (see `time_wait`).
    time_waits: time_wait::TimeWaits,
    /// The connections one transmit serves (kept for its allocation).
    serving: Vec<TcpHandle>,
    /// Every connection served, in order (tests of what a transmit visits).
    #[cfg(test)]
    served: Vec<TcpHandle>,
    io: FrameIo,
    config: NetConfig,
    synced: Option<u64>,
    /// The stack's addresses beyond smoltcp's table (see `config_plan`).
    beyond_table: Vec<IpAddress>,
    /// The prefixes of the user's `local` routes (AnyIP, see `config_plan`).
    anyip: Vec<IpCidr>,
    /// The addresses whose local-table entry was deleted: what comes for
    /// them is dropped (see `config_plan`).
    not_taken_in: Vec<IpAddr>,
    /// The made-up next hops of prefixes smoltcp does not hold, and the
    /// frames waiting for their real next hop (see `detour`).
    detours: detour::Detours,
    /// Static neighbour entries kept in smoltcp's cache, and the neighbours
    /// seen on the wire.
    neighbor_table: neighbors::NeighborTable,
    /// The counters `ip -s link` shows: the VDE link's and `lo`'s.
    wire_stats: LinkStats,
    lo_stats: LinkStats,
    ports: PortTable,
    // Ordered maps: the order events come out in must not depend on hash seeds,
    // or runs of the deterministic mode would differ.
    listeners: BTreeMap<ListenerId, Listener>,
    /// The listeners on each port, in the order they were made.
    listener_ports: HashMap<u16, Vec<ListenerId>>,
    /// Each listener's connections still in their handshake.
    embryos: BTreeSet<(ListenerId, TcpHandle)>,
    next_listener: ListenerId,
    udps: BTreeMap<UdpHandle, udp::UdpSock>,
    /// Closed datagram sockets whose last datagrams have not left yet.
    udp_closing: BTreeSet<UdpHandle>,
    udp_ports: PortTable,
    /// Ping sockets' echo identifiers, held like ports.
    ping_ids: PortTable,
    /// UDP sockets opened so far (their serial numbers).
    udp_serial: u64,
    /// Multicast groups joined, with how many sockets joined each.
    groups: BTreeMap<IpAddr, u32>,
    arp_seen: HashMap<Ipv4Address, Duration>,
    events: VecDeque<Event>,
    now: Duration,
    /// Incoming fragments waiting for the rest of their datagram.
    reassembler: reassembly::Reassemblers,
    /// Where sockets' rings get their memory; dropped after the sockets (see
    /// `Drop`).
    rings: Box<dyn RingSource>,
    /// The DHCPv4 client, while one runs (see `dhcp`).
    dhcp: Option<dhcp::DhcpClient>,
    /// Router discovery and SLAAC (see `slaac`).
    slaac: slaac::Slaac,
    /// The multicast addresses the link's filter was last given (see
    /// `link_filter`).
    link_filter: link_filter::FilterState,
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
        // Not predictable from one stack to the next (RFC 7739), yet repeatable.
        io.next_fragment_id = (seed >> 16) as u32;
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        iface_config.random_seed = seed;
        let iface = Interface::new(iface_config, &mut Port::idle(&mut io), instant(now));
        let mut engine = Engine {
            iface,
            datagrams: datagram_sets::DatagramSets::default(),
            polling: Vec::new(),
            no_sockets: SocketSet::new(Vec::new()),
            tcp: tcp_table::TcpTable::default(),
            time_waits: time_wait::TimeWaits::default(),
            serving: Vec::new(),
            #[cfg(test)]
            served: Vec::new(),
            io,
            config,
            synced: None,
            beyond_table: Vec::new(),
            anyip: Vec::new(),
            not_taken_in: Vec::new(),
            detours: detour::Detours::default(),
            neighbor_table: neighbors::NeighborTable::default(),
            wire_stats: LinkStats::default(),
            lo_stats: LinkStats::default(),
            // Each table its own key, from the seed: a new stack's first ports
            // are not the last one's.
            ports: PortTable::new(seed.rotate_left(8) ^ 0x0074_6370),
            listeners: BTreeMap::new(),
            listener_ports: HashMap::new(),
            embryos: BTreeSet::new(),
            next_listener: 1,
            udps: BTreeMap::new(),
            udp_closing: BTreeSet::new(),
            udp_ports: PortTable::new(seed.rotate_left(24) ^ 0x0075_6470),
            ping_ids: PortTable::new(seed.rotate_left(40) ^ 0x6963_6d70),
            udp_serial: 0,
            groups: BTreeMap::new(),
            arp_seen: HashMap::new(),
            events: VecDeque::new(),
            now,
            reassembler: reassembly::Reassemblers::default(),
            rings: Box::new(rings::HeapRings),
            dhcp: None,
            slaac: slaac::Slaac::new(seed),
            link_filter: link_filter::FilterState::default(),
        };
        engine.sync_config();
        engine
    }

    /// Takes TCP rings from `source` from now on (the pump lends page mappings;
    /// by default they are on the heap). Before the first connection.
    pub(crate) fn set_ring_source(&mut self, source: Box<dyn RingSource>) {
        debug_assert!(self.tcp.is_empty(), "rings already taken");
        self.rings = source;
    }

    /// The configuration model the stack runs with.
    pub(crate) fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Runs a stackcmd string against the model and applies the result.
    pub(crate) fn run_cmd(&mut self, cmds: &str) -> Result<String, crate::cmd::CmdError> {
        self.config.advance_clock(self.now);
        let result = self.config.run_observed(cmds, &self.observed());
        self.sync_config();
        self.forget_flushed_neighbors();
        result
    }

    /// Runs one command, already split into words, against the model and
    /// applies the result.
    pub(crate) fn run_argv(&mut self, argv: &[String]) -> Result<String, crate::cmd::CmdError> {
        self.config.advance_clock(self.now);
        let result = self.config.run_argv(argv, &self.observed());
        self.sync_config();
        self.forget_flushed_neighbors();
        result
    }

    /// Pushes the model's addresses, routes and link state into smoltcp and the
    /// frame plumbing, if the model changed since the last time: what changed is
    /// planned first ([`config_plan`]), then carried out here.
    fn sync_config(&mut self) {
        let generation = self.config.generation();
        if self.synced == Some(generation) {
            return;
        }
        self.synced = Some(generation);
        let running = Running {
            mac: self.io.mac,
            mtu: self.io.mtu,
            addrs: self.iface.ip_addrs(),
        };
        let plan = Plan::new(&self.config, running);
        // New addresses empty smoltcp's neighbour cache; Linux keeps its own,
        // but forgets them all when the link goes down.
        let flushes = plan.addrs.is_some();
        self.apply_plan(plan);
        if !self.io.wire_up {
            self.forget_all_neighbors();
        } else if flushes {
            self.hand_back_learned_neighbors();
        }
        self.fill_static_neighbors();
        self.fill_detour_neighbors();
        // Addresses, routes or the link changed under every socket: each gets a
        // transmit, as a socket that found no route or no neighbour may now send.
        for handle in self.tcp.handles() {
            self.tcp.mark(handle);
        }
        self.datagrams.mark_all();
    }

    /// Carries out a plan made by [`Plan::new`] against the running interface.
    fn apply_plan(&mut self, plan: Plan) {
        if let Some(mac) = plan.mac {
            self.io.mac = mac;
            self.iface.set_hardware_addr(HardwareAddress::Ethernet(mac));
        }
        if let Some(mtu) = plan.mtu {
            // A new link MTU is IPv6's too, until an advertisement lowers it.
            self.io.mtu = mtu;
            self.io.mtu6 = mtu;
        }
        if let Some(wanted) = plan.addrs {
            self.iface.update_ip_addrs(|addrs| {
                addrs.clear();
                for cidr in wanted {
                    if addrs.push(cidr).is_err() {
                        break;
                    }
                }
            });
        }
        self.iface.routes_mut().update(|table| {
            table.clear();
            for (cidr, via) in plan.routes.into_iter().chain(plan.detours) {
                let entry = Route {
                    cidr,
                    via_router: via,
                    preferred_until: None,
                    expires_at: None,
                };
                if table.push(entry).is_err() {
                    break;
                }
            }
        });
        self.io.lo_up = plan.lo_up;
        self.io.wire_up = plan.wire_up;
        self.io.local_v4 = plan.local_v4;
        self.io.local_v6 = plan.local_v6;
        self.beyond_table = plan.beyond_table;
        self.anyip = plan.anyip;
        self.not_taken_in = plan.not_taken_in;
        self.detours.v4 = plan.detour_v4;
        self.detours.v6 = plan.detour_v6;
        self.detours.rejects = self.config.has_reject_routes();
        self.announce(&plan.announce);
    }

    /// Tells the link that the hardware address changed: a gratuitous ARP per IPv4
    /// address and an unsolicited neighbour advertisement per IPv6 one. Linux does
    /// this when `net.ipv4.conf.*.arp_notify` / `net.ipv6.conf.*.ndisc_notify` are
    /// set (both off by default, when peers learn the change only once their
    /// neighbour entries go stale, half a minute or more); the stack does it always
    /// so that a peer reaches it again at once.
    fn announce(&mut self, addrs: &[IpAddr]) {
        for addr in addrs {
            let mut frame = self.io.pool.pop().unwrap_or_default();
            match addr {
                IpAddr::V4(v4) => frames::write_arp_announcement(&mut frame, self.io.mac, *v4),
                IpAddr::V6(v6) => frames::write_neighbor_advert(&mut frame, self.io.mac, *v6),
            }
            self.io.outbox.push_back(frame);
        }
    }

    // ---- frames and time ----

    /// Processes one frame that arrived from the link.
    pub(crate) fn receive(&mut self, now: Duration, frame: &[u8]) {
        self.now = now;
        self.io.now = now;
        if !self.io.wire_up {
            self.wire_stats.rx_dropped += 1;
            return;
        }
        self.wire_stats.rx_packets += 1;
        self.wire_stats.rx_bytes += frame.len() as u64;
        if !self.not_taken_in.is_empty() && self.not_for_us(frame) {
            return;
        }
        if self.answer_arp_from_afar(frame) {
            return;
        }
        if self.beyond_table.is_empty() && self.anyip.is_empty() {
            return self.ingest(frame);
        }
        if !self.anyip.is_empty() && self.martian_source(frame) {
            return;
        }
        // For an address smoltcp does not hold, the engine answers neighbour
        // solicitations (smoltcp would not see them as its own) and lets
        // smoltcp take the packets (AnyIP) and ARP requests.
        let solicit = frames::neighbor_solicit(frame);
        if let Some((target, asker)) = solicit {
            if self.beyond_table.contains(&target.into()) && !asker.is_unspecified() {
                let mut answer = self.io.pool.pop().unwrap_or_default();
                if frames::write_neighbor_answer(&mut answer, frame, self.io.mac, target, asker) {
                    self.io.outbox.push_back(answer);
                } else {
                    self.io.recycle(answer);
                }
                return;
            }
        }
        let to = frames::ip_dst(frame)
            .or_else(|| frames::arp_request(frame).map(|(target, _)| target.into()));
        let beyond = to.is_some_and(|to| self.beyond_table.contains(&to.into()));
        // An address under a user's `local` route is the stack's for packets
        // and ARP requests, as on Linux (its route lookup says `local`), but
        // not for neighbour solicitations: Linux answers them only for the
        // addresses of its list.
        let anyip =
            solicit.is_none() && to.is_some_and(|to| is_anyip(&self.anyip, &self.config, to));
        self.iface.set_any_ip(beyond || anyip);
        self.ingest(frame);
        self.iface.set_any_ip(false);
    }

    /// Whether `frame` is an IPv4 packet, or an ARP request, from an address
    /// a user's `local` route makes the stack's (a peer's, under `ip route
    /// add local 10.0.0.0/24 dev lo`): Linux takes such a source for a
    /// martian and drops the packet, and leaves the request unanswered
    /// (checked on Linux 6.18).
    fn martian_source(&self, frame: &[u8]) -> bool {
        let from = frames::ip_src(frame)
            .filter(IpAddr::is_ipv4)
            .or_else(|| frames::arp_request(frame).map(|(_, asker)| asker.into()));
        from.is_some_and(|from| is_anyip(&self.anyip, &self.config, from))
    }

    /// Whether `frame` is a packet to, or an ARP request for, an address
    /// whose local-table entry was deleted: Linux, which does not forward,
    /// drops the one and leaves the other unanswered.
    fn not_for_us(&self, frame: &[u8]) -> bool {
        let to = frames::ip_dst(frame)
            .or_else(|| frames::arp_request(frame).map(|(target, _)| target.into()));
        to.is_some_and(|to| self.not_taken_in.contains(&to))
    }

    fn ingest(&mut self, frame: &[u8]) {
        match self.reassembler.on_frame(frame, self.now) {
            reassembly::Fragment::NotOne => {}
            reassembly::Fragment::Taken => return,
            reassembly::Fragment::Complete(whole) => return self.ingest(&whole),
        }
        if let Some(sender) = frames::arp_sender(frame) {
            self.arp_seen.insert(sender, self.now);
        }
        self.neighbor_table
            .note(frame, self.now, self.io.mac, self.config.neighbors());
        self.release_detoured();
        if self.relay_arp_news(frame) {
            return;
        }
        let Some(tcp) = frames::tcp_view(frame) else {
            return self.ingest_ready(frame);
        };
        let mtu = self.io.ip_mtu(frame);
        if tcp.syn && tcp.options && link_mtu::mss_too_large(frame, mtu) {
            // smoltcp sizes segments from the peer's MSS (see `link_mtu`).
            let mut clamped = frame.to_vec();
            link_mtu::clamp_mss(&mut clamped, mtu);
            return self.ingest(&clamped);
        }
        if !self.time_waits.is_empty() && self.meet_time_wait(frame, &tcp) {
            return;
        }
        if tcp.opens() && !self.admit_syn(tcp.segment) {
            return;
        }
        if tcp.rst {
            self.note_reset(tcp.segment);
        }
        self.io.recovery_on_ingress(&tcp);
        let duplicate = self.io.sack.on_ingress(&tcp);
        let sent_before = self.io.segments_sent;
        self.ingest_segment(frame, &tcp);
        if tcp.fin {
            self.keep_early_fin(frame, &tcp, self.io.segments_sent != sent_before);
        } else if tcp.data_len > 0 {
            self.take_early_fin(&tcp);
        }
        if tcp.window == 0 && tcp.ack {
            self.persist(frame, &tcp);
        }
        if tcp.carries_data() {
            let answered = self.io.segments_sent != sent_before;
            if !answered && !duplicate && tcp.data_len > 0 {
                // smoltcp answers at once every segment while data is out of
                // order; silence then means it dropped this one (too many
                // holes), or that it came in order (with no range to report).
                self.io.sack.not_kept(&tcp);
            }
            if duplicate && !answered {
                self.acknowledge_duplicate(frame, &tcp);
            }
            self.acknowledge_quickly(&tcp, answered || duplicate);
        }
    }

    /// Runs loss recovery's persist timer for a peer whose window `frame`
    /// (read as `tcp`) keeps closed, if its connection has data to send (see
    /// [`recovery::Recovery::persist`]).
    fn persist(&mut self, frame: &[u8], tcp: &frames::TcpView) {
        let waiting = self
            .tcp
            .lookup(&flow_of(tcp.segment))
            .and_then(|handle| self.tcp.get(handle))
            .is_some_and(|entry| entry.socket().send_queue() > 0);
        if waiting {
            self.io.recovery.persist(tcp, frame, self.now);
        }
    }

    /// Keeps the peer's FIN that smoltcp dropped because it came beyond a
    /// hole (smoltcp takes a FIN only with nothing missing before it, and
    /// forgets it): Linux keeps it in its out-of-order queue, SACKs it and
    /// takes it when the hole fills, so that the peer learns from the SACK
    /// that the segment before the FIN is lost (RACK) and sends neither it
    /// nor the FIN again after a timeout. The SACK block is [`sack`]'s (it
    /// noted the FIN's sequence number); a bare FIN smoltcp did not answer
    /// is answered here, at once, as Linux answers anything out of order.
    fn keep_early_fin(&mut self, frame: &[u8], tcp: &frames::TcpView, answered: bool) {
        let Some(handle) = self.tcp.lookup(&flow_of(tcp.segment)) else {
            return;
        };
        let Some(entry) = self.tcp.get_mut(handle) else {
            return;
        };
        let state = entry.socket().state();
        if fin_received(state)
            || !matches!(
                state,
                TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2
            )
        {
            entry.conn.early_fin = None;
            return;
        }
        let mut fin = entry.conn.early_fin.take().unwrap_or_default();
        if !frames::write_tcp_part(&mut fin, frame, frames::TcpPart::FinAfterData) {
            return;
        }
        entry.conn.early_fin = Some(fin);
        if !answered {
            self.acknowledge_duplicate(frame, tcp);
        }
    }

    /// Hands smoltcp the early FIN its connection keeps (see
    /// [`Engine::keep_early_fin`]) after the data segment `tcp` came, with
    /// that segment's acknowledgement and window: taken if the data before it
    /// is all in now, else kept for the next one.
    fn take_early_fin(&mut self, tcp: &frames::TcpView) {
        let Some(handle) = self.tcp.lookup(&flow_of(tcp.segment)) else {
            return;
        };
        let Some(mut fin) = self
            .tcp
            .get_mut(handle)
            .and_then(|entry| entry.conn.early_fin.take())
        else {
            return;
        };
        if let Some(ack) = tcp.ack_number {
            recovery::refresh(&mut fin, ack, tcp.window);
        }
        self.ingest_ready(&fin);
        if let Some(entry) = self.tcp.get_mut(handle) {
            if !fin_received(entry.socket().state()) {
                entry.conn.early_fin = Some(fin);
            }
        }
    }

    /// Acknowledges a segment whose data all came before (or an early FIN,
    /// which smoltcp does not answer), which smoltcp
    /// answers at most once a second (its challenge ACK, RFC 5961's limit,
    /// which Linux keeps for SYNs, RSTs and bad ACKs): the peer sent it again
    /// because it saw no acknowledgement (a lost ACK, or a probe), and is
    /// waiting for one, which carries a D-SACK (RFC 2883) telling it the
    /// copy was not needed. The ACK is the last one the connection sent.
    fn acknowledge_duplicate(&mut self, frame: &[u8], tcp: &frames::TcpView) {
        let flow = flow_of(tcp.segment);
        let Some(entry) = self.tcp.lookup(&flow).and_then(|h| self.tcp.get(h)) else {
            return;
        };
        let (Some((ack, window)), Some(seq)) =
            (entry.conn.last_ack, self.io.ack_sequence.highest(&flow))
        else {
            return;
        };
        let mut reply = self.io.pool.pop().unwrap_or_default();
        if frames::write_tcp_ack_reply(&mut reply, frame, seq, ack, window) {
            self.io.route(reply);
        } else {
            self.io.recycle(reply);
        }
    }

    /// Hands smoltcp a TCP segment the engine has looked at (see [`Engine::ingest`]).
    fn ingest_segment(&mut self, frame: &[u8], tcp: &frames::TcpView) {
        if tcp.carries_data() {
            if self.peer_finished(tcp.segment) {
                // Data beyond the peer's FIN: smoltcp would queue it after the
                // stream's end (it checks the window but not the state), so that
                // the application reads bytes past the FIN position, shifted by
                // the sequence number the FIN took. RFC 9293 (3.10.7.4, CLOSE-WAIT
                // and later: "ignore the segment text"), and Linux, drop it; the
                // rest of the segment (its ACK) still counts.
                return self.ingest_parts(frame, &[frames::TcpPart::WithoutData]);
            }
            if tcp.fin {
                // smoltcp accepts the FIN of a segment whose data it cut at the
                // right edge of its window (it only checks that nothing is
                // missing before the segment): the FIN then takes the sequence
                // number of the first byte cut, the ACK covers that byte, and the
                // stream ends short. It happens when smoltcp's window, rounded to
                // its scale, shrinks by a byte. Given the data and then the FIN on
                // its own, smoltcp takes the FIN only if all of the data fitted.
                return self.ingest_parts(
                    frame,
                    &[
                        frames::TcpPart::DataWithoutFin,
                        frames::TcpPart::FinAfterData,
                    ],
                );
            }
        }
        self.ingest_ready(frame);
    }

    /// Linux's quick-ACK mode (`tcp_enter_quickack_mode`): after a sign of loss
    /// the receiver acknowledges each of the next segments at once, so that the
    /// sender's recovery and its window's growth wait neither for a delayed ACK
    /// (1 ms here, where a round trip may be a tenth of that) nor for the end of
    /// a batch of frames (the pump's ACK then covers the whole batch, and one
    /// ACK lost stalls a small window until a probe or the timer). The sign:
    /// smoltcp answered the data segment `tcp` at once (`answered`), which it
    /// does when it came out of order, filled a hole or was a duplicate (RFC
    /// 5681, 4.2: the immediate ACKs a receiver owes).
    ///
    /// After those 16, and for [`LOSSY_SEGMENTS`] more (and for a
    /// connection's first [`LOSSY_SEGMENTS`], while the sender is in slow
    /// start), every second segment is acknowledged at once, as Linux
    /// acknowledges always (RFC 9293, SHLD-19). Outside such a while, ACKs
    /// are smoltcp's: every second
    /// segment, but at the next transmit, which in a pump comes after the
    /// whole batch of frames it read: fewer ACK frames for the switch to carry
    /// in bulk, where none is lost; under loss, a batch's one ACK lost, and the
    /// probe's, cost a timeout (traces of slow runs under 5% loss).
    fn acknowledge_quickly(&mut self, tcp: &frames::TcpView, answered: bool) {
        let Some(handle) = self.tcp.lookup(&flow_of(tcp.segment)) else {
            return;
        };
        let Some(entry) = self.tcp.get_mut(handle) else {
            return;
        };
        entry.conn.largest_in = entry.conn.largest_in.max(tcp.data_len);
        entry.conn.steady =
            !answered && tcp.data_len > 0 && tcp.data_len >= entry.conn.largest_in && !tcp.fin;
        if answered {
            entry.conn.quick_acks = QUICK_ACKS;
            entry.conn.lossy = LOSSY_SEGMENTS;
            // A delay of zero rather than none: smoltcp keeps a delayed-ACK
            // timer started before this mode until it sends an ACK from its
            // timer, and only a delay lets a second segment force it.
            entry
                .socket_mut()
                .set_ack_delay(Some(smoltcp::time::Duration::ZERO));
            return;
        }
        if entry.conn.quick_acks > 0 {
            entry.conn.quick_acks -= 1;
            if entry.conn.quick_acks == 0 {
                entry.socket_mut().set_ack_delay(Some(ACK_DELAY));
            }
            return self.serve_connection(handle);
        }
        if entry.conn.lossy == 0 {
            return;
        }
        entry.conn.lossy -= 1;
        entry.conn.unacknowledged = entry.conn.unacknowledged.saturating_add(1);
        if entry.conn.unacknowledged >= 2 {
            // smoltcp owes an ACK at once (more than a segment unacknowledged).
            self.serve_connection(handle);
        }
    }

    /// Hands smoltcp a neighbour's announcement of a new hardware address in a
    /// form it heeds; true if `frame` was one (and is then done with).
    ///
    /// smoltcp ignores ARP not aimed at its own addresses, so a neighbour's
    /// announcement would go unheard until the cached address expires (60 s).
    /// Linux updates an entry it has; the same news, aimed at one of our
    /// addresses, makes smoltcp do that. Not for a claim on one of our own
    /// addresses (a conflict, which Linux only reports), nor for our own
    /// announcement looped back.
    fn relay_arp_news(&mut self, frame: &[u8]) -> bool {
        let Some((mac, addr)) = frames::arp_announcement(frame) else {
            return false;
        };
        let news = !self.io.local_v4.contains(&addr) && mac != self.io.mac;
        let ours = self.io.local_v4.iter().copied().find(|&a| !in_lo_net(a));
        let Some(our_ip) = ours.filter(|_| news) else {
            return false;
        };
        let mut reply = Vec::new();
        frames::write_arp_reply_to(&mut reply, mac, addr, self.io.mac, our_ip);
        self.ingest_ready(&reply);
        true
    }

    /// Ingests the `parts` of the TCP segment `frame`, one after the other (the
    /// whole frame if it cannot be rewritten).
    fn ingest_parts(&mut self, frame: &[u8], parts: &[frames::TcpPart]) {
        let mut buf = self.io.pool.pop().unwrap_or_default();
        if !frames::write_tcp_part(&mut buf, frame, parts[0]) {
            self.io.recycle(buf);
            return self.ingest_ready(frame);
        }
        self.ingest_ready(&buf);
        for &part in &parts[1..] {
            if frames::write_tcp_part(&mut buf, frame, part) {
                self.ingest_ready(&buf);
            }
        }
        self.io.recycle(buf);
    }

    /// Hands `frame` to smoltcp with the set of the sockets it may be for (see
    /// [`frames::demux`]), and what it delivered to the datagram sockets.
    fn ingest_ready(&mut self, frame: &[u8]) {
        let packet = match frames::demux(frame) {
            frames::Demux::Packet(packet) => packet,
            frames::Demux::Neighbor => {
                self.hear_neighbor_discovery(frame);
                self.ingest_with_no_socket(frame);
                // The neighbour cache may have learnt what a socket waits for.
                self.tcp.wake_neighbor_waiters();
                self.datagrams.wake_neighbor_waiters();
                return;
            }
        };
        match packet {
            frames::Packet::Tcp(flow) => self.ingest_tcp(frame, self.tcp.lookup(&flow)),
            frames::Packet::Udp(68) if self.for_dhcp(frame) => self.ingest_dhcp(frame),
            frames::Packet::Udp(port) => self.ingest_datagram(frame, Group::Udp(port)),
            frames::Packet::Icmp => self.ingest_datagram(frame, Group::Ping),
            frames::Packet::Other => self.ingest_with_no_socket(frame),
        }
    }

    /// Hands smoltcp a frame no socket takes (a TCP segment gets its RST).
    fn ingest_with_no_socket(&mut self, frame: &[u8]) {
        let mut port = Port {
            io: &mut self.io,
            rx: Some(frame),
        };
        self.iface
            .poll_ingress_single(instant(self.now), &mut port, &mut self.no_sockets);
    }

    /// Hands smoltcp a TCP segment (or a piece of one) with the set of the
    /// connection it is for, if any. A listener's socket made for a SYN that
    /// smoltcp did not take (a bad checksum, an address not ours) goes at once.
    fn ingest_tcp(&mut self, frame: &[u8], handle: Option<TcpHandle>) {
        let Some((handle, entry)) = handle.and_then(|h| Some((h, self.tcp.get_mut(h)?))) else {
            return self.ingest_with_no_socket(frame);
        };
        self.io.last_tcp = None;
        let mut port = Port {
            io: &mut self.io,
            rx: Some(frame),
        };
        self.iface
            .poll_ingress_single(instant(self.now), &mut port, entry.set_mut());
        entry.conn.note_sent(self.io.last_tcp.take());
        let unused_embryo = match entry.conn.phase {
            Phase::Embryo(listener) if entry.socket().state() == TcpState::Listen => Some(listener),
            _ => None,
        };
        if let Some(listener) = unused_embryo {
            if let Some(l) = self.listeners.get_mut(&listener) {
                l.embryos -= 1;
            }
            self.forget(handle);
            return;
        }
        self.tcp.mark(handle);
        self.tcp.touch(handle);
    }

    /// Hands smoltcp a frame with the set of the datagram sockets it is for (an
    /// empty one if there are none: a UDP datagram then gets its ICMP port
    /// unreachable), and moves what they received to their queues.
    fn ingest_datagram(&mut self, frame: &[u8], group: Group) {
        if group == Group::Ping && !self.udps.is_empty() {
            if let Some(error) = frames::udp_unreachable(frame) {
                self.udp_icmp_error(error);
            }
        }
        let Some(set) = self.datagrams.set_mut(group) else {
            return self.ingest_with_no_socket(frame);
        };
        let mut device = Port {
            io: &mut self.io,
            rx: Some(frame),
        };
        self.iface
            .poll_ingress_single(instant(self.now), &mut device, set);
        match group {
            Group::Udp(port) => self.collect_udp(port),
            Group::Ping => self.collect_ping(),
        }
    }

    /// Whether the connection `segment` is for has received its peer's FIN (is in
    /// CLOSE-WAIT, LAST-ACK, CLOSING or TIME-WAIT), as smoltcp sees it now: not
    /// `Conn::peer_fin`, which is only updated at the next transmit, while the FIN
    /// and the data after it may come in one batch of frames.
    fn peer_finished(&self, segment: frames::Segment) -> bool {
        let flow = flow_of(segment);
        self.tcp
            .lookup(&flow)
            .and_then(|handle| self.tcp.get(handle))
            .is_some_and(|entry| fin_received(entry.socket().state()))
    }

    /// Processes frames that the stack sent to itself, a bounded number per call so
    /// a pump stays responsive ([`Engine::has_loopback`] tells if more wait).
    /// Returns true if it processed any.
    pub(crate) fn receive_loopback(&mut self, now: Duration) -> bool {
        self.now = now;
        self.io.now = now;
        let mut any = false;
        for _ in 0..OUTBOX_LIMIT {
            let Some(frame) = self.io.loopback.pop_front() else {
                break;
            };
            // lo counts IP packets, sent and received at once.
            let bytes = frame.len().saturating_sub(14) as u64;
            for stats in [&mut self.lo_stats.tx_bytes, &mut self.lo_stats.rx_bytes] {
                *stats += bytes;
            }
            self.lo_stats.tx_packets += 1;
            self.lo_stats.rx_packets += 1;
            // Linux's `lo` holds 127.0.0.1/8, the whole network; smoltcp's
            // interface takes 127.0.0.1 only, and drops a packet to any other
            // address unless told to take any (AnyIP). Only for what the stack
            // sent itself: from the wire, Linux drops 127/8 as martian.
            // So for an address under a user's `local` route (AnyIP).
            let lo_net = frames::ipv4_dst(&frame).is_some_and(in_lo_net)
                || (!self.anyip.is_empty()
                    && frames::ip_dst(&frame)
                        .is_some_and(|to| is_anyip(&self.anyip, &self.config, to)));
            self.iface.set_any_ip(lo_net);
            self.ingest(&frame);
            self.iface.set_any_ip(false);
            self.io.recycle(frame);
            any = true;
        }
        any
    }

    /// Lets smoltcp send what its sockets have ready, then updates connection
    /// states: only the connections that are marked (something happened to them)
    /// or whose timers came due, and the datagram sockets if they have something
    /// to send.
    pub(crate) fn transmit(&mut self, now: Duration) {
        self.now = now;
        self.io.now = now;
        let ts = instant(now);
        self.iface.poll_maintenance(ts);
        let detoured = self.detours.v4.is_some() || self.detours.v6;
        if (detoured || !self.config.neighbors().is_empty()) && self.neighbor_table.fill_due(now) {
            self.fill_static_neighbors();
            self.fill_detour_neighbors();
        }
        if self.time_waits.next_expiry().is_some_and(|at| at <= now) {
            let ports = &mut self.ports;
            self.time_waits
                .expire(now, |port, how| ports.release(port, how));
        }
        self.io.resend_due();
        self.io.release_held_acks();
        self.tcp.wake_due(now);
        self.poll_datagrams();
        self.poll_slaac();
        self.poll_dhcp();
        let mut serving = std::mem::take(&mut self.serving);
        self.tcp.take_dirty(&mut serving);
        for (i, &handle) in serving.iter().enumerate() {
            if self.io.outbox_full() {
                // The rest wait for the link to take what is queued.
                for &later in &serving[i..] {
                    self.tcp.mark(later);
                }
                break;
            }
            self.serve_connection(handle);
        }
        serving.clear();
        self.serving = serving;
        self.poll_interface();
        if !self.udp_closing.is_empty() {
            self.finish_udp_closes();
        }
    }

    /// smoltcp's egress with no socket: what the interface sends on its own (the
    /// rest of a datagram sent in IPv4 fragments, multicast reports).
    fn poll_interface(&mut self) {
        let ts = instant(self.now);
        for _ in 0..64 {
            let mut port = Port::idle(&mut self.io);
            self.iface.poll_egress(ts, &mut port, &mut self.no_sockets);
            let pending = self
                .iface
                .poll_at(ts, &self.no_sockets)
                .is_some_and(|at| at <= ts);
            if !pending || self.io.outbox_full() {
                break;
            }
        }
    }

    /// Lets the datagram sets that are marked (a socket in them sent) or due (a
    /// wait for a neighbour ended) send, and sets when each next needs a poll.
    fn poll_datagrams(&mut self) {
        let mut polling = std::mem::take(&mut self.polling);
        self.datagrams.take_due(self.now, &mut polling);
        let ts = instant(self.now);
        for &group in &polling {
            let Some(set) = self.datagrams.set_mut(group) else {
                continue;
            };
            for _ in 0..64 {
                let mut port = Port::idle(&mut self.io);
                let result = self.iface.poll_egress(ts, &mut port, set);
                if result == smoltcp::iface::PollResult::None || self.io.outbox_full() {
                    break;
                }
            }
            let set = self.datagrams.set(group).expect("polled above");
            let next = self.iface.poll_at(ts, set).map(duration);
            let silence = self.datagrams.neighbor_silence(group);
            match next.filter(|&at| self.still_silent(at, silence)) {
                Some(until) => self.datagrams.wait_for_neighbor(group, until),
                None => self.datagrams.stop_waiting(group),
            }
            self.datagrams.schedule(group, next, self.now);
        }
        polling.clear();
        self.polling = polling;
    }

    /// When a socket that found its neighbour missing now may try again: a
    /// socket whose next poll is exactly then is taken to be waiting for one.
    fn neighbor_silence_ends(&self) -> Duration {
        duration(instant(self.now)) + NEIGHBOR_SILENCE
    }

    /// Whether a socket whose next poll smoltcp says is `at` waits for a
    /// neighbour: it found one missing now (`at` is the end of the silence
    /// that starts now), or still waits in the silence it was in (`silence`,
    /// its end): news of another neighbour woke it for nothing, and the
    /// answer it waits for must wake it again, not the silence's end.
    fn still_silent(&self, at: Duration, silence: Option<Duration>) -> bool {
        at == self.neighbor_silence_ends() || (silence == Some(at) && at > self.now)
    }

    /// One marked connection: smoltcp sends what it has, then the connection is
    /// looked at (see [`lifecycle`]), the pump told if it changed, and its next
    /// deadline set.
    fn serve_connection(&mut self, handle: TcpHandle) {
        let ts = instant(self.now);
        let Some(entry) = self.tcp.get_mut(handle) else {
            return;
        };
        let before = Snapshot::of(entry);
        #[cfg(test)]
        self.served.push(handle);
        let segments_before = self.io.segments_sent;
        self.io.last_tcp = None;
        // smoltcp sends from its own addresses only: a connection on 127.0.0.2
        // (local on Linux, see `receive_loopback`) needs AnyIP to send.
        // So does one on an address beyond smoltcp's table (`config_plan`),
        // or under a user's `local` route.
        let lo_net = entry.socket().local_endpoint().is_some_and(|l| {
            matches!(l.addr, IpAddress::Ipv4(v4) if in_lo_net(v4))
                || self.beyond_table.contains(&l.addr)
                || is_anyip(&self.anyip, &self.config, l.addr.into())
        });
        self.iface.set_any_ip(lo_net);
        self.io.ack_stretch = entry.conn.ack_stretch(entry.socket().recv_capacity());
        for _ in 0..64 {
            let mut port = Port::idle(&mut self.io);
            let result = self.iface.poll_egress(ts, &mut port, entry.set_mut());
            if result == smoltcp::iface::PollResult::None || self.io.outbox_full() {
                break;
            }
        }
        self.io.ack_stretch = 0;
        self.iface.set_any_ip(false);
        entry.conn.note_sent(self.io.last_tcp.take());
        if let Phase::Connecting { next_hop, .. } = &mut entry.conn.phase {
            if self.io.segments_sent != segments_before {
                // smoltcp sends only once it has the hop's address: from now on
                // the connect waits for an answer, not for the hop.
                *next_hop = None;
            }
        }
        if !self.update_connection(handle) {
            return;
        }
        let Some(entry) = self.tcp.get(handle) else {
            return;
        };
        let changed = Snapshot::of(entry) != before;
        let in_time_wait = matches!(entry.conn.phase, Phase::Orphan { .. })
            && entry.socket().state() == TcpState::TimeWait;
        let endpoints = entry
            .socket()
            .local_endpoint()
            .zip(entry.socket().remote_endpoint());
        let smoltcp_at = self.iface.poll_at(ts, entry.set()).map(duration);
        let own_at = [entry.conn.deadline(self.now), entry.conn.tx_pages.due()]
            .into_iter()
            .flatten()
            .min();
        if changed {
            self.tcp.touch(handle);
        }
        let at = match (smoltcp_at, own_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let silence = self.tcp.neighbor_silence(handle);
        // A socket that just sent found its neighbour: its next poll a second
        // off is its retransmission timer (smoltcp's floor), not a silence.
        let sent = self.io.segments_sent != segments_before;
        let waits = smoltcp_at.filter(|&at| !sent && self.still_silent(at, silence));
        let owes_nothing = smoltcp_at.is_none_or(|at| at > self.now + TIME_WAIT_SETTLED);
        if owes_nothing && in_time_wait {
            return self.enter_time_wait(handle);
        }
        if let Some(until) = waits {
            self.tcp.wait_for_neighbor(handle, until);
            if let Some((local, remote)) = endpoints {
                self.ask_neighbor(local.addr.into(), remote.addr.into());
            }
        } else {
            self.tcp.stop_waiting(handle);
        }
        self.tcp.schedule(handle, at, self.now);
    }

    /// Asks for the hardware address of the next hop towards `remote`, from
    /// `local`, unless it was asked for less than a second ago: what Linux's
    /// per-neighbour rate limit allows, where smoltcp's one interface-wide
    /// second of silence after any request held the second of two new
    /// neighbours back a whole second. The answer fills smoltcp's cache, which
    /// it reads before its silence, and wakes the waiting sockets.
    fn ask_neighbor(&mut self, local: IpAddr, remote: IpAddr) {
        let Some(hop) = self.config.lookup(remote).filter(|hop| !hop.local) else {
            return;
        };
        // A static entry (`ip neigh add`) is never asked for, as on Linux.
        let fixed = self.config.neighbors().iter().any(|n| n.addr == hop.addr);
        if !fixed {
            self.ask_for(local, hop.addr);
        }
    }

    /// Replaces an orphan in TIME-WAIT that owes its peer nothing by a record
    /// (see [`time_wait`]): its socket is dropped and its rings given back, the
    /// record holds its port. Past the records' cap it is simply forgotten.
    fn enter_time_wait(&mut self, handle: TcpHandle) {
        let Some(entry) = self.tcp.get(handle) else {
            return;
        };
        let socket = entry.socket();
        let flow = socket
            .local_endpoint()
            .zip(socket.remote_endpoint())
            .map(|(l, r)| (l.addr.into(), l.port, r.addr.into(), r.port));
        let record = flow
            .zip(entry.conn.last_ack)
            .and_then(|(flow, (ack, window))| {
                let snd_nxt = self.io.ack_sequence.highest(&flow)?;
                let record = time_wait::Record {
                    snd_nxt,
                    rcv_nxt: ack,
                    window,
                    port: entry.conn.port,
                    port_use: entry.conn.port_use,
                    expires: self.now,
                };
                Some((flow, record))
            });
        if let Some((flow, record)) = record {
            if self.time_waits.insert(flow, record, self.now) {
                // The record holds the port the connection held.
                self.ports.share(record.port, record.port_use);
            }
        }
        self.forget(handle);
    }

    /// Judges a segment for a 4-tuple in TIME-WAIT (see [`time_wait`]); true if
    /// it is done with (answered or ignored), false if it goes on (no record, or
    /// a new SYN that ended one).
    fn meet_time_wait(&mut self, frame: &[u8], tcp: &frames::TcpView) -> bool {
        let flow = flow_of(tcp.segment);
        match self.time_waits.judge(&flow, tcp, self.now) {
            None => false,
            Some(time_wait::Verdict::Ignore) => true,
            Some(time_wait::Verdict::Ack { seq, ack, window }) => {
                let mut reply = self.io.pool.pop().unwrap_or_default();
                if frames::write_tcp_ack_reply(&mut reply, frame, seq, ack, window) {
                    self.io.route(reply);
                } else {
                    self.io.recycle(reply);
                }
                true
            }
            Some(time_wait::Verdict::Ended {
                port,
                port_use,
                reopen,
            }) => {
                self.ports.release(port, port_use);
                !reopen
            }
        }
    }

    /// The next frame for the link, if any.
    pub(crate) fn next_outgoing(&mut self) -> Option<Vec<u8>> {
        let frame = loop {
            let frame = self.io.outbox.pop_front()?;
            if self.rejected_by_route(&frame) {
                self.io.recycle(frame);
                continue;
            }
            if frames::dst_mac(&frame) != Some(detour::DETOUR_MAC) {
                break frame;
            }
            if let Some(frame) = self.detour(frame) {
                break frame;
            }
        };
        self.wire_stats.tx_packets += 1;
        self.wire_stats.tx_bytes += frame.len() as u64;
        Some(frame)
    }

    /// Puts back a frame the link could not take now; it goes first next time.
    pub(crate) fn unsend(&mut self, frame: Vec<u8>) {
        self.wire_stats.tx_packets -= 1;
        self.wire_stats.tx_bytes -= frame.len() as u64;
        self.io.outbox.push_front(frame);
    }

    /// Returns a frame buffer after the link sent it, for reuse.
    pub(crate) fn recycle(&mut self, frame: Vec<u8>) {
        self.io.recycle(frame);
    }

    /// How many connections still have something to say: every one that is
    /// not closed, listening, or past its FIN's acknowledgement (FIN-WAIT-2,
    /// TIME-WAIT). A host that outlives its program waits for these to reach
    /// zero, so that FINs and the last bytes leave before the stack goes.
    pub(crate) fn unfinished_connections(&self) -> usize {
        self.tcp
            .handles()
            .into_iter()
            .filter_map(|handle| self.tcp.get(handle))
            .filter(|entry| {
                !matches!(
                    entry.socket().state(),
                    TcpState::Closed | TcpState::Listen | TcpState::FinWait2 | TcpState::TimeWait
                )
            })
            .count()
    }

    /// True while looped-back frames wait to be processed.
    pub(crate) fn has_loopback(&self) -> bool {
        !self.io.loopback.is_empty()
    }

    /// How long the pump may sleep before the engine needs time to pass: the
    /// earliest of the connections' deadlines (the top of their heap), the
    /// datagram sockets', loss recovery's, the DHCP client's and the
    /// interface's own.
    pub(crate) fn poll_delay(&mut self, now: Duration) -> Option<Duration> {
        if self.tcp.has_dirty() || self.datagrams.has_dirty() || self.slaac_news() {
            return Some(Duration::ZERO);
        }
        let interface = self
            .iface
            .poll_at(instant(now), &self.no_sockets)
            .map(duration);
        [
            self.tcp.next_deadline(),
            self.datagrams.next_deadline(),
            self.io.recovery.deadline(),
            self.io.acks.deadline(),
            self.time_waits.next_expiry(),
            self.dhcp.as_ref().and_then(|c| c.deadline()),
            self.slaac.deadline(),
            self.config.next_expiry(),
            interface,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_sub(now))
    }

    /// The connections whose state, queues or peer's FIN changed since the pump
    /// last asked (a segment came for them, or a timer of theirs ran): the
    /// only ones it needs to serve, besides those its own descriptors name.
    pub(crate) fn take_touched(&mut self, out: &mut Vec<TcpHandle>) {
        self.tcp.take_touched(out);
    }

    /// The next event for the pump.
    pub(crate) fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- TCP ----

    /// A TCP socket with `options`, its rings from `source`, and their lease.
    fn new_tcp_socket(
        source: &mut dyn RingSource,
        options: &SocketOptions,
        hops: u8,
    ) -> (tcp::Socket<'static>, Option<Lease>) {
        let (rx, tx) = options.tcp_buffers(TCP_BUFFER);
        let rings = source.rings(rx, tx);
        let mut socket = tcp::Socket::new(rings.rx.tcp(), rings.tx.tcp());
        options.apply_tcp(&mut socket, hops);
        // smoltcp acknowledges every second segment at once; the delay only holds
        // back the ACK of a lone segment. 10 ms (its default) stalls a fast link once
        // per window (FACTS.md); none at all doubles the ACK frames a switch carries.
        socket.set_ack_delay(Some(ACK_DELAY));
        (socket, rings.lease)
    }

    /// Gives back the rings of a socket that was dropped (or never added).
    fn give_back(&mut self, lease: Option<Lease>) {
        if let Some(lease) = lease {
            self.rings.give_back(lease);
        }
    }

    /// Starts an active open to `remote`, from `local` (unspecified parts chosen here).
    /// A v4-mapped `remote` (an IPv6 socket with `IPV6_V6ONLY` off) is reached over
    /// IPv4, and the connection's local address is then shown v4-mapped too; with
    /// `IPV6_V6ONLY` set, such a remote is unreachable, as on Linux.
    pub(crate) fn connect(
        &mut self,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        options: &SocketOptions,
    ) -> io::Result<TcpHandle> {
        let hop = check_connect(&self.config, remote, options)?;
        let mapped = remote.is_ipv6() && unmap(remote).is_ipv4();
        let remote = unmap(remote);
        let local = local.map(unmap);
        let local_ip = local.map(|l| l.ip()).filter(|ip| !ip.is_unspecified());
        if let Some(ip) = local_ip {
            if !self.config.is_local_addr(ip) {
                return Err(errno(libc::EADDRNOTAVAIL));
            }
        }
        // Unbound, the source is the one the route gives, as on Linux (smoltcp
        // would take the first address it holds of the family, and knows
        // nothing of those beyond its table).
        let local_ip = local_ip.or(hop.src.filter(|src| src.is_ipv4() == remote.is_ipv4()));
        if local_ip.is_none() && remote.is_ipv6() && !hop.local {
            // No address to send from (none, or all still tentative): Linux's
            // EADDRNOTAVAIL, where smoltcp would take ::1.
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        let asked = local.map_or(0, |l| l.port());
        let destination = (local_ip, remote.ip(), remote.port());
        let how = options.port_use_to(remote.ip(), local_ip);
        let port = self
            .ports
            .take_for(asked, how, Some(destination))
            // Linux: EADDRNOTAVAIL when no ephemeral port is left for a connect
            // (`bind` to port 0 gives EADDRINUSE then, as here).
            .ok_or_else(|| {
                errno(if asked == 0 {
                    libc::EADDRNOTAVAIL
                } else {
                    libc::EADDRINUSE
                })
            })?;
        let hops = self.io.hops(remote.ip());
        let (mut socket, lease) = Self::new_tcp_socket(&mut *self.rings, options, hops);
        let endpoint = IpListenEndpoint {
            addr: local_ip.map(IpAddress::from),
            port,
        };
        if socket
            .connect(self.iface.context(), to_endpoint(remote), endpoint)
            .is_err()
        {
            drop(socket);
            self.give_back(lease);
            self.ports.release(port, how);
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        let next_hop = match hop.addr {
            IpAddr::V4(v4) if !hop.local => Some(v4),
            _ => None,
        };
        let flow = socket
            .local_endpoint()
            .zip(socket.remote_endpoint())
            .map(|(l, r)| (l.addr.into(), l.port, r.addr.into(), r.port));
        let mut conn = Conn::new(
            Phase::Connecting {
                since: self.now,
                next_hop,
            },
            TcpState::SynSent,
            port,
            *options,
        );
        conn.mapped = mapped;
        conn.port_use = how;
        conn.lease = lease;
        let handle = self.tcp.insert(socket, conn);
        if let Some(flow) = flow {
            self.tcp.set_flow(handle, flow);
        }
        Ok(handle)
    }

    /// The local address of a connection as its socket shows it (v4-mapped for an
    /// IPv6 socket's IPv4 connection).
    pub(crate) fn local_addr(&self, handle: TcpHandle) -> Option<SocketAddr> {
        let entry = self.tcp.get(handle)?;
        let local = from_endpoint(entry.socket().local_endpoint()?);
        let mapped = entry.conn.mapped;
        Some(if mapped { map(local) } else { local })
    }

    /// Checks that `local` could be bound, and reserves its port (0: an ephemeral one).
    /// Returns the address with the port filled in.
    pub(crate) fn bind(
        &mut self,
        local: SocketAddr,
        options: &SocketOptions,
    ) -> io::Result<SocketAddr> {
        let ip = unmap(local).ip();
        if !ip.is_unspecified() && !self.config.is_local_addr(ip) {
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        let port = self
            .ports
            .take(local.port(), options.port_use_on(false, ip))
            .ok_or_else(|| errno(libc::EADDRINUSE))?;
        Ok(SocketAddr::new(local.ip(), port))
    }

    /// Releases a port taken by [`Engine::bind`] (with the same options) that was
    /// never used.
    pub(crate) fn unbind(&mut self, local: SocketAddr, options: &SocketOptions) {
        let ip = unmap(local).ip();
        self.ports
            .release(local.port(), options.port_use_on(false, ip));
    }

    /// Listens on an address already reserved with [`Engine::bind`]. `accepted` is
    /// counted up by the application side as it takes connections.
    ///
    /// `EADDRINUSE` if another socket listens on the port and the two do not both
    /// have `SO_REUSEPORT`.
    pub(crate) fn listen(
        &mut self,
        local: SocketAddr,
        backlog: usize,
        accepted: Arc<AtomicU64>,
        options: &SocketOptions,
    ) -> io::Result<ListenerId> {
        let ip = unmap(local).ip();
        let port_use = options.port_use_on(true, ip);
        if !self
            .ports
            .change(local.port(), options.port_use_on(false, ip), port_use)
        {
            return Err(errno(libc::EADDRINUSE));
        }
        let id = self.next_listener;
        self.next_listener += 1;
        self.listener_ports
            .entry(local.port())
            .or_default()
            .push(id);
        self.listeners.insert(
            id,
            Listener {
                local,
                options: *options,
                port_use,
                // 0 too: Linux then queues one connection.
                backlog,
                embryos: 0,
                handed_out: 0,
                accepted,
            },
        );
        Ok(id)
    }

    /// New options for a listener: the connections it accepts from now on get them.
    pub(crate) fn set_listener_options(&mut self, id: ListenerId, options: &SocketOptions) {
        if let Some(listener) = self.listeners.get_mut(&id) {
            // How the port is held was settled at listen time.
            listener.options = SocketOptions {
                reuse_address: listener.options.reuse_address,
                reuse_port: listener.options.reuse_port,
                ..*options
            };
        }
    }

    /// New options for a connection (Nagle, keep-alive, hop limit; buffer sizes
    /// are fixed when it opens).
    pub(crate) fn set_tcp_options(&mut self, handle: TcpHandle, options: &SocketOptions) {
        if let Some(entry) = self.tcp.get_mut(handle) {
            entry.conn.options = *options;
            let hops = self.io.hops_of(entry.socket());
            options.apply_tcp(entry.socket_mut(), hops);
            if let Some(flow) = socket_flow(entry.socket()) {
                self.io.recovery.set_congestion(flow, options.congestion);
            }
            // A keep-alive deadline may have moved.
            self.tcp.mark(handle);
        }
    }

    /// `TCP_CONGESTION` alone, for the simulation (the sockets' faces set it
    /// with the other options, [`Engine::set_tcp_options`]).
    pub(crate) fn set_congestion(&mut self, handle: TcpHandle, congestion: options::Congestion) {
        if let Some(entry) = self.tcp.get_mut(handle) {
            entry.conn.options.congestion = congestion;
            if let Some(flow) = socket_flow(entry.socket()) {
                self.io.recovery.set_congestion(flow, congestion);
            }
        }
    }

    /// Stops listening: handshakes in progress are reset, the port is released.
    pub(crate) fn unlisten(&mut self, id: ListenerId) {
        let Some(listener) = self.listeners.remove(&id) else {
            return;
        };
        let port = listener.local.port();
        if let Some(ids) = self.listener_ports.get_mut(&port) {
            ids.retain(|&l| l != id);
            if ids.is_empty() {
                self.listener_ports.remove(&port);
            }
        }
        let embryos: Vec<TcpHandle> = self
            .embryos
            .range((id, TcpHandle::MIN)..=(id, TcpHandle::MAX))
            .map(|&(_, handle)| handle)
            .collect();
        for handle in embryos {
            self.embryos.remove(&(id, handle));
            if let Some(entry) = self.tcp.get_mut(handle) {
                entry.socket_mut().abort();
                entry.conn.phase = Phase::Orphan { since: self.now };
                self.tcp.mark(handle);
            }
        }
        self.ports.release(listener.local.port(), listener.port_use);
    }

    /// Decides whether an incoming SYN may reach smoltcp; makes a listening socket
    /// for it when it is for a listener with room in its backlog, filed under the
    /// SYN's flow. A SYN of a flow that has a connection goes to that connection
    /// (a retransmitted SYN, or a new one meeting TIME-WAIT).
    fn admit_syn(&mut self, syn: frames::Syn) -> bool {
        let flow = flow_of(syn);
        if let Some(handle) = self.tcp.lookup(&flow) {
            // A new SYN meeting a closed connection's TIME-WAIT opens a new
            // connection, as Linux lets it (`TCP_TW_SYN`): the old one is done.
            let time_wait = self.tcp.get(handle).is_some_and(|entry| {
                matches!(entry.conn.phase, Phase::Orphan { .. })
                    && entry.socket().state() == TcpState::TimeWait
            });
            if !time_wait {
                return true;
            }
            self.forget(handle);
        }
        let listeners = &self.listeners;
        let candidates = || {
            self.listener_ports
                .get(&syn.dst.port())
                .into_iter()
                .flatten()
                .copied()
                .filter(|id| listeners[id].takes(syn.dst.ip()))
        };
        // The most specific listeners take it, as Linux scores them: one on the
        // very address before a wildcard, one of the segment's family before a
        // dual-stack `[::]`.
        let best = candidates()
            .map(|id| listeners[&id].fit(syn.dst.ip()))
            .max();
        let matching: Vec<ListenerId> = candidates()
            .filter(|id| Some(listeners[id].fit(syn.dst.ip())) == best)
            .collect();
        // Listeners sharing a port (SO_REUSEPORT) split the connections by the
        // peer's address, as Linux's hash does.
        let Some(&id) = matching.get(spread(syn.src) % matching.len().max(1)) else {
            return true; // smoltcp answers with RST: connection refused
        };
        let listener = self.listeners.get_mut(&id).expect("found above");
        let unaccepted = listener
            .handed_out
            .saturating_sub(listener.accepted.load(Ordering::Relaxed))
            as usize;
        // Linux queues one connection more than the backlog (`sk_acceptq_is_full`
        // compares with `>`): the kernel backend, the oracle, holds 129 for 128.
        if listener.embryos + unaccepted > listener.backlog {
            return false; // a full backlog drops the SYN; the peer will retry
        }
        let hops = self.io.hops(syn.src.ip());
        let (mut socket, lease) = Self::new_tcp_socket(&mut *self.rings, &listener.options, hops);
        let ip = unmap(listener.local).ip();
        let endpoint = IpListenEndpoint {
            addr: (!ip.is_unspecified()).then(|| ip.into()),
            port: listener.local.port(),
        };
        if socket.listen(endpoint).is_err() {
            drop(socket);
            self.give_back(lease);
            return true;
        }
        listener.embryos += 1;
        let port_use = PortUse {
            listening: false,
            ..listener.port_use
        };
        self.ports.share(listener.local.port(), port_use);
        let mut conn = Conn::new(
            Phase::Embryo(id),
            TcpState::Listen,
            listener.local.port(),
            listener.options,
        );
        conn.port_use = port_use;
        conn.lease = lease;
        let handle = self.tcp.insert(socket, conn);
        self.tcp.set_flow(handle, flow);
        self.embryos.insert((id, handle));
        true
    }

    /// Marks the connection an incoming RST is for, so that its end reads as a
    /// reset rather than a timeout.
    fn note_reset(&mut self, rst: frames::Segment) {
        if let Some(entry) = self
            .tcp
            .lookup(&flow_of(rst))
            .and_then(|handle| self.tcp.get_mut(handle))
        {
            entry.conn.reset_seen = true;
        }
    }

    /// The smoltcp socket behind `handle`, for moving bytes and changing it; the
    /// connection is served at the next transmit.
    ///
    /// Panics if `handle` names no connection (a bug of the caller's).
    pub(crate) fn tcp(&mut self, handle: TcpHandle) -> &mut tcp::Socket<'static> {
        self.tcp.mark(handle);
        self.tcp
            .get_mut(handle)
            .expect("a live connection")
            .socket_mut()
    }

    /// The smoltcp socket behind `handle`, to read.
    pub(crate) fn tcp_ref(&self, handle: TcpHandle) -> &tcp::Socket<'static> {
        self.tcp.get(handle).expect("a live connection").socket()
    }

    /// What `TCP_INFO` reports of connection `handle`: smoltcp's view of the
    /// socket, and what the device boundary saw of its segments.
    pub(crate) fn tcp_stats(&self, handle: TcpHandle) -> Option<TcpStats> {
        let entry = self.tcp.get(handle)?;
        let socket = entry.socket();
        let flow = socket_flow(socket);
        let (ip_header, mtu) = match socket.remote_endpoint().map(|r| r.addr) {
            Some(IpAddress::Ipv6(_)) => (40, self.io.mtu6),
            _ => (20, self.io.mtu),
        };
        Some(TcpStats {
            state: socket.state(),
            mtu,
            mss: mtu.saturating_sub(ip_header + 20),
            flow: flow
                .and_then(|flow| self.io.recovery.stats(&flow))
                .unwrap_or_default(),
            send_queue: socket.send_queue(),
            recv_queue: entry.conn.rescued.len() + socket.recv_queue(),
            recv_capacity: socket.recv_capacity(),
        })
    }

    /// The hop limit a socket that set none sends to `peer` with, and the MTU
    /// of the path there (`IPV6_UNICAST_HOPS` and `IPV6_MTU` of a connected
    /// socket, which Linux reads from its route: the interface's, which a
    /// router's advertisement may have lowered for IPv6).
    pub(crate) fn path_to(&self, peer: IpAddr) -> (u8, usize) {
        let peer_wire = peer.to_canonical();
        let mtu = match self.config.route_to(peer_wire) {
            // `lo`'s, as Linux reads a local peer's route.
            Ok(hop) if hop.local => udp::datagram_mtus(&self.config, &hop, None).path,
            _ if peer_wire.is_ipv6() => self.io.mtu6,
            _ => self.io.mtu,
        };
        (self.io.hops(peer), mtu)
    }

    /// Bytes received on `handle` and not taken yet.
    pub(crate) fn recv_queue(&self, handle: TcpHandle) -> usize {
        self.tcp
            .get(handle)
            .map_or(0, |e| e.conn.rescued.len() + e.socket().recv_queue())
    }

    /// Offers received bytes to `take`, which returns how many it took; stops when
    /// it takes fewer than offered or fails. Returns the total taken, or the error
    /// if nothing was.
    pub(crate) fn recv_with(
        &mut self,
        handle: TcpHandle,
        mut take: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let Some(entry) = self.tcp.get_mut(handle) else {
            return Ok(0);
        };
        let (conn, socket) = entry.parts();
        let mut total = 0;
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
        if total > 0 {
            // The window opened: smoltcp may have an update to send.
            self.tcp.mark(handle);
        }
        Ok(total)
    }

    /// The peer sent FIN and every byte before it has been taken: end of stream.
    /// The socket's state tells at once, the record once the state has moved on
    /// (smoltcp forgets it all when TIME-WAIT ends).
    pub(crate) fn recv_finished(&self, handle: TcpHandle) -> bool {
        let Some(entry) = self.tcp.get(handle) else {
            return false;
        };
        let socket = entry.socket();
        (entry.conn.peer_fin || fin_received(socket.state()))
            && entry.conn.rescued.is_empty()
            && socket.recv_queue() == 0
    }

    /// The pump is done with `handle`: a graceful close continues in the background,
    /// an abort (`reset`) sends RST now.
    pub(crate) fn release(&mut self, handle: TcpHandle, reset: bool) {
        let Some(entry) = self.tcp.get_mut(handle) else {
            return;
        };
        let (conn, socket) = entry.parts();
        if reset {
            socket.abort();
        } else {
            socket.close();
        }
        conn.phase = Phase::Orphan { since: self.now };
        self.tcp.mark(handle);
    }

    /// A connection `listener` handed out (an [`Event::Accepted`]) will never
    /// reach the application: the pump had no descriptors for its socket pair,
    /// or could not pass it on. It no longer counts against the listener's
    /// backlog; otherwise each such connection would hold a slot for good, and a
    /// listener that lost backlog + 1 of them would drop every SYN from then on.
    /// (A connection reset while it waits in the queue still counts until the
    /// application accepts it, as on Linux, where `accept` returns it.)
    pub(crate) fn never_accepted(&mut self, listener: ListenerId) {
        if let Some(l) = self.listeners.get_mut(&listener) {
            l.handed_out = l.handed_out.saturating_sub(1);
        }
    }

    fn forget(&mut self, handle: TcpHandle) {
        let Some(mut entry) = self.tcp.remove(handle) else {
            return;
        };
        let socket = entry.socket();
        if let (Some(local), Some(remote)) = (socket.local_endpoint(), socket.remote_endpoint()) {
            let flow = (
                local.addr.into(),
                local.port,
                remote.addr.into(),
                remote.port,
            );
            self.io.recovery.forget(&flow);
            self.io.ack_sequence.forget(&flow);
            self.io.sack.forget(&flow);
            self.io.forget_acks(&flow);
        }
        if let Phase::Embryo(listener) = entry.conn.phase {
            self.embryos.remove(&(listener, handle));
        }
        self.ports.release(entry.conn.port, entry.conn.port_use);
        let lease = entry.conn.lease.take();
        // The socket is dropped before its rings are given back (the lease's
        // contract).
        drop(entry);
        self.give_back(lease);
    }

    /// Turns what happened to one connection into events, enforces its deadlines
    /// and frees it when it is finished: it is looked at, judged and the verdict
    /// carried out (see [`lifecycle`]). False if it is gone.
    fn update_connection(&mut self, handle: TcpHandle) -> bool {
        let Some(entry) = self.tcp.get_mut(handle) else {
            return false;
        };
        let (conn, socket) = entry.parts();
        if matches!(conn.phase, Phase::Open) && socket.state() == TcpState::TimeWait {
            conn.rescue(socket);
        }
        let look = Look::of(conn, socket, &self.arp_seen, &self.listeners, self.now);
        let verdict = conn.judge(&look);
        conn.settle(&look, &verdict);
        lifecycle::steer(socket, &verdict);
        lifecycle::tell(handle, verdict.news, &mut self.listeners, &mut self.events);
        conn.tx_pages.look(socket, &mut *self.rings, self.now);
        if let lifecycle::News::Accepted { listener, .. } | lifecycle::News::EmbryoLost(listener) =
            verdict.news
        {
            self.embryos.remove(&(listener, handle));
        }
        if let lifecycle::News::Connected | lifecycle::News::Accepted { .. } = verdict.news {
            // The controller `TCP_CONGESTION` chose before the connection was
            // made (or its listener's, for an accepted one).
            if let Some(flow) = socket_flow(socket) {
                self.io
                    .recovery
                    .set_congestion(flow, conn.options.congestion);
            }
        }
        if verdict.finished {
            self.forget(handle);
            return false;
        }
        // An abort or a keep-alive probe is for smoltcp to send.
        let probe = verdict.upkeep.is_some_and(|u| u.probe);
        if probe
            || matches!(
                verdict.news,
                lifecycle::News::ConnectFailed { abort: true, .. }
            )
        {
            self.tcp.mark(handle);
        }
        true
    }
}

/// What the pump reads of a connection: a change in it between before and after
/// a transmit is news for the pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    state: TcpState,
    recv_queue: usize,
    send_queue: usize,
}

impl Snapshot {
    fn of(entry: &tcp_table::TcpEntry) -> Snapshot {
        let socket = entry.socket();
        Snapshot {
            state: socket.state(),
            recv_queue: entry.conn.rescued.len() + socket.recv_queue(),
            send_queue: socket.send_queue(),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Every socket goes before the ring source, which may take their rings'
        // memory with it (the lease's contract, see `rings`).
        self.tcp = tcp_table::TcpTable::default();
        self.datagrams = datagram_sets::DatagramSets::default();
    }
}

/// Whether `addr` is the stack's by a user's `local` route (AnyIP): under one
/// of its `prefixes` (a quick answer for most frames, which are under none),
/// and so by the model's lookup (a more specific route may take it).
fn is_anyip(prefixes: &[IpCidr], config: &NetConfig, addr: IpAddr) -> bool {
    let ip = IpAddress::from(addr);
    prefixes.iter().any(|p| p.contains_addr(&ip)) && config.is_anyip(addr)
}

/// Whether `addr` is in 127.0.0.0/8, which Linux's `lo` holds whole.
fn in_lo_net(addr: Ipv4Address) -> bool {
    addr.octets()[0] == 127
}

/// Whether a connection in `state` has received its peer's FIN.
fn fin_received(state: TcpState) -> bool {
    matches!(
        state,
        TcpState::CloseWait | TcpState::LastAck | TcpState::Closing | TcpState::TimeWait
    )
}

/// The flow of a segment that came in: our address and port, then the peer's.
/// The flow of a connected socket: its address and port, its peer's.
fn socket_flow(socket: &tcp::Socket<'_>) -> Option<frames::Flow> {
    let (local, remote) = (socket.local_endpoint()?, socket.remote_endpoint()?);
    Some((
        local.addr.into(),
        local.port,
        remote.addr.into(),
        remote.port,
    ))
}

fn flow_of(segment: frames::Segment) -> frames::Flow {
    (
        segment.dst.ip(),
        segment.dst.port(),
        segment.src.ip(),
        segment.src.port(),
    )
}

/// A smoltcp instant as the engine's time since its start.
fn duration(at: Instant) -> Duration {
    Duration::from_micros(at.total_micros().max(0) as u64)
}

/// A number spread over a peer's address and port: which of several sockets
/// sharing a port (SO_REUSEPORT) gets its traffic. Stable for one peer, and the
/// same in every run.
fn spread(peer: SocketAddr) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let ip = match peer.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    for byte in ip.iter().chain(&peer.port().to_be_bytes()) {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
    }
    // FNV's low bits follow the last byte's: with connect's ephemeral ports all
    // even (RFC 6056), `% 2` sent every connection to one listener. Mixing the
    // high bits down (a finalizer as MurmurHash3's) spreads them again.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash as usize
}

impl Listener {
    /// Whether a connection to `dst` is this listener's (its port aside): same
    /// address or a wildcard of the same family; an IPv6 wildcard also takes
    /// IPv4 unless `IPV6_V6ONLY` is set; a v4-mapped address is its IPv4 address.
    /// How closely this listener fits a segment to `dst` that it takes: its
    /// very address (2) before a wildcard, its family (1) before another's.
    fn fit(&self, dst: IpAddr) -> u8 {
        let ours = unmap(self.local).ip();
        2 * u8::from(!ours.is_unspecified()) + u8::from(ours.is_ipv4() == dst.is_ipv4())
    }

    fn takes(&self, dst: IpAddr) -> bool {
        match (unmap(self.local).ip(), dst) {
            (IpAddr::V4(ours), IpAddr::V4(d)) => ours.is_unspecified() || ours == d,
            (IpAddr::V6(ours), IpAddr::V6(d)) => ours.is_unspecified() || ours == d,
            (IpAddr::V6(ours), IpAddr::V4(_)) => ours.is_unspecified() && !self.options.v6only,
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

/// Whether a socket with `IPV6_V6ONLY` set must refuse to connect to `remote`
/// (Linux: ENETUNREACH for a v4-mapped address).
/// What `connect` to `remote` meets before any packet leaves, as Linux decides it
/// inside `connect(2)` itself (blocking or not): `ENETUNREACH` without a route (or
/// for a v4-mapped `remote` on an `IPV6_V6ONLY` socket), a reject route's error
/// ([`no_route`]), `ECONNREFUSED` for port 0
/// or the unspecified address; else the next hop. Pure, so that a socket's own
/// thread fails the call at once from the configuration it sees, as the engine
/// would.
pub(crate) fn check_connect(
    config: &NetConfig,
    remote: SocketAddr,
    options: &SocketOptions,
) -> io::Result<crate::cmd::NextHop> {
    if options.v6only && v6only_refuses(remote) {
        return Err(errno(libc::ENETUNREACH));
    }
    let remote = unmap(remote);
    if remote.port() == 0 || remote.ip().is_unspecified() {
        return Err(errno(libc::ECONNREFUSED));
    }
    config.route_to(remote.ip()).map_err(no_route)
}

/// What Linux's `connect` and `sendto` say when no packet can leave for a
/// destination: ENETUNREACH without a route (or under a `throw` one), and the
/// reject routes' errors (EHOSTUNREACH, EACCES, EINVAL).
pub(crate) fn no_route(why: crate::cmd::NoRoute) -> io::Error {
    use crate::cmd::NoRoute;
    errno(match why {
        NoRoute::HostUnreachable => libc::EHOSTUNREACH,
        NoRoute::Prohibited => libc::EACCES,
        NoRoute::Blackhole => libc::EINVAL,
        _ => libc::ENETUNREACH,
    })
}

pub(crate) fn v6only_refuses(remote: SocketAddr) -> bool {
    remote.is_ipv6() && unmap(remote).is_ipv4()
}

/// What the engine knows of a connection for `TCP_INFO` ([`Engine::tcp_stats`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpStats {
    /// smoltcp's state of the connection.
    pub state: TcpState,
    /// The link's MTU.
    pub mtu: usize,
    /// The largest segment the link carries for the connection's family.
    pub mss: usize,
    /// What the device boundary saw of the sending side (round trips,
    /// retransmissions, bytes in flight).
    pub flow: recovery::FlowStats,
    /// Bytes the application wrote that are not acknowledged yet.
    pub send_queue: usize,
    /// Bytes received that the application has not taken yet.
    pub recv_queue: usize,
    /// The size of the receive ring.
    pub recv_capacity: usize,
}

/// A v4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it stands
/// for; any other address unchanged.
pub(crate) fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), a.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// An IPv4 address as an IPv6 socket shows it (v4-mapped); IPv6 ones unchanged.
pub(crate) fn map(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) => SocketAddr::new(a.ip().to_ipv6_mapped().into(), a.port()),
        SocketAddr::V6(_) => addr,
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
    /// Bare ACKs held in steady bulk ([`ack_stretch`]), and the stretch the
    /// connection being served allows (0: none).
    acks: ack_stretch::StretchAcks,
    ack_stretch: usize,
    spare_acks: Vec<Vec<u8>>,
    mac: EthernetAddress,
    mtu: usize,
    /// The IPv6 MTU: the link's, or a router advertisement's smaller one
    /// (Linux's `mtu6`), until the link's changes.
    mtu6: usize,
    /// IPv6's hop limit for sockets that set none: a router advertisement's
    /// Cur Hop Limit, else 64.
    hops6: u8,
    lo_up: bool,
    wire_up: bool,
    local_v4: Vec<Ipv4Address>,
    local_v6: Vec<Ipv6Address>,
    loopback: VecDeque<Vec<u8>>,
    outbox: VecDeque<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    ack_sequence: frames::AckSequence,
    recovery: recovery::Recovery,
    sack: sack::SackBlocks,
    /// Segments loss recovery sends again (a buffer kept for reuse).
    resend: Vec<Vec<u8>>,
    /// The engine's clock, for what the device boundary times.
    now: Duration,
    /// The identification of the next datagram the boundary cuts in fragments.
    next_fragment_id: u32,
    /// Datagrams queued in smoltcp whose socket's MTU options shape them on
    /// the wire, oldest first (see `link_mtu`).
    shaped: VecDeque<(link_mtu::ShapeKey, DatagramShape)>,
    /// TCP segments sent so far: whether a poll of one connection sent any.
    segments_sent: u64,
    /// The last TCP segment sent (what a poll of one connection sent last).
    last_tcp: Option<frames::EgressSegment>,
    /// When each neighbour was last asked for (ARP or neighbour solicitation),
    /// by smoltcp or the engine: Linux rate-limits per neighbour.
    neighbors_asked: HashMap<IpAddr, Duration>,
}

impl FrameIo {
    fn new(mac: EthernetAddress, mtu: usize) -> FrameIo {
        FrameIo {
            acks: ack_stretch::StretchAcks::default(),
            ack_stretch: 0,
            spare_acks: Vec::new(),
            mac,
            mtu,
            mtu6: mtu,
            hops6: 64,
            lo_up: false,
            wire_up: false,
            local_v4: Vec::new(),
            local_v6: Vec::new(),
            loopback: VecDeque::new(),
            outbox: VecDeque::new(),
            pool: Vec::new(),
            ack_sequence: frames::AckSequence::default(),
            recovery: recovery::Recovery::default(),
            sack: sack::SackBlocks::default(),
            resend: Vec::new(),
            now: Duration::ZERO,
            next_fragment_id: 0,
            shaped: VecDeque::new(),
            segments_sent: 0,
            last_tcp: None,
            neighbors_asked: HashMap::new(),
        }
    }

    fn outbox_full(&self) -> bool {
        self.outbox.len() >= OUTBOX_LIMIT
    }

    /// Lets loss recovery read an incoming segment, and sends what it finds
    /// lost.
    fn recovery_on_ingress(&mut self, tcp: &frames::TcpView) {
        self.recovery.on_ingress(tcp, self.now, &mut self.resend);
        self.send_resent();
    }

    /// Sends what loss recovery's timers find lost (or probes), if any is due.
    fn resend_due(&mut self) {
        if self.recovery.deadline().is_none_or(|at| at > self.now) {
            return;
        }
        self.recovery.due(self.now, &mut self.resend);
        self.send_resent();
    }

    /// Puts the segments recovery sends again on the wire, with the SACK
    /// blocks of now (a kept copy has those of its first sending).
    fn send_resent(&mut self) {
        let mut resend = std::mem::take(&mut self.resend);
        for mut frame in resend.drain(..) {
            self.segments_sent += 1;
            let limit = self.ip_mtu(&frame) + 14;
            self.sack.on_egress(&mut frame, limit);
            if !self.wire_up {
                self.recycle(frame);
            } else if frame.len() > limit {
                self.send_oversized(frame, limit - 14);
            } else {
                self.outbox.push_back(frame);
            }
        }
        self.resend = resend;
    }

    fn recycle(&mut self, frame: Vec<u8>) {
        // A buffer grown for a whole datagram (cut at the boundary, or looped
        // back) goes back to the allocator rather than stay in the pool.
        if self.pool.len() < OUTBOX_LIMIT && frame.capacity() <= crate::link::MAX_FRAME {
            self.pool.push(frame);
        }
    }

    /// Whether `neighbor` was asked for less than a second ago.
    fn asked_lately(&self, neighbor: IpAddr) -> bool {
        self.neighbors_asked
            .get(&neighbor)
            .is_some_and(|&at| self.now < at + NEIGHBOR_SILENCE)
    }

    /// Notes that `neighbor` is asked for now.
    fn note_asked(&mut self, neighbor: IpAddr) {
        if self.neighbors_asked.len() >= 64 {
            let now = self.now;
            self.neighbors_asked
                .retain(|_, at| now < *at + NEIGHBOR_SILENCE);
        }
        self.neighbors_asked.insert(neighbor, self.now);
    }

    fn is_local_v4(&self, addr: Ipv4Address) -> bool {
        (self.lo_up && in_lo_net(addr)) || self.local_v4.contains(&addr)
    }

    /// Holds a bare ACK of a connection in steady bulk ([`ack_stretch`]), or
    /// notes that `segment`'s acknowledgement leaves; gives `frame` back if it
    /// goes now. An ACK with SACK blocks (`sacked`) always goes.
    fn stretch(
        &mut self,
        segment: &frames::EgressSegment,
        frame: Vec<u8>,
        sacked: bool,
    ) -> Option<Vec<u8>> {
        let Some(ack) = segment.ack else {
            return Some(frame);
        };
        let mut spare = std::mem::take(&mut self.spare_acks);
        let bare = segment.len == 0 && !segment.syn && !segment.fin && !sacked;
        let frame = if bare && self.ack_stretch > 0 {
            let (flow, stretch, now) = (segment.flow, self.ack_stretch, self.now);
            self.acks
                .offer(flow, ack, segment.window, stretch, now, frame, &mut spare)
        } else {
            self.acks
                .sent(segment.flow, ack, segment.window, &mut spare);
            Some(frame)
        };
        self.recycle_spare_acks(spare);
        frame
    }

    /// Drops what was held for a flow that ended.
    fn forget_acks(&mut self, flow: &frames::Flow) {
        let mut spare = std::mem::take(&mut self.spare_acks);
        self.acks.forget(flow, &mut spare);
        self.recycle_spare_acks(spare);
    }

    /// Recycles the ACK frames `spare` took (superseded or forgotten), and
    /// keeps the vector for the next time.
    fn recycle_spare_acks(&mut self, mut spare: Vec<Vec<u8>>) {
        for old in spare.drain(..) {
            self.recycle(old);
        }
        self.spare_acks = spare;
    }

    /// Sends the held ACKs whose time ran out.
    fn release_held_acks(&mut self) {
        let mut due = std::mem::take(&mut self.spare_acks);
        self.acks.take_due(self.now, &mut due);
        for frame in due.drain(..) {
            if self.wire_up {
                self.outbox.push_back(frame);
            } else {
                self.recycle(frame);
            }
        }
        self.spare_acks = due;
    }

    /// Sends a frame smoltcp built where it belongs: back in (loopback), out, or
    /// nowhere (a down link).
    fn route(&mut self, frame: Vec<u8>) {
        let shape = self.shape_of(&frame);
        self.route_shaped(frame, shape);
    }

    /// [`Self::route`] for a datagram its socket's MTU options shape on the
    /// wire (see `link_mtu`); looped-back packets stay whole and as built.
    fn route_shaped(&mut self, mut frame: Vec<u8>, shape: DatagramShape) {
        if self.hops6 != 64 {
            frames::set_own_hop_limit(&mut frame, self.hops6);
        }
        if let Some(segment) = self.ack_sequence.on_egress(&mut frame) {
            self.segments_sent += 1;
            self.last_tcp = Some(segment);
            if segment.len > segment.data + usize::from(segment.fin) {
                // A SYN: its MSS option keeps to the link (see `link_mtu`).
                let mtu = self.ip_mtu(&frame);
                link_mtu::clamp_mss(&mut frame, mtu);
            }
            if segment.rst {
                self.recovery.forget(&segment.flow);
                self.sack.forget(&segment.flow);
                self.forget_acks(&segment.flow);
            } else {
                let limit = self.ip_mtu(&frame) + 14;
                let sacked = self.sack.on_egress(&mut frame, limit);
                // Loopback loses nothing: its segments are not kept.
                let wire = frames::dst_mac(&frame) != Some(self.mac);
                let verdict =
                    self.recovery
                        .on_egress(&segment, &frame, wire, self.now, &mut self.resend);
                self.send_resent();
                if verdict != recovery::Egress::Send {
                    return self.recycle(frame);
                }
                if wire {
                    match self.stretch(&segment, frame, sacked) {
                        Some(f) => frame = f,
                        None => return,
                    }
                }
            }
        }
        if frames::dst_mac(&frame) == Some(self.mac) {
            if self.lo_up {
                self.loopback.push_back(frame);
            } else {
                self.recycle(frame);
            }
            return;
        }
        if let Some((target, asker)) = frames::neighbor_solicit(&frame) {
            if self.local_v6.contains(&target) {
                if self.lo_up {
                    frames::write_own_neighbor_advert(&mut frame, self.mac, target, asker);
                    self.loopback.push_back(frame);
                } else {
                    self.recycle(frame);
                }
                return;
            }
            self.note_asked(target.into());
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
            self.note_asked(target.into());
        }
        if !self.wire_up {
            return self.recycle(frame);
        }
        let (mtu, fragment_size) = self.shaped_mtu(&frame, shape);
        if frame.len() > mtu + 14 {
            self.send_oversized(frame, fragment_size);
        } else {
            if shape.clear_df {
                self.clear_dont_fragment(&mut frame);
            }
            self.outbox.push_back(frame);
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
        // The boundary keeps to the link's MTU (see `link_mtu`).
        caps.max_transmission_unit = link_mtu::DEVICE_MTU;
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
