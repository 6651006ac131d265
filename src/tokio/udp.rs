//! The async UDP socket: a [`crate::UdpSocket`] in tokio's `AsyncFd`.

use super::{addresses, first_address, register, READ_WRITE};
use crate::socket::{ToStackAddrs, UdpSocket as StdSocket};
use crate::stack::Stack;
use ::tokio::io::unix::AsyncFd;
use ::tokio::io::Interest;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// A UDP socket on a [`Stack`], for tokio: `tokio::net::UdpSocket`'s shape, over
/// a [`crate::UdpSocket`]. Its calls take `&self`: share it between tasks in an
/// `Arc`.
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let stack = vdestack::Stack::new("vde:///tmp/sw", None)?;
/// stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;
/// let socket = vdestack::tokio::UdpSocket::bind(&stack, "0.0.0.0:0").await?;
/// socket.send_to(b"ping", "10.0.0.1:7").await?;
/// let mut buf = [0; 1500];
/// let (len, from) = socket.recv_from(&mut buf).await?;
/// # Ok(()) }
/// ```
pub struct UdpSocket {
    io: AsyncFd<StdSocket>,
}

impl UdpSocket {
    /// A socket bound to `addr` (port 0: an ephemeral port), the first address it
    /// stands for that works (names resolved through the stack, see the [module
    /// doc](super)). Errors as [`crate::UdpSocket::bind`]'s.
    pub async fn bind<A: ToStackAddrs>(stack: &Stack, addr: A) -> io::Result<UdpSocket> {
        let addrs = addresses(stack, addr).await?;
        Self::from_std(StdSocket::bind(stack, &addrs[..])?)
    }

    /// Wraps a blocking socket, putting it in non-blocking mode. Must be called
    /// inside a runtime.
    pub fn from_std(socket: StdSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            io: register(socket, READ_WRITE)?,
        })
    }

    /// The blocking socket inside, deregistered from the runtime, still in
    /// non-blocking mode (as tokio's `into_std`).
    pub fn into_std(self) -> io::Result<StdSocket> {
        Ok(self.io.into_inner())
    }

    /// Only datagrams from `addr` arrive from now on, and [`UdpSocket::send`]
    /// sends there (see [`crate::UdpSocket::connect`]; an address, not a name).
    pub async fn connect<A: ToStackAddrs>(&self, addr: A) -> io::Result<()> {
        self.io.get_ref().connect(addr)
    }

    /// Sends a datagram to the connected peer; `EDESTADDRREQ` if not connected.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .async_io(Interest::WRITABLE, |socket| socket.send(buf))
            .await
    }

    /// Sends a datagram to `target`, the first address it stands for (an
    /// address, not a name, as [`crate::UdpSocket::send_to`]).
    pub async fn send_to<A: ToStackAddrs>(&self, buf: &[u8], target: A) -> io::Result<usize> {
        let target = first_address(target)?;
        self.io
            .async_io(Interest::WRITABLE, |socket| socket.send_to(buf, target))
            .await
    }

    /// Receives one datagram from the connected peer (truncated to `buf`).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .async_io(Interest::READABLE, |socket| socket.recv(buf))
            .await
    }

    /// Receives one datagram (truncated to `buf`) and its source.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .async_io(Interest::READABLE, |socket| socket.recv_from(buf))
            .await
    }

    /// Like [`UdpSocket::recv_from`], leaving the datagram queued.
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .async_io(Interest::READABLE, |socket| socket.peek_from(buf))
            .await
    }

    /// Sends to the connected peer without waiting: `WouldBlock` when the runtime
    /// has not seen the socket writable since the last `WouldBlock`.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .try_io(Interest::WRITABLE, |socket| socket.send(buf))
    }

    /// Sends to `target` without waiting (see [`UdpSocket::try_send`]).
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.io
            .try_io(Interest::WRITABLE, |socket| socket.send_to(buf, target))
    }

    /// Receives from the connected peer without waiting: `WouldBlock` when the
    /// runtime has not seen the socket readable since the last `WouldBlock`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .try_io(Interest::READABLE, |socket| socket.recv(buf))
    }

    /// Receives a datagram and its source without waiting (see
    /// [`UdpSocket::try_recv`]).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .try_io(Interest::READABLE, |socket| socket.recv_from(buf))
    }

    /// Waits until a datagram (or an error) can be received.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await.map(drop)
    }

    /// Waits until a datagram can be sent.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await.map(drop)
    }

    /// The local address (after `connect`, with the source address its route
    /// picked).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address; `ENOTCONN` without one.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// `SO_BROADCAST`: whether datagrams may go to a broadcast address.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
    }

    /// `IP_TTL` of the datagrams sent.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Joins an IPv4 multicast group (see [`crate::UdpSocket::join_multicast_v4`]).
    pub fn join_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().join_multicast_v4(&multiaddr, &interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v4(&multiaddr, &interface)
    }

    /// Joins an IPv6 multicast group on interface index `interface`.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v6(multiaddr, interface)
    }

    /// The pending socket error (`SO_ERROR`, an ICMP error), cleared by reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

super::async_socket_traits!(UdpSocket, StdSocket);
