//! The neighbour table's static entries: `ip neigh add|replace|change|del|flush`
//! with Linux's rules, and what a link going down does to them.
//!
//! Owns the entries the commands make. The entries the stack learns from the
//! wire are the engine's; `ip neigh show` gets them from it.

use super::{kernel, rtnl, Neighbor, NeighborState, State};
use crate::cmd::error::CmdError;
use std::net::IpAddr;

/// What `ip neigh add|replace|change` asks of an entry already there (the
/// netlink flags iproute2 sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NeighMode {
    /// `NLM_F_CREATE | NLM_F_EXCL`.
    Add,
    /// `NLM_F_CREATE | NLM_F_REPLACE`.
    Replace,
    /// `NLM_F_REPLACE`: the entry must exist.
    Change,
}

impl State {
    /// The index of the entry for `addr` on `dev`.
    fn neighbor_at(&self, dev: u32, addr: IpAddr) -> Option<usize> {
        self.neighbors
            .iter()
            .position(|n| n.dev == dev && n.addr == addr)
    }

    /// `ip neigh add|replace|change ADDR [lladdr MAC] [nud STATE] dev DEV`: an
    /// entry of a state that holds an address needs one (of the link's length);
    /// `add` refuses an entry that exists, `change` one that does not.
    pub(crate) fn set_neighbor(
        &mut self,
        entry: Neighbor,
        given_mac: Option<&[u8]>,
        mode: NeighMode,
    ) -> Result<(), CmdError> {
        let mut entry = entry;
        if let Some(bytes) = given_mac {
            let mac: [u8; 6] = bytes
                .try_into()
                .map_err(|_| kernel("Invalid link address."))?;
            entry.mac = Some(mac);
        }
        let at = self.neighbor_at(entry.dev, entry.addr);
        match (mode, at) {
            (NeighMode::Add, Some(_)) => return Err(rtnl("File exists")),
            (NeighMode::Change, None) => return Err(rtnl("No such file or directory")),
            _ => {}
        }
        let holds_address = matches!(
            entry.state,
            NeighborState::Permanent | NeighborState::Reachable | NeighborState::Stale
        );
        if holds_address && entry.mac.is_none() {
            match at.and_then(|i| self.neighbors[i].mac) {
                Some(old) => entry.mac = Some(old),
                None => return Err(kernel("No link layer address given.")),
            }
        }
        match at {
            Some(i) => self.neighbors[i] = entry,
            None => self.neighbors.push(entry),
        }
        Ok(())
    }

    /// `ip neigh del ADDR dev DEV`.
    pub(crate) fn del_neighbor(&mut self, dev: u32, addr: IpAddr) -> Result<(), CmdError> {
        let at = self
            .neighbor_at(dev, addr)
            .ok_or_else(|| rtnl("No such file or directory"))?;
        self.neighbors.remove(at);
        Ok(())
    }

    /// `ip neigh flush ...`: the selected entries go, except permanent and
    /// NOARP ones, which Linux's flush leaves.
    pub(crate) fn flush_neighbors(&mut self, selected: impl Fn(&Neighbor) -> bool) {
        self.neighbors.retain(|n| {
            matches!(n.state, NeighborState::Permanent | NeighborState::Noarp) || !selected(n)
        });
    }

    /// `ip neigh flush ...` of the neighbours the stack learned: those
    /// selected (not permanent or NOARP, as above) are noted for the engine to
    /// forget.
    pub(crate) fn flush_learned(
        &mut self,
        learned: &[Neighbor],
        selected: impl Fn(&Neighbor) -> bool,
    ) {
        for n in learned {
            let kept = matches!(n.state, NeighborState::Permanent | NeighborState::Noarp);
            if !kept && selected(n) && !self.flushed.contains(&(n.dev, n.addr)) {
                self.flushed.push((n.dev, n.addr));
            }
        }
    }

    /// A link going down takes its entries along, permanent ones too.
    pub(super) fn drop_neighbors_of(&mut self, dev: u32) {
        self.neighbors.retain(|n| n.dev != dev);
    }
}
