//! The tokio face (`vdestack::tokio`, feature `tokio`): hyper serving and fetching
//! HTTP/1.1 between two stacks, a thousand concurrent connections, a stack dropped
//! under busy tasks, and each call's behaviour (errors, cancellation, UDP, halves,
//! peek, vectored writes), on both backends.
//!
//! Every test builds its own network (a `vde_switch` in a temporary directory) and
//! its own multi-threaded runtime; its async part is bounded by a tokio timeout,
//! so a hang fails the test instead of stalling the suite.

mod common;

use bytes::Bytes;
use common::{errno, open_fds, Backend, Net, Wire};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use vdestack::tokio::{TcpListener, TcpStream, UdpSocket};
use vdestack::Stack;

/// The most any test's async part may take: far beyond what it needs, short of
/// leaving a hang unnoticed.
const BOUND: Duration = Duration::from_secs(180);

/// Two stacks of `backend` on a switch: `a` 10.0.0.1/24, `b` 10.0.0.2/24.
fn net(backend: Backend) -> Net {
    Net::with_backends(Wire::Switch, backend, backend)
}

/// Held by every test while it runs, shared but by the one that counts the
/// process's descriptors: the others' sockets would blur its count.
static DESCRIPTORS: RwLock<()> = RwLock::new(());

/// Runs `test` on a multi-threaded runtime of its own, failing after [`BOUND`].
fn run<F: Future>(test: F) -> F::Output {
    // A test that failed while holding the lock says so itself: the next may run.
    let _shared = DESCRIPTORS.read().unwrap_or_else(|e| e.into_inner());
    runtime(test)
}

fn runtime<F: Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(async {
            tokio::time::timeout(BOUND, test)
                .await
                .expect("the test's tasks did not finish in time")
        })
}

/// `len` bytes of a stream seeded with `seed`: catches lost, duplicated and
/// reordered bytes alike.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|offset| {
            let x = offset
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(seed);
            (x ^ (x >> 29) ^ (offset >> 16)) as u8
        })
        .collect()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An echo server on `stack` at `at`, each connection in a task of its own (its
/// halves borrowed, the bytes copied until the peer's end of stream).
async fn echo_server(stack: &Stack, at: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind(stack, at).await.expect("bind");
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = stream.split();
                if tokio::io::copy(&mut rd, &mut wr).await.is_ok() {
                    let _ = wr.shutdown().await;
                }
            });
        }
    });
    local
}

/// The body the HTTP server answers for `path`: a small greeting, or 16 MiB.
fn body_for(path: &str) -> Bytes {
    match path {
        "/big" => pattern(16, 16 << 20).into(),
        _ => Bytes::from_static(b"hello from a stack\n"),
    }
}

fn hyper_serves_and_fetches(backend: Backend) {
    let net = net(backend);
    run(async {
        let listener = TcpListener::bind(&net.a, "0.0.0.0:80").await.unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper::service::service_fn(|request: hyper::Request<_>| async move {
                    let body = Full::new(body_for(request.uri().path()));
                    Ok::<_, hyper::Error>(hyper::Response::new(body))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });

        let stream = TcpStream::connect(&net.b, "10.0.0.1:80").await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        // Both requests on the one connection (HTTP/1.1 keeps it alive).
        for path in ["/small", "/big"] {
            let request = hyper::Request::get(path)
                .header("host", "10.0.0.1")
                .body(Full::new(Bytes::new()))
                .unwrap();
            // A connection serves one request at a time: ready once the
            // previous response is done with.
            sender.ready().await.unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(
                body == body_for(path),
                "{path}: {} bytes differ",
                body.len()
            );
        }
    });
}

/// Raises this process's descriptor limit to its hard limit (a Debian default is
/// 1,024 soft) and tells whether `needed` more descriptors fit under it; says on
/// stderr, past the harness's capture, when they do not.
fn room_for(test: &str, needed: u64) -> bool {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if limit.current.is_some_and(|soft| soft < hard) {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, raised).expect("raising RLIMIT_NOFILE to its hard limit");
    }
    // Other tests of this binary run meanwhile: room for theirs too.
    let needed = needed + open_fds() as u64 + 1024;
    if needed > hard {
        use std::io::Write;
        let _ = writeln!(
            io::stderr(),
            "SKIPPED {test}: it needs {needed} descriptors, the hard RLIMIT_NOFILE is {hard}"
        );
    }
    needed <= hard
}

fn thousand_concurrent_connections(backend: Backend) {
    // Both ends of each connection are in this process, each a socket pair on
    // the userspace backend.
    if !room_for("a_thousand_concurrent_connections", 4 * 1000) {
        return;
    }
    let net = net(backend);
    let client = net.b.clone();
    run(async move {
        let server = echo_server(&net.a, addr("10.0.0.1:7")).await;
        // Handshakes under way at once stay under the listener's backlog (128):
        // beyond it, a kernel listener answers with SYN cookies, and a client's
        // later segment that meets a cookie it cannot check is reset (Linux's
        // behaviour, not the test's concern). The connections are then all open
        // at once, each waiting for every other before it sends.
        let handshakes = Arc::new(tokio::sync::Semaphore::new(64));
        let all_open = Arc::new(tokio::sync::Barrier::new(1000));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..1000u64 {
            let stack = client.clone();
            let (handshakes, all_open) = (handshakes.clone(), all_open.clone());
            tasks.spawn(async move {
                let payload = pattern(i, 1000 + (i as usize * 37) % 4000);
                let permit = handshakes.acquire().await.unwrap();
                let connected = TcpStream::connect(&stack, server).await;
                drop(permit);
                all_open.wait().await;
                let stream = connected?;
                let (mut rd, mut wr) = stream.into_split();
                // Write and read at once: an echo larger than the buffers on the
                // way would wait for the reader otherwise.
                let writer = async {
                    wr.write_all(&payload).await?;
                    wr.shutdown().await
                };
                let mut echo = Vec::new();
                let (written, read) = tokio::join!(writer, rd.read_to_end(&mut echo));
                written?;
                read?;
                assert!(echo == payload, "connection {i}: its echo differs");
                io::Result::Ok(())
            });
        }
        let mut done = 0;
        while let Some(task) = tasks.join_next().await {
            task.expect("a client task panicked")
                .expect("a connection failed");
            done += 1;
        }
        assert_eq!(done, 1000);
    });
}

/// Echoes a pattern seeded with `seed` through `stream` until a call fails, which
/// it returns; tells `started` after the first round.
async fn echo_forever(
    stream: TcpStream,
    seed: u64,
    started: tokio::sync::mpsc::Sender<()>,
) -> io::Result<()> {
    let (mut rd, mut wr) = stream.into_split();
    let payload = pattern(seed, 4096);
    let mut echo = vec![0u8; payload.len()];
    wr.write_all(&payload).await?;
    rd.read_exact(&mut echo).await?;
    let _ = started.send(()).await;
    loop {
        wr.write_all(&payload).await?;
        rd.read_exact(&mut echo).await?;
    }
}

/// The userspace backend only: a kernel socket outlives its namespace's helper
/// and is told nothing (tests/tcp.rs, `sockets_outlive_their_stack_cleanly`).
#[test]
fn a_dropped_stack_fails_its_busy_tasks() {
    let net = net(Backend::Userspace);
    let Net { a, b, .. } = net;
    run(async move {
        let server = echo_server(&a, addr("10.0.0.1:7")).await;
        let (started, mut ready) = tokio::sync::mpsc::channel(64);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..32u64 {
            let stream = TcpStream::connect(&b, server).await.unwrap();
            let started = started.clone();
            tasks.spawn(echo_forever(stream, i, started));
        }
        let udp = UdpSocket::bind(&b, "0.0.0.0:0").await.unwrap();
        let listener = TcpListener::bind(&b, "0.0.0.0:8").await.unwrap();
        for _ in 0..32 {
            ready.recv().await.unwrap();
        }
        drop(b);
        while let Some(task) = tasks.join_next().await {
            let e = task.unwrap().unwrap_err();
            assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionReset
                ) || errno(&e) == libc::ENETDOWN,
                "{e}"
            );
        }
        let mut buf = [0u8; 8];
        let e = udp.recv_from(&mut buf).await.unwrap_err();
        assert_eq!(errno(&e), libc::ENETDOWN, "{e}");
        assert!(listener.accept().await.is_err());
        drop(a);
    });
}

fn connect_refused(backend: Backend) {
    let net = net(backend);
    run(async {
        let e = TcpStream::connect(&net.b, "10.0.0.1:9").await.unwrap_err();
        assert_eq!(errno(&e), libc::ECONNREFUSED, "{e}");
        // No route: refused inside connect, as Linux does.
        let e = TcpStream::connect(&net.b, "192.0.2.1:80")
            .await
            .unwrap_err();
        assert_eq!(errno(&e), libc::ENETUNREACH, "{e}");
        // A name goes to the stack's resolver (none here), not the host's.
        let e = TcpStream::connect(&net.b, "no-such-host.invalid:80")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    });
}

/// Waits (bounded) until this process has `limit` descriptors or fewer: a pump
/// closes its end of a pair a moment after the application closed its own.
async fn settle_fds(limit: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds() > limit && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    open_fds()
}

fn cancelled_connect_leaves_nothing(backend: Backend) {
    let _alone = DESCRIPTORS.write().unwrap_or_else(|e| e.into_inner());
    let net = net(backend);
    runtime(async {
        // 10.0.0.99 answers no ARP request: each connect waits, and is dropped.
        // (A connect that blocked its worker thread could not be cancelled: it
        // would end in EHOSTUNREACH seconds later, and the timeout say Ok.)
        let cancel = || {
            tokio::time::timeout(
                Duration::from_millis(50),
                TcpStream::connect(&net.b, "10.0.0.99:80"),
            )
        };
        assert!(cancel().await.is_err(), "the connect cannot have finished");
        let before = settle_fds(open_fds()).await;
        for _ in 0..20 {
            assert!(cancel().await.is_err(), "the connect cannot have finished");
        }
        let after = settle_fds(before).await;
        assert!(
            after <= before,
            "descriptors left behind: {before} then {after}"
        );
        // The stack still connects.
        let server = echo_server(&net.a, addr("10.0.0.1:7")).await;
        let mut stream = TcpStream::connect(&net.b, server).await.unwrap();
        stream.write_all(b"still here").await.unwrap();
    });
}

fn udp_round_trip(backend: Backend) {
    let net = net(backend);
    run(async {
        let server = Arc::new(UdpSocket::bind(&net.a, "0.0.0.0:5353").await.unwrap());
        let echo = server.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = echo.recv_from(&mut buf).await {
                let _ = echo.send_to(&buf[..n], from).await;
            }
        });
        let client = UdpSocket::bind(&net.b, "0.0.0.0:0").await.unwrap();
        let mut buf = vec![0u8; 2048];
        // The first datagram may wait for ARP; a lost one is sent again.
        let mut answer = None;
        for _ in 0..20 {
            client.send_to(b"question", "10.0.0.1:5353").await.unwrap();
            let received =
                tokio::time::timeout(Duration::from_millis(500), client.recv_from(&mut buf));
            if let Ok(received) = received.await {
                answer = Some(received.unwrap());
                break;
            }
        }
        let (n, from) = answer.expect("no echo came back");
        assert_eq!(&buf[..n], b"question");
        assert_eq!(from, addr("10.0.0.1:5353"));

        // Connected: send and recv, and a peek that leaves the datagram queued.
        client.connect("10.0.0.1:5353").await.unwrap();
        assert_eq!(client.peer_addr().unwrap(), addr("10.0.0.1:5353"));
        client.send(b"again").await.unwrap();
        let (n, from) = client.peek_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"again"[..], addr("10.0.0.1:5353")));
        let n = client.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"again");
        client.writable().await.unwrap();
        client.try_send(b"try").unwrap();
        client.readable().await.unwrap();
        let n = loop {
            match client.try_recv(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => client.readable().await.unwrap(),
                other => break other.unwrap(),
            }
        };
        assert_eq!(&buf[..n], b"try");

        // Through the blocking type and back.
        let blocking = client.into_std().unwrap();
        assert_eq!(blocking.peer_addr().unwrap(), addr("10.0.0.1:5353"));
        let client = UdpSocket::from_std(blocking).unwrap();
        client.send(b"back").await.unwrap();
        let n = client.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
    });
}

fn split_halves(backend: Backend) {
    let net = net(backend);
    run(async {
        let server = echo_server(&net.a, addr("10.0.0.1:7")).await;
        let payload = pattern(7, 1 << 20);

        // Owned halves in two tasks; dropping the writer shuts writing down.
        let stream = TcpStream::connect(&net.b, server).await.unwrap();
        let (mut rd, mut wr) = stream.into_split();
        let sent = payload.clone();
        let writer = tokio::spawn(async move { wr.write_all(&sent).await });
        let mut echo = Vec::new();
        rd.read_to_end(&mut echo).await.unwrap();
        writer.await.unwrap().unwrap();
        assert!(echo == payload, "the echo through owned halves differs");

        // Halves of different streams do not reunite; a stream's own do.
        let one = TcpStream::connect(&net.b, server)
            .await
            .unwrap()
            .into_split();
        let two = TcpStream::connect(&net.b, server)
            .await
            .unwrap()
            .into_split();
        let vdestack::tokio::ReuniteError(rd_one, wr_two) = one.0.reunite(two.1).unwrap_err();
        let mut stream = rd_one.reunite(one.1).unwrap();
        drop((two.0, wr_two));

        // Borrowed halves in one task; into the blocking type and back.
        {
            let (mut rd, mut wr) = stream.split();
            let mut echo = vec![0u8; payload.len()];
            let (written, read) = tokio::join!(wr.write_all(&payload), rd.read_exact(&mut echo));
            written.unwrap();
            read.unwrap();
            assert!(echo == payload, "the echo through borrowed halves differs");
        }
        let local = stream.local_addr().unwrap();
        let blocking = stream.into_std().unwrap();
        assert_eq!(blocking.local_addr().unwrap(), local);
        let mut stream = TcpStream::from_std(blocking).unwrap();
        assert_eq!(stream.peer_addr().unwrap(), server);
        stream.write_all(b"end").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"end");
    });
}

fn peek_and_vectored_write(backend: Backend) {
    let net = net(backend);
    run(async {
        let listener = TcpListener::bind(&net.a, "0.0.0.0:7").await.unwrap();
        assert_eq!(listener.local_addr().unwrap(), addr("0.0.0.0:7"));
        let server_addr = addr("10.0.0.1:7");
        let mut client = TcpStream::connect(&net.b, server_addr).await.unwrap();
        let (mut server, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
        client.set_nodelay(true).unwrap();
        assert!(client.nodelay().unwrap());

        assert!(client.is_write_vectored());
        let parts: [&[u8]; 3] = [b"hello ", b"vectored ", b"world"];
        let whole = parts.concat();
        let mut slices: Vec<IoSlice> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let n = client.write_vectored(slices).await.unwrap();
            IoSlice::advance_slices(&mut slices, n);
        }

        // A peek sees what a read then takes; try_read once readable.
        let mut peeked = vec![0u8; whole.len()];
        let mut seen = 0;
        while seen < whole.len() {
            seen = server.peek(&mut peeked).await.unwrap();
        }
        assert_eq!(peeked, whole);
        server.readable().await.unwrap();
        let mut read = vec![0u8; whole.len()];
        let n = server.try_read(&mut read).unwrap();
        server.read_exact(&mut read[n..]).await.unwrap();
        assert_eq!(read, whole);

        // A reset peer: ECONNRESET once, where the pair says end of stream.
        server.set_linger(Some(Duration::ZERO)).unwrap();
        drop(server);
        let mut buf = [0u8; 8];
        let e = client.read(&mut buf).await.unwrap_err();
        assert_eq!(errno(&e), libc::ECONNRESET, "{e}");
    });
}

/// Names are resolved through the stack: `localhost` is its loopback.
#[test]
fn names_resolve_through_the_stack() {
    let net = net(Backend::Userspace);
    run(async {
        net.a.cmd("/bin/ip link set lo up").unwrap();
        let server = echo_server(&net.a, addr("127.0.0.1:7")).await;
        let mut stream = TcpStream::connect(&net.a, ("localhost", server.port()))
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), server);
        stream.write_all(b"loop").await.unwrap();
        let mut echo = [0u8; 4];
        stream.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"loop");
    });
}

on_both_backends! {
    hyper_serves_http_between_stacks: hyper_serves_and_fetches;
    a_thousand_concurrent_connections: thousand_concurrent_connections;
    connect_errors_are_the_blocking_ones: connect_refused;
    a_cancelled_connect_leaves_no_descriptor: cancelled_connect_leaves_nothing;
    udp_round_trips: udp_round_trip;
    split_halves_read_and_write: split_halves;
    peek_vectored_writes_and_reset: peek_and_vectored_write;
}
