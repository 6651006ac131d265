//! IPv6 stateless address autoconfiguration (RFC 4862) and router discovery
//! (RFC 4861 6.3), as a fresh Linux namespace does them by default
//! (`accept_ra`, `autoconf`): when the VDE interface comes up with its
//! link-local address, up to three Router Solicitations, 4 s apart, the first
//! after a random delay of up to 1 s; each valid Router Advertisement gives
//! the stack an address per autonomous /64 prefix (the prefix and the MAC's
//! EUI-64, Linux's default `addr_gen_mode`), the on-link prefix's route and a
//! default route via the router, with their lifetimes.
//!
//! It lives in the engine, as the DHCP client does, because it is protocol
//! state driven by frames and time; it reads and writes frames itself and
//! applies what an advertisement says through the `ip` model
//! ([`crate::cmd::NetConfig::autoconf`], [`crate::cmd::NetConfig::router_route`]),
//! which keeps the lifetimes and the RFC 4862 5.5.3 e rule (an advertisement
//! never brings a valid lifetime below two hours), and removes what expires as
//! its clock moves. smoltcp's own SLAAC (feature `proto-ipv6-slaac`) is not
//! built: it writes the interface's addresses behind the model's back.
//! Advertisements are neighbour discovery to [`super::frames::demux`], so they
//! still reach smoltcp, which ignores them without that feature; this module
//! reads a copy.
//!
//! A new address is tentative (`ip` shows it so, the stack does not use it)
//! for 1 s after a duplicate address detection solicitation (RFC 4862 5.4),
//! and removed if another node claims it meanwhile, as Linux removes an
//! address that is not permanent; the stack's other addresses are used at
//! once, as before.
//!
//! What Linux does and this does not: temporary
//! addresses (off by default in a namespace anyway), the MTU option (read, not
//! applied: Linux changes only its IPv6 MTU, which `ip` does not show), route
//! information options, and the reachable and retransmission timers.

use super::frames::write_ndisc;
use super::Engine;
use crate::cmd::{Lifetime, LinkKind, RoutePref, RouterRoute};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv6Packet, Icmpv6Repr, IpProtocol,
    Ipv6Address, Ipv6Packet, NdiscRepr, RawHardwareAddress,
};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// Router Solicitations sent after the link comes up (`router_solicitations`).
const SOLICITATIONS: u32 = 3;
/// The wait between them (`router_solicitation_interval`).
const SOLICITATION_INTERVAL: Duration = Duration::from_secs(4);
/// The longest random delay before the first (`MAX_RTR_SOLICITATION_DELAY`).
const MAX_SOLICITATION_DELAY_MICROS: u64 = 1_000_000;

/// ICMPv6 Router Advertisement, Neighbor Solicitation and Advertisement.
const ROUTER_ADVERT: u8 = 134;
const NEIGHBOR_SOLICIT: u8 = 135;
const NEIGHBOR_ADVERT: u8 = 136;
/// How long an address stays tentative after its solicitation when nobody
/// claims it (`dad_transmits` 1 times `RetransTimer`, 1 s).
const DAD_WAIT: Duration = Duration::from_secs(1);
/// Neighbour discovery option types (RFC 4861 4.6).
const OPT_PREFIX_INFO: u8 = 3;
const OPT_MTU: u8 = 5;

/// The stack's router discovery.
pub(super) struct Slaac {
    /// Whether router advertisements are taken (`accept_ra`; default on).
    enabled: bool,
    /// The delay before the first solicitation, drawn once from the seed.
    delay: Duration,
    /// When last looked at, whether the interface was up with a link-local
    /// address, and since which start of IPv6 (see
    /// [`crate::cmd::NetConfig::ipv6_starts`]).
    seen: Option<u64>,
    /// Solicitations still to send, and when the next one is due.
    soliciting: Option<(u32, Duration)>,
    /// The tentative addresses whose solicitation left, and when their
    /// detection ends.
    probing: Vec<(IpAddr, Duration)>,
}

impl Slaac {
    /// Router discovery on, its random delay drawn from `seed`.
    pub(super) fn new(seed: u64) -> Slaac {
        Slaac {
            enabled: true,
            delay: Duration::from_micros(seed.rotate_left(17) % MAX_SOLICITATION_DELAY_MICROS),
            seen: None,
            soliciting: None,
            probing: Vec::new(),
        }
    }

    /// When router discovery next needs time to pass.
    pub(super) fn deadline(&self) -> Option<Duration> {
        let probes = self.probing.iter().map(|&(_, at)| at);
        self.soliciting
            .map(|(_, at)| at)
            .into_iter()
            .chain(probes)
            .min()
    }
}

/// A Prefix Information option (RFC 4861 4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PrefixInfo {
    pub(super) prefix: Ipv6Addr,
    pub(super) prefix_len: u8,
    /// L: the prefix is on-link.
    pub(super) on_link: bool,
    /// A: addresses may be made from it.
    pub(super) autonomous: bool,
    pub(super) valid: Lifetime,
    pub(super) preferred: Lifetime,
}

/// What a valid Router Advertisement says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RouterAdvert {
    /// The router: the advertisement's (link-local) source.
    pub(super) router: Ipv6Addr,
    /// Cur Hop Limit (0: unspecified).
    pub(super) hop_limit: u8,
    /// Router Lifetime in seconds (0: not a default router).
    pub(super) router_lifetime: u16,
    /// The default router preference (RFC 4191).
    pub(super) pref: RoutePref,
    /// The MTU option.
    pub(super) mtu: Option<u32>,
    pub(super) prefixes: Vec<PrefixInfo>,
}

/// A lifetime field: all ones is forever.
fn lifetime(bytes: &[u8]) -> Lifetime {
    let secs = u32::from_be_bytes(bytes.try_into().ok()?);
    (secs != u32::MAX).then_some(secs)
}

/// The Router Advertisement `frame` carries, if it is a valid one (RFC 4861
/// 6.1.2: hop limit 255, a link-local source, ICMP code 0, a good checksum,
/// at least 16 bytes, every option of non-zero length). The prefix options
/// are all kept, valid or not: their own checks belong to their use.
pub(super) fn read_router_advert(frame: &[u8]) -> Option<RouterAdvert> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
    let src = ip.src_addr();
    if ip.next_header() != IpProtocol::Icmpv6
        || ip.hop_limit() != 255
        || !src.is_unicast_link_local()
    {
        return None;
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    let body = ip.payload();
    if body.len() < 16 || body[0] != ROUTER_ADVERT || body[1] != 0 {
        return None;
    }
    if !icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()) {
        return None;
    }
    let pref = match (body[5] >> 3) & 0b11 {
        0b01 => RoutePref::High,
        0b11 => RoutePref::Low,
        // 0b10 is reserved: a receiver takes it as medium (RFC 4191 2.2).
        _ => RoutePref::Medium,
    };
    let mut advert = RouterAdvert {
        router: src,
        hop_limit: body[4],
        router_lifetime: u16::from_be_bytes([body[6], body[7]]),
        pref,
        mtu: None,
        prefixes: Vec::new(),
    };
    let mut options = &body[16..];
    while !options.is_empty() {
        let (&kind, &units) = (options.first()?, options.get(1)?);
        let len = usize::from(units) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        let option = &options[..len];
        match (kind, len) {
            (OPT_PREFIX_INFO, 32) => {
                let bytes: [u8; 16] = option[16..32].try_into().ok()?;
                advert.prefixes.push(PrefixInfo {
                    prefix_len: option[2],
                    on_link: option[3] & 0x80 != 0,
                    autonomous: option[3] & 0x40 != 0,
                    valid: lifetime(&option[4..8]),
                    preferred: lifetime(&option[8..12]),
                    prefix: Ipv6Addr::from(bytes),
                });
            }
            (OPT_MTU, 8) => advert.mtu = Some(u32::from_be_bytes(option[4..8].try_into().ok()?)),
            _ => {}
        }
        options = &options[len..];
    }
    Some(advert)
}

/// The first `len` bits of `addr`.
fn mask(addr: Ipv6Addr, len: u8) -> Ipv6Addr {
    let keep = match len {
        0 => 0,
        len => u128::MAX << (128 - u32::from(len.min(128))),
    };
    Ipv6Addr::from(u128::from(addr) & keep)
}

/// Writes into `buf` a Router Solicitation from `(mac, src)` to all
/// routers, with our link-layer address.
fn write_router_solicit(buf: &mut Vec<u8>, mac: [u8; 6], src: Ipv6Addr) {
    let mac = EthernetAddress(mac);
    // ff02::2 and its Ethernet group (RFC 2464).
    let all_routers = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
    let group = EthernetAddress([0x33, 0x33, 0, 0, 0, 2]);
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit {
        lladdr: Some(RawHardwareAddress::from(mac)),
    });
    write_ndisc(buf, (mac, group), (src, all_routers), icmp);
}

/// Writes into `buf` the Neighbor Solicitation of duplicate address detection
/// for `target` (RFC 4862 5.4.2): from the unspecified address to the
/// target's solicited-node group, without a link-layer address.
fn write_dad_solicit(buf: &mut Vec<u8>, mac: [u8; 6], target: Ipv6Addr) {
    let t = target.octets();
    let group = Ipv6Address::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let eth_group = EthernetAddress([0x33, 0x33, 0xff, t[13], t[14], t[15]]);
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: None,
    });
    let mac = EthernetAddress(mac);
    write_ndisc(buf, (mac, eth_group), (Ipv6Addr::UNSPECIFIED, group), icmp);
}

/// The address another node claims in `frame`, as duplicate address detection
/// hears it (RFC 4862 5.4.3, 5.4.4): the target of a Neighbor Advertisement,
/// or of a Neighbor Solicitation from the unspecified address (that node's
/// own detection). `None` for anything else, or a frame from `own_mac`.
fn claimed_address(frame: &[u8], own_mac: [u8; 6]) -> Option<Ipv6Addr> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv6 || eth.src_addr().0 == own_mac {
        return None;
    }
    let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
    let body = ip.payload();
    if ip.next_header() != IpProtocol::Icmpv6 || ip.hop_limit() != 255 || body.len() < 24 {
        return None;
    }
    let target: [u8; 16] = body[8..24].try_into().ok()?;
    match body[0] {
        NEIGHBOR_ADVERT => Some(Ipv6Addr::from(target)),
        NEIGHBOR_SOLICIT if ip.src_addr().is_unspecified() => Some(Ipv6Addr::from(target)),
        _ => None,
    }
}

impl Engine {
    /// Takes router advertisements or not (`accept_ra`): off, no
    /// solicitation leaves and advertisements change nothing.
    pub(crate) fn set_accept_ra(&mut self, on: bool) {
        self.slaac.enabled = on;
        if !on {
            self.slaac.soliciting = None;
        }
    }

    /// Moves the engine's clock to `now` (never back) without doing anything
    /// else: for a command that reads the model's lifetimes between turns.
    pub(crate) fn set_clock(&mut self, now: Duration) {
        if now > self.now {
            self.now = now;
            self.io.now = now;
        }
    }

    /// The VDE interface, if it is up with its link-local address (what
    /// router discovery waits for): its index, MAC and that address.
    fn ra_link(&self) -> Option<(u32, [u8; 6], Ipv6Addr)> {
        let link = self
            .config
            .links()
            .iter()
            .find(|l| l.kind == LinkKind::Ether && l.up)?;
        let link_local = link.addrs.iter().find_map(|a| match a.addr {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(v6),
            _ => None,
        })?;
        Some((link.index, link.mac, link_local))
    }

    /// The start of IPv6 the interface is up in, if it is up with its
    /// link-local address.
    fn ra_start(&self) -> Option<u64> {
        self.ra_link().map(|_| self.config.ipv6_starts())
    }

    /// Whether the interface came up or went down since router discovery
    /// last looked: it has to look now.
    pub(super) fn slaac_news(&self) -> bool {
        let unprobed = self
            .config
            .tentative()
            .iter()
            .any(|(_, a)| !self.slaac.probing.iter().any(|(p, _)| p == a));
        unprobed || (self.slaac.enabled && self.ra_start() != self.slaac.seen)
    }

    /// Duplicate address detection of the tentative addresses: a solicitation
    /// for each new one, and the end for those nobody claimed in time.
    fn poll_dad(&mut self) {
        let tentative = self.config.tentative();
        self.slaac
            .probing
            .retain(|(p, _)| tentative.iter().any(|(_, a)| a == p));
        let mac = self.io.mac.0;
        for (dev, addr) in tentative {
            match self.slaac.probing.iter().find(|(p, _)| *p == addr) {
                Some(&(_, at)) if at <= self.now => self.config.end_dad(dev, addr, false),
                Some(_) => {}
                None => {
                    let IpAddr::V6(target) = addr else { continue };
                    let mut frame = self.io.pool.pop().unwrap_or_default();
                    write_dad_solicit(&mut frame, mac, target);
                    self.io.outbox.push_back(frame);
                    self.slaac.probing.push((addr, self.now + DAD_WAIT));
                }
            }
        }
    }

    /// Ends the detection of a tentative address another node claims in
    /// `frame`: the address goes.
    fn hear_dad_conflict(&mut self, frame: &[u8]) {
        if self.slaac.probing.is_empty() {
            return;
        }
        let Some(claimed) = claimed_address(frame, self.io.mac.0) else {
            return;
        };
        let claimed = IpAddr::V6(claimed);
        let tentative = self.config.tentative();
        if let Some(&(dev, _)) = tentative.iter().find(|(_, a)| *a == claimed) {
            self.config.end_dad(dev, claimed, true);
            self.sync_config();
        }
    }

    /// Moves the model's clock (what expired goes), starts soliciting when the
    /// interface comes up, and sends the solicitations that are due.
    pub(super) fn poll_slaac(&mut self) {
        let generation = self.config.generation();
        self.config.advance_clock(self.now);
        self.poll_dad();
        if self.config.generation() != generation {
            self.sync_config();
        }
        if !self.slaac.enabled {
            return;
        }
        let ready = self.ra_link();
        let start = self.ra_start();
        if start != self.slaac.seen {
            self.slaac.seen = start;
            self.slaac.soliciting = start.map(|_| (SOLICITATIONS, self.now + self.slaac.delay));
        }
        let (Some((dev, mac, src)), Some((left, at))) = (ready, self.slaac.soliciting) else {
            return;
        };
        if self.config.is_tentative(dev, IpAddr::V6(src)) {
            // Linux solicits from its link-local address once that is past
            // duplicate address detection, and not at all if it failed.
            let end = self
                .slaac
                .probing
                .iter()
                .find(|(p, _)| *p == IpAddr::V6(src));
            self.slaac.soliciting = end.map(|&(_, end)| (left, at.max(end)));
            return;
        }
        if at > self.now || self.io.outbox_full() {
            return;
        }
        let mut frame = self.io.pool.pop().unwrap_or_default();
        write_router_solicit(&mut frame, mac, src);
        self.io.outbox.push_back(frame);
        self.slaac.soliciting = (left > 1).then(|| (left - 1, self.now + SOLICITATION_INTERVAL));
    }

    /// Reads a neighbour discovery `frame` for router discovery and
    /// duplicate address detection (smoltcp gets it too).
    pub(super) fn hear_neighbor_discovery(&mut self, frame: &[u8]) {
        self.hear_dad_conflict(frame);
        self.ingest_router_advert(frame);
    }

    /// Takes in `frame` if it is a valid Router Advertisement for the VDE
    /// interface (router discovery on, the interface up): its prefixes and
    /// its default route go to the model (RFC 4861 6.3.4, RFC 4862 5.5.3),
    /// and solicitations stop.
    fn ingest_router_advert(&mut self, frame: &[u8]) {
        if !self.slaac.enabled {
            return;
        }
        let Some(advert) = read_router_advert(frame) else {
            return;
        };
        let Some((dev, _, _)) = self.ra_link() else {
            return;
        };
        self.slaac.soliciting = None;
        self.config.advance_clock(self.now);
        for p in &advert.prefixes {
            let prefix = mask(p.prefix, p.prefix_len);
            // A link-local prefix is never taken; nor are lifetimes where
            // the preferred one outlasts the valid one (Linux drops the
            // whole option).
            let outlasts = match (p.preferred, p.valid) {
                (None, Some(_)) => true,
                (Some(pref), Some(valid)) => pref > valid,
                _ => false,
            };
            if prefix.is_unicast_link_local() || p.prefix_len > 128 || outlasts {
                continue;
            }
            if p.on_link {
                let route = RouterRoute::OnLink(prefix, p.prefix_len);
                self.config
                    .router_route(dev, route, p.valid, (None, None), RoutePref::Medium);
            }
            // An address is the prefix and a 64-bit interface identifier.
            if p.autonomous && p.prefix_len == 64 {
                self.config.autoconf(dev, prefix, p.valid, p.preferred);
            }
        }
        let hop_limit = (advert.hop_limit != 0).then_some(advert.hop_limit);
        if let Some(hops) = hop_limit {
            self.set_ipv6_hops(hops);
        }
        // Linux takes an MTU from 1280 to the link's (RFC 8200's minimum).
        let link_mtu = u32::try_from(self.io.mtu).unwrap_or(u32::MAX);
        let mtu = advert.mtu.filter(|m| (1280..=link_mtu).contains(m));
        if let Some(mtu) = mtu {
            self.io.mtu6 = mtu as usize;
        }
        self.config.router_route(
            dev,
            RouterRoute::Default(advert.router),
            Some(advert.router_lifetime.into()),
            (hop_limit, mtu),
            advert.pref,
        );
        self.sync_config();
    }
}
