//! The helper process: what runs in the fork child, and only there.
//!
//! The parent module explains the rules this code keeps: raw system calls on
//! buffers allocated before the fork, no standard streams, no environment, no
//! threads, no locks, and leaving through `_exit` only.

use super::{
    Stage, CHUNK, MAX_ARGS, MAX_REQUEST, REP_DONE, REP_READY, REP_SOCKET, REP_STDERR, REP_STDOUT,
    REQ_COMMAND, REQ_SOCKET,
};
use crate::link::{Link, MAX_FRAME};
use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::os::raw::c_char;

/// Frames taken from the link per call.
const BATCH: usize = 32;
/// Frames taken from the tap per wake-up, so that the link side gets its turn.
const TAP_BURST: usize = 64;
/// `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// Everything the helper needs, allocated before the fork.
pub(super) struct Helper {
    control: RawFd,
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
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

impl Helper {
    pub(super) fn new(
        control: RawFd,
        mut keep: Vec<RawFd>,
        ifname: &str,
        with_tap: bool,
    ) -> io::Result<Helper> {
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
            // SAFETY: geteuid and getegid have no preconditions and cannot fail.
            uid: unsafe { libc::geteuid() },
            // SAFETY: as above.
            gid: unsafe { libc::getegid() },
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
    fn setup(&mut self) -> Result<Option<RawFd>, (Stage, i32)> {
        reset_signals(&[libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP, libc::SIGPIPE]);
        close_all_but(&self.keep).map_err(|e| (Stage::Descriptors, e))?;
        // Descriptors 0 to 2 open, so that no pipe made later lands on them and gets
        // mixed up with the standard streams of a command.
        for fd in 0..3 {
            // SAFETY: F_GETFD takes no argument; open gets a NUL-terminated path.
            unsafe {
                if libc::fcntl(fd, libc::F_GETFD) < 0 {
                    libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                }
            }
        }
        for &fd in &self.keep {
            if fd > 2 {
                // SAFETY: F_SETFD on a descriptor we keep; no pointers.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
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
    fn send(&self, msg: &[u8], fd: Option<RawFd>) {
        let mut iov = libc::iovec {
            iov_base: msg.as_ptr() as *mut libc::c_void,
            iov_len: msg.len(),
        };
        // Room for one descriptor, aligned as a cmsghdr.
        let mut space = [0u64; 4];
        // SAFETY: msghdr is plain data; zeroed is a valid empty header.
        let mut hdr: libc::msghdr = unsafe { mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        if let Some(fd) = fd {
            // SAFETY: CMSG_SPACE is a pure size computation.
            let len = unsafe { libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32) } as usize;
            hdr.msg_control = space.as_mut_ptr().cast();
            hdr.msg_controllen = len as _;
            // SAFETY: `space` (32 bytes, 8-aligned) holds one cmsg with one fd, so
            // CMSG_FIRSTHDR is non-null and CMSG_DATA has room for the descriptor.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&hdr);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<RawFd>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
            }
        }
        loop {
            // SAFETY: `hdr` and what it points to outlive the call.
            let ret = unsafe { libc::sendmsg(self.control, &hdr, libc::MSG_NOSIGNAL) };
            if ret >= 0 || errno() != libc::EINTR {
                return;
            }
        }
    }

    /// The poll loop of step 4.
    fn serve(&mut self, tap: Option<RawFd>, mut link: Option<&mut dyn Link>) {
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
            pfds[0] = pollfd(self.control, libc::POLLIN);
            if live {
                if let Some(tap) = tap {
                    let events = if pending.is_none() { libc::POLLIN } else { 0 };
                    pfds[1] = pollfd(tap, events);
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
    fn link_to_tap(&mut self, link: &mut dyn Link, tap: RawFd) -> bool {
        for _ in 0..8 {
            match link.recv_batch(&mut self.frames, &mut self.lens) {
                Ok(count) => {
                    for (frame, &len) in self.frames.iter().zip(&self.lens).take(count) {
                        // A full tap queue drops the frame, as a busy NIC would.
                        // SAFETY: `frame[..len]` is valid for reads.
                        unsafe { libc::write(tap, frame.as_ptr().cast(), len.min(frame.len())) };
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
    fn tap_to_link(&mut self, tap: RawFd, link: &mut dyn Link) -> Option<usize> {
        for _ in 0..TAP_BURST {
            // SAFETY: `frame` is valid for writes of its length.
            let n = unsafe { libc::read(tap, self.frame.as_mut_ptr().cast(), self.frame.len()) };
            if n <= 0 {
                return None;
            }
            let len = n as usize;
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
        // SAFETY: `request` is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                self.control,
                self.request.as_mut_ptr().cast(),
                self.request.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return matches!(errno(), libc::EINTR | libc::EAGAIN);
        }
        if n == 0 {
            return false;
        }
        let len = n as usize;
        match self.request[0] {
            REQ_SOCKET if len == 13 => {
                let int = |at: usize| {
                    let b = &self.request[at..at + 4];
                    i32::from_ne_bytes([b[0], b[1], b[2], b[3]])
                };
                let (domain, ty, protocol) = (int(1), int(5), int(9));
                // SAFETY: socket takes integers only.
                let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) };
                let mut reply = [0u8; 5];
                reply[0] = REP_SOCKET;
                let err = if fd < 0 { errno() } else { 0 };
                reply[1..5].copy_from_slice(&err.to_ne_bytes());
                self.send(&reply, (fd >= 0).then_some(fd));
                if fd >= 0 {
                    // SAFETY: the socket is ours; the application has its own copy now.
                    unsafe { libc::close(fd) };
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
        let mut out = [0; 2];
        let mut err = [0; 2];
        // SAFETY: each array has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(out.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return 2;
        }
        // SAFETY: as above.
        if unsafe { libc::pipe2(err.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            close_fds(&out);
            return 2;
        }
        // SAFETY: the child only calls async-signal-safe functions before execv or
        // _exit (`exec_child`).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            exec_child(&self.argv, out[1], err[1]);
        }
        close_fds(&[out[1], err[1]]);
        if pid < 0 {
            close_fds(&[out[0], err[0]]);
            return 2;
        }
        self.forward_output(out[0], err[0]);
        close_fds(&[out[0], err[0]]);
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
    fn forward_output(&mut self, out: RawFd, err: RawFd) {
        let mut open = [true, true];
        let fds = [out, err];
        let tags = [REP_STDOUT, REP_STDERR];
        while open[0] || open[1] {
            let mut pfds = [
                pollfd(if open[0] { out } else { -1 }, libc::POLLIN),
                pollfd(if open[1] { err } else { -1 }, libc::POLLIN),
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
                // SAFETY: `chunk[1..]` is valid for writes of CHUNK bytes.
                let n = unsafe { libc::read(fds[i], self.chunk[1..].as_mut_ptr().cast(), CHUNK) };
                if n > 0 {
                    self.chunk[0] = tags[i];
                    let msg = &self.chunk[..=n as usize];
                    self.send(msg, None);
                } else if n == 0 || errno() != libc::EINTR {
                    open[i] = false;
                }
            }
        }
    }
}

/// The command's process: standard streams in place, signals as a new program
/// expects them, then `execv`. Never returns.
fn exec_child(argv: &[*const c_char], out: RawFd, err: RawFd) -> ! {
    // SAFETY: only async-signal-safe calls on valid arguments: `argv` is a
    // NULL-terminated array of pointers to NUL-terminated words in the request
    // buffer, which this process owns a copy of.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
        }
        libc::dup2(out, 1);
        libc::dup2(err, 2);
        reset_signals(&[]);
        let mut none: libc::sigset_t = mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execv(argv[0], argv.as_ptr());
        let missing = errno() == libc::ENOENT;
        let name = std::ffi::CStr::from_ptr(argv[0]).to_bytes();
        libc::write(2, name.as_ptr().cast(), name.len());
        let why: &[u8] = if missing {
            b": command not found (stackcmd commands need a full path)\n"
        } else {
            b": cannot execute\n"
        };
        libc::write(2, why.as_ptr().cast(), why.len());
        libc::_exit(2)
    }
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

fn close_fds(fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: each descriptor is ours and closed once.
        unsafe { libc::close(fd) };
    }
}

/// Closes every descriptor not in `keep` (sorted).
fn close_all_but(keep: &[RawFd]) -> Result<(), i32> {
    let mut from: u32 = 0;
    for &fd in keep.iter().chain(std::iter::once(&-1)) {
        let to = if fd < 0 { u32::MAX } else { fd as u32 };
        if to > from {
            close_range(from, to - 1)?;
        }
        from = to.saturating_add(1);
    }
    Ok(())
}

/// Closes descriptors `first..=last`.
fn close_range(first: u32, last: u32) -> Result<(), i32> {
    // SAFETY: close_range takes integers only; the descriptors closed are none we use.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if ret == 0 {
        return Ok(());
    }
    if errno() != libc::ENOSYS {
        return Err(errno());
    }
    // Kernels before 5.9: one by one, up to the descriptor limit.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is valid for writes.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(1 << 20) as u32
    } else {
        1 << 16
    };
    for fd in first..=last.min(max) {
        // SAFETY: closing a descriptor we do not use (EBADF when not open).
        unsafe { libc::close(fd as RawFd) };
    }
    Ok(())
}

/// Writes `data` to the file at `path` in one `write`.
fn write_file(path: &std::ffi::CStr, data: &[u8]) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `data` is valid for reads of its length.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    let result = if n == data.len() as isize {
        Ok(())
    } else {
        Err(if n < 0 { errno() } else { libc::EIO })
    };
    close_fds(&[fd]);
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
fn open_tap(name: &[u8; libc::IFNAMSIZ]) -> Result<RawFd, i32> {
    // SAFETY: a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: ifreq is plain data; zeroed is a valid empty request.
    let mut ifr: libc::ifreq = unsafe { mem::zeroed() };
    for (dst, &src) in ifr.ifr_name.iter_mut().zip(name.iter()) {
        *dst = src as c_char;
    }
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which `ifr` is.
    if unsafe { libc::ioctl(fd, TUNSETIFF as _, &mut ifr) } < 0 {
        let e = errno();
        close_fds(&[fd]);
        return Err(e);
    }
    Ok(fd)
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
