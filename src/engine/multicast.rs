//! Multicast datagrams the stack sends: their own hop limit, and a copy for the
//! stack's own members of the group.
//!
//! Linux gives a multicast datagram a hop limit of its own (`IP_MULTICAST_TTL`,
//! `IPV6_MULTICAST_HOPS`, default 1, where unicast has `IP_TTL`, default 64), and
//! delivers a copy to the host's own members of the group (`IP_MULTICAST_LOOP`,
//! `IPV6_MULTICAST_LOOP`, on by default). smoltcp's UDP socket has one hop limit
//! for all it sends, read when a datagram leaves its ring (too late to tell one
//! datagram from the next), and loops nothing back.
//!
//! A multicast datagram needs no neighbour resolution: its Ethernet address comes
//! from the group. So the engine builds its frames here, with the hop limit of the
//! socket that sent it, and puts them straight in the outbox; the copy for the
//! stack's own sockets is queued on them as if it had arrived. One consequence: a
//! socket's multicast datagrams may leave before unicast datagrams it sent just
//! before them that still wait in smoltcp's ring (different destinations, which
//! UDP does not order anyway).

use super::{errno, DatagramShape, Engine, UdpHandle};
use crate::cmd::{LinkKind, NextHop};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, UdpPacket, UdpRepr,
};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// Bytes of the Ethernet, IPv4 and IPv6 headers.
const ETHERNET_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;

impl Engine {
    /// Sends `data` from `source` (the socket's port) to the multicast `dest`,
    /// found through `hop`: out on the link with the socket's multicast hop limit,
    /// and to the stack's own members of the group if the socket loops multicast
    /// back. `WouldBlock` when the outbox is full.
    pub(super) fn udp_send_multicast(
        &mut self,
        handle: UdpHandle,
        source: IpAddr,
        dest: SocketAddr,
        hop: NextHop,
        data: &[u8],
        shape: DatagramShape,
    ) -> io::Result<()> {
        let sock = self.udps.get(&handle).ok_or_else(|| errno(libc::EBADF))?;
        let (hop_limit, looped) = sock.options.multicast(dest.ip());
        let from = SocketAddr::new(source, sock.bound.port());
        let on_wire = self
            .config
            .link_by_index(hop.dev)
            .is_some_and(|link| link.kind == LinkKind::Ether);
        // A hop limit of 0 goes out as it is: RFC 1112 would keep such a datagram
        // on its host, but Linux (6.18, the kernel backend's) sends it.
        if on_wire {
            if self.io.outbox_full() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let datagram = udp_datagram(from, dest, data);
            if let Some(packet) = ip_packet(from.ip(), dest.ip(), hop_limit, &datagram) {
                let mut frame = self.io.pool.pop().unwrap_or_default();
                write_ethernet(&mut frame, self.io.mac, group_mac(dest.ip()), &packet);
                // Beyond the link's MTU (or the socket's `IPV6_MTU`), it is cut
                // into fragments on the way out.
                self.io.route_shaped(frame, shape);
            }
        }
        // Linux loops a copy back from the device the datagram goes out of; what
        // goes out of `lo` comes back anyway.
        let back = if on_wire { looped } else { self.io.lo_up };
        if back && self.iface.has_multicast_group(dest.ip()) {
            self.deliver_udp(dest.port(), dest.ip(), from, data);
        }
        Ok(())
    }
}

/// The Ethernet address a multicast group is sent to (RFC 1112, section 6.4, for
/// IPv4; RFC 2464, section 7, for IPv6).
fn group_mac(group: IpAddr) -> EthernetAddress {
    match group {
        IpAddr::V4(g) => {
            let o = g.octets();
            EthernetAddress([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
        }
        IpAddr::V6(g) => {
            let o = g.octets();
            EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
        }
    }
}

/// The UDP datagram (header and `data`) from `src` to `dst`, checksum filled in.
fn udp_datagram(src: SocketAddr, dst: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut datagram = vec![0u8; 8 + data.len()];
    UdpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
    }
    .emit(
        &mut UdpPacket::new_unchecked(&mut datagram[..]),
        &IpAddress::from(src.ip()),
        &IpAddress::from(dst.ip()),
        data.len(),
        |payload| payload.copy_from_slice(data),
        &ChecksumCapabilities::default(),
    );
    datagram
}

/// The IP packet that carries the UDP `datagram` from `src` to `dst` (`None` if
/// the families differ, which the caller checked).
fn ip_packet(src: IpAddr, dst: IpAddr, hop_limit: u8, datagram: &[u8]) -> Option<Vec<u8>> {
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let repr = Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::Udp,
                payload_len: datagram.len(),
                hop_limit,
            };
            let mut packet = vec![0u8; IPV4_HEADER + datagram.len()];
            repr.emit(
                &mut Ipv4Packet::new_unchecked(&mut packet[..]),
                &ChecksumCapabilities::default(),
            );
            packet[IPV4_HEADER..].copy_from_slice(datagram);
            Some(packet)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let repr = Ipv6Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::Udp,
                payload_len: datagram.len(),
                hop_limit,
            };
            let mut packet = vec![0u8; IPV6_HEADER + datagram.len()];
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut packet[..]));
            packet[IPV6_HEADER..].copy_from_slice(datagram);
            Some(packet)
        }
        _ => None,
    }
}

/// `packet` behind an Ethernet header from `src` to `dst`, into `frame`.
fn write_ethernet(frame: &mut Vec<u8>, src: EthernetAddress, dst: EthernetAddress, packet: &[u8]) {
    frame.clear();
    frame.resize(ETHERNET_HEADER + packet.len(), 0);
    let ethertype = match packet.first().map(|b| b >> 4) {
        Some(6) => EthernetProtocol::Ipv6,
        _ => EthernetProtocol::Ipv4,
    };
    let mut ethernet = EthernetFrame::new_unchecked(&mut frame[..]);
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    }
    .emit(&mut ethernet);
    ethernet.payload_mut().copy_from_slice(packet);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_addresses_map_to_ethernet_as_the_rfcs_say() {
        assert_eq!(
            group_mac("239.129.2.3".parse().unwrap()),
            EthernetAddress([0x01, 0x00, 0x5e, 0x01, 0x02, 0x03])
        );
        assert_eq!(
            group_mac("ff02::1:ff00:1234".parse().unwrap()),
            EthernetAddress([0x33, 0x33, 0xff, 0x00, 0x12, 0x34])
        );
    }

    #[test]
    fn a_datagram_that_fits_is_one_packet_with_the_hop_limit_asked() {
        let src = SocketAddr::from(([10, 0, 0, 1], 5000));
        let dst = SocketAddr::from(([239, 1, 2, 3], 5353));
        let datagram = udp_datagram(src, dst, b"hello");
        let packet = ip_packet(src.ip(), dst.ip(), 1, &datagram).unwrap();
        let ip = Ipv4Packet::new_checked(&packet[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.hop_limit(), 1);
        assert_eq!(ip.next_header(), IpProtocol::Udp);
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(udp.verify_checksum(&src.ip().into(), &dst.ip().into()));
        assert_eq!(udp.payload(), b"hello");
    }

    #[test]
    fn frames_carry_the_family_of_their_packet() {
        let src = SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, 1], 1));
        let dst = SocketAddr::from(([0xff02, 0, 0, 0, 0, 0, 0, 0x77], 2));
        let datagram = udp_datagram(src, dst, b"six");
        let packet = ip_packet(src.ip(), dst.ip(), 1, &datagram).unwrap();
        let mut frame = Vec::new();
        write_ethernet(
            &mut frame,
            EthernetAddress([2, 0, 0, 0, 0, 1]),
            group_mac(dst.ip()),
            &packet,
        );
        let ethernet = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(ethernet.ethertype(), EthernetProtocol::Ipv6);
        assert_eq!(
            ethernet.dst_addr(),
            EthernetAddress([0x33, 0x33, 0, 0, 0, 0x77])
        );
        let ip = Ipv6Packet::new_checked(ethernet.payload()).unwrap();
        assert_eq!(ip.hop_limit(), 1);
    }
}
