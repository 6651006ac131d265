//! Lifetimes: what an address or a route that does not last forever has beyond
//! itself. An address from stateless autoconfiguration (RFC 4862), or one
//! given `valid_lft`/`preferred_lft`, stays valid and preferred for so long
//! (`dynamic`, `deprecated` once no longer preferred, gone at the end); a
//! route a router advertised (`proto ra`, or the on-link prefix's `proto
//! kernel` route) expires, and shows the hop limit and preference the router
//! gave.
//!
//! Linux keeps these in the address and the route themselves; here they are
//! side records keyed by the address or route they belong to, as broadcasts
//! and labels are, so that the rest of the model, which compares addresses and
//! routes whole, is unchanged. A record whose address or route went is dropped
//! after each change ([`State::prune_lifetimes`]). Time is the model's clock
//! (`State::now`), which its caller sets: the model reads no clock.
//!
//! Owns the records, the rules of RFC 4862 5.5.3 for a prefix advertised again
//! (the two-hour rule), and expiry.

use super::links::eui64_address;
use super::routes::prefix_route;
use super::{AddrAttrs, AddrReq, IfAddr, Route, RouteProto, State};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// A lifetime in seconds; `None` is forever (0xffffffff on the wire and in
/// netlink).
pub(crate) type Lifetime = Option<u32>;

/// RFC 4862 5.5.3 e: an advertisement cannot bring a valid lifetime below two
/// hours (against a forged one that would end an address at once).
const TWO_HOURS: u32 = 2 * 60 * 60;

/// The metric of a router's default route (`IP6_RT_PRIO_USER`, as Linux gives
/// it to `proto ra` routes).
const RA_DEFAULT_METRIC: u32 = 1024;

/// The lifetimes of an address that has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AddrLifetimes {
    pub(super) dev: u32,
    pub(super) addr: IpAddr,
    pub(super) prefix_len: u8,
    /// When the lifetimes were last set, on the model's clock.
    set_at: Duration,
    valid: Lifetime,
    preferred: Lifetime,
    /// `mngtmpaddr`: made by SLAAC (Linux sets it on those even with
    /// temporary addresses off).
    mngtmpaddr: bool,
    /// Under duplicate address detection, or failed it (`dadfailed`): not
    /// used (see `dad.rs`).
    pub(super) tentative: bool,
    /// Another node has the address: it stays tentative for good.
    pub(super) dadfailed: bool,
    /// Added with `nodad`: never tentative.
    pub(super) nodad: bool,
}

/// A router's preference for its default route (RFC 4191): `pref` in `ip -6
/// route`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum RoutePref {
    /// `pref low`.
    Low,
    /// `pref medium`: every route without another.
    #[default]
    Medium,
    /// `pref high`.
    High,
}

impl RoutePref {
    /// The word iproute2 prints.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RoutePref::Low => "low",
            RoutePref::Medium => "medium",
            RoutePref::High => "high",
        }
    }
}

/// What a route has beyond [`Route`]: when it expires, the hop limit a router
/// advertised, its preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RouteExtras {
    dev: u32,
    dst: IpAddr,
    prefix_len: u8,
    metric: u32,
    via: Option<IpAddr>,
    table: u32,
    set_at: Duration,
    expires: Lifetime,
    /// The MTU an advertisement gave (RTAX_MTU).
    mtu: Option<u32>,
    hoplimit: Option<u8>,
    pref: RoutePref,
}

impl RouteExtras {
    fn of(&self, r: &Route) -> bool {
        (
            self.dev,
            self.dst,
            self.prefix_len,
            self.metric,
            self.via,
            self.table,
        ) == (r.dev, r.dst, r.prefix_len, r.metric, r.via, r.table)
    }
}

impl AddrLifetimes {
    /// The record of a permanent address (no lifetimes), for its flags alone.
    pub(super) fn permanent(dev: u32, a: IfAddr, now: Duration) -> AddrLifetimes {
        AddrLifetimes {
            dev,
            addr: a.addr,
            prefix_len: a.prefix_len,
            set_at: now,
            valid: None,
            preferred: None,
            mngtmpaddr: false,
            tentative: false,
            dadfailed: false,
            nodad: false,
        }
    }
}

/// What `ip addr show` prints of an address's lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddrTimes {
    /// Seconds left valid (`None`: forever).
    pub(crate) valid_left: Lifetime,
    /// Seconds left preferred (`None`: forever).
    pub(crate) preferred_left: Lifetime,
    /// Not permanent: `dynamic`.
    pub(crate) dynamic: bool,
    /// `mngtmpaddr`.
    pub(crate) mngtmpaddr: bool,
    /// No longer preferred: `deprecated`.
    pub(crate) deprecated: bool,
    /// Under duplicate address detection, or failed it: `tentative`.
    pub(crate) tentative: bool,
    /// Failed it: `dadfailed`.
    pub(crate) dadfailed: bool,
    /// `nodad`.
    pub(crate) nodad: bool,
}

/// What `ip route show` prints of a route's extras.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouteTimes {
    /// Seconds until it expires, if it does.
    pub(crate) expires_left: Option<u32>,
    /// `mtu N`.
    pub(crate) mtu: Option<u32>,
    /// `hoplimit N`.
    pub(crate) hoplimit: Option<u8>,
    /// `pref`.
    pub(crate) pref: RoutePref,
}

/// Seconds left of `lifetime` set at `set_at`, at `now`: Linux counts whole
/// seconds elapsed.
fn left(lifetime: Lifetime, set_at: Duration, now: Duration) -> Lifetime {
    let elapsed = now.saturating_sub(set_at).as_secs();
    lifetime.map(|l| u32::try_from(u64::from(l).saturating_sub(elapsed)).unwrap_or(0))
}

/// When `lifetime` set at `set_at` runs out, if it does.
fn deadline(lifetime: Lifetime, set_at: Duration) -> Option<Duration> {
    lifetime.map(|l| set_at + Duration::from_secs(l.into()))
}

impl State {
    /// The lifetimes of an address, as `ip addr show` prints them: forever
    /// and permanent for an address without a record.
    pub(crate) fn addr_times(&self, dev: u32, a: &IfAddr) -> AddrTimes {
        let record = self
            .lifetimes
            .iter()
            .find(|l| l.dev == dev && l.addr == a.addr && l.prefix_len == a.prefix_len);
        let Some(l) = record else {
            return AddrTimes {
                valid_left: None,
                preferred_left: None,
                dynamic: false,
                mngtmpaddr: false,
                deprecated: false,
                tentative: false,
                dadfailed: false,
                nodad: false,
            };
        };
        let preferred_left = left(l.preferred, l.set_at, self.now);
        AddrTimes {
            valid_left: left(l.valid, l.set_at, self.now),
            preferred_left,
            dynamic: l.valid.is_some(),
            mngtmpaddr: l.mngtmpaddr,
            deprecated: preferred_left == Some(0),
            tentative: l.tentative,
            dadfailed: l.dadfailed,
            nodad: l.nodad,
        }
    }

    /// A route's extras, as `ip route show` prints them: nothing for a route
    /// without a record (`pref medium` for IPv6).
    pub(crate) fn route_times(&self, r: &Route) -> RouteTimes {
        match self.route_extras.iter().find(|e| e.of(r)) {
            Some(e) => RouteTimes {
                expires_left: deadline(e.expires, e.set_at)
                    .map(|at| u32::try_from(at.saturating_sub(self.now).as_secs()).unwrap_or(0)),
                mtu: e.mtu,
                hoplimit: e.hoplimit,
                pref: e.pref,
            },
            None => RouteTimes {
                expires_left: None,
                mtu: None,
                hoplimit: None,
                pref: RoutePref::Medium,
            },
        }
    }

    /// Gives an address lifetimes from now (`ip addr add ... valid_lft N
    /// preferred_lft N`); both forever make it permanent again. An address
    /// under duplicate address detection stays so.
    pub(super) fn set_addr_lifetimes(
        &mut self,
        dev: u32,
        a: IfAddr,
        valid: Lifetime,
        preferred: Lifetime,
        mngtmpaddr: bool,
    ) {
        let same =
            |l: &AddrLifetimes| l.dev == dev && l.addr == a.addr && l.prefix_len == a.prefix_len;
        let flags = |l: &AddrLifetimes| (l.tentative, l.dadfailed, l.nodad);
        let (tentative, dadfailed, nodad) = self
            .lifetimes
            .iter()
            .find(|l| same(l))
            .map_or((false, false, false), flags);
        self.lifetimes.retain(|l| !same(l));
        if valid.is_none() && preferred.is_none() && !mngtmpaddr && !tentative && !nodad {
            return;
        }
        self.lifetimes.push(AddrLifetimes {
            dev,
            addr: a.addr,
            prefix_len: a.prefix_len,
            set_at: self.now,
            valid,
            preferred,
            mngtmpaddr,
            tentative,
            dadfailed,
            nodad,
        });
    }

    /// The addresses under duplicate address detection.
    pub(super) fn tentative(&self) -> impl Iterator<Item = (u32, IpAddr)> + '_ {
        self.lifetimes
            .iter()
            .filter(|l| l.tentative && !l.dadfailed)
            .map(|l| (l.dev, l.addr))
    }

    /// Duplicate address detection of `addr` on `dev` ended: the address is
    /// used from now on, or (`duplicate`) stays tentative for good
    /// (`dadfailed`) if permanent, or is removed, as Linux removes an address
    /// that is not permanent; a router's prefix route stays.
    pub(super) fn end_dad(&mut self, dev: u32, addr: IpAddr, duplicate: bool) {
        let Some(i) = self
            .lifetimes
            .iter()
            .position(|l| l.dev == dev && l.addr == addr && l.tentative && !l.dadfailed)
        else {
            return;
        };
        if !duplicate {
            self.lifetimes[i].tentative = false;
            return;
        }
        if self.lifetimes[i].valid.is_none() {
            self.lifetimes[i].dadfailed = true;
            return;
        }
        let IpAddr::V6(v6) = addr else { return };
        let prefix_len = self.lifetimes[i].prefix_len;
        let kept: Vec<(Route, RouteExtras)> = self
            .routes
            .iter()
            .filter_map(|r| Some((*r, *self.route_extras.iter().find(|e| e.of(r))?)))
            .collect();
        let req = AddrReq::DelV6 {
            dev,
            addr: v6,
            prefix_len,
        };
        if let Ok(change) = self.check_addr(&req) {
            self.apply_addr(change);
        }
        for (route, extras) in kept {
            if !self.routes.contains(&route) {
                self.insert_route(route);
                self.route_extras.push(extras);
            }
        }
    }

    /// `ip addr add|replace|change ... valid_lft N preferred_lft N
    /// [mngtmpaddr]`: the address the request names takes these lifetimes
    /// from now.
    pub(crate) fn set_requested_lifetimes(
        &mut self,
        req: &AddrReq,
        valid: Lifetime,
        preferred: Lifetime,
        mngtmpaddr: bool,
    ) {
        let (dev, addr, prefix_len) = match *req {
            AddrReq::AddV4 {
                dev,
                addr,
                prefix_len,
                ..
            } => (dev, IpAddr::V4(addr), Some(prefix_len)),
            // An IPv6 address is one per link, whatever its length.
            AddrReq::AddV6 { dev, addr, .. } => (dev, IpAddr::V6(addr), None),
            _ => return,
        };
        let found = self
            .link(dev)
            .addrs
            .iter()
            .find(|a| a.addr == addr && prefix_len.is_none_or(|p| p == a.prefix_len))
            .copied();
        if let Some(a) = found {
            self.set_addr_lifetimes(dev, a, valid, preferred, mngtmpaddr && addr.is_ipv6());
        }
    }

    /// Gives a route an expiry, a hop limit, an MTU and a preference, from now.
    pub(super) fn set_route_extras(
        &mut self,
        r: &Route,
        expires: Lifetime,
        (hoplimit, mtu): (Option<u8>, Option<u32>),
        pref: RoutePref,
    ) {
        self.route_extras.retain(|e| !e.of(r));
        if expires.is_none() && hoplimit.is_none() && mtu.is_none() && pref == RoutePref::Medium {
            return;
        }
        self.route_extras.push(RouteExtras {
            dev: r.dev,
            dst: r.dst,
            prefix_len: r.prefix_len,
            metric: r.metric,
            via: r.via,
            table: r.table,
            set_at: self.now,
            expires,
            mtu,
            hoplimit,
            pref,
        });
    }

    /// Drops the records whose address or route is gone.
    pub(super) fn prune_lifetimes(&mut self) {
        let links = &self.links;
        self.lifetimes.retain(|l| {
            links.iter().any(|link| {
                link.index == l.dev
                    && link
                        .addrs
                        .iter()
                        .any(|a| a.addr == l.addr && a.prefix_len == l.prefix_len)
            })
        });
        let routes = &self.routes;
        self.route_extras.retain(|e| routes.iter().any(|r| e.of(r)));
    }

    /// When the next address or route runs out of valid lifetime.
    pub(super) fn next_expiry(&self) -> Option<Duration> {
        let addrs = self.lifetimes.iter().map(|l| deadline(l.valid, l.set_at));
        let routes = self
            .route_extras
            .iter()
            .map(|e| deadline(e.expires, e.set_at));
        addrs.chain(routes).flatten().min()
    }

    /// Removes the addresses and routes whose lifetime ran out by now, with
    /// the side effects deleting them has.
    pub(super) fn expire(&mut self) {
        let now = self.now;
        let gone: Vec<AddrLifetimes> = self
            .lifetimes
            .iter()
            .filter(|l| deadline(l.valid, l.set_at).is_some_and(|at| at <= now))
            .copied()
            .collect();
        for l in gone {
            let req = match l.addr {
                IpAddr::V4(addr) => AddrReq::DelV4 {
                    dev: l.dev,
                    addr,
                    prefix_len: Some(l.prefix_len),
                },
                IpAddr::V6(addr) => AddrReq::DelV6 {
                    dev: l.dev,
                    addr,
                    prefix_len: l.prefix_len,
                },
            };
            if let Ok(change) = self.check_addr(&req) {
                self.apply_addr(change);
            }
        }
        let expired: Vec<RouteExtras> = self
            .route_extras
            .iter()
            .filter(|e| deadline(e.expires, e.set_at).is_some_and(|at| at <= now))
            .copied()
            .collect();
        for e in expired {
            self.remove_routes(|r| !e.of(r));
        }
        self.prune_lifetimes();
    }

    /// A Prefix Information option with the autonomous flag, for a /64
    /// `prefix` on link `dev` (RFC 4862 5.5.3 d, e): the address made of the
    /// prefix and the link's EUI-64 is created (valid lifetime not 0) or has
    /// its lifetimes refreshed, the valid one never brought below two hours
    /// by an advertisement. An address the link already has without
    /// lifetimes (added by hand) is left as it is.
    pub(super) fn autoconf(
        &mut self,
        dev: u32,
        prefix: Ipv6Addr,
        valid: Lifetime,
        preferred: Lifetime,
    ) {
        if !self.is_up(dev) {
            return;
        }
        let a = IfAddr {
            addr: IpAddr::V6(eui64_address(prefix, self.link(dev).mac)),
            prefix_len: 64,
        };
        let known = self
            .lifetimes
            .iter()
            .find(|l| l.dev == dev && l.addr == a.addr && l.prefix_len == 64)
            .copied();
        if let Some(old) = known {
            let remaining = left(old.valid, old.set_at, self.now);
            let valid = match (valid, remaining) {
                (None, _) => None,
                (Some(v), _) if v > TWO_HOURS => Some(v),
                (Some(v), Some(r)) if v > r => Some(v),
                (_, Some(r)) if r <= TWO_HOURS => Some(r),
                _ => Some(TWO_HOURS),
            };
            let preferred = match (preferred, valid) {
                (Some(p), Some(v)) => Some(p.min(v)),
                (None, v) => v,
                (p, None) => p,
            };
            self.set_addr_lifetimes(dev, a, valid, preferred, old.mngtmpaddr);
            return;
        }
        if self.link(dev).addrs.contains(&a) || valid == Some(0) {
            return;
        }
        let IpAddr::V6(addr) = a.addr else { return };
        let req = AddrReq::AddV6 {
            dev,
            addr,
            prefix_len: 64,
            attrs: AddrAttrs::default(),
        };
        if let Ok(change) = self.check_addr(&req) {
            self.apply_addr(change);
            self.set_addr_lifetimes(dev, a, valid, preferred, true);
            self.start_dad(dev, a);
        }
    }

    /// A route a router advertised on link `dev`: its default route (`via`
    /// the router, `proto ra`, metric 1024) or an on-link prefix (`proto
    /// kernel`, metric 256), added or refreshed with its lifetime, or removed
    /// with a lifetime of 0. The hop limit and MTU (already checked against
    /// the link) go on the default route, as Linux keeps them (`hoplimit`,
    /// `mtu`).
    pub(super) fn router_route(
        &mut self,
        dev: u32,
        target: RouterRoute,
        lifetime: Lifetime,
        hoplimit_mtu: (Option<u8>, Option<u32>),
        pref: RoutePref,
    ) {
        // The kernel's route to a prefix (proto kernel, metric 256), or made
        // from the one to ::/0.
        let (prefix, prefix_len) = match target {
            RouterRoute::Default(_) => (Ipv6Addr::UNSPECIFIED, 0),
            RouterRoute::OnLink(prefix, prefix_len) => (prefix, prefix_len),
        };
        let a = IfAddr {
            addr: IpAddr::V6(prefix),
            prefix_len,
        };
        let mut route = prefix_route(dev, a, None);
        if let RouterRoute::Default(router) = target {
            route.via = Some(IpAddr::V6(router));
            route.proto = RouteProto::Ra;
            route.metric = RA_DEFAULT_METRIC;
        }
        let same = |r: &Route| {
            (r.dev, r.dst, r.prefix_len, r.metric, r.via)
                == (
                    route.dev,
                    route.dst,
                    route.prefix_len,
                    route.metric,
                    route.via,
                )
        };
        if lifetime == Some(0) {
            self.remove_routes(|r| !same(r));
            self.prune_lifetimes();
            return;
        }
        if !self.is_up(dev) || self.ipv6_disabled(dev) {
            return;
        }
        if !self.routes.iter().any(same) {
            self.insert_route(route);
        }
        // A hop limit or MTU not advertised keeps the one the route had (Cur
        // Hop Limit 0, no MTU option, or one the link cannot take, on Linux).
        let old = self.route_extras.iter().find(|e| e.of(&route));
        let hoplimit = hoplimit_mtu.0.or(old.and_then(|e| e.hoplimit));
        let mtu = hoplimit_mtu.1.or(old.and_then(|e| e.mtu));
        self.set_route_extras(&route, lifetime, (hoplimit, mtu), pref);
    }
}

/// Which route a router advertisement gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouterRoute {
    /// The default route via this router (its link-local address).
    Default(Ipv6Addr),
    /// An on-link prefix and its length.
    OnLink(Ipv6Addr, u8),
}
