//! Deterministic mode: two stacks wired in memory, a virtual clock, a pcap capture.
//!
//! ```text
//! cargo run --example simulate -- /tmp/sim.pcap && tcpdump -nn -r /tmp/sim.pcap | head
//! ```
//!
//! No thread, no socket and no system call takes part in the simulation itself:
//! run it twice and the capture is the same byte for byte (timestamps included,
//! they are virtual).

use std::time::Duration;
use vdestack::sim::{SimEvent, SimNetwork, SimStack};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let capture = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "simulate.pcap".to_owned());
    let mut net = SimNetwork::new();
    net.set_recording(false);
    net.capture(std::fs::File::create(&capture)?)?;
    let server = net.add(SimStack::new("vde0", [2, 0, 0, 0, 0, 1], 1));
    let client = net.add(SimStack::new("vde0", [2, 0, 0, 0, 0, 2], 2));
    net.stack(server)
        .cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
    net.stack(client)
        .cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;

    net.stack(server).tcp_listen("0.0.0.0:80".parse()?, 16)?;
    let conn = net.stack(client).tcp_connect("10.0.0.1:80".parse()?)?;
    net.step(Duration::from_millis(1));
    let accepted = loop {
        match net.stack(server).next_event() {
            Some(SimEvent::Accepted { socket, peer, .. }) => {
                println!("{:?}: accepted a connection from {peer}", net.now());
                break socket;
            }
            Some(_) => continue,
            None => return Err("no connection".into()),
        }
    };

    // One megabyte from client to server, 1 ms of virtual time per round.
    let total = 1 << 20;
    let (mut sent, mut received) = (0, 0);
    let chunk = vec![0x42u8; 16 * 1024];
    let mut buf = vec![0u8; 16 * 1024];
    while received < total {
        if sent < total {
            let want = chunk.len().min(total - sent);
            if let Ok(n) = net.stack(client).send(conn, &chunk[..want]) {
                sent += n;
            }
        }
        net.step(Duration::from_millis(1));
        while let Ok(n) = net.stack(server).recv(accepted, &mut buf) {
            if n == 0 {
                break;
            }
            received += n;
        }
        if net.now() > Duration::from_secs(60) {
            return Err("the transfer did not finish in 60 virtual seconds".into());
        }
    }
    println!(
        "{:?}: received {received} bytes; capture in {capture}",
        net.now()
    );
    Ok(())
}
