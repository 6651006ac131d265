//! Socket addresses between the program's `struct sockaddr` memory and Rust's
//! [`SocketAddr`], as the Linux calls read and write them.

use std::ffi::c_int;
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Reads a socket address from the program (v4-mapped IPv6 as IPv4).
///
/// # Safety
/// `addr` is NULL or valid for reads of `len` bytes.
pub(super) unsafe fn read_addr(
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> io::Result<SocketAddr> {
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
pub(super) unsafe fn write_addr(
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

/// Whether `addr` is an AF_UNSPEC address (how `connect` dissolves a UDP
/// association).
///
/// # Safety
/// `addr` is NULL or valid for reads of `len` bytes.
pub(super) unsafe fn is_unspec(addr: *const libc::sockaddr, len: libc::socklen_t) -> bool {
    !addr.is_null()
        && len as usize >= size_of::<libc::sa_family_t>()
        // SAFETY: the family is readable (checked above).
        && unsafe { (*addr).sa_family } as c_int == libc::AF_UNSPEC
}
