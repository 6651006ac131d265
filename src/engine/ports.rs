//! Local ports: who holds which, ephemeral ones for `connect` and `bind(0)`, and
//! when two sockets may share one (`SO_REUSEADDR`, `SO_REUSEPORT`).
//!
//! smoltcp refuses port 0, so the engine hands out ports from Linux's default
//! ephemeral range itself, and chooses them as Linux does (RFC 6056's "double
//! hash", `__inet_hash_connect`): a connect starts its search at an offset that
//! is a keyed hash of its destination (local address, remote address, remote
//! port) plus a per-destination counter that moves on with every port given,
//! and steps by 2 through the even ports first; a `bind` to port 0 starts at a
//! keyed place of its own and prefers the odd ports. The key comes from the
//! stack's seed, so that a new process does not start where the last one did
//! (it would meet its own old connection in the server's TIME-WAIT), while
//! `sim`, given the same seed, picks the same ports.
//!
//! The engine keeps one table for TCP and one for UDP (and one for ping
//! identifiers); both protocols choose and share ports the same way. Sharing
//! follows Linux, per port, family and address: an IPv4 holder and an IPv6 one
//! with `IPV6_V6ONLY` never meet (`0.0.0.0:P` beside `[::]:P`, the dual listen
//! of ncat and sshd), while a dual-stack `[::]` meets both; two holders of one
//! family meet when their addresses are the same or either is the wildcard
//! (`10.0.0.1:P` beside `10.0.0.2:P`, but not beside `0.0.0.0:P`). Where
//! holders meet:
//! - both holders set `SO_REUSEPORT`: they share (for TCP, even both listening);
//! - both set `SO_REUSEADDR`: they share unless the one already there is
//!   listening (TCP; for UDP, with no listening, `SO_REUSEADDR` on both is enough);
//! - otherwise the port is in use (EADDRINUSE), even by a connection that is
//!   only closing, as on Linux without `SO_REUSEADDR`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Linux's default `net.ipv4.ip_local_port_range`.
pub(crate) const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

/// The size of Linux's table of per-destination counters (`INET_TABLE_PERTURB_SIZE`
/// is larger; what matters is that destinations rarely share a counter).
const PERTURB_SIZE: usize = 256;

/// Where a connection goes, for choosing its ephemeral port: local address (if
/// chosen), remote address, remote port.
pub(crate) type Destination = (Option<IpAddr>, IpAddr, u16);

/// Which local addresses a holder's port covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// IPv4: one address (a v4-mapped one too), or all of them (`None`: `0.0.0.0`).
    V4(Option<Ipv4Addr>),
    /// IPv6 only: one address, or all of them (`None`: `[::]` with `IPV6_V6ONLY`).
    V6(Option<Ipv6Addr>),
    /// Every address of both families: `[::]` without `IPV6_V6ONLY` (and ping
    /// identifiers, not told apart).
    Both,
}

impl Scope {
    /// The scope of a holder on `ip` (already unmapped), with `IPV6_V6ONLY` `v6only`.
    pub(crate) fn of(ip: IpAddr, v6only: bool) -> Scope {
        match ip {
            IpAddr::V4(v4) => Scope::V4((!v4.is_unspecified()).then_some(v4)),
            IpAddr::V6(v6) if v6.is_unspecified() && !v6only => Scope::Both,
            IpAddr::V6(v6) => Scope::V6((!v6.is_unspecified()).then_some(v6)),
        }
    }

    /// Every address of `ip`'s family (a connection whose local address is not
    /// chosen yet).
    pub(crate) fn family_of(ip: IpAddr) -> Scope {
        match ip {
            IpAddr::V4(_) => Scope::V4(None),
            IpAddr::V6(_) => Scope::V6(None),
        }
    }

    /// Whether holders of the two scopes can meet.
    fn meets(self, other: Scope) -> bool {
        fn overlap<A: PartialEq>(a: Option<A>, b: Option<A>) -> bool {
            a.is_none() || b.is_none() || a == b
        }
        match (self, other) {
            (Scope::V4(a), Scope::V4(b)) => overlap(a, b),
            (Scope::V6(a), Scope::V6(b)) => overlap(a, b),
            (Scope::V4(_), Scope::V6(_)) | (Scope::V6(_), Scope::V4(_)) => false,
            (Scope::Both, _) | (_, Scope::Both) => true,
        }
    }
}

/// How a socket holds its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortUse {
    pub reuse_addr: bool,
    pub reuse_port: bool,
    pub listening: bool,
    pub scope: Scope,
}

impl PortUse {
    /// A holder with no sharing options, not listening.
    #[cfg(test)]
    pub(crate) const PLAIN: PortUse = PortUse {
        reuse_addr: false,
        reuse_port: false,
        listening: false,
        scope: Scope::Both,
    };

    /// Whether a holder already there (`self`) lets `newcomer` hold the port too:
    /// Linux looks at the state of the one there only.
    fn admits(&self, newcomer: &PortUse) -> bool {
        !self.scope.meets(newcomer.scope)
            || (self.reuse_port && newcomer.reuse_port)
            || (self.reuse_addr && newcomer.reuse_addr && !self.listening)
    }
}

/// The holders of each local port in use, counted by kind: a listener's port is
/// held by it and by every connection it accepted, thousands perhaps, while
/// there are only eight kinds, so every check costs the same whatever the count.
#[derive(Debug)]
pub(crate) struct PortTable {
    held: HashMap<u16, Holders>,
    /// The key of the hashes that place each search (from the stack's seed).
    secret: u64,
    /// Per-destination counters (by hash), moved on by every port given, so
    /// that the next search for the same destination starts further on.
    perturb: Vec<u32>,
    /// How many ports `bind(0)` gave: its searches' counter.
    binds: u32,
}

impl Default for PortTable {
    fn default() -> PortTable {
        PortTable::new(0)
    }
}

/// The holders of one port: each kind, with how many hold it so.
type Holders = Vec<(PortUse, usize)>;

fn add(holders: &mut Holders, how: PortUse) {
    match holders.iter_mut().find(|(kind, _)| *kind == how) {
        Some((_, count)) => *count += 1,
        None => holders.push((how, 1)),
    }
}

/// A keyed hash of `value` (SipHash with fixed keys, then the key mixed in:
/// repeatable from one run to the next for the same `secret`).
fn keyed_hash(secret: u64, value: impl Hash) -> u64 {
    #[allow(deprecated)]
    let mut hasher =
        std::hash::SipHasher::new_with_keys(secret, secret.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15);
    value.hash(&mut hasher);
    hasher.finish()
}

impl PortTable {
    /// An empty table whose searches are placed by `secret`.
    pub(crate) fn new(secret: u64) -> PortTable {
        PortTable {
            held: HashMap::new(),
            secret,
            perturb: vec![0; PERTURB_SIZE],
            binds: 0,
        }
    }

    /// Takes `port` (0: any free ephemeral port) for a holder of kind `how`.
    /// `None`: in use (and not shareable), or the range is full.
    pub(crate) fn take(&mut self, port: u16, how: PortUse) -> Option<u16> {
        self.take_for(port, how, None)
    }

    /// [`PortTable::take`] for a connection to `to` (`None`: a `bind`), which
    /// places the search for an ephemeral port as Linux does.
    pub(crate) fn take_for(
        &mut self,
        port: u16,
        how: PortUse,
        to: Option<Destination>,
    ) -> Option<u16> {
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
        // Where the search starts, and the parity it tries first: even for a
        // connect, odd for a bind, as Linux (so that binds leave connects room).
        let (offset, first_parity, counter) = match to {
            Some(destination) => {
                let hash = keyed_hash(self.secret, destination);
                let index = hash as usize % PERTURB_SIZE;
                let offset = self.perturb[index].wrapping_add((hash >> 32) as u32);
                (offset, 0, Some(index))
            }
            None => {
                let offset = keyed_hash(self.secret, ("bind", self.binds)) as u32;
                (offset, 1, None)
            }
        };
        let offset = (offset % span) & !1;
        for parity in [first_parity, 1 - first_parity] {
            for step in (0..span).step_by(2) {
                let port = *EPHEMERAL.start() + ((offset + parity + step) % span) as u16;
                if let std::collections::hash_map::Entry::Vacant(free) = self.held.entry(port) {
                    free.insert(vec![(how, 1)]);
                    match counter {
                        Some(index) => {
                            self.perturb[index] = self.perturb[index].wrapping_add(step + 2)
                        }
                        None => self.binds = self.binds.wrapping_add(1),
                    }
                    return Some(port);
                }
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
    fn connects_step_by_two_and_move_on_per_destination() {
        let mut ports = PortTable::new(42);
        let to: Destination = (None, "10.0.0.1".parse().unwrap(), 80);
        let a = ports.take_for(0, PortUse::PLAIN, Some(to)).unwrap();
        let b = ports.take_for(0, PortUse::PLAIN, Some(to)).unwrap();
        assert!(
            a.is_multiple_of(2) && b.is_multiple_of(2) && a != b,
            "{a} {b}"
        );
        // The counter moves on even when the port is released: no reuse at once.
        ports.release(b, PortUse::PLAIN);
        assert_ne!(ports.take_for(0, PortUse::PLAIN, Some(to)), Some(b));
        // Another key, another place.
        let mut other = PortTable::new(43);
        assert_ne!(other.take_for(0, PortUse::PLAIN, Some(to)), Some(a));
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

    fn on(scope: Scope) -> PortUse {
        PortUse {
            scope,
            ..PortUse::PLAIN
        }
    }

    #[test]
    fn ipv4_and_v6only_holders_do_not_meet_but_dual_stack_meets_both() {
        let (v4, v6) = (Scope::V4(None), Scope::V6(None));
        let mut ports = PortTable::default();
        assert_eq!(ports.take(22, on(v4)), Some(22));
        assert_eq!(ports.take(22, on(v6)), Some(22));
        assert_eq!(ports.take(22, on(v6)), None);
        assert_eq!(ports.take(22, on(v4)), None);
        assert_eq!(ports.take(22, on(Scope::Both)), None);
        assert_eq!(ports.take(23, on(Scope::Both)), Some(23));
        assert_eq!(ports.take(23, on(v4)), None);
        assert_eq!(ports.take(23, on(v6)), None);
    }

    #[test]
    fn holders_on_different_addresses_do_not_meet_but_the_wildcard_meets_all() {
        let at = |ip: &str| on(Scope::of(ip.parse().unwrap(), false));
        let mut ports = PortTable::default();
        assert_eq!(ports.take(80, at("10.0.0.1")), Some(80));
        assert_eq!(ports.take(80, at("10.0.0.2")), Some(80));
        assert_eq!(ports.take(80, at("10.0.0.2")), None, "the same address");
        assert_eq!(ports.take(80, at("0.0.0.0")), None, "the wildcard");
        assert_eq!(ports.take(80, at("::")), None, "the dual-stack wildcard");
        assert_eq!(ports.take(80, at("fd00::1")), Some(80), "the other family");
        assert_eq!(ports.take(81, at("0.0.0.0")), Some(81));
        assert_eq!(ports.take(81, at("10.0.0.1")), None, "under the wildcard");
        assert_eq!(ports.take(82, at("fd00::1")), Some(82));
        assert_eq!(ports.take(82, at("fd00::2")), Some(82));
        assert_eq!(ports.take(82, on(Scope::V6(None))), None);
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
