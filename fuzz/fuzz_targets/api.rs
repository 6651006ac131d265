//! `api`: arbitrary sequences of socket operations over two simulated stacks,
//! checked against a model; see `vdestack_fuzz::api`.
//!
//! Each input runs twice and both runs must match call for call, event for event
//! and frame for frame (deterministic mode). `VDESTACK_FUZZ_REPLAY=frames` compares
//! only the frames; `VDESTACK_FUZZ_REPLAY=off` skips the second run.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use vdestack_fuzz::api::{run_input, Replay};

fuzz_target!(|data: &[u8]| {
    static REPLAY: OnceLock<Replay> = OnceLock::new();
    run_input(data, *REPLAY.get_or_init(Replay::from_env));
});
