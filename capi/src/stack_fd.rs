//! A descriptor that is a stack's socket, as the interposed calls see it: a
//! socket of a stack this process made (`vde_addstack`), answered by
//! `vdestack::bsd` here, or, under `vdestack run`, one of the host's, answered by
//! the same `bsd` call made in the host (`remote.rs`). The interposed calls
//! convert C types and call these; they never ask which of the two it is.

use super::protocol::{Direction, Kind, Reply, Request};
use super::remote::{self, Known};
use super::{next, options};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use vdestack::bsd::{self, Transfer};

/// A stack socket's descriptor, for the duration of one call on it.
#[derive(Clone, Copy)]
pub(super) struct StackFd {
    pub(super) fd: BorrowedFd<'static>,
    pub(super) kind: Kind,
    /// `None`: a stack of this process; else what this process knows of the host's.
    host: Option<Known>,
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// A reply of a shape the request does not give: the host and the library
/// disagree.
fn unexpected() -> io::Error {
    errno(libc::EIO)
}

impl StackFd {
    /// The stack socket `fd` is, if it is one.
    pub(super) fn find(fd: BorrowedFd<'static>) -> Option<StackFd> {
        if let Some(kind) = bsd::kind(fd) {
            return Some(StackFd {
                fd,
                kind: kind.into(),
                host: None,
            });
        }
        if !remote::is_remote() {
            return None;
        }
        let host = remote::known(fd)?;
        Some(StackFd {
            fd,
            kind: host.kind?,
            host: Some(host),
        })
    }

    fn is_datagram(&self) -> bool {
        self.kind.ty == libc::SOCK_DGRAM
    }

    /// Asks the host `request` about this socket.
    fn ask(&self, request: &Request) -> io::Result<(Reply, Option<OwnedFd>)> {
        remote::call(Some(self.fd), request)
    }

    /// Asks the host for a call that replies `Done`.
    fn ask_done(&self, request: &Request) -> io::Result<()> {
        match self.ask(request)?.0 {
            Reply::Done => Ok(()),
            _ => Err(unexpected()),
        }
    }

    /// Asks the host for a call that replies an address.
    fn ask_addr(&self, request: &Request) -> io::Result<SocketAddr> {
        match self.ask(request)?.0 {
            Reply::Addr(a) => Ok(a),
            _ => Err(unexpected()),
        }
    }

    /// `bind(2)`.
    pub(super) fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        match self.host {
            None => bsd::bind(self.fd, addr),
            Some(_) => self.ask_done(&Request::Bind(addr)),
        }
    }

    /// `connect(2)`.
    pub(super) fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        match self.host {
            None => bsd::connect(self.fd, addr),
            Some(_) => self.ask_done(&Request::Connect(addr)),
        }
    }

    /// `connect(2)` with `AF_UNSPEC`.
    pub(super) fn disconnect(&self) -> io::Result<()> {
        match self.host {
            None => bsd::disconnect(self.fd),
            Some(_) => self.ask_done(&Request::Disconnect),
        }
    }

    /// `listen(2)`: the host's listener takes this descriptor's number, as
    /// `bsd::listen` does here.
    pub(super) fn listen(&self, backlog: i32) -> io::Result<()> {
        let Some(_) = self.host else {
            return bsd::listen(self.fd, backlog);
        };
        match self.ask(&Request::Listen { backlog })? {
            (Reply::Kind(kind), Some(listener)) => {
                let cloexec = rustix::io::fcntl_getfd(self.fd)
                    .is_ok_and(|f| f.contains(rustix::io::FdFlags::CLOEXEC));
                let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
                // SAFETY: dup3 on two open descriptors; the program's number now
                // names the listener, as bsd::listen does (dup3 is not interposed).
                if unsafe { libc::dup3(listener.as_raw_fd(), self.fd.as_raw_fd(), flags) } < 0 {
                    return Err(io::Error::last_os_error());
                }
                let known = Known {
                    kind: kind.or(Some(self.kind)),
                    connected: false,
                };
                remote::note(self.fd, known);
                Ok(())
            }
            // Listening already: the descriptor stays.
            (Reply::Done, None) => Ok(()),
            _ => Err(unexpected()),
        }
    }

    /// `accept4(2)`: the connection's descriptor and its peer.
    pub(super) fn accept(&self, flags: i32) -> io::Result<(OwnedFd, SocketAddr)> {
        let Some(_) = self.host else {
            return bsd::accept(self.fd, flags);
        };
        self.wait_for_connection()?;
        match self.ask(&Request::Accept { flags })? {
            (Reply::Addr(peer), Some(conn)) => {
                // It came close-on-exec, as every received descriptor does.
                if flags & libc::SOCK_CLOEXEC == 0 {
                    rustix::io::fcntl_setfd(&conn, rustix::io::FdFlags::empty())?;
                }
                let kind = Kind {
                    ty: libc::SOCK_STREAM,
                    protocol: libc::IPPROTO_TCP,
                    ..self.kind
                };
                let known = Known {
                    kind: Some(kind),
                    connected: true,
                };
                remote::note(conn.as_fd(), known);
                Ok((conn, peer))
            }
            _ => Err(unexpected()),
        }
    }

    /// A blocking `accept` waits here, in the program's process, for a
    /// connection to come to the listener's descriptor, so that a signal
    /// interrupts it (`EINTR`) and its `SO_RCVTIMEO` ends it (`EAGAIN`), as on
    /// Linux; the host's wait, once asked, resumes after a signal. A
    /// non-blocking listener does not wait.
    fn wait_for_connection(&self) -> io::Result<()> {
        use rustix::event::{PollFd, PollFlags, Timespec};
        use rustix::fs::OFlags;
        if rustix::fs::fcntl_getfl(self.fd)?.contains(OFlags::NONBLOCK) {
            return Ok(());
        }
        let timeout =
            rustix::net::sockopt::socket_timeout(self.fd, rustix::net::sockopt::Timeout::Recv)?
                .and_then(|t| Timespec::try_from(t).ok());
        let mut fds = [PollFd::from_borrowed_fd(self.fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, timeout.as_ref())? {
            0 => Err(errno(libc::EAGAIN)),
            _ => Ok(()),
        }
    }

    /// `getsockname(2)`.
    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.host {
            None => bsd::local_addr(self.fd),
            Some(_) => self.ask_addr(&Request::LocalAddr),
        }
    }

    /// `getpeername(2)`.
    pub(super) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self.host {
            None => bsd::peer_addr(self.fd),
            Some(_) => self.ask_addr(&Request::PeerAddr),
        }
    }

    /// `SO_ERROR`, cleared.
    pub(super) fn take_error(&self) -> io::Result<Option<io::Error>> {
        let Some(_) = self.host else {
            return bsd::take_error(self.fd);
        };
        match self.ask(&Request::TakeError)?.0 {
            Reply::Error(0) => Ok(None),
            Reply::Error(code) => Ok(Some(errno(code))),
            _ => Err(unexpected()),
        }
    }

    /// `getsockopt(2)`: the value's bytes, at most `room`.
    pub(super) fn get_option(&self, level: i32, name: i32, room: usize) -> io::Result<Vec<u8>> {
        let Some(_) = self.host else {
            return options::get(self.fd, level, name, room);
        };
        let room = u32::try_from(room).unwrap_or(u32::MAX);
        match self.ask(&Request::GetOption { level, name, room })?.0 {
            Reply::Bytes(bytes) => Ok(bytes),
            _ => Err(unexpected()),
        }
    }

    /// `setsockopt(2)`.
    pub(super) fn set_option(&self, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
        match self.host {
            None => options::set(self.fd, level, name, value),
            Some(_) => self.ask_done(&Request::SetOption {
                level,
                name,
                value: value.to_vec(),
            }),
        }
    }

    /// `bsd::check_transfer`: the refusal Linux gives before bytes move on a
    /// stream that is not connected. A stream the host said is connected, and a
    /// datagram socket (whose sends the host checks itself), need no request.
    pub(super) fn check_transfer(&self, transfer: Transfer) -> io::Result<()> {
        let Some(known) = self.host else {
            return bsd::check_transfer(self.fd, transfer).map(|_| ());
        };
        if known.connected || self.is_datagram() {
            return Ok(());
        }
        let direction = match transfer {
            Transfer::Send => Direction::Send,
            _ => Direction::Receive,
        };
        match self.ask(&Request::CheckTransfer(direction))?.0 {
            Reply::Transfer { kind, connected } => {
                if connected {
                    remote::note(self.fd, Known { kind, connected });
                }
                Ok(())
            }
            _ => Err(unexpected()),
        }
    }

    /// `shutdown(2)`.
    pub(super) fn shutdown(&self, how: i32) -> io::Result<()> {
        match self.host {
            None => bsd::shutdown(self.fd, how),
            Some(_) => self.ask_done(&Request::Shutdown { how }),
        }
    }

    /// A datagram socket's `sendto(2)`.
    pub(super) fn send_to(
        &self,
        data: &[u8],
        dest: Option<SocketAddr>,
        flags: i32,
    ) -> io::Result<usize> {
        let Some(_) = self.host else {
            return bsd::send_to(self.fd, data, dest, flags);
        };
        let request = Request::SendTo {
            flags,
            dest,
            data: data.to_vec(),
        };
        match self.ask(&request)?.0 {
            Reply::Size(n) => Ok(n as usize),
            _ => Err(unexpected()),
        }
    }

    /// A datagram socket's `recvfrom(2)`: the datagram's length (more than `buf`
    /// with `MSG_TRUNC`) and its source.
    pub(super) fn recv_from(&self, buf: &mut [u8], flags: i32) -> io::Result<(usize, SocketAddr)> {
        let Some(_) = self.host else {
            return bsd::recv_from(self.fd, buf, flags);
        };
        let room = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        match self.ask(&Request::RecvFrom { flags, room })?.0 {
            Reply::Received { len, from, data } => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                Ok((len as usize, from))
            }
            _ => Err(unexpected()),
        }
    }

    /// `ioctl(FIONREAD)`.
    pub(super) fn bytes_to_read(&self) -> io::Result<usize> {
        match self.host {
            None => bsd::bytes_to_read(self.fd),
            // A stream's bytes are all on the pair.
            Some(_) if !self.is_datagram() => {
                let mut n: libc::c_int = 0;
                match next::ioctl() {
                    // SAFETY: FIONREAD writes an int.
                    Some(f) if unsafe { f(self.fd.as_raw_fd(), libc::FIONREAD, &mut n) } == 0 => {
                        Ok(n.max(0) as usize)
                    }
                    Some(_) => Err(io::Error::last_os_error()),
                    None => Err(errno(libc::ENOSYS)),
                }
            }
            Some(_) => match self.ask(&Request::BytesToRead)?.0 {
                Reply::Size(n) => Ok(n as usize),
                _ => Err(unexpected()),
            },
        }
    }
}

/// `socket(2)` on the host's stack.
pub(super) fn host_socket(domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
    let request = Request::Socket {
        domain,
        ty,
        protocol,
    };
    match remote::call(None, &request)? {
        (Reply::Kind(kind), Some(fd)) => {
            if ty & libc::SOCK_CLOEXEC == 0 {
                rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty())?;
            }
            let known = Known {
                kind,
                connected: false,
            };
            remote::note(fd.as_fd(), known);
            Ok(fd)
        }
        _ => Err(unexpected()),
    }
}
