//! Putting IP datagrams back together from their fragments, for both families.
//!
//! smoltcp is built without fragmentation of its own (its IPv4 reassembly and
//! fragmentation buffers are fixed arrays in every interface, 320 KiB a stack
//! whether or not a fragment ever comes), so the engine reassembles at the device
//! boundary, before smoltcp sees a frame: [`ipv4_frag`](super::ipv4_frag) and
//! [`ipv6_frag`](super::ipv6_frag) read their family's fragments, and
//! [`Datagrams`] here collects the pieces. Memory is taken as fragments arrive
//! and given back when the datagram is whole, dropped or expired.
//!
//! Reassembly takes hostile input, so it is bounded as Linux bounds it: a few
//! datagrams at a time per family, 64 KiB each, a time limit per datagram, and a
//! datagram with overlapping fragments is dropped whole (RFC 5722 for IPv6,
//! Linux since 4.19 for IPv4).

use super::{ipv4_frag, ipv6_frag};
use std::collections::BTreeMap;
use std::time::Duration;

/// Datagrams being reassembled at once, per family; a new one beyond that is
/// dropped.
pub(super) const MAX_PENDING: usize = 16;

/// What became of a frame given to a family's reassembler.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fragment {
    /// Not a fragment: process the frame as it is.
    NotOne,
    /// A fragment, kept (or dropped): nothing to process yet.
    Taken,
    /// The last missing fragment: this whole Ethernet frame replaces them.
    Complete(Vec<u8>),
}

/// The reassemblers of both families, as the engine's ingress uses them.
#[derive(Debug, Default)]
pub(super) struct Reassemblers {
    v4: ipv4_frag::Reassembler,
    v6: ipv6_frag::Reassembler,
}

impl Reassemblers {
    /// Looks at an incoming Ethernet frame (see [`Fragment`]).
    pub(super) fn on_frame(&mut self, frame: &[u8], now: Duration) -> Fragment {
        match self.v4.on_frame(frame, now) {
            Fragment::NotOne => self.v6.on_frame(frame, now),
            taken_or_complete => taken_or_complete,
        }
    }
}

/// One fragment: where its data goes in the datagram's payload, whether more
/// follow, and for the first one (at offset 0) what the family keeps to rebuild
/// the whole packet's headers.
pub(super) struct Piece<'a, H> {
    pub offset: usize,
    pub more: bool,
    pub data: &'a [u8],
    /// Given with the fragment at offset 0 only.
    pub head: Option<H>,
}

impl<H> Piece<'_, H> {
    /// One past the fragment's last byte in the payload.
    fn end(&self) -> usize {
        self.offset + self.data.len()
    }
}

/// A datagram whose fragments all arrived: the first fragment's head and the
/// payload put back together.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Whole<H> {
    pub head: H,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
struct Pending<H> {
    /// What the family kept from the fragment at offset 0.
    head: Option<H>,
    /// The fragments' data by offset.
    parts: BTreeMap<usize, Vec<u8>>,
    /// The payload's length, once the last fragment came.
    total: Option<usize>,
    started: Duration,
}

/// The datagrams of one family being reassembled, by the key that identifies a
/// datagram's fragments (addresses, protocol, identification); the fragments of
/// one datagram may take `LIMIT_SECS` seconds to arrive.
#[derive(Debug)]
pub(super) struct Datagrams<K, H, const LIMIT_SECS: u64> {
    pending: BTreeMap<K, Pending<H>>,
}

impl<K, H, const LIMIT_SECS: u64> Default for Datagrams<K, H, LIMIT_SECS> {
    fn default() -> Self {
        Datagrams {
            pending: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy, H, const LIMIT_SECS: u64> Datagrams<K, H, LIMIT_SECS> {
    /// How long the fragments of one datagram may take.
    pub(super) const LIMIT: Duration = Duration::from_secs(LIMIT_SECS);

    /// Takes a fragment of the datagram `key` at `now`; returns the datagram once
    /// it is whole. A fragment that overlaps another drops its datagram, as does
    /// one that disagrees with the datagram's known end; a new datagram beyond
    /// [`MAX_PENDING`] is dropped.
    pub(super) fn add(&mut self, key: K, piece: Piece<'_, H>, now: Duration) -> Option<Whole<H>> {
        self.pending
            .retain(|_, p| now.saturating_sub(p.started) < Self::LIMIT);
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING {
            return None;
        }
        let pending = self.pending.entry(key).or_insert_with(|| Pending {
            head: None,
            parts: BTreeMap::new(),
            total: None,
            started: now,
        });
        if !pending.fits(&piece) {
            self.pending.remove(&key);
            return None;
        }
        pending.add(piece);
        if !pending.is_complete() {
            return None;
        }
        self.pending.remove(&key).map(Pending::into_whole)
    }

    /// Datagrams waiting for fragments.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }
}

impl<H> Pending<H> {
    /// Whether `piece` agrees with the fragments already here: it overlaps none,
    /// ends inside a known total, and as the last one leaves no data beyond it.
    fn fits(&self, piece: &Piece<'_, H>) -> bool {
        let end = piece.end();
        let overlaps = self
            .parts
            .range(..end)
            .next_back()
            .is_some_and(|(&start, part)| start + part.len() > piece.offset);
        let beyond_end = self
            .total
            .is_some_and(|total| end > total || (!piece.more && end != total));
        let before_data = !piece.more
            && self
                .parts
                .iter()
                .next_back()
                .is_some_and(|(&last, part)| last + part.len() > end);
        !(overlaps || beyond_end || before_data)
    }

    /// Keeps a fragment that [`Pending::fits`].
    fn add(&mut self, piece: Piece<'_, H>) {
        if piece.head.is_some() {
            self.head = piece.head;
        }
        if !piece.more {
            self.total = Some(piece.offset + piece.data.len());
        }
        self.parts.insert(piece.offset, piece.data.to_vec());
    }

    /// Every fragment is here.
    fn is_complete(&self) -> bool {
        let (Some(total), Some(_)) = (self.total, &self.head) else {
            return false;
        };
        self.parts.values().map(Vec::len).sum::<usize>() == total
    }

    fn into_whole(self) -> Whole<H> {
        let mut payload = Vec::with_capacity(self.total.unwrap_or(0));
        for part in self.parts.values() {
            payload.extend_from_slice(part);
        }
        Whole {
            head: self.head.expect("complete"),
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(offset: usize, more: bool, data: &[u8], head: u8) -> Piece<'_, u8> {
        Piece {
            offset,
            more,
            data,
            head: (offset == 0).then_some(head),
        }
    }

    #[test]
    fn the_head_comes_from_the_first_fragment_whatever_the_order() {
        let mut d = Datagrams::<u32, u8, 1>::default();
        assert_eq!(d.add(7, piece(8, false, b"tail", 2), Duration::ZERO), None);
        let whole = d.add(7, piece(0, true, b"12345678", 1), Duration::ZERO);
        assert_eq!(
            whole,
            Some(Whole {
                head: 1,
                payload: b"12345678tail".to_vec()
            })
        );
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn a_last_fragment_short_of_data_already_here_drops_the_datagram() {
        let mut d = Datagrams::<u32, u8, 1>::default();
        assert_eq!(d.add(1, piece(16, true, &[0; 8], 0), Duration::ZERO), None);
        assert_eq!(d.add(1, piece(0, false, &[0; 8], 0), Duration::ZERO), None);
        assert_eq!(d.len(), 0);
    }
}
