//! The engine on its own: two engines wired back to back in memory, a virtual clock,
//! no threads and no descriptors. Every run is exactly repeatable.

use super::*;
use crate::cmd::NetConfig;
use udp::MAX_UDP_V4;

mod ephemeral;
mod limits;
mod loopback_net;
mod memory;
mod mtu_options;
mod neighbors;
mod time_wait;

const MS: Duration = Duration::from_millis(1);

/// Two engines on one in-memory wire, `a` = 10.0.0.1/24, `b` = 10.0.0.2/24.
struct Wire {
    a: Engine,
    b: Engine,
    now: Duration,
}

impl Wire {
    fn new() -> Wire {
        let mut a = Engine::new(
            NetConfig::new("vde0", [2, 0, 0, 0, 0, 1]),
            1,
            Duration::ZERO,
        );
        let mut b = Engine::new(
            NetConfig::new("vde0", [2, 0, 0, 0, 0, 2]),
            2,
            Duration::ZERO,
        );
        // No router solicitations among the frames these tests count.
        a.set_accept_ra(false);
        b.set_accept_ra(false);
        a.run_cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")
            .unwrap();
        b.run_cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")
            .unwrap();
        let mut wire = Wire {
            a,
            b,
            now: Duration::ZERO,
        };
        // Their link-local addresses, tentative for a second from the link's
        // coming up, are usable, as a stack's are when a program starts.
        wire.settle_dad();
        wire
    }

    /// Moves frames both ways until the wire is quiet, then lets `step` pass.
    fn run(&mut self, step: Duration) {
        for _ in 0..1000 {
            self.a.transmit(self.now);
            self.b.transmit(self.now);
            let mut moved = false;
            while let Some(frame) = self.a.next_outgoing() {
                self.b.receive(self.now, &frame);
                moved = true;
            }
            while let Some(frame) = self.b.next_outgoing() {
                self.a.receive(self.now, &frame);
                moved = true;
            }
            moved |= self.a.receive_loopback(self.now) | self.b.receive_loopback(self.now);
            if !moved {
                break;
            }
        }
        self.now += step;
        self.a.transmit(self.now);
        self.b.transmit(self.now);
    }

    /// Lets the duplicate address detection of the addresses added so far
    /// end (a second with nobody claiming them), as a stack's does before it
    /// uses them.
    fn settle_dad(&mut self) {
        self.run(Duration::from_millis(1100));
        self.run(Duration::ZERO);
    }

    fn events(engine: &mut Engine) -> Vec<Event> {
        std::iter::from_fn(|| engine.next_event()).collect()
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn handshake_data_and_close() {
    let mut w = Wire::new();
    let accepted = Arc::new(AtomicU64::new(0));
    let local =
        w.a.bind(addr("0.0.0.0:80"), &SocketOptions::default())
            .unwrap();
    let listener =
        w.a.listen(local, 4, accepted, &SocketOptions::default())
            .unwrap();
    let client =
        w.b.connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
            .unwrap();
    w.run(MS);
    assert_eq!(Wire::events(&mut w.b), vec![Event::Connected(client)]);
    let server = match Wire::events(&mut w.a).as_slice() {
        [Event::Accepted {
            listener: l,
            handle,
            local,
            peer,
        }] => {
            assert_eq!(*l, listener);
            assert_eq!(*local, addr("10.0.0.1:80"));
            assert_eq!(peer.ip(), addr("10.0.0.2:1").ip());
            assert!(ports::EPHEMERAL.contains(&peer.port()));
            *handle
        }
        other => panic!("{other:?}"),
    };
    w.b.tcp(client).send_slice(b"hello").unwrap();
    w.run(MS);
    let mut buf = [0u8; 16];
    let n = w.a.tcp(server).recv_slice(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");

    w.b.release(client, false);
    w.run(MS);
    assert!(!w.a.tcp(server).may_recv(), "the FIN arrived");
    w.a.release(server, false);
    w.run(MS);
    assert!(w.a.tcp.is_empty(), "the passive closer forgot");
    assert!(w.b.tcp.is_empty(), "the active closer keeps no socket");
    assert_eq!(w.b.time_waits.len(), 1, "but a TIME-WAIT record");
    w.run(Duration::from_secs(61));
    w.run(MS);
    assert!(w.b.time_waits.is_empty(), "then forgot");
    assert!(Wire::events(&mut w.a).is_empty() && Wire::events(&mut w.b).is_empty());
}

#[test]
fn refused_unreachable_and_address_errors() {
    let mut w = Wire::new();
    let refused =
        w.b.connect(addr("10.0.0.1:81"), None, &SocketOptions::default())
            .unwrap();
    w.run(MS);
    assert_eq!(
        Wire::events(&mut w.b),
        vec![Event::ConnectFailed(refused, libc::ECONNREFUSED)]
    );
    let err =
        w.b.connect(addr("192.0.2.1:80"), None, &SocketOptions::default())
            .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH));
    let err =
        w.b.bind(addr("10.9.9.9:80"), &SocketOptions::default())
            .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL));
    w.b.bind(addr("10.0.0.2:80"), &SocketOptions::default())
        .unwrap();
    let err =
        w.b.bind(addr("0.0.0.0:80"), &SocketOptions::default())
            .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
}

#[test]
fn unanswered_arp_is_host_unreachable_after_three_seconds() {
    let mut w = Wire::new();
    let handle =
        w.b.connect(addr("10.0.0.77:80"), None, &SocketOptions::default())
            .unwrap();
    for _ in 0..29 {
        w.run(100 * MS);
    }
    assert!(Wire::events(&mut w.b).is_empty(), "still trying at 2.9 s");
    for _ in 0..2 {
        w.run(100 * MS);
    }
    assert_eq!(
        Wire::events(&mut w.b),
        vec![Event::ConnectFailed(handle, libc::EHOSTUNREACH)]
    );
    let delay = w.b.poll_delay(w.now);
    assert!(delay.is_none_or(|d| d > Duration::ZERO), "{delay:?}");
}

#[test]
fn backlog_drops_syns_beyond_its_size_until_accepted() {
    let mut w = Wire::new();
    let accepted = Arc::new(AtomicU64::new(0));
    let local =
        w.a.bind(addr("0.0.0.0:80"), &SocketOptions::default())
            .unwrap();
    w.a.listen(local, 2, accepted.clone(), &SocketOptions::default())
        .unwrap();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            w.b.connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
                .unwrap()
        })
        .collect();
    w.run(MS);
    let connected = Wire::events(&mut w.b).len();
    assert_eq!(connected, 3, "backlog + 1 fit, as on Linux");
    assert_eq!(Wire::events(&mut w.a).len(), 3);
    // The application takes one: the fourth client's SYN retry gets in.
    accepted.fetch_add(1, Ordering::Relaxed);
    for _ in 0..40 {
        w.run(100 * MS);
    }
    assert_eq!(Wire::events(&mut w.b), vec![Event::Connected(clients[3])]);
}

/// `listen(fd, 0)` on Linux still queues one connection (backlog + 1).
#[test]
fn backlog_zero_queues_one_connection() {
    let mut w = Wire::new();
    let local =
        w.a.bind(addr("0.0.0.0:80"), &SocketOptions::default())
            .unwrap();
    w.a.listen(
        local,
        0,
        Arc::new(AtomicU64::new(0)),
        &SocketOptions::default(),
    )
    .unwrap();
    for _ in 0..2 {
        w.b.connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
            .unwrap();
    }
    w.run(MS);
    assert_eq!(
        Wire::events(&mut w.b).len(),
        1,
        "one connection, as on Linux"
    );
}

#[test]
fn loopback_needs_lo_up() {
    let mut w = Wire::new();
    let err =
        w.a.connect(addr("127.0.0.1:80"), None, &SocketOptions::default())
            .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH));
    w.a.run_cmd("/bin/ip link set lo up").unwrap();
    listen_on(&mut w.a, addr("0.0.0.0:80"));
    for target in ["127.0.0.1:80", "10.0.0.1:80"] {
        let handle =
            w.a.connect(addr(target), None, &SocketOptions::default())
                .unwrap();
        let mut events = Vec::new();
        // smoltcp sends at most one ARP request a second: the second target waits.
        for _ in 0..30 {
            w.run(100 * MS);
            events.extend(Wire::events(&mut w.a));
        }
        assert!(
            events.contains(&Event::Connected(handle)),
            "{target}: {events:?}"
        );
        assert!(
            events.iter().any(|e| matches!(e, Event::Accepted { .. })),
            "{target}: {events:?}"
        );
    }
    assert!(
        w.b.next_outgoing().is_none(),
        "loopback traffic stays inside"
    );
}

#[test]
fn identical_runs_give_identical_frames() {
    fn trace() -> Vec<Vec<u8>> {
        let mut w = Wire::new();
        listen_on(&mut w.a, addr("0.0.0.0:80"));
        let client =
            w.b.connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
                .unwrap();
        let mut frames = Vec::new();
        for _ in 0..20 {
            w.a.transmit(w.now);
            w.b.transmit(w.now);
            while let Some(f) = w.b.next_outgoing() {
                w.a.receive(w.now, &f);
                frames.push(f);
            }
            while let Some(f) = w.a.next_outgoing() {
                w.b.receive(w.now, &f);
                frames.push(f);
            }
            if w.b.tcp(client).can_send() {
                w.b.tcp(client).send_slice(b"same every time").unwrap();
            }
            w.now += MS;
        }
        frames
    }
    assert_eq!(trace(), trace());
}

// ---- UDP ----

/// A UDP socket of `engine` bound to `local`, with default options.
fn open_udp(engine: &mut Engine, local: &str) -> (UdpHandle, SocketAddr) {
    engine
        .udp_open(addr(local), &SocketOptions::default())
        .unwrap()
}

fn set_udp(engine: &mut Engine, handle: UdpHandle, change: impl FnOnce(&mut SocketOptions)) {
    let mut options = engine.udp_options(handle).unwrap();
    change(&mut options);
    engine.udp_set_options(handle, &options);
}

#[test]
fn udp_datagrams_keep_boundaries_and_sources() {
    let mut wire = Wire::new();
    let (server, bound) = open_udp(&mut wire.a, "0.0.0.0:53");
    assert_eq!(bound, addr("0.0.0.0:53"));
    let (client, local) = open_udp(&mut wire.b, "0.0.0.0:0");
    assert!(ports::EPHEMERAL.contains(&local.port()));
    for size in [0, 1, 1472, 1473, 60_000, MAX_UDP_V4] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
        wire.b
            .udp_send(client, Some(addr("10.0.0.1:53")), &data)
            .unwrap();
        wire.run(MS);
        let got = wire.a.udp_recv(server).expect("datagram arrived");
        assert_eq!(got.data.len(), size);
        assert!(got.data == data, "{size}-byte datagram intact");
        assert_eq!(
            got.peer,
            SocketAddr::new("10.0.0.2".parse().unwrap(), local.port())
        );
        assert!(
            wire.a.udp_recv(server).is_none(),
            "one datagram, not merged or split"
        );
    }
    assert_eq!(
        wire.b
            .udp_send(client, Some(addr("10.0.0.1:53")), &vec![0; MAX_UDP_V4 + 1])
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EMSGSIZE)
    );
}

#[test]
fn udp_send_errors_are_those_of_sendto() {
    let mut wire = Wire::new();
    let (s, _) = open_udp(&mut wire.b, "0.0.0.0:0");
    let errno_of = |r: io::Result<()>| r.unwrap_err().raw_os_error();
    assert_eq!(
        errno_of(wire.b.udp_send(s, None, b"x")),
        Some(libc::EDESTADDRREQ)
    );
    assert_eq!(
        errno_of(wire.b.udp_send(s, Some(addr("192.168.1.1:9")), b"x")),
        Some(libc::ENETUNREACH)
    );
    assert_eq!(
        errno_of(wire.b.udp_send(s, Some(addr("10.0.0.1:0")), b"x")),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno_of(wire.b.udp_send(s, Some(addr("10.0.0.255:9")), b"x")),
        Some(libc::EACCES),
        "broadcast needs SO_BROADCAST"
    );
    assert_eq!(
        errno_of(wire.b.udp_send(s, Some(addr("[2001:db8::1]:9")), b"x")),
        Some(libc::EAFNOSUPPORT)
    );
    assert_eq!(
        wire.b
            .udp_open(addr("10.9.9.9:0"), &SocketOptions::default())
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EADDRNOTAVAIL)
    );
    let (_, taken) = open_udp(&mut wire.b, "0.0.0.0:5000");
    assert_eq!(
        wire.b
            .udp_open(taken, &SocketOptions::default())
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EADDRINUSE)
    );
}

#[test]
fn udp_broadcast_reaches_the_subnet_with_so_broadcast() {
    let mut wire = Wire::new();
    let (server, _) = open_udp(&mut wire.a, "0.0.0.0:67");
    let (client, _) = open_udp(&mut wire.b, "0.0.0.0:68");
    set_udp(&mut wire.b, client, |o| o.broadcast = true);
    wire.b
        .udp_send(client, Some(addr("10.0.0.255:67")), b"discover")
        .unwrap();
    wire.run(MS);
    let got = wire.a.udp_recv(server).expect("broadcast arrived");
    assert_eq!(got.data, b"discover");
    assert_eq!(got.peer, addr("10.0.0.2:68"));
}

#[test]
fn connected_udp_hears_only_its_peer_and_learns_of_a_closed_port() {
    let mut wire = Wire::new();
    let (a1, _) = open_udp(&mut wire.a, "0.0.0.0:1001");
    let (a2, _) = open_udp(&mut wire.a, "0.0.0.0:1002");
    let (b, _) = open_udp(&mut wire.b, "0.0.0.0:2000");
    let local = wire.b.udp_connect(b, Some(addr("10.0.0.1:1001"))).unwrap();
    assert_eq!(
        local,
        addr("10.0.0.2:2000"),
        "connect picks the source address"
    );
    wire.a
        .udp_send(a2, Some(addr("10.0.0.2:2000")), b"stranger")
        .unwrap();
    wire.a
        .udp_send(a1, Some(addr("10.0.0.2:2000")), b"peer")
        .unwrap();
    wire.run(MS);
    assert_eq!(wire.b.udp_recv(b).unwrap().data, b"peer");
    assert!(
        wire.b.udp_recv(b).is_none(),
        "the stranger's datagram is filtered"
    );

    // A datagram to a closed port comes back as ICMP port unreachable.
    wire.b.udp_connect(b, Some(addr("10.0.0.1:1003"))).unwrap();
    wire.b.udp_send(b, None, b"anyone?").unwrap();
    wire.run(MS);
    assert!(wire.b.events.contains(&Event::UdpError(b)));
    assert_eq!(wire.b.udp_take_error(b), Some(libc::ECONNREFUSED));
    assert_eq!(wire.b.udp_take_error(b), None, "reported once");
    // Unconnected sockets are not told (as on Linux).
    wire.b.udp_connect(b, None).unwrap();
    wire.b
        .udp_send(b, Some(addr("10.0.0.1:1003")), b"again")
        .unwrap();
    wire.run(MS);
    assert_eq!(wire.b.udp_take_error(b), None);
}

#[test]
fn a_full_udp_receive_queue_drops_and_counts() {
    let mut wire = Wire::new();
    let (server, _) = open_udp(&mut wire.a, "0.0.0.0:9");
    set_udp(&mut wire.a, server, |o| {
        o.recv_buffer = Some(10 * (1000 + 256))
    });
    let (client, _) = open_udp(&mut wire.b, "0.0.0.0:0");
    for i in 0..25u8 {
        wire.b
            .udp_send(client, Some(addr("10.0.0.1:9")), &[i; 1000])
            .unwrap();
        wire.run(MS);
    }
    let mut got = Vec::new();
    while let Some(d) = wire.a.udp_recv(server) {
        got.push(d.data[0]);
    }
    assert_eq!(got, (0..10).collect::<Vec<u8>>(), "the first ten, in order");
    assert_eq!(wire.a.udp_drops(server), 15);
}

#[test]
fn an_ipv6_udp_socket_sees_ipv4_peers_as_mapped() {
    let mut wire = Wire::new();
    let (server, _) = open_udp(&mut wire.a, "[::]:53");
    let (client, _) = open_udp(&mut wire.b, "0.0.0.0:4000");
    wire.b
        .udp_send(client, Some(addr("10.0.0.1:53")), b"q")
        .unwrap();
    wire.run(MS);
    let got = wire.a.udp_recv(server).unwrap();
    assert_eq!(got.peer, addr("[::ffff:10.0.0.2]:4000"));
    wire.a.udp_send(server, Some(got.peer), b"r").unwrap();
    wire.run(MS);
    assert_eq!(wire.b.udp_recv(client).unwrap().data, b"r");
}

#[test]
fn ipv6_datagrams_beyond_the_mtu_go_in_fragments() {
    // The first datagram is the large one, so its fragments also wait for
    // neighbour discovery; loopback reassembles the stack's own.
    let mut wire = Wire::new();
    wire.a
        .run_cmd("/bin/ip -6 addr add fd00::1/64 dev vde0 nodad; /bin/ip link set lo up")
        .unwrap();
    wire.b
        .run_cmd("/bin/ip -6 addr add fd00::2/64 dev vde0 nodad")
        .unwrap();
    let (server, _) = open_udp(&mut wire.a, "[::]:53");
    let (client, _) = open_udp(&mut wire.b, "[::]:4000");
    let data: Vec<u8> = (0..30_000).map(|i| (i % 253) as u8).collect();
    wire.b
        .udp_send(client, Some(addr("[fd00::1]:53")), &data)
        .unwrap();
    for _ in 0..10 {
        wire.run(MS);
    }
    let got = wire.a.udp_recv(server).expect("the datagram, reassembled");
    assert_eq!(
        (got.peer, got.data.len()),
        (addr("[fd00::2]:4000"), data.len())
    );
    assert!(got.data == data);
    let (own, _) = open_udp(&mut wire.a, "[::1]:5000");
    wire.a.udp_send(own, Some(addr("[::1]:53")), &data).unwrap();
    wire.run(MS);
    assert!(wire.a.udp_recv(server).expect("over loopback").data == data);
}

#[test]
fn udp_over_loopback() {
    let mut wire = Wire::new();
    wire.a.run_cmd("/bin/ip link set lo up").unwrap();
    let (server, _) = open_udp(&mut wire.a, "127.0.0.1:7");
    let (client, _) = open_udp(&mut wire.a, "0.0.0.0:0");
    let local = wire
        .a
        .udp_connect(client, Some(addr("127.0.0.1:7")))
        .unwrap();
    assert_eq!(local.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
    wire.a.udp_send(client, None, b"self").unwrap();
    wire.run(MS);
    let got = wire.a.udp_recv(server).unwrap();
    assert_eq!((got.data.as_slice(), got.peer), (&b"self"[..], local));
}

#[test]
fn keepalive_keeps_a_live_peer_and_drops_a_silent_one() {
    let mut w = Wire::new();
    let options = SocketOptions::default();
    let local = w.a.bind(addr("0.0.0.0:80"), &options).unwrap();
    w.a.listen(local, 4, Arc::default(), &options).unwrap();
    let keepalive = SocketOptions {
        keepalive: true,
        keep_idle: Duration::from_secs(1),
        keep_interval: Duration::from_secs(2),
        keep_count: 2,
        ..options
    };
    // Turned on once connected, as a program does with setsockopt.
    let client = w.b.connect(addr("10.0.0.1:80"), None, &options).unwrap();
    w.run(MS);
    assert_eq!(Wire::events(&mut w.b), vec![Event::Connected(client)]);
    w.b.set_tcp_options(client, &keepalive);
    // 20 s of silence from the application: the probes keep the connection.
    for _ in 0..200 {
        w.run(Duration::from_millis(100));
    }
    assert_eq!(Wire::events(&mut w.b), vec![]);
    assert_eq!(w.b.tcp(client).state(), TcpState::Established);
    // The peer vanishes: 5 s later (1 + 2 × 2) the connection times out.
    let start = w.now;
    while w.b.tcp(client).state() == TcpState::Established {
        assert!(w.now - start < Duration::from_secs(10), "never given up");
        w.now += Duration::from_millis(100);
        w.b.transmit(w.now);
        while w.b.next_outgoing().is_some() {}
    }
    assert_eq!(
        Wire::events(&mut w.b),
        vec![Event::Aborted(client, libc::ETIMEDOUT)]
    );
    let took = w.now - start;
    assert!(
        took >= Duration::from_secs(4) && took <= Duration::from_secs(6),
        "{took:?}"
    );
}
/// Runs the wire in 1 ms steps until `done` holds (at most `limit` steps);
/// returns the events each side produced meanwhile.
fn run_until(
    w: &mut Wire,
    limit: usize,
    mut done: impl FnMut(&[Event], &[Event]) -> bool,
) -> (Vec<Event>, Vec<Event>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    for _ in 0..limit {
        w.run(MS);
        ea.extend(Wire::events(&mut w.a));
        eb.extend(Wire::events(&mut w.b));
        if done(&ea, &eb) {
            break;
        }
    }
    (ea, eb)
}

fn accepted_addrs(events: &[Event]) -> Vec<(SocketAddr, SocketAddr)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Accepted { local, peer, .. } => Some((*local, *peer)),
            _ => None,
        })
        .collect()
}

#[test]
fn ipv6_by_link_local_and_global_address() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip addr add 2001:db8::1/64 dev vde0")
        .unwrap();
    w.b.run_cmd("/bin/ip addr add 2001:db8::2/64 dev vde0")
        .unwrap();
    w.settle_dad();
    listen_on(&mut w.a, addr("[::]:80"));
    // The EUI-64 link-local addresses of 02:00:00:00:00:01 and :02.
    for (target, peer) in [
        ("[fe80::ff:fe00:1]:80", "fe80::ff:fe00:2"),
        ("[2001:db8::1]:80", "2001:db8::2"),
    ] {
        let client =
            w.b.connect(addr(target), None, &SocketOptions::default())
                .unwrap();
        let (ea, eb) = run_until(&mut w, 3000, |ea, _| !ea.is_empty());
        assert_eq!(eb, vec![Event::Connected(client)], "{target}");
        let got = accepted_addrs(&ea);
        assert_eq!(got.len(), 1, "{target}: {ea:?}");
        assert_eq!(got[0].0, addr(target));
        assert_eq!(got[0].1.ip(), peer.parse::<IpAddr>().unwrap());
        let mapped = w.b.local_addr(client).unwrap();
        assert_eq!(mapped.ip(), peer.parse::<IpAddr>().unwrap());
    }
}

#[test]
fn addresses_beyond_smoltcps_table_serve_connections_both_ways() {
    let mut w = Wire::new();
    let mut cmds: Vec<String> = (3..=12)
        .map(|i| format!("/bin/ip addr add 10.0.0.{i}/24 dev vde0"))
        .collect();
    cmds.push("/bin/ip addr add 2001:db8::1/64 dev vde0".into());
    cmds.push("/bin/ip addr add 2001:db8::9/64 dev vde0".into());
    w.a.run_cmd(&cmds.join("; ")).unwrap();
    w.b.run_cmd("/bin/ip addr add 2001:db8::2/64 dev vde0")
        .unwrap();
    w.settle_dad();
    // The newest IPv6 address of the prefix is listed first, and fits.
    for beyond in [IpAddress::v4(10, 0, 0, 12), "2001:db8::1".parse().unwrap()] {
        assert!(w.a.beyond_table.contains(&beyond), "{beyond}");
    }
    listen_on(&mut w.a, addr("[::]:80"));
    for target in ["10.0.0.12:80", "[2001:db8::1]:80"] {
        let client =
            w.b.connect(addr(target), None, &SocketOptions::default())
                .unwrap();
        let (ea, eb) = run_until(&mut w, 3000, |ea, _| !ea.is_empty());
        assert_eq!(eb, vec![Event::Connected(client)], "{target}");
        assert_eq!(accepted_addrs(&ea).len(), 1, "{target}: {ea:?}");
    }
    // And out of one.
    listen_on(&mut w.b, addr("0.0.0.0:81"));
    let client =
        w.a.connect(
            addr("10.0.0.2:81"),
            Some(addr("10.0.0.11:0")),
            &SocketOptions::default(),
        )
        .unwrap();
    let (ea, eb) = run_until(&mut w, 3000, |_, eb| !eb.is_empty());
    assert!(ea.contains(&Event::Connected(client)), "{ea:?}");
    assert_eq!(accepted_addrs(&eb)[0].1.ip(), addr("10.0.0.11:0").ip());
}

#[test]
fn an_ipv6_wildcard_listener_takes_ipv4_as_v4_mapped_unless_v6only() {
    let mut w = Wire::new();
    let listener = listen_on(&mut w.a, addr("[::]:80"));
    let client =
        w.b.connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
            .unwrap();
    let (ea, eb) = run_until(&mut w, 100, |ea, _| !ea.is_empty());
    assert_eq!(eb, vec![Event::Connected(client)]);
    let got = accepted_addrs(&ea);
    assert_eq!(got[0].0, addr("[::ffff:10.0.0.1]:80"));
    assert_eq!(got[0].1.ip(), addr("[::ffff:10.0.0.2]:1").ip());
    assert_eq!(
        w.b.local_addr(client).unwrap().ip(),
        addr("10.0.0.2:1").ip()
    );

    // Connecting to a v4-mapped address is IPv4, shown v4-mapped.
    let v4_local =
        w.b.bind(addr("0.0.0.0:81"), &SocketOptions::default())
            .unwrap();
    w.b.listen(v4_local, 4, Arc::default(), &SocketOptions::default())
        .unwrap();
    let out =
        w.a.connect(
            addr("[::ffff:10.0.0.2]:81"),
            None,
            &SocketOptions::default(),
        )
        .unwrap();
    let (ea, eb) = run_until(&mut w, 100, |ea, _| !ea.is_empty());
    assert_eq!(ea, vec![Event::Connected(out)]);
    assert_eq!(accepted_addrs(&eb)[0].1.ip(), addr("10.0.0.1:1").ip());
    assert_eq!(
        w.a.local_addr(out).unwrap().ip(),
        addr("[::ffff:10.0.0.1]:1").ip()
    );
    assert!(v6only_refuses(addr("[::ffff:10.0.0.2]:81")));
    assert!(!v6only_refuses(addr("[2001:db8::2]:81")));

    // With IPV6_V6ONLY, IPv4 is refused as if nobody listened.
    let v6only = SocketOptions {
        v6only: true,
        ..SocketOptions::default()
    };
    w.a.set_listener_options(listener, &v6only);
    let refused =
        w.b.connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
            .unwrap();
    let (_, eb) = run_until(&mut w, 100, |_, eb| !eb.is_empty());
    assert_eq!(eb, vec![Event::ConnectFailed(refused, libc::ECONNREFUSED)]);

    // And an IPv4 listener never takes IPv6.
    w.b.run_cmd("/bin/ip addr add 2001:db8::2/64 dev vde0")
        .unwrap();
    w.a.run_cmd("/bin/ip addr add 2001:db8::1/64 dev vde0")
        .unwrap();
    let refused =
        w.a.connect(addr("[2001:db8::2]:81"), None, &SocketOptions::default())
            .unwrap();
    let (ea, _) = run_until(&mut w, 3000, |ea, _| !ea.is_empty());
    assert_eq!(ea, vec![Event::ConnectFailed(refused, libc::ECONNREFUSED)]);
}

/// The largest frame each side sends while `client` (on b) sends `bytes` to a
/// connection that a accepts on port `port`.
fn largest_frames(w: &mut Wire, port: u16, bytes: usize) -> (usize, usize, Option<u16>) {
    listen_on(&mut w.a, addr(&format!("0.0.0.0:{port}")));
    let client =
        w.b.connect(
            addr(&format!("10.0.0.1:{port}")),
            None,
            &SocketOptions::default(),
        )
        .unwrap();
    let (mut max_a, mut max_b, mut syn_mss) = (0, 0, None);
    let mut sent = 0;
    let mut server = None;
    let mut got = 0;
    for _ in 0..2000 {
        w.a.transmit(w.now);
        w.b.transmit(w.now);
        while let Some(f) = w.b.next_outgoing() {
            max_b = max_b.max(f.len());
            if syn_mss.is_none() {
                syn_mss = syn_mss_option(&f);
            }
            w.a.receive(w.now, &f);
        }
        while let Some(f) = w.a.next_outgoing() {
            max_a = max_a.max(f.len());
            w.b.receive(w.now, &f);
        }
        for e in Wire::events(&mut w.a) {
            if let Event::Accepted { handle, .. } = e {
                server = Some(handle);
            }
        }
        if let Some(s) = server {
            got += w.a.recv_with(s, |b| Ok(b.len())).unwrap_or(0);
        }
        let socket = w.b.tcp(client);
        if socket.may_send() && sent < bytes {
            let chunk = vec![7u8; (bytes - sent).min(65536)];
            sent += socket.send_slice(&chunk).unwrap();
        }
        if got == bytes {
            break;
        }
        w.now += MS;
    }
    assert_eq!(got, bytes, "the transfer completes");
    (max_a, max_b, syn_mss)
}

/// The MSS option of a SYN in `frame`, if it is one (IPv4).
fn syn_mss_option(frame: &[u8]) -> Option<u16> {
    use smoltcp::wire::{EthernetFrame, Ipv4Packet, TcpPacket, TcpRepr};
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let repr = TcpRepr::parse(
        &tcp,
        &ip.src_addr().into(),
        &ip.dst_addr().into(),
        &smoltcp::phy::ChecksumCapabilities::ignored(),
    )
    .ok()?;
    (tcp.syn() && !tcp.ack()).then_some(repr.max_seg_size?)
}

#[test]
fn the_mtu_of_the_running_link_decides_frame_and_segment_sizes() {
    let mut w = Wire::new();
    let (max_a, max_b, mss) = largest_frames(&mut w, 80, 100_000);
    assert_eq!((max_b, mss), (1514, Some(1460)), "{max_a}");
    for e in [&mut w.a, &mut w.b] {
        e.run_cmd("/bin/ip link set vde0 mtu 9000").unwrap();
    }
    let (_, max_b, mss) = largest_frames(&mut w, 81, 100_000);
    assert_eq!((max_b, mss), (9014, Some(8960)));
    // One side back at 1500: the jumbo side's segments follow the peer's MSS.
    w.a.run_cmd("/bin/ip link set vde0 mtu 1500").unwrap();
    let (max_a, max_b, mss) = largest_frames(&mut w, 82, 100_000);
    assert_eq!((max_b, mss), (1514, Some(8960)), "{max_a}");
    assert!(max_a <= 1514);
}

#[test]
fn a_new_hardware_address_is_announced_and_learned() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip addr add 2001:db8::1/64 dev vde0")
        .unwrap();
    w.b.run_cmd("/bin/ip addr add 2001:db8::2/64 dev vde0")
        .unwrap();
    w.settle_dad();
    for port in [80, 81] {
        listen_on(&mut w.a, addr(&format!("[::]:{port}")));
    }
    // b learns a's first address both ways.
    for target in ["10.0.0.1:80", "[2001:db8::1]:80"] {
        let c =
            w.b.connect(addr(target), None, &SocketOptions::default())
                .unwrap();
        let (_, eb) = run_until(&mut w, 3000, |_, eb| !eb.is_empty());
        assert_eq!(eb, vec![Event::Connected(c)], "{target}");
    }
    w.a.run_cmd("/bin/ip link set vde0 address 02:00:00:00:00:99")
        .unwrap();
    let announced: Vec<Vec<u8>> = std::iter::from_fn(|| w.a.next_outgoing()).collect();
    assert!(
        announced
            .iter()
            .any(|f| frames::arp_announcement(f).is_some_and(|(m, _)| m.0[5] == 0x99)),
        "a gratuitous ARP goes out"
    );
    assert!(
        announced
            .iter()
            .any(|f| f.get(12..14) == Some(&[0x86, 0xdd][..])),
        "and a neighbour advertisement"
    );
    for f in &announced {
        w.b.receive(w.now, f);
    }
    // Well within smoltcp's 60 s cache lifetime: only the announcements can tell b.
    for target in ["10.0.0.1:81", "[2001:db8::1]:81"] {
        let c =
            w.b.connect(addr(target), None, &SocketOptions::default())
                .unwrap();
        let (_, eb) = run_until(&mut w, 100, |_, eb| !eb.is_empty());
        assert_eq!(eb, vec![Event::Connected(c)], "{target}");
    }
}

#[test]
fn ipv6_loopback_needs_lo_up() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip addr add 2001:db8::1/64 dev vde0")
        .unwrap();
    let err =
        w.a.connect(addr("[::1]:80"), None, &SocketOptions::default())
            .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH));
    w.a.run_cmd("/bin/ip link set lo up").unwrap();
    listen_on(&mut w.a, addr("[::]:80"));
    for target in ["[::1]:80", "[2001:db8::1]:80", "[fe80::ff:fe00:1]:80"] {
        let handle =
            w.a.connect(addr(target), None, &SocketOptions::default())
                .unwrap();
        let (ea, _) = run_until(&mut w, 3000, |ea, _| ea.len() >= 2);
        assert!(ea.contains(&Event::Connected(handle)), "{target}: {ea:?}");
        let got = accepted_addrs(&ea);
        assert_eq!(got.len(), 1, "{target}: {ea:?}");
        assert_eq!(got[0].0, addr(target));
    }
    assert!(
        w.b.next_outgoing().is_none(),
        "loopback traffic stays inside"
    );
}

#[test]
fn open_connections_survive_mtu_changes() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip addr add 2001:db8::1/64 dev vde0")
        .unwrap();
    w.b.run_cmd("/bin/ip addr add 2001:db8::2/64 dev vde0")
        .unwrap();
    w.settle_dad();
    listen_on(&mut w.a, addr("[::]:80"));
    let c4 =
        w.b.connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
            .unwrap();
    let c6 =
        w.b.connect(addr("[2001:db8::1]:80"), None, &SocketOptions::default())
            .unwrap();
    let (ea, _) = run_until(&mut w, 3000, |ea, _| accepted_addrs(ea).len() == 2);
    let servers: Vec<TcpHandle> = ea
        .iter()
        .filter_map(|e| match e {
            Event::Accepted { handle, .. } => Some(*handle),
            _ => None,
        })
        .collect();
    assert_eq!(servers.len(), 2);
    // Bytes in flight across each change; IPv6 only where it exists (Linux tears
    // it down below 1280 bytes, global addresses and all).
    let (mut sent, mut received) = (0, 0);
    let steps = [(1280, true), (9000, true), (68, false), (1500, false)];
    for (mtu, with_v6) in steps {
        for e in [&mut w.a, &mut w.b] {
            e.run_cmd(&format!("/bin/ip link set vde0 mtu {mtu}"))
                .unwrap();
        }
        let clients: &[TcpHandle] = if with_v6 { &[c4, c6] } else { &[c4] };
        for &c in clients {
            assert_eq!(w.b.tcp(c).send_slice(&[1; 3000]), Ok(3000), "MTU {mtu}");
            sent += 3000;
        }
        for _ in 0..3000 {
            w.run(MS);
            for &s in &servers {
                received += w.a.recv_with(s, |b| Ok(b.len())).unwrap_or(0);
            }
        }
        assert_eq!(received, sent, "MTU {mtu}");
    }
}

/// Moves `total` bytes from b to a over the wire, dropping the frames from b for
/// which `lose` (given each frame's number, counted from 1, and its bytes) says
/// so; returns the virtual time it took.
fn lossy_transfer(w: &mut Wire, total: usize, lose: impl FnMut(usize, &[u8]) -> bool) -> Duration {
    let (client, server) = connected(w);
    lossy_transfer_on(w, client, server, total, lose)
}

/// [`lossy_transfer`] on a connection made already.
fn lossy_transfer_on(
    w: &mut Wire,
    client: TcpHandle,
    server: TcpHandle,
    total: usize,
    mut lose: impl FnMut(usize, &[u8]) -> bool,
) -> Duration {
    let start = w.now;
    let (mut sent, mut got, mut frames) = (0, 0, 0);
    let chunk = vec![7u8; 64 * 1024];
    let mut buf = vec![0u8; 64 * 1024];
    while got < total {
        assert!(w.now - start < Duration::from_secs(60), "stuck at {got}");
        if sent < total {
            sent +=
                w.b.tcp(client)
                    .send_slice(&chunk[..(total - sent).min(chunk.len())])
                    .unwrap();
        }
        w.b.transmit(w.now);
        while let Some(frame) = w.b.next_outgoing() {
            frames += 1;
            if !lose(frames, &frame) {
                w.a.receive(w.now, &frame);
            }
        }
        w.a.transmit(w.now);
        while let Some(frame) = w.a.next_outgoing() {
            w.b.receive(w.now, &frame);
        }
        while let Ok(n @ 1..) = w.a.tcp(server).recv_slice(&mut buf) {
            got += n;
        }
        w.now += Duration::from_micros(100);
    }
    w.now - start
}

/// The sequence number and data length of a TCP segment over IPv4.
fn seq_and_len(frame: &[u8]) -> Option<(smoltcp::wire::TcpSeqNumber, usize)> {
    frames::tcp_view(frame).map(|t| (t.seq, t.data_len))
}

#[test]
fn tcp_stats_measure_round_trips_and_count_retransmissions() {
    let mut w = Wire::new();
    let (client, server) = connected(&mut w);
    let fresh = w.b.tcp_stats(client).expect("a connection");
    assert_eq!(fresh.state, TcpState::Established);
    assert_eq!((fresh.mtu, fresh.mss), (1500, 1460));
    assert_eq!(fresh.flow.retransmitted, 0);
    lossy_transfer_on(&mut w, client, server, 1 << 20, |n, _| n == 100);
    // The last acknowledgements reach the sender.
    for _ in 0..10 {
        w.run(Duration::from_millis(5));
    }
    let after = w.b.tcp_stats(client).expect("a connection");
    assert!(after.flow.retransmitted >= 1, "{after:?}");
    assert!(
        after.flow.srtt.is_some() && after.flow.rttvar.is_some(),
        "{after:?}"
    );
    assert!(
        after.flow.flight_peak >= 10 * after.mss,
        "the window grew past its start: {after:?}"
    );
    assert_eq!(after.flow.in_flight, 0, "all acknowledged: {after:?}");
    assert!(w.b.tcp_stats(TcpHandle::for_tests(999)).is_none());
}

#[test]
fn two_losses_in_a_window_are_repaired_without_a_timeout() {
    // smoltcp alone repairs the first hole by fast retransmit and waits for its
    // retransmission timeout (1 s at least) for the second; the engine's loss
    // recovery (`recovery`) retransmits the second at once too.
    let one = lossy_transfer(&mut Wire::new(), 1 << 20, |n, _| n == 100);
    let two = lossy_transfer(&mut Wire::new(), 1 << 20, |n, _| [100, 110].contains(&n));
    assert!(one < Duration::from_millis(500), "one loss: {one:?}");
    assert!(
        two < Duration::from_millis(500),
        "two losses in a window: {two:?}"
    );
}

#[test]
fn a_lost_retransmission_costs_a_stall_not_the_one_second_timeout() {
    // The segment in frame 100 is lost, and so is its fast retransmission: no
    // duplicate ACK can reveal that, and smoltcp alone waits out its 1 s floor.
    let mut lost = None;
    let mut losses = 0;
    let took = lossy_transfer(&mut Wire::new(), 1 << 20, |n, frame| {
        let Some((seq, 1..)) = seq_and_len(frame) else {
            return false;
        };
        if n == 100 {
            lost = Some(seq);
        }
        let again = lost == Some(seq) && losses < 2;
        losses += usize::from(again);
        again
    });
    assert_eq!(
        losses, 2,
        "the segment and its first retransmission were lost"
    );
    assert!(took < Duration::from_millis(800), "took {took:?}");
}

#[test]
fn a_lost_tail_costs_a_stall_not_the_one_second_timeout() {
    // The last segment of a transfer is lost: nothing follows it to draw
    // duplicate ACKs.
    let total = 20_000;
    let mut first = None;
    let mut lost = false;
    let took = lossy_transfer(&mut Wire::new(), total, |_, frame| {
        let Some((seq, len @ 1..)) = seq_and_len(frame) else {
            return false;
        };
        let start = *first.get_or_insert(seq);
        let tail = !lost && seq + len == start + total;
        lost |= tail;
        tail
    });
    assert!(lost, "the tail was lost");
    assert!(took < Duration::from_millis(800), "took {took:?}");
}

#[test]
fn a_lost_fin_alone_is_still_retransmitted() {
    // A lone FIN lost: no data follows it to draw duplicate ACKs, and smoltcp
    // answers duplicates with nothing when only a FIN is outstanding; loss
    // recovery keeps the FIN's segment and sends it again itself.
    let mut w = Wire::new();
    let (client, server) = connected(&mut w);
    w.b.tcp(client).send_slice(b"last words").unwrap();
    w.run(MS);
    let mut buf = [0u8; 16];
    assert_eq!(w.a.tcp(server).recv_slice(&mut buf), Ok(10));
    w.b.tcp(client).close();
    w.b.transmit(w.now);
    let mut dropped = 0;
    while let Some(frame) = w.b.next_outgoing() {
        dropped += usize::from(frames::tcp_view(&frame).is_some_and(|t| t.fin));
    }
    assert_eq!(dropped, 1, "the FIN was lost");
    for _ in 0..100 {
        w.run(100 * MS);
    }
    assert!(w.a.recv_finished(server), "the FIN came again");
}

/// `frame` (a TCP segment over IPv4) with `data` instead of its own, starting
/// `skip` bytes later, and FIN set: what an attacker, or a broken peer, could
/// send.
fn with_data_and_fin(frame: &[u8], skip: usize, data: &[u8]) -> Vec<u8> {
    use smoltcp::wire::{Ipv4Packet, TcpPacket};
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
    let tcp_header = usize::from(TcpPacket::new_checked(ip.payload()).unwrap().header_len());
    let mut f = frame[..14 + 20 + tcp_header].to_vec();
    f.extend_from_slice(data);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_total_len((20 + tcp_header + data.len()) as u16);
    ip.fill_checksum();
    let mut tcp = TcpPacket::new_unchecked(&mut f[14 + 20..]);
    tcp.set_fin(true);
    let seq = tcp.seq_number();
    tcp.set_seq_number(seq + skip);
    tcp.fill_checksum(&src, &dst);
    f
}

/// Listens on `local` with a backlog of 4 and default options.
fn listen_on(engine: &mut Engine, local: SocketAddr) -> ListenerId {
    let options = SocketOptions::default();
    let bound = engine.bind(local, &options).unwrap();
    engine.listen(bound, 4, Arc::default(), &options).unwrap()
}

/// A connection from `w.b` to `w.a`'s port 80: (client, server).
fn connected(w: &mut Wire) -> (TcpHandle, TcpHandle) {
    listen_on(&mut w.a, addr("0.0.0.0:80"));
    let client =
        w.b.connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
            .unwrap();
    w.run(MS);
    match Wire::events(&mut w.a).as_slice() {
        [Event::Accepted { handle, .. }] => (client, *handle),
        other => panic!("{other:?}"),
    }
}

/// B's next segment carrying data, held back from A.
fn next_data_segment(w: &mut Wire) -> Vec<u8> {
    w.b.transmit(w.now);
    std::iter::from_fn(|| w.b.next_outgoing())
        .find(|f| f.len() > 60)
        .expect("B's data segment")
}

#[test]
fn data_beyond_the_peers_fin_is_not_delivered() {
    let mut w = Wire::new();
    let (client, server) = connected(&mut w);
    w.b.tcp(client).send_slice(&[7u8; 50]).unwrap();
    let data = next_data_segment(&mut w);
    // A forged segment ends the stream after 10 of those bytes; then B's real
    // segment arrives, its last 39 bytes beyond the FIN (which took one sequence
    // number).
    w.a.receive(w.now, &with_data_and_fin(&data, 0, &[7u8; 10]));
    w.a.receive(w.now, &data);
    w.a.transmit(w.now);
    let mut buf = [0u8; 100];
    let n = w.a.tcp(server).recv_slice(&mut buf).unwrap();
    assert_eq!(n, 10, "only the bytes before the FIN are the stream's");
    assert_eq!(
        w.a.tcp(server).recv_slice(&mut buf),
        Err(tcp::RecvError::Finished),
        "end of stream follows"
    );
}

#[test]
fn a_fin_after_data_beyond_the_window_waits_for_that_data() {
    let mut w = Wire::new();
    let (client, server) = connected(&mut w);
    // A's application reads nothing: B fills A's window but for 10 bytes. The
    // frames are moved by hand to keep B's last data segment.
    let room = w.a.tcp(server).recv_capacity() - 10;
    let mut sent = 0;
    let mut last = Vec::new();
    for _ in 0..1000 {
        if w.a.tcp(server).recv_queue() == room {
            break;
        }
        sent += w.b.tcp(client).send_slice(&vec![1u8; room - sent]).unwrap();
        w.b.transmit(w.now);
        while let Some(frame) = w.b.next_outgoing() {
            if frame.len() > 60 {
                last = frame.clone();
            }
            w.a.receive(w.now, &frame);
        }
        w.a.transmit(w.now);
        while let Some(frame) = w.a.next_outgoing() {
            w.b.receive(w.now, &frame);
        }
        w.now += MS;
    }
    assert_eq!(w.a.tcp(server).recv_queue(), room);
    // B's next segment, forged: 20 bytes and FIN when only 10 fit. A takes 10,
    // and not the FIN (its sequence number belongs to the 11th byte, which A
    // does not have).
    let old = {
        use smoltcp::wire::{Ipv4Packet, TcpPacket};
        let ip = Ipv4Packet::new_checked(&last[14..]).unwrap();
        TcpPacket::new_checked(ip.payload())
            .unwrap()
            .payload()
            .len()
    };
    w.a.receive(w.now, &with_data_and_fin(&last, old, &[2u8; 20]));
    w.a.transmit(w.now);
    assert_eq!(w.a.tcp(server).recv_queue(), room + 10);
    assert_eq!(
        w.a.tcp(server).state(),
        TcpState::Established,
        "the FIN was not taken"
    );
}

/// A first send to a neighbour not in the cache waits for ARP (or neighbour
/// discovery), then goes as soon as the answer is in: not at the end of
/// smoltcp's one-second silence. The clock is off whole microseconds, as a
/// pump's is.
#[test]
fn a_send_that_waited_for_a_neighbour_leaves_when_it_answers() {
    for (listen, target) in [
        ("0.0.0.0:80", "10.0.0.1:80"),
        ("[::]:80", "[2001:db8::1]:80"),
    ] {
        let mut w = Wire::new();
        w.a.run_cmd("/bin/ip addr add 2001:db8::1/64 dev vde0 nodad")
            .unwrap();
        w.b.run_cmd("/bin/ip addr add 2001:db8::2/64 dev vde0 nodad")
            .unwrap();
        w.now = Duration::from_nanos(1_234_567);
        listen_on(&mut w.a, addr(listen));
        let client =
            w.b.connect(addr(target), None, &SocketOptions::default())
                .unwrap();
        let (_, eb) = run_until(&mut w, 2000, |_, eb| !eb.is_empty());
        assert_eq!(eb, vec![Event::Connected(client)], "{target}");
        assert!(w.now < 10 * MS, "{target}: connected at {:?}", w.now);
    }
}

/// A connect waiting for its next hop's ARP answer still leaves as soon as the
/// answer comes when other neighbour news came first and woke it for nothing:
/// here another host's announcement, as a peer's duplicate address detection
/// solicitation comes while its link-local address is tentative. The wire
/// takes 1 ms each way, and the clock moves between the frames, as a pump's.
#[test]
fn a_connect_waiting_for_its_neighbour_is_not_lost_to_other_news() {
    let mut w = Wire::new();
    listen_on(&mut w.a, addr("0.0.0.0:80"));
    let client =
        w.b.connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
            .unwrap();
    let wire_time = MS;
    let mut in_flight: Vec<(Duration, bool, Vec<u8>)> = Vec::new();
    let mut connected = None;
    let mut other = Vec::new();
    frames::write_arp_announcement(
        &mut other,
        EthernetAddress([2, 0, 0, 0, 0, 9]),
        Ipv4Address::new(10, 0, 0, 9),
    );
    // Half-way through the ARP exchange, the other host's frame reaches b.
    let start = w.now;
    in_flight.push((start + Duration::from_micros(1_500), false, other));
    for _ in 0..20_000 {
        w.a.transmit(w.now);
        w.b.transmit(w.now);
        while let Some(frame) = w.a.next_outgoing() {
            in_flight.push((w.now + wire_time, false, frame));
        }
        while let Some(frame) = w.b.next_outgoing() {
            in_flight.push((w.now + wire_time, true, frame));
        }
        if Wire::events(&mut w.b).contains(&Event::Connected(client)) {
            connected = Some(w.now);
            break;
        }
        w.now += Duration::from_micros(100);
        let (due, later): (Vec<_>, Vec<_>) =
            in_flight.into_iter().partition(|(at, _, _)| *at <= w.now);
        in_flight = later;
        for (_, to_a, frame) in due {
            if to_a {
                w.a.receive(w.now, &frame);
            } else {
                w.b.receive(w.now, &frame);
            }
        }
    }
    // ARP request and answer, SYN and SYN-ACK: four trips of 1 ms.
    let took = connected.expect("connected") - start;
    assert!(took < 10 * MS, "connected after {took:?}");
}

/// Among many connections, a segment is served for its own alone: a transmit
/// polls and looks at that one, and the pump hears of that one only.
#[test]
fn a_segment_touches_its_connection_and_no_other() {
    let mut w = Wire::new();
    let options = SocketOptions::default();
    let bound = w.a.bind(addr("0.0.0.0:80"), &options).unwrap();
    w.a.listen(bound, 64, Arc::default(), &options).unwrap();
    let clients: Vec<TcpHandle> = (0..20)
        .map(|_| w.b.connect(addr("10.0.0.1:80"), None, &options).unwrap())
        .collect();
    let (ea, _) = run_until(&mut w, 100, |ea, _| accepted_addrs(ea).len() == 20);
    let servers: Vec<TcpHandle> = ea
        .iter()
        .filter_map(|e| match e {
            Event::Accepted { handle, peer, .. } => Some((peer.port(), *handle)),
            _ => None,
        })
        .map(|(port, handle)| {
            let client = clients
                .iter()
                .position(|&c| w.b.local_addr(c).unwrap().port() == port)
                .unwrap();
            (client, handle)
        })
        .fold(vec![TcpHandle::MIN; 20], |mut by_client, (c, s)| {
            by_client[c] = s;
            by_client
        });
    // Idle: every delayed ACK out, no timer left.
    for _ in 0..5 {
        w.run(MS);
    }
    let mut touched = Vec::new();
    w.a.take_touched(&mut touched);
    w.b.take_touched(&mut touched);
    w.a.served.clear();
    w.b.served.clear();
    for _ in 0..3 {
        w.run(MS);
    }
    assert!(w.a.served.is_empty() && w.b.served.is_empty(), "idle: none");

    w.b.tcp(clients[7]).send_slice(b"to 7").unwrap();
    for _ in 0..3 {
        w.run(MS);
    }
    let only = |served: &[TcpHandle], which: TcpHandle| {
        !served.is_empty() && served.iter().all(|&h| h == which)
    };
    assert!(only(&w.b.served, clients[7]), "{:?}", w.b.served);
    assert!(only(&w.a.served, servers[7]), "{:?}", w.a.served);
    let (mut on_a, mut on_b) = (Vec::new(), Vec::new());
    w.a.take_touched(&mut on_a);
    w.b.take_touched(&mut on_b);
    assert_eq!(on_a, [servers[7]]);
    assert!(on_b.iter().all(|&h| h == clients[7]), "{on_b:?}");
    assert_eq!(w.a.recv_queue(servers[7]), 4);
}

/// Many UDP sockets, each on its port's set: every datagram reaches the socket
/// of its port and no other, and one to a port nobody holds is refused.
#[test]
fn many_udp_sockets_each_get_their_own_datagram() {
    let mut w = Wire::new();
    let servers: Vec<(UdpHandle, u16)> = (0..200u16)
        .map(|i| {
            let port = 10_000 + i;
            (open_udp(&mut w.a, &format!("0.0.0.0:{port}")).0, port)
        })
        .collect();
    let (client, _) = open_udp(&mut w.b, "0.0.0.0:0");
    for (i, &(_, port)) in servers.iter().rev().enumerate() {
        let to = SocketAddr::new(addr("10.0.0.1:0").ip(), port);
        w.b.udp_send(client, Some(to), &port.to_be_bytes()).unwrap();
        if i % 32 == 31 {
            w.run(MS); // smoltcp's send ring has room for 64
        }
    }
    w.run(MS);
    for &(server, port) in &servers {
        let got = w.a.udp_recv(server).expect("its datagram");
        assert_eq!(got.data, port.to_be_bytes());
        assert!(w.a.udp_recv(server).is_none(), "port {port}: one only");
    }
    w.b.udp_connect(client, Some(addr("10.0.0.1:9"))).unwrap();
    w.b.udp_send(client, None, b"nobody").unwrap();
    w.run(MS);
    assert_eq!(w.b.udp_take_error(client), Some(libc::ECONNREFUSED));
}

#[test]
fn link_counters_count_what_crossed_the_wire() {
    let mut w = Wire::new();
    let (client, _server) = connected(&mut w);
    w.b.tcp(client).send_slice(&[7; 3000]).unwrap();
    w.b.tcp.mark(client);
    w.run(MS);
    let stats = |e: &Engine, dev| {
        e.observed()
            .stats
            .iter()
            .find(|(d, _)| *d == dev)
            .map(|(_, s)| *s)
            .unwrap()
    };
    let (a, b) = (stats(&w.a, 2), stats(&w.b, 2));
    assert!(a.rx_packets >= 4 && a.rx_bytes > 1000, "{a:?}");
    assert_eq!((a.rx_packets, a.rx_bytes), (b.tx_packets, b.tx_bytes));
    assert_eq!((b.rx_packets, b.rx_bytes), (a.tx_packets, a.tx_bytes));
    assert_eq!(stats(&w.a, 1), LinkStats::default(), "lo is down");
    let shown = w.a.run_cmd("/bin/ip -s link show dev vde0").unwrap();
    assert!(shown.contains(&format!(" {} ", a.rx_bytes)), "{shown}");
}
