//! The buffers the pump receives frames into, as many as the traffic needs.
//!
//! A batch call ([`Link::recv_batch`](crate::link::Link::recv_batch)) takes one
//! buffer of [`MAX_FRAME`] bytes per frame. Holding a full batch of them for every
//! stack (32 x 9,234 bytes) cost more than everything else an idle stack holds,
//! and most stacks never see more than a frame at a time. So the batch starts
//! with two buffers (one frame, and room to see that the link had no more: no
//! second call just to hear `WouldBlock`), doubles when a call fills every buffer it had (a burst is
//! waiting), and halves when the link runs dry after using few of them for a
//! second: a busy link gets its full batch within a few calls, and a quiet one
//! gives the memory back.
//!
//! The second matters: in bulk, calls that take a few frames come between calls
//! that take many, and a batch that halved at each of them and doubled again
//! freed and zeroed its 9 KiB buffers over and over, and the allocator gave the
//! pages back (`madvise`, whose TLB flush interrupts the other CPU) and faulted
//! them in again: about one `madvise` per 40 KiB received.

use crate::link::MAX_FRAME;
use std::time::Duration;

/// The most buffers a batch grows to (frames taken per system call).
pub(super) const MAX_BATCH: usize = 32;

/// The fewest: a lone frame leaves one buffer empty, which tells that the link
/// was drained by the call.
const MIN_BATCH: usize = 2;

/// How long a batch keeps buffers that no call needed before it halves.
const KEEP: Duration = Duration::from_secs(1);

/// Receive buffers and the lengths of the frames in them.
pub(super) struct RxBatch {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    /// When a call last used more than a quarter of the buffers.
    needed_at: Duration,
}

impl RxBatch {
    /// A batch of the fewest buffers.
    pub(super) fn new() -> RxBatch {
        let mut batch = RxBatch {
            bufs: Vec::new(),
            lens: Vec::new(),
            needed_at: Duration::ZERO,
        };
        batch.resize(MIN_BATCH);
        batch
    }

    /// The buffers and length slots to hand to the link.
    pub(super) fn slots(&mut self) -> (&mut [Vec<u8>], &mut [usize]) {
        (&mut self.bufs, &mut self.lens)
    }

    /// The first `count` frames received.
    pub(super) fn frames(&self, count: usize) -> impl Iterator<Item = &[u8]> {
        self.bufs
            .iter()
            .zip(&self.lens)
            .take(count)
            .map(|(buf, &len)| &buf[..len])
    }

    /// How many buffers it has.
    pub(super) fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// Adapts to a call at `now` that received `count` frames: every buffer
    /// used, twice as many next time.
    pub(super) fn took(&mut self, count: usize, now: Duration) {
        self.needed_at = now;
        if count == self.capacity() && count < MAX_BATCH {
            self.resize(count * 2);
        }
    }

    /// Adapts to the link running dry at `now` after `largest` frames at most in
    /// one call: half as many buffers when a quarter or fewer were used, and no
    /// call needed more for a second.
    pub(super) fn drained(&mut self, largest: usize, now: Duration) {
        if largest * 4 > self.capacity() {
            self.needed_at = now;
        } else if now.saturating_sub(self.needed_at) >= KEEP {
            self.resize(self.capacity() / 2);
        }
    }

    fn resize(&mut self, count: usize) {
        let count = count.clamp(MIN_BATCH, MAX_BATCH);
        self.bufs.resize_with(count, || vec![0; MAX_FRAME]);
        self.lens.resize(count, 0);
        self.bufs.shrink_to_fit();
        self.lens.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_grows_with_bursts_and_shrinks_when_the_link_is_quiet() {
        let mut batch = RxBatch::new();
        assert_eq!(batch.capacity(), MIN_BATCH);
        let mut now = Duration::from_secs(5);
        for expected in [4, 8, 16, 32, 32] {
            let full = batch.capacity();
            batch.took(full, now);
            assert_eq!(batch.capacity(), expected);
        }
        batch.took(20, now);
        batch.drained(20, now);
        assert_eq!(batch.capacity(), 32, "a busy link keeps its batch");
        now += KEEP / 2;
        batch.drained(1, now);
        assert_eq!(
            batch.capacity(),
            32,
            "a lull between bursts keeps the batch too"
        );
        now += KEEP / 2;
        for expected in [16, 8, 4, 2, 2] {
            batch.drained(1, now);
            assert_eq!(batch.capacity(), expected);
        }
        let (bufs, lens) = batch.slots();
        assert!(bufs.iter().all(|b| b.len() == MAX_FRAME) && lens.len() == bufs.len());
    }

    #[test]
    fn frames_are_cut_to_their_lengths() {
        let mut batch = RxBatch::new();
        let (bufs, lens) = batch.slots();
        bufs[0][..3].copy_from_slice(b"abc");
        bufs[1][..2].copy_from_slice(b"de");
        lens[..2].copy_from_slice(&[3, 2]);
        let frames: Vec<&[u8]> = batch.frames(2).collect();
        assert_eq!(frames, vec![&b"abc"[..], &b"de"[..]]);
    }
}
