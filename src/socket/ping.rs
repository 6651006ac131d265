//! Ping sockets: ICMP echo from a stack without raw sockets, as Linux's
//! `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)` gives it.

use super::options::SocketConfig;
use super::udp::{face, Face, Udp};
use crate::engine::DatagramProto;
use crate::stack::Stack;
use crate::sys;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// A ping socket on a [`Stack`]: it sends ICMP (or ICMPv6) echo requests and
/// receives the replies to them.
///
/// As on Linux, the socket has its own echo identifier (its "port"): the stack
/// writes it into every request, computes the checksum, and delivers only the
/// replies that carry it. A message is a whole ICMP message, header included.
///
/// ```no_run
/// use vdestack::{PingSocket, Stack};
/// # fn main() -> std::io::Result<()> {
/// let stack = Stack::new("vde:///tmp/sw", None)?;
/// stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;
/// let ping = PingSocket::bind(&stack, "0.0.0.0".parse().unwrap())?;
/// ping.send_to(&PingSocket::echo_request(false, 1, b"hello"), "10.0.0.1".parse().unwrap())?;
/// let mut reply = [0u8; 64];
/// let (len, from) = ping.recv_from(&mut reply)?;
/// assert_eq!(&reply[8..len], b"hello");
/// # Ok(()) }
/// ```
pub struct PingSocket {
    fd: OwnedFd,
    /// `None`: a kernel ping socket of a [`Backend::Kernel`](crate::Backend) stack
    /// (the namespace's `net.ipv4.ping_group_range` decides whether it may exist).
    udp: Option<Udp>,
}

impl PingSocket {
    /// A ping socket on `stack` for `addr`'s family (`0.0.0.0` or `::`, or one of
    /// the stack's addresses), with an identifier the stack chooses.
    pub fn bind(stack: &Stack, addr: IpAddr) -> io::Result<PingSocket> {
        Self::bind_ident(stack, addr, 0)
    }

    /// Like [`PingSocket::bind`] with the echo identifier `ident` (`EADDRINUSE` if
    /// another ping socket of the stack has it).
    pub fn bind_ident(stack: &Stack, addr: IpAddr, ident: u16) -> io::Result<PingSocket> {
        let local = SocketAddr::new(addr, ident);
        if let Some(fd) = super::kernel_socket(stack, &local, libc::SOCK_RAW)? {
            // SOCK_DGRAM with the family's ICMP: the kernel's ping socket.
            sys::bind(fd.as_fd(), &local)?;
            return Ok(PingSocket { fd, udp: None });
        }
        let (app_end, pump_end) = sys::pair(libc::SOCK_SEQPACKET)?;
        let ctx = stack.ctx()?;
        let udp = Udp::open(
            ctx,
            ctx.next_socket_id(),
            DatagramProto::Ping,
            Some(pump_end),
            local,
            SocketConfig::default().options,
        )?;
        Ok(PingSocket {
            fd: app_end,
            udp: Some(udp),
        })
    }

    /// An echo request (ICMP type 8, or ICMPv6 type 128 with `v6`) with sequence
    /// number `seq` and `payload`; identifier and checksum are the stack's to fill.
    pub fn echo_request(v6: bool, seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut message = vec![if v6 { 128 } else { 8 }, 0, 0, 0, 0, 0];
        message.extend_from_slice(&seq.to_be_bytes());
        message.extend_from_slice(payload);
        message
    }

    /// The echo identifier of this socket.
    pub fn ident(&self) -> u16 {
        match face(self.udp.as_ref(), self.fd.as_fd()) {
            Face::Stack(udp) => udp.local_addr().port(),
            Face::Kernel(k) => k.local_addr().map_or(0, |a| a.port()),
        }
    }

    /// Sends the ICMP message `message` (an echo request: `EINVAL` otherwise) to
    /// `to`. Errors as `sendto(2)` on a Linux ping socket (`ENETUNREACH`, `EACCES`
    /// for a broadcast address).
    pub fn send_to(&self, message: &[u8], to: IpAddr) -> io::Result<usize> {
        let to = SocketAddr::new(to, 0);
        match face(self.udp.as_ref(), self.fd.as_fd()) {
            Face::Stack(udp) => udp.send_to(self.fd.as_fd(), message, Some(to), 0),
            Face::Kernel(k) => k.send_to(message, to),
        }
    }

    /// Receives one echo reply (header included, truncated to `buf`) and who sent it.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, IpAddr)> {
        let (len, from) = match face(self.udp.as_ref(), self.fd.as_fd()) {
            Face::Stack(udp) => udp.recv_from(self.fd.as_fd(), buf, 0)?,
            Face::Kernel(k) => k.recv_from(buf)?,
        };
        Ok((len, from.ip()))
    }

    /// `IP_TTL` of the requests (1 to 255).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let hops = super::checked_ttl(ttl)?;
        match face(self.udp.as_ref(), self.fd.as_fd()) {
            Face::Stack(udp) => udp.set_options(|o| o.set_hop_limit(Some(hops))),
            Face::Kernel(k) => k.set_ttl(ttl),
        }
    }

    super::descriptor_controls!();
}

impl fmt::Debug for PingSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingSocket")
            .field("fd", &self.fd.as_raw_fd())
            .field("ident", &self.ident())
            .finish()
    }
}

super::descriptor_traits!(PingSocket);
