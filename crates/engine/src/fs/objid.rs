//! Object ids as DragonFly's kernel hands them out (`hammer_alloc_objid`):
//! from the TID space, in windows of 1,024 ids reserved per directory, the
//! id within a window picked from the top bits of the new name's directory
//! key. Objects made in one directory so get neighbouring ids (their
//! inodes sit together in the B-tree), roughly in the order of their
//! directory entries, which keeps `ls -l` and reblocking local.
//!
//! A window is `alloc_tid(2048)` rounded up to a multiple of 1,024, so its
//! ids never meet a TID handed out before or after. At most 2,048 windows
//! are kept (the least recently used one goes); a window three-quarters
//! full is dropped and the directory's next object opens a new one. Ids
//! are never reused: the TID counter written at each flush
//! (`vol0_next_tid`) is above every window handed out.

use super::{Fs, MAX_MASTERS};
use std::collections::HashMap;

/// Ids per window (`OBJID_CACHE_BULK`).
pub const WINDOW: u64 = 1024;
/// Windows kept at once (`OBJID_CACHE_SIZE`).
const MAX_WINDOWS: usize = 2048;

/// One directory's window: a two-level bitmap of the ids taken.
#[derive(Clone, Debug)]
pub(super) struct Window {
    base: u64,
    /// Bit `i`: word `i` of `bm1` is full.
    bm0: u32,
    bm1: [u32; 32],
    count: u32,
    /// Last use, for choosing which window to drop.
    used: u64,
}

impl Window {
    /// Takes the first free id at or after bit `n` (wrapping), as the
    /// kernel's `ocp_allocbit`. The window has a free bit.
    fn take(&mut self, n: u32) -> u64 {
        let (mut word, mut bit) = ((n >> 5) & 31, n & 31);
        while self.bm1[word as usize] & (1 << bit) != 0 {
            if self.bm0 & (1 << word) != 0 {
                word = (word + 1) & 31;
                bit = 0;
            } else {
                bit += 1;
                if bit == 32 {
                    word = (word + 1) & 31;
                    bit = 0;
                }
            }
        }
        self.count += 1;
        self.bm1[word as usize] |= 1 << bit;
        if self.bm1[word as usize] == u32::MAX {
            self.bm0 |= 1 << word;
        }
        self.base + ((word << 5) + bit) as u64
    }
}

/// The windows of one mount, by (PFS localization, directory).
#[derive(Default)]
pub(super) struct Windows {
    map: HashMap<(u32, i64), Window>,
    clock: u64,
}

impl Fs {
    /// Hands out `count` TIDs (the kernel's `hammer_alloc_tid`): the first
    /// of them; in multi-master mode aligned to the master's residue
    /// class, and spaced by 16.
    pub(super) fn alloc_tids(&mut self, count: u64) -> u64 {
        let base = self
            .next_tid
            .max(self.set.header().vol0_next_tid)
            .max(0x1_0000_0001);
        let t = match self.master_id {
            None => {
                self.next_tid = base + count;
                base + 1
            }
            Some(m) => {
                let t = (base + MAX_MASTERS) & !(MAX_MASTERS - 1);
                self.next_tid = t + count * MAX_MASTERS;
                t | m as u64
            }
        };
        self.next_tid = self.next_tid.max(t);
        t
    }

    /// A new object id for an object named with directory key `namekey`
    /// in directory `dir`.
    pub(super) fn alloc_objid(&mut self, dir: i64, namekey: i64) -> i64 {
        let key = (self.pfs_lo, dir);
        self.objids.clock += 1;
        let clock = self.objids.clock;
        if !self.objids.map.contains_key(&key) {
            if self.objids.map.len() >= MAX_WINDOWS {
                let oldest = self
                    .objids
                    .map
                    .iter()
                    .min_by_key(|(_, w)| w.used)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.objids.map.remove(&k);
                }
            }
            let t = self.alloc_tids(WINDOW * 2);
            let base = (t + WINDOW - 1) & !(WINDOW - 1);
            self.objids.map.insert(
                key,
                Window {
                    base,
                    bm0: 0,
                    bm1: [0; 32],
                    count: 0,
                    used: clock,
                },
            );
        }
        let w = self.objids.map.get_mut(&key).expect("inserted above");
        w.used = clock;
        let n = ((namekey as u64 >> (63 - 10)) & (WINDOW - 1)) as u32;
        let id = w.take(n);
        if w.count as u64 >= WINDOW * 3 / 4 {
            self.objids.map.remove(&key);
        }
        id as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_wrap_and_fill() {
        let mut w = Window {
            base: 4096,
            bm0: 0,
            bm1: [0; 32],
            count: 0,
            used: 0,
        };
        assert_eq!(w.take(5), 4096 + 5);
        assert_eq!(w.take(5), 4096 + 6);
        assert_eq!(w.take(1023), 4096 + 1023);
        // Past the end: wraps to the start.
        assert_eq!(w.take(1023), 4096);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..1020 {
            assert!(seen.insert(w.take(i % 1024)));
        }
        assert_eq!(w.count, 1024);
        assert_eq!(w.bm0, u32::MAX);
    }
}
