//! The world's tables of open sockets and DNS transactions, keyed by the
//! client machine's ids. Models no RFC.
//!
//! Not `taps_core::IdMap`: that map keys by the whole id, so two ids of one
//! slot (the core freed the slot and issued it again) would be two entries.
//! Here a slot holds one entry, whatever its generation, and the world's
//! contract checks rely on that: an `OpenTcp` of a socket whose slot is
//! still open is caught when it happens (an insert that is not fresh), and
//! what the new id replaced stops answering. A correct machine never reuses
//! a slot the world still holds, so on every correct run the two tables
//! agree; they differ only in how a broken machine is reported. Indexing by
//! slot also costs a compare instead of a hash on the hottest path of
//! population runs.

/// A table keyed by a core handle's raw (index, generation), so lookups cost
/// an index and a compare, and a reused slot never answers to an old id.
#[derive(Debug)]
pub(super) struct SlotMap<V> {
    slots: Vec<Option<(u32, V)>>,
    len: usize,
}

impl<V> Default for SlotMap<V> {
    fn default() -> Self {
        SlotMap {
            slots: Vec::new(),
            len: 0,
        }
    }
}

impl<V> SlotMap<V> {
    pub(super) fn clear(&mut self) {
        self.slots.clear();
        self.len = 0;
    }
    /// Stores `value` in the key's slot, replacing whatever it held; false
    /// when the slot was not free.
    pub(super) fn insert(&mut self, (index, generation): (u32, u32), value: V) -> bool {
        let i = index as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        let fresh = self.slots[i].is_none();
        if fresh {
            self.len += 1;
        }
        self.slots[i] = Some((generation, value));
        fresh
    }
    pub(super) fn get_mut(&mut self, (index, generation): (u32, u32)) -> Option<&mut V> {
        match self.slots.get_mut(index as usize) {
            Some(Some((g, v))) if *g == generation => Some(v),
            _ => None,
        }
    }
    pub(super) fn get(&self, (index, generation): (u32, u32)) -> Option<&V> {
        match self.slots.get(index as usize) {
            Some(Some((g, v))) if *g == generation => Some(v),
            _ => None,
        }
    }
    pub(super) fn contains(&self, (index, generation): (u32, u32)) -> bool {
        matches!(self.slots.get(index as usize), Some(Some((g, _))) if *g == generation)
    }
    pub(super) fn remove(&mut self, key: (u32, u32)) -> Option<V> {
        if !self.contains(key) {
            return None;
        }
        self.len -= 1;
        self.slots[key.0 as usize].take().map(|(_, v)| v)
    }
    /// Entries held.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}
