//! Interfaces as a program sees them (`getifaddrs`, `if_nameindex`, the SIOCGIF*
//! ioctls): the links of the model with the flags Linux gives them, or read back
//! from what `ip addr show` prints, for a stack whose model is a kernel's.

use super::config::{IfAddr, Link, LinkKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An interface's flags, as `SIOCGIFFLAGS` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceFlags {
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Up with a carrier (`IFF_RUNNING`; `LOWER_UP` in `ip`'s output).
    pub running: bool,
    /// The loopback (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// Has a broadcast address (`IFF_BROADCAST`).
    pub broadcast: bool,
    /// Takes multicast (`IFF_MULTICAST`).
    pub multicast: bool,
}

impl InterfaceFlags {
    /// The `IFF_*` bits of `struct ifreq`'s `ifr_flags`.
    pub fn bits(&self) -> u32 {
        // Linux's values (<net/if.h>).
        [
            (self.up, 0x1),
            (self.broadcast, 0x2),
            (self.loopback, 0x8),
            (self.running, 0x40),
            (self.multicast, 0x1000),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |bits, (_, bit)| bits | bit)
    }
}

/// One interface of a stack: what `ip addr show` shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The index (`lo` is 1).
    pub index: u32,
    /// The name.
    pub name: String,
    /// Its flags.
    pub flags: InterfaceFlags,
    /// The hardware address (all zeros for `lo`).
    pub mac: [u8; 6],
    /// The MTU.
    pub mtu: u32,
    /// The addresses, IPv4 first, in `ip addr`'s order.
    pub addrs: Vec<IfAddr>,
}

impl Interface {
    /// The interface a link of the model is, with the flags Linux gives it.
    pub fn of_link(link: &Link) -> Interface {
        let ether = link.kind == LinkKind::Ether;
        Interface {
            index: link.index,
            name: link.name.clone(),
            flags: InterfaceFlags {
                up: link.up,
                running: link.up,
                loopback: !ether,
                broadcast: ether,
                multicast: ether,
            },
            mac: link.mac,
            mtu: link.mtu,
            addrs: link.addrs.clone(),
        }
    }

    /// Reads the interfaces out of what `ip addr show` prints (iproute2's format,
    /// as a kernel stack's namespace gives it). Lines it does not know are
    /// skipped; an interface line that cannot be read is an error naming it.
    pub fn parse_ip_addr_show(text: &str) -> Result<Vec<Interface>, String> {
        let mut out: Vec<Interface> = Vec::new();
        for line in text.lines() {
            if line.starts_with(|c: char| c.is_ascii_digit()) {
                out.push(parse_header(line).ok_or_else(|| format!("cannot read {line:?}"))?);
                continue;
            }
            let Some(current) = out.last_mut() else {
                continue;
            };
            let mut words = line.split_ascii_whitespace();
            match words.next() {
                Some(kind) if kind.starts_with("link/") => {
                    if let Some(mac) = words.next().and_then(parse_mac) {
                        current.mac = mac;
                    }
                }
                Some(family @ ("inet" | "inet6")) => {
                    let cidr = words.next().unwrap_or("");
                    let addr = cidr
                        .split_once('/')
                        .and_then(|(a, p)| {
                            Some((
                                a.split('%').next()?.parse::<IpAddr>().ok()?,
                                p.parse::<u8>().ok()?,
                            ))
                        })
                        .filter(|(a, p)| a.is_ipv4() == (family == "inet") && *p <= max_prefix(*a));
                    let (addr, prefix_len) = addr.ok_or_else(|| format!("cannot read {line:?}"))?;
                    current.addrs.push(IfAddr { addr, prefix_len });
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The netmask of a prefix length, for `addr`'s family.
pub fn netmask(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(_) => {
            let bits = u32::MAX
                .checked_shl(32 - u32::from(prefix_len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits))
        }
        IpAddr::V6(_) => {
            let bits = u128::MAX
                .checked_shl(128 - u32::from(prefix_len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// `N: NAME: <FLAGS> mtu M ...` (a name may carry `@PEER`).
fn parse_header(line: &str) -> Option<Interface> {
    let (index, rest) = line.split_once(": ")?;
    let (name, rest) = rest.split_once(": ")?;
    let name = name.split('@').next()?;
    let rest = rest.strip_prefix('<')?;
    let (flags, rest) = rest.split_once('>')?;
    let mut words = rest.split_ascii_whitespace();
    let mtu = match (words.next(), words.next()) {
        (Some("mtu"), Some(mtu)) => mtu.parse().ok()?,
        _ => return None,
    };
    let has = |f: &str| flags.split(',').any(|x| x == f);
    Some(Interface {
        index: index.parse().ok()?,
        name: name.to_owned(),
        flags: InterfaceFlags {
            up: has("UP"),
            running: has("UP") && has("LOWER_UP"),
            loopback: has("LOOPBACK"),
            broadcast: has("BROADCAST"),
            multicast: has("MULTICAST"),
        },
        mac: [0; 6],
        mtu,
        addrs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::NetConfig;

    #[test]
    fn the_model_read_back_from_ip_addr_show() {
        let mut config = NetConfig::new("vde0", [2, 0, 0, 0, 0, 1]);
        config
            .run("/bin/ip link set lo up; /bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; /bin/ip addr add 2001:db8::1/64 dev vde0")
            .unwrap();
        let model: Vec<Interface> = config.links().iter().map(Interface::of_link).collect();
        let shown = config.clone().run("/bin/ip addr show").unwrap();
        assert_eq!(Interface::parse_ip_addr_show(&shown).unwrap(), model);
        let vde0 = &model[1];
        assert_eq!(vde0.flags.bits(), 0x1 | 0x2 | 0x40 | 0x1000);
        assert_eq!(model[0].flags.bits(), 0x1 | 0x8 | 0x40);
        assert_eq!(
            netmask(vde0.addrs[0].addr, 24),
            "255.255.255.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            netmask(vde0.addrs[1].addr, 64),
            "ffff:ffff:ffff:ffff::".parse::<IpAddr>().unwrap()
        );
        assert!(Interface::parse_ip_addr_show("2: x: <UP> mtu y").is_err());
        assert!(Interface::parse_ip_addr_show(
            "2: x: <UP> mtu 9\n    inet 1.2.3.4/40 scope global"
        )
        .is_err());
    }
}
