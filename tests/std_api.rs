//! The calls that mirror `std::net`'s, on both backends: `TcpStream::peek`,
//! `TcpListener::try_clone`/`take_error`/`only_v6`, `UdpSocket::try_clone`, and
//! the multicast options, whose effects are checked where they show: the hop
//! limit on the wire (a third stack captures what crosses the switch), the loop on
//! the sending stack's own sockets.

mod common;

use common::{configure, errno, stack_on, Backend, Net, Switch, TempDir, Wire};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};
use vdestack::{SocketConfig, Stack, TcpListener, TcpStream, UdpSocket};

fn tcp_peek_leaves_the_bytes_for_read(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let listener = TcpListener::bind(&net.a, "0.0.0.0:80").unwrap();
    let mut client = TcpStream::connect(&net.b, "10.0.0.1:80").unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 16];
    let n = server.peek(&mut buf).unwrap();
    assert!(
        n >= 1 && buf[..n] == b"hello"[..n],
        "peeked {:?}",
        &buf[..n]
    );
    let mut read = [0u8; 5];
    server.read_exact(&mut read).unwrap();
    assert_eq!(&read, b"hello", "peek took nothing");
    drop(client);
    assert_eq!(server.peek(&mut buf).unwrap(), 0, "end of stream");
    assert_eq!(server.read(&mut buf).unwrap(), 0);
}

fn listener_clone_accepts_after_the_original_is_gone(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let listener = TcpListener::bind(&net.a, "0.0.0.0:80").unwrap();
    let clone = listener.try_clone().unwrap();
    assert_eq!(clone.local_addr().unwrap(), listener.local_addr().unwrap());
    drop(listener);
    let _client = TcpStream::connect(&net.b, "10.0.0.1:80").unwrap();
    let (_, peer) = clone.accept().unwrap();
    assert_eq!(peer.ip(), IpAddr::from([10, 0, 0, 2]));
    assert!(clone.take_error().unwrap().is_none());
}

fn listener_only_v6_reads_back(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let v4 = TcpListener::bind(&net.a, "0.0.0.0:80").unwrap();
    assert_eq!(errno(&v4.only_v6().unwrap_err()), libc::EOPNOTSUPP);
    let both = TcpListener::bind(&net.a, "[::]:81").unwrap();
    assert!(!both.only_v6().unwrap(), "Linux's default");
    let config = SocketConfig::new().only_v6(true);
    let v6 = TcpListener::bind_with(&net.a, "[::]:82", &config).unwrap();
    assert!(v6.only_v6().unwrap());
}

fn udp_clone_is_the_same_socket(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let socket = UdpSocket::bind(&net.a, "0.0.0.0:5000").unwrap();
    let clone = socket.try_clone().unwrap();
    let peer = UdpSocket::bind(&net.b, "0.0.0.0:6000").unwrap();
    clone.connect("10.0.0.2:6000").unwrap();
    assert_eq!(
        socket.peer_addr().unwrap(),
        SocketAddr::from(([10, 0, 0, 2], 6000)),
        "connected through the clone"
    );
    clone.set_broadcast(true).unwrap();
    assert!(socket.broadcast().unwrap(), "options are the socket's");
    let original = SocketAddr::from(([10, 0, 0, 1], 5000));
    let to_peer = SocketAddr::from(([10, 0, 0, 2], 6000));
    let source = delivered(&clone, to_peer, b"from the clone", &peer, None);
    assert_eq!(source, original);
    delivered(&peer, original, b"to the original", &socket, None);
}

fn multicast_options_read_back(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let v4 = UdpSocket::bind(&net.a, "0.0.0.0:0").unwrap();
    assert_eq!(v4.multicast_ttl_v4().unwrap(), 1, "Linux's default");
    assert!(v4.multicast_loop_v4().unwrap(), "Linux's default");
    v4.set_multicast_ttl_v4(32).unwrap();
    v4.set_multicast_loop_v4(false).unwrap();
    assert_eq!(v4.multicast_ttl_v4().unwrap(), 32);
    assert!(!v4.multicast_loop_v4().unwrap());
    assert_eq!(v4.ttl().unwrap(), 64, "unicast keeps its own");
    assert_eq!(
        errno(&v4.set_multicast_ttl_v4(256).unwrap_err()),
        libc::EINVAL
    );
    // As Linux answers IPv6 options on an IPv4 socket.
    for e in [
        v4.set_multicast_loop_v6(false).unwrap_err(),
        v4.set_multicast_hops_v6(3).unwrap_err(),
    ] {
        assert_eq!(errno(&e), libc::ENOPROTOOPT, "set: {e}");
    }
    for e in [
        v4.multicast_loop_v6().unwrap_err(),
        v4.multicast_hops_v6().unwrap_err(),
    ] {
        assert_eq!(errno(&e), libc::EOPNOTSUPP, "read: {e}");
    }
    let v6 = UdpSocket::bind(&net.a, "[::]:0").unwrap();
    assert_eq!(v6.multicast_hops_v6().unwrap(), 1);
    assert!(v6.multicast_loop_v6().unwrap());
    v6.set_multicast_hops_v6(9).unwrap();
    v6.set_multicast_loop_v6(false).unwrap();
    assert_eq!(v6.multicast_hops_v6().unwrap(), 9);
    assert!(!v6.multicast_loop_v6().unwrap());
    // IPv4's options hold on an IPv6 socket too, for its v4-mapped traffic.
    v6.set_multicast_ttl_v4(4).unwrap();
    assert_eq!(v6.multicast_ttl_v4().unwrap(), 4);
    let clone = v6.try_clone().unwrap();
    assert_eq!(
        clone.multicast_hops_v6().unwrap(),
        9,
        "a clone is the socket"
    );
}

/// Sends `payload` from `from` to `to` until `receiver` gets it (bounded: UDP may
/// lose a datagram), and returns its source. Copies of earlier datagrams that such
/// retries left queued are skipped; `absent` arriving instead is a failure.
fn delivered(
    from: &UdpSocket,
    to: SocketAddr,
    payload: &[u8],
    receiver: &UdpSocket,
    absent: Option<&[u8]>,
) -> SocketAddr {
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 65_536];
    for _ in 0..25 {
        from.send_to(payload, to).unwrap();
        loop {
            match receiver.recv_from(&mut buf) {
                Ok((n, source)) if &buf[..n] == payload => return source,
                Ok((n, _)) => assert!(
                    Some(&buf[..n]) != absent,
                    "{:?} arrived, sent to {to}",
                    String::from_utf8_lossy(&buf[..n])
                ),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv_from: {e}"),
            }
        }
    }
    panic!("{payload:?} never reached the receiver through {to}");
}

/// A datagram payload three frames long, every byte telling its place.
fn large_payload() -> Vec<u8> {
    (0..4000u32).map(|i| (i % 251) as u8).collect()
}

/// The hop limit of the first UDP datagram carrying `payload` in the pcap file at
/// `path`, waiting (bounded) for the capture to show it.
fn captured_hop_limit(path: &Path, payload: &[u8]) -> u8 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let capture = std::fs::read(path).unwrap_or_default();
        if let Some(hops) = hop_limit_in(&capture, payload) {
            return hops;
        }
        assert!(
            Instant::now() < deadline,
            "no frame carrying {payload:?} captured"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Walks a pcap capture's frames for an IPv4 or IPv6 UDP datagram carrying
/// `payload`; its TTL or hop limit.
fn hop_limit_in(capture: &[u8], payload: &[u8]) -> Option<u8> {
    let mut at = 24;
    while at + 16 <= capture.len() {
        let len = u32::from_le_bytes(capture[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = capture.get(at + 16..at + 16 + len)?;
        at += 16 + len;
        let (hops, udp) = match frame.get(12..14)? {
            [0x08, 0x00] if frame.get(23) == Some(&17) => {
                let header = usize::from(frame[14] & 0x0f) * 4;
                (frame[22], frame.get(14 + header..)?)
            }
            [0x86, 0xdd] if frame.get(20) == Some(&17) => (frame[21], frame.get(54..)?),
            _ => continue,
        };
        if udp.get(8..) == Some(payload) {
            return Some(hops);
        }
    }
    None
}

/// A sender and a receiver of `b` on one switch, and a userspace observer
/// (10.0.0.3) capturing the frames that reach it: the groups' (which the switch
/// floods) and those sent to it; routes for multicast on sender and receiver
/// (Linux, too, sends a group's datagrams where its route says).
struct Watched {
    sender: Stack,
    receiver: Stack,
    observer: Stack,
    capture: std::path::PathBuf,
    _dir: TempDir,
    _switch: Switch,
}

impl Watched {
    fn new(b: Backend) -> Watched {
        let switch = Switch::start();
        let dir = TempDir::new("mcast");
        let capture = dir.path().join("wire.pcap");
        let observer = Stack::builder()
            .vnl(&switch.vnl())
            .pcap(&capture)
            .build()
            .unwrap();
        let sender = stack_on(b, &switch.vnl());
        let receiver = stack_on(b, &switch.vnl());
        configure(&sender, "vde0", "10.0.0.1/24");
        configure(&receiver, "vde0", "10.0.0.2/24");
        configure(&observer, "vde0", "10.0.0.3/24");
        for (stack, v6) in [(&sender, "fd00::1/64"), (&receiver, "fd00::2/64")] {
            stack
                .cmd(&format!(
                    "/bin/ip route add 224.0.0.0/4 dev vde0; \
                     /bin/ip -6 addr add {v6} dev vde0 nodad; \
                     /bin/ip -6 route add ff00::/8 dev vde0"
                ))
                .unwrap();
        }
        Watched {
            sender,
            receiver,
            observer,
            capture,
            _dir: dir,
            _switch: switch,
        }
    }
}

/// Joins `group` on `socket` (the interface is the stack's one).
fn join(socket: &UdpSocket, group: IpAddr) {
    match group {
        IpAddr::V4(g) => socket.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(g) => socket.join_multicast_v6(&g, 0),
    }
    .unwrap_or_else(|e| panic!("joining {group}: {e}"));
}

/// What a socket sends to `group` leaves with the multicast hop limit of the
/// group's family (1 unless set), whole or in fragments. Returns the network and
/// the sender, for more.
fn multicast_hop_limit_on_the_wire(b: Backend, group: IpAddr, any: &str) -> (Watched, UdpSocket) {
    let net = Watched::new(b);
    let member = UdpSocket::bind(&net.receiver, format!("{any}:5353")).unwrap();
    join(&member, group);
    let sender = UdpSocket::bind(&net.sender, format!("{any}:0")).unwrap();
    let to = SocketAddr::new(group, 5353);
    delivered(&sender, to, b"default", &member, None);
    assert_eq!(captured_hop_limit(&net.capture, b"default"), 1);
    match group {
        IpAddr::V4(_) => sender.set_multicast_ttl_v4(7),
        IpAddr::V6(_) => sender.set_multicast_hops_v6(7),
    }
    .unwrap();
    delivered(&sender, to, b"seven", &member, None);
    assert_eq!(captured_hop_limit(&net.capture, b"seven"), 7);
    // Larger than the MTU: it leaves in fragments, which the receiver puts
    // together.
    delivered(&sender, to, &large_payload(), &member, None);
    (net, sender)
}

fn multicast_ttl_is_the_hop_limit_on_the_wire(b: Backend) {
    let (net, sender) = multicast_hop_limit_on_the_wire(b, IpAddr::from([239, 1, 2, 3]), "0.0.0.0");
    // Unicast keeps IP_TTL.
    let unicast = SocketAddr::from(([10, 0, 0, 3], 5353));
    let observer = UdpSocket::bind(&net.observer, unicast).unwrap();
    delivered(&sender, unicast, b"unicast", &observer, None);
    assert_eq!(captured_hop_limit(&net.capture, b"unicast"), 64);
}

fn multicast_hops_v6_is_the_hop_limit_on_the_wire(b: Backend) {
    multicast_hop_limit_on_the_wire(b, "ff15::1234".parse().unwrap(), "[::]");
}

fn multicast_loops_back_to_the_stacks_own_members(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    net.add_ipv6();
    net.a
        .cmd("/bin/ip route add 224.0.0.0/4 dev vde0; /bin/ip -6 route add ff00::/8 dev vde0")
        .unwrap();
    // A port of each family's own: another test's spawned child may hold a copy of
    // the first member's descriptor for a moment after it is dropped (as it would
    // a kernel socket's), and with it the port.
    for (group, any, port) in [
        (IpAddr::from([239, 1, 2, 4]), "0.0.0.0", 5454),
        ("ff15::4".parse().unwrap(), "[::]", 5455),
    ] {
        let member = UdpSocket::bind(&net.a, format!("{any}:{port}")).unwrap();
        join(&member, group);
        let sender = UdpSocket::bind(&net.a, format!("{any}:0")).unwrap();
        let set_loop = |on| match group {
            IpAddr::V4(_) => sender.set_multicast_loop_v4(on),
            IpAddr::V6(_) => sender.set_multicast_loop_v6(on),
        };
        let to = SocketAddr::new(group, port);
        let source = delivered(&sender, to, b"looped", &member, None);
        assert_eq!(source.port(), sender.local_addr().unwrap().port());
        set_loop(false).unwrap();
        sender.send_to(b"not looped", to).unwrap();
        set_loop(true).unwrap();
        delivered(&sender, to, b"looped again", &member, Some(b"not looped"));
    }
}

on_both_backends! {
    tcp_peek_leaves_the_bytes_for_read: super::tcp_peek_leaves_the_bytes_for_read;
    listener_clone_accepts_after_the_original_is_gone: super::listener_clone_accepts_after_the_original_is_gone;
    listener_only_v6_reads_back: super::listener_only_v6_reads_back;
    udp_clone_is_the_same_socket: super::udp_clone_is_the_same_socket;
    multicast_options_read_back: super::multicast_options_read_back;
    multicast_ttl_is_the_hop_limit_on_the_wire: super::multicast_ttl_is_the_hop_limit_on_the_wire;
    multicast_hops_v6_is_the_hop_limit_on_the_wire: super::multicast_hops_v6_is_the_hop_limit_on_the_wire;
    multicast_loops_back_to_the_stacks_own_members: super::multicast_loops_back_to_the_stacks_own_members;
}
