//! Fast, unkeyed hashing for tables whose keys this process chose.
//!
//! std's SipHash resists collision attacks, which only matter when a peer picks the keys a
//! table *stores*. Request numbers (ours, and the peer's in a table capped at
//! `max_concurrent_requests`), export ids (ours) and member names (the object's) are chosen here;
//! a peer only looks them up, and a lookup cannot lengthen the probe chains of keys it does
//! not insert. Tables keyed by peer-chosen ids (the import cache) keep SipHash.

use std::{collections::HashMap, hash::BuildHasherDefault};

/// A fast hasher for the `u64` request numbers that key the pending and inbound tables.
/// Pending keys are ours; inbound keys are the peer's but that table is capped at
/// `max_concurrent_requests`, so crafted collisions cost little. SipHash stays on tables keyed
/// by peer-chosen ids without such a cap.
#[derive(Clone, Copy, Default)]
pub(crate) struct SeqHasher(u64);

impl std::hash::Hasher for SeqHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing spreads sequential numbers over the high bits hashbrown uses.
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by request number or export id.
pub(crate) type SeqMap<V> = HashMap<u64, V, BuildHasherDefault<SeqHasher>>;

/// A map keyed by a member name (FNV-1a over the bytes).
pub(crate) type NameMap<V> = HashMap<String, V, BuildHasherDefault<SeqHasher>>;
