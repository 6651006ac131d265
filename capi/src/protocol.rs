//! What a program's process and the `vdestack run` host say to each other: one
//! request, one answer, each a `SOCK_SEQPACKET` message, the socket's descriptor
//! beside it with `SCM_RIGHTS`.
//!
//! Under `vdestack run` the stack lives in the host process. A program's process
//! asks it for a socket ([`Request::Socket`]: the answer carries the application
//! end of the socket's pair) and for every call the descriptor alone cannot
//! answer (`bind`, `connect`, `listen`, `accept`, the addresses, the options, a
//! datagram's send and receive...): the request carries the descriptor itself,
//! which the host finds in its `vdestack::bsd` registry by the socket's inode, as
//! a `dup` of it is found, and runs the same `bsd` call on. Reading and writing a
//! connection, `poll` and `epoll` need no request: they are on the pair.
//!
//! This module is the encoding only, pure: [`Request::decode`] and
//! [`Answer::decode`] take any bytes and give a value or [`Malformed`], never a
//! panic, so that a client's bad message costs the host an error answer. The
//! library (`remote.rs`) and the host (`src/bin/vdestack/`) both compile this
//! file.
//!
//! A message is a tag byte, then its fields in little-endian order: integers of
//! fixed width, byte strings with a `u32` length, socket addresses as a family
//! byte (4 or 6), the address, the port, and for IPv6 the flow label and scope.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The environment variable naming the host's socket: set, the library is in
/// remote mode (its default stack is the host's).
pub const HOST_VARIABLE: &str = "VDESTACK_RUN_HOST";

/// The largest message either side sends: a datagram of 64 KiB and its fields.
pub const MAX_MESSAGE: usize = 65_536 + 64;

/// Bytes that are no message of this protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// What a socket is: `socket()`'s domain, type (without flags) and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// `AF_INET` or `AF_INET6`.
    pub domain: i32,
    /// `SOCK_STREAM` or `SOCK_DGRAM`.
    pub ty: i32,
    /// `SO_PROTOCOL`.
    pub protocol: i32,
}

impl From<vdestack::bsd::SocketKind> for Kind {
    fn from(kind: vdestack::bsd::SocketKind) -> Kind {
        Kind {
            domain: kind.domain,
            ty: kind.ty,
            protocol: kind.protocol,
        }
    }
}

/// Which way a call is about to move bytes (`bsd::Transfer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `send` and its kin.
    Send,
    /// `recv` and its kin.
    Receive,
}

/// A call the host makes for a process. Every request but `Socket` travels with
/// the descriptor it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `socket(2)` on the host's stack; the answer carries the descriptor.
    Socket { domain: i32, ty: i32, protocol: i32 },
    /// What the descriptor is: [`Reply::Kind`] (`None`: no stack socket).
    Kind,
    /// `bind(2)`.
    Bind(SocketAddr),
    /// `connect(2)` (blocking unless the descriptor is non-blocking).
    Connect(SocketAddr),
    /// `connect(2)` with `AF_UNSPEC`.
    Disconnect,
    /// `listen(2)`: the answer carries the listener's descriptor, which the
    /// process puts in place of its own.
    Listen { backlog: i32 },
    /// `accept4(2)`: the answer carries the connection's descriptor.
    Accept { flags: i32 },
    /// `getsockname(2)`.
    LocalAddr,
    /// `getpeername(2)`.
    PeerAddr,
    /// `SO_ERROR`, cleared by reading it.
    TakeError,
    /// `getsockopt(2)` with room for `room` bytes.
    GetOption { level: i32, name: i32, room: u32 },
    /// `setsockopt(2)`.
    SetOption {
        level: i32,
        name: i32,
        value: Vec<u8>,
    },
    /// `bsd::check_transfer`.
    CheckTransfer(Direction),
    /// `shutdown(2)`.
    Shutdown { how: i32 },
    /// A datagram socket's `sendto(2)`.
    SendTo {
        flags: i32,
        dest: Option<SocketAddr>,
        data: Vec<u8>,
    },
    /// A datagram socket's `recvfrom(2)` into `room` bytes.
    RecvFrom { flags: i32, room: u32 },
    /// `ioctl(FIONREAD)`.
    BytesToRead,
    /// The stack's interfaces (`if_nametoindex`, `getifaddrs`...): no descriptor.
    Interfaces,
    /// `Stack::lookup_host` (`getaddrinfo`): no descriptor.
    Lookup(String),
    /// `Stack::query_dns` (`res_query`): the response in `Reply::Bytes`.
    Query { name: String, qtype: u16 },
}

/// What a call gave, when it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing more (bind, connect, setsockopt, shutdown...).
    Done,
    /// What the descriptor is (`Socket` with the descriptor, `Kind`, `Listen`).
    Kind(Option<Kind>),
    /// An address (`getsockname`, `getpeername`, `accept`'s peer).
    Addr(SocketAddr),
    /// `SO_ERROR`: 0 for none.
    Error(i32),
    /// An option's bytes.
    Bytes(Vec<u8>),
    /// A count (bytes sent, bytes to read).
    Size(u64),
    /// `check_transfer`: what the descriptor is, and whether a stream is
    /// connected (then no later check can fail).
    Transfer { kind: Option<Kind>, connected: bool },
    /// A datagram: its length (more than `data` when it was truncated), source
    /// and bytes.
    Received {
        len: u64,
        from: SocketAddr,
        data: Vec<u8>,
    },
    /// The stack's interfaces.
    Interfaces(Vec<IfInfo>),
    /// A name's addresses, or the `EAI_*` code of the failure.
    Addrs(Result<Vec<IpAddr>, i32>),
}

/// An interface of the stack, as `vdestack::Interface` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfInfo {
    /// Its index.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Its `IFF_*` flags.
    pub flags: u32,
    /// Its hardware address.
    pub mac: [u8; 6],
    /// Its MTU.
    pub mtu: u32,
    /// Its addresses and their prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
}

impl From<&vdestack::Interface> for IfInfo {
    fn from(i: &vdestack::Interface) -> IfInfo {
        IfInfo {
            index: i.index,
            name: i.name.clone(),
            flags: i.flags.bits(),
            mac: i.mac,
            mtu: i.mtu,
            addrs: i.addrs.iter().map(|a| (a.addr, a.prefix_len)).collect(),
        }
    }
}

/// The host's answer: the reply, or the errno the call failed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer(pub Result<Reply, i32>);

/// Appends fields to a message.
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
        self
    }
    fn addr(&mut self, a: &SocketAddr) -> &mut Self {
        match a {
            SocketAddr::V4(a) => {
                self.u8(4).0.extend_from_slice(&a.ip().octets());
                self.0.extend_from_slice(&a.port().to_le_bytes());
            }
            SocketAddr::V6(a) => {
                self.u8(6).0.extend_from_slice(&a.ip().octets());
                self.0.extend_from_slice(&a.port().to_le_bytes());
                self.u32(a.flowinfo()).u32(a.scope_id());
            }
        }
        self
    }
    fn kind(&mut self, k: &Option<Kind>) -> &mut Self {
        match k {
            None => self.u8(0),
            Some(k) => self.u8(1).i32(k.domain).i32(k.ty).i32(k.protocol),
        }
    }
}

/// Reads fields from a message; every read past its end is [`Malformed`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        self.take(N)?.try_into().map_err(|_| Malformed)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.array::<1>()?[0])
    }
    fn i32(&mut self) -> Result<i32, Malformed> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, Malformed> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    /// A list of interfaces; counts are checked against the bytes left, so a
    /// forged count allocates nothing.
    fn interfaces(&mut self) -> Result<Vec<IfInfo>, Malformed> {
        let count = self.u32()? as usize;
        let mut out = Vec::with_capacity(count.min(self.0.len()));
        for _ in 0..count {
            let index = self.u32()?;
            let name = String::from_utf8(self.bytes()?).map_err(|_| Malformed)?;
            let flags = self.u32()?;
            let mac = self.array::<6>()?;
            let mtu = self.u32()?;
            let n = self.u32()? as usize;
            let mut addrs = Vec::with_capacity(n.min(self.0.len()));
            for _ in 0..n {
                addrs.push((self.addr()?.ip(), self.u8()?));
            }
            out.push(IfInfo {
                index,
                name,
                flags,
                mac,
                mtu,
                addrs,
            });
        }
        Ok(out)
    }
    fn addr(&mut self) -> Result<SocketAddr, Malformed> {
        match self.u8()? {
            4 => {
                let ip = Ipv4Addr::from(self.array::<4>()?);
                let port = u16::from_le_bytes(self.array()?);
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            }
            6 => {
                let ip = Ipv6Addr::from(self.array::<16>()?);
                let port = u16::from_le_bytes(self.array()?);
                let (flow, scope) = (self.u32()?, self.u32()?);
                Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope)))
            }
            _ => Err(Malformed),
        }
    }
    fn option_addr(&mut self) -> Result<Option<SocketAddr>, Malformed> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.addr().map(Some),
            _ => Err(Malformed),
        }
    }
    fn bool(&mut self) -> Result<bool, Malformed> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed),
        }
    }
    fn kind(&mut self) -> Result<Option<Kind>, Malformed> {
        if !self.bool()? {
            return Ok(None);
        }
        let (domain, ty, protocol) = (self.i32()?, self.i32()?, self.i32()?);
        Ok(Some(Kind {
            domain,
            ty,
            protocol,
        }))
    }
    /// The end of the message: bytes left over are malformed.
    fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

impl Request {
    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Request::Socket {
                domain,
                ty,
                protocol,
            } => w.u8(1).i32(*domain).i32(*ty).i32(*protocol),
            Request::Kind => w.u8(2),
            Request::Bind(a) => w.u8(3).addr(a),
            Request::Connect(a) => w.u8(4).addr(a),
            Request::Disconnect => w.u8(5),
            Request::Listen { backlog } => w.u8(6).i32(*backlog),
            Request::Accept { flags } => w.u8(7).i32(*flags),
            Request::LocalAddr => w.u8(8),
            Request::PeerAddr => w.u8(9),
            Request::TakeError => w.u8(10),
            Request::GetOption { level, name, room } => w.u8(11).i32(*level).i32(*name).u32(*room),
            Request::SetOption { level, name, value } => {
                w.u8(12).i32(*level).i32(*name).bytes(value)
            }
            Request::CheckTransfer(d) => w.u8(13).u8(matches!(d, Direction::Receive).into()),
            Request::Shutdown { how } => w.u8(14).i32(*how),
            Request::SendTo { flags, dest, data } => {
                w.u8(15).i32(*flags);
                match dest {
                    None => w.u8(0),
                    Some(a) => w.u8(1).addr(a),
                }
                .bytes(data)
            }
            Request::RecvFrom { flags, room } => w.u8(16).i32(*flags).u32(*room),
            Request::BytesToRead => w.u8(17),
            Request::Interfaces => w.u8(18),
            Request::Lookup(name) => w.u8(19).bytes(name.as_bytes()),
            Request::Query { name, qtype } => {
                w.u8(20).bytes(name.as_bytes()).u32(u32::from(*qtype))
            }
        };
        w.0
    }

    /// The request `bytes` hold.
    pub fn decode(bytes: &[u8]) -> Result<Request, Malformed> {
        let mut r = Reader(bytes);
        let request = match r.u8()? {
            1 => Request::Socket {
                domain: r.i32()?,
                ty: r.i32()?,
                protocol: r.i32()?,
            },
            2 => Request::Kind,
            3 => Request::Bind(r.addr()?),
            4 => Request::Connect(r.addr()?),
            5 => Request::Disconnect,
            6 => Request::Listen { backlog: r.i32()? },
            7 => Request::Accept { flags: r.i32()? },
            8 => Request::LocalAddr,
            9 => Request::PeerAddr,
            10 => Request::TakeError,
            11 => Request::GetOption {
                level: r.i32()?,
                name: r.i32()?,
                room: r.u32()?,
            },
            12 => Request::SetOption {
                level: r.i32()?,
                name: r.i32()?,
                value: r.bytes()?,
            },
            13 => Request::CheckTransfer(if r.bool()? {
                Direction::Receive
            } else {
                Direction::Send
            }),
            14 => Request::Shutdown { how: r.i32()? },
            15 => Request::SendTo {
                flags: r.i32()?,
                dest: r.option_addr()?,
                data: r.bytes()?,
            },
            16 => Request::RecvFrom {
                flags: r.i32()?,
                room: r.u32()?,
            },
            17 => Request::BytesToRead,
            18 => Request::Interfaces,
            19 => Request::Lookup(String::from_utf8(r.bytes()?).map_err(|_| Malformed)?),
            20 => Request::Query {
                name: String::from_utf8(r.bytes()?).map_err(|_| Malformed)?,
                qtype: u16::try_from(r.u32()?).map_err(|_| Malformed)?,
            },
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(request)
    }

    /// Whether the answer to this request carries a descriptor when it succeeds.
    pub fn answers_with_descriptor(&self) -> bool {
        matches!(
            self,
            Request::Socket { .. } | Request::Listen { .. } | Request::Accept { .. }
        )
    }
}

impl Answer {
    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match &self.0 {
            Err(errno) => w.u8(0).i32(*errno),
            Ok(Reply::Done) => w.u8(1),
            Ok(Reply::Kind(k)) => w.u8(2).kind(k),
            Ok(Reply::Addr(a)) => w.u8(3).addr(a),
            Ok(Reply::Error(code)) => w.u8(4).i32(*code),
            Ok(Reply::Bytes(b)) => w.u8(5).bytes(b),
            Ok(Reply::Size(n)) => w.u8(6).u64(*n),
            Ok(Reply::Transfer { kind, connected }) => w.u8(7).kind(kind).u8((*connected).into()),
            Ok(Reply::Received { len, from, data }) => w.u8(8).u64(*len).addr(from).bytes(data),
            Ok(Reply::Interfaces(list)) => {
                w.u8(9).u32(list.len() as u32);
                for i in list {
                    w.u32(i.index).bytes(i.name.as_bytes()).u32(i.flags);
                    w.0.extend_from_slice(&i.mac);
                    w.u32(i.mtu).u32(i.addrs.len() as u32);
                    for (addr, prefix) in &i.addrs {
                        w.addr(&SocketAddr::new(*addr, 0)).u8(*prefix);
                    }
                }
                &mut w
            }
            Ok(Reply::Addrs(Err(code))) => w.u8(10).u8(0).i32(*code),
            Ok(Reply::Addrs(Ok(addrs))) => {
                w.u8(10).u8(1).u32(addrs.len() as u32);
                for addr in addrs {
                    w.addr(&SocketAddr::new(*addr, 0));
                }
                &mut w
            }
        };
        w.0
    }

    /// The answer `bytes` hold.
    pub fn decode(bytes: &[u8]) -> Result<Answer, Malformed> {
        let mut r = Reader(bytes);
        let answer = match r.u8()? {
            0 => Err(r.i32()?),
            1 => Ok(Reply::Done),
            2 => Ok(Reply::Kind(r.kind()?)),
            3 => Ok(Reply::Addr(r.addr()?)),
            4 => Ok(Reply::Error(r.i32()?)),
            5 => Ok(Reply::Bytes(r.bytes()?)),
            6 => Ok(Reply::Size(r.u64()?)),
            7 => Ok(Reply::Transfer {
                kind: r.kind()?,
                connected: r.bool()?,
            }),
            8 => Ok(Reply::Received {
                len: r.u64()?,
                from: r.addr()?,
                data: r.bytes()?,
            }),
            9 => Ok(Reply::Interfaces(r.interfaces()?)),
            10 => Ok(Reply::Addrs(if r.bool()? {
                let n = r.u32()? as usize;
                let mut addrs = Vec::with_capacity(n.min(r.0.len()));
                for _ in 0..n {
                    addrs.push(r.addr()?.ip());
                }
                Ok(addrs)
            } else {
                Err(r.i32()?)
            })),
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(Answer(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> SocketAddr {
        "10.0.0.1:8000".parse().unwrap()
    }

    fn v6() -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 443, 7, 2))
    }

    fn kind() -> Kind {
        Kind {
            domain: libc::AF_INET6,
            ty: libc::SOCK_DGRAM,
            protocol: libc::IPPROTO_UDP,
        }
    }

    fn round_trip(request: Request) {
        let bytes = request.encode();
        assert_eq!(Request::decode(&bytes), Ok(request.clone()), "{request:?}");
        // Every strict prefix is malformed, and so is a byte more.
        for cut in 0..bytes.len() {
            assert_eq!(
                Request::decode(&bytes[..cut]),
                Err(Malformed),
                "{request:?}"
            );
        }
        let longer = [bytes.as_slice(), &[0]].concat();
        assert_eq!(Request::decode(&longer), Err(Malformed), "{request:?}");
    }

    fn answer_round_trip(answer: Answer) {
        let bytes = answer.encode();
        assert_eq!(Answer::decode(&bytes), Ok(answer.clone()), "{answer:?}");
        for cut in 0..bytes.len() {
            assert_eq!(Answer::decode(&bytes[..cut]), Err(Malformed), "{answer:?}");
        }
    }

    #[test]
    fn socket() {
        round_trip(Request::Socket {
            domain: libc::AF_INET,
            ty: libc::SOCK_STREAM | libc::SOCK_NONBLOCK,
            protocol: 0,
        });
    }

    #[test]
    fn requests_without_fields() {
        for request in [
            Request::Kind,
            Request::Disconnect,
            Request::LocalAddr,
            Request::PeerAddr,
            Request::TakeError,
            Request::BytesToRead,
            Request::Interfaces,
            Request::Lookup("server.test".into()),
            Request::Query {
                name: "server.test".into(),
                qtype: 28,
            },
        ] {
            round_trip(request);
        }
    }

    #[test]
    fn interfaces() {
        answer_round_trip(Answer(Ok(Reply::Interfaces(vec![
            IfInfo {
                index: 1,
                name: "lo".into(),
                flags: 0x49,
                mac: [0; 6],
                mtu: 65536,
                addrs: vec![
                    ("127.0.0.1".parse().unwrap(), 8),
                    ("::1".parse().unwrap(), 128),
                ],
            },
            IfInfo {
                index: 2,
                name: "vde0".into(),
                flags: 0x1043,
                mac: [2, 0, 0, 0, 0, 1],
                mtu: 1500,
                addrs: Vec::new(),
            },
        ]))));
        answer_round_trip(Answer(Ok(Reply::Addrs(Ok(vec![
            "10.0.0.2".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        ])))));
        answer_round_trip(Answer(Ok(Reply::Addrs(Err(-2)))));
        // A count no bytes back: malformed, and nothing allocated for it.
        assert_eq!(Answer::decode(&[9, 0xff, 0xff, 0xff, 0xff]), Err(Malformed));
    }

    #[test]
    fn bind_and_connect_in_both_families() {
        for a in [v4(), v6()] {
            round_trip(Request::Bind(a));
            round_trip(Request::Connect(a));
        }
    }

    #[test]
    fn listen_accept_shutdown() {
        round_trip(Request::Listen { backlog: -1 });
        round_trip(Request::Accept {
            flags: libc::SOCK_CLOEXEC,
        });
        round_trip(Request::Shutdown { how: libc::SHUT_WR });
    }

    #[test]
    fn options() {
        round_trip(Request::GetOption {
            level: libc::SOL_TCP,
            name: libc::TCP_INFO,
            room: 232,
        });
        round_trip(Request::SetOption {
            level: libc::SOL_SOCKET,
            name: libc::SO_BINDTODEVICE,
            value: b"vde0\0".to_vec(),
        });
    }

    #[test]
    fn transfers() {
        round_trip(Request::CheckTransfer(Direction::Send));
        round_trip(Request::CheckTransfer(Direction::Receive));
        round_trip(Request::SendTo {
            flags: libc::MSG_DONTWAIT,
            dest: Some(v6()),
            data: vec![1, 2, 3],
        });
        round_trip(Request::SendTo {
            flags: 0,
            dest: None,
            data: vec![0; 65_507],
        });
        round_trip(Request::RecvFrom {
            flags: libc::MSG_PEEK,
            room: 9000,
        });
    }

    #[test]
    fn answers() {
        for answer in [
            Err(libc::ECONNREFUSED),
            Ok(Reply::Done),
            Ok(Reply::Kind(None)),
            Ok(Reply::Kind(Some(kind()))),
            Ok(Reply::Addr(v4())),
            Ok(Reply::Error(libc::ECONNRESET)),
            Ok(Reply::Bytes(vec![9; 104])),
            Ok(Reply::Size(u64::MAX)),
            Ok(Reply::Transfer {
                kind: Some(kind()),
                connected: true,
            }),
            Ok(Reply::Received {
                len: 70_000,
                from: v6(),
                data: vec![5; 100],
            }),
        ] {
            answer_round_trip(Answer(answer));
        }
    }

    #[test]
    fn unknown_tags_and_bad_fields_are_malformed() {
        assert_eq!(Request::decode(&[]), Err(Malformed));
        assert_eq!(Request::decode(&[0]), Err(Malformed));
        assert_eq!(Request::decode(&[200]), Err(Malformed));
        // A family that is neither 4 nor 6.
        assert_eq!(Request::decode(&[3, 5, 0, 0, 0, 0, 0, 0]), Err(Malformed));
        // A byte string longer than the message.
        let mut set = Request::SetOption {
            level: 1,
            name: 2,
            value: vec![1],
        }
        .encode();
        set[9] = 0xff;
        assert_eq!(Request::decode(&set), Err(Malformed));
        assert_eq!(Answer::decode(&[9]), Err(Malformed));
        assert_eq!(Answer::decode(&[7, 2, 0]), Err(Malformed));
    }

    /// Arbitrary bytes give a value or `Malformed`, never a panic: what the host
    /// relies on for a client's bad input.
    #[test]
    fn any_bytes_decode_without_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 48) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (seed.rotate_left(i as u32 * 5) & 0xff) as u8 % 20)
                .collect();
            let _ = Request::decode(&bytes);
            let _ = Answer::decode(&bytes);
        }
    }
}
