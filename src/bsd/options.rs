//! `getsockopt`/`setsockopt`: the options a stack socket answers, and the rules
//! Linux applies to their values.
//!
//! | option | what it does here |
//! |---|---|
//! | `SO_REUSEADDR`, `SO_REUSEPORT` | port sharing as on Linux (see `engine/ports.rs`) |
//! | `SO_KEEPALIVE`, `TCP_KEEPIDLE`/`KEEPINTVL`/`KEEPCNT` | probes an idle connection; ETIMEDOUT when the peer is gone |
//! | `SO_LINGER` | a zero timeout makes `close` send RST; others are kept, `close` never blocks |
//! | `SO_RCVBUF`, `SO_SNDBUF` | size the stack's buffers (doubled as Linux does; for TCP, fixed once connected) |
//! | `SO_ERROR`, `SO_TYPE`, `SO_DOMAIN`, `SO_PROTOCOL`, `SO_ACCEPTCONN` | read only |
//! | `SO_BROADCAST` | UDP: sending to a broadcast address needs it (else EACCES) |
//! | `TCP_NODELAY` | Nagle off |
//! | `TCP_MAXSEG` | read: 536 before connecting, then the MSS the link's MTU gives; set: ENOPROTOOPT (smoltcp has no MSS clamp) |
//! | `IP_TTL`, `IPV6_UNICAST_HOPS` | the hop limit of what the socket sends |
//! | `IPV6_V6ONLY` | AF_INET6 only; before bind (EINVAL after) |
//! | `IP_ADD_MEMBERSHIP`, `IP_DROP_MEMBERSHIP`, `IPV6_ADD_MEMBERSHIP`, `IPV6_DROP_MEMBERSHIP` | UDP multicast groups (EPROTO on TCP) |
//!
//! `SO_RCVTIMEO` and `SO_SNDTIMEO` are not here: the kernel keeps them on the
//! descriptor itself, for a stack socket as for any other.

use super::stack_socket::StackSocket;
use crate::cmd::{LinkKind, NetConfig};
use crate::engine::{SocketOptions, MAX_BUFFER, MIN_BUFFER, TCP_BUFFER};
use crate::socket::{checked_keepalive, checked_ttl};
use std::io;
use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// Linux's defaults for what `getsockopt` reports before `SO_RCVBUF`/`SO_SNDBUF`
/// are set: `tcp_rmem[1]`, `tcp_wmem[1]`, and `rmem_default`/`wmem_default`.
const TCP_RCVBUF_DEFAULT: usize = 131_072;
const TCP_SNDBUF_DEFAULT: usize = 16_384;
const UDP_BUF_DEFAULT: usize = 212_992;

/// A socket option the stack answers, as `getsockopt(2)`/`setsockopt(2)` name it
/// (the level and name of each is given; [`SockOpt::from_raw`] and
/// [`SockOpt::raw`] convert).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockOpt {
    /// `SOL_SOCKET`, `SO_REUSEADDR` (0 or 1).
    ReuseAddress,
    /// `SOL_SOCKET`, `SO_REUSEPORT` (0 or 1).
    ReusePort,
    /// `SOL_SOCKET`, `SO_KEEPALIVE` (0 or 1).
    KeepAlive,
    /// `SOL_SOCKET`, `SO_BROADCAST` (0 or 1).
    Broadcast,
    /// `SOL_SOCKET`, `SO_LINGER` ([`OptValue::Linger`]).
    Linger,
    /// `SOL_SOCKET`, `SO_RCVBUF` (bytes: doubled when set, as Linux does).
    RecvBuffer,
    /// `SOL_SOCKET`, `SO_SNDBUF` (bytes: doubled when set).
    SendBuffer,
    /// `SOL_SOCKET`, `SO_ERROR` (read only; reading it clears it).
    Error,
    /// `SOL_SOCKET`, `SO_TYPE` (read only).
    Type,
    /// `SOL_SOCKET`, `SO_DOMAIN` (read only).
    Domain,
    /// `SOL_SOCKET`, `SO_PROTOCOL` (read only).
    Protocol,
    /// `SOL_SOCKET`, `SO_ACCEPTCONN` (read only).
    AcceptConn,
    /// `IPPROTO_TCP`, `TCP_NODELAY` (0 or 1).
    NoDelay,
    /// `IPPROTO_TCP`, `TCP_KEEPIDLE` (seconds, 1 to 32,767).
    KeepIdle,
    /// `IPPROTO_TCP`, `TCP_KEEPINTVL` (seconds, 1 to 32,767).
    KeepInterval,
    /// `IPPROTO_TCP`, `TCP_KEEPCNT` (1 to 127).
    KeepCount,
    /// `IPPROTO_TCP`, `TCP_MAXSEG` (read only here).
    MaxSegment,
    /// `IPPROTO_IP`, `IP_TTL` (1 to 255; -1 sets the default, 64).
    Ttl,
    /// `IPPROTO_IPV6`, `IPV6_UNICAST_HOPS` (as [`SockOpt::Ttl`]).
    UnicastHops,
    /// `IPPROTO_IPV6`, `IPV6_V6ONLY` (0 or 1; before bind).
    OnlyV6,
    /// `IPPROTO_IP`, `IP_ADD_MEMBERSHIP` (set only, [`OptValue::Group`]).
    AddMembership,
    /// `IPPROTO_IP`, `IP_DROP_MEMBERSHIP` (set only, [`OptValue::Group`]).
    DropMembership,
    /// `IPPROTO_IPV6`, `IPV6_ADD_MEMBERSHIP` (set only, [`OptValue::Group`]).
    AddMembershipV6,
    /// `IPPROTO_IPV6`, `IPV6_DROP_MEMBERSHIP` (set only, [`OptValue::Group`]).
    DropMembershipV6,
}

/// The value of a [`SockOpt`]: the int `setsockopt` takes for most of them.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptValue {
    /// An int, as the C calls pass it (flags are 0 or 1).
    Int(i32),
    /// `SO_LINGER`: `None` off, else the timeout (whole seconds).
    Linger(Option<Duration>),
    /// The group of a multicast membership (the stack has one interface: none is
    /// named).
    Group(IpAddr),
}

/// Each option with its level and name.
const NAMES: [(SockOpt, i32, i32); 24] = {
    use libc::{IPPROTO_IP as IP, IPPROTO_IPV6 as IP6, IPPROTO_TCP as TCP, SOL_SOCKET as SOL};
    [
        (SockOpt::ReuseAddress, SOL, libc::SO_REUSEADDR),
        (SockOpt::ReusePort, SOL, libc::SO_REUSEPORT),
        (SockOpt::KeepAlive, SOL, libc::SO_KEEPALIVE),
        (SockOpt::Broadcast, SOL, libc::SO_BROADCAST),
        (SockOpt::Linger, SOL, libc::SO_LINGER),
        (SockOpt::RecvBuffer, SOL, libc::SO_RCVBUF),
        (SockOpt::SendBuffer, SOL, libc::SO_SNDBUF),
        (SockOpt::Error, SOL, libc::SO_ERROR),
        (SockOpt::Type, SOL, libc::SO_TYPE),
        (SockOpt::Domain, SOL, libc::SO_DOMAIN),
        (SockOpt::Protocol, SOL, libc::SO_PROTOCOL),
        (SockOpt::AcceptConn, SOL, libc::SO_ACCEPTCONN),
        (SockOpt::NoDelay, TCP, libc::TCP_NODELAY),
        (SockOpt::KeepIdle, TCP, libc::TCP_KEEPIDLE),
        (SockOpt::KeepInterval, TCP, libc::TCP_KEEPINTVL),
        (SockOpt::KeepCount, TCP, libc::TCP_KEEPCNT),
        (SockOpt::MaxSegment, TCP, libc::TCP_MAXSEG),
        (SockOpt::Ttl, IP, libc::IP_TTL),
        (SockOpt::UnicastHops, IP6, libc::IPV6_UNICAST_HOPS),
        (SockOpt::OnlyV6, IP6, libc::IPV6_V6ONLY),
        (SockOpt::AddMembership, IP, libc::IP_ADD_MEMBERSHIP),
        (SockOpt::DropMembership, IP, libc::IP_DROP_MEMBERSHIP),
        (SockOpt::AddMembershipV6, IP6, libc::IPV6_ADD_MEMBERSHIP),
        (SockOpt::DropMembershipV6, IP6, libc::IPV6_DROP_MEMBERSHIP),
    ]
};

impl SockOpt {
    /// The option `getsockopt(fd, level, name, ...)` names; `None` for one the stack
    /// does not have (`ENOPROTOOPT` on a stack socket).
    pub fn from_raw(level: i32, name: i32) -> Option<SockOpt> {
        NAMES
            .iter()
            .find(|&&(_, l, n)| (l, n) == (level, name))
            .map(|&(opt, _, _)| opt)
    }

    /// The option's level and name.
    pub fn raw(self) -> (i32, i32) {
        NAMES
            .iter()
            .find(|&&(opt, _, _)| opt == self)
            .map(|&(_, level, name)| (level, name))
            .expect("every option has a name")
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// Options of the wrong level for the socket: TCP options on UDP, IPv6 options on
/// IPv4.
fn check_level(s: &StackSocket, opt: SockOpt) -> io::Result<()> {
    let fits = match opt.raw().0 {
        libc::IPPROTO_TCP => !s.is_datagram(),
        libc::IPPROTO_IPV6 => s.family == libc::AF_INET6,
        _ => true,
    };
    fits.then_some(()).ok_or_else(|| errno(libc::ENOPROTOOPT))
}

fn seconds(d: Duration) -> i32 {
    d.as_secs().min(i32::MAX as u64) as i32
}

/// What `getsockopt` gives on a stack socket.
pub(super) fn get(s: &StackSocket, opt: SockOpt) -> io::Result<OptValue> {
    check_level(s, opt)?;
    let o = s.options();
    let int = |v: i32| Ok(OptValue::Int(v));
    let buffer = |set: Option<usize>, tcp_default: usize| {
        let default = if s.is_datagram() {
            UDP_BUF_DEFAULT
        } else {
            tcp_default
        };
        int(set.unwrap_or(default).min(i32::MAX as usize) as i32)
    };
    match opt {
        SockOpt::Error => int(s.take_error()),
        SockOpt::Type => int(s.ty),
        SockOpt::Domain => int(s.family),
        SockOpt::Protocol => int(s.protocol()),
        SockOpt::AcceptConn => int(s.is_listening().into()),
        SockOpt::ReuseAddress => int(o.reuse_address.into()),
        SockOpt::ReusePort => int(o.reuse_port.into()),
        SockOpt::KeepAlive => int(o.keepalive.into()),
        SockOpt::Broadcast => int(o.broadcast.into()),
        SockOpt::Linger => Ok(OptValue::Linger(o.linger)),
        SockOpt::RecvBuffer => buffer(o.recv_buffer, TCP_RCVBUF_DEFAULT),
        SockOpt::SendBuffer => buffer(o.send_buffer, TCP_SNDBUF_DEFAULT),
        SockOpt::NoDelay => int(o.nodelay.into()),
        SockOpt::KeepIdle => int(seconds(o.keep_idle)),
        SockOpt::KeepInterval => int(seconds(o.keep_interval)),
        SockOpt::KeepCount => int(o.keep_count as i32),
        SockOpt::MaxSegment => int(s.mss()),
        SockOpt::Ttl | SockOpt::UnicastHops => int(o.hop_limit.into()),
        SockOpt::OnlyV6 => int(o.v6only.into()),
        SockOpt::AddMembership
        | SockOpt::DropMembership
        | SockOpt::AddMembershipV6
        | SockOpt::DropMembershipV6 => Err(errno(libc::ENOPROTOOPT)),
    }
}

/// What `setsockopt` does on a stack socket.
pub(super) fn set(s: &StackSocket, opt: SockOpt, value: OptValue) -> io::Result<()> {
    check_level(s, opt)?;
    let int = || match value {
        OptValue::Int(v) => Ok(v),
        _ => Err(errno(libc::EINVAL)),
    };
    let flag = |apply: fn(&mut SocketOptions, bool)| -> io::Result<()> {
        let on = int()? != 0;
        s.set_options(|o| apply(o, on))
    };
    // Linux doubles a buffer size to allow for its bookkeeping, and reports that.
    let buffer = |bytes: i32| Some((bytes.max(0) as usize * 2).clamp(MIN_BUFFER, MAX_BUFFER));
    match opt {
        SockOpt::ReuseAddress => flag(|o, on| o.reuse_address = on),
        SockOpt::ReusePort => flag(|o, on| o.reuse_port = on),
        SockOpt::KeepAlive => flag(|o, on| o.keepalive = on),
        SockOpt::Broadcast => flag(|o, on| o.broadcast = on),
        SockOpt::NoDelay => flag(|o, on| o.nodelay = on),
        SockOpt::Linger => match value {
            OptValue::Linger(linger) => s.set_options(|o| o.linger = linger),
            _ => Err(errno(libc::EINVAL)),
        },
        SockOpt::RecvBuffer => {
            let size = buffer(int()?);
            s.set_options(|o| o.recv_buffer = size)
        }
        SockOpt::SendBuffer => {
            let size = buffer(int()?);
            s.set_options(|o| o.send_buffer = size)
        }
        SockOpt::KeepIdle | SockOpt::KeepInterval | SockOpt::KeepCount => {
            let v = int()?;
            let o = s.options();
            let secs = Duration::from_secs(v.max(0) as u64);
            let (idle, interval, count) = match opt {
                SockOpt::KeepIdle => (secs, o.keep_interval, o.keep_count),
                SockOpt::KeepInterval => (o.keep_idle, secs, o.keep_count),
                _ => (o.keep_idle, o.keep_interval, v.max(0) as u32),
            };
            let (idle, interval, count) = checked_keepalive(idle, interval, count)?;
            s.set_options(|o| {
                o.keep_idle = idle;
                o.keep_interval = interval;
                o.keep_count = count;
            })
        }
        SockOpt::Ttl | SockOpt::UnicastHops => {
            let v = int()?;
            // -1 restores the default, as on Linux.
            let ttl = if v == -1 {
                SocketOptions::default().hop_limit
            } else {
                checked_ttl(u32::try_from(v).map_err(|_| errno(libc::EINVAL))?)?
            };
            s.set_options(|o| o.hop_limit = ttl)
        }
        SockOpt::OnlyV6 => {
            if s.is_bound() {
                return Err(errno(libc::EINVAL));
            }
            flag(|o, on| o.v6only = on)
        }
        SockOpt::AddMembership
        | SockOpt::DropMembership
        | SockOpt::AddMembershipV6
        | SockOpt::DropMembershipV6 => {
            let OptValue::Group(group) = value else {
                return Err(errno(libc::EINVAL));
            };
            if !s.is_datagram() {
                return Err(errno(libc::EPROTO));
            }
            let join = matches!(opt, SockOpt::AddMembership | SockOpt::AddMembershipV6);
            s.datagram()?.membership(group, join)
        }
        SockOpt::Error
        | SockOpt::Type
        | SockOpt::Domain
        | SockOpt::Protocol
        | SockOpt::AcceptConn
        | SockOpt::MaxSegment => Err(errno(libc::ENOPROTOOPT)),
    }
}

/// `getsockopt` on a kernel socket (a kernel-backend stack's, or any other).
pub(super) fn get_kernel(fd: BorrowedFd<'_>, opt: SockOpt) -> io::Result<OptValue> {
    let (level, name) = opt.raw();
    match opt {
        SockOpt::Linger => {
            let linger: libc::linger = crate::sys::option(fd, level, name)?;
            Ok(OptValue::Linger((linger.l_onoff != 0).then(|| {
                Duration::from_secs(linger.l_linger.max(0) as u64)
            })))
        }
        _ => crate::sys::option::<libc::c_int>(fd, level, name).map(OptValue::Int),
    }
}

/// `setsockopt` on a kernel socket.
pub(super) fn set_kernel(fd: BorrowedFd<'_>, opt: SockOpt, value: OptValue) -> io::Result<()> {
    let (level, name) = opt.raw();
    match value {
        OptValue::Int(v) => crate::sys::set_option(fd, level, name, v),
        OptValue::Linger(linger) => {
            let linger = libc::linger {
                l_onoff: linger.is_some().into(),
                l_linger: linger.map_or(0, seconds),
            };
            crate::sys::set_option(fd, level, name, linger)
        }
        OptValue::Group(IpAddr::V4(group)) => {
            let mreq = libc::ip_mreq {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(group.octets()),
                },
                imr_interface: libc::in_addr { s_addr: 0 },
            };
            crate::sys::set_option(fd, level, name, mreq)
        }
        OptValue::Group(IpAddr::V6(group)) => {
            let mreq = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: group.octets(),
                },
                ipv6mr_interface: 0,
            };
            crate::sys::set_option(fd, level, name, mreq)
        }
    }
}

/// The MSS a TCP segment of a stack with `config` carries (its Ethernet link's MTU
/// minus the IP and TCP headers).
pub(super) fn mss_for(config: &NetConfig, family: i32) -> i32 {
    let mtu = config
        .links()
        .iter()
        .find(|l| l.kind == LinkKind::Ether)
        .map_or(65_536, |l| l.mtu as usize);
    let headers = if family == libc::AF_INET6 { 60 } else { 40 };
    mtu.saturating_sub(headers).min(TCP_BUFFER) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_option_has_one_level_and_name() {
        for &(opt, level, name) in &NAMES {
            assert_eq!(SockOpt::from_raw(level, name), Some(opt));
            assert_eq!(opt.raw(), (level, name));
        }
        assert_eq!(SockOpt::from_raw(libc::SOL_SOCKET, libc::SO_RCVTIMEO), None);
        assert_eq!(SockOpt::from_raw(libc::IPPROTO_TCP, 999), None);
    }

    #[test]
    fn mss_follows_the_ethernet_mtu_and_family() {
        let config = NetConfig::new("vde0", [2, 0, 0, 0, 0, 1]);
        assert_eq!(mss_for(&config, libc::AF_INET), 1460);
        assert_eq!(mss_for(&config, libc::AF_INET6), 1440);
    }
}
