//! Route lookup and source selection: where a packet to some destination goes,
//! and which of the stack's addresses it leaves from, decided as Linux would.
//!
//! Read only, over the links, the local table and the main table.

use super::addrs::{v6_rank, SCOPE_LINK, SCOPE_UNIVERSE};
use super::prefix::in_prefix;
use super::routes::{in_multipath, siblings};
use super::{
    IfAddr, Link, LinkKind, NextHop, NoRoute, Route, RouteProto, RouteType, State, LOCAL_TABLE,
    MAIN_TABLE,
};
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
    /// none of the scope anywhere, one of a wider scope of `dev` (a global
    /// address to a link-local destination while the link-local address is
    /// tentative), else of a smaller one (a link-local address to a global
    /// destination), as Linux then sends.
    fn pick_src_v6(&self, dev: u32, to: Ipv6Addr) -> Option<IpAddr> {
        let rank = v6_rank(to);
        let same = self.pick_src_v6_of(dev, to, |r| r == rank);
        let of_dev =
            |fits: &dyn Fn(u8) -> bool| self.pick_src_v6_of(dev, to, fits).filter(|s| s.0 == dev);
        same.or_else(|| of_dev(&|r| r > rank))
            .or_else(|| of_dev(&|r| r < rank))
            .map(|(_, src)| src)
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
            // Linux counts the common prefix up to the address's prefix
            // length only: addresses of one subnet tie, and the first wins.
            let common = (u128::from(x) ^ u128::from(to)).leading_zeros();
            Some((!times.deprecated, common.min(u32::from(a.prefix_len))))
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
        self.best_route_on(dst, None)
    }

    /// [`Self::best_route`] among the routes out of link `oif` only, if given
    /// (a lookup for a socket bound to a device, `ip route get ... oif DEV`).
    fn best_route_on(&self, dst: IpAddr, oif: Option<u32>) -> Option<&Route> {
        let mut best: Option<&Route> = None;
        for r in self.routes.iter().filter(|r| {
            r.table == MAIN_TABLE && r.kind.forwards() && oif.is_none_or(|d| d == r.dev)
        }) {
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

    /// The user's `local` route that makes `dst` one of the stack's own
    /// (Linux's "AnyIP": `ip route add local 10.5.0.0/16 dev lo`), if the
    /// lookup ends on one. IPv4 looks the local and main tables up as one
    /// (Linux merges them while no rule was added): the longest prefix wins,
    /// at equal length the local table's, then the lower metric, so a more
    /// specific route of the main table takes its part of the prefix. IPv6
    /// looks the local table up first, where any match decides, then the
    /// main table. The kernel's own entries take part: a broadcast address,
    /// or an IPv6 multicast one, under the route stays what its entry says.
    pub(super) fn anyip_route(&self, dst: IpAddr) -> Option<&Route> {
        if dst.is_unspecified() {
            return None;
        }
        let covers = |r: &&Route| in_prefix(dst, r.dst, r.prefix_len);
        let kernel = self
            .local_table
            .iter()
            .filter(covers)
            .map(|r| r.prefix_len)
            .max();
        let local_in = |table: u32| {
            self.routes
                .iter()
                .filter(move |r| r.table == table && r.kind == RouteType::Local)
                .filter(covers)
        };
        // A main-table route at least as long (and, at equal length in the
        // same table, of a lower metric) takes the destination.
        let beaten = |user: &Route| {
            self.best_route(dst).is_some_and(|m| {
                m.prefix_len > user.prefix_len
                    || (m.prefix_len == user.prefix_len
                        && user.table == MAIN_TABLE
                        && m.metric < user.metric)
            })
        };
        let user = if dst.is_ipv4() {
            pick_local(local_in(LOCAL_TABLE).chain(local_in(MAIN_TABLE)))?
        } else {
            match pick_local(local_in(LOCAL_TABLE)) {
                // The local table decides, if it has an entry for `dst`.
                Some(user) => {
                    return Some(user).filter(|u| kernel.is_none_or(|k| k < u.prefix_len))
                }
                None if kernel.is_some() => return None,
                None => pick_local(local_in(MAIN_TABLE))?,
            }
        };
        let kernel_first = kernel.is_some_and(|k| k >= user.prefix_len);
        (!kernel_first && !beaten(user)).then_some(user)
    }

    /// The source of a packet to `dst`, an address a user's `local` route
    /// makes the stack's: the route's `src`, else, as Linux's output lookup
    /// gives a local route, the destination itself for IPv4, and for IPv6
    /// the source chosen for the route's link, or `::1` when no other is
    /// usable (checked on Linux 6.18: `ip -6 route get` says `src ::1`).
    pub(super) fn anyip_src(&self, dst: IpAddr) -> Option<IpAddr> {
        let r = self.anyip_route(dst)?;
        match (r.src, dst) {
            (Some(src), _) => Some(src),
            (None, IpAddr::V4(_)) => Some(dst),
            (None, IpAddr::V6(d)) => self.pick_src_v6(r.dev, d).or_else(|| {
                let loopback = IpAddr::V6(Ipv6Addr::LOCALHOST);
                self.is_own(loopback).then_some(loopback)
            }),
        }
    }

    /// The prefixes of the user's `local` routes in the tables the lookup
    /// reads (local and main), which hold the addresses
    /// [`Self::anyip_route`] may find.
    pub(super) fn anyip_prefixes(&self) -> Vec<(IpAddr, u8)> {
        let mut out = Vec::new();
        for r in &self.routes {
            let looked_up = r.table == LOCAL_TABLE || r.table == MAIN_TABLE;
            if looked_up && r.kind == RouteType::Local && !out.contains(&(r.dst, r.prefix_len)) {
                out.push((r.dst, r.prefix_len));
            }
        }
        out
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
                let src = self.local_src(dst);
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
        self.hop_of(r, dst)
    }

    /// Where route `r` sends a packet to `dst`, or the error of a reject route.
    fn hop_of(&self, r: &Route, dst: IpAddr) -> Result<NextHop, NoRoute> {
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
                // Without a `src`, the source Linux picks for `lo`: an
                // address of universe scope (`lo`'s 127.0.0.1 has host scope).
                IpAddr::V4(_) => Ok(NextHop {
                    dev: r.dev,
                    addr: dst,
                    src: r.src.or_else(|| self.pick_src_v4(r.dev, dst, reach_of(r))),
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
            IpAddr::V4(_) => self.pick_src_v4(r.dev, near, reach_of(r)),
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

/// Of `local` routes covering a destination, the one a lookup ends on: the
/// longest prefix, then the local table's, then the lowest metric, then the
/// first in table order.
fn pick_local<'a>(routes: impl Iterator<Item = &'a Route>) -> Option<&'a Route> {
    let key = |r: &Route| {
        (
            r.prefix_len,
            r.table == LOCAL_TABLE,
            std::cmp::Reverse(r.metric),
        )
    };
    let mut best: Option<&Route> = None;
    for r in routes {
        if best.is_none_or(|b| key(r) > key(b)) {
            best = Some(r);
        }
    }
    best
}

/// The scope an IPv4 route reaches: the universe through a gateway (or a
/// device-only nexthop), the link for an on-link prefix.
fn reach_of(r: &Route) -> u8 {
    if r.via.is_some() || r.universe {
        SCOPE_UNIVERSE
    } else {
        SCOPE_LINK
    }
}

/// What `ip route get` asks: where a packet to `dst` would go, and from which
/// source, narrowed as the command says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouteQuery {
    /// The destination.
    pub(crate) dst: IpAddr,
    /// `from ADDR`: the packet's source, given (unspecified: none).
    pub(crate) from: Option<IpAddr>,
    /// `oif DEV`: the link it must leave from.
    pub(crate) oif: Option<u32>,
    /// `iif DEV`: the packet came in on this link.
    pub(crate) iif: Option<u32>,
}

/// The answer to a [`RouteQuery`]: what Linux's route cache entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouteAnswer {
    /// Unicast, or a local, broadcast or multicast destination.
    pub(crate) kind: RouteType,
    /// The link the packet leaves from (`lo` for a local destination).
    pub(crate) dev: u32,
    /// The gateway, if the packet goes through one.
    pub(crate) via: Option<IpAddr>,
    /// The source chosen, when none was given (`from`) or, for IPv6, always.
    pub(crate) src: Option<IpAddr>,
    /// The table entry that matched (`fibmatch` prints it; an IPv6 answer
    /// shows its table, protocol and metric); none where Linux decides
    /// without a table (`oif` with no route through it, `0.0.0.0`).
    pub(crate) route: Option<Route>,
    /// IPv4's `local` cache flag: the packet stays in the stack.
    pub(crate) local: bool,
}

impl State {
    /// `ip route get`: the answer of the running stack's own lookup
    /// ([`State::lookup`], its routes and source choice), with what Linux's
    /// route cache adds that the stack's forwarding does not need: the type
    /// of a broadcast or multicast destination, a given source or output
    /// link, and what a packet coming in (`iif`) would meet. A multipath
    /// route answers with its first nexthop up (Linux's choice hashes the
    /// flow with a random key of the namespace).
    pub(crate) fn route_get(&self, q: &RouteQuery) -> Result<RouteAnswer, NoRoute> {
        if let Some(oif) = q.oif {
            if !self.is_up(oif) {
                return Err(NoRoute::NetUnreachable);
            }
        }
        match q.dst {
            IpAddr::V4(_) => self.route_get_v4(q),
            IpAddr::V6(_) => self.route_get_v6(q),
        }
    }

    /// The entry of the kernel's local table for `dst`, the longest that
    /// matches, of this type.
    fn local_entry(&self, dst: IpAddr, kind: RouteType) -> Option<Route> {
        self.kernel_local_routes()
            .into_iter()
            .filter(|r| r.kind == kind && in_prefix(dst, r.dst, r.prefix_len))
            .max_by_key(|r| r.prefix_len)
    }

    /// The table entry that makes `dst` local: the kernel's, else a user's
    /// `local` route the lookup ends on.
    fn local_route_for(&self, dst: IpAddr) -> Option<Route> {
        self.local_entry(dst, RouteType::Local)
            .or_else(|| self.anyip_route(dst).copied())
    }

    fn route_get_v4(&self, q: &RouteQuery) -> Result<RouteAnswer, NoRoute> {
        let dst = q.dst;
        let lo = self.lo_index();
        let from = q.from.filter(|f| !f.is_unspecified());
        // Linux's output lookup refuses a source that is not the stack's.
        if from.is_some_and(|f| !self.is_local(f)) && q.iif.is_none() {
            return Err(NoRoute::NetUnreachable);
        }
        let local = |route: Option<Route>, src: Option<IpAddr>| RouteAnswer {
            kind: RouteType::Local,
            dev: lo,
            via: None,
            src: if from.is_some() { None } else { src },
            route,
            local: true,
        };
        if q.iif.is_some() {
            // A packet coming in: without a source, or from `lo`'s, it is a
            // martian; otherwise it is delivered if it is for the stack
            // (unless its source is the stack's own: a martian again), and
            // not forwarded if not (a namespace forwards nothing by default).
            let loopback = |f: IpAddr| matches!(f, IpAddr::V4(f) if f.is_loopback());
            if from.is_none_or(loopback) {
                return Err(NoRoute::Blackhole);
            }
            if !self.is_local(dst) {
                return Err(NoRoute::HostUnreachable);
            }
            if from.is_some_and(|f| self.is_local(f)) {
                return Err(NoRoute::Blackhole);
            }
            let entry = self.local_route_for(dst);
            return Ok(RouteAnswer {
                src: None,
                ..local(entry, None)
            });
        }
        if dst.is_unspecified() {
            // Linux sends to 0.0.0.0 over `lo`, from 127.0.0.1 unless told.
            let loopback = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
            return Ok(local(None, Some(loopback)));
        }
        // The stack's own addresses: local, even with `lo` down (Linux then
        // answers and drops the packets).
        let local_entry = self.local_route_for(dst);
        if let Some(entry) = local_entry.filter(|e| q.oif.is_none_or(|d| d == e.dev)) {
            let src = match self.lookup(dst) {
                Ok(hop) if hop.local => hop.src,
                _ => self.local_src(dst),
            };
            return Ok(local(Some(entry), src));
        }
        if let Some(entry) = self.local_entry(dst, RouteType::Broadcast) {
            return Ok(RouteAnswer {
                kind: RouteType::Broadcast,
                dev: entry.dev,
                via: None,
                src: if from.is_some() { None } else { entry.src },
                route: Some(entry),
                local: true,
            });
        }
        let IpAddr::V4(d4) = dst else {
            return Err(NoRoute::NetUnreachable);
        };
        // Only an output link asked for takes a loopback destination out.
        if d4.is_loopback() && q.oif.is_none() {
            return Err(NoRoute::NetUnreachable);
        }
        // A multicast or limited broadcast packet from a given source, with
        // no link asked for, leaves by the source's link, unrouted.
        let from_link = from
            .filter(|_| q.oif.is_none() && (d4.is_multicast() || d4.is_broadcast()))
            .and_then(|f| {
                self.links
                    .iter()
                    .find(|l| l.addrs.iter().any(|a| a.addr == f))
                    .map(|l| l.index)
                    .or_else(|| self.lo_prefix_of(f).map(|_| lo))
                    .or_else(|| self.anyip_route(f).map(|r| r.dev))
            });
        let oif = q.oif.or(from_link);
        let routed = if from_link.is_some() {
            None
        } else {
            self.best_route_on(dst, oif)
        };
        let (route, hop) = match routed {
            Some(r) => (Some(*r), self.hop_of(r, dst)?),
            None => {
                // Linux assumes a destination with no route through the
                // link asked for is on that link.
                let oif = oif.ok_or(NoRoute::NetUnreachable)?;
                let hop = NextHop {
                    dev: oif,
                    addr: dst,
                    src: self.pick_src_v4(oif, dst, SCOPE_LINK),
                    local: self.is_lo(oif),
                };
                (None, hop)
            }
        };
        // A source on `lo` never leaves by another link.
        if from.is_some_and(|f| matches!(f, IpAddr::V4(f) if f.is_loopback()))
            && !self.is_lo(hop.dev)
        {
            return Err(NoRoute::Blackhole);
        }
        let mut via = (hop.addr != dst).then_some(hop.addr);
        let mut kind = RouteType::Unicast;
        let mut is_local = hop.local;
        if d4.is_broadcast() {
            kind = RouteType::Broadcast;
            via = None;
            is_local = true;
        } else if d4.is_multicast() {
            kind = RouteType::Multicast;
            // Only the all-hosts group is joined by the stack itself.
            is_local = d4 == std::net::Ipv4Addr::new(224, 0, 0, 1);
            // Linux forgets the gateway of a route as wide as the default.
            if route.is_none_or(|r| r.prefix_len < 4) {
                via = None;
            }
        }
        Ok(RouteAnswer {
            kind,
            dev: hop.dev,
            via,
            src: if from.is_some() { None } else { hop.src },
            route,
            local: is_local,
        })
    }

    fn route_get_v6(&self, q: &RouteQuery) -> Result<RouteAnswer, NoRoute> {
        let dst = q.dst;
        let IpAddr::V6(d6) = dst else {
            return Err(NoRoute::NetUnreachable);
        };
        let lo = self.lo_index();
        // A packet coming in gets no source chosen.
        let input = q.iif.is_some();
        let local_entry = self
            .local_route_for(dst)
            .filter(|e| q.oif.is_none_or(|d| d == e.dev));
        if let Some(entry) = local_entry {
            // Even with `lo` down, as Linux answers. An address of the
            // stack's is its own source.
            let src = match entry.proto {
                RouteProto::Kernel => Some(dst),
                _ => self.local_src(dst),
            };
            return Ok(RouteAnswer {
                kind: RouteType::Local,
                dev: lo,
                via: None,
                src: src.filter(|_| !input),
                route: Some(entry),
                local: true,
            });
        }
        if d6.is_multicast() {
            let entry = self
                .kernel_local_routes()
                .into_iter()
                .find(|r| {
                    r.kind == RouteType::Multicast
                        && in_prefix(dst, r.dst, r.prefix_len)
                        && q.oif.is_none_or(|d| d == r.dev)
                })
                .ok_or(NoRoute::NetUnreachable)?;
            return Ok(RouteAnswer {
                kind: RouteType::Multicast,
                dev: entry.dev,
                via: None,
                src: self.pick_src_v6(entry.dev, d6),
                route: Some(entry),
                local: false,
            });
        }
        if d6.is_loopback() {
            return Err(NoRoute::NetUnreachable);
        }
        let r = self
            .best_route_on(dst, q.oif)
            .ok_or(NoRoute::NetUnreachable)?;
        let hop = if dst.is_unspecified() {
            // `::` goes where the default route goes (the stack never
            // sends there: its lookup refuses it).
            NextHop {
                dev: r.dev,
                addr: r.via.unwrap_or(dst),
                src: r.src.or_else(|| self.pick_src_v6(r.dev, d6)),
                local: false,
            }
        } else {
            self.hop_of(r, dst)?
        };
        Ok(RouteAnswer {
            kind: RouteType::Unicast,
            dev: hop.dev,
            via: r.via,
            src: hop.src.filter(|_| !input),
            route: Some(*r),
            local: false,
        })
    }
}
