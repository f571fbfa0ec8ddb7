//! Regression replay of the `scenario` fuzz target on stable Rust.
//!
//! The target's body is [`taps_sim::fuzz::scenario`], the function the
//! cargo-fuzz binary `fuzz/fuzz_targets/scenario.rs` calls, so `cargo test`
//! runs exactly what the fuzzer runs: every file of `fuzz/corpus/scenario/`
//! (the scenario library as seeds) and of `fuzz/artifacts/scenario/`
//! (inputs that once failed) goes through it again. A failure names the
//! file and prints it in hex. The other targets are replayed by
//! `taps-core/tests/fuzz_replay.rs`, through the same
//! [`taps_testkit::replay`].

use std::fs;

use taps_sim::cli::scenario_files;
use taps_testkit::replay::{self, fuzz_dir, inputs};

#[test]
fn scenario() {
    replay::replay("scenario", taps_sim::fuzz::scenario);
}

/// The seeds are the scenario library, byte for byte: a scenario added to
/// or changed in `scenarios/` is copied to `fuzz/corpus/scenario/` too.
#[test]
fn the_corpus_holds_the_scenario_library() {
    let mut files = Vec::new();
    scenario_files(&fuzz_dir().join("../scenarios"), &mut files).expect("scenarios/ exists");
    assert!(!files.is_empty(), "scenarios/ has no scenario");
    let corpus = inputs("corpus", "scenario");
    for file in files {
        let name = file.file_name().expect("a file name");
        let seed = corpus.iter().find(|p| p.file_name() == Some(name));
        let same = seed.is_some_and(|s| fs::read(s).ok() == fs::read(&file).ok());
        assert!(
            same,
            "fuzz/corpus/scenario/ lacks scenarios/{0} or holds an old copy: cp scenarios/{0} fuzz/corpus/scenario/",
            name.to_string_lossy()
        );
    }
    assert!(
        fuzz_dir().join("artifacts/scenario").is_dir(),
        "fuzz/artifacts/scenario/ is missing (keep it with a .gitkeep)"
    );
}
