//! Closing a socket frees its port at once, as on Linux.
//!
//! The pump learns of a close from the hang-up of its end of the socket pair, posted
//! by the kernel before `close` returns; a bind that follows must find the port free
//! even when the pump is busy. This file holds one test and runs its backends one
//! after the other: a process that forks (a kernel stack's helper, a spawned
//! program) while a socket is being closed keeps a copy of its descriptor for a
//! moment, which keeps the port taken, on a kernel socket as on ours, so no other
//! test may run beside it.

mod common;

use common::{Backend, Net, Wire};
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;
use vdestack::UdpSocket;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The next bind of a closed socket's port, of the same family or of the other (an
/// IPv6 wildcard takes IPv4 too), succeeds every time, with no wait in between.
fn a_closed_sockets_port_is_free_at_once_on(b: Backend) {
    let net = Net::with_backends(Wire::Ptp, b, b);
    net.add_ipv6();
    // Datagrams back and forth keep the stack busy, so that a bind may reach it
    // while it is in the middle of its work rather than asleep.
    let busy = UdpSocket::bind(&net.a, "10.0.0.1:6001").unwrap();
    let sink = UdpSocket::bind(&net.b, "10.0.0.2:6001").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let noise = {
        let stop = stop.clone();
        thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = busy.send_to(&[0; 1000], addr("10.0.0.2:6001"));
                let _ = sink.recv_from(&mut [0; 1000]);
            }
        })
    };
    for round in 0..200 {
        let (first, second) = if round % 2 == 0 {
            ("0.0.0.0:6000", "[::]:6000")
        } else {
            ("[::]:6000", "0.0.0.0:6000")
        };
        let socket = UdpSocket::bind(&net.a, first).unwrap();
        drop(socket);
        let socket = UdpSocket::bind(&net.a, second)
            .unwrap_or_else(|e| panic!("round {round}: {second} after closing {first}: {e}"));
        drop(socket);
        let listener = vdestack::TcpListener::bind(&net.a, first).unwrap();
        drop(listener);
        let listener = vdestack::TcpListener::bind(&net.a, second)
            .unwrap_or_else(|e| panic!("round {round}: listen {second} after {first}: {e}"));
        drop(listener);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    noise.join().unwrap();
}

#[test]
fn a_closed_sockets_port_is_free_at_once() {
    a_closed_sockets_port_is_free_at_once_on(Backend::Userspace);
    if common::kernel_available("port_reuse::a_closed_sockets_port_is_free_at_once") {
        a_closed_sockets_port_is_free_at_once_on(Backend::Kernel);
    }
}
