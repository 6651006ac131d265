//! Interoperation with the Linux kernel's own TCP/IP stack.
//!
//! Each test starts a `vde_switch` in a temporary directory, plugs a userspace
//! stack into it (`vde0`: 10.0.0.1/24, 2001:db8::1/64), and runs a shell in fresh
//! user, network and PID namespaces (`unshare -Urnp`) where `vde_plug` joins the
//! same switch to a kernel tap device (`tap0`: 10.0.0.2/24, 2001:db8::2/64). The
//! two then ping each other (our side with a ping socket), TCP and UDP go both
//! ways over IPv4, IPv6 and IPv6 link-local addresses, with the bytes checked,
//! and the kernel follows a change of our hardware address. Nothing leaves the
//! machine: the namespace has no other link.
//!
//! The shell is driven one command at a time ([`KernelNs::sh`]), so a new
//! protocol needs only a new test that runs its own `socat` there.
//!
//! Where user namespaces are unavailable, or a tool is missing (`vde_plug` with its
//! tap plugin, `socat`, `ping`: Debian packages vdeplug, socat, iputils-ping), each
//! test prints why and passes without running.

mod common;

use common::{wait_for_dad, Namespace, Switch, TempDir};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use vdestack::{PingSocket, Stack, TcpListener, TcpStream, UdpSocket};

/// The longest any one command in the namespace may take; generous, since it only
/// bounds a failure.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// A shell inside fresh user, network and PID namespaces, with a kernel tap `tap0`
/// plugged into a switch by `vde_plug`. Dropping it kills the shell, and with it
/// (`--kill-child`, PID namespace) everything started there.
struct KernelNs {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// The kernel's link-local address on `tap0`.
    link_local: Ipv6Addr,
}

/// Why a test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if !Namespace::available() {
        return Some("user namespaces are unavailable (`unshare -Urnp` fails)".into());
    }
    for tool in ["vde_plug", "socat", "ping", "ip"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

/// Skips the calling test, saying why, where it cannot run.
macro_rules! require_namespaces {
    () => {
        if let Some(why) = unavailable() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

impl KernelNs {
    /// Starts the namespace and plugs its `tap0` into `switch`, configured and up.
    fn start(switch: &Switch) -> KernelNs {
        let (child, stdin, lines) = common::spawn_shell(
            Command::new("unshare")
                .args(["-Urnp", "--fork", "--kill-child", "sh", "-s"])
                .stderr(Stdio::null()),
        );
        let mut ns = KernelNs {
            child,
            stdin,
            lines,
            link_local: Ipv6Addr::UNSPECIFIED,
        };
        let sw = common::switch_path(switch);
        // DAD off: addresses are usable at once (the test waits for nothing).
        // vde_plug creates the tap itself; its appearing is the only readiness
        // signal, polled a bounded number of times.
        let setup = format!(
            "exec 2>&1\n\
             sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0\n\
             vde_plug vde://{sw} tap://tap0 </dev/null >/dev/null 2>&1 &\n\
             n=0; while ! ip link show tap0 >/dev/null 2>&1 && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done\n\
             ip link set lo up && ip addr add 10.0.0.2/24 dev tap0 && \
             ip addr add 2001:db8::2/64 dev tap0 nodad && ip link set tap0 up",
            sw = sw.display()
        );
        let (status, out) = ns.sh(&setup);
        assert_eq!(status, 0, "setting up the namespace: {out}");
        let (_, out) = ns.sh("ip -6 -o addr show dev tap0 scope link");
        ns.link_local = out
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|cidr| cidr.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the kernel's link-local address: {out}"));
        ns
    }

    /// Runs `script` in the namespace's shell; returns its exit status and output
    /// (stdout and stderr).
    fn sh(&mut self, script: &str) -> (i32, String) {
        writeln!(self.stdin, "{script}\necho \"@@status $?\"").expect("write to the shell");
        self.stdin.flush().expect("flush");
        let mut out = String::new();
        loop {
            let line = self
                .lines
                .recv_timeout(COMMAND_LIMIT)
                .unwrap_or_else(|e| panic!("the shell ({e}) during {script:?}; so far: {out}"));
            if let Some(status) = line.strip_prefix("@@status ") {
                return (status.trim().parse().expect("a status"), out);
            }
            out.push_str(&line);
            out.push('\n');
        }
    }

    /// Starts `socat` echoing on TCP `port` (IPv6 socket with IPV6_V6ONLY off, as
    /// Linux defaults: it takes IPv4 too), and waits until it listens. The echo is
    /// `cat` in its own process: socat's `PIPE` echoes through a pipe that socat
    /// both fills and drains, and a write of 8 KiB into a pipe with only 4 KiB free
    /// blocks it for good once the peer sends faster than it echoes.
    fn echo_listener(&mut self, port: u16) {
        let (status, out) = self.sh(&format!(
            "socat TCP6-LISTEN:{port},fork,reuseaddr EXEC:cat </dev/null >/dev/null 2>&1 &\n\
             n=0; while ! ss -Hltn \"sport = :{port}\" | grep -q . && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done\n\
             ss -Hltn \"sport = :{port}\" | grep -q ."
        ));
        assert_eq!(status, 0, "socat did not start listening: {out}");
    }
}

impl Drop for KernelNs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our stack on `switch`, with `lo` up and `vde0` at 10.0.0.1/24 and 2001:db8::1/64.
fn our_stack(switch: &Switch) -> Stack {
    let stack = Stack::new(&switch.vnl(), None).expect("stack");
    stack
        .cmd(
            "/bin/ip link set lo up; /bin/ip link set vde0 up; \
             /bin/ip addr add 10.0.0.1/24 dev vde0; /bin/ip addr add 2001:db8::1/64 dev vde0",
        )
        .expect("configure the stack");
    wait_for_dad(&stack);
    stack
}

/// Our link-local address on `vde0`.
fn our_link_local(stack: &Stack) -> Ipv6Addr {
    let out = stack.cmd_output("/bin/ip -6 addr show dev vde0").unwrap();
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .find(|w| w.starts_with("fe80:"))
        .and_then(|cidr| cidr.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no link-local address: {out}"))
}

/// A test stream: bytes whose value depends on their offset.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn the_kernel_pings_our_stack() {
    require_namespaces!();
    let switch = Switch::start();
    let stack = our_stack(&switch);
    let mut ns = KernelNs::start(&switch);
    let ours_ll = our_link_local(&stack);
    for target in [
        "10.0.0.1".to_string(),
        "2001:db8::1".to_string(),
        format!("{ours_ll}%tap0"),
    ] {
        let (status, out) = ns.sh(&format!("ping -c 2 -i 0.2 -W 10 {target}"));
        assert_eq!(status, 0, "ping {target}: {out}");
        assert!(out.contains("2 received"), "ping {target}: {out}");
    }
}

#[test]
fn our_stack_connects_to_the_kernel() {
    require_namespaces!();
    let switch = Switch::start();
    let stack = our_stack(&switch);
    let mut ns = KernelNs::start(&switch);
    ns.echo_listener(7);
    let data = pattern(256 * 1024);
    let ll = SocketAddr::V6(SocketAddrV6::new(ns.link_local, 7, 0, 2));
    for to in [
        "10.0.0.2:7".parse().unwrap(),
        "[2001:db8::2]:7".parse().unwrap(),
        ll,
        "[::ffff:10.0.0.2]:7".parse().unwrap(),
    ] {
        let conn = TcpStream::connect(&stack, to).unwrap_or_else(|e| panic!("connect {to}: {e}"));
        let mut reader = conn.try_clone().unwrap();
        let echoed = thread::spawn(move || {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).map(|_| got)
        });
        (&conn).write_all(&data).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let got = echoed.join().unwrap().unwrap();
        assert!(
            got == data,
            "{to}: {} of {} bytes echoed intact",
            got.len(),
            data.len()
        );
    }
}

#[test]
fn the_kernel_connects_to_our_listener() {
    require_namespaces!();
    let switch = Switch::start();
    let stack = our_stack(&switch);
    let dir = TempDir::new("kernel-tcp");
    let data = pattern(256 * 1024);
    let file = dir.path().join("data");
    std::fs::write(&file, &data).unwrap();
    let listener = TcpListener::bind(&stack, "[::]:8").unwrap();
    let mut ns = KernelNs::start(&switch);
    let ours_ll = our_link_local(&stack);
    let targets = [
        "TCP4:10.0.0.1:8".to_string(),
        "TCP6:[2001:db8::1]:8".to_string(),
        format!("TCP6:[{ours_ll}%tap0]:8"),
    ];
    let server = thread::spawn(move || {
        let mut peers = Vec::new();
        for _ in 0..3 {
            let (mut conn, peer) = listener.accept().expect("accept");
            peers.push(peer.ip());
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = conn.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).expect("write");
            }
        }
        peers
    });
    for target in &targets {
        let (status, out) = ns.sh(&format!(
            "timeout 30 socat -t 10 - {target} < {f} | cmp - {f} && echo SAME",
            f = file.display()
        ));
        assert_eq!((status, out.trim()), (0, "SAME"), "socat to {target}");
    }
    let peers = server.join().unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        peers,
        vec![
            ip("::ffff:10.0.0.2"),
            ip("2001:db8::2"),
            IpAddr::V6(ns.link_local)
        ]
    );
}

#[test]
fn the_kernel_follows_our_new_hardware_address() {
    require_namespaces!();
    let switch = Switch::start();
    let stack = our_stack(&switch);
    let mut ns = KernelNs::start(&switch);
    for target in ["10.0.0.1", "2001:db8::1"] {
        let (status, out) = ns.sh(&format!("ping -c 1 -W 10 {target}"));
        assert_eq!(status, 0, "ping {target}: {out}");
    }
    stack
        .cmd("/bin/ip link set vde0 address 02:00:5e:10:20:30")
        .unwrap();
    // The kernel's entries are fresh (REACHABLE for 15 s or more): only our
    // announcements can move them (a gratuitous ARP overrides an entry at once,
    // whatever its `locktime`). They reach the kernel through the switch and
    // vde_plug, which a loaded machine may schedule after the shell, so the
    // entries are awaited (5 s at most, well inside REACHABLE) before one ping
    // with a short wait shows the path works at the new address.
    for target in ["10.0.0.1", "2001:db8::1"] {
        let (status, out) = ns.sh(&format!(
            "n=0; while ! ip neigh show {target} dev tap0 | grep -q 02:00:5e:10:20:30 \
               && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done\n\
             ip neigh show {target} dev tap0; ping -c 1 -W 3 {target}"
        ));
        assert_eq!(status, 0, "ping {target} after the change: {out}");
    }
    let (_, out) = ns.sh("ip neigh show dev tap0");
    for line in out.lines().filter(|l| l.contains("lladdr")) {
        assert!(line.contains("02:00:5e:10:20:30"), "{out}");
    }
}

#[test]
fn our_stack_pings_the_kernel() {
    require_namespaces!();
    let switch = Switch::start();
    let stack = our_stack(&switch);
    let ns = KernelNs::start(&switch);
    for (bind, to) in [
        ("0.0.0.0", IpAddr::from([10, 0, 0, 2])),
        ("::", "2001:db8::2".parse().unwrap()),
        ("::", IpAddr::V6(ns.link_local)),
    ] {
        let socket = PingSocket::bind(&stack, bind.parse().unwrap()).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 128];
        let mut answered = false;
        for seq in 0..20 {
            let request = PingSocket::echo_request(to.is_ipv6(), seq, b"from smoltcp");
            socket.send_to(&request, to).unwrap();
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                assert_eq!(from, to);
                assert_eq!(&buf[8..n], b"from smoltcp", "the kernel echoes the payload");
                answered = true;
                break;
            }
        }
        assert!(answered, "no echo reply from the kernel at {to}");
    }
}

#[test]
fn udp_both_ways_with_the_kernel() {
    require_namespaces!();
    let switch = Switch::start();
    let stack = our_stack(&switch);
    let mut ns = KernelNs::start(&switch);
    // The kernel echoes UDP on port 7 (IPv6 socket, IPv4 too), datagrams of up
    // to 64 KiB (socat's default buffer is 8 KiB).
    let (status, out) = ns.sh(
        "socat -b 65536 UDP6-RECVFROM:7,fork PIPE </dev/null >/dev/null 2>&1 &\n\
         n=0; while ! ss -Hlun \"sport = :7\" | grep -q . && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done\n\
         ss -Hlun \"sport = :7\" | grep -q .",
    );
    assert_eq!(status, 0, "socat did not start: {out}");
    let ll = SocketAddr::V6(SocketAddrV6::new(ns.link_local, 7, 0, 2));
    // 20,000 bytes go in fragments both ways: ours to the kernel's reassembly,
    // the kernel's to ours (for IPv6 the engine's own, which smoltcp lacks).
    let targets = [
        "10.0.0.2:7".parse::<SocketAddr>().unwrap(),
        "[2001:db8::2]:7".parse().unwrap(),
        ll,
    ];
    for (to, size) in targets
        .into_iter()
        .flat_map(|to| [(to, 1200), (to, 20_000)])
    {
        let socket =
            UdpSocket::bind(&stack, if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let data = pattern(size);
        let mut buf = vec![0u8; 65_536];
        let mut echoed = None;
        for _ in 0..20 {
            socket.send_to(&data, to).unwrap();
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                echoed = Some((buf[..n].to_vec(), from));
                break;
            }
        }
        let (got, from) = echoed.unwrap_or_else(|| panic!("no UDP echo of {size} bytes from {to}"));
        assert!(
            got == data,
            "{to}: the {size}-byte datagram came back altered"
        );
        assert_eq!(from.ip(), to.ip());
    }
    // The kernel sends to our socket and gets our answer.
    let server = UdpSocket::bind(&stack, "[::]:9").unwrap();
    let answering = thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut peers = Vec::new();
        while peers.len() < 2 {
            let (n, from) = server.recv_from(&mut buf).expect("recv_from");
            server.send_to(&buf[..n], from).expect("send_to");
            if !peers.contains(&from.ip()) {
                peers.push(from.ip());
            }
        }
        peers
    });
    for target in ["UDP4:10.0.0.1:9", "UDP6:[2001:db8::1]:9"] {
        let (status, out) = ns.sh(&format!(
            "echo kernel-says-hi | timeout 10 socat -t 2 - {target}"
        ));
        assert_eq!(
            (status, out.trim()),
            (0, "kernel-says-hi"),
            "socat to {target}"
        );
    }
    let peers = answering.join().unwrap();
    assert_eq!(
        peers,
        vec![
            "::ffff:10.0.0.2".parse::<IpAddr>().unwrap(),
            "2001:db8::2".parse().unwrap()
        ]
    );
}
