//! PFS metadata records kept in the B-tree beside the filesystem's objects:
//! snapshots (`rec_type` SNAPSHOT, key = the snapshot's TID) and the
//! cleanup configuration (`rec_type` CONFIG, key 0), both under the PFS
//! root's object id in the inode localization — what DragonFly's
//! `HAMMERIOC_{ADD,DEL,GET}_SNAPSHOT` and `HAMMERIOC_{GET,SET}_CONFIG`
//! ioctls maintain (format doc: snapshot records exist from version 3).
//!
//! Both are ordinary records of the current transaction, so they become
//! durable with the next flush like any other change. As in the kernel,
//! replacing the config and deleting a snapshot remove the old record
//! outright (no history: a deleted snapshot must not linger for prune),
//! and these records carry no timestamps (`create_ts` 0).

use super::Fs;
use crate::error::{Error, FsError, Result};
use hammer_ondisk::*;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Longest snapshot label (the record's label field holds a terminating NUL).
pub const SNAPSHOT_LABEL_MAX: usize = 63;
/// Longest configuration text (the record holds a terminating NUL).
pub const CONFIG_TEXT_MAX: usize = 1023;

/// One snapshot record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub tid: u64,
    /// When it was taken, microseconds since the epoch.
    pub ts: u64,
    pub label: Vec<u8>,
}

fn cstr(b: &[u8]) -> Vec<u8> {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..n].to_vec()
}

impl Fs {
    fn meta_lo(&self) -> u32 {
        self.pfs_lo | HAMMER_LOCALIZE_INODE
    }

    /// The snapshot records visible now, in TID order.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let lo = self.meta_lo();
        let from = HammerBaseElm {
            localization: lo,
            obj_id: HAMMER_OBJID_ROOT,
            rec_type: HAMMER_RECTYPE_SNAPSHOT,
            key: i64::MIN,
            create_tid: 1,
            ..Default::default()
        };
        let to = HammerBaseElm {
            rec_type: HAMMER_RECTYPE_SNAPSHOT + 1,
            ..from
        };
        let mut out = Vec::new();
        for e in self.scan_visible(&from, &to, HAMMER_MAX_TID)? {
            let data = self.record_data(&e)?;
            let mut buf = [0u8; 128];
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            let d = HammerSnapshotData::read_from_bytes(&buf[..])
                .map_err(|_| Error::corrupt("snapshot record", "bad size", e.data_offset))?;
            out.push(Snapshot {
                tid: e.base.key as u64,
                ts: d.ts,
                label: cstr(&d.label),
            });
        }
        Ok(out)
    }

    /// Adds a snapshot record for `tid` (a TID already durable: callers
    /// sync first). EEXIST when one exists for the TID.
    pub fn add_snapshot(&mut self, tid: u64, ts: u64, label: &[u8]) -> Result<()> {
        if label.len() > SNAPSHOT_LABEL_MAX || tid == 0 || tid > i64::MAX as u64 {
            return Err(FsError::Invalid.into());
        }
        let lo = self.meta_lo();
        if self
            .tree_lookup(
                lo,
                HAMMER_OBJID_ROOT,
                HAMMER_RECTYPE_SNAPSHOT,
                tid as i64,
                HAMMER_MAX_TID,
            )?
            .is_some()
        {
            return Err(FsError::Exists.into());
        }
        let mut d = HammerSnapshotData::new_zeroed();
        d.tid = tid;
        d.ts = ts;
        d.label[..label.len()].copy_from_slice(label);
        let t = self.tid();
        let mut e = self.leaf(
            lo,
            HAMMER_OBJID_ROOT,
            HAMMER_RECTYPE_SNAPSHOT,
            tid as i64,
            0,
            t,
        );
        e.create_ts = 0;
        self.insert_record(e, d.as_bytes())
    }

    /// Removes the snapshot record for `tid`; ENOENT when there is none.
    pub fn del_snapshot(&mut self, tid: u64) -> Result<()> {
        if tid > i64::MAX as u64 {
            return Err(FsError::NotFound.into());
        }
        let lo = self.meta_lo();
        let e = self
            .tree_lookup(
                lo,
                HAMMER_OBJID_ROOT,
                HAMMER_RECTYPE_SNAPSHOT,
                tid as i64,
                HAMMER_MAX_TID,
            )?
            .ok_or(Error::Fs(FsError::NotFound))?;
        self.retire(&e, false)
    }

    /// The cleanup configuration text, `None` when none was ever set.
    pub fn config(&self) -> Result<Option<Vec<u8>>> {
        let lo = self.meta_lo();
        match self.tree_lookup(
            lo,
            HAMMER_OBJID_ROOT,
            HAMMER_RECTYPE_CONFIG,
            0,
            HAMMER_MAX_TID,
        )? {
            None => Ok(None),
            Some(e) => Ok(Some(cstr(&self.record_data(&e)?))),
        }
    }

    /// Replaces the cleanup configuration text.
    pub fn set_config(&mut self, text: &[u8]) -> Result<()> {
        if text.len() > CONFIG_TEXT_MAX || text.contains(&0) {
            return Err(FsError::Invalid.into());
        }
        let lo = self.meta_lo();
        if let Some(old) = self.tree_lookup(
            lo,
            HAMMER_OBJID_ROOT,
            HAMMER_RECTYPE_CONFIG,
            0,
            HAMMER_MAX_TID,
        )? {
            // The kernel destroys the old text: configuration has no history.
            self.retire(&old, false)?;
        }
        let mut d = HammerConfigData::new_zeroed();
        d.text[..text.len()].copy_from_slice(text);
        let t = self.tid();
        let mut e = self.leaf(lo, HAMMER_OBJID_ROOT, HAMMER_RECTYPE_CONFIG, 0, 0, t);
        e.create_ts = 0;
        self.insert_record(e, d.as_bytes())
    }
}
