//! What a stack can do without the memory it used to hold: datagrams and echo
//! messages beyond the MTU, both families, over the wire and over loopback, with
//! the fragmentation done at the device boundary.

use super::*;

/// An ICMP echo request (type 8, or 128 for ICMPv6) carrying `payload`.
fn echo_request(v6: bool, payload: &[u8]) -> Vec<u8> {
    let mut message = vec![if v6 { 128 } else { 8 }, 0, 0, 0, 0, 0, 0, 1];
    message.extend_from_slice(payload);
    message
}

/// Runs the wire, recording the largest frame each side put on it, until
/// `done` (smoltcp asks for one neighbour a second at most: up to 3 s).
fn run_watching(w: &mut Wire, mut done: impl FnMut(&mut Wire) -> bool) -> usize {
    let mut largest = 0;
    for _ in 0..3000 {
        w.a.transmit(w.now);
        w.b.transmit(w.now);
        while let Some(frame) = w.a.next_outgoing() {
            largest = largest.max(frame.len());
            w.b.receive(w.now, &frame);
        }
        while let Some(frame) = w.b.next_outgoing() {
            largest = largest.max(frame.len());
            w.a.receive(w.now, &frame);
        }
        w.a.receive_loopback(w.now);
        w.b.receive_loopback(w.now);
        if done(w) {
            return largest;
        }
        w.now += MS;
    }
    panic!("not done in 3 s");
}

/// Runs the wire until `take` gives something; returns it and the largest frame
/// seen.
fn wait_for<T>(w: &mut Wire, mut take: impl FnMut(&mut Wire) -> Option<T>) -> (T, usize) {
    let mut got = None;
    let largest = run_watching(w, |w| {
        got = got.take().or_else(|| take(w));
        got.is_some()
    });
    (got.expect("done"), largest)
}

#[test]
fn the_largest_ipv4_datagrams_cross_the_wire_in_fragments_and_loopback_whole() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip link set lo up").unwrap();
    let (server, _) = open_udp(&mut w.a, "0.0.0.0:53");
    let (client, _) = open_udp(&mut w.b, "0.0.0.0:4000");
    let data: Vec<u8> = (0..MAX_UDP_V4).map(|i| (i % 251) as u8).collect();
    w.b.udp_send(client, Some(addr("10.0.0.1:53")), &data)
        .unwrap();
    let (got, largest) = wait_for(&mut w, |w| w.a.udp_recv(server));
    assert_eq!(got.peer, addr("10.0.0.2:4000"));
    assert!(got.data == data, "altered");
    assert_eq!(largest, 1514, "every frame within the MTU");
    // Back over the same path, and to itself over loopback.
    w.a.udp_send(server, Some(got.peer), &data).unwrap();
    let (own, _) = open_udp(&mut w.a, "127.0.0.1:5000");
    w.a.udp_send(own, Some(addr("127.0.0.1:53")), &data)
        .unwrap();
    let (mut back, mut looped) = (None, None);
    run_watching(&mut w, |w| {
        back = back.take().or_else(|| w.b.udp_recv(client));
        looped = looped.take().or_else(|| w.a.udp_recv(server));
        back.is_some() && looped.is_some()
    });
    assert!(back.unwrap().data == data && looped.unwrap().data == data);
}

#[test]
fn echo_requests_beyond_the_mtu_are_answered_in_fragments_both_families() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip -6 addr add fd00::1/64 dev vde0 nodad")
        .unwrap();
    w.b.run_cmd("/bin/ip -6 addr add fd00::2/64 dev vde0 nodad")
        .unwrap();
    for (local, peer) in [("[::]:0", "[fd00::1]:0"), ("0.0.0.0:0", "10.0.0.1:0")] {
        let v6 = local.starts_with('[');
        let (ping, _) =
            w.b.ping_open(addr(local), &SocketOptions::default())
                .unwrap();
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        w.b.udp_send(ping, Some(addr(peer)), &echo_request(v6, &payload))
            .unwrap();
        let (reply, largest) = wait_for(&mut w, |w| w.b.udp_recv(ping));
        assert_eq!(&reply.data[8..], &payload[..], "v6 {v6}");
        assert!(largest <= 1514, "v6 {v6}: a frame of {largest} bytes");
    }
}

#[test]
fn a_stack_holds_no_fragment_buffers() {
    // smoltcp's own IPv4 fragmentation kept 64 KiB inside every interface and
    // grew four 64 KiB reassembly buffers; the engine keeps none of that.
    assert!(std::mem::size_of::<Interface>() < 16 * 1024);
}

/// A wire whose engines take their rings from counting sources.
pub(super) fn counted_wire() -> (Wire, rings::testing::Counting, rings::testing::Counting) {
    let mut w = Wire::new();
    let (a, b) = (
        rings::testing::Counting::default(),
        rings::testing::Counting::default(),
    );
    w.a.set_ring_source(Box::new(a.clone()));
    w.b.set_ring_source(Box::new(b.clone()));
    (w, a, b)
}

#[test]
fn rings_come_from_the_source_and_go_back_when_the_connection_ends() {
    let (mut w, a, b) = counted_wire();
    let (client, server) = connected(&mut w);
    let asked = |s: &rings::testing::Counting| s.0.lock().unwrap().clone();
    assert_eq!(
        (asked(&a).out, asked(&b).out),
        (1, 1),
        "one lease per socket"
    );
    // An idle connection asks nothing more.
    for _ in 0..10 {
        w.run(MS);
    }
    assert_eq!((asked(&a).forgets, asked(&b).forgets), (0, 0));
    w.b.release(client, false);
    w.a.release(server, false);
    // Through TIME-WAIT (the rings come back as it starts, see `time_wait`).
    for _ in 0..200 {
        w.run(Duration::from_millis(500));
    }
    assert!(w.a.tcp.is_empty() && w.b.tcp.is_empty());
    for s in [&a, &b] {
        assert_eq!((asked(s).out, asked(s).back), (0, 1), "given back");
    }
}

#[test]
fn a_drained_transmit_ring_gives_its_pages_back() {
    let (mut w, _, b) = counted_wire();
    let (client, server) = connected(&mut w);
    let asked = || b.0.lock().unwrap().clone();
    // Bulk: 200 KiB, through a 128 KiB ring.
    let chunk = vec![3u8; 16 * 1024];
    let (mut sent, mut got) = (0, 0);
    while got < 200 * 1024 {
        if sent < 200 * 1024 {
            sent += w.b.tcp(client).send_slice(&chunk).unwrap();
        }
        w.run(MS);
        got += w.a.recv_with(server, |bytes| Ok(bytes.len())).unwrap_or(0);
    }
    // Until the last acknowledgement empties the ring.
    for _ in 0..100 {
        w.run(MS);
        if w.b.tcp(client).send_queue() == 0 {
            break;
        }
    }
    w.run(MS);
    let bulk = asked();
    assert!(bulk.forgets >= 1, "{bulk:?}");
    assert_eq!(bulk.forgotten % TCP_BUFFER, 0, "the whole ring each time");
    // Small messages reuse the ring's first page: its pages go back at most
    // once a second.
    for _ in 0..20 {
        w.b.tcp(client).send_slice(b"ping").unwrap();
        w.run(Duration::from_millis(10));
    }
    let small = asked();
    assert!(small.forgets - bulk.forgets <= 1, "{small:?}");
    w.b.tcp(client).send_slice(b"ping").unwrap();
    w.run(Duration::from_secs(1));
    w.run(MS);
    assert!(asked().forgets > small.forgets, "a second later");
}

#[test]
fn datagram_sockets_take_their_rings_from_the_source_and_give_them_back() {
    let (mut w, a, _) = counted_wire();
    let asked = || a.0.lock().unwrap().clone();
    let (udp, _) = open_udp(&mut w.a, "0.0.0.0:53");
    let (ping, _) =
        w.a.ping_open(addr("0.0.0.0:0"), &SocketOptions::default())
            .unwrap();
    assert_eq!((asked().out, asked().back), (2, 0));
    // A socket that cannot open gives its rings back at once.
    let taken = w.a.udp_open(addr("0.0.0.0:53"), &SocketOptions::default());
    assert_eq!(taken.unwrap_err().raw_os_error(), Some(libc::EADDRINUSE));
    assert_eq!((asked().out, asked().back), (2, 1));
    w.a.udp_close(udp);
    w.a.udp_close(ping);
    w.run(MS);
    assert_eq!((asked().out, asked().back), (0, 3));
}

#[test]
fn a_ring_drained_too_soon_after_the_last_time_gives_its_pages_back_later_unprompted() {
    let (mut w, _, b) = counted_wire();
    let (client, server) = connected(&mut w);
    let forgets = || b.0.lock().unwrap().forgets;
    let burst = vec![5u8; 8 * 1024];
    let send_and_drain = |w: &mut Wire| {
        assert_eq!(w.b.tcp(client).send_slice(&burst).unwrap(), burst.len());
        let mut got = 0;
        for _ in 0..50 {
            w.run(MS);
            got += w.a.recv_with(server, |bytes| Ok(bytes.len())).unwrap_or(0);
        }
        assert_eq!(got, burst.len());
        assert_eq!(w.b.tcp(client).send_queue(), 0, "all acknowledged");
    };
    send_and_drain(&mut w);
    assert_eq!(forgets(), 1, "the first drained ring goes back at once");
    // Drained again within 100 ms of that: too soon, and then the connection
    // goes quiet, with no segment or timer of its own to bring it back.
    send_and_drain(&mut w);
    assert_eq!(forgets(), 1, "not twice within 100 ms");
    for _ in 0..3 {
        w.run(Duration::from_millis(50));
    }
    assert_eq!(
        forgets(),
        2,
        "its pages went back when the 100 ms were over"
    );
}
