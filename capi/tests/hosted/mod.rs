//! What the suites that run programs under `vdestack run` (`run.rs`,
//! `programs.rs`) share: the binary and library cargo built, a bound on how long
//! a program may run, and test data.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Output};
use std::time::Duration;

/// How long a program may run before it counts as hung.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The `vdestack` binary cargo built for this test.
pub fn vdestack() -> &'static str {
    env!("CARGO_BIN_EXE_vdestack")
}

/// The library cargo built with this test (see `capi.rs`: `deps/` is the fresh
/// one).
pub fn built_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the test's directory");
    [deps, deps.parent().unwrap_or(deps)]
        .iter()
        .map(|dir| dir.join("libvdestack_capi.so"))
        .find(|lib| lib.is_file())
        .expect("libvdestack_capi.so built beside the test")
}

/// Waits for `child` and reads its output, at most [`TIMEOUT`] (then kills it
/// and fails).
pub fn finish(child: Child, what: &str) -> Output {
    let pid = child.id() as libc::pid_t;
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match outcome.recv_timeout(TIMEOUT) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // SAFETY: kill takes a pid and a signal; the child is not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let out = outcome.recv().expect("the waiter").expect("wait");
            panic!(
                "{what} hung; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Fails, with what the program printed, unless it succeeded.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `len` bytes that differ from one position to the next.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
