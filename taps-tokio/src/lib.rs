//! taps over tokio: the adapter that performs `taps-core`'s I/O actions with
//! tokio sockets and timers.
//!
//! This crate is a skeleton until the adapter issue lands; it deliberately
//! exports nothing rather than pretend to work.
#![forbid(unsafe_code)]
