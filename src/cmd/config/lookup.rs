//! Route lookup and source selection: where a packet to some destination goes,
//! and which of the stack's addresses it leaves from, decided as Linux would.
//!
//! Read only, over the links, the local table and the main table.

use super::addrs::{v6_rank, SCOPE_LINK, SCOPE_UNIVERSE};
use super::prefix::in_prefix;
use super::routes::{in_multipath, siblings};
use super::{IfAddr, Link, LinkKind, NextHop, NoRoute, Route, RouteType, State, MAIN_TABLE};
use std::net::{IpAddr, Ipv6Addr};

impl State {
    /// The source address Linux would choose for IPv4 traffic out of `dev` to
    /// `to` by a route of scope `reach` (`inet_select_addr`): among the
    /// primary addresses whose scope is within it, one of `dev` whose prefix
    /// holds `to`, else the first of `dev`, else one of another up link that
    /// is not of link scope.
    fn pick_src_v4(&self, dev: u32, to: IpAddr, reach: u8) -> Option<IpAddr> {
        let primaries = |index: u32| {
            (0..self.v4_count(index))
                .filter(move |&i| !self.is_secondary(index, i))
                .map(move |i| (index, self.link(index).addrs[i]))
                .filter(move |(index, a)| self.v4_addr_scope(*index, a) <= reach)
        };
        primaries(dev)
            .find(|(_, a)| in_prefix(to, a.addr, a.prefix_len))
            .or_else(|| primaries(dev).next())
            .or_else(|| {
                self.links
                    .iter()
                    .filter(|l| l.up && l.index != dev)
                    .flat_map(|l| primaries(l.index))
                    .find(|(index, a)| self.v4_addr_scope(*index, a) != SCOPE_LINK)
            })
            .map(|(_, a)| a.addr)
    }

    /// The source address for IPv6 traffic out of `dev` to `to`: same scope,
    /// never one still under DAD, a preferred one before a deprecated one, then
    /// the longest common prefix, as RFC 6724 (rules 2, 3 and 8) prefers; with
    /// none of the scope anywhere, one of a smaller scope of `dev` (a
    /// link-local address to a global destination, as Linux then sends).
    fn pick_src_v6(&self, dev: u32, to: Ipv6Addr) -> Option<IpAddr> {
        let rank = v6_rank(to);
        let same = self.pick_src_v6_of(dev, to, |r| r == rank);
        let smaller = || {
            self.pick_src_v6_of(dev, to, |r| r < rank)
                .filter(|s| s.0 == dev)
        };
        same.or_else(smaller).map(|(_, src)| src)
    }

    /// [`State::pick_src_v6`]'s choice among the addresses whose scope rank
    /// `fits`: the link it was found on and itself.
    fn pick_src_v6_of(
        &self,
        dev: u32,
        to: Ipv6Addr,
        fits: impl Fn(u8) -> bool,
    ) -> Option<(u32, IpAddr)> {
        let score = |index: u32, a: &IfAddr| {
            let IpAddr::V6(x) = a.addr else { return None };
            if x.is_loopback() || !fits(v6_rank(x)) {
                return None;
            }
            let times = self.addr_times(index, a);
            if times.tentative {
                return None;
            }
            Some((
                !times.deprecated,
                (u128::from(x) ^ u128::from(to)).leading_zeros(),
            ))
        };
        let best_on = |l: &Link| {
            let mut best: Option<((bool, u32), IpAddr)> = None;
            for a in &l.addrs {
                if let Some(s) = score(l.index, a) {
                    if best.is_none_or(|b| s > b.0) {
                        best = Some((s, a.addr));
                    }
                }
            }
            best.map(|b| (l.index, b.1))
        };
        best_on(self.link(dev)).or_else(|| {
            self.links
                .iter()
                .filter(|l| l.up && l.index != dev)
                .find_map(best_on)
        })
    }

    /// Where an IPv6 multicast packet goes: Linux finds the local table's
    /// `multicast ff00::/8` entry of an up link before the main table (the
    /// first, in the table's order); without one (deleted) the main table
    /// decides.
    fn multicast_v6(&self, dst: IpAddr) -> Option<NextHop> {
        let IpAddr::V6(d) = dst else { return None };
        if !d.is_multicast() {
            return None;
        }
        let r = self.local_table.iter().find(|r| {
            r.kind == RouteType::Multicast
                && in_prefix(dst, r.dst, r.prefix_len)
                && self.is_up(r.dev)
        })?;
        Some(NextHop {
            dev: r.dev,
            addr: dst,
            src: self.pick_src_v6(r.dev, d),
            local: false,
        })
    }

    /// The main table's route for `dst`: the longest prefix that matches, of
    /// an up link or a reject route.
    fn best_route(&self, dst: IpAddr) -> Option<&Route> {
        let mut best: Option<&Route> = None;
        for r in self
            .routes
            .iter()
            .filter(|r| r.table == MAIN_TABLE && r.kind.forwards())
        {
            // A reject route matches whatever state its device (`lo`) is in.
            if (r.kind.rejects() || self.is_up(r.dev))
                && in_prefix(dst, r.dst, r.prefix_len)
                && best.is_none_or(|b| r.prefix_len > b.prefix_len)
            {
                best = Some(r);
            }
        }
        best
    }

    /// The nexthops of the multipath route `r` whose links are up, `r` first:
    /// the routes of the table that are its siblings (each nexthop is a route
    /// of its own: for IPv6 those through a gateway to its prefix with its
    /// metric, as Linux's siblings; for IPv4 those of its group).
    pub(super) fn nexthops_of<'a>(&'a self, r: &'a Route) -> impl Iterator<Item = &'a Route> + 'a {
        self.routes
            .iter()
            .filter(move |o| siblings(r, o) && self.is_up(o.dev))
    }

    /// [`Self::lookup`] for one flow of a multipath route: the nexthop `hash`
    /// picks among those up, each with a share of the hashes as large as its
    /// weight.
    pub(super) fn lookup_flow(&self, dst: IpAddr, hash: u64) -> Result<NextHop, NoRoute> {
        let hop = self.lookup(dst)?;
        let Some(r) = self.best_route(dst).filter(|r| in_multipath(r)) else {
            return Ok(hop);
        };
        let total: u64 = self.nexthops_of(r).map(|o| u64::from(o.weight)).sum();
        let mut point = hash % total.max(1);
        let pick = self.nexthops_of(r).find(|o| {
            let inside = point < u64::from(o.weight);
            point = point.saturating_sub(u64::from(o.weight));
            inside
        });
        let Some(pick) = pick else {
            return Ok(hop);
        };
        Ok(NextHop {
            dev: pick.dev,
            addr: pick.via.unwrap_or(dst),
            ..hop
        })
    }

    /// Whether a reject route stops a packet to `dst` (see
    /// [`super::NetConfig::rejected`]).
    pub(super) fn rejected(&self, dst: IpAddr) -> bool {
        self.lookup(dst).is_err() && self.best_route(dst).is_some_and(|r| r.kind.rejects())
    }

    /// Whether the main table holds a reject route.
    pub(super) fn has_reject_routes(&self) -> bool {
        self.routes
            .iter()
            .any(|r| r.kind.rejects() && r.table == MAIN_TABLE)
    }

    /// Where a packet to `dst` goes (see [`super::NetConfig::lookup`]), or why
    /// nothing leaves.
    pub(super) fn lookup(&self, dst: IpAddr) -> Result<NextHop, NoRoute> {
        let lo = self.links.iter().find(|l| l.kind == LinkKind::Loopback);
        if let Some(lo) = lo.filter(|lo| lo.up) {
            if self.is_local(dst) {
                let exact = self
                    .links
                    .iter()
                    .any(|l| l.addrs.iter().any(|a| a.addr == dst));
                let src = if exact {
                    Some(dst)
                } else {
                    self.lo_prefix_of(dst).map(|p| p.addr)
                };
                return Ok(NextHop {
                    dev: lo.index,
                    addr: dst,
                    src,
                    local: true,
                });
            }
        }
        let loopback_dst = match dst {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => a.is_loopback(),
        };
        if loopback_dst || dst.is_unspecified() {
            // Linux never sends loopback destinations out of a real device.
            return Err(NoRoute::NetUnreachable);
        }
        if let Some(hop) = self.multicast_v6(dst) {
            return Ok(hop);
        }
        let r = self.best_route(dst).ok_or(NoRoute::NetUnreachable)?;
        match r.kind {
            k if k.unicast() => {}
            RouteType::Unreachable => return Err(NoRoute::HostUnreachable),
            RouteType::Prohibit => return Err(NoRoute::Prohibited),
            RouteType::Blackhole => return Err(NoRoute::Blackhole),
            // Not among the routes `best_route` picks.
            _ => return Err(NoRoute::NetUnreachable),
        }
        if self.is_lo(r.dev) {
            // Through lo, Linux delivers IPv4 locally ("cache <local>"); IPv6 only
            // loops back to be dropped.
            return match dst {
                IpAddr::V4(_) => Ok(NextHop {
                    dev: r.dev,
                    addr: dst,
                    src: r.src,
                    local: true,
                }),
                IpAddr::V6(_) => Err(NoRoute::NetUnreachable),
            };
        }
        let addr = r.via.unwrap_or(dst);
        // Linux picks an IPv4 source near the next hop, an IPv6 one near the
        // destination.
        // (Near the destination itself when the gateway is IPv6, RFC 5549.)
        let near = if addr.is_ipv4() { addr } else { dst };
        let src = r.src.or_else(|| match dst {
            IpAddr::V4(_) => {
                // A route through a gateway (or a device-only nexthop) reaches
                // the universe; one to an on-link prefix, the link.
                let reach = if r.via.is_some() || r.universe {
                    SCOPE_UNIVERSE
                } else {
                    SCOPE_LINK
                };
                self.pick_src_v4(r.dev, near, reach)
            }
            IpAddr::V6(d) => self.pick_src_v6(r.dev, d),
        });
        Ok(NextHop {
            dev: r.dev,
            addr,
            src,
            local: false,
        })
    }
}
