//! The flusher: turns the dirty buffers of one transaction into a durable,
//! crash-atomic change, as DragonFly's `hammer_flusher_finalize` does.
//!
//! Order of a flush, and why:
//! 1. Data buffers (zones 10/11, fresh space) are written: nothing on disk
//!    points at them yet, so they need no UNDO.
//! 2. For every metadata byte about to change (B-tree nodes, meta records,
//!    freemap, the volume header's blockmaps and counters) an UNDO record
//!    with the *old* bytes is appended to the UNDO FIFO. Barrier.
//! 3. The root header is written with the FIFO's `next_offset` past these
//!    records (its `first_offset` still at their start) and the new
//!    `vol0_next_tid` — which has no UNDO, so a TID is never handed out twice
//!    even if this flush is rolled back. Barrier.
//! 4. The metadata buffers are written in place. Barrier.
//! 5. The header is written again with `first_offset = next_offset`: only
//!    now is the flush final. A crash anywhere before makes recovery undo
//!    it completely, so sync returns only after this step.

use crate::cache::{Buffer, BUFSIZE};
use crate::error::{Error, Result};
use crate::volume::VolumeSet;
use hammer_ondisk::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use zerocopy::IntoBytes;

/// What the flusher tracks between flushes.
#[derive(Default)]
pub struct FlushState {
    /// Each dirty buffer's contents before this flush cycle changed it;
    /// `None` for buffers of fresh space (no UNDO needed).
    pub(crate) orig: HashMap<(u32, u64), Option<Buffer>>,
    /// Dirty buffers holding metadata (written after the FIFO, with UNDO).
    pub(crate) meta: HashSet<(u32, u64)>,
    /// The root header as it is on disk.
    pub(crate) header_durable: Option<HammerVolumeOndisk>,
    /// Sequence number of the next FIFO record, once known.
    pub(crate) next_seq: Option<u32>,
    /// Big-blocks emptied by the current flush cycle, released to the free
    /// pool once that flush is final.
    pub(crate) pending_release: Vec<u64>,
    /// FIFO offset of the first REDO record logged since the last flush.
    pub(crate) redo_start: Option<u64>,
    /// REDO work found by recovery, for the filesystem layer to replay.
    pub(crate) pending_redo: Vec<RedoRecord>,
    /// Counters, for tests and statistics.
    pub flushes: u64,
    pub undo_bytes: u64,
}

/// Header bytes a flush never logs UNDO for: `vol0_next_tid` (a rolled-back
/// TID must not be reused) and the UNDO blockmap entry itself (recovery
/// rewrites it).
const HEADER_NO_UNDO: [(usize, usize); 2] = [(0xF8, 0x100), (0x180, 0x1A8)];

/// Ranges where `new` differs from `old`, merging runs closer than `gap`.
fn diff_ranges(old: &[u8], new: &[u8], gap: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    let n = old.len().min(new.len());
    while i < n {
        if old[i] == new[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && old[i] != new[i] {
            i += 1;
        }
        match out.last_mut() {
            Some(last) if start - last.1 <= gap => last.1 = i,
            _ => out.push((start, i)),
        }
    }
    out
}

/// `r` minus the ranges in `holes` (sorted, disjoint).
fn subtract_ranges(r: (usize, usize), holes: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut cur = r.0;
    for &(hs, he) in holes {
        if he <= cur || hs >= r.1 {
            continue;
        }
        if hs > cur {
            out.push((cur, hs));
        }
        cur = cur.max(he);
    }
    if cur < r.1 {
        out.push((cur, r.1));
    }
    out
}

/// Builds UNDO/PAD records into the FIFO, 512-byte sector by sector.
struct FifoWriter {
    /// zone-3 offset of the next byte to write.
    pos: u64,
    start: u64,
    limit: u64,
    seq: u32,
    /// Buffers of the FIFO being written, by zone-3 buffer offset.
    bufs: BTreeMap<u64, Box<[u8; BUFSIZE]>>,
    kind: CrcKind,
}

impl FifoWriter {
    fn buf(&mut self, set: &VolumeSet, off: u64) -> Result<&mut [u8; BUFSIZE]> {
        let b = off & !HAMMER_BUFMASK;
        if !self.bufs.contains_key(&b) {
            let mut fresh = Box::new([0u8; BUFSIZE]);
            if off & HAMMER_BUFMASK != 0 {
                // Continuing inside a buffer: keep the records before us.
                fresh.copy_from_slice(&set.read(b, BUFSIZE)?);
            } else {
                // Entering a fresh buffer: pre-format every sector as a
                // DUMMY with a deliberately discontinuous sequence number,
                // so stale records can never look like a continuation.
                for s in 0..BUFSIZE / 512 {
                    let d = dummy_record(self.kind, self.seq ^ 0x4000_0000);
                    fresh[s * 512..(s + 1) * 512].copy_from_slice(&d);
                }
            }
            self.bufs.insert(b, fresh);
        }
        Ok(self.bufs.get_mut(&b).expect("inserted"))
    }

    fn used(&self) -> u64 {
        if self.pos >= self.start {
            self.pos - self.start
        } else {
            (self.limit - self.start) + (self.pos & HAMMER_OFF_LONG_MASK)
        }
    }

    fn advance(&mut self, n: u64) -> Result<()> {
        self.pos += n;
        if (self.pos & HAMMER_OFF_LONG_MASK) >= (self.limit & HAMMER_OFF_LONG_MASK) {
            self.pos = HAMMER_ZONE_UNDO;
        }
        // Never reach the start again: leave one sector so `first` stays
        // distinguishable from a full FIFO.
        if self.used() + 512 >= (self.limit & HAMMER_OFF_LONG_MASK) {
            return Err(Error::Invalid("flush does not fit in the UNDO FIFO".into()));
        }
        Ok(())
    }

    fn pad(&mut self, set: &VolumeSet, size: usize) -> Result<()> {
        let at = (self.pos & HAMMER_BUFMASK) as usize;
        let b = self.buf(set, self.pos)?;
        let head = HammerFifoHead {
            hdr_signature: HAMMER_HEAD_SIGNATURE,
            hdr_type: HAMMER_HEAD_TYPE_PAD,
            hdr_size: size as u32,
            hdr_seq: 0,
            hdr_crc: 0,
        };
        if size == 8 {
            b[at..at + 8].copy_from_slice(&head.as_bytes()[..8]);
        } else {
            b[at..at + size].fill(0);
            b[at..at + 16].copy_from_slice(head.as_bytes());
            let tail = HammerFifoTail {
                tail_signature: HAMMER_TAIL_SIGNATURE,
                tail_type: HAMMER_HEAD_TYPE_PAD,
                tail_size: size as u32,
            };
            b[at + size - 8..at + size].copy_from_slice(tail.as_bytes());
        }
        Ok(())
    }

    /// Makes room for a record with a `hdr`-byte fixed part (head
    /// included) and up to `want` payload bytes in the current sector, and
    /// returns how many payload bytes it may carry.
    fn chunk_len(&mut self, set: &VolumeSet, hdr: usize, want: usize) -> Result<usize> {
        loop {
            let left = (HAMMER_UNDO_ALIGN - (self.pos & HAMMER_UNDO_MASK)) as usize;
            let min = hdr + 8 + if want > 0 { 8 } else { 0 };
            if left < min {
                self.pad(set, left)?;
                self.advance(left as u64)?;
                continue;
            }
            let cap = (left - hdr - 8) & !7;
            let mut n = cap.min(want);
            let size = hdr + head_doalign(n as u64) as usize + 8;
            // A 16-byte gap could only hold a PAD of 16 bytes, which is not
            // a valid record (only 8 or at least 24): leave 24 instead, or
            // move the record to the next sector.
            if left - size == 16 {
                if n > 8 {
                    n -= 8;
                } else {
                    self.pad(set, left)?;
                    self.advance(left as u64)?;
                    continue;
                }
            }
            return Ok(n);
        }
    }

    /// Appends one record of type `hdr_type`: the fixed fields after the
    /// 16-byte head, then the payload, then the tail.
    fn emit(&mut self, set: &VolumeSet, hdr_type: u16, fixed: &[u8], payload: &[u8]) -> Result<()> {
        let hdr = 16 + fixed.len();
        let size = hdr + head_doalign(payload.len() as u64) as usize + 8;
        let mut rec = vec![0u8; size];
        let head = HammerFifoHead {
            hdr_signature: HAMMER_HEAD_SIGNATURE,
            hdr_type,
            hdr_size: size as u32,
            hdr_seq: self.seq,
            hdr_crc: 0,
        };
        rec[..16].copy_from_slice(head.as_bytes());
        rec[16..hdr].copy_from_slice(fixed);
        rec[hdr..hdr + payload.len()].copy_from_slice(payload);
        let tail = HammerFifoTail {
            tail_signature: HAMMER_TAIL_SIGNATURE,
            tail_type: hdr_type,
            tail_size: size as u32,
        };
        rec[size - 8..].copy_from_slice(tail.as_bytes());
        let crc = fifo_crc(self.kind, &rec);
        rec[12..16].copy_from_slice(&crc.to_le_bytes());
        let at = (self.pos & HAMMER_BUFMASK) as usize;
        let b = self.buf(set, self.pos)?;
        b[at..at + size].copy_from_slice(&rec);
        self.seq = self.seq.wrapping_add(1);
        self.advance(size as u64)?;
        // A provisional PAD to the end of the sector keeps the sector
        // parseable until the next record overwrites it.
        let rest = (HAMMER_UNDO_ALIGN - (self.pos & HAMMER_UNDO_MASK)) as usize;
        if rest != HAMMER_UNDO_ALIGN as usize {
            self.pad(set, rest)?;
        }
        Ok(())
    }

    /// Appends UNDO records restoring `old` at `undo_offset`, split at
    /// sector boundaries.
    fn undo(&mut self, set: &VolumeSet, undo_offset: u64, old: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < old.len() {
            let n = self.chunk_len(set, 32, old.len() - done)?;
            let mut fixed = [0u8; 16];
            fixed[..8].copy_from_slice(&(undo_offset + done as u64).to_le_bytes());
            fixed[8..12].copy_from_slice(&(n as i32).to_le_bytes());
            self.emit(set, HAMMER_HEAD_TYPE_UNDO, &fixed, &old[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Appends REDO records (split like UNDO ones; a record without
    /// payload, like SYNC or TRUNC, is one record).
    fn redo(&mut self, set: &VolumeSet, r: &RedoRecord) -> Result<()> {
        let mut done = 0;
        loop {
            let n = self.chunk_len(set, 56, r.data.len() - done)?;
            let fixed = HammerFifoRedo {
                head: HammerFifoHead::default(),
                redo_objid: r.objid,
                redo_offset: r.offset + done as u64,
                redo_data_bytes: n as i32,
                redo_flags: r.flags,
                redo_localization: r.localization,
                redo_reserved01: 0,
                redo_reserved02: r.mtime,
            };
            self.emit(
                set,
                HAMMER_HEAD_TYPE_REDO,
                &fixed.as_bytes()[16..],
                &r.data[done..done + n],
            )?;
            done += n;
            if done >= r.data.len() {
                return Ok(());
            }
        }
    }
}

/// One REDO record to log: a file write (`HAMMER_REDO_WRITE`, `offset` =
/// file offset, `data` = bytes), a truncation (`HAMMER_REDO_TRUNC`, `offset`
/// = new size) or a SYNC marker (`offset` = zone-3 offset where replay
/// starts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedoRecord {
    pub objid: i64,
    pub localization: u32,
    pub flags: u32,
    pub offset: u64,
    pub mtime: u64,
    pub data: Vec<u8>,
}

impl VolumeSet {
    /// Notes the first change of a buffer in this flush cycle.
    pub(crate) fn note_dirty(&mut self, key: (u32, u64), orig: Option<Buffer>, zone: u32) {
        self.fl.orig.entry(key).or_insert(orig);
        if matches!(
            zone,
            HAMMER_ZONE_RAW_BUFFER_INDEX
                | HAMMER_ZONE_FREEMAP_INDEX
                | HAMMER_ZONE_BTREE_INDEX
                | HAMMER_ZONE_META_INDEX
        ) {
            self.fl.meta.insert(key);
        }
    }

    fn header_durable(&self) -> HammerVolumeOndisk {
        self.fl.header_durable.unwrap_or(*self.header())
    }

    /// Makes every change since the last flush durable and final (see the
    /// module comment for the order). Returns the number of UNDO bytes
    /// logged.
    pub fn flush(&mut self) -> Result<u64> {
        if !self.writable {
            return Err(Error::Invalid("volume set is open read-only".into()));
        }
        let durable = self.header_durable();
        let header_changed = durable.as_bytes() != self.header().as_bytes();
        if self.dirty.is_empty() && self.behind.is_empty() && !header_changed {
            return Ok(0);
        }
        let mut fw = self.fifo_writer()?;

        // UNDO for the header's logged fields.
        let (old_h, new_h) = (
            durable.as_bytes().to_vec(),
            self.header().as_bytes().to_vec(),
        );
        for (s, e) in diff_ranges(&old_h, &new_h, 32) {
            for (a, b) in subtract_ranges((s, e), &HEADER_NO_UNDO) {
                fw.undo(self, HAMMER_ZONE_RAW_VOLUME + a as u64, &old_h[a..b])?;
            }
        }
        // UNDO for every changed metadata range. Nothing is written before
        // all of it fits in the FIFO, so a refusal leaves every change in
        // memory.
        let mut meta_keys: Vec<(u32, u64)> = Vec::new();
        for (key, buf) in &self.dirty {
            if !self.fl.meta.contains(key) {
                continue;
            }
            meta_keys.push(*key);
            let Some(Some(orig)) = self.fl.orig.get(key) else {
                continue;
            };
            let vol = self.volume_at(key.0, key.1)?;
            let zone2 = encode_raw_buffer(key.0, key.1 - vol.ondisk.vol_buf_beg as u64);
            for (s, e) in diff_ranges(&orig[..], &buf[..], 32) {
                fw.undo(self, zone2 + s as u64, &orig[s..e])?;
            }
        }
        let undo_bytes = fw.used();
        // 1. Data buffers and the FIFO, then a barrier.
        let mut touched = std::collections::BTreeSet::new();
        // Data already on its way (write-behind) first: a dirty buffer of
        // the same space, written below, must land after it.
        self.settle_behind(&mut touched)?;
        let data_keys: Vec<(u32, u64)> = self
            .dirty
            .keys()
            .filter(|k| !self.fl.meta.contains(k))
            .copied()
            .collect();
        self.write_runs(&data_keys, &mut touched)?;
        self.write_fifo_buffers(&fw, &mut touched)?;
        self.sync_vols(touched.iter().copied().chain([0]))?;

        // 2. Header with the FIFO extended over this flush's records.
        let end = fw.pos;
        {
            let h = self.header_mut();
            h.vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize].next_offset = end;
        }
        self.write_header(0)?;

        // 3. Metadata in place, then a barrier.
        let mut touched = std::collections::BTreeSet::new();
        meta_keys.sort_unstable();
        self.write_runs(&meta_keys, &mut touched)?;
        self.sync_vols(touched.into_iter())?;

        // 4. The flush becomes final.
        {
            let h = self.header_mut();
            h.vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize].first_offset = end;
        }
        self.write_header(0)?;

        for (key, buf) in std::mem::take(&mut self.dirty) {
            self.cache.insert(key.0, key.1, buf);
        }
        self.fl.orig.clear();
        self.fl.meta.clear();
        self.forget_behind();
        self.fl.header_durable = Some(*self.header());
        self.fl.next_seq = Some(fw.seq);
        self.fl.redo_start = None;
        self.fl.flushes += 1;
        self.fl.undo_bytes += undo_bytes;
        crate::stats::COMMITS.inc();
        crate::stats::UNDO_BYTES.add(undo_bytes);
        // The flush is final: big-blocks it emptied may be reused now. The
        // release itself is a change of the next flush.
        self.release_freed()?;
        Ok(undo_bytes)
    }

    /// A writer appending to the FIFO at its current end, continuing the
    /// sequence numbers.
    fn fifo_writer(&self) -> Result<FifoWriter> {
        let seq = match self.fl.next_seq {
            Some(s) => s,
            None => self.fifo_state()?.next_seq,
        };
        let undo_bm = self.header().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize];
        Ok(FifoWriter {
            pos: undo_bm.next_offset,
            start: undo_bm.first_offset,
            limit: undo_bm.alloc_offset,
            seq,
            bufs: BTreeMap::new(),
            kind: self.crc_kind(),
        })
    }

    /// Fast fsync: logs REDO records (and a SYNC record pointing at the
    /// first REDO since the last flush) into the FIFO and extends the
    /// durable header over them, without writing any metadata. A crash
    /// before the next flush is final replays them (recovery stage 2).
    pub fn log_redo(&mut self, records: &[RedoRecord]) -> Result<()> {
        if !self.writable {
            return Err(Error::Invalid("volume set is open read-only".into()));
        }
        let undo_bm = self.header().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize];
        let mut fw = self.fifo_writer()?;
        let start = *self.fl.redo_start.get_or_insert(undo_bm.next_offset);
        for r in records {
            fw.redo(self, r)?;
        }
        crate::stats::REDO_BYTES.add(records.iter().map(|r| r.data.len() as u64).sum());
        let sync = RedoRecord {
            objid: 0,
            localization: 0,
            flags: HAMMER_REDO_SYNC,
            offset: start,
            mtime: 0,
            data: Vec::new(),
        };
        fw.redo(self, &sync)?;
        let mut touched = std::collections::BTreeSet::new();
        self.write_fifo_buffers(&fw, &mut touched)?;
        self.sync_vols(touched.into_iter())?;
        // Only the FIFO's end moves on disk: the rest of the in-memory
        // header describes metadata that is not written yet.
        let mut durable = self.header_durable();
        durable.vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize].next_offset = fw.pos;
        let v = self.root();
        v.dev
            .write_at(durable.as_bytes(), 0)
            .map_err(|e| Error::io(&v.name, e))?;
        v.dev.sync().map_err(|e| Error::io(&v.name, e))?;
        self.fl.header_durable = Some(durable);
        self.header_mut().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize].next_offset = fw.pos;
        self.fl.next_seq = Some(fw.seq);
        Ok(())
    }

    /// REDO work recovery found (stage 2), to be replayed by the caller.
    pub fn take_pending_redo(&mut self) -> Vec<RedoRecord> {
        std::mem::take(&mut self.fl.pending_redo)
    }

    /// Writes the FIFO buffers a writer filled (no barrier), noting the
    /// volumes touched.
    fn write_fifo_buffers(
        &self,
        fw: &FifoWriter,
        touched: &mut std::collections::BTreeSet<u32>,
    ) -> Result<()> {
        for (zone3, b) in &fw.bufs {
            let z2 = self.to_zone2(*zone3)?;
            let (vol, phys) = self.zone2_to_phys(z2)?;
            let key = (vol.vol_no(), phys);
            self.dev_write(key, &b[..])?;
            touched.insert(key.0);
            // Keep the cache coherent with what went to disk.
            self.cache.invalidate(key.0, key.1);
        }
        Ok(())
    }

    /// Writes the dirty buffers `keys` (sorted), joining buffers that are
    /// adjacent on the same device into one write of up to 1 MiB.
    pub(crate) fn write_runs(
        &self,
        keys: &[(u32, u64)],
        touched: &mut std::collections::BTreeSet<u32>,
    ) -> Result<()> {
        const RUN: usize = 64;
        let mut i = 0;
        while i < keys.len() {
            let (vol, start) = keys[i];
            let mut j = i + 1;
            while j < keys.len()
                && j - i < RUN
                && keys[j] == (vol, start + ((j - i) * BUFSIZE) as u64)
            {
                j += 1;
            }
            let bufs: Vec<&[u8]> = keys[i..j].iter().map(|k| &self.dirty[k][..]).collect();
            let v = self.volume_at(vol, start)?;
            v.dev
                .write_vectored_at(&bufs, start)
                .map_err(|e| Error::io(&v.name, e))?;
            touched.insert(vol);
            i = j;
        }
        Ok(())
    }

    pub(crate) fn dev_write(&self, key: (u32, u64), bytes: &[u8]) -> Result<()> {
        let v = self.volume_at(key.0, key.1)?;
        v.dev
            .write_at(bytes, key.1)
            .map_err(|e| Error::io(&v.name, e))
    }

    fn sync_vols(&self, vols: impl Iterator<Item = u32>) -> Result<()> {
        let set: std::collections::BTreeSet<u32> = vols.collect();
        for vol_no in set {
            if let Some(v) = self.volume(vol_no) {
                v.dev.sync().map_err(|e| Error::io(&v.name, e))?;
            }
        }
        Ok(())
    }

    /// Puts a whole buffer in the dirty set without the writable check
    /// (recovery of a read-only open keeps its repairs in memory).
    pub(crate) fn overlay(&mut self, key: (u32, u64), buf: Buffer) {
        self.generation = self.generation.wrapping_add(1);
        self.dirty.insert(key, buf);
    }

    pub(crate) fn set_durable_header(&mut self) {
        self.fl.header_durable = Some(*self.header());
    }
}

/// Zero-filled buffer helper for tests.
pub fn zero_buffer() -> Buffer {
    Arc::new([0u8; BUFSIZE])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_merges_close_runs() {
        let a = [0u8; 100];
        let mut b = a;
        b[3] = 1;
        b[10] = 1;
        b[90] = 1;
        assert_eq!(diff_ranges(&a, &b, 32), vec![(3, 11), (90, 91)]);
        assert_eq!(diff_ranges(&a, &a, 32), vec![]);
    }

    #[test]
    fn subtract() {
        let holes = [(0xF8, 0x100), (0x180, 0x1A8)];
        assert_eq!(
            subtract_ranges((0xC8, 0x108), &holes),
            vec![(0xC8, 0xF8), (0x100, 0x108)]
        );
        assert_eq!(subtract_ranges((0x180, 0x1A8), &holes), vec![]);
        assert_eq!(
            subtract_ranges((0x170, 0x1B0), &holes),
            vec![(0x170, 0x180), (0x1A8, 0x1B0)]
        );
    }
}
