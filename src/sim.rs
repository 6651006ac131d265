//! Deterministic mode: stacks with no threads, no system calls and a virtual clock.
//!
//! The engine under every [`crate::Stack`] is sans-IO: it is driven by `(now, frame)`
//! calls. This module hands it out directly, so that a program (a fuzzer, a network
//! simulation, a test of a protocol corner case) can wire stacks together in memory
//! and advance time itself. The same inputs give the same frames and the same
//! outcome, run after run. It is API: the fuzzers in `fuzz/` drive stacks through
//! it alone.
//!
//! ```
//! use std::time::Duration;
//! use vdestack::sim::{SimEvent, SimNetwork, SimStack};
//!
//! let mut net = SimNetwork::new();
//! let a = net.add(SimStack::new("vde0", [2, 0, 0, 0, 0, 1], 1));
//! let b = net.add(SimStack::new("vde0", [2, 0, 0, 0, 0, 2], 2));
//! net.stack(a).cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0").unwrap();
//! net.stack(b).cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0").unwrap();
//!
//! let listener = net.stack(a).tcp_listen("0.0.0.0:7".parse().unwrap(), 8).unwrap();
//! let client = net.stack(b).tcp_connect("10.0.0.1:7".parse().unwrap()).unwrap();
//! net.step(Duration::from_millis(1));
//! assert_eq!(net.stack(b).next_event(), Some(SimEvent::Connected(client)));
//! let Some(SimEvent::Accepted { socket: server, .. }) = net.stack(a).next_event() else {
//!     panic!("no connection")
//! };
//!
//! net.stack(b).send(client, b"hello").unwrap();
//! net.step(Duration::from_millis(1));
//! let mut buf = [0u8; 16];
//! let n = net.stack(a).recv(server, &mut buf).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! # let _ = listener;
//! ```

use crate::cmd::{CmdError, NetConfig};
use crate::engine::{Engine, Event, ListenerId, SocketOptions, TcpHandle, UdpHandle};
use crate::pcap::PcapWriter;
use smoltcp::socket::tcp;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A TCP connection or listener, or a UDP socket, of a [`SimStack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SimSocket(u64);

/// Something that happened to a socket of a [`SimStack`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimEvent {
    /// A `tcp_connect` completed.
    Connected(SimSocket),
    /// A `tcp_connect` failed with this errno (ECONNREFUSED, EHOSTUNREACH, ...).
    ConnectFailed(SimSocket, i32),
    /// A connection arrived on `listener`; `socket` is it.
    #[non_exhaustive]
    Accepted {
        /// The listener it arrived on.
        listener: SimSocket,
        /// The new connection.
        socket: SimSocket,
        /// The remote address.
        peer: SocketAddr,
    },
    /// An open connection ended abnormally with this errno (ECONNRESET).
    Reset(SimSocket, i32),
    /// Datagrams wait on a UDP socket ([`SimStack::udp_recv_from`]).
    Datagrams(SimSocket),
    /// A connected UDP socket's peer answered with an ICMP error: this errno
    /// (ECONNREFUSED for a closed port).
    UdpError(SimSocket, i32),
}

enum Slot {
    Conn(TcpHandle),
    Listener(ListenerId),
    Udp(UdpHandle),
}

/// One stack, driven by hand: no threads, no system calls, virtual time.
pub struct SimStack {
    engine: Engine,
    now: Duration,
    slots: HashMap<SimSocket, Slot>,
    by_handle: HashMap<TcpHandle, SimSocket>,
    by_udp: HashMap<UdpHandle, SimSocket>,
    by_listener: HashMap<ListenerId, SimSocket>,
    next_id: u64,
    events: VecDeque<SimEvent>,
    /// Per listener: connections taken with `next_event`, for the backlog.
    taken: HashMap<SimSocket, Arc<AtomicU64>>,
    /// Room for the connections the engine reports touched (dropped unread).
    touched: Vec<TcpHandle>,
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl SimStack {
    /// A stack with interfaces `lo` and `ifname` (MAC `mac`), both down, as a new
    /// [`crate::Stack`] has; `seed` makes its random choices (sequence numbers).
    pub fn new(ifname: &str, mac: [u8; 6], seed: u64) -> SimStack {
        Self::with_config(NetConfig::new(ifname, mac), seed)
    }

    /// A stack with only a loopback interface.
    pub fn loopback_only(seed: u64) -> SimStack {
        Self::with_config(NetConfig::loopback_only(), seed)
    }

    fn with_config(config: NetConfig, seed: u64) -> SimStack {
        SimStack {
            engine: Engine::new(config, seed, Duration::ZERO),
            now: Duration::ZERO,
            slots: HashMap::new(),
            by_handle: HashMap::new(),
            by_udp: HashMap::new(),
            by_listener: HashMap::new(),
            next_id: 1,
            events: VecDeque::new(),
            taken: HashMap::new(),
            touched: Vec::new(),
        }
    }

    /// Takes IPv6 router advertisements or not (default: on), as
    /// [`crate::StackBuilder::accept_ra`].
    pub fn set_accept_ra(&mut self, on: bool) {
        self.engine.set_accept_ra(on);
    }

    /// Runs `ip` commands, as [`crate::Stack::cmd_output`].
    pub fn cmd(&mut self, cmds: &str) -> Result<String, CmdError> {
        self.engine.run_cmd(cmds)
    }

    /// The virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Moves the clock to `now` (never backwards).
    pub fn advance_to(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    /// Hands the stack one frame from the wire.
    pub fn receive(&mut self, frame: &[u8]) {
        self.engine.receive(self.now, frame);
        self.collect_events();
    }

    /// Lets the stack work: frames it sent itself, timers, sockets' output.
    pub fn poll(&mut self) {
        for _ in 0..64 {
            self.engine.transmit(self.now);
            if !self.engine.receive_loopback(self.now) {
                break;
            }
        }
        self.collect_events();
    }

    /// The next frame the stack sends to the wire.
    pub fn take_frame(&mut self) -> Option<Vec<u8>> {
        self.engine.next_outgoing()
    }

    /// The next event. Taking an [`SimEvent::Accepted`] frees its listener's
    /// backlog slot, as `accept` does.
    pub fn next_event(&mut self) -> Option<SimEvent> {
        let event = self.events.pop_front()?;
        if let SimEvent::Accepted { listener, .. } = &event {
            if let Some(taken) = self.taken.get(listener) {
                taken.fetch_add(1, Ordering::Relaxed);
            }
        }
        Some(event)
    }

    /// How long until the stack needs [`SimStack::poll`] again for its timers.
    pub fn poll_delay(&mut self) -> Option<Duration> {
        self.engine.poll_delay(self.now)
    }

    fn new_socket(&mut self, slot: Slot) -> SimSocket {
        let socket = SimSocket(self.next_id);
        self.next_id += 1;
        match slot {
            Slot::Conn(handle) => {
                self.by_handle.insert(handle, socket);
            }
            Slot::Listener(id) => {
                self.by_listener.insert(id, socket);
            }
            Slot::Udp(handle) => {
                self.by_udp.insert(handle, socket);
            }
        }
        self.slots.insert(socket, slot);
        socket
    }

    fn collect_events(&mut self) {
        // A program here reads its sockets when it likes: which connections a
        // frame touched is the pump's business, not its.
        self.touched.clear();
        self.engine.take_touched(&mut self.touched);
        while let Some(event) = self.engine.next_event() {
            let event = match event {
                Event::Connected(h) => self.by_handle.get(&h).map(|&s| SimEvent::Connected(s)),
                Event::ConnectFailed(h, e) => self
                    .by_handle
                    .remove(&h)
                    .map(|s| SimEvent::ConnectFailed(s, e)),
                Event::Aborted(h, e) => self.by_handle.get(&h).map(|&s| SimEvent::Reset(s, e)),
                Event::UdpReadable(h) => self.by_udp.get(&h).map(|&s| SimEvent::Datagrams(s)),
                Event::UdpDropped(_) => None,
                // The simulation starts no DHCP client.
                Event::Dhcp(_) => None,
                Event::UdpError(h) => match self.engine.udp_take_error(h) {
                    Some(e) => self.by_udp.get(&h).map(|&s| SimEvent::UdpError(s, e)),
                    None => None,
                },
                Event::Accepted {
                    listener,
                    handle,
                    peer,
                    ..
                } => match self.by_listener.get(&listener).copied() {
                    Some(listener) => {
                        let socket = self.new_socket(Slot::Conn(handle));
                        Some(SimEvent::Accepted {
                            listener,
                            socket,
                            peer,
                        })
                    }
                    None => {
                        self.engine.release(handle, true);
                        None
                    }
                },
            };
            self.events.extend(event);
        }
    }

    /// Listens on `addr` (port 0: ephemeral). Connections arrive as
    /// [`SimEvent::Accepted`]; the backlog counts those not yet taken with
    /// [`SimStack::next_event`].
    pub fn tcp_listen(&mut self, addr: SocketAddr, backlog: usize) -> io::Result<SimSocket> {
        let options = SocketOptions::default();
        let local = self.engine.bind(addr, &options)?;
        let taken = Arc::new(AtomicU64::new(0));
        let id = match self.engine.listen(local, backlog, taken.clone(), &options) {
            Ok(id) => id,
            Err(e) => {
                self.engine.unbind(local, &options);
                return Err(e);
            }
        };
        let socket = self.new_socket(Slot::Listener(id));
        self.taken.insert(socket, taken);
        Ok(socket)
    }

    /// Starts connecting to `remote`; the outcome comes as an event.
    pub fn tcp_connect(&mut self, remote: SocketAddr) -> io::Result<SimSocket> {
        let handle = self
            .engine
            .connect(remote, None, &SocketOptions::default())?;
        Ok(self.new_socket(Slot::Conn(handle)))
    }

    fn handle(&self, socket: SimSocket) -> io::Result<TcpHandle> {
        match self.slots.get(&socket) {
            // The engine reuses a forgotten socket's handle: it is ours only while
            // it still maps back to this socket.
            Some(Slot::Conn(handle)) if self.by_handle.get(handle) == Some(&socket) => Ok(*handle),
            Some(_) => Err(errno(libc::ENOTCONN)),
            None => Err(errno(libc::EBADF)),
        }
    }

    fn conn(&mut self, socket: SimSocket) -> io::Result<&mut tcp::Socket<'static>> {
        let handle = self.handle(socket)?;
        Ok(self.engine.tcp(handle))
    }

    /// Queues bytes for sending; `WouldBlock` when the send ring is full.
    pub fn send(&mut self, socket: SimSocket, data: &[u8]) -> io::Result<usize> {
        let tcp = self.conn(socket)?;
        if !tcp.may_send() {
            return Err(errno(match tcp.state() {
                tcp::State::SynSent | tcp::State::SynReceived => libc::ENOTCONN,
                _ => libc::EPIPE,
            }));
        }
        match tcp.send_slice(data) {
            Ok(0) if !data.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(_) => Err(errno(libc::EPIPE)),
        }
    }

    /// Takes received bytes: `Ok(0)` at end of stream, `WouldBlock` when none wait.
    pub fn recv(&mut self, socket: SimSocket, buf: &mut [u8]) -> io::Result<usize> {
        let handle = self.handle(socket)?;
        if buf.is_empty() {
            return Ok(0);
        }
        let mut copied = 0;
        self.engine.recv_with(handle, |bytes| {
            let n = bytes.len().min(buf.len() - copied);
            buf[copied..copied + n].copy_from_slice(&bytes[..n]);
            copied += n;
            Ok(n)
        })?;
        if copied > 0 {
            return Ok(copied);
        }
        if self.engine.recv_finished(handle) {
            return Ok(0);
        }
        match self.engine.tcp(handle).state() {
            tcp::State::Closed => Err(errno(libc::ENOTCONN)),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Sends FIN once the queued bytes are out; receiving goes on.
    pub fn shutdown_write(&mut self, socket: SimSocket) -> io::Result<()> {
        self.conn(socket)?.close();
        Ok(())
    }

    /// Lets go of a socket: a connection closes gracefully in the background, a
    /// listener stops.
    pub fn close(&mut self, socket: SimSocket) {
        self.let_go(socket, false);
    }

    /// Lets go of a connection with RST.
    pub fn abort(&mut self, socket: SimSocket) {
        self.let_go(socket, true);
    }

    fn let_go(&mut self, socket: SimSocket, reset: bool) {
        match self.slots.remove(&socket) {
            // A connection whose connect failed is already gone from the engine.
            Some(Slot::Conn(handle)) if self.by_handle.get(&handle) == Some(&socket) => {
                self.by_handle.remove(&handle);
                self.engine.release(handle, reset);
            }
            Some(Slot::Conn(_)) => {}
            Some(Slot::Listener(id)) => {
                self.by_listener.remove(&id);
                self.taken.remove(&socket);
                self.engine.unlisten(id);
            }
            Some(Slot::Udp(handle)) => {
                self.by_udp.remove(&handle);
                self.engine.udp_close(handle);
            }
            None => {}
        }
    }

    fn udp(&self, socket: SimSocket) -> io::Result<UdpHandle> {
        match self.slots.get(&socket) {
            Some(Slot::Udp(handle)) => Ok(*handle),
            Some(_) => Err(errno(libc::ENOTSOCK)),
            None => Err(errno(libc::EBADF)),
        }
    }

    /// Opens a UDP socket bound to `addr` (port 0: ephemeral).
    pub fn udp_bind(&mut self, addr: SocketAddr) -> io::Result<SimSocket> {
        let (handle, _) = self.engine.udp_open(addr, &SocketOptions::default())?;
        Ok(self.new_socket(Slot::Udp(handle)))
    }

    /// Opens a ping socket (ICMP echo, as Linux's `SOCK_DGRAM` + `IPPROTO_ICMP`) for
    /// `addr`'s family; its identifier is chosen (see
    /// [`SimStack::udp_local_addr`]'s port). It works with the `udp_*` calls: send
    /// echo requests with [`SimStack::udp_send_to`] (any port), receive the
    /// replies with [`SimStack::udp_recv_from`].
    pub fn ping_bind(&mut self, addr: std::net::IpAddr) -> io::Result<SimSocket> {
        let (handle, _) = self
            .engine
            .ping_open(SocketAddr::new(addr, 0), &SocketOptions::default())?;
        Ok(self.new_socket(Slot::Udp(handle)))
    }

    /// Connects a UDP socket to `remote` (`None`: dissolves the association);
    /// returns its local address.
    pub fn udp_connect(
        &mut self,
        socket: SimSocket,
        remote: Option<SocketAddr>,
    ) -> io::Result<SocketAddr> {
        let handle = self.udp(socket)?;
        self.engine.udp_connect(handle, remote)
    }

    /// The address a UDP socket is bound to (after a connect, the one its route
    /// picked).
    pub fn udp_local_addr(&self, socket: SimSocket) -> io::Result<SocketAddr> {
        let handle = self.udp(socket)?;
        let (local, _) = self
            .engine
            .udp_addrs(handle)
            .ok_or_else(|| errno(libc::EBADF))?;
        Ok(local)
    }

    /// Queues a datagram to `dest` (`None`: the connected peer), with the errors
    /// `sendto(2)` gives; `WouldBlock` when the send ring is full.
    pub fn udp_send_to(
        &mut self,
        socket: SimSocket,
        dest: Option<SocketAddr>,
        data: &[u8],
    ) -> io::Result<()> {
        let handle = self.udp(socket)?;
        self.engine.udp_send(handle, dest, data)
    }

    /// Takes the next datagram and its sender; `WouldBlock` when none waits.
    pub fn udp_recv_from(&mut self, socket: SimSocket) -> io::Result<(Vec<u8>, SocketAddr)> {
        let handle = self.udp(socket)?;
        match self.engine.udp_recv(handle) {
            Some(datagram) => Ok((datagram.data, datagram.peer)),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// `SO_BROADCAST` of a UDP socket.
    pub fn udp_set_broadcast(&mut self, socket: SimSocket, on: bool) -> io::Result<()> {
        self.udp_update(socket, |o| o.broadcast = on)
    }

    /// `SO_RCVBUF` of a UDP socket: the bytes its receive queue holds before it
    /// drops (each datagram counts its length plus a fixed overhead).
    pub fn udp_set_recv_buffer(&mut self, socket: SimSocket, bytes: usize) -> io::Result<()> {
        self.udp_update(socket, |o| o.recv_buffer = Some(bytes))
    }

    fn udp_update(
        &mut self,
        socket: SimSocket,
        change: impl FnOnce(&mut SocketOptions),
    ) -> io::Result<()> {
        let handle = self.udp(socket)?;
        let mut options = self
            .engine
            .udp_options(handle)
            .ok_or_else(|| errno(libc::EBADF))?;
        change(&mut options);
        self.engine.udp_set_options(handle, &options);
        Ok(())
    }

    /// Datagrams a UDP socket dropped because its receive queue was full.
    pub fn udp_drops(&self, socket: SimSocket) -> io::Result<u64> {
        Ok(self.engine.udp_drops(self.udp(socket)?))
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&mut self, socket: SimSocket, on: bool) -> io::Result<()> {
        self.conn(socket)?.set_nagle_enabled(!on);
        Ok(())
    }

    /// `TCP_CONGESTION`: `cubic` (the default) or `reno`; `ENOENT` for any
    /// other name, as Linux for a controller it does not have.
    pub fn set_congestion(&mut self, socket: SimSocket, name: &str) -> io::Result<()> {
        let congestion = crate::engine::Congestion::from_name(name.as_bytes())
            .ok_or_else(|| errno(libc::ENOENT))?;
        let handle = self.handle(socket)?;
        self.engine.set_congestion(handle, congestion);
        Ok(())
    }

    /// The congestion window (`tcpi_snd_cwnd`, in bytes here) and the bytes
    /// sent and not acknowledged of a connection.
    pub fn congestion_window(&self, socket: SimSocket) -> io::Result<(usize, usize)> {
        let stats = self
            .engine
            .tcp_stats(self.handle(socket)?)
            .ok_or_else(|| errno(libc::ENOTCONN))?;
        Ok((stats.flow.flight_peak, stats.flow.in_flight))
    }
}

/// Stacks on an in-memory hub (every frame reaches every other stack) with one
/// virtual clock.
pub struct SimNetwork {
    stacks: Vec<SimStack>,
    now: Duration,
    frames: Vec<(usize, Vec<u8>)>,
    recording: bool,
    capture: Option<PcapWriter<Box<dyn Write>>>,
}

impl Default for SimNetwork {
    fn default() -> Self {
        Self::new()
    }
}

impl SimNetwork {
    /// An empty network at time zero, recording every frame.
    pub fn new() -> SimNetwork {
        SimNetwork {
            stacks: Vec::new(),
            now: Duration::ZERO,
            frames: Vec::new(),
            recording: true,
            capture: None,
        }
    }

    /// Plugs a stack in; returns its index.
    pub fn add(&mut self, mut stack: SimStack) -> usize {
        stack.advance_to(self.now);
        self.stacks.push(stack);
        self.stacks.len() - 1
    }

    /// The stack at `index`.
    pub fn stack(&mut self, index: usize) -> &mut SimStack {
        &mut self.stacks[index]
    }

    /// The virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Keeps (or stops keeping) every frame for [`SimNetwork::frames`].
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Every frame sent while recording: the sender's index and the bytes.
    pub fn frames(&self) -> &[(usize, Vec<u8>)] {
        &self.frames
    }

    /// Writes every frame from now on to `out` as a pcap capture, stamped with
    /// virtual time.
    pub fn capture(&mut self, out: impl Write + 'static) -> io::Result<()> {
        self.capture = Some(PcapWriter::new(Box::new(out) as Box<dyn Write>)?);
        Ok(())
    }

    /// Delivers frames until the network is quiet (a bounded number of rounds),
    /// then advances the clock by `dt` and lets the stacks' timers run.
    pub fn step(&mut self, dt: Duration) {
        for _ in 0..10_000 {
            let mut in_flight = Vec::new();
            for (index, stack) in self.stacks.iter_mut().enumerate() {
                stack.poll();
                while let Some(frame) = stack.take_frame() {
                    in_flight.push((index, frame));
                }
            }
            if in_flight.is_empty() {
                break;
            }
            for (from, frame) in in_flight {
                if let Some(capture) = &mut self.capture {
                    let _ = capture.write_frame(self.now, &frame);
                }
                for (index, stack) in self.stacks.iter_mut().enumerate() {
                    if index != from {
                        stack.receive(&frame);
                    }
                }
                if self.recording {
                    self.frames.push((from, frame));
                }
            }
        }
        self.now += dt;
        for stack in &mut self.stacks {
            stack.advance_to(self.now);
            stack.poll();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_stacks() -> SimNetwork {
        let mut net = SimNetwork::new();
        for i in 1..=2u8 {
            let index = net.add(SimStack::new("vde0", [2, 0, 0, 0, 0, i], i as u64));
            net.stack(index)
                .cmd(&format!(
                    "/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.{i}/24 dev vde0"
                ))
                .unwrap();
        }
        net
    }

    /// A whole exchange; returns the frames and what the server received.
    fn exchange() -> (Vec<(usize, Vec<u8>)>, Vec<u8>) {
        let mut net = two_stacks();
        let listener = net
            .stack(0)
            .tcp_listen("0.0.0.0:80".parse().unwrap(), 4)
            .unwrap();
        let client = net
            .stack(1)
            .tcp_connect("10.0.0.1:80".parse().unwrap())
            .unwrap();
        net.step(Duration::from_millis(1));
        assert_eq!(net.stack(1).next_event(), Some(SimEvent::Connected(client)));
        let server = match net.stack(0).next_event() {
            Some(SimEvent::Accepted {
                listener: l,
                socket,
                ..
            }) if l == listener => socket,
            other => panic!("{other:?}"),
        };
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..10_000 {
            if sent < data.len() {
                match net.stack(1).send(client, &data[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
                }
                if sent == data.len() {
                    net.stack(1).shutdown_write(client).unwrap();
                }
            }
            net.step(Duration::from_millis(1));
            loop {
                match net.stack(0).recv(server, &mut buf) {
                    Ok(0) => return (net.frames().to_vec(), got),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                        break;
                    }
                }
            }
        }
        panic!("the transfer did not finish");
    }

    #[test]
    fn transfers_are_exact_and_repeatable() {
        let (frames, got) = exchange();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(got, data);
        let (again, _) = exchange();
        assert_eq!(frames, again, "same inputs, same frames");
    }

    /// Several connections at once: events and frames come in the same order on
    /// every run (the engine's tables must not iterate in hash order).
    #[test]
    fn many_connections_are_repeatable() {
        fn run() -> (Vec<(usize, Vec<u8>)>, Vec<SimEvent>) {
            let mut net = two_stacks();
            net.stack(0)
                .tcp_listen("0.0.0.0:80".parse().unwrap(), 64)
                .unwrap();
            for _ in 0..20 {
                net.stack(1)
                    .tcp_connect("10.0.0.1:80".parse().unwrap())
                    .unwrap();
            }
            let mut events = Vec::new();
            for _ in 0..5 {
                net.step(Duration::from_millis(1));
                for i in 0..2 {
                    events.extend(std::iter::from_fn(|| net.stack(i).next_event()));
                }
            }
            (net.frames().to_vec(), events)
        }
        let first = run();
        assert_eq!(first.1.len(), 40, "20 connected, 20 accepted");
        for _ in 0..3 {
            assert_eq!(run(), first);
        }
    }

    /// Bytes the application has not read survive the end of TIME-WAIT, when
    /// smoltcp resets the socket (found by the api fuzz target).
    #[test]
    fn unread_data_outlives_time_wait() {
        let mut net = two_stacks();
        net.stack(0)
            .tcp_listen("0.0.0.0:80".parse().unwrap(), 4)
            .unwrap();
        let client = net
            .stack(1)
            .tcp_connect("10.0.0.1:80".parse().unwrap())
            .unwrap();
        net.step(Duration::from_millis(1));
        let server = loop {
            match net.stack(0).next_event() {
                Some(SimEvent::Accepted { socket, .. }) => break socket,
                Some(_) => continue,
                None => panic!("no connection"),
            }
        };
        // The server closes first, so it is the one that waits in TIME-WAIT.
        net.stack(0).shutdown_write(server).unwrap();
        net.step(Duration::from_millis(1));
        net.stack(1).send(client, b"read me later").unwrap();
        net.stack(1).shutdown_write(client).unwrap();
        for _ in 0..30 {
            net.step(Duration::from_secs(1));
        }
        let mut buf = [0u8; 64];
        let n = net.stack(0).recv(server, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"read me later");
        assert_eq!(net.stack(0).recv(server, &mut buf).unwrap(), 0, "then EOF");
    }

    /// A socket whose connect failed never reaches a later connection that got
    /// its engine handle (found by the api fuzz target).
    #[test]
    fn a_failed_socket_does_not_reach_its_handles_next_owner() {
        let mut net = two_stacks();
        let refused = net
            .stack(1)
            .tcp_connect("10.0.0.1:81".parse().unwrap())
            .unwrap();
        net.step(Duration::from_millis(1));
        net.stack(0)
            .tcp_listen("0.0.0.0:80".parse().unwrap(), 4)
            .unwrap();
        for _ in 0..5 {
            net.step(Duration::from_secs(1));
        }
        let client = net
            .stack(1)
            .tcp_connect("10.0.0.1:80".parse().unwrap())
            .unwrap();
        net.step(Duration::from_millis(1));
        assert!(net.stack(1).send(client, b"ok").is_ok());
        let err = net.stack(1).send(refused, b"XYZ").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN));
        net.stack(1).close(refused);
        assert!(net.stack(1).send(client, b"still open").is_ok());
    }

    /// Two stacks on a wire the test can cut.
    fn wired() -> (SimStack, SimStack, SimSocket) {
        let mut a = SimStack::new("vde0", [2, 0, 0, 0, 0, 1], 1);
        let mut b = SimStack::new("vde0", [2, 0, 0, 0, 0, 2], 2);
        a.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.1/24 dev vde0")
            .unwrap();
        b.cmd("/bin/ip link set vde0 up; /bin/ip addr add 10.0.0.2/24 dev vde0")
            .unwrap();
        b.tcp_listen("0.0.0.0:80".parse().unwrap(), 4).unwrap();
        let client = a.tcp_connect("10.0.0.2:80".parse().unwrap()).unwrap();
        for _ in 0..20 {
            a.poll();
            b.poll();
            while let Some(f) = a.take_frame() {
                b.receive(&f);
            }
            while let Some(f) = b.take_frame() {
                a.receive(&f);
            }
        }
        assert_eq!(a.next_event(), Some(SimEvent::Connected(client)));
        (a, b, client)
    }

    /// Lets `seconds` of virtual time pass for `a` alone (its frames go nowhere).
    fn alone(a: &mut SimStack, seconds: u64) -> Vec<SimEvent> {
        let mut events = Vec::new();
        for _ in 0..seconds {
            let next = a.now() + Duration::from_secs(1);
            a.advance_to(next);
            a.poll();
            while a.take_frame().is_some() {}
            events.extend(std::iter::from_fn(|| a.next_event()));
        }
        events
    }

    #[test]
    fn a_silent_peer_times_out_only_with_data_outstanding() {
        let (mut a, _b, client) = wired();
        // Idle: nothing to acknowledge, nothing to give up on (as on Linux).
        assert_eq!(alone(&mut a, 600), vec![]);
        // Bytes the vanished peer never acknowledges: ETIMEDOUT after GIVE_UP.
        a.send(client, b"hello?").unwrap();
        let events = alone(&mut a, crate::engine::GIVE_UP.as_secs() + 30);
        assert_eq!(events, vec![SimEvent::Reset(client, libc::ETIMEDOUT)]);
    }

    #[test]
    fn captures_are_pcap() {
        let mut net = two_stacks();
        let path = std::env::temp_dir().join(format!("vdestack-sim-{}.pcap", std::process::id()));
        net.capture(std::fs::File::create(&path).unwrap()).unwrap();
        net.stack(1)
            .tcp_connect("10.0.0.1:80".parse().unwrap())
            .unwrap();
        net.step(Duration::from_millis(1));
        drop(net);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
        // ARP request, ARP reply, SYN, RST: at least four records after the header.
        let mut at = 24;
        let mut records = 0;
        while at + 16 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            at += 16 + len;
            records += 1;
        }
        assert_eq!(at, bytes.len(), "records end where the file does");
        assert!(records >= 4, "{records} records");
    }

    #[test]
    fn refused_and_misuse_are_errors() {
        let mut net = two_stacks();
        let client = net
            .stack(1)
            .tcp_connect("10.0.0.1:81".parse().unwrap())
            .unwrap();
        net.step(Duration::from_millis(1));
        assert_eq!(
            net.stack(1).next_event(),
            Some(SimEvent::ConnectFailed(client, libc::ECONNREFUSED))
        );
        let err = net.stack(1).send(client, b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN));
        net.stack(1).close(client);
        let err = net.stack(1).send(client, b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }
}
