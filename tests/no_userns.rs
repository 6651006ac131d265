//! The userspace stack needs no user namespace: it works where creating one fails.
//!
//! Where this machine allows user namespaces, the test re-runs itself inside
//! `unshare -Urn` (a network namespace of its own too: nothing it does can reach a real
//! network), after setting `max_user_namespaces` to 0 there, so that creating a
//! user namespace fails (ENOSPC), as on hardened kernels and in locked-down CI.
//! Where they are already unavailable, it runs directly.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use vdestack::{Stack, TcpListener, TcpStream};

const INNER: &str = "VDESTACK_NO_USERNS_INNER";

fn can_create_user_namespace() -> bool {
    Command::new("unshare")
        .args(["-U", "true"])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn stacks_talk() {
    let sw = common::Switch::start();
    let a = Stack::new(&sw.vnl(), None).unwrap();
    let b = Stack::new(&sw.vnl(), None).unwrap();
    common::configure(&a, "vde0", "10.0.0.1/24");
    common::configure(&b, "vde0", "10.0.0.2/24");
    let listener = TcpListener::bind(&a, "0.0.0.0:7").unwrap();
    let mut client = TcpStream::connect(&b, "10.0.0.1:7").unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"no namespaces here").unwrap();
    let mut buf = [0u8; 18];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"no namespaces here");
}

#[test]
fn works_where_user_namespaces_are_forbidden() {
    if std::env::var_os(INNER).is_some() || !can_create_user_namespace() {
        assert!(
            !can_create_user_namespace(),
            "this run was meant to have user namespaces disabled"
        );
        stacks_talk();
        return;
    }
    rerun_without_user_namespaces("works_where_user_namespaces_are_forbidden");
}

/// Runs the test `name` of this binary again, inside a user namespace where
/// creating another one fails (`max_user_namespaces` = 0), and asserts it passed.
fn rerun_without_user_namespaces(name: &str) {
    let me = std::env::current_exe().unwrap();
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec '{}' --exact {name} --test-threads=1",
        me.display()
    );
    let status = Command::new("unshare")
        .args(["-Urn", "sh", "-c", &script])
        .env(INNER, "1")
        .status()
        .unwrap();
    assert!(status.success(), "the run without user namespaces failed");
}

/// Where user namespaces cannot be created, a kernel stack is refused with an error
/// naming the cause, never a panic, a hang or a silent userspace stack.
fn kernel_stack_is_refused_clearly() {
    let sw = common::Switch::start();
    let err = Stack::builder()
        .vnl(&sw.vnl())
        .backend(vdestack::Backend::Kernel)
        .build()
        .expect_err("no kernel stack without user namespaces");
    let cause = if cfg!(feature = "kernel-ns") {
        "cannot create a user namespace"
    } else {
        "without the feature kernel-ns"
    };
    assert!(err.to_string().contains(cause), "{err}");
    // The userspace backend is unaffected.
    stacks_talk();
}

#[test]
fn kernel_backend_fails_clearly_where_user_namespaces_are_forbidden() {
    const NAME: &str = "kernel_backend_fails_clearly_where_user_namespaces_are_forbidden";
    if std::env::var_os(INNER).is_some() || !can_create_user_namespace() {
        kernel_stack_is_refused_clearly();
        return;
    }
    rerun_without_user_namespaces(NAME);
}
