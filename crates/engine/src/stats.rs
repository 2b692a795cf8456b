//! Process-wide statistics counters, the counterpart of DragonFly's
//! `vfs.hammer.stats_*` sysctls that `hammer bstats`, `iostats` and `stats`
//! print. They are plain relaxed atomics, global like the sysctls (one
//! daemon serves one mount, so in practice they are per mount), bumped at
//! a handful of places: the B-tree (`btree.rs`), the file device
//! (`device.rs`), the flusher (`flush.rs`), inode write-out (`fs.rs`) and
//! the FUSE adapter (file reads and writes). Meanings here:
//! `lookups` = exact-key lookups, `searches` = descents from the root
//! (every scan), `inserts`/`deletes` = records added/removed, `elements` =
//! leaf elements examined by scans, `splits` = node splits, `iterations` =
//! nodes visited by scans, `rootiters` = root nodes visited, `reciters` =
//! records handed to scan visitors; `f_read`/`f_write` = file read/write
//! requests, `d_read`/`d_write` = bytes read from/written to the devices,
//! `i_flushes` = inodes written out, `commits` = flushes, `undo` = bytes
//! of UNDO records logged, `redo` = bytes of file data logged in REDO
//! records by fast fsyncs.

use std::sync::atomic::{AtomicU64, Ordering};

/// One counter.
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub static BTREE_LOOKUPS: Counter = Counter::new();
pub static BTREE_SEARCHES: Counter = Counter::new();
pub static BTREE_INSERTS: Counter = Counter::new();
pub static BTREE_DELETES: Counter = Counter::new();
pub static BTREE_ELEMENTS: Counter = Counter::new();
pub static BTREE_SPLITS: Counter = Counter::new();
pub static BTREE_ITERATIONS: Counter = Counter::new();
pub static BTREE_ROOT_ITERATIONS: Counter = Counter::new();
pub static RECORD_ITERATIONS: Counter = Counter::new();
pub static FILE_READS: Counter = Counter::new();
pub static FILE_WRITES: Counter = Counter::new();
pub static DISK_READ_BYTES: Counter = Counter::new();
pub static DISK_WRITE_BYTES: Counter = Counter::new();
pub static INODE_FLUSHES: Counter = Counter::new();
pub static COMMITS: Counter = Counter::new();
pub static UNDO_BYTES: Counter = Counter::new();
pub static REDO_BYTES: Counter = Counter::new();

/// The counters in `hammer stats` column order, with their names there.
pub const NAMES: [&str; 17] = [
    "lookups",
    "searches",
    "inserts",
    "deletes",
    "elements",
    "splits",
    "iterations",
    "rootiters",
    "reciters",
    "f_read",
    "f_write",
    "d_read",
    "d_write",
    "i_flushes",
    "commits",
    "undo",
    "redo",
];

/// Every counter's current value, in [`NAMES`] order.
pub fn snapshot() -> [u64; 17] {
    [
        &BTREE_LOOKUPS,
        &BTREE_SEARCHES,
        &BTREE_INSERTS,
        &BTREE_DELETES,
        &BTREE_ELEMENTS,
        &BTREE_SPLITS,
        &BTREE_ITERATIONS,
        &BTREE_ROOT_ITERATIONS,
        &RECORD_ITERATIONS,
        &FILE_READS,
        &FILE_WRITES,
        &DISK_READ_BYTES,
        &DISK_WRITE_BYTES,
        &INODE_FLUSHES,
        &COMMITS,
        &UNDO_BYTES,
        &REDO_BYTES,
    ]
    .map(Counter::get)
}
