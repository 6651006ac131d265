//! The `ip` command line: options, objects, commands and their arguments.
//!
//! Applications pass the same strings they passed to the reference library, which
//! ran the real iproute2 6.1. So the parsing follows iproute2's, including its
//! abbreviation rule (a word may be any prefix of a keyword, the first keyword in
//! iproute2's order winning) for the keywords it abbreviates, its order of checks,
//! and its exit statuses: 255 for command-line errors (`exit(-1)`), 1 for errors
//! found before talking to the kernel, 2 when the kernel refuses. Whatever iproute2
//! accepts but the stack cannot do is refused with status 2 and a message that
//! says so, rather than silently ignored.

use super::config::{self, in_prefix, kernel, rtnl, AddrReq, Route, RouteProto, RouteReq, State};
use super::error::CmdError;
use super::parse::{self, get_integer, parse_lladdr, Family, LladdrError, Parsed};
use super::show::{self, LinkFilter};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The paths under which the reference found iproute2; `execv` needs a full path.
const IP_PATHS: [&str; 4] = ["/bin/ip", "/sbin/ip", "/usr/bin/ip", "/usr/sbin/ip"];

const IP_USAGE: &str = include_str!("usage/ip.txt");
const LINK_USAGE: &str = include_str!("usage/link.txt");
const ADDR_USAGE: &str = include_str!("usage/address.txt");
const ROUTE_USAGE: &str = include_str!("usage/route.txt");

/// How a word must relate to a keyword to select it.
#[derive(Clone, Copy)]
enum Match {
    /// The whole keyword (iproute2's `strcmp`).
    Exact,
    /// Any non-empty prefix of it (iproute2's `matches`).
    Prefix,
}

use Match::{Exact, Prefix};

/// iproute2's `matches()`: `word` is a non-empty prefix of `keyword`.
fn matches(word: &str, keyword: &str) -> bool {
    !word.is_empty() && keyword.starts_with(word)
}

/// Looks a word up in a keyword table, in table order (iproute2 tries its keywords
/// one after the other, so the first that fits wins). Returns the keyword's full
/// name and meaning.
fn pick<T: Copy>(word: &str, table: &[(&'static str, Match, T)]) -> Option<(&'static str, T)> {
    table.iter().find_map(|&(name, how, what)| {
        let fits = match how {
            Exact => word == name,
            Prefix => matches(word, name),
        };
        fits.then_some((name, what))
    })
}

// ---- errors shared by all commands (iproute2's utils) ----

fn usage(text: &str) -> CmdError {
    CmdError::new(255, text.trim_end_matches('\n'))
}

fn incomplete() -> CmdError {
    CmdError::new(255, "Command line is not complete. Try option \"help\"")
}

fn duparg(key: &str, arg: &str) -> CmdError {
    CmdError::new(
        255,
        format!("Error: duplicate \"{key}\": \"{arg}\" is the second value."),
    )
}

fn duparg2(key: &str, arg: &str) -> CmdError {
    CmdError::new(
        255,
        format!("Error: either \"{key}\" is duplicate, or \"{arg}\" is a garbage."),
    )
}

fn invarg(msg: &str, arg: &str) -> CmdError {
    CmdError::new(255, format!("Error: argument \"{arg}\" is wrong: {msg}"))
}

fn unsupported(what: &str) -> CmdError {
    CmdError::new(2, format!("Error: vdestack: {what} is not supported."))
}

/// Refuses a keyword iproute2 knows but the stack cannot honour. A keyword that
/// wants a value and has none is first a command-line error, as in iproute2.
fn refuse(args: &mut Args, takes_value: bool, what: &str) -> CmdError {
    if takes_value && args.next().is_none() {
        return incomplete();
    }
    unsupported(what)
}

fn no_dev_given(status: i32) -> CmdError {
    CmdError::new(
        status,
        "Not enough information: \"dev\" argument is required.",
    )
}

fn cannot_find(dev: &str) -> CmdError {
    CmdError::new(1, format!("Cannot find device \"{dev}\""))
}

/// `get_prefix`: an `ADDR[/LEN]` argument, or iproute2's error.
fn get_prefix(word: &str, family: Family) -> Result<Parsed, CmdError> {
    if family == Family::Packet {
        return Err(CmdError::new(
            1,
            format!("Error: \"{word}\" may be inet prefix, but it is not allowed in this context."),
        ));
    }
    parse::parse_prefix(word, family).ok_or_else(|| {
        CmdError::new(
            1,
            format!(
                "Error: {} prefix is expected rather than \"{word}\".",
                family.verbose_name()
            ),
        )
    })
}

/// `get_addr`: a plain address argument, or iproute2's error. The zero-length
/// forms (`default`, `any`) make no sense where the stack wants an address.
fn get_addr(word: &str, family: Family, what: &str) -> Result<IpAddr, CmdError> {
    if family == Family::Packet {
        // With -0 the word is read as a link-layer address, which never fits here.
        return Err(match parse_lladdr(word) {
            Err(LladdrError::Invalid(part)) => CmdError::new(
                1,
                format!(
                    "\"{part}\" is invalid lladdr.\nError: link address is expected rather than \"{word}\"."
                ),
            ),
            Ok(_) => unsupported(&format!("\"{what} {word}\"")),
        });
    }
    match parse::parse_addr(word, family) {
        Some(Parsed::Addr { addr, .. }) => Ok(addr),
        Some(Parsed::Default | Parsed::Any) => Err(unsupported(&format!("\"{what} {word}\""))),
        None => Err(CmdError::new(
            1,
            format!(
                "Error: {} address is expected rather than \"{word}\".",
                family.verbose_name()
            ),
        )),
    }
}

/// The words of a command, consumed left to right.
struct Args<'a> {
    words: &'a [String],
    at: usize,
}

impl<'a> Args<'a> {
    fn new(words: &'a [String]) -> Args<'a> {
        Args { words, at: 0 }
    }

    fn peek(&self) -> Option<&'a str> {
        self.words.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Option<&'a str> {
        let word = self.peek();
        self.at += usize::from(word.is_some());
        word
    }

    /// iproute2's `NEXT_ARG()`: the keyword's value, or "not complete".
    fn value(&mut self) -> Result<&'a str, CmdError> {
        self.next().ok_or_else(incomplete)
    }

    fn rest(&self) -> &'a [String] {
        &self.words[self.at.min(self.words.len())..]
    }
}

/// Runs one command of a stackcmd string (its argv) against the model.
pub(super) fn run_command(state: &mut State, argv: &[String]) -> Result<String, CmdError> {
    let Some(path) = argv.first() else {
        return Ok(String::new());
    };
    if IP_PATHS.contains(&path.as_str()) {
        return ip(state, &argv[1..]);
    }
    if !path.contains('/') {
        // The reference calls execv, which does not search PATH: the child exits 2.
        return Err(CmdError::new(
            2,
            format!("{path}: command not found (stackcmd commands need a full path)"),
        ));
    }
    Err(CmdError::new(
        2,
        format!(
            "{path}: the userspace stack runs only ip ({}); it does not run external commands",
            IP_PATHS.join(", ")
        ),
    ))
}

#[derive(Clone, Copy)]
enum Opt {
    Loops,
    /// Accepted and without effect here: human-readable or IEC units only change
    /// statistics, `-force` only matters to batches.
    Ignored,
    Family,
    Set(Family),
    Help,
    Unsupported,
}

/// iproute2 6.1's global options, in the order it tries them (so `-h` is
/// `-human`, and `-he` is `-help`).
const OPTIONS: &[(&str, Match, Opt)] = &[
    ("-loops", Prefix, Opt::Loops),
    ("-family", Prefix, Opt::Family),
    ("-4", Exact, Opt::Set(Family::Inet)),
    ("-6", Exact, Opt::Set(Family::Inet6)),
    ("-0", Exact, Opt::Set(Family::Packet)),
    ("-M", Exact, Opt::Set(Family::Other("mpls"))),
    ("-B", Exact, Opt::Set(Family::Other("bridge"))),
    ("-human", Prefix, Opt::Ignored),
    ("-human-readable", Prefix, Opt::Ignored),
    ("-iec", Prefix, Opt::Ignored),
    ("-stats", Prefix, Opt::Unsupported),
    ("-statistics", Prefix, Opt::Unsupported),
    ("-details", Prefix, Opt::Unsupported),
    ("-resolve", Prefix, Opt::Unsupported),
    ("-oneline", Prefix, Opt::Unsupported),
    ("-timestamp", Prefix, Opt::Unsupported),
    ("-tshort", Prefix, Opt::Unsupported),
    ("-Version", Prefix, Opt::Unsupported),
    ("-force", Prefix, Opt::Ignored),
    ("-batch", Prefix, Opt::Unsupported),
    ("-brief", Prefix, Opt::Unsupported),
    ("-json", Prefix, Opt::Unsupported),
    ("-pretty", Prefix, Opt::Unsupported),
    ("-rcvbuf", Prefix, Opt::Unsupported),
    ("-color", Prefix, Opt::Unsupported),
    ("-help", Prefix, Opt::Help),
    ("-netns", Prefix, Opt::Unsupported),
    ("-Numeric", Prefix, Opt::Unsupported),
    ("-all", Prefix, Opt::Unsupported),
    ("-echo", Exact, Opt::Unsupported),
];

#[derive(Clone, Copy)]
enum Object {
    Address,
    Link,
    Route,
    Help,
    Unsupported,
}

/// iproute2 6.1's objects, in the order it tries them.
const OBJECTS: &[(&str, Match, Object)] = &[
    ("address", Prefix, Object::Address),
    ("addrlabel", Prefix, Object::Unsupported),
    ("maddress", Prefix, Object::Unsupported),
    ("route", Prefix, Object::Route),
    ("rule", Prefix, Object::Unsupported),
    ("neighbor", Prefix, Object::Unsupported),
    ("neighbour", Prefix, Object::Unsupported),
    ("ntable", Prefix, Object::Unsupported),
    ("ntbl", Prefix, Object::Unsupported),
    ("link", Prefix, Object::Link),
    ("l2tp", Prefix, Object::Unsupported),
    ("fou", Prefix, Object::Unsupported),
    ("ila", Prefix, Object::Unsupported),
    ("macsec", Prefix, Object::Unsupported),
    ("tunnel", Prefix, Object::Unsupported),
    ("tunl", Prefix, Object::Unsupported),
    ("tuntap", Prefix, Object::Unsupported),
    ("tap", Prefix, Object::Unsupported),
    ("token", Prefix, Object::Unsupported),
    ("tcpmetrics", Prefix, Object::Unsupported),
    ("tcp_metrics", Prefix, Object::Unsupported),
    ("monitor", Prefix, Object::Unsupported),
    ("xfrm", Prefix, Object::Unsupported),
    ("mroute", Prefix, Object::Unsupported),
    ("mrule", Prefix, Object::Unsupported),
    ("netns", Prefix, Object::Unsupported),
    ("netconf", Prefix, Object::Unsupported),
    ("vrf", Prefix, Object::Unsupported),
    ("sr", Prefix, Object::Unsupported),
    ("nexthop", Prefix, Object::Unsupported),
    ("mptcp", Prefix, Object::Unsupported),
    ("ioam", Prefix, Object::Unsupported),
    ("help", Prefix, Object::Help),
    ("stats", Prefix, Object::Unsupported),
    ("amt", Prefix, Object::Unsupported),
];

/// `ip [OPTIONS] OBJECT ...`
fn ip(state: &mut State, words: &[String]) -> Result<String, CmdError> {
    let mut args = Args::new(words);
    let mut family = Family::Unspec;
    while let Some(word) = args.peek() {
        if word == "--" {
            args.next();
            break;
        }
        if !word.starts_with('-') {
            break;
        }
        args.next();
        // iproute2 accepts "--opt" for "-opt".
        let opt = if word.starts_with("--") {
            &word[1..]
        } else {
            word
        };
        match pick(opt, OPTIONS) {
            Some((_, Opt::Loops)) => {
                args.next().ok_or_else(|| usage(IP_USAGE))?;
            }
            Some((_, Opt::Family)) => {
                let name = args.next().ok_or_else(|| usage(IP_USAGE))?;
                if name == "help" {
                    return Err(usage(IP_USAGE));
                }
                family = Family::from_name(name)
                    .ok_or_else(|| invarg("invalid protocol family", name))?;
            }
            Some((_, Opt::Set(f))) => family = f,
            Some((_, Opt::Ignored)) => {}
            Some((_, Opt::Help)) => return Err(usage(IP_USAGE)),
            Some((name, Opt::Unsupported)) => {
                return Err(unsupported(&format!("option \"{name}\"")));
            }
            None => {
                return Err(CmdError::new(
                    255,
                    format!("Option \"{opt}\" is unknown, try \"ip -help\"."),
                ));
            }
        }
    }
    let object = args.next().ok_or_else(|| usage(IP_USAGE))?;
    let rest = args.rest();
    match pick(object, OBJECTS) {
        Some((_, Object::Address)) => address(state, family, rest),
        Some((_, Object::Link)) => link(state, rest),
        Some((_, Object::Route)) => route(state, family, rest),
        Some((_, Object::Help)) => Err(usage(IP_USAGE)),
        Some((name, Object::Unsupported)) => Err(unsupported(&format!("\"ip {name}\""))),
        None => Err(CmdError::new(
            1,
            format!("Object \"{object}\" is unknown, try \"ip help\"."),
        )),
    }
}

/// What a subcommand word of `ip link|addr|route` selects.
#[derive(Clone, Copy)]
enum Cmd {
    Add,
    Replace,
    Set,
    Delete,
    Show,
    Flush,
    Help,
    /// A command the stack does not do, but parsed like its siblings first, so
    /// command-line mistakes get iproute2's answer.
    Refused,
    Unsupported,
}

fn unknown_command(word: &str, object: &str) -> CmdError {
    CmdError::new(
        255,
        format!("Command \"{word}\" is unknown, try \"ip {object} help\"."),
    )
}

// ---- ip link ----

const LINK_CMDS: &[(&str, Match, Cmd)] = &[
    ("add", Prefix, Cmd::Unsupported),
    ("set", Prefix, Cmd::Set),
    ("change", Prefix, Cmd::Set),
    ("replace", Prefix, Cmd::Unsupported),
    ("delete", Prefix, Cmd::Refused),
    ("show", Prefix, Cmd::Show),
    ("lst", Prefix, Cmd::Show),
    ("list", Prefix, Cmd::Show),
    ("xstats", Prefix, Cmd::Unsupported),
    ("afstats", Prefix, Cmd::Unsupported),
    ("property", Prefix, Cmd::Unsupported),
    ("help", Prefix, Cmd::Help),
];

fn link(state: &mut State, words: &[String]) -> Result<String, CmdError> {
    let Some(cmd) = words.first() else {
        return Ok(show::links(state, LinkFilter::default()));
    };
    let rest = &words[1..];
    match pick(cmd, LINK_CMDS) {
        Some((_, Cmd::Set)) => link_set(state, rest, true).map(|()| String::new()),
        Some((name, Cmd::Refused)) => {
            link_set(state, rest, false)?;
            Err(unsupported(&format!("\"ip link {name}\"")))
        }
        Some((_, Cmd::Show)) => {
            let filter = list_filter(state, rest, LINK_USAGE)?;
            Ok(show::links(state, filter))
        }
        Some((_, Cmd::Help)) => Err(usage(LINK_USAGE)),
        Some((name, _)) => Err(unsupported(&format!("\"ip link {name}\""))),
        None => Err(unknown_command(cmd, "link")),
    }
}

#[derive(Clone, Copy)]
enum LinkKw {
    Up,
    Down,
    Mtu,
    Address,
    /// A keyword the stack cannot honour; true if it takes a value.
    Unsupported(bool),
}

/// The keywords of `ip link set` in iproute2 6.1's order; any other word names the
/// device.
const LINK_SET_KEYWORDS: &[(&str, Match, LinkKw)] = &[
    ("up", Exact, LinkKw::Up),
    ("down", Exact, LinkKw::Down),
    ("name", Exact, LinkKw::Unsupported(true)),
    ("index", Exact, LinkKw::Unsupported(true)),
    ("link", Prefix, LinkKw::Unsupported(true)),
    ("address", Prefix, LinkKw::Address),
    ("broadcast", Prefix, LinkKw::Unsupported(true)),
    ("brd", Exact, LinkKw::Unsupported(true)),
    ("txqueuelen", Prefix, LinkKw::Unsupported(true)),
    ("qlen", Exact, LinkKw::Unsupported(true)),
    ("txqlen", Prefix, LinkKw::Unsupported(true)),
    ("mtu", Exact, LinkKw::Mtu),
    ("xdpgeneric", Exact, LinkKw::Unsupported(true)),
    ("xdpdrv", Exact, LinkKw::Unsupported(true)),
    ("xdpoffload", Exact, LinkKw::Unsupported(true)),
    ("xdp", Exact, LinkKw::Unsupported(true)),
    ("netns", Exact, LinkKw::Unsupported(true)),
    ("multicast", Exact, LinkKw::Unsupported(true)),
    ("allmulticast", Exact, LinkKw::Unsupported(true)),
    ("promisc", Exact, LinkKw::Unsupported(true)),
    ("trailers", Exact, LinkKw::Unsupported(true)),
    ("arp", Exact, LinkKw::Unsupported(true)),
    ("carrier", Exact, LinkKw::Unsupported(true)),
    ("vf", Exact, LinkKw::Unsupported(true)),
    ("master", Prefix, LinkKw::Unsupported(true)),
    ("vrf", Exact, LinkKw::Unsupported(true)),
    ("nomaster", Prefix, LinkKw::Unsupported(false)),
    ("dynamic", Prefix, LinkKw::Unsupported(true)),
    ("type", Prefix, LinkKw::Unsupported(true)),
    ("alias", Prefix, LinkKw::Unsupported(true)),
    ("group", Exact, LinkKw::Unsupported(true)),
    ("mode", Exact, LinkKw::Unsupported(true)),
    ("state", Exact, LinkKw::Unsupported(true)),
    ("numtxqueues", Prefix, LinkKw::Unsupported(true)),
    ("numrxqueues", Prefix, LinkKw::Unsupported(true)),
    ("addrgenmode", Prefix, LinkKw::Unsupported(true)),
    ("link-netns", Exact, LinkKw::Unsupported(true)),
    ("link-netnsid", Prefix, LinkKw::Unsupported(true)),
    ("protodown", Exact, LinkKw::Unsupported(true)),
    ("protodown_reason", Exact, LinkKw::Unsupported(true)),
    ("gso_max_size", Exact, LinkKw::Unsupported(true)),
    ("gso_max_segs", Exact, LinkKw::Unsupported(true)),
    ("gro_max_size", Exact, LinkKw::Unsupported(true)),
    ("gso_ipv4_max_size", Exact, LinkKw::Unsupported(true)),
    ("gro_ipv4_max_size", Exact, LinkKw::Unsupported(true)),
    ("parentdev", Exact, LinkKw::Unsupported(true)),
];

/// `ip link set [dev] DEV { up | down | mtu N | address MAC }...`; with `apply`
/// false, only the checks iproute2 makes before asking the kernel.
fn link_set(state: &mut State, words: &[String], apply: bool) -> Result<(), CmdError> {
    let mut args = Args::new(words);
    let mut dev: Option<&str> = None;
    let mut up = None;
    let mut mtu = None;
    let mut mac = None;
    while let Some(word) = args.next() {
        match pick(word, LINK_SET_KEYWORDS) {
            Some((_, LinkKw::Up)) => up = Some(true),
            Some((_, LinkKw::Down)) => up = Some(false),
            Some((_, LinkKw::Mtu)) => {
                let value = args.value()?;
                if mtu.is_some() {
                    return Err(duparg("mtu", value));
                }
                // iproute2's message ends in "\n" and invarg adds another.
                mtu = Some(
                    get_integer(value).ok_or_else(|| invarg("Invalid \"mtu\" value\n", value))?,
                );
            }
            Some((_, LinkKw::Address)) => {
                let value = args.value()?;
                mac = Some(parse_lladdr(value).map_err(|LladdrError::Invalid(part)| {
                    CmdError::new(1, format!("\"{part}\" is invalid lladdr."))
                })?);
            }
            Some((name, LinkKw::Unsupported(value))) => {
                return Err(refuse(
                    &mut args,
                    value,
                    &format!("\"ip link set ... {name}\""),
                ));
            }
            None => {
                if matches(word, "help") {
                    return Err(usage(LINK_USAGE));
                }
                let name = if word == "dev" { args.value()? } else { word };
                if dev.is_some() {
                    return Err(duparg2("dev", name));
                }
                // The kernel's rule for interface names, checked by iproute2.
                let c_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
                if name.is_empty() || name.contains('/') || name.contains(c_space) {
                    return Err(invarg("\"dev\" not a valid ifname", name));
                }
                dev = Some(name);
            }
        }
    }
    let index = dev.and_then(|d| state.find(d));
    if let (Some(_), Some(bytes)) = (index, &mac) {
        if bytes.len() != 6 {
            return Err(CmdError::new(
                1,
                format!("Invalid address length {} - must be 6 bytes", bytes.len()),
            ));
        }
    }
    let dev = dev.ok_or_else(|| no_dev_given(255))?;
    let index = index.ok_or_else(|| cannot_find(dev))?;
    if !apply {
        return Ok(());
    }
    // Linux applies the changes in this order and keeps those made before a failure.
    if let Some(bytes) = mac {
        let mut m = [0u8; 6];
        m.copy_from_slice(&bytes);
        state.set_mac(index, m)?;
    }
    if let Some(mtu) = mtu {
        state.set_mtu(index, mtu)?;
    }
    if let Some(up) = up {
        state.set_up(index, up)?;
    }
    Ok(())
}

/// Filter words of `ip link show` and `ip addr show|flush` that the stack does not
/// implement (iproute2 matches them exactly); true if the word takes a value.
const LIST_UNSUPPORTED: &[(&str, Match, bool)] = &[
    ("to", Exact, true),
    ("scope", Exact, true),
    ("label", Exact, true),
    ("group", Exact, true),
    ("master", Exact, true),
    ("vrf", Exact, true),
    ("type", Exact, true),
    ("nomaster", Exact, false),
    ("permanent", Exact, false),
    ("dynamic", Exact, false),
    ("secondary", Exact, false),
    ("primary", Exact, false),
    ("tentative", Exact, false),
    ("-tentative", Exact, false),
    ("deprecated", Exact, false),
    ("-deprecated", Exact, false),
    ("dadfailed", Exact, false),
    ("-dadfailed", Exact, false),
    ("temporary", Exact, false),
    ("home", Exact, false),
    ("nodad", Exact, false),
    ("mngtmpaddr", Exact, false),
    ("noprefixroute", Exact, false),
    ("autojoin", Exact, false),
    ("optimistic", Exact, false),
    ("-optimistic", Exact, false),
];

/// The selector of `ip link show`, `ip addr show` and `ip addr flush`:
/// `[dev] DEV`, `up`.
fn list_filter(state: &State, words: &[String], help: &str) -> Result<LinkFilter, CmdError> {
    let mut args = Args::new(words);
    let mut dev: Option<&str> = None;
    let mut up_only = false;
    while let Some(word) = args.next() {
        if word == "up" {
            up_only = true;
        } else if let Some((name, value)) = pick(word, LIST_UNSUPPORTED) {
            return Err(refuse(&mut args, value, &format!("the \"{name}\" filter")));
        } else {
            let name = if word == "dev" {
                args.value()?
            } else if matches(word, "help") {
                return Err(usage(help));
            } else {
                word
            };
            if dev.is_some() {
                return Err(duparg2("dev", name));
            }
            dev = Some(name);
        }
    }
    let dev = match dev {
        Some(d) => Some(
            state
                .find(d)
                .ok_or_else(|| CmdError::new(1, format!("Device \"{d}\" does not exist.")))?,
        ),
        None => None,
    };
    Ok(LinkFilter { dev, up_only })
}

// ---- ip address ----

const ADDR_CMDS: &[(&str, Match, Cmd)] = &[
    ("add", Prefix, Cmd::Add),
    ("change", Prefix, Cmd::Refused),
    ("chg", Exact, Cmd::Refused),
    ("replace", Prefix, Cmd::Refused),
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

fn address(state: &mut State, family: Family, words: &[String]) -> Result<String, CmdError> {
    let Some(cmd) = words.first() else {
        return Ok(show::addrs(state, family, LinkFilter::default()));
    };
    let rest = &words[1..];
    match pick(cmd, ADDR_CMDS) {
        Some((_, Cmd::Add)) => addr_modify(state, family, rest, Cmd::Add).map(|()| String::new()),
        Some((_, Cmd::Delete)) => {
            addr_modify(state, family, rest, Cmd::Delete).map(|()| String::new())
        }
        Some((name, Cmd::Refused)) => {
            addr_modify(state, family, rest, Cmd::Refused)?;
            Err(unsupported(&format!("\"ip address {name}\"")))
        }
        Some((_, Cmd::Show)) => {
            let filter = list_filter(state, rest, ADDR_USAGE)?;
            Ok(show::addrs(state, family, filter))
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
    /// An address flag the kernel sets itself: iproute2 warns and ignores it.
    ReadOnlyFlag,
    /// An address flag only IPv6 addresses take (iproute2 warns and ignores it for
    /// others); the stack does not implement it.
    Ipv6Flag,
    /// `nodad`: the stack does no duplicate address detection, so every address
    /// already behaves as if it were given.
    NoDad,
    /// A keyword the stack cannot honour, and how iproute2 checks its value.
    Unsupported(Value),
}

/// How iproute2 checks the value of an `ip addr add|del` keyword, so a bad value
/// gets its answer even where the stack would refuse the keyword anyway.
#[derive(Clone, Copy)]
enum Value {
    None,
    Any,
    Metric,
    Lifetime(&'static str),
    Prefix,
    Address,
    Scope,
}

/// The keywords of `ip addr add|del` in iproute2 6.1's order; any other word is
/// the address.
const ADDR_KEYWORDS: &[(&str, Match, AddrKw)] = &[
    ("peer", Exact, AddrKw::Unsupported(Value::Prefix)),
    ("remote", Exact, AddrKw::Unsupported(Value::Prefix)),
    ("broadcast", Prefix, AddrKw::Broadcast),
    ("brd", Exact, AddrKw::Broadcast),
    ("anycast", Exact, AddrKw::Unsupported(Value::Address)),
    ("scope", Exact, AddrKw::Unsupported(Value::Scope)),
    ("dev", Exact, AddrKw::Dev),
    ("label", Exact, AddrKw::Unsupported(Value::Any)),
    ("metric", Prefix, AddrKw::Unsupported(Value::Metric)),
    ("priority", Prefix, AddrKw::Unsupported(Value::Metric)),
    ("preference", Prefix, AddrKw::Unsupported(Value::Metric)),
    (
        "valid_lft",
        Prefix,
        AddrKw::Unsupported(Value::Lifetime("valid_lft")),
    ),
    (
        "preferred_lft",
        Prefix,
        AddrKw::Unsupported(Value::Lifetime("preferred_lft")),
    ),
    ("secondary", Exact, AddrKw::ReadOnlyFlag),
    ("temporary", Exact, AddrKw::ReadOnlyFlag),
    ("nodad", Exact, AddrKw::NoDad),
    ("optimistic", Exact, AddrKw::Ipv6Flag),
    ("dadfailed", Exact, AddrKw::ReadOnlyFlag),
    ("home", Exact, AddrKw::Ipv6Flag),
    ("deprecated", Exact, AddrKw::ReadOnlyFlag),
    ("tentative", Exact, AddrKw::ReadOnlyFlag),
    ("permanent", Exact, AddrKw::ReadOnlyFlag),
    ("mngtmpaddr", Exact, AddrKw::Ipv6Flag),
    ("noprefixroute", Exact, AddrKw::Unsupported(Value::None)),
    ("autojoin", Exact, AddrKw::Unsupported(Value::None)),
    ("stable-privacy", Exact, AddrKw::ReadOnlyFlag),
];

/// What `brd` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Brd {
    /// `+`: all host bits set.
    Plus,
    /// `-`: all host bits clear.
    Minus,
    Addr(IpAddr),
}

/// Reads and checks a keyword's value as iproute2 would.
fn check_value(args: &mut Args, check: Value, family: Family) -> Result<(), CmdError> {
    const SCOPES: [&str; 6] = ["global", "universe", "site", "link", "host", "nowhere"];
    if let Value::None = check {
        return Ok(());
    }
    let value = args.value()?;
    let valid = match check {
        Value::None | Value::Any => true,
        Value::Metric => parse::get_u32(value).is_some(),
        Value::Lifetime(_) => value == "forever" || parse::get_u32(value).is_some(),
        Value::Scope => {
            SCOPES.contains(&value) || parse::get_unsigned(value).is_some_and(|n| n <= 255)
        }
        Value::Prefix => {
            get_prefix(value, family)?;
            true
        }
        Value::Address => {
            get_addr(value, family, "anycast")?;
            true
        }
    };
    if valid {
        return Ok(());
    }
    Err(match check {
        Value::Metric => invarg("\"metric\" value is invalid\n", value),
        Value::Lifetime(name) => invarg(&format!("{name} value"), value),
        _ => invarg("invalid scope value.", value),
    })
}

/// `ip addr add|del ADDR[/LEN] [brd +|-|ADDR] dev DEV`; `Cmd::Refused` only makes
/// the checks iproute2 makes before asking the kernel.
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
        if matches!(cmd, Cmd::Refused) {
            return Ok(());
        }
        let change = state.check_addr(&addr_request(&args, delete)?)?;
        state.apply_addr(change);
        Ok(())
    };
    steps().map_err(|e: CmdError| CmdError::new(e.status(), format!("{warnings}{}", e.message())))
}

/// What `ip addr add|del` read from its words: what iproute2 sends the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AddrArgs {
    pub(super) dev: u32,
    /// The family chosen, or else the first address's.
    pub(super) family: Family,
    /// The address given, if any.
    pub(super) local: Option<Parsed>,
    /// Whether a zero-length address was given (`any`, or `default` before the
    /// family is known): iproute2 does not count it as an address, but still
    /// sends it, and the kernel refuses it.
    pub(super) zero_length: bool,
    pub(super) brd: Option<Brd>,
}

/// The parse step of `ip addr add|del` (and of the refused `change|replace`):
/// the words, read as iproute2 reads them, into what it would send the kernel,
/// or iproute2's error; its warnings on the way go to `warnings`. `delete`: the
/// words are those of `ip addr del`. `find_link` gives the index of a link by
/// name, the only thing iproute2 asks before sending.
pub(super) fn parse_addr(
    find_link: impl Fn(&str) -> Option<u32>,
    family: Family,
    words: &[String],
    delete: bool,
    warnings: &mut String,
) -> Result<AddrArgs, CmdError> {
    let mut args = Args::new(words);
    let mut family = family;
    // The address as parsed and as written; `local_given` is false while the
    // only address is a zero-length one, which iproute2 lets another replace.
    let mut local: Option<(Parsed, &str)> = None;
    let mut local_given = false;
    let mut zero_length = false;
    let mut dev: Option<&str> = None;
    let mut brd: Option<Brd> = None;
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
            Some((name, AddrKw::ReadOnlyFlag)) => {
                warnings.push_str(&format!(
                    "Warning: {name} option is not mutable from userspace\n"
                ));
            }
            Some((name, AddrKw::Ipv6Flag | AddrKw::NoDad)) if family != Family::Inet6 => {
                warnings.push_str(&format!(
                    "Warning: {name} option can be set only for IPv6 addresses\n"
                ));
            }
            Some((name, AddrKw::Ipv6Flag)) => {
                refused.get_or_insert(name);
            }
            Some((_, AddrKw::NoDad)) => {}
            Some((name, AddrKw::Unsupported(check))) => {
                check_value(&mut args, check, family)?;
                refused.get_or_insert(name);
            }
            None => {
                let word = if word == "local" { args.value()? } else { word };
                if matches(word, "help") {
                    return Err(usage(ADDR_USAGE));
                }
                if local_given {
                    return Err(duparg2("local", word));
                }
                let parsed = get_prefix(word, family)?;
                let zero = matches!(
                    (parsed, family),
                    (Parsed::Any, _) | (Parsed::Default, Family::Unspec)
                );
                if let (Parsed::Addr { addr, .. }, Family::Unspec) = (parsed, family) {
                    family = Family::of(addr);
                }
                zero_length |= zero;
                local_given = !zero;
                local = Some((parsed, word));
            }
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
    )) = local
    {
        if delete && addr.is_ipv4() {
            warnings.push_str(&wildcard_warning(word));
        }
    }
    let dev = find_link(dev).ok_or_else(|| cannot_find(dev))?;
    if let Some(name) = refused {
        return Err(unsupported(&format!("\"ip address ... {name}\"")));
    }
    Ok(AddrArgs {
        dev,
        family,
        local: local.map(|(parsed, _)| parsed),
        zero_length,
        brd,
    })
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
pub(super) fn addr_request(args: &AddrArgs, delete: bool) -> Result<AddrReq, CmdError> {
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
            }
        }
        (IpAddr::V6(addr), false) => AddrReq::AddV6 {
            dev,
            addr,
            prefix_len: prefix_len.unwrap_or(128),
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

// ---- ip route ----

const ROUTE_CMDS: &[(&str, Match, Cmd)] = &[
    ("add", Prefix, Cmd::Add),
    ("change", Prefix, Cmd::Refused),
    ("chg", Exact, Cmd::Refused),
    ("replace", Prefix, Cmd::Replace),
    ("prepend", Prefix, Cmd::Refused),
    ("append", Prefix, Cmd::Refused),
    ("test", Prefix, Cmd::Refused),
    ("delete", Prefix, Cmd::Delete),
    ("list", Prefix, Cmd::Show),
    ("show", Prefix, Cmd::Show),
    ("lst", Prefix, Cmd::Show),
    ("get", Prefix, Cmd::Unsupported),
    ("flush", Prefix, Cmd::Flush),
    ("save", Prefix, Cmd::Unsupported),
    ("restore", Prefix, Cmd::Unsupported),
    ("showdump", Prefix, Cmd::Unsupported),
    ("help", Prefix, Cmd::Help),
];

fn route(state: &mut State, family: Family, words: &[String]) -> Result<String, CmdError> {
    let Some(cmd) = words.first() else {
        return route_list(state, family, &[], false);
    };
    let rest = &words[1..];
    match pick(cmd, ROUTE_CMDS) {
        Some((_, Cmd::Add)) => route_add(state, family, rest, false),
        Some((_, Cmd::Replace)) => route_add(state, family, rest, true),
        Some((_, Cmd::Delete)) => route_del(state, family, rest),
        Some((name, Cmd::Refused)) => {
            parse_route(|dev| state.find(dev), family, rest)?;
            Err(unsupported(&format!("\"ip route {name}\"")))
        }
        Some((_, Cmd::Show)) => route_list(state, family, rest, false),
        Some((_, Cmd::Flush)) => route_list(state, family, rest, true),
        Some((_, Cmd::Help)) => Err(usage(ROUTE_USAGE)),
        Some((name, _)) => Err(unsupported(&format!("\"ip route {name}\""))),
        None => Err(unknown_command(cmd, "route")),
    }
}

/// `ip route add|replace [to] PREFIX [via GW] [dev DEV] [src ADDR]`
fn route_add(
    state: &mut State,
    family: Family,
    words: &[String],
    replace: bool,
) -> Result<String, CmdError> {
    let req = parse_route(|dev| state.find(dev), family, words)?;
    let checked = state.check_route_add(&req, replace);
    state.create_v4_table_for(&req);
    state.apply_route_add(checked?);
    Ok(String::new())
}

/// `ip route del [to] PREFIX [via GW] [dev DEV] [src ADDR]`
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
    ("expires", Exact, RouteKw::Unsupported(true)),
    ("metric", Prefix, RouteKw::Unsupported(true)),
    ("priority", Prefix, RouteKw::Unsupported(true)),
    ("preference", Exact, RouteKw::Unsupported(true)),
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
    ("nexthop", Exact, RouteKw::Unsupported(false)),
    ("nhid", Exact, RouteKw::Unsupported(true)),
    ("protocol", Prefix, RouteKw::Unsupported(true)),
    ("table", Prefix, RouteKw::Unsupported(true)),
    ("vrf", Prefix, RouteKw::Unsupported(true)),
    ("dev", Exact, RouteKw::Dev),
    ("oif", Exact, RouteKw::Dev),
    ("pref", Prefix, RouteKw::Unsupported(true)),
    ("encap", Exact, RouteKw::Unsupported(true)),
    ("ttl-propagate", Exact, RouteKw::Unsupported(true)),
    ("fastopen_no_cookie", Exact, RouteKw::Unsupported(true)),
];

/// Route types iproute2 accepts before the destination (`rtnl_rtntype_a2n`, in
/// its order); only `unicast`, the default, means anything to the stack.
const ROUTE_TYPES: &[(&str, Match, bool)] = &[
    ("local", Exact, false),
    ("nat", Exact, false),
    ("broadcast", Prefix, false),
    ("brd", Exact, false),
    ("anycast", Prefix, false),
    ("multicast", Prefix, false),
    ("prohibit", Prefix, false),
    ("unreachable", Prefix, false),
    ("blackhole", Prefix, false),
    ("xresolve", Prefix, false),
    ("unicast", Prefix, true),
    ("throw", Exact, false),
];

/// The all-zero address of a family: where a default route points.
fn zero(family: Family) -> IpAddr {
    match family {
        Family::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// The parse step of `ip route add|replace|del` (and of the refused
/// `change|prepend|append|test`): the words, read as iproute2 reads them, into
/// the request it would send the kernel, or iproute2's error. `find_link` gives
/// the index of a link by name, the only thing iproute2 asks before sending.
pub(super) fn parse_route(
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
    // A route type the stack has no use for; refused once the line has parsed.
    let mut bad_type: Option<&str> = None;
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
                bad_type = route_type;
            }
        }
    }
    let dst = dst.ok_or_else(|| usage(ROUTE_USAGE))?;
    let dev = match dev {
        Some(d) => Some(find_link(d).ok_or_else(|| cannot_find(d))?),
        None => None,
    };
    if let Some(name) = bad_type {
        return Err(unsupported(&format!("the \"{name}\" route type")));
    }
    if family == Family::Unspec {
        family = Family::Inet;
    }
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
    })
}

/// The value of a route's `via [FAMILY] GW`; the route's family follows the
/// gateway's unless it was chosen, and a gateway of the other family is refused.
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
    } else if Family::of(addr) != *family {
        return Err(unsupported("a gateway of the other address family"));
    }
    Ok(addr)
}

/// A route's destination, `[to] [TYPE] PREFIX`, starting at `word`: the prefix,
/// and the name of a route type the stack cannot make, if one was given.
/// `seen`: the destination was already given.
fn route_dst<'a>(
    args: &mut Args<'a>,
    word: &'a str,
    family: &mut Family,
    seen: bool,
) -> Result<(Parsed, Option<&'static str>), CmdError> {
    let mut word = if word == "to" { args.value()? } else { word };
    let mut bad_type = None;
    let starts_with_digit = word.as_bytes().first().is_some_and(u8::is_ascii_digit);
    if let Some((name, usable)) = pick(word, ROUTE_TYPES).filter(|_| !starts_with_digit) {
        if !usable {
            bad_type = Some(name);
        }
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
    Ok((parsed, bad_type))
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

/// `ip route show|flush [table main] [dev DEV] [[to] [exact] PREFIX | all]`
fn route_list(
    state: &mut State,
    family: Family,
    words: &[String],
    flush: bool,
) -> Result<String, CmdError> {
    let Some(selector) = parse_route_list(|dev| state.find(dev), family, words, flush)? else {
        return Ok(String::new());
    };
    if flush {
        state.check_route_flush(selector.ipv6)?;
        state.flush_routes(|r| selector.selects(r));
        return Ok(String::new());
    }
    Ok(state
        .routes
        .iter()
        .filter(|r| selector.selects(r))
        .map(|r| show::route_line(state, r, selector.dev.is_none()))
        .collect())
}

/// Which routes `ip route show|flush` selects: those of one family, narrowed by
/// the selectors given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RouteSelector {
    pub(super) ipv6: bool,
    pub(super) dev: Option<u32>,
    /// The exact prefix asked for; `None` selects every prefix.
    pub(super) exact: Option<(IpAddr, u8)>,
    pub(super) metric: Option<u32>,
    /// An rtnetlink protocol number: kernel routes are 2, `ip route add` ones 3.
    pub(super) proto: Option<u32>,
}

impl RouteSelector {
    /// Whether the selector selects this route.
    pub(super) fn selects(&self, r: &Route) -> bool {
        r.dst.is_ipv6() == self.ipv6
            && self.dev.is_none_or(|d| d == r.dev)
            && self
                .exact
                .is_none_or(|(addr, len)| r.prefix_len == len && in_prefix(r.dst, addr, len))
            && self.metric.is_none_or(|m| m == r.metric())
            && self.proto.is_none_or(|p| {
                p == match r.proto {
                    RouteProto::Kernel => 2,
                    RouteProto::Boot => 3,
                }
            })
    }
}

/// The parse step of `ip route show|flush`: the words into a selector, or
/// iproute2's error; `None` when the selector cannot select anything (a family
/// without routes, or the routing cache). `find_link` gives the index of a link
/// by name.
pub(super) fn parse_route_list(
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
    let mut exact: Option<(IpAddr, u8)> = None;
    let mut metric: Option<u32> = None;
    let mut proto: Option<u32> = None;
    let mut cache = false;
    while let Some(word) = args.next() {
        match pick(word, ROUTE_LIST_KEYWORDS) {
            Some((_, ListKw::Cache)) => cache = true,
            Some((_, ListKw::Table)) => {
                let table = args.value()?;
                if table == "help" {
                    return Err(usage(ROUTE_USAGE));
                }
                if !matches!(table, "main" | "254") {
                    return Err(unsupported(&format!("table \"{table}\"")));
                }
            }
            Some((_, ListKw::Dev)) => dev = Some(args.value()?),
            Some((_, ListKw::Metric)) => {
                let value = args.value()?;
                metric = Some(
                    parse::get_u32(value)
                        .ok_or_else(|| invarg("\"metric\" value is invalid\n", value))?,
                );
            }
            Some((_, ListKw::Protocol)) => proto = route_protocol(args.value()?)?,
            Some((name, ListKw::Unsupported(value))) => {
                return Err(refuse(
                    &mut args,
                    value,
                    &format!("the \"{name}\" selector"),
                ));
            }
            None => exact = list_prefix(&mut args, word, family)?,
        }
    }
    let dev = match dev {
        Some(d) => Some(find_link(d).ok_or_else(|| cannot_find(d))?),
        None => None,
    };
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
        dev,
        exact,
        metric,
        proto,
    }))
}

/// The value of `protocol` in a route selector: a name or a number up to 255;
/// `None` for `all`.
fn route_protocol(value: &str) -> Result<Option<u32>, CmdError> {
    Ok(match value {
        "all" => None,
        "kernel" => Some(2),
        "boot" => Some(3),
        "static" => Some(4),
        _ => Some(
            parse::get_u32(value)
                .filter(|&n| n <= 255)
                .ok_or_else(|| invarg("invalid \"protocol\"\n", value))?,
        ),
    })
}

/// The prefix of a route selector, `[to] [exact] PREFIX`, starting at `word`;
/// `None` selects every prefix.
fn list_prefix(
    args: &mut Args,
    word: &str,
    family: Family,
) -> Result<Option<(IpAddr, u8)>, CmdError> {
    let mut word = if matches(word, "to") {
        args.value()?
    } else {
        word
    };
    if matches(word, "root") || matches(word, "match") {
        return Err(unsupported(&format!("the \"{word}\" selector")));
    }
    if matches(word, "exact") {
        word = args.value()?;
    }
    // "default" means IPv4's unless a family was chosen; "all" and "any" select
    // everything unless a family was chosen, and then only its default routes, as
    // in iproute2.
    Ok(match get_prefix(word, family)? {
        Parsed::Addr { addr, prefix_len } => Some((
            addr,
            prefix_len.unwrap_or(if addr.is_ipv4() { 32 } else { 128 }),
        )),
        Parsed::Default => Some((zero(family), 0)),
        Parsed::Any if family == Family::Unspec => None,
        Parsed::Any => Some((zero(family), 0)),
    })
}
