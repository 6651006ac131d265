//! UDP sockets, mirroring `std::net::UdpSocket` with the stack as first argument.
//!
//! The descriptor is one end of a SOCK_SEQPACKET pair (see `pump/udp.rs` for what
//! travels on it): a connected socket carries bare payloads, so plain `read`/`write`
//! work on it; an unconnected one carries each datagram behind its address, which
//! [`UdpSocket::send_to`] and [`UdpSocket::recv_from`] add and strip.

use super::options::{checked_ttl, OptionRecord, SocketConfig};
use super::{each_addr, ToStackAddrs};
use crate::engine::{
    check_echo_request, datagram_mtus, udp_check_send, udp_check_size, unmap, DatagramProto,
    SocketOptions,
};
use crate::pump::{decode_addr, encode_addr, Control, UdpShared, ADDR_BYTES};
use crate::stack::{Stack, StackCtx};
use crate::sys;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// A UDP socket on a [`Stack`].
///
/// Its descriptor is a real kernel fd that `poll`, `epoll` or mio can watch.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let stack = vdestack::Stack::new("vde:///tmp/sw", None)?;
/// stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;
/// let socket = vdestack::UdpSocket::bind(&stack, "0.0.0.0:0")?;
/// socket.send_to(b"ping", "10.0.0.1:7")?;
/// let mut buf = [0; 1500];
/// let (len, from) = socket.recv_from(&mut buf)?;
/// println!("{len} bytes from {from}");
/// # Ok(()) }
/// ```
pub struct UdpSocket {
    fd: OwnedFd,
    /// `None`: a kernel socket of a [`Backend::Kernel`](crate::Backend) stack.
    /// Shared by the handles [`UdpSocket::try_clone`] makes: they are one socket.
    udp: Option<Arc<Udp>>,
}

/// What answers a socket's calls: the stack (through its pump), or a kernel socket
/// of the kernel backend, through raw system calls named as std's.
pub(crate) enum Face<'a> {
    Stack(&'a Udp),
    Kernel(sys::KernelSocket<'a>),
}

/// The face of a datagram socket: its stack part, or the kernel socket `fd` is.
pub(crate) fn face<'a>(udp: Option<&'a Udp>, fd: BorrowedFd<'a>) -> Face<'a> {
    match udp {
        Some(udp) => Face::Stack(udp),
        None => Face::Kernel(sys::KernelSocket(fd)),
    }
}

/// What a UDP socket is beside its descriptor: shared by [`UdpSocket`] and `bsd`.
pub(crate) struct Udp {
    pub(crate) id: u64,
    proto: DatagramProto,
    ctx: StackCtx,
    pub(crate) shared: Arc<UdpShared>,
    state: Mutex<UdpState>,
    pub(crate) options: OptionRecord,
}

#[derive(Debug, Clone, Copy)]
struct UdpState {
    local: SocketAddr,
    peer: Option<SocketAddr>,
}

impl Udp {
    /// Opens the engine's socket bound to `local`, served through `pump_end`
    /// (`None`: the `msocket` end the pump adopted under `id`).
    pub(crate) fn open(
        ctx: &StackCtx,
        id: u64,
        proto: DatagramProto,
        pump_end: Option<OwnedFd>,
        local: SocketAddr,
        options: SocketOptions,
    ) -> io::Result<Udp> {
        let shared = Arc::new(UdpShared::default());
        let bound = ctx.pump.request(|reply| Control::UdpOpen {
            id,
            proto,
            fd: pump_end,
            local,
            options,
            shared: shared.clone(),
            reply,
        })??;
        Ok(Udp {
            id,
            proto,
            ctx: ctx.clone(),
            shared,
            state: Mutex::new(UdpState {
                local: bound,
                peer: None,
            }),
            options: OptionRecord::new(options),
        })
    }

    fn state(&self) -> UdpState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut UdpState)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.state().local
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.state()
            .peer
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTCONN))
    }

    /// Connects to `remote`, or with `None` dissolves the association. `fd` is
    /// the application's end, drained of datagrams framed the old way.
    pub(crate) fn connect(&self, fd: BorrowedFd<'_>, remote: Option<SocketAddr>) -> io::Result<()> {
        if let Some(remote) = remote {
            self.check_family(remote)?;
        }
        let local = self.ctx.pump.request(|reply| Control::UdpConnect {
            id: self.id,
            remote,
            reply,
        })??;
        // Datagrams queued before the switch are framed the old way: like Linux
        // after connect, they are not the peer's to read.
        let mut head = [0u8; ADDR_BYTES];
        let mut body = [0u8; 64];
        while sys::recv_parts(fd, &mut head, &mut body, libc::MSG_DONTWAIT)
            .is_ok_and(|(n, _)| n > 0)
        {}
        self.ctx.pump.send(Control::UdpResume { id: self.id })?;
        self.update(|s| {
            s.local = local;
            s.peer = remote;
        });
        Ok(())
    }

    fn check_family(&self, addr: SocketAddr) -> io::Result<()> {
        if addr.is_ipv6() && self.local_addr().is_ipv4() {
            return Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT));
        }
        Ok(())
    }

    /// Sends `buf` to `dest` (`None`: the connected peer) through `fd`.
    pub(crate) fn send_to(
        &self,
        fd: BorrowedFd<'_>,
        buf: &[u8],
        dest: Option<SocketAddr>,
        flags: libc::c_int,
    ) -> io::Result<usize> {
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        let state = self.state();
        // A connected socket's pair carries bare payloads for its peer; a datagram
        // to someone else (sendto on a connected socket, which Linux allows) goes
        // to the pump beside it.
        let (dest, framed, aside) = match (dest, state.peer) {
            (Some(dest), Some(peer)) if dest != peer => (dest, false, true),
            (_, Some(peer)) => (peer, false, false),
            (Some(dest), None) => (dest, true, false),
            (None, None) => return Err(io::Error::from_raw_os_error(libc::EDESTADDRREQ)),
        };
        self.check_family(dest)?;
        let wire = unmap(dest);
        if self.proto == DatagramProto::Ping {
            check_echo_request(buf, wire.is_ipv6())?;
        }
        let options = self.options.get();
        let config = self.ctx.config();
        let hop = udp_check_send(&config, options.broadcast, wire, buf.len(), self.proto)?;
        if options.bounds_datagrams(wire.is_ipv6()) {
            self.check_size(&options, &config, &hop, wire, buf.len())?;
        }
        if aside {
            self.ctx.pump.request(|reply| Control::UdpSendTo {
                id: self.id,
                dest,
                data: buf.to_vec(),
                reply,
            })??;
            return Ok(buf.len());
        }
        let head = encode_addr(dest);
        let head: &[u8] = if framed { &head } else { &[] };
        match sys::send_parts(fd, head, buf, flags) {
            Ok(n) => Ok(n - head.len()),
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => Err(self.ctx.pump.gone()),
            Err(e) => Err(e),
        }
    }

    /// IPv6's minimum MTU (RFC 8200): no path's is lower.
    const IPV6_MIN_MTU: usize = 1280;

    /// `EMSGSIZE` for a datagram of `len` bytes to `wire` beyond the MTU its
    /// socket's options hold it to (see [`udp_check_size`]). Over IPv6, only a
    /// datagram whose size a router's MTU may decide (between IPv6's minimum
    /// and the device's) asks the pump for the path's.
    fn check_size(
        &self,
        options: &SocketOptions,
        config: &crate::cmd::NetConfig,
        hop: &crate::cmd::NextHop,
        wire: SocketAddr,
        len: usize,
    ) -> io::Result<()> {
        let mut mtus = datagram_mtus(config, hop, None);
        // The IPv6 header, and a UDP socket's header (a ping socket's data is
        // a whole ICMP message).
        let packet = len + 40 + usize::from(self.proto == DatagramProto::Udp) * 8;
        if wire.is_ipv6() && !hop.local && packet > Self::IPV6_MIN_MTU && packet <= mtus.device {
            let (_, path) = self.ctx.pump.request(|reply| Control::PathTo {
                peer: wire.ip(),
                reply,
            })?;
            mtus.path = path.min(mtus.device);
        }
        udp_check_size(options, wire, len, self.proto, mtus).map(drop)
    }

    /// Receives one datagram into `buf` (truncated to fit) and its source.
    pub(crate) fn recv_from(
        &self,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
        flags: libc::c_int,
    ) -> io::Result<(usize, SocketAddr)> {
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        let state = self.state();
        let mut head = [0u8; ADDR_BYTES];
        let head: &mut [u8] = if state.peer.is_some() {
            &mut []
        } else {
            &mut head
        };
        let (received, _) = sys::recv_parts(fd, head, buf, flags)?;
        if received == 0 {
            // An empty read is an empty datagram, the wake-up for an error, or the
            // end of the stack.
            if let Some(e) = self.take_error() {
                return Err(e);
            }
            if sys::peer_closed(fd) {
                return Err(self.ctx.pump.gone());
            }
        }
        match state.peer {
            Some(peer) => Ok((received, peer)),
            None => match decode_addr(head) {
                Some(from) if received >= ADDR_BYTES => Ok((received - ADDR_BYTES, from)),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "datagram without its address",
                )),
            },
        }
    }

    /// Changes the socket's options; the pump applies them.
    pub(crate) fn set_options(&self, change: impl FnOnce(&mut SocketOptions)) -> io::Result<()> {
        self.options.update(&self.ctx.pump, self.id, change)
    }

    /// Joins (or leaves) a multicast group.
    pub(crate) fn membership(&self, group: IpAddr, join: bool) -> io::Result<()> {
        self.ctx.pump.request(|reply| Control::Membership {
            id: self.id,
            group,
            join,
            reply,
        })?
    }

    /// The pending error (SO_ERROR), with the reason if the stack failed.
    pub(crate) fn take_error(&self) -> Option<io::Error> {
        let e = self.shared.take_error()?;
        Some(self.ctx.pump.failure.explain(e))
    }
}

impl UdpSocket {
    /// Creates a UDP socket on `stack` bound to `addr` (port 0: an ephemeral
    /// port). An IPv6 socket bound to `[::]` also receives IPv4 datagrams, whose
    /// sources then read as v4-mapped addresses (`IPV6_V6ONLY` off, as on Linux).
    ///
    /// Errors: `EADDRINUSE`, `EADDRNOTAVAIL` (not one of the stack's addresses).
    pub fn bind<A: ToStackAddrs>(stack: &Stack, addr: A) -> io::Result<UdpSocket> {
        Self::bind_with(stack, addr, &SocketConfig::default())
    }

    /// Like [`UdpSocket::bind`], with options chosen before binding
    /// (`SO_REUSEADDR`, `SO_REUSEPORT`, `SO_RCVBUF`, ...).
    pub fn bind_with<A: ToStackAddrs>(
        stack: &Stack,
        addr: A,
        config: &SocketConfig,
    ) -> io::Result<UdpSocket> {
        each_addr(Some(stack), addr, |addr| {
            if let Some(fd) = super::kernel_socket(stack, &addr, libc::SOCK_DGRAM)? {
                super::options::apply_to_kernel_socket(
                    fd.as_fd(),
                    &config.options,
                    libc::SOCK_DGRAM,
                )?;
                sys::bind(fd.as_fd(), &addr)?;
                return Ok(UdpSocket { fd, udp: None });
            }
            let (app_end, pump_end) = sys::pair(libc::SOCK_SEQPACKET)?;
            let ctx = stack.ctx()?;
            let udp = Udp::open(
                ctx,
                ctx.next_socket_id(),
                DatagramProto::Udp,
                Some(pump_end),
                addr,
                config.options,
            )?;
            Ok(UdpSocket {
                fd: app_end,
                udp: Some(Arc::new(udp)),
            })
        })
    }

    /// Only datagrams from `addr` arrive from now on, and [`UdpSocket::send`]
    /// sends there. Datagrams from others that were queued are dropped.
    ///
    /// Errors: `ENETUNREACH` without a route.
    pub fn connect<A: ToStackAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(None, addr, |addr| match self.face() {
            Face::Stack(udp) => udp.connect(self.fd.as_fd(), Some(addr)),
            Face::Kernel(k) => k.connect(addr),
        })
    }

    /// Sends a datagram to the connected peer; `EDESTADDRREQ` if not connected.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match self.face() {
            Face::Stack(udp) => udp.send_to(self.fd.as_fd(), buf, None, 0),
            Face::Kernel(k) => k.send(buf),
        }
    }

    /// Sends a datagram to `addr`. Errors as `sendto(2)`: `EMSGSIZE` beyond
    /// 65,507 bytes over IPv4 and 65,527 over IPv6 (larger than the link's MTU,
    /// a datagram leaves in fragments), `EACCES` to a broadcast address without [`UdpSocket::set_broadcast`],
    /// `ENETUNREACH` without a route. A connected socket may send to another address
    /// than its peer's, as on Linux.
    pub fn send_to<A: ToStackAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        each_addr(None, addr, |addr| match self.face() {
            Face::Stack(udp) => udp.send_to(self.fd.as_fd(), buf, Some(addr), 0),
            Face::Kernel(k) => k.send_to(buf, addr),
        })
    }

    /// Receives one datagram from the connected peer (truncated to `buf`).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_from(buf).map(|(n, _)| n)
    }

    /// Receives one datagram (truncated to `buf`) and its source address.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self.face() {
            Face::Stack(udp) => udp.recv_from(self.fd.as_fd(), buf, 0),
            Face::Kernel(k) => k.recv_from(buf),
        }
    }

    /// Like [`UdpSocket::recv_from`], leaving the datagram queued.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self.face() {
            Face::Stack(udp) => udp.recv_from(self.fd.as_fd(), buf, libc::MSG_PEEK),
            Face::Kernel(k) => k.peek_from(buf),
        }
    }

    /// Like [`UdpSocket::recv`], leaving the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.peek_from(buf).map(|(n, _)| n)
    }

    /// The local address (after `connect`, with the source address its route picked).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.face() {
            Face::Stack(udp) => Ok(udp.local_addr()),
            Face::Kernel(k) => k.local_addr(),
        }
    }

    /// The connected peer; `ENOTCONN` if there is none.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self.face() {
            Face::Stack(udp) => udp.peer_addr(),
            Face::Kernel(k) => k.peer_addr(),
        }
    }

    /// `SO_BROADCAST`: allows sending to broadcast addresses.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        match self.face() {
            Face::Stack(udp) => udp.set_options(|o| o.broadcast = broadcast),
            Face::Kernel(k) => k.set_broadcast(broadcast),
        }
    }

    /// `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        match self.face() {
            Face::Stack(udp) => Ok(udp.options.get().broadcast),
            Face::Kernel(k) => k.broadcast(),
        }
    }

    /// `IP_TTL`: the hop limit of outgoing datagrams (1 to 255; unset: 64, or
    /// over IPv6 a router advertisement's hop limit).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let hops = checked_ttl(ttl)?;
        match self.face() {
            Face::Stack(udp) => udp.set_options(|o| o.set_hop_limit(Some(hops))),
            Face::Kernel(k) => k.set_ttl(ttl),
        }
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        match self.face() {
            Face::Stack(udp) => Ok(udp.options.get().hop_limit.into()),
            Face::Kernel(k) => k.ttl(),
        }
    }

    /// `SO_RCVBUF`: how many bytes of datagrams (each counted with a fixed
    /// overhead) wait for the application in the stack before newer ones are
    /// dropped. The socket pair adds its own kernel buffer to that.
    pub fn set_recv_buffer_size(&self, bytes: usize) -> io::Result<()> {
        match self.face() {
            Face::Stack(udp) => udp.set_options(|o| o.recv_buffer = Some(bytes)),
            Face::Kernel(k) => k.set_recv_buffer_size(bytes),
        }
    }

    /// `IP_ADD_MEMBERSHIP`: receive datagrams sent to the IPv4 group `multiaddr`
    /// (the stack has one interface, so `interface` only has to be unspecified
    /// or one of its addresses). `EINVAL` if it is not a multicast address,
    /// `EADDRINUSE` if joined already.
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        match self.face() {
            Face::Stack(udp) => udp.membership(IpAddr::V4(*multiaddr), true),
            Face::Kernel(k) => k.join_multicast_v4(multiaddr, interface),
        }
    }

    /// `IP_DROP_MEMBERSHIP`; `EADDRNOTAVAIL` if the group was not joined.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        match self.face() {
            Face::Stack(udp) => udp.membership(IpAddr::V4(*multiaddr), false),
            Face::Kernel(k) => k.leave_multicast_v4(multiaddr, interface),
        }
    }

    /// `IPV6_ADD_MEMBERSHIP` (`interface`: an index, 0 for the default).
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        match self.face() {
            Face::Stack(udp) => udp.membership(IpAddr::V6(*multiaddr), true),
            Face::Kernel(k) => k.join_multicast_v6(multiaddr, interface),
        }
    }

    /// `IPV6_DROP_MEMBERSHIP`.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        match self.face() {
            Face::Stack(udp) => udp.membership(IpAddr::V6(*multiaddr), false),
            Face::Kernel(k) => k.leave_multicast_v6(multiaddr, interface),
        }
    }

    /// `IP_MULTICAST_TTL`: the TTL of the IPv4 multicast datagrams this socket
    /// sends (0 to 255; default 1, as on Linux: they stay on the link).
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        self.set_ip_option(IpOption::MULTICAST_TTL_V4, ttl.into(), |o| {
            o.multicast_ttl_v4 = ttl
        })
    }

    /// `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        let ttl = self.ip_option(IpOption::MULTICAST_TTL_V4, |o| o.multicast_ttl_v4.into())?;
        Ok(ttl.max(0) as u32)
    }

    /// `IP_MULTICAST_LOOP`: whether the IPv4 multicast datagrams this socket sends
    /// also reach the members of the group on its own stack, this socket included
    /// if it is bound to the destination port (default on, as on Linux).
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.set_ip_option(IpOption::MULTICAST_LOOP_V4, on.into(), |o| {
            o.multicast_loop_v4 = on
        })
    }

    /// `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        Ok(self.ip_option(IpOption::MULTICAST_LOOP_V4, |o| o.multicast_loop_v4.into())? != 0)
    }

    /// `IPV6_MULTICAST_HOPS`: the hop limit of the IPv6 multicast datagrams this
    /// socket sends (0 to 255; default 1, as on Linux). `ENOPROTOOPT` on an IPv4
    /// socket (`EOPNOTSUPP` to read it), as Linux answers.
    pub fn set_multicast_hops_v6(&self, hops: u32) -> io::Result<()> {
        let hops = u8::try_from(hops).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        self.set_ip_option(IpOption::MULTICAST_HOPS_V6, hops.into(), |o| {
            o.multicast_hops_v6 = hops
        })
    }

    /// `IPV6_MULTICAST_HOPS`.
    pub fn multicast_hops_v6(&self) -> io::Result<u32> {
        let hops = self.ip_option(IpOption::MULTICAST_HOPS_V6, |o| o.multicast_hops_v6.into())?;
        Ok(hops.max(0) as u32)
    }

    /// `IPV6_MULTICAST_LOOP`: as [`UdpSocket::set_multicast_loop_v4`] for IPv6
    /// multicast (default on). `ENOPROTOOPT` on an IPv4 socket (`EOPNOTSUPP` to
    /// read it).
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.set_ip_option(IpOption::MULTICAST_LOOP_V6, on.into(), |o| {
            o.multicast_loop_v6 = on
        })
    }

    /// `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        Ok(self.ip_option(IpOption::MULTICAST_LOOP_V6, |o| o.multicast_loop_v6.into())? != 0)
    }

    /// Sets an IP-level option: in the socket's record, or with setsockopt on a
    /// kernel socket.
    fn set_ip_option(
        &self,
        option: IpOption,
        value: libc::c_int,
        change: impl FnOnce(&mut SocketOptions),
    ) -> io::Result<()> {
        match self.udp.as_deref() {
            Some(udp) => {
                option.check_family(udp, libc::ENOPROTOOPT)?;
                udp.set_options(change)
            }
            None => sys::set_option(self.fd.as_fd(), option.level, option.name, value),
        }
    }

    /// Reads an IP-level option: from the socket's record, or with getsockopt on a
    /// kernel socket.
    fn ip_option(
        &self,
        option: IpOption,
        read: impl FnOnce(&SocketOptions) -> libc::c_int,
    ) -> io::Result<libc::c_int> {
        match self.udp.as_deref() {
            Some(udp) => {
                option.check_family(udp, libc::EOPNOTSUPP)?;
                Ok(read(&udp.options.get()))
            }
            None => sys::option(self.fd.as_fd(), option.level, option.name),
        }
    }

    /// A second handle to the same socket (a `dup` of the descriptor): options,
    /// connection and queue are shared, as with `std::net::UdpSocket::try_clone`.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            fd: self.fd.try_clone()?,
            udp: self.udp.clone(),
        })
    }

    /// Datagrams dropped so far because the receive queue was full (what Linux
    /// counts in the `drops` column of `/proc/net/udp`). Not counted on a kernel
    /// backend's socket: 0.
    pub fn dropped(&self) -> u64 {
        self.udp
            .as_ref()
            .map_or(0, |udp| udp.shared.drops.load(Ordering::Relaxed))
    }

    /// Takes the pending error (`SO_ERROR`): an ICMP error from the connected peer.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self.face() {
            Face::Stack(udp) => Ok(udp.take_error()),
            Face::Kernel(k) => k.take_error(),
        }
    }

    fn face(&self) -> Face<'_> {
        face(self.udp.as_deref(), self.fd.as_fd())
    }

    super::descriptor_controls!();
}

/// An IP-level socket option: its setsockopt name, and whether IPv4 sockets
/// have it.
#[derive(Clone, Copy)]
struct IpOption {
    level: libc::c_int,
    name: libc::c_int,
    v6_only: bool,
}

impl IpOption {
    const MULTICAST_TTL_V4: IpOption = IpOption {
        level: libc::IPPROTO_IP,
        name: libc::IP_MULTICAST_TTL,
        v6_only: false,
    };
    const MULTICAST_LOOP_V4: IpOption = IpOption {
        level: libc::IPPROTO_IP,
        name: libc::IP_MULTICAST_LOOP,
        v6_only: false,
    };
    const MULTICAST_HOPS_V6: IpOption = IpOption {
        level: libc::IPPROTO_IPV6,
        name: libc::IPV6_MULTICAST_HOPS,
        v6_only: true,
    };
    const MULTICAST_LOOP_V6: IpOption = IpOption {
        level: libc::IPPROTO_IPV6,
        name: libc::IPV6_MULTICAST_LOOP,
        v6_only: true,
    };

    /// An IPv6 option on an IPv4 socket fails with `errno` (Linux: ENOPROTOOPT to
    /// set, EOPNOTSUPP to read); IPv4 options work on IPv6 sockets, for their
    /// v4-mapped traffic.
    fn check_family(self, udp: &Udp, errno: libc::c_int) -> io::Result<()> {
        if self.v6_only && udp.local_addr().is_ipv4() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(())
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("fd", &self.fd.as_raw_fd())
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

super::descriptor_traits!(UdpSocket);
