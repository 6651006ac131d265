//! At the limits a large simulation reaches: a listener whose connections could
//! not be handed to the application. What Linux does (the kernel backend showed
//! it) is what the engine must do.

use super::*;

/// A listener of `w.a` on port 80 with `backlog`, and the counter its
/// application moves as it accepts.
fn listener(w: &mut Wire, backlog: usize) -> (ListenerId, Arc<AtomicU64>) {
    let options = SocketOptions::default();
    let accepted = Arc::new(AtomicU64::new(0));
    let local = w.a.bind(addr("0.0.0.0:80"), &options).unwrap();
    let id =
        w.a.listen(local, backlog, accepted.clone(), &options)
            .unwrap();
    (id, accepted)
}

fn connect(w: &mut Wire) -> TcpHandle {
    w.b.connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
        .unwrap()
}

/// The connections `events` say `w.a` handed out.
fn handed_out(events: &[Event]) -> Vec<TcpHandle> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Accepted { handle, .. } => Some(*handle),
            _ => None,
        })
        .collect()
}

/// The pump refuses a connection it has no descriptors for (a reset): the
/// connection leaves the backlog with it. It used to keep its slot for good, so
/// that after backlog + 1 refusals every SYN was dropped.
#[test]
fn a_refused_connection_gives_its_backlog_slot_back() {
    let mut w = Wire::new();
    let (id, _) = listener(&mut w, 1);
    for round in 0..5 {
        let client = connect(&mut w);
        w.run(MS);
        let handed = handed_out(&Wire::events(&mut w.a));
        assert_eq!(handed.len(), 1, "round {round}: the connection came");
        // What the pump does when it cannot make the connection's socket pair.
        w.a.never_accepted(id);
        w.a.release(handed[0], true);
        w.run(MS);
        assert_eq!(
            Wire::events(&mut w.b),
            [
                Event::Connected(client),
                Event::Aborted(client, libc::ECONNRESET)
            ],
            "round {round}: connected, then refused with a reset"
        );
    }
    let client = connect(&mut w);
    w.run(MS);
    assert_eq!(handed_out(&Wire::events(&mut w.a)).len(), 1);
    assert_eq!(Wire::events(&mut w.b), [Event::Connected(client)]);
}
