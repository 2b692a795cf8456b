//! Crash recovery, stage 1 (DragonFly's `hammer_recover_stage1`): finding
//! the end of the UNDO FIFO by sequence numbers and undoing an unfinished
//! flush. The active range starts at the UNDO blockmap's `first_offset`;
//! records continue while each carries the next sequence number, so the
//! header's own `next_offset` (which may be stale) is not trusted. UNDO
//! records are applied newest first, so where several logged the same
//! bytes the oldest image — the state before the flush — wins.
//!
//! A read-write open writes the repaired buffers, then a header whose FIFO
//! is empty; both steps are idempotent, so a crash during recovery just
//! recovers again. A read-only open keeps the repairs in memory and never
//! writes. Stage 2 (REDO replay) comes with the flusher's REDO support; a
//! flush we write never depends on it.

use crate::error::{Error, Result};
use crate::flush::RedoRecord;
use crate::volume::VolumeSet;
use hammer_ondisk::*;
use std::sync::Arc;
use zerocopy::{FromBytes, IntoBytes};

/// The UNDO FIFO as recovery sees it.
#[derive(Clone, Debug, Default)]
pub struct FifoState {
    /// zone-3 offsets of the active range: `first..end`.
    pub first: u64,
    pub end: u64,
    /// Sequence number the next record must carry.
    pub next_seq: u32,
    /// The records of the active range, oldest first: (offset, head).
    pub records: Vec<(u64, HammerFifoHead)>,
}

/// What recovery did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub undo_records: usize,
    pub undo_bytes: u64,
    pub redo_records: usize,
    /// REDO writes and truncations handed to the filesystem layer.
    pub redo_replayed: usize,
}

impl VolumeSet {
    fn fifo_size(&self) -> u64 {
        self.header().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize].alloc_offset
            & HAMMER_OFF_LONG_MASK
    }

    fn fifo_wrap(&self, off: u64) -> u64 {
        let size = self.fifo_size();
        if size == 0 {
            return HAMMER_ZONE_UNDO;
        }
        HAMMER_ZONE_UNDO | ((off & HAMMER_OFF_LONG_MASK) % size)
    }

    /// The record at zone-3 `off`, validated, with its bytes.
    fn fifo_record(&self, off: u64) -> Option<(HammerFifoHead, Vec<u8>)> {
        let rest = (HAMMER_BUFSIZE - (off & HAMMER_BUFMASK)) as usize;
        let buf = self.read(off, rest).ok()?;
        let (head, size) = fifo_validate(self.version(), &buf).ok()?;
        Some((head, buf[..size].to_vec()))
    }

    /// Finds the active range of the FIFO and the next sequence number.
    pub fn fifo_state(&self) -> Result<FifoState> {
        let bm = self.header().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize];
        let size = self.fifo_size();
        let first = bm.first_offset;
        if size == 0 || self.version() < 4 {
            return Ok(FifoState {
                first,
                end: first,
                ..Default::default()
            });
        }
        if zone_of(first) != HAMMER_ZONE_UNDO_INDEX
            || (first & HAMMER_OFF_LONG_MASK) >= size
            || first & 7 != 0
        {
            return Err(Error::corrupt(
                &self.root().name,
                format!("UNDO first_offset {first:016x} outside the FIFO"),
                0x180 + 8,
            ));
        }
        // The sequence number before `first`: the last sequenced record of
        // the sector that ends at or contains `first`.
        let sector = if first & HAMMER_UNDO_MASK == 0 {
            self.fifo_wrap((first & HAMMER_OFF_LONG_MASK) + size - HAMMER_UNDO_ALIGN)
        } else {
            first & !HAMMER_UNDO_MASK
        };
        let stop = if first & HAMMER_UNDO_MASK == 0 {
            sector + HAMMER_UNDO_ALIGN
        } else {
            first
        };
        let mut prev_seq: Option<u32> = None;
        let mut p = sector;
        while p < stop {
            let Some((head, rec)) = self.fifo_record(p) else {
                break;
            };
            if head.hdr_type != HAMMER_HEAD_TYPE_PAD {
                prev_seq = Some(head.hdr_seq);
            }
            p += rec.len() as u64;
        }
        let mut st = FifoState {
            first,
            end: first,
            ..Default::default()
        };
        let Some(prev) = prev_seq else {
            // No anchor: nothing can be proven to follow, so treat the
            // FIFO as clean and continue numbering after the first record.
            st.next_seq = self
                .fifo_record(first)
                .map(|(h, _)| h.hdr_seq.wrapping_add(1))
                .unwrap_or(0);
            return Ok(st);
        };
        let mut expected = prev.wrapping_add(1);
        let mut p = first;
        let mut walked = 0u64;
        while walked < size {
            let Some((head, rec)) = self.fifo_record(p) else {
                break;
            };
            let n = rec.len() as u64;
            if head.hdr_type != HAMMER_HEAD_TYPE_PAD {
                if head.hdr_seq != expected {
                    break;
                }
                st.records.push((p, head));
                expected = expected.wrapping_add(1);
                st.end = self.fifo_wrap((p & HAMMER_OFF_LONG_MASK) + n);
            }
            walked += n;
            p = self.fifo_wrap((p & HAMMER_OFF_LONG_MASK) + n);
        }
        st.next_seq = expected;
        Ok(st)
    }

    /// Runs stage-1 recovery (see the module comment).
    pub fn recover(&mut self) -> Result<RecoveryReport> {
        let st = self.fifo_state()?;
        self.fl.next_seq = Some(st.next_seq);
        let mut report = RecoveryReport::default();
        let bm = self.header().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize];
        if st.records.is_empty() {
            if bm.next_offset != bm.first_offset && self.writable {
                // Whatever lies past `first` did not pass validation.
                self.header_mut().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize].next_offset =
                    bm.first_offset;
                self.write_header(0)?;
            }
            self.set_durable_header();
            return Ok(report);
        }
        let mut redo_ext: Option<u64> = None;
        for &(off, head) in st.records.iter().rev() {
            match head.hdr_type {
                HAMMER_HEAD_TYPE_UNDO => {
                    let (_, rec) = self.fifo_record(off).ok_or_else(|| {
                        Error::corrupt(&self.root().name, "UNDO record vanished", off)
                    })?;
                    let u = HammerFifoUndo::read_from_prefix(&rec)
                        .map_err(|_| Error::corrupt(&self.root().name, "short UNDO record", off))?
                        .0;
                    let n = u.undo_data_bytes;
                    if n < 0 || 32 + n as usize + 8 > rec.len() {
                        return Err(Error::corrupt(
                            &self.root().name,
                            format!("UNDO record with {n} bytes"),
                            off,
                        ));
                    }
                    self.apply_undo(u.undo_offset, &rec[32..32 + n as usize], off)?;
                    report.undo_records += 1;
                    report.undo_bytes += n as u64;
                }
                HAMMER_HEAD_TYPE_REDO => {
                    report.redo_records += 1;
                    if redo_ext.is_none() {
                        if let Some(r) = self.redo_record(off) {
                            if r.flags == HAMMER_REDO_SYNC {
                                redo_ext = Some(r.offset);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        // Stage 2 (read-write only): the REDO records from the newest SYNC's
        // start whose data no later flush committed are replayed by the
        // filesystem layer, which then flushes; until that flush the active
        // range stays, so a crash during replay recovers again.
        let replay = match (redo_ext, self.writable) {
            (Some(ext), true) => Some(self.redo_replay_list(&st, ext)?),
            _ => None,
        };
        {
            let end = st.end;
            let h = self.header_mut();
            let u = &mut h.vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize];
            if replay.is_none() {
                u.first_offset = end;
            }
            u.next_offset = end;
        }
        if let Some(list) = replay {
            report.redo_replayed = list.len();
            self.fl.pending_redo = list;
        }
        if self.writable {
            // Restored buffers first, then the header that empties the FIFO.
            self.write_dirty()?;
            for vol_no in self.iter().map(|v| v.vol_no()).collect::<Vec<_>>() {
                if vol_no != 0 {
                    self.write_header(vol_no)?;
                }
            }
            self.write_header(0)?;
        }
        self.set_durable_header();
        Ok(report)
    }

    /// The REDO record at `off`, decoded.
    fn redo_record(&self, off: u64) -> Option<RedoRecord> {
        let (head, rec) = self.fifo_record(off)?;
        if head.hdr_type != HAMMER_HEAD_TYPE_REDO {
            return None;
        }
        let r = HammerFifoRedo::read_from_prefix(&rec).ok()?.0;
        let n = usize::try_from(r.redo_data_bytes).ok()?;
        if 56 + n + 8 > rec.len() {
            return None;
        }
        Some(RedoRecord {
            objid: r.redo_objid,
            localization: r.redo_localization,
            flags: r.redo_flags,
            offset: r.redo_offset,
            mtime: r.redo_reserved02,
            data: rec[56..56 + n].to_vec(),
        })
    }

    /// Distance from `a` to `b` going forward around the FIFO.
    fn fifo_dist(&self, a: u64, b: u64) -> u64 {
        let size = self.fifo_size().max(1);
        ((b & HAMMER_OFF_LONG_MASK) + size - (a & HAMMER_OFF_LONG_MASK)) % size
    }

    /// Which REDO writes/truncations to replay, oldest first (format notes
    /// §7.3 stage 2): from `ext` to the end of the active range; TERM
    /// records met before `first_offset` cancel the matching earlier
    /// writes, whose data a flush already committed.
    fn redo_replay_list(&self, st: &FifoState, ext: u64) -> Result<Vec<RedoRecord>> {
        let total = self.fifo_dist(st.first, st.end);
        // Records between ext and first (outside the nominal range).
        let mut before: Vec<u64> = Vec::new();
        let ext_in_range = self.fifo_dist(st.first, ext) < total || ext == st.first;
        if zone_of(ext) == HAMMER_ZONE_UNDO_INDEX && !ext_in_range {
            let mut p = ext;
            let mut walked = 0u64;
            let mut expected: Option<u32> = None;
            while p != st.first && walked < self.fifo_size() {
                let Some((head, rec)) = self.fifo_record(p) else {
                    return Err(Error::corrupt(
                        &self.root().name,
                        "REDO range before the UNDO range is unreadable",
                        p,
                    ));
                };
                if head.hdr_type != HAMMER_HEAD_TYPE_PAD {
                    if let Some(e) = expected {
                        if head.hdr_seq != e {
                            return Err(Error::corrupt(
                                &self.root().name,
                                "REDO range has a sequence gap",
                                p,
                            ));
                        }
                    }
                    expected = Some(head.hdr_seq.wrapping_add(1));
                    if head.hdr_type == HAMMER_HEAD_TYPE_REDO {
                        before.push(p);
                    }
                }
                walked += rec.len() as u64;
                p = self.fifo_wrap((p & HAMMER_OFF_LONG_MASK) + rec.len() as u64);
            }
        }
        type Key = (i64, u32, u32, u64);
        let key = |r: &RedoRecord| -> Key {
            let kind = if r.flags & (HAMMER_REDO_TRUNC | HAMMER_REDO_TERM_TRUNC) != 0 {
                HAMMER_REDO_TRUNC
            } else {
                HAMMER_REDO_WRITE
            };
            let off = if kind == HAMMER_REDO_TRUNC {
                0
            } else {
                r.offset
            };
            (r.objid, r.localization, kind, off)
        };
        let mut terms: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
        let decoded_before: Vec<RedoRecord> =
            before.iter().filter_map(|&p| self.redo_record(p)).collect();
        for r in &decoded_before {
            if r.flags & (HAMMER_REDO_TERM_WRITE | HAMMER_REDO_TERM_TRUNC) != 0 {
                *terms.entry(key(r)).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        let in_range = st.records.iter().filter(|(off, h)| {
            let from = if ext_in_range {
                self.fifo_dist(st.first, ext)
            } else {
                0
            };
            h.hdr_type == HAMMER_HEAD_TYPE_REDO && self.fifo_dist(st.first, *off) >= from
        });
        let mut consider = |r: RedoRecord, counting_terms: bool, out: &mut Vec<RedoRecord>| {
            if r.flags & (HAMMER_REDO_TERM_WRITE | HAMMER_REDO_TERM_TRUNC) != 0 {
                if counting_terms {
                    if let Some(n) = terms.get_mut(&key(&r)) {
                        *n = n.saturating_sub(1);
                    }
                }
                return;
            }
            if r.flags & (HAMMER_REDO_WRITE | HAMMER_REDO_TRUNC) == 0 {
                return;
            }
            if terms.get(&key(&r)).copied().unwrap_or(0) > 0 {
                return;
            }
            out.push(r);
        };
        for r in decoded_before {
            consider(r, true, &mut out);
        }
        for &(off, _) in in_range {
            if let Some(r) = self.redo_record(off) {
                consider(r, false, &mut out);
            }
        }
        Ok(out)
    }

    fn apply_undo(&mut self, undo_offset: u64, old: &[u8], rec_off: u64) -> Result<()> {
        let bad = |what: &str| {
            Error::corrupt(
                "UNDO FIFO",
                format!("{what} (undo_offset {undo_offset:016x})"),
                rec_off,
            )
        };
        match zone_of(undo_offset) {
            HAMMER_ZONE_RAW_VOLUME_INDEX => {
                let vol_no = vol_of(undo_offset);
                let at = short_of(undo_offset) as usize;
                let v = self
                    .vols
                    .get_mut(vol_no as usize)
                    .and_then(|v| v.as_mut())
                    .ok_or_else(|| bad("no such volume"))?;
                let hdr = v.ondisk.as_mut_bytes();
                let end = at.checked_add(old.len()).ok_or_else(|| bad("overflow"))?;
                if end > HAMMER_BUFSIZE as usize {
                    return Err(bad("beyond the volume header buffer"));
                }
                // Bytes past the 1928-byte header are zero padding we do not keep.
                if at < hdr.len() {
                    let m = end.min(hdr.len());
                    hdr[at..m].copy_from_slice(&old[..m - at]);
                }
                Ok(())
            }
            HAMMER_ZONE_RAW_BUFFER_INDEX => {
                let in_buf = (undo_offset & HAMMER_BUFMASK) as usize;
                if in_buf + old.len() > HAMMER_BUFSIZE as usize {
                    return Err(bad("crosses a 16 KiB buffer"));
                }
                let aligned = undo_offset & !HAMMER_BUFMASK;
                let (vol_no, phys) = self
                    .device_key(aligned)
                    .map_err(|_| bad("outside the volumes"))?;
                let mut buf = self.buffer(aligned)?;
                Arc::make_mut(&mut buf)[in_buf..in_buf + old.len()].copy_from_slice(old);
                self.overlay((vol_no, phys), buf);
                Ok(())
            }
            _ => Err(bad("not a volume or buffer address")),
        }
    }
}
