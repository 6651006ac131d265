//! Loss recovery at the device boundary: the segments this stack sends are kept
//! until the peer acknowledges them, and sent again from here when they are
//! found lost, as Linux finds them.
//!
//! smoltcp 0.14 retransmits on three duplicate ACKs (the first unacknowledged
//! segment only) or when its retransmission timer expires, never sooner than
//! 1 s (`RTTE_MIN_RTO`, a constant), and then sends its whole window again. It
//! ignores the SACK blocks (RFC 2018) a peer sends, and has no NewReno partial
//! acknowledgement, no RACK and no tail-loss probe. Under 1% loss most windows
//! lose a segment that no duplicate ACK reveals, and each cost a second.
//!
//! So the engine keeps a copy of each segment of data (or FIN) it sends, until it
//! is acknowledged, in a scoreboard per flow (RFC 6675) that the peer's SACK
//! blocks mark, and sends a copy again when:
//! - three segments above it were SACKed (RFC 6675's DupThresh), or a segment
//!   sent after it was delivered and a reordering window passed since (RACK,
//!   RFC 8985): which also finds a lost retransmission;
//! - for a peer without SACK: the third duplicate ACK, and each partial
//!   acknowledgement after it (NewReno, RFC 6582);
//! - nothing came back for two round trips after the last segment (a tail-loss
//!   probe sends the last segment again, RFC 8985);
//! - the retransmission timer expires (RFC 6298, Linux's form: the smoothed
//!   round trip plus four deviations, 200 ms at least, doubling): then every
//!   segment not SACKed counts as lost.
//!
//! Retransmissions keep packet conservation: an ACK that tells of N segments
//! delivered lets at most N lost ones go again (one at least), so they never add
//! to what the network holds. smoltcp's own congestion controller still halves
//! its window on the peer's third duplicate ACK (see ARCHITECTURE.md's
//! decisions). A retransmission smoltcp makes of a segment that is SACKed, or
//! that the engine sent again less than a round trip ago, is dropped here.
//!
//! It also keeps the per-flow figures `TCP_INFO` reports (round trip,
//! retransmissions, bytes in flight).

use super::frames::{EgressSegment, Flow, TcpView};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, Ipv4Packet, Ipv6Packet, TcpPacket, TcpSeqNumber,
};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

/// The retransmission timer's floor, and the least of its margin over the round
/// trip (Linux's `TCP_RTO_MIN`).
const MIN_RTO: Duration = Duration::from_millis(200);

/// The timer before any round trip was measured (RFC 6298).
const INITIAL_RTO: Duration = Duration::from_secs(1);

/// The timer's ceiling.
const MAX_RTO: Duration = Duration::from_secs(60);

/// Timeouts in a row after which the engine leaves the flow to smoltcp's own
/// timer (which ends the connection in time); the last one waits 51 s.
const MAX_BACKOFFS: u32 = 8;

/// SACKed segments above a hole that make it a loss (RFC 6675's DupThresh),
/// and duplicate ACKs that make a loss without SACK.
const DUP_THRESH: usize = 3;

/// The shortest wait for a tail-loss probe (Linux's `TCP_TIMEOUT_MIN`).
const MIN_PROBE: Duration = Duration::from_millis(10);

/// Bytes of segments kept per flow at most: well above the send ring (64 KiB
/// by default); past it, segments go unkept and their losses are smoltcp's.
const MAX_KEPT: usize = 1 << 20;

/// Flows remembered at most; past that the table starts over (their losses are
/// then left to smoltcp).
const MAX_FLOWS: usize = 16 * 1024;

/// A segment sent and not yet acknowledged.
#[derive(Debug)]
struct Kept {
    seq: TcpSeqNumber,
    end: TcpSeqNumber,
    /// The end of its data: what a SACK block covers (a FIN is never SACKed).
    data_end: TcpSeqNumber,
    /// The whole frame as it went out.
    frame: Vec<u8>,
    /// When it was last sent.
    sent_at: Duration,
    /// Sent more than once (its acknowledgement times no round trip).
    again: bool,
    /// The peer SACKed it.
    sacked: bool,
    /// Found lost and not sent again since.
    lost: bool,
}

/// What is known about one flow's sending side.
#[derive(Debug, Default)]
struct FlowState {
    /// The highest acknowledgement the peer sent, and the window it gave with it.
    peer_ack: Option<TcpSeqNumber>,
    peer_window: u16,
    /// The peer's SYN offered SACK.
    sack_ok: bool,
    /// One past the highest sequence number this stack sent (data or FIN).
    sent_end: Option<TcpSeqNumber>,
    /// The acknowledgement number and window this stack sent last: what a copy
    /// sent again carries.
    expected: Option<TcpSeqNumber>,
    our_window: u16,
    /// When the acknowledgement last moved, or the timer last expired: the
    /// retransmission timer runs from here.
    since: Duration,
    /// Timeouts since the acknowledgement last moved.
    backoffs: u32,
    /// When new data last went out: the tail-loss probe waits from here.
    last_new: Duration,
    /// A tail-loss probe went out and nothing was acknowledged since.
    probed: bool,
    /// Duplicate ACKs in a row (for a peer without SACK).
    dup_acks: usize,
    /// In recovery until the acknowledgement reaches this (RFC 6582's
    /// `recover`).
    recover: Option<TcpSeqNumber>,
    /// RACK: when the most recently sent segment known delivered was sent, and
    /// the round trip it took.
    rack_sent_at: Option<Duration>,
    rack_rtt: Duration,
    /// The segments sent and not acknowledged, in sequence order.
    kept: VecDeque<Kept>,
    kept_bytes: usize,
    /// A round-trip measurement under way: the sequence number that ends it, and
    /// when its segment left. Dropped when anything is sent again (Karn).
    timing: Option<(TcpSeqNumber, Duration)>,
    srtt: Option<Duration>,
    /// The smoothed deviation of the round trips (RFC 6298).
    rttvar: Option<Duration>,
    min_rtt: Option<Duration>,
    /// Segments sent again (retransmissions), for `TCP_INFO`.
    retransmitted: u32,
    /// The most bytes in flight since the last loss, halved by each: what the
    /// sender's congestion window allowed, as seen from outside it (smoltcp
    /// keeps its own window private), for `TCP_INFO`.
    flight_peak: usize,
    /// Its `due_at` as filed in the index.
    filed: Option<Duration>,
}

/// What the boundary knows of a flow's sending side, for `TCP_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FlowStats {
    /// The smoothed round trip and its deviation, once one was measured.
    pub srtt: Option<Duration>,
    pub rttvar: Option<Duration>,
    /// Segments sent again, in all.
    pub retransmitted: u32,
    /// Retransmission timeouts since the acknowledgement last moved.
    pub repairs: u32,
    /// Bytes sent and not yet acknowledged.
    pub in_flight: usize,
    /// The most bytes in flight since the last loss (halved by each).
    pub flight_peak: usize,
    /// The window the peer last advertised, as sent (not scaled).
    pub peer_window: u16,
    /// That window in bytes (scaled as the SYNs agreed).
    pub send_window: usize,
}

impl FlowState {
    /// Bytes sent and not yet acknowledged.
    fn in_flight(&self) -> usize {
        match (self.sent_end, self.peer_ack) {
            (Some(end), Some(ack)) if end > ack => end - ack,
            _ => 0,
        }
    }

    /// The retransmission timeout before backing off (RFC 6298 with Linux's
    /// floor on the margin).
    fn rto(&self) -> Duration {
        match (self.srtt, self.rttvar) {
            (Some(srtt), Some(var)) => (srtt + (var * 4).max(MIN_RTO)).min(MAX_RTO),
            _ => INITIAL_RTO,
        }
    }

    /// RACK's reordering window: a quarter of the least round trip, none once
    /// DupThresh segments were SACKed (Linux, before it has seen reordering).
    fn reordering_window(&self) -> Duration {
        self.min_rtt.map_or(Duration::ZERO, |rtt| rtt / 4)
    }

    /// When the tail-loss probe is due, if one may go.
    fn probe_at(&self) -> Option<Duration> {
        let srtt = self.srtt?;
        // Without SACK a probe's answer tells nothing of the segments before
        // it (Linux probes SACK flows only).
        if !self.sack_ok
            || self.probed
            || self.recover.is_some()
            || self.kept.iter().any(|k| k.sacked)
        {
            return None;
        }
        let mut wait = (srtt * 2).max(MIN_PROBE);
        if self.kept.len() == 1 {
            // A lone segment may wait for a delayed ACK (RFC 8985, 7.2).
            wait = wait.max(srtt * 3 / 2 + MIN_RTO);
        }
        // Armed by new data sent, and again by each acknowledgement of new
        // data (RFC 8985, 7.2).
        Some(self.last_new.max(self.since) + wait)
    }

    /// When RACK next finds a segment lost, if one waits for its reordering
    /// window.
    fn rack_at(&self) -> Option<Duration> {
        let newest = self.rack_sent_at.filter(|_| self.sack_ok)?;
        let wait = self.rack_rtt + self.reordering_window();
        self.kept
            .iter()
            .filter(|k| !k.sacked && !k.lost && k.sent_at < newest)
            .map(|k| k.sent_at + wait)
            .min()
    }

    /// When something is next due for this flow.
    fn due_at(&self) -> Option<Duration> {
        if self.kept.is_empty() || self.peer_window == 0 || self.expected.is_none() {
            return None;
        }
        let rto = (self.backoffs < MAX_BACKOFFS)
            .then(|| self.since + (self.rto() * (1 << self.backoffs)).min(MAX_RTO));
        [rto, self.probe_at(), self.rack_at()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Notes that `kept` (sent at `sent_at`) was delivered: RACK's newest.
    fn delivered(&mut self, sent_at: Duration, again: bool, now: Duration) {
        let rtt = now.saturating_sub(sent_at);
        // A retransmission acknowledged well within a round trip is the
        // original's acknowledgement (RFC 8985, step 2). Well within: a
        // shorter segment (a probe, a tail) comes back a little sooner than
        // the full ones that set the least round trip.
        if again && self.min_rtt.is_some_and(|min| rtt < min * 3 / 4) {
            return;
        }
        if self.rack_sent_at.is_none_or(|newest| sent_at >= newest) {
            self.rack_sent_at = Some(sent_at);
            self.rack_rtt = rtt;
        }
    }

    /// Marks what is lost now (RFC 6675's DupThresh, RACK, NewReno).
    fn detect_losses(&mut self, now: Duration) {
        let mut sacked_above = 0;
        let newest = self.rack_sent_at;
        let wait = self.rack_rtt
            + if self.kept.iter().filter(|k| k.sacked).count() >= DUP_THRESH {
                Duration::ZERO
            } else {
                self.reordering_window()
            };
        for kept in self.kept.iter_mut().rev() {
            if kept.sacked {
                sacked_above += 1;
                continue;
            }
            if kept.lost {
                continue;
            }
            let by_count = !kept.again && sacked_above >= DUP_THRESH;
            // RACK needs SACK: without it, what was delivered after a hole is
            // not known.
            let by_time = self.sack_ok
                && newest.is_some_and(|n| kept.sent_at < n && kept.sent_at + wait <= now);
            if by_count || by_time {
                kept.lost = true;
            }
        }
    }

    /// Enters recovery if not in it: the window seen from outside halves.
    fn enter_recovery(&mut self) {
        if self.recover.is_none() {
            self.recover = self.sent_end;
            self.flight_peak /= 2;
        }
    }
}

/// The scoreboards and timers of every flow this stack sends on.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// Looked up per segment, never walked (the order of timers is the index's,
    /// so a hash's order cannot make runs differ).
    flows: HashMap<Flow, FlowState>,
    /// The flows with something due, by when: the next deadline is the first
    /// entry, not a walk over every flow.
    due: BTreeSet<(Duration, Flow)>,
    /// The window scale options each side offered in its SYN, kept apart from
    /// the numbers (which a SYN starts afresh) because our SYN and the peer's
    /// come in either order.
    scales: HashMap<Flow, WindowScales>,
    /// Buffers of segments acknowledged, for the next copies.
    spare: Vec<Vec<u8>>,
}

/// The window scale options of a connection's two SYNs (RFC 7323): the peer's
/// windows are scaled only if both offered one.
#[derive(Debug, Default, Clone, Copy)]
struct WindowScales {
    ours: Option<u8>,
    theirs: Option<u8>,
}

impl WindowScales {
    /// The shift of the peer's window fields.
    fn peer_shift(self) -> u8 {
        match (self.ours, self.theirs) {
            (Some(_), Some(theirs)) => theirs,
            _ => 0,
        }
    }
}

/// What to do with a segment smoltcp sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Egress {
    Send,
    /// A retransmission of what the peer has (SACKed) or the engine sent again
    /// less than a round trip ago.
    Drop,
}

/// Spare buffers kept at most.
const MAX_SPARE: usize = 64;

impl Recovery {
    /// Notes the window scale a SYN offered, ours or the peer's.
    fn note_scale(&mut self, flow: Flow, ours: bool, offered: Option<u8>) {
        if self.scales.len() >= MAX_FLOWS && !self.scales.contains_key(&flow) {
            self.scales.clear();
        }
        let scales = self.scales.entry(flow).or_default();
        if ours {
            scales.ours = offered;
        } else {
            scales.theirs = offered;
        }
    }

    /// Files `key`'s deadline anew after its state changed.
    fn refile(&mut self, key: Flow) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let at = flow.due_at();
        if flow.filed == at {
            return;
        }
        if let Some(old) = std::mem::replace(&mut flow.filed, at) {
            self.due.remove(&(old, key));
        }
        if let Some(at) = at {
            self.due.insert((at, key));
        }
    }

    /// Notes an incoming segment: its acknowledgement, SACK blocks and window.
    /// Appends to `out` the segments to send again now.
    pub(crate) fn on_ingress(&mut self, tcp: &TcpView, now: Duration, out: &mut Vec<Vec<u8>>) {
        let key = (
            tcp.segment.dst.ip(),
            tcp.segment.dst.port(),
            tcp.segment.src.ip(),
            tcp.segment.src.port(),
        );
        if tcp.rst || tcp.syn {
            // A reset ends the flow; a SYN starts one whose numbers are all new.
            self.forget_numbers(&key);
            if tcp.rst {
                self.scales.remove(&key);
                return;
            }
            self.note_scale(key, false, tcp.window_scale);
        }
        let Some(ack) = tcp.ack_number else {
            return;
        };
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&key) {
            self.flows.clear();
            self.due.clear();
        }
        let flow = self.flows.entry(key).or_default();
        if tcp.syn {
            flow.sack_ok = tcp.sack_permitted;
        }
        let window_changed = flow.peer_window != tcp.window;
        flow.peer_window = tcp.window;
        let mut delivered = 0;
        let advanced = flow.peer_ack.is_none_or(|last| ack > last);
        if advanced {
            flow.peer_ack = Some(ack);
            flow.since = now;
            flow.backoffs = 0;
            flow.probed = false;
            flow.dup_acks = 0;
            if let Some((end, sent_at)) = flow.timing {
                if ack >= end {
                    let rtt = now.saturating_sub(sent_at);
                    // RFC 6298: the deviation from the estimate before this
                    // sample, then the estimate.
                    flow.rttvar = Some(match (flow.rttvar, flow.srtt) {
                        (Some(var), Some(srtt)) => (var * 3 + srtt.abs_diff(rtt)) / 4,
                        _ => rtt / 2,
                    });
                    flow.srtt = Some(flow.srtt.map_or(rtt, |s| (s * 7 + rtt) / 8));
                    flow.min_rtt = Some(flow.min_rtt.map_or(rtt, |m| m.min(rtt)));
                    flow.timing = None;
                }
            }
            while flow.kept.front().is_some_and(|k| k.end <= ack) {
                let kept = flow.kept.pop_front().expect("checked");
                flow.kept_bytes -= kept.frame.len();
                if !kept.sacked {
                    delivered += 1;
                    flow.delivered(kept.sent_at, kept.again, now);
                }
                if self.spare.len() < MAX_SPARE {
                    self.spare.push(kept.frame);
                }
            }
            if let Some(recover) = flow.recover {
                if ack >= recover {
                    flow.recover = None;
                } else if !flow.sack_ok {
                    // NewReno's partial acknowledgement: the next hole is lost.
                    if let Some(front) = flow.kept.front_mut() {
                        front.lost = true;
                    }
                }
            }
        } else if flow.peer_ack == Some(ack)
            && tcp.data_len == 0
            && !tcp.syn
            && !tcp.fin
            && !window_changed
            && !flow.kept.is_empty()
        {
            flow.dup_acks += 1;
            if !flow.sack_ok && flow.dup_acks == DUP_THRESH && flow.recover.is_none() {
                if let Some(front) = flow.kept.front_mut() {
                    front.lost = true;
                }
            }
        }
        for &(left, right) in tcp.sacks.iter().flatten() {
            let (left, right) = (TcpSeqNumber(left as i32), TcpSeqNumber(right as i32));
            if right <= ack || right <= left {
                continue;
            }
            for i in 0..flow.kept.len() {
                let kept = &flow.kept[i];
                if kept.sacked
                    || kept.seq < left
                    || kept.data_end > right
                    || kept.data_end == kept.seq
                {
                    continue;
                }
                let (sent_at, again) = (kept.sent_at, kept.again);
                let kept = &mut flow.kept[i];
                kept.sacked = true;
                kept.lost = false;
                delivered += 1;
                flow.delivered(sent_at, again, now);
            }
        }
        if !flow.kept.is_empty() {
            flow.detect_losses(now);
            if delivered > 0 || flow.kept.iter().any(|k| k.lost) {
                let budget = delivered.max(1);
                Self::send_lost(flow, budget, now, out);
            }
        }
        self.refile(key);
    }

    /// Sends again up to `budget` segments found lost, oldest first.
    fn send_lost(flow: &mut FlowState, budget: usize, now: Duration, out: &mut Vec<Vec<u8>>) {
        let mut sent = 0;
        for i in 0..flow.kept.len() {
            if sent == budget {
                break;
            }
            if flow.kept[i].lost {
                Self::send_again(flow, i, now, out);
                sent += 1;
            }
        }
    }

    /// Sends the kept segment `i` again, with the acknowledgement and window
    /// this stack sends now.
    fn send_again(flow: &mut FlowState, i: usize, now: Duration, out: &mut Vec<Vec<u8>>) {
        flow.enter_recovery();
        let (expected, window) = (flow.expected, flow.our_window);
        let kept = &mut flow.kept[i];
        let mut frame = kept.frame.clone();
        if let Some(ack) = expected {
            refresh(&mut frame, ack, window);
        }
        kept.sent_at = now;
        kept.again = true;
        kept.lost = false;
        flow.timing = None;
        flow.retransmitted = flow.retransmitted.saturating_add(1);
        out.push(frame);
    }

    /// Notes an outgoing segment (`frame`, read as `segment`): keeps a copy of
    /// new data, and says whether a retransmission of smoltcp's goes.
    /// Only segments to the wire (`keep`) are kept: loopback loses nothing.
    pub(crate) fn on_egress(
        &mut self,
        segment: &EgressSegment,
        frame: &[u8],
        keep: bool,
        now: Duration,
    ) -> Egress {
        let verdict = self.note_egress(segment, frame, keep, now);
        self.refile(segment.flow);
        verdict
    }

    fn note_egress(
        &mut self,
        segment: &EgressSegment,
        frame: &[u8],
        keep: bool,
        now: Duration,
    ) -> Egress {
        if segment.syn {
            self.note_scale(segment.flow, true, segment.window_scale);
        }
        let Some(state) = self.flows.get_mut(&segment.flow) else {
            return Egress::Send;
        };
        if segment.ack.is_some() {
            state.expected = segment.ack;
            state.our_window = segment.window;
        }
        if segment.len == 0 || segment.syn {
            return Egress::Send;
        }
        let end = segment.seq + segment.len;
        if state.sent_end.is_some_and(|sent| end <= sent) {
            return Self::smoltcp_again(state, segment.seq, end, now);
        }
        if state.in_flight() == 0 {
            // Data after a quiet time: the timer starts now.
            state.since = now;
        }
        state.sent_end = Some(end);
        state.last_new = now;
        state.probed = false;
        state.flight_peak = state.flight_peak.max(state.in_flight());
        if state.timing.is_none() {
            state.timing = Some((end, now));
        }
        if keep && state.kept_bytes + frame.len() <= MAX_KEPT {
            let mut copy = self.spare.pop().unwrap_or_default();
            copy.clear();
            copy.extend_from_slice(frame);
            state.kept_bytes += copy.len();
            state.kept.push_back(Kept {
                seq: segment.seq,
                end,
                data_end: end - usize::from(segment.fin),
                frame: copy,
                sent_at: now,
                again: false,
                sacked: false,
                lost: false,
            });
        }
        Egress::Send
    }

    /// A segment smoltcp sends again (a fast retransmit, its timer, a
    /// keep-alive): dropped if every kept segment it covers is SACKed or was
    /// sent again by the engine less than a round trip ago; else it goes, and
    /// counts as their retransmission.
    fn smoltcp_again(
        state: &mut FlowState,
        seq: TcpSeqNumber,
        end: TcpSeqNumber,
        now: Duration,
    ) -> Egress {
        let recent = state.srtt.unwrap_or(MIN_PROBE).max(MIN_PROBE);
        let mut covered = state
            .kept
            .iter()
            .filter(|k| k.seq < end && k.end > seq)
            .peekable();
        if covered.peek().is_some()
            && covered.all(|k| k.sacked || (k.again && now < k.sent_at + recent))
        {
            return Egress::Drop;
        }
        state.timing = None;
        state.retransmitted = state.retransmitted.saturating_add(1);
        state.enter_recovery();
        for kept in state.kept.iter_mut().filter(|k| k.seq < end && k.end > seq) {
            kept.sent_at = now;
            kept.again = true;
            kept.lost = false;
        }
        Egress::Send
    }

    /// What is known of `flow`'s sending side (`None` before the peer's first
    /// acknowledgement).
    pub(crate) fn stats(&self, flow: &Flow) -> Option<FlowStats> {
        let state = self.flows.get(flow)?;
        Some(FlowStats {
            srtt: state.srtt,
            rttvar: state.rttvar,
            retransmitted: state.retransmitted,
            repairs: state.backoffs,
            in_flight: state.in_flight(),
            flight_peak: state.flight_peak,
            peer_window: state.peer_window,
            send_window: usize::from(state.peer_window)
                << self
                    .scales
                    .get(flow)
                    .copied()
                    .unwrap_or_default()
                    .peer_shift(),
        })
    }

    /// Forgets a flow that ended.
    pub(crate) fn forget(&mut self, flow: &Flow) {
        self.scales.remove(flow);
        self.forget_numbers(flow);
    }

    /// Forgets what a flow's numbers told (its window scales stay).
    fn forget_numbers(&mut self, flow: &Flow) {
        if let Some(state) = self.flows.remove(flow) {
            if let Some(at) = state.filed {
                self.due.remove(&(at, *flow));
            }
            for kept in state.kept {
                if self.spare.len() < MAX_SPARE {
                    self.spare.push(kept.frame);
                }
            }
        }
    }

    /// When something is next due (a timeout, a probe, a reordering window).
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.due.first().map(|&(at, _)| at)
    }

    /// For every flow with something due, appends to `out` the segments to send
    /// again: those RACK now finds lost, a tail-loss probe, or after a timeout
    /// the first segment not acknowledged (all the others not SACKed then count
    /// as lost, and go as acknowledgements come).
    pub(crate) fn due(&mut self, now: Duration, out: &mut Vec<Vec<u8>>) {
        let keys: Vec<Flow> = self
            .due
            .iter()
            .take_while(|&&(at, _)| at <= now)
            .map(|&(_, key)| key)
            .collect();
        for key in keys {
            if let Some(flow) = self.flows.get_mut(&key) {
                Self::on_timer(flow, now, out);
            }
            self.refile(key);
        }
    }

    fn on_timer(flow: &mut FlowState, now: Duration, out: &mut Vec<Vec<u8>>) {
        if flow.kept.is_empty() {
            return;
        }
        let timeout = flow.since + (flow.rto() * (1 << flow.backoffs)).min(MAX_RTO);
        if flow.backoffs < MAX_BACKOFFS && timeout <= now {
            for kept in flow.kept.iter_mut().filter(|k| !k.sacked) {
                kept.lost = true;
            }
            flow.backoffs += 1;
            flow.since = now;
            flow.rack_sent_at = None;
            Self::send_lost(flow, 1, now, out);
            return;
        }
        if flow.rack_at().is_some_and(|at| at <= now) {
            flow.detect_losses(now);
            Self::send_lost(flow, 2, now, out);
            return;
        }
        if flow.probe_at().is_some_and(|at| at <= now) {
            flow.probed = true;
            let last = flow.kept.len() - 1;
            // A probe is no loss yet: the window stays.
            let (recover, peak) = (flow.recover, flow.flight_peak);
            Self::send_again(flow, last, now, out);
            (flow.recover, flow.flight_peak) = (recover, peak);
        }
    }
}

/// Writes `ack` and `window` into the TCP segment `frame` carries, and its
/// checksum anew.
fn refresh(frame: &mut [u8], ack: TcpSeqNumber, window: u16) {
    let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) else {
        return;
    };
    let ethertype = eth.ethertype();
    let l3 = eth.payload_mut();
    let (src, dst, tcp): (IpAddress, IpAddress, &mut [u8]) = match ethertype {
        EthernetProtocol::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(&mut *l3) else {
                return;
            };
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            let header = usize::from(ip.header_len());
            (src, dst, &mut l3[header..])
        }
        EthernetProtocol::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked(&mut *l3) else {
                return;
            };
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            (src, dst, &mut l3[40..])
        }
        _ => return,
    };
    let Ok(mut tcp) = TcpPacket::new_checked(tcp) else {
        return;
    };
    if !tcp.ack() {
        return;
    }
    tcp.set_ack_number(ack);
    tcp.set_window_len(window);
    tcp.fill_checksum(&src, &dst);
}
