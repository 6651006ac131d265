//! The engine on its own: two engines wired back to back in memory, a virtual clock,
//! no threads and no descriptors. Every run is exactly repeatable.

use super::*;
use crate::cmd::NetConfig;

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
        a.run_cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")
            .unwrap();
        b.run_cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")
            .unwrap();
        Wire {
            a,
            b,
            now: Duration::ZERO,
        }
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
    let local = w.a.bind(addr("0.0.0.0:80")).unwrap();
    let listener = w.a.listen(local, 4, accepted);
    let client = w.b.connect(addr("10.0.0.1:80"), None).unwrap();
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
    assert!(
        w.a.conns.is_empty() && w.b.conns.is_empty(),
        "both sides forgot"
    );
    assert!(Wire::events(&mut w.a).is_empty() && Wire::events(&mut w.b).is_empty());
}

#[test]
fn refused_unreachable_and_address_errors() {
    let mut w = Wire::new();
    let refused = w.b.connect(addr("10.0.0.1:81"), None).unwrap();
    w.run(MS);
    assert_eq!(
        Wire::events(&mut w.b),
        vec![Event::ConnectFailed(refused, libc::ECONNREFUSED)]
    );
    let err = w.b.connect(addr("192.0.2.1:80"), None).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH));
    let err = w.b.bind(addr("10.9.9.9:80")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL));
    w.b.bind(addr("10.0.0.2:80")).unwrap();
    let err = w.b.bind(addr("0.0.0.0:80")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
}

#[test]
fn unanswered_arp_is_host_unreachable_after_three_seconds() {
    let mut w = Wire::new();
    let handle = w.b.connect(addr("10.0.0.77:80"), None).unwrap();
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
    let local = w.a.bind(addr("0.0.0.0:80")).unwrap();
    w.a.listen(local, 2, accepted.clone());
    let clients: Vec<_> = (0..4)
        .map(|_| w.b.connect(addr("10.0.0.1:80"), None).unwrap())
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
    let local = w.a.bind(addr("0.0.0.0:80")).unwrap();
    w.a.listen(local, 0, Arc::new(AtomicU64::new(0)));
    for _ in 0..2 {
        w.b.connect(addr("10.0.0.1:80"), None).unwrap();
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
    let err = w.a.connect(addr("127.0.0.1:80"), None).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH));
    w.a.run_cmd("/bin/ip link set lo up").unwrap();
    let local = w.a.bind(addr("0.0.0.0:80")).unwrap();
    w.a.listen(local, 4, Arc::default());
    for target in ["127.0.0.1:80", "10.0.0.1:80"] {
        let handle = w.a.connect(addr(target), None).unwrap();
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
        let local = w.a.bind(addr("0.0.0.0:80")).unwrap();
        w.a.listen(local, 4, Arc::default());
        let client = w.b.connect(addr("10.0.0.1:80"), None).unwrap();
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
