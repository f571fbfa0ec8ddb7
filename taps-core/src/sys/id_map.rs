//! [`IdMap`]: the hash map of the adapter's tables keyed by the machine's
//! ids (the driver's sockets, DNS transactions and connections, the API's
//! connections and socket tasks).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A hash map keyed by the machine's ids: their lookups come on every step
/// of every connection.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]: one multiply per word (the Fx hash of rustc
/// and Firefox) instead of std's SipHash, whose lookups were a fifth of a
/// connect's user-space work. SipHash's keyed defence against chosen
/// collisions is not needed: the machine issues every id (a dense slab
/// slot and a generation), so nobody outside picks the keys.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher(u64);

impl IdHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;
    use crate::id::SocketId;

    #[test]
    fn ids_that_differ_in_slot_or_generation_hash_apart() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (0..256)
            .flat_map(|i| (0..8).map(move |g| SocketId::from_raw(i, g)))
            .map(|id| build.hash_one(id))
            .collect();
        let mut distinct = hashes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), hashes.len());
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
