//! IPv4 fragmentation and reassembly, done by the engine rather than smoltcp.
//!
//! smoltcp can do both for IPv4, but with buffers fixed at build time inside every
//! interface: 64 KiB to fragment and four times 64 KiB to reassemble, for a stack
//! that may never see a fragment. The engine does it at the device boundary as it
//! does for IPv6: [`fragments`] cuts a packet smoltcp built whole (see
//! `link_mtu.rs`) into packets of the link's MTU, and [`Reassembler`] reads
//! arriving fragments for [`super::reassembly`], which hands smoltcp the whole
//! packet. Memory comes with the fragments and goes with their datagram.
//!
//! As Linux: a datagram's fragments may take 30 seconds (`ipfrag_time`), at most
//! [`MAX_PENDING`](super::reassembly::MAX_PENDING) datagrams wait at once, and a
//! datagram with overlapping fragments is dropped whole.

use super::reassembly::{Datagrams, Fragment, Piece, Whole};
use smoltcp::wire::{EthernetFrame, EthernetProtocol, Ipv4Address, Ipv4Packet};
use std::time::Duration;

/// How long the fragments of one datagram may take (Linux's `ipfrag_time`).
const REASSEMBLY_TIME: Duration = Duration::from_secs(30);

/// The most an IPv4 packet holds, header included.
const MAX_PACKET: usize = 65_535;

/// Cuts the IPv4 `packet` (header and payload, as it would go out whole) into
/// fragments of at most `mtu` bytes numbered `ident`; every fragment carries the
/// packet's header (the packets the stack makes carry no options) and all but
/// the last a multiple of 8 bytes of its payload (RFC 791). Empty if `packet` is
/// not an IPv4 packet.
pub(crate) fn fragments(packet: &[u8], mtu: usize, ident: u16) -> Vec<Vec<u8>> {
    let Ok(ip) = Ipv4Packet::new_checked(packet) else {
        return Vec::new();
    };
    let header = usize::from(ip.header_len());
    let payload = &packet[header..usize::from(ip.total_len())];
    let per_fragment = (mtu.saturating_sub(header) / 8 * 8).max(8);
    payload
        .chunks(per_fragment)
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * per_fragment;
            let mut fragment = Vec::with_capacity(header + chunk.len());
            fragment.extend_from_slice(&packet[..header]);
            fragment.extend_from_slice(chunk);
            let mut ip = Ipv4Packet::new_unchecked(&mut fragment[..]);
            ip.set_total_len((header + chunk.len()) as u16);
            ip.set_ident(ident);
            ip.clear_flags();
            ip.set_more_frags(offset + chunk.len() < payload.len());
            ip.set_frag_offset(offset as u16);
            ip.fill_checksum();
            fragment
        })
        .collect()
}

/// What identifies the fragments of one datagram: addresses, protocol and
/// identification (RFC 791).
type Key = (Ipv4Address, Ipv4Address, u8, u16);

/// Collects IPv4 fragments into whole packets (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    /// What is kept of the first fragment: its Ethernet and IPv4 headers.
    datagrams: Datagrams<Key, Vec<u8>, { REASSEMBLY_TIME.as_secs() }>,
}

impl Reassembler {
    /// Looks at an incoming Ethernet frame.
    pub(crate) fn on_frame(&mut self, frame: &[u8], now: Duration) -> Fragment {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Fragment::NotOne;
        };
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return Fragment::NotOne;
        }
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
            return Fragment::NotOne;
        };
        let (offset, more) = (usize::from(ip.frag_offset()), ip.more_frags());
        if offset == 0 && !more {
            return Fragment::NotOne;
        }
        let data = ip.payload();
        let header = usize::from(ip.header_len());
        // Every fragment but the last carries whole 8-byte blocks; none reaches
        // beyond what one packet holds.
        let plausible = (!more || data.len().is_multiple_of(8))
            && !data.is_empty()
            && header + offset + data.len() <= MAX_PACKET;
        if !plausible {
            return Fragment::Taken;
        }
        let headers = frame.len() - eth.payload().len() + header;
        let key = (
            ip.src_addr(),
            ip.dst_addr(),
            u8::from(ip.next_header()),
            ip.ident(),
        );
        let piece = Piece {
            offset,
            more,
            data,
            head: (offset == 0).then(|| frame[..headers].to_vec()),
        };
        match self.datagrams.add(key, piece, now) {
            Some(Whole { head, payload }) => Fragment::Complete(whole(&head, &payload)),
            None => Fragment::Taken,
        }
    }
}

/// The Ethernet frame of the unfragmented packet: `headers` (Ethernet and IPv4,
/// as in the first fragment) with `payload`, its length, no fragment fields and
/// a new header checksum.
fn whole(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(headers.len() + payload.len());
    frame.extend_from_slice(headers);
    frame.extend_from_slice(payload);
    let ip_start = EthernetFrame::<&[u8]>::header_len();
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[ip_start..]);
    let header = usize::from(ip.header_len());
    ip.set_total_len((header + payload.len()) as u16);
    ip.set_more_frags(false);
    ip.set_frag_offset(0);
    ip.fill_checksum();
    frame
}

#[cfg(test)]
mod tests {
    use super::super::reassembly::MAX_PENDING;
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpProtocol, Ipv4Repr};

    const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    /// The largest UDP payload over IPv4: 65,535 less the IPv4 and UDP headers.
    const MAX_UDP_V4: usize = 65_507;

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 255) as u8).collect()
    }

    /// A whole UDP-protocol IPv4 packet carrying `data` (its UDP header is part
    /// of `data` here: reassembly does not look inside).
    fn packet(data: &[u8]) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: A,
            dst_addr: B,
            next_header: IpProtocol::Udp,
            payload_len: data.len(),
            hop_limit: 64,
        };
        let mut packet = vec![0u8; 20 + data.len()];
        repr.emit(
            &mut Ipv4Packet::new_unchecked(&mut packet[..]),
            &ChecksumCapabilities::default(),
        );
        packet[20..].copy_from_slice(data);
        packet
    }

    /// `packet` (IPv4) behind an Ethernet header.
    fn framed(packet: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(packet);
        frame
    }

    fn cut(data: &[u8], ident: u16) -> Vec<Vec<u8>> {
        fragments(&packet(data), 1500, ident)
            .iter()
            .map(|p| framed(p))
            .collect()
    }

    /// The reassembled packet's payload, after checking its header.
    fn reassembled(frame: &[u8]) -> Vec<u8> {
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert!(!ip.more_frags() && ip.frag_offset() == 0);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (A, B));
        assert_eq!(ip.next_header(), IpProtocol::Udp);
        ip.payload().to_vec()
    }

    fn feed(r: &mut Reassembler, parts: &[Vec<u8>], now: Duration) -> Option<Vec<u8>> {
        let mut whole = None;
        for part in parts {
            match r.on_frame(part, now) {
                Fragment::Complete(frame) => whole = Some(frame),
                Fragment::Taken => {}
                Fragment::NotOne => panic!("a fragment taken for a whole packet"),
            }
        }
        whole
    }

    #[test]
    fn fragments_fit_the_mtu_and_carry_their_place() {
        let data = payload(4000);
        let parts = fragments(&packet(&data), 1500, 0x42);
        assert_eq!(parts.len(), 3);
        let mut rebuilt = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            assert!(part.len() <= 1500);
            let ip = Ipv4Packet::new_checked(&part[..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(
                (ip.ident(), ip.hop_limit(), ip.dont_frag()),
                (0x42, 64, false)
            );
            assert_eq!(ip.more_frags(), i < 2);
            assert_eq!(usize::from(ip.frag_offset()), rebuilt.len());
            rebuilt.extend_from_slice(ip.payload());
        }
        assert_eq!(rebuilt, data);
    }

    #[test]
    fn fragments_come_back_whole_in_any_order() {
        let data = payload(20_000);
        let parts = cut(&data, 7);
        assert_eq!(parts.len(), 14);
        let orders: [Vec<usize>; 3] = [
            (0..14).collect(),
            (0..14).rev().collect(),
            (0..14).map(|i| (i * 5) % 14).collect(),
        ];
        for order in orders {
            let mut r = Reassembler::default();
            let shuffled: Vec<Vec<u8>> = order.iter().map(|&i| parts[i].clone()).collect();
            let whole = feed(&mut r, &shuffled, Duration::ZERO).expect("complete");
            assert_eq!(reassembled(&whole), data, "order {order:?}");
            assert_eq!(r.datagrams.len(), 0, "nothing kept once whole");
        }
    }

    #[test]
    fn the_largest_datagram_fits() {
        let data = payload(MAX_UDP_V4 + 8);
        assert_eq!(packet(&data).len(), MAX_PACKET);
        let mut r = Reassembler::default();
        let whole = feed(&mut r, &cut(&data, 1), Duration::ZERO).expect("complete");
        assert_eq!(reassembled(&whole), data);
        // A last fragment 8 bytes further would end beyond what a packet holds.
        let mut beyond = cut(&data, 2);
        let last = beyond.last_mut().unwrap();
        let mut ip = Ipv4Packet::new_unchecked(&mut last[14..]);
        ip.set_frag_offset(ip.frag_offset() + 8);
        ip.fill_checksum();
        assert_eq!(feed(&mut r, &beyond, Duration::ZERO), None);
    }

    #[test]
    fn datagrams_are_told_apart_by_addresses_protocol_and_identification() {
        let (one, two) = (payload(3000), payload(3100));
        let (a, b) = (cut(&one, 5), cut(&two, 6));
        let mut r = Reassembler::default();
        let interleaved = [&a[0], &b[0], &b[1], &a[1], &b[2]];
        let mut done = Vec::new();
        for part in interleaved {
            if let Fragment::Complete(frame) = r.on_frame(part, Duration::ZERO) {
                done.push(reassembled(&frame));
            }
        }
        assert_eq!(done, vec![two]);
        assert_eq!(
            feed(&mut r, &a[2..], Duration::ZERO).map(|f| reassembled(&f)),
            Some(one)
        );
    }

    #[test]
    fn overlapping_fragments_drop_the_datagram() {
        let parts = cut(&payload(4000), 3);
        let mut r = Reassembler::default();
        assert_eq!(r.on_frame(&parts[0], Duration::ZERO), Fragment::Taken);
        // A fragment starting inside the first one's data.
        let mut overlap = parts[1].clone();
        let mut ip = Ipv4Packet::new_unchecked(&mut overlap[14..]);
        ip.set_frag_offset(ip.frag_offset() - 8);
        ip.fill_checksum();
        assert_eq!(r.on_frame(&overlap, Duration::ZERO), Fragment::Taken);
        assert_eq!(r.datagrams.len(), 0, "dropped whole");
        // What comes later of it starts a datagram that never completes.
        assert_eq!(feed(&mut r, &parts[1..], Duration::ZERO), None);
        // The same offset again is an overlap too.
        let mut r = Reassembler::default();
        assert_eq!(
            feed(
                &mut r,
                &[parts[0].clone(), parts[0].clone()],
                Duration::ZERO
            ),
            None
        );
        assert_eq!(r.datagrams.len(), 0);
    }

    #[test]
    fn implausible_fragments_are_dropped() {
        let parts = cut(&payload(4000), 4);
        let mut r = Reassembler::default();
        // A middle fragment whose length is not a multiple of 8.
        let mut odd = parts[1].clone();
        odd.pop();
        let len = odd.len() - 14;
        let mut ip = Ipv4Packet::new_unchecked(&mut odd[14..]);
        ip.set_total_len(len as u16);
        ip.fill_checksum();
        assert_eq!(r.on_frame(&odd, Duration::ZERO), Fragment::Taken);
        assert_eq!(r.datagrams.len(), 0);
    }

    #[test]
    fn unfinished_datagrams_are_bounded_and_expire() {
        let mut r = Reassembler::default();
        for ident in 0..100 {
            let first = &cut(&payload(4000), ident)[0];
            assert_eq!(r.on_frame(first, Duration::ZERO), Fragment::Taken);
        }
        assert_eq!(r.datagrams.len(), MAX_PENDING);
        // A datagram beyond the bound is dropped, whole or not.
        assert_eq!(
            feed(&mut r, &cut(&payload(4000), 500), Duration::ZERO),
            None
        );
        // Until the waiting ones expire.
        let later = cut(&payload(4000), 1000);
        assert_eq!(r.on_frame(&later[0], REASSEMBLY_TIME), Fragment::Taken);
        assert_eq!(r.datagrams.len(), 1, "the old ones expired");
        let whole = feed(
            &mut r,
            &later[1..],
            REASSEMBLY_TIME + Duration::from_secs(29),
        );
        assert!(whole.is_some(), "within its own 30 seconds");
        let slow = cut(&payload(4000), 1001);
        assert_eq!(r.on_frame(&slow[0], Duration::ZERO), Fragment::Taken);
        assert_eq!(
            feed(&mut r, &slow[1..], REASSEMBLY_TIME + REASSEMBLY_TIME),
            None,
            "too late: the first fragment expired"
        );
    }

    #[test]
    fn whole_packets_and_other_frames_pass() {
        let mut r = Reassembler::default();
        assert_eq!(r.on_frame(&[0u8; 60], Duration::ZERO), Fragment::NotOne);
        assert_eq!(
            r.on_frame(&framed(&packet(&payload(100))), Duration::ZERO),
            Fragment::NotOne
        );
        let mut v6 = framed(&packet(&payload(100)));
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(r.on_frame(&v6, Duration::ZERO), Fragment::NotOne);
    }
}
