//! Regression replay of the fuzz corpora on stable Rust.
//!
//! The fuzz targets' bodies are [`taps_testkit::fuzz`]'s functions, the
//! ones the cargo-fuzz binaries call, so `cargo test` runs exactly what the
//! fuzzer runs: every file in `fuzz/corpus/<target>/` (the seeds and what
//! campaigns kept) and in `fuzz/artifacts/<target>/` (inputs that once
//! crashed a target) goes through its target again
//! ([`taps_testkit::replay`]). A failure names the file and prints it in
//! hex.
//!
//! `seeds_are_checked_in` keeps the generated seeds
//! ([`taps_testkit::fuzz::seeds`]) in step with the generator;
//! `TAPS_FUZZ_WRITE_SEEDS=1 cargo test -p taps-core --test fuzz_replay
//! seeds` rewrites them.

use std::fs;
use std::panic;

use taps_testkit::contract::{KNOWN_BUGS, strictly};
use taps_testkit::fuzz::{TARGETS, seeds};
use taps_testkit::replay::{self, fuzz_dir};

/// Runs every corpus and artifact file of `target` through it.
fn replay(target: &str) {
    let (_, run) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a registered target");
    replay::replay(target, *run);
}

#[test]
fn dns_answer() {
    replay("dns_answer");
}

#[test]
fn endpoint_parse() {
    replay("endpoint_parse");
}

#[test]
fn framer() {
    replay("framer");
}

#[test]
fn tls_records() {
    replay("tls_records");
}

#[test]
fn machine() {
    replay("machine");
}

#[test]
fn history_file() {
    replay("history_file");
}

/// Fuzz binaries whose bodies live outside [`taps_testkit::fuzz`], and the
/// test that replays each: `scenario` runs the simulator, which is built on
/// the kit.
const REPLAYED_ELSEWHERE: &[(&str, &str)] = &[("scenario", "taps-sim/tests/fuzz_replay.rs")];

/// Every target listed in `TARGETS` has a replay test above, and every
/// binary in `fuzz/fuzz_targets/` is one of them or replayed elsewhere.
#[test]
fn every_target_is_replayed() {
    const REPLAYED: &[&str] = &[
        "dns_answer",
        "endpoint_parse",
        "framer",
        "tls_records",
        "machine",
        "history_file",
    ];
    let targets: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(targets, REPLAYED);
    for t in REPLAYED {
        assert!(
            fuzz_dir().join("artifacts").join(t).is_dir(),
            "fuzz/artifacts/{t}/ is missing (keep it with a .gitkeep)"
        );
    }
    let mut binaries: Vec<String> = fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz/fuzz_targets/ exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
        .collect();
    binaries.sort();
    let mut known: Vec<&str> = REPLAYED
        .iter()
        .copied()
        .chain(REPLAYED_ELSEWHERE.iter().map(|(t, _)| *t))
        .collect();
    known.sort_unstable();
    assert_eq!(
        binaries, known,
        "every fuzz binary needs a replay test: here (TARGETS) or in REPLAYED_ELSEWHERE"
    );
    for (target, test) in REPLAYED_ELSEWHERE {
        assert!(
            fuzz_dir().join("..").join(test).is_file(),
            "{target} is said to be replayed by {test}, which does not exist"
        );
    }
}

/// Every bug listed in `KNOWN_BUGS` (found, reported, not yet fixed) still
/// reproduces from its saved input when its check is enforced. Once a fix
/// lands this fails: delete the entry, and the input, replayed with every
/// check on like any other artifact, guards the fix.
#[test]
fn known_bugs_still_reproduce() {
    for bug in KNOWN_BUGS {
        let path = fuzz_dir().join("artifacts").join(bug.target).join(bug.name);
        let bytes = fs::read(&path).unwrap_or_else(|_| {
            panic!("known bug {} has no input at {}", bug.name, path.display())
        });
        let (_, run) = TARGETS
            .iter()
            .find(|(name, _)| *name == bug.target)
            .expect("a registered target");
        let message = match panic::catch_unwind(|| strictly(|| run(&bytes))) {
            Ok(()) => None,
            Err(payload) => Some(
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
            ),
        };
        assert!(
            message.as_ref().is_some_and(|m| m.contains(bug.signature)),
            "known bug {} no longer reproduces (got {message:?}): remove it from KNOWN_BUGS in \
             taps-testkit/src/contract.rs ({})",
            bug.name,
            bug.summary
        );
    }
}

/// The generated seeds (and scripted artifacts) are checked in: byte for
/// byte where the generator is deterministic, by name where it is not (TLS
/// handshakes). With `TAPS_FUZZ_WRITE_SEEDS=1` missing or outdated files are
/// written instead.
#[test]
fn seeds_are_checked_in() {
    let write = std::env::var_os("TAPS_FUZZ_WRITE_SEEDS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for seed in seeds::all() {
        let dir = fuzz_dir().join(seed.dir).join(seed.target);
        let path = dir.join(&seed.name);
        let current = fs::read(&path).ok();
        let fresh = match &current {
            None => false,
            Some(bytes) => !seed.deterministic || *bytes == seed.bytes,
        };
        // Captures (not deterministic) are written only when missing, so a
        // rewrite does not churn them; delete one to refresh it.
        if write && !fresh {
            fs::create_dir_all(&dir).expect("creatable corpus directory");
            fs::write(&path, &seed.bytes).expect("writable corpus file");
        } else if !fresh {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "seed files missing or out of date (regenerate with TAPS_FUZZ_WRITE_SEEDS=1):\n{}",
        stale.join("\n")
    );
}
