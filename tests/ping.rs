//! Ping sockets: a program pings from its stack, as with Linux's
//! `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`.

mod common;

use common::{Net, Wire};
use std::io;
use std::net::IpAddr;
use std::time::Duration;
use vdestack::PingSocket;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
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

#[test]
fn ping_another_stack_and_itself() {
    let net = Net::new(Wire::Switch);
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

#[test]
fn ping_over_ipv6() {
    let net = Net::new(Wire::Switch);
    net.a
        .cmd("/bin/ip -6 addr add fd00::1/64 dev vde0 nodad")
        .unwrap();
    net.b
        .cmd("/bin/ip -6 addr add fd00::2/64 dev vde0 nodad")
        .unwrap();
    let socket = PingSocket::bind(&net.b, ip("::")).unwrap();
    let (reply, from) = ping(&socket, ip("fd00::1"), b"v6");
    assert_eq!(from, ip("fd00::1"));
    assert_eq!(reply[0], 129, "an ICMPv6 echo reply");
    assert_eq!(&reply[8..], b"v6");
}

#[test]
fn ping_socket_errors() {
    let net = Net::new(Wire::Ptp);
    let socket = PingSocket::bind_ident(&net.b, ip("0.0.0.0"), 4242).unwrap();
    assert_eq!(socket.ident(), 4242);
    let errno = |e: io::Error| e.raw_os_error().unwrap();
    assert_eq!(
        errno(PingSocket::bind_ident(&net.b, ip("0.0.0.0"), 4242).unwrap_err()),
        libc::EADDRINUSE
    );
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
