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
//! | `SO_PRIORITY` | 0 to 6 (EPERM above, as for an unprivileged program); recorded, and set by `IP_TOS` as Linux sets it |
//! | `SO_BINDTODEVICE` | an interface of the stack (ENODEV for another; empty: none); recorded (a socket leaves by the route to its peer) |
//! | `TCP_NODELAY` | Nagle off |
//! | `TCP_MAXSEG` | read: 536 before connecting (or the value set), then the MSS the link's MTU gives, capped by the value set; set: 88 to 32,767 or 0 (EINVAL), recorded (segments keep to the link's MSS) |
//! | `TCP_CONGESTION` | `cubic` (the default) or `reno`; ENOENT for others |
//! | `TCP_INFO` | read only: the state, round trip, retransmissions, an estimate of the congestion window from the bytes in flight, the MSS |
//! | `TCP_QUICKACK` | recorded (the stack acknowledges within 1 ms) |
//! | `IP_TOS` | recorded and read back (a stream's ECN bits cleared, as Linux does); smoltcp sends no TOS |
//! | `IPV6_TCLASS` | AF_INET6: -1 to 255 (-1: the default, 0), recorded and read back (a stream's ECN bits kept as they were, as Linux does); smoltcp sends no traffic class |
//! | `IP_RECVERR`, `IP_PKTINFO` | recorded (no error queue, no control messages) |
//! | `IP_TTL`, `IPV6_UNICAST_HOPS` | the hop limit of what the socket sends; unset, `IPV6_UNICAST_HOPS` reads 64, or on a connected socket the interface's (a router's Cur Hop Limit), as Linux reads its route |
//! | `IPV6_MTU` | read: on a connected socket, the path's MTU (a router's MTU below the link's; `lo`'s to a local peer); ENOTCONN without a peer. Set: 0 (none) or 1,280 and up (EINVAL below): an IPv6 datagram (UDP, ping) beyond the path's MTU leaves in fragments of at most that, and `IPV6_DONTFRAG`/`DO` hold datagrams to it (one between the two leaves whole, as on Linux); not what it reads |
//! | `IP_MTU` | read only: as `IPV6_MTU`'s read, at most 65,535 on an IPv4 socket |
//! | `IP_MTU_DISCOVER`, `IPV6_MTU_DISCOVER` | 0 to 5 (EINVAL else), default `WANT` (1); UDP and ping sockets: a datagram beyond the MTU is `EMSGSIZE` with `DO`, `PROBE` and `INTERFACE` (from `PROBE` on: the device's MTU), fragments with the others; IPv4 packets carry DF with `WANT` (if not fragmented), `DO`, `PROBE`, as Linux's. Recorded on TCP (smoltcp sets DF on every segment) |
//! | `IPV6_DONTFRAG` | 0 or 1 (any non-zero); UDP and ping over IPv6: a datagram beyond the MTU (or `IPV6_MTU`) is `EMSGSIZE`. Recorded on TCP |
//! | `IPV6_V6ONLY` | AF_INET6 only; before bind (EINVAL after) |
//! | `IP_ADD_MEMBERSHIP`, `IP_DROP_MEMBERSHIP`, `IPV6_ADD_MEMBERSHIP`, `IPV6_DROP_MEMBERSHIP` | UDP multicast groups (EPROTO on TCP) |
//!
//! `SO_RCVTIMEO` and `SO_SNDTIMEO` are not here: the kernel keeps them on the
//! descriptor itself, for a stack socket as for any other.

use super::stack_socket::StackSocket;
use crate::cmd::{LinkKind, NetConfig};
use crate::engine::{
    Congestion, SocketOptions, TcpState, TcpStats, MAX_BUFFER, MIN_BUFFER, PMTUDISC_OMIT,
    TCP_BUFFER,
};
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
    /// `IPPROTO_TCP`, `TCP_MAXSEG` (88 to 32,767; 0: none).
    MaxSegment,
    /// `IPPROTO_TCP`, `TCP_CONGESTION` ([`OptValue::Name`]: `cubic` or `reno`).
    Congestion,
    /// `IPPROTO_TCP`, `TCP_INFO` (read only, [`OptValue::TcpInfo`]).
    Info,
    /// `IPPROTO_TCP`, `TCP_QUICKACK` (0 or 1).
    QuickAck,
    /// `IPPROTO_IP`, `IP_TOS` (0 to 255).
    Tos,
    /// `IPPROTO_IPV6`, `IPV6_TCLASS` (-1 to 255).
    TrafficClass,
    /// `IPPROTO_IP`, `IP_RECVERR` (0 or 1).
    RecvErrors,
    /// `IPPROTO_IP`, `IP_PKTINFO` (0 or 1).
    PacketInfo,
    /// `SOL_SOCKET`, `SO_PRIORITY` (0 to 6).
    Priority,
    /// `SOL_SOCKET`, `SO_BINDTODEVICE` ([`OptValue::Name`]: an interface, or
    /// empty for none).
    BindToDevice,
    /// `IPPROTO_IP`, `IP_TTL` (1 to 255; -1 sets the default, 64).
    Ttl,
    /// `IPPROTO_IPV6`, `IPV6_UNICAST_HOPS` (as [`SockOpt::Ttl`]; unset, a
    /// connected socket reads the interface's, which a router may advertise).
    UnicastHops,
    /// `IPPROTO_IPV6`, `IPV6_MTU`: get, on a connected socket, the path's
    /// MTU (which a router may advertise below the link's); set, the size of
    /// the fragments of an IPv6 datagram beyond the path's MTU, and the limit
    /// `IPV6_DONTFRAG` and `IPV6_PMTUDISC_DO` hold datagrams to (0: none;
    /// 1,280 at least).
    PathMtu,
    /// `IPPROTO_IP`, `IP_MTU` (get only, on a connected socket: the path's
    /// MTU).
    Mtu,
    /// `IPPROTO_IP`, `IP_MTU_DISCOVER` (`IP_PMTUDISC_DONT` 0 to
    /// `IP_PMTUDISC_OMIT` 5; `IP_PMTUDISC_WANT`, 1, by default).
    MtuDiscover,
    /// `IPPROTO_IPV6`, `IPV6_MTU_DISCOVER` (as [`SockOpt::MtuDiscover`], for
    /// IPv6 datagrams).
    MtuDiscoverV6,
    /// `IPPROTO_IPV6`, `IPV6_DONTFRAG` (0 or 1): an IPv6 datagram beyond the
    /// MTU is `EMSGSIZE` rather than fragments.
    DontFragment,
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
    /// A name: an interface (`SO_BINDTODEVICE`), a congestion controller
    /// (`TCP_CONGESTION`).
    Name(OptName),
    /// `TCP_INFO`.
    TcpInfo(TcpInfo),
}

/// A name an option takes ([`OptValue::Name`]): at most 15 bytes, as Linux's
/// `IFNAMSIZ` and `TCP_CA_NAME_MAX` (16, with the NUL) allow.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OptName {
    bytes: [u8; 16],
    len: u8,
}

impl OptName {
    /// The name in `bytes`: up to its first NUL, cut to 15 bytes as Linux cuts
    /// it.
    pub fn new(bytes: &[u8]) -> OptName {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let len = end.min(15);
        let mut name = OptName::default();
        name.bytes[..len].copy_from_slice(&bytes[..len]);
        name.len = len as u8;
        name
    }

    /// The name's bytes, without a NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for OptName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// What `TCP_INFO` reports, in Linux's units (`struct tcp_info`): what the stack
/// knows of a connection. Fields it cannot know are 0, as Linux leaves fields a
/// connection has no use for.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpInfo {
    /// `tcpi_state`: Linux's number for the state (1 ESTABLISHED, 2 SYN_SENT,
    /// 3 SYN_RECV, 4 FIN_WAIT1, 5 FIN_WAIT2, 6 TIME_WAIT, 7 CLOSE, 8 CLOSE_WAIT,
    /// 9 LAST_ACK, 10 LISTEN, 11 CLOSING).
    pub state: u8,
    /// `tcpi_retransmits`: retransmissions since the acknowledgement last moved.
    pub retransmits: u8,
    /// `tcpi_rto`: the retransmission timeout, µs.
    pub rto: u32,
    /// `tcpi_snd_mss`: the segment size sent, bytes.
    pub snd_mss: u32,
    /// `tcpi_rcv_mss`: the segment size received, bytes (the link's).
    pub rcv_mss: u32,
    /// `tcpi_advmss`: the segment size advertised, bytes.
    pub advmss: u32,
    /// `tcpi_unacked`: segments sent and not acknowledged.
    pub unacked: u32,
    /// `tcpi_pmtu`: the path MTU (the link's).
    pub pmtu: u32,
    /// `tcpi_rcv_ssthresh`: the receive window, bytes.
    pub rcv_ssthresh: u32,
    /// `tcpi_rcv_space`: the receive window, bytes.
    pub rcv_space: u32,
    /// `tcpi_rtt`: the smoothed round trip, µs (0 before one was measured).
    pub rtt: u32,
    /// `tcpi_rttvar`: its deviation, µs.
    pub rttvar: u32,
    /// `tcpi_snd_ssthresh`: segments (Linux's "infinite" until a loss).
    pub snd_ssthresh: u32,
    /// `tcpi_snd_cwnd`: the congestion window, segments: the most in flight
    /// since the last retransmission (halved by each), 10 at least, as Linux
    /// starts.
    pub snd_cwnd: u32,
    /// `tcpi_reordering`: Linux's default, 3.
    pub reordering: u32,
    /// `tcpi_total_retrans`: segments retransmitted, in all.
    pub total_retrans: u32,
    /// `tcpi_notsent_bytes`: bytes written and not sent yet.
    pub notsent_bytes: u32,
    /// `tcpi_snd_wnd`: the window the peer last advertised, bytes (scaled as the
    /// SYNs agreed).
    pub snd_wnd: u32,
}

/// Each option with its level and name.
const NAMES: [(SockOpt, i32, i32); 38] = {
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
        (SockOpt::PathMtu, IP6, libc::IPV6_MTU),
        (SockOpt::Mtu, IP, libc::IP_MTU),
        (SockOpt::MtuDiscover, IP, libc::IP_MTU_DISCOVER),
        (SockOpt::MtuDiscoverV6, IP6, libc::IPV6_MTU_DISCOVER),
        (SockOpt::DontFragment, IP6, libc::IPV6_DONTFRAG),
        (SockOpt::OnlyV6, IP6, libc::IPV6_V6ONLY),
        (SockOpt::AddMembership, IP, libc::IP_ADD_MEMBERSHIP),
        (SockOpt::DropMembership, IP, libc::IP_DROP_MEMBERSHIP),
        (SockOpt::AddMembershipV6, IP6, libc::IPV6_ADD_MEMBERSHIP),
        (SockOpt::DropMembershipV6, IP6, libc::IPV6_DROP_MEMBERSHIP),
        (SockOpt::Congestion, TCP, libc::TCP_CONGESTION),
        (SockOpt::Info, TCP, libc::TCP_INFO),
        (SockOpt::QuickAck, TCP, libc::TCP_QUICKACK),
        (SockOpt::Tos, IP, libc::IP_TOS),
        (SockOpt::TrafficClass, IP6, libc::IPV6_TCLASS),
        (SockOpt::RecvErrors, IP, libc::IP_RECVERR),
        (SockOpt::PacketInfo, IP, libc::IP_PKTINFO),
        (SockOpt::Priority, SOL, libc::SO_PRIORITY),
        (SockOpt::BindToDevice, SOL, libc::SO_BINDTODEVICE),
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
/// IPv4. `ENOPROTOOPT`, except to read one on an IPv4 socket: Linux's IPv4 layer
/// answers that with `EOPNOTSUPP`.
fn check_level(s: &StackSocket, opt: SockOpt, reading: bool) -> io::Result<()> {
    let fits = match opt.raw().0 {
        libc::IPPROTO_TCP => !s.is_datagram(),
        libc::IPPROTO_IPV6 => s.family == libc::AF_INET6,
        _ => true,
    };
    let code = if reading && s.family == libc::AF_INET {
        libc::EOPNOTSUPP
    } else {
        libc::ENOPROTOOPT
    };
    fits.then_some(()).ok_or_else(|| errno(code))
}

fn seconds(d: Duration) -> i32 {
    d.as_secs().min(i32::MAX as u64) as i32
}

/// What `getsockopt` gives on a stack socket.
pub(super) fn get(s: &StackSocket, opt: SockOpt) -> io::Result<OptValue> {
    check_level(s, opt, true)?;
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
        SockOpt::Congestion => Ok(OptValue::Name(OptName::new(o.congestion.name().as_bytes()))),
        SockOpt::Info => Ok(OptValue::TcpInfo(s.tcp_info()?)),
        SockOpt::QuickAck => int(o.quickack.into()),
        SockOpt::Tos => int(o.tos.into()),
        SockOpt::TrafficClass => int(o.traffic_class.into()),
        SockOpt::RecvErrors => int(o.recv_errors.into()),
        SockOpt::PacketInfo => int(o.packet_info.into()),
        SockOpt::Priority => int(o.priority.min(i32::MAX as u32) as i32),
        SockOpt::BindToDevice => {
            let config = s.config();
            let link = config.links().iter().find(|l| l.index == o.bound_device);
            let name = link
                .filter(|_| o.bound_device != 0)
                .map(|l| l.name.as_bytes());
            Ok(OptValue::Name(OptName::new(name.unwrap_or_default())))
        }
        SockOpt::Ttl => int(o.hop_limit.into()),
        // Unset, Linux reads a connected socket's route (the interface's hop
        // limit), and the system's 64 for one without a peer.
        SockOpt::UnicastHops if !o.hop_limit_set => match s.path_to_peer() {
            Ok((hops, _)) => int(hops.into()),
            Err(_) => int(o.hop_limit.into()),
        },
        SockOpt::UnicastHops => int(o.hop_limit.into()),
        SockOpt::PathMtu => int(s.path_to_peer()?.1.min(i32::MAX as usize) as i32),
        // IPv4's routes keep their MTU below 65,536 (`IP_MAX_MTU`): `lo`'s
        // reads 65,535 (an IPv6 socket's peer on `lo` reads 65,536 there).
        SockOpt::Mtu => {
            let (ipv4, mtu) = (s.family == libc::AF_INET, s.path_to_peer()?.1);
            int(if ipv4 { mtu.min(65_535) } else { mtu }.min(i32::MAX as usize) as i32)
        }
        SockOpt::MtuDiscover => int(o.mtu_discover_v4.into()),
        SockOpt::MtuDiscoverV6 => int(o.mtu_discover_v6.into()),
        SockOpt::DontFragment => int(o.dont_fragment_v6.into()),
        SockOpt::OnlyV6 => int(o.v6only.into()),
        SockOpt::AddMembership
        | SockOpt::DropMembership
        | SockOpt::AddMembershipV6
        | SockOpt::DropMembershipV6 => Err(errno(libc::ENOPROTOOPT)),
    }
}

/// What `setsockopt` does on a stack socket.
pub(super) fn set(s: &StackSocket, opt: SockOpt, value: OptValue) -> io::Result<()> {
    check_level(s, opt, false)?;
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
                None
            } else {
                Some(checked_ttl(
                    u32::try_from(v).map_err(|_| errno(libc::EINVAL))?,
                )?)
            };
            s.set_options(|o| o.set_hop_limit(ttl))
        }
        SockOpt::PathMtu => {
            // 0 goes back to the path's MTU; below IPv6's minimum is EINVAL,
            // and Linux takes any larger value.
            let size = u32::try_from(int()?)
                .ok()
                .filter(|&v| v == 0 || v >= 1280)
                .ok_or_else(|| errno(libc::EINVAL))?;
            s.set_options(|o| o.fragment_size_v6 = size)
        }
        SockOpt::MtuDiscover | SockOpt::MtuDiscoverV6 => {
            let mode = u8::try_from(int()?)
                .ok()
                .filter(|&m| m <= PMTUDISC_OMIT)
                .ok_or_else(|| errno(libc::EINVAL))?;
            s.set_options(|o| match opt {
                SockOpt::MtuDiscover => o.mtu_discover_v4 = mode,
                _ => o.mtu_discover_v6 = mode,
            })
        }
        SockOpt::DontFragment => flag(|o, on| o.dont_fragment_v6 = on),
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
        SockOpt::MaxSegment => {
            let v = int()?;
            // Linux's bounds: TCP_MIN_MSS to MAX_TCP_WINDOW, or 0 for none.
            let mss = u16::try_from(v)
                .ok()
                .filter(|&m| m == 0 || (88..=32_767).contains(&m))
                .ok_or_else(|| errno(libc::EINVAL))?;
            s.set_options(|o| o.max_segment = mss)
        }
        SockOpt::Congestion => {
            let OptValue::Name(name) = value else {
                return Err(errno(libc::EINVAL));
            };
            let congestion =
                Congestion::from_name(name.as_bytes()).ok_or_else(|| errno(libc::ENOENT))?;
            s.set_options(|o| o.congestion = congestion)
        }
        SockOpt::QuickAck => flag(|o, on| o.quickack = on),
        SockOpt::RecvErrors => flag(|o, on| o.recv_errors = on),
        SockOpt::PacketInfo => flag(|o, on| o.packet_info = on),
        SockOpt::Tos => {
            // Linux keeps a stream's ECN bits its own, and a new TOS sets the
            // priority its class maps to.
            let mut tos = int()? as u8;
            if !s.is_datagram() {
                tos &= !ECN_MASK;
            }
            s.set_options(|o| {
                if o.tos != tos {
                    o.tos = tos;
                    o.priority = tos_priority(tos);
                }
            })
        }
        SockOpt::TrafficClass => {
            // -1 is the default (RFC 3542); a stream keeps the ECN bits it had.
            let class = match int()? {
                -1 => 0,
                v => u8::try_from(v).map_err(|_| errno(libc::EINVAL))?,
            };
            let stream = !s.is_datagram();
            s.set_options(|o| {
                o.traffic_class = if stream {
                    (class & !ECN_MASK) | (o.traffic_class & ECN_MASK)
                } else {
                    class
                };
            })
        }
        SockOpt::Priority => {
            // Above 6 needs CAP_NET_ADMIN, which a program on this stack lacks.
            let priority = u32::try_from(int()?)
                .ok()
                .filter(|&p| p <= 6)
                .ok_or_else(|| errno(libc::EPERM))?;
            s.set_options(|o| o.priority = priority)
        }
        SockOpt::BindToDevice => {
            let OptValue::Name(name) = value else {
                return Err(errno(libc::EINVAL));
            };
            let index = if name.as_bytes().is_empty() {
                0
            } else {
                let config = s.config();
                let link = config
                    .links()
                    .iter()
                    .find(|l| l.name.as_bytes() == name.as_bytes());
                link.ok_or_else(|| errno(libc::ENODEV))?.index
            };
            s.set_options(|o| o.bound_device = index)
        }
        SockOpt::Error
        | SockOpt::Type
        | SockOpt::Domain
        | SockOpt::Protocol
        | SockOpt::AcceptConn
        | SockOpt::Info
        | SockOpt::Mtu => Err(errno(libc::ENOPROTOOPT)),
    }
}

/// The ECN bits of the TOS byte (`INET_ECN_MASK`).
const ECN_MASK: u8 = 3;

/// The priority Linux gives a socket for its TOS (`rt_tos2priority`): best
/// effort, bulk (2), interactive (6), interactive bulk (4), by the TOS bits.
fn tos_priority(tos: u8) -> u32 {
    const BY_TOS: [u32; 16] = [0, 0, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4];
    BY_TOS[usize::from((tos & 0x1e) >> 1)]
}

/// Linux's `TCP_INFINITE_SSTHRESH`: no slow-start threshold yet.
const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

/// Linux's `TCP_INIT_CWND`, segments.
const INITIAL_CWND: usize = 10;

/// `TCP_INFO` of a socket in state `state` (Linux's number) from what the engine
/// knows of its connection, if it has one; `max_segment` is `TCP_MAXSEG` as set
/// (0: none). Without a connection, what Linux reports for the state.
pub(super) fn tcp_info(state: u8, stats: Option<TcpStats>, max_segment: u16) -> TcpInfo {
    let micros = |d: Duration| d.as_micros().min(u128::from(u32::MAX)) as u32;
    let Some(stats) = stats else {
        return match state {
            // Listening: no path, no timer.
            10 => TcpInfo {
                state,
                snd_cwnd: INITIAL_CWND as u32,
                reordering: 3,
                ..TcpInfo::default()
            },
            // A socket that has no connection (yet): Linux's initial values.
            _ => TcpInfo {
                state,
                rto: 1_000_000,
                snd_mss: if max_segment == 0 {
                    536
                } else {
                    max_segment.into()
                },
                rttvar: 250_000,
                snd_ssthresh: INFINITE_SSTHRESH,
                snd_cwnd: INITIAL_CWND as u32,
                reordering: 3,
                ..TcpInfo::default()
            },
        };
    };
    let flow = stats.flow;
    let mss = match max_segment {
        0 => stats.mss,
        user => stats.mss.min(user.into()),
    }
    .max(1);
    let segments = |bytes: usize| bytes.div_ceil(mss).min(u32::MAX as usize) as u32;
    let window = stats.recv_capacity.saturating_sub(stats.recv_queue);
    let window = window.min(u32::MAX as usize) as u32;
    // Linux: the smoothed round trip plus its deviation, the deviation counted
    // 200 ms at least; 1 s before the first measurement.
    let rto = match (flow.srtt, flow.rttvar) {
        (Some(srtt), Some(var)) => srtt + (var * 4).max(Duration::from_millis(200)),
        _ => Duration::from_secs(1),
    };
    TcpInfo {
        state: linux_state(stats.state),
        retransmits: flow.repairs.min(255) as u8,
        rto: micros(rto),
        snd_mss: mss as u32,
        rcv_mss: mss as u32,
        advmss: mss as u32,
        unacked: segments(flow.in_flight),
        pmtu: stats.mtu.min(u32::MAX as usize) as u32,
        rcv_ssthresh: window,
        rcv_space: window,
        rtt: flow.srtt.map_or(0, micros),
        rttvar: flow.rttvar.map_or(0, micros),
        snd_ssthresh: if flow.retransmitted == 0 {
            INFINITE_SSTHRESH
        } else {
            segments(flow.flight_peak).max(2)
        },
        snd_cwnd: segments(flow.flight_peak.max(INITIAL_CWND * mss)),
        reordering: 3,
        total_retrans: flow.retransmitted,
        notsent_bytes: stats
            .send_queue
            .saturating_sub(flow.in_flight)
            .min(u32::MAX as usize) as u32,
        snd_wnd: flow.send_window.min(u32::MAX as usize) as u32,
    }
}

/// Linux's number for a TCP state (`tcpi_state`).
pub(super) fn linux_state(state: TcpState) -> u8 {
    match state {
        TcpState::Established => 1,
        TcpState::SynSent => 2,
        TcpState::SynReceived => 3,
        TcpState::FinWait1 => 4,
        TcpState::FinWait2 => 5,
        TcpState::TimeWait => 6,
        TcpState::Closed => 7,
        TcpState::CloseWait => 8,
        TcpState::LastAck => 9,
        TcpState::Listen => 10,
        TcpState::Closing => 11,
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
        SockOpt::Congestion | SockOpt::BindToDevice => {
            // The kernel writes the name with its NUL (SO_BINDTODEVICE: nothing
            // when unbound), or 16 bytes padded with NULs (TCP_CONGESTION).
            let name: [u8; 16] = crate::sys::option(fd, level, name)?;
            Ok(OptValue::Name(OptName::new(&name)))
        }
        SockOpt::Info => {
            // The kernel's struct up to `tcpi_snd_wnd` (glibc's `tcp_info` stops
            // at `tcpi_total_retrans`); a kernel with a shorter one leaves the
            // rest zero.
            let raw: [u8; 232] = crate::sys::option(fd, level, name)?;
            let at = |offset: usize| {
                u32::from_ne_bytes(raw[offset..offset + 4].try_into().expect("4 bytes"))
            };
            Ok(OptValue::TcpInfo(TcpInfo {
                state: raw[0],
                retransmits: raw[2],
                rto: at(8),
                snd_mss: at(16),
                rcv_mss: at(20),
                advmss: at(84),
                unacked: at(24),
                pmtu: at(60),
                rcv_ssthresh: at(64),
                rcv_space: at(96),
                rtt: at(68),
                rttvar: at(72),
                snd_ssthresh: at(76),
                snd_cwnd: at(80),
                reordering: at(88),
                total_retrans: at(100),
                notsent_bytes: at(144),
                snd_wnd: at(228),
            }))
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
        OptValue::Name(opt_name) => {
            // Padded with NULs: the kernel reads up to the first.
            let mut bytes = [0u8; 16];
            bytes[..opt_name.as_bytes().len()].copy_from_slice(opt_name.as_bytes());
            crate::sys::set_option(fd, level, name, bytes)
        }
        OptValue::TcpInfo(_) => Err(errno(libc::ENOPROTOOPT)),
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
