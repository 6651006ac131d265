//! The hash of the per-flow tables the engine looks up for every segment.
//!
//! A segment in bulk is looked up by its 4-tuple in four to six tables on its way
//! (the connection, loss recovery, the SACK ranges, the acknowledgement repair,
//! TIME-WAIT), and std's SipHash, made to resist chosen keys at any length, took
//! about 4% of a pump's CPU in a bulk transfer. A 4-tuple is a few integers: a
//! multiply-and-fold per pair of them (as foldhash does), each of the pair
//! first masked by one of two seeds drawn at random for each table, mixes them
//! as well for a table's purposes, so that a peer choosing its ports and
//! addresses still cannot aim at one bucket (nor make a factor zero) without
//! knowing the seeds. One multiply per pair rather than per integer: the
//! multiplies of a hash each wait for the one before, and an IPv4 4-tuple is
//! six integers (each address's kind, the address, the port), where a lookup
//! spent most of its time (perf, pumps in bulk).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// A table keyed by flows (or any few integers), hashed by [`FlowHasher`].
pub(crate) type FlowMap<K, V> = HashMap<K, V, FlowHashes>;

/// Makes [`FlowHasher`]s from two seeds drawn once per table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlowHashes {
    seed: u64,
    pair_seed: u64,
}

impl Default for FlowHashes {
    fn default() -> FlowHashes {
        // std's random keys (drawn once per thread, then stepped per table).
        let keys = std::collections::hash_map::RandomState::new();
        FlowHashes {
            seed: keys.hash_one(0x5eed_u64) | 1,
            pair_seed: keys.hash_one(0x5eed_u64 + 1) | 1,
        }
    }
}

impl BuildHasher for FlowHashes {
    type Hasher = FlowHasher;

    fn build_hasher(&self) -> FlowHasher {
        FlowHasher {
            seed: self.seed,
            pair_seed: self.pair_seed,
            state: self.seed,
            pending: None,
        }
    }
}

/// Folds the integers written into its state two at a time, with one
/// 64 x 64 -> 128-bit multiply for each pair.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlowHasher {
    seed: u64,
    /// Masks the second of a pair: secret, so that no key makes it zero.
    pair_seed: u64,
    state: u64,
    /// The first of a pair, written and not mixed yet.
    pending: Option<u64>,
}

/// An odd constant with its bits spread (the fractional digits of pi).
const MULTIPLIER: u64 = 0x243f_6a88_85a3_08d3;

/// The high and low halves of `a * b`, xored: every bit of both depends on
/// every bit of the inputs.
fn fold_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl FlowHasher {
    fn mix(&mut self, value: u64) {
        match self.pending.take() {
            None => self.pending = Some(value),
            Some(first) => {
                self.state = fold_multiply(self.state ^ first, value ^ self.pair_seed);
            }
        }
    }
}

impl Hasher for FlowHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.mix(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            // The length too, so that trailing zero bytes still count.
            self.mix(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.mix(u64::from(value));
    }

    fn write_u16(&mut self, value: u16) {
        self.mix(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn write_u128(&mut self, value: u128) {
        self.mix(value as u64);
        self.mix((value >> 64) as u64);
    }

    fn write_usize(&mut self, value: usize) {
        self.mix(value as u64);
    }

    fn finish(&self) -> u64 {
        // An odd one out is mixed with a constant in its pair's place.
        let state = match self.pending {
            Some(last) => fold_multiply(self.state ^ last, MULTIPLIER ^ self.pair_seed),
            None => self.state,
        };
        fold_multiply(state, self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn flows_that_differ_in_one_field_hash_apart() {
        let hashes = FlowHashes::default();
        let base = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5201u16);
        let mut seen = HashSet::new();
        for port in 49152..49152 + 4096u16 {
            let flow = (base.0, base.1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), port);
            assert!(
                seen.insert(hashes.hash_one(flow)),
                "a collision at port {port}"
            );
        }
        let v6 = (
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            base.1,
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            49152u16,
        );
        assert!(seen.insert(hashes.hash_one(v6)));
        // The buckets a table uses (the low bits) spread too.
        let buckets: HashSet<u64> = seen.iter().map(|h| h & 1023).collect();
        assert!(buckets.len() > 900, "{} of 1024 buckets", buckets.len());
    }

    #[test]
    fn each_table_has_its_own_seed() {
        let flow = (
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            1u16,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            2u16,
        );
        let a = FlowHashes::default().hash_one(flow);
        let b = FlowHashes::default().hash_one(flow);
        assert_ne!(a, b);
    }

    #[test]
    fn byte_strings_of_different_lengths_differ() {
        let hashes = FlowHashes::default();
        assert_ne!(
            hashes.hash_one([0u8; 3].as_slice()),
            hashes.hash_one([0u8; 4].as_slice())
        );
    }
}
