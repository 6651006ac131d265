//! [`Stack`]: create a private TCP/IP stack, configure it, hand out its sockets.
//!
//! A stack is a pump thread (see [`crate::pump`]) plus the handles that reach it.
//! Sockets hold a [`StackCtx`], which does not keep the stack alive: when the last
//! `Stack` handle goes, the pump stops, closes every descriptor it owned, and the
//! application's remaining sockets fail cleanly (EOF, EPIPE or ENETDOWN).

use crate::cmd::{CmdError, Interface, LinkKind, NetConfig};
use crate::dns::ResolverOptions;
use crate::engine::{DhcpAttempt, DhcpLease as Lease, Engine};
use crate::link::{is_vde_plugin, Link, NullLink, StreamLink, VdeLink};
use crate::pcap::PcapWriter;
use crate::pump::{
    ConfigView, Control, Doorbell, EndToken, EndWatch, Failure, Handoff, Handoffs, LeaseServers,
    Pump, PumpHandle, PumpThread, FIRST_SOCKET_ID, WAKER,
};
use crate::sys;
use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

/// The interface name when none is given, as in the reference libvdestack.
pub const DEFAULT_IFNAME: &str = "vde0";

/// What sockets keep of their stack: a way to reach the pump, no ownership.
#[derive(Clone)]
pub(crate) struct StackCtx {
    pub(crate) pump: PumpHandle,
    handoffs: Handoffs,
    next_id: Arc<AtomicU64>,
    config: ConfigView,
}

impl StackCtx {
    /// The stack's configuration as of its last command.
    pub(crate) fn config(&self) -> Arc<NetConfig> {
        self.config
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// A fresh id for a socket (also its pump token).
    pub(crate) fn next_socket_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes what the pump parked for an accepted connection.
    pub(crate) fn take_handoff(&self, id: u64) -> Option<Handoff> {
        self.handoffs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&id)
    }
}

/// Which implementation serves a stack.
///
/// Both give the same API: the same errors, the same `ip` commands, descriptors that
/// work with `read`, `write`, `poll` and `epoll`. Where they still differ, the README
/// says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// A userspace TCP/IP stack (smoltcp) driven by a thread of its own: needs no
    /// namespace and no privilege. The default.
    #[default]
    Userspace,
    /// A Linux user + network namespace with a tap bridged to the VDE network, as
    /// the reference libvdestack makes: real kernel sockets, real `ip` commands run
    /// inside the namespace. Needs the cargo feature `kernel-ns` and unprivileged
    /// user namespaces; see the `kernel` module documentation in the source.
    Kernel,
}

/// The implementation behind a stack.
enum Imp {
    /// The userspace stack: its pump thread.
    Userspace {
        ctx: StackCtx,
        thread: Mutex<Option<PumpThread>>,
    },
    /// The kernel stack: its namespace helper (which ends when this drops).
    #[cfg(feature = "kernel-ns")]
    Kernel(crate::kernel::KernelStack),
}

struct StackInner {
    engine: Imp,
    ifname: String,
    /// Where and how the stack resolves names: read by each lookup, changed by
    /// [`Stack::set_name_servers`].
    resolver: Mutex<Resolver>,
}

/// A stack's name servers and options. None by default: a stack never asks the
/// host's servers unless its user gives them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolver {
    pub(crate) servers: Vec<IpAddr>,
    pub(crate) options: ResolverOptions,
}

impl Drop for StackInner {
    #[allow(irrefutable_let_patterns)] // without the feature kernel-ns
    fn drop(&mut self) {
        if let Imp::Userspace { ctx, thread } = &self.engine {
            if !ctx.pump.is_here() {
                // A forked child's copy: the pump thread is the parent's, and joining
                // it here would wait forever.
                return;
            }
            let _ = ctx.pump.send(Control::Shutdown);
            if let Some(thread) = thread.lock().ok().and_then(|mut t| t.take()) {
                thread.finish(&ctx.pump.doorbell);
            }
        }
    }
}

/// A private TCP/IP stack plugged into a VDE network.
///
/// Cheap to clone (all clones are the same stack) and `Send + Sync`. When the last
/// clone is dropped the stack's thread stops and every descriptor it owned is closed.
///
/// ```no_run
/// use vdestack::{Stack, TcpListener};
/// # fn main() -> std::io::Result<()> {
/// let stack = Stack::new("vde:///tmp/sw", None)?;          // interface "vde0"
/// stack.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
/// let listener = TcpListener::bind(&stack, "0.0.0.0:7")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Stack {
    inner: Arc<StackInner>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("ifname", &self.inner.ifname)
            .finish()
    }
}

impl Stack {
    /// Creates a stack connected to the VDE network `vnl` (any libvdeplug locator:
    /// `vde:///path`, a bare switch path, `ptp:///path`, `switch:///path`, ...),
    /// with its interface named `ifname` (default `vde0`). `""` gives a stack with
    /// only a loopback interface; `"=command args"` runs the command (found on
    /// `PATH`) and exchanges frames with it on its stdin and stdout as a VDE stream,
    /// e.g. `"=vde_plug vde:///tmp/sw"`.
    ///
    /// The interfaces start down and unaddressed, as in a new Linux network
    /// namespace: configure them with [`Stack::cmd`].
    pub fn new(vnl: &str, ifname: Option<&str>) -> io::Result<Stack> {
        let mut builder = Stack::builder().vnl(vnl);
        if let Some(ifname) = ifname {
            builder = builder.ifname(ifname);
        }
        builder.build()
    }

    /// A [`StackBuilder`], for the options [`Stack::new`] does not take.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let stack = vdestack::Stack::builder()
    ///     .vnl("vde:///tmp/sw")
    ///     .ifname("eth0")
    ///     .pcap("/tmp/eth0.pcap")      // every frame in and out, for tcpdump -r
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> StackBuilder {
        StackBuilder::default()
    }

    /// Runs `;`-separated `ip` commands (full paths: `/bin/ip`, `/sbin/ip`,
    /// `/usr/bin/ip`, `/usr/sbin/ip`), stopping at the first failure. The DHCP
    /// clients' commands run too (`udhcpc -i vde0`, `dhclient vde0`, see
    /// [`Stack::dhcp`] and the README's DHCP section): the call returns once the
    /// lease came or the tries ran out, with the program's status. What `show`
    /// commands print goes to standard output, as the real `ip` would print it.
    ///
    /// On a [`Backend::Kernel`] stack the commands are real programs run inside the
    /// stack's namespace (any full path, with `execv`), as the reference runs them.
    ///
    /// The error's [`CmdError::status`] is what `vde_stackcmd` returns for the same
    /// string; its `Display` is what `ip` prints.
    pub fn cmd(&self, cmds: &str) -> Result<(), CmdError> {
        let output = self.cmd_output(cmds)?;
        if !output.is_empty() {
            let mut stdout = io::stdout().lock();
            let _ = stdout.write_all(output.as_bytes());
            let _ = stdout.flush();
        }
        Ok(())
    }

    /// Like [`Stack::cmd`], returning what the commands printed instead of printing it.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let stack = vdestack::Stack::new("", None)?;
    /// stack.cmd("/bin/ip link set lo up")?;
    /// assert!(stack.cmd_output("/bin/ip addr show dev lo")?.contains("127.0.0.1/8"));
    /// # Ok(()) }
    /// ```
    pub fn cmd_output(&self, cmds: &str) -> Result<String, CmdError> {
        #[cfg(feature = "kernel-ns")]
        if let Some(kernel) = self.kernel() {
            return kernel.cmd(cmds);
        }
        self.pump()
            .map_err(|e| CmdError::new(2, format!("vdestack: {e}")))?
            .request(|reply| Control::Cmd {
                cmds: cmds.to_owned(),
                reply,
            })
            .map_err(|e| CmdError::new(2, format!("vdestack: the stack is gone: {e}")))?
    }

    /// Creates a socket on this stack and returns its raw descriptor, like
    /// `socket(2)`. `domain` is `AF_INET` or `AF_INET6`, `ty` is `SOCK_STREAM` or
    /// `SOCK_DGRAM`, optionally or'ed with `SOCK_NONBLOCK` and `SOCK_CLOEXEC`,
    /// `protocol` is 0 or the type's own (`IPPROTO_TCP`, `IPPROTO_UDP`; a
    /// `SOCK_DGRAM` with `IPPROTO_ICMP` or `IPPROTO_ICMPV6` is a ping socket, as on
    /// Linux). Anything else fails with the errno `socket(2)` gives.
    ///
    /// On a [`Backend::Kernel`] stack this is `socket(2)` inside the stack's
    /// namespace: a kernel socket of any kind the kernel offers.
    ///
    /// On a userspace stack, the descriptor alone is not yet a socket that calls
    /// can find: [`bsd::socket`](crate::bsd::socket) makes the same socket and
    /// registers it for the BSD calls of [`bsd`](crate::bsd) (`connect`, `bind`,
    /// `listen`...).
    pub fn msocket(&self, domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
        #[cfg(feature = "kernel-ns")]
        if let Some(kernel) = self.kernel() {
            return kernel.socket(domain, ty, protocol);
        }
        self.adopted_socket(domain, ty, protocol)
            .map(|(fd, _, _)| fd)
    }

    /// [`Stack::msocket`] on a userspace stack: the application end of a socket pair
    /// whose other end the pump adopts, the pump's id of the socket, and the watch of
    /// the token the pump keeps beside its end.
    pub(crate) fn adopted_socket(
        &self,
        domain: i32,
        ty: i32,
        protocol: i32,
    ) -> io::Result<(OwnedFd, u64, EndWatch)> {
        let flags = ty & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        check_socket_args(domain, base, protocol)?;
        // Datagram sockets need boundaries kept: see `socket/udp.rs`.
        let pair_type = if base == libc::SOCK_DGRAM {
            libc::SOCK_SEQPACKET
        } else {
            libc::SOCK_STREAM
        };
        let (app_end, pump_end) = sys::pair(pair_type)?;
        // A new pair's ends block: only a non-blocking socket needs a call.
        if flags & libc::SOCK_NONBLOCK != 0 {
            sys::set_nonblocking(std::os::fd::AsFd::as_fd(&app_end), true)?;
        }
        sys::set_cloexec(
            std::os::fd::AsFd::as_fd(&app_end),
            flags & libc::SOCK_CLOEXEC != 0,
        )?;
        let id = self.ctx()?.next_socket_id();
        let (token, watch) = EndToken::new();
        self.pump()?.send(Control::Adopt {
            id,
            fd: pump_end,
            token,
        })?;
        Ok((app_end, id, watch))
    }

    /// The descriptors the stack's thread holds open now: its poll and the
    /// eventfd that wakes it, its link's, its ends of the sockets' pairs. A program that closes every descriptor it
    /// does not know of (`closefrom`) must leave these, or the stack's thread would
    /// go on using numbers the program reuses. Empty for a kernel stack (whose
    /// helper's descriptors are opened with it and never change).
    pub fn descriptors(&self) -> io::Result<Vec<std::os::fd::RawFd>> {
        match &self.inner.engine {
            Imp::Userspace { ctx, .. } => ctx.pump.request(|reply| Control::Descriptors { reply }),
            #[cfg(feature = "kernel-ns")]
            Imp::Kernel(_) => Ok(Vec::new()),
        }
    }

    /// How many TCP connections still have bytes or a FIN to deliver, or an
    /// acknowledgement to wait for (every connection not closed, listening, in
    /// FIN-WAIT-2 or TIME-WAIT); 0 for a kernel stack. Whoever drops the last
    /// handle of a stack whose program just exited can wait for this to reach 0,
    /// since dropping it stops its thread at once (`vdestack run` does, bounded).
    pub fn unfinished_connections(&self) -> io::Result<usize> {
        match &self.inner.engine {
            Imp::Userspace { ctx, .. } => ctx.pump.request(|reply| Control::Unfinished { reply }),
            #[cfg(feature = "kernel-ns")]
            Imp::Kernel(_) => Ok(0),
        }
    }

    /// The name servers the stack asks (see [`StackBuilder::name_servers`]).
    pub fn name_servers(&self) -> Vec<IpAddr> {
        self.resolver().servers
    }

    /// Replaces the name servers the stack asks, for the lookups that start after
    /// (until a DHCP lease brings others: see [`Stack::dhcp`]).
    pub fn set_name_servers(&self, servers: impl IntoIterator<Item = IpAddr>) {
        let servers = servers.into_iter().collect();
        let mut resolver = self.lock_resolver();
        // What a lease brought before is older than this.
        self.take_lease_servers();
        resolver.servers = servers;
    }

    /// The name servers the last DHCP lease brought, if the stack has not taken
    /// them in yet.
    fn take_lease_servers(&self) -> Option<Vec<IpAddr>> {
        let ctx = self.ctx().ok()?;
        ctx.pump
            .lease_servers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Gets an IPv4 address, a default route and name servers for interface
    /// `ifname` by DHCP, as `udhcpc -i IFNAME` would, and returns the lease.
    ///
    /// The interface is set up, then DISCOVERs leave every 2 seconds, 5 times;
    /// without a lease 2 seconds after the last one, the call fails with
    /// `ETIMEDOUT` (kind `TimedOut`) and the client stops. With a lease, the
    /// stack holds it as busybox udhcpc's default script leaves a Linux
    /// namespace (`ip addr add ADDRESS/PREFIX broadcast + dev IFNAME`, the
    /// interface's default routes replaced by `ip route add default via ROUTER
    /// dev IFNAME`), the lease's name servers replace the stack's
    /// ([`Stack::name_servers`]), and the lease is renewed while the stack
    /// lives (a renewal that changes it changes the configuration; a lease lost
    /// takes its address and route away, and the client discovers again). A
    /// client already bound answers with its lease at once.
    ///
    /// `ENODEV` if the stack has no such Ethernet interface. On a
    /// [`Backend::Kernel`] stack this is not supported (kind `Unsupported`): run
    /// `udhcpc` in its namespace with [`Stack::cmd`] instead, with a script
    /// that configures the interface (busybox has none by default).
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let stack = vdestack::Stack::new("slirp://", None)?;
    /// let lease = stack.dhcp("vde0")?;
    /// assert_eq!(lease.address, std::net::Ipv4Addr::new(10, 0, 2, 15));
    /// # Ok(()) }
    /// ```
    pub fn dhcp(&self, ifname: &str) -> io::Result<Lease> {
        #[cfg(feature = "kernel-ns")]
        if self.kernel().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "vdestack: Stack::dhcp is for userspace stacks; on a kernel stack run \
                 udhcpc in its namespace with Stack::cmd",
            ));
        }
        let attempt = DhcpAttempt {
            tries: 5,
            interval: std::time::Duration::from_secs(2),
            renew: true,
            background: false,
        };
        let lease = self.pump()?.request(|reply| Control::Dhcp {
            ifname: ifname.to_owned(),
            attempt,
            reply,
        })??;
        // Taken in now, so that the caller's next lookup uses them.
        if let Some(servers) = self.take_lease_servers() {
            self.lock_resolver().servers = servers;
        }
        Ok(lease)
    }

    /// Replaces how long and how often the stack asks its name servers.
    pub fn set_resolver_options(&self, options: ResolverOptions) {
        self.lock_resolver().options = options;
    }

    fn lock_resolver(&self) -> std::sync::MutexGuard<'_, Resolver> {
        self.inner
            .resolver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The name servers and options, as of now.
    pub(crate) fn resolver(&self) -> Resolver {
        let mut resolver = self.lock_resolver();
        if let Some(servers) = self.take_lease_servers() {
            resolver.servers = servers;
        }
        resolver.clone()
    }

    /// The stack's interfaces as `ip addr show` shows them (and `getifaddrs`, the
    /// SIOCGIF* ioctls in the C library): index, name, flags, MAC, MTU, addresses.
    /// On a kernel stack, read from its namespace's `ip addr show`.
    pub fn interfaces(&self) -> io::Result<Vec<Interface>> {
        match &self.inner.engine {
            Imp::Userspace { ctx, .. } => Ok(ctx
                .config()
                .links()
                .iter()
                .map(Interface::of_link)
                .collect()),
            #[cfg(feature = "kernel-ns")]
            Imp::Kernel(_) => {
                let shown = self
                    .cmd_output("/bin/ip addr show")
                    .map_err(|e| io::Error::other(format!("vdestack: ip addr show: {e}")))?;
                Interface::parse_ip_addr_show(&shown).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("vdestack: ip addr show: {e}"),
                    )
                })
            }
        }
    }

    /// The name of the stack's VDE interface: the one it was made with, or the
    /// one `ip link set DEV name NAME` gave it since. On a kernel stack, the
    /// name it was made with (its namespace is not asked).
    pub fn ifname(&self) -> String {
        match &self.inner.engine {
            Imp::Userspace { ctx, .. } => ctx
                .config()
                .links()
                .iter()
                .find(|l| l.kind == LinkKind::Ether)
                .map_or_else(|| self.inner.ifname.clone(), |l| l.name.clone()),
            #[cfg(feature = "kernel-ns")]
            Imp::Kernel(_) => self.inner.ifname.clone(),
        }
    }

    /// Why the stack stopped serving, if it did before it was dropped: the message
    /// of its thread's panic (a bug in vdestack). From then on every call on the
    /// stack and its sockets fails with an error of kind `NetworkDown` (`ENETDOWN`
    /// in C) that carries this message; connections read end-of-file after it.
    /// `None` for a stack that works, and always for a kernel stack.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let stack = vdestack::Stack::new("", None)?;
    /// assert!(stack.failure().is_none());
    /// # Ok(()) }
    /// ```
    pub fn failure(&self) -> Option<String> {
        let ctx = self.ctx().ok()?;
        ctx.pump.failure.message().map(str::to_owned)
    }

    /// Which backend serves this stack.
    pub fn backend(&self) -> Backend {
        match &self.inner.engine {
            Imp::Userspace { .. } => Backend::Userspace,
            #[cfg(feature = "kernel-ns")]
            Imp::Kernel(_) => Backend::Kernel,
        }
    }

    /// The pump of a userspace stack (`EOPNOTSUPP` for a kernel stack, which has none).
    pub(crate) fn pump(&self) -> io::Result<&PumpHandle> {
        self.ctx().map(|ctx| &ctx.pump)
    }

    /// What sockets of a userspace stack keep (`EOPNOTSUPP` for a kernel stack).
    pub(crate) fn ctx(&self) -> io::Result<&StackCtx> {
        match &self.inner.engine {
            Imp::Userspace { ctx, .. } => Ok(ctx),
            #[cfg(feature = "kernel-ns")]
            Imp::Kernel(_) => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        }
    }

    /// The namespace helper of a kernel stack.
    #[cfg(feature = "kernel-ns")]
    pub(crate) fn kernel(&self) -> Option<&crate::kernel::KernelStack> {
        match &self.inner.engine {
            Imp::Kernel(kernel) => Some(kernel),
            Imp::Userspace { .. } => None,
        }
    }

    /// A handle that does not keep the stack alive.
    pub(crate) fn downgrade(&self) -> StackRef {
        StackRef(Arc::downgrade(&self.inner))
    }
}

/// A handle of a [`Stack`] that does not keep it alive, to tell whether it still is.
#[derive(Clone)]
pub(crate) struct StackRef(Weak<StackInner>);

impl StackRef {
    /// Whether the last [`Stack`] handle is gone (its pump stopped).
    pub(crate) fn is_gone(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// Options for a new [`Stack`]; see [`Stack::builder`].
#[derive(Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct StackBuilder {
    vnl: String,
    ifname: Option<String>,
    pcap: Option<PathBuf>,
    backend: Backend,
    link: Option<Box<dyn Link>>,
    resolver: Resolver,
    /// `Some(false)`: router advertisements are ignored.
    accept_ra: Option<bool>,
}

impl std::fmt::Debug for StackBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackBuilder")
            .field("vnl", &self.vnl)
            .field("ifname", &self.ifname)
            .field("pcap", &self.pcap)
            .field("backend", &self.backend)
            .field("link", &self.link.as_ref().map(|_| "(a Link)"))
            .field("name_servers", &self.resolver.servers)
            .field("accept_ra", &self.accept_ra.unwrap_or(true))
            .finish()
    }
}

impl StackBuilder {
    /// The VDE network, as for [`Stack::new`] (default `""`: loopback only).
    pub fn vnl(mut self, vnl: &str) -> StackBuilder {
        self.vnl = vnl.to_owned();
        self
    }

    /// Plugs the stack into `link` instead of the VDE network [`StackBuilder::vnl`]
    /// names (a builder given both uses the link). The stack's interface is then
    /// the link's, as for a VDE network: down and unaddressed at first.
    ///
    /// [`MemoryLink`](crate::link::MemoryLink) joins two stacks of one program;
    /// the [`Link`] trait says what a link of your own must do.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let (left, right) = vdestack::link::MemoryLink::pair()?;
    /// let a = vdestack::Stack::builder().link(left).build()?;
    /// let b = vdestack::Stack::builder().link(right).build()?;
    /// # Ok(()) }
    /// ```
    pub fn link(mut self, link: impl Link + 'static) -> StackBuilder {
        self.link = Some(Box::new(link));
        self
    }

    /// The interface name (default `vde0`).
    pub fn ifname(mut self, ifname: &str) -> StackBuilder {
        self.ifname = Some(ifname.to_owned());
        self
    }

    /// Captures every frame the stack sends and receives on its link to `path`, in
    /// pcap format (tcpdump, Wireshark).
    pub fn pcap(mut self, path: impl Into<PathBuf>) -> StackBuilder {
        self.pcap = Some(path.into());
        self
    }

    /// Which implementation serves the stack (default [`Backend::Userspace`]).
    ///
    /// [`Backend::Kernel`] fails with `Unsupported` when vdestack was built without
    /// the feature `kernel-ns`, and with an error naming the cause where user
    /// namespaces cannot be created.
    pub fn backend(mut self, backend: Backend) -> StackBuilder {
        self.backend = backend;
        self
    }

    /// The name servers the stack asks, in order, on port 53 ([`Stack::lookup_host`],
    /// and the socket constructors given a name). None by default: a stack never
    /// asks the host's servers, whose answers may not suit its network.
    pub fn name_servers(mut self, servers: impl IntoIterator<Item = IpAddr>) -> StackBuilder {
        self.resolver.servers = servers.into_iter().collect();
        self
    }

    /// How long and how often the stack asks its name servers (default: glibc's,
    /// 5 s per try and 2 rounds).
    pub fn resolver_options(mut self, options: ResolverOptions) -> StackBuilder {
        self.resolver.options = options;
        self
    }

    /// Whether the stack takes IPv6 router advertisements (default: yes, as
    /// a fresh Linux namespace does, its `accept_ra`). With it, once the
    /// interface is up, the stack sends up to three Router Solicitations,
    /// and each Router Advertisement on the link gives it an address per
    /// autonomous /64 prefix (the prefix and the MAC's EUI-64: `ip -6 addr`
    /// shows it `dynamic mngtmpaddr` with its lifetimes), the prefix's route
    /// and a default route via the router (`proto ra`, metric 1024), which
    /// expire unless advertised again. Without it, IPv6 is configured by
    /// hand only.
    ///
    /// A [`Backend::Kernel`] stack is a Linux namespace, which takes them in
    /// any case.
    pub fn accept_ra(mut self, on: bool) -> StackBuilder {
        self.accept_ra = Some(on);
        self
    }

    /// The link the stack is plugged into: the one given, or the one the locator
    /// names (`None` for a loopback-only stack).
    fn open_link(&mut self) -> io::Result<Option<Box<dyn Link>>> {
        match self.link.take() {
            Some(link) => Ok(Some(link)),
            None => open_link(&self.vnl),
        }
    }

    /// Whether the stack this builds will name every descriptor it holds in
    /// [`Stack::descriptors`]: true for a userspace stack on a `vde_switch` (or
    /// loopback only), false where a libvdeplug plugin may open descriptors it
    /// does not tell of, for a link given with [`StackBuilder::link`] or a
    /// capture file, and for a kernel stack (its helper's). A program that must
    /// know every descriptor a new stack opened (to keep them through its own
    /// `closefrom`) can skip looking at `/proc/self/fd` before and after
    /// [`StackBuilder::build`] when this is true.
    ///
    /// ```
    /// let builder = vdestack::Stack::builder().vnl("/tmp/my_switch");
    /// assert!(builder.descriptors_known());
    /// assert!(!vdestack::Stack::builder().vnl("ptp:///tmp/p").descriptors_known());
    /// ```
    pub fn descriptors_known(&self) -> bool {
        self.backend == Backend::Userspace
            && self.link.is_none()
            && self.pcap.is_none()
            && (self.vnl.is_empty() || is_vde_plugin(&self.vnl))
    }

    /// Creates the stack.
    pub fn build(mut self) -> io::Result<Stack> {
        let ifname = self
            .ifname
            .clone()
            .unwrap_or_else(|| DEFAULT_IFNAME.to_owned());
        let ifname = ifname.as_str();
        if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', ' ', '\0']) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if self.backend == Backend::Kernel {
            return self.build_kernel(ifname);
        }
        let seed = random_u64();
        let (link, config): (Box<dyn Link>, NetConfig) = match self.open_link()? {
            None => (Box::new(NullLink), NetConfig::loopback_only()),
            Some(link) => (link, NetConfig::new(ifname, random_mac(seed))),
        };
        let capture = match &self.pcap {
            Some(path) => Some(PcapWriter::new(BufWriter::new(File::create(path)?))?),
            None => None,
        };
        let start = Instant::now();
        let config_view: ConfigView = Arc::new(Mutex::new(Arc::new(config.clone())));
        let mut engine = Engine::new(config, seed, start.elapsed());
        engine.set_accept_ra(self.accept_ra.unwrap_or(true));
        let poll = mio::Poll::new()?;
        let doorbell = Arc::new(Doorbell::new(poll.registry(), WAKER)?);
        let (tx, rx) = crossbeam_channel::unbounded();
        let handoffs: Handoffs = Arc::default();
        let failure = Failure::default();
        let lease_servers = LeaseServers::default();
        let pump = Pump::new(
            poll,
            link,
            engine,
            rx,
            doorbell.clone(),
            handoffs.clone(),
            start,
            capture,
            config_view.clone(),
            failure.clone(),
            lease_servers.clone(),
        )?;
        let thread = PumpThread::start(pump, format!("vdestack-{ifname}"))?;
        Ok(Stack {
            inner: Arc::new(StackInner {
                engine: Imp::Userspace {
                    ctx: StackCtx {
                        pump: PumpHandle {
                            tx,
                            doorbell,
                            failure,
                            lease_servers,
                            pid: sys::process_id(),
                        },
                        handoffs,
                        next_id: Arc::new(AtomicU64::new(FIRST_SOCKET_ID)),
                        config: config_view,
                    },
                    thread: Mutex::new(Some(thread)),
                },
                ifname: ifname.to_owned(),
                resolver: Mutex::new(self.resolver),
            }),
        })
    }

    /// [`StackBuilder::build`] for [`Backend::Kernel`].
    #[cfg(feature = "kernel-ns")]
    fn build_kernel(mut self, ifname: &str) -> io::Result<Stack> {
        if self.pcap.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "vdestack: pcap captures are made by the userspace backend only \
                 (run tcpdump on the tap inside the namespace instead)",
            ));
        }
        let link = self.open_link()?;
        let kernel = crate::kernel::KernelStack::start(link, ifname)?;
        Ok(Stack {
            inner: Arc::new(StackInner {
                engine: Imp::Kernel(kernel),
                ifname: ifname.to_owned(),
                resolver: Mutex::new(std::mem::take(&mut self.resolver)),
            }),
        })
    }

    /// [`StackBuilder::build`] for [`Backend::Kernel`], built without it.
    #[cfg(not(feature = "kernel-ns"))]
    fn build_kernel(self, _ifname: &str) -> io::Result<Stack> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "vdestack was built without the feature kernel-ns: no kernel backend",
        ))
    }
}

/// The errno behind `e`: its OS error, or the one a kernel stack's start failure
/// carries beside its message.
pub(crate) fn errno_of(e: &io::Error) -> Option<i32> {
    #[cfg(feature = "kernel-ns")]
    return crate::kernel::errno_of(e);
    #[cfg(not(feature = "kernel-ns"))]
    e.raw_os_error()
}

/// The link for a locator: `None` for `""` (loopback only), a coprocess for
/// `"=command"`, a libvdeplug plug otherwise.
fn open_link(vnl: &str) -> io::Result<Option<Box<dyn Link>>> {
    Ok(if vnl.is_empty() {
        None
    } else if let Some(command) = vnl.strip_prefix('=') {
        Some(Box::new(StreamLink::spawn(command)?))
    } else {
        Some(Box::new(VdeLink::open(vnl, "vdestack")?))
    })
}

/// The errno `socket(2)` gives for the arguments, where this stack cannot serve them.
fn check_socket_args(domain: i32, ty: i32, protocol: i32) -> io::Result<()> {
    let fail = |code| Err(io::Error::from_raw_os_error(code));
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        return fail(libc::EAFNOSUPPORT);
    }
    // Ping sockets: SOCK_DGRAM with the family's ICMP.
    let ping = if domain == libc::AF_INET {
        libc::IPPROTO_ICMP
    } else {
        libc::IPPROTO_ICMPV6
    };
    let supported: &[i32] = match ty {
        libc::SOCK_STREAM => &[0, libc::IPPROTO_TCP],
        libc::SOCK_DGRAM => &[0, libc::IPPROTO_UDP, ping],
        libc::SOCK_RAW | libc::SOCK_SEQPACKET | libc::SOCK_RDM => {
            return fail(libc::EPROTONOSUPPORT)
        }
        _ => return fail(libc::EINVAL),
    };
    if !supported.contains(&protocol) {
        return fail(libc::EPROTONOSUPPORT);
    }
    Ok(())
}

/// 64 random bits from the OS-seeded hasher keys std keeps per process, mixed with the
/// time and a counter so that every call differs.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// A random unicast, locally administered MAC address.
fn random_mac(seed: u64) -> [u8; 6] {
    let b = seed.to_le_bytes();
    [(b[0] & 0xfe) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TcpListener, TcpStream, UdpSocket};
    use std::io::{ErrorKind, Read};

    /// A pump that panics takes its stack down cleanly: every call says why.
    #[test]
    fn a_pump_panic_reaches_every_socket_with_its_message() {
        let stack = Stack::new("", None).unwrap();
        stack.cmd("/bin/ip link set lo up").unwrap();
        let listener = TcpListener::bind(&stack, "127.0.0.1:7").unwrap();
        let _client = TcpStream::connect(&stack, "127.0.0.1:7").unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let udp = UdpSocket::bind(&stack, "127.0.0.1:9").unwrap();
        assert!(stack.failure().is_none());

        stack.ctx().unwrap().pump.send(Control::Panic).unwrap();

        // A blocked read wakes with the failure, not a silent end of stream.
        let e = server.read(&mut [0; 8]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NetworkDown, "{e}");
        assert!(e.to_string().contains("a pump bug, on purpose"), "{e}");
        assert_eq!(stack.failure().as_deref(), Some("a pump bug, on purpose"));

        let down = |e: io::Error| {
            assert_eq!(e.kind(), ErrorKind::NetworkDown, "{e}");
            assert!(e.to_string().contains("on purpose"), "{e}");
        };
        down(TcpStream::connect(&stack, "127.0.0.1:7").unwrap_err());
        down(TcpListener::bind(&stack, "127.0.0.1:8").unwrap_err());
        down(listener.accept().unwrap_err());
        down(udp.recv_from(&mut [0; 8]).unwrap_err());
        let cmd = stack.cmd("/bin/ip link set lo down").unwrap_err();
        assert!(cmd.message().contains("on purpose"), "{cmd}");
        // Dropping the failed stack neither hangs nor panics.
        drop(stack);
    }
}
