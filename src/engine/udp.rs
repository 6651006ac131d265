//! UDP sockets: smoltcp's, plus what a BSD datagram socket adds.
//!
//! smoltcp's UDP socket delivers every datagram for its port, from anyone, into a
//! ring it drops from silently when full. A Linux socket differs in ways programs
//! notice, so the engine keeps its own state beside each smoltcp socket:
//! - a receive queue bounded in bytes like `SO_RCVBUF`, whose overflow is counted
//!   (smoltcp's ring only ever holds the datagram of the frame just processed);
//! - `connect`: only the peer's datagrams are delivered, and an ICMP
//!   destination-unreachable about a datagram to the peer becomes a pending error
//!   (ECONNREFUSED for a closed port), as on Linux;
//! - address family: an IPv4 socket never sees IPv6 datagrams, and an IPv6 socket
//!   sees IPv4 peers as v4-mapped addresses (`::ffff:a.b.c.d`), `IPV6_V6ONLY` off;
//! - `SO_BROADCAST`: sending to a broadcast address without it is EACCES;
//! - sockets sharing a port (`SO_REUSEADDR`, `SO_REUSEPORT`): a broadcast or
//!   multicast datagram reaches each of them, a unicast one the last bound
//!   (`SO_REUSEADDR`) or one chosen by the sender's address (`SO_REUSEPORT`);
//! - multicast groups joined per socket (`IP_ADD_MEMBERSHIP`), counted for the
//!   interface, which joins (IGMP/MLD) on the first and leaves on the last;
//! - the errors `sendto` gives: EMSGSIZE, EDESTADDRREQ, ENETUNREACH, EINVAL.
//!
//! Ping sockets (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`, and ICMPv6) are
//! datagram sockets of the same kind here, over a smoltcp ICMP socket: see
//! `engine/ping.rs`.

use super::datagram_sets::Group;
use super::ports::PortUse;
use super::{
    errno, from_endpoint, map, spread, to_endpoint, unmap, v6only_refuses, DatagramShape, Engine,
    Event, Lease, Mtus, Rings, SocketOptions,
};
use crate::cmd::{NetConfig, NextHop};
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpListenEndpoint};
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};

/// Names a UDP socket inside the engine.
pub(crate) type UdpHandle = super::datagram_sets::DatagramHandle;

/// The largest UDP payload over IPv4: 65,535 minus the IPv4 and UDP headers.
#[cfg(test)]
pub(crate) const MAX_UDP_V4: usize = MAX_IPV4_PAYLOAD - 8;

/// The most an IPv4 packet carries after its header.
const MAX_IPV4_PAYLOAD: usize = 65_535 - 20;

/// Linux's default `SO_RCVBUF` (`net.core.rmem_default`).
pub(crate) const DEFAULT_RCVBUF: usize = 212_992;

/// What a queued datagram costs against the receive buffer beyond its payload, in
/// the spirit of the kernel's per-packet overhead (an sk_buff), so that a flood of
/// tiny datagrams is bounded too.
const DATAGRAM_OVERHEAD: usize = 256;

/// smoltcp's rings: room for the largest datagram wherever the ring's write
/// position happens to be.
const RING_BYTES: usize = 2 * 65_536;
const RX_SLOTS: usize = 8;
const TX_SLOTS: usize = 64;

/// A received datagram and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Datagram {
    pub(crate) peer: SocketAddr,
    pub(crate) data: Vec<u8>,
}

/// What carries a datagram socket's datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DatagramProto {
    Udp,
    /// ICMP echo (a ping socket); its "port" is the echo identifier.
    Ping,
}

/// The engine's side of one UDP (or ping) socket.
pub(super) struct UdpSock {
    pub(super) proto: DatagramProto,
    /// The bound address (the address may be the wildcard).
    pub(super) bound: SocketAddr,
    /// The peer and the local address the route to it picked, while connected.
    pub(super) connected: Option<(SocketAddr, SocketAddr)>,
    pub(super) options: SocketOptions,
    queue: VecDeque<Datagram>,
    queued_bytes: usize,
    drops: u64,
    error: Option<i32>,
    /// Multicast groups this socket joined.
    groups: Vec<IpAddr>,
    /// When it was bound, in opening order: the last bound of sockets sharing a
    /// port with `SO_REUSEADDR` gets their unicast datagrams.
    serial: u64,
    /// Closed by the application; kept until its last datagrams have left.
    pub(super) closing: bool,
    /// What the ring source wants back once the smoltcp socket is gone.
    pub(super) lease: Option<Lease>,
}

impl UdpSock {
    pub(super) fn new(
        proto: DatagramProto,
        bound: SocketAddr,
        options: SocketOptions,
        serial: u64,
    ) -> UdpSock {
        UdpSock {
            proto,
            bound,
            connected: None,
            options,
            queue: VecDeque::new(),
            queued_bytes: 0,
            drops: 0,
            error: None,
            groups: Vec::new(),
            serial,
            closing: false,
            lease: None,
        }
    }
}

impl UdpSock {
    pub(super) fn is_v6(&self) -> bool {
        self.bound.is_ipv6()
    }

    fn rcvbuf(&self) -> usize {
        self.options.recv_buffer.unwrap_or(DEFAULT_RCVBUF)
    }

    /// Whether a datagram from `from` to `dst` (wire addresses) is for this socket.
    fn takes(&self, dst: IpAddr, from: SocketAddr, shared_dst: bool) -> bool {
        let bound = unmap(self.bound).ip();
        !self.closing
            && (bound.is_unspecified() || bound == dst || shared_dst)
            && match (self.is_v6(), from.is_ipv4()) {
                (true, v4) => !(v4 && self.options.v6only),
                (false, v4) => v4,
            }
            && self.connected.is_none_or(|(peer, _)| peer == from)
    }

    /// How this socket's application sees `addr` (v4-mapped on an IPv6 socket).
    pub(super) fn app_view(&self, addr: SocketAddr) -> SocketAddr {
        if self.is_v6() {
            map(addr)
        } else {
            addr
        }
    }

    /// The wire address behind what the application named: v4-mapped addresses
    /// on an IPv6 socket are IPv4; an IPv6 address on an IPv4 socket is refused.
    pub(super) fn wire_view(&self, addr: SocketAddr) -> io::Result<SocketAddr> {
        match addr {
            SocketAddr::V6(_) if !self.is_v6() => Err(errno(libc::EAFNOSUPPORT)),
            // IPV6_V6ONLY: no IPv4 through this socket (Linux: ENETUNREACH).
            _ if self.options.v6only && v6only_refuses(addr) => Err(errno(libc::ENETUNREACH)),
            _ => Ok(unmap(addr)),
        }
    }
}

impl Engine {
    /// Opens a UDP socket bound to `local` (port 0: an ephemeral one). Returns the
    /// socket and the address it is bound to.
    pub(crate) fn udp_open(
        &mut self,
        local: SocketAddr,
        options: &SocketOptions,
    ) -> io::Result<(UdpHandle, SocketAddr)> {
        let Rings { rx, tx, lease } = self.rings.rings(RING_BYTES, RING_BYTES);
        let hops = options.hops(self.io.hops(local.ip()));
        let opened = self.open_datagram(DatagramProto::Udp, local, options, |ip, port| {
            let mut socket = udp::Socket::new(rx.udp(RX_SLOTS), tx.udp(TX_SLOTS));
            let endpoint = IpListenEndpoint {
                addr: (!ip.is_unspecified()).then(|| ip.into()),
                port,
            };
            socket.bind(endpoint).ok()?;
            socket.set_hop_limit(Some(hops));
            Some(smoltcp::socket::Socket::Udp(socket))
        });
        self.leased(opened, lease)
    }

    /// Records the lease of a datagram socket's rings once it is open, or gives
    /// it back if it did not open (its rings were dropped with the attempt).
    pub(super) fn leased(
        &mut self,
        opened: io::Result<(UdpHandle, SocketAddr)>,
        lease: Option<Lease>,
    ) -> io::Result<(UdpHandle, SocketAddr)> {
        match &opened {
            Ok((handle, _)) => self.udps.get_mut(handle).expect("just opened").lease = lease,
            Err(_) => self.give_back(lease),
        }
        opened
    }

    /// How a datagram socket on `local` (unmapped) holds its port: a UDP port
    /// per family as TCP's, so that `0.0.0.0:P` and `[::]:P` with
    /// `IPV6_V6ONLY` do not meet, as on Linux. Ping sockets may share an echo
    /// identifier, as on Linux (which lets two ping sockets bind the same one); a
    /// chosen identifier is still a free one.
    fn port_use(proto: DatagramProto, local: IpAddr, options: &SocketOptions) -> PortUse {
        match proto {
            DatagramProto::Udp => options.port_use_on(false, local),
            DatagramProto::Ping => PortUse {
                reuse_addr: true,
                reuse_port: true,
                listening: false,
                scope: super::ports::Scope::Both,
            },
        }
    }

    /// What UDP and ping sockets share in opening: the address check, the port
    /// (or echo identifier), and the record. `make` builds the smoltcp socket for
    /// the local address and port (`None`: it cannot bind, EINVAL).
    pub(super) fn open_datagram(
        &mut self,
        proto: DatagramProto,
        local: SocketAddr,
        options: &SocketOptions,
        make: impl FnOnce(IpAddr, u16) -> Option<smoltcp::socket::Socket<'static>>,
    ) -> io::Result<(UdpHandle, SocketAddr)> {
        let ip = unmap(local).ip();
        if !ip.is_unspecified() && !self.config.is_local_addr(ip) {
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        let ports = match proto {
            DatagramProto::Udp => &mut self.udp_ports,
            DatagramProto::Ping => &mut self.ping_ids,
        };
        let how = Self::port_use(proto, ip, options);
        let port = ports
            .take(local.port(), how)
            .ok_or_else(|| errno(libc::EADDRINUSE))?;
        let Some(socket) = make(ip, port) else {
            ports.release(port, how);
            return Err(errno(libc::EINVAL));
        };
        self.udp_serial += 1;
        let bound = SocketAddr::new(local.ip(), port);
        let group = match proto {
            DatagramProto::Udp => Group::Udp(port),
            DatagramProto::Ping => Group::Ping,
        };
        let handle = self.datagrams.add(group, socket);
        self.udps.insert(
            handle,
            UdpSock::new(proto, bound, *options, self.udp_serial),
        );
        Ok((handle, bound))
    }

    /// Closes a UDP socket: queued datagrams are dropped, the port is free again.
    ///
    /// The port is free again at once, as after `close(2)`; datagrams it sent
    /// and smoltcp has not put on the wire yet still leave, as a kernel's sent
    /// datagrams outlive their socket: the smoltcp socket stays, closing, until
    /// [`Engine::transmit`] has sent them.
    pub(crate) fn udp_close(&mut self, handle: UdpHandle) {
        let Some(sock) = self.udps.get_mut(&handle) else {
            return;
        };
        if sock.closing {
            return;
        }
        sock.closing = true;
        sock.queue.clear();
        sock.queued_bytes = 0;
        let port = sock.bound.port();
        let how = Self::port_use(sock.proto, unmap(sock.bound).ip(), &sock.options);
        let groups = std::mem::take(&mut sock.groups);
        match sock.proto {
            DatagramProto::Udp => self.udp_ports.release(port, how),
            DatagramProto::Ping => self.ping_ids.release(port, how),
        }
        for group in groups {
            self.leave_group(group);
        }
        if self.dgram_send_queue(handle) == 0 {
            self.udp_forget(handle);
        } else {
            self.udp_closing.insert(handle);
        }
    }

    fn udp_forget(&mut self, handle: UdpHandle) {
        let Some(sock) = self.udps.remove(&handle) else {
            return;
        };
        // The smoltcp socket is dropped before its rings are given back (the
        // lease's contract).
        self.datagrams.remove(handle);
        self.udp_closing.remove(&handle);
        self.give_back(sock.lease);
    }

    /// Removes closed sockets whose last datagrams have left.
    pub(super) fn finish_udp_closes(&mut self) {
        let sent: Vec<UdpHandle> = self
            .udp_closing
            .iter()
            .copied()
            .filter(|&h| self.dgram_send_queue(h) == 0)
            .collect();
        for handle in sent {
            self.udp_forget(handle);
        }
    }

    /// Connects to `remote` (only its datagrams arrive; `send` goes there) or, with
    /// `None`, dissolves the association (`AF_UNSPEC`). Returns the socket's local
    /// address now: connecting fixes the source address the route picks.
    pub(crate) fn udp_connect(
        &mut self,
        handle: UdpHandle,
        remote: Option<SocketAddr>,
    ) -> io::Result<SocketAddr> {
        let sock = self
            .udps
            .get_mut(&handle)
            .ok_or_else(|| errno(libc::EBADF))?;
        let Some(remote) = remote else {
            sock.connected = None;
            return Ok(sock.bound);
        };
        let wire = sock.wire_view(remote)?;
        if wire.port() == 0 && sock.proto == DatagramProto::Udp {
            return Err(errno(libc::ECONNREFUSED));
        }
        let hop = self.config.route_to(wire.ip()).map_err(super::no_route)?;
        let local_ip = match sock.bound.ip() {
            ip if !ip.is_unspecified() => ip,
            _ => hop
                .src
                .map(|src| sock.app_view(SocketAddr::new(src, 0)).ip())
                .ok_or_else(|| no_source(wire.ip()))?,
        };
        let local = SocketAddr::new(local_ip, sock.bound.port());
        sock.connected = Some((wire, local));
        sock.error = None;
        // Datagrams from others that arrived before the connect are not the
        // peer's: a connected socket reads only what its peer sends.
        let mut kept = VecDeque::new();
        let mut kept_bytes = 0;
        for datagram in sock.queue.drain(..) {
            if unmap(datagram.peer) == wire {
                kept_bytes += datagram.data.len() + DATAGRAM_OVERHEAD;
                kept.push_back(datagram);
            }
        }
        sock.queue = kept;
        sock.queued_bytes = kept_bytes;
        Ok(local)
    }

    /// The socket's address as `getsockname` reports it, and its peer if connected.
    pub(crate) fn udp_addrs(&self, handle: UdpHandle) -> Option<(SocketAddr, Option<SocketAddr>)> {
        let sock = self.udps.get(&handle)?;
        Some(match sock.connected {
            Some((peer, local)) => (local, Some(sock.app_view(peer))),
            None => (sock.bound, None),
        })
    }

    /// Queues `data` to `dest` (`None`: the connected peer). `WouldBlock` means
    /// smoltcp's ring is full: try again after [`Engine::transmit`].
    pub(crate) fn udp_send(
        &mut self,
        handle: UdpHandle,
        dest: Option<SocketAddr>,
        data: &[u8],
    ) -> io::Result<()> {
        let sock = self
            .udps
            .get_mut(&handle)
            .ok_or_else(|| errno(libc::EBADF))?;
        if let Some(error) = sock.error.take() {
            return Err(errno(error));
        }
        // What is queued now leaves at the next transmit.
        self.datagrams.mark(handle.group());
        let (dest, source) = match (dest, sock.connected) {
            (Some(dest), _) => (sock.wire_view(dest)?, None),
            (None, Some((peer, local))) => (peer, Some(local.ip())),
            (None, None) => return Err(errno(libc::EDESTADDRREQ)),
        };
        let proto = sock.proto;
        let options = sock.options;
        let hop = check_send(&self.config, options.broadcast, dest, data.len(), proto)?;
        let ipv6_path = (dest.is_ipv6() && !hop.local).then_some(self.io.mtu6);
        let mtus = datagram_mtus(&self.config, &hop, ipv6_path);
        let shape = check_size(&options, dest, data.len(), proto, mtus)?;
        let source = match source.unwrap_or(sock.bound.ip()) {
            ip if !ip.is_unspecified() => unmap(SocketAddr::new(ip, 0)).ip(),
            _ => hop.src.ok_or_else(|| no_source(dest.ip()))?,
        };
        if source.is_ipv4() != dest.is_ipv4() {
            return Err(errno(libc::ENETUNREACH));
        }
        if proto == DatagramProto::Ping {
            return self.ping_send(handle, dest.ip(), data, shape);
        }
        if dest.ip().is_multicast() {
            return self.udp_send_multicast(handle, source, dest, hop, data, shape);
        }
        if self.not_taken_in.contains(&dest.ip()) {
            // An address of ours, or a subnet broadcast, whose local-table
            // entry was deleted is a unicast destination on the link to Linux
            // (no SO_BROADCAST needed): it asks ARP for it, which nobody
            // answers, and the datagram never leaves (checked on 6.18).
            // smoltcp would broadcast the one and keep the other.
            return Ok(());
        }
        let meta = udp::UdpMetadata {
            endpoint: to_endpoint(dest),
            local_address: Some(IpAddress::from(source)),
            meta: Default::default(),
        };
        match self
            .datagrams
            .get_mut::<udp::Socket>(handle)
            .send_slice(data, meta)
        {
            Ok(()) => {
                let port = self.udps[&handle].bound.port();
                self.io
                    .expect_shaped((false, port, dest, data.len()), shape);
                Ok(())
            }
            Err(udp::SendError::BufferFull) => Err(io::ErrorKind::WouldBlock.into()),
            Err(udp::SendError::Unaddressable) => Err(errno(libc::EINVAL)),
        }
    }

    /// Takes the next received datagram (the peer as the application sees it).
    pub(crate) fn udp_recv(&mut self, handle: UdpHandle) -> Option<Datagram> {
        let sock = self.udps.get_mut(&handle)?;
        let datagram = sock.queue.pop_front()?;
        sock.queued_bytes -= datagram.data.len() + DATAGRAM_OVERHEAD;
        Some(datagram)
    }

    /// Puts back a datagram the application could not take yet; it comes first.
    pub(crate) fn udp_unrecv(&mut self, handle: UdpHandle, datagram: Datagram) {
        if let Some(sock) = self.udps.get_mut(&handle) {
            sock.queued_bytes += datagram.data.len() + DATAGRAM_OVERHEAD;
            sock.queue.push_front(datagram);
        }
    }

    /// Takes the pending error (`SO_ERROR`), if any.
    pub(crate) fn udp_take_error(&mut self, handle: UdpHandle) -> Option<i32> {
        self.udps.get_mut(&handle)?.error.take()
    }

    /// New options for a UDP socket (`SO_BROADCAST`, `SO_RCVBUF`, the hop limit;
    /// port sharing was settled when it was bound).
    pub(crate) fn udp_set_options(&mut self, handle: UdpHandle, options: &SocketOptions) {
        if let Some(sock) = self.udps.get_mut(&handle) {
            sock.options = SocketOptions {
                reuse_address: sock.options.reuse_address,
                reuse_port: sock.options.reuse_port,
                ..*options
            };
            let hops = options.hops(self.io.hops(sock.bound.ip()));
            self.set_dgram_hop_limit(handle, hops);
        }
    }

    /// The options a UDP socket runs with.
    pub(crate) fn udp_options(&self, handle: UdpHandle) -> Option<SocketOptions> {
        self.udps.get(&handle).map(|s| s.options)
    }

    /// Datagrams dropped because the receive queue was full.
    pub(crate) fn udp_drops(&self, handle: UdpHandle) -> u64 {
        self.udps.get(&handle).map_or(0, |s| s.drops)
    }

    /// `IP_ADD_MEMBERSHIP` (`join`) or `IP_DROP_MEMBERSHIP`, and their IPv6
    /// equivalents: EINVAL for a group that is not multicast, EADDRINUSE when
    /// joined already, EADDRNOTAVAIL when leaving a group not joined.
    pub(crate) fn udp_membership(
        &mut self,
        handle: UdpHandle,
        group: IpAddr,
        join: bool,
    ) -> io::Result<()> {
        let sock = self
            .udps
            .get_mut(&handle)
            .ok_or_else(|| errno(libc::EBADF))?;
        if !group.is_multicast() {
            return Err(errno(libc::EINVAL));
        }
        let position = sock.groups.iter().position(|g| *g == group);
        match (join, position) {
            (true, Some(_)) => Err(errno(libc::EADDRINUSE)),
            (false, None) => Err(errno(libc::EADDRNOTAVAIL)),
            (true, None) => {
                if self.groups.get(&group).is_none_or(|&n| n == 0)
                    && self.iface.join_multicast_group(group).is_err()
                {
                    return Err(errno(libc::ENOBUFS));
                }
                sock.groups.push(group);
                *self.groups.entry(group).or_insert(0) += 1;
                self.link_filter.groups_moved();
                Ok(())
            }
            (false, Some(index)) => {
                sock.groups.swap_remove(index);
                self.leave_group(group);
                Ok(())
            }
        }
    }

    fn leave_group(&mut self, group: IpAddr) {
        if let Some(count) = self.groups.get_mut(&group) {
            *count -= 1;
            if *count == 0 {
                self.groups.remove(&group);
                let _ = self.iface.leave_multicast_group(group);
                self.link_filter.groups_moved();
            }
        }
    }

    /// Moves what smoltcp received into the sockets' queues, choosing among
    /// sockets that share a port, and applying each socket's peer filter, address
    /// family and receive buffer bound.
    /// Only the sockets on `port`, the one the datagram was for, are looked at.
    pub(super) fn collect_udp(&mut self, port: u16) {
        // smoltcp hands a datagram to the first socket on its port; which of the
        // sockets sharing the port it is for is decided here.
        let mut arrived = Vec::new();
        for handle in self.datagrams.handles(Group::Udp(port)) {
            let socket = self.datagrams.get_mut::<udp::Socket>(handle);
            while let Ok((data, meta)) = socket.recv() {
                let from = from_endpoint(meta.endpoint);
                let dst = meta.local_address.map(IpAddr::from);
                arrived.push((handle, from, dst, data.to_vec()));
            }
        }
        for (first, from, dst, data) in arrived {
            let port = self.udps[&first].bound.port();
            let dst = dst.unwrap_or(unmap(self.udps[&first].bound).ip());
            self.deliver_udp(port, dst, from, &data);
        }
    }

    /// Queues a datagram from `from` to `dst`:`port` (wire addresses) on the
    /// sockets it is for: every socket on the port for a broadcast or multicast
    /// datagram, one of those sharing the port for unicast.
    pub(super) fn deliver_udp(&mut self, port: u16, dst: IpAddr, from: SocketAddr, data: &[u8]) {
        let shared_dst = dst.is_multicast() || self.config.is_broadcast(dst);
        let udps = &self.udps;
        let mut takers: Vec<UdpHandle> = self
            .datagrams
            .handles(Group::Udp(port))
            .into_iter()
            .filter(|h| udps[h].takes(dst, from, shared_dst))
            .collect();
        if !shared_dst && takers.len() > 1 {
            let all_reuse_port = takers.iter().all(|h| self.udps[h].options.reuse_port);
            let chosen = if all_reuse_port {
                takers[spread(from) % takers.len()]
            } else {
                *takers
                    .iter()
                    .max_by_key(|h| self.udps[h].serial)
                    .expect("not empty")
            };
            takers = vec![chosen];
        }
        for handle in takers {
            self.queue_datagram(handle, from, data);
        }
    }

    pub(super) fn queue_datagram(&mut self, handle: UdpHandle, from: SocketAddr, data: &[u8]) {
        let sock = self.udps.get_mut(&handle).expect("a taker");
        let cost = data.len() + DATAGRAM_OVERHEAD;
        if sock.queued_bytes + cost > sock.rcvbuf().max(cost) && !sock.queue.is_empty() {
            sock.drops += 1;
            self.events.push_back(Event::UdpDropped(handle));
            return;
        }
        if sock.queue.is_empty() {
            self.events.push_back(Event::UdpReadable(handle));
        }
        sock.queued_bytes += cost;
        let peer = sock.app_view(from);
        sock.queue.push_back(Datagram {
            peer,
            data: data.to_vec(),
        });
    }

    /// Records an ICMP error about a datagram a connected socket sent to its peer.
    pub(super) fn udp_icmp_error(&mut self, error: super::frames::UdpUnreachable) {
        let udps = &self.udps;
        let Some(handle) = self
            .datagrams
            .handles(Group::Udp(error.local.port()))
            .into_iter()
            .find(|h| {
                udps[h]
                    .connected
                    .is_some_and(|(peer, _)| peer == error.remote)
            })
        else {
            return; // Linux reports these only to connected sockets
        };
        let sock = self.udps.get_mut(&handle).expect("indexed");
        sock.error = Some(error.errno);
        self.events.push_back(Event::UdpError(handle));
    }
}

/// The checks `sendto(2)` makes before a datagram to `dest` (a wire address, not
/// v4-mapped) leaves: EINVAL for port 0, EMSGSIZE beyond what one datagram can
/// carry, EACCES for a broadcast address without `SO_BROADCAST`, ENETUNREACH
/// without a route, a reject route's error. Pure, so that the application side can make them at once.
pub(crate) fn check_send(
    config: &NetConfig,
    broadcast: bool,
    dest: SocketAddr,
    len: usize,
    proto: DatagramProto,
) -> io::Result<NextHop> {
    // A ping socket's address has no port (its identifier is its own).
    if dest.port() == 0 && proto == DatagramProto::Udp {
        return Err(errno(libc::EINVAL));
    }
    let hop = config.route_to(dest.ip());
    // What follows the IP header besides the data: the UDP header (a ping
    // socket's data is a whole ICMP message).
    let header = match proto {
        DatagramProto::Udp => 8,
        DatagramProto::Ping => 0,
    };
    let limit = match dest {
        SocketAddr::V4(_) => MAX_IPV4_PAYLOAD - header,
        // Over IPv6, beyond the MTU, packets leave in fragments cut at the
        // device boundary: a UDP datagram, or a whole echo message.
        SocketAddr::V6(_) => super::ipv6_frag::MAX_UDP_V6 + 8 - header,
    };
    if len > limit {
        return Err(errno(libc::EMSGSIZE));
    }
    if config.is_broadcast(dest.ip()) && !broadcast {
        return Err(errno(libc::EACCES));
    }
    hop.map_err(super::no_route)
}

/// The MTUs a datagram that leaves by `hop` meets: the device's (`lo`'s for
/// a local destination), and the path's, which is the device's but over IPv6
/// where `ipv6_path` (a router's, as the engine knows it) is lower.
pub(crate) fn datagram_mtus(config: &NetConfig, hop: &NextHop, ipv6_path: Option<usize>) -> Mtus {
    let device = config
        .link_by_index(hop.dev)
        .map_or(MAX_MTU, |link| link.mtu as usize);
    Mtus {
        device,
        path: ipv6_path.map_or(device, |path| path.min(device)),
    }
}

/// The largest MTU there is (`lo`'s).
const MAX_MTU: usize = 65_536;

/// The check `sendto(2)` makes of a datagram of `len` bytes to `dest` (a wire
/// address) against the MTUs on its way, by the socket's MTU options
/// (`IP_MTU_DISCOVER`, `IPV6_MTU_DISCOVER`, `IPV6_DONTFRAG`, `IPV6_MTU`):
/// `EMSGSIZE`, or how the datagram leaves (see
/// [`SocketOptions::datagram_shape`]).
pub(crate) fn check_size(
    options: &SocketOptions,
    dest: SocketAddr,
    len: usize,
    proto: DatagramProto,
    mtus: Mtus,
) -> io::Result<DatagramShape> {
    let (ip_header, v6) = if dest.is_ipv6() {
        (40, true)
    } else {
        (20, false)
    };
    let header = match proto {
        DatagramProto::Udp => 8,
        DatagramProto::Ping => 0,
    };
    options.datagram_shape(v6, ip_header + header + len, mtus)
}

/// No address to send to `dest` from: for IPv6, none or all still tentative
/// (Linux's EADDRNOTAVAIL); for IPv4, no address on the way (ENETUNREACH).
fn no_source(dest: IpAddr) -> io::Error {
    errno(if dest.is_ipv6() {
        libc::EADDRNOTAVAIL
    } else {
        libc::ENETUNREACH
    })
}
