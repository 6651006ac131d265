//! What becomes of a TCP connection at each transmit, in three steps.
//!
//! After every transmit the engine looks at each connection's smoltcp socket and
//! turns what changed into news for the pump. That used to be one long loop that
//! read the socket, decided and acted all at once, so that the rules (when a
//! connect gives up and with which errno, what tells a reset from a timeout, when
//! a keep-alive probe is due, when a let-go socket may be freed) could only be
//! tested through two whole engines and a virtual wire. Here they are apart:
//!
//! 1. [`Look::of`] reads the socket and the engine's tables into plain values;
//! 2. [`Conn::judge`] decides what those values mean (a [`Verdict`]): a pure
//!    function, tested below without smoltcp;
//! 3. [`Conn::settle`], [`steer`] and [`tell`] carry the verdict out on the
//!    connection's own record, on its socket, and on the listeners and the
//!    event queue.

use super::{
    from_endpoint, map, Conn, Event, Listener, ListenerId, Phase, TcpHandle, TcpState, ARP_GIVE_UP,
    CONNECT_GIVE_UP, GIVE_UP, ORPHAN_LIMIT,
};
use smoltcp::socket::tcp;
use smoltcp::wire::Ipv4Address;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

/// What one look at a connection's socket found, as plain values: all that
/// [`Conn::judge`] needs besides the connection's own record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Look {
    /// When the look was taken.
    pub now: Duration,
    /// The socket's state now (the one at the previous look is `Conn::last_state`).
    pub state: TcpState,
    /// Bytes in the receive ring, and in the send ring (not sent, or not
    /// acknowledged yet).
    pub recv_queue: usize,
    pub send_queue: usize,
    /// The socket's local and remote endpoints; smoltcp clears them when a closed
    /// socket has sent its RST.
    pub endpoints: Option<(SocketAddr, SocketAddr)>,
    /// For a connect through an IPv4 next hop: when that hop last sent an ARP.
    pub hop_heard_at: Option<Duration>,
    /// For a listener's connection: the listener is an IPv6 socket (which shows
    /// its IPv4 peers v4-mapped).
    pub v6_listener: bool,
}

/// What a [`Look`] means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Verdict {
    /// What happened, if anything (and with it the connection's next phase).
    pub news: News,
    /// An open connection's bookkeeping as it is to be from now on.
    pub upkeep: Option<Upkeep>,
    /// The connection is over: its socket and port can go.
    pub finished: bool,
}

/// A change of a connection's phase, and what the pump hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum News {
    /// No change.
    None,
    /// The active open completed.
    Connected,
    /// The active open failed with `errno`; `abort`: smoltcp is still trying, and
    /// must be stopped.
    ConnectFailed { errno: i32, abort: bool },
    /// A handshake on `listener` completed. `addrs` (local, peer) as the
    /// application sees them, absent if smoltcp no longer has them; `mapped`:
    /// shown v4-mapped.
    Accepted {
        listener: ListenerId,
        addrs: Option<(SocketAddr, SocketAddr)>,
        mapped: bool,
    },
    /// A handshake on this listener ended before it completed.
    EmbryoLost(ListenerId),
    /// The open connection ended abnormally with this errno.
    Aborted(i32),
}

/// An open connection's bookkeeping after a look (see the fields of `Conn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Upkeep {
    pub peer_fin: bool,
    pub unacked: usize,
    pub progress_at: Duration,
    pub queues: (usize, usize),
    pub active_at: Duration,
    /// A keep-alive probe is due now.
    pub probe: bool,
    /// The timeout smoltcp's socket should have.
    pub timeout: Option<Duration>,
}

impl Look {
    /// Reads what [`Conn::judge`] needs from the connection's socket and the
    /// engine's tables.
    pub(super) fn of(
        conn: &Conn,
        socket: &tcp::Socket<'static>,
        arp_seen: &HashMap<Ipv4Address, Duration>,
        listeners: &BTreeMap<ListenerId, Listener>,
        now: Duration,
    ) -> Look {
        let hop_heard_at = match conn.phase {
            Phase::Connecting {
                next_hop: Some(hop),
                ..
            } => arp_seen.get(&hop).copied(),
            _ => None,
        };
        let v6_listener = match conn.phase {
            Phase::Embryo(id) => listeners.get(&id).is_some_and(|l| l.local.is_ipv6()),
            _ => false,
        };
        Look {
            now,
            state: socket.state(),
            recv_queue: socket.recv_queue(),
            send_queue: socket.send_queue(),
            endpoints: socket
                .local_endpoint()
                .zip(socket.remote_endpoint())
                .map(|(local, remote)| (from_endpoint(local), from_endpoint(remote))),
            hop_heard_at,
            v6_listener,
        }
    }
}

impl Conn {
    /// Decides what `look` means for this connection.
    pub(super) fn judge(&self, look: &Look) -> Verdict {
        let mut upkeep = None;
        let news = match self.phase {
            Phase::Connecting { since, next_hop } => connect_news(since, next_hop.is_some(), look),
            Phase::Embryo(listener) => handshake_news(listener, look),
            Phase::Open => {
                let kept = self.upkeep(look);
                upkeep = Some(kept);
                self.end_news(look, &kept)
            }
            Phase::Orphan { .. } => News::None,
        };
        let orphan_since = match (news, &self.phase) {
            (News::ConnectFailed { .. } | News::EmbryoLost(_), _) => Some(look.now),
            (_, Phase::Orphan { since }) => Some(*since),
            _ => None,
        };
        Verdict {
            news,
            upkeep,
            finished: orphan_since.is_some_and(|since| orphan_done(since, look)),
        }
    }

    /// An open connection's bookkeeping after `look`: the peer's FIN, progress of
    /// the acknowledgements, activity and keep-alive, and smoltcp's timeout.
    fn upkeep(&self, look: &Look) -> Upkeep {
        let now = look.now;
        let peer_fin = self.peer_fin
            || matches!(
                look.state,
                TcpState::CloseWait | TcpState::LastAck | TcpState::Closing | TcpState::TimeWait
            );
        let waiting = look.send_queue;
        let progress_at = if waiting < self.unacked || waiting == 0 {
            now
        } else {
            self.progress_at
        };
        let queues = (look.recv_queue, look.send_queue);
        let active_at = if queues != self.queues {
            now
        } else {
            self.active_at
        };
        let probe =
            probe_due(&self.options, active_at, self.probed_at).is_some_and(|due| due <= now);
        // smoltcp's timeout ends a connection that hears nothing for that long, so
        // it is armed only while bytes wait for an acknowledgement (a peer silent
        // for GIVE_UP has gone), or with keep-alive on (whose probes a live peer
        // answers).
        let timeout = match self.options.keepalive_limit() {
            _ if look.state == TcpState::Closed => None,
            _ if waiting > 0 => Some(GIVE_UP),
            keepalive => keepalive,
        };
        Upkeep {
            peer_fin,
            unacked: waiting,
            progress_at,
            queues,
            active_at,
            probe,
            timeout,
        }
    }

    /// Whether an open connection ended abnormally, and with which errno: a reset
    /// seen is ECONNRESET; a peer silent for [`GIVE_UP`], or keep-alive giving up,
    /// is ETIMEDOUT; any other end (smoltcp's own) reads as a reset.
    fn end_news(&self, look: &Look, upkeep: &Upkeep) -> News {
        let graceful = matches!(
            self.last_state,
            TcpState::LastAck | TcpState::TimeWait | TcpState::Closed
        );
        if look.state != TcpState::Closed || graceful {
            return News::None;
        }
        let silent = look.now.saturating_sub(upkeep.progress_at) >= GIVE_UP;
        News::Aborted(if self.reset_seen {
            libc::ECONNRESET
        } else if silent || self.options.keepalive {
            libc::ETIMEDOUT
        } else {
            libc::ECONNRESET
        })
    }

    /// Carries out what the verdict says about the connection's own record.
    pub(super) fn settle(&mut self, look: &Look, verdict: &Verdict) {
        let now = look.now;
        self.last_state = look.state;
        match verdict.news {
            News::Connected => {
                self.phase = Phase::Open;
                self.active_at = now;
            }
            News::Accepted { mapped, .. } => {
                self.phase = Phase::Open;
                self.active_at = now;
                self.mapped |= mapped;
            }
            News::ConnectFailed { .. } | News::EmbryoLost(_) => {
                self.phase = Phase::Orphan { since: now };
            }
            News::None | News::Aborted(_) => {}
        }
        if let Some(upkeep) = verdict.upkeep {
            self.peer_fin = upkeep.peer_fin;
            self.unacked = upkeep.unacked;
            self.progress_at = upkeep.progress_at;
            self.queues = upkeep.queues;
            self.active_at = upkeep.active_at;
            if upkeep.probe {
                self.probed_at = Some(now);
            }
        }
    }

    /// The next time after `now` at which a look at this connection may find
    /// something that no segment, no send and no smoltcp timer brings: a connect
    /// giving up, a keep-alive probe due, a let-go connection's time running out.
    /// The engine keeps it in its timer heap instead of looking at every
    /// connection at every transmit.
    pub(super) fn deadline(&self, now: Duration) -> Option<Duration> {
        let after = |at: Duration| (at > now).then_some(at);
        match self.phase {
            Phase::Connecting { since, next_hop } => next_hop
                .and_then(|_| after(since + ARP_GIVE_UP))
                .or(after(since + CONNECT_GIVE_UP)),
            Phase::Embryo(_) => None,
            Phase::Open => self.next_probe(),
            Phase::Orphan { since } => after(since + ARP_GIVE_UP).or(after(since + ORPHAN_LIMIT)),
        }
    }

    /// Moves what the application has not read out of a socket in TIME-WAIT: when
    /// that ends, smoltcp resets the socket and would drop it.
    pub(super) fn rescue(&mut self, socket: &mut tcp::Socket<'static>) {
        // At most two passes: the ring's filled part may wrap once.
        for _ in 0..2 {
            let _ = socket.recv(|bytes| {
                self.rescued.extend_from_slice(bytes);
                (bytes.len(), ())
            });
        }
    }
}

/// When the next keep-alive probe is due, if keep-alive is on: `TCP_KEEPIDLE`
/// after the last activity, then every `TCP_KEEPINTVL`.
pub(super) fn probe_due(
    options: &super::SocketOptions,
    active_at: Duration,
    probed_at: Option<Duration>,
) -> Option<Duration> {
    if !options.keepalive {
        return None;
    }
    let first = active_at + options.keep_idle;
    Some(match probed_at {
        Some(probed) if probed >= active_at => (probed + options.keep_interval).max(first),
        _ => first,
    })
}

/// What a connect's look means: it completed, was refused, or has waited too
/// long (for an ARP answer from its next hop, [`ARP_GIVE_UP`]: EHOSTUNREACH; for
/// the handshake, [`CONNECT_GIVE_UP`]: ETIMEDOUT). `via_hop`: the connect still
/// waits for its next hop's address (no SYN has left yet); a SYN that left and
/// went unanswered (a full backlog drops it) is retried until the handshake's
/// limit, as Linux does.
fn connect_news(since: Duration, via_hop: bool, look: &Look) -> News {
    match look.state {
        TcpState::SynSent => {
            let waited = look.now.saturating_sub(since);
            let arp_silent = via_hop && look.hop_heard_at.is_none_or(|seen| seen < since);
            let errno = if arp_silent && waited >= ARP_GIVE_UP {
                libc::EHOSTUNREACH
            } else if waited >= CONNECT_GIVE_UP {
                libc::ETIMEDOUT
            } else {
                return News::None;
            };
            News::ConnectFailed { errno, abort: true }
        }
        TcpState::Closed => News::ConnectFailed {
            errno: libc::ECONNREFUSED,
            abort: false,
        },
        _ => News::Connected,
    }
}

/// What a look at a listener's connection means: its handshake goes on, failed,
/// or completed (an IPv6 listener sees an IPv4 connection's addresses v4-mapped).
fn handshake_news(listener: ListenerId, look: &Look) -> News {
    match look.state {
        TcpState::Listen | TcpState::SynReceived => News::None,
        TcpState::Closed => News::EmbryoLost(listener),
        _ => {
            let mapped =
                look.v6_listener && look.endpoints.is_some_and(|(local, _)| local.is_ipv4());
            let addrs = look.endpoints.map(|(local, peer)| {
                if mapped {
                    (map(local), map(peer))
                } else {
                    (local, peer)
                }
            });
            News::Accepted {
                listener,
                addrs,
                mapped,
            }
        }
    }
}

/// Whether a connection the pump let go of at `since` is done. A closed socket
/// may still owe the peer its RST (smoltcp clears the endpoints once that is
/// sent); one that cannot send it in a few seconds never will. One in
/// TIME-WAIT is not done here: once smoltcp owes the peer nothing, the engine
/// replaces it by a TIME-WAIT record, which acknowledges a retransmitted FIN
/// for Linux's 60 s (see `time_wait`).
fn orphan_done(since: Duration, look: &Look) -> bool {
    let waited = look.now.saturating_sub(since);
    match look.state {
        TcpState::Closed => look.endpoints.is_none() || waited >= ARP_GIVE_UP,
        // Linux gives an orphan in FIN-WAIT-2 `tcp_fin_timeout` (60 s); a peer
        // that never finishes its side gets no longer than that.
        _ => waited >= ORPHAN_LIMIT,
    }
}

/// Carries out what the verdict says about the connection's socket: a connect
/// that gave up is aborted, a keep-alive probe goes out, the timeout is set.
///
/// smoltcp sends a probe when its keep-alive timer is wound up, and winds it only
/// from "unarmed": arming and at once disarming the interval sends exactly one
/// probe, and leaves the timer unarmed again once the probe is answered.
pub(super) fn steer(socket: &mut tcp::Socket<'static>, verdict: &Verdict) {
    if let News::ConnectFailed { abort: true, .. } = verdict.news {
        socket.abort();
    }
    if let Some(upkeep) = verdict.upkeep {
        if upkeep.probe {
            socket.set_keep_alive(Some(smoltcp::time::Duration::from_secs(1)));
            socket.set_keep_alive(None);
        }
        let timeout = upkeep
            .timeout
            .map(|d| smoltcp::time::Duration::from_micros(d.as_micros() as u64));
        if timeout != socket.timeout() {
            socket.set_timeout(timeout);
        }
    }
}

/// Carries out what the news means for the listeners' counts, and tells the pump.
pub(super) fn tell(
    handle: TcpHandle,
    news: News,
    listeners: &mut BTreeMap<ListenerId, Listener>,
    events: &mut VecDeque<Event>,
) {
    match news {
        News::None => {}
        News::Connected => events.push_back(Event::Connected(handle)),
        News::ConnectFailed { errno, .. } => events.push_back(Event::ConnectFailed(handle, errno)),
        News::Accepted {
            listener, addrs, ..
        } => {
            if let Some(l) = listeners.get_mut(&listener) {
                l.embryos -= 1;
                l.handed_out += 1;
            }
            if let Some((local, peer)) = addrs {
                events.push_back(Event::Accepted {
                    listener,
                    handle,
                    local,
                    peer,
                });
            }
        }
        News::EmbryoLost(listener) => {
            if let Some(l) = listeners.get_mut(&listener) {
                l.embryos -= 1;
            }
        }
        News::Aborted(errno) => events.push_back(Event::Aborted(handle, errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SocketOptions;

    const S: Duration = Duration::from_secs(1);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn conn(phase: Phase, last_state: TcpState) -> Conn {
        Conn::new(phase, last_state, 80, SocketOptions::default())
    }

    fn open(last_state: TcpState) -> Conn {
        conn(Phase::Open, last_state)
    }

    fn connecting(since: Duration, next_hop: Option<Ipv4Address>) -> Conn {
        conn(Phase::Connecting { since, next_hop }, TcpState::SynSent)
    }

    /// A look at `now` at a socket in `state` with empty rings and its endpoints.
    fn look(now: Duration, state: TcpState) -> Look {
        Look {
            now,
            state,
            recv_queue: 0,
            send_queue: 0,
            endpoints: Some((addr("10.0.0.1:80"), addr("10.0.0.2:40000"))),
            hop_heard_at: None,
            v6_listener: false,
        }
    }

    fn news(conn: &Conn, look: &Look) -> News {
        conn.judge(look).news
    }

    #[test]
    fn a_connect_completes_or_is_refused() {
        let c = connecting(Duration::ZERO, None);
        assert_eq!(news(&c, &look(S, TcpState::Established)), News::Connected);
        let refused = c.judge(&look(S, TcpState::Closed));
        assert_eq!(
            refused.news,
            News::ConnectFailed {
                errno: libc::ECONNREFUSED,
                abort: false
            }
        );
        // The RST is smoltcp's to send yet: the socket stays until it has.
        assert!(!refused.finished);
        let sent = Look {
            endpoints: None,
            ..look(S, TcpState::Closed)
        };
        assert!(c.judge(&sent).finished);
    }

    #[test]
    fn a_silent_next_hop_is_host_unreachable_after_three_seconds() {
        let hop = Some(Ipv4Address::new(10, 0, 0, 9));
        let since = 10 * S;
        let c = connecting(since, hop);
        assert_eq!(
            news(&c, &look(since + ARP_GIVE_UP - S, TcpState::SynSent)),
            News::None
        );
        let failed = c.judge(&look(since + ARP_GIVE_UP, TcpState::SynSent));
        assert_eq!(
            failed.news,
            News::ConnectFailed {
                errno: libc::EHOSTUNREACH,
                abort: true
            }
        );
        assert!(!failed.finished);
        // An ARP heard before the connect started does not count.
        let stale = Look {
            hop_heard_at: Some(since - S),
            ..look(since + ARP_GIVE_UP, TcpState::SynSent)
        };
        assert_eq!(c.judge(&stale).news, failed.news);
    }

    #[test]
    fn a_connect_heard_from_or_on_link_times_out_after_127_seconds() {
        let since = 10 * S;
        let heard = connecting(since, Some(Ipv4Address::new(10, 0, 0, 9)));
        let on_link = connecting(since, None);
        for c in [heard, on_link] {
            let at = |now| Look {
                hop_heard_at: Some(since + S),
                ..look(now, TcpState::SynSent)
            };
            assert_eq!(news(&c, &at(since + ARP_GIVE_UP)), News::None);
            assert_eq!(news(&c, &at(since + CONNECT_GIVE_UP - S)), News::None);
            assert_eq!(
                news(&c, &at(since + CONNECT_GIVE_UP)),
                News::ConnectFailed {
                    errno: libc::ETIMEDOUT,
                    abort: true
                }
            );
        }
    }

    #[test]
    fn a_handshake_goes_on_fails_or_is_accepted() {
        let c = conn(Phase::Embryo(7), TcpState::Listen);
        assert_eq!(news(&c, &look(S, TcpState::Listen)), News::None);
        assert_eq!(news(&c, &look(S, TcpState::SynReceived)), News::None);
        let lost = c.judge(&Look {
            endpoints: None,
            ..look(S, TcpState::Closed)
        });
        assert_eq!(lost.news, News::EmbryoLost(7));
        assert!(lost.finished);
        assert_eq!(
            news(&c, &look(S, TcpState::Established)),
            News::Accepted {
                listener: 7,
                addrs: Some((addr("10.0.0.1:80"), addr("10.0.0.2:40000"))),
                mapped: false
            }
        );
        // Endpoints already gone: accepted all the same, with nothing to tell.
        assert_eq!(
            news(
                &c,
                &Look {
                    endpoints: None,
                    ..look(S, TcpState::CloseWait)
                }
            ),
            News::Accepted {
                listener: 7,
                addrs: None,
                mapped: false
            }
        );
    }

    #[test]
    fn an_ipv6_listener_sees_ipv4_connections_v4_mapped() {
        let c = conn(Phase::Embryo(1), TcpState::SynReceived);
        let v4 = Look {
            v6_listener: true,
            ..look(S, TcpState::Established)
        };
        assert_eq!(
            news(&c, &v4),
            News::Accepted {
                listener: 1,
                addrs: Some((
                    addr("[::ffff:10.0.0.1]:80"),
                    addr("[::ffff:10.0.0.2]:40000")
                )),
                mapped: true
            }
        );
        let v6_addrs = (addr("[fd00::1]:80"), addr("[fd00::2]:40000"));
        let v6 = Look {
            endpoints: Some(v6_addrs),
            ..v4
        };
        assert_eq!(
            news(&c, &v6),
            News::Accepted {
                listener: 1,
                addrs: Some(v6_addrs),
                mapped: false
            }
        );
    }

    #[test]
    fn an_open_connection_that_closes_after_its_close_handshake_is_no_news() {
        for last in [TcpState::LastAck, TcpState::TimeWait, TcpState::Closed] {
            assert_eq!(news(&open(last), &look(S, TcpState::Closed)), News::None);
        }
    }

    #[test]
    fn an_abnormal_end_is_a_reset_or_a_timeout() {
        let now = 1000 * S;
        let closed = look(now, TcpState::Closed);
        // Bytes unacknowledged since long ago: the peer has gone silent.
        let mut silent = open(TcpState::Established);
        silent.unacked = 10;
        silent.progress_at = now - GIVE_UP;
        let still_unacked = Look {
            send_queue: 10,
            ..closed
        };
        assert_eq!(
            news(&silent, &still_unacked),
            News::Aborted(libc::ETIMEDOUT)
        );
        // ... unless a reset came.
        silent.reset_seen = true;
        assert_eq!(
            news(&silent, &still_unacked),
            News::Aborted(libc::ECONNRESET)
        );
        // Progress just now: smoltcp's own end reads as a reset, or as keep-alive
        // giving up when that is on.
        let mut fresh = open(TcpState::Established);
        assert_eq!(news(&fresh, &closed), News::Aborted(libc::ECONNRESET));
        fresh.options.keepalive = true;
        assert_eq!(news(&fresh, &closed), News::Aborted(libc::ETIMEDOUT));
    }

    #[test]
    fn progress_is_counted_when_the_unacknowledged_bytes_go_down_or_none_wait() {
        let mut c = open(TcpState::Established);
        c.unacked = 100;
        c.progress_at = S;
        let with_queue = |send_queue| Look {
            send_queue,
            ..look(5 * S, TcpState::Established)
        };
        let kept = |l: Look| c.judge(&l).upkeep.unwrap();
        assert_eq!(kept(with_queue(100)).progress_at, S);
        assert_eq!(kept(with_queue(150)).progress_at, S);
        assert_eq!(kept(with_queue(50)).progress_at, 5 * S);
        assert_eq!(kept(with_queue(0)).progress_at, 5 * S);
        assert_eq!(kept(with_queue(150)).unacked, 150);
    }

    #[test]
    fn the_timeout_is_armed_only_while_bytes_wait_or_with_keepalive() {
        let mut c = open(TcpState::Established);
        let timeout = |c: &Conn, send_queue, state| {
            c.judge(&Look {
                send_queue,
                ..look(S, state)
            })
            .upkeep
            .unwrap()
            .timeout
        };
        assert_eq!(timeout(&c, 0, TcpState::Established), None);
        assert_eq!(timeout(&c, 1, TcpState::Established), Some(GIVE_UP));
        c.options.keepalive = true;
        assert_eq!(
            timeout(&c, 0, TcpState::Established),
            c.options.keepalive_limit()
        );
        assert_eq!(timeout(&c, 1, TcpState::Established), Some(GIVE_UP));
        assert_eq!(timeout(&c, 1, TcpState::Closed), None);
    }

    #[test]
    fn the_peers_fin_is_noted_and_kept() {
        let mut c = open(TcpState::Established);
        let fin = |c: &Conn, state| c.judge(&look(S, state)).upkeep.unwrap().peer_fin;
        assert!(!fin(&c, TcpState::Established));
        assert!(!fin(&c, TcpState::FinWait2));
        for state in [
            TcpState::CloseWait,
            TcpState::LastAck,
            TcpState::Closing,
            TcpState::TimeWait,
        ] {
            assert!(fin(&c, state));
        }
        c.peer_fin = true;
        assert!(fin(&c, TcpState::Closed));
    }

    #[test]
    fn keepalive_probes_after_idle_then_every_interval_and_activity_restarts_it() {
        let mut c = open(TcpState::Established);
        c.options.keepalive = true;
        c.options.keep_idle = 10 * S;
        c.options.keep_interval = 3 * S;
        let idle = |c: &Conn, now| c.judge(&look(now, TcpState::Established)).upkeep.unwrap();
        assert!(!idle(&c, 9 * S).probe);
        let first = idle(&c, 10 * S);
        assert!(first.probe);
        c.settle(
            &look(10 * S, TcpState::Established),
            &c.judge(&look(10 * S, TcpState::Established)),
        );
        assert_eq!(c.probed_at, Some(10 * S));
        assert!(!idle(&c, 12 * S).probe);
        assert!(idle(&c, 13 * S).probe);
        // Bytes moving make the connection active: the next probe waits the idle
        // time again.
        let busy = Look {
            recv_queue: 5,
            ..look(12 * S, TcpState::Established)
        };
        let kept = c.judge(&busy).upkeep.unwrap();
        assert_eq!(
            (kept.active_at, kept.queues, kept.probe),
            (12 * S, (5, 0), false)
        );
        c.settle(&busy, &c.judge(&busy));
        assert_eq!(
            probe_due(&c.options, c.active_at, c.probed_at),
            Some(22 * S)
        );
        // Without keep-alive nothing is ever due.
        c.options.keepalive = false;
        assert!(!idle(&c, 1000 * S).probe);
    }

    #[test]
    fn a_let_go_connection_is_done_once_time_wait_ends_or_its_rst_is_out_or_after_a_while() {
        let since = 100 * S;
        let c = conn(Phase::Orphan { since }, TcpState::FinWait1);
        let done = |state, now, endpoints: bool| {
            let l = Look {
                endpoints: if endpoints {
                    look(now, state).endpoints
                } else {
                    None
                },
                ..look(now, state)
            };
            let verdict = c.judge(&l);
            assert_eq!((verdict.news, verdict.upkeep), (News::None, None));
            verdict.finished
        };
        assert!(!done(TcpState::TimeWait, since, true), "TIME-WAIT is kept");
        assert!(done(TcpState::Closed, since, false));
        assert!(!done(TcpState::Closed, since + ARP_GIVE_UP - S, true));
        assert!(done(TcpState::Closed, since + ARP_GIVE_UP, true));
        assert!(!done(TcpState::FinWait2, since + ORPHAN_LIMIT - S, true));
        assert!(done(TcpState::FinWait2, since + ORPHAN_LIMIT, true));
    }

    #[test]
    fn deadlines_are_the_next_moment_a_look_may_find_news() {
        let since = 10 * S;
        let via_hop = connecting(since, Some(Ipv4Address::new(10, 0, 0, 9)));
        assert_eq!(via_hop.deadline(since), Some(since + ARP_GIVE_UP));
        // The hop was heard: the next is the handshake's own limit.
        assert_eq!(
            via_hop.deadline(since + ARP_GIVE_UP),
            Some(since + CONNECT_GIVE_UP)
        );
        assert_eq!(via_hop.deadline(since + CONNECT_GIVE_UP), None);
        let on_link = connecting(since, None);
        assert_eq!(on_link.deadline(since), Some(since + CONNECT_GIVE_UP));

        let orphan = conn(Phase::Orphan { since }, TcpState::FinWait1);
        assert_eq!(orphan.deadline(since), Some(since + ARP_GIVE_UP));
        assert_eq!(
            orphan.deadline(since + ARP_GIVE_UP),
            Some(since + ORPHAN_LIMIT)
        );
        assert_eq!(
            conn(Phase::Embryo(1), TcpState::Listen).deadline(since),
            None
        );

        let mut open = open(TcpState::Established);
        assert_eq!(open.deadline(since), None, "no keep-alive, no deadline");
        open.options.keepalive = true;
        open.active_at = since;
        assert_eq!(open.deadline(since), Some(since + open.options.keep_idle));
    }

    #[test]
    fn settling_a_verdict_moves_the_phase() {
        let mut c = connecting(Duration::ZERO, None);
        let l = look(2 * S, TcpState::Established);
        c.settle(&l, &c.judge(&l));
        assert!(matches!(c.phase, Phase::Open));
        assert_eq!((c.active_at, c.last_state), (2 * S, TcpState::Established));

        let mut c = conn(Phase::Embryo(3), TcpState::SynReceived);
        let l = Look {
            v6_listener: true,
            ..look(2 * S, TcpState::Established)
        };
        c.settle(&l, &c.judge(&l));
        assert!(matches!(c.phase, Phase::Open) && c.mapped);

        let mut c = conn(Phase::Embryo(3), TcpState::SynReceived);
        let l = look(4 * S, TcpState::Closed);
        c.settle(&l, &c.judge(&l));
        assert!(matches!(c.phase, Phase::Orphan { since } if since == 4 * S));
    }

    #[test]
    fn telling_counts_the_listeners_connections_and_queues_events() {
        use std::sync::Arc;
        let handle = TcpHandle::for_tests(0);
        let mut listeners = BTreeMap::new();
        listeners.insert(
            5,
            Listener {
                local: addr("0.0.0.0:80"),
                options: SocketOptions::default(),
                port_use: SocketOptions::default().port_use(true),
                backlog: 4,
                embryos: 2,
                handed_out: 0,
                accepted: Arc::default(),
            },
        );
        let mut events = VecDeque::new();
        let addrs = (addr("10.0.0.1:80"), addr("10.0.0.2:40000"));
        let accepted = News::Accepted {
            listener: 5,
            addrs: Some(addrs),
            mapped: false,
        };
        tell(handle, accepted, &mut listeners, &mut events);
        tell(handle, News::EmbryoLost(5), &mut listeners, &mut events);
        tell(
            handle,
            News::Aborted(libc::ECONNRESET),
            &mut listeners,
            &mut events,
        );
        tell(handle, News::None, &mut listeners, &mut events);
        let l = &listeners[&5];
        assert_eq!((l.embryos, l.handed_out), (0, 1));
        assert_eq!(
            Vec::from(events),
            [
                Event::Accepted {
                    listener: 5,
                    handle,
                    local: addrs.0,
                    peer: addrs.1
                },
                Event::Aborted(handle, libc::ECONNRESET)
            ]
        );
    }
}
