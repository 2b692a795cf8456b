//! Pruning: physically removing the history no retained point of view can
//! see any more — DragonFly's `HAMMERIOC_PRUNE` (`hammer_prune.c`).
//!
//! The caller describes what to keep as prune elements, each a TID range
//! `[beg_tid, end_tid]` cut into steps of `mod_tid` (0: one step, the whole
//! range). The retained points of view are the step boundaries
//! `beg + k·mod` and `end`; for `hammer prune` they are the snapshot TIDs,
//! for `prune-everything` only the range ends. A deleted record (one with
//! `delete_tid`) is seen from a boundary `b` when `create_tid <= b <
//! delete_tid` (a snapshot's TID is the TID of the flush it names, so it
//! sees that flush's records). For each deleted record whose `delete_tid`
//! falls in an element (`beg < delete_tid <= end`), the boundary just below
//! its `delete_tid` decides: created after it, no boundary sees the record
//! and it is removed with its data. DragonFly's kernel tests "born and
//! deleted in the same step" (`create_tid >= beg`), which is the same rule
//! for its snapshot TIDs (they precede the flush they follow); like it we
//! leave surviving records' TIDs alone (its realignment code is compiled
//! out). Records still alive (`delete_tid == 0`) and records deleted
//! outside every element are never touched, so the current state and the
//! history newer than the prune's top are safe by construction.
//!
//! On the way it reaps orphans, as the kernel's prune does: a live inode
//! with no links (its last name went while it was open, and the daemon
//! ended before the last close) is removed with its records, unless it is
//! still open here. Slaves are left alone (mirroring owns their contents).
//!
//! The work runs in ordinary transactions: the tree is synced first (every
//! record then has a TID below the prune's), and the removal is flushed in
//! as many flushes as the UNDO FIFO needs, each final on its own — a crash
//! mid-prune leaves a consistent volume with part of the history pruned.

use super::Fs;
use crate::btree::BTree;
use crate::error::Result;
use hammer_ondisk::*;
use std::ops::ControlFlow;

/// One range of history and the spacing of the points of view kept in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneElm {
    pub beg_tid: u64,
    pub end_tid: u64,
    pub mod_tid: u64,
}

/// What a prune did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Records of the PFS looked at.
    pub scanned: u64,
    /// Records removed.
    pub pruned: u64,
    /// Of those, directory entries.
    pub dirents: u64,
    /// Data bytes freed.
    pub bytes: u64,
    /// Objects found with no link left (a crash between an unlink and the
    /// last close leaves them) and removed.
    pub orphans: u64,
}

/// Where a prune runs and for how long.
#[derive(Clone, Copy, Debug, Default)]
pub struct PruneLimits {
    /// Resume a prune interrupted here (a cycle file): only records below
    /// this key are visited. Its localization is taken within the PFS.
    pub below: Option<HammerBaseElm>,
    /// Stop once this moment has passed (`hammer -t`).
    pub deadline: Option<std::time::Instant>,
}

/// How a prune ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct PruneOutcome {
    pub stats: PruneStats,
    /// The key it stopped at when the deadline passed (records at and
    /// above it are done), for the cycle file.
    pub interrupted_at: Option<HammerBaseElm>,
}

/// What happens to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Remove,
}

/// Decides one record's fate against the elements (any order, ranges not
/// overlapping: the first containing element decides).
pub fn judge(elms: &[PruneElm], create_tid: u64, delete_tid: u64) -> Verdict {
    if delete_tid == 0 {
        return Verdict::Keep;
    }
    let Some(el) = elms
        .iter()
        .find(|el| el.beg_tid < delete_tid && delete_tid <= el.end_tid)
    else {
        return Verdict::Keep;
    };
    let span = el.end_tid - el.beg_tid;
    let step = if el.mod_tid == 0 || el.mod_tid > span {
        span
    } else {
        el.mod_tid
    };
    // The boundary just below delete_tid (delete_tid > beg, so this is
    // at least beg).
    let below = el.beg_tid + (delete_tid - 1 - el.beg_tid) / step * step;
    if create_tid > below {
        Verdict::Remove
    } else {
        Verdict::Keep
    }
}

impl Fs {
    /// Removes the objects whose live inode has no link and that nobody
    /// here holds open (`inodes`: live inode leaves of this PFS).
    fn reap_orphans(&mut self, inodes: &[HammerBtreeLeafElm]) -> Result<u64> {
        let mut n = 0;
        for e in inodes {
            let nlinks_off = std::mem::offset_of!(HammerInodeData, nlinks) as u64;
            let b = self.set.read(e.data_offset + nlinks_off, 8)?;
            let nlinks = u64::from_le_bytes(b[..8].try_into().unwrap_or([1; 8]));
            let ino = e.base.obj_id;
            if nlinks != 0
                || ino == HAMMER_OBJID_ROOT
                || self.open_refs.contains_key(&(self.pfs_lo, ino))
            {
                continue;
            }
            self.dirty(ino)?;
            if let Some(d) = self.inodes.get_mut(&(self.pfs_lo, ino)) {
                d.destroy = true;
                n += 1;
            }
            self.maybe_sync()?;
        }
        if n > 0 {
            self.sync()?;
        }
        Ok(n)
    }

    /// Prunes this PFS's history as `elms` say; `progress(done, total)` is
    /// called as records are processed.
    pub fn prune(
        &mut self,
        elms: &[PruneElm],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<PruneStats> {
        Ok(self
            .prune_limited(elms, &PruneLimits::default(), progress)?
            .stats)
    }

    /// [`Fs::prune`] within limits. Like the kernel it works from the top
    /// of the key space down, so an interrupted prune is resumed by
    /// visiting only the keys below where it stopped.
    pub fn prune_limited(
        &mut self,
        elms: &[PruneElm],
        limits: &PruneLimits,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<PruneOutcome> {
        self.sync()?;
        let mut stats = PruneStats::default();
        let (from, end) = self.pfs_bounds();
        let to = limits.below.map_or(end, |k| self.in_pfs(k));
        let mut work = Vec::new();
        let mut inodes = Vec::new();
        self.ro_tree(|t| {
            t.scan(&from, &to, &mut |e| {
                stats.scanned += 1;
                let v = judge(elms, e.base.create_tid, e.base.delete_tid);
                if v != Verdict::Keep {
                    work.push((*e, v));
                }
                if e.base.rec_type == HAMMER_RECTYPE_INODE
                    && e.base.delete_tid == 0
                    && e.data_len as usize == std::mem::size_of::<HammerInodeData>()
                {
                    inodes.push(*e);
                }
                ControlFlow::Continue(())
            })
        })?;
        if !self.pfs_is_slave(self.pfs_id())? {
            stats.orphans = self.reap_orphans(&inodes)?;
        }
        let total = work.len() as u64;
        let mut interrupted_at = None;
        // The lowest key done so far: a resumed prune visits keys below it.
        let mut done_to = to;
        for (i, (e, v)) in work.into_iter().rev().enumerate() {
            // At least one record per call: stepping callers always progress.
            if i > 0 && matches!(limits.deadline, Some(d) if std::time::Instant::now() >= d) {
                interrupted_at = Some(done_to);
                break;
            }
            done_to = e.base;
            // Changes belong to a transaction so the flush below runs.
            let _ = self.tid();
            let root = self.root();
            match v {
                Verdict::Keep => {}
                Verdict::Remove => {
                    BTree::new(&mut self.set, root).remove(&e.base)?;
                    if e.data_len > 0 {
                        self.set.free(e.data_offset, e.data_len as u64)?;
                        stats.bytes += e.data_len as u64;
                    }
                    stats.pruned += 1;
                    if e.base.rec_type == HAMMER_RECTYPE_DIRENTRY {
                        stats.dirents += 1;
                    }
                }
            }
            self.maybe_sync()?;
            if i % 4096 == 0 {
                progress(i as u64, total);
            }
        }
        self.sync()?;
        // History is gone: the TID→time index may name removed TIDs.
        self.time_index = None;
        progress(total, total);
        Ok(PruneOutcome {
            stats,
            interrupted_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        // Snapshots at 100 and 200, top of the prune at 300.
        let elms = [
            PruneElm {
                beg_tid: 200,
                end_tid: 300,
                mod_tid: 100,
            },
            PruneElm {
                beg_tid: 100,
                end_tid: 200,
                mod_tid: 100,
            },
            PruneElm {
                beg_tid: 1,
                end_tid: 100,
                mod_tid: 99,
            },
        ];
        assert_eq!(judge(&elms, 50, 0), Verdict::Keep);
        // Lived and died between two snapshots: nobody sees it.
        assert_eq!(judge(&elms, 120, 150), Verdict::Remove);
        // Created at a snapshot's TID: that snapshot sees it.
        assert_eq!(judge(&elms, 100, 150), Verdict::Keep);
        assert_eq!(judge(&elms, 50, 150), Verdict::Keep);
        // Already on a boundary.
        assert_eq!(judge(&elms, 50, 200), Verdict::Keep);
        // Deleted exactly at a snapshot: judged by the range below it.
        assert_eq!(judge(&elms, 150, 200), Verdict::Remove);
        // Deleted after the prune's top: untouched.
        assert_eq!(judge(&elms, 250, 301), Verdict::Keep);
        // Finer steps keep more points of view.
        let fine = [PruneElm {
            beg_tid: 0,
            end_tid: 100,
            mod_tid: 10,
        }];
        assert_eq!(judge(&fine, 21, 29), Verdict::Remove);
        assert_eq!(judge(&fine, 19, 29), Verdict::Keep);
    }
}
