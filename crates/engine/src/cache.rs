//! The engine's two caches. `BufferCache`: a bounded cache of clean 16 KiB
//! buffers (metadata and small data; dirty ones live in the volume set
//! until their flush), keyed by volume and byte offset on the device.
//! `RecordCache`: whole file data records, checked once, shared without
//! copying (DragonFly keeps file data in the vnode's buffers; here the
//! kernel page cache above FUSE plays that part, and this cache spares a
//! small read inside a large record the re-read and re-check of all of
//! it). Eviction is CLOCK-like (second chance) in both, which keeps a full
//! table scan (as `show` and `checkmap` do) from flushing a hot working set
//! entirely.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const BUFSIZE: usize = hammer_ondisk::HAMMER_BUFSIZE as usize;
pub type Buffer = Arc<[u8; BUFSIZE]>;

/// A buffer holding a copy of `bytes` (exactly `BUFSIZE` of them), made
/// with a single copy: no zeroing first, no move from a box into the Arc.
pub fn buffer_from(bytes: &[u8]) -> Buffer {
    assert_eq!(bytes.len(), BUFSIZE, "a whole buffer");
    let mut a = Arc::<[u8; BUFSIZE]>::new_uninit();
    let dst = Arc::get_mut(&mut a).expect("fresh Arc").as_mut_ptr() as *mut u8;
    // SAFETY: `dst` is a fresh, unshared allocation of BUFSIZE bytes and
    // `bytes` has exactly BUFSIZE bytes; the copy initialises all of it.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, BUFSIZE);
        a.assume_init()
    }
}

/// The table is laid out for hits: the map holds each buffer itself, so a
/// hit reads one map entry and then the data; the CLOCK state (which key
/// sits in which slot, and its reference bit) lives in two dense arrays the
/// hand walks on eviction, and the reference bits stay cache-resident.
struct Inner {
    map: crate::hash::OffsetMap<(u32, u64), (usize, Buffer)>,
    keys: Vec<(u32, u64)>,
    referenced: Vec<bool>,
    hand: usize,
}

pub struct BufferCache {
    inner: Mutex<Inner>,
    capacity: usize,
    /// The whole cache budget and the record cache that may use what of
    /// it this cache has not taken yet (`with_records`).
    shared: Option<(usize, Arc<RecordCache>)>,
}

impl BufferCache {
    /// A cache of at most `bytes` of buffers (at least 16 buffers).
    pub fn new(bytes: usize) -> BufferCache {
        let capacity = (bytes / BUFSIZE).max(16);
        BufferCache {
            inner: Mutex::new(Inner {
                map: Default::default(),
                keys: Vec::new(),
                referenced: Vec::new(),
                hand: 0,
            }),
            capacity,
            shared: None,
        }
    }

    /// A buffer cache of at most half of `budget`, sharing the budget
    /// with `records`: the record cache may use all of it that buffers
    /// do not hold (at least half), and shrinks as the buffer cache grows.
    /// A workload of small metadata leaves data most of the memory, and
    /// one walking a large B-tree still gets half.
    pub fn with_records(budget: usize, records: Arc<RecordCache>) -> BufferCache {
        records.set_capacity(budget.saturating_sub(16 * BUFSIZE));
        BufferCache {
            shared: Some((budget, records)),
            ..BufferCache::new(budget / 2)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, vol: u32, off: u64) -> Option<Buffer> {
        let mut g = self.lock();
        let (i, buf) = g.map.get(&(vol, off))?;
        let (i, buf) = (*i, buf.clone());
        g.referenced[i] = true;
        Some(buf)
    }

    /// Runs `f` on the buffer if it is cached, without taking a reference
    /// (no reference-count traffic on the buffer's cold header line, which
    /// a B-tree descent would otherwise pay at every level). `f` runs under
    /// the cache's lock, so it must not use the cache; it is handed back
    /// unrun on a miss.
    pub fn peek<R, F: FnOnce(&[u8; BUFSIZE]) -> R>(
        &self,
        vol: u32,
        off: u64,
        f: F,
    ) -> Result<R, F> {
        let mut g = self.lock();
        let Inner {
            map, referenced, ..
        } = &mut *g;
        let Some((i, buf)) = map.get(&(vol, off)) else {
            return Err(f);
        };
        referenced[*i] = true;
        Ok(f(buf))
    }

    /// Whether the buffer is held (without counting it as a use).
    pub fn contains(&self, vol: u32, off: u64) -> bool {
        self.lock().map.contains_key(&(vol, off))
    }

    pub fn insert(&self, vol: u32, off: u64, buf: Buffer) {
        let mut g = self.lock();
        let key = (vol, off);
        if let Some(slot) = g.map.get_mut(&key) {
            slot.1 = buf;
            return;
        }
        if g.keys.len() < self.capacity {
            let i = g.keys.len();
            g.keys.push(key);
            g.referenced.push(false);
            g.map.insert(key, (i, buf));
            let held = g.keys.len().max(16) * BUFSIZE;
            drop(g);
            // Growing: the record cache gives the room back (its lock is
            // taken only after this one is released).
            if let Some((budget, records)) = &self.shared {
                records.set_capacity(budget.saturating_sub(held));
            }
            return;
        }
        loop {
            let h = g.hand;
            g.hand = (h + 1) % g.keys.len();
            if g.referenced[h] {
                g.referenced[h] = false;
                continue;
            }
            let old = g.keys[h];
            g.map.remove(&old);
            g.keys[h] = key;
            g.map.insert(key, (h, buf));
            return;
        }
    }

    pub fn invalidate(&self, vol: u32, off: u64) {
        let mut g = self.lock();
        if let Some((i, _)) = g.map.remove(&(vol, off)) {
            // Leave the slot in place under a key nobody asks for.
            g.keys[i] = (u32::MAX, u64::MAX - i as u64);
            g.referenced[i] = false;
        }
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file data record's bytes, shared without copying: a block this
/// process wrote (write-behind) or a record read from disk.
#[derive(Clone)]
pub enum RecordBytes {
    Block(Arc<crate::device::DataBlock>, usize),
    Read(Arc<Vec<u8>>),
}

impl std::ops::Deref for RecordBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            RecordBytes::Block(b, len) => &b.bytes()[..*len],
            RecordBytes::Read(v) => v,
        }
    }
}

struct RecordSlot {
    bytes: RecordBytes,
    /// The record's CRC as the tree gave it, when the bytes came from disk
    /// and were checked against it; None for blocks written here.
    crc: Option<u32>,
    referenced: bool,
    generation: u64,
}

impl RecordSlot {
    /// The bytes of a record of `len` bytes with CRC `crc`, if this entry
    /// holds that record.
    fn answer(&self, len: usize, crc: u32) -> Option<RecordBytes> {
        if self.bytes.len() < len || self.crc.is_some_and(|c| c != crc) {
            return None;
        }
        match &self.bytes {
            RecordBytes::Block(b, _) => Some(RecordBytes::Block(b.clone(), len)),
            RecordBytes::Read(v) if v.len() == len => Some(RecordBytes::Read(v.clone())),
            RecordBytes::Read(_) => None,
        }
    }
}

#[derive(Default)]
struct RecordInner {
    /// The records, hashed: a lookup (every small read) is one probe.
    map: crate::hash::OffsetMap<(u32, u64), RecordSlot>,
    /// The same keys in order, for `invalidate`'s range.
    keys: std::collections::BTreeSet<(u32, u64)>,
    /// CLOCK order: (key, generation); entries replaced or invalidated
    /// since are skipped when the hand reaches them.
    clock: std::collections::VecDeque<((u32, u64), u64)>,
    bytes: usize,
    generation: u64,
}

impl RecordInner {
    /// Holds `bytes` at `key` (replacing what was there) as the newest
    /// entry of the CLOCK order.
    fn hold(&mut self, key: (u32, u64), bytes: RecordBytes, crc: Option<u32>) {
        self.generation += 1;
        let generation = self.generation;
        let len = bytes.len();
        let slot = RecordSlot {
            bytes,
            crc,
            referenced: false,
            generation,
        };
        if let Some(old) = self.put(key, slot) {
            self.bytes -= old.bytes.len();
        }
        self.bytes += len;
        self.clock.push_back((key, generation));
    }

    fn put(&mut self, key: (u32, u64), slot: RecordSlot) -> Option<RecordSlot> {
        let old = self.map.insert(key, slot);
        if old.is_none() {
            self.keys.insert(key);
        }
        old
    }

    fn remove(&mut self, key: &(u32, u64)) -> Option<RecordSlot> {
        let old = self.map.remove(key);
        if old.is_some() {
            self.keys.remove(key);
        }
        old
    }
}

/// Whole file data records, already checked, by (volume, device offset):
/// a 4 KiB read inside a 64 KiB record neither reads nor checks the record
/// again, and data just written reads back from memory. Bounded in bytes;
/// every write to data space drops what it overlaps (`invalidate`).
pub struct RecordCache {
    inner: Mutex<RecordInner>,
    /// What it may hold now: the budget the buffer cache leaves unused
    /// (`set_capacity`), so that data records use the room metadata does
    /// not need, and give it back as the buffer cache grows.
    capacity: AtomicUsize,
    /// Of that, what file data waiting for its flush holds now: it shares
    /// the same budget (`reserve`).
    reserved: AtomicUsize,
}

/// Blocks just written may fill this part of the record cache's
/// capacity (a quarter), and only room nobody else uses (`insert_written`).
const WRITTEN_SHARE: usize = 4;

/// The longest record (HAMMER_XBUFSIZE): how far back an overlapping
/// entry can start.
const MAX_RECORD: u64 = 65536;

impl RecordCache {
    pub fn new(bytes: usize) -> RecordCache {
        RecordCache {
            inner: Mutex::new(RecordInner::default()),
            capacity: AtomicUsize::new(bytes),
            reserved: AtomicUsize::new(0),
        }
    }

    /// Sets how much it may hold, dropping the least used records now
    /// if it holds more.
    pub fn set_capacity(&self, bytes: usize) {
        self.capacity.store(bytes, Ordering::Relaxed);
        self.evict_to_room();
    }

    /// Sets aside `bytes` of the records' room for file data written and
    /// not yet flushed, so that clean records, buffers and dirty data stay
    /// within one budget together: records give way as dirty data grows
    /// and get the room back after the flush.
    pub fn reserve(&self, bytes: usize) {
        if self.reserved.swap(bytes, Ordering::Relaxed) < bytes {
            self.evict_to_room();
        }
    }

    /// What records may hold now.
    fn room(&self) -> usize {
        self.capacity
            .load(Ordering::Relaxed)
            .saturating_sub(self.reserved.load(Ordering::Relaxed))
    }

    fn evict_to_room(&self) {
        let room = self.room();
        let mut g = self.lock();
        Self::evict_to(&mut g, room);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecordInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record of `len` bytes at `key` whose CRC is `crc`, if held.
    pub fn get(&self, key: (u32, u64), len: usize, crc: u32) -> Option<RecordBytes> {
        let mut g = self.lock();
        let slot = g.map.get_mut(&key)?;
        let r = slot.answer(len, crc)?;
        slot.referenced = true;
        Some(r)
    }

    /// As `get`, but the entry leaves the cache: for a record about to be
    /// replaced (a block rewritten in part), whose old bytes only the
    /// rewrite needs. Keeping them would leave two copies of the block in
    /// the cache once the new record is written.
    pub fn take(&self, key: (u32, u64), len: usize, crc: u32) -> Option<RecordBytes> {
        let mut g = self.lock();
        let r = g.map.get(&key)?.answer(len, crc)?;
        if let Some(old) = g.remove(&key) {
            g.bytes -= old.bytes.len();
        }
        Some(r)
    }

    pub fn insert(&self, key: (u32, u64), bytes: RecordBytes, crc: Option<u32>) {
        let len = bytes.len();
        let capacity = self.room();
        if len == 0 || len > capacity {
            return;
        }
        let mut g = self.lock();
        g.hold(key, bytes, crc);
        Self::evict_to(&mut g, capacity);
    }

    /// As `insert`, for a block just written (its flush is over): kept as
    /// a page cache keeps what was written, so that reading it back soon
    /// does not go to the disk, but only in room nobody uses and up to
    /// `WRITTEN_SHARE` of the capacity; nothing is evicted for it. The
    /// bound is there because every block kept makes the next one written
    /// take fresh memory: a long stream of writes filling the whole budget
    /// halved sequential writes. Whether it was kept.
    pub fn insert_written(&self, key: (u32, u64), bytes: RecordBytes) -> bool {
        let len = bytes.len();
        let limit = self.capacity.load(Ordering::Relaxed) / WRITTEN_SHARE;
        let mut g = self.lock();
        if len == 0 || g.bytes.saturating_add(len) > limit.min(self.room()) {
            return false;
        }
        g.hold(key, bytes, None);
        true
    }

    /// CLOCK eviction until at most `capacity` bytes are held.
    fn evict_to(g: &mut RecordInner, capacity: usize) {
        while g.bytes > capacity {
            let Some((k, gen)) = g.clock.pop_front() else {
                break;
            };
            let Some(slot) = g.map.get_mut(&k) else {
                continue;
            };
            if slot.generation != gen {
                continue;
            }
            if slot.referenced {
                slot.referenced = false;
                g.clock.push_back((k, gen));
                continue;
            }
            if let Some(old) = g.remove(&k) {
                g.bytes -= old.bytes.len();
            }
        }
    }

    /// Drops every record overlapping device bytes `[from, to)` of volume
    /// `vol` (that space is being written).
    pub fn invalidate(&self, vol: u32, from: u64, to: u64) {
        let mut g = self.lock();
        if g.map.is_empty() {
            return;
        }
        let lo = from.saturating_sub(MAX_RECORD - 1);
        let gone: Vec<(u32, u64)> = g
            .keys
            .range((vol, lo)..(vol, to))
            .filter(|k| {
                g.map
                    .get(k)
                    .is_some_and(|s| k.1 + s.bytes.len() as u64 > from)
            })
            .copied()
            .collect();
        for k in gone {
            if let Some(old) = g.remove(&k) {
                g.bytes -= old.bytes.len();
            }
        }
        if g.clock.len() > 2 * g.map.len() + 1024 {
            // Keep the hand's queue from growing with invalidated entries.
            let RecordInner { map, clock, .. } = &mut *g;
            clock.retain(|(k, gen)| map.get(k).is_some_and(|s| s.generation == *gen));
        }
    }

    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded() {
        let c = BufferCache::new(16 * BUFSIZE);
        for i in 0..100u64 {
            c.insert(0, i * BUFSIZE as u64, Arc::new([i as u8; BUFSIZE]));
        }
        assert!(c.len() <= 16);
        assert_eq!(c.get(0, 99 * BUFSIZE as u64).unwrap()[0], 99);
    }

    fn rec(byte: u8, len: usize) -> RecordBytes {
        RecordBytes::Read(Arc::new(vec![byte; len]))
    }

    #[test]
    fn records_use_what_buffers_leave() {
        let budget = 64 * BUFSIZE;
        let r = Arc::new(RecordCache::new(0));
        let c = BufferCache::with_records(budget, r.clone());
        let rec64 = |i: u64| (i, RecordBytes::Read(Arc::new(vec![i as u8; 65536])));
        for i in 0..64u64 {
            let (k, b) = rec64(i);
            r.insert((0, k * 65536), b, None);
        }
        // Buffers hold nothing yet: records have all but the first 16
        // buffers' worth.
        assert_eq!(r.bytes(), budget - 16 * BUFSIZE);
        for i in 0..100u64 {
            c.insert(0, i * BUFSIZE as u64, Arc::new([i as u8; BUFSIZE]));
            assert!(
                r.bytes() + c.len().max(16) * BUFSIZE <= budget,
                "within the budget"
            );
        }
        // The buffer cache stops at half; the records keep the other half.
        assert_eq!(c.len(), 32);
        assert_eq!(r.bytes(), budget / 2);
    }

    #[test]
    fn dirty_data_takes_room_from_records() {
        let r = RecordCache::new(8 * 65536);
        for i in 0..8u64 {
            r.insert((0, i * 65536), rec(i as u8, 65536), None);
        }
        assert_eq!(r.bytes(), 8 * 65536);
        // Dirty data grows: records give way at once and take no more.
        r.reserve(5 * 65536);
        assert_eq!(r.bytes(), 3 * 65536);
        r.insert((0, 100 * 65536), rec(9, 65536), None);
        assert_eq!(r.bytes(), 3 * 65536);
        // A reservation over the whole capacity leaves records nothing.
        r.reserve(9 * 65536);
        assert_eq!(r.bytes(), 0);
        r.insert((0, 0), rec(1, 65536), None);
        assert_eq!(r.bytes(), 0);
        // After the flush the room comes back.
        r.reserve(0);
        for i in 0..8u64 {
            r.insert((0, i * 65536), rec(i as u8, 65536), None);
        }
        assert_eq!(r.bytes(), 8 * 65536);
    }

    #[test]
    fn written_blocks_only_fill_spare_room() {
        let r = RecordCache::new(16 * 65536);
        r.insert((0, 0), rec(1, 65536), None);
        r.insert((0, 65536), rec(2, 65536), None);
        // Up to a quarter of the capacity, counting what is already held.
        assert!(r.insert_written((1, 0), rec(3, 65536)));
        assert!(r.insert_written((1, 65536), rec(4, 65536)));
        assert!(!r.insert_written((1, 2 * 65536), rec(5, 65536)));
        assert_eq!(r.bytes(), 4 * 65536);
        assert_eq!(r.get((1, 65536), 65536, 0).expect("kept")[0], 4);
        // Nothing was evicted for them, and nothing is when room is short:
        // dirty data's reservation leaves no spare room at all.
        assert!(r.get((0, 0), 65536, 0).is_some());
        r.reserve(12 * 65536);
        assert!(!r.insert_written((2, 0), rec(6, 65536)));
        assert_eq!(r.bytes(), 4 * 65536);
        r.reserve(0);
        // Written blocks are ordinary entries afterwards: a write over
        // them drops them, and clean records may evict them.
        r.invalidate(1, 0, 1);
        assert!(r.get((1, 0), 65536, 0).is_none());
        for i in 0..32u64 {
            r.insert((3, i * 65536), rec(7, 65536), None);
        }
        assert!(r.get((1, 65536), 65536, 0).is_none());
        assert_eq!(r.bytes(), 16 * 65536);
    }

    #[test]
    fn records_bounded_checked_and_invalidated() {
        let c = RecordCache::new(4 * 65536);
        for i in 0..10u64 {
            c.insert((0, i * 65536), rec(i as u8, 65536), Some(i as u32));
            assert!(c.bytes() <= 4 * 65536);
        }
        let hit = c.get((0, 9 * 65536), 65536, 9).expect("newest kept");
        assert_eq!(hit[0], 9);
        // Another CRC or a longer record than held is a miss.
        assert!(c.get((0, 9 * 65536), 65536, 8).is_none());
        assert!(c.get((0, 9 * 65536), 65537, 9).is_none());
        // Writing any byte a record covers drops it, and only it.
        c.insert((1, 16384), rec(1, 16384), None);
        c.insert((1, 65536), rec(2, 65536), None);
        c.invalidate(1, 32768 - 1, 32768);
        assert!(c.get((1, 16384), 16384, 0).is_none());
        assert!(c.get((1, 65536), 65536, 0).is_some());
        c.invalidate(1, 65536 + 65535, 65536 + 65536);
        assert!(c.get((1, 65536), 65536, 0).is_none());
        assert!(
            c.get((0, 9 * 65536), 65536, 9).is_some(),
            "other volume kept"
        );
    }
}
