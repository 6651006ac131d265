//! Neighbour discovery is rate-limited per neighbour, as on Linux: smoltcp keeps
//! one interface-wide second of silence after any ARP request or neighbour
//! solicitation, so a program connecting to two new hosts at once saw the second
//! wait a whole second for its first request (see `Engine::ask_neighbor`).

use super::*;

/// Connects `w.b` to both `targets` at once; the virtual time until both are
/// connected.
fn both_connect(w: &mut Wire, targets: [&str; 2]) -> Duration {
    listen_on(&mut w.a, addr("[::]:80"));
    let handles = targets.map(|t| {
        w.b.connect(addr(t), None, &SocketOptions::default())
            .unwrap()
    });
    let start = w.now;
    let mut connected = Vec::new();
    for _ in 0..300 {
        w.run(5 * MS);
        for event in Wire::events(&mut w.b) {
            if let Event::Connected(handle) = event {
                connected.push(handle);
            }
        }
        if handles.iter().all(|h| connected.contains(h)) {
            return w.now - start;
        }
    }
    panic!("not both connected: {connected:?} of {handles:?}");
}

#[test]
fn connects_to_two_new_ipv4_neighbours_do_not_wait_for_each_other() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip addr add 10.0.0.3/24 dev vde0")
        .unwrap();
    let took = both_connect(&mut w, ["10.0.0.1:80", "10.0.0.3:80"]);
    assert!(took <= 50 * MS, "took {took:?}");
}

#[test]
fn connects_to_two_new_ipv6_neighbours_do_not_wait_for_each_other() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip addr add fd00::1/64 dev vde0; /bin/ip addr add fd00::3/64 dev vde0")
        .unwrap();
    w.b.run_cmd("/bin/ip addr add fd00::2/64 dev vde0").unwrap();
    w.settle_dad();
    let took = both_connect(&mut w, ["[fd00::1]:80", "[fd00::3]:80"]);
    assert!(took <= 50 * MS, "took {took:?}");
}

/// Every frame `from` sends in `ms` milliseconds of transmits, delivered to
/// `to`; and what `to` answers, delivered back.
fn exchange(w: &mut Wire, ms: u64) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    for _ in 0..ms {
        w.a.transmit(w.now);
        while let Some(frame) = w.a.next_outgoing() {
            w.b.receive(w.now, &frame);
            sent.push(frame);
        }
        w.b.transmit(w.now);
        while let Some(frame) = w.b.next_outgoing() {
            w.a.receive(w.now, &frame);
        }
        w.now += MS;
    }
    sent
}

#[test]
fn a_static_neighbour_entry_is_used_kept_and_shown() {
    let mut w = Wire::new();
    // A wrong hardware address first: the SYN goes to it, and nobody is asked.
    w.a.run_cmd("/bin/ip neigh add 10.0.0.2 lladdr 02:00:00:00:00:09 dev vde0")
        .unwrap();
    listen_on(&mut w.b, addr("0.0.0.0:80"));
    let options = SocketOptions::default();
    let client = w.a.connect(addr("10.0.0.2:80"), None, &options).unwrap();
    let sent = exchange(&mut w, 20);
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|f| frames::arp_request(f).is_none()));
    let wrong = EthernetAddress([2, 0, 0, 0, 0, 9]);
    let ipv4 = sent.iter().filter(|f| frames::ipv4_dst(f).is_some());
    assert!(ipv4.clone().count() > 0);
    assert!(ipv4.into_iter().all(|f| frames::dst_mac(f) == Some(wrong)));
    assert!(Wire::events(&mut w.a).is_empty(), "not connected");
    // The right one: the connection goes through, still without ARP from a.
    w.a.run_cmd("/bin/ip neigh replace 10.0.0.2 lladdr 02:00:00:00:00:02 dev vde0")
        .unwrap();
    let sent = exchange(&mut w, 1500);
    assert!(sent.iter().all(|f| frames::arp_request(f).is_none()));
    assert!(Wire::events(&mut w.a).contains(&Event::Connected(client)));
    // b asked for a, a answered: b lists what it learned.
    let shown = w.b.run_cmd("/bin/ip neigh show dev vde0").unwrap();
    assert_eq!(shown, "10.0.0.1 lladdr 02:00:00:00:00:01 REACHABLE \n");
    // Past smoltcp's 60 s, the entry holds.
    w.now += Duration::from_secs(90);
    w.a.tcp(client).send_slice(b"late").unwrap();
    w.a.tcp.mark(client);
    let sent = exchange(&mut w, 5);
    assert!(
        sent.iter().all(|f| frames::arp_request(f).is_none()),
        "asked after 90 s"
    );
    assert!(sent.iter().any(|f| frames::tcp_view(f).is_some()));
    // a saw b's request too, but lists its entry as made.
    let shown = w.a.run_cmd("/bin/ip neigh show").unwrap();
    assert_eq!(
        shown,
        "10.0.0.2 dev vde0 lladdr 02:00:00:00:00:02 PERMANENT \n"
    );
}

/// A sender in the middle of a transfer knows its neighbour and does not ask
/// for it again: smoltcp arms its retransmission timer at its one-second
/// floor, so right after a send the socket's next poll is a second off, as
/// it is for a socket that found its neighbour missing; the engine tells the
/// two apart by the segment it just sent. (It took every sending socket for
/// one waiting for its neighbour, and asked once a second.)
#[test]
fn a_sender_in_a_transfer_does_not_ask_for_its_neighbour_again() {
    let mut w = Wire::new();
    let (client, server) = connected(&mut w);
    let chunk = vec![7u8; 64 * 1024];
    let mut buf = vec![0u8; 3000];
    let (mut asked, mut got) = (0, 0);
    // 4 s of a flow the reader holds to 3 kB a millisecond.
    let peer = "10.0.0.1".parse().unwrap();
    for _ in 0..4000 {
        let _ = w.b.tcp(client).send_slice(&chunk);
        asked += millisecond(&mut w, peer);
        if let Ok(n) = w.a.tcp(server).recv_slice(&mut buf) {
            got += n;
        }
    }
    assert!(got > 10_000_000, "the flow went on: {got} bytes");
    assert_eq!(asked, 0, "ARP requests from the sender for its peer");
}

/// One millisecond of the wire: `b`'s frames to `a`, and `a`'s back; how
/// many of `b`'s asked for `peer`'s hardware address.
fn millisecond(w: &mut Wire, peer: IpAddr) -> usize {
    let mut asked = 0;
    w.b.transmit(w.now);
    while let Some(frame) = w.b.next_outgoing() {
        let target = frames::arp_request(&frame)
            .map(|(target, _)| IpAddr::V4(target))
            .or_else(|| frames::neighbor_solicit(&frame).map(|(target, _)| IpAddr::V6(target)));
        asked += usize::from(target == Some(peer));
        w.a.receive(w.now, &frame);
    }
    w.a.transmit(w.now);
    while let Some(frame) = w.a.next_outgoing() {
        w.b.receive(w.now, &frame);
    }
    w.now += MS;
    asked
}

/// How long after `b` sends `bytes` on `client` they reach `server` on `a`
/// (at `peer`), with the ARP requests and neighbour solicitations for `peer`
/// `b` sent meanwhile; at most 3 s of 1 ms steps.
fn delivery(
    w: &mut Wire,
    (client, server): (TcpHandle, TcpHandle),
    peer: IpAddr,
    bytes: &[u8],
) -> (Duration, usize) {
    w.b.tcp(client).send_slice(bytes).unwrap();
    let (start, mut asked, mut got) = (w.now, 0, 0);
    let mut buf = vec![0u8; bytes.len()];
    for _ in 0..3000 {
        asked += millisecond(w, peer);
        if let Ok(n) = w.a.tcp(server).recv_slice(&mut buf) {
            got += n;
        }
        if got == bytes.len() {
            return (w.now - start, asked);
        }
    }
    panic!("{got} of {} bytes in 3 s", bytes.len());
}

/// `b` sends on `conn` and the bytes reach `a` (at `peer`) within 5 ms,
/// without a request for `peer`: `b` kept its neighbour.
fn delivered_at_once_from_a_kept_neighbour(w: &mut Wire, conn: (TcpHandle, TcpHandle), peer: &str) {
    let (took, asked) = delivery(w, conn, peer.parse().unwrap(), b"hello");
    assert!(took <= 5 * MS, "took {took:?}");
    assert_eq!(asked, 0, "the neighbour was kept, not asked for again");
}

/// An address added keeps the neighbours the stack knows, as on Linux:
/// smoltcp empties its whole neighbour cache when its addresses change (as
/// when a link-local address passes duplicate address detection, a second
/// after the link came up), and a connection that sent right after found its
/// peer gone and, within a second of its last request, waited a second for
/// the next. Here the connection's ARP was 100 ms before the change.
#[test]
fn an_address_added_keeps_the_ipv4_neighbour_a_connection_uses() {
    let mut w = Wire::new();
    let conn = connected(&mut w);
    w.run(100 * MS);
    w.b.run_cmd("/bin/ip addr add 10.0.1.2/24 dev vde0")
        .unwrap();
    delivered_at_once_from_a_kept_neighbour(&mut w, conn, "10.0.0.1");
}

/// The same over IPv6, the neighbour solicited 100 ms before an IPv4 address
/// is added (an IPv6 one is tentative for a second, and changes smoltcp's
/// addresses only then, past the solicitation's silence).
#[test]
fn an_address_added_keeps_the_ipv6_neighbour_a_connection_uses() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip addr add fd00::1/64 dev vde0").unwrap();
    w.b.run_cmd("/bin/ip addr add fd00::2/64 dev vde0").unwrap();
    w.settle_dad();
    listen_on(&mut w.a, addr("[::]:80"));
    let client =
        w.b.connect(addr("[fd00::1]:80"), None, &SocketOptions::default())
            .unwrap();
    w.run(MS);
    let server = match Wire::events(&mut w.a).as_slice() {
        [Event::Accepted { handle, .. }] => *handle,
        other => panic!("{other:?}"),
    };
    w.run(100 * MS);
    w.b.run_cmd("/bin/ip addr add 10.0.1.2/24 dev vde0")
        .unwrap();
    delivered_at_once_from_a_kept_neighbour(&mut w, (client, server), "fd00::1");
}

/// `ip neigh flush to ADDR` forgets that neighbour only, as on Linux: the
/// connection to another goes on without asking for it again.
#[test]
fn flushing_one_neighbour_keeps_the_others() {
    let mut w = Wire::new();
    let conn = connected(&mut w);
    w.run(100 * MS);
    let mut answer = Vec::new();
    frames::write_arp_reply_to(
        &mut answer,
        EthernetAddress([2, 0, 0, 0, 0, 9]),
        "10.0.0.9".parse().unwrap(),
        EthernetAddress([2, 0, 0, 0, 0, 2]),
        "10.0.0.2".parse().unwrap(),
    );
    w.b.receive(w.now, &answer);
    w.b.run_cmd("/bin/ip neigh flush to 10.0.0.9").unwrap();
    let shown = w.b.run_cmd("/bin/ip neigh show").unwrap();
    assert!(
        !shown.contains("10.0.0.9") && shown.contains("10.0.0.1"),
        "{shown}"
    );
    delivered_at_once_from_a_kept_neighbour(&mut w, conn, "10.0.0.1");
}

/// The address change every stack makes: its link-local address passes
/// duplicate address detection a second after the link came up. A connection
/// made within that second (its ARP half a second before) that sends right
/// after goes on at once. (It waited a second: one throughput-bench transfer
/// in four or five did.)
#[test]
fn a_connection_keeps_its_neighbour_when_the_link_local_address_becomes_valid() {
    let engine = |n: u8| {
        let mut engine = Engine::new(
            NetConfig::new("vde0", [2, 0, 0, 0, 0, n]),
            u64::from(n),
            Duration::ZERO,
        );
        engine.set_accept_ra(false);
        engine
            .run_cmd(&format!(
                "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.{n}/24 dev vde0"
            ))
            .unwrap();
        engine
    };
    let mut w = Wire {
        a: engine(1),
        b: engine(2),
        now: Duration::ZERO,
    };
    w.run(500 * MS);
    let conn = connected(&mut w);
    // Past the end of duplicate address detection, at 1 s.
    w.run(510 * MS);
    delivered_at_once_from_a_kept_neighbour(&mut w, conn, "10.0.0.1");
}

/// A link taken down forgets its neighbours, learned and static, as Linux's
/// does (checked with `ip link set DEV down` on a veth, kernel 6.18): `ip
/// neigh show` lists none, and once the link is up again a connection asks
/// for its peer before it sends. (The learned ones were kept and handed back
/// to smoltcp when the link came up.)
#[test]
fn a_link_taken_down_forgets_its_neighbours() {
    let mut w = Wire::new();
    let conn = connected(&mut w);
    w.b.run_cmd("/bin/ip neigh add 10.0.0.7 lladdr 02:00:00:00:00:07 dev vde0")
        .unwrap();
    let shown = w.b.run_cmd("/bin/ip neigh show").unwrap();
    assert!(
        shown.contains("10.0.0.1 ") && shown.contains("10.0.0.7 "),
        "{shown}"
    );
    w.b.run_cmd("/bin/ip link set vde0 down").unwrap();
    w.run(MS);
    assert_eq!(w.b.run_cmd("/bin/ip neigh show").unwrap(), "");
    w.b.run_cmd("/bin/ip link set vde0 up").unwrap();
    assert_eq!(w.b.run_cmd("/bin/ip neigh show").unwrap(), "");
    let peer = "10.0.0.1".parse().unwrap();
    let (_, asked) = delivery(&mut w, conn, peer, b"hello");
    assert_eq!(asked, 1, "ARP requests for the peer after the link came up");
    let shown = w.b.run_cmd("/bin/ip neigh show").unwrap();
    assert_eq!(
        shown,
        "10.0.0.1 dev vde0 lladdr 02:00:00:00:00:01 REACHABLE \n"
    );
}
