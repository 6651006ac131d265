//! The one low layer of raw system calls on descriptors, shared by every layer
//! above it (`link`, `pump`, `kernel`, `socket`): socket pairs, passing descriptors
//! with SCM_RIGHTS, non-blocking and close-on-exec flags, timeouts, writes that
//! never raise SIGPIPE, and the few calls kernel-backend sockets need.
//!
//! It imports nothing of the crate. Everything unsafe about descriptors lives here,
//! each block with its reason.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub(crate) mod bsd;

// The library's own socket calls go to the kernel through syscall(2), not libc's
// symbols: with the C library (the `vdestack-capi` crate) loaded, those symbols are
// its interposed ones, which would answer the library's plumbing as if it were the
// program's (a datagram socket's `sendmsg` frames what it sends).

/// `sendmsg(2)`, straight to the kernel.
///
/// # Safety
/// `msg` and the buffers it points to are valid for the call.
unsafe fn sendmsg_raw(fd: RawFd, msg: &libc::msghdr, flags: libc::c_int) -> libc::ssize_t {
    // SAFETY: the caller's contract; SYS_sendmsg takes (int, const msghdr *, int).
    unsafe {
        libc::syscall(libc::SYS_sendmsg, fd, msg as *const libc::msghdr, flags) as libc::ssize_t
    }
}

/// `recvmsg(2)`, straight to the kernel.
///
/// # Safety
/// `msg` and the buffers it points to are valid for writes for the call.
unsafe fn recvmsg_raw(fd: RawFd, msg: &mut libc::msghdr, flags: libc::c_int) -> libc::ssize_t {
    // SAFETY: the caller's contract; SYS_recvmsg takes (int, msghdr *, int).
    unsafe {
        libc::syscall(libc::SYS_recvmsg, fd, msg as *mut libc::msghdr, flags) as libc::ssize_t
    }
}

fn cvt(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// A connected pair of sockets of `ty` (SOCK_STREAM or SOCK_SEQPACKET), close-on-exec.
pub(crate) fn pair(ty: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let ret =
        unsafe { libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads into `buf` (`read(2)`).
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call;
        // SYS_read takes (int, void *, size_t).
        let ret = unsafe {
            libc::syscall(libc::SYS_read, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) as isize
        };
        match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Writes `buf` to a socket without ever raising SIGPIPE (EPIPE is returned instead).
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call;
        // SYS_sendto takes (int, const void *, size_t, int, const sockaddr *, socklen_t).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_sendto,
                fd.as_raw_fd(),
                buf.as_ptr(),
                buf.len(),
                libc::MSG_NOSIGNAL,
                std::ptr::null::<libc::sockaddr>(),
                0 as libc::socklen_t,
            ) as libc::ssize_t
        };
        match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `shutdown(2)`.
pub(crate) fn shutdown(fd: BorrowedFd<'_>, how: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we borrow.
    if unsafe { libc::shutdown(fd.as_raw_fd(), how) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets or clears O_NONBLOCK.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL takes an int argument.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets or clears FD_CLOEXEC.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD takes an int argument.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
    let tv = match timeout {
        Some(d) => libc::timeval {
            tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_usec: (d.subsec_micros() as libc::suseconds_t).max(
                // a sub-microsecond timeout must not become "forever"
                if d.as_secs() == 0 { 1 } else { 0 },
            ),
        },
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    // SAFETY: `tv` is a valid timeval and its size is passed.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&tv as *const libc::timeval).cast(),
            mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads SO_RCVTIMEO / SO_SNDTIMEO.
pub(crate) fn timeout(fd: BorrowedFd<'_>, option: libc::c_int) -> io::Result<Option<Duration>> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are valid for writes; `len` holds tv's size.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if tv.tv_sec == 0 && tv.tv_usec == 0 {
        return Ok(None);
    }
    Ok(Some(
        Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64),
    ))
}

/// Sends `payload` with `fd` attached (SCM_RIGHTS), without blocking or SIGPIPE.
pub(crate) fn send_with_fd(
    sock: BorrowedFd<'_>,
    payload: &[u8],
    fd: BorrowedFd<'_>,
) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `space` bytes, enough for one cmsg holding one fd,
    // so CMSG_FIRSTHDR is non-null and CMSG_DATA has room for the descriptor.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
    }
    loop {
        // SAFETY: `msg` and everything it points to outlive the call.
        let ret = unsafe {
            sendmsg_raw(
                sock.as_raw_fd(),
                &msg,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
}

/// Receives one message and the descriptor attached to it, if any
/// (close-on-exec; further descriptors in it are closed). Blocks unless the socket
/// is non-blocking. Returns the bytes received, the descriptor, and whether the
/// message was longer than `payload` (MSG_TRUNC).
pub(crate) fn recv_message(
    sock: BorrowedFd<'_>,
    payload: &mut [u8],
) -> io::Result<(usize, Option<OwnedFd>, bool)> {
    loop {
        let mut iov = libc::iovec {
            iov_base: payload.as_mut_ptr().cast(),
            iov_len: payload.len(),
        };
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32 * 4) } as usize;
        let mut control = vec![0u8; space];
        // SAFETY: msghdr is plain data; zeroed is a valid empty header.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: `msg` points at live buffers of the sizes it declares.
        let ret = unsafe { recvmsg_raw(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        let len = match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(len) => len,
        };
        let mut received = Vec::new();
        // SAFETY: the kernel filled `control` with well-formed cmsgs up to
        // msg_controllen; the CMSG_* macros walk exactly those, and each SCM_RIGHTS
        // descriptor is new and ours alone.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                        / mem::size_of::<RawFd>();
                    for i in 0..count {
                        let raw = std::ptr::read_unaligned(data.add(i));
                        received.push(OwnedFd::from_raw_fd(raw));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        let truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
        return Ok((len, received.into_iter().next(), truncated));
    }
}

/// Receives one message and the descriptor attached to it (close-on-exec). Blocks
/// unless the socket is non-blocking. `Ok(None)`: the sender is gone.
pub(crate) fn recv_with_fd(
    sock: BorrowedFd<'_>,
    payload: &mut [u8],
) -> io::Result<Option<(usize, OwnedFd)>> {
    loop {
        match recv_message(sock, payload)? {
            (len, Some(fd), _) => return Ok(Some((len, fd))),
            // A message without a descriptor is not ours to hand out; EOF is EOF.
            (0, None, _) => return Ok(None),
            (_, None, _) => continue,
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
    let mut iov = [
        libc::iovec {
            iov_base: head.as_ptr() as *mut libc::c_void,
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: body.as_ptr() as *mut libc::c_void,
            iov_len: body.len(),
        },
    ];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = 2;
    loop {
        // SAFETY: `msg` points at two live buffers of the lengths it declares; the
        // kernel only reads them.
        let ret = unsafe { sendmsg_raw(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL | flags) };
        match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
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
    let mut iov = [
        libc::iovec {
            iov_base: head.as_mut_ptr().cast(),
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: body.as_mut_ptr().cast(),
            iov_len: body.len(),
        },
    ];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = 2;
    loop {
        // SAFETY: `msg` points at two live, writable buffers of the lengths it
        // declares, for the whole call.
        let ret = unsafe { recvmsg_raw(fd.as_raw_fd(), &mut msg, flags) };
        match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(n) => return Ok((n, msg.msg_flags & libc::MSG_TRUNC != 0)),
        }
    }
}

/// Whether the other end of a socket pair has been closed (POLLRDHUP), asked
/// without waiting.
pub(crate) fn peer_closed(fd: BorrowedFd<'_>) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let ret = unsafe { libc::poll(&mut pfd, 1, 0) };
    ret > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP) != 0
}

/// `addr` as a `sockaddr_storage` and its length.
fn sockaddr(addr: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// `bind(2)` of a kernel socket.
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))]
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &std::net::SocketAddr) -> io::Result<()> {
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a socket address of `len` bytes.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `listen(2)` of a kernel socket, with SO_REUSEADDR set first as std does.
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))]
pub(crate) fn reuse_addr(fd: BorrowedFd<'_>) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid int and its size is passed.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `listen(2)` of a kernel socket.
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))]
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: usize) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we borrow.
    if unsafe {
        libc::listen(
            fd.as_raw_fd(),
            backlog.min(i32::MAX as usize) as libc::c_int,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `connect(2)` of a blocking kernel socket, giving up after `timeout` (`ETIMEDOUT`).
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))]
pub(crate) fn connect(
    fd: BorrowedFd<'_>,
    addr: &std::net::SocketAddr,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let (storage, len) = sockaddr(addr);
    if timeout.is_some() {
        set_nonblocking(fd, true)?;
    }
    // SAFETY: `storage` holds a socket address of `len` bytes.
    let ret = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    let result = if ret == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // Interrupted or non-blocking: the connection goes on; wait for its end.
            Some(libc::EINTR | libc::EINPROGRESS) => wait_connected(fd, timeout),
            _ => Err(e),
        }
    };
    if timeout.is_some() {
        set_nonblocking(fd, false)?;
    }
    result
}

/// Waits (bounded by `timeout`) until a connecting socket is connected or failed.
fn wait_connected(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let wait = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
                }
                left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int
            }
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, wait) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            continue;
        }
        let mut err: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `err` and `len` are valid for writes; `len` holds err's size.
        let ret = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        return if err == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(err))
        };
    }
}

/// A `std::net` socket type viewing the kernel socket `fd`, to use std's wrappers of
/// `getsockname`, `accept4`, `setsockopt`... It must not be dropped (it does not own
/// `fd`): `ManuallyDrop` sees to that.
pub(crate) fn std_view<T: FromRawFd>(fd: BorrowedFd<'_>) -> mem::ManuallyDrop<T> {
    // SAFETY: the view lives no longer than the borrow in the callers (it is used
    // for one call), and being ManuallyDrop it never closes `fd`.
    mem::ManuallyDrop::new(unsafe { T::from_raw_fd(fd.as_raw_fd()) })
}

/// `setsockopt(2)` of a plain value (an int, a `linger`).
pub(crate) fn set_option<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: T,
) -> io::Result<()> {
    // SAFETY: `value` is a plain value of the size passed, live for the call.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `getsockopt(2)` of a plain value (an int, a `linger`).
pub(crate) fn option<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    // SAFETY: T is plain data (an int or a C struct); zeroed is a valid start.
    let mut value: T = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes; `len` holds value's size.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}
