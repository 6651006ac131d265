//! The `ingress` world: stack A (the target) and stack B (an honest peer) on a
//! simulated hub, with established TCP connections both ways, listeners, and ICMP
//! echo answering. Fuzzed frames go into A only; B never sees them, so what B sends
//! and receives is the ground truth.
//!
//! - conn1: B connected to A's port 80; B sends stream 1, A's application only
//!   reads. What A reads must be stream 1, except where an injected TCP segment
//!   could have put its own bytes (TCP cannot tell a forged in-window segment from
//!   a real one: those bytes are allowed, nothing else is).
//! - conn2: A connected to B's port 9; A sends stream 2, B reads. B sees no fuzzed
//!   frame, so what it reads must be exactly a prefix of stream 2.
//! - conn6 (if IPv6 TCP works): B connected to A's [2001:db8::1]:8080, idle.
//! - A's application never sends on conn1, so B must never read data on conn1.
//!
//! Datagrams (see [`Udp`]): B sends numbered datagrams to A's UDP sockets
//! (0.0.0.0:53, [::]:5353 and one connected to B), A's connected socket sends to B,
//! and A's ping sockets (IPv4 and IPv6) ping B, during setup and after every
//! injected frame. What A receives must be what B sent, whole and from B's true
//! address, or something an injected frame carried; what B receives must be
//! exactly what A sent.
//!
//! Input format: frames separated by [`SEPARATOR`]; an empty frame is a pause of
//! [`PAUSE`] instead. A seed file holding one captured frame is a valid input.

use crate::pattern;
use crate::wire;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use vdestack::sim::{SimEvent, SimNetwork, SimSocket, SimStack};

pub const A: usize = 0;
pub const B: usize = 1;
pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];
pub const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const IP6_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const IP6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// Separates frames in an input.
pub const SEPARATOR: &[u8] = b"\xfe\xedFRAME";
/// The most frames one input injects.
pub const MAX_FRAMES: usize = 64;
/// Virtual time after each injected frame.
pub const TICK: Duration = Duration::from_millis(1);
/// Virtual time an empty frame stands for.
pub const PAUSE: Duration = Duration::from_millis(700);
/// The most frames A may send in answer to one frame (plus a tick of time): a
/// window's worth of data segments and some ACKs.
pub const MAX_ANSWER: usize = 256;
/// How much of stream 1 and stream 2 is sent during setup, then per frame.
pub const SETUP_BYTES: usize = 3000;
pub const CHUNK: usize = 700;
/// Streams stop growing here (the run stays short).
pub const MAX_STREAM: usize = 200_000;

/// Ports of the datagram sockets.
pub const UDP_PORT_A4: u16 = 53;
pub const UDP_PORT_A6: u16 = 5353;
pub const UDP_PORT_A_CONNECTED: u16 = 5000;
pub const UDP_PORT_B4: u16 = 6000;
pub const UDP_PORT_B6: u16 = 6001;
/// Sizes of successive datagrams, in turn. Some exceed one frame (1472 bytes of
/// UDP payload over IPv4, 1452 over IPv6), so that B fragments and A reassembles.
const SIZES_V4: [usize; 8] = [0, 1, 60, 512, 1472, 1473, 3000, 5000];
const SIZES_V6: [usize; 4] = [0, 100, 1453, 4000];
const SIZES_A_TO_B: [usize; 4] = [3, 1400, 2000, 40];
/// Echo request data sizes (IPv4, IPv6).
const PING_SIZES: [usize; 4] = [0, 56, 1000, 1400];
/// Rounds of datagrams during setup: every size at least once (the two IPv4
/// flows take the sizes half a turn apart).
const SETUP_ROUNDS: usize = 4;
/// The most datagrams one socket can hold: its receive buffer over the
/// per-datagram overhead the engine counts (Linux's default `SO_RCVBUF`, 212 992
/// bytes, over 256), plus one.
const MAX_QUEUED: usize = 212_992 / 256 + 1;

/// One connection seen from one end, with what was sent and read.
pub struct End {
    pub socket: SimSocket,
    pub sent: usize,
    pub got: usize,
    pub eof: bool,
    pub reset: bool,
}

impl End {
    fn new(socket: SimSocket) -> End {
        End {
            socket,
            sent: 0,
            got: 0,
            eof: false,
            reset: false,
        }
    }
}

/// Bytes an injected frame may have placed at some stream offsets.
#[derive(Default)]
pub struct Taint {
    /// (stream offset of `data[0]`, data), offsets modulo 2^32 as TCP counts them.
    segments: Vec<(u32, Vec<u8>)>,
    /// An IP fragment was injected: reassembly can put anything anywhere.
    anything: bool,
}

impl Taint {
    /// Records what `frame` could deliver into a connection whose first data byte
    /// has sequence number `first_seq`.
    pub fn add(&mut self, frame: &[u8], first_seq: u32) {
        if matches!(wire::ip(frame), wire::Ip::Fragment) {
            self.anything = true;
        }
        if let Some(seg) = wire::tcp(frame) {
            if !seg.data.is_empty() {
                let offset = seg.seq.wrapping_sub(first_seq);
                // With SYN set the data starts one sequence number later.
                self.segments.push((offset, seg.data.to_vec()));
                self.segments
                    .push((offset.wrapping_add(1), seg.data.to_vec()));
            }
        }
    }

    /// Could byte `b` at stream offset `at` come from an injected frame?
    pub fn allows(&self, at: usize, b: u8) -> bool {
        self.anything
            || self.segments.iter().any(|(start, data)| {
                let i = (at as u32).wrapping_sub(*start) as usize;
                data.get(i) == Some(&b)
            })
    }
}

/// What injected frames could deliver as datagrams.
#[derive(Default)]
pub struct DatagramTaint {
    /// Every injected frame. A datagram an injected frame carried is a piece of
    /// it (its UDP payload, possibly cut short by the IP or UDP length, or behind
    /// IPv6 extension headers; an ICMP message): any substring is allowed, a
    /// deliberate over-approximation that needs no parsing.
    frames: Vec<Vec<u8>>,
    /// An IP fragment was injected: reassembly can combine it with anything.
    anything: bool,
}

impl DatagramTaint {
    fn add(&mut self, frame: &[u8]) {
        if matches!(wire::ip(frame), wire::Ip::Fragment) {
            self.anything = true;
        }
        self.frames.push(frame.to_vec());
    }

    /// Could `data` be (part of) an injected frame?
    fn allows(&self, data: &[u8]) -> bool {
        self.anything
            || self
                .frames
                .iter()
                .any(|f| data.is_empty() || f.windows(data.len()).any(|w| w == data))
    }
}

/// Datagrams one socket sent to another: each may arrive once, unchanged.
#[derive(Default)]
pub struct Flow {
    /// Content of every datagram sent (for ping: the echo message from its
    /// identifier on), and whether it arrived.
    sent: Vec<(Vec<u8>, bool)>,
    /// How many arrived.
    pub arrived: usize,
}

impl Flow {
    /// Marks a sent datagram equal to `data` that has not arrived yet as arrived;
    /// false if there is none.
    fn arrive(&mut self, data: &[u8]) -> bool {
        match self.sent.iter_mut().find(|(d, got)| !*got && d == data) {
            Some((_, got)) => {
                *got = true;
                self.arrived += 1;
                true
            }
            None => false,
        }
    }

    pub fn sent(&self) -> usize {
        self.sent.len()
    }
}

/// What kind of datagram socket of A receives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RxKind {
    /// A UDP socket; `connected`: connected to B's sender.
    Udp { connected: bool },
    /// A ping socket with this identifier.
    Ping { v6: bool, ident: u16 },
}

/// One of A's datagram sockets and what B sent it.
pub struct Rx {
    pub socket: SimSocket,
    pub kind: RxKind,
    /// The sender's true address (B's socket; for ping, B's address, port 0).
    pub peer: SocketAddr,
    pub flow: Flow,
}

/// The datagram sockets of the world.
pub struct Udp {
    /// A's sockets: 0.0.0.0:53, [::]:5353, the connected one, ping v4, ping v6.
    pub rx: Vec<Rx>,
    /// B's senders: IPv4 (also what A's connected socket talks to) and IPv6.
    pub b4: SimSocket,
    pub b6: SimSocket,
    /// What A's connected socket sent B.
    pub a_to_b: Flow,
    /// Datagram rounds so far (numbers the datagrams).
    pub round: usize,
    pub taint: DatagramTaint,
}

const RX_A4: usize = 0;
const RX_A6: usize = 1;
const RX_CONNECTED: usize = 2;
const RX_PING4: usize = 3;
const RX_PING6: usize = 4;

/// The content of datagram number `k` of flow `flow`, `len` bytes.
fn datagram(flow: u64, k: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| pattern(0x100 + flow * 0x1_0000 + k as u64, i))
        .collect()
}

impl Udp {
    fn new(net: &mut SimNetwork) -> Udp {
        let a = net.stack(A);
        let a4 = a
            .udp_bind(sockaddr(Ipv4Addr::UNSPECIFIED, UDP_PORT_A4))
            .expect("bind A 53");
        let a6 = a
            .udp_bind(sockaddr(Ipv6Addr::UNSPECIFIED, UDP_PORT_A6))
            .expect("bind A 5353");
        let ac = a
            .udp_bind(sockaddr(IP_A, UDP_PORT_A_CONNECTED))
            .expect("bind A 5000");
        a.udp_connect(ac, Some(sockaddr(IP_B, UDP_PORT_B4)))
            .expect("connect A 5000");
        let p4 = a.ping_bind(Ipv4Addr::UNSPECIFIED.into()).expect("ping v4");
        let p6 = a.ping_bind(Ipv6Addr::UNSPECIFIED.into()).expect("ping v6");
        let ident = |a: &mut SimStack, p| a.udp_local_addr(p).expect("ping ident").port();
        let (id4, id6) = (ident(a, p4), ident(a, p6));
        let b = net.stack(B);
        let b4 = b
            .udp_bind(sockaddr(Ipv4Addr::UNSPECIFIED, UDP_PORT_B4))
            .expect("bind B 6000");
        let b6 = b
            .udp_bind(sockaddr(Ipv6Addr::UNSPECIFIED, UDP_PORT_B6))
            .expect("bind B 6001");
        let rx = |socket, kind, peer| Rx {
            socket,
            kind,
            peer,
            flow: Flow::default(),
        };
        let b4_addr = sockaddr(IP_B, UDP_PORT_B4);
        Udp {
            rx: vec![
                rx(a4, RxKind::Udp { connected: false }, b4_addr),
                rx(
                    a6,
                    RxKind::Udp { connected: false },
                    sockaddr(IP6_B, UDP_PORT_B6),
                ),
                rx(ac, RxKind::Udp { connected: true }, b4_addr),
                rx(
                    p4,
                    RxKind::Ping {
                        v6: false,
                        ident: id4,
                    },
                    sockaddr(IP_B, 0),
                ),
                rx(
                    p6,
                    RxKind::Ping {
                        v6: true,
                        ident: id6,
                    },
                    sockaddr(IP6_B, 0),
                ),
            ],
            b4,
            b6,
            a_to_b: Flow::default(),
            round: 0,
            taint: DatagramTaint::default(),
        }
    }

    /// One round: B sends a datagram to each of A's UDP sockets, A's connected
    /// socket one to B, and A pings B over IPv4 and IPv6. A send that fails (a
    /// full ring, a route an injected frame broke) is not recorded.
    fn send_round(&mut self, net: &mut SimNetwork) {
        let k = self.round;
        self.round += 1;
        let sends = [
            (
                B,
                self.b4,
                RX_A4,
                sockaddr(IP_A, UDP_PORT_A4),
                SIZES_V4[k % 8],
            ),
            (
                B,
                self.b6,
                RX_A6,
                sockaddr(IP6_A, UDP_PORT_A6),
                SIZES_V6[k % SIZES_V6.len()],
            ),
            (
                B,
                self.b4,
                RX_CONNECTED,
                sockaddr(IP_A, UDP_PORT_A_CONNECTED),
                SIZES_V4[(k + 4) % 8],
            ),
        ];
        for (from, socket, rx, to, len) in sends {
            let data = datagram(rx as u64, k, len);
            if net.stack(from).udp_send_to(socket, Some(to), &data).is_ok() {
                self.rx[rx].flow.sent.push((data, false));
            }
        }
        let data = datagram(7, k, SIZES_A_TO_B[k % SIZES_A_TO_B.len()]);
        if net
            .stack(A)
            .udp_send_to(self.rx[RX_CONNECTED].socket, None, &data)
            .is_ok()
        {
            self.a_to_b.sent.push((data, false));
        }
        for rx in [RX_PING4, RX_PING6] {
            let RxKind::Ping { v6, ident } = self.rx[rx].kind else {
                unreachable!("a ping socket")
            };
            let payload = datagram(rx as u64, k, PING_SIZES[k % PING_SIZES.len()]);
            let request = wire::echo_request(v6, 0, k as u16, &payload);
            let to = SocketAddr::new(self.rx[rx].peer.ip(), 0);
            let socket = self.rx[rx].socket;
            if net.stack(A).udp_send_to(socket, Some(to), &request).is_ok() {
                // The reply from the identifier on: the stack fills it in.
                let mut expect = ident.to_be_bytes().to_vec();
                expect.extend_from_slice(&request[6..]);
                self.rx[rx].flow.sent.push((expect, false));
            }
        }
    }

    /// Reads every datagram waiting at A and B, and checks it.
    fn check(&mut self, net: &mut SimNetwork) {
        for rx in &mut self.rx {
            let mut n = 0;
            loop {
                let (data, from) = match net.stack(A).udp_recv_from(rx.socket) {
                    Ok(d) => d,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("stack 0: recv on {:?}: {e}", rx.kind),
                };
                n += 1;
                assert!(
                    n <= MAX_QUEUED,
                    "stack 0: {:?} holds more datagrams than its buffer can",
                    rx.kind
                );
                let content = match rx.kind {
                    RxKind::Udp { connected } => {
                        assert!(
                            !connected || from == rx.peer,
                            "stack 0: the connected socket received from {from}"
                        );
                        &data[..]
                    }
                    RxKind::Ping { v6, ident } => {
                        let reply = if v6 { 129 } else { 0 };
                        assert!(
                            data.len() >= 8 && data[0] == reply,
                            "stack 0: ping socket received a non-reply {data:02x?}"
                        );
                        assert_eq!(
                            u16::from_be_bytes([data[4], data[5]]),
                            ident,
                            "stack 0: ping reply with another identifier"
                        );
                        &data[4..]
                    }
                };
                let honest = from == rx.peer && rx.flow.arrive(content);
                // For a forged echo reply only the part from the identifier on is
                // the injected frame's: smoltcp hands over a message it re-emits,
                // with its own checksum (and under `cfg(fuzzing)` it accepts any
                // checksum).
                assert!(
                    honest || self.taint.allows(content),
                    "stack 0: {:?} received {} bytes from {from} that nobody sent: {:02x?}",
                    rx.kind,
                    data.len(),
                    &data[..data.len().min(64)]
                );
            }
            assert_eq!(
                net.stack(A).udp_drops(rx.socket).expect("drops"),
                0,
                "stack 0: {:?} dropped datagrams though it is read after every frame",
                rx.kind
            );
        }
        // B sees no injected frame: it receives exactly what A's connected socket
        // sent, from A's address, and nothing on its IPv6 socket.
        let a_addr = sockaddr(IP_A, UDP_PORT_A_CONNECTED);
        for _ in 0..=MAX_QUEUED {
            match net.stack(B).udp_recv_from(self.b4) {
                Ok((data, from)) => assert!(
                    from == a_addr && self.a_to_b.arrive(&data),
                    "stack 1: received {} bytes from {from} that A did not send",
                    data.len()
                ),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("stack 1: recv: {e}"),
            }
        }
        match net.stack(B).udp_recv_from(self.b6) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("stack 1: nobody sends to B's IPv6 socket, got {other:?}"),
        }
    }
}

pub struct World {
    pub net: SimNetwork,
    /// conn1 at A (reads stream 1) and at B (sends it).
    pub c1a: End,
    pub c1b: End,
    /// conn2 at A (sends stream 2) and at B (reads it).
    pub c2a: End,
    pub c2b: End,
    /// The idle IPv6 connection, if the stack does IPv6 TCP.
    pub c6: Option<(SimSocket, SimSocket)>,
    /// B's sequence number for the first byte of stream 1.
    pub first_seq1: u32,
    /// A's sequence number for the first byte it could ever receive on conn2.
    pub first_seq2: u32,
    pub taint: Taint,
    /// The datagram sockets.
    pub udp: Udp,
    /// Connections A accepted from injected SYNs.
    pub accepted: usize,
    pub injected: usize,
}

fn drive(net: &mut SimNetwork, dt: Duration) {
    net.step(dt);
}

fn sockaddr(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

/// The initial sequence number of the first SYN in `frames` from `from` to `dst_port`.
fn syn_seq(frames: &[(usize, Vec<u8>)], from: usize, dst_port: u16, synack: bool) -> u32 {
    frames
        .iter()
        .filter(|(f, _)| *f == from)
        .filter_map(|(_, frame)| wire::tcp(frame))
        .find(|s| {
            s.flags & wire::TCP_SYN != 0
                && (s.flags & wire::TCP_ACK != 0) == synack
                && (if synack { s.src_port } else { s.dst_port }) == dst_port
        })
        .map(|s| s.seq)
        .expect("the handshake was captured")
}

impl World {
    /// The starting state, the same every time.
    pub fn new() -> World {
        let mut net = SimNetwork::new();
        net.add(SimStack::new("vde0", MAC_A, 0x5eed_000a));
        net.add(SimStack::new("vde0", MAC_B, 0x5eed_000b));
        for (i, v4, v6) in [(A, IP_A, IP6_A), (B, IP_B, IP6_B)] {
            net.stack(i)
                .cmd(&format!(
                    "/bin/ip link set lo up; /bin/ip link set vde0 up; \
                     /bin/ip addr add {v4}/24 dev vde0; /bin/ip addr add {v6}/64 dev vde0"
                ))
                .expect("configure");
        }
        net.stack(A)
            .tcp_listen(sockaddr(Ipv4Addr::UNSPECIFIED, 80), 4)
            .expect("listen 80");
        net.stack(A)
            .tcp_listen(sockaddr(IP_A, 7), 2)
            .expect("listen 7");
        let l6 = net
            .stack(A)
            .tcp_listen(sockaddr(Ipv6Addr::UNSPECIFIED, 8080), 2)
            .ok();
        net.stack(B)
            .tcp_listen(sockaddr(Ipv4Addr::UNSPECIFIED, 9), 4)
            .expect("listen 9");
        let c1b = net
            .stack(B)
            .tcp_connect(sockaddr(IP_A, 80))
            .expect("connect 80");
        let c2a = net
            .stack(A)
            .tcp_connect(sockaddr(IP_B, 9))
            .expect("connect 9");
        let c6b = l6.and_then(|_| net.stack(B).tcp_connect(sockaddr(IP6_A, 8080)).ok());

        let (mut c1a, mut c2b, mut c6a) = (None, None, None);
        let mut connected = 0;
        for _ in 0..300 {
            drive(&mut net, Duration::from_millis(10));
            for i in [A, B] {
                while let Some(event) = net.stack(i).next_event() {
                    match event {
                        SimEvent::Connected(_) => connected += 1,
                        SimEvent::Accepted { socket, peer, .. } => match (i, peer.port(), peer) {
                            (A, _, p) if p.is_ipv6() => c6a = Some(socket),
                            (A, ..) => c1a = Some(socket),
                            _ => c2b = Some(socket),
                        },
                        other => panic!("setup: {other:?}"),
                    }
                }
            }
            let want = 2 + usize::from(c6b.is_some());
            if connected == want
                && c1a.is_some()
                && c2b.is_some()
                && (c6b.is_none() || c6a.is_some())
            {
                break;
            }
        }
        let c6 = match (c6a, c6b) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        };
        let udp = Udp::new(&mut net);
        let frames = net.frames();
        let first_seq1 = syn_seq(frames, B, 80, false).wrapping_add(1);
        let first_seq2 = syn_seq(frames, B, 9, true).wrapping_add(1);
        let mut world = World {
            net,
            c1a: End::new(c1a.expect("A accepted conn1")),
            c1b: End::new(c1b),
            c2a: End::new(c2a),
            c2b: End::new(c2b.expect("B accepted conn2")),
            c6,
            first_seq1,
            first_seq2,
            taint: Taint::default(),
            udp,
            accepted: 0,
            injected: 0,
        };
        world.feed(SETUP_BYTES);
        for _ in 0..SETUP_ROUNDS {
            world.udp.send_round(&mut world.net);
            drive(&mut world.net, TICK);
            world.check();
        }
        // Without fuzzed frames everything arrives (else the checks would be idle).
        for rx in &world.udp.rx {
            assert_eq!(rx.flow.arrived, SETUP_ROUNDS, "setup: {:?}", rx.kind);
        }
        assert_eq!(world.udp.a_to_b.arrived, SETUP_ROUNDS, "setup: A to B");
        world
    }

    /// B sends up to `n` more bytes of stream 1, A up to `n` more of stream 2.
    fn feed(&mut self, n: usize) {
        for (i, end, stream) in [(B, &mut self.c1b, 1), (A, &mut self.c2a, 2)] {
            if end.reset || end.sent >= MAX_STREAM {
                continue;
            }
            let chunk: Vec<u8> = (end.sent..end.sent + n)
                .map(|o| pattern(stream, o))
                .collect();
            match self.net.stack(i).send(end.socket, &chunk) {
                Ok(k) => end.sent += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A forged RST or FIN may have ended the connection at either end.
                Err(_) => {}
            }
        }
    }

    /// Reads what waits on every connection and checks it; takes the events.
    pub fn check(&mut self) {
        for i in [A, B] {
            while let Some(event) = self.net.stack(i).next_event() {
                match event {
                    SimEvent::Accepted { socket, .. } => {
                        assert_eq!(i, A, "B accepted a connection nobody made");
                        self.accepted += 1;
                        assert!(
                            self.accepted <= self.injected,
                            "more connections than injected frames"
                        );
                        self.net.stack(A).close(socket);
                    }
                    SimEvent::Reset(s, _) => {
                        for end in [&mut self.c1a, &mut self.c1b, &mut self.c2a, &mut self.c2b] {
                            if end.socket == s {
                                end.reset = true;
                            }
                        }
                    }
                    SimEvent::Connected(s) | SimEvent::ConnectFailed(s, _) => {
                        panic!("stack {i}: connect event {event:?} for {s:?} after setup")
                    }
                    SimEvent::Datagrams(s) => {
                        let known = match i {
                            A => self.udp.rx.iter().any(|rx| rx.socket == s),
                            _ => s == self.udp.b4,
                        };
                        assert!(known, "stack {i}: datagrams for {s:?}");
                    }
                    // An injected ICMP error about A's datagrams to B: Linux
                    // reports those only to a connected socket.
                    SimEvent::UdpError(s, _) => assert!(
                        i == A && s == self.udp.rx[RX_CONNECTED].socket,
                        "stack {i}: {event:?}"
                    ),
                    _ => panic!("stack {i}: {event:?}, an event this target does not know yet"),
                }
            }
        }
        let mut buf = vec![0u8; 16 * 1024];
        // A reads conn1: stream 1, or bytes injected frames carried.
        read_all(&mut self.net, A, &mut self.c1a, &mut buf, |at, b| {
            pattern(1, at) == b || self.taint.allows(at, b)
        });
        // B reads conn2: exactly stream 2, and never beyond what A's app sent.
        let sent2 = self.c2a.sent;
        read_all(&mut self.net, B, &mut self.c2b, &mut buf, |at, b| {
            at < sent2 && pattern(2, at) == b
        });
        // B reads conn1: A's application sent nothing there.
        read_all(&mut self.net, B, &mut self.c1b, &mut buf, |_, _| false);
        // A reads conn2: B sent nothing, so only injected bytes can be there.
        let taint2 = &self.taint;
        let shift = self.first_seq2.wrapping_sub(self.first_seq1) as usize;
        read_all(&mut self.net, A, &mut self.c2a, &mut buf, |at, b| {
            taint2.allows(at.wrapping_add(shift), b)
        });
        self.udp.check(&mut self.net);
    }

    /// Injects one input's frames into A, checking after each.
    pub fn run(&mut self, input: &[u8]) {
        for frame in split(input).take(MAX_FRAMES) {
            self.feed(CHUNK);
            self.udp.send_round(&mut self.net);
            if frame.is_empty() {
                drive(&mut self.net, PAUSE);
                self.check();
                continue;
            }
            self.injected += 1;
            self.taint.add(frame, self.first_seq1);
            self.udp.taint.add(frame);
            self.net.stack(A).receive(frame);
            let before = self.net.frames().len();
            drive(&mut self.net, TICK);
            let answered = self.net.frames().len() - before;
            assert!(
                answered <= MAX_ANSWER,
                "{answered} frames on the wire after one injected frame"
            );
            self.check();
        }
        // Let retransmissions and timers run, still checking.
        for round in 0..8 {
            self.feed(CHUNK);
            // Datagrams in the first two only: enough to see that the sockets
            // still work, and the run stays short.
            if round < 2 {
                self.udp.send_round(&mut self.net);
            }
            drive(&mut self.net, Duration::from_millis(250));
            self.check();
        }
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads everything waiting on `end`, checking every byte with `ok(offset, byte)`.
fn read_all(
    net: &mut SimNetwork,
    stack: usize,
    end: &mut End,
    buf: &mut [u8],
    ok: impl Fn(usize, u8) -> bool,
) {
    for _ in 0..1000 {
        match net.stack(stack).recv(end.socket, buf) {
            Ok(0) => {
                end.eof = true;
                return;
            }
            Ok(n) => {
                assert!(!end.eof, "stack {stack}: data after end of stream");
                for (k, &b) in buf[..n].iter().enumerate() {
                    let at = end.got + k;
                    assert!(
                        ok(at, b),
                        "stack {stack}: byte {at} of the stream is {b:#04x}, which nobody sent"
                    );
                }
                end.got += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // A reset connection.
            Err(_) => return,
        }
    }
    panic!("stack {stack}: reading never ends");
}

/// The frames of an input.
pub fn split(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(input);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(i) => {
                rest = Some(&r[i + SEPARATOR.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}
