//! A link over a coprocess: `vdenet = "=command args"`.
//!
//! The reference libvdestack accepts, instead of a VDE locator, a command line after
//! an `=`: it runs the command and exchanges frames with it on the command's stdin
//! and stdout as a VDE *stream*, each frame a 2-byte big-endian length followed by
//! the frame's bytes (`vde_plug vde:///tmp/sw` speaks exactly that, so
//! `"=vde_plug vde:///tmp/sw"` plugs a stack into a switch through a helper process,
//! and `"=ssh host vde_plug"` into a remote one). This module gives the pump the same.
//!
//! It has two parts:
//! - a pure codec ([`StreamDecoder`], [`encode_frame`]) with no I/O, so it can be
//!   tested and fuzzed on its own. A frame longer than [`MAX_STREAM_FRAME`]
//!   (9234 + 2 bytes) is a framing error, after which the stream is unusable (there is
//!   no way to find the next frame boundary); zero-length frames are skipped;
//! - [`StreamLink`], which owns the child and its two pipes.
//!
//! What the pump's contract ([`super::Link`]) asks of a pipe pair, and how it is met:
//! - nothing may block: both pipe ends are `O_NONBLOCK` (and close-on-exec).
//! - receiving: bytes are read into the decoder only when it holds no whole frame,
//!   so it never buffers more than one read beyond a partial frame. End of file on
//!   the child's stdout is the hang-up: [`Link::hangup_fd`] is `None`.
//! - sending: a pipe takes a frame partly when it is nearly full, and a partial frame
//!   must not be followed by the start of another. So encoded frames go through a
//!   backlog: whatever the pipe does not take now stays there and is written first
//!   next time (on the next send, receive or [`Link::hung_up`]). The pump retries a
//!   `WouldBlock` send only when `data_fd` becomes writable, which the read end of a
//!   pipe never does, so `send` never says `WouldBlock`: beyond a bound on the backlog
//!   ([`BACKLOG_LIMIT`]) frames are dropped and counted ([`StreamLink::dropped`]), as
//!   a full switch port drops them. TCP recovers from a lost frame; it would not from
//!   a pump stuck for ever.
//! - `SIGPIPE`: writing to a pipe whose reader has gone raises `SIGPIPE` in the
//!   writing thread, which kills a host program that did not ignore it. Each flush
//!   blocks `SIGPIPE` for the calling thread, and after an `EPIPE` takes the signal
//!   it raised with a zero-timeout `sigtimedwait` before restoring the mask (see
//!   [`SigpipeBlocked`]). The link then reports `BrokenPipe`.
//! - the child ends with the link: dropping it closes both pipes, sends `SIGTERM`,
//!   waits at most [`TERM_GRACE`] for the child to exit, then sends `SIGKILL`, and
//!   reaps it. Only the child itself is signalled; processes it started are its
//!   business (they see their pipes close).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Link, MAX_FRAME};

/// The longest frame a VDE stream carries: libvdeplug's `VDE_ETHBUFSIZE` + 2. A
/// longer length field is a framing error.
pub const MAX_STREAM_FRAME: usize = MAX_FRAME + 2;

/// The length field in front of every frame.
const HEADER: usize = 2;

/// How many encoded bytes wait in a link's send backlog at most; frames that would
/// go beyond are dropped.
pub const BACKLOG_LIMIT: usize = 256 * 1024;

/// How long a dropped link's child has to exit after `SIGTERM` before `SIGKILL`.
pub const TERM_GRACE: Duration = Duration::from_millis(250);

/// How many bytes one read from the child's stdout asks for (a default pipe's size).
const READ_CHUNK: usize = 64 * 1024;

/// How many reads one `recv` makes at most without finding a frame (only a child
/// writing nothing but empty frames gets there) before it yields with `WouldBlock`.
const MAX_READS: usize = 16;

/// A length field above [`MAX_STREAM_FRAME`]: the stream cannot be decoded further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingError {
    len: usize,
}

impl FramingError {
    /// The frame length that was declared (or, from [`encode_frame`], offered).
    pub fn frame_len(&self) -> usize {
        self.len
    }
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VDE stream framing error: a frame of {} bytes (at most {MAX_STREAM_FRAME})",
            self.len
        )
    }
}

impl std::error::Error for FramingError {}

/// Appends `frame` to `out` as a VDE stream record: its length as 2 big-endian bytes,
/// then its bytes. A frame longer than [`MAX_STREAM_FRAME`] is refused and nothing is
/// appended.
pub fn encode_frame(frame: &[u8], out: &mut Vec<u8>) -> Result<(), FramingError> {
    let Ok(len) = u16::try_from(frame.len()) else {
        return Err(FramingError { len: frame.len() });
    };
    if frame.len() > MAX_STREAM_FRAME {
        return Err(FramingError { len: frame.len() });
    }
    out.reserve(HEADER + frame.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(frame);
    Ok(())
}

/// Cuts a VDE byte stream back into frames, whatever pieces the bytes arrive in.
///
/// Bytes go in with [`push`](Self::push); whole frames come out of
/// [`next_frame`](Self::next_frame), zero-length ones skipped. Pure: no I/O, no panics
/// on any input.
pub struct StreamDecoder {
    /// Storage; the bytes not yet decoded are `buf[start..end]`. Space after `end` is
    /// kept (initialised) for the next bytes, so reading into it costs no zeroing.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Set at the first bad length field; sticky.
    error: Option<FramingError>,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StreamDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamDecoder")
            .field("buffered", &self.buffered())
            .field("error", &self.error)
            .finish()
    }
}

impl StreamDecoder {
    /// An empty decoder at a frame boundary.
    pub fn new() -> StreamDecoder {
        StreamDecoder {
            buf: Vec::new(),
            start: 0,
            end: 0,
            error: None,
        }
    }

    /// Adds the next bytes of the stream. Once the decoder has found a framing error
    /// the bytes are ignored.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.error.is_some() || bytes.is_empty() {
            return;
        }
        self.make_room(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// The next whole frame, `None` when more bytes are needed first, or the framing
    /// error, which every later call returns again (the stream is unusable from there).
    pub fn next_frame(&mut self) -> Option<Result<&[u8], FramingError>> {
        if let Some(err) = self.error {
            return Some(Err(err));
        }
        loop {
            let waiting = &self.buf[self.start..self.end];
            let &[hi, lo, ..] = waiting else {
                return None;
            };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if len > MAX_STREAM_FRAME {
                let err = FramingError { len };
                self.error = Some(err);
                // Nothing buffered will ever be decoded: free it.
                self.buf = Vec::new();
                self.start = 0;
                self.end = 0;
                return Some(Err(err));
            }
            if waiting.len() < HEADER + len {
                return None;
            }
            let frame = self.start + HEADER;
            self.start = frame + len;
            if len > 0 {
                return Some(Ok(&self.buf[frame..frame + len]));
            }
        }
    }

    /// How many bytes are buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// True once a framing error was found.
    pub fn is_broken(&self) -> bool {
        self.error.is_some()
    }

    /// Lets `read` put up to `max` bytes straight into the buffer (the link's read
    /// from the pipe, without a copy through a scratch buffer); returns what it read.
    fn fill(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.make_room(max);
        let n = read(&mut self.buf[self.end..self.end + max])?.min(max);
        if self.error.is_none() {
            self.end += n;
        }
        Ok(n)
    }

    /// Makes `buf[end..end + n]` available, moving the undecoded bytes to the front
    /// when that avoids growing.
    fn make_room(&mut self, n: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end >= n {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < n {
            self.buf.resize(self.end + n, 0);
        }
    }
}

/// Splits a command line into words as a POSIX shell does for simple commands:
/// space, tab and newline separate words; single quotes keep everything literally;
/// in double quotes a backslash escapes only `$`, `` ` ``, `"`, `\` and newline; an
/// unquoted backslash escapes any character (a backslash-newline disappears); a quote
/// left open closes at the end. Nothing else is special: no variables, globs,
/// redirections or `;` (a comma in a `vde_plug` option stays in its word).
fn split_words(line: &str) -> Vec<String> {
    #[derive(Clone, Copy)]
    enum Mode {
        Plain,
        Single,
        Double,
    }
    let mut words = Vec::new();
    // A quoted empty string ('') is still a word: "in a word" is kept apart from the
    // word's text.
    let mut word: Option<String> = None;
    let mut mode = Mode::Plain;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (mode, c) {
            (Mode::Single, '\'') | (Mode::Double, '"') => mode = Mode::Plain,
            (Mode::Single, _) => word.get_or_insert_with(String::new).push(c),
            (Mode::Double, '\\') => {
                let w = word.get_or_insert_with(String::new);
                match chars.peek() {
                    Some('\n') => {
                        chars.next();
                    }
                    Some(&e @ ('$' | '`' | '"' | '\\')) => {
                        chars.next();
                        w.push(e);
                    }
                    _ => w.push('\\'),
                }
            }
            (Mode::Double, _) => word.get_or_insert_with(String::new).push(c),
            (Mode::Plain, '\'') => {
                word.get_or_insert_with(String::new);
                mode = Mode::Single;
            }
            (Mode::Plain, '"') => {
                word.get_or_insert_with(String::new);
                mode = Mode::Double;
            }
            (Mode::Plain, '\\') => match chars.next() {
                Some('\n') => {}
                Some(e) => word.get_or_insert_with(String::new).push(e),
                None => word.get_or_insert_with(String::new).push('\\'),
            },
            (Mode::Plain, ' ' | '\t' | '\n') => words.extend(word.take()),
            (Mode::Plain, _) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

fn broken_pipe() -> io::Error {
    io::Error::from_raw_os_error(libc::EPIPE)
}

/// `{SIGPIPE}`.
fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it fully before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; SIGPIPE is a valid signal number.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
    }
    set
}

/// True if `SIGPIPE` is pending for the calling thread or the process.
fn sigpipe_pending() -> bool {
    // SAFETY: sigset_t is plain data, filled in by sigpending.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `pending` is valid for writes; sigismember only reads it.
    unsafe {
        libc::sigpending(&mut pending) == 0 && libc::sigismember(&pending, libc::SIGPIPE) == 1
    }
}

/// `SIGPIPE` blocked for the calling thread for as long as this value lives.
///
/// Blocking (rather than ignoring, which is process-wide and would change the host
/// program's behaviour) makes a write to a pipe without a reader fail with `EPIPE`
/// and leave the signal pending; [`absorb`](Self::absorb) then takes it, so that
/// restoring the mask delivers nothing. A `SIGPIPE` that was pending before (only
/// possible if the thread had it blocked already) is left alone: signals of one kind
/// do not queue, so the thread's state is then exactly what it was.
struct SigpipeBlocked {
    /// The thread had `SIGPIPE` blocked already: the mask is left as it is.
    was_blocked: bool,
    /// A `SIGPIPE` was pending before: it is not ours to take.
    pending_before: bool,
}

impl SigpipeBlocked {
    fn new() -> io::Result<SigpipeBlocked> {
        let set = sigpipe_set();
        // SAFETY: sigset_t is plain data, filled in by pthread_sigmask.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid signal set and `old` is valid for writes; this only
        // changes the calling thread's mask.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: `old` was filled in by pthread_sigmask.
        let was_blocked = unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1;
        Ok(SigpipeBlocked {
            was_blocked,
            pending_before: was_blocked && sigpipe_pending(),
        })
    }

    /// Takes the `SIGPIPE` that a write failing with `EPIPE` just raised.
    fn absorb(&self) {
        if self.pending_before {
            return;
        }
        let set = sigpipe_set();
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            // SAFETY: `set` and `zero` are valid; a NULL siginfo is allowed; a zero
            // timeout makes this a poll: it returns at once, signal or not.
            let rc = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
            if rc >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return;
            }
        }
    }
}

impl Drop for SigpipeBlocked {
    fn drop(&mut self) {
        if self.was_blocked {
            return;
        }
        let set = sigpipe_set();
        // SAFETY: `set` is a valid signal set; a NULL old set is allowed; this only
        // unblocks SIGPIPE in the calling thread, as it was before `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

/// Waits at most `grace` for `child` to exit (without reaping it); true if it did.
fn wait_exit(child: &mut Child, grace: Duration) -> bool {
    // `child` is not reaped yet, so its pid names no other process.
    if let Ok(pidfd) = crate::sys::pidfd_open(child.id()) {
        let deadline = Instant::now() + grace;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match crate::sys::poll_one(pidfd.as_fd(), crate::sys::PollFlags::IN, Some(left)) {
                Ok(revents) => return !revents.is_empty(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
    // No pidfd (old kernel, seccomp): poll the child's status with short naps.
    let deadline = Instant::now() + grace;
    let mut nap = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) => {}
            Err(_) => return false,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(nap.min(left));
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// The child process; terminated and reaped on drop.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let child = &mut self.0;
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // SAFETY: kill takes plain integers. The pid is our child's and it has not
        // been reaped (we hold the only `Child`), so it cannot name another process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        if !wait_exit(child, TERM_GRACE) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// Why receiving has stopped for good.
#[derive(Debug, Clone, Copy)]
enum ReadEnd {
    /// End of file: the child closed its stdout (or exited).
    Eof,
    /// The child wrote something that is not a VDE stream.
    Framing(FramingError),
    /// A read failed with this errno.
    Failed(i32),
}

impl ReadEnd {
    fn error(self) -> io::Error {
        match self {
            ReadEnd::Eof => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the VDE stream command closed its output",
            ),
            ReadEnd::Framing(err) => io::Error::new(io::ErrorKind::InvalidData, err),
            ReadEnd::Failed(errno) => io::Error::from_raw_os_error(errno),
        }
    }
}

/// A link to a coprocess that speaks the VDE stream on its stdin and stdout (the
/// `"=command args"` form of a stack's network).
///
/// - Framing: each frame is a 2-byte big-endian length and the frame (see
///   [`StreamDecoder`]); a length above [`MAX_STREAM_FRAME`] from the child ends
///   receiving (`InvalidData`), like end of file (`UnexpectedEof`).
/// - Nothing blocks: both pipes are non-blocking. What the child's stdin does not take
///   waits in a backlog of at most 256 KiB, written first on the next send, receive or
///   [`Link::hung_up`]; frames beyond the bound are dropped and counted
///   ([`dropped`](Self::dropped)), as on a full switch port. `send` never returns
///   `WouldBlock` (the pump would wait for the wrong fd to become writable).
/// - A child that stopped reading gives `BrokenPipe`, never a `SIGPIPE` signal: it is
///   blocked in the writing thread around each write, and taken if raised.
/// - Dropping the link closes the pipes, sends the child `SIGTERM`, then `SIGKILL`
///   after 250 ms, and reaps it.
pub struct StreamLink {
    /// Our end of the child's stdin (write), non-blocking.
    to_child: OwnedFd,
    /// Our end of the child's stdout (read), non-blocking: the data fd.
    from_child: OwnedFd,
    decoder: StreamDecoder,
    /// Encoded frames the pipe has not taken yet: `out[out_start..]`.
    out: Vec<u8>,
    out_start: usize,
    /// Frames dropped because the backlog was full.
    dropped: u64,
    /// Set when receiving has ended.
    read_end: Option<ReadEnd>,
    /// Set when the child's stdin is gone (`EPIPE`) or a write failed.
    write_broken: bool,
    /// Last, so that it drops after the pipes are closed.
    child: Reaper,
}

impl fmt::Debug for StreamLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamLink")
            .field("pid", &self.pid())
            .field("data_fd", &self.from_child.as_raw_fd())
            .field("backlog", &self.backlog())
            .field("dropped", &self.dropped)
            .field("read_end", &self.read_end)
            .field("write_broken", &self.write_broken)
            .finish_non_exhaustive()
    }
}

impl StreamLink {
    /// Runs `cmdline` (what follows the `=` of a `vdenet`) as a coprocess and links to
    /// it through its stdin and stdout; its stderr is ours.
    ///
    /// The line is split into words as a shell would split a simple command (quotes
    /// and backslashes; no variables, globs, redirections or `;`), and the first word
    /// is looked up on `PATH` unless it contains a `/`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a blank command line or one with a NUL inside; otherwise the error
    /// of starting the command, e.g. `ENOENT` when it does not exist.
    pub fn spawn(cmdline: &str) -> io::Result<StreamLink> {
        if cmdline.contains('\0') {
            return Err(einval());
        }
        let argv = split_words(cmdline);
        let Some((program, args)) = argv.split_first() else {
            return Err(einval());
        };
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        // From here on, dropping `child` terminates and reaps the process.
        let mut child = Reaper(child);
        let to_child: OwnedFd = child.0.stdin.take().ok_or_else(einval)?.into();
        let from_child: OwnedFd = child.0.stdout.take().ok_or_else(einval)?.into();
        // Ours non-blocking and close-on-exec (std makes them close-on-exec already;
        // this does not depend on that).
        for end in [to_child.as_fd(), from_child.as_fd()] {
            crate::sys::set_nonblocking(end, true)?;
            crate::sys::set_cloexec(end, true)?;
        }
        Ok(StreamLink {
            to_child,
            from_child,
            decoder: StreamDecoder::new(),
            out: Vec::new(),
            out_start: 0,
            dropped: 0,
            read_end: None,
            write_broken: false,
            child,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// How many frames were dropped because the child did not read fast enough
    /// (read by the tests; the stack has no counter to show it in).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Encoded bytes waiting for the child to read them.
    fn backlog(&self) -> usize {
        self.out.len() - self.out_start
    }

    /// Writes as much of the backlog as the pipe takes now: `Ok(true)` when all of it
    /// went, `Ok(false)` when the pipe is full.
    fn flush(&mut self) -> io::Result<bool> {
        if self.write_broken {
            return Err(broken_pipe());
        }
        if self.backlog() == 0 {
            return Ok(true);
        }
        let fd = self.to_child.as_fd();
        let guard = SigpipeBlocked::new()?;
        let result = loop {
            let pending = &self.out[self.out_start..];
            if pending.is_empty() {
                break Ok(true);
            }
            // `fd` is our non-blocking pipe end, so this does not wait. SIGPIPE is
            // blocked.
            let err = match crate::sys::write(fd, pending) {
                Ok(0) => break Ok(false),
                Ok(n) => {
                    self.out_start += n;
                    continue;
                }
                Err(err) => err,
            };
            match err.raw_os_error() {
                Some(libc::EAGAIN) => break Ok(false),
                Some(libc::EPIPE) => {
                    guard.absorb();
                    break Err(err);
                }
                _ => break Err(err),
            }
        };
        drop(guard);
        if result.is_err() {
            self.write_broken = true;
            self.out = Vec::new();
            self.out_start = 0;
        } else if self.out_start == self.out.len() {
            self.out.clear();
            self.out_start = 0;
        } else if self.out_start > self.out.len() / 2 {
            // Amortised: the bytes moved are fewer than those written since the last move.
            self.out.drain(..self.out_start);
            self.out_start = 0;
        }
        result
    }

    /// Receives one frame without touching the send side.
    fn recv_one(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut reads = 0;
        loop {
            if let Some(end) = self.read_end {
                return Err(end.error());
            }
            match self.decoder.next_frame() {
                Some(Ok(frame)) => {
                    // Like a datagram socket, a short buffer gets the frame's start.
                    let n = frame.len().min(buf.len());
                    buf[..n].copy_from_slice(&frame[..n]);
                    return Ok(n);
                }
                Some(Err(err)) => {
                    self.read_end = Some(ReadEnd::Framing(err));
                    continue;
                }
                None => {}
            }
            if reads == MAX_READS {
                return Err(would_block());
            }
            reads += 1;
            let fd = self.from_child.as_fd();
            // `fd` is our non-blocking pipe end, so this does not wait.
            let got = self
                .decoder
                .fill(READ_CHUNK, |space| crate::sys::read(fd, space));
            match got {
                Ok(0) => self.read_end = Some(ReadEnd::Eof),
                Ok(_) => {}
                Err(err) => match err.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => return Err(err),
                    _ => {
                        let errno = err.raw_os_error().unwrap_or(libc::EIO);
                        self.read_end = Some(ReadEnd::Failed(errno));
                    }
                },
            }
        }
    }

    /// Moves what the pipe takes of a waiting backlog (errors are remembered and
    /// reported by the next send).
    fn flush_waiting(&mut self) {
        if self.backlog() > 0 && !self.write_broken {
            let _ = self.flush();
        }
    }
}

impl Link for StreamLink {
    fn data_fd(&self) -> Option<RawFd> {
        Some(self.from_child.as_raw_fd())
    }

    /// None: end of file on the data fd is the hang-up.
    fn hangup_fd(&self) -> Option<RawFd> {
        None
    }

    fn fds(&self) -> Vec<RawFd> {
        vec![self.from_child.as_raw_fd(), self.to_child.as_raw_fd()]
    }

    /// Receives the next frame. `UnexpectedEof` (for ever) once the child closed its
    /// output, `InvalidData` (for ever) after a framing error.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.flush_waiting();
        self.recv_one(buf)
    }

    /// Queues one frame for the child; see [`Link::send_batch`].
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.send_batch(&[frame]).map(|_| ())
    }

    /// Receives whole frames until none is waiting; an error that ends receiving is
    /// reported by the next call, so the frames before it are not lost.
    fn recv_batch(&mut self, bufs: &mut [Vec<u8>], lens: &mut [usize]) -> io::Result<usize> {
        self.flush_waiting();
        let mut count = 0;
        for (buf, len) in bufs.iter_mut().zip(lens.iter_mut()) {
            match self.recv_one(buf) {
                Ok(n) => *len = n,
                Err(e) if count > 0 && e.kind() != io::ErrorKind::Interrupted => break,
                Err(e) => return Err(e),
            }
            count += 1;
        }
        Ok(count)
    }

    /// Encodes the frames into the backlog and writes what the pipe takes, in one
    /// write. Never `WouldBlock`: a frame that would take the backlog beyond its
    /// bound (256 KiB) is dropped (and counted) but reported as taken. Empty frames
    /// are taken and not sent. A frame longer than [`MAX_STREAM_FRAME`] fails with
    /// `InvalidInput` when it comes first, and otherwise ends the batch. `BrokenPipe`
    /// once the child no longer reads its stdin.
    fn send_batch(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        // What waits goes first; and a pipe with room now saves dropping below.
        let mut pipe_full = !self.flush()?;
        let mut taken = 0;
        for frame in frames {
            if frame.len() > MAX_STREAM_FRAME {
                if taken == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        FramingError { len: frame.len() },
                    ));
                }
                break;
            }
            taken += 1;
            if frame.is_empty() {
                continue;
            }
            let need = HEADER + frame.len();
            if self.backlog() + need > BACKLOG_LIMIT && !pipe_full {
                pipe_full = !self.flush()?;
            }
            if self.backlog() + need > BACKLOG_LIMIT {
                self.dropped += 1;
                continue;
            }
            if self.out.is_empty() {
                self.out.reserve(BACKLOG_LIMIT.min(64 * 1024));
            }
            // The length was checked above, so this cannot fail.
            let _ = encode_frame(frame, &mut self.out);
        }
        if !pipe_full {
            self.flush()?;
        }
        Ok(taken)
    }

    /// True once the child's output ended (or was garbled), or its stdin is closed.
    fn hung_up(&mut self) -> bool {
        self.flush_waiting();
        if self.read_end.is_some() || self.write_broken {
            return true;
        }
        let revents = crate::sys::poll_one(
            self.to_child.as_fd(),
            crate::sys::PollFlags::empty(),
            Some(Duration::ZERO),
        );
        if revents.is_ok_and(|r| r.contains(crate::sys::PollFlags::ERR)) {
            // A pipe's write end reports POLLERR once no reader is left.
            self.write_broken = true;
            self.out = Vec::new();
            self.out_start = 0;
        }
        self.write_broken
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{recv_frame, wait_readable, TIMEOUT};
    use super::*;
    use std::path::Path;
    use std::sync::{Mutex, MutexGuard};

    /// Serialises this module's tests (the fd-leak test counts the process's fds).
    fn serial() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A frame of `len` bytes whose contents depend on `tag` (broadcast, with a source
    /// MAC made from `mac`, when long enough).
    fn frame(tag: u32, mac: u8, len: usize) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, mac, 0x88, 0xb5]);
        f.extend_from_slice(&tag.to_be_bytes());
        while f.len() < len {
            f.push((f.len() as u8) ^ (tag as u8));
        }
        f.truncate(len);
        f
    }

    /// A deterministic pseudo-random sequence (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    // ---- codec ----

    fn decode_all(dec: &mut StreamDecoder) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(r) = dec.next_frame() {
            out.push(r.expect("no framing error").to_vec());
        }
        out
    }

    #[test]
    fn codec_round_trip() {
        let sizes = [0, 1, 14, 1514, 9234, MAX_STREAM_FRAME, 0, 60];
        let frames: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| frame(i as u32, 1, n))
            .collect();
        let mut wire = Vec::new();
        for f in &frames {
            encode_frame(f, &mut wire).expect("encodable");
        }
        assert_eq!(&wire[..2], &[0, 0], "an empty frame is a zero length");
        assert_eq!(&wire[2..4], &[0, 1]);
        assert_eq!(
            wire.len(),
            sizes.iter().map(|n| n + 2).sum::<usize>(),
            "2 bytes of length per frame"
        );
        let mut dec = StreamDecoder::new();
        dec.push(&wire);
        let got = decode_all(&mut dec);
        let expected: Vec<Vec<u8>> = frames.into_iter().filter(|f| !f.is_empty()).collect();
        assert_eq!(got, expected);
        assert_eq!(dec.buffered(), 0);
        assert!(!dec.is_broken());
    }

    #[test]
    fn codec_one_byte_at_a_time() {
        let frames: Vec<Vec<u8>> = [60, 1, 0, 1514, 14, 9234]
            .iter()
            .enumerate()
            .map(|(i, &n)| frame(i as u32, 2, n))
            .collect();
        let mut wire = Vec::new();
        for f in &frames {
            encode_frame(f, &mut wire).expect("encodable");
        }
        let mut dec = StreamDecoder::new();
        let mut got = Vec::new();
        for (i, byte) in wire.iter().enumerate() {
            dec.push(std::slice::from_ref(byte));
            while let Some(r) = dec.next_frame() {
                got.push(r.expect("no framing error").to_vec());
            }
            assert!(dec.buffered() <= i + 1);
        }
        let expected: Vec<Vec<u8>> = frames.into_iter().filter(|f| !f.is_empty()).collect();
        assert_eq!(got, expected);
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn codec_too_long_is_a_sticky_error() {
        let too_long = MAX_STREAM_FRAME + 1;
        let mut wire = Vec::new();
        encode_frame(&frame(1, 3, 60), &mut wire).expect("encodable");
        wire.extend_from_slice(&(too_long as u16).to_be_bytes());
        let mut dec = StreamDecoder::new();
        dec.push(&wire);
        assert_eq!(
            dec.next_frame().expect("a frame").expect("ok"),
            &frame(1, 3, 60)[..]
        );
        // The error shows as soon as the length field is there.
        let err = dec.next_frame().expect("an error").expect_err("too long");
        assert_eq!(err.frame_len(), too_long);
        assert!(dec.is_broken());
        dec.push(&[0, 1, 42]);
        assert_eq!(dec.next_frame(), Some(Err(err)), "sticky");
        assert_eq!(dec.buffered(), 0, "nothing kept after an error");
        assert!(err.to_string().contains("9237"));

        let mut dec = StreamDecoder::new();
        dec.push(&[0xff]);
        assert_eq!(dec.next_frame(), None, "half a length field");
        dec.push(&[0xff]);
        assert_eq!(dec.next_frame(), Some(Err(FramingError { len: 0xffff })));

        let mut out = vec![7];
        for len in [too_long, 70_000] {
            let err = encode_frame(&vec![0; len], &mut out).expect_err("too long to encode");
            assert_eq!(err.frame_len(), len);
        }
        assert_eq!(out, [7], "nothing appended");
    }

    #[test]
    fn codec_survives_arbitrary_bytes() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _round in 0..2_000 {
            let mut dec = StreamDecoder::new();
            let mut total = 0usize;
            let mut out = 0usize;
            for _push in 0..rng.below(20) + 1 {
                let max = if rng.below(4) == 0 { 20_000 } else { 64 };
                let len = rng.below(max) as usize;
                let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                // Often a plausible length field, so that frames do come out.
                if len >= 2 && rng.below(2) == 0 {
                    let l = rng.below(MAX_STREAM_FRAME as u64 + 200) as u16;
                    bytes[..2].copy_from_slice(&l.to_be_bytes());
                }
                total += len;
                dec.push(&bytes);
                while let Some(r) = dec.next_frame() {
                    match r {
                        Ok(f) => {
                            assert!(!f.is_empty() && f.len() <= MAX_STREAM_FRAME);
                            out += f.len() + 2;
                        }
                        Err(e) => {
                            assert!(e.frame_len() > MAX_STREAM_FRAME);
                            break;
                        }
                    }
                }
                if dec.is_broken() {
                    break;
                }
                assert!(out + dec.buffered() <= total);
            }
        }
    }

    #[test]
    fn codec_skips_runs_of_empty_frames() {
        let mut dec = StreamDecoder::new();
        dec.push(&vec![0; 100_000]);
        assert_eq!(dec.next_frame(), None);
        assert_eq!(dec.buffered(), 0);
        dec.push(&[0, 0, 0, 2, 9, 8, 0, 0]);
        assert_eq!(dec.next_frame(), Some(Ok(&[9u8, 8][..])));
        assert_eq!(dec.next_frame(), None);
    }

    // ---- command line ----

    fn words(s: &str) -> Vec<String> {
        split_words(s)
    }

    #[test]
    fn command_lines_split_like_a_shell() {
        assert_eq!(words("cat"), ["cat"]);
        assert_eq!(
            words("  vde_plug \t vde:///tmp/sw\n"),
            ["vde_plug", "vde:///tmp/sw"]
        );
        assert_eq!(
            words("vde_plug vxvde://239.1.2.3/port=1,ttl=2"),
            ["vde_plug", "vxvde://239.1.2.3/port=1,ttl=2"],
            "commas stay in words"
        );
        assert_eq!(words("a;b"), ["a;b"], "no command separators");
        assert_eq!(words("ssh 'my host' \"a b\""), ["ssh", "my host", "a b"]);
        assert_eq!(words("a\\ b c"), ["a b", "c"]);
        assert_eq!(words("'it''s'"), ["its"]);
        assert_eq!(
            words(r#"'a\b' "a\b" "a\"b" "a\\b" "\$x""#),
            [r"a\b", r"a\b", r#"a"b"#, r"a\b", "$x"]
        );
        assert_eq!(
            words("x '' \"\""),
            ["x", "", ""],
            "empty quoted words count"
        );
        assert_eq!(words("a\\\nb"), ["ab"], "backslash-newline joins");
        assert_eq!(words("end\\"), ["end\\"]);
        assert_eq!(words("'open quote"), ["open quote"]);
        assert!(words("").is_empty());
        assert!(words(" \t\n ").is_empty());
    }

    #[test]
    fn blank_command_is_einval() {
        for line in ["", "   ", "\t\n", "cat\0x"] {
            let err = StreamLink::spawn(line).expect_err(line);
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{line:?}: {err}");
        }
    }

    #[test]
    fn missing_command_is_enoent() {
        let _serial = serial();
        for line in ["vdestack-no-such-command-here", "/nonexistent/dir/cmd arg"] {
            let err = StreamLink::spawn(line).expect_err(line);
            assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{line}: {err}");
        }
    }

    // ---- real coprocesses ----

    /// Receives until the link fails; returns the error (bounded wait).
    fn recv_until_error(link: &mut StreamLink) -> io::Error {
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = vec![0u8; MAX_STREAM_FRAME];
        loop {
            match link.recv(&mut buf) {
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    assert!(
                        wait_readable(link.from_child.as_raw_fd(), left),
                        "no end of file within {TIMEOUT:?}"
                    );
                }
                Err(err) => return err,
            }
        }
    }

    fn proc_exists(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    fn fd_count() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .expect("read /proc/self/fd")
            .count()
    }

    #[test]
    fn cat_is_a_loopback_wire() {
        let _serial = serial();
        let mut link = StreamLink::spawn("cat").expect("spawn cat");
        assert!(link.hangup_fd().is_none());
        let fd = link.data_fd().expect("a data fd");
        // SAFETY: F_GETFL/F_GETFD only read the flags of our fds.
        unsafe {
            for fd in [fd, link.to_child.as_raw_fd()] {
                assert_ne!(libc::fcntl(fd, libc::F_GETFL) & libc::O_NONBLOCK, 0);
                assert_ne!(libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC, 0);
            }
        }

        let sizes = [1, 14, 0, 60, 1514, 9234, MAX_STREAM_FRAME, 100];
        let frames: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| frame(i as u32, 4, n))
            .collect();
        for f in &frames[..4] {
            link.send(f).expect("send");
        }
        let slices: Vec<&[u8]> = frames[4..].iter().map(Vec::as_slice).collect();
        assert_eq!(link.send_batch(&slices).expect("send_batch"), slices.len());
        for f in frames.iter().filter(|f| !f.is_empty()) {
            assert_eq!(&recv_frame(&mut link), f);
        }
        let mut buf = vec![0u8; MAX_STREAM_FRAME];
        let err = link.recv(&mut buf).expect_err("nothing else");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);

        // A short buffer gets the start of the frame.
        link.send(&frames[4]).expect("send");
        let mut short = [0u8; 20];
        let deadline = Instant::now() + TIMEOUT;
        let n = loop {
            match link.recv(&mut short) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(wait_readable(fd, deadline - Instant::now()));
                }
                Err(e) => panic!("recv: {e}"),
            }
        };
        assert_eq!(&short[..n], &frames[4][..20]);

        // Too long to send: refused, and the stream stays intact.
        let err = link
            .send(&vec![0; MAX_STREAM_FRAME + 1])
            .expect_err("too long");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        link.send(&frames[0]).expect("send");
        assert_eq!(recv_frame(&mut link), frames[0]);
        assert!(!link.hung_up());
        assert_eq!(link.dropped(), 0);
    }

    #[test]
    fn partial_writes_keep_the_stream_intact() {
        let _serial = serial();
        let mut link = StreamLink::spawn("cat").expect("spawn cat");
        // Far more than the two pipes and cat hold, sent without reading: the pipe
        // takes frames partly, the backlog fills, and beyond it frames are dropped.
        let count = 100u32;
        let frames: Vec<Vec<u8>> = (0..count)
            .map(|i| frame(i, 5, 6000 + (i as usize * 37) % 3000))
            .collect();
        let mut saw_backlog = false;
        for f in &frames {
            link.send(f).expect("send never fails or blocks");
            saw_backlog |= link.backlog() > 0;
            assert!(link.backlog() <= BACKLOG_LIMIT);
        }
        assert!(saw_backlog, "the pipe filled up");
        // Everything that arrives is whole and in order; what is missing was counted.
        let mut got = Vec::new();
        while got.len() as u64 + link.dropped() < u64::from(count) {
            got.push(recv_frame(&mut link));
        }
        let mut next = 0;
        for g in &got {
            let i = frames[next..]
                .iter()
                .position(|f| f == g)
                .expect("a frame we sent, in order");
            next += i + 1;
        }
        assert_eq!(got.len() as u64 + link.dropped(), u64::from(count));
        assert_eq!(link.backlog(), 0, "receiving flushed the backlog");
    }

    #[test]
    fn child_exit_is_a_hangup_and_drop_reaps() {
        let _serial = serial();
        let mut link = StreamLink::spawn("true").expect("spawn true");
        let pid = link.pid();
        let err = recv_until_error(&mut link);
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(link.hung_up());
        let mut buf = vec![0u8; MAX_STREAM_FRAME];
        let again = link.recv(&mut buf).expect_err("still at end of file");
        assert_eq!(again.kind(), io::ErrorKind::UnexpectedEof);
        let mut bufs = vec![vec![0u8; MAX_STREAM_FRAME]; 4];
        let mut lens = [0usize; 4];
        assert!(link.recv_batch(&mut bufs, &mut lens).is_err());

        // The child is gone, so its stdin has no reader: EPIPE, without SIGPIPE
        // (which the test harness ignores anyway: see `epipe_never_raises_sigpipe`).
        let deadline = Instant::now() + TIMEOUT;
        let err = loop {
            match link.send(&frame(0, 6, 60)) {
                Ok(()) => assert!(Instant::now() < deadline, "sends never fail"),
                Err(e) => break e,
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
        assert_eq!(
            link.send(&frame(1, 6, 60))
                .expect_err("still broken")
                .kind(),
            io::ErrorKind::BrokenPipe
        );

        assert!(proc_exists(pid), "a zombie until reaped");
        drop(link);
        assert!(!proc_exists(pid), "reaped by drop");
    }

    #[test]
    fn garbage_from_the_child_is_a_hangup() {
        let _serial = serial();
        // 0x4142 ("AB") is longer than any frame.
        let mut link = StreamLink::spawn("echo ABCD").expect("spawn echo");
        let err = recv_until_error(&mut link);
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(link.hung_up());
    }

    #[test]
    fn spawn_and_drop_leak_no_fds_and_no_children() {
        let _serial = serial();
        drop(StreamLink::spawn("cat").expect("warm-up"));
        let before = fd_count();
        let mut pids = Vec::new();
        for i in 0..50 {
            let mut link = StreamLink::spawn("cat").expect("spawn cat");
            if i % 2 == 0 {
                link.send(&frame(i, 7, 100)).expect("send");
            }
            pids.push(link.pid());
            drop(link);
        }
        for pid in pids {
            assert!(!proc_exists(pid), "child {pid} reaped");
        }
        // Other modules' tests may hold fds for a moment: allow them to go away.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let after = fd_count();
            if after <= before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "fds before: {before}, after 50 spawns and drops: {after}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn burst_to_a_child_that_does_not_read_never_blocks() {
        let _serial = serial();
        let mut link = StreamLink::spawn("sleep 5").expect("spawn sleep");
        let pid = link.pid();
        let start = Instant::now();
        let f = frame(0, 8, 1514);
        let batch = [&f[..]; 32];
        let mut sent = 0;
        while sent < 5_000 {
            sent += link.send_batch(&batch).expect("send_batch");
        }
        for _ in 0..100 {
            link.send(&f).expect("send");
        }
        // A blocked write would have waited for `sleep` to exit (5 s) and failed.
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(link.dropped() > 0);
        assert!(link.backlog() <= BACKLOG_LIMIT);
        assert!(!link.hung_up());
        let mut buf = vec![0u8; MAX_STREAM_FRAME];
        assert_eq!(
            link.recv(&mut buf)
                .expect_err("sleep writes nothing")
                .kind(),
            io::ErrorKind::WouldBlock
        );

        let start = Instant::now();
        drop(link);
        assert!(
            start.elapsed() < TERM_GRACE + Duration::from_millis(500),
            "drop took {:?}",
            start.elapsed()
        );
        assert!(!proc_exists(pid));
    }

    #[test]
    fn a_child_ignoring_sigterm_is_killed() {
        let _serial = serial();
        let link = StreamLink::spawn("sh -c 'trap \"\" TERM; exec sleep 5'").expect("spawn sh");
        let pid = link.pid();
        // Let the shell set its trap before it is signalled.
        std::thread::sleep(Duration::from_millis(100));
        let start = Instant::now();
        drop(link);
        let took = start.elapsed();
        assert!(
            took + Duration::from_millis(20) >= TERM_GRACE,
            "SIGTERM was ignored: {took:?}"
        );
        assert!(took < TERM_GRACE + Duration::from_secs(1), "{took:?}");
        assert!(!proc_exists(pid));
    }

    /// Set in the environment of the test binary re-run by `epipe_never_raises_sigpipe`.
    const PROBE_ENV: &str = "VDESTACK_STREAM_SIGPIPE_PROBE";
    const PROBE_OK: &str = "stream sigpipe probe: ok";

    /// Starts `true` and waits (bounded) until its stdin has no reader.
    fn link_without_reader() -> StreamLink {
        let link = StreamLink::spawn("true").expect("spawn true");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let mut pfd = libc::pollfd {
                fd: link.to_child.as_raw_fd(),
                events: 0,
                revents: 0,
            };
            // SAFETY: `pfd` is one valid pollfd; the timeout is bounded.
            unsafe { libc::poll(&mut pfd, 1, 10) };
            if pfd.revents & libc::POLLERR != 0 {
                return link;
            }
            assert!(Instant::now() < deadline, "true never exited");
        }
    }

    fn sigpipe_blocked_here() -> bool {
        // SAFETY: sigset_t is plain data, filled in by pthread_sigmask.
        let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: a NULL new set only queries the calling thread's mask.
        unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            libc::sigismember(&mask, libc::SIGPIPE) == 1
        }
    }

    /// Runs only in the child process of `epipe_never_raises_sigpipe`: with SIGPIPE's
    /// default action (death), writes to pipes without a reader.
    #[test]
    fn sigpipe_probe() {
        if std::env::var_os(PROBE_ENV).is_none() {
            return;
        }
        // SAFETY: restores the default action of SIGPIPE in this probe process, which
        // runs nothing else that writes to pipes or sockets.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let f = frame(0, 9, 60);

        // The usual case: SIGPIPE deliverable.
        assert!(!sigpipe_blocked_here());
        let mut link = link_without_reader();
        let err = link.send(&f).expect_err("no reader");
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
        assert!(!sigpipe_blocked_here(), "the mask is restored");
        assert!(!sigpipe_pending());
        drop(link);

        // A host that blocks SIGPIPE itself keeps its mask, and gets nothing pending.
        let set = sigpipe_set();
        // SAFETY: `set` is a valid signal set; only this thread's mask changes.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        let mut link = link_without_reader();
        let err = link.send(&f).expect_err("no reader");
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
        assert!(sigpipe_blocked_here(), "still blocked");
        assert!(!sigpipe_pending(), "ours was taken");
        drop(link);

        // ... and a SIGPIPE it had pending already stays pending.
        // SAFETY: sends SIGPIPE to this thread, where it is blocked.
        unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGPIPE) };
        assert!(sigpipe_pending());
        let mut link = link_without_reader();
        link.send(&f).expect_err("no reader");
        assert!(
            sigpipe_pending(),
            "the host's own SIGPIPE is not ours to take"
        );
        drop(link);
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: takes the pending SIGPIPE (zero timeout), then unblocks it.
        unsafe {
            libc::sigtimedwait(&set, std::ptr::null_mut(), &zero);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        println!("{PROBE_OK}");
    }

    /// The test harness ignores SIGPIPE, so the check runs in a fresh copy of this
    /// test binary where `sigpipe_probe` restores the default action (death).
    #[test]
    fn epipe_never_raises_sigpipe() {
        let exe = std::env::current_exe().expect("the test binary");
        let output = Command::new(exe)
            .args([
                "--exact",
                "link::stream::tests::sigpipe_probe",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PROBE_ENV, "1")
            .stdin(Stdio::null())
            .output()
            .expect("run the probe");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains(PROBE_OK),
            "probe failed: {:?}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // ---- interop with a real switch ----

    use super::super::testing::{Switch, TempDir};

    #[test]
    fn vde_plug_reaches_a_switch() {
        let _serial = serial();
        let dir = TempDir::new();
        let switch = Switch::start(dir.path());
        let mut plain = super::super::VdeLink::open(&switch.vnl(), "plain").expect("open");
        let mut stream =
            StreamLink::spawn(&format!("vde_plug {}", switch.vnl())).expect("spawn vde_plug");

        // A broadcast from the stream side first: the switch learns its MAC.
        let hello = frame(1, 0x0a, 60);
        stream.send(&hello).expect("send");
        assert_eq!(recv_frame(&mut plain), hello);

        // Unicast back to it, and more both ways.
        let mut reply = frame(2, 0x0b, 1514);
        reply[..6].copy_from_slice(&hello[6..12]);
        plain.send(&reply).expect("send");
        assert_eq!(recv_frame(&mut stream), reply);
        for i in 0..20 {
            let mut f = frame(10 + i, 0x0a, 60 + 70 * i as usize);
            f[..6].copy_from_slice(&reply[6..12]);
            stream.send(&f).expect("send");
            assert_eq!(recv_frame(&mut plain), f);
            let mut g = frame(100 + i, 0x0b, 1514 - 50 * i as usize);
            g[..6].copy_from_slice(&hello[6..12]);
            plain.send(&g).expect("send");
            assert_eq!(recv_frame(&mut stream), g);
        }
        assert!(!stream.hung_up());
        assert_eq!(stream.dropped(), 0);
        let pid = stream.pid();
        drop(stream);
        assert!(!proc_exists(pid));
    }
}
