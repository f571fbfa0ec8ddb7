//! The scenario library under `scenarios/`: every file parses, has an
//! `[expect]`, and passes `taps-sim check` (twice, with the determinism
//! check); and a wrong expectation does fail, with a replay command.

use std::path::PathBuf;

use taps_sim::expect::check;
use taps_sim::scenario::Outcome;
use taps_sim::{RunOptions, Scenario, run_scenario};

fn library() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(library())
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_scenario_passes_check_deterministically() {
    let dir = library().display().to_string();
    let args = vec!["check".to_string(), dir, "--check-determinism".to_string()];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = taps_sim::cli::run(&args, &mut out, &mut err);
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, 0, "{out}{}", String::from_utf8_lossy(&err));
    let n = files().len();
    assert!(
        out.contains(&format!("{n} passed, 0 failed, 0 without [expect]")),
        "{out}"
    );
}

#[test]
fn the_library_covers_the_listed_worlds() {
    let names: Vec<String> = files()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in [
        "happy-dual-stack",
        "v6-blackhole",
        "v6-reject",
        "ipv4-only-destination",
        "ipv4-only-client",
        "ipv6-only",
        "slow-aaaa-within-resolution-delay",
        "slow-aaaa-beyond-resolution-delay",
        "slow-a",
        "three-per-family",
        "https-hints-slow-a-aaaa",
        "first-dns-server-times-out",
        "truncated-answer",
        "forged-answers",
        "tls-stalled-first-address",
        "tls-stalled-first-address-real-tls",
        "wrong-certificate-on-one-address",
        "happy-dual-stack-real-tls",
        "all-addresses-dead",
        "interface-down-mid-race",
        "cellular-prohibited",
        "expensive-avoided",
        "lossy-link",
        "repeated-connections",
        "search-list",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "scenarios/{wanted}.toml is missing"
        );
    }
    for f in files() {
        let sc = Scenario::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(sc.expect.is_some(), "{} has no [expect]", f.display());
        assert_eq!(
            f.file_stem().unwrap().to_string_lossy(),
            sc.name,
            "file name and scenario name differ"
        );
    }
}

#[test]
fn a_wrong_expectation_fails_and_names_the_key() {
    let mut sc = Scenario::load(&library().join("v6-blackhole.toml")).unwrap();
    let report = run_scenario(&sc, RunOptions::of(&sc), true).unwrap();
    let expect = sc.expect.as_mut().unwrap();
    assert!(check(expect, &report).is_empty());
    expect.all.ready_at = Some(std::time::Duration::from_millis(321));
    expect.all.outcome = Some(Outcome::Failed);
    expect.all.winner = Some("[2001:db8::1]:443".parse().unwrap());
    let failures = check(expect, &report);
    assert_eq!(
        failures,
        vec![
            "expect.outcome: expected failed, got ready".to_string(),
            "expect.winner: expected [2001:db8::1]:443, got 192.0.2.1:443".to_string(),
            "expect.ready_at: expected 321.000 ms, got 322.000 ms".to_string(),
        ]
    );
}

#[test]
fn a_failing_check_prints_the_replay_command_and_exits_non_zero() {
    let text = std::fs::read_to_string(library().join("v6-blackhole.toml"))
        .unwrap()
        .replace("ready_at = \"322ms\"", "ready_at = \"300ms\"");
    let dir = std::env::temp_dir().join(format!("taps-sim-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(&file, text).unwrap();
    let args = vec!["check".to_string(), file.display().to_string()];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = taps_sim::cli::run(&args, &mut out, &mut err);
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL v6-blackhole"), "{out}");
    assert!(
        out.contains("expect.ready_at: expected 300.000 ms, got 322.000 ms"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "replay: taps-sim run {} --seed 7 --policy hev3",
            file.display()
        )),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_step_bound_stops_a_run_with_a_clear_error() {
    let sc = Scenario::load(&library().join("v6-blackhole.toml")).unwrap();
    let opts = RunOptions {
        max_steps: 5,
        ..RunOptions::of(&sc)
    };
    let err = taps_sim::World::new().run(&sc, opts).unwrap_err();
    assert!(matches!(
        err,
        taps_sim::SimError::StepLimit { steps: 5, .. }
    ));
    assert!(
        err.to_string()
            .starts_with("the run took more than 5 steps (virtual time "),
        "{err}"
    );
}

#[test]
fn a_world_replays_exactly_and_another_seed_differs() {
    let sc = Scenario::load(&library().join("lossy-link.toml")).unwrap();
    let opts = RunOptions::of(&sc);
    let a = run_scenario(&sc, opts, false).unwrap();
    let b = run_scenario(&sc, opts, false).unwrap();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.text(false), b.text(false));
    let c = run_scenario(&sc, RunOptions { seed: 1, ..opts }, false).unwrap();
    assert_ne!(a.trace_hash, c.trace_hash, "the seed drives the losses");
}
