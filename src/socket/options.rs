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
        self.options.hop_limit = ttl.max(1);
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
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))]
pub(crate) fn apply_to_kernel_socket(
    fd: BorrowedFd<'_>,
    options: &SocketOptions,
    ty: libc::c_int,
) -> io::Result<()> {
    use libc::{c_int, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, SOL_SOCKET};
    let int = |level, name, v: c_int| sys::set_option(fd, level, name, v);
    let secs = |d: Duration| d.as_secs().min(c_int::MAX as u64) as c_int;
    let v6 = sys::option::<c_int>(fd, SOL_SOCKET, libc::SO_DOMAIN)? == libc::AF_INET6;
    int(SOL_SOCKET, libc::SO_REUSEADDR, options.reuse_address.into())?;
    int(SOL_SOCKET, libc::SO_REUSEPORT, options.reuse_port.into())?;
    if let Some(bytes) = options.recv_buffer {
        int(SOL_SOCKET, libc::SO_RCVBUF, (bytes / 2) as c_int)?;
    }
    if let Some(bytes) = options.send_buffer {
        int(SOL_SOCKET, libc::SO_SNDBUF, (bytes / 2) as c_int)?;
    }
    if v6 {
        int(
            IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS,
            options.hop_limit.into(),
        )?;
        // Only before bind; once bound the kernel refuses a change, as it should.
        let _ = int(IPPROTO_IPV6, libc::IPV6_V6ONLY, options.v6only.into());
    } else {
        int(IPPROTO_IP, libc::IP_TTL, options.hop_limit.into())?;
    }
    if ty == libc::SOCK_STREAM {
        int(SOL_SOCKET, libc::SO_KEEPALIVE, options.keepalive.into())?;
        int(IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(options.keep_idle))?;
        int(
            IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            secs(options.keep_interval),
        )?;
        int(IPPROTO_TCP, libc::TCP_KEEPCNT, options.keep_count as c_int)?;
        int(IPPROTO_TCP, libc::TCP_NODELAY, options.nodelay.into())?;
        let linger = libc::linger {
            l_onoff: options.linger.is_some().into(),
            l_linger: options.linger.map_or(0, secs),
        };
        sys::set_option(fd, SOL_SOCKET, libc::SO_LINGER, linger)?;
    } else {
        int(SOL_SOCKET, libc::SO_BROADCAST, options.broadcast.into())?;
    }
    Ok(())
}

/// A kernel socket's pending error (`SO_ERROR`), cleared by reading it.
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))]
pub(crate) fn kernel_take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let code = sys::option::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((code != 0).then(|| io::Error::from_raw_os_error(code)))
}

/// The options a kernel socket runs with, read with getsockopt.
#[cfg_attr(not(feature = "kernel-ns"), allow(dead_code))]
pub(crate) fn kernel_socket_options(fd: BorrowedFd<'_>) -> io::Result<SocketOptions> {
    use libc::{c_int, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, SOL_SOCKET};
    let int = |level, name| sys::option::<c_int>(fd, level, name);
    let flag = |level, name| int(level, name).map(|v| v != 0);
    let v6 = int(SOL_SOCKET, libc::SO_DOMAIN)? == libc::AF_INET6;
    let stream = int(SOL_SOCKET, libc::SO_TYPE)? == libc::SOCK_STREAM;
    let mut options = SocketOptions {
        reuse_address: flag(SOL_SOCKET, libc::SO_REUSEADDR)?,
        reuse_port: flag(SOL_SOCKET, libc::SO_REUSEPORT)?,
        recv_buffer: Some(int(SOL_SOCKET, libc::SO_RCVBUF)?.max(0) as usize),
        send_buffer: Some(int(SOL_SOCKET, libc::SO_SNDBUF)?.max(0) as usize),
        broadcast: flag(SOL_SOCKET, libc::SO_BROADCAST)?,
        ..SocketOptions::default()
    };
    let hops = if v6 {
        options.v6only = flag(IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
        int(IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS)?
    } else {
        int(IPPROTO_IP, libc::IP_TTL)?
    };
    options.hop_limit = u8::try_from(hops).unwrap_or(64);
    if stream {
        let secs = |name| int(IPPROTO_TCP, name).map(|s| Duration::from_secs(s.max(0) as u64));
        options.keepalive = flag(SOL_SOCKET, libc::SO_KEEPALIVE)?;
        options.keep_idle = secs(libc::TCP_KEEPIDLE)?;
        options.keep_interval = secs(libc::TCP_KEEPINTVL)?;
        options.keep_count = int(IPPROTO_TCP, libc::TCP_KEEPCNT)?.max(0) as u32;
        options.nodelay = flag(IPPROTO_TCP, libc::TCP_NODELAY)?;
        let linger: libc::linger = sys::option(fd, SOL_SOCKET, libc::SO_LINGER)?;
        options.linger =
            (linger.l_onoff != 0).then(|| Duration::from_secs(linger.l_linger.max(0) as u64));
    }
    Ok(options)
}
