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
//! - three segments above it were SACKed (RFC 6675's DupThresh, until the flow
//!   showed reordering), or a segment sent after it was delivered and a
//!   reordering window passed since (RACK, RFC 8985): which also finds a lost
//!   retransmission. A retransmission found spurious widens that window and
//!   undoes the window's halving;
//! - for a peer without SACK: the third duplicate ACK, and each partial
//!   acknowledgement after it (NewReno, RFC 6582);
//! - nothing came back for two round trips after the last segment (a tail-loss
//!   probe sends the last segment again, or new data the window held back if
//!   there is some, RFC 8985);
//! - the retransmission timer expires (RFC 6298, Linux's form: the smoothed
//!   round trip plus four deviations, 200 ms at least, doubling): then every
//!   segment not SACKed counts as lost; or, sooner, the peer acknowledged up
//!   to a segment it had SACKed and no further (it dropped it: reneging, as
//!   Linux checks for it), and then SACKed segments count as lost too.
//!
//! A D-SACK from the peer (RFC 2883: it received a segment twice) widens RACK's
//! reordering window, and once the peer reported every retransmission of the
//! last recovery so, the recovery's reduction of the window is undone.
//!
//! The congestion window is held here too (smoltcp's controller is set to
//! none): retransmissions and new segments go while RFC 6675's pipe leaves room
//! in it (in a recovery, as proportional rate reduction lets them, RFC 6937),
//! and new segments beyond it wait in the engine. It grows and shrinks
//! as the connection's `TCP_CONGESTION` says: CUBIC (RFC 9438) by default, as on
//! Linux, or NewReno. A retransmission smoltcp makes of a segment that is held,
//! SACKed, or that the engine sent again less than a round trip ago, is dropped
//! here.
//!
//! While the peer's window is zero and data waits, a persist timer probes it
//! (RFC 9293, 3.8.6.1), as Linux's: smoltcp's own probe waits at least 1 s.
//!
//! It also keeps the per-flow figures `TCP_INFO` reports (round trip,
//! retransmissions, bytes in flight).

use super::flow_hash::FlowMap;
use super::frames::{self, EgressSegment, Flow, TcpPart, TcpView};
use super::options::Congestion;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, Ipv4Packet, Ipv6Packet, TcpPacket, TcpSeqNumber,
};
use std::collections::{BTreeSet, VecDeque};
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

/// Quarter round trips RACK waits at most for reordering (RFC 8985 caps the
/// window at the smoothed round trip too).
const MAX_REO_STEPS: u32 = 16;

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
    /// The end of its data: what a SACK block covers (a bare FIN's block
    /// covers the FIN).
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
    /// On the wire: a segment the congestion window did not let go yet is
    /// held here (smoltcp takes it as sent).
    released: bool,
}

impl Kept {
    /// Sequence space it takes.
    fn len(&self) -> usize {
        self.end - self.seq
    }

    /// It counts in the pipe (RFC 6675): on the wire, neither SACKed nor lost.
    fn in_pipe(&self) -> bool {
        self.released && !self.sacked && !self.lost
    }
}

/// What a walk over a flow's kept segments would count, kept up to date as
/// they come, go and change marks: the questions asked for every segment in
/// and out (anything on the wire? SACKed? lost? bytes in the pipe?) then need
/// no walk over a window of up to a hundred segments.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    /// Segments on the wire (`released`), SACKed, and lost.
    released: usize,
    sacked: usize,
    lost: usize,
    /// Bytes (sequence space) in the pipe, on the wire, and held.
    pipe: usize,
    released_bytes: usize,
    held_bytes: usize,
}

impl Tally {
    /// What `kept` adds to the counts.
    fn of(kept: &Kept) -> Tally {
        let len = kept.len();
        Tally {
            released: usize::from(kept.released),
            sacked: usize::from(kept.sacked),
            lost: usize::from(kept.lost),
            pipe: if kept.in_pipe() { len } else { 0 },
            released_bytes: if kept.released { len } else { 0 },
            held_bytes: if kept.released { 0 } else { len },
        }
    }

    fn add(&mut self, other: Tally) {
        self.released += other.released;
        self.sacked += other.sacked;
        self.lost += other.lost;
        self.pipe += other.pipe;
        self.released_bytes += other.released_bytes;
        self.held_bytes += other.held_bytes;
    }

    fn sub(&mut self, other: Tally) {
        self.released -= other.released;
        self.sacked -= other.sacked;
        self.lost -= other.lost;
        self.pipe -= other.pipe;
        self.released_bytes -= other.released_bytes;
        self.held_bytes -= other.held_bytes;
    }
}

/// A flow's kept segments in sequence order (RFC 6675's scoreboard), and their
/// [`Tally`]. Its invariant: `tally` is the sum of [`Tally::of`] over
/// `segments`; so a segment's marks change only through
/// [`Scoreboard::update`], which keeps it.
#[derive(Debug, Default)]
struct Scoreboard {
    segments: VecDeque<Kept>,
    tally: Tally,
}

impl Scoreboard {
    fn len(&self) -> usize {
        self.segments.len()
    }

    fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    fn iter(&self) -> std::collections::vec_deque::Iter<'_, Kept> {
        self.segments.iter()
    }

    fn front(&self) -> Option<&Kept> {
        self.segments.front()
    }

    fn push_back(&mut self, kept: Kept) {
        self.tally.add(Tally::of(&kept));
        self.segments.push_back(kept);
    }

    fn pop_front(&mut self) -> Option<Kept> {
        let kept = self.segments.pop_front()?;
        self.tally.sub(Tally::of(&kept));
        Some(kept)
    }

    /// Changes segment `i` with `change`, and the counts with it.
    fn update<T>(&mut self, i: usize, change: impl FnOnce(&mut Kept) -> T) -> T {
        let kept = &mut self.segments[i];
        self.tally.sub(Tally::of(kept));
        let result = change(kept);
        self.tally.add(Tally::of(kept));
        result
    }

    /// Takes the segments out (the counts go with them).
    fn into_segments(self) -> VecDeque<Kept> {
        self.segments
    }
}

impl std::ops::Index<usize> for Scoreboard {
    type Output = Kept;

    fn index(&self, i: usize) -> &Kept {
        &self.segments[i]
    }
}

/// The window before a recovery, and the retransmissions made in it that the
/// peer has not reported as duplicates yet (Linux's `undo_marker` and
/// `undo_retrans`).
#[derive(Debug, Clone, Copy)]
struct Undo {
    cwnd: usize,
    ssthresh: Option<usize>,
    /// The acknowledgement when the recovery began: D-SACKs below it are of
    /// older data.
    marker: TcpSeqNumber,
    retransmissions: usize,
}

/// What proportional rate reduction (RFC 6937) counts in a recovery: the
/// flight when it began (`RecoverFS`), the bytes the peer reported delivered
/// and those sent since (`prr_delivered`, `prr_out`), and what the last ACK
/// lets go still (`sndcnt`).
#[derive(Debug, Clone, Copy)]
struct Prr {
    recover_fs: usize,
    delivered: usize,
    out: usize,
    allowance: usize,
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
    /// When anything last went out (new or again): a probe in recovery waits
    /// from here.
    last_sent: Duration,
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
    kept: Scoreboard,
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
    /// The congestion window in bytes (0 until the first segment sets it)
    /// and the slow-start threshold (`None`: none yet).
    cwnd: usize,
    ssthresh: Option<usize>,
    /// The largest segment of data sent.
    mss: usize,
    /// `TCP_CONGESTION` named reno: NewReno's window instead of CUBIC's.
    reno: bool,
    /// CUBIC's state (RFC 9438), unused under NewReno.
    cubic: Cubic,
    /// The window and threshold before the last recovery began: what a
    /// recovery found spurious gives back.
    before_recovery: Option<(usize, Option<usize>)>,
    /// What a recovery found spurious by D-SACKs gives back (see
    /// [`FlowState::on_dsack`]); kept after the recovery ends, since the
    /// D-SACKs come with the acknowledgements that end it.
    undo: Option<Undo>,
    /// Proportional rate reduction during a recovery (RFC 6937).
    prr: Option<Prr>,
    /// When a D-SACK last widened RACK's reordering window.
    dsack_at: Option<Duration>,
    /// A segment was delivered after one sent later (RFC 8985's
    /// `RACK.reordering_seen`), and quarter round trips RACK waits for
    /// reordering.
    reordering_seen: bool,
    reo_steps: u32,
    /// The acknowledgement number and window last put on the wire: a segment
    /// held back must not hold back the news it carries for the peer.
    acked_out: Option<(TcpSeqNumber, u16)>,
    /// Its `due_at` as filed in the index.
    filed: Option<Duration>,
    /// The persist timer, while the peer's window is zero and data waits
    /// (see [`Recovery::persist`]).
    persist: Option<Persist>,
    /// The peer acknowledged up to a segment it had SACKed and no further: it
    /// dropped it (reneged). When the timer then fires, SACKed marks forgotten.
    reneged: Option<Duration>,
}

/// The persist timer (RFC 9293, 3.8.6.1) as Linux runs it: a window probe
/// the retransmission timeout after the peer's window closed, then at
/// doubling intervals while it stays closed.
#[derive(Debug)]
struct Persist {
    /// When the last probe went (or the window closed), and probes sent.
    since: Duration,
    probes: u32,
    /// The peer's last segment, which the probe answers (its addresses).
    template: Vec<u8>,
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
    /// Bytes on the wire and not yet acknowledged (not those the congestion
    /// window still holds back).
    pub in_flight: usize,
    /// The congestion window, in bytes.
    pub flight_peak: usize,
    /// The window the peer last advertised, as sent (not scaled).
    pub peer_window: u16,
    /// That window in bytes (scaled as the SYNs agreed).
    pub send_window: usize,
}

impl FlowState {
    /// The segment size the window counts in (Linux's default before one
    /// was sent).
    fn smss(&self) -> usize {
        if self.mss == 0 {
            1460
        } else {
            self.mss
        }
    }

    /// The congestion window: ten segments to start with, as Linux (RFC 6928).
    fn window(&mut self) -> usize {
        if self.cwnd == 0 {
            self.cwnd = 10 * self.smss();
        }
        self.cwnd
    }

    /// Bytes on the wire that count against the window (RFC 6675's pipe).
    fn pipe(&self) -> usize {
        self.kept.tally.pipe
    }

    /// Bytes on the wire and not cumulatively acknowledged, lost, SACKed or
    /// not: RFC 5681's FlightSize, which a reduction halves (SACKed bytes left
    /// out, a window of a few segments with three SACKed fell to a third).
    fn released_flight(&self) -> usize {
        self.kept.tally.released_bytes
    }

    /// Bytes on the wire and not yet acknowledged: what smoltcp sent, less the
    /// segments the congestion window holds here (to Linux, those are not sent
    /// yet: `tcpi_unacked` does not count them, `tcpi_notsent_bytes` does).
    fn in_flight(&self) -> usize {
        let sent = match (self.sent_end, self.peer_ack) {
            (Some(end), Some(ack)) if end > ack => end - ack,
            _ => 0,
        };
        sent.saturating_sub(self.kept.tally.held_bytes)
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
        let Some(min) = self.min_rtt else {
            return Duration::ZERO;
        };
        // Widened by a quarter round trip for each spurious retransmission
        // found (RFC 8985, 6.2 step 4), never past the smoothed round trip.
        let window = min / 4 * self.reo_steps.max(1);
        self.srtt.map_or(window, |srtt| window.min(srtt))
    }

    /// When the tail-loss probe is due, if one may go.
    fn probe_at(&self) -> Option<Duration> {
        let srtt = self.srtt?;
        // Without SACK a probe's answer tells nothing of the segments before
        // it (Linux probes SACK flows only).
        if !self.sack_ok || self.probed || self.nothing_released() {
            return None;
        }
        let mut wait = (srtt * 2).max(MIN_PROBE);
        if self.recovering() {
            // In recovery (see `probe_target`): from the last segment sent.
            return Some(self.last_sent.max(self.since) + wait);
        }
        if self.kept.tally.released == 1 {
            // A lone segment may wait for a delayed ACK (RFC 8985, 7.2).
            wait = wait.max(srtt * 3 / 2 + MIN_RTO);
        }
        // Armed by new data sent, and again by each acknowledgement of new
        // data (RFC 8985, 7.2).
        Some(self.last_new.max(self.since) + wait)
    }

    /// A loss is being repaired, or the peer reported data beyond a hole.
    fn recovering(&self) -> bool {
        self.recover.is_some() || self.kept.tally.sacked > 0
    }

    /// What a probe sends again: the last segment on the wire (RFC 8985's
    /// tail-loss probe), or in recovery the first hole. RFC 8985 sends no probe
    /// in recovery, where RACK finds a lost retransmission from the segments
    /// sent after it; but with the peer's window full (64 KiB receive rings
    /// here) nothing can be sent after it, and only the timer (200 ms at
    /// least, where the round trip may be a tenth of a millisecond) would find
    /// it. So after two round trips of silence the hole goes again.
    fn probe_target(&self) -> Option<usize> {
        if self.recovering() {
            self.kept.iter().position(|k| k.released && !k.sacked)
        } else {
            self.last_released()
        }
    }

    /// One past the last sequence number on the wire (held segments are not):
    /// the end of a recovery.
    fn released_end(&self) -> Option<TcpSeqNumber> {
        self.last_released()
            .map(|i| self.kept[i].end)
            .or(self.sent_end)
    }

    /// Nothing of the kept segments is on the wire: then one goes whatever
    /// the window says (a window of less than one segment with nothing in
    /// flight would wait for an acknowledgement that nothing can bring, as
    /// Linux's congestion window never falls below one segment).
    fn nothing_released(&self) -> bool {
        self.kept.tally.released == 0
    }

    /// The last segment on the wire: what a tail-loss probe sends again.
    fn last_released(&self) -> Option<usize> {
        self.kept.iter().rposition(|k| k.released)
    }

    /// When RACK next finds a segment lost, if one waits for its reordering
    /// window.
    fn rack_at(&self) -> Option<Duration> {
        let newest = self.rack_sent_at.filter(|_| self.sack_ok)?;
        let bound = self.rack_bound(newest);
        if bound == 0 {
            return None;
        }
        let wait = self.rack_rtt + self.reordering_window();
        self.kept
            .iter()
            .take(bound)
            .filter(|k| k.released && !k.sacked && !k.lost && k.sent_at < newest)
            .map(|k| k.sent_at + wait)
            .min()
    }

    /// How many kept segments, from the first, RACK need look at: none after
    /// them was sent before `newest` (when the newest segment delivered was
    /// sent). Segments go on the wire for the first time in sequence order
    /// and time never goes back, and a segment sent again only moves its
    /// `sent_at` later: so after a segment sent once, at or after `newest`,
    /// every one was sent at or after it too. In bulk without loss that is
    /// the first segment, and RACK looks at none.
    fn rack_bound(&self, newest: Duration) -> usize {
        self.kept
            .iter()
            .position(|k| k.released && !k.again && k.sent_at >= newest)
            .unwrap_or(self.kept.len())
    }

    /// When something is next due for this flow.
    fn due_at(&self) -> Option<Duration> {
        if self.peer_window == 0 {
            return self.persist_at();
        }
        if self.nothing_released() || self.expected.is_none() {
            return None;
        }
        let rto = (self.backoffs < MAX_BACKOFFS)
            .then(|| self.since + (self.rto() * (1 << self.backoffs)).min(MAX_RTO));
        [rto, self.probe_at(), self.rack_at(), self.reneged]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the next window probe is due, if the persist timer runs.
    fn persist_at(&self) -> Option<Duration> {
        let persist = self.persist.as_ref()?;
        Some(persist.since + (self.rto() * (1 << persist.probes.min(MAX_BACKOFFS))).min(MAX_RTO))
    }

    /// Puts kept segment `i` on the wire for the first time: the timer starts
    /// if nothing else was out, and a round trip may be timed.
    fn note_release(&mut self, i: usize, now: Duration) {
        if self.nothing_released() {
            self.since = now;
        }
        let end = self.kept.update(i, |kept| {
            kept.released = true;
            kept.sent_at = now;
            kept.end
        });
        self.last_new = now;
        self.last_sent = now;
        self.probed = false;
        if self.timing.is_none() {
            self.timing = Some((end, now));
        }
    }

    /// Notes that `kept` (sent at `sent_at`) was delivered: RACK's newest.
    fn delivered(&mut self, sent_at: Duration, again: bool, now: Duration) {
        let rtt = now.saturating_sub(sent_at);
        // A retransmission acknowledged well within a round trip is the
        // original's acknowledgement (RFC 8985, step 2). Well within: a
        // shorter segment (a probe, a tail) comes back a little sooner than
        // the full ones that set the least round trip.
        if again && self.min_rtt.is_some_and(|min| rtt < min * 3 / 4) {
            // The retransmission was spurious: the peer had the original,
            // which came late. Reordering it was: the window RACK waits
            // widens, and the halving it cost is undone (Linux's undo).
            self.reordering_seen = true;
            self.reo_steps = (self.reo_steps + 1).min(MAX_REO_STEPS);
            if let Some((cwnd, ssthresh)) = self.before_recovery.take() {
                self.cwnd = self.cwnd.max(cwnd);
                self.ssthresh = ssthresh;
            }
            return;
        }
        if !again && self.rack_sent_at.is_some_and(|newest| sent_at < newest) {
            // Delivered after a segment sent later: reordering (RFC 8985,
            // 6.2 step 3).
            self.reordering_seen = true;
        }
        if self.rack_sent_at.is_none_or(|newest| sent_at >= newest) {
            self.rack_sent_at = Some(sent_at);
            self.rack_rtt = rtt;
        }
    }

    /// A D-SACK (RFC 2883) reported that the peer received `left..right`
    /// twice: a retransmission of ours that was not needed (or the network
    /// copied a segment). RACK's reordering window widens, at most once a
    /// round trip (RFC 8985, 6.2 step 4); and once every retransmission of
    /// the last recovery came back so, nothing was lost: the window's
    /// reduction is undone (RFC 3708's use of D-SACK, as Linux's
    /// `tcp_try_undo_dsack`).
    fn on_dsack(&mut self, left: TcpSeqNumber, right: TcpSeqNumber, now: Duration) {
        let round = self.srtt.unwrap_or(MIN_PROBE);
        if self.dsack_at.is_none_or(|at| now >= at + round) {
            self.reo_steps = (self.reo_steps + 1).min(MAX_REO_STEPS);
            self.dsack_at = Some(now);
        }
        let mss = self.smss();
        let Some(undo) = self.undo.as_mut().filter(|u| left >= u.marker) else {
            return;
        };
        if undo.retransmissions == 0 {
            return;
        }
        let segments = (right - left).div_ceil(mss).max(1);
        undo.retransmissions = undo.retransmissions.saturating_sub(segments);
        if undo.retransmissions == 0 {
            let (cwnd, ssthresh) = (undo.cwnd, undo.ssthresh);
            self.cwnd = self.window().max(cwnd);
            self.ssthresh = ssthresh;
            self.undo = None;
            self.before_recovery = None;
        }
    }

    /// What may be sent now, retransmissions and new segments: what the
    /// window leaves beyond the pipe (RFC 6675), or in a recovery what the
    /// last ACK let go.
    fn room(&mut self) -> usize {
        match self.prr {
            Some(prr) => prr.allowance,
            None => self.window().saturating_sub(self.pipe()),
        }
    }

    /// Counts `len` bytes sent against [`FlowState::room`].
    fn spend(&mut self, len: usize) {
        if let Some(prr) = self.prr.as_mut() {
            prr.allowance = prr.allowance.saturating_sub(len);
            prr.out += len;
        }
    }

    /// In a recovery, an ACK reported `delivered` more bytes delivered:
    /// what may be sent grows by the share the window keeps of them (RFC
    /// 6937), so that the flight falls to the reduced window over the round
    /// trip instead of nothing going until it has; once the flight is below
    /// it, it grows back as slow start would, no faster than delivery
    /// (PRR-SSRB).
    fn proportional_reduction(&mut self, delivered: usize) {
        let pipe = self.pipe();
        let mss = self.smss();
        let ssthresh = self.ssthresh.unwrap_or(self.cwnd);
        let Some(prr) = self.prr.as_mut() else {
            return;
        };
        prr.delivered += delivered;
        let count = if pipe > ssthresh {
            (prr.delivered * ssthresh)
                .div_ceil(prr.recover_fs.max(1))
                .saturating_sub(prr.out)
        } else {
            let limit = prr.delivered.saturating_sub(prr.out).max(delivered) + mss;
            (ssthresh - pipe).min(limit)
        };
        prr.allowance = count;
    }

    /// Marks what is lost now (RFC 6675's DupThresh, RACK, NewReno).
    fn detect_losses(&mut self, now: Duration) {
        let mut sacked_above = 0;
        // Once reordering was seen, only time says lost (RFC 8985); and not
        // by count with fewer than DupThresh SACKed in all.
        let by_count_may = !self.reordering_seen && self.kept.tally.sacked >= DUP_THRESH;
        // RACK needs SACK: without it, what was delivered after a hole is
        // not known.
        let newest = self.rack_sent_at.filter(|_| self.sack_ok);
        let wait = self.rack_rtt
            + if by_count_may {
                Duration::ZERO
            } else {
                self.reordering_window()
            };
        // Only RACK's suspects can be lost when no count can reach DupThresh.
        let end = match newest {
            _ if by_count_may => self.kept.len(),
            Some(newest) => self.rack_bound(newest),
            None => return,
        };
        for i in (0..end).rev() {
            let kept = &self.kept[i];
            if kept.sacked {
                sacked_above += 1;
                continue;
            }
            if kept.lost || !kept.released {
                continue;
            }
            let by_count = by_count_may && !kept.again && sacked_above >= DUP_THRESH;
            let by_time = newest.is_some_and(|n| kept.sent_at < n && kept.sent_at + wait <= now);
            if by_count || by_time {
                self.kept.update(i, |kept| kept.lost = true);
            }
        }
    }

    /// The egress of a segment of this flow (see [`Recovery::on_egress`]);
    /// copies come from `spare`.
    fn on_egress(
        &mut self,
        segment: &EgressSegment,
        frame: &[u8],
        keep: bool,
        now: Duration,
        spare: &mut Vec<Vec<u8>>,
        out: &mut Vec<Vec<u8>>,
    ) -> Egress {
        if segment.ack.is_some() {
            self.expected = segment.ack;
            self.our_window = segment.window;
        }
        if segment.len == 0 || segment.syn {
            self.acked_out = segment.ack.map(|a| (a, segment.window)).or(self.acked_out);
            return Egress::Send;
        }
        let end = segment.seq + segment.len;
        if self.sent_end.is_some_and(|sent| end <= sent) {
            let verdict = Recovery::smoltcp_again(self, segment.seq, end, now);
            if verdict == Egress::Send {
                self.acked_out = segment.ack.map(|a| (a, segment.window)).or(self.acked_out);
            }
            return verdict;
        }
        self.sent_end = Some(end);
        self.mss = self.mss.max(segment.data);
        if !keep || self.kept_bytes + frame.len() > MAX_KEPT {
            // Unkept: it goes as it is, outside the window's count.
            self.acked_out = segment.ack.map(|a| (a, segment.window)).or(self.acked_out);
            self.last_new = now;
            if self.timing.is_none() {
                self.timing = Some((end, now));
            }
            return Egress::Send;
        }
        let mut copy = spare.pop().unwrap_or_default();
        copy.clear();
        copy.extend_from_slice(frame);
        self.kept_bytes += copy.len();
        self.kept.push_back(Kept {
            seq: segment.seq,
            end,
            data_end: end - usize::from(segment.fin),
            frame: copy,
            sent_at: now,
            again: false,
            sacked: false,
            lost: false,
            released: false,
        });
        let i = self.kept.len() - 1;
        let earlier_held = i > 0 && !self.kept[i - 1].released;
        // A zero window's probe goes: the peer's window, not ours, holds it.
        if !earlier_held
            && (segment.len <= self.room() || self.peer_window == 0 || self.nothing_released())
        {
            self.spend(segment.len);
            self.note_release(i, now);
            self.acked_out = segment.ack.map(|a| (a, segment.window)).or(self.acked_out);
            return Egress::Send;
        }
        let news = segment.ack.is_some_and(|ack| {
            self.acked_out
                .is_none_or(|(out, window)| ack > out || segment.window > window)
        });
        if news {
            let mut bare = spare.pop().unwrap_or_default();
            if bare_ack(&mut bare, frame) {
                self.acked_out = segment.ack.map(|a| (a, segment.window));
                out.push(bare);
            }
        }
        Egress::Hold
    }

    /// Enters recovery if not in it: the window halves (RFC 6675: half the
    /// flight, two segments at least), once per window of data.
    fn enter_recovery(&mut self) {
        // Only with something on the wire the peer has not acknowledged: a
        // recovery ends with the acknowledgement of its `recover`, which
        // nothing would send if that were acknowledged already.
        let outstanding = self
            .released_end()
            .is_some_and(|end| self.peer_ack.is_none_or(|ack| end > ack));
        if self.recover.is_none() && outstanding {
            self.recover = self.released_end();
            self.before_recovery = Some((self.window(), self.ssthresh));
            self.undo = self.peer_ack.map(|marker| Undo {
                cwnd: self.window(),
                ssthresh: self.ssthresh,
                marker,
                retransmissions: 0,
            });
            self.prr = Some(Prr {
                recover_fs: self.released_flight(),
                delivered: 0,
                out: 0,
                allowance: 0,
            });
            let reduced = self.reduce();
            self.ssthresh = Some(reduced);
            self.cwnd = reduced;
        }
    }

    /// The slow-start threshold after a congestion event: half the flight for
    /// NewReno (RFC 5681), 0.7 of it for CUBIC (RFC 9438, 4.6), which also
    /// notes the window it reached; two segments at least.
    fn reduce(&mut self) -> usize {
        let flight = self.released_flight();
        let mss = self.smss();
        if self.reno {
            return (flight / 2).max(2 * mss);
        }
        let cwnd = self.window() as f64;
        // Fast convergence (4.7): a window that fell short of the last one
        // gives up a little more of it to newer flows.
        self.cubic.w_max = if cwnd < self.cubic.w_max {
            cwnd * (1.0 + CUBIC_BETA) / 2.0
        } else {
            cwnd
        };
        self.cubic.epoch = None;
        ((flight as f64 * CUBIC_BETA) as usize).max(2 * mss)
    }

    /// Grows the window for `acked` bytes newly acknowledged: slow start below
    /// the threshold, else one segment a window; not while recovering from a
    /// loss.
    fn grow(&mut self, acked: usize, now: Duration) {
        let cwnd = self.window();
        let mss = self.smss();
        if self.ssthresh.is_some_and(|t| cwnd >= t) && self.recover.is_none() && !self.reno {
            self.cwnd = self.cubic_window(acked, now).min(MAX_KEPT);
            return;
        }
        if self.ssthresh.is_none_or(|t| cwnd < t) {
            // By every byte acknowledged, up to the threshold, as Linux's
            // `tcp_slow_start` (RFC 3465's limit of two segments an ACK would
            // make slow start linear here: a pump's ACK covers the batch of
            // frames it read, often more than two segments).
            self.cwnd = (cwnd + acked).min(self.ssthresh.unwrap_or(usize::MAX));
        } else if self.recover.is_none() {
            self.cwnd = cwnd + (mss * acked / cwnd).max(1);
        }
        // The window never needs to pass what the send ring can hold.
        self.cwnd = self.cwnd.min(MAX_KEPT);
    }
}

/// CUBIC's multiplicative decrease (RFC 9438, 4.6).
const CUBIC_BETA: f64 = 0.7;

/// CUBIC's constant, in segments per cubed second (RFC 9438, 5).
const CUBIC_C: f64 = 0.4;

/// What CUBIC (RFC 9438) keeps between acknowledgements, in bytes.
#[derive(Debug, Default)]
struct Cubic {
    /// The window before the last reduction (`W_max`).
    w_max: f64,
    /// When the current congestion-avoidance epoch began, the window then,
    /// and the time the cubic function takes back to `w_max` (`K`, seconds).
    epoch: Option<Duration>,
    epoch_cwnd: f64,
    k: f64,
    /// The window NewReno would have (`W_est`, 4.3).
    w_est: f64,
}

impl FlowState {
    /// CUBIC's window in congestion avoidance after `acked` more bytes were
    /// acknowledged (RFC 9438, 4.2 to 4.5): the cubic function of the time
    /// since the epoch began, aimed a round trip ahead, or NewReno's estimate
    /// if that is larger (the Reno-friendly region: on a short path, where the
    /// cubic curve hardly moves in a round trip, that is what grows).
    fn cubic_window(&mut self, acked: usize, now: Duration) -> usize {
        let mss = self.smss() as f64;
        let cwnd = self.window() as f64;
        let cubic = &mut self.cubic;
        if cubic.epoch.is_none() {
            cubic.epoch = Some(now);
            cubic.epoch_cwnd = cwnd;
            cubic.w_est = cwnd;
            cubic.k = if cwnd < cubic.w_max {
                ((cubic.w_max - cwnd) / mss / CUBIC_C).cbrt()
            } else {
                0.0
            };
            if cubic.w_max < cwnd {
                cubic.w_max = cwnd;
            }
        }
        let since = now.saturating_sub(cubic.epoch.unwrap_or(now));
        let rtt = self.srtt.unwrap_or(Duration::ZERO);
        let w_cubic = |t: f64| mss * CUBIC_C * (t - cubic.k).powi(3) + cubic.w_max;
        let now_cubic = w_cubic(since.as_secs_f64());
        let target = w_cubic((since + rtt).as_secs_f64()).clamp(cwnd, 1.5 * cwnd);
        // W_est grows by alpha segments a window: alpha makes CUBIC's average
        // window NewReno's under the same losses, until W_est passes the
        // window of the last reduction, then by one (4.3).
        let alpha = if cubic.w_est >= cubic.epoch_cwnd.max(cubic.w_max) {
            1.0
        } else {
            3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA)
        };
        cubic.w_est += alpha * mss * acked as f64 / cwnd;
        let next = if now_cubic < cubic.w_est {
            cubic.w_est
        } else {
            cwnd + (target - cwnd) * acked as f64 / cwnd
        };
        (next as usize).max(cwnd as usize)
    }
}

/// The scoreboards and timers of every flow this stack sends on.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// Looked up per segment, never walked (the order of timers is the index's,
    /// so a hash's order cannot make runs differ).
    flows: FlowMap<Flow, FlowState>,
    /// The flows with something due, by when: the next deadline is the first
    /// entry, not a walk over every flow.
    due: BTreeSet<(Duration, Flow)>,
    /// The window scale options each side offered in its SYN, kept apart from
    /// the numbers (which a SYN starts afresh) because our SYN and the peer's
    /// come in either order.
    scales: FlowMap<Flow, WindowScales>,
    /// Buffers of segments acknowledged, for the next copies.
    spare: Vec<Vec<u8>>,
}

/// The window scale options of a connection's two SYNs (RFC 7323): the peer's
/// windows are scaled only if both offered one.
#[derive(Debug, Default, Clone, Copy)]
struct WindowScales {
    ours: Option<u8>,
    theirs: Option<u8>,
    /// When our SYN (or SYN-ACK) went out: its acknowledgement is the first
    /// round trip measured, as Linux takes it, so that a loss of the first
    /// data waits for a timer from a real round trip, not the initial 1 s.
    syn_at: Option<Duration>,
    /// Our SYN went more than once: its acknowledgement times nothing (Karn).
    syn_again: bool,
    /// The peer's SYN offered SACK (RFC 2018).
    peer_sack: bool,
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
    /// A retransmission of what the peer has (SACKed), of what is held, or of
    /// what the engine sent again less than a round trip ago.
    Drop,
    /// New data the congestion window does not let go yet: the engine keeps a
    /// copy and sends it later.
    Hold,
}

/// Spare buffers kept at most (about 24 KiB: what a stack keeps after bulk
/// traffic ends).
const MAX_SPARE: usize = 16;

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
        if let Some(flow) = self.flows.get_mut(&key) {
            Self::file(&mut self.due, key, flow);
        }
    }

    /// Files `flow` (of `key`) in `due` anew after its state changed: what
    /// [`Recovery::refile`] does, for a caller that holds the flow already
    /// (one table lookup less for every segment).
    fn file(due: &mut BTreeSet<(Duration, Flow)>, key: Flow, flow: &mut FlowState) {
        let at = flow.due_at();
        if flow.filed == at {
            return;
        }
        if let Some(old) = std::mem::replace(&mut flow.filed, at) {
            due.remove(&(old, key));
        }
        if let Some(at) = at {
            due.insert((at, key));
        }
    }

    /// Notes an incoming segment: its acknowledgement, SACK blocks and window.
    /// Appends to `out` the segments to send now: lost ones again, then held
    /// ones the window now lets go.
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
            if let Some(scales) = self.scales.get_mut(&key) {
                scales.peer_sack = tcp.sack_permitted;
            }
        }
        let Some(ack) = tcp.ack_number else {
            return;
        };
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&key) {
            self.flows.clear();
            self.due.clear();
        }
        let flow = self.flows.entry(key).or_default();
        // Read from the SYNs, which come before the first acknowledgement (the
        // peer's SYN carries none when it opens the connection).
        flow.sack_ok = self.scales.get(&key).is_some_and(|s| s.peer_sack);
        if flow.srtt.is_none() {
            // The acknowledgement of our SYN: the first round trip.
            let syn = self.scales.get_mut(&key).filter(|s| !s.syn_again);
            if let Some(sent) = syn.and_then(|s| s.syn_at.take()) {
                flow.timing = Some((ack, sent));
            }
        }
        let window_changed = flow.peer_window != tcp.window;
        flow.peer_window = tcp.window;
        if tcp.window != 0 {
            if let Some(persist) = flow.persist.take() {
                if self.spare.len() < MAX_SPARE {
                    self.spare.push(persist.template);
                }
            }
        }
        let advanced = flow.peer_ack.is_none_or(|last| ack > last);
        let mut lost_before = flow.kept.tally.lost > 0;
        // Bytes this ACK reports delivered, cumulatively or SACKed (RFC
        // 6937's DeliveredData).
        let mut delivered = 0;
        if advanced {
            let acked = flow.peer_ack.map_or(0, |last| ack - last);
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
                if !kept.sacked && kept.released {
                    flow.delivered(kept.sent_at, kept.again, now);
                    delivered += kept.len();
                }
                if self.spare.len() < MAX_SPARE {
                    self.spare.push(kept.frame);
                }
            }
            if flow
                .kept
                .front()
                .is_some_and(|k| k.sacked && k.seq < k.data_end && k.data_end <= ack)
            {
                // Its data is in, its FIN not: a receiver drops a FIN that
                // comes out of order (smoltcp does), so it goes again. A
                // bare FIN SACKed was kept: its ACK follows.
                flow.kept.update(0, |front| front.sacked = false);
            }
            // Linux's reneging check (`tcp_check_sack_reneging`): an
            // acknowledgement that stops at a segment the peer SACKed means
            // the peer dropped it (RFC 2018 allows it; smoltcp's receiver
            // drops a segment beyond 16 holes). The timer fires soon, not a
            // timeout later: max(srtt / 2, 10 ms), time for an ACK in flight
            // to show otherwise.
            let reneging = flow.kept.front().is_some_and(|k| k.sacked && k.seq == ack);
            flow.reneged = reneging.then(|| {
                let wait = (flow.srtt.unwrap_or(MIN_RTO) / 2).max(MIN_PROBE);
                flow.reneged.unwrap_or(now + wait)
            });
            if let Some(recover) = flow.recover {
                if ack >= recover {
                    flow.recover = None;
                    flow.before_recovery = None;
                    flow.prr = None;
                } else if !flow.sack_ok {
                    // NewReno's partial acknowledgement: the next hole is lost.
                    if flow.kept.front().is_some_and(|k| k.released) {
                        flow.kept.update(0, |front| front.lost = true);
                        lost_before = false;
                    }
                }
            }
            flow.grow(acked, now);
        } else if flow.peer_ack == Some(ack)
            && tcp.data_len == 0
            && !tcp.syn
            && !tcp.fin
            && !window_changed
            && !flow.kept.is_empty()
        {
            flow.dup_acks += 1;
            if !flow.sack_ok
                && flow.dup_acks == DUP_THRESH
                && flow.recover.is_none()
                && flow.kept.front().is_some_and(|k| k.released)
            {
                flow.kept.update(0, |front| front.lost = true);
            }
        }
        if let Some((left, right)) = dsack(&tcp.sacks, ack) {
            flow.on_dsack(left, right, now);
        }
        for &(left, right) in tcp.sacks.iter().flatten() {
            let (left, right) = (TcpSeqNumber(left as i32), TcpSeqNumber(right as i32));
            if right <= ack || right <= left {
                continue;
            }
            for i in 0..flow.kept.len() {
                let kept = &flow.kept[i];
                // A segment with data is SACKed by a block over its data (a
                // receiver that drops an early FIN reports the data alone); a
                // bare FIN by one over the FIN, as Linux reports an early FIN
                // it keeps (and so does the engine's receiver).
                let reported_end = if kept.data_end == kept.seq {
                    kept.end
                } else {
                    kept.data_end
                };
                if kept.sacked || !kept.released || kept.seq < left || reported_end > right {
                    continue;
                }
                let (sent_at, again) = (kept.sent_at, kept.again);
                delivered += flow.kept.update(i, |kept| {
                    kept.sacked = true;
                    kept.lost = false;
                    kept.len()
                });
                flow.delivered(sent_at, again, now);
            }
        }
        if !flow.kept.is_empty() {
            flow.detect_losses(now);
            let lost_now = flow.kept.tally.lost > 0;
            if lost_now {
                flow.enter_recovery();
            }
            flow.proportional_reduction(delivered);
            // The first retransmission of a recovery goes whatever the window
            // (RFC 6675, step 4.3).
            Self::send_lost(flow, lost_now && !lost_before, now, out);
            Self::release(flow, now, out);
        }
        Self::file(&mut self.due, key, flow);
    }

    /// Sends again the segments found lost, oldest first, while the window
    /// has room (one at least if `first`).
    fn send_lost(flow: &mut FlowState, first: bool, now: Duration, out: &mut Vec<Vec<u8>>) {
        if flow.kept.tally.lost == 0 {
            return;
        }
        let mut first = first;
        for i in 0..flow.kept.len() {
            let kept = &flow.kept[i];
            if !kept.lost {
                continue;
            }
            let len = kept.len();
            if len > flow.room() && !first {
                break;
            }
            first = false;
            flow.spend(len);
            Self::send_again(flow, i, now, out);
        }
    }

    /// Lets held segments go, in order, while the window has room.
    fn release(flow: &mut FlowState, now: Duration, out: &mut Vec<Vec<u8>>) {
        if flow.kept.tally.released == flow.kept.len() {
            return;
        }
        for i in 0..flow.kept.len() {
            let kept = &flow.kept[i];
            if kept.released {
                continue;
            }
            let len = kept.len();
            if len > flow.room() && !flow.nothing_released() {
                break;
            }
            flow.spend(len);
            Self::release_one(flow, i, now, out);
        }
    }

    /// Puts the held segment `i` on the wire, with the acknowledgement and
    /// window this stack sends now.
    fn release_one(flow: &mut FlowState, i: usize, now: Duration, out: &mut Vec<Vec<u8>>) {
        flow.note_release(i, now);
        let (expected, window) = (flow.expected, flow.our_window);
        let mut frame = flow.kept[i].frame.clone();
        if let Some(ack) = expected {
            refresh(&mut frame, ack, window);
            flow.acked_out = Some((ack, window));
        }
        out.push(frame);
    }

    /// Sends the kept segment `i` again, with the acknowledgement and window
    /// this stack sends now.
    fn send_again(flow: &mut FlowState, i: usize, now: Duration, out: &mut Vec<Vec<u8>>) {
        let (expected, window) = (flow.expected, flow.our_window);
        let mut frame = flow.kept[i].frame.clone();
        if let Some(ack) = expected {
            refresh(&mut frame, ack, window);
            flow.acked_out = Some((ack, window));
        }
        flow.kept.update(i, |kept| {
            kept.sent_at = now;
            kept.again = true;
            kept.lost = false;
        });
        flow.last_sent = now;
        flow.timing = None;
        if let Some(undo) = flow.undo.as_mut() {
            undo.retransmissions += 1;
        }
        flow.retransmitted = flow.retransmitted.saturating_add(1);
        out.push(frame);
    }

    /// Notes an outgoing segment (`frame`, read as `segment`): keeps a copy of
    /// new data to the wire (`keep`: loopback loses nothing), holds it back if
    /// the congestion window is full, and says whether a retransmission of
    /// smoltcp's goes. A segment held back that carried news for the peer (a
    /// new acknowledgement) leaves a bare ACK in `out`.
    pub(crate) fn on_egress(
        &mut self,
        segment: &EgressSegment,
        frame: &[u8],
        keep: bool,
        now: Duration,
        out: &mut Vec<Vec<u8>>,
    ) -> Egress {
        if segment.syn {
            self.note_scale(segment.flow, true, segment.window_scale);
            if let Some(scales) = self.scales.get_mut(&segment.flow) {
                scales.syn_again |= scales.syn_at.is_some();
                scales.syn_at = Some(now);
            }
        }
        let Some(state) = self.flows.get_mut(&segment.flow) else {
            return Egress::Send;
        };
        let verdict = state.on_egress(segment, frame, keep, now, &mut self.spare, out);
        Self::file(&mut self.due, segment.flow, state);
        verdict
    }

    /// A segment smoltcp sends again (a fast retransmit, its timer, a
    /// keep-alive): dropped if every kept segment it covers is held, SACKed,
    /// or was sent again by the engine less than a round trip ago; else it
    /// goes, and counts as their retransmission (and a loss).
    fn smoltcp_again(
        state: &mut FlowState,
        seq: TcpSeqNumber,
        end: TcpSeqNumber,
        now: Duration,
    ) -> Egress {
        if state.peer_ack.is_some_and(|ack| end <= ack) {
            // All acknowledged, as far as the engine knows: smoltcp takes
            // only the acknowledgements of segments in its receive window,
            // and missed one the engine read (a keep-alive's, a window
            // probe's, an old segment's sent again), or it sends a
            // keep-alive. Nothing was lost: it goes, and counts for nothing.
            return Egress::Send;
        }
        let recent = state.srtt.unwrap_or(MIN_PROBE).max(MIN_PROBE);
        let mut covered = state
            .kept
            .iter()
            .filter(|k| k.seq < end && k.end > seq)
            .peekable();
        if covered.peek().is_some()
            && covered.all(|k| !k.released || k.sacked || (k.again && now < k.sent_at + recent))
        {
            return Egress::Drop;
        }
        state.timing = None;
        state.retransmitted = state.retransmitted.saturating_add(1);
        state.enter_recovery();
        for i in 0..state.kept.len() {
            if state.kept[i].seq < end && state.kept[i].end > seq {
                state.kept.update(i, |kept| {
                    kept.sent_at = now;
                    kept.again = true;
                    kept.lost = false;
                    kept.released = true;
                });
            }
        }
        Egress::Send
    }

    /// The peer's segment `frame` (read as `tcp`) closed its window, or kept
    /// it closed, while this stack has data to send: the persist timer runs
    /// (RFC 9293, 3.8.6.1), as Linux's, from the retransmission timeout
    /// (200 ms at least) and backing off. smoltcp probes too, but on its own
    /// timer, never before 1 s: a window update the peer sent and lost then
    /// stalled the flow that long.
    pub(crate) fn persist(&mut self, tcp: &TcpView, frame: &[u8], now: Duration) {
        let key = (
            tcp.segment.dst.ip(),
            tcp.segment.dst.port(),
            tcp.segment.src.ip(),
            tcp.segment.src.port(),
        );
        let Some(flow) = self.flows.get_mut(&key).filter(|f| f.peer_window == 0) else {
            return;
        };
        let persist = flow.persist.get_or_insert_with(|| Persist {
            since: now,
            probes: 0,
            template: self.spare.pop().unwrap_or_default(),
        });
        persist.template.clear();
        persist.template.extend_from_slice(frame);
        self.refile(key);
    }

    /// Chooses `flow`'s congestion controller (`TCP_CONGESTION`); a change
    /// keeps the window and threshold, as Linux's does.
    pub(crate) fn set_congestion(&mut self, flow: Flow, congestion: Congestion) {
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&flow) {
            return;
        }
        let state = self.flows.entry(flow).or_default();
        let reno = congestion == Congestion::Reno;
        if state.reno != reno {
            state.reno = reno;
            state.cubic = Cubic::default();
        }
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
            flight_peak: if state.cwnd == 0 {
                10 * state.smss()
            } else {
                state.cwnd
            },
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
            for kept in state.kept.into_segments() {
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
    /// as lost, and go as the window lets them).
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
        if flow.peer_window == 0 {
            return Self::probe_window(flow, now, out);
        }
        if flow.last_released().is_none() {
            return;
        }
        let timeout = flow.since + (flow.rto() * (1 << flow.backoffs)).min(MAX_RTO);
        let reneged = flow.reneged.take_if(|at| *at <= now).is_some();
        if flow.backoffs < MAX_BACKOFFS && (timeout <= now || reneged) {
            // RFC 5681: the threshold to half the flight, the window to one
            // segment; every segment not SACKed is lost.
            let mss = flow.smss();
            if flow.backoffs == 0 {
                // Once per timeout episode (RFC 5681: not again for a
                // retransmission lost in it).
                flow.ssthresh = Some(flow.reduce());
            }
            flow.cwnd = mss;
            flow.recover = flow.released_end();
            // Slow start from one segment now, not a proportional reduction.
            flow.prr = None;
            if flow.backoffs > 0 || reneged {
                // The receiver dropped what it SACKed (RFC 2018 lets it
                // renege; RFC 6675, 5.1), as its acknowledgement showed, or a
                // second timeout in a row suggests: that goes again too.
                for i in 0..flow.kept.len() {
                    flow.kept.update(i, |kept| kept.sacked = false);
                }
            }
            for i in 0..flow.kept.len() {
                if flow.kept[i].released && !flow.kept[i].sacked {
                    flow.kept.update(i, |kept| kept.lost = true);
                }
            }
            flow.backoffs += 1;
            flow.since = now;
            flow.rack_sent_at = None;
            Self::send_lost(flow, true, now, out);
            return;
        }
        if flow.rack_at().is_some_and(|at| at <= now) {
            flow.detect_losses(now);
            flow.enter_recovery();
            Self::send_lost(flow, true, now, out);
            return;
        }
        if flow.probe_at().is_some_and(|at| at <= now) {
            let held = flow.kept.iter().position(|k| !k.released);
            match held.filter(|_| !flow.recovering()) {
                // New data if there is some (smoltcp sent it within the
                // peer's window; the congestion window held it): it probes
                // as well and tells more (RFC 8985, 7.3).
                Some(first_held) => Self::release_one(flow, first_held, now, out),
                None => {
                    if let Some(target) = flow.probe_target() {
                        // A probe is no loss yet: the window stays.
                        Self::send_again(flow, target, now, out);
                    }
                }
            }
            flow.probed = true;
        }
    }
}

impl Recovery {
    /// Sends a window probe if the persist timer is due: as Linux's, a bare
    /// ACK whose sequence number is one below the peer's acknowledgement,
    /// which the peer answers with an ACK that carries its window.
    fn probe_window(flow: &mut FlowState, now: Duration, out: &mut Vec<Vec<u8>>) {
        if flow.persist_at().is_none_or(|at| at > now) {
            return;
        }
        let (Some(una), Some(ack)) = (flow.peer_ack, flow.expected) else {
            return;
        };
        let window = flow.our_window;
        let Some(persist) = flow.persist.as_mut() else {
            return;
        };
        let mut probe = Vec::new();
        if frames::write_tcp_ack_reply(&mut probe, &persist.template, una - 1, ack, window) {
            out.push(probe);
        }
        persist.since = now;
        persist.probes = persist.probes.saturating_add(1);
    }
}

/// The D-SACK block (RFC 2883, 4) among a segment's SACK blocks, if its
/// first is one: below the acknowledgement `ack`, or within its second block.
fn dsack(blocks: &[Option<(u32, u32)>], ack: TcpSeqNumber) -> Option<(TcpSeqNumber, TcpSeqNumber)> {
    let seq = |n: u32| TcpSeqNumber(n as i32);
    let (left, right) = blocks.first().copied().flatten()?;
    let (left, right) = (seq(left), seq(right));
    if right <= left {
        return None;
    }
    let within_second = blocks
        .get(1)
        .copied()
        .flatten()
        .is_some_and(|(l, r)| seq(l) <= left && right <= seq(r));
    (right <= ack || within_second).then_some((left, right))
}

/// Writes into `buf` a bare ACK made of the data segment `frame`: its
/// headers, without data, FIN or PSH. False if `frame` is no TCP segment.
fn bare_ack(buf: &mut Vec<u8>, frame: &[u8]) -> bool {
    if !frames::write_tcp_part(buf, frame, TcpPart::WithoutData) {
        return false;
    }
    edit_tcp(buf, |tcp| {
        tcp.set_fin(false);
        tcp.set_psh(false);
    })
}

/// Writes `ack` and `window` into the TCP segment `frame` carries, and its
/// checksum anew.
pub(crate) fn refresh(frame: &mut [u8], ack: TcpSeqNumber, window: u16) {
    edit_tcp(frame, |tcp| {
        if tcp.ack() {
            tcp.set_ack_number(ack);
            tcp.set_window_len(window);
        }
    });
}

/// Changes the TCP header of the segment `frame` carries with `edit`, and
/// fills its checksum anew. False if `frame` is no TCP segment.
fn edit_tcp(frame: &mut [u8], edit: impl FnOnce(&mut TcpPacket<&mut [u8]>)) -> bool {
    let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) else {
        return false;
    };
    let ethertype = eth.ethertype();
    let l3 = eth.payload_mut();
    let (src, dst, tcp): (IpAddress, IpAddress, &mut [u8]) = match ethertype {
        EthernetProtocol::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(&mut *l3) else {
                return false;
            };
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            let header = usize::from(ip.header_len());
            (src, dst, &mut l3[header..])
        }
        EthernetProtocol::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked(&mut *l3) else {
                return false;
            };
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            (src, dst, &mut l3[40..])
        }
        _ => return false,
    };
    let Ok(mut tcp) = TcpPacket::new_checked(tcp) else {
        return false;
    };
    edit(&mut tcp);
    tcp.fill_checksum(&src, &dst);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::Ipv4Address;

    const US: (Ipv4Address, u16) = (Ipv4Address::new(10, 0, 0, 1), 40000);
    const PEER: (Ipv4Address, u16) = (Ipv4Address::new(10, 0, 0, 2), 80);
    const MS: Duration = Duration::from_millis(1);

    /// Our segment of `len` bytes at `seq`, and its frame.
    fn outgoing(seq: i32, len: usize) -> (EgressSegment, Vec<u8>) {
        let frame = frames::tcp_frame_for_tests(US, PEER, seq, 1, &vec![7; len], None);
        let segment = EgressSegment {
            flow: (US.0.into(), US.1, PEER.0.into(), PEER.1),
            seq: TcpSeqNumber(seq),
            len,
            data: len,
            fin: false,
            ack: Some(TcpSeqNumber(1)),
            rst: false,
            syn: false,
            window_scale: None,
            window: 1000,
        };
        (segment, frame)
    }

    /// The peer's ACK of `ack`, with one SACK block if given.
    fn incoming(ack: i32, sack: Option<(u32, u32)>) -> TcpView {
        let frame = frames::tcp_frame_for_tests(PEER, US, 1, ack, &[], sack);
        frames::tcp_view(&frame).unwrap()
    }

    /// The sequence numbers of the data segments in `out`.
    fn sent(out: &[Vec<u8>]) -> Vec<i32> {
        out.iter()
            .filter_map(|f| frames::tcp_view(f))
            .filter(|v| v.data_len > 0)
            .map(|v| v.seq.0)
            .collect()
    }

    /// A flow whose peer's SYN (acknowledging 1000) offered SACK, at time
    /// zero; and what recovery sent.
    fn after_sack_syn() -> (Recovery, Vec<Vec<u8>>) {
        let mut recovery = Recovery::default();
        let mut out = Vec::new();
        let mut syn = incoming(1000, None);
        syn.syn = true;
        syn.sack_permitted = true;
        recovery.on_ingress(&syn, Duration::ZERO, &mut out);
        (recovery, out)
    }

    /// Every flow's counts are those a walk over its segments makes, and
    /// RACK's walk, stopped at [`FlowState::rack_bound`], finds what a walk
    /// over all of them finds.
    fn assert_counts_walk(recovery: &Recovery) {
        for flow in recovery.flows.values() {
            let mut walked = Tally::default();
            for kept in flow.kept.iter() {
                walked.add(Tally::of(kept));
            }
            assert_eq!(flow.kept.tally, walked);
            let whole_walk = flow
                .rack_sent_at
                .filter(|_| flow.sack_ok)
                .and_then(|newest| {
                    let wait = flow.rack_rtt + flow.reordering_window();
                    flow.kept
                        .iter()
                        .filter(|k| k.released && !k.sacked && !k.lost && k.sent_at < newest)
                        .map(|k| k.sent_at + wait)
                        .min()
                });
            assert_eq!(flow.rack_at(), whole_walk);
        }
    }

    /// Through held segments, holes SACKed around, losses found by count
    /// and by time, retransmissions, timeouts and a reneging peer, the
    /// scoreboard's counts stay those of a walk over it.
    #[test]
    fn the_scoreboard_counts_what_a_walk_counts() {
        // Segment k of 1000 bytes starts at byte 1000 + 1000 k.
        let at = |k: u32| 1000 + 1000 * k;
        let (mut recovery, mut out) = after_sack_syn();
        let mut now = 10 * MS;
        let mut next = 0;
        let mut send = |recovery: &mut Recovery, now: Duration, out: &mut Vec<Vec<u8>>| {
            let (segment, frame) = outgoing(at(next) as i32, 1000);
            next += 1;
            recovery.on_egress(&segment, &frame, true, now, out);
            assert_counts_walk(recovery);
        };
        // Thirty segments, five a millisecond: the window lets fourteen go,
        // the rest are held.
        for _ in 0..6 {
            for _ in 0..5 {
                send(&mut recovery, now, &mut out);
            }
            now += MS;
        }
        let ack = |recovery: &mut Recovery, now, ack: u32, blocks: &[(u32, u32)]| {
            let mut view = incoming(ack as i32, None);
            for (slot, &(left, right)) in view.sacks.iter_mut().zip(blocks) {
                *slot = Some((at(left), at(right)));
            }
            recovery.on_ingress(&view, now, &mut Vec::new());
            assert_counts_walk(recovery);
        };
        // Runs the next deadline; false if there is none.
        let timer = |recovery: &mut Recovery, now: &mut Duration, out: &mut Vec<Vec<u8>>| {
            let Some(due) = recovery.deadline() else {
                return false;
            };
            *now = (*now).max(due);
            recovery.due(*now, out);
            assert_counts_walk(recovery);
            true
        };
        // Segment 3 lost: segments sent after it SACKed one at a time (RACK
        // suspects it, then DupThresh finds it).
        for right in 5..9 {
            ack(&mut recovery, now, at(3), &[(4, right)]);
            now += MS;
        }
        // Two holes more (10 and 12), SACKed around; time passes for RACK
        // and the timer.
        ack(&mut recovery, now, at(3), &[(11, 12), (13, 14), (4, 10)]);
        for _ in 0..6 {
            if !timer(&mut recovery, &mut now, &mut out) {
                break;
            }
            send(&mut recovery, now, &mut out);
        }
        // The holes fill; then the peer acknowledges up to a segment it had
        // SACKed and no further (reneging), and the timer fires.
        now += MS;
        ack(&mut recovery, now, at(10), &[(11, 12), (13, 14)]);
        now += MS;
        ack(&mut recovery, now, at(11), &[(13, 14)]);
        now += MS;
        ack(&mut recovery, now, at(13), &[]);
        for _ in 0..4 {
            if !timer(&mut recovery, &mut now, &mut out) {
                break;
            }
        }
        now += MS;
        ack(&mut recovery, now, at(next), &[]);
        let flow = recovery.flows.values().next().expect("the flow");
        assert!(flow.kept.is_empty(), "{:?}", flow.kept);
        assert_eq!(flow.kept.tally, Tally::default());
        assert!(!out.is_empty());
    }

    /// The peer SACKed 1200..1300, then acknowledged up to 1200 and no
    /// further: it dropped what it SACKed (RFC 2018 lets a receiver renege;
    /// smoltcp's assembler, full of holes, drops segments). As Linux's
    /// reneging check, the timer fires max(srtt / 2, 10 ms) later, forgets
    /// the SACKed marks, and 1200 goes again, where it waited for two
    /// timeouts (the first left SACKed segments alone).
    #[test]
    fn an_acknowledgement_that_stops_at_a_sacked_segment_is_reneging() {
        let (mut recovery, mut out) = after_sack_syn();
        let start = 10 * MS;
        for i in 0..4 {
            let (segment, frame) = outgoing(1000 + 100 * i, 100);
            let verdict = recovery.on_egress(&segment, &frame, true, start, &mut out);
            assert_eq!(verdict, Egress::Send);
        }
        recovery.on_ingress(
            &incoming(1100, Some((1200, 1300))),
            start + 2 * MS,
            &mut out,
        );
        recovery.on_ingress(&incoming(1200, None), start + 3 * MS, &mut out);
        assert!(sent(&out).is_empty(), "{:?}", sent(&out));
        let at = recovery.deadline().expect("a timer");
        assert!(at <= start + 13 * MS, "{at:?}");
        recovery.due(at, &mut out);
        assert_eq!(sent(&out).first(), Some(&1200), "{:?}", sent(&out));
    }

    /// A flow with nothing of its own on the wire sends a segment whatever
    /// its window says, here a recovery's allowance of nothing: no
    /// acknowledgement would ever come to widen it (the stall of
    /// `tcp_scenarios.rs`'s `data_acknowledged_behind_smoltcp_s_back_is_not_a_loss`,
    /// should a recovery start with nothing outstanding some other way).
    #[test]
    fn with_nothing_on_the_wire_a_segment_goes_whatever_the_window() {
        let mut flow = FlowState {
            peer_ack: Some(TcpSeqNumber(1000)),
            peer_window: 1000,
            sent_end: Some(TcpSeqNumber(1000)),
            recover: Some(TcpSeqNumber(1000)),
            prr: Some(Prr {
                recover_fs: 0,
                delivered: 0,
                out: 0,
                allowance: 0,
            }),
            ..FlowState::default()
        };
        let (mut spare, mut out) = (Vec::new(), Vec::new());
        let (first, frame) = outgoing(1000, 100);
        let verdict = flow.on_egress(&first, &frame, true, MS, &mut spare, &mut out);
        assert_eq!(verdict, Egress::Send);
        // The next waits for the window, as before.
        let (second, frame) = outgoing(1100, 100);
        let verdict = flow.on_egress(&second, &frame, true, MS, &mut spare, &mut out);
        assert_eq!(verdict, Egress::Hold);
    }
}
