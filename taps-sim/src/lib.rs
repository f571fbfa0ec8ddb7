//! The deterministic network simulator that runs `taps-core` against a
//! simulated world on a virtual clock.
//!
//! This crate is a skeleton until the simulator issue lands; it deliberately
//! exports nothing rather than pretend to work.
#![forbid(unsafe_code)]
