//! `getsockopt`/`setsockopt` on stack sockets: the option's level and name to a
//! [`SockOpt`], and its value between a C program's bytes and an [`OptValue`].
//! What each option does is `vdestack::bsd`'s (its `options.rs` has the table).
//!
//! The library calls these for its own stacks' sockets; the `vdestack run` host
//! for the sockets of its programs, whose bytes come in requests (it compiles
//! this file too).

use std::ffi::c_int;
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;
use std::time::Duration;
use vdestack::bsd::{self, OptName, OptValue, SockOpt, TcpInfo};

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// The option `(level, name)` names, or ENOPROTOOPT.
fn option(level: c_int, name: c_int) -> io::Result<SockOpt> {
    SockOpt::from_raw(level, name).ok_or_else(|| errno(libc::ENOPROTOOPT))
}

/// Reads a `T` from an option value (EINVAL if shorter).
fn read<T: Copy>(value: &[u8]) -> io::Result<T> {
    if value.len() < size_of::<T>() {
        return Err(errno(libc::EINVAL));
    }
    // SAFETY: there are at least size_of::<T>() bytes; T is plain data.
    Ok(unsafe { std::ptr::read_unaligned(value.as_ptr().cast::<T>()) })
}

/// `setsockopt(fd, level, name, value)` on a stack socket, `value` the option's
/// bytes as a C program passes them.
pub(super) fn set(fd: BorrowedFd<'_>, level: c_int, name: c_int, value: &[u8]) -> io::Result<()> {
    let opt = option(level, name)?;
    let value = match opt {
        SockOpt::Linger => {
            let linger = read::<libc::linger>(value)?;
            OptValue::Linger(
                (linger.l_onoff != 0).then(|| Duration::from_secs(linger.l_linger.max(0) as u64)),
            )
        }
        SockOpt::AddMembership | SockOpt::DropMembership => {
            // ip_mreq and ip_mreqn both start with the group address.
            let group = read::<libc::in_addr>(value)?;
            OptValue::Group(IpAddr::V4(Ipv4Addr::from(u32::from_be(group.s_addr))))
        }
        SockOpt::AddMembershipV6 | SockOpt::DropMembershipV6 => {
            let mreq = read::<libc::ipv6_mreq>(value)?;
            OptValue::Group(IpAddr::V6(Ipv6Addr::from(mreq.ipv6mr_multiaddr.s6_addr)))
        }
        // Bytes, up to a NUL (none at all: no name).
        SockOpt::BindToDevice | SockOpt::Congestion => OptValue::Name(OptName::new(value)),
        _ => OptValue::Int(int_value(level, opt, value)?),
    };
    bsd::set_option(fd, opt, value)
}

/// The int a program passes for `opt`: EINVAL if shorter than an int, except
/// where Linux (6.18) reads less: its IPv4 level takes a single byte as the
/// value and no byte as 0, and `IPV6_DONTFRAG` takes anything shorter as 0.
fn int_value(level: c_int, opt: SockOpt, value: &[u8]) -> io::Result<c_int> {
    if value.len() >= size_of::<c_int>() {
        return read::<c_int>(value);
    }
    if level == libc::IPPROTO_IP {
        return Ok(value.first().map_or(0, |&b| c_int::from(b)));
    }
    if opt == SockOpt::DontFragment {
        return Ok(0);
    }
    Err(errno(libc::EINVAL))
}

/// `getsockopt(fd, level, name)` on a stack socket: the value's bytes as a C
/// program reads them, at most `room` of them (its `*len`).
pub(super) fn get(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    room: usize,
) -> io::Result<Vec<u8>> {
    let opt = option(level, name)?;
    let mut bytes = match bsd::get_option(fd, opt)? {
        OptValue::Int(v) => v.to_ne_bytes().to_vec(),
        OptValue::Linger(l) => {
            let l = libc::linger {
                l_onoff: l.is_some().into(),
                l_linger: l.map_or(0, |d| d.as_secs().min(c_int::MAX as u64) as c_int),
            };
            // SAFETY: `linger` is plain data: its bytes are its representation.
            unsafe { std::mem::transmute::<libc::linger, [u8; size_of::<libc::linger>()]>(l) }
                .to_vec()
        }
        // SO_BINDTODEVICE: the name with its NUL, or nothing when unbound; a
        // buffer too short for it is EINVAL.
        OptValue::Name(n) if opt == SockOpt::BindToDevice => {
            if n.as_bytes().is_empty() {
                return Ok(Vec::new());
            }
            let name = [n.as_bytes(), b"\0"].concat();
            if room < name.len() {
                return Err(errno(libc::EINVAL));
            }
            name
        }
        // TCP_CONGESTION: the 16 bytes of the name padded with NULs.
        OptValue::Name(n) => {
            let mut padded = vec![0u8; 16];
            padded[..n.as_bytes().len()].copy_from_slice(n.as_bytes());
            padded
        }
        OptValue::TcpInfo(i) => tcp_info_bytes(&i),
        _ => return Err(errno(libc::ENOPROTOOPT)),
    };
    bytes.truncate(room);
    Ok(bytes)
}

/// The bytes of Linux's `struct tcp_info` up to `tcpi_snd_wnd` (what a program
/// built with `<linux/tcp.h>` of Linux 5.x or later reads; one built with glibc's
/// `<netinet/tcp.h>` reads the first 104), in the machine's byte order.
fn tcp_info_bytes(info: &TcpInfo) -> Vec<u8> {
    const SIZE: usize = 232;
    let mut out = vec![0u8; SIZE];
    out[0] = info.state;
    out[2] = info.retransmits;
    let mut put = |offset: usize, value: u32| {
        out[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
    };
    put(8, info.rto);
    put(16, info.snd_mss);
    put(20, info.rcv_mss);
    put(24, info.unacked);
    put(60, info.pmtu);
    put(64, info.rcv_ssthresh);
    put(68, info.rtt);
    put(72, info.rttvar);
    put(76, info.snd_ssthresh);
    put(80, info.snd_cwnd);
    put(84, info.advmss);
    put(88, info.reordering);
    put(96, info.rcv_space);
    put(100, info.total_retrans);
    put(144, info.notsent_bytes);
    put(228, info.snd_wnd);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets above are those of glibc's `struct tcp_info`, which has the
    /// kernel's layout up to `tcpi_total_retrans`.
    #[test]
    fn tcp_info_has_linuxs_layout() {
        let mut info = TcpInfo::default();
        info.state = 1;
        info.retransmits = 2;
        info.rto = 3;
        info.snd_mss = 4;
        info.rcv_mss = 5;
        info.unacked = 6;
        info.pmtu = 7;
        info.rcv_ssthresh = 8;
        info.rtt = 9;
        info.rttvar = 10;
        info.snd_ssthresh = 11;
        info.snd_cwnd = 12;
        info.advmss = 13;
        info.reordering = 14;
        info.rcv_space = 15;
        info.total_retrans = 16;
        let bytes = tcp_info_bytes(&info);
        // SAFETY: `bytes` holds more than a glibc tcp_info, plain integers.
        let c = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<libc::tcp_info>()) };
        assert_eq!((c.tcpi_state, c.tcpi_retransmits, c.tcpi_rto), (1, 2, 3));
        assert_eq!((c.tcpi_snd_mss, c.tcpi_rcv_mss, c.tcpi_unacked), (4, 5, 6));
        assert_eq!((c.tcpi_pmtu, c.tcpi_rcv_ssthresh, c.tcpi_rtt), (7, 8, 9));
        assert_eq!((c.tcpi_rttvar, c.tcpi_snd_ssthresh), (10, 11));
        assert_eq!(
            (c.tcpi_snd_cwnd, c.tcpi_advmss, c.tcpi_reordering),
            (12, 13, 14)
        );
        assert_eq!((c.tcpi_rcv_space, c.tcpi_total_retrans), (15, 16));
        // Past glibc's struct: the kernel's (`<linux/tcp.h>`, Linux 5.4 on).
        info.snd_wnd = 17;
        let bytes = tcp_info_bytes(&info);
        assert_eq!(bytes.len(), 232, "up to tcpi_snd_wnd");
        assert_eq!(bytes[228..232], 17u32.to_ne_bytes());
    }
}
