//! At the descriptor limit: what a program sees when its process has no descriptor
//! left for a socket of a userspace stack, whose sockets cost two each (the
//! application's end and the pump's end of a socket pair). The README's section on
//! descriptors says the same.
//!
//! One test in a binary of its own: it lowers the soft RLIMIT_NOFILE and fills the
//! descriptor table, which would starve any test running beside it.

mod common;

use common::{errno, open_fds, Net, Wire};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;
use vdestack::{TcpListener, TcpStream, UdpSocket};

/// Puts the descriptor limit back as it was when dropped, even after a failure.
struct LimitRestored(Rlimit);

impl Drop for LimitRestored {
    fn drop(&mut self) {
        let _ = setrlimit(Resource::Nofile, self.0);
    }
}

/// Opens descriptors until the process has exactly `free` left under its limit;
/// dropping the result gives them back.
fn fill_all_but(free: usize) -> Vec<File> {
    let mut held = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("filling the descriptor table: {e}"),
        }
    }
    held.truncate(held.len() - free);
    held
}

#[test]
fn sockets_at_the_descriptor_limit() {
    let net = Net::new(Wire::Switch);
    let listener = TcpListener::bind(&net.a, "10.0.0.1:7000").unwrap();
    let limit = getrlimit(Resource::Nofile);
    let _restored = LimitRestored(limit);
    // A low limit makes filling the table quick.
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open_fds() as u64 + 64),
            maximum: limit.maximum,
        },
    )
    .unwrap();

    let held = fill_all_but(0);
    let connect = TcpStream::connect(&net.b, "10.0.0.1:7000").map(drop);
    let udp = UdpSocket::bind(&net.b, "0.0.0.0:0").map(drop);
    let listen = TcpListener::bind(&net.a, "10.0.0.1:7001").map(drop);
    drop(held);
    for (what, result) in [("connect", connect), ("UDP bind", udp), ("listen", listen)] {
        let e = result.expect_err(what);
        assert_eq!(errno(&e), libc::EMFILE, "{what} with no descriptor left");
    }

    // A socket needs both ends of its pair: one descriptor is not enough.
    let held = fill_all_but(1);
    let connect = TcpStream::connect(&net.b, "10.0.0.1:7000").map(drop);
    drop(held);
    let e = connect.expect_err("connect with one descriptor left");
    assert_eq!(errno(&e), libc::EMFILE, "connect with one descriptor left");

    // Three left: the client's pair takes two, and the listener's pump cannot make
    // a pair for the connection that comes in: it refuses it with a reset, and the
    // application's accept never sees it.
    let held = fill_all_but(3);
    let client = TcpStream::connect(&net.b, "10.0.0.1:7000");
    let mut client = match client {
        Ok(client) => client,
        Err(e) => {
            drop(held);
            panic!("connect with three descriptors left: {e}");
        }
    };
    client
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let read = client.read(&mut [0u8; 1]);
    drop(held);
    let e = read.expect_err("a read from a refused connection");
    assert_eq!(errno(&e), libc::ECONNRESET, "the refused connection");
    drop(client);
    listener.set_nonblocking(true).unwrap();
    let e = listener.accept().map(drop).expect_err("nothing queued");
    assert_eq!(e.kind(), ErrorKind::WouldBlock, "the refused connection");
    listener.set_nonblocking(false).unwrap();

    // With room again, the listener takes connections as before.
    let mut client = TcpStream::connect(&net.b, "10.0.0.1:7000").unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"x").unwrap();
    let mut byte = [0u8];
    server.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"x");
}
