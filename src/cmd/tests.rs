//! Behaviour checked against the real thing.
//!
//! The transcripts in `testdata/` are what iproute2 6.1 printed (stdout and stderr
//! interleaved) and returned for each command, run one after the other in a fresh
//! `unshare -Urn` network namespace where a tap device `vde0` (held open, so with a
//! carrier, MAC 02:11:22:33:44:55) stands in for the VDE link. The replay test runs
//! the same commands through [`NetConfig::run`] and demands the same output, exit
//! status and message. The other tests cover what a transcript cannot show
//! (lookups, limits, generations, the deliberate differences), and say where their
//! expectations come from.

use super::*;
use crate::cmd::config::MAIN_TABLE;
use std::net::IpAddr;

mod steps;

const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

fn fresh() -> NetConfig {
    NetConfig::new("vde0", MAC)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Runs `cmds` (each a `/bin/ip` command line) and expects success.
fn ok(cfg: &mut NetConfig, cmds: &str) -> String {
    cfg.run(cmds)
        .unwrap_or_else(|e| panic!("{cmds:?} failed: {} ({})", e.message(), e.status()))
}

/// Runs `cmds` and expects this failure.
fn fails(cfg: &mut NetConfig, cmds: &str, status: i32, message: &str) {
    match cfg.run(cmds) {
        Ok(out) => panic!("{cmds:?} succeeded: {out:?}"),
        Err(e) => {
            assert_eq!((e.status(), e.message()), (status, message), "{cmds:?}");
        }
    }
}

// ---- transcripts ----

struct Step {
    command: String,
    output: String,
    status: i32,
}

fn parse_transcript(text: &str) -> (bool, Vec<Step>) {
    let mut lo_only = false;
    let mut steps = Vec::new();
    let mut current: Option<Step> = None;
    for line in text.lines() {
        if line == "#config lo" {
            lo_only = true;
        } else if line.starts_with('#') && current.is_none() {
            continue;
        } else if let Some(cmd) = line.strip_prefix("$ ") {
            current = Some(Step {
                command: cmd.to_string(),
                output: String::new(),
                status: -1,
            });
        } else if let Some(rc) = line.strip_prefix("[rc=").and_then(|r| r.strip_suffix(']')) {
            let mut step = current.take().expect("status after a command");
            step.status = rc.parse().unwrap();
            steps.push(step);
        } else {
            let step = current.as_mut().expect("output after a command");
            step.output.push_str(line);
            step.output.push('\n');
        }
    }
    (lo_only, steps)
}

/// iproute2 prints an extra empty line after some messages (`invarg` adds a
/// newline to a message that has one); the model's messages have none.
fn without_blank_lines(s: &str) -> String {
    s.lines()
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A successful command's warnings went to standard error, which
/// [`NetConfig::run`] does not return (the wildcard-deletion warning continues
/// on indented lines).
fn without_warnings(output: &str) -> String {
    let mut in_warning = false;
    output
        .lines()
        .filter(|l| {
            in_warning = l.starts_with("Warning: ") || (in_warning && l.starts_with("         "));
            !in_warning
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn replay(name: &str, text: &str) {
    let (lo_only, steps) = parse_transcript(text);
    assert!(!steps.is_empty(), "{name}: empty transcript");
    let mut cfg = if lo_only {
        NetConfig::loopback_only()
    } else {
        fresh()
    };
    for step in steps {
        if step.command.starts_with("sleep") {
            // The oracle waited for IPv6 duplicate address detection to finish.
            cfg.finish_dad();
            continue;
        }
        let what = format!("{name}: {}", step.command);
        match cfg.run(&format!("/bin/{}", step.command)) {
            Ok(out) => {
                assert_eq!(step.status, 0, "{what}: succeeded, the oracle did not");
                assert_eq!(out, without_warnings(&step.output), "{what}");
            }
            Err(e) => {
                assert_eq!(e.status(), step.status, "{what}: {}", e.message());
                assert_eq!(
                    without_blank_lines(e.message()),
                    without_blank_lines(&step.output),
                    "{what}"
                );
            }
        }
    }
}

macro_rules! transcript_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(
                    stringify!($name),
                    include_str!(concat!("testdata/", stringify!($name), ".txt")),
                );
            }
        )*
    };
}

mod transcript {
    use super::replay;
    transcript_tests!(
        basic,
        mtu,
        addr_parse,
        addr_attrs,
        link_settings,
        neigh_get,
        stats_detail,
        route_proto,
        addr_kernel,
        route,
        route6,
        route7,
        misc,
        lifecycle,
        loonly,
        lo6,
        quirks,
        metric,
        label,
        rename,
        neigh,
        stats,
        brief,
        neigh_brief,
        json,
        json2,
        reject,
        multipath,
        weights,
        multipath4,
        nexthop,
        rfc5549,
        dad,
        tables,
        local_table,
        route_types,
        route_get,
        route_get6,
        route_get_edge,
        route_get_noaddr,
        nat6,
        local_order,
        local_del,
        local_del2,
        local_flush,
        local_readd,
        route_del_proto,
        local_dad_order,
        anyip,
    );
}

// ---- what a running stack observed ----

/// Learned neighbours are listed after the static ones of their family, IPv4
/// first (Linux dumps its ARP table, then its IPv6 one); `ip neigh flush`
/// hands the learned ones it selects to the engine, as Linux deletes them, and
/// leaves the permanent ones.
#[test]
fn learned_neighbours_are_listed_by_family_and_flushed() {
    let mut cfg = fresh();
    ok(
        &mut cfg,
        "/bin/ip link set vde0 up; /bin/ip -6 neigh add fd00::9 lladdr 02:00:00:00:00:09 dev vde0",
    );
    let mut observed = Observed::default();
    let mac = Some([2, 0, 0, 0, 0, 2]);
    observed.neighbors = vec![
        Neighbor::new(2, ip("10.0.0.2"), mac, NeighborState::Reachable),
        Neighbor::new(2, ip("fd00::2"), mac, NeighborState::Stale),
    ];
    let shown = cfg.run_observed("/bin/ip neigh show", &observed).unwrap();
    let first: Vec<&str> = shown.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(first, ["10.0.0.2", "fd00::9", "fd00::2"]);
    cfg.run_observed("/bin/ip -6 neigh flush dev vde0", &observed)
        .unwrap();
    assert_eq!(cfg.take_flushed_neighbors(), [(2, ip("fd00::2"))]);
    assert!(cfg.take_flushed_neighbors().is_empty());
    assert_eq!(cfg.neighbors().len(), 1, "the permanent entry stays");
}

#[test]
fn counters_are_printed_as_iproute2_sizes_its_columns() {
    let mut cfg = fresh();
    let wire = LinkStats {
        rx_bytes: 12_345_678_901,
        rx_packets: 42,
        tx_bytes: 900,
        tx_packets: 9,
        rx_dropped: 3,
        ..LinkStats::default()
    };
    let mut observed = Observed::default();
    observed.stats.push((2, wire));
    let out = cfg
        .run_observed("/bin/ip -s link show dev vde0", &observed)
        .unwrap();
    let lines: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(
        lines,
        [
            "    RX:   bytes packets errors dropped  missed   mcast           ",
            "    12345678901      42      0       3       0       0 ",
            "    TX:   bytes packets errors dropped carrier collsns           ",
            "            900       9      0       0       0       0 ",
        ]
    );
    // Without -s, no counters; lo counted nothing.
    assert_eq!(
        cfg.run_observed("/bin/ip link show dev vde0", &observed)
            .unwrap()
            .lines()
            .count(),
        2
    );
    assert!(cfg
        .run_observed("/bin/ip -s link show dev lo", &observed)
        .unwrap()
        .contains("             0       0      0       0       0       0 "));
}

// ---- the stackcmd string ----

#[test]
fn blank_strings_run_nothing() {
    let mut cfg = fresh();
    assert_eq!(ok(&mut cfg, ""), "");
    assert_eq!(ok(&mut cfg, " \t\n"), "");
    assert_eq!(ok(&mut cfg, ";;,;"), "");
    assert_eq!(cfg.generation(), 0);
}

#[test]
fn sequences_stop_at_the_first_failure() {
    let mut cfg = fresh();
    fails(
        &mut cfg,
        "/bin/ip link set vde0 up; /bin/ip link set vde9 up; /bin/ip link set lo up",
        1,
        "Cannot find device \"vde9\"",
    );
    assert!(cfg.link_by_name("vde0").unwrap().up);
    assert!(!cfg.link_by_name("lo").unwrap().up);
    // Commas separate commands too (the man page's promise), but not when quoted.
    ok(
        &mut cfg,
        "/bin/ip link set lo up, /sbin/ip addr add 10.0.0.1/24 dev vde0",
    );
    assert!(cfg.link_by_name("lo").unwrap().up);
    fails(
        &mut cfg,
        "/bin/ip link set 'vde0,lo' up",
        1,
        "Cannot find device \"vde0,lo\"",
    );
}

#[test]
fn show_output_is_concatenated() {
    let mut cfg = fresh();
    let out = ok(
        &mut cfg,
        "/bin/ip link show lo; /usr/sbin/ip -6 route; /usr/bin/ip link show lo",
    );
    let lo = "1: lo: <LOOPBACK> mtu 65536 qdisc noop state DOWN mode DEFAULT group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n";
    assert_eq!(out, format!("{lo}{lo}"));
}

#[test]
fn only_ip_runs_and_only_by_full_path() {
    let mut cfg = fresh();
    // The reference runs commands with execv, which does not search PATH: the child
    // exits 2 (FACTS.md).
    fails(
        &mut cfg,
        "ip link set vde0 up",
        2,
        "ip: command not found (stackcmd commands need a full path)",
    );
    fails(
        &mut cfg,
        "/usr/bin/foo --bar",
        2,
        "/usr/bin/foo: the userspace stack runs only ip (/bin/ip, /sbin/ip, /usr/bin/ip, \
         /usr/sbin/ip); it does not run external commands",
    );
    fails(
        &mut cfg,
        "./ip link",
        2,
        "./ip: the userspace stack runs only ip (/bin/ip, /sbin/ip, /usr/bin/ip, \
         /usr/sbin/ip); it does not run external commands",
    );
    for path in ["/bin/ip", "/sbin/ip", "/usr/bin/ip", "/usr/sbin/ip"] {
        ok(&mut cfg, &format!("{path} link set lo up"));
    }
}

/// The table of FACTS.md, each checked with `unshare -Urn` and iproute2 6.1.
#[test]
fn facts_table() {
    let mut cfg = NetConfig::new("eth9", MAC);
    fails(
        &mut cfg,
        "/bin/ip link set vde0 up",
        1,
        "Cannot find device \"vde0\"",
    );
    ok(&mut cfg, "/bin/ip addr add 10.0.0.1/24 dev lo");
    fails(
        &mut cfg,
        "/bin/ip addr add 10.0.0.1/24 dev lo",
        2,
        "Error: ipv4: Address already assigned.",
    );
    fails(
        &mut cfg,
        "/bin/ip addr add 10.0.0.x/24 dev lo",
        1,
        "Error: any valid prefix is expected rather than \"10.0.0.x/24\".",
    );
    fails(
        &mut cfg,
        "/bin/ip route add default via 10.9.9.9",
        2,
        "Error: Nexthop has invalid gateway.",
    );
    fails(
        &mut cfg,
        "/bin/ip foo",
        1,
        "Object \"foo\" is unknown, try \"ip help\".",
    );
    fails(
        &mut cfg,
        "/bin/ip link set lo mtu abc",
        255,
        "Error: argument \"abc\" is wrong: Invalid \"mtu\" value",
    );
}

#[test]
fn quoted_and_odd_words() {
    let mut cfg = fresh();
    // Checked with the oracle: `ip ""` -> 1, Object "" is unknown.
    fails(
        &mut cfg,
        "/bin/ip ''",
        1,
        "Object \"\" is unknown, try \"ip help\".",
    );
    fails(
        &mut cfg,
        "/bin/ip \"\" link",
        1,
        "Object \"\" is unknown, try \"ip help\".",
    );
    ok(&mut cfg, "/bin/ip link set \"vde0\" u\\p");
    assert!(cfg.link_by_name("vde0").unwrap().up);
}

// ---- deliberate differences from the oracle ----

#[test]
fn vde_link_mtu_stops_at_9000() {
    // A tap accepts up to 65535 - 1; the VDE link carries 9000-byte payloads at most.
    // The message is the kernel's for a device maximum (oracle: mtu 65535 on a tap).
    let mut cfg = fresh();
    ok(&mut cfg, "/bin/ip link set vde0 mtu 9000");
    fails(
        &mut cfg,
        "/bin/ip link set vde0 mtu 9001",
        2,
        "Error: mtu greater than device maximum.",
    );
    assert_eq!(cfg.link_by_name("vde0").unwrap().mtu, 9000);
}

#[test]
fn unsupported_things_are_refused_not_ignored() {
    let mut cfg = fresh();
    fails(
        &mut cfg,
        "/bin/ip neigh get 10.0.0.2 dev vde0 proxy x",
        2,
        "Error: vdestack: \"ip neigh get ... proxy\" is not supported.",
    );
    fails(
        &mut cfg,
        "/bin/ip -s neigh",
        2,
        "Error: vdestack: option \"-stats\" with \"ip neigh\" (its use counters) is not supported.",
    );
    fails(
        &mut cfg,
        "/bin/ip link add foo type dummy",
        2,
        "Error: vdestack: \"ip link add\" is not supported.",
    );
    fails(
        &mut cfg,
        "/bin/ip link set vde0 netns 5",
        2,
        "Error: vdestack: \"ip link set ... netns\" is not supported.",
    );
    // The oracle: `d` abbreviates `dynamic`, which wants on|off.
    fails(
        &mut cfg,
        "/bin/ip link set d vde0 up",
        1,
        "Error: argument of \"dynamic\" must be \"on\" or \"off\", not \"vde0\"",
    );
    fails(
        &mut cfg,
        "/bin/ip route save",
        2,
        "Error: vdestack: \"ip route save\" is not supported.",
    );
    assert_eq!(cfg.generation(), 0);
}

// ---- limits ----

#[test]
fn at_most_max_addrs_addresses() {
    let mut cfg = fresh();
    // lo's own addresses do not count.
    ok(&mut cfg, "/bin/ip link set lo up");
    for i in 1..=MAX_ADDRS - 2 {
        ok(
            &mut cfg,
            &format!("/bin/ip addr add 10.0.{i}.1/24 dev vde0"),
        );
    }
    ok(&mut cfg, "/bin/ip addr add 2001:db8::1/64 dev vde0");
    ok(&mut cfg, "/bin/ip addr add 10.9.9.9/32 dev lo");
    let limit = format!("Error: vdestack: too many addresses (limit {MAX_ADDRS}).");
    fails(&mut cfg, "/bin/ip addr add 10.1.0.1/24 dev vde0", 2, &limit);
    fails(
        &mut cfg,
        "/bin/ip addr add 2001:db8::2/64 dev vde0",
        2,
        &limit,
    );
    // Errors Linux reports come first.
    fails(
        &mut cfg,
        "/bin/ip addr add 10.0.1.1/24 dev vde0",
        2,
        "Error: ipv4: Address already assigned.",
    );
    // With the table full, the link-local address is left out when the link comes up.
    ok(&mut cfg, "/bin/ip link set vde0 up");
    let vde0 = cfg.link_by_name("vde0").unwrap();
    assert_eq!(vde0.addrs.len(), MAX_ADDRS - 1);
    assert!(!ok(&mut cfg, "/bin/ip -6 route").contains("fe80"));
    ok(&mut cfg, "/bin/ip addr del 10.0.6.1/24 dev vde0");
    ok(&mut cfg, "/bin/ip addr add 10.1.0.1/24 dev vde0");
}

#[test]
fn at_most_max_user_routes_added_routes() {
    let mut cfg = fresh();
    ok(
        &mut cfg,
        "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0",
    );
    for i in 1..=MAX_USER_ROUTES {
        ok(
            &mut cfg,
            &format!("/bin/ip route add 10.{i}.0.0/16 via 10.0.0.254"),
        );
    }
    let limit = format!("Error: vdestack: too many routes (limit {MAX_USER_ROUTES}).");
    let limit = limit.as_str();
    fails(
        &mut cfg,
        "/bin/ip route add default via 10.0.0.254",
        2,
        limit,
    );
    // Connected routes do not count, replacing an added route is no addition...
    ok(&mut cfg, "/bin/ip addr add 10.99.0.1/24 dev vde0");
    ok(&mut cfg, "/bin/ip route replace 10.1.0.0/16 via 10.0.0.253");
    // ... but turning a connected route into an added one is.
    fails(
        &mut cfg,
        "/bin/ip route replace 10.0.0.0/24 dev vde0",
        2,
        limit,
    );
    fails(
        &mut cfg,
        "/bin/ip route add 10.1.0.0/16 via 10.0.0.254",
        2,
        "RTNETLINK answers: File exists",
    );
    ok(
        &mut cfg,
        &format!("/bin/ip route del 10.{MAX_USER_ROUTES}.0.0/16"),
    );
    ok(&mut cfg, "/bin/ip route add default via 10.0.0.254");
    let user = cfg
        .routes()
        .iter()
        .filter(|r| r.proto == RouteProto::Boot)
        .count();
    assert_eq!(user, MAX_USER_ROUTES);
}

// ---- the model read back ----

#[test]
fn fresh_models() {
    let cfg = NetConfig::new("tap7", MAC);
    let links = cfg.links();
    assert_eq!(links.len(), 2);
    assert_eq!(
        links[0],
        Link {
            index: 1,
            name: "lo".into(),
            kind: LinkKind::Loopback,
            up: false,
            mtu: 65536,
            mac: [0; 6],
            addrs: vec![],
        }
    );
    assert_eq!(
        (
            links[1].index,
            links[1].kind,
            links[1].mtu,
            links[1].mac,
            links[1].up
        ),
        (2, LinkKind::Ether, 1500, MAC, false)
    );
    assert_eq!(cfg.link_by_name("tap7").unwrap().index, 2);
    assert_eq!(cfg.link_by_index(1).unwrap().name, "lo");
    assert!(cfg.link_by_index(3).is_none());
    assert!(cfg.routes().is_empty());
    assert_eq!(cfg.generation(), 0);

    let lo = NetConfig::loopback_only();
    assert_eq!(lo.links().len(), 1);
    assert_eq!(lo.links()[0].kind, LinkKind::Loopback);
}

#[test]
fn addresses_and_routes_as_data() {
    let mut cfg = fresh();
    ok(
        &mut cfg,
        "/bin/ip link set lo up; /bin/ip link set vde0 up; \
         /bin/ip addr add 10.0.0.1/24 dev vde0; /bin/ip addr add 2001:db8::1/64 dev vde0; \
         /bin/ip route add default via 10.0.0.254; \
         /bin/ip -6 route add default via fe80::1 dev vde0",
    );
    let lo = cfg.link_by_name("lo").unwrap();
    assert_eq!(
        lo.addrs,
        vec![
            IfAddr {
                addr: ip("127.0.0.1"),
                prefix_len: 8
            },
            IfAddr {
                addr: ip("::1"),
                prefix_len: 128
            },
        ]
    );
    let vde0 = cfg.link_by_name("vde0").unwrap();
    assert_eq!(
        vde0.addrs,
        vec![
            IfAddr {
                addr: ip("10.0.0.1"),
                prefix_len: 24
            },
            IfAddr {
                addr: ip("2001:db8::1"),
                prefix_len: 64
            },
            IfAddr {
                addr: ip("fe80::11:22ff:fe33:4455"),
                prefix_len: 64
            },
        ]
    );
    let route = |dst: &str, len, via: Option<&str>, proto, src: Option<&str>| Route {
        kind: RouteType::Unicast,
        dst: ip(dst),
        prefix_len: len,
        via: via.map(ip),
        dev: 2,
        proto,
        src: src.map(ip),
        metric: match (dst.contains(':'), proto) {
            (false, _) => 0,
            (true, RouteProto::Kernel) => 256,
            (true, _) => 1024,
        },
        weight: 1,
        group: 0,
        universe: false,
        table: MAIN_TABLE,
    };
    assert_eq!(
        cfg.routes(),
        vec![
            route("0.0.0.0", 0, Some("10.0.0.254"), RouteProto::Boot, None),
            route("10.0.0.0", 24, None, RouteProto::Kernel, Some("10.0.0.1")),
            route("2001:db8::", 64, None, RouteProto::Kernel, None),
            route("fe80::", 64, None, RouteProto::Kernel, None),
            route("::", 0, Some("fe80::1"), RouteProto::Boot, None),
        ]
    );
    assert_eq!(cfg.routes()[2].metric(), 256);
    assert_eq!(cfg.routes()[4].metric(), 1024);
    assert_eq!(cfg.routes()[0].metric(), 0);
}

// ---- lookups, against `ip route get` in the oracle ----

/// `ip route get` answers from the lookup the running stack follows: for
/// every destination, the device, gateway and source it prints are
/// [`NetConfig::lookup`]'s, and it fails where the lookup fails.
#[test]
fn route_get_prints_what_the_stacks_lookup_decides() {
    let mut cfg = fresh();
    ok(
        &mut cfg,
        "/bin/ip link set vde0 up; /bin/ip link set lo up; \
         /bin/ip addr add 10.0.0.1/24 dev vde0; /bin/ip addr add 10.0.0.9/24 dev vde0; \
         /bin/ip -6 addr add 2001:db8::1/64 dev vde0 nodad; \
         /bin/ip route add default via 10.0.0.254; \
         /bin/ip route add 192.168.6.0/24 via 10.0.0.253 src 10.0.0.9; \
         /bin/ip route add 10.12.0.0/16 dev lo; \
         /bin/ip -6 route add 2001:dba::/48 via 2001:db8::fd metric 5",
    );
    let field = |line: &str, key: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words
            .windows(2)
            .find(|w| w[0] == key)
            .map(|w| w[1].to_string())
    };
    for dst in [
        "10.0.0.2",
        "8.8.8.8",
        "192.168.6.7",
        "10.0.0.1",
        "10.0.0.9",
        "127.0.0.1",
        "10.12.0.1",
        "2001:db8::2",
        "2001:dba::1",
        "2001:db9::1",
        "::1",
    ] {
        let hop = cfg.lookup(ip(dst));
        let got = cfg.run(&format!("/bin/ip route get {dst}"));
        let (Some(hop), Ok(line)) = (hop, &got) else {
            assert!(hop.is_none() && got.is_err(), "{dst}: {hop:?} vs {got:?}");
            continue;
        };
        let dev = cfg.link_by_index(hop.dev).unwrap().name.clone();
        assert_eq!(field(line, "dev"), Some(dev), "{dst}: {line}");
        let via = (hop.addr != ip(dst)).then(|| hop.addr.to_string());
        assert_eq!(field(line, "via"), via, "{dst}: {line}");
        assert_eq!(
            field(line, "src"),
            hop.src.map(|s| s.to_string()),
            "{dst}: {line}"
        );
    }
}

/// Through a multipath route `ip route get` names the first nexthop up, as
/// the stack's plain lookup does: Linux hashes the flow with a key of its
/// own (its answer for `10.31.0.1` through nexthops of weights 1 and 255 was
/// the second, for `2001:dc0::1` through two of weight 1 the first).
#[test]
fn route_get_through_a_multipath_route_names_its_first_nexthop() {
    let mut cfg = fresh();
    ok(
        &mut cfg,
        "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
         /bin/ip -6 addr add 2001:db8::1/64 dev vde0 nodad; \
         /bin/ip route add 10.31.0.0/16 nexthop via 10.0.0.5 weight 1 nexthop via 10.0.0.6 weight 255; \
         /bin/ip -6 route add 2001:dc0::/48 nexthop via 2001:db8::a nexthop via 2001:db8::b",
    );
    assert_eq!(
        ok(&mut cfg, "/bin/ip route get 10.31.0.1"),
        "10.31.0.1 via 10.0.0.5 dev vde0 src 10.0.0.1 uid 0 \n    cache \n"
    );
    assert_eq!(
        ok(&mut cfg, "/bin/ip -6 route get 2001:dc0::1"),
        "2001:dc0::1 from :: via 2001:db8::a dev vde0 src 2001:db8::1 metric 1024 pref medium\n"
    );
}

/// `connected` with no source found: iproute2 prints the first answer, then
/// "Failed to connect the route" and exits 1 (the model returns the error
/// only).
#[test]
fn route_get_connected_without_a_source_fails() {
    let mut cfg = fresh();
    ok(&mut cfg, "/bin/ip link set vde0 up");
    fails(
        &mut cfg,
        "/bin/ip route get connected 1.2.3.4 oif vde0",
        1,
        "Failed to connect the route",
    );
}

/// `notify` makes Linux mark its cached route, so that every later answer
/// through it says `notify`: state the model does not keep.
#[test]
fn route_get_notify_is_refused() {
    let mut cfg = fresh();
    fails(
        &mut cfg,
        "/bin/ip route get 10.0.0.1 notify",
        2,
        "Error: vdestack: \"ip route get ... notify\" is not supported.",
    );
}

/// `expires N` as Linux 6.18 takes it (recorded on a veth): an IPv6 route
/// counts down and goes; 0 and 4294967295 never expire; an IPv4 route ignores
/// it; a replace without it makes the route permanent again.
#[test]
fn routes_with_expires_count_down_and_go() {
    use std::time::Duration;
    let mut cfg = fresh();
    ok(
        &mut cfg,
        "/bin/ip link set vde0 up; /bin/ip -6 addr add 2001:db8::1/64 dev vde0 nodad; \
         /bin/ip addr add 10.0.0.1/24 dev vde0; \
         /bin/ip -6 route add 2001:db8:1::/64 via 2001:db8::2 dev vde0 expires 100; \
         /bin/ip -6 route add 2001:db8:2::/64 dev vde0 expires 0; \
         /bin/ip -6 route add 2001:db8:4::/64 dev vde0 expires 4294967295; \
         /bin/ip route add 10.1.0.0/16 via 10.0.0.2 expires 100",
    );
    let show = |cfg: &mut NetConfig, what: &str| ok(cfg, &format!("/bin/ip {what}"));
    assert_eq!(
        show(&mut cfg, "-6 route show 2001:db8:1::/64"),
        "2001:db8:1::/64 via 2001:db8::2 dev vde0 metric 1024 expires 100sec pref medium\n"
    );
    assert_eq!(
        show(&mut cfg, "-6 route show 2001:db8:2::/64"),
        "2001:db8:2::/64 dev vde0 metric 1024 pref medium\n"
    );
    assert_eq!(
        show(&mut cfg, "-6 route show 2001:db8:4::/64"),
        "2001:db8:4::/64 dev vde0 metric 1024 pref medium\n"
    );
    assert_eq!(
        show(&mut cfg, "route show 10.1.0.0/16"),
        "10.1.0.0/16 via 10.0.0.2 dev vde0 \n"
    );
    cfg.advance_clock(Duration::from_secs(40));
    assert!(show(&mut cfg, "-6 route show 2001:db8:1::/64").contains(" expires 60sec "));
    cfg.advance_clock(Duration::from_secs(100));
    assert_eq!(show(&mut cfg, "-6 route show 2001:db8:1::/64"), "");
    assert!(!show(&mut cfg, "route show 10.1.0.0/16").is_empty());
    ok(
        &mut cfg,
        "/bin/ip -6 route add 2001:db8:1::/64 via 2001:db8::2 dev vde0 expires 50; \
         /bin/ip -6 route replace 2001:db8:1::/64 via 2001:db8::2 dev vde0",
    );
    assert_eq!(
        show(&mut cfg, "-6 route show 2001:db8:1::/64"),
        "2001:db8:1::/64 via 2001:db8::2 dev vde0 metric 1024 pref medium\n"
    );
    fails(
        &mut cfg,
        "/bin/ip -6 route add 2001:db8:3::/64 dev vde0 expires abc",
        255,
        "Error: argument \"abc\" is wrong: \"expires\" value is invalid",
    );
}

#[test]
fn a_deprecated_address_is_a_source_only_when_no_other_will_do() {
    let mut cfg = fresh();
    ok(
        &mut cfg,
        "/bin/ip link set vde0 up; \
         /bin/ip addr add 2001:db8:1::1/48 dev vde0 preferred_lft 0; \
         /bin/ip addr add 2001:db8:2::2/48 dev vde0",
    );
    cfg.finish_dad();
    // The deprecated 2001:db8:1::1 shares more of the destination's bits, but
    // RFC 6724's rule 3 (avoid deprecated) comes before rule 8 (longest match).
    let src = |cfg: &NetConfig, to| cfg.lookup(ip(to)).and_then(|h| h.src);
    assert_eq!(src(&cfg, "2001:db8:1::9"), Some(ip("2001:db8:2::2")));
    ok(&mut cfg, "/bin/ip addr del 2001:db8:2::2/48 dev vde0");
    assert_eq!(src(&cfg, "2001:db8:1::9"), Some(ip("2001:db8:1::1")));
}

#[test]
fn lookup_follows_linux() {
    let mut cfg = fresh();
    let hop = |dev, addr: &str, src: Option<&str>, local| NextHop {
        dev,
        addr: ip(addr),
        src: src.map(ip),
        local,
    };
    // Fresh: "ip route get 127.0.0.1" -> Network is unreachable.
    assert_eq!(cfg.lookup(ip("127.0.0.1")), None);
    ok(&mut cfg, "/bin/ip addr add 10.0.0.1/24 dev vde0");
    ok(&mut cfg, "/bin/ip link set lo up");
    // "local 127.0.0.5 dev lo src 127.0.0.1"
    assert_eq!(
        cfg.lookup(ip("127.0.0.5")),
        Some(hop(1, "127.0.0.5", Some("127.0.0.1"), true))
    );
    // Own address on a down link: "local 10.0.0.1 dev lo src 10.0.0.1".
    assert_eq!(
        cfg.lookup(ip("10.0.0.1")),
        Some(hop(1, "10.0.0.1", Some("10.0.0.1"), true))
    );
    // Its network is not reachable while the link is down.
    assert_eq!(cfg.lookup(ip("10.0.0.2")), None);
    ok(
        &mut cfg,
        "/bin/ip link set vde0 up; /bin/ip addr add 10.1.0.1/24 dev vde0; \
         /bin/ip addr add 2001:db8::1/64 dev vde0; /bin/ip addr add 10.9.9.9/32 dev lo; \
         /bin/ip route add default via 10.0.0.254; \
         /bin/ip route add 192.168.0.0/16 via 10.1.0.254; \
         /bin/ip route add 172.16.0.0/12 dev vde0; \
         /bin/ip -6 route add default via fe80::1 dev vde0",
    );
    // The oracle's answers came after duplicate address detection.
    cfg.finish_dad();
    // "local 10.9.9.9 dev lo src 10.9.9.9"
    assert_eq!(
        cfg.lookup(ip("10.9.9.9")),
        Some(hop(1, "10.9.9.9", Some("10.9.9.9"), true))
    );
    // "10.0.0.2 dev vde0 src 10.0.0.1", "10.1.0.7 dev vde0 src 10.1.0.1"
    assert_eq!(
        cfg.lookup(ip("10.0.0.2")),
        Some(hop(2, "10.0.0.2", Some("10.0.0.1"), false))
    );
    assert_eq!(
        cfg.lookup(ip("10.1.0.7")),
        Some(hop(2, "10.1.0.7", Some("10.1.0.1"), false))
    );
    // "8.8.8.8 via 10.0.0.254 dev vde0 src 10.0.0.1"
    assert_eq!(
        cfg.lookup(ip("8.8.8.8")),
        Some(hop(2, "10.0.0.254", Some("10.0.0.1"), false))
    );
    // "192.168.3.4 via 10.1.0.254 dev vde0 src 10.1.0.1"
    assert_eq!(
        cfg.lookup(ip("192.168.3.4")),
        Some(hop(2, "10.1.0.254", Some("10.1.0.1"), false))
    );
    // "172.16.1.1 dev vde0 src 10.0.0.1"
    assert_eq!(
        cfg.lookup(ip("172.16.1.1")),
        Some(hop(2, "172.16.1.1", Some("10.0.0.1"), false))
    );
    // "local 2001:db8::1 ... dev lo ... src 2001:db8::1"
    assert_eq!(
        cfg.lookup(ip("2001:db8::1")),
        Some(hop(1, "2001:db8::1", Some("2001:db8::1"), true))
    );
    // "2001:db8::2 from :: dev vde0 proto kernel src 2001:db8::1"
    assert_eq!(
        cfg.lookup(ip("2001:db8::2")),
        Some(hop(2, "2001:db8::2", Some("2001:db8::1"), false))
    );
    // "fe80::2 from :: dev vde0 proto kernel src fe80::11:22ff:fe33:4455"
    assert_eq!(
        cfg.lookup(ip("fe80::2")),
        Some(hop(2, "fe80::2", Some("fe80::11:22ff:fe33:4455"), false))
    );
    // "2001:4860::1 from :: via fe80::1 dev vde0 src 2001:db8::1"
    assert_eq!(
        cfg.lookup(ip("2001:4860::1")),
        Some(hop(2, "fe80::1", Some("2001:db8::1"), false))
    );
    // "local ::1 from :: dev lo table local proto kernel src ::1"
    assert_eq!(
        cfg.lookup(ip("::1")),
        Some(hop(1, "::1", Some("::1"), true))
    );

    // Without lo, own addresses are not delivered locally (Linux finds them in its
    // local table and then drops the packets; see NetConfig::lookup).
    ok(&mut cfg, "/bin/ip link set lo down");
    assert_eq!(
        cfg.lookup(ip("10.0.0.1")),
        Some(hop(2, "10.0.0.1", Some("10.0.0.1"), false))
    );
    assert_eq!(cfg.lookup(ip("127.0.0.1")), None);
    assert_eq!(cfg.lookup(ip("::1")), None);
    // Down link: its routes are gone, only lo's prefixes are left.
    ok(&mut cfg, "/bin/ip link set vde0 down");
    assert_eq!(cfg.lookup(ip("8.8.8.8")), None);
    assert_eq!(cfg.lookup(ip("2001:db8::2")), None);
    assert_eq!(cfg.lookup(ip("0.0.0.0")), None);
}

#[test]
fn routes_through_lo() {
    // Oracle: "ip route get 10.9.0.5" after "ip route add 10.9.0.0/16 dev lo" says
    // "dev lo ... cache <local>"; an IPv6 route through lo only loops packets back
    // (and cannot carry a gateway: "No route to host").
    let mut cfg = fresh();
    ok(
        &mut cfg,
        "/bin/ip link set lo up; /bin/ip route add 10.9.0.0/16 dev lo; \
         /bin/ip -6 route add 2001:db8:9::/48 dev lo",
    );
    assert_eq!(
        cfg.lookup(ip("10.9.0.5")),
        Some(NextHop {
            dev: 1,
            addr: ip("10.9.0.5"),
            src: None,
            local: true
        })
    );
    assert_eq!(cfg.lookup(ip("2001:db8:9::5")), None);
    fails(
        &mut cfg,
        "/bin/ip -6 route add 2001:db8:1::/48 via 2001:db8:9::fe",
        2,
        "RTNETLINK answers: No route to host",
    );
}

#[test]
fn local_addresses_for_bind() {
    let mut cfg = fresh();
    assert!(!cfg.is_local_addr(ip("127.0.0.1")));
    ok(
        &mut cfg,
        "/bin/ip addr add 10.0.0.1/24 dev vde0; /bin/ip addr add 2001:db8::1/64 dev vde0",
    );
    // "ip route show table local" in the oracle: "local 10.0.0.1 dev vde0" while
    // vde0 is down; no IPv6 local route until the link is up.
    assert!(cfg.is_local_addr(ip("10.0.0.1")));
    assert!(!cfg.is_local_addr(ip("10.0.0.2")));
    assert!(!cfg.is_local_addr(ip("2001:db8::1")));
    ok(&mut cfg, "/bin/ip link set vde0 up; /bin/ip link set lo up");
    // Tentative until duplicate address detection ends: bind() gets
    // EADDRNOTAVAIL then, as on Linux.
    assert!(!cfg.is_local_addr(ip("2001:db8::1")));
    assert!(!cfg.is_local_addr(ip("fe80::11:22ff:fe33:4455")));
    cfg.finish_dad();
    assert!(cfg.is_local_addr(ip("2001:db8::1")));
    assert!(cfg.is_local_addr(ip("fe80::11:22ff:fe33:4455")));
    assert!(cfg.is_local_addr(ip("::1")));
    // "local 127.0.0.0/8 dev lo": the whole /8.
    assert!(cfg.is_local_addr(ip("127.1.2.3")));
    assert!(!cfg.is_local_addr(ip("0.0.0.0")));
    assert!(!cfg.is_local_addr(ip("::")));
    // After lo goes down the oracle still lists "local 127.0.0.0/8 dev lo" (the
    // address stays), but ::1 is gone.
    ok(&mut cfg, "/bin/ip link set lo down");
    assert!(cfg.is_local_addr(ip("127.0.0.1")));
    assert!(!cfg.is_local_addr(ip("::1")));
    // A prefix on lo is local as a whole, but Linux only installs it while lo is
    // up, and keeps it after (oracle: "ip route show table local", "ip route get").
    ok(&mut cfg, "/bin/ip addr add 10.1.1.1/24 dev lo");
    assert!(cfg.is_local_addr(ip("10.1.1.1")));
    assert!(!cfg.is_local_addr(ip("10.1.1.7")));
    ok(&mut cfg, "/bin/ip link set lo up");
    assert!(cfg.is_local_addr(ip("10.1.1.7")));
    ok(&mut cfg, "/bin/ip link set lo down");
    assert!(cfg.is_local_addr(ip("10.1.1.7")));
    ok(&mut cfg, "/bin/ip addr del 10.1.1.1/24 dev lo");
    assert!(!cfg.is_local_addr(ip("10.1.1.7")));
}

/// Both links up, 10.0.0.1/24 and fd00::1/64 on `vde0`, and a `local` route
/// of each family through it.
const ANYIP_SETUP: &str = "/bin/ip link set lo up; /bin/ip link set vde0 up; \
     /bin/ip addr add 10.0.0.1/24 dev vde0; /bin/ip -6 addr add fd00::1/64 dev vde0 nodad; \
     /bin/ip route add local 10.5.0.0/16 dev vde0; /bin/ip -6 route add local fd05::/64 dev vde0";

/// A user's `local` route makes every address of its prefix the stack's, as
/// on Linux (AnyIP; checked on Linux 6.18): IPv4 `bind()` works, lookups say
/// `local` from the address itself; an IPv6 `bind()` still fails (Linux asks
/// its address list) though the lookup says `local`. IPv4 looks the local
/// and main tables up as one, so a longer route of the main table takes its
/// part of the prefix; a `local` route of the main table works too; one of
/// another table is not looked up.
#[test]
fn local_routes_make_their_prefix_local() {
    let mut cfg = fresh();
    assert!(!cfg.is_local_addr(ip("10.5.0.7")));
    ok(&mut cfg, ANYIP_SETUP);
    assert!(cfg.is_local_addr(ip("10.5.0.7")));
    assert!(cfg.is_local_addr(ip("10.5.255.255")));
    assert!(!cfg.is_local_addr(ip("10.6.0.7")));
    assert!(
        !cfg.is_local_addr(ip("fd05::7")),
        "IPv6 bind: EADDRNOTAVAIL"
    );
    for (dst, src) in [("10.5.0.7", "10.5.0.7"), ("fd05::7", "fd00::1")] {
        let hop = cfg.lookup(ip(dst)).unwrap();
        assert!(hop.local, "{dst}");
        assert_eq!((hop.dev, hop.src), (1, Some(ip(src))), "{dst}");
    }
    // A longer route of the main table takes its part.
    ok(&mut cfg, "/bin/ip route add 10.5.1.0/24 via 10.0.0.254");
    assert!(!cfg.is_local_addr(ip("10.5.1.7")));
    assert!(!cfg.lookup(ip("10.5.1.7")).unwrap().local);
    assert!(cfg.is_local_addr(ip("10.5.2.7")));
    ok(
        &mut cfg,
        "/bin/ip route del 10.5.1.0/24; /bin/ip route del local 10.5.0.0/16 dev vde0",
    );
    assert!(!cfg.is_local_addr(ip("10.5.0.7")));
    ok(
        &mut cfg,
        "/bin/ip route add local 10.5.0.0/16 dev lo table main",
    );
    assert!(cfg.is_local_addr(ip("10.5.0.7")));
    ok(
        &mut cfg,
        "/bin/ip route del local 10.5.0.0/16 dev lo table main; \
         /bin/ip route add local 10.5.0.0/16 dev vde0 table 100",
    );
    assert!(!cfg.is_local_addr(ip("10.5.0.7")));
    // A route's `src` is the source of what the stack sends there.
    ok(
        &mut cfg,
        "/bin/ip route add local 10.6.0.0/16 dev lo src 10.0.0.1; \
         /bin/ip route add 10.9.0.0/16 via 10.0.0.254 src 10.6.0.7",
    );
    assert_eq!(
        cfg.lookup(ip("10.6.0.9")).unwrap().src,
        Some(ip("10.0.0.1"))
    );
    assert_eq!(
        cfg.lookup(ip("10.9.0.9")).unwrap().src,
        Some(ip("10.6.0.7"))
    );
    // A broadcast address under the prefix stays one.
    ok(&mut cfg, "/bin/ip route add local 10.0.0.0/24 dev lo");
    assert!(cfg.is_local_addr(ip("10.0.0.9")));
    assert!(!cfg.is_local_addr(ip("10.0.0.255")));
    assert!(cfg.is_broadcast(ip("10.0.0.255")));
}

// ---- generation ----

#[test]
fn generation_moves_on_changes_only() {
    let mut cfg = fresh();
    let g0 = cfg.generation();
    ok(&mut cfg, "/bin/ip addr show; /bin/ip route; /bin/ip link");
    assert_eq!(cfg.generation(), g0);
    ok(&mut cfg, "/bin/ip link set vde0 up");
    let g1 = cfg.generation();
    assert!(g1 > g0);
    // Already up: nothing changes.
    ok(
        &mut cfg,
        "/bin/ip link set vde0 up; /bin/ip link set vde0 mtu 1500",
    );
    assert_eq!(cfg.generation(), g1);
    fails(
        &mut cfg,
        "/bin/ip addr add 10.0.0.x/24 dev vde0",
        1,
        "Error: any valid prefix is expected rather than \"10.0.0.x/24\".",
    );
    assert_eq!(cfg.generation(), g1);
    // The commands before a failure did run.
    fails(
        &mut cfg,
        "/bin/ip link set lo up; /bin/ip foo",
        1,
        "Object \"foo\" is unknown, try \"ip help\".",
    );
    let g2 = cfg.generation();
    assert!(g2 > g1);
    // Linux applies a new MAC before checking the MTU, and keeps it (oracle).
    fails(
        &mut cfg,
        "/bin/ip link set vde0 address 02:00:00:00:00:77 mtu 99999 down",
        2,
        "Error: mtu greater than device maximum.",
    );
    assert!(cfg.generation() > g2);
    let vde0 = cfg.link_by_name("vde0").unwrap();
    assert_eq!(
        (vde0.mac, vde0.mtu, vde0.up),
        ([2, 0, 0, 0, 0, 0x77], 1500, true)
    );
}

#[test]
fn errors_display_their_message() {
    let e = CmdError::new(2, "RTNETLINK answers: File exists\n");
    assert_eq!(e.message(), "RTNETLINK answers: File exists");
    assert_eq!(e.to_string(), "RTNETLINK answers: File exists");
    assert_eq!(e.status(), 2);
    let boxed: Box<dyn std::error::Error> = Box::new(e.clone());
    assert_eq!(boxed.to_string(), e.message());
}

// ---- robustness ----

/// Words that reach the interesting corners: keywords and their abbreviations,
/// good and bad addresses, separators and quotes.
const TOKENS: &[&str] = &[
    "/bin/ip",
    "/sbin/ip",
    "ip",
    "/bin/sh",
    ";",
    ",",
    "'",
    "\"",
    "\\",
    " ",
    "\t",
    "\n",
    "-4",
    "-6",
    "-0",
    "-f",
    "inet6",
    "-",
    "--",
    "-h",
    "-s",
    "link",
    "l",
    "addr",
    "a",
    "route",
    "r",
    "ro",
    "help",
    "h",
    "set",
    "s",
    "show",
    "sh",
    "list",
    "flush",
    "f",
    "add",
    "del",
    "d",
    "replace",
    "re",
    "dev",
    "vde0",
    "lo",
    "vde9",
    "up",
    "down",
    "mtu",
    "0",
    "68",
    "1279",
    "1500",
    "9000",
    "-1",
    "0x600",
    "address",
    "02:00:00:00:00:01",
    "01:00:00:00:00:01",
    "zz",
    "1.2.3.4",
    "10.0.0.1/24",
    "10.0.0.2",
    "10.0.0.254",
    "10.0.0.0/24",
    "10.0.0.5/16",
    "10.1.0.0/16",
    "10.0.0.1/33",
    "127.0.0.1/8",
    "0.0.0.0/0",
    "default",
    "all",
    "any",
    "to",
    "via",
    "src",
    "brd",
    "+",
    "broadcast",
    "2001:db8::1/64",
    "2001:db8::fe",
    "2001:db8::/64",
    "fe80::1",
    "::1",
    "::",
    "ff02::1",
    "2001:db8::1/129",
    "table",
    "main",
    "metric",
    "unicast",
    "blackhole",
    "local",
    "label",
    "txqueuelen",
    "frob",
    "exact",
    "é",
    "\u{2028}",
    "99999999999999999999999",
    "-9223372036854775809",
    "1:2:3:4:5:6:7:8:9:a:b:c:d:e:f:10:11:12:13:14:15:16:17:18:19:1a:1b:1c:1d:1e:1f:20:21",
    "10.0.0.1/255.255.0.255",
    "::ffff:1.2.3.4/96",
    "0x",
    "0/0",
];

#[test]
fn no_input_panics() {
    // A deterministic LCG (Knuth's MMIX constants): reproducible, no rand crate.
    let mut seed: u64 = 0x5eed_1234_abcd_ef01;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut persistent = fresh();
    let (mut succeeded, mut changed) = (0, 0);
    for round in 0..4000 {
        let mut line = String::new();
        for _ in 0..1 + next() % 3 {
            if next() % 4 == 0 {
                // Anything at all.
                for _ in 0..next() % 14 {
                    line.push_str(TOKENS[next() % TOKENS.len()]);
                    if next() % 4 != 0 {
                        line.push(' ');
                    }
                }
            } else {
                // Shaped like an ip command, so it gets past the parser.
                let pick = |list: &[&'static str], n: usize| list[n % list.len()];
                const DEVS: &[&str] = &["vde0", "vde0", "lo", "vde9"];
                const ADDRS: &[&str] = &[
                    "10.0.0.1/24",
                    "10.0.0.2/24",
                    "10.0.1.1/16",
                    "127.0.0.1/8",
                    "2001:db8::1/64",
                    "2001:db8::2",
                    "fe80::5/64",
                    "10.0.0.1",
                    "0.0.0.0",
                    "::1",
                ];
                const DSTS: &[&str] = &[
                    "default",
                    "10.1.0.0/16",
                    "10.0.0.0/24",
                    "2001:db8:1::/48",
                    "::/0",
                    "all",
                    "10.1.0.0",
                ];
                const GWS: &[&str] = &[
                    "10.0.0.254",
                    "10.0.1.9",
                    "2001:db8::fe",
                    "fe80::1",
                    "127.0.0.1",
                    "10.0.0.1",
                ];
                const MTUS: &[&str] = &["68", "1279", "1280", "1500", "9000", "100", "0"];
                line.push_str(pick(&["/bin/ip ", "/bin/ip -4 ", "/bin/ip -6 "], next()));
                match next() % 6 {
                    0 => {
                        line.push_str("link set ");
                        line.push_str(pick(DEVS, next()));
                        for _ in 0..1 + next() % 3 {
                            line.push(' ');
                            line.push_str(&match next() % 5 {
                                0 | 1 => "up".to_string(),
                                2 => "down".to_string(),
                                3 => format!("mtu {}", pick(MTUS, next())),
                                _ => format!("address 02:00:00:00:00:0{}", next() % 3),
                            });
                        }
                    }
                    1 | 2 => {
                        line.push_str(pick(&["addr add ", "addr del ", "addr add "], next()));
                        line.push_str(pick(ADDRS, next()));
                        if next() % 5 == 0 {
                            line.push_str(" brd +");
                        }
                        line.push_str(" dev ");
                        line.push_str(pick(DEVS, next()));
                    }
                    3 | 4 => {
                        line.push_str(pick(
                            &["route add ", "route del ", "route replace "],
                            next(),
                        ));
                        line.push_str(pick(DSTS, next()));
                        if next() % 3 != 0 {
                            line.push_str(" via ");
                            line.push_str(pick(GWS, next()));
                        }
                        if next() % 2 == 0 {
                            line.push_str(" dev ");
                            line.push_str(pick(DEVS, next()));
                        }
                    }
                    _ => line.push_str(pick(
                        &[
                            "addr flush dev vde0",
                            "route flush dev vde0",
                            "addr",
                            "route",
                            "link",
                            "route flush all",
                            "addr flush dev lo",
                        ],
                        next(),
                    )),
                }
                // Now and then a stray word.
                if next() % 8 == 0 {
                    line.push(' ');
                    line.push_str(TOKENS[next() % TOKENS.len()]);
                }
            }
            line.push(';');
        }
        let mut cfg = if round % 2 == 0 {
            fresh()
        } else {
            NetConfig::loopback_only()
        };
        for target in [&mut cfg, &mut persistent] {
            let before = target.generation();
            match target.run(&line) {
                Ok(_) => succeeded += 1,
                Err(e) => {
                    assert!(matches!(e.status(), 1 | 2 | 255), "{line:?}: {e:?}");
                    assert!(!e.message().is_empty(), "{line:?}");
                }
            }
            assert!(target.generation() >= before);
            changed += usize::from(target.generation() > before);
            check_invariants(target, &line);
            let _ = target.lookup(ip("10.0.0.9"));
            let _ = target.lookup(ip("2001:db8::9"));
            let _ = target.lookup(ip("127.0.0.1"));
        }
    }
    eprintln!("fuzz: {succeeded} runs succeeded, {changed} changed the model");
    // The alphabet must reach past the parser, or this test proves little.
    assert!(succeeded > 400 && changed > 100, "{succeeded} {changed}");
}

/// What must hold whatever was run.
fn check_invariants(cfg: &NetConfig, line: &str) {
    let own = |l: &Link, a: &IfAddr| {
        l.kind == LinkKind::Loopback
            && ((a.addr == ip("127.0.0.1") && a.prefix_len == 8)
                || (a.addr == ip("::1") && a.prefix_len == 128))
    };
    let counted: usize = cfg
        .links()
        .iter()
        .map(|l| l.addrs.iter().filter(|a| !own(l, a)).count())
        .sum();
    assert!(counted <= MAX_ADDRS, "{line:?}: {counted} addresses");
    for l in cfg.links() {
        // IPv4 first, then IPv6; IPv6 only on up links or as tentative ones.
        let first_v6 = l
            .addrs
            .iter()
            .position(|a| a.addr.is_ipv6())
            .unwrap_or(l.addrs.len());
        assert!(
            l.addrs[first_v6..].iter().all(|a| a.addr.is_ipv6()),
            "{line:?}"
        );
        if l.kind == LinkKind::Ether {
            assert!((68..=9000).contains(&l.mtu), "{line:?}");
        }
    }
    let routes = cfg.routes();
    let user = routes
        .iter()
        .filter(|r| r.proto == RouteProto::Boot)
        .count();
    assert!(user <= MAX_USER_ROUTES, "{line:?}");
    for r in &routes {
        let link = cfg
            .link_by_index(r.dev)
            .expect("route through a known link");
        assert!(link.up, "{line:?}: route through a down link: {r:?}");
        assert!(
            r.via.is_none_or(|v| v.is_ipv4() == r.dst.is_ipv4()),
            "{line:?}"
        );
    }
}

/// Flows share a multipath route by the nexthops' weights (Linux's
/// hash-threshold: each nexthop owns a share of the hash space as large as
/// its weight), the same hash always taking the same nexthop; a plain route
/// is not spread. IPv6 and IPv4 alike.
#[test]
fn multipath_flows_share_the_nexthops_by_weight() {
    let cases = [
        (
            "/bin/ip link set vde0 up; /bin/ip -6 route add 2001:db8:1::/48 \
             nexthop via fe80::1 dev vde0 weight 3 nexthop via fe80::2 dev vde0; \
             /bin/ip -6 route add 2001:db8:2::/48 via fe80::7 dev vde0",
            ["2001:db8:1::9", "fe80::2", "2001:db8:2::9", "fe80::7"],
        ),
        (
            "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
             /bin/ip route add 10.1.0.0/16 \
             nexthop via 10.0.0.5 weight 3 nexthop via 10.0.0.6; \
             /bin/ip route add 10.2.0.0/16 via 10.0.0.7",
            ["10.1.0.9", "10.0.0.6", "10.2.0.9", "10.0.0.7"],
        ),
    ];
    for (cmds, [multi, second, plain, gateway]) in cases {
        let mut cfg = fresh();
        ok(&mut cfg, cmds);
        let mut counts = [0; 2];
        for hash in 0..400 {
            let hop = cfg.lookup_flow(ip(multi), hash).unwrap();
            assert_eq!(Some(hop), cfg.lookup_flow(ip(multi), hash), "stable");
            counts[usize::from(hop.addr == ip(second))] += 1;
        }
        assert_eq!(counts, [300, 100], "{cmds}");
        for hash in 0..8 {
            let hop = cfg.lookup_flow(ip(plain), hash).unwrap();
            assert_eq!(hop.addr, ip(gateway));
        }
    }
}

/// The kernel's local table entries, once deleted, take their meaning with
/// them, as on Linux (checked on 6.18 with a tap: no ARP answer nor echo reply
/// for the address, IPv4 `bind()` EADDRNOTAVAIL, IPv6 `bind()` still fine, the
/// address still listed): the address is no longer local to lookups, an IPv4
/// one no longer bindable nor a valid preferred source, a deleted broadcast
/// entry no longer a broadcast; the link coming up again makes them anew.
/// Routes added to other tables are never looked up (no `ip rule` selects
/// them).
#[test]
fn deleted_local_entries_stop_being_local_and_other_tables_not_looked_up() {
    let mut cfg = fresh();
    ok(
        &mut cfg,
        "/bin/ip link set lo up; /bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
         /bin/ip addr add 10.0.0.2/24 dev vde0; /bin/ip -6 addr add fd00::1/64 dev vde0 nodad",
    );
    let before = cfg.run("/bin/ip route show table all").unwrap();
    assert!(cfg.is_local_addr(ip("10.0.0.1")));
    assert!(cfg.is_broadcast(ip("10.0.0.255")));
    ok(
        &mut cfg,
        "/bin/ip route del local 10.0.0.1 dev vde0 table local; \
         /bin/ip route del broadcast 10.0.0.255 dev vde0 table local; \
         /bin/ip -6 route del local fd00::1 dev vde0 table local",
    );
    assert!(!cfg.is_local_addr(ip("10.0.0.1")));
    assert!(cfg.is_local_addr(ip("10.0.0.2")));
    assert!(!cfg.is_broadcast(ip("10.0.0.255")));
    let hop = cfg.lookup(ip("10.0.0.1")).unwrap();
    assert!(!hop.local);
    assert_eq!(hop.dev, 2);
    // IPv6's bind() asks the address list: still bindable, but not local.
    assert!(cfg.is_local_addr(ip("fd00::1")));
    assert!(!cfg.lookup(ip("fd00::1")).unwrap().local);
    assert!(cfg
        .run("/bin/ip addr show dev vde0")
        .unwrap()
        .contains("10.0.0.1/24"));
    let e = cfg
        .run("/bin/ip route add 10.9.0.0/16 via 10.0.0.9 src 10.0.0.1")
        .unwrap_err();
    assert_eq!(e.message(), "Error: Invalid prefsrc address.");
    // Neither replace nor change brings them back; the link coming up does
    // (IPv4's: the IPv6 address went with the link).
    ok(&mut cfg, "/bin/ip addr replace 10.0.0.1/24 dev vde0");
    assert!(!cfg.is_local_addr(ip("10.0.0.1")));
    ok(
        &mut cfg,
        "/bin/ip link set vde0 down; /bin/ip link set vde0 up",
    );
    assert!(cfg.is_local_addr(ip("10.0.0.1")));
    assert!(cfg.is_broadcast(ip("10.0.0.255")));
    ok(&mut cfg, "/bin/ip -6 addr add fd00::1/64 dev vde0 nodad");
    assert_eq!(cfg.run("/bin/ip route show table all").unwrap(), before);
    ok(&mut cfg, "/bin/ip route flush table local");
    assert!(!cfg.is_local_addr(ip("127.0.0.1")));
    assert!(!cfg.is_local_addr(ip("10.0.0.2")));
    ok(
        &mut cfg,
        "/bin/ip route add 10.9.0.0/16 via 10.0.0.2 table 100",
    );
    assert_eq!(cfg.lookup(ip("10.9.1.1")), None);
    assert!(cfg.routes().iter().all(|r| r.table == MAIN_TABLE));
    assert!(cfg.all_routes().iter().any(|r| r.table == 100));
}
