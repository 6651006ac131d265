//! The C ABI, proven with C: the programs in `tests/capi/` are compiled with the
//! system C compiler against our `include/vdestack.h` (and `man_example.c` also
//! against Debian's reference header), linked with this crate's library, and run
//! against a `vde_switch` started here. Each exits 0 on success and prints the
//! failing call otherwise.
//!
//! Every program runs in a user and network namespace of its own (`unshare -Urn`)
//! with only `lo` up: the programs use the private addresses of their virtual
//! networks, and none of their packets (a kernel socket's, or one of a call the
//! library failed to interpose) may be tried on a real network. Where such a
//! namespace cannot be made, the tests that run programs are skipped with a
//! message. Inside it, `max_user_namespaces` is set to 0 first (except for the
//! kernel backend's runs): the reference libvdestack cannot create a stack in that
//! environment, so a passing program proves that our library ran (Debian's
//! `libvdestack.so.0` is installed beside it and would be picked up silently by a
//! wrong library path). `ldd` confirms it too.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a C program may run before it counts as hung.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(60);

/// The reference library of Debian's `libvdestack0`.
const REFERENCE_LIB: &str = "/usr/lib/x86_64-linux-gnu/libvdestack.so.0";
/// The reference header of Debian's `libvdestack-dev`.
const REFERENCE_HEADER: &str = "/usr/include/vdestack.h";

/// This crate's directory (`capi/`).
fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace's directory, where the Makefile is.
fn workspace_dir() -> &'static Path {
    manifest_dir().parent().expect("capi/ is in the workspace")
}

fn tmp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The library cargo built with this test (`libvdestack_capi.so`, installed as
/// `libvdestack.so.0`): `target/<profile>/deps/` first (where `cargo test` writes
/// it), else `target/<profile>/` (which only `cargo build` refreshes: a copy there
/// may be older than the test).
fn built_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the test's directory");
    let candidates = [deps, deps.parent().unwrap_or(deps)];
    for dir in candidates {
        let lib = dir.join("libvdestack_capi.so");
        if lib.is_file() {
            return lib;
        }
    }
    panic!(
        "libvdestack_capi.so not found in {} or {}: the crate must build its cdylib",
        candidates[0].display(),
        candidates[1].display()
    );
}

/// This run's scratch directory in the target's temp dir: compiled programs, the
/// library copy, install prefixes. Directories of earlier runs (whose process is
/// gone) are removed.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(entries) = std::fs::read_dir(tmp_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("capi-") {
                    if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = tmp_dir().join(format!("capi-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the run directory");
        dir
    })
}

/// A directory holding a copy of our library as `libvdestack.so.0` (the name a
/// program linked with `-lvdestack` asks the loader for) and a `libvdestack.so`
/// symlink for the link editor. A copy, made once, so that the cargo build run by
/// `make_install` cannot swap the file under a running program.
fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = run_dir().join("lib");
        std::fs::create_dir_all(&dir).expect("create library dir");
        std::fs::copy(built_lib(), dir.join("libvdestack.so.0")).expect("copy library");
        std::os::unix::fs::symlink("libvdestack.so.0", dir.join("libvdestack.so"))
            .expect("symlink library");
        dir
    })
}

/// Whether this process may create a user namespace with a network namespace of
/// its own, where the C programs run (see [`in_own_network`]).
fn can_create_network_namespace() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        Command::new("unshare")
            .args(["-Urn", "true"])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

/// The result of running a command to completion (or to its timeout).
struct Run {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
    fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => format!("{s}"),
            None => "killed after the timeout (hung)".to_string(),
        };
        format!(
            "{status}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with stdout/stderr captured in files (a lingering grandchild
/// cannot block us on a pipe), killing it after `timeout`.
fn run(mut cmd: Command, timeout: Duration) -> Run {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let base = run_dir().join(format!("run-{n}"));
    let (out_path, err_path) = (base.with_extension("out"), base.with_extension("err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| {
        let s = String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        let _ = std::fs::remove_file(p);
        s
    };
    Run {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

/// Which header a program is compiled against.
#[derive(Clone, Copy, PartialEq)]
enum Header {
    Ours,
    Reference,
}

/// Compiles `tests/capi/<name>.c` into the target's temp dir, linked with our
/// library; returns the executable.
fn compile(name: &str, header: Header) -> PathBuf {
    compile_with(name, header, Linked::Ours)
}

/// Whether a test program is linked with our library.
#[derive(Clone, Copy, PartialEq)]
enum Linked {
    Ours,
    /// Not linked with it: the program finds it preloaded, by its handle.
    Not,
}

/// Compiles `tests/capi/<name>.c` into the target's temp dir; returns the
/// executable.
fn compile_with(name: &str, header: Header, linked: Linked) -> PathBuf {
    let src = manifest_dir().join("tests/capi").join(format!("{name}.c"));
    let suffix = match header {
        Header::Ours => "ours",
        Header::Reference => "refheader",
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let out = run_dir().join(format!("{name}-{suffix}-{n}"));
    let mut cc = Command::new("cc");
    cc.args(["-Wall", "-Wextra", "-Werror", "-O1", "-o"])
        .arg(&out)
        .arg(&src);
    match header {
        Header::Ours => {
            cc.arg("-I").arg(manifest_dir().join("include"));
        }
        Header::Reference => assert!(
            Path::new(REFERENCE_HEADER).exists(),
            "{REFERENCE_HEADER} is missing: install Debian's libvdestack-dev"
        ),
    }
    if linked == Linked::Ours {
        cc.arg("-L").arg(lib_dir()).arg("-lvdestack");
    }
    cc.arg("-lpthread");
    let r = run(cc, Duration::from_secs(120));
    assert!(r.success(), "compiling {name}.c failed: {}", r.describe());
    out
}

/// Asserts that the loader resolves the program's libvdestack to ours.
fn assert_links_ours(prog: &Path) {
    let mut ldd = Command::new("ldd");
    ldd.arg(prog).env("LD_LIBRARY_PATH", lib_dir());
    let r = run(ldd, Duration::from_secs(30));
    assert!(r.success(), "ldd failed: {}", r.describe());
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("libvdestack"))
        .unwrap_or_else(|| {
            panic!(
                "{} does not link libvdestack:\n{}",
                prog.display(),
                r.stdout
            )
        });
    assert!(
        line.contains(&*lib_dir().to_string_lossy()),
        "{} would load the wrong libvdestack: {line}",
        prog.display()
    );
}

/// Whether a program may create user namespaces in its network namespace.
#[derive(Clone, Copy, PartialEq)]
enum UserNamespaces {
    /// As the kernel backend needs.
    Allowed,
    /// Creating one fails (`max_user_namespaces` 0), as where the reference library
    /// cannot make a stack.
    Blocked,
}

/// A command running `prog args` in a user and network namespace of its own whose
/// only interface, `lo`, is up: a kernel socket there reaches nothing but `lo`.
/// `None`, after saying so, where such a namespace cannot be made: the test that
/// wanted it is skipped, since its program's private addresses must never be tried
/// on a real network.
fn in_own_network(
    test: &str,
    prog: &Path,
    args: &[&str],
    users: UserNamespaces,
) -> Option<Command> {
    if !can_create_network_namespace() {
        eprintln!(
            "{test}: skipped: no network namespace can be made here (unshare -Urn), \
             and a C program's traffic must not reach this machine's network"
        );
        return None;
    }
    let block = match users {
        UserNamespaces::Allowed => "",
        UserNamespaces::Blocked => {
            "echo 0 > /proc/sys/user/max_user_namespaces || exit 97; \
             if unshare -U true 2>/dev/null; then \
             echo 'user namespaces are still allowed' >&2; exit 98; fi; "
        }
    };
    let script = format!("ip link set lo up || exit 96; {block}exec \"$0\" \"$@\"");
    let mut cmd = Command::new("unshare");
    cmd.args(["-Urn", "sh", "-c", &script]).arg(prog).args(args);
    Some(cmd)
}

/// Runs a compiled program with our library first on the library path, in a
/// network namespace of its own where user namespaces cannot be created.
fn run_program(prog: &Path, args: &[&str]) {
    assert_links_ours(prog);
    let name = prog.file_name().unwrap_or_default().to_string_lossy();
    let Some(mut cmd) = in_own_network(&name, prog, args, UserNamespaces::Blocked) else {
        return;
    };
    cmd.env("LD_LIBRARY_PATH", lib_dir());
    let r = run(cmd, PROGRAM_TIMEOUT);
    assert!(
        r.success(),
        "{} {args:?} failed: {}",
        prog.display(),
        r.describe()
    );
}

/// Compiles `tests/capi/<name>.c` against our header and runs it on a new switch.
fn compile_and_run(name: &str) {
    let prog = compile(name, Header::Ours);
    let sw = common::Switch::start();
    run_program(&prog, &[&sw.vnl()]);
}

/// getifaddrs, if_nametoindex, the SIOCGIF* ioctls: the default stack's interfaces.
#[test]
fn interfaces_are_the_default_stacks() {
    compile_and_run("interfaces");
}

/// VDESTACK_DNS: name servers for vde_addstack's stacks, asked through the stack.
#[test]
fn name_servers_from_the_environment() {
    compile_and_run("name_servers");
}

#[test]
fn man_example_with_our_header() {
    compile_and_run("man_example");
}

#[test]
fn man_example_with_the_reference_header() {
    let prog = compile("man_example", Header::Reference);
    let sw = common::Switch::start();
    run_program(&prog, &[&sw.vnl()]);
}

/// The control for the proof above: with Debian's library (no library path of
/// ours), the same program fails where user namespaces cannot be created.
#[test]
fn reference_library_fails_without_user_namespaces() {
    if !Path::new(REFERENCE_LIB).exists() {
        return; // nothing to compare with here
    }
    let prog = compile("man_example", Header::Ours);
    let sw = common::Switch::start();
    let Some(mut cmd) = in_own_network(
        "reference_library_fails_without_user_namespaces",
        &prog,
        &[&sw.vnl()],
        UserNamespaces::Blocked,
    ) else {
        return;
    };
    cmd.env_remove("LD_LIBRARY_PATH");
    let r = run(cmd, PROGRAM_TIMEOUT);
    assert!(
        !r.success() && r.stderr.contains("vde_addstack"),
        "the reference library was expected to fail in vde_addstack: {}",
        r.describe()
    );
}

#[test]
fn epoll_echo() {
    compile_and_run("epoll_echo");
}

#[test]
fn default_stack() {
    compile_and_run("default_stack");
}

#[test]
fn fork() {
    compile_and_run("fork");
}

/// fork() while threads open, use and close stack sockets: every child's close,
/// dup, dup2 and socket calls answer at once (no lock held by a thread that is not
/// in the child, no wait for the parent's stack thread).
#[test]
fn fork_stress() {
    compile_and_run("fork_stress");
}

#[test]
fn errors() {
    compile_and_run("errors");
}

#[test]
fn udp() {
    compile_and_run("udp");
}

/// A peer's reset reads as ECONNRESET through read(), recv() and recvfrom().
#[test]
fn reset() {
    compile_and_run("reset");
}

#[test]
fn options() {
    compile_and_run("options");
}

/// Accepted sockets answer as the stack's TCP sockets (never as the AF_UNIX
/// pair underneath), also once the stack let them go and after many sockets
/// came and went.
#[test]
fn accepted() {
    compile_and_run("accepted");
}

/// A forked child's calls on the parent's stack fail at once, never wait.
#[test]
fn forked_child() {
    compile_and_run("forked_child");
}

/// A program that closes every descriptor it does not know of (closefrom,
/// close_range) leaves the library's open, and its stacks working.
#[test]
fn closefrom() {
    compile_and_run("closefrom");
}

/// Calls that move bytes check the socket's state as Linux does; shutdown is
/// the stack's.
#[test]
fn stream_state() {
    compile_and_run("stream_state");
}

/// A connect that fails at once fails inside connect(2) where Linux says so, or
/// makes the descriptor writable with SO_ERROR set; never a hang.
#[test]
fn connect_fails() {
    compile_and_run("connect_fails");
}

/// The library preloaded after libc (`LD_PRELOAD="libc.so.6 libvdestack.so.0"`),
/// the program not linked with it: what the library passes on reaches libc,
/// though `dlsym(RTLD_NEXT)` finds nothing after it.
#[test]
fn preloaded_after_libc() {
    let prog = compile_with("after_libc", Header::Ours, Linked::Not);
    let sw = common::Switch::start();
    let preload = format!(
        "LD_PRELOAD=libc.so.6 {}",
        lib_dir().join("libvdestack.so.0").display()
    );
    let prog = prog.to_string_lossy();
    let args = [preload.as_str(), &prog, &sw.vnl()];
    let env = Path::new("/usr/bin/env");
    let Some(cmd) = in_own_network("preloaded_after_libc", env, &args, UserNamespaces::Blocked)
    else {
        return;
    };
    let r = run(cmd, PROGRAM_TIMEOUT);
    assert!(r.success(), "after_libc failed: {}", r.describe());
}

/// Runs `tests/capi/dlopen.py` (the library loaded by Python's ctypes, with
/// `dlopen`, after libc) on a new switch, with `backend` in `VDESTACK_BACKEND`.
/// Skipped, with a message, where there is no python3.
fn dlopen_from_python(test: &str, backend: &str, users: UserNamespaces) {
    let python = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !python.is_ok_and(|s| s.success()) {
        eprintln!("{test}: skipped: no python3 here");
        return;
    }
    let script = manifest_dir().join("tests/capi/dlopen.py");
    let sw = common::Switch::start();
    let args = [&*script.to_string_lossy(), &sw.vnl()];
    let Some(mut cmd) = in_own_network(test, Path::new("python3"), &args, users) else {
        return;
    };
    cmd.env("LD_LIBRARY_PATH", lib_dir())
        .env("VDESTACK_BACKEND", backend);
    let r = run(cmd, PROGRAM_TIMEOUT);
    assert!(r.success(), "dlopen.py failed: {}", r.describe());
}

#[test]
fn dlopen_from_python_ctypes() {
    dlopen_from_python(
        "dlopen_from_python_ctypes",
        "userspace",
        UserNamespaces::Blocked,
    );
}

#[cfg(feature = "kernel-ns")]
#[test]
fn dlopen_from_python_ctypes_on_the_kernel_backend() {
    let test = "dlopen_from_python_ctypes_on_the_kernel_backend";
    if common::kernel_available(test) {
        dlopen_from_python(test, "kernel", UserNamespaces::Allowed);
    }
}

/// Names of the functions (type `T`) a shared library exports.
fn exported_functions(lib: &Path) -> Vec<String> {
    let mut nm = Command::new("nm");
    nm.args(["-D", "--defined-only"]).arg(lib);
    let r = run(nm, Duration::from_secs(30));
    assert!(r.success(), "nm {} failed: {}", lib.display(), r.describe());
    r.stdout
        .lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [_, "T", name] => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

/// Every function the reference exports, ours exports. The reference
/// (libvdestack0 0.1.3, libvdestack.so.0.1.2) exports: `socket`, `vde_addstack`,
/// `vde_default_stack`, `vde_delstack`, `vde_msocket`, `vde_stack_onecmd` (not in
/// its header) and `vde_stackcmd`.
#[test]
fn exports_every_reference_symbol() {
    let ours = exported_functions(&built_lib());
    let mut reference = vec![
        "socket",
        "vde_addstack",
        "vde_default_stack",
        "vde_delstack",
        "vde_msocket",
        "vde_stack_onecmd",
        "vde_stackcmd",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    if Path::new(REFERENCE_LIB).exists() {
        reference = exported_functions(Path::new(REFERENCE_LIB));
        assert!(
            reference.iter().any(|s| s == "vde_addstack"),
            "unexpected nm output for the reference: {reference:?}"
        );
    }
    let missing: Vec<_> = reference.iter().filter(|s| !ours.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "our library does not export {missing:?} (the reference exports {reference:?})"
    );
}

fn soname(lib: &Path) -> String {
    let mut readelf = Command::new("readelf");
    readelf.arg("-d").arg(lib);
    let r = run(readelf, Duration::from_secs(30));
    assert!(r.success(), "readelf failed: {}", r.describe());
    r.stdout
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .and_then(|l| l.split('[').nth(1))
        .and_then(|l| l.split(']').next())
        .unwrap_or_else(|| panic!("{} has no SONAME:\n{}", lib.display(), r.stdout))
        .to_string()
}

#[test]
fn soname_is_libvdestack_so_0() {
    // The copy: `make_install` may be re-linking the built library meanwhile.
    assert_eq!(
        soname(&lib_dir().join("libvdestack.so.0")),
        "libvdestack.so.0"
    );
}

fn make(args: &[&str], timeout: Duration) {
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(workspace_dir()).args(args);
    let r = run(cmd, timeout);
    assert!(r.success(), "make {args:?} failed: {}", r.describe());
}

fn link_target(path: &Path) -> String {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("{} is not a symlink: {e}", path.display()))
        .to_string_lossy()
        .into_owned()
}

/// `make install PREFIX=...` builds (cargo build --release -p vdestack-capi) and
/// installs the library with its soname links, the header, a pkg-config file
/// that a C program builds with, and the `vdestack` command, which finds the
/// installed library; `make uninstall` removes them.
#[test]
fn make_install() {
    // Copy the library for the other tests first: the build below re-links it.
    let _ = lib_dir();
    let prefix = run_dir().join("prefix");
    let _ = std::fs::remove_dir_all(&prefix);
    let prefix_arg = format!("PREFIX={}", prefix.display());
    make(&["install", &prefix_arg], Duration::from_secs(1800));

    let lib = prefix.join("lib");
    let real = lib.join("libvdestack.so.0.1.0");
    assert!(real.is_file(), "{} missing", real.display());
    assert_eq!(
        link_target(&lib.join("libvdestack.so.0")),
        "libvdestack.so.0.1.0"
    );
    assert_eq!(link_target(&lib.join("libvdestack.so")), "libvdestack.so.0");
    assert_eq!(soname(&real), "libvdestack.so.0");
    assert_eq!(
        std::fs::read(prefix.join("include/vdestack.h")).expect("installed header"),
        std::fs::read(manifest_dir().join("include/vdestack.h")).unwrap()
    );

    // The command, which finds the installed library to preload.
    let vdestack = prefix.join("bin/vdestack");
    let mut status = Command::new(&vdestack);
    status
        .args(["run", "--", "sh", "-c", "exit 7"])
        .env_remove("VDESTACK_LIBRARY");
    let r = run(status, Duration::from_secs(30));
    assert_eq!(
        r.status.and_then(|s| s.code()),
        Some(7),
        "the installed vdestack: {}",
        r.describe()
    );

    let mut pc = Command::new("pkg-config");
    pc.args(["--cflags", "--libs", "vdestack"])
        .env("PKG_CONFIG_PATH", lib.join("pkgconfig"));
    let r = run(pc, Duration::from_secs(30));
    assert!(r.success(), "pkg-config failed: {}", r.describe());
    let flags: Vec<&str> = r.stdout.split_whitespace().collect();
    let want_i = format!("-I{}", prefix.join("include").display());
    let want_l = format!("-L{}", lib.display());
    for want in [want_i.as_str(), want_l.as_str(), "-lvdestack"] {
        assert!(
            flags.contains(&want),
            "pkg-config gave {flags:?}, no {want}"
        );
    }

    let src = manifest_dir().join("tests/capi/man_example.c");
    let prog = run_dir().join("man_example-pkg-config");
    let mut cc = Command::new("cc");
    cc.args(["-Wall", "-Wextra", "-Werror", "-O1", "-o"])
        .arg(&prog)
        .arg(&src)
        .args(&flags)
        .arg("-lpthread");
    let r = run(cc, Duration::from_secs(120));
    assert!(
        r.success(),
        "cc with pkg-config flags failed: {}",
        r.describe()
    );
    let sw = common::Switch::start();
    if let Some(mut cmd) = in_own_network(
        "make_install (running the installed library)",
        &prog,
        &[&sw.vnl()],
        UserNamespaces::Blocked,
    ) {
        cmd.env("LD_LIBRARY_PATH", &lib);
        let r = run(cmd, PROGRAM_TIMEOUT);
        assert!(
            r.success(),
            "man_example (installed) failed: {}",
            r.describe()
        );
    }

    make(&["uninstall", &prefix_arg], Duration::from_secs(60));
    for f in [
        "bin/vdestack",
        "lib/libvdestack.so.0.1.0",
        "lib/libvdestack.so.0",
        "lib/libvdestack.so",
        "include/vdestack.h",
        "lib/pkgconfig/vdestack.pc",
    ] {
        assert!(
            prefix.join(f).symlink_metadata().is_err(),
            "{f} left behind by make uninstall"
        );
    }
    let _ = std::fs::remove_dir_all(&prefix);
}

/// DESTDIR stages the files without changing the paths written into the `.pc`;
/// CARGO_BUILD=0 with LIB= installs a library built before.
#[test]
fn make_install_destdir() {
    let dest = run_dir().join("destdir");
    let _ = std::fs::remove_dir_all(&dest);
    let destdir = format!("DESTDIR={}", dest.display());
    let lib = format!("LIB={}", lib_dir().join("libvdestack.so.0").display());
    let bin = format!("BIN={}", env!("CARGO_BIN_EXE_vdestack"));
    make(
        &[
            "install",
            "PREFIX=/opt/vdestack",
            &destdir,
            "CARGO_BUILD=0",
            &lib,
            &bin,
        ],
        Duration::from_secs(60),
    );
    let staged = dest.join("opt/vdestack");
    assert!(staged.join("lib/libvdestack.so.0.1.0").is_file());
    assert!(staged.join("bin/vdestack").is_file());
    assert!(staged.join("include/vdestack.h").is_file());
    let pc = std::fs::read_to_string(staged.join("lib/pkgconfig/vdestack.pc")).expect(".pc");
    assert!(pc.contains("prefix=/opt/vdestack\n"), "{pc}");
    assert!(pc.contains("libdir=/opt/vdestack/lib\n"), "{pc}");
    assert!(
        !pc.contains(&*dest.to_string_lossy()),
        "DESTDIR leaked into {pc}"
    );
    let _ = std::fs::remove_dir_all(&dest);
}

/// Runs `tests/capi/<name>.c` on a new switch with `VDESTACK_BACKEND=kernel`: the
/// same C program on kernel-namespace stacks, whose descriptors are real kernel
/// sockets that the interposed calls hand straight to libc. Skipped, with a
/// message, where kernel stacks cannot be made.
#[cfg(feature = "kernel-ns")]
fn run_on_kernel_backend(name: &str) {
    if !common::kernel_available(&format!("capi::{name} (C, VDESTACK_BACKEND=kernel)")) {
        return;
    }
    let prog = compile(name, Header::Ours);
    assert_links_ours(&prog);
    let sw = common::Switch::start();
    let test = format!("{name}_on_the_kernel_backend");
    let Some(mut cmd) = in_own_network(&test, &prog, &[&sw.vnl()], UserNamespaces::Allowed) else {
        return;
    };
    cmd.env("LD_LIBRARY_PATH", lib_dir())
        .env("VDESTACK_BACKEND", "kernel");
    let r = run(cmd, PROGRAM_TIMEOUT);
    assert!(
        r.success(),
        "{name} on the kernel backend failed: {}",
        r.describe()
    );
}

#[cfg(feature = "kernel-ns")]
#[test]
fn man_example_on_the_kernel_backend() {
    run_on_kernel_backend("man_example");
}

#[cfg(feature = "kernel-ns")]
#[test]
fn epoll_echo_on_the_kernel_backend() {
    run_on_kernel_backend("epoll_echo");
}

#[cfg(feature = "kernel-ns")]
#[test]
fn fork_on_the_kernel_backend() {
    run_on_kernel_backend("fork");
}

#[cfg(feature = "kernel-ns")]
#[test]
fn udp_on_the_kernel_backend() {
    run_on_kernel_backend("udp");
}

#[cfg(feature = "kernel-ns")]
#[test]
fn reset_on_the_kernel_backend() {
    run_on_kernel_backend("reset");
}

#[cfg(feature = "kernel-ns")]
#[test]
fn options_on_the_kernel_backend() {
    run_on_kernel_backend("options");
}

#[cfg(feature = "kernel-ns")]
#[test]
fn accepted_on_the_kernel_backend() {
    run_on_kernel_backend("accepted");
}

#[cfg(feature = "kernel-ns")]
#[test]
fn closefrom_on_the_kernel_backend() {
    run_on_kernel_backend("closefrom");
}

#[cfg(feature = "kernel-ns")]
#[test]
fn stream_state_on_the_kernel_backend() {
    run_on_kernel_backend("stream_state");
}

#[cfg(feature = "kernel-ns")]
#[test]
fn connect_fails_on_the_kernel_backend() {
    run_on_kernel_backend("connect_fails");
}

/// Where user namespaces cannot be created, `VDESTACK_BACKEND=kernel` makes
/// `vde_addstack` fail (no silent fallback), and stderr names the cause.
#[test]
fn kernel_backend_without_user_namespaces_fails_clearly() {
    let prog = compile("man_example", Header::Ours);
    let sw = common::Switch::start();
    let Some(mut cmd) = in_own_network(
        "kernel_backend_without_user_namespaces_fails_clearly",
        &prog,
        &[&sw.vnl()],
        UserNamespaces::Blocked,
    ) else {
        return;
    };
    cmd.env("LD_LIBRARY_PATH", lib_dir())
        .env("VDESTACK_BACKEND", "kernel");
    let r = run(cmd, PROGRAM_TIMEOUT);
    assert!(
        !r.success(),
        "a kernel stack without user namespaces: {}",
        r.describe()
    );
    let cause = if cfg!(feature = "kernel-ns") {
        "cannot create a user namespace"
    } else {
        "without the feature kernel-ns"
    };
    assert!(
        r.stderr.contains("vde_addstack") && r.stderr.contains(cause),
        "expected the failing call and its cause ({cause}): {}",
        r.describe()
    );
}
