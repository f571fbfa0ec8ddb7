//! cargo-fuzz entry point for the `machine` target; the body is
//! [`taps_testkit::fuzz::machine`], shared with the stable replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taps_testkit::fuzz::machine(data));
