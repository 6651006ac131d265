//! The steps of the commands that change the model, each tried on its own: the
//! parse step (words into a request, asking the model nothing but link names),
//! the check step (the request against the model, which it leaves as it was)
//! and the apply step (the change itself, which cannot fail).
//!
//! The expectations are those of the whole commands, which the transcripts and
//! the differential test hold against Linux; here they pin down which step
//! answers what.

use crate::cmd::config::{
    AddrChange, AddrReq, RouteMode, RoutePlace, RouteReq, V4Slot, MAIN_TABLE,
};
use crate::cmd::ip::{
    addr_request, parse_addr, parse_route, parse_route_list, AddrArgs, Brd, RouteSelector,
};
use crate::cmd::parse::{Family, Parsed};
use crate::cmd::{CmdError, IfAddr, NetConfig, Route, RouteProto, RouteType, MAX_ADDRS};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// The link names of a fresh configuration, as a parse step sees them.
fn links(name: &str) -> Option<u32> {
    match name {
        "lo" => Some(1),
        "vde0" => Some(2),
        _ => None,
    }
}

/// For parse steps that must not look a link up.
fn no_lookup(name: &str) -> Option<u32> {
    panic!("looked up {name:?}")
}

fn error<T: std::fmt::Debug>(result: Result<T, CmdError>) -> (i32, String) {
    let e = result.expect_err("an error");
    (e.status(), e.message().to_string())
}

/// A configuration after these commands (each must succeed).
fn config(cmds: &str) -> NetConfig {
    let mut cfg = NetConfig::new("vde0", MAC);
    cfg.run(cmds)
        .unwrap_or_else(|e| panic!("{cmds:?}: {}", e.message()));
    cfg
}

const UP_10: &str = "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0";

fn req(dst: &str, prefix_len: u8, via: Option<&str>, dev: Option<u32>) -> RouteReq {
    RouteReq {
        dst: ip(dst),
        prefix_len,
        via: via.map(ip),
        dev,
        src: None,
        metric: None,
        kind: RouteType::Unicast,
        more_nexthops: Vec::new(),
        weight: 1,
        expires: None,
        universe: false,
        table: MAIN_TABLE,
        proto: None,
    }
}

// ---- ip route add|replace|del: parse ----

#[test]
fn route_parse_reads_a_whole_request() {
    let r = parse_route(
        links,
        Family::Unspec,
        &words("10.1.0.0/16 via 10.0.0.254 dev vde0 src 10.0.0.1"),
    );
    assert_eq!(
        r.unwrap(),
        RouteReq {
            src: Some(ip("10.0.0.1")),
            ..req("10.1.0.0", 16, Some("10.0.0.254"), Some(2))
        }
    );
    // A host route without a length; `default` takes the gateway's family.
    let host = parse_route(no_lookup, Family::Unspec, &words("to 2001:db8::1"));
    assert_eq!(host.unwrap(), req("2001:db8::1", 128, None, None));
    let default = parse_route(
        links,
        Family::Unspec,
        &words("default via fe80::1 dev vde0"),
    );
    assert_eq!(default.unwrap(), req("::", 0, Some("fe80::1"), Some(2)));
    // Host bits are the kernel's business, not the parser's.
    let bits = parse_route(no_lookup, Family::Inet, &words("10.0.0.1/8"));
    assert_eq!(bits.unwrap(), req("10.0.0.1", 8, None, None));
}

#[test]
fn route_parse_errors_come_in_iproute2_order() {
    let parse = |family, line: &str| error(parse_route(links, family, &words(line)));
    assert_eq!(parse(Family::Unspec, "").0, 255);
    assert!(parse(Family::Unspec, "dev vde0")
        .1
        .starts_with("Usage: ip route"));
    assert_eq!(
        parse(Family::Unspec, "10.0.0.0/8 via 10.0.0.1 via 10.0.0.2"),
        (
            255,
            "Error: argument \"via\" is wrong: use nexthop syntax to specify multiple via"
                .to_string()
        )
    );
    assert_eq!(
        parse(Family::Unspec, "10.0.0.0/8 metric"),
        (
            255,
            "Command line is not complete. Try option \"help\"".to_string()
        )
    );
    // The device is looked up before a route type is refused (IPv4 `nat`:
    // Linux's "Invalid scope.").
    assert_eq!(
        parse(Family::Unspec, "nat 10.0.0.0/8 dev eth9"),
        (1, "Cannot find device \"eth9\"".to_string())
    );
    assert_eq!(
        parse(Family::Unspec, "nat 10.0.0.0/8"),
        (2, "Error: Invalid scope.".to_string())
    );
    assert_eq!(
        parse(Family::Unspec, "10.0.0.0/8 metric -1"),
        (
            255,
            "Error: argument \"-1\" is wrong: \"metric\" value is invalid".to_string()
        )
    );
}

#[test]
fn route_parse_reads_metrics_the_last_one_winning() {
    let r = parse_route(
        no_lookup,
        Family::Unspec,
        &words("10.1.0.0/16 via 10.0.0.254 metric 5 priority 0x10"),
    );
    assert_eq!(
        r.unwrap(),
        RouteReq {
            metric: Some(16),
            ..req("10.1.0.0", 16, Some("10.0.0.254"), None)
        }
    );
}

// ---- ip route add|replace|del: check and apply ----

#[test]
fn route_add_check_returns_the_route_and_apply_adds_it() {
    let mut cfg = config(UP_10);
    let want = req("10.1.0.0", 16, Some("10.0.0.254"), None);
    let add = cfg.state().check_route_add(&want, RouteMode::Add).unwrap();
    let route = Route {
        kind: RouteType::Unicast,
        dst: ip("10.1.0.0"),
        prefix_len: 16,
        via: Some(ip("10.0.0.254")),
        dev: 2,
        proto: RouteProto::Boot,
        src: None,
        metric: 0,
        weight: 1,
        group: 0,
        universe: false,
        table: MAIN_TABLE,
    };
    assert_eq!((add.route, add.place), (route, RoutePlace::Sorted));
    assert!(!cfg.routes().contains(&route), "a check changes nothing");
    let generation = cfg.generation();
    cfg.change(|state| state.apply_route_add(add));
    assert!(cfg.routes().contains(&route));
    assert_eq!(cfg.generation(), generation + 1);

    // The same prefix again clashes, unless it replaces.
    assert_eq!(
        error(cfg.state().check_route_add(&want, RouteMode::Add)),
        (2, "RTNETLINK answers: File exists".to_string())
    );
    let at = cfg.routes().iter().position(|r| *r == route);
    let replace = cfg
        .state()
        .check_route_add(&want, RouteMode::Replace)
        .unwrap();
    assert_eq!(Some(replace.place), at.map(RoutePlace::Replaces));
}

#[test]
fn route_modes_place_a_route_beside_those_of_the_same_prefix_and_metric() {
    let cfg = config(&format!(
        "{UP_10}; /bin/ip route add 10.1.0.0/16 via 10.0.0.254 metric 5; \
         /bin/ip route append 10.1.0.0/16 via 10.0.0.253 metric 5"
    ));
    let at = |via: &str| {
        cfg.routes()
            .iter()
            .position(|r| r.via == Some(ip(via)))
            .unwrap()
    };
    let (first, second) = (at("10.0.0.254"), at("10.0.0.253"));
    assert_eq!(second, first + 1);
    let want = |via: &str, metric| RouteReq {
        metric: Some(metric),
        ..req("10.1.0.0", 16, Some(via), None)
    };
    let place = |r: RouteReq, mode| cfg.state().check_route_add(&r, mode).map(|a| a.place);
    let exists = (2, "RTNETLINK answers: File exists".to_string());
    assert_eq!(error(place(want("10.0.0.9", 5), RouteMode::Add)), exists);
    assert_eq!(
        place(want("10.0.0.9", 5), RouteMode::Prepend),
        Ok(RoutePlace::At(first))
    );
    assert_eq!(
        place(want("10.0.0.9", 5), RouteMode::Append),
        Ok(RoutePlace::At(second + 1))
    );
    assert_eq!(
        place(want("10.0.0.9", 5), RouteMode::Change),
        Ok(RoutePlace::Replaces(first))
    );
    // The same nexthop again, unless it is the one a replace would overwrite.
    assert_eq!(
        error(place(want("10.0.0.253", 5), RouteMode::Append)),
        exists
    );
    assert_eq!(
        error(place(want("10.0.0.253", 5), RouteMode::Replace)),
        exists
    );
    assert_eq!(
        place(want("10.0.0.254", 5), RouteMode::Replace),
        Ok(RoutePlace::Replaces(first))
    );
    // Another metric is another slot.
    assert_eq!(
        place(want("10.0.0.9", 6), RouteMode::Add),
        Ok(RoutePlace::Sorted)
    );
    assert_eq!(
        error(place(want("10.0.0.9", 6), RouteMode::Change)),
        (
            2,
            "RTNETLINK answers: No such file or directory".to_string()
        )
    );
    assert_eq!(
        error(place(want("10.0.0.9", 6), RouteMode::Test)),
        (
            2,
            "RTNETLINK answers: No such file or directory".to_string()
        )
    );
}

#[test]
fn lookups_take_the_lowest_metric() {
    let cfg = config(&format!(
        "{UP_10}; /bin/ip route add default via 10.0.0.254 metric 20; \
         /bin/ip route add default via 10.0.0.253 metric 10; \
         /bin/ip route prepend default via 10.0.0.252 metric 20"
    ));
    let hop = cfg.lookup(ip("192.0.2.1")).unwrap();
    assert_eq!(hop.addr, ip("10.0.0.253"));
}

#[test]
fn route_add_check_refuses_as_linux_does() {
    let up = config(UP_10);
    let check =
        |cfg: &NetConfig, r: RouteReq| error(cfg.state().check_route_add(&r, RouteMode::Add));
    assert_eq!(
        check(&up, req("10.0.0.1", 8, None, Some(2))),
        (
            2,
            "Error: Invalid prefix for given prefix length.".to_string()
        )
    );
    assert_eq!(
        check(&up, req("10.1.0.0", 16, Some("10.9.9.9"), None)),
        (2, "Error: Nexthop has invalid gateway.".to_string())
    );
    assert_eq!(
        check(&up, req("10.1.0.0", 16, None, None)),
        (2, "RTNETLINK answers: No such device".to_string())
    );
    let down = config("");
    assert_eq!(
        check(&down, req("10.0.0.0", 8, None, Some(2))),
        (2, "Error: Device for nexthop is not up.".to_string())
    );
    assert_eq!(
        check(&down, req("2001:db8::", 64, None, Some(2))),
        (2, "Error: Nexthop device is not up.".to_string())
    );
}

#[test]
fn a_refused_ipv4_route_still_creates_the_table() {
    let mut cfg = config("");
    let no_table = (2, "Error: FIB table does not exist.".to_string());
    let wanted = req("10.0.0.0", 8, None, Some(2));
    assert_eq!(error(cfg.state().check_route_del(&wanted)), no_table);
    assert!(cfg
        .state()
        .check_route_dump(false, Some(MAIN_TABLE), true)
        .is_err());
    // Host bits set: refused before Linux creates anything.
    cfg.change(|state| state.create_table_for(&req("10.0.0.1", 8, None, Some(2))));
    assert_eq!(error(cfg.state().check_route_del(&wanted)), no_table);
    // vde0 is down, so the route is refused, but the table is there.
    assert!(cfg
        .state()
        .check_route_add(&wanted, RouteMode::Add)
        .is_err());
    cfg.change(|state| state.create_table_for(&wanted));
    assert_eq!(
        error(cfg.state().check_route_del(&wanted)),
        (2, "RTNETLINK answers: No such process".to_string())
    );
    assert_eq!(
        cfg.state().check_route_dump(false, Some(MAIN_TABLE), true),
        Ok(())
    );
    assert!(cfg.routes().is_empty());
}

#[test]
fn route_del_check_finds_the_route_and_apply_removes_it() {
    let mut cfg = config(&format!(
        "{UP_10}; /bin/ip route add 10.1.0.0/16 via 10.0.0.254; /bin/ip route add 10.2.0.0/16 via 10.0.0.254"
    ));
    let before = cfg.routes();
    let del = cfg
        .state()
        .check_route_del(&req("10.2.0.0", 16, None, Some(2)))
        .unwrap();
    assert_eq!(del.at.len(), 1);
    assert_eq!(before[del.at[0]].dst, ip("10.2.0.0"));
    assert_eq!(cfg.routes(), before, "a check changes nothing");
    let at = del.at[0];
    cfg.change(|state| state.apply_route_del(del));
    let mut after = before.clone();
    after.remove(at);
    assert_eq!(cfg.routes(), after);
    // What was given must match: another gateway, another link.
    for miss in [
        req("10.1.0.0", 16, Some("10.0.0.253"), None),
        req("10.1.0.0", 16, None, Some(1)),
    ] {
        assert_eq!(
            error(cfg.state().check_route_del(&miss)),
            (2, "RTNETLINK answers: No such process".to_string())
        );
    }
    // IPv6's null entry at ::/0 answers ENOENT.
    assert_eq!(
        error(cfg.state().check_route_del(&req("::", 0, None, None))),
        (
            2,
            "RTNETLINK answers: No such file or directory".to_string()
        )
    );
}

// ---- ip route show|flush ----

fn selector(ipv6: bool) -> RouteSelector {
    RouteSelector {
        ipv6,
        both_families: false,
        table: Some(MAIN_TABLE),
        dev: None,
        root: None,
        covers: None,
        metric: None,
        proto: None,
    }
}

#[test]
fn route_list_parse_reads_selectors() {
    let parse = |family, line: &str, flush| parse_route_list(links, family, &words(line), flush);
    assert_eq!(parse(Family::Unspec, "", false), Ok(Some(selector(false))));
    assert_eq!(
        parse(
            Family::Unspec,
            "table main dev vde0 proto kernel metric 0 exact 10.0.0.0/24",
            true
        ),
        Ok(Some(RouteSelector {
            dev: Some(2),
            root: Some((ip("10.0.0.0"), 24)),
            covers: Some((ip("10.0.0.0"), 24)),
            metric: Some(0),
            proto: Some(2),
            ..selector(false)
        }))
    );
    // "all" selects everything, or a chosen family's default routes.
    assert_eq!(
        parse(Family::Unspec, "all", false),
        Ok(Some(selector(false)))
    );
    assert_eq!(
        parse(Family::Inet6, "all", false),
        Ok(Some(RouteSelector {
            root: Some((ip("::"), 0)),
            covers: Some((ip("::"), 0)),
            ..selector(true)
        }))
    );
    // Nothing to select: the routing cache, a family without routes; the device
    // is still looked up first.
    assert_eq!(parse(Family::Unspec, "cached", true), Ok(None));
    assert_eq!(parse(Family::Packet, "dev vde0", false), Ok(None));
    assert_eq!(
        error(parse(Family::Packet, "dev eth9", false)),
        (1, "Cannot find device \"eth9\"".to_string())
    );
    assert_eq!(
        error(parse(Family::Unspec, "", true)),
        (1, "\"ip route flush\" requires arguments.".to_string())
    );
    assert_eq!(
        error(parse(Family::Unspec, "protocol 256", false)),
        (
            255,
            "Error: argument \"256\" is wrong: invalid \"protocol\"".to_string()
        )
    );
    // Tables by name or number; `all` (and 0) every table, both families
    // unless one was chosen.
    let table = |family, line: &str| parse(family, line, false).map(|s| s.map(|s| s.table));
    assert_eq!(table(Family::Unspec, "table local"), Ok(Some(Some(255))));
    assert_eq!(table(Family::Unspec, "table default"), Ok(Some(Some(253))));
    assert_eq!(table(Family::Unspec, "table 1000"), Ok(Some(Some(1000))));
    assert_eq!(table(Family::Unspec, "table 0"), Ok(Some(None)));
    assert_eq!(
        parse(Family::Unspec, "table all", false),
        Ok(Some(RouteSelector {
            both_families: true,
            table: None,
            ..selector(false)
        }))
    );
    assert_eq!(
        parse(Family::Inet6, "table all", false),
        Ok(Some(RouteSelector {
            table: None,
            ..selector(true)
        }))
    );
    assert_eq!(
        error(parse(Family::Unspec, "table foo", false)),
        (
            255,
            "Error: argument \"foo\" is wrong: table id value is invalid".to_string()
        )
    );
}

#[test]
fn route_selector_selects_by_every_field() {
    let route = |dst: &str, prefix_len, dev, proto| Route {
        kind: RouteType::Unicast,
        dst: ip(dst),
        prefix_len,
        via: None,
        dev,
        proto,
        src: None,
        metric: 0,
        weight: 1,
        group: 0,
        universe: false,
        table: MAIN_TABLE,
    };
    let kernel = route("10.0.0.0", 24, 2, RouteProto::Kernel);
    let added = route("10.1.0.0", 16, 1, RouteProto::Boot);
    let v6 = route("2001:db8::", 64, 2, RouteProto::Kernel);
    let all = selector(false);
    assert!(all.selects(&kernel) && all.selects(&added) && !all.selects(&v6));
    assert!(selector(true).selects(&v6));
    let by = |s: RouteSelector| [kernel, added].map(|r| s.selects(&r));
    assert_eq!(
        by(RouteSelector {
            dev: Some(1),
            ..all
        }),
        [false, true]
    );
    assert_eq!(
        by(RouteSelector {
            proto: Some(2),
            ..all
        }),
        [true, false]
    );
    assert_eq!(
        by(RouteSelector {
            proto: Some(4),
            ..all
        }),
        [false, false]
    );
    assert_eq!(
        by(RouteSelector {
            metric: Some(0),
            ..all
        }),
        [true, true]
    );
    let exact = Some((ip("10.0.0.0"), 24));
    assert_eq!(
        by(RouteSelector {
            root: exact,
            covers: exact,
            ..all
        }),
        [true, false]
    );
    // Exact means the prefix length too.
    let wider = Some((ip("10.0.0.0"), 8));
    assert_eq!(
        by(RouteSelector {
            root: wider,
            covers: wider,
            ..all
        }),
        [false, false]
    );
}

#[test]
fn route_flush_check_needs_the_table_and_apply_removes_the_selected() {
    let mut cfg = config("");
    assert_eq!(
        error(cfg.state().check_route_dump(false, Some(MAIN_TABLE), true)),
        (
            2,
            "Error: ipv4: FIB table does not exist.\nFlush terminated".to_string()
        )
    );
    assert_eq!(
        cfg.state().check_route_dump(true, Some(MAIN_TABLE), true),
        Ok(())
    );

    cfg = config(&format!(
        "{UP_10}; /bin/ip route add 10.1.0.0/16 via 10.0.0.254"
    ));
    assert_eq!(
        cfg.state().check_route_dump(false, Some(MAIN_TABLE), true),
        Ok(())
    );
    let boot = RouteSelector {
        proto: Some(3),
        ..selector(false)
    };
    cfg.change(|state| state.flush_routes(|r| boot.selects(r)));
    assert!(cfg.routes().iter().all(|r| r.proto == RouteProto::Kernel));
    assert!(cfg.routes().iter().any(|r| r.dst == ip("10.0.0.0")));
}

// ---- ip addr add|del: parse ----

fn prefix(addr: &str, prefix_len: Option<u8>) -> Option<Parsed> {
    Some(Parsed::Addr {
        addr: ip(addr),
        prefix_len,
    })
}

/// Parses `ip addr add` (or `del`) words; returns the request and the warnings.
fn parse_addr_words(line: &str, delete: bool) -> (Result<AddrArgs, CmdError>, String) {
    let mut warnings = String::new();
    let args = parse_addr(links, Family::Unspec, &words(line), delete, &mut warnings);
    (args, warnings)
}

#[test]
fn addr_parse_reads_a_whole_request() {
    let (args, warnings) = parse_addr_words("10.0.0.1/24 brd + dev vde0", false);
    assert_eq!(
        args.unwrap(),
        AddrArgs {
            dev: 2,
            family: Family::Inet,
            local: prefix("10.0.0.1", Some(24)),
            zero_length: false,
            brd: Some(Brd::Plus),
            label: None,
            lifetimes: None,
            mngtmpaddr: false,
            nodad: false,
            attrs: Default::default(),
        }
    );
    assert_eq!(warnings, "");
    // `any` is a zero-length address: it leaves the family open.
    let (args, _) = parse_addr_words("any dev lo", true);
    let args = args.unwrap();
    assert_eq!(
        (args.dev, args.family, args.local, args.zero_length),
        (1, Family::Unspec, Some(Parsed::Any), true)
    );
}

#[test]
fn addr_parse_collects_iproute2_warnings() {
    let (args, warnings) = parse_addr_words("10.0.0.1/24 dev vde0 permanent nodad", false);
    assert!(args.is_ok());
    assert_eq!(
        warnings,
        "Warning: permanent option is not mutable from userspace\n\
         Warning: nodad option can be set only for IPv6 addresses\n"
    );
    // An IPv4 address without a length, deleted: iproute2's wildcard deletion.
    let (args, warnings) = parse_addr_words("10.0.0.1 dev vde0", true);
    assert_eq!(args.unwrap().local, prefix("10.0.0.1", None));
    assert!(warnings.starts_with("Warning: Executing wildcard deletion"));
    assert!(warnings.contains("(10.0.0.1/32)"));
    let (_, warnings) = parse_addr_words("10.0.0.1 dev vde0", false);
    assert_eq!(warnings, "");
}

#[test]
fn addr_parse_errors_come_in_iproute2_order() {
    let parse = |line: &str, delete| error(parse_addr_words(line, delete).0);
    // No device: nothing is looked up.
    let mut warnings = String::new();
    let no_dev = parse_addr(
        no_lookup,
        Family::Unspec,
        &words("10.0.0.1/24"),
        false,
        &mut warnings,
    );
    assert_eq!(
        error(no_dev),
        (
            1,
            "Not enough information: \"dev\" argument is required.".to_string()
        )
    );
    assert_eq!(
        parse("2001:db8::1/64 brd + dev vde0", false),
        (
            1,
            "Broadcast can be set only for IPv4 addresses".to_string()
        )
    );
    let (del, _) = parse_addr_words("2001:db8::1/64 brd + dev vde0", true);
    assert!(del.is_ok(), "ip addr del does not check brd");
    assert_eq!(
        parse("10.0.0.1/24 10.0.0.2/24 dev vde0", false),
        (
            255,
            "Error: either \"local\" is duplicate, or \"10.0.0.2/24\" is a garbage.".to_string()
        )
    );
    // The device is looked up before an unusable keyword is refused.
    assert_eq!(
        parse("10.0.0.1/24 dev eth9 peer 10.0.0.2", false),
        (1, "Cannot find device \"eth9\"".to_string())
    );
    assert_eq!(
        parse("10.0.0.1/24 dev vde0 peer 10.0.0.2", false),
        (
            2,
            "Error: vdestack: \"ip address ... peer\" is not supported.".to_string()
        )
    );
}

// ---- ip addr add|del: the request's own check ----

fn addr_args(family: Family, local: Option<Parsed>, brd: Option<Brd>) -> AddrArgs {
    AddrArgs {
        dev: 2,
        family,
        local,
        zero_length: false,
        brd,
        label: None,
        lifetimes: None,
        mngtmpaddr: false,
        nodad: false,
        attrs: Default::default(),
    }
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn addr_request_refuses_what_the_kernel_refuses_unseen() {
    let request = |args: AddrArgs, delete| error(addr_request(&args, delete));
    assert_eq!(
        request(addr_args(Family::Unspec, None, None), false),
        (2, "RTNETLINK answers: Operation not supported".to_string())
    );
    let zero = AddrArgs {
        zero_length: true,
        ..addr_args(Family::Inet, Some(Parsed::Any), None)
    };
    assert_eq!(
        request(zero, true),
        (2, "Error: Attribute failed policy validation.".to_string())
    );
    assert_eq!(
        request(addr_args(Family::Inet, None, None), false),
        (2, "Error: ipv4: Local address is not supplied.".to_string())
    );
    assert_eq!(
        request(addr_args(Family::Inet6, None, None), true),
        (2, "RTNETLINK answers: Invalid argument".to_string())
    );
}

#[test]
fn addr_request_speaks_the_models_terms() {
    let request = |args: AddrArgs, delete| addr_request(&args, delete).unwrap();
    let add_v4 = |len, brd| {
        let local = prefix("10.0.0.1", len);
        request(addr_args(Family::Inet, local, brd), false)
    };
    let added = |prefix_len, brd: Option<&str>| AddrReq::AddV4 {
        dev: 2,
        addr: v4("10.0.0.1"),
        prefix_len,
        brd: brd.map(v4),
        attrs: Default::default(),
    };
    assert_eq!(
        add_v4(Some(24), Some(Brd::Plus)),
        added(24, Some("10.0.0.255"))
    );
    assert_eq!(
        add_v4(Some(24), Some(Brd::Minus)),
        added(24, Some("10.0.0.0"))
    );
    assert_eq!(add_v4(Some(31), Some(Brd::Plus)), added(31, None));
    assert_eq!(add_v4(None, None), added(32, None));
    let brd = Some(Brd::Addr(ip("10.0.0.127")));
    assert_eq!(add_v4(Some(24), brd), added(24, Some("10.0.0.127")));
    // Deleting without a length: a wildcard for IPv4, /128 for IPv6; without an
    // address, the first IPv4 one.
    assert_eq!(
        request(
            addr_args(Family::Inet, prefix("10.0.0.1", None), None),
            true
        ),
        AddrReq::DelV4 {
            dev: 2,
            addr: v4("10.0.0.1"),
            prefix_len: None
        }
    );
    assert_eq!(
        request(
            addr_args(Family::Inet6, prefix("2001:db8::1", None), None),
            true
        ),
        AddrReq::DelV6 {
            dev: 2,
            addr: "2001:db8::1".parse().unwrap(),
            prefix_len: 128,
        }
    );
    assert_eq!(
        request(addr_args(Family::Inet, None, None), true),
        AddrReq::DelFirstV4 { dev: 2 }
    );
    // `default` once the family is known: the all-zero address, which adds nothing.
    assert_eq!(
        request(addr_args(Family::Inet, Some(Parsed::Default), None), false),
        AddrReq::AddV4 {
            dev: 2,
            addr: Ipv4Addr::UNSPECIFIED,
            prefix_len: 0,
            brd: None,
            attrs: Default::default(),
        }
    );
}

// ---- ip addr add|del: check and apply ----

fn add_v4(dev: u32, addr: &str, prefix_len: u8) -> AddrReq {
    AddrReq::AddV4 {
        dev,
        addr: v4(addr),
        prefix_len,
        brd: None,
        attrs: Default::default(),
    }
}

fn if_addr(addr: &str, prefix_len: u8) -> IfAddr {
    IfAddr {
        addr: ip(addr),
        prefix_len,
    }
}

#[test]
fn addr_add_check_places_the_address_and_apply_adds_it() {
    let mut cfg = config(UP_10);
    let change = cfg.state().check_addr(&add_v4(2, "10.0.0.2", 24)).unwrap();
    let secondary = V4Slot {
        at: 1,
        primary: false,
    };
    assert_eq!(
        change,
        AddrChange::AddV4 {
            dev: 2,
            addr: if_addr("10.0.0.2", 24),
            slot: secondary,
            brd: None,
            attrs: Default::default(),
        }
    );
    assert_eq!(cfg.link_by_index(2).unwrap().addrs.len(), 2, "unchanged");
    cfg.change(|state| state.apply_addr(change));
    let vde0 = cfg.link_by_index(2).unwrap();
    assert_eq!(
        &vde0.addrs[..2],
        &[if_addr("10.0.0.1", 24), if_addr("10.0.0.2", 24)]
    );
    assert!(cfg.state().is_secondary(2, 1));

    // A primary of another prefix gets its connected route on the up link.
    let change = cfg.state().check_addr(&add_v4(2, "10.9.0.1", 16)).unwrap();
    cfg.change(|state| state.apply_addr(change));
    assert!(cfg
        .routes()
        .iter()
        .any(|r| r.dst == ip("10.9.0.0") && r.src == Some(ip("10.9.0.1"))));

    let v6 = AddrReq::AddV6 {
        dev: 2,
        addr: "2001:db8::1".parse().unwrap(),
        prefix_len: 64,
        attrs: Default::default(),
    };
    let change = cfg.state().check_addr(&v6).unwrap();
    assert_eq!(
        change,
        AddrChange::AddV6 {
            dev: 2,
            addr: if_addr("2001:db8::1", 64),
            attrs: Default::default(),
        }
    );
    cfg.change(|state| state.apply_addr(change));
    assert!(cfg.routes().iter().any(|r| r.dst == ip("2001:db8::")));
}

#[test]
fn addr_add_check_refuses_as_linux_does() {
    let cfg = config(UP_10);
    let check = |cfg: &NetConfig, req| error(cfg.state().check_addr(&req));
    assert_eq!(
        check(&cfg, add_v4(2, "10.0.0.1", 24)),
        (2, "Error: ipv4: Address already assigned.".to_string())
    );
    // 127.0.0.2 has host scope, its would-be primary 10.0.0.1 global scope.
    assert_eq!(
        check(
            &config("/bin/ip addr add 10.0.0.1/1 dev vde0"),
            add_v4(2, "127.0.0.2", 1)
        ),
        (2, "Error: ipv4: Invalid scope value.".to_string())
    );
    assert_eq!(
        check(
            &cfg,
            AddrReq::AddV6 {
                dev: 2,
                addr: Ipv6Addr::LOCALHOST,
                prefix_len: 128,
                attrs: Default::default(),
            }
        ),
        (
            2,
            "Error: ipv6: Cannot assign loopback address on this device.".to_string()
        )
    );
    let small_lo = config("/bin/ip link set lo mtu 60");
    assert_eq!(
        check(&small_lo, add_v4(1, "127.0.0.1", 8)),
        (
            2,
            "RTNETLINK answers: No buffer space available".to_string()
        )
    );
    let full = config(
        &(1..=MAX_ADDRS)
            .map(|i| format!("/bin/ip addr add 10.{i}.0.1/24 dev vde0"))
            .collect::<Vec<_>>()
            .join("; "),
    );
    assert_eq!(
        check(&full, add_v4(2, "10.0.0.1", 24)),
        (
            2,
            format!("Error: vdestack: too many addresses (limit {MAX_ADDRS}).")
        )
    );
    // 0.0.0.0 is accepted and changes nothing, even on a full table.
    let mut full = full;
    let change = full.state().check_addr(&add_v4(2, "0.0.0.0", 8));
    assert_eq!(change, Ok(AddrChange::Nothing));
    let generation = full.generation();
    full.change(|state| state.apply_addr(AddrChange::Nothing));
    assert_eq!(full.generation(), generation);
}

#[test]
fn addr_del_check_finds_the_address_and_apply_removes_it() {
    let mut cfg = config(&format!("{UP_10}; /bin/ip addr add 10.0.0.2/24 dev vde0"));
    let wildcard = AddrReq::DelV4 {
        dev: 2,
        addr: v4("10.0.0.1"),
        prefix_len: None,
    };
    let change = cfg.state().check_addr(&wildcard).unwrap();
    assert_eq!(change, AddrChange::RemoveV4 { dev: 2, at: 0 });
    cfg.change(|state| state.apply_addr(change));
    // The primary took its secondary and its route along.
    let vde0 = cfg.link_by_index(2).unwrap();
    assert!(vde0.addrs.iter().all(|a| a.addr.is_ipv6()));
    assert!(cfg.routes().iter().all(|r| r.dst.is_ipv6()));

    let check = |req| error(cfg.state().check_addr(&req));
    assert_eq!(
        check(AddrReq::DelFirstV4 { dev: 2 }),
        (2, "Error: ipv4: Address not found.".to_string())
    );
    assert_eq!(
        check(AddrReq::DelV6 {
            dev: 2,
            addr: "2001:db8::1".parse().unwrap(),
            prefix_len: 128,
        }),
        (2, "Error: ipv6: address not found.".to_string())
    );
    // The link-local address IPv6 gave the up link goes like any other.
    let ll = "fe80::11:22ff:fe33:4455".parse().unwrap();
    let change = cfg
        .state()
        .check_addr(&AddrReq::DelV6 {
            dev: 2,
            addr: ll,
            prefix_len: 64,
        })
        .unwrap();
    cfg.change(|state| state.apply_addr(change));
    assert!(cfg.link_by_index(2).unwrap().addrs.is_empty());
}
