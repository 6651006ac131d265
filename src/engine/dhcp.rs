//! The stack's DHCPv4 client: smoltcp's DHCP socket, in a set of its own, whose
//! leases become the stack's configuration.
//!
//! It lives in the engine because it is protocol state driven by frames and time
//! like any socket (its retries and renewals are timers in [`Engine::poll_delay`],
//! its replies are frames to UDP port 68), and so it runs the same in the pump and
//! with a virtual clock. smoltcp's socket does the protocol (discover, request,
//! renew at T1, rebind at T2, expiry); this module decides when an attempt gave
//! up (udhcpc's `-t`/`-T`), and applies a lease to the `ip` model as busybox
//! udhcpc's default script on Debian does with `ip`: `ip addr add A/P broadcast +
//! dev IF`, the interface's default routes replaced by `ip route add default via
//! R dev IF`; on a new lease the old address goes, and when the lease is lost
//! (expired, refused at renewal) its address and default route go too.
//!
//! The socket gets a set of its own, as every socket of the engine does (see
//! [`super::datagram_sets`]): a UDP datagram from port 67 to port 68 is handed to
//! smoltcp with that set, which then reaches the DHCP socket before any address
//! check (the offer is for an address the stack does not hold yet).

use super::{instant, Engine, Event};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet,
    UdpPacket, DHCP_CLIENT_PORT, DHCP_SERVER_PORT,
};
use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

/// smoltcp's lease time when a server names none.
const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(120);

/// How long udhcpc waits after its tries ran out before it tries again (its
/// `-A`, default 20 s), while it keeps trying in the background.
const BACKGROUND_RETRY: Duration = Duration::from_secs(20);

/// The default routes a lease's router replaces are deleted one by one; a model
/// holds at most this many of them on one interface.
const MAX_DEFAULT_ROUTES: usize = 32;

/// A DHCPv4 lease as a stack applied it: what [`crate::Stack::dhcp`] returns.
///
/// The stack holds the address (`ip addr show` shows `inet ADDRESS/PREFIX brd
/// ... scope global IF`), a default route via the router (`default via ROUTER
/// dev IF`), and asks the name servers from then on
/// ([`crate::Stack::name_servers`]), as busybox udhcpc's default script leaves a
/// Linux namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The address leased.
    pub address: Ipv4Addr,
    /// The length of the subnet's prefix (from the subnet mask option).
    pub prefix_len: u8,
    /// The default router, if the server named one.
    pub router: Option<Ipv4Addr>,
    /// The name servers the server named (at most 3, as smoltcp keeps).
    pub name_servers: Vec<Ipv4Addr>,
    /// How long the lease lasts from when it was granted; the stack renews it
    /// at half of it while the client runs.
    pub lease_time: Duration,
    /// The server that granted it (its identifier).
    pub server: Ipv4Addr,
}

/// How a DHCP client tries to get its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// DISCOVERs sent before the attempt gives up (udhcpc's `-t`, at least 1).
    pub tries: u32,
    /// The wait between DISCOVERs, and after the last (udhcpc's `-T`).
    pub interval: Duration,
    /// Whether the lease is kept renewed once obtained (udhcpc without `-q`).
    pub renew: bool,
    /// Whether the client keeps trying after the attempt gave up (udhcpc
    /// without `-n`, which goes on in the background).
    pub background: bool,
}

/// What became of a DHCP client: reported as [`Event::Dhcp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DhcpNews {
    /// A lease was obtained, or renewed with a change, and applied.
    Bound(Lease),
    /// The attempt's tries ran out without a lease.
    NoLease,
    /// The lease ended (expired, or refused at renewal) and its configuration
    /// was removed.
    Lost,
}

/// One interface's DHCP client.
pub(super) struct DhcpClient {
    ifname: String,
    set: SocketSet<'static>,
    handle: SocketHandle,
    attempt: Attempt,
    /// DISCOVERs sent in this attempt, and when the last one left.
    discovers: u32,
    last_discover: Duration,
    /// `NoLease` was reported for this attempt.
    gave_up: bool,
    lease: Option<Lease>,
    /// The lease time of the last ACK seen (smoltcp keeps it private).
    acked_lease_time: Option<Duration>,
    /// When the socket next needs a poll; `None` with `dirty`: now.
    next_poll: Option<Duration>,
    dirty: bool,
}

impl DhcpClient {
    fn new(ifname: &str, attempt: Attempt) -> DhcpClient {
        let mut set = SocketSet::new(Vec::new());
        let handle = set.add(dhcpv4::Socket::new());
        let mut client = DhcpClient {
            ifname: ifname.to_owned(),
            set,
            handle,
            attempt,
            discovers: 0,
            last_discover: Duration::ZERO,
            gave_up: false,
            lease: None,
            acked_lease_time: None,
            next_poll: None,
            dirty: true,
        };
        client.retry_every(attempt.interval);
        client
    }

    fn socket(&mut self) -> &mut dhcpv4::Socket<'static> {
        self.set.get_mut::<dhcpv4::Socket>(self.handle)
    }

    /// DISCOVERs every `interval` from now on.
    fn retry_every(&mut self, interval: Duration) {
        let socket = self.socket();
        let mut retry = socket.get_retry_config();
        retry.discover_timeout = smoltcp::time::Duration::from_micros(
            interval.as_micros().clamp(1000, u64::MAX as u128) as u64,
        );
        socket.set_retry_config(retry);
    }

    /// When the attempt gives up, if it is still to.
    fn give_up_at(&self) -> Option<Duration> {
        let counting = self.lease.is_none() && !self.gave_up;
        (counting && self.discovers >= self.attempt.tries.max(1))
            .then(|| self.last_discover + self.attempt.interval)
    }

    /// When the client next needs time to pass.
    pub(super) fn deadline(&self) -> Option<Duration> {
        if self.dirty {
            return Some(Duration::ZERO);
        }
        [self.next_poll, self.give_up_at()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// What `read` finds in the DHCP message a frame carries between a client's
/// and a server's ports (`to_client` picks the direction); `None` if it carries
/// none.
fn read_dhcp<R>(frame: &[u8], to_client: bool, read: impl FnOnce(&DhcpRepr) -> R) -> Option<R> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Udp || ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    let (src, dst) = if to_client {
        (DHCP_SERVER_PORT, DHCP_CLIENT_PORT)
    } else {
        (DHCP_CLIENT_PORT, DHCP_SERVER_PORT)
    };
    if udp.src_port() != src || udp.dst_port() != dst {
        return None;
    }
    let packet = DhcpPacket::new_checked(udp.payload()).ok()?;
    let repr = DhcpRepr::parse(&packet).ok()?;
    Some(read(&repr))
}

impl Engine {
    /// Starts (or joins) the DHCP client of interface `ifname`: the link is set
    /// up, as udhcpc's script does first, and DISCOVERs leave at the next
    /// transmit. A client already bound reports its lease at once; one still
    /// trying takes `attempt` as its own from now. `ENODEV` if the stack has no
    /// such Ethernet interface.
    pub(crate) fn start_dhcp(&mut self, ifname: &str, attempt: Attempt) -> io::Result<()> {
        let ether = self
            .config
            .link_by_name(ifname)
            .is_some_and(|l| l.kind == crate::cmd::LinkKind::Ether);
        if !ether {
            return Err(super::errno(libc::ENODEV));
        }
        let _ = self.run_cmd(&format!("/bin/ip link set {ifname} up"));
        let now = self.now;
        match &mut self.dhcp {
            Some(client) if client.ifname == ifname => {
                if let Some(lease) = &client.lease {
                    client.attempt.renew |= attempt.renew;
                    let lease = lease.clone();
                    self.events.push_back(Event::Dhcp(DhcpNews::Bound(lease)));
                    return Ok(());
                }
                client.attempt = attempt;
                client.discovers = 0;
                client.gave_up = false;
                client.last_discover = now;
                client.retry_every(attempt.interval);
                client.socket().reset();
                client.dirty = true;
            }
            _ => self.dhcp = Some(DhcpClient::new(ifname, attempt)),
        }
        Ok(())
    }

    /// Whether `frame` is for the DHCP client: a reply from a server's port to
    /// the client's, while a client runs.
    pub(super) fn for_dhcp(&self, frame: &[u8]) -> bool {
        self.dhcp.is_some() && read_dhcp(frame, true, |_| ()).is_some()
    }

    /// Hands a server's reply to the DHCP socket (in its own set), noting the
    /// lease time of an ACK (smoltcp keeps it private).
    pub(super) fn ingest_dhcp(&mut self, frame: &[u8]) {
        let Some(client) = self.dhcp.as_mut() else {
            return;
        };
        let mac = self.io.mac;
        let acked = read_dhcp(frame, true, |repr| {
            (repr.message_type == DhcpMessageType::Ack && repr.client_hardware_address == mac).then(
                || {
                    repr.lease_duration
                        .map_or(DEFAULT_LEASE_TIME, |s| Duration::from_secs(s.into()))
                },
            )
        });
        if let Some(lease_time) = acked.flatten() {
            client.acked_lease_time = Some(lease_time);
        }
        let mut port = super::Port {
            io: &mut self.io,
            rx: Some(frame),
        };
        self.iface
            .poll_ingress_single(instant(self.now), &mut port, &mut client.set);
        client.dirty = true;
    }

    /// Lets the DHCP client send what is due, takes in what its socket reports
    /// (a lease, or its loss) and judges whether its attempt gave up.
    pub(super) fn poll_dhcp(&mut self) {
        let Some(client) = self.dhcp.as_mut() else {
            return;
        };
        if !client.dirty && client.deadline().is_none_or(|at| at > self.now) {
            return;
        }
        client.dirty = false;
        // Judged before the socket sends: its next DISCOVER is due when the
        // attempt's last wait ends.
        self.judge_attempt();
        let Some(client) = self.dhcp.as_mut() else {
            return;
        };
        let ts = instant(self.now);
        let before = self.io.outbox.len();
        for _ in 0..4 {
            let mut port = super::Port::idle(&mut self.io);
            let result = self.iface.poll_egress(ts, &mut port, &mut client.set);
            if result == smoltcp::iface::PollResult::None || self.io.outbox_full() {
                break;
            }
        }
        let sent = self.io.outbox.range(before.min(self.io.outbox.len())..);
        for frame in sent {
            if read_dhcp(frame, false, |repr| repr.message_type) == Some(DhcpMessageType::Discover)
            {
                client.discovers += 1;
                client.last_discover = self.now;
            }
        }
        let lease_time = client.acked_lease_time.unwrap_or(DEFAULT_LEASE_TIME);
        let news = match client.socket().poll() {
            Some(dhcpv4::Event::Configured(config)) => Some(Some(Lease {
                address: config.address.address(),
                prefix_len: config.address.prefix_len(),
                router: config.router,
                name_servers: config.dns_servers.to_vec(),
                lease_time,
                server: config.server.identifier,
            })),
            Some(dhcpv4::Event::Deconfigured) => Some(None),
            None => None,
        };
        client.next_poll = self.iface.poll_at(ts, &client.set).map(super::duration);
        match news {
            Some(Some(lease)) => self.bind_lease(lease),
            Some(None) => self.lose_lease(),
            None => {}
        }
    }

    /// Gives up an attempt whose tries ran out: reported, and the client stops
    /// unless it goes on in the background (every [`BACKGROUND_RETRY`] then).
    fn judge_attempt(&mut self) {
        let Some(client) = self.dhcp.as_mut() else {
            return;
        };
        if client.give_up_at().is_none_or(|at| at > self.now) {
            return;
        }
        client.gave_up = true;
        self.events.push_back(Event::Dhcp(DhcpNews::NoLease));
        if client.attempt.background {
            client.retry_every(BACKGROUND_RETRY);
        } else {
            self.dhcp = None;
        }
    }

    /// Applies a new lease (or a renewal that changed it) to the model, as the
    /// script does, and reports it; a client that does not renew stops.
    fn bind_lease(&mut self, lease: Lease) {
        let Some(client) = self.dhcp.as_mut() else {
            return;
        };
        let old = client.lease.replace(lease.clone());
        let ifname = client.ifname.clone();
        if !client.attempt.renew {
            self.dhcp = None;
        }
        let moved = old
            .as_ref()
            .is_none_or(|o| (o.address, o.prefix_len) != (lease.address, lease.prefix_len));
        let mut cmds = Vec::new();
        if let Some(old) = old.as_ref().filter(|_| moved) {
            cmds.push(format!(
                "ip addr del {}/{} dev {ifname}",
                old.address, old.prefix_len
            ));
        }
        if moved {
            cmds.push(format!(
                "ip addr add {}/{} broadcast + dev {ifname}",
                lease.address, lease.prefix_len
            ));
        }
        let rerouted = moved || old.as_ref().is_none_or(|o| o.router != lease.router);
        self.run_lease_cmds(&cmds);
        if rerouted {
            self.replace_default_routes(&ifname, lease.router);
        }
        self.events.push_back(Event::Dhcp(DhcpNews::Bound(lease)));
    }

    /// Removes what a lost lease had configured, and reports the loss.
    fn lose_lease(&mut self) {
        let Some(client) = self.dhcp.as_mut() else {
            return;
        };
        let Some(old) = client.lease.take() else {
            return; // smoltcp's first report: nothing was configured yet
        };
        let ifname = client.ifname.clone();
        client.discovers = 0;
        client.gave_up = true; // the attempt that got the lease is over
        self.replace_default_routes(&ifname, None);
        self.run_lease_cmds(&[format!(
            "ip addr del {}/{} dev {ifname}",
            old.address, old.prefix_len
        )]);
        self.events.push_back(Event::Dhcp(DhcpNews::Lost));
    }

    /// The interface's default routes replaced by one via `router` (none: only
    /// removed), as udhcpc's script does (`ip route del default dev IF` until it
    /// fails, then `ip route add default via ROUTER dev IF`).
    fn replace_default_routes(&mut self, ifname: &str, router: Option<Ipv4Addr>) {
        for _ in 0..MAX_DEFAULT_ROUTES {
            if self
                .config
                .run(&format!("/bin/ip -4 route del default dev {ifname}"))
                .is_err()
            {
                break;
            }
        }
        if let Some(router) = router {
            let _ = self.config.run(&format!(
                "/bin/ip route add default via {router} dev {ifname}"
            ));
        }
        self.sync_config();
    }

    /// Runs `ip` commands for a lease, each on its own (one that fails, such as
    /// deleting an address already gone, does not stop the others).
    fn run_lease_cmds(&mut self, cmds: &[String]) {
        for cmd in cmds {
            let _ = self.config.run(&format!("/bin/{cmd}"));
        }
        self.sync_config();
    }
}

#[cfg(test)]
mod tests;
