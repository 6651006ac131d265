//! Prefix arithmetic: networks, masks and membership, for both families.
//!
//! The model needs it for connected routes, secondaries and lookups; the command
//! language borrows it for broadcast addresses and route selectors.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The network part of an address: `addr` with the host bits cleared.
pub(crate) fn network(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(prefix_len))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(prefix_len))),
    }
}

/// An IPv4 netmask of `len` bits.
pub(crate) fn mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

fn mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

/// Whether `addr` lies inside `prefix/len` (families must agree).
pub(crate) fn in_prefix(addr: IpAddr, prefix: IpAddr, len: u8) -> bool {
    addr.is_ipv4() == prefix.is_ipv4() && network(addr, len) == network(prefix, len)
}
