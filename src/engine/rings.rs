//! Where sockets' rings get their memory, and when it goes back.
//!
//! smoltcp takes a socket's two rings when the socket is made and keeps them for
//! its life; it has no way to grow, shrink or swap them, and the window a socket
//! advertises is its receive ring's free space, so a connection that may carry a
//! 128 KiB window holds 128 KiB rings from its SYN on. What can be chosen is the
//! memory under them. The engine asks its caller for it through [`RingSource`]:
//! the pump lends page mappings (`pump/rings.rs`), which cost nothing until bytes
//! are written and whose pages can be given back one by one; `sim`, the fuzzers
//! and the unit tests use [`HeapRings`]. So an idle connection holds bookkeeping
//! only, a connection's pages come as bytes flow, and they go back:
//! - all of them when the connection ends (the mapping goes with its lease);
//! - the transmit ring's, while the connection lives, once it is empty after
//!   carrying bytes (at most ten times a second after bulk data, once a second
//!   after small messages: [`TxPages`]): smoltcp then hands out the whole ring as
//!   free space, and the engine passes it to [`RingSource::forget`] (which the
//!   pump answers with `madvise(MADV_DONTNEED)`);
//! - not the receive ring's while the connection lives: smoltcp keeps segments
//!   that arrived out of order in the ring's free part, where neither its API nor
//!   the engine can see them, so no part of it is known to be unused. Out of
//!   order or not, it is at most the window (128 KiB) per connection that carried
//!   data.
//!
//! Datagram sockets (UDP, ping) take their rings (128 KiB each way, room for the
//! largest datagram) from the same source: none of it costs memory until a
//! datagram passes, all of it goes back when the socket closes (smoltcp offers no
//! view of an empty datagram ring to forget earlier).
//!
//! The lease is the contract: the memory of a socket's rings stays valid while
//! the source holds the lease, and the engine gives a lease back only after
//! dropping the socket that held the rings ([`super::Engine`]'s `forget`, and its
//! `Drop`, which drops every socket before the source).

use smoltcp::socket::{icmp, tcp, udp};
use std::time::Duration;

/// Memory for sockets' rings, provided by the engine's caller.
pub(crate) trait RingSource: Send {
    /// Zeroed rings of `rx` and `tx` bytes for a new socket, with the lease to
    /// give back once the socket is gone.
    fn rings(&mut self, rx: usize, tx: usize) -> Rings;

    /// Nothing reads `bytes` (the free part of a ring) before writing them: they
    /// may read as zero from now on, and their pages go back.
    fn forget(&mut self, bytes: &mut [u8]);

    /// The socket that held the rings of `lease` has been dropped.
    ///
    /// A source that lends memory it frees here (the pump's page mappings)
    /// relies on this: the engine calls it only once no socket can touch the
    /// rings any more, and drops every socket before the source itself.
    fn give_back(&mut self, lease: Lease);
}

/// A new socket's rings and their lease.
pub(crate) struct Rings {
    pub(crate) rx: Bytes,
    pub(crate) tx: Bytes,
    /// `None`: nothing to give back (the memory goes with the socket).
    pub(crate) lease: Option<Lease>,
}

/// One ring's bytes: on the heap, or lent by the source.
pub(crate) enum Bytes {
    Heap(Vec<u8>),
    Lent(&'static mut [u8]),
}

impl Bytes {
    /// The bytes as a TCP socket's ring.
    pub(super) fn tcp(self) -> tcp::SocketBuffer<'static> {
        match self {
            Bytes::Heap(bytes) => tcp::SocketBuffer::new(bytes),
            Bytes::Lent(bytes) => tcp::SocketBuffer::new(bytes),
        }
    }

    /// The bytes as a UDP socket's ring of `slots` datagrams at most.
    pub(super) fn udp(self, slots: usize) -> udp::PacketBuffer<'static> {
        let meta = vec![udp::PacketMetadata::EMPTY; slots];
        match self {
            Bytes::Heap(bytes) => udp::PacketBuffer::new(meta, bytes),
            Bytes::Lent(bytes) => udp::PacketBuffer::new(meta, bytes),
        }
    }

    /// The bytes as a ping socket's ring of `slots` messages at most.
    pub(super) fn icmp(self, slots: usize) -> icmp::PacketBuffer<'static> {
        let meta = vec![icmp::PacketMetadata::EMPTY; slots];
        match self {
            Bytes::Heap(bytes) => icmp::PacketBuffer::new(meta, bytes),
            Bytes::Lent(bytes) => icmp::PacketBuffer::new(meta, bytes),
        }
    }
}

/// A source's token for one socket's rings. Neither `Clone` nor `Copy`: it is
/// given back once.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Lease(pub(crate) u64);

/// Rings on the heap, which go with their socket: for `sim`, the fuzzers and the
/// unit tests (no system call, nothing to give back).
#[derive(Debug, Default)]
pub(crate) struct HeapRings;

impl RingSource for HeapRings {
    fn rings(&mut self, rx: usize, tx: usize) -> Rings {
        Rings {
            rx: Bytes::Heap(vec![0; rx]),
            tx: Bytes::Heap(vec![0; tx]),
            lease: None,
        }
    }

    fn forget(&mut self, _bytes: &mut [u8]) {}

    fn give_back(&mut self, _lease: Lease) {}
}

/// A transmit ring that held more than this at once since its pages last went
/// back carried bulk data: many pages.
const BULK_BYTES: usize = 4096;

/// How often a transmit ring gives its pages back at most, once empty: after
/// bulk data, soon (a stream whose ring runs dry between writes then pays a
/// system call and its page faults ten times a second, not per write); after
/// small messages, which reuse the ring's first page (smoltcp starts an empty
/// ring from its start), once a second (a request/response connection should
/// not pay them per message).
const BULK_EVERY: Duration = Duration::from_millis(100);
const SMALL_EVERY: Duration = Duration::from_secs(1);

/// When a connection's transmit ring gives its pages back.
#[derive(Debug, Default)]
pub(super) struct TxPages {
    /// Bytes were queued since the pages last went back, and the most at once.
    dirty: bool,
    peak: usize,
    forgot_at: Option<Duration>,
    /// The ring was found empty too soon after the last time: when to look
    /// again (an idle connection has no other reason to be looked at).
    retry_at: Option<Duration>,
}

impl TxPages {
    /// Looks at `socket`'s transmit ring at `now`: once it is empty after carrying
    /// bytes (and they were bulk, or a while passed since last time), its pages
    /// go to `source` to forget.
    /// When the ring, found empty too soon after its pages last went back, is to
    /// be looked at again.
    pub(super) fn due(&self) -> Option<Duration> {
        self.retry_at
    }

    pub(super) fn look(
        &mut self,
        socket: &mut tcp::Socket<'static>,
        source: &mut dyn RingSource,
        now: Duration,
    ) {
        let queued = socket.send_queue();
        self.retry_at = None;
        if queued > 0 {
            self.dirty = true;
            self.peak = self.peak.max(queued);
            return;
        }
        let every = if self.peak > BULK_BYTES {
            BULK_EVERY
        } else {
            SMALL_EVERY
        };
        if !self.dirty {
            return;
        }
        if let Some(at) = self.forgot_at.map(|at| at + every).filter(|&at| now < at) {
            self.retry_at = Some(at);
            return;
        }
        // An empty ring: smoltcp offers all of it, from its start, as free space.
        let forgotten = socket.send(|free| {
            source.forget(free);
            (0, ())
        });
        if forgotten.is_ok() {
            *self = TxPages {
                dirty: false,
                peak: 0,
                forgot_at: Some(now),
                retry_at: None,
            };
        }
    }
}

#[cfg(test)]
pub(super) mod testing {
    //! A ring source that counts what the engine asks of it.

    use super::*;
    use std::sync::{Arc, Mutex};

    /// What a [`Counting`] source was asked.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub(crate) struct Asked {
        /// Leases out (rings made, not given back yet).
        pub(crate) out: usize,
        /// Leases given back.
        pub(crate) back: usize,
        /// Bytes handed to `forget`, and how many times.
        pub(crate) forgotten: usize,
        pub(crate) forgets: usize,
    }

    /// Heap rings, with leases, counting what it is asked.
    #[derive(Debug, Default, Clone)]
    pub(crate) struct Counting(pub(crate) Arc<Mutex<Asked>>);

    impl RingSource for Counting {
        fn rings(&mut self, rx: usize, tx: usize) -> Rings {
            let mut asked = self.0.lock().unwrap();
            asked.out += 1;
            Rings {
                lease: Some(Lease((asked.out + asked.back) as u64)),
                ..HeapRings.rings(rx, tx)
            }
        }

        fn forget(&mut self, bytes: &mut [u8]) {
            let mut asked = self.0.lock().unwrap();
            asked.forgotten += bytes.len();
            asked.forgets += 1;
        }

        fn give_back(&mut self, _lease: Lease) {
            let mut asked = self.0.lock().unwrap();
            asked.out -= 1;
            asked.back += 1;
        }
    }
}
