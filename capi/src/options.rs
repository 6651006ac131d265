//! `getsockopt`/`setsockopt` on stack sockets: the option's level and name to a
//! [`SockOpt`], and its value between the program's bytes and an [`OptValue`]. What
//! each option does is `vdestack::bsd`'s (its `options.rs` has the table).

use std::ffi::{c_int, c_void};
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;
use std::time::Duration;
use vdestack::bsd::{self, OptValue, SockOpt};

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// The option `(level, name)` names, or ENOPROTOOPT.
fn option(level: c_int, name: c_int) -> io::Result<SockOpt> {
    SockOpt::from_raw(level, name).ok_or_else(|| errno(libc::ENOPROTOOPT))
}

/// Reads a `T` from the program's option value (EINVAL if shorter).
///
/// # Safety
/// `value` is NULL or valid for reads of `len` bytes.
unsafe fn read<T: Copy>(value: *const c_void, len: libc::socklen_t) -> io::Result<T> {
    if value.is_null() || (len as usize) < size_of::<T>() {
        return Err(errno(libc::EINVAL));
    }
    // SAFETY: the caller's contract, and there are at least size_of::<T>() bytes; T
    // is plain data.
    Ok(unsafe { std::ptr::read_unaligned(value.cast::<T>()) })
}

/// `setsockopt(fd, level, name, value, len)` on a stack socket.
///
/// # Safety
/// `value` is NULL or valid for reads of `len` bytes.
pub(super) unsafe fn set(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: libc::socklen_t,
) -> io::Result<()> {
    let opt = option(level, name)?;
    // SAFETY (each read): forwarded from our caller's contract.
    let value = match opt {
        SockOpt::Linger => {
            let linger = unsafe { read::<libc::linger>(value, len) }?;
            OptValue::Linger(
                (linger.l_onoff != 0).then(|| Duration::from_secs(linger.l_linger.max(0) as u64)),
            )
        }
        SockOpt::AddMembership | SockOpt::DropMembership => {
            // ip_mreq and ip_mreqn both start with the group address.
            let group = unsafe { read::<libc::in_addr>(value, len) }?;
            OptValue::Group(IpAddr::V4(Ipv4Addr::from(u32::from_be(group.s_addr))))
        }
        SockOpt::AddMembershipV6 | SockOpt::DropMembershipV6 => {
            let mreq = unsafe { read::<libc::ipv6_mreq>(value, len) }?;
            OptValue::Group(IpAddr::V6(Ipv6Addr::from(mreq.ipv6mr_multiaddr.s6_addr)))
        }
        _ => OptValue::Int(unsafe { read::<c_int>(value, len) }?),
    };
    bsd::set_option(fd, opt, value)
}

/// `getsockopt(fd, level, name, value, len)` on a stack socket: writes at most
/// `*len` bytes of the value, and its length to `*len`.
///
/// # Safety
/// `value` is NULL or valid for writes of `*len` bytes; `len` is NULL or valid.
pub(super) unsafe fn get(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: *mut c_void,
    len: *mut libc::socklen_t,
) -> io::Result<()> {
    let answer = bsd::get_option(fd, option(level, name)?)?;
    if value.is_null() || len.is_null() {
        return Err(errno(libc::EFAULT));
    }
    let int;
    let linger;
    let bytes: &[u8] = match answer {
        OptValue::Int(v) => {
            int = v.to_ne_bytes();
            &int
        }
        OptValue::Linger(l) => {
            let l = libc::linger {
                l_onoff: l.is_some().into(),
                l_linger: l.map_or(0, |d| d.as_secs().min(c_int::MAX as u64) as c_int),
            };
            // SAFETY: `linger` is plain data: its bytes are its representation.
            linger =
                unsafe { std::mem::transmute::<libc::linger, [u8; size_of::<libc::linger>()]>(l) };
            &linger
        }
        _ => return Err(errno(libc::ENOPROTOOPT)),
    };
    // SAFETY: the program gives `*len` writable bytes at `value`; we write no more.
    unsafe {
        let n = (*len as usize).min(bytes.len());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), value.cast::<u8>(), n);
        *len = n as libc::socklen_t;
    }
    Ok(())
}
