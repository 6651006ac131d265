//! At the limits a large simulation reaches: a listener whose connections could
//! not be handed to the application, a listener whose backlog is full, and a
//! stack with no ephemeral port left. What Linux does in each (the kernel
//! backend showed it) is what the engine must do.

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

/// Runs the wire in 100 ms steps for `secs` seconds; the events of `w.b`.
fn run_for(w: &mut Wire, secs: u64) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..secs * 10 {
        w.run(100 * MS);
        events.extend(Wire::events(&mut w.b));
    }
    events
}

/// A listener of `w.a` with a backlog of 0, full: it holds one connection from
/// `w.b` that its application has not accepted. The counter the application
/// moves, and the client's end.
fn full_listener(w: &mut Wire) -> (Arc<AtomicU64>, TcpHandle) {
    let (_, accepted) = listener(w, 0);
    let first = connect(w);
    w.run(MS);
    assert_eq!(handed_out(&Wire::events(&mut w.a)).len(), 1);
    assert_eq!(Wire::events(&mut w.b), [Event::Connected(first)]);
    (accepted, first)
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

/// A connection waiting in the queue that its peer resets still holds its slot
/// until the application accepts it: Linux's `accept` returns it (and its reads
/// then fail with ECONNRESET).
#[test]
fn a_connection_reset_in_the_queue_keeps_its_slot_until_accepted() {
    let mut w = Wire::new();
    let (accepted, first) = full_listener(&mut w);
    w.b.release(first, true);
    w.run(MS);
    let second = connect(&mut w);
    let events = run_for(&mut w, 2);
    assert!(events.is_empty(), "the queue is full: {events:?}");
    accepted.fetch_add(1, Ordering::Relaxed);
    let events = run_for(&mut w, 5);
    assert_eq!(events, [Event::Connected(second)]);
}

/// A connect to a listener whose backlog is full: its SYN is dropped, and it
/// retries (1, 2, 4... s) until the application accepts, as on Linux. The
/// client knew the server's address already (an earlier connection), so no ARP
/// is heard while it waits: that used to read as an unreachable host
/// (EHOSTUNREACH after 3 s).
#[test]
fn a_full_backlog_keeps_a_connect_retrying_until_there_is_room() {
    let mut w = Wire::new();
    let (accepted, _) = full_listener(&mut w);
    run_for(&mut w, 1);
    let late = connect(&mut w);
    let events = run_for(&mut w, 10);
    assert!(events.is_empty(), "still trying after 10 s: {events:?}");
    accepted.fetch_add(1, Ordering::Relaxed);
    let events = run_for(&mut w, 20);
    assert_eq!(events, [Event::Connected(late)]);
}

/// ... and gives up as Linux does after its SYN retries (127 s): ETIMEDOUT.
#[test]
fn a_connect_to_a_full_backlog_times_out_after_its_syn_retries() {
    let mut w = Wire::new();
    full_listener(&mut w);
    let late = connect(&mut w);
    let events = run_for(&mut w, CONNECT_GIVE_UP.as_secs() - 1);
    assert!(events.is_empty(), "still trying: {events:?}");
    let events = run_for(&mut w, 2);
    assert_eq!(events, [Event::ConnectFailed(late, libc::ETIMEDOUT)]);
}

/// With every ephemeral port taken, a connect fails with EADDRNOTAVAIL and a
/// bind to port 0 with EADDRINUSE, as on Linux (the kernel backend, with its
/// range narrowed, gives both).
#[test]
fn with_no_ephemeral_port_left_connect_and_bind_fail_as_on_linux() {
    let mut w = Wire::new();
    listener(&mut w, 4);
    let options = SocketOptions::default();
    let any = addr("0.0.0.0:0");
    for _ in ports::EPHEMERAL {
        w.b.bind(any, &options).unwrap();
    }
    let connect = w.b.connect(addr("10.0.0.1:80"), None, &options);
    assert_eq!(
        connect.map(drop).unwrap_err().raw_os_error(),
        Some(libc::EADDRNOTAVAIL)
    );
    let bind = w.b.bind(any, &options);
    assert_eq!(bind.unwrap_err().raw_os_error(), Some(libc::EADDRINUSE));
    // A port asked for, in use: EADDRINUSE, for a connect too.
    let taken = addr("10.0.0.2:40000");
    let connect = w.b.connect(addr("10.0.0.1:80"), Some(taken), &options);
    assert_eq!(
        connect.map(drop).unwrap_err().raw_os_error(),
        Some(libc::EADDRINUSE)
    );
    // One port back: a connect gets it.
    w.b.unbind(addr("0.0.0.0:40000"), &options);
    let client = w.b.connect(addr("10.0.0.1:80"), None, &options).unwrap();
    w.run(MS);
    assert_eq!(Wire::events(&mut w.b), [Event::Connected(client)]);
}
