//! taps-core: the sans-IO heart of taps, Transport Services for Rust.
//!
//! One [`Machine`](machine::Machine) owns every connection, attempt, socket,
//! DNS transaction and timer of one stack instance. The world talks to it
//! through `handle`, and everything it wants done comes out of `poll`; it never
//! performs I/O, reads a clock or spawns a thread (see `DESIGN.md`). The same
//! machine therefore runs under tokio, smol, a caller's own loop and the
//! simulator, and replays bit for bit from a seed.
//!
//! Architecture: RFC 9621. API: RFC 9622. Implementation: RFC 9623.
//! Racing: Happy Eyeballs v3 (draft-ietf-happy-happyeyeballs-v3-04).
#![forbid(unsafe_code)]
// Nothing that came from outside may be unwrapped; tests may.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod connection;
pub mod dns;
pub mod endpoint;
mod hash;
pub mod id;
pub mod machine;
pub mod path;
pub mod properties;
pub mod race;
pub mod rng;
pub mod security;
pub mod stack;
pub mod time;
pub mod trace;

pub use time::Instant;
