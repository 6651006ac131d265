//! stackcmd: the configuration commands of a stack, without a kernel.
//!
//! The reference libvdestack configures its stacks by running `/bin/ip` inside a
//! network namespace (`vde_stackcmd`). A userspace stack has no namespace to run
//! `ip` in, so this module stands in for both `ip` and the kernel behind it: it
//! splits a stackcmd string into commands ([`split_commands`]), interprets the
//! `ip link`, `ip addr` and `ip route` subset a stack needs, and applies them to an
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
//! Submodules: `lexer` (splitting), `parse` (iproute2's number and address syntax),
//! `ip` (the command line), `config` (the model and the kernel's rules), `show`
//! (iproute2's output format).

mod config;
mod ip;
mod lexer;
mod parse;
mod show;
#[cfg(test)]
mod tests;

pub use config::{
    IfAddr, Link, LinkKind, NetConfig, NextHop, Route, RouteProto, MAX_ADDRS, MAX_USER_ROUTES,
};
pub use lexer::split_commands;

use std::fmt;

/// A failed stackcmd: the exit status `vde_stackcmd` returns and the message the
/// command printed on standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError {
    status: i32,
    message: String,
}

impl CmdError {
    /// An error with this exit status and message (trailing newlines are dropped).
    pub fn new(status: i32, message: impl Into<String>) -> CmdError {
        let mut message = message.into();
        message.truncate(message.trim_end_matches('\n').len());
        CmdError { status, message }
    }

    /// The exit status `vde_stackcmd` would return (never 0).
    pub fn status(&self) -> i32 {
        self.status
    }

    /// What the command prints on standard error, without the final newline(s).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CmdError {}

/// So that code returning `io::Result` can use `?` on [`CmdError`]; the status is
/// lost, the message is kept.
impl From<CmdError> for std::io::Error {
    fn from(e: CmdError) -> std::io::Error {
        std::io::Error::other(e)
    }
}
