//! The connection between a program's process and the `vdestack run` host: a
//! `SOCK_SEQPACKET` unix socket, one message per request or answer
//! (`protocol.rs`), with at most one descriptor beside it (`SCM_RIGHTS`).
//!
//! The library and the host both compile this file. Its system calls are
//! rustix's, which makes them itself: in a program's process, libc's `sendmsg`,
//! `recvmsg`, `socket` and `connect` are the library's own interposed ones.
//! An interrupted call is made again: a request, once sent, must have its answer
//! read, or the next request would read it.

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

/// `call`, made again while a signal interrupts it.
pub fn retry<T>(mut call: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(rustix::io::Errno::INTR) => continue,
            other => return Ok(other?),
        }
    }
}

/// Sends one message, with `fd` beside it if given; never raises `SIGPIPE`.
pub fn send(sock: BorrowedFd<'_>, message: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let fds = fd.as_slice();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
    }
    let iov = [IoSlice::new(message)];
    retry(|| rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL))?;
    Ok(())
}

/// One message received.
pub struct Received {
    /// Its length (0: the other side is gone).
    pub len: usize,
    /// The first descriptor beside it (close-on-exec); others are closed.
    pub fd: Option<OwnedFd>,
    /// It was longer than the buffer.
    pub truncated: bool,
}

/// Receives one message into `buf`.
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    let msg =
        retry(|| rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC))?;
    let mut fd = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for received in fds {
                fd.get_or_insert(received);
            }
        }
    }
    Ok(Received {
        len: msg.bytes,
        fd,
        truncated: msg.flags.contains(ReturnFlags::TRUNC),
    })
}
