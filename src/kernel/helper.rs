//! The helper process: what runs in the fork child, and only there.
//!
//! The parent module explains the rules this code keeps: raw system calls on
//! buffers allocated before the fork, no standard streams, no environment, no
//! threads, no locks, and leaving through `_exit` only.
//!
//! "Raw" is meant literally: every call on a descriptor goes through `crate::sys`
//! or rustix, which make the system call themselves, never through libc's
//! `socket`, `sendmsg`, `read`, `write`, `close`, `fcntl`, `ioctl`, `dup2`..., which
//! the C ABI interposes. Descriptors are closed with `sys::close`, never dropped
//! (dropping an `OwnedFd` calls libc's `close`). What remains of libc (`fork`,
//! `execv`, `unshare`, `poll`, `waitpid`, `signal`, `sigprocmask`, `_exit`) is not
//! interposed.

use super::{
    Stage, CHUNK, MAX_ARGS, MAX_REQUEST, REP_DONE, REP_READY, REP_SOCKET, REP_STDERR, REP_STDOUT,
    REQ_COMMAND, REQ_SOCKET,
};
use crate::link::{Link, MAX_FRAME};
use crate::sys;
use rustix::fs::{Mode, OFlags};
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::raw::c_char;

/// Frames taken from the link per call.
const BATCH: usize = 32;
/// Frames taken from the tap per wake-up, so that the link side gets its turn.
const TAP_BURST: usize = 64;
/// `_IOW('T', 202, int)` (it takes an `ifreq` all the same).
const TUNSETIFF: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<libc::c_int>(b'T', 202);

/// Everything the helper needs, allocated before the fork.
pub(super) struct Helper<'fd> {
    /// The helper's end of the control socket.
    control: BorrowedFd<'fd>,
    /// Descriptors to keep (sorted, deduplicated); every other one is closed.
    keep: Vec<RawFd>,
    ifname: [u8; libc::IFNAMSIZ],
    with_tap: bool,
    uid: libc::uid_t,
    gid: libc::gid_t,
    request: Vec<u8>,
    /// A reply: tag, then up to CHUNK bytes.
    chunk: Vec<u8>,
    /// Frames from the link.
    frames: Vec<Vec<u8>>,
    lens: Vec<usize>,
    /// A frame from the tap.
    frame: Vec<u8>,
    argv: Vec<*const c_char>,
}

fn errno() -> i32 {
    errno_of(&io::Error::last_os_error())
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl<'fd> Helper<'fd> {
    pub(super) fn new(
        control: BorrowedFd<'fd>,
        mut keep: Vec<RawFd>,
        ifname: &str,
        with_tap: bool,
    ) -> io::Result<Helper<'fd>> {
        keep.sort_unstable();
        keep.dedup();
        let mut name = [0u8; libc::IFNAMSIZ];
        if ifname.len() >= name.len() || ifname.contains('%') {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        name[..ifname.len()].copy_from_slice(ifname.as_bytes());
        Ok(Helper {
            control,
            keep,
            ifname: name,
            with_tap,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            request: vec![0; MAX_REQUEST + 1],
            chunk: vec![0; CHUNK + 1],
            frames: (0..BATCH).map(|_| vec![0; MAX_FRAME]).collect(),
            lens: vec![0; BATCH],
            frame: vec![0; MAX_FRAME],
            argv: Vec::with_capacity(MAX_ARGS + 1),
        })
    }

    /// The helper's life: set up, report, serve until the application goes.
    /// Returns the exit code.
    pub(super) fn run(&mut self, link: Option<&mut dyn Link>) -> i32 {
        match self.setup() {
            Ok(tap) => {
                self.ready(0, 0);
                self.serve(tap, link);
                0
            }
            Err((stage, errno)) => {
                self.ready(errno, stage as u8);
                1
            }
        }
    }

    fn ready(&mut self, errno: i32, stage: u8) {
        let mut msg = [0u8; 6];
        msg[0] = REP_READY;
        msg[1..5].copy_from_slice(&errno.to_ne_bytes());
        msg[5] = stage;
        self.send(&msg, None);
    }

    /// Steps 1 to 3 of the module doc; returns the tap, if any.
    fn setup(&mut self) -> Result<Option<OwnedFd>, (Stage, i32)> {
        reset_signals(&[libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP, libc::SIGPIPE]);
        close_all_but(&self.keep).map_err(|e| (Stage::Descriptors, e))?;
        fill_standard_streams();
        for &fd in &self.keep {
            if fd > 2 {
                // SAFETY: a descriptor we keep, open for the helper's whole life.
                let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                let _ = sys::set_cloexec(fd, true);
            }
        }
        // SAFETY: unshare takes flags only; this process is single-threaded.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } < 0 {
            return Err((Stage::UserNamespace, errno()));
        }
        let mut line = [0u8; 32];
        // Without CAP_SETGID in the parent namespace, setgroups must be denied before
        // gid_map can be written. Kernels before 3.19 have no such file.
        match write_file(c"/proc/self/setgroups", b"deny") {
            Ok(()) | Err(libc::ENOENT) => {}
            Err(e) => return Err((Stage::IdMaps, e)),
        }
        let uid_line = id_map(&mut line, self.uid);
        write_file(c"/proc/self/uid_map", uid_line).map_err(|e| (Stage::IdMaps, e))?;
        let gid_line = id_map(&mut line, self.gid);
        write_file(c"/proc/self/gid_map", gid_line).map_err(|e| (Stage::IdMaps, e))?;
        if !self.with_tap {
            return Ok(None);
        }
        open_tap(&self.ifname)
            .map(Some)
            .map_err(|e| (Stage::Tap, e))
    }

    /// Sends a message, with `fd` attached if given. Failures mean the application
    /// is gone, which the next receive sees.
    fn send(&self, msg: &[u8], fd: Option<BorrowedFd<'_>>) {
        let _ = sys::send_message(self.control, msg, fd);
    }

    /// The poll loop of step 4.
    fn serve(&mut self, tap: Option<OwnedFd>, mut link: Option<&mut dyn Link>) {
        let tap = tap.as_ref().map(|tap| tap.as_fd());
        let data_fd = link.as_ref().and_then(|l| l.data_fd());
        let hangup_fd = link
            .as_ref()
            .and_then(|l| l.hangup_fd())
            .filter(|&fd| Some(fd) != data_fd);
        // A frame from the tap the link could not take yet (its length in `frame`).
        let mut pending: Option<usize> = None;
        loop {
            let live = link.is_some() && tap.is_some();
            let mut pfds = [libc::pollfd {
                fd: -1,
                events: 0,
                revents: 0,
            }; 4];
            pfds[0] = pollfd(self.control.as_raw_fd(), libc::POLLIN);
            if live {
                if let Some(tap) = tap {
                    let events = if pending.is_none() { libc::POLLIN } else { 0 };
                    pfds[1] = pollfd(tap.as_raw_fd(), events);
                }
                if let Some(fd) = data_fd {
                    let out = if pending.is_some() { libc::POLLOUT } else { 0 };
                    pfds[2] = pollfd(fd, libc::POLLIN | out);
                }
                if let Some(fd) = hangup_fd {
                    pfds[3] = pollfd(fd, libc::POLLIN);
                }
            }
            // SAFETY: four valid pollfds (fd -1 entries are ignored by poll).
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                return;
            }
            if pfds[0].revents != 0 && !self.serve_request() {
                return;
            }
            let (Some(tap), Some(l)) = (tap, link.as_deref_mut()) else {
                continue;
            };
            let mut dead = false;
            if pfds[3].revents != 0 && l.hung_up() {
                dead = true;
            }
            if pfds[2].revents & libc::POLLOUT != 0 {
                if let Some(len) = pending {
                    match l.send(&self.frame[..len]) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        _ => pending = None,
                    }
                }
            }
            if pfds[2].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                dead |= !self.link_to_tap(l, tap);
            }
            if pfds[1].revents != 0 && pending.is_none() {
                pending = self.tap_to_link(tap, l);
            }
            if dead {
                // The far end is gone: the interface stays, with nothing behind it.
                link = None;
                pending = None;
            }
        }
    }

    /// Frames from the link to the tap; false once the link has failed for good.
    fn link_to_tap(&mut self, link: &mut dyn Link, tap: BorrowedFd<'_>) -> bool {
        for _ in 0..8 {
            match link.recv_batch(&mut self.frames, &mut self.lens) {
                Ok(count) => {
                    for (frame, &len) in self.frames.iter().zip(&self.lens).take(count) {
                        // A full tap queue drops the frame, as a busy NIC would.
                        let _ = sys::write(tap, &frame[..len.min(frame.len())]);
                    }
                    if count < BATCH {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Frames from the tap to the link; returns the length of a frame the link
    /// could not take yet.
    fn tap_to_link(&mut self, tap: BorrowedFd<'_>, link: &mut dyn Link) -> Option<usize> {
        for _ in 0..TAP_BURST {
            let len = match sys::read(tap, &mut self.frame) {
                Ok(0) | Err(_) => return None,
                Ok(len) => len,
            };
            match link.send(&self.frame[..len]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(len),
                // Other failures drop the frame; a hang-up shows on the hang-up fd.
                _ => {}
            }
        }
        None
    }

    /// Reads and answers one request; false when the application has gone.
    fn serve_request(&mut self) -> bool {
        let len = match sys::recv_nonblocking(self.control, &mut self.request) {
            Ok(0) => return false,
            Ok(len) => len,
            Err(e) => return matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)),
        };
        match self.request[0] {
            REQ_SOCKET if len == 13 => {
                let int = |at: usize| {
                    let b = &self.request[at..at + 4];
                    i32::from_ne_bytes([b[0], b[1], b[2], b[3]])
                };
                let (domain, ty, protocol) = (int(1), int(5), int(9));
                let socket = sys::socket(domain, ty, protocol);
                let mut reply = [0u8; 5];
                reply[0] = REP_SOCKET;
                let err = socket.as_ref().err().map_or(0, errno_of);
                reply[1..5].copy_from_slice(&err.to_ne_bytes());
                self.send(&reply, socket.as_ref().ok().map(|fd| fd.as_fd()));
                if let Ok(fd) = socket {
                    // The application has its own copy now.
                    sys::close(fd);
                }
            }
            REQ_COMMAND if len > 1 && self.request[len - 1] == 0 && len <= MAX_REQUEST => {
                let status = self.run_command(len);
                let mut reply = [0u8; 5];
                reply[0] = REP_DONE;
                reply[1..5].copy_from_slice(&status.to_ne_bytes());
                self.send(&reply, None);
            }
            _ => {
                let mut reply = [0u8; 5];
                reply[0] = REP_DONE;
                reply[1..5].copy_from_slice(&2i32.to_ne_bytes());
                self.send(&reply, None);
            }
        }
        true
    }

    /// Runs the command in `request[1..len]` (NUL-terminated words), sending its
    /// output as it comes; returns its exit status (128 + signal if killed).
    fn run_command(&mut self, len: usize) -> i32 {
        self.argv.clear();
        let mut start = 1;
        for i in 1..len {
            if self.request[i] == 0 {
                if self.argv.len() == MAX_ARGS {
                    return 2;
                }
                self.argv.push(self.request[start..].as_ptr().cast());
                start = i + 1;
            }
        }
        self.argv.push(std::ptr::null());
        let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC);
        let Ok((out_read, out_write)) = pipe() else {
            return 2;
        };
        let Ok((err_read, err_write)) = pipe() else {
            close_fds([out_read, out_write]);
            return 2;
        };
        // SAFETY: the child only makes raw system calls and async-signal-safe calls
        // before execv or _exit (`exec_child`).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            exec_child(&self.argv, out_write.as_fd(), err_write.as_fd());
        }
        close_fds([out_write, err_write]);
        if pid < 0 {
            close_fds([out_read, err_read]);
            return 2;
        }
        self.forward_output(out_read.as_fd(), err_read.as_fd());
        close_fds([out_read, err_read]);
        let mut status = 0;
        loop {
            // SAFETY: `status` is valid for writes; `pid` is our child.
            let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
            if ret >= 0 {
                break;
            }
            if errno() != libc::EINTR {
                return 2;
            }
        }
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            2
        }
    }

    /// Sends what the command writes on its stdout and stderr pipes until both end.
    fn forward_output(&mut self, out: BorrowedFd<'_>, err: BorrowedFd<'_>) {
        let mut open = [true, true];
        let fds = [out, err];
        let tags = [REP_STDOUT, REP_STDERR];
        while open[0] || open[1] {
            let mut pfds = [
                pollfd(if open[0] { out.as_raw_fd() } else { -1 }, libc::POLLIN),
                pollfd(if open[1] { err.as_raw_fd() } else { -1 }, libc::POLLIN),
            ];
            // SAFETY: two valid pollfds.
            if unsafe { libc::poll(pfds.as_mut_ptr(), 2, -1) } < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                return;
            }
            for i in 0..2 {
                if pfds[i].revents == 0 {
                    continue;
                }
                match sys::read(fds[i], &mut self.chunk[1..=CHUNK]) {
                    Ok(n) if n > 0 => {
                        self.chunk[0] = tags[i];
                        self.send(&self.chunk[..=n], None);
                    }
                    _ => open[i] = false,
                }
            }
        }
    }
}

/// The command's process: standard streams in place, signals as a new program
/// expects them, then `execv`. Never returns.
fn exec_child(argv: &[*const c_char], out: BorrowedFd<'_>, err: BorrowedFd<'_>) -> ! {
    let null = rustix::fs::open(
        c"/dev/null",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    );
    if let Ok(null) = null {
        let _ = rustix::stdio::dup2_stdin(&null);
        // Not closed: close-on-exec does it, or `_exit`.
        let _ = null.into_raw_fd();
    }
    let _ = rustix::stdio::dup2_stdout(out);
    let _ = rustix::stdio::dup2_stderr(err);
    reset_signals(&[]);
    // SAFETY: only async-signal-safe calls on valid arguments: `none` is a signal
    // set sigemptyset fills before use; `argv` is a NULL-terminated array of
    // pointers to NUL-terminated words in the request buffer, which this process
    // owns a copy of.
    unsafe {
        let mut none: libc::sigset_t = mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execv(argv[0], argv.as_ptr());
    }
    let missing = errno() == libc::ENOENT;
    // SAFETY: argv[0] points at a NUL-terminated word (see above).
    let name = unsafe { std::ffi::CStr::from_ptr(argv[0]) }.to_bytes();
    let why: &[u8] = if missing {
        b": command not found (stackcmd commands need a full path)\n"
    } else {
        b": cannot execute\n"
    };
    let stderr = rustix::stdio::stderr();
    let _ = sys::write(stderr, name);
    let _ = sys::write(stderr, why);
    // SAFETY: ends this process without running anything of the application's.
    unsafe { libc::_exit(2) }
}

/// Every catchable signal to its default action, then `ignore` ignored.
fn reset_signals(ignore: &[libc::c_int]) {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let action = if ignore.contains(&sig) {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: `signal` with SIG_DFL or SIG_IGN installs no handler code.
        unsafe { libc::signal(sig, action) };
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Closes descriptors of the helper's (raw close(2), see the module doc).
fn close_fds<const N: usize>(fds: [OwnedFd; N]) {
    for fd in fds {
        sys::close(fd);
    }
}

/// Closes every descriptor not in `keep` (sorted).
fn close_all_but(keep: &[RawFd]) -> Result<(), i32> {
    let mut from: u32 = 0;
    for &fd in keep.iter().chain(std::iter::once(&-1)) {
        let to = if fd < 0 { u32::MAX } else { fd as u32 };
        if to > from {
            sys::close_range(from, to - 1).map_err(|e| errno_of(&e))?;
        }
        from = to.saturating_add(1);
    }
    Ok(())
}

/// Descriptors 0 to 2 open (on `/dev/null` where they are not), so that no pipe
/// made later lands on them and gets mixed up with the standard streams of a
/// command. `open` takes the lowest free descriptor: the first one above 2 means
/// the three are open.
fn fill_standard_streams() {
    for _ in 0..3 {
        let Ok(null) = rustix::fs::open(c"/dev/null", OFlags::RDWR, Mode::empty()) else {
            return;
        };
        if null.as_raw_fd() > 2 {
            sys::close(null);
            return;
        }
        // A standard stream from now on, for the helper's life.
        let _ = null.into_raw_fd();
    }
}

/// Writes `data` to the file at `path` in one `write`.
fn write_file(path: &std::ffi::CStr, data: &[u8]) -> Result<(), i32> {
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| e.raw_os_error())?;
    let result = match sys::write(fd.as_fd(), data) {
        Ok(n) if n == data.len() => Ok(()),
        Ok(_) => Err(libc::EIO),
        Err(e) => Err(errno_of(&e)),
    };
    close_fds([fd]);
    result
}

/// `0 ID 1`: root in the namespace is `id` outside it.
fn id_map(buf: &mut [u8; 32], id: u32) -> &[u8] {
    buf[..2].copy_from_slice(b"0 ");
    let mut digits = [0u8; 10];
    let mut n = id;
    let mut count = 0;
    loop {
        digits[count] = b'0' + (n % 10) as u8;
        count += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..count {
        buf[2 + i] = digits[count - 1 - i];
    }
    buf[2 + count..4 + count].copy_from_slice(b" 1");
    &buf[..4 + count]
}

/// Creates the tap `name` (non-blocking, close-on-exec) in this network namespace.
fn open_tap(name: &[u8; libc::IFNAMSIZ]) -> Result<OwnedFd, i32> {
    let fd = rustix::fs::open(
        c"/dev/net/tun",
        OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| e.raw_os_error())?;
    // SAFETY: ifreq is plain data; zeroed is a valid empty request.
    let mut ifr: libc::ifreq = unsafe { mem::zeroed() };
    for (dst, &src) in ifr.ifr_name.iter_mut().zip(name.iter()) {
        *dst = src as c_char;
    }
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which `ifr` is; `fd` is the tun
    // device, which takes it.
    let result = unsafe {
        rustix::ioctl::ioctl(
            &fd,
            rustix::ioctl::Updater::<TUNSETIFF, libc::ifreq>::new(&mut ifr),
        )
    };
    match result {
        Ok(()) => Ok(fd),
        Err(e) => {
            close_fds([fd]);
            Err(e.raw_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::id_map;

    #[test]
    fn id_map_lines() {
        let mut buf = [0u8; 32];
        assert_eq!(id_map(&mut buf, 0), b"0 0 1");
        assert_eq!(id_map(&mut buf, 1000), b"0 1000 1");
        assert_eq!(id_map(&mut buf, u32::MAX), b"0 4294967295 1");
    }
}
