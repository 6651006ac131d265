//! stackcmd: the configuration commands of a stack, without a kernel.
//!
//! The reference libvdestack configures its stacks by running `/bin/ip` inside a
//! network namespace (`vde_stackcmd`). A userspace stack has no namespace to run
//! `ip` in, so this module stands in for both `ip` and the kernel behind it: it
//! splits a stackcmd string into commands ([`split_commands`]), interprets the
//! `ip link`, `ip addr`, `ip route` and `ip neigh` subset a stack needs, and applies them to an
//! explicit model ([`NetConfig`]) with the exit statuses and messages iproute2 6.1
//! gives on Linux, so that programs checking `vde_stackcmd`'s result behave the
//! same. The engine reads the model to configure its interface and to route.
//!
//! Everything here is pure: no I/O, no system calls, no clock, no randomness, so
//! any input can be tried (and fuzzed) without side effects.
//!
//! It is public as the `ip` model on its own, usable without a stack: a program
//! can learn what a stackcmd string does (its status, its message, the links,
//! addresses and routes it leaves) before giving it to a stack, and the fuzzers
//! and the differential test against the real `ip` drive it directly. A stack's
//! own configuration is changed only through [`crate::Stack::cmd`].
//!
//! ```
//! use vdestack::cmd::NetConfig;
//!
//! let mut config = NetConfig::new("vde0", [2, 0, 0, 0, 0, 1]);
//! config.run("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0").unwrap();
//! let hop = config.lookup("10.0.0.7".parse().unwrap()).unwrap();
//! assert_eq!(hop.src, Some("10.0.0.1".parse().unwrap()));
//! let error = config.run("/bin/ip route add 10.9.0.0/16 via 192.0.2.1").unwrap_err();
//! assert_eq!(error.status(), 2);
//! ```
//!
//! Submodules, each importing only those listed before it:
//! - `error`: [`CmdError`], the exit status and message every part reports;
//! - `dhcp`: the words of the DHCP client commands (`udhcpc`, `dhclient`),
//!   read for a stack's pump, which runs the engine's client for them;
//! - `config`: the model ([`NetConfig`]) and the kernel's rules for changing it;
//!   it knows nothing of commands;
//! - `lexer` (splitting) and `parse` (iproute2's number and address syntax);
//! - `show`: iproute2's output format, reading the model;
//! - `interface`: the links as a program sees them ([`Interface`]: `getifaddrs`,
//!   the SIOCGIF* ioctls), and read back from `ip addr show`'s output;
//! - `ip`: the command language, which turns words into requests, checks them
//!   against the model and applies them.
//!
//! This module joins them: [`NetConfig::run`] is defined here, above both the
//! model and the command language, rather than beside the model, so that the
//! model never calls back into the commands that drive it. It stays a method of
//! [`NetConfig`] because that is how every caller already holds a configuration.

mod config;
mod dhcp;
mod error;
mod interface;
mod ip;
mod lexer;
mod parse;
mod show;
#[cfg(test)]
mod tests;

pub use config::{
    IfAddr, Link, LinkKind, LinkStats, Neighbor, NeighborState, NetConfig, NextHop, NoRoute,
    Observed, Route, RouteProto, RouteType, MAX_ADDRS, MAX_USER_ROUTES,
};
pub(crate) use config::{Lifetime, RoutePref, RouterRoute};
pub(crate) use dhcp::{dhcp_command, DhcpCommand};
pub use error::CmdError;
pub use interface::{netmask, Interface, InterfaceFlags};
pub use lexer::split_commands;

impl NetConfig {
    /// Runs a whole stackcmd string: splits it into commands, runs them in order and
    /// stops at the first failure, like `vde_stackcmd`. On success returns what the
    /// commands printed on standard output (only `show` commands print).
    pub fn run(&mut self, cmds: &str) -> Result<String, CmdError> {
        self.run_observed(cmds, &Observed::default())
    }

    /// [`NetConfig::run`] for a running stack, which passes what it observed
    /// (learned neighbours, counters) for the commands that show it.
    pub fn run_observed(&mut self, cmds: &str, observed: &Observed) -> Result<String, CmdError> {
        let mut out = String::new();
        for argv in split_commands(cmds) {
            out.push_str(&self.run_argv(&argv, observed)?);
        }
        Ok(out)
    }

    /// Runs one command already split into words. A DHCP client command
    /// (`udhcpc`, `dhclient`, see `dhcp`) is refused: it needs a stack's
    /// network, whose pump runs it before it gets here.
    pub(crate) fn run_argv(
        &mut self,
        argv: &[String],
        observed: &Observed,
    ) -> Result<String, CmdError> {
        if let Some(refusal) = dhcp::without_stack(argv) {
            return Err(refusal);
        }
        self.change(|state| ip::run_command(state, argv, observed))
    }
}
