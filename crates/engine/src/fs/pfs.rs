//! Pseudo-filesystems: the PFS descriptors and the life of a PFS — what
//! DragonFly's `HAMMERIOC_{GET,SET,UPG,DGD,RMR}_PSEUDOFS` ioctls do
//! (`hammer_pfs.c`).
//!
//! A PFS is a key range: every record of PFS `n` has localization
//! `n << 16 | type`, and its root directory is object 1 there. Its
//! descriptor (`hammer_pseudofs_data`, 292 bytes) is a record of PFS #0's
//! root in the misc space (`rec_type` PFS, key `n << 16`). A PFS exists
//! while that record exists without the DELETED flag.
//!
//! Rules kept from the kernel, because the tools and mirroring rely on
//! them:
//! * A master reports the newest committed TID as its `sync_end_tid` (the
//!   stored value is whatever the last SET wrote).
//! * SET replaces the record (the old version stays as history, as the
//!   kernel's record backend keeps it) and, for a master without a root
//!   directory, creates one: mode 0755, one link, no entry anywhere
//!   pointing at it. A slave gets its root with the first mirror-write.
//! * Destroy removes every record of the PFS outright (inodes, entries,
//!   data, snapshots, config — no history) and flags the descriptor
//!   DELETED; the id can then be reused. Unlike the kernel (records
//!   first, flag last) the flag goes first, in a flush of its own: a crash
//!   while the records go (that takes several flushes) leaves a PFS that
//!   is already gone rather than a half-emptied one still in use, and a
//!   new PFS given the id first clears whatever is left in its range.
//! * Upgrading a slave rolls it back to its `sync_end_tid` (records made
//!   later are destroyed, deletions made later undone); downgrading a
//!   master raises `sync_end_tid` to the newest committed TID.

use super::Fs;
use crate::btree::BTree;
use crate::error::{Error, FsError, Result};
use hammer_ondisk::*;
use std::ops::ControlFlow;
use zerocopy::{FromBytes, IntoBytes};

/// Highest PFS id (`HAMMER_MAX_PFS - 1`).
pub const PFS_ID_MAX: u32 = 0xffff;

impl Fs {
    /// The stored descriptor of an existing PFS (ENOENT otherwise).
    fn live_pfs_record(&self, id: u32) -> Result<HammerPseudofsData> {
        self.pfs_record(id)?
            .map(|(_, d)| d)
            .filter(|d| d.mirror_flags & HAMMER_PFSD_DELETED == 0)
            .ok_or(Error::Fs(FsError::NotFound))
    }

    /// The descriptor record of PFS `id` visible now (DELETED or not).
    fn pfs_record(&self, id: u32) -> Result<Option<(HammerBtreeLeafElm, HammerPseudofsData)>> {
        if id > PFS_ID_MAX {
            return Ok(None);
        }
        let Some(e) = self.tree_lookup(
            HAMMER_LOCALIZE_MISC,
            HAMMER_OBJID_ROOT,
            HAMMER_RECTYPE_PFS,
            pfs_to_lo(id) as i64,
            HAMMER_MAX_TID,
        )?
        else {
            return Ok(None);
        };
        Ok(Some((e, self.decode_pfsd(&e)?)))
    }

    fn decode_pfsd(&self, e: &HammerBtreeLeafElm) -> Result<HammerPseudofsData> {
        let bytes = self.record_data(e)?;
        // Records shorter than the structure (none known) give what they
        // hold; pre-packing kernels wrote 296 bytes, the tail is padding.
        let mut buf = [0u8; HAMMER_PFSD_SIZE];
        let n = bytes.len().min(HAMMER_PFSD_SIZE);
        buf[..n].copy_from_slice(&bytes[..n]);
        HammerPseudofsData::read_from_bytes(&buf[..])
            .map_err(|_| Error::corrupt("PFS record", "bad size", e.data_offset))
    }

    /// What GET_PSEUDOFS answers: the descriptor of a PFS that exists,
    /// with a master's `sync_end_tid` replaced by the newest committed TID.
    pub fn pfs_get(&self, id: u32) -> Result<Option<HammerPseudofsData>> {
        Ok(self.pfs_record(id)?.and_then(|(_, d)| self.as_reported(d)))
    }

    fn as_reported(&self, mut d: HammerPseudofsData) -> Option<HammerPseudofsData> {
        if d.mirror_flags & HAMMER_PFSD_DELETED != 0 {
            return None;
        }
        if d.mirror_flags & HAMMER_PFSD_SLAVE == 0 {
            d.sync_end_tid = self.last_tid();
        }
        Some(d)
    }

    /// Every existing PFS, by id, as [`Fs::pfs_get`] reports it.
    pub fn pfs_list(&self) -> Result<Vec<(u32, HammerPseudofsData)>> {
        let from = HammerBaseElm {
            localization: HAMMER_LOCALIZE_MISC,
            obj_id: HAMMER_OBJID_ROOT,
            rec_type: HAMMER_RECTYPE_PFS,
            key: 0,
            create_tid: 1,
            ..Default::default()
        };
        let to = HammerBaseElm {
            rec_type: HAMMER_RECTYPE_PFS + 1,
            ..from
        };
        let mut out = Vec::new();
        for e in self.scan_visible(&from, &to, HAMMER_MAX_TID)? {
            let id = (e.base.key as u64 >> 16) as u32;
            if e.base.key & 0xffff != 0 || id > PFS_ID_MAX {
                continue;
            }
            if let Some(d) = self.as_reported(self.decode_pfsd(&e)?) {
                out.push((id, d));
            }
        }
        Ok(out)
    }

    /// Whether PFS `id` exists and is a slave.
    pub fn pfs_is_slave(&self, id: u32) -> Result<bool> {
        Ok(self
            .pfs_get(id)?
            .is_some_and(|d| d.mirror_flags & HAMMER_PFSD_SLAVE != 0))
    }

    /// The lowest id no existing PFS has (what `pfs-master` and
    /// `pfs-slave` take).
    pub fn pfs_free_id(&self) -> Result<Option<u32>> {
        let used: std::collections::BTreeSet<u32> =
            self.pfs_list()?.into_iter().map(|(id, _)| id).collect();
        Ok((0..=PFS_ID_MAX).find(|id| !used.contains(id)))
    }

    /// The TID to show PFS `id`'s root as for a `@@<tid>:<id>` name
    /// (`HAMMER_MAX_TID` for `@@-1`); ENOENT when the PFS does not exist.
    pub fn pfs_root_view(&self, id: u32, tid: u64) -> Result<u64> {
        if id != 0 && self.pfs_get(id)?.is_none() {
            return Err(FsError::NotFound.into());
        }
        Ok(tid)
    }

    /// SET_PSEUDOFS: stores `d` as PFS `id`'s descriptor, creating the root
    /// directory of a master that has none (owned by `uid`/`gid`).
    pub fn pfs_set(&mut self, id: u32, d: &HammerPseudofsData, uid: u32, gid: u32) -> Result<()> {
        if id > PFS_ID_MAX {
            return Err(FsError::Invalid.into());
        }
        // A new PFS (or one reusing a destroyed one's id) starts empty:
        // a destroy cut short by a crash may have left records behind.
        if id != 0 && self.pfs_get(id)?.is_none() {
            self.pfs_purge(id)?;
        }
        if d.mirror_flags & HAMMER_PFSD_SLAVE == 0 {
            self.pfs_mkroot(id, uid, gid)?;
        }
        self.pfs_save(id, d)
    }

    /// Replaces the descriptor record (history kept unless the volume or
    /// PFS #0's root says otherwise).
    fn pfs_save(&mut self, id: u32, d: &HammerPseudofsData) -> Result<()> {
        let tid = self.tid();
        let keep = !self.nohistory;
        if let Some((old, _)) = self.pfs_record(id)? {
            self.retire(&old, keep)?;
        }
        let e = self.leaf(
            HAMMER_LOCALIZE_MISC,
            HAMMER_OBJID_ROOT,
            HAMMER_RECTYPE_PFS,
            pfs_to_lo(id) as i64,
            0,
            tid,
        );
        self.insert_record(e, d.as_bytes())
    }

    /// The root directory of PFS `id`, made if missing.
    fn pfs_mkroot(&mut self, id: u32, uid: u32, gid: u32) -> Result<()> {
        let cur = self.pfs_lo;
        self.pfs_lo = pfs_to_lo(id);
        let r = (|| {
            if self.inode(HAMMER_OBJID_ROOT, HAMMER_MAX_TID).is_ok() {
                return Ok(());
            }
            let now = self.now();
            let mut d = HammerInodeData {
                version: HAMMER_INODE_DATA_VERSION,
                obj_type: HAMMER_OBJTYPE_DIRECTORY,
                mode: 0o755,
                ctime: now,
                mtime: now,
                atime: now,
                uid: HammerUuid::from_unix_id(uid),
                gid: HammerUuid::from_unix_id(gid),
                nlinks: 1,
                cap_flags: HAMMER_INODE_CAP_DIR_LOCAL_INO,
                ..Default::default()
            };
            if self.set.version() >= 6 {
                d.cap_flags |= HAMMER_INODE_CAP_DIRHASH_ALG1;
            }
            self.tid();
            self.inodes.insert(
                (self.pfs_lo, HAMMER_OBJID_ROOT),
                super::DirtyInode {
                    data: d,
                    destroy: false,
                },
            );
            self.set.header_mut().vol0_stat_inodes += 1;
            Ok(())
        })();
        self.pfs_lo = cur;
        r
    }

    /// Every leaf of PFS `id` visible now or in history.
    fn pfs_leaves(&self, id: u32) -> Result<Vec<HammerBtreeLeafElm>> {
        let (from, to) = super::pfs_range(pfs_to_lo(id));
        let mut out = Vec::new();
        self.ro_tree(|t| {
            t.scan(&from, &to, &mut |e| {
                out.push(*e);
                ControlFlow::Continue(())
            })
        })?;
        Ok(out)
    }

    /// Removes a leaf and frees its data (no history).
    fn destroy_leaf(&mut self, e: &HammerBtreeLeafElm) -> Result<()> {
        let root = self.root();
        BTree::new(&mut self.set, root).remove(&e.base)?;
        if e.data_len > 0 {
            self.set.free(e.data_offset, e.data_len as u64)?;
        }
        Ok(())
    }

    /// Forgets what memory holds for PFS `id` (its pending changes and open
    /// objects): after a destroy or a rollback they name nothing.
    fn pfs_forget_memory(&mut self, id: u32) {
        let lo = pfs_to_lo(id);
        let gone: u64 = self
            .dirty_blocks
            .range((lo, i64::MIN, 0)..=(lo, i64::MAX, u64::MAX))
            .map(|(_, b)| b.len() as u64)
            .sum();
        self.dirty_block_bytes -= gone;
        self.dirty_blocks.retain(|k, _| k.0 != lo);
        self.inodes.retain(|k, _| k.0 != lo);
        self.redo_ops.retain(|k, _| k.0 != lo);
        self.open_refs.retain(|k, _| k.0 != lo);
    }

    /// RMR_PSEUDOFS (`pfs-destroy`): every record of the PFS goes, then its
    /// descriptor is flagged DELETED. PFS #0 cannot be destroyed.
    pub fn pfs_destroy(&mut self, id: u32) -> Result<()> {
        if id == 0 {
            return Err(FsError::Invalid.into());
        }
        let mut d = self.live_pfs_record(id)?;
        // Changes still in memory are flushed first, so none can land in
        // the PFS after it is gone; then the PFS goes, in one flush.
        self.sync()?;
        self.pfs_forget_memory(id);
        d.mirror_flags |= HAMMER_PFSD_DELETED;
        self.pfs_save(id, &d)?;
        if self.pfs_lo == pfs_to_lo(id) {
            self.pfs_lo = 0;
        }
        self.sync()?;
        self.pfs_purge(id)
    }

    /// Removes every record in PFS `id`'s key range (as many flushes as
    /// the UNDO FIFO needs).
    fn pfs_purge(&mut self, id: u32) -> Result<()> {
        let leaves = self.pfs_leaves(id)?;
        if leaves.is_empty() {
            return Ok(());
        }
        let mut inodes = 0i64;
        for e in leaves {
            if e.base.rec_type == HAMMER_RECTYPE_INODE && e.base.delete_tid == 0 {
                inodes += 1;
            }
            // Changes belong to a transaction so the flushes run.
            let _ = self.tid();
            self.destroy_leaf(&e)?;
            self.maybe_sync()?;
        }
        let h = self.set.header_mut();
        h.vol0_stat_inodes = (h.vol0_stat_inodes - inodes).max(0);
        self.sync().map(|_| ())
    }

    /// UPG_PSEUDOFS (`pfs-upgrade`): a slave becomes a master, rolled back
    /// to its `sync_end_tid` first (a partial mirror-write is undone).
    pub fn pfs_upgrade(&mut self, id: u32) -> Result<()> {
        let mut d = self.live_pfs_record(id)?;
        if d.mirror_flags & HAMMER_PFSD_SLAVE == 0 {
            return Ok(());
        }
        self.sync()?;
        self.pfs_forget_memory(id);
        let trunc = d.sync_end_tid.saturating_add(1);
        for e in self.pfs_leaves(id)? {
            if e.base.create_tid >= trunc {
                self.destroy_leaf(&e)?;
            } else if e.base.delete_tid >= trunc {
                let mut u = e;
                u.base.delete_tid = 0;
                u.delete_ts = 0;
                let root = self.root();
                BTree::new(&mut self.set, root).update(&u)?;
            }
            self.maybe_sync()?;
        }
        d.mirror_flags &= !HAMMER_PFSD_SLAVE;
        self.pfs_save(id, &d)?;
        self.sync().map(|_| ())
    }

    /// DGD_PSEUDOFS (`pfs-downgrade`): a master becomes a slave whose
    /// `sync_end_tid` is at least the newest committed TID.
    pub fn pfs_downgrade(&mut self, id: u32) -> Result<()> {
        let mut d = self.live_pfs_record(id)?;
        if d.mirror_flags & HAMMER_PFSD_SLAVE != 0 {
            return Ok(());
        }
        self.sync()?;
        d.mirror_flags |= HAMMER_PFSD_SLAVE;
        d.sync_end_tid = d.sync_end_tid.max(self.last_tid());
        self.pfs_save(id, &d)?;
        self.sync().map(|_| ())
    }
}
