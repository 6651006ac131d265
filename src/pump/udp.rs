//! The pump's side of UDP sockets: datagrams between socket pairs and the engine.
//!
//! A UDP socket's application end is one end of an AF_UNIX SOCK_SEQPACKET pair, so
//! message boundaries hold and closing it is seen here as a hang-up. What travels
//! on the pair depends on whether the socket is connected:
//! - connected: bare payloads both ways, so `read`, `write`, `send` and `recv` work
//!   on the descriptor with no help (the address is always the peer's);
//! - not connected: every datagram starts with the address ([`super::encode_addr`]):
//!   the destination from the application, the source towards it.
//!
//! Switching between the two (connect, or dissolving with AF_UNSPEC) pauses output
//! until the application has drained the datagrams framed the old way
//! ([`Control::UdpResume`](super::Control::UdpResume)).

use super::{decode_addr, encode_addr, watch_end, watch_writable_too, EndToken, Pump, ADDR_BYTES};
use crate::engine::{DatagramProto, Engine, SocketOptions, UdpHandle};
use crate::sys;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

/// Datagrams read from one application end per step, so one busy socket cannot
/// starve the others.
const DATAGRAMS_PER_STEP: usize = 64;

/// Room for the largest datagram (UDP over IPv6) behind its address: the
/// pump's scratch buffer, made with the first datagram read and let go with the
/// last UDP socket, so that a stack without UDP holds none of it.
const SCRATCH_BYTES: usize = crate::engine::MAX_UDP_PAYLOAD + ADDR_BYTES;

/// State shared between a UDP socket's application handle and the pump.
#[derive(Debug, Default)]
pub(crate) struct UdpShared {
    /// An errno to report on the next call (an ICMP error, a failed send).
    pub(crate) error: AtomicI32,
    /// Datagrams dropped because the receive queue was full.
    pub(crate) drops: AtomicU64,
}

impl UdpShared {
    /// Takes the pending error, if any.
    pub(crate) fn take_error(&self) -> Option<io::Error> {
        match self.error.swap(0, Ordering::AcqRel) {
            0 => None,
            code => Some(io::Error::from_raw_os_error(code)),
        }
    }
}

/// The pump's view of one UDP socket.
pub(super) struct UdpEntry {
    fd: OwnedFd,
    handle: UdpHandle,
    shared: Arc<UdpShared>,
    /// Bare payloads on the pair (see the module doc).
    connected: bool,
    /// Output waits for the application to drain datagrams framed the old way.
    paused: bool,
    app_readable: bool,
    app_writable: bool,
    app_gone: bool,
    /// The engine has datagrams queued for the application.
    has_data: bool,
    /// A datagram read from the application that smoltcp had no room for yet.
    stalled: Option<(Option<SocketAddr>, Vec<u8>)>,
    /// Dropped with `fd` (see [`EndToken`]).
    _token: Option<EndToken>,
    /// In the pump's queue of UDP sockets to serve at the next step.
    queued: bool,
    /// Its end is watched for writability too (since a write would block).
    watches_writable: bool,
}

impl Pump {
    /// Leaves `errno` for every UDP socket to report (the pump is going away).
    pub(super) fn udp_fail_all(&self, errno: i32) {
        for entry in self.udps.values() {
            entry.shared.error.store(errno, Ordering::Release);
        }
    }

    /// Opens a UDP socket bound to `local`, served through the pump end `fd` (with
    /// its token). An adopted `msocket` end (one with a token) that cannot be bound
    /// is adopted again, so that the application may bind it elsewhere.
    pub(super) fn udp_open(
        &mut self,
        id: u64,
        proto: DatagramProto,
        (fd, token, watched): (OwnedFd, Option<EndToken>, bool),
        local: SocketAddr,
        options: &SocketOptions,
        shared: Arc<UdpShared>,
    ) -> io::Result<SocketAddr> {
        if !watched {
            sys::set_nonblocking(fd.as_fd(), true)?;
        }
        let opened = match proto {
            DatagramProto::Udp => self.engine.udp_open(local, options),
            DatagramProto::Ping => self.engine.ping_open(local, options),
        };
        let (handle, bound) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                if token.is_some() {
                    self.adopt(id, fd, token, watched);
                }
                return Err(e);
            }
        };
        // Watched for reading only until a write would block (see `add_conn`).
        if !watched {
            if let Err(e) = watch_end(self.poll.registry(), &fd, id) {
                self.engine.udp_close(handle);
                return Err(e);
            }
        }
        self.by_udp.insert(handle, id);
        self.udps.insert(
            id,
            UdpEntry {
                fd,
                handle,
                shared,
                connected: false,
                paused: false,
                app_readable: true,
                app_writable: true,
                app_gone: false,
                has_data: false,
                stalled: None,
                _token: token,
                queued: false,
                watches_writable: false,
            },
        );
        Ok(bound)
    }

    /// Connects (or with `None` disconnects) a UDP socket; returns its local
    /// address. Output pauses until [`Pump::udp_resume`].
    pub(super) fn udp_connect(
        &mut self,
        id: u64,
        remote: Option<SocketAddr>,
    ) -> io::Result<SocketAddr> {
        let entry = self.udps.get_mut(&id).ok_or_else(ebadf)?;
        let handle = entry.handle;
        // What the application wrote before connecting is framed the old way.
        read_app(&mut self.engine, entry, &mut self.udp_scratch);
        self.udp_note_stall(id);
        self.udp_make_ready(id);
        let local = self.engine.udp_connect(handle, remote)?;
        let entry = self.udps.get_mut(&id).expect("looked up above");
        entry.connected = remote.is_some();
        entry.paused = true;
        Ok(local)
    }

    /// Sends a datagram to `dest` from a connected socket (not through its pair).
    /// smoltcp's ring being full is ENOBUFS, as a full kernel queue is for UDP.
    pub(super) fn udp_send_aside(
        &mut self,
        id: u64,
        dest: SocketAddr,
        data: &[u8],
    ) -> io::Result<()> {
        let handle = self.udps.get(&id).ok_or_else(ebadf)?.handle;
        match self.engine.udp_send(handle, Some(dest), data) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::from_raw_os_error(libc::ENOBUFS))
            }
            other => other,
        }
    }

    /// The application drained its end after a connect: output may go on.
    pub(super) fn udp_resume(&mut self, id: u64) {
        if let Some(entry) = self.udps.get_mut(&id) {
            entry.paused = false;
        }
        self.udp_make_ready(id);
    }

    /// Queues a UDP socket for the next step.
    fn udp_make_ready(&mut self, id: u64) {
        if let Some(entry) = self.udps.get_mut(&id) {
            if !entry.queued {
                entry.queued = true;
                self.udp_ready.push(id);
            }
        }
    }

    /// Keeps the set of sockets with a datagram waiting for room up to date.
    fn udp_note_stall(&mut self, id: u64) {
        if self.udps.get(&id).is_some_and(|e| e.stalled.is_some()) {
            self.udp_stalled.insert(id);
        } else {
            self.udp_stalled.remove(&id);
        }
    }

    /// New options for the UDP socket `id`; false if there is none.
    pub(super) fn udp_set_options(&mut self, id: u64, options: &SocketOptions) -> bool {
        let Some(entry) = self.udps.get_mut(&id) else {
            return false;
        };
        // Datagrams written before the change leave with the old options (a TTL,
        // a multicast loop), as a kernel socket keeps sends and setsockopt in
        // order: take them from the pair first, whether or not its readiness has
        // been seen yet.
        entry.app_readable = true;
        read_app(&mut self.engine, entry, &mut self.udp_scratch);
        let handle = entry.handle;
        self.udp_note_stall(id);
        self.udp_make_ready(id);
        self.engine.udp_set_options(handle, options);
        true
    }

    pub(super) fn udp_membership(
        &mut self,
        id: u64,
        group: std::net::IpAddr,
        join: bool,
    ) -> io::Result<()> {
        let handle = self.udps.get(&id).ok_or_else(ebadf)?.handle;
        self.engine.udp_membership(handle, group, join)
    }

    /// The pump's ends of the UDP sockets' pairs.
    pub(super) fn udp_descriptors(&self) -> impl Iterator<Item = std::os::fd::RawFd> + '_ {
        use std::os::fd::AsRawFd;
        self.udps.values().map(|entry| entry.fd.as_raw_fd())
    }

    /// Readiness of an application end; false if `id` is not a UDP socket.
    pub(super) fn udp_event(&mut self, id: u64, event: &mio::event::Event) -> bool {
        let Some(entry) = self.udps.get_mut(&id) else {
            return false;
        };
        if event.is_readable() || event.is_read_closed() {
            entry.app_readable = true;
        }
        if event.is_writable() {
            entry.app_writable = true;
        }
        if event.is_read_closed() {
            // Closed: what it wrote before closing still goes out, and its port
            // is free at once, as after close(2).
            entry.app_gone = true;
            read_app(&mut self.engine, entry, &mut self.udp_scratch);
            if !entry.app_readable && entry.stalled.is_none() {
                self.udp_drop(id);
                return true;
            }
            self.udp_note_stall(id);
        }
        self.udp_make_ready(id);
        true
    }

    /// The engine queued datagrams for a socket: pass them on now.
    pub(super) fn udp_readable(&mut self, handle: UdpHandle) {
        let Some(&id) = self.by_udp.get(&handle) else {
            return;
        };
        if let Some(entry) = self.udps.get_mut(&id) {
            entry.has_data = true;
            write_app(&mut self.engine, entry);
            watch_writable(self.poll.registry(), id, entry);
            // A failed write may have found the application gone.
            self.udp_make_ready(id);
        }
    }

    /// A socket dropped a datagram: its count, as the application reads it.
    pub(super) fn udp_dropped(&mut self, handle: UdpHandle) {
        if let Some(entry) = self.by_udp.get(&handle).and_then(|id| self.udps.get(id)) {
            entry
                .shared
                .drops
                .store(self.engine.udp_drops(handle), Ordering::Relaxed);
        }
    }

    /// A connected socket got an ICMP error: report it on the next call, and wake a
    /// blocked reader with an empty datagram (which it turns into the error).
    pub(super) fn udp_error(&mut self, handle: UdpHandle) {
        let Some(entry) = self.by_udp.get(&handle).and_then(|id| self.udps.get(id)) else {
            return;
        };
        if let Some(errno) = self.engine.udp_take_error(handle) {
            entry.shared.error.store(errno, Ordering::Release);
            let _ = sys::send_parts(entry.fd.as_fd(), &[], &[], libc::MSG_DONTWAIT);
        }
    }

    /// Moves datagrams between the engine and the UDP socket pairs that are
    /// ready (an event came for them) or hold a datagram waiting for room.
    pub(super) fn service_udp(&mut self) {
        let mut serving = std::mem::take(&mut self.udp_ready);
        serving.extend(self.udp_stalled.iter().copied());
        for id in serving {
            let Some(entry) = self.udps.get_mut(&id) else {
                continue;
            };
            entry.queued = false;
            read_app(&mut self.engine, entry, &mut self.udp_scratch);
            write_app(&mut self.engine, entry);
            watch_writable(self.poll.registry(), id, entry);
            if entry.app_gone && !entry.app_readable && entry.stalled.is_none() {
                self.udp_drop(id);
                continue;
            }
            // Still readable after a step's share of datagrams: more next step.
            let more = entry.app_readable && entry.stalled.is_none();
            self.udp_note_stall(id);
            if more {
                self.udp_make_ready(id);
            }
        }
    }

    pub(super) fn udp_drop(&mut self, id: u64) {
        self.udp_stalled.remove(&id);
        if let Some(entry) = self.udps.remove(&id) {
            self.by_udp.remove(&entry.handle);
            self.engine.udp_close(entry.handle);
        }
        if self.udps.is_empty() {
            self.udp_scratch = Vec::new();
        }
    }
}

/// Hands datagrams the application wrote to the engine.
fn read_app(engine: &mut Engine, entry: &mut UdpEntry, scratch: &mut Vec<u8>) {
    if let Some((dest, data)) = entry.stalled.take() {
        match engine.udp_send(entry.handle, dest, &data) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.stalled = Some((dest, data));
                return;
            }
            Err(e) => entry.shared.error.store(errno_of(&e), Ordering::Release),
            Ok(()) => {}
        }
    }
    let mut head = [0u8; ADDR_BYTES];
    for _ in 0..DATAGRAMS_PER_STEP {
        if !entry.app_readable {
            return;
        }
        if scratch.is_empty() {
            *scratch = vec![0; SCRATCH_BYTES];
        }
        let head: &mut [u8] = if entry.connected { &mut [] } else { &mut head };
        let len = match sys::recv_parts(entry.fd.as_fd(), head, scratch, libc::MSG_DONTWAIT) {
            // After a hang-up, an empty read is the end, not an empty datagram.
            Ok((0, _)) if entry.app_gone => {
                entry.app_readable = false;
                return;
            }
            Ok((len, _)) => len,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.app_readable = false;
                return;
            }
            Err(_) => {
                entry.app_readable = false;
                entry.app_gone = true;
                return;
            }
        };
        let dest = if entry.connected {
            None
        } else {
            match decode_addr(head) {
                Some(dest) if len >= ADDR_BYTES => Some(dest),
                // Not something our send path wrote (a bare write() on an
                // unconnected socket): like send(2) without an address.
                _ => {
                    entry
                        .shared
                        .error
                        .store(libc::EDESTADDRREQ, Ordering::Release);
                    continue;
                }
            }
        };
        let body = &scratch[..len - head.len()];
        match engine.udp_send(entry.handle, dest, body) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.stalled = Some((dest, body.to_vec()));
                return;
            }
            Err(e) => entry.shared.error.store(errno_of(&e), Ordering::Release),
        }
    }
}

/// Passes received datagrams to the application while its end takes them.
fn write_app(engine: &mut Engine, entry: &mut UdpEntry) {
    entry
        .shared
        .drops
        .store(engine.udp_drops(entry.handle), Ordering::Relaxed);
    if entry.paused || !entry.has_data {
        return;
    }
    while entry.app_writable {
        let Some(datagram) = engine.udp_recv(entry.handle) else {
            entry.has_data = false;
            return;
        };
        let head = encode_addr(datagram.peer);
        let head: &[u8] = if entry.connected { &[] } else { &head };
        match sys::send_parts(entry.fd.as_fd(), head, &datagram.data, libc::MSG_DONTWAIT) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.app_writable = false;
                engine.udp_unrecv(entry.handle, datagram);
            }
            Err(_) => {
                // The application closed its end; what it did not read is gone.
                entry.app_gone = true;
                return;
            }
        }
    }
}

/// Watches a socket's end for writability once a write to it would block: an
/// end is watched for reading only until then (see `Pump::add_conn`).
fn watch_writable(registry: &mio::Registry, id: u64, entry: &mut UdpEntry) {
    if entry.app_writable || entry.watches_writable {
        return;
    }
    entry.watches_writable = watch_writable_too(registry, &entry.fd, id);
    // Failing that (out of memory), it is treated as writable again: the next
    // write finds out.
    entry.app_writable = !entry.watches_writable;
}

fn ebadf() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}
