//! Just enough Ethernet, IPv4, IPv6 and TCP to read the TCP segments out of fuzzed
//! frames (which bytes an injected frame could have put into a connection), and to
//! build a few well-formed frames for seeds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// What a frame looks like at the IP layer.
pub enum Ip<'a> {
    /// An IP packet: addresses, protocol, payload (after the IP header).
    Packet {
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        payload: &'a [u8],
    },
    /// An IPv4 fragment (more fragments follow, or not the first one), or an
    /// IPv6 packet with a Fragment header: its payload may end up anywhere once
    /// reassembled.
    Fragment,
    /// Anything else (ARP, other ethertypes, truncated headers).
    Other,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The IP layer of an Ethernet frame, read leniently: lengths are taken from the
/// frame where the headers disagree with it (an over-approximation of what a stack
/// could accept).
pub fn ip(frame: &[u8]) -> Ip<'_> {
    let Some(ethertype) = be16(frame, 12) else {
        return Ip::Other;
    };
    let l3 = &frame[14..];
    match ethertype {
        ETHERTYPE_IPV4 => {
            let Some(&vihl) = l3.first() else {
                return Ip::Other;
            };
            let ihl = usize::from(vihl & 0x0f) * 4;
            if l3.len() < 20 || ihl < 20 || l3.len() < ihl {
                return Ip::Other;
            }
            let frag = be16(l3, 6).unwrap_or(0);
            if frag & 0x2000 != 0 || frag & 0x1fff != 0 {
                return Ip::Fragment;
            }
            let src = Ipv4Addr::new(l3[12], l3[13], l3[14], l3[15]);
            let dst = Ipv4Addr::new(l3[16], l3[17], l3[18], l3[19]);
            Ip::Packet {
                src: src.into(),
                dst: dst.into(),
                proto: l3[9],
                payload: &l3[ihl..],
            }
        }
        ETHERTYPE_IPV6 => {
            if l3.len() < 40 {
                return Ip::Other;
            }
            // A Fragment header (44) right after the IPv6 header: the engine
            // reassembles those, so its bytes too may end up anywhere.
            if l3[6] == 44 {
                return Ip::Fragment;
            }
            let src: [u8; 16] = l3[8..24].try_into().expect("16 bytes");
            let dst: [u8; 16] = l3[24..40].try_into().expect("16 bytes");
            Ip::Packet {
                src: Ipv6Addr::from(src).into(),
                dst: Ipv6Addr::from(dst).into(),
                proto: l3[6],
                payload: &l3[40..],
            }
        }
        _ => Ip::Other,
    }
}

/// A TCP segment's header fields and data.
#[derive(Debug, Clone, Copy)]
pub struct Tcp<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub data: &'a [u8],
}

/// The TCP segment in a frame, if it carries one (not fragmented, and not behind
/// IPv6 extension headers).
pub fn tcp(frame: &[u8]) -> Option<Tcp<'_>> {
    let Ip::Packet {
        src,
        dst,
        proto: PROTO_TCP,
        payload,
    } = ip(frame)
    else {
        return None;
    };
    let offset = usize::from(payload.get(12)? >> 4) * 4;
    Some(Tcp {
        src,
        dst,
        src_port: be16(payload, 0)?,
        dst_port: be16(payload, 2)?,
        seq: be32(payload, 4)?,
        ack: be32(payload, 8)?,
        flags: *payload.get(13)?,
        data: payload.get(offset.max(20)..).unwrap_or(&[]),
    })
}

// ---- building frames for seeds ----

fn checksum_add(mut sum: u32, bytes: &[u8]) -> u32 {
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet in an Ethernet frame; `l4` gets its checksum at `csum_at` (UDP,
/// TCP: with the pseudo-header; ICMP: without) unless `csum_at` is `None`.
pub fn ipv4_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    mut l4: Vec<u8>,
    csum_at: Option<usize>,
) -> Vec<u8> {
    if let Some(at) = csum_at {
        l4[at..at + 2].copy_from_slice(&[0, 0]);
        let mut sum = checksum_add(0, &l4);
        if proto != PROTO_ICMP {
            sum = checksum_add(sum, &src.octets());
            sum = checksum_add(sum, &dst.octets());
            sum += u32::from(proto) + l4.len() as u32;
        }
        l4[at..at + 2].copy_from_slice(&checksum_fold(sum).to_be_bytes());
    }
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum_fold(checksum_add(0, &ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&l4);
    ethernet(dst_mac, src_mac, ETHERTYPE_IPV4, &ip)
}

/// An IPv6 packet in an Ethernet frame, the checksum of `l4` at `csum_at`.
#[allow(clippy::too_many_arguments)]
pub fn ipv6_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    proto: u8,
    hop_limit: u8,
    mut l4: Vec<u8>,
    csum_at: usize,
) -> Vec<u8> {
    l4[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
    let mut sum = checksum_add(0, &l4);
    sum = checksum_add(sum, &src.octets());
    sum = checksum_add(sum, &dst.octets());
    sum += l4.len() as u32 + u32::from(proto);
    l4[csum_at..csum_at + 2].copy_from_slice(&checksum_fold(sum).to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    ip.push(proto);
    ip.push(hop_limit);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&l4);
    ethernet(dst_mac, src_mac, ETHERTYPE_IPV6, &ip)
}

/// An ICMP echo request (type 8, or 128 for ICMPv6) body.
pub fn echo_request(v6: bool, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    m
}

/// A UDP datagram (checksum filled in later by the frame builder).
pub fn udp(src_port: u16, dst_port: u16, data: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&src_port.to_be_bytes());
    d.extend_from_slice(&dst_port.to_be_bytes());
    d.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(data);
    d
}

/// An ARP request from `sender` for `target`.
pub fn arp_request(src_mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&src_mac);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    ethernet([0xff; 6], src_mac, ETHERTYPE_ARP, &a)
}

/// An ICMPv6 neighbor solicitation for `target`, with a source link-layer option.
pub fn neighbor_solicitation(src_mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let solicited = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let so = solicited.octets();
    let mac = [0x33, 0x33, so[12], so[13], so[14], so[15]];
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&t);
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&src_mac);
    ipv6_frame(mac, src_mac, src, solicited, PROTO_ICMPV6, 255, m, 2)
}

/// A TCP segment without options.
pub fn tcp_segment(
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&src_port.to_be_bytes());
    s.extend_from_slice(&dst_port.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&ack.to_be_bytes());
    s.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    s.extend_from_slice(data);
    s
}
