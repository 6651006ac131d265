//! [`MemoryLink`]: a wire between two stacks of one program, with no VDE network.
//!
//! Tests, simulations and programs that want two stacks to talk (or a stack to
//! talk to their own frame code) need a link that is neither a switch nor a
//! process. The two ends of an AF_UNIX `SOCK_SEQPACKET` socket pair are one: each
//! frame is one message (boundaries hold, as on Ethernet), the descriptors can be
//! polled like any link's, and the kernel's socket buffer is the wire's queue.
//! It is also what a [`Link`] implementation looks like at its smallest.

use super::Link;
use crate::sys;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// One end of an in-memory Ethernet wire: what is sent on one end of a
/// [`MemoryLink::pair`] arrives on the other.
///
/// ```no_run
/// use vdestack::link::MemoryLink;
/// use vdestack::Stack;
/// # fn main() -> std::io::Result<()> {
/// let (left, right) = MemoryLink::pair()?;
/// let a = Stack::builder().link(left).build()?;
/// let b = Stack::builder().link(right).build()?;
/// a.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")?;
/// b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")?;
/// # Ok(()) }
/// ```
///
/// A frame sent while the other end's queue is full waits (`WouldBlock`: the stack
/// retries); once the other end is dropped, frames sent are lost and the link
/// reads as hung up, as a cable pulled out.
#[derive(Debug)]
pub struct MemoryLink {
    fd: OwnedFd,
}

impl MemoryLink {
    /// Two links joined to each other, each to be given to one stack
    /// ([`StackBuilder::link`](crate::StackBuilder::link)).
    pub fn pair() -> io::Result<(MemoryLink, MemoryLink)> {
        let (left, right) = sys::pair(libc::SOCK_SEQPACKET)?;
        for end in [&left, &right] {
            sys::set_nonblocking(end.as_fd(), true)?;
        }
        Ok((MemoryLink { fd: left }, MemoryLink { fd: right }))
    }
}

impl Link for MemoryLink {
    fn data_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn hangup_fd(&self) -> Option<RawFd> {
        // The other end's close shows on the data fd: `recv` reports it.
        None
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match sys::recv_parts(self.fd.as_fd(), &mut [], buf, libc::MSG_DONTWAIT)? {
                // A stack never sends an empty frame: this is the other end gone.
                (0, _) => return Err(io::ErrorKind::UnexpectedEof.into()),
                // Larger than any frame a stack takes: dropped, as a NIC would.
                (_, true) => continue,
                (len, false) => return Ok(len),
            }
        }
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        sys::send(self.fd.as_fd(), frame).map(|_| ())
    }

    fn hung_up(&mut self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_whole_and_in_order() {
        let (mut left, mut right) = MemoryLink::pair().unwrap();
        let mut buf = vec![0u8; super::super::MAX_FRAME];
        assert_eq!(
            right.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        left.send(&[1; 60]).unwrap();
        left.send(&[2; 1514]).unwrap();
        assert_eq!(right.recv(&mut buf).unwrap(), 60);
        assert_eq!(right.recv(&mut buf).unwrap(), 1514);
        assert_eq!(buf[..1514], [2; 1514]);
        right.send(&[3; 64]).unwrap();
        assert_eq!(left.recv(&mut buf).unwrap(), 64);
    }

    #[test]
    fn a_dropped_end_is_an_error_on_the_other() {
        let (mut left, right) = MemoryLink::pair().unwrap();
        drop(right);
        let mut buf = [0u8; 64];
        assert_eq!(
            left.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(left.send(&[0; 60]).is_err());
    }

    #[test]
    fn a_full_wire_says_would_block() {
        let (mut left, _right) = MemoryLink::pair().unwrap();
        let frame = [0u8; 1514];
        let mut sent = 0;
        let blocked = loop {
            match left.send(&frame) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 100_000, "the socket buffer never filled");
        };
        assert_eq!(blocked.kind(), io::ErrorKind::WouldBlock);
    }
}
