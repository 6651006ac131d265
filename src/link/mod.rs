//! Links move Ethernet frames between a stack and the world.
//!
//! A stack's pump thread owns exactly one link. Every link is non-blocking: `recv`
//! and `send` return `WouldBlock` instead of waiting, and the pump waits for the
//! link's file descriptors in its mio loop. Keeping the contract this small lets the
//! same pump drive a real VDE plug, a loopback-only stack and (in tests) an in-memory
//! wire.

use std::io;
use std::os::fd::RawFd;

mod stream;
#[cfg(test)]
mod testing;
mod vdeplug;

pub use stream::StreamLink;
pub use stream::{encode_frame, FramingError, StreamDecoder, MAX_STREAM_FRAME};
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

    /// Every descriptor the link works with. The kernel backend's helper process,
    /// which closes every inherited descriptor it does not need, keeps these.
    fn fds(&self) -> Vec<RawFd> {
        self.data_fd().into_iter().chain(self.hangup_fd()).collect()
    }

    /// Receives up to `bufs.len()` frames, frame `i` into `bufs[i]` (each at least
    /// [`MAX_FRAME`] long) with its length in `lens[i]`; returns how many arrived.
    /// `Err(WouldBlock)` when none waits. Links that can, do it in one system call.
    fn recv_batch(&mut self, bufs: &mut [Vec<u8>], lens: &mut [usize]) -> io::Result<usize> {
        default_recv_batch(self, bufs, lens)
    }

    /// Sends frames from the front of `frames`; returns how many the link took (at
    /// least one), or `Err(WouldBlock)` when it took none. Links that can, do it in
    /// one system call.
    fn send_batch(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        default_send_batch(self, frames)
    }

    /// True when the last [`Link::recv_batch`] found the link empty although it
    /// returned frames, so that the caller can go back to waiting for `data_fd`
    /// without one more call that would only say `WouldBlock`. Links that cannot
    /// tell say false.
    fn drained_by_last_batch(&self) -> bool {
        false
    }
}

/// [`Link::recv_batch`] as a loop of [`Link::recv`], for links without a batch call.
pub(crate) fn default_recv_batch<L: Link + ?Sized>(
    link: &mut L,
    bufs: &mut [Vec<u8>],
    lens: &mut [usize],
) -> io::Result<usize> {
    let mut count = 0;
    for (buf, len) in bufs.iter_mut().zip(lens.iter_mut()) {
        match link.recv(buf) {
            Ok(n) => *len = n,
            Err(e) if count > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
        count += 1;
    }
    Ok(count)
}

/// [`Link::send_batch`] as a loop of [`Link::send`], for links without a batch call.
pub(crate) fn default_send_batch<L: Link + ?Sized>(
    link: &mut L,
    frames: &[&[u8]],
) -> io::Result<usize> {
    let mut count = 0;
    for frame in frames {
        match link.send(frame) {
            Ok(()) => count += 1,
            Err(e) if count > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(count)
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
