//! Nothing leaks: connections and stacks come and go, the descriptor count does not
//! grow. One test function in its own binary, because the count is process-wide.

mod common;

use common::{open_fds, Net, Wire};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};
use vdestack::{Stack, TcpListener, TcpStream, UdpSocket};

/// Waits (bounded) until the descriptor count is back to `limit`: closing a
/// connection finishes in the pump thread, a moment after the application's close.
fn settle(limit: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_fds() > limit {
        assert!(
            Instant::now() < deadline,
            "{what}: {} descriptors open, expected at most {limit}",
            open_fds()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn no_descriptor_leaks() {
    let before_everything = open_fds();

    // 100 stacks created and dropped, on a switch, over ptp and loopback-only.
    let sw = common::Switch::start();
    let baseline = open_fds();
    for i in 0..100 {
        let stack = match i % 3 {
            0 => Stack::new(&sw.vnl(), None).unwrap(),
            1 => Stack::new("", None).unwrap(),
            _ => {
                let dir = common::TempDir::new("leak-ptp");
                let vnl = format!("ptp://{}", dir.path().join("p").display());
                Stack::new(&vnl, None).unwrap()
            }
        };
        stack.cmd("/bin/ip link set lo up").unwrap();
        let l = TcpListener::bind(&stack, "127.0.0.1:0").unwrap();
        let c = TcpStream::connect(&stack, l.local_addr().unwrap()).unwrap();
        let _ = l.accept().unwrap();
        drop(c);
        drop(stack); // sockets outlive the stack here: l is still open
        drop(l);
    }
    assert_eq!(open_fds(), baseline, "after 100 stack create/drop cycles");
    drop(sw);

    // 1,000 connection cycles between two stacks.
    let net = Net::new(Wire::Switch);
    let listener = TcpListener::bind(&net.a, "0.0.0.0:5555").unwrap();
    let baseline = open_fds();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..1000 {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4];
                conn.read_exact(&mut buf).unwrap();
                conn.write_all(&buf).unwrap();
            }
        });
        for i in 0..1000u32 {
            let mut c = TcpStream::connect(&net.b, "10.0.0.1:5555").unwrap();
            c.write_all(&i.to_be_bytes()).unwrap();
            let mut buf = [0u8; 4];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(u32::from_be_bytes(buf), i);
            if i % 2 == 0 {
                c.shutdown(Shutdown::Write).unwrap();
            }
        }
    });
    // Failed connects leave nothing behind either.
    for _ in 0..100 {
        let err = TcpStream::connect(&net.b, "10.0.0.1:5556").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
    }
    settle(
        baseline,
        "after 1,000 connection cycles and 100 refused connects",
    );

    // 500 UDP sockets opened, used (half of them connected) and closed.
    for i in 0..500 {
        let s = UdpSocket::bind(&net.b, "0.0.0.0:0").unwrap();
        if i % 2 == 0 {
            s.connect("10.0.0.1:5557").unwrap();
            s.send(b"x").unwrap();
        } else {
            s.send_to(b"x", "10.0.0.1:5557").unwrap();
        }
    }
    settle(baseline, "after 500 UDP sockets");
    drop(listener);
    drop(net);
    settle(before_everything, "after dropping everything");
}
