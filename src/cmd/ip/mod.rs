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
//!
//! This file reads the options and the object and holds what the objects share
//! (keyword tables, iproute2's error messages, address arguments); `link`,
//! `addr` and `route` each hold one object's commands. `ip addr add|del` and
//! `ip route add|replace|change|prepend|append|test|del|flush` run in three
//! steps, each testable on its
//! own:
//! - parse: the words into a typed request, with iproute2's errors and in its
//!   order; the only thing asked of the model is a link's index by name, as
//!   iproute2 asks the kernel before it sends anything;
//! - check: the request against the model, whose `check_*` methods return
//!   Linux's refusal or exactly the change to make, and change nothing;
//! - apply: the model's `apply_*` methods make that change and cannot fail.
//!
//! `ip link set` calls the model's `set_*` changes one after the other, as Linux
//! applies a link's changes one by one and keeps those made before a failure.

mod addr;
mod link;
mod neigh;
mod route;
mod route_get;

#[cfg(test)]
pub(super) use addr::{addr_request, parse_addr, AddrArgs, Brd};
#[cfg(test)]
pub(super) use route::{parse_route, parse_route_list, RouteSelector};

use super::config::{Observed, RouteMode, State};
use super::error::CmdError;
use super::parse::{self, parse_lladdr, Family, LladdrError, Parsed};
use super::show::{LinkFilter, Style};
use addr::address;
use link::link;
use neigh::neigh;
use route::route;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The size of a device name's buffer in the kernel, its final NUL included.
const IFNAMSIZ: usize = 16;

/// The paths under which the reference found iproute2; `execv` needs a full path.
const IP_PATHS: [&str; 4] = ["/bin/ip", "/sbin/ip", "/usr/bin/ip", "/usr/sbin/ip"];

const IP_USAGE: &str = include_str!("../usage/ip.txt");
const LINK_USAGE: &str = include_str!("../usage/link.txt");
const ADDR_USAGE: &str = include_str!("../usage/address.txt");
const ROUTE_USAGE: &str = include_str!("../usage/route.txt");
const NEIGH_USAGE: &str = include_str!("../usage/neigh.txt");

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

/// Runs one command of a stackcmd string (its argv) against the model, with
/// what the stack observed for the commands that show it.
pub(super) fn run_command(
    state: &mut State,
    argv: &[String],
    observed: &Observed,
) -> Result<String, CmdError> {
    let Some(path) = argv.first() else {
        return Ok(String::new());
    };
    if IP_PATHS.contains(&path.as_str()) {
        return ip(state, &argv[1..], observed);
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
    /// `-s`: counters in `ip link` and `ip addr` listings.
    Stats,
    /// `-br`: brief listings.
    Brief,
    /// `-o`: a listing's records on one line each.
    Oneline,
    /// `-j`: JSON.
    Json,
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
    ("-stats", Prefix, Opt::Stats),
    ("-statistics", Prefix, Opt::Stats),
    ("-details", Prefix, Opt::Unsupported),
    ("-resolve", Prefix, Opt::Unsupported),
    ("-oneline", Prefix, Opt::Oneline),
    ("-timestamp", Prefix, Opt::Unsupported),
    ("-tshort", Prefix, Opt::Unsupported),
    ("-Version", Prefix, Opt::Unsupported),
    ("-force", Prefix, Opt::Ignored),
    ("-batch", Prefix, Opt::Unsupported),
    ("-brief", Prefix, Opt::Brief),
    ("-json", Prefix, Opt::Json),
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
    Neigh,
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
    ("neighbor", Prefix, Object::Neigh),
    ("neighbour", Prefix, Object::Neigh),
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
fn ip(state: &mut State, words: &[String], observed: &Observed) -> Result<String, CmdError> {
    let mut args = Args::new(words);
    let mut family = Family::Unspec;
    let mut stats = 0;
    let mut style = Style::default();
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
            Some((_, Opt::Stats)) => stats += 1,
            Some((_, Opt::Brief)) => style.brief = true,
            Some((_, Opt::Oneline)) => style.oneline = true,
            Some((_, Opt::Json)) => style.json = true,
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
    // The counters, where `-s` asked for them, and their error detail
    // (`-s -s`; more `-s` add nothing).
    style.stats = (stats >= 1).then_some(observed.stats.as_slice());
    style.error_detail = stats >= 2;
    match pick(object, OBJECTS) {
        Some((_, Object::Address)) => address(state, family, rest, style),
        Some((_, Object::Link)) => link(state, rest, style),
        Some((_, Object::Route)) => route(state, family, rest, style.json, style.oneline),
        Some((_, Object::Neigh)) if style.stats.is_some() => Err(unsupported(
            "option \"-stats\" with \"ip neigh\" (its use counters)",
        )),
        Some((_, Object::Neigh)) => neigh(state, family, rest, &observed.neighbors, style),
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
    /// `change`: replace what exists, create nothing.
    Change,
    /// `ip route add|replace|change|prepend|append|test`: what the command
    /// asks of routes already there.
    Route(RouteMode),
    Set,
    Delete,
    Show,
    Flush,
    /// `ip route get`, `ip neigh get`.
    Get,
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

/// The all-zero address of a family: where a default route points.
fn zero(family: Family) -> IpAddr {
    match family {
        Family::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
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
