//! The engine's TCP connections, each in a smoltcp `SocketSet` of its own, and the
//! indexes that make a pump step cost what is ready rather than what exists.
//!
//! smoltcp's interface walks the whole set it is given: for every frame it takes
//! in (to find the socket a segment is for), for every `poll_egress` (each socket
//! gets its turn to send), and for `poll_at`. With every connection in one set,
//! each packet and each pump step paid for all of them: with 4,000 connections
//! open, a connect/accept/close cycle ran 30 times slower than on an empty stack.
//! So every connection lives in a set of one here, and the engine chooses which
//! set smoltcp sees:
//! - a segment finds its connection by its 4-tuple ([`TcpTable::lookup`]);
//!   smoltcp then walks a set of one (or an empty one, and answers with RST);
//! - egress is polled only for connections marked dirty ([`TcpTable::mark`]): a
//!   segment arrived for it, the application wrote, read, closed or changed an
//!   option, or one of its timers came due;
//! - the timers (smoltcp's own `poll_at` and the engine's connect, keep-alive and
//!   orphan deadlines) wait in a binary heap ([`TcpTable::schedule`]), so the
//!   next wake-up is its top, not a scan;
//! - a connection whose last send waited for an unresolved neighbour is noted
//!   ([`TcpTable::wait_for_neighbor`]) and polled again when ARP or neighbour
//!   discovery brings news, instead of at the end of smoltcp's 1 s silence;
//! - the pump learns which connections a frame or a timer touched
//!   ([`TcpTable::take_touched`]) and serves only those.
//!
//! Handles carry a generation, so that a handle kept after its connection was
//! forgotten never reaches the connection that reuses its slot.

use super::flow_hash::FlowMap;
use super::frames::Flow;
use super::Conn;
use smoltcp::iface::{SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Names a TCP connection (or a listener's embryo) inside the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TcpHandle {
    index: u32,
    generation: u32,
}

impl TcpHandle {
    /// The least and the greatest handle (bounds of ranges of ordered sets).
    pub(crate) const MIN: TcpHandle = TcpHandle {
        index: 0,
        generation: 0,
    };
    pub(crate) const MAX: TcpHandle = TcpHandle {
        index: u32::MAX,
        generation: u32::MAX,
    };

    /// A handle that names no connection of any table made so far (tests of the
    /// layers above, which only compare handles).
    #[cfg(test)]
    pub(crate) fn for_tests(index: u32) -> TcpHandle {
        TcpHandle {
            index,
            generation: u32::MAX,
        }
    }
}

/// One connection: its smoltcp socket alone in its set, the engine's record of
/// it, and its place in the table's indexes.
pub(super) struct TcpEntry {
    set: SocketSet<'static>,
    inner: SocketHandle,
    pub(super) conn: Conn,
    /// The 4-tuple it is found by, once known.
    flow: Option<Flow>,
    /// In `dirty`: egress and a look are due at the next transmit.
    dirty: bool,
    /// In `touched`: the pump has not heard of the last change yet.
    touched: bool,
    /// In `waiting`: its last send waited for a neighbour.
    waiting: bool,
    /// When smoltcp's silence after its last send found the neighbour
    /// missing ends, while it waits: kept when news wakes it, so that a wake
    /// for another neighbour's news finds it still waiting for its own.
    silence: Option<Duration>,
    /// The deadline it has in the heap (others there for it are stale).
    scheduled: Option<Duration>,
}

impl TcpEntry {
    /// The smoltcp socket.
    pub(super) fn socket(&self) -> &tcp::Socket<'static> {
        self.set.get::<tcp::Socket>(self.inner)
    }

    /// The smoltcp socket, to change.
    pub(super) fn socket_mut(&mut self) -> &mut tcp::Socket<'static> {
        self.set.get_mut::<tcp::Socket>(self.inner)
    }

    /// The record and the socket at once.
    pub(super) fn parts(&mut self) -> (&mut Conn, &mut tcp::Socket<'static>) {
        (&mut self.conn, self.set.get_mut::<tcp::Socket>(self.inner))
    }

    /// The set of one that smoltcp's interface is given for this connection.
    pub(super) fn set_mut(&mut self) -> &mut SocketSet<'static> {
        &mut self.set
    }

    /// The set, read-only (for `Interface::poll_at`).
    pub(super) fn set(&self) -> &SocketSet<'static> {
        &self.set
    }
}

#[derive(Default)]
struct Slot {
    generation: u32,
    entry: Option<TcpEntry>,
}

/// Every TCP connection of an engine, and what is ready among them (see the
/// module doc).
#[derive(Default)]
pub(super) struct TcpTable {
    slots: Vec<Slot>,
    /// Empty slots, reused last-freed first (the same in every run).
    free: Vec<u32>,
    live: usize,
    flows: FlowMap<Flow, TcpHandle>,
    /// The entry of `flows` [`TcpTable::lookup`] found last: a segment's
    /// 4-tuple is looked up several times on its way in, and in bulk the
    /// next segment is of the same flow, so a comparison answers where a
    /// hash and a probe did. Its invariant: an entry `flows` holds (it is
    /// forgotten wherever `flows` changes).
    last_found: Cell<Option<(Flow, TcpHandle)>>,
    dirty: Vec<TcpHandle>,
    touched: Vec<TcpHandle>,
    waiting: Vec<TcpHandle>,
    timers: BinaryHeap<Reverse<(Duration, TcpHandle)>>,
}

impl TcpTable {
    /// Adds a connection; it starts dirty (a connect has a SYN to send).
    pub(super) fn insert(&mut self, socket: tcp::Socket<'static>, conn: Conn) -> TcpHandle {
        let mut set = SocketSet::new(vec![SocketStorage::EMPTY]);
        let inner = set.add(socket);
        let entry = TcpEntry {
            set,
            inner,
            conn,
            flow: None,
            dirty: false,
            touched: false,
            waiting: false,
            silence: None,
            scheduled: None,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = Some(entry);
        self.live += 1;
        let handle = TcpHandle {
            index,
            generation: slot.generation,
        };
        self.mark(handle);
        handle
    }

    /// The connection `handle` names, if it is still there.
    pub(super) fn get(&self, handle: TcpHandle) -> Option<&TcpEntry> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    /// The connection `handle` names, to change.
    pub(super) fn get_mut(&mut self, handle: TcpHandle) -> Option<&mut TcpEntry> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Takes a connection out; its handle names nothing from now on.
    pub(super) fn remove(&mut self, handle: TcpHandle) -> Option<TcpEntry> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(handle.index);
        self.live -= 1;
        if let Some(flow) = entry.flow {
            if self.flows.get(&flow) == Some(&handle) {
                self.flows.remove(&flow);
                self.last_found.set(None);
            }
        }
        Some(entry)
    }

    /// How many connections there are.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// Whether there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every connection's handle, in slot order (for what concerns them all: a
    /// configuration change).
    pub(super) fn handles(&self) -> Vec<TcpHandle> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.entry.is_some())
            .map(|(index, slot)| TcpHandle {
                index: index as u32,
                generation: slot.generation,
            })
            .collect()
    }

    /// Files a connection under its 4-tuple (our address and port, the peer's):
    /// segments of that flow go to it.
    pub(super) fn set_flow(&mut self, handle: TcpHandle, flow: Flow) {
        let Some(entry) = self.get_mut(handle) else {
            return;
        };
        let old = entry.flow.replace(flow);
        if let Some(old) = old.filter(|old| *old != flow) {
            if self.flows.get(&old) == Some(&handle) {
                self.flows.remove(&old);
            }
        }
        self.flows.insert(flow, handle);
        self.last_found.set(None);
    }

    /// The connection segments of `flow` are for.
    pub(super) fn lookup(&self, flow: &Flow) -> Option<TcpHandle> {
        if let Some((last, handle)) = self.last_found.get() {
            if last == *flow {
                return Some(handle);
            }
        }
        let handle = self.flows.get(flow).copied()?;
        self.last_found.set(Some((*flow, handle)));
        Some(handle)
    }

    /// Marks a connection for egress and a look at the next transmit.
    pub(super) fn mark(&mut self, handle: TcpHandle) {
        if let Some(entry) = self.get_mut(handle) {
            if !entry.dirty {
                entry.dirty = true;
                self.dirty.push(handle);
            }
        }
    }

    /// Whether some connection is marked.
    pub(super) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Moves the marked connections into `out` (in the order they were marked)
    /// and clears their marks: marking one again while it is served queues it
    /// for the next transmit.
    pub(super) fn take_dirty(&mut self, out: &mut Vec<TcpHandle>) {
        std::mem::swap(&mut self.dirty, out);
        for &handle in out.iter() {
            if let Some(entry) = self.get_mut(handle) {
                entry.dirty = false;
            }
        }
    }

    /// Notes that something the pump serves changed on a connection.
    pub(super) fn touch(&mut self, handle: TcpHandle) {
        if let Some(entry) = self.get_mut(handle) {
            if !entry.touched {
                entry.touched = true;
                self.touched.push(handle);
            }
        }
    }

    /// Appends the touched connections to `out` and forgets them.
    pub(super) fn take_touched(&mut self, out: &mut Vec<TcpHandle>) {
        for handle in std::mem::take(&mut self.touched) {
            if let Some(entry) = self.get_mut(handle) {
                entry.touched = false;
                out.push(handle);
            }
        }
    }

    /// Notes a connection whose last send waited for its neighbour's address,
    /// silent (smoltcp sends no more) until `until`.
    pub(super) fn wait_for_neighbor(&mut self, handle: TcpHandle, until: Duration) {
        if let Some(entry) = self.get_mut(handle) {
            entry.silence = Some(until);
            if !entry.waiting {
                entry.waiting = true;
                self.waiting.push(handle);
            }
        }
    }

    /// When the silence of the connection's wait for a neighbour ends, if it
    /// waits for one.
    pub(super) fn neighbor_silence(&self, handle: TcpHandle) -> Option<Duration> {
        self.get(handle).and_then(|entry| entry.silence)
    }

    /// The connection waits for no neighbour (any more).
    pub(super) fn stop_waiting(&mut self, handle: TcpHandle) {
        if let Some(entry) = self.get_mut(handle) {
            entry.silence = None;
        }
    }

    /// Neighbour news came: every connection waiting for one tries again.
    pub(super) fn wake_neighbor_waiters(&mut self) {
        for handle in std::mem::take(&mut self.waiting) {
            if let Some(entry) = self.get_mut(handle) {
                entry.waiting = false;
            }
            self.mark(handle);
        }
    }

    /// Sets when a connection next needs a transmit (`None`: only when something
    /// happens to it). A deadline already passed marks it at once.
    pub(super) fn schedule(&mut self, handle: TcpHandle, at: Option<Duration>, now: Duration) {
        let Some(entry) = self.get_mut(handle) else {
            return;
        };
        match at {
            Some(at) if at <= now => {
                entry.scheduled = None;
                self.mark(handle);
            }
            Some(at) => {
                if entry.scheduled != Some(at) {
                    entry.scheduled = Some(at);
                    self.timers.push(Reverse((at, handle)));
                    self.compact();
                }
            }
            None => entry.scheduled = None,
        }
    }

    /// Marks every connection whose deadline has come.
    pub(super) fn wake_due(&mut self, now: Duration) {
        while let Some(&Reverse((at, handle))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(entry) = self.get_mut(handle) {
                if entry.scheduled == Some(at) {
                    entry.scheduled = None;
                    self.mark(handle);
                }
            }
        }
    }

    /// The earliest deadline of any connection.
    pub(super) fn next_deadline(&mut self) -> Option<Duration> {
        while let Some(&Reverse((at, handle))) = self.timers.peek() {
            if self.get(handle).is_some_and(|e| e.scheduled == Some(at)) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Rebuilds the heap from the live deadlines once stale ones (a connection
    /// rescheduled, or gone) outnumber them, so that it stays in proportion to
    /// the connections.
    fn compact(&mut self) {
        if self.timers.len() <= 2 * self.live + 64 {
            return;
        }
        let live: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                let at = slot.entry.as_ref()?.scheduled?;
                let handle = TcpHandle {
                    index: index as u32,
                    generation: slot.generation,
                };
                Some(Reverse((at, handle)))
            })
            .collect();
        self.timers = BinaryHeap::from(live);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Phase, SocketOptions, TcpState};
    use std::net::{IpAddr, Ipv4Addr};

    const MS: Duration = Duration::from_millis(1);

    fn socket() -> tcp::Socket<'static> {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 64]),
            tcp::SocketBuffer::new(vec![0; 64]),
        )
    }

    fn conn() -> Conn {
        Conn::new(Phase::Open, TcpState::Closed, 80, SocketOptions::default())
    }

    fn flow(peer_port: u16) -> Flow {
        let ip = |last| IpAddr::V4(Ipv4Addr::new(10, 0, 0, last));
        (ip(1), 80, ip(2), peer_port)
    }

    fn drain_dirty(table: &mut TcpTable) -> Vec<TcpHandle> {
        let mut out = Vec::new();
        table.take_dirty(&mut out);
        out
    }

    #[test]
    fn a_segment_finds_its_connection_by_flow_and_a_gone_one_finds_nothing() {
        let mut table = TcpTable::default();
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let h = table.insert(socket(), conn());
                table.set_flow(h, flow(40_000 + i));
                h
            })
            .collect();
        assert_eq!(table.lookup(&flow(40_042)), Some(handles[42]));
        assert_eq!(table.lookup(&flow(39_999)), None);
        assert!(table.remove(handles[42]).is_some());
        assert_eq!(table.lookup(&flow(40_042)), None);
        // Its slot is reused, under another generation: the old handle is dead.
        let again = table.insert(socket(), conn());
        assert_ne!(again, handles[42]);
        assert!(table.get(handles[42]).is_none() && table.get(again).is_some());
        assert!(table.remove(handles[42]).is_none());
        assert_eq!(table.len(), 100);
        // Filed anew under another flow right after it was found under the
        // old one: the old flow finds nothing, the new one finds it.
        assert_eq!(table.lookup(&flow(40_007)), Some(handles[7]));
        table.set_flow(handles[7], flow(50_007));
        assert_eq!(table.lookup(&flow(40_007)), None);
        assert_eq!(table.lookup(&flow(50_007)), Some(handles[7]));
    }

    #[test]
    fn only_marked_connections_are_served_once_each_in_order() {
        let mut table = TcpTable::default();
        let a = table.insert(socket(), conn());
        let b = table.insert(socket(), conn());
        let c = table.insert(socket(), conn());
        assert_eq!(drain_dirty(&mut table), [a, b, c], "new ones start marked");
        assert!(!table.has_dirty());
        table.mark(c);
        table.mark(a);
        table.mark(c);
        assert_eq!(drain_dirty(&mut table), [c, a], "b did not change");
        table.mark(b);
        table.remove(b);
        assert!(drain_dirty(&mut table)
            .iter()
            .all(|h| table.get(*h).is_none()));
    }

    #[test]
    fn timers_wake_in_deadline_order_and_rescheduling_replaces() {
        let mut table = TcpTable::default();
        let a = table.insert(socket(), conn());
        let b = table.insert(socket(), conn());
        let c = table.insert(socket(), conn());
        drain_dirty(&mut table);
        table.schedule(a, Some(30 * MS), Duration::ZERO);
        table.schedule(b, Some(10 * MS), Duration::ZERO);
        table.schedule(c, Some(20 * MS), Duration::ZERO);
        // b moves later; its old deadline is stale.
        table.schedule(b, Some(40 * MS), Duration::ZERO);
        assert_eq!(table.next_deadline(), Some(20 * MS));
        table.wake_due(25 * MS);
        assert_eq!(drain_dirty(&mut table), [c]);
        table.wake_due(35 * MS);
        assert_eq!(drain_dirty(&mut table), [a]);
        table.remove(b);
        assert_eq!(table.next_deadline(), None, "a gone connection's timer");
        // A deadline already passed marks at once.
        table.schedule(c, Some(MS), 2 * MS);
        assert_eq!(drain_dirty(&mut table), [c]);
    }

    #[test]
    fn the_heap_stays_in_proportion_to_the_connections() {
        let mut table = TcpTable::default();
        let a = table.insert(socket(), conn());
        for i in 1..10_000u64 {
            table.schedule(a, Some(Duration::from_micros(i)), Duration::ZERO);
        }
        assert!(table.timers.len() <= 2 + 64 + 1, "{}", table.timers.len());
        assert_eq!(table.next_deadline(), Some(Duration::from_micros(9_999)));
    }

    #[test]
    fn touches_and_neighbor_waits_are_reported_once() {
        let mut table = TcpTable::default();
        let a = table.insert(socket(), conn());
        let b = table.insert(socket(), conn());
        drain_dirty(&mut table);
        table.touch(b);
        table.touch(b);
        table.touch(a);
        let mut touched = Vec::new();
        table.take_touched(&mut touched);
        assert_eq!(touched, [b, a]);
        table.wait_for_neighbor(a, Duration::from_secs(1));
        table.wait_for_neighbor(a, Duration::from_secs(1));
        assert!(!table.has_dirty());
        table.wake_neighbor_waiters();
        assert_eq!(drain_dirty(&mut table), [a]);
        table.wake_neighbor_waiters();
        assert!(!table.has_dirty(), "woken once");
    }
}
