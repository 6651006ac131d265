//! Next hops the engine chooses itself, where smoltcp cannot.
//!
//! smoltcp decides what is on-link from the prefixes of the (at most 8)
//! addresses it holds, and fills its IPv4 neighbour cache only from ARP
//! packets of those networks. A stack with more prefixes than that has
//! addresses smoltcp does not hold (`config_plan`: the engine serves them),
//! and their prefixes are on-link for the model but not for smoltcp. So
//! smoltcp gets a route for each such prefix through a made-up neighbour
//! (`DETOUR_V4`: the network address of an IPv4 prefix it holds, `DETOUR_V6`:
//! an address of the discard prefix 100::/64, RFC 6666), whose hardware
//! address is [`DETOUR_MAC`], handed to its cache as static entries are. A
//! frame leaving for that address is taken at the device boundary
//! ([`Engine::next_outgoing`]): the model's lookup gives its real next hop,
//! the engine's neighbour table (static entries, what the wire said) its
//! hardware address, written in place of the made-up one. A frame whose next
//! hop is not known yet waits (up to [`HOLD`], at most [`PENDING_LIMIT`]
//! frames) while the engine asks for it (ARP or neighbour solicitation) and
//! leaves when the answer comes.
//!
//! A multipath route goes the same way: smoltcp routes it through the made-up
//! next hop of its family, and each frame takes the nexthop its flow's hash
//! picks (`flow_hash`, [`crate::cmd::NetConfig::lookup_flow`]).
//!
//! A reject route (`unreachable`, `prohibit`, `blackhole`, `throw`) stops
//! what smoltcp makes on its own for a destination it covers: the answers to
//! incoming packets (SYN-ACK, reset, echo reply, ICMP error), which Linux's
//! output lookup refuses as it refuses a `connect` there (checked on Linux
//! 6.18). Such frames are dropped at the same boundary
//! ([`Engine::rejected_by_route`]); datagrams from there are still delivered.
//!
//! An IPv4 route through an IPv6 gateway (`via inet6 GW`, RFC 5549) goes the
//! same way: smoltcp routes it through the made-up IPv4 next hop, and the
//! frames take the IPv6 neighbour's hardware address (which needs an IPv4
//! prefix of 4 addresses or more in smoltcp's table for the made-up one).

use super::{frames, Engine};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpCidr, IpProtocol, Ipv4Address,
    Ipv4Packet, Ipv6Address, Ipv6Packet,
};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

/// The hardware address of the made-up next hops: locally administered, and
/// never sent (every frame to it is rewritten or dropped).
pub(super) const DETOUR_MAC: EthernetAddress =
    EthernetAddress([0x06, 0x76, 0x64, 0x65, 0x74, 0x72]);

/// The made-up IPv6 next hop: 100::1, in the discard-only prefix (RFC 6666),
/// which no neighbour holds. smoltcp fills its IPv6 cache from any
/// advertisement, so it need not be on-link.
pub(super) const DETOUR_V6: Ipv6Address = Ipv6Address::new(0x100, 0, 0, 0, 0, 0, 0, 1);

/// How long a frame waits for its next hop's hardware address.
const HOLD: Duration = Duration::from_secs(3);

/// How many frames wait at most (then the oldest is dropped, as a full
/// neighbour queue drops on Linux).
const PENDING_LIMIT: usize = 64;

/// The made-up next hops the running interface has, and the frames waiting.
#[derive(Debug, Default)]
pub(super) struct Detours {
    /// The made-up IPv4 next hop, and the address smoltcp holds in its
    /// network (the ARP entry is aimed at it).
    pub(super) v4: Option<DetourV4>,
    /// Whether IPv6 prefixes are detoured.
    pub(super) v6: bool,
    /// Whether the model holds a reject route (frames are looked up only then).
    pub(super) rejects: bool,
    /// Frames waiting for their next hop: the next hop, since when, the frame.
    pending: VecDeque<(IpAddr, Duration, Vec<u8>)>,
}

/// A route as smoltcp takes it: destination, next hop.
pub(super) type SmoltcpRoute = (IpCidr, IpAddress);

/// The made-up IPv4 next hop, and smoltcp's own address in its network.
pub(super) type DetourV4 = (Ipv4Address, Ipv4Address);

/// The routes smoltcp gets through the made-up next hops: one per prefix of
/// an address beyond its table (`beyond`) that no prefix it holds (`held`)
/// covers, and the made-up IPv4 next hop with the address smoltcp holds in its
/// network (`None` when it holds no IPv4 prefix of 2 addresses or more whose
/// network address is not the stack's).
pub(super) fn detour_routes(
    held: &[IpCidr],
    beyond: &[IpCidr],
) -> (Vec<SmoltcpRoute>, Option<DetourV4>) {
    let v4 = held.iter().find_map(|c| match c {
        IpCidr::Ipv4(c) if c.prefix_len() <= 30 && !c.address().is_loopback() => {
            let network = c.network().address();
            let ours = held
                .iter()
                .chain(beyond)
                .any(|h| h.address() == network.into());
            (!ours).then_some((network, c.address()))
        }
        _ => None,
    });
    let mut routes: Vec<SmoltcpRoute> = Vec::new();
    for cidr in beyond {
        let network = match cidr {
            IpCidr::Ipv4(c) if !c.address().is_loopback() => match v4 {
                Some((gateway, _)) => (IpCidr::Ipv4(c.network()), IpAddress::Ipv4(gateway)),
                None => continue,
            },
            IpCidr::Ipv6(c) if !c.address().is_loopback() => {
                let bits = u128::from(c.address());
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(c.prefix_len()))
                    .unwrap_or(0);
                let network = Ipv6Address::from(bits & mask);
                (
                    IpCidr::new(network.into(), c.prefix_len()),
                    IpAddress::Ipv6(DETOUR_V6),
                )
            }
            _ => continue,
        };
        let covered = held.iter().any(|h| {
            h.contains_addr(&network.0.address()) && h.prefix_len() <= network.0.prefix_len()
        });
        if !covered && !routes.contains(&network) {
            routes.push(network);
        }
    }
    (routes, v4)
}

impl Engine {
    /// Hands smoltcp the made-up next hops' entries, as static neighbour
    /// entries are handed (see `neighbors.rs`).
    pub(super) fn fill_detour_neighbors(&mut self) {
        let mut frame = Vec::new();
        if let Some((gateway, us)) = self.detours.v4 {
            frames::write_arp_reply_to(&mut frame, DETOUR_MAC, gateway, self.io.mac, us);
            self.ingest_ready(&frame);
        }
        let us6 = self.io.local_v6.iter().copied().find(|a| !a.is_loopback());
        if let Some(us) = us6.filter(|_| self.detours.v6) {
            frame.clear();
            frames::write_neighbor_advert_to(
                &mut frame,
                (DETOUR_MAC, DETOUR_V6),
                (self.io.mac, us),
            );
            // The advert may be aimed at an address smoltcp does not hold.
            self.iface.set_any_ip(true);
            self.ingest_ready(&frame);
            self.iface.set_any_ip(false);
        }
    }

    /// A frame smoltcp sent to a made-up next hop: with the real next hop's
    /// hardware address, or `None` when it waits for it (or has none).
    pub(super) fn detour(&mut self, mut frame: Vec<u8>) -> Option<Vec<u8>> {
        let hop = frames::ip_dst(&frame)
            .and_then(|dst| self.config.lookup_flow(dst, flow_hash(&frame)))
            .filter(|hop| !hop.local);
        let Some(hop) = hop else {
            self.io.recycle(frame);
            return None;
        };
        if let Some(mac) = self.neighbor_mac(hop.addr) {
            frame[..6].copy_from_slice(mac.as_bytes());
            return Some(frame);
        }
        // An IPv6 gateway of an IPv4 route (RFC 5549) is asked from the
        // address the model would send to it from.
        let source = frames::ip_src(&frame)
            .filter(|src| src.is_ipv4() == hop.addr.is_ipv4())
            .or_else(|| self.config.lookup(hop.addr).and_then(|to_gw| to_gw.src));
        if let Some(source) = source {
            self.ask_for(source, hop.addr);
        }
        // smoltcp may hand the same segment again before the answer comes.
        if self
            .detours
            .pending
            .iter()
            .any(|(_, _, waiting)| *waiting == frame)
        {
            self.io.recycle(frame);
            return None;
        }
        if self.detours.pending.len() >= PENDING_LIMIT {
            if let Some((_, _, old)) = self.detours.pending.pop_front() {
                self.io.recycle(old);
            }
        }
        self.detours.pending.push_back((hop.addr, self.now, frame));
        None
    }

    /// Whether a reject route stops `frame`: its destination is a unicast
    /// address the model's lookup refuses with one. Neighbour discovery and
    /// broadcasts go out of the device without a route lookup, on Linux too.
    pub(super) fn rejected_by_route(&self, frame: &[u8]) -> bool {
        self.detours.rejects
            && routed_dst(frame)
                .is_some_and(|dst| !self.config.is_broadcast(dst) && self.config.rejected(dst))
    }

    /// Sends the waiting frames whose next hop is now known; drops those that
    /// waited too long.
    pub(super) fn release_detoured(&mut self) {
        for _ in 0..self.detours.pending.len() {
            let Some((hop, since, mut frame)) = self.detours.pending.pop_front() else {
                break;
            };
            match self.neighbor_mac(hop) {
                Some(mac) => {
                    frame[..6].copy_from_slice(mac.as_bytes());
                    self.io.outbox.push_back(frame);
                }
                None if self.now < since + HOLD => {
                    self.detours.pending.push_back((hop, since, frame))
                }
                None => self.io.recycle(frame),
            }
        }
    }

    /// The hardware address of neighbour `addr`: its static entry, or what the
    /// wire said lately.
    fn neighbor_mac(&self, addr: IpAddr) -> Option<EthernetAddress> {
        self.config
            .neighbors()
            .iter()
            .find(|n| n.addr == addr)
            .and_then(|n| n.mac)
            .map(EthernetAddress)
            .or_else(|| self.neighbor_table.mac_of(addr, self.now))
    }

    /// Asks the wire for `target`'s hardware address from `source`, unless it
    /// was asked for lately.
    pub(super) fn ask_for(&mut self, source: IpAddr, target: IpAddr) {
        if self.io.asked_lately(target) {
            return;
        }
        let mut frame = self.io.pool.pop().unwrap_or_default();
        match (source, target) {
            (IpAddr::V4(src), IpAddr::V4(target)) => {
                frames::write_arp_request(&mut frame, self.io.mac, src, target)
            }
            (IpAddr::V6(src), IpAddr::V6(target)) => {
                frames::write_neighbor_solicit(&mut frame, self.io.mac, src, target)
            }
            _ => return self.io.recycle(frame),
        }
        self.io.route(frame);
    }

    /// Answers an ARP request for one of the stack's addresses from a
    /// neighbour outside smoltcp's networks, as Linux answers any (smoltcp
    /// answers only its own networks, and only for the addresses it holds):
    /// a peer whose route to us goes through an IPv6 gateway, or in a prefix
    /// beyond smoltcp's table, asks from such an address. True if it did.
    pub(super) fn answer_arp_from_afar(&mut self, frame: &[u8]) -> bool {
        let Some((target, asker)) = frames::arp_request(frame) else {
            return false;
        };
        let ours = !target.is_loopback()
            && (self.io.local_v4.contains(&target)
                || super::is_anyip(&self.anyip, &self.config, IpAddr::V4(target)));
        let smoltcp_answers = self
            .iface
            .ip_addrs()
            .iter()
            .any(|c| c.contains_addr(&IpAddress::Ipv4(asker)));
        let Some((_, asker_mac)) = frames::neighbor_news(frame) else {
            return false;
        };
        if !ours || smoltcp_answers || asker.is_unspecified() {
            return false;
        }
        self.neighbor_table
            .note(frame, self.now, self.io.mac, self.config.neighbors());
        let mut answer = self.io.pool.pop().unwrap_or_default();
        frames::write_arp_reply_to(&mut answer, self.io.mac, target, asker_mac, asker);
        self.io.outbox.push_back(answer);
        self.release_detoured();
        true
    }
}

/// The hash that picks a multipath nexthop for the IP packet in `frame`, of
/// what Linux's default policy (`fib_multipath_hash_policy` 0) hashes: an
/// IPv4 packet's addresses; an IPv6 packet's addresses, flow label and next
/// header. The same for every packet of a flow. FNV-1a, then MurmurHash3's
/// finaliser: FNV's prime is 1 modulo 3, so without it the hash modulo a
/// small total of weights barely changed with the last byte (seven
/// consecutive IPv4 destinations all took the first of two nexthops weighted
/// 2 and 1).
fn flow_hash(frame: &[u8]) -> u64 {
    let fnv = |fields: &mut dyn Iterator<Item = &u8>| {
        let mut h = fields.fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    };
    match frame.get(12..14) {
        Some([0x08, 0x00]) => frame
            .get(14 + 12..14 + 20)
            .map_or(0, |addrs| fnv(&mut addrs.iter())),
        _ => {
            let Some(ip) = frame.get(14..14 + 40) else {
                return 0;
            };
            // Flow label (20 bits of the first word), next header, addresses.
            let label = [ip[1] & 0x0f, ip[2], ip[3]];
            fnv(&mut label.iter().chain(&ip[6..7]).chain(&ip[8..40]))
        }
    }
}

/// The destination of the IP packet in `frame` if Linux would look it up in
/// the routing table: unicast, and not neighbour discovery (ICMPv6 types 133
/// to 137, which go straight out of their device).
fn routed_dst(frame: &[u8]) -> Option<IpAddr> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let dst = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            IpAddr::V4(Ipv4Packet::new_checked(eth.payload()).ok()?.dst_addr())
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            let nd = ip.next_header() == IpProtocol::Icmpv6
                && ip
                    .payload()
                    .first()
                    .is_some_and(|t| (133..=137).contains(t));
            if nd {
                return None;
            }
            IpAddr::V6(ip.dst_addr())
        }
        _ => return None,
    };
    let multicast = match dst {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_multicast(),
    };
    (!multicast).then_some(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> IpCidr {
        let (addr, len) = s.split_once('/').unwrap();
        IpCidr::new(addr.parse::<IpAddr>().unwrap().into(), len.parse().unwrap())
    }

    #[test]
    fn prefixes_smoltcp_does_not_hold_go_through_made_up_next_hops() {
        let held = [cidr("10.0.1.1/24"), cidr("127.0.0.1/8"), cidr("fd01::1/64")];
        let beyond = [
            cidr("10.0.1.2/24"),
            cidr("10.0.9.1/24"),
            cidr("10.0.9.2/24"),
            cidr("fd09::1/64"),
            cidr("::1/128"),
        ];
        let (routes, v4) = detour_routes(&held, &beyond);
        let gateway = Ipv4Address::new(10, 0, 1, 0);
        assert_eq!(v4, Some((gateway, Ipv4Address::new(10, 0, 1, 1))));
        assert_eq!(
            routes,
            [
                (cidr("10.0.9.0/24"), IpAddress::Ipv4(gateway)),
                (cidr("fd09::/64"), IpAddress::Ipv6(DETOUR_V6)),
            ]
        );
        // Without an IPv4 network of its own, smoltcp cannot take an IPv4 entry.
        let (routes, v4) = detour_routes(&[cidr("10.0.1.1/32")], &[cidr("10.0.9.1/24")]);
        assert_eq!((routes, v4), (Vec::new(), None));
    }
}
