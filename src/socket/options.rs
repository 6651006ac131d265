//! Socket options: [`SocketConfig`] for what must be chosen before a socket binds,
//! listens or connects, and the record each open socket keeps of its options.
//!
//! Every socket keeps one [`SocketOptions`] value, shared by all handles of the
//! socket (a `try_clone`, a `dup` in C). Reading an option reads that record;
//! setting one updates it and hands the whole value to the pump, which applies
//! the part that concerns the socket (see `engine/options.rs`).

use crate::engine::SocketOptions;
use crate::pump::{Control, PumpHandle};
use crate::sys;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Options for a socket, chosen before it binds, listens or connects, as a
/// program does with `setsockopt` between `socket` and `bind`.
///
/// Passed to [`TcpListener::bind_with`](crate::TcpListener::bind_with),
/// [`TcpStream::connect_with`](crate::TcpStream::connect_with) and
/// [`UdpSocket::bind_with`](crate::UdpSocket::bind_with). Options a running
/// socket can change have setters on the socket types too.
///
/// ```no_run
/// use vdestack::{SocketConfig, Stack, TcpListener};
/// # fn main() -> std::io::Result<()> {
/// let stack = Stack::new("vde:///tmp/sw", None)?;
/// stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
/// // Two listeners on one port share its connections (SO_REUSEPORT).
/// let config = SocketConfig::new().reuse_port(true);
/// let first = TcpListener::bind_with(&stack, "0.0.0.0:80", &config)?;
/// let second = TcpListener::bind_with(&stack, "0.0.0.0:80", &config)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "a SocketConfig does nothing until passed to `bind_with` or `connect_with`"]
pub struct SocketConfig {
    pub(crate) options: SocketOptions,
}

impl SocketConfig {
    /// Linux's defaults.
    pub fn new() -> SocketConfig {
        SocketConfig::default()
    }

    /// `SO_REUSEADDR`: bind a port that connections still hold (not one a
    /// listener holds); for UDP, share the port with sockets that set it too.
    pub fn reuse_address(mut self, on: bool) -> SocketConfig {
        self.options.reuse_address = on;
        self
    }

    /// `SO_REUSEPORT`: share the port with other sockets that set it, even
    /// listeners; connections and datagrams are spread by the peer's address.
    pub fn reuse_port(mut self, on: bool) -> SocketConfig {
        self.options.reuse_port = on;
        self
    }

    /// `IPV6_V6ONLY`: an IPv6 socket on `[::]` takes IPv6 traffic only (default:
    /// IPv4 too, as v4-mapped addresses).
    pub fn only_v6(mut self, on: bool) -> SocketConfig {
        self.options.v6only = on;
        self
    }

    /// `SO_RCVBUF`: the stack's receive buffer (a TCP connection's window, a UDP
    /// socket's queue), 4 KiB to 4 MiB.
    pub fn recv_buffer_size(mut self, bytes: usize) -> SocketConfig {
        self.options.recv_buffer = Some(bytes);
        self
    }

    /// `SO_SNDBUF`: a TCP connection's send buffer, 4 KiB to 4 MiB.
    pub fn send_buffer_size(mut self, bytes: usize) -> SocketConfig {
        self.options.send_buffer = Some(bytes);
        self
    }

    /// `TCP_NODELAY`.
    pub fn nodelay(mut self, on: bool) -> SocketConfig {
        self.options.nodelay = on;
        self
    }

    /// `SO_KEEPALIVE`, with Linux's timing (see
    /// [`TcpStream::set_keepalive_params`](crate::TcpStream::set_keepalive_params)).
    pub fn keepalive(mut self, on: bool) -> SocketConfig {
        self.options.keepalive = on;
        self
    }

    /// `SO_LINGER`: `Some(Duration::ZERO)` makes closing reset the connection.
    pub fn linger(mut self, linger: Option<Duration>) -> SocketConfig {
        self.options.linger = linger;
        self
    }

    /// `IP_TTL` / `IPV6_UNICAST_HOPS` (1 to 255).
    pub fn ttl(mut self, ttl: u8) -> SocketConfig {
        self.options.set_hop_limit(Some(ttl.max(1)));
        self
    }
}

/// The options of one open socket, shared by its handles.
#[derive(Debug, Clone)]
pub(crate) struct OptionRecord {
    options: Arc<Mutex<SocketOptions>>,
}

impl OptionRecord {
    pub(crate) fn new(options: SocketOptions) -> OptionRecord {
        OptionRecord {
            options: Arc::new(Mutex::new(options)),
        }
    }

    pub(crate) fn get(&self) -> SocketOptions {
        *self.options.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the options of the socket `id` and has the pump apply them.
    pub(crate) fn update(
        &self,
        pump: &PumpHandle,
        id: u64,
        change: impl FnOnce(&mut SocketOptions),
    ) -> io::Result<()> {
        let mut record = self.options.lock().unwrap_or_else(|p| p.into_inner());
        let mut options = *record;
        change(&mut options);
        pump.request(|reply| Control::SetOptions { id, options, reply })??;
        *record = options;
        Ok(())
    }
}

/// `IP_TTL` as Linux checks it: 1 to 255.
pub(crate) fn checked_ttl(ttl: u32) -> io::Result<u8> {
    u8::try_from(ttl)
        .ok()
        .filter(|&t| t > 0)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `TCP_KEEPIDLE`/`TCP_KEEPINTVL` (1 to 32,767 s) and `TCP_KEEPCNT` (1 to 127) as
/// Linux checks them.
pub(crate) fn checked_keepalive(
    idle: Duration,
    interval: Duration,
    count: u32,
) -> io::Result<(Duration, Duration, u32)> {
    let seconds = 1..=32_767;
    if seconds.contains(&idle.as_secs())
        && seconds.contains(&interval.as_secs())
        && (1..=127).contains(&count)
    {
        Ok((idle, interval, count))
    } else {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// Sets `options` on a kernel socket (the kernel backend's) with setsockopt, as a
/// program would: the kernel then does what each option does. `ty` is the
/// socket's type (TCP options only on SOCK_STREAM).
pub(crate) fn apply_to_kernel_socket(
    fd: BorrowedFd<'_>,
    options: &SocketOptions,
    ty: libc::c_int,
) -> io::Result<()> {
    use sys::sockopt::*;
    // Whole seconds, as the kernel keeps them.
    let secs = |d: Duration| Duration::from_secs(d.as_secs().min(libc::c_int::MAX as u64));
    // The kernel doubles a buffer size for its bookkeeping; the record keeps the sum.
    let half = |bytes: usize| (bytes / 2).min(libc::c_int::MAX as usize);
    set_socket_reuseaddr(fd, options.reuse_address)?;
    set_socket_reuseport(fd, options.reuse_port)?;
    if let Some(bytes) = options.recv_buffer {
        set_socket_recv_buffer_size(fd, half(bytes))?;
    }
    if let Some(bytes) = options.send_buffer {
        set_socket_send_buffer_size(fd, half(bytes))?;
    }
    let hops = options.hop_limit_set.then_some(options.hop_limit);
    if sys::is_ipv6(fd)? {
        // Unset, the kernel's own default follows router advertisements.
        set_ipv6_unicast_hops(fd, hops)?;
        // Only before bind; once bound the kernel refuses a change, as it should.
        let _ = set_ipv6_v6only(fd, options.v6only);
    } else if let Some(hops) = hops {
        set_ip_ttl(fd, hops.into())?;
    }
    if ty == libc::SOCK_STREAM {
        set_socket_keepalive(fd, options.keepalive)?;
        set_tcp_keepidle(fd, secs(options.keep_idle))?;
        set_tcp_keepintvl(fd, secs(options.keep_interval))?;
        set_tcp_keepcnt(fd, options.keep_count)?;
        set_tcp_nodelay(fd, options.nodelay)?;
        set_socket_linger(fd, options.linger.map(secs))?;
    } else {
        set_socket_broadcast(fd, options.broadcast)?;
    }
    Ok(())
}

/// The options a kernel socket runs with, read with getsockopt.
pub(crate) fn kernel_socket_options(fd: BorrowedFd<'_>) -> io::Result<SocketOptions> {
    use sys::sockopt::*;
    let mut options = SocketOptions {
        reuse_address: socket_reuseaddr(fd)?,
        reuse_port: socket_reuseport(fd)?,
        recv_buffer: Some(socket_recv_buffer_size(fd)?),
        send_buffer: Some(socket_send_buffer_size(fd)?),
        broadcast: socket_broadcast(fd)?,
        ..SocketOptions::default()
    };
    options.hop_limit = if sys::is_ipv6(fd)? {
        options.v6only = ipv6_v6only(fd)?;
        ipv6_unicast_hops(fd)?
    } else {
        u8::try_from(ip_ttl(fd)?).unwrap_or(64)
    };
    if sys::socket_type(fd)? == libc::SOCK_STREAM {
        options.keepalive = socket_keepalive(fd)?;
        options.keep_idle = tcp_keepidle(fd)?;
        options.keep_interval = tcp_keepintvl(fd)?;
        options.keep_count = tcp_keepcnt(fd)?;
        options.nodelay = tcp_nodelay(fd)?;
        options.linger = socket_linger(fd)?;
    }
    Ok(options)
}
