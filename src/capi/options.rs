//! `getsockopt`/`setsockopt` on stack sockets: the option table of the C ABI.
//!
//! | level, option | what it does here |
//! |---|---|
//! | `SOL_SOCKET` `SO_REUSEADDR`, `SO_REUSEPORT` | port sharing as on Linux (see `engine/ports.rs`) |
//! | `SO_KEEPALIVE`, `TCP_KEEPIDLE`/`KEEPINTVL`/`KEEPCNT` | probes an idle connection; ETIMEDOUT when the peer is gone |
//! | `SO_LINGER` | a zero timeout makes `close` send RST; others are kept, `close` never blocks |
//! | `SO_RCVBUF`, `SO_SNDBUF` | size the stack's buffers (doubled as Linux does; for TCP, fixed once connected) |
//! | `SO_RCVTIMEO`, `SO_SNDTIMEO` | the kernel's, on the socket pair |
//! | `SO_ERROR`, `SO_TYPE`, `SO_DOMAIN`, `SO_PROTOCOL`, `SO_ACCEPTCONN` | read only |
//! | `SO_BROADCAST` | UDP: sending to a broadcast address needs it (else EACCES) |
//! | `TCP_NODELAY` | Nagle off |
//! | `TCP_MAXSEG` | read: 536 before connecting, then the MSS the link's MTU gives; set: ENOPROTOOPT (smoltcp has no MSS clamp) |
//! | `IP_TTL`, `IPV6_UNICAST_HOPS` | the hop limit of what the socket sends |
//! | `IPV6_V6ONLY` | AF_INET6 only; before bind (EINVAL after) |
//! | `IP_ADD_MEMBERSHIP`, `IP_DROP_MEMBERSHIP`, `IPV6_ADD_MEMBERSHIP`, `IPV6_DROP_MEMBERSHIP` | UDP multicast groups (EPROTO on TCP) |
//!
//! Anything else fails with ENOPROTOOPT.

use super::sockets::Socket;
use crate::engine::{SocketOptions, MAX_BUFFER, MIN_BUFFER, TCP_BUFFER};
use crate::socket::{checked_keepalive, checked_ttl};
use std::ffi::{c_int, c_void};
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Linux's defaults for what `getsockopt` reports before `SO_RCVBUF`/`SO_SNDBUF`
/// are set: `tcp_rmem[1]`, `tcp_wmem[1]`, and `rmem_default`/`wmem_default`.
const TCP_RCVBUF_DEFAULT: usize = 131_072;
const TCP_SNDBUF_DEFAULT: usize = 16_384;
const UDP_BUF_DEFAULT: usize = 212_992;

/// The value of an option, as `getsockopt` writes it.
pub(super) enum Value {
    Int(c_int),
    Linger(libc::linger),
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// Options of the wrong level for the socket: TCP options on UDP, IPv6 options
/// on IPv4.
fn check_level(s: &Socket, level: c_int) -> io::Result<()> {
    let fits = match level {
        libc::IPPROTO_TCP => !s.is_datagram(),
        libc::IPPROTO_IPV6 => s.family == libc::AF_INET6,
        _ => true,
    };
    fits.then_some(()).ok_or_else(|| errno(libc::ENOPROTOOPT))
}

fn seconds(d: Duration) -> c_int {
    d.as_secs().min(c_int::MAX as u64) as c_int
}

/// What `getsockopt(level, name)` gives.
pub(super) fn get(s: &Socket, level: c_int, name: c_int) -> io::Result<Value> {
    check_level(s, level)?;
    let o = s.options();
    let int = |v: bool| Ok(Value::Int(v.into()));
    let buffer = |set: Option<usize>, tcp_default: usize| {
        let default = if s.is_datagram() {
            UDP_BUF_DEFAULT
        } else {
            tcp_default
        };
        Ok(Value::Int(
            set.unwrap_or(default).min(c_int::MAX as usize) as c_int
        ))
    };
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_ERROR) => Ok(Value::Int(s.take_error())),
        (libc::SOL_SOCKET, libc::SO_TYPE) => Ok(Value::Int(s.ty)),
        (libc::SOL_SOCKET, libc::SO_DOMAIN) => Ok(Value::Int(s.family)),
        (libc::SOL_SOCKET, libc::SO_PROTOCOL) => Ok(Value::Int(s.protocol())),
        (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => int(s.is_listening()),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => int(o.reuse_address),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => int(o.reuse_port),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => int(o.keepalive),
        (libc::SOL_SOCKET, libc::SO_BROADCAST) => int(o.broadcast),
        (libc::SOL_SOCKET, libc::SO_LINGER) => Ok(Value::Linger(libc::linger {
            l_onoff: o.linger.is_some().into(),
            l_linger: o.linger.map_or(0, seconds),
        })),
        (libc::SOL_SOCKET, libc::SO_RCVBUF) => buffer(o.recv_buffer, TCP_RCVBUF_DEFAULT),
        (libc::SOL_SOCKET, libc::SO_SNDBUF) => buffer(o.send_buffer, TCP_SNDBUF_DEFAULT),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => int(o.nodelay),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => Ok(Value::Int(seconds(o.keep_idle))),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => Ok(Value::Int(seconds(o.keep_interval))),
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => Ok(Value::Int(o.keep_count as c_int)),
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => Ok(Value::Int(s.mss())),
        (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) => {
            Ok(Value::Int(o.hop_limit.into()))
        }
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) => int(o.v6only),
        _ => Err(errno(libc::ENOPROTOOPT)),
    }
}

/// The option value a program passed.
struct Raw {
    value: *const c_void,
    len: usize,
}

impl Raw {
    /// The value as an int (EINVAL if shorter).
    fn int(&self) -> io::Result<c_int> {
        self.read::<c_int>()
    }

    fn read<T: Copy>(&self) -> io::Result<T> {
        if self.value.is_null() || self.len < size_of::<T>() {
            return Err(errno(libc::EINVAL));
        }
        // SAFETY: `set`'s caller promises `len` readable bytes at `value`, and there
        // are at least size_of::<T>() of them; T is plain data.
        Ok(unsafe { std::ptr::read_unaligned(self.value.cast::<T>()) })
    }
}

/// `setsockopt(level, name, value, len)`.
///
/// # Safety
/// `value` is NULL or valid for reads of `len` bytes.
pub(super) unsafe fn set(
    s: &Socket,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: libc::socklen_t,
) -> io::Result<()> {
    check_level(s, level)?;
    let raw = Raw {
        value,
        len: len as usize,
    };
    let flag = |apply: fn(&mut SocketOptions, bool)| -> io::Result<()> {
        let on = raw.int()? != 0;
        s.set_options(|o| apply(o, on))
    };
    // Linux doubles a buffer size to allow for its bookkeeping, and reports that.
    let buffer = |bytes: c_int| Some((bytes.max(0) as usize * 2).clamp(MIN_BUFFER, MAX_BUFFER));
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => flag(|o, on| o.reuse_address = on),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => flag(|o, on| o.reuse_port = on),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => flag(|o, on| o.keepalive = on),
        (libc::SOL_SOCKET, libc::SO_BROADCAST) => flag(|o, on| o.broadcast = on),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => flag(|o, on| o.nodelay = on),
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            let linger = raw.read::<libc::linger>()?;
            let linger =
                (linger.l_onoff != 0).then(|| Duration::from_secs(linger.l_linger.max(0) as u64));
            s.set_options(|o| o.linger = linger)
        }
        (libc::SOL_SOCKET, libc::SO_RCVBUF) => {
            let size = buffer(raw.int()?);
            s.set_options(|o| o.recv_buffer = size)
        }
        (libc::SOL_SOCKET, libc::SO_SNDBUF) => {
            let size = buffer(raw.int()?);
            s.set_options(|o| o.send_buffer = size)
        }
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE | libc::TCP_KEEPINTVL | libc::TCP_KEEPCNT) => {
            let v = raw.int()?;
            let o = s.options();
            let secs = Duration::from_secs(v.max(0) as u64);
            let (idle, interval, count) = match name {
                libc::TCP_KEEPIDLE => (secs, o.keep_interval, o.keep_count),
                libc::TCP_KEEPINTVL => (o.keep_idle, secs, o.keep_count),
                _ => (o.keep_idle, o.keep_interval, v.max(0) as u32),
            };
            let (idle, interval, count) = checked_keepalive(idle, interval, count)?;
            s.set_options(|o| {
                o.keep_idle = idle;
                o.keep_interval = interval;
                o.keep_count = count;
            })
        }
        (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS) => {
            let v = raw.int()?;
            // -1 restores the default, as on Linux.
            let ttl = if v == -1 {
                SocketOptions::default().hop_limit
            } else {
                checked_ttl(u32::try_from(v).map_err(|_| errno(libc::EINVAL))?)?
            };
            s.set_options(|o| o.hop_limit = ttl)
        }
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) => {
            if s.is_bound() {
                return Err(errno(libc::EINVAL));
            }
            flag(|o, on| o.v6only = on)
        }
        (libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP | libc::IP_DROP_MEMBERSHIP) => {
            // ip_mreq and ip_mreqn both start with the group address.
            let group = raw.read::<libc::in_addr>()?;
            let group = Ipv4Addr::from(u32::from_be(group.s_addr));
            membership(s, IpAddr::V4(group), name == libc::IP_ADD_MEMBERSHIP)
        }
        (libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP | libc::IPV6_DROP_MEMBERSHIP) => {
            let mreq = raw.read::<libc::ipv6_mreq>()?;
            let group = Ipv6Addr::from(mreq.ipv6mr_multiaddr.s6_addr);
            membership(s, IpAddr::V6(group), name == libc::IPV6_ADD_MEMBERSHIP)
        }
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => Err(errno(libc::ENOPROTOOPT)),
        _ => Err(errno(libc::ENOPROTOOPT)),
    }
}

fn membership(s: &Socket, group: IpAddr, join: bool) -> io::Result<()> {
    if !s.is_datagram() {
        return Err(errno(libc::EPROTO));
    }
    s.datagram()?.membership(group, join)
}

/// The MSS a TCP segment of this stack carries (MTU minus the IP and TCP headers).
pub(super) fn mss_for(mtu: usize, family: c_int) -> c_int {
    let headers = if family == libc::AF_INET6 { 60 } else { 40 };
    mtu.saturating_sub(headers).min(TCP_BUFFER) as c_int
}
