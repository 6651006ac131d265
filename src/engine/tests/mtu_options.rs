//! A UDP socket's MTU options on the wire: `IP_MTU_DISCOVER` and
//! `IPV6_MTU_DISCOVER` (DF, fragments or `EMSGSIZE`), `IPV6_DONTFRAG` and
//! `IPV6_MTU` (the fragment size). Each expectation is what Linux 6.18 sent
//! from a tap of MTU 1400 for the same calls (DF and MF bits, packet lengths,
//! the error).

use super::*;
use crate::engine::options::{
    PMTUDISC_DO, PMTUDISC_DONT, PMTUDISC_OMIT, PMTUDISC_PROBE, PMTUDISC_WANT,
};
use smoltcp::wire::{EthernetFrame, EthernetProtocol, Ipv4Packet, Ipv6Packet};

/// One IP packet `b` sent: its length (IP header included), whether it is a
/// fragment that more follow (IPv4 MF, or any IPv6 fragment), and IPv4's DF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    len: usize,
    fragment: bool,
    df: bool,
}

/// Shorthands for the expectations: a whole packet with or without DF, a
/// fragment.
fn df(len: usize) -> Sent {
    Sent {
        len,
        fragment: false,
        df: true,
    }
}
fn plain(len: usize) -> Sent {
    Sent {
        len,
        fragment: false,
        df: false,
    }
}
fn piece(len: usize) -> Sent {
    Sent {
        len,
        fragment: true,
        df: false,
    }
}

/// The UDP packets (whole or in fragments) `b` sends until the wire is quiet,
/// delivered to `a`; ARP and neighbour discovery are left out.
fn sent_by_b(w: &mut Wire) -> Vec<Sent> {
    let mut sent = Vec::new();
    for _ in 0..100 {
        w.a.transmit(w.now);
        w.b.transmit(w.now);
        let mut moved = false;
        while let Some(frame) = w.b.next_outgoing() {
            sent.extend(describe(&frame));
            w.a.receive(w.now, &frame);
            moved = true;
        }
        while let Some(frame) = w.a.next_outgoing() {
            w.b.receive(w.now, &frame);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    sent
}

fn describe(frame: &[u8]) -> Option<Sent> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            let fragment = ip.more_frags() || ip.frag_offset() != 0;
            // UDP, or an echo request.
            let ours = match u8::from(ip.next_header()) {
                17 => true,
                1 => ip.payload().first() == Some(&8),
                _ => false,
            };
            (ours || fragment).then(|| Sent {
                len: usize::from(ip.total_len()),
                fragment: ip.more_frags(),
                df: ip.dont_frag(),
            })
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            let next = u8::from(ip.next_header());
            // UDP (17), a fragment (44), or an echo request (58, 128).
            let echo = next == 58 && ip.payload().first() == Some(&128);
            (matches!(next, 17 | 44) || echo).then(|| Sent {
                len: 40 + usize::from(ip.payload_len()),
                fragment: next == 44,
                df: false,
            })
        }
        _ => None,
    }
}

/// Two engines whose link has an MTU of 1400, IPv4 and IPv6 addresses, and
/// each other's link addresses learned.
fn wire_of_1400() -> Wire {
    let mut w = Wire::new();
    for (e, n) in [(&mut w.a, 1), (&mut w.b, 2)] {
        e.run_cmd(&format!(
            "/bin/ip link set vde0 mtu 1400; /bin/ip -6 addr add fd00::{n}/64 dev vde0 nodad"
        ))
        .unwrap();
    }
    let (probe, _) = open_udp(&mut w.b, "[::]:0");
    for to in ["10.0.0.1:9", "[fd00::1]:9"] {
        w.b.udp_send(probe, Some(addr(to)), b"hello").unwrap();
        for _ in 0..10 {
            w.run(100 * MS);
        }
    }
    w.b.udp_close(probe);
    w
}

/// A datagram of `len` bytes from `socket` of `b` to `to`: what went on the
/// wire, or the error.
fn send(w: &mut Wire, socket: UdpHandle, to: &str, len: usize) -> Result<Vec<Sent>, i32> {
    match w.b.udp_send(socket, Some(addr(to)), &vec![7; len]) {
        Ok(()) => Ok(sent_by_b(w)),
        Err(e) => Err(e.raw_os_error().unwrap_or(0)),
    }
}

#[test]
fn ip_mtu_discover_decides_df_fragments_and_emsgsize() {
    let mut w = wire_of_1400();
    let (server, _) = open_udp(&mut w.a, "0.0.0.0:9");
    let (socket, _) = open_udp(&mut w.b, "0.0.0.0:0");
    let fragments = || Ok(vec![piece(1396), plain(25)]);
    let expected = [
        // DONT, WANT, DO, PROBE, INTERFACE, OMIT: 1,372 bytes fill a packet
        // of 1,400; one more byte is fragments or EMSGSIZE.
        (Ok(vec![plain(1400)]), fragments()),
        (Ok(vec![df(1400)]), fragments()),
        (Ok(vec![df(1400)]), Err(libc::EMSGSIZE)),
        (Ok(vec![df(1400)]), Err(libc::EMSGSIZE)),
        (Ok(vec![plain(1400)]), Err(libc::EMSGSIZE)),
        (Ok(vec![plain(1400)]), fragments()),
    ];
    for (mode, (fits, beyond)) in expected.into_iter().enumerate() {
        set_udp(&mut w.b, socket, |o| o.mtu_discover_v4 = mode as u8);
        assert_eq!(send(&mut w, socket, "10.0.0.1:9", 1372), fits, "{mode}");
        assert_eq!(send(&mut w, socket, "10.0.0.1:9", 1373), beyond, "{mode}");
        let sent = if beyond.is_ok() { 2 } else { 1 };
        for _ in 0..sent {
            assert!(w.a.udp_recv(server).is_some(), "{mode}: delivered whole");
        }
    }
    // A datagram larger than the MTU from an IPv6 socket to a v4-mapped
    // address keeps to the IPv4 options.
    let (v6, _) = open_udp(&mut w.b, "[::]:0");
    set_udp(&mut w.b, v6, |o| o.dont_fragment_v6 = true);
    assert_eq!(send(&mut w, v6, "[::ffff:10.0.0.1]:9", 1373), fragments());
    set_udp(&mut w.b, v6, |o| o.mtu_discover_v4 = PMTUDISC_DO);
    assert_eq!(
        send(&mut w, v6, "[::ffff:10.0.0.1]:9", 1373),
        Err(libc::EMSGSIZE)
    );
    // A multicast datagram (the engine builds those itself) keeps DF as
    // unicast does.
    w.b.run_cmd("/bin/ip route add 224.0.0.0/4 dev vde0")
        .unwrap();
    for (mode, sent) in [(PMTUDISC_DONT, plain(128)), (PMTUDISC_WANT, df(128))] {
        set_udp(&mut w.b, socket, |o| o.mtu_discover_v4 = mode);
        assert_eq!(send(&mut w, socket, "239.1.2.3:9", 100), Ok(vec![sent]));
    }
}

#[test]
fn ipv6_mtu_discover_dontfrag_and_the_fragment_size() {
    let mut w = wire_of_1400();
    let (socket, _) = open_udp(&mut w.b, "[::]:0");
    let to = "[fd00::1]:9";
    let fragments = || Ok(vec![piece(1400), piece(57)]);
    for mode in 0..6u8 {
        set_udp(&mut w.b, socket, |o| o.mtu_discover_v6 = mode);
        assert_eq!(send(&mut w, socket, to, 1352), Ok(vec![plain(1400)]));
        let beyond = if (2..=4).contains(&mode) {
            Err(libc::EMSGSIZE)
        } else {
            fragments()
        };
        assert_eq!(send(&mut w, socket, to, 1353), beyond, "{mode}");
    }
    set_udp(&mut w.b, socket, |o| {
        o.mtu_discover_v6 = PMTUDISC_WANT;
        o.dont_fragment_v6 = true;
    });
    assert_eq!(send(&mut w, socket, to, 1353), Err(libc::EMSGSIZE));
    // IPV6_MTU below the path's: what DONTFRAG holds datagrams to, and
    // without it the size of the fragments of a packet beyond the path's MTU
    // (one between the two leaves whole).
    set_udp(&mut w.b, socket, |o| o.fragment_size_v6 = 1280);
    assert_eq!(send(&mut w, socket, to, 1232), Ok(vec![plain(1280)]));
    assert_eq!(send(&mut w, socket, to, 1233), Err(libc::EMSGSIZE));
    set_udp(&mut w.b, socket, |o| o.dont_fragment_v6 = false);
    assert_eq!(send(&mut w, socket, to, 1240), Ok(vec![plain(1288)]));
    assert_eq!(
        send(&mut w, socket, to, 1353),
        Ok(vec![piece(1280), piece(177)])
    );
    // Above the path's MTU, it changes nothing.
    set_udp(&mut w.b, socket, |o| o.fragment_size_v6 = 9000);
    assert_eq!(send(&mut w, socket, to, 1353), fragments());
    // A multicast datagram too (the engine builds those itself).
    w.b.run_cmd("/bin/ip -6 route add ff00::/8 dev vde0")
        .unwrap();
    set_udp(&mut w.b, socket, |o| {
        o.fragment_size_v6 = 1280;
        o.mtu_discover_v6 = PMTUDISC_DONT;
    });
    assert_eq!(
        send(&mut w, socket, "[ff02::1:2]:9", 1353),
        Ok(vec![piece(1280), piece(177)])
    );
}

/// To a local address, the MTU is `lo`'s (65,536): DONTFRAG and `DO` do not
/// refuse what fits there, but `IPV6_MTU` still bounds it (Linux 6.18: a
/// 1,300-byte datagram to `::1` with DONTFRAG and `IPV6_MTU` 1280 is
/// EMSGSIZE), and IP_MTU reads lo's.
#[test]
fn local_destinations_meet_los_mtu() {
    let mut w = wire_of_1400();
    w.b.run_cmd("/bin/ip link set lo up").unwrap();
    let (v4, _) = open_udp(&mut w.b, "0.0.0.0:0");
    set_udp(&mut w.b, v4, |o| o.mtu_discover_v4 = PMTUDISC_DO);
    assert_eq!(send(&mut w, v4, "127.0.0.1:9", 3000), Ok(vec![]));
    let (v6, _) = open_udp(&mut w.b, "[::]:0");
    set_udp(&mut w.b, v6, |o| o.dont_fragment_v6 = true);
    assert_eq!(send(&mut w, v6, "[::1]:9", 3000), Ok(vec![]));
    set_udp(&mut w.b, v6, |o| o.fragment_size_v6 = 1280);
    assert_eq!(send(&mut w, v6, "[::1]:9", 1300), Err(libc::EMSGSIZE));
    assert_eq!(w.b.path_to(addr("127.0.0.1:9").ip()).1, 65_536);
    assert_eq!(w.b.path_to(addr("[fd00::1]:9").ip()).1, 1400);
}

/// Below a router's MTU (Linux's `mtu6`, 1400 on a link of 1500): `PROBE`
/// and `OMIT` keep to the device's MTU, the others to the router's (Linux
/// 6.18 sent the same: 1,452 bytes whole with `PROBE` and `OMIT`, 1,453 in
/// fragments of 1,496 with `OMIT`, `EMSGSIZE` with `PROBE`).
#[test]
fn probe_and_omit_keep_to_the_devices_mtu() {
    let mut w = wire_of_1400();
    for e in [&mut w.a, &mut w.b] {
        e.run_cmd("/bin/ip link set vde0 mtu 1500").unwrap();
    }
    w.b.io.mtu6 = 1400;
    let (socket, _) = open_udp(&mut w.b, "[::]:0");
    let to = "[fd00::1]:9";
    assert_eq!(
        send(&mut w, socket, to, 1353),
        Ok(vec![piece(1400), piece(57)])
    );
    set_udp(&mut w.b, socket, |o| o.mtu_discover_v6 = PMTUDISC_OMIT);
    assert_eq!(send(&mut w, socket, to, 1452), Ok(vec![plain(1500)]));
    assert_eq!(
        send(&mut w, socket, to, 1453),
        Ok(vec![piece(1496), piece(61)])
    );
    set_udp(&mut w.b, socket, |o| o.mtu_discover_v6 = PMTUDISC_PROBE);
    assert_eq!(send(&mut w, socket, to, 1452), Ok(vec![plain(1500)]));
    assert_eq!(send(&mut w, socket, to, 1453), Err(libc::EMSGSIZE));
}

/// Ping sockets take the same options (Linux's ping sockets send through
/// `ip_append_data` and `ip6_append_data` too): no DF with `DONT`, `EMSGSIZE`
/// with `DO`, and IPv6 fragments of `IPV6_MTU` beyond the path's MTU (Linux
/// 6.18 sent the same).
#[test]
fn ping_sockets_too() {
    let mut w = wire_of_1400();
    let echo = |v6: bool, len: usize| {
        let mut message = vec![0u8; len];
        message[0] = if v6 { 128 } else { 8 };
        message
    };
    let (v4, _) =
        w.b.ping_open(addr("0.0.0.0:0"), &SocketOptions::default())
            .unwrap();
    let ping = |w: &mut Wire, socket, to: &str, message: Vec<u8>| match w.b.udp_send(
        socket,
        Some(addr(to)),
        &message,
    ) {
        Ok(()) => Ok(sent_by_b(w)),
        Err(e) => Err(e.raw_os_error().unwrap_or(0)),
    };
    assert_eq!(
        ping(&mut w, v4, "10.0.0.1:0", echo(false, 100)),
        Ok(vec![df(120)])
    );
    set_udp(&mut w.b, v4, |o| o.mtu_discover_v4 = PMTUDISC_DONT);
    assert_eq!(
        ping(&mut w, v4, "10.0.0.1:0", echo(false, 100)),
        Ok(vec![plain(120)])
    );
    set_udp(&mut w.b, v4, |o| o.mtu_discover_v4 = PMTUDISC_DO);
    assert_eq!(
        ping(&mut w, v4, "10.0.0.1:0", echo(false, 1380)),
        Ok(vec![df(1400)])
    );
    assert_eq!(
        ping(&mut w, v4, "10.0.0.1:0", echo(false, 1381)),
        Err(libc::EMSGSIZE)
    );
    let (v6, _) =
        w.b.ping_open(addr("[::]:0"), &SocketOptions::default())
            .unwrap();
    set_udp(&mut w.b, v6, |o| o.fragment_size_v6 = 1280);
    assert_eq!(
        ping(&mut w, v6, "[fd00::1]:0", echo(true, 1360)),
        Ok(vec![plain(1400)])
    );
    assert_eq!(
        ping(&mut w, v6, "[fd00::1]:0", echo(true, 1361)),
        Ok(vec![piece(1280), piece(177)])
    );
}
