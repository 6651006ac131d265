//! The steps of the commands that change the model, each tried on its own: the
//! parse step (words into a request, asking the model nothing but link names),
//! the check step (the request against the model, which it leaves as it was)
//! and the apply step (the change itself, which cannot fail).
//!
//! The expectations are those of the whole commands, which the transcripts and
//! the differential test hold against Linux; here they pin down which step
//! answers what.

use crate::cmd::config::RouteReq;
use crate::cmd::ip::{parse_route, parse_route_list, RouteSelector};
use crate::cmd::parse::Family;
use crate::cmd::{CmdError, NetConfig, Route, RouteProto};
use std::net::IpAddr;

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
    // The device is looked up before an unusable route type is refused.
    assert_eq!(
        parse(Family::Unspec, "blackhole 10.0.0.0/8 dev eth9"),
        (1, "Cannot find device \"eth9\"".to_string())
    );
    assert_eq!(
        parse(Family::Unspec, "blackhole 10.0.0.0/8"),
        (
            2,
            "Error: vdestack: the \"blackhole\" route type is not supported.".to_string()
        )
    );
    assert_eq!(
        parse(Family::Unspec, "10.0.0.0/8 via inet6 2001:db8::1"),
        (
            2,
            "Error: vdestack: a gateway of the other address family is not supported.".to_string()
        )
    );
    assert_eq!(
        parse(Family::Unspec, "10.0.0.0/8 metric 5"),
        (
            2,
            "Error: vdestack: \"ip route ... metric\" is not supported.".to_string()
        )
    );
}

// ---- ip route add|replace|del: check and apply ----

#[test]
fn route_add_check_returns_the_route_and_apply_adds_it() {
    let mut cfg = config(UP_10);
    let want = req("10.1.0.0", 16, Some("10.0.0.254"), None);
    let add = cfg.state().check_route_add(&want, false).unwrap();
    let route = Route {
        dst: ip("10.1.0.0"),
        prefix_len: 16,
        via: Some(ip("10.0.0.254")),
        dev: 2,
        proto: RouteProto::Boot,
        src: None,
    };
    assert_eq!((add.route, add.replaces), (route, None));
    assert!(!cfg.routes().contains(&route), "a check changes nothing");
    let generation = cfg.generation();
    cfg.change(|state| state.apply_route_add(add));
    assert!(cfg.routes().contains(&route));
    assert_eq!(cfg.generation(), generation + 1);

    // The same prefix again clashes, unless it replaces.
    assert_eq!(
        error(cfg.state().check_route_add(&want, false)),
        (2, "RTNETLINK answers: File exists".to_string())
    );
    let at = cfg.routes().iter().position(|r| *r == route);
    let replace = cfg.state().check_route_add(&want, true).unwrap();
    assert_eq!(replace.replaces, at);
}

#[test]
fn route_add_check_refuses_as_linux_does() {
    let up = config(UP_10);
    let check = |cfg: &NetConfig, r: RouteReq| error(cfg.state().check_route_add(&r, false));
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
    assert!(cfg.state().check_route_flush(false).is_err());
    // Host bits set: refused before Linux creates anything.
    cfg.change(|state| state.create_v4_table_for(&req("10.0.0.1", 8, None, Some(2))));
    assert_eq!(error(cfg.state().check_route_del(&wanted)), no_table);
    // vde0 is down, so the route is refused, but the table is there.
    assert!(cfg.state().check_route_add(&wanted, false).is_err());
    cfg.change(|state| state.create_v4_table_for(&wanted));
    assert_eq!(
        error(cfg.state().check_route_del(&wanted)),
        (2, "RTNETLINK answers: No such process".to_string())
    );
    assert_eq!(cfg.state().check_route_flush(false), Ok(()));
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
    assert_eq!(before[del.at].dst, ip("10.2.0.0"));
    assert_eq!(cfg.routes(), before, "a check changes nothing");
    cfg.change(|state| state.apply_route_del(del));
    let mut after = before.clone();
    after.remove(del.at);
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
        dev: None,
        exact: None,
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
            exact: Some((ip("10.0.0.0"), 24)),
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
            exact: Some((ip("::"), 0)),
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
    assert_eq!(
        error(parse(Family::Unspec, "table local", false)),
        (
            2,
            "Error: vdestack: table \"local\" is not supported.".to_string()
        )
    );
}

#[test]
fn route_selector_selects_by_every_field() {
    let route = |dst: &str, prefix_len, dev, proto| Route {
        dst: ip(dst),
        prefix_len,
        via: None,
        dev,
        proto,
        src: None,
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
    assert_eq!(by(RouteSelector { exact, ..all }), [true, false]);
    // Exact means the prefix length too.
    let wider = Some((ip("10.0.0.0"), 8));
    assert_eq!(
        by(RouteSelector {
            exact: wider,
            ..all
        }),
        [false, false]
    );
}

#[test]
fn route_flush_check_needs_the_table_and_apply_removes_the_selected() {
    let mut cfg = config("");
    assert_eq!(
        error(cfg.state().check_route_flush(false)),
        (
            2,
            "Error: ipv4: FIB table does not exist.\nFlush terminated".to_string()
        )
    );
    assert_eq!(cfg.state().check_route_flush(true), Ok(()));

    cfg = config(&format!(
        "{UP_10}; /bin/ip route add 10.1.0.0/16 via 10.0.0.254"
    ));
    assert_eq!(cfg.state().check_route_flush(false), Ok(()));
    let boot = RouteSelector {
        proto: Some(3),
        ..selector(false)
    };
    cfg.change(|state| state.flush_routes(|r| boot.selects(r)));
    assert!(cfg.routes().iter().all(|r| r.proto == RouteProto::Kernel));
    assert!(cfg.routes().iter().any(|r| r.dst == ip("10.0.0.0")));
}
