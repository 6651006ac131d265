//! Ephemeral ports as Linux chooses them (RFC 6056's double hash): a new stack
//! does not start where the last one did, yet the same seed picks the same ports.

use super::*;

/// The first ports a fresh engine seeded with `seed` gives connects to 10.0.0.1:80.
fn first_ports(seed: u64, count: usize) -> Vec<u16> {
    let mut engine = Engine::new(
        NetConfig::new("vde0", [2, 0, 0, 0, 0, 2]),
        seed,
        Duration::ZERO,
    );
    engine
        .run_cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")
        .unwrap();
    (0..count)
        .map(|_| {
            let handle = engine
                .connect(addr("10.0.0.1:80"), None, &SocketOptions::default())
                .unwrap();
            engine.local_addr(handle).unwrap().port()
        })
        .collect()
}

#[test]
fn a_fresh_stack_does_not_reuse_the_last_ones_ports() {
    let runs: Vec<Vec<u16>> = (1..=10).map(|seed| first_ports(seed, 3)).collect();
    for ports in &runs {
        assert!(
            ports.iter().all(|p| ports::EPHEMERAL.contains(p)),
            "{ports:?}"
        );
        assert!(
            ports.iter().all(|p| p.is_multiple_of(2)),
            "a connect prefers even ports: {ports:?}"
        );
    }
    let firsts: std::collections::BTreeSet<u16> = runs.iter().map(|p| p[0]).collect();
    assert!(
        firsts.len() >= 9,
        "ten stacks, ten starting places: {runs:?}"
    );
    assert_eq!(first_ports(7, 3), runs[6], "the same seed, the same ports");
}

#[test]
fn bind_to_port_zero_prefers_odd_ports_from_a_keyed_place() {
    let bound = |seed| {
        let mut engine = Engine::new(
            NetConfig::new("vde0", [2, 0, 0, 0, 0, 2]),
            seed,
            Duration::ZERO,
        );
        engine
            .bind(addr("0.0.0.0:0"), &SocketOptions::default())
            .unwrap()
            .port()
    };
    let (a, b) = (bound(1), bound(2));
    assert!(!a.is_multiple_of(2) && !b.is_multiple_of(2), "{a} {b}");
    assert_ne!(a, b);
}

#[test]
fn connections_from_even_ports_spread_over_two_listeners() {
    // connect's ephemeral ports are even: the spread must not follow parity.
    let mut counts = [0usize; 2];
    for port in (40000..40200).step_by(2) {
        counts[spread(addr(&format!("10.0.0.2:{port}"))) % 2] += 1;
    }
    assert!(counts[0] > 30 && counts[1] > 30, "{counts:?}");
}

#[test]
fn udp_ephemeral_ports_come_from_a_keyed_place_and_are_free_in_their_family() {
    let udp_ports = |seed, count| {
        let mut engine = Engine::new(
            NetConfig::new("vde0", [2, 0, 0, 0, 0, 2]),
            seed,
            Duration::ZERO,
        );
        (0..count)
            .map(|_| {
                let (_, bound) = engine
                    .udp_open(addr("0.0.0.0:0"), &SocketOptions::default())
                    .unwrap();
                bound.port()
            })
            .collect::<Vec<u16>>()
    };
    let runs: Vec<Vec<u16>> = (1..=10).map(|seed| udp_ports(seed, 3)).collect();
    let firsts: std::collections::BTreeSet<u16> = runs.iter().map(|p| p[0]).collect();
    assert!(firsts.len() >= 9, "{runs:?}");
    assert!(runs.iter().flatten().all(|p| ports::EPHEMERAL.contains(p)));
    assert_eq!(udp_ports(3, 3), runs[2], "the same seed, the same ports");
}
