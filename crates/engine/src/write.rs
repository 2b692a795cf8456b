//! Writing through a volume set: copy-on-write dirty buffers in memory, the
//! root volume's header (blockmaps, stats, next TID) kept in memory, and the
//! ordered write-out that makes a change durable. The flusher with UNDO/REDO
//! builds on this; offline builders (newfs --from) use it directly, since a
//! fresh volume whose header is written last needs no UNDO: until the header
//! lands, every new block sits in space the old freemap calls free.

use crate::cache::{Buffer, BUFSIZE};
use crate::device::DataBlock;
use crate::error::{Error, Result};
use crate::volume::VolumeSet;
use hammer_ondisk::*;
use zerocopy::IntoBytes;

impl VolumeSet {
    fn check_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::Invalid("volume set is open read-only".into()))
        }
    }

    /// The CRC writers of this volume's version use.
    pub fn crc_kind(&self) -> CrcKind {
        CrcKind::for_version(self.version())
    }

    /// Overwrites `bytes` at any writable address (zones 2, 3, 4, 8–15),
    /// in memory. Spans buffers as needed.
    pub fn write(&mut self, off: u64, bytes: &[u8]) -> Result<()> {
        self.check_writable()?;
        let mut done = 0usize;
        while done < bytes.len() {
            let cur = off.checked_add(done as u64).ok_or(Error::BadAddress {
                what: "address overflow",
                offset: off,
            })?;
            let in_buf = (self.to_zone2(cur)? & HAMMER_BUFMASK) as usize;
            let n = (BUFSIZE - in_buf).min(bytes.len() - done);
            self.update_buffer(cur, |b| {
                b[in_buf..in_buf + n].copy_from_slice(&bytes[done..done + n])
            })?;
            done += n;
        }
        Ok(())
    }

    /// Fills a whole new buffer without reading the old one first (fresh
    /// data blocks, freshly formatted FIFO space).
    pub fn write_new_buffer(&mut self, zone2_aligned: u64, content: Buffer) -> Result<()> {
        self.check_writable()?;
        let key = self.device_key(zone2_aligned & !HAMMER_BUFMASK)?;
        self.records
            .invalidate(key.0, key.1, key.1 + BUFSIZE as u64);
        self.note_dirty(key, None, HAMMER_ZONE_LARGE_DATA_INDEX);
        self.generation = self.generation.wrapping_add(1);
        self.dirty.insert(key, content);
        Ok(())
    }

    /// Writes data into freshly allocated space: whole aligned 16 KiB
    /// buffers are filled without reading what the disk held there.
    ///
    /// Whole aligned buffers of record data (zones 10 and 11) go to the
    /// device's write-behind at once, from one aligned copy: the disk works
    /// while the caller goes on, and the flush only waits for them. Until
    /// that flush is over they are read from `behind`.
    pub fn write_fresh(&mut self, off: u64, data: &[u8]) -> Result<()> {
        if let Some((vol_no, phys)) = self.behind_target(off, data.len())? {
            if let Some(block) = DataBlock::from_bytes(data) {
                self.write_behind(vol_no, phys, block, false);
                return Ok(());
            }
        }
        self.write_fresh_buffers(off, data)
    }

    /// As `write_fresh`, handing over the aligned block itself instead of
    /// copying it (a file block written in part and kept until the flush).
    /// The block leaves `slot` only once it is queued, so on an error the
    /// caller still holds it.
    pub fn write_fresh_block(&mut self, off: u64, slot: &mut Option<DataBlock>) -> Result<()> {
        let len = slot.as_ref().map_or(0, |b| b.len());
        if let Some((vol_no, phys)) = self.behind_target(off, len)? {
            if let Some(block) = slot.take() {
                self.write_behind(vol_no, phys, block, true);
                return Ok(());
            }
        }
        if let Some(b) = slot.as_ref() {
            self.write_fresh_buffers(off, b.bytes())?;
            *slot = None;
        }
        Ok(())
    }

    /// Where `len` bytes of record data at `off` go to write-behind: whole
    /// aligned buffers in a data zone, one contiguous run on one device.
    fn behind_target(&self, off: u64, len: usize) -> Result<Option<(u32, u64)>> {
        if off & HAMMER_BUFMASK != 0
            || !len.is_multiple_of(BUFSIZE)
            || len == 0
            || !is_data_zone(zone_of(off))
        {
            return Ok(None);
        }
        self.check_writable()?;
        let (vol_no, phys) = self.device_key(self.to_zone2(off)?)?;
        let last = self.to_zone2(off + len as u64 - 1)?;
        let (lvol, lphys) = self.device_key(last)?;
        // A record never crosses a big-block, but check rather than assume.
        if lvol == vol_no && lphys == phys + len as u64 - 1 && self.volume(vol_no).is_some() {
            return Ok(Some((vol_no, phys)));
        }
        Ok(None)
    }

    /// Fresh space written a buffer at a time, through the dirty buffers.
    fn write_fresh_buffers(&mut self, off: u64, data: &[u8]) -> Result<()> {
        if off & HAMMER_BUFMASK != 0 || !data.len().is_multiple_of(BUFSIZE) {
            return self.write(off, data);
        }
        for (i, chunk) in data.chunks(BUFSIZE).enumerate() {
            let z2 = self.to_zone2(off + (i * BUFSIZE) as u64)?;
            self.write_new_buffer(z2, crate::cache::buffer_from(chunk))?;
        }
        Ok(())
    }

    /// Queues `block` for device offset `phys` of volume `vol_no` (fresh
    /// space, 16 KiB-aligned, whole buffers) and keeps it for readers.
    /// The volume must exist (`behind_target` checked). A device that
    /// cannot take the write now (its writer thread gone) does not lose
    /// the block: it stays in `behind`, readable, and the flush writes
    /// everything again and reports the error if that fails too.
    /// `cache`: the block goes to the record cache after the flush.
    fn write_behind(&mut self, vol_no: u32, phys: u64, block: DataBlock, cache: bool) {
        let len = block.len() as u64;
        // Nothing older may shadow or outlive the new bytes: a buffer of
        // this space still dirty or cached from its previous life.
        self.records.invalidate(vol_no, phys, phys + len);
        let mut b = phys;
        while b < phys + len {
            if self.dirty.remove(&(vol_no, b)).is_some() {
                self.fl.orig.remove(&(vol_no, b));
                self.fl.meta.remove(&(vol_no, b));
            }
            self.cache.invalidate(vol_no, b);
            b += BUFSIZE as u64;
        }
        let block = std::sync::Arc::new(block);
        let queued = match self.volume(vol_no) {
            Some(v) => v.dev.write_behind(block.clone(), phys).is_ok(),
            None => false,
        };
        if !queued {
            self.behind_failed = true;
        }
        if let Some(old) = self.behind.insert((vol_no, phys), block) {
            self.behind_bytes -= old.len() as u64;
        }
        if cache {
            self.behind_cached.insert((vol_no, phys));
        } else {
            self.behind_cached.remove(&(vol_no, phys));
        }
        self.behind_bytes += len;
        self.behind_order.push_back((vol_no, phys));
        self.reap_behind();
    }

    /// Lets go of the oldest write-behind blocks whose write is done:
    /// readers find their bytes on the disk (or in the record cache) from
    /// now on, and their memory goes back for the next blocks instead of
    /// waiting for the flush. A block is done when the writer thread has
    /// dropped its reference, which it does only after noting the write's
    /// outcome; once any write has failed nothing more is let go, so the
    /// flush still holds every block it may have to write again.
    fn reap_behind(&mut self) {
        while !self.behind_failed {
            let Some(&key) = self.behind_order.front() else {
                return;
            };
            let Some(block) = self.behind.get(&key) else {
                // Replaced by a later block at the same place.
                self.behind_order.pop_front();
                continue;
            };
            if std::sync::Arc::strong_count(block) > 1 {
                return;
            }
            if self.volume(key.0).is_none_or(|v| v.dev.behind_failed()) {
                return;
            }
            self.behind_order.pop_front();
            if let Some(block) = self.behind.remove(&key) {
                self.behind_bytes -= block.len() as u64;
                self.keep_written(key, block);
            }
        }
    }

    /// Where a block whose write is over goes: the record cache, or only
    /// its spare room for one written whole (see `behind_cached`).
    fn keep_written(&mut self, key: (u32, u64), block: std::sync::Arc<DataBlock>) {
        let len = block.len();
        let bytes = crate::cache::RecordBytes::Block(block, len);
        if self.behind_cached.remove(&key) {
            self.records.insert(key, bytes, None);
        } else {
            self.records.insert_written(key, bytes);
        }
    }

    /// Bytes of record data stored since the last flush and held in
    /// memory until it is over (see `write_fresh`).
    pub fn behind_bytes(&self) -> u64 {
        self.behind_bytes
    }

    /// Waits for every write-behind of the data in `behind` (writing it
    /// again here if one failed before); the volumes it went to are added
    /// to `touched` for the barrier that follows.
    pub(crate) fn settle_behind(
        &mut self,
        touched: &mut std::collections::BTreeSet<u32>,
    ) -> Result<()> {
        let vols: std::collections::BTreeSet<u32> = self.behind.keys().map(|k| k.0).collect();
        let mut failed = None;
        for &vol_no in &vols {
            if let Some(v) = self.volume(vol_no) {
                if let Err(e) = v.dev.drain() {
                    failed.get_or_insert(Error::io(&v.name, e));
                }
            }
        }
        if failed.is_some() || self.behind_failed {
            // Some write went wrong: write everything again, and wait.
            self.behind_failed = true;
            for (&key, block) in &self.behind {
                self.dev_write(key, block.bytes())?;
            }
            self.behind_failed = false;
        }
        touched.extend(vols);
        Ok(())
    }

    /// Waits for the data handed to write-behind so far and lets it go
    /// (to the record cache). Only for a writer whose ordering needs no
    /// barrier between the data and what points at it: `newfs_hammer
    /// --from` writes the volume header, which makes it all reachable, last.
    pub(crate) fn settle_data(&mut self) -> Result<()> {
        let mut touched = std::collections::BTreeSet::new();
        self.settle_behind(&mut touched)?;
        self.forget_behind();
        Ok(())
    }

    /// Forgets the write-behind data once the flush that covers it is
    /// over (it is on disk; readers go there now). Blocks rewritten in
    /// part go to the record cache (`behind_cached`: their next rewrite
    /// wants them); blocks written whole go there only into spare room
    /// (`RecordCache::insert_written`), and the rest leave memory.
    pub(crate) fn forget_behind(&mut self) {
        for (key, block) in std::mem::take(&mut self.behind) {
            self.keep_written(key, block);
        }
        self.behind_cached.clear();
        self.behind_order.clear();
        self.behind_bytes = 0;
    }

    /// The root volume's header, to change in memory.
    pub fn header_mut(&mut self) -> &mut HammerVolumeOndisk {
        &mut self.vols[0].as_mut().expect("checked at open").ondisk
    }

    pub fn dirty_buffers(&self) -> usize {
        self.dirty.len()
    }

    /// Dirty buffers that will need UNDO records at the next flush.
    pub fn dirty_meta_buffers(&self) -> usize {
        self.fl.meta.len()
    }

    /// Writes every dirty buffer to its device and waits until it is
    /// durable. Buffers move to the clean cache.
    pub fn write_dirty(&mut self) -> Result<()> {
        self.check_writable()?;
        let keys: Vec<(u32, u64)> = self.dirty.keys().copied().collect();
        let mut touched = std::collections::BTreeSet::new();
        self.settle_behind(&mut touched)?;
        self.write_runs(&keys, &mut touched)?;
        for ((vol_no, phys), buf) in std::mem::take(&mut self.dirty) {
            self.cache.insert(vol_no, phys, buf);
        }
        for vol_no in touched {
            let v = self.volume(vol_no).expect("written above");
            v.dev.sync().map_err(|e| Error::io(&v.name, e))?;
        }
        self.fl.orig.clear();
        self.fl.meta.clear();
        self.forget_behind();
        Ok(())
    }

    /// Writes the in-memory header of volume `vol_no` (its 1928 bytes at
    /// offset 0) and waits until it is durable.
    pub fn write_header(&mut self, vol_no: u32) -> Result<()> {
        self.check_writable()?;
        let v = self.volume_at(vol_no, 0)?;
        v.dev
            .write_at(v.ondisk.as_bytes(), 0)
            .map_err(|e| Error::io(&v.name, e))?;
        v.dev.sync().map_err(|e| Error::io(&v.name, e))?;
        if vol_no == 0 {
            self.set_durable_header();
        }
        Ok(())
    }
}
