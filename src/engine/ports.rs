//! Local ports: who holds which, ephemeral ones for `connect` and `bind(0)`, and
//! when two sockets may share one (`SO_REUSEADDR`, `SO_REUSEPORT`).
//!
//! smoltcp refuses port 0, so the engine hands out ports from Linux's default
//! ephemeral range itself, rotating through it so that a port just released is not
//! reused at once (a cheap stand-in for TIME-WAIT, which the engine does not keep).
//!
//! Sharing follows Linux, per port (addresses are not told apart: two sockets on
//! the same port and different local addresses conflict here, where Linux lets
//! them be):
//! - both holders set `SO_REUSEPORT`: they share (for TCP, even both listening);
//! - both set `SO_REUSEADDR`: they share unless the one already there is
//!   listening (TCP; for UDP, with no listening, `SO_REUSEADDR` on both is enough);
//! - otherwise the port is in use (EADDRINUSE), even by a connection that is
//!   only closing, as on Linux without `SO_REUSEADDR`.

use std::collections::HashMap;

/// Linux's default `net.ipv4.ip_local_port_range`.
pub(crate) const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

/// How a socket holds its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortUse {
    pub reuse_addr: bool,
    pub reuse_port: bool,
    pub listening: bool,
}

impl PortUse {
    /// A holder with no sharing options, not listening.
    #[cfg(test)]
    pub(crate) const PLAIN: PortUse = PortUse {
        reuse_addr: false,
        reuse_port: false,
        listening: false,
    };

    /// Whether a holder already there (`self`) lets `newcomer` hold the port too:
    /// Linux looks at the state of the one there only.
    fn admits(&self, newcomer: &PortUse) -> bool {
        (self.reuse_port && newcomer.reuse_port)
            || (self.reuse_addr && newcomer.reuse_addr && !self.listening)
    }
}

/// The holders of each local port in use, counted by kind: a listener's port is
/// held by it and by every connection it accepted, thousands perhaps, while
/// there are only eight kinds, so every check costs the same whatever the count.
#[derive(Debug, Default)]
pub(crate) struct PortTable {
    held: HashMap<u16, Holders>,
    next: u16,
}

/// The holders of one port: each kind, with how many hold it so.
type Holders = Vec<(PortUse, usize)>;

fn add(holders: &mut Holders, how: PortUse) {
    match holders.iter_mut().find(|(kind, _)| *kind == how) {
        Some((_, count)) => *count += 1,
        None => holders.push((how, 1)),
    }
}

impl PortTable {
    /// Takes `port` (0: any free ephemeral port) for a holder of kind `how`.
    /// `None`: in use (and not shareable), or the range is full.
    pub(crate) fn take(&mut self, port: u16, how: PortUse) -> Option<u16> {
        if port != 0 {
            let holders = self.held.entry(port).or_default();
            if !holders.iter().all(|(h, _)| h.admits(&how)) {
                if holders.is_empty() {
                    self.held.remove(&port);
                }
                return None;
            }
            add(holders, how);
            return Some(port);
        }
        let span = (EPHEMERAL.end() - EPHEMERAL.start()) as u32 + 1;
        for _ in 0..span {
            if self.next < *EPHEMERAL.start() || self.next >= *EPHEMERAL.end() {
                self.next = *EPHEMERAL.start();
            } else {
                self.next += 1;
            }
            if !self.held.contains_key(&self.next) {
                self.held.insert(self.next, vec![(how, 1)]);
                return Some(self.next);
            }
        }
        None
    }

    /// Adds a holder of a port already taken without asking (an accepted connection
    /// shares its listener's port).
    pub(crate) fn share(&mut self, port: u16, how: PortUse) {
        add(self.held.entry(port).or_default(), how);
    }

    /// Changes a holder of `port` from `from` to `to` (a bound socket starts
    /// listening); false, and nothing changed, if another holder forbids it.
    pub(crate) fn change(&mut self, port: u16, from: PortUse, to: PortUse) -> bool {
        let Some(holders) = self.held.get_mut(&port) else {
            return false;
        };
        let Some(index) = holders.iter().position(|(h, _)| *h == from) else {
            return false;
        };
        // The others: every other kind, and the rest of this one's holders.
        let others_allow = holders
            .iter()
            .enumerate()
            .all(|(i, (h, count))| (i == index && *count == 1) || h.admits(&to));
        if others_allow {
            holders[index].1 -= 1;
            if holders[index].1 == 0 {
                holders.swap_remove(index);
            }
            add(holders, to);
        }
        others_allow
    }

    /// Drops one holder of `port` that holds it as `how`.
    pub(crate) fn release(&mut self, port: u16, how: PortUse) {
        if let Some(holders) = self.held.get_mut(&port) {
            if let Some(index) = holders.iter().position(|(h, _)| *h == how) {
                holders[index].1 -= 1;
                if holders[index].1 == 0 {
                    holders.swap_remove(index);
                }
            }
            if holders.is_empty() {
                self.held.remove(&port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REUSEADDR: PortUse = PortUse {
        reuse_addr: true,
        ..PortUse::PLAIN
    };
    const REUSEPORT: PortUse = PortUse {
        reuse_port: true,
        ..PortUse::PLAIN
    };

    fn listening(how: PortUse) -> PortUse {
        PortUse {
            listening: true,
            ..how
        }
    }

    #[test]
    fn explicit_ports_conflict_and_ephemeral_ports_rotate() {
        let mut ports = PortTable::default();
        assert_eq!(ports.take(80, PortUse::PLAIN), Some(80));
        assert_eq!(ports.take(80, PortUse::PLAIN), None);
        let a = ports.take(0, PortUse::PLAIN).unwrap();
        let b = ports.take(0, PortUse::PLAIN).unwrap();
        assert!(EPHEMERAL.contains(&a) && EPHEMERAL.contains(&b) && a != b);
        ports.release(a, PortUse::PLAIN);
        assert_ne!(
            ports.take(0, PortUse::PLAIN),
            Some(a),
            "a released port is not reused at once"
        );
        ports.share(80, PortUse::PLAIN);
        ports.release(80, PortUse::PLAIN);
        assert_eq!(ports.take(80, PortUse::PLAIN), None, "still held once");
        ports.release(80, PortUse::PLAIN);
        assert_eq!(ports.take(80, PortUse::PLAIN), Some(80));
    }

    #[test]
    fn the_range_can_be_exhausted() {
        let mut ports = PortTable::default();
        let span = (EPHEMERAL.end() - EPHEMERAL.start()) as usize + 1;
        for _ in 0..span {
            assert!(ports.take(0, PortUse::PLAIN).is_some());
        }
        assert_eq!(ports.take(0, PortUse::PLAIN), None);
    }

    #[test]
    fn reuseaddr_shares_with_connections_but_not_with_a_listener() {
        let mut ports = PortTable::default();
        // A listener and a connection it accepted; the listener goes away.
        assert_eq!(ports.take(80, REUSEADDR), Some(80));
        assert!(ports.change(80, REUSEADDR, listening(REUSEADDR)));
        ports.share(80, REUSEADDR);
        assert_eq!(ports.take(80, REUSEADDR), None, "a listener is there");
        ports.release(80, listening(REUSEADDR));
        // A restarted server binds beside the old connection, and listens.
        assert_eq!(ports.take(80, REUSEADDR), Some(80));
        assert!(ports.change(80, REUSEADDR, listening(REUSEADDR)));
        // Without the option on both, no sharing.
        ports.release(80, listening(REUSEADDR));
        assert_eq!(ports.take(80, PortUse::PLAIN), None);
    }

    #[test]
    fn a_port_held_by_thousands_is_counted_and_freed_by_the_last() {
        let mut ports = PortTable::default();
        assert_eq!(ports.take(80, REUSEADDR), Some(80));
        assert!(ports.change(80, REUSEADDR, listening(REUSEADDR)));
        for _ in 0..5000 {
            ports.share(80, REUSEADDR);
        }
        assert_eq!(ports.held[&80].len(), 2, "two kinds of holder");
        // One of many holders of a kind changes: the rest of its kind must admit.
        assert!(!ports.change(80, REUSEADDR, listening(REUSEADDR)));
        ports.release(80, listening(REUSEADDR));
        for _ in 0..4999 {
            ports.release(80, REUSEADDR);
        }
        assert_eq!(ports.take(80, PortUse::PLAIN), None, "one still holds it");
        ports.release(80, REUSEADDR);
        assert_eq!(ports.take(80, PortUse::PLAIN), Some(80));
    }

    #[test]
    fn reuseport_lets_listeners_share() {
        let mut ports = PortTable::default();
        assert_eq!(ports.take(80, REUSEPORT), Some(80));
        assert!(ports.change(80, REUSEPORT, listening(REUSEPORT)));
        assert_eq!(ports.take(80, REUSEPORT), Some(80));
        assert!(ports.change(80, REUSEPORT, listening(REUSEPORT)));
        assert_eq!(ports.take(80, REUSEADDR), None);
        assert_eq!(ports.take(80, PortUse::PLAIN), None);
    }
}
