//! Fixtures for the link tests: a temporary directory and a `vde_switch` of the
//! test's own.

use super::{Link, VdeLink};
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for anything before failing.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "vdestack-link-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("create the test's temp dir");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `vde_switch` child process, killed on drop.
///
/// It runs in the foreground (no `-d`): then it reads management commands from its
/// stdin and exits at end of file, so stdin is a pipe held open here (a `/dev/null`
/// stdin makes it exit at once), which also ends the switch with the test process.
/// `--rcfile /dev/null` keeps any system or user configuration out.
pub(crate) struct Switch {
    child: Child,
    _stdin: ChildStdin,
    pub(crate) sock: PathBuf,
}

impl Switch {
    pub(crate) fn start(dir: &Path) -> Switch {
        let sock = dir.join("sw");
        let mut child = Command::new("vde_switch")
            .arg("--sock")
            .arg(&sock)
            .arg("--rcfile")
            .arg("/dev/null")
            // More ports than a test opens in all (32 by default): a switch
            // under load was seen keeping all 31 ports of plugs opened and
            // closed in a loop, its control connections gone, and then never
            // answering the next open.
            .arg("--numports")
            .arg("256")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vde_switch (Debian package vde2)");
        let stdin = child.stdin.take().expect("piped stdin");
        let switch = Switch {
            child,
            _stdin: stdin,
            sock,
        };
        switch.wait_ready();
        switch
    }

    /// Bounded readiness wait: until a plug can connect to the new switch.
    fn wait_ready(&self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match VdeLink::open(&self.vnl(), "readiness probe") {
                Ok(_) => return,
                Err(err) => assert!(
                    Instant::now() < deadline,
                    "vde_switch at {} not ready: {err}",
                    self.sock.display()
                ),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn vnl(&self) -> String {
        format!("vde://{}", self.sock.display())
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits (bounded) until `fd` is readable; false on timeout.
pub(crate) fn wait_readable(fd: RawFd, timeout: Duration) -> bool {
    // SAFETY: the callers pass a link's open data fd, and the link outlives the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    crate::sys::poll_one(fd, crate::sys::PollFlags::IN, Some(timeout))
        .is_ok_and(|revents| !revents.is_empty())
}

/// Receives one frame from a link, waiting for it at most `TIMEOUT`.
pub(crate) fn recv_frame(link: &mut dyn Link) -> Vec<u8> {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = vec![0u8; super::MAX_STREAM_FRAME];
    loop {
        match link.recv(&mut buf) {
            Ok(n) => return buf[..n].to_vec(),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    wait_readable(link.data_fd().expect("data fd"), left),
                    "no frame within {TIMEOUT:?}"
                );
            }
            Err(err) => panic!("recv: {err}"),
        }
    }
}
