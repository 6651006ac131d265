//! Socket options as the engine applies them.
//!
//! One plain value per socket, [`SocketOptions`], holds every option a program can
//! set. The application side keeps it (it is what `getsockopt` reads back) and hands
//! the whole value to the engine when it changes; the engine applies the part that
//! concerns the socket: a connection's Nagle, keep-alive and hop limit, a listener's
//! options for the connections it accepts, a UDP socket's broadcast permission,
//! receive buffer, and multicast hop limit and loop. Options that only shape what
//! happens later (buffer sizes, port sharing) are read when the socket connects,
//! listens or binds.

use super::ports::{PortUse, Scope};
use smoltcp::socket::tcp;
use std::time::Duration;

/// The smallest and largest stack buffer a program can ask for. Linux clamps
/// `SO_RCVBUF`/`SO_SNDBUF` to `net.core.rmem_max`/`wmem_max` (212,992) for
/// unprivileged programs and doubles what it keeps; the stack keeps what was asked.
pub(crate) const MIN_BUFFER: usize = 4096;
pub(crate) const MAX_BUFFER: usize = 4 << 20;

/// Every option a program can set on a stack socket. `Default` is Linux's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketOptions {
    /// `SO_REUSEADDR`.
    pub reuse_address: bool,
    /// `SO_REUSEPORT`.
    pub reuse_port: bool,
    /// `SO_KEEPALIVE`.
    pub keepalive: bool,
    /// `TCP_KEEPIDLE`: idle time before the first probe.
    pub keep_idle: Duration,
    /// `TCP_KEEPINTVL`: time between probes.
    pub keep_interval: Duration,
    /// `TCP_KEEPCNT`: unanswered probes before the connection is dropped.
    pub keep_count: u32,
    /// `SO_LINGER`: `Some(0)` makes `close` reset the connection.
    pub linger: Option<Duration>,
    /// `SO_RCVBUF` as set (`None`: the default).
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF` as set (`None`: the default).
    pub send_buffer: Option<usize>,
    /// `TCP_NODELAY`.
    pub nodelay: bool,
    /// `IP_TTL` / `IPV6_UNICAST_HOPS` as set (64 while not set).
    pub hop_limit: u8,
    /// Whether the hop limit was set: an unset one follows the interface, as
    /// Linux's -1 does (IPv6: a router advertisement's Cur Hop Limit).
    pub hop_limit_set: bool,
    /// `IPV6_V6ONLY`.
    pub v6only: bool,
    /// `SO_BROADCAST`.
    pub broadcast: bool,
    /// `IP_MULTICAST_TTL`: the TTL of IPv4 multicast datagrams (0 keeps them on
    /// this stack).
    pub multicast_ttl_v4: u8,
    /// `IPV6_MULTICAST_HOPS`: the hop limit of IPv6 multicast datagrams.
    pub multicast_hops_v6: u8,
    /// `IP_MULTICAST_LOOP`: IPv4 multicast datagrams sent reach this stack's own
    /// members of the group too.
    pub multicast_loop_v4: bool,
    /// `IPV6_MULTICAST_LOOP`: the same for IPv6.
    pub multicast_loop_v6: bool,
    /// `TCP_CONGESTION`: the congestion controller of a connection.
    pub congestion: Congestion,
    /// `TCP_MAXSEG` as set (0: not set): read back, and it caps the MSS reported
    /// once connected (the segments keep to the link's MSS).
    pub max_segment: u16,
    /// `IP_TOS`: recorded and read back (smoltcp sets no TOS on what it sends).
    pub tos: u8,
    /// `IPV6_TCLASS`: recorded and read back (smoltcp sets no traffic class).
    pub traffic_class: u8,
    /// `SO_PRIORITY`: recorded (there is no queueing discipline to read it).
    pub priority: u32,
    /// `SO_BINDTODEVICE`: the index of the interface (0: none). Recorded: a
    /// socket leaves by the route to its peer, on a stack of one link and `lo`.
    pub bound_device: u32,
    /// `TCP_QUICKACK`: recorded (the stack acknowledges within 1 ms anyway).
    pub quickack: bool,
    /// `IP_RECVERR`: recorded (there is no error queue to read).
    pub recv_errors: bool,
    /// `IP_PKTINFO`: recorded (datagrams come with no control message).
    pub packet_info: bool,
    /// `IP_MTU_DISCOVER`: what an IPv4 datagram does beyond the MTU, and
    /// whether it carries DF ([`PMTUDISC_WANT`] and the others).
    pub mtu_discover_v4: u8,
    /// `IPV6_MTU_DISCOVER`: the same for IPv6 (which has no DF bit).
    pub mtu_discover_v6: u8,
    /// `IPV6_DONTFRAG`: an IPv6 datagram beyond the MTU is `EMSGSIZE`.
    pub dont_fragment_v6: bool,
    /// `IPV6_MTU` as set (0: none): IPv6 datagrams beyond the path's MTU are
    /// cut in fragments of at most this, and `IPV6_DONTFRAG` and `DO` hold
    /// datagrams to it.
    pub fragment_size_v6: u32,
}

/// `IP_PMTUDISC_DONT` (and `IPV6_`): fragment as needed, no DF.
pub(crate) const PMTUDISC_DONT: u8 = 0;
/// `IP_PMTUDISC_WANT`, Linux's default: DF on what fits, fragments beyond.
pub(crate) const PMTUDISC_WANT: u8 = 1;
/// `IP_PMTUDISC_DO`: DF always, `EMSGSIZE` beyond the path's MTU.
pub(crate) const PMTUDISC_DO: u8 = 2;
/// `IP_PMTUDISC_PROBE`: DF always, `EMSGSIZE` beyond the device's MTU (the
/// path's is not looked at).
pub(crate) const PMTUDISC_PROBE: u8 = 3;
/// `IP_PMTUDISC_INTERFACE`: no DF, `EMSGSIZE` beyond the device's MTU.
pub(crate) const PMTUDISC_INTERFACE: u8 = 4;
/// `IP_PMTUDISC_OMIT`: as `DONT`, and the path's MTU is not looked at.
pub(crate) const PMTUDISC_OMIT: u8 = 5;

/// How one datagram leaves, as a socket's MTU options decide it
/// ([`SocketOptions::datagram_shape`]); the device boundary applies it
/// (`link_mtu.rs`) when smoltcp builds the packet, later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DatagramShape {
    /// The MTU beyond which the packet is cut in fragments, instead of the
    /// path's the boundary knows (IPv6 from `PROBE` on: the device's); 0: the
    /// path's.
    pub mtu: u32,
    /// The largest fragment, when the packet is cut, if below that MTU (IPv6:
    /// `IPV6_MTU`); 0: the MTU.
    pub fragment_size: u32,
    /// An IPv4 packet leaves without DF (`IP_PMTUDISC_DONT`, `INTERFACE`,
    /// `OMIT`; smoltcp sets DF on every packet, as Linux's default does).
    pub clear_df: bool,
}

/// The MTUs a datagram meets on its way: the path's (IPv6: a router's may be
/// below the link's) and the device's (`lo`'s for a local destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mtus {
    pub path: usize,
    pub device: usize,
}

/// A connection's congestion controller (`TCP_CONGESTION`), of those Linux lets
/// an unprivileged program choose by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Congestion {
    /// CUBIC, Linux's default.
    #[default]
    Cubic,
    /// NewReno.
    Reno,
}

impl Congestion {
    /// The controller named `name`, as `TCP_CONGESTION` names it.
    pub(crate) fn from_name(name: &[u8]) -> Option<Congestion> {
        match name {
            b"cubic" => Some(Congestion::Cubic),
            b"reno" => Some(Congestion::Reno),
            _ => None,
        }
    }

    /// Its name, as `TCP_CONGESTION` reads it back.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Congestion::Cubic => "cubic",
            Congestion::Reno => "reno",
        }
    }
}

impl Default for SocketOptions {
    fn default() -> SocketOptions {
        SocketOptions {
            reuse_address: false,
            reuse_port: false,
            keepalive: false,
            keep_idle: Duration::from_secs(7200),
            keep_interval: Duration::from_secs(75),
            keep_count: 9,
            linger: None,
            recv_buffer: None,
            send_buffer: None,
            nodelay: false,
            hop_limit: 64,
            hop_limit_set: false,
            v6only: false,
            broadcast: false,
            multicast_ttl_v4: 1,
            multicast_hops_v6: 1,
            multicast_loop_v4: true,
            multicast_loop_v6: true,
            congestion: Congestion::Cubic,
            max_segment: 0,
            tos: 0,
            traffic_class: 0,
            priority: 0,
            bound_device: 0,
            quickack: true,
            recv_errors: false,
            packet_info: false,
            mtu_discover_v4: PMTUDISC_WANT,
            mtu_discover_v6: PMTUDISC_WANT,
            dont_fragment_v6: false,
            fragment_size_v6: 0,
        }
    }
}

impl SocketOptions {
    /// How a socket with these options holds its port, whatever its address
    /// (datagram sockets: their ports are not told apart by family).
    pub(crate) fn port_use(&self, listening: bool) -> PortUse {
        PortUse {
            reuse_addr: self.reuse_address,
            reuse_port: self.reuse_port,
            listening,
            scope: Scope::Both,
        }
    }

    /// How a TCP socket with these options holds its port on `local` (an
    /// unmapped address): IPv4 and `IPV6_V6ONLY` holders do not meet.
    pub(crate) fn port_use_on(&self, listening: bool, local: std::net::IpAddr) -> PortUse {
        PortUse {
            scope: Scope::of(local, self.v6only),
            ..self.port_use(listening)
        }
    }

    /// How a connection to `remote` holds its port when its local address is
    /// `local` (`None`: not chosen yet, so every address of the family).
    pub(crate) fn port_use_to(
        &self,
        remote: std::net::IpAddr,
        local: Option<std::net::IpAddr>,
    ) -> PortUse {
        match local {
            Some(ip) => self.port_use_on(false, ip),
            None => PortUse {
                scope: Scope::family_of(remote),
                ..self.port_use(false)
            },
        }
    }

    /// `close` must reset the connection (`SO_LINGER` with a zero timeout).
    pub(crate) fn resets_on_close(&self) -> bool {
        self.linger == Some(Duration::ZERO)
    }

    /// How long a connection may hear nothing before keep-alive gives up on it.
    pub(crate) fn keepalive_limit(&self) -> Option<Duration> {
        self.keepalive
            .then(|| self.keep_idle + self.keep_interval * self.keep_count)
    }

    /// Sizes of a new TCP socket's rings: receive, send.
    pub(crate) fn tcp_buffers(&self, default: usize) -> (usize, usize) {
        let size = |set: Option<usize>| set.map_or(default, |b| b.clamp(MIN_BUFFER, MAX_BUFFER));
        (size(self.recv_buffer), size(self.send_buffer))
    }

    /// The hop limit and loop flag of a multicast datagram to `group`, as Linux
    /// picks them: by the family of the packet on the wire (an IPv6 socket's
    /// datagram to a v4-mapped group is IPv4, with the IPv4 options).
    pub(crate) fn multicast(&self, group: std::net::IpAddr) -> (u8, bool) {
        if group.is_ipv4() {
            (self.multicast_ttl_v4, self.multicast_loop_v4)
        } else {
            (self.multicast_hops_v6, self.multicast_loop_v6)
        }
    }

    /// Whether a datagram over IPv6 (`v6`, the family on the wire) of this
    /// socket may fail with `EMSGSIZE` below what one datagram can carry: its
    /// MTU options must then be checked against the path's MTU.
    pub(crate) fn bounds_datagrams(&self, v6: bool) -> bool {
        let mode = if v6 {
            self.mtu_discover_v6
        } else {
            self.mtu_discover_v4
        };
        matches!(mode, PMTUDISC_DO | PMTUDISC_PROBE | PMTUDISC_INTERFACE)
            || (v6 && self.dont_fragment_v6)
    }

    /// How a datagram of `packet` bytes (IP header included; over IPv6 if
    /// `v6`) leaves through `mtus`, as Linux's `ip_append_data` and
    /// `ip6_append_data` decide it (checked on Linux 6.18): the MTU is the
    /// path's, or the device's from `PROBE` on; beyond it, or over IPv6
    /// beyond `IPV6_MTU` where lower, `DO`, `PROBE`, `INTERFACE` and
    /// `IPV6_DONTFRAG` are `EMSGSIZE`. Otherwise a packet beyond the MTU (not
    /// `IPV6_MTU`: Linux sends a packet between the two whole) is cut in
    /// fragments, of `IPV6_MTU` where lower. IPv4's DF is set by `WANT` (on
    /// what fits: fragments never carry it), `DO` and `PROBE`.
    pub(crate) fn datagram_shape(
        &self,
        v6: bool,
        packet: usize,
        mtus: Mtus,
    ) -> std::io::Result<DatagramShape> {
        let mode = if v6 {
            self.mtu_discover_v6
        } else {
            self.mtu_discover_v4
        };
        let mtu = if mode >= PMTUDISC_PROBE {
            mtus.device
        } else {
            mtus.path
        };
        let set = self.fragment_size_v6 as usize;
        let fragment_size = if v6 && set != 0 && set < mtu {
            set
        } else {
            mtu
        };
        if packet > fragment_size && self.bounds_datagrams(v6) {
            return Err(std::io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        Ok(DatagramShape {
            mtu: if v6 && mtu != mtus.path {
                mtu as u32
            } else {
                0
            },
            fragment_size: if fragment_size < mtu {
                fragment_size as u32
            } else {
                0
            },
            clear_df: !v6 && matches!(mode, PMTUDISC_DONT | PMTUDISC_INTERFACE | PMTUDISC_OMIT),
        })
    }

    /// Sets the hop limit, or (`None`, `-1` on Linux) goes back to the
    /// interface's.
    pub(crate) fn set_hop_limit(&mut self, hops: Option<u8>) {
        self.hop_limit = hops.unwrap_or(64);
        self.hop_limit_set = hops.is_some();
    }

    /// The hop limit packets leave with: the one set, else the interface's
    /// (`default`).
    pub(crate) fn hops(&self, default: u8) -> u8 {
        if self.hop_limit_set {
            self.hop_limit
        } else {
            default
        }
    }

    /// Applies the options a running TCP socket takes at any time; `hops`:
    /// the interface's hop limit for the connection's family.
    pub(crate) fn apply_tcp(&self, socket: &mut tcp::Socket<'_>, hops: u8) {
        socket.set_nagle_enabled(!self.nodelay);
        socket.set_hop_limit(Some(self.hops(hops)));
        // The engine's loss recovery holds the congestion window (see
        // `recovery`): smoltcp sends what the peer's window allows, and the
        // boundary holds back what the congestion window does not.
        if socket.congestion_control() != tcp::CongestionControl::None {
            socket.set_congestion_control(tcp::CongestionControl::None);
        }
        // Keep-alive probes are scheduled by the engine (`lifecycle::steer`):
        // smoltcp's own timer cannot be moved once armed, so a TCP_KEEPIDLE set
        // after SO_KEEPALIVE would wait for the old interval.
        socket.set_keep_alive(None);
    }
}

impl super::FrameIo {
    /// The hop limit of a socket that set none, for packets to `peer`:
    /// IPv6's (a router may have advertised one, Linux's per-interface
    /// `hop_limit`), or IPv4's 64.
    pub(super) fn hops(&self, peer: std::net::IpAddr) -> u8 {
        match peer.to_canonical() {
            std::net::IpAddr::V6(_) => self.hops6,
            std::net::IpAddr::V4(_) => 64,
        }
    }

    /// [`Self::hops`] for a connection, by its peer or else its own address.
    pub(super) fn hops_of(&self, socket: &tcp::Socket<'_>) -> u8 {
        let addr = socket
            .remote_endpoint()
            .or(socket.local_endpoint())
            .map(|e| e.addr);
        addr.map_or(64, |a| self.hops(a.into()))
    }
}

impl super::Engine {
    /// A router advertisement's Cur Hop Limit: IPv6's hop limit from now on,
    /// for every socket that set none, open ones included (Linux reads the
    /// interface's at each send).
    pub(super) fn set_ipv6_hops(&mut self, hops: u8) {
        if self.io.hops6 == hops {
            return;
        }
        self.io.hops6 = hops;
        for handle in self.tcp.handles() {
            if let Some(entry) = self.tcp.get_mut(handle) {
                let hops = entry.conn.options.hops(self.io.hops_of(entry.socket()));
                entry.socket_mut().set_hop_limit(Some(hops));
            }
        }
        let datagrams: Vec<_> = self
            .udps
            .iter()
            .map(|(&handle, sock)| (handle, sock.options.hops(self.io.hops(sock.bound.ip()))))
            .collect();
        for (handle, hops) in datagrams {
            self.set_dgram_hop_limit(handle, hops);
        }
    }
}
