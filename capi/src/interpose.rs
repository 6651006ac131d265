//! The BSD socket calls, interposed: a stack's descriptor is answered by
//! `vdestack::bsd`, any other goes to the next definition (libc's).
//!
//! `close`, `dup`, `dup2`, `dup3` and `fcntl` are not here: nothing needs to count
//! descriptors (the registry is keyed by the socket, and learns from the stack when
//! its last descriptor is gone), so they are libc's own, lock-free and
//! async-signal-safe.

use super::addr::{is_unspec, read_addr, write_addr};
use super::stack_fd::{self, StackFd};
use super::{fail, guard, next, remote, set_errno, unconnected};
use std::ffi::{c_int, c_ulong, c_void};
use std::io;
use std::os::fd::{BorrowedFd, IntoRawFd};
use vdestack::bsd::{self, Transfer};

/// Calls libc's `$name`, or fails with ENOSYS if there is none.
macro_rules! call_next {
    ($name:ident($($arg:expr),*)) => {
        match next::$name() {
            // SAFETY: forwarding the program's own arguments to libc's function.
            Some(f) => unsafe { f($($arg),*) },
            None => {
                set_errno(libc::ENOSYS);
                -1
            }
        }
    };
}

/// The program's descriptor `fd`, when it is a stack socket.
fn stack_socket(fd: c_int) -> Option<StackFd> {
    if fd < 0 {
        return None;
    }
    // SAFETY: only used for the duration of a call the program made on `fd`, which
    // keeps it open for that call (a closed number fails the look-up's fstat).
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    StackFd::find(borrowed)
}

fn done(result: io::Result<()>) -> c_int {
    result.map_or_else(fail, |()| 0)
}

fn sent(result: io::Result<usize>) -> isize {
    result.map_or_else(|e| fail(e) as isize, |n| n as isize)
}

/// `socket(2)`: on the default stack for AF_INET/AF_INET6 when one is set; else,
/// under `vdestack run`, on the host's.
#[no_mangle]
pub extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    guard(-1, || {
        if domain == libc::AF_INET || domain == libc::AF_INET6 {
            let default = super::default_stack();
            if let Some(stack) = default {
                return bsd::socket(&stack, domain, ty, protocol)
                    .map_or_else(fail, |fd| unconnected::made(fd.into_raw_fd(), ty));
            }
            if remote::is_remote() {
                return stack_fd::host_socket(domain, ty, protocol)
                    .map_or_else(fail, |fd| unconnected::made(fd.into_raw_fd(), ty));
            }
        }
        call_next!(socket(domain, ty, protocol))
    })
}

/// `connect(2)`.
///
/// # Safety
/// As `connect(2)`: `addr` valid for reads of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn connect(
    fd: c_int,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> c_int {
    guard(-1, || match stack_socket(fd) {
        Some(s) => {
            // SAFETY: the program's contract for `addr`.
            if s.kind.ty == libc::SOCK_DGRAM && unsafe { is_unspec(addr, len) } {
                return done(s.disconnect());
            }
            // SAFETY: as above.
            done(unsafe { read_addr(addr, len) }.and_then(|a| s.connect(a)))
        }
        None => call_next!(connect(fd, addr, len)),
    })
}

/// The program's buffer as a slice (empty for a zero length, whatever the pointer).
///
/// # Safety
/// `buf` is valid for reads of `len` bytes when `len` is not 0.
unsafe fn in_buf<'a>(buf: *const c_void, len: usize) -> &'a [u8] {
    if len == 0 || buf.is_null() {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(buf.cast(), len) }
}

/// The program's buffer as a mutable slice.
///
/// # Safety
/// `buf` is valid for writes of `len` bytes when `len` is not 0.
unsafe fn out_buf<'a>(buf: *mut c_void, len: usize) -> &'a mut [u8] {
    if len == 0 || buf.is_null() {
        return &mut [];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(buf.cast(), len) }
}

/// A datagram socket's receive; writes the source to `addr` if the program asks.
///
/// # Safety
/// `addr` is NULL or valid for writes of `*len` bytes.
unsafe fn recv_datagram(
    s: StackFd,
    buf: &mut [u8],
    flags: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> isize {
    let received = s.recv_from(buf, flags).and_then(|(n, from)| {
        if !addr.is_null() {
            // SAFETY: the caller's contract.
            unsafe { write_addr(from, s.kind.domain, addr, len) }?;
        }
        Ok(n)
    });
    sent(received)
}

/// `bind(2)`.
///
/// # Safety
/// As `bind(2)`.
#[no_mangle]
pub unsafe extern "C" fn bind(
    fd: c_int,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> c_int {
    guard(-1, || match stack_socket(fd) {
        // SAFETY: the program's contract for `addr`.
        Some(s) => done(unsafe { read_addr(addr, len) }.and_then(|a| s.bind(a))),
        None => call_next!(bind(fd, addr, len)),
    })
}

/// `listen(2)`.
#[no_mangle]
pub extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    guard(-1, || match stack_socket(fd) {
        Some(s) => done(s.listen(backlog)),
        None => call_next!(listen(fd, backlog)),
    })
}

/// `accept(2)`.
///
/// # Safety
/// As `accept(2)`.
#[no_mangle]
pub unsafe extern "C" fn accept(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> c_int {
    // SAFETY: same contract.
    unsafe { accept4(fd, addr, len, 0) }
}

/// `accept4(2)`.
///
/// # Safety
/// As `accept4(2)`: `addr` NULL or valid for `*len` bytes.
#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
    flags: c_int,
) -> c_int {
    guard(-1, || match stack_socket(fd) {
        Some(s) => match s.accept(flags) {
            Ok((conn, peer)) => {
                if !addr.is_null() {
                    // SAFETY: the program's contract for `addr` and `len`.
                    if let Err(e) = unsafe { write_addr(peer, s.kind.domain, addr, len) } {
                        drop(conn);
                        return fail(e);
                    }
                }
                conn.into_raw_fd()
            }
            Err(e) => fail(e),
        },
        None => call_next!(accept4(fd, addr, len, flags)),
    })
}

/// `getsockname(2)`.
///
/// # Safety
/// As `getsockname(2)`.
#[no_mangle]
pub unsafe extern "C" fn getsockname(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> c_int {
    guard(-1, || match stack_socket(fd) {
        Some(s) => done(
            // SAFETY: the program's contract for `addr` and `len`.
            s.local_addr()
                .and_then(|a| unsafe { write_addr(a, s.kind.domain, addr, len) }),
        ),
        None => call_next!(getsockname(fd, addr, len)),
    })
}

/// `getpeername(2)`.
///
/// # Safety
/// As `getpeername(2)`.
#[no_mangle]
pub unsafe extern "C" fn getpeername(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> c_int {
    guard(-1, || match stack_socket(fd) {
        Some(s) => done(
            // SAFETY: the program's contract for `addr` and `len`.
            s.peer_addr()
                .and_then(|p| unsafe { write_addr(p, s.kind.domain, addr, len) }),
        ),
        None => call_next!(getpeername(fd, addr, len)),
    })
}

/// The program's option value as bytes (none for NULL or a zero length).
///
/// # Safety
/// `value` is NULL or valid for reads of `len` bytes.
unsafe fn value_bytes<'a>(value: *const c_void, len: libc::socklen_t) -> &'a [u8] {
    if value.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract: `len` readable bytes.
    unsafe { std::slice::from_raw_parts(value.cast::<u8>(), len as usize) }
}

/// Writes an option's bytes where `getsockopt`'s caller asked: at `value`, and
/// their length at `*len` (EFAULT for NULL pointers).
///
/// # Safety
/// `value` is NULL or valid for writes of `*len` bytes; `len` is NULL or valid.
unsafe fn write_value(
    bytes: &[u8],
    value: *mut c_void,
    len: *mut libc::socklen_t,
) -> io::Result<()> {
    if value.is_null() || len.is_null() {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    // SAFETY: the program gives `*len` writable bytes at `value`; the caller
    // asked for no more than `*len` bytes.
    unsafe {
        let n = (*len as usize).min(bytes.len());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), value.cast::<u8>(), n);
        *len = n as libc::socklen_t;
    }
    Ok(())
}

/// The room a `getsockopt` caller gives: `*len`; unlimited when `value` or `len`
/// is NULL, so that the option's own errors come before [`write_value`]'s EFAULT.
///
/// # Safety
/// `len` is NULL or valid for reads.
unsafe fn room(value: *const c_void, len: *const libc::socklen_t) -> usize {
    if value.is_null() {
        return usize::MAX;
    }
    // SAFETY: the caller's contract.
    unsafe { len.as_ref() }.map_or(usize::MAX, |&l| l as usize)
}

/// Options answered by the kernel on the socket pair itself, which means the same
/// for a stack socket: the timeouts.
fn passed_through(level: c_int, name: c_int) -> bool {
    level == libc::SOL_SOCKET && matches!(name, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO)
}

/// `getsockopt(2)`.
///
/// # Safety
/// As `getsockopt(2)`.
#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *mut c_void,
    len: *mut libc::socklen_t,
) -> c_int {
    guard(-1, || match stack_socket(fd) {
        Some(s) if !passed_through(level, name) => {
            // SAFETY: the program's contract for `value` and `len`.
            let room = unsafe { room(value, len) };
            // SAFETY: as above; no more than `room` bytes come back.
            done(
                s.get_option(level, name, room)
                    .and_then(|bytes| unsafe { write_value(&bytes, value, len) }),
            )
        }
        _ => call_next!(getsockopt(fd, level, name, value, len)),
    })
}

/// `setsockopt(2)`.
///
/// # Safety
/// As `setsockopt(2)`.
#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: libc::socklen_t,
) -> c_int {
    guard(-1, || match stack_socket(fd) {
        Some(s) if !passed_through(level, name) => {
            // SAFETY: the program's contract: `value` holds `len` readable bytes.
            done(s.set_option(level, name, unsafe { value_bytes(value, len) }))
        }
        _ => call_next!(setsockopt(fd, level, name, value, len)),
    })
}

/// What `fd` is, for a call about to move bytes on it (`bsd::check_transfer`):
/// `Ok(None)` for a descriptor that is no stack socket; the error Linux gives for
/// a stream socket that is not connected.
fn transfer(fd: c_int, transfer: Transfer) -> io::Result<Option<StackFd>> {
    let Some(s) = stack_socket(fd) else {
        return Ok(None);
    };
    s.check_transfer(transfer)?;
    Ok(Some(s))
}

/// A send refused on a stream socket: `EPIPE` raises `SIGPIPE` first, as Linux
/// does, unless `MSG_NOSIGNAL`.
fn refused(e: io::Error, flags: c_int) -> isize {
    if e.raw_os_error() == Some(libc::EPIPE) && flags & libc::MSG_NOSIGNAL == 0 {
        // SAFETY: raise takes a signal number; the program's disposition decides.
        unsafe { libc::raise(libc::SIGPIPE) };
    }
    fail(e) as isize
}

/// `sendto(2)`: on a stack stream socket the address is ignored, as TCP does (an
/// AF_UNIX socket pair would refuse it with EISCONN).
///
/// # Safety
/// As `sendto(2)`.
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const libc::sockaddr,
    addrlen: libc::socklen_t,
) -> isize {
    guard(-1, || match transfer(fd, Transfer::Send) {
        Err(e) => refused(e, flags),
        Ok(Some(s)) if s.kind.ty == libc::SOCK_DGRAM => {
            let dest = if addr.is_null() {
                None
            } else {
                // SAFETY: the program's contract for `addr`.
                match unsafe { read_addr(addr, addrlen) } {
                    Ok(dest) => Some(dest),
                    Err(e) => return fail(e) as isize,
                }
            };
            // SAFETY: the program's contract for `buf`.
            sent(s.send_to(unsafe { in_buf(buf, len) }, dest, flags))
        }
        Ok(Some(_)) => stream_outcome(
            fd,
            call_next!(sendto(fd, buf, len, flags, std::ptr::null(), 0)),
            len,
        ),
        Ok(None) => call_next!(sendto(fd, buf, len, flags, addr, addrlen)),
    })
}

/// `sendmsg(2)`: as `sendto`, the address of a stack stream socket is ignored.
///
/// # Safety
/// As `sendmsg(2)`.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    guard(-1, || match transfer(fd, Transfer::Send) {
        Err(e) => refused(e, flags),
        Ok(Some(s)) if s.kind.ty == libc::SOCK_DGRAM => {
            // SAFETY: the program's contract: `msg` is NULL or a valid msghdr.
            let Some(header) = (unsafe { msg.as_ref() }) else {
                return fail(io::Error::from_raw_os_error(libc::EFAULT)) as isize;
            };
            let dest = if header.msg_name.is_null() {
                None
            } else {
                // SAFETY: a valid msghdr's name holds msg_namelen bytes.
                match unsafe { read_addr(header.msg_name.cast(), header.msg_namelen) } {
                    Ok(dest) => Some(dest),
                    Err(e) => return fail(e) as isize,
                }
            };
            // A datagram leaves in one piece: gather the parts first.
            let mut data = Vec::new();
            for i in 0..header.msg_iovlen {
                // SAFETY: a valid msghdr holds msg_iovlen iovecs, each valid for
                // reads of its length.
                let part = unsafe {
                    let iov = &*header.msg_iov.add(i);
                    in_buf(iov.iov_base, iov.iov_len)
                };
                data.extend_from_slice(part);
            }
            sent(s.send_to(&data, dest, flags))
        }
        Ok(Some(_)) => {
            // SAFETY: the program's contract: `msg` is NULL or a valid msghdr.
            let Some(header) = (unsafe { msg.as_ref() }) else {
                return call_next!(sendmsg(fd, msg, flags));
            };
            let mut stripped = *header;
            stripped.msg_name = std::ptr::null_mut();
            stripped.msg_namelen = 0;
            let asked = iov_len(header);
            stream_outcome(fd, call_next!(sendmsg(fd, &stripped, flags)), asked)
        }
        Ok(None) => call_next!(sendmsg(fd, msg, flags)),
    })
}

/// The bytes a msghdr's parts hold.
fn iov_len(header: &libc::msghdr) -> usize {
    (0..header.msg_iovlen)
        // SAFETY: a valid msghdr holds msg_iovlen iovecs.
        .map(|i| unsafe { (*header.msg_iov.add(i)).iov_len })
        .sum()
}

/// `send(2)`: a datagram socket's goes through the stack (an unconnected one fails
/// with EDESTADDRREQ); a stream's is the socket pair's own, once connected.
///
/// # Safety
/// As `send(2)`.
#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize {
    guard(-1, || match transfer(fd, Transfer::Send) {
        Err(e) => refused(e, flags),
        // SAFETY: the program's contract for `buf`.
        Ok(Some(s)) if s.kind.ty == libc::SOCK_DGRAM => {
            sent(s.send_to(unsafe { in_buf(buf, len) }, None, flags))
        }
        Ok(Some(_)) => stream_outcome(fd, call_next!(send(fd, buf, len, flags)), len),
        Ok(None) => call_next!(send(fd, buf, len, flags)),
    })
}

/// `recv(2)`: a datagram socket's strips what travels with each datagram; a
/// stream's is the socket pair's own, once connected (`ENOTCONN` before).
///
/// # Safety
/// As `recv(2)`.
#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize {
    guard(-1, || match transfer(fd, Transfer::Receive) {
        Err(e) => fail(e) as isize,
        // SAFETY: the program's contract for `buf`.
        Ok(Some(s)) if s.kind.ty == libc::SOCK_DGRAM => sent(
            s.recv_from(unsafe { out_buf(buf, len) }, flags)
                .map(|(n, _)| n),
        ),
        Ok(Some(_)) => stream_outcome(fd, call_next!(recv(fd, buf, len, flags)), len),
        Ok(None) => call_next!(recv(fd, buf, len, flags)),
    })
}

/// `recvfrom(2)`: a datagram socket's gives each datagram's true source; a
/// stream's names no source, as TCP's (the pair would name an AF_UNIX one).
///
/// # Safety
/// As `recvfrom(2)`.
#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    addr: *mut libc::sockaddr,
    addrlen: *mut libc::socklen_t,
) -> isize {
    guard(-1, || match transfer(fd, Transfer::Receive) {
        Err(e) => fail(e) as isize,
        // SAFETY: the program's contract for `buf`, `addr` and `addrlen`.
        Ok(Some(s)) if s.kind.ty == libc::SOCK_DGRAM => unsafe {
            recv_datagram(s, out_buf(buf, len), flags, addr, addrlen)
        },
        Ok(Some(_)) => {
            let (no_addr, no_len) = (std::ptr::null_mut(), std::ptr::null_mut());
            let n = call_next!(recvfrom(fd, buf, len, flags, no_addr, no_len));
            if n >= 0 && !addrlen.is_null() {
                // SAFETY: the program's contract: `addrlen` is valid for writes.
                unsafe { *addrlen = 0 };
            }
            stream_outcome(fd, n, len)
        }
        Ok(None) => call_next!(recvfrom(fd, buf, len, flags, addr, addrlen)),
    })
}

/// `recvmsg(2)`: for a datagram socket, the datagram scattered over the parts and
/// its source in `msg_name`; no control messages. A stream's names no source.
///
/// # Safety
/// As `recvmsg(2)`.
#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    guard(-1, || {
        let s = match transfer(fd, Transfer::Receive) {
            Err(e) => return fail(e) as isize,
            Ok(None) => return call_next!(recvmsg(fd, msg, flags)),
            Ok(Some(s)) => s,
        };
        if s.kind.ty != libc::SOCK_DGRAM {
            // SAFETY: the program's contract: `msg` is NULL or a valid msghdr.
            let asked = unsafe { msg.as_ref() }.map_or(0, iov_len);
            let n = call_next!(recvmsg(fd, msg, flags));
            if n >= 0 {
                // SAFETY: as above; the call succeeded, so `msg` is valid.
                unsafe { (*msg).msg_namelen = 0 };
            }
            return stream_outcome(fd, n, asked);
        }
        // SAFETY: the program's contract: `msg` is NULL or a valid msghdr.
        let Some(header) = (unsafe { msg.as_mut() }) else {
            return fail(io::Error::from_raw_os_error(libc::EFAULT)) as isize;
        };
        let parts = (0..header.msg_iovlen)
            // SAFETY: a valid msghdr holds msg_iovlen iovecs.
            .map(|i| unsafe { *header.msg_iov.add(i) })
            .collect::<Vec<_>>();
        let mut data = vec![0u8; parts.iter().map(|p| p.iov_len).sum()];
        let (name, namelen) = if header.msg_name.is_null() {
            (std::ptr::null_mut(), std::ptr::null_mut())
        } else {
            (header.msg_name.cast(), &mut header.msg_namelen as *mut _)
        };
        // SAFETY: a valid msghdr's name has room for msg_namelen bytes.
        let n = unsafe { recv_datagram(s, &mut data, flags, name, namelen) };
        if n < 0 {
            return n;
        }
        let mut rest = &data[..n as usize];
        for part in parts {
            let take = rest.len().min(part.iov_len);
            // SAFETY: each iovec is valid for writes of its length.
            unsafe { out_buf(part.iov_base, part.iov_len)[..take].copy_from_slice(&rest[..take]) };
            rest = &rest[take..];
        }
        header.msg_controllen = 0;
        header.msg_flags = 0;
        n
    })
}

/// `shutdown(2)`: on a stack socket, as Linux answers it (`bsd::shutdown`).
#[no_mangle]
pub extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    guard(-1, || match stack_socket(fd) {
        Some(s) => done(s.shutdown(how)),
        None => call_next!(shutdown(fd, how)),
    })
}

/// `read(2)`: on a stack's stream socket that is not connected, ENOTCONN at
/// once as on Linux (see [`unconnected_read`]); the end of the stream after the
/// peer's reset is ECONNRESET, once (see [`stream_outcome`]).
///
/// # Safety
/// As `read(2)`.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    if unconnected::may_be(fd) {
        if let Some(refused) = guard(None, || unconnected_read(fd)) {
            return refused;
        }
    }
    let n = call_next!(read(fd, buf, len));
    guard(n, || stream_outcome(fd, n, len))
}

/// `readv(2)`: as [`read`].
///
/// # Safety
/// As `readv(2)`.
#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, count: c_int) -> isize {
    if unconnected::may_be(fd) {
        if let Some(refused) = guard(None, || unconnected_read(fd)) {
            return refused;
        }
    }
    let n = call_next!(readv(fd, iov, count));
    let asked = match usize::try_from(count) {
        // SAFETY: the program's contract: `iov` holds `count` iovecs.
        Ok(count) if n == 0 && !iov.is_null() => {
            (0..count).map(|i| unsafe { (*iov.add(i)).iov_len }).sum()
        }
        _ => 1,
    };
    guard(n, || stream_outcome(fd, n, asked))
}

/// What a read on `fd`, marked as perhaps a stack stream socket not connected
/// yet ([`unconnected`]), meets before the pair's own read: the refusal
/// (ENOTCONN on a socket never connected or listening, as Linux's
/// `tcp_recvmsg`; a failed connect's error), or `None` to read. The mark goes
/// once the socket is connected or is no stack socket; a connect under way
/// keeps it (the read then waits on the pair, as Linux's waits for the
/// handshake). In a forked child the stack's calls answer EBADF (its pump is
/// the parent's): the inherited pair reads as it always did.
fn unconnected_read(fd: c_int) -> Option<isize> {
    match transfer(fd, Transfer::Receive) {
        Err(e) if e.raw_os_error() != Some(libc::EBADF) => Some(fail(e) as isize),
        Err(_) | Ok(None) => {
            unconnected::settled(fd);
            None
        }
        Ok(Some(s)) => {
            if s.kind.ty != libc::SOCK_STREAM || s.peer_addr().is_ok() {
                unconnected::settled(fd);
            }
            None
        }
    }
}

/// `write(2)`: on a stack's stream socket, the broken pipe after the peer's reset
/// is ECONNRESET, once (see [`stream_outcome`]).
///
/// # Safety
/// As `write(2)`.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: usize) -> isize {
    let n = call_next!(write(fd, buf, len));
    guard(n, || stream_outcome(fd, n, len))
}

/// What a call on a stream descriptor returns: `n`, its own outcome, unless that is
/// the end of the stream (0 for a read of `asked` > 0 bytes) or a broken pipe
/// (EPIPE) on a stack connection that the peer reset: a kernel socket reports such a
/// reset as ECONNRESET to the first call that meets it; the socket pair in the
/// program's hand can only say EOF and EPIPE, so the reset the stack recorded
/// (`bsd::take_error`) is told here instead. Other descriptors pay for a look-up
/// only at their own end of stream or broken pipe.
fn stream_outcome(fd: c_int, n: isize, asked: usize) -> isize {
    if n > 0 {
        // Bytes moved: the common case, which needs not even errno.
        return n;
    }
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let at_end = n == 0 && asked > 0;
    let broken = n == -1 && errno == libc::EPIPE;
    if !(at_end || broken) {
        return n;
    }
    let reset = stack_socket(fd)
        .filter(|s| s.kind.ty == libc::SOCK_STREAM)
        .and_then(|s| s.take_error().ok().flatten());
    match reset {
        Some(e) => fail(e) as isize,
        None => {
            set_errno(errno);
            n
        }
    }
}

/// `ioctl(2)`, called by the C shim's `ioctl` (`shim.c`) with its variadic
/// argument read: `FIONREAD` on a stack socket is `bsd::bytes_to_read` (an
/// unconnected datagram socket's next datagram without the address travelling with
/// it); everything else is libc's, called with its variadic prototype.
///
/// # Safety
/// As `ioctl(2)`.
#[no_mangle]
pub unsafe extern "C" fn vdestack_capi_ioctl(
    fd: c_int,
    request: c_ulong,
    arg: *mut c_void,
) -> c_int {
    guard(-1, || {
        if stack_socket(fd).is_some() {
            if let Some(answer) = super::interfaces::ioctl(request, arg) {
                return answer;
            }
        }
        if request == libc::FIONREAD {
            if let Some(s) = stack_socket(fd) {
                if arg.is_null() {
                    return fail(io::Error::from_raw_os_error(libc::EFAULT));
                }
                return match s.bytes_to_read() {
                    // SAFETY: FIONREAD's argument is the program's int.
                    Ok(n) => unsafe {
                        *arg.cast::<c_int>() = n.min(c_int::MAX as usize) as c_int;
                        0
                    },
                    Err(e) => fail(e),
                };
            }
        }
        match next::ioctl() {
            // SAFETY: forwarding the program's own arguments to libc's function.
            Some(f) => unsafe { f(fd, request, arg) },
            None => {
                set_errno(libc::ENOSYS);
                -1
            }
        }
    })
}
