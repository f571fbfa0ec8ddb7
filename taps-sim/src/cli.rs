//! The `taps-sim` command.
//!
//! ```text
//! taps-sim [--verbose]                       built-in dual-stack world, IPv6 blackholed: the comparison
//!                                            table, then each policy's bars (--verbose: full reports)
//! taps-sim run FILE [--seed N] [--policy P] [--json] [--svg OUT.svg] [--check-determinism]
//! taps-sim check PATH... [--check-determinism]     every scenario with an [expect]; non-zero exit on failure
//! taps-sim compare FILE [--seed N] [--verbose]    every policy and the oracle side by side
//! taps-sim schema                          every scenario key, its default and meaning (REFERENCE.toml)
//! taps-sim population --profile seed-telemetry --connections N --seed S [--json] [--check-determinism]
//! taps-sim --version
//! ```
//!
//! A usage error is one line, then `try 'taps-sim --help' for more
//! information`.
//!
//! Exit status: 0 on success, 1 when a check or a determinism check fails,
//! 2 on a usage error, an unreadable scenario or a simulation error.

use std::io::Write;
use std::path::{Path, PathBuf};

use taps_core::race::Policy;

use crate::expect::check;
use crate::population::{PROFILES, run_population};
use crate::report::{Report, ms};
use crate::scenario::{Scenario, ScenarioError};
use crate::world::RunOptions;
use crate::{BUILTIN, POLICIES, REFERENCE, run_scenario};

/// What a usage error ends with, after its one line (curl's wording): the
/// whole usage text would bury the line that says what was wrong.
pub const TRY_HELP: &str = "try 'taps-sim --help' for more information";

/// The usage text.
pub const USAGE: &str = "\
usage:
  taps-sim [--verbose]                        race the built-in world (dual-stack, IPv6 blackholed)
                                              under every policy and the oracle: the comparison
                                              table, then each policy's waterfall bars;
                                              --verbose adds the full event lists
  taps-sim run FILE [--seed N] [--policy hev3|rfc6555|sequential] [--json] [--svg OUT.svg]
               [--check-determinism]
  taps-sim check PATH... [--check-determinism]
                                              run every scenario (files or directories) that has
                                              an [expect]; exit 1 on any failure
  taps-sim compare FILE [--seed N] [--verbose]
                                              every policy and the oracle side by side
  taps-sim population --profile seed-telemetry --connections N --seed S [--json]
               [--check-determinism]
  taps-sim schema                             every scenario key with its default and meaning
  taps-sim --version                          print the version
";

struct Args {
    positional: Vec<String>,
    seed: Option<u64>,
    policy: Option<Policy>,
    json: bool,
    svg: Option<PathBuf>,
    determinism: bool,
    verbose: bool,
    profile: Option<String>,
    connections: Option<usize>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        positional: Vec::new(),
        seed: None,
        policy: None,
        json: false,
        svg: None,
        determinism: false,
        verbose: false,
        profile: None,
        connections: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("option {name}: needs a value"))
        };
        match arg.as_str() {
            "--seed" => {
                let v = value("--seed")?;
                a.seed = Some(v.parse().map_err(|_| {
                    format!("--seed {v:?}: expected a whole number from 0 to 2^64-1")
                })?);
            }
            "--policy" => {
                let v = value("--policy")?;
                a.policy = Some(v.parse()?);
            }
            "--json" => a.json = true,
            "--svg" => a.svg = Some(PathBuf::from(value("--svg")?)),
            "--check-determinism" => a.determinism = true,
            "--verbose" | "-v" => a.verbose = true,
            "--profile" => a.profile = Some(value("--profile")?),
            "--connections" => {
                let v = value("--connections")?;
                a.connections = Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--connections {v:?}: expected a whole number above 0")
                })?);
            }
            s if s.starts_with("--") => return Err(format!("option {s}: is unknown")),
            _ => a.positional.push(arg.clone()),
        }
    }
    Ok(a)
}

/// Runs the command with `args` (without the program name), writing to
/// `out` and `err`; returns the exit status.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (command, rest) = match args.split_first() {
        None => return builtin(false, out, err),
        Some((v, [])) if matches!(v.as_str(), "--verbose" | "-v") => {
            return builtin(true, out, err);
        }
        Some((c, rest)) => (c.as_str(), rest),
    };
    if matches!(command, "help" | "--help" | "-h") {
        let _ = write!(out, "{USAGE}");
        return 0;
    }
    if matches!(command, "--version" | "-V") {
        let _ = writeln!(out, "taps-sim {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    if command == "schema" && rest.is_empty() {
        let _ = write!(out, "{REFERENCE}");
        return 0;
    }
    let a = match parse_args(rest) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(err, "taps-sim: {e}\n{TRY_HELP}");
            return 2;
        }
    };
    let allowed: &[&str] = match command {
        "run" => &["seed", "policy", "json", "svg", "det"],
        "check" => &["det"],
        "compare" => &["seed", "verbose"],
        "population" => &["seed", "json", "det", "profile", "connections"],
        other => {
            let _ = writeln!(err, "taps-sim: unknown command {other:?}\n{TRY_HELP}");
            return 2;
        }
    };
    let given = [
        ("seed", a.seed.is_some()),
        ("policy", a.policy.is_some()),
        ("json", a.json),
        ("svg", a.svg.is_some()),
        ("det", a.determinism),
        ("verbose", a.verbose),
        ("profile", a.profile.is_some()),
        ("connections", a.connections.is_some()),
    ];
    for (name, on) in given {
        if on && !allowed.contains(&name) {
            let flag = if name == "det" {
                "check-determinism"
            } else {
                name
            };
            let _ = writeln!(
                err,
                "taps-sim {command}: --{flag} does not apply here\n{TRY_HELP}"
            );
            return 2;
        }
    }
    match command {
        "run" => cmd_run(&a, out, err),
        "check" => cmd_check(&a, out, err),
        "compare" => cmd_compare(&a, out, err),
        _ => cmd_population(&a, out, err),
    }
}

fn one_file(a: &Args, command: &str, err: &mut dyn Write) -> Option<Scenario> {
    let [file] = a.positional.as_slice() else {
        let _ = writeln!(
            err,
            "taps-sim {command}: give exactly one scenario file\n{TRY_HELP}"
        );
        return None;
    };
    match Scenario::load_with_warnings(Path::new(file)) {
        Ok((s, warnings)) => {
            for w in warnings {
                let _ = writeln!(err, "taps-sim: warning: {file}: {w}");
            }
            Some(s)
        }
        Err(e) => {
            let _ = writeln!(err, "taps-sim: {}", refused(file, &e));
            None
        }
    }
}

/// A refused file's problems: on one line when there is one, else one per
/// line under a count, so the first is not lost in the file name's line.
fn refused(file: &str, e: &ScenarioError) -> String {
    match e {
        ScenarioError::Invalid(problems) if problems.len() > 1 => {
            let mut s = format!("{file}: {} problems", problems.len());
            for p in problems {
                s.push_str("\n  ");
                s.push_str(&p.to_string());
            }
            s
        }
        e => format!("{file}: {e}"),
    }
}

fn cmd_run(a: &Args, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let Some(sc) = one_file(a, "run", err) else {
        return 2;
    };
    let mut opts = RunOptions::of(&sc);
    opts.seed = a.seed.unwrap_or(opts.seed);
    opts.policy = a.policy.unwrap_or(opts.policy);
    let report = match run_scenario(&sc, opts, true) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "taps-sim: {}: {e}", sc.name);
            return 2;
        }
    };
    if a.json {
        let _ = writeln!(out, "{}", report.json());
    } else {
        let _ = write!(out, "{}", report.text(true));
    }
    if let Some(path) = &a.svg {
        if let Err(e) = std::fs::write(path, crate::svg::render(&report)) {
            let _ = writeln!(err, "taps-sim: cannot write {}: {e}", path.display());
            return 2;
        }
        if !a.json {
            let _ = writeln!(out, "waterfall drawn to {}", path.display());
        }
    }
    if a.determinism {
        return determinism(&sc, opts, &report, out, err);
    }
    i32::from(!report.run.violations.is_empty())
}

fn determinism(
    sc: &Scenario,
    opts: RunOptions,
    first: &Report,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match run_scenario(sc, opts, false) {
        Ok(again)
            if again.trace_hash == first.trace_hash
                && again.run.end == first.run.end
                && again.run.wire_hash == first.run.wire_hash =>
        {
            if !first.connections.is_empty() {
                let _ = writeln!(
                    out,
                    "deterministic: the rerun's trace hash is {:016x} too",
                    again.trace_hash
                );
            }
            if first.run.wire_bytes > 0 {
                let _ = writeln!(
                    out,
                    "deterministic: the rerun's {} real TLS bytes are the same (wire hash {:016x})",
                    again.run.wire_bytes, again.run.wire_hash
                );
            }
            0
        }
        Ok(again) => {
            let _ = writeln!(
                err,
                "NOT deterministic: {} gave trace hash {:016x} and wire hash {:016x}, then {:016x} and {:016x}",
                sc.name,
                first.trace_hash,
                first.run.wire_hash,
                again.trace_hash,
                again.run.wire_hash
            );
            1
        }
        Err(e) => {
            let _ = writeln!(err, "taps-sim: {}: {e}", sc.name);
            2
        }
    }
}

/// Scenario files under `path`: the file itself, or every `*.toml` in the
/// directory and below, sorted by path. What `taps-sim check` runs; public
/// so tests go through the library as it does.
pub fn scenario_files(path: &Path, into: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            if e.is_dir() || e.extension().is_some_and(|x| x == "toml") {
                scenario_files(&e, into)?;
            }
        }
    } else {
        into.push(path.to_path_buf());
    }
    Ok(())
}

fn cmd_check(a: &Args, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if a.positional.is_empty() {
        let _ = writeln!(
            err,
            "taps-sim check: give scenario files or directories\n{TRY_HELP}"
        );
        return 2;
    }
    let mut files = Vec::new();
    for p in &a.positional {
        if let Err(e) = scenario_files(Path::new(p), &mut files) {
            let _ = writeln!(err, "taps-sim: {p}: {e}");
            return 2;
        }
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for file in &files {
        let shown = file.display();
        let sc = match Scenario::load_with_warnings(file) {
            Ok((s, warnings)) => {
                for w in warnings {
                    let _ = writeln!(out, "warn {shown}: {w}");
                }
                s
            }
            Err(e) => {
                let _ = writeln!(out, "FAIL {}", refused(&shown.to_string(), &e));
                failed += 1;
                continue;
            }
        };
        let Some(expect) = &sc.expect else {
            let _ = writeln!(out, "skip {} ({shown}): no [expect]", sc.name);
            skipped += 1;
            continue;
        };
        let opts = RunOptions::of(&sc);
        let replay = format!(
            "taps-sim run {shown} --seed {} --policy {}",
            opts.seed,
            opts.policy.name()
        );
        let report = match run_scenario(&sc, opts, expect_needs_oracle(&sc)) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(out, "FAIL {} ({shown}): {e}\n  replay: {replay}", sc.name);
                failed += 1;
                continue;
            }
        };
        let mut failures = check(expect, &report);
        if a.determinism {
            match run_scenario(&sc, opts, false) {
                Ok(again)
                    if again.trace_hash == report.trace_hash
                        && again.run.wire_hash == report.run.wire_hash => {}
                Ok(again) => failures.push(format!(
                    "not deterministic: trace hash {:016x} and wire hash {:016x}, then {:016x} and {:016x}",
                    report.trace_hash, report.run.wire_hash, again.trace_hash, again.run.wire_hash
                )),
                Err(e) => failures.push(format!("the rerun failed: {e}")),
            }
        }
        if failures.is_empty() {
            let summary =
                report
                    .connections
                    .first()
                    .map_or_else(String::new, |c| match c.time_to_ready {
                        Some(t) => format!("ready in {}", ms(t)),
                        None => c.outcome.to_string(),
                    });
            let _ = writeln!(out, "pass {} ({shown}): {summary}", sc.name);
            passed += 1;
        } else {
            let _ = writeln!(out, "FAIL {} ({shown})", sc.name);
            for f in failures {
                let _ = writeln!(out, "  {f}");
            }
            let _ = writeln!(out, "  replay: {replay}");
            failed += 1;
        }
    }
    let _ = writeln!(
        out,
        "{passed} passed, {failed} failed, {skipped} without [expect]"
    );
    i32::from(failed > 0)
}

fn expect_needs_oracle(sc: &Scenario) -> bool {
    sc.expect
        .as_ref()
        .is_some_and(|e| e.all.oracle.is_some() || e.each.iter().any(|c| c.oracle.is_some()))
}

/// Runs every policy on `sc` and prints the comparison table first, then
/// each policy's bars, or with `verbose` each policy's full report (event
/// lists included). The table states outcome, time, attempts and winner
/// once, so the bars below it carry only what the table cannot.
fn compare(
    sc: &Scenario,
    seed: u64,
    verbose: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut reports = Vec::new();
    for policy in POLICIES {
        let opts = RunOptions {
            policy,
            seed,
            ..RunOptions::of(sc)
        };
        match run_scenario(sc, opts, policy == Policy::Hev3) {
            Ok(r) => reports.push(r),
            Err(e) => {
                let _ = writeln!(err, "taps-sim: {} under {}: {e}", sc.name, policy.name());
                return 2;
            }
        }
    }
    if let Some(d) = &sc.description {
        let _ = writeln!(out, "{}\n", d.trim());
    }
    let _ = writeln!(out, "{}", comparison_table(&reports));
    for r in &reports {
        let text = if verbose { r.text(false) } else { r.brief() };
        let _ = writeln!(out, "{text}");
    }
    if !verbose {
        let _ = writeln!(out, "{}", crate::report::bar_legend().trim_start());
    }
    i32::from(reports.iter().any(|r| !r.run.violations.is_empty()))
}

/// The side-by-side table of `reports` (the first must be `hev3`, whose
/// oracle column is used).
pub fn comparison_table(reports: &[Report]) -> String {
    use core::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<14} {:<8} {:>14} {:>9}  {:<26} interface",
        "policy", "outcome", "time to ready", "attempts", "winner"
    );
    let oracle = reports
        .first()
        .map(|r| r.oracle.clone())
        .unwrap_or_default();
    let n = reports.first().map_or(0, |r| r.connections.len());
    for i in 0..n {
        let suffix = if n > 1 {
            format!(" #{}", i + 1)
        } else {
            String::new()
        };
        for r in reports {
            let Some(c) = r.connections.get(i) else {
                continue;
            };
            let (winner, iface) = c
                .winner
                .as_ref()
                .map_or(("-".to_string(), "-".to_string()), |(w, i)| {
                    (w.to_string(), i.clone())
                });
            let _ = writeln!(
                t,
                "{:<14} {:<8} {:>14} {:>9}  {:<26} {}",
                format!("{}{suffix}", r.run.policy.name()),
                c.outcome,
                c.time_to_ready.map_or_else(|| "-".into(), ms),
                c.attempts.len(),
                winner,
                iface
            );
        }
        let o = oracle.get(i).copied().flatten();
        let _ = writeln!(
            t,
            "{:<14} {:<8} {:>14} {:>9}  (fastest stack, started the moment its address was known)",
            format!("oracle{suffix}"),
            if o.is_some() { "ready" } else { "failed" },
            o.map_or_else(|| "-".into(), ms),
            if o.is_some() { "1" } else { "0" },
        );
    }
    t
}

fn cmd_compare(a: &Args, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let Some(sc) = one_file(a, "compare", err) else {
        return 2;
    };
    compare(&sc, a.seed.unwrap_or(sc.seed), a.verbose, out, err)
}

fn builtin(verbose: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let sc = match Scenario::parse(BUILTIN) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "taps-sim: the built-in scenario is broken: {e}");
            return 2;
        }
    };
    let code = compare(&sc, sc.seed, verbose, out, err);
    let _ = writeln!(
        out,
        "Every event: taps-sim --verbose; a similar world as a file: taps-sim run \
         scenarios/v6-blackhole.toml; every scenario: taps-sim check scenarios/; \
         every key of a scenario file: taps-sim schema; help: taps-sim help"
    );
    code
}

fn cmd_population(a: &Args, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if !a.positional.is_empty() {
        let _ = writeln!(
            err,
            "taps-sim population: unexpected {:?}\n{TRY_HELP}",
            a.positional
        );
        return 2;
    }
    let profile = a.profile.as_deref().unwrap_or("seed-telemetry");
    if !PROFILES.contains(&profile) {
        let _ = writeln!(
            err,
            "taps-sim population: unknown profile {profile:?}: expected {}",
            PROFILES.join(", ")
        );
        return 2;
    }
    let n = a.connections.unwrap_or(10_000);
    let seed = a.seed.unwrap_or(1);
    let report = match run_population(profile, n, seed) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "taps-sim population: {e}");
            return 2;
        }
    };
    if a.json {
        let _ = writeln!(out, "{}", report.json());
    } else {
        let _ = write!(out, "{}", report.text());
    }
    if a.determinism {
        match run_population(profile, n, seed) {
            Ok(again) if again.hash == report.hash => {
                if !a.json {
                    let _ = writeln!(
                        out,
                        "deterministic: the rerun's hash is {:016x} too",
                        again.hash
                    );
                }
            }
            Ok(again) => {
                let _ = writeln!(
                    err,
                    "NOT deterministic: population hash {:016x}, then {:016x}",
                    report.hash, again.hash
                );
                return 1;
            }
            Err(e) => {
                let _ = writeln!(err, "taps-sim population: the rerun failed: {e}");
                return 2;
            }
        }
    }
    i32::from(report.violations > 0)
}
