//! cargo-fuzz entry point for the `dns_answer` target; the body is
//! [`taps_testkit::fuzz::dns_answer`], shared with the stable replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taps_testkit::fuzz::dns_answer(data));
