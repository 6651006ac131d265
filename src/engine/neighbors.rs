//! The neighbour table as `ip neigh` sees it: the static entries of the model,
//! kept in smoltcp's neighbour cache, and the neighbours the engine saw on the
//! wire, for `ip neigh show`; and the rest of what the engine observed for `ip`
//! to show (`Engine::observed`: the links' counters too).
//!
//! smoltcp's cache can only be filled by what it receives, and forgets an entry
//! 60 s after it was filled; a neighbour's ARP reply or advertisement also
//! overwrites it. So the engine hands smoltcp each static entry as that
//! neighbour's answer aimed at one of its addresses: when the configuration
//! changes (an address change empties the cache), every 30 s after, and at the
//! next transmit after the wire contradicted one. A static entry thus holds as
//! Linux's `PERMANENT` does, with one difference: between the contradicting
//! frame and the next transmit, smoltcp has the wire's word.
//!
//! smoltcp also empties its whole cache whenever its addresses change: a
//! link-local address that passes duplicate address detection a second after
//! the link came up, `ip addr add`, a DHCP lease. Linux keeps its neighbours
//! then, and so does the stack: the neighbours seen on the wire that smoltcp
//! would still know are handed back to it the same way. (A connection that
//! sent right after such a change found its peer's address gone and, within
//! the second of silence smoltcp keeps after any request, waited that second:
//! one transfer in four or five of the throughput bench stalled a whole second
//! when its stacks' link-local addresses became valid.) A link taken down
//! forgets them all, static ones too, as Linux's does.

use super::{frames, Engine};
use crate::cmd::{LinkKind, Neighbor, NeighborState};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// How often static entries are handed to smoltcp again: well within its 60 s.
const REFILL: Duration = Duration::from_secs(30);
/// How long a neighbour seen on the wire counts as `REACHABLE` (Linux's
/// `base_reachable_time`), then `STALE` until smoltcp would have forgotten it.
const REACHABLE: Duration = Duration::from_secs(30);
const FORGOTTEN: Duration = Duration::from_secs(60);
/// How many neighbours seen on the wire are remembered (smoltcp's cache holds 64).
const SEEN_LIMIT: usize = 64;

/// What the engine knows of its neighbours beyond the model.
#[derive(Debug, Default)]
pub(super) struct NeighborTable {
    /// Neighbours seen on the wire: their hardware address, and when.
    seen: HashMap<IpAddr, (EthernetAddress, Duration)>,
    /// When the static entries are next handed to smoltcp.
    next_fill: Duration,
}

impl NeighborTable {
    /// Notes what a frame says of a neighbour (not of us: `own`, our hardware
    /// address, marks what the stack looped back); one that contradicts a
    /// static entry has the entry handed to smoltcp again at the next transmit.
    pub(super) fn note(
        &mut self,
        frame: &[u8],
        now: Duration,
        own: EthernetAddress,
        statics: &[Neighbor],
    ) {
        let Some((addr, mac)) = frames::neighbor_news(frame).filter(|(_, mac)| *mac != own) else {
            return;
        };
        if self.seen.len() >= SEEN_LIMIT && !self.seen.contains_key(&addr) {
            let oldest = self
                .seen
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(addr, (mac, now));
        if statics
            .iter()
            .any(|n| n.addr == addr && n.mac != Some(mac.0))
        {
            self.next_fill = now;
        }
    }

    /// The neighbours seen on the wire that smoltcp still knows, as `ip neigh
    /// show` lists them, on link `dev`, in address order.
    pub(super) fn learned(&self, now: Duration, dev: u32) -> Vec<Neighbor> {
        let mut learned: Vec<Neighbor> = self
            .known(now)
            .map(|(addr, mac, at)| {
                let state = if now.saturating_sub(at) < REACHABLE {
                    NeighborState::Reachable
                } else {
                    NeighborState::Stale
                };
                Neighbor::new(dev, addr, Some(mac.0), state)
            })
            .collect();
        learned.sort_by_key(|n| n.addr);
        learned
    }

    /// The hardware address the wire gave `addr`, if smoltcp would still
    /// know it.
    pub(super) fn mac_of(&self, addr: IpAddr, now: Duration) -> Option<EthernetAddress> {
        self.seen
            .get(&addr)
            .filter(|(_, at)| still_known(*at, now))
            .map(|(mac, _)| *mac)
    }

    /// Whether the static entries are due to be handed to smoltcp.
    pub(super) fn fill_due(&self, now: Duration) -> bool {
        now >= self.next_fill
    }

    /// The neighbours seen on the wire that smoltcp would still know, and
    /// when each was seen.
    fn known(
        &self,
        now: Duration,
    ) -> impl Iterator<Item = (IpAddr, EthernetAddress, Duration)> + '_ {
        self.seen
            .iter()
            .filter(move |(_, (_, at))| still_known(*at, now))
            .map(|(addr, (mac, at))| (*addr, *mac, *at))
    }
}

/// Whether smoltcp would still know a neighbour seen at `at`: it forgets an
/// entry a minute after it was filled.
fn still_known(at: Duration, now: Duration) -> bool {
    now.saturating_sub(at) < FORGOTTEN
}

impl Engine {
    /// Hands smoltcp back the neighbours seen on the wire that it would still
    /// know, after it emptied its cache (its addresses changed, or `ip neigh
    /// flush` took some). The static entries and the made-up next hops go
    /// after them, and win.
    pub(super) fn hand_back_learned_neighbors(&mut self) {
        if self.ether_up().is_none() {
            return;
        }
        let known: Vec<_> = self.neighbor_table.known(self.now).collect();
        let mut frame = Vec::new();
        for (addr, mac, _) in known {
            self.hand_neighbor(addr, mac, &mut frame);
        }
    }

    /// Forgets every neighbour, learned or handed to smoltcp, as a link taken
    /// down does on Linux (the model drops its static entries then): once up,
    /// the stack asks again.
    pub(super) fn forget_all_neighbors(&mut self) {
        self.neighbor_table.seen.clear();
        // smoltcp empties its cache only with its addresses.
        self.iface.update_ip_addrs(|_| {});
    }

    /// Hands smoltcp the model's static entries of the Ethernet link (when it is
    /// up).
    pub(super) fn fill_static_neighbors(&mut self) {
        self.neighbor_table.next_fill = self.now + REFILL;
        let Some(ether) = self.ether_up() else {
            return;
        };
        let entries: Vec<(IpAddr, EthernetAddress)> = self
            .config
            .neighbors()
            .iter()
            .filter(|n| n.dev == ether && n.state != NeighborState::None)
            .filter_map(|n| Some((n.addr, EthernetAddress(n.mac?))))
            .collect();
        let mut frame = Vec::new();
        for (addr, mac) in entries {
            self.hand_neighbor(addr, mac, &mut frame);
        }
    }

    /// The index of the Ethernet link, if it is up.
    fn ether_up(&self) -> Option<u32> {
        self.config
            .links()
            .iter()
            .find(|l| l.kind == LinkKind::Ether && l.up)
            .map(|l| l.index)
    }

    /// Hands smoltcp neighbour `addr`'s hardware address `mac` as that
    /// neighbour's answer to one of smoltcp's addresses in the same network
    /// (IPv4: smoltcp takes no other; IPv6: any it holds), built in `frame`.
    fn hand_neighbor(&mut self, addr: IpAddr, mac: EthernetAddress, frame: &mut Vec<u8>) {
        let ours = self
            .iface
            .ip_addrs()
            .iter()
            .find_map(|cidr| match (cidr, addr) {
                (IpCidr::Ipv4(c), IpAddr::V4(a)) if c.contains_addr(&a) => {
                    Some(IpAddress::Ipv4(c.address()))
                }
                (IpCidr::Ipv6(c), IpAddr::V6(_)) => Some(IpAddress::Ipv6(c.address())),
                _ => None,
            });
        frame.clear();
        match (ours, addr) {
            (Some(IpAddress::Ipv4(us)), IpAddr::V4(them)) => {
                frames::write_arp_reply_to(frame, mac, them, self.io.mac, us);
            }
            (Some(IpAddress::Ipv6(us)), IpAddr::V6(them)) => {
                frames::write_neighbor_advert_to(frame, (mac, them), (self.io.mac, us));
            }
            _ => return,
        }
        self.ingest_ready(frame);
    }

    /// Forgets the learned neighbours `ip neigh flush` selected: from what
    /// `ip neigh show` lists and from smoltcp's cache (which smoltcp empties
    /// only whole, so every other neighbour is handed to it again).
    pub(super) fn forget_flushed_neighbors(&mut self) {
        let flushed = self.config.take_flushed_neighbors();
        if flushed.is_empty() {
            return;
        }
        for (_, addr) in &flushed {
            self.neighbor_table.seen.remove(addr);
        }
        self.iface.update_ip_addrs(|_| {});
        self.hand_back_learned_neighbors();
        self.fill_static_neighbors();
        self.fill_detour_neighbors();
    }

    /// What the engine observed that `ip` shows: the neighbours it saw on the
    /// wire (`ip neigh show`), the links' counters (`ip -s link`).
    pub(super) fn observed(&self) -> crate::cmd::Observed {
        let mut observed = crate::cmd::Observed::default();
        for link in self.config.links() {
            let stats = match link.kind {
                LinkKind::Ether => {
                    observed.neighbors = self.neighbor_table.learned(self.now, link.index);
                    self.wire_stats
                }
                LinkKind::Loopback => self.lo_stats,
            };
            observed.stats.push((link.index, stats));
        }
        observed
    }
}
