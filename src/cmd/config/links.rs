//! Links: `ip link set` (hardware address, MTU, name, up and down) and what
//! Linux does to a link's addresses and routes on the way.
//!
//! Owns the links' own fields and the `ever_up` record; it calls into the
//! address and route parts for the tear-downs and the automatic addresses an up
//! link gets.

use super::addrs::v4_scope;
use super::{kernel, rtnl, IfAddr, LinkKind, State, IPV4_MIN_MTU, IPV6_MIN_MTU, MAX_ADDRS};
use crate::cmd::error::CmdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The largest MTU the VDE link carries (a VDE frame holds 9216 bytes of payload,
/// and jumbo frames are conventionally 9000).
const ETHER_MAX_MTU: i32 = 9000;
/// Linux's `ETH_MIN_MTU`, the minimum of a tap device.
const ETHER_MIN_MTU: i32 = 68;

/// The EUI-64 link-local address Linux derives from a MAC when a link comes up.
fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    eui64_address(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), mac)
}

/// The address in the /64 `prefix` whose interface identifier is the EUI-64
/// of `mac` (Linux's default `addr_gen_mode`, for link-local and SLAAC
/// addresses alike).
pub(super) fn eui64_address(prefix: Ipv6Addr, mac: [u8; 6]) -> Ipv6Addr {
    let mut bytes = prefix.octets();
    bytes[8..].copy_from_slice(&[
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]);
    Ipv6Addr::from(bytes)
}

/// What `ip link set` records of a link besides its own fields, as Linux
/// shows them. None of them changes what the stack sends or takes in: a
/// userspace stack has no queue, and its IP layer drops what is not for it
/// whether the link is promiscuous or not, as Linux's does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkSettings {
    /// `txqueuelen`: shown as `qlen` (not when 0).
    pub(crate) qlen: u32,
    /// `alias`.
    pub(crate) alias: Option<String>,
    /// `group` (0: `default`).
    pub(crate) group: u32,
    /// The flags `ip link set` turns on or off, as `IFF_*` bits (see
    /// [`LinkFlag`]).
    pub(crate) flags: u32,
    /// `addrgenmode none`: no link-local address when IPv6 comes up.
    pub(crate) no_link_local: bool,
    /// The link's queue length was 0 when it first came up: Linux attached
    /// `noqueue` instead of its default queueing discipline.
    pub(crate) noqueue: bool,
}

/// The link flags `ip link set` changes (Linux's `IFF_*` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkFlag {
    Promisc = 0x100,
    AllMulti = 0x200,
    Multicast = 0x1000,
    NoTrailers = 0x20,
    Dynamic = 0x8000,
}

impl LinkSettings {
    /// A new link's: queue length 1000, group default, `MULTICAST` on an
    /// Ethernet link.
    pub(super) fn new(kind: LinkKind) -> LinkSettings {
        LinkSettings {
            qlen: 1000,
            alias: None,
            group: 0,
            flags: if kind == LinkKind::Ether {
                LinkFlag::Multicast as u32
            } else {
                0
            },
            no_link_local: false,
            noqueue: false,
        }
    }

    /// Whether `flag` is on.
    pub(crate) fn has(&self, flag: LinkFlag) -> bool {
        self.flags & flag as u32 != 0
    }
}

impl State {
    /// What `ip link set` recorded of the link besides its own fields.
    pub(crate) fn link_settings(&self, index: u32) -> &LinkSettings {
        &self.link_settings[self.pos(index)]
    }

    /// `ip link set DEV txqueuelen|alias|group|promisc|...`: recorded, as
    /// Linux records them.
    pub(crate) fn set_link_settings(&mut self, index: u32, change: impl FnOnce(&mut LinkSettings)) {
        let pos = self.pos(index);
        change(&mut self.link_settings[pos]);
    }

    /// Has the link been up at least once (Linux's qdisc is attached then)?
    pub(crate) fn ever_up(&self, index: u32) -> bool {
        self.ever_up[self.pos(index)]
    }

    /// IPv6 works on the VDE link only with an MTU of at least 1280 (Linux destroys
    /// the device's IPv6 state below that); `lo` keeps it, just without addresses.
    pub(super) fn ipv6_disabled(&self, index: u32) -> bool {
        let link = self.link(index);
        link.kind == LinkKind::Ether && link.mtu < IPV6_MIN_MTU
    }

    /// `ip link set DEV name NAME`, with the kernel's checks (iproute2 checked
    /// the length, `/` and white space): no `.`, `..` or `:`, a name no other
    /// link has, a `%d` replaced by the lowest number that makes a free name.
    /// Linux (6.2 on) renames an up link too. The IPv4 addresses' labels follow
    /// as Linux's `inetdev_changename` makes them: the first address's becomes
    /// the new name, each other keeps the `:suffix` of its label, or gets
    /// `:N`, N its place in the list.
    pub(crate) fn set_name(&mut self, index: u32, name: &str) -> Result<(), CmdError> {
        const IFNAMSIZ: usize = 16;
        let invalid = || rtnl("Invalid argument");
        if name == "." || name == ".." || name.contains(':') {
            return Err(invalid());
        }
        let name = match name.find('%') {
            None => name.to_string(),
            Some(p) if name[p + 1..].starts_with('d') && !name[p + 2..].contains('%') => (0..32768)
                .map(|n| format!("{}{n}{}", &name[..p], &name[p + 2..]))
                .find(|candidate| self.find(candidate).is_none())
                .filter(|candidate| candidate.len() < IFNAMSIZ)
                .ok_or_else(|| rtnl("Too many open files in system"))?,
            Some(_) => return Err(invalid()),
        };
        if self.link(index).name == name {
            return Ok(());
        }
        if self.find(&name).is_some() {
            return Err(rtnl("File exists"));
        }
        let v4: Vec<IfAddr> = self
            .link(index)
            .addrs
            .iter()
            .copied()
            .filter(|a| a.addr.is_ipv4())
            .collect();
        let labels: Vec<Option<String>> = v4
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i == 0 {
                    return None;
                }
                let old = self.label(index, a);
                let suffix = old
                    .find(':')
                    .map_or_else(|| format!(":{}", i + 1), |p| old[p..].to_string());
                let keep = (IFNAMSIZ - 1).saturating_sub(suffix.len()).min(name.len());
                Some(format!("{}{suffix}", &name[..keep]))
            })
            .collect();
        for (a, label) in v4.iter().zip(labels) {
            self.set_label(index, a, label);
        }
        self.link_mut(index).name = name;
        Ok(())
    }

    /// `ip link set DEV address MAC`: Linux refuses multicast and all-zero addresses.
    pub(crate) fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<(), CmdError> {
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(rtnl("Cannot assign requested address"));
        }
        self.link_mut(index).mac = mac;
        Ok(())
    }

    /// `ip link set DEV mtu N`, with the device limits and the protocol tear-downs
    /// Linux applies below 68 (IPv4) and 1280 (IPv6) bytes.
    pub(crate) fn set_mtu(&mut self, index: u32, mtu: i32) -> Result<(), CmdError> {
        let (min, max) = match self.link(index).kind {
            LinkKind::Loopback => (0, None),
            LinkKind::Ether => (ETHER_MIN_MTU, Some(ETHER_MAX_MTU)),
        };
        if mtu < min {
            return Err(kernel("mtu less than device minimum."));
        }
        if max.is_some_and(|max| mtu > max) {
            return Err(kernel("mtu greater than device maximum."));
        }
        let new = mtu as u32;
        let old = self.link(index).mtu;
        if new == old {
            return Ok(());
        }
        self.link_mut(index).mtu = new;
        if new < IPV4_MIN_MTU {
            self.link_mut(index).addrs.retain(|a| a.addr.is_ipv6());
            self.broadcasts.retain(|b| b.dev != index);
            self.labels.retain(|l| l.dev != index);
            self.lo_prefixes.clear();
            self.drop_routes_via(index, true);
        }
        if new < IPV6_MIN_MTU {
            self.link_mut(index).addrs.retain(|a| a.addr.is_ipv4());
            self.drop_routes_via(index, false);
        } else if old < IPV6_MIN_MTU && !self.is_lo(index) && self.is_up(index) {
            // The device's IPv6 state is rebuilt as if the link had just come up.
            self.ipv6_up(index);
        }
        Ok(())
    }

    /// `ip link set DEV up|down` and everything Linux does on the way.
    pub(crate) fn set_up(&mut self, index: u32, up: bool) -> Result<(), CmdError> {
        if self.is_up(index) == up {
            return Ok(());
        }
        let pos = self.pos(index);
        self.links[pos].up = up;
        if up {
            if !self.ever_up[pos] {
                self.link_settings[pos].noqueue = self.link_settings[pos].qlen == 0;
            }
            self.ever_up[pos] = true;
            self.restore_local_entries(index);
            if self.is_lo(index) && self.links[pos].mtu >= IPV4_MIN_MTU {
                // Linux gives lo its address on every up; a duplicate is ignored.
                if let Ok(slot) =
                    self.v4_slot(index, Ipv4Addr::LOCALHOST, 8, v4_scope(Ipv4Addr::LOCALHOST))
                {
                    let lo_own = IfAddr {
                        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                        prefix_len: 8,
                    };
                    self.link_mut(index).addrs.insert(slot.at, lo_own);
                }
                self.v4_table = true;
            }
            let primaries: Vec<IfAddr> = (0..self.v4_count(index))
                .filter(|&i| !self.is_secondary(index, i))
                .map(|i| self.link(index).addrs[i])
                .collect();
            for a in primaries {
                if let Some(route) = self.v4_connected(index, a) {
                    self.insert_route(route);
                }
                self.add_lo_prefix(index, a);
            }
            if self.link(index).mtu >= IPV6_MIN_MTU {
                self.ipv6_up(index);
            } else {
                // IPv6 cannot start below 1280 bytes: Linux drops the addresses
                // given to lo meanwhile (oracle).
                self.links[pos].addrs.retain(|a| a.addr.is_ipv4());
            }
        } else {
            self.drop_routes_via(index, true);
            self.links[pos].addrs.retain(|a| a.addr.is_ipv4());
            self.drop_routes_via(index, false);
            self.drop_neighbors_of(index);
        }
        Ok(())
    }

    /// IPv6 coming up on a link: its automatic address (`::1` on lo, the EUI-64
    /// link-local elsewhere) and the prefix routes of all its addresses.
    fn ipv6_up(&mut self, index: u32) {
        self.ipv6_starts += 1;
        let auto = match self.link(index).kind {
            LinkKind::Loopback => IfAddr {
                addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                prefix_len: 128,
            },
            LinkKind::Ether => IfAddr {
                addr: IpAddr::V6(link_local(self.link(index).mac)),
                prefix_len: 64,
            },
        };
        let exempt = self.is_lo(index);
        let wanted = exempt || !self.link_settings(index).no_link_local;
        let present = self.link(index).addrs.iter().any(|a| a.addr == auto.addr);
        // With the address table full, the link-local address is the one left out.
        if wanted && !present && (exempt || self.addr_count() < MAX_ADDRS) {
            self.insert_v6(index, auto);
        }
        let v6: Vec<IfAddr> = self
            .link(index)
            .addrs
            .iter()
            .filter(|a| a.addr.is_ipv6())
            .copied()
            .collect();
        for a in v6 {
            self.add_v6_connected(index, a);
            self.start_dad(index, a);
        }
    }
}
