//! Routes as local traffic meets them, on both backends (the kernel one is the
//! oracle): reject routes (`unreachable`, `prohibit`, `blackhole`, `throw`)
//! refuse `connect` and `sendto` with Linux's errors.
//!
//! Every test builds its own network in a temporary directory; nothing leaves the
//! machine.

mod common;

use common::{errno, Backend, Switch};
use std::net::SocketAddr;
use vdestack::{Stack, TcpStream, UdpSocket};

/// A stack on its own switch with 10.0.0.1/24 and fd00::1/64 on `vde0`,
/// default routes through 10.0.0.254 and fd00::fe, and a reject route of each
/// type under 10.N.0.0/16 and fd00:N::/32 (N = 1 to 4).
fn with_reject_routes(backend: Backend) -> (Stack, Switch) {
    let switch = Switch::start();
    let stack = common::stack_on(backend, &switch.vnl());
    let mut cmds = String::from(
        "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0; \
         /bin/ip -6 addr add fd00::1/64 dev vde0 nodad; \
         /bin/ip route add default via 10.0.0.254; /bin/ip -6 route add default via fd00::fe",
    );
    for (n, kind) in REJECTS.iter().enumerate() {
        let n = n + 1;
        cmds += &format!(
            "; /bin/ip route add {kind} 10.{n}.0.0/16; /bin/ip -6 route add {kind} fd00:{n}::/32"
        );
    }
    stack.cmd(&cmds).expect("configure");
    (stack, switch)
}

const REJECTS: [&str; 4] = ["unreachable", "prohibit", "blackhole", "throw"];

/// What Linux's `connect` and `sendto` say under each reject route (checked on
/// Linux 6.18, IPv4 and IPv6 alike).
const ERRNOS: [i32; 4] = [
    libc::EHOSTUNREACH,
    libc::EACCES,
    libc::EINVAL,
    libc::ENETUNREACH,
];

fn reject_routes_refuse_local_traffic(backend: Backend) {
    let (stack, _switch) = with_reject_routes(backend);
    for (n, (kind, want)) in REJECTS.iter().zip(ERRNOS).enumerate() {
        let n = n + 1;
        for dest in [format!("10.{n}.0.9:80"), format!("[fd00:{n}::9]:80")] {
            let dest: SocketAddr = dest.parse().unwrap();
            let what = format!("{kind} route, {dest}");
            let err = TcpStream::connect(&stack, dest).expect_err(&what);
            assert_eq!(errno(&err), want, "TCP connect: {what}: {err}");
            let any = if dest.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let udp = UdpSocket::bind(&stack, any).unwrap();
            let err = udp.send_to(b"x", dest).expect_err(&what);
            assert_eq!(errno(&err), want, "UDP sendto: {what}: {err}");
            let err = udp.connect(dest).expect_err(&what);
            assert_eq!(errno(&err), want, "UDP connect: {what}: {err}");
        }
    }
}

on_both_backends! {
    reject_routes: super::reject_routes_refuse_local_traffic;
}
