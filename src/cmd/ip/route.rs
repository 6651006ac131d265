//! `ip route`: `add|replace|change|prepend|append|test|del` and `show|flush`,
//! each in three steps:
//! [`parse_route`] or [`parse_route_list`] reads the words, the model's
//! `check_route_*` methods check the request, its `apply_route_*` methods (and
//! `flush_routes`) apply it. `ip route get` is `route_get`'s.

use super::{
    cannot_find, duparg2, get_addr, get_prefix, invarg, matches, pick, refuse, unknown_command,
    unsupported, usage, zero, Args, Cmd, Exact, Match, Prefix, ROUTE_USAGE,
};
use crate::cmd::config::{
    in_prefix, kernel, route_order, Route, RouteMode, RouteProto, RouteReq, RouteType, State,
    DEFAULT_TABLE, LOCAL_TABLE, MAIN_TABLE,
};
use crate::cmd::error::CmdError;
use crate::cmd::parse::{self, Family, Parsed};
use crate::cmd::show;
use std::net::IpAddr;

const ROUTE_CMDS: &[(&str, Match, Cmd)] = &[
    ("add", Prefix, Cmd::Route(RouteMode::Add)),
    ("change", Prefix, Cmd::Route(RouteMode::Change)),
    ("chg", Exact, Cmd::Route(RouteMode::Change)),
    ("replace", Prefix, Cmd::Route(RouteMode::Replace)),
    ("prepend", Prefix, Cmd::Route(RouteMode::Prepend)),
    ("append", Prefix, Cmd::Route(RouteMode::Append)),
    ("test", Prefix, Cmd::Route(RouteMode::Test)),
    ("delete", Prefix, Cmd::Delete),
    ("list", Prefix, Cmd::Show),
    ("show", Prefix, Cmd::Show),
    ("lst", Prefix, Cmd::Show),
    ("get", Prefix, Cmd::Get),
    ("flush", Prefix, Cmd::Flush),
    ("save", Prefix, Cmd::Unsupported),
    ("restore", Prefix, Cmd::Unsupported),
    ("showdump", Prefix, Cmd::Unsupported),
    ("help", Prefix, Cmd::Help),
];

pub(super) fn route(
    state: &mut State,
    family: Family,
    words: &[String],
    json: bool,
    oneline: bool,
) -> Result<String, CmdError> {
    let style = ListStyle { json, oneline };
    let Some(cmd) = words.first() else {
        return route_list(state, family, &[], false, style);
    };
    let rest = &words[1..];
    match pick(cmd, ROUTE_CMDS) {
        Some((_, Cmd::Route(mode))) => route_add(state, family, rest, mode),
        Some((_, Cmd::Delete)) => route_del(state, family, rest),
        Some((_, Cmd::Show)) => route_list(state, family, rest, false, style),
        Some((_, Cmd::Flush)) => route_list(state, family, rest, true, style),
        Some((_, Cmd::Get)) => {
            let style = super::route_get::GetStyle { json, oneline };
            super::route_get::route_get(state, family, rest, style)
        }
        Some((_, Cmd::Help)) => Err(usage(ROUTE_USAGE)),
        Some((name, _)) => Err(unsupported(&format!("\"ip route {name}\""))),
        None => Err(unknown_command(cmd, "route")),
    }
}

/// `ip route add|replace|change|prepend|append|test [to] PREFIX [via GW]
/// [dev DEV] [src ADDR] [metric N] [expires N]`
fn route_add(
    state: &mut State,
    family: Family,
    words: &[String],
    mode: RouteMode,
) -> Result<String, CmdError> {
    let req = parse_route(|dev| state.find(dev), family, words)?;
    if req.more_nexthops.is_empty() {
        let checked = state.check_route_add(&req, mode);
        state.create_table_for(&req);
        state.apply_route_add(checked?);
        return Ok(String::new());
    }
    state.create_table_for(&req);
    if req.dst.is_ipv4() {
        return state.add_multipath_v4(&req, mode).map(|()| String::new());
    }
    // An IPv6 multipath route: its first nexthop as the command says, the
    // others appended to it, all or none (as Linux's `ip6_route_multipath_add`).
    let mut next = state.clone();
    let nexthops = std::iter::once((req.via, req.dev, req.weight)).chain(
        req.more_nexthops
            .iter()
            .map(|&(gw, dev, weight)| (gw, dev, weight)),
    );
    for (n, (via, dev, weight)) in nexthops.enumerate() {
        let one = RouteReq {
            via,
            dev,
            weight,
            more_nexthops: Vec::new(),
            ..req.clone()
        };
        let mode = if n == 0 { mode } else { RouteMode::Append };
        let checked = next.check_route_add(&one, mode)?;
        next.apply_route_add(checked);
    }
    *state = next;
    Ok(String::new())
}

/// `ip route del [TYPE] [to] PREFIX [via GW] [dev DEV] [src ADDR] [metric N]
/// [protocol P] [table T]`: a route of any table, the kernel's own entries of
/// the local table among them.
fn route_del(state: &mut State, family: Family, words: &[String]) -> Result<String, CmdError> {
    let req = parse_route(|dev| state.find(dev), family, words)?;
    let del = state.check_route_del(&req)?;
    state.apply_route_del(del);
    Ok(String::new())
}

#[derive(Clone, Copy)]
enum RouteKw {
    Src,
    Via,
    Dev,
    Metric,
    /// `nexthop`: the rest of the line is nexthops.
    Nexthop,
    /// `expires N`.
    Expires,
    /// `table TABLE`.
    Table,
    /// `protocol P`.
    Protocol,
    /// A keyword the stack cannot honour; true if it takes a value.
    Unsupported(bool),
}

/// The keywords of `ip route add|replace|del` in iproute2 6.1's order; any other
/// word is the destination, possibly after `to` and a route type.
const ROUTE_KEYWORDS: &[(&str, Match, RouteKw)] = &[
    ("src", Exact, RouteKw::Src),
    ("as", Exact, RouteKw::Unsupported(true)),
    ("via", Exact, RouteKw::Via),
    ("from", Exact, RouteKw::Unsupported(true)),
    ("tos", Exact, RouteKw::Unsupported(true)),
    ("dsfield", Prefix, RouteKw::Unsupported(true)),
    ("expires", Exact, RouteKw::Expires),
    ("metric", Prefix, RouteKw::Metric),
    ("priority", Prefix, RouteKw::Metric),
    ("preference", Exact, RouteKw::Metric),
    ("scope", Exact, RouteKw::Unsupported(true)),
    ("mtu", Exact, RouteKw::Unsupported(true)),
    ("hoplimit", Exact, RouteKw::Unsupported(true)),
    ("advmss", Exact, RouteKw::Unsupported(true)),
    ("reordering", Prefix, RouteKw::Unsupported(true)),
    ("rtt", Exact, RouteKw::Unsupported(true)),
    ("rto_min", Exact, RouteKw::Unsupported(true)),
    ("window", Prefix, RouteKw::Unsupported(true)),
    ("cwnd", Prefix, RouteKw::Unsupported(true)),
    ("initcwnd", Prefix, RouteKw::Unsupported(true)),
    ("initrwnd", Prefix, RouteKw::Unsupported(true)),
    ("features", Prefix, RouteKw::Unsupported(true)),
    ("quickack", Prefix, RouteKw::Unsupported(true)),
    ("congctl", Prefix, RouteKw::Unsupported(true)),
    ("rttvar", Prefix, RouteKw::Unsupported(true)),
    ("ssthresh", Prefix, RouteKw::Unsupported(true)),
    ("realms", Prefix, RouteKw::Unsupported(true)),
    ("onlink", Exact, RouteKw::Unsupported(false)),
    ("nexthop", Exact, RouteKw::Nexthop),
    ("nhid", Exact, RouteKw::Unsupported(true)),
    ("protocol", Prefix, RouteKw::Protocol),
    ("table", Prefix, RouteKw::Table),
    ("vrf", Prefix, RouteKw::Unsupported(true)),
    ("dev", Exact, RouteKw::Dev),
    ("oif", Exact, RouteKw::Dev),
    ("pref", Prefix, RouteKw::Unsupported(true)),
    ("encap", Exact, RouteKw::Unsupported(true)),
    ("ttl-propagate", Exact, RouteKw::Unsupported(true)),
    ("fastopen_no_cookie", Exact, RouteKw::Unsupported(true)),
];

/// Route types iproute2 accepts before the destination (`rtnl_rtntype_a2n`, in
/// its order).
const ROUTE_TYPES: &[(&str, Match, RouteType)] = &[
    ("local", Exact, RouteType::Local),
    ("nat", Exact, RouteType::Nat),
    ("broadcast", Prefix, RouteType::Broadcast),
    ("brd", Exact, RouteType::Broadcast),
    ("anycast", Prefix, RouteType::Anycast),
    ("multicast", Prefix, RouteType::Multicast),
    ("prohibit", Prefix, RouteType::Prohibit),
    ("unreachable", Prefix, RouteType::Unreachable),
    ("blackhole", Prefix, RouteType::Blackhole),
    ("xresolve", Prefix, RouteType::Xresolve),
    ("unicast", Prefix, RouteType::Unicast),
    ("throw", Exact, RouteType::Throw),
];

/// The parse step of `ip route add|replace|change|prepend|append|test|del`: the
/// words, read as iproute2 reads them, into
/// the request it would send the kernel, or iproute2's error. `find_link` gives
/// the index of a link by name, the only thing iproute2 asks before sending.
pub(crate) fn parse_route(
    find_link: impl Fn(&str) -> Option<u32>,
    family: Family,
    words: &[String],
) -> Result<RouteReq, CmdError> {
    let mut args = Args::new(words);
    let mut family = family;
    let mut dst: Option<Parsed> = None;
    let mut via: Option<IpAddr> = None;
    let mut src: Option<IpAddr> = None;
    let mut dev: Option<&str> = None;
    let mut metric: Option<u32> = None;
    let mut nexthops: Vec<Nexthop> = Vec::new();
    let mut kind = RouteType::Unicast;
    let mut expires: Option<u32> = None;
    let mut table = None;
    let mut proto = None;
    while let Some(word) = args.next() {
        match pick(word, ROUTE_KEYWORDS) {
            Some((_, RouteKw::Src)) => {
                let addr = get_addr(args.value()?, family, "src")?;
                if family == Family::Unspec {
                    family = Family::of(addr);
                }
                src = Some(addr);
            }
            Some((_, RouteKw::Via)) => {
                if via.is_some() {
                    return Err(invarg("use nexthop syntax to specify multiple via\n", word));
                }
                via = Some(route_via(&mut args, &mut family)?);
            }
            Some((_, RouteKw::Dev)) => dev = Some(args.value()?),
            Some((_, RouteKw::Metric)) => metric = Some(metric_value(args.value()?)?),
            Some((_, RouteKw::Nexthop)) => nexthops = parse_nexthops(&mut args, &mut family)?,
            Some((_, RouteKw::Expires)) => {
                let value = args.value()?;
                expires = Some(
                    parse::get_u32(value)
                        .ok_or_else(|| invarg("\"expires\" value is invalid\n", value))?,
                );
            }
            Some((_, RouteKw::Table)) => {
                let value = args.value()?;
                // Table 0 (`unspec`) is the main table to the kernel.
                let id =
                    table_id(value).ok_or_else(|| invarg("\"table\" value is invalid\n", value))?;
                table = Some(if id == 0 { MAIN_TABLE } else { id });
            }
            Some((_, RouteKw::Protocol)) => {
                let value = args.value()?;
                proto = Some(
                    protocol_number(value)
                        .ok_or_else(|| invarg("\"protocol\" value is invalid\n", value))?,
                );
            }
            Some((name, RouteKw::Unsupported(value))) => {
                return Err(refuse(
                    &mut args,
                    value,
                    &format!("\"ip route ... {name}\""),
                ));
            }
            None => {
                let (prefix, route_type) = route_dst(&mut args, word, &mut family, dst.is_some())?;
                dst = Some(prefix);
                if let Some(t) = route_type {
                    kind = t;
                }
            }
        }
    }
    let dst = dst.ok_or_else(|| usage(ROUTE_USAGE))?;
    let find = |dev: Option<&str>| match dev {
        Some(d) => find_link(d).map(Some).ok_or_else(|| cannot_find(d)),
        None => Ok(None),
    };
    let mut dev = find(dev)?;
    let mut more_nexthops = Vec::new();
    let mut weight = 1;
    let mut universe = false;
    if let Some(&(first_via, first_dev, first_weight)) = nexthops.first() {
        let first_dev = find(first_dev)?;
        let mut hops = Vec::new();
        for &(gw, d, w) in &nexthops[1..] {
            hops.push((gw, find(d)?, w));
        }
        if family == Family::Inet6 {
            // Linux's `ip6_route_multipath_add`: each nexthop's gateway and
            // device replace the route's; none may lack a gateway.
            if first_via.is_none() || hops.iter().any(|h| h.0.is_none()) {
                return Err(kernel(
                    "Device only routes can not be added for IPv6 using the multipath API.",
                ));
            }
        } else {
            // Linux's `fib_get_nhs`: a device or gateway given beside the
            // nexthops must be the first nexthop's, as written.
            if dev.is_some() && dev != first_dev {
                return Err(kernel("Nexthop device index does not match RTA_OIF."));
            }
            if via.is_some_and(|g| Some(g) != first_via) {
                return Err(kernel(
                    "Nexthop gateway does not match RTA_GATEWAY or RTA_VIA.",
                ));
            }
        }
        // A nexthop without a gateway makes a route of scope universe, not
        // the link scope of `ip route add PREFIX dev DEV`.
        universe = first_via.is_none();
        via = first_via;
        dev = first_dev;
        weight = first_weight;
        more_nexthops = hops;
    }
    if family == Family::Unspec {
        family = Family::Inet;
    }
    if matches!(kind, RouteType::Nat | RouteType::Xresolve) && family == Family::Inet {
        // Linux's `fib_create_info`: the scope iproute2 gives these types
        // is below what the type needs. IPv6 takes them as labels only.
        return Err(kernel("Invalid scope."));
    }
    // iproute2 puts the routes of these types in the local table unless
    // another was named.
    let table = table.unwrap_or(match kind {
        RouteType::Local | RouteType::Broadcast | RouteType::Anycast | RouteType::Nat => {
            LOCAL_TABLE
        }
        _ => MAIN_TABLE,
    });
    if !matches!(family, Family::Inet | Family::Inet6) {
        return Err(unsupported(&format!(
            "the {} family",
            family.verbose_name()
        )));
    }
    let (dst, prefix_len) = match dst {
        Parsed::Addr { addr, prefix_len } => (
            addr,
            prefix_len.unwrap_or(if addr.is_ipv4() { 32 } else { 128 }),
        ),
        Parsed::Default | Parsed::Any => (zero(family), 0),
    };
    Ok(RouteReq {
        dst,
        prefix_len,
        via,
        dev,
        src,
        metric,
        kind,
        more_nexthops,
        weight,
        expires,
        universe,
        table,
        proto,
    })
}

/// A table as iproute2 reads it (`rtnl_rttable_a2n` with the names of a
/// stock `rt_tables`): a name or a number.
fn table_id(value: &str) -> Option<u32> {
    match value {
        "main" => Some(MAIN_TABLE),
        "local" => Some(LOCAL_TABLE),
        "default" => Some(DEFAULT_TABLE),
        "unspec" => Some(0),
        _ => parse::get_u32(value),
    }
}

/// One `nexthop` as written: gateway (none: on-link), device name, weight.
type Nexthop<'a> = (Option<IpAddr>, Option<&'a str>, u16);

/// The nexthops of `ip route add ... nexthop via GW [dev DEV] [weight N]
/// [nexthop ...]` (iproute2's `parse_nexthops`), after the first `nexthop`:
/// each gateway, device name and weight. More than one make a multipath
/// route, which the model keeps for IPv6 only (the engine spreads flows over
/// the nexthops by their weights).
fn parse_nexthops<'a>(
    args: &mut Args<'a>,
    family: &mut Family,
) -> Result<Vec<Nexthop<'a>>, CmdError> {
    let mut nexthops = Vec::new();
    loop {
        let mut via = None;
        let mut dev = None;
        let mut weight = 1;
        let mut next = false;
        let mut empty = true;
        while let Some(word) = args.next() {
            empty = false;
            match word {
                // A second `via` or `dev` in one nexthop is sent too; the
                // kernel reads the first.
                "via" => {
                    let gw = route_via(args, family)?;
                    via.get_or_insert(gw);
                }
                "dev" => {
                    let name = args.value()?;
                    dev.get_or_insert(name);
                }
                "weight" => {
                    let value = args.value()?;
                    weight = parse::get_u32(value)
                        .and_then(|w| u16::try_from(w).ok())
                        .filter(|w| (1..=256).contains(w))
                        .ok_or_else(|| invarg("\"weight\" is invalid\n", value))?;
                }
                "onlink" | "realms" | "encap" | "as" => {
                    let takes_value = word != "onlink";
                    return Err(refuse(
                        args,
                        takes_value,
                        &format!("\"ip route ... nexthop ... {word}\""),
                    ));
                }
                "nexthop" => {
                    next = true;
                    break;
                }
                _ => {
                    return Err(CmdError::new(
                        255,
                        format!(
                            "Error: \"nexthop\" or end of line is expected instead of \"{word}\""
                        ),
                    ))
                }
            }
        }
        if empty {
            // iproute2 reads at least one word after each `nexthop`.
            return Err(CmdError::new(
                255,
                "Error: unexpected end of line after \"nexthop\"".to_string(),
            ));
        }
        nexthops.push((via, dev, weight));
        if !next {
            break;
        }
    }
    Ok(nexthops)
}

/// The value of `metric`, `priority` or `preference`: a C `unsigned long` up
/// to 2^32 - 1.
fn metric_value(value: &str) -> Result<u32, CmdError> {
    parse::get_u32(value).ok_or_else(|| invarg("\"metric\" value is invalid\n", value))
}

/// The value of a route's `via [FAMILY] GW`; the route's family follows the
/// gateway's unless it was chosen (an IPv4 route may go through an IPv6
/// gateway, RFC 5549; the kernel refuses the other way round).
fn route_via(args: &mut Args, family: &mut Family) -> Result<IpAddr, CmdError> {
    let mut value = args.value()?;
    let mut via_family = *family;
    if let Some(f) = Family::from_name(value) {
        via_family = f;
        value = args.value()?;
    }
    let addr = get_addr(value, via_family, "via")?;
    if *family == Family::Unspec {
        *family = Family::of(addr);
    }
    Ok(addr)
}

/// A route's destination, `[to] [TYPE] PREFIX`, starting at `word`: the prefix,
/// and the route type, if one was given.
/// `seen`: the destination was already given.
fn route_dst<'a>(
    args: &mut Args<'a>,
    word: &'a str,
    family: &mut Family,
    seen: bool,
) -> Result<(Parsed, Option<RouteType>), CmdError> {
    let mut word = if word == "to" { args.value()? } else { word };
    let mut route_type = None;
    let starts_with_digit = word.as_bytes().first().is_some_and(u8::is_ascii_digit);
    if let Some(named) = pick(word, ROUTE_TYPES).filter(|_| !starts_with_digit) {
        route_type = Some(named.1);
        word = args.value()?;
    }
    if matches(word, "help") {
        return Err(usage(ROUTE_USAGE));
    }
    if seen {
        return Err(duparg2("to", word));
    }
    let parsed = get_prefix(word, *family)?;
    if let (Parsed::Addr { addr, .. }, Family::Unspec) = (parsed, *family) {
        *family = Family::of(addr);
    }
    Ok((parsed, route_type))
}

#[derive(Clone, Copy)]
enum ListKw {
    Table,
    Dev,
    Metric,
    Protocol,
    /// `cached`: the routing cache, which Linux no longer has for IPv4 and the
    /// stack has for neither family: nothing to show or flush.
    Cache,
    /// A keyword the stack cannot honour; true if it takes a value.
    Unsupported(bool),
}

/// The selector keywords of `ip route show|flush` in iproute2 6.1's order.
const ROUTE_LIST_KEYWORDS: &[(&str, Match, ListKw)] = &[
    ("table", Prefix, ListKw::Table),
    ("vrf", Prefix, ListKw::Unsupported(true)),
    ("cached", Prefix, ListKw::Cache),
    ("cloned", Prefix, ListKw::Unsupported(false)),
    ("tos", Exact, ListKw::Unsupported(true)),
    ("dsfield", Prefix, ListKw::Unsupported(true)),
    ("protocol", Prefix, ListKw::Protocol),
    ("scope", Prefix, ListKw::Unsupported(true)),
    ("type", Prefix, ListKw::Unsupported(true)),
    ("dev", Exact, ListKw::Dev),
    ("oif", Exact, ListKw::Dev),
    ("iif", Exact, ListKw::Unsupported(true)),
    ("mark", Exact, ListKw::Unsupported(true)),
    ("metric", Prefix, ListKw::Metric),
    ("priority", Prefix, ListKw::Metric),
    ("preference", Exact, ListKw::Metric),
    ("via", Exact, ListKw::Unsupported(true)),
    ("src", Exact, ListKw::Unsupported(true)),
    ("realms", Prefix, ListKw::Unsupported(true)),
    ("from", Prefix, ListKw::Unsupported(true)),
    ("nhid", Exact, ListKw::Unsupported(true)),
];

/// How `ip route show` prints: `-j`, `-o`.
#[derive(Clone, Copy)]
struct ListStyle {
    json: bool,
    oneline: bool,
}

/// `ip route show|flush [table main] [dev DEV] [[to] [root|match|exact] PREFIX | all]`
fn route_list(
    state: &mut State,
    family: Family,
    words: &[String],
    flush: bool,
    style: ListStyle,
) -> Result<String, CmdError> {
    let Some(selector) = parse_route_list(|dev| state.find(dev), family, words, flush)? else {
        return Ok(String::new());
    };
    // Linux dumps the main table without asking whether it exists; a flush
    // of it, and a dump or flush of any other table named, fail without it.
    if flush || selector.table.is_some_and(|t| t != MAIN_TABLE) {
        state.check_route_dump(selector.ipv6, selector.table, flush)?;
    }
    // A multipath route is one route to `ip route`: selected by its first
    // nexthop, never by a device (it has none of its own).
    let kernel_local: Vec<Vec<Route>> = state
        .kernel_local_routes()
        .into_iter()
        .map(|r| vec![r])
        .collect();
    let mut selected: Vec<Vec<Route>> = state
        .route_groups()
        .into_iter()
        .map(|g| g.iter().map(|&i| state.routes[i]).collect::<Vec<Route>>())
        .chain(kernel_local)
        .filter(|g| selector.selects(&g[0]) && (g.len() == 1 || selector.dev.is_none()))
        .collect();
    // The kernel's local entries among the others, in table order (stable:
    // the table's own order of equal routes stays).
    selected.sort_by(|a, b| route_order(&a[0], &b[0]));
    if flush {
        // The kernel's own entries of the local table go as the others do
        // (the addresses stay).
        let kernel_entry = |r: &Route| r.table == LOCAL_TABLE && r.proto == RouteProto::Kernel;
        let (local, doomed): (Vec<Route>, Vec<Route>) = selected
            .iter()
            .flat_map(|g| g.iter().copied())
            .partition(kernel_entry);
        state.flush_routes(|r| doomed.contains(r));
        state.delete_local_entries(&local);
        return Ok(String::new());
    }
    let show = show::RouteShow {
        dev: selector.dev.is_none(),
        metric: selector.metric.is_none(),
        proto: selector.proto.is_none(),
        // iproute2 names a route's table only when listing them all.
        table: selector.table.is_none(),
        oneline: style.oneline,
    };
    if style.json {
        let items: Vec<String> = selected
            .iter()
            .map(|g| show::route_json(state, g, show))
            .collect();
        return Ok(show::objects_json(&items));
    }
    Ok(selected
        .iter()
        .map(|g| show::route_line(state, g, show))
        .collect())
}

/// Which routes `ip route show|flush` selects: those of one family, narrowed by
/// the selectors given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouteSelector {
    pub(crate) ipv6: bool,
    /// `table all` without a family: IPv4 and IPv6 routes alike (`ipv6` is
    /// then false).
    pub(crate) both_families: bool,
    /// The table (`None`: all; [`MAIN_TABLE`] unless given).
    pub(crate) table: Option<u32>,
    pub(crate) dev: Option<u32>,
    /// `root PREFIX`: routes inside the prefix (iproute2's `rdst`).
    pub(crate) root: Option<(IpAddr, u8)>,
    /// `match PREFIX`: routes that hold all of the prefix (iproute2's
    /// `mdst`). A prefix alone (`[exact] PREFIX`) sets both: that prefix only.
    pub(crate) covers: Option<(IpAddr, u8)>,
    pub(crate) metric: Option<u32>,
    /// An rtnetlink protocol number: kernel routes are 2, `ip route add` ones 3.
    pub(crate) proto: Option<u32>,
}

impl RouteSelector {
    /// Whether the selector selects this route.
    pub(crate) fn selects(&self, r: &Route) -> bool {
        (self.both_families || r.dst.is_ipv6() == self.ipv6)
            && self.table.is_none_or(|t| t == r.table)
            && self.dev.is_none_or(|d| Some(d) == r.device())
            && self
                .root
                .is_none_or(|(addr, len)| r.prefix_len >= len && in_prefix(r.dst, addr, len))
            && self.covers.is_none_or(|(addr, len)| {
                r.prefix_len <= len && in_prefix(addr, r.dst, r.prefix_len)
            })
            && self.metric.is_none_or(|m| m == r.metric())
            && self.proto.is_none_or(|p| p == r.proto.number())
    }
}

/// The parse step of `ip route show|flush`: the words into a selector, or
/// iproute2's error; `None` when the selector cannot select anything (a family
/// without routes, or the routing cache). `find_link` gives the index of a link
/// by name.
pub(crate) fn parse_route_list(
    find_link: impl Fn(&str) -> Option<u32>,
    family: Family,
    words: &[String],
    flush: bool,
) -> Result<Option<RouteSelector>, CmdError> {
    if flush && words.is_empty() {
        return Err(CmdError::new(1, "\"ip route flush\" requires arguments."));
    }
    let mut args = Args::new(words);
    let mut dev: Option<&str> = None;
    let mut root: Option<(IpAddr, u8)> = None;
    let mut covers: Option<(IpAddr, u8)> = None;
    let mut metric: Option<u32> = None;
    let mut proto: Option<u32> = None;
    let mut cache = false;
    let mut table = Some(MAIN_TABLE);
    while let Some(word) = args.next() {
        match pick(word, ROUTE_LIST_KEYWORDS) {
            Some((_, ListKw::Cache)) => cache = true,
            Some((_, ListKw::Table)) => {
                let value = args.value()?;
                if value == "help" {
                    return Err(usage(ROUTE_USAGE));
                }
                // `all` and table 0 list every table.
                let id = match value {
                    "all" => 0,
                    _ => table_id(value)
                        .ok_or_else(|| invarg("table id value is invalid\n", value))?,
                };
                table = (id != 0).then_some(id);
            }
            Some((_, ListKw::Dev)) => dev = Some(args.value()?),
            Some((_, ListKw::Metric)) => metric = Some(metric_value(args.value()?)?),
            Some((_, ListKw::Protocol)) => proto = route_protocol(args.value()?)?,
            Some((name, ListKw::Unsupported(value))) => {
                return Err(refuse(
                    &mut args,
                    value,
                    &format!("the \"{name}\" selector"),
                ));
            }
            None => {
                let (kind, prefix) = list_prefix(&mut args, word, family)?;
                if kind != PrefixKw::Match {
                    root = prefix;
                }
                if kind != PrefixKw::Root {
                    covers = prefix;
                }
            }
        }
    }
    let dev = match dev {
        Some(d) => Some(find_link(d).ok_or_else(|| cannot_find(d))?),
        None => None,
    };
    // iproute2 lists both families for all tables unless one was chosen.
    let both_families = family == Family::Unspec && table.is_none();
    let ipv6 = match family {
        Family::Unspec | Family::Inet => false,
        Family::Inet6 => true,
        Family::Packet | Family::Other(_) => return Ok(None),
    };
    if cache {
        return Ok(None);
    }
    Ok(Some(RouteSelector {
        ipv6,
        both_families,
        table,
        dev,
        root,
        covers,
        metric,
        proto,
    }))
}

/// The value of `protocol` in a route selector: a name or a number up to 255;
/// `None` for `all`.
fn route_protocol(value: &str) -> Result<Option<u32>, CmdError> {
    if value == "all" {
        return Ok(None);
    }
    protocol_number(value)
        .map(Some)
        .ok_or_else(|| invarg("invalid \"protocol\"\n", value))
}

/// A route protocol as iproute2 reads it (`rtnl_rtprot_a2n` with the names of
/// a stock `rt_protos`): a name or a number up to 255.
fn protocol_number(value: &str) -> Option<u32> {
    match show::PROTOCOL_NAMES.iter().find(|(name, _)| *name == value) {
        Some(&(_, n)) => Some(n),
        None => parse::get_u32(value).filter(|&n| n <= 255),
    }
}

/// Which prefix selector of `ip route show|flush` a prefix came with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PrefixKw {
    /// `root PREFIX`.
    Root,
    /// `match PREFIX`.
    Match,
    /// `[exact] PREFIX`.
    Exact,
}

/// The prefix of a route selector, `[to] [root|match|exact] PREFIX`, starting
/// at `word`, and which keyword it came with; `None` selects every prefix.
fn list_prefix(
    args: &mut Args,
    word: &str,
    family: Family,
) -> Result<(PrefixKw, Option<(IpAddr, u8)>), CmdError> {
    let mut word = if matches(word, "to") {
        args.value()?
    } else {
        word
    };
    let mut kind = PrefixKw::Exact;
    if matches(word, "root") {
        kind = PrefixKw::Root;
        word = args.value()?;
    } else if matches(word, "match") {
        kind = PrefixKw::Match;
        word = args.value()?;
    } else if matches(word, "exact") {
        word = args.value()?;
    }
    // "default" means IPv4's unless a family was chosen; "all" and "any" select
    // everything unless a family was chosen, and then only its default routes, as
    // in iproute2.
    let prefix = match get_prefix(word, family)? {
        Parsed::Addr { addr, prefix_len } => Some((
            addr,
            prefix_len.unwrap_or(if addr.is_ipv4() { 32 } else { 128 }),
        )),
        Parsed::Default => Some((zero(family), 0)),
        Parsed::Any if family == Family::Unspec => None,
        Parsed::Any => Some((zero(family), 0)),
    };
    Ok((kind, prefix))
}
