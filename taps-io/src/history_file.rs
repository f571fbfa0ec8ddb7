//! The history file on disk: reading it with the wall clock, and writing
//! it so that no reader ever sees half of it. The format, its bounds and
//! its checks are the core's (`taps_core::race::SavedHistory`, RFC 9623
//! §4.2.1 performance caches kept across processes); this module performs
//! them ([`Taps::load_history`](crate::Taps::load_history),
//! [`Taps::save_history`](crate::Taps::save_history)).
//!
//! Saving merges: the file as it is now (if it is valid) and what this
//! process knows are merged, newest wins, and the result is written to a
//! temporary file in the same directory, flushed, and renamed over the old
//! one. A rename within one file system is atomic, so two processes saving
//! at once each leave a whole file, never a mixture; the later rename wins,
//! and it holds what the other had saved when it read the file.

use core::fmt;
use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use taps_core::race::{HistoryFileError, MAX_FILE_BYTES, SavedHistory};

/// Why a history file was not used. The `Taps` carries on without it, and
/// the next save replaces it. Its Display is one line, for a warning.
#[derive(Debug)]
pub struct HistoryWarning {
    /// The file.
    pub path: PathBuf,
    /// What was wrong.
    pub problem: HistoryProblem,
}

/// What was wrong with a history file.
#[derive(Debug)]
#[non_exhaustive]
pub enum HistoryProblem {
    /// There is no such file (yet).
    Missing,
    /// It could not be read.
    Unreadable(io::Error),
    /// Its contents were not believed: cut short, damaged, of another
    /// version, or not a history file.
    Invalid(HistoryFileError),
}

impl fmt::Display for HistoryWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.problem {
            HistoryProblem::Missing => write!(
                f,
                "history file {path} does not exist yet; starting without history (it is created on save)"
            ),
            HistoryProblem::Unreadable(e) => write!(
                f,
                "history file {path} cannot be read ({e}); starting without history"
            ),
            HistoryProblem::Invalid(e) => write!(
                f,
                "history file {path} ignored: {e}; starting without history (it is replaced on save)"
            ),
        }
    }
}

impl std::error::Error for HistoryWarning {}

/// The wall clock in UNIX seconds (a clock before 1970 reads as 0, which
/// makes every saved entry look expired or new, never wrong).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads and checks the file at `path`, as of `unix_now`.
pub(crate) fn read(path: &Path, unix_now: u64) -> Result<SavedHistory, HistoryWarning> {
    let warn = |problem| HistoryWarning {
        path: path.to_owned(),
        problem,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(warn(HistoryProblem::Missing)),
        Err(e) => return Err(warn(HistoryProblem::Unreadable(e))),
    };
    // One byte over the bound is enough to know it is over.
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| warn(HistoryProblem::Unreadable(e)))?;
    SavedHistory::decode(&bytes, unix_now).map_err(|e| warn(HistoryProblem::Invalid(e)))
}

/// Tells temporary files of one process apart.
static TEMP_SERIAL: AtomicU64 = AtomicU64::new(0);

/// Merges `ours` with the file at `path` (newest wins, entries older than
/// `lifetime` dropped) and replaces the file atomically.
pub(crate) fn write(path: &Path, mut ours: SavedHistory, lifetime: Duration) -> io::Result<()> {
    let now = unix_now();
    if let Ok(theirs) = read(path, now) {
        ours.merge(theirs, lifetime);
    }
    let text = ours.encode(now);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file name", path.display()),
        )
    })?;
    // In the same directory, so the rename stays within one file system.
    let temp = path.with_file_name(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_SERIAL.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = File::create(&temp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use taps_core::race::{Outcome, SavedOutcome};

    fn dir(test: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("taps-history-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn one(addr: IpAddr, age: u64) -> SavedHistory {
        SavedHistory {
            outcomes: vec![SavedOutcome {
                interface: Some("eth0".into()),
                addr,
                outcome: Outcome::Failed,
                age: Duration::from_secs(age),
                won_age: None,
            }],
            https: vec![],
        }
    }

    #[test]
    fn missing_damaged_and_future_files_warn_once_and_are_replaced() {
        let d = dir("bad");
        let path = d.join("history");
        let now = unix_now();
        let w = read(&path, now).unwrap_err();
        assert!(matches!(w.problem, HistoryProblem::Missing));
        assert_eq!(w.to_string().lines().count(), 1, "{w}");
        for (content, want) in [
            (&b"taps-history 9\nfrom the future\n"[..], "version 9"),
            (&b"taps-history 1\no 1 eth0 192.0.2.1 fai"[..], "cut short"),
            (&b"\x00\xff garbage"[..], "not a taps history file"),
        ] {
            fs::write(&path, content).unwrap();
            let w = read(&path, now).unwrap_err();
            let text = w.to_string();
            assert!(text.contains(want), "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
            // Saving replaces the bad file with a good one.
            write(
                &path,
                one("192.0.2.1".parse().unwrap(), 0),
                Duration::from_secs(600),
            )
            .unwrap();
            assert_eq!(read(&path, now).unwrap().outcomes.len(), 1);
        }
        // Too large: read no further than the bound.
        fs::write(&path, vec![b'x'; MAX_FILE_BYTES + 100]).unwrap();
        let w = read(&path, now).unwrap_err();
        assert!(
            matches!(
                w.problem,
                HistoryProblem::Invalid(HistoryFileError::TooLarge(n)) if n == MAX_FILE_BYTES + 1
            ),
            "{w}"
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn saving_merges_with_what_the_file_holds_newest_wins() {
        let d = dir("merge");
        let path = d.join("history");
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        write(&path, one(a, 0), Duration::from_secs(600)).unwrap();
        let mut newer = one(b, 0);
        // An older record of `a` does not replace the file's newer one.
        newer.outcomes.push(SavedOutcome {
            outcome: Outcome::Unfinished,
            ..one(a, 500).outcomes[0].clone()
        });
        write(&path, newer, Duration::from_secs(600)).unwrap();
        let got = read(&path, unix_now()).unwrap();
        let find = |x: IpAddr| got.outcomes.iter().find(|o| o.addr == x).map(|o| o.outcome);
        assert_eq!(find(a), Some(Outcome::Failed));
        assert_eq!(find(b), Some(Outcome::Failed));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn concurrent_writers_never_leave_a_torn_file_and_merge() {
        let d = dir("concurrent");
        let path = d.join("history");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    match read(&path, unix_now()) {
                        Ok(_) => reads += 1,
                        Err(HistoryWarning {
                            problem: HistoryProblem::Missing,
                            ..
                        }) => {}
                        Err(w) => panic!("a reader saw a bad file: {w}"),
                    }
                }
                reads
            })
        };
        let writers: Vec<_> = (0..4u8)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        let addr = IpAddr::from([10, t, 0, i]);
                        write(&path, one(addr, 0), Duration::from_secs(600)).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let reads = reader.join().unwrap();
        assert!(reads > 0, "the reader never saw the file");
        // Whole at the end too. Without a lock two savers may both read
        // before either renames, and the later rename drops the other's
        // newest entry: merging narrows that window, it cannot close it.
        let last = read(&path, unix_now()).unwrap();
        assert!(!last.outcomes.is_empty());
        // No temporary files are left behind.
        let left: Vec<_> = fs::read_dir(&d).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        let _ = fs::remove_dir_all(&d);
    }
}
