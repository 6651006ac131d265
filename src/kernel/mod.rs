//! The kernel backend (feature `kernel-ns`): a stack that is a real Linux network
//! namespace, as the reference libvdestack makes it.
//!
//! With [`Backend::Kernel`](crate::Backend::Kernel) a stack is a new user and
//! network namespace with a tap named as the stack's interface, bridged to the same
//! VDE link the userspace backend would use. Its sockets are real kernel sockets
//! created inside the namespace, and its stackcmd commands are real programs run
//! inside it. It is the oracle the userspace backend is tested against.
//!
//! ## Why a helper process
//!
//! A network namespace belongs to a user namespace, and only a single-threaded
//! process may enter a new user namespace (`unshare(CLONE_NEWUSER)` fails with
//! `EINVAL` in a multi-threaded one). The application is multi-threaded (pump
//! threads, a test harness, its own threads), so each namespace gets a process of
//! its own, the *helper*. [`KernelStack::start`] forks it: a plain `fork`, no
//! `CLONE_VM` and no shared memory; the helper shares nothing with the application
//! but the few descriptors it keeps. The helper:
//!
//! 1. closes every inherited descriptor except stdin, stdout, stderr, its end of the
//!    control socket and the link's descriptors, so that it holds none of the
//!    application's sockets (a connection the application closes is closed) and
//!    none of the other stacks' links (a dropped stack frees its switch port at once);
//! 2. calls `unshare(CLONE_NEWUSER | CLONE_NEWNET)` and maps root in the new user
//!    namespace to the user that created it (`setgroups` denied, then `uid_map` and
//!    `gid_map`), as `unshare -Urn` does;
//! 3. creates the tap (`/dev/net/tun`, `IFF_TAP | IFF_NO_PI`); `lo` stays down, as
//!    in any new namespace;
//! 4. then, in one `poll` loop, copies frames between the tap and the VDE link (which
//!    the application opened before the fork, with the code the userspace backend
//!    uses), and serves requests on a `SOCK_SEQPACKET` control socket:
//!    - *socket*: `socket(domain, type, protocol)` inside the namespace, handed back
//!      with `SCM_RIGHTS`. The application binds, connects, listens and accepts on it
//!      with the real system calls: a socket's namespace is fixed at its creation.
//!    - *command*: one command of a stackcmd string, already split by the
//!      application with the userspace backend's lexer. The helper forks, the child
//!      `execv`s it (full paths only, no `PATH` search, exit status 2 when it cannot
//!      run) as root of the namespace, so with the network capabilities. Its standard
//!      output and error come back as they are written, then its exit status. The
//!      application stops a stackcmd string at the first non-zero status.
//!
//! ## Why a fork without exec is safe enough here
//!
//! After `fork` in a multi-threaded process only the forking thread exists in the
//! child, and a lock another thread held stays held for ever. The helper therefore
//! stays away from everything behind a process-wide lock: no `std::io` standard
//! streams, no environment, no threads, no `std::process`, no dynamic loading, no
//! panicking on purpose (a panic message takes the stderr lock). Its buffers are
//! allocated before the fork. The link code it drives allocates little or nothing,
//! and allocating in a fork child is safe with glibc, whose `fork` holds the
//! allocator's locks across the fork and resets them in the child.
//!
//! The helper makes raw system calls only: its calls on descriptors (`socket`,
//! `sendmsg` with `SCM_RIGHTS`, `read`, `write`, `recv`, `close`, `close_range`,
//! `fcntl`, `dup2`, the tap's `ioctl`) go through `crate::sys` and rustix, which
//! enter the kernel themselves, never through libc's symbols of those names. With
//! the C ABI loaded those symbols are its interposed calls, which would look the
//! descriptors up in its registry under a lock another thread of the application
//! may have held at the fork, and would take a `socket` request for one of the
//! program's own (a userspace stack's socket instead of a kernel one). The libc
//! calls it keeps (`fork`, `execv`, `unshare`, `poll`, `waitpid`, `signal`,
//! `sigprocmask`, `_exit`) are not interposed. One path is not the helper's to
//! choose: a link through a libvdeplug plugin other than `vde` (`ptp://`,
//! `cmd://`...) sends and receives with libvdeplug's own calls of libc.
//!
//! Re-executing the program as the helper would avoid even that, but a library
//! cannot count on `/proc/self/exe` running our code (it may be an interpreter or a
//! test harness), nor on an installed helper binary; a `CLONE_VM` child sharing the
//! application's memory would make every lock in it a hazard.
//!
//! ## Lifetime
//!
//! The stack owns its helper: dropping the stack kills (`SIGKILL`) and reaps it,
//! then closes the control socket and the link, so nothing is left behind: no
//! process, no descriptor, no switch port. Should the application die, its end of
//! the control socket closes and the helper exits at once. `PR_SET_PDEATHSIG` is not
//! used: it fires when the *thread* that forked exits, which in a multi-threaded
//! program would kill the stack of any short-lived thread. After a `fork` of the
//! application both processes share the stack; only the process that created it
//! ends the helper.
//!
//! Sockets are kernel sockets: they keep working after the stack is dropped, but
//! their interface is gone with the helper, so they reach nothing but `lo`.

mod helper;

use crate::cmd::{split_commands, CmdError};
use crate::link::Link;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

/// The largest request the helper takes: one command's words, NUL-terminated.
const MAX_REQUEST: usize = 64 * 1024;
/// The largest piece of a command's output in one reply.
const CHUNK: usize = 16 * 1024;
/// The most words one command may have.
const MAX_ARGS: usize = 4096;

/// Request: create a socket (`domain`, `type`, `protocol`, native-endian `i32`s).
const REQ_SOCKET: u8 = b'S';
/// Request: run a command (its words follow, each NUL-terminated).
const REQ_COMMAND: u8 = b'C';
/// Reply to the start: errno (0: ready) and the [`Stage`] that failed.
const REP_READY: u8 = b'R';
/// Reply to a socket request: errno (0: the socket is attached).
const REP_SOCKET: u8 = b'F';
/// Part of a command's standard output.
const REP_STDOUT: u8 = b'O';
/// Part of a command's standard error.
const REP_STDERR: u8 = b'E';
/// A command ended: its exit status (`i32`), the last reply to a command.
const REP_DONE: u8 = b'D';

/// What the helper was doing when its setup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Stage {
    Descriptors = 1,
    UserNamespace = 2,
    IdMaps = 3,
    Tap = 4,
}

impl Stage {
    fn from_u8(b: u8) -> Option<Stage> {
        Some(match b {
            1 => Stage::Descriptors,
            2 => Stage::UserNamespace,
            3 => Stage::IdMaps,
            4 => Stage::Tap,
            _ => return None,
        })
    }

    /// A clear error for a setup failure with `errno`.
    fn error(self, errno: i32, ifname: &str) -> io::Error {
        let cause = io::Error::from_raw_os_error(errno);
        let message = match self {
            Stage::Descriptors => {
                format!("vdestack kernel backend: the helper could not close descriptors: {cause}")
            }
            Stage::UserNamespace => format!(
                "vdestack kernel backend: cannot create a user namespace: {cause} \
                 (unprivileged user namespaces are disabled or exhausted here: see \
                 /proc/sys/user/max_user_namespaces; the userspace backend needs none)"
            ),
            Stage::IdMaps => format!(
                "vdestack kernel backend: cannot map the user into its user namespace: {cause}"
            ),
            Stage::Tap => format!(
                "vdestack kernel backend: cannot create the tap {ifname:?} in the namespace \
                 (/dev/net/tun): {cause}"
            ),
        };
        io::Error::new(cause.kind(), SetupError { errno, message })
    }
}

/// A failed start of the kernel backend: the message names the cause, the errno is
/// kept for the C ABI (see [`errno_of`]).
#[derive(Debug)]
struct SetupError {
    errno: i32,
    message: String,
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SetupError {}

/// The errno behind `e`, also when it is a start failure of the kernel backend.
pub(crate) fn errno_of(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<SetupError>())
            .map(|setup| setup.errno)
    })
}

/// A stack of the kernel backend: the helper process that owns the namespace.
pub(crate) struct KernelStack {
    /// The helper.
    pid: libc::pid_t,
    /// The process that started the helper, the only one that ends it.
    owner: libc::pid_t,
    /// Our end of the control socket; one request at a time.
    control: Mutex<OwnedFd>,
    /// The link the helper bridges; closed here once the helper is gone. (Never
    /// used here: the mutex only makes the stack `Sync`.)
    _link: Mutex<Option<Box<dyn Link>>>,
}

impl std::fmt::Debug for KernelStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelStack")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

fn gone() -> io::Error {
    io::Error::from_raw_os_error(libc::ENETDOWN)
}

impl KernelStack {
    /// Starts the helper: a new user and network namespace with a tap named `ifname`
    /// bridged to `link` (`None`: no tap, only `lo`).
    pub(crate) fn start(link: Option<Box<dyn Link>>, ifname: &str) -> io::Result<KernelStack> {
        let (ours, theirs) = crate::sys::pair(libc::SOCK_SEQPACKET)?;
        let mut keep = vec![0, 1, 2, theirs.as_raw_fd()];
        if let Some(link) = &link {
            keep.extend(link.fds());
        }
        let mut helper = helper::Helper::new(theirs.as_fd(), keep, ifname, link.is_some())?;
        let mut link = link;
        // SAFETY: fork has no memory-safety preconditions. In the child only this
        // thread exists; it runs `Helper::run`, which keeps to the rules of the module
        // doc, and leaves with `_exit`, never returning into the application's code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            let link: Option<&mut dyn Link> = match &mut link {
                Some(link) => Some(&mut **link),
                None => None,
            };
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| helper.run(link)))
                .unwrap_or(127);
            // SAFETY: ends the helper without running the application's exit handlers
            // or destructors (they belong to the parent).
            unsafe { libc::_exit(code) };
        }
        drop(helper);
        drop(theirs);
        // SAFETY: getpid has no preconditions.
        let owner = unsafe { libc::getpid() };
        // From here on, dropping the stack kills and reaps the helper.
        let stack = KernelStack {
            pid,
            owner,
            control: Mutex::new(ours),
            _link: Mutex::new(link),
        };
        let mut reply = [0u8; 16];
        let (len, _) = recv(stack.lock().as_fd(), &mut reply)?;
        match &reply[..len] {
            [REP_READY, rest @ ..] if rest.len() == 5 => {
                let errno = i32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]);
                if errno == 0 {
                    return Ok(stack);
                }
                let stage = Stage::from_u8(rest[4]).unwrap_or(Stage::Descriptors);
                Err(stage.error(errno, ifname))
            }
            _ => Err(io::Error::other(
                "vdestack kernel backend: the namespace helper exited during its setup",
            )),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OwnedFd> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `socket(2)` inside the namespace. `SOCK_NONBLOCK` and `SOCK_CLOEXEC` in `ty`
    /// apply to the returned descriptor.
    pub(crate) fn socket(&self, domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
        let mut request = [0u8; 13];
        request[0] = REQ_SOCKET;
        request[1..5].copy_from_slice(&domain.to_ne_bytes());
        request[5..9].copy_from_slice(&ty.to_ne_bytes());
        request[9..13].copy_from_slice(&protocol.to_ne_bytes());
        let control = self.lock();
        send(control.as_fd(), &request)?;
        let mut reply = [0u8; 16];
        let (len, fd) = recv(control.as_fd(), &mut reply)?;
        drop(control);
        let errno = match &reply[..len] {
            [REP_SOCKET, a, b, c, d] => i32::from_ne_bytes([*a, *b, *c, *d]),
            _ => return Err(io::Error::from_raw_os_error(libc::EPROTO)),
        };
        if errno != 0 {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let fd = fd.ok_or_else(|| io::Error::from_raw_os_error(libc::EPROTO))?;
        // Received close-on-exec; keep that only if asked for.
        crate::sys::set_cloexec(fd.as_fd(), ty & libc::SOCK_CLOEXEC != 0)?;
        Ok(fd)
    }

    /// Runs a stackcmd string inside the namespace, stopping at the first command
    /// that fails; returns what the commands wrote on standard output. What a
    /// successful command writes on standard error goes to ours.
    pub(crate) fn cmd(&self, cmds: &str) -> Result<String, CmdError> {
        let mut stdout = Vec::new();
        for argv in split_commands(cmds) {
            let mut request = vec![REQ_COMMAND];
            for word in &argv {
                if word.contains('\0') {
                    return Err(CmdError::new(2, "vdestack: a command contains a NUL byte"));
                }
                request.extend_from_slice(word.as_bytes());
                request.push(0);
            }
            if request.len() > MAX_REQUEST || argv.len() > MAX_ARGS {
                return Err(CmdError::new(
                    2,
                    format!("{}: Argument list too long", argv[0]),
                ));
            }
            let (status, stderr) = self
                .command(&request, &mut stdout)
                .map_err(|e| CmdError::new(2, format!("vdestack: the stack is gone: {e}")))?;
            let stderr = String::from_utf8_lossy(&stderr);
            if status != 0 {
                return Err(CmdError::new(status, stderr));
            }
            if !stderr.is_empty() {
                let _ = io::stderr().write_all(stderr.as_bytes());
            }
        }
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }

    /// One command request; appends its output to `stdout`, returns its status and
    /// standard error.
    fn command(&self, request: &[u8], stdout: &mut Vec<u8>) -> io::Result<(i32, Vec<u8>)> {
        let control = self.lock();
        send(control.as_fd(), request)?;
        let mut stderr = Vec::new();
        let mut reply = vec![0u8; CHUNK + 1];
        loop {
            let (len, _) = recv(control.as_fd(), &mut reply)?;
            match &reply[..len] {
                [REP_STDOUT, data @ ..] => stdout.extend_from_slice(data),
                [REP_STDERR, data @ ..] => stderr.extend_from_slice(data),
                [REP_DONE, a, b, c, d] => {
                    return Ok((i32::from_ne_bytes([*a, *b, *c, *d]), stderr))
                }
                _ => return Err(io::Error::from_raw_os_error(libc::EPROTO)),
            }
        }
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        // SAFETY: getpid has no preconditions.
        if unsafe { libc::getpid() } != self.owner {
            return; // a fork of the application: the helper is not ours to end
        }
        // SAFETY: `pid` is our child and has not been reaped (only this drop reaps
        // it), so it names the helper and no other process.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        loop {
            let mut status = 0;
            // SAFETY: `status` is valid for writes.
            let ret = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if ret >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
    }
}

/// Sends one message on the control socket; `ENETDOWN` once the helper is gone.
fn send(sock: BorrowedFd<'_>, msg: &[u8]) -> io::Result<()> {
    match crate::sys::send(sock, msg) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => Err(gone()),
        Err(e) => Err(e),
    }
}

/// Receives one message and the descriptor attached to it, if any (close-on-exec).
/// `ENETDOWN` once the helper is gone; `EMFILE` when the process had no slot for
/// the descriptor, which the kernel then closed: what Linux's `socket` answers a
/// process at its limit (the helper made the socket in a table of its own).
fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    match crate::sys::recv_message(sock, buf) {
        Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => Err(gone()),
        Err(e) => Err(e),
        Ok(m) if m.len == 0 && m.fd.is_none() && !m.fds_dropped => Err(gone()),
        Ok(m) if m.truncated => Err(io::Error::from_raw_os_error(libc::EMSGSIZE)),
        Ok(m) if m.fds_dropped && m.fd.is_none() => Err(io::Error::from_raw_os_error(libc::EMFILE)),
        Ok(m) => Ok((m.len, m.fd)),
    }
}
