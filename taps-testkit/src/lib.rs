//! taps-testkit: what the tests, fuzz targets, benchmarks and simulator of
//! taps share, so none of them carries its own copy or includes another
//! crate's files (ARCHITECTURE.md, "Tests, fuzzing, simulation").
//!
//! - [`dns`]: a DNS responder that answers real query messages with real
//!   response messages (the simulator's servers, the namespace tests' DNS
//!   server, the fuzz corpora).
//! - [`tls`]: TLS environments for runs in virtual time: the system's
//!   algorithms with the wall clock, and a seeded one whose every byte
//!   repeats from a seed.
//! - [`pki`]: test certificate authorities and server identities.
//! - [`wire`]: the two sides of a socket in memory, and stream I/O through
//!   a checked-out TLS session as an adapter does it.
//! - [`contract`]: the one checker of the machine's output contract.
//! - [`harness`]: one machine in virtual time, every output checked and
//!   recorded, performed by a pluggable network.
//! - [`world`]: the harness with a scripted network (DNS servers and TCP
//!   destinations) for racing tests.
//! - [`net`]: several machines joined by in-memory TCP pipes.
//! - [`netns`]: network namespaces, veth links, and programs and
//!   threads inside them, for the tests on real sockets.
//! - [`proxies`]: dante-server (SOCKS5) and tinyproxy (HTTP CONNECT)
//!   started in namespaces, a three-namespace topology, and an origin
//!   server.
//! - [`fuzz`]: the bodies of the fuzz targets, their seed corpora, and
//!   [`replay`], which replays the corpora on stable Rust.
//!
//! Nothing here is fit for a real network: the seeded environment's
//! randomness is predictable by construction. Unpublished.
#![forbid(unsafe_code)]

/// Panics with a message that names the broken invariant; libFuzzer records
/// the input, the replay tests name the file. Every check of the kit and of
/// the simulator's fuzz target fails through it, so a failure always reads
/// "taps fuzz invariant violated: ...".
#[macro_export]
macro_rules! violated {
    ($($arg:tt)*) => {
        panic!("taps fuzz invariant violated: {}", format_args!($($arg)*))
    };
}

pub mod contract;
pub mod dns;
pub mod fuzz;
pub mod harness;
pub mod net;
pub mod netns;
pub mod pki;
pub mod proxies;
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
