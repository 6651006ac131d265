//! Duplicate address detection (RFC 4862 5.4) as the model keeps it: which
//! IPv6 addresses are tentative, which failed (`dadfailed`), which skip it
//! (`nodad`).
//!
//! Linux detects duplicates for every IPv6 address of an up Ethernet link but
//! those added with `nodad`: a new address, each address of a link coming up,
//! the link-local address made then. Until the detection ends (one
//! solicitation, 1 s with no answer) the address is `tentative`: never a
//! source, not bindable (EADDRNOTAVAIL), refused as a route's `src`
//! ("Invalid source address."). Another node's answer makes a permanent
//! address `dadfailed` and tentative for good; an autoconfigured one is removed
//! (`lifetimes.rs`). Addresses of a down link show `tentative` too, as the
//! detection has not started; lo does none.
//!
//! The model has no clock for the wait: the engine sends the solicitations,
//! hears the answers and ends each detection ([`NetConfig::end_dad`]); a model
//! used alone ends them all when told the wait passed
//! ([`NetConfig::finish_dad`]). The flags live in the address's side record
//! (`lifetimes.rs`), made for the purpose where the address has no lifetimes.

use super::lifetimes::AddrLifetimes;
use super::{IfAddr, LinkKind, NetConfig, State};
use std::net::{IpAddr, Ipv6Addr};

impl State {
    /// Starts the detection of `a` on link `dev` (an address just added, or
    /// its link just up), where Linux would: IPv6 on an up Ethernet link, not
    /// `nodad`.
    pub(super) fn start_dad(&mut self, dev: u32, a: IfAddr) {
        let link = self.link(dev);
        if !a.addr.is_ipv6() || !link.up || link.kind != LinkKind::Ether {
            return;
        }
        if self.addr_times(dev, &a).nodad {
            return;
        }
        if let Some(record) = self.record_mut(dev, a) {
            record.tentative = true;
            record.dadfailed = false;
        }
    }

    /// An IPv6 address `ip addr add` just added to link `dev`: under
    /// detection, or (`nodad`) used at once, now and whenever its link comes
    /// up.
    pub(crate) fn new_v6_addr(&mut self, dev: u32, addr: Ipv6Addr, nodad: bool) {
        let found = self
            .link(dev)
            .addrs
            .iter()
            .find(|a| a.addr == IpAddr::V6(addr))
            .copied();
        let Some(a) = found else { return };
        if nodad {
            self.set_nodad(dev, a);
        } else {
            self.start_dad(dev, a);
        }
    }

    fn set_nodad(&mut self, dev: u32, a: IfAddr) {
        if let Some(record) = self.record_mut(dev, a) {
            record.nodad = true;
            record.tentative = false;
            record.dadfailed = false;
        }
    }

    /// Whether `a` on link `dev` may be used: not tentative, not failed.
    pub(super) fn is_usable(&self, dev: u32, a: &IfAddr) -> bool {
        !self.addr_times(dev, a).tentative
    }

    /// The side record of `a`, made (permanent: no lifetimes) if it has
    /// none, to hold its flags.
    fn record_mut(&mut self, dev: u32, a: IfAddr) -> Option<&mut AddrLifetimes> {
        let same =
            |l: &AddrLifetimes| l.dev == dev && l.addr == a.addr && l.prefix_len == a.prefix_len;
        if !self.lifetimes.iter().any(same) {
            self.lifetimes
                .push(AddrLifetimes::permanent(dev, a, self.now));
        }
        self.lifetimes.iter_mut().find(|l| same(l))
    }
}

impl NetConfig {
    /// Ends the duplicate address detection of every tentative address as if
    /// its wait passed with no answer, as the engine does after a second: for
    /// a model used alone, which has no clock of its own (a transcript's
    /// `sleep`).
    ///
    /// ```
    /// use vdestack::cmd::NetConfig;
    /// let mut cfg = NetConfig::new("vde0", [2, 0, 0, 0, 0, 1]);
    /// cfg.run("/bin/ip link set vde0 up; /bin/ip addr add 2001:db8::1/64 dev vde0").unwrap();
    /// assert!(cfg.run("/bin/ip -6 addr show dev vde0").unwrap().contains("tentative"));
    /// cfg.finish_dad();
    /// assert!(!cfg.run("/bin/ip -6 addr show dev vde0").unwrap().contains("tentative"));
    /// ```
    pub fn finish_dad(&mut self) {
        let tentative = self.tentative();
        self.change(|state| {
            for (dev, addr) in tentative {
                state.end_dad(dev, addr, false);
            }
        });
    }
}
