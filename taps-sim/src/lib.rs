//! taps-sim: the deterministic network simulator of taps.
//!
//! The same `taps_core::Machine` that runs under tokio and smol
//! runs here against a simulated world on a virtual clock (ARCHITECTURE.md,
//! "Tests, fuzzing, simulation"). The world replays any network condition exactly from a
//! seed, in milliseconds of wall time, and compares racing policies side by
//! side with each other and with an oracle.
//!
//! - [`scenario`]: the TOML scenario schema, parsed and checked
//!   with errors that name the key and line, all at once; every key is in
//!   [`REFERENCE`]. [`schema`]: the file's shape, read from the parser's
//!   structs, and the check of a document against it.
//! - [`world`]: the virtual clock and the world: interfaces, links, TCP with
//!   the kernel's timers, DNS resolvers, servers with real or modelled TLS.
//! - [`net`]: links and routing. [`server`]: servers and resolvers.
//! - [`wire`]: real TLS: server machines and in-order byte pipes.
//!   [`pki`]: the scenario's test CA and certificates.
//! - [`oracle`]: the best any client could do in a world.
//! - [`report`]: attempts, DNS rows, the text and JSON reports, the trace
//!   hash. [`svg`]: the waterfall as a picture.
//! - [`expect`]: what `taps-sim check` asserts.
//! - [`population`]: many random worlds drawn from a profile, and their
//!   statistics per policy.
//! - [`cli`]: the `taps-sim` command.
//! - [`fuzz`]: the body of the `scenario` fuzz target.
//!
//! ```
//! use taps_sim::{Scenario, run_scenario, RunOptions};
//! let sc = Scenario::parse(taps_sim::BUILTIN).expect("the built-in scenario parses");
//! let report = run_scenario(&sc, RunOptions::of(&sc), true).expect("it runs");
//! assert_eq!(report.connections[0].outcome, "ready");
//! ```
//!
//! # Golden files
//!
//! The text reports of the canonical scenarios are checked into
//! `taps-sim/tests/golden/` and compared by `cargo test -p taps-sim`. After
//! an intended change, regenerate them with
//! `TAPS_BLESS=1 cargo test -p taps-sim --test golden` and review the diff.
//!
//! # TLS
//!
//! A server says `tls = "real"`, `"modelled"` (the default) or `"none"`.
//!
//! - **Real**: with `connect.tls`, the client's preconnection carries
//!   `SecurityParameters` trusting a test CA made from the run's seed, with
//!   `connect.alpn`, so every attempt runs rustls in the core. Each real
//!   server is a server-side `taps_core` machine listening on its addresses
//!   with a leaf certificate for its `names` (real subject alternative
//!   names; `cert` can make it untrusted, expired or not yet valid). The
//!   world carries their real bytes over the links, so certificate failures
//!   end attempts with their TLS reason, and a stalled TLS server shows the
//!   attempt's TCP up before it is cancelled. Every TLS byte is seeded
//!   (`taps_testkit::tls::seeded`, Ed25519 keys, a fixed clock): runs
//!   replay byte for byte. A scenario cannot mix real and modelled servers.
//! - **Modelled**: the TLS 1.3 full handshake's one round trip plus the
//!   server's `tls_time`, no bytes and no crypto, after which the world
//!   reports the attempt connected: what population runs and the benchmarks
//!   use, because it costs nothing per connection (see [`server`]).
//! - **None**: plain TCP; a client that starts TLS there is closed on.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod cli;
pub mod expect;
pub mod fuzz;
pub mod net;
pub mod oracle;
pub mod pki;
pub mod population;
pub mod report;
pub mod scenario;
pub mod schema;
pub mod server;
pub mod svg;
pub mod units;
pub mod wire;
pub mod world;

use std::time::Instant as WallInstant;

use taps_core::race::Policy;

pub use report::Report;
pub use scenario::{Scenario, ScenarioError};
pub use world::{RunOptions, RunResult, SimError, World};

/// The built-in scenario of `taps-sim` without arguments: a dual-stack
/// client and server, with the server's IPv6 prefix blackholed.
pub const BUILTIN: &str = include_str!("builtin.toml");

/// Every scenario key with its default and meaning, as a valid scenario:
/// `taps-sim/REFERENCE.toml`, printed by `taps-sim schema`.
pub const REFERENCE: &str = include_str!("../REFERENCE.toml");

/// Runs `sc` under `opts` and builds its report. With `with_oracle`, the
/// oracle is computed too (from this run when the policy is `hev3`, else
/// from an extra `hev3` run of the same world and seed).
pub fn run_scenario(
    sc: &Scenario,
    opts: RunOptions,
    with_oracle: bool,
) -> Result<Report, SimError> {
    let mut world = World::new();
    let wall = WallInstant::now();
    let run = world.run(sc, opts)?;
    let wall = wall.elapsed();
    let oracle = if !with_oracle {
        Vec::new()
    } else if opts.policy == Policy::Hev3 {
        oracle::oracle(sc, &run)
    } else {
        let hev3 = world.run(
            sc,
            RunOptions {
                policy: Policy::Hev3,
                ..opts
            },
        )?;
        oracle::oracle(sc, &hev3)
    };
    let oracle = oracle.iter().map(|o| o.map(|c| c.time_to_ready)).collect();
    Ok(Report::new(sc, run, wall, oracle))
}

/// Every racing policy, in the order reports list them.
pub const POLICIES: [Policy; 3] = [Policy::Hev3, Policy::Rfc6555, Policy::Sequential];
