//! taps over async-io (smol): the adapter that performs `taps-core`'s I/O
//! actions with `async_io::Async` sockets and timers.
//!
//! This crate is a skeleton until the smol adapter issue lands; it
//! deliberately exports nothing rather than pretend to work.
#![forbid(unsafe_code)]
