//! The DNS TTL cache (RFC 1035 §7.4, RFC 2308 §5 negative caching).
//!
//! Positive answers live for their TTL; NXDOMAIN and NODATA for the
//! negative TTL the authority's SOA gave (RFC 2308 §5). SERVFAIL, REFUSED
//! and timeouts are not cached, so a broken server is asked again next time.
//! The cache is bounded: when full, expired entries go first, then the entry
//! closest to expiry. One entry per name holds all three record types, so a
//! dual-stack lookup costs one key allocation.

use core::time::Duration;
use std::collections::HashMap;
// A fixed-key hasher keeps eviction order identical between runs.
use std::hash::{BuildHasherDefault, DefaultHasher};

use super::wire::{Answer, QueryType};
use crate::endpoint::HostName;
use crate::time::Instant;

#[derive(Clone, Debug)]
struct Cached {
    expires: Instant,
    answer: Answer,
}

#[derive(Clone, Debug, Default)]
struct Slot {
    a: Option<Cached>,
    aaaa: Option<Cached>,
    https: Option<Cached>,
}

impl Slot {
    fn get(&self, q: QueryType) -> Option<&Cached> {
        match q {
            QueryType::A => self.a.as_ref(),
            QueryType::Aaaa => self.aaaa.as_ref(),
            QueryType::Https => self.https.as_ref(),
        }
    }

    fn set(&mut self, q: QueryType, c: Cached) {
        match q {
            QueryType::A => self.a = Some(c),
            QueryType::Aaaa => self.aaaa = Some(c),
            QueryType::Https => self.https = Some(c),
        }
    }

    fn latest_expiry(&self) -> Instant {
        [&self.a, &self.aaaa, &self.https]
            .into_iter()
            .flatten()
            .map(|c| c.expires)
            .max()
            .unwrap_or(Instant::ZERO)
    }
}

/// A bounded TTL cache of settled DNS answers.
#[derive(Debug)]
pub(crate) struct Cache {
    slots: HashMap<HostName, Slot, BuildHasherDefault<DefaultHasher>>,
    capacity: usize,
}

impl Cache {
    /// A cache holding at most `capacity` names.
    pub(crate) fn new(capacity: usize) -> Self {
        Cache {
            slots: HashMap::default(),
            capacity,
        }
    }

    /// The cached answer for (`name`, `q`), if fresh at `now`, with the TTL it
    /// has left.
    pub(crate) fn get(
        &self,
        now: Instant,
        name: &HostName,
        q: QueryType,
    ) -> Option<(&Answer, u32)> {
        let c = self.slots.get(name)?.get(q)?;
        (c.expires > now).then(|| {
            let left = c.expires.saturating_duration_since(now).as_secs();
            (&c.answer, u32::try_from(left).unwrap_or(u32::MAX))
        })
    }

    /// Stores `answer` if it is cacheable and has a TTL.
    pub(crate) fn insert(&mut self, now: Instant, name: &HostName, q: QueryType, answer: &Answer) {
        let ttl = match answer {
            Answer::Addresses { ttl, .. } | Answer::Https { ttl, .. } => *ttl,
            Answer::NoData { negative_ttl } | Answer::NxDomain { negative_ttl } => *negative_ttl,
            Answer::ServFail | Answer::Refused | Answer::OtherError { .. } => 0,
        };
        if ttl == 0 || self.capacity == 0 {
            return;
        }
        let cached = Cached {
            expires: now + Duration::from_secs(u64::from(ttl)),
            answer: answer.clone(),
        };
        if let Some(slot) = self.slots.get_mut(name) {
            slot.set(q, cached);
            return;
        }
        if self.slots.len() >= self.capacity {
            self.evict(now);
        }
        let mut slot = Slot::default();
        slot.set(q, cached);
        self.slots.insert(name.clone(), slot);
    }

    fn evict(&mut self, now: Instant) {
        self.slots.retain(|_, s| s.latest_expiry() > now);
        if self.slots.len() >= self.capacity {
            let victim = self
                .slots
                .iter()
                .min_by_key(|(_, s)| s.latest_expiry())
                .map(|(k, _)| k.clone());
            if let Some(k) = victim {
                self.slots.remove(&k);
            }
        }
    }

    /// Every HTTPS answer fresh at `now`, with the TTL it has left, for
    /// saving across processes (`race::history_file`).
    pub(crate) fn https_answers(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (&HostName, &Answer, u32)> + '_ {
        self.slots.iter().filter_map(move |(name, slot)| {
            let c = slot.https.as_ref()?;
            let left = c.expires.saturating_duration_since(now).as_secs();
            (c.expires > now && left > 0)
                .then(|| (name, &c.answer, u32::try_from(left).unwrap_or(u32::MAX)))
        })
    }

    /// Number of cached names.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Drops every entry.
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;

    fn name(s: &str) -> HostName {
        HostName::new(s).unwrap()
    }

    #[test]
    fn entries_live_for_their_ttl_and_errors_are_not_cached() {
        // RFC 1035 §7.4 positive TTL; RFC 2308 §5 negative TTL.
        let mut c = Cache::new(8);
        let t0 = Instant::from_millis(0);
        let a = Answer::Addresses {
            addrs: smallvec!["192.0.2.1".parse().unwrap()],
            ttl: 10,
        };
        c.insert(t0, &name("a.example"), QueryType::A, &a);
        c.insert(
            t0,
            &name("a.example"),
            QueryType::Aaaa,
            &Answer::NoData { negative_ttl: 2 },
        );
        c.insert(t0, &name("b.example"), QueryType::A, &Answer::ServFail);
        c.insert(
            t0,
            &name("c.example"),
            QueryType::A,
            &Answer::Addresses {
                addrs: smallvec![],
                ttl: 0,
            },
        );
        assert_eq!(c.len(), 1, "SERVFAIL and TTL 0 are not cached");
        let at = |ms| Instant::from_millis(ms);
        assert_eq!(
            c.get(at(9_000), &name("a.example"), QueryType::A)
                .map(|(a, ttl)| (a.clone(), ttl)),
            Some((a, 1))
        );
        assert!(
            c.get(at(1_000), &name("a.example"), QueryType::Aaaa)
                .is_some()
        );
        assert!(
            c.get(at(2_000), &name("a.example"), QueryType::Aaaa)
                .is_none(),
            "negative TTL over"
        );
        assert!(
            c.get(at(10_000), &name("a.example"), QueryType::A)
                .is_none(),
            "TTL over"
        );
        assert!(c.get(at(0), &name("a.example"), QueryType::Https).is_none());
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_soonest_to_expire() {
        let mut c = Cache::new(2);
        let t0 = Instant::ZERO;
        for (n, ttl) in [("a.example", 100), ("b.example", 5), ("c.example", 50)] {
            c.insert(
                t0,
                &name(n),
                QueryType::A,
                &Answer::NoData { negative_ttl: ttl },
            );
            assert!(c.len() <= 2);
        }
        assert!(
            c.get(t0, &name("b.example"), QueryType::A).is_none(),
            "shortest-lived went first"
        );
        assert!(c.get(t0, &name("a.example"), QueryType::A).is_some());
        assert!(c.get(t0, &name("c.example"), QueryType::A).is_some());
    }
}
