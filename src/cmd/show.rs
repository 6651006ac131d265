//! The text of `ip link show`, `ip addr show`, `ip route show` and `ip neigh
//! show`, plain or as the output options ask: `-s` (counters), `-br` (brief),
//! `-o` (one line per record), `-j` (JSON).
//!
//! Scripts and people compare this output with what Linux prints, so it follows
//! iproute2 6.1 byte for byte for everything the model holds, including its
//! trailing spaces (IPv4 route lines end in a space, IPv6 ones do not) and the
//! shorter link header iproute2 prints for `ip -6 addr` without a device.

use super::config::{
    AddrTimes, IfAddr, Lifetime, Link, LinkFlag, LinkKind, LinkStats, Neighbor, NeighborState,
    Route, RouteProto, RouteType, State, DEFAULT_TABLE, LOCAL_TABLE, MAIN_TABLE,
};
use super::parse::{format_addr, format_mac, Family};
use std::fmt::Write;
use std::net::IpAddr;

/// The queueing discipline Linux attaches to a tap device on its first up. It
/// depends on the host's `net.core.default_qdisc`; the oracle machine had
/// `pfifo_fast` (a systemd host would show `fq_codel`).
const DEFAULT_QDISC: &str = "pfifo_fast";

/// How to print a listing: iproute2's output options, and the counters `-s`
/// shows.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Style<'a> {
    /// `-s`: the links' counters.
    pub(super) stats: Option<&'a [(u32, LinkStats)]>,
    /// `-s -s`: the error counters' detail lines too (all zero: a virtual
    /// link has no length, CRC, frame, FIFO, overrun, abort, window or
    /// heartbeat errors, as a tap has none).
    pub(super) error_detail: bool,
    /// `-br`: a line per link, in columns.
    pub(super) brief: bool,
    /// `-o`: a line per record, its lines joined by `\`.
    pub(super) oneline: bool,
    /// `-j`: JSON.
    pub(super) json: bool,
}

/// Which links to list.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LinkFilter {
    pub(super) dev: Option<u32>,
    pub(super) up_only: bool,
}

impl LinkFilter {
    fn selects(&self, link: &Link) -> bool {
        self.dev.is_none_or(|d| d == link.index) && (!self.up_only || link.up)
    }
}

/// How much of the link header to print.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Header {
    /// `ip link`: with `mode DEFAULT`.
    Link,
    /// `ip addr`: the same without the mode.
    Addr,
    /// `ip -6 addr` without a device: the IPv6 link dump lacks qdisc and group.
    Short,
}

/// A link's flags in iproute2's order.
fn flags(state: &State, link: &Link) -> String {
    let settings = state.link_settings(link.index);
    let kind = match link.kind {
        LinkKind::Loopback => "LOOPBACK",
        LinkKind::Ether => "BROADCAST",
    };
    let optional = [
        (LinkFlag::Multicast, "MULTICAST"),
        (LinkFlag::AllMulti, "ALLMULTI"),
        (LinkFlag::Promisc, "PROMISC"),
        (LinkFlag::Dynamic, "DYNAMIC"),
        (LinkFlag::NoTrailers, "NOTRAILERS"),
    ];
    let mut names = vec![kind];
    names.extend(
        optional
            .iter()
            .filter(|(flag, _)| settings.has(*flag))
            .map(|&(_, name)| name),
    );
    if link.up {
        names.extend(["UP", "LOWER_UP"]);
    }
    names.join(",")
}

/// A link's group as iproute2 names it.
fn group_name(group: u32) -> String {
    match group {
        0 => "default".to_string(),
        n => n.to_string(),
    }
}

/// The queueing discipline `ip` shows on a link.
fn qdisc(state: &State, link: &Link) -> &'static str {
    match (state.ever_up(link.index), link.kind) {
        (false, _) => "noop",
        (true, LinkKind::Loopback) => "noqueue",
        (true, LinkKind::Ether) if state.link_settings(link.index).noqueue => "noqueue",
        (true, LinkKind::Ether) => DEFAULT_QDISC,
    }
}

fn header(out: &mut String, state: &State, link: &Link, style: Header) {
    // A tap with a carrier reports no operational state, hence UNKNOWN when up.
    let oper = if link.up { "UNKNOWN" } else { "DOWN" };
    let _ = write!(
        out,
        "{}: {}: <{}> mtu {} ",
        link.index,
        link.name,
        flags(state, link),
        link.mtu
    );
    let settings = state.link_settings(link.index);
    let qlen = match settings.qlen {
        0 => String::new(),
        n => format!("qlen {n}"),
    };
    if style == Header::Short {
        let _ = writeln!(out, "state {oper} {qlen}");
        return;
    }
    let mode = if style == Header::Link {
        "mode DEFAULT "
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "qdisc {} state {oper} {mode}group {} {qlen}",
        qdisc(state, link),
        group_name(settings.group)
    );
}

/// The link-layer line, and (`ip link` only) the alias's if the link has one.
fn link_layer(out: &mut String, state: &State, link: &Link, with_alias: bool) {
    let (kind, brd) = match link.kind {
        LinkKind::Loopback => ("loopback", "00:00:00:00:00:00"),
        LinkKind::Ether => ("ether", "ff:ff:ff:ff:ff:ff"),
    };
    let _ = writeln!(out, "    link/{kind} {} brd {brd}", format_mac(&link.mac));
    if let Some(alias) = state
        .link_settings(link.index)
        .alias
        .as_ref()
        .filter(|_| with_alias)
    {
        let _ = writeln!(out, "    alias {alias}");
    }
}

/// An IPv4 address's scope as iproute2 names it (`rt_scopes`), or its number.
fn v4_scope_name(scope: u8) -> String {
    match scope {
        0 => "global".to_string(),
        200 => "site".to_string(),
        253 => "link".to_string(),
        254 => "host".to_string(),
        255 => "nowhere".to_string(),
        n => n.to_string(),
    }
}

fn v6_scope_name(addr: IpAddr) -> &'static str {
    let IpAddr::V6(a) = addr else { return "global" };
    let top = a.segments()[0] & 0xffc0;
    if a.is_loopback() {
        "host"
    } else if top == 0xfe80 {
        "link"
    } else if top == 0xfec0 {
        "site"
    } else {
        "global"
    }
}

/// A lifetime as `ip addr` prints it.
fn lifetime_text(left: Lifetime) -> String {
    left.map_or_else(|| "forever".to_string(), |s| format!("{s}sec"))
}

/// The line of an address's lifetimes.
/// Whether an IPv6 address shows `tentative`: under duplicate address
/// detection or failed it, or on a down Ethernet link, where the detection has
/// not started (not `nodad` ones; lo does none).
fn shown_tentative(link: &Link, times: &AddrTimes) -> bool {
    times.tentative || (!link.up && link.kind == LinkKind::Ether && !times.nodad)
}

fn lifetimes_line(out: &mut String, times: &AddrTimes) {
    let _ = writeln!(
        out,
        "       valid_lft {} preferred_lft {}",
        lifetime_text(times.valid_left),
        lifetime_text(times.preferred_left)
    );
}

fn addresses(out: &mut String, state: &State, link: &Link, family: Family) {
    for (i, a) in link.addrs.iter().enumerate() {
        let times = state.addr_times(link.index, a);
        match a.addr {
            IpAddr::V4(_) if matches!(family, Family::Unspec | Family::Inet) => {
                let attrs = state.addr_attrs(link.index, a);
                let _ = write!(out, "    inet {}/{} ", format_addr(a.addr), a.prefix_len);
                if attrs.metric != 0 {
                    let _ = write!(out, "metric {} ", attrs.metric);
                }
                if let Some(brd) = state.broadcast(link.index, a) {
                    let _ = write!(out, "brd {brd} ");
                }
                let scope = state.v4_addr_scope(link.index, a);
                let _ = write!(out, "scope {} ", v4_scope_name(scope));
                if state.is_secondary(link.index, i) {
                    out.push_str("secondary ");
                }
                if times.deprecated {
                    out.push_str("deprecated ");
                }
                if times.dynamic {
                    out.push_str("dynamic ");
                }
                if attrs.noprefixroute {
                    out.push_str("noprefixroute ");
                }
                let _ = writeln!(out, "{}", state.label(link.index, a));
                lifetimes_line(out, &times);
            }
            IpAddr::V6(_) if matches!(family, Family::Unspec | Family::Inet6) => {
                let attrs = state.addr_attrs(link.index, a);
                let _ = write!(out, "    inet6 {}/{} ", format_addr(a.addr), a.prefix_len);
                if attrs.metric != 0 {
                    let _ = write!(out, "metric {} ", attrs.metric);
                }
                let _ = write!(out, "scope {} ", v6_scope_name(a.addr));
                // iproute2's order of the flags.
                if times.nodad {
                    out.push_str("nodad ");
                }
                if times.dadfailed {
                    out.push_str("dadfailed ");
                }
                if times.deprecated {
                    out.push_str("deprecated ");
                }
                if shown_tentative(link, &times) {
                    out.push_str("tentative ");
                }
                if times.dynamic {
                    out.push_str("dynamic ");
                }
                if times.mngtmpaddr {
                    out.push_str("mngtmpaddr ");
                }
                if attrs.noprefixroute {
                    out.push_str("noprefixroute ");
                }
                out.push('\n');
                lifetimes_line(out, &times);
            }
            _ => {}
        }
    }
}

/// `ip -s`: the two lines of counters per direction iproute2 prints for a link
/// (`print_stats64`: each column as wide as its header or its widest number,
/// the bytes' at least 10).
fn link_stats(out: &mut String, stats: &[(u32, LinkStats)], link: &Link, error_detail: bool) {
    let s = stats
        .iter()
        .find(|(dev, _)| *dev == link.index)
        .map(|(_, s)| *s)
        .unwrap_or_default();
    let digits = |n: u64| n.to_string().len();
    let mut cols = [10, 7, 6, 7, 7, 7];
    let rx = [s.rx_bytes, s.rx_packets, s.rx_errors, s.rx_dropped, 0, 0];
    let tx = [s.tx_bytes, s.tx_packets, s.tx_errors, s.tx_dropped, 0, 0];
    for (col, (r, t)) in cols.iter_mut().zip(rx.iter().zip(&tx)) {
        *col = (*col).max(digits(*r)).max(digits(*t));
    }
    let row = |out: &mut String, names: [&str; 6], values: [u64; 6]| {
        let _ = write!(out, "    {}: {:>w$}", names[0], "bytes", w = cols[0] - 4);
        for (name, w) in names[1..].iter().zip(&cols[1..]) {
            let _ = write!(out, " {name:>w$}");
        }
        // An empty "compressed" column, and the end of the line.
        out.push_str(&" ".repeat(11));
        out.push_str("\n    ");
        for (value, w) in values.iter().zip(&cols) {
            let _ = write!(out, "{value:>w$} ");
        }
        out.push('\n');
    };
    // `-s -s`: the error counters under the columns they detail.
    let errors = |out: &mut String, title: &str, names: [&str; 5]| {
        let _ = write!(out, "    {title:<w$}", w = cols[0]);
        for (name, w) in names.iter().zip(&cols[1..]) {
            let _ = write!(out, " {name:>w$}");
        }
        let _ = write!(out, "\n    {:w$} ", "", w = cols[0]);
        for w in &cols[1..] {
            let _ = write!(out, "{:>w$} ", 0);
        }
        out.push('\n');
    };
    row(
        out,
        ["RX", "packets", "errors", "dropped", "missed", "mcast"],
        rx,
    );
    if error_detail {
        errors(
            out,
            "RX errors:",
            ["length", "crc", "frame", "fifo", "overrun"],
        );
    }
    row(
        out,
        ["TX", "packets", "errors", "dropped", "carrier", "collsns"],
        tx,
    );
    if error_detail {
        errors(
            out,
            "TX errors:",
            ["aborted", "fifo", "window", "heartbt", "transns"],
        );
    }
}

/// The start of a `-br` line: the name and the operational state, in columns.
fn brief_start(out: &mut String, link: &Link) {
    let oper = if link.up { "UNKNOWN" } else { "DOWN" };
    let _ = write!(out, "{:<16} {oper:<14} ", link.name);
}

/// `-o`: each record on one line, the lines after its first joined to it by
/// `\` (they all start with spaces).
fn one_line(out: &str) -> String {
    out.replace("\n ", "\\ ")
}

/// `ip [-s|-br|-o] link show [DEV] [up]`.
pub(super) fn links(state: &State, filter: LinkFilter, style: Style) -> String {
    if style.json {
        return links_json(state, filter, style);
    }
    let mut out = String::new();
    for link in state.links.iter().filter(|l| filter.selects(l)) {
        if style.brief {
            brief_start(&mut out, link);
            let _ = writeln!(out, "{} <{}> ", format_mac(&link.mac), flags(state, link));
            continue;
        }
        header(&mut out, state, link, Header::Link);
        link_layer(&mut out, state, link, true);
        if let Some(stats) = style.stats {
            link_stats(&mut out, stats, link, style.error_detail);
        }
    }
    if style.oneline {
        return one_line(&out);
    }
    out
}

/// `ip -br addr`: a line per link, its addresses of `family` after the state.
fn addrs_brief(state: &State, family: Family, filter: LinkFilter) -> String {
    let mut out = String::new();
    for link in state.links.iter().filter(|l| filter.selects(l)) {
        let wanted = |a: &&IfAddr| match family {
            Family::Inet => a.addr.is_ipv4(),
            Family::Inet6 => a.addr.is_ipv6(),
            _ => true,
        };
        if matches!(family, Family::Inet | Family::Inet6) && !link.addrs.iter().any(|a| wanted(&a))
        {
            continue;
        }
        brief_start(&mut out, link);
        if !matches!(family, Family::Packet | Family::Other(_)) {
            for a in link.addrs.iter().filter(wanted) {
                let _ = write!(out, "{}/{} ", format_addr(a.addr), a.prefix_len);
                let metric = state.addr_attrs(link.index, a).metric;
                if metric != 0 {
                    let _ = write!(out, "metric {metric} ");
                }
            }
        }
        out.push('\n');
    }
    out
}

/// `ip -o addr`: a line per address, after its link's index and name.
fn addrs_oneline(state: &State, family: Family, filter: LinkFilter) -> String {
    let mut out = String::new();
    for link in state.links.iter().filter(|l| filter.selects(l)) {
        let mut lines = String::new();
        addresses(&mut lines, state, link, family);
        let lines: Vec<&str> = lines.lines().collect();
        // Each address is two lines: the address, then its lifetimes.
        for pair in lines.chunks(2) {
            let _ = writeln!(out, "{}: {}{}", link.index, link.name, pair.join("\\"));
        }
    }
    out
}

/// `ip [-4|-6|-0] [-s|-br|-o] addr show [DEV] [up]`.
pub(super) fn addrs(state: &State, family: Family, filter: LinkFilter, style: Style) -> String {
    if style.json {
        return addrs_json(state, family, filter, style);
    }
    if style.brief {
        return addrs_brief(state, family, filter);
    }
    if style.oneline && family != Family::Packet {
        return addrs_oneline(state, family, filter);
    }
    let stats = style.stats;
    let mut out = String::new();
    for link in state.links.iter().filter(|l| filter.selects(l)) {
        match family {
            Family::Unspec | Family::Packet => {
                header(&mut out, state, link, Header::Addr);
                link_layer(&mut out, state, link, false);
                if family == Family::Unspec {
                    addresses(&mut out, state, link, family);
                }
                if let Some(stats) = stats {
                    link_stats(&mut out, stats, link, style.error_detail);
                }
            }
            Family::Inet | Family::Inet6 => {
                let ipv4 = family == Family::Inet;
                // Links without an address of the family are left out.
                if !link.addrs.iter().any(|a| a.addr.is_ipv4() == ipv4) {
                    continue;
                }
                let style = if ipv4 || filter.dev.is_some() {
                    Header::Addr
                } else {
                    Header::Short
                };
                header(&mut out, state, link, style);
                addresses(&mut out, state, link, family);
            }
            Family::Other(_) => {}
        }
    }
    if style.oneline {
        return one_line(&out);
    }
    out
}

fn dst_text(r: &Route) -> String {
    let host_len = if r.dst.is_ipv4() { 32 } else { 128 };
    match r.prefix_len {
        0 => "default".to_string(),
        len if len == host_len => format_addr(r.dst),
        len => format!("{}/{len}", format_addr(r.dst)),
    }
}

/// What a route listing shows of each route.
#[derive(Clone, Copy)]
pub(super) struct RouteShow {
    /// The device and the metric: iproute2 leaves out what the listing is
    /// filtered by.
    pub(super) dev: bool,
    pub(super) metric: bool,
    /// The protocol (left out when the listing selects one).
    pub(super) proto: bool,
    /// The table of a route not in the main one (`table all`).
    pub(super) table: bool,
    /// `-o`.
    pub(super) oneline: bool,
}

/// The scope iproute2 prints for an IPv4 route (none for universe, the
/// scope of routes through a gateway and of reject routes): `host` for a
/// local destination, `link` for one reached on the link.
fn scope_name(r: &Route) -> Option<&'static str> {
    if r.dst.is_ipv6() || r.kind.rejects() {
        return None;
    }
    if r.kind == RouteType::Local {
        return Some("host");
    }
    (r.via.is_none() && !r.universe).then_some("link")
}

/// A table's name as iproute2 prints it (`rtnl_rttable_n2a`).
pub(super) fn table_name(table: u32) -> String {
    match table {
        LOCAL_TABLE => "local".to_string(),
        MAIN_TABLE => "main".to_string(),
        DEFAULT_TABLE => "default".to_string(),
        n => n.to_string(),
    }
}

/// The names of a stock `/etc/iproute2/rt_protos` (iproute2 6.1, Debian 12).
pub(super) const PROTOCOL_NAMES: &[(&str, u32)] = &[
    ("unspec", 0),
    ("redirect", 1),
    ("kernel", 2),
    ("boot", 3),
    ("static", 4),
    ("gated", 8),
    ("ra", 9),
    ("mrt", 10),
    ("zebra", 11),
    ("bird", 12),
    ("dnrouted", 13),
    ("xorp", 14),
    ("ntk", 15),
    ("dhcp", 16),
    ("keepalived", 18),
    ("babel", 42),
    ("openr", 99),
    ("bgp", 186),
    ("isis", 187),
    ("ospf", 188),
    ("rip", 189),
    ("eigrp", 192),
];

/// The protocol iproute2 names in a route (none for `boot`, which it
/// leaves out): its name in `rt_protos`, or its number.
pub(super) fn proto_name(proto: RouteProto) -> Option<String> {
    (proto != RouteProto::Boot).then(|| protocol_name(proto.number()))
}

/// A route protocol's name in `rt_protos`, or its number.
pub(super) fn protocol_name(n: u32) -> String {
    PROTOCOL_NAMES
        .iter()
        .find(|&&(_, number)| number == n)
        .map_or_else(|| n.to_string(), |(name, _)| name.to_string())
}

/// One route of `ip route show` (a multipath route's nexthops on lines of
/// their own, or after `\` with `-o`).
pub(super) fn route_line(state: &State, group: &[Route], show: RouteShow) -> String {
    let (show_dev, show_metric, oneline) = (show.dev, show.metric, show.oneline);
    let r = &group[0];
    let multipath = group.len() > 1;
    let mut fields = Vec::new();
    if r.kind != RouteType::Unicast {
        fields.push(r.kind.name().to_string());
    }
    fields.push(dst_text(r));
    if let Some(via) = r.via.filter(|_| !multipath) {
        // A gateway of the other family (RFC 5549) is named with its family.
        let family = if via.is_ipv4() == r.dst.is_ipv4() {
            ""
        } else {
            "inet6 "
        };
        fields.push(format!("via {family}{}", format_addr(via)));
    }
    if let Some(dev) = r.device().filter(|_| show_dev && !multipath) {
        fields.push(format!("dev {}", state.link(dev).name));
    }
    if show.table && r.table != MAIN_TABLE {
        fields.push(format!("table {}", table_name(r.table)));
    }
    if let Some(proto) = proto_name(r.proto).filter(|_| show.proto) {
        fields.push(format!("proto {proto}"));
    }
    let ipv4 = r.dst.is_ipv4();
    if let Some(scope) = scope_name(r) {
        fields.push(format!("scope {scope}"));
    }
    if let Some(src) = r.src {
        fields.push(format!("src {}", format_addr(src)));
    }
    // iproute2 leaves out a zero metric; IPv6 routes never have one.
    if show_metric && (!ipv4 || r.metric != 0) {
        fields.push(format!("metric {}", r.metric));
    }
    let times = state.route_times(r);
    if let Some(left) = times.expires_left {
        fields.push(format!("expires {left}sec"));
    }
    if let Some(mtu) = times.mtu {
        fields.push(format!("mtu {mtu}"));
    }
    if let Some(hops) = times.hoplimit {
        fields.push(format!("hoplimit {hops}"));
    }
    let mut line: String = fields.iter().map(|f| format!("{f} ")).collect();
    if !ipv4 {
        let _ = write!(line, "pref {}", times.pref.name());
    }
    for hop in group.iter().filter(|_| multipath) {
        line.push_str(if oneline { "\\" } else { "\n" });
        let via = hop.via.map(|v| format!("via {} ", format_addr(v)));
        let _ = write!(
            line,
            "\tnexthop {}dev {} weight {} ",
            via.unwrap_or_default(),
            state.link(hop.dev).name,
            hop.weight
        );
    }
    line.push('\n');
    line
}

/// One line of `ip neigh show`; `dev` is left out when the listing is filtered
/// by device. A `NONE` entry shows no address. `-br`: address, device and
/// hardware address in columns, no state.
pub(super) fn neighbor_line(state: &State, n: &Neighbor, show_dev: bool, brief: bool) -> String {
    let mac = n.mac.filter(|_| n.state != NeighborState::None);
    if brief {
        let mut line = format!("{:<39} ", format_addr(n.addr));
        if show_dev {
            let _ = write!(line, "{:<16} ", state.link(n.dev).name);
        }
        if let Some(mac) = mac {
            line.push_str(&format_mac(&mac));
        }
        line.push('\n');
        return line;
    }
    let mut line = format!("{} ", format_addr(n.addr));
    if show_dev {
        let _ = write!(line, "dev {} ", state.link(n.dev).name);
    }
    if let Some(mac) = mac {
        let _ = write!(line, "lladdr {} ", format_mac(&mac));
    }
    if n.state != NeighborState::None {
        let _ = write!(line, "{} ", n.state.name());
    }
    line.push('\n');
    line
}

// ---- -j: iproute2's JSON ----

/// A JSON string, escaped as iproute2's json writer does.
pub(super) fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The fields of a link object, in iproute2's order, up to `txqlen`; `short`:
/// the IPv6 dump's (no qdisc, no group), `mode`: `ip link`'s `linkmode`.
fn json_link_head(fields: &mut Vec<String>, state: &State, link: &Link, short: bool, mode: bool) {
    let oper = if link.up { "UNKNOWN" } else { "DOWN" };
    let flag_list: Vec<String> = flags(state, link).split(',').map(json_str).collect();
    fields.push(format!("\"ifindex\":{}", link.index));
    fields.push(format!("\"ifname\":{}", json_str(&link.name)));
    fields.push(format!("\"flags\":[{}]", flag_list.join(",")));
    fields.push(format!("\"mtu\":{}", link.mtu));
    let settings = state.link_settings(link.index);
    if !short {
        fields.push(format!("\"qdisc\":\"{}\"", qdisc(state, link)));
    }
    fields.push(format!("\"operstate\":\"{oper}\""));
    if mode {
        fields.push("\"linkmode\":\"DEFAULT\"".to_string());
    }
    if !short {
        fields.push(format!("\"group\":\"{}\"", group_name(settings.group)));
    }
    if settings.qlen != 0 {
        fields.push(format!("\"txqlen\":{}", settings.qlen));
    }
}

/// The link-layer fields of a link object, and (`ip link` only) its alias.
fn json_link_layer(fields: &mut Vec<String>, state: &State, link: &Link, with_alias: bool) {
    let (kind, brd) = match link.kind {
        LinkKind::Loopback => ("loopback", "00:00:00:00:00:00"),
        LinkKind::Ether => ("ether", "ff:ff:ff:ff:ff:ff"),
    };
    fields.push(format!("\"link_type\":\"{kind}\""));
    fields.push(format!("\"address\":\"{}\"", format_mac(&link.mac)));
    fields.push(format!("\"broadcast\":\"{brd}\""));
    if let Some(alias) = state
        .link_settings(link.index)
        .alias
        .as_ref()
        .filter(|_| with_alias)
    {
        fields.push(format!("\"ifalias\":{}", json_str(alias)));
    }
}

fn json_object(fields: &[String]) -> String {
    format!("{{{}}}", fields.join(","))
}

fn json_array(items: &[String]) -> String {
    format!("[{}]\n", items.join(","))
}

/// `ip -j -s`: a link's `stats64` object.
fn json_stats(fields: &mut Vec<String>, style: Style, link: &Link) {
    let Some(stats) = style.stats else { return };
    let s = stats
        .iter()
        .find(|(dev, _)| *dev == link.index)
        .map(|(_, s)| *s)
        .unwrap_or_default();
    let (rx_detail, tx_detail) = if style.error_detail {
        (
            ",\"length_errors\":0,\"crc_errors\":0,\"frame_errors\":0,\"fifo_errors\":0,\"missed_errors\":0",
            ",\"aborted_errors\":0,\"fifo_errors\":0,\"window_errors\":0,\"heartbeat_errors\":0,\"carrier_changes\":0",
        )
    } else {
        ("", "")
    };
    fields.push(format!(
        "\"stats64\":{{\"rx\":{{\"bytes\":{},\"packets\":{},\"errors\":{},\"dropped\":{},\"over_errors\":0,\"multicast\":0{rx_detail}}},\"tx\":{{\"bytes\":{},\"packets\":{},\"errors\":{},\"dropped\":{},\"carrier_errors\":0,\"collisions\":0{tx_detail}}}}}",
        s.rx_bytes, s.rx_packets, s.rx_errors, s.rx_dropped, s.tx_bytes, s.tx_packets, s.tx_errors, s.tx_dropped
    ));
}

/// `ip -j [-s|-br] link show`.
fn links_json(state: &State, filter: LinkFilter, style: Style) -> String {
    let items: Vec<String> = state
        .links
        .iter()
        .filter(|l| filter.selects(l))
        .map(|link| {
            let mut fields = Vec::new();
            if style.brief {
                let oper = if link.up { "UNKNOWN" } else { "DOWN" };
                let flag_list: Vec<String> = flags(state, link).split(',').map(json_str).collect();
                fields.push(format!("\"ifname\":{}", json_str(&link.name)));
                fields.push(format!("\"operstate\":\"{oper}\""));
                fields.push(format!("\"address\":\"{}\"", format_mac(&link.mac)));
                fields.push(format!("\"flags\":[{}]", flag_list.join(",")));
                return json_object(&fields);
            }
            json_link_head(&mut fields, state, link, false, true);
            json_link_layer(&mut fields, state, link, true);
            json_stats(&mut fields, style, link);
            json_object(&fields)
        })
        .collect();
    json_array(&items)
}

/// One address of `addr_info`.
fn json_addr(state: &State, link: &Link, i: usize) -> String {
    const FOREVER: u32 = u32::MAX;
    let a = link.addrs[i];
    let mut fields = vec![
        format!(
            "\"family\":\"{}\"",
            if a.addr.is_ipv4() { "inet" } else { "inet6" }
        ),
        format!("\"local\":\"{}\"", format_addr(a.addr)),
        format!("\"prefixlen\":{}", a.prefix_len),
    ];
    let attrs = state.addr_attrs(link.index, &a);
    if attrs.metric != 0 {
        fields.push(format!("\"metric\":{}", attrs.metric));
    }
    let noprefixroute = "\"noprefixroute\":true".to_string();
    let times = state.addr_times(link.index, &a);
    let dynamic = "\"dynamic\":true".to_string();
    if a.addr.is_ipv4() {
        if let Some(brd) = state.broadcast(link.index, &a) {
            fields.push(format!("\"broadcast\":\"{brd}\""));
        }
        let scope = state.v4_addr_scope(link.index, &a);
        fields.push(format!("\"scope\":\"{}\"", v4_scope_name(scope)));
        if state.is_secondary(link.index, i) {
            fields.push("\"secondary\":true".to_string());
        }
        if times.deprecated {
            fields.push("\"deprecated\":true".to_string());
        }
        if times.dynamic {
            fields.push(dynamic);
        }
        if attrs.noprefixroute {
            fields.push(noprefixroute.clone());
        }
        fields.push(format!(
            "\"label\":{}",
            json_str(state.label(link.index, &a))
        ));
    } else {
        fields.push(format!("\"scope\":\"{}\"", v6_scope_name(a.addr)));
        if times.nodad {
            fields.push("\"nodad\":true".to_string());
        }
        if times.dadfailed {
            fields.push("\"dadfailed\":true".to_string());
        }
        if times.deprecated {
            fields.push("\"deprecated\":true".to_string());
        }
        if shown_tentative(link, &times) {
            fields.push("\"tentative\":true".to_string());
        }
        if times.dynamic {
            fields.push(dynamic);
        }
        if times.mngtmpaddr {
            fields.push("\"mngtmpaddr\":true".to_string());
        }
        if attrs.noprefixroute {
            fields.push(noprefixroute);
        }
    }
    let valid = times.valid_left.unwrap_or(FOREVER);
    let preferred = times.preferred_left.unwrap_or(FOREVER);
    fields.push(format!("\"valid_life_time\":{valid}"));
    fields.push(format!("\"preferred_life_time\":{preferred}"));
    json_object(&fields)
}

/// `ip -j [-4|-6] [-s] addr show`.
fn addrs_json(state: &State, family: Family, filter: LinkFilter, style: Style) -> String {
    let mut items = Vec::new();
    for link in state.links.iter().filter(|l| filter.selects(l)) {
        let wanted = |a: &IfAddr| match family {
            Family::Inet => a.addr.is_ipv4(),
            Family::Inet6 => a.addr.is_ipv6(),
            Family::Unspec => true,
            Family::Packet | Family::Other(_) => false,
        };
        let one_family = matches!(family, Family::Inet | Family::Inet6);
        if one_family && !link.addrs.iter().any(wanted) {
            continue;
        }
        let mut fields = Vec::new();
        if style.brief {
            let oper = if link.up { "UNKNOWN" } else { "DOWN" };
            let addrs: Vec<String> = link
                .addrs
                .iter()
                .filter(|a| wanted(a))
                .map(|a| {
                    format!(
                        "{{\"local\":\"{}\",\"prefixlen\":{}}}",
                        format_addr(a.addr),
                        a.prefix_len
                    )
                })
                .collect();
            fields.push(format!("\"ifname\":{}", json_str(&link.name)));
            fields.push(format!("\"operstate\":\"{oper}\""));
            fields.push(format!("\"addr_info\":[{}]", addrs.join(",")));
            items.push(json_object(&fields));
            continue;
        }
        let short = family == Family::Inet6 && filter.dev.is_none();
        json_link_head(&mut fields, state, link, short, false);
        if !one_family {
            json_link_layer(&mut fields, state, link, false);
        }
        if family != Family::Packet {
            let addrs: Vec<String> = (0..link.addrs.len())
                .filter(|&i| wanted(&link.addrs[i]))
                .map(|i| json_addr(state, link, i))
                .collect();
            fields.push(format!("\"addr_info\":[{}]", addrs.join(",")));
        }
        if !one_family {
            json_stats(&mut fields, style, link);
        }
        items.push(json_object(&fields));
    }
    json_array(&items)
}

/// One route of `ip -j route show` (a multipath route's nexthops in
/// `nexthops`); `dev` is left out when the listing is filtered by device,
/// `metric` when by metric.
pub(super) fn route_json(state: &State, group: &[Route], show: RouteShow) -> String {
    let (show_dev, show_metric) = (show.dev, show.metric);
    let r = &group[0];
    let multipath = group.len() > 1;
    let ipv4 = r.dst.is_ipv4();
    let mut fields = Vec::new();
    if r.kind != RouteType::Unicast {
        fields.push(format!("\"type\":\"{}\"", r.kind.name()));
    }
    fields.push(format!("\"dst\":\"{}\"", dst_text(r)));
    match r.via.filter(|_| !multipath) {
        Some(via) if via.is_ipv4() != r.dst.is_ipv4() => fields.push(format!(
            "\"via\":{{\"family\":\"inet6\",\"host\":\"{}\"}}",
            format_addr(via)
        )),
        Some(via) => fields.push(format!("\"gateway\":\"{}\"", format_addr(via))),
        None => {}
    }
    if let Some(dev) = r.device().filter(|_| show_dev && !multipath) {
        fields.push(format!("\"dev\":{}", json_str(&state.link(dev).name)));
    }
    if show.table && r.table != MAIN_TABLE {
        fields.push(format!("\"table\":\"{}\"", table_name(r.table)));
    }
    if let Some(proto) = proto_name(r.proto).filter(|_| show.proto) {
        fields.push(format!("\"protocol\":\"{proto}\""));
    }
    if let Some(scope) = scope_name(r) {
        fields.push(format!("\"scope\":\"{scope}\""));
    }
    if let Some(src) = r.src {
        fields.push(format!("\"prefsrc\":\"{}\"", format_addr(src)));
    }
    if show_metric && (!ipv4 || r.metric != 0) {
        fields.push(format!("\"metric\":{}", r.metric));
    }
    fields.push("\"flags\":[]".to_string());
    let times = state.route_times(r);
    if let Some(left) = times.expires_left {
        fields.push(format!("\"expires\":{left}"));
    }
    let metrics: Vec<String> = [
        times.mtu.map(|mtu| format!("\"mtu\":{mtu}")),
        times.hoplimit.map(|hops| format!("\"hoplimit\":{hops}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !metrics.is_empty() {
        fields.push(format!("\"metrics\":[{{{}}}]", metrics.join(",")));
    }
    if !ipv4 {
        fields.push(format!("\"pref\":\"{}\"", times.pref.name()));
    }
    if multipath {
        let hops: Vec<String> = group
            .iter()
            .map(|hop| {
                let mut hop_fields = Vec::new();
                if let Some(via) = hop.via {
                    hop_fields.push(format!("\"gateway\":\"{}\"", format_addr(via)));
                }
                hop_fields.push(format!("\"dev\":{}", json_str(&state.link(hop.dev).name)));
                hop_fields.push(format!("\"weight\":{}", hop.weight));
                hop_fields.push("\"flags\":[]".to_string());
                json_object(&hop_fields)
            })
            .collect();
        fields.push(format!("\"nexthops\":[{}]", hops.join(",")));
    }
    json_object(&fields)
}

/// Objects (routes, neighbours) as one JSON array.
pub(super) fn objects_json(items: &[String]) -> String {
    json_array(items)
}

/// One entry of `ip -j neigh show`.
pub(super) fn neighbor_json(state: &State, n: &Neighbor, show_dev: bool) -> String {
    let mut fields = vec![format!("\"dst\":\"{}\"", format_addr(n.addr))];
    if show_dev {
        fields.push(format!("\"dev\":{}", json_str(&state.link(n.dev).name)));
    }
    if n.state != NeighborState::None {
        if let Some(mac) = n.mac {
            fields.push(format!("\"lladdr\":\"{}\"", format_mac(&mac)));
        }
        fields.push(format!("\"state\":[\"{}\"]", n.state.name()));
    }
    json_object(&fields)
}
