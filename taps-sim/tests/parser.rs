//! The scenario parser never panics: on arbitrary text, and on the library's
//! files with bytes changed, cut or spliced. What parses must also run
//! without panicking (within a modest step bound).

use std::path::PathBuf;

use proptest::prelude::*;
use taps_sim::{RunOptions, Scenario, World};

fn library_texts() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

fn parse_and_maybe_run(text: &str) {
    if let Ok(sc) = Scenario::parse(text) {
        let opts = RunOptions {
            max_steps: 20_000,
            ..RunOptions::of(&sc)
        };
        let _ = World::new().run(&sc, opts);
    }
}

/// Pieces that make mutations land on meaningful tokens.
const TOKENS: &[&str] = &[
    "\"",
    "=",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n",
    "0",
    "-1",
    "1e309",
    "nan",
    "inf",
    "\"*\"",
    "\"0ms\"",
    "\"999999h\"",
    "\"::/0\"",
    "\"0.0.0.0/0\"",
    "[[link]]\n",
    "[[event]]\n",
    "link = 0\n",
    "up = false\n",
    "loss = 1.0\n",
    "repeat = 10000\n",
    "delay = \"1ns\"\n",
    "action = \"reject\"\n",
    "fail = { a = \"truncate\" }\n",
    "tls = \"real\"\n",
    "cert = \"expired\"\n",
    "names = [\"*.example.com\", \"192.0.2.1\"]\n",
    "\u{0}",
    "é",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        parse_and_maybe_run(&text);
    }

    #[test]
    fn mutated_scenarios_never_panic(
        file in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, any::<prop::sample::Index>()), 1..6),
    ) {
        let texts = library_texts();
        let mut text = texts[file.index(texts.len())].clone().into_bytes();
        for (at, kind, token) in edits {
            let i = at.index(text.len().max(1)).min(text.len());
            match kind {
                0 => text.truncate(i),
                1 => {
                    let t = TOKENS[token.index(TOKENS.len())].as_bytes();
                    text.splice(i..i, t.iter().copied());
                }
                2 => {
                    let end = (i + 1 + token.index(16)).min(text.len());
                    text.drain(i..end);
                }
                _ => {
                    if i < text.len() {
                        text[i] = b"0123456789.:/\"[]ab"[token.index(18)];
                    }
                }
            }
        }
        parse_and_maybe_run(&String::from_utf8_lossy(&text));
    }
}
