//! cargo-fuzz entry point for the `history_file` target; the body is
//! [`taps_testkit::fuzz::history_file`], shared with the stable replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taps_testkit::fuzz::history_file(data));
