//! Ping sockets: a program pings from its stack, as with Linux's
//! `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`.

mod common;

use common::{Backend, Net, Wire};
use std::io;
use std::net::IpAddr;
use std::time::Duration;
use vdestack::PingSocket;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Two stacks of `backend`; on kernel stacks, ping sockets are allowed first (a new
/// namespace's `net.ipv4.ping_group_range` allows nobody, where the userspace stack
/// always has them).
fn net(wire: Wire, backend: Backend) -> Net {
    let net = Net::with_backends(wire, backend, backend);
    if backend == Backend::Kernel {
        for stack in [&net.a, &net.b] {
            stack
                .cmd("/sbin/sysctl -q -w 'net.ipv4.ping_group_range=0 0'")
                .expect("allow ping sockets in the namespace");
        }
    }
    net
}

/// Sends echo requests to `to` until a reply comes (bounded); returns it.
fn ping(socket: &PingSocket, to: IpAddr, payload: &[u8]) -> (Vec<u8>, IpAddr) {
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for seq in 0..20 {
        socket
            .send_to(&PingSocket::echo_request(to.is_ipv6(), seq, payload), to)
            .unwrap();
        // Late replies to earlier requests (to others too) are skipped.
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) if from == to => return (buf[..n].to_vec(), from),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv_from: {e}"),
            }
        }
    }
    panic!("no echo reply from {to}");
}

fn ping_another_stack_and_itself(b: Backend) {
    let net = net(Wire::Switch, b);
    let socket = PingSocket::bind(&net.b, ip("0.0.0.0")).unwrap();
    let (reply, from) = ping(&socket, ip("10.0.0.1"), b"over the switch");
    assert_eq!(from, ip("10.0.0.1"));
    assert_eq!(reply[0], 0, "an echo reply");
    assert_eq!(
        u16::from_be_bytes([reply[4], reply[5]]),
        socket.ident(),
        "carrying the socket's identifier"
    );
    assert_eq!(&reply[8..], b"over the switch");
    // Its own addresses need lo up, as in a Linux namespace.
    net.b.cmd("/bin/ip link set lo up").unwrap();
    let (reply, from) = ping(&socket, ip("127.0.0.1"), b"self");
    assert_eq!((from, &reply[8..]), (ip("127.0.0.1"), &b"self"[..]));
    let (_, from) = ping(&socket, ip("10.0.0.2"), b"own address");
    assert_eq!(from, ip("10.0.0.2"));
}

fn ping_over_ipv6(b: Backend) {
    let net = net(Wire::Switch, b);
    net.add_ipv6();
    let socket = PingSocket::bind(&net.b, ip("::")).unwrap();
    let (reply, from) = ping(&socket, ip("fd00::1"), b"v6");
    assert_eq!(from, ip("fd00::1"));
    assert_eq!(reply[0], 129, "an ICMPv6 echo reply");
    assert_eq!(&reply[8..], b"v6");
}

fn ping_socket_errors(b: Backend) {
    let net = net(Wire::Ptp, b);
    let socket = PingSocket::bind_ident(&net.b, ip("0.0.0.0"), 4242).unwrap();
    assert_eq!(socket.ident(), 4242);
    let errno = |e: io::Error| e.raw_os_error().unwrap();
    // As on Linux, two ping sockets may share an identifier.
    let twin = PingSocket::bind_ident(&net.b, ip("0.0.0.0"), 4242).unwrap();
    assert_eq!(twin.ident(), 4242);
    drop(twin);
    // Only echo requests may be sent.
    assert_eq!(
        errno(
            socket
                .send_to(&[0, 0, 0, 0, 0, 0, 0, 0], ip("10.0.0.1"))
                .unwrap_err()
        ),
        libc::EINVAL
    );
    assert_eq!(
        errno(socket.send_to(&[8, 0, 0], ip("10.0.0.1")).unwrap_err()),
        libc::EINVAL
    );
    assert_eq!(
        errno(
            socket
                .send_to(&PingSocket::echo_request(false, 1, b""), ip("192.168.9.9"))
                .unwrap_err()
        ),
        libc::ENETUNREACH
    );
    assert_eq!(
        errno(
            socket
                .send_to(&PingSocket::echo_request(false, 1, b""), ip("10.0.0.255"))
                .unwrap_err()
        ),
        libc::EACCES
    );
    let (_, from) = ping(&socket, ip("10.0.0.1"), &[7u8; 1400]);
    assert_eq!(from, ip("10.0.0.1"));
}

on_both_backends! {
    ping_another_stack_and_itself: super::ping_another_stack_and_itself;
    ping_over_ipv6: super::ping_over_ipv6;
    ping_socket_errors: super::ping_socket_errors;
}
