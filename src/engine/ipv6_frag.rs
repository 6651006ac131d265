//! IPv6 fragmentation and reassembly, which smoltcp 0.14 does not have.
//!
//! smoltcp neither fragments nor reassembles IPv6: a UDP datagram larger than the
//! link's MTU could be neither sent nor received, where Linux sends it in
//! fragments (RFC 8200, section 4.5) and puts them together on arrival. The engine
//! does both at the device boundary: [`fragments`] cuts a packet smoltcp built
//! whole (see `link_mtu.rs`) into IPv6 packets with a Fragment header, and
//! [`Reassembler`] reads arriving fragments for [`super::reassembly`], which
//! hands smoltcp the whole packet: bounded, 60 seconds to complete (Linux's
//! `ip6frag_time`), a datagram with overlapping fragments dropped whole (RFC
//! 5722).

use super::reassembly::{Datagrams, Fragment, Piece, Whole};
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv6Address, Ipv6Packet};
use std::time::Duration;

/// The Fragment header's protocol number.
pub(crate) const FRAGMENT: u8 = 44;

/// Bytes of the IPv6 header and of the Fragment header.
const IPV6_HEADER: usize = 40;
const FRAGMENT_HEADER: usize = 8;

/// The largest UDP payload over IPv6 without jumbograms: 65,535 bytes of IPv6
/// payload, less the UDP header.
pub(crate) const MAX_UDP_V6: usize = 65_535 - 8;

/// How long the fragments of one datagram may take (Linux's `ip6frag_time`).
const REASSEMBLY_TIME: Duration = Duration::from_secs(60);

/// Cuts the upper-layer packet `payload` (protocol `next_header`, say a whole UDP
/// datagram) into IPv6 packets from `src` to `dst` of at most `mtu` bytes, each
/// with a Fragment header numbered `ident`.
pub(crate) fn fragments(
    src: Ipv6Address,
    dst: Ipv6Address,
    hop_limit: u8,
    next_header: IpProtocol,
    payload: &[u8],
    mtu: usize,
    ident: u32,
) -> Vec<Vec<u8>> {
    // Every fragment but the last carries a multiple of 8 bytes.
    let per_fragment = (mtu.saturating_sub(IPV6_HEADER + FRAGMENT_HEADER) / 8 * 8).max(8);
    payload
        .chunks(per_fragment)
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * per_fragment;
            let more = offset + chunk.len() < payload.len();
            let mut packet = vec![0u8; IPV6_HEADER + FRAGMENT_HEADER + chunk.len()];
            let mut ip = Ipv6Packet::new_unchecked(&mut packet[..]);
            ip.set_version(6);
            ip.set_traffic_class(0);
            ip.set_flow_label(0);
            ip.set_payload_len((FRAGMENT_HEADER + chunk.len()) as u16);
            ip.set_next_header(IpProtocol::Unknown(FRAGMENT));
            ip.set_hop_limit(hop_limit);
            ip.set_src_addr(src);
            ip.set_dst_addr(dst);
            let header = &mut packet[IPV6_HEADER..IPV6_HEADER + FRAGMENT_HEADER];
            header[0] = next_header.into();
            header[1] = 0;
            let offset_and_flag = ((offset / 8) as u16) << 3 | u16::from(more);
            header[2..4].copy_from_slice(&offset_and_flag.to_be_bytes());
            header[4..8].copy_from_slice(&ident.to_be_bytes());
            packet[IPV6_HEADER + FRAGMENT_HEADER..].copy_from_slice(chunk);
            packet
        })
        .collect()
}

/// What identifies the fragments of one datagram.
type Key = (Ipv6Address, Ipv6Address, u32);

/// What reassembly keeps from the first fragment: its Ethernet and IPv6 headers,
/// and the protocol of the payload.
type Head = (Vec<u8>, u8);

/// Collects IPv6 fragments into whole packets (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    datagrams: Datagrams<Key, Head, { REASSEMBLY_TIME.as_secs() }>,
}

impl Reassembler {
    /// Looks at an incoming Ethernet frame.
    pub(crate) fn on_frame(&mut self, frame: &[u8], now: Duration) -> Fragment {
        let view = match FragmentView::read(frame) {
            Ok(view) => view,
            Err(not_a_fragment_or_taken) => return not_a_fragment_or_taken,
        };
        if view.offset == 0 && !view.more {
            // An atomic fragment (RFC 6946): the whole packet, with a needless
            // Fragment header.
            return Fragment::Complete(whole(view.headers, view.next_header, view.data));
        }
        if !view.plausible() {
            return Fragment::Taken;
        }
        let piece = Piece {
            offset: view.offset,
            more: view.more,
            data: view.data,
            head: (view.offset == 0).then(|| (view.headers.to_vec(), view.next_header)),
        };
        match self.datagrams.add(view.key, piece, now) {
            Some(Whole {
                head: (headers, next_header),
                payload,
            }) => Fragment::Complete(whole(&headers, next_header, &payload)),
            None => Fragment::Taken,
        }
    }
}

/// An IPv6 fragment, as read from its Ethernet frame.
struct FragmentView<'a> {
    key: Key,
    /// The protocol of the reassembled payload.
    next_header: u8,
    /// Where the data goes in the payload, and whether fragments follow.
    offset: usize,
    more: bool,
    data: &'a [u8],
    /// The frame's Ethernet and IPv6 headers.
    headers: &'a [u8],
}

impl<'a> FragmentView<'a> {
    /// Reads `frame` as an IPv6 fragment; if it is none, what becomes of it: left
    /// alone (not one) or dropped (a Fragment header cut short).
    fn read(frame: &'a [u8]) -> Result<FragmentView<'a>, Fragment> {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Err(Fragment::NotOne);
        };
        if eth.ethertype() != EthernetProtocol::Ipv6 {
            return Err(Fragment::NotOne);
        }
        let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else {
            return Err(Fragment::NotOne);
        };
        if u8::from(ip.next_header()) != FRAGMENT {
            return Err(Fragment::NotOne);
        }
        let payload = ip.payload();
        if payload.len() < FRAGMENT_HEADER {
            return Err(Fragment::Taken);
        }
        let offset_and_flag = u16::from_be_bytes([payload[2], payload[3]]);
        let ident = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
        let eth_and_ip = frame.len() - eth.payload().len() + IPV6_HEADER;
        Ok(FragmentView {
            key: (ip.src_addr(), ip.dst_addr(), ident),
            next_header: payload[0],
            offset: usize::from(offset_and_flag >> 3) * 8,
            more: offset_and_flag & 1 == 1,
            data: &payload[FRAGMENT_HEADER..],
            headers: &frame[..eth_and_ip],
        })
    }

    /// Whether the fragment could be part of any datagram: every fragment but the
    /// last is a multiple of 8 bytes; none reaches beyond 65,535 bytes of payload.
    fn plausible(&self) -> bool {
        let whole_blocks = !self.more || self.data.len().is_multiple_of(8);
        whole_blocks && !self.data.is_empty() && self.offset + self.data.len() <= 65_535
    }
}

/// The Ethernet frame of the unfragmented packet: `headers` (Ethernet and IPv6, as
/// in a fragment) with `next_header` and a payload length for `data`.
fn whole(headers: &[u8], next_header: u8, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(headers.len() + data.len());
    frame.extend_from_slice(headers);
    frame.extend_from_slice(data);
    let ip_start = headers.len() - IPV6_HEADER;
    let mut ip = Ipv6Packet::new_unchecked(&mut frame[ip_start..]);
    ip.set_next_header(IpProtocol::from(next_header));
    ip.set_payload_len(data.len() as u16);
    frame
}

#[cfg(test)]
mod tests {
    use super::super::reassembly::MAX_PENDING;
    use super::*;

    const A: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// `packet` (IPv6) behind an Ethernet header.
    fn framed(packet: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&[0x86, 0xdd]);
        frame.extend_from_slice(packet);
        frame
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 255) as u8).collect()
    }

    fn cut(data: &[u8], ident: u32) -> Vec<Vec<u8>> {
        fragments(A, B, 64, IpProtocol::Udp, data, 1500, ident)
            .iter()
            .map(|p| framed(p))
            .collect()
    }

    fn reassembled(frame: &[u8]) -> (IpProtocol, Vec<u8>) {
        let ip = Ipv6Packet::new_checked(&frame[14..]).unwrap();
        (ip.next_header(), ip.payload().to_vec())
    }

    #[test]
    fn fragments_fit_the_mtu_and_come_back_whole_in_any_order() {
        let data = payload(20_000);
        let mut parts = cut(&data, 7);
        assert_eq!(parts.len(), 14);
        assert!(parts.iter().all(|f| f.len() <= 14 + 1500));
        parts.reverse();
        let mut r = Reassembler::default();
        let last = parts.pop().unwrap();
        for part in &parts {
            assert_eq!(r.on_frame(part, Duration::ZERO), Fragment::Taken);
        }
        let Fragment::Complete(frame) = r.on_frame(&last, Duration::ZERO) else {
            panic!("not complete");
        };
        assert_eq!(reassembled(&frame), (IpProtocol::Udp, data));
        assert_eq!(r.datagrams.len(), 0);
    }

    #[test]
    fn the_largest_datagram_fits() {
        let data = payload(MAX_UDP_V6 + 8);
        let mut r = Reassembler::default();
        let mut whole = None;
        for part in cut(&data, 1) {
            if let Fragment::Complete(frame) = r.on_frame(&part, Duration::ZERO) {
                whole = Some(frame);
            }
        }
        assert_eq!(reassembled(&whole.expect("complete")).1, data);
    }

    #[test]
    fn overlapping_fragments_drop_the_datagram() {
        let data = payload(4000);
        let parts = cut(&data, 3);
        let mut r = Reassembler::default();
        assert_eq!(r.on_frame(&parts[0], Duration::ZERO), Fragment::Taken);
        // The same offset again, with other bytes: an overlap.
        let mut forged = parts[0].clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(r.on_frame(&forged, Duration::ZERO), Fragment::Taken);
        assert_eq!(r.datagrams.len(), 0, "dropped whole");
        for part in &parts[1..] {
            assert_eq!(r.on_frame(part, Duration::ZERO), Fragment::Taken);
        }
    }

    #[test]
    fn unfinished_datagrams_are_bounded_and_expire() {
        let mut r = Reassembler::default();
        for ident in 0..100 {
            let first = &cut(&payload(4000), ident)[0];
            assert_eq!(r.on_frame(first, Duration::ZERO), Fragment::Taken);
        }
        assert_eq!(r.datagrams.len(), MAX_PENDING);
        let later = &cut(&payload(4000), 1000)[0];
        r.on_frame(later, REASSEMBLY_TIME);
        assert_eq!(r.datagrams.len(), 1, "the old ones expired");
    }

    #[test]
    fn other_frames_pass() {
        let mut r = Reassembler::default();
        assert_eq!(r.on_frame(&[0u8; 60], Duration::ZERO), Fragment::NotOne);
        let mut packet = fragments(A, B, 64, IpProtocol::Udp, &payload(100), 1500, 9)[0].clone();
        // An atomic fragment is the packet itself.
        let Fragment::Complete(frame) = r.on_frame(&framed(&packet), Duration::ZERO) else {
            panic!("an atomic fragment is whole");
        };
        assert_eq!(reassembled(&frame), (IpProtocol::Udp, payload(100)));
        packet[6] = 17;
        assert_eq!(
            r.on_frame(&framed(&packet), Duration::ZERO),
            Fragment::NotOne
        );
    }
}
