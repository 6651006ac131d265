//! One-way TCP throughput between two stacks on one `vde_switch`, next to the
//! reference libvdestack (kernel namespaces) measured in the same run.
//!
//! `cargo bench --bench throughput` (set `VDESTACK_BENCH_MIB` to change the 256 MiB,
//! `VDESTACK_BENCH_RUNS` to change the 3 runs). The reference side needs Debian's
//! `libvdestack-dev`, a C compiler and user namespaces; without them only our figure
//! is printed.
//!
//! A third figure bounds both: the switch's ceiling, full-size frames blasted from one
//! port to another with no TCP at all (no ACKs, no application copies), counted as
//! the 1,460 payload bytes each could carry. No TCP over that switch can beat it.
//! A fourth, the design's floor, runs the same frames through the pipeline our
//! design puts around the switch (an application writing into a socket pair, a pump
//! thread cutting frames, the switch, a pump thread writing into a second socket
//! pair, an application reading) with no TCP: how much of the ceiling the design
//! leaves reachable, so that what is lost between it and ours is TCP's and the
//! engine's.
//!
//! Beside each speed: the CPU time the whole machine spent busy per GB moved (from
//! `/proc/stat`, so the reference's kernel TCP and tap forwarders count wherever
//! they ran, and so do the switch and both pumps), and the same without the
//! switch process's own CPU (its utime + stime from `/proc/PID/stat`): what each
//! library costs, with the forwarding both pay per frame taken out. For ours, the
//! frames each way per MiB moved too (from `ip -s link` of both stacks), since
//! each frame costs the switch CPU. Machine-wide figures count whatever else the
//! machine ran meanwhile, so each library's own processes are measured too
//! (`getrusage`: this process for ours, the reference's program and the helpers
//! it waited for), and their ratio printed.
//!
//! On a machine of two CPUs, where the kernel puts the switch decides much of
//! our figure: the switch needs most of a CPU, and so do the two pumps and two
//! applications of a transfer (ARCHITECTURE.md, "Bulk on a 2-core machine").
//! So each round also runs our transfer with the switch pinned alone on one CPU
//! and every thread of this process on another (unless
//! `VDESTACK_BENCH_SKIP_PINNED` is set, or this process may run on one CPU
//! only), against the same round's ceiling (pinned so, the ceiling's two ports
//! would share a CPU): what the code reaches where the switch has a CPU of its
//! own, apart from the placement of the moment. The library pins nothing; that
//! line is the bench's.

mod common;

use common::Switch;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vdestack::link::{Link, VdeLink};
use vdestack::{Stack, TcpListener, TcpStream};

const WRITE_SIZE: usize = 64 * 1024;

/// One transfer's figures.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// MB/s (1e6 bytes), from the first write to the last byte read.
    mb_per_s: f64,
    /// Seconds of busy CPU, machine-wide, per GB (1e9 bytes) moved.
    cpu_s_per_gb: f64,
    /// The same without the switch process's own CPU.
    cpu_s_per_gb_no_switch: f64,
    /// Frames sent by the sender and by the receiver per MiB moved (ours only).
    frames_per_mib: Option<(f64, f64)>,
    /// CPU seconds per GB of the library's own processes, which other work on
    /// the machine does not blur: for ours, this process (both pumps and the
    /// application threads); for the reference, its program and the helpers it
    /// waited for (its kernel TCP runs mostly in their threads), its set-up
    /// included.
    process_cpu_s_per_gb: f64,
}

/// CPU seconds (user and system) this process has used so far.
fn process_cpu_seconds() -> f64 {
    cpu_seconds_of(libc::RUSAGE_SELF)
}

/// CPU seconds (user and system) of the children this process waited for.
fn children_cpu_seconds() -> f64 {
    cpu_seconds_of(libc::RUSAGE_CHILDREN)
}

fn cpu_seconds_of(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes one rusage into the zeroed value it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Frames the stack's `vde0` has sent so far, from `ip -s link`.
fn frames_sent(stack: &Stack) -> u64 {
    let out = stack
        .cmd_output("/bin/ip -s link show vde0")
        .expect("ip -s link");
    let mut lines = out.lines();
    lines
        .find(|l| l.trim_start().starts_with("TX:"))
        .and_then(|_| lines.next())
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no TX packets in: {out}"))
}

/// Seconds of CPU time the machine has spent busy (not idle, not waiting for I/O)
/// since boot, from the first line of `/proc/stat`.
fn busy_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .expect("the cpu line of /proc/stat")
        .split_whitespace()
        .map(|v| v.parse().expect("a tick count"))
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().map(|&i| ticks[i]).sum();
    // SAFETY: sysconf has no preconditions.
    busy as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// `mib` MiB one way between two of our stacks.
fn ours(mib: usize, placement: Placement) -> Run {
    let sw = Switch::start("ours", 2);
    let _pinned = placement.apply(&sw);
    let vnl = format!("vde://{}", sw.path().display());
    let a = Stack::new(&vnl, None).unwrap();
    let b = Stack::new(&vnl, None).unwrap();
    a.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.123.0.1/24 dev vde0")
        .unwrap();
    b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.123.0.2/24 dev vde0")
        .unwrap();
    let listener = TcpListener::bind(&a, "0.0.0.0:5201").unwrap();
    let total = mib * 1024 * 1024;
    let receiver = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; WRITE_SIZE];
        let mut got = 0usize;
        let mut first = None;
        loop {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            first.get_or_insert_with(Instant::now);
            got += n;
        }
        (got, Instant::now())
    });
    let mut client = TcpStream::connect(&b, "10.123.0.1:5201").unwrap();
    let buf = vec![0x5au8; WRITE_SIZE];
    let frames = (frames_sent(&b), frames_sent(&a));
    let switch_cpu = sw.cpu_seconds();
    let process_cpu = process_cpu_seconds();
    let busy = busy_cpu_seconds();
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        client.write_all(&buf).unwrap();
        sent += buf.len();
    }
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let (got, end) = receiver.join().unwrap();
    let busy = busy_cpu_seconds() - busy;
    let process_cpu = process_cpu_seconds() - process_cpu;
    let switch_cpu = sw.cpu_seconds() - switch_cpu;
    let frames = (frames_sent(&b) - frames.0, frames_sent(&a) - frames.1);
    assert_eq!(got, total);
    let gb = total as f64 / 1e9;
    Run {
        mb_per_s: total as f64 / (end - start).as_secs_f64() / 1e6,
        cpu_s_per_gb: busy / gb,
        cpu_s_per_gb_no_switch: (busy - switch_cpu) / gb,
        frames_per_mib: Some((frames.0 as f64 / mib as f64, frames.1 as f64 / mib as f64)),
        process_cpu_s_per_gb: process_cpu / gb,
    }
}

/// Builds and runs benches/ref/ref_tput.c against the reference libvdestack.
fn reference(mib: usize) -> Result<Run, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ref/ref_tput.c");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ref_tput");
    let cc = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .args(["-lvdestack", "-lpthread"])
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if !cc.status.success() {
        return Err(format!(
            "cannot build the reference program (is libvdestack-dev installed?): {}",
            String::from_utf8_lossy(&cc.stderr).trim()
        ));
    }
    let sw = Switch::start("ref", 2);
    // Around the whole program: the few frames of its set-up and teardown are
    // nothing beside the transfer's.
    let switch_cpu = sw.cpu_seconds();
    let children_cpu = children_cpu_seconds();
    let run = Command::new(&out)
        .arg(sw.path())
        .arg(mib.to_string())
        .output()
        .map_err(|e| format!("ref_tput: {e}"))?;
    let children_cpu = children_cpu_seconds() - children_cpu;
    let switch_cpu = sw.cpu_seconds() - switch_cpu;
    let stdout = String::from_utf8_lossy(&run.stdout);
    if !run.status.success() {
        return Err(format!(
            "the reference failed (user namespaces unavailable?): {}",
            String::from_utf8_lossy(&run.stderr).trim()
        ));
    }
    let field = |name: &str| -> Result<f64, String> {
        stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in: {stdout}"))
    };
    let gb = field("bytes")? / 1e9;
    Ok(Run {
        mb_per_s: field("reference_mb_per_s")?,
        cpu_s_per_gb: field("busy_cpu_s")? / gb,
        cpu_s_per_gb_no_switch: (field("busy_cpu_s")? - switch_cpu) / gb,
        frames_per_mib: None,
        process_cpu_s_per_gb: children_cpu / gb,
    })
}

/// TCP payload in a full 1,514-byte frame (IPv4 and TCP headers without options).
const PAYLOAD_PER_FRAME: usize = 1460;

/// MB/s of TCP payload the switch could carry at most: for one second, one port
/// sends full-size frames as fast as the switch takes them and another counts those
/// it receives (the switch drops what the receiver cannot take in time). Also,
/// in CPU seconds per GB of payload received: the switch process's, what each
/// byte through it costs at the least; and this process's (the two ports'
/// threads, `sendmmsg` and `recvmmsg` of 32 frames), the least the two stacks'
/// own exchanges with the switch can cost.
fn switch_ceiling() -> (f64, f64, f64) {
    let sw = Switch::start("ceiling", 2);
    let vnl = format!("vde://{}", sw.path().display());
    let mut rx = VdeLink::open(&vnl, "ceiling-rx").expect("open the receiving port");
    let mut tx = VdeLink::open(&vnl, "ceiling-tx").expect("open the sending port");
    let rx_mac = [0x02, 0, 0x5e, 0, 0, 2];
    let tx_mac = [0x02, 0, 0x5e, 0, 0, 1];
    // The switch learns where the receiver is from a frame it sends.
    let mut hello = vec![0u8; 60];
    hello[..6].fill(0xff);
    hello[6..12].copy_from_slice(&rx_mac);
    hello[12..14].copy_from_slice(&[0x88, 0xb5]);
    rx.send(&hello).expect("announce the receiver");
    let mut frame = vec![0x5au8; 1514];
    frame[..6].copy_from_slice(&rx_mac);
    frame[6..12].copy_from_slice(&tx_mac);
    frame[12..14].copy_from_slice(&[0x88, 0xb5]);

    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let batch: Vec<&[u8]> = vec![&frame; 32];
            while !stop.load(Ordering::Relaxed) {
                match tx.send_batch(&batch) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        wait_for(tx.data_fd().expect("a data fd"), libc::POLLOUT)
                    }
                    Err(e) => panic!("sending to the switch: {e}"),
                }
            }
        })
    };
    let fd = rx.data_fd().expect("a data fd");
    let mut bufs = vec![vec![0u8; vdestack::link::MAX_FRAME]; 32];
    let mut lens = vec![0usize; 32];
    let mut frames = 0usize;
    let mut start = None;
    let (mut switch_cpu, mut process_cpu) = (0.0, 0.0);
    let window = Duration::from_secs(1);
    loop {
        match rx.recv_batch(&mut bufs, &mut lens) {
            Ok(n) => {
                let full = lens[..n].iter().filter(|&&len| len == 1514).count();
                if full > 0 && start.is_none() {
                    start = Some(Instant::now());
                    switch_cpu = sw.cpu_seconds();
                    process_cpu = process_cpu_seconds();
                } else {
                    frames += full;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_for(fd, libc::POLLIN),
            Err(e) => panic!("receiving from the switch: {e}"),
        }
        if start.is_some_and(|s| s.elapsed() >= window) {
            break;
        }
    }
    let secs = start.unwrap().elapsed().as_secs_f64();
    let switch_cpu = sw.cpu_seconds() - switch_cpu;
    let process_cpu = process_cpu_seconds() - process_cpu;
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let bytes = (frames * PAYLOAD_PER_FRAME) as f64;
    let gb = bytes / 1e9;
    (bytes / secs / 1e6, switch_cpu / gb, process_cpu / gb)
}

/// The design's floor, in MB/s of payload delivered over one second: the
/// pipeline every byte of ours crosses, with no TCP in it. An application thread
/// writes 64 KiB chunks into a socket pair; a "pump" thread reads them, cuts
/// them into full frames and sends them to the switch 32 at a time; a second
/// "pump" takes them from the switch 32 at a time and writes their payload into
/// another socket pair, which the receiving application (this thread) reads.
/// That is the switch's ceiling plus the two socket-pair copies and the threads
/// the design adds, but none of TCP's work and no ACK frames: no stack built on
/// this design can beat it on this machine, so it says how much of the ceiling
/// the design leaves reachable.
fn design_floor() -> f64 {
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    let sw = Switch::start("floor", 2);
    let vnl = format!("vde://{}", sw.path().display());
    let mut rx = VdeLink::open(&vnl, "floor-rx").expect("open the receiving port");
    let mut tx = VdeLink::open(&vnl, "floor-tx").expect("open the sending port");
    let rx_mac = [0x02, 0, 0x5e, 0, 0, 4];
    let tx_mac = [0x02, 0, 0x5e, 0, 0, 3];
    let mut hello = vec![0u8; 60];
    hello[..6].fill(0xff);
    hello[6..12].copy_from_slice(&rx_mac);
    hello[12..14].copy_from_slice(&[0x88, 0xb5]);
    rx.send(&hello).expect("announce the receiver");

    let (mut app_out, mut pump_in) = UnixStream::pair().expect("a socket pair");
    let (mut pump_out, mut app_in) = UnixStream::pair().expect("a socket pair");
    for s in [&app_out, &pump_in, &pump_out, &app_in] {
        s.set_nonblocking(true).expect("non-blocking");
    }
    let stop = Arc::new(AtomicBool::new(false));
    // Every loop below waits at most 100 ms at a time and checks `stop`.
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let chunk = vec![0x5au8; WRITE_SIZE];
            while !stop.load(Ordering::Relaxed) {
                match app_out.write(&chunk) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        wait_for(app_out.as_raw_fd(), libc::POLLOUT)
                    }
                    Err(e) => panic!("writing into the socket pair: {e}"),
                }
            }
        })
    };
    let tx_pump = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut bytes = vec![0u8; 32 * PAYLOAD_PER_FRAME];
            let mut frames = vec![vec![0u8; 14 + PAYLOAD_PER_FRAME]; 32];
            for f in &mut frames {
                f[..6].copy_from_slice(&rx_mac);
                f[6..12].copy_from_slice(&tx_mac);
                f[12..14].copy_from_slice(&[0x88, 0xb5]);
            }
            while !stop.load(Ordering::Relaxed) {
                let n = match pump_in.read(&mut bytes) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        wait_for(pump_in.as_raw_fd(), libc::POLLIN);
                        continue;
                    }
                    Err(e) => panic!("reading the socket pair: {e}"),
                };
                let mut batch: Vec<&[u8]> = Vec::with_capacity(32);
                for (frame, payload) in frames.iter_mut().zip(bytes[..n].chunks(PAYLOAD_PER_FRAME))
                {
                    frame[14..14 + payload.len()].copy_from_slice(payload);
                    batch.push(&frame[..14 + payload.len()]);
                }
                let mut sent = 0;
                while sent < batch.len() && !stop.load(Ordering::Relaxed) {
                    match tx.send_batch(&batch[sent..]) {
                        Ok(k) => sent += k,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            wait_for(tx.data_fd().expect("a data fd"), libc::POLLOUT)
                        }
                        Err(e) => panic!("sending to the switch: {e}"),
                    }
                }
            }
        })
    };
    let rx_pump = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let fd = rx.data_fd().expect("a data fd");
            let mut bufs = vec![vec![0u8; vdestack::link::MAX_FRAME]; 32];
            let mut lens = vec![0usize; 32];
            let mut out = Vec::with_capacity(32 * PAYLOAD_PER_FRAME);
            while !stop.load(Ordering::Relaxed) {
                match rx.recv_batch(&mut bufs, &mut lens) {
                    Ok(n) => {
                        out.clear();
                        for (buf, &len) in bufs.iter().zip(&lens[..n]) {
                            if len > 14 && buf[12..14] == [0x88, 0xb5] {
                                out.extend_from_slice(&buf[14..len]);
                            }
                        }
                        let mut done = 0;
                        while done < out.len() && !stop.load(Ordering::Relaxed) {
                            match pump_out.write(&out[done..]) {
                                Ok(k) => done += k,
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                    wait_for(pump_out.as_raw_fd(), libc::POLLOUT)
                                }
                                Err(e) => panic!("writing into the socket pair: {e}"),
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        wait_for(fd, libc::POLLIN)
                    }
                    Err(e) => panic!("receiving from the switch: {e}"),
                }
            }
        })
    };
    let mut buf = vec![0u8; WRITE_SIZE];
    let mut bytes = 0usize;
    let mut start = None;
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        match app_in.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if start.is_none() {
                    start = Some(Instant::now());
                } else {
                    bytes += n;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                wait_for(app_in.as_raw_fd(), libc::POLLIN)
            }
            Err(e) => panic!("reading the socket pair: {e}"),
        }
        if start.is_some_and(|s| s.elapsed() >= Duration::from_secs(1)) {
            break;
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    for t in [writer, tx_pump, rx_pump] {
        t.join().expect("a floor thread");
    }
    assert!(
        start.is_some(),
        "no payload crossed the design floor's pipeline"
    );
    bytes as f64 / secs / 1e6
}

/// Waits up to 100 ms for `events` on `fd`.
fn wait_for(fd: std::os::fd::RawFd, events: libc::c_short) {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, 100) };
}

/// Where the threads of a measurement run.
#[derive(Clone, Copy)]
enum Placement {
    /// Wherever the kernel puts them, as for every user of the library.
    Kernel,
    /// The switch alone on CPU `switch`, every thread of this process on CPU
    /// `ours`.
    SwitchAlone { switch: usize, ours: usize },
}

impl Placement {
    /// The switch on one CPU and this process on another, if this process
    /// may run on two and the pinned rounds are not skipped.
    fn switch_alone() -> Option<Placement> {
        if std::env::var_os("VDESTACK_BENCH_SKIP_PINNED").is_some() {
            return None;
        }
        match allowed_cpus()[..] {
            [switch, ours, ..] => Some(Placement::SwitchAlone { switch, ours }),
            _ => None,
        }
    }

    /// Pins `sw` and this process's threads (those to come too: they inherit
    /// the mask of the thread that starts them) as this placement says, until
    /// the value returned is dropped.
    fn apply(self, sw: &Switch) -> Option<Pinned> {
        let Placement::SwitchAlone { switch, ours } = self else {
            return None;
        };
        let before = allowed_cpus();
        set_affinity(sw.pid() as libc::pid_t, &[switch]).expect("pin the switch");
        for tid in threads_of_this_process() {
            // A thread that ended meanwhile (a pump thread whose wait ran out)
            // needs nothing.
            let _ = set_affinity(tid, &[ours]);
        }
        Some(Pinned { before })
    }
}

/// This process's threads confined to one CPU; dropped, they may run where
/// they could before.
struct Pinned {
    before: Vec<usize>,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        for tid in threads_of_this_process() {
            let _ = set_affinity(tid, &self.before);
        }
    }
}

/// The CPUs this thread may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity writes at
    // most the size given into it.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(
            libc::sched_getaffinity(0, size, &mut set),
            0,
            "sched_getaffinity"
        );
        set
    };
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: the index is below CPU_SETSIZE, the set's size.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Lets thread (or process) `tid` run on `cpus` only.
fn set_affinity(tid: libc::pid_t, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET is given indices
    // below CPU_SETSIZE (those allowed_cpus found), and sched_setaffinity reads
    // the size given.
    let done = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The thread ids of this process.
fn threads_of_this_process() -> Vec<libc::pid_t> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need.
    let mib: usize = std::env::var("VDESTACK_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let runs: usize = std::env::var("VDESTACK_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!(
        "one-way TCP, {mib} MiB in {} KiB writes, two stacks on one vde_switch, median of {runs}",
        WRITE_SIZE / 1024
    );
    let mut ours_runs = Vec::new();
    let mut ref_runs = Vec::new();
    let mut ceiling_runs = Vec::new();
    let mut ceiling_cpu = Vec::new();
    let mut floor_runs = Vec::new();
    let mut ports_cpu = Vec::new();
    let mut ref_error = None;
    let switch_alone = Placement::switch_alone();
    let mut pinned_runs = Vec::new();
    // Interleaved, so that all see the same machine conditions.
    for _ in 0..runs {
        let (ceiling, cpu, ports) = switch_ceiling();
        ceiling_runs.push(ceiling);
        ceiling_cpu.push(cpu);
        ports_cpu.push(ports);
        floor_runs.push(design_floor());
        ours_runs.push(ours(mib, Placement::Kernel));
        if let Some(placement) = switch_alone {
            pinned_runs.push(ours(mib, placement).mb_per_s);
        }
        if std::env::var_os("VDESTACK_BENCH_SKIP_REFERENCE").is_some() {
            ref_error = Some("skipped (VDESTACK_BENCH_SKIP_REFERENCE)".into());
            continue;
        }
        match reference(mib) {
            Ok(v) => ref_runs.push(v),
            Err(e) => ref_error = Some(e),
        }
    }
    let ours = report("vdestack", &ours_runs);
    let ceiling = median(ceiling_runs.clone());
    println!(
        "switch     : {ceiling:8.1} MB/s  (runs: {ceiling_runs:.1?}) ceiling: full frames, no TCP"
    );
    println!(
        "{:<11}  CPU s per GB there: the switch's {:.2} (runs: {ceiling_cpu:.2?}), \
         its two ports' {:.2} (runs: {ports_cpu:.2?})",
        "",
        median(ceiling_cpu.clone()),
        median(ports_cpu.clone())
    );
    let floor = median(floor_runs.clone());
    println!(
        "design     : {floor:8.1} MB/s  (runs: {floor_runs:.1?}) floor: socket pair, pump, \
         switch, pump, socket pair, no TCP"
    );
    println!("design / ceiling   : {:8.2}", floor / ceiling);
    println!("vdestack / ceiling : {:8.2}", ours.mb_per_s / ceiling);
    // The machine's speed drifts between runs (other guests on the host), and
    // the two medians may come from different moments; each transfer against
    // the ceiling measured seconds before it, in the same round, cancels that.
    let paired: Vec<f64> = ours_runs
        .iter()
        .zip(&ceiling_runs)
        .map(|(run, ceiling)| run.mb_per_s / ceiling)
        .collect();
    println!(
        "{:<19}: {:8.2}  (each run / its round's ceiling: {paired:.2?})",
        "  paired, median",
        median(paired.clone())
    );
    println!("vdestack / design  : {:8.2}", ours.mb_per_s / floor);
    if let Some(Placement::SwitchAlone { switch, ours }) = switch_alone {
        // Against the same ceilings: pinned, its two ports would share a CPU.
        let transfer = median(pinned_runs.clone());
        let paired: Vec<f64> = pinned_runs
            .iter()
            .zip(&ceiling_runs)
            .map(|(run, ceiling)| run / ceiling)
            .collect();
        println!(
            "pinned     : {transfer:8.1} MB/s  (runs: {pinned_runs:.1?}) vdestack with the switch \
             alone on CPU {switch}, this process on CPU {ours}"
        );
        println!("pinned / ceiling   : {:8.2}", transfer / ceiling);
        println!(
            "{:<19}: {:8.2}  (each run / its round's ceiling: {paired:.2?})",
            "  paired, median",
            median(paired.clone())
        );
    }
    if ref_runs.is_empty() {
        println!(
            "reference  : not measured: {}",
            ref_error.unwrap_or_default()
        );
    } else {
        let reference = report("reference", &ref_runs);
        println!("reference / ceiling: {:8.2}", reference.mb_per_s / ceiling);
        println!("ratio      : {:8.2}x", ours.mb_per_s / reference.mb_per_s);
        println!(
            "CPU ratio  : {:8.2}x less busy CPU per GB than the reference",
            reference.cpu_s_per_gb / ours.cpu_s_per_gb
        );
        println!(
            "CPU ratio  : {:8.2} of the reference's busy CPU per GB without the switch's",
            ours.cpu_s_per_gb_no_switch / reference.cpu_s_per_gb_no_switch
        );
        println!(
            "CPU ratio  : {:8.2} of the reference's CPU per GB in its own processes",
            ours.process_cpu_s_per_gb / reference.process_cpu_s_per_gb
        );
    }
}

/// Prints the medians of `runs` under `name`, and returns them.
fn report(name: &str, runs: &[Run]) -> Run {
    let speeds: Vec<f64> = runs.iter().map(|r| r.mb_per_s).collect();
    let cpu: Vec<f64> = runs.iter().map(|r| r.cpu_s_per_gb).collect();
    let cpu_no_switch: Vec<f64> = runs.iter().map(|r| r.cpu_s_per_gb_no_switch).collect();
    let process: Vec<f64> = runs.iter().map(|r| r.process_cpu_s_per_gb).collect();
    let median_run = Run {
        mb_per_s: median(speeds.clone()),
        cpu_s_per_gb: median(cpu.clone()),
        cpu_s_per_gb_no_switch: median(cpu_no_switch.clone()),
        frames_per_mib: None,
        process_cpu_s_per_gb: median(process.clone()),
    };
    println!(
        "{name:<11}: {:8.1} MB/s  (runs: {speeds:.1?}), {:.2} busy CPU s per GB (runs: {cpu:.2?}), \
         {:.2} without the switch's (runs: {cpu_no_switch:.2?})",
        median_run.mb_per_s, median_run.cpu_s_per_gb, median_run.cpu_s_per_gb_no_switch
    );
    let frames: Vec<(f64, f64)> = runs.iter().filter_map(|r| r.frames_per_mib).collect();
    if !frames.is_empty() {
        let data = median(frames.iter().map(|f| f.0).collect());
        let acks = median(frames.iter().map(|f| f.1).collect());
        println!(
            "{:<11}  frames per MiB: {data:.0} from the sender, {acks:.0} from the receiver",
            ""
        );
    }
    println!(
        "{:<11}  {:.2} CPU s per GB in its own processes (runs: {process:.2?})",
        "", median_run.process_cpu_s_per_gb
    );
    median_run
}
