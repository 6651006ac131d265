//! Nothing leaks: connections and stacks come and go, the descriptor count does not
//! grow. One test function in its own binary, because the count is process-wide.

mod common;

use common::{open_fds, Net, Wire};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};
use vdestack::{Backend, Stack, TcpListener, TcpStream, UdpSocket};

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

/// The threads of this process.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn no_descriptor_leaks() {
    let before_everything = open_fds();

    // 100 stacks created and dropped, on a switch, over ptp and loopback-only.
    // A stack made after another was dropped runs on the same thread.
    let pump_thread = |ifname: &str| {
        let stack = Stack::builder().ifname(ifname).build().unwrap();
        // The thread names itself as it takes the pump: wait for it (bounded).
        let deadline = Instant::now() + Duration::from_secs(10);
        let tid = loop {
            let found = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .flatten()
                .find(|task| {
                    let comm = std::fs::read_to_string(task.path().join("comm"));
                    comm.is_ok_and(|comm| comm.trim() == format!("vdestack-{ifname}"))
                });
            if let Some(task) = found {
                break task.file_name();
            }
            assert!(
                Instant::now() < deadline,
                "no thread named vdestack-{ifname}"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        drop(stack);
        tid
    };
    assert_eq!(pump_thread("reuse0"), pump_thread("reuse1"));

    let sw = common::Switch::start();
    let baseline = open_fds();
    let threads_before = threads();
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
    // A pump's thread waits a while for the next stack, and at most 4 wait.
    assert!(
        threads() <= threads_before + 4,
        "{} threads after 100 stacks one after another, {threads_before} before",
        threads()
    );
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

    kernel_stacks_leave_nothing_behind();
}

/// The descriptors open in process `pid`.
fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// 50 kernel stacks created, used and dropped leave no descriptor here, no helper
/// process, and no port in the switch (its descriptor count comes back).
fn kernel_stacks_leave_nothing_behind() {
    if !common::kernel_available("fd_leaks: 50 kernel stacks") {
        return;
    }
    let sw = common::Switch::start();
    let mut children = common::child_processes();
    children.sort_unstable();
    assert_eq!(children.len(), 1, "only the switch: {children:?}");
    let switch_fds = fds_of(children[0]);
    let baseline = open_fds();
    for i in 0..50 {
        let vnl = if i % 2 == 0 { sw.vnl() } else { String::new() };
        let stack = Stack::builder()
            .vnl(&vnl)
            .backend(Backend::Kernel)
            .build()
            .unwrap();
        if i == 0 {
            assert!(fds_of(children[0]) > switch_fds, "the port shows");
            assert_eq!(common::child_processes().len(), 2, "the helper shows");
        }
        stack.cmd("/bin/ip link set lo up").unwrap();
        let l = TcpListener::bind(&stack, "127.0.0.1:0").unwrap();
        let c = TcpStream::connect(&stack, l.local_addr().unwrap()).unwrap();
        let _ = l.accept().unwrap();
        drop(c);
        drop(stack); // a kernel socket outlives its stack: l is still open
        drop(l);
    }
    assert_eq!(open_fds(), baseline, "after 50 kernel stacks");
    let mut left = common::child_processes();
    left.sort_unstable();
    assert_eq!(left, children, "helper processes left behind");
    // The switch frees a port when it sees the plug's hang-up, a moment later.
    let deadline = Instant::now() + Duration::from_secs(20);
    while fds_of(children[0]) > switch_fds {
        assert!(
            Instant::now() < deadline,
            "the switch holds {} descriptors, {switch_fds} before: ports leaked",
            fds_of(children[0])
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
