//! cargo-fuzz entry point for the `tls_records` target; the body is
//! [`taps_testkit::fuzz::tls_records`], shared with the stable replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taps_testkit::fuzz::tls_records(data));
