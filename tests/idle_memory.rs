//! What idle stacks and idle connections cost in memory (issue 11's targets):
//! an idle configured stack at most 125 kB of RSS, an idle established connection
//! (both ends) at most 8 kB. RSS is the process's, read from
//! /proc/self/smaps_rollup, so this file holds a single test: another test
//! running in parallel in this process would count in it.

mod common;

use common::{configure, Switch};
use std::io::{Read, Write};
use vdestack::{Stack, TcpListener, TcpStream};

/// The process's resident memory, in kB.
fn rss_kb() -> f64 {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").expect("smaps_rollup");
    rollup
        .lines()
        .find_map(|line| line.strip_prefix("Rss:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("an Rss line")
}

fn stack(switch: &Switch, n: usize) -> Stack {
    let stack = Stack::new(&switch.vnl(), None).expect("a stack on the switch");
    configure(
        &stack,
        "vde0",
        &format!("10.123.{}.{}/16", n / 250, n % 250 + 1),
    );
    stack
}

const STACKS: usize = 100;
const CONNECTIONS: usize = 500;

#[test]
fn idle_stacks_and_idle_connections_hold_little_memory() {
    let switch = Switch::with_ports(STACKS + 8);
    // One-time costs of the library (allocator arenas, the first thread) are not
    // a stack's.
    drop(stack(&switch, 0));
    let before = rss_kb();
    let stacks: Vec<Stack> = (1..=STACKS).map(|n| stack(&switch, n)).collect();
    let per_stack = (rss_kb() - before) / STACKS as f64;
    eprintln!("an idle configured stack: {per_stack:.1} kB");
    assert!(
        per_stack <= 125.0,
        "an idle configured stack holds {per_stack:.1} kB"
    );
    drop(stacks);

    let (server, client) = (stack(&switch, 1), stack(&switch, 2));
    let listener = TcpListener::bind(&server, "0.0.0.0:80").unwrap();
    let open = || {
        let c = TcpStream::connect(&client, "10.123.0.2:80").unwrap();
        let (s, _) = listener.accept().unwrap();
        (c, s)
    };
    drop(open());
    let before = rss_kb();
    let mut held: Vec<(TcpStream, TcpStream)> = (0..CONNECTIONS).map(|_| open()).collect();
    let per_connection = (rss_kb() - before) / CONNECTIONS as f64;
    eprintln!("an idle connection, both ends: {per_connection:.2} kB");
    assert!(
        per_connection <= 8.0,
        "an idle connection (both ends) holds {per_connection:.2} kB"
    );
    // They are connections all the same.
    for (c, s) in held.iter_mut().take(10) {
        c.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
    }
}
