//! UDP between two userspace stacks, over a `vde_switch` and over `ptp://`.
//!
//! UDP may lose datagrams on a busy switch, so exchanges that must complete retry a
//! bounded number of times; what is checked is what UDP promises: a datagram that
//! arrives is whole, unmerged and from the address it says.

mod common;

use common::{errno, Backend, Net, Wire};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;
use vdestack::UdpSocket;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The content of the test datagram number `i`: its size varies, every byte
/// depends on `i`, so a merged, split or corrupted datagram shows.
fn datagram(i: u32) -> Vec<u8> {
    let len = (i as usize * 37) % 1400;
    let mut data = i.to_le_bytes().to_vec();
    data.extend((0..len).map(|k| (k as u32).wrapping_mul(31).wrapping_add(i) as u8));
    data
}

fn check_datagram(bytes: &[u8]) -> u32 {
    assert!(bytes.len() >= 4, "short datagram of {} bytes", bytes.len());
    let i = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    assert!(bytes == datagram(i), "datagram {i} arrived altered");
    i
}

/// Sends `request` to `to` until an answer comes (bounded), returning it.
///
/// A request sent again after a timeout may be answered twice: a reply of
/// another length than the request is such a late answer to an earlier
/// exchange, and is passed over (every exchange of a test differs in length
/// from the one before, so that an altered reply is still seen).
fn exchange(socket: &UdpSocket, request: &[u8], to: SocketAddr) -> (Vec<u8>, SocketAddr) {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 65_536];
    for _ in 0..25 {
        socket.send_to(request, to).unwrap();
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, _)) if n != request.len() => continue,
                Ok((n, from)) => return (buf[..n].to_vec(), from),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv_from: {e}"),
            }
        }
    }
    panic!("no answer from {to} after 25 tries");
}

/// A thread echoing every datagram back to its source until it gets "stop",
/// which it answers with "stopped".
fn echo_server(socket: UdpSocket) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        let mut echoed = 0;
        loop {
            let (n, from) = socket.recv_from(&mut buf).expect("echo recv_from");
            if &buf[..n] == b"stop" {
                socket.send_to(b"stopped", from).expect("echo send_to");
                return echoed;
            }
            socket.send_to(&buf[..n], from).expect("echo send_to");
            echoed += 1;
        }
    })
}

/// Stops an echo server. The stop datagram or its answer may be lost too: it is
/// repeated until the answer comes or the server has ended (bounded).
fn stop(server: SocketAddr, via: &UdpSocket, handle: thread::JoinHandle<u64>) -> u64 {
    via.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 16];
    for _ in 0..25 {
        if handle.is_finished() {
            break;
        }
        via.send_to(b"stop", server).unwrap();
        if matches!(via.recv_from(&mut buf), Ok((7, _)) if &buf[..7] == b"stopped") {
            break;
        }
    }
    handle.join().expect("echo server")
}

fn echo_with_addresses(wire: Wire, b: Backend) {
    let net = Net::with_backends(wire, b, b);
    let server = UdpSocket::bind(&net.a, "0.0.0.0:7").unwrap();
    assert_eq!(server.local_addr().unwrap(), addr("0.0.0.0:7"));
    let echo = echo_server(server);
    let client = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    let local = client.local_addr().unwrap();
    assert!(local.port() >= 32768, "ephemeral port {local}");
    let (reply, from) = exchange(&client, b"hello", addr("10.0.0.1:7"));
    assert_eq!(reply, b"hello");
    assert_eq!(from, addr("10.0.0.1:7"));
    stop(addr("10.0.0.1:7"), &client, echo);
}

/// 1,000 datagrams of varying sizes, each echoed before the next: each must come
/// back whole, and the echo server must see the client's true address.
fn thousand_datagrams(wire: Wire, b: Backend) {
    let net = Net::with_backends(wire, b, b);
    let echo = echo_server(UdpSocket::bind(&net.a, "10.0.0.1:9000").unwrap());
    let client = UdpSocket::bind(&net.b, "10.0.0.2:0").unwrap();
    client.connect("10.0.0.1:9000").unwrap();
    assert_eq!(client.peer_addr().unwrap(), addr("10.0.0.1:9000"));
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 2048];
    for i in 0..1000 {
        let sent = datagram(i);
        let mut answered = false;
        for _ in 0..25 {
            client.send(&sent).unwrap();
            match client.recv(&mut buf) {
                Ok(n) => {
                    // A late echo of an earlier retry is possible; never a broken one.
                    if check_datagram(&buf[..n]) == i {
                        answered = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        assert!(answered, "datagram {i} never came back");
    }
    let unconnected = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    assert!(stop(addr("10.0.0.1:9000"), &unconnected, echo) >= 1000);
}

fn a_burst_loses_datagrams_but_never_merges_or_alters_them(b: Backend) {
    let net = Net::with_backends(Wire::Switch, b, b);
    let server = UdpSocket::bind(&net.a, "0.0.0.0:9001").unwrap();
    let client = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    for i in 0..1000 {
        client.send_to(&datagram(i), "10.0.0.1:9001").unwrap();
    }
    server
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let mut seen = vec![false; 1000];
    loop {
        match server.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert_eq!(
                    from,
                    SocketAddr::new(addr("10.0.0.2:0").ip(), client.local_addr().unwrap().port())
                );
                let i = check_datagram(&buf[..n]) as usize;
                assert!(!seen[i], "datagram {i} arrived twice");
                seen[i] = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("recv_from: {e}"),
        }
    }
    let arrived = seen.iter().filter(|&&s| s).count();
    eprintln!(
        "burst: {arrived} of 1000 datagrams arrived, {} dropped by the receive queue",
        server.dropped()
    );
    assert!(arrived > 0);
}

fn large_datagrams(wire: Wire, b: Backend) {
    let net = Net::with_backends(wire, b, b);
    let echo = echo_server(UdpSocket::bind(&net.a, "0.0.0.0:7").unwrap());
    let client = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    for size in [60_000usize, 65_507] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let (reply, _) = exchange(&client, &data, addr("10.0.0.1:7"));
        assert_eq!(reply.len(), size);
        assert!(reply == data, "{size}-byte datagram altered");
    }
    let too_big = vec![0u8; 65_508];
    assert_eq!(
        errno(&client.send_to(&too_big, "10.0.0.1:7").unwrap_err()),
        libc::EMSGSIZE
    );
    stop(addr("10.0.0.1:7"), &client, echo);
}

fn broadcast_needs_so_broadcast(b: Backend) {
    let net = Net::with_backends(Wire::Switch, b, b);
    let server = UdpSocket::bind(&net.a, "0.0.0.0:67").unwrap();
    let client = UdpSocket::bind(&net.b, "0.0.0.0:68").unwrap();
    assert!(!client.broadcast().unwrap());
    assert_eq!(
        errno(&client.send_to(b"x", "10.0.0.255:67").unwrap_err()),
        libc::EACCES
    );
    client.set_broadcast(true).unwrap();
    assert!(client.broadcast().unwrap());
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    let mut heard = None;
    for _ in 0..25 {
        client.send_to(b"discover", "10.0.0.255:67").unwrap();
        if let Ok(got) = server.recv_from(&mut buf) {
            heard = Some(got);
            break;
        }
    }
    let (n, from) = heard.expect("the broadcast never arrived");
    assert_eq!((&buf[..n], from), (&b"discover"[..], addr("10.0.0.2:68")));
}

fn connected_sockets_filter_and_report_a_closed_port(b: Backend) {
    let net = Net::with_backends(Wire::Switch, b, b);
    let peer = UdpSocket::bind(&net.a, "0.0.0.0:5001").unwrap();
    let stranger = UdpSocket::bind(&net.a, "0.0.0.0:5002").unwrap();
    let client = UdpSocket::bind(&net.b, "0.0.0.0:6000").unwrap();
    client.connect("10.0.0.1:5001").unwrap();
    assert_eq!(client.local_addr().unwrap(), addr("10.0.0.2:6000"));
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    let mut got = None;
    for _ in 0..25 {
        stranger.send_to(b"stranger", "10.0.0.2:6000").unwrap();
        peer.send_to(b"peer", "10.0.0.2:6000").unwrap();
        if let Ok(n) = client.recv(&mut buf) {
            got = Some(buf[..n].to_vec());
            break;
        }
    }
    assert_eq!(
        got.as_deref(),
        Some(&b"peer"[..]),
        "only the peer's datagrams"
    );
    // A send to a closed port: the ICMP port unreachable comes back as ECONNREFUSED
    // on the next call, as on Linux.
    client.connect("10.0.0.1:5003").unwrap();
    let mut refused = false;
    for _ in 0..25 {
        match client.send(b"anyone?") {
            Err(e) if errno(&e) == libc::ECONNREFUSED => refused = true,
            Err(e) => panic!("send: {e}"),
            Ok(_) => {}
        }
        match client.recv(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if errno(&e) == libc::ECONNREFUSED => refused = true,
            other => panic!("recv gave {other:?}"),
        }
        if refused {
            break;
        }
    }
    assert!(refused, "no ECONNREFUSED");
    // As on Linux, a connected socket may still send to another address.
    client.send_to(b"x", "10.0.0.1:5001").unwrap();
}

/// UDP ports are held per family as TCP's are, as on Linux: `0.0.0.0:P` and
/// `[::]:P` with IPV6_V6ONLY both bind (the dual bind of ncat, sshd, dnsmasq)
/// and each gets its family's datagrams; without IPV6_V6ONLY they conflict,
/// in either order.
fn ipv4_and_v6only_sockets_share_a_port(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    net.add_ipv6();
    let v6only = vdestack::SocketConfig::new().only_v6(true);
    let v4 = UdpSocket::bind(&net.a, "0.0.0.0:7001").unwrap();
    let v6 = UdpSocket::bind_with(&net.a, "[::]:7001", &v6only).unwrap();
    assert_eq!(
        errno(&UdpSocket::bind(&net.a, "[::]:7001").unwrap_err()),
        libc::EADDRINUSE,
        "a dual-stack socket meets the IPv4 one"
    );
    drop(v4);
    assert_eq!(
        errno(&UdpSocket::bind(&net.a, "[::]:7001").unwrap_err()),
        libc::EADDRINUSE,
        "and the IPv6 one"
    );
    let dual = {
        drop(v6);
        UdpSocket::bind(&net.a, "[::]:7001").unwrap()
    };
    assert_eq!(
        errno(&UdpSocket::bind(&net.a, "0.0.0.0:7001").unwrap_err()),
        libc::EADDRINUSE,
        "an IPv4 socket meets a dual-stack one"
    );
    drop(dual);
    let v6 = UdpSocket::bind_with(&net.a, "[::]:7001", &v6only).unwrap();
    let v4 = UdpSocket::bind(&net.a, "0.0.0.0:7001").unwrap();
    for s in [&v4, &v6] {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    let from4 = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    let from6 = UdpSocket::bind(&net.b, "[::]:0").unwrap();
    let mut buf = [0u8; 8];
    let mut got = |socket: &UdpSocket, sender: &UdpSocket, to: &str, what: &[u8]| {
        for _ in 0..50 {
            sender.send_to(what, to).unwrap();
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                return buf[..n].to_vec();
            }
        }
        panic!("nothing for {to}");
    };
    assert_eq!(got(&v4, &from4, "10.0.0.1:7001", b"four"), b"four");
    assert_eq!(got(&v6, &from6, "[fd00::1]:7001", b"six"), b"six");
}

fn errors_of_bind_and_send(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let socket = UdpSocket::bind(&net.b, "0.0.0.0:7000").unwrap();
    assert_eq!(
        errno(&UdpSocket::bind(&net.b, "0.0.0.0:7000").unwrap_err()),
        libc::EADDRINUSE
    );
    assert_eq!(
        errno(&UdpSocket::bind(&net.b, "10.0.0.9:0").unwrap_err()),
        libc::EADDRNOTAVAIL
    );
    assert_eq!(errno(&socket.send(b"x").unwrap_err()), libc::EDESTADDRREQ);
    assert_eq!(
        errno(&socket.send_to(b"x", "192.168.7.7:9").unwrap_err()),
        libc::ENETUNREACH
    );
    assert_eq!(
        errno(&socket.connect("192.168.7.7:9").unwrap_err()),
        libc::ENETUNREACH
    );
    assert_eq!(errno(&socket.peer_addr().unwrap_err()), libc::ENOTCONN);
    assert_eq!(
        errno(&socket.send_to(b"x", "[2001:db8::1]:9").unwrap_err()),
        libc::EAFNOSUPPORT
    );
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        socket.recv_from(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    socket.set_nonblocking(false).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(
        socket.read_timeout().unwrap(),
        Some(Duration::from_millis(100))
    );
    assert_eq!(
        socket.recv_from(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    socket.set_ttl(7).unwrap();
    assert_eq!(socket.ttl().unwrap(), 7);
    assert_eq!(errno(&socket.set_ttl(0).unwrap_err()), libc::EINVAL);
    // Its port is free again once the socket is dropped (and no process
    // started by another test's fixture holds a copy: see `no_new_processes`).
    let _alone = common::no_new_processes();
    drop(socket);
    UdpSocket::bind(&net.b, "0.0.0.0:7000").unwrap();
}

fn many_readers_each_get_the_true_source(b: Backend) {
    let net = Net::with_backends(Wire::Switch, b, b);
    let server = std::sync::Arc::new(UdpSocket::bind(&net.a, "0.0.0.0:8000").unwrap());
    server
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let server = server.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 64];
                let mut count = 0;
                while let Ok((n, from)) = server.recv_from(&mut buf) {
                    let claimed: u16 = std::str::from_utf8(&buf[..n]).unwrap().parse().unwrap();
                    assert_eq!(claimed, from.port(), "the source belongs to its datagram");
                    count += 1;
                }
                count
            })
        })
        .collect();
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let socket = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
            thread::spawn(move || {
                let port = socket.local_addr().unwrap().port();
                for _ in 0..200 {
                    socket
                        .send_to(port.to_string().as_bytes(), "10.0.0.1:8000")
                        .unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let received: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(received > 0);
}

fn ipv6_datagrams(b: Backend) {
    let net = Net::with_backends(Wire::Switch, b, b);
    net.add_ipv6();
    let echo = echo_server(UdpSocket::bind(&net.a, "[::]:7").unwrap());
    let client = UdpSocket::bind(&net.b, "[::]:0").unwrap();
    let (reply, from) = exchange(&client, b"over v6", addr("[fd00::1]:7"));
    assert_eq!(
        (reply.as_slice(), from),
        (&b"over v6"[..], addr("[fd00::1]:7"))
    );
    // Beyond the MTU, IPv6 datagrams go in fragments both ways, up to the
    // largest UDP payload IPv6 carries (65,535 bytes less the UDP header).
    for size in [1_453usize, 8_000, 60_000, 65_527] {
        let data: Vec<u8> = (0..size).map(|i| (i % 249) as u8).collect();
        let (reply, from) = exchange(&client, &data, addr("[fd00::1]:7"));
        assert_eq!(from, addr("[fd00::1]:7"));
        assert!(reply == data, "{size}-byte IPv6 datagram altered");
    }
    assert_eq!(
        errno(
            &client
                .send_to(&vec![0u8; 65_528], "[fd00::1]:7")
                .unwrap_err()
        ),
        libc::EMSGSIZE
    );
    // The IPv6 server also hears IPv4 clients, as v4-mapped addresses.
    let v4 = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    let (reply, from) = exchange(&v4, b"over v4", addr("10.0.0.1:7"));
    assert_eq!(
        (reply.as_slice(), from),
        (&b"over v4"[..], addr("10.0.0.1:7"))
    );
    stop(addr("[fd00::1]:7"), &client, echo);
}

fn the_descriptor_of_a_connected_socket_reads_and_writes_bare_datagrams(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let echo = echo_server(UdpSocket::bind(&net.a, "0.0.0.0:7").unwrap());
    let client = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    client.connect("10.0.0.1:7").unwrap();
    let fd = client.as_raw_fd();
    let mut buf = [0u8; 64];
    let mut answer = None;
    for _ in 0..25 {
        // SAFETY: `fd` is the open socket `client` owns; the buffers are live.
        let sent = unsafe { libc::write(fd, b"raw".as_ptr().cast(), 3) };
        assert_eq!(sent, 3);
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 200) } == 1 {
            // SAFETY: as above.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            answer = Some(buf[..n as usize].to_vec());
            break;
        }
    }
    assert_eq!(answer.as_deref(), Some(&b"raw"[..]));
    let other = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    stop(addr("10.0.0.1:7"), &other, echo);
}

#[test]
fn a_dropped_stack_fails_its_udp_sockets_cleanly() {
    let net = Net::new(Wire::Ptp);
    let socket = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    let Net { a, b, .. } = net;
    drop(b);
    let mut buf = [0u8; 8];
    assert_eq!(
        errno(&socket.recv_from(&mut buf).unwrap_err()),
        libc::ENETDOWN
    );
    assert_eq!(
        errno(&socket.send_to(b"x", "10.0.0.1:9").unwrap_err()),
        libc::ENETDOWN
    );
    drop(a);
}

on_both_backends! {
    echo_with_addresses_over_a_switch: |b| echo_with_addresses(Wire::Switch, b);
    echo_with_addresses_over_ptp: |b| echo_with_addresses(Wire::Ptp, b);
    thousand_datagrams_over_a_switch: |b| thousand_datagrams(Wire::Switch, b);
    thousand_datagrams_over_ptp: |b| thousand_datagrams(Wire::Ptp, b);
    datagrams_of_60000_bytes_and_more_over_a_switch: |b| large_datagrams(Wire::Switch, b);
    datagrams_of_60000_bytes_and_more_over_ptp: |b| large_datagrams(Wire::Ptp, b);
    a_burst_loses_datagrams_but_never_merges_or_alters_them: super::a_burst_loses_datagrams_but_never_merges_or_alters_them;
    broadcast_needs_so_broadcast: super::broadcast_needs_so_broadcast;
    connected_sockets_filter_and_report_a_closed_port: super::connected_sockets_filter_and_report_a_closed_port;
    errors_of_bind_and_send: super::errors_of_bind_and_send;
    ipv4_and_v6only_sockets_share_a_port: super::ipv4_and_v6only_sockets_share_a_port;
    many_readers_each_get_the_true_source: super::many_readers_each_get_the_true_source;
    ipv6_datagrams: super::ipv6_datagrams;
    the_descriptor_of_a_connected_socket_reads_and_writes_bare_datagrams: super::the_descriptor_of_a_connected_socket_reads_and_writes_bare_datagrams;
}
