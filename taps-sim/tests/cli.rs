//! The `taps-sim` command: output formats, errors and exit codes.

use std::path::PathBuf;

use taps_sim::cli::run;

fn sim(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&args, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn scenario(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../scenarios/{name}.toml"))
        .display()
        .to_string()
}

#[test]
fn no_arguments_compares_every_policy_and_the_oracle() {
    let (code, out, err) = sim(&[]);
    assert_eq!(code, 0, "{err}");
    for policy in ["hev3", "rfc6555", "sequential", "oracle"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(policy) && l.contains("ready")),
            "no {policy} row in\n{out}"
        );
    }
    assert!(
        out.contains("hev3           ready        327.000 ms"),
        "{out}"
    );
    assert!(
        out.contains("sequential     ready     127077.000 ms"),
        "{out}"
    );
    assert!(
        out.contains("oracle         ready         74.000 ms"),
        "{out}"
    );
    // The table leads (after the description), the bars of each policy
    // follow, the event lists only with --verbose, and the legend once.
    let table = out.find("policy         outcome").expect("a table");
    let first_bars = out.find("hev3 (seed 7)").expect("hev3's bars");
    assert!(table < first_bars, "{out}");
    assert!(out.contains("#2 192.0.2.1:443 wlan0"), "{out}");
    assert!(!out.contains("race to example.com:443"), "{out}");
    assert_eq!(out.matches("- connecting").count(), 1, "{out}");
    assert_eq!(out.matches("127077.000 ms").count(), 1, "said once: {out}");
    let (code, verbose, err) = sim(&["--verbose"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        verbose.matches("race to example.com:443").count(),
        3,
        "{verbose}"
    );
    assert!(verbose.find("policy         outcome").unwrap() < verbose.find("race to").unwrap());
}

#[test]
fn json_has_exactly_the_documented_shape() {
    let (code, out, err) = sim(&["run", &scenario("v6-blackhole"), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect::<Vec<_>>()
    };
    let mut top = keys(&v);
    top.sort();
    assert_eq!(
        top,
        [
            "connections",
            "policy",
            "scenario",
            "seed",
            "sim_ms",
            "trace_hash",
            "wall_ms"
        ]
    );
    assert_eq!(v["scenario"], "v6-blackhole");
    assert_eq!(v["seed"], 7);
    assert_eq!(v["policy"], "hev3");
    assert_eq!(v["sim_ms"], 322.0);
    assert_eq!(v["trace_hash"].as_str().unwrap().len(), 16);
    let c = &v["connections"][0];
    let mut ck = keys(c);
    ck.sort();
    assert_eq!(
        ck,
        ["attempts", "dns", "outcome", "time_to_ready_ms", "winner"]
    );
    assert_eq!(c["outcome"], "ready");
    assert_eq!(c["time_to_ready_ms"], 322.0);
    assert_eq!(c["winner"]["remote"], "192.0.2.1:443");
    assert_eq!(c["winner"]["interface"], "wlan0");
    assert_eq!(c["winner"]["stack"], "tcp+tls");
    let a = &c["attempts"][0];
    let mut ak = keys(a);
    ak.sort();
    assert_eq!(
        ak,
        [
            "end_ms",
            "interface",
            "reason",
            "remote",
            "result",
            "stack",
            "start_ms"
        ]
    );
    assert_eq!(a["remote"], "[2001:db8::1]:443");
    assert_eq!(a["result"], "cancelled");
    assert_eq!(a["start_ms"], 30.0);
    assert_eq!(a["end_ms"], 322.0);
    assert_eq!(c["attempts"][1]["result"], "won");
    let d = &c["dns"][0];
    let mut dk = keys(d);
    dk.sort();
    assert_eq!(dk, ["answered_ms", "name", "result", "sent_ms", "type"]);
    assert_eq!(d["type"], "HTTPS");
    assert_eq!(d["name"], "example.com");
    assert_eq!(d["sent_ms"], 0.0);
    assert_eq!(d["answered_ms"], 30.0);
    let (_, failed, _) = sim(&["run", &scenario("all-addresses-dead"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&failed).unwrap();
    assert_eq!(v["connections"][0]["outcome"], "failed");
    assert!(v["connections"][0]["time_to_ready_ms"].is_null());
    assert_eq!(
        v["connections"][0]["attempts"][0]["reason"],
        "connection refused"
    );
}

#[test]
fn svg_is_drawn_and_well_formed() {
    let out_file = std::env::temp_dir().join(format!("taps-sim-{}.svg", std::process::id()));
    let path = out_file.display().to_string();
    let (code, out, err) = sim(&["run", &scenario("three-per-family"), "--svg", &path]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("waterfall drawn to"));
    let svg = std::fs::read_to_string(&out_file).unwrap();
    std::fs::remove_file(&out_file).unwrap();
    assert!(svg.starts_with("<?xml"));
    assert!(svg.trim_end().ends_with("</svg>"));
    // Every element opened is closed: a cheap well-formedness check.
    let opens = svg.matches("<text").count();
    assert_eq!(opens, svg.matches("</text>").count());
    assert_eq!(svg.matches("<rect").count(), svg.matches("<rect").count());
    assert!(svg.contains("★ won"));
    assert!(svg.contains(taps_sim::svg::WON) && svg.contains(taps_sim::svg::CANCELLED));
    assert!(!svg.contains("<2001"), "text is escaped");
}

#[test]
fn determinism_check_passes_for_run_and_population() {
    let (code, out, err) = sim(&["run", &scenario("lossy-link"), "--check-determinism"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deterministic"), "{out}");
    let (code, out, err) = sim(&[
        "population",
        "--profile",
        "seed-telemetry",
        "--connections",
        "200",
        "--seed",
        "5",
        "--check-determinism",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deterministic"), "{out}");
    for row in ["hev3", "rfc6555", "sequential", "oracle"] {
        assert!(out.lines().any(|l| l.starts_with(row)), "{out}");
    }
}

#[test]
fn determinism_check_compares_real_tls_bytes() {
    let (code, out, err) = sim(&[
        "run",
        &scenario("wrong-certificate-on-one-address"),
        "--check-determinism",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("real TLS bytes are the same (wire hash "),
        "{out}"
    );
    assert!(
        out.contains("failed: TLS: the certificate is for `other.example`, not `example.com`"),
        "{out}"
    );
    // Modelled TLS carries no bytes, and says nothing about them.
    let (_, out, _) = sim(&["run", &scenario("lossy-link"), "--check-determinism"]);
    assert!(!out.contains("wire hash"), "{out}");
}

#[test]
fn population_json_is_reproducible() {
    let args = [
        "population",
        "--connections",
        "100",
        "--seed",
        "3",
        "--json",
    ];
    let (code, a, _) = sim(&args);
    assert_eq!(code, 0);
    let (_, b, _) = sim(&args);
    let (va, vb): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&a).unwrap(),
        serde_json::from_str(&b).unwrap(),
    );
    assert_eq!(va["hash"], vb["hash"]);
    assert_eq!(va["policies"], vb["policies"]);
    // hev3 (RTT-derived delay), hev3-static, rfc6555, sequential, oracle.
    assert_eq!(va["policies"].as_array().unwrap().len(), 5);
    assert_eq!(va["policies"][1]["policy"], "hev3-static");
    assert_eq!(va["policies"][4]["policy"], "oracle");
}

#[test]
fn usage_and_scenario_errors_exit_2_with_a_message() {
    let (code, _, err) = sim(&["run"]);
    assert_eq!(code, 2);
    assert!(err.contains("give exactly one scenario file"), "{err}");
    let (code, _, err) = sim(&["run", &scenario("v6-blackhole"), "--policy", "fastest"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown racing policy \"fastest\""), "{err}");
    let (code, _, err) = sim(&["frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown command"), "{err}");
    let (code, _, err) = sim(&["check", &scenario("v6-blackhole"), "--json"]);
    assert_eq!(code, 2);
    assert!(err.contains("--json does not apply"), "{err}");
    let (code, _, err) = sim(&["run", "/nonexistent/x.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read /nonexistent/x.toml"), "{err}");
    let (code, _, err) = sim(&["population", "--profile", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown profile"), "{err}");
}

#[test]
fn seed_and_policy_override_the_file() {
    let (_, out, _) = sim(&[
        "run",
        &scenario("v6-blackhole"),
        "--policy",
        "sequential",
        "--seed",
        "11",
    ]);
    assert!(
        out.starts_with("scenario v6-blackhole · policy sequential · seed 11"),
        "{out}"
    );
    assert!(out.contains("ready after 127072.000 ms"), "{out}");
}

/// A usage error is its one line and a pointer to --help, not the whole
/// usage text (curl's way).
#[test]
fn usage_errors_are_one_line() {
    for (args, line) in [
        (
            &["frobnicate"][..],
            "taps-sim: unknown command \"frobnicate\"",
        ),
        (
            &["run", "x.toml", "--bogus"],
            "taps-sim: option --bogus: is unknown",
        ),
        (
            &["run", "x.toml", "--seed"],
            "taps-sim: option --seed: needs a value",
        ),
    ] {
        let (code, out, err) = sim(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(
            err,
            format!("{line}\ntry 'taps-sim --help' for more information\n"),
            "{args:?}"
        );
    }
}

#[test]
fn version_prints_the_crate_version() {
    for flag in ["--version", "-V"] {
        let (code, out, _) = sim(&[flag]);
        assert_eq!(code, 0);
        assert_eq!(out, format!("taps-sim {}\n", env!("CARGO_PKG_VERSION")));
    }
}
