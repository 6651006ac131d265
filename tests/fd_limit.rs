//! At the descriptor limit: what a program sees when its process has no descriptor
//! left for a socket, on both backends, and what the userspace backend's own
//! descriptors add (each of its sockets costs two: the application's end and the
//! pump's end of a socket pair). The README's section on descriptors says the same.
//!
//! A binary of its own: its tests lower the soft RLIMIT_NOFILE and fill the
//! descriptor table, which would starve any test running beside them, so they
//! also run one at a time (a lock).

mod common;

use common::{errno, open_fds, Backend, Net, Wire};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vdestack::{bsd, TcpListener, TcpStream, UdpSocket};

/// How long a step that must happen may take before the test gives up on it.
const PATIENCE: Duration = Duration::from_secs(20);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Holds the other tests of this file off while the caller runs.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    // A test that failed while holding the lock says so itself: the next may run.
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Puts the descriptor limit back as it was when dropped, even after a failure.
struct LimitRestored(Rlimit);

impl Drop for LimitRestored {
    fn drop(&mut self) {
        let _ = setrlimit(Resource::Nofile, self.0);
    }
}

/// Lowers the soft limit to 64 descriptors above those open now, so that filling
/// the table is quick; the limit comes back when the result is dropped.
fn lowered_limit() -> LimitRestored {
    let limit = getrlimit(Resource::Nofile);
    let restored = LimitRestored(limit);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open_fds() as u64 + 64),
            maximum: limit.maximum,
        },
    )
    .unwrap();
    restored
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

/// Runs `f` with no descriptor left, then gives them back.
fn with_none_left<T>(f: impl FnOnce() -> T) -> T {
    let held = fill_all_but(0);
    let result = f();
    drop(held);
    result
}

/// Whether `fd` turns readable within [`PATIENCE`]: for a listener, a connection
/// is queued.
fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the call.
    unsafe { libc::poll(&mut pfd, 1, PATIENCE.as_millis() as i32) == 1 }
}

/// Waits (bounded) until the descriptor count is back to `count`: the pump
/// closes its ends of socket pairs a moment after the application closes its own.
fn settle(count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while open_fds() > count {
        assert!(Instant::now() < deadline, "{} descriptors open", open_fds());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A `bsd` listener on `addr` of `stack` with `backlog`, once the pump has let go
/// of what the socket was before it listened (the end of its first socket pair
/// closes a moment after `listen`): a descriptor freed later would spoil a full
/// table.
fn bsd_listener(stack: &vdestack::Stack, addr: SocketAddr, backlog: i32) -> OwnedFd {
    let before = open_fds();
    let listener = bsd::socket(stack, libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
    bsd::bind(listener.as_fd(), addr).unwrap();
    bsd::listen(listener.as_fd(), backlog).unwrap();
    // The listener's descriptor, and (userspace) the pump's end of its pair.
    settle(before + 2);
    listener
}

/// Puts `fd` in non-blocking mode (`accept4`'s SOCK_NONBLOCK is the new
/// descriptor's, not the call's).
fn set_nonblocking(fd: BorrowedFd<'_>) {
    let fd = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: fcntl on a descriptor this test holds.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) },
        0
    );
}

fn assert_emfile<T>(result: std::io::Result<T>, what: &str) {
    match result {
        Ok(_) => panic!("{what}: succeeded"),
        Err(e) => assert_eq!(errno(&e), libc::EMFILE, "{what}: {e}"),
    }
}

/// A connection from `net.b` to `target`, which sends `byte` once up, and is
/// queued on the listener `listener` (readable) by the time this returns.
fn queued_connection(
    net: &Net,
    target: &str,
    listener: BorrowedFd<'_>,
    byte: &[u8; 1],
) -> TcpStream {
    let mut client = TcpStream::connect(&net.b, target).unwrap();
    client.write_all(byte).unwrap();
    // On a userspace stack the pump makes the connection's socket pair as it
    // arrives: it must have done so before the table fills.
    assert!(readable(listener), "the connection is queued");
    client
}

/// With no descriptor left: a new socket fails with EMFILE, and so does `accept`,
/// at once even when it would block, leaving the connection queued for the next
/// `accept` (Linux takes the new descriptor's slot before it takes a connection
/// off the queue); through the Rust API and through `bsd` (the C library's path).
fn no_descriptor_left(backend: Backend) {
    let _one = one_at_a_time();
    let net = Net::with_backends(Wire::Switch, backend, backend);
    let listener = TcpListener::bind(&net.a, "10.0.0.1:7000").unwrap();
    let bsd_listener = bsd_listener(&net.a, "10.0.0.1:7001".parse().unwrap(), 16);
    let _restored = lowered_limit();

    let (connect, udp, listen) = with_none_left(|| {
        (
            TcpStream::connect(&net.b, "10.0.0.1:7000").map(drop),
            UdpSocket::bind(&net.b, "0.0.0.0:0").map(drop),
            TcpListener::bind(&net.a, "10.0.0.1:7002").map(drop),
        )
    });
    assert_emfile(connect, "connect");
    assert_emfile(udp, "UDP bind");
    assert_emfile(listen, "listen");

    let _client = queued_connection(&net, "10.0.0.1:7000", listener.as_fd(), b"r");
    let [nonblocking, blocking] = with_none_left(|| {
        listener.set_nonblocking(true).unwrap();
        let nonblocking = listener.accept().map(drop);
        listener.set_nonblocking(false).unwrap();
        // Tried only if the connection is still there: else it would wait forever.
        let blocking = match &nonblocking {
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => listener.accept().map(drop),
            _ => Ok(()),
        };
        [nonblocking, blocking]
    });
    assert_emfile(nonblocking, "a non-blocking accept");
    assert_emfile(blocking, "a blocking accept");
    listener.set_nonblocking(true).unwrap();
    let (mut server, _) = listener.accept().expect("the connection, still queued");
    let mut byte = [0u8];
    server.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"r");

    let _client = queued_connection(&net, "10.0.0.1:7001", bsd_listener.as_fd(), b"b");
    set_nonblocking(bsd_listener.as_fd());
    let accept = with_none_left(|| bsd::accept(bsd_listener.as_fd(), 0));
    assert_emfile(accept, "bsd::accept");
    let (server, _) = bsd::accept(bsd_listener.as_fd(), 0).expect("still queued");
    let mut byte = [0u8];
    assert_eq!(bsd::recv(server.as_fd(), &mut byte, 0).unwrap(), 1);
    assert_eq!(&byte, b"b");
}

on_both_backends! {
    no_descriptor_left: super::no_descriptor_left;
}

/// What the userspace backend's socket pairs add: a socket needs two free
/// descriptors, and a connection that arrives when the listener's pump cannot
/// make its pair is refused with a reset (Linux would queue it without a
/// descriptor until `accept`). Such a refusal must not cost the listener a place
/// in its backlog: it used to, so that a listener refused backlog + 1 times
/// dropped every SYN from then on.
#[test]
fn userspace_sockets_need_two_descriptors_and_refusals_cost_nothing() {
    let _one = one_at_a_time();
    let net = Net::new(Wire::Switch);
    // A backlog of 1 holds two connections.
    let target: SocketAddr = "10.0.0.1:7000".parse().unwrap();
    let listener = bsd_listener(&net.a, target, 1);
    let _restored = lowered_limit();
    let baseline = open_fds();

    let held = fill_all_but(1);
    let connect = TcpStream::connect(&net.b, target).map(drop);
    drop(held);
    assert_emfile(connect, "connect with one descriptor left");

    for round in 0..4 {
        settle(baseline);
        // Three left: the client's pair takes two, the pump has one.
        let held = fill_all_but(3);
        let read = TcpStream::connect_timeout(&net.b, &target, PATIENCE).and_then(|mut c| {
            c.set_read_timeout(Some(PATIENCE))?;
            c.read(&mut [0u8; 1])
        });
        drop(held);
        match read {
            Err(e) => assert_eq!(errno(&e), libc::ECONNRESET, "round {round}: {e}"),
            Ok(n) => panic!("round {round}: read {n} bytes from a refused connection"),
        }
    }
    settle(baseline);
    set_nonblocking(listener.as_fd());
    let e = bsd::accept(listener.as_fd(), 0).expect_err("nothing queued");
    assert_eq!(e.kind(), ErrorKind::WouldBlock);

    // With room again, the listener takes connections as before.
    let mut client = TcpStream::connect_timeout(&net.b, &target, PATIENCE).unwrap();
    assert!(readable(listener.as_fd()), "the connection is queued");
    let (server, _) = bsd::accept(listener.as_fd(), 0).unwrap();
    client.write_all(b"x").unwrap();
    let mut byte = [0u8];
    assert_eq!(bsd::recv(server.as_fd(), &mut byte, 0).unwrap(), 1);
    assert_eq!(&byte, b"x");
}
