//! The error of a stackcmd: an exit status and a message, as `vde_stackcmd` reports
//! them.
//!
//! It sits below every other part of `cmd`, so that the model (`config`) can
//! report the kernel's refusals and the command language (`ip`) its own, each
//! without importing the other.

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
