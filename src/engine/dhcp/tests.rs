//! The DHCP client against a server played here frame by frame, on a virtual
//! clock: a lease is applied as udhcpc's script would, renewed at T1 (unicast
//! to the server), lost at expiry when nobody answers; an attempt gives up
//! after its tries.

use super::*;
use crate::cmd::NetConfig;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{EthernetAddress, EthernetRepr, Ipv4Address, Ipv4Repr, UdpRepr};

const SERVER: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const OFFERED: Ipv4Address = Ipv4Address::new(10, 0, 0, 100);
const SECOND: Duration = Duration::from_secs(1);

fn engine() -> Engine {
    // Up already, and past the duplicate address detection of its link-local
    // address, whose end would be among the deadlines these tests read.
    let mut config = NetConfig::new("vde0", CLIENT_MAC);
    config.run("/bin/ip link set vde0 up").unwrap();
    config.finish_dad();
    let mut engine = Engine::new(config, 1, Duration::ZERO);
    // Router solicitations would be among the deadlines these tests read.
    engine.set_accept_ra(false);
    engine
}

fn attempt(tries: u32) -> Attempt {
    Attempt {
        tries,
        interval: SECOND,
        renew: true,
        background: false,
    }
}

/// The client's DHCP messages in what the engine sent: type, transaction id
/// and IPv4 destination.
fn sent(engine: &mut Engine, now: Duration) -> Vec<(DhcpMessageType, u32, Ipv4Address)> {
    engine.transmit(now);
    let mut messages = Vec::new();
    while let Some(frame) = engine.next_outgoing() {
        let dst = EthernetFrame::new_checked(&frame[..]).ok().and_then(|eth| {
            Ipv4Packet::new_checked(eth.payload())
                .ok()
                .map(|ip| ip.dst_addr())
        });
        if let Some((kind, xid)) = read_dhcp(&frame, false, |r| (r.message_type, r.transaction_id))
        {
            messages.push((kind, xid, dst.unwrap()));
        }
    }
    messages
}

/// A server's reply of `kind` for transaction `xid`: `OFFERED`, router and
/// server 10.0.0.1, a /24, a lease of `lease` seconds.
fn reply(kind: DhcpMessageType, xid: u32, lease: u32) -> Vec<u8> {
    let repr = DhcpRepr {
        message_type: kind,
        transaction_id: xid,
        secs: 0,
        client_hardware_address: EthernetAddress(CLIENT_MAC),
        client_ip: Ipv4Address::UNSPECIFIED,
        your_ip: OFFERED,
        server_ip: SERVER,
        router: Some(SERVER),
        subnet_mask: Some(Ipv4Address::new(255, 255, 255, 0)),
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(SERVER),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: Some(lease),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let dhcp_len = repr.buffer_len();
    let ip = Ipv4Repr {
        src_addr: SERVER,
        dst_addr: Ipv4Address::BROADCAST,
        next_header: IpProtocol::Udp,
        payload_len: 8 + dhcp_len,
        hop_limit: 64,
    };
    let mut frame = vec![0; 14 + 20 + 8 + dhcp_len];
    EthernetRepr {
        src_addr: SERVER_MAC,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    let caps = ChecksumCapabilities::default();
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut frame[14..]), &caps);
    UdpRepr {
        src_port: DHCP_SERVER_PORT,
        dst_port: DHCP_CLIENT_PORT,
    }
    .emit(
        &mut UdpPacket::new_unchecked(&mut frame[34..]),
        &SERVER.into(),
        &Ipv4Address::BROADCAST.into(),
        dhcp_len,
        |payload| repr.emit(&mut DhcpPacket::new_unchecked(payload)).unwrap(),
        &caps,
    );
    frame
}

fn events(engine: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| engine.next_event()).collect()
}

/// Runs discover, offer, request, ack at `now`: the lease, as reported.
fn bind(engine: &mut Engine, now: Duration, lease: u32) -> Lease {
    let discover = sent(engine, now);
    assert_eq!(discover.len(), 1, "{discover:?}");
    let (kind, xid, dst) = discover[0];
    assert_eq!(
        (kind, dst),
        (DhcpMessageType::Discover, Ipv4Address::BROADCAST)
    );
    engine.receive(now, &reply(DhcpMessageType::Offer, xid, lease));
    let request = sent(engine, now);
    assert_eq!(request[0].0, DhcpMessageType::Request);
    engine.receive(now, &reply(DhcpMessageType::Ack, request[0].1, lease));
    engine.transmit(now);
    match events(engine).as_slice() {
        [Event::Dhcp(DhcpNews::Bound(lease))] => lease.clone(),
        other => panic!("no lease: {other:?}"),
    }
}

/// What `ip addr show dev vde0` and `ip route show` print.
fn shown(engine: &Engine) -> (String, String) {
    let mut config = engine.config().clone();
    let addrs = config.run("/bin/ip addr show dev vde0").unwrap();
    (addrs, config.run("/bin/ip route show").unwrap())
}

#[test]
fn a_lease_is_applied_as_udhcpcs_script_does() {
    let mut engine = engine();
    engine.start_dhcp("vde0", attempt(3)).unwrap();
    let lease = bind(&mut engine, Duration::ZERO, 600);
    assert_eq!(lease.address, Ipv4Addr::new(10, 0, 0, 100));
    assert_eq!(
        (lease.prefix_len, lease.router),
        (24, Some(Ipv4Addr::new(10, 0, 0, 1)))
    );
    assert_eq!(lease.lease_time, Duration::from_secs(600));
    let (addrs, routes) = shown(&engine);
    assert!(addrs.contains(",UP,LOWER_UP>"), "{addrs}");
    assert!(
        addrs.contains("inet 10.0.0.100/24 brd 10.0.0.255 scope global vde0"),
        "{addrs}"
    );
    assert_eq!(
        routes,
        "default via 10.0.0.1 dev vde0 \n\
         10.0.0.0/24 dev vde0 proto kernel scope link src 10.0.0.100 \n"
    );
    // The next thing the client has to do is renew, at T1 (half the lease).
    assert_eq!(
        engine.poll_delay(Duration::ZERO),
        Some(Duration::from_secs(300))
    );
}

#[test]
fn the_lease_is_renewed_at_t1_and_lost_at_expiry() {
    let mut engine = engine();
    engine.start_dhcp("vde0", attempt(3)).unwrap();
    bind(&mut engine, Duration::ZERO, 10);
    // T1: a unicast REQUEST to the server (its ARP first: answer it).
    let t1 = 5 * SECOND;
    engine.receive(t1, &{
        let mut arp = Vec::new();
        super::super::frames::write_arp_reply_to(
            &mut arp,
            SERVER_MAC,
            SERVER,
            engine.io.mac,
            OFFERED,
        );
        arp
    });
    let renew = sent(&mut engine, t1);
    assert_eq!(renew.len(), 1, "{renew:?}");
    assert_eq!((renew[0].0, renew[0].2), (DhcpMessageType::Request, SERVER));
    engine.receive(t1, &reply(DhcpMessageType::Ack, renew[0].1, 10));
    engine.transmit(t1);
    // Renewed with nothing changed: no news, the configuration stays.
    assert_eq!(events(&mut engine), []);
    assert!(shown(&engine).0.contains("inet 10.0.0.100/24"));
    // Nobody answers from now on: the lease runs out 10 s after the renewal,
    // and its address and route go.
    let mut now = t1;
    let mut news = Vec::new();
    for _ in 0..100 {
        let Some(delay) = engine.poll_delay(now) else {
            break;
        };
        now += delay.max(Duration::from_millis(1));
        sent(&mut engine, now);
        news.extend(events(&mut engine));
        if !news.is_empty() {
            break;
        }
    }
    assert_eq!(news, [Event::Dhcp(DhcpNews::Lost)]);
    assert_eq!(now, t1 + 10 * SECOND);
    let (addrs, routes) = shown(&engine);
    assert!(!addrs.contains("10.0.0.100"), "{addrs}");
    assert_eq!(routes, "");
}

#[test]
fn an_attempt_gives_up_after_its_tries() {
    let mut engine = engine();
    engine.start_dhcp("vde0", attempt(2)).unwrap();
    let mut now = Duration::ZERO;
    let mut discovers = 0;
    let mut news = Vec::new();
    for _ in 0..100 {
        discovers += sent(&mut engine, now).len();
        news.extend(events(&mut engine));
        if !news.is_empty() {
            break;
        }
        now += engine.poll_delay(now).expect("a timer");
    }
    assert_eq!(news, [Event::Dhcp(DhcpNews::NoLease)]);
    assert_eq!((discovers, now), (2, 2 * SECOND));
    // Not in the background: the client is gone, no timer left.
    assert!(engine.dhcp.is_none());
    assert_eq!(engine.poll_delay(now), None);
    assert_eq!(
        engine
            .start_dhcp("nosuch", attempt(1))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENODEV)
    );
}
