//! A fast hasher for the engine's in-memory maps keyed by offsets (buffer
//! cache, node maps). The keys are not attacker-chosen hashes of names but
//! disk offsets, so the standard SipHash's flood resistance buys nothing
//! here and costs most of a cached lookup.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative hashing of the words written into it (FxHash style).
#[derive(Default, Clone, Copy)]
pub struct OffsetHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for OffsetHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        // Offsets are 4 KiB aligned, so the product's low bits are zero;
        // fold the high bits down (the table indexes by the low ones).
        let h = self.0;
        h ^ (h >> 29) ^ (h >> 47)
    }
}

pub type OffsetMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<OffsetHasher>>;
