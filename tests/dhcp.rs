//! DHCPv4 on a userspace stack against real servers, all on this machine:
//! busybox udhcpd in a kernel namespace peer (a tap on the test's own
//! vde_switch), slirp's DHCP (`slirp://`, libvdeplug-slirp) with a download
//! from an HTTP server on the host's 127.0.0.1 through slirp's 10.0.2.2, names
//! through slirp's DNS (10.0.2.3) to a local resolver in namespaces of the
//! test's own, and a switch with no server at all. `Stack::dhcp` and the stackcmd commands
//! (`udhcpc`, `dhclient`) both.

mod common;

use common::{udhcpd_peer, Switch, TempDir};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use vdestack::{Stack, TcpStream};

/// What a test against udhcpd holds besides its stack: the peer, the switch
/// and the directory of udhcpd's files.
struct Peer {
    _namespace: common::Namespace,
    _switch: Switch,
    _dir: TempDir,
}

/// A stack on a switch where a udhcpd peer serves leases of `lease` seconds;
/// `None` (said on stderr) where no namespace can be made.
fn with_udhcpd(test: &str, lease: u32) -> Option<(Stack, Peer)> {
    let switch = Switch::start();
    let dir = TempDir::new("udhcpd");
    let namespace = udhcpd_peer(test, &switch, &dir, lease)?;
    let stack = Stack::new(&switch.vnl(), None).unwrap();
    let peer = Peer {
        _namespace: namespace,
        _switch: switch,
        _dir: dir,
    };
    Some((stack, peer))
}

/// The address in udhcpd's pool (10.0.0.100 to 10.0.0.110) that `ip addr
/// show` shows.
fn leased(shown: &str) -> Option<Ipv4Addr> {
    shown.lines().find_map(|line| {
        let cidr = line.trim().strip_prefix("inet ")?.split(' ').next()?;
        let address: Ipv4Addr = cidr.strip_suffix("/24")?.parse().ok()?;
        (100..=110)
            .contains(&address.octets()[3])
            .then_some(address)
    })
}

fn read_hello(stack: &Stack, addr: &str) -> String {
    let mut stream = TcpStream::connect(stack, addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    text
}

#[test]
fn udhcpc_gets_a_lease_from_udhcpd_in_a_kernel_namespace() {
    let Some((stack, _peer)) = with_udhcpd("udhcpc_gets_a_lease_from_udhcpd", 600) else {
        return;
    };
    stack
        .cmd("/sbin/udhcpc -i vde0 -n -t 5 -T 2")
        .expect("a lease");
    // udhcpd picks the address from a hash of the client's MAC, within its
    // pool: the stack's MAC is random.
    let shown = stack.cmd_output("/bin/ip addr show dev vde0").unwrap();
    let address = leased(&shown).unwrap_or_else(|| panic!("no lease shown: {shown}"));
    assert!(
        shown.contains(&format!(
            "    inet {address}/24 brd 10.0.0.255 scope global vde0\n"
        )),
        "{shown}"
    );
    let routes = stack.cmd_output("/bin/ip route show").unwrap();
    assert_eq!(
        routes,
        format!(
            "default via 10.0.0.1 dev vde0 \n\
             10.0.0.0/24 dev vde0 proto kernel scope link src {address} \n"
        )
    );
    let servers: Vec<IpAddr> = vec![
        Ipv4Addr::new(10, 0, 0, 53).into(),
        Ipv4Addr::new(10, 0, 0, 54).into(),
    ];
    assert_eq!(stack.name_servers(), servers);
    assert_eq!(read_hello(&stack, "10.0.0.1:7000"), "hello\n");
    // A second client on the same stack finds the lease there.
    stack.cmd("busybox udhcpc -i vde0 -n -q").unwrap();
}

#[test]
fn stack_dhcp_returns_the_lease_and_renews_it() {
    // Leases of 4 s: renewed at 2 s, gone at 4 s if not renewed.
    let Some((stack, _peer)) = with_udhcpd("stack_dhcp_renews", 4) else {
        return;
    };
    let lease = stack.dhcp("vde0").expect("a lease");
    let pool = Ipv4Addr::new(10, 0, 0, 100)..=Ipv4Addr::new(10, 0, 0, 110);
    assert!(pool.contains(&lease.address), "{lease:?}");
    assert_eq!(lease.prefix_len, 24);
    assert_eq!(lease.router, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(lease.server, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(lease.lease_time, Duration::from_secs(4));
    assert_eq!(
        lease.name_servers,
        [Ipv4Addr::new(10, 0, 0, 53), Ipv4Addr::new(10, 0, 0, 54)]
    );
    // Three lease times later the address is still held (renewed), and works.
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(500));
        let shown = stack.cmd_output("/bin/ip addr show dev vde0").unwrap();
        let held = format!("inet {}/24", lease.address);
        assert!(shown.contains(&held), "lease lost: {shown}");
    }
    assert_eq!(read_hello(&stack, "10.0.0.1:7000"), "hello\n");
    assert!(matches!(
        stack.dhcp("nosuch").unwrap_err().raw_os_error(),
        Some(libc::ENODEV)
    ));
}

#[test]
fn dhclient_gets_a_lease_too() {
    let Some((stack, _peer)) = with_udhcpd("dhclient_gets_a_lease_too", 600) else {
        return;
    };
    // The string goes on after the lease.
    let shown = stack
        .cmd_output("/sbin/dhclient -1 -v vde0; /bin/ip -4 route show default")
        .expect("a lease");
    assert_eq!(shown, "default via 10.0.0.1 dev vde0 \n");
}

#[test]
fn no_server_gives_udhcpc_n_status_1_quickly() {
    let switch = Switch::start();
    let stack = Stack::new(&switch.vnl(), None).unwrap();
    let start = Instant::now();
    let e = stack.cmd("/sbin/udhcpc -i vde0 -n -t 1 -T 1").unwrap_err();
    assert_eq!(e.status(), 1);
    assert_eq!(e.message(), "udhcpc: no lease, failing");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // dhclient -1: its status 2.
    let e = stack
        .cmd("dhclient -nw vde0; dhclient -1 nosuch")
        .unwrap_err();
    assert_eq!(e.status(), 1, "{e}");
    // Without -n, udhcpc goes on in the background: status 0.
    stack.cmd("udhcpc -i vde0 -t 1 -T 1").unwrap();
    // What the stack cannot do is refused with a clear status.
    let e = stack
        .cmd("udhcpc -i vde0 -s /etc/udhcpc/default.script")
        .unwrap_err();
    assert_eq!(e.status(), 2);
    assert!(e.message().contains("-s SCRIPT"), "{e}");
    let e = stack.cmd("udhcpc -i vde0 -Z").unwrap_err();
    assert_eq!(e.status(), 1);
    let e = stack.cmd("udhcpc -i nosuch -n").unwrap_err();
    assert_eq!(
        (e.status(), e.message()),
        (1, "udhcpc: ioctl 0x8933 failed: No such device")
    );
    // The pure model has no network.
    let mut model = vdestack::cmd::NetConfig::new("vde0", [2, 0, 0, 0, 0, 1]);
    assert_eq!(model.run("udhcpc -i vde0").unwrap_err().status(), 2);
}

#[test]
fn stack_dhcp_times_out_without_a_server() {
    let switch = Switch::start();
    let stack = Stack::new(&switch.vnl(), None).unwrap();
    let e = stack.dhcp("vde0").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
}

/// Whether the `slirp://` plugin is installed; says so when not.
fn slirp_available(test: &str) -> bool {
    let found = ["/usr/lib/x86_64-linux-gnu/vdeplug", "/usr/lib/vdeplug"]
        .iter()
        .any(|dir| {
            std::path::Path::new(dir)
                .join("libvdeplug_slirp.so")
                .exists()
        });
    if !found {
        eprintln!("SKIPPED {test}: libvdeplug-slirp (slirp://) is not installed");
    }
    found
}

#[test]
fn slirp_gives_a_lease_and_reaches_the_hosts_loopback() {
    if !slirp_available("slirp_gives_a_lease") {
        return;
    }
    // An HTTP server on the host's 127.0.0.1, one response.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "request cut short");
            request.extend_from_slice(&buf[..n]);
        }
        conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nfrom host\r\n")
            .unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    let stack = Stack::new("slirp://", None).unwrap();
    let lease = stack.dhcp("vde0").expect("slirp's lease");
    assert_eq!(lease.address, Ipv4Addr::new(10, 0, 2, 15));
    assert_eq!(lease.prefix_len, 24);
    assert_eq!(lease.router, Some(Ipv4Addr::new(10, 0, 2, 2)));
    // slirp's DNS (10.0.2.3) forwards to the host's resolver: only its
    // address is checked, no query leaves for it.
    assert_eq!(stack.name_servers(), [IpAddr::from([10, 0, 2, 3])]);
    let mut stream =
        TcpStream::connect(&stack, format!("10.0.2.2:{port}").as_str()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 10.0.2.2\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 200 OK"), "{response}");
    assert!(response.ends_with("from host\r\n"), "{response}");
    assert!(server.join().unwrap().starts_with("GET / HTTP/1.0"));
}

/// Set in the environment of this test binary when it runs itself again
/// inside [`common::local_resolver`]'s namespaces.
const INSIDE: &str = "VDESTACK_TEST_INSIDE_LOCAL_RESOLVER";

/// Names through slirp's DNS (10.0.2.3), which forwards them to the host's
/// resolver: the test runs itself again inside namespaces whose resolver is a
/// local one (`common::local_resolver`), so no query leaves the machine. There
/// it takes slirp's lease, resolves a name with `Stack::lookup_host`, a missing
/// one, and connects to `host.test:PORT` (10.0.2.2, the host's loopback) with
/// `TcpStream::connect`.
#[test]
fn slirp_resolves_names_through_the_hosts_resolver() {
    let test = "slirp_resolves_names_through_the_hosts_resolver";
    if !slirp_available(test) {
        return;
    }
    if std::env::var_os(INSIDE).is_some() {
        return names_through_slirp();
    }
    let dir = TempDir::new("slirp-dns");
    let exe = std::env::current_exe().unwrap();
    let Some(mut cmd) = common::local_resolver(
        test,
        &dir,
        &[exe.to_str().unwrap(), "--exact", test, "--nocapture"],
    ) else {
        return;
    };
    let out = cmd.env(INSIDE, "1").output().expect("run the test inside");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "inside the namespaces: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The inside of `slirp_resolves_names_through_the_hosts_resolver`.
fn names_through_slirp() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"hello from the host\n").unwrap();
    });
    let stack = Stack::new("slirp://", None).unwrap();
    stack.dhcp("vde0").expect("slirp's lease");
    assert_eq!(stack.name_servers(), [IpAddr::from([10, 0, 2, 3])]);
    let found: Vec<_> = stack.lookup_host("example.test").expect("example.test");
    assert_eq!(found, [IpAddr::from([10, 9, 9, 9])]);
    let e = stack.lookup_host("nosuch.test").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    let mut stream =
        TcpStream::connect(&stack, format!("host.test:{port}").as_str()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = String::new();
    stream.read_to_string(&mut greeting).unwrap();
    assert_eq!(greeting, "hello from the host\n");
    server.join().unwrap();
}
