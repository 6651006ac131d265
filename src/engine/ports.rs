//! Local TCP ports: who holds which, and ephemeral ones for `connect` and `bind(0)`.
//!
//! smoltcp refuses port 0, so the engine hands out ports from Linux's default
//! ephemeral range itself, rotating through it so that a port just released is not
//! reused at once (a cheap stand-in for TIME-WAIT, which the engine does not keep).

use std::collections::HashMap;

/// Linux's default `net.ipv4.ip_local_port_range`.
pub(crate) const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

/// Reference counts of the local ports in use.
#[derive(Debug, Default)]
pub(crate) struct PortTable {
    held: HashMap<u16, u32>,
    next: u16,
}

impl PortTable {
    /// Takes `port` (0: any free ephemeral port). `None`: taken, or the range is full.
    pub(crate) fn take(&mut self, port: u16) -> Option<u16> {
        if port != 0 {
            if self.held.contains_key(&port) {
                return None;
            }
            self.held.insert(port, 1);
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
                self.held.insert(self.next, 1);
                return Some(self.next);
            }
        }
        None
    }

    /// Adds one more holder to a port already taken (an accepted connection shares its
    /// listener's port).
    pub(crate) fn share(&mut self, port: u16) {
        *self.held.entry(port).or_insert(0) += 1;
    }

    /// Drops one holder of `port`.
    pub(crate) fn release(&mut self, port: u16) {
        if let Some(count) = self.held.get_mut(&port) {
            *count -= 1;
            if *count == 0 {
                self.held.remove(&port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_ports_conflict_and_ephemeral_ports_rotate() {
        let mut ports = PortTable::default();
        assert_eq!(ports.take(80), Some(80));
        assert_eq!(ports.take(80), None);
        let a = ports.take(0).unwrap();
        let b = ports.take(0).unwrap();
        assert!(EPHEMERAL.contains(&a) && EPHEMERAL.contains(&b) && a != b);
        ports.release(a);
        assert_ne!(
            ports.take(0),
            Some(a),
            "a released port is not reused at once"
        );
        ports.share(80);
        ports.release(80);
        assert_eq!(ports.take(80), None, "still held once");
        ports.release(80);
        assert_eq!(ports.take(80), Some(80));
    }

    #[test]
    fn the_range_can_be_exhausted() {
        let mut ports = PortTable::default();
        let span = (EPHEMERAL.end() - EPHEMERAL.start()) as usize + 1;
        for _ in 0..span {
            assert!(ports.take(0).is_some());
        }
        assert_eq!(ports.take(0), None);
    }
}
