//! Names resolved through a stack (`Stack::lookup_host`, and the socket
//! constructors given `"name:port"`): a name server on a second stack answers
//! with responses written here byte by byte (RFC 1035), not made by the crate's
//! own message code; `localhost` and numeric addresses need no server. And a
//! stack's interfaces (`Stack::interfaces`) are what its `ip addr show` shows.

mod common;

use common::configure;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::thread::JoinHandle;
use std::time::Duration;
use vdestack::dns::ResolverOptions;
use vdestack::link::MemoryLink;
use vdestack::{Stack, TcpListener, TcpStream, UdpSocket};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// A client stack (10.0.0.1) and a server stack (10.0.0.2) on a memory link; the
/// client asks 10.0.0.2 for names, 1 s per try, one round.
fn joined() -> (Stack, Stack) {
    let (left, right) = MemoryLink::pair().unwrap();
    let client = Stack::builder()
        .link(left)
        .name_servers([IpAddr::V4(SERVER)])
        .resolver_options(ResolverOptions {
            timeout: Duration::from_secs(1),
            attempts: 1,
            ..ResolverOptions::default()
        })
        .build()
        .unwrap();
    let server = Stack::builder().link(right).build().unwrap();
    configure(&client, "vde0", "10.0.0.1/24");
    configure(&server, "vde0", "10.0.0.2/24");
    (client, server)
}

/// The query's name (dotted) and the offset just after its question section.
fn question(query: &[u8]) -> (String, usize, u16) {
    let mut labels = Vec::new();
    let mut at = 12;
    while query[at] != 0 {
        let len = usize::from(query[at]);
        labels.push(String::from_utf8_lossy(&query[at + 1..at + 1 + len]).into_owned());
        at += 1 + len;
    }
    let qtype = u16::from_be_bytes([query[at + 1], query[at + 2]]);
    (labels.join("."), at + 5, qtype)
}

/// A response to `query`: its id and question, the flags' low byte `rcode_flags`
/// (0x80: recursion available, no error), `count` answers as `records`.
fn response(query: &[u8], end: usize, flags: [u8; 2], count: u8, records: &[u8]) -> Vec<u8> {
    let mut out = query[..2].to_vec();
    out.extend_from_slice(&flags);
    out.extend_from_slice(&[0, 1, 0, count, 0, 0, 0, 0]);
    out.extend_from_slice(&query[12..end]);
    out.extend_from_slice(records);
    out
}

/// An A record for the question's name (a pointer to offset 12).
const A_10_0_0_2: &[u8] = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x02";

/// The answer the server gives to `query`, or none (the name `silent.test`).
fn answer(query: &[u8]) -> Option<Vec<u8>> {
    let (name, end, qtype) = question(query);
    let name = name.to_ascii_lowercase();
    let ok = [0x81, 0x80];
    Some(match (name.as_str(), qtype) {
        ("server.test", 1) => response(query, end, ok, 1, A_10_0_0_2),
        ("v6.test", 28) => response(
            query,
            end,
            ok,
            1,
            b"\xc0\x0c\x00\x1c\x00\x01\x00\x00\x00\x3c\x00\x10\
              \x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02",
        ),
        ("alias.test", 1) => {
            // alias.test CNAME server.test; server.test A 10.0.0.2, its owner a
            // pointer to the CNAME's data (12 bytes after the question).
            let target = (end + 12) as u8;
            let mut records =
                b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x0d\x06server\x04test\x00".to_vec();
            records.extend_from_slice(&[0xc0, target]);
            records.extend_from_slice(&A_10_0_0_2[2..]);
            response(query, end, ok, 2, &records)
        }
        ("missing.test", _) => response(query, end, [0x81, 0x83], 0, b""),
        ("broken.test", _) => response(query, end, [0x81, 0x82], 0, b""),
        ("silent.test", _) => return None,
        // Too big for UDP: truncated (TC), no records; asked again over TCP.
        ("big.test", 1) => response(query, end, [0x83, 0x80], 0, b""),
        // The name exists, with no record of the type asked.
        _ => response(query, end, ok, 0, b""),
    })
}

/// Serves names on `stack`'s 10.0.0.2:53 until `stop.test` is asked. Before each
/// true answer it sends a decoy: the same answer with another id, carrying
/// 10.9.9.9, which the resolver must ignore.
fn name_server(stack: &Stack) -> JoinHandle<()> {
    let socket = UdpSocket::bind(stack, (SERVER, 53)).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        loop {
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            let query = &buf[..n];
            if question(query).0 == "stop.test" {
                return;
            }
            if let Some(reply) = answer(query) {
                let mut decoy = reply.clone();
                decoy[0] ^= 0x5a;
                if let Some(at) = decoy.windows(4).position(|w| w == [10, 0, 0, 2]) {
                    decoy[at..at + 4].copy_from_slice(&[10, 9, 9, 9]);
                }
                socket.send_to(&decoy, from).unwrap();
                socket.send_to(&reply, from).unwrap();
            }
        }
    })
}

/// Serves one query over TCP on `stack`'s 10.0.0.2:53 (RFC 7766: each message
/// after its length in two bytes): big.test A 10.0.0.2.
fn tcp_name_server(stack: &Stack) -> JoinHandle<()> {
    let listener = TcpListener::bind(stack, (SERVER, 53)).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut query).unwrap();
        let (_, end, _) = question(&query);
        let reply = response(&query, end, [0x81, 0x80], 1, A_10_0_0_2);
        stream
            .write_all(&(reply.len() as u16).to_be_bytes())
            .unwrap();
        stream.write_all(&reply).unwrap();
    })
}

fn stop(client: &Stack, server: JoinHandle<()>) {
    let _ = client.lookup_host("stop.test");
    server.join().unwrap();
}

#[test]
fn names_resolve_through_the_stacks_name_server() {
    let (client, server_stack) = joined();
    let server = name_server(&server_stack);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();

    assert_eq!(
        client.lookup_host("server.test").unwrap(),
        vec![ip("10.0.0.2")]
    );
    assert_eq!(
        client.lookup_host("Server.Test.").unwrap(),
        vec![ip("10.0.0.2")]
    );
    assert_eq!(
        client.lookup_host("v6.test").unwrap(),
        vec![ip("2001:db8::2")]
    );
    assert_eq!(
        client.lookup_host("alias.test").unwrap(),
        vec![ip("10.0.0.2")]
    );

    let missing = client.lookup_host("missing.test").unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    assert!(missing.to_string().contains("NXDOMAIN"), "{missing}");
    let empty = client.lookup_host("empty.test").unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::NotFound, "{empty}");
    let broken = client.lookup_host("broken.test").unwrap_err();
    assert_eq!(broken.kind(), ErrorKind::ConnectionRefused, "{broken}");
    let silent = client.lookup_host("silent.test").unwrap_err();
    assert_eq!(silent.kind(), ErrorKind::TimedOut, "{silent}");
    // One raw query, as C's res_query sends it: the response's bytes.
    let raw = client
        .query_dns("server.test", vdestack::dns::RecordType::A)
        .unwrap();
    assert_eq!(raw[raw.len() - 4..], [10, 0, 0, 2]);
    let raw = client
        .query_dns("missing.test", vdestack::dns::RecordType::A)
        .unwrap();
    assert_eq!(raw[3] & 0x0f, 3, "NXDOMAIN");

    let tcp = tcp_name_server(&server_stack);
    assert_eq!(
        client.lookup_host("big.test").unwrap(),
        vec![ip("10.0.0.2")]
    );
    tcp.join().unwrap();
    let bad = client.lookup_host("a..b").unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput, "{bad}");

    // The socket constructors resolve through the stack too.
    let listener = TcpListener::bind(&server_stack, "0.0.0.0:80").unwrap();
    let mut stream = TcpStream::connect(&client, "server.test:80").unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    stream.write_all(b"hi").unwrap();
    let mut buf = [0; 2];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    let stream = TcpStream::connect(&client, ("alias.test", 80)).unwrap();
    assert_eq!(stream.peer_addr().unwrap(), "10.0.0.2:80".parse().unwrap());

    stop(&client, server);
}

#[test]
fn localhost_and_numbers_need_no_name_server() {
    let stack = Stack::builder().build().unwrap();
    stack.cmd("/bin/ip link set lo up").unwrap();
    assert!(stack.name_servers().is_empty());
    let local = stack.lookup_host("localhost").unwrap();
    assert!(
        local.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
        "{local:?}"
    );
    assert_eq!(
        stack.lookup_host("192.0.2.7").unwrap(),
        vec!["192.0.2.7".parse::<IpAddr>().unwrap()]
    );
    let listener = TcpListener::bind(&stack, "127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stream = TcpStream::connect(&stack, format!("localhost:{port}")).unwrap();
    assert_eq!(stream.peer_addr().unwrap().port(), port);

    // No server: a name is not found, and never asked of the host's resolver.
    let e = stack.lookup_host("server.test").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("no name server"), "{e}");

    // A socket's send_to has no stack to ask: names are refused, addresses work.
    let udp = UdpSocket::bind(&stack, "127.0.0.1:0").unwrap();
    let e = udp.send_to(b"x", "server.test:9").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let to: SocketAddr = udp.local_addr().unwrap();
    assert_eq!(udp.send_to(b"x", to).unwrap(), 1);

    stack.set_name_servers(["10.0.0.53".parse().unwrap()]);
    assert_eq!(
        stack.name_servers(),
        vec!["10.0.0.53".parse::<IpAddr>().unwrap()]
    );
}

/// `Stack::interfaces` is what `ip addr show` shows, on both backends.
#[test]
fn interfaces_are_the_stacks() {
    let mut backends = vec![vdestack::Backend::Userspace];
    if common::kernel_available("interfaces_are_the_stacks") {
        backends.push(vdestack::Backend::Kernel);
    }
    for backend in backends {
        let (left, _right) = MemoryLink::pair().unwrap();
        let stack = Stack::builder()
            .link(left)
            .backend(backend)
            .build()
            .unwrap();
        stack.cmd("/bin/ip link set lo up").unwrap();
        configure(&stack, "vde0", "10.0.0.1/24");
        let interfaces = stack.interfaces().unwrap();
        let lo = interfaces.iter().find(|i| i.name == "lo").unwrap();
        assert!(
            lo.flags.loopback && lo.flags.up && lo.flags.running,
            "{lo:?}"
        );
        assert!(lo
            .addrs
            .iter()
            .any(|a| a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST) && a.prefix_len == 8));
        let vde0 = interfaces.iter().find(|i| i.name == "vde0").unwrap();
        assert!(
            vde0.flags.up && vde0.flags.broadcast && vde0.flags.multicast,
            "{backend:?}: {vde0:?}"
        );
        assert!(!vde0.flags.loopback);
        assert_ne!(vde0.mac, [0; 6]);
        assert_eq!(vde0.mtu, 1500, "{backend:?}");
        assert_eq!(vde0.addrs[0].addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(vde0.addrs[0].prefix_len, 24);
        assert_ne!(lo.index, vde0.index);
    }
}

/// A renamed interface is found by its new name: `Stack::ifname`, the
/// interfaces (what `if_nametoindex` and `getifaddrs` read), the commands.
#[test]
fn a_renamed_interface_goes_by_its_new_name() {
    let (left, _right) = MemoryLink::pair().unwrap();
    let stack = Stack::builder().link(left).build().unwrap();
    configure(&stack, "vde0", "10.0.0.1/24");
    stack.cmd("/bin/ip link set vde0 name eth3").unwrap();
    assert_eq!(stack.ifname(), "eth3");
    let interfaces = stack.interfaces().unwrap();
    assert!(
        interfaces.iter().all(|i| i.name != "vde0"),
        "{interfaces:?}"
    );
    let eth3 = interfaces.iter().find(|i| i.name == "eth3").unwrap();
    assert!(
        eth3.flags.up,
        "renamed while up, as Linux 6.2 and later allow"
    );
    assert_eq!(eth3.addrs[0].addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    stack.cmd("/bin/ip addr add 10.0.1.1/24 dev eth3").unwrap();
    assert!(stack.cmd("/bin/ip addr add 10.0.2.1/24 dev vde0").is_err());
}
