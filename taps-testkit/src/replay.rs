//! Replaying fuzz inputs on stable Rust: finding the files of
//! `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/`, running each
//! through a target's body, and naming (in hex) every one that fails. The
//! replay tests of taps-core (the targets of [`crate::fuzz`]) and of
//! taps-sim (`scenario`) both use it, so they replay and report alike.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

/// The `fuzz/` directory (beside this crate's in the repository).
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted, without dotfiles
/// (`.gitkeep`, libFuzzer's temporaries).
pub fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

fn hex(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(512).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 512 {
        format!("{shown}… ({} bytes)", bytes.len())
    } else {
        shown
    }
}

/// Panics of dependencies' debug assertions that release builds (and the
/// fuzz builds, see `fuzz/Cargo.toml`) do not have, and that taps cannot
/// avoid. A replayed input that ends in one of these is not a failure.
///
/// - rustls 0.23 asserts that no fatal alert follows `send_close_notify`, so
///   a bad record arriving after taps sent close_notify (a graceful close
///   racing a hostile or broken peer) panics debug builds only
///   (rustls/rustls#959).
const UPSTREAM_DEBUG_ASSERTIONS: &[&str] = &["assertion failed: !self.sent_fatal_alert"];

fn is_upstream_debug_assertion(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    message.is_some_and(|m| UPSTREAM_DEBUG_ASSERTIONS.contains(&m))
}

/// Runs every corpus and artifact file of `target` through `run`, and fails
/// naming (and showing in hex) every file that panics. The corpus must not
/// be empty: a missing seed directory would make the replay pass vacuously.
pub fn replay(target: &str, run: fn(&[u8])) {
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ is empty");
    let mut failures = Vec::new();
    for path in corpus.iter().chain(&inputs("artifacts", target)) {
        let bytes = fs::read(path).expect("readable corpus file");
        match panic::catch_unwind(|| run(&bytes)) {
            Ok(()) => {}
            Err(payload) if is_upstream_debug_assertion(payload.as_ref()) => {
                eprintln!(
                    "{}: ended in a known upstream debug assertion",
                    path.display()
                );
            }
            Err(_) => failures.push(format!("{}: {}", path.display(), hex(&bytes))),
        }
    }
    assert!(
        failures.is_empty(),
        "{} input(s) of {target} fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
