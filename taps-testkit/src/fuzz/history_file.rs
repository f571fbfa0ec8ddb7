//! The `history_file` target: arbitrary bytes as a connection history file
//! ([`history_file`]).

use taps_core::race::{MAX_SAVED_NAMES, MAX_SAVED_OUTCOMES, SavedHistory, history_file_checksum};
use taps_core::{Config, Input, Instant, Interface, InterfaceKind, Machine};

use crate::contract::nonempty;

/// The wall clock the target reads files at (UNIX seconds), moved by the
/// first byte so that entries expire or not.
const UNIX_BASE: u64 = 1_800_000_000;

/// **history_file**: the first byte picks the mode and the reading time;
/// the rest is the file itself (even modes) or the lines of a file that
/// the target seals with a correct header, count and checksum (odd modes),
/// so the fuzzer reaches the line parsers rather than the checksum.
/// Reading never panics and either fails with an error that says what was
/// wrong, or gives a history within the bounds, whose file reads back, the
/// same after one round (what is written always reads back); restored into
/// a machine and saved again, every entry is accounted for and the result
/// encodes to a valid file.
pub fn history_file(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = UNIX_BASE + u64::from(mode >> 1) * 97;
    let bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        seal(rest)
    };
    let saved = match SavedHistory::decode(&bytes, now) {
        Ok(s) => s,
        Err(e) => return nonempty(&e),
    };
    if saved.outcomes.len() > MAX_SAVED_OUTCOMES || saved.https.len() > MAX_SAVED_NAMES {
        violated!(
            "a file read past its bounds: {} outcomes, {} names",
            saved.outcomes.len(),
            saved.https.len()
        );
    }
    let once = read_back(&saved, now);
    let twice = read_back(&once, now);
    if twice != once {
        violated!("a history changes on its second round trip: {once:?} then {twice:?}");
    }
    let mut machine = Machine::new(Config::new(1));
    let at = Instant::from_millis(86_400_000);
    let eth0 = Interface::new("eth0", 2, InterfaceKind::Wired, &["192.0.2.10/24"])
        .unwrap_or_else(|e| violated!("constant interface: {e}"));
    machine.handle(at, Input::InterfacesChanged(vec![eth0]));
    let restored = machine.memory().restore(at, &saved);
    let total = saved.outcomes.len() + saved.https.len();
    if restored.outcomes + restored.https + restored.skipped != total {
        violated!("restoring {total} entries accounted for {restored:?}");
    }
    let again = machine.memory().save(at);
    read_back(&again, now);
}

/// The history written and read again; a written file that does not read
/// back is a violation.
fn read_back(saved: &SavedHistory, now: u64) -> SavedHistory {
    let text = saved.encode(now);
    SavedHistory::decode(text.as_bytes(), now)
        .unwrap_or_else(|e| violated!("a written file does not read back: {e}\n{text}"))
}

/// `body` between a version 1 header and a correct `end` line.
fn seal(body: &[u8]) -> Vec<u8> {
    let mut file = b"taps-history 1\n".to_vec();
    file.extend_from_slice(body);
    if !file.ends_with(b"\n") {
        file.push(b'\n');
    }
    let lines = file.iter().filter(|b| **b == b'\n').count() - 1;
    let sum = history_file_checksum(&file);
    file.extend_from_slice(format!("end {lines} {sum:016x}\n").as_bytes());
    file
}
