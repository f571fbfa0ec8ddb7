//! Connection history: RFC 9623 §4.2.1 performance caches, HEv3 §5.3 "used
//! before" and RTT rules.
//!
//! The machine records, per (path, destination address), how the last race
//! that tried it ended: won (with the handshake RTT), failed (and why), or
//! still unfinished when another attempt won. Later races consult it:
//!
//! - a recent win contributes its RTT and "used before" to the sort key
//!   (HEv3 §5.3, between RFC 6724 rules 8 and 9);
//! - a recent failure or unfinished attempt demotes the address behind all
//!   others after interleaving, so a host whose IPv6 is silently broken is
//!   reached over IPv4 first on the next connection.
//!
//! History decays, as HEv3 §5.3 requires that clients "eventually converge":
//! entries expire after [`HistoryConfig::entry_lifetime`], and an RTT older
//! than [`HistoryConfig::rtt_lifetime`] no longer ranks (the address still
//! counts as used before). The table is bounded by
//! [`HistoryConfig::max_entries`]; when full, the oldest entry goes.

use core::time::Duration;
use std::collections::HashMap;
use std::net::IpAddr;

/// A fixed hasher: iteration order, and so eviction ties, must not vary
/// between runs (ARCHITECTURE.md "The core contract" rule 1). Fx ([`crate::hash`]): cheap for the
/// lookups of every race, and keys that collide (addresses a DNS server
/// picked to) cost at most a longer probe in a table of
/// [`HistoryConfig::max_entries`].
type DeterministicState = crate::hash::FxBuildHasher;

use super::order::HistoryHint;
use crate::time::Instant;

/// How one attempt ended, as history remembers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It won, with this handshake round-trip time.
    Won {
        /// Time from attempt start to connected.
        rtt: Duration,
    },
    /// It failed.
    Failed,
    /// It was still running when another attempt won, or when the race ended.
    Unfinished,
}

/// Limits and lifetimes of the history table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Entries older than this are forgotten. Default 10 minutes.
    pub entry_lifetime: Duration,
    /// RTTs older than this no longer rank addresses. Default 2 minutes.
    pub rtt_lifetime: Duration,
    /// Bound on remembered (path, address) pairs. Default 4096.
    pub max_entries: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            entry_lifetime: Duration::from_secs(600),
            rtt_lifetime: Duration::from_secs(120),
            max_entries: 4096,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    outcome: Outcome,
    at: Instant,
    /// Set once any race won on this destination, kept across later failures
    /// so "used before" survives one bad attempt.
    won_at: Option<Instant>,
}

/// The bounded, decaying history of one machine.
#[derive(Debug, Default)]
pub struct History {
    config: HistoryConfig,
    entries: HashMap<(Option<u32>, IpAddr), Entry, DeterministicState>,
}

impl History {
    /// An empty history with these limits.
    pub fn new(config: HistoryConfig) -> Self {
        History {
            config,
            entries: HashMap::default(),
        }
    }

    /// Records how an attempt to `addr` over `path` ended.
    pub fn record(&mut self, now: Instant, path: Option<u32>, addr: IpAddr, outcome: Outcome) {
        if self.config.max_entries == 0 {
            return;
        }
        let key = (path, addr);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.config.max_entries {
            self.evict_oldest(now);
        }
        let won_at = match outcome {
            Outcome::Won { .. } => Some(now),
            _ => self.entries.get(&key).and_then(|e| e.won_at),
        };
        self.entries.insert(
            key,
            Entry {
                outcome,
                at: now,
                won_at,
            },
        );
    }

    fn evict_oldest(&mut self, now: Instant) {
        let lifetime = self.config.entry_lifetime;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.at) < lifetime);
        let full = self.entries.len() >= self.config.max_entries;
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.at)
            .map(|(k, _)| *k);
        if let (true, Some(oldest)) = (full, oldest) {
            self.entries.remove(&oldest);
        }
    }

    /// What the history says about `addr` over `path` at `now`.
    pub fn hint(&self, now: Instant, path: Option<u32>, addr: IpAddr) -> HistoryHint {
        let Some(e) = self.entries.get(&(path, addr)) else {
            return HistoryHint::default();
        };
        let age = now.saturating_duration_since(e.at);
        if age >= self.config.entry_lifetime {
            return HistoryHint::default();
        }
        let used_before = e
            .won_at
            .is_some_and(|w| now.saturating_duration_since(w) < self.config.entry_lifetime);
        match e.outcome {
            Outcome::Won { rtt } => HistoryHint {
                rtt_micros: (age < self.config.rtt_lifetime)
                    .then(|| u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX)),
                used_before,
                demoted: false,
            },
            Outcome::Failed | Outcome::Unfinished => HistoryHint {
                rtt_micros: None,
                used_before,
                demoted: true,
            },
        }
    }

    /// Number of remembered entries (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything, for example after a change of network (HEv3 §5.3:
    /// history "SHOULD be flushed whenever a device changes the PvD").
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Saving and restoring across processes (`history_file`): entries travel
/// with their ages, since this history's [`Instant`]s mean nothing to
/// another process.
impl History {
    /// Every entry still alive at `now`: (path, address, outcome, age,
    /// age of the last win).
    pub fn export(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (Option<u32>, IpAddr, Outcome, Duration, Option<Duration>)> + '_ {
        let lifetime = self.config.entry_lifetime;
        self.entries.iter().filter_map(move |(&(path, addr), e)| {
            let age = now.saturating_duration_since(e.at);
            (age < lifetime).then(|| {
                let won = e.won_at.map(|w| now.saturating_duration_since(w));
                (path, addr, e.outcome, age, won)
            })
        })
    }

    /// Takes in an entry recorded `age` before `now` (by an earlier
    /// process). It is refused (`false`) when it has expired, when it
    /// would be dated before this clock's origin (an embedder's clock must
    /// start at least [`HistoryConfig::entry_lifetime`] after its origin
    /// to restore the oldest entries, as taps-io's does), or when what is
    /// known already is as new or newer. It counts against
    /// [`HistoryConfig::max_entries`] like any entry.
    pub fn import(
        &mut self,
        now: Instant,
        path: Option<u32>,
        addr: IpAddr,
        outcome: Outcome,
        age: Duration,
        won_age: Option<Duration>,
    ) -> bool {
        let lifetime = self.config.entry_lifetime;
        let since_origin = now.saturating_duration_since(Instant::ZERO);
        if self.config.max_entries == 0 || age >= lifetime || age > since_origin {
            return false;
        }
        let at = now - age;
        let key = (path, addr);
        if self.entries.get(&key).is_some_and(|e| e.at >= at) {
            return false;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.config.max_entries {
            self.evict_oldest(now);
        }
        let won_at = match outcome {
            Outcome::Won { .. } => Some(at),
            _ => won_age
                .filter(|w| *w < lifetime && *w <= since_origin)
                .map(|w| now - w),
        };
        self.entries.insert(
            key,
            Entry {
                outcome,
                at,
                won_at,
            },
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn wins_rank_failures_demote_and_both_decay() {
        let mut h = History::new(HistoryConfig::default());
        let t0 = Instant::from_millis(1_000);
        h.record(
            t0,
            Some(2),
            ip("192.0.2.1"),
            Outcome::Won {
                rtt: Duration::from_millis(20),
            },
        );
        h.record(t0, Some(2), ip("2001:db8::1"), Outcome::Unfinished);
        let won = h.hint(t0, Some(2), ip("192.0.2.1"));
        assert_eq!(won.rtt_micros, Some(20_000));
        assert!(won.used_before && !won.demoted);
        assert!(h.hint(t0, Some(2), ip("2001:db8::1")).demoted);
        // Another path knows nothing (HEv3 §5.3: partitioned history).
        assert_eq!(
            h.hint(t0, Some(3), ip("2001:db8::1")),
            HistoryHint::default()
        );
        // RTTs age out before entries do.
        let later = t0 + Duration::from_secs(180);
        let aged = h.hint(later, Some(2), ip("192.0.2.1"));
        assert_eq!(aged.rtt_micros, None);
        assert!(aged.used_before);
        // Entries expire.
        let much_later = t0 + Duration::from_secs(601);
        assert_eq!(
            h.hint(much_later, Some(2), ip("2001:db8::1")),
            HistoryHint::default()
        );
    }

    #[test]
    fn exported_entries_import_with_their_ages() {
        let mut h = History::new(HistoryConfig::default());
        let t0 = Instant::from_millis(1_000_000);
        h.record(t0, Some(2), ip("2001:db8::1"), Outcome::Unfinished);
        h.record(
            t0 + Duration::from_secs(30),
            Some(2),
            ip("192.0.2.1"),
            Outcome::Won {
                rtt: Duration::from_millis(20),
            },
        );
        let t1 = t0 + Duration::from_secs(60);
        let mut saved: Vec<_> = h.export(t1).collect();
        saved.sort_by_key(|e| e.3);
        assert_eq!(saved.len(), 2);
        assert_eq!(saved[0].3, Duration::from_secs(30));
        assert_eq!(saved[1].3, Duration::from_secs(60));
        // Another process, another clock origin.
        let mut other = History::new(HistoryConfig::default());
        let u = Instant::from_millis(5_000_000);
        for (p, a, o, age, won) in saved {
            assert!(other.import(u, p, a, o, age, won));
        }
        assert!(other.hint(u, Some(2), ip("2001:db8::1")).demoted);
        let won = other.hint(u, Some(2), ip("192.0.2.1"));
        assert_eq!(won.rtt_micros, Some(20_000));
        assert!(won.used_before);
        // Ages carry on: the entry expires 600 s after it was recorded.
        assert!(
            other
                .hint(u + Duration::from_secs(539), Some(2), ip("2001:db8::1"))
                .demoted
        );
        assert!(
            !other
                .hint(u + Duration::from_secs(540), Some(2), ip("2001:db8::1"))
                .demoted
        );
        // Expired, undatable or older-than-known entries are refused.
        assert!(!other.import(
            u,
            None,
            ip("192.0.2.9"),
            Outcome::Failed,
            Duration::from_secs(600),
            None
        ));
        assert!(!other.import(
            Instant::from_millis(10),
            None,
            ip("192.0.2.9"),
            Outcome::Failed,
            Duration::from_secs(1),
            None
        ));
        assert!(!other.import(
            u,
            Some(2),
            ip("2001:db8::1"),
            Outcome::Failed,
            Duration::from_secs(61),
            None
        ));
        assert!(other.hint(u, Some(2), ip("2001:db8::1")).demoted);
    }

    #[test]
    fn table_is_bounded_and_drops_the_oldest() {
        let mut h = History::new(HistoryConfig {
            max_entries: 3,
            ..HistoryConfig::default()
        });
        for i in 0..10u8 {
            let addr = IpAddr::from([192, 0, 2, i]);
            h.record(
                Instant::from_millis(u64::from(i)),
                None,
                addr,
                Outcome::Failed,
            );
            assert!(h.len() <= 3);
        }
        assert!(
            h.hint(Instant::from_millis(10), None, IpAddr::from([192, 0, 2, 9]))
                .demoted
        );
        assert!(
            !h.hint(Instant::from_millis(10), None, IpAddr::from([192, 0, 2, 0]))
                .demoted
        );
    }
}
