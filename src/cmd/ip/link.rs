//! `ip link`: listing links, and `ip link set` (hardware address, MTU, name, up
//! and down), whose changes the model's `set_*` methods make with Linux's checks.

use super::{
    cannot_find, duparg, duparg2, invarg, list_filter, matches, no_dev_given, pick, refuse,
    unknown_command, unsupported, usage, Args, Cmd, Exact, Match, Prefix, IFNAMSIZ, LINK_USAGE,
};
use crate::cmd::config::{rtnl, LinkFlag, State};
use crate::cmd::error::CmdError;
use crate::cmd::parse::{get_integer, parse_lladdr, LladdrError};
use crate::cmd::show::{self, LinkFilter, Style};

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

pub(super) fn link(state: &mut State, words: &[String], style: Style) -> Result<String, CmdError> {
    let Some(cmd) = words.first() else {
        return Ok(show::links(state, LinkFilter::default(), style));
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
            Ok(show::links(state, filter, style))
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
    Name,
    /// `txqueuelen`, `qlen`, `txqlen`.
    TxQueueLen,
    Alias,
    Group,
    /// A flag set `on` or `off`; `inverted`: `on` clears it (`trailers`).
    Flag {
        flag: LinkFlag,
        inverted: bool,
    },
    AddrGenMode,
    /// `arp on|off`: its value is checked, then refused (the stack always
    /// resolves its neighbours).
    Arp,
    /// A keyword the stack cannot honour; true if it takes a value.
    Unsupported(bool),
}

/// The keywords of `ip link set` in iproute2 6.1's order; any other word names the
/// device.
const LINK_SET_KEYWORDS: &[(&str, Match, LinkKw)] = &[
    ("up", Exact, LinkKw::Up),
    ("down", Exact, LinkKw::Down),
    ("name", Exact, LinkKw::Name),
    ("index", Exact, LinkKw::Unsupported(true)),
    ("link", Prefix, LinkKw::Unsupported(true)),
    ("address", Prefix, LinkKw::Address),
    ("broadcast", Prefix, LinkKw::Unsupported(true)),
    ("brd", Exact, LinkKw::Unsupported(true)),
    ("txqueuelen", Prefix, LinkKw::TxQueueLen),
    ("qlen", Exact, LinkKw::TxQueueLen),
    ("txqlen", Prefix, LinkKw::TxQueueLen),
    ("mtu", Exact, LinkKw::Mtu),
    ("xdpgeneric", Exact, LinkKw::Unsupported(true)),
    ("xdpdrv", Exact, LinkKw::Unsupported(true)),
    ("xdpoffload", Exact, LinkKw::Unsupported(true)),
    ("xdp", Exact, LinkKw::Unsupported(true)),
    ("netns", Exact, LinkKw::Unsupported(true)),
    (
        "multicast",
        Exact,
        LinkKw::Flag {
            flag: LinkFlag::Multicast,
            inverted: false,
        },
    ),
    (
        "allmulticast",
        Exact,
        LinkKw::Flag {
            flag: LinkFlag::AllMulti,
            inverted: false,
        },
    ),
    (
        "promisc",
        Exact,
        LinkKw::Flag {
            flag: LinkFlag::Promisc,
            inverted: false,
        },
    ),
    (
        "trailers",
        Exact,
        LinkKw::Flag {
            flag: LinkFlag::NoTrailers,
            inverted: true,
        },
    ),
    ("arp", Exact, LinkKw::Arp),
    ("carrier", Exact, LinkKw::Unsupported(true)),
    ("vf", Exact, LinkKw::Unsupported(true)),
    ("master", Prefix, LinkKw::Unsupported(true)),
    ("vrf", Exact, LinkKw::Unsupported(true)),
    ("nomaster", Prefix, LinkKw::Unsupported(false)),
    (
        "dynamic",
        Prefix,
        LinkKw::Flag {
            flag: LinkFlag::Dynamic,
            inverted: false,
        },
    ),
    ("type", Prefix, LinkKw::Unsupported(true)),
    ("alias", Prefix, LinkKw::Alias),
    ("group", Exact, LinkKw::Group),
    ("mode", Exact, LinkKw::Unsupported(true)),
    ("state", Exact, LinkKw::Unsupported(true)),
    ("numtxqueues", Prefix, LinkKw::Unsupported(true)),
    ("numrxqueues", Prefix, LinkKw::Unsupported(true)),
    ("addrgenmode", Prefix, LinkKw::AddrGenMode),
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

/// `ip link set [dev] DEV { up | down | mtu N | address MAC | name NAME }...`;
/// with `apply`
/// false, only the checks iproute2 makes before asking the kernel.
fn link_set(state: &mut State, words: &[String], apply: bool) -> Result<(), CmdError> {
    let mut args = Args::new(words);
    let mut dev: Option<&str> = None;
    let mut up = None;
    let mut mtu = None;
    let mut mac = None;
    let mut name = None;
    let mut qlen: Option<i32> = None;
    let mut alias: Option<&str> = None;
    let mut group: Option<u32> = None;
    // Flags to set (`flags`) among those changed (`mask`), as iproute2 sends them.
    let (mut flags, mut mask) = (0u32, 0u32);
    let mut no_link_local: Option<bool> = None;
    // The kernel's rule for interface names, checked by iproute2.
    let c_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
    let valid_ifname =
        |n: &str| !n.is_empty() && n.len() < IFNAMSIZ && !n.contains('/') && !n.contains(c_space);
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
            Some((_, LinkKw::Name)) => {
                let value = args.value()?;
                if !valid_ifname(value) {
                    return Err(invarg("\"name\" not a valid ifname", value));
                }
                name = Some(value);
            }
            Some((_, LinkKw::TxQueueLen)) => {
                let value = args.value()?;
                if qlen.is_some() {
                    return Err(duparg("txqueuelen", value));
                }
                qlen = Some(
                    get_integer(value)
                        .ok_or_else(|| invarg("Invalid \"txqueuelen\" value\n", value))?,
                );
            }
            Some((_, LinkKw::Alias)) => {
                let value = args.value()?;
                // IFALIASZ
                if value.len() >= 256 {
                    return Err(invarg("alias too long\n", value));
                }
                alias = Some(value);
            }
            Some((_, LinkKw::Group)) => {
                let value = args.value()?;
                if group.is_some() {
                    return Err(duparg("group", value));
                }
                let number = get_integer(value).filter(|&n| n >= 0).map(|n| n as u32);
                group = Some(
                    (if value == "default" { Some(0) } else { number })
                        .ok_or_else(|| invarg("Invalid \"group\" value\n", value))?,
                );
            }
            Some((word, LinkKw::Flag { flag, inverted })) => {
                let on = on_off(word, args.value()?)?;
                mask |= flag as u32;
                if on != inverted {
                    flags |= flag as u32;
                } else {
                    flags &= !(flag as u32);
                }
            }
            Some((word, LinkKw::Arp)) => {
                on_off(word, args.value()?)?;
                return Err(unsupported("\"ip link set ... arp\""));
            }
            Some((_, LinkKw::AddrGenMode)) => {
                let value = args.value()?;
                no_link_local = Some(match value {
                    "eui64" => false,
                    "none" => true,
                    "stable_secret" | "random" => {
                        return Err(unsupported(&format!("\"addrgenmode {value}\"")))
                    }
                    _ => return Err(invarg("Invalid address generation mode\n", value)),
                });
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
    if dev.is_none() && group.is_some() {
        // iproute2 then changes every link of the group.
        return Err(unsupported("\"ip link set group\""));
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
    if let Some(name) = name {
        state.set_name(index, name)?;
    }
    if qlen.is_some_and(|q| q < 0) {
        // Linux 6.18 refuses a length that does not fit its int.
        return Err(rtnl("Operation not permitted"));
    }
    state.set_link_settings(index, |s| {
        if let Some(q) = qlen {
            s.qlen = q as u32;
        }
        if let Some(alias) = alias {
            s.alias = (!alias.is_empty()).then(|| alias.to_string());
        }
        if let Some(group) = group {
            s.group = group;
        }
        s.flags = (s.flags & !mask) | flags;
        if let Some(none) = no_link_local {
            s.no_link_local = none;
        }
    });
    if let Some(up) = up {
        state.set_up(index, up)?;
    }
    Ok(())
}

/// The value of a flag keyword, `on` or `off`, or iproute2's error.
fn on_off(keyword: &str, value: &str) -> Result<bool, CmdError> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(CmdError::new(
            1,
            format!("Error: argument of \"{keyword}\" must be \"on\" or \"off\", not \"{value}\""),
        )),
    }
}
