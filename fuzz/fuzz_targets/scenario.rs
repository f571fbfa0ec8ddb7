//! cargo-fuzz entry point for the `scenario` target; the body is
//! [`taps_sim::fuzz::scenario`], shared with the stable replay test
//! `taps-sim/tests/fuzz_replay.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taps_sim::fuzz::scenario(data));
