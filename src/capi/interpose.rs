//! The BSD socket calls, interposed: a stack's descriptor is answered here, any
//! other goes to the next definition (libc's).

use super::options;
use super::sockets::{self, borrow, Socket};
use super::{fail, guard, set_errno, DEFAULT_STACK};
use std::ffi::{c_int, c_void};
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

/// The next definitions of the functions we export, found once with
/// `dlsym(RTLD_NEXT, ...)`.
mod next {
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::{AtomicUsize, Ordering};

    macro_rules! next_fn {
        ($($name:ident: fn($($arg:ty),*) -> $ret:ty;)*) => {$(
            pub(super) fn $name() -> Option<unsafe extern "C" fn($($arg),*) -> $ret> {
                static ADDRESS: AtomicUsize = AtomicUsize::new(0);
                let mut address = ADDRESS.load(Ordering::Relaxed);
                if address == 0 {
                    let symbol = concat!(stringify!($name), "\0");
                    // SAFETY: `symbol` is NUL-terminated; RTLD_NEXT is a valid handle.
                    address = unsafe { libc::dlsym(libc::RTLD_NEXT, symbol.as_ptr().cast()) }
                        as usize;
                    ADDRESS.store(address, Ordering::Relaxed);
                }
                // SAFETY: the symbol is libc's function of this very prototype.
                (address != 0).then(|| unsafe {
                    std::mem::transmute::<usize, unsafe extern "C" fn($($arg),*) -> $ret>(address)
                })
            }
        )*};
    }

    next_fn! {
        socket: fn(c_int, c_int, c_int) -> c_int;
        connect: fn(c_int, *const libc::sockaddr, libc::socklen_t) -> c_int;
        bind: fn(c_int, *const libc::sockaddr, libc::socklen_t) -> c_int;
        listen: fn(c_int, c_int) -> c_int;
        accept4: fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t, c_int) -> c_int;
        getsockname: fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> c_int;
        getpeername: fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> c_int;
        getsockopt: fn(c_int, c_int, c_int, *mut c_void, *mut libc::socklen_t) -> c_int;
        setsockopt: fn(c_int, c_int, c_int, *const c_void, libc::socklen_t) -> c_int;
        sendto: fn(c_int, *const c_void, usize, c_int, *const libc::sockaddr, libc::socklen_t) -> isize;
        sendmsg: fn(c_int, *const libc::msghdr, c_int) -> isize;
        send: fn(c_int, *const c_void, usize, c_int) -> isize;
        recv: fn(c_int, *mut c_void, usize, c_int) -> isize;
        recvfrom: fn(c_int, *mut c_void, usize, c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> isize;
        recvmsg: fn(c_int, *mut libc::msghdr, c_int) -> isize;
        ioctl: fn(c_int, libc::c_ulong, *mut c_void) -> c_int;
        read: fn(c_int, *mut c_void, usize) -> isize;
        fcntl: fn(c_int, c_int, std::ffi::c_long) -> c_int;
        fcntl64: fn(c_int, c_int, std::ffi::c_long) -> c_int;
        write: fn(c_int, *const c_void, usize) -> isize;
        close: fn(c_int) -> c_int;
        dup: fn(c_int) -> c_int;
        dup2: fn(c_int, c_int) -> c_int;
        dup3: fn(c_int, c_int, c_int) -> c_int;
    }
}

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

/// `dup3` of libc (not ours: the caller keeps the descriptor count itself).
///
/// # Safety
/// `new` is a descriptor number the caller may replace.
pub(super) unsafe fn real_dup3(old: BorrowedFd<'_>, new: c_int, flags: c_int) -> io::Result<()> {
    if call_next!(dup3(old.as_raw_fd(), new, flags)) < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a socket address from the program (v4-mapped IPv6 as IPv4).
///
/// # Safety
/// `addr` is NULL or valid for reads of `len` bytes.
unsafe fn read_addr(addr: *const libc::sockaddr, len: libc::socklen_t) -> io::Result<SocketAddr> {
    if addr.is_null() {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    let len = len as usize;
    if len < size_of::<libc::sa_family_t>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: at least the family is readable (checked above).
    let family = unsafe { (*addr).sa_family } as c_int;
    match family {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: `len` covers a sockaddr_in; read_unaligned tolerates any alignment.
            let sin = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in>()) };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: `len` covers a sockaddr_in6; read_unaligned tolerates any alignment.
            let sin6 = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in6>()) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Ok(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::new(IpAddr::V4(v4), port),
                None => SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )),
            })
        }
        libc::AF_INET | libc::AF_INET6 => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        _ => Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
    }
}

/// Writes `addr` for the program as a socket of `family` would (IPv4 as v4-mapped
/// on an AF_INET6 socket), truncated to `*len`, and sets `*len` to its full size.
///
/// # Safety
/// `out` is NULL or valid for writes of `*len` bytes; `len` is NULL or valid.
unsafe fn write_addr(
    addr: SocketAddr,
    family: c_int,
    out: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> io::Result<()> {
    if out.is_null() || len.is_null() {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    // SAFETY: sockaddr_storage is plain data; zero is a valid start.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let size = match (family, addr) {
        (libc::AF_INET, SocketAddr::V4(a)) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: storage is large enough and suitably aligned for a sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        (_, addr) => {
            let (ip, flowinfo, scope) = match addr {
                SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), 0, 0),
                SocketAddr::V6(a) => (*a.ip(), a.flowinfo(), a.scope_id()),
            };
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: addr.port().to_be(),
                sin6_flowinfo: flowinfo,
                sin6_addr: libc::in6_addr {
                    s6_addr: ip.octets(),
                },
                sin6_scope_id: scope,
            };
            // SAFETY: storage is large enough and suitably aligned for a sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: `len` is valid (checked non-null; the program's contract).
    let room = unsafe { *len } as usize;
    // SAFETY: `out` has room for `room` bytes; we copy no more than that.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&storage as *const libc::sockaddr_storage).cast::<u8>(),
            out.cast::<u8>(),
            room.min(size),
        );
        *len = size as libc::socklen_t;
    }
    Ok(())
}

/// Runs `f` on the stack socket `fd` refers to, or `otherwise` for any other fd.
fn on_socket<T>(fd: c_int, f: impl FnOnce(Arc<Socket>) -> T, otherwise: impl FnOnce() -> T) -> T {
    match sockets::lookup(fd) {
        Some(socket) => f(socket),
        None => otherwise(),
    }
}

fn done(result: io::Result<()>) -> c_int {
    result.map_or_else(fail, |()| 0)
}

/// `socket(2)`: on the default stack for AF_INET/AF_INET6 when one is set.
#[no_mangle]
pub extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    guard(-1, || {
        if domain == libc::AF_INET || domain == libc::AF_INET6 {
            let default = DEFAULT_STACK
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(stack) = default {
                return sockets::open(&stack, domain, ty, protocol).unwrap_or_else(fail);
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
    guard(-1, || {
        on_socket(
            fd,
            |s| {
                // SAFETY: the program's contract for `addr`.
                if s.is_datagram() && unsafe { is_unspec(addr, len) } {
                    return done(s.disconnect(fd));
                }
                // SAFETY: as above.
                done(unsafe { read_addr(addr, len) }.and_then(|a| s.connect(fd, a)))
            },
            || call_next!(connect(fd, addr, len)),
        )
    })
}

/// Whether `addr` is an AF_UNSPEC address (how `connect` dissolves a UDP
/// association).
///
/// # Safety
/// `addr` is NULL or valid for reads of `len` bytes.
unsafe fn is_unspec(addr: *const libc::sockaddr, len: libc::socklen_t) -> bool {
    !addr.is_null()
        && len as usize >= size_of::<libc::sa_family_t>()
        // SAFETY: the family is readable (checked above).
        && unsafe { (*addr).sa_family } as c_int == libc::AF_UNSPEC
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

fn sent(result: io::Result<usize>) -> isize {
    result.map_or_else(|e| fail(e) as isize, |n| n as isize)
}

/// A datagram socket's send: to `dest`, or to its peer.
fn send_datagram(
    s: &Socket,
    fd: c_int,
    data: &[u8],
    dest: Option<SocketAddr>,
    flags: c_int,
) -> isize {
    sent(
        s.datagram()
            .and_then(|udp| udp.send_to(borrow(fd), data, dest, flags)),
    )
}

/// A datagram socket's receive; writes the source to `addr` if the program asks.
///
/// # Safety
/// `addr` is NULL or valid for writes of `*len` bytes.
unsafe fn recv_datagram(
    s: &Socket,
    fd: c_int,
    buf: &mut [u8],
    flags: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> isize {
    let received = s
        .datagram()
        .and_then(|udp| udp.recv_from(borrow(fd), buf, flags))
        .and_then(|(n, from)| {
            if !addr.is_null() {
                // SAFETY: the caller's contract.
                unsafe { write_addr(from, s.family, addr, len) }?;
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
    guard(-1, || {
        on_socket(
            fd,
            // SAFETY: the program's contract for `addr`.
            |s| done(unsafe { read_addr(addr, len) }.and_then(|a| s.bind(a))),
            || call_next!(bind(fd, addr, len)),
        )
    })
}

/// `listen(2)`.
#[no_mangle]
pub extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    guard(-1, || {
        on_socket(
            fd,
            |s| done(s.listen(fd, backlog)),
            || call_next!(listen(fd, backlog)),
        )
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
    guard(-1, || {
        on_socket(
            fd,
            |s| match s.accept(fd, flags) {
                Ok((conn, peer)) => {
                    if !addr.is_null() {
                        // SAFETY: the program's contract for `addr` and `len`.
                        if let Err(e) = unsafe { write_addr(peer, s.family, addr, len) } {
                            close(conn);
                            return fail(e);
                        }
                    }
                    conn
                }
                Err(e) => fail(e),
            },
            || call_next!(accept4(fd, addr, len, flags)),
        )
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
    guard(-1, || {
        on_socket(
            fd,
            // SAFETY: the program's contract for `addr` and `len`.
            |s| done(unsafe { write_addr(s.local_addr(), s.family, addr, len) }),
            || call_next!(getsockname(fd, addr, len)),
        )
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
    guard(-1, || {
        on_socket(
            fd,
            // SAFETY: the program's contract for `addr` and `len`.
            |s| {
                done(
                    s.peer_addr()
                        .and_then(|p| unsafe { write_addr(p, s.family, addr, len) }),
                )
            },
            || call_next!(getpeername(fd, addr, len)),
        )
    })
}

/// Options answered by the kernel on the socket pair itself, which means the same
/// for a stack socket: the timeouts.
fn passed_through(level: c_int, name: c_int) -> bool {
    level == libc::SOL_SOCKET && matches!(name, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO)
}

/// `getsockopt(2)`: the table is in `capi/options.rs`.
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
    guard(-1, || {
        let Some(s) = sockets::lookup(fd).filter(|_| !passed_through(level, name)) else {
            return call_next!(getsockopt(fd, level, name, value, len));
        };
        let answer = match options::get(&s, level, name) {
            Ok(answer) => answer,
            Err(e) => return fail(e),
        };
        if value.is_null() || len.is_null() {
            set_errno(libc::EFAULT);
            return -1;
        }
        let int;
        let linger;
        let bytes: &[u8] = match answer {
            options::Value::Int(v) => {
                int = v.to_ne_bytes();
                &int
            }
            options::Value::Linger(l) => {
                // SAFETY: `linger` is plain data: its bytes are its representation.
                linger = unsafe {
                    std::mem::transmute::<libc::linger, [u8; size_of::<libc::linger>()]>(l)
                };
                &linger
            }
        };
        // SAFETY: the program gives `*len` writable bytes at `value`; we write no more.
        unsafe {
            let n = (*len as usize).min(bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), value.cast::<u8>(), n);
            *len = n as libc::socklen_t;
        }
        0
    })
}

/// `setsockopt(2)`: the table is in `capi/options.rs`.
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
    guard(-1, || {
        let Some(s) = sockets::lookup(fd).filter(|_| !passed_through(level, name)) else {
            return call_next!(setsockopt(fd, level, name, value, len));
        };
        // SAFETY: the program's contract: `value` holds `len` readable bytes.
        done(unsafe { options::set(&s, level, name, value, len) })
    })
}

/// `sendto(2)`: on a connected stack socket the address is ignored, as TCP does
/// (an AF_UNIX socket pair would refuse it with EISCONN).
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
    guard(-1, || {
        if let Some(s) = sockets::lookup(fd).filter(|s| s.is_datagram()) {
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
            return send_datagram(&s, fd, unsafe { in_buf(buf, len) }, dest, flags);
        }
        if addr.is_null() {
            return call_next!(sendto(fd, buf, len, flags, addr, addrlen));
        }
        on_socket(
            fd,
            |s| {
                if s.is_connected() {
                    call_next!(sendto(fd, buf, len, flags, std::ptr::null(), 0))
                } else {
                    set_errno(libc::EPIPE);
                    -1
                }
            },
            || call_next!(sendto(fd, buf, len, flags, addr, addrlen)),
        )
    })
}

/// `sendmsg(2)`: as `sendto`, the address of a connected stack socket is ignored.
///
/// # Safety
/// As `sendmsg(2)`.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    guard(-1, || {
        if let Some(s) = sockets::lookup(fd).filter(|s| s.is_datagram()) {
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
            return send_datagram(&s, fd, &data, dest, flags);
        }
        // SAFETY: the program's contract: `msg` is NULL or a valid msghdr.
        let Some(header) = (unsafe { msg.as_ref() }).filter(|m| !m.msg_name.is_null()) else {
            return call_next!(sendmsg(fd, msg, flags));
        };
        on_socket(
            fd,
            |s| {
                if !s.is_connected() {
                    set_errno(libc::EPIPE);
                    return -1;
                }
                let mut stripped = *header;
                stripped.msg_name = std::ptr::null_mut();
                stripped.msg_namelen = 0;
                call_next!(sendmsg(fd, &stripped, flags))
            },
            || call_next!(sendmsg(fd, msg, flags)),
        )
    })
}

/// `send(2)`: a datagram socket's goes through the stack (an unconnected one
/// fails with EDESTADDRREQ); anything else is the socket pair's own.
///
/// # Safety
/// As `send(2)`.
#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize {
    guard(-1, || {
        match sockets::lookup(fd).filter(|s| s.is_datagram()) {
            // SAFETY: the program's contract for `buf`.
            Some(s) => send_datagram(&s, fd, unsafe { in_buf(buf, len) }, None, flags),
            None => stream_outcome(fd, call_next!(send(fd, buf, len, flags)), len),
        }
    })
}

/// `recv(2)`: a datagram socket's strips what travels with each datagram.
///
/// # Safety
/// As `recv(2)`.
#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize {
    guard(-1, || {
        match sockets::lookup(fd).filter(|s| s.is_datagram()) {
            // SAFETY: the program's contract for `buf`; no address is written.
            Some(s) => unsafe {
                recv_datagram(
                    &s,
                    fd,
                    out_buf(buf, len),
                    flags,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            },
            None => stream_outcome(fd, call_next!(recv(fd, buf, len, flags)), len),
        }
    })
}

/// `recvfrom(2)`: a datagram socket's gives each datagram's true source.
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
    guard(-1, || {
        match sockets::lookup(fd).filter(|s| s.is_datagram()) {
            // SAFETY: the program's contract for `buf`, `addr` and `addrlen`.
            Some(s) => unsafe { recv_datagram(&s, fd, out_buf(buf, len), flags, addr, addrlen) },
            None => stream_outcome(
                fd,
                call_next!(recvfrom(fd, buf, len, flags, addr, addrlen)),
                len,
            ),
        }
    })
}

/// `recvmsg(2)`: for a datagram socket, the datagram scattered over the parts and
/// its source in `msg_name`; no control messages.
///
/// # Safety
/// As `recvmsg(2)`.
#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    guard(-1, || {
        let Some(s) = sockets::lookup(fd).filter(|s| s.is_datagram()) else {
            // SAFETY: the program's contract: `msg` is NULL or a valid msghdr.
            let asked = unsafe { msg.as_ref() }.map_or(0, |header| {
                (0..header.msg_iovlen)
                    // SAFETY: a valid msghdr holds msg_iovlen iovecs.
                    .map(|i| unsafe { (*header.msg_iov.add(i)).iov_len })
                    .sum()
            });
            return stream_outcome(fd, call_next!(recvmsg(fd, msg, flags)), asked);
        };
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
        let n = unsafe { recv_datagram(&s, fd, &mut data, flags, name, namelen) };
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

/// `read(2)`: on a stack's stream socket, the end of the stream after the peer's
/// reset is ECONNRESET, once (see [`stream_outcome`]).
///
/// # Safety
/// As `read(2)`.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    let n = call_next!(read(fd, buf, len));
    guard(n, || stream_outcome(fd, n, len))
}

/// `write(2)`: on a stack's stream socket, the broken pipe after the peer's
/// reset is ECONNRESET, once (see [`stream_outcome`]).
///
/// # Safety
/// As `write(2)`.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: usize) -> isize {
    let n = call_next!(write(fd, buf, len));
    guard(n, || stream_outcome(fd, n, len))
}

/// What a call on a stream descriptor returns: `n`, its own outcome, unless that
/// is the end of the stream (0 for a read of `asked` > 0 bytes) or a broken pipe
/// (EPIPE) on a stack connection that the peer reset. A kernel socket reports
/// such a reset as ECONNRESET to the first call that meets it; the socket pair in
/// the program's hand can only say EOF and EPIPE, so the reset the pump recorded
/// is told here instead. Other descriptors pay for a look-up only at their own
/// end of stream or broken pipe.
fn stream_outcome(fd: c_int, n: isize, asked: usize) -> isize {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let at_end = n == 0 && asked > 0;
    let broken = n == -1 && errno == libc::EPIPE;
    if !(at_end || broken) {
        return n;
    }
    let error = sockets::lookup(fd)
        .filter(|s| !s.is_datagram())
        .map_or(0, |s| s.take_error());
    if error == 0 {
        set_errno(errno);
        return n;
    }
    set_errno(error);
    -1
}

/// `ioctl(2)`: `FIONREAD` on an unconnected stack UDP socket counts the next
/// datagram's payload only, not the address travelling with it. Everything else is
/// libc's. (`ioctl` is variadic in C; its third argument, when there is one, is
/// passed like a pointer on the platforms this library supports.)
///
/// # Safety
/// As `ioctl(2)`.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: libc::c_ulong, arg: *mut c_void) -> c_int {
    guard(-1, || {
        let answer = call_next!(ioctl(fd, request, arg));
        if answer == 0
            && request == libc::FIONREAD
            && !arg.is_null()
            && sockets::lookup(fd).is_some_and(|s| s.is_datagram() && !s.is_connected())
        {
            // SAFETY: FIONREAD succeeded, so `arg` is the program's int it wrote.
            unsafe {
                let n = arg.cast::<c_int>();
                *n = (*n - crate::pump::ADDR_BYTES as c_int).max(0);
            }
        }
        answer
    })
}

/// `close(2)`, keeping count of a stack socket's descriptors.
#[no_mangle]
pub extern "C" fn close(fd: c_int) -> c_int {
    guard(-1, || {
        sockets::drop_descriptor(fd);
        call_next!(close(fd))
    })
}

/// `dup(2)`, keeping count of a stack socket's descriptors.
#[no_mangle]
pub extern "C" fn dup(fd: c_int) -> c_int {
    guard(-1, || {
        let new = call_next!(dup(fd));
        if new >= 0 {
            sockets::add_descriptor(new);
        }
        new
    })
}

/// `fcntl(2)`: a copy made with `F_DUPFD` or `F_DUPFD_CLOEXEC` is counted as one
/// more descriptor of a stack socket, as a `dup` is; everything else is libc's.
/// (`fcntl` is variadic in C; its third argument, an int or a pointer when there
/// is one, is passed like a long on the platforms this library supports.)
///
/// # Safety
/// As `fcntl(2)`.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: std::ffi::c_long) -> c_int {
    count_fcntl_copy(cmd, call_next!(fcntl(fd, cmd, arg)))
}

/// `fcntl64`, which glibc's headers call `fcntl` by when a program is built with
/// 64-bit file offsets: as [`fcntl`].
///
/// # Safety
/// As `fcntl(2)`.
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: std::ffi::c_long) -> c_int {
    count_fcntl_copy(cmd, call_next!(fcntl64(fd, cmd, arg)))
}

/// Counts the descriptor a successful `F_DUPFD`/`F_DUPFD_CLOEXEC` made; returns
/// the call's `result` unchanged.
fn count_fcntl_copy(cmd: c_int, result: c_int) -> c_int {
    if result >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        guard((), || sockets::add_descriptor(result));
    }
    result
}

/// `dup2(2)`, keeping count of a stack socket's descriptors.
#[no_mangle]
pub extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    guard(-1, || {
        if old == new {
            return call_next!(dup2(old, new));
        }
        sockets::drop_descriptor(new);
        let result = call_next!(dup2(old, new));
        if result >= 0 {
            sockets::add_descriptor(result);
        }
        result
    })
}

/// `dup3(2)`, keeping count of a stack socket's descriptors.
#[no_mangle]
pub extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    guard(-1, || {
        if old != new {
            sockets::drop_descriptor(new);
        }
        let result = call_next!(dup3(old, new, flags));
        if result >= 0 {
            sockets::add_descriptor(result);
        }
        result
    })
}
