//! The main routing table: its order, the kernel's connected routes, and
//! `ip route add|replace|change|prepend|append|test|del|flush` with Linux's
//! checks of gateways, devices and preferred sources, and its rules for routes
//! to the same prefix (metrics, and what each command does to a route that is
//! there already).
//!
//! Owns the route list, the IPv4 table's existence and the [`MAX_USER_ROUTES`]
//! limit.

use super::lifetimes::RoutePref;
use super::prefix::{in_prefix, network};
use super::{
    has_prefix_route, kernel, rtnl, IfAddr, LinkKind, Route, RouteProto, RouteType, State,
    IPV4_MIN_MTU, LOCAL_TABLE, MAIN_TABLE, MAX_USER_ROUTES,
};
use crate::cmd::error::CmdError;
use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A route change as the kernel receives it from `ip route add|replace|del`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteReq {
    /// The destination as given (an IPv6 one may have host bits set).
    pub(crate) dst: IpAddr,
    pub(crate) prefix_len: u8,
    /// The gateway; the unspecified address counts as none.
    pub(crate) via: Option<IpAddr>,
    /// The link named with `dev`.
    pub(crate) dev: Option<u32>,
    /// The preferred source address.
    pub(crate) src: Option<IpAddr>,
    /// The metric given (`metric`, `priority`, `preference`); 0 is as none.
    pub(crate) metric: Option<u32>,
    /// The route's type (`unicast` unless one was given).
    pub(crate) kind: RouteType,
    /// The nexthops after the first of a multipath route (`nexthop via GW [dev
    /// DEV]`, the first in `via` and `dev`): each is added as `append` adds it.
    pub(crate) more_nexthops: Vec<(Option<IpAddr>, Option<u32>, u16)>,
    /// The first nexthop's `weight` (1 unless given).
    pub(crate) weight: u16,
    /// `expires N`: seconds until an IPv6 route goes (0 and 4294967295: never,
    /// as Linux takes them). IPv4 routes ignore it, as Linux's do.
    pub(crate) expires: Option<u32>,
    /// Whether the route was written as a `nexthop` without a gateway, which
    /// Linux gives scope universe (see [`Route::universe`]).
    pub(crate) universe: bool,
    /// The table named with `table` ([`MAIN_TABLE`] unless given).
    pub(crate) table: u32,
    /// `protocol P`, as its rtnetlink number: a delete matches only routes
    /// of that protocol (an add refuses it).
    pub(crate) proto: Option<u32>,
}

/// Whether Linux makes `r` one of the nexthops of an IPv6 multipath route when
/// another goes to its prefix with its metric (`rt6_qualify_for_ecmp`): a
/// unicast route through a gateway, added with `ip route`.
pub(super) fn ecmp_capable(r: &Route) -> bool {
    r.dst.is_ipv6() && r.via.is_some() && r.kind == RouteType::Unicast && r.proto.by_user()
}

/// Whether `a` and `b` are nexthops of one multipath route (siblings).
pub(super) fn siblings(a: &Route, b: &Route) -> bool {
    if a.table != b.table {
        return false;
    }
    if a.dst.is_ipv4() {
        return a.group != 0 && a.group == b.group;
    }
    ecmp_capable(a)
        && ecmp_capable(b)
        && (a.dst, a.prefix_len, a.metric) == (b.dst, b.prefix_len, b.metric)
}

/// Whether `r` is a nexthop of a multipath route, or may become one (an IPv6
/// route through a gateway).
pub(super) fn in_multipath(r: &Route) -> bool {
    ecmp_capable(r) || (r.dst.is_ipv4() && r.group != 0)
}

/// The metric Linux gives an IPv6 route added without one (`IP6_RT_PRIO_USER`).
const IPV6_USER_METRIC: u32 = 1024;
/// The metric of the kernel's IPv6 prefix routes (`IP6_RT_PRIO_ADDRCONF`).
const IPV6_KERNEL_METRIC: u32 = 256;

/// What a route command asks of routes already there, as the netlink flags
/// iproute2 sends for it (`NLM_F_EXCL`, `NLM_F_REPLACE`, `NLM_F_CREATE`,
/// `NLM_F_APPEND`) tell the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteMode {
    /// `add`: a new route; one to the same prefix with the same metric clashes.
    Add,
    /// `replace`: overwrite that route, or add one.
    Replace,
    /// `change`: overwrite that route, which must exist.
    Change,
    /// `prepend`: add before the routes with the same prefix and metric.
    Prepend,
    /// `append`: add after them.
    Append,
    /// `test`: add only where nothing clashes, without the create flag.
    Test,
}

impl RouteMode {
    /// `NLM_F_EXCL`: a route with the same prefix and metric is an error.
    fn exclusive(self) -> bool {
        matches!(self, RouteMode::Add | RouteMode::Test)
    }

    /// `NLM_F_REPLACE`.
    fn replaces(self) -> bool {
        matches!(self, RouteMode::Replace | RouteMode::Change)
    }

    /// `NLM_F_CREATE`.
    fn creates(self) -> bool {
        !matches!(self, RouteMode::Change | RouteMode::Test)
    }
}

impl RouteReq {
    /// Linux refuses an IPv4 destination with host bits set (an IPv6 one is
    /// masked instead).
    fn check_prefix(&self) -> Result<(), CmdError> {
        if self.dst.is_ipv4() && network(self.dst, self.prefix_len) != self.dst {
            return Err(kernel("Invalid prefix for given prefix length."));
        }
        Ok(())
    }
}

/// An `ip route add|replace|...` the model has accepted, for the state it was
/// checked against: the new route, and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouteAdd {
    pub(crate) route: Route,
    pub(crate) place: RoutePlace,
    /// Seconds until the route goes, if it does.
    pub(crate) expires: Option<u32>,
}

/// Where an accepted route goes in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoutePlace {
    /// In table order, after any equal route.
    Sorted,
    /// In place of the route at this index.
    Replaces(usize),
    /// At this index, before the route there (prepend, append).
    At(usize),
}

/// An `ip route del` the model has accepted, for the state it was checked
/// against: the indexes of the routes that go (one, or the nexthops of a
/// multipath route), or the kernel's local-table entry that goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteDel {
    pub(crate) at: Vec<usize>,
    pub(crate) local: Option<Route>,
}

/// The order of `ip route show`, which is also the order lookups prefer among
/// routes to the same prefix. IPv4 (the FIB trie): by destination, then longer
/// prefixes first, then by metric. IPv6 (the fib6 tree, walked children first): by address bits,
/// a more specific prefix before the one containing it, then by metric. Equal keys
/// keep their insertion order.
pub(crate) fn route_order(a: &Route, b: &Route) -> Ordering {
    // A dump lists IPv4 then IPv6, each family's tables in the order of
    // Linux's table hash (the id modulo 256, `FIB_TABLE_HASHSZ`).
    let family = a.dst.is_ipv6().cmp(&b.dst.is_ipv6());
    let table = |r: &Route| (r.table & 0xff, r.table);
    family
        .then(table(a).cmp(&table(b)))
        .then_with(|| prefix_order(a, b))
}

/// [`route_order`] within one table.
fn prefix_order(a: &Route, b: &Route) -> Ordering {
    match (a.dst, b.dst) {
        (IpAddr::V4(x), IpAddr::V4(y)) => u32::from(x)
            .cmp(&u32::from(y))
            .then(b.prefix_len.cmp(&a.prefix_len))
            .then(a.metric.cmp(&b.metric)),
        (IpAddr::V6(x), IpAddr::V6(y)) => {
            let (x, y) = (u128::from(x), u128::from(y));
            let common = a.prefix_len.min(b.prefix_len);
            let common_mask = if common == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(common))
            };
            let diff = (x ^ y) & common_mask;
            let tree = if diff != 0 {
                let bit = 127 - diff.leading_zeros();
                if (x >> bit) & 1 == 0 {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            } else {
                b.prefix_len.cmp(&a.prefix_len)
            };
            tree.then(a.metric.cmp(&b.metric))
        }
        (IpAddr::V4(_), IpAddr::V6(_)) => Ordering::Less,
        (IpAddr::V6(_), IpAddr::V4(_)) => Ordering::Greater,
    }
}

/// The kernel route to the prefix of `a` through `dev`.
pub(super) fn prefix_route(dev: u32, a: IfAddr, src: Option<IpAddr>) -> Route {
    Route {
        kind: RouteType::Unicast,
        dst: network(a.addr, a.prefix_len),
        prefix_len: a.prefix_len,
        via: None,
        dev,
        proto: RouteProto::Kernel,
        src,
        metric: if a.addr.is_ipv4() {
            0
        } else {
            IPV6_KERNEL_METRIC
        },
        weight: 1,
        group: 0,
        universe: false,
        table: MAIN_TABLE,
    }
}

impl State {
    /// The table as `ip route show` lists it: each route alone, or the
    /// nexthops of a multipath route together (the indexes of its routes, in
    /// table order). Linux dumps a multipath route where its first nexthop is
    /// and goes on after its last, so a route added between them (`append` of
    /// a route without a gateway, then of one more nexthop) is in the table
    /// but not listed; so here.
    pub(crate) fn route_groups(&self) -> Vec<Vec<usize>> {
        let mut groups = Vec::new();
        let mut i = 0;
        while i < self.routes.len() {
            let group = self.group_of(i);
            i = group.last().map_or(i, |&last| last.max(i)) + 1;
            groups.push(group);
        }
        groups
    }

    /// The indexes of the routes of the multipath route the route at `i`
    /// belongs to, in table order (`[i]` for a route alone).
    fn group_of(&self, i: usize) -> Vec<usize> {
        let r = &self.routes[i];
        let group: Vec<usize> = (0..self.routes.len())
            .filter(|&j| j == i || siblings(r, &self.routes[j]))
            .collect();
        group
    }

    fn check_route_limit(&self, extra: usize) -> Result<(), CmdError> {
        let user = self.routes.iter().filter(|r| r.proto.by_user()).count();
        if user + extra > MAX_USER_ROUTES {
            return Err(kernel(&format!(
                "vdestack: too many routes (limit {MAX_USER_ROUTES})."
            )));
        }
        Ok(())
    }

    /// Adds a route after any equal one (Linux appends kernel routes).
    pub(super) fn insert_route(&mut self, route: Route) {
        let at = self
            .routes
            .iter()
            .position(|r| route_order(r, &route) == Ordering::Greater)
            .unwrap_or(self.routes.len());
        self.routes.insert(at, route);
    }

    pub(super) fn remove_routes(&mut self, keep: impl Fn(&Route) -> bool) {
        self.routes.retain(keep);
    }

    /// The connected route Linux adds for a primary IPv4 address on an up link: none
    /// for `lo` (its prefixes go to the local table), `/32`, or a 0.x.x.x network.
    pub(super) fn v4_connected(&self, dev: u32, a: IfAddr) -> Option<Route> {
        let attrs = self.addr_attrs(dev, &a);
        if self.is_lo(dev) || !has_prefix_route(a) || attrs.noprefixroute {
            return None;
        }
        let mut route = prefix_route(dev, a, Some(a.addr));
        route.metric = attrs.metric;
        Some(route)
    }

    /// The prefix route Linux adds for an IPv6 address on an up link (none for the
    /// `::1` it adds to `lo` itself).
    pub(super) fn v6_connected(&self, dev: u32, a: IfAddr) -> Option<Route> {
        let attrs = self.addr_attrs(dev, &a);
        if a.addr == IpAddr::V6(Ipv6Addr::LOCALHOST) && !self.loopback6_added || attrs.noprefixroute
        {
            return None;
        }
        let mut route = prefix_route(dev, a, None);
        if attrs.metric != 0 {
            route.metric = attrs.metric;
        }
        Some(route)
    }

    /// The prefix route of an address of `dev`, of either family.
    pub(super) fn connected_route(&self, dev: u32, a: IfAddr) -> Option<Route> {
        match a.addr {
            IpAddr::V4(_) => self.v4_connected(dev, a),
            IpAddr::V6(_) => self.v6_connected(dev, a),
        }
    }

    pub(super) fn add_v6_connected(&mut self, dev: u32, a: IfAddr) {
        if let Some(route) = self.v6_connected(dev, a) {
            if !self.routes.contains(&route) {
                self.insert_route(route);
            }
        }
    }

    /// Drops a family's routes through `dev` (an IPv4 reject route has no
    /// device and stays).
    pub(super) fn drop_routes_via(&mut self, dev: u32, ipv4: bool) {
        self.remove_routes(|r| !(r.device() == Some(dev) && r.dst.is_ipv4() == ipv4));
    }

    /// The longest-prefix on-link route (no gateway) that holds `addr`. Linux
    /// looks gateways up among routes of link scope, which reject routes are not.
    /// Linux looks in the route's own table first, then (its full lookup) in
    /// the main one.
    fn onlink_route(&self, addr: IpAddr, dev: Option<u32>, table: u32) -> Option<&Route> {
        self.onlink_route_in(addr, dev, table)
            .or_else(|| self.onlink_route_in(addr, dev, MAIN_TABLE))
    }

    /// [`Self::onlink_route`] in one table.
    fn onlink_route_in(&self, addr: IpAddr, dev: Option<u32>, table: u32) -> Option<&Route> {
        let mut best: Option<&Route> = None;
        for r in self.routes.iter().filter(|r| r.table == table) {
            if r.via.is_none()
                && !r.universe
                && r.kind == RouteType::Unicast
                && dev.is_none_or(|d| d == r.dev)
                && in_prefix(addr, r.dst, r.prefix_len)
                && best.is_none_or(|b| r.prefix_len > b.prefix_len)
            {
                best = Some(r);
            }
        }
        best
    }

    /// Checks an IPv4 gateway the way Linux does (the local table first, then
    /// on-link routes of the main table) and returns the link it is reached on.
    fn resolve_gw_v4(&self, gw: Ipv4Addr, dev: Option<u32>, table: u32) -> Result<u32, CmdError> {
        let invalid = || kernel("Nexthop has invalid gateway.");
        let wanted = |d: u32| dev.is_none_or(|x| x == d);
        // (prefix length, link, is a broadcast entry)
        let mut local: Option<(u8, u32, bool)> = None;
        let mut consider = |cand: (u8, u32, bool)| {
            if local.is_none_or(|l| cand.0 > l.0) {
                local = Some(cand);
            }
        };
        for l in self.links.iter().filter(|l| wanted(l.index)) {
            for a in l.addrs.iter().filter(|a| a.addr.is_ipv4()) {
                if a.addr == IpAddr::V4(gw) {
                    consider((32, l.index, false));
                }
            }
            if l.kind == LinkKind::Loopback {
                if let Some(p) = self.lo_prefix_of(IpAddr::V4(gw)) {
                    consider((p.prefix_len, l.index, false));
                }
            }
            if self.is_v4_broadcast(l.index, gw) {
                consider((32, l.index, true));
            }
        }
        if let Some((_, d, broadcast)) = local {
            if broadcast {
                return Err(invalid());
            }
            if !self.is_up(d) {
                return Err(rtnl("Network is down"));
            }
            return Ok(d);
        }
        self.onlink_route(IpAddr::V4(gw), dev, table)
            .map(|r| r.dev)
            .ok_or_else(invalid)
    }

    /// The longest-prefix IPv6 route holding `addr` (lowest metric on a tie), only
    /// through `dev` if given.
    /// Looks in `table` first, then in the main table, as Linux's nexthop
    /// checks do.
    fn lpm_v6(&self, addr: Ipv6Addr, dev: Option<u32>, table: u32) -> Option<&Route> {
        self.lpm_v6_in(addr, dev, table)
            .or_else(|| self.lpm_v6_in(addr, dev, MAIN_TABLE))
    }

    /// [`Self::lpm_v6`] in one table.
    fn lpm_v6_in(&self, addr: Ipv6Addr, dev: Option<u32>, table: u32) -> Option<&Route> {
        let mut best: Option<&Route> = None;
        for r in self.routes.iter().filter(|r| r.table == table) {
            if dev.is_none_or(|d| d == r.dev)
                && in_prefix(IpAddr::V6(addr), r.dst, r.prefix_len)
                && best.is_none_or(|b| r.prefix_len > b.prefix_len)
            {
                best = Some(r);
            }
        }
        best
    }

    /// Checks an IPv6 gateway the way Linux does and returns its link: a local
    /// gateway is refused; a link-local one needs the device named; any other must
    /// be on-link, found in the main table (or, failing that, the local table).
    fn resolve_gw_v6(&self, gw: Ipv6Addr, dev: Option<u32>, table: u32) -> Result<u32, CmdError> {
        let link_local = gw.segments()[0] & 0xffc0 == 0xfe80;
        // A link-local gateway only clashes with the egress device's addresses.
        let is_own = |d: u32| {
            if link_local {
                let l = self.link(d);
                l.up && l.addrs.iter().any(|a| a.addr == IpAddr::V6(gw))
            } else {
                self.is_assigned(IpAddr::V6(gw))
            }
        };
        let own = || kernel("Gateway can not be a local address.");
        if dev.is_some_and(is_own) {
            return Err(own());
        }
        let mut egress = dev;
        if !link_local {
            if gw.is_multicast() || gw.is_unspecified() {
                return Err(kernel("Invalid gateway address."));
            }
            // Linux turns IPv6 routes through lo into reject routes: no gateway
            // is reachable through them.
            let onlink = |r: &&Route| r.via.is_none() && !self.is_lo(r.dev);
            match self.lpm_v6(gw, dev, table).filter(onlink) {
                Some(r) => egress = Some(r.dev),
                _ => {
                    // The full lookup: the local table first.
                    let local = self
                        .links
                        .iter()
                        .find(|l| l.up && l.addrs.iter().any(|a| a.addr == IpAddr::V6(gw)));
                    let found = match local {
                        Some(l) => Some(l.index),
                        None => self.lpm_v6(gw, None, table).filter(onlink).map(|r| r.dev),
                    };
                    match found {
                        Some(d) if dev.is_none_or(|x| x == d) => egress = Some(d),
                        _ => return Err(rtnl("No route to host")),
                    }
                }
            }
        }
        let d = egress.ok_or_else(|| kernel("Egress device not specified."))?;
        if self.is_lo(d) {
            return Err(kernel(
                "Egress device can not be loopback device for this route.",
            ));
        }
        if dev.is_none() && is_own(d) {
            return Err(own());
        }
        Ok(d)
    }

    /// Linux creates its IPv4 main table for an `ip route add|replace` whose
    /// prefix is valid before it looks at the nexthop, so even a refused route
    /// leaves the table behind (and later deletes and flushes find it); so
    /// too any other table named (IPv6's main table always exists).
    pub(crate) fn create_table_for(&mut self, req: &RouteReq) {
        if req.dst.is_ipv4() && req.check_prefix().is_err() {
            return;
        }
        if req.table == MAIN_TABLE {
            self.v4_table |= req.dst.is_ipv4();
        } else if !self.other_tables.contains(&(req.dst.is_ipv6(), req.table)) {
            self.other_tables.push((req.dst.is_ipv6(), req.table));
        }
    }

    /// Whether Linux has the table of this family: IPv6's main and local
    /// tables always, IPv4's main table once created, the others once a route
    /// was added to them.
    pub(crate) fn table_exists(&self, ipv6: bool, table: u32) -> bool {
        match table {
            MAIN_TABLE => ipv6 || self.v4_table,
            LOCAL_TABLE => ipv6 || self.v4_table,
            _ => self.other_tables.contains(&(ipv6, table)),
        }
    }

    /// The check step of `ip route add|replace|change|prepend|append|test`:
    /// Linux's checks of the destination, the nexthop and the source, then of
    /// the routes to the same prefix with the same metric (what `mode` does with
    /// them, [`State::place_v4`] and [`State::place_v6`]) and of the route limit.
    /// Returns the change to make.
    pub(crate) fn check_route_add(
        &self,
        req: &RouteReq,
        mode: RouteMode,
    ) -> Result<RouteAdd, CmdError> {
        let mut via = req.via.filter(|g| !g.is_unspecified());
        let given = req.metric.unwrap_or(0);
        let (dst, dev, metric) = match req.dst {
            IpAddr::V4(_) => {
                req.check_prefix()?;
                let dev = match req.kind {
                    k if k.rejects() => self.check_reject_v4(req, via)?,
                    RouteType::Local => self.check_host_scope_v4(req, via)?,
                    RouteType::Unicast => self.check_nexthop_v4(req, via)?,
                    // Broadcast, anycast, multicast: scope link, where no
                    // gateway is reachable.
                    _ if via.is_some() => return Err(kernel("Nexthop has invalid gateway.")),
                    _ => self.check_nexthop_v4(req, via)?,
                };
                (req.dst, dev, given)
            }
            IpAddr::V6(_) => {
                let dev = if req.kind.rejects() {
                    // Linux puts IPv6 reject routes on lo, whatever was given.
                    via = None;
                    self.check_reject_v6(req)?
                } else {
                    self.check_nexthop_v6(req, via)?
                };
                let metric = if given == 0 { IPV6_USER_METRIC } else { given };
                (network(req.dst, req.prefix_len), dev, metric)
            }
        };
        let route = Route {
            kind: req.kind,
            dst,
            prefix_len: req.prefix_len,
            via,
            dev,
            proto: req
                .proto
                .map_or(RouteProto::Boot, |n| RouteProto::added_as(n as u8)),
            src: req.src,
            metric,
            weight: req.weight,
            group: 0,
            universe: req.universe && via.is_none(),
            table: req.table,
        };
        let place = match dst {
            IpAddr::V4(_) => self.place_v4(&route, mode)?,
            IpAddr::V6(_) => self.place_v6(&route, mode)?,
        };
        let extra = match place {
            RoutePlace::Replaces(i) => usize::from(self.routes[i].proto == RouteProto::Kernel),
            RoutePlace::Sorted | RoutePlace::At(_) => 1,
        };
        self.check_route_limit(extra)?;
        let expires = req
            .expires
            .filter(|&n| dst.is_ipv6() && n != 0 && n != u32::MAX);
        Ok(RouteAdd {
            route,
            place,
            expires,
        })
    }

    /// The indexes of the routes to the same prefix with the same metric as
    /// `route` (Linux's IPv4 aliases of the same priority, or IPv6 routes of a
    /// fib6 node with the same metric), in table order.
    fn same_slot(&self, route: &Route) -> Vec<usize> {
        (0..self.routes.len())
            .filter(|&i| {
                let r = &self.routes[i];
                r.dst == route.dst
                    && r.prefix_len == route.prefix_len
                    && r.metric == route.metric
                    && r.table == route.table
            })
            .collect()
    }

    /// Where IPv4's `fib_table_insert` puts a route: a route with the same
    /// prefix and metric is an error for `add` and `test`, the one overwritten
    /// by `replace` and `change`, and the neighbour of one made by `prepend`
    /// (before the first) or `append` (after the last); a route identical to
    /// one of them (same nexthop, source and protocol) is refused by all but a
    /// `replace` of the first, which changes nothing.
    fn place_v4(&self, route: &Route, mode: RouteMode) -> Result<RoutePlace, CmdError> {
        let slot = self.same_slot(route);
        let (Some(&first), Some(&last)) = (slot.first(), slot.last()) else {
            return if mode.creates() {
                Ok(RoutePlace::Sorted)
            } else {
                Err(rtnl("No such file or directory"))
            };
        };
        if mode.exclusive() {
            return Err(rtnl("File exists"));
        }
        let identical = slot.iter().copied().find(|&i| {
            let r = &self.routes[i];
            (r.kind, r.via, r.dev, r.src, r.proto)
                == (route.kind, route.via, route.dev, route.src, route.proto)
        });
        match (mode, identical) {
            (RouteMode::Replace | RouteMode::Change, Some(i)) if i != first => {
                Err(rtnl("File exists"))
            }
            (RouteMode::Replace | RouteMode::Change, _) => Ok(RoutePlace::Replaces(first)),
            (_, Some(_)) => Err(rtnl("File exists")),
            (RouteMode::Prepend, None) => Ok(RoutePlace::At(first)),
            (_, None) => Ok(RoutePlace::At(last + 1)),
        }
    }

    /// Where IPv6's `fib6_add_rt2node` puts a route: after the routes with the
    /// same prefix and a metric no higher. A route with the same metric is an
    /// error for `add` and `test`; `replace` and `change` overwrite the first
    /// one that has a gateway if the new one has one, or none if not, or else the
    /// first (`change` finding none is an error), and with it the other nexthops
    /// of its multipath route; `prepend` and `append` refuse one with the same
    /// nexthop, and add the route after the others (one through a gateway is
    /// then one more nexthop of the multipath route of those through a gateway).
    fn place_v6(&self, route: &Route, mode: RouteMode) -> Result<RoutePlace, CmdError> {
        let slot = self.same_slot(route);
        if slot.is_empty() {
            // Without the create flag, IPv6 only warns (in the kernel log).
            return if mode == RouteMode::Change {
                Err(kernel("Can not replace route - no match found."))
            } else {
                Ok(RoutePlace::Sorted)
            };
        }
        if mode.exclusive() {
            return Err(rtnl("File exists"));
        }
        if mode.replaces() {
            let alike = slot
                .iter()
                .copied()
                .find(|&i| self.routes[i].via.is_some() == route.via.is_some());
            return Ok(RoutePlace::Replaces(alike.unwrap_or(slot[0])));
        }
        if slot
            .iter()
            .any(|&i| (self.routes[i].via, self.routes[i].dev) == (route.via, route.dev))
        {
            return Err(rtnl("File exists"));
        }
        Ok(RoutePlace::Sorted)
    }

    /// The link an IPv4 route goes out of, and Linux's checks of its source.
    fn check_nexthop_v4(&self, req: &RouteReq, via: Option<IpAddr>) -> Result<u32, CmdError> {
        let dev = match (via, req.dev) {
            (None, None) => return Err(rtnl("No such device")),
            (Some(IpAddr::V4(gw)), dev) => self.resolve_gw_v4(gw, dev, req.table)?,
            (Some(IpAddr::V6(gw)), dev) => {
                // An IPv6 gateway (RFC 5549), checked as an IPv6 route's.
                let d = self.resolve_gw_v6(gw, dev, req.table)?;
                if !self.is_up(d) {
                    return Err(kernel("Nexthop device is not up."));
                }
                d
            }
            (None, Some(d)) => {
                if self.is_lo(d) && self.link(d).mtu < IPV4_MIN_MTU {
                    // No IPv4 on the device at all.
                    return Err(rtnl("No such device"));
                }
                if !self.is_up(d) {
                    return Err(kernel("Device for nexthop is not up."));
                }
                d
            }
        };
        if req.src.is_some_and(|s| !self.is_local(s)) {
            return Err(kernel("Invalid prefsrc address."));
        }
        Ok(dev)
    }

    /// Linux's checks of an IPv4 reject route: no gateway, no device (its
    /// source is not checked). Its link, as the model keeps it: `lo`.
    fn check_reject_v4(&self, req: &RouteReq, via: Option<IpAddr>) -> Result<u32, CmdError> {
        if via.is_some() || req.dev.is_some() {
            return Err(kernel(
                "Gateway, device and multipath can not be specified for this route type.",
            ));
        }
        Ok(self.lo_index())
    }

    /// Linux's checks of an IPv4 route of host scope (`local`): no gateway,
    /// a device that exists, up or not.
    fn check_host_scope_v4(&self, req: &RouteReq, via: Option<IpAddr>) -> Result<u32, CmdError> {
        if via.is_some() {
            return Err(kernel("Route with host scope can not have a gateway."));
        }
        let dev = req.dev.ok_or_else(|| rtnl("No such device"))?;
        if req.src.is_some_and(|s| !self.is_local(s)) {
            return Err(kernel("Invalid prefsrc address."));
        }
        Ok(dev)
    }

    /// Linux's checks of an IPv6 reject route: a device named must have IPv6
    /// (the route goes on `lo` all the same; a gateway is ignored), and the
    /// source must be the stack's.
    fn check_reject_v6(&self, req: &RouteReq) -> Result<u32, CmdError> {
        if req.dev.is_some_and(|d| self.ipv6_disabled(d)) {
            return Err(rtnl("No such device"));
        }
        self.check_src_v6(req)?;
        Ok(self.lo_index())
    }

    /// The index of `lo`, where reject routes are kept.
    pub(super) fn lo_index(&self) -> u32 {
        self.links
            .iter()
            .find(|l| l.kind == LinkKind::Loopback)
            .map_or(1, |l| l.index)
    }

    /// The link an IPv6 route goes out of, and Linux's checks of its source.
    fn check_nexthop_v6(&self, req: &RouteReq, via: Option<IpAddr>) -> Result<u32, CmdError> {
        if req.dev.is_some_and(|d| self.ipv6_disabled(d)) {
            return Err(rtnl("No such device"));
        }
        let dev = match (via, req.dev) {
            (None, None) => return Err(rtnl("No such device")),
            (Some(IpAddr::V6(gw)), dev) => {
                let d = self.resolve_gw_v6(gw, dev, req.table)?;
                if !self.is_up(d) {
                    return Err(kernel("Nexthop device is not up."));
                }
                d
            }
            (Some(IpAddr::V4(_)), _) => {
                return Err(kernel("IPv6 does not support RTA_VIA attribute."))
            }
            (None, Some(d)) => {
                if !self.is_up(d) {
                    return Err(kernel("Nexthop device is not up."));
                }
                d
            }
        };
        self.check_src_v6(req)?;
        Ok(dev)
    }

    /// Linux's check of an IPv6 route's preferred source.
    fn check_src_v6(&self, req: &RouteReq) -> Result<(), CmdError> {
        if let Some(src) = req.src {
            // A global source may sit on any up link; one of link or host
            // scope (fe80::/10, ::1) only on the route's own device.
            let scoped =
                matches!(src, IpAddr::V6(v6) if v6.is_unicast_link_local() || v6.is_loopback());
            let ok = self.links.iter().any(|l| {
                l.up && (!scoped || req.dev.is_none_or(|d| d == l.index))
                    && l.addrs
                        .iter()
                        .any(|a| a.addr == src && self.is_usable(l.index, a))
            });
            if !ok {
                return Err(kernel("Invalid source address."));
            }
        }
        Ok(())
    }

    /// The apply step of `ip route add|replace|change|prepend|append|test`.
    pub(crate) fn apply_route_add(&mut self, add: RouteAdd) {
        // A route added or replaced without `expires` never expires, as on Linux.
        self.set_route_extras(&add.route, add.expires, (None, None), RoutePref::Medium);
        match add.place {
            RoutePlace::Sorted => self.insert_route(add.route),
            RoutePlace::Replaces(i) => {
                // The other nexthops of a multipath route go with it.
                let group = self.group_of(i);
                self.routes[i] = add.route;
                for &j in group.iter().rev().filter(|&&j| j != i) {
                    self.routes.remove(j);
                }
            }
            RoutePlace::At(i) => self.routes.insert(i, add.route),
        }
    }

    /// `ip route add|replace|... PREFIX nexthop via GW [dev DEV] [weight N]
    /// nexthop ...` for IPv4: one route of several nexthops (Linux's
    /// `fib_info` with its nexthops), placed where the route of its first
    /// nexthop alone would go (`replace` overwrites a route and all its
    /// nexthops), its nexthops checked as a route's gateway is, all or none.
    pub(crate) fn add_multipath_v4(
        &mut self,
        req: &RouteReq,
        mode: RouteMode,
    ) -> Result<(), CmdError> {
        let first = RouteReq {
            more_nexthops: Vec::new(),
            ..req.clone()
        };
        let mut add = self.check_route_add(&first, mode)?;
        let mut hops = vec![add.route];
        for &(gw, dev, weight) in &req.more_nexthops {
            let one = RouteReq {
                via: gw,
                dev,
                more_nexthops: Vec::new(),
                ..req.clone()
            };
            let dev = self.check_nexthop_v4(&one, gw)?;
            hops.push(Route {
                via: gw,
                dev,
                weight,
                universe: gw.is_none(),
                ..add.route
            });
        }
        self.check_route_limit(hops.len())?;
        let group = self.routes.iter().map(|r| r.group).max().unwrap_or(0) + 1;
        for hop in &mut hops {
            hop.group = group;
        }
        add.route = hops[0];
        self.apply_route_add(add);
        let at = self
            .routes
            .iter()
            .position(|r| r.group == group)
            .unwrap_or(self.routes.len());
        for (k, hop) in hops[1..].iter().enumerate() {
            self.routes.insert(at + 1 + k, *hop);
        }
        Ok(())
    }

    /// The check step of `ip route del`: the first route (in table order) that
    /// matches what was given, or Linux's refusal.
    pub(crate) fn check_route_del(&self, req: &RouteReq) -> Result<RouteDel, CmdError> {
        let dst = match req.dst {
            IpAddr::V4(_) => {
                req.check_prefix()?;
                req.dst
            }
            IpAddr::V6(_) => network(req.dst, req.prefix_len),
        };
        if !self.table_exists(dst.is_ipv6(), req.table) {
            return Err(kernel("FIB table does not exist."));
        }
        let via = req.via.filter(|g| !g.is_unspecified());
        let same_prefix = |r: &&Route| r.dst == dst && r.prefix_len == req.prefix_len;
        // IPv4 matches a type given (the model reads none as unicast), IPv6
        // ignores it.
        let kind_matches =
            |r: &Route| dst.is_ipv6() || req.kind == RouteType::Unicast || req.kind == r.kind;
        // An IPv4 multipath route matches by its first nexthop, as Linux's
        // `fib_nh_match` compares a gateway or device given with that one.
        let later_nexthop = |i: usize| {
            let r = &self.routes[i];
            r.dst.is_ipv4() && r.group != 0 && i > 0 && self.routes[i - 1].group == r.group
        };
        let matches = |r: &Route| {
            r.table == req.table
                && same_prefix(&r)
                && kind_matches(r)
                && via.is_none_or(|g| r.via == Some(g))
                && req.dev.is_none_or(|d| Some(d) == r.device())
                && req.src.is_none_or(|s| r.src == Some(s))
                && req.metric.filter(|&m| m != 0).is_none_or(|m| r.metric == m)
                // Protocol 0 (`unspec`) matches any, as to the kernel.
                && req.proto.filter(|&p| p != 0).is_none_or(|p| p == r.proto.number())
        };
        let found = (0..self.routes.len()).find(|&i| !later_nexthop(i) && matches(&self.routes[i]));
        // Then the kernel's own entries of the local table, which Linux
        // deletes as any other (the address stays).
        if found.is_none() {
            if let Some(entry) = self.find_local_entry(matches) {
                return Ok(RouteDel {
                    at: Vec::new(),
                    local: Some(entry),
                });
            }
        }
        let Some(at) = found else {
            // Linux's IPv6 tree keeps a "null" entry (through lo) at ::/0 while there
            // is no default route; a request that matches it gets ENOENT.
            let lo = self.links.iter().find(|l| l.kind == LinkKind::Loopback);
            let null_entry = dst.is_ipv6()
                && req.prefix_len == 0
                && via.is_none()
                && req.dev.is_none_or(|d| lo.is_some_and(|lo| lo.index == d))
                && !self.routes.iter().any(|r| same_prefix(&r));
            return Err(rtnl(if null_entry {
                "No such file or directory"
            } else {
                "No such process"
            }));
        };
        // Without a gateway, IPv6 deletes every nexthop of a multipath route;
        // IPv4 deletes the route, all its nexthops.
        let at = if dst.is_ipv4() || via.is_none() {
            self.group_of(at)
        } else {
            vec![at]
        };
        Ok(RouteDel { at, local: None })
    }

    /// The apply step of `ip route del`.
    pub(crate) fn apply_route_del(&mut self, del: RouteDel) {
        for &i in del.at.iter().rev() {
            self.routes.remove(i);
        }
        if let Some(entry) = del.local {
            self.delete_local_entries(&[entry]);
        }
    }

    /// The check step of `ip route flush|show` for a family and a table
    /// (`None`: all): Linux cannot dump a table it has not created yet.
    /// `flush`: the error ends a flush, not a dump.
    pub(crate) fn check_route_dump(
        &self,
        ipv6: bool,
        table: Option<u32>,
        flush: bool,
    ) -> Result<(), CmdError> {
        if table.is_some_and(|t| !self.table_exists(ipv6, t)) {
            let family = if ipv6 { "ipv6" } else { "ipv4" };
            let what = if flush { "Flush" } else { "Dump" };
            return Err(CmdError::new(
                2,
                format!("Error: {family}: FIB table does not exist.\n{what} terminated"),
            ));
        }
        Ok(())
    }

    /// The apply step of `ip route flush`: every route the selector selects goes.
    pub(crate) fn flush_routes(&mut self, selected: impl Fn(&Route) -> bool) {
        self.remove_routes(|r| !selected(r));
    }
}
