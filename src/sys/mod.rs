//! The one low layer of raw system calls on descriptors, shared by every layer
//! above it (`link`, `pump`, `kernel`, `socket`, `bsd`): socket pairs, passing
//! descriptors with SCM_RIGHTS, non-blocking and close-on-exec flags, replacing a
//! descriptor in place, timeouts, writes that never raise SIGPIPE, the inode that
//! tells a stack socket, `FIONREAD`, what changes across `fork` (the process id,
//! handlers run around it), and [`KernelSocket`]: the calls on a socket the kernel
//! serves (a kernel-backend socket, or any descriptor `bsd` finds no stack socket
//! behind), each call written once, for the Rust API and `bsd` alike.
//!
//! It imports nothing of the crate, and it is built on `rustix`, whose Linux
//! backend makes system calls itself instead of calling libc's functions. That
//! matters here: with the C ABI loaded, libc's `socket`, `sendmsg`, `read`,
//! `close`, `fcntl`... are the interposed ones of `capi/interpose.rs`, which would
//! answer the library's own plumbing as if it were the program's (a kernel helper's
//! `socket` would become a userspace stack's socket, a datagram socket's `sendmsg`
//! would frame what it sends) and take the C ABI's locks where they have no
//! business. std's wrappers (`TcpListener::accept`, `OwnedFd::try_clone`...) call
//! those same symbols, hence [`KernelSocket`] instead of a std view of a kernel
//! socket. Where rustix has no call, a raw `libc::syscall` stands in (`close_range`,
//! `getsockopt`/`setsockopt` by level and name), each saying so. Three of libc's
//! functions remain, none of them interposed by the C ABI: `recvmmsg`/`sendmmsg`,
//! which rustix lacks in part, and `pthread_atfork`, which is no system call (libc's
//! `fork` runs the handlers).
//!
//! rustix makes raw system calls on x86, x86-64, arm, aarch64 and riscv64; on other
//! architectures it falls back to libc, and this layer with it.
//!
//! Dropping an [`OwnedFd`] calls libc's `close`; code that must not enter the C
//! ABI's interposed calls at all (the kernel backend's helper after its fork)
//! closes with [`close`] instead.

use rustix::event::{PollFd, Timespec};
use rustix::io::retry_on_intr;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrAny, SocketFlags, SocketType,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::{Duration, Instant};

pub(crate) use rustix::event::PollFlags;
/// Typed `setsockopt`/`getsockopt` calls (`set_socket_reuseaddr`, `tcp_nodelay`...).
pub(crate) use rustix::net::sockopt;

pub(crate) mod pages;

/// A connected pair of sockets of `ty` (SOCK_STREAM or SOCK_SEQPACKET), close-on-exec.
pub(crate) fn pair(ty: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::from_raw(ty as u32),
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// `socket(2)`, close-on-exec; `ty` may add SOCK_NONBLOCK.
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))] // the kernel helper's
pub(crate) fn socket(
    domain: libc::c_int,
    ty: libc::c_int,
    protocol: libc::c_int,
) -> io::Result<OwnedFd> {
    let domain =
        u16::try_from(domain).map_err(|_| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
    Ok(rustix::net::socket_with(
        AddressFamily::from_raw(domain),
        SocketType::from_raw(ty as u32),
        SocketFlags::CLOEXEC,
        std::num::NonZeroU32::new(protocol as u32).map(rustix::net::Protocol::from_raw),
    )?)
}

/// Closes `fd` with close(2) itself, not libc's `close` as dropping it would.
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))] // the kernel helper's
pub(crate) fn close(fd: OwnedFd) {
    // SAFETY: `fd` is ours (owned, given up by into_raw_fd), closed exactly once.
    unsafe { rustix::io::close(fd.into_raw_fd()) };
}

/// Closes the descriptors `first..=last`, whichever of them are open
/// (`close_range(2)`, or one by one on kernels before 5.9).
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))] // the kernel helper's
pub(crate) fn close_range(first: u32, last: u32) -> io::Result<()> {
    // rustix has no close_range.
    // SAFETY: close_range takes integers only; the caller owns the descriptors.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if ret == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(1 << 20, |limit| limit.min(1 << 20)) as u32;
    for fd in first..=last.min(limit) {
        // SAFETY: as above; a descriptor that is not open gives EBADF, ignored.
        unsafe { libc::syscall(libc::SYS_close, fd) };
    }
    Ok(())
}

/// A pidfd of the process `pid` (`pidfd_open(2)`, Linux 5.3), which becomes
/// readable when the process exits.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// Reads into `buf` (`read(2)`).
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(retry_on_intr(|| rustix::io::read(fd, &mut *buf))?)
}

/// Writes `buf` (`write(2)`); to a pipe without a reader this raises SIGPIPE.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    Ok(retry_on_intr(|| rustix::io::write(fd, buf))?)
}

/// Receives what a socket has, without waiting (`recv(2)` with MSG_DONTWAIT).
pub(crate) fn recv_nonblocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let (len, _) = retry_on_intr(|| rustix::net::recv(fd, &mut *buf, RecvFlags::DONTWAIT))?;
    Ok(len)
}

/// Writes `buf` to a socket without ever raising SIGPIPE (EPIPE is returned instead).
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    Ok(retry_on_intr(|| {
        rustix::net::send(fd, buf, SendFlags::NOSIGNAL)
    })?)
}

/// `shutdown(2)`.
pub(crate) fn shutdown(fd: BorrowedFd<'_>, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => rustix::net::Shutdown::Read,
        Shutdown::Write => rustix::net::Shutdown::Write,
        Shutdown::Both => rustix::net::Shutdown::Both,
    };
    Ok(rustix::net::shutdown(fd, how)?)
}

/// Sets or clears O_NONBLOCK.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    Ok(rustix::io::ioctl_fionbio(fd, on)?)
}

/// Attaches a classic BPF socket filter to `fd` (`SO_ATTACH_FILTER`): each
/// datagram queued to it from then on is kept (the program returns non-zero)
/// or dropped by the kernel before anyone is woken.
pub(crate) fn attach_filter(fd: BorrowedFd<'_>, program: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `program`, which outlives the call (the kernel
    // copies the program); the option's length is the struct's own size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets or clears FD_CLOEXEC.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = if on {
        rustix::io::FdFlags::CLOEXEC
    } else {
        rustix::io::FdFlags::empty()
    };
    Ok(rustix::io::fcntl_setfd(fd, flags)?)
}

/// A new descriptor of the same open file, close-on-exec (`F_DUPFD_CLOEXEC`).
pub(crate) fn duplicate(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 0)?)
}

/// Whether O_NONBLOCK is set (false when `fd` cannot say).
pub(crate) fn is_nonblocking(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fcntl_getfl(fd).is_ok_and(|flags| flags.contains(rustix::fs::OFlags::NONBLOCK))
}

/// Whether FD_CLOEXEC is set (false when `fd` cannot say).
pub(crate) fn is_cloexec(fd: BorrowedFd<'_>) -> bool {
    rustix::io::fcntl_getfd(fd).is_ok_and(|flags| flags.contains(rustix::io::FdFlags::CLOEXEC))
}

/// Makes the descriptor number of `target` refer to what `source` refers to
/// (`dup3(2)`; the file `target` referred to is closed), with close-on-exec as asked.
pub(crate) fn replace(
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    cloexec: bool,
) -> io::Result<()> {
    let flags = if cloexec {
        rustix::io::DupFlags::CLOEXEC
    } else {
        rustix::io::DupFlags::empty()
    };
    // rustix's dup3 takes the target as an OwnedFd, which it replaces in place; the
    // number stays the caller's, so this owned view of it is never dropped.
    // SAFETY: `target` is open for the borrow's life; ManuallyDrop keeps the view
    // from closing it, and dup3 leaves the number open (naming the new file).
    let mut target = ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(target.as_raw_fd()) });
    Ok(rustix::io::dup3(source, &mut target, flags)?)
}

/// The inode of the socket `fd` refers to; `None` when it is no socket (or closed).
pub(crate) fn socket_inode(fd: BorrowedFd<'_>) -> Option<u64> {
    let st = rustix::fs::fstat(fd).ok()?;
    (rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket)
        .then_some(st.st_ino)
}

/// The inodes of the sockets this process holds a descriptor of (read from
/// `/proc/self/fd`): what tells a socket still in use from one every descriptor
/// of which was closed. Costs a system call per open descriptor.
pub(crate) fn open_socket_inodes() -> io::Result<std::collections::HashSet<u64>> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    let dir = rustix::fs::open(
        "/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut entries = rustix::fs::Dir::read_from(&dir)?;
    let mut inodes = std::collections::HashSet::new();
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes().starts_with(b".") {
            continue;
        }
        // Followed: the link names the open file. A descriptor closed meanwhile
        // (ENOENT) is simply not counted.
        if let Ok(st) = rustix::fs::statat(&dir, name, AtFlags::empty()) {
            if FileType::from_raw_mode(st.st_mode) == FileType::Socket {
                inodes.insert(st.st_ino);
            }
        }
    }
    Ok(inodes)
}

/// `ioctl(FIONREAD)`: the bytes waiting (a stream), or the next message's length.
pub(crate) fn bytes_readable(fd: BorrowedFd<'_>) -> io::Result<usize> {
    // rustix widens the kernel's int with its sign: a negative count (which Linux
    // never gives) is 0.
    let waiting = rustix::io::ioctl_fionread(fd)? as i64;
    Ok(usize::try_from(waiting).unwrap_or(0))
}

/// The calling process's id.
pub(crate) fn process_id() -> u32 {
    rustix::process::getpid().as_raw_pid() as u32
}

/// A new eventfd (non-blocking, close-on-exec), counting from 0.
pub(crate) fn event_fd() -> io::Result<OwnedFd> {
    use rustix::event::{eventfd, EventfdFlags};
    Ok(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?)
}

/// Adds one to an eventfd's counter: each addition wakes whoever polls it, even
/// edge-triggered and never read. Only a counter at its maximum (2^64 - 2
/// additions) is read back to zero first.
pub(crate) fn ring_event(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        match write(fd, &1u64.to_ne_bytes()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                read(fd, &mut [0; 8])?;
            }
            other => return other.map(drop),
        }
    }
}

/// Names the calling thread (`PR_SET_NAME`: what `/proc/self/task/*/comm`,
/// `top -H` and debuggers show; at most 15 bytes are kept).
pub(crate) fn set_thread_name(name: &std::ffi::CStr) -> io::Result<()> {
    Ok(rustix::thread::set_name(name)?)
}

/// Registers handlers that `fork()` runs: `prepare` before it in the forking
/// thread, `parent` and `child` after it in each process (`pthread_atfork(3)`,
/// libc's: it is no system call, and libc's `fork` is what runs the handlers).
pub(crate) fn at_fork(
    prepare: extern "C" fn(),
    parent: extern "C" fn(),
    child: extern "C" fn(),
) -> io::Result<()> {
    // SAFETY: the three are functions of the program that live as long as it.
    match unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) } {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code)),
    }
}

/// Which timeout of SO_RCVTIMEO / SO_SNDTIMEO `option` names.
fn timeout_kind(option: libc::c_int) -> io::Result<sockopt::Timeout> {
    match option {
        libc::SO_RCVTIMEO => Ok(sockopt::Timeout::Recv),
        libc::SO_SNDTIMEO => Ok(sockopt::Timeout::Send),
        _ => Err(io::Error::from_raw_os_error(libc::ENOPROTOOPT)),
    }
}

/// SO_RCVTIMEO / SO_SNDTIMEO; `None` (or zero, rejected as std does) means wait forever.
pub(crate) fn set_timeout(
    fd: BorrowedFd<'_>,
    option: libc::c_int,
    timeout: Option<Duration>,
) -> io::Result<()> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    // A sub-microsecond timeout becomes one microsecond, never "forever".
    Ok(sockopt::set_socket_timeout(
        fd,
        timeout_kind(option)?,
        timeout,
    )?)
}

/// Reads SO_RCVTIMEO / SO_SNDTIMEO.
pub(crate) fn timeout(fd: BorrowedFd<'_>, option: libc::c_int) -> io::Result<Option<Duration>> {
    Ok(sockopt::socket_timeout(fd, timeout_kind(option)?)?)
}

/// `sendmsg(2)` of `payload` with `fd` attached (SCM_RIGHTS) if given.
fn send_message_with(
    sock: BorrowedFd<'_>,
    payload: &[u8],
    fd: Option<BorrowedFd<'_>>,
    flags: SendFlags,
) -> io::Result<usize> {
    let fds = fd.as_slice();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
    }
    let iov = [IoSlice::new(payload)];
    Ok(retry_on_intr(|| {
        rustix::net::sendmsg(sock, &iov, &mut control, flags | SendFlags::NOSIGNAL)
    })?)
}

/// Sends `payload` with `fd` attached (SCM_RIGHTS), without blocking or SIGPIPE.
pub(crate) fn send_with_fd(
    sock: BorrowedFd<'_>,
    payload: &[u8],
    fd: BorrowedFd<'_>,
) -> io::Result<()> {
    send_message_with(sock, payload, Some(fd), SendFlags::DONTWAIT).map(|_| ())
}

/// Sends one message with `fd` attached if given (SCM_RIGHTS), without SIGPIPE;
/// blocks unless the socket is non-blocking. Allocates nothing.
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))] // the kernel helper's
pub(crate) fn send_message(
    sock: BorrowedFd<'_>,
    payload: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<usize> {
    send_message_with(sock, payload, fd, SendFlags::empty())
}

/// One message received by [`recv_message`].
pub(crate) struct Message {
    /// The bytes received.
    pub(crate) len: usize,
    /// The first descriptor attached to it, if any.
    pub(crate) fd: Option<OwnedFd>,
    /// The message was longer than the buffer (MSG_TRUNC). Read by the kernel
    /// backend only.
    #[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))]
    pub(crate) truncated: bool,
    /// The message carried descriptors the process had no slot for: the kernel
    /// closed them (MSG_CTRUNC; our buffer has room for more than the one a
    /// sender of ours attaches).
    pub(crate) fds_dropped: bool,
}

/// Receives one message and the descriptor attached to it, if any
/// (close-on-exec; further descriptors in it are closed). Blocks unless the socket
/// is non-blocking.
pub(crate) fn recv_message(sock: BorrowedFd<'_>, payload: &mut [u8]) -> io::Result<Message> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(payload)];
    let msg = retry_on_intr(|| {
        rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
    })?;
    let mut received = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for fd in fds {
                received.get_or_insert(fd);
            }
        }
    }
    Ok(Message {
        len: msg.bytes,
        fd: received,
        truncated: msg.flags.contains(ReturnFlags::TRUNC),
        fds_dropped: msg.flags.contains(ReturnFlags::CTRUNC),
    })
}

/// What [`recv_with_fd`] took.
pub(crate) enum FdMessage {
    /// A message (its length) and its descriptor.
    Received(usize, OwnedFd),
    /// A message (its length) whose descriptor was lost: the process ran out of
    /// descriptors between the check for a free slot and the receive (another
    /// thread took the last one), and the kernel closed the descriptor.
    Lost(usize),
    /// The sender is gone.
    Closed,
}

/// Receives one message and the descriptor attached to it (close-on-exec), only
/// if the process has a descriptor slot for it: `EMFILE` at once, the message
/// left queued, when it has none. Blocks unless the socket is non-blocking.
///
/// A descriptor sent with SCM_RIGHTS is installed only as the message is taken,
/// and one the process has no slot for is closed by the kernel (MSG_CTRUNC): the
/// message, and what the descriptor stood for, would be gone. Linux's `accept`
/// takes its descriptor slot before it takes a connection off the queue, so that
/// a process at its limit gets `EMFILE` and the connection stays for a later
/// call: a slot is made sure of here the same way (a `dup` taken and given back)
/// before the message is taken. Keeping the message instead (peeking it first)
/// would install the descriptor twice per call and, with two threads accepting,
/// could hand both the same one. The slot is not held while the call blocks: a
/// process that runs out of descriptors while it waits loses that message's
/// descriptor ([`FdMessage::Lost`]), as a narrow race.
pub(crate) fn recv_with_fd(sock: BorrowedFd<'_>, payload: &mut [u8]) -> io::Result<FdMessage> {
    drop(rustix::io::fcntl_dupfd_cloexec(sock, 0)?);
    loop {
        let message = recv_message(sock, payload)?;
        match message.fd {
            Some(fd) => return Ok(FdMessage::Received(message.len, fd)),
            None if message.fds_dropped => return Ok(FdMessage::Lost(message.len)),
            // EOF is EOF; a message without a descriptor is none of ours.
            None if message.len == 0 => return Ok(FdMessage::Closed),
            None => continue,
        }
    }
}

/// Sends one datagram made of `head` followed by `body` (`sendmsg(2)` with two
/// parts, no copy), without SIGPIPE; `flags` may add MSG_DONTWAIT.
pub(crate) fn send_parts(
    fd: BorrowedFd<'_>,
    head: &[u8],
    body: &[u8],
    flags: libc::c_int,
) -> io::Result<usize> {
    send_vectored(fd, &[IoSlice::new(head), IoSlice::new(body)], flags)
}

/// Sends the buffers of `iov` in order, as one datagram on a datagram socket
/// (`sendmsg(2)`, no copy), without SIGPIPE; `flags` may add MSG_DONTWAIT.
pub(crate) fn send_vectored(
    fd: BorrowedFd<'_>,
    iov: &[IoSlice<'_>],
    flags: libc::c_int,
) -> io::Result<usize> {
    let flags = SendFlags::from_bits_retain(flags as u32) | SendFlags::NOSIGNAL;
    Ok(retry_on_intr(|| {
        rustix::net::sendmsg(fd, iov, &mut SendAncillaryBuffer::default(), flags)
    })?)
}

/// Receives one datagram into `head` then `body` (`recvmsg(2)` with two parts).
/// Returns the bytes received in all and whether the datagram was longer than both
/// parts (MSG_TRUNC). `flags` may add MSG_PEEK or MSG_DONTWAIT.
pub(crate) fn recv_parts(
    fd: BorrowedFd<'_>,
    head: &mut [u8],
    body: &mut [u8],
    flags: libc::c_int,
) -> io::Result<(usize, bool)> {
    recv_vectored(
        fd,
        &mut [IoSliceMut::new(head), IoSliceMut::new(body)],
        flags,
    )
}

/// Receives into the buffers of `iov` in order (`recvmsg(2)`): the bytes received
/// in all, and whether a datagram was longer than all of them (MSG_TRUNC).
/// `flags` may add MSG_PEEK or MSG_DONTWAIT.
pub(crate) fn recv_vectored(
    fd: BorrowedFd<'_>,
    iov: &mut [IoSliceMut<'_>],
    flags: libc::c_int,
) -> io::Result<(usize, bool)> {
    let flags = RecvFlags::from_bits_retain(flags as u32);
    let msg = retry_on_intr(|| {
        rustix::net::recvmsg(fd, &mut *iov, &mut RecvAncillaryBuffer::default(), flags)
    })?;
    Ok((msg.bytes, msg.flags.contains(ReturnFlags::TRUNC)))
}

/// `recvmmsg(2)` of up to `bufs.len()` datagrams without waiting; the length of
/// the `i`th goes to `lens[i]`. Returns how many were received.
pub(crate) fn recv_datagrams(
    fd: BorrowedFd<'_>,
    bufs: &mut [Vec<u8>],
    lens: &mut [usize],
) -> io::Result<usize> {
    let mut iovs: [libc::iovec; MAX_DATAGRAMS] = [EMPTY_IOVEC; MAX_DATAGRAMS];
    let mut msgs = empty_mmsgs();
    let count = point_mmsgs(
        &mut iovs,
        &mut msgs,
        bufs.iter_mut()
            .take(lens.len())
            .map(|b| (b.as_mut_ptr().cast(), b.len())),
    );
    // rustix has no recvmmsg; libc's is not one the C ABI interposes.
    let n = retry_libc(|| {
        // SAFETY: the first `count` headers point at live iovecs, each describing a
        // buffer valid for writes of its length; nothing moves during the call.
        unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        }
    })?;
    for (len, msg) in lens.iter_mut().zip(&msgs).take(n) {
        *len = msg.msg_len as usize;
    }
    Ok(n)
}

/// `sendmmsg(2)` of `frames`, one datagram each (at most [`MAX_DATAGRAMS`]), without
/// waiting; returns how many went.
pub(crate) fn send_datagrams(fd: BorrowedFd<'_>, frames: &[&[u8]]) -> io::Result<usize> {
    let mut iovs: [libc::iovec; MAX_DATAGRAMS] = [EMPTY_IOVEC; MAX_DATAGRAMS];
    let mut msgs = empty_mmsgs();
    // The kernel only reads from these buffers (sendmmsg); the pointer is mutable
    // because iovec is shared with receiving.
    let count = point_mmsgs(
        &mut iovs,
        &mut msgs,
        frames
            .iter()
            .map(|f| (f.as_ptr() as *mut libc::c_void, f.len())),
    );
    // libc's sendmmsg, as recvmmsg above: rustix's needs a header per message built
    // anew on each call.
    retry_libc(|| {
        // SAFETY: the first `count` headers point at live iovecs describing frames
        // valid for reads; the kernel only reads them.
        unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        }
    })
}

/// Calls `call` (a libc call that returns a count or -1 with errno) until it is not
/// interrupted.
fn retry_libc(mut call: impl FnMut() -> libc::c_int) -> io::Result<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Datagrams per [`recv_datagrams`] / [`send_datagrams`] call at most.
pub(crate) const MAX_DATAGRAMS: usize = 64;

const EMPTY_IOVEC: libc::iovec = libc::iovec {
    iov_base: std::ptr::null_mut(),
    iov_len: 0,
};

fn empty_mmsgs() -> [libc::mmsghdr; MAX_DATAGRAMS] {
    // SAFETY: mmsghdr is plain data (integers and pointers); all-zero is an empty
    // header.
    unsafe { std::mem::zeroed() }
}

/// Points the first headers of `msgs` at `buffers`, one iovec each (stored in `iovs`);
/// returns how many (at most [`MAX_DATAGRAMS`]).
fn point_mmsgs(
    iovs: &mut [libc::iovec; MAX_DATAGRAMS],
    msgs: &mut [libc::mmsghdr; MAX_DATAGRAMS],
    buffers: impl Iterator<Item = (*mut libc::c_void, usize)>,
) -> usize {
    let mut count = 0;
    for ((iov, msg), (base, len)) in iovs.iter_mut().zip(msgs.iter_mut()).zip(buffers) {
        *iov = libc::iovec {
            iov_base: base,
            iov_len: len,
        };
        msg.msg_hdr.msg_iov = iov;
        msg.msg_hdr.msg_iovlen = 1;
        count += 1;
    }
    count
}

/// Waits at most `timeout` (`None`: for ever) for `events` on `fd`; returns the
/// events that came (empty on timeout). `Interrupted` is the caller's to retry.
pub(crate) fn poll_one(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: Option<Duration>,
) -> io::Result<PollFlags> {
    // Beyond what a timespec holds is for ever.
    let timeout = timeout.and_then(|t| Timespec::try_from(t).ok());
    let mut fds = [PollFd::from_borrowed_fd(fd, events)];
    rustix::event::poll(&mut fds, timeout.as_ref())?;
    Ok(fds[0].revents())
}

/// Whether reading `fd` would not block (data, a message, end of file or an
/// error waits), asked without waiting.
pub(crate) fn is_readable(fd: BorrowedFd<'_>) -> bool {
    poll_one(fd, PollFlags::IN, Some(Duration::ZERO)).is_ok_and(|revents| !revents.is_empty())
}

/// Whether the other end of a socket pair has been closed (POLLRDHUP), asked
/// without waiting.
pub(crate) fn peer_closed(fd: BorrowedFd<'_>) -> bool {
    poll_one(fd, PollFlags::RDHUP, Some(Duration::ZERO))
        .is_ok_and(|revents| revents.intersects(PollFlags::RDHUP | PollFlags::HUP))
}

/// `getsockopt(2)` of a plain value (an int, a `linger`) by level and name, for the
/// options rustix has no typed call for (a raw system call, as everything here).
pub(crate) fn option<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes for the call, and `len` holds
    // value's size; SYS_getsockopt takes (int, int, int, void *, socklen_t *).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_getsockopt,
            fd.as_raw_fd(),
            level,
            name,
            value.as_mut_ptr().cast::<libc::c_void>(),
            &mut len as *mut libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: T is plain data (an int or a C struct), for which the zeroed start is
    // valid, and the kernel wrote at most size_of::<T>() bytes over it.
    Ok(unsafe { value.assume_init() })
}

/// `setsockopt(2)` of a plain value by level and name (see [`option`]).
pub(crate) fn set_option<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: T,
) -> io::Result<()> {
    // SAFETY: `value` is a live plain value of the size passed, only read by the
    // kernel; SYS_setsockopt takes (int, int, int, const void *, socklen_t).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_setsockopt,
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const T).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The socket's type (SOCK_STREAM, SOCK_DGRAM...); fails on anything but a socket.
pub(crate) fn socket_type(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    Ok(sockopt::socket_type(fd)?.as_raw() as libc::c_int)
}

/// Whether the socket is an IPv6 one (SO_DOMAIN).
pub(crate) fn is_ipv6(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(sockopt::socket_domain(fd)? == AddressFamily::INET6)
}

/// `bind(2)` of a kernel socket.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    Ok(rustix::net::bind(fd, &to_kernel(addr))?)
}

/// SO_REUSEADDR, set on a kernel socket before it listens as std does.
pub(crate) fn reuse_addr(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(sockopt::set_socket_reuseaddr(fd, true)?)
}

/// `listen(2)` of a kernel socket.
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: usize) -> io::Result<()> {
    Ok(rustix::net::listen(
        fd,
        backlog.min(i32::MAX as usize) as i32,
    )?)
}

/// `connect(2)` of a blocking kernel socket, giving up after `timeout` (`ETIMEDOUT`).
pub(crate) fn connect(
    fd: BorrowedFd<'_>,
    addr: &SocketAddr,
    timeout: Option<Duration>,
) -> io::Result<()> {
    if timeout.is_some() {
        set_nonblocking(fd, true)?;
    }
    let result = match KernelSocket(fd).connect(*addr) {
        // Interrupted or non-blocking: the connection goes on; wait for its end.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EINPROGRESS)) => {
            wait_connected(fd, timeout)
        }
        other => other,
    };
    if timeout.is_some() {
        set_nonblocking(fd, false)?;
    }
    result
}

/// Waits (bounded by `timeout`) until a connecting socket is connected or failed.
fn wait_connected(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let wait = match deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
                }
                Some(left)
            }
        };
        match poll_one(fd, PollFlags::OUT, wait) {
            Ok(revents) if revents.is_empty() => continue,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        return match sockopt::socket_error(fd)? {
            Ok(()) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
}

/// `addr` with its IPv6 flow label turned between std's byte order and rustix's.
/// The crate follows std, whose `SocketAddrV6::flowinfo` is `sin6_flowinfo` as
/// stored (network order; so do the C library's conversions), while rustix turns it
/// to and from host order. The turn is its own inverse: it serves both ways, so
/// that a flow label crosses this layer unchanged.
fn swap_flowinfo(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(
            *a.ip(),
            a.port(),
            u32::from_be(a.flowinfo()),
            a.scope_id(),
        )),
        v4 => v4,
    }
}

/// `addr` for rustix to write.
fn to_kernel(addr: &SocketAddr) -> SocketAddr {
    swap_flowinfo(*addr)
}

/// The internet address rustix read; `None` for none or another kind.
fn from_kernel(addr: Option<SocketAddrAny>) -> Option<SocketAddr> {
    SocketAddr::try_from(addr?).ok().map(swap_flowinfo)
}

/// What a call that needs an internet address gets for none or another kind.
fn not_inet() -> io::Error {
    io::Error::from_raw_os_error(libc::EAFNOSUPPORT)
}

/// The internet address rustix read; `EAFNOSUPPORT` for none or another kind.
fn inet(addr: Option<SocketAddrAny>) -> io::Result<SocketAddr> {
    from_kernel(addr).ok_or_else(not_inet)
}

/// A socket the kernel serves, borrowed: a kernel-backend socket, or any descriptor
/// the [`bsd`](crate::bsd) calls find no stack socket behind (a socket pair's end
/// among them). The calls named after system calls (`accept4`, `sendto`,
/// `recvfrom`) have their semantics, EINTR included; the others are std's socket
/// calls of the same names and behaviour (std's own wrappers would call the libc
/// symbols the C ABI interposes).
#[derive(Clone, Copy)]
pub(crate) struct KernelSocket<'fd>(pub(crate) BorrowedFd<'fd>);

impl KernelSocket<'_> {
    /// `getsockname(2)`; `EAFNOSUPPORT` for a socket of another family than IPv4/6.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        inet(Some(rustix::net::getsockname(self.0)?))
    }

    /// `getpeername(2)` (`ENOTCONN` without a peer); `EAFNOSUPPORT` for a socket of
    /// another family than IPv4/6.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        inet(rustix::net::getpeername(self.0)?)
    }

    /// Takes the pending error (`SO_ERROR`).
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(sockopt::socket_error(self.0)?.err().map(io::Error::from))
    }

    /// `accept4(2)` with `flags` (SOCK_NONBLOCK, SOCK_CLOEXEC): the connection and
    /// its peer's address (`EAFNOSUPPORT` for a peer of another family than IPv4/6).
    pub(crate) fn accept4(&self, flags: libc::c_int) -> io::Result<(OwnedFd, SocketAddr)> {
        let flags = SocketFlags::from_bits_retain(flags as u32);
        let (fd, peer) = rustix::net::acceptfrom_with(self.0, flags)?;
        Ok((fd, inet(peer)?))
    }

    /// Accepts a connection (close-on-exec) and tells its peer; EINTR is retried.
    pub(crate) fn accept(&self) -> io::Result<(OwnedFd, SocketAddr)> {
        loop {
            match self.accept4(libc::SOCK_CLOEXEC) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// `connect(2)`: a datagram socket's peer, or a stream's connection. A
    /// non-blocking socket's `EINPROGRESS`, and `EINTR`, are errors (the connection
    /// goes on; asked again, `EALREADY`).
    pub(crate) fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        Ok(rustix::net::connect(self.0, &to_kernel(&addr))?)
    }

    /// `connect(2)` to AF_UNSPEC: a datagram socket forgets its peer.
    pub(crate) fn disconnect(&self) -> io::Result<()> {
        Ok(rustix::net::connect_unspec(self.0)?)
    }

    /// `sendto(2)` to `dest` (`None`: the connected peer), never raising SIGPIPE.
    pub(crate) fn sendto(
        &self,
        buf: &[u8],
        dest: Option<&SocketAddr>,
        flags: libc::c_int,
    ) -> io::Result<usize> {
        let flags = SendFlags::from_bits_retain(flags as u32) | SendFlags::NOSIGNAL;
        Ok(match dest {
            Some(dest) => rustix::net::sendto(self.0, buf, flags, &to_kernel(dest))?,
            None => rustix::net::send(self.0, buf, flags)?,
        })
    }

    /// Sends to the connected peer, without SIGPIPE.
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sendto(buf, None, 0)
    }

    /// Sends to `addr`, without SIGPIPE.
    pub(crate) fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.sendto(buf, Some(&addr), 0)
    }

    /// `recvfrom(2)`: the bytes received and their source, if the kernel names an
    /// internet one (a stream socket names none).
    pub(crate) fn recvfrom(
        &self,
        buf: &mut [u8],
        flags: libc::c_int,
    ) -> io::Result<(usize, Option<SocketAddr>)> {
        let flags = RecvFlags::from_bits_retain(flags as u32);
        let (len, _, from) = rustix::net::recvfrom(self.0, buf, flags)?;
        Ok((len, from_kernel(from)))
    }

    /// Receives one datagram (truncated to `buf`) and its source.
    pub(crate) fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.datagram_from(buf, 0)
    }

    /// Like [`KernelSocket::recv_from`], leaving the datagram queued.
    pub(crate) fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.datagram_from(buf, libc::MSG_PEEK)
    }

    /// A datagram, whose source an internet socket always names.
    fn datagram_from(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, SocketAddr)> {
        let (len, from) = self.recvfrom(buf, flags)?;
        Ok((len, from.ok_or_else(not_inet)?))
    }

    /// `SO_BROADCAST`.
    pub(crate) fn set_broadcast(&self, on: bool) -> io::Result<()> {
        Ok(sockopt::set_socket_broadcast(self.0, on)?)
    }

    /// `SO_BROADCAST`.
    pub(crate) fn broadcast(&self) -> io::Result<bool> {
        Ok(sockopt::socket_broadcast(self.0)?)
    }

    /// `IP_TTL`.
    pub(crate) fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        Ok(sockopt::set_ip_ttl(self.0, ttl)?)
    }

    /// `IP_TTL`.
    pub(crate) fn ttl(&self) -> io::Result<u32> {
        Ok(sockopt::ip_ttl(self.0)?)
    }

    /// `SO_RCVBUF` (the kernel doubles it for its bookkeeping).
    pub(crate) fn set_recv_buffer_size(&self, bytes: usize) -> io::Result<()> {
        let bytes = bytes.min(libc::c_int::MAX as usize);
        Ok(sockopt::set_socket_recv_buffer_size(self.0, bytes)?)
    }

    /// `IP_ADD_MEMBERSHIP`.
    pub(crate) fn join_multicast_v4(
        &self,
        group: &Ipv4Addr,
        interface: &Ipv4Addr,
    ) -> io::Result<()> {
        Ok(sockopt::set_ip_add_membership(self.0, group, interface)?)
    }

    /// `IP_DROP_MEMBERSHIP`.
    pub(crate) fn leave_multicast_v4(
        &self,
        group: &Ipv4Addr,
        interface: &Ipv4Addr,
    ) -> io::Result<()> {
        Ok(sockopt::set_ip_drop_membership(self.0, group, interface)?)
    }

    /// `IPV6_ADD_MEMBERSHIP` (`interface`: an index, 0 for the default).
    pub(crate) fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        Ok(sockopt::set_ipv6_add_membership(self.0, group, interface)?)
    }

    /// `IPV6_DROP_MEMBERSHIP`.
    pub(crate) fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        Ok(sockopt::set_ipv6_drop_membership(self.0, group, interface)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flow label reaches the kernel as std and the C library pass it
    /// (`sin6_flowinfo` as stored), and comes back from it unchanged.
    #[test]
    fn flowinfo_crosses_unchanged() {
        let addr = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 7, 0x0001_2345, 3));
        let written = SocketAddrAny::from(to_kernel(&addr));
        // SAFETY: rustix wrote an IPv6 address as a whole sockaddr_in6.
        let sin6 = unsafe {
            written
                .as_ptr()
                .cast::<libc::sockaddr_in6>()
                .read_unaligned()
        };
        assert_eq!(sin6.sin6_flowinfo, 0x0001_2345);
        assert_eq!(from_kernel(Some(written)), Some(addr));
    }
}
