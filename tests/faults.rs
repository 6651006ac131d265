//! Faults on a real wire: loss, delay, duplication, reordering and a bandwidth limit
//! from `wirefilter` (Debian package vde2) between two `vde_switch`es; a switch killed
//! in the middle of a transfer; many threads on one stack; a stack dropped under
//! sockets that other threads are using.
//!
//! Nothing here synchronises by sleeping: every wait is on a channel with a deadline,
//! or on a socket with SO_RCVTIMEO/SO_SNDTIMEO set, so a hang fails the test with a
//! message instead of stalling the suite. (The only polls are bounded waits for an
//! external program to be ready: a socket file, a tap device, a listening iperf3.)
//! Every process started here is killed and reaped by its fixture's `Drop`, and every
//! temporary directory removed.
//!
//! Timings are printed, never asserted: `cargo test --release --test faults --
//! --nocapture` shows them, and `wire_loss_1pct` and `wire_loss_5pct` print the
//! Linux kernel's throughput under the same wirefilter beside ours, with our
//! fraction of it (issue #13's targets: 0.5 at 1%, 0.33 at 5%). The same
//! scenarios with exact, asserted timings run in virtual time in
//! `tcp_scenarios.rs`.
//!
//! UDP runs under loss, duplication and reordering too: datagrams go missing or come
//! twice, but each one that arrives is whole and unmerged.

mod common;

use common::{Namespace, Net, Switch, Wire, Wirefilter};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use vdestack::{Stack, TcpListener, TcpStream, UdpSocket};

/// A read or write that makes no progress for this long fails the transfer. Longer
/// than smoltcp's largest retransmission timeout (60 s): a connection this quiet is
/// stuck, not backing off.
const IDLE: Duration = Duration::from_secs(65);

const MIB: u64 = 1 << 20;

/// The byte at `offset` of a test stream seeded with `seed`: catches lost,
/// duplicated and reordered bytes alike.
fn pattern(seed: u64, offset: u64) -> u8 {
    let x = offset
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(seed);
    (x ^ (x >> 29) ^ (offset >> 16)) as u8
}

/// Whether an error is "the connection failed", as opposed to a library bug:
/// a timeout from SO_RCVTIMEO/SO_SNDTIMEO, a reset, a TCP timeout, a broken pipe,
/// or the stack gone.
fn is_clean_failure(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::BrokenPipe
    ) || matches!(
        e.raw_os_error(),
        Some(libc::ECONNRESET | libc::ETIMEDOUT | libc::EPIPE | libc::ENETDOWN)
    )
}

/// Writes `len` pattern bytes, then shuts down writing.
fn send_pattern(mut stream: &TcpStream, seed: u64, len: u64) -> Result<(), String> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0;
    while offset < len {
        let n = buf.len().min((len - offset) as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(seed, offset + i as u64);
        }
        stream.write_all(&buf[..n]).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => {
                format!("no room for {IDLE:?} (stuck) at byte {offset} of {len}")
            }
            _ => format!("write at byte {offset} of {len}: {e}"),
        })?;
        offset += n as u64;
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown(Write): {e}"))
}

/// Reads to EOF, checking every byte against the pattern; fails unless exactly
/// `len` bytes arrive.
fn check_pattern(mut stream: &TcpStream, seed: u64, len: u64) -> Result<(), String> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0u64;
    loop {
        let n = stream.read(&mut buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => {
                format!("no byte for {IDLE:?} (stuck) at byte {offset} of {len}")
            }
            _ => format!("read at byte {offset} of {len}: {e}"),
        })?;
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            let at = offset + i as u64;
            if b != pattern(seed, at) {
                return Err(format!(
                    "corrupt byte {at}: got {b:#04x}, expected {:#04x}",
                    pattern(seed, at)
                ));
            }
        }
        offset += n as u64;
        if offset > len {
            return Err(format!("{offset} bytes arrived, more than the {len} sent"));
        }
    }
    if offset != len {
        return Err(format!("EOF after {offset} of {len} bytes"));
    }
    Ok(())
}

fn set_timeouts(stream: &TcpStream, timeout: Duration) {
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.set_write_timeout(Some(timeout)).unwrap();
}

/// Connects, retrying (a bounded number of times) only when the handshake or the
/// ARP exchange was lost on a faulty wire.
fn connect_lossy(stack: &Stack, to: SocketAddr) -> TcpStream {
    let mut last = None;
    for _ in 0..4 {
        match TcpStream::connect_timeout(stack, &to, Duration::from_secs(15)) {
            Ok(s) => return s,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EHOSTUNREACH | libc::ETIMEDOUT)) => {
                eprintln!("connect to {to}: {e}; trying again");
                last = Some(e);
            }
            Err(e) => panic!("connect to {to}: {e}"),
        }
    }
    panic!("connect to {to}: {}", last.unwrap());
}

/// Receives `count` messages, failing with `what` when `limit` passes first.
fn collect<T>(rx: &mpsc::Receiver<T>, count: usize, limit: Duration, what: &str) -> Vec<T> {
    collect_or_partial(rx, count, limit).unwrap_or_else(|(got, why)| {
        panic!("{what}: only {} of {count} finished: {why}", got.len())
    })
}

/// Receives `count` messages within `limit`; on failure, what arrived and why not
/// the rest.
fn collect_or_partial<T>(
    rx: &mpsc::Receiver<T>,
    count: usize,
    limit: Duration,
) -> Result<Vec<T>, (Vec<T>, String)> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(m) => got.push(m),
            Err(RecvTimeoutError::Timeout) => {
                return Err((
                    got,
                    format!("the rest did not end within {limit:?} (hang?)"),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err((got, "a thread died (panicked)".to_string()))
            }
        }
    }
    Ok(got)
}

// ---- faults from wirefilter ----

/// Stack `a` (10.0.0.1) on one switch, `b` (10.0.0.2) on another, and a wirefilter
/// between the switches. Fields drop in order: stacks, then the wire, then switches.
struct FaultyNet {
    a: Stack,
    b: Stack,
    _wire: Wirefilter,
    _sw_b: Switch,
    _sw_a: Switch,
}

impl FaultyNet {
    fn new(faults: &[&str]) -> FaultyNet {
        let sw_a = Switch::start();
        let sw_b = Switch::start();
        let wire = Wirefilter::start(&sw_a, &sw_b, faults);
        let a = stack_on(&sw_a, "a");
        let b = stack_on(&sw_b, "b");
        a.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")
            .expect("configure a");
        b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")
            .expect("configure b");
        FaultyNet {
            a,
            b,
            _wire: wire,
            _sw_b: sw_b,
            _sw_a: sw_a,
        }
    }
}

/// A stack on `switch`; with `VDESTACK_FAULTS_PCAP=DIR` in the environment, its
/// frames are captured in `DIR/NAME.pcap` (to look at a slow run with tcpdump).
fn stack_on(switch: &Switch, name: &str) -> Stack {
    let mut builder = Stack::builder().vnl(&switch.vnl());
    if let Some(dir) = std::env::var_os("VDESTACK_FAULTS_PCAP") {
        builder = builder.pcap(std::path::Path::new(&dir).join(format!("{name}.pcap")));
    }
    builder
        .build()
        .unwrap_or_else(|e| panic!("stack {name}: {e}"))
}

/// Throughput in MB/s (1e6 bytes).
fn mbps(len: u64, took: Duration) -> f64 {
    len as f64 / took.as_secs_f64() / 1e6
}

/// How the two directions of a transfer travel.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Carry {
    /// Two connections at once, each carrying data one way.
    TwoConnections,
    /// One connection carrying data both ways at once.
    OneConnection,
}

/// What a transfer thread reports: direction (0 is a->b), role, outcome (time from
/// the start to the end of its part).
type Report = (usize, &'static str, Result<Duration, String>);

/// `len` bytes from a to b and `len` bytes from b to a at the same time, every
/// byte checked, within `limit`. Returns how long each direction took (a to b,
/// b to a), from the moment every connection is up to the reader's EOF: as
/// iperf3, which the loss figures compare with, starts its clock once its
/// streams are connected (a handshake or ARP request lost costs either stack a
/// second, Linux's initial retransmission timeout, before that).
fn transfer_each_way(
    net: &FaultyNet,
    carry: Carry,
    len: u64,
    limit: Duration,
    what: &str,
) -> [Duration; 2] {
    let listener = TcpListener::bind(&net.a, "10.0.0.1:5001").unwrap();
    let to_a: SocketAddr = "10.0.0.1:5001".parse().unwrap();
    let (tx, rx) = mpsc::channel::<Report>();
    let conns = match carry {
        Carry::TwoConnections => 2,
        Carry::OneConnection => 1,
    };
    let (accepted_tx, accepted_rx) = mpsc::channel();
    let server_tx = tx.clone();
    thread::spawn(move || {
        for _ in 0..conns {
            match listener.accept() {
                Ok((conn, _)) => {
                    let _ = accepted_tx.send(conn);
                }
                Err(e) => {
                    let _ = server_tx.send((0, "accept", Err(e.to_string())));
                    return;
                }
            }
        }
    });
    let connected: Vec<TcpStream> = (0..conns).map(|_| connect_lossy(&net.b, to_a)).collect();
    let mut accepted: Vec<TcpStream> = (0..conns)
        .map(|_| {
            accepted_rx
                .recv_timeout(limit)
                .unwrap_or_else(|e| panic!("{what}: no connection accepted: {e}"))
        })
        .collect();
    // Each client with its own server end (a lost final ACK may have the
    // second connection accepted first).
    let servers: Vec<TcpStream> = connected
        .iter()
        .map(|client| {
            let at = accepted
                .iter()
                .position(|server| server.peer_addr().ok() == client.local_addr().ok())
                .unwrap_or_else(|| panic!("{what}: a connection's server end is missing"));
            accepted.swap_remove(at)
        })
        .collect();
    let start = Instant::now();
    for (i, (client, server)) in connected.into_iter().zip(servers).enumerate() {
        set_timeouts(&client, IDLE);
        set_timeouts(&server, IDLE);
        match (carry, i) {
            // The first connection carries b->a, the second a->b (accepted in
            // the order connected: each connect returns before the next starts).
            (Carry::TwoConnections, 0) => {
                spawn_writer(client, 1, len, start, &tx);
                spawn_reader(server, 1, len, start, &tx);
            }
            (Carry::TwoConnections, _) => {
                spawn_reader(client, 0, len, start, &tx);
                spawn_writer(server, 0, len, start, &tx);
            }
            (Carry::OneConnection, _) => {
                spawn_writer(client.try_clone().unwrap(), 1, len, start, &tx);
                spawn_reader(client, 0, len, start, &tx);
                spawn_writer(server.try_clone().unwrap(), 0, len, start, &tx);
                spawn_reader(server, 1, len, start, &tx);
            }
        }
    }
    let (results, unfinished) = match collect_or_partial(&rx, 4, limit) {
        Ok(all) => (all, None),
        Err((some, why)) => (some, Some(why)),
    };
    let mut took = [Duration::ZERO; 2];
    let mut failures = Vec::new();
    if let Some(why) = unfinished {
        let ended: Vec<String> = results
            .iter()
            .map(|(dir, role, _)| format!("{} {role}", ["a->b", "b->a"][*dir]))
            .collect();
        failures.push(format!("{what} ({carry:?}): only {ended:?} ended; {why}"));
    }
    for (dir, role, outcome) in results {
        let name = ["a->b", "b->a"][dir];
        match outcome {
            Ok(t) if role == "reader" => took[dir] = t,
            Ok(_) => {}
            Err(e) => failures.push(format!("{what} ({carry:?}), {name} {role}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    took
}

/// Sends direction `dir`'s pattern on `conn`, then FIN.
fn spawn_writer(conn: TcpStream, dir: usize, len: u64, start: Instant, tx: &mpsc::Sender<Report>) {
    let tx = tx.clone();
    thread::spawn(move || {
        let r = send_pattern(&conn, 100 + dir as u64, len).map(|()| start.elapsed());
        let _ = tx.send((dir, "writer", r));
    });
}

/// Checks direction `dir`'s pattern arriving on `conn`, up to EOF.
fn spawn_reader(conn: TcpStream, dir: usize, len: u64, start: Instant, tx: &mpsc::Sender<Report>) {
    let tx = tx.clone();
    thread::spawn(move || {
        let r = check_pattern(&conn, 100 + dir as u64, len).map(|()| start.elapsed());
        let _ = tx.send((dir, "reader", r));
    });
}

fn faulty_transfer(faults: &[&str], carry: Carry, len: u64, limit: Duration) -> [Duration; 2] {
    let what = format!("wirefilter {}", faults.join(" "));
    let net = FaultyNet::new(faults);
    let took = transfer_each_way(&net, carry, len, limit, &what);
    println!(
        "{what}: {} KiB each way at once ({carry:?}): \
         a->b {:.3} MB/s ({:.1} s), b->a {:.3} MB/s ({:.1} s)",
        len >> 10,
        mbps(len, took[0]),
        took[0].as_secs_f64(),
        mbps(len, took[1]),
        took[1].as_secs_f64()
    );
    took
}

/// The bound on each wirefilter transfer.
const LIMIT: Duration = Duration::from_secs(120);

/// 1% loss, 16 MiB each way; prints our throughput next to the Linux kernel's under
/// the same wirefilter, and the ratio (`cargo test --release --test faults wire_loss
/// -- --nocapture`). Nothing is asserted about speed (issue #13's target: 0.5 of
/// Linux's each way).
#[test]
fn wire_loss_1pct() {
    loss_beside_linux(1, 16 * MIB, LIMIT);
}

/// 5% loss, 4 MiB each way at once, beside Linux (issue #13's target: 0.33 of
/// Linux's each way).
#[test]
fn wire_loss_5pct() {
    loss_beside_linux(5, 4 * MIB, Duration::from_secs(900));
}

/// `len` each way at once through `wirefilter -l percent`: ours on two
/// connections, then the Linux kernel's (`iperf3 --bidir`) through the same
/// wirefilter; prints both and our fraction of Linux's.
fn loss_beside_linux(percent: u32, len: u64, limit: Duration) {
    let loss = percent.to_string();
    let faults = ["-l", loss.as_str()];
    let took = faulty_transfer(&faults, Carry::TwoConnections, len, limit);
    let ours = [mbps(len, took[0]), mbps(len, took[1])];
    let head = format!(
        "THROUGHPUT under wirefilter -l {percent}, {} MiB each way at once, MB/s a->b / b->a: \
         vdestack {:.2} / {:.2}",
        len >> 20,
        ours[0],
        ours[1]
    );
    match kernel_bidir_throughput(&faults, len) {
        Ok([ab, ba]) => println!(
            "{head}; Linux kernel (iperf3 --bidir, same wirefilter) {ab:.2} / {ba:.2}; \
             ratio {:.2} / {:.2}",
            ours[0] / ab,
            ours[1] / ba
        ),
        Err(why) => println!("{head}; Linux kernel not measured: {why}"),
    }
}

/// Data both ways on ONE connection under loss. A regression test: smoltcp stamps
/// its pure ACKs with a sequence number rewound by its retransmission timeout, so
/// the peer dropped them as out-of-window and both ends retransmitted forever; the
/// engine now keeps ACK sequence numbers at the highest sent (engine/frames.rs,
/// `AckSequence`). 4 MiB each way keeps it short; `wire_loss_1pct` moves the full
/// 16 MiB on two one-way connections.
#[test]
fn wire_loss_1pct_one_connection() {
    faulty_transfer(&["-l", "1"], Carry::OneConnection, 4 * MIB, LIMIT);
}

#[test]
fn wire_delay_20ms() {
    faulty_transfer(&["-d", "20"], Carry::OneConnection, 16 * MIB, LIMIT);
}

#[test]
fn wire_duplication_1pct() {
    faulty_transfer(&["-D", "1"], Carry::OneConnection, 16 * MIB, LIMIT);
}

/// `-N` lets frames overtake each other; a uniformly random extra delay of 0-4 ms
/// makes them do it (a probe of 2,000 frames saw ~800 arrive out of order).
#[test]
fn wire_reordering() {
    faulty_transfer(&["-N", "-d", "2+2U"], Carry::OneConnection, 16 * MIB, LIMIT);
}

/// 10 Mbit/s is 1,250,000 bytes/s each way: 2 MiB takes at least 1.7 s.
#[test]
fn wire_bandwidth_10mbit() {
    faulty_transfer(&["-b", "1250000"], Carry::OneConnection, 2 * MIB, LIMIT);
}

/// The content of UDP test datagram `i`: sizes up to 3,000 bytes (some travel as
/// two IPv4 fragments), every byte depending on `i`.
fn udp_datagram(i: u32) -> Vec<u8> {
    let len = (i as usize * 101) % 3000;
    let mut data = i.to_le_bytes().to_vec();
    data.extend((0..len).map(|k| pattern(u64::from(i), k as u64)));
    data
}

/// 2,000 datagrams through the faulty wire: prints how many arrived (and how many
/// twice); fails if any arrived altered, merged or split.
fn udp_through(faults: &[&str]) {
    let net = FaultyNet::new(faults);
    let server = UdpSocket::bind(&net.a, "0.0.0.0:9").unwrap();
    let client = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let receiver = thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        let mut seen = vec![0u32; 2000];
        while let Ok((n, _)) = server.recv_from(&mut buf) {
            assert!(n >= 4, "a {n}-byte datagram");
            let i = u32::from_le_bytes(buf[..4].try_into().unwrap());
            assert!(i < 2000, "datagram number {i}");
            assert!(buf[..n] == udp_datagram(i), "datagram {i} altered");
            seen[i as usize] += 1;
        }
        seen
    });
    for i in 0..2000 {
        client.send_to(&udp_datagram(i), "10.0.0.1:9").unwrap();
    }
    let seen = receiver.join().expect("receiver");
    let arrived = seen.iter().filter(|&&c| c > 0).count();
    let twice = seen.iter().filter(|&&c| c > 1).count();
    eprintln!("udp {faults:?}: {arrived} of 2000 datagrams arrived, {twice} more than once");
    assert!(arrived > 0, "nothing arrived");
}

#[test]
fn udp_under_loss_duplication_and_reordering() {
    udp_through(&["-l", "5"]);
    udp_through(&["-D", "5"]);
    udp_through(&["-N", "-d", "2+2U"]);
}

/// The Linux kernel's TCP under the same wirefilter: two network namespaces, each
/// with a tap plugged into one of the switches (`vde_plug vde://SW tap://vt0`), and
/// `iperf3 --bidir` between them. Returns MB/s each way; `Err` says why it could not
/// be measured (no user namespaces, no tap, no iperf3).
fn kernel_bidir_throughput(faults: &[&str], len: u64) -> Result<[f64; 2], String> {
    if !Namespace::available() {
        return Err("unprivileged user namespaces are not available".into());
    }
    let sw_a = Switch::start();
    let sw_b = Switch::start();
    let _wire = Wirefilter::start(&sw_a, &sw_b, faults);
    let host = |sw: &Switch, addr: &str, then: &str| {
        format!(
            "vde_plug {vnl} tap://vt0 & \
             i=0; until ip link set vt0 up 2>/dev/null; do \
               i=$((i+1)); [ $i -gt 500 ] && {{ echo no tap >&2; exit 3; }}; sleep 0.01; done; \
             ip link set lo up && ip addr add {addr}/24 dev vt0 && {then}",
            vnl = sw.vnl()
        )
    };
    let _server = Namespace::run(&host(&sw_a, "10.0.0.1", "exec iperf3 -s -1 -B 10.0.0.1"))
        .map_err(|e| format!("unshare: {e}"))?;
    // The client retries (bounded) until the server listens. iperf3 3.12 may
    // exit 0 with `-J` when its connection is refused, the error in its JSON.
    let client_cmd = format!(
        "i=0; until out=$(iperf3 -c 10.0.0.1 --bidir -n {len} -J 2>&1) \
             && ! printf '%s' \"$out\" | grep -q '\"error\"'; do \
           i=$((i+1)); [ $i -gt 100 ] && {{ printf '%s\\n' \"$out\"; exit 4; }}; sleep 0.05; done; \
         printf '%s\\n' \"$out\""
    );
    let mut client = Namespace::run(&host(&sw_b, "10.0.0.2", &client_cmd))
        .map_err(|e| format!("unshare: {e}"))?;
    let mut stdout = client.child().stdout.take().expect("piped");
    let mut stderr = client.child().stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut out = String::new();
        let mut err = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send((out, err));
    });
    let (out, err) = rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "iperf3 did not finish within 60 s".to_string())?;
    let status = client.child().wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("iperf3 client: {status}: {err}{out}"));
    }
    let rate = |key: &str| -> Result<f64, String> {
        let at = out
            .find(&format!("\"{key}\""))
            .ok_or_else(|| format!("no {key} in iperf3's output: {out}"))?;
        let rest = &out[at..];
        let bps = rest
            .find("\"bits_per_second\":")
            .ok_or("no bits_per_second")?
            + 18;
        let num: String = rest[bps..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == 'e' || *c == '+')
            .collect();
        num.parse::<f64>()
            .map(|b| b / 8e6)
            .map_err(|e| format!("{num}: {e}"))
    };
    // The client (10.0.0.2, stack b's place) sends "sum_received" to the server
    // (10.0.0.1, a's place); "sum_received_bidir_reverse" is the other way.
    Ok([rate("sum_received_bidir_reverse")?, rate("sum_received")?])
}

// ---- a switch killed in the middle of a transfer ----

/// How one thread's use of a socket ended: `Ok(bytes)` at EOF, or the error, and when.
type Ending = (&'static str, Result<u64, io::Error>, Instant);

/// Writes the pattern until a write fails; sends `started` after the first write.
fn write_until_error(
    conn: TcpStream,
    name: &'static str,
    started: mpsc::Sender<()>,
    done: mpsc::Sender<Ending>,
) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut offset = 0u64;
        let mut announced = false;
        let result = loop {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = pattern(7, offset + i as u64);
            }
            match (&conn).write(&buf) {
                Ok(n) => offset += n as u64,
                Err(e) => break Err(e),
            }
            if !announced {
                announced = true;
                let _ = started.send(());
            }
        };
        let _ = done.send((name, result, Instant::now()));
    });
}

/// Reads (checking the pattern) until EOF or an error; sends `started` before the
/// first read, then `progress` once `mark` bytes have arrived.
fn read_until_end(
    conn: TcpStream,
    name: &'static str,
    mark: u64,
    started: mpsc::Sender<()>,
    done: mpsc::Sender<Ending>,
) {
    thread::spawn(move || {
        let _ = started.send(());
        let mut buf = vec![0u8; 64 * 1024];
        let mut offset = 0u64;
        let result = loop {
            match (&conn).read(&mut buf) {
                Ok(0) => break Ok(offset),
                Ok(n) => {
                    let bad = (0..n).find(|&i| buf[i] != pattern(7, offset + i as u64));
                    if let Some(i) = bad {
                        let at = offset + i as u64;
                        let msg = format!("corrupt byte {at}");
                        break Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                    }
                    if offset < mark && offset + n as u64 >= mark {
                        let _ = started.send(());
                    }
                    offset += n as u64;
                }
                Err(e) => break Err(e),
            }
        };
        let _ = done.send((name, result, Instant::now()));
    });
}

/// Drops a value in another thread, failing if that does not return within `limit`.
fn drop_bounded<T: Send + 'static>(value: T, limit: Duration, what: &str) -> Instant {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        drop(value);
        let _ = tx.send(());
    });
    let start = Instant::now();
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("dropping {what} did not return within {limit:?}"));
    start
}

/// A socket whose stack is gone: reading gives EOF or an error at once (after any
/// bytes already delivered to the descriptor), writing an error.
fn assert_dead(mut conn: &TcpStream, name: &str) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut leftover = 0usize;
    let read = loop {
        match conn.read(&mut buf) {
            Ok(0) => break Ok(0),
            Ok(n) if leftover < 64 * MIB as usize => leftover += n,
            other => break other,
        }
    };
    match &read {
        Ok(0) => {}
        Err(e) if is_clean_failure(e) && e.kind() != io::ErrorKind::WouldBlock => {}
        other => panic!("{name}: read on a socket whose stack is gone: {other:?}"),
    }
    let write = conn.write(b"x");
    match &write {
        Err(e) if is_clean_failure(e) && e.kind() != io::ErrorKind::WouldBlock => {}
        other => panic!("{name}: write on a socket whose stack is gone: {other:?}"),
    }
    println!(
        "{name}, stack gone: read {:?} (after {leftover} buffered bytes), write {:?}",
        read.map_err(|e| e.to_string()),
        write.map_err(|e| e.to_string())
    );
}

/// Kills the switch under a running transfer. With a 5 s SO_RCVTIMEO/SO_SNDTIMEO,
/// every thread using the connection gets an error within that timeout (plus a
/// margin); the stacks then drop promptly, their sockets fail cleanly, and fresh
/// stacks on a new switch work.
#[test]
fn switch_killed_mid_transfer() {
    const TIMEOUT: Duration = Duration::from_secs(5);
    const MARGIN: Duration = Duration::from_secs(5);
    let mut sw = Switch::start();
    let a = Stack::new(&sw.vnl(), None).unwrap();
    let b = Stack::new(&sw.vnl(), None).unwrap();
    a.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")
        .unwrap();
    b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")
        .unwrap();
    let listener = TcpListener::bind(&a, "0.0.0.0:5002").unwrap();
    let client = TcpStream::connect(&b, "10.0.0.1:5002").unwrap();
    let (server, _) = listener.accept().unwrap();
    set_timeouts(&client, TIMEOUT);
    set_timeouts(&server, TIMEOUT);

    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    // b writes to a; a reads; b also waits for bytes that never come.
    write_until_error(
        client.try_clone().unwrap(),
        "writer on b",
        started_tx.clone(),
        done_tx.clone(),
    );
    read_until_end(
        server.try_clone().unwrap(),
        "reader on a",
        4 * MIB,
        started_tx.clone(),
        done_tx.clone(),
    );
    read_until_end(
        client.try_clone().unwrap(),
        "idle reader on b",
        u64::MAX,
        started_tx,
        done_tx,
    );
    // Three "started" messages and the reader's "4 MiB arrived": the transfer runs.
    collect(
        &started_rx,
        4,
        Duration::from_secs(30),
        "transfer before the kill",
    );

    sw.kill();
    let killed = Instant::now();
    let endings = collect(
        &done_rx,
        3,
        2 * TIMEOUT + 2 * MARGIN,
        "after the switch died",
    );
    for (name, result, when) in endings {
        let after = when.saturating_duration_since(killed);
        println!("switch killed: {name} ended {after:?} later with {result:?}");
        match &result {
            Ok(_) => assert!(name.contains("reader"), "{name}: EOF from a writer?"),
            Err(e) => assert!(is_clean_failure(e), "{name}: unexpected error {e:?}"),
        }
        // SO_SNDTIMEO bounds each wait for room, and a write that sent part of its
        // buffer before timing out returns that count (as on a kernel socket): a
        // writer's error can come a few timeouts later, each partial write having
        // restarted the wait (seen: 3 under load).
        let bound = if name.contains("writer") {
            4 * TIMEOUT + MARGIN
        } else {
            TIMEOUT + MARGIN
        };
        assert!(
            after <= bound,
            "{name} ended {after:?} after the switch died, with a {TIMEOUT:?} timeout"
        );
    }

    // The stacks go away promptly though their link is dead and sockets are open.
    drop_bounded((a, b, listener), Duration::from_secs(10), "the stacks");
    assert_dead(&client, "client on b");
    assert_dead(&server, "server on a");
    drop((client, server, sw));

    // A new switch (a new directory) and new stacks work.
    let net = Net::new(Wire::Switch);
    let listener = TcpListener::bind(&net.a, "0.0.0.0:7").unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let result = (|| -> io::Result<()> {
            let (mut conn, _) = listener.accept()?;
            set_timeouts(&conn, Duration::from_secs(10));
            let mut buf = [0u8; 64];
            let n = conn.read(&mut buf)?;
            conn.write_all(&buf[..n])
        })();
        let _ = tx.send(result.map_err(|e| e.to_string()));
    });
    let mut client = TcpStream::connect_timeout(
        &net.b,
        &"10.0.0.1:7".parse().unwrap(),
        Duration::from_secs(10),
    )
    .expect("connect on the new switch");
    set_timeouts(&client, Duration::from_secs(10));
    client.write_all(b"after the restart").unwrap();
    let mut back = [0u8; 17];
    client
        .read_exact(&mut back)
        .expect("echo on the new switch");
    assert_eq!(&back, b"after the restart");
    collect(&rx, 1, Duration::from_secs(10), "echo server")
        .pop()
        .unwrap()
        .unwrap();
}

// ---- many threads on one stack ----

/// 32 threads each open, use and close 20 connections on stack b at once, against
/// an echo server on stack a: every message comes back intact, nothing deadlocks.
#[test]
fn thirty_two_threads_on_one_stack() {
    const THREADS: usize = 32;
    const EACH: usize = 20;
    const TIMEOUT: Duration = Duration::from_secs(20);
    let net = Net::new(Wire::Switch);
    let listener = TcpListener::bind(&net.a, "0.0.0.0:7").unwrap();
    let (server_tx, server_rx) = mpsc::channel::<Result<(), String>>();
    thread::spawn(move || {
        for _ in 0..THREADS * EACH {
            let (mut conn, _) = match listener.accept() {
                Ok(c) => c,
                Err(e) => {
                    let _ = server_tx.send(Err(format!("accept: {e}")));
                    return;
                }
            };
            let tx = server_tx.clone();
            thread::spawn(move || {
                set_timeouts(&conn, TIMEOUT);
                let mut buf = [0u8; 4096];
                let result = loop {
                    match conn.read(&mut buf) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            if let Err(e) = conn.write_all(&buf[..n]) {
                                break Err(format!("echo write: {e}"));
                            }
                        }
                        Err(e) => break Err(format!("echo read: {e}")),
                    }
                };
                let _ = tx.send(result);
            });
        }
    });

    let barrier = Arc::new(Barrier::new(THREADS));
    let (tx, rx) = mpsc::channel::<Result<(), String>>();
    let to: SocketAddr = "10.0.0.1:7".parse().unwrap();
    for t in 0..THREADS {
        let stack = net.b.clone();
        let barrier = barrier.clone();
        let tx = tx.clone();
        thread::spawn(move || {
            barrier.wait();
            let result = (|| -> Result<(), String> {
                for i in 0..EACH {
                    let step =
                        |e: io::Error, what: &str| format!("thread {t} conn {i} {what}: {e}");
                    let mut conn = TcpStream::connect_timeout(&stack, &to, TIMEOUT)
                        .map_err(|e| step(e, "connect"))?;
                    set_timeouts(&conn, TIMEOUT);
                    let msg =
                        format!("[thread {t} connection {i}]").repeat(1 + (t * EACH + i) % 97);
                    conn.write_all(msg.as_bytes())
                        .map_err(|e| step(e, "write"))?;
                    let mut back = vec![0u8; msg.len()];
                    conn.read_exact(&mut back).map_err(|e| step(e, "read"))?;
                    if back != msg.as_bytes() {
                        return Err(format!("thread {t} conn {i}: the echo differs"));
                    }
                    conn.shutdown(Shutdown::Write)
                        .map_err(|e| step(e, "shutdown"))?;
                    let n = conn.read(&mut back).map_err(|e| step(e, "read EOF"))?;
                    if n != 0 {
                        return Err(format!("thread {t} conn {i}: {n} bytes after the echo"));
                    }
                }
                Ok(())
            })();
            let _ = tx.send(result);
        });
    }
    let start = Instant::now();
    let results = collect(&rx, THREADS, Duration::from_secs(90), "client threads");
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{THREADS} threads x {EACH} connections: {:?}",
        start.elapsed()
    );
    let echoes = collect(
        &server_rx,
        THREADS * EACH,
        Duration::from_secs(30),
        "echo threads",
    );
    let failures: Vec<String> = echoes.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- a stack dropped under busy sockets ----

/// Threads are writing to, reading from and accepting on sockets of stacks that
/// get dropped: the drops return promptly, and every thread's call ends with EOF
/// or a clean error (not its 60 s timeout), as do later calls on held sockets.
#[test]
fn stack_dropped_under_busy_sockets() {
    const N: usize = 4;
    const TIMEOUT: Duration = Duration::from_secs(60);
    const BOUND: Duration = Duration::from_secs(10);
    let net = Net::new(Wire::Switch);
    let listener = TcpListener::bind(&net.a, "0.0.0.0:8000").unwrap();
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..2 * N {
        let c = TcpStream::connect(&net.b, "10.0.0.1:8000").unwrap();
        let (s, _) = listener.accept().unwrap();
        set_timeouts(&c, TIMEOUT);
        set_timeouts(&s, TIMEOUT);
        clients.push(c);
        servers.push(s);
    }
    let (started_tx, started_rx) = mpsc::channel();
    let (b_done_tx, b_done_rx) = mpsc::channel();
    let (a_done_tx, a_done_rx) = mpsc::channel();
    // On b: N writers whose peers never read (they fill every buffer, then block),
    // and N readers that nothing is sent to.
    for (i, c) in clients.iter().enumerate() {
        let c = c.try_clone().unwrap();
        if i < N {
            write_until_error(c, "writer on b", started_tx.clone(), b_done_tx.clone());
        } else {
            read_until_end(
                c,
                "reader on b",
                u64::MAX,
                started_tx.clone(),
                b_done_tx.clone(),
            );
        }
    }
    // On a: N readers that nothing is sent to, and a thread waiting in accept.
    for s in &servers[N..] {
        let s = s.try_clone().unwrap();
        read_until_end(
            s,
            "reader on a",
            u64::MAX,
            started_tx.clone(),
            a_done_tx.clone(),
        );
    }
    {
        let started = started_tx.clone();
        let done = a_done_tx.clone();
        thread::spawn(move || {
            let _ = started.send(());
            let result = listener.accept().map(|_| 0);
            let _ = done.send(("accept on a", result, Instant::now()));
        });
    }
    collect(
        &started_rx,
        3 * N + 1,
        Duration::from_secs(20),
        "threads starting",
    );

    let check = |endings: Vec<Ending>, dropped: Instant| {
        for (name, result, when) in endings {
            let after = when.saturating_duration_since(dropped);
            println!("stack dropped: {name} ended {after:?} later with {result:?}");
            match &result {
                Ok(_) => assert!(
                    name.contains("reader"),
                    "{name}: succeeded on a dropped stack"
                ),
                Err(e) => assert!(
                    is_clean_failure(e) || name.starts_with("accept"),
                    "{name}: unexpected error {e:?}"
                ),
            }
            if let Err(e) = &result {
                assert!(
                    e.kind() != io::ErrorKind::WouldBlock,
                    "{name}: only its own timeout ended it: {e}"
                );
            }
        }
    };

    let b = net.b;
    let dropped = drop_bounded(b, BOUND, "stack b under busy sockets");
    check(
        collect(&b_done_rx, 2 * N, BOUND, "threads on b after its drop"),
        dropped,
    );
    for c in &clients {
        assert_dead(c, "held client on b");
    }

    let a = net.a;
    let dropped = drop_bounded(a, BOUND, "stack a under busy sockets");
    check(
        collect(&a_done_rx, N + 1, BOUND, "threads on a after its drop"),
        dropped,
    );
    for s in &servers {
        assert_dead(s, "held server on a");
    }
}
