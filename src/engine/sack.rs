//! The SACK blocks of this stack's segments, written at the device boundary.
//!
//! smoltcp puts one SACK block in the ACK it sends at once for a segment that
//! came out of order (RFC 2018 allows three, four without timestamps): the
//! block around that segment, or its lowest; and none in its data segments or
//! in the ACKs its timers send. A sender that misses an ACK, or has two holes
//! to repair, then learns of the data beyond them only from later ACKs, one
//! block at a time; and on a connection carrying data both ways, where most
//! acknowledgements ride on data, hardly at all. The engine sees every segment
//! arrive, so it keeps the ranges that came out of order per flow, the latest
//! first, and writes them into every segment this stack sends on a flow whose
//! peer permitted SACK, while any lies above its acknowledgement: as many
//! blocks as fit in the option space beside the other options (four, three
//! with timestamps, as Linux) and in the link's MTU (a full-sized data segment
//! has no room; Linux shrinks the segment instead, which smoltcp cannot be
//! made to do). The first block is the one the latest segment fell in, as RFC
//! 2018 asks. A segment smoltcp dropped (its assembler keeps 16 holes) is
//! not reported: its sender would take it as received and wait for a
//! timeout to send it again.

use super::flow_hash::FlowMap;
use super::frames::{Flow, TcpOptions, TcpView};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
    TcpSeqNumber,
};
use std::net::IpAddr;

/// Ranges remembered per flow: one more than a segment reports, so that one
/// filled in leaves four.
const MAX_RANGES: usize = 5;

/// Blocks a SACK option carries at most (RFC 2018: 4 fill the 40 option bytes
/// with the option's kind and length and two no-operations).
const MAX_BLOCKS: usize = 4;

/// Flows remembered at most; past that the table starts over (their segments
/// then carry smoltcp's one block until data comes out of order again).
const MAX_FLOWS: usize = 16 * 1024;

/// The option bytes a TCP header may carry.
const MAX_OPTIONS: usize = 40;

/// What one flow's receiving side reports.
#[derive(Debug, Default)]
struct Received {
    /// The peer's SYN offered SACK (smoltcp's SYNs always do, and its SYN-ACK
    /// does when the peer's SYN did): blocks may be sent.
    permitted: bool,
    /// Ranges received, the latest first, not overlapping.
    ranges: Vec<(TcpSeqNumber, TcpSeqNumber)>,
    /// The highest acknowledgement this stack sent.
    acked: Option<TcpSeqNumber>,
    /// Data that came a second time, to report once as the first block (a
    /// D-SACK, RFC 2883).
    duplicate: Option<(TcpSeqNumber, TcpSeqNumber)>,
}

/// The data that came out of order, per flow.
#[derive(Debug, Default)]
pub(crate) struct SackBlocks {
    /// Per flow (our address and port, theirs).
    flows: FlowMap<Flow, Received>,
    /// The flow of the last segment noted and its ranges before it, until
    /// smoltcp says whether it kept that segment (see [`SackBlocks::not_kept`]).
    before_last: Option<(Flow, Vec<(TcpSeqNumber, TcpSeqNumber)>)>,
}

impl SackBlocks {
    /// Notes the data an incoming segment carries, or the SACK permission of
    /// a SYN. True if all of its data had come before (it is then reported
    /// as a D-SACK).
    pub(crate) fn on_ingress(&mut self, tcp: &TcpView) -> bool {
        let (ours, theirs) = (tcp.segment.dst, tcp.segment.src);
        let key = (ours.ip(), ours.port(), theirs.ip(), theirs.port());
        if tcp.rst || (tcp.syn && !tcp.sack_permitted) {
            self.flows.remove(&key);
            return false;
        }
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&key) {
            if !tcp.syn {
                return false;
            }
            self.flows.clear();
        }
        if tcp.syn {
            self.flows.insert(
                key,
                Received {
                    permitted: true,
                    ..Received::default()
                },
            );
            return false;
        }
        if tcp.data_len == 0 && !tcp.fin {
            return false;
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return false;
        };
        // A FIN takes a sequence number, which a block reports as Linux's do
        // (the engine keeps an early FIN that smoltcp drops).
        let (seq, end) = (tcp.seq, tcp.seq + tcp.data_len + usize::from(tcp.fin));
        // Data below the acknowledgement sent, or within a range received:
        // it came before (RFC 2883, 4.1.1 and 4.1.2). What of it was before
        // the acknowledgement is what is reported.
        let below = flow.acked.filter(|&acked| seq < acked);
        let again = match below {
            Some(acked) => Some((seq, end.min(acked))),
            None => flow
                .ranges
                .iter()
                .any(|&(l, r)| l <= seq && end <= r)
                .then_some((seq, end)),
        };
        if again.is_some() {
            flow.duplicate = again;
        }
        // Beyond a hole (past what came in order since the acknowledgement
        // sent): smoltcp may drop it, and the ranges before it are kept until
        // it says (an in-order segment's range stays: a copy of it that comes
        // before its ACK goes is a duplicate to report).
        let mut before = self.before_last.take().map(|(_, r)| r).unwrap_or_default();
        if flow
            .acked
            .is_some_and(|acked| seq > in_order_end(&flow.ranges, acked))
        {
            before.clear();
            before.extend_from_slice(&flow.ranges);
            self.before_last = Some((key, before));
        }
        let ranges = &mut flow.ranges;
        let (mut left, mut right) = (seq, end);
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
        again.is_some_and(|(l, r)| l == seq && r == end)
    }

    /// smoltcp did not keep the data of the segment last noted (`tcp`): it
    /// drops a segment that would open more holes than its assembler holds
    /// (16), and a receiver's SACK blocks must report only data it keeps
    /// (RFC 2018: a sender that trusted them would not send that data again
    /// until a timeout). Its range is forgotten.
    pub(crate) fn not_kept(&mut self, tcp: &TcpView) {
        let key = (
            tcp.segment.dst.ip(),
            tcp.segment.dst.port(),
            tcp.segment.src.ip(),
            tcp.segment.src.port(),
        );
        let Some((flow_key, before)) = self.before_last.as_mut() else {
            return;
        };
        if *flow_key != key {
            return;
        }
        if let Some(flow) = self.flows.get_mut(&key) {
            std::mem::swap(&mut flow.ranges, before);
        }
    }

    /// Forgets a flow that ended.
    pub(crate) fn forget(&mut self, flow: &Flow) {
        self.flows.remove(flow);
    }

    /// Writes into the outgoing segment `frame` (data or not, but no SYN or
    /// RST) the blocks above its acknowledgement, if any, in place of the
    /// SACK option it has; `max_len` bounds the frame's length (the link's
    /// MTU). True if it carries blocks.
    pub(crate) fn on_egress(&mut self, frame: &mut Vec<u8>, max_len: usize) -> bool {
        if self.flows.is_empty() {
            return false;
        }
        let Some((key, ack)) = read_ack(frame) else {
            return false;
        };
        let Some(flow) = self.flows.get_mut(&key).filter(|f| f.permitted) else {
            return false;
        };
        flow.acked = Some(flow.acked.map_or(ack, |a| a.max(ack)));
        flow.ranges.retain(|&(_, r)| r > ack);
        // On the stack: this runs for every segment sent.
        let mut blocks = [(TcpSeqNumber(0), TcpSeqNumber(0)); MAX_BLOCKS];
        let mut count = 0;
        let mut add = |block| {
            if count < MAX_BLOCKS && !blocks[..count].contains(&block) {
                blocks[count] = block;
                count += 1;
            }
        };
        // A D-SACK goes first, once; the range around it, if above the
        // acknowledgement, second (RFC 2883, 4).
        if let Some((l, r)) = flow.duplicate.take() {
            add((l, r));
            if let Some(&around) = flow.ranges.iter().find(|&&(rl, rr)| rl <= l && r <= rr) {
                if around.0 > ack {
                    add(around);
                }
            }
        }
        for &(l, r) in &flow.ranges {
            if l > ack {
                add((l, r));
            }
        }
        write_sack(frame, &blocks[..count], max_len);
        count > 0
    }
}

/// The end of the data that came in order from `acked` on, as far as
/// `ranges` tell.
fn in_order_end(ranges: &[(TcpSeqNumber, TcpSeqNumber)], acked: TcpSeqNumber) -> TcpSeqNumber {
    let mut end = acked;
    while let Some(&(_, r)) = ranges.iter().find(|&&(l, r)| l <= end && end < r) {
        end = r;
    }
    end
}

/// The flow and acknowledgement number of an outgoing segment that may carry
/// SACK blocks (an ACK, not a SYN or RST).
fn read_ack(frame: &[u8]) -> Option<(Flow, TcpSeqNumber)> {
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
    if !tcp.ack() || tcp.syn() || tcp.rst() {
        return None;
    }
    let key = (src, tcp.src_port(), dst, tcp.dst_port());
    Some((key, tcp.ack_number()))
}

/// Replaces the SACK option of the TCP segment in `frame` (or adds one) with
/// `blocks`, as many as fit beside its other options and within `max_len`
/// bytes of frame, and fixes the lengths and checksums. Its data, if any,
/// follows the new header. With no blocks, a SACK option it has goes: a copy
/// sent again keeps those of its first sending, and a stale block below the
/// acknowledgement would read as a D-SACK (RFC 2883).
fn write_sack(frame: &mut Vec<u8>, blocks: &[(TcpSeqNumber, TcpSeqNumber)], max_len: usize) {
    let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
        return;
    };
    let eth_len = frame.len() - eth.payload().len();
    let v4 = eth.ethertype() == EthernetProtocol::Ipv4;
    let (ip_len, l4_len) = if v4 {
        match Ipv4Packet::new_checked(eth.payload()) {
            Ok(ip) => (usize::from(ip.header_len()), ip.payload().len()),
            Err(_) => return,
        }
    } else {
        match Ipv6Packet::new_checked(eth.payload()) {
            Ok(ip) => (40, ip.payload().len()),
            Err(_) => return,
        }
    };
    let tcp_at = eth_len + ip_len;
    let Ok(tcp) = TcpPacket::new_checked(&frame[tcp_at..tcp_at + l4_len]) else {
        return;
    };
    let header_len = usize::from(tcp.header_len());
    if blocks.is_empty() && header_len <= 20 {
        return;
    }
    // The other options, as they were (timestamps, if any).
    let mut options = Vec::with_capacity(MAX_OPTIONS);
    let mut had_sack = false;
    for option in TcpOptions(tcp.options()) {
        let Ok(option) = option else { return };
        if option[0] == 5 {
            had_sack = true;
        } else {
            options.extend_from_slice(option);
        }
    }
    let data_len = l4_len - header_len;
    // Room for blocks: in the option space, and in the frame (the header
    // without options, the other options, two no-operations, the option's
    // kind and length, then eight bytes a block, then the data).
    let fixed = tcp_at + 20 + options.len() + 4 + data_len;
    let room = MAX_OPTIONS.saturating_sub(options.len() + 4) / 8;
    let count = blocks
        .len()
        .min(room)
        .min(max_len.saturating_sub(fixed) / 8);
    if (blocks.is_empty() && !had_sack) || (!blocks.is_empty() && count == 0) {
        // Nothing to take out, or no room (smoltcp's own block, if any, stays).
        return;
    }
    let data = frame[tcp_at + header_len..tcp_at + l4_len].to_vec();
    if count > 0 {
        options.extend_from_slice(&[1, 1, 5, (2 + 8 * count) as u8]);
        for &(l, r) in &blocks[..count] {
            options.extend_from_slice(&(l.0 as u32).to_be_bytes());
            options.extend_from_slice(&(r.0 as u32).to_be_bytes());
        }
    }
    while options.len() % 4 != 0 {
        options.push(1);
    }
    let tcp_len = 20 + options.len();
    frame.truncate(tcp_at + 20);
    frame.extend_from_slice(&options);
    frame.extend_from_slice(&data);
    let l3 = &mut frame[eth_len..];
    let (src, dst): (IpAddress, IpAddress) = if v4 {
        let mut ip = Ipv4Packet::new_unchecked(&mut *l3);
        ip.set_total_len((ip_len + tcp_len + data.len()) as u16);
        ip.fill_checksum();
        (ip.src_addr().into(), ip.dst_addr().into())
    } else {
        let mut ip = Ipv6Packet::new_unchecked(&mut *l3);
        ip.set_payload_len((tcp_len + data.len()) as u16);
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

    /// The flow's SYN, permitting SACK.
    fn syn_permitting_sack() -> TcpView {
        let frame = segment(true, 999, 1, &[], None);
        let mut syn = frames::tcp_view(&frame).unwrap();
        syn.syn = true;
        syn.sack_permitted = true;
        syn
    }

    /// `SackBlocks` that received 1100..1200, 1300..1400 and 1500..1600 (in
    /// that order) with 1000..1100 and 1200..1300 missing.
    fn three_ranges(permitted: bool) -> SackBlocks {
        let mut sacks = SackBlocks::default();
        let mut syn = syn_permitting_sack();
        syn.sack_permitted = permitted;
        sacks.on_ingress(&syn);
        for seq in [1100, 1300, 1500] {
            let data = segment(true, seq, 1, &[7; 100], None);
            sacks.on_ingress(&frames::tcp_view(&data).unwrap());
        }
        sacks
    }

    #[test]
    fn acks_report_every_range_that_came_out_of_order() {
        let mut sacks = three_ranges(true);
        // smoltcp's ACK names the latest block only.
        let mut ack = segment(false, 1, 1000, &[], Some((1500, 1600)));
        sacks.on_egress(&mut ack, 1514);
        assert_eq!(blocks_of(&ack), [(1500, 1600), (1300, 1400), (1100, 1200)]);
        // Once 1000..1200 is in, the first range is below the acknowledgement.
        let mut ack = segment(false, 1, 1200, &[], Some((1300, 1400)));
        sacks.on_egress(&mut ack, 1514);
        assert_eq!(blocks_of(&ack), [(1500, 1600), (1300, 1400)]);
        // Nothing above the acknowledgement: no option, and a stale one goes.
        let mut plain = segment(false, 1, 1600, &[], None);
        let before = plain.clone();
        sacks.on_egress(&mut plain, 1514);
        assert_eq!(plain, before);
        let mut stale = segment(false, 1, 1600, &[], Some((1300, 1400)));
        sacks.on_egress(&mut stale, 1514);
        assert_eq!(stale, before);
    }

    #[test]
    fn data_segments_carry_the_blocks_that_fit() {
        let mut sacks = three_ranges(true);
        // Data going the other way, acknowledging 1000: its blocks come
        // before its data, which stays whole.
        let mut data = segment(false, 1, 1000, &[9; 200], None);
        sacks.on_egress(&mut data, 1514);
        assert_eq!(blocks_of(&data), [(1500, 1600), (1300, 1400), (1100, 1200)]);
        let eth = EthernetFrame::new_checked(&data[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(
            TcpPacket::new_checked(ip.payload()).unwrap().payload(),
            [9; 200]
        );
        // Within the MTU: room for one block only.
        let mut big = segment(false, 1, 1000, &[9; 1400], None);
        let room = big.len() + 4 + 8;
        sacks.on_egress(&mut big, room);
        assert_eq!(blocks_of(&big), [(1500, 1600)]);
        assert!(big.len() <= room);
        // A full-sized one has none.
        let mut full = segment(false, 1, 1000, &[9; 1460], None);
        let before = full.clone();
        sacks.on_egress(&mut full, before.len());
        assert_eq!(full, before);
    }

    #[test]
    fn no_blocks_unless_the_peer_permitted_sack() {
        let mut sacks = three_ranges(false);
        let mut ack = segment(false, 1, 1000, &[], None);
        let before = ack.clone();
        sacks.on_egress(&mut ack, 1514);
        assert_eq!(ack, before);
    }

    #[test]
    fn a_segment_smoltcp_dropped_is_not_reported() {
        let mut sacks = three_ranges(true);
        let mut ack = segment(false, 1, 1000, &[], None);
        sacks.on_egress(&mut ack, 1514);
        // 1700..1800 beyond the holes, dropped (smoltcp said nothing).
        let dropped = segment(true, 1700, 1, &[7; 100], None);
        let view = frames::tcp_view(&dropped).unwrap();
        assert!(!sacks.on_ingress(&view));
        sacks.not_kept(&view);
        let mut ack = segment(false, 1, 1000, &[], None);
        sacks.on_egress(&mut ack, 1514);
        assert_eq!(blocks_of(&ack), [(1500, 1600), (1300, 1400), (1100, 1200)]);
        // An in-order segment smoltcp does not answer at once (a delayed
        // ACK) was kept: a copy of it before its ACK is a duplicate.
        let in_order = segment(true, 1000, 1, &[7; 100], None);
        let view = frames::tcp_view(&in_order).unwrap();
        assert!(!sacks.on_ingress(&view));
        sacks.not_kept(&view);
        assert!(sacks.on_ingress(&view));
    }

    #[test]
    fn four_blocks_are_read() {
        let mut sacks = SackBlocks::default();
        sacks.on_ingress(&syn_permitting_sack());
        for seq in [1100, 1300, 1500, 1700] {
            let data = segment(true, seq, 1, &[7; 100], None);
            sacks.on_ingress(&frames::tcp_view(&data).unwrap());
        }
        let mut ack = segment(false, 1, 1000, &[], None);
        sacks.on_egress(&mut ack, 1514);
        let view = frames::tcp_view(&ack).unwrap();
        assert_eq!(
            view.sacks,
            [
                Some((1700, 1800)),
                Some((1500, 1600)),
                Some((1300, 1400)),
                Some((1100, 1200))
            ]
        );
    }
}
