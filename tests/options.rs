//! Socket options doing what they do on Linux, through the Rust API.
//! (`tests/capi/options.c` sets and reads back each one through setsockopt.)

mod common;

use common::{errno, Backend, Net, Wire};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use vdestack::{SocketConfig, TcpListener, TcpStream, UdpSocket};

fn zero_linger_resets_on_close(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let listener = TcpListener::bind(&net.a, "0.0.0.0:80").unwrap();
    let client = TcpStream::connect(&net.b, "10.0.0.1:80").unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(client.linger().unwrap(), Some(Duration::ZERO));
    drop(client);
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(errno(&server.read(&mut buf).unwrap_err()), libc::ECONNRESET);
}

fn reuseaddr_rebinds_beside_old_connections_but_not_beside_a_listener(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let reuse = SocketConfig::new().reuse_address(true);
    let listener = TcpListener::bind_with(&net.a, "0.0.0.0:80", &reuse).unwrap();
    let _client = TcpStream::connect(&net.b, "10.0.0.1:80").unwrap();
    let (_server, _) = listener.accept().unwrap();
    assert_eq!(
        errno(&TcpListener::bind_with(&net.a, "0.0.0.0:80", &reuse).unwrap_err()),
        libc::EADDRINUSE,
        "a listener holds the port"
    );
    drop(listener);
    // The accepted connection still holds port 80.
    assert_eq!(
        errno(&TcpListener::bind(&net.a, "0.0.0.0:80").unwrap_err()),
        libc::EADDRINUSE,
        "without SO_REUSEADDR"
    );
    let again = TcpListener::bind_with(&net.a, "0.0.0.0:80", &reuse).unwrap();
    let _second = TcpStream::connect(&net.b, "10.0.0.1:80").unwrap();
    again.accept().unwrap();
}

/// A server that closed its connections first leaves them in TIME-WAIT on its
/// port: restarting it binds with SO_REUSEADDR (on both the old and the new
/// socket) and fails without, as on Linux; an old socket without it keeps the
/// port from both.
fn time_wait_holds_the_port_against_a_bind_without_reuseaddr(b: Backend) {
    for old_reuse in [true, false] {
        let net = Net::with_backends(Wire::Ptp, b, b);
        let reuse = SocketConfig::new().reuse_address(true);
        let old = SocketConfig::new().reuse_address(old_reuse);
        let listener = TcpListener::bind_with(&net.a, "0.0.0.0:80", &old).unwrap();
        let mut client = TcpStream::connect(&net.b, "10.0.0.1:80").unwrap();
        let (mut server, _) = listener.accept().unwrap();
        drop(listener);
        // The server closes first; the client's FIN then puts it in TIME-WAIT.
        server.shutdown(std::net::Shutdown::Write).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(client.read(&mut buf).unwrap(), 0);
        drop(client);
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(server.read(&mut buf).unwrap(), 0);
        drop(server);
        assert_eq!(
            errno(&TcpListener::bind(&net.a, "0.0.0.0:80").unwrap_err()),
            libc::EADDRINUSE,
            "without SO_REUSEADDR (old socket with it: {old_reuse})"
        );
        let again = TcpListener::bind_with(&net.a, "0.0.0.0:80", &reuse);
        match again {
            Ok(_) => assert!(old_reuse, "the old socket had no SO_REUSEADDR"),
            Err(e) => assert!(
                !old_reuse && errno(&e) == libc::EADDRINUSE,
                "with SO_REUSEADDR on both: {e}"
            ),
        }
    }
}

fn reuseport_spreads_connections_over_listeners(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let config = SocketConfig::new().reuse_port(true);
    let first = TcpListener::bind_with(&net.a, "0.0.0.0:80", &config).unwrap();
    let second = TcpListener::bind_with(&net.a, "0.0.0.0:80", &config).unwrap();
    first.set_nonblocking(true).unwrap();
    second.set_nonblocking(true).unwrap();
    let mut clients = Vec::new();
    let mut counts = [0, 0];
    for _ in 0..20 {
        clients.push(TcpStream::connect(&net.b, "10.0.0.1:80").unwrap());
    }
    // Every connection is established (connect returned), so each waits on one
    // of the listeners: take them all, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while counts[0] + counts[1] < 20 {
        assert!(Instant::now() < deadline, "accepted only {counts:?}");
        for (i, l) in [&first, &second].into_iter().enumerate() {
            if l.accept().is_ok() {
                counts[i] += 1;
            }
        }
    }
    assert!(counts[0] > 0 && counts[1] > 0, "spread: {counts:?}");
}

fn udp_sockets_sharing_a_port(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    // SO_REUSEADDR: unicast goes to the last bound, broadcast to all.
    let reuse = SocketConfig::new().reuse_address(true);
    let older = UdpSocket::bind_with(&net.a, "0.0.0.0:5000", &reuse).unwrap();
    let newer = UdpSocket::bind_with(&net.a, "0.0.0.0:5000", &reuse).unwrap();
    assert_eq!(
        errno(&UdpSocket::bind(&net.a, "0.0.0.0:5000").unwrap_err()),
        libc::EADDRINUSE
    );
    let sender = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    sender.set_broadcast(true).unwrap();
    for s in [&older, &newer] {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
    }
    let mut buf = [0u8; 16];
    let mut got_unicast = false;
    for _ in 0..10 {
        sender.send_to(b"uni", "10.0.0.1:5000").unwrap();
        if let Ok((n, _)) = newer.recv_from(&mut buf) {
            assert_eq!(&buf[..n], b"uni");
            got_unicast = true;
            break;
        }
    }
    assert!(got_unicast);
    older.set_nonblocking(true).unwrap();
    assert_eq!(
        older.recv_from(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock,
        "unicast reaches one socket only"
    );
    older.set_nonblocking(false).unwrap();
    let mut heard = [false, false];
    for _ in 0..10 {
        sender.send_to(b"all", "10.0.0.255:5000").unwrap();
        for (i, s) in [&older, &newer].into_iter().enumerate() {
            if let Ok((n, _)) = s.recv_from(&mut buf) {
                heard[i] |= &buf[..n] == b"all";
            }
        }
        if heard == [true, true] {
            break;
        }
    }
    assert_eq!(heard, [true, true], "broadcast reaches every socket");

    // SO_REUSEPORT: senders are spread over the sockets.
    let config = SocketConfig::new().reuse_port(true);
    let group = [
        UdpSocket::bind_with(&net.a, "0.0.0.0:6000", &config).unwrap(),
        UdpSocket::bind_with(&net.a, "0.0.0.0:6000", &config).unwrap(),
    ];
    for s in &group {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
    }
    let mut counts = [0, 0];
    for _ in 0..20 {
        let s = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
        s.send_to(b"x", "10.0.0.1:6000").unwrap();
    }
    for (i, s) in group.iter().enumerate() {
        while s.recv_from(&mut buf).is_ok() {
            counts[i] += 1;
        }
    }
    assert!(counts[0] > 0 && counts[1] > 0, "spread: {counts:?}");
}

fn keepalive_finds_a_vanished_peer(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let listener = TcpListener::bind(&net.a, "0.0.0.0:80").unwrap();
    let mut client = TcpStream::connect(&net.b, "10.0.0.1:80").unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.set_keepalive(true).unwrap();
    // Probes every second; given up after 1 + 2 × 2 = 5 s of silence. (A
    // smoltcp peer answers at most one probe a second: RFC 5961's challenge-ACK
    // limit.)
    client
        .set_keepalive_params(Duration::from_secs(1), Duration::from_secs(2), 2)
        .unwrap();
    assert!(client.keepalive().unwrap());
    assert_eq!(
        client.keepalive_params().unwrap(),
        (Duration::from_secs(1), Duration::from_secs(2), 2)
    );
    assert_eq!(
        errno(
            &client
                .set_keepalive_params(Duration::ZERO, Duration::from_secs(1), 2)
                .unwrap_err()
        ),
        libc::EINVAL
    );
    // A live peer answers the probes: after more than the limit, still connected.
    client
        .set_read_timeout(Some(Duration::from_secs(7)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        client.read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    server.write_all(b"alive").unwrap();
    client.read_exact(&mut buf[..5]).unwrap();
    // The peer's stack vanishes without a word (its sockets go after it, so no
    // FIN leaves): the probes go unanswered.
    let Net { a, .. } = net;
    drop(a);
    drop((listener, server));
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let err = client.read(&mut buf).unwrap_err();
    assert_eq!(errno(&err), libc::ETIMEDOUT, "{err}");
    eprintln!("keep-alive gave up after {:?}", started.elapsed());
}

fn buffer_sizes_shape_the_connection(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let config = SocketConfig::new()
        .recv_buffer_size(8192)
        .send_buffer_size(16384);
    let listener = TcpListener::bind_with(&net.a, "0.0.0.0:80", &config).unwrap();
    let client = TcpStream::connect_with(&net.b, "10.0.0.1:80", &config).unwrap();
    let (server, _) = listener.accept().unwrap();
    for s in [&client, &server] {
        assert_eq!(s.recv_buffer_size().unwrap(), 8192);
        assert_eq!(s.send_buffer_size().unwrap(), 16384);
    }
    // The default is Linux's first receive buffer (tcp_rmem) on both.
    let plain = TcpStream::connect(&net.b, "10.0.0.1:80").unwrap();
    assert_eq!(plain.recv_buffer_size().unwrap(), 128 * 1024);
    // Small windows still carry a megabyte intact.
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            (&client).write_all(&data).unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        (&server).read_to_end(&mut got).unwrap();
        assert!(got == data);
    });
}

fn multicast_groups(b: Backend) {
    let net = Net::with_backends(Wire::Switch, b, b);
    let group = Ipv4Addr::new(239, 1, 2, 3);
    let receiver = UdpSocket::bind(&net.a, "0.0.0.0:5353").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // As on Linux, sending to a group needs a route for it (and Linux picks the
    // interface to join on by that route too; the userspace stack has one).
    for stack in [&net.a, &net.b] {
        stack.cmd("/bin/ip route add 224.0.0.0/4 dev vde0").unwrap();
    }
    let sender = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    let to = SocketAddr::from((group, 5353));
    let mut buf = [0u8; 16];
    // Not joined: the group's datagrams are not for this stack.
    sender.send_to(b"early", to).unwrap();
    assert_eq!(
        receiver.recv_from(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    receiver
        .join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
        .unwrap();
    assert_eq!(
        errno(
            &receiver
                .join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
                .unwrap_err()
        ),
        libc::EADDRINUSE
    );
    assert_eq!(
        errno(
            &receiver
                .join_multicast_v4(&Ipv4Addr::new(10, 0, 0, 9), &Ipv4Addr::UNSPECIFIED)
                .unwrap_err()
        ),
        libc::EINVAL
    );
    let mut got = None;
    for _ in 0..10 {
        sender.send_to(b"hello group", to).unwrap();
        if let Ok((n, from)) = receiver.recv_from(&mut buf) {
            got = Some((buf[..n].to_vec(), from.ip()));
            break;
        }
    }
    assert_eq!(
        got,
        Some((b"hello group".to_vec(), "10.0.0.2".parse().unwrap()))
    );
    receiver
        .leave_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
        .unwrap();
    assert_eq!(
        errno(
            &receiver
                .leave_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
                .unwrap_err()
        ),
        libc::EADDRNOTAVAIL
    );
}

fn ttl_and_nodelay_read_back(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    let listener = TcpListener::bind(&net.a, "0.0.0.0:80").unwrap();
    listener.set_ttl(9).unwrap();
    assert_eq!(listener.ttl().unwrap(), 9);
    let client = TcpStream::connect(&net.b, "10.0.0.1:80").unwrap();
    let (server, _) = listener.accept().unwrap();
    assert_eq!(server.ttl().unwrap(), 9, "accepted connections inherit it");
    assert_eq!(client.ttl().unwrap(), 64);
    client.set_ttl(200).unwrap();
    assert_eq!(client.ttl().unwrap(), 200);
    assert_eq!(errno(&client.set_ttl(256).unwrap_err()), libc::EINVAL);
    client.set_nodelay(true).unwrap();
    assert!(client.nodelay().unwrap());
    let clone = client.try_clone().unwrap();
    assert!(clone.nodelay().unwrap(), "a clone is the same socket");
}

fn only_v6_keeps_ipv4_out(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    net.add_ipv6();
    let v6only = SocketConfig::new().only_v6(true);
    let listener = TcpListener::bind_with(&net.a, "[::]:80", &v6only).unwrap();
    assert_eq!(
        errno(&TcpStream::connect(&net.b, "10.0.0.1:80").unwrap_err()),
        libc::ECONNREFUSED,
        "IPv4 is refused as if nobody listened"
    );
    let _v6 = TcpStream::connect(&net.b, "[fd00::1]:80").unwrap();
    let (_, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip(), "fd00::2".parse::<std::net::IpAddr>().unwrap());
    // Without it, the same listener takes IPv4 as v4-mapped addresses.
    let both = TcpListener::bind(&net.a, "[::]:81").unwrap();
    let _v4 = TcpStream::connect(&net.b, "10.0.0.1:81").unwrap();
    let (_, peer) = both.accept().unwrap();
    assert_eq!(
        peer.ip(),
        "::ffff:10.0.0.2".parse::<std::net::IpAddr>().unwrap()
    );
    // An IPV6_V6ONLY socket cannot reach IPv4 through v4-mapped addresses.
    assert_eq!(
        errno(&TcpStream::connect_with(&net.b, "[::ffff:10.0.0.1]:81", &v6only).unwrap_err()),
        libc::ENETUNREACH
    );
    let udp = UdpSocket::bind_with(&net.a, "[::]:5000", &v6only).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let v4 = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    v4.send_to(b"v4", "10.0.0.1:5000").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        udp.recv_from(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock,
        "no IPv4 datagram reaches it"
    );
}

on_both_backends! {
    zero_linger_resets_on_close: super::zero_linger_resets_on_close;
    reuseaddr_rebinds_beside_old_connections_but_not_beside_a_listener: super::reuseaddr_rebinds_beside_old_connections_but_not_beside_a_listener;
    reuseport_spreads_connections_over_listeners: super::reuseport_spreads_connections_over_listeners;
    time_wait_holds_the_port_against_a_bind_without_reuseaddr: super::time_wait_holds_the_port_against_a_bind_without_reuseaddr;
    udp_sockets_sharing_a_port: super::udp_sockets_sharing_a_port;
    keepalive_finds_a_vanished_peer: super::keepalive_finds_a_vanished_peer;
    buffer_sizes_shape_the_connection: super::buffer_sizes_shape_the_connection;
    multicast_groups: super::multicast_groups;
    ttl_and_nodelay_read_back: super::ttl_and_nodelay_read_back;
    only_v6_keeps_ipv4_out: super::only_v6_keeps_ipv4_out;
}
