//! Handles: small copyable ids for everything the machine owns.
//!
//! ARCHITECTURE.md "The core contract" rule 2: connections, attempts, sockets and DNS transactions live
//! in `slab` tables and are named by ids. Each id carries a generation, so an id
//! whose slot was freed and reused is recognised as stale instead of silently
//! naming the new occupant. A stale id in an input is ignored and counted.

use core::fmt;
use std::collections::HashMap;

use slab::Slab;

pub use crate::hash::{FxBuildHasher as IdBuildHasher, FxHasher as IdHasher};

/// A hash map keyed by the machine's ids, for the tables an adapter keeps
/// beside the machine (its sockets, transactions, connections), whose
/// lookups come on every step of every connection. Fx-hashed
/// ([`IdHasher`]) rather than SipHash: the machine issues every id (a
/// dense slab slot and a generation), so nobody outside picks the keys,
/// and a fixed hash keeps iteration order the same in every run.
pub type IdMap<K, V> = HashMap<K, V, IdBuildHasher>;

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            index: u32,
            generation: u32,
        }

        impl $name {
            /// Builds an id from its raw parts; for adapters that keep ids in
            /// their own tables and for fuzzers that forge stale ids.
            pub const fn from_raw(index: u32, generation: u32) -> Self {
                $name { index, generation }
            }

            /// The raw parts: slot index and generation.
            pub const fn to_raw(self) -> (u32, u32) {
                (self.index, self.generation)
            }
        }

        impl Handle for $name {
            fn new(index: u32, generation: u32) -> Self {
                $name { index, generation }
            }
            fn index(self) -> u32 {
                self.index
            }
            fn generation(self) -> u32 {
                self.generation
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}.{}"), self.index, self.generation)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.index)
            }
        }
    };
}

/// What every id type offers the [`Table`].
pub(crate) trait Handle: Copy {
    /// Makes an id from a slot and a generation.
    fn new(index: u32, generation: u32) -> Self;
    /// The slot.
    fn index(self) -> u32;
    /// The generation the slot had when the id was issued.
    fn generation(self) -> u32;
}

handle!(
    /// Names one connection (from `initiate` until it is freed).
    ConnectionId,
    "conn"
);
handle!(
    /// Names one socket the adapter opened on the machine's behalf.
    SocketId,
    "sock"
);
handle!(
    /// Names one listener.
    ListenerId,
    "listener"
);
handle!(
    /// Names one DNS transaction: one query message sent to one server.
    DnsTxnId,
    "dns"
);

/// A slab whose ids carry generations, so stale ids miss instead of aliasing.
#[derive(Debug)]
pub(crate) struct Table<H, T> {
    slots: Slab<(u32, T)>,
    next_generation: u32,
    _handle: core::marker::PhantomData<H>,
}

impl<H: Handle, T> Default for Table<H, T> {
    fn default() -> Self {
        Table {
            slots: Slab::new(),
            next_generation: 0,
            _handle: core::marker::PhantomData,
        }
    }
}

impl<H: Handle, T> Table<H, T> {
    /// Stores `value` and returns its new id.
    pub(crate) fn insert(&mut self, value: T) -> H {
        self.insert_with(|_| value)
    }

    /// Stores the value `make` builds from its own id.
    pub(crate) fn insert_with(&mut self, make: impl FnOnce(H) -> T) -> H {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let entry = self.slots.vacant_entry();
        let id = H::new(
            u32::try_from(entry.key()).expect("more than 2^32 live handles"),
            generation,
        );
        entry.insert((generation, make(id)));
        id
    }

    /// The value `id` names, unless `id` is stale.
    pub(crate) fn get(&self, id: H) -> Option<&T> {
        match self.slots.get(id.index() as usize) {
            Some((g, v)) if *g == id.generation() => Some(v),
            _ => None,
        }
    }

    /// The value `id` names, mutably, unless `id` is stale.
    pub(crate) fn get_mut(&mut self, id: H) -> Option<&mut T> {
        match self.slots.get_mut(id.index() as usize) {
            Some((g, v)) if *g == id.generation() => Some(v),
            _ => None,
        }
    }

    /// Removes and returns the value `id` names, unless `id` is stale.
    pub(crate) fn remove(&mut self, id: H) -> Option<T> {
        self.get(id)?;
        Some(self.slots.remove(id.index() as usize).1)
    }

    /// Whether `id` names a live value.
    pub(crate) fn contains(&self, id: H) -> bool {
        self.get(id).is_some()
    }

    /// Number of live values.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the table is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every live id and value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (H, &T)> {
        self.slots
            .iter()
            .map(|(i, (g, v))| (H::new(i as u32, *g), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_does_not_answer_to_the_old_id() {
        let mut t: Table<ConnectionId, &str> = Table::default();
        let a = t.insert("a");
        assert_eq!(t.remove(a), Some("a"));
        let b = t.insert("b");
        assert_eq!(a.to_raw().0, b.to_raw().0, "slot is reused");
        assert_eq!(t.get(a), None);
        assert_eq!(t.remove(a), None);
        assert_eq!(t.get(b), Some(&"b"));
    }

    #[test]
    fn an_id_map_finds_live_ids_and_misses_stale_ones() {
        let mut map: IdMap<SocketId, u32> = IdMap::default();
        for i in 0..1000 {
            map.insert(SocketId::from_raw(i, i / 7), i);
        }
        assert!((0..1000).all(|i| map.get(&SocketId::from_raw(i, i / 7)) == Some(&i)));
        assert_eq!(map.get(&SocketId::from_raw(30, 1)), None);
        map.retain(|_, v| *v % 2 == 0);
        assert_eq!(map.len(), 500);
        assert!(map.contains_key(&SocketId::from_raw(998, 998 / 7)));
    }
}
