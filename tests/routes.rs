//! Routes as local traffic meets them: reject routes (`unreachable`,
//! `prohibit`, `blackhole`, `throw`) refuse `connect` and `sendto` with Linux's
//! errors, on both backends (the kernel one is the oracle), and stop the
//! stack's answers to a peer they cover while its datagrams still arrive; a
//! multipath route (IPv4 or IPv6) spreads flows over its nexthops; a stack with more prefixes than
//! smoltcp's 8 address slots reaches a peer in each; IPv4 goes through an IPv6
//! gateway (RFC 5549); `ip neigh flush` forgets learned neighbours; an
//! address whose local-table entry was deleted is no longer the stack's to
//! take packets for; a `local` route makes every address of its prefix the
//! stack's (AnyIP).
//!
//! Every test builds its own network in a temporary directory; nothing leaves the
//! machine.

mod common;

use common::{errno, Backend, Switch};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;
use vdestack::{Stack, TcpStream, UdpSocket};

/// A stack on its own switch with 10.0.0.1/24 and fd00::1/64 on `vde0`,
/// default routes through 10.0.0.254 and fd00::fe, and a reject route of each
/// type under 10.N.0.0/16 and fd00:N::/32 (N = 1 to 4).
fn with_reject_routes(backend: Backend) -> (Stack, Switch) {
    let switch = Switch::start();
    let stack = common::stack_on(backend, &switch.vnl());
    let mut cmds = String::from(
        "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
         /bin/ip -6 addr add fd00::1/64 dev vde0 nodad; \
         /bin/ip route add default via 10.0.0.254; /bin/ip -6 route add default via fd00::fe",
    );
    for (n, kind) in REJECTS.iter().enumerate() {
        let n = n + 1;
        cmds += &format!(
            "; /bin/ip route add {kind} 10.{n}.0.0/16; /bin/ip -6 route add {kind} fd00:{n}::/32"
        );
    }
    stack.cmd(&cmds).expect("configure");
    (stack, switch)
}

const REJECTS: [&str; 4] = ["unreachable", "prohibit", "blackhole", "throw"];

/// What Linux's `connect` and `sendto` say under each reject route (checked on
/// Linux 6.18, IPv4 and IPv6 alike).
const ERRNOS: [i32; 4] = [
    libc::EHOSTUNREACH,
    libc::EACCES,
    libc::EINVAL,
    libc::ENETUNREACH,
];

fn reject_routes_refuse_local_traffic(backend: Backend) {
    let (stack, _switch) = with_reject_routes(backend);
    for (n, (kind, want)) in REJECTS.iter().zip(ERRNOS).enumerate() {
        let n = n + 1;
        for dest in [format!("10.{n}.0.9:80"), format!("[fd00:{n}::9]:80")] {
            let dest: SocketAddr = dest.parse().unwrap();
            let what = format!("{kind} route, {dest}");
            let err = TcpStream::connect(&stack, dest).expect_err(&what);
            assert_eq!(errno(&err), want, "TCP connect: {what}: {err}");
            let any = if dest.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let udp = UdpSocket::bind(&stack, any).unwrap();
            let err = udp.send_to(b"x", dest).expect_err(&what);
            assert_eq!(errno(&err), want, "UDP sendto: {what}: {err}");
            let err = udp.connect(dest).expect_err(&what);
            assert_eq!(errno(&err), want, "UDP connect: {what}: {err}");
        }
    }
}

/// Two stacks on one switch: `a` on `backend` with 10.0.0.1/24 and
/// fd00::1/64, `b` a userspace one with 10.0.0.2/24 and fd00::2/64.
fn two_stacks(backend: Backend) -> (Stack, Stack, Switch) {
    let switch = Switch::start();
    let a = common::stack_on(backend, &switch.vnl());
    a.cmd(
        "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
         /bin/ip -6 addr add fd00::1/64 dev vde0 nodad",
    )
    .expect("configure a");
    let b = common::stack_on(Backend::Userspace, &switch.vnl());
    b.cmd(
        "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0; \
         /bin/ip -6 addr add fd00::2/64 dev vde0 nodad",
    )
    .expect("configure b");
    (a, b, switch)
}

/// A reject route covering a peer stops every answer to it, as Linux's output
/// lookup fails for them (checked on Linux 6.18 between veth peers, each type,
/// IPv4 and IPv6): a SYN to a listener or to a closed port gets nothing back
/// (no SYN-ACK, no reset), while the peer's datagrams are still delivered.
/// Without the route, the same connection is made.
fn reject_routes_stop_answers(backend: Backend) {
    let (a, b, _switch) = two_stacks(backend);
    let wait = Duration::from_secs(20);
    let cases = [
        ("unreachable", "10.0.0.2/32", "10.0.0.1", "0.0.0.0"),
        ("prohibit", "10.0.0.2/32", "10.0.0.1", "0.0.0.0"),
        ("blackhole", "fd00::2/128", "[fd00::1]", "[::]"),
        ("throw", "fd00::2/128", "[fd00::1]", "[::]"),
    ];
    for (i, (kind, peer, a_addr, any)) in cases.into_iter().enumerate() {
        // Ports of their own: the last case's connection may linger.
        let port = 7000 + 10 * i as u16;
        let listener = vdestack::TcpListener::bind(&a, format!("{any}:{port}")).unwrap();
        let server = UdpSocket::bind(&a, format!("{any}:{}", port + 1)).unwrap();
        server.set_read_timeout(Some(wait)).unwrap();
        let add = format!("/bin/ip route add {kind} {peer}");
        a.cmd(&add).expect(&add);
        let client = UdpSocket::bind(&b, format!("{any}:0")).unwrap();
        client
            .send_to(b"hi", format!("{a_addr}:{}", port + 1))
            .unwrap();
        let mut buf = [0u8; 4];
        let (n, _) = server.recv_from(&mut buf).expect("the datagram arrives");
        assert_eq!(&buf[..n], b"hi", "{kind}");
        for port in [port, port + 2] {
            let to = format!("{a_addr}:{port}").parse().unwrap();
            let err = TcpStream::connect_timeout(&b, &to, Duration::from_secs(1))
                .expect_err(&format!("{kind} route: no answer from {to}"));
            assert_eq!(errno(&err), libc::ETIMEDOUT, "{kind} route, {to}: {err}");
        }
        let del = format!("/bin/ip route del {kind} {peer}");
        a.cmd(&del).expect(&del);
        let to = format!("{a_addr}:{port}").parse().unwrap();
        TcpStream::connect_timeout(&b, &to, wait).expect("connect without the route");
        drop(listener.accept().unwrap());
    }
}

/// A multipath route over two peers, as `Multipath` describes it: the model
/// keeps both nexthops and `ip route` shows them as Linux does; flows spread
/// over them by a hash of what Linux's default policy hashes (IPv4: the
/// addresses; IPv6: addresses, flow label and next header), each flow staying
/// on its nexthop; a multipath route replaced by one nexthop takes every flow
/// there.
struct Multipath {
    /// `ip addr add` arguments: ours, each peer's.
    own: &'static str,
    peers: [&'static str; 2],
    /// Seven destinations beyond the route, which both peers hold.
    far: Vec<String>,
    /// The commands that make the route, what `show` prints of it, and the
    /// command that leaves the first peer alone.
    add: &'static str,
    show: &'static str,
    shown: &'static str,
    to_first: &'static str,
    /// Where datagrams go: `{}` is a destination.
    dest: fn(&str) -> String,
    any: &'static str,
}

fn multipath_spreads_flows(m: Multipath) {
    let switch = Switch::start();
    let stack = |addrs: &[String]| {
        let s = common::stack_on(Backend::Userspace, &switch.vnl());
        let mut cmds = String::from("/bin/ip link set vde0 up");
        for a in addrs {
            let nodad = if a.contains(':') { " nodad" } else { "" };
            cmds += &format!("; /bin/ip addr add {a} dev vde0{nodad}");
        }
        s.cmd(&cmds).expect("configure");
        s
    };
    let with = |own: &str| {
        let mut addrs = vec![own.to_string()];
        let host = if own.contains(':') { 128 } else { 32 };
        addrs.extend(m.far.iter().map(|a| format!("{a}/{host}")));
        addrs
    };
    let a = stack(&[m.own.to_string()]);
    let peers = [stack(&with(m.peers[0])), stack(&with(m.peers[1]))];
    a.cmd(m.add).expect("a multipath route");
    assert_eq!(a.cmd_output(m.show).unwrap(), m.shown);
    let servers: Vec<UdpSocket> = peers
        .iter()
        .map(|p| {
            let s = UdpSocket::bind(p, format!("{}:7000", m.any)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            s
        })
        .collect();
    let client = UdpSocket::bind(&a, format!("{}:0", m.any)).unwrap();
    // Which peer each destination's datagram reached.
    let round = || {
        for (i, dst) in m.far.iter().enumerate() {
            client.send_to(&[i as u8], (m.dest)(dst)).unwrap();
        }
        let mut reached = vec![None; m.far.len()];
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while reached.contains(&None) {
            assert!(std::time::Instant::now() < deadline, "lost: {reached:?}");
            for (p, server) in servers.iter().enumerate() {
                let mut buf = [0u8; 4];
                if let Ok((1, _)) = server.recv_from(&mut buf) {
                    assert_eq!(reached[usize::from(buf[0])], None, "twice");
                    reached[usize::from(buf[0])] = Some(p);
                }
            }
        }
        reached
    };
    let first = round();
    assert!(
        first.contains(&Some(0)) && first.contains(&Some(1)),
        "flows spread: {first:?}"
    );
    assert_eq!(round(), first, "each flow keeps its nexthop");
    a.cmd(m.to_first).expect("leave one nexthop");
    assert_eq!(
        round(),
        vec![Some(0); m.far.len()],
        "all through the one left"
    );
}

/// IPv6: `ip -6 route append` of a second gateway makes the route multipath
/// (Linux's siblings); deleting one nexthop leaves the other.
#[test]
fn multipath_routes_spread_flows_over_their_nexthops() {
    multipath_spreads_flows(Multipath {
        own: "fd00::1/64",
        peers: ["fd00::2/64", "fd00::3/64"],
        far: (1..=7).map(|i| format!("fd99::{i}")).collect(),
        add: "/bin/ip -6 route add fd99::/64 via fd00::2; \
              /bin/ip -6 route append fd99::/64 via fd00::3",
        show: "/bin/ip -6 route show fd99::/64",
        shown: "fd99::/64 metric 1024 pref medium\n\
                \tnexthop via fd00::2 dev vde0 weight 1 \n\
                \tnexthop via fd00::3 dev vde0 weight 1 \n",
        to_first: "/bin/ip -6 route del fd99::/64 via fd00::3",
        dest: |d| format!("[{d}]:7000"),
        any: "[::]",
    });
}

/// IPv4: one route of two nexthops (`nexthop via A nexthop via B`, with
/// weights), replaced by a route through the first peer alone.
#[test]
fn ipv4_multipath_routes_spread_flows_over_their_nexthops() {
    multipath_spreads_flows(Multipath {
        own: "10.0.0.1/24",
        peers: ["10.0.0.2/24", "10.0.0.3/24"],
        far: (1..=7).map(|i| format!("10.99.0.{i}")).collect(),
        add: "/bin/ip route add 10.99.0.0/16 nexthop via 10.0.0.2 weight 2 nexthop via 10.0.0.3",
        show: "/bin/ip route show 10.99.0.0/16",
        shown: "10.99.0.0/16 \n\
                \tnexthop via 10.0.0.2 dev vde0 weight 2 \n\
                \tnexthop via 10.0.0.3 dev vde0 weight 1 \n",
        to_first: "/bin/ip route replace 10.99.0.0/16 via 10.0.0.2",
        dest: |d| format!("{d}:7000"),
        any: "0.0.0.0",
    });
}

/// IPv4: a multipath route whose nexthops have no gateway (`nexthop dev vde0`,
/// which Linux accepts for IPv4 only) sends each packet straight to its
/// destination on the link, whichever nexthop a flow takes; `ip route` shows
/// the nexthops as Linux does.
#[test]
fn device_only_nexthops_reach_an_on_link_peer() {
    device_only_route_reaches_an_on_link_peer(
        "/bin/ip route add 10.8.0.0/16 nexthop dev vde0 nexthop dev vde0 weight 2",
        "10.8.0.0/16 \n\
         \tnexthop dev vde0 weight 1 \n\
         \tnexthop dev vde0 weight 2 \n",
    );
}

/// One nexthop without a gateway is a plain route through the device, of
/// scope universe (no `scope link`, as Linux shows it).
#[test]
fn one_device_only_nexthop_reaches_an_on_link_peer() {
    device_only_route_reaches_an_on_link_peer(
        "/bin/ip route add 10.8.0.0/16 nexthop dev vde0",
        "10.8.0.0/16 dev vde0 \n",
    );
}

fn device_only_route_reaches_an_on_link_peer(add: &str, shown: &str) {
    let switch = Switch::start();
    let a = common::stack_on(Backend::Userspace, &switch.vnl());
    a.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")
        .expect("configure a");
    let b = common::stack_on(Backend::Userspace, &switch.vnl());
    b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0; /bin/ip addr add 10.8.0.1/16 dev vde0")
        .expect("configure b");
    a.cmd(add).expect("the route");
    assert_eq!(
        a.cmd_output("/bin/ip route show 10.8.0.0/16").unwrap(),
        shown
    );
    let server = UdpSocket::bind(&b, "0.0.0.0:7000").unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // Several flows (source ports), so that both nexthops carry some.
    for i in 0..4u8 {
        let client = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
        client.send_to(&[i], "10.8.0.1:7000").unwrap();
        let mut buf = [0u8; 4];
        let (n, from) = server.recv_from(&mut buf).expect("the datagram arrives");
        assert_eq!((n, buf[0]), (1, i));
        assert_eq!(from.ip(), "10.0.0.1".parse::<std::net::IpAddr>().unwrap());
    }
}

/// A stack with 12 IPv4 and 4 IPv6 addresses, each in a prefix of its own
/// (more than smoltcp's 8 slots), reaches a peer in each prefix directly and
/// is reached from it, with the address of that prefix as its source.
fn reaches_a_peer_in_each_of_16_prefixes(peer_backend: Backend) {
    let switch = Switch::start();
    let addrs = |host: u8| {
        let mut cmds = String::from("/bin/ip link set vde0 up");
        for n in 1..=12 {
            cmds += &format!("; /bin/ip addr add 10.0.{n}.{host}/24 dev vde0");
        }
        for n in 1..=4 {
            cmds += &format!("; /bin/ip -6 addr add fd0{n}::{host}/64 dev vde0 nodad");
        }
        cmds
    };
    let a = common::stack_on(Backend::Userspace, &switch.vnl());
    a.cmd(&addrs(1)).expect("configure a");
    let b = common::stack_on(peer_backend, &switch.vnl());
    b.cmd(&addrs(2)).expect("configure b");
    let peers: Vec<String> = (1..=12)
        .map(|n| format!("10.0.{n}.2"))
        .chain((1..=4).map(|n| format!("fd0{n}::2")))
        .collect();
    for (stack, other, host) in [(&a, &b, 2), (&b, &a, 1)] {
        let listener = vdestack::TcpListener::bind(other, "[::]:7000").unwrap();
        let (done, accepted) = std::sync::mpsc::channel();
        let count = peers.len();
        std::thread::spawn(move || {
            for _ in 0..count {
                let Ok((mut conn, peer)) = listener.accept() else {
                    return;
                };
                let mut got = [0; 1];
                let _ = conn.read_exact(&mut got);
                let _ = done.send(peer.ip().to_canonical());
            }
        });
        for peer in &peers {
            let peer = peer
                .replace(".2", &format!(".{host}"))
                .replace("::2", &format!("::{host}"));
            let dest: SocketAddr = if peer.contains(':') {
                format!("[{peer}]:7000")
            } else {
                format!("{peer}:7000")
            }
            .parse()
            .unwrap();
            let mut conn = TcpStream::connect_timeout(stack, &dest, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("connect to {dest}: {e}"));
            conn.write_all(b"x").unwrap();
            let source = accepted
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{dest} accepts: {e}"));
            assert_eq!(
                source,
                conn.local_addr().unwrap().ip(),
                "the source address of the connection to {dest}"
            );
            let ours = source.to_string();
            let prefix = |s: &str| s.rsplit_once(['.', ':']).map(|(p, _)| p.to_string());
            assert_eq!(prefix(&ours), prefix(&peer), "{dest} from {ours}");
        }
    }
}

#[test]
fn beyond_8_prefixes_with_a_userspace_peer() {
    reaches_a_peer_in_each_of_16_prefixes(Backend::Userspace);
}

#[test]
fn beyond_8_prefixes_with_a_kernel_peer() {
    if common::kernel_available("beyond_8_prefixes_with_a_kernel_peer") {
        reaches_a_peer_in_each_of_16_prefixes(Backend::Kernel);
    }
}

/// An IPv4 route through an IPv6 gateway (`via inet6 LINK-LOCAL`, RFC 5549):
/// the stack finds the gateway's hardware address by neighbour discovery and
/// sends the IPv4 packets there.
fn ipv4_through_an_ipv6_gateway(peer_backend: Backend) {
    let switch = Switch::start();
    let a = common::stack_on(Backend::Userspace, &switch.vnl());
    a.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")
        .expect("configure a");
    let b = common::stack_on(peer_backend, &switch.vnl());
    b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0; /bin/ip addr add 10.9.0.1/16 dev vde0")
        .expect("configure b");
    let shown = b.cmd_output("/bin/ip -6 addr show dev vde0").unwrap();
    let gateway = shown
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .expect("b's link-local address")
        .to_string();
    let err = TcpStream::connect(&a, "10.9.0.1:7000").expect_err("no route yet");
    assert_eq!(errno(&err), libc::ENETUNREACH);
    a.cmd(&format!(
        "/bin/ip route add 10.9.0.0/16 via inet6 {gateway} dev vde0"
    ))
    .expect("the route");
    let listener = vdestack::TcpListener::bind(&b, "0.0.0.0:7000").unwrap();
    let (done, accepted) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut conn, peer)) = listener.accept() {
            let mut got = [0; 2];
            let _ = conn.read_exact(&mut got);
            let _ = done.send((peer.ip(), got));
        }
    });
    let mut conn = TcpStream::connect_timeout(
        &a,
        &"10.9.0.1:7000".parse().unwrap(),
        Duration::from_secs(20),
    )
    .expect("connect through the IPv6 gateway");
    conn.write_all(b"hi").unwrap();
    let (peer, got) = accepted
        .recv_timeout(Duration::from_secs(20))
        .expect("b accepts");
    assert_eq!((peer, &got), ("10.0.0.1".parse().unwrap(), b"hi"));
}

#[test]
fn rfc5549_with_a_userspace_peer() {
    ipv4_through_an_ipv6_gateway(Backend::Userspace);
}

#[test]
fn rfc5549_with_a_kernel_peer() {
    if common::kernel_available("rfc5549_with_a_kernel_peer") {
        ipv4_through_an_ipv6_gateway(Backend::Kernel);
    }
}

/// `ip neigh show` lists what the stack learned from the wire beside its
/// static entries, IPv4 ones first as Linux dumps them; `ip neigh flush`
/// forgets the learned ones and keeps the permanent ones, as Linux does; the
/// link going down forgets them all.
fn neighbours_flushed(backend: Backend) {
    let switch = Switch::start();
    let a = common::stack_on(backend, &switch.vnl());
    a.cmd(
        "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
         /bin/ip -6 neigh add fd00::9 lladdr 02:00:00:00:00:09 dev vde0; \
         /bin/ip neigh add 10.0.0.9 lladdr 02:00:00:00:00:0a dev vde0",
    )
    .expect("configure a");
    let b = common::stack_on(Backend::Userspace, &switch.vnl());
    b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")
        .expect("configure b");
    // A datagram and its answer: nothing is left in flight to teach the
    // neighbour again after the flush (a closing TCP connection's last
    // segments would, on the kernel).
    let server = UdpSocket::bind(&b, "10.0.0.2:7000").unwrap();
    let client = UdpSocket::bind(&a, "10.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    client.send_to(b"ask", "10.0.0.2:7000").unwrap();
    let mut buf = [0u8; 8];
    let (_, from) = server.recv_from(&mut buf).expect("the question");
    server.send_to(b"answer", from).unwrap();
    client.recv_from(&mut buf).expect("the answer");
    let shown = a.cmd_output("/bin/ip neigh show dev vde0").unwrap();
    assert!(shown.contains("10.0.0.2 lladdr "), "{shown}");
    assert!(
        shown.contains("10.0.0.9 lladdr 02:00:00:00:00:0a PERMANENT"),
        "{shown}"
    );
    let families: Vec<bool> = shown.lines().map(|l| l.contains(':')).collect();
    let v6_at = shown.lines().position(|l| l.starts_with("fd00::9"));
    assert!(families.is_sorted(), "IPv4 entries first: {shown}");
    assert!(v6_at.is_some(), "{shown}");
    a.cmd("/bin/ip neigh flush dev vde0").expect("flush");
    let shown = a.cmd_output("/bin/ip neigh show dev vde0").unwrap();
    assert!(
        !shown.contains("10.0.0.2 "),
        "a learned entry survived the flush: {shown}"
    );
    assert!(
        shown.contains("10.0.0.9 lladdr 02:00:00:00:00:0a PERMANENT"),
        "{shown}"
    );
    assert!(
        shown.contains("fd00::9 lladdr 02:00:00:00:00:09 PERMANENT"),
        "{shown}"
    );
    // The neighbour is learned again when it is used.
    let listener = vdestack::TcpListener::bind(&b, "0.0.0.0:7001").unwrap();
    let _conn = TcpStream::connect_timeout(
        &a,
        &"10.0.0.2:7001".parse().unwrap(),
        Duration::from_secs(20),
    )
    .expect("connect after the flush");
    drop(listener.accept().unwrap());
    let shown = a.cmd_output("/bin/ip neigh show dev vde0").unwrap();
    assert!(shown.contains("10.0.0.2 lladdr "), "{shown}");
    // A link taken down forgets every entry, permanent ones too.
    a.cmd("/bin/ip link set vde0 down").expect("down");
    let shown = a.cmd_output("/bin/ip neigh show dev vde0").unwrap();
    assert_eq!(shown, "", "the neighbours of a link that went down");
    a.cmd("/bin/ip link set vde0 up").expect("up");
    let shown = a.cmd_output("/bin/ip neigh show dev vde0").unwrap();
    assert_eq!(shown, "", "the neighbours of a link that came up again");
}

/// `ip route del local ADDR table local` takes the address's meaning away,
/// as on Linux (the kernel backend is the oracle): a peer's SYN to it gets no
/// answer, an IPv4 `bind()` to it fails with EADDRNOTAVAIL while an IPv6 one
/// still works (Linux asks its address list there), the address stays
/// listed; the link coming up again makes the IPv4 entry anew. A deleted
/// broadcast entry makes its address a unicast one: sent to without
/// `SO_BROADCAST`, and never delivered (nobody answers ARP for it).
fn deleted_local_entries(backend: Backend) {
    let (a, b, _switch) = two_stacks(backend);
    let wait = Duration::from_secs(20);
    let v4: SocketAddr = "10.0.0.1:7100".parse().unwrap();
    let v6: SocketAddr = "[fd00::1]:7101".parse().unwrap();
    let l4 = vdestack::TcpListener::bind(&a, "0.0.0.0:7100").unwrap();
    let l6 = vdestack::TcpListener::bind(&a, "[::]:7101").unwrap();
    // Both reached first: the peer knows our hardware address after.
    for (to, listener) in [(v4, &l4), (v6, &l6)] {
        TcpStream::connect_timeout(&b, &to, wait).expect("connect before");
        drop(listener.accept().unwrap());
    }
    // The subnet broadcast reaches the peer while its entry is there.
    let heard = UdpSocket::bind(&b, "0.0.0.0:7102").unwrap();
    heard.set_read_timeout(Some(wait)).unwrap();
    let shout = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    shout.set_broadcast(true).unwrap();
    shout.send_to(b"all", "10.0.0.255:7102").unwrap();
    let mut buf = [0u8; 8];
    heard.recv_from(&mut buf).expect("the broadcast");
    a.cmd(
        "/bin/ip route del local 10.0.0.1 dev vde0 table local; \
         /bin/ip -6 route del local fd00::1 dev vde0 table local; \
         /bin/ip route del broadcast 10.0.0.255 dev vde0 table local",
    )
    .expect("delete the local entries");
    // Without it, 10.0.0.255 is a unicast destination: no SO_BROADCAST needed.
    // (Whether it then arrives is not asserted: Linux may still hold the
    // broadcast neighbour entry it made for the address, and send to
    // ff:ff:ff:ff:ff:ff until that entry goes.)
    let plain = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    plain
        .send_to(b"one", "10.0.0.255:7102")
        .expect("no SO_BROADCAST needed");
    for to in [v4, v6] {
        let err = TcpStream::connect_timeout(&b, &to, Duration::from_secs(1))
            .expect_err(&format!("no answer from {to}"));
        assert_eq!(errno(&err), libc::ETIMEDOUT, "{to}: {err}");
    }
    let err = UdpSocket::bind(&a, "10.0.0.1:0").expect_err("IPv4 bind");
    assert_eq!(errno(&err), libc::EADDRNOTAVAIL, "{err}");
    UdpSocket::bind(&a, "[fd00::1]:0").expect("IPv6 bind");
    let shown = a.cmd_output("/bin/ip addr show dev vde0").unwrap();
    assert!(shown.contains("inet 10.0.0.1/24"), "{shown}");
    a.cmd("/bin/ip link set vde0 down; /bin/ip link set vde0 up")
        .expect("down and up");
    UdpSocket::bind(&a, "10.0.0.1:0").expect("IPv4 bind once the link came up");
    TcpStream::connect_timeout(&b, &v4, wait).expect("connect after");
    drop(l4.accept().unwrap());
}

/// IPv6 multicast leaves through the local table's `multicast ff00::/8`
/// entry of the link, with no route of the main table (Linux looks the local
/// table up first); deleting that entry leaves the main table to decide:
/// ENETUNREACH without a route (checked on Linux 6.18).
fn multicast_through_the_local_table(backend: Backend) {
    let switch = Switch::start();
    let a = common::stack_on(backend, &switch.vnl());
    a.cmd("/bin/ip link set vde0 up; /bin/ip -6 addr add fd00::1/64 dev vde0 nodad")
        .expect("configure");
    let udp = UdpSocket::bind(&a, "[::]:0").unwrap();
    udp.send_to(b"x", "[ff15::1234]:9")
        .expect("multicast through ff00::/8");
    a.cmd("/bin/ip -6 route del ff00::/8 dev vde0 table local")
        .expect("delete ff00::/8");
    let err = udp.send_to(b"x", "[ff15::1234]:9").expect_err("no route");
    assert_eq!(errno(&err), libc::ENETUNREACH, "{err}");
}

/// An address added with `noprefixroute` is the stack's, but its prefix is
/// reached only once a route covers it (ENETUNREACH before, as on Linux); an
/// address's `metric` is its prefix route's; an address of link `scope` is a
/// source on its link but not through a gateway.
fn address_attributes_shape_routes(backend: Backend) {
    let switch = Switch::start();
    let a = common::stack_on(backend, &switch.vnl());
    a.cmd(
        "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0 noprefixroute; \
         /bin/ip addr add 10.1.0.1/24 dev vde0 metric 7",
    )
    .expect("configure a");
    let b = common::stack_on(Backend::Userspace, &switch.vnl());
    b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")
        .expect("configure b");
    assert_eq!(
        a.cmd_output("/bin/ip route").unwrap(),
        "10.1.0.0/24 dev vde0 proto kernel scope link src 10.1.0.1 metric 7 \n"
    );
    let client = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    let err = client
        .send_to(b"x", "10.0.0.2:7000")
        .expect_err("no route yet");
    assert_eq!(errno(&err), libc::ENETUNREACH, "{err}");
    a.cmd("/bin/ip route add 10.0.0.0/24 dev vde0")
        .expect("the route");
    let server = UdpSocket::bind(&b, "0.0.0.0:7000").unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    client.send_to(b"x", "10.0.0.2:7000").unwrap();
    let mut buf = [0u8; 4];
    let (_, from) = server.recv_from(&mut buf).expect("the datagram arrives");
    assert_eq!(from.ip(), "10.0.0.1".parse::<std::net::IpAddr>().unwrap());
    // With only an address of link scope, no source reaches past a gateway.
    let c = common::stack_on(backend, &switch.vnl());
    c.cmd(
        "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.3/24 dev vde0 scope link; \
         /bin/ip route add default via 10.0.0.2",
    )
    .expect("configure c");
    let on_link = UdpSocket::bind(&c, "0.0.0.0:0").unwrap();
    on_link.send_to(b"y", "10.0.0.2:7000").unwrap();
    let (_, from) = server.recv_from(&mut buf).expect("the on-link datagram");
    assert_eq!(from.ip(), "10.0.0.3".parse::<std::net::IpAddr>().unwrap());
}

/// A `local` route makes every address of its prefix the stack's (Linux's
/// AnyIP; the kernel backend is the oracle): `ip route get` answers `local`
/// from the address itself; a peer reaches a listener on 0.0.0.0 at such an
/// address, the connection's local address (the source of what goes back)
/// being that address, through a gateway route at the peer or an on-link one
/// (the stack answers ARP for the address, `dev lo` route or not); the stack
/// reaches it itself; a UDP socket bound to one (IPv4 `bind()` works) answers
/// from it, one on 0.0.0.0 hears datagrams to any; an echo request is
/// answered from the address asked; IPv6 delivers too, though
/// its `bind()` fails (EADDRNOTAVAIL: Linux asks its address list) and
/// neighbour solicitations for the prefix are not answered; a peer whose own
/// address falls in such a prefix is a martian.
fn local_routes_take_their_prefix_in(backend: Backend) {
    let (a, b, _switch) = two_stacks(backend);
    a.cmd(
        "/bin/ip link set lo up; /bin/ip route add local 10.5.0.0/16 dev vde0; \
         /bin/ip route add local 10.6.0.0/16 dev lo; \
         /bin/ip -6 route add local fd05::/64 dev vde0",
    )
    .expect("configure a");
    b.cmd(
        "/bin/ip route add 10.5.0.0/16 via 10.0.0.1; /bin/ip route add 10.6.0.0/16 dev vde0; \
         /bin/ip -6 route add fd05::/64 via fd00::1",
    )
    .expect("configure b");
    assert_eq!(
        a.cmd_output("/bin/ip route get 10.5.0.7").unwrap(),
        "local 10.5.0.7 dev lo src 10.5.0.7 uid 0 \n    cache <local> \n"
    );
    let wait = Duration::from_secs(20);
    let listener = vdestack::TcpListener::bind(&a, "0.0.0.0:7200").unwrap();
    let listener6 = vdestack::TcpListener::bind(&a, "[::]:7201").unwrap();
    let to: [(&Stack, SocketAddr, &vdestack::TcpListener); 5] = [
        (&b, "10.5.0.7:7200".parse().unwrap(), &listener),
        (&b, "10.6.0.7:7200".parse().unwrap(), &listener),
        (&b, "[fd05::7]:7201".parse().unwrap(), &listener6),
        (&a, "10.5.0.8:7200".parse().unwrap(), &listener),
        (&a, "[fd05::8]:7201".parse().unwrap(), &listener6),
    ];
    for (from, addr, listener) in to {
        let mut client = TcpStream::connect_timeout(from, &addr, wait)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        let (mut conn, _) = listener.accept().unwrap();
        assert_eq!(conn.local_addr().unwrap(), addr, "accepted on {addr}");
        assert_eq!(client.peer_addr().unwrap(), addr);
        common::ping_pong(&mut client, &mut conn, &addr.to_string());
    }
    let bound = UdpSocket::bind(&a, "10.6.0.9:7202").expect("IPv4 bind under the route");
    let any = UdpSocket::bind(&a, "0.0.0.0:7203").unwrap();
    let err = UdpSocket::bind(&a, "[fd05::9]:0").expect_err("IPv6 bind");
    assert_eq!(errno(&err), libc::EADDRNOTAVAIL, "{err}");
    let peer = UdpSocket::bind(&b, "0.0.0.0:7204").unwrap();
    for s in [&bound, &any, &peer] {
        s.set_read_timeout(Some(wait)).unwrap();
    }
    let mut buf = [0u8; 8];
    peer.send_to(b"to any", "10.5.3.3:7203").unwrap();
    let (n, from) = any.recv_from(&mut buf).expect("a datagram to 10.5.3.3");
    assert_eq!(
        (&buf[..n], from),
        (&b"to any"[..], "10.0.0.2:7204".parse().unwrap())
    );
    peer.send_to(b"hello", "10.6.0.9:7202").unwrap();
    let (_, from) = bound.recv_from(&mut buf).expect("a datagram to 10.6.0.9");
    bound.send_to(b"back", from).unwrap();
    let (n, from) = peer.recv_from(&mut buf).expect("the answer");
    assert_eq!(
        (&buf[..n], from),
        (&b"back"[..], "10.6.0.9:7202".parse().unwrap())
    );
    // Echo requests are answered from the address asked.
    let pinger = vdestack::PingSocket::bind(&b, "0.0.0.0".parse().unwrap()).unwrap();
    pinger.set_read_timeout(Some(wait)).unwrap();
    let target: std::net::IpAddr = "10.5.0.7".parse().unwrap();
    pinger
        .send_to(
            &vdestack::PingSocket::echo_request(false, 1, b"anyip"),
            target,
        )
        .unwrap();
    let (_, from) = pinger.recv_from(&mut buf).expect("an echo reply");
    assert_eq!(from, target);
    // Neighbour solicitations for such an address go unanswered: a peer
    // that takes the prefix for on-link never reaches it.
    b.cmd("/bin/ip -6 route add fd06::/64 dev vde0")
        .expect("an on-link IPv6 prefix");
    a.cmd("/bin/ip -6 route add local fd06::/64 dev lo")
        .expect("its local route");
    let to: SocketAddr = "[fd06::7]:7201".parse().unwrap();
    TcpStream::connect_timeout(&b, &to, Duration::from_secs(1))
        .expect_err("no neighbour advertisement");
    // A prefix holding the peer's own address makes its packets martians:
    // Linux neither answers its ARP requests nor takes its SYNs.
    a.cmd("/bin/ip route add local 10.0.0.0/24 dev lo")
        .expect("the peer's prefix");
    let to: SocketAddr = "10.0.0.9:7200".parse().unwrap();
    TcpStream::connect_timeout(&b, &to, Duration::from_secs(1)).expect_err("a martian's connect");
}

on_both_backends! {
    multicast_local: super::multicast_through_the_local_table;
    deleted_local: super::deleted_local_entries;
    address_attributes: super::address_attributes_shape_routes;
    reject_routes: super::reject_routes_refuse_local_traffic;
    reject_routes_answers: super::reject_routes_stop_answers;
    neighbours_flush: super::neighbours_flushed;
    local_routes: super::local_routes_take_their_prefix_in;
}
