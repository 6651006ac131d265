//! Ping sockets: `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)` and its ICMPv6 twin,
//! as Linux has them, so that a program can ping from its stack without raw
//! sockets.
//!
//! A ping socket is a datagram socket (see `engine/udp.rs`) whose datagrams are
//! ICMP echo messages: the program sends an echo request (type 8, or 128 for
//! ICMPv6, code 0; EINVAL otherwise) and receives the echo replies to it. As on
//! Linux, the stack sets the identifier to the socket's own (its "port": chosen
//! at bind, or on first use), computes the checksum, and delivers only replies
//! carrying that identifier. smoltcp's ICMP socket, bound to the identifier,
//! carries them; the stack's automatic echo replies go on as before.

use super::datagram_sets::Group;
use super::udp::{DatagramProto, UdpHandle};
use super::{errno, DatagramShape, Engine, Rings, SocketOptions};
use smoltcp::socket::icmp;
use smoltcp::wire::IpAddress;
use std::io;
use std::net::{IpAddr, SocketAddr};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// smoltcp's rings for a ping socket: a few echo messages of any size.
const RING_BYTES: usize = 2 * 65_536;
const SLOTS: usize = 16;

/// What a ping socket may send: an echo request (ICMP type 8, or ICMPv6 type 128
/// with `v6`), code 0, with its 8-byte header; EINVAL for anything else, as Linux.
pub(crate) fn check_echo_request(data: &[u8], v6: bool) -> io::Result<()> {
    let request = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    if data.len() < 8 || data[0] != request || data[1] != 0 {
        return Err(errno(libc::EINVAL));
    }
    Ok(())
}

impl Engine {
    /// Opens a ping socket bound to `local` (its port is the echo identifier; 0:
    /// one is chosen). Returns the socket and its address.
    pub(crate) fn ping_open(
        &mut self,
        local: SocketAddr,
        options: &SocketOptions,
    ) -> io::Result<(UdpHandle, SocketAddr)> {
        let Rings { rx, tx, lease } = self.rings.rings(RING_BYTES, RING_BYTES);
        let hops = options.hops(self.io.hops(local.ip()));
        let opened = self.open_datagram(DatagramProto::Ping, local, options, |_, ident| {
            let mut socket = icmp::Socket::new(rx.icmp(SLOTS), tx.icmp(SLOTS));
            socket.bind(icmp::Endpoint::Ident(ident)).ok()?;
            socket.set_hop_limit(Some(hops));
            Some(smoltcp::socket::Socket::Icmp(socket))
        });
        self.leased(opened, lease)
    }

    /// Sends the echo request `data` (an ICMP message the program built) to
    /// `dest`, with the socket's identifier, shaped on the wire by `shape`
    /// (its MTU options). Checks done by `udp_send` before.
    pub(super) fn ping_send(
        &mut self,
        handle: UdpHandle,
        dest: IpAddr,
        data: &[u8],
        shape: DatagramShape,
    ) -> io::Result<()> {
        check_echo_request(data, dest.is_ipv6())?;
        let ident = self.udps[&handle].bound.port();
        let socket = self.datagrams.get_mut::<icmp::Socket>(handle);
        match socket.send(data.len(), IpAddress::from(dest)) {
            Ok(out) => {
                out.copy_from_slice(data);
                out[4..6].copy_from_slice(&ident.to_be_bytes());
                // smoltcp re-emits the message from its parsed form, which fills
                // in the checksum.
                let key = (true, ident, SocketAddr::new(dest, 0), data.len());
                self.io.expect_shaped(key, shape);
                Ok(())
            }
            Err(icmp::SendError::BufferFull) => Err(io::ErrorKind::WouldBlock.into()),
            Err(icmp::SendError::Unaddressable) => Err(errno(libc::EINVAL)),
        }
    }

    /// Moves echo replies smoltcp received into the ping sockets' queues.
    pub(super) fn collect_ping(&mut self) {
        let mut arrived = Vec::new();
        for handle in self.datagrams.handles(Group::Ping) {
            let sock = &self.udps[&handle];
            if sock.closing {
                continue;
            }
            let socket = self.datagrams.get_mut::<icmp::Socket>(handle);
            while let Ok((data, from)) = socket.recv() {
                let reply = if sock.is_v6() {
                    ECHO_REPLY_V6
                } else {
                    ECHO_REPLY_V4
                };
                // The identifier matched (smoltcp's filter); requests to us with
                // it are not replies (smoltcp answers those itself).
                let from = SocketAddr::new(IpAddr::from(from), 0);
                let family_ok = sock.is_v6() == from.is_ipv6();
                let peer_ok = sock
                    .connected
                    .is_none_or(|(peer, _)| peer.ip() == from.ip());
                if data.first() == Some(&reply) && family_ok && peer_ok {
                    arrived.push((handle, from, data.to_vec()));
                }
            }
        }
        for (handle, from, data) in arrived {
            self.queue_datagram(handle, from, &data);
        }
    }

    /// Bytes a datagram socket's smoltcp socket still has to send.
    pub(super) fn dgram_send_queue(&self, handle: UdpHandle) -> usize {
        match self.udps.get(&handle).map(|s| s.proto) {
            Some(DatagramProto::Udp) => self
                .datagrams
                .get::<smoltcp::socket::udp::Socket>(handle)
                .send_queue(),
            Some(DatagramProto::Ping) => self.datagrams.get::<icmp::Socket>(handle).send_queue(),
            None => 0,
        }
    }

    pub(super) fn set_dgram_hop_limit(&mut self, handle: UdpHandle, hops: u8) {
        match self.udps.get(&handle).map(|s| s.proto) {
            Some(DatagramProto::Udp) => self
                .datagrams
                .get_mut::<smoltcp::socket::udp::Socket>(handle)
                .set_hop_limit(Some(hops)),
            Some(DatagramProto::Ping) => self
                .datagrams
                .get_mut::<icmp::Socket>(handle)
                .set_hop_limit(Some(hops)),
            None => {}
        }
    }
}
