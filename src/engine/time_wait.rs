//! TIME-WAIT kept as Linux keeps it: a small record per closed connection, not
//! the connection.
//!
//! A connection the application closed first ends in TIME-WAIT, where it must
//! still acknowledge the peer's FIN if the peer retransmits it (its last ACK was
//! lost) rather than reset it. smoltcp keeps a whole socket for that, with its
//! rings (the pump's page mapping) and for 10 s only; Linux keeps a
//! `tcp_timewait_sock` of a few dozen bytes for 60 s (`TCP_TIMEWAIT_LEN`). So
//! once an orphan reaches TIME-WAIT and smoltcp owes the peer nothing, the engine
//! drops its socket, gives its rings back, and keeps here only the 4-tuple, the
//! two sequence numbers an acknowledgement needs, the window it showed, the
//! port it holds and when the record ends. Segments for the 4-tuple are judged
//! as Linux's `tcp_timewait_state_process` does (TIME-WAIT substate):
//! - a bare ACK at `rcv_nxt`: restarts the 60 s, no answer;
//! - an RST at `rcv_nxt`: ends the record (Linux's default `tcp_rfc1337 = 0`
//!   lets an RST assassinate TIME-WAIT; RFC 1337's advice to ignore it is
//!   Linux's option, not its default); an RST elsewhere is ignored;
//! - a SYN (no ACK) above `rcv_nxt`: a new incarnation, the record goes and the
//!   SYN goes on to a listener (`TCP_TW_SYN`);
//! - anything else (a retransmitted FIN, an old segment, an old SYN): the ACK
//!   (`snd_nxt`, `rcv_nxt`, the window), and the 60 s restart if it carried an
//!   ACK.
//!
//! Records are capped ([`MAX_RECORDS`], as Linux's `tcp_max_tw_buckets`): past
//! the cap a closing connection is forgotten at once, as Linux's overflow does.

use super::flow_hash::FlowMap;
use super::frames::{Flow, TcpView};
use super::ports::PortUse;
use smoltcp::wire::TcpSeqNumber;
use std::collections::VecDeque;
use std::time::Duration;

/// How long a record lives after the last segment that restarted it: Linux's
/// `TCP_TIMEWAIT_LEN`.
pub(crate) const TIME_WAIT_LEN: Duration = Duration::from_secs(60);

/// The most records a stack keeps (Linux scales `tcp_max_tw_buckets` with
/// memory; this is a fixed share).
pub(crate) const MAX_RECORDS: usize = 16 * 1024;

/// What is left of a connection in TIME-WAIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// One past the last sequence number we sent (our FIN's).
    pub snd_nxt: TcpSeqNumber,
    /// One past the peer's FIN.
    pub rcv_nxt: TcpSeqNumber,
    /// The window field our last ACK carried.
    pub window: u16,
    /// The local port the record holds, and how (released when it ends).
    pub port: u16,
    pub port_use: PortUse,
    pub expires: Duration,
}

/// What to do with a segment that met a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Answer with this ACK (sequence, acknowledgement, window).
    Ack {
        seq: TcpSeqNumber,
        ack: TcpSeqNumber,
        window: u16,
    },
    /// Nothing to answer.
    Ignore,
    /// The record ended (an RST, or a new SYN that goes on to a listener): its
    /// port is the caller's to release.
    Ended {
        port: u16,
        port_use: PortUse,
        reopen: bool,
    },
}

/// The TIME-WAIT records of one stack, by 4-tuple (ours first).
#[derive(Debug, Default)]
pub(crate) struct TimeWaits {
    records: FlowMap<Flow, Record>,
    /// Expiries in the order they were set (always `now + 60 s`, so in time
    /// order); an entry whose record was restarted or ended since is stale.
    expiries: VecDeque<(Duration, Flow)>,
}

impl TimeWaits {
    /// True when no record is kept (the common case: one check per segment).
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// How many records are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Keeps a record for `flow` from `now`; false (nothing kept) at the cap.
    pub(crate) fn insert(&mut self, flow: Flow, mut record: Record, now: Duration) -> bool {
        if self.records.len() >= MAX_RECORDS {
            return false;
        }
        record.expires = now + TIME_WAIT_LEN;
        self.records.insert(flow, record);
        self.expiries.push_back((record.expires, flow));
        true
    }

    /// Judges segment `view` of `flow` if a record is kept for it (`None`: none).
    pub(crate) fn judge(&mut self, flow: &Flow, view: &TcpView, now: Duration) -> Option<Verdict> {
        let record = self.records.get_mut(flow)?;
        let len = view.data_len + usize::from(view.syn) + usize::from(view.fin);
        let in_window = view.seq == record.rcv_nxt && (len == 0 || view.rst);
        if in_window {
            if view.rst {
                return Some(self.end(flow, false));
            }
            record.expires = now + TIME_WAIT_LEN;
            self.expiries.push_back((record.expires, *flow));
            return Some(Verdict::Ignore);
        }
        if view.syn && !view.ack && !view.rst && view.seq > record.rcv_nxt {
            return Some(self.end(flow, true));
        }
        if view.rst {
            return Some(Verdict::Ignore);
        }
        if view.ack {
            record.expires = now + TIME_WAIT_LEN;
            self.expiries.push_back((record.expires, *flow));
        }
        Some(Verdict::Ack {
            seq: record.snd_nxt,
            ack: record.rcv_nxt,
            window: record.window,
        })
    }

    fn end(&mut self, flow: &Flow, reopen: bool) -> Verdict {
        let record = self.records.remove(flow).expect("judged above");
        Verdict::Ended {
            port: record.port,
            port_use: record.port_use,
            reopen,
        }
    }

    /// When the next record may end (perhaps earlier: a stale entry).
    pub(crate) fn next_expiry(&self) -> Option<Duration> {
        self.expiries.front().map(|&(at, _)| at)
    }

    /// Ends the records due at `now`, handing each one's port to `release`.
    pub(crate) fn expire(&mut self, now: Duration, mut release: impl FnMut(u16, PortUse)) {
        while let Some(&(at, flow)) = self.expiries.front() {
            if at > now {
                break;
            }
            self.expiries.pop_front();
            if let Some(record) = self.records.get(&flow) {
                if record.expires <= now {
                    release(record.port, record.port_use);
                    self.records.remove(&flow);
                }
            }
        }
        if self.records.is_empty() {
            self.expiries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frames::Segment;

    const S: Duration = Duration::from_secs(1);

    fn flow() -> Flow {
        let a = "10.0.0.1".parse().unwrap();
        let b = "10.0.0.2".parse().unwrap();
        (a, 80, b, 40000)
    }

    fn record() -> Record {
        Record {
            snd_nxt: TcpSeqNumber(1000),
            rcv_nxt: TcpSeqNumber(5000),
            window: 512,
            port: 80,
            port_use: PortUse::PLAIN,
            expires: Duration::ZERO,
        }
    }

    fn view(seq: i32, syn: bool, ack: bool, rst: bool, fin: bool) -> TcpView {
        let (l, _, r, _) = flow();
        TcpView {
            segment: Segment {
                src: (r, 40000).into(),
                dst: (l, 80).into(),
            },
            syn,
            ack,
            rst,
            fin,
            seq: TcpSeqNumber(seq),
            ack_number: ack.then_some(TcpSeqNumber(1000)),
            window: 100,
            options: false,
            data_len: 0,
            window_scale: None,
            sack_permitted: false,
            sacks: [None; 4],
        }
    }

    fn kept() -> TimeWaits {
        let mut tw = TimeWaits::default();
        assert!(tw.insert(flow(), record(), 10 * S));
        tw
    }

    #[test]
    fn a_retransmitted_fin_is_acknowledged_and_restarts_the_wait() {
        let mut tw = kept();
        let fin = view(4999, false, true, false, true);
        let ack = Verdict::Ack {
            seq: TcpSeqNumber(1000),
            ack: TcpSeqNumber(5000),
            window: 512,
        };
        assert_eq!(tw.judge(&flow(), &fin, 40 * S), Some(ack));
        tw.expire(71 * S, |_, _| panic!("restarted at 40 s"));
        let mut released = vec![];
        tw.expire(100 * S, |port, _| released.push(port));
        assert_eq!(released, vec![80]);
        assert!(tw.is_empty());
        assert_eq!(tw.judge(&flow(), &fin, 100 * S), None);
    }

    #[test]
    fn an_rst_in_window_ends_the_record_one_elsewhere_is_ignored() {
        let mut tw = kept();
        let stray = view(4000, false, false, true, false);
        assert_eq!(tw.judge(&flow(), &stray, 11 * S), Some(Verdict::Ignore));
        let rst = view(5000, false, false, true, false);
        assert!(matches!(
            tw.judge(&flow(), &rst, 11 * S),
            Some(Verdict::Ended { reopen: false, .. })
        ));
        assert!(tw.is_empty());
    }

    #[test]
    fn a_new_syn_above_rcv_nxt_reopens_an_old_one_is_acknowledged() {
        let mut tw = kept();
        let old = view(4000, true, false, false, false);
        assert!(matches!(
            tw.judge(&flow(), &old, 11 * S),
            Some(Verdict::Ack { .. })
        ));
        let new = view(9000, true, false, false, false);
        assert!(matches!(
            tw.judge(&flow(), &new, 11 * S),
            Some(Verdict::Ended { reopen: true, .. })
        ));
    }

    #[test]
    fn a_bare_ack_in_window_gets_no_answer() {
        let mut tw = kept();
        let ack = view(5000, false, true, false, false);
        assert_eq!(tw.judge(&flow(), &ack, 11 * S), Some(Verdict::Ignore));
    }

    #[test]
    fn records_are_capped() {
        let mut tw = TimeWaits::default();
        let (l, _, r, _) = flow();
        for port in 0..MAX_RECORDS {
            assert!(tw.insert((l, 80, r, port as u16), record(), S));
        }
        assert!(!tw.insert((l, 81, r, 1), record(), S), "past the cap");
        assert_eq!(tw.len(), MAX_RECORDS);
    }
}
