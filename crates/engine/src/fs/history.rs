//! The history of one object as DragonFly's `HAMMERIOC_GETHISTORY` reports
//! it: without a key, the TIDs of the object's inode versions (each
//! version's `create_tid`, and `delete_tid` where set); with a key (ATKEY),
//! the TIDs of the data records covering that byte of a regular file, or
//! of a directory's entries. The reply also tells whether the object has
//! changes not yet flushed (DragonFly's "dirty": the scan sees only what
//! is on disk) and, for ATKEY, where the caller should continue
//! (`nxt_key` with `next_key`), following the kernel's rules so that
//! `hammer history@offset` and `undo(1)` walk a file exactly as they do on
//! DragonFly. Unlike the ioctl there is no 64-entry page: a reply carries
//! every entry of the range.

use super::Fs;
use crate::error::Result;
use hammer_ondisk::*;
use std::ops::ControlFlow;

/// The kernel's MAXPHYS: a data record ending this far past the key makes
/// the caller move on to the next key.
const MAXPHYS: i64 = 128 * 1024;

/// One history reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryReply {
    pub obj_id: i64,
    /// `(tid, seconds)` in the order the B-tree yields them.
    pub entries: Vec<(u64, u32)>,
    pub dirty: bool,
    /// With a key: the key to ask next, valid when `next_key` is set.
    pub nxt_key: i64,
    pub next_key: bool,
    pub eof: bool,
}

impl Fs {
    /// Whether the object has changes only memory holds.
    pub fn is_dirty(&self, ino: i64) -> bool {
        let lo = self.pfs_lo;
        self.inodes.contains_key(&(lo, ino))
            || self.redo_ops.contains_key(&(lo, ino))
            || self
                .dirty_blocks
                .range((lo, ino, 0)..=(lo, ino, u64::MAX))
                .next()
                .is_some()
    }

    /// History of object `ino` between `beg` (inclusive) and `end`
    /// (exclusive); `atkey = Some((key, nxt_key))` asks for the records at
    /// a file offset or directory hash key.
    pub fn history_call(
        &self,
        ino: i64,
        atkey: Option<(i64, i64)>,
        beg: u64,
        end: u64,
    ) -> Result<HistoryReply> {
        let mut r = HistoryReply {
            obj_id: ino,
            dirty: self.is_dirty(ino),
            ..Default::default()
        };
        let d = self.inode(ino, HAMMER_MAX_TID).or_else(|_| {
            // A removed object (reached through an as-of path): its last
            // version says what it was.
            self.versions(
                self.pfs_lo | HAMMER_LOCALIZE_INODE,
                ino,
                HAMMER_RECTYPE_INODE,
                0,
            )?
            .last()
            .map(|e| self.record_data(e))
            .transpose()?
            .and_then(|b| {
                <HammerInodeData as zerocopy::FromBytes>::read_from_prefix(&b)
                    .ok()
                    .map(|(d, _)| d)
            })
            .ok_or(crate::error::Error::Fs(crate::error::FsError::NotFound))
        })?;
        let (lo, rt, kbeg, mut nxt_key) = match atkey {
            None => (
                self.pfs_lo | HAMMER_LOCALIZE_INODE,
                HAMMER_RECTYPE_INODE,
                0,
                0,
            ),
            Some((key, nxt)) => match d.obj_type {
                HAMMER_OBJTYPE_REGFILE => (
                    self.pfs_lo | HAMMER_LOCALIZE_MISC,
                    HAMMER_RECTYPE_DATA,
                    key.saturating_add(1),
                    nxt,
                ),
                HAMMER_OBJTYPE_DIRECTORY => (self.dirent_lo(&d), HAMMER_RECTYPE_DIRENTRY, key, nxt),
                HAMMER_OBJTYPE_DBFILE => (
                    self.pfs_lo | HAMMER_LOCALIZE_MISC,
                    HAMMER_RECTYPE_DB,
                    key,
                    nxt,
                ),
                _ => {
                    r.eof = true;
                    return Ok(r);
                }
            },
        };
        let kend = if atkey.is_some() { HAMMER_MAX_KEY } else { 0 };
        let from = HammerBaseElm {
            localization: lo,
            obj_id: ino,
            rec_type: rt,
            key: kbeg,
            create_tid: 1,
            ..Default::default()
        };
        let to = HammerBaseElm {
            key: kend,
            create_tid: HAMMER_MAX_TID,
            ..from
        };
        // Only committed TIDs: the kernel's scan sees what is on disk, and
        // changes of the transaction in progress have not got theirs yet.
        let committed = self.last_tid();
        let in_range = |t: u64| t >= beg.max(1) && t < end && t <= committed;
        // Records are judged as the scan yields them and the scan stops at
        // the first NEXT_KEY, as the kernel's does: a caller walking a big
        // file key by key does not pay for the rest of the file each time.
        // `to` is exclusive; no record has create_tid HAMMER_MAX_TID.
        self.ro_tree(|t| {
            t.scan(&from, &to, &mut |e| {
                if e.base.create_tid >= end {
                    return ControlFlow::Continue(());
                }
                if let Some((key, _)) = atkey {
                    if rt == HAMMER_RECTYPE_DATA {
                        let rec_end = e.base.key;
                        let rec_beg = rec_end.saturating_sub(e.data_len.max(0) as i64);
                        if rec_beg > key && rec_beg < nxt_key {
                            nxt_key = rec_beg;
                        }
                        if rec_end < nxt_key {
                            nxt_key = rec_end;
                        }
                        if rec_end >= MAXPHYS && rec_end - MAXPHYS > key {
                            r.next_key = true;
                        }
                        if rec_beg > key {
                            return if r.next_key {
                                ControlFlow::Break(())
                            } else {
                                ControlFlow::Continue(())
                            };
                        }
                    } else if e.base.key > key {
                        if e.base.key < nxt_key {
                            nxt_key = e.base.key;
                        }
                        r.next_key = true;
                    }
                }
                let c = e.base.create_tid;
                if in_range(c) && r.entries.last().map(|x| x.0) != Some(c) {
                    r.entries.push((c, e.create_ts));
                }
                let dt = e.base.delete_tid;
                if dt != 0 && in_range(dt) {
                    r.entries.push((dt, e.delete_ts));
                }
                if r.next_key {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
        })?;
        r.nxt_key = nxt_key;
        if !r.next_key {
            r.eof = true;
        }
        Ok(r)
    }
}
