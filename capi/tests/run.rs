//! `vdestack run`, proven with real programs: python's http.server and urllib in
//! one process tree, curl against a server on a second `vdestack run` on one
//! switch, forking servers (python's, socat's) whose children and exec'd
//! clients share the stack, datagrams, threads, asyncio, a program that exits
//! right after its last bytes, a stack configured by DHCP (`--dhcp`, from
//! busybox udhcpd in a kernel namespace peer; from slirp, with a name resolved
//! through slirp's DNS to a local resolver), and the refusals (a static
//! binary, a bad `--cmd`, a stack that cannot be made).
//!
//! Each program runs in a user and network namespace of its own (`unshare
//! -Urn`) whose `lo` is left down: a socket that fell back to the kernel would
//! reach nothing, not even 127.0.0.1, so a test that passes ran on the stack.
//! Where such a namespace cannot be made, those tests are skipped with a message.

#[path = "../../tests/common/mod.rs"]
mod common;
mod hosted;

use hosted::{assert_success, built_lib, finish, pattern, vdestack};

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

/// Whether a network namespace can be made here; says so when not.
fn namespaces(test: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["-Urnp", "--fork", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("{test}: skipped: no network namespace can be made here (unshare -Urn)");
    }
    ok
}

/// `vdestack run ARGS` in a network namespace of its own (its `lo` down), and a
/// PID namespace, so that killing it kills everything it started.
fn run_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["-Urnp", "--fork", "--kill-child", vdestack(), "run"])
        .args(args)
        .env("VDESTACK_LIBRARY", built_lib())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run(args: &[&str], what: &str) -> Output {
    finish(run_cmd(args).spawn().expect("spawn vdestack"), what)
}

/// A server started under `vdestack run` that prints one line when it is ready:
/// killed (with its namespace) on drop.
struct Server {
    child: Option<Child>,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = run_cmd(args).spawn().expect("spawn the server");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the server's first line");
        assert!(
            !line.is_empty(),
            "the server ended before it was ready: {:?}",
            child.wait_with_output().map(|o| o.status)
        );
        Server {
            child: Some(child),
            stdout,
        }
    }

    /// Waits for the server to end (at most [`TIMEOUT`]); returns how it ended
    /// and what it printed after its first line.
    fn finish(mut self) -> (Output, String) {
        let child = self.child.take().expect("the server");
        let waiter = std::thread::spawn(move || finish(child, "the server"));
        let mut rest = String::new();
        self.stdout
            .read_to_string(&mut rest)
            .expect("the server's output");
        (waiter.join().expect("the server's waiter"), rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn stack_on(switch: &common::Switch, addr: &str) -> [String; 4] {
    [
        "--vnl".into(),
        switch.vnl(),
        "--cmd".into(),
        format!("/bin/ip link set vde0 up; /bin/ip addr add {addr}/24 dev vde0"),
    ]
}

/// Runs the python `script` (with `args`) under `vdestack run` with `lo` up and
/// checks that it succeeds; `None` where no namespace can be made.
fn python_on_lo(test: &str, script: &str, args: &[&str]) -> Option<Output> {
    if !namespaces(test) {
        return None;
    }
    let mut all = vec![
        "--cmd",
        "/bin/ip link set lo up",
        "--",
        "python3",
        "-c",
        script,
    ];
    all.extend(args);
    let out = run(&all, test);
    assert_success(&out, test);
    Some(out)
}

/// [`python_on_lo`], which prints `expected`.
fn python_prints(test: &str, script: &str, expected: &str) {
    if let Some(out) = python_on_lo(test, script, &[]) {
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);
    }
}

#[test]
fn python_server_and_client_in_one_tree() {
    let dir = common::TempDir::new("run-py");
    let body = pattern(300_000);
    std::fs::write(dir.path().join("file"), &body).expect("write the file");
    // A child process serves one request; the parent fetches when the child's
    // pipe says it listens.
    let script = r#"
import os, sys, http.server, urllib.request, functools
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=sys.argv[1])
    server = http.server.HTTPServer(("127.0.0.1", 8000), handler)
    os.write(w, b"!")
    server.handle_request()
    os._exit(0)
os.close(w)
os.read(r, 1)
data = urllib.request.urlopen("http://127.0.0.1:8000/file").read()
sys.stdout.buffer.write(data)
_, status = os.waitpid(pid, 0)
sys.exit(status)
"#;
    let dir_arg = dir.path().to_string_lossy().into_owned();
    let test = "python_server_and_client_in_one_tree";
    if let Some(out) = python_on_lo(test, script, &[&dir_arg]) {
        assert!(out.stdout == body, "the bytes fetched differ");
    }
}

#[test]
fn curl_downloads_10_mib_from_a_second_stack() {
    if !namespaces("curl_downloads_10_mib_from_a_second_stack") {
        return;
    }
    let switch = common::Switch::start();
    let dir = common::TempDir::new("run-curl");
    let body = pattern(10 << 20);
    std::fs::write(dir.path().join("file"), &body).expect("write the file");
    let server = stack_on(&switch, "10.0.0.1");
    let dir_arg = dir.path().to_string_lossy().into_owned();
    let mut args: Vec<&str> = server.iter().map(String::as_str).collect();
    // http.server prints "Serving HTTP on ..." once it listens (-u: at once).
    args.extend([
        "--",
        "python3",
        "-u",
        "-m",
        "http.server",
        "8000",
        "--bind",
        "10.0.0.1",
        "--directory",
        &dir_arg,
    ]);
    let _server = Server::start(&args);
    let client = stack_on(&switch, "10.0.0.2");
    let fetched = dir.path().join("fetched");
    let fetched_arg = fetched.to_string_lossy().into_owned();
    let mut args: Vec<&str> = client.iter().map(String::as_str).collect();
    args.extend([
        "--",
        "curl",
        "-sS",
        "--fail",
        "-o",
        &fetched_arg,
        "http://10.0.0.1:8000/file",
    ]);
    let out = run(&args, "curl");
    assert_success(&out, "curl");
    let got = std::fs::read(&fetched).expect("curl's file");
    assert_eq!(got.len(), body.len());
    assert!(got == body, "the 10 MiB differ");
}

#[test]
fn a_forking_server_and_exec_d_clients_share_the_stack() {
    // The server's children (forked per connection) answer with their peer's
    // address and the bytes in upper case; the clients are socat processes the
    // parent runs (exec'd programs).
    let script = r#"
import os, sys, socketserver, subprocess
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        peer = self.connection.getpeername()
        line = self.rfile.readline()
        self.wfile.write(("%s %d " % peer).encode() + line.upper())
server = socketserver.ForkingTCPServer(("127.0.0.1", 0), Echo)
port = server.server_address[1]
pid = os.fork()
if pid == 0:
    server.serve_forever()
    os._exit(0)
server.socket.close()
for i in range(3):
    out = subprocess.run(["socat", "-", "TCP:127.0.0.1:%d" % port],
                         input=b"hello %d\n" % i, capture_output=True, check=True).stdout
    host, cport, word, n = out.split()
    assert host == b"127.0.0.1" and int(cport) >= 1024, out
    assert (word, n) == (b"HELLO", str(i).encode()), out
os.kill(pid, 15)
os.waitpid(pid, 0)
print("answered 3")
"#;
    python_prints(
        "a_forking_server_and_exec_d_clients_share_the_stack",
        script,
        "answered 3",
    );
}

#[test]
fn socat_forks_a_child_per_connection_on_the_stack() {
    // socat's forked children serve the connections (with an exec'd cat): they
    // move the bytes and ask the stack about the sockets they inherited.
    let script = r#"
import socket, subprocess
server = subprocess.Popen(["socat", "-d", "-d", "TCP-LISTEN:7000,bind=127.0.0.1,fork,reuseaddr",
                           "EXEC:cat"], stderr=subprocess.PIPE)
for line in server.stderr:
    if b"listening on" in line:
        break
for i in range(3):
    with socket.create_connection(("127.0.0.1", 7000)) as c:
        sent = b"line %d\n" % i * 5000
        c.sendall(sent)
        c.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            part = c.recv(65536)
            if not part:
                break
            got += part
        assert got == sent, (len(got), len(sent))
server.terminate()
server.wait()
print("echoed")
"#;
    python_prints(
        "socat_forks_a_child_per_connection_on_the_stack",
        script,
        "echoed",
    );
}

#[test]
fn datagrams_between_a_parent_and_its_forked_child() {
    // The child answers on the socket it inherited; each datagram keeps its
    // source, up to 60,000 bytes; FIONREAD gives the next one's length.
    let script = r#"
import array, fcntl, os, select, socket, termios
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 0))
port = server.getsockname()[1]
pid = os.fork()
if pid == 0:
    for i in range(3):
        data, peer = server.recvfrom(65536)
        server.sendto(data.upper(), peer)
    os._exit(0)
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.bind(("127.0.0.1", 0))
for size in (5, 1400, 60000):
    sent = b"x" * size
    client.sendto(sent, ("127.0.0.1", port))
    select.select([client], [], [])
    waiting = array.array("i", [0])
    fcntl.ioctl(client, termios.FIONREAD, waiting)
    assert waiting[0] == size, (waiting[0], size)
    data, peer = client.recvfrom(65536)
    assert data == sent.upper() and peer == ("127.0.0.1", port), (len(data), peer)
_, status = os.waitpid(pid, 0)
assert status == 0
print("answered")
"#;
    python_prints(
        "datagrams_between_a_parent_and_its_forked_child",
        script,
        "answered",
    );
}

#[test]
fn a_thread_waiting_in_the_host_holds_up_no_other() {
    // A thread blocks in a datagram receive, which waits in the host; the main
    // thread, through its own connection, makes a socket and sends it a datagram.
    let script = r#"
import socket, threading
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 0))
got = []
waiter = threading.Thread(target=lambda: got.append(server.recvfrom(100)[0]))
waiter.start()
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.sendto(b"wake", server.getsockname())
waiter.join()
print(got[0].decode())
"#;
    python_prints(
        "a_thread_waiting_in_the_host_holds_up_no_other",
        script,
        "wake",
    );
}

#[test]
fn an_exec_d_program_knows_the_socket_it_inherited() {
    // The connection becomes the stdin of an exec'd program, which never
    // received it from the host: it asks what it is, and answers with its
    // family and peer.
    let script = r#"
import os, socket
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
pid = os.fork()
if pid == 0:
    conn, _ = listener.accept()
    os.dup2(conn.fileno(), 0)
    os.execvp("python3", ["python3", "-c", "import socket; s = socket.socket(fileno=0); "
        "s.sendall(b'%d %s' % (s.family, s.getpeername()[0].encode()))"])
client = socket.create_connection(listener.getsockname())
print(client.recv(100).decode())
os.waitpid(pid, 0)
"#;
    python_prints(
        "an_exec_d_program_knows_the_socket_it_inherited",
        script,
        "2 127.0.0.1",
    );
}

#[test]
fn an_asyncio_echo_server_with_100_clients() {
    // One thread, non-blocking connects and accepts, epoll.
    let script = r#"
import asyncio
async def handle(reader, writer):
    writer.write((await reader.read(100)).upper())
    await writer.drain()
    writer.close()
async def client(i, port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello %d" % i)
    await writer.drain()
    answer = await reader.read(100)
    writer.close()
    return answer == b"HELLO %d" % i
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(sum(await asyncio.gather(*(client(i, port) for i in range(100)))))
asyncio.run(main())
"#;
    python_prints("an_asyncio_echo_server_with_100_clients", script, "100");
}

#[test]
fn a_signal_interrupts_a_blocking_accept() {
    let script = r#"
import signal, socket
class Alarm(Exception):
    pass
def on_alarm(*args):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
signal.setitimer(signal.ITIMER_REAL, 0.2)
try:
    s.accept()
except Alarm:
    print("interrupted")
"#;
    python_prints(
        "a_signal_interrupts_a_blocking_accept",
        script,
        "interrupted",
    );
}

#[test]
fn the_last_bytes_of_a_program_that_exits_are_delivered() {
    if !namespaces("the_last_bytes_of_a_program_that_exits_are_delivered") {
        return;
    }
    let switch = common::Switch::start();
    // The receiver counts to end of stream, then prints the count.
    let receiver = r#"
import socket, sys, time
s = socket.socket()
s.bind(("10.0.0.1", 9000))
s.listen()
print("ready", flush=True)
c, _ = s.accept()
# A slow reader: the sender's last bytes are still in its stack when it exits.
n = 0
while True:
    time.sleep(0.005)
    b = c.recv(8192)
    if not b:
        break
    n += len(b)
print(n, flush=True)
"#;
    let server = stack_on(&switch, "10.0.0.1");
    let mut args: Vec<&str> = server.iter().map(String::as_str).collect();
    args.extend(["--", "python3", "-c", receiver]);
    let receiver = Server::start(&args);
    // The sender exits at once after its last write: no close, no shutdown.
    let sender = r#"
import os, socket
s = socket.create_connection(("10.0.0.1", 9000))
s.sendall(b"x" * (1 << 20))
os._exit(0)
"#;
    let client = stack_on(&switch, "10.0.0.2");
    let mut args: Vec<&str> = client.iter().map(String::as_str).collect();
    args.extend(["--", "python3", "-c", sender]);
    let out = run(&args, "the sender");
    assert_success(&out, "the sender");
    let (out, rest) = receiver.finish();
    assert_success(&out, "the receiver");
    assert_eq!(rest.trim(), (1 << 20).to_string(), "bytes received");
}

#[test]
fn a_static_binary_is_refused() {
    let out = Command::new(vdestack())
        .args(["run", "--", "/sbin/ldconfig", "-p"])
        .env("VDESTACK_LIBRARY", built_lib())
        .output()
        .expect("run vdestack");
    assert_eq!(out.status.code(), Some(126));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("statically linked"), "{stderr}");
    assert!(out.stdout.is_empty(), "it did not run");
}

#[test]
fn a_bad_cmd_gives_ips_status_and_message() {
    let out = Command::new(vdestack())
        .args(["run", "--cmd", "/bin/ip link set nosuch up", "--", "true"])
        .env("VDESTACK_LIBRARY", built_lib())
        .output()
        .expect("run vdestack");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Cannot find device \"nosuch\""), "{stderr}");
}

#[test]
fn a_stack_that_cannot_be_made_runs_nothing() {
    let dir = common::TempDir::new("run-nosw");
    let vnl = format!("vde://{}", dir.path().join("nosuch").display());
    let marker = dir.path().join("ran");
    let marker_arg = marker.to_string_lossy().into_owned();
    let out = Command::new(vdestack())
        .args(["run", "--vnl", &vnl, "--", "touch", &marker_arg])
        .env("VDESTACK_LIBRARY", built_lib())
        .output()
        .expect("run vdestack");
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot make the stack"), "{stderr}");
    assert!(!Path::new(&marker).exists(), "the program ran");
    // No interface to ask a lease on (loopback only): the program is not run.
    let dhcp = Command::new(vdestack())
        .args(["run", "--dhcp", "--", "touch", &marker_arg])
        .env("VDESTACK_LIBRARY", built_lib())
        .output()
        .expect("run vdestack");
    assert_eq!(dhcp.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&dhcp.stderr);
    assert!(stderr.contains("--dhcp: no lease on vde0"), "{stderr}");
    assert!(!Path::new(&marker).exists(), "the program ran");
}

#[test]
fn dhcp_configures_the_programs_stack() {
    let test = "dhcp_configures_the_programs_stack";
    if !namespaces(test) {
        return;
    }
    let switch = common::Switch::start();
    let dir = common::TempDir::new("run-dhcp");
    let Some(_peer) = common::udhcpd_peer(test, &switch, &dir, 600) else {
        return;
    };
    // The program finds its address on its interface and reaches the server
    // through the lease's subnet.
    let script = "import socket, fcntl, struct\n\
                  s = socket.socket()\n\
                  req = struct.pack('256s', b'vde0')\n\
                  addr = fcntl.ioctl(s.fileno(), 0x8915, req)[20:24]\n\
                  print(socket.inet_ntoa(addr).rsplit('.', 1)[0])\n\
                  c = socket.create_connection(('10.0.0.1', 7000), timeout=10)\n\
                  print(c.recv(100).decode().strip())";
    let vnl = switch.vnl();
    let out = run(
        &["--vnl", &vnl, "--dhcp", "--", "python3", "-c", script],
        test,
    );
    assert_success(&out, test);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "10.0.0\nhello\n");
}

#[test]
fn the_exit_status_is_the_programs() {
    let run = |script: &str| {
        Command::new(vdestack())
            .args(["run", "--", "sh", "-c", script])
            .env("VDESTACK_LIBRARY", built_lib())
            .status()
            .expect("run vdestack")
            .code()
    };
    assert_eq!(run("exit 3"), Some(3));
    assert_eq!(run("kill -TERM $$"), Some(128 + 15));
    // ^C (SIGINT to the whole process group) is the program's to take: vdestack
    // outlives it and tells how it ended.
    let interrupted = Command::new(vdestack())
        .args(["run", "--", "sh", "-c", "kill -INT 0; exit 9"])
        .env("VDESTACK_LIBRARY", built_lib())
        .process_group(0)
        .status()
        .expect("run vdestack");
    assert_eq!(interrupted.code(), Some(128 + libc::SIGINT));
}

/// The program sees the stack's interfaces, not the host's: `if_nametoindex`
/// and `if_indextoname` (python's `socket.if_nametoindex`...) answer from the
/// host's stack. No namespace needed: the host has no interface of that name,
/// and a loopback-only stack no index 2.
#[test]
fn interface_names_are_the_stacks() {
    let switch = common::Switch::start();
    let script = "import socket\n\
        print(socket.if_nametoindex('stk9'), socket.if_indextoname(2), socket.if_indextoname(1))\n\
        try:\n    socket.if_nametoindex('nosuch0')\nexcept OSError:\n    print('none')\n";
    let out = Command::new(vdestack())
        .args([
            "run",
            "--vnl",
            &switch.vnl(),
            "--ifname",
            "stk9",
            "--",
            "python3",
            "-c",
            script,
        ])
        .env("VDESTACK_LIBRARY", built_lib())
        .output()
        .expect("run vdestack");
    assert_success(&out, "python3 under vdestack run");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 stk9 lo\nnone\n");

    let script = "import socket\ntry:\n    print(socket.if_indextoname(2))\nexcept OSError:\n    print('none')\n";
    let out = Command::new(vdestack())
        .args(["run", "--", "python3", "-c", script])
        .env("VDESTACK_LIBRARY", built_lib())
        .output()
        .expect("run vdestack");
    assert_success(&out, "python3 under vdestack run, loopback only");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "none\n");
}

/// A name server and a web server at 10.0.0.1, on a `vdestack run` of their own:
/// server.test has A 10.0.0.1 and no AAAA, every other name NXDOMAIN. Its answers
/// are written here byte by byte (RFC 1035). Prints `ready` once both listen.
const NAME_AND_WEB_SERVER: &str = r#"
import http.server, socket, threading
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d.bind(('10.0.0.1', 53))
def dns():
    while True:
        q, peer = d.recvfrom(512)
        i = 12
        while q[i]:
            i += 1 + q[i]
        name, qtype, end = q[12:i + 1].lower(), q[i + 1:i + 3], i + 5
        if name == b'\x06server\x04test\x00' and qtype == b'\x00\x01':
            reply = q[:2] + b'\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00' + q[12:end] \
                + b'\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01'
        elif name == b'\x011\x010\x010\x0210\x07in-addr\x04arpa\x00' and qtype == b'\x00\x0c':
            reply = q[:2] + b'\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00' + q[12:end] \
                + b'\xc0\x0c\x00\x0c\x00\x01\x00\x00\x00\x3c\x00\x0d\x06server\x04test\x00'
        elif name == b'\x06server\x04test\x00':
            reply = q[:2] + b'\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00' + q[12:end]
        else:
            reply = q[:2] + b'\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00' + q[12:end]
        d.sendto(reply, peer)
threading.Thread(target=dns, daemon=True).start()
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', '5')
        self.end_headers()
        self.wfile.write(b'hello')
    def log_message(self, *args):
        pass
web = http.server.HTTPServer(('10.0.0.1', 8000), Hello)
print('ready', flush=True)
web.serve_forever()
"#;

/// Under `vdestack run --dns`, python's `getaddrinfo`, `gethostbyname` and
/// `getnameinfo` (a PTR record), C's
/// `gethostbyname` (perl's), `res_query` (through ctypes), and curl, resolve
/// through the stack's name server (on a second `vdestack run`), not the host's
/// resolver. No namespace needed: the host knows no `server.test`, and 10.0.0.1
/// is on the stacks' switch only.
#[test]
fn names_resolve_through_the_stacks_name_server() {
    let switch = common::Switch::start();
    let server_args = stack_on(&switch, "10.0.0.1");
    let mut server = Command::new(vdestack())
        .arg("run")
        .args(&server_args)
        .args(["--", "python3", "-c", NAME_AND_WEB_SERVER])
        .env("VDESTACK_LIBRARY", built_lib())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the server's first line");
    let client_args = stack_on(&switch, "10.0.0.2");
    let client = |program: &[&str]| {
        Command::new(vdestack())
            .arg("run")
            .args(&client_args)
            .args(["--dns", "10.0.0.1", "--"])
            .args(program)
            .env("VDESTACK_LIBRARY", built_lib())
            .stdin(Stdio::null())
            .output()
            .expect("run vdestack")
    };
    let script = "import socket\n\
        print(sorted({a[4][0] for a in socket.getaddrinfo('server.test', 80)}))\n\
        print(socket.getaddrinfo('server.test', 'http', socket.AF_INET, socket.SOCK_STREAM)[0][4])\n\
        print(socket.gethostbyname('server.test'))\n\
        print(socket.getnameinfo(('10.0.0.1', 80), 0))\n\
        print(socket.getnameinfo(('10.0.0.1', 80), socket.NI_NOFQDN))\n\
        print(socket.getnameinfo(('10.0.0.9', 80), 0))\n\
        try:\n    socket.getnameinfo(('10.0.0.9', 80), socket.NI_NAMEREQD)\n\
        except socket.gaierror:\n    print('no name')\n\
        try:\n    socket.getaddrinfo('nosuch.test', 80)\n\
        except socket.gaierror as e:\n    print('gaierror', e.errno == socket.EAI_NONAME)\n";
    let out = client(&["python3", "-c", script]);
    let curl = client(&["curl", "-sS", "--fail", "http://server.test:8000/"]);
    // res_query, called as C does (ctypes finds the preloaded library's first).
    let res = client(&[
        "python3",
        "-c",
        "import ctypes\n\
         libc = ctypes.CDLL(None)\n\
         buf = ctypes.create_string_buffer(512)\n\
         n = libc.res_query(b'server.test', 1, 1, buf, 512)\n\
         print(n > 12, list(buf.raw[n - 4:n]))\n\
         print(libc.res_query(b'nosuch.test', 1, 1, buf, 512))\n",
    ]);
    // perl's gethostbyname is C's.
    let perl = client(&[
        "perl",
        "-e",
        "my @h = gethostbyname('server.test') or die 'not found'; \
         print join('.', unpack('C4', $h[4])), ' ', (gethostbyname('nosuch.test') ? 'found' : 'none'), qq(\\n);",
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(line.trim(), "ready");
    assert_success(&out, "python3 under vdestack run --dns");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "['10.0.0.1']\n('10.0.0.1', 80)\n10.0.0.1\n('server.test', 'http')\n('server', 'http')\n\
         ('10.0.0.9', 'http')\nno name\ngaierror True\n"
    );
    assert_success(&curl, "curl under vdestack run --dns");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "hello");
    assert_success(&res, "res_query under vdestack run --dns");
    assert_eq!(
        String::from_utf8_lossy(&res.stdout),
        "True [10, 0, 0, 1]\n-1\n"
    );
    assert_success(&perl, "perl's gethostbyname under vdestack run --dns");
    assert_eq!(String::from_utf8_lossy(&perl.stdout), "10.0.0.1 none\n");
}

/// `vdestack run --dhcp` on `slirp://`: the program resolves a name through the
/// lease's name server, slirp's 10.0.2.3, which forwards it to the host's
/// resolver. That resolver is a local one (`common::local_resolver`: namespaces
/// whose `/etc/resolv.conf` says 127.0.0.1, where a test server answers), so no
/// query leaves the machine; `getent` runs in a further network namespace of
/// its own (`unshare -n`, `lo` down), where the local server cannot be reached
/// but through the stack.
#[test]
fn slirp_names_resolve_through_the_leases_name_server() {
    let test = "slirp_names_resolve_through_the_leases_name_server";
    let slirp = ["/usr/lib/x86_64-linux-gnu/vdeplug", "/usr/lib/vdeplug"]
        .iter()
        .any(|dir| Path::new(dir).join("libvdeplug_slirp.so").exists());
    if !slirp {
        eprintln!("SKIPPED {test}: libvdeplug-slirp (slirp://) is not installed");
        return;
    }
    let dir = common::TempDir::new("run-slirp-dns");
    let program = |name: &str| {
        let vdestack = vdestack();
        let args = [
            vdestack, "run", "--vnl", "slirp://", "--dhcp", "--", "unshare", "-n", "getent",
            "hosts", name,
        ];
        let mut cmd = common::local_resolver(test, &dir, &args)?;
        let child = cmd
            .env("VDESTACK_LIBRARY", built_lib())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vdestack");
        Some(finish(child, test))
    };
    let Some(found) = program("example.test") else {
        return;
    };
    assert_success(&found, "getent hosts example.test under vdestack run");
    assert_eq!(
        String::from_utf8_lossy(&found.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["10.9.9.9", "example.test"]
    );
    let missing = program("nosuch.test").expect("namespaces");
    assert_eq!(missing.status.code(), Some(2), "getent: not found");
}
