//! The calls a kernel socket is handed to by the [`bsd`](crate::bsd) module.
//!
//! They are raw system calls, as in the rest of `sys`: with the C library loaded,
//! libc's symbols are its interposed functions, which ask `bsd` in turn.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A raw system call's result: the count it returned, or its errno.
fn check_long(ret: libc::c_long) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// The socket address in `storage` (`len` bytes of it): `None` when it is no
/// Internet address (an unnamed peer, AF_UNSPEC).
fn from_sockaddr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    let start = (storage as *const libc::sockaddr_storage).cast::<u8>();
    match storage.ss_family as libc::c_int {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the storage holds a sockaddr_in (family and length say so) and
            // is aligned for it.
            let sin = unsafe { &*start.cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a sockaddr_in6.
            let sin6 = unsafe { &*start.cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Empty room for a socket address and its length.
fn address_room() -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    (
        storage,
        mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
    )
}

/// `addr` as a `sockaddr_storage` and its length.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
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
        SocketAddr::V6(a) => {
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

fn no_address() -> io::Error {
    io::Error::from_raw_os_error(libc::EAFNOSUPPORT)
}

/// `connect(2)` of a kernel socket to `addr` (`None`: AF_UNSPEC, which dissolves a
/// datagram socket's association). A non-blocking socket's EINPROGRESS is an error.
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: Option<&SocketAddr>) -> io::Result<()> {
    let (storage, len) = match addr {
        Some(addr) => sockaddr(addr),
        None => {
            let (mut storage, _) = address_room();
            storage.ss_family = libc::AF_UNSPEC as libc::sa_family_t;
            (
                storage,
                mem::size_of::<libc::sa_family_t>() as libc::socklen_t,
            )
        }
    };
    // SAFETY: `storage` holds a socket address of `len` bytes; SYS_connect takes
    // (int, const sockaddr *, socklen_t).
    check_long(unsafe {
        libc::syscall(
            libc::SYS_connect,
            fd.as_raw_fd(),
            &storage as *const libc::sockaddr_storage,
            len,
        )
    })?;
    Ok(())
}

/// `accept4(2)` of a kernel socket: the connection and its peer's address.
pub(crate) fn accept(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<(OwnedFd, SocketAddr)> {
    let (mut storage, mut len) = address_room();
    // SAFETY: `storage` has room for `len` bytes; accept4 writes at most that;
    // SYS_accept4 takes (int, sockaddr *, socklen_t *, int).
    let new = check_long(unsafe {
        libc::syscall(
            libc::SYS_accept4,
            fd.as_raw_fd(),
            &mut storage as *mut libc::sockaddr_storage,
            &mut len as *mut libc::socklen_t,
            flags,
        )
    })?;
    // SAFETY: accept4 succeeded: `new` is a new descriptor, ours alone.
    let new = unsafe { OwnedFd::from_raw_fd(new as RawFd) };
    let peer = from_sockaddr(&storage, len).ok_or_else(no_address)?;
    Ok((new, peer))
}

/// `getsockname(2)` (`peer` false) or `getpeername(2)` of a kernel socket.
pub(crate) fn address(fd: BorrowedFd<'_>, peer: bool) -> io::Result<SocketAddr> {
    let (mut storage, mut len) = address_room();
    let call = if peer {
        libc::SYS_getpeername
    } else {
        libc::SYS_getsockname
    };
    // SAFETY: `storage` has room for `len` bytes; the call writes at most that;
    // both take (int, sockaddr *, socklen_t *).
    check_long(unsafe {
        libc::syscall(
            call,
            fd.as_raw_fd(),
            &mut storage as *mut libc::sockaddr_storage,
            &mut len as *mut libc::socklen_t,
        )
    })?;
    from_sockaddr(&storage, len).ok_or_else(no_address)
}

/// `sendto(2)` of a kernel socket (`dest` `None`: its peer), never raising SIGPIPE.
pub(crate) fn send_to(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    dest: Option<&SocketAddr>,
    flags: libc::c_int,
) -> io::Result<usize> {
    let (storage, len) = match dest {
        Some(dest) => sockaddr(dest),
        None => (address_room().0, 0),
    };
    let addr: *const libc::sockaddr_storage = if dest.is_some() {
        &storage
    } else {
        std::ptr::null()
    };
    // SAFETY: `buf` is valid for reads of its length; `addr` is NULL or holds a
    // socket address of `len` bytes; SYS_sendto takes (int, const void *, size_t,
    // int, const sockaddr *, socklen_t).
    check_long(unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd.as_raw_fd(),
            buf.as_ptr(),
            buf.len(),
            flags | libc::MSG_NOSIGNAL,
            addr,
            len,
        )
    })
}

/// `recvfrom(2)` of a kernel socket: the bytes received and their source, if the
/// kernel names one (a stream socket does not).
pub(crate) fn recv_from(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<(usize, Option<SocketAddr>)> {
    let (mut storage, mut len) = address_room();
    // SAFETY: `buf` is valid for writes of its length, `storage` for `len` bytes;
    // SYS_recvfrom takes (int, void *, size_t, int, sockaddr *, socklen_t *).
    let n = check_long(unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
            flags,
            &mut storage as *mut libc::sockaddr_storage,
            &mut len as *mut libc::socklen_t,
        )
    })?;
    Ok((n, from_sockaddr(&storage, len)))
}
