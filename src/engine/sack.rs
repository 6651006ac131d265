//! The SACK blocks of this stack's ACKs, written at the device boundary.
//!
//! smoltcp puts one SACK block in an ACK (RFC 2018 allows three, four without
//! timestamps): the block around the segment that came last, or its lowest. A
//! sender that misses an ACK, or has two holes to repair, then learns of the
//! data beyond them only from later ACKs, one block at a time. The engine sees
//! every segment arrive, so it keeps the ranges that came out of order per flow,
//! the latest first, and when smoltcp sends an ACK with a SACK option (it has
//! data out of order, and the peer permitted SACK) it rewrites the option with
//! up to four blocks, the first the one smoltcp chose to report first as RFC
//! 2018 asks (the block of the segment that came last).

use super::flow_hash::FlowMap;
use super::frames::{Flow, TcpView};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
    TcpSeqNumber,
};
use std::net::IpAddr;

/// Ranges remembered per flow: one more than an ACK reports, so that one
/// filled in leaves four.
const MAX_RANGES: usize = 5;

/// Flows remembered at most; past that the table starts over (their ACKs then
/// carry smoltcp's one block until data comes out of order again).
const MAX_FLOWS: usize = 16 * 1024;

/// The option bytes a TCP header may carry.
const MAX_OPTIONS: usize = 40;

/// The data that came out of order, per flow.
#[derive(Debug, Default)]
pub(crate) struct SackBlocks {
    /// Per flow (our address and port, theirs): ranges received, the latest
    /// first, not overlapping.
    flows: FlowMap<Flow, Vec<(TcpSeqNumber, TcpSeqNumber)>>,
}

impl SackBlocks {
    /// Notes the data an incoming segment carries.
    pub(crate) fn on_ingress(&mut self, tcp: &TcpView) {
        let (ours, theirs) = (tcp.segment.dst, tcp.segment.src);
        let key = (ours.ip(), ours.port(), theirs.ip(), theirs.port());
        if tcp.rst || tcp.syn {
            self.flows.remove(&key);
            return;
        }
        if tcp.data_len == 0 {
            return;
        }
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&key) {
            self.flows.clear();
        }
        let ranges = self.flows.entry(key).or_default();
        let (mut left, mut right) = (tcp.seq, tcp.seq + tcp.data_len);
        ranges.retain(|&(l, r)| {
            let touches = l <= right && r >= left;
            if touches {
                left = left.min(l);
                right = right.max(r);
            }
            !touches
        });
        ranges.insert(0, (left, right));
        ranges.truncate(MAX_RANGES);
    }

    /// Forgets a flow that ended.
    pub(crate) fn forget(&mut self, flow: &Flow) {
        self.flows.remove(flow);
    }

    /// Rewrites the SACK option of the outgoing pure ACK `frame`, if it has
    /// one, with the blocks above its acknowledgement.
    pub(crate) fn on_egress(&mut self, frame: &mut Vec<u8>) {
        if self.flows.is_empty() {
            return;
        }
        let Some((key, ack, first)) = read_sack_ack(frame) else {
            return;
        };
        let Some(ranges) = self.flows.get_mut(&key) else {
            return;
        };
        ranges.retain(|&(_, r)| r > ack);
        // smoltcp's first block comes first (the latest segment's, RFC 2018),
        // then the others, the latest first.
        let mut blocks = vec![first];
        for &(l, r) in ranges.iter() {
            let covered = blocks.iter().any(|&(bl, br)| bl <= l && r <= br);
            if !covered && l > ack {
                blocks.push((l, r));
            }
        }
        if blocks.len() > 1 {
            write_sack(frame, &blocks);
        }
    }
}

/// The flow, acknowledgement and first SACK block of a pure ACK with a SACK
/// option.
fn read_sack_ack(frame: &[u8]) -> Option<(Flow, TcpSeqNumber, (TcpSeqNumber, TcpSeqNumber))> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (src, dst, l4): (IpAddr, IpAddr, &[u8]) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            (ip.src_addr().into(), ip.dst_addr().into(), ip.payload())
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (ip.src_addr().into(), ip.dst_addr().into(), ip.payload())
        }
        _ => return None,
    };
    let tcp = TcpPacket::new_checked(l4).ok()?;
    if !tcp.ack() || tcp.syn() || tcp.fin() || tcp.rst() || !tcp.payload().is_empty() {
        return None;
    }
    if tcp.header_len() <= 20 {
        return None;
    }
    let summary = tcp.options_summary().ok()?;
    let (l, r) = summary.sack_ranges[0]?;
    let key = (src, tcp.src_port(), dst, tcp.dst_port());
    Some((
        key,
        tcp.ack_number(),
        (TcpSeqNumber(l as i32), TcpSeqNumber(r as i32)),
    ))
}

/// Replaces the SACK option of the TCP segment in `frame` (a pure ACK) with
/// `blocks`, as many as fit beside its other options, and fixes the lengths
/// and checksums.
fn write_sack(frame: &mut Vec<u8>, blocks: &[(TcpSeqNumber, TcpSeqNumber)]) {
    let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
        return;
    };
    let eth_len = frame.len() - eth.payload().len();
    let v4 = eth.ethertype() == EthernetProtocol::Ipv4;
    let ip_len = if v4 {
        match Ipv4Packet::new_checked(eth.payload()) {
            Ok(ip) => usize::from(ip.header_len()),
            Err(_) => return,
        }
    } else {
        40
    };
    let tcp_at = eth_len + ip_len;
    let Ok(tcp) = TcpPacket::new_checked(&frame[tcp_at..]) else {
        return;
    };
    // The other options, as they were (timestamps, if any).
    let mut options = Vec::with_capacity(MAX_OPTIONS);
    let mut rest = tcp.options();
    while let Some(&kind) = rest.first() {
        match kind {
            0 => break,
            1 => rest = &rest[1..],
            _ => {
                let Some(&len) = rest.get(1) else { return };
                let len = usize::from(len);
                if len < 2 || len > rest.len() {
                    return;
                }
                if kind != 5 {
                    options.extend_from_slice(&rest[..len]);
                }
                rest = &rest[len..];
            }
        }
    }
    let room = MAX_OPTIONS.saturating_sub(options.len() + 2 + 2) / 8;
    let count = blocks.len().min(room).min(4);
    if count == 0 {
        return;
    }
    options.extend_from_slice(&[1, 1, 5, (2 + 8 * count) as u8]);
    for &(l, r) in &blocks[..count] {
        options.extend_from_slice(&(l.0 as u32).to_be_bytes());
        options.extend_from_slice(&(r.0 as u32).to_be_bytes());
    }
    while options.len() % 4 != 0 {
        options.push(1);
    }
    let tcp_len = 20 + options.len();
    frame.truncate(tcp_at + 20);
    frame.extend_from_slice(&options);
    let l3 = &mut frame[eth_len..];
    let (src, dst): (IpAddress, IpAddress) = if v4 {
        let mut ip = Ipv4Packet::new_unchecked(&mut *l3);
        ip.set_total_len((ip_len + tcp_len) as u16);
        ip.fill_checksum();
        (ip.src_addr().into(), ip.dst_addr().into())
    } else {
        let mut ip = Ipv6Packet::new_unchecked(&mut *l3);
        ip.set_payload_len(tcp_len as u16);
        (ip.src_addr().into(), ip.dst_addr().into())
    };
    let mut tcp = TcpPacket::new_unchecked(&mut l3[ip_len..]);
    tcp.set_header_len(tcp_len as u8);
    tcp.fill_checksum(&src, &dst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frames;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{Ipv4Address, TcpRepr};

    /// A segment from 10.0.0.2:80 to 10.0.0.1:40000 (`incoming`) or back.
    fn segment(
        incoming: bool,
        seq: i32,
        ack: i32,
        payload: &[u8],
        sack: Option<(u32, u32)>,
    ) -> Vec<u8> {
        let (ours, theirs) = (
            (Ipv4Address::new(10, 0, 0, 1), 40000),
            (Ipv4Address::new(10, 0, 0, 2), 80),
        );
        let (src, dst) = if incoming {
            (theirs, ours)
        } else {
            (ours, theirs)
        };
        frames::tcp_frame_for_tests(src, dst, seq, ack, payload, sack)
    }

    /// The SACK blocks of `frame`, read as a receiver would (checksums
    /// verified).
    fn blocks_of(frame: &[u8]) -> Vec<(u32, u32)> {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
        let repr = TcpRepr::parse(
            &tcp,
            &ip.src_addr().into(),
            &ip.dst_addr().into(),
            &ChecksumCapabilities::default(),
        )
        .unwrap();
        repr.sack_ranges.iter().flatten().copied().collect()
    }

    #[test]
    fn acks_report_every_range_that_came_out_of_order() {
        let mut sacks = SackBlocks::default();
        // 1000..1100 is missing; 1100..1200 came, then 1300..1400 (1200..1300
        // missing too), then 1500..1600.
        for seq in [1100, 1300, 1500] {
            let data = segment(true, seq, 1, &[7; 100], None);
            sacks.on_ingress(&frames::tcp_view(&data).unwrap());
        }
        // smoltcp's ACK names the latest block only.
        let mut ack = segment(false, 1, 1000, &[], Some((1500, 1600)));
        sacks.on_egress(&mut ack);
        assert_eq!(blocks_of(&ack), [(1500, 1600), (1300, 1400), (1100, 1200)]);
        // Once 1000..1200 is in, the first range is below the acknowledgement.
        let mut ack = segment(false, 1, 1200, &[], Some((1300, 1400)));
        sacks.on_egress(&mut ack);
        assert_eq!(blocks_of(&ack), [(1300, 1400), (1500, 1600)]);
        // An ACK without a SACK option is left alone.
        let mut plain = segment(false, 1, 1600, &[], None);
        let before = plain.clone();
        sacks.on_egress(&mut plain);
        assert_eq!(plain, before);
    }
}
