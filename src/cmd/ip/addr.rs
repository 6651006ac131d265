//! `ip address`: listing and flushing addresses, and `ip addr
//! add|replace|change|del` in three steps: [`parse_addr`] reads the words,
//! [`addr_request`] and the model's `check_addr` (or `check_addr_replace`)
//! check the request, the model's `apply_addr` applies it.

use super::{
    cannot_find, duparg, duparg2, get_addr, get_prefix, invarg, list_filter, matches, no_dev_given,
    pick, unknown_command, unsupported, usage, zero, Args, Cmd, Exact, Match, Prefix, ADDR_USAGE,
    IFNAMSIZ,
};
use crate::cmd::config::{self, kernel, rtnl, AddrAttrs, AddrReq, Lifetime, State};
use crate::cmd::error::CmdError;
use crate::cmd::parse::{self, Family, Parsed};
use crate::cmd::show::{self, LinkFilter, Style};
use std::net::{IpAddr, Ipv4Addr};

const ADDR_CMDS: &[(&str, Match, Cmd)] = &[
    ("add", Prefix, Cmd::Add),
    ("change", Prefix, Cmd::Change),
    ("chg", Exact, Cmd::Change),
    ("replace", Prefix, Cmd::Replace),
    ("delete", Prefix, Cmd::Delete),
    ("list", Prefix, Cmd::Show),
    ("show", Prefix, Cmd::Show),
    ("lst", Prefix, Cmd::Show),
    ("flush", Prefix, Cmd::Flush),
    ("save", Prefix, Cmd::Unsupported),
    ("showdump", Prefix, Cmd::Unsupported),
    ("restore", Prefix, Cmd::Unsupported),
    ("help", Prefix, Cmd::Help),
];

pub(super) fn address(
    state: &mut State,
    family: Family,
    words: &[String],
    style: Style,
) -> Result<String, CmdError> {
    let Some(cmd) = words.first() else {
        return Ok(show::addrs(state, family, LinkFilter::default(), style));
    };
    let rest = &words[1..];
    match pick(cmd, ADDR_CMDS) {
        Some((_, cmd @ (Cmd::Add | Cmd::Replace | Cmd::Change | Cmd::Delete))) => {
            addr_modify(state, family, rest, cmd).map(|()| String::new())
        }
        Some((_, Cmd::Show)) => {
            let filter = list_filter(state, rest, ADDR_USAGE)?;
            Ok(show::addrs(state, family, filter, style))
        }
        Some((_, Cmd::Flush)) => {
            if rest.is_empty() {
                return Err(CmdError::new(1, "Flush requires arguments."));
            }
            if family == Family::Packet {
                return Err(CmdError::new(1, "Cannot flush link addresses."));
            }
            let filter = list_filter(state, rest, ADDR_USAGE)?;
            let (ipv4, ipv6) = match family {
                Family::Unspec => (true, true),
                Family::Inet => (true, false),
                Family::Inet6 => (false, true),
                Family::Packet | Family::Other(_) => (false, false),
            };
            // iproute2 checks "up" against links, which a flush never looks at: it
            // flushes down links too (oracle).
            let selected: Vec<u32> = state
                .links
                .iter()
                .filter(|l| filter.dev.is_none_or(|d| d == l.index))
                .map(|l| l.index)
                .collect();
            for index in selected {
                state.flush_addrs(index, ipv4, ipv6);
            }
            Ok(String::new())
        }
        Some((_, Cmd::Help)) => Err(usage(ADDR_USAGE)),
        Some((name, _)) => Err(unsupported(&format!("\"ip address {name}\""))),
        None => Err(unknown_command(cmd, "address")),
    }
}

#[derive(Clone, Copy)]
enum AddrKw {
    Broadcast,
    Dev,
    Label,
    /// An address flag the kernel sets itself: iproute2 warns and ignores it.
    ReadOnlyFlag,
    /// An address flag only IPv6 addresses take (iproute2 warns and ignores it for
    /// others); the stack does not implement it.
    Ipv6Flag,
    /// `valid_lft` (true) or `preferred_lft` (false): `forever` or seconds.
    Lifetime(bool),
    /// `mngtmpaddr`: shown, with no other effect (the stack makes no
    /// temporary addresses).
    Mngtmpaddr,
    /// `nodad`: no duplicate address detection for the address (see
    /// `config/dad.rs`).
    NoDad,
    /// `scope`: an IPv4 address's scope (an IPv6 address has its own).
    Scope,
    /// `metric`, `priority`, `preference`: the prefix route's metric.
    Metric,
    /// `anycast ADDR`: checked, then ignored, as Linux ignores it.
    Anycast,
    /// `noprefixroute`: no prefix route for the address.
    NoPrefixRoute,
    /// `autojoin`: a multicast address whose group the link joins; the stack
    /// refuses it (after iproute2's own check).
    Autojoin,
    /// `peer`/`remote PREFIX`: a point-to-point address, which the stack
    /// refuses (after iproute2 reads the prefix).
    Peer,
}

/// The keywords of `ip addr add|del` in iproute2 6.1's order; any other word is
/// the address.
const ADDR_KEYWORDS: &[(&str, Match, AddrKw)] = &[
    ("peer", Exact, AddrKw::Peer),
    ("remote", Exact, AddrKw::Peer),
    ("broadcast", Prefix, AddrKw::Broadcast),
    ("brd", Exact, AddrKw::Broadcast),
    ("anycast", Exact, AddrKw::Anycast),
    ("scope", Exact, AddrKw::Scope),
    ("dev", Exact, AddrKw::Dev),
    ("label", Exact, AddrKw::Label),
    ("metric", Prefix, AddrKw::Metric),
    ("priority", Prefix, AddrKw::Metric),
    ("preference", Prefix, AddrKw::Metric),
    ("valid_lft", Prefix, AddrKw::Lifetime(true)),
    ("preferred_lft", Prefix, AddrKw::Lifetime(false)),
    ("secondary", Exact, AddrKw::ReadOnlyFlag),
    ("temporary", Exact, AddrKw::ReadOnlyFlag),
    ("nodad", Exact, AddrKw::NoDad),
    ("optimistic", Exact, AddrKw::Ipv6Flag),
    ("dadfailed", Exact, AddrKw::ReadOnlyFlag),
    ("home", Exact, AddrKw::Ipv6Flag),
    ("deprecated", Exact, AddrKw::ReadOnlyFlag),
    ("tentative", Exact, AddrKw::ReadOnlyFlag),
    ("permanent", Exact, AddrKw::ReadOnlyFlag),
    ("mngtmpaddr", Exact, AddrKw::Mngtmpaddr),
    ("noprefixroute", Exact, AddrKw::NoPrefixRoute),
    ("autojoin", Exact, AddrKw::Autojoin),
    ("stable-privacy", Exact, AddrKw::ReadOnlyFlag),
];

/// What `brd` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Brd {
    /// `+`: all host bits set.
    Plus,
    /// `-`: all host bits clear.
    Minus,
    Addr(IpAddr),
}

/// An address scope as iproute2 reads it (`rt_scopes`' names, or a number).
fn addr_scope(value: &str) -> Result<u8, CmdError> {
    const SCOPES: [(&str, u8); 5] = [
        ("global", 0),
        ("site", 200),
        ("link", 253),
        ("host", 254),
        ("nowhere", 255),
    ];
    SCOPES
        .iter()
        .find(|(name, _)| *name == value)
        .map(|&(_, n)| n)
        .or_else(|| {
            parse::get_unsigned(value)
                .filter(|&n| n <= 255)
                .map(|n| n as u8)
        })
        .ok_or_else(|| invarg("invalid scope value.", value))
}

/// `ip addr add|replace|change|del ADDR[/LEN] [brd +|-|ADDR] [label NAME] dev
/// DEV`.
///
/// iproute2 prints warnings on the way; they reach the caller only when the
/// command then fails (a successful command's standard error is not kept), ahead
/// of the error as on the terminal.
fn addr_modify(
    state: &mut State,
    family: Family,
    words: &[String],
    cmd: Cmd,
) -> Result<(), CmdError> {
    let delete = matches!(cmd, Cmd::Delete);
    let mut warnings = String::new();
    let mut steps = || {
        let args = parse_addr(|dev| state.find(dev), family, words, delete, &mut warnings)?;
        let req = addr_request(&args, delete)?;
        let label = args.label.as_deref();
        // The kernel's IPv4 policy holds a label to a device name's size; IPv6
        // ignores labels.
        if args.family == Family::Inet && label.is_some_and(|l| l.len() >= IFNAMSIZ) {
            return Err(kernel("Attribute failed policy validation."));
        }
        let change = match cmd {
            Cmd::Replace | Cmd::Change => state.check_addr_replace(&req)?,
            _ => state.check_addr(&req)?,
        };
        if let Some(label) = label.filter(|_| delete) {
            state.check_label(&change, label)?;
        }
        if let Some(label) = label.filter(|_| !delete) {
            state.apply_label(&change, label);
        }
        let new_v6 = match req {
            AddrReq::AddV6 { dev, addr, .. } => {
                let present = state.link(dev).addrs.iter().any(|a| a.addr == addr);
                (!present).then_some((dev, addr))
            }
            _ => None,
        };
        state.apply_addr(change);
        // A new address takes the lifetimes given; one replaced or changed
        // takes them, or forever, as the kernel does.
        let given = args.lifetimes.is_some() || args.mngtmpaddr;
        if !delete && (given || matches!(cmd, Cmd::Replace | Cmd::Change)) {
            let (valid, preferred) = args.lifetimes.unwrap_or((None, None));
            state.set_requested_lifetimes(&req, valid, preferred, args.mngtmpaddr);
        }
        if let Some((dev, addr)) = new_v6 {
            state.new_v6_addr(dev, addr, args.nodad);
        }
        Ok(())
    };
    steps().map_err(|e: CmdError| CmdError::new(e.status(), format!("{warnings}{}", e.message())))
}

/// What `ip addr add|del` read from its words: what iproute2 sends the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddrArgs {
    pub(crate) dev: u32,
    /// The family chosen, or else the first address's.
    pub(crate) family: Family,
    /// The address given, if any.
    pub(crate) local: Option<Parsed>,
    /// Whether a zero-length address was given (`any`, or `default` before the
    /// family is known): iproute2 does not count it as an address, but still
    /// sends it, and the kernel refuses it.
    pub(crate) zero_length: bool,
    pub(crate) brd: Option<Brd>,
    /// The label given (the last one, as the kernel reads it).
    pub(crate) label: Option<String>,
    /// `valid_lft` and `preferred_lft`, if either was given (`None`:
    /// forever).
    pub(crate) lifetimes: Option<(Lifetime, Lifetime)>,
    /// `mngtmpaddr` (IPv6 only).
    pub(crate) mngtmpaddr: bool,
    /// `nodad` (IPv6 only): no duplicate address detection.
    pub(crate) nodad: bool,
    /// `scope`, `metric`, `noprefixroute`.
    pub(crate) attrs: AddrAttrs,
}

/// The parse step of `ip addr add|del` (and of the refused `change|replace`):
/// the words, read as iproute2 reads them, into what it would send the kernel,
/// or iproute2's error; its warnings on the way go to `warnings`. `delete`: the
/// words are those of `ip addr del`. `find_link` gives the index of a link by
/// name, the only thing iproute2 asks before sending.
pub(crate) fn parse_addr(
    find_link: impl Fn(&str) -> Option<u32>,
    family: Family,
    words: &[String],
    delete: bool,
    warnings: &mut String,
) -> Result<AddrArgs, CmdError> {
    let mut args = Args::new(words);
    let mut family = family;
    let mut local = LocalArg::default();
    let mut dev: Option<&str> = None;
    let mut brd: Option<Brd> = None;
    let mut label: Option<&str> = None;
    let mut valid_lft: Option<Lifetime> = None;
    let mut preferred_lft: Option<Lifetime> = None;
    let mut mngtmpaddr = false;
    let mut nodad = false;
    let mut attrs = AddrAttrs::default();
    let mut autojoin = false;
    // A keyword the stack cannot honour, refused once iproute2's own checks pass.
    let mut refused: Option<&str> = None;
    while let Some(word) = args.next() {
        match pick(word, ADDR_KEYWORDS) {
            Some((_, AddrKw::Broadcast)) => {
                let value = args.value()?;
                if brd.is_some() {
                    return Err(duparg("broadcast", value));
                }
                brd = Some(addr_brd(value, &mut family)?);
            }
            Some((_, AddrKw::Dev)) => dev = Some(args.value()?),
            Some((_, AddrKw::Label)) => label = Some(args.value()?),
            Some((_, AddrKw::Lifetime(valid))) => {
                let name = if valid { "valid_lft" } else { "preferred_lft" };
                let value = args.value()?;
                let lifetime = match value {
                    "forever" => None,
                    _ => Some(
                        parse::get_u32(value)
                            .ok_or_else(|| invarg(&format!("{name} value"), value))?,
                    ),
                };
                if valid {
                    valid_lft = Some(lifetime);
                } else {
                    preferred_lft = Some(lifetime);
                }
            }
            Some((name, AddrKw::ReadOnlyFlag)) => {
                warnings.push_str(&format!(
                    "Warning: {name} option is not mutable from userspace\n"
                ));
            }
            Some((name, AddrKw::Ipv6Flag | AddrKw::NoDad | AddrKw::Mngtmpaddr))
                if family != Family::Inet6 =>
            {
                warnings.push_str(&format!(
                    "Warning: {name} option can be set only for IPv6 addresses\n"
                ));
            }
            Some((name, AddrKw::Ipv6Flag)) => {
                refused.get_or_insert(name);
            }
            Some((_, AddrKw::NoDad)) => nodad = true,
            Some((_, AddrKw::Mngtmpaddr)) => mngtmpaddr = true,
            Some((_, AddrKw::Scope)) => attrs.scope = Some(addr_scope(args.value()?)?),
            Some((_, AddrKw::Metric)) => {
                let value = args.value()?;
                attrs.metric = parse::get_u32(value)
                    .ok_or_else(|| invarg("\"metric\" value is invalid\n", value))?;
            }
            Some((_, AddrKw::Anycast)) => {
                get_addr(args.value()?, family, "anycast")?;
            }
            Some((_, AddrKw::NoPrefixRoute)) => attrs.noprefixroute = true,
            Some((_, AddrKw::Autojoin)) => autojoin = true,
            Some((name, AddrKw::Peer)) => {
                get_prefix(args.value()?, family)?;
                refused.get_or_insert(name);
            }
            None => local.read(&mut args, word, &mut family)?,
        }
    }
    let dev = dev.ok_or_else(|| no_dev_given(1))?;
    if !delete && matches!(brd, Some(Brd::Plus | Brd::Minus)) && family != Family::Inet {
        return Err(CmdError::new(
            1,
            "Broadcast can be set only for IPv4 addresses",
        ));
    }
    if let Some((
        Parsed::Addr {
            addr,
            prefix_len: None,
        },
        word,
    )) = local.last
    {
        if delete && addr.is_ipv4() {
            warnings.push_str(&wildcard_warning(word));
        }
    }
    let dev = find_link(dev).ok_or_else(|| cannot_find(dev))?;
    let lifetimes = (valid_lft.is_some() || preferred_lft.is_some())
        .then(|| (valid_lft.flatten(), preferred_lft.flatten()));
    if let Some((valid, preferred)) = lifetimes {
        // iproute2's own checks, before it asks the kernel.
        if valid == Some(0) {
            return Err(CmdError::new(1, "valid_lft is zero"));
        }
        let longer = match (valid, preferred) {
            (Some(v), Some(p)) => p > v,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if longer {
            return Err(CmdError::new(1, "preferred_lft is greater than valid_lft"));
        }
    }
    if autojoin {
        // iproute2's own check; the kernel would join the group of a
        // multicast one, which the stack does not do for an address.
        let multicast =
            matches!(local.last, Some((Parsed::Addr { addr, .. }, _)) if addr.is_multicast());
        if !multicast {
            return Err(CmdError::new(1, "autojoin needs multicast address"));
        }
        refused.get_or_insert("autojoin");
    }
    if let Some(name) = refused {
        return Err(unsupported(&format!("\"ip address ... {name}\"")));
    }
    Ok(AddrArgs {
        dev,
        family,
        local: local.last.map(|(parsed, _)| parsed),
        zero_length: local.zero_length,
        brd,
        label: label.map(str::to_string),
        lifetimes,
        mngtmpaddr,
        nodad,
        attrs,
    })
}

/// The address argument of `ip addr add|del`, as iproute2 keeps track of it.
#[derive(Default)]
struct LocalArg<'a> {
    /// The last address given, as parsed and as written.
    last: Option<(Parsed, &'a str)>,
    /// False while the only address given is a zero-length one, which iproute2
    /// lets another address replace.
    given: bool,
    /// Whether a zero-length address was given at all.
    zero_length: bool,
}

impl<'a> LocalArg<'a> {
    /// Reads `[local] ADDR[/LEN]` starting at `word`; the address sets the family
    /// if none is chosen yet.
    fn read(
        &mut self,
        args: &mut Args<'a>,
        word: &'a str,
        family: &mut Family,
    ) -> Result<(), CmdError> {
        let word = if word == "local" { args.value()? } else { word };
        if matches(word, "help") {
            return Err(usage(ADDR_USAGE));
        }
        if self.given {
            return Err(duparg2("local", word));
        }
        let parsed = get_prefix(word, *family)?;
        let zero = matches!(
            (parsed, *family),
            (Parsed::Any, _) | (Parsed::Default, Family::Unspec)
        );
        if let (Parsed::Addr { addr, .. }, Family::Unspec) = (parsed, *family) {
            *family = Family::of(addr);
        }
        self.zero_length |= zero;
        self.given = !zero;
        self.last = Some((parsed, word));
        Ok(())
    }
}

/// The value of `brd`; an address sets the family if none is chosen yet.
fn addr_brd(value: &str, family: &mut Family) -> Result<Brd, CmdError> {
    Ok(match value {
        "+" => Brd::Plus,
        "-" => Brd::Minus,
        _ => {
            let addr = get_addr(value, *family, "brd")?;
            if *family == Family::Unspec {
                *family = Family::of(addr);
            }
            Brd::Addr(addr)
        }
    })
}

/// What iproute2 says when `ip addr del` gets an IPv4 address without a length.
fn wildcard_warning(word: &str) -> String {
    format!(
        "Warning: Executing wildcard deletion to stay compatible with old scripts.\n\
         \x20        Explicitly specify the prefix length ({word}/32) to avoid this warning.\n\
         \x20        This special behaviour is likely to disappear in further releases,\n\
         \x20        fix your scripts!\n"
    )
}

/// The first part of the check step of `ip addr add|del`: what the kernel
/// refuses in the request itself before it looks at the model (no family, a
/// zero-length address, no address where one is needed), and otherwise the
/// request in the model's terms, with `brd +|-` worked out.
pub(crate) fn addr_request(args: &AddrArgs, delete: bool) -> Result<AddrReq, CmdError> {
    let dev = args.dev;
    let (addr, prefix_len) = match (args.local, args.family) {
        // A request without a family has nowhere to go.
        (_, Family::Unspec | Family::Packet | Family::Other(_)) => {
            return Err(rtnl("Operation not supported"));
        }
        _ if args.zero_length => return Err(kernel("Attribute failed policy validation.")),
        (Some(Parsed::Addr { addr, prefix_len }), _) => (addr, prefix_len),
        (Some(_), _) => (zero(args.family), Some(0)),
        // Without an address, Linux deletes the device's first IPv4 address.
        (None, Family::Inet) if delete => return Ok(AddrReq::DelFirstV4 { dev }),
        (None, Family::Inet) => return Err(kernel("ipv4: Local address is not supplied.")),
        (None, Family::Inet6) => return Err(rtnl("Invalid argument")),
    };
    Ok(match (addr, delete) {
        (IpAddr::V4(addr), false) => {
            let prefix_len = prefix_len.unwrap_or(32);
            let mask = config::mask_v4(prefix_len);
            let brd = match args.brd {
                Some(Brd::Plus) if prefix_len <= 30 => {
                    Some(Ipv4Addr::from(u32::from(addr) | !mask))
                }
                Some(Brd::Minus) if prefix_len <= 30 => {
                    Some(Ipv4Addr::from(u32::from(addr) & mask))
                }
                Some(Brd::Addr(IpAddr::V4(b))) => Some(b),
                _ => None,
            };
            AddrReq::AddV4 {
                dev,
                addr,
                prefix_len,
                brd,
                attrs: args.attrs,
            }
        }
        (IpAddr::V6(addr), false) => AddrReq::AddV6 {
            dev,
            addr,
            prefix_len: prefix_len.unwrap_or(128),
            attrs: args.attrs,
        },
        (IpAddr::V4(addr), true) => AddrReq::DelV4 {
            dev,
            addr,
            prefix_len,
        },
        (IpAddr::V6(addr), true) => AddrReq::DelV6 {
            dev,
            addr,
            prefix_len: prefix_len.unwrap_or(128),
        },
    })
}
