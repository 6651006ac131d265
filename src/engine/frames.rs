//! Looks inside Ethernet frames before smoltcp sees them, and writes the few that
//! the engine makes itself.
//!
//! smoltcp lacks things a BSD stack has (loopback, a listen backlog, a way to learn
//! that ARP went unanswered, announcing a new hardware address and hearing a
//! neighbour's); the engine adds them by classifying frames at the device boundary.
//! The classifiers are read-only views over the frame bytes: they neither allocate
//! nor copy. The writers fill a buffer the caller owns (usually a recycled one):
//! ARP replies and neighbour advertisements for loopback, gratuitous ARP and
//! unsolicited advertisements for a MAC change.

use super::flow_hash::FlowMap;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Message, Icmpv4Packet, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpAddress,
    IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address, Ipv6Packet, Ipv6Repr,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress, TcpControl, TcpOption, TcpPacket, TcpRepr,
    TcpSeqNumber, UdpPacket,
};
use std::net::{IpAddr, SocketAddr};

/// The endpoints of an incoming TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// An incoming segment that opens a connection (SYN without ACK).
pub(crate) type Syn = Segment;

/// What the engine looks at in an incoming TCP segment: read once per frame
/// (the SYN, RST, FIN and hole checks all use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpView {
    pub segment: Segment,
    pub syn: bool,
    pub ack: bool,
    pub rst: bool,
    pub fin: bool,
    pub seq: TcpSeqNumber,
    /// The acknowledgement number, when the ACK flag is set.
    pub ack_number: Option<TcpSeqNumber>,
    /// The window field as sent (not scaled).
    pub window: u16,
    /// The header carries options.
    pub options: bool,
    pub data_len: usize,
    /// A SYN's window scale option (RFC 7323): the shift it offers.
    pub window_scale: Option<u8>,
    /// A SYN's SACK-permitted option (RFC 2018).
    pub sack_permitted: bool,
    /// The SACK blocks (RFC 2018) the segment carries, as sent: four at most
    /// (smoltcp reads three; Linux sends four without timestamps).
    pub sacks: [Option<(u32, u32)>; 4],
}

impl TcpView {
    /// A segment that opens a connection (SYN without ACK).
    pub(crate) fn opens(&self) -> bool {
        self.syn && !self.ack && !self.rst
    }

    /// A segment that carries data (neither SYN nor RST).
    pub(crate) fn carries_data(&self) -> bool {
        !self.syn && !self.rst && self.data_len > 0
    }
}

/// The TCP segment carried by `frame`, if it is a whole one.
pub(crate) fn tcp_view(frame: &[u8]) -> Option<TcpView> {
    let (src_ip, dst_ip, proto, payload, fragment) = ip_parts(frame)?;
    if fragment || proto != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(payload).ok()?;
    let options = (tcp.header_len() > 20)
        .then(|| tcp.options_summary().ok())
        .flatten()
        .unwrap_or_default();
    Some(TcpView {
        segment: Segment {
            src: SocketAddr::new(src_ip, tcp.src_port()),
            dst: SocketAddr::new(dst_ip, tcp.dst_port()),
        },
        syn: tcp.syn(),
        ack: tcp.ack(),
        rst: tcp.rst(),
        fin: tcp.fin(),
        seq: tcp.seq_number(),
        ack_number: tcp.ack().then(|| tcp.ack_number()),
        window: tcp.window_len(),
        options: usize::from(tcp.header_len()) > 20,
        data_len: tcp.payload().len(),
        window_scale: syn_window_scale(&tcp),
        sack_permitted: tcp.syn() && options.sack_permitted,
        sacks: sack_blocks(&tcp),
    })
}

/// The blocks of a segment's SACK option (RFC 2018), up to four.
fn sack_blocks(tcp: &TcpPacket<&[u8]>) -> [Option<(u32, u32)>; 4] {
    let mut blocks = [None; 4];
    for option in TcpOptions(tcp.options()).map_while(Result::ok) {
        if option[0] == 5 {
            for (block, bytes) in blocks.iter_mut().zip(option[2..].chunks_exact(8)) {
                let left = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"));
                let right = u32::from_be_bytes(bytes[4..].try_into().expect("4 bytes"));
                *block = Some((left, right));
            }
        }
    }
    blocks
}

/// The options of a TCP header, each with its kind and length bytes (no
/// no-operations; the end-of-list ends them), or an error for one whose
/// length runs past the header.
pub(crate) struct TcpOptions<'a>(pub &'a [u8]);

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<&'a [u8], ()>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.0.first() == Some(&1) {
            self.0 = &self.0[1..];
        }
        match self.0.first()? {
            0 => None,
            _ => {
                let len = usize::from(*self.0.get(1).unwrap_or(&0));
                if len < 2 || len > self.0.len() {
                    self.0 = &[];
                    return Some(Err(()));
                }
                let (option, rest) = self.0.split_at(len);
                self.0 = rest;
                Some(Ok(option))
            }
        }
    }
}

/// The window scale a SYN offers (RFC 7323), capped at 14 as the RFC says a
/// receiver treats larger shifts.
fn syn_window_scale(tcp: &TcpPacket<&[u8]>) -> Option<u8> {
    if !tcp.syn() || tcp.header_len() <= 20 {
        return None;
    }
    let mut options = tcp.options();
    while !options.is_empty() {
        let Ok((rest, option)) = TcpOption::parse(options) else {
            return None;
        };
        match option {
            TcpOption::WindowScale(shift) => return Some(shift.min(14)),
            TcpOption::EndOfList => return None,
            _ => {}
        }
        options = rest;
    }
    None
}

/// Returns the connection-opening segment carried by `frame`, if it is one.
#[cfg(test)]
pub(crate) fn tcp_syn(frame: &[u8]) -> Option<Syn> {
    tcp_view(frame).filter(TcpView::opens).map(|t| t.segment)
}

/// How [`write_tcp_part`] rewrites a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpPart {
    /// The headers alone: no data, flags and numbers unchanged.
    WithoutData,
    /// The data, without the FIN flag.
    DataWithoutFin,
    /// The FIN alone, at the sequence number that follows the data.
    FinAfterData,
}

/// Writes into `buf` part of the TCP segment `frame` carries (see [`TcpPart`]):
/// the same Ethernet, IP and TCP headers (acknowledgement number, window,
/// options), with the IP length and the checksums fixed. False (and `buf` left
/// empty) if `frame` is not a whole TCP segment over IPv4, or IPv6 without
/// extension headers.
pub(crate) fn write_tcp_part(buf: &mut Vec<u8>, frame: &[u8], part: TcpPart) -> bool {
    buf.clear();
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let l3 = eth.payload();
    let (src, dst, ip_header, tcp_bytes): (IpAddress, IpAddress, usize, &[u8]) =
        match eth.ethertype() {
            EthernetProtocol::Ipv4 => {
                let Ok(ip) = Ipv4Packet::new_checked(l3) else {
                    return false;
                };
                if ip.more_frags() || ip.frag_offset() != 0 || ip.next_header() != IpProtocol::Tcp {
                    return false;
                }
                let header = usize::from(ip.header_len());
                (
                    ip.src_addr().into(),
                    ip.dst_addr().into(),
                    header,
                    ip.payload(),
                )
            }
            EthernetProtocol::Ipv6 => {
                let Ok(ip) = Ipv6Packet::new_checked(l3) else {
                    return false;
                };
                if ip.next_header() != IpProtocol::Tcp {
                    return false;
                }
                (ip.src_addr().into(), ip.dst_addr().into(), 40, ip.payload())
            }
            _ => return false,
        };
    let Ok(tcp) = TcpPacket::new_checked(tcp_bytes) else {
        return false;
    };
    let data_len = tcp.payload().len();
    let tcp_len = match part {
        TcpPart::DataWithoutFin => tcp_bytes.len(),
        TcpPart::WithoutData | TcpPart::FinAfterData => usize::from(tcp.header_len()),
    };
    let eth_header = frame.len() - l3.len();
    buf.extend_from_slice(&frame[..eth_header + ip_header]);
    buf.extend_from_slice(&tcp_bytes[..tcp_len]);
    let l3 = &mut buf[eth_header..];
    if l3[0] >> 4 == 4 {
        let mut ip = Ipv4Packet::new_unchecked(&mut *l3);
        ip.set_total_len((ip_header + tcp_len) as u16);
        ip.fill_checksum();
    } else {
        Ipv6Packet::new_unchecked(&mut *l3).set_payload_len(tcp_len as u16);
    }
    let mut tcp = TcpPacket::new_unchecked(&mut l3[ip_header..]);
    match part {
        TcpPart::WithoutData => {}
        TcpPart::DataWithoutFin => tcp.set_fin(false),
        TcpPart::FinAfterData => {
            let seq = tcp.seq_number();
            tcp.set_seq_number(seq + data_len);
        }
    }
    tcp.fill_checksum(&src, &dst);
    true
}

/// Writes into `buf` a bare ACK answering the TCP segment `frame` carries, from
/// its destination back to its source (Ethernet addresses swapped: the reply
/// goes back by the hop the segment came from), with `seq`, `ack` and `window`
/// and no options. What a TIME-WAIT record answers with, having no socket for
/// smoltcp to do it. False (and `buf` empty) if `frame` is not a TCP segment.
pub(crate) fn write_tcp_ack_reply(
    buf: &mut Vec<u8>,
    frame: &[u8],
    seq: TcpSeqNumber,
    ack: TcpSeqNumber,
    window: u16,
) -> bool {
    buf.clear();
    let Some((src, dst, proto, l4, fragment)) = ip_parts(frame) else {
        return false;
    };
    let Ok(segment) = TcpPacket::new_checked(l4) else {
        return false;
    };
    if fragment || proto != IpProtocol::Tcp {
        return false;
    }
    let Ok(eth_in) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let tcp = TcpRepr {
        src_port: segment.dst_port(),
        dst_port: segment.src_port(),
        control: TcpControl::None,
        seq_number: seq,
        ack_number: Some(ack),
        window_len: window,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let eth = EthernetRepr {
        src_addr: eth_in.dst_addr(),
        dst_addr: eth_in.src_addr(),
        ethertype: eth_in.ethertype(),
    };
    let caps = ChecksumCapabilities::default();
    let (ours, theirs): (IpAddress, IpAddress) = (dst.into(), src.into());
    let ip_len = match (ours, theirs) {
        (IpAddress::Ipv4(_), IpAddress::Ipv4(_)) => 20,
        (IpAddress::Ipv6(_), IpAddress::Ipv6(_)) => 40,
        _ => return false,
    };
    buf.resize(eth.buffer_len() + ip_len + tcp.buffer_len(), 0);
    let mut out = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut out);
    let l3 = out.payload_mut();
    if let (IpAddress::Ipv4(s), IpAddress::Ipv4(d)) = (ours, theirs) {
        let ip = Ipv4Repr {
            src_addr: s,
            dst_addr: d,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut *l3), &caps);
    } else if let (IpAddress::Ipv6(s), IpAddress::Ipv6(d)) = (ours, theirs) {
        let ip = Ipv6Repr {
            src_addr: s,
            dst_addr: d,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut *l3));
    }
    tcp.emit(
        &mut TcpPacket::new_unchecked(&mut l3[ip_len..]),
        &ours,
        &theirs,
        &caps,
    );
    true
}

/// The IPv4 destination of `frame`, if it carries an IPv4 packet.
pub(crate) fn ipv4_dst(frame: &[u8]) -> Option<Ipv4Address> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    Some(Ipv4Packet::new_checked(eth.payload()).ok()?.dst_addr())
}

/// The destination address of an IPv4 or IPv6 packet.
pub(crate) fn ip_dst(frame: &[u8]) -> Option<IpAddr> {
    ip_parts(frame).map(|(_, dst, ..)| dst)
}

/// What tells a datagram of a socket apart in `frame` (whole, not a fragment):
/// a UDP datagram's source port, destination and payload length, or an echo
/// request's identifier, destination (port 0) and length (the whole ICMP
/// message, as a ping socket sends it), with `true` for the echo request.
pub(crate) fn datagram_key(frame: &[u8]) -> Option<(bool, u16, SocketAddr, usize)> {
    let (_, dst, protocol, payload, fragment) = ip_parts(frame)?;
    if fragment {
        return None;
    }
    match protocol {
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(payload).ok()?;
            let len = usize::from(udp.len()).checked_sub(8)?;
            Some((
                false,
                udp.src_port(),
                SocketAddr::new(dst, udp.dst_port()),
                len,
            ))
        }
        IpProtocol::Icmp | IpProtocol::Icmpv6 => {
            let request = if dst.is_ipv6() { 128 } else { 8 };
            if payload.len() < 8 || payload[0] != request {
                return None;
            }
            let ident = u16::from_be_bytes([payload[4], payload[5]]);
            Some((true, ident, SocketAddr::new(dst, 0), payload.len()))
        }
        _ => None,
    }
}

/// The source address of an IP packet in `frame`.
pub(crate) fn ip_src(frame: &[u8]) -> Option<IpAddr> {
    ip_parts(frame).map(|(src, ..)| src)
}

/// The IP header fields of `frame`: source, destination, protocol, payload, and
/// whether it is a fragment (whose payload is not a whole transport header).
fn ip_parts(frame: &[u8]) -> Option<(IpAddr, IpAddr, IpProtocol, &[u8], bool)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            let fragment = ip.more_frags() || ip.frag_offset() != 0;
            Some((
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
                ip.next_header(),
                ip.payload(),
                fragment,
            ))
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            Some((
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
                ip.next_header(),
                ip.payload(),
                false,
            ))
        }
        _ => None,
    }
}

/// Where an incoming frame goes: which of the engine's socket sets smoltcp is
/// handed with it (see `tcp_table` and `datagram_sets`). smoltcp looks for the
/// socket a packet is for by walking the set it gets; the engine finds the set
/// first, by a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Demux {
    /// A whole IP packet (fragments were put together before: see
    /// `reassembly`).
    Packet(Packet),
    /// ARP, or IPv6 neighbour discovery: news for the neighbour cache.
    Neighbor,
}

/// What an IP packet is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packet {
    /// A TCP segment of this flow (our address and port, then the peer's).
    Tcp(Flow),
    /// A UDP datagram to this port.
    Udp(u16),
    /// ICMP (but neighbour discovery): the ping sockets'.
    Icmp,
    /// No socket's (another protocol, a fragment, or too short to tell).
    Other,
}

/// The ICMPv6 types of neighbour discovery (router solicitation to redirect).
const NDP_TYPES: std::ops::RangeInclusive<u8> = 133..=137;

/// Reads where `frame` goes (see [`Demux`]). It looks at headers only, as far
/// as smoltcp's own parsing goes: IPv6 with a hop-by-hop header (the one
/// extension header smoltcp steps over) is followed to what that header carries.
pub(crate) fn demux(frame: &[u8]) -> Demux {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Demux::Packet(Packet::Other);
    };
    match eth.ethertype() {
        EthernetProtocol::Arp => Demux::Neighbor,
        EthernetProtocol::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                return Demux::Packet(Packet::Other);
            };
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            if ip.more_frags() || ip.frag_offset() != 0 {
                return Demux::Packet(Packet::Other);
            }
            Demux::Packet(match ip.next_header() {
                IpProtocol::Tcp => {
                    flow_of(src, dst, ip.payload()).map_or(Packet::Other, Packet::Tcp)
                }
                IpProtocol::Udp => udp_dst_port(ip.payload()).map_or(Packet::Other, Packet::Udp),
                IpProtocol::Icmp => Packet::Icmp,
                _ => Packet::Other,
            })
        }
        EthernetProtocol::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else {
                return Demux::Packet(Packet::Other);
            };
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            let (mut next, mut payload) = (ip.next_header(), ip.payload());
            if next == IpProtocol::HopByHop {
                // Next header, then the length in 8-byte units beyond the first 8.
                let (Some(&after), Some(&units)) = (payload.first(), payload.get(1)) else {
                    return Demux::Packet(Packet::Other);
                };
                let Some(rest) = payload.get((usize::from(units) + 1) * 8..) else {
                    return Demux::Packet(Packet::Other);
                };
                (next, payload) = (IpProtocol::from(after), rest);
            }
            Demux::Packet(match next {
                IpProtocol::Tcp => flow_of(src, dst, payload).map_or(Packet::Other, Packet::Tcp),
                IpProtocol::Udp => udp_dst_port(payload).map_or(Packet::Other, Packet::Udp),
                IpProtocol::Icmpv6 if payload.first().is_some_and(|t| NDP_TYPES.contains(t)) => {
                    return Demux::Neighbor
                }
                IpProtocol::Icmpv6 => Packet::Icmp,
                _ => Packet::Other,
            })
        }
        _ => Demux::Packet(Packet::Other),
    }
}

/// The flow of the TCP segment `segment` from `src` to `dst`, seen from here.
fn flow_of(src: IpAddr, dst: IpAddr, segment: &[u8]) -> Option<Flow> {
    let tcp = TcpPacket::new_checked(segment).ok()?;
    Some((dst, tcp.dst_port(), src, tcp.src_port()))
}

/// The destination port of a UDP header, read without checking the length it
/// gives: the first piece of a datagram in IPv4 fragments carries less.
fn udp_dst_port(datagram: &[u8]) -> Option<u16> {
    let header = datagram.get(..8)?;
    Some(u16::from_be_bytes([header[2], header[3]]))
}

/// An ICMP error about a UDP datagram we sent: the datagram's source (ours), its
/// destination, and the errno Linux reports on a connected socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UdpUnreachable {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub errno: i32,
}

/// Returns the ICMP or ICMPv6 destination-unreachable error carried by `frame` if it
/// quotes a UDP datagram, with the errno Linux maps its code to.
pub(crate) fn udp_unreachable(frame: &[u8]) -> Option<UdpUnreachable> {
    let (_, _, proto, payload, fragment) = ip_parts(frame)?;
    if fragment {
        return None;
    }
    let (errno, quoted): (i32, &[u8]) = match proto {
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(payload).ok()?;
            if icmp.msg_type() != Icmpv4Message::DstUnreachable {
                return None;
            }
            let errno = match icmp.msg_code() {
                0 => libc::ENETUNREACH,
                1 => libc::EHOSTUNREACH,
                2 => libc::ENOPROTOOPT,
                3 => libc::ECONNREFUSED,
                _ => return None,
            };
            (errno, icmp.data())
        }
        IpProtocol::Icmpv6 => {
            let icmp = Icmpv6Packet::new_checked(payload).ok()?;
            if icmp.msg_type() != Icmpv6Message::DstUnreachable {
                return None;
            }
            let errno = match icmp.msg_code() {
                0 => libc::ENETUNREACH,
                3 => libc::EHOSTUNREACH,
                4 => libc::ECONNREFUSED,
                _ => return None,
            };
            (errno, icmp.payload())
        }
        _ => return None,
    };
    // The quote is the offending IP header and at least 8 bytes after it: enough
    // for the UDP ports.
    let (src, dst, inner_proto, inner): (IpAddr, IpAddr, IpProtocol, &[u8]) =
        match quoted.first()? >> 4 {
            4 => {
                let ip = Ipv4Packet::new_unchecked(quoted);
                let header = ip.header_len() as usize;
                if quoted.len() < header.max(20) + 8 {
                    return None;
                }
                (
                    IpAddr::V4(ip.src_addr()),
                    IpAddr::V4(ip.dst_addr()),
                    ip.next_header(),
                    &quoted[header..],
                )
            }
            6 => {
                if quoted.len() < 40 + 8 {
                    return None;
                }
                let ip = Ipv6Packet::new_unchecked(quoted);
                (
                    IpAddr::V6(ip.src_addr()),
                    IpAddr::V6(ip.dst_addr()),
                    ip.next_header(),
                    &quoted[40..],
                )
            }
            _ => return None,
        };
    if inner_proto != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_unchecked(&inner[..8]);
    Some(UdpUnreachable {
        local: SocketAddr::new(src, udp.src_port()),
        remote: SocketAddr::new(dst, udp.dst_port()),
        errno,
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
/// `asker_ip`. Used to answer our own requests for local addresses, which is how
/// loopback traffic finds its way back in.
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
    write_arp(buf, owner_mac, owner_mac, arp);
}

/// Writes into `buf` the ARP request with which `mac`, holding `src`, asks who
/// has `target`.
pub(crate) fn write_arp_request(
    buf: &mut Vec<u8>,
    mac: EthernetAddress,
    src: Ipv4Address,
    target: Ipv4Address,
) {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: src,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    write_arp(buf, mac, EthernetAddress::BROADCAST, arp);
}

/// Writes into `buf` the neighbour solicitation with which `mac`, holding `src`,
/// asks for `target`'s hardware address (to its solicited-node group).
pub(crate) fn write_neighbor_solicit(
    buf: &mut Vec<u8>,
    mac: EthernetAddress,
    src: Ipv6Address,
    target: Ipv6Address,
) {
    let t = target.octets();
    let group = Ipv6Address::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, t[13], t[14], t[15],
    ]);
    let g = group.octets();
    // The Ethernet group of an IPv6 multicast address (RFC 2464).
    let eth_dst = EthernetAddress([0x33, 0x33, g[12], g[13], g[14], g[15]]);
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from(mac)),
    });
    write_ndisc(buf, (mac, eth_dst), (src, group), icmp);
}

/// Writes into `buf` an Ethernet frame from `src` to `dst` carrying `arp`.
fn write_arp(buf: &mut Vec<u8>, src: EthernetAddress, dst: EthernetAddress, arp: ArpRepr) {
    let eth = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype: EthernetProtocol::Arp,
    };
    buf.clear();
    buf.resize(eth.buffer_len() + arp.buffer_len(), 0);
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
}

/// Writes into `buf` the gratuitous ARP request with which `mac` announces
/// `addr` to everyone on the link (what Linux sends on a hardware address change
/// with `arp_notify`).
pub(crate) fn write_arp_announcement(buf: &mut Vec<u8>, mac: EthernetAddress, addr: Ipv4Address) {
    write_arp_request(buf, mac, addr, addr);
}

/// The sender of a gratuitous ARP (one whose sender and target addresses are the
/// same): a neighbour announcing where `addr` now lives.
pub(crate) fn arp_announcement(frame: &[u8]) -> Option<(EthernetAddress, Ipv4Address)> {
    match arp(frame)? {
        ArpRepr::EthernetIpv4 {
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } if source_protocol_addr == target_protocol_addr => {
            Some((source_hardware_addr, source_protocol_addr))
        }
        _ => None,
    }
}

/// Writes into `buf` the ARP reply in which `mac` claims `addr` towards `us`
/// (`our_mac`, `our_ip`). smoltcp learns neighbours only from ARP aimed at one of
/// its addresses; an announcement is handed to it in this shape so that it
/// updates its cache as Linux does for an entry it already has.
pub(crate) fn write_arp_reply_to(
    buf: &mut Vec<u8>,
    mac: EthernetAddress,
    addr: Ipv4Address,
    our_mac: EthernetAddress,
    our_ip: Ipv4Address,
) {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: mac,
        source_protocol_addr: addr,
        target_hardware_addr: our_mac,
        target_protocol_addr: our_ip,
    };
    write_arp(buf, mac, our_mac, arp);
}

/// Writes into `buf` an unsolicited neighbour advertisement (override flag set)
/// to all nodes, in which `mac` claims `addr`: the IPv6 counterpart of a
/// gratuitous ARP.
pub(crate) fn write_neighbor_advert(buf: &mut Vec<u8>, mac: EthernetAddress, addr: Ipv6Address) {
    let all_nodes = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    // The Ethernet group of ff02::1 (RFC 2464).
    let group = EthernetAddress([0x33, 0x33, 0, 0, 0, 1]);
    let flags = NdiscNeighborFlags::OVERRIDE;
    write_ndisc_advert(buf, mac, addr, group, all_nodes, flags);
}

/// Writes into `buf` the neighbour advertisement answering `asker` (an address of
/// ours, as is `target`), sent to ourselves: how IPv6 loopback traffic finds its
/// way back in, as [`write_arp_reply`] does for IPv4.
/// Writes into `buf` the answer to `solicit`, a neighbour solicitation from
/// the wire for our address `target`: a solicited advertisement to its sender.
pub(crate) fn write_neighbor_answer(
    buf: &mut Vec<u8>,
    solicit: &[u8],
    mac: EthernetAddress,
    target: Ipv6Address,
    asker: Ipv6Address,
) -> bool {
    let Some(asker_mac) = EthernetFrame::new_checked(solicit)
        .ok()
        .map(|e| e.src_addr())
    else {
        return false;
    };
    let flags = NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE;
    write_ndisc_advert(buf, mac, target, asker_mac, asker, flags);
    true
}

pub(crate) fn write_own_neighbor_advert(
    buf: &mut Vec<u8>,
    mac: EthernetAddress,
    target: Ipv6Address,
    asker: Ipv6Address,
) {
    let flags = NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE;
    write_ndisc_advert(buf, mac, target, mac, asker, flags);
}

fn write_ndisc_advert(
    buf: &mut Vec<u8>,
    mac: EthernetAddress,
    addr: Ipv6Address,
    eth_dst: EthernetAddress,
    ip_dst: Ipv6Address,
    flags: NdiscNeighborFlags,
) {
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags,
        target_addr: addr,
        lladdr: Some(RawHardwareAddress::from(mac)),
    });
    write_ndisc(buf, (mac, eth_dst), (addr, ip_dst), icmp);
}

/// Writes into `buf` the neighbour discovery message `icmp` from `(mac, src)`
/// to `(eth_dst, ip_dst)`.
pub(super) fn write_ndisc(
    buf: &mut Vec<u8>,
    (mac, eth_dst): (EthernetAddress, EthernetAddress),
    (src, ip_dst): (Ipv6Address, Ipv6Address),
    icmp: Icmpv6Repr,
) {
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: ip_dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        // Neighbour discovery is accepted only with the hop limit untouched.
        hop_limit: 255,
    };
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: eth_dst,
        ethertype: EthernetProtocol::Ipv6,
    };
    buf.clear();
    buf.resize(eth.buffer_len() + ip.buffer_len() + icmp.buffer_len(), 0);
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet);
    icmp.emit(
        &src,
        &ip_dst,
        &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
        &ChecksumCapabilities::default(),
    );
}

/// A neighbour solicitation `frame` carries: the address asked for, and the
/// asker's address.
pub(crate) fn neighbor_solicit(frame: &[u8]) -> Option<(Ipv6Address, Ipv6Address)> {
    ndisc(frame, |src, ndisc| match ndisc {
        NdiscRepr::NeighborSolicit { target_addr, .. } => Some((target_addr, src)),
        _ => None,
    })
}

/// What `read` makes of the neighbour discovery message in `frame` (and the
/// address it came from), if it is one.
fn ndisc<T>(frame: &[u8], read: impl FnOnce(Ipv6Address, NdiscRepr) -> Option<T>) -> Option<T> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Icmpv6 {
        return None;
    }
    let repr = Ipv6Repr::parse(&ip).ok()?;
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    let checksums = ChecksumCapabilities::ignored();
    match Icmpv6Repr::parse(&repr.src_addr, &repr.dst_addr, &icmp, &checksums).ok()? {
        Icmpv6Repr::Ndisc(ndisc) => read(repr.src_addr, ndisc),
        _ => None,
    }
}

/// What a neighbour's ARP packet or neighbour advertisement says of it: an IP
/// address and the hardware address that has it (`ip neigh show` lists them).
pub(crate) fn neighbor_news(frame: &[u8]) -> Option<(IpAddr, EthernetAddress)> {
    if let Some(ArpRepr::EthernetIpv4 {
        source_protocol_addr,
        source_hardware_addr,
        ..
    }) = arp(frame)
    {
        return Some((IpAddr::V4(source_protocol_addr), source_hardware_addr));
    }
    ndisc(frame, |_, ndisc| match ndisc {
        NdiscRepr::NeighborAdvert {
            target_addr,
            lladdr: Some(lladdr),
            ..
        } => {
            let bytes = lladdr.as_bytes();
            (bytes.len() == 6)
                .then(|| (IpAddr::V6(target_addr), EthernetAddress::from_bytes(bytes)))
        }
        _ => None,
    })
}

/// Writes into `buf` the neighbour advertisement in which `mac` claims `addr`
/// towards `us` (`our_mac`, `our_ip`): the IPv6 form of [`write_arp_reply_to`],
/// which fills smoltcp's neighbour cache.
pub(crate) fn write_neighbor_advert_to(
    buf: &mut Vec<u8>,
    (mac, addr): (EthernetAddress, Ipv6Address),
    (our_mac, our_ip): (EthernetAddress, Ipv6Address),
) {
    let flags = NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE;
    write_ndisc_advert(buf, mac, addr, our_mac, our_ip, flags);
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

    /// An Ethernet frame carrying `l3` as `ethertype`.
    fn ether(ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(l3);
        frame
    }

    /// An IPv4 packet 10.0.0.2 -> 10.0.0.1 of `proto`, with `frag`: (more, offset).
    fn ipv4(proto: u8, ident: u16, frag: (bool, u16), payload: &[u8]) -> Vec<u8> {
        let len = (20 + payload.len()) as u16;
        let flags = u16::from(frag.0) << 13 | frag.1;
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&ident.to_be_bytes());
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]);
        p.extend_from_slice(payload);
        p
    }

    /// An IPv6 packet fd00::2 -> fd00::1 whose first header is `next`.
    fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        for last in [2, 1] {
            p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last]);
        }
        p.extend_from_slice(payload);
        p
    }

    /// A TCP header from port 40000 to 80.
    fn tcp_header() -> Vec<u8> {
        let mut t = vec![0x9c, 0x40, 0, 80];
        t.extend_from_slice(&[0; 8]);
        t.extend_from_slice(&[0x50, 0x10, 0x10, 0, 0, 0, 0, 0]);
        t
    }

    #[test]
    fn demux_finds_a_segments_flow_a_datagrams_port_and_neighbour_news() {
        use Demux::Packet as Whole;
        let v4 = |last| IpAddr::V4(Ipv4Address::new(10, 0, 0, last));
        let v6 = |last| IpAddr::V6(Ipv6Address::new(0xfd00, 0, 0, 0, 0, 0, 0, last));
        let tcp = tcp_header();
        let flow4 = Packet::Tcp((v4(1), 80, v4(2), 40000));
        let flow6 = Packet::Tcp((v6(1), 80, v6(2), 40000));
        assert_eq!(
            demux(&ether(0x0800, &ipv4(6, 1, (false, 0), &tcp))),
            Whole(flow4)
        );
        assert_eq!(demux(&ether(0x86dd, &ipv6(6, &tcp))), Whole(flow6));
        // Past a hop-by-hop header (8 bytes: TCP next, no options but padding).
        let mut hop_by_hop = vec![6, 0, 1, 4, 0, 0, 0, 0];
        hop_by_hop.extend_from_slice(&tcp);
        assert_eq!(demux(&ether(0x86dd, &ipv6(0, &hop_by_hop))), Whole(flow6));
        // Fragments were put together before demux: a piece left over is no
        // socket's.
        assert_eq!(
            demux(&ether(0x0800, &ipv4(6, 9, (true, 0), &tcp))),
            Whole(Packet::Other)
        );
        assert_eq!(
            demux(&ether(0x0800, &ipv4(6, 9, (false, 3), &[0; 8]))),
            Whole(Packet::Other)
        );
        let udp = [0x9c, 0x40, 0x13, 0x89, 0, 8, 0, 0];
        assert_eq!(
            demux(&ether(0x0800, &ipv4(17, 1, (false, 0), &udp))),
            Whole(Packet::Udp(5001))
        );
        assert_eq!(
            demux(&ether(0x86dd, &ipv6(17, &udp))),
            Whole(Packet::Udp(5001))
        );
        assert_eq!(
            demux(&ether(0x0800, &ipv4(1, 1, (false, 0), &[8, 0, 0, 0]))),
            Whole(Packet::Icmp)
        );
        assert_eq!(
            demux(&ether(0x86dd, &ipv6(44, &[17, 0, 0, 1, 0, 0, 0, 1]))),
            Whole(Packet::Other)
        );
        // Neighbour advertisement; an echo request is for the ping sockets.
        assert_eq!(
            demux(&ether(0x86dd, &ipv6(58, &[136, 0, 0, 0]))),
            Demux::Neighbor
        );
        assert_eq!(
            demux(&ether(0x86dd, &ipv6(58, &[128, 0, 0, 0]))),
            Whole(Packet::Icmp)
        );
        assert_eq!(demux(&ether(0x0806, &[0; 28])), Demux::Neighbor);
        // Too short to tell, another protocol, not IP: no socket.
        let short = ipv4(6, 1, (false, 0), &tcp[..10]);
        assert_eq!(demux(&ether(0x0800, &short)), Whole(Packet::Other));
        assert_eq!(
            demux(&ether(0x0800, &ipv4(2, 1, (false, 0), &[0; 8]))),
            Whole(Packet::Other)
        );
        assert_eq!(demux(&[0; 10]), Whole(Packet::Other));
        assert_eq!(demux(&ether(0x88cc, &[0; 40])), Whole(Packet::Other));
    }

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
            assert_eq!(arp_announcement(&frame), None);
            assert_eq!(neighbor_solicit(&frame), None);
        }
    }

    #[test]
    fn announcements_are_recognised() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 9]);
        let addr = Ipv4Address::new(10, 0, 0, 9);
        let mut buf = Vec::new();
        write_arp_announcement(&mut buf, mac, addr);
        assert_eq!(arp_announcement(&buf), Some((mac, addr)));
        assert_eq!(arp_request(&buf), Some((addr, addr)));
        assert_eq!(dst_mac(&buf), Some(EthernetAddress::BROADCAST));
        let ours = (
            EthernetAddress([2, 0, 0, 0, 0, 1]),
            Ipv4Address::new(10, 0, 0, 1),
        );
        write_arp_reply_to(&mut buf, mac, addr, ours.0, ours.1);
        assert_eq!(
            arp_announcement(&buf),
            None,
            "a reply to us is no announcement"
        );
        assert_eq!(arp_sender(&buf), Some(addr));
        assert_eq!(dst_mac(&buf), Some(ours.0));
    }

    #[test]
    fn neighbour_advertisements_parse_with_valid_checksums() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 9]);
        let addr = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9);
        let asker = Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 9);
        let mut buf = Vec::new();
        for own in [false, true] {
            if own {
                write_own_neighbor_advert(&mut buf, mac, addr, asker);
            } else {
                write_neighbor_advert(&mut buf, mac, addr);
            }
            let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
            let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
            let repr = Ipv6Repr::parse(&ip).unwrap();
            assert_eq!(repr.hop_limit, 255);
            let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
            let checked = ChecksumCapabilities::default();
            match Icmpv6Repr::parse(&repr.src_addr, &repr.dst_addr, &icmp, &checked) {
                Ok(Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                    flags,
                    target_addr,
                    lladdr,
                })) => {
                    assert_eq!(target_addr, addr);
                    assert_eq!(lladdr, Some(RawHardwareAddress::from(mac)));
                    assert!(flags.contains(NdiscNeighborFlags::OVERRIDE));
                    assert_eq!(flags.contains(NdiscNeighborFlags::SOLICITED), own);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(neighbor_solicit(&buf), None);
        }
    }
}

/// A TCP flow seen from this stack: our address and port, then the peer's.
pub(crate) type Flow = (IpAddr, u16, IpAddr, u16);

/// Keeps the sequence number of outgoing pure ACKs at the highest one sent.
///
/// smoltcp 0.14 rewinds its "last sequence number sent" on a retransmission timeout
/// and stamps that rewound number on the pure ACKs it sends afterwards
/// (`socket/tcp.rs`, `ack_reply`). When both ends of a connection are sending data
/// and both time out, each one's ACKs then fall below the other's receive window:
/// the peer discards them, ACK field and all, and the connection stalls for good
/// (found by the wirefilter loss tests). Linux always stamps ACKs with the highest
/// number sent, which any receiver accepts; this does the same at the device.
#[derive(Debug, Default)]
pub(crate) struct AckSequence {
    /// Per flow (our address and port, theirs): one past the highest sequence
    /// number sent.
    sent: FlowMap<Flow, TcpSeqNumber>,
}

/// Flows remembered at most; past that the table starts over, which only means
/// a rewound ACK may go out unmended for a while (as without this).
const MAX_FLOWS: usize = 16 * 1024;

impl AckSequence {
    /// One past the highest sequence number `flow` sent, if remembered.
    pub(crate) fn highest(&self, flow: &Flow) -> Option<TcpSeqNumber> {
        self.sent.get(flow).copied()
    }

    /// Looks at an outgoing frame, and mends its sequence number if it is a pure
    /// ACK stamped below what the flow already sent. Returns what the frame
    /// carries if it is a TCP segment (so that it is read once).
    pub(crate) fn on_egress(&mut self, frame: &mut [u8]) -> Option<EgressSegment> {
        let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) else {
            return None;
        };
        match eth.ethertype() {
            EthernetProtocol::Ipv4 => {
                let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else {
                    return None;
                };
                if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                    return None;
                }
                let (src, dst) = (
                    IpAddress::Ipv4(ip.src_addr()),
                    IpAddress::Ipv4(ip.dst_addr()),
                );
                self.mend(src, dst, ip.payload_mut())
            }
            EthernetProtocol::Ipv6 => {
                let Ok(mut ip) = Ipv6Packet::new_checked(eth.payload_mut()) else {
                    return None;
                };
                if ip.next_header() != IpProtocol::Tcp {
                    return None;
                }
                let (src, dst) = (
                    IpAddress::Ipv6(ip.src_addr()),
                    IpAddress::Ipv6(ip.dst_addr()),
                );
                self.mend(src, dst, ip.payload_mut())
            }
            _ => None,
        }
    }

    /// The connection of `flow` is gone.
    pub(crate) fn forget(&mut self, flow: &Flow) {
        self.sent.remove(flow);
    }

    fn mend(
        &mut self,
        src: IpAddress,
        dst: IpAddress,
        segment: &mut [u8],
    ) -> Option<EgressSegment> {
        let window_scale = TcpPacket::new_checked(&*segment)
            .ok()
            .and_then(|tcp| syn_window_scale(&tcp));
        let mut tcp = TcpPacket::new_checked(segment).ok()?;
        let key = (
            IpAddr::from(src),
            tcp.src_port(),
            IpAddr::from(dst),
            tcp.dst_port(),
        );
        let seq = tcp.seq_number();
        let data = tcp.payload_mut().len();
        let len = data + usize::from(tcp.syn()) + usize::from(tcp.fin());
        let seen = EgressSegment {
            flow: key,
            seq,
            len,
            data,
            fin: tcp.fin(),
            ack: tcp.ack().then(|| tcp.ack_number()),
            rst: tcp.rst(),
            syn: tcp.syn(),
            window_scale,
            window: tcp.window_len(),
        };
        if tcp.rst() {
            self.forget(&key);
            return Some(seen);
        }
        if len > 0 {
            let end = seq + len;
            if self.sent.len() >= MAX_FLOWS && !self.sent.contains_key(&key) {
                self.sent.clear();
            }
            let highest = self.sent.entry(key).or_insert(end);
            // A SYN starts the flow's numbers afresh: a new connection on the
            // 4-tuple of one that ended (TIME-WAIT met by a new SYN, a port used
            // again) has its own, and comparing them with the old one's would
            // stamp its ACKs with the old connection's numbers, out of the
            // peer's window: the handshake would never complete on its side.
            if tcp.syn() || end > *highest {
                *highest = end;
            }
            return Some(seen);
        }
        if let Some(&highest) = self.sent.get(&key) {
            if seq < highest {
                tcp.set_seq_number(highest);
                tcp.fill_checksum(&src, &dst);
            }
        }
        Some(seen)
    }
}

/// An outgoing TCP segment, as [`AckSequence::on_egress`] read it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EgressSegment {
    /// Our address and port, then the peer's.
    pub flow: Flow,
    pub seq: TcpSeqNumber,
    /// Sequence space taken: data, SYN and FIN.
    pub len: usize,
    /// Bytes of data (the first after `seq`, or after the SYN).
    pub data: usize,
    pub fin: bool,
    pub ack: Option<TcpSeqNumber>,
    pub rst: bool,
    /// A SYN (ours): its window scale option, the shift we offer.
    pub syn: bool,
    pub window_scale: Option<u8>,
    /// The window field as sent (not scaled).
    pub window: u16,
}

/// An Ethernet frame with a TCP segment over IPv4 from `src` to `dst`
/// (window 1000, no options but one SACK block if given), for tests.
#[cfg(test)]
pub(crate) fn tcp_frame_for_tests(
    src: (Ipv4Address, u16),
    dst: (Ipv4Address, u16),
    seq: i32,
    ack: i32,
    payload: &[u8],
    sack: Option<(u32, u32)>,
) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        control: TcpControl::None,
        seq_number: TcpSeqNumber(seq),
        ack_number: Some(TcpSeqNumber(ack)),
        window_len: 1000,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [sack, None, None],
        timestamp: None,
        payload,
    };
    let ip = Ipv4Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let caps = ChecksumCapabilities::default();
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet, &caps);
    tcp.emit(
        &mut TcpPacket::new_unchecked(packet.payload_mut()),
        &src.0.into(),
        &dst.0.into(),
        &caps,
    );
    buf
}

#[cfg(test)]
mod ack_tests {
    use super::*;

    fn segment(seq: i32, payload: &[u8]) -> Vec<u8> {
        let (a, b) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
        tcp_frame_for_tests((a, 40000), (b, 80), seq, 7, payload, None)
    }

    fn seq_and_checksum_ok(frame: &[u8]) -> (i32, bool) {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        let ok = tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into());
        (tcp.seq_number().0, ok)
    }

    #[test]
    fn rewound_pure_acks_are_raised_to_the_highest_sequence_sent() {
        let mut fixer = AckSequence::default();
        let mut data = segment(1000, &[7; 100]);
        fixer.on_egress(&mut data);
        assert_eq!(
            seq_and_checksum_ok(&data),
            (1000, true),
            "data is left alone"
        );
        let mut rewound_ack = segment(900, &[]);
        fixer.on_egress(&mut rewound_ack);
        assert_eq!(seq_and_checksum_ok(&rewound_ack), (1100, true));
        let mut current_ack = segment(1100, &[]);
        fixer.on_egress(&mut current_ack);
        assert_eq!(seq_and_checksum_ok(&current_ack), (1100, true));
        let mut retransmission = segment(1000, &[7; 100]);
        fixer.on_egress(&mut retransmission);
        assert_eq!(seq_and_checksum_ok(&retransmission), (1000, true));
    }

    #[test]
    fn a_new_connection_on_the_same_four_tuple_keeps_its_own_numbers() {
        let mut fixer = AckSequence::default();
        fixer.on_egress(&mut segment(1000, &[7; 100]));
        // The connection ended; a new one on the same 4-tuple starts lower.
        let mut syn = segment(500, &[]);
        {
            let mut eth = EthernetFrame::new_unchecked(&mut syn[..]);
            let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
            let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
            tcp.set_syn(true);
        }
        fixer.on_egress(&mut syn);
        let mut handshake_ack = segment(501, &[]);
        fixer.on_egress(&mut handshake_ack);
        assert_eq!(seq_and_checksum_ok(&handshake_ack), (501, true));
    }
}

/// The hop limit smoltcp gives the IPv6 packets it makes on its own.
const SMOLTCP_HOPS: u8 = 64;

/// Gives the IPv6 packet in `frame` the interface's hop limit `hops` if
/// smoltcp made it on its own, with its fixed 64: an echo reply, an ICMPv6
/// error, a reset. Linux sends those with the interface's hop limit, which a
/// router's Cur Hop Limit sets. (A socket's own segments and datagrams carry
/// the socket's hop limit already; one that set 64 itself keeps it, except
/// on a reset.) The hop limit is outside every checksum.
pub(super) fn set_own_hop_limit(frame: &mut [u8], hops: u8) {
    const IP: usize = 14;
    const NEXT: usize = IP + 6;
    const HOPS: usize = IP + 7;
    const PAYLOAD: usize = IP + 40;
    if frame.len() < PAYLOAD || frame[12..14] != [0x86, 0xdd] || frame[HOPS] != SMOLTCP_HOPS {
        return;
    }
    let own = match frame[NEXT] {
        58 => frame.get(PAYLOAD).is_some_and(|t| matches!(t, 1..=4 | 129)),
        6 => frame
            .get(PAYLOAD + 13)
            .is_some_and(|flags| flags & 0x04 != 0),
        _ => false,
    };
    if own {
        frame[HOPS] = hops;
    }
}
