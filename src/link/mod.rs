//! Links move Ethernet frames between a stack and the world; bring your own with
//! [`StackBuilder::link`](crate::StackBuilder::link).
//!
//! A stack's pump thread owns exactly one link. Every link is non-blocking: `recv`
//! and `send` return `WouldBlock` instead of waiting, and the pump waits for the
//! link's file descriptors in its mio loop. Keeping the contract this small lets the
//! same pump drive a real VDE plug, a loopback-only stack, an in-memory wire, or a
//! link of the application's own.
//!
//! What is API here:
//! - [`Link`], the trait to implement to plug a stack into something else than a
//!   VDE network (its documentation says what each method must do);
//! - [`MemoryLink`], an in-memory wire joining two stacks of one program (tests,
//!   simulations with real threads), and the smallest example of a `Link`;
//! - [`VdeLink`], a plug into any VDE network through libvdeplug, for programs
//!   that want raw frames from a VDE network (what [`Stack::new`](crate::Stack::new)
//!   opens for a locator);
//! - the VDE stream framing ([`encode_frame`], [`StreamDecoder`], [`FramingError`],
//!   [`MAX_STREAM_FRAME`]: a 2-byte big-endian length before each frame), which
//!   `vde_plug` speaks on its standard input and output, for links over pipes or
//!   TCP connections.
//!
//! The coprocess link behind `"=command"` locators and the null link of a
//! loopback-only stack are the stack's own business.

use std::io;
use std::os::fd::RawFd;

mod memory;
mod stream;
#[cfg(test)]
mod testing;
mod vdeplug;

pub use memory::MemoryLink;
pub(crate) use stream::StreamLink;
pub use stream::{encode_frame, FramingError, StreamDecoder, MAX_STREAM_FRAME};
pub(crate) use vdeplug::is_vde_plugin;
pub use vdeplug::VdeLink;

/// The largest frame any link hands to the stack (libvdeplug's `VDE_ETHBUFSIZE`).
pub const MAX_FRAME: usize = 9216 + 14 + 4;

/// A source and sink of Ethernet frames, driven by a stack.
///
/// # Implementing it
///
/// A stack calls these methods from its own thread (the pump), never two at once.
/// None of them may block: the pump waits for the link's descriptors with epoll,
/// edge-triggered, and does everything else in the same thread.
///
/// - Frames are whole Ethernet frames (destination and source address, type,
///   payload; no preamble, no frame check sequence), at most [`MAX_FRAME`] bytes.
///   The stack sends frames of its MTU plus 14 bytes (1514 by default).
/// - [`Link::data_fd`] must be a descriptor epoll can watch (a socket, a pipe, an
///   eventfd; not a regular file) that is readable while frames wait to be received
///   and writable when a `send` that said `WouldBlock` may succeed. The pump reads
///   until [`Link::recv`] says `WouldBlock` each time it is woken, and only then
///   waits again.
/// - [`Link::recv`] copies one frame into `buf` and returns its length, or says
///   `WouldBlock` when none waits. Any other error means the link is dead for good:
///   the stack stops using it (its connections then time out, as with a cable
///   pulled out).
/// - [`Link::send`] takes one frame or says `WouldBlock` (the stack keeps the frame
///   and retries once `data_fd` is writable). Any other error drops that frame, as
///   a wire loses one.
/// - A link that learns of its far end's end in another way than through `recv`
///   gives a [`Link::hangup_fd`] (a different descriptor from `data_fd`) and says
///   in [`Link::hung_up`] whether the far end has gone.
/// - On a [`Backend::Kernel`](crate::Backend::Kernel) stack, the link is driven by
///   the stack's helper process, a `fork` of the program: there the link works on
///   a copy of itself, with only the descriptors [`Link::fds`] names (the helper
///   closes every other one), and must take no lock another thread of the program
///   may hold and start no thread. A link whose state lives in descriptors (as
///   [`MemoryLink`] and [`VdeLink`]) works on both backends.
///
/// The batch methods and [`Link::drained_by_last_batch`] have defaults built on
/// `recv` and `send`; a link overrides them when it can move several frames in one
/// system call.
pub trait Link: Send {
    /// The descriptor that becomes readable when frames arrive (`None`: never).
    fn data_fd(&self) -> Option<RawFd>;

    /// A descriptor that becomes readable when the link is hung up (`None`: never,
    /// or the hang-up shows as an error of [`Link::recv`]).
    fn hangup_fd(&self) -> Option<RawFd>;

    /// Receives one frame into `buf` (at least [`MAX_FRAME`] bytes). `Err(WouldBlock)`
    /// when nothing is waiting.
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

    /// Lets in, of the multicast frames, only those to the Ethernet addresses
    /// in `macs` (IPv6's 33:33 and IPv4's 01:00:5e ones; unicast and broadcast
    /// frames still come), as a NIC's multicast filter: the stack
    /// calls it with the groups it listens to whenever they change. A link
    /// that cannot filter lets everything in (the default), and the stack
    /// drops what it does not listen to.
    fn set_multicast_filter(&mut self, macs: &[[u8; 6]]) -> io::Result<()> {
        let _ = macs;
        Ok(())
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
pub(crate) struct NullLink;

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
