//! `ip neigh`: `add|replace|change|del` of static entries, made by the model's
//! `set_neighbor` and `del_neighbor` with Linux's checks, and `show|flush`,
//! which list the static entries and those the stack learned (given by the
//! engine).

use super::{
    cannot_find, duparg, duparg2, get_addr, get_prefix, invarg, matches, pick, unsupported, usage,
    Args, Cmd, Exact, Match, Prefix, NEIGH_USAGE,
};
use crate::cmd::config::{kernel, NeighMode, Neighbor, NeighborState, State};
use crate::cmd::error::CmdError;
use crate::cmd::parse::{parse_lladdr, Family, LladdrError, Parsed};
use crate::cmd::show::{self, Style};
use std::net::IpAddr;

const NEIGH_CMDS: &[(&str, Match, Cmd)] = &[
    ("add", Prefix, Cmd::Add),
    ("change", Prefix, Cmd::Change),
    ("chg", Exact, Cmd::Change),
    ("replace", Prefix, Cmd::Replace),
    ("delete", Prefix, Cmd::Delete),
    ("list", Prefix, Cmd::Show),
    ("show", Prefix, Cmd::Show),
    ("lst", Prefix, Cmd::Show),
    ("flush", Prefix, Cmd::Flush),
    ("get", Exact, Cmd::Get),
    ("help", Prefix, Cmd::Help),
];

/// The states `nud` takes; those the stack keeps no entry in are refused.
const NUD_STATES: &[(&str, Option<NeighborState>)] = &[
    ("permanent", Some(NeighborState::Permanent)),
    ("reachable", Some(NeighborState::Reachable)),
    ("noarp", Some(NeighborState::Noarp)),
    ("none", Some(NeighborState::None)),
    ("stale", Some(NeighborState::Stale)),
    ("incomplete", None),
    ("delay", None),
    ("probe", None),
    ("failed", None),
];

/// A `nud` value: `Ok(None)` for a state the stack cannot hold.
fn nud_state(value: &str) -> Result<Option<NeighborState>, CmdError> {
    NUD_STATES
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, state)| *state)
        .ok_or_else(|| invarg("nud state is bad", value))
}

pub(super) fn neigh(
    state: &mut State,
    family: Family,
    words: &[String],
    learned: &[Neighbor],
    style: Style,
) -> Result<String, CmdError> {
    let list = Listing {
        learned,
        brief: style.brief,
        json: style.json,
    };
    let Some(cmd) = words.first() else {
        return neigh_list(state, family, &[], false, list);
    };
    let rest = &words[1..];
    let mode = match pick(cmd, NEIGH_CMDS) {
        Some((_, Cmd::Add)) => NeighMode::Add,
        Some((_, Cmd::Replace)) => NeighMode::Replace,
        Some((_, Cmd::Change)) => NeighMode::Change,
        Some((_, Cmd::Delete)) => return neigh_modify(state, family, rest, None),
        Some((_, Cmd::Show)) => return neigh_list(state, family, rest, false, list),
        Some((_, Cmd::Flush)) => return neigh_list(state, family, rest, true, list),
        Some((_, Cmd::Get)) => return neigh_get(state, family, rest, list),
        Some((_, Cmd::Help)) => return Err(usage(NEIGH_USAGE)),
        Some((name, _)) => return Err(unsupported(&format!("\"ip neigh {name}\""))),
        None => {
            return Err(CmdError::new(
                255,
                format!("Command \"{cmd}\" is unknown, try \"ip neigh help\"."),
            ))
        }
    };
    neigh_modify(state, family, rest, Some(mode))
}

/// `ip neigh add|replace|change|del [to] ADDR [lladdr MAC] [nud STATE] dev DEV`;
/// `mode` is `None` for `del`.
fn neigh_modify(
    state: &mut State,
    family: Family,
    words: &[String],
    mode: Option<NeighMode>,
) -> Result<String, CmdError> {
    let mut args = Args::new(words);
    let mut dst: Option<IpAddr> = None;
    let mut dev: Option<&str> = None;
    let mut mac: Option<Vec<u8>> = None;
    let mut nud = NeighborState::Permanent;
    while let Some(word) = args.next() {
        match word {
            "lladdr" => {
                let value = args.value()?;
                if mac.is_some() {
                    return Err(duparg("lladdr", value));
                }
                mac = Some(parse_lladdr(value).map_err(|LladdrError::Invalid(part)| {
                    CmdError::new(1, format!("\"{part}\" is invalid lladdr."))
                })?);
            }
            "nud" => {
                let value = args.value()?;
                nud = nud_state(value)?
                    .ok_or_else(|| unsupported(&format!("the \"{value}\" neighbour state")))?;
            }
            "proxy" => {
                args.value()?;
                return Err(unsupported("\"ip neigh ... proxy\""));
            }
            "router" | "extern_learn" | "use" | "managed" => {
                return Err(unsupported(&format!("\"ip neigh ... {word}\"")));
            }
            "protocol" => {
                args.value()?;
                return Err(unsupported("\"ip neigh ... protocol\""));
            }
            "dev" => dev = Some(args.value()?),
            _ => read_destination(&mut args, word, family, &mut dst)?,
        }
    }
    let (Some(dst), Some(dev)) = (dst, dev) else {
        return Err(CmdError::new(
            255,
            "Device and destination are required arguments.",
        ));
    };
    let index = state.find(dev).ok_or_else(|| cannot_find(dev))?;
    if state.link(index).kind == crate::cmd::LinkKind::Loopback {
        return Err(unsupported("a neighbour entry on the loopback device"));
    }
    match mode {
        None => state.del_neighbor(index, dst)?,
        Some(mode) => {
            let entry = Neighbor::new(index, dst, None, nud);
            let given = mac.as_deref().filter(|_| nud != NeighborState::None);
            state.set_neighbor(entry, given, mode)?;
        }
    }
    Ok(String::new())
}

/// What a listing shows besides the static entries, and how (`-br`).
#[derive(Clone, Copy)]
struct Listing<'a> {
    learned: &'a [Neighbor],
    brief: bool,
    json: bool,
}

/// `ip neigh show|flush [to PREFIX] [dev DEV] [nud STATE|all]`.
/// `[to] ADDR` of `ip neigh add|del|get`, starting at `word`, into `dst`
/// (iproute2's error for a second one).
fn read_destination(
    args: &mut Args,
    word: &str,
    family: Family,
    dst: &mut Option<IpAddr>,
) -> Result<(), CmdError> {
    let word = if word == "to" { args.value()? } else { word };
    if matches(word, "help") {
        return Err(usage(NEIGH_USAGE));
    }
    if dst.is_some() {
        return Err(duparg2("to", word));
    }
    *dst = Some(get_addr(word, family, "to")?);
    Ok(())
}

/// `ip neigh get [to] ADDR dev DEV`: the one entry, static or learned, as
/// `ip neigh show` prints it with the device (iproute2 6.1 prints text even
/// with `-j`), or the kernel's "not found".
fn neigh_get(
    state: &State,
    family: Family,
    words: &[String],
    list: Listing,
) -> Result<String, CmdError> {
    let mut args = Args::new(words);
    let mut dev: Option<&str> = None;
    let mut dst: Option<IpAddr> = None;
    while let Some(word) = args.next() {
        match word {
            "dev" => dev = Some(args.value()?),
            "proxy" => {
                args.value()?;
                return Err(unsupported("\"ip neigh get ... proxy\""));
            }
            _ => read_destination(&mut args, word, family, &mut dst)?,
        }
    }
    let (Some(dev), Some(dst)) = (dev, dst) else {
        return Err(CmdError::new(
            1,
            "Device and address are required arguments.",
        ));
    };
    let dev = state.find(dev).ok_or_else(|| cannot_find(dev))?;
    let entry = state
        .neighbors
        .iter()
        .chain(list.learned)
        .find(|n| n.dev == dev && n.addr == dst)
        .ok_or_else(|| kernel("Neighbour entry not found."))?;
    Ok(show::neighbor_line(state, entry, true, list.brief))
}

fn neigh_list(
    state: &mut State,
    family: Family,
    words: &[String],
    flush: bool,
    list: Listing,
) -> Result<String, CmdError> {
    if flush && words.is_empty() {
        return Err(CmdError::new(1, "Flush requires arguments."));
    }
    let mut args = Args::new(words);
    let mut dev: Option<&str> = None;
    let mut prefix: Option<(IpAddr, u8)> = None;
    // None: the default, which hides NOARP and NONE entries; Some(None): all.
    let mut nud: Option<Option<NeighborState>> = None;
    while let Some(word) = args.next() {
        match word {
            "dev" => dev = Some(args.value()?),
            "nud" => {
                let value = args.value()?;
                nud =
                    Some(if value == "all" {
                        None
                    } else {
                        Some(nud_state(value)?.ok_or_else(|| {
                            unsupported(&format!("the \"{value}\" neighbour state"))
                        })?)
                    });
            }
            "proxy" | "nomaster" | "unused" => {
                return Err(unsupported(&format!("the \"{word}\" selector")));
            }
            "vrf" | "master" => {
                args.value()?;
                return Err(unsupported(&format!("the \"{word}\" selector")));
            }
            _ => {
                let word = if word == "to" { args.value()? } else { word };
                if matches(word, "help") {
                    return Err(usage(NEIGH_USAGE));
                }
                match get_prefix(word, family)? {
                    Parsed::Addr { addr, prefix_len } => {
                        let host = if addr.is_ipv4() { 32 } else { 128 };
                        prefix = Some((addr, prefix_len.unwrap_or(host)));
                    }
                    Parsed::Default | Parsed::Any => prefix = None,
                }
            }
        }
    }
    let dev = match dev {
        Some(d) => Some(state.find(d).ok_or_else(|| cannot_find(d))?),
        None => None,
    };
    let selects = |n: &Neighbor| {
        let family_ok = match family {
            Family::Inet => n.addr.is_ipv4(),
            Family::Inet6 => n.addr.is_ipv6(),
            Family::Unspec => true,
            Family::Packet | Family::Other(_) => false,
        };
        let state_ok = match nud {
            None => !matches!(n.state, NeighborState::Noarp | NeighborState::None),
            Some(None) => true,
            Some(Some(s)) => n.state == s,
        };
        family_ok
            && state_ok
            && dev.is_none_or(|d| d == n.dev)
            && prefix.is_none_or(|(addr, len)| {
                addr.is_ipv4() == n.addr.is_ipv4()
                    && crate::cmd::config::in_prefix(n.addr, addr, len)
            })
    };
    if flush {
        state.flush_learned(list.learned, selects);
        state.flush_neighbors(selects);
        return Ok(String::new());
    }
    let statics = state.neighbors.iter();
    // A learned entry the commands also made is shown once, as made.
    let learned = list.learned.iter().filter(|l| {
        !state
            .neighbors
            .iter()
            .any(|n| n.dev == l.dev && n.addr == l.addr)
    });
    // Linux dumps its ARP table, then its IPv6 one; within each, the order
    // of its hash table, which a random seed decides.
    let mut shown: Vec<&Neighbor> = statics.chain(learned).filter(|n| selects(n)).collect();
    shown.sort_by_key(|n| n.addr.is_ipv6());
    let shown = shown.into_iter();
    if list.json {
        let items: Vec<String> = shown
            .map(|n| show::neighbor_json(state, n, dev.is_none()))
            .collect();
        return Ok(show::objects_json(&items));
    }
    Ok(shown
        .map(|n| show::neighbor_line(state, n, dev.is_none(), list.brief))
        .collect())
}
