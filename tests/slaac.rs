//! IPv6 router discovery and SLAAC, as a fresh Linux namespace does them.
//!
//! In deterministic mode (`sim`), router advertisements made here byte by byte
//! are fed to a stack on a virtual clock, and `ip -6 addr`/`ip -6 route` are
//! read back: the address from the prefix and the MAC's EUI-64, its lifetimes
//! counting down, deprecation, expiry, the router's default route and its
//! removal with a router lifetime of 0, the two-hour rule, invalid
//! advertisements ignored, the solicitations the stack sends, the advertised
//! MTU and hop limit on the default route, and that MTU on IPv6 packets. Against a
//! real router: radvd in a kernel namespace on a vde_switch (skipped where user
//! namespaces are unavailable), whose Cur Hop Limit 10 and MTU 1400 both
//! backends show on the default route, and whose hop limit their datagrams
//! carry.

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
    checksum_of(58, src, dst, icmp)
}

/// The checksum of an upper-layer packet of protocol `proto` over IPv6 (RFC
/// 8200 8.1).
fn checksum_of(proto: u8, src: Ipv6Addr, dst: Ipv6Addr, packet: &[u8]) -> u16 {
    let mut data = Vec::new();
    data.extend(src.octets());
    data.extend(dst.octets());
    data.extend((packet.len() as u32).to_be_bytes());
    data.extend([0, 0, 0, proto]);
    data.extend(packet);
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
    // Tentative for a second after its duplicate address detection
    // solicitation: from ::, to the solicited-node group.
    assert_eq!(
        slaac_addr(&mut s).unwrap(),
        format!(
            "    inet6 {ADDRESS} scope global tentative dynamic mngtmpaddr \n       valid_lft 86400sec preferred_lft 14400sec"
        )
    );
    let mut probes = 0;
    while let Some(f) = s.take_frame() {
        probes += usize::from(
            f[..6] == [0x33, 0x33, 0xff, 0, 0, 1]
                && f[22..38] == [0; 16]
                && f[54] == 135
                && f[62..78]
                    == ADDRESS
                        .trim_end_matches("/64")
                        .parse::<Ipv6Addr>()
                        .unwrap()
                        .octets(),
        );
    }
    assert_eq!(probes, 1);
    at(&mut s, 3);
    assert_eq!(
        slaac_addr(&mut s).unwrap(),
        format!(
            "    inet6 {ADDRESS} scope global dynamic mngtmpaddr \n       valid_lft 86399sec preferred_lft 14399sec"
        )
    );
    assert_eq!(
        show(&mut s, "-6 route"),
        "fd00:1::/64 dev vde0 proto kernel metric 256 expires 86399sec pref medium\n\
         fe80::/64 dev vde0 proto kernel metric 256 pref medium\n\
         default via fe80::1 dev vde0 proto ra metric 1024 expires 1799sec hoplimit 64 pref medium\n"
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

/// An MTU option.
fn mtu_option(mtu: u32) -> Vec<u8> {
    let mut o = vec![5, 1, 0, 0];
    o.extend(mtu.to_be_bytes());
    o
}

/// The default route keeps an advertisement's MTU and Cur Hop Limit, as Linux
/// 6.18 showed them for the same advertisements (raw ones sent over a veth):
/// `mtu 1400 hoplimit 10`, and `"metrics":[{"mtu":1400,"hoplimit":10}]` in
/// JSON. An MTU above the link's (1600 on a 1500 link) or below IPv6's 1280,
/// and a Cur Hop Limit of 0, leave what the route had.
#[test]
fn the_default_route_keeps_the_advertised_mtu_and_hop_limit() {
    let mut s = stack();
    let mut ra = Ra::new(1800, mtu_option(1400));
    ra.cur_hop_limit = 10;
    feed(&mut s, &ra);
    let want = "default via fe80::1 dev vde0 proto ra metric 1024 expires 1800sec mtu 1400 hoplimit 10 pref medium";
    let routes = show(&mut s, "-6 route");
    assert!(routes.contains(want), "{routes}");
    let json = show(&mut s, "-j -6 route show default");
    assert!(
        json.contains(
            "\"expires\":1800,\"metrics\":[{\"mtu\":1400,\"hoplimit\":10}],\"pref\":\"medium\""
        ),
        "{json}"
    );
    for (mtu, hops) in [(1600, 10), (1200, 0)] {
        let mut ra = Ra::new(1800, mtu_option(mtu));
        ra.cur_hop_limit = hops;
        feed(&mut s, &ra);
        let routes = show(&mut s, "-6 route");
        assert!(
            routes.contains(want),
            "after mtu {mtu}, hop limit {hops}: {routes}"
        );
    }
    // The prefix routes carry neither.
    let mut ra = Ra::new(1800, prefix_option(PREFIX, 64, LA, 86400, 14400));
    ra.options.extend(mtu_option(1280));
    feed(&mut s, &ra);
    let routes = show(&mut s, "-6 route");
    assert!(
        routes.contains("expires 1800sec mtu 1280 hoplimit 64 pref"),
        "{routes}"
    );
    assert!(
        routes
            .contains("fd00:1::/64 dev vde0 proto kernel metric 256 expires 86400sec pref medium"),
        "{routes}"
    );
}

/// The frames the stack sends next, after a poll.
fn sent(s: &mut SimStack) -> Vec<Vec<u8>> {
    s.poll();
    std::iter::from_fn(|| s.take_frame()).collect()
}

/// The MSS option of the TCP SYN in `frame` (IPv6, no extension headers).
fn syn_mss(frame: &[u8]) -> Option<u16> {
    let tcp = frame.get(14 + 40..)?;
    let options = tcp.get(20..usize::from(tcp[12] >> 4) * 4)?;
    let at = options.windows(2).position(|w| w == [2, 4])?;
    Some(u16::from_be_bytes([options[at + 2], options[at + 3]]))
}

/// An advertised MTU below the link's bounds IPv6 packets, as Linux's `mtu6`
/// does (checked on Linux 6.18 with an advertisement of MTU 1400 over a veth
/// of 1500: `net.ipv6.conf.IF.mtu` 1400, a 1450-byte datagram leaves in
/// fragments, `IPV6_MTU` 1400, and a TCP SYN advertises MSS 1340), while IPv4
/// keeps the link's; a new link MTU is IPv6's too.
#[test]
fn an_advertised_mtu_bounds_ipv6_packets() {
    let mut s = stack();
    let mut ra = Ra::new(1800, prefix_option(PREFIX, 64, LA, 86400, 14400));
    ra.options.extend(mtu_option(1400));
    feed(&mut s, &ra);
    at(&mut s, 2);
    let router_mac = ROUTER_MAC.map(|b| format!("{b:02x}")).join(":");
    s.cmd(&format!(
        "/bin/ip -6 neigh add fe80::1 lladdr {router_mac} dev vde0; \
         /bin/ip addr add 10.0.0.1/24 dev vde0; \
         /bin/ip neigh add 10.0.0.9 lladdr {router_mac} dev vde0"
    ))
    .unwrap();
    sent(&mut s);
    let v6 = s.udp_bind("[::]:0".parse().unwrap()).unwrap();
    let far = "[2001:db8::9]:9".parse().unwrap();
    s.udp_send_to(v6, Some(far), &[7; 1450]).unwrap();
    let frames = sent(&mut s);
    assert!(frames.len() >= 2, "{} frames", frames.len());
    for f in &frames {
        assert!(f.len() <= 14 + 1400, "an IPv6 frame of {} bytes", f.len());
        assert_eq!(f[14 + 6], 44, "a fragment");
    }
    let v4 = s.udp_bind("0.0.0.0:0".parse().unwrap()).unwrap();
    s.udp_send_to(v4, Some("10.0.0.9:9".parse().unwrap()), &[7; 1450])
        .unwrap();
    let frames = sent(&mut s);
    assert_eq!(
        frames.iter().map(Vec::len).collect::<Vec<_>>(),
        [14 + 20 + 8 + 1450]
    );
    s.tcp_connect(far).unwrap();
    let frames = sent(&mut s);
    assert_eq!(
        frames.iter().map(|f| syn_mss(f)).collect::<Vec<_>>(),
        [Some(1340)]
    );
    // A new link MTU is IPv6's as well: 1400 bytes of data fit in 1480.
    s.cmd("/bin/ip link set vde0 mtu 1480").unwrap();
    sent(&mut s);
    s.udp_send_to(v6, Some(far), &[7; 1400]).unwrap();
    let frames = sent(&mut s);
    assert_eq!(
        frames.iter().map(Vec::len).collect::<Vec<_>>(),
        [14 + 40 + 8 + 1400]
    );
}

/// A frame from the router to the stack's address from `PREFIX`, carrying
/// `packet` of protocol `proto` (its checksum filled in at `sum_at`).
fn from_router(proto: u8, mut packet: Vec<u8>, sum_at: usize) -> Vec<u8> {
    let dst: Ipv6Addr = ADDRESS.split('/').next().unwrap().parse().unwrap();
    let sum = checksum_of(proto, ROUTER, dst, &packet);
    packet[sum_at..sum_at + 2].copy_from_slice(&sum.to_be_bytes());
    let mut f = MAC.to_vec();
    f.extend(ROUTER_MAC);
    f.extend([0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend((packet.len() as u16).to_be_bytes());
    f.extend([proto, 64]);
    f.extend(ROUTER.octets());
    f.extend(dst.octets());
    f.extend(packet);
    f
}

/// What the stack answers on its own (an echo reply, the reset of a closed
/// port) leaves with the advertised Cur Hop Limit, as Linux's answers leave
/// with the interface's hop limit.
#[test]
fn the_stacks_own_answers_take_the_advertised_hop_limit() {
    let mut s = stack();
    let mut ra = standard_ra();
    ra.cur_hop_limit = 33;
    feed(&mut s, &ra);
    at(&mut s, 2);
    let router_mac = ROUTER_MAC.map(|b| format!("{b:02x}")).join(":");
    s.cmd(&format!(
        "/bin/ip -6 neigh add fe80::1 lladdr {router_mac} dev vde0"
    ))
    .unwrap();
    sent(&mut s);
    let echo = vec![128, 0, 0, 0, 0, 7, 0, 1, b'h', b'i'];
    s.receive(&from_router(58, echo, 2));
    let mut syn = vec![0u8; 20];
    syn[0..2].copy_from_slice(&40000u16.to_be_bytes());
    syn[2..4].copy_from_slice(&9u16.to_be_bytes());
    syn[4..8].copy_from_slice(&1000u32.to_be_bytes());
    syn[12] = 5 << 4;
    syn[13] = 0x02;
    syn[14..16].copy_from_slice(&8192u16.to_be_bytes());
    s.receive(&from_router(6, syn, 16));
    let answers: Vec<(u8, u8, u8)> = sent(&mut s)
        .iter()
        .filter(|f| f[12..14] == [0x86, 0xdd] && f.len() > 54)
        .map(|f| (f[14 + 6], f[54], f[14 + 7]))
        .collect();
    let reply = answers.iter().find(|a| a.0 == 58 && a.1 == 129);
    assert_eq!(reply.map(|a| a.2), Some(33), "echo reply: {answers:?}");
    let reset = answers.iter().find(|a| a.0 == 6);
    assert_eq!(reset.map(|a| a.2), Some(33), "reset: {answers:?}");
}

#[test]
fn an_advertisement_cannot_cut_a_valid_lifetime_below_two_hours() {
    let mut s = stack();
    feed(&mut s, &standard_ra());
    at(&mut s, 1);
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

#[test]
fn an_address_another_node_claims_during_detection_is_removed() {
    let mut s = stack();
    feed(&mut s, &standard_ra());
    assert!(slaac_addr(&mut s).unwrap().contains("tentative"));
    // A neighbour advertisement for it from another node.
    let target: Ipv6Addr = ADDRESS.trim_end_matches("/64").parse().unwrap();
    s.receive(&claim(target, Claim::Advertisement));
    s.poll();
    assert_eq!(slaac_addr(&mut s), None);
    // The router's prefix route stays, as on Linux.
    let routes = show(&mut s, "-6 route");
    assert!(
        routes.contains("fd00:1::/64 dev vde0 proto kernel metric 256 expires"),
        "{routes}"
    );
    at(&mut s, 5);
    assert_eq!(slaac_addr(&mut s), None);
}

/// How another node claims an address.
#[derive(Debug, Clone, Copy)]
enum Claim {
    /// It has it: a Neighbor Advertisement for it (from the router's MAC).
    Advertisement,
    /// It is detecting it too: its own solicitation, from `::` (RFC 4862
    /// 5.4.3).
    Detection,
}

/// Another node's frame claiming `target`.
fn claim(target: Ipv6Addr, how: Claim) -> Vec<u8> {
    let o = target.octets();
    let solicited = Ipv6Addr::from([
        0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ]);
    let (kind, flags, src, dst) = match how {
        Claim::Advertisement => (136, 0x20, ROUTER, ALL_NODES),
        Claim::Detection => (135, 0, Ipv6Addr::UNSPECIFIED, solicited),
    };
    let mut icmp = vec![kind, 0, 0, 0, flags, 0, 0, 0];
    icmp.extend(o);
    let sum = checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let d = dst.octets();
    let mut f = vec![0x33, 0x33, d[12], d[13], d[14], d[15]];
    f.extend(ROUTER_MAC);
    f.extend([0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend((icmp.len() as u16).to_be_bytes());
    f.extend([58, 255]);
    f.extend(src.octets());
    f.extend(dst.octets());
    f.extend(icmp);
    f
}

/// The targets of the duplicate address detection solicitations in
/// `frames` (from `::`, to the target's solicited-node group).
fn detected(frames: &[Vec<u8>]) -> Vec<Ipv6Addr> {
    frames
        .iter()
        .filter(|f| f.len() >= 78 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 135)
        .filter(|f| f[22..38] == [0; 16])
        .map(|f| Ipv6Addr::from(<[u8; 16]>::try_from(&f[62..78]).unwrap()))
        .collect()
}

fn bind_errno(s: &mut SimStack, addr: &str) -> Option<i32> {
    s.udp_bind(addr.parse().unwrap())
        .err()
        .and_then(|e| e.raw_os_error())
}

/// An address added by hand is tentative for a second, as on Linux: its
/// solicitation leaves, it is no source and cannot be bound (EADDRNOTAVAIL)
/// nor be a route's `src`; then, with nobody claiming it, it is used. A
/// `nodad` one is used at once and shown so.
#[test]
fn an_address_added_by_hand_is_tentative_for_a_second() {
    let mut s = stack();
    let link_local = detected(&sent(&mut s));
    assert_eq!(link_local, ["fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap()]);
    at(&mut s, 2);
    s.cmd(
        "/bin/ip addr add 2001:db8::1/64 dev vde0; /bin/ip addr add 2001:db8::2/64 dev vde0 nodad",
    )
    .unwrap();
    assert_eq!(
        detected(&sent(&mut s)),
        ["2001:db8::1".parse::<Ipv6Addr>().unwrap()]
    );
    let shown = show(&mut s, "-6 addr show dev vde0");
    assert!(
        shown.contains("inet6 2001:db8::1/64 scope global tentative \n"),
        "{shown}"
    );
    assert!(
        shown.contains("inet6 2001:db8::2/64 scope global nodad \n"),
        "{shown}"
    );
    assert_eq!(
        bind_errno(&mut s, "[2001:db8::1]:0"),
        Some(libc::EADDRNOTAVAIL)
    );
    assert_eq!(bind_errno(&mut s, "[2001:db8::2]:0"), None);
    let refused = s
        .cmd("/bin/ip -6 route add 2001:db8:9::/64 via 2001:db8::fe src 2001:db8::1")
        .unwrap_err();
    assert_eq!(refused.to_string(), "Error: Invalid source address.");
    at(&mut s, 3);
    let shown = show(&mut s, "-6 addr show dev vde0");
    assert!(!shown.contains("tentative"), "{shown}");
    assert_eq!(bind_errno(&mut s, "[2001:db8::1]:0"), None);
    s.cmd("/bin/ip -6 route add 2001:db8:9::/64 via 2001:db8::fe src 2001:db8::1")
        .unwrap();
}

/// With every IPv6 address of the stack still tentative (the link-local one
/// too, in the link's first second), a connect has no source: EADDRNOTAVAIL,
/// as on Linux. Once they are past detection it goes.
#[test]
fn with_every_address_tentative_a_connect_has_no_source() {
    let mut s = stack();
    s.cmd("/bin/ip addr add 2001:db8::1/64 dev vde0").unwrap();
    sent(&mut s);
    let err = s
        .tcp_connect("[2001:db8::9]:80".parse().unwrap())
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{err}");
    at(&mut s, 2);
    s.tcp_connect("[2001:db8::9]:80".parse().unwrap()).unwrap();
}

/// Another node's answer during the detection, or its own detection of the
/// same address, leaves an address added by hand `dadfailed`: kept, shown,
/// never used, as Linux keeps a permanent address (SLAAC ones are removed).
#[test]
fn another_nodes_claim_leaves_an_address_added_by_hand_dadfailed() {
    for how in [Claim::Advertisement, Claim::Detection] {
        let mut s = stack();
        at(&mut s, 2);
        s.cmd("/bin/ip addr add 2001:db8::1/64 dev vde0").unwrap();
        sent(&mut s);
        s.receive(&claim("2001:db8::1".parse().unwrap(), how));
        s.poll();
        at(&mut s, 10);
        let shown = show(&mut s, "-6 addr show dev vde0");
        assert!(
            shown.contains("inet6 2001:db8::1/64 scope global dadfailed tentative \n"),
            "{how:?}: {shown}"
        );
        assert_eq!(
            bind_errno(&mut s, "[2001:db8::1]:0"),
            Some(libc::EADDRNOTAVAIL)
        );
        // No more solicitations for it.
        assert!(detected(&sent(&mut s)).is_empty(), "{how:?}");
    }
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

mod common;

use common::{Namespace, Switch, TempDir};
use std::io::Read;
use std::time::Instant;
use vdestack::{Backend, Stack, TcpStream};

/// A router peer on `switch`: a kernel namespace whose tap `vt0` has
/// fd00:1::1/64, with radvd advertising fd00:1::/64 (on-link, autonomous;
/// router lifetime 1800 s) and a TCP server on [fd00:1::1]:7000 that says
/// `hello`. `None` (said on stderr) where no namespace can be made.
fn radvd_peer(test: &str, switch: &Switch, dir: &TempDir) -> Option<Namespace> {
    if !Namespace::available() {
        eprintln!("SKIPPED {test}: unprivileged user namespaces are not available");
        return None;
    }
    let conf = dir.path().join("radvd.conf");
    std::fs::write(
        &conf,
        "interface vt0 {\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 10;\n\
         AdvDefaultLifetime 1800;\n AdvCurHopLimit 10;\n AdvLinkMTU 1400;\n\
         prefix fd00:1::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n",
    )
    .unwrap();
    // The router's services: "hello" over TCP, and over UDP the hop limit a
    // datagram arrived with.
    let server = dir.path().join("server.py");
    std::fs::write(
        &server,
        "import socket, threading\n\
         u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
         u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)\n\
         u.bind(('fd00:1::1', 7001))\n\
         def hops():\n\
         \x20   while True:\n\
         \x20       data, anc, _, peer = u.recvmsg(2048, 64)\n\
         \x20       got = [int.from_bytes(d, 'little') for _, t, d in anc if t == socket.IPV6_HOPLIMIT]\n\
         \x20       u.sendto(('hops %d' % got[0]).encode(), peer)\n\
         threading.Thread(target=hops, daemon=True).start()\n\
         t = socket.socket(socket.AF_INET6)\n\
         t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         t.bind(('fd00:1::1', 7000))\n\
         t.listen()\n\
         while True:\n\
         \x20   c, _ = t.accept()\n\
         \x20   c.sendall(b'hello\\n')\n\
         \x20   c.close()\n",
    )
    .unwrap();
    let script = format!(
        "vde_plug {vnl} tap://vt0 & \
         i=0; until ip link set vt0 up 2>/dev/null; do \
           i=$((i+1)); [ $i -gt 500 ] && {{ echo no tap >&2; exit 3; }}; sleep 0.01; done; \
         ip link set lo up && ip addr add fd00:1::1/64 dev vt0 nodad || exit 5; \
         sysctl -qw net.ipv6.conf.all.forwarding=1; \
         i=0; until ip -6 addr show dev vt0 scope link | grep -q 'scope link $'; do \
           i=$((i+1)); [ $i -gt 500 ] && exit 6; sleep 0.01; done; \
         radvd -n -C {conf} -p {pid} -m stderr & \
         python3 {server} & \
         i=0; until [ -n \"$(ss -Hltn 'sport = :7000' 2>/dev/null)\" ]; do \
           i=$((i+1)); [ $i -gt 500 ] && exit 4; sleep 0.01; done; \
         echo ready; wait",
        vnl = switch.vnl(),
        conf = conf.display(),
        server = server.display(),
        pid = dir.path().join("radvd.pid").display(),
    );
    Some(common::started(
        Namespace::run(&script).expect("unshare"),
        "radvd",
    ))
}

/// The stack's MAC, from `ip link show`.
fn mac_of(stack: &Stack) -> String {
    let shown = stack.cmd_output("/bin/ip link show dev vde0").unwrap();
    shown
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC: {shown}"))
        .to_string()
}

/// The address in fd00:1::/64 the EUI-64 of `mac` makes.
fn eui64_in_prefix(mac: &str) -> Ipv6Addr {
    let b: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    let mut o = PREFIX.octets();
    o[8..].copy_from_slice(&[b[0] ^ 2, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]]);
    Ipv6Addr::from(o)
}

/// `text` with every number of seconds as `Nsec` and every JSON lifetime as
/// `N`, so that outputs read at different moments compare.
fn mask_seconds(text: &str) -> String {
    text.split(' ')
        .map(|w| match w.strip_suffix("sec") {
            Some(n) if n.parse::<u32>().is_ok() => "Nsec",
            _ => w,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lines of `ip -6 addr show dev vde0` and `ip -6 route` that SLAAC
/// makes, seconds masked, once the stack shows its address, past duplicate
/// address detection, and a default route (polled, bounded).
fn slaac_lines(stack: &Stack, address: Ipv6Addr) -> (String, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = stack.cmd_output("/bin/ip -6 addr show dev vde0").unwrap();
        let lines: Vec<&str> = shown.lines().collect();
        let routes = stack.cmd_output("/bin/ip -6 route").unwrap();
        // Linux's address is tentative for a second (DAD), ours never.
        let found = lines
            .iter()
            .position(|l| l.contains(&format!("inet6 {address}/64 ")) && !l.contains("tentative"));
        if let (Some(i), true) = (found, routes.contains("default")) {
            let addr = mask_seconds(&format!("{}\n{}", lines[i], lines[i + 1]));
            let routes = routes.lines().map(mask_seconds).collect();
            return (addr, routes);
        }
        assert!(
            Instant::now() < deadline,
            "no SLAAC address {address} after 30 s: {shown}{routes}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn radvd_in_a_kernel_namespace_configures_the_stack_as_linux() {
    let test = "radvd_in_a_kernel_namespace_configures_the_stack_as_linux";
    let switch = Switch::start();
    let dir = TempDir::new("radvd");
    let Some(_peer) = radvd_peer(test, &switch, &dir) else {
        return;
    };
    let stack = Stack::new(&switch.vnl(), None).unwrap();
    let mac = mac_of(&stack);
    let address = eui64_in_prefix(&mac);
    stack.cmd("/bin/ip link set vde0 up").unwrap();
    let (addr, routes) = slaac_lines(&stack, address);
    assert_eq!(
        addr,
        format!(
            "    inet6 {address}/64 scope global dynamic mngtmpaddr \n       valid_lft Nsec preferred_lft Nsec"
        )
    );
    let router = routes
        .iter()
        .find_map(|r| r.strip_prefix("default via ")?.split(' ').next())
        .expect("a default route")
        .to_string();
    assert_eq!(
        routes,
        [
            "fd00:1::/64 dev vde0 proto kernel metric 256 expires Nsec pref medium".to_string(),
            "fe80::/64 dev vde0 proto kernel metric 256 pref medium".to_string(),
            format!(
                "default via {router} dev vde0 proto ra metric 1024 expires Nsec mtu 1400 hoplimit 10 pref medium"
            ),
        ]
    );
    // Over the SLAAC address, to the router's.
    let mut stream = TcpStream::connect(&stack, "[fd00:1::1]:7000").expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    assert_eq!(text, "hello\n");
    assert_eq!(
        stream.local_addr().unwrap().ip(),
        std::net::IpAddr::V6(address)
    );
    drop(stream);
    assert_eq!(hops_seen(&stack), "hops 10");
    drop(stack);

    // The oracle: a kernel stack with the same MAC on the same link.
    if !common::kernel_available(test) {
        return;
    }
    let kernel = Stack::builder()
        .vnl(&switch.vnl())
        .backend(Backend::Kernel)
        .build()
        .unwrap();
    kernel
        .cmd(&format!(
            "/bin/ip link set vde0 address {mac}; /bin/ip link set vde0 up"
        ))
        .unwrap();
    let (kernel_addr, kernel_routes) = slaac_lines(&kernel, address);
    assert_eq!(addr, kernel_addr);
    assert_eq!(routes, kernel_routes);
    assert_eq!(hops_seen(&kernel), "hops 10");
}

/// What the router says of the hop limit of a datagram `stack` sends it from
/// a socket that set none: the advertised Cur Hop Limit, on Linux.
fn hops_seen(stack: &Stack) -> String {
    let udp = vdestack::UdpSocket::bind(stack, "[::]:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    udp.send_to(b"x", "[fd00:1::1]:7001").unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = udp.recv_from(&mut buf).expect("the router answers");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The two lines `ip addr show` prints for the address `cidr`.
fn addr_lines(shown: &str, cidr: &str) -> Option<String> {
    let lines: Vec<&str> = shown.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains(&format!(" {cidr} ")))?;
    Some(format!("{}\n{}", lines[i], lines[i + 1]))
}

#[test]
fn ip_addr_add_takes_lifetimes_as_linux_does() {
    use vdestack::cmd::NetConfig;
    let mut c = NetConfig::new("vde0", MAC);
    c.run("/bin/ip link set vde0 up").unwrap();
    c.advance_clock(Duration::from_secs(100));
    c.run(
        "/bin/ip addr add 10.9.9.9/24 dev vde0 valid_lft 100 preferred_lft 50; \
         /bin/ip addr add 10.7.7.7/24 dev vde0 valid_lft 100 preferred_lft 0; \
         /bin/ip addr add fd00:9::6/64 dev vde0 valid_lft 100 preferred_lft 0 mngtmpaddr; \
         /bin/ip addr add fd00:9::5/64 dev vde0 valid_lft forever preferred_lft 50",
    )
    .unwrap();
    // As Linux 6.18 printed them, past duplicate address detection.
    c.finish_dad();
    let shown = c.run("/bin/ip addr show dev vde0").unwrap();
    assert_eq!(
        addr_lines(&shown, "10.9.9.9/24").unwrap(),
        "    inet 10.9.9.9/24 scope global dynamic vde0\n       valid_lft 100sec preferred_lft 50sec"
    );
    assert_eq!(
        addr_lines(&shown, "10.7.7.7/24").unwrap(),
        "    inet 10.7.7.7/24 scope global deprecated dynamic vde0\n       valid_lft 100sec preferred_lft 0sec"
    );
    let json = c.run("/bin/ip -j addr show dev vde0").unwrap();
    assert!(
        json.contains(
            "{\"family\":\"inet\",\"local\":\"10.7.7.7\",\"prefixlen\":24,\"scope\":\"global\",\
             \"deprecated\":true,\"dynamic\":true,\"label\":\"vde0\",\"valid_life_time\":100,\
             \"preferred_life_time\":0}"
        ),
        "{json}"
    );
    assert!(
        json.contains(
            "{\"family\":\"inet6\",\"local\":\"fd00:9::6\",\"prefixlen\":64,\"scope\":\"global\",\
             \"deprecated\":true,\"dynamic\":true,\"mngtmpaddr\":true,\"valid_life_time\":100,\
             \"preferred_life_time\":0}"
        ),
        "{json}"
    );
    assert_eq!(
        addr_lines(&shown, "fd00:9::6/64").unwrap(),
        "    inet6 fd00:9::6/64 scope global deprecated dynamic mngtmpaddr \n       valid_lft 100sec preferred_lft 0sec"
    );
    assert_eq!(
        addr_lines(&shown, "fd00:9::5/64").unwrap(),
        "    inet6 fd00:9::5/64 scope global \n       valid_lft forever preferred_lft 50sec"
    );
    // iproute2's own refusals.
    for (words, status, message) in [
        (
            "valid_lft 100",
            1,
            "preferred_lft is greater than valid_lft",
        ),
        (
            "valid_lft 100 preferred_lft 200",
            1,
            "preferred_lft is greater than valid_lft",
        ),
        ("valid_lft 0", 1, "valid_lft is zero"),
        (
            "valid_lft abc",
            255,
            "Error: argument \"abc\" is wrong: valid_lft value",
        ),
    ] {
        let e = c
            .run(&format!("/bin/ip addr add fd00:9::7/64 dev vde0 {words}"))
            .unwrap_err();
        assert_eq!((e.status(), e.message()), (status, message), "{words}");
    }
    // The clock runs: what is valid no more goes, with its prefix route.
    assert_eq!(c.next_expiry(), Some(Duration::from_secs(200)));
    c.advance_clock(Duration::from_secs(200));
    let shown = c.run("/bin/ip addr show dev vde0").unwrap();
    assert_eq!(addr_lines(&shown, "10.9.9.9/24"), None);
    assert_eq!(addr_lines(&shown, "10.7.7.7/24"), None);
    assert_eq!(addr_lines(&shown, "fd00:9::6/64"), None);
    assert!(addr_lines(&shown, "fd00:9::5/64")
        .unwrap()
        .contains("valid_lft forever preferred_lft 0sec"));
    let routes = c.run("/bin/ip route; /bin/ip -6 route").unwrap();
    assert!(!routes.contains("10.9.9.0/24"), "{routes}");
    assert!(routes.contains("fd00:9::/64"), "{routes}");
    // `replace` without lifetimes makes an address permanent again.
    c.run("/bin/ip addr replace fd00:9::5/64 dev vde0").unwrap();
    let shown = c.run("/bin/ip -j addr show dev vde0").unwrap();
    assert!(
        shown.contains(
            "\"local\":\"fd00:9::5\",\"prefixlen\":64,\"scope\":\"global\",\
             \"valid_life_time\":4294967295,\"preferred_life_time\":4294967295"
        ),
        "{shown}"
    );
}

/// A router's Cur Hop Limit and MTU are what a connected IPv6 socket that set
/// no hop limit reads as `IPV6_UNICAST_HOPS` and `IPV6_MTU`, as on Linux 6.18
/// (measured with the interface's `hop_limit` 33 and `mtu` 1400: a connected
/// UDP socket reads 33 and 1400, an unconnected one 64 and `ENOTCONN`; a hop
/// limit set reads as set, and `-1` goes back to the interface's).
#[test]
fn a_connected_socket_reads_the_advertised_hop_limit_and_mtu() {
    use std::os::fd::AsFd;
    use vdestack::bsd::{self, OptValue, SockOpt};
    use vdestack::link::{Link, VdeLink};
    let switch = Switch::start();
    let stack = common::stack_on(Backend::Userspace, &switch.vnl());
    stack.cmd("/bin/ip link set vde0 up").unwrap();
    let mut router = VdeLink::open(&switch.vnl(), "router").expect("a port for the router");
    let mut ra = standard_ra();
    ra.cur_hop_limit = 33;
    ra.options.extend(mtu_option(1400));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stack
        .cmd_output("/bin/ip -6 route show default")
        .unwrap()
        .contains("mtu 1400 hoplimit 33")
    {
        assert!(Instant::now() < deadline, "the advertisement was not taken");
        router.send(&ra.frame()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let int = |fd: &std::os::fd::OwnedFd, opt| match bsd::get_option(fd.as_fd(), opt) {
        Ok(OptValue::Int(v)) => Ok(v),
        Ok(other) => panic!("{opt:?}: {other:?}"),
        Err(e) => Err(e.raw_os_error()),
    };
    let unconnected = bsd::socket(&stack, libc::AF_INET6, libc::SOCK_DGRAM, 0).unwrap();
    assert_eq!(int(&unconnected, SockOpt::UnicastHops), Ok(64));
    assert_eq!(
        int(&unconnected, SockOpt::PathMtu),
        Err(Some(libc::ENOTCONN))
    );
    let connected = bsd::socket(&stack, libc::AF_INET6, libc::SOCK_DGRAM, 0).unwrap();
    // Once the address the prefix gives has passed duplicate address detection.
    while let Err(e) = bsd::connect(connected.as_fd(), "[2001:db8::9]:9".parse().unwrap()) {
        assert!(Instant::now() < deadline, "no source address: {e}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(int(&connected, SockOpt::UnicastHops), Ok(33));
    assert_eq!(int(&connected, SockOpt::PathMtu), Ok(1400));
    bsd::set_option(connected.as_fd(), SockOpt::UnicastHops, OptValue::Int(7)).unwrap();
    assert_eq!(int(&connected, SockOpt::UnicastHops), Ok(7));
    bsd::set_option(connected.as_fd(), SockOpt::UnicastHops, OptValue::Int(-1)).unwrap();
    assert_eq!(int(&connected, SockOpt::UnicastHops), Ok(33));
    // IPV6_DONTFRAG holds datagrams to the router's MTU, not the link's (as
    // Linux's `mtu6`); IPV6_PMTUDISC_PROBE to the device's.
    assert_eq!(int(&connected, SockOpt::Mtu), Ok(1400));
    let send =
        |len: usize| bsd::send(connected.as_fd(), &vec![7; len], 0).map_err(|e| e.raw_os_error());
    bsd::set_option(connected.as_fd(), SockOpt::DontFragment, OptValue::Int(1)).unwrap();
    assert_eq!(send(1352), Ok(1352));
    assert_eq!(send(1353), Err(Some(libc::EMSGSIZE)));
    bsd::set_option(connected.as_fd(), SockOpt::DontFragment, OptValue::Int(0)).unwrap();
    bsd::set_option(connected.as_fd(), SockOpt::MtuDiscoverV6, OptValue::Int(3)).unwrap();
    assert_eq!(send(1452), Ok(1452));
    assert_eq!(send(1453), Err(Some(libc::EMSGSIZE)));
}
