//! The pump's ring source: sockets' rings on page mappings (see `engine/rings.rs` for
//! why, and `sys/pages.rs` for the mappings).
//!
//! Each socket gets one mapping holding both its rings, which costs no memory
//! until bytes are written; the transmit ring's pages go back with
//! `madvise(MADV_DONTNEED)` when the engine says it is empty, and the whole
//! mapping when the engine gives the socket's lease back. If the kernel refuses
//! a mapping (`vm.max_map_count`), the rings come from the heap instead.
//!
//! A mapping given back is kept for the next socket, emptied (its pages go back
//! to the kernel), up to [`SPARE_MAPPINGS`]: short connections, made and closed
//! by the thousand, then cost neither an `mmap` nor a `munmap` each (an unmapping
//! interrupts every CPU running the process's threads to flush its TLB).

use crate::engine::{Bytes, Lease, RingSource, Rings};
use crate::sys::pages::{self, Pages};
use std::collections::HashMap;

/// The most mappings kept for new sockets: address space only (they hold no
/// page), and one of the process's `vm.max_map_count` mappings each.
const SPARE_MAPPINGS: usize = 64;

/// Mappings lent to the engine, by lease, and mappings kept for new sockets.
#[derive(Debug, Default)]
pub(super) struct PageRings {
    lent: HashMap<u64, Pages>,
    next: u64,
    spare: Vec<Pages>,
}

impl PageRings {
    /// A mapping of `len` bytes: a spare one of that size, or a new one.
    fn mapping(&mut self, len: usize) -> Option<Pages> {
        let len = len.next_multiple_of(pages::page_size());
        match self.spare.iter().rposition(|spare| spare.size() == len) {
            Some(at) => Some(self.spare.swap_remove(at)),
            None => Pages::map(len).ok(),
        }
    }
}

impl RingSource for PageRings {
    fn rings(&mut self, rx: usize, tx: usize) -> Rings {
        let page = pages::page_size();
        let lent = self
            .mapping(rx.next_multiple_of(page) + tx)
            .and_then(|mut mapping| {
                // SAFETY: the mapping is kept in `lent` until the engine gives its
                // lease back, which it does only after dropping the socket that
                // holds these rings; and the engine drops every socket before this
                // source (the `RingSource::give_back` contract, kept by
                // `Engine::forget`, `udp_forget` and `Drop for Engine`).
                #[allow(unsafe_code)]
                let (rx, tx) = unsafe { mapping.lend(rx, tx) }?;
                Some((mapping, rx, tx))
            });
        let Some((mapping, rx_bytes, tx_bytes)) = lent else {
            return Rings {
                rx: Bytes::Heap(vec![0; rx]),
                tx: Bytes::Heap(vec![0; tx]),
                lease: None,
            };
        };
        self.next += 1;
        self.lent.insert(self.next, mapping);
        Rings {
            rx: Bytes::Lent(rx_bytes),
            tx: Bytes::Lent(tx_bytes),
            lease: Some(Lease(self.next)),
        }
    }

    fn forget(&mut self, bytes: &mut [u8]) {
        pages::forget_pages(bytes);
    }

    fn give_back(&mut self, lease: Lease) {
        let Some(mapping) = self.lent.remove(&lease.0) else {
            return;
        };
        if self.spare.len() < SPARE_MAPPINGS {
            self.spare.push(mapping.recycle());
        }
        // Otherwise dropped: unmapped.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::NetConfig;
    use crate::engine::{Engine, Event, SocketOptions};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A page source whose mappings a test can look at.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<PageRings>>);

    impl RingSource for Shared {
        fn rings(&mut self, rx: usize, tx: usize) -> Rings {
            self.0.lock().unwrap().rings(rx, tx)
        }
        fn forget(&mut self, bytes: &mut [u8]) {
            self.0.lock().unwrap().forget(bytes);
        }
        fn give_back(&mut self, lease: Lease) {
            self.0.lock().unwrap().give_back(lease);
        }
    }

    impl Shared {
        /// Mappings lent, and their resident pages in all (spare ones' too).
        fn held(&self) -> (usize, usize) {
            let rings = self.0.lock().unwrap();
            let all = rings.lent.values().chain(&rings.spare);
            (rings.lent.len(), all.map(Pages::resident).sum())
        }

        fn spare(&self) -> usize {
            self.0.lock().unwrap().spare.len()
        }
    }

    fn engine(mac: u8, addr: &str, source: &Shared) -> Engine {
        let mut e = Engine::new(
            NetConfig::new("vde0", [2, 0, 0, 0, 0, mac]),
            u64::from(mac),
            Duration::ZERO,
        );
        e.run_cmd(&format!(
            "/bin/ip link set vde0 up; /bin/ip addr add {addr}/24 dev vde0"
        ))
        .unwrap();
        e.set_ring_source(Box::new(source.clone()));
        e
    }

    /// Moves frames both ways `rounds` times, a millisecond apart.
    fn run(a: &mut Engine, b: &mut Engine, now: &mut Duration, rounds: usize) {
        for _ in 0..rounds {
            a.transmit(*now);
            b.transmit(*now);
            while let Some(f) = a.next_outgoing() {
                b.receive(*now, &f);
            }
            while let Some(f) = b.next_outgoing() {
                a.receive(*now, &f);
            }
            *now += Duration::from_millis(1);
        }
    }

    #[test]
    fn an_idle_connection_holds_no_ring_pages_and_a_drained_sender_gives_them_back() {
        let (sa, sb) = (Shared::default(), Shared::default());
        let (mut a, mut b) = (engine(1, "10.0.0.1", &sa), engine(2, "10.0.0.2", &sb));
        let options = SocketOptions::default();
        let local = a.bind("0.0.0.0:80".parse().unwrap(), &options).unwrap();
        a.listen(local, 4, Arc::default(), &options).unwrap();
        let client = b
            .connect("10.0.0.1:80".parse().unwrap(), None, &options)
            .unwrap();
        let mut now = Duration::ZERO;
        run(&mut a, &mut b, &mut now, 20);
        let server = std::iter::from_fn(|| a.next_event())
            .find_map(|e| match e {
                Event::Accepted { handle, .. } => Some(handle),
                _ => None,
            })
            .expect("accepted");
        assert_eq!(
            (sa.held(), sb.held()),
            ((1, 0), (1, 0)),
            "mapped, nothing resident"
        );
        // 100 KB from b to a, read as it comes.
        let mut sent = 0;
        while sent < 100_000 {
            sent += b.tcp(client).send_slice(&[1u8; 10_000]).unwrap();
            run(&mut a, &mut b, &mut now, 1);
            a.recv_with(server, |bytes| Ok(bytes.len())).unwrap();
        }
        // Until every byte is acknowledged, then past the pace at which a ring
        // gives its pages back (ten times a second after bulk data).
        for _ in 0..100 {
            run(&mut a, &mut b, &mut now, 1);
            a.recv_with(server, |bytes| Ok(bytes.len())).unwrap_or(0);
            if b.tcp(client).send_queue() == 0 {
                run(&mut a, &mut b, &mut now, 150);
                break;
            }
        }
        assert_eq!(
            sb.held(),
            (1, 0),
            "the sender's ring, drained, gave its pages back"
        );
        // The receive ring keeps the pages the bytes passed through, at most its
        // own size.
        let (_, receiving) = sa.held();
        let ring_pages = crate::engine::TCP_BUFFER / pages::page_size();
        assert!(
            receiving > 0 && receiving <= ring_pages,
            "the receive ring: {receiving} pages of {ring_pages}"
        );
        // Closed both ways and past TIME-WAIT: the mappings go back, emptied,
        // kept for the next sockets.
        b.release(client, false);
        a.release(server, false);
        run(&mut a, &mut b, &mut now, 5);
        for _ in 0..200 {
            now += Duration::from_millis(500);
            run(&mut a, &mut b, &mut now, 1);
        }
        assert_eq!((sa.held(), sb.held()), ((0, 0), (0, 0)));
        assert_eq!((sa.spare(), sb.spare()), (1, 1));
        // The next connection takes the spare mapping instead of a new one.
        let again = b
            .connect("10.0.0.1:80".parse().unwrap(), None, &options)
            .unwrap();
        run(&mut a, &mut b, &mut now, 20);
        assert_eq!((sb.held(), sb.spare()), ((1, 0), 0));
        b.release(again, true);
    }

    #[test]
    fn spare_mappings_are_kept_up_to_a_bound() {
        let mut rings = PageRings::default();
        let leases: Vec<Lease> = (0..SPARE_MAPPINGS + 3)
            .map(|_| rings.rings(4096, 4096).lease.expect("mapped"))
            .collect();
        for lease in leases {
            rings.give_back(lease);
        }
        assert_eq!(rings.spare.len(), SPARE_MAPPINGS);
        // Another size is mapped anew, not carved from a spare mapping.
        let other = rings.rings(8192, 8192);
        assert_eq!(rings.spare.len(), SPARE_MAPPINGS);
        drop(other);
    }
}
