//! The host's side of `protocol.rs`: a unix socket in a private directory, one
//! thread per connection (a program's thread in one of its processes), each
//! request answered by the `vdestack::bsd` call it names, made on the descriptor
//! that came with it.
//!
//! A thread per connection, rather than non-blocking calls whose wait the
//! program's process would make: `bsd`'s blocking calls (`connect`, `accept`, a
//! datagram's `recvfrom`) then block exactly as they do in a program that hosts
//! its own stack, with their timeouts and their `O_NONBLOCK` read from the
//! descriptor the program passed, and no call of one program's thread holds up
//! another's. The price is a thread per program thread that uses the stack.
//!
//! Bad input from a program (a malformed message, a request without its
//! descriptor) gets an error answer; a panic in a call becomes `EIO`; neither
//! stops the host.

use crate::channel;
use crate::options;
use crate::protocol::{Answer, Direction, Kind, Reply, Request, MAX_MESSAGE};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use vdestack::bsd::{self, Transfer};
use vdestack::Stack;

/// The host's socket, listening; its directory goes when it is dropped.
pub struct Host {
    dir: PathBuf,
    path: PathBuf,
}

impl Host {
    /// Makes a private directory (mode 0700) under the temporary directory, a
    /// socket in it, and a thread that serves `stack` to whoever connects.
    pub fn start(stack: Stack) -> io::Result<Host> {
        let dir = private_dir(&std::env::temp_dir())?;
        let path = dir.join("host");
        let host = Host { dir, path };
        let listener = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        rustix::net::bind(&listener, &SocketAddrUnix::new(host.path.as_path())?)?;
        rustix::net::listen(&listener, 128)?;
        std::thread::Builder::new()
            .name("vdestack-host".into())
            .spawn(move || accept_loop(listener, stack))?;
        Ok(host)
    }

    /// The socket's path, for the program's environment.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A new directory only this user can enter, under `base`, with a name no
/// other `vdestack` can have taken (`mkdtemp`): a name made of the pid would
/// collide with those that hosts killed before they could remove theirs left,
/// and in PID namespaces every host is pid 1 or 2.
fn private_dir(base: &Path) -> io::Result<PathBuf> {
    let mut template = base.join("vdestack-run.XXXXXX").into_os_string().into_vec();
    template.push(0);
    // SAFETY: `template` is a writable, NUL-terminated buffer ending in
    // "XXXXXX", which mkdtemp rewrites in place (same length).
    let made = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if made.is_null() {
        return Err(io::Error::last_os_error());
    }
    template.pop();
    Ok(PathBuf::from(std::ffi::OsString::from_vec(template)))
}

fn accept_loop(listener: OwnedFd, stack: Stack) {
    loop {
        let conn = match rustix::net::accept_with(&listener, SocketFlags::CLOEXEC) {
            Ok(conn) => conn,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => continue,
            Err(e) => {
                eprintln!("vdestack: the host stopped accepting programs' connections: {e}");
                return;
            }
        };
        let stack = stack.clone();
        let spawned = std::thread::Builder::new()
            .name("vdestack-client".into())
            .spawn(move || serve(conn, &stack));
        if let Err(e) = spawned {
            // The connection is dropped with the closure: its calls fail ENETDOWN.
            eprintln!("vdestack: no thread for a program's connection: {e}");
        }
    }
}

/// Answers one connection's requests until it closes.
fn serve(conn: OwnedFd, stack: &Stack) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let received = match channel::recv(conn.as_fd(), &mut buf) {
            Ok(received) if received.len > 0 => received,
            _ => return,
        };
        let (answer, fd) = if received.truncated {
            (Answer(Err(libc::EMSGSIZE)), None)
        } else {
            let message = &buf[..received.len];
            catch_unwind(AssertUnwindSafe(|| answer(stack, message, received.fd)))
                .unwrap_or((Answer(Err(libc::EIO)), None))
        };
        if channel::send(conn.as_fd(), &answer.encode(), fd.as_ref().map(AsFd::as_fd)).is_err() {
            return;
        }
    }
}

/// The errno of a failed call; a stack whose thread failed says why, once.
fn errno(e: &io::Error) -> i32 {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let failure = e.kind() == io::ErrorKind::NetworkDown && e.raw_os_error().is_none();
    if failure && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("vdestack: {e}");
    }
    bsd::errno(e)
}

fn kind_of(fd: BorrowedFd<'_>) -> Option<Kind> {
    bsd::kind(fd).map(Kind::from)
}

/// The answer to the request `message` holds, about `fd`, with the descriptor
/// that goes back with it.
pub fn answer(stack: &Stack, message: &[u8], fd: Option<OwnedFd>) -> (Answer, Option<OwnedFd>) {
    let Ok(request) = Request::decode(message) else {
        return (Answer(Err(libc::EINVAL)), None);
    };
    if let Request::Socket {
        domain,
        ty,
        protocol,
    } = request
    {
        return match bsd::socket(stack, domain, ty, protocol) {
            Ok(made) => (Answer(Ok(Reply::Kind(kind_of(made.as_fd())))), Some(made)),
            Err(e) => (Answer(Err(errno(&e))), None),
        };
    }
    if request == Request::Interfaces {
        return match stack.interfaces() {
            Ok(list) => (
                Answer(Ok(Reply::Interfaces(list.iter().map(Into::into).collect()))),
                None,
            ),
            Err(e) => (Answer(Err(errno(&e))), None),
        };
    }
    if let Request::Lookup(name) = &request {
        let found = stack.lookup_host(name).map_err(|e| gai_code(&e));
        return (Answer(Ok(Reply::Addrs(found))), None);
    }
    if let Request::Query { name, qtype } = &request {
        let qtype = vdestack::dns::RecordType::from_code(*qtype);
        return match stack.query_dns(name, qtype) {
            Ok(bytes) => (Answer(Ok(Reply::Bytes(bytes))), None),
            Err(e) => (Answer(Err(errno(&e))), None),
        };
    }
    let Some(fd) = fd else {
        return (Answer(Err(libc::EBADF)), None);
    };
    match call(&request, fd) {
        Ok((reply, back)) => (Answer(Ok(reply)), back),
        Err(e) => (Answer(Err(errno(&e))), None),
    }
}

/// The `getaddrinfo` code of a lookup's failure.
fn gai_code(e: &io::Error) -> i32 {
    match e.kind() {
        io::ErrorKind::NotFound => libc::EAI_NONAME,
        io::ErrorKind::TimedOut => libc::EAI_AGAIN,
        io::ErrorKind::InvalidInput => libc::EAI_NONAME,
        _ => libc::EAI_FAIL,
    }
}

fn done(result: io::Result<()>) -> io::Result<(Reply, Option<OwnedFd>)> {
    result.map(|()| (Reply::Done, None))
}

fn addr(result: io::Result<SocketAddr>) -> io::Result<(Reply, Option<OwnedFd>)> {
    result.map(|a| (Reply::Addr(a), None))
}

fn inode(fd: BorrowedFd<'_>) -> Option<u64> {
    rustix::fs::fstat(fd).ok().map(|stat| stat.st_ino)
}

/// Runs `request` on `fd` (the program's descriptor, received).
fn call(request: &Request, fd: OwnedFd) -> io::Result<(Reply, Option<OwnedFd>)> {
    let s = fd.as_fd();
    match request {
        Request::Socket { .. }
        | Request::Interfaces
        | Request::Lookup(_)
        | Request::Query { .. } => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        Request::Kind => Ok((Reply::Kind(kind_of(s)), None)),
        Request::Bind(a) => done(bsd::bind(s, *a)),
        Request::Connect(a) => done(bsd::connect(s, *a)),
        Request::Disconnect => done(bsd::disconnect(s)),
        Request::Listen { backlog } => {
            let before = inode(s);
            bsd::listen(s, *backlog)?;
            // The descriptor now names the listener: it goes back, for the
            // program to put in place of its own.
            if inode(s) == before {
                return Ok((Reply::Done, None));
            }
            let kind = kind_of(s);
            Ok((Reply::Kind(kind), Some(fd)))
        }
        Request::Accept { flags } => {
            let (conn, peer) = bsd::accept(s, *flags)?;
            Ok((Reply::Addr(peer), Some(conn)))
        }
        Request::LocalAddr => addr(bsd::local_addr(s)),
        Request::PeerAddr => addr(bsd::peer_addr(s)),
        Request::TakeError => {
            let code = bsd::take_error(s)?.map_or(0, |e| errno(&e));
            Ok((Reply::Error(code), None))
        }
        Request::GetOption { level, name, room } => {
            let bytes = options::get(s, *level, *name, *room as usize)?;
            Ok((Reply::Bytes(bytes), None))
        }
        Request::SetOption { level, name, value } => done(options::set(s, *level, *name, value)),
        Request::CheckTransfer(direction) => {
            let transfer = match direction {
                Direction::Send => Transfer::Send,
                Direction::Receive => Transfer::Receive,
            };
            let kind = bsd::check_transfer(s, transfer)?.map(Kind::from);
            let stream = kind.is_some_and(|k| k.ty == libc::SOCK_STREAM);
            let connected = stream && bsd::peer_addr(s).is_ok();
            Ok((Reply::Transfer { kind, connected }, None))
        }
        Request::Shutdown { how } => done(bsd::shutdown(s, *how)),
        Request::SendTo { flags, dest, data } => {
            let n = bsd::send_to(s, data, *dest, *flags)?;
            Ok((Reply::Size(n as u64), None))
        }
        Request::RecvFrom { flags, room } => {
            let mut buf = vec![0u8; (*room as usize).min(MAX_MESSAGE - 64)];
            let (len, from) = bsd::recv_from(s, &mut buf, *flags)?;
            buf.truncate(len.min(buf.len()));
            let reply = Reply::Received {
                len: len as u64,
                from,
                data: buf,
            };
            Ok((reply, None))
        }
        Request::BytesToRead => Ok((Reply::Size(bsd::bytes_to_read(s)? as u64), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn stack() -> Stack {
        let stack = Stack::new("", None).expect("a loopback stack");
        stack.cmd("/bin/ip link set lo up").expect("lo up");
        stack
    }

    #[test]
    fn private_directories_never_collide() {
        let base = std::env::temp_dir().join(format!("vdestack-serve-{}", std::process::id()));
        std::fs::create_dir_all(&base).expect("the test's directory");
        // More than a pid-and-counter scheme allowed while earlier ones are left.
        let dirs: Vec<PathBuf> = (0..150)
            .map(|_| private_dir(&base).expect("a private directory"))
            .collect();
        let mut names: Vec<&PathBuf> = dirs.iter().collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), dirs.len(), "distinct");
        for dir in &dirs {
            let mode = std::fs::metadata(dir).expect("made").permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
        }
        std::fs::remove_dir_all(&base).expect("clean up");
    }

    #[test]
    fn bad_messages_get_error_answers() {
        let stack = stack();
        let (answer, fd) = super::answer(&stack, &[0xff, 1, 2], None);
        assert_eq!(answer, Answer(Err(libc::EINVAL)));
        assert!(fd.is_none());
        let (answer, _) = super::answer(&stack, &Request::LocalAddr.encode(), None);
        assert_eq!(answer, Answer(Err(libc::EBADF)), "no descriptor");
    }

    #[test]
    fn a_socket_bound_and_asked_for_its_address() {
        let stack = stack();
        let request = Request::Socket {
            domain: libc::AF_INET,
            ty: libc::SOCK_STREAM,
            protocol: 0,
        };
        let (answer, fd) = super::answer(&stack, &request.encode(), None);
        let fd = fd.expect("the socket's descriptor");
        assert!(matches!(answer, Answer(Ok(Reply::Kind(Some(_))))));
        let dup = || Some(fd.try_clone().unwrap());
        let bind = Request::Bind("127.0.0.1:4242".parse().unwrap());
        let (answer, _) = super::answer(&stack, &bind.encode(), dup());
        assert_eq!(answer, Answer(Ok(Reply::Done)));
        let (answer, _) = super::answer(&stack, &Request::LocalAddr.encode(), dup());
        assert_eq!(
            answer,
            Answer(Ok(Reply::Addr("127.0.0.1:4242".parse().unwrap())))
        );
        let (answer, listener) =
            super::answer(&stack, &Request::Listen { backlog: 4 }.encode(), dup());
        assert!(matches!(answer, Answer(Ok(Reply::Kind(Some(_))))));
        assert!(listener.is_some(), "the listener goes back");
    }
}
