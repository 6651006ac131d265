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
const SCOPE_HOST: u8 = 254;

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
    },
    AddV6 {
        dev: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
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
    },
    /// Add an IPv6 address (in the order of its scope).
    AddV6 {
        dev: u32,
        addr: IfAddr,
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
    /// already (IPv4: same address and length; IPv6: same address) stays as it
    /// is, since the stack keeps no lifetimes, the only thing Linux changes
    /// then; one it does not have is added as `ip addr add` would (whatever
    /// `change` says, Linux creates it).
    pub(crate) fn check_addr_replace(&self, req: &AddrReq) -> Result<AddrChange, CmdError> {
        let (dev, addr, prefix_len) = match *req {
            AddrReq::AddV4 {
                dev,
                addr,
                prefix_len,
                ..
            } => {
                if self.is_lo(dev) && self.link(dev).mtu < IPV4_MIN_MTU {
                    return Err(rtnl("No buffer space available"));
                }
                (dev, IpAddr::V4(addr), Some(prefix_len))
            }
            AddrReq::AddV6 { dev, addr, .. } if !self.ipv6_disabled(dev) => {
                (dev, IpAddr::V6(addr), None)
            }
            _ => return self.check_addr(req),
        };
        let has = self
            .link(dev)
            .addrs
            .iter()
            .any(|a| a.addr == addr && prefix_len.is_none_or(|p| p == a.prefix_len));
        if has {
            return Ok(AddrChange::Nothing);
        }
        self.check_addr(req)
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
    ) -> Result<V4Slot, CmdError> {
        let scope = v4_scope(addr);
        let n4 = self.v4_count(index);
        let mut secondary = false;
        let mut at = 0;
        for i in 0..n4 {
            let e = self.link(index).addrs[i];
            let ev4 = v4(e.addr).expect("IPv4 block");
            let primary = !self.is_secondary(index, i);
            if primary && scope <= v4_scope(ev4) {
                at = i + 1;
            }
            if e.prefix_len == prefix_len && in_prefix(e.addr, IpAddr::V4(addr), prefix_len) {
                if ev4 == addr {
                    return Err(kernel("ipv4: Address already assigned."));
                }
                if v4_scope(ev4) != scope {
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
            } => self.check_add_v4(dev, addr, prefix_len, brd),
            AddrReq::AddV6 {
                dev,
                addr,
                prefix_len,
            } => self.check_add_v6(dev, addr, prefix_len),
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
            } => self.apply_add_v4(dev, addr, slot, brd),
            AddrChange::AddV6 { dev, addr } => self.apply_add_v6(dev, addr),
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
    ) -> Result<AddrChange, CmdError> {
        if addr.is_unspecified() {
            // Linux accepts 0.0.0.0 and quietly adds nothing, before any other check.
            return Ok(AddrChange::Nothing);
        }
        if self.is_lo(dev) && self.link(dev).mtu < IPV4_MIN_MTU {
            return Err(rtnl("No buffer space available"));
        }
        let slot = self.v4_slot(dev, addr, prefix_len)?;
        self.check_addr_limit()?;
        Ok(AddrChange::AddV4 {
            dev,
            addr: IfAddr {
                addr: IpAddr::V4(addr),
                prefix_len,
            },
            slot,
            brd,
        })
    }

    fn apply_add_v4(&mut self, dev: u32, a: IfAddr, slot: V4Slot, brd: Option<Ipv4Addr>) {
        self.link_mut(dev).addrs.insert(slot.at, a);
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
        })
    }

    fn apply_add_v6(&mut self, dev: u32, a: IfAddr) {
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
