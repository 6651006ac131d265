//! All of 127.0.0.0/8 is local, as on Linux, where `lo` holds 127.0.0.1/8: a
//! connect to 127.0.0.2 or 127.1.2.3 reaches a listener on 0.0.0.0 or on that
//! address, and a socket binds to 127.0.0.5. smoltcp's interface holds
//! 127.0.0.1 alone and dropped the rest (see `Engine::receive_loopback`).

use super::*;

/// Runs the wire until `handle` connects on `w.a`; the events seen.
fn events_until_connected(w: &mut Wire, handle: TcpHandle) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..30 {
        w.run(100 * MS);
        events.extend(Wire::events(&mut w.a));
        if events.contains(&Event::Connected(handle)) {
            break;
        }
    }
    events
}

#[test]
fn any_address_of_127_8_reaches_a_wildcard_listener_and_its_own() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip link set lo up").unwrap();
    listen_on(&mut w.a, addr("0.0.0.0:80"));
    listen_on(&mut w.a, addr("127.1.2.3:81"));
    for target in ["127.0.0.2:80", "127.1.2.3:81"] {
        let handle =
            w.a.connect(addr(target), None, &SocketOptions::default())
                .unwrap();
        let events = events_until_connected(&mut w, handle);
        assert!(
            events.contains(&Event::Connected(handle)),
            "{target}: {events:?}"
        );
        let accepted = events.iter().find_map(|e| match e {
            Event::Accepted { local, .. } => Some(*local),
            _ => None,
        });
        assert_eq!(accepted, Some(addr(target)), "{events:?}");
    }
    assert!(w.b.next_outgoing().is_none(), "nothing left for the wire");
}

#[test]
fn a_socket_bound_to_127_0_0_5_connects_and_sends_from_there() {
    let mut w = Wire::new();
    w.a.run_cmd("/bin/ip link set lo up").unwrap();
    listen_on(&mut w.a, addr("127.0.0.1:80"));
    let options = SocketOptions::default();
    let handle =
        w.a.connect(addr("127.0.0.1:80"), Some(addr("127.0.0.5:0")), &options)
            .unwrap();
    let local = w.a.local_addr(handle).unwrap();
    assert_eq!(local.ip(), addr("127.0.0.5:0").ip());
    let events = events_until_connected(&mut w, handle);
    let peer = events.iter().find_map(|e| match e {
        Event::Accepted { peer, .. } => Some(*peer),
        _ => None,
    });
    assert_eq!(peer, Some(local), "{events:?}");
    // A datagram socket too.
    let (server, _) = open_udp(&mut w.a, "127.0.0.5:7");
    let (client, _) = open_udp(&mut w.a, "127.9.9.9:0");
    let from = w.a.udp_connect(client, Some(addr("127.0.0.5:7"))).unwrap();
    w.a.udp_send(client, None, b"lo/8").unwrap();
    w.run(MS);
    let got = w.a.udp_recv(server).unwrap();
    assert_eq!((got.data.as_slice(), got.peer), (&b"lo/8"[..], from));
}
