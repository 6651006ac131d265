//! Writes seed corpora for every target into `corpus/<target>/` (next to this
//! file), which is git-ignored:
//!
//!     cargo run --example gen_seeds            # from the fuzz/ directory
//!
//! - `stackcmd`: the `ip` commands of the oracle transcripts in
//!   `../src/cmd/testdata/`, alone and in runs of consecutive commands;
//! - `stream`: small VDE streams (see the layout in `fuzz_targets/stream.rs`);
//! - `ingress`: every frame of a deterministic-mode run of the `ingress` world (two
//!   stacks: handshakes, data both ways, IPv6, closes), one frame per file, plus
//!   hand-built ARP, ICMP echo, ICMPv6 echo, neighbor solicitation, UDP and TCP
//!   frames addressed to the target stack;
//! - `api`: a few operation sequences (connect, transfer, close, refused, ...).
//!
//! Existing files are kept; the same run always writes the same files.

use std::path::{Path, PathBuf};
use std::time::Duration;
use vdestack_fuzz::api::Op;
use vdestack_fuzz::ingress::{self, World, A, B, IP6_A, IP6_B, IP_A, IP_B, MAC_A, MAC_B};
use vdestack_fuzz::wire;

/// FNV-1a, for file names.
fn name(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}")
}

struct Corpus {
    dir: PathBuf,
    written: usize,
}

impl Corpus {
    fn new(root: &Path, target: &str) -> Corpus {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        Corpus { dir, written: 0 }
    }

    fn put(&mut self, bytes: &[u8]) {
        let path = self.dir.join(name(bytes));
        if !path.exists() {
            std::fs::write(&path, bytes).expect("write a seed");
            self.written += 1;
        }
    }

    fn done(self, target: &str) {
        println!(
            "{target}: {} new seeds in {}",
            self.written,
            self.dir.display()
        );
    }
}

fn stackcmd(root: &Path, testdata: &Path) {
    let mut c = Corpus::new(root, "stackcmd");
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata)
        .expect("src/cmd/testdata")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a transcript");
        let cmds: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("$ ip "))
            .map(|rest| format!("/bin/ip {rest}"))
            .collect();
        for cmd in &cmds {
            c.put(cmd.as_bytes());
        }
        // Runs of four: two commands, NUL, two more (the target's two strings).
        for w in cmds.windows(4).step_by(2) {
            c.put(format!("{}; {}\0{}; {}", w[0], w[1], w[2], w[3]).as_bytes());
        }
    }
    c.put(b"");
    c.put(b"ip link");
    c.put(b"/bin/true; /bin/ip link set vde0 up");
    c.put(b"/bin/ip 'link' \"set\" vde0\\ up , /sbin/ip a");
    c.done("stackcmd");
}

fn stream(root: &Path) {
    let mut c = Corpus::new(root, "stream");
    let frame = |len: usize, fill: u8| -> Vec<u8> {
        let mut v = Vec::new();
        vdestack::link::encode_frame(&vec![fill; len], &mut v).expect("encode");
        v
    };
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (vec![], frame(60, 1)),
        (vec![1], [frame(60, 1), frame(14, 2)].concat()),
        (
            vec![3, 0x81, 5],
            [frame(0, 0), frame(100, 3), frame(1, 4)].concat(),
        ),
        (vec![2, 0x41, 0x82], [frame(1514, 5), frame(60, 6)].concat()),
        (vec![1, 0x63], frame(9236, 7)),
        (vec![1, 7], [frame(20, 8), vec![0x24, 0x15, 1, 2]].concat()),
        (vec![0], vec![0xff, 0xff, 0, 0]),
        (vec![2, 1, 0x80], vec![0, 0, 0, 0, 0, 3, 9, 9, 9]),
    ];
    for (sizes, bytes) in cases {
        let mut input = vec![sizes.len() as u8];
        input.extend_from_slice(&sizes);
        input.extend_from_slice(&bytes);
        c.put(&input);
    }
    c.done("stream");
}

fn ingress(root: &Path) {
    let mut c = Corpus::new(root, "ingress");
    let mut w = World::new();
    println!(
        "ingress world: IPv6 TCP {}, set up at {:?}",
        if w.c6.is_some() {
            "works"
        } else {
            "does not work"
        },
        w.net.now()
    );
    // Data both ways, IPv6 data, then every connection closes.
    w.run(&[]);
    if let Some((a6, b6)) = w.c6 {
        w.net.stack(B).send(b6, b"over IPv6").expect("send v6");
        w.net.step(Duration::from_millis(5));
        w.net.stack(A).send(a6, b"and back").expect("send v6");
        w.net.step(Duration::from_millis(5));
    }
    let (c1b, c2a, c1a, c2b) = (w.c1b.socket, w.c2a.socket, w.c1a.socket, w.c2b.socket);
    w.net.stack(B).shutdown_write(c1b).expect("shutdown");
    w.net.stack(A).shutdown_write(c2a).expect("shutdown");
    for _ in 0..5 {
        w.net.step(Duration::from_millis(10));
    }
    w.net.stack(A).close(c1a);
    w.net.stack(B).close(c2b);
    w.net.stack(A).close(c2a);
    w.net.stack(B).close(c1b);
    if let Some((a6, b6)) = w.c6 {
        w.net.stack(A).abort(a6);
        w.net.stack(B).close(b6);
    }
    // A connection refused: B to A's closed port 81.
    let _ = w
        .net
        .stack(B)
        .tcp_connect(std::net::SocketAddr::new(IP_A.into(), 81));
    for _ in 0..20 {
        w.net.step(Duration::from_millis(100));
    }
    let frames: Vec<Vec<u8>> = w.net.frames().iter().map(|(_, f)| f.clone()).collect();
    for f in &frames {
        c.put(f);
    }
    // Frames the sim run cannot make: ICMP, UDP, NDP and ARP to A.
    let ident = |rx: usize| match w.udp.rx[rx].kind {
        ingress::RxKind::Ping { ident, .. } => ident,
        _ => unreachable!("ping sockets are rx 3 and 4"),
    };
    let (ping4, ping6) = (ident(3), ident(4));
    let echo_reply = |v6: bool, id, seq, data: &[u8]| {
        let mut m = wire::echo_request(v6, id, seq, data);
        m[0] = if v6 { 129 } else { 0 };
        m
    };
    // ICMP port unreachable quoting a datagram from A:5000 to B:6000.
    let port_unreachable = || {
        let quoted = wire::ipv4_frame(
            MAC_B,
            MAC_A,
            IP_A,
            IP_B,
            wire::PROTO_UDP,
            wire::udp(ingress::UDP_PORT_A_CONNECTED, ingress::UDP_PORT_B4, b"abc"),
            Some(6),
        );
        let mut m = vec![3, 3, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&quoted[14..]);
        m
    };
    let v4 = |proto, l4, csum| wire::ipv4_frame(MAC_A, MAC_B, IP_B, IP_A, proto, l4, csum);
    let v6 = |proto, l4, csum| wire::ipv6_frame(MAC_A, MAC_B, IP6_B, IP6_A, proto, 64, l4, csum);
    let hand: Vec<Vec<u8>> = vec![
        wire::arp_request(MAC_B, IP_B, IP_A),
        v4(
            wire::PROTO_ICMP,
            wire::echo_request(false, 0x1234, 1, b"ping ping ping"),
            Some(2),
        ),
        v4(wire::PROTO_UDP, wire::udp(5000, 53, b"udp to A"), Some(6)),
        v4(
            wire::PROTO_TCP,
            wire::tcp_segment(4000, 7, 1000, 0, wire::TCP_SYN, b""),
            Some(16),
        ),
        v4(
            wire::PROTO_TCP,
            wire::tcp_segment(4001, 80, 5000, 0, wire::TCP_SYN, b""),
            Some(16),
        ),
        v4(
            wire::PROTO_TCP,
            wire::tcp_segment(4002, 81, 7000, 0, wire::TCP_SYN, b""),
            Some(16),
        ),
        v4(
            wire::PROTO_TCP,
            wire::tcp_segment(4003, 80, 1, 1, wire::TCP_RST | wire::TCP_ACK, b""),
            Some(16),
        ),
        v6(
            wire::PROTO_ICMPV6,
            wire::echo_request(true, 0x4321, 1, b"ping6"),
            2,
        ),
        v6(wire::PROTO_UDP, wire::udp(5000, 53, b"udp6 to A"), 6),
        v6(
            wire::PROTO_TCP,
            wire::tcp_segment(4004, 8080, 9000, 0, wire::TCP_SYN, b""),
            16,
        ),
        wire::neighbor_solicitation(MAC_B, IP6_B, IP6_A),
        // To A's datagram sockets: from B's true ports, and from others.
        v4(
            wire::PROTO_UDP,
            wire::udp(
                ingress::UDP_PORT_B4,
                ingress::UDP_PORT_A_CONNECTED,
                b"to connected",
            ),
            Some(6),
        ),
        v4(
            wire::PROTO_UDP,
            wire::udp(7777, ingress::UDP_PORT_A_CONNECTED, b"not the peer"),
            Some(6),
        ),
        v6(
            wire::PROTO_UDP,
            wire::udp(ingress::UDP_PORT_B6, ingress::UDP_PORT_A6, b"udp6 to 5353"),
            6,
        ),
        // Echo replies to A's ping sockets (their identifiers), and an ICMP port
        // unreachable about the connected socket's datagrams to B.
        v4(
            wire::PROTO_ICMP,
            echo_reply(false, ping4, 3, b"forged reply"),
            Some(2),
        ),
        v6(
            wire::PROTO_ICMPV6,
            echo_reply(true, ping6, 3, b"forged reply6"),
            2,
        ),
        v4(wire::PROTO_ICMP, port_unreachable(), Some(2)),
    ];
    for f in &hand {
        c.put(f);
    }
    // A few multi-frame inputs: a handshake's frames from B, with a pause between.
    let from_b: Vec<&Vec<u8>> = w
        .net
        .frames()
        .iter()
        .filter(|(i, _)| *i == B)
        .map(|(_, f)| f)
        .collect();
    for pair in from_b.windows(2).take(8) {
        let mut input = pair[0].clone();
        input.extend_from_slice(ingress::SEPARATOR);
        input.extend_from_slice(ingress::SEPARATOR);
        input.extend_from_slice(pair[1]);
        c.put(&input);
    }
    c.done("ingress");
}

fn api(root: &Path) {
    let mut c = Corpus::new(root, "api");
    let listen = |side| Op::Listen {
        side,
        port: 80,
        backlog: 2,
    };
    let step = |ms| Op::Step { ms };
    let seqs: Vec<Vec<Op>> = vec![
        // Connect, transfer both ways, close.
        vec![
            listen(0),
            Op::Connect { side: 1, target: 0 },
            step(1),
            Op::Events { side: 0 },
            Op::Events { side: 1 },
            Op::Send {
                side: 1,
                sock: 0,
                len: 3000,
            },
            Op::Send {
                side: 0,
                sock: 1,
                len: 100,
            },
            step(2),
            Op::RecvAll { side: 0 },
            Op::RecvAll { side: 1 },
            Op::ShutdownWrite { side: 1, sock: 0 },
            step(10),
            Op::Recv {
                side: 0,
                sock: 1,
                len: 4096,
            },
            Op::Recv {
                side: 0,
                sock: 1,
                len: 4096,
            },
            Op::Close { side: 0, sock: 1 },
            Op::Close { side: 1, sock: 0 },
            step(200),
        ],
        // Refused, unreachable, no route, port zero.
        vec![
            Op::Connect { side: 0, target: 1 },
            Op::Connect { side: 0, target: 4 },
            Op::Connect { side: 0, target: 5 },
            Op::Connect { side: 0, target: 6 },
            step(1000),
            step(3100),
            Op::Events { side: 0 },
            Op::Send {
                side: 0,
                sock: 0,
                len: 1,
            },
        ],
        // Loopback, a big send, nodelay, abort.
        vec![
            listen(1),
            Op::Connect { side: 1, target: 2 },
            step(1),
            Op::Events { side: 1 },
            Op::NoDelay {
                side: 1,
                sock: 1,
                on: true,
            },
            Op::Send {
                side: 1,
                sock: 1,
                len: 70_000,
            },
            step(10),
            Op::RecvAll { side: 1 },
            Op::Abort { side: 1, sock: 2 },
            step(10),
            Op::Events { side: 1 },
            Op::Recv {
                side: 1,
                sock: 1,
                len: 100,
            },
        ],
        // A full backlog, then link changes.
        vec![
            Op::Listen {
                side: 0,
                port: 81,
                backlog: 1,
            },
            Op::Connect { side: 1, target: 1 },
            Op::Connect { side: 1, target: 1 },
            Op::Connect { side: 1, target: 1 },
            step(1000),
            Op::Events { side: 0 },
            step(1000),
            Op::Cmd { side: 0, which: 0 },
            step(200),
            Op::Cmd { side: 0, which: 1 },
            step(30_000),
        ],
    ];
    for ops in seqs {
        let mut bytes = Vec::new();
        for op in &ops {
            op.encode(&mut bytes);
        }
        c.put(&bytes);
    }
    c.done("api");
}

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("corpus");
    stackcmd(&root, &here.join("../src/cmd/testdata"));
    stream(&root);
    ingress(&root);
    api(&root);
}
