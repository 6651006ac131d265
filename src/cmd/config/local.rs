//! The local table: which addresses are the stack's own, the prefixes `lo`
//! answers for, and the IPv4 broadcast addresses of up links.
//!
//! Read only: `bind()` (through [`super::NetConfig::is_local_addr`]), the
//! gateway checks of the route part and the lookups ask it.

use super::prefix::{in_prefix, mask_v4};
use super::{has_prefix_route, v4, IfAddr, State};
use std::net::{IpAddr, Ipv4Addr};

impl State {
    /// Is `addr` in Linux's local table (see [`super::NetConfig::is_local_addr`])?
    /// An IPv6 address enters it once duplicate address detection is over.
    pub(super) fn is_local(&self, addr: IpAddr) -> bool {
        self.holds(addr, true)
    }

    /// Is `addr` one of the stack's, tentative or not: what Linux refuses as
    /// a gateway ("Gateway can not be a local address.").
    pub(super) fn is_assigned(&self, addr: IpAddr) -> bool {
        self.holds(addr, false)
    }

    fn holds(&self, addr: IpAddr, usable_only: bool) -> bool {
        if addr.is_unspecified() {
            return false;
        }
        let assigned = self.links.iter().any(|l| {
            (l.up || addr.is_ipv4())
                && l.addrs
                    .iter()
                    .any(|a| a.addr == addr && (!usable_only || self.is_usable(l.index, a)))
        });
        assigned || self.lo_prefix_of(addr).is_some()
    }

    /// The `lo` address whose local prefix holds `addr`.
    pub(super) fn lo_prefix_of(&self, addr: IpAddr) -> Option<IfAddr> {
        self.lo_prefixes
            .iter()
            .find(|p| in_prefix(addr, p.addr, p.prefix_len))
            .copied()
    }

    /// The broadcast addresses Linux puts in its local table for up links: any
    /// address's explicit `brd`, and the subnet broadcast of primaries shorter
    /// than /31.
    pub(super) fn is_v4_broadcast(&self, dev: u32, gw: Ipv4Addr) -> bool {
        let link = self.link(dev);
        link.up
            && (0..self.v4_count(dev)).any(|i| {
                let a = link.addrs[i];
                let Some(a4) = v4(a.addr) else { return false };
                let net = u32::from(a4) & mask_v4(a.prefix_len);
                let subnet_brd = a.prefix_len < 31
                    && has_prefix_route(a)
                    && !self.is_secondary(dev, i)
                    && net | !mask_v4(a.prefix_len) == u32::from(gw);
                subnet_brd || self.broadcast(dev, &a) == Some(gw)
            })
    }
}
