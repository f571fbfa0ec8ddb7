//! [`FxBuildHasher`]: a fast, fixed hash for the tables whose lookups come
//! on every connection (the adapters' tables keyed by ids,
//! [`IdMap`](crate::id::IdMap); the connection history, `race::history`).
//!
//! Why not the rustc-hash crate, whose `FxHasher` this one follows: its
//! finishing step leaves the low bits, which std's `HashMap` takes its
//! bucket from, nearly constant for keys that differ only in their last
//! bytes. Measured with the keys of the history table (an interface and
//! the 256 addresses `2001:db8::0`-`2001:db8::ff`), rustc-hash 2.1 put all
//! 256 in one bucket of 64, 256, 1024 or 4096, so every lookup would probe
//! the whole run; this hasher's MurmurHash3 finaliser spreads them over
//! 63, 160, 230 and 246 (IPv4 `192.0.2.0/24`: 26/102/256/256 against
//! 62/159/227/247). The test `addresses_of_one_prefix_spread_over_the_buckets`
//! fails with rustc-hash in its place.

use std::hash::{BuildHasherDefault, Hasher};

/// Builds [`FxHasher`]s: no per-table keys, so a table's iteration order is
/// the same in every run (ARCHITECTURE.md "The core contract" rule 1).
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// One multiply per word (the Fx hash of rustc and Firefox) and a
/// finaliser, instead of std's SipHash, which was a fifth of a connect's user-space work.
/// SipHash's defence against chosen collisions needs a secret key, which a
/// deterministic table cannot have anyway; each table using this one says
/// why collisions cannot hurt it.
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher(u64);

impl FxHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
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
        // MurmurHash3's finaliser: a word's multiply carries its bits only
        // upwards, so inputs that differ only in a word's high bytes (IPv6
        // addresses of one /64 differ in their last bytes) would share the
        // low bits a table takes its bucket from.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;
    use std::net::IpAddr;

    use super::*;
    use crate::id::SocketId;

    fn spread(hashes: impl Iterator<Item = u64>, buckets: u64) -> usize {
        hashes.map(|h| h % buckets).collect::<HashSet<_>>().len()
    }

    #[test]
    fn ids_that_differ_in_slot_or_generation_hash_apart() {
        let build = FxBuildHasher::default();
        let hashes: Vec<u64> = (0..256)
            .flat_map(|i| (0..8).map(move |g| SocketId::from_raw(i, g)))
            .map(|id| build.hash_one(id))
            .collect();
        assert_eq!(hashes.iter().collect::<HashSet<_>>().len(), hashes.len());
        // And they spread over a table's buckets (its low bits).
        assert!(spread(hashes.into_iter(), 1024) > 600);
    }

    #[test]
    fn addresses_of_one_prefix_spread_over_the_buckets() {
        let build = FxBuildHasher::default();
        let v6 = (0..256u16).map(|i| {
            let ip: IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
            build.hash_one((Some(2u32), ip))
        });
        assert!(spread(v6, 256) > 140, "IPv6 last bytes");
        let v4 = (0..=255u8).map(|i| build.hash_one((None::<u32>, IpAddr::from([192, 0, 2, i]))));
        assert!(spread(v4, 256) > 140, "IPv4 last bytes");
    }
}
