//! hyper serving and fetching HTTP/1.1 between two private stacks, with tokio.
//!
//! ```text
//! cargo run --release --features tokio --example hyper_hello
//! cargo run --release --features tokio --example hyper_hello -- vde:///tmp/sw
//! ```
//!
//! With no argument it starts a `vde_switch` in a temporary directory; given a VDE
//! locator (a switch of yours, `ptp://`...), it plugs both stacks in there. The
//! server stack (10.0.0.1) answers every request with a greeting; the client
//! stack (10.0.0.2) fetches it through a `vdestack::tokio::TcpStream`, which
//! hyper drives as any tokio stream (through `hyper_util::rt::TokioIo`).

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vdestack::tokio::{TcpListener, TcpStream};
use vdestack::Stack;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (vnl, switch) = match std::env::args().nth(1) {
        Some(vnl) => (vnl, None),
        None => {
            let switch = Switch::start()?;
            (switch.vnl(), Some(switch))
        }
    };
    let result = hello(&vnl).await;
    drop(switch);
    result
}

async fn hello(vnl: &str) -> Result<(), Error> {
    let server_stack = Stack::new(vnl, None)?;
    let client_stack = Stack::new(vnl, None)?;
    server_stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
    client_stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;

    // The server: one task per connection, as with tokio::net::TcpListener.
    let listener = TcpListener::bind(&server_stack, "10.0.0.1:80").await?;
    println!("server: listening on {}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                let greeting = format!("hello {peer}, you asked for {}\n", request.uri());
                async move {
                    Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(greeting))))
                }
            });
            tokio::spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = connection.await {
                    eprintln!("server: {e}");
                }
            });
        }
    });

    // The client: hyper's HTTP/1.1 connection over a stream of the client stack.
    let stream = TcpStream::connect(&client_stack, "10.0.0.1:80").await?;
    println!("client: connected from {}", stream.local_addr()?);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/hello")
        .header("host", "10.0.0.1")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    println!("client: {}", response.status());
    let body = response.into_body().collect().await?.to_bytes();
    print!("client: {}", String::from_utf8_lossy(&body));
    Ok(())
}

/// A `vde_switch` of the example's own, in a temporary directory, stopped and
/// removed when dropped.
struct Switch {
    child: Child,
    dir: std::path::PathBuf,
}

impl Switch {
    fn start() -> Result<Switch, Error> {
        let dir = std::env::temp_dir().join(format!("vdestack-hyper-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let sock = dir.join("switch");
        let child = Command::new("vde_switch")
            .arg("-s")
            .arg(&sock)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start vde_switch (apt-get install vde2): {e}"))?;
        let switch = Switch { child, dir };
        // Ready when its control socket accepts (the file exists before listen(2)).
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(sock.join("ctl")).is_err() {
            if Instant::now() > deadline {
                return Err("vde_switch did not start".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(switch)
    }

    fn vnl(&self) -> String {
        format!("vde://{}", self.dir.join("switch").display())
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
