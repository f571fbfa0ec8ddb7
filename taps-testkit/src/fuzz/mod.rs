//! The bodies of taps' fuzz targets, one module each, and their seed
//! corpora.
//!
//! Every byte that crosses taps' trust boundary is fed to the real
//! `taps-core` code here: DNS answers ([`dns_answer()`]), endpoint text
//! ([`endpoint_parse()`]), framed streams ([`framer()`]), TLS records
//! ([`tls_records()`]), connection history files ([`history_file()`]),
//! and whole sequences of application commands and
//! network reports into the `Machine` ([`machine()`]). Each target is a plain
//! function of `&[u8]` that returns normally when every check holds and
//! panics (naming the broken invariant) when one does not; the invariants
//! of the machine's outputs are the [`Checker`](crate::contract::Checker)'s.
//!
//! The cargo-fuzz binaries in `fuzz/fuzz_targets/` are one-line wrappers
//! around these functions, and taps-core's replay test runs every file of
//! `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` through the same
//! functions ([`crate::replay`]) on every `cargo test`: a crash the fuzzer
//! found, once its input is saved under `fuzz/artifacts/<target>/`, is a
//! regression test on stable Rust. [`seeds`] generates the corpora.
//!
//! One target is not here: `scenario` feeds scenario files to the
//! simulator, which is built on this kit. Its body is
//! `taps_sim::fuzz::scenario`, replayed by taps-sim's own replay test.

use std::net::SocketAddr;
use std::sync::OnceLock;

use rustls_pki_types::CertificateDer;
use taps_core::Identity;
use taps_core::{HostName, SecurityParameters, dns::QueryType, dns::encode_query};

use crate::dns::{Question, parse_query};
use crate::pki::TestCa;

pub mod dns_answer;
pub mod endpoint_parse;
pub mod framer;
pub mod history_file;
pub mod machine;
mod pair;
pub mod script;
pub mod seeds;
pub mod tls_records;

pub use dns_answer::dns_answer;
pub use endpoint_parse::endpoint_parse;
pub use framer::framer;
pub use history_file::history_file;
pub use machine::machine;
pub use tls_records::tls_records;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, as the fuzz binaries, the corpus directories and
/// the replay test name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("dns_answer", dns_answer),
    ("endpoint_parse", endpoint_parse),
    ("framer", framer),
    ("tls_records", tls_records),
    ("machine", machine),
    ("history_file", history_file),
    // The sixth target, `scenario`, runs the simulator, which is built on
    // this kit: its body is `taps_sim::fuzz::scenario`, replayed by
    // taps-sim/tests/fuzz_replay.rs.
];

/// The name every DNS target asks about.
pub const DNS_NAME: &str = "www.example.com";
/// The DNS servers of the DNS targets' machines, in order.
const DNS_SERVERS: [&str; 2] = ["198.51.100.53:53", "198.51.100.54:53"];
/// A source no query went to.
const DNS_SPOOFER: &str = "203.0.113.66:53";
/// Where the servers of the TLS and machine targets listen (the fuzz
/// certificate names it).
const SERVER_ADDR: &str = "192.0.2.10:443";
/// Where their clients appear to come from.
const CLIENT_ADDR: &str = "198.51.100.7:40000";
/// Bound on delivery rounds without any application action: two stacks
/// settle in a handful; more means they feed each other without end.
const MAX_FLOW_ROUNDS: usize = 10_000;

fn addr(text: &str) -> SocketAddr {
    // Only ever called on constants.
    text.parse().expect("constant socket address")
}

fn host(text: &str) -> HostName {
    HostName::new(text).expect("constant host name")
}

/// The question the machine would ask, as the responder reads it.
fn question(id: u16, name: &str, qtype: QueryType) -> Question {
    let mut q = Vec::new();
    encode_query(id, &host(name), qtype, &mut q);
    parse_query(&q).expect("encode_query output parses")
}

/// One CA and one server identity for every TLS target, made once per
/// process: certificate generation costs far more than a fuzz iteration.
struct Pki {
    root: CertificateDer<'static>,
    server: SecurityParameters,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = TestCa::named("taps fuzz CA");
        let identity: Identity = ca.leaf(&[
            "192.0.2.10",
            "2001:db8::10",
            "192.0.2.20",
            "2001:db8::20",
            "127.0.0.1",
            "::1",
            "www.example.com",
            "hosts.example",
            "localhost",
        ]);
        Pki {
            root: ca.root(),
            server: SecurityParameters::server(identity),
        }
    })
}

/// Client TLS that trusts the fuzz CA (verification on, early data allowed).
fn client_tls() -> SecurityParameters {
    SecurityParameters::with_roots(vec![pki().root.clone()])
}

/// Server TLS with the fuzz identity.
fn server_tls() -> SecurityParameters {
    pki().server.clone()
}
