//! The link as Linux runs it: IPv6 beside IPv4 (link-local addresses from the MAC,
//! neighbour discovery, IPv4 through IPv6 sockets), and `ip link set` changes of
//! the hardware address and the MTU on a running stack.
//!
//! Every test builds its own network in a temporary directory; nothing leaves the
//! machine.

mod common;

use common::{wait_for_dad, Net, TempDir, Wire};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::thread;
use vdestack::{Stack, TcpListener, TcpStream};

/// The link-local address the stack shows on `vde0` (`ip -6 addr show`).
fn link_local(stack: &Stack) -> Ipv6Addr {
    let out = stack
        .cmd_output("/bin/ip -6 addr show dev vde0")
        .expect("ip -6 addr show");
    let line = out
        .lines()
        .find(|l| l.contains("inet6 fe80:"))
        .unwrap_or_else(|| panic!("no link-local address in:\n{out}"));
    assert!(line.contains("scope link"), "{line}");
    let cidr = line.split_whitespace().nth(1).expect("address field");
    cidr.trim_end_matches("/64")
        .parse()
        .expect("an IPv6 address")
}

/// The EUI-64 link-local address Linux derives from `mac`.
fn eui64(mac: [u8; 6]) -> Ipv6Addr {
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 2,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

/// The hardware address the stack shows for `vde0` (`ip link show`).
fn mac_of(stack: &Stack) -> [u8; 6] {
    let out = stack
        .cmd_output("/bin/ip link show dev vde0")
        .expect("ip link show");
    let word = out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no link/ether in:\n{out}"));
    let mut mac = [0u8; 6];
    for (byte, hex) in mac.iter_mut().zip(word.split(':')) {
        *byte = u8::from_str_radix(hex, 16).expect("hex");
    }
    mac
}

/// Accepts `count` connections on `listener`, echoes each one to EOF, and returns
/// the peer addresses and local addresses the accepts reported.
fn echo_server(
    listener: TcpListener,
    count: usize,
) -> thread::JoinHandle<Vec<(SocketAddr, SocketAddr)>> {
    thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..count {
            let (mut conn, peer) = listener.accept().expect("accept");
            seen.push((peer, conn.local_addr().expect("local_addr")));
            let mut buf = [0u8; 4096];
            loop {
                let n = conn.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).expect("write");
            }
        }
        seen
    })
}

/// Sends a message over a new connection from `stack` to `to` and checks the echo;
/// returns the connection's local address.
fn round_trip(stack: &Stack, to: SocketAddr) -> SocketAddr {
    let mut conn = TcpStream::connect(stack, to).unwrap_or_else(|e| panic!("connect {to}: {e}"));
    let message = format!("hello {to}");
    conn.write_all(message.as_bytes()).expect("write");
    conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut echoed = String::new();
    conn.read_to_string(&mut echoed).expect("read");
    assert_eq!(echoed, message);
    conn.local_addr().expect("local_addr")
}

#[test]
fn ipv6_by_link_local_and_global_address_over_a_switch() {
    let net = Net::new(Wire::Switch);
    net.a
        .cmd("/bin/ip addr add 2001:db8::1/64 dev vde0")
        .unwrap();
    net.b
        .cmd("/bin/ip addr add 2001:db8::2/64 dev vde0")
        .unwrap();
    // Tentative for a second (duplicate address detection), as on Linux.
    wait_for_dad(&net.a);
    wait_for_dad(&net.b);
    let (a_ll, b_ll) = (link_local(&net.a), link_local(&net.b));
    assert_eq!(a_ll, eui64(mac_of(&net.a)), "EUI-64 from the MAC");
    assert_ne!(a_ll, b_ll);
    let routes = net.a.cmd_output("/bin/ip -6 route show").unwrap();
    assert!(
        routes.contains("fe80::/64 dev vde0 proto kernel metric 256"),
        "{routes}"
    );

    let listener = TcpListener::bind(&net.a, "[::]:7").unwrap();
    let server = echo_server(listener, 4);
    let to_ll = SocketAddr::V6(SocketAddrV6::new(a_ll, 7, 0, 2));
    assert_eq!(round_trip(&net.b, to_ll).ip(), IpAddr::V6(b_ll));
    let global: SocketAddr = "[2001:db8::1]:7".parse().unwrap();
    assert_eq!(
        round_trip(&net.b, global).ip(),
        "2001:db8::2".parse::<IpAddr>().unwrap()
    );
    // IPv4 reaches the IPv6 wildcard listener (IPV6_V6ONLY is off by default),
    // from a plain IPv4 socket and through a v4-mapped address.
    assert_eq!(
        round_trip(&net.b, "10.0.0.1:7".parse().unwrap()).ip(),
        "10.0.0.2".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        round_trip(&net.b, "[::ffff:10.0.0.1]:7".parse().unwrap()).ip(),
        "::ffff:10.0.0.2".parse::<IpAddr>().unwrap()
    );
    let seen = server.join().expect("server");
    let peers: Vec<IpAddr> = seen.iter().map(|(p, _)| p.ip()).collect();
    let locals: Vec<IpAddr> = seen.iter().map(|(_, l)| l.ip()).collect();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        peers,
        vec![
            IpAddr::V6(b_ll),
            ip("2001:db8::2"),
            ip("::ffff:10.0.0.2"),
            ip("::ffff:10.0.0.2")
        ]
    );
    assert_eq!(
        locals,
        vec![
            IpAddr::V6(a_ll),
            ip("2001:db8::1"),
            ip("::ffff:10.0.0.1"),
            ip("::ffff:10.0.0.1")
        ]
    );
}

#[test]
fn an_ipv4_listener_refuses_ipv6() {
    let net = Net::new(Wire::Switch);
    net.a
        .cmd("/bin/ip addr add 2001:db8::1/64 dev vde0")
        .unwrap();
    net.b
        .cmd("/bin/ip addr add 2001:db8::2/64 dev vde0")
        .unwrap();
    // Tentative for a second (duplicate address detection), as on Linux.
    wait_for_dad(&net.a);
    wait_for_dad(&net.b);
    let _listener = TcpListener::bind(&net.a, "0.0.0.0:7").unwrap();
    let err = TcpStream::connect(&net.b, "[2001:db8::1]:7").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
}

#[test]
fn ipv6_loopback() {
    let stack = Stack::new("", None).unwrap();
    let err = TcpStream::connect(&stack, "[::1]:7").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH), "{err}");
    stack.cmd("/bin/ip link set lo up").unwrap();
    let shown = stack.cmd_output("/bin/ip -6 addr show dev lo").unwrap();
    assert!(shown.contains("inet6 ::1/128 scope host"), "{shown}");
    let listener = TcpListener::bind(&stack, "[::]:7").unwrap();
    let server = echo_server(listener, 2);
    round_trip(&stack, "[::1]:7".parse().unwrap());
    round_trip(&stack, "127.0.0.1:7".parse().unwrap());
    let seen = server.join().unwrap();
    assert_eq!(seen[0].0.ip(), "::1".parse::<IpAddr>().unwrap());
    assert_eq!(
        seen[1].0.ip(),
        "::ffff:127.0.0.1".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn a_new_hardware_address_is_reachable_at_once() {
    let net = Net::new(Wire::Switch);
    net.a
        .cmd("/bin/ip addr add 2001:db8::1/64 dev vde0")
        .unwrap();
    net.b
        .cmd("/bin/ip addr add 2001:db8::2/64 dev vde0")
        .unwrap();
    // Tentative for a second (duplicate address detection), as on Linux.
    wait_for_dad(&net.a);
    wait_for_dad(&net.b);
    let listener = TcpListener::bind(&net.a, "[::]:7").unwrap();
    let server = echo_server(listener, 4);
    let targets: [SocketAddr; 2] = [
        "10.0.0.1:7".parse().unwrap(),
        "[2001:db8::1]:7".parse().unwrap(),
    ];
    // b caches a's old address (smoltcp keeps a neighbour for 60 s).
    for to in targets {
        round_trip(&net.b, to);
    }
    net.a
        .cmd("/bin/ip link set vde0 address 02:00:5e:10:20:30")
        .unwrap();
    assert_eq!(mac_of(&net.a), [0x02, 0, 0x5e, 0x10, 0x20, 0x30]);
    // The announcement reached b: a connect completes well before any cache
    // expiry (the connect would otherwise time out).
    for to in targets {
        let mut conn = TcpStream::connect_timeout(&net.b, &to, std::time::Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect {to} after the change: {e}"));
        conn.write_all(b"after").unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut echoed = Vec::new();
        conn.read_to_end(&mut echoed).unwrap();
        assert_eq!(echoed, b"after");
    }
    server.join().unwrap();
}

/// The lengths of the frames in a pcap file.
fn pcap_frame_lengths(path: &std::path::Path) -> Vec<usize> {
    let bytes = std::fs::read(path).expect("read the capture");
    assert!(bytes.len() >= 24, "a pcap header");
    let mut at = 24;
    let mut lengths = Vec::new();
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let len = u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap()) as usize;
        lengths.push(len);
        at += 16 + caplen;
    }
    lengths
}

/// Sends `len` bytes from `b` to `a` (a listening on port 9) and returns when all
/// arrived intact.
fn transfer(a: &Stack, b: &Stack, len: usize) {
    let listener = TcpListener::bind(a, "0.0.0.0:9").unwrap();
    let reader = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = Vec::with_capacity(len);
        conn.read_to_end(&mut got).unwrap();
        got
    });
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut conn = TcpStream::connect(b, "10.0.0.1:9").unwrap();
    conn.write_all(&data).unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let got = reader.join().unwrap();
    assert!(got == data, "{} of {len} bytes, intact: false", got.len());
}

#[test]
fn jumbo_frames_over_ptp_after_ip_link_set_mtu() {
    let dir = TempDir::new("jumbo");
    let vnl = format!("ptp://{}", dir.path().join("link").display());
    let capture = dir.path().join("a.pcap");
    let a = Stack::builder()
        .vnl(&vnl)
        .pcap(&capture)
        .build()
        .expect("stack a");
    let b = Stack::new(&vnl, None).expect("stack b");
    a.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")
        .unwrap();
    b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")
        .unwrap();
    // The link's limit: a VDE frame carries 9000 bytes of payload at most. Linux
    // refuses a tap's MTU above its own maximum with the same words and status.
    let err = a.cmd("/bin/ip link set vde0 mtu 9001").unwrap_err();
    assert_eq!(err.status(), 2, "{err}");
    assert!(
        err.to_string().contains("mtu greater than device maximum"),
        "{err}"
    );
    transfer(&a, &b, 1 << 20);
    for s in [&a, &b] {
        s.cmd("/bin/ip link set vde0 mtu 9000").unwrap();
    }
    let shown = a.cmd_output("/bin/ip link show dev vde0").unwrap();
    assert!(shown.contains("mtu 9000"), "{shown}");
    transfer(&a, &b, 4 << 20);
    drop(a); // flushes the capture
    let lengths = pcap_frame_lengths(&capture);
    let largest = lengths.iter().copied().max().unwrap_or(0);
    let jumbo = lengths.iter().filter(|&&l| l > 1514).count();
    assert_eq!(
        largest, 9014,
        "9000 bytes of IP in a 14-byte Ethernet header"
    );
    assert!(jumbo > 400, "4 MiB in jumbo frames: {jumbo} of them");
}

/// MB/s (1e6 bytes) of `mib` MiB one way from `b` to `a` at `to` (a listens on
/// its port), from the first write to the last byte read.
fn throughput(a: &Stack, b: &Stack, to: SocketAddr, mib: usize) -> f64 {
    let listener = TcpListener::bind(a, SocketAddr::new(to.ip(), to.port())).unwrap();
    let reader = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        loop {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                return total;
            }
            total += n;
        }
    });
    let buf = vec![0x5au8; 64 * 1024];
    let mut conn = TcpStream::connect(b, to).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..mib * 16 {
        conn.write_all(&buf).unwrap();
    }
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(reader.join().unwrap(), mib << 20);
    (mib << 20) as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// Figures, not a check: `cargo test --release --test link_runtime -- --ignored
/// --nocapture` (set `VDESTACK_MIB`, default 256).
#[test]
#[ignore = "a measurement; run it on a quiet machine"]
fn measure_mtu_and_ipv6_throughput() {
    let mib: usize = std::env::var("VDESTACK_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    for mtu in [1500, 9000] {
        let dir = TempDir::new("measure");
        let vnl = format!("ptp://{}", dir.path().join("link").display());
        let (a, b) = (
            Stack::new(&vnl, None).unwrap(),
            Stack::new(&vnl, None).unwrap(),
        );
        for (s, ip) in [(&a, "10.0.0.1"), (&b, "10.0.0.2")] {
            s.cmd(&format!(
                "/bin/ip link set vde0 mtu {mtu} up; /bin/ip addr add {ip}/24 dev vde0"
            ))
            .unwrap();
        }
        let rate = throughput(&a, &b, "10.0.0.1:9".parse().unwrap(), mib);
        println!("ptp, MTU {mtu}, IPv4: {rate:.0} MB/s");
    }
    let net = Net::new(Wire::Switch);
    net.a
        .cmd("/bin/ip addr add 2001:db8::1/64 dev vde0")
        .unwrap();
    net.b
        .cmd("/bin/ip addr add 2001:db8::2/64 dev vde0")
        .unwrap();
    // Tentative for a second (duplicate address detection), as on Linux.
    wait_for_dad(&net.a);
    wait_for_dad(&net.b);
    for to in ["10.0.0.1:9", "[2001:db8::1]:10"] {
        let rate = throughput(&net.a, &net.b, to.parse().unwrap(), mib);
        println!("vde_switch, MTU 1500, to {to}: {rate:.0} MB/s");
    }
}
