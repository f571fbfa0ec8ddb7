//! [`IdMap`]: the hash map of the adapter's tables keyed by the machine's
//! ids (the driver's sockets, DNS transactions and connections, the API's
//! connections and socket tasks).

use std::collections::HashMap;

use crate::hash::FxBuildHasher;

/// A hash map keyed by the machine's ids, whose lookups come on every step
/// of every connection. Fx-hashed ([`crate::hash`]): the machine issues
/// every id (a dense slab slot and a generation), so nobody outside picks
/// the keys.
pub(crate) type IdMap<K, V> = HashMap<K, V, FxBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SocketId;

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
