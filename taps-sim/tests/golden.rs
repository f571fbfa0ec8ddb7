//! Golden waterfalls: the text reports of the canonical scenarios, checked
//! into `tests/golden/` and compared byte for byte. After an intended
//! change, regenerate them with `TAPS_BLESS=1 cargo test -p taps-sim --test
//! golden` and review the diff.

use std::path::PathBuf;

use taps_core::race::Policy;
use taps_sim::{POLICIES, RunOptions, Scenario, run_scenario};

/// (scenario, policies) whose reports are kept.
const CANONICAL: &[(&str, &[Policy])] = &[
    ("v6-blackhole", &POLICIES),
    ("v6-blackhole-kernel-rtt", &[Policy::Hev3]),
    ("happy-dual-stack", &[Policy::Hev3]),
    ("three-per-family", &POLICIES),
    ("https-hints-slow-a-aaaa", &[Policy::Hev3]),
    ("truncated-answer", &[Policy::Hev3]),
    ("forged-answers", &[Policy::Hev3]),
    ("interface-down-mid-race", &[Policy::Hev3]),
    ("all-addresses-dead", &[Policy::Hev3]),
    ("repeated-connections", &[Policy::Hev3]),
    ("lossy-link", &[Policy::Hev3]),
    ("search-list", &[Policy::Hev3]),
    ("ula-blackhole", &[Policy::Hev3]),
    // Real TLS: rustls on both ends, seeded, so even these replay exactly.
    ("happy-dual-stack-real-tls", &[Policy::Hev3]),
    ("tls-stalled-first-address-real-tls", &[Policy::Hev3]),
    ("wrong-certificate-on-one-address", &[Policy::Hev3]),
];

#[test]
fn waterfalls_match_the_golden_files() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("TAPS_BLESS").is_some_and(|v| v == "1");
    let mut mismatches = Vec::new();
    for (name, policies) in CANONICAL {
        let sc = Scenario::load(&root.join(format!("../scenarios/{name}.toml"))).unwrap();
        for policy in *policies {
            let opts = RunOptions {
                policy: *policy,
                ..RunOptions::of(&sc)
            };
            let text = run_scenario(&sc, opts, true).unwrap().text(false);
            let path = root.join(format!("tests/golden/{name}.{}.txt", policy.name()));
            if bless {
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; create it with TAPS_BLESS=1", path.display()));
            if want != text {
                mismatches.push(format!(
                    "{} differs; got:\n{text}\n(regenerate with TAPS_BLESS=1 after checking the change is intended)",
                    path.display()
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
