//! `stackcmd`: arbitrary command strings into the `ip` emulation.
//!
//! The input is split at its first NUL byte into two stackcmd strings (invalid UTF-8
//! replaced), run one after the other on the same fresh [`NetConfig`]. After each
//! run the model must still be coherent: see [`check`].

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use vdestack::cmd::{LinkKind, NetConfig, RouteProto, MAX_ADDRS, MAX_USER_ROUTES};

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// Addresses every configuration is asked about, whatever it holds.
const PROBES: [IpAddr; 10] = [
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 255)),
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::new(127, 1, 2, 3)),
    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    IpAddr::V4(Ipv4Addr::BROADCAST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
];

fn is_lo_own(kind: LinkKind, addr: IpAddr, prefix_len: u8) -> bool {
    kind == LinkKind::Loopback
        && ((addr == IpAddr::V4(Ipv4Addr::LOCALHOST) && prefix_len == 8)
            || (addr == IpAddr::V6(Ipv6Addr::LOCALHOST) && prefix_len == 128))
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// Runs `cmds`, on `config` and on a copy of it, and checks the outcome.
fn run(config: &mut NetConfig, cmds: &str) {
    let before = config.generation();
    let mut twin = config.clone();
    let result = config.run(cmds);
    // The model is pure: the same commands on the same state do the same thing.
    assert_eq!(twin.run(cmds), result, "not deterministic: {cmds:?}");
    assert_eq!(twin.generation(), config.generation());
    assert_eq!(twin.links(), config.links());
    assert_eq!(twin.routes(), config.routes());

    assert!(
        config.generation() >= before,
        "generation went back: {before} -> {} after {cmds:?}",
        config.generation()
    );
    if let Err(e) = &result {
        assert_ne!(e.status(), 0, "an error with status 0: {e:?} for {cmds:?}");
        assert!(
            !e.message().is_empty(),
            "an error without a message (status {}) for {cmds:?}",
            e.status()
        );
    }
    check(config, cmds);
}

/// What must hold of any configuration the commands can reach.
fn check(config: &NetConfig, cmds: &str) {
    let links = config.links();
    assert_eq!(links.len(), 2, "links come and go: {links:?}");
    assert_eq!((links[0].index, links[1].index), (1, 2));
    // Names change (`ip link set DEV name NAME`) but stay valid and distinct.
    for link in links {
        assert!(
            !link.name.is_empty() && link.name.len() < 16 && !link.name.contains(['/', ':']),
            "{link:?} after {cmds:?}"
        );
    }
    assert_ne!(links[0].name, links[1].name, "after {cmds:?}");
    assert_eq!(links[0].kind, LinkKind::Loopback);
    assert_eq!(links[1].kind, LinkKind::Ether);

    let mut counted = 0;
    for link in links {
        assert!(
            link.mtu >= 68 || link.addrs.iter().all(|a| a.addr.is_ipv6()),
            "IPv4 addresses below the IPv4 minimum MTU: {link:?}"
        );
        for (i, a) in link.addrs.iter().enumerate() {
            assert!(a.prefix_len <= max_prefix(a.addr), "{a:?}");
            assert!(!a.addr.is_unspecified(), "{a:?} assigned by {cmds:?}");
            assert!(
                !link.addrs[..i].contains(a),
                "{a:?} twice on {} after {cmds:?}",
                link.name
            );
            if !is_lo_own(link.kind, a.addr, a.prefix_len) {
                counted += 1;
            }
        }
        // IPv4 addresses come first.
        let first_v6 = link.addrs.iter().position(|a| a.addr.is_ipv6());
        if let Some(p) = first_v6 {
            assert!(link.addrs[p..].iter().all(|a| a.addr.is_ipv6()), "{link:?}");
        }
        let _ = config.link_by_name(&link.name).expect("found by name");
        let _ = config.link_by_index(link.index).expect("found by index");
    }
    assert!(
        counted <= MAX_ADDRS,
        "{counted} addresses (limit {MAX_ADDRS}) after {cmds:?}: {links:?}"
    );

    let routes = config.routes();
    let user = routes
        .iter()
        .filter(|r| r.proto == RouteProto::Boot)
        .count();
    assert!(
        user <= MAX_USER_ROUTES,
        "{user} routes (limit {MAX_USER_ROUTES}) after {cmds:?}"
    );
    for r in &routes {
        assert!(r.prefix_len <= max_prefix(r.dst), "{r:?}");
        let dev = config
            .link_by_index(r.dev)
            .unwrap_or_else(|| panic!("a route through no link: {r:?}"));
        if r.dst.is_ipv4() {
            // Linux removes the IPv4 routes of a link that goes down.
            assert!(dev.up, "{r:?} through a down link after {cmds:?}");
        }
        let _ = r.metric();
    }

    let mut probes: Vec<IpAddr> = PROBES.to_vec();
    probes.extend(links.iter().flat_map(|l| l.addrs.iter().map(|a| a.addr)));
    probes.extend(routes.iter().map(|r| r.dst));
    probes.extend(routes.iter().filter_map(|r| r.via));
    for dst in probes {
        let _ = config.is_local_addr(dst);
        if let Some(hop) = config.lookup(dst) {
            let link = config
                .link_by_index(hop.dev)
                .unwrap_or_else(|| panic!("{dst} goes out of no link: {hop:?}"));
            assert!(link.up, "{dst} goes out of a down link: {hop:?}");
        }
    }

    // Showing never fails, whatever the state.
    let mut shown = config.clone();
    let out = shown
        .run("/bin/ip addr show; /bin/ip route show; /bin/ip -6 route show; /bin/ip link show");
    let out = out.unwrap_or_else(|e| panic!("show failed after {cmds:?}: {e:?}"));
    assert!(out.contains(&links[1].name), "{out}");
    assert_eq!(shown.generation(), config.generation(), "show changed it");
}

fuzz_target!(|data: &[u8]| {
    let (first, second) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let mut config = NetConfig::new("vde0", MAC);
    run(&mut config, &String::from_utf8_lossy(first));
    run(&mut config, &String::from_utf8_lossy(second));
});
