//! Addresses: where Linux puts an IPv4 or IPv6 address on a link, primaries and
//! secondaries, and what adding or removing one does to routes, broadcasts and
//! the local prefixes of `lo`.
//!
//! Owns the links' address lists, the `brd` records, `lo`'s local prefixes and
//! the [`MAX_ADDRS`] limit.

use super::prefix::{in_prefix, network};
use super::{
    kernel, rtnl, v4, AddrLabel, Broadcast, IfAddr, LinkKind, State, IPV4_MIN_MTU, MAX_ADDRS,
};
use crate::cmd::error::CmdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 address scopes as Linux numbers them (`RT_SCOPE_*`).
pub(super) const SCOPE_UNIVERSE: u8 = 0;
pub(super) const SCOPE_LINK: u8 = 253;
const SCOPE_HOST: u8 = 254;

/// What `ip addr add` may say of an address besides the address itself.
///
/// Linux keeps these with the address: the scope of an IPv4 address (which
/// orders the link's addresses and limits which destinations it is a source
/// for; IPv6 takes its scope from the address and ignores the keyword), the
/// metric of the prefix route, and `noprefixroute` (no prefix route at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AddrAttrs {
    /// IPv4: the `scope` given (`None`: Linux's default, host for 127/8,
    /// global otherwise).
    pub(crate) scope: Option<u8>,
    /// `metric`: the prefix route's metric (0: the kernel's own, 0 for IPv4
    /// and 256 for IPv6).
    pub(crate) metric: u32,
    /// `noprefixroute`.
    pub(crate) noprefixroute: bool,
}

/// The scope Linux gives an IPv4 address by default (`ip` picks host for 127/8).
pub(super) fn v4_scope(addr: Ipv4Addr) -> u8 {
    if addr.octets()[0] == 127 {
        SCOPE_HOST
    } else {
        SCOPE_UNIVERSE
    }
}

/// IPv6 source-address scope as Linux ranks it when ordering a device's addresses
/// (higher first). The loopback address ranks with link-local ones.
pub(super) fn v6_rank(addr: Ipv6Addr) -> u8 {
    let s = addr.segments();
    if addr.is_loopback() || s[0] & 0xffc0 == 0xfe80 {
        2
    } else if s[0] & 0xffc0 == 0xfec0 {
        5
    } else {
        14
    }
}

/// An address change as the kernel receives it from `ip addr add|del`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrReq {
    /// Add an IPv4 address, with the broadcast address given with `brd`.
    AddV4 {
        dev: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
        brd: Option<Ipv4Addr>,
        attrs: AddrAttrs,
    },
    AddV6 {
        dev: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
        attrs: AddrAttrs,
    },
    /// Delete an IPv4 address; without a length, the first one equal to `addr`.
    DelV4 {
        dev: u32,
        addr: Ipv4Addr,
        prefix_len: Option<u8>,
    },
    /// Delete the link's first IPv4 address.
    DelFirstV4 { dev: u32 },
    DelV6 {
        dev: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
    },
}

/// An address change the model has accepted, for the state it was checked
/// against: exactly what applying it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrChange {
    /// Nothing at all (Linux accepts 0.0.0.0 and adds nothing).
    Nothing,
    /// Add an IPv4 address at `slot`, with its `brd`.
    AddV4 {
        dev: u32,
        addr: IfAddr,
        slot: V4Slot,
        brd: Option<Ipv4Addr>,
        attrs: AddrAttrs,
    },
    /// Add an IPv6 address (in the order of its scope).
    AddV6 {
        dev: u32,
        addr: IfAddr,
        attrs: AddrAttrs,
    },
    /// `ip addr replace|change` of an address the link has: Linux sets the
    /// metric of an IPv4 one (its scope and flags stay), the metric and
    /// `noprefixroute` of an IPv6 one, and moves the prefix route along.
    Modify {
        dev: u32,
        addr: IfAddr,
        attrs: AddrAttrs,
    },
    /// Remove the address at this index of the link's list.
    RemoveV4 {
        dev: u32,
        at: usize,
    },
    RemoveV6 {
        dev: u32,
        at: usize,
    },
}

/// Where a new IPv4 address goes in its link's list, and whether it is primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct V4Slot {
    pub(crate) at: usize,
    pub(crate) primary: bool,
}

impl State {
    /// The broadcast address given for an IPv4 address, if any.
    pub(crate) fn broadcast(&self, dev: u32, a: &IfAddr) -> Option<Ipv4Addr> {
        self.broadcasts
            .iter()
            .find(|b| b.dev == dev && IpAddr::V4(b.addr) == a.addr && b.prefix_len == a.prefix_len)
            .map(|b| b.brd)
    }

    /// The label of an IPv4 address: the one given when it was added, or else
    /// its link's name.
    pub(crate) fn label<'a>(&'a self, dev: u32, a: &IfAddr) -> &'a str {
        self.labels
            .iter()
            .find(|l| l.dev == dev && IpAddr::V4(l.addr) == a.addr && l.prefix_len == a.prefix_len)
            .map_or(self.link(dev).name.as_str(), |l| l.label.as_str())
    }

    /// Sets or (with `None`) clears the label of an IPv4 address.
    pub(super) fn set_label(&mut self, dev: u32, a: &IfAddr, label: Option<String>) {
        let IpAddr::V4(addr) = a.addr else { return };
        let same = |l: &AddrLabel| l.dev == dev && l.addr == addr && l.prefix_len == a.prefix_len;
        self.labels.retain(|l| !same(l));
        if let Some(label) = label {
            self.labels.push(AddrLabel {
                dev,
                addr,
                prefix_len: a.prefix_len,
                label,
            });
        }
    }

    /// What the address was added with (the defaults for most).
    pub(crate) fn addr_attrs(&self, dev: u32, a: &IfAddr) -> AddrAttrs {
        self.addr_attrs
            .iter()
            .find(|(d, e, _)| *d == dev && e == a)
            .map_or_else(AddrAttrs::default, |&(_, _, attrs)| attrs)
    }

    fn set_addr_attrs(&mut self, dev: u32, a: IfAddr, attrs: AddrAttrs) {
        self.addr_attrs.retain(|(d, e, _)| !(*d == dev && *e == a));
        if attrs != AddrAttrs::default() {
            self.addr_attrs.push((dev, a, attrs));
        }
    }

    /// The scope of an IPv4 address of `dev` (`RT_SCOPE_*`): the one it was
    /// added with, or Linux's default.
    pub(crate) fn v4_addr_scope(&self, dev: u32, a: &IfAddr) -> u8 {
        match a.addr {
            IpAddr::V4(addr) => self
                .addr_attrs(dev, a)
                .scope
                .unwrap_or_else(|| v4_scope(addr)),
            IpAddr::V6(_) => SCOPE_UNIVERSE,
        }
    }

    /// Gives a new IPv4 address its label. Linux sets a label only when it
    /// creates the address (`ip addr replace|change` keep the old one), and
    /// ignores labels on IPv6 addresses.
    pub(crate) fn apply_label(&mut self, change: &AddrChange, label: &str) {
        if let AddrChange::AddV4 { dev, addr, .. } = *change {
            self.set_label(dev, &addr, Some(label.to_string()));
        }
    }

    /// Whether the address an `ip addr del ... label NAME` found has that
    /// label (Linux deletes only an address whose label matches).
    pub(crate) fn check_label(&self, change: &AddrChange, label: &str) -> Result<(), CmdError> {
        if let AddrChange::RemoveV4 { dev, at } = *change {
            if self.label(dev, &self.link(dev).addrs[at]) != label {
                return Err(kernel("ipv4: Address not found."));
            }
        }
        Ok(())
    }

    /// The check step of `ip addr replace|change`: the address the link has
    /// already (IPv4: same address and length; IPv6: same address) is modified
    /// ([`AddrChange::Modify`]; its lifetimes are the caller's); one it does not
    /// have is added as `ip addr add` would (whatever `change` says, Linux
    /// creates it).
    pub(crate) fn check_addr_replace(&self, req: &AddrReq) -> Result<AddrChange, CmdError> {
        let (dev, addr, prefix_len, attrs) = match *req {
            AddrReq::AddV4 {
                dev,
                addr,
                prefix_len,
                attrs,
                ..
            } => {
                if self.is_lo(dev) && self.link(dev).mtu < IPV4_MIN_MTU {
                    return Err(rtnl("No buffer space available"));
                }
                (dev, IpAddr::V4(addr), Some(prefix_len), attrs)
            }
            AddrReq::AddV6 {
                dev, addr, attrs, ..
            } if !self.ipv6_disabled(dev) => (dev, IpAddr::V6(addr), None, attrs),
            _ => return self.check_addr(req),
        };
        let found = self
            .link(dev)
            .addrs
            .iter()
            .find(|a| a.addr == addr && prefix_len.is_none_or(|p| p == a.prefix_len));
        match found {
            Some(&a) => Ok(AddrChange::Modify {
                dev,
                addr: a,
                attrs,
            }),
            None => self.check_addr(req),
        }
    }

    /// Applies [`AddrChange::Modify`].
    fn modify_addr(&mut self, dev: u32, a: IfAddr, given: AddrAttrs) {
        let old = self.addr_attrs(dev, &a);
        let new = match a.addr {
            IpAddr::V4(_) => AddrAttrs {
                metric: given.metric,
                ..old
            },
            IpAddr::V6(_) => AddrAttrs {
                metric: given.metric,
                noprefixroute: given.noprefixroute,
                ..old
            },
        };
        if new == old {
            return;
        }
        let primary = match a.addr {
            IpAddr::V4(_) => {
                let i = self.link(dev).addrs.iter().position(|e| *e == a);
                i.is_some_and(|i| !self.is_secondary(dev, i))
            }
            IpAddr::V6(_) => true,
        };
        let old_route = self.connected_route(dev, a);
        self.set_addr_attrs(dev, a, new);
        if !primary || !self.is_up(dev) {
            return;
        }
        if let Some(route) = old_route {
            self.remove_routes(|r| *r != route);
        }
        if let Some(route) = self.connected_route(dev, a) {
            if !self.routes.contains(&route) {
                self.insert_route(route);
            }
        }
    }

    /// Whether the address at `i` (an IPv4 one) is secondary: Linux makes an address
    /// secondary when one with the same network and prefix was there first, and
    /// keeps primaries ahead of secondaries.
    pub(crate) fn is_secondary(&self, index: u32, i: usize) -> bool {
        let addrs = &self.link(index).addrs;
        let a = addrs[i];
        addrs[..i].iter().any(|b| {
            b.addr.is_ipv4()
                && b.prefix_len == a.prefix_len
                && in_prefix(b.addr, a.addr, a.prefix_len)
        })
    }

    /// Addresses counted against [`MAX_ADDRS`].
    pub(super) fn addr_count(&self) -> usize {
        self.links
            .iter()
            .map(|l| {
                l.addrs
                    .iter()
                    .filter(|a| !(l.kind == LinkKind::Loopback && is_lo_own(a)))
                    .count()
            })
            .sum()
    }

    fn check_addr_limit(&self) -> Result<(), CmdError> {
        if self.addr_count() >= MAX_ADDRS {
            return Err(kernel(&format!(
                "vdestack: too many addresses (limit {MAX_ADDRS})."
            )));
        }
        Ok(())
    }

    /// Where Linux puts a new IPv4 address: a secondary at the end of the IPv4
    /// addresses, a primary after the last primary of the same or a wider scope.
    /// Linux refuses an address the link has, and a secondary whose scope is not
    /// its primary's.
    pub(super) fn v4_slot(
        &self,
        index: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
        scope: u8,
    ) -> Result<V4Slot, CmdError> {
        let n4 = self.v4_count(index);
        let mut secondary = false;
        let mut at = 0;
        for i in 0..n4 {
            let e = self.link(index).addrs[i];
            let ev4 = v4(e.addr).expect("IPv4 block");
            let e_scope = self.v4_addr_scope(index, &e);
            let primary = !self.is_secondary(index, i);
            if primary && scope <= e_scope {
                at = i + 1;
            }
            if e.prefix_len == prefix_len && in_prefix(e.addr, IpAddr::V4(addr), prefix_len) {
                if ev4 == addr {
                    return Err(kernel("ipv4: Address already assigned."));
                }
                if e_scope != scope {
                    return Err(kernel("ipv4: Invalid scope value."));
                }
                secondary = true;
            }
        }
        Ok(V4Slot {
            at: if secondary { n4 } else { at },
            primary: !secondary,
        })
    }

    /// Puts an IPv6 address where Linux would: wider scopes first, and within a
    /// scope the newest first.
    pub(super) fn insert_v6(&mut self, index: u32, a: IfAddr) {
        let IpAddr::V6(addr) = a.addr else {
            return;
        };
        let rank = v6_rank(addr);
        let n4 = self.v4_count(index);
        let addrs = &mut self.link_mut(index).addrs;
        let at = addrs[n4..]
            .iter()
            .position(|e| match e.addr {
                IpAddr::V6(e6) => rank >= v6_rank(e6),
                IpAddr::V4(_) => false,
            })
            .map_or(addrs.len(), |p| n4 + p);
        addrs.insert(at, a);
    }

    /// The check step of `ip addr add|del`: Linux's refusal, or exactly what
    /// the change will do. The model is left as it was.
    pub(crate) fn check_addr(&self, req: &AddrReq) -> Result<AddrChange, CmdError> {
        match *req {
            AddrReq::AddV4 {
                dev,
                addr,
                prefix_len,
                brd,
                attrs,
            } => self.check_add_v4(dev, addr, prefix_len, brd, attrs),
            AddrReq::AddV6 {
                dev,
                addr,
                prefix_len,
                attrs,
            } => self.check_add_v6(dev, addr, prefix_len, attrs),
            AddrReq::DelV4 {
                dev,
                addr,
                prefix_len,
            } => self.check_del_v4(dev, Some((addr, prefix_len))),
            AddrReq::DelFirstV4 { dev } => self.check_del_v4(dev, None),
            AddrReq::DelV6 {
                dev,
                addr,
                prefix_len,
            } => self.check_del_v6(dev, addr, prefix_len),
        }
    }

    /// The apply step of `ip addr add|del`, with Linux's side effects on routes,
    /// broadcasts and `lo`'s local prefixes.
    pub(crate) fn apply_addr(&mut self, change: AddrChange) {
        match change {
            AddrChange::Nothing => {}
            AddrChange::AddV4 {
                dev,
                addr,
                slot,
                brd,
                attrs,
            } => self.apply_add_v4(dev, addr, slot, brd, attrs),
            AddrChange::AddV6 { dev, addr, attrs } => self.apply_add_v6(dev, addr, attrs),
            AddrChange::Modify { dev, addr, attrs } => self.modify_addr(dev, addr, attrs),
            AddrChange::RemoveV4 { dev, at } => self.remove_v4_at(dev, at),
            AddrChange::RemoveV6 { dev, at } => self.remove_v6_at(dev, at),
        }
    }

    fn check_add_v4(
        &self,
        dev: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
        brd: Option<Ipv4Addr>,
        attrs: AddrAttrs,
    ) -> Result<AddrChange, CmdError> {
        if addr.is_unspecified() {
            // Linux accepts 0.0.0.0 and quietly adds nothing, before any other check.
            return Ok(AddrChange::Nothing);
        }
        if self.is_lo(dev) && self.link(dev).mtu < IPV4_MIN_MTU {
            return Err(rtnl("No buffer space available"));
        }
        let scope = attrs.scope.unwrap_or_else(|| v4_scope(addr));
        let slot = self.v4_slot(dev, addr, prefix_len, scope)?;
        self.check_addr_limit()?;
        Ok(AddrChange::AddV4 {
            dev,
            addr: IfAddr {
                addr: IpAddr::V4(addr),
                prefix_len,
            },
            slot,
            brd,
            attrs,
        })
    }

    fn apply_add_v4(
        &mut self,
        dev: u32,
        a: IfAddr,
        slot: V4Slot,
        brd: Option<Ipv4Addr>,
        attrs: AddrAttrs,
    ) {
        self.link_mut(dev).addrs.insert(slot.at, a);
        self.set_addr_attrs(dev, a, attrs);
        self.v4_table = true;
        if let (Some(brd), IpAddr::V4(addr)) = (brd, a.addr) {
            self.broadcasts.push(Broadcast {
                dev,
                addr,
                prefix_len: a.prefix_len,
                brd,
            });
        }
        if slot.primary && self.is_up(dev) {
            if let Some(route) = self.v4_connected(dev, a) {
                self.insert_route(route);
            }
            self.add_lo_prefix(dev, a);
        }
        self.restore_local_entries_of(dev, a, slot.primary);
    }

    /// Records that a primary address of `lo` has its prefix in the local table.
    pub(super) fn add_lo_prefix(&mut self, index: u32, a: IfAddr) {
        if self.is_lo(index) && has_prefix_route(a) && !self.lo_prefixes.contains(&a) {
            self.lo_prefixes.push(a);
        }
    }

    fn check_add_v6(
        &self,
        dev: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
        attrs: AddrAttrs,
    ) -> Result<AddrChange, CmdError> {
        if self.ipv6_disabled(dev) {
            return Err(rtnl("Invalid argument"));
        }
        if addr.is_multicast() {
            return Err(kernel(
                "ipv6: Cannot assign multicast address without \"IFA_F_MCAUTOJOIN\" flag.",
            ));
        }
        if addr.is_unspecified() {
            return Err(kernel("ipv6: Invalid address."));
        }
        if addr.is_loopback() && !self.is_lo(dev) {
            return Err(kernel(
                "ipv6: Cannot assign loopback address on this device.",
            ));
        }
        if self
            .link(dev)
            .addrs
            .iter()
            .any(|a| a.addr == IpAddr::V6(addr))
        {
            return Err(kernel("ipv6: address already assigned."));
        }
        self.check_addr_limit()?;
        Ok(AddrChange::AddV6 {
            dev,
            addr: IfAddr {
                addr: IpAddr::V6(addr),
                prefix_len,
            },
            // Linux gives an IPv6 address the scope of the address itself.
            attrs: AddrAttrs {
                scope: None,
                ..attrs
            },
        })
    }

    fn apply_add_v6(&mut self, dev: u32, a: IfAddr, attrs: AddrAttrs) {
        self.set_addr_attrs(dev, a, attrs);
        if a.addr == IpAddr::V6(Ipv6Addr::LOCALHOST) {
            self.loopback6_added = true;
        }
        self.insert_v6(dev, a);
        if self.is_up(dev) {
            self.add_v6_connected(dev, a);
        }
    }

    /// `ip addr del ADDR[/LEN] dev DEV` for IPv4 (`which`: the address and its
    /// length), where no length means the first address equal to ADDR
    /// (iproute2's "wildcard deletion"); without `which`, the link's first IPv4
    /// address (`ip -4 addr del dev DEV`).
    fn check_del_v4(
        &self,
        dev: u32,
        which: Option<(Ipv4Addr, Option<u8>)>,
    ) -> Result<AddrChange, CmdError> {
        if self.is_lo(dev) && self.link(dev).mtu < IPV4_MIN_MTU {
            return Err(kernel("ipv4: Device not found."));
        }
        let found = match which {
            Some((addr, prefix_len)) => self.link(dev).addrs.iter().position(|a| {
                a.addr == IpAddr::V4(addr) && prefix_len.is_none_or(|p| p == a.prefix_len)
            }),
            None => (self.v4_count(dev) > 0).then_some(0),
        };
        let at = found.ok_or_else(|| kernel("ipv4: Address not found."))?;
        Ok(AddrChange::RemoveV4 { dev, at })
    }

    /// Removes an IPv4 address with Linux's side effects: a primary takes its
    /// secondaries and its connected route along (secondaries are not promoted);
    /// the last address takes every IPv4 route through the link.
    fn remove_v4_at(&mut self, index: u32, i: usize) {
        let primary = !self.is_secondary(index, i);
        let a = self.link_mut(index).addrs.remove(i);
        let mut gone = vec![a];
        if primary {
            let addrs = &mut self.link_mut(index).addrs;
            let mut j = 0;
            while j < addrs.len() {
                let e = addrs[j];
                if e.addr.is_ipv4()
                    && e.prefix_len == a.prefix_len
                    && in_prefix(e.addr, a.addr, a.prefix_len)
                {
                    gone.push(addrs.remove(j));
                } else {
                    j += 1;
                }
            }
            let connected = self.v4_connected(index, a);
            self.remove_routes(|r| Some(*r) != connected);
            if self.is_lo(index) {
                self.lo_prefixes.retain(|p| *p != a);
            }
        }
        let is_gone = |addr: Ipv4Addr, len: u8| {
            gone.iter()
                .any(|g| g.addr == IpAddr::V4(addr) && g.prefix_len == len)
        };
        self.broadcasts
            .retain(|b| !(b.dev == index && is_gone(b.addr, b.prefix_len)));
        self.labels
            .retain(|l| !(l.dev == index && is_gone(l.addr, l.prefix_len)));
        self.addr_attrs
            .retain(|(d, e, _)| !(*d == index && gone.contains(e)));
        if self.v4_count(index) == 0 {
            self.drop_routes_via(index, true);
        }
    }

    /// `ip addr del ADDR[/LEN] dev DEV` for IPv6 (no length means /128).
    fn check_del_v6(
        &self,
        dev: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
    ) -> Result<AddrChange, CmdError> {
        if self.ipv6_disabled(dev) {
            return Err(kernel("ipv6: IPv6 is disabled on this device."));
        }
        let target = IfAddr {
            addr: IpAddr::V6(addr),
            prefix_len,
        };
        let at = self
            .link(dev)
            .addrs
            .iter()
            .position(|a| *a == target)
            .ok_or_else(|| kernel("ipv6: address not found."))?;
        Ok(AddrChange::RemoveV6 { dev, at })
    }

    /// Removes an IPv6 address, and its prefix route when no other address of the
    /// link shares the prefix.
    fn remove_v6_at(&mut self, index: u32, i: usize) {
        let a = self.link_mut(index).addrs.remove(i);
        let added_loopback = a.addr == IpAddr::V6(Ipv6Addr::LOCALHOST) && self.loopback6_added;
        let shared = self.link(index).addrs.iter().any(|e| {
            e.addr.is_ipv6()
                && e.prefix_len == a.prefix_len
                && in_prefix(e.addr, a.addr, a.prefix_len)
        });
        if !shared {
            if let Some(route) = self.v6_connected(index, a) {
                self.remove_routes(|r| *r != route);
            }
        }
        self.addr_attrs
            .retain(|(d, e, _)| !(*d == index && *e == a));
        if added_loopback {
            self.loopback6_added = false;
        }
    }

    /// `ip addr flush dev DEV`: the addresses of the chosen families go one by one,
    /// with the same side effects as deleting them.
    pub(crate) fn flush_addrs(&mut self, index: u32, ipv4: bool, ipv6: bool) {
        while ipv4 && self.v4_count(index) > 0 {
            self.remove_v4_at(index, 0);
        }
        while let Some(i) = self
            .link(index)
            .addrs
            .iter()
            .position(|a| ipv6 && a.addr.is_ipv6())
        {
            self.remove_v6_at(index, i);
        }
    }
}

/// Whether Linux gives a primary IPv4 address a prefix route (and a subnet
/// broadcast): not for /32, not when the network is 0.0.0.0, not for a multicast
/// address.
pub(super) fn has_prefix_route(a: IfAddr) -> bool {
    let net = v4(network(a.addr, a.prefix_len));
    let multicast = v4(a.addr).is_some_and(|x| x.is_multicast());
    a.prefix_len < 32 && net.is_some_and(|n| !n.is_unspecified()) && !multicast
}

/// The loopback's own addresses, which do not count against [`MAX_ADDRS`].
fn is_lo_own(a: &IfAddr) -> bool {
    *a == IfAddr {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        prefix_len: 8,
    } || *a
        == IfAddr {
            addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
            prefix_len: 128,
        }
}
