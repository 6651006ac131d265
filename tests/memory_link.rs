//! Stacks plugged into links of the program's own (`StackBuilder::link`), with no
//! VDE network: two stacks joined by a `MemoryLink` pair talk TCP and UDP, on both
//! backends, and a `Link` written outside the crate carries a stack's frames.

mod common;

use common::{configure, Backend};
use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vdestack::link::{Link, MemoryLink};
use vdestack::{Stack, TcpListener, TcpStream, UdpSocket};

/// Two stacks of `b` joined by a memory link, 10.0.0.1/24 and 10.0.0.2/24.
fn joined(backend: Backend) -> (Stack, Stack) {
    let (left, right) = MemoryLink::pair().unwrap();
    let stack = |link| {
        Stack::builder()
            .link(link)
            .backend(backend)
            .build()
            .unwrap_or_else(|e| panic!("a {backend:?} stack on a memory link: {e}"))
    };
    let (a, b) = (stack(left), stack(right));
    configure(&a, "vde0", "10.0.0.1/24");
    configure(&b, "vde0", "10.0.0.2/24");
    (a, b)
}

/// A megabyte each way over TCP between `a` and `b`.
fn tcp_both_ways(a: &Stack, b: &Stack) {
    let listener = TcpListener::bind(a, "0.0.0.0:80").unwrap();
    let client = TcpStream::connect(b, "10.0.0.1:80").unwrap();
    let (server, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip().to_string(), "10.0.0.2");
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    // Each direction has its writer and its reader, so that neither waits for
    // the other to read.
    std::thread::scope(|scope| {
        for (from, to) in [(&client, &server), (&server, &client)] {
            let data = &data;
            scope.spawn(move || {
                let mut from = from;
                from.write_all(data).unwrap();
                from.shutdown(std::net::Shutdown::Write).unwrap();
            });
            scope.spawn(move || {
                let mut got = Vec::new();
                let mut to = to;
                to.read_to_end(&mut got).unwrap();
                assert!(got == *data, "{} bytes arrived altered", got.len());
            });
        }
    });
}

fn two_stacks_talk_tcp_over_a_memory_link(b: Backend) {
    let (a, b) = joined(b);
    tcp_both_ways(&a, &b);
}

fn udp_crosses_a_memory_link(b: Backend) {
    let (a, b) = joined(b);
    let server = UdpSocket::bind(&a, "0.0.0.0:7").unwrap();
    let client = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 16];
    for _ in 0..25 {
        client.send_to(b"datagram", "10.0.0.1:7").unwrap();
        match server.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert_eq!(&buf[..n], b"datagram");
                assert_eq!(from.ip().to_string(), "10.0.0.2");
                assert_eq!(from.port(), client.local_addr().unwrap().port());
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("recv_from: {e}"),
        }
    }
    panic!("no datagram crossed the memory link");
}

/// A link of the test's own: a memory link that counts the frames it carries.
struct Counting {
    inner: MemoryLink,
    sent: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
}

impl Link for Counting {
    fn data_fd(&self) -> Option<RawFd> {
        self.inner.data_fd()
    }
    fn hangup_fd(&self) -> Option<RawFd> {
        self.inner.hangup_fd()
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.inner.recv(buf)?;
        self.received.fetch_add(1, Ordering::Relaxed);
        Ok(len)
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.inner.send(frame)?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn hung_up(&mut self) -> bool {
        self.inner.hung_up()
    }
}

/// The userspace backend only: on a kernel stack the link runs in the helper
/// process, whose counters the test could not see.
#[test]
fn a_link_of_the_programs_own_carries_a_stack() {
    let (left, right) = MemoryLink::pair().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let counting = Counting {
        inner: left,
        sent: sent.clone(),
        received: received.clone(),
    };
    let a = Stack::builder()
        // The link wins over a locator.
        .vnl("vde:///nonexistent/switch")
        .link(counting)
        .build()
        .unwrap();
    let b = Stack::builder().link(right).build().unwrap();
    configure(&a, "vde0", "10.0.0.1/24");
    configure(&b, "vde0", "10.0.0.2/24");
    tcp_both_ways(&a, &b);
    let (sent, received) = (
        sent.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed),
    );
    // A megabyte is hundreds of segments each way.
    assert!(
        sent > 500 && received > 500,
        "{sent} sent, {received} received"
    );
}

#[test]
fn a_stack_whose_memory_peer_is_gone_fails_connects_cleanly() {
    let (left, right) = MemoryLink::pair().unwrap();
    let a = Stack::builder().link(left).build().unwrap();
    drop(right);
    configure(&a, "vde0", "10.0.0.1/24");
    let error =
        TcpStream::connect_timeout(&a, &"10.0.0.2:80".parse().unwrap(), Duration::from_secs(10))
            .unwrap_err();
    assert_eq!(common::errno(&error), libc::EHOSTUNREACH, "{error}");
}

on_both_backends! {
    two_stacks_talk_tcp_over_a_memory_link: super::two_stacks_talk_tcp_over_a_memory_link;
    udp_crosses_a_memory_link: super::udp_crosses_a_memory_link;
}
