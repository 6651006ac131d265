//! Stretch acknowledgements: in steady bulk, a bare ACK may wait for the next.
//!
//! Every frame costs a `vde_switch` the same few microseconds of its one thread
//! whatever it carries, and a bulk receiver's ACKs were one frame in nine (one
//! per batch of frames its pump read). Linux's receivers, whose GRO hands TCP
//! up to 64 KiB at once, acknowledge each such batch: ACKs stretched over many
//! segments are what a bulk sender meets. Here a receiver in steady bulk
//! (decided by the engine: nothing out of order, past slow start and loss, the
//! last segment a full one) lets its bare ACK wait while it covers less than a
//! quarter of the window beyond the last ACK that left; the next ACK replaces
//! it, so the peer sees one ACK where it would have seen three.
//!
//! A held ACK leaves at the latest [`HOLD`] after it was first held (the
//! delayed-ACK bound), whatever came since. A sender whose window is smaller
//! than the stretch, or that ran out of data on a full segment, stops and
//! waits for it: a hold that ends with the peer silent for half of that is
//! taken as such a sender, and stops stretching on the flow for a while that
//! doubles each time ([`CALM`]). PSH does not tell: smoltcp marks every
//! segment that empties its ring, which in bulk is the last of each burst.

use std::time::Duration;

use smoltcp::wire::TcpSeqNumber;

use super::flow_hash::FlowMap;
use super::frames::Flow;

/// The longest a bare ACK waits: the delayed ACK's bound (`ACK_DELAY`).
pub(crate) const HOLD: Duration = Duration::from_millis(1);

/// Silence from the peer, at the end of a hold, that shows it waited for it.
const SILENCE: Duration = Duration::from_micros(500);

/// Bytes acknowledged without a hold after a hold ran out, doubled after each
/// further one (a sender whose window is below the stretch waits for every
/// held ACK, and is met at most once per this many bytes).
const CALM: usize = 4 << 20;

/// Holds that may run out on a flow before it is never stretched again (the
/// calm after the last is 256 MiB).
const MAX_CALM_SHIFT: u32 = 6;

/// A bare ACK waiting to leave.
struct Held {
    frame: Vec<u8>,
    ack: TcpSeqNumber,
    /// When the first ACK it replaced was held.
    since: Duration,
    /// When the peer's last segment made it (the ACK it replaced last).
    latest: Duration,
}

/// The last acknowledgement that left on a flow, and when stretching may
/// resume after a hold ran out.
#[derive(Clone, Copy)]
struct Released {
    ack: TcpSeqNumber,
    window: u16,
    /// No hold before the acknowledgement reaches this (after a hold ran out).
    calm_until: Option<TcpSeqNumber>,
    /// Holds that ended with the peer silent, waiting for them.
    timeouts: u32,
}

/// The held ACKs and the last released acknowledgement of each flow.
#[derive(Default)]
pub(crate) struct StretchAcks {
    released: FlowMap<Flow, Released>,
    /// Flows with a bare ACK waiting (few: those in bulk between two batches).
    held: FlowMap<Flow, Held>,
}

impl StretchAcks {
    /// A bare ACK of `flow`, acknowledging `ack` with the window field
    /// `window`, is about to leave: held if it stays within `stretch` bytes of
    /// the last that left (and does not reopen a window), else given back to go
    /// now. Whatever it replaces goes to `spare`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn offer(
        &mut self,
        flow: Flow,
        ack: TcpSeqNumber,
        window: u16,
        stretch: usize,
        now: Duration,
        frame: Vec<u8>,
        spare: &mut Vec<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        let holds = self.released.get_mut(&flow).is_some_and(|last| {
            if last.calm_until.is_some_and(|calm| ack >= calm) {
                last.calm_until = None;
            }
            ack >= last.ack
                && ack - last.ack < stretch
                && last.calm_until.is_none()
                && last.timeouts <= MAX_CALM_SHIFT
                // A window that doubled is news a window-bound sender waits for
                // (smoltcp's own rule for a window update).
                && u32::from(window) < 2 * u32::from(last.window).max(1)
        });
        if !holds {
            self.sent(flow, ack, window, spare);
            self.released.entry(flow).or_insert(Released {
                ack,
                window,
                calm_until: None,
                timeouts: 0,
            });
            return Some(frame);
        }
        let since = match self.held.remove(&flow) {
            Some(old) if old.since + HOLD <= now => {
                // Held long enough: this one goes (between two timer looks).
                spare.push(old.frame);
                self.sent(flow, ack, window, spare);
                return Some(frame);
            }
            Some(old) => {
                spare.push(old.frame);
                old.since
            }
            None => now,
        };
        let latest = now;
        self.held.insert(
            flow,
            Held {
                frame,
                ack,
                since,
                latest,
            },
        );
        None
    }

    /// A segment of `flow` that acknowledges `ack` with the window field
    /// `window` left: what was held is superseded (to `spare`). Only flows
    /// once offered a bare ACK are followed: a sender's data segments cost a
    /// lookup that misses.
    pub(crate) fn sent(
        &mut self,
        flow: Flow,
        ack: TcpSeqNumber,
        window: u16,
        spare: &mut Vec<Vec<u8>>,
    ) {
        if !self.held.is_empty() {
            if let Some(old) = self.held.remove(&flow) {
                spare.push(old.frame);
            }
        }
        if let Some(last) = self.released.get_mut(&flow) {
            last.ack = ack;
            last.window = window;
        }
    }

    /// Forgets a flow that ended; its held ACK goes to `spare`.
    pub(crate) fn forget(&mut self, flow: &Flow, spare: &mut Vec<Vec<u8>>) {
        if let Some(old) = self.held.remove(flow) {
            spare.push(old.frame);
        }
        self.released.remove(flow);
    }

    /// Moves the held ACKs whose time ran out to `out`; a flow whose peer
    /// had gone silent is calmed.
    pub(crate) fn take_due(&mut self, now: Duration, out: &mut Vec<Vec<u8>>) {
        if self.held.is_empty() {
            return;
        }
        let released = &mut self.released;
        self.held.retain(|flow, held| {
            if held.since + HOLD > now {
                return true;
            }
            if let Some(last) = released.get_mut(flow) {
                last.ack = held.ack;
                if held.latest + SILENCE <= now {
                    last.calm_until = Some(held.ack + (CALM << last.timeouts.min(MAX_CALM_SHIFT)));
                    last.timeouts += 1;
                }
            }
            out.push(std::mem::take(&mut held.frame));
            false
        });
    }

    /// When the next held ACK must leave.
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.held.values().map(|h| h.since + HOLD).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: Flow = (
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
        80,
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
        5000,
    );
    const STRETCH: usize = 32 * 1024;
    const MS: Duration = Duration::from_millis(1);

    fn offer(acks: &mut StretchAcks, ack: i32, now: Duration) -> bool {
        let mut spare = Vec::new();
        let frame = vec![ack as u8];
        let goes = acks.offer(
            FLOW,
            TcpSeqNumber(ack),
            1000,
            STRETCH,
            now,
            frame,
            &mut spare,
        );
        goes.is_some()
    }

    #[test]
    fn holds_within_the_stretch_and_lets_the_one_beyond_go() {
        let mut acks = StretchAcks::default();
        assert!(
            offer(&mut acks, 0, Duration::ZERO),
            "the first goes: nothing to measure from"
        );
        assert!(!offer(&mut acks, 10_000, MS / 10));
        assert!(!offer(&mut acks, 20_000, MS / 5), "replaces the held one");
        assert_eq!(acks.held.len(), 1);
        assert!(offer(&mut acks, 40_000, MS / 4), "beyond the stretch");
        assert!(acks.held.is_empty(), "superseded");
        assert!(
            !offer(&mut acks, 50_000, MS / 2),
            "measured from the one that left"
        );
    }

    #[test]
    fn a_hold_ends_by_its_bound_and_silence_calms_the_flow() {
        let mut acks = StretchAcks::default();
        offer(&mut acks, 0, Duration::ZERO);
        assert!(!offer(&mut acks, 1000, Duration::ZERO));
        // Segments kept coming: the hold ends at its bound, no calm.
        assert!(!offer(&mut acks, 2000, MS * 9 / 10));
        assert_eq!(acks.deadline(), Some(MS));
        let mut out = Vec::new();
        acks.take_due(MS - Duration::from_micros(1), &mut out);
        assert!(out.is_empty());
        acks.take_due(MS, &mut out);
        assert_eq!(out, vec![vec![2000i32 as u8]]);
        assert!(!offer(&mut acks, 3000, MS * 2), "still stretched");
        // Then silence: the peer waited for the held ACK.
        acks.take_due(MS * 3, &mut out);
        assert_eq!(out.len(), 2);
        assert!(offer(&mut acks, 4000, MS * 4), "calm");
        let calm_end = 3000 + CALM as i32;
        assert!(offer(&mut acks, calm_end - 1, MS * 5), "calm");
        assert!(!offer(&mut acks, calm_end, MS * 6), "stretched again");
    }

    #[test]
    fn a_window_that_doubles_goes_at_once() {
        let mut acks = StretchAcks::default();
        let mut spare = Vec::new();
        let mut offer_window = |ack: i32, window: u16| {
            acks.offer(
                FLOW,
                TcpSeqNumber(ack),
                window,
                STRETCH,
                Duration::ZERO,
                vec![],
                &mut spare,
            )
            .is_some()
        };
        assert!(offer_window(0, 100));
        assert!(!offer_window(1000, 150));
        assert!(offer_window(1000, 200));
    }
}
