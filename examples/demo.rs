//! Two private TCP/IP stacks talking over a VDE network that the demo sets up itself.
//!
//! ```text
//! cargo run --release --example demo
//! ```
//!
//! It starts a `vde_switch` in a temporary directory, plugs two stacks into it,
//! configures them with the same `ip` commands the reference libvdestack runs in a
//! namespace, and has them talk: a ping, a UDP datagram and its answer, then TCP:
//! an echo and 64 MiB one way.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vdestack::{PingSocket, Stack, TcpListener, TcpStream, UdpSocket};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A switch of our own, in a directory of our own.
    let dir = std::env::temp_dir().join(format!("vdestack-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sock = dir.join("switch");
    let mut switch = Command::new("vde_switch")
        .arg("-s")
        .arg(&sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        // It says "vde_switch: " on its way out; the demo reports failures itself.
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start vde_switch (apt-get install vde2): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    // Ready when its control socket accepts (the file exists before listen(2)).
    while std::os::unix::net::UnixStream::connect(sock.join("ctl")).is_err() {
        if Instant::now() > deadline {
            return Err("vde_switch did not start".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let vnl = format!("vde://{}", sock.display());
    println!("switch: {vnl}");

    let result = talk(&vnl);

    let _ = switch.kill();
    let _ = switch.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn talk(vnl: &str) -> Result<(), Box<dyn std::error::Error>> {
    let server_stack = Stack::new(vnl, None)?;
    let client_stack = Stack::new(vnl, None)?;
    server_stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
    client_stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;
    println!("server stack:");
    print!("{}", server_stack.cmd_output("/bin/ip addr show dev vde0")?);

    // ICMP echo from a ping socket (no raw socket needed, as on Linux).
    let ping = PingSocket::bind(&client_stack, "0.0.0.0".parse()?)?;
    ping.set_read_timeout(Some(Duration::from_secs(5)))?;
    let sent = Instant::now();
    ping.send_to(
        &PingSocket::echo_request(false, 1, b"ping"),
        "10.0.0.1".parse()?,
    )?;
    let mut reply = [0u8; 64];
    let (_, from) = ping.recv_from(&mut reply)?;
    println!("client: echo reply from {from} in {:?}", sent.elapsed());

    // A UDP datagram and its answer.
    let udp_server = UdpSocket::bind(&server_stack, "0.0.0.0:53")?;
    let udp_client = UdpSocket::bind(&client_stack, "0.0.0.0:0")?;
    udp_client.set_read_timeout(Some(Duration::from_secs(5)))?;
    udp_client.send_to(b"question", "10.0.0.1:53")?;
    let mut datagram = [0u8; 64];
    let (n, asker) = udp_server.recv_from(&mut datagram)?;
    println!(
        "server: {:?} from {asker}",
        String::from_utf8_lossy(&datagram[..n])
    );
    udp_server.send_to(b"answer", asker)?;
    let (n, _) = udp_client.recv_from(&mut datagram)?;
    println!("client: {:?}", String::from_utf8_lossy(&datagram[..n]));

    let listener = TcpListener::bind(&server_stack, "0.0.0.0:7")?;
    let server = std::thread::spawn(move || -> std::io::Result<u64> {
        // Echo the first line, then count what follows.
        let (mut conn, peer) = listener.accept()?;
        println!("server: connection from {peer}");
        let mut line = [0u8; 64];
        let n = conn.read(&mut line)?;
        conn.write_all(&line[..n])?;
        let mut sink = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = conn.read(&mut sink)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });

    let mut client = TcpStream::connect(&client_stack, "10.0.0.1:7")?;
    println!(
        "client: connected {} -> {}",
        client.local_addr()?,
        client.peer_addr()?
    );
    client.write_all(b"hello over VDE\n")?;
    let mut echo = [0u8; 15];
    client.read_exact(&mut echo)?;
    print!("client: echoed back: {}", String::from_utf8_lossy(&echo));

    let chunk = vec![0x42u8; 64 * 1024];
    let total = 64u64 << 20;
    let start = Instant::now();
    for _ in 0..total / chunk.len() as u64 {
        client.write_all(&chunk)?;
    }
    client.shutdown(std::net::Shutdown::Write)?;
    let received = server.join().expect("server thread")?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "client: sent {} MiB, server received {} MiB, {:.0} MB/s",
        total >> 20,
        received >> 20,
        received as f64 / secs / 1e6
    );
    if received != total {
        return Err("bytes went missing".into());
    }
    Ok(())
}
