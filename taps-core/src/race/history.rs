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
//!
//! Beside the outcomes, the history keeps RFC 6298 round-trip estimates for
//! HEv3 §6's Connection Attempt Delay (see `delay.rs`): per (path,
//! destination prefix), per path, and the kernel's per-destination metrics
//! the adapter reports. Each table has the same bound and lifetimes.

use core::time::Duration;
use std::collections::HashMap;
use std::net::IpAddr;

use smallvec::SmallVec;

/// A fixed hasher: iteration order, and so eviction ties, must not vary
/// between runs (ARCHITECTURE.md "The core contract" rule 1). Fx ([`crate::hash`]): cheap for the
/// lookups of every race, and keys that collide (addresses a DNS server
/// picked to) cost at most a longer probe in a table of
/// [`HistoryConfig::max_entries`].
type DeterministicState = crate::hash::FxBuildHasher;

use super::delay::{DelaySource, KernelRtt, RttEstimate, rtt_prefix};
use super::order::HistoryHint;
use crate::interface::Interface;
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
    rtts: RttTables,
}

/// An estimate and when it last changed.
type Timed = (RttEstimate, Instant);

/// The kernel's estimates for one destination, per local address.
type KernelLocals = SmallVec<[(Option<IpAddr>, Timed); 2]>;

/// The round-trip estimates behind HEv3 §6's RTT-derived delay.
#[derive(Debug, Default)]
struct RttTables {
    /// Per (path, [`rtt_prefix`] of the destination).
    prefix: HashMap<(Option<u32>, IpAddr), Timed, DeterministicState>,
    /// Per path, any destination.
    path: HashMap<Option<u32>, Timed, DeterministicState>,
    /// The kernel's, per destination, then per local address (at most
    /// [`KERNEL_LOCALS`] of them).
    kernel: HashMap<IpAddr, KernelLocals, DeterministicState>,
    /// The kernel's entries folded per (local address, [`rtt_prefix`]) and
    /// per local address, each as RFC 6298 samples, oldest first; the
    /// local `None` folds every entry. Rebuilt whenever the kernel reports.
    kernel_prefix: HashMap<(Option<IpAddr>, IpAddr), Timed, DeterministicState>,
    kernel_local: HashMap<Option<IpAddr>, Timed, DeterministicState>,
}

/// Local addresses remembered per destination of the kernel's metrics: a
/// host has a few interfaces, each with an address per family.
const KERNEL_LOCALS: usize = 4;

/// Inserts into a table bounded by `max`, dropping expired entries and
/// then the oldest when full.
fn insert_bounded<K: Copy + Eq + core::hash::Hash>(
    table: &mut HashMap<K, Timed, DeterministicState>,
    max: usize,
    lifetime: Duration,
    now: Instant,
    key: K,
    value: Timed,
) {
    if max == 0 {
        return;
    }
    if !table.contains_key(&key) && table.len() >= max {
        table.retain(|_, (_, at)| now.saturating_duration_since(*at) < lifetime);
        if table.len() >= max
            && let Some(oldest) = table.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k)
        {
            table.remove(&oldest);
        }
    }
    table.insert(key, value);
}

impl History {
    /// An empty history with these limits.
    pub fn new(config: HistoryConfig) -> Self {
        History {
            config,
            entries: HashMap::default(),
            rtts: RttTables::default(),
        }
    }

    /// Folds one handshake round trip to `addr` over `path` into the
    /// estimates of its prefix and of its path (RFC 6298 §2.3). The
    /// machine reports the TCP handshake's time where it saw it, else the
    /// whole stack's.
    pub fn record_rtt(&mut self, now: Instant, path: Option<u32>, addr: IpAddr, rtt: Duration) {
        let (max, lifetime) = (self.config.max_entries, self.config.rtt_lifetime);
        let fold = |old: Option<&Timed>| match old {
            Some((e, at)) if now.saturating_duration_since(*at) < lifetime => {
                let mut e = *e;
                e.update(rtt);
                (e, now)
            }
            _ => (RttEstimate::first(rtt), now),
        };
        let key = (path, rtt_prefix(addr));
        let v = fold(self.rtts.prefix.get(&key));
        insert_bounded(&mut self.rtts.prefix, max, lifetime, now, key, v);
        let v = fold(self.rtts.path.get(&path));
        insert_bounded(&mut self.rtts.path, max, lifetime, now, path, v);
    }

    /// Takes the kernel's per-destination TCP metrics (Linux
    /// `tcp_metrics`) as they stand at `now`, replacing what it said
    /// before about the same (local, remote) pairs.
    pub fn record_kernel_rtts(&mut self, now: Instant, entries: &[KernelRtt]) {
        let (max, lifetime) = (self.config.max_entries, self.config.entry_lifetime);
        for k in entries {
            // Too old already; also, early in the core's time, `now - age`
            // would saturate at the origin and look fresher than it is.
            if k.rtt.is_zero() || k.age >= lifetime {
                continue;
            }
            let at = Instant::from_nanos(
                now.as_nanos()
                    .saturating_sub(u64::try_from(k.age.as_nanos()).unwrap_or(u64::MAX)),
            );
            let v = (RttEstimate::from_kernel(k.rtt, k.rttvar), at);
            if !self.rtts.kernel.contains_key(&k.remote) && self.rtts.kernel.len() >= max {
                let newest = |l: &KernelLocals| l.iter().map(|(_, (_, at))| *at).max();
                self.rtts.kernel.retain(|_, l| {
                    newest(l).is_some_and(|at| now.saturating_duration_since(at) < lifetime)
                });
                if self.rtts.kernel.len() >= max
                    && let Some(oldest) = self
                        .rtts
                        .kernel
                        .iter()
                        .min_by_key(|(r, l)| (newest(l), **r))
                        .map(|(r, _)| *r)
                {
                    self.rtts.kernel.remove(&oldest);
                }
            }
            if max == 0 {
                continue;
            }
            let list = self.rtts.kernel.entry(k.remote).or_default();
            match list.iter_mut().find(|(l, _)| *l == k.local) {
                Some(slot) => slot.1 = v,
                None => {
                    if list.len() >= KERNEL_LOCALS {
                        list.sort_by_key(|(l, (_, at))| (*at, *l));
                        list.remove(0);
                    }
                    list.push((k.local, v));
                }
            }
        }
        self.fold_kernel(now);
    }

    /// Rebuilds the kernel's per-prefix and per-local-address estimates:
    /// each live entry's SRTT is one sample, the newest folded last so they
    /// weigh most; the spread between destinations becomes RTTVAR.
    fn fold_kernel(&mut self, now: Instant) {
        let lifetime = self.config.entry_lifetime;
        let mut live: Vec<(Instant, IpAddr, Option<IpAddr>, u32)> = self
            .rtts
            .kernel
            .iter()
            .flat_map(|(r, l)| {
                l.iter()
                    .map(move |(local, (e, at))| (*at, *r, *local, e.srtt_us))
            })
            .filter(|(at, ..)| now.saturating_duration_since(*at) < lifetime)
            .collect();
        live.sort_unstable();
        self.rtts.kernel_prefix.clear();
        self.rtts.kernel_local.clear();
        for (at, remote, local, srtt) in live {
            let rtt = Duration::from_micros(u64::from(srtt));
            let fold = |t: &mut Timed| {
                t.0.update(rtt);
                t.1 = at;
            };
            let keys = [Some(None), local.map(Some)];
            for l in keys.into_iter().flatten() {
                self.rtts
                    .kernel_prefix
                    .entry((l, rtt_prefix(remote)))
                    .and_modify(fold)
                    .or_insert((RttEstimate::first(rtt), at));
                self.rtts
                    .kernel_local
                    .entry(l)
                    .and_modify(fold)
                    .or_insert((RttEstimate::first(rtt), at));
            }
        }
    }

    /// The round-trip estimate for an attempt to `addr` over `path` (whose
    /// interface, when it has one, is `iface`), and where it came from:
    /// first what is nearest the destination, then what is nearest the
    /// path (HEv3 §6: "historical RTT data gathered from other connections
    /// to the same host or prefix"):
    ///
    /// 1. this machine's handshakes to the same prefix on the path, within
    ///    [`HistoryConfig::rtt_lifetime`];
    /// 2. the kernel's metrics for `addr` itself (measured from a local
    ///    address of `iface`, or not keyed by one), within
    ///    [`HistoryConfig::entry_lifetime`] as are the next two;
    /// 3. the kernel's metrics for other destinations in the prefix;
    /// 4. this machine's handshakes on the path to anywhere, within
    ///    `rtt_lifetime`;
    /// 5. the kernel's metrics for any destination from the path's local
    ///    addresses: connections other processes made over it.
    pub fn attempt_rtt(
        &self,
        now: Instant,
        path: Option<u32>,
        iface: Option<&Interface>,
        addr: IpAddr,
    ) -> Option<(RttEstimate, DelaySource)> {
        let fresh = |t: Option<&Timed>, lifetime: Duration| {
            t.filter(|(_, at)| now.saturating_duration_since(*at) < lifetime)
                .map(|(e, _)| *e)
        };
        let rtt_life = self.config.rtt_lifetime;
        if let Some(e) = fresh(self.rtts.prefix.get(&(path, rtt_prefix(addr))), rtt_life) {
            return Some((e, DelaySource::Prefix { samples: e.samples }));
        }
        // An entry measured from one of the path's local addresses, or
        // one the kernel did not key by local address; for an unbound
        // socket (no interface), the newest from any local address.
        let kernel = self.rtts.kernel.get(&addr).and_then(|list| {
            list.iter()
                .filter(|(local, (_, at))| {
                    now.saturating_duration_since(*at) < self.config.entry_lifetime
                        && match (local, iface) {
                            (None, _) | (Some(_), None) => true,
                            (Some(l), Some(i)) => i.addrs.iter().any(|a| a.addr == *l),
                        }
                })
                .max_by_key(|(local, (_, at))| (*at, *local))
                .map(|(_, (e, _))| *e)
        });
        if let Some(e) = kernel {
            return Some((e, DelaySource::Kernel));
        }
        // The kernel's folds: from one of the path's local addresses, the
        // one with the most samples; for an unbound socket, from any.
        let kernel_fold = |get: &dyn Fn(Option<IpAddr>) -> Option<Timed>| match iface {
            None => fresh(get(None).as_ref(), self.config.entry_lifetime),
            Some(i) => i
                .addrs
                .iter()
                .filter_map(|a| fresh(get(Some(a.addr)).as_ref(), self.config.entry_lifetime))
                .max_by_key(|e| (e.samples, e.srtt_us)),
        };
        let prefix = rtt_prefix(addr);
        if let Some(e) = kernel_fold(&|l| self.rtts.kernel_prefix.get(&(l, prefix)).copied()) {
            return Some((e, DelaySource::KernelPrefix { samples: e.samples }));
        }
        if let Some(e) = fresh(self.rtts.path.get(&path), rtt_life) {
            return Some((e, DelaySource::Path { samples: e.samples }));
        }
        kernel_fold(&|l| self.rtts.kernel_local.get(&l).copied())
            .map(|e| (e, DelaySource::KernelPath { samples: e.samples }))
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
        self.rtts = RttTables::default();
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
        // A restored win is also a round trip to its prefix and path, so
        // the first race of a new process already has RTT data for the
        // Connection Attempt Delay (HEv3 §6), dated when it was measured.
        if let Outcome::Won { rtt } = outcome
            && age < self.config.rtt_lifetime
        {
            self.record_rtt(at, path, addr, rtt);
        }
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
    fn rtt_tables_are_bounded_and_decay() {
        let config = HistoryConfig {
            max_entries: 3,
            ..HistoryConfig::default()
        };
        let (mut own, mut kernel) = (History::new(config), History::new(config));
        let ms = Duration::from_millis;
        let k = |local: Option<IpAddr>, remote: IpAddr, age: Duration| KernelRtt {
            local,
            remote,
            rtt: ms(30),
            rttvar: ms(5),
            age,
        };
        for i in 0..10u8 {
            let at = Instant::from_millis(u64::from(i));
            own.record_rtt(at, Some(u32::from(i)), IpAddr::from([10, i, 0, 1]), ms(20));
            kernel.record_kernel_rtts(at, &[k(None, IpAddr::from([192, 0, 2, i]), Duration::ZERO)]);
            assert!(own.rtts.prefix.len() <= 3 && own.rtts.path.len() <= 3);
            assert!(kernel.rtts.kernel.len() <= 3);
        }
        let now = Instant::from_millis(10);
        let source = |h: &History, at, path, addr: [u8; 4]| {
            h.attempt_rtt(at, path, None, IpAddr::from(addr))
                .map(|e| e.1)
        };
        // The newest stay, the oldest went.
        let prefix = Some(DelaySource::Prefix { samples: 1 });
        assert_eq!(source(&own, now, Some(9), [10, 9, 0, 7]), prefix);
        assert_eq!(source(&own, now, Some(0), [10, 0, 0, 1]), None);
        assert_eq!(
            source(&kernel, now, None, [192, 0, 2, 9]),
            Some(DelaySource::Kernel)
        );
        // Folded from the 3 kept, not the 10 reported.
        let prefix = Some(DelaySource::KernelPrefix { samples: 3 });
        assert_eq!(source(&kernel, now, None, [192, 0, 2, 0]), prefix);
        let path = Some(DelaySource::KernelPath { samples: 3 });
        assert_eq!(source(&kernel, now, None, [203, 0, 113, 5]), path);
        // Local addresses per destination are bounded too.
        for j in 0..10u8 {
            let local = Some(IpAddr::from([10, 0, 0, j]));
            kernel.record_kernel_rtts(
                now,
                &[k(local, IpAddr::from([192, 0, 2, 9]), Duration::ZERO)],
            );
        }
        let locals = kernel
            .rtts
            .kernel
            .get(&IpAddr::from([192, 0, 2, 9]))
            .map(|l| l.len());
        assert_eq!(locals, Some(KERNEL_LOCALS));
        // Own RTTs decay after rtt_lifetime, the kernel's after
        // entry_lifetime.
        let later = now + HistoryConfig::default().rtt_lifetime;
        assert_eq!(source(&own, later, Some(9), [10, 9, 0, 7]), None);
        assert_eq!(
            source(&kernel, later, None, [192, 0, 2, 9]),
            Some(DelaySource::Kernel)
        );
        let much_later = now + HistoryConfig::default().entry_lifetime;
        assert_eq!(source(&kernel, much_later, None, [192, 0, 2, 9]), None);
        // A kernel entry's age counts: one already too old is never used.
        let mut fresh = History::new(config);
        let old = k(
            None,
            IpAddr::from([198, 51, 100, 1]),
            Duration::from_secs(3600),
        );
        fresh.record_kernel_rtts(now, &[old]);
        assert_eq!(source(&fresh, now, None, [198, 51, 100, 1]), None);
        kernel.clear();
        assert_eq!(source(&kernel, now, None, [192, 0, 2, 9]), None);
    }

    #[test]
    fn an_imported_win_feeds_the_attempt_delay() {
        let mut h = History::new(HistoryConfig::default());
        let now = Instant::from_millis(10_000_000);
        let won = Outcome::Won {
            rtt: Duration::from_millis(40),
        };
        assert!(h.import(
            now,
            Some(2),
            ip("2001:db8::1"),
            won,
            Duration::from_secs(10),
            None
        ));
        // Another address of the same /64 on the same path.
        let (estimate, source) = h
            .attempt_rtt(now, Some(2), None, ip("2001:db8::77"))
            .expect("the restored round trip counts for its prefix");
        assert_eq!(source, DelaySource::Prefix { samples: 1 });
        assert_eq!(estimate.srtt_us, 40_000);
        // A win older than the RTT lifetime restores the outcome only.
        let mut old = History::new(HistoryConfig::default());
        assert!(old.import(
            now,
            Some(2),
            ip("2001:db8::1"),
            won,
            Duration::from_secs(121),
            None
        ));
        assert_eq!(
            old.attempt_rtt(now, Some(2), None, ip("2001:db8::77")),
            None
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
