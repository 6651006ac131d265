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
    let took = both_connect(&mut w, ["[fd00::1]:80", "[fd00::3]:80"]);
    assert!(took <= 50 * MS, "took {took:?}");
}
