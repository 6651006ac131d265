//! The `api` harness: a sequence of socket operations, decoded from bytes, run on
//! two stacks in a [`SimNetwork`] and checked against a model of what each call may
//! return.
//!
//! Every connection sends its own stream: 8 bytes naming it (its id), then
//! [`pattern`] bytes. A receiver learns from the first 8 bytes whose stream it
//! reads, and must read exactly a prefix of what that sender's `send` calls
//! accepted. At the end (unless the links were disturbed), the network settles and
//! every stream whose ends both stayed open must have arrived whole.
//!
//! Input: a sequence of operations, each an opcode byte and (some) argument bytes;
//! see [`Op::decode`].

use crate::pattern;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use vdestack::sim::{SimEvent, SimNetwork, SimSocket, SimStack};

pub const MACS: [[u8; 6]; 2] = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
pub const IPS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
/// The most operations one input runs.
pub const MAX_OPS: usize = 256;
/// The most frames one `step` may put on the wire.
pub const MAX_FRAMES_PER_STEP: usize = 20_000;

const PORTS: [u16; 3] = [80, 81, 0];
const SEND_LENS: [usize; 6] = [0, 1, 100, 1460, 3000, 70_000];
const RECV_LENS: [usize; 5] = [0, 1, 100, 4096, 70_000];
const STEPS_MS: [u64; 8] = [0, 1, 2, 10, 200, 1000, 3100, 30_000];
const CMDS: [&str; 4] = [
    "/bin/ip link set vde0 down",
    "/bin/ip link set vde0 up",
    "/bin/ip link set lo down",
    "/bin/ip link set lo up",
];

/// Where a `Connect` goes, for stack `me`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Peer(u16),
    SelfAddr(u16),
    Localhost(u16),
    /// On the subnet, nobody answers ARP: EHOSTUNREACH after 3 s.
    Absent,
    /// No route: ENETUNREACH at once.
    NoRoute,
    /// Port 0: ECONNREFUSED at once.
    PortZero,
}

impl Target {
    fn addr(self, me: usize) -> SocketAddr {
        let ip = |i: Ipv4Addr| IpAddr::V4(i);
        match self {
            Target::Peer(p) => SocketAddr::new(ip(IPS[1 - me]), p),
            Target::SelfAddr(p) => SocketAddr::new(ip(IPS[me]), p),
            Target::Localhost(p) => SocketAddr::new(ip(Ipv4Addr::LOCALHOST), p),
            Target::Absent => SocketAddr::new(ip(Ipv4Addr::new(10, 0, 0, 99)), 80),
            Target::NoRoute => SocketAddr::new(ip(Ipv4Addr::new(10, 9, 9, 9)), 80),
            Target::PortZero => SocketAddr::new(ip(IPS[1 - me]), 0),
        }
    }
}

const TARGETS: [Target; 8] = [
    Target::Peer(80),
    Target::Peer(81),
    Target::SelfAddr(80),
    Target::Localhost(81),
    Target::Absent,
    Target::NoRoute,
    Target::PortZero,
    Target::Peer(80),
];

/// One operation. `side` is the stack (0 or 1); `sock` indexes that stack's
/// sockets in creation order (closed ones included), modulo their number.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Listen {
        side: usize,
        port: u16,
        backlog: usize,
    },
    Connect {
        side: usize,
        target: usize,
    },
    Send {
        side: usize,
        sock: u8,
        len: usize,
    },
    Recv {
        side: usize,
        sock: u8,
        len: usize,
    },
    ShutdownWrite {
        side: usize,
        sock: u8,
    },
    Close {
        side: usize,
        sock: u8,
    },
    Abort {
        side: usize,
        sock: u8,
    },
    NoDelay {
        side: usize,
        sock: u8,
        on: bool,
    },
    Step {
        ms: u64,
    },
    Events {
        side: usize,
    },
    Cmd {
        side: usize,
        which: usize,
    },
    RecvAll {
        side: usize,
    },
}

impl Op {
    /// Decodes operations: an opcode byte (low 4 bits: the operation, bit 4: the
    /// stack) then one argument byte for most of them.
    pub fn decode(data: &[u8]) -> Vec<Op> {
        let mut ops = Vec::new();
        let mut bytes = data.iter().copied();
        while let Some(code) = bytes.next() {
            if ops.len() == MAX_OPS {
                break;
            }
            let side = usize::from(code >> 4 & 1);
            let mut arg = || bytes.next().unwrap_or(0);
            let op = match code & 0x0f {
                0 => {
                    let a = arg();
                    Op::Listen {
                        side,
                        port: PORTS[usize::from(a) % PORTS.len()],
                        backlog: 1 + usize::from(a >> 4) % 4,
                    }
                }
                1 => Op::Connect {
                    side,
                    target: usize::from(arg()) % TARGETS.len(),
                },
                2 | 12 => {
                    let a = arg();
                    Op::Send {
                        side,
                        sock: a & 0x0f,
                        len: SEND_LENS[usize::from(a >> 4) % SEND_LENS.len()],
                    }
                }
                3 | 13 => {
                    let a = arg();
                    Op::Recv {
                        side,
                        sock: a & 0x0f,
                        len: RECV_LENS[usize::from(a >> 4) % RECV_LENS.len()],
                    }
                }
                4 => Op::ShutdownWrite { side, sock: arg() },
                5 => Op::Close { side, sock: arg() },
                6 => Op::Abort { side, sock: arg() },
                7 => {
                    let a = arg();
                    Op::NoDelay {
                        side,
                        sock: a & 0x7f,
                        on: a & 0x80 != 0,
                    }
                }
                8 | 14 => Op::Step {
                    ms: STEPS_MS[usize::from(arg()) % STEPS_MS.len()],
                },
                9 => Op::Events { side },
                10 => Op::Cmd {
                    side,
                    which: usize::from(arg()) % CMDS.len(),
                },
                _ => Op::RecvAll { side },
            };
            ops.push(op);
        }
        ops
    }

    /// The bytes that decode to this operation (for seeds).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let side = |s: usize| (s as u8 & 1) << 4;
        let index = |v: usize, n: usize| (v % n) as u8;
        match *self {
            Op::Listen {
                side: s,
                port,
                backlog,
            } => {
                let p = PORTS.iter().position(|&x| x == port).unwrap_or(0);
                out.extend([side(s), p as u8 | ((backlog.saturating_sub(1) as u8) << 4)]);
            }
            Op::Connect { side: s, target } => out.extend([side(s) | 1, target as u8]),
            Op::Send { side: s, sock, len } => {
                let l = SEND_LENS.iter().position(|&x| x == len).unwrap_or(1);
                out.extend([side(s) | 2, sock & 0x0f | index(l, 16) << 4]);
            }
            Op::Recv { side: s, sock, len } => {
                let l = RECV_LENS.iter().position(|&x| x == len).unwrap_or(3);
                out.extend([side(s) | 3, sock & 0x0f | index(l, 16) << 4]);
            }
            Op::ShutdownWrite { side: s, sock } => out.extend([side(s) | 4, sock]),
            Op::Close { side: s, sock } => out.extend([side(s) | 5, sock]),
            Op::Abort { side: s, sock } => out.extend([side(s) | 6, sock]),
            Op::NoDelay { side: s, sock, on } => {
                out.extend([side(s) | 7, sock & 0x7f | u8::from(on) << 7])
            }
            Op::Step { ms } => {
                let i = STEPS_MS.iter().position(|&x| x == ms).unwrap_or(1);
                out.extend([8, i as u8]);
            }
            Op::Events { side: s } => out.push(side(s) | 9),
            Op::Cmd { side: s, which } => out.extend([side(s) | 10, which as u8]),
            Op::RecvAll { side: s } => out.push(side(s) | 11),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Listener(u16),
    Connect(Target),
    Accepted,
}

/// What the model knows of one socket.
#[derive(Debug)]
struct Sock {
    socket: SimSocket,
    origin: Origin,
    /// The stream this socket sends.
    id: u64,
    user_closed: bool,
    aborted: bool,
    shut_wr: bool,
    /// Connected or Accepted was seen.
    established: bool,
    failed: Option<i32>,
    reset: bool,
    sent: usize,
    /// The first bytes read (up to 8: whose stream it is), and how many in all.
    head: Vec<u8>,
    got: usize,
    /// Whose stream it reads, once known.
    reads: Option<u64>,
    eof: bool,
}

impl Sock {
    fn new(socket: SimSocket, origin: Origin, id: u64) -> Sock {
        Sock {
            socket,
            origin,
            id,
            user_closed: false,
            aborted: false,
            shut_wr: false,
            established: origin == Origin::Accepted,
            failed: None,
            reset: false,
            sent: 0,
            head: Vec::new(),
            got: 0,
            reads: None,
            eof: false,
        }
    }

    fn is_listener(&self) -> bool {
        matches!(self.origin, Origin::Listener(_))
    }
}

/// A stream that must arrive: its id, how much was sent, who reads it (if known).
type Owed = (u64, usize, Option<(usize, usize)>);

/// Byte `at` of the stream of socket `id`.
pub fn stream_byte(id: u64, at: usize) -> u8 {
    if at < 8 {
        id.to_le_bytes()[at]
    } else {
        pattern(id, at)
    }
}

fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

thread_local! {
    /// The log of the run in progress, printed if it panics.
    static LAST_LOG: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Writes to a harness's log and to [`LAST_LOG`].
struct LogSink<'a>(&'a mut String);

impl std::fmt::Write for LogSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.push_str(s);
        LAST_LOG.with(|l| l.borrow_mut().push_str(s));
        Ok(())
    }
}

/// Prints the log of the failing run before the usual panic message.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            LAST_LOG.with(|l| {
                if let Ok(log) = l.try_borrow() {
                    eprintln!("---- api harness log ----\n{log}---- end of log ----");
                }
            });
            previous(info);
        }));
    });
}

/// Two stacks, the model, and a log of every call and its result (compared
/// between two runs of the same input: the mode is deterministic).
pub struct Harness {
    pub net: SimNetwork,
    socks: [Vec<Sock>; 2],
    /// Where each stream is sent from: (side, index in `socks`).
    senders: HashMap<u64, (usize, usize)>,
    /// Which socket reads each stream.
    readers: HashMap<u64, (usize, usize)>,
    next_id: u64,
    /// A link went down at some point: liveness is not checked.
    disturbed: bool,
    /// Leave sockets whose connect failed alone (taking events before every call
    /// to know): `VDESTACK_FUZZ_AVOID_FAILED=1`. A workaround for a known bug of
    /// `sim` (a failed connect's `SimSocket` reaches whichever connection reuses
    /// its engine handle), so that fuzzing can find others.
    avoid_failed: bool,
    pub log: String,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        let mut net = SimNetwork::new();
        for (i, mac) in MACS.iter().enumerate() {
            let index = net.add(SimStack::new("vde0", *mac, 1000 + i as u64));
            net.stack(index)
                .cmd(&format!(
                    "/bin/ip link set lo up; /bin/ip link set vde0 up; \
                     /bin/ip addr add {}/24 dev vde0",
                    IPS[i]
                ))
                .expect("configure");
        }
        Harness {
            net,
            socks: [Vec::new(), Vec::new()],
            senders: HashMap::new(),
            readers: HashMap::new(),
            next_id: 1,
            disturbed: false,
            avoid_failed: std::env::var_os("VDESTACK_FUZZ_AVOID_FAILED").is_some(),
            log: String::new(),
        }
    }

    /// The log, mirrored into [`LAST_LOG`] for the panic hook.
    fn log(&mut self) -> LogSink<'_> {
        LogSink(&mut self.log)
    }

    fn add(&mut self, side: usize, socket: SimSocket, origin: Origin) -> usize {
        assert!(
            self.socks[side].iter().all(|s| s.socket != socket),
            "stack {side} handed out {socket:?} twice"
        );
        let id = self.next_id;
        self.next_id += 1;
        self.socks[side].push(Sock::new(socket, origin, id));
        let index = self.socks[side].len() - 1;
        self.senders.insert(id, (side, index));
        index
    }

    fn pick(&mut self, side: usize, sock: u8) -> Option<usize> {
        let n = self.socks[side].len();
        let i = (n > 0).then(|| usize::from(sock) % n)?;
        if self.avoid_failed {
            // Known bug: see `Harness::avoid_failed`.
            self.events(side);
            if self.socks[side][i].failed.is_some() && !self.socks[side][i].user_closed {
                return None;
            }
        }
        Some(i)
    }

    /// Runs every operation, then (if nothing disturbed the network) lets it
    /// settle and checks that every stream arrived.
    pub fn run(&mut self, ops: &[Op]) {
        for op in ops {
            let _ = writeln!(self.log(), "{op:?}");
            self.apply(*op);
        }
        self.settle();
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Listen {
                side,
                port,
                backlog,
            } => self.listen(side, port, backlog),
            Op::Connect { side, target } => self.connect(side, TARGETS[target]),
            Op::Send { side, sock, len } => {
                if let Some(i) = self.pick(side, sock) {
                    self.send(side, i, len);
                }
            }
            Op::Recv { side, sock, len } => {
                if let Some(i) = self.pick(side, sock) {
                    self.recv(side, i, len);
                }
            }
            Op::ShutdownWrite { side, sock } | Op::NoDelay { side, sock, .. } => {
                if let Some(i) = self.pick(side, sock) {
                    let s = &self.socks[side][i];
                    let socket = s.socket;
                    let result = match op {
                        Op::NoDelay { on, .. } => self.net.stack(side).set_nodelay(socket, on),
                        _ => self.net.stack(side).shutdown_write(socket),
                    };
                    let _ = writeln!(self.log(), "  {result:?}");
                    let s = &mut self.socks[side][i];
                    match &result {
                        Ok(()) => {
                            assert!(!s.user_closed, "{op:?} on a closed socket succeeded");
                            assert!(!s.is_listener(), "{op:?} on a listener succeeded");
                            if matches!(op, Op::ShutdownWrite { .. }) {
                                s.shut_wr = true;
                            }
                        }
                        Err(e) if s.user_closed => {
                            assert_eq!(errno(e), Some(libc::EBADF), "{op:?} on a closed socket")
                        }
                        Err(e) => {
                            assert_eq!(errno(e), Some(libc::ENOTCONN), "{op:?}: {s:?}");
                            assert!(
                                s.is_listener() || s.failed.is_some() || !s.established,
                                "{op:?} failed on a live connection: {e} {s:?}"
                            );
                        }
                    }
                }
            }
            Op::Close { side, sock } | Op::Abort { side, sock } => {
                if let Some(i) = self.pick(side, sock) {
                    let socket = self.socks[side][i].socket;
                    let abort = matches!(op, Op::Abort { .. });
                    if abort {
                        self.net.stack(side).abort(socket);
                    } else {
                        self.net.stack(side).close(socket);
                    }
                    let s = &mut self.socks[side][i];
                    if !s.user_closed {
                        s.aborted = abort;
                    }
                    s.user_closed = true;
                }
            }
            Op::Step { ms } => self.step(Duration::from_millis(ms)),
            Op::Events { side } => self.events(side),
            Op::Cmd { side, which } => {
                let result = self.net.stack(side).cmd(CMDS[which]);
                let _ = writeln!(self.log(), "  {result:?}");
                assert!(result.is_ok(), "{}: {result:?}", CMDS[which]);
                self.disturbed = true;
            }
            Op::RecvAll { side } => self.recv_all(side),
        }
    }

    fn listen(&mut self, side: usize, port: u16, backlog: usize) {
        let addr = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
        let result = self.net.stack(side).tcp_listen(addr, backlog);
        let _ = writeln!(self.log(), "  {result:?}");
        let open_listener = port != 0
            && self.socks[side]
                .iter()
                .any(|s| s.origin == Origin::Listener(port) && !s.user_closed);
        let ever_used = port != 0
            && self.socks[side]
                .iter()
                .any(|s| s.origin == Origin::Listener(port));
        match result {
            Ok(socket) => {
                assert!(!open_listener, "two listeners on port {port}");
                self.add(side, socket, Origin::Listener(port));
            }
            Err(e) => {
                assert_eq!(errno(&e), Some(libc::EADDRINUSE), "listen: {e}");
                // A port that never had a listener is free (ephemeral ports of
                // connections are taken from far above 81).
                assert!(ever_used, "listen on free port {port}: {e}");
            }
        }
    }

    fn connect(&mut self, side: usize, target: Target) {
        let connecting = self.socks[side]
            .iter()
            .filter(|s| matches!(s.origin, Origin::Connect(_)))
            .count();
        if connecting >= 64 {
            return;
        }
        let result = self.net.stack(side).tcp_connect(target.addr(side));
        let _ = writeln!(self.log(), "  {result:?}");
        match (target, result) {
            (Target::NoRoute, Err(e)) => assert_eq!(errno(&e), Some(libc::ENETUNREACH)),
            (Target::PortZero, Err(e)) => assert_eq!(errno(&e), Some(libc::ECONNREFUSED)),
            (Target::NoRoute | Target::PortZero, Ok(_)) => {
                panic!("connect to {target:?} succeeded")
            }
            (_, Ok(socket)) => {
                self.add(side, socket, Origin::Connect(target));
            }
            // With lo down, its addresses are not reachable; with vde0 down,
            // nothing is routed.
            (_, Err(e)) if self.disturbed && errno(&e) == Some(libc::ENETUNREACH) => {}
            (_, Err(e)) => panic!("connect to {target:?}: {e}"),
        }
    }

    fn send(&mut self, side: usize, i: usize, len: usize) {
        let s = &self.socks[side][i];
        let data: Vec<u8> = (s.sent..s.sent + len)
            .map(|at| stream_byte(s.id, at))
            .collect();
        let socket = s.socket;
        let result = self.net.stack(side).send(socket, &data);
        let _ = writeln!(self.log(), "  {result:?}");
        let s = &mut self.socks[side][i];
        match result {
            Ok(n) => {
                assert!(!s.user_closed, "send on a closed socket: {s:?}");
                assert!(!s.is_listener(), "send on a listener");
                assert!(!s.shut_wr, "send after shutdown_write took {n} bytes");
                assert!(!s.reset, "send after a reset took {n} bytes");
                assert!(
                    s.failed.is_none(),
                    "send on a socket whose connect failed took {n} bytes: {s:?}"
                );
                assert!(n <= len);
                assert!(n > 0 || len == 0, "Ok(0) for {len} bytes");
                s.sent += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(len > 0, "WouldBlock for nothing");
                assert!(!s.user_closed && !s.is_listener(), "{s:?}");
            }
            Err(e) if s.user_closed => assert_eq!(errno(&e), Some(libc::EBADF)),
            Err(e) if s.is_listener() || s.failed.is_some() => {
                assert_eq!(errno(&e), Some(libc::ENOTCONN))
            }
            Err(e) => {
                let code = errno(&e);
                assert!(
                    code == Some(libc::EPIPE) || code == Some(libc::ENOTCONN),
                    "send: {e}"
                );
            }
        }
    }

    fn recv(&mut self, side: usize, i: usize, len: usize) {
        let mut buf = vec![0u8; len];
        let socket = self.socks[side][i].socket;
        let result = self.net.stack(side).recv(socket, &mut buf);
        let _ = writeln!(self.log(), "  {result:?}");
        let s = &self.socks[side][i];
        match result {
            Ok(0) if len > 0 => {
                assert!(!s.user_closed && !s.is_listener(), "EOF on {s:?}");
                self.socks[side][i].eof = true;
            }
            Ok(n) => {
                assert!(n <= len);
                assert!(!s.user_closed, "recv on a closed socket: {s:?}");
                assert!(!s.is_listener(), "recv on a listener");
                assert!(
                    n == 0 || s.failed.is_none(),
                    "recv on a socket whose connect failed gave {n} bytes: {s:?}"
                );
                if n > 0 {
                    self.take(side, i, &buf[..n]);
                }
            }
            Err(e) if s.user_closed => assert_eq!(errno(&e), Some(libc::EBADF)),
            Err(e) if s.is_listener() => assert_eq!(errno(&e), Some(libc::ENOTCONN)),
            Err(e) => {
                if s.eof && !s.reset {
                    // Maybe the reset is still in the event queue.
                    self.events(side);
                    let s = &self.socks[side][i];
                    assert!(s.reset, "recv after EOF gave {e} instead of 0: {s:?}");
                }
                let s = &self.socks[side][i];
                let ok = e.kind() == io::ErrorKind::WouldBlock
                    || errno(&e) == Some(libc::ENOTCONN)
                    || errno(&e) == Some(libc::ECONNRESET);
                assert!(ok, "recv: {e} on {s:?}");
            }
        }
    }

    /// Bytes read on socket `i` of `side`: they must continue whichever stream it
    /// reads.
    fn take(&mut self, side: usize, i: usize, bytes: &[u8]) {
        let s = &mut self.socks[side][i];
        assert!(!s.eof, "data after EOF on {s:?}");
        let start = s.got;
        s.got += bytes.len();
        for (k, &b) in bytes.iter().enumerate() {
            if start + k < 8 {
                s.head.push(b);
            }
        }
        if s.reads.is_none() && s.head.len() == 8 {
            let id = u64::from_le_bytes(s.head[..8].try_into().expect("8 bytes"));
            let me = (side, i);
            let sender = self.senders.get(&id).copied();
            let sender = sender.unwrap_or_else(|| panic!("stream {id} was never sent"));
            assert_ne!(sender, me, "a socket reads its own stream");
            let from = &self.socks[sender.0][sender.1];
            assert!(
                from.failed.is_none() && !from.is_listener(),
                "{me:?} reads the stream of {from:?}, which never connected"
            );
            if let Some(other) = self.readers.insert(id, me) {
                panic!("stream {id} read by {other:?} and {me:?}");
            }
            self.socks[side][i].reads = Some(id);
        }
        let s = &self.socks[side][i];
        if let Some(id) = s.reads {
            let (ss, si) = self.senders[&id];
            let sent = self.socks[ss][si].sent;
            assert!(
                s.got <= sent,
                "{} bytes read of stream {id}, {sent} sent",
                s.got
            );
            for (k, &b) in bytes.iter().enumerate() {
                assert_eq!(
                    b,
                    stream_byte(id, start + k),
                    "byte {} of stream {id} corrupted",
                    start + k
                );
            }
        }
    }

    fn recv_all(&mut self, side: usize) {
        let mut buf = vec![0u8; 16 * 1024];
        for i in 0..self.socks[side].len() {
            let s = &self.socks[side][i];
            if s.user_closed
                || s.is_listener()
                || s.eof
                || (self.avoid_failed && s.failed.is_some())
            {
                continue;
            }
            let socket = s.socket;
            for _ in 0..100 {
                match self.net.stack(side).recv(socket, &mut buf) {
                    Ok(0) => {
                        self.socks[side][i].eof = true;
                        break;
                    }
                    Ok(n) => {
                        let chunk = buf[..n].to_vec();
                        self.take(side, i, &chunk);
                    }
                    Err(_) => break,
                }
            }
        }
    }

    fn events(&mut self, side: usize) {
        let mut taken = 0;
        while let Some(event) = self.net.stack(side).next_event() {
            taken += 1;
            assert!(taken < 10_000, "events never end");
            let _ = writeln!(self.log(), "  {side}: {event:?}");
            let find = |socks: &[Sock], socket: SimSocket| {
                socks
                    .iter()
                    .position(|s| s.socket == socket)
                    .unwrap_or_else(|| panic!("event for unknown {socket:?}: {event:?}"))
            };
            match event {
                SimEvent::Connected(socket) => {
                    let i = find(&self.socks[side], socket);
                    let s = &mut self.socks[side][i];
                    assert!(matches!(s.origin, Origin::Connect(_)), "{event:?}: {s:?}");
                    assert!(!s.established && s.failed.is_none(), "{event:?}: {s:?}");
                    if let Origin::Connect(t) = s.origin {
                        assert!(
                            !matches!(t, Target::Absent | Target::NoRoute | Target::PortZero),
                            "{event:?} to {t:?}"
                        );
                    }
                    s.established = true;
                }
                SimEvent::ConnectFailed(socket, code) => {
                    let i = find(&self.socks[side], socket);
                    let s = &mut self.socks[side][i];
                    assert!(matches!(s.origin, Origin::Connect(_)), "{event:?}: {s:?}");
                    assert!(!s.established && s.failed.is_none(), "{event:?}: {s:?}");
                    assert!(
                        [
                            libc::ECONNREFUSED,
                            libc::EHOSTUNREACH,
                            libc::ETIMEDOUT,
                            libc::ENETUNREACH,
                            libc::ECONNRESET
                        ]
                        .contains(&code),
                        "{event:?}"
                    );
                    s.failed = Some(code);
                }
                SimEvent::Accepted {
                    listener,
                    socket,
                    peer,
                    ..
                } => {
                    let l = find(&self.socks[side], listener);
                    assert!(self.socks[side][l].is_listener(), "{event:?}");
                    let known = [
                        IpAddr::V4(IPS[0]),
                        IpAddr::V4(IPS[1]),
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                    ];
                    assert!(known.contains(&peer.ip()), "{event:?}");
                    self.add(side, socket, Origin::Accepted);
                }
                SimEvent::Reset(socket, code) => {
                    let i = find(&self.socks[side], socket);
                    let s = &mut self.socks[side][i];
                    assert!(!s.is_listener(), "{event:?}");
                    assert!(
                        [libc::ECONNRESET, libc::ETIMEDOUT, libc::EPIPE].contains(&code),
                        "{event:?}"
                    );
                    s.reset = true;
                }
                SimEvent::Datagrams(_) | SimEvent::UdpError(..) => {
                    panic!("{event:?}: the api target opens no UDP socket")
                }
                _ => panic!("{event:?}: an event this target does not know yet"),
            }
        }
    }

    fn step(&mut self, dt: Duration) {
        let before = self.net.frames().len();
        let now = self.net.now();
        self.net.step(dt);
        assert_eq!(self.net.now(), now + dt, "the clock");
        let sent = self.net.frames().len() - before;
        let _ = writeln!(self.log(), "  {sent} frames");
        assert!(sent <= MAX_FRAMES_PER_STEP, "{sent} frames in one step");
        for side in 0..2 {
            if let Some(d) = self.net.stack(side).poll_delay() {
                let _ = writeln!(self.log(), "  {side}: delay {d:?}");
            }
        }
    }

    /// Streams whose delivery can be required at the end.
    fn owed(&self) -> Vec<Owed> {
        let mut owed = Vec::new();
        for side in 0..2 {
            for s in &self.socks[side] {
                if s.is_listener() || s.user_closed || s.reset || !s.established || s.sent < 8 {
                    continue;
                }
                let reader = self.readers.get(&s.id).copied();
                if let Some((rs, ri)) = reader {
                    let r = &self.socks[rs][ri];
                    if r.user_closed || r.reset {
                        continue;
                    }
                }
                owed.push((s.id, s.sent, reader));
            }
        }
        owed
    }

    /// Lets the network run (reading everything, taking every event) until every
    /// stream is delivered, then checks that it was.
    fn settle(&mut self) {
        for _ in 0..2000 {
            for side in 0..2 {
                self.events(side);
                self.recv_all(side);
            }
            let done = self.owed().iter().all(|&(id, sent, reader)| {
                reader.is_some_and(|(rs, ri)| {
                    let r = &self.socks[rs][ri];
                    r.got == sent
                        && (r.eof || !self.socks[self.senders[&id].0][self.senders[&id].1].shut_wr)
                })
            });
            if done || self.disturbed {
                break;
            }
            self.net.step(Duration::from_millis(100));
            assert!(
                self.net.now() < Duration::from_secs(100_000),
                "virtual time runs away"
            );
        }
        if self.disturbed {
            return;
        }
        let closed_unknown = |side: usize| {
            self.socks[side]
                .iter()
                .any(|s| (s.user_closed || s.reset) && s.reads.is_none() && !s.is_listener())
        };
        for (id, sent, reader) in self.owed() {
            let (ss, si) = self.senders[&id];
            let Some((rs, ri)) = reader else {
                // Its reader may be a socket closed or reset before it read 8 bytes.
                assert!(
                    closed_unknown(0) || closed_unknown(1),
                    "stream {id} ({sent} bytes sent from {:?}) reached nobody",
                    self.socks[ss][si]
                );
                continue;
            };
            let r = &self.socks[rs][ri];
            assert_eq!(
                r.got, sent,
                "stream {id}: {sent} bytes sent, {} arrived ({:?} -> {r:?})",
                r.got, self.socks[ss][si]
            );
            if self.socks[ss][si].shut_wr {
                assert!(r.eof, "stream {id}: no EOF after shutdown_write");
            }
        }
    }
}

/// How much of a second run must match the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// No second run.
    Off,
    /// The same frames (the calls' results and events may differ).
    Frames,
    /// The same frames, calls, results and events, in the same order.
    Full,
}

impl Replay {
    /// From `VDESTACK_FUZZ_REPLAY` (`off`, `frames`, default `full`).
    pub fn from_env() -> Replay {
        match std::env::var("VDESTACK_FUZZ_REPLAY").as_deref() {
            Ok("off") => Replay::Off,
            Ok("frames") => Replay::Frames,
            _ => Replay::Full,
        }
    }
}

/// Runs an input (twice, unless `replay` is off: both runs must do the same).
pub fn run_input(data: &[u8], replay: Replay) {
    install_panic_hook();
    let ops = Op::decode(data);
    LAST_LOG.with(|l| l.borrow_mut().clear());
    let mut first = Harness::new();
    first.run(&ops);
    if replay == Replay::Off {
        return;
    }
    LAST_LOG.with(|l| l.borrow_mut().clear());
    let mut second = Harness::new();
    second.run(&ops);
    assert!(
        first.net.frames() == second.net.frames(),
        "two runs of the same input sent different frames"
    );
    if replay == Replay::Frames {
        return;
    }
    assert!(
        first.log == second.log,
        "two runs of the same input differ:\n{}\n----\n{}",
        first.log,
        second.log
    );
}
