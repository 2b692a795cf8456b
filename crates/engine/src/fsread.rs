//! Reading objects as of a TID: inodes, directory listings, file contents
//! and symlink targets, straight from the B-tree. This is the read half of
//! the library API the mount and the CLI will share; `asof` is
//! `HAMMER_MAX_TID` for the current state.

use crate::btree::{record_range, BTree};
use crate::error::{Error, Result};
use crate::store::ReadOnlyStore;
use crate::volume::VolumeSet;
use hammer_ondisk::*;
use zerocopy::FromBytes;

/// Decodes a directory entry record (`e` its leaf, `data` its data).
pub fn dirent_from(e: &HammerBtreeLeafElm, data: &[u8]) -> Result<DirEntry> {
    if data.len() < HAMMER_ENTRY_NAME_OFF {
        return Err(Error::corrupt(
            "btree",
            "directory entry shorter than its head",
            e.data_offset,
        ));
    }
    let head =
        HammerDirentryHead::read_from_bytes(&data[..HAMMER_ENTRY_NAME_OFF]).expect("16 bytes");
    Ok(DirEntry {
        name: data[HAMMER_ENTRY_NAME_OFF..].to_vec(),
        obj_id: head.obj_id,
        obj_type: e.base.obj_type,
        key: e.base.key,
    })
}

/// A directory entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub obj_id: i64,
    pub obj_type: u8,
    /// The B-tree key, which is also the readdir cookie.
    pub key: i64,
}

/// Read access to one PFS of a volume set.
pub struct FsReader<'a> {
    set: &'a VolumeSet,
    /// `pfs_id << 16`.
    pub pfs_lo: u32,
}

impl<'a> FsReader<'a> {
    pub fn new(set: &'a VolumeSet, pfs_id: u32) -> Self {
        FsReader {
            set,
            pfs_lo: pfs_to_lo(pfs_id),
        }
    }

    fn with_tree<T>(&self, f: impl FnOnce(&BTree<ReadOnlyStore<'a>>) -> Result<T>) -> Result<T> {
        let mut store = ReadOnlyStore(self.set);
        let t = BTree::new(&mut store, self.set.header().vol0_btree_root);
        f(&t)
    }

    fn data(&self, e: &HammerBtreeLeafElm) -> Result<Vec<u8>> {
        self.set.record_data(e)
    }

    /// The inode of `obj_id` as of `asof`.
    pub fn inode(&self, obj_id: i64, asof: u64) -> Result<Option<HammerInodeData>> {
        let lo = self.pfs_lo | HAMMER_LOCALIZE_INODE;
        let Some(e) = self.with_tree(|t| t.lookup(lo, obj_id, HAMMER_RECTYPE_INODE, 0, asof))?
        else {
            return Ok(None);
        };
        let d = self.data(&e)?;
        HammerInodeData::read_from_bytes(&d)
            .map(Some)
            .map_err(|_| Error::corrupt("btree", "inode data is not 128 bytes", e.data_offset))
    }

    /// Every entry of directory `dir` as of `asof`, in key order.
    pub fn readdir(&self, dir: i64, asof: u64) -> Result<Vec<DirEntry>> {
        let ino = self
            .inode(dir, asof)?
            .ok_or_else(|| Error::Invalid(format!("no directory {dir:#x}")))?;
        let lo = self.pfs_lo
            | if ino.cap_flags & HAMMER_INODE_CAP_DIR_LOCAL_INO != 0 {
                HAMMER_LOCALIZE_INODE
            } else {
                HAMMER_LOCALIZE_MISC
            };
        let (from, to) = record_range(lo, dir, HAMMER_RECTYPE_DIRENTRY, HAMMER_MIN_KEY);
        let elms = self.with_tree(|t| t.visible(&from, &to, asof))?;
        let mut out = Vec::with_capacity(elms.len());
        for e in elms {
            let d = self.data(&e)?;
            out.push(dirent_from(&e, &d)?);
        }
        Ok(out)
    }

    /// Looks a name up in a directory.
    pub fn lookup(&self, dir: i64, name: &[u8], asof: u64) -> Result<Option<DirEntry>> {
        Ok(self
            .readdir(dir, asof)?
            .into_iter()
            .find(|e| e.name == name))
    }

    /// A regular file's contents as of `asof` (holes read as zeros).
    pub fn read_file(&self, obj_id: i64, asof: u64) -> Result<Vec<u8>> {
        let ino = self
            .inode(obj_id, asof)?
            .ok_or_else(|| Error::Invalid(format!("no file {obj_id:#x}")))?;
        let size = usize::try_from(ino.size)
            .map_err(|_| Error::Invalid("file too large to read into memory".into()))?;
        let mut out = vec![0u8; size];
        let lo = self.pfs_lo | HAMMER_LOCALIZE_MISC;
        let (from, to) = record_range(lo, obj_id, HAMMER_RECTYPE_DATA, HAMMER_MIN_KEY);
        let elms = self.with_tree(|t| t.visible(&from, &to, asof))?;
        for e in elms {
            let d = self.data(&e)?;
            // The key is the end offset of the record.
            let start = e
                .base
                .key
                .checked_sub(e.data_len as i64)
                .filter(|s| *s >= 0)
                .ok_or_else(|| {
                    Error::corrupt("btree", "data record before offset 0", e.data_offset)
                })? as u64;
            if start >= size as u64 {
                continue;
            }
            let n = d.len().min(size - start as usize);
            out[start as usize..start as usize + n].copy_from_slice(&d[..n]);
        }
        Ok(out)
    }

    /// A symlink's target as of `asof`.
    pub fn readlink(&self, obj_id: i64, asof: u64) -> Result<Vec<u8>> {
        let ino = self
            .inode(obj_id, asof)?
            .ok_or_else(|| Error::Invalid(format!("no symlink {obj_id:#x}")))?;
        let len = ino.size as usize;
        if len <= HAMMER_INODE_BASESYMLEN {
            return Ok(ino.ext[..len].to_vec());
        }
        let lo = self.pfs_lo | HAMMER_LOCALIZE_MISC;
        let e = self
            .with_tree(|t| t.lookup(lo, obj_id, HAMMER_RECTYPE_FIX, HAMMER_FIXKEY_SYMLINK, asof))?
            .ok_or_else(|| Error::corrupt("btree", "long symlink without its FIX record", 0))?;
        self.data(&e)
    }
}
