//! Shared helpers of the taps-tokio integration tests: those of the
//! conformance suite (a test CA, descriptor and memory counts).
#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]

pub use taps_conformance::support::*;
