//! One TCP connection as the pump sees it: the pump's end of the socket pair, the
//! engine's socket, and where the connection is in its life.
//!
//! The life is one [`Phase`]: each direction of a TCP connection ends on its own
//! (half-close), and the application may close its end at any point. Every way
//! out of a phase is a method here that returns a [`Verdict`], so the rules for
//! when a connection is let go, and whether with FIN or RST, live in one place and
//! can be tested without a pump.

use crate::engine::TcpHandle;
use crossbeam_channel::Sender;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::{ConnShared, EndToken};

/// Where a connection is in its life.
#[derive(Debug)]
pub(super) enum Phase {
    /// The handshake is under way; `reply` answers the application's `connect`.
    Connecting {
        reply: Sender<io::Result<SocketAddr>>,
    },
    /// Established; bytes flow both ways.
    Open,
    /// The application shut down writing (its end said EOF, we sent FIN); the
    /// peer's bytes still flow to it.
    AppFinished,
    /// The peer's FIN was passed on (the application reads EOF); the application's
    /// bytes still flow to the peer.
    PeerFinished,
    /// The application closed its end before we read its EOF: what it wrote is
    /// still read and sent, up to the EOF, then the connection is let go.
    AppGone,
}

/// What becomes of a connection after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It goes on.
    Keep,
    /// Let it go: closed with FIN, or with RST when `reset`.
    Release { reset: bool },
}

/// The pump's view of one connection.
pub(super) struct Conn {
    pub(super) fd: OwnedFd,
    pub(super) handle: TcpHandle,
    pub(super) shared: Arc<ConnShared>,
    pub(super) phase: Phase,
    /// The app end may have bytes for us (an edge was seen, EAGAIN not yet): a
    /// readiness cache, since mio reports edges, not levels.
    pub(super) app_readable: bool,
    /// The app end may take bytes (the same kind of cache).
    pub(super) app_writable: bool,
    /// The app end was seen shut down for writing or closed: reads go on to the
    /// EOF, as no edge will come for it.
    pub(super) app_read_closed: bool,
    /// Bytes still to discard before the application's own: a non-blocking
    /// connect's filler, and what was written before connecting (see
    /// [`Control::Connect`](super::Control::Connect)).
    pub(super) junk: usize,
    /// A non-blocking connect filled the pair: if the handshake fails, the pair
    /// closes so that the application's end turns writable.
    pub(super) filled: bool,
    /// The application shut its end down for reading (`shutdown(SHUT_RD)`):
    /// what the peer sends is dropped, as it can never be read.
    pub(super) app_reads_shut: bool,
    /// `SO_LINGER` with a zero timeout: the application's close resets.
    pub(super) linger_zero: bool,
    /// Dropped with `fd` (see [`EndToken`]).
    pub(super) token: Option<EndToken>,
    /// In the pump's queue of connections to serve at the next step.
    pub(super) queued: bool,
    /// The end is watched for writability too (since a write to it blocked).
    pub(super) watches_writable: bool,
}

impl Conn {
    pub(super) fn new(
        fd: OwnedFd,
        handle: TcpHandle,
        shared: Arc<ConnShared>,
        phase: Phase,
        token: Option<EndToken>,
    ) -> Conn {
        Conn {
            fd,
            handle,
            shared,
            phase,
            app_readable: false,
            // A new pair's end has room; writability is watched only once a
            // write blocks.
            app_writable: true,
            app_read_closed: false,
            junk: 0,
            filled: false,
            app_reads_shut: false,
            linger_zero: false,
            token,
            queued: false,
            watches_writable: false,
        }
    }

    /// Whether the application's end is still read for bytes to send.
    pub(super) fn reads_app(&self) -> bool {
        matches!(
            self.phase,
            Phase::Open | Phase::PeerFinished | Phase::AppGone
        )
    }

    /// Whether the connection is past its handshake.
    pub(super) fn is_connecting(&self) -> bool {
        matches!(self.phase, Phase::Connecting { .. })
    }

    /// Whether the peer's FIN is still to be passed on to the application (it is
    /// pointless once the application is gone).
    pub(super) fn awaits_peer_fin(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::AppFinished)
    }

    /// The handshake completed: the connect's answer, to send to the application.
    pub(super) fn on_connected(&mut self) -> Option<Sender<io::Result<SocketAddr>>> {
        match std::mem::replace(&mut self.phase, Phase::Open) {
            Phase::Connecting { reply } => Some(reply),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// The application's end hung up: every descriptor of it is closed.
    pub(super) fn on_app_closed(&mut self) -> Verdict {
        // So that the next delivery meets the closed end (EPIPE) at once.
        self.app_writable = true;
        match self.phase {
            // Nobody will use the connection: abandon the handshake.
            Phase::Connecting { .. } => Verdict::Release { reset: true },
            Phase::AppFinished => Verdict::Release {
                reset: self.linger_zero,
            },
            Phase::Open | Phase::PeerFinished => {
                self.phase = Phase::AppGone;
                // Read what it left in the pair, up to its EOF.
                self.app_readable = true;
                Verdict::Keep
            }
            Phase::AppGone => Verdict::Keep,
        }
    }

    /// The application's end said EOF (it shut down writing, or closed and we read
    /// all it wrote). The caller has the engine send FIN.
    pub(super) fn on_app_eof(&mut self) -> Verdict {
        self.app_readable = false;
        match self.phase {
            Phase::Open => {
                self.phase = Phase::AppFinished;
                Verdict::Keep
            }
            Phase::PeerFinished => Verdict::Release { reset: false },
            Phase::AppGone => Verdict::Release {
                reset: self.linger_zero,
            },
            // Not read in these phases.
            Phase::Connecting { .. } | Phase::AppFinished => Verdict::Keep,
        }
    }

    /// Reading the application's end failed: it closed. ECONNRESET means it closed
    /// with bytes we delivered still unread, which Linux answers with RST.
    pub(super) fn on_app_error(&mut self, e: &io::Error) -> Verdict {
        Verdict::Release {
            reset: e.raw_os_error() == Some(libc::ECONNRESET) || self.linger_zero,
        }
    }

    /// Writing to the application's end failed (EPIPE): nobody will read what the
    /// peer sends. Linux answers data that reaches a closed socket with RST.
    pub(super) fn on_app_unwritable(&mut self) -> Verdict {
        Verdict::Release { reset: true }
    }

    /// The peer's FIN was passed on to the application.
    pub(super) fn on_peer_fin_passed(&mut self) -> Verdict {
        match self.phase {
            Phase::Open => {
                self.phase = Phase::PeerFinished;
                Verdict::Keep
            }
            Phase::AppFinished => Verdict::Release { reset: false },
            _ => Verdict::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(phase: Phase) -> Conn {
        let (fd, _) = std::os::unix::net::UnixStream::pair().unwrap();
        Conn::new(
            fd.into(),
            TcpHandle::for_tests(0),
            Arc::default(),
            phase,
            None,
        )
    }

    fn connecting() -> Phase {
        Phase::Connecting {
            reply: crossbeam_channel::bounded(1).0,
        }
    }

    const KEEP: Verdict = Verdict::Keep;
    const FIN: Verdict = Verdict::Release { reset: false };
    const RST: Verdict = Verdict::Release { reset: true };

    #[test]
    fn both_directions_end_then_the_connection_goes_with_fin() {
        let mut c = conn(connecting());
        assert!(c.on_connected().is_some());
        assert_eq!(c.on_app_eof(), KEEP);
        assert!(matches!(c.phase, Phase::AppFinished));
        assert!(!c.reads_app() && c.awaits_peer_fin());
        assert_eq!(c.on_peer_fin_passed(), FIN);

        let mut c = conn(Phase::Open);
        assert_eq!(c.on_peer_fin_passed(), KEEP);
        assert!(c.reads_app() && !c.awaits_peer_fin());
        assert_eq!(c.on_app_eof(), FIN);
    }

    #[test]
    fn a_closed_application_end_is_read_to_its_eof_first() {
        for phase in [Phase::Open, Phase::PeerFinished] {
            let mut c = conn(phase);
            assert_eq!(c.on_app_closed(), KEEP);
            assert!(c.app_readable && c.app_writable && c.reads_app());
            assert!(!c.awaits_peer_fin());
            assert_eq!(c.on_peer_fin_passed(), KEEP);
            assert_eq!(c.on_app_eof(), FIN);
        }
        let mut c = conn(Phase::AppFinished);
        assert_eq!(c.on_app_closed(), FIN);
    }

    #[test]
    fn linger_zero_turns_the_applications_close_into_a_reset() {
        let mut c = conn(Phase::Open);
        c.linger_zero = true;
        assert_eq!(c.on_app_closed(), KEEP);
        assert_eq!(c.on_app_eof(), RST);
        let mut c = conn(Phase::AppFinished);
        c.linger_zero = true;
        assert_eq!(c.on_app_closed(), RST);
        // A shutdown of writing is no close: FIN, linger or not.
        let mut c = conn(Phase::PeerFinished);
        c.linger_zero = true;
        assert_eq!(c.on_app_eof(), FIN);
    }

    #[test]
    fn unread_data_and_closed_readers_reset() {
        let mut c = conn(Phase::Open);
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        assert_eq!(c.on_app_error(&reset), RST);
        let other = io::Error::from_raw_os_error(libc::EBADF);
        assert_eq!(c.on_app_error(&other), FIN);
        assert_eq!(c.on_app_unwritable(), RST);
    }

    #[test]
    fn a_handshake_nobody_waits_for_is_abandoned() {
        let mut c = conn(connecting());
        assert!(c.is_connecting() && !c.reads_app());
        assert_eq!(c.on_app_closed(), RST);
        let mut c = conn(Phase::Open);
        assert!(c.on_connected().is_none(), "only a connecting one answers");
        assert!(matches!(c.phase, Phase::Open));
    }
}
