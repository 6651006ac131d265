//! `vdestack run [--vnl LOCATOR] [--ifname NAME] [--cmd 'STACKCMD'] [--dhcp]
//! -- PROGRAM [ARGS...]`: runs an unmodified, dynamically linked program with all its
//! AF_INET/AF_INET6 sockets on one userspace stack, without namespaces or
//! privileges.
//!
//! This process hosts the stack (`serve.rs`) and starts the program with the C
//! library preloaded, told where the host listens (`protocol::HOST_VARIABLE`):
//! every process of the program's tree, forked or exec'd, makes its sockets on
//! this one stack. When the program exits, the host keeps the stack until its
//! connections have delivered their last bytes and FINs (at most
//! [`DRAIN_LIMIT`]), then exits with the program's status (128 + the signal
//! that killed it). A program whose stack cannot be made is not run; one that
//! is statically linked is refused (the library could not reach it).

#[path = "../../channel.rs"]
mod channel;
#[path = "../../options.rs"]
mod options;
// Both halves of the protocol are compiled; the host uses the decoding of
// requests and the encoding of answers.
#[allow(dead_code)]
#[path = "../../protocol.rs"]
mod protocol;

mod elf;
mod serve;

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use vdestack::Stack;

/// How long the host waits, after the program exited, for its connections to
/// finish.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The exit status of `vdestack`'s own failures (as `env` and `timeout` use it).
const FAILED: i32 = 125;
/// The program cannot be run (as the shell says it).
const CANNOT_EXECUTE: i32 = 126;
/// The program is not there.
const NOT_FOUND: i32 = 127;
/// A usage error.
const USAGE: i32 = 2;

const USAGE_TEXT: &str = "usage: vdestack run [--vnl LOCATOR] [--ifname NAME] [--cmd 'STACKCMD'] \
                          [--dhcp] [--dns ADDR]... [--host-dns] -- PROGRAM [ARGS...]\n\
                          \n  --dhcp       an address, a default route and name servers by \
                          DHCP (after --cmd)\n  --dns ADDR   a name server the stack asks (port 53; repeatable); \
                          none by default\n  --host-dns   also ask the servers of the host's \
                          /etc/resolv.conf";

/// What `vdestack run` was asked.
#[derive(Debug, Default, PartialEq)]
struct Run {
    vnl: String,
    ifname: Option<String>,
    cmd: Option<String>,
    dhcp: bool,
    /// The stack's name servers (`--dns`).
    dns: Vec<std::net::IpAddr>,
    /// Add the host's `/etc/resolv.conf` servers (`--host-dns`).
    host_dns: bool,
    program: Vec<OsString>,
}

/// Reads the command line (without the program's name).
fn parse(args: &[OsString]) -> Result<Run, String> {
    let mut args = args.iter();
    match args.next().map(|a| a.as_bytes()) {
        Some(b"run") => {}
        Some(b"-h" | b"--help") | None => return Err(USAGE_TEXT.into()),
        Some(other) => {
            return Err(format!(
                "unknown command \"{}\"\n{USAGE_TEXT}",
                String::from_utf8_lossy(other)
            ))
        }
    }
    let mut run = Run::default();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value)),
            _ => (text.to_string(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_string()),
                None => args
                    .next()
                    .and_then(|v| v.to_str().map(str::to_string))
                    .ok_or_else(|| format!("{name} needs a value (UTF-8)")),
            }
        };
        match name.as_str() {
            "--vnl" => run.vnl = value()?,
            "--ifname" => run.ifname = Some(value()?),
            "--cmd" => run.cmd = Some(value()?),
            "--dhcp" if inline.is_none() => run.dhcp = true,
            "--dns" => {
                let text = value()?;
                let addr = text
                    .parse()
                    .map_err(|_| format!("--dns {text}: not an IPv4 or IPv6 address"))?;
                run.dns.push(addr);
            }
            "--host-dns" if inline.is_none() => run.host_dns = true,
            "--" => {
                run.program = args.cloned().collect();
                break;
            }
            "-h" | "--help" => return Err(USAGE_TEXT.into()),
            option if option.starts_with('-') => {
                return Err(format!("unknown option {option}\n{USAGE_TEXT}"))
            }
            _ => {
                run.program = std::iter::once(arg).chain(args).cloned().collect();
                break;
            }
        }
    }
    if run.program.is_empty() {
        return Err(format!("no program to run\n{USAGE_TEXT}"));
    }
    Ok(run)
}

/// The file `program` names: itself if it has a slash, else the first
/// executable of that name on `PATH`.
fn resolve(program: &OsStr) -> Option<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|file| {
            rustix::fs::access(file, rustix::fs::Access::EXEC_OK).is_ok() && file.is_file()
        })
}

/// How the executable `file` is linked; a script's interpreter (`#!`) counts.
fn linking(file: &Path) -> std::io::Result<elf::Linking> {
    let mut head = Vec::new();
    std::fs::File::open(file)?
        .take(4096)
        .read_to_end(&mut head)?;
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let interpreter = line
            .split(|b| b.is_ascii_whitespace())
            .find(|word| !word.is_empty());
        if let Some(interpreter) = interpreter {
            let interpreter = Path::new(OsStr::from_bytes(interpreter));
            if interpreter != file {
                return linking(interpreter);
            }
        }
        return Ok(elf::Linking::NotElf);
    }
    let needed = elf::needed(&head);
    if needed > head.len() {
        head.clear();
        std::fs::File::open(file)?
            .take(needed as u64)
            .read_to_end(&mut head)?;
    }
    Ok(elf::linking(&head))
}

/// The C library to preload: `VDESTACK_LIBRARY` if set; else the one installed
/// beside this binary (`make install` bakes its directory in as
/// `VDESTACK_LIBDIR`), or cargo's, in this binary's own directory.
fn library() -> Option<PathBuf> {
    if let Some(library) = std::env::var_os("VDESTACK_LIBRARY").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(library));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let candidates = [
        option_env!("VDESTACK_LIBDIR").map(|d| Path::new(d).join("libvdestack.so.0")),
        Some(dir.join("libvdestack_capi.so")),
        Some(dir.join("../lib/libvdestack.so.0")),
    ];
    candidates.into_iter().flatten().find(|path| path.is_file())
}

/// Marks every descriptor above stderr close-on-exec: the stack's own (its
/// link's, its thread's) are not the program's.
fn keep_from_program() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a number: at worst EBADF (the directory's own).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// Ignores SIGINT and SIGQUIT in this process; returns their dispositions
/// before, for the program.
fn ignore_keyboard_signals() -> Vec<(i32, libc::sigaction)> {
    [libc::SIGINT, libc::SIGQUIT]
        .into_iter()
        .filter_map(|signal| {
            // SAFETY: sigaction with valid pointers; an all-zero sigaction with
            // SIG_IGN is a valid disposition.
            unsafe {
                let mut ignore: libc::sigaction = std::mem::zeroed();
                ignore.sa_sigaction = libc::SIG_IGN;
                let mut before: libc::sigaction = std::mem::zeroed();
                (libc::sigaction(signal, &ignore, &mut before) == 0).then_some((signal, before))
            }
        })
        .collect()
}

/// Waits, at most [`DRAIN_LIMIT`], until the stack's connections have nothing
/// more to deliver.
fn drain(stack: &Stack) {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while Instant::now() < deadline {
        match stack.unfinished_connections() {
            Ok(0) | Err(_) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn run(run: Run) -> i32 {
    let name = &run.program[0];
    let Some(file) = resolve(name) else {
        eprintln!("vdestack: {}: command not found", name.to_string_lossy());
        return NOT_FOUND;
    };
    match linking(&file) {
        Ok(elf::Linking::Static) => {
            eprintln!(
                "vdestack: {}: statically linked (no ELF interpreter, PT_INTERP): the stack's \
                 library is loaded by the dynamic loader (LD_PRELOAD), which never runs for it, \
                 so its sockets would be the host's; refusing to run it",
                file.display()
            );
            return CANNOT_EXECUTE;
        }
        Ok(elf::Linking::Broken) => {
            eprintln!("vdestack: {}: unreadable ELF headers", file.display());
            return CANNOT_EXECUTE;
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("vdestack: {}: {e}", file.display());
            return if e.kind() == std::io::ErrorKind::NotFound {
                NOT_FOUND
            } else {
                CANNOT_EXECUTE
            };
        }
    }
    let Some(library) = library() else {
        eprintln!(
            "vdestack: the stack's C library (libvdestack.so.0) is not installed beside this \
             program; set VDESTACK_LIBRARY to its path"
        );
        return FAILED;
    };
    let library = std::fs::canonicalize(&library).unwrap_or(library);
    let mut servers = run.dns.clone();
    if run.host_dns {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        servers.extend(vdestack::dns::ResolvConf::parse(&text).name_servers);
    }
    let mut builder = Stack::builder().vnl(&run.vnl).name_servers(servers);
    if let Some(ifname) = &run.ifname {
        builder = builder.ifname(ifname);
    }
    let stack = match builder.build() {
        Ok(stack) => stack,
        Err(e) => {
            let vnl = if run.vnl.is_empty() {
                "loopback only"
            } else {
                &run.vnl
            };
            eprintln!("vdestack: cannot make the stack ({vnl}): {e}");
            return FAILED;
        }
    };
    if let Some(cmd) = &run.cmd {
        if let Err(e) = stack.cmd(cmd) {
            eprintln!("{e}");
            return e.status();
        }
    }
    if run.dhcp {
        // After --cmd, as a script would run udhcpc after its own setup; the
        // lease is renewed while the program runs.
        if let Err(e) = stack.dhcp(&stack.ifname()) {
            eprintln!(
                "vdestack: --dhcp: no lease on {} ({e}); give the interface an address \
                 with --cmd 'ip addr add ...' instead",
                stack.ifname()
            );
            return FAILED;
        }
    }
    let host = match serve::Host::start(stack.clone()) {
        Ok(host) => host,
        Err(e) => {
            eprintln!("vdestack: cannot listen for the program's processes: {e}");
            return FAILED;
        }
    };
    keep_from_program();
    let mut preload = library.into_os_string();
    if let Some(theirs) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(":");
        preload.push(theirs);
    }
    let mut command = Command::new(&file);
    command
        .arg0(name)
        .args(&run.program[1..])
        .env("LD_PRELOAD", preload)
        .env(protocol::HOST_VARIABLE, host.path());
    // The terminal's SIGINT and SIGQUIT go to the program, which decides; the host
    // waits for it and then drains the stack instead of dying first.
    let keyboard = ignore_keyboard_signals();
    // SAFETY: prctl and sigaction are async-signal-safe, and `keyboard` is
    // read only. A program whose host is killed has lost its stack: it is told
    // to end (SIGTERM), rather than left to fail every call (a server's accept
    // loop would spin). It gets the dispositions vdestack was started with.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            for (signal, action) in &keyboard {
                libc::sigaction(*signal, action, std::ptr::null_mut());
            }
            Ok(())
        })
    };
    let spawned = command.spawn();
    let status = match spawned.and_then(|mut child| child.wait()) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("vdestack: {}: {e}", file.display());
            return CANNOT_EXECUTE;
        }
    };
    drain(&stack);
    drop(host);
    status
        .code()
        .or(status.signal().map(|signal| 128 + signal))
        .unwrap_or(FAILED)
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = match parse(&args) {
        Ok(asked) => run(asked),
        Err(message) => {
            eprintln!("vdestack: {message}");
            USAGE
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_command_line() {
        let run = parse(&args(&[
            "run",
            "--vnl",
            "vde:///tmp/sw",
            "--ifname=eth0",
            "--cmd",
            "ip link set lo up",
            "--",
            "curl",
            "-s",
            "--",
            "x",
        ]))
        .expect("valid");
        assert_eq!(run.vnl, "vde:///tmp/sw");
        assert_eq!(run.ifname.as_deref(), Some("eth0"));
        assert_eq!(run.cmd.as_deref(), Some("ip link set lo up"));
        assert_eq!(run.program, args(&["curl", "-s", "--", "x"]));
        let bare = parse(&args(&["run", "python3", "-c", "1"])).expect("valid");
        assert_eq!(bare.program, args(&["python3", "-c", "1"]));
        assert!(parse(&args(&["run", "--dhcp", "--", "true"])).unwrap().dhcp);
    }

    #[test]
    fn bad_command_lines() {
        assert!(parse(&args(&[])).is_err());
        assert!(parse(&args(&["walk", "--", "true"])).is_err());
        assert!(parse(&args(&["run"])).is_err());
        assert!(parse(&args(&["run", "--vnl"])).is_err());
        let dns = parse(&args(&[
            "run",
            "--dns",
            "10.0.0.53",
            "--dns=::1",
            "--host-dns",
            "true",
        ]))
        .unwrap();
        assert_eq!(
            dns.dns,
            [
                "10.0.0.53".parse::<std::net::IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!(dns.host_dns);
        assert!(parse(&args(&["run", "--dns", "name.test", "true"])).is_err());
        assert!(parse(&args(&["run", "--bogus", "--", "true"])).is_err());
        assert!(parse(&args(&["run", "--"])).is_err());
    }
}
