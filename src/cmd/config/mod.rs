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
//!
//! The model knows nothing of the command language above it: it offers changes,
//! each with Linux's checks and side effects, and answers questions. Address and
//! route changes come in two halves, so that a command can check before it
//! changes anything: a `check_*` method that returns Linux's refusal or exactly
//! the change to make, and an `apply_*` method that makes it and cannot fail. This file holds the types,
//! [`NetConfig`]'s public face and the link table every part shares; each concern
//! of the kernel lives in its own part:
//! - `links`: `ip link set` and what up, down and MTU changes do to the rest;
//! - `addrs`: IPv4 and IPv6 addresses, their order, secondaries and limits;
//! - `routes`: the main table, connected routes and route changes;
//! - `neighbors`: the neighbour table's static entries;
//! - `lifetimes`: addresses' and routes' lifetimes (SLAAC, `valid_lft`,
//!   routers' routes), on a clock the caller sets;
//! - `local`: the local table (own addresses, `lo`'s prefixes, broadcasts);
//! - `lookup`: route lookup and source address selection, and the answer of
//!   `ip route get` made of them;
//! - `prefix`: the address arithmetic they all use.

mod addrs;
mod dad;
mod lifetimes;
mod links;
mod local;
mod lookup;
mod neighbors;
mod prefix;
mod routes;

use super::error::CmdError;
use addrs::has_prefix_route;
pub(super) use addrs::{AddrAttrs, AddrReq};
#[cfg(test)]
pub(super) use addrs::{AddrChange, V4Slot};
pub(crate) use lifetimes::{AddrTimes, Lifetime, RoutePref, RouterRoute};
pub(crate) use links::{LinkFlag, LinkSettings};
pub(super) use lookup::{RouteAnswer, RouteQuery};
pub(super) use neighbors::NeighMode;
pub(super) use prefix::{in_prefix, mask_v4};
#[cfg(test)]
pub(super) use routes::RoutePlace;
pub(super) use routes::{route_order, RouteMode, RouteReq};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// How many addresses a stack holds, not counting the loopback's own
/// `127.0.0.1/8` and `::1/128`. Linux has no such limit; this one only bounds
/// the model. smoltcp's interface holds 8 addresses: the engine serves the rest
/// itself (see `engine::config_plan`).
pub const MAX_ADDRS: usize = 64;
/// How many routes `ip route add` may create (connected routes do not count):
/// smoltcp's route table (its feature `iface-max-route-count-64`) has this many
/// slots, which the engine fills with at most one route per prefix.
pub const MAX_USER_ROUTES: usize = 64;

/// Below this, Linux tears IPv4 down on a device.
const IPV4_MIN_MTU: u32 = 68;
/// Below this, Linux tears IPv6 down on a device.
const IPV6_MIN_MTU: u32 = 1280;

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
    /// A default route a router advertisement gave (`proto ra`).
    Ra,
    /// A route added with `ip route add` (iproute2's default protocol, "boot").
    Boot,
    /// A route added with `ip route add ... protocol P` naming another
    /// protocol (`static`, `dhcp`, a number...): its rtnetlink number. The
    /// stack treats it as any route added by hand; `ip` shows the protocol.
    Other(u8),
}

impl RouteProto {
    /// Its rtnetlink number (`RTPROT_*`), as selectors and deletes give it.
    pub(crate) fn number(self) -> u32 {
        match self {
            RouteProto::Kernel => 2,
            RouteProto::Boot => 3,
            RouteProto::Ra => 9,
            RouteProto::Other(n) => u32::from(n),
        }
    }

    /// The protocol of a route `ip route add ... protocol N` adds: a route
    /// added by hand whatever it says (`proto kernel` or `proto ra` only
    /// label it, as on Linux, where what a route is comes from its flags).
    pub(crate) fn added_as(n: u8) -> RouteProto {
        match n {
            3 => RouteProto::Boot,
            n => RouteProto::Other(n),
        }
    }

    /// Its name as iproute2 prints it (`/etc/iproute2/rt_protos`' names), or
    /// its number.
    ///
    /// ```
    /// use vdestack::cmd::RouteProto;
    /// assert_eq!(RouteProto::Kernel.name(), "kernel");
    /// assert_eq!(RouteProto::Other(4).name(), "static");
    /// assert_eq!(RouteProto::Other(77).name(), "77");
    /// ```
    pub fn name(self) -> String {
        crate::cmd::show::protocol_name(self.number())
    }

    /// Whether a command added the route (not the kernel for an address, nor
    /// a router advertisement).
    pub(crate) fn by_user(self) -> bool {
        !matches!(self, RouteProto::Kernel | RouteProto::Ra)
    }
}

/// What a route does with what it matches (`ip route add TYPE PREFIX`): send
/// it on, or refuse it with an error, as Linux's reject routes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RouteType {
    /// Forwarded through the route's device (the default).
    #[default]
    Unicast,
    /// Refused with "no route to host" (EHOSTUNREACH).
    Unreachable,
    /// Refused as administratively prohibited (EACCES).
    Prohibit,
    /// Dropped without a word; a local sender gets EINVAL.
    Blackhole,
    /// The lookup ends here without a route (ENETUNREACH), as if the table
    /// had none.
    Throw,
    /// A destination of the stack's own (the local table's entries for its
    /// addresses, or `ip route add local PREFIX`).
    Local,
    /// A broadcast address of a link (the local table).
    Broadcast,
    /// An anycast address of the stack's (`ip route add anycast`).
    Anycast,
    /// Multicast destinations (`ip route add multicast`, the local table's
    /// IPv6 `ff00::/8`).
    Multicast,
    /// `ip -6 route add nat`: Linux's IPv6 keeps the type as a label only and
    /// forwards as a unicast route does (IPv4 refuses it). Into the local
    /// table unless another is named.
    Nat,
    /// `ip -6 route add xresolve`: a label only too, as [`RouteType::Nat`]
    /// (into the main table).
    Xresolve,
}

impl RouteType {
    /// The word iproute2 prints and reads for it.
    pub fn name(self) -> &'static str {
        match self {
            RouteType::Unicast => "unicast",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
            RouteType::Blackhole => "blackhole",
            RouteType::Throw => "throw",
            RouteType::Local => "local",
            RouteType::Broadcast => "broadcast",
            RouteType::Anycast => "anycast",
            RouteType::Multicast => "multicast",
            RouteType::Nat => "nat",
            RouteType::Xresolve => "xresolve",
        }
    }

    /// Whether the route refuses what it matches (a reject route).
    pub fn rejects(self) -> bool {
        matches!(
            self,
            RouteType::Unreachable | RouteType::Prohibit | RouteType::Blackhole | RouteType::Throw
        )
    }

    /// Whether unicast lookups use the route: unicast and reject routes, and
    /// the IPv6 routes whose type is a label only (the others are for local,
    /// broadcast and multicast delivery, which the model decides from its
    /// addresses).
    pub(crate) fn forwards(self) -> bool {
        self.unicast() || self.rejects()
    }

    /// Whether the route sends what it matches on as a unicast route does:
    /// `unicast`, and IPv6's `nat` and `xresolve`, whose type Linux keeps
    /// without acting on it.
    pub(crate) fn unicast(self) -> bool {
        matches!(
            self,
            RouteType::Unicast | RouteType::Nat | RouteType::Xresolve
        )
    }
}

/// Why no packet leaves for a destination ([`NetConfig::route_to`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoRoute {
    /// No route matches, or a `throw` route does: ENETUNREACH.
    NetUnreachable,
    /// An `unreachable` route matches: EHOSTUNREACH.
    HostUnreachable,
    /// A `prohibit` route matches: EACCES.
    Prohibited,
    /// A `blackhole` route matches: EINVAL.
    Blackhole,
}

/// A route of a routing table (the main one unless [`Route::table`] says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// Unicast, or a reject route's type.
    pub kind: RouteType,
    /// The destination network (host bits clear).
    pub dst: IpAddr,
    /// The destination prefix length (0: default route).
    pub prefix_len: u8,
    /// The gateway; `None` for an on-link route. An IPv4 route's may be IPv6
    /// (`via inet6 GW`, RFC 5549).
    pub via: Option<IpAddr>,
    /// The index of the link the route goes out of; for a reject route, `lo`
    /// (Linux shows IPv6 ones there; IPv4 ones have no device, see
    /// [`Route::device`]).
    pub dev: u32,
    /// Who added it.
    pub proto: RouteProto,
    /// The preferred source address, if the route names one.
    pub src: Option<IpAddr>,
    /// The metric (`metric`, `priority` or `preference` N): among routes to the
    /// same prefix, the lowest wins.
    pub metric: u32,
    /// The weight of this nexthop of a multipath route (1 to 256): its share
    /// of the flows.
    pub weight: u16,
    /// The IPv4 multipath route this is a nexthop of (0: none): its nexthops
    /// share the number and follow each other in the table. (An IPv6
    /// multipath route is the routes through a gateway to one prefix with
    /// one metric, as Linux's siblings are; IPv4 keeps such routes apart.)
    pub group: u32,
    /// Whether the route has scope universe without a gateway: Linux gives it
    /// to a route written as `nexthop dev DEV` (the route of `dev DEV` alone
    /// has link scope). Such a route shows no `scope link` and does not make
    /// a gateway reachable, as a link-scope route does.
    pub universe: bool,
    /// The routing table the route is in (254, the main table, unless `ip route
    /// ... table N` said otherwise). Lookups read the main table, as a
    /// namespace's default rules (`ip rule`) do after the local table, and
    /// the `local` routes of the local table; the others are kept and listed
    /// only.
    pub table: u32,
}

/// The id of Linux's main routing table (`RT_TABLE_MAIN`).
pub(crate) const MAIN_TABLE: u32 = 254;
/// The id of Linux's local routing table (`RT_TABLE_LOCAL`).
pub(crate) const LOCAL_TABLE: u32 = 255;
/// The id of the table iproute2 names `default` (`RT_TABLE_DEFAULT`).
pub(crate) const DEFAULT_TABLE: u32 = 253;

impl Route {
    /// The route's metric: as given, or as Linux assigns it by default (0 for
    /// IPv4; for IPv6, 256 for the kernel's connected routes and 1024 for added
    /// ones).
    pub fn metric(&self) -> u32 {
        self.metric
    }

    /// The device Linux gives the route: none for an IPv4 reject route.
    pub fn device(&self) -> Option<u32> {
        (!(self.kind.rejects() && self.dst.is_ipv4())).then_some(self.dev)
    }
}

/// The state of a neighbour entry (`nud STATE`), as Linux names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NeighborState {
    /// `PERMANENT`: a static entry, never probed, never replaced by what the
    /// wire says (`ip neigh add`'s default).
    Permanent,
    /// `NOARP`: valid without resolution.
    Noarp,
    /// `REACHABLE`: confirmed lately.
    Reachable,
    /// `STALE`: valid, unconfirmed for a while.
    Stale,
    /// `NONE`: an entry without an address.
    None,
}

impl NeighborState {
    /// The name `ip neigh show` prints.
    pub fn name(self) -> &'static str {
        match self {
            NeighborState::Permanent => "PERMANENT",
            NeighborState::Noarp => "NOARP",
            NeighborState::Reachable => "REACHABLE",
            NeighborState::Stale => "STALE",
            NeighborState::None => "NONE",
        }
    }
}

/// A neighbour entry: an on-link address and its hardware address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Neighbor {
    /// The link it is on.
    pub dev: u32,
    /// The neighbour's IP address.
    pub addr: IpAddr,
    /// Its hardware address (none for a `NONE` entry).
    pub mac: Option<[u8; 6]>,
    /// Its state.
    pub state: NeighborState,
}

impl Neighbor {
    /// An entry: what the engine learned from the wire, for `ip neigh show`.
    pub fn new(dev: u32, addr: IpAddr, mac: Option<[u8; 6]>, state: NeighborState) -> Neighbor {
        Neighbor {
            dev,
            addr,
            mac,
            state,
        }
    }
}

/// What a running stack knows that the model cannot: given to
/// [`NetConfig::run_observed`] for the commands that show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observed {
    /// The neighbours learned from the wire (`ip neigh show`).
    pub neighbors: Vec<Neighbor>,
    /// Each link's counters, by link index (`ip -s link`); a link not listed
    /// counted nothing.
    pub stats: Vec<(u32, LinkStats)>,
}

/// A link's counters, as `ip -s link` prints them: frames and their bytes
/// received and sent, and those that failed or were dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Bytes received (Ethernet headers included; on `lo`, IP packets').
    pub rx_bytes: u64,
    /// Frames received.
    pub rx_packets: u64,
    /// Frames received in error.
    pub rx_errors: u64,
    /// Frames received and dropped (the link was down).
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Frames that failed to go out.
    pub tx_errors: u64,
    /// Frames dropped on the way out.
    pub tx_dropped: u64,
}

/// Where a packet to some destination goes: the answer of [`NetConfig::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NextHop {
    /// The link index to send on (`lo` for local destinations).
    pub dev: u32,
    /// The gateway, or the destination itself when it is on-link or local. An
    /// IPv4 destination's gateway may be IPv6 (RFC 5549).
    pub addr: IpAddr,
    /// The source address Linux would pick, if any address is usable.
    pub src: Option<IpAddr>,
    /// The destination is one of the stack's own addresses (or in 127.0.0.0/8,
    /// or under a `local` route).
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

/// The label given to an IPv4 address with `ip addr add ... label NAME` (an
/// address without one shows its link's name).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AddrLabel {
    dev: u32,
    addr: Ipv4Addr,
    prefix_len: u8,
    label: String,
}

/// Everything `ip` can change; compared before and after each command to decide
/// whether the generation moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct State {
    pub(super) links: Vec<Link>,
    /// Per link (same order): has it ever been up? Linux attaches the default
    /// queueing discipline on the first up, and `ip` shows it from then on.
    ever_up: Vec<bool>,
    /// Per link (same order): what `ip link set` records besides the link's
    /// own fields.
    link_settings: Vec<LinkSettings>,
    broadcasts: Vec<Broadcast>,
    labels: Vec<AddrLabel>,
    /// The addresses added with a `scope`, `metric` or `noprefixroute` (see
    /// [`AddrAttrs`]); the others have the defaults.
    addr_attrs: Vec<(u32, IfAddr, AddrAttrs)>,
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
    /// The tables other than main that Linux has created, by family (true:
    /// IPv6) and id: the first route added to a table creates it, and it
    /// stays when its routes go. Listing, deleting or flushing in a table
    /// that does not exist fails.
    other_tables: Vec<(bool, u32)>,
    /// The lifetimes of the addresses that have them (see `lifetimes`).
    lifetimes: Vec<lifetimes::AddrLifetimes>,
    /// The expiry, hop limit and preference of the routes that have them.
    route_extras: Vec<lifetimes::RouteExtras>,
    /// The model's clock, set by its caller: what lifetimes count from.
    now: Duration,
    /// How many times IPv6 started on a link (up, or the MTU back to 1280):
    /// router discovery starts again each time, as Linux's does.
    ipv6_starts: u64,
    /// The main table, kept in the order `ip route show` lists it.
    pub(super) routes: Vec<Route>,
    /// The kernel's entries of the local table, in the order Linux inserted
    /// them (see `local`): made from the addresses after each change.
    local_table: Vec<Route>,
    /// The entries made from the addresses that Linux does not have: deleted
    /// (`ip route del|flush`), or refused for their source (see `local`).
    local_missing: Vec<Route>,
    /// The neighbour entries made by `ip neigh`, oldest first.
    pub(super) neighbors: Vec<Neighbor>,
    /// Learned neighbours (link, address) an `ip neigh flush` selected, for
    /// the engine to forget ([`NetConfig::take_flushed_neighbors`]).
    pub(super) flushed: Vec<(u32, IpAddr)>,
}

/// The configuration of one stack: links, addresses, routes.
///
/// Change it with [`NetConfig::run`] (stackcmd strings of `ip` commands); read it
/// with the accessors. [`NetConfig::generation`] moves on every change.
#[derive(Debug, Clone)]
pub struct NetConfig {
    state: State,
    generation: u64,
}

/// A refusal the kernel reports with an errno only: iproute2 prints its text.
pub(super) fn rtnl(what: &str) -> CmdError {
    CmdError::new(2, format!("RTNETLINK answers: {what}"))
}

/// A refusal the kernel explains itself (netlink extended ack).
pub(crate) fn kernel(what: &str) -> CmdError {
    CmdError::new(2, format!("Error: {what}"))
}

/// The IPv4 address, if `addr` is one.
fn v4(addr: IpAddr) -> Option<Ipv4Addr> {
    match addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

// The link table, which every part reads.
impl State {
    fn new(links: Vec<Link>) -> State {
        State {
            ever_up: vec![false; links.len()],
            link_settings: links.iter().map(|l| LinkSettings::new(l.kind)).collect(),
            links,
            broadcasts: Vec::new(),
            labels: Vec::new(),
            addr_attrs: Vec::new(),
            lo_prefixes: Vec::new(),
            loopback6_added: false,
            v4_table: false,
            other_tables: Vec::new(),
            lifetimes: Vec::new(),
            route_extras: Vec::new(),
            now: Duration::ZERO,
            ipv6_starts: 0,
            routes: Vec::new(),
            local_table: Vec::new(),
            local_missing: Vec::new(),
            neighbors: Vec::new(),
            flushed: Vec::new(),
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

    fn v4_count(&self, index: u32) -> usize {
        self.link(index)
            .addrs
            .iter()
            .filter(|a| a.addr.is_ipv4())
            .count()
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
        self.state
            .routes
            .iter()
            .filter(|r| r.table == MAIN_TABLE)
            .copied()
            .collect()
    }

    /// Every table's routes, as `ip route show table all` lists them (the
    /// kernel's local table entries included): IPv4 then IPv6, each family's
    /// tables in the order Linux lists them. Only the main table's are looked
    /// up ([`Self::routes`]), and the `local` routes of the local table.
    pub fn all_routes(&self) -> Vec<Route> {
        let mut all: Vec<Route> = self
            .state
            .routes
            .iter()
            .copied()
            .chain(self.state.kernel_local_routes())
            .collect();
        all.sort_by(route_order);
        all
    }

    /// Where a packet to `dst` goes, decided as Linux would (and as `ip route get`
    /// shows): the stack's own addresses, the prefixes of `lo`'s addresses
    /// (127.0.0.0/8), and the addresses under a `local` route of the local or
    /// main table (AnyIP), are local, which needs `lo` up; otherwise the longest
    /// matching route (connected prefixes and gateways alike; routes exist only on
    /// up links). An IPv4 route through `lo` delivers locally too. An IPv6
    /// multicast destination goes out of the first up link whose local-table
    /// `multicast ff00::/8` entry is there, before the main table is asked.
    /// `None` means the network is unreachable (ENETUNREACH).
    ///
    /// Simplifications: with `lo` down, Linux still finds its own addresses in the
    /// local table and then drops the packets (a connect times out), here they are
    /// looked up like other destinations; an IPv6 route through `lo`, where Linux
    /// loops packets back to drop them, gives `None`.
    pub fn lookup(&self, dst: IpAddr) -> Option<NextHop> {
        self.state.lookup(dst).ok()
    }

    /// [`NetConfig::lookup`], with why nothing leaves when a reject route
    /// (`unreachable`, `prohibit`, `blackhole`, `throw`) matches.
    pub fn route_to(&self, dst: IpAddr) -> Result<NextHop, NoRoute> {
        self.state.lookup(dst)
    }

    /// Whether `route` is one nexthop of a multipath route with others on up
    /// links.
    pub fn is_multipath(&self, route: &Route) -> bool {
        routes::in_multipath(route) && self.state.nexthops_of(route).nth(1).is_some()
    }

    /// [`NetConfig::lookup`] for one flow: through a multipath route,
    /// the nexthop `hash` (the flow's, stable for it) picks among those whose
    /// links are up, as Linux spreads flows over them.
    pub fn lookup_flow(&self, dst: IpAddr, hash: u64) -> Option<NextHop> {
        self.state.lookup_flow(dst, hash).ok()
    }

    /// Whether a reject route (`unreachable`, `prohibit`, `blackhole`, `throw`)
    /// is what [`NetConfig::route_to`] finds for `dst`. Linux's output lookup
    /// fails there for every packet the stack makes, its answers to incoming
    /// ones too: a SYN-ACK, a reset, an echo reply, an ICMP error (checked on
    /// Linux 6.18, IPv4 and IPv6; datagrams from there are still delivered).
    pub fn rejected(&self, dst: IpAddr) -> bool {
        self.state.rejected(dst)
    }

    /// Whether any route of the main table is a reject route.
    pub fn has_reject_routes(&self) -> bool {
        self.state.has_reject_routes()
    }

    /// Whether `addr` is one of the stack's own addresses, as `bind()` decides
    /// (Linux's local table). IPv4: an address of any link, up or down, or any
    /// address inside the prefix of an address of `lo` (all of 127.0.0.0/8 once
    /// 127.0.0.1/8 is there); Linux installs such a prefix while `lo` is up and
    /// keeps it after `lo` goes down; not one whose local-table entry was
    /// deleted (`ip route del`); any address the lookup finds under a
    /// `local` route of the local or main table (`ip route add local
    /// 10.5.0.0/16 dev lo`, Linux's AnyIP). IPv6: an address of an up link
    /// (Linux asks its address list, not the table: an address under a
    /// `local` route is not one, though packets to it are delivered). The
    /// unspecified addresses are not "assigned"; callers handle wildcards.
    pub fn is_local_addr(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(_) => self.state.is_local(addr),
            IpAddr::V6(_) => self.state.is_own(addr),
        }
    }

    /// Whether a `local` route of the user's makes `addr` the stack's (Linux's
    /// AnyIP): packets to it are delivered to the stack's sockets, IPv4 and
    /// IPv6 alike, and a lookup answers `local`.
    pub(crate) fn is_anyip(&self, addr: IpAddr) -> bool {
        self.state.anyip_route(addr).is_some()
    }

    /// The prefixes of the `local` routes the lookup reads (in the local and
    /// main tables): where [`NetConfig::is_anyip`] may answer yes.
    pub(crate) fn anyip_prefixes(&self) -> Vec<(IpAddr, u8)> {
        self.state.anyip_prefixes()
    }

    /// The stack's addresses, and broadcast addresses, whose local-table entry
    /// was deleted: packets to them are dropped, ARP requests for them not
    /// answered, as Linux does (it does not forward).
    pub(crate) fn not_taken_in(&self) -> Vec<IpAddr> {
        self.state.not_taken_in()
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

    /// The neighbour entries `ip neigh add|replace` made, oldest first: the
    /// engine keeps those of an up link in its neighbour cache.
    pub fn neighbors(&self) -> &[Neighbor] {
        &self.state.neighbors
    }

    /// The learned neighbours (link, address) that `ip neigh flush` selected
    /// since the last call: the stack that learned them forgets them.
    pub fn take_flushed_neighbors(&mut self) -> Vec<(u32, IpAddr)> {
        std::mem::take(&mut self.state.flushed)
    }

    /// A counter that moves whenever a command changes the configuration.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Lets `change` work on the model, and moves the generation if it changed
    /// anything (a command that fails half-way may have changed something, as
    /// Linux keeps what a command did before it failed).
    pub(super) fn change<T>(&mut self, change: impl FnOnce(&mut State) -> T) -> T {
        let before = self.state.clone();
        let result = change(&mut self.state);
        self.state.prune_lifetimes();
        self.state.sync_local_table();
        if self.state != before {
            self.generation += 1;
        }
        result
    }
}

// Time and what routers advertise (see `lifetimes`).
impl NetConfig {
    /// Moves the model's clock to `now` (a time on the caller's own clock,
    /// which never goes back), and removes the addresses and routes whose
    /// lifetime ran out by then. Lifetimes count from this clock: `ip addr
    /// show` prints what is left of them. A model whose clock is never moved
    /// stays at zero, and its lifetimes never run.
    pub fn advance_clock(&mut self, now: Duration) {
        self.state.now = self.state.now.max(now);
        if self.state.next_expiry().is_some_and(|at| at <= now) {
            self.change(|state| state.expire());
        }
    }

    /// How many times IPv6 started on a link: router discovery starts again
    /// when this moves.
    pub(crate) fn ipv6_starts(&self) -> u64 {
        self.state.ipv6_starts
    }

    /// The addresses under duplicate address detection (see `dad.rs`), not
    /// used until it ends: their links and themselves.
    pub(crate) fn tentative(&self) -> Vec<(u32, IpAddr)> {
        self.state.tentative().collect()
    }

    /// Whether `addr` on link `dev` is not to be used: under duplicate address
    /// detection, or failed it.
    pub(crate) fn is_tentative(&self, dev: u32, addr: IpAddr) -> bool {
        let link = self.state.link(dev);
        link.addrs
            .iter()
            .find(|a| a.addr == addr)
            .is_some_and(|a| !self.state.is_usable(dev, a))
    }

    /// Duplicate address detection of `addr` on link `dev` ended: the address
    /// is used, or (`duplicate`) failed (`dadfailed`) or removed.
    pub(crate) fn end_dad(&mut self, dev: u32, addr: IpAddr, duplicate: bool) {
        self.change(|state| state.end_dad(dev, addr, duplicate));
    }

    /// When the next address or route runs out of lifetime, on the clock of
    /// [`NetConfig::advance_clock`].
    pub fn next_expiry(&self) -> Option<Duration> {
        self.state.next_expiry()
    }

    /// A prefix a router advertised for autoconfiguration on link `dev`
    /// (RFC 4862 5.5.3): the address made of it and the link's EUI-64,
    /// created or refreshed.
    pub(crate) fn autoconf(
        &mut self,
        dev: u32,
        prefix: Ipv6Addr,
        valid: Lifetime,
        preferred: Lifetime,
    ) {
        self.change(|state| state.autoconf(dev, prefix, valid, preferred));
    }

    /// A route a router advertised on link `dev`, added, refreshed or (with
    /// a lifetime of 0) removed, with the advertisement's hop limit and MTU.
    pub(crate) fn router_route(
        &mut self,
        dev: u32,
        route: RouterRoute,
        lifetime: Lifetime,
        hoplimit_mtu: (Option<u8>, Option<u32>),
        pref: RoutePref,
    ) {
        self.change(|state| state.router_route(dev, route, lifetime, hoplimit_mtu, pref));
    }
}

#[cfg(test)]
impl NetConfig {
    /// The model itself, for the tests of single check steps.
    pub(super) fn state(&self) -> &State {
        &self.state
    }
}
