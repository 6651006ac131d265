//! A connection the application closed goes through TIME-WAIT, as on Linux:
//! when its last ACK is lost, the peer's retransmitted FIN is acknowledged
//! again, not answered with RST (issue 12: 26 of 100 flows ended so). What is
//! kept is a record of a few dozen bytes for Linux's 60 s, not the socket and
//! its rings (see `time_wait`).

use super::*;
use smoltcp::wire::TcpSeqNumber;

#[test]
fn a_retransmitted_fin_after_a_lost_last_ack_is_acknowledged_not_reset() {
    let mut w = Wire::new();
    let (client, server) = connected(&mut w);
    // The client (b) closes first and will hold TIME-WAIT.
    w.b.release(client, false);
    w.run(MS);
    w.a.release(server, false);
    // The server's FIN goes to b; b's last ACK is lost.
    w.a.transmit(w.now);
    while let Some(frame) = w.a.next_outgoing() {
        w.b.receive(w.now, &frame);
    }
    w.b.transmit(w.now);
    let mut lost = 0;
    while let Some(frame) = w.b.next_outgoing() {
        let view = frames::tcp_view(&frame).expect("a TCP segment");
        assert!(view.ack && !view.fin && !view.rst, "{view:?}");
        lost += 1;
    }
    assert_eq!(lost, 1, "one last ACK, lost");
    assert!(w.b.tcp.is_empty(), "b keeps no socket in TIME-WAIT");
    assert_eq!(w.b.time_waits.len(), 1, "but a record");
    // The server retransmits its FIN; b answers it with an ACK.
    let (mut acks, mut resets) = (0, 0);
    for _ in 0..100 {
        w.now += Duration::from_millis(100);
        w.a.transmit(w.now);
        while let Some(frame) = w.a.next_outgoing() {
            w.b.receive(w.now, &frame);
        }
        w.b.transmit(w.now);
        while let Some(frame) = w.b.next_outgoing() {
            let view = frames::tcp_view(&frame).expect("a TCP segment");
            acks += usize::from(view.ack && !view.rst);
            resets += usize::from(view.rst);
            w.a.receive(w.now, &frame);
        }
        if w.a.tcp.is_empty() {
            break;
        }
    }
    assert_eq!(resets, 0, "no RST for the retransmitted FIN");
    assert!(acks >= 1, "the retransmitted FIN was acknowledged");
    assert!(w.a.tcp.is_empty(), "the server is done with LAST-ACK");
    // TIME-WAIT ends in time, and the port with it.
    for _ in 0..70 {
        w.run(Duration::from_secs(1));
    }
    assert!(w.b.time_waits.is_empty(), "TIME-WAIT ended");
}

#[test]
fn a_new_syn_meeting_time_wait_opens_a_new_connection() {
    let mut w = Wire::new();
    let (client, server) = connected(&mut w);
    let port = w.b.local_addr(client).unwrap().port();
    // The server (a) closes first and holds TIME-WAIT.
    w.a.release(server, false);
    w.run(MS);
    w.b.release(client, false);
    w.run(MS);
    assert!(
        w.b.tcp.is_empty() && w.a.time_waits.len() == 1,
        "a in TIME-WAIT"
    );
    let _ = (Wire::events(&mut w.a), Wire::events(&mut w.b));
    // The client comes back from the same port at once.
    let local = Some(SocketAddr::new(addr("10.0.0.2:0").ip(), port));
    let again =
        w.b.connect(addr("10.0.0.1:80"), local, &SocketOptions::default())
            .unwrap();
    // A SYN above the old connection's last sequence number opens the new one
    // at once (Linux's TCP_TW_SYN); one below it (smoltcp's ISNs are random)
    // gets the old connection's ACK, which the client resets, ending TIME-WAIT,
    // and its retransmitted SYN opens the new one, as against Linux without
    // timestamps.
    let mut events = Vec::new();
    for _ in 0..40 {
        w.run(Duration::from_millis(100));
        events.extend(Wire::events(&mut w.b));
        if !events.is_empty() {
            break;
        }
    }
    assert_eq!(events, vec![Event::Connected(again)]);
    // And the server has it too: the client's last ACK of the handshake carries
    // the new connection's numbers, not the old one's (`frames::AckSequence`).
    w.run(MS);
    let accepted = Wire::events(&mut w.a);
    assert!(
        accepted.iter().any(|e| matches!(e, Event::Accepted { .. })),
        "the server accepts it: {accepted:?}"
    );
}

/// b closes first, a's FIN reaches b, b's last ACK is lost: b holds TIME-WAIT
/// (from the time returned), a is in LAST-ACK. Returns a's FIN, to replay.
fn last_ack_lost(w: &mut Wire) -> (Vec<u8>, Duration) {
    let (client, server) = connected(w);
    w.b.release(client, false);
    w.run(MS);
    w.a.release(server, false);
    w.a.transmit(w.now);
    let mut fin = None;
    while let Some(frame) = w.a.next_outgoing() {
        if frames::tcp_view(&frame).is_some_and(|v| v.fin) {
            fin = Some(frame.clone());
        }
        w.b.receive(w.now, &frame);
    }
    w.b.transmit(w.now);
    while w.b.next_outgoing().is_some() {}
    (fin.expect("a's FIN"), w.now)
}

/// What b answers to `frame` at `at`: (ACKs, RSTs), with the ACK's number.
fn answers(w: &mut Wire, frame: &[u8], at: Duration) -> (usize, usize, Option<TcpSeqNumber>) {
    w.now = at;
    w.b.transmit(at);
    while w.b.next_outgoing().is_some() {}
    w.b.receive(at, frame);
    w.b.transmit(at);
    let (mut acks, mut resets, mut number) = (0, 0, None);
    while let Some(frame) = w.b.next_outgoing() {
        let view = frames::tcp_view(&frame).expect("a TCP segment");
        resets += usize::from(view.rst);
        if view.ack && !view.rst {
            acks += 1;
            number = view.ack_number;
        }
    }
    (acks, resets, number)
}

#[test]
fn a_fin_retransmitted_30_s_after_the_close_is_acknowledged_61_s_after_reset() {
    let mut w = Wire::new();
    let (fin, closed) = last_ack_lost(&mut w);
    let fin_seq = frames::tcp_view(&fin).unwrap().seq;
    let (acks, resets, number) = answers(&mut w, &fin, closed + Duration::from_secs(30));
    assert_eq!((acks, resets), (1, 0), "acknowledged, not reset");
    assert_eq!(number, Some(fin_seq + 1), "the ACK covers the FIN");

    let mut w = Wire::new();
    let (fin, closed) = last_ack_lost(&mut w);
    let (acks, resets, _) = answers(&mut w, &fin, closed + Duration::from_secs(61));
    assert_eq!((acks, resets), (0, 1), "TIME-WAIT is over: reset");
    assert!(w.b.time_waits.is_empty());
}

#[test]
fn an_rst_ends_time_wait_and_gives_the_port_back() {
    let mut w = Wire::new();
    let (fin, closed) = last_ack_lost(&mut w);
    let view = frames::tcp_view(&fin).unwrap();
    let port = view.segment.dst.port();
    // Linux (tcp_rfc1337 = 0) lets an RST at rcv_nxt end TIME-WAIT.
    let mut rst = fin.clone();
    let l3 = 14;
    let ihl = usize::from(rst[l3] & 0x0f) * 4;
    let tcp = &mut rst[l3 + ihl..];
    let mut packet = smoltcp::wire::TcpPacket::new_unchecked(&mut *tcp);
    packet.set_fin(false);
    packet.set_ack(false);
    packet.set_rst(true);
    packet.set_seq_number(view.seq + 1);
    let (src, dst) = (view.segment.src.ip(), view.segment.dst.ip());
    packet.fill_checksum(&src.into(), &dst.into());
    let (acks, resets, _) = answers(&mut w, &rst, closed + Duration::from_secs(1));
    assert_eq!((acks, resets), (0, 0), "an RST is not answered");
    assert!(w.b.time_waits.is_empty(), "the RST ended TIME-WAIT");
    // The port is free again: a plain bind takes it.
    let again = w.b.bind(
        SocketAddr::new(view.segment.dst.ip(), port),
        &SocketOptions::default(),
    );
    assert!(again.is_ok(), "{again:?}");
}

#[test]
fn a_port_held_by_time_wait_alone_binds_with_reuseaddr_only() {
    let mut w = Wire::new();
    let (fin, _) = last_ack_lost(&mut w);
    let local = frames::tcp_view(&fin).unwrap().segment.dst;
    let plain = SocketOptions::default();
    let reuse = SocketOptions {
        reuse_address: true,
        ..SocketOptions::default()
    };
    // The closed connection held its port without SO_REUSEADDR: as on Linux,
    // its TIME-WAIT keeps the port from any bind.
    assert_eq!(
        w.b.bind(local, &plain).unwrap_err().raw_os_error(),
        Some(libc::EADDRINUSE)
    );
    // A connection that had SO_REUSEADDR leaves a TIME-WAIT that a bind with
    // SO_REUSEADDR passes and a plain one does not.
    let mut w = Wire::new();
    listen_on(&mut w.a, addr("0.0.0.0:80"));
    let client = w.b.connect(addr("10.0.0.1:80"), None, &reuse).unwrap();
    w.run(MS);
    let server = match Wire::events(&mut w.a).as_slice() {
        [Event::Accepted { handle, .. }] => *handle,
        other => panic!("{other:?}"),
    };
    let local = w.b.local_addr(client).unwrap();
    w.b.release(client, false);
    w.run(MS);
    w.a.release(server, false);
    w.run(MS);
    assert!(w.b.tcp.is_empty() && w.b.time_waits.len() == 1);
    assert_eq!(
        w.b.bind(local, &plain).unwrap_err().raw_os_error(),
        Some(libc::EADDRINUSE)
    );
    assert_eq!(w.b.bind(local, &reuse).unwrap(), local);
}

#[test]
fn four_thousand_closed_connections_hold_no_rings() {
    let (mut w, _a, b) = super::memory::counted_wire();
    let options = SocketOptions::default();
    let bound = w.a.bind(addr("0.0.0.0:80"), &options).unwrap();
    w.a.listen(bound, 5000, Arc::default(), &options).unwrap();
    let mut pairs = Vec::new();
    for _ in 0..4000 {
        pairs.push(w.b.connect(addr("10.0.0.1:80"), None, &options).unwrap());
    }
    w.run(MS);
    let servers: Vec<TcpHandle> = Wire::events(&mut w.a)
        .into_iter()
        .filter_map(|e| match e {
            Event::Accepted { handle, .. } => Some(handle),
            _ => None,
        })
        .collect();
    assert_eq!(servers.len(), 4000);
    for &client in &pairs {
        w.b.release(client, false);
    }
    w.run(MS);
    for &server in &servers {
        w.a.release(server, false);
    }
    for _ in 0..5 {
        w.run(MS);
    }
    assert!(w.b.tcp.is_empty(), "no socket is kept");
    assert_eq!(w.b.time_waits.len(), 4000, "a record each");
    let asked = b.0.lock().unwrap().clone();
    assert_eq!(asked.out, 0, "every ring given back");
    // A record is tens of bytes.
    assert!(std::mem::size_of::<(frames::Flow, crate::engine::time_wait::Record)>() <= 96);
}
