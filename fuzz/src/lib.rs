//! Shared code of the vdestack fuzz targets and of the seed generator
//! (`cargo run --example gen_seeds`): the setups of the `ingress` and `api` targets
//! live here so that the seeds are captured from exactly the state the target
//! starts from (same stacks, same random seeds, hence the same sequence numbers).

pub mod api;
pub mod ingress;
pub mod wire;

/// The byte at `offset` of test stream `stream`: varied, not periodic at 256.
pub fn pattern(stream: u64, offset: usize) -> u8 {
    let x = (offset as u64)
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(stream.wrapping_mul(0x85eb_ca6b));
    (x ^ (x >> 13) ^ (x >> 29)) as u8
}
