//! Names resolved through a stack: [`Stack::lookup_host`], and [`ToStackAddrs`],
//! what the socket constructors take instead of std's `ToSocketAddrs`.
//!
//! std's `ToSocketAddrs` resolves a name through the host's resolver, whose queries
//! leave by the host's network and whose answers suit the host's: a stack on a
//! network of its own must ask its own name servers, over its own sockets. So the
//! constructors take a trait of this crate, implemented for the same types as
//! std's, whose names go to [`Stack::lookup_host`]: numeric addresses first, then
//! `/etc/hosts` and `localhost`, then DNS over UDP through the stack (TCP when an
//! answer comes truncated), as glibc does with `files dns`.

use super::{TcpStream, UdpSocket};
use crate::dns::{self, Answer, Hosts, Query, RecordType, Response, DNS_PORT};
use crate::stack::{random_u64, Stack};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

/// The hosts file a lookup reads first, as glibc's `files` source.
const HOSTS_FILE: &str = "/etc/hosts";

/// A place to send to or bind: an address, or a name and a port.
mod sealed {
    /// An address already numeric, or a name to resolve with its port.
    #[derive(Debug, Clone)]
    pub enum Target {
        /// Numeric.
        Addr(std::net::SocketAddr),
        /// A host name and a port.
        Name(String, u16),
    }

    /// What the crate reads of a [`super::ToStackAddrs`] value: sealed, so that the
    /// trait can grow without breaking implementations.
    pub trait Sealed {
        fn targets(&self) -> std::io::Result<Vec<Target>>;
    }
}

use sealed::{Sealed, Target};

/// Addresses the socket constructors take, as std's `ToSocketAddrs` (for the same
/// types: `SocketAddr`, `(IpAddr, u16)`, `"host:port"`, `("host", port)`, slices
/// of addresses, ...), but whose names are resolved through the stack
/// ([`Stack::lookup_host`]), never through the host's resolver.
pub trait ToStackAddrs: Sealed {}

impl<T: Sealed + ?Sized> ToStackAddrs for T {}

fn one(addr: impl Into<SocketAddr>) -> io::Result<Vec<Target>> {
    Ok(vec![Target::Addr(addr.into())])
}

impl Sealed for SocketAddr {
    fn targets(&self) -> io::Result<Vec<Target>> {
        one(*self)
    }
}

impl Sealed for SocketAddrV4 {
    fn targets(&self) -> io::Result<Vec<Target>> {
        one(*self)
    }
}

impl Sealed for SocketAddrV6 {
    fn targets(&self) -> io::Result<Vec<Target>> {
        one(*self)
    }
}

impl Sealed for (IpAddr, u16) {
    fn targets(&self) -> io::Result<Vec<Target>> {
        one(*self)
    }
}

impl Sealed for (Ipv4Addr, u16) {
    fn targets(&self) -> io::Result<Vec<Target>> {
        one(*self)
    }
}

impl Sealed for (Ipv6Addr, u16) {
    fn targets(&self) -> io::Result<Vec<Target>> {
        one(*self)
    }
}

impl Sealed for (&str, u16) {
    fn targets(&self) -> io::Result<Vec<Target>> {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => one((ip, port)),
            Err(_) => Ok(vec![Target::Name(host.to_owned(), port)]),
        }
    }
}

impl Sealed for (String, u16) {
    fn targets(&self) -> io::Result<Vec<Target>> {
        (self.0.as_str(), self.1).targets()
    }
}

impl Sealed for str {
    fn targets(&self) -> io::Result<Vec<Target>> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return one(addr);
        }
        let invalid = |msg| io::Error::new(io::ErrorKind::InvalidInput, msg);
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| invalid("invalid socket address"))?;
        let port: u16 = port.parse().map_err(|_| invalid("invalid port value"))?;
        (host, port).targets()
    }
}

impl Sealed for String {
    fn targets(&self) -> io::Result<Vec<Target>> {
        self.as_str().targets()
    }
}

impl Sealed for [SocketAddr] {
    fn targets(&self) -> io::Result<Vec<Target>> {
        Ok(self.iter().map(|a| Target::Addr(*a)).collect())
    }
}

impl<T: Sealed + ?Sized> Sealed for &T {
    fn targets(&self) -> io::Result<Vec<Target>> {
        (**self).targets()
    }
}

/// The addresses `addr` stands for: its names resolved through `stack`, or, where
/// no stack is at hand (a socket's `connect` or `send_to`), refused with
/// `InvalidInput`, since resolving through the host would leave the stack's network.
pub(crate) fn stack_addrs<A: ToStackAddrs>(
    stack: Option<&Stack>,
    addr: A,
) -> io::Result<Vec<SocketAddr>> {
    Targets::of(addr)?.resolve(stack)
}

/// What a [`ToStackAddrs`] value stands for, read but not resolved: owned, so that
/// its names can be resolved elsewhere (the `tokio` face resolves them on a
/// blocking thread, and numeric addresses at once).
pub(crate) struct Targets(Vec<Target>);

impl Targets {
    pub(crate) fn of<A: ToStackAddrs>(addr: A) -> io::Result<Targets> {
        addr.targets().map(Targets)
    }

    /// The addresses, when none is a name (nothing to ask anyone).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn numeric(&self) -> Option<Vec<SocketAddr>> {
        self.0
            .iter()
            .map(|target| match target {
                Target::Addr(a) => Some(*a),
                Target::Name(..) => None,
            })
            .collect()
    }

    /// The addresses, names resolved through `stack` (see [`stack_addrs`]).
    pub(crate) fn resolve(self, stack: Option<&Stack>) -> io::Result<Vec<SocketAddr>> {
        let mut out = Vec::new();
        for target in self.0 {
            match target {
                Target::Addr(a) => out.push(a),
                Target::Name(name, port) => {
                    let stack = stack.ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!(
                                "vdestack: {name:?} is a name; resolve it with Stack::lookup_host \
                                 (a socket's connect and send_to take addresses)"
                            ),
                        )
                    })?;
                    let ips = stack.lookup_host(&name)?;
                    out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, port)));
                }
            }
        }
        Ok(out)
    }
}

impl Stack {
    /// The addresses of `host` for this stack, IPv4 first: a numeric address is
    /// itself; then the names of `/etc/hosts`, and `localhost` (and names under
    /// it, RFC 6761), which is the loopback's and never asked of a server, even
    /// without the file; then the stack's name servers
    /// ([`StackBuilder::name_servers`](crate::StackBuilder::name_servers)),
    /// asked for A and AAAA records over UDP through the stack's own sockets,
    /// each for [`ResolverOptions::timeout`](crate::dns::ResolverOptions), all in
    /// turn for `attempts` rounds, again over TCP when an answer comes truncated.
    ///
    /// Errors: `NotFound` for a name that does not exist (NXDOMAIN), that has no
    /// address, or when the stack has no name server; `TimedOut` when no server
    /// answered; `ConnectionRefused` when every server failed or refused
    /// (SERVFAIL, REFUSED); `InvalidInput` for a name that cannot be put in a
    /// query. Works on both backends (a kernel stack's sockets are its namespace's).
    pub fn lookup_host(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let hosts = std::fs::read_to_string(HOSTS_FILE)
            .map(|text| Hosts::parse(&text))
            .unwrap_or_default();
        let mut found = hosts.lookup(host);
        if found.is_empty() && dns::is_localhost(host) {
            found = vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
        }
        if !found.is_empty() || dns::is_localhost(host) {
            found.sort_by_key(|ip| ip.is_ipv6());
            return Ok(found);
        }
        let resolver = self.resolver();
        if resolver.servers.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "vdestack: cannot resolve {host:?}: the stack has no name server \
                     (StackBuilder::name_servers) and {HOSTS_FILE} does not name it"
                ),
            ));
        }
        let mut last = None;
        for _ in 0..resolver.options.attempts.max(1) {
            for &server in &resolver.servers {
                let server = SocketAddr::new(server, DNS_PORT);
                match ask(self, server, host, resolver.options.timeout) {
                    Ok(addrs) => return Ok(addrs),
                    // The name's own answer: another server would say the same.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Err(e),
                    Err(e) => last = Some(e),
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::TimedOut)))
    }
}

/// The two questions asked of a server for a name: A, then AAAA.
fn queries(name: &str) -> [Query; 2] {
    let id = random_u64() as u16;
    [
        Query {
            id,
            name: name.to_owned(),
            qtype: RecordType::A,
        },
        Query {
            id: id.wrapping_add(1),
            name: name.to_owned(),
            qtype: RecordType::Aaaa,
        },
    ]
}

fn query_bytes(query: &Query) -> io::Result<Vec<u8>> {
    query.to_bytes().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("vdestack: cannot ask for {:?}: {e}", query.name),
        )
    })
}

/// Asks `server` for `name`'s A and AAAA records, over UDP, for at most `timeout`.
fn ask(
    stack: &Stack,
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> io::Result<Vec<IpAddr>> {
    let queries = queries(name);
    let replies = exchange(stack, server, &queries, timeout)?;
    let answers = [0, 1].map(|k| {
        let response = Response::parse(replies[k].as_deref()?).ok()?;
        Some(match response.answer_for(&queries[k]) {
            // Over TCP, a truncated answer is the server's fault.
            Answer::Truncated => Answer::ServerFailure(response.rcode),
            answer => answer,
        })
    });
    outcome(name, server, &answers)
}

/// Sends `queries` to `server` over UDP and waits, at most `timeout`, for a
/// response to each: its bytes, asked again over TCP (RFC 7766) when it came
/// truncated; `None` for a query no response answered in time. Datagrams that
/// answer none of them are ignored (RFC 5452).
fn exchange(
    stack: &Stack,
    server: SocketAddr,
    queries: &[Query],
    timeout: Duration,
) -> io::Result<Vec<Option<Vec<u8>>>> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(stack, local)?;
    socket.connect(server)?;
    for query in queries {
        socket.send(&query_bytes(query)?)?;
    }
    let deadline = Instant::now() + timeout;
    let mut replies: Vec<Option<Vec<u8>>> = vec![None; queries.len()];
    let mut buf = [0u8; 1500];
    while replies.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left))?;
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let Ok(response) = Response::parse(&buf[..n]) else {
            continue;
        };
        for (query, slot) in queries.iter().zip(replies.iter_mut()) {
            match response.answer_for(query) {
                Answer::Unrelated => {}
                Answer::Truncated => *slot = Some(ask_tcp(stack, server, query, deadline)?),
                _ => *slot = Some(buf[..n].to_vec()),
            }
        }
    }
    Ok(replies)
}

/// Asks `query` over TCP (RFC 7766: each message after its length in two
/// bytes); returns the response's bytes.
fn ask_tcp(
    stack: &Stack,
    server: SocketAddr,
    query: &Query,
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::from(io::ErrorKind::TimedOut));
    }
    let mut stream = TcpStream::connect_timeout(stack, &server, left)?;
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    let bytes = query_bytes(query)?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message)?;
    Ok(message)
}

impl Stack {
    /// Sends one query for `name` of type `qtype` to the stack's name servers (in
    /// turn, for `attempts` rounds, each for `timeout`; over TCP when the answer
    /// comes truncated) and returns the first response's bytes, whatever its
    /// status: what C's `res_query` gives. Errors: `NotFound` when the stack has
    /// no name server, `TimedOut` when none answered, `InvalidInput` for a name
    /// that cannot be put in a query.
    pub fn query_dns(&self, name: &str, qtype: RecordType) -> io::Result<Vec<u8>> {
        let resolver = self.resolver();
        if resolver.servers.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "vdestack: the stack has no name server (StackBuilder::name_servers)",
            ));
        }
        let query = Query {
            id: random_u64() as u16,
            name: name.to_owned(),
            qtype,
        };
        let mut last = None;
        for _ in 0..resolver.options.attempts.max(1) {
            for &server in &resolver.servers {
                let server = SocketAddr::new(server, DNS_PORT);
                match exchange(
                    self,
                    server,
                    std::slice::from_ref(&query),
                    resolver.options.timeout,
                ) {
                    Ok(mut replies) => match replies.pop().flatten() {
                        Some(bytes) => return Ok(bytes),
                        None => last = Some(io::Error::from(io::ErrorKind::TimedOut)),
                    },
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Err(e),
                    Err(e) => last = Some(e),
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::TimedOut)))
    }
}

/// What the answers to A and AAAA mean together.
fn outcome(
    name: &str,
    server: SocketAddr,
    answers: &[Option<Answer>; 2],
) -> io::Result<Vec<IpAddr>> {
    let addrs: Vec<IpAddr> = answers
        .iter()
        .flat_map(|a| match a {
            Some(Answer::Addresses(addrs, _)) => addrs.clone(),
            _ => Vec::new(),
        })
        .collect();
    if !addrs.is_empty() {
        return Ok(addrs);
    }
    let error = |kind, what: String| io::Error::new(kind, format!("vdestack: {name:?}: {what}"));
    if answers.iter().any(|a| matches!(a, Some(Answer::NxDomain))) {
        return Err(error(
            io::ErrorKind::NotFound,
            format!("no such name ({server} says NXDOMAIN)"),
        ));
    }
    if answers.iter().all(|a| matches!(a, Some(Answer::NoData))) {
        return Err(error(
            io::ErrorKind::NotFound,
            format!("no address ({server} has no A or AAAA record)"),
        ));
    }
    if let Some(Some(Answer::ServerFailure(rcode))) = answers
        .iter()
        .find(|a| matches!(a, Some(Answer::ServerFailure(_))))
    {
        return Err(error(
            io::ErrorKind::ConnectionRefused,
            format!("{server} failed ({rcode:?})"),
        ));
    }
    Err(error(
        io::ErrorKind::TimedOut,
        format!("no answer from {server}"),
    ))
}
