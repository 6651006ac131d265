//! # vdestack: private TCP/IP stacks on VDE networks
//!
//! vdestack gives a program its own TCP/IP stacks ("Internet of Threads"). Each
//! [`Stack`] has its own interfaces, addresses, routes and ports, is plugged into a
//! VDE virtual Ethernet (any libvdeplug locator: a `vde_switch`, `ptp://`,
//! `switch://`, ...), and hands the program ordinary file descriptors.
//!
//! It needs no kernel namespace and no privilege: each stack is a smoltcp TCP/IP
//! stack driven by a thread of its own, and the `ip link/addr/route` commands that
//! configure it are understood by vdestack itself.
//!
//! ## A first program
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use vdestack::{Stack, TcpListener, TcpStream};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Two stacks on the same switch (`vde_switch -s /tmp/sw`).
//! let a = Stack::new("vde:///tmp/sw", None)?;          // interface "vde0"
//! let b = Stack::new("vde:///tmp/sw", None)?;
//! a.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
//! b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;
//!
//! let listener = TcpListener::bind(&a, "0.0.0.0:7")?;
//! let mut client = TcpStream::connect(&b, "10.0.0.1:7")?;
//! let (mut server, peer) = listener.accept()?;
//! client.write_all(b"hello")?;
//! let mut buf = [0; 5];
//! server.read_exact(&mut buf)?;
//! # Ok(()) }
//! ```
//!
//! ## How it is built
//!
//! - Links move Ethernet frames (libvdeplug, a `=command` coprocess, a link of the
//!   program's own, or nothing for a loopback-only stack).
//! - The `ip` commands that configure a stack change a configuration model, with
//!   the exit statuses and messages of iproute2. It is pure: no system calls.
//! - The engine (smoltcp plus loopback, a listen backlog, ephemeral ports and BSD
//!   errnos) is sans-IO as well: it is driven by `(now, frame)` calls.
//! - One pump thread per stack sleeps in mio until there is work, and moves bytes
//!   between smoltcp's rings and AF_UNIX socket pairs whose other ends are the
//!   descriptors the application holds. `read`, `write`, `poll` and `epoll` on them
//!   need no help from this library.
//!
//! ## Modules
//!
//! The socket types and [`Stack`] are at the root. Four modules are API too, and
//! a fifth with a feature:
//!
//! - [`link`]: plug a stack into something else than a VDE network (the
//!   [`link::Link`] trait and [`StackBuilder::link`]), for instance an in-memory
//!   wire between two stacks ([`link::MemoryLink`]);
//! - [`sim`]: the deterministic mode, stacks with no threads and a virtual clock,
//!   for simulations and fuzzers;
//! - [`cmd`]: the `ip` model on its own, without a stack: what a stackcmd string
//!   does to a configuration, with iproute2's statuses and messages;
//! - [`dns`]: DNS messages, `/etc/hosts` and `resolv.conf` without I/O, what
//!   [`Stack::lookup_host`] is built on;
//! - `tokio` (cargo feature `tokio`): the socket types for async code, shaped
//!   like `tokio::net`'s, on which hyper and other code written over tokio's
//!   I/O traits run unchanged.
//!
//! ## Two backends
//!
//! [`Backend::Userspace`] (the default) is the stack described above. With the
//! cargo feature `kernel-ns`, [`Backend::Kernel`] makes each stack a Linux user and
//! network namespace with a tap bridged to the VDE network, as the reference
//! libvdestack does: real kernel sockets, real `ip` commands. A helper process owns
//! each namespace and hands its sockets back over a Unix socket. Both backends pass
//! the same integration tests, and can share a network.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! let stack = vdestack::Stack::builder()
//!     .vnl("vde:///tmp/sw")
//!     .backend(vdestack::Backend::Kernel)
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! ## Behaviour
//!
//! Interfaces start down and unaddressed, as in a new Linux network namespace.
//! Errors carry the errno a kernel socket gives for the same failure
//! (`ECONNREFUSED`, `ENETUNREACH`, `EHOSTUNREACH`, `EADDRINUSE`, `EADDRNOTAVAIL`,
//! `ECONNRESET`, `ETIMEDOUT`). Dropping the last handle of a stack stops its thread
//! and closes every descriptor it owned.

#![warn(missing_docs)]
// `unsafe` is refused everywhere but in the modules that talk to the system or to C:
// `sys` (raw system calls), `link` (libvdeplug's FFI) and `kernel` (the namespace
// helper); each of those allows it for itself. One call outside them is allowed
// where it stands: the pump lending page mappings to the engine as rings
// (`pump/rings.rs`), whose soundness rests on the engine's lease contract. The C library is a crate of its own
// (`capi/`), made of this crate's public API.
#![deny(unsafe_code)]

pub mod bsd;
pub mod cmd;
pub mod dns;
mod engine;
#[cfg(feature = "kernel-ns")]
#[allow(unsafe_code)]
mod kernel;
#[allow(unsafe_code)]
pub mod link;
mod pcap;
mod pump;
pub mod sim;
mod socket;
mod stack;
#[allow(unsafe_code)]
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use cmd::{CmdError, Interface, InterfaceFlags};
pub use engine::DhcpLease as Lease;
pub use socket::{PingSocket, SocketConfig, TcpListener, TcpStream, ToStackAddrs, UdpSocket};
pub use stack::{Backend, Stack, StackBuilder, DEFAULT_IFNAME};
