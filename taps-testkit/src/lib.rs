//! taps-testkit: what the tests, fuzz targets, benchmarks and simulator of
//! taps share, so none of them carries its own copy and no `#[path]`
//! include crosses a crate (ARCHITECTURE.md "Test kit").
//!
//! - [`dns`]: a DNS responder that answers real query messages with real
//!   response messages (the simulator's servers, the namespace tests' DNS
//!   server, the fuzz corpora).
//! - [`tls`]: TLS environments for runs in virtual time: the system's
//!   algorithms with the wall clock, and a seeded one whose every byte
//!   repeats from a seed.
//!
//! Nothing here is fit for a real network: the seeded environment's
//! randomness is predictable by construction. Unpublished.
#![forbid(unsafe_code)]

pub mod dns;
pub mod net;
pub mod pki;
pub mod replay;
pub mod tls;
pub mod wire;
pub mod world;

use taps_core::Config;

/// The configuration tests start from: the core's defaults with `seed`,
/// and TLS with ring and the wall clock ([`tls::wall_clock`]), as on a
/// real network.
pub fn config(seed: u64) -> Config {
    Config {
        tls: Some(tls::wall_clock()),
        ..Config::new(seed)
    }
}
