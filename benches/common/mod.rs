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

    /// CPU seconds (user and system) the switch process has used so far, from
    /// `/proc/PID/stat`: what the switch's own forwarding cost, to take out of a
    /// machine-wide figure.
    #[allow(dead_code)] // not every bench reads it
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the switch's /proc/PID/stat");
        // The command name (field 2) may hold spaces: count fields after its ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("a stat line")
            .1
            .split_whitespace()
            .collect();
        // Fields 14 and 15 of the line (utime, stime) are 12 and 13 after the name.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    /// The switch's process id.
    #[allow(dead_code)] // not every bench reads it
    pub fn pid(&self) -> u32 {
        self.child.id()
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
