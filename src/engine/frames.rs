//! Looks inside Ethernet frames before smoltcp sees them.
//!
//! smoltcp lacks three things a BSD stack has (loopback, a listen backlog, and a way
//! to learn that ARP went unanswered); the engine adds them by classifying frames at
//! the device boundary. These are read-only views over the frame bytes: nothing here
//! allocates or copies a frame.

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv6Packet, TcpPacket,
};
use std::net::{IpAddr, SocketAddr};

/// An incoming TCP segment that opens a connection (SYN without ACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Syn {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// Returns the connection-opening segment carried by `frame`, if it is one.
pub(crate) fn tcp_syn(frame: &[u8]) -> Option<Syn> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (src_ip, dst_ip, proto, payload): (IpAddr, IpAddr, IpProtocol, &[u8]) =
        match eth.ethertype() {
            EthernetProtocol::Ipv4 => {
                let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
                if ip.more_frags() || ip.frag_offset() != 0 {
                    return None;
                }
                (
                    IpAddr::V4(ip.src_addr()),
                    IpAddr::V4(ip.dst_addr()),
                    ip.next_header(),
                    ip.payload(),
                )
            }
            EthernetProtocol::Ipv6 => {
                let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
                (
                    IpAddr::V6(ip.src_addr()),
                    IpAddr::V6(ip.dst_addr()),
                    ip.next_header(),
                    ip.payload(),
                )
            }
            _ => return None,
        };
    if proto != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(payload).ok()?;
    if !tcp.syn() || tcp.ack() || tcp.rst() {
        return None;
    }
    Some(Syn {
        src: SocketAddr::new(src_ip, tcp.src_port()),
        dst: SocketAddr::new(dst_ip, tcp.dst_port()),
    })
}

/// The ARP packet carried by `frame`, if it is one.
fn arp(frame: &[u8]) -> Option<ArpRepr> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Arp {
        return None;
    }
    ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()
}

/// The sender of an ARP packet: proof that this IPv4 address has a live neighbour.
pub(crate) fn arp_sender(frame: &[u8]) -> Option<Ipv4Address> {
    match arp(frame)? {
        ArpRepr::EthernetIpv4 {
            source_protocol_addr,
            ..
        } => Some(source_protocol_addr),
        _ => None,
    }
}

/// An ARP request `frame` asks who has an address; returns that address and the asker.
pub(crate) fn arp_request(frame: &[u8]) -> Option<(Ipv4Address, Ipv4Address)> {
    match arp(frame)? {
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } => Some((target_protocol_addr, source_protocol_addr)),
        _ => None,
    }
}

/// Writes into `buf` the ARP reply in which `owner_mac` claims `owner_ip` towards
/// `asker_ip`, and returns its length. Used to answer our own requests for local
/// addresses, which is how loopback traffic finds its way back in.
pub(crate) fn write_arp_reply(
    buf: &mut Vec<u8>,
    owner_mac: EthernetAddress,
    owner_ip: Ipv4Address,
    asker_ip: Ipv4Address,
) {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: owner_mac,
        source_protocol_addr: owner_ip,
        target_hardware_addr: owner_mac,
        target_protocol_addr: asker_ip,
    };
    let eth = EthernetRepr {
        src_addr: owner_mac,
        dst_addr: owner_mac,
        ethertype: EthernetProtocol::Arp,
    };
    buf.clear();
    buf.resize(eth.buffer_len() + arp.buffer_len(), 0);
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
}

/// The destination MAC of a frame (None if it is too short to be Ethernet).
pub(crate) fn dst_mac(frame: &[u8]) -> Option<EthernetAddress> {
    EthernetFrame::new_checked(frame)
        .ok()
        .map(|eth| eth.dst_addr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_reply_round_trips_through_the_views() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let mut buf = Vec::new();
        let owner = Ipv4Address::new(127, 0, 0, 1);
        let asker = Ipv4Address::new(10, 0, 0, 1);
        write_arp_reply(&mut buf, mac, owner, asker);
        assert_eq!(arp_sender(&buf), Some(owner));
        assert_eq!(arp_request(&buf), None);
        assert_eq!(dst_mac(&buf), Some(mac));
        assert_eq!(tcp_syn(&buf), None);
    }

    #[test]
    fn garbage_is_not_classified() {
        for len in 0..80 {
            let frame = vec![0xffu8; len];
            assert_eq!(tcp_syn(&frame), None);
            assert_eq!(arp_sender(&frame), None);
        }
    }
}
