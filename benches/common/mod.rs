//! What the benches share: a `vde_switch` of their own in a temporary directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `vde_switch` started for one workload, killed and its directory removed on drop.
pub struct Switch {
    child: Child,
    dir: PathBuf,
}

impl Switch {
    /// Starts a switch with room for `ports` ports (`vde_switch` has 32 unless told)
    /// and waits until it accepts connections; `tag` names its directory.
    pub fn start(tag: &str, ports: usize) -> Switch {
        let dir = std::env::temp_dir().join(format!("vdestack-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("vde_switch")
            .arg("-s")
            .arg(dir.join("sw"))
            .arg("-n")
            .arg(ports.max(32).to_string())
            // It exits at end of file on stdin: keep that open.
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vde_switch (Debian package vde2)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(dir.join("sw/ctl")).is_err() {
            assert!(Instant::now() < deadline, "vde_switch did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        Switch { child, dir }
    }

    /// The switch's directory, the locator `vde_open` takes.
    pub fn path(&self) -> PathBuf {
        self.dir.join("sw")
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
