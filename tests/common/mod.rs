//! Test fixtures: a `vde_switch` in a temporary directory, removed afterwards.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
pub use vdestack::Backend;

/// Held (shared) while a fixture starts processes: a `vde_switch`, or a
/// kernel stack's helper, which is forked without an exec and holds a copy of
/// every descriptor of the test process until it has closed those it does not
/// keep. A test that needs a socket it closes to be gone at once (its port
/// free again, as on Linux once no process holds the socket) holds it
/// exclusively meanwhile ([`no_new_processes`]), since a copy made by another
/// test's fixture at that moment would keep the socket open.
static STARTING_PROCESSES: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Keeps the fixtures of the other tests of this process from starting
/// processes (and so from copying this test's descriptors) while held.
pub fn no_new_processes() -> std::sync::RwLockWriteGuard<'static, ()> {
    STARTING_PROCESSES
        .write()
        .unwrap_or_else(|e| e.into_inner())
}

/// Runs `start`, which starts a process (a spawn, or a stack whose kernel
/// backend forks its helper), unless a test holds [`no_new_processes`]. When
/// it returns, the copies of this process's descriptors it made are gone
/// (closed at the exec, or by the helper before it said ready), except those
/// of descriptors that are not close-on-exec, which a spawned program keeps:
/// a test that makes such a socket holds [`no_new_processes`] from before.
fn starting_processes<T>(start: impl FnOnce() -> T) -> T {
    let _starting = STARTING_PROCESSES.read().unwrap_or_else(|e| e.into_inner());
    start()
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "vdestack-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `vde_switch` running in the foreground of a child process. It reads commands
/// on its stdin, which we keep open; dropping the fixture kills it and removes its
/// directory.
pub struct Switch {
    child: Child,
    dir: TempDir,
}

impl Switch {
    pub fn start() -> Switch {
        Switch::with_ports(32)
    }

    /// A switch with room for `ports` plugs (its default is 32).
    pub fn with_ports(ports: usize) -> Switch {
        let dir = TempDir::new("sw");
        let sock = dir.path().join("sw");
        let child = starting_processes(|| {
            Command::new("vde_switch")
                .arg("-s")
                .arg(&sock)
                .arg("-n")
                .arg(ports.max(32).to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        })
        .expect("vde_switch (Debian package vde2) must be installed");
        let ctl = sock.join("ctl");
        let deadline = Instant::now() + Duration::from_secs(10);
        // Readiness of an external process: its control socket listening (the file
        // appears at bind(2), before listen(2), and a plug connecting in between is
        // refused). Read from /proc rather than by connecting: a test connection
        // would be one more client the switch has to notice going.
        while !unix_socket_listening(&ctl) {
            assert!(Instant::now() < deadline, "vde_switch did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        Switch { child, dir }
    }

    /// The locator of this switch (`vde:///path`).
    pub fn vnl(&self) -> String {
        format!("vde://{}", self.dir.path().join("sw").display())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the switch now (the fixture still cleans up on drop).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a unix socket bound to `path` is listening (`/proc/net/unix`: flags
/// `__SO_ACCEPTCON`).
fn unix_socket_listening(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return path.exists();
    };
    let path = path.to_string_lossy();
    table.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() == 8 && fields[7] == path && fields[3] == "00010000"
    })
}

/// Starts `command` (a shell driven one command at a time) with its stdin and
/// stdout piped: the child, its stdin, and the lines its stdout gives, as they
/// come, read on a thread of their own (a test waits for one with a bound,
/// `recv_timeout`).
pub fn spawn_shell(
    command: &mut Command,
) -> (
    Child,
    std::process::ChildStdin,
    std::sync::mpsc::Receiver<String>,
) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start a shell");
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, stdin, lines)
}

/// The errno of an error a test expects to be an OS error.
pub fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error()
        .unwrap_or_else(|| panic!("not an OS error: {e}"))
}

/// The number of open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Brings `ifname` of `stack` up with the address `cidr` (e.g. `10.0.0.1/24`).
pub fn configure(stack: &vdestack::Stack, ifname: &str, cidr: &str) {
    stack
        .cmd(&format!(
            "/bin/ip link set {ifname} up; /bin/ip addr add {cidr} dev {ifname}"
        ))
        .unwrap_or_else(|e| panic!("configuring {ifname} with {cidr}: {e}"));
}

/// Waits until no IPv6 address of `stack` is tentative: duplicate address
/// detection takes a second after an address is added or a link comes up, as
/// on Linux, and a tentative address is no source. Polls `ip -6 addr` for at
/// most 10 s.
#[allow(dead_code)]
pub fn wait_for_dad(stack: &vdestack::Stack) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = stack.cmd_output("/bin/ip -6 addr").expect("ip -6 addr");
        if !shown.contains("tentative") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still tentative after 10 s: {shown}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The kind of wire between two test stacks.
#[derive(Debug, Clone, Copy)]
pub enum Wire {
    /// Both stacks plugged into a `vde_switch`.
    Switch,
    /// A `ptp://` point-to-point link.
    Ptp,
}

/// Two stacks on one wire, `a` with 10.0.0.1/24 and `b` with 10.0.0.2/24, links up.
pub struct Net {
    pub a: vdestack::Stack,
    pub b: vdestack::Stack,
    _switch: Option<Switch>,
    _dir: Option<TempDir>,
}

impl Net {
    pub fn new(wire: Wire) -> Net {
        Net::with_backends(wire, Backend::Userspace, Backend::Userspace)
    }

    /// Two stacks as [`Net::new`] makes them, `a` on backend `ba` and `b` on `bb`.
    pub fn with_backends(wire: Wire, ba: Backend, bb: Backend) -> Net {
        let (vnl, switch, dir) = match wire {
            Wire::Switch => {
                let switch = Switch::start();
                (switch.vnl(), Some(switch), None)
            }
            Wire::Ptp => {
                let dir = TempDir::new("ptp");
                let vnl = format!("ptp://{}", dir.path().join("link").display());
                (vnl, None, Some(dir))
            }
        };
        let stack = |backend| {
            starting_processes(|| {
                vdestack::Stack::builder()
                    .vnl(&vnl)
                    .backend(backend)
                    .build()
            })
        };
        let a = stack(ba).expect("stack a");
        let b = stack(bb).expect("stack b");
        a.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")
            .expect("configure a");
        b.cmd("/sbin/ip link set vde0 up; /usr/bin/ip addr add 10.0.0.2/24 dev vde0")
            .expect("configure b");
        Net {
            a,
            b,
            _switch: switch,
            _dir: dir,
        }
    }

    /// Adds fd00::1/64 to `a` and fd00::2/64 to `b` (no duplicate address
    /// detection, so that they are usable at once).
    pub fn add_ipv6(&self) {
        self.a
            .cmd("/bin/ip -6 addr add fd00::1/64 dev vde0 nodad")
            .expect("IPv6 on a");
        self.b
            .cmd("/bin/ip -6 addr add fd00::2/64 dev vde0 nodad")
            .expect("IPv6 on b");
    }
}

/// The path of a switch's socket directory as a bare path (for tools that take
/// `path1:path2`, where a `vde://` locator's colon would split wrongly).
pub fn switch_path(switch: &Switch) -> PathBuf {
    switch.dir().join("sw")
}

/// A `wirefilter` (Debian package vde2) joining two switches, applying faults to the
/// frames crossing it. It runs in the foreground with its management console on a
/// stdin we keep open; dropping the fixture kills it.
pub struct Wirefilter {
    child: Child,
    _dir: TempDir,
}

impl Wirefilter {
    /// Connects `left` and `right` through a wirefilter started with `args` (e.g.
    /// `["-l", "1"]`), and waits until both of its plugs are open.
    pub fn start(left: &Switch, right: &Switch, args: &[&str]) -> Wirefilter {
        let dir = TempDir::new("wf");
        let mgmt = dir.path().join("mgmt");
        let (l, r) = (switch_path(left), switch_path(right));
        for p in [&l, &r, &mgmt] {
            assert!(
                !p.to_string_lossy().contains(':'),
                "wirefilter -v splits on ':': {}",
                p.display()
            );
        }
        let mut child = starting_processes(|| {
            Command::new("wirefilter")
                .arg("-v")
                .arg(format!("{}:{}", l.display(), r.display()))
                .arg("-M")
                .arg(&mgmt)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        })
        .expect("wirefilter (Debian package vde2) must be installed");
        // wirefilter binds its management socket after opening both plugs: the
        // socket appearing means the wire is in place.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !mgmt.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("wirefilter {args:?} exited at start: {status}");
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("wirefilter {args:?} did not start");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Wirefilter { child, _dir: dir }
    }
}

impl Drop for Wirefilter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shell script run in its own user, network and PID namespaces
/// (`unshare -Urnp --fork --kill-child`): killing it (on drop) kills everything it
/// started there. `None` where unprivileged user namespaces are not available.
pub struct Namespace {
    child: Child,
}

impl Namespace {
    /// Whether `unshare -Urnp` works here.
    pub fn available() -> bool {
        starting_processes(|| {
            Command::new("unshare")
                .args(["-Urnp", "--fork", "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
        })
        .is_ok_and(|s| s.success())
    }

    /// Runs `script` with `sh -c` inside fresh namespaces; its stdout is piped.
    pub fn run(script: &str) -> std::io::Result<Namespace> {
        let child = starting_processes(|| {
            Command::new("unshare")
                .args(["-Urnp", "--fork", "--kill-child", "sh", "-c", script])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        })?;
        Ok(Namespace { child })
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether stacks of the kernel backend can be made here. When they cannot (no
/// user namespaces, or vdestack built without the feature `kernel-ns`), says so on
/// stderr, past the test harness's capture, naming the skipped test and the cause.
pub fn kernel_available(test: &str) -> bool {
    match starting_processes(|| vdestack::Stack::builder().backend(Backend::Kernel).build()) {
        Ok(_) => true,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test} on the kernel backend: {e}"
            );
            false
        }
    }
}

/// One exchange over a new connection: `ping` from the client, `pong` back
/// from the accepted end; `what` names the connection in a failure.
pub fn ping_pong(client: &mut vdestack::TcpStream, server: &mut vdestack::TcpStream, what: &str) {
    use std::io::Read;
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    server.write_all(b"pong").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong", "{what}");
}

/// A stack of `backend` on `vnl` with interface `vde0`.
pub fn stack_on(backend: Backend, vnl: &str) -> vdestack::Stack {
    starting_processes(|| vdestack::Stack::builder().vnl(vnl).backend(backend).build())
        .unwrap_or_else(|e| panic!("a {backend:?} stack on {vnl:?}: {e}"))
}

/// The processes whose parent is this process (their pids), from /proc.
pub fn child_processes() -> Vec<u32> {
    let me = std::process::id();
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) {
            children.push(pid);
        }
    }
    children
}

/// Each scenario once per backend: `userspace::NAME` and `kernel::NAME`. The kernel
/// run is skipped, with a message on stderr, where kernel stacks cannot be made.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident: $scenario:expr;)*) => {
        mod userspace {
            use super::*;
            $(#[test] fn $name() { ($scenario)(Backend::Userspace) })*
        }
        mod kernel {
            use super::*;
            $(#[test] fn $name() {
                if common::kernel_available(concat!(module_path!(), "::", stringify!($name))) {
                    ($scenario)(Backend::Kernel)
                }
            })*
        }
    };
}

/// A peer namespace on `switch`: a tap `vt0` at 10.0.0.1/24 serving DHCP with
/// busybox udhcpd (addresses from 10.0.0.100, router 10.0.0.1, name servers
/// 10.0.0.53 and 10.0.0.54, leases of `lease` seconds) and a TCP server on
/// port 7000 that says `hello`. `None` (said on stderr) where no namespace can
/// be made.
pub fn udhcpd_peer(test: &str, switch: &Switch, dir: &TempDir, lease: u32) -> Option<Namespace> {
    if !Namespace::available() {
        eprintln!("SKIPPED {test}: unprivileged user namespaces are not available");
        return None;
    }
    let conf = dir.path().join("udhcpd.conf");
    let leases = dir.path().join("udhcpd.leases");
    std::fs::write(&leases, b"").unwrap();
    std::fs::write(
        &conf,
        format!(
            "start 10.0.0.100\nend 10.0.0.110\ninterface vt0\nlease_file {}\n\
             pidfile {}\nmin_lease 2\noption subnet 255.255.255.0\n\
             option router 10.0.0.1\noption dns 10.0.0.53 10.0.0.54\noption lease {lease}\n",
            leases.display(),
            dir.path().join("udhcpd.pid").display()
        ),
    )
    .unwrap();
    let script = format!(
        "vde_plug {vnl} tap://vt0 & \
         i=0; until ip link set vt0 up 2>/dev/null; do \
           i=$((i+1)); [ $i -gt 500 ] && {{ echo no tap >&2; exit 3; }}; sleep 0.01; done; \
         ip link set lo up && ip addr add 10.0.0.1/24 dev vt0 || exit 5; \
         busybox udhcpd -f {conf} & \
         socat TCP-LISTEN:7000,bind=10.0.0.1,reuseaddr,fork SYSTEM:'echo hello' & \
         i=0; until [ -n \"$(ss -Hltn 'sport = :7000' 2>/dev/null)\" ]; do \
           i=$((i+1)); [ $i -gt 500 ] && exit 4; sleep 0.01; done; \
         echo ready; wait",
        vnl = switch.vnl(),
        conf = conf.display()
    );
    Some(started(Namespace::run(&script).expect("unshare"), "udhcpd"))
}

/// `peer` once its script printed `ready`, within 20 s; a panic with its
/// standard error otherwise (`what` names it).
pub fn started(mut peer: Namespace, what: &str) -> Namespace {
    let stdout = peer.child().stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) if line == "ready" => peer,
        other => {
            let mut err = String::new();
            let _ = peer.child().kill();
            if let Some(mut stderr) = peer.child().stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            }
            panic!("the {what} peer did not start ({other:?}): {err}");
        }
    }
}

/// A name server for [`local_resolver`]: `example.test` has A 10.9.9.9,
/// `host.test` A 10.0.2.2 (slirp's address for the host's loopback), neither
/// has AAAA, every other name is NXDOMAIN. Answers written byte by byte
/// (RFC 1035).
const LOCAL_NAME_SERVER: &str = r#"
import socket
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d.bind(('127.0.0.1', 53))
names = {b'\x07example\x04test\x00': b'\x0a\x09\x09\x09', b'\x04host\x04test\x00': b'\x0a\x00\x02\x02'}
while True:
    q, peer = d.recvfrom(512)
    i = 12
    while q[i]:
        i += 1 + q[i]
    name, qtype, end = q[12:i + 1].lower(), q[i + 1:i + 3], i + 5
    if name in names and qtype == b'\x00\x01':
        reply = q[:2] + b'\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00' + q[12:end] \
            + b'\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04' + names[name]
    elif name in names:
        reply = q[:2] + b'\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00' + q[12:end]
    else:
        reply = q[:2] + b'\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00' + q[12:end]
    d.sendto(reply, peer)
"#;

/// `program` run inside fresh user, network, mount and PID namespaces
/// (`unshare -Urnmp --fork --kill-child`) whose only resolver is local: `lo`
/// up, a `resolv.conf` saying `nameserver 127.0.0.1` bind-mounted over
/// `/etc/resolv.conf`, and [`LOCAL_NAME_SERVER`] on 127.0.0.1:53. slirp
/// forwards the queries sent to 10.0.2.3 to the host's resolver from
/// `/etc/resolv.conf`: here they reach that server and nothing leaves the
/// machine. `None` (said on stderr) where such namespaces cannot be made.
pub fn local_resolver(test: &str, dir: &TempDir, program: &[&str]) -> Option<Command> {
    let ok = starting_processes(|| {
        Command::new("unshare")
            .args(["-Urnmp", "--fork", "true"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
    })
    .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED {test}: no user, network and mount namespaces here (unshare -Urnm)");
        return None;
    }
    let resolv = dir.path().join("resolv.conf");
    let server = dir.path().join("name_server.py");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    std::fs::write(&server, LOCAL_NAME_SERVER).unwrap();
    let script = format!(
        "ip link set lo up && mount --bind {resolv} /etc/resolv.conf || exit 5; \
         python3 {server} & \
         i=0; until [ -n \"$(ss -Hlun 'sport = :53' 2>/dev/null)\" ]; do \
           i=$((i+1)); [ $i -gt 500 ] && {{ echo no name server >&2; exit 4; }}; sleep 0.01; done; \
         \"$@\"",
        resolv = resolv.display(),
        server = server.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-Urnmp",
        "--fork",
        "--kill-child",
        "sh",
        "-c",
        &script,
        "sh",
    ])
    .args(program)
    .stdin(Stdio::null());
    Some(cmd)
}
