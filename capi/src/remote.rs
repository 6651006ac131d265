//! Remote mode: the library in a program that `vdestack run` started, whose
//! stack is the host's (see `protocol.rs` for what travels).
//!
//! The host's socket is named by the environment ([`HOST_VARIABLE`]), read
//! when the library is loaded. Each thread of each process has its own
//! connection to the host, made at its first request: the host serves each
//! connection on a thread of its own, so a blocking call (`connect`, `accept`,
//! a datagram's `recvfrom`) waits in the host for this thread only, as it would
//! in the kernel, and its outcome is exactly `vdestack::bsd`'s. A forked child
//! finds its parent's connection in its thread's slot and makes its own (the
//! parent's stays the parent's); an exec'd program, its own at its first call.
//! The connection goes when its thread ends.
//!
//! Which descriptors are the host's sockets: those this process received from
//! the host, noted by the inode of their socket as they come; any other unnamed
//! AF_UNIX socket is asked about once (`Request::Kind`: an exec'd program
//! inherits its parent's sockets, the only ones it never received), and the
//! answer kept. A stream noted as connected needs no request before its bytes
//! move.

use super::channel;
use super::protocol::{Answer, Kind, Reply, Request, HOST_VARIABLE, MAX_MESSAGE};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

static HOST: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Reads [`HOST_VARIABLE`] (by the library's constructor).
pub(super) fn init() {
    HOST.get_or_init(|| {
        std::env::var_os(HOST_VARIABLE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
}

/// Whether the program runs under `vdestack run`.
pub(super) fn is_remote() -> bool {
    HOST.get().is_some_and(Option::is_some)
}

/// What this process knows of a socket, by inode.
#[derive(Debug, Clone, Copy)]
pub(super) struct Known {
    /// `None`: not the host's.
    pub(super) kind: Option<Kind>,
    /// A stream socket known connected.
    pub(super) connected: bool,
}

/// Entries kept at most; beyond, the table starts over (each forgotten socket is
/// asked about again).
const MAX_KNOWN: usize = 16_384;

/// What this process knows of sockets, by inode (made at the first entry).
pub(super) type KnownTable = Option<HashMap<u64, Known>>;

static KNOWN: Mutex<KnownTable> = Mutex::new(None);

pub(super) fn lock_known() -> MutexGuard<'static, KnownTable> {
    KNOWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The inode of the socket `fd` refers to; `None` for any other descriptor.
fn socket_inode(fd: BorrowedFd<'_>) -> Option<u64> {
    let stat = rustix::fs::fstat(fd).ok()?;
    (rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Socket)
        .then_some(stat.st_ino)
}

/// Notes what the socket `fd` is.
pub(super) fn note(fd: BorrowedFd<'_>, known: Known) {
    if let Some(ino) = socket_inode(fd) {
        let mut table = lock_known();
        let table = table.get_or_insert_with(HashMap::new);
        if table.len() >= MAX_KNOWN {
            table.clear();
        }
        table.insert(ino, known);
    }
}

/// Whether `fd` could be one of the host's sockets: an AF_UNIX socket with no
/// name at either end (an address that is its family alone), as a socket pair's
/// ends are.
fn could_be_the_hosts(fd: BorrowedFd<'_>) -> bool {
    use rustix::net::{getpeername, getsockname, SocketAddrAny};
    let unnamed = |addr: Option<SocketAddrAny>| {
        addr.is_some_and(|a| {
            a.address_family() == AddressFamily::UNIX
                && a.addr_len() as usize <= std::mem::size_of::<libc::sa_family_t>()
        })
    };
    unnamed(getsockname(fd).ok()) && unnamed(getpeername(fd).ok().flatten())
}

/// What `fd` is, when it is one of the host's sockets (asking the host the first
/// time it meets an unknown socket that could be).
pub(super) fn known(fd: BorrowedFd<'_>) -> Option<Known> {
    let ino = socket_inode(fd)?;
    if let Some(known) = lock_known().as_ref().and_then(|t| t.get(&ino).copied()) {
        return known.kind.is_some().then_some(known);
    }
    let kind = if could_be_the_hosts(fd) {
        match call(Some(fd), &Request::Kind) {
            Ok((Reply::Kind(kind), _)) => kind,
            // The host unreachable: the descriptor is not taken for a stack's.
            _ => return None,
        }
    } else {
        None
    };
    let known = Known {
        kind,
        connected: false,
    };
    note(fd, known);
    kind.map(|_| known)
}

/// A connection to the host listening at `path` (close-on-exec: an exec'd
/// program makes its own).
fn connect(path: &Path) -> io::Result<OwnedFd> {
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    channel::retry(|| rustix::net::connect(&sock, &addr))?;
    Ok(sock)
}

thread_local! {
    /// This thread's connection to the host, with the process that made it.
    static CONNECTION: RefCell<Option<(u32, OwnedFd)>> = const { RefCell::new(None) };
}

fn host_unreachable(e: &io::Error) -> io::Error {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("vdestack: the stack's host (vdestack run) cannot be reached: {e}");
    }
    io::Error::from_raw_os_error(libc::ENETDOWN)
}

/// Makes `request` about `fd` in the host; returns its reply and the descriptor
/// that came with it. The call's own failure is its errno; a host that cannot be
/// reached is `ENETDOWN` (said once on stderr).
pub(super) fn call(
    fd: Option<BorrowedFd<'_>>,
    request: &Request,
) -> io::Result<(Reply, Option<OwnedFd>)> {
    let Some(Some(path)) = HOST.get() else {
        return Err(io::Error::from_raw_os_error(libc::ENETDOWN));
    };
    let message = request.encode();
    let mut buf = vec![0u8; MAX_MESSAGE];
    let received = CONNECTION.with(|slot| {
        // A signal handler's call while this thread waits for an answer.
        let mut slot = slot
            .try_borrow_mut()
            .map_err(|_| io::Error::from_raw_os_error(libc::EAGAIN))?;
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        if slot.as_ref().is_none_or(|(made_by, _)| *made_by != pid) {
            // The parent's connection, in a forked child, is closed here.
            *slot = None;
            let conn = connect(path).map_err(|e| host_unreachable(&e))?;
            *slot = Some((pid, conn));
        }
        let Some((_, conn)) = slot.as_ref() else {
            return Err(io::Error::from_raw_os_error(libc::ENETDOWN));
        };
        let exchange = channel::send(conn.as_fd(), &message, fd)
            .and_then(|()| channel::recv(conn.as_fd(), &mut buf));
        match exchange {
            Ok(received) if received.len > 0 => Ok(received),
            Ok(_) => {
                *slot = None;
                Err(host_unreachable(&io::Error::from_raw_os_error(libc::EPIPE)))
            }
            Err(e) => {
                *slot = None;
                Err(host_unreachable(&e))
            }
        }
    })?;
    if received.truncated {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    match Answer::decode(&buf[..received.len]) {
        Ok(Answer(Ok(reply))) => Ok((reply, received.fd)),
        Ok(Answer(Err(errno))) => Err(io::Error::from_raw_os_error(errno)),
        Err(_) => Err(io::Error::from_raw_os_error(libc::EIO)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's sockets are socket pairs' ends; a named unix socket is not.
    #[test]
    fn a_socket_pairs_ends_could_be_the_hosts() {
        let (a, _b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        assert!(could_be_the_hosts(a.as_fd()));
        let dir = std::env::temp_dir().join(format!("vdestack-remote-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let named = std::os::unix::net::UnixListener::bind(dir.join("s")).unwrap();
        assert!(!could_be_the_hosts(named.as_fd()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
