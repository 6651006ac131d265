//! `ip route get [fibmatch] ADDRESS [from ADDRESS [iif DEV]] [oif DEV] ...`:
//! which way, and from which source, a packet to an address would leave.
//!
//! The words are read as iproute2 6.1's `iproute_get` reads them; the answer
//! is the model's own lookup ([`State::route_get`], the one the running stack
//! follows), printed as iproute2 prints the route the kernel answers: for
//! IPv4 a route cache entry (`uid`, `cache <flags>`), for IPv6 the route
//! itself with its protocol, metric and preference. What only matters to a
//! kernel's policy routing or to hashing a flow (`tos`, `mark`, `uid`,
//! `ipproto`, `sport`, `dport`) is read, checked and printed where Linux
//! prints it, and changes nothing.

use super::{
    cannot_find, get_prefix, invarg, pick, unsupported, usage, zero, Args, Exact, Match, Prefix,
    ROUTE_USAGE,
};
use crate::cmd::config::{
    rtnl, NoRoute, RouteAnswer, RouteQuery, RouteType, State, MAIN_TABLE as MAIN,
};
use crate::cmd::error::CmdError;
use crate::cmd::parse::{self, format_addr, Family, Parsed};
use crate::cmd::show;
use std::net::IpAddr;

#[derive(Clone, Copy)]
enum GetKw {
    Tos,
    From,
    Iif,
    Mark,
    Oif,
    Notify,
    Connected,
    Vrf,
    Uid,
    Fibmatch,
    As,
    Sport,
    Dport,
    Ipproto,
}

/// The keywords of `ip route get` in the order iproute2 6.1 tries them; any
/// other word is the destination.
const GET_KEYWORDS: &[(&str, Match, GetKw)] = &[
    ("tos", Exact, GetKw::Tos),
    ("dsfield", Prefix, GetKw::Tos),
    ("from", Prefix, GetKw::From),
    ("iif", Prefix, GetKw::Iif),
    ("mark", Prefix, GetKw::Mark),
    ("oif", Prefix, GetKw::Oif),
    ("dev", Exact, GetKw::Oif),
    ("notify", Prefix, GetKw::Notify),
    ("connected", Prefix, GetKw::Connected),
    ("vrf", Prefix, GetKw::Vrf),
    ("uid", Prefix, GetKw::Uid),
    ("fibmatch", Prefix, GetKw::Fibmatch),
    ("as", Exact, GetKw::As),
    ("sport", Prefix, GetKw::Sport),
    ("dport", Prefix, GetKw::Dport),
    ("ipproto", Prefix, GetKw::Ipproto),
];

/// The protocol names `ipproto` reads (`getprotobyname` over Debian 12's
/// `/etc/protocols`, names and aliases) and their numbers; otherwise a
/// decimal number up to 255.
#[rustfmt::skip]
const PROTOCOLS: &[(u32, &[&str])] = &[
    (0, &["ip", "IP", "hopopt", "HOPOPT"]),
    (1, &["icmp", "ICMP"]),
    (2, &["igmp", "IGMP"]),
    (3, &["ggp", "GGP"]),
    (4, &["ipencap", "IP-ENCAP"]),
    (5, &["st", "ST"]),
    (6, &["tcp", "TCP"]),
    (8, &["egp", "EGP"]),
    (9, &["igp", "IGP"]),
    (12, &["pup", "PUP"]),
    (17, &["udp", "UDP"]),
    (20, &["hmp", "HMP"]),
    (22, &["xns-idp", "XNS-IDP"]),
    (27, &["rdp", "RDP"]),
    (29, &["iso-tp4", "ISO-TP4"]),
    (33, &["dccp", "DCCP"]),
    (36, &["xtp", "XTP"]),
    (37, &["ddp", "DDP"]),
    (38, &["idpr-cmtp", "IDPR-CMTP"]),
    (41, &["ipv6", "IPv6"]),
    (43, &["ipv6-route", "IPv6-Route"]),
    (44, &["ipv6-frag", "IPv6-Frag"]),
    (45, &["idrp", "IDRP"]),
    (46, &["rsvp", "RSVP"]),
    (47, &["gre", "GRE"]),
    (50, &["esp", "IPSEC-ESP"]),
    (51, &["ah", "IPSEC-AH"]),
    (57, &["skip", "SKIP"]),
    (58, &["ipv6-icmp", "IPv6-ICMP"]),
    (59, &["ipv6-nonxt", "IPv6-NoNxt"]),
    (60, &["ipv6-opts", "IPv6-Opts"]),
    (73, &["rspf", "RSPF"]),
    (81, &["vmtp", "VMTP"]),
    (88, &["eigrp", "EIGRP"]),
    (89, &["ospf", "OSPFIGP"]),
    (93, &["ax.25", "AX.25"]),
    (94, &["ipip", "IPIP"]),
    (97, &["etherip", "ETHERIP"]),
    (98, &["encap", "ENCAP"]),
    (103, &["pim", "PIM"]),
    (108, &["ipcomp", "IPCOMP"]),
    (112, &["vrrp", "VRRP"]),
    (115, &["l2tp", "L2TP"]),
    (124, &["isis", "ISIS"]),
    (132, &["sctp", "SCTP"]),
    (133, &["fc", "FC"]),
    (135, &["mobility-header", "Mobility-Header"]),
    (136, &["udplite", "UDPLite"]),
    (137, &["mpls-in-ip", "MPLS-in-IP"]),
    (138, &["manet"]),
    (139, &["hip", "HIP"]),
    (140, &["shim6", "Shim6"]),
    (141, &["wesp", "WESP"]),
    (142, &["rohc", "ROHC"]),
    (143, &["ethernet", "Ethernet"]),
    (262, &["mptcp", "MPTCP"]),
];

/// The names of `tos`/`dsfield` values (Debian 12's `rt_dsfield`).
const DSFIELDS: &[&str] = &[
    "default", "AF11", "AF12", "AF13", "AF21", "AF22", "AF23", "AF31", "AF32", "AF33", "AF41",
    "AF42", "AF43", "CS1", "CS2", "CS3", "CS4", "CS5", "CS6", "CS7", "EF",
];

/// `ip route get`, as read.
struct GetReq {
    dst: IpAddr,
    /// `from ADDR` (its prefix length, which must be the host's).
    from: Option<(IpAddr, u8)>,
    iif: Option<u32>,
    oif: Option<u32>,
    mark: u32,
    /// `uid N`: the user whose lookup it is (root's unless given).
    uid: u32,
    connected: bool,
    fibmatch: bool,
    /// `as ADDR`: a NAT address, which Linux refuses in a lookup.
    nat: bool,
    /// `ipproto`: the protocol number (sent in one byte).
    ipproto: Option<u8>,
    /// `from default`: a source of length 0, which Linux refuses.
    from_default: bool,
}

/// How `ip route get` prints: `-j`, `-o`.
#[derive(Clone, Copy)]
pub(super) struct GetStyle {
    pub(super) json: bool,
    pub(super) oneline: bool,
}

/// `ip route get ...`: the parse step, the lookup, the answer printed.
pub(super) fn route_get(
    state: &State,
    family: Family,
    words: &[String],
    style: GetStyle,
) -> Result<String, CmdError> {
    let req = parse_get(|dev| state.find(dev), family, words)?;
    let ipv4 = req.dst.is_ipv4();
    let (af, host) = if ipv4 { ("ipv4", 32) } else { ("ipv6", 128) };
    // Linux's checks of the request, in its order.
    if req.from.is_some_and(|(f, len)| len != host_len(f)) {
        let what = if ipv4 { "route get" } else { "get route" };
        return Err(CmdError::new(
            2,
            format!("Error: {af}: Invalid values in header for {what} request."),
        ));
    }
    if req.from_default {
        return Err(CmdError::new(
            2,
            format!(
                "Error: {af}: rtm_src_len and rtm_dst_len must be {host} for IPv{}.",
                if ipv4 { 4 } else { 6 }
            ),
        ));
    }
    if req.nat {
        let what = if ipv4 { "route get" } else { "get route" };
        return Err(CmdError::new(
            2,
            format!("Error: {af}: Unsupported attribute in {what} request."),
        ));
    }
    if let Some(proto) = req.ipproto {
        // Linux looks up flows of these protocols only.
        let icmp = if ipv4 { 1 } else { 58 };
        if ![6, 17, icmp].contains(&proto) {
            return Err(CmdError::new(2, "Error: Unsupported ip proto."));
        }
    }
    let query = RouteQuery {
        dst: req.dst,
        from: req.from.map(|(f, _)| f),
        oif: req.oif,
        iif: req.iif,
    };
    let answer = state.route_get(&query).map_err(no_route)?;
    let print = |json: bool| {
        if req.fibmatch {
            fibmatch(state, &answer, json, style.oneline)
        } else if json {
            Ok(get_json(state, &req, &answer))
        } else {
            Ok(get_line(state, &req, &answer, style.oneline))
        }
    };
    if req.connected && req.from.is_none() && ipv4 && answer.src.is_none() {
        // No source to ask again from: iproute2 gives up after printing the
        // first answer (which the model cannot return beside an error).
        return Err(CmdError::new(1, "Failed to connect the route"));
    }
    let first = print(style.json)?;
    // `connected` without `from` asks again from the source found, with the
    // request it already sent (iproute2 6.1), so the same answer comes back;
    // it is printed after leaving JSON.
    let again = if req.connected && req.from.is_none() {
        print(false)?
    } else {
        String::new()
    };
    Ok(first + &again)
}

fn host_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// The kernel's answer when nothing leaves.
fn no_route(why: NoRoute) -> CmdError {
    rtnl(match why {
        NoRoute::HostUnreachable => "No route to host",
        NoRoute::Prohibited => "Permission denied",
        NoRoute::Blackhole => "Invalid argument",
        _ => "Network is unreachable",
    })
}

/// The parse step: the words as iproute2 reads them into the request, or
/// its error. `find_link` gives the index of a link by name.
fn parse_get(
    find_link: impl Fn(&str) -> Option<u32>,
    family: Family,
    words: &[String],
) -> Result<GetReq, CmdError> {
    let mut args = Args::new(words);
    let mut family = family;
    let mut dst: Option<IpAddr> = None;
    let mut from = None;
    let mut iif = None;
    let mut oif = None;
    let mut mark = 0;
    let mut uid = 0;
    let mut connected = false;
    let mut fibmatch = false;
    let mut nat = false;
    let mut ipproto = None;
    let mut from_default = false;
    while let Some(word) = args.next() {
        match pick(word, GET_KEYWORDS) {
            Some((_, GetKw::Tos)) => {
                // `rtnl_dsfield_a2n`: a name, or a hexadecimal number up to 0xff.
                let value = args.value()?;
                let hex = value.strip_prefix("0x").unwrap_or(value);
                let number = !hex.is_empty() && u8::from_str_radix(hex, 16).is_ok();
                if !number && !DSFIELDS.contains(&value) {
                    return Err(invarg("TOS value is invalid\n", value));
                }
            }
            Some((_, GetKw::From)) => {
                let value = args.value()?;
                if super::matches(value, "help") {
                    return Err(usage(ROUTE_USAGE));
                }
                let parsed = get_prefix(value, family)?;
                match parsed {
                    Parsed::Addr { addr, prefix_len } => {
                        if family == Family::Unspec {
                            family = Family::of(addr);
                        }
                        from = Some((addr, prefix_len.unwrap_or(host_len(addr))));
                    }
                    // iproute2 sends `default`'s zero bytes, of the family
                    // known so far, with a length of 0; `any` and `all` it
                    // does not send.
                    Parsed::Default => from_default = family != Family::Unspec,
                    Parsed::Any => {}
                }
            }
            Some((_, GetKw::Iif)) => iif = Some(args.value()?),
            Some((_, GetKw::Mark)) => {
                let value = args.value()?;
                mark = parse::get_u32(value).ok_or_else(|| invarg("invalid mark value", value))?;
            }
            Some((_, GetKw::Oif)) => oif = Some(args.value()?),
            Some((_, GetKw::Notify)) => {
                // Linux marks the cached route itself, for every later
                // lookup: nothing the stack keeps.
                return Err(unsupported("\"ip route get ... notify\""));
            }
            Some((_, GetKw::Connected)) => connected = true,
            Some((_, GetKw::Vrf)) => {
                // The stack has no VRF device.
                let value = args.value()?;
                return Err(invarg("Invalid VRF\n", value));
            }
            Some((_, GetKw::Uid)) => {
                let value = args.value()?;
                uid = parse::get_unsigned(value).ok_or_else(|| invarg("invalid UID\n", value))?;
            }
            Some((_, GetKw::Fibmatch)) => fibmatch = true,
            Some((_, GetKw::As)) => {
                let mut value = args.value()?;
                if value == "to" {
                    value = args.value()?;
                }
                let addr = super::get_addr(value, family, "as")?;
                if family == Family::Unspec {
                    family = Family::of(addr);
                }
                nat = true;
            }
            Some((name, GetKw::Sport | GetKw::Dport)) => {
                let value = args.value()?;
                parse::get_unsigned(value)
                    .filter(|&p| p <= 0xffff)
                    .ok_or_else(|| invarg(&format!("invalid {name}\n"), value))?;
            }
            Some((_, GetKw::Ipproto)) => {
                let value = args.value()?;
                let decimal = || {
                    let all_digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|&p| all_digits && p <= 255)
                };
                let number = PROTOCOLS
                    .iter()
                    .find(|(_, names)| names.contains(&value))
                    .map(|&(n, _)| n)
                    .or_else(decimal)
                    .ok_or_else(|| invarg("Invalid \"ipproto\" value\n", value))?;
                // Sent in one byte.
                ipproto = Some(number.to_le_bytes()[0]);
            }
            None => {
                let value = if word == "to" { args.value()? } else { word };
                if super::matches(value, "help") {
                    return Err(usage(ROUTE_USAGE));
                }
                let parsed = get_prefix(value, family)?;
                // iproute2 warns of a prefix and asks for the address alone.
                let (addr, _) = prefix_of(parsed, family);
                if family == Family::Unspec && matches!(parsed, Parsed::Addr { .. }) {
                    family = Family::of(addr);
                }
                dst = Some(addr);
            }
        }
    }
    let dst = dst.ok_or_else(|| CmdError::new(1, "need at least a destination address"))?;
    let find = |dev: Option<&str>| match dev {
        Some(d) => find_link(d).map(Some).ok_or_else(|| cannot_find(d)),
        None => Ok(None),
    };
    let iif = find(iif)?;
    let oif = find(oif)?;
    // `default` with no family chosen asks IPv4's.
    let dst = if dst.is_unspecified() && family != Family::Inet6 {
        zero(Family::Inet)
    } else {
        dst
    };
    Ok(GetReq {
        dst,
        from,
        iif,
        oif,
        mark,
        uid,
        connected,
        fibmatch,
        nat,
        ipproto,
        from_default,
    })
}

/// An address argument and its prefix length (the host's when none was
/// written; 0 for `default`, `any`, `all`).
fn prefix_of(parsed: Parsed, family: Family) -> (IpAddr, u8) {
    match parsed {
        Parsed::Addr { addr, prefix_len } => (addr, prefix_len.unwrap_or(host_len(addr))),
        Parsed::Default | Parsed::Any => (zero(family), 0),
    }
}

/// The IPv4 cache flags Linux reports (`RTCF_*`), in iproute2's order.
fn cache_flags(answer: &RouteAnswer) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if answer.local {
        flags.push("local");
    }
    match answer.kind {
        RouteType::Multicast => flags.push("mc"),
        RouteType::Broadcast => flags.push("brd"),
        _ => {}
    }
    flags
}

/// The route flags iproute2 prints: Linux's multicast cache flag is the bit
/// iproute2 names `rt_offload_failed`.
fn route_flags(req: &GetReq, answer: &RouteAnswer) -> Vec<&'static str> {
    let v4_multicast = answer.kind == RouteType::Multicast && req.dst.is_ipv4();
    if v4_multicast {
        vec!["rt_offload_failed"]
    } else {
        Vec::new()
    }
}

/// The gateway as iproute2 prints it: an IPv6 one of an IPv4 route with
/// its family.
fn via_text(dst: IpAddr, via: IpAddr) -> String {
    if via.is_ipv4() == dst.is_ipv4() {
        format_addr(via)
    } else {
        format!("inet6 {}", format_addr(via))
    }
}

/// The uid Linux reports: none for a packet coming in; in the reference's
/// user namespace, where only root is mapped, none for any other user.
fn shown_uid(req: &GetReq) -> Option<u32> {
    (req.iif.is_none() && req.uid == 0).then_some(0)
}

/// The answer as iproute2 prints it without `-j`.
fn get_line(state: &State, req: &GetReq, a: &RouteAnswer, oneline: bool) -> String {
    let name = |dev: u32| state.link(dev).name.clone();
    let mut fields = Vec::new();
    if a.kind != RouteType::Unicast {
        fields.push(a.kind.name().to_string());
    }
    fields.push(format_addr(req.dst));
    let from = req.from.map(|(f, _)| f).filter(|f| !f.is_unspecified());
    if req.dst.is_ipv4() {
        if let Some(f) = from {
            fields.push(format!("from {}", format_addr(f)));
        }
        if let Some(via) = a.via {
            fields.push(format!("via {}", via_text(req.dst, via)));
        }
        fields.push(format!("dev {}", name(a.dev)));
        if let Some(src) = a.src {
            fields.push(format!("src {}", format_addr(src)));
        }
        fields.extend(route_flags(req, a).iter().map(|f| f.to_string()));
        if req.mark != 0 {
            // iproute2 prints marks from 16 on in hexadecimal.
            fields.push(if req.mark < 16 {
                format!("mark {}", req.mark)
            } else {
                format!("mark 0x{:x}", req.mark)
            });
        }
        if let Some(uid) = shown_uid(req) {
            fields.push(format!("uid {uid}"));
        }
        let mut line: String = fields.iter().map(|f| format!("{f} ")).collect();
        line.push_str(if oneline { "\\" } else { "\n" });
        line.push_str("    cache ");
        let flags = cache_flags(a);
        if !flags.is_empty() {
            line.push_str(&format!("<{}> ", flags.join(",")));
        }
        if let Some(iif) = req.iif {
            line.push_str(&format!("iif {} ", name(iif)));
        }
        line.push('\n');
        return line;
    }
    let shown_from = from.unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
    fields.push(format!("from {}", format_addr(shown_from)));
    if let Some(via) = a.via {
        fields.push(format!("via {}", format_addr(via)));
    }
    fields.push(format!("dev {}", name(a.dev)));
    let route = a.route;
    if let Some(table) = route.map(|r| r.table).filter(|&t| t != MAIN) {
        fields.push(format!("table {}", show::table_name(table)));
    }
    if let Some(proto) = route.and_then(|r| show::proto_name(r.proto)) {
        fields.push(format!("proto {proto}"));
    }
    if let Some(src) = a.src {
        fields.push(format!("src {}", format_addr(src)));
    }
    let metric = route.map_or(0, |r| r.metric);
    fields.push(format!("metric {metric}"));
    if let Some(iif) = req.iif {
        fields.push(format!("iif {}", name(iif)));
    }
    let pref = route.map_or("medium", |r| state.route_times(&r).pref.name());
    fields.push(format!("pref {pref}"));
    fields.join(" ") + "\n"
}

/// The answer as iproute2 prints it with `-j`.
fn get_json(state: &State, req: &GetReq, a: &RouteAnswer) -> String {
    let name = |dev: u32| show::json_str(&state.link(dev).name);
    let mut fields = Vec::new();
    if a.kind != RouteType::Unicast {
        fields.push(format!("\"type\":\"{}\"", a.kind.name()));
    }
    fields.push(format!("\"dst\":\"{}\"", format_addr(req.dst)));
    let from = req.from.map(|(f, _)| f).filter(|f| !f.is_unspecified());
    let ipv4 = req.dst.is_ipv4();
    let shown_from = if ipv4 {
        from
    } else {
        Some(from.unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)))
    };
    if let Some(f) = shown_from {
        fields.push(format!("\"from\":\"{}\"", format_addr(f)));
    }
    match a.via {
        Some(via) if via.is_ipv4() != ipv4 => fields.push(format!(
            "\"via\":{{\"family\":\"inet6\",\"host\":\"{}\"}}",
            format_addr(via)
        )),
        Some(via) => fields.push(format!("\"gateway\":\"{}\"", format_addr(via))),
        None => {}
    }
    fields.push(format!("\"dev\":{}", name(a.dev)));
    if !ipv4 {
        if let Some(table) = a.route.map(|r| r.table).filter(|&t| t != MAIN) {
            fields.push(format!("\"table\":\"{}\"", show::table_name(table)));
        }
        if let Some(proto) = a.route.and_then(|r| show::proto_name(r.proto)) {
            fields.push(format!("\"protocol\":\"{proto}\""));
        }
    }
    if let Some(src) = a.src {
        fields.push(format!("\"prefsrc\":\"{}\"", format_addr(src)));
    }
    if !ipv4 {
        fields.push(format!("\"metric\":{}", a.route.map_or(0, |r| r.metric)));
    }
    let flags: Vec<String> = route_flags(req, a)
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect();
    fields.push(format!("\"flags\":[{}]", flags.join(",")));
    if ipv4 {
        if req.mark != 0 {
            fields.push(format!("\"mark\":{}", req.mark));
        }
        if let Some(uid) = shown_uid(req) {
            fields.push(format!("\"uid\":{uid}"));
        }
        let cache: Vec<String> = cache_flags(a).iter().map(|f| format!("\"{f}\"")).collect();
        fields.push(format!("\"cache\":[{}]", cache.join(",")));
        if let Some(iif) = req.iif {
            fields.push(format!("\"iif\":{}", name(iif)));
        }
    } else {
        if let Some(iif) = req.iif {
            fields.push(format!("\"iif\":{}", name(iif)));
        }
        let pref = a
            .route
            .map_or("medium", |r| state.route_times(&r).pref.name());
        fields.push(format!("\"pref\":\"{pref}\""));
    }
    show::objects_json(&[format!("{{{}}}", fields.join(","))])
}

/// `fibmatch`: the table entry that matched, as `ip route show` prints it
/// (a multipath route whole), the table named only for IPv6's local table
/// (Linux looks IPv4's local and main tables up as one).
fn fibmatch(state: &State, a: &RouteAnswer, json: bool, oneline: bool) -> Result<String, CmdError> {
    // Linux answers without a table entry (`0.0.0.0`, an output link with
    // no route through it) but has none to show.
    let Some(mut r) = a.route else {
        return Err(no_route(NoRoute::HostUnreachable));
    };
    if a.kind == RouteType::Multicast && r.kind == RouteType::Unicast {
        // Linux types the entry with the destination's type.
        r.kind = RouteType::Multicast;
    }
    let group: Vec<_> = state
        .route_groups()
        .into_iter()
        .map(|g| g.iter().map(|&i| state.routes[i]).collect::<Vec<_>>())
        .find(|g| g.contains(&r) && g.len() > 1)
        .unwrap_or_else(|| vec![r]);
    let show = show::RouteShow {
        dev: true,
        metric: true,
        proto: true,
        table: r.dst.is_ipv6(),
        oneline,
    };
    if json {
        return Ok(show::objects_json(&[show::route_json(state, &group, show)]));
    }
    Ok(show::route_line(state, &group, show))
}

#[cfg(test)]
mod tests {
    use super::super::incomplete;
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn parse(s: &str) -> Result<GetReq, CmdError> {
        parse_get(|d| (d == "vde0").then_some(2), Family::Unspec, &words(s))
    }

    #[test]
    fn the_last_destination_wins_and_keywords_abbreviate_in_iproute2_order() {
        let req = parse("8.8.8.8 to 8.8.4.4 f 10.0.0.1 c fib o vde0").unwrap();
        assert_eq!(req.dst, "8.8.4.4".parse::<IpAddr>().unwrap());
        assert_eq!(req.from, Some(("10.0.0.1".parse().unwrap(), 32)));
        assert!(req.connected && req.fibmatch);
        assert_eq!(req.oif, Some(2));
        // `d` is `dsfield`, before `dport` and `dev`.
        assert_eq!(parse("8.8.8.8 d zz").err().unwrap().status(), 255);
    }

    #[test]
    fn a_missing_destination_or_device_is_iproute2s_error() {
        let e = parse("mark 3").err().unwrap();
        assert_eq!(
            (e.status(), e.message()),
            (1, "need at least a destination address")
        );
        let e = parse("8.8.8.8 oif eth9").err().unwrap();
        assert_eq!(
            (e.status(), e.message()),
            (1, "Cannot find device \"eth9\"")
        );
        assert_eq!(parse("8.8.8.8 uid").err().unwrap(), incomplete());
    }
}
