//! IPv6 router discovery and SLAAC, as a fresh Linux namespace does them.
//!
//! In deterministic mode (`sim`), router advertisements made here byte by byte
//! are fed to a stack on a virtual clock, and `ip -6 addr`/`ip -6 route` are
//! read back: the address from the prefix and the MAC's EUI-64, its lifetimes
//! counting down, deprecation, expiry, the router's default route and its
//! removal with a router lifetime of 0, the two-hour rule, invalid
//! advertisements ignored, and the solicitations the stack sends. Against a
//! real router: radvd in a kernel namespace on a vde_switch (skipped where user
//! namespaces are unavailable).

use std::net::Ipv6Addr;
use std::time::Duration;
use vdestack::sim::SimStack;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];
const ROUTER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const PREFIX: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0);
/// What the stack makes of `PREFIX` and `MAC`.
const ADDRESS: &str = "fd00:1::ff:fe00:1/64";

/// On-link and autonomous.
const LA: u8 = 0xc0;
const FOREVER: u32 = u32::MAX;

/// A Prefix Information option.
fn prefix_option(prefix: Ipv6Addr, len: u8, flags: u8, valid: u32, preferred: u32) -> Vec<u8> {
    let mut o = vec![3, 4, len, flags];
    o.extend(valid.to_be_bytes());
    o.extend(preferred.to_be_bytes());
    o.extend([0; 4]);
    o.extend(prefix.octets());
    o
}

/// A router advertisement and how it travels.
#[derive(Clone)]
struct Ra {
    src: Ipv6Addr,
    ip_hop_limit: u8,
    code: u8,
    cur_hop_limit: u8,
    /// The flags byte (M, O, Prf).
    flags: u8,
    router_lifetime: u16,
    options: Vec<u8>,
    corrupt_checksum: bool,
}

impl Ra {
    /// From `ROUTER`, hop limit 64, as radvd sends them, with these options.
    fn new(router_lifetime: u16, options: Vec<u8>) -> Ra {
        Ra {
            src: ROUTER,
            ip_hop_limit: 255,
            code: 0,
            cur_hop_limit: 64,
            flags: 0,
            router_lifetime,
            options,
            corrupt_checksum: false,
        }
    }

    fn frame(&self) -> Vec<u8> {
        let mut icmp = vec![134, self.code, 0, 0, self.cur_hop_limit, self.flags];
        icmp.extend(self.router_lifetime.to_be_bytes());
        icmp.extend([0; 8]);
        icmp.extend(&self.options);
        let sum = checksum(self.src, ALL_NODES, &icmp) ^ u16::from(self.corrupt_checksum);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut f = vec![0x33, 0x33, 0, 0, 0, 1];
        f.extend(ROUTER_MAC);
        f.extend([0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend((icmp.len() as u16).to_be_bytes());
        f.extend([58, self.ip_hop_limit]);
        f.extend(self.src.octets());
        f.extend(ALL_NODES.octets());
        f.extend(icmp);
        f
    }
}

/// The ICMPv6 checksum (RFC 4443 2.3).
fn checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut data = Vec::new();
    data.extend(src.octets());
    data.extend(dst.octets());
    data.extend((icmp.len() as u32).to_be_bytes());
    data.extend([0, 0, 0, 58]);
    data.extend(icmp);
    if data.len() % 2 == 1 {
        data.push(0);
    }
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A stack with its interface up at time 0.
fn stack() -> SimStack {
    let mut s = SimStack::new("vde0", MAC, 7);
    s.cmd("/bin/ip link set vde0 up").unwrap();
    s.poll();
    s
}

fn at(s: &mut SimStack, secs: u64) {
    s.advance_to(Duration::from_secs(secs));
    s.poll();
    while s.take_frame().is_some() {}
}

fn feed(s: &mut SimStack, ra: &Ra) {
    s.receive(&ra.frame());
    s.poll();
}

fn show(s: &mut SimStack, cmd: &str) -> String {
    s.cmd(&format!("/bin/ip {cmd}")).unwrap()
}

/// The address lines of `ip -6 addr show dev vde0` for `ADDRESS`.
fn slaac_addr(s: &mut SimStack) -> Option<String> {
    let out = show(s, "-6 addr show dev vde0");
    let lines: Vec<&str> = out.lines().collect();
    let i = lines.iter().position(|l| l.contains(ADDRESS))?;
    Some(format!("{}\n{}", lines[i], lines[i + 1]))
}

fn standard_ra() -> Ra {
    Ra::new(1800, prefix_option(PREFIX, 64, LA, 86400, 14400))
}

#[test]
fn an_advertisement_gives_an_address_a_prefix_route_and_a_default_route() {
    let mut s = stack();
    at(&mut s, 2);
    feed(&mut s, &standard_ra());
    assert_eq!(
        slaac_addr(&mut s).unwrap(),
        format!(
            "    inet6 {ADDRESS} scope global dynamic mngtmpaddr \n       valid_lft 86400sec preferred_lft 14400sec"
        )
    );
    assert_eq!(
        show(&mut s, "-6 route"),
        "fd00:1::/64 dev vde0 proto kernel metric 256 expires 86400sec pref medium\n\
         fe80::/64 dev vde0 proto kernel metric 256 pref medium\n\
         default via fe80::1 dev vde0 proto ra metric 1024 expires 1800sec hoplimit 64 pref medium\n"
    );
    // The lifetimes count down on the stack's clock.
    at(&mut s, 12);
    assert_eq!(
        slaac_addr(&mut s).unwrap(),
        format!(
            "    inet6 {ADDRESS} scope global dynamic mngtmpaddr \n       valid_lft 86390sec preferred_lft 14390sec"
        )
    );
    let routes = show(&mut s, "-6 route");
    assert!(routes.contains("metric 256 expires 86390sec"), "{routes}");
    assert!(routes.contains("metric 1024 expires 1790sec"), "{routes}");
    // The same in the other output forms.
    let json = show(&mut s, "-j -6 addr show dev vde0");
    assert!(
        json.contains(
            "{\"family\":\"inet6\",\"local\":\"fd00:1::ff:fe00:1\",\"prefixlen\":64,\
             \"scope\":\"global\",\"dynamic\":true,\"mngtmpaddr\":true,\
             \"valid_life_time\":86390,\"preferred_life_time\":14390}"
        ),
        "{json}"
    );
    let json = show(&mut s, "-j -6 route");
    assert!(
        json.contains(
            "{\"dst\":\"default\",\"gateway\":\"fe80::1\",\"dev\":\"vde0\",\"protocol\":\"ra\",\
             \"metric\":1024,\"flags\":[],\"expires\":1790,\"metrics\":[{\"hoplimit\":64}],\
             \"pref\":\"medium\"}"
        ),
        "{json}"
    );
    let oneline = show(&mut s, "-o -6 addr show dev vde0");
    assert!(
        oneline.contains(&format!(
            "2: vde0    inet6 {ADDRESS} scope global dynamic mngtmpaddr \\       valid_lft 86390sec preferred_lft 14390sec\n"
        )),
        "{oneline}"
    );
    // The stack routes by them: a connection to a global address asks for
    // the router's hardware address.
    s.tcp_connect("[2001:db8::1]:80".parse().unwrap()).unwrap();
    s.poll();
    let mut asked = false;
    while let Some(f) = s.take_frame() {
        asked |= f.len() >= 78 && f[54] == 135 && f[62..78] == ROUTER.octets();
    }
    assert!(asked, "no neighbour solicitation for the router");
}

#[test]
fn addresses_are_deprecated_then_removed_and_routes_expire() {
    let mut s = stack();
    feed(&mut s, &Ra::new(30, prefix_option(PREFIX, 64, LA, 20, 10)));
    at(&mut s, 11);
    assert_eq!(
        slaac_addr(&mut s).unwrap(),
        format!(
            "    inet6 {ADDRESS} scope global deprecated dynamic mngtmpaddr \n       valid_lft 9sec preferred_lft 0sec"
        )
    );
    let json = show(&mut s, "-j -6 addr show dev vde0");
    assert!(
        json.contains("\"deprecated\":true,\"dynamic\":true"),
        "{json}"
    );
    at(&mut s, 21);
    assert_eq!(slaac_addr(&mut s), None);
    let routes = show(&mut s, "-6 route");
    assert!(!routes.contains("fd00:1::/64"), "{routes}");
    assert!(routes.contains("default via fe80::1"), "{routes}");
    at(&mut s, 31);
    assert_eq!(
        show(&mut s, "-6 route"),
        "fe80::/64 dev vde0 proto kernel metric 256 pref medium\n"
    );
    // The engine woke for the expiries by itself.
    assert!(s.poll_delay().is_none_or(|d| d > Duration::from_secs(60)));
}

#[test]
fn a_router_lifetime_of_zero_removes_the_default_route_and_a_new_advertisement_refreshes() {
    let mut s = stack();
    feed(&mut s, &standard_ra());
    at(&mut s, 100);
    feed(&mut s, &standard_ra());
    let routes = show(&mut s, "-6 route");
    assert!(routes.contains("metric 1024 expires 1800sec"), "{routes}");
    assert!(routes.contains("metric 256 expires 86400sec"), "{routes}");
    assert!(slaac_addr(&mut s)
        .unwrap()
        .contains("valid_lft 86400sec preferred_lft 14400sec"));
    feed(
        &mut s,
        &Ra::new(0, prefix_option(PREFIX, 64, LA, 86400, 14400)),
    );
    let routes = show(&mut s, "-6 route");
    assert!(!routes.contains("default"), "{routes}");
    assert!(slaac_addr(&mut s).is_some());
    // A high preference is shown as such.
    let mut high = Ra::new(600, Vec::new());
    high.flags = 0x08;
    feed(&mut s, &high);
    let routes = show(&mut s, "-6 route");
    assert!(
        routes.contains("default via fe80::1 dev vde0 proto ra metric 1024 expires 600sec hoplimit 64 pref high"),
        "{routes}"
    );
}

#[test]
fn an_advertisement_cannot_cut_a_valid_lifetime_below_two_hours() {
    let mut s = stack();
    feed(&mut s, &standard_ra());
    feed(
        &mut s,
        &Ra::new(1800, prefix_option(PREFIX, 64, LA, 60, 30)),
    );
    assert!(slaac_addr(&mut s)
        .unwrap()
        .contains("valid_lft 7200sec preferred_lft 30sec"));
    // Below two hours left, a shorter lifetime is ignored; a longer one taken.
    feed(
        &mut s,
        &Ra::new(1800, prefix_option(PREFIX, 64, LA, 60, 30)),
    );
    assert!(slaac_addr(&mut s).unwrap().contains("valid_lft 7200sec"));
    feed(
        &mut s,
        &Ra::new(1800, prefix_option(PREFIX, 64, LA, FOREVER, FOREVER)),
    );
    assert_eq!(
        slaac_addr(&mut s).unwrap(),
        format!(
            "    inet6 {ADDRESS} scope global mngtmpaddr \n       valid_lft forever preferred_lft forever"
        )
    );
}

#[test]
fn invalid_advertisements_and_options_are_ignored() {
    let mut s = stack();
    let good = standard_ra();
    let mut bad = Vec::new();
    let mut r = good.clone();
    r.ip_hop_limit = 254; // forwarded by a router: not from the link
    bad.push(r);
    let mut r = good.clone();
    r.src = "fd00:9::1".parse().unwrap(); // not link-local
    bad.push(r);
    let mut r = good.clone();
    r.corrupt_checksum = true;
    bad.push(r);
    let mut r = good.clone();
    r.code = 1;
    bad.push(r);
    let mut r = good.clone();
    r.options.extend([1, 0, 0, 0, 0, 0, 0, 0]); // an option of length 0
    bad.push(r);
    for ra in &bad {
        feed(&mut s, ra);
    }
    assert_eq!(
        show(&mut s, "-6 route"),
        "fe80::/64 dev vde0 proto kernel metric 256 pref medium\n"
    );
    assert_eq!(slaac_addr(&mut s), None);
    // Options that are ignored in an advertisement otherwise taken.
    let mut options = prefix_option(PREFIX, 64, LA, 100, 200); // preferred > valid
    options.extend(prefix_option("fe80::".parse().unwrap(), 64, LA, 100, 50));
    options.extend(prefix_option("fd00:2::".parse().unwrap(), 48, LA, 100, 50));
    options.extend([5, 1, 0, 0, 0, 0, 0x05, 0xdc]); // MTU 1500
    feed(&mut s, &Ra::new(0, options));
    assert_eq!(slaac_addr(&mut s), None);
    // A /48 is on-link, but makes no address.
    assert_eq!(
        show(&mut s, "-6 route"),
        "fd00:2::/48 dev vde0 proto kernel metric 256 expires 100sec pref medium\n\
         fe80::/64 dev vde0 proto kernel metric 256 pref medium\n"
    );
    let addrs = show(&mut s, "-6 addr show dev vde0");
    assert!(!addrs.contains("fd00:2"), "{addrs}");
}

/// The router solicitations in what the stack sent, with the time each left.
fn solicitations(s: &mut SimStack, until: u64) -> Vec<Duration> {
    let mut sent = Vec::new();
    let mut t = s.now();
    while t <= Duration::from_secs(until) {
        s.advance_to(t);
        s.poll();
        while let Some(f) = s.take_frame() {
            let is_rs = f.len() > 54
                && f[..6] == [0x33, 0x33, 0, 0, 0, 2]
                && f[12..14] == [0x86, 0xdd]
                && f[20] == 58
                && f[21] == 255
                && f[22..24] == [0xfe, 0x80]
                && f[38..54] == "ff02::2".parse::<Ipv6Addr>().unwrap().octets()
                && f[54] == 133;
            if is_rs {
                sent.push(t);
            }
        }
        t += Duration::from_millis(10);
    }
    sent
}

#[test]
fn the_interface_coming_up_sends_three_router_solicitations() {
    let mut s = SimStack::new("vde0", MAC, 7);
    assert!(solicitations(&mut s, 2).is_empty(), "down: none");
    s.cmd("/bin/ip link set vde0 up").unwrap();
    let up = s.now();
    let sent = solicitations(&mut s, 15);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[0] - up <= Duration::from_secs(1), "{sent:?}");
    for pair in sent.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::from_secs(4), "{sent:?}");
    }
    // Down and up again: solicited again; an advertisement stops them.
    s.cmd("/bin/ip link set vde0 down; /bin/ip link set vde0 up")
        .unwrap();
    let first = solicitations(&mut s, 17);
    assert_eq!(first.len(), 1, "{first:?}");
    feed(&mut s, &standard_ra());
    assert!(solicitations(&mut s, 30).is_empty());
    assert!(slaac_addr(&mut s).is_some());
}

#[test]
fn accept_ra_off_neither_solicits_nor_takes_advertisements() {
    let mut s = SimStack::new("vde0", MAC, 7);
    s.set_accept_ra(false);
    s.cmd("/bin/ip link set vde0 up").unwrap();
    assert!(solicitations(&mut s, 15).is_empty());
    feed(&mut s, &standard_ra());
    assert_eq!(slaac_addr(&mut s), None);
    assert!(!show(&mut s, "-6 route").contains("default"));
}
