//! A bounded cache of 16 KiB buffers, keyed by volume and byte offset on the
//! device. Read-only for now: the flusher will add dirty tracking. Eviction
//! is CLOCK-like (second chance), which keeps a full table scan (as `show`
//! and `checkmap` do) from flushing a hot working set entirely.

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

struct Slot {
    key: (u32, u64),
    buf: Buffer,
    referenced: bool,
}

struct Inner {
    map: crate::hash::OffsetMap<(u32, u64), usize>,
    slots: Vec<Slot>,
    hand: usize,
}

pub struct BufferCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl BufferCache {
    /// A cache of at most `bytes` of buffers (at least 16 buffers).
    pub fn new(bytes: usize) -> BufferCache {
        let capacity = (bytes / BUFSIZE).max(16);
        BufferCache {
            inner: Mutex::new(Inner {
                map: Default::default(),
                slots: Vec::new(),
                hand: 0,
            }),
            capacity,
        }
    }

    pub fn get(&self, vol: u32, off: u64) -> Option<Buffer> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let i = *g.map.get(&(vol, off))?;
        g.slots[i].referenced = true;
        Some(g.slots[i].buf.clone())
    }

    /// Whether the buffer is held (without counting it as a use).
    pub fn contains(&self, vol: u32, off: u64) -> bool {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.map.contains_key(&(vol, off))
    }

    pub fn insert(&self, vol: u32, off: u64, buf: Buffer) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (vol, off);
        if let Some(&i) = g.map.get(&key) {
            g.slots[i].buf = buf;
            return;
        }
        if g.slots.len() < self.capacity {
            let i = g.slots.len();
            g.slots.push(Slot {
                key,
                buf,
                referenced: false,
            });
            g.map.insert(key, i);
            return;
        }
        loop {
            let h = g.hand;
            g.hand = (h + 1) % g.slots.len();
            if g.slots[h].referenced {
                g.slots[h].referenced = false;
                continue;
            }
            let old = g.slots[h].key;
            g.map.remove(&old);
            g.slots[h] = Slot {
                key,
                buf,
                referenced: false,
            };
            g.map.insert(key, h);
            return;
        }
    }

    pub fn invalidate(&self, vol: u32, off: u64) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = g.map.remove(&(vol, off)) {
            // Leave the slot in place under a key nobody asks for.
            g.slots[i].key = (u32::MAX, u64::MAX - i as u64);
            g.slots[i].referenced = false;
        }
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
}
