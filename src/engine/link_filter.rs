//! The Ethernet multicast addresses the stack listens to, for the link's filter.
//!
//! A `vde_switch` floods every multicast frame to every port, as a hub would,
//! so without a filter each stack's pump wakes for every other stack's duplicate
//! address detection solicitation (to that address's solicited-node group) and
//! every group any socket on the switch joined. A NIC programs its multicast
//! filter with the groups its host listens to; the stack does the same: the
//! engine works out the set here (no system call), and the pump hands it to
//! the link ([`crate::link::Link::set_multicast_filter`]) whenever it changes;
//! a link that cannot filter takes everything, and the engine drops what it
//! does not listen to, as before.
//!
//! The set, as Linux's `ip maddr` shows it on the Ethernet link:
//! - all-nodes (`ff02::1`, 33:33:00:00:00:01) and IPv4's all-systems
//!   (`224.0.0.1`, 01:00:5e:00:00:01), which every host belongs to;
//! - the solicited-node group (`ff02::1:ffXX:XXXX`, 33:33:ff:XX:XX:XX) of each
//!   IPv6 address of the link, tentative ones included: duplicate address
//!   detection hears another node's claim there;
//! - the group of each group a socket joined (RFC 2464's 33:33 and the low 32
//!   bits for IPv6, RFC 1112's 01:00:5e and the low 23 bits for IPv4).
//!
//! The all-routers (33:33:00:00:00:02) and MLDv2 report (33:33:00:00:00:16)
//! groups are never in it (a stack is no router), unless a socket joined a
//! group mapping to them.

use super::Engine;
use crate::cmd::{LinkKind, NetConfig};
use std::net::IpAddr;

/// The Ethernet address of IPv6 group `bits` (RFC 2464 7).
fn ipv6_group_mac(bits: [u8; 16]) -> [u8; 6] {
    [0x33, 0x33, bits[12], bits[13], bits[14], bits[15]]
}

/// The multicast Ethernet addresses a stack configured as `config`, whose
/// sockets joined `groups`, listens to: sorted, each once.
pub(super) fn listened_macs<'a>(
    config: &NetConfig,
    groups: impl Iterator<Item = &'a IpAddr>,
) -> Vec<[u8; 6]> {
    let mut macs = vec![[0x33, 0x33, 0, 0, 0, 1], [0x01, 0x00, 0x5e, 0, 0, 1]];
    for link in config.links() {
        if link.kind != LinkKind::Ether {
            continue;
        }
        for addr in &link.addrs {
            if let IpAddr::V6(v6) = addr.addr {
                let o = v6.octets();
                macs.push([0x33, 0x33, 0xff, o[13], o[14], o[15]]);
            }
        }
    }
    for group in groups {
        match group {
            IpAddr::V6(v6) => macs.push(ipv6_group_mac(v6.octets())),
            IpAddr::V4(v4) => {
                let o = v4.octets();
                macs.push([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]);
            }
        }
    }
    macs.sort_unstable();
    macs.dedup();
    macs
}

/// What the link's filter was last given.
#[derive(Debug, Default)]
pub(super) struct FilterState {
    /// The configuration generation it was worked out for.
    generation: Option<u64>,
    /// A socket joined or left a group since.
    groups_moved: bool,
    /// The set handed out last.
    macs: Vec<[u8; 6]>,
}

impl FilterState {
    /// A socket joined or left a group.
    pub(super) fn groups_moved(&mut self) {
        self.groups_moved = true;
    }
}

impl Engine {
    /// The multicast Ethernet addresses the link should let through, when they
    /// differ from those this last returned (the first call always returns
    /// them). Cheap when nothing changed: the pump asks at every step.
    pub(crate) fn take_multicast_filter(&mut self) -> Option<Vec<[u8; 6]>> {
        let generation = self.config.generation();
        let state = &mut self.link_filter;
        if state.generation == Some(generation) && !state.groups_moved {
            return None;
        }
        let first = state.generation.is_none();
        state.generation = Some(generation);
        state.groups_moved = false;
        let macs = listened_macs(&self.config, self.groups.keys());
        if !first && macs == self.link_filter.macs {
            return None;
        }
        self.link_filter.macs.clone_from(&macs);
        Some(macs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn model(cmds: &str) -> NetConfig {
        let mut config = NetConfig::new("vde0", [0x02, 0, 0, 0, 0, 0x0a]);
        config.run(cmds).expect("commands");
        config
    }

    #[test]
    fn a_fresh_stack_listens_to_all_nodes_and_all_systems_only() {
        let macs = listened_macs(&model(""), std::iter::empty());
        assert_eq!(
            macs,
            vec![[0x01, 0x00, 0x5e, 0, 0, 1], [0x33, 0x33, 0, 0, 0, 1]]
        );
    }

    #[test]
    fn each_ipv6_address_brings_its_solicited_node_group() {
        let config = model(
            "/bin/ip addr add fd00::1:2:3/64 dev vde0; /bin/ip addr add 10.0.0.1/24 dev vde0; \
             /bin/ip addr add fd00::9:2:3/64 dev vde0; /bin/ip addr add fd00::77/128 dev lo",
        );
        let macs = listened_macs(&config, std::iter::empty());
        // One for both addresses ending in 02:00:03; none for IPv4 or lo.
        assert!(macs.contains(&[0x33, 0x33, 0xff, 0x02, 0x00, 0x03]));
        assert!(!macs.contains(&[0x33, 0x33, 0xff, 0x00, 0x00, 0x77]));
        assert_eq!(macs.len(), 3, "{macs:02x?}");
        // Up, the link has its link-local address (fe80::ff:fe00:a), and its
        // group.
        let mut config = config;
        config.run("/bin/ip link set vde0 up").expect("up");
        let macs = listened_macs(&config, std::iter::empty());
        assert!(macs.contains(&[0x33, 0x33, 0xff, 0x00, 0x00, 0x0a]));
    }

    #[test]
    fn joined_groups_of_both_families_are_listened_to() {
        let groups = [
            IpAddr::V6("ff12::1234:5678".parse::<Ipv6Addr>().unwrap()),
            IpAddr::V4(Ipv4Addr::new(239, 129, 2, 3)),
        ];
        let macs = listened_macs(&model(""), groups.iter());
        assert!(macs.contains(&[0x33, 0x33, 0x12, 0x34, 0x56, 0x78]));
        // The 24th bit from the end is not in the Ethernet address.
        assert!(macs.contains(&[0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]));
        assert!(!macs.contains(&[0x33, 0x33, 0, 0, 0, 2]));
        assert!(!macs.contains(&[0x33, 0x33, 0, 0, 0, 0x16]));
    }
}
