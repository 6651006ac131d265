//! `ingress`: arbitrary frames into a stack with established TCP connections,
//! listeners and ICMP echo; see `vdestack_fuzz::ingress` for the world and the
//! invariants checked after every frame.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vdestack_fuzz::ingress::World;

fuzz_target!(|data: &[u8]| {
    let mut world = World::new();
    world.run(data);
});
