//! Retransmission after a stall, sooner than smoltcp's one-second floor.
//!
//! smoltcp 0.14 retransmits on three duplicate ACKs or when its retransmission
//! timer expires, and that timer never fires sooner than 1 s (`RTTE_MIN_RTO`, a
//! constant), doubling each time. On a lossy wire a sender keeps meeting losses
//! that no duplicate ACK reveals: a lost retransmission, the last segments of a
//! burst. Each then costs a second of silence and a restart from one segment, which
//! made a connection under 1% loss 40 times slower than Linux's (whose timer floor
//! is 200 ms, and which has SACK and tail-loss probes besides).
//!
//! This watches each flow's acknowledgements. When data has been outstanding for
//! a stall bound (four smoothed round trips, 200 ms at least, doubling while no
//! acknowledgement comes) with no acknowledgement moving, it hands smoltcp what a
//! receiver missing a segment would send: three duplicate ACKs, after a window
//! update that clears smoltcp's duplicate count (it retransmits on exactly the
//! third). smoltcp then does a fast retransmit of the oldest unacknowledged segment
//! and halves its window, as it would for a loss the peer had reported. The ACKs
//! are made from the peer's own last segment header and only repeat what the peer
//! said, so nothing the peer did not acknowledge is ever taken as acknowledged.

use super::frames::{self, EgressSegment, Flow, TcpPart, TcpView};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, Ipv4Packet, Ipv6Packet, TcpPacket, TcpSeqNumber,
};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The shortest stall that counts as a loss (Linux's `TCP_RTO_MIN`).
const MIN_STALL: Duration = Duration::from_millis(200);

/// Round trips of silence that make a stall, before the floor.
const STALL_RTTS: u32 = 4;

/// Repairs tried for one stall before leaving it to smoltcp's own timer (the
/// last one 3.2 s after the one before, at the floor).
const MAX_REPAIRS: u32 = 5;

/// Flows remembered at most; past that the table starts over (a stall is then
/// left to smoltcp's timer).
const MAX_FLOWS: usize = 16 * 1024;

/// What is known about one flow's sending side.
#[derive(Debug, Default)]
struct FlowState {
    /// A segment of the peer's (the first without SYN or options), without data:
    /// the addresses and ports of the ACKs made for it.
    template: Vec<u8>,
    /// The highest acknowledgement the peer sent, and the window it gave with it.
    peer_ack: Option<TcpSeqNumber>,
    peer_window: u16,
    /// One past the highest sequence number this stack sent (data or FIN).
    sent_end: Option<TcpSeqNumber>,
    /// One past the last byte of data this stack sent. Only data is repaired:
    /// smoltcp answers three duplicates with nothing when no data is waiting (a
    /// lone FIN), and forgets its retransmission timer as it does.
    data_end: Option<TcpSeqNumber>,
    /// The acknowledgement number this stack sent last: what it expects next.
    expected: Option<TcpSeqNumber>,
    /// When the acknowledgement last moved (or the last repair went out).
    since: Duration,
    /// Repairs sent since the acknowledgement last moved.
    repairs: u32,
    /// A round-trip measurement under way: the sequence number that ends it, and
    /// when its segment left. Dropped when anything is sent again (Karn).
    timing: Option<(TcpSeqNumber, Duration)>,
    srtt: Option<Duration>,
    /// The smoothed deviation of the round trips (RFC 6298), for `TCP_INFO`.
    rttvar: Option<Duration>,
    /// Segments sent again (retransmissions), for `TCP_INFO`.
    retransmitted: u32,
    /// The most bytes in flight since the last retransmission, halved by each:
    /// what the sender's congestion window allowed, as seen from outside it
    /// (smoltcp keeps its own window private), for `TCP_INFO`.
    flight_peak: usize,
    /// Its `due_at` as filed in the stall watch's index.
    filed: Option<Duration>,
}

/// What the stall watch knows of a flow's sending side, for `TCP_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FlowStats {
    /// The smoothed round trip and its deviation, once one was measured.
    pub srtt: Option<Duration>,
    pub rttvar: Option<Duration>,
    /// Segments sent again, in all.
    pub retransmitted: u32,
    /// Repairs sent since the acknowledgement last moved.
    pub repairs: u32,
    /// Bytes sent and not yet acknowledged.
    pub in_flight: usize,
    /// The most bytes in flight since the last retransmission (halved by each).
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
}

impl FlowState {
    /// Data is waiting for an acknowledgement.
    fn outstanding(&self) -> bool {
        matches!((self.data_end, self.peer_ack), (Some(end), Some(ack)) if end > ack)
    }

    /// When the current stall becomes one to repair, if data is outstanding and
    /// a repair can be made.
    fn due_at(&self) -> Option<Duration> {
        if !self.outstanding()
            || self.repairs >= MAX_REPAIRS
            || self.peer_window == 0
            || self.expected.is_none()
            || self.template.is_empty()
        {
            return None;
        }
        let rtts = self.srtt.map_or(Duration::ZERO, |rtt| rtt * STALL_RTTS);
        Some(self.since + rtts.max(MIN_STALL) * (1 << self.repairs))
    }
}

/// The stall watch of every flow this stack sends on.
#[derive(Debug, Default)]
pub(crate) struct StallRepair {
    /// Looked up per segment, never walked (the order of repairs is the index's,
    /// so a hash's order cannot make runs differ).
    flows: HashMap<Flow, FlowState>,
    /// The flows with a repair to come, by when: the next deadline is the first
    /// entry, not a walk over every flow at every pump step.
    due: BTreeSet<(Duration, Flow)>,
    /// The window scales each side offered in its SYN, kept apart from the
    /// numbers (which a SYN starts afresh) because our SYN and the peer's come in
    /// either order.
    scales: HashMap<Flow, WindowScales>,
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

impl StallRepair {
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

    /// Notes an incoming segment: its acknowledgement, window and header.
    pub(crate) fn on_ingress(&mut self, frame: &[u8], tcp: &TcpView, now: Duration) {
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
        // A model without options (a SYN's would carry its MSS and window
        // scale into segments that must not have them). A peer that puts
        // options on every segment gives none, and its stalls are left to
        // smoltcp's timer.
        if flow.template.is_empty()
            && !tcp.syn
            && !tcp.options
            && !frames::write_tcp_part(&mut flow.template, frame, TcpPart::WithoutData)
        {
            flow.template.clear();
        }
        flow.peer_window = tcp.window;
        if flow.peer_ack.is_none_or(|last| ack > last) {
            flow.peer_ack = Some(ack);
            flow.since = now;
            flow.repairs = 0;
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
                    flow.timing = None;
                }
            }
        }
        self.refile(key);
    }

    /// Notes an outgoing segment.
    pub(crate) fn on_egress(&mut self, segment: &EgressSegment, now: Duration) {
        self.note_egress(segment, now);
        self.refile(segment.flow);
    }

    fn note_egress(&mut self, segment: &EgressSegment, now: Duration) {
        if segment.syn {
            self.note_scale(segment.flow, true, segment.window_scale);
        }
        let Some(state) = self.flows.get_mut(&segment.flow) else {
            return;
        };
        if segment.ack.is_some() {
            state.expected = segment.ack;
        }
        if segment.len == 0 {
            return;
        }
        let end = segment.seq + segment.len;
        if state.sent_end.is_some_and(|sent| end <= sent) {
            // A retransmission: its acknowledgement says nothing about the
            // round trip.
            state.timing = None;
            state.retransmitted = state.retransmitted.saturating_add(1);
            state.flight_peak /= 2;
            return;
        }
        if !state.outstanding() {
            // Data after a quiet time: the stall clock starts now.
            state.since = now;
        }
        state.sent_end = Some(end);
        state.flight_peak = state.flight_peak.max(state.in_flight());
        if segment.data > 0 {
            // Data follows the SYN, if any, and precedes the FIN, if any.
            state.data_end = Some(end - usize::from(segment.fin));
        }
        if state.timing.is_none() {
            state.timing = Some((end, now));
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
            repairs: state.repairs,
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
        }
    }

    /// When the next stall becomes one to repair.
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.due.first().map(|&(at, _)| at)
    }

    /// For every flow whose stall is due, appends to `out` the frames to hand to
    /// smoltcp as if they came from the peer: a window update, then three
    /// duplicate ACKs.
    pub(crate) fn due(&mut self, now: Duration, out: &mut Vec<Vec<u8>>) {
        let keys: Vec<Flow> = self
            .due
            .iter()
            .take_while(|&&(at, _)| at <= now)
            .map(|&(_, key)| key)
            .collect();
        for key in keys {
            self.repair(key, now, out);
            self.refile(key);
        }
    }

    fn repair(&mut self, key: Flow, now: Duration, out: &mut Vec<Vec<u8>>) {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let (Some(ack), Some(expected)) = (flow.peer_ack, flow.expected) else {
            return;
        };
        // Another window than the last one smoltcp saw, so that it takes the
        // first as news and resets its count of duplicates.
        let nudged = if flow.peer_window > 1 {
            flow.peer_window - 1
        } else {
            flow.peer_window + 1
        };
        for window in [nudged; 4] {
            let mut frame = flow.template.clone();
            if rewrite_ack(&mut frame, expected, ack, window) {
                out.push(frame);
            }
        }
        flow.repairs += 1;
        flow.since = now;
        flow.timing = None;
    }
}

/// Turns the data-less segment `frame` into a pure ACK with these numbers.
fn rewrite_ack(frame: &mut [u8], seq: TcpSeqNumber, ack: TcpSeqNumber, window: u16) -> bool {
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
    tcp.set_seq_number(seq);
    tcp.set_ack_number(ack);
    tcp.set_window_len(window);
    tcp.set_psh(false);
    tcp.set_fin(false);
    tcp.set_syn(false);
    tcp.set_rst(false);
    tcp.set_urg(false);
    tcp.set_ack(true);
    tcp.fill_checksum(&src, &dst);
    true
}
