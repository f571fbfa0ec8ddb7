//! cargo-fuzz entry point for the `framer` target; the body is
//! [`taps_testkit::fuzz::framer`], shared with the stable replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taps_testkit::fuzz::framer(data));
