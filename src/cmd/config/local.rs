//! The local table: which addresses are the stack's own, the prefixes `lo`
//! answers for, and the IPv4 broadcast addresses of up links; and the
//! entries Linux lists for them (`ip route show table local`).
//!
//! Read only: `bind()` (through [`super::NetConfig::is_local_addr`]), the
//! gateway checks of the route part, the lookups and `ip route show` ask it.

use super::prefix::{in_prefix, mask_v4, network};
use super::{has_prefix_route, v4, IfAddr, Link, Route, RouteProto, RouteType, State, LOCAL_TABLE};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The metric of the local table's IPv6 `ff00::/8` entries.
const IPV6_MULTICAST_METRIC: u32 = 256;

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

    /// The source of a packet to `addr`, a local destination: the source of
    /// its local table entry (an IPv4 secondary's is the primary of its
    /// subnet, a prefix of `lo`'s its address), else itself.
    pub(super) fn local_src(&self, addr: IpAddr) -> Option<IpAddr> {
        let own = self.links.iter().find_map(|l| {
            let i = l.addrs.iter().position(|a| a.addr == addr)?;
            Some(if addr.is_ipv4() {
                primary_of(l, i)
            } else {
                addr
            })
        });
        own.or_else(|| self.lo_prefix_of(addr).map(|p| p.addr))
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

    /// The entries the kernel keeps in its local table, as Linux makes them
    /// from the addresses (in no particular order): for each IPv4 address
    /// (on any link) `local ADDR`, with its primary as source; for each
    /// prefix of `lo` `local PREFIX`; on up links, the broadcast addresses
    /// of [`Self::is_v4_broadcast`]; for each usable IPv6 address of an up
    /// link (or of `lo`) `local ADDR`, and for each up link but `lo` with IPv6
    /// `multicast ff00::/8`.
    pub(crate) fn kernel_local_routes(&self) -> Vec<Route> {
        let entry = |kind, dst: IpAddr, prefix_len, dev, src, metric| Route {
            kind,
            dst,
            prefix_len,
            via: None,
            dev,
            proto: RouteProto::Kernel,
            src,
            metric,
            weight: 1,
            group: 0,
            universe: false,
            table: LOCAL_TABLE,
        };
        let mut out: Vec<Route> = Vec::new();
        let mut push = |r: Route| {
            if !out.contains(&r) {
                out.push(r);
            }
        };
        for l in &self.links {
            for i in 0..self.v4_count(l.index) {
                let a = l.addrs[i];
                let primary = primary_of(l, i);
                push(entry(
                    RouteType::Local,
                    a.addr,
                    32,
                    l.index,
                    Some(primary),
                    0,
                ));
                if !l.up {
                    continue;
                }
                let Some(a4) = v4(a.addr) else { continue };
                let mask = mask_v4(a.prefix_len);
                let subnet = (a.prefix_len < 31 && has_prefix_route(a) && primary == a.addr)
                    .then(|| Ipv4Addr::from(u32::from(a4) & mask | !mask));
                for brd in subnet.into_iter().chain(self.broadcast(l.index, &a)) {
                    push(entry(
                        RouteType::Broadcast,
                        brd.into(),
                        32,
                        l.index,
                        Some(primary),
                        0,
                    ));
                }
            }
            // `lo`'s IPv6 addresses skip duplicate address detection and
            // enter the table even while it is down.
            if (l.up || self.is_lo(l.index)) && !self.ipv6_disabled(l.index) {
                for a in l.addrs.iter().filter(|a| a.addr.is_ipv6()) {
                    if self.is_usable(l.index, a) {
                        push(entry(RouteType::Local, a.addr, 128, l.index, None, 0));
                    }
                }
                if l.up && !self.is_lo(l.index) {
                    let all = IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0));
                    push(entry(
                        RouteType::Multicast,
                        all,
                        8,
                        l.index,
                        None,
                        IPV6_MULTICAST_METRIC,
                    ));
                }
            }
        }
        for p in &self.lo_prefixes {
            let dst = network(p.addr, p.prefix_len);
            let lo = self.links.iter().find(|l| self.is_lo(l.index));
            if let Some(lo) = lo {
                push(entry(
                    RouteType::Local,
                    dst,
                    p.prefix_len,
                    lo.index,
                    Some(p.addr),
                    0,
                ));
            }
        }
        out
    }
}

/// The address whose local table entry gives the source for the IPv4 address
/// at `i` on `l`: the first address of its subnet (a secondary's primary).
fn primary_of(l: &Link, i: usize) -> IpAddr {
    let a = l.addrs[i];
    l.addrs[..i]
        .iter()
        .find(|b| b.prefix_len == a.prefix_len && in_prefix(b.addr, a.addr, a.prefix_len))
        .map_or(a.addr, |b| b.addr)
}
