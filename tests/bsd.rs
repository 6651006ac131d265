//! `vdestack::bsd`, the BSD calls on descriptors, from Rust (the C library's own
//! tests are the C programs of `capi/tests/`). Each scenario runs on both backends:
//! on a kernel-backend stack the descriptors are kernel sockets and the calls are
//! the kernel's, the oracle for what the userspace stack answers.

mod common;

use common::{errno, Backend, Net, Wire};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;
use vdestack::bsd::{self, OptName, OptValue, SockOpt};

/// Two stacks of `backend` on a switch (see [`Net`]).
fn net(backend: Backend) -> Net {
    Net::with_backends(Wire::Switch, backend, backend)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn tcp(stack: &vdestack::Stack) -> OwnedFd {
    bsd::socket(stack, libc::AF_INET, libc::SOCK_STREAM, 0).expect("socket")
}

/// Waits up to 10 s for `events` on `fd`; true if they came.
fn wait_for(fd: BorrowedFd<'_>, events: libc::c_short) -> bool {
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the call.
    unsafe { libc::poll(&mut pfd, 1, 10_000) == 1 }
}

fn int(fd: BorrowedFd<'_>, opt: SockOpt) -> i32 {
    match bsd::get_option(fd, opt).unwrap_or_else(|e| panic!("{opt:?}: {e}")) {
        OptValue::Int(v) => v,
        other => panic!("{opt:?} gave {other:?}"),
    }
}

/// A listener whose options are set between `socket` and `bind`; a blocking
/// connect; accept; the addresses on each side; bytes both ways; a copy of the
/// descriptor that is the same socket once the original is closed.
fn listen_connect_accept(backend: Backend) {
    let net = net(backend);
    let listener = tcp(&net.a);
    let l = listener.as_fd();
    bsd::set_option(l, SockOpt::ReuseAddress, OptValue::Int(1)).unwrap();
    assert_eq!(int(l, SockOpt::ReuseAddress), 1);
    bsd::set_option(l, SockOpt::RecvBuffer, OptValue::Int(50_000)).unwrap();
    assert_eq!(
        int(l, SockOpt::RecvBuffer),
        100_000,
        "doubled, as Linux does"
    );
    bsd::bind(l, addr("0.0.0.0:7")).unwrap();
    bsd::listen(l, 16).unwrap();
    assert_eq!(bsd::local_addr(l).unwrap(), addr("0.0.0.0:7"));
    assert_eq!(int(l, SockOpt::AcceptConn), 1);

    let client = tcp(&net.b);
    let c = client.as_fd();
    assert_eq!(int(c, SockOpt::Type), libc::SOCK_STREAM);
    assert_eq!(int(c, SockOpt::Domain), libc::AF_INET);
    bsd::connect(c, addr("10.0.0.1:7")).unwrap();
    let local = bsd::local_addr(c).unwrap();
    assert_eq!(local.ip().to_string(), "10.0.0.2");
    assert_eq!(bsd::peer_addr(c).unwrap(), addr("10.0.0.1:7"));
    let (conn, peer) = bsd::accept(l, libc::SOCK_CLOEXEC).unwrap();
    assert_eq!(peer, local);
    assert_eq!(int(conn.as_fd(), SockOpt::RecvBuffer), 100_000, "inherited");
    assert_eq!(bsd::send(c, b"ping", 0).unwrap(), 4);
    let mut buf = [0u8; 16];
    assert_eq!(bsd::recv(conn.as_fd(), &mut buf, 0).unwrap(), 4);
    assert_eq!(&buf[..4], b"ping");

    let copy = client.try_clone().unwrap();
    drop(client);
    assert_eq!(bsd::peer_addr(copy.as_fd()).unwrap(), addr("10.0.0.1:7"));
    assert_eq!(
        bsd::kind(copy.as_fd()).is_some(),
        backend == Backend::Userspace,
        "a stack socket is the stack's on the userspace backend only"
    );
    bsd::send(conn.as_fd(), b"pong", 0).unwrap();
    let (n, from) = bsd::recv_from(copy.as_fd(), &mut buf, 0).unwrap();
    assert_eq!((&buf[..n], from), (&b"pong"[..], addr("10.0.0.1:7")));
}

/// A non-blocking connect: EINPROGRESS, then the descriptor turns writable and
/// SO_ERROR says how it ended.
fn nonblocking_connect(backend: Backend) {
    let net = net(backend);
    let listener = tcp(&net.a);
    bsd::bind(listener.as_fd(), addr("0.0.0.0:80")).unwrap();
    bsd::listen(listener.as_fd(), 4).unwrap();
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK;

    let refused = bsd::socket(&net.b, libc::AF_INET, ty, 0).unwrap();
    let e = bsd::connect(refused.as_fd(), addr("10.0.0.1:9")).unwrap_err();
    assert_eq!(errno(&e), libc::EINPROGRESS);
    assert!(wait_for(refused.as_fd(), libc::POLLOUT));
    let e = bsd::take_error(refused.as_fd()).unwrap().expect("an error");
    assert_eq!(errno(&e), libc::ECONNREFUSED);

    let fd = bsd::socket(&net.b, libc::AF_INET, ty, 0).unwrap();
    let e = bsd::connect(fd.as_fd(), addr("10.0.0.1:80")).unwrap_err();
    assert_eq!(errno(&e), libc::EINPROGRESS);
    assert!(wait_for(fd.as_fd(), libc::POLLOUT));
    // Asked again once writable, as event loops do: done (then EISCONN).
    bsd::connect(fd.as_fd(), addr("10.0.0.1:80")).unwrap();
    assert!(bsd::take_error(fd.as_fd()).unwrap().is_none());
    assert_eq!(bsd::peer_addr(fd.as_fd()).unwrap(), addr("10.0.0.1:80"));
    let e = bsd::connect(fd.as_fd(), addr("10.0.0.1:80")).unwrap_err();
    assert_eq!(errno(&e), libc::EISCONN);
}

/// Datagrams: the first send binds, each datagram comes with its source, FIONREAD
/// counts the next one's payload, connect and AF_UNSPEC.
fn datagrams(backend: Backend) {
    let net = net(backend);
    let server = bsd::socket(&net.a, libc::AF_INET, libc::SOCK_DGRAM, 0).unwrap();
    bsd::bind(server.as_fd(), addr("0.0.0.0:5000")).unwrap();
    let client = bsd::socket(&net.b, libc::AF_INET, libc::SOCK_DGRAM, 0).unwrap();
    let e = bsd::send(client.as_fd(), b"x", 0).unwrap_err();
    assert_eq!(errno(&e), libc::EDESTADDRREQ);

    // A switch may drop a datagram: send until one arrives (bounded).
    let mut arrived = false;
    for _ in 0..25 {
        let sent = bsd::send_to(client.as_fd(), b"hello", Some(addr("10.0.0.1:5000")), 0);
        assert_eq!(sent.unwrap(), 5);
        let mut pfd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&server),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call.
        if unsafe { libc::poll(&mut pfd, 1, 200) } == 1 {
            arrived = true;
            break;
        }
    }
    assert!(arrived, "no datagram arrived after 25 tries");
    assert_eq!(bsd::bytes_to_read(server.as_fd()).unwrap(), 5);
    let mut buf = [0u8; 64];
    let (n, from) = bsd::recv_from(server.as_fd(), &mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"hello");
    let bound = bsd::local_addr(client.as_fd()).unwrap();
    assert_eq!(
        bound.ip().to_string(),
        "0.0.0.0",
        "autobound to the wildcard"
    );
    assert_eq!(
        from,
        SocketAddr::new("10.0.0.2".parse().unwrap(), bound.port())
    );

    bsd::connect(client.as_fd(), addr("10.0.0.1:5000")).unwrap();
    assert_eq!(
        bsd::peer_addr(client.as_fd()).unwrap(),
        addr("10.0.0.1:5000")
    );
    bsd::disconnect(client.as_fd()).unwrap();
    let e = bsd::peer_addr(client.as_fd()).unwrap_err();
    assert_eq!(errno(&e), libc::ENOTCONN);
}

/// A connection the peer reset: ECONNRESET once, then end of stream, then EPIPE.
fn reset_once(backend: Backend) {
    let net = net(backend);
    let listener = tcp(&net.a);
    bsd::bind(listener.as_fd(), addr("0.0.0.0:80")).unwrap();
    bsd::listen(listener.as_fd(), 4).unwrap();
    let client = tcp(&net.b);
    bsd::connect(client.as_fd(), addr("10.0.0.1:80")).unwrap();
    let (conn, _) = bsd::accept(listener.as_fd(), 0).unwrap();
    let linger = OptValue::Linger(Some(Duration::ZERO));
    bsd::set_option(conn.as_fd(), SockOpt::Linger, linger).unwrap();
    assert_eq!(
        bsd::get_option(conn.as_fd(), SockOpt::Linger).unwrap(),
        linger
    );
    drop(conn);
    let mut buf = [0u8; 8];
    let e = bsd::recv(client.as_fd(), &mut buf, 0).unwrap_err();
    assert_eq!(errno(&e), libc::ECONNRESET);
    assert_eq!(bsd::recv(client.as_fd(), &mut buf, 0).unwrap(), 0);
    let e = bsd::send(client.as_fd(), b"x", 0).unwrap_err();
    assert_eq!(errno(&e), libc::EPIPE);
}

/// Errors as Linux gives them.
fn errors(backend: Backend) {
    let net = net(backend);
    let fd = tcp(&net.a);
    let f = fd.as_fd();
    assert_eq!(errno(&bsd::accept(f, 0).unwrap_err()), libc::EINVAL);
    assert_eq!(errno(&bsd::peer_addr(f).unwrap_err()), libc::ENOTCONN);
    let e = bsd::bind(f, addr("10.9.9.9:0")).unwrap_err();
    assert_eq!(errno(&e), libc::EADDRNOTAVAIL);
    bsd::bind(f, addr("0.0.0.0:0")).unwrap();
    assert_eq!(
        errno(&bsd::bind(f, addr("0.0.0.0:0")).unwrap_err()),
        libc::EINVAL
    );
    let e = bsd::set_option(f, SockOpt::Type, OptValue::Int(1)).unwrap_err();
    assert_eq!(errno(&e), libc::ENOPROTOOPT);
    let group = OptValue::Group("239.1.1.1".parse().unwrap());
    let e = bsd::set_option(f, SockOpt::AddMembership, group).unwrap_err();
    assert_eq!(errno(&e), libc::EPROTO);
    let e = bsd::set_option(f, SockOpt::KeepCount, OptValue::Int(0)).unwrap_err();
    assert_eq!(errno(&e), libc::EINVAL);

    let udp = bsd::socket(&net.a, libc::AF_INET, libc::SOCK_DGRAM, 0).unwrap();
    let e = bsd::set_option(udp.as_fd(), SockOpt::NoDelay, OptValue::Int(1)).unwrap_err();
    assert_eq!(errno(&e), libc::ENOPROTOOPT);
    assert_eq!(
        errno(&bsd::listen(udp.as_fd(), 1).unwrap_err()),
        libc::EOPNOTSUPP
    );
    let e = bsd::socket(&net.a, libc::AF_INET, 99, 0).unwrap_err();
    assert_eq!(errno(&e), libc::EINVAL);
}

/// Calls on a stream socket that is not connected fail at once as on Linux
/// (EPIPE to send, ENOTCONN to receive or shut down); a non-blocking connect
/// without a route fails inside connect; shutdown of a connection.
fn state_checks(backend: Backend) {
    let net = net(backend);
    let fresh = tcp(&net.b);
    let f = fresh.as_fd();
    let mut buf = [0u8; 8];
    assert_eq!(errno(&bsd::send(f, b"x", 0).unwrap_err()), libc::EPIPE);
    assert_eq!(
        errno(&bsd::recv(f, &mut buf, 0).unwrap_err()),
        libc::ENOTCONN
    );
    // (Linux still records a shutdown it refuses with ENOTCONN: another socket.)
    let other = tcp(&net.b);
    let e = bsd::shutdown(other.as_fd(), libc::SHUT_WR).unwrap_err();
    assert_eq!(errno(&e), libc::ENOTCONN);
    assert_eq!(
        errno(&bsd::shutdown(other.as_fd(), 99).unwrap_err()),
        libc::EINVAL
    );

    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK;
    let nowhere = bsd::socket(&net.b, libc::AF_INET, ty, 0).unwrap();
    let e = bsd::connect(nowhere.as_fd(), addr("10.1.0.1:80")).unwrap_err();
    assert_eq!(errno(&e), libc::ENETUNREACH, "at once, not EINPROGRESS");

    let listener = tcp(&net.a);
    bsd::bind(listener.as_fd(), addr("0.0.0.0:80")).unwrap();
    bsd::listen(listener.as_fd(), 4).unwrap();
    let e = bsd::send(listener.as_fd(), b"x", 0).unwrap_err();
    assert_eq!(errno(&e), libc::EPIPE);
    bsd::connect(f, addr("10.0.0.1:80")).unwrap();
    let (conn, _) = bsd::accept(listener.as_fd(), 0).unwrap();
    bsd::send(f, b"ab", 0).unwrap();
    bsd::shutdown(f, libc::SHUT_WR).unwrap();
    let mut got = Vec::new();
    while let Ok(n @ 1..) = bsd::recv(conn.as_fd(), &mut buf, 0) {
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"ab", "the bytes, then the end of the stream");
    assert_eq!(errno(&bsd::send(f, b"x", 0).unwrap_err()), libc::EPIPE);
    bsd::shutdown(conn.as_fd(), libc::SHUT_RD).unwrap();
    assert_eq!(bsd::recv(conn.as_fd(), &mut buf, 0).unwrap(), 0, "at once");
    bsd::send(conn.as_fd(), b"cd", 0).unwrap();
    assert_eq!(
        bsd::recv(f, &mut buf, 0).unwrap(),
        2,
        "a half-closed socket reads"
    );
}

/// Options real programs set (issue 12): names (`TCP_CONGESTION`,
/// `SO_BINDTODEVICE`) and `TCP_INFO`, through the Rust API.
fn named_options_and_tcp_info(backend: Backend) {
    let net = net(backend);
    let fd = tcp(&net.b);
    let f = fd.as_fd();
    let name = |s: &str| OptValue::Name(OptName::new(s.as_bytes()));
    let named = [
        (SockOpt::Congestion, "reno", "nosuch", libc::ENOENT),
        (SockOpt::BindToDevice, "vde0", "nosuch0", libc::ENODEV),
    ];
    for (opt, known, unknown, code) in named {
        bsd::set_option(f, opt, name(known)).unwrap();
        assert_eq!(bsd::get_option(f, opt).unwrap(), name(known), "{opt:?}");
        let e = bsd::set_option(f, opt, name(unknown)).unwrap_err();
        assert_eq!(errno(&e), code, "{opt:?} {unknown}");
    }

    let listener = tcp(&net.a);
    bsd::bind(listener.as_fd(), addr("0.0.0.0:80")).unwrap();
    bsd::listen(listener.as_fd(), 4).unwrap();
    bsd::connect(f, addr("10.0.0.1:80")).unwrap();
    let OptValue::TcpInfo(info) = bsd::get_option(f, SockOpt::Info).unwrap() else {
        panic!("TCP_INFO gave another kind of value");
    };
    assert_eq!(info.state, 1, "ESTABLISHED: {info:?}");
    assert!(info.snd_mss > 0 && info.snd_cwnd >= 10, "{info:?}");
    // The listener's window, scaled as the SYNs agreed: a userspace stack's
    // 128 KiB ring is more than a window field holds unscaled.
    let least = if backend == Backend::Userspace {
        65_536
    } else {
        1
    };
    assert!(info.snd_wnd >= least, "the peer's window: {info:?}");
    let OptValue::TcpInfo(info) = bsd::get_option(listener.as_fd(), SockOpt::Info).unwrap() else {
        panic!("TCP_INFO gave another kind of value");
    };
    assert_eq!(info.state, 10, "LISTEN: {info:?}");
}

/// The path-MTU options (issue 14): `IP_MTU_DISCOVER`, `IPV6_MTU_DISCOVER`,
/// `IPV6_DONTFRAG`, `IPV6_MTU` set and `IP_MTU`, their values, errors and the
/// `EMSGSIZE` of a datagram beyond the MTU they hold it to (links of 1,500).
fn path_mtu_options(backend: Backend) {
    let net = net(backend);
    net.add_ipv6();
    net.b.cmd("/bin/ip link set lo up").unwrap();
    let get = |fd: &OwnedFd, opt| match bsd::get_option(fd.as_fd(), opt) {
        Ok(OptValue::Int(v)) => Ok(v),
        Ok(other) => panic!("{opt:?} gave {other:?}"),
        Err(e) => Err(errno(&e)),
    };
    let set = |fd: &OwnedFd, opt, v| {
        bsd::set_option(fd.as_fd(), opt, OptValue::Int(v)).map_err(|e| errno(&e))
    };
    let socket = |family, ty| bsd::socket(&net.b, family, ty, 0).unwrap();
    let (udp4, udp6) = (
        socket(libc::AF_INET, libc::SOCK_DGRAM),
        socket(libc::AF_INET6, libc::SOCK_DGRAM),
    );
    let (tcp4, tcp6) = (
        socket(libc::AF_INET, libc::SOCK_STREAM),
        socket(libc::AF_INET6, libc::SOCK_STREAM),
    );
    for fd in [&udp4, &udp6, &tcp4, &tcp6] {
        assert_eq!(get(fd, SockOpt::MtuDiscover), Ok(1), "WANT by default");
        assert_eq!(get(fd, SockOpt::Mtu), Err(libc::ENOTCONN));
        assert_eq!(set(fd, SockOpt::Mtu, 1400), Err(libc::ENOPROTOOPT));
        for bad in [-1, 6] {
            assert_eq!(set(fd, SockOpt::MtuDiscover, bad), Err(libc::EINVAL));
        }
        for mode in [0, 5, 2] {
            set(fd, SockOpt::MtuDiscover, mode).unwrap();
            assert_eq!(get(fd, SockOpt::MtuDiscover), Ok(mode));
        }
    }
    for fd in [&udp4, &tcp4] {
        for opt in [
            SockOpt::MtuDiscoverV6,
            SockOpt::DontFragment,
            SockOpt::PathMtu,
        ] {
            assert_eq!(get(fd, opt), Err(libc::EOPNOTSUPP), "{opt:?}");
            assert_eq!(set(fd, opt, 1280), Err(libc::ENOPROTOOPT), "{opt:?}");
        }
    }
    for fd in [&udp6, &tcp6] {
        assert_eq!(get(fd, SockOpt::MtuDiscoverV6), Ok(1));
        assert_eq!(get(fd, SockOpt::DontFragment), Ok(0));
        for bad in [-1, 6] {
            assert_eq!(set(fd, SockOpt::MtuDiscoverV6, bad), Err(libc::EINVAL));
        }
        set(fd, SockOpt::MtuDiscoverV6, 4).unwrap();
        assert_eq!(get(fd, SockOpt::MtuDiscoverV6), Ok(4));
        set(fd, SockOpt::DontFragment, 7).unwrap();
        assert_eq!(get(fd, SockOpt::DontFragment), Ok(1), "any non-zero");
        set(fd, SockOpt::DontFragment, 0).unwrap();
        for bad in [1279, -1] {
            assert_eq!(set(fd, SockOpt::PathMtu, bad), Err(libc::EINVAL));
        }
        for size in [1280, 100_000, 0] {
            set(fd, SockOpt::PathMtu, size).unwrap();
        }
        assert_eq!(get(fd, SockOpt::PathMtu), Err(libc::ENOTCONN));
    }

    // Connected: the path's MTU (the link's, lo's), whatever IPV6_MTU says.
    let connected = |family, to: &str| {
        let fd = socket(family, libc::SOCK_DGRAM);
        bsd::connect(fd.as_fd(), addr(to)).unwrap();
        fd
    };
    assert_eq!(
        get(&connected(libc::AF_INET, "10.0.0.1:9"), SockOpt::Mtu),
        Ok(1500)
    );
    assert_eq!(
        get(&connected(libc::AF_INET, "127.0.0.1:9"), SockOpt::Mtu),
        Ok(65_535)
    );
    let to_a = connected(libc::AF_INET6, "[fd00::1]:9");
    set(&to_a, SockOpt::PathMtu, 1280).unwrap();
    assert_eq!(get(&to_a, SockOpt::PathMtu), Ok(1500));
    assert_eq!(get(&to_a, SockOpt::Mtu), Ok(1500));
    let to_lo = connected(libc::AF_INET6, "[::1]:9");
    assert_eq!(get(&to_lo, SockOpt::PathMtu), Ok(65_536));
    assert_eq!(get(&to_lo, SockOpt::Mtu), Ok(65_536));

    // What a datagram beyond the MTU does.
    let send = |fd: &OwnedFd, len: usize, to: &str| {
        bsd::send_to(fd.as_fd(), &vec![7; len], Some(addr(to)), 0).map_err(|e| errno(&e))
    };
    let udp4 = socket(libc::AF_INET, libc::SOCK_DGRAM);
    set(&udp4, SockOpt::MtuDiscover, 2).unwrap();
    assert_eq!(send(&udp4, 1472, "10.0.0.1:9"), Ok(1472));
    assert_eq!(send(&udp4, 1473, "10.0.0.1:9"), Err(libc::EMSGSIZE));
    assert_eq!(send(&udp4, 3000, "127.0.0.1:9"), Ok(3000), "lo's MTU");
    set(&udp4, SockOpt::MtuDiscover, 0).unwrap();
    assert_eq!(send(&udp4, 3000, "10.0.0.1:9"), Ok(3000), "in fragments");
    let udp6 = socket(libc::AF_INET6, libc::SOCK_DGRAM);
    assert_eq!(send(&udp6, 3000, "[fd00::1]:9"), Ok(3000));
    set(&udp6, SockOpt::DontFragment, 1).unwrap();
    assert_eq!(send(&udp6, 1452, "[fd00::1]:9"), Ok(1452));
    assert_eq!(send(&udp6, 1453, "[fd00::1]:9"), Err(libc::EMSGSIZE));
    assert_eq!(
        send(&udp6, 1473, "[::ffff:10.0.0.1]:9"),
        Ok(1473),
        "IPv4 keeps to IP_MTU_DISCOVER"
    );
    set(&udp6, SockOpt::PathMtu, 1280).unwrap();
    assert_eq!(send(&udp6, 1232, "[fd00::1]:9"), Ok(1232));
    assert_eq!(send(&udp6, 1233, "[fd00::1]:9"), Err(libc::EMSGSIZE));
    set(&udp6, SockOpt::DontFragment, 0).unwrap();
    set(&udp6, SockOpt::MtuDiscoverV6, 3).unwrap();
    assert_eq!(send(&udp6, 1233, "[fd00::1]:9"), Err(libc::EMSGSIZE));
    set(&udp6, SockOpt::MtuDiscoverV6, 1).unwrap();
    assert_eq!(send(&udp6, 1233, "[fd00::1]:9"), Ok(1233), "in fragments");
}

/// A socket that was only bound gives its port back when it is closed
/// (issue 12); one that listened keeps it for its listener.
fn a_closed_bound_socket_frees_its_port(backend: Backend) {
    let net = net(backend);
    // The other tests' fixtures start processes that would hold a copy of a
    // socket closed here, and its port, for a while (see `no_new_processes`).
    let _alone = common::no_new_processes();
    for _ in 0..3 {
        let bound = tcp(&net.a);
        bsd::bind(bound.as_fd(), addr("0.0.0.0:81")).unwrap();
        drop(bound);
    }
    let listener = tcp(&net.a);
    bsd::bind(listener.as_fd(), addr("0.0.0.0:81")).expect("the port was given back");
    bsd::listen(listener.as_fd(), 4).unwrap();
    let other = tcp(&net.a);
    let e = bsd::bind(other.as_fd(), addr("0.0.0.0:81")).unwrap_err();
    assert_eq!(errno(&e), libc::EADDRINUSE, "the listener holds it");
}

/// A listening socket on `local` (`v6only`: `IPV6_V6ONLY` for an IPv6 one),
/// non-blocking; the error of `bind` or `listen`, named.
fn listener_on(
    stack: &vdestack::Stack,
    local: &str,
    v6only: bool,
    reuse: Option<SockOpt>,
) -> Result<OwnedFd, (&'static str, i32)> {
    let local = addr(local);
    let family = if local.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK;
    let fd = bsd::socket(stack, family, ty, 0).unwrap();
    if local.is_ipv6() {
        bsd::set_option(fd.as_fd(), SockOpt::OnlyV6, OptValue::Int(v6only.into())).unwrap();
    }
    if let Some(opt) = reuse {
        bsd::set_option(fd.as_fd(), opt, OptValue::Int(1)).unwrap();
    }
    bsd::bind(fd.as_fd(), local).map_err(|e| ("bind", errno(&e)))?;
    bsd::listen(fd.as_fd(), 4).map_err(|e| ("listen", errno(&e)))?;
    Ok(fd)
}

/// Takes one connection from `listener` within 10 s; None if none came.
fn accept_one(listener: &OwnedFd) -> Option<SocketAddr> {
    wait_for(listener.as_fd(), libc::POLLIN).then_some(())?;
    bsd::accept(listener.as_fd(), 0).ok().map(|(_, peer)| peer)
}

/// `0.0.0.0:P` and `[::]:P` with `IPV6_V6ONLY` listen side by side, each taking
/// its family's connections (ncat's and sshd's dual listen, issue 12); the other
/// pairs on one port are refused as Linux refuses them.
fn dual_listen(backend: Backend) {
    let net = net(backend);
    net.add_ipv6();
    let v4 = listener_on(&net.a, "0.0.0.0:90", false, None).unwrap();
    let v6 = listener_on(&net.a, "[::]:90", true, None).expect("beside 0.0.0.0:90");
    let c4 = tcp(&net.b);
    bsd::connect(c4.as_fd(), addr("10.0.0.1:90")).unwrap();
    let c6 = bsd::socket(&net.b, libc::AF_INET6, libc::SOCK_STREAM, 0).unwrap();
    bsd::connect(c6.as_fd(), addr("[fd00::1]:90")).unwrap();
    assert_eq!(accept_one(&v4), Some(bsd::local_addr(c4.as_fd()).unwrap()));
    assert_eq!(accept_one(&v6), Some(bsd::local_addr(c6.as_fd()).unwrap()));
    drop((v4, v6));

    let reuse_addr = Some(SockOpt::ReuseAddress);
    let reuse_port = Some(SockOpt::ReusePort);
    type Side = (&'static str, bool, Option<SockOpt>);
    type Outcome = Result<(), (&'static str, i32)>;
    let cases: [(Side, Side, Outcome); 7] = [
        (("[::]:91", true, None), ("0.0.0.0:91", false, None), Ok(())),
        (
            ("[::]:92", false, None),
            ("0.0.0.0:92", false, None),
            Err(("bind", libc::EADDRINUSE)),
        ),
        (
            ("0.0.0.0:93", false, None),
            ("[::]:93", false, None),
            Err(("bind", libc::EADDRINUSE)),
        ),
        (
            ("[::]:94", true, None),
            ("[::]:94", true, None),
            Err(("bind", libc::EADDRINUSE)),
        ),
        (
            ("0.0.0.0:95", false, reuse_addr),
            ("[::]:95", false, reuse_addr),
            Err(("bind", libc::EADDRINUSE)),
        ),
        (
            ("0.0.0.0:96", false, reuse_port),
            ("[::]:96", false, reuse_port),
            Ok(()),
        ),
        (
            ("0.0.0.0:97", false, reuse_addr),
            ("[::]:97", true, reuse_addr),
            Ok(()),
        ),
    ];
    for (first, second, expected) in cases {
        let _held = listener_on(&net.a, first.0, first.1, first.2).unwrap();
        let got = listener_on(&net.a, second.0, second.1, second.2).map(drop);
        assert_eq!(got, expected, "{first:?} then {second:?}");
    }
}

on_both_backends! {
    path_mtu_options: super::path_mtu_options;
    dual_listen: super::dual_listen;
    a_closed_bound_socket_frees_its_port: super::a_closed_bound_socket_frees_its_port;
    named_options_and_tcp_info: super::named_options_and_tcp_info;
    state_checks: super::state_checks;
    listen_connect_accept: super::listen_connect_accept;
    nonblocking_connect: super::nonblocking_connect;
    datagrams: super::datagrams;
    reset_once: super::reset_once;
    errors: super::errors;
}

/// Descriptors that are no stack's are the kernel's: a socket pair is one.
#[test]
fn other_descriptors_are_the_kernels() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert!(!bsd::is_stack_socket(a.as_fd()));
    assert_eq!(bsd::send(a.as_fd(), b"x", 0).unwrap(), 1);
    let mut buf = [0u8; 1];
    assert_eq!(bsd::recv(b.as_fd(), &mut buf, 0).unwrap(), 1);
    assert_eq!(bsd::bytes_to_read(b.as_fd()).unwrap(), 0);
}
