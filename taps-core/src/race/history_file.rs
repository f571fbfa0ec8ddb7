//! Connection history that outlives the process: what a machine learned
//! about destinations (RFC 9623 §4.2.1 performance caches, HEv3 §5.3 "used
//! before", RTTs and failures) and what HTTPS records said about names
//! (RFC 9460 §2, with the TTL they have left), in a versioned, bounded text
//! file, as curl keeps its `--alt-svc` and `--hsts` files.
//!
//! This module is pure: bytes in, structs out, and back. Reading the clock
//! and the file system is the embedder's business (taps-io); the machine
//! saves and restores a [`SavedHistory`] through
//! [`Machine::memory`](crate::Machine::memory).
//!
//! # Times
//!
//! The core's [`Instant`](crate::Instant) has an arbitrary origin that
//! differs between processes, so a [`SavedHistory`] holds *ages* (how long
//! ago an outcome was recorded) and *remaining TTLs*, and the file holds
//! wall-clock UNIX seconds: [`SavedHistory::encode`] and
//! [`SavedHistory::decode`] take the wall clock's "now" to convert.
//!
//! # Keys
//!
//! In memory, history is keyed by (interface index, address). Indexes are
//! not stable across processes (an interface that is re-created gets a new
//! one), so the file keys by interface *name* (`eth0`, `wlan0`), which is
//! what a user and the kernel's configuration call it; `-` stands for the
//! system's default path (no interface reported). An entry whose interface
//! is absent when the file is restored is skipped.
//!
//! # Format, version 1
//!
//! UTF-8 text, one record per line, fields separated by one space:
//!
//! ```text
//! taps-history 1
//! o <at> <interface|-> <address> won <rtt-µs> <won-at|->
//! o <at> <interface|-> <address> failed - <won-at|->
//! o <at> <interface|-> <address> unfinished - <won-at|->
//! h <expires> <name> none
//! h <expires> <name> nxdomain
//! h <expires> <name> <priority> <target|.> [alpn=<id>,<id>] [no-default-alpn] [port=<n>] [ipv4hint=<a>,<a>] [ipv6hint=<a>,<a>] [ech]
//! end <records> <checksum>
//! ```
//!
//! - `o` lines are connection outcomes: when (`at`, UNIX seconds) the last
//!   race over that interface to that address ended, how, the handshake RTT
//!   of a win in microseconds, and when it last won (kept across later
//!   failures, HEv3 §5.3 "used before").
//! - `h` lines are HTTPS answers (RFC 9460 §2.3), one line per record, in
//!   answer order; all lines of one name carry the same `expires` (UNIX
//!   seconds). `none` is an answer with no HTTPS records (NODATA,
//!   RFC 2308 §5), `nxdomain` one whose name does not exist (the HTTPS
//!   name of a non-default port often does not, RFC 9460 §9.1). ALPN ids are percent-encoded outside `[A-Za-z0-9._~+/-]`.
//! - `end` closes the file: the number of records before it and the
//!   FNV-1a 64-bit checksum (16 hex digits) of every byte before the `end`
//!   line. A file without it was cut short; one whose checksum differs was
//!   damaged. Either is rejected whole, as is any line that does not parse:
//!   a half-believed file could send a connection the wrong way.
//!
//! A reader rejects a version it does not know
//! ([`HistoryFileError::UnsupportedVersion`]) rather than guess.
//!
//! # Bounds
//!
//! A file is at most [`MAX_FILE_BYTES`], a line at most [`MAX_LINE_BYTES`],
//! with at most [`MAX_SAVED_OUTCOMES`] outcomes and [`MAX_SAVED_NAMES`]
//! HTTPS names; an HTTPS answer holds at most
//! [`MAX_HTTPS_RECORDS_PER_ANSWER`] records, each at most
//! [`MAX_ADDRESSES_PER_ANSWER`] hints per family and [`MAX_ALPN_IDS`] ALPN
//! ids. Decoding never panics: anything beyond a bound, or malformed, is a
//! [`HistoryFileError`] that names the line and what was wrong.

use core::fmt;
use core::time::Duration;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::history::Outcome;
use crate::dns::{HttpsRecord, MAX_ADDRESSES_PER_ANSWER, MAX_HTTPS_RECORDS_PER_ANSWER};
use crate::endpoint::HostName;

/// The format version this module writes, and the only one it reads.
pub const HISTORY_FILE_VERSION: u32 = 1;
/// Bound on a history file's size.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Bound on one line (an HTTPS record with every hint fits).
pub const MAX_LINE_BYTES: usize = 4096;
/// Bound on saved outcomes (the default history holds 4096 entries).
pub const MAX_SAVED_OUTCOMES: usize = 4096;
/// Bound on saved HTTPS names (the default DNS cache holds 1024 names).
pub const MAX_SAVED_NAMES: usize = 1024;
/// Bound on ALPN ids per saved HTTPS record.
pub const MAX_ALPN_IDS: usize = 16;
/// Bound on an interface name in the file (Linux allows 15 bytes).
const MAX_INTERFACE_NAME: usize = 64;
/// Outcomes dated further in the future than this (a clock set back
/// between runs) are dropped: their age cannot be known.
const MAX_CLOCK_SKEW_SECS: u64 = 3600;

const MAGIC: &str = "taps-history";

/// One remembered outcome of racing an address over a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedOutcome {
    /// The interface's name; `None`: the system's default path.
    pub interface: Option<String>,
    /// The destination address.
    pub addr: IpAddr,
    /// How the last attempt ended.
    pub outcome: Outcome,
    /// How long ago it ended.
    pub age: Duration,
    /// How long ago an attempt to it last won, if one did.
    pub won_age: Option<Duration>,
}

/// What an HTTPS query said about a name, with the TTL it has left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedHttps {
    /// The name asked about.
    pub name: HostName,
    /// Seconds the answer may still be used (RFC 1035 §7.4).
    pub ttl_left: u32,
    /// The records in answer order; empty: the name has no HTTPS records
    /// (NODATA), or does not exist.
    pub records: Vec<HttpsRecord>,
    /// With no records: the name does not exist (NXDOMAIN), rather than
    /// has no HTTPS records (NODATA). Both mean "no HTTPS service" to a
    /// race; the trace tells them apart.
    pub nxdomain: bool,
}

/// What a machine remembers between runs: outcomes per (interface,
/// address) and HTTPS answers per name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedHistory {
    /// Connection outcomes, newest first.
    pub outcomes: Vec<SavedOutcome>,
    /// HTTPS answers, by name.
    pub https: Vec<SavedHttps>,
}

/// Why a history file was not believed. The whole file is ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryFileError {
    /// The file is empty.
    Empty,
    /// The first line is not `taps-history <version>`.
    NotAHistoryFile,
    /// A version this reader does not know (written by a newer taps).
    UnsupportedVersion(String),
    /// Larger than [`MAX_FILE_BYTES`].
    TooLarge(usize),
    /// The file ends before its `end` line: it was cut short.
    Truncated,
    /// The checksum in the `end` line does not match: it was damaged.
    ChecksumMismatch,
    /// The `end` line counts a different number of records.
    CountMismatch {
        /// What the `end` line says.
        said: usize,
        /// What the file holds.
        found: usize,
    },
    /// Something follows the `end` line.
    TrailingData,
    /// More outcomes or names than the bounds allow.
    TooManyRecords,
    /// A line that does not parse.
    BadLine {
        /// Its number, from 1.
        line: usize,
        /// What was wrong.
        why: &'static str,
    },
}

impl fmt::Display for HistoryFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryFileError::Empty => f.write_str("the file is empty"),
            HistoryFileError::NotAHistoryFile => {
                write!(f, "not a taps history file (no `{MAGIC}` first line)")
            }
            HistoryFileError::UnsupportedVersion(v) => write!(
                f,
                "format version {v} is not supported (this taps reads version {HISTORY_FILE_VERSION})"
            ),
            HistoryFileError::TooLarge(n) => {
                write!(f, "{n} bytes is over the limit of {MAX_FILE_BYTES}")
            }
            HistoryFileError::Truncated => f.write_str("the file was cut short (no `end` line)"),
            HistoryFileError::ChecksumMismatch => {
                f.write_str("the checksum does not match: the file was damaged")
            }
            HistoryFileError::CountMismatch { said, found } => {
                write!(
                    f,
                    "the `end` line counts {said} records, the file has {found}"
                )
            }
            HistoryFileError::TrailingData => f.write_str("data after the `end` line"),
            HistoryFileError::TooManyRecords => write!(
                f,
                "more than {MAX_SAVED_OUTCOMES} outcomes or {MAX_SAVED_NAMES} HTTPS names"
            ),
            HistoryFileError::BadLine { line, why } => write!(f, "line {line}: {why}"),
        }
    }
}

impl std::error::Error for HistoryFileError {}

/// The checksum of the `end` line over `bytes` (everything before it):
/// FNV-1a, 64 bits. It detects the damage a checksum must (bit flips, cut
/// or spliced lines), needs no dependency, and is fixed by the format.
/// Public for tools that write files by hand, and for the fuzz target.
pub fn history_file_checksum(bytes: &[u8]) -> u64 {
    fnv1a(bytes)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn interface_is_writable(name: &str) -> bool {
    !name.is_empty()
        && name != "-"
        && name.len() <= MAX_INTERFACE_NAME
        && name.bytes().all(|b| b.is_ascii_graphic())
}

fn alpn_byte_is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'+' | b'/' | b'-')
}

fn push_alpn(out: &mut String, id: &str) {
    for b in id.bytes() {
        if alpn_byte_is_plain(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn parse_alpn(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if alpn_byte_is_plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    // RFC 9460 §7.1.1: an id is 1 to 255 octets.
    if out.is_empty() || out.len() > 255 {
        return None;
    }
    String::from_utf8(out).ok()
}

fn push_list<T: fmt::Display>(out: &mut String, key: &str, items: &[T]) {
    if items.is_empty() {
        return;
    }
    let _ = write!(out, " {key}=");
    for (i, a) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{a}");
    }
}

fn outcome_rank(o: &SavedOutcome) -> (Duration, Option<&str>, IpAddr) {
    (o.age, o.interface.as_deref(), o.addr)
}

impl SavedHistory {
    /// The file's text, dated with `unix_now` (wall-clock UNIX seconds).
    /// Outcomes on interfaces whose names cannot be written (empty, with
    /// spaces or control characters) and HTTPS answers with more than the
    /// bounds allow are left out, as are entries beyond
    /// [`MAX_SAVED_OUTCOMES`] and [`MAX_SAVED_NAMES`] (the oldest outcomes,
    /// the soonest-expiring answers), so what is written always reads back.
    pub fn encode(&self, unix_now: u64) -> String {
        let mut tidy = self.clone();
        tidy.normalize(None);
        let mut out = format!("{MAGIC} {HISTORY_FILE_VERSION}\n");
        let mut records = 0usize;
        let mut line = String::new();
        for o in &tidy.outcomes {
            let iface = match &o.interface {
                None => "-",
                Some(n) if interface_is_writable(n) => n.as_str(),
                Some(_) => continue,
            };
            let at = unix_now.saturating_sub(o.age.as_secs());
            let (kind, rtt) = match o.outcome {
                Outcome::Won { rtt } => ("won", Some(rtt.as_micros())),
                Outcome::Failed => ("failed", None),
                Outcome::Unfinished => ("unfinished", None),
            };
            line.clear();
            let _ = write!(line, "o {at} {iface} {} {kind} ", o.addr);
            match rtt {
                Some(r) => {
                    let _ = write!(line, "{r}");
                }
                None => line.push('-'),
            }
            match o.won_age {
                Some(w) => {
                    let _ = write!(line, " {}", unix_now.saturating_sub(w.as_secs()));
                }
                None => line.push_str(" -"),
            }
            out.push_str(&line);
            out.push('\n');
            records += 1;
        }
        for h in &tidy.https {
            if h.records.len() > MAX_HTTPS_RECORDS_PER_ANSWER {
                continue;
            }
            let expires = unix_now.saturating_add(u64::from(h.ttl_left));
            if h.records.is_empty() {
                let word = if h.nxdomain { "nxdomain" } else { "none" };
                let _ = writeln!(out, "h {expires} {} {word}", h.name);
                records += 1;
                continue;
            }
            let mut lines = Vec::with_capacity(h.records.len());
            let mut ok = true;
            for r in &h.records {
                line.clear();
                let _ = write!(line, "h {expires} {} {} ", h.name, r.priority);
                match &r.target {
                    Some(t) => {
                        let _ = write!(line, "{t}");
                    }
                    None => line.push('.'),
                }
                if !r.alpn.is_empty() {
                    line.push_str(" alpn=");
                    for (i, id) in r.alpn.iter().enumerate() {
                        if i > 0 {
                            line.push(',');
                        }
                        push_alpn(&mut line, id);
                    }
                }
                if r.no_default_alpn {
                    line.push_str(" no-default-alpn");
                }
                if let Some(p) = r.port {
                    let _ = write!(line, " port={p}");
                }
                push_list(&mut line, "ipv4hint", &r.ipv4hint);
                push_list(&mut line, "ipv6hint", &r.ipv6hint);
                if r.ech {
                    line.push_str(" ech");
                }
                ok &= line.len() <= MAX_LINE_BYTES
                    && r.alpn.len() <= MAX_ALPN_IDS
                    && r.alpn.iter().all(|a| !a.is_empty() && a.len() <= 255)
                    && r.ipv4hint.len() <= MAX_ADDRESSES_PER_ANSWER
                    && r.ipv6hint.len() <= MAX_ADDRESSES_PER_ANSWER;
                lines.push(line.clone());
            }
            if !ok {
                continue;
            }
            for l in lines {
                out.push_str(&l);
                out.push('\n');
                records += 1;
            }
        }
        let sum = fnv1a(out.as_bytes());
        let _ = writeln!(out, "end {records} {sum:016x}");
        out
    }

    /// Reads a history file written by [`SavedHistory::encode`], with ages
    /// and remaining TTLs as of `unix_now` (wall-clock UNIX seconds).
    /// HTTPS answers that have expired are dropped; so are outcomes dated
    /// more than an hour in the future (the clock was set back). Outcomes
    /// are not aged out here: the history's own lifetime does that when
    /// they are restored ([`crate::race::History::import`]).
    ///
    /// # Errors
    ///
    /// [`HistoryFileError`]: the file is not one, is of another version,
    /// was cut short or damaged, breaks a bound, or has a line that does
    /// not parse. Nothing of such a file is used.
    pub fn decode(bytes: &[u8], unix_now: u64) -> Result<SavedHistory, HistoryFileError> {
        if bytes.is_empty() {
            return Err(HistoryFileError::Empty);
        }
        if bytes.len() > MAX_FILE_BYTES {
            return Err(HistoryFileError::TooLarge(bytes.len()));
        }
        // The header first, so a future version is named as such even if
        // its body would look damaged to this reader.
        let first_end = bytes
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(bytes.len());
        let first = core::str::from_utf8(&bytes[..first_end.min(MAX_LINE_BYTES)])
            .map_err(|_| HistoryFileError::NotAHistoryFile)?;
        let version = match first.split_once(' ') {
            Some((MAGIC, v)) => v,
            _ => return Err(HistoryFileError::NotAHistoryFile),
        };
        if version != "1" {
            let shown: String = version.chars().take(16).collect();
            return Err(HistoryFileError::UnsupportedVersion(shown));
        }
        // The `end` line is the last line; everything before it is summed.
        let body_end = match bytes.strip_suffix(b"\n") {
            Some(b) => b,
            None => return Err(HistoryFileError::Truncated),
        };
        let end_start = body_end
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let end_line = core::str::from_utf8(&body_end[end_start..])
            .map_err(|_| HistoryFileError::Truncated)?;
        let mut end = end_line.split(' ');
        let (Some("end"), Some(count), Some(sum), None) =
            (end.next(), end.next(), end.next(), end.next())
        else {
            return Err(HistoryFileError::Truncated);
        };
        // Strict forms, so that no changed byte reads as the same value.
        let digits = |s: &str, hex: bool| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&b)))
        };
        if !digits(count, false) || sum.len() != 16 || !digits(sum, true) {
            return Err(HistoryFileError::Truncated);
        }
        let said: usize = count.parse().map_err(|_| HistoryFileError::Truncated)?;
        let sum = u64::from_str_radix(sum, 16).map_err(|_| HistoryFileError::Truncated)?;
        if fnv1a(&bytes[..end_start]) != sum {
            return Err(HistoryFileError::ChecksumMismatch);
        }
        let body =
            core::str::from_utf8(&bytes[..end_start]).map_err(|_| HistoryFileError::BadLine {
                line: 0,
                why: "not UTF-8",
            })?;
        let mut saved = SavedHistory::default();
        let mut found = 0usize;
        let mut names: HashMap<HostName, usize> = HashMap::new();
        for (i, line) in body.lines().enumerate().skip(1) {
            let n = i + 1;
            let bad = |why| HistoryFileError::BadLine { line: n, why };
            if line.len() > MAX_LINE_BYTES {
                return Err(bad("longer than the line limit"));
            }
            if line == "end" || line.starts_with("end ") {
                return Err(HistoryFileError::TrailingData);
            }
            found += 1;
            let mut f = line.split(' ');
            match f.next() {
                Some("o") => {
                    if saved.outcomes.len() >= MAX_SAVED_OUTCOMES {
                        return Err(HistoryFileError::TooManyRecords);
                    }
                    if let Some(o) = parse_outcome(&mut f, unix_now).map_err(bad)? {
                        saved.outcomes.push(o);
                    }
                }
                Some("h") => {
                    let (name, ttl_left, record) = parse_https(&mut f, unix_now).map_err(bad)?;
                    match names.get(&name) {
                        Some(&at) => {
                            let h: &mut SavedHttps = &mut saved.https[at];
                            let HttpsLine::Record(record) = record else {
                                return Err(bad("`none` beside records of the same name"));
                            };
                            if h.records.is_empty() {
                                return Err(bad("records beside `none` for the same name"));
                            }
                            if h.ttl_left != ttl_left {
                                return Err(bad("records of one name expire differently"));
                            }
                            if h.records.len() >= MAX_HTTPS_RECORDS_PER_ANSWER {
                                return Err(bad("more HTTPS records than an answer may hold"));
                            }
                            h.records.push(record);
                        }
                        None => {
                            if saved.https.len() >= MAX_SAVED_NAMES {
                                return Err(HistoryFileError::TooManyRecords);
                            }
                            names.insert(name.clone(), saved.https.len());
                            let (records, nxdomain) = match record {
                                HttpsLine::Record(r) => (vec![r], false),
                                HttpsLine::NoData => (Vec::new(), false),
                                HttpsLine::NxDomain => (Vec::new(), true),
                            };
                            saved.https.push(SavedHttps {
                                name,
                                ttl_left,
                                records,
                                nxdomain,
                            });
                        }
                    }
                }
                _ => return Err(bad("unknown record kind")),
            }
        }
        if found != said {
            return Err(HistoryFileError::CountMismatch { said, found });
        }
        saved.normalize(None);
        Ok(saved)
    }

    /// Merges `other` (for example what the file held before this save)
    /// into `self`, newest wins: for each (interface, address) the outcome
    /// with the smaller age, for each name the answer with more TTL left
    /// (ties keep `self`'s). Outcomes as old as `lifetime` or older and
    /// expired answers are dropped; then the bounds are applied, keeping
    /// the newest.
    pub fn merge(&mut self, other: SavedHistory, lifetime: Duration) {
        self.outcomes.extend(other.outcomes);
        self.https.extend(other.https);
        self.normalize(Some(lifetime));
    }

    /// One entry per key (the newest), in a fixed order, within bounds.
    fn normalize(&mut self, lifetime: Option<Duration>) {
        if let Some(l) = lifetime {
            self.outcomes.retain(|o| o.age < l);
        }
        self.https.retain(|h| h.ttl_left > 0);
        // Stable sorts: among equals, earlier entries (`self`'s) come first
        // and so win the dedup.
        self.outcomes
            .sort_by(|a, b| outcome_rank(a).cmp(&outcome_rank(b)));
        let mut seen = std::collections::HashSet::new();
        self.outcomes
            .retain(|o| seen.insert((o.interface.clone(), o.addr)));
        self.outcomes.truncate(MAX_SAVED_OUTCOMES);
        self.https.sort_by_key(|h| core::cmp::Reverse(h.ttl_left));
        let mut seen = std::collections::HashSet::new();
        self.https.retain(|h| seen.insert(h.name.clone()));
        self.https.truncate(MAX_SAVED_NAMES);
        self.https.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

fn parse_time(s: Option<&str>) -> Result<u64, &'static str> {
    s.ok_or("a field is missing")?
        .parse()
        .map_err(|_| "a time is not UNIX seconds")
}

fn parse_outcome<'a>(
    f: &mut impl Iterator<Item = &'a str>,
    unix_now: u64,
) -> Result<Option<SavedOutcome>, &'static str> {
    let at = parse_time(f.next())?;
    let interface = match f.next().ok_or("a field is missing")? {
        "-" => None,
        n if interface_is_writable(n) => Some(n.to_owned()),
        _ => return Err("a bad interface name"),
    };
    let addr: IpAddr = f
        .next()
        .ok_or("a field is missing")?
        .parse()
        .map_err(|_| "a bad address")?;
    let kind = f.next().ok_or("a field is missing")?;
    let rtt = f.next().ok_or("a field is missing")?;
    let outcome = match (kind, rtt) {
        ("won", r) => Outcome::Won {
            rtt: Duration::from_micros(r.parse().map_err(|_| "a bad RTT")?),
        },
        ("failed", "-") => Outcome::Failed,
        ("unfinished", "-") => Outcome::Unfinished,
        _ => return Err("a bad outcome"),
    };
    let won_at = match f.next().ok_or("a field is missing")? {
        "-" => None,
        w => Some(parse_time(Some(w))?),
    };
    if f.next().is_some() {
        return Err("too many fields");
    }
    if matches!(outcome, Outcome::Won { .. }) && won_at.is_none() {
        return Err("a win without its time");
    }
    let skewed = |t: u64| t > unix_now.saturating_add(MAX_CLOCK_SKEW_SECS);
    if skewed(at) || won_at.is_some_and(skewed) {
        return Ok(None);
    }
    let age = |t: u64| Duration::from_secs(unix_now.saturating_sub(t));
    Ok(Some(SavedOutcome {
        interface,
        addr,
        outcome,
        age: age(at),
        won_age: won_at.map(age),
    }))
}

fn parse_list<T: core::str::FromStr>(v: &str) -> Result<Vec<T>, &'static str> {
    let items: Vec<&str> = v.split(',').collect();
    if items.len() > MAX_ADDRESSES_PER_ANSWER {
        return Err("more hints than an answer may hold");
    }
    items
        .into_iter()
        .map(|a| a.parse().map_err(|_| "a bad hint address"))
        .collect()
}

/// What one `h` line says.
enum HttpsLine {
    Record(HttpsRecord),
    NoData,
    NxDomain,
}

/// One `h` line: the name, its remaining TTL, and what it says.
fn parse_https<'a>(
    f: &mut impl Iterator<Item = &'a str>,
    unix_now: u64,
) -> Result<(HostName, u32, HttpsLine), &'static str> {
    let expires = parse_time(f.next())?;
    let name = HostName::new(f.next().ok_or("a field is missing")?).map_err(|_| "a bad name")?;
    let ttl_left = u32::try_from(expires.saturating_sub(unix_now)).unwrap_or(u32::MAX);
    let priority = f.next().ok_or("a field is missing")?;
    if priority == "none" || priority == "nxdomain" {
        if f.next().is_some() {
            return Err("too many fields");
        }
        let line = if priority == "none" {
            HttpsLine::NoData
        } else {
            HttpsLine::NxDomain
        };
        return Ok((name, ttl_left, line));
    }
    let priority: u16 = priority.parse().map_err(|_| "a bad priority")?;
    let target = match f.next().ok_or("a field is missing")? {
        "." => None,
        t => Some(HostName::new(t).map_err(|_| "a bad target name")?),
    };
    let mut r = HttpsRecord::empty(priority, target);
    for p in f {
        match p.split_once('=') {
            Some(("alpn", v)) if r.alpn.is_empty() => {
                for id in v.split(',') {
                    if r.alpn.len() >= MAX_ALPN_IDS {
                        return Err("more ALPN ids than the limit");
                    }
                    r.alpn.push(parse_alpn(id).ok_or("a bad ALPN id")?);
                }
            }
            Some(("port", v)) if r.port.is_none() => {
                r.port = Some(v.parse().map_err(|_| "a bad port")?);
            }
            Some(("ipv4hint", v)) if r.ipv4hint.is_empty() => {
                r.ipv4hint = parse_list::<Ipv4Addr>(v)?.into_iter().collect();
            }
            Some(("ipv6hint", v)) if r.ipv6hint.is_empty() => {
                r.ipv6hint = parse_list::<Ipv6Addr>(v)?.into_iter().collect();
            }
            None if p == "no-default-alpn" && !r.no_default_alpn => r.no_default_alpn = true,
            None if p == "ech" && !r.ech => r.ech = true,
            _ => return Err("an unknown or repeated parameter"),
        }
    }
    Ok((name, ttl_left, HttpsLine::Record(r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;

    const NOW: u64 = 1_800_000_000;

    fn sample() -> SavedHistory {
        SavedHistory {
            outcomes: vec![
                SavedOutcome {
                    interface: Some("eth0".into()),
                    addr: "2001:db8::1".parse().unwrap(),
                    outcome: Outcome::Unfinished,
                    age: Duration::from_secs(5),
                    won_age: Some(Duration::from_secs(60)),
                },
                SavedOutcome {
                    interface: Some("eth0".into()),
                    addr: "192.0.2.1".parse().unwrap(),
                    outcome: Outcome::Won {
                        rtt: Duration::from_micros(1234),
                    },
                    age: Duration::from_secs(5),
                    won_age: Some(Duration::from_secs(5)),
                },
                SavedOutcome {
                    interface: None,
                    addr: "192.0.2.2".parse().unwrap(),
                    outcome: Outcome::Failed,
                    age: Duration::from_secs(100),
                    won_age: None,
                },
            ],
            https: vec![
                SavedHttps {
                    name: HostName::new("a.example").unwrap(),
                    ttl_left: 300,
                    records: vec![
                        HttpsRecord {
                            priority: 1,
                            target: None,
                            alpn: vec!["h2".into(), "h3 odd,id%".into()],
                            no_default_alpn: true,
                            port: Some(8443),
                            ipv4hint: smallvec!["192.0.2.7".parse().unwrap()],
                            ipv6hint: smallvec![
                                "2001:db8::7".parse().unwrap(),
                                "2001:db8::8".parse().unwrap()
                            ],
                            ech: true,
                        },
                        HttpsRecord {
                            priority: 2,
                            target: Some(HostName::new("b.example").unwrap()),
                            alpn: vec![],
                            no_default_alpn: false,
                            port: None,
                            ipv4hint: smallvec![],
                            ipv6hint: smallvec![],
                            ech: false,
                        },
                    ],
                    nxdomain: false,
                },
                SavedHttps {
                    name: HostName::new("none.example").unwrap(),
                    ttl_left: 10,
                    records: vec![],
                    nxdomain: false,
                },
                SavedHttps {
                    name: HostName::new("_8080._https.gone.example").unwrap(),
                    ttl_left: 3000,
                    records: vec![],
                    nxdomain: true,
                },
            ],
        }
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let s = sample();
        let text = s.encode(NOW);
        assert!(text.starts_with("taps-history 1\n"), "{text}");
        let back = SavedHistory::decode(text.as_bytes(), NOW).unwrap();
        let mut want = s.clone();
        want.normalize(None);
        assert_eq!(back, want);
        // Read later, everything is older and TTLs are shorter.
        let later = SavedHistory::decode(text.as_bytes(), NOW + 20).unwrap();
        assert_eq!(later.outcomes[0].age, Duration::from_secs(25));
        let a = later.https.iter().find(|h| h.name.as_str() == "a.example");
        assert_eq!(a.unwrap().ttl_left, 280);
        // The 10 s NODATA answer has expired by then: dropped on load.
        assert!(
            later
                .https
                .iter()
                .all(|h| h.name.as_str() != "none.example")
        );
    }

    #[test]
    fn every_truncation_and_bit_flip_is_rejected_or_harmless() {
        let text = sample().encode(NOW);
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            assert!(
                SavedHistory::decode(&bytes[..cut], NOW).is_err(),
                "cut at {cut} was believed"
            );
        }
        let good = SavedHistory::decode(bytes, NOW).unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.to_vec();
                b[i] ^= 1 << bit;
                // The checksum catches every single-bit flip of the body;
                // one in the `end` line's digits breaks the count or sum.
                match SavedHistory::decode(&b, NOW) {
                    Err(e) => assert!(!e.to_string().is_empty()),
                    Ok(s) => panic!("flip of bit {bit} at {i} was believed: {s:?} vs {good:?}"),
                }
            }
        }
    }

    #[test]
    fn bad_files_are_named_for_what_is_wrong() {
        let d = |s: &str| SavedHistory::decode(s.as_bytes(), NOW);
        assert_eq!(d(""), Err(HistoryFileError::Empty));
        assert_eq!(d("hello\n"), Err(HistoryFileError::NotAHistoryFile));
        assert_eq!(
            d("taps-history 2\nwhatever\n"),
            Err(HistoryFileError::UnsupportedVersion("2".into()))
        );
        assert_eq!(
            d("taps-history 1\no 1 - 192.0.2.1 failed - -\n"),
            Err(HistoryFileError::Truncated)
        );
        // A line that does not parse, under a correct checksum (as a
        // writer with a bug, or a hand edit with the sum redone, makes).
        let body = "taps-history 1\no 1 - 192.0.2.x failed - -\n";
        let file = format!("{body}end 1 {:016x}\n", fnv1a(body.as_bytes()));
        assert_eq!(
            d(&file),
            Err(HistoryFileError::BadLine {
                line: 2,
                why: "a bad address"
            })
        );
        let body = "taps-history 1\no 1 - 192.0.2.1 failed - -\n";
        let file = format!("{body}end 2 {:016x}\n", fnv1a(body.as_bytes()));
        assert_eq!(
            d(&file),
            Err(HistoryFileError::CountMismatch { said: 2, found: 1 })
        );
        let big = vec![b'x'; MAX_FILE_BYTES + 1];
        assert_eq!(
            SavedHistory::decode(&big, NOW),
            Err(HistoryFileError::TooLarge(MAX_FILE_BYTES + 1))
        );
    }

    #[test]
    fn the_file_is_bounded_and_keeps_the_newest() {
        let outcomes = (0..MAX_SAVED_OUTCOMES as u32 + 10)
            .map(|i| SavedOutcome {
                interface: Some("eth0".into()),
                addr: IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i)),
                outcome: Outcome::Failed,
                age: Duration::from_secs(u64::from(i)),
                won_age: None,
            })
            .collect();
        let s = SavedHistory {
            outcomes,
            https: vec![],
        };
        let text = s.encode(NOW);
        assert!(text.len() <= MAX_FILE_BYTES);
        let back = SavedHistory::decode(text.as_bytes(), NOW).unwrap();
        assert_eq!(back.outcomes.len(), MAX_SAVED_OUTCOMES);
        assert!(
            back.outcomes
                .iter()
                .all(|o| o.age < Duration::from_secs(MAX_SAVED_OUTCOMES as u64))
        );
    }

    /// Wraps arbitrary record lines in a valid header and `end` line, so
    /// the line parsers, not the checksum, meet them.
    fn sealed(lines: &[String]) -> String {
        let mut body = String::from("taps-history 1\n");
        for l in lines {
            body.push_str(l);
            body.push('\n');
        }
        let n = body.lines().count() - 1;
        let sum = fnv1a(body.as_bytes());
        format!("{body}end {n} {sum:016x}\n")
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        // Bad input is an error, never a panic (ARCHITECTURE.md "The core
        // contract" rule 3); what does parse writes back as itself.
        #[test]
        fn sealed_arbitrary_lines_never_panic_and_round_trip(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::strategy::Just("o".to_string()),
                        proptest::strategy::Just("h".to_string()),
                        proptest::strategy::Just("-".to_string()),
                        proptest::strategy::Just("won".to_string()),
                        proptest::strategy::Just("failed".to_string()),
                        proptest::strategy::Just("none".to_string()),
                        proptest::strategy::Just("nxdomain".to_string()),
                        proptest::strategy::Just(".".to_string()),
                        proptest::strategy::Just("a.example".to_string()),
                        proptest::strategy::Just("eth0".to_string()),
                        proptest::strategy::Just("192.0.2.1".to_string()),
                        proptest::strategy::Just("2001:db8::1".to_string()),
                        proptest::strategy::Just("alpn=h2,%41%zz".to_string()),
                        proptest::strategy::Just("ipv4hint=192.0.2.1,192.0.2.2".to_string()),
                        proptest::strategy::Just("ech".to_string()),
                        "[0-9]{1,12}",
                        "[ -~]{0,12}",
                    ],
                    0..10,
                ).prop_map(|v| v.join(" ")),
                0..8,
            ),
            now in 0u64..4_000_000_000,
        ) {
            let file = sealed(&lines);
            if let Ok(s) = SavedHistory::decode(file.as_bytes(), now) {
                let again = SavedHistory::decode(s.encode(now).as_bytes(), now);
                proptest::prop_assert_eq!(again, Ok(s));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = SavedHistory::decode(&raw, 1_800_000_000);
            let mut framed = b"taps-history 1\n".to_vec();
            framed.extend_from_slice(&raw);
            let _ = SavedHistory::decode(&framed, 1_800_000_000);
        }
    }

    #[test]
    fn every_bound_is_met_at_its_edge() {
        let d = |lines: &[String]| SavedHistory::decode(sealed(lines).as_bytes(), NOW);
        let name_line = |i: usize| format!("h {} n{i}.example none", NOW + 60);
        // HTTPS names: the bound reads, one more is refused.
        let names: Vec<String> = (0..MAX_SAVED_NAMES).map(name_line).collect();
        assert_eq!(d(&names).unwrap().https.len(), MAX_SAVED_NAMES);
        let mut over = names.clone();
        over.push(name_line(MAX_SAVED_NAMES));
        assert_eq!(d(&over), Err(HistoryFileError::TooManyRecords));
        // Writing more keeps those with the most TTL left.
        let many = SavedHistory {
            outcomes: vec![],
            https: (0..MAX_SAVED_NAMES + 5)
                .map(|i| SavedHttps {
                    name: HostName::new(&format!("n{i}.example")).unwrap(),
                    ttl_left: 10 + i as u32,
                    records: vec![],
                    nxdomain: false,
                })
                .collect(),
        };
        let back = SavedHistory::decode(many.encode(NOW).as_bytes(), NOW).unwrap();
        assert_eq!(back.https.len(), MAX_SAVED_NAMES);
        assert!(back.https.iter().all(|h| h.ttl_left >= 15));
        // Outcomes: one more than the bound is refused.
        let outcome_line = |i: u32| format!("o {NOW} - {} failed - -", Ipv4Addr::from(i));
        let mut outcomes: Vec<String> = (0..MAX_SAVED_OUTCOMES as u32).map(outcome_line).collect();
        assert_eq!(d(&outcomes).unwrap().outcomes.len(), MAX_SAVED_OUTCOMES);
        outcomes.push(outcome_line(u32::MAX));
        assert_eq!(d(&outcomes), Err(HistoryFileError::TooManyRecords));
        // ALPN ids per record.
        let alpn = |n: usize| {
            let ids: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
            vec![format!(
                "h {} a.example 1 . alpn={}",
                NOW + 60,
                ids.join(",")
            )]
        };
        assert_eq!(
            d(&alpn(MAX_ALPN_IDS)).unwrap().https[0].records[0]
                .alpn
                .len(),
            MAX_ALPN_IDS
        );
        assert!(matches!(
            d(&alpn(MAX_ALPN_IDS + 1)),
            Err(HistoryFileError::BadLine { line: 2, .. })
        ));
        // Hints per family.
        let hints = |n: u32| {
            let a: Vec<String> = (0..n).map(|i| Ipv4Addr::from(i).to_string()).collect();
            vec![format!(
                "h {} a.example 1 . ipv4hint={}",
                NOW + 60,
                a.join(",")
            )]
        };
        let cap = MAX_ADDRESSES_PER_ANSWER as u32;
        assert_eq!(
            d(&hints(cap)).unwrap().https[0].records[0].ipv4hint.len(),
            cap as usize
        );
        assert!(matches!(
            d(&hints(cap + 1)),
            Err(HistoryFileError::BadLine { line: 2, .. })
        ));
        // Line length: the bound reads, one byte more is refused.
        let pad = |len: usize| {
            let head = format!("h {} a.example 1 . alpn=", NOW + 60);
            let mut ids = Vec::new();
            let mut used = head.len();
            while used < len {
                let n = (len - used).min(255);
                let n = if len - used - n == 1 { n - 2 } else { n };
                ids.push("x".repeat(n));
                used += n + 1;
            }
            let line = format!("{head}{}", ids.join(","));
            assert_eq!(line.len(), len);
            vec![line]
        };
        let edge = d(&pad(MAX_LINE_BYTES));
        assert!(edge.is_ok(), "{edge:?}");
        assert_eq!(
            d(&pad(MAX_LINE_BYTES + 1)),
            Err(HistoryFileError::BadLine {
                line: 2,
                why: "longer than the line limit"
            })
        );
    }

    #[test]
    fn merging_keeps_the_newest_of_each_key_and_drops_the_expired() {
        let mut ours = sample();
        let mut theirs = sample();
        // Theirs knows newer about the IPv6 address, older about IPv4,
        // and one more address, and one that has expired.
        theirs.outcomes[0].outcome = Outcome::Won {
            rtt: Duration::from_millis(3),
        };
        theirs.outcomes[0].age = Duration::from_secs(1);
        theirs.outcomes[1].outcome = Outcome::Failed;
        theirs.outcomes[1].age = Duration::from_secs(50);
        theirs.outcomes.push(SavedOutcome {
            interface: Some("wlan0".into()),
            addr: "192.0.2.9".parse().unwrap(),
            outcome: Outcome::Failed,
            age: Duration::from_secs(2),
            won_age: None,
        });
        theirs.outcomes.push(SavedOutcome {
            interface: Some("wlan0".into()),
            addr: "192.0.2.10".parse().unwrap(),
            outcome: Outcome::Failed,
            age: Duration::from_secs(700),
            won_age: None,
        });
        theirs.https[0].ttl_left = 900;
        theirs.https[0].records.truncate(1);
        ours.merge(theirs, Duration::from_secs(600));
        let find = |a: &str| {
            ours.outcomes
                .iter()
                .find(|o| o.addr == a.parse::<IpAddr>().unwrap())
                .map(|o| o.outcome)
        };
        assert!(matches!(find("2001:db8::1"), Some(Outcome::Won { .. })));
        assert!(matches!(find("192.0.2.1"), Some(Outcome::Won { .. })));
        assert_eq!(find("192.0.2.9"), Some(Outcome::Failed));
        assert_eq!(find("192.0.2.10"), None, "expired");
        assert_eq!(ours.outcomes.len(), 4);
        let a = ours
            .https
            .iter()
            .find(|h| h.name.as_str() == "a.example")
            .unwrap();
        assert_eq!((a.ttl_left, a.records.len()), (900, 1));
    }
}
