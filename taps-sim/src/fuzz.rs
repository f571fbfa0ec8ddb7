//! The body of the `scenario` fuzz target: arbitrary bytes as a scenario
//! file, through the parser and, when they parse, through a short run of
//! the simulator and every report a run feeds.
//!
//! The other targets' bodies live in the test kit (`taps_testkit::fuzz`),
//! which the simulator is built on; so this one lives here. The cargo-fuzz binary `fuzz/fuzz_targets/scenario.rs`
//! is a one-line wrapper around [`scenario`], and
//! `taps-sim/tests/fuzz_replay.rs` replays every file of
//! `fuzz/corpus/scenario/` and `fuzz/artifacts/scenario/` through it on
//! stable Rust, so a crash saved under `fuzz/artifacts/scenario/` is a
//! regression test of `cargo test`.
//!
//! # Bytes to text
//!
//! The input is decoded as UTF-8 *lossily*: invalid sequences become
//! U+FFFD. [`Scenario::parse`] takes a `&str`, and `Scenario::load` refuses a
//! file that is not UTF-8 before the parser sees it, so strict decoding
//! would only spend the fuzzer's inputs on a rejection outside the parser;
//! lossy decoding maps every input to some text the parser must handle.
//!
//! # What is checked
//!
//! Nothing may panic, and:
//!
//! - **A refused file says where and what.** It lists at least one
//!   problem; each has a line or a key, a key is a path whose first part is
//!   one of the schema's top-level keys (`link[1].to`), and its text says
//!   what is wrong without naming the parser's own types (`RawLink`,
//!   `expected struct ...`).
//! - **A run keeps the simulator's contracts.** A scenario that parses runs
//!   under its own policy and seed for at most [`MAX_STEPS`] steps (a
//!   scenario too big for that ends in [`SimError::StepLimit`], which is
//!   fine). The world's own checks ([`RunResult::violations`]: a socket
//!   closed twice, a connection settled twice, an attempt after the race
//!   settled, a machine not idle at the end ...) must find nothing; there
//!   are at most `connect.repeat` connections, each started when the one
//!   before settled plus `connect.gap`, settled between its start and the
//!   end of the run (and only a stalled one unsettled), and a ready one won
//!   over an address a `[[server]]` listens on and a client interface.
//! - **Runs repeat.** The same scenario run again on the same [`World`]
//!   (whose buffers carry over, as in population runs) gives the same
//!   result: connections with their traces, end time, steps, violations,
//!   counters.
//! - **Reports hold.** The oracle (for `hev3` runs), the report, its text,
//!   its JSON (which must parse as JSON, with the connections), its SVG
//!   (whose `<` and `>` must pair up, so no scenario text went in
//!   unescaped) and the `[expect]` check are built from the run, as
//!   `taps-sim run` and `check` build them.
//!
//! Real TLS (`tls = "real"` servers with `connect.tls`) makes certificates
//! and runs rustls handshakes, milliseconds per input, and the bytes of TLS
//! records are fuzzed by the `tls_records` target already; so such a
//! scenario is run with `connect.tls = false`, the TCP half of the same
//! world, after it parsed as written.

use core::time::Duration;

use crate::expect::check;
use crate::oracle::oracle;
use crate::report::Report;
use crate::scenario::{Scenario, ScenarioError, shape};
use crate::schema::Shape;
use crate::svg;
use crate::world::{ConnOutcome, RunOptions, RunResult, SimError, World};
use taps_core::race::Policy;
use taps_testkit::violated;

/// Bound on the steps of one fuzzed run. The library's scenarios take 9 to
/// 28; a long run costs about 1.5 µs a step, so the bound keeps an input
/// that asks for ten thousand repeated connections (or events) to a few
/// milliseconds, while still letting a hundred connections run to the end.
pub const MAX_STEPS: u64 = 2_000;

/// The `scenario` fuzz target: returns when every check in the module docs
/// holds, and panics naming the one that does not.
pub fn scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Scenario::parse(&text) {
        Ok(sc) => run(sc),
        Err(e) => clear_error(&e),
    }
}

/// A refused file's error says where and what, in the file's terms.
fn clear_error(e: &ScenarioError) {
    let ScenarioError::Invalid(problems) = e else {
        violated!("parsing text reported a file error: {e}");
    };
    if problems.is_empty() {
        violated!("a refusal lists no problem");
    }
    let (top_level, types): (Vec<&str>, Vec<&str>) = match shape() {
        Ok(s @ Shape::Table { fields, .. }) => {
            (fields.iter().map(|f| f.key).collect(), s.table_names())
        }
        _ => violated!("the scenario's shape cannot be read"),
    };
    for p in problems {
        if p.problem.trim().is_empty() {
            violated!(
                "the problem at {:?} says nothing about what is wrong",
                p.key
            );
        }
        if p.key.is_empty() && p.line.is_none() {
            violated!("a problem names neither a key nor a line: {p}");
        }
        // An unknown key at the top level is itself the key it names.
        let top = p.key.split(['.', '[']).next().unwrap_or_default();
        let unknown_top = !p.key.contains(['.', '[']) && p.problem.starts_with("unknown key");
        if !p.key.is_empty() && !top_level.contains(&top) && !unknown_top {
            violated!(
                "a problem's key {:?} is not a key of the schema ({p})",
                p.key
            );
        }
        // The file's own text is quoted in messages and may say anything;
        // what is outside the quotes must not name the parser's structs.
        let unquoted: String = p.problem.split('"').step_by(2).collect();
        if unquoted.contains("struct") || types.iter().any(|t| unquoted.contains(t)) {
            violated!("a problem names the parser's own types: {p}");
        }
    }
}

/// Runs a parsed scenario twice on one world and checks the run and the
/// reports built from it.
fn run(mut sc: Scenario) {
    if sc.real_tls() {
        sc.connect.tls = false;
    }
    let opts = RunOptions {
        max_steps: MAX_STEPS,
        ..RunOptions::of(&sc)
    };
    let mut world = World::new();
    let first = world.run(&sc, opts);
    let again = world.run(&sc, opts);
    match (first, again) {
        (Ok(first), Ok(again)) => {
            if !same_run(&first, &again) {
                violated!(
                    "the rerun differs: ended at {} after {} steps, then at {} after {} steps",
                    first.end,
                    first.steps,
                    again.end,
                    again.steps
                );
            }
            check_run(&sc, &first);
            report(&sc, first);
        }
        (Err(first), Err(again)) => {
            if first != again {
                violated!("the rerun differs: {first}, then {again}");
            }
            if let SimError::Tls(e) = first {
                violated!("a run without real TLS failed to set TLS up: {e}");
            }
        }
        (Ok(_), Err(e)) => violated!("the run finished, the rerun failed: {e}"),
        (Err(e), Ok(_)) => violated!("the run failed ({e}), the rerun finished"),
    }
}

/// Whether two runs of one scenario and options are the same run.
fn same_run(a: &RunResult, b: &RunResult) -> bool {
    a.connections == b.connections
        && a.end == b.end
        && a.steps == b.steps
        && a.violations == b.violations
        && a.stats == b.stats
        && a.wire_hash == b.wire_hash
}

/// The run's contracts (see the module docs).
fn check_run(sc: &Scenario, run: &RunResult) {
    if !run.violations.is_empty() {
        violated!(
            "the world saw contracts broken: {}",
            run.violations.join("; ")
        );
    }
    let conns = &run.connections;
    if conns.is_empty() || conns.len() > sc.connect.repeat as usize {
        violated!(
            "{} connection(s) for connect.repeat = {}",
            conns.len(),
            sc.connect.repeat
        );
    }
    for (n, c) in conns.iter().enumerate() {
        let n = n + 1;
        match c.settled {
            None if c.outcome != ConnOutcome::Stalled => {
                violated!("connection {n} is {:?} but never settled", c.outcome)
            }
            Some(at) if at < c.started || at > run.end => violated!(
                "connection {n} settled at {at}, outside its start {} and the run's end {}",
                c.started,
                run.end
            ),
            _ => {}
        }
        if let ConnOutcome::Ready { remote, interface } = c.outcome {
            if sc.server_at(remote).is_none() {
                violated!("connection {n} is ready to {remote}, where no server listens");
            }
            if interface.is_some_and(|i| sc.client.interface_name(i).is_none()) {
                violated!(
                    "connection {n} is ready over interface {interface:?}, which is not the client's"
                );
            }
        }
    }
    for (n, pair) in conns.windows(2).enumerate() {
        let due = pair[0].settled.map(|t| t + sc.connect.gap);
        if due != Some(pair[1].started) {
            violated!(
                "connection {} started at {}, not connect.gap after connection {} settled ({:?})",
                n + 2,
                pair[1].started,
                n + 1,
                pair[0].settled
            );
        }
    }
}

/// Builds what `taps-sim run` and `check` build from a run, and checks the
/// JSON and the SVG are well formed.
fn report(sc: &Scenario, run: RunResult) {
    // `run_scenario` computes the oracle from a `hev3` run only; another
    // policy would need a second run, which the fuzzer's inputs reach by
    // asking for `hev3` themselves.
    let oracle = if run.policy == Policy::Hev3 {
        oracle(sc, &run)
            .iter()
            .map(|o| o.map(|c| c.time_to_ready))
            .collect()
    } else {
        Vec::new()
    };
    let report = Report::new(sc, run, Duration::ZERO, oracle);
    let _ = report.text(false);
    let json = report.json();
    // `Report::json` stands in `{"error": ...}` when serde_json fails, so a
    // report without its connections is a failure too.
    match serde_json::from_str::<serde_json::Value>(&json) {
        Ok(v) if v.get("connections").is_some() => {}
        Ok(_) => violated!("the JSON report could not be written: {json}"),
        Err(e) => violated!("the JSON report does not parse ({e}): {json}"),
    }
    let picture = svg::render(&report);
    if picture.matches('<').count() != picture.matches('>').count() {
        violated!("the SVG's angle brackets do not pair up: text went in unescaped");
    }
    if let Some(expect) = &sc.expect {
        let _ = check(expect, &report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Problem;
    use std::panic::{UnwindSafe, catch_unwind};
    use std::path::PathBuf;

    /// The message `f` panicked with, if it did.
    fn violation(f: impl FnOnce() + UnwindSafe) -> Option<String> {
        let payload = catch_unwind(f).err()?;
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
    }

    /// The library's files, with their scenarios.
    fn library() -> Vec<(PathBuf, Scenario)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut files = Vec::new();
        crate::cli::scenario_files(&dir, &mut files).unwrap();
        files
            .into_iter()
            .map(|f| {
                let sc = Scenario::load(&f).unwrap();
                (f, sc)
            })
            .collect()
    }

    fn ran(sc: &Scenario) -> RunResult {
        let mut sc = sc.clone();
        sc.connect.tls &= !sc.real_tls();
        let opts = RunOptions {
            max_steps: MAX_STEPS,
            ..RunOptions::of(&sc)
        };
        World::new().run(&sc, opts).unwrap()
    }

    /// The seeds reach the run and the reports, not just the parser: every
    /// library scenario runs to its end within the bound, and passes.
    #[test]
    fn the_library_runs_within_the_bound_and_passes() {
        for (file, sc) in library() {
            let run = ran(&sc);
            assert!(
                run.steps < MAX_STEPS / 10,
                "{}: {} steps",
                sc.name,
                run.steps
            );
            scenario(&std::fs::read(file).unwrap());
        }
    }

    #[test]
    fn errors_without_a_line_or_a_schema_key_are_caught() {
        let one = |line: Option<usize>, key: &str, problem: &str| {
            ScenarioError::Invalid(vec![Problem {
                line,
                key: key.to_string(),
                problem: problem.to_string(),
            }])
        };
        clear_error(&one(Some(3), "", "duplicate key"));
        clear_error(&one(Some(7), "link[1].to", "not a prefix"));
        clear_error(&one(None, "name", "must not be empty"));
        // A user's own text, quoted, may say anything.
        clear_error(&one(
            Some(4),
            "expect.outcome",
            "unknown outcome \"RawLink struct\": expected ready or failed",
        ));
        for e in [
            ScenarioError::Invalid(Vec::new()),
            one(None, "", "missing field `name`"),
            one(Some(1), "", "   "),
            one(None, "bogus.key", "wrong"),
            one(None, "link[0].delay", "  "),
            one(
                Some(2),
                "client.interfaces[0]",
                "expected struct RawInterface",
            ),
            one(Some(2), "link[0]", "invalid type: map, expected RawLink"),
            ScenarioError::Io {
                path: "x".into(),
                error: "gone".into(),
            },
        ] {
            let shown = format!("{e:?}");
            let v = violation(move || clear_error(&e));
            assert!(
                v.is_some_and(|m| m.starts_with("taps fuzz invariant violated")),
                "{shown} passed"
            );
        }
        // And the parser's own errors pass, on the usual mistakes: a typo,
        // a bad value, a missing table.
        let base = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/v6-blackhole.toml"),
        )
        .unwrap();
        for text in [
            base.replace("[connect]", "[connect]\ndelya = 1"),
            base.replace("[connect]", "[[link]]\nto = \"2001:db8::/129\"\n[connect]"),
            base.replace("[client]", "[nope]"),
            String::new(),
        ] {
            scenario(text.as_bytes());
        }
    }

    #[test]
    fn broken_runs_are_caught() {
        let (_, sc) = library()
            .into_iter()
            .find(|(_, s)| s.name == "happy-dual-stack")
            .unwrap();
        let good = ran(&sc);
        check_run(&sc, &good);

        let mut run = good.clone();
        run.violations.push("connection 1 settled twice".into());
        let v = violation(|| check_run(&sc, &run)).unwrap();
        assert!(v.contains("connection 1 settled twice"), "{v}");

        let mut run = good.clone();
        run.connections[0].outcome = ConnOutcome::Ready {
            remote: "203.0.113.99:443".parse().unwrap(),
            interface: Some(1),
        };
        let v = violation(|| check_run(&sc, &run)).unwrap();
        assert!(v.contains("where no server listens"), "{v}");

        let mut run = good.clone();
        run.connections[0].settled = None;
        let v = violation(|| check_run(&sc, &run)).unwrap();
        assert!(v.contains("never settled"), "{v}");

        let mut run = good.clone();
        run.connections.push(run.connections[0].clone());
        let v = violation(|| check_run(&sc, &run)).unwrap();
        assert!(v.contains("connect.repeat = 1"), "{v}");

        let mut again = good.clone();
        again.steps += 1;
        assert!(!same_run(&good, &again));
    }
}
