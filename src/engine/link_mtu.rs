//! The link's MTU, kept at the device boundary instead of inside smoltcp.
//!
//! smoltcp drops an IP packet larger than its device's MTU unless it fragments it
//! itself, which for IPv4 needs 64 KiB of buffer fixed in every interface, and for
//! IPv6 it cannot do at all. So the engine's device tells smoltcp it carries the
//! largest IP packet there is ([`DEVICE_MTU`]): smoltcp builds every packet
//! whole, datagrams of 64 KiB and echo replies to large pings included, still
//! choosing the route and resolving the neighbour, and the boundary cuts what is
//! larger than the link's MTU into fragments on its way to the wire
//! ([`FrameIo::send_oversized`]; looped-back packets stay whole, as on Linux's
//! `lo`). Nothing is kept between packets.
//!
//! TCP must not rely on that: smoltcp sizes its segments from the device's MTU
//! and the peer's MSS option, so the MSS option of every SYN is lowered to what
//! the link carries, on the way out (what the peer may send us) and on the way in
//! (what smoltcp may send the peer): [`clamp_mss`]. A segment that still does not
//! fit (the MTU went down under an open connection) leaves in fragments.
//!
//! IPv6 packets keep to IPv6's MTU ([`FrameIo::ip_mtu`]): a router
//! advertisement may lower it below the link's, as Linux's `mtu6`; a new link
//! MTU sets both.

use super::{frames, ipv4_frag, ipv6_frag, DatagramShape, FrameIo};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
};
use std::net::SocketAddr;

/// The MTU smoltcp's device claims (Ethernet header included): room for an IPv6
/// packet with the largest payload, which is also more than any IPv4 packet.
pub(super) const DEVICE_MTU: usize = ETHERNET_HEADER + IPV6_HEADER + 65_535;

const ETHERNET_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const TCP_HEADER: usize = 20;

/// The TCP option that carries the MSS, and its length.
const MSS_OPTION: u8 = 2;
const MSS_OPTION_LEN: usize = 4;

/// What tells a datagram apart on its way through smoltcp
/// ([`frames::datagram_key`]): whether it is an echo request, its source port
/// (or echo identifier), destination and length.
pub(super) type ShapeKey = (bool, u16, SocketAddr, usize);

/// How many shaped datagrams may wait in smoltcp's rings (beyond, the oldest
/// one leaves as smoltcp builds it).
const MAX_SHAPED: usize = 256;

impl FrameIo {
    /// Notes that the datagram `key` names ([`ShapeKey`]), just queued in
    /// smoltcp, leaves shaped by `shape`. smoltcp 0.14 hands a datagram's
    /// metadata to the device for IPv4 UDP packets only, so the boundary finds
    /// the datagram by what it carries instead.
    pub(super) fn expect_shaped(&mut self, key: ShapeKey, shape: DatagramShape) {
        if shape == DatagramShape::default() {
            return;
        }
        if self.shaped.len() >= MAX_SHAPED {
            self.shaped.pop_front();
        }
        self.shaped.push_back((key, shape));
    }

    /// The shape of the datagram in `frame`, if [`Self::expect_shaped`] noted
    /// it (and forgets it: the next copy is another datagram).
    pub(super) fn shape_of(&mut self, frame: &[u8]) -> DatagramShape {
        if self.shaped.is_empty() {
            return DatagramShape::default();
        }
        let Some(key) = frames::datagram_key(frame) else {
            return DatagramShape::default();
        };
        match self.shaped.iter().position(|&(k, _)| k == key) {
            Some(at) => self
                .shaped
                .remove(at)
                .map_or_else(Default::default, |(_, s)| s),
            None => DatagramShape::default(),
        }
    }

    /// The MTU the packet in `frame` leaves by: IPv6's for an IPv6 packet (a
    /// router may have advertised less than the link carries), else the
    /// link's.
    pub(super) fn ip_mtu(&self, frame: &[u8]) -> usize {
        let ipv6 = frame.get(12..14) == Some(&[0x86, 0xdd][..]);
        if ipv6 {
            self.mtu6
        } else {
            self.mtu
        }
    }

    /// The MTU a packet of a datagram shaped by `shape` leaves by (an IPv6
    /// datagram's socket may keep to the device's with `PROBE`, else
    /// [`Self::ip_mtu`]), and the size of its fragments beyond it (its
    /// `IPV6_MTU` where lower).
    pub(super) fn shaped_mtu(&self, frame: &[u8], shape: DatagramShape) -> (usize, usize) {
        let ipv6 = frame.get(12..14) == Some(&[0x86, 0xdd][..]);
        let mtu = if ipv6 && shape.mtu != 0 {
            shape.mtu as usize
        } else {
            self.ip_mtu(frame)
        };
        match shape.fragment_size as usize {
            0 => (mtu, mtu),
            size => (mtu, size.min(mtu)),
        }
    }

    /// Clears DF on the IPv4 packet in `frame` (a socket with
    /// `IP_PMTUDISC_DONT`, `INTERFACE` or `OMIT`, as Linux sends those), with
    /// an identification of its own as RFC 6864 asks of a packet routers may
    /// fragment (smoltcp writes 0).
    pub(super) fn clear_dont_fragment(&mut self, frame: &mut [u8]) {
        let Ok(mut eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return;
        }
        let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else {
            return;
        };
        if !ip.dont_frag() {
            return;
        }
        ip.set_dont_frag(false);
        ip.set_ident(self.next_fragment_id as u16);
        self.next_fragment_id = self.next_fragment_id.wrapping_add(1);
        ip.fill_checksum();
    }

    /// Puts a frame longer than `mtu` in the outbox as fragments of it, or
    /// drops it if it is no IP packet that can be cut (an IPv6 packet with
    /// extension headers: the stack makes none that large).
    pub(super) fn send_oversized(&mut self, frame: Vec<u8>, mtu: usize) {
        let ident = self.next_fragment_id;
        self.next_fragment_id = ident.wrapping_add(1);
        for packet in cut(&frame, mtu, ident) {
            let mut piece = self.pool.pop().unwrap_or_default();
            piece.clear();
            piece.extend_from_slice(&frame[..ETHERNET_HEADER]);
            piece.extend_from_slice(&packet);
            self.outbox.push_back(piece);
        }
        self.recycle(frame);
    }
}

/// The IP packets (without Ethernet header) that carry the packet in `frame` on
/// a link of `mtu`, numbered `ident`; none if it cannot be cut.
fn cut(frame: &[u8], mtu: usize, ident: u32) -> Vec<Vec<u8>> {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Vec::new();
    };
    match eth.ethertype() {
        // IPv4's identification has 16 bits.
        EthernetProtocol::Ipv4 => ipv4_frag::fragments(eth.payload(), mtu, ident as u16),
        EthernetProtocol::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else {
                return Vec::new();
            };
            let next = ip.next_header();
            if !matches!(next, IpProtocol::Udp | IpProtocol::Tcp | IpProtocol::Icmpv6) {
                return Vec::new();
            }
            let (src, dst, hop_limit) = (ip.src_addr(), ip.dst_addr(), ip.hop_limit());
            ipv6_frag::fragments(src, dst, hop_limit, next, ip.payload(), mtu, ident)
        }
        _ => Vec::new(),
    }
}

/// Where the TCP segment of `frame` starts, its addresses, and the largest MSS
/// a link of `mtu` allows for it; `None` unless `frame` is a SYN over IPv4 or
/// IPv6 (without extension headers) whose header has options.
fn syn(frame: &[u8], mtu: usize) -> Option<(usize, IpAddress, IpAddress, u16)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (start, src, dst, limit) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            let start = ETHERNET_HEADER + usize::from(ip.header_len());
            let limit = mtu.saturating_sub(IPV4_HEADER + TCP_HEADER);
            (start, ip.src_addr().into(), ip.dst_addr().into(), limit)
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            let limit = mtu.saturating_sub(IPV6_HEADER + TCP_HEADER);
            let start = ETHERNET_HEADER + IPV6_HEADER;
            (start, ip.src_addr().into(), ip.dst_addr().into(), limit)
        }
        _ => return None,
    };
    let tcp = TcpPacket::new_checked(frame.get(start..)?).ok()?;
    let limit = u16::try_from(limit).unwrap_or(u16::MAX);
    (tcp.syn() && usize::from(tcp.header_len()) > TCP_HEADER).then_some((start, src, dst, limit))
}

/// Where the MSS value sits in the TCP header `tcp` and the value, if the header
/// carries the option.
fn mss_option(tcp: &[u8]) -> Option<(usize, u16)> {
    let header = usize::from(tcp.get(12)? >> 4) * 4;
    let mut at = TCP_HEADER;
    while at < header.min(tcp.len()) {
        match tcp[at] {
            0 => return None,
            1 => at += 1,
            kind => {
                let len = usize::from(*tcp.get(at + 1)?);
                if len < 2 {
                    return None;
                }
                if kind == MSS_OPTION && len == MSS_OPTION_LEN {
                    let value = u16::from_be_bytes([*tcp.get(at + 2)?, *tcp.get(at + 3)?]);
                    return Some((at + 2, value));
                }
                at += len;
            }
        }
    }
    None
}

/// Whether `frame` is a SYN whose MSS option is more than a link of `mtu`
/// carries.
pub(super) fn mss_too_large(frame: &[u8], mtu: usize) -> bool {
    syn(frame, mtu).is_some_and(|(start, _, _, limit)| {
        mss_option(&frame[start..]).is_some_and(|(_, mss)| mss > limit)
    })
}

/// Lowers the MSS option of the SYN in `frame` to what a link of `mtu` carries
/// (fixing the checksum); any other frame is left alone. True if it changed.
pub(super) fn clamp_mss(frame: &mut [u8], mtu: usize) -> bool {
    let Some((start, src, dst, limit)) = syn(frame, mtu) else {
        return false;
    };
    let Some((at, mss)) = mss_option(&frame[start..]) else {
        return false;
    };
    if mss <= limit {
        return false;
    }
    frame[start + at..start + at + 2].copy_from_slice(&limit.to_be_bytes());
    TcpPacket::new_unchecked(&mut frame[start..]).fill_checksum(&src, &dst);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, Ipv4Address, Ipv4Repr, Ipv6Address, Ipv6Repr, TcpControl,
        TcpRepr, TcpSeqNumber,
    };

    fn ethernet(ethertype: EthernetProtocol, packet: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; ETHERNET_HEADER + packet.len()];
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
        frame[ETHERNET_HEADER..].copy_from_slice(packet);
        frame
    }

    /// A SYN (or, with `ack`, a SYN-ACK) with the MSS option `mss`, over IPv4 or
    /// IPv6.
    fn syn_frame(v6: bool, mss: u16, ack: bool) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 1,
            dst_port: 2,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(1),
            ack_number: ack.then_some(TcpSeqNumber(9)),
            window_len: 100,
            window_scale: Some(2),
            max_seg_size: Some(mss),
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let (src, dst): (IpAddress, IpAddress) = if v6 {
            (
                Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).into(),
                Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).into(),
            )
        } else {
            (
                Ipv4Address::new(10, 0, 0, 1).into(),
                Ipv4Address::new(10, 0, 0, 2).into(),
            )
        };
        let mut segment = vec![0u8; tcp.buffer_len()];
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut segment[..]),
            &src,
            &dst,
            &ChecksumCapabilities::default(),
        );
        let mut packet;
        match (src, dst) {
            (IpAddress::Ipv4(s), IpAddress::Ipv4(d)) => {
                packet = vec![0u8; IPV4_HEADER + segment.len()];
                Ipv4Repr {
                    src_addr: s,
                    dst_addr: d,
                    next_header: IpProtocol::Tcp,
                    payload_len: segment.len(),
                    hop_limit: 64,
                }
                .emit(
                    &mut Ipv4Packet::new_unchecked(&mut packet[..]),
                    &ChecksumCapabilities::default(),
                );
                packet[IPV4_HEADER..].copy_from_slice(&segment);
                ethernet(EthernetProtocol::Ipv4, &packet)
            }
            (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) => {
                packet = vec![0u8; IPV6_HEADER + segment.len()];
                Ipv6Repr {
                    src_addr: s,
                    dst_addr: d,
                    next_header: IpProtocol::Tcp,
                    payload_len: segment.len(),
                    hop_limit: 64,
                }
                .emit(&mut Ipv6Packet::new_unchecked(&mut packet[..]));
                packet[IPV6_HEADER..].copy_from_slice(&segment);
                ethernet(EthernetProtocol::Ipv6, &packet)
            }
            _ => unreachable!(),
        }
    }

    /// The MSS option of `frame` and whether its TCP checksum holds.
    fn mss_and_checksum(frame: &[u8], v6: bool) -> (u16, bool) {
        let start = ETHERNET_HEADER + if v6 { IPV6_HEADER } else { IPV4_HEADER };
        let (src, dst): (IpAddress, IpAddress) = if v6 {
            let ip = Ipv6Packet::new_checked(&frame[ETHERNET_HEADER..]).unwrap();
            (ip.src_addr().into(), ip.dst_addr().into())
        } else {
            let ip = Ipv4Packet::new_checked(&frame[ETHERNET_HEADER..]).unwrap();
            (ip.src_addr().into(), ip.dst_addr().into())
        };
        let tcp = TcpPacket::new_checked(&frame[start..]).unwrap();
        let repr = TcpRepr::parse(&tcp, &src, &dst, &ChecksumCapabilities::ignored()).unwrap();
        (repr.max_seg_size.unwrap(), tcp.verify_checksum(&src, &dst))
    }

    #[test]
    fn syn_mss_options_are_lowered_to_the_link_both_families() {
        for (v6, limit) in [(false, 1460), (true, 1440)] {
            for ack in [false, true] {
                let mut frame = syn_frame(v6, 65_000, ack);
                assert!(mss_too_large(&frame, 1500));
                assert!(clamp_mss(&mut frame, 1500));
                assert_eq!(mss_and_checksum(&frame, v6), (limit, true), "v6 {v6}");
                assert!(!mss_too_large(&frame, 1500));
                assert!(!clamp_mss(&mut frame, 1500), "already small enough");
            }
            let mut small = syn_frame(v6, 536, false);
            assert!(!clamp_mss(&mut small, 1500));
            assert_eq!(mss_and_checksum(&small, v6), (536, true));
        }
    }

    #[test]
    fn frames_other_than_syns_are_left_alone() {
        let mut frame = syn_frame(false, 65_000, false);
        // The same segment without SYN.
        let flags = ETHERNET_HEADER + IPV4_HEADER + 13;
        frame[flags] &= !0x02;
        assert!(!mss_too_large(&frame, 1500));
        assert!(!clamp_mss(&mut frame, 1500));
        assert!(!clamp_mss(&mut [0u8; 60], 1500));
    }

    #[test]
    fn oversized_packets_are_cut_to_the_mtu_and_others_dropped() {
        let data = vec![5u8; 4000];
        let mut packet = vec![0u8; IPV6_HEADER + data.len()];
        Ipv6Repr {
            src_addr: Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
            dst_addr: Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
            next_header: IpProtocol::Udp,
            payload_len: data.len(),
            hop_limit: 64,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut packet[..]));
        packet[IPV6_HEADER..].copy_from_slice(&data);
        let frame = ethernet(EthernetProtocol::Ipv6, &packet);
        let pieces = cut(&frame, 1500, 3);
        assert_eq!(pieces.len(), 3);
        assert!(pieces.iter().all(|p| p.len() <= 1500));
        // With a Hop-by-Hop header the packet cannot be cut here.
        Ipv6Packet::new_unchecked(&mut packet[..]).set_next_header(IpProtocol::HopByHop);
        assert!(cut(&ethernet(EthernetProtocol::Ipv6, &packet), 1500, 3).is_empty());
        assert!(cut(&ethernet(EthernetProtocol::Arp, &[0; 2000]), 1500, 3).is_empty());
    }
}
