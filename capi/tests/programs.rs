//! Real, unmodified programs on a userspace stack (`vdestack run`), each
//! talking to a peer across a `vde_switch`: curl and wget downloading 10 MiB,
//! python's http.server serving curl, socat echoing both ways and proxying with
//! a child per connection, ncat's dual-stack listen reached over IPv4 and IPv6,
//! iperf3 client and server (TCP and UDP, both directions), an asyncio echo
//! server with 100 clients both ways, and ssh to an sshd on the stack.
//!
//! The peer ([`Network`]) is a kernel network namespace plugged into the switch
//! by `vde_plug` where user namespaces can be made, and a second `vdestack run`
//! where they cannot (as in `.ci/run`'s rerun with user namespaces blocked);
//! each test asserts the same either way. The stack under test runs in network
//! namespaces of its own (`lo` down) where they can be made, so a socket that
//! fell back to the kernel would reach nothing; and across the switch a passing
//! test has reached the peer through our stack in any case.
//!
//! Each side is a shell ([`Host`]) driven one command at a time; what it
//! starts in the background is waited for by the line it prints when ready.
//! Where a program is missing, the test says so and passes without running.

#[path = "../../tests/common/mod.rs"]
mod common;
mod hosted;

use common::{Switch, TempDir};
use hosted::{built_lib, pattern, vdestack, TIMEOUT};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Our stack's addresses, and the peer's.
const OURS: (&str, &str) = ("10.0.0.1", "fd00::1");
const PEER: (&str, &str) = ("10.0.0.2", "fd00::2");

/// What the peer is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Network {
    /// A kernel in a network namespace of its own, its tap on the switch.
    Kernel,
    /// A second `vdestack run`: where user namespaces cannot be made.
    Stacks,
}

/// Whether `program` is on `PATH`.
fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The peer that works here (`VDESTACK_TEST_PEER=stack` chooses the second
/// stack anyway), said on stderr for the test's log; `None` (the test skips,
/// saying why) where one of `programs` is missing.
fn network(test: &str, programs: &[&str]) -> Option<Network> {
    if let Some(missing) = programs.iter().find(|p| !installed(p)) {
        eprintln!("SKIPPED {test}: `{missing}` is not installed (.ci/run installs it)");
        return None;
    }
    let forced = std::env::var("VDESTACK_TEST_PEER").is_ok_and(|v| v == "stack");
    let network = if !forced && common::Namespace::available() && installed("vde_plug") {
        Network::Kernel
    } else {
        Network::Stacks
    };
    eprintln!("{test}: peer: {network:?}");
    Some(network)
}

/// How the shell of our stack is wrapped.
#[derive(Clone, Copy)]
enum Wrap {
    /// Nothing: where no namespace can be made.
    None,
    /// `unshare -Urnp`: user, network and PID namespaces.
    UserNs,
    /// `unshare -nmp` (network, mount and PID namespaces, no user namespace:
    /// sshd's privilege separation becomes the user `sshd`, which one made by
    /// `unshare -Ur` does not map), with a fresh `/run` holding `/run/sshd`,
    /// where it chroots.
    RootNs,
}

/// A shell on one side of the network, driven one command at a time
/// ([`Host::sh`]). Dropping it ends what it started and the shell, then kills
/// whatever is left of its process group (and with it, its namespaces).
struct Host {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Where the host's background programs log.
    dir: std::path::PathBuf,
    /// "ours" or "peer": the start of its files' names.
    name: String,
    /// `vdestack`'s and `unshare`'s own messages.
    errors: std::path::PathBuf,
}

impl Host {
    /// Our stack on `switch` (10.0.0.1/24, fd00::1/64), its shell under
    /// `vdestack run` (wrapped in namespaces as `wrap` says).
    fn ours(switch: &Switch, dir: &Path, wrap: Wrap) -> Host {
        Host::on_stack(switch, dir, OURS, wrap, "ours")
    }

    /// The peer (10.0.0.2/24, fd00::2/64) on `switch`.
    fn peer(switch: &Switch, dir: &Path, network: Network) -> Host {
        match network {
            Network::Stacks => Host::on_stack(switch, dir, PEER, wrap(), "peer"),
            Network::Kernel => {
                let mut host = Host::spawn(
                    Command::new("unshare").args(["-Urnp", "--fork", "--kill-child", "sh", "-s"]),
                    dir,
                    "peer",
                );
                // DAD off: addresses are usable at once. vde_plug makes the tap;
                // its appearing is the only sign, polled a bounded number of times.
                let setup = format!(
                    "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0\n\
                     vde_plug vde://{sw} tap://tap0 </dev/null >/dev/null 2>&1 &\n\
                     n=0; while ! ip link show tap0 >/dev/null 2>&1 && [ $n -lt 3000 ]; do sleep 0.01; n=$((n+1)); done\n\
                     ip link set lo up && ip addr add {v4}/24 dev tap0 && \
                     ip addr add {v6}/64 dev tap0 nodad && ip link set tap0 up",
                    sw = common::switch_path(switch).display(),
                    v4 = PEER.0,
                    v6 = PEER.1,
                );
                host.ok(&setup);
                host
            }
        }
    }

    /// A shell under `vdestack run` on `switch` with the addresses `v4`/24 and
    /// `v6`/64, wrapped as `wrap` says.
    fn on_stack(
        switch: &Switch,
        dir: &Path,
        (v4, v6): (&str, &str),
        wrap: Wrap,
        name: &str,
    ) -> Host {
        let stackcmd = format!(
            "/bin/ip link set vde0 up; /bin/ip addr add {v4}/24 dev vde0; \
             /bin/ip -6 addr add {v6}/64 dev vde0 nodad"
        );
        let run = [
            vdestack(),
            "run",
            "--vnl",
            &switch.vnl(),
            "--cmd",
            &stackcmd,
            "--",
            "sh",
            "-s",
        ]
        .map(String::from);
        let mut command = match wrap {
            Wrap::None => Command::new(&run[0]),
            Wrap::UserNs => {
                let mut c = Command::new("unshare");
                c.args(["-Urnp", "--fork", "--kill-child", &run[0]]);
                c
            }
            Wrap::RootNs => {
                let mut c = Command::new("unshare");
                c.args([
                    "-nmp",
                    "--fork",
                    "--kill-child",
                    "sh",
                    "-c",
                    "mount -t tmpfs tmpfs /run && mkdir -m 755 /run/sshd && exec \"$@\"",
                    "sh",
                    &run[0],
                ]);
                c
            }
        };
        command.args(&run[1..]).env("VDESTACK_LIBRARY", built_lib());
        Host::spawn(&mut command, dir, name)
    }

    /// Starts the shell `command` runs; its own messages go to `NAME.stderr`,
    /// its commands' to its stdout.
    fn spawn(command: &mut Command, dir: &Path, name: &str) -> Host {
        let errors = dir.join(format!("{name}.stderr"));
        let (child, stdin, lines) = common::spawn_shell(
            command
                .stderr(std::fs::File::create(&errors).expect("the host's stderr file"))
                .process_group(0),
        );
        let mut host = Host {
            child,
            stdin,
            lines,
            dir: dir.to_path_buf(),
            name: name.to_string(),
            errors,
        };
        host.ok("exec 2>&1");
        host
    }

    /// Runs `script` in the shell, at most [`TIMEOUT`]; returns its exit status
    /// and output (stdout and stderr).
    fn sh(&mut self, script: &str) -> (i32, String) {
        let sent = writeln!(self.stdin, "{script}\necho \"@@status $?\"")
            .and_then(|()| self.stdin.flush());
        let mut out = String::new();
        loop {
            let line = match (&sent, self.lines.recv_timeout(TIMEOUT)) {
                (Ok(()), Ok(line)) => line,
                (_, outcome) => panic!(
                    "the shell ({:?}) during {script:?}; so far: {out}; its stderr: {}",
                    outcome.err(),
                    std::fs::read_to_string(&self.errors).unwrap_or_default()
                ),
            };
            if let Some(status) = line.strip_prefix("@@status ") {
                return (status.trim().parse().expect("a status"), out);
            }
            out.push_str(&line);
            out.push('\n');
        }
    }

    /// Runs `script`, which must succeed; returns its output.
    fn ok(&mut self, script: &str) -> String {
        let (status, out) = self.sh(script);
        assert_eq!(status, 0, "{script}: status {status}, output:\n{out}");
        out
    }

    /// The file where the background program `program` logs.
    fn log_file(&self, program: &str) -> std::path::PathBuf {
        self.dir.join(format!("{}-{program}.log", self.name))
    }

    /// Starts `command` in the background, its output in its log file, and waits
    /// (bounded) until that holds `ready` (a basic regular expression).
    fn serve(&mut self, name: &str, command: &str, ready: &str) {
        let log = self.log_file(name);
        let log = log.display();
        // The shell empties the log before the program starts: what an earlier
        // program of the same name wrote there must not count as ready.
        self.ok(&format!(
            ": >'{log}'\n\
             {command} </dev/null >>'{log}' 2>&1 &\n\
             pid=$! n=0 ready=0 started=\"$started $!\"\n\
             while ! grep -q -e '{ready}' '{log}'; do\n\
               if ! kill -0 $pid 2>/dev/null || [ $n -ge 2000 ]; then cat '{log}'; ready=1; break; fi\n\
               sleep 0.02; n=$((n+1))\n\
             done\n\
             [ $ready = 0 ]"
        ));
    }

    /// What the background program `name` printed so far.
    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_file(name)).unwrap_or_default()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // The shell ends what it started, then itself, so that `vdestack` ends as
        // after any program (its stack drained, its directory removed); what is
        // left after a while is killed.
        let _ = writeln!(self.stdin, "kill $started 2>/dev/null; exit 0");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: killpg takes a process group and a signal; the group is the
        // shell's own (process_group(0)), whose id is not reused while any of
        // its members is left.
        unsafe { libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// How a stack's shell is wrapped: in namespaces of its own where they can be
/// made.
fn wrap() -> Wrap {
    if common::Namespace::available() {
        Wrap::UserNs
    } else {
        Wrap::None
    }
}

/// A switch, a temporary directory, our stack and the peer on them.
struct Net {
    ours: Host,
    peer: Host,
    dir: TempDir,
    _switch: Switch,
}

impl Net {
    /// The network for `test`, which runs `programs`: `None` (the test skips,
    /// saying why) where one of them is missing.
    fn for_test(test: &str, programs: &[&str]) -> Option<Net> {
        network(test, programs).map(|network| Net::wrapped(network, test, wrap()))
    }

    fn wrapped(network: Network, tag: &str, wrap: Wrap) -> Net {
        let switch = Switch::start();
        let dir = TempDir::new(tag);
        let peer = Host::peer(&switch, dir.path(), network);
        let ours = Host::ours(&switch, dir.path(), wrap);
        Net {
            ours,
            peer,
            dir,
            _switch: switch,
        }
    }

    /// A path in the temporary directory, for the shells.
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Writes `bytes` to the file `name` in the temporary directory.
    fn write(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.dir.path().join(name), bytes).expect("write a test file");
        self.path(name)
    }

    /// Whether the file `name` holds `bytes`; fails saying how it differs.
    fn assert_file(&self, name: &str, bytes: &[u8]) {
        let got = std::fs::read(self.dir.path().join(name)).expect("the received file");
        assert_eq!(got.len(), bytes.len(), "{name}: length");
        assert!(got == bytes, "{name}: the bytes differ");
    }
}

/// Who runs which side of a test.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// The server on our stack, the client on the peer.
    OursServes,
    /// The client on our stack, the server on the peer.
    OursAsks,
}

impl Role {
    /// (server, client) and the server's IPv4 address.
    fn split(self, net: &mut Net) -> (&mut Host, &mut Host, &'static str) {
        match self {
            Role::OursServes => (&mut net.ours, &mut net.peer, OURS.0),
            Role::OursAsks => (&mut net.peer, &mut net.ours, PEER.0),
        }
    }
}

/// 10 MiB from python's http.server (on the server side of `role`) to
/// `client` (a command line, given the URL and the output file), byte-exact.
fn download(test: &str, role: Role, client: &str, fetch: fn(&str, &str) -> String) {
    let Some(mut net) = Net::for_test(test, &["python3", client]) else {
        return;
    };
    let body = pattern(10 << 20);
    net.write("file", &body);
    let root = net.path("");
    let fetched = net.path("fetched");
    let (server, client, addr) = role.split(&mut net);
    server.serve(
        "http",
        &format!("python3 -u -m http.server 8000 --bind {addr} --directory '{root}'"),
        "Serving HTTP",
    );
    client.ok(&fetch(&format!("http://{addr}:8000/file"), &fetched));
    net.assert_file("fetched", &body);
}

fn curl(url: &str, out: &str) -> String {
    format!("curl -sS --fail --max-time 50 -o '{out}' {url}")
}

fn wget(url: &str, out: &str) -> String {
    format!("wget -q --tries=1 --timeout=50 -O '{out}' {url}")
}

#[test]
fn curl_downloads_10_mib() {
    download("curl_downloads_10_mib", Role::OursAsks, "curl", curl);
}

#[test]
fn wget_downloads_10_mib() {
    download("wget_downloads_10_mib", Role::OursAsks, "wget", wget);
}

#[test]
fn python_http_server_serves_curl() {
    download(
        "python_http_server_serves_curl",
        Role::OursServes,
        "curl",
        curl,
    );
}

/// An echo server (socat, a `cat` per connection) listening on TCP `port`.
fn socat_echo(host: &mut Host, port: u16) {
    host.serve(
        &format!("echo{port}"),
        &format!("socat -d -d -t 50 TCP-LISTEN:{port},fork,reuseaddr EXEC:cat"),
        "listening on",
    );
}

/// Sends `data` (a file) with a socat client to `target` (socat's address)
/// and checks that the same bytes come back.
fn socat_client(net: &mut Net, on_ours: bool, target: &str, data: &[u8]) {
    let sent = net.write("sent", data);
    let echoed = net.path("echoed");
    // -t: after sending all, wait for the echo's end however long it takes.
    let client = if on_ours {
        &mut net.ours
    } else {
        &mut net.peer
    };
    client.ok(&format!("socat -t 50 - {target} <'{sent}' >'{echoed}'"));
    net.assert_file("echoed", data);
}

#[test]
fn socat_echo_both_ways() {
    let test = "socat_echo_both_ways";
    let Some(mut net) = Net::for_test(test, &["socat"]) else {
        return;
    };
    let data = pattern(1 << 20);
    // Our client, the peer's server; then our server, the peer's client.
    socat_echo(&mut net.peer, 7000);
    socat_client(&mut net, true, &format!("TCP:{}:7000", PEER.0), &data);
    socat_echo(&mut net.ours, 7000);
    socat_client(&mut net, false, &format!("TCP:{}:7000", OURS.0), &data);
}

#[test]
fn socat_forking_proxy_on_the_stack() {
    let test = "socat_forking_proxy_on_the_stack";
    let Some(mut net) = Net::for_test(test, &["socat"]) else {
        return;
    };
    socat_echo(&mut net.peer, 7000);
    net.ours.serve(
        "proxy",
        &format!(
            "socat -d -d -t 50 TCP-LISTEN:7001,fork,reuseaddr TCP:{}:7000",
            PEER.0
        ),
        "listening on",
    );
    // Each connection is a child of the proxy's, with its own upstream. `-t 50`:
    // once the client's side ended, a child waits for the whole echo (socat's
    // default is half a second, which a loaded machine can exceed).
    for size in [10, 100_000, 1 << 20] {
        socat_client(
            &mut net,
            false,
            &format!("TCP:{}:7001", OURS.0),
            &pattern(size),
        );
    }
}

#[test]
fn ncat_listens_on_both_families() {
    let test = "ncat_listens_on_both_families";
    let Some(mut net) = Net::for_test(test, &["ncat", "socat"]) else {
        return;
    };
    let data = pattern(100_000);
    let sent = net.write("sent", &data);
    let received = net.path("received");
    for addr in [OURS.0, OURS.1] {
        // `ncat -l PORT` binds [::] (IPv6 only) and 0.0.0.0, says so for each,
        // takes one connection and writes what it receives.
        net.ours.serve(
            "ncat",
            &format!("sh -c \"exec ncat -v -l 7002 >'{received}'\""),
            "Listening on 0\\.0\\.0\\.0:7002",
        );
        let log = net.ours.log("ncat");
        assert!(log.contains("Listening on :::7002"), "{log}");
        net.peer.ok(&format!(
            "socat -u FILE:'{sent}' TCP:{}:7002",
            if addr.contains(':') {
                format!("[{addr}]")
            } else {
                addr.to_string()
            }
        ));
        net.ours.ok("wait $pid");
        net.assert_file("received", &data);
    }
}

/// Which iperf3 sends TCP on our stack, if one does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum OurSender {
    None,
    Client,
    Server,
}

/// Checks one iperf3 run's JSON report (`-J`, with the server's output): no
/// error, bytes received, and for a TCP sender on our stack, the congestion
/// window and round trip that iperf3 reads with `TCP_INFO` (in the client's
/// report, or the server's "Cwnd" column). Python reads the report (this crate
/// has no JSON parser).
fn check_iperf3(report: &str, what: &str, ours: OurSender) {
    let check = r#"
import json, re, sys
r = json.load(sys.stdin)
ours = sys.argv[1]
assert "error" not in r, r["error"]
end = r["end"]
received = end["sum_received"]["bytes"] if "sum_received" in end else end["sum"]["bytes"]
assert received > 0, end
if ours == "Client":
    sender = end["streams"][0]["sender"]
    assert sender["max_snd_cwnd"] > 0, sender
    assert sender["max_rtt"] > 0 and sender["min_rtt"] <= sender["max_rtt"], sender
    assert all(i["streams"][0]["snd_cwnd"] > 0 for i in r["intervals"]), r["intervals"]
elif ours == "Server":
    text = r["server_output_text"]
    # "[  6]   0.00-1.00   sec   923 MBytes  7.74 Gbits/sec    0   64.2 KBytes"
    cwnds = re.findall(r"sec +\d+ +([\d.]+) ([KMG]?)Bytes *$", text, re.M)
    assert cwnds and all(float(c) > 0 for c, _ in cwnds), text
print("ok", received)
"#;
    let mut python = Command::new("python3")
        .args(["-c", check, &format!("{ours:?}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(report.as_bytes())
        .expect("the report to python");
    let out = hosted::finish(python, "the report's check");
    assert!(
        out.status.success(),
        "{what}: {}\nreport: {report}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// iperf3 between the two sides (the server as `role` says), TCP and UDP, each
/// direction.
fn iperf3(test: &str, role: Role) {
    let Some(mut net) = Net::for_test(test, &["iperf3", "python3"]) else {
        return;
    };
    let (server, client, addr) = role.split(&mut net);
    server.serve(
        "iperf3",
        "iperf3 -s -p 5201 --forceflush",
        "Server listening on 5201",
    );
    for (mode, flags) in [
        ("TCP", ""),
        ("TCP reverse", "-R"),
        ("UDP", "-u -b 10M"),
        ("UDP reverse", "-u -b 10M -R"),
    ] {
        let what = format!("iperf3 {mode}, {role:?}");
        let report = client.ok(&format!(
            "iperf3 -c {addr} -p 5201 -t 1 -J {flags} --get-server-output --connect-timeout 10000"
        ));
        let ours = match (role, flags) {
            (Role::OursAsks, "") => OurSender::Client,
            (Role::OursServes, "-R") => OurSender::Server,
            _ => OurSender::None,
        };
        check_iperf3(&report, &what, ours);
    }
}

#[test]
fn iperf3_client_on_the_stack() {
    iperf3("iperf3_client_on_the_stack", Role::OursAsks);
}

#[test]
fn iperf3_server_on_the_stack() {
    iperf3("iperf3_server_on_the_stack", Role::OursServes);
}

/// An asyncio echo server (`server ADDR`: prints "listening", serves until
/// killed) and 100 concurrent clients (`clients ADDR`: prints how many got
/// their own bytes back, in upper case).
const ASYNCIO_ECHO: &str = r#"
import asyncio, sys
async def handle(reader, writer):
    writer.write((await reader.read(100)).upper())
    await writer.drain()
    writer.close()
async def client(i, addr):
    reader, writer = await asyncio.open_connection(addr, 7003)
    writer.write(b"hello %d" % i)
    await writer.drain()
    answer = await reader.read(100)
    writer.close()
    return answer == b"HELLO %d" % i
async def main(role, addr):
    if role == "server":
        server = await asyncio.start_server(handle, addr, 7003, backlog=128)
        print("listening", flush=True)
        await server.serve_forever()
    else:
        print(sum(await asyncio.gather(*(client(i, addr) for i in range(100)))))
asyncio.run(main(*sys.argv[1:]))
"#;

fn asyncio_echo(test: &str, role: Role) {
    let Some(mut net) = Net::for_test(test, &["python3"]) else {
        return;
    };
    let script = net.write("echo.py", ASYNCIO_ECHO.as_bytes());
    let (server, client, addr) = role.split(&mut net);
    server.serve(
        "asyncio",
        &format!("python3 '{script}' server {addr}"),
        "listening",
    );
    let answered = client.ok(&format!("python3 '{script}' clients {addr}"));
    assert_eq!(answered.trim(), "100", "clients answered");
}

#[test]
fn asyncio_echo_server_on_the_stack_with_100_clients() {
    asyncio_echo(
        "asyncio_echo_server_on_the_stack_with_100_clients",
        Role::OursServes,
    );
}

#[test]
fn asyncio_100_clients_on_the_stack() {
    asyncio_echo("asyncio_100_clients_on_the_stack", Role::OursAsks);
}

/// Whether `id` is in the user or group namespace map `map`
/// (`/proc/self/uid_map`: "inside outside count" lines).
fn mapped(map: &str, id: u32) -> bool {
    std::fs::read_to_string(map).is_ok_and(|map| {
        map.lines().any(|line| {
            let numbers: Vec<u64> = line.split_whitespace().filter_map(|n| n.parse().ok()).collect();
            matches!(numbers[..], [inside, _, count] if (inside..inside + count).contains(&u64::from(id)))
        })
    })
}

/// Why sshd cannot run here, if it cannot. Its privilege separation chroots
/// into `/run/sshd` and becomes the user `sshd`: that takes root, and that
/// user's ids mapped in this user namespace (all are, for the real root;
/// `.ci/run` maps them in its rerun with user namespaces blocked).
fn sshd_unavailable() -> Option<String> {
    if !Path::new("/usr/sbin/sshd").is_file() {
        return Some(
            "openssh-server is not installed (/usr/sbin/sshd; .ci/run installs it)".into(),
        );
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("sshd's privilege separation needs root".into());
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let ids = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[..] {
            ["sshd", _, uid, gid, ..] => Some((uid.parse().ok()?, gid.parse().ok()?)),
            _ => None,
        }
    });
    let Some((uid, gid)) = ids else {
        return Some("no user sshd for its privilege separation (/etc/passwd)".into());
    };
    if !mapped("/proc/self/uid_map", uid) || !mapped("/proc/self/gid_map", gid) {
        return Some(format!(
            "sshd's privilege separation becomes the user sshd (uid {uid}, gid {gid}), which \
             this user namespace does not map"
        ));
    }
    None
}

#[test]
fn ssh_to_sshd_on_the_stack() {
    let test = "ssh_to_sshd_on_the_stack";
    if let Some(why) = sshd_unavailable() {
        eprintln!("SKIPPED {test}: {why}");
        return;
    }
    let Some(network) = network(test, &["ssh", "ssh-keygen"]) else {
        return;
    };
    let mut net = Net::wrapped(network, test, Wrap::RootNs);
    let dir = net.path("");
    net.ours.ok(&format!(
        "cd '{dir}' && ssh-keygen -q -t ed25519 -N '' -f host_key && \
         ssh-keygen -q -t ed25519 -N '' -f user_key && cp user_key.pub authorized_keys"
    ));
    let config = net.write(
        "sshd_config",
        format!(
            "Port 2222\n\
             HostKey {dir}/host_key\n\
             AuthorizedKeysFile {dir}/authorized_keys\n\
             PidFile none\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n"
        )
        .as_bytes(),
    );
    // sshd listens on [::] and 0.0.0.0, forks and re-executes itself per
    // connection, and its privilege separation child chroots and drops root.
    net.ours.serve(
        "sshd",
        &format!("/usr/sbin/sshd -D -e -f '{config}'"),
        "Server listening on 0\\.0\\.0\\.0 port 2222",
    );
    for addr in [OURS.0, OURS.1] {
        let out = net.peer.ok(&format!(
            "ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o BatchMode=yes -o ConnectTimeout=30 -i '{dir}/user_key' -p 2222 root@{addr} echo ok"
        ));
        assert_eq!(out.lines().last(), Some("ok"), "ssh to {addr}: {out}");
        // ssh and sshd log the options the stack refuses them (IPV6_TCLASS was).
        assert!(!out.contains("setsockopt"), "ssh to {addr}: {out}");
    }
    let log = net.ours.log("sshd");
    assert!(!log.contains("setsockopt"), "sshd: {log}");
}
