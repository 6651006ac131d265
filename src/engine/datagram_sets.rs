//! The engine's datagram sockets, in smoltcp sets by what finds them: one set
//! per UDP port, one for the ping sockets.
//!
//! smoltcp walks the set it is given for each datagram it takes in (to find a
//! socket on the datagram's port), for each `poll_egress` and for `poll_at`.
//! With every datagram socket in one set, a stack with a thousand UDP sockets
//! walked a thousand for each datagram in or out. A datagram's port names its
//! set here, so smoltcp walks only the sockets bound to that port (among which
//! it picks the first that takes it, as it would in one set: the others never
//! take it). Egress is polled only for the sets marked dirty (a socket in it
//! sent), or whose wait for a neighbour ended, as for TCP (see `tcp_table`).

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::AnySocket;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Which set a datagram socket lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Group {
    /// The UDP sockets bound to this port.
    Udp(u16),
    /// The ping sockets.
    Ping,
}

/// Names a datagram socket inside the engine: its set, and its place there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct DatagramHandle {
    group: Group,
    inner: SocketHandle,
}

impl DatagramHandle {
    /// The set the socket lives in.
    pub(crate) fn group(&self) -> Group {
        self.group
    }
}

struct GroupEntry {
    set: SocketSet<'static>,
    members: usize,
    /// In `dirty`.
    dirty: bool,
    /// In `waiting`.
    waiting: bool,
    /// When smoltcp's silence after a send found a neighbour missing ends,
    /// while the set waits (as `TcpEntry`'s).
    silence: Option<Duration>,
    /// Its deadline as filed in `deadlines`.
    deadline: Option<Duration>,
}

/// Every datagram socket, by set, and which sets need a poll (see the module
/// doc).
#[derive(Default)]
pub(super) struct DatagramSets {
    groups: BTreeMap<Group, GroupEntry>,
    dirty: Vec<Group>,
    waiting: Vec<Group>,
    deadlines: BTreeSet<(Duration, Group)>,
}

impl DatagramSets {
    /// Adds a socket to `group`'s set.
    pub(super) fn add<T: AnySocket<'static>>(&mut self, group: Group, socket: T) -> DatagramHandle {
        let entry = self.groups.entry(group).or_insert_with(|| GroupEntry {
            set: SocketSet::new(Vec::new()),
            members: 0,
            dirty: false,
            waiting: false,
            silence: None,
            deadline: None,
        });
        entry.members += 1;
        let inner = entry.set.add(socket);
        DatagramHandle { group, inner }
    }

    /// Takes a socket out; its set goes with its last socket.
    pub(super) fn remove(&mut self, handle: DatagramHandle) {
        let Some(entry) = self.groups.get_mut(&handle.group) else {
            return;
        };
        entry.set.remove(handle.inner);
        entry.members -= 1;
        if entry.members == 0 {
            if let Some(at) = entry.deadline {
                self.deadlines.remove(&(at, handle.group));
            }
            self.groups.remove(&handle.group);
        }
    }

    /// The socket `handle` names (panics if it names none, or another type).
    pub(super) fn get<T: AnySocket<'static>>(&self, handle: DatagramHandle) -> &T {
        self.groups[&handle.group].set.get::<T>(handle.inner)
    }

    /// The socket `handle` names, to change.
    pub(super) fn get_mut<T: AnySocket<'static>>(&mut self, handle: DatagramHandle) -> &mut T {
        self.groups
            .get_mut(&handle.group)
            .expect("a live datagram socket")
            .set
            .get_mut::<T>(handle.inner)
    }

    /// The sockets of a set, in handle order.
    pub(super) fn handles(&self, group: Group) -> Vec<DatagramHandle> {
        self.groups.get(&group).map_or_else(Vec::new, |entry| {
            entry
                .set
                .iter()
                .map(|(inner, _)| DatagramHandle { group, inner })
                .collect()
        })
    }

    /// The set smoltcp is handed for a datagram of `group`, if there is one.
    pub(super) fn set_mut(&mut self, group: Group) -> Option<&mut SocketSet<'static>> {
        self.groups.get_mut(&group).map(|e| &mut e.set)
    }

    /// The set, read-only (for `Interface::poll_at`).
    pub(super) fn set(&self, group: Group) -> Option<&SocketSet<'static>> {
        self.groups.get(&group).map(|e| &e.set)
    }

    /// Marks a set for egress at the next transmit.
    pub(super) fn mark(&mut self, group: Group) {
        if let Some(entry) = self.groups.get_mut(&group) {
            if !entry.dirty {
                entry.dirty = true;
                self.dirty.push(group);
            }
        }
    }

    /// Marks every set (the configuration changed under them).
    pub(super) fn mark_all(&mut self) {
        let groups: Vec<Group> = self.groups.keys().copied().collect();
        for group in groups {
            self.mark(group);
        }
    }

    /// Whether some set is marked.
    pub(super) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Marks the sets whose deadline came, then moves the marked ones into
    /// `out` and clears their marks.
    pub(super) fn take_due(&mut self, now: Duration, out: &mut Vec<Group>) {
        while let Some(&(at, group)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(entry) = self.groups.get_mut(&group) {
                entry.deadline = None;
            }
            self.mark(group);
        }
        std::mem::swap(&mut self.dirty, out);
        for group in out.iter() {
            if let Some(entry) = self.groups.get_mut(group) {
                entry.dirty = false;
            }
        }
    }

    /// Sets when a set next needs polling (`None`: only when one of its sockets
    /// sends). A deadline already passed marks it at once.
    pub(super) fn schedule(&mut self, group: Group, at: Option<Duration>, now: Duration) {
        let Some(entry) = self.groups.get_mut(&group) else {
            return;
        };
        if let Some(old) = entry.deadline.take() {
            self.deadlines.remove(&(old, group));
        }
        match at {
            Some(at) if at <= now => self.mark(group),
            Some(at) => {
                entry.deadline = Some(at);
                self.deadlines.insert((at, group));
            }
            None => {}
        }
    }

    /// The earliest deadline of any set.
    pub(super) fn next_deadline(&self) -> Option<Duration> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Notes a set whose last send waited for a neighbour's address, silent
    /// until `until`.
    pub(super) fn wait_for_neighbor(&mut self, group: Group, until: Duration) {
        if let Some(entry) = self.groups.get_mut(&group) {
            entry.silence = Some(until);
            if !entry.waiting {
                entry.waiting = true;
                self.waiting.push(group);
            }
        }
    }

    /// When the silence of the set's wait for a neighbour ends, if it waits.
    pub(super) fn neighbor_silence(&self, group: Group) -> Option<Duration> {
        self.groups.get(&group).and_then(|entry| entry.silence)
    }

    /// The set waits for no neighbour (any more).
    pub(super) fn stop_waiting(&mut self, group: Group) {
        if let Some(entry) = self.groups.get_mut(&group) {
            entry.silence = None;
        }
    }

    /// Neighbour news came: every set waiting for one tries again.
    pub(super) fn wake_neighbor_waiters(&mut self) {
        for group in std::mem::take(&mut self.waiting) {
            if let Some(entry) = self.groups.get_mut(&group) {
                entry.waiting = false;
            }
            self.mark(group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::socket::udp;

    fn socket() -> udp::Socket<'static> {
        let ring = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 1], vec![0; 64]);
        udp::Socket::new(ring(), ring())
    }

    #[test]
    fn sockets_are_filed_by_port_and_a_set_goes_with_its_last() {
        let mut sets = DatagramSets::default();
        let a = sets.add(Group::Udp(53), socket());
        let b = sets.add(Group::Udp(53), socket());
        let c = sets.add(Group::Udp(54), socket());
        assert_eq!(sets.handles(Group::Udp(53)), [a, b]);
        assert_eq!(sets.handles(Group::Udp(54)), [c]);
        assert!(sets.handles(Group::Udp(55)).is_empty());
        sets.remove(a);
        assert_eq!(sets.handles(Group::Udp(53)), [b]);
        sets.schedule(Group::Udp(53), Some(Duration::from_secs(1)), Duration::ZERO);
        sets.remove(b);
        assert!(sets.set(Group::Udp(53)).is_none());
        assert_eq!(sets.next_deadline(), None, "its deadline went with it");
    }

    #[test]
    fn only_marked_or_due_sets_are_polled() {
        let mut sets = DatagramSets::default();
        let a = sets.add(Group::Udp(1), socket()).group();
        let b = sets.add(Group::Udp(2), socket()).group();
        let c = sets.add(Group::Ping, socket()).group();
        let mut out = Vec::new();
        sets.take_due(Duration::ZERO, &mut out);
        assert!(out.is_empty(), "nothing sent, nothing due");
        sets.mark(b);
        sets.mark(b);
        sets.schedule(c, Some(Duration::from_millis(5)), Duration::ZERO);
        sets.take_due(Duration::from_millis(1), &mut out);
        assert_eq!(out, [b]);
        out.clear();
        sets.take_due(Duration::from_millis(5), &mut out);
        assert_eq!(out, [c]);
        out.clear();
        sets.wait_for_neighbor(a, Duration::from_secs(1));
        sets.wake_neighbor_waiters();
        sets.take_due(Duration::from_millis(6), &mut out);
        assert_eq!(out, [a]);
    }
}
