//! What a new configuration changes in a running stack, decided apart from
//! applying it.
//!
//! Every `ip` command changes the configuration model ([`NetConfig`]); the engine
//! then has to bring smoltcp's interface and its own frame plumbing in line. Some
//! of that has costs smoltcp hides: a new MTU needs a new interface (smoltcp reads
//! a device's MTU once), and any address update empties the neighbour cache. So
//! what to do is worked out first, as a plain [`Plan`] from the model and what
//! runs now ([`Plan::new`], tested below without smoltcp), and the engine carries
//! the plan out (`Engine::sync_config`).

use super::detour::DETOUR_V6;
use super::IFACE_ADDRS;
use crate::cmd::{LinkKind, NetConfig};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address, Ipv6Address};
use std::net::IpAddr;

/// What the running interface has now, of what a configuration sets.
#[derive(Debug, Clone, Copy)]
pub(super) struct Running<'a> {
    /// The hardware address frames go out with.
    pub mac: EthernetAddress,
    /// The MTU the interface was built for.
    pub mtu: usize,
    /// The addresses smoltcp holds.
    pub addrs: &'a [IpCidr],
}

/// What to change so that the running stack matches a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// A new hardware address for the Ethernet link.
    pub mac: Option<EthernetAddress>,
    /// A new MTU for the Ethernet link, which the device boundary keeps (see
    /// `link_mtu.rs`; smoltcp's device claims the largest packet whatever it is).
    pub mtu: Option<usize>,
    /// New addresses for smoltcp (all it holds, in order), when they differ from
    /// those it holds.
    pub addrs: Option<Vec<IpCidr>>,
    /// smoltcp's routes, always written afresh: (destination, gateway) for each
    /// route through a gateway (on-link prefixes come with the addresses).
    pub routes: Vec<(IpCidr, IpAddress)>,
    /// The links' state, and the stack's own addresses, for the frame plumbing
    /// (which loops back what is for them).
    pub lo_up: bool,
    pub wire_up: bool,
    pub local_v4: Vec<Ipv4Address>,
    pub local_v6: Vec<Ipv6Address>,
    /// Addresses smoltcp holds (or broadcasts of theirs) whose local-table
    /// entry was deleted (`ip route del`): the engine drops what comes for
    /// them, and they are not looped back. They stay in smoltcp's table, as
    /// on Linux they stay the link's prefixes' and a source.
    pub not_taken_in: Vec<IpAddr>,
    /// Addresses to announce with the new hardware address (those of the
    /// Ethernet link, when its hardware address changed while it is up).
    pub announce: Vec<IpAddr>,
    /// The stack's addresses that did not fit in smoltcp's table: the engine
    /// lets smoltcp take (AnyIP) the frames to them, and the connections' frames
    /// from them, and answers neighbour solicitations for them itself.
    pub beyond_table: Vec<IpAddress>,
    /// smoltcp's routes for the prefixes of those addresses that no prefix it
    /// holds covers, through made-up next hops (see `detour`), and the made-up
    /// IPv4 one with smoltcp's address in its network.
    pub detours: Vec<(IpCidr, IpAddress)>,
    pub detour_v4: Option<(Ipv4Address, Ipv4Address)>,
    /// Whether IPv6 prefixes are detoured.
    pub detour_v6: bool,
    /// The prefixes of the user's `local` routes the lookup reads (`ip route
    /// add local 10.5.0.0/16 dev lo`: Linux's AnyIP). The engine lets smoltcp
    /// take the frames to an address under one, when the model's lookup ends
    /// on that route (`NetConfig::is_anyip`), and send the connections'
    /// frames from it, as for the addresses beyond its table.
    pub anyip: Vec<IpCidr>,
}

impl Plan {
    /// What bringing a stack running as `running` in line with `config` takes.
    pub(super) fn new(config: &NetConfig, running: Running) -> Plan {
        let ether = config.links().iter().find(|l| l.kind == LinkKind::Ether);
        let mac = ether
            .map(|l| EthernetAddress(l.mac))
            .filter(|&mac| mac != running.mac);
        let mtu = ether
            .map(|l| l.mtu as usize)
            .filter(|&mtu| mtu != running.mtu);
        let mut plan = Plan {
            mac,
            mtu,
            addrs: None,
            routes: Vec::new(),
            lo_up: false,
            wire_up: false,
            local_v4: Vec::new(),
            local_v6: Vec::new(),
            not_taken_in: config.not_taken_in(),
            announce: Vec::new(),
            beyond_table: Vec::new(),
            detours: Vec::new(),
            detour_v4: None,
            detour_v6: false,
            anyip: config
                .anyip_prefixes()
                .into_iter()
                .map(|(dst, len)| IpCidr::new(dst.into(), len))
                .collect(),
        };
        let mut wire_addrs = Vec::new();
        let mut cidrs: Vec<(u8, IpCidr)> = Vec::new();
        for link in config.links() {
            match link.kind {
                LinkKind::Loopback => plan.lo_up = link.up,
                LinkKind::Ether => {
                    plan.wire_up = link.up;
                    wire_addrs = link.addrs.iter().map(|a| a.addr).collect();
                }
            }
            for addr in &link.addrs {
                // Not used until duplicate address detection ends.
                if config.is_tentative(link.index, addr.addr) {
                    continue;
                }
                match addr.addr {
                    _ if plan.not_taken_in.contains(&addr.addr) => {}
                    IpAddr::V4(v4) => plan.local_v4.push(v4),
                    IpAddr::V6(v6) => plan.local_v6.push(v6),
                }
                let rank = match (addr.addr, link.kind) {
                    (IpAddr::V4(_), LinkKind::Ether) => 0,
                    (IpAddr::V4(_), LinkKind::Loopback) => 1,
                    (IpAddr::V6(_), LinkKind::Ether) => 2,
                    (IpAddr::V6(_), LinkKind::Loopback) => 3,
                };
                cidrs.push((rank, IpCidr::new(addr.addr.into(), addr.prefix_len)));
            }
        }
        // smoltcp holds 8 addresses; the model allows more (Linux has no limit).
        // smoltcp decides which destinations are on-link from the prefixes of
        // the addresses it holds, so one address per prefix goes first, then
        // the others; within each, the link's IPv4 addresses, then loopback's,
        // then IPv6 ones. Those that do not fit are the engine's to serve: a
        // stack with 8 prefixes or fewer loses nothing.
        cidrs.sort_by_key(|(rank, _)| *rank);
        let mut prefixes = Vec::new();
        let (mut fits, others): (Vec<IpCidr>, Vec<IpCidr>) =
            cidrs.into_iter().map(|(_, c)| c).partition(|c| {
                let prefix = prefix_of(c);
                let first = !prefixes.contains(&prefix);
                prefixes.push(prefix);
                first
            });
        fits.extend(others);
        let beyond = fits.split_off(IFACE_ADDRS.min(fits.len()));
        plan.beyond_table = beyond.iter().map(IpCidr::address).collect();
        let (detours, detour_v4) = super::detour::detour_routes(&fits, &beyond);
        plan.routes = gateway_routes(config, detour_v4.map(|(gateway, _)| gateway));
        plan.routes.extend(anyip_routes(&plan, &fits));
        plan.detours = detours;
        // The made-up IPv4 next hop is handed to smoltcp only when a route uses it.
        plan.detour_v4 = detour_v4.filter(|(gateway, _)| {
            let uses = |(_, via): &(IpCidr, IpAddress)| *via == IpAddress::Ipv4(*gateway);
            plan.routes.iter().chain(&plan.detours).any(uses)
        });
        plan.detour_v6 = plan
            .routes
            .iter()
            .chain(&plan.detours)
            .any(|(_, via)| *via == IpAddress::Ipv6(DETOUR_V6));
        // smoltcp empties its neighbour cache on every address update, and then
        // resolves one neighbour a second at most: commands that leave the
        // addresses alone (a new MTU or hardware address, a route) must not cost
        // every peer a second.
        if running.addrs != fits.as_slice() {
            plan.addrs = Some(fits);
        }
        if plan.mac.is_some() && plan.wire_up {
            plan.announce = wire_addrs;
        }
        plan
    }
}

/// smoltcp's routes to the prefixes of `local` routes: smoltcp sends only
/// where a prefix it holds or a route leads, so a packet the stack sends to
/// an address under one goes through one of the stack's own addresses that
/// smoltcp holds (`fits`), whose neighbour request the engine answers with
/// the stack's own hardware address (`FrameIo::route`): the packet then comes
/// back in through the loopback, as on Linux it is delivered locally.
fn anyip_routes(plan: &Plan, fits: &[IpCidr]) -> Vec<(IpCidr, IpAddress)> {
    let own = |v4: bool| {
        fits.iter().map(IpCidr::address).find(|a| match a {
            IpAddress::Ipv4(a) => v4 && plan.local_v4.contains(a),
            IpAddress::Ipv6(a) => !v4 && !a.is_loopback() && plan.local_v6.contains(a),
        })
    };
    plan.anyip
        .iter()
        .filter_map(|cidr| Some((*cidr, own(matches!(cidr, IpCidr::Ipv4(_)))?)))
        .collect()
}

/// The on-link prefix of an address: its network bits and length.
fn prefix_of(cidr: &IpCidr) -> (u128, u8, bool) {
    let len = cidr.prefix_len();
    match IpAddr::from(cidr.address()) {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            (u128::from(u32::from(v4) & mask), len, false)
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            (u128::from(v6) & mask, len, true)
        }
    }
}

/// The model's routes through a gateway, as smoltcp takes them: of the routes
/// to one prefix, only the one the model's lookup prefers (the first in table
/// order, the lowest metric), since smoltcp knows no metric and would take the
/// last; and none for a prefix whose preferred route has no gateway. An IPv4
/// route through an IPv6 gateway (RFC 5549) goes through the made-up IPv4 next
/// hop `detour_v4` (see `detour`), or not at all without one; a multipath
/// route through the made-up next hop of its family (the IPv4 one needs
/// `detour_v4`, as above), whose frames take the nexthop of their flow.
fn gateway_routes(config: &NetConfig, detour_v4: Option<Ipv4Address>) -> Vec<(IpCidr, IpAddress)> {
    let mut seen = std::collections::HashSet::new();
    let ether = config
        .links()
        .iter()
        .find(|l| l.kind == LinkKind::Ether)
        .map(|l| l.index);
    config
        .routes()
        .into_iter()
        .filter(|route| seen.insert((route.dst, route.prefix_len)))
        .filter_map(|route| {
            // Each flow of a multipath route takes its own nexthop, chosen at
            // the boundary (one without a gateway too: `nexthop dev DEV`).
            let via = match (route.via, config.is_multipath(&route)) {
                (_, true) if route.dst.is_ipv4() => IpAddress::Ipv4(detour_v4?),
                (_, true) => IpAddress::Ipv6(DETOUR_V6),
                (Some(IpAddr::V6(_)), false) if route.dst.is_ipv4() => IpAddress::Ipv4(detour_v4?),
                // A route added through the link without a gateway (`dev
                // DEV`, `nexthop dev DEV`): its destinations are on-link for
                // the model, not for smoltcp unless an address's prefix
                // holds them, so the engine sends to them itself.
                (None, false)
                    if route.proto.by_user()
                        && route.kind.unicast()
                        && ether.is_some_and(|e| e == route.dev) =>
                {
                    match route.dst {
                        IpAddr::V4(_) => IpAddress::Ipv4(detour_v4?),
                        IpAddr::V6(_) => IpAddress::Ipv6(DETOUR_V6),
                    }
                }
                (via, false) => via?.into(),
            };
            Some((IpCidr::new(route.dst.into(), route.prefix_len), via))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    /// The model after `cmds`, on a fresh stack with link `vde0`, past
    /// duplicate address detection (a tentative address is no smoltcp's).
    fn model(cmds: &str) -> NetConfig {
        let mut config = NetConfig::new("vde0", MAC);
        config.run(cmds).unwrap();
        config.finish_dad();
        config
    }

    /// A fresh interface: the model's first hardware address and MTU, no addresses.
    fn fresh() -> Running<'static> {
        Running {
            mac: EthernetAddress(MAC),
            mtu: 1500,
            addrs: &[],
        }
    }

    fn cidr(s: &str) -> IpCidr {
        let (addr, len) = s.split_once('/').unwrap();
        IpCidr::new(addr.parse::<IpAddr>().unwrap().into(), len.parse().unwrap())
    }

    #[test]
    fn a_multipath_route_goes_through_the_made_up_next_hop_of_its_family() {
        let config = model(
            "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
             /bin/ip -6 addr add fd00::1/64 dev vde0 nodad; \
             /bin/ip route add 10.99.0.0/16 nexthop via 10.0.0.2 nexthop via 10.0.0.3; \
             /bin/ip -6 route add fd99::/64 nexthop via fd00::2 nexthop via fd00::3; \
             /bin/ip route add 10.98.0.0/16 via 10.0.0.2",
        );
        let plan = Plan::new(&config, fresh());
        let made_up = Ipv4Address::new(10, 0, 0, 0);
        assert!(plan
            .routes
            .contains(&(cidr("10.99.0.0/16"), IpAddress::Ipv4(made_up))));
        assert!(plan
            .routes
            .contains(&(cidr("fd99::/64"), IpAddress::Ipv6(DETOUR_V6))));
        assert!(plan
            .routes
            .contains(&(cidr("10.98.0.0/16"), IpAddress::v4(10, 0, 0, 2))));
        assert_eq!(
            plan.detour_v4,
            Some((made_up, Ipv4Address::new(10, 0, 0, 1)))
        );
        assert!(plan.detour_v6);
    }

    #[test]
    fn an_address_whose_local_entry_went_is_held_but_not_taken_in() {
        let config = model(
            "/bin/ip link set lo up; /bin/ip link set vde0 up; \
             /bin/ip addr add 10.0.0.1/24 dev vde0; /bin/ip addr add 10.0.1.1/24 dev vde0; \
             /bin/ip route del local 10.0.0.1 dev vde0 table local; \
             /bin/ip route del broadcast 10.0.1.255 dev vde0 table local",
        );
        let plan = Plan::new(&config, fresh());
        let gone: IpAddr = "10.0.0.1".parse().unwrap();
        let brd: IpAddr = "10.0.1.255".parse().unwrap();
        assert_eq!(plan.not_taken_in, vec![gone, brd]);
        assert!(!plan.local_v4.contains(&Ipv4Address::new(10, 0, 0, 1)));
        assert!(plan.local_v4.contains(&Ipv4Address::new(10, 0, 1, 1)));
        // Still smoltcp's: its prefix stays on-link and it is still a source.
        assert!(plan.addrs.unwrap().contains(&cidr("10.0.0.1/24")));
    }

    #[test]
    fn a_fresh_model_on_a_fresh_interface_changes_nothing() {
        let plan = Plan::new(&NetConfig::new("vde0", MAC), fresh());
        assert_eq!(
            plan,
            Plan {
                mac: None,
                mtu: None,
                addrs: None,
                routes: Vec::new(),
                lo_up: false,
                wire_up: false,
                local_v4: Vec::new(),
                local_v6: Vec::new(),
                not_taken_in: Vec::new(),
                announce: Vec::new(),
                beyond_table: Vec::new(),
                detours: Vec::new(),
                detour_v4: None,
                detour_v6: false,
                anyip: Vec::new(),
            }
        );
    }

    #[test]
    fn local_routes_of_the_tables_looked_up_are_anyip_prefixes() {
        let config = model(
            "/bin/ip link set lo up; /bin/ip link set vde0 up; \
             /bin/ip addr add 10.0.0.1/24 dev vde0; \
             /bin/ip route add local 10.5.0.0/16 dev vde0; \
             /bin/ip route add local 10.6.0.0/16 dev lo table main; \
             /bin/ip route add local 10.7.0.0/16 dev vde0 table 100; \
             /bin/ip -6 route add local fd05::/64 dev vde0; \
             /bin/ip route add 10.5.1.0/24 via 10.0.0.254",
        );
        let plan = Plan::new(&config, fresh());
        for prefix in ["10.5.0.0/16", "10.6.0.0/16", "fd05::/64"] {
            assert!(
                plan.anyip.contains(&cidr(prefix)),
                "{prefix}: {:?}",
                plan.anyip
            );
        }
        assert_eq!(plan.anyip.len(), 3, "{:?}", plan.anyip);
        assert!(
            !plan.anyip.contains(&cidr("10.7.0.0/16")),
            "table 100 is not looked up"
        );
        let addr = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(config.is_anyip(addr("10.5.0.7")));
        assert!(config.is_anyip(addr("10.6.0.7")));
        assert!(config.is_anyip(addr("fd05::7")));
        assert!(!config.is_anyip(addr("10.7.0.7")));
        // The main table's more specific route takes its part of the prefix.
        assert!(!config.is_anyip(addr("10.5.1.7")));
        // smoltcp holds none of them, but sends to them through an address
        // of the stack's, whose neighbour answer comes back from the engine.
        assert!(plan.addrs.unwrap().iter().all(|c| !plan.anyip.contains(c)));
        assert!(plan.beyond_table.is_empty());
        let own = IpAddress::v4(10, 0, 0, 1);
        assert!(plan.routes.contains(&(cidr("10.5.0.0/16"), own)));
        assert!(plan.routes.contains(&(cidr("10.6.0.0/16"), own)));
        assert!(!plan.routes.iter().any(|(c, _)| *c == cidr("10.7.0.0/16")));
    }

    #[test]
    fn addresses_go_to_smoltcp_ipv4_first_and_link_before_loopback() {
        let config = model(
            "/bin/ip link set lo up; /bin/ip link set vde0 up; \
             /bin/ip addr add 10.0.0.1/24 dev vde0; /bin/ip -6 addr add fd00::1/64 dev vde0",
        );
        let plan = Plan::new(&config, fresh());
        assert!(plan.lo_up && plan.wire_up);
        let addrs = plan.addrs.unwrap();
        let rank = |c: &IpCidr| match (c, IpAddr::from(c.address()).is_loopback()) {
            (IpCidr::Ipv4(_), false) => 0,
            (IpCidr::Ipv4(_), true) => 1,
            (IpCidr::Ipv6(_), false) => 2,
            (IpCidr::Ipv6(_), true) => 3,
        };
        assert!(addrs.is_sorted_by_key(rank), "{addrs:?}");
        assert_eq!(addrs[..2], [cidr("10.0.0.1/24"), cidr("127.0.0.1/8")]);
        assert!(addrs.contains(&cidr("fd00::1/64")) && addrs.contains(&cidr("::1/128")));
        assert!(plan.local_v4.contains(&Ipv4Address::new(10, 0, 0, 1)));
        assert!(plan.local_v6.contains(&"fd00::1".parse().unwrap()));
    }

    #[test]
    fn when_smoltcp_is_full_ipv4_and_the_links_addresses_stay() {
        let mut cmds = String::from("/bin/ip link set lo up; /bin/ip link set vde0 up");
        for i in 1..=3 {
            cmds += &format!("; /bin/ip addr add 10.0.{i}.1/24 dev vde0");
            cmds += &format!("; /bin/ip -6 addr add fd0{i}::1/64 dev vde0");
        }
        let config = model(&cmds);
        let plan = Plan::new(&config, fresh());
        let addrs = plan.addrs.unwrap();
        assert_eq!(addrs.len(), IFACE_ADDRS);
        assert!(addrs.contains(&cidr("127.0.0.1/8")));
        assert!(!addrs.contains(&cidr("::1/128")));
        // The frame plumbing knows every address, fitting or not.
        assert_eq!(plan.local_v4.len(), 4);
        assert_eq!(plan.beyond_table.len(), 9 - IFACE_ADDRS);
        assert!(plan
            .beyond_table
            .contains(&IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1)));
        assert!(plan.local_v6.contains(&Ipv6Address::LOCALHOST));
    }

    #[test]
    fn smoltcp_holds_one_address_per_prefix_first() {
        let mut cmds = String::from("/bin/ip link set vde0 up");
        for i in 1..=9 {
            cmds += &format!("; /bin/ip addr add 10.0.0.{i}/24 dev vde0");
        }
        cmds += "; /bin/ip addr add 2001:db8::1/64 dev vde0";
        let plan = Plan::new(&model(&cmds), fresh());
        let addrs = plan.addrs.unwrap();
        assert_eq!(addrs.len(), IFACE_ADDRS);
        assert_eq!(
            addrs[..3],
            [
                cidr("10.0.0.1/24"),
                cidr("2001:db8::1/64"),
                cidr("fe80::ff:fe00:1/64")
            ]
        );
        assert_eq!(
            addrs[3..],
            [2, 3, 4, 5, 6].map(|i| cidr(&format!("10.0.0.{i}/24")))
        );
        let beyond: Vec<IpAddress> = [7, 8, 9].map(|i| IpAddress::v4(10, 0, 0, i)).to_vec();
        assert_eq!(plan.beyond_table, beyond);
    }

    #[test]
    fn addresses_smoltcp_holds_already_are_left_alone() {
        let config = model("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0");
        let held = Plan::new(&config, fresh()).addrs.unwrap();
        let running = Running {
            addrs: &held,
            ..fresh()
        };
        assert_eq!(Plan::new(&config, running).addrs, None);
        let config = model(
            "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
             /bin/ip link set vde0 mtu 1400",
        );
        let plan = Plan::new(&config, running);
        assert_eq!(plan.mtu, Some(1400));
        assert_eq!(plan.addrs, None, "a new MTU keeps smoltcp's neighbours too");
    }

    #[test]
    fn a_new_hardware_address_is_announced_only_on_an_up_link() {
        let new_mac = "/bin/ip link set vde0 address 02:00:00:00:00:09";
        let down = model(&format!("/bin/ip addr add 10.0.0.1/24 dev vde0; {new_mac}"));
        let plan = Plan::new(&down, fresh());
        assert_eq!(plan.mac, Some(EthernetAddress([2, 0, 0, 0, 0, 9])));
        assert!(plan.announce.is_empty());
        let up = model(&format!(
            "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; {new_mac}"
        ));
        let plan = Plan::new(&up, fresh());
        let wire: Vec<IpAddr> = up.links()[1].addrs.iter().map(|a| a.addr).collect();
        assert!(wire.contains(&"10.0.0.1".parse().unwrap()));
        assert_eq!(plan.announce, wire);
        // Already running with it: nothing to announce.
        let running = Running {
            mac: EthernetAddress([2, 0, 0, 0, 0, 9]),
            ..fresh()
        };
        assert!(Plan::new(&up, running).announce.is_empty());
    }

    #[test]
    fn of_routes_to_one_prefix_smoltcp_gets_the_lowest_metric() {
        let config = model(
            "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
             /bin/ip route add default via 10.0.0.254 metric 20; \
             /bin/ip route add default via 10.0.0.253 metric 10; \
             /bin/ip route append default via 10.0.0.252 metric 10",
        );
        let routes = Plan::new(&config, fresh()).routes;
        assert_eq!(
            routes,
            vec![(
                cidr("0.0.0.0/0"),
                "10.0.0.253".parse::<IpAddr>().unwrap().into()
            )]
        );
    }

    #[test]
    fn only_routes_through_a_gateway_go_to_smoltcp() {
        let config = model(
            "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
             /bin/ip route add default via 10.0.0.254; \
             /bin/ip route add 192.168.7.0/24 via 10.0.0.253",
        );
        assert!(config.routes().iter().any(|r| r.via.is_none()));
        let routes = Plan::new(&config, fresh()).routes;
        assert_eq!(routes.len(), 2);
        assert!(routes.contains(&(
            cidr("0.0.0.0/0"),
            "10.0.0.254".parse::<IpAddr>().unwrap().into()
        )));
        assert!(routes.contains(&(
            cidr("192.168.7.0/24"),
            "10.0.0.253".parse::<IpAddr>().unwrap().into()
        )));
    }
}
