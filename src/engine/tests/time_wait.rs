//! A connection the application closed goes through TIME-WAIT, as on Linux:
//! when its last ACK is lost, the peer's retransmitted FIN is acknowledged
//! again, not answered with RST (issue 12: 26 of 100 flows ended so).

use super::*;

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
    assert!(!w.b.tcp.is_empty(), "b keeps its connection in TIME-WAIT");
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
    assert!(w.b.tcp.is_empty(), "TIME-WAIT ended");
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
    assert!(w.b.tcp.is_empty() && !w.a.tcp.is_empty(), "a in TIME-WAIT");
    let _ = (Wire::events(&mut w.a), Wire::events(&mut w.b));
    // The client comes back from the same port at once.
    let local = Some(SocketAddr::new(addr("10.0.0.2:0").ip(), port));
    let again =
        w.b.connect(addr("10.0.0.1:80"), local, &SocketOptions::default())
            .unwrap();
    w.run(MS);
    assert_eq!(Wire::events(&mut w.b), vec![Event::Connected(again)]);
    // And the server has it too: the client's last ACK of the handshake carries
    // the new connection's numbers, not the old one's (`frames::AckSequence`).
    let accepted = Wire::events(&mut w.a);
    assert!(
        matches!(accepted[..], [Event::Accepted { .. }]),
        "the server accepts it: {accepted:?}"
    );
}
