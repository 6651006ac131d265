//! Links move Ethernet frames between a stack and the world.
//!
//! A stack's pump thread owns exactly one link. Every link is non-blocking: `recv`
//! and `send` return `WouldBlock` instead of waiting, and the pump waits for the
//! link's file descriptors in its mio loop. Keeping the contract this small lets the
//! same pump drive a real VDE plug, a loopback-only stack and (in tests) an in-memory
//! wire.

use std::io;
use std::os::fd::RawFd;

mod vdeplug;

pub use vdeplug::VdeLink;

/// The largest frame any link hands to the stack (libvdeplug's `VDE_ETHBUFSIZE`).
pub const MAX_FRAME: usize = 9216 + 14 + 4;

/// A source and sink of Ethernet frames, driven by a pump thread.
pub trait Link: Send {
    /// The fd that becomes readable when frames arrive (`None`: never).
    fn data_fd(&self) -> Option<RawFd>;

    /// An fd that becomes readable when the link is hung up (`None`: never).
    fn hangup_fd(&self) -> Option<RawFd>;

    /// Receives one frame into `buf`. `Err(WouldBlock)` when nothing is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Sends one frame. `Err(WouldBlock)` when the link cannot take it now: the
    /// caller keeps it and retries once `data_fd` is writable.
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Called when `hangup_fd` is readable: true if the far end has gone.
    fn hung_up(&mut self) -> bool;
}

/// The link of a loopback-only stack (`vnl == ""`): nothing comes in, everything sent
/// disappears, as on an interface with no carrier.
#[derive(Debug, Default)]
pub struct NullLink;

impl Link for NullLink {
    fn data_fd(&self) -> Option<RawFd> {
        None
    }
    fn hangup_fd(&self) -> Option<RawFd> {
        None
    }
    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
    fn send(&mut self, _frame: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn hung_up(&mut self) -> bool {
        false
    }
}
