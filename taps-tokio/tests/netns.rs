//! tapscat on a real (virtual) network: the conformance suite's namespace
//! scenarios (IPv6 blackhole, IPv6 refused, a dead first interface,
//! prohibit/require checked from the server's side, a real DNS server),
//! with the `tapscat` binary as the client, so its options, trace output
//! and exit statuses are checked end to end, and `--history`, which only
//! tapscat has, across two processes. Needs root and `ip`
//! (iproute2): `#[ignore]`d, run by CI (as root) with `--ignored`.
//!
//! The library itself runs the same scenarios in `tests/conformance.rs`.
#![cfg(feature = "tapscat")]
#![allow(missing_docs)]

use std::process::Command;

use taps_conformance::netns::{
    ClientCommand, Nat64Network, Network, history_across_processes, nat64_scenarios, scenarios,
};

const TAPSCAT: &str = env!("CARGO_BIN_EXE_tapscat");

#[test]
#[ignore = "needs root and ip (network namespaces)"]
fn tapscat_racing_over_real_paths_in_network_namespaces() {
    let command: ClientCommand = Box::new(|args| {
        let mut c = Command::new(TAPSCAT);
        c.args(args);
        c
    });
    let net = Network::start("tapscat_racing_over_real_paths", command);
    scenarios(&net);
    // In the same test: the namespaces are named per process.
    history_across_processes(&net);
}

#[test]
#[ignore = "needs root, ip and dnsmasq (network namespaces)"]
fn tapscat_through_nat64_in_network_namespaces() {
    let command: ClientCommand = Box::new(|args| {
        let mut c = Command::new(TAPSCAT);
        c.args(args);
        c
    });
    let net = Nat64Network::start("tapscat_through_nat64", command);
    nat64_scenarios(&net);
}
