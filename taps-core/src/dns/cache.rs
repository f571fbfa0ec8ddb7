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
pub struct Cache {
    slots: HashMap<HostName, Slot, BuildHasherDefault<DefaultHasher>>,
    capacity: usize,
}

impl Cache {
    /// A cache holding at most `capacity` names.
    pub fn new(capacity: usize) -> Self {
        Cache {
            slots: HashMap::default(),
            capacity,
        }
    }

    /// The cached answer for (`name`, `q`), if fresh at `now`, with the TTL it
    /// has left.
    pub fn get(&self, now: Instant, name: &HostName, q: QueryType) -> Option<(&Answer, u32)> {
        let c = self.slots.get(name)?.get(q)?;
        (c.expires > now).then(|| {
            let left = c.expires.saturating_duration_since(now).as_secs();
            (&c.answer, u32::try_from(left).unwrap_or(u32::MAX))
        })
    }

    /// Stores `answer` if it is cacheable and has a TTL.
    pub fn insert(&mut self, now: Instant, name: &HostName, q: QueryType, answer: &Answer) {
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

    /// Number of cached names.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.slots.clear();
    }
}
