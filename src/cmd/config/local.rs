//! The local table: which addresses are the stack's own, the prefixes `lo`
//! answers for, and the IPv4 broadcast addresses of up links; and the
//! entries Linux lists for them (`ip route show table local`).
//!
//! Linux makes those entries from the addresses, and the user may delete them
//! (`ip route del`, `ip route flush`); the address stays, but is no longer
//! local: packets to it are not taken in, an IPv4 `bind()` to it fails (IPv6's
//! asks the address list and still works), and it is no longer a valid
//! preferred source. So the model keeps the entries Linux has, in the order
//! it inserted them (which `ip route show` keeps among equal routes), and the
//! derived entries it does not have: those deleted, and those Linux refused
//! to make because their source was not local then (a secondary's or a
//! broadcast's, once the primary's entry went). After every change
//! ([`State::sync_local_table`]) an entry derived anew is inserted at the
//! end; one no longer derived goes, with its deletion (it is made afresh
//! when its address comes back); a link coming up makes all of its entries
//! again (Linux's `NETDEV_UP`), deleted or not, and an IPv4 address added
//! makes its own (`fib_add_ifaddr`: its local entry, its broadcasts, `lo`'s
//! prefix), even where they were deleted for another address. `ip addr
//! replace|change` brings nothing back. IPv6 neighbour solicitations for an
//! address whose entry went are still answered (Linux asks its address
//! list); the engine keeps such an address in smoltcp's table for that.
//!
//! The local table's `multicast ff00::/8` entries are where IPv6 multicast
//! leaves (see `lookup`); of the table's user routes (`ip route add ... table
//! local`), the `local` ones make the addresses of their prefix the stack's
//! (Linux's AnyIP, `State::anyip_route`: lookups, IPv4 `bind()`, the engine),
//! the others are listed only, as other tables' are.
//!
//! Read by `bind()` (through [`super::NetConfig::is_local_addr`]), the
//! gateway and source checks of the route part, the lookups and `ip route
//! show`; changed only by `ip route del|flush` and the sync.

use super::prefix::{in_prefix, mask_v4, network};
use super::{has_prefix_route, v4, IfAddr, Link, Route, RouteProto, RouteType, State, LOCAL_TABLE};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The metric of the local table's IPv6 `ff00::/8` entries.
const IPV6_MULTICAST_METRIC: u32 = 256;

impl State {
    /// Is `addr` in Linux's local table (see [`super::NetConfig::is_local_addr`])?
    /// An IPv6 address enters it once duplicate address detection is over,
    /// and an address whose entry was deleted leaves it; any address the
    /// lookup finds under a user's `local` route is local too (AnyIP, see
    /// [`State::anyip_route`]).
    pub(super) fn is_local(&self, addr: IpAddr) -> bool {
        (self.holds(addr, true) && !self.local_entry_gone(addr)) || self.anyip_route(addr).is_some()
    }

    /// Is `addr` an address of the stack's, usable, whatever the local table
    /// says: what IPv6's `bind()` asks (Linux's `ipv6_chk_addr`).
    pub(super) fn is_own(&self, addr: IpAddr) -> bool {
        self.holds(addr, true)
    }

    /// Whether the local entry that made `addr` local is gone: one covering
    /// it is among the missing, and none is left that covers it.
    fn local_entry_gone(&self, addr: IpAddr) -> bool {
        let covers =
            |r: &&Route| r.kind == RouteType::Local && in_prefix(addr, r.dst, r.prefix_len);
        self.local_missing.iter().any(|r| covers(&r))
            && !self.local_table.iter().any(|r| covers(&r))
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
    /// subnet, a prefix of `lo`'s its address), else itself; under a user's
    /// `local` route, what that route gives ([`State::anyip_src`]).
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
            .or_else(|| self.anyip_src(addr))
    }

    /// The broadcast addresses Linux puts in its local table for up links: any
    /// address's explicit `brd`, and the subnet broadcast of primaries shorter
    /// than /31; unless that entry is missing (deleted).
    pub(super) fn is_v4_broadcast(&self, dev: u32, gw: Ipv4Addr) -> bool {
        let link = self.link(dev);
        let missing =
            |r: &Route| r.kind == RouteType::Broadcast && r.dev == dev && r.dst == IpAddr::V4(gw);
        link.up
            && !self.local_missing.iter().any(missing)
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

    /// The entries Linux has in its local table for the addresses, in the
    /// order it inserted them.
    pub(crate) fn kernel_local_routes(&self) -> Vec<Route> {
        self.local_table.clone()
    }

    /// Brings the local table in line with the addresses after a change (see
    /// the module's documentation): drops what is no longer derived, and
    /// inserts, at the end, what is derived anew, unless it is missing or
    /// its source is not local (Linux's `fib_valid_prefsrc`: then it stays
    /// missing).
    pub(super) fn sync_local_table(&mut self) {
        let derived = self.derived_local_routes();
        self.local_table.retain(|r| derived.contains(r));
        self.local_missing.retain(|r| derived.contains(r));
        for r in derived {
            if self.local_table.contains(&r) || self.local_missing.contains(&r) {
                continue;
            }
            if self.valid_local_src(&r) {
                self.local_table.push(r);
            } else {
                self.local_missing.push(r);
            }
        }
    }

    /// Whether Linux accepts the source of a local-table entry: none, the
    /// entry's own address (a `local` one), or an address local now (an
    /// entry of the table, or a user's `local` route there).
    fn valid_local_src(&self, r: &Route) -> bool {
        let Some(src) = r.src else { return true };
        let own = r.kind == RouteType::Local && r.dst == src;
        let covers = |x: &Route| x.kind == RouteType::Local && in_prefix(src, x.dst, x.prefix_len);
        own || self.local_table.iter().any(covers)
            || self
                .routes
                .iter()
                .any(|x| x.table == LOCAL_TABLE && covers(x))
    }

    /// The addresses Linux no longer takes packets in for because their entry
    /// is missing: an address of the stack's (or of `lo`'s prefixes) no entry
    /// makes local, a broadcast address no entry makes one. Linux, which does
    /// not forward, drops what comes for them, and answers no ARP request for
    /// them (IPv6 still answers neighbour solicitations: they ask its address
    /// list).
    pub(super) fn not_taken_in(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for r in &self.local_missing {
            let gone = match (r.kind, r.dst) {
                (RouteType::Local, dst) => !self.is_local(dst),
                (RouteType::Broadcast, IpAddr::V4(v4)) => {
                    !self.links.iter().any(|l| self.is_v4_broadcast(l.index, v4))
                }
                _ => false,
            };
            // A prefix of `lo` is not one address; its lookups say the rest.
            let host = r.prefix_len == if r.dst.is_ipv4() { 32 } else { 128 };
            if gone && host && !out.contains(&r.dst) {
                out.push(r.dst);
            }
        }
        out
    }

    /// An IPv4 address `a` was added to link `dev` (a `primary` of its
    /// subnet or not): Linux makes the entries of that address (`fib_add_ifaddr`)
    /// even where they were deleted for another address: its `local` entry
    /// (one address on one link with two prefix lengths has one), its
    /// explicit broadcast, a primary's subnet broadcast, and on `lo` its
    /// prefix.
    pub(super) fn restore_local_entries_of(&mut self, dev: u32, a: IfAddr, primary: bool) {
        let Some(a4) = v4(a.addr) else { return };
        let mask = mask_v4(a.prefix_len);
        let subnet = (primary && a.prefix_len < 31 && has_prefix_route(a))
            .then(|| IpAddr::V4(Ipv4Addr::from(u32::from(a4) & mask | !mask)));
        let brd = self.broadcast(dev, &a).map(IpAddr::V4);
        let lo_prefix =
            (self.is_lo(dev) && primary).then(|| (network(a.addr, a.prefix_len), a.prefix_len));
        self.local_missing.retain(|r| {
            let made = match r.kind {
                RouteType::Local => {
                    (r.dst, r.prefix_len) == (a.addr, 32)
                        || Some((r.dst, r.prefix_len)) == lo_prefix
                }
                RouteType::Broadcast => Some(r.dst) == subnet || Some(r.dst) == brd,
                _ => false,
            };
            r.dev != dev || !made
        });
    }

    /// A link came up: Linux makes all its entries again, deleted ones too.
    pub(super) fn restore_local_entries(&mut self, dev: u32) {
        self.local_missing.retain(|r| r.dev != dev);
    }

    /// The check step of `ip route del` of a kernel entry: the first that
    /// matches, as [`State::check_route_del`] matches the others.
    pub(crate) fn find_local_entry(&self, matches: impl Fn(&Route) -> bool) -> Option<Route> {
        self.local_table.iter().copied().find(|r| matches(r))
    }

    /// The apply step of `ip route del|flush` of kernel entries: they go, and
    /// stay missing until Linux would make them again.
    pub(crate) fn delete_local_entries(&mut self, doomed: &[Route]) {
        self.local_table.retain(|r| !doomed.contains(r));
        for r in doomed {
            if !self.local_missing.contains(r) {
                self.local_missing.push(*r);
            }
        }
    }

    /// The entries the kernel keeps in its local table, as Linux makes them
    /// from the addresses (in no particular order): for each IPv4 address
    /// (on any link) `local ADDR`, with its primary as source; for each
    /// prefix of `lo` `local PREFIX`; on up links, the broadcast addresses
    /// of [`Self::is_v4_broadcast`]; for each usable IPv6 address of an up
    /// link (or of `lo`) `local ADDR`, and for each up link but `lo` with IPv6
    /// `multicast ff00::/8`.
    fn derived_local_routes(&self) -> Vec<Route> {
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
