//! cargo-fuzz entry point for the `endpoint_parse` target; the body is
//! [`taps_testkit::fuzz::endpoint_parse`], shared with the stable replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taps_testkit::fuzz::endpoint_parse(data));
