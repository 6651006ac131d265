//! The network configuration model: links, addresses and the main routing table.
//!
//! The engine cannot ask a kernel what is configured, so this model plays the
//! kernel's part: every change an `ip` command requests goes through the same checks
//! and side effects Linux applies (a connected route appears when a link with an
//! address comes up, routes through a link vanish when it goes down, IPv6 addresses
//! vanish with the link, and so on), with the error Linux would report. Every rule
//! here was observed with iproute2 6.1 in a fresh `unshare -Urn` namespace, with a
//! tap device standing in for the VDE link; the tests in `tests.rs` record those
//! observations.

use super::parse::{in_prefix, mask_v4, network};
use super::CmdError;
use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How many addresses a stack holds, not counting the loopback's own
/// `127.0.0.1/8` and `::1/128`: the engine's interface table has this many slots.
pub const MAX_ADDRS: usize = 8;
/// How many routes `ip route add` may create (connected routes do not count): the
/// engine's route table has this many slots.
pub const MAX_USER_ROUTES: usize = 16;

/// The largest MTU the VDE link carries (a VDE frame holds 9216 bytes of payload,
/// and jumbo frames are conventionally 9000).
const ETHER_MAX_MTU: i32 = 9000;
/// Linux's `ETH_MIN_MTU`, the minimum of a tap device.
const ETHER_MIN_MTU: i32 = 68;
/// Below this, Linux tears IPv4 down on a device.
const IPV4_MIN_MTU: u32 = 68;
/// Below this, Linux tears IPv6 down on a device.
const IPV6_MIN_MTU: u32 = 1280;

/// IPv4 address scopes as Linux numbers them (`RT_SCOPE_*`).
const SCOPE_UNIVERSE: u8 = 0;
const SCOPE_HOST: u8 = 254;

/// What kind of device a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkKind {
    /// The loopback device, `lo`.
    Loopback,
    /// The Ethernet-like link to the VDE network (a tap device in the reference).
    Ether,
}

/// An address assigned to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IfAddr {
    /// The address itself.
    pub addr: IpAddr,
    /// Its prefix length (the on-link network).
    pub prefix_len: u8,
}

/// A network device and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// The interface index (`lo` is 1, the VDE link 2).
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// Loopback or Ethernet.
    pub kind: LinkKind,
    /// Administratively up (`ip link set DEV up`). Links always have a carrier.
    pub up: bool,
    /// The MTU.
    pub mtu: u32,
    /// The hardware address (all zeros for `lo`).
    pub mac: [u8; 6],
    /// The addresses, IPv4 first then IPv6, each in the order Linux keeps them (the
    /// order `ip addr` lists them).
    pub addrs: Vec<IfAddr>,
}

/// Who put a route in the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteProto {
    /// A connected-prefix route the kernel added for an address on an up link.
    Kernel,
    /// A route added with `ip route add` (iproute2's default protocol, "boot").
    Boot,
}

/// A route of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// The destination network (host bits clear).
    pub dst: IpAddr,
    /// The destination prefix length (0: default route).
    pub prefix_len: u8,
    /// The gateway; `None` for an on-link route.
    pub via: Option<IpAddr>,
    /// The index of the link the route goes out of.
    pub dev: u32,
    /// Who added it.
    pub proto: RouteProto,
    /// The preferred source address, if the route names one.
    pub src: Option<IpAddr>,
}

impl Route {
    /// The route's metric as Linux assigns it: 0 for IPv4; for IPv6, 256 for the
    /// kernel's connected routes and 1024 for added ones.
    pub fn metric(&self) -> u32 {
        match (self.dst, self.proto) {
            (IpAddr::V4(_), _) => 0,
            (IpAddr::V6(_), RouteProto::Kernel) => 256,
            (IpAddr::V6(_), RouteProto::Boot) => 1024,
        }
    }
}

/// Where a packet to some destination goes: the answer of [`NetConfig::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NextHop {
    /// The link index to send on (`lo` for local destinations).
    pub dev: u32,
    /// The gateway, or the destination itself when it is on-link or local.
    pub addr: IpAddr,
    /// The source address Linux would pick, if any address is usable.
    pub src: Option<IpAddr>,
    /// The destination is one of the stack's own addresses (or in 127.0.0.0/8).
    pub local: bool,
}

/// An IPv4 broadcast address given with `ip addr add ... brd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Broadcast {
    dev: u32,
    addr: Ipv4Addr,
    prefix_len: u8,
    brd: Ipv4Addr,
}

/// Everything `ip` can change; compared before and after each command to decide
/// whether the generation moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct State {
    pub(super) links: Vec<Link>,
    /// Per link (same order): has it ever been up? Linux attaches the default
    /// queueing discipline on the first up, and `ip` shows it from then on.
    ever_up: Vec<bool>,
    broadcasts: Vec<Broadcast>,
    /// The addresses of `lo` whose whole prefix is in Linux's local table. Linux
    /// adds the prefix only while `lo` is up (at the address's addition or at the
    /// next up) and keeps it when `lo` goes down.
    lo_prefixes: Vec<IfAddr>,
    /// Whether `::1` on `lo` was added by a command: Linux gives that one a
    /// main-table route, but not the `::1` it adds itself when `lo` comes up.
    loopback6_added: bool,
    /// Whether Linux has created its IPv4 main table yet: a fresh namespace has
    /// none until the first IPv4 route (an address's local route counts), and
    /// deleting or flushing routes fails until then.
    v4_table: bool,
    /// The main table, kept in the order `ip route show` lists it.
    pub(super) routes: Vec<Route>,
}

/// A route request, as parsed from `ip route add|replace|del`.
#[derive(Debug, Clone, Copy)]
pub(super) struct RouteReq {
    pub(super) dst: IpAddr,
    pub(super) prefix_len: u8,
    pub(super) via: Option<IpAddr>,
    pub(super) dev: Option<u32>,
    pub(super) src: Option<IpAddr>,
}

/// The configuration of one stack: links, addresses, routes.
///
/// Change it with [`NetConfig::run`] (stackcmd strings of `ip` commands); read it
/// with the accessors. [`NetConfig::generation`] moves on every change.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub(super) state: State,
    generation: u64,
}

/// A refusal the kernel reports with an errno only: iproute2 prints its text.
pub(super) fn rtnl(what: &str) -> CmdError {
    CmdError::new(2, format!("RTNETLINK answers: {what}"))
}

/// A refusal the kernel explains itself (netlink extended ack).
pub(super) fn kernel(what: &str) -> CmdError {
    CmdError::new(2, format!("Error: {what}"))
}

/// A route whose gateway is of the other family (RFC 5549 nexthops), which the
/// stack does not route.
fn mixed_families() -> CmdError {
    kernel("vdestack: a gateway of the other address family is not supported.")
}

fn v4(addr: IpAddr) -> Option<Ipv4Addr> {
    match addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

/// The scope Linux gives an IPv4 address by default (`ip` picks host for 127/8).
fn v4_scope(addr: Ipv4Addr) -> u8 {
    if addr.octets()[0] == 127 {
        SCOPE_HOST
    } else {
        SCOPE_UNIVERSE
    }
}

/// IPv6 source-address scope as Linux ranks it when ordering a device's addresses
/// (higher first). The loopback address ranks with link-local ones.
fn v6_rank(addr: Ipv6Addr) -> u8 {
    let s = addr.segments();
    if addr.is_loopback() || s[0] & 0xffc0 == 0xfe80 {
        2
    } else if s[0] & 0xffc0 == 0xfec0 {
        5
    } else {
        14
    }
}

/// The EUI-64 link-local address Linux derives from a MAC when a link comes up.
fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

/// The order of `ip route show`. IPv4 (the FIB trie): by destination, then longer
/// prefixes first. IPv6 (the fib6 tree, walked children first): by address bits,
/// a more specific prefix before the one containing it, then by metric. Equal keys
/// keep their insertion order.
fn route_order(a: &Route, b: &Route) -> Ordering {
    match (a.dst, b.dst) {
        (IpAddr::V4(x), IpAddr::V4(y)) => u32::from(x)
            .cmp(&u32::from(y))
            .then(b.prefix_len.cmp(&a.prefix_len)),
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
            tree.then(a.metric().cmp(&b.metric()))
        }
        (IpAddr::V4(_), IpAddr::V6(_)) => Ordering::Less,
        (IpAddr::V6(_), IpAddr::V4(_)) => Ordering::Greater,
    }
}

impl State {
    fn new(links: Vec<Link>) -> State {
        State {
            ever_up: vec![false; links.len()],
            links,
            broadcasts: Vec::new(),
            lo_prefixes: Vec::new(),
            loopback6_added: false,
            v4_table: false,
            routes: Vec::new(),
        }
    }

    fn pos(&self, index: u32) -> usize {
        self.links
            .iter()
            .position(|l| l.index == index)
            .expect("link index comes from the model")
    }

    pub(super) fn link(&self, index: u32) -> &Link {
        &self.links[self.pos(index)]
    }

    fn link_mut(&mut self, index: u32) -> &mut Link {
        let pos = self.pos(index);
        &mut self.links[pos]
    }

    /// The index of the link with this name.
    pub(super) fn find(&self, name: &str) -> Option<u32> {
        self.links.iter().find(|l| l.name == name).map(|l| l.index)
    }

    fn is_up(&self, index: u32) -> bool {
        self.link(index).up
    }

    fn is_lo(&self, index: u32) -> bool {
        self.link(index).kind == LinkKind::Loopback
    }

    /// Has the link been up at least once (Linux's qdisc is attached then)?
    pub(super) fn ever_up(&self, index: u32) -> bool {
        self.ever_up[self.pos(index)]
    }

    /// The broadcast address given for an IPv4 address, if any.
    pub(super) fn broadcast(&self, dev: u32, a: &IfAddr) -> Option<Ipv4Addr> {
        self.broadcasts
            .iter()
            .find(|b| b.dev == dev && IpAddr::V4(b.addr) == a.addr && b.prefix_len == a.prefix_len)
            .map(|b| b.brd)
    }

    /// IPv6 works on the VDE link only with an MTU of at least 1280 (Linux destroys
    /// the device's IPv6 state below that); `lo` keeps it, just without addresses.
    fn ipv6_disabled(&self, index: u32) -> bool {
        let link = self.link(index);
        link.kind == LinkKind::Ether && link.mtu < IPV6_MIN_MTU
    }

    fn v4_count(&self, index: u32) -> usize {
        self.link(index)
            .addrs
            .iter()
            .filter(|a| a.addr.is_ipv4())
            .count()
    }

    /// Whether the address at `i` (an IPv4 one) is secondary: Linux makes an address
    /// secondary when one with the same network and prefix was there first, and
    /// keeps primaries ahead of secondaries.
    pub(super) fn is_secondary(&self, index: u32, i: usize) -> bool {
        let addrs = &self.link(index).addrs;
        let a = addrs[i];
        addrs[..i].iter().any(|b| {
            b.addr.is_ipv4()
                && b.prefix_len == a.prefix_len
                && in_prefix(b.addr, a.addr, a.prefix_len)
        })
    }

    /// Addresses counted against [`MAX_ADDRS`].
    fn addr_count(&self) -> usize {
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

    fn check_route_limit(&self, extra: usize) -> Result<(), CmdError> {
        let user = self
            .routes
            .iter()
            .filter(|r| r.proto == RouteProto::Boot)
            .count();
        if user + extra > MAX_USER_ROUTES {
            return Err(kernel(&format!(
                "vdestack: too many routes (limit {MAX_USER_ROUTES})."
            )));
        }
        Ok(())
    }

    // ---- routes ----

    /// Adds a route after any equal one (Linux appends kernel routes).
    fn insert_route(&mut self, route: Route) {
        let at = self
            .routes
            .iter()
            .position(|r| route_order(r, &route) == Ordering::Greater)
            .unwrap_or(self.routes.len());
        self.routes.insert(at, route);
    }

    fn remove_routes(&mut self, keep: impl Fn(&Route) -> bool) {
        self.routes.retain(keep);
    }

    /// The connected route Linux adds for a primary IPv4 address on an up link: none
    /// for `lo` (its prefixes go to the local table), `/32`, or a 0.x.x.x network.
    fn v4_connected(&self, dev: u32, a: IfAddr) -> Option<Route> {
        if self.is_lo(dev) || !has_prefix_route(a) {
            return None;
        }
        Some(prefix_route(dev, a, Some(a.addr)))
    }

    /// The prefix route Linux adds for an IPv6 address on an up link (none for the
    /// `::1` it adds to `lo` itself).
    fn v6_connected(&self, dev: u32, a: IfAddr) -> Option<Route> {
        if a.addr == IpAddr::V6(Ipv6Addr::LOCALHOST) && !self.loopback6_added {
            return None;
        }
        Some(prefix_route(dev, a, None))
    }

    fn add_v6_connected(&mut self, dev: u32, a: IfAddr) {
        if let Some(route) = self.v6_connected(dev, a) {
            if !self.routes.contains(&route) {
                self.insert_route(route);
            }
        }
    }

    fn drop_routes_via(&mut self, dev: u32, ipv4: bool) {
        self.remove_routes(|r| !(r.dev == dev && r.dst.is_ipv4() == ipv4));
    }

    // ---- links ----

    /// `ip link set DEV address MAC`: Linux refuses multicast and all-zero addresses.
    pub(super) fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<(), CmdError> {
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(rtnl("Cannot assign requested address"));
        }
        self.link_mut(index).mac = mac;
        Ok(())
    }

    /// `ip link set DEV mtu N`, with the device limits and the protocol tear-downs
    /// Linux applies below 68 (IPv4) and 1280 (IPv6) bytes.
    pub(super) fn set_mtu(&mut self, index: u32, mtu: i32) -> Result<(), CmdError> {
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
    pub(super) fn set_up(&mut self, index: u32, up: bool) -> Result<(), CmdError> {
        if self.is_up(index) == up {
            return Ok(());
        }
        let pos = self.pos(index);
        self.links[pos].up = up;
        if up {
            self.ever_up[pos] = true;
            if self.is_lo(index) && self.links[pos].mtu >= IPV4_MIN_MTU {
                // Linux gives lo its address on every up; a duplicate is ignored.
                let _ = self.insert_v4(index, Ipv4Addr::LOCALHOST, 8, true);
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
        }
        Ok(())
    }

    /// IPv6 coming up on a link: its automatic address (`::1` on lo, the EUI-64
    /// link-local elsewhere) and the prefix routes of all its addresses.
    fn ipv6_up(&mut self, index: u32) {
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
        let present = self.link(index).addrs.iter().any(|a| a.addr == auto.addr);
        // With the address table full, the link-local address is the one left out.
        if !present && (exempt || self.addr_count() < MAX_ADDRS) {
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
        }
    }

    // ---- addresses ----

    /// Puts an IPv4 address where Linux would: a secondary at the end of the IPv4
    /// addresses, a primary after the last primary of the same or a wider scope.
    /// Returns whether it became primary.
    fn insert_v4(
        &mut self,
        index: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
        quiet: bool,
    ) -> Result<bool, CmdError> {
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
        if !quiet {
            self.check_addr_limit()?;
        }
        let entry = IfAddr {
            addr: IpAddr::V4(addr),
            prefix_len,
        };
        let at = if secondary { n4 } else { at };
        self.link_mut(index).addrs.insert(at, entry);
        Ok(!secondary)
    }

    /// Puts an IPv6 address where Linux would: wider scopes first, and within a
    /// scope the newest first.
    fn insert_v6(&mut self, index: u32, a: IfAddr) {
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

    /// `ip addr add ADDR/LEN [brd X] dev DEV` for IPv4.
    pub(super) fn add_v4(
        &mut self,
        index: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
        brd: Option<Ipv4Addr>,
    ) -> Result<(), CmdError> {
        if addr.is_unspecified() {
            // Linux accepts 0.0.0.0 and quietly adds nothing, before any other check.
            return Ok(());
        }
        if self.is_lo(index) && self.link(index).mtu < IPV4_MIN_MTU {
            return Err(rtnl("No buffer space available"));
        }
        let primary = self.insert_v4(index, addr, prefix_len, false)?;
        self.v4_table = true;
        if let Some(brd) = brd {
            self.broadcasts.push(Broadcast {
                dev: index,
                addr,
                prefix_len,
                brd,
            });
        }
        if primary && self.is_up(index) {
            let a = IfAddr {
                addr: IpAddr::V4(addr),
                prefix_len,
            };
            if let Some(route) = self.v4_connected(index, a) {
                self.insert_route(route);
            }
            self.add_lo_prefix(index, a);
        }
        Ok(())
    }

    /// Records that a primary address of `lo` has its prefix in the local table.
    fn add_lo_prefix(&mut self, index: u32, a: IfAddr) {
        if self.is_lo(index) && has_prefix_route(a) && !self.lo_prefixes.contains(&a) {
            self.lo_prefixes.push(a);
        }
    }

    /// `ip addr add ADDR/LEN dev DEV` for IPv6.
    pub(super) fn add_v6(
        &mut self,
        index: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
    ) -> Result<(), CmdError> {
        if self.ipv6_disabled(index) {
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
        if addr.is_loopback() && !self.is_lo(index) {
            return Err(kernel(
                "ipv6: Cannot assign loopback address on this device.",
            ));
        }
        if self
            .link(index)
            .addrs
            .iter()
            .any(|a| a.addr == IpAddr::V6(addr))
        {
            return Err(kernel("ipv6: address already assigned."));
        }
        self.check_addr_limit()?;
        let a = IfAddr {
            addr: IpAddr::V6(addr),
            prefix_len,
        };
        if addr == Ipv6Addr::LOCALHOST {
            self.loopback6_added = true;
        }
        self.insert_v6(index, a);
        if self.is_up(index) {
            self.add_v6_connected(index, a);
        }
        Ok(())
    }

    /// `ip addr del ADDR[/LEN] dev DEV` for IPv4; without a length, the first
    /// address equal to ADDR goes (iproute2's "wildcard deletion").
    pub(super) fn del_v4(
        &mut self,
        index: u32,
        addr: Ipv4Addr,
        prefix_len: Option<u8>,
    ) -> Result<(), CmdError> {
        if self.is_lo(index) && self.link(index).mtu < IPV4_MIN_MTU {
            return Err(kernel("ipv4: Device not found."));
        }
        let found = self.link(index).addrs.iter().position(|a| {
            a.addr == IpAddr::V4(addr) && prefix_len.is_none_or(|p| p == a.prefix_len)
        });
        let i = found.ok_or_else(|| kernel("ipv4: Address not found."))?;
        self.remove_v4_at(index, i);
        Ok(())
    }

    /// `ip -4 addr del dev DEV` without an address: Linux takes the first one.
    pub(super) fn del_first_v4(&mut self, index: u32) -> Result<(), CmdError> {
        if self.is_lo(index) && self.link(index).mtu < IPV4_MIN_MTU {
            return Err(kernel("ipv4: Device not found."));
        }
        if self.v4_count(index) == 0 {
            return Err(kernel("ipv4: Address not found."));
        }
        self.remove_v4_at(index, 0);
        Ok(())
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
        self.broadcasts.retain(|b| {
            !(b.dev == index
                && gone
                    .iter()
                    .any(|g| g.addr == IpAddr::V4(b.addr) && g.prefix_len == b.prefix_len))
        });
        if self.v4_count(index) == 0 {
            self.drop_routes_via(index, true);
        }
    }

    /// `ip addr del ADDR[/LEN] dev DEV` for IPv6 (no length means /128).
    pub(super) fn del_v6(
        &mut self,
        index: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
    ) -> Result<(), CmdError> {
        if self.ipv6_disabled(index) {
            return Err(kernel("ipv6: IPv6 is disabled on this device."));
        }
        let target = IfAddr {
            addr: IpAddr::V6(addr),
            prefix_len,
        };
        let i = self
            .link(index)
            .addrs
            .iter()
            .position(|a| *a == target)
            .ok_or_else(|| kernel("ipv6: address not found."))?;
        self.remove_v6_at(index, i);
        Ok(())
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
    pub(super) fn flush_addrs(&mut self, index: u32, ipv4: bool, ipv6: bool) {
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

    // ---- routes ----

    /// Is `addr` in Linux's local table (see [`NetConfig::is_local_addr`])?
    pub(super) fn is_local(&self, addr: IpAddr) -> bool {
        if addr.is_unspecified() {
            return false;
        }
        let assigned = self
            .links
            .iter()
            .any(|l| (l.up || addr.is_ipv4()) && l.addrs.iter().any(|a| a.addr == addr));
        assigned || self.lo_prefix_of(addr).is_some()
    }

    /// The `lo` address whose local prefix holds `addr`.
    fn lo_prefix_of(&self, addr: IpAddr) -> Option<IfAddr> {
        self.lo_prefixes
            .iter()
            .find(|p| in_prefix(addr, p.addr, p.prefix_len))
            .copied()
    }

    /// The broadcast addresses Linux puts in its local table for up links: any
    /// address's explicit `brd`, and the subnet broadcast of primaries shorter
    /// than /31.
    fn is_v4_broadcast(&self, dev: u32, gw: Ipv4Addr) -> bool {
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

    /// The longest-prefix on-link route (no gateway) that holds `addr`.
    fn onlink_route(&self, addr: IpAddr, dev: Option<u32>) -> Option<&Route> {
        let mut best: Option<&Route> = None;
        for r in &self.routes {
            if r.via.is_none()
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
    fn resolve_gw_v4(&self, gw: Ipv4Addr, dev: Option<u32>) -> Result<u32, CmdError> {
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
        self.onlink_route(IpAddr::V4(gw), dev)
            .map(|r| r.dev)
            .ok_or_else(invalid)
    }

    /// The longest-prefix IPv6 route holding `addr` (lowest metric on a tie), only
    /// through `dev` if given.
    fn lpm_v6(&self, addr: Ipv6Addr, dev: Option<u32>) -> Option<&Route> {
        let mut best: Option<&Route> = None;
        for r in &self.routes {
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
    fn resolve_gw_v6(&self, gw: Ipv6Addr, dev: Option<u32>) -> Result<u32, CmdError> {
        let link_local = gw.segments()[0] & 0xffc0 == 0xfe80;
        // A link-local gateway only clashes with the egress device's addresses.
        let is_own = |d: u32| {
            if link_local {
                let l = self.link(d);
                l.up && l.addrs.iter().any(|a| a.addr == IpAddr::V6(gw))
            } else {
                self.is_local(IpAddr::V6(gw))
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
            match self.lpm_v6(gw, dev).filter(onlink) {
                Some(r) => egress = Some(r.dev),
                _ => {
                    // The full lookup: the local table first.
                    let local = self
                        .links
                        .iter()
                        .find(|l| l.up && l.addrs.iter().any(|a| a.addr == IpAddr::V6(gw)));
                    let found = match local {
                        Some(l) => Some(l.index),
                        None => self.lpm_v6(gw, None).filter(onlink).map(|r| r.dev),
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

    /// `ip route add` (or `replace`): Linux's checks, then the table.
    pub(super) fn add_route(&mut self, req: RouteReq, replace: bool) -> Result<(), CmdError> {
        let via = req.via.filter(|g| !g.is_unspecified());
        let (dst, nh_dev) = match req.dst {
            IpAddr::V4(_) => {
                if network(req.dst, req.prefix_len) != req.dst {
                    return Err(kernel("Invalid prefix for given prefix length."));
                }
                self.v4_table = true;
                let dev = match (via, req.dev) {
                    (None, None) => return Err(rtnl("No such device")),
                    (Some(IpAddr::V4(gw)), dev) => self.resolve_gw_v4(gw, dev)?,
                    (Some(IpAddr::V6(_)), _) => return Err(mixed_families()),
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
                (req.dst, dev)
            }
            IpAddr::V6(_) => {
                if req.dev.is_some_and(|d| self.ipv6_disabled(d)) {
                    return Err(rtnl("No such device"));
                }
                let dev = match (via, req.dev) {
                    (None, None) => return Err(rtnl("No such device")),
                    (Some(IpAddr::V6(gw)), dev) => {
                        let d = self.resolve_gw_v6(gw, dev)?;
                        if !self.is_up(d) {
                            return Err(kernel("Nexthop device is not up."));
                        }
                        d
                    }
                    (Some(IpAddr::V4(_)), _) => return Err(mixed_families()),
                    (None, Some(d)) => {
                        if !self.is_up(d) {
                            return Err(kernel("Nexthop device is not up."));
                        }
                        d
                    }
                };
                if let Some(src) = req.src {
                    // A global source may sit on any up link; one of link or host
                    // scope (fe80::/10, ::1) only on the route's own device.
                    let scoped = matches!(src, IpAddr::V6(v6) if v6.is_unicast_link_local() || v6.is_loopback());
                    let ok = self.links.iter().any(|l| {
                        l.up && (!scoped || req.dev.is_none_or(|d| d == l.index))
                            && l.addrs.iter().any(|a| a.addr == src)
                    });
                    if !ok {
                        return Err(kernel("Invalid source address."));
                    }
                }
                (network(req.dst, req.prefix_len), dev)
            }
        };
        let route = Route {
            dst,
            prefix_len: req.prefix_len,
            via,
            dev: nh_dev,
            proto: RouteProto::Boot,
            src: req.src,
        };
        // IPv4 routes clash on the prefix alone; IPv6 ones also on the metric.
        let clash = self.routes.iter().position(|r| {
            r.dst == route.dst && r.prefix_len == route.prefix_len && r.metric() == route.metric()
        });
        match clash {
            Some(_) if !replace => Err(rtnl("File exists")),
            Some(i) => {
                let extra = usize::from(self.routes[i].proto == RouteProto::Kernel);
                self.check_route_limit(extra)?;
                self.routes[i] = route;
                Ok(())
            }
            None => {
                self.check_route_limit(1)?;
                self.insert_route(route);
                Ok(())
            }
        }
    }

    /// `ip route del`: the first route (in table order) that matches what was given.
    pub(super) fn del_route(&mut self, req: RouteReq) -> Result<(), CmdError> {
        let dst = match req.dst {
            IpAddr::V4(_) => {
                if network(req.dst, req.prefix_len) != req.dst {
                    return Err(kernel("Invalid prefix for given prefix length."));
                }
                if !self.v4_table {
                    return Err(kernel("FIB table does not exist."));
                }
                req.dst
            }
            IpAddr::V6(_) => network(req.dst, req.prefix_len),
        };
        let via = req.via.filter(|g| !g.is_unspecified());
        let same_prefix = |r: &&Route| r.dst == dst && r.prefix_len == req.prefix_len;
        let found = self.routes.iter().position(|r| {
            same_prefix(&r)
                && via.is_none_or(|g| r.via == Some(g))
                && req.dev.is_none_or(|d| d == r.dev)
                && req.src.is_none_or(|s| r.src == Some(s))
        });
        let Some(i) = found else {
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
        self.routes.remove(i);
        Ok(())
    }

    /// `ip route flush`: every route of a family that the filter selects.
    pub(super) fn flush_routes(
        &mut self,
        ipv6: bool,
        selected: impl Fn(&Route) -> bool,
    ) -> Result<(), CmdError> {
        if !ipv6 && !self.v4_table {
            return Err(CmdError::new(
                2,
                "Error: ipv4: FIB table does not exist.\nFlush terminated",
            ));
        }
        self.remove_routes(|r| !selected(r));
        Ok(())
    }

    // ---- lookups ----

    /// The source address Linux would choose for IPv4 traffic out of `dev` to `to`.
    fn pick_src_v4(&self, dev: u32, to: IpAddr) -> Option<IpAddr> {
        let primaries = |index: u32| {
            (0..self.v4_count(index))
                .filter(move |&i| !self.is_secondary(index, i))
                .map(move |i| self.link(index).addrs[i])
        };
        primaries(dev)
            .find(|a| in_prefix(to, a.addr, a.prefix_len))
            .or_else(|| {
                primaries(dev).find(|a| v4(a.addr).is_some_and(|x| v4_scope(x) == SCOPE_UNIVERSE))
            })
            .or_else(|| {
                self.links
                    .iter()
                    .filter(|l| l.up && l.index != dev)
                    .flat_map(|l| primaries(l.index))
                    .find(|a| v4(a.addr).is_some_and(|x| v4_scope(x) == SCOPE_UNIVERSE))
            })
            .map(|a| a.addr)
    }

    /// The source address for IPv6 traffic out of `dev` to `to`: same scope,
    /// longest common prefix, as RFC 6724 prefers.
    fn pick_src_v6(&self, dev: u32, to: Ipv6Addr) -> Option<IpAddr> {
        let rank = v6_rank(to);
        let score = |a: &IfAddr| {
            let IpAddr::V6(x) = a.addr else { return None };
            if x.is_loopback() || v6_rank(x) != rank {
                return None;
            }
            Some((u128::from(x) ^ u128::from(to)).leading_zeros())
        };
        let best_on = |l: &Link| {
            let mut best: Option<(u32, IpAddr)> = None;
            for a in &l.addrs {
                if let Some(s) = score(a) {
                    if best.is_none_or(|b| s > b.0) {
                        best = Some((s, a.addr));
                    }
                }
            }
            best.map(|b| b.1)
        };
        best_on(self.link(dev)).or_else(|| {
            self.links
                .iter()
                .filter(|l| l.up && l.index != dev)
                .find_map(best_on)
        })
    }

    /// Where a packet to `dst` goes (see [`NetConfig::lookup`]).
    pub(super) fn lookup(&self, dst: IpAddr) -> Option<NextHop> {
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
                return Some(NextHop {
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
            return None;
        }
        let mut best: Option<&Route> = None;
        for r in &self.routes {
            if self.is_up(r.dev)
                && in_prefix(dst, r.dst, r.prefix_len)
                && best.is_none_or(|b| r.prefix_len > b.prefix_len)
            {
                best = Some(r);
            }
        }
        let r = best?;
        if self.is_lo(r.dev) {
            // Through lo, Linux delivers IPv4 locally ("cache <local>"); IPv6 only
            // loops back to be dropped.
            return match dst {
                IpAddr::V4(_) => Some(NextHop {
                    dev: r.dev,
                    addr: dst,
                    src: r.src,
                    local: true,
                }),
                IpAddr::V6(_) => None,
            };
        }
        let addr = r.via.unwrap_or(dst);
        // Linux picks an IPv4 source near the next hop, an IPv6 one near the
        // destination.
        let src = r.src.or_else(|| match dst {
            IpAddr::V4(_) => self.pick_src_v4(r.dev, addr),
            IpAddr::V6(d) => self.pick_src_v6(r.dev, d),
        });
        Some(NextHop {
            dev: r.dev,
            addr,
            src,
            local: false,
        })
    }
}

/// Whether Linux gives a primary IPv4 address a prefix route (and a subnet
/// broadcast): not for /32, not when the network is 0.0.0.0, not for a multicast
/// address.
fn has_prefix_route(a: IfAddr) -> bool {
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

impl NetConfig {
    fn lo() -> Link {
        Link {
            index: 1,
            name: "lo".to_string(),
            kind: LinkKind::Loopback,
            up: false,
            mtu: 65536,
            mac: [0; 6],
            addrs: Vec::new(),
        }
    }

    /// A fresh stack as Linux has a fresh network namespace with one tap device:
    /// link 1 `lo` (down, MTU 65536), link 2 `ifname` (Ethernet, down, MTU 1500,
    /// hardware address `mac`), no addresses, no routes.
    pub fn new(ifname: &str, mac: [u8; 6]) -> NetConfig {
        let ether = Link {
            index: 2,
            name: ifname.to_string(),
            kind: LinkKind::Ether,
            up: false,
            mtu: 1500,
            mac,
            addrs: Vec::new(),
        };
        NetConfig {
            state: State::new(vec![Self::lo(), ether]),
            generation: 0,
        }
    }

    /// A stack with no VDE connection: only `lo`.
    pub fn loopback_only() -> NetConfig {
        NetConfig {
            state: State::new(vec![Self::lo()]),
            generation: 0,
        }
    }

    /// The links, in index order.
    pub fn links(&self) -> &[Link] {
        &self.state.links
    }

    /// The link with this name.
    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.state.links.iter().find(|l| l.name == name)
    }

    /// The link with this index.
    pub fn link_by_index(&self, index: u32) -> Option<&Link> {
        self.state.links.iter().find(|l| l.index == index)
    }

    /// The main routing table, IPv4 then IPv6, in the order `ip route show` lists it
    /// (connected routes of up links included).
    pub fn routes(&self) -> Vec<Route> {
        self.state.routes.clone()
    }

    /// Where a packet to `dst` goes, decided as Linux would (and as `ip route get`
    /// shows): the stack's own addresses, and the prefixes of `lo`'s addresses
    /// (127.0.0.0/8), are local, which needs `lo` up; otherwise the longest
    /// matching route (connected prefixes and gateways alike; routes exist only on
    /// up links). An IPv4 route through `lo` delivers locally too. `None` means the
    /// network is unreachable (ENETUNREACH).
    ///
    /// Simplifications: with `lo` down, Linux still finds its own addresses in the
    /// local table and then drops the packets (a connect times out), here they are
    /// looked up like other destinations; an IPv6 route through `lo`, where Linux
    /// loops packets back to drop them, gives `None`.
    pub fn lookup(&self, dst: IpAddr) -> Option<NextHop> {
        self.state.lookup(dst)
    }

    /// Whether `addr` is one of the stack's own addresses, as `bind()` decides
    /// (Linux's local table). IPv4: an address of any link, up or down, or any
    /// address inside the prefix of an address of `lo` (all of 127.0.0.0/8 once
    /// 127.0.0.1/8 is there); Linux installs such a prefix while `lo` is up and
    /// keeps it after `lo` goes down. IPv6: an address of an up link. The
    /// unspecified addresses are not "assigned"; callers handle wildcards.
    pub fn is_local_addr(&self, addr: IpAddr) -> bool {
        self.state.is_local(addr)
    }

    /// Whether `addr` is an IPv4 broadcast address of this stack, where sending
    /// needs `SO_BROADCAST`: the limited broadcast 255.255.255.255, or a broadcast
    /// address Linux keeps in its local table for an up link.
    pub fn is_broadcast(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(v4) => {
                v4.is_broadcast()
                    || self
                        .state
                        .links
                        .iter()
                        .any(|l| self.state.is_v4_broadcast(l.index, v4))
            }
            IpAddr::V6(_) => false,
        }
    }

    /// A counter that moves whenever a command changes the configuration.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Runs a whole stackcmd string: splits it into commands, runs them in order and
    /// stops at the first failure, like `vde_stackcmd`. On success returns what the
    /// commands printed on standard output (only `show` commands print).
    pub fn run(&mut self, cmds: &str) -> Result<String, super::CmdError> {
        let mut out = String::new();
        for argv in super::split_commands(cmds) {
            let before = self.state.clone();
            let result = super::ip::run_command(&mut self.state, &argv);
            if self.state != before {
                self.generation += 1;
            }
            out.push_str(&result?);
        }
        Ok(out)
    }
}

/// The kernel route to the prefix of `a` through `dev`.
fn prefix_route(dev: u32, a: IfAddr, src: Option<IpAddr>) -> Route {
    Route {
        dst: network(a.addr, a.prefix_len),
        prefix_len: a.prefix_len,
        via: None,
        dev,
        proto: RouteProto::Kernel,
        src,
    }
}
