//! What only the kernel backend has: a real namespace, real commands, and stacks of
//! both backends sharing one network.
//!
//! Every test is skipped, with a message on stderr, where kernel stacks cannot be
//! made (no user namespaces, or vdestack built without the feature `kernel-ns`).

mod common;

use common::{kernel_available, stack_on, Backend, Switch};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::Duration;
use vdestack::{Stack, TcpListener, TcpStream, UdpSocket};

fn kernel_stack(vnl: &str, ifname: &str) -> Stack {
    Stack::builder()
        .vnl(vnl)
        .ifname(ifname)
        .backend(Backend::Kernel)
        .build()
        .unwrap_or_else(|e| panic!("a kernel stack on {vnl:?}: {e}"))
}

/// The namespace is fresh: `lo` down, the tap there under the stack's name, down.
#[test]
fn fresh_namespace_with_the_tap_named_ifname() {
    if !kernel_available("kernel::fresh_namespace_with_the_tap_named_ifname") {
        return;
    }
    let sw = Switch::start();
    let stack = kernel_stack(&sw.vnl(), "eth7");
    assert_eq!(stack.backend(), Backend::Kernel);
    assert_eq!(stack.ifname(), "eth7");
    let links = stack.cmd_output("/bin/ip -o link show").unwrap();
    let names: Vec<&str> = links.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    assert_eq!(names, ["lo", "eth7"], "{links}");
    assert!(links.lines().all(|l| l.contains("state DOWN")), "{links}");
    // A loopback-only stack has no tap at all.
    let lo_only = stack_on(Backend::Kernel, "");
    let links = lo_only.cmd_output("/bin/ip -o link show").unwrap();
    assert_eq!(links.lines().count(), 1, "{links}");
}

/// Commands run for real: `execv` of full paths as root of the namespace, the
/// first non-zero status stops the rest, standard output comes back.
#[test]
fn commands_run_inside_the_namespace() {
    if !kernel_available("kernel::commands_run_inside_the_namespace") {
        return;
    }
    let stack = stack_on(Backend::Kernel, "");
    assert_eq!(stack.cmd_output("/bin/echo hello").unwrap(), "hello\n");
    assert_eq!(
        stack.cmd_output("/usr/bin/id -u; /usr/bin/id -g").unwrap(),
        "0\n0\n",
        "root of the namespace"
    );
    // The exit statuses of the real ip, as FACTS.md lists them.
    let status = |cmds: &str| stack.cmd(cmds).map_or_else(|e| e.status(), |()| 0);
    assert_eq!(status("/bin/ip link set vde0 up"), 1);
    assert_eq!(status("/bin/ip addr add 10.0.0.x/24 dev lo"), 1);
    assert_eq!(status("/bin/ip foo"), 1);
    assert_eq!(status("/bin/ip link set lo mtu abc"), 255);
    assert_eq!(status("/bin/ip addr add 10.0.0.1/24 dev lo"), 0);
    assert_eq!(status("/bin/ip addr add 10.0.0.1/24 dev lo"), 2);
    let err = stack.cmd("/bin/ip foo").unwrap_err();
    assert_eq!(err.message(), "Object \"foo\" is unknown, try \"ip help\".");
    // No PATH search; a missing command is status 2.
    assert_eq!(status("ip link"), 2);
    assert_eq!(status("/nonexistent/ip link"), 2);
    // The sequence stops at the first failure; the lexer quotes as the reference.
    let dir = common::TempDir::new("kcmd");
    let marker = dir.path().join("ran");
    let cmds = format!("/bin/sh -c 'exit 7'; /usr/bin/touch {}", marker.display());
    assert_eq!(status(&cmds), 7);
    assert!(!marker.exists(), "nothing runs after a failure");
    assert_eq!(status(&format!("/usr/bin/touch {}", marker.display())), 0);
    assert!(marker.exists());
    assert_eq!(status(""), 0);
    assert_eq!(status(" ; ;"), 0);
    // Killed by a signal: 128 + the signal, as a shell reports it.
    assert_eq!(status("/bin/sh -c 'kill -9 $$'"), 128 + 9);
    // Large output arrives whole.
    let big = stack.cmd_output("/usr/bin/seq 1 100000").unwrap();
    assert_eq!(big.lines().count(), 100_000);
    assert!(big.ends_with("100000\n"));
}

/// `msocket` gives real kernel sockets of the namespace.
#[test]
fn msocket_gives_kernel_sockets_of_the_namespace() {
    if !kernel_available("kernel::msocket_gives_kernel_sockets_of_the_namespace") {
        return;
    }
    use std::os::fd::AsRawFd;
    let stack = stack_on(Backend::Kernel, "");
    let fd = stack
        .msocket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)
        .unwrap();
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl queries on a valid fd.
    let (fl, fdfl) = unsafe {
        (
            libc::fcntl(raw, libc::F_GETFL),
            libc::fcntl(raw, libc::F_GETFD),
        )
    };
    assert!(fl & libc::O_NONBLOCK != 0);
    assert!(fdfl & libc::FD_CLOEXEC == 0);
    // Its namespace is not ours: with lo down there, 127.0.0.1 is unreachable,
    // whatever this process's own namespace has.
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 7u16.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
        },
        sin_zero: [0; 8],
    };
    let blocking = stack.msocket(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
    // SAFETY: a valid sockaddr_in and its size.
    let ret = unsafe {
        libc::connect(
            blocking.as_raw_fd(),
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(ret, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENETUNREACH)
    );
    // UDP is there too: the kernel has it.
    stack
        .msocket(libc::AF_INET6, libc::SOCK_DGRAM, 0)
        .expect("a UDP socket");
    let e = stack.msocket(libc::AF_INET, 99, 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn pcap_is_refused_clearly() {
    if !kernel_available("kernel::pcap_is_refused_clearly") {
        return;
    }
    let dir = common::TempDir::new("kpcap");
    let err = Stack::builder()
        .backend(Backend::Kernel)
        .pcap(dir.path().join("x.pcap"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("pcap"), "{err}");
}

/// One message each way over a connection from `from` to `to` at `target`.
fn exchange(from: &Stack, to: &Stack, target: SocketAddr) {
    let listener = TcpListener::bind(to, target).unwrap();
    let server = thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        let mut request = Vec::new();
        conn.read_to_end(&mut request).unwrap();
        conn.write_all(&request).unwrap();
        conn.write_all(b" - echoed").unwrap();
        (peer, request.len())
    });
    let mut client = TcpStream::connect(from, target).unwrap();
    assert_eq!(client.peer_addr().unwrap(), target);
    let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    client.write_all(&message).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).unwrap();
    assert_eq!(&reply[..message.len()], &message[..], "to {target}");
    assert_eq!(&reply[message.len()..], b" - echoed");
    let (peer, len) = server.join().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(len, message.len());
}

/// A datagram from `from` to `to` at `target` and its answer (repeated a bounded
/// number of times, as UDP may lose one), with the addresses checked.
fn udp_exchange(from: &Stack, to: &Stack, target: SocketAddr) {
    let server = UdpSocket::bind(to, target).unwrap();
    let any = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let client = UdpSocket::bind(from, any).unwrap();
    for s in [&server, &client] {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
    }
    let mut buf = [0u8; 2048];
    let question: Vec<u8> = (0..1400u32).map(|i| (i % 249) as u8).collect();
    for _ in 0..20 {
        client.send_to(&question, target).unwrap();
        let Ok((n, asker)) = server.recv_from(&mut buf) else {
            continue;
        };
        assert_eq!(&buf[..n], &question[..], "to {target}");
        assert_eq!(asker.port(), client.local_addr().unwrap().port());
        server.send_to(b"answer", asker).unwrap();
        if let Ok((n, from)) = client.recv_from(&mut buf) {
            assert_eq!((&buf[..n], from), (&b"answer"[..], target));
            return;
        }
    }
    panic!("no UDP exchange with {target}");
}

/// A userspace stack and a kernel stack on one `vde_switch` talk TCP and UDP over
/// IPv4 and IPv6, each direction.
#[test]
fn mixed_network_both_directions_ipv4_and_ipv6() {
    if !kernel_available("kernel::mixed_network_both_directions_ipv4_and_ipv6") {
        return;
    }
    let sw = Switch::start();
    let user = stack_on(Backend::Userspace, &sw.vnl());
    let kernel = kernel_stack(&sw.vnl(), "vde0");
    for (stack, n) in [(&user, 1), (&kernel, 2)] {
        // nodad: the kernel's duplicate address detection would hold the address
        // back for a second or two (the userspace stack does none).
        stack
            .cmd(&format!(
                "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.{n}/24 dev vde0; \
                 /bin/ip addr add 2001:db8::{n}/64 dev vde0 nodad"
            ))
            .unwrap();
    }
    exchange(&user, &kernel, "10.0.0.2:7".parse().unwrap());
    exchange(&kernel, &user, "10.0.0.1:7".parse().unwrap());
    exchange(&user, &kernel, "[2001:db8::2]:8".parse().unwrap());
    exchange(&kernel, &user, "[2001:db8::1]:8".parse().unwrap());
    udp_exchange(&user, &kernel, "10.0.0.2:53".parse().unwrap());
    udp_exchange(&kernel, &user, "10.0.0.1:53".parse().unwrap());
    udp_exchange(&user, &kernel, "[2001:db8::2]:54".parse().unwrap());
    udp_exchange(&kernel, &user, "[2001:db8::1]:54".parse().unwrap());
}

/// Set in the process [`helper_dies_with_its_owner`] starts and kills.
const OWNER: &str = "VDESTACK_KERNEL_TEST_OWNER";

/// The helper dies with the process that made the stack, even one killed outright
/// (SIGKILL: no destructor runs): the owner's end of the control socket closes,
/// and the helper sees it.
#[test]
fn helper_dies_with_its_owner() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    if std::env::var_os(OWNER).is_some() {
        // The owner: make a stack, name its helper, wait to be killed.
        let _stack = stack_on(Backend::Kernel, "");
        let helpers = common::child_processes();
        // Straight to descriptor 1: the test harness captures what goes through
        // std's stdout.
        let line = format!("\nHELPER-PID={}\n", helpers[0]);
        // SAFETY: `line` is valid for reads of its length.
        let n = unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
        assert_eq!(n, line.len() as isize);
        let mut byte = [0u8; 1];
        let _ = std::io::stdin().read(&mut byte);
        return;
    }
    if !kernel_available("kernel::helper_dies_with_its_owner") {
        return;
    }
    let mut owner = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_dies_with_its_owner", "--test-threads=1"])
        .env(OWNER, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(owner.stdout.take().unwrap()).lines();
    let helper: u32 = loop {
        let line = lines.next().expect("the owner names its helper").unwrap();
        // The harness prints "test NAME ... " on the same line.
        if let Some((_, pid)) = line.split_once("HELPER-PID=") {
            break pid.trim().parse().unwrap();
        }
    };
    let stat = format!("/proc/{helper}/stat");
    assert!(std::path::Path::new(&stat).exists(), "the helper runs");
    owner.kill().unwrap();
    owner.wait().unwrap();
    // Orphaned, the helper goes to init; gone or a zombie means it exited.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let state = std::fs::read_to_string(&stat)
            .ok()
            .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().chars().next()))
            .flatten();
        if matches!(state, None | Some('Z') | Some('X')) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the helper {helper} outlived its owner (state {state:?})"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
