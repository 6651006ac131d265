//! Behaviour at scale: thousands of sockets open at once, each carrying its own
//! bytes and only its own, and a stack full of idle sockets still serving new ones.
//! These tests check what happens, never how fast: their loops are bounded by
//! generous deadlines only so that a lost connection fails instead of hanging.
//!
//! They live in a binary of their own because what they need is process-wide: the
//! descriptor limit (a userspace socket costs two descriptors here, the
//! application's end and the pump's end of its socket pair, so 4,000 connections
//! between two stacks cost 16,000) is raised to the hard limit, and the descriptor
//! count is read from /proc/self/fd. They also run one at a time (a lock), since
//! their budgets add up and a count must see only its own test's descriptors.

mod common;

use common::{open_fds, Backend, Net, Wire};
use rustix::process::{getrlimit, setrlimit, Resource};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};
use vdestack::{bsd, TcpListener, TcpStream, UdpSocket};

/// How long one read or write may wait before the test gives up on it: far beyond
/// what any of them takes, it only turns a lost byte into a failure.
const PATIENCE: Duration = Duration::from_secs(120);

/// Descriptors a test keeps for itself beyond its sockets (stacks, switch, harness).
const SPARE_FDS: u64 = 256;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Holds the other tests of this file off while the caller runs.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    // A test that failed while holding the lock says so itself: the next may run.
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Descriptors one socket costs in this process: a userspace socket is a socket
/// pair (the application's end and the pump's), a kernel one is itself.
fn fds_per_socket(backend: Backend) -> usize {
    match backend {
        Backend::Userspace => 2,
        _ => 1,
    }
}

/// Raises this process's descriptor limit to its hard limit and tells whether
/// `sockets` more sockets of `backend` fit under it. When they do not, says so on
/// stderr, past the harness's capture, naming the test, what it needs and what the
/// limit allows.
fn room_for(test: &str, backend: Backend, sockets: usize) -> bool {
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if limit.current.is_some_and(|soft| soft < hard) {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, raised).expect("raising RLIMIT_NOFILE to its hard limit");
    }
    let needed = (sockets * fds_per_socket(backend)) as u64 + open_fds() as u64 + SPARE_FDS;
    if needed <= hard {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test} on the {backend:?} backend: it needs {needed} descriptors \
         ({sockets} sockets at {} each), the hard RLIMIT_NOFILE is {hard}",
        fds_per_socket(backend)
    );
    false
}

/// Waits (bounded) until the descriptor count is back to `limit`: the pump closes
/// its ends of the socket pairs a moment after the application closes its own.
fn settle(limit: usize, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while open_fds() > limit {
        assert!(
            Instant::now() < deadline,
            "{what}: {} descriptors open, expected at most {limit}",
            open_fds()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Gives `stream` read and write timeouts, so that a lost byte fails the test.
fn patient(stream: &TcpStream) {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
}

/// Accepts `count` connections on `listener`, each made patient; fails if they
/// have not all come within `within`.
fn accept_all(listener: &TcpListener, count: usize, within: Duration) -> Vec<TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + within;
    let mut accepted = Vec::with_capacity(count);
    while accepted.len() < count {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                patient(&stream);
                accepted.push(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .unwrap_or_else(|| {
                        panic!(
                            "{} of {count} connections accepted within {within:?}",
                            accepted.len()
                        )
                    });
                let wait = rustix::event::Timespec::try_from(left.min(Duration::from_secs(1)))
                    .expect("a short wait");
                let mut fds = [rustix::event::PollFd::new(
                    listener,
                    rustix::event::PollFlags::IN,
                )];
                let _ = rustix::event::poll(&mut fds, Some(&wait));
            }
            Err(e) => panic!("accept after {} of {count}: {e}", accepted.len()),
        }
    }
    listener.set_nonblocking(false).unwrap();
    accepted
}

/// `count` connections from `client` to `listener`, all open at once: the client
/// ends in the order they were made, and the accepted ends in the order accepted.
fn open_connections(
    client: &vdestack::Stack,
    listener: &TcpListener,
    count: usize,
) -> (Vec<TcpStream>, Vec<TcpStream>) {
    let to = listener.local_addr().unwrap();
    thread::scope(|scope| {
        let acceptor = scope.spawn(|| accept_all(listener, count, 10 * PATIENCE));
        let clients: Vec<TcpStream> = (0..count)
            .map(|i| {
                let stream = TcpStream::connect(client, to)
                    .unwrap_or_else(|e| panic!("connection {i} of {count} to {to}: {e}"));
                patient(&stream);
                stream
            })
            .collect();
        (clients, acceptor.join().expect("the accepting thread"))
    })
}

/// The message connection `number` carries in the direction `tag` (`b'>'` from the
/// client, `b'<'` back): its number first, so that the receiver knows what to
/// expect, then bytes of a length and pattern of its own.
fn message(tag: u8, number: u32) -> Vec<u8> {
    let n = number as usize;
    let len = 16 + (n * 7) % 200;
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(&number.to_be_bytes());
    bytes.push(tag);
    bytes.extend((bytes.len()..len).map(|k| (n.wrapping_mul(31) + k * 131) as u8 ^ tag));
    bytes
}

/// The server's side of [`four_thousand_connections_on`]: on each accepted connection,
/// reads the client's message, checks it byte for byte, answers with its own, then
/// waits for the client's close (end of file). Every number must come exactly once.
fn answer_each(accepted: Vec<TcpStream>) {
    let mut seen = vec![false; accepted.len()];
    for (k, mut stream) in accepted.iter().enumerate() {
        let mut number = [0u8; 4];
        stream
            .read_exact(&mut number)
            .unwrap_or_else(|e| panic!("accepted connection {k}: the request's number: {e}"));
        let number = u32::from_be_bytes(number);
        let index = number as usize;
        assert!(
            index < seen.len() && !seen[index],
            "accepted connection {k} carries number {number}, out of range or seen before"
        );
        seen[index] = true;
        let expected = message(b'>', number);
        let mut rest = vec![0u8; expected.len() - 4];
        stream
            .read_exact(&mut rest)
            .unwrap_or_else(|e| panic!("request {number}: {e}"));
        assert_eq!(rest, expected[4..], "request {number}, byte for byte");
        stream
            .write_all(&message(b'<', number))
            .unwrap_or_else(|e| panic!("answer {number}: {e}"));
    }
    for (k, mut stream) in accepted.iter().enumerate() {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) => {}
            other => panic!("accepted connection {k}: end of file expected, got {other:?}"),
        }
    }
}

/// 4,000 connections between two stacks open at once; each carries a message of
/// its own both ways, checked byte for byte; all close, and no descriptor is left.
fn four_thousand_connections_on(backend: Backend) {
    const CONNECTIONS: usize = 4000;
    let _alone = one_at_a_time();
    if !room_for("scale::four_thousand_connections", backend, 2 * CONNECTIONS) {
        return;
    }
    let started = Instant::now();
    let before_everything = open_fds();
    // A point-to-point wire, which holds a frame back while the peer's queue is
    // full: a vde_switch drops it instead, and 4,000 connections sending at once
    // overrun a stack that drains its link more slowly than the peer fills it. What
    // is checked here is that every connection carries its own bytes, not how loss
    // is recovered (tests/faults.rs).
    let net = Net::with_backends(Wire::Ptp, backend, backend);
    let listener = TcpListener::bind(&net.a, "10.0.0.1:7000").unwrap();
    let baseline = open_fds();

    let (clients, accepted) = open_connections(&net.b, &listener, CONNECTIONS);
    let opened = started.elapsed();
    let held = open_fds() - baseline;
    assert!(
        held >= 2 * CONNECTIONS * fds_per_socket(backend),
        "{CONNECTIONS} connections open, both ends, hold only {held} descriptors"
    );

    thread::scope(|scope| {
        let server = scope.spawn(move || answer_each(accepted));
        for (i, mut stream) in clients.iter().enumerate() {
            stream
                .write_all(&message(b'>', i as u32))
                .unwrap_or_else(|e| panic!("request {i}: {e}"));
        }
        for (i, mut stream) in clients.iter().enumerate() {
            let expected = message(b'<', i as u32);
            let mut answer = vec![0u8; expected.len()];
            stream
                .read_exact(&mut answer)
                .unwrap_or_else(|e| panic!("answer {i}: {e}"));
            assert_eq!(answer, expected, "answer {i}, byte for byte");
        }
        drop(clients);
        server.join().expect("the answering thread");
    });
    let talked = started.elapsed();

    settle(baseline, "after 4,000 connections closed");
    drop(listener);
    drop(net);
    settle(before_everything, "after dropping the stacks");
    eprintln!(
        "{backend:?}: {CONNECTIONS} connections opened in {opened:?} (holding {held} \
         descriptors), messages both ways and closes by {talked:?}, all done in {:?}",
        started.elapsed()
    );
}

/// The datagram UDP socket `number` is sent: its number and bytes of a length and
/// pattern of its own.
fn datagram(number: u32) -> Vec<u8> {
    let n = number as usize;
    let len = 8 + (n * 13) % 300;
    let mut bytes = number.to_be_bytes().to_vec();
    bytes.extend((bytes.len()..len).map(|k| (n.wrapping_mul(17) + k * 7) as u8));
    bytes
}

/// 1,000 UDP sockets on one stack, bound three ways (its address, the wildcard,
/// connected to the sender), each get the datagram sent to their port by the other
/// stack, and only that one.
fn a_thousand_udp_sockets_on(backend: Backend) {
    const SOCKETS: usize = 1000;
    const FIRST_PORT: u16 = 20000;
    // Datagrams go out in rounds, each received before the next is sent: the test
    // is about which socket a datagram reaches, and a burst may be dropped by any
    // queue on the way (the sender's, the wire's), which UDP allows.
    const ROUND: usize = 100;
    let _alone = one_at_a_time();
    if !room_for("scale::a_thousand_udp_sockets", backend, SOCKETS + 1) {
        return;
    }
    let started = Instant::now();
    let net = Net::with_backends(Wire::Switch, backend, backend);
    let sender = UdpSocket::bind(&net.b, "10.0.0.2:5000").unwrap();
    let from: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    let sockets: Vec<UdpSocket> = (0..SOCKETS)
        .map(|i| {
            let port = FIRST_PORT + i as u16;
            let socket = match i % 3 {
                0 => UdpSocket::bind(&net.a, ("10.0.0.1", port)),
                1 => UdpSocket::bind(&net.a, ("0.0.0.0", port)),
                _ => UdpSocket::bind(&net.a, ("10.0.0.1", port)).inspect(|s| {
                    s.connect(from).unwrap();
                }),
            }
            .unwrap_or_else(|e| panic!("UDP socket {i} on port {port}: {e}"));
            socket.set_read_timeout(Some(PATIENCE)).unwrap();
            socket
        })
        .collect();

    for round in (0..SOCKETS).step_by(ROUND) {
        let numbers = round..(round + ROUND).min(SOCKETS);
        for i in numbers.clone() {
            let to = ("10.0.0.1", FIRST_PORT + i as u16);
            sender
                .send_to(&datagram(i as u32), to)
                .unwrap_or_else(|e| panic!("datagram {i}: {e}"));
        }
        for i in numbers {
            let mut buf = [0u8; 512];
            let (len, source) = sockets[i]
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("socket {i} waiting for its datagram: {e}"));
            assert_eq!(source, from, "socket {i}: the datagram's source");
            assert_eq!(
                buf[..len],
                datagram(i as u32)[..],
                "socket {i}: its own datagram, byte for byte"
            );
        }
    }
    // Every datagram sent has been received once, where it belonged: a copy that
    // went astray as well would be waiting now.
    for (i, socket) in sockets.iter().enumerate() {
        socket.set_nonblocking(true).unwrap();
        match socket.recv_from(&mut [0u8; 512]) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("socket {i}: nothing more expected, got {other:?}"),
        }
    }
    eprintln!(
        "{backend:?}: {SOCKETS} UDP sockets served in {:?}",
        started.elapsed()
    );
}

/// Writes `len` bytes of `seed`'s pattern to `stream`.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|k| (k % 251) as u8 ^ seed).collect()
}

/// A stack holding 3,000 idle connections and 500 bound UDP sockets still accepts
/// a new connection on the listener those connections came through, and it carries
/// 64 KiB each way; the oldest and the newest idle connections still carry a byte.
fn idle_sockets_do_not_stop_new_ones_on(backend: Backend) {
    const IDLE_CONNECTIONS: usize = 3000;
    const IDLE_UDP: usize = 500;
    const BULK: usize = 64 * 1024;
    let _alone = one_at_a_time();
    if !room_for(
        "scale::idle_sockets_do_not_stop_new_ones",
        backend,
        2 * IDLE_CONNECTIONS + IDLE_UDP + 4,
    ) {
        return;
    }
    let started = Instant::now();
    let net = Net::with_backends(Wire::Switch, backend, backend);
    let listener = TcpListener::bind(&net.a, "10.0.0.1:7000").unwrap();
    let (idle_clients, idle_accepted) = open_connections(&net.b, &listener, IDLE_CONNECTIONS);
    let idle_udp: Vec<UdpSocket> = (0..IDLE_UDP)
        .map(|i| UdpSocket::bind(&net.a, ("0.0.0.0", 20000 + i as u16)).unwrap())
        .collect();
    let opened = started.elapsed();

    let mut client = TcpStream::connect(&net.b, "10.0.0.1:7000").unwrap();
    patient(&client);
    let mut server = accept_all(&listener, 1, PATIENCE).pop().unwrap();
    thread::scope(|scope| {
        scope.spawn(move || {
            let mut got = Vec::new();
            server.read_to_end(&mut got).unwrap();
            assert!(
                got == pattern(1, BULK),
                "the client's 64 KiB, byte for byte"
            );
            server.write_all(&pattern(2, BULK)).unwrap();
        });
        client.write_all(&pattern(1, BULK)).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert!(
            got == pattern(2, BULK),
            "the server's 64 KiB, byte for byte"
        );
    });

    for k in [0, IDLE_CONNECTIONS - 1] {
        // Connections are accepted in the order they were made, one at a time.
        let (mut near, mut far) = (&idle_clients[k], &idle_accepted[k]);
        assert_eq!(near.local_addr().unwrap(), far.peer_addr().unwrap());
        near.write_all(&[k as u8]).unwrap();
        let mut byte = [0u8];
        far.read_exact(&mut byte).unwrap();
        far.write_all(&byte).unwrap();
        near.read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], k as u8, "idle connection {k}, both ways");
    }
    drop((idle_clients, idle_accepted, idle_udp));
    eprintln!(
        "{backend:?}: {IDLE_CONNECTIONS} idle connections and {IDLE_UDP} UDP sockets made in \
         {opened:?}, all done in {:?}",
        started.elapsed()
    );
}

/// Linux's default `net.ipv4.ip_local_port_range`: 32768 to 60999.
const EPHEMERAL_PORTS: usize = 60999 - 32768 + 1;

/// With no ephemeral port left, each call fails with Linux's errno: a TCP
/// connect EADDRNOTAVAIL; a bind to port 0 and a listen on an unbound socket
/// EADDRINUSE, for UDP too; and the bind a UDP socket makes on its own at its
/// first connect or send, EAGAIN. The kernel backend gets its range narrowed to
/// two ports (a sysctl of its namespace); a userspace stack has Linux's default
/// range and no way to narrow it, so its run needs two descriptors for each of
/// 2 x 28,232 sockets (src/engine/tests/limits.rs checks it without descriptors).
fn ephemeral_ports_run_out_on(backend: Backend) {
    let _alone = one_at_a_time();
    let ports = match backend {
        Backend::Kernel => 2,
        _ => EPHEMERAL_PORTS,
    };
    if !room_for("scale::ephemeral_ports_run_out", backend, 2 * ports + 16) {
        return;
    }
    let net = Net::with_backends(Wire::Switch, backend, backend);
    if backend == Backend::Kernel {
        net.b
            .cmd("/bin/sh -c 'echo 60000 60001 > /proc/sys/net/ipv4/ip_local_port_range'")
            .expect("narrowing the namespace's ephemeral ports");
    }
    let _listener = TcpListener::bind(&net.a, "10.0.0.1:80").unwrap();
    let socket = |ty| bsd::socket(&net.b, libc::AF_INET, ty, 0).unwrap();
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let server: SocketAddr = "10.0.0.1:80".parse().unwrap();
    let mut holding = Vec::with_capacity(2 * ports);
    for ty in [libc::SOCK_STREAM, libc::SOCK_DGRAM] {
        for k in 0..ports {
            let s = socket(ty);
            bsd::bind(s.as_fd(), any).unwrap_or_else(|e| panic!("port {k} of type {ty}: {e}"));
            holding.push(s);
        }
    }
    let tcp = || socket(libc::SOCK_STREAM);
    let udp = || socket(libc::SOCK_DGRAM);
    let to_server = Some(server);
    let answers = [
        (
            "TCP connect",
            bsd::connect(tcp().as_fd(), server),
            libc::EADDRNOTAVAIL,
        ),
        (
            "TCP bind to port 0",
            bsd::bind(tcp().as_fd(), any),
            libc::EADDRINUSE,
        ),
        (
            "listen unbound",
            bsd::listen(tcp().as_fd(), 1),
            libc::EADDRINUSE,
        ),
        (
            "UDP bind to port 0",
            bsd::bind(udp().as_fd(), any),
            libc::EADDRINUSE,
        ),
        (
            "UDP connect",
            bsd::connect(udp().as_fd(), server),
            libc::EAGAIN,
        ),
        (
            "UDP sendto",
            bsd::send_to(udp().as_fd(), b"x", to_server, 0).map(drop),
            libc::EAGAIN,
        ),
    ];
    for (what, result, expected) in answers {
        assert_eq!(
            result.map_err(|e| common::errno(&e)),
            Err(expected),
            "{what}"
        );
    }
}

/// Short connections one after the other, more of them than there are ephemeral
/// ports, each closed by the client first (which keeps its TIME-WAIT, and so its
/// port, for 60 s): every connect either makes a connection that the server
/// accepts and that carries a byte, or fails at once with EADDRNOTAVAIL (Linux's
/// answer when every port is held); none hangs. The kernel backend
/// gets ten ports (a sysctl of its namespace), a userspace stack Linux's default
/// range.
fn short_connections_past_the_ephemeral_range_on(backend: Backend) {
    let _alone = one_at_a_time();
    let ports = match backend {
        Backend::Kernel => 10,
        _ => EPHEMERAL_PORTS,
    };
    let net = Net::with_backends(Wire::Switch, backend, backend);
    if backend == Backend::Kernel {
        net.b
            .cmd("/bin/sh -c 'echo 60000 60009 > /proc/sys/net/ipv4/ip_local_port_range'")
            .expect("narrowing the namespace's ephemeral ports");
    }
    let listener = TcpListener::bind(&net.a, "10.0.0.1:80").unwrap();
    let (mut made, mut refused) = (0, 0);
    for k in 0..ports + ports / 16 + 2 {
        let mut client = match TcpStream::connect(&net.b, "10.0.0.1:80") {
            Ok(client) => client,
            Err(e) if common::errno(&e) == libc::EADDRNOTAVAIL => {
                refused += 1;
                continue;
            }
            Err(e) => panic!("connect {k} (after {made} made, {refused} refused): {e}"),
        };
        patient(&client);
        let [mut server] =
            <[TcpStream; 1]>::try_from(accept_all(&listener, 1, Duration::from_secs(30)))
                .unwrap_or_else(|_| unreachable!("one accepted"));
        client.write_all(&[k as u8]).unwrap();
        let mut byte = [0];
        server
            .read_exact(&mut byte)
            .unwrap_or_else(|e| panic!("connection {k}'s byte: {e}"));
        assert_eq!(byte[0], k as u8, "connection {k}'s own byte");
        // The client closes first, and holds TIME-WAIT (the server's FIN
        // answers its FIN, never crosses it).
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(server.read(&mut byte).unwrap(), 0, "connection {k}'s end");
        drop(server);
        assert_eq!(client.read(&mut byte).unwrap(), 0, "connection {k}'s end");
        drop(client);
        made += 1;
    }
    assert!(
        made >= ports / 2,
        "{made} connections made, {refused} refused"
    );
}

on_both_backends! {
    ephemeral_ports_run_out: ephemeral_ports_run_out_on;
    short_connections_past_the_ephemeral_range: short_connections_past_the_ephemeral_range_on;
    four_thousand_connections: four_thousand_connections_on;
    a_thousand_udp_sockets: a_thousand_udp_sockets_on;
    idle_sockets_do_not_stop_new_ones: idle_sockets_do_not_stop_new_ones_on;
}
