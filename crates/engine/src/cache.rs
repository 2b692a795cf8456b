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
