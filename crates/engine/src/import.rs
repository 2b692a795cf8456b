//! Copying a directory tree into a freshly made volume (`newfs_hammer
//! --from DIR`, like `mke2fs -d` or `mkfs.btrfs --rootdir`): every object
//! becomes the records DragonFly's kernel would have written for it —
//! inode, directory entries keyed by the directory's name-hash algorithm,
//! file data in 16 KiB buffers below 1 MiB and 64 KiB above (one small
//! record for files of at most 8 KiB), symlinks inline or as a FIX record —
//! all stamped with one transaction id, as one flush would.
//!
//! Crash reasoning: the volume is fresh, so nothing is live until the root
//! volume's header, written last, points the blockmaps and counters at the
//! new state. Buffers can therefore be written out early (bounding memory);
//! a crash before the header write leaves the empty filesystem newfs made.

use crate::btree::BTree;
use crate::error::{Error, Result};
use crate::volume::VolumeSet;
use hammer_ondisk::*;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use zerocopy::IntoBytes;

/// Dirty buffers held before writing them out early.
const DIRTY_LIMIT: usize = 4096;

/// File data handed to the devices' write-behind before waiting for it:
/// without a bound, a tree of big files (whose records dirty few metadata
/// buffers) would sit in memory whole until the end.
const BEHIND_LIMIT: u64 = 64 << 20;

/// What an import made.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportStats {
    pub inodes: u64,
    pub directories: u64,
    pub files: u64,
    pub symlinks: u64,
    pub other: u64,
    pub hardlinks: u64,
    pub data_bytes: u64,
    pub tid: u64,
}

struct Importer<'a> {
    set: &'a mut VolumeSet,
    tid: u64,
    ts: u32,
    next_objid: i64,
    /// (st_dev, st_ino) of regular files already copied → obj_id, for hard links.
    links: HashMap<(u64, u64), i64>,
    /// obj_id → number of directory entries naming it.
    nlinks: HashMap<i64, u64>,
    /// obj_id → inode data, written once the link counts are known.
    inodes: Vec<(i64, HammerInodeData)>,
    stats: ImportStats,
    dir_caps: u8,
}

fn us(secs: i64, nsecs: i64) -> u64 {
    (secs.max(0) as u64)
        .saturating_mul(1_000_000)
        .saturating_add((nsecs.max(0) / 1000) as u64)
}

fn obj_type_of(ft: &fs::FileType) -> Option<u8> {
    Some(if ft.is_dir() {
        HAMMER_OBJTYPE_DIRECTORY
    } else if ft.is_file() {
        HAMMER_OBJTYPE_REGFILE
    } else if ft.is_symlink() {
        HAMMER_OBJTYPE_SOFTLINK
    } else if ft.is_fifo() {
        HAMMER_OBJTYPE_FIFO
    } else if ft.is_char_device() {
        HAMMER_OBJTYPE_CDEV
    } else if ft.is_block_device() {
        HAMMER_OBJTYPE_BDEV
    } else if ft.is_socket() {
        HAMMER_OBJTYPE_SOCKET
    } else {
        return None;
    })
}

/// Imports the tree at `src` into the root directory of PFS #0 of `set`
/// (a volume fresh from newfs) and writes everything out, header last.
pub fn import_tree(set: &mut VolumeSet, src: &Path) -> Result<ImportStats> {
    let meta = fs::metadata(src).map_err(|e| Error::io(src.display().to_string(), e))?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "{}: not a directory",
            src.display()
        )));
    }
    let version = set.version();
    // One TID for the whole import, above everything newfs handed out; object
    // ids come from the same space, above it.
    let tid = set.header().vol0_next_tid.max(0x1_0000_0001) + 1;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir_caps = if version >= 6 {
        HAMMER_INODE_CAP_DIRHASH_ALG1 | HAMMER_INODE_CAP_DIR_LOCAL_INO
    } else if version >= 2 {
        HAMMER_INODE_CAP_DIR_LOCAL_INO
    } else {
        0
    };
    let mut imp = Importer {
        set,
        tid,
        ts: now as u32,
        next_objid: (tid + 1) as i64,
        links: HashMap::new(),
        nlinks: HashMap::new(),
        inodes: Vec::new(),
        stats: ImportStats {
            tid,
            ..Default::default()
        },
        dir_caps,
    };
    imp.import_root(src, &meta)?;
    imp.finish()
}

impl Importer<'_> {
    fn root(&self) -> u64 {
        self.set.header().vol0_btree_root
    }

    fn insert(&mut self, elm: HammerBtreeLeafElm) -> Result<()> {
        let root = self.root();
        let mut t = BTree::new(&mut *self.set, root);
        t.insert(&elm)?;
        self.spill()
    }

    /// Writes buffers out early so memory stays bounded (see module doc).
    fn spill(&mut self) -> Result<()> {
        if self.set.dirty_buffers() > DIRTY_LIMIT {
            self.set.write_dirty()?;
        } else if self.set.behind_bytes() > BEHIND_LIMIT {
            self.set.settle_data()?;
        }
        Ok(())
    }

    fn leaf(
        &self,
        lo: u32,
        obj_id: i64,
        rec_type: u16,
        key: i64,
        obj_type: u8,
    ) -> HammerBtreeLeafElm {
        HammerBtreeLeafElm {
            base: HammerBaseElm {
                obj_id,
                key,
                create_tid: self.tid,
                delete_tid: 0,
                rec_type,
                obj_type,
                btype: HAMMER_BTREE_TYPE_RECORD,
                localization: lo,
            },
            create_ts: self.ts,
            ..Default::default()
        }
    }

    /// Stores record data in the meta zone and returns the finished leaf.
    fn with_meta_data(
        &mut self,
        mut elm: HammerBtreeLeafElm,
        data: &[u8],
    ) -> Result<HammerBtreeLeafElm> {
        let off = self.set.alloc(HAMMER_ZONE_META_INDEX, data.len() as u64)?;
        self.set.write(off, data)?;
        elm.data_offset = off;
        elm.data_len = data.len() as i32;
        elm.data_crc = leaf_data_crc(self.set.crc_kind(), elm.base.rec_type, data);
        Ok(elm)
    }

    fn new_objid(&mut self) -> i64 {
        let id = self.next_objid;
        self.next_objid += 1;
        id
    }

    fn inode_data(&self, meta: &fs::Metadata, obj_type: u8, parent: i64) -> HammerInodeData {
        let rdev = meta.rdev();
        HammerInodeData {
            version: HAMMER_INODE_DATA_VERSION,
            mode: (meta.mode() & 0o7777) as u16,
            uflags: 0,
            rmajor: libc::major(rdev),
            rminor: libc::minor(rdev),
            ctime: us(meta.ctime(), meta.ctime_nsec()),
            parent_obj_id: parent,
            uid: HammerUuid::from_unix_id(meta.uid()),
            gid: HammerUuid::from_unix_id(meta.gid()),
            obj_type,
            cap_flags: if obj_type == HAMMER_OBJTYPE_DIRECTORY {
                self.dir_caps
            } else {
                0
            },
            nlinks: 0,
            size: 0,
            mtime: us(meta.mtime(), meta.mtime_nsec()),
            atime: us(meta.atime(), meta.atime_nsec()),
            ..Default::default()
        }
    }

    fn import_root(&mut self, src: &Path, meta: &fs::Metadata) -> Result<()> {
        // The root directory keeps obj_id 1; its inode gets a new version
        // (the newfs one is marked deleted at this TID, as a kernel flush
        // would), with the source directory's attributes.
        let root = self.root();
        let old = {
            let t = BTree::new(&mut *self.set, root);
            t.lookup(
                HAMMER_LOCALIZE_INODE,
                HAMMER_OBJID_ROOT,
                HAMMER_RECTYPE_INODE,
                0,
                HAMMER_MAX_TID,
            )?
        }
        .ok_or_else(|| Error::corrupt("volume", "root inode missing", root))?;
        let old_data = self.set.read(old.data_offset, 128)?;
        let mut ino: HammerInodeData = zerocopy::FromBytes::read_from_bytes(&old_data[..])
            .map_err(|_| Error::corrupt("volume", "root inode data", old.data_offset))?;
        let fresh = self.inode_data(meta, HAMMER_OBJTYPE_DIRECTORY, 0);
        ino.mode = fresh.mode;
        ino.uid = fresh.uid;
        ino.gid = fresh.gid;
        ino.ctime = fresh.ctime;
        ino.mtime = fresh.mtime;
        ino.atime = fresh.atime;
        let mut dead = old;
        dead.base.delete_tid = self.tid;
        dead.delete_ts = self.ts;
        {
            let mut t = BTree::new(&mut *self.set, root);
            t.update(&dead)?;
        }
        self.nlinks.insert(HAMMER_OBJID_ROOT, ino.nlinks.max(1));
        let caps = ino.cap_flags;
        self.import_dir_contents(src, HAMMER_OBJID_ROOT, caps, 0)?;
        self.inodes.push((HAMMER_OBJID_ROOT, ino));
        self.stats.directories += 1;
        Ok(())
    }

    fn import_dir_contents(
        &mut self,
        dir: &Path,
        dir_id: i64,
        caps: u8,
        depth: usize,
    ) -> Result<()> {
        if depth > 4096 {
            return Err(Error::Invalid(format!(
                "{}: directory tree too deep",
                dir.display()
            )));
        }
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
            .map_err(|e| Error::io(dir.display().to_string(), e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io(dir.display().to_string(), e))?;
        entries.sort_by_key(|e| e.file_name());
        for ent in entries {
            let path = ent.path();
            let meta = fs::symlink_metadata(&path)
                .map_err(|e| Error::io(path.display().to_string(), e))?;
            let Some(obj_type) = obj_type_of(&meta.file_type()) else {
                continue;
            };
            let name = ent.file_name();
            let obj_id = if obj_type == HAMMER_OBJTYPE_REGFILE && meta.nlink() > 1 {
                match self.links.get(&(meta.dev(), meta.ino())) {
                    Some(&id) => {
                        self.stats.hardlinks += 1;
                        *self.nlinks.entry(id).or_default() += 1;
                        self.add_dirent(dir_id, caps, &name, id, obj_type)?;
                        continue;
                    }
                    None => {
                        let id = self.new_objid();
                        self.links.insert((meta.dev(), meta.ino()), id);
                        id
                    }
                }
            } else {
                self.new_objid()
            };
            *self.nlinks.entry(obj_id).or_default() += 1;
            self.add_dirent(dir_id, caps, &name, obj_id, obj_type)?;
            let mut ino = self.inode_data(&meta, obj_type, dir_id);
            match obj_type {
                HAMMER_OBJTYPE_DIRECTORY => {
                    self.stats.directories += 1;
                    self.import_dir_contents(&path, obj_id, ino.cap_flags, depth + 1)?;
                }
                HAMMER_OBJTYPE_REGFILE => {
                    self.stats.files += 1;
                    ino.size = self.import_file_data(&path, obj_id)?;
                }
                HAMMER_OBJTYPE_SOFTLINK => {
                    self.stats.symlinks += 1;
                    let target = fs::read_link(&path)
                        .map_err(|e| Error::io(path.display().to_string(), e))?;
                    let t = target.as_os_str().as_bytes();
                    ino.size = t.len() as u64;
                    if t.len() <= HAMMER_INODE_BASESYMLEN {
                        ino.ext[..t.len()].copy_from_slice(t);
                    } else {
                        let elm = self.leaf(
                            HAMMER_LOCALIZE_MISC,
                            obj_id,
                            HAMMER_RECTYPE_FIX,
                            HAMMER_FIXKEY_SYMLINK,
                            obj_type,
                        );
                        let elm = self.with_meta_data(elm, t)?;
                        self.insert(elm)?;
                    }
                }
                _ => self.stats.other += 1,
            }
            self.inodes.push((obj_id, ino));
        }
        Ok(())
    }

    /// Adds `name` → `target` in directory `dir_id`, at the first free key
    /// from the name's hash (colliding names take the next keys).
    fn add_dirent(
        &mut self,
        dir_id: i64,
        caps: u8,
        name: &OsStr,
        target: i64,
        obj_type: u8,
    ) -> Result<()> {
        let name = name.as_bytes();
        let lo = if caps & HAMMER_INODE_CAP_DIR_LOCAL_INO != 0 {
            HAMMER_LOCALIZE_INODE
        } else {
            HAMMER_LOCALIZE_MISC
        };
        let (base_key, max_iter) = dirhash(caps, name);
        let root = self.root();
        let mut key = base_key;
        loop {
            let taken = {
                let t = BTree::new(&mut *self.set, root);
                t.lookup(lo, dir_id, HAMMER_RECTYPE_DIRENTRY, key, HAMMER_MAX_TID)?
                    .is_some()
            };
            if !taken {
                break;
            }
            if key - base_key >= max_iter {
                return Err(Error::Invalid(format!(
                    "too many names collide with {:?}",
                    String::from_utf8_lossy(name)
                )));
            }
            key += 1;
        }
        let mut data = HammerDirentryHead {
            obj_id: target,
            localization: 0,
            reserved01: 0,
        }
        .as_bytes()
        .to_vec();
        data.extend_from_slice(name);
        let elm = self.leaf(lo, dir_id, HAMMER_RECTYPE_DIRENTRY, key, obj_type);
        let elm = self.with_meta_data(elm, &data)?;
        self.insert(elm)
    }

    /// Copies a regular file's bytes as DATA records; all-zero blocks stay
    /// holes. Returns the file size.
    fn import_file_data(&mut self, path: &Path, obj_id: i64) -> Result<u64> {
        use std::io::Read;
        let mut f = fs::File::open(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let size = f
            .metadata()
            .map_err(|e| Error::io(path.display().to_string(), e))?
            .len();
        let mut off = 0u64;
        let mut block = vec![0u8; HAMMER_XBUFSIZE as usize];
        while off < size {
            let bsize = if off < HAMMER_XDEMARC {
                HAMMER_BUFSIZE
            } else {
                HAMMER_XBUFSIZE
            };
            let want = bsize.min(size - off) as usize;
            block[..bsize as usize].fill(0);
            let mut got = 0;
            while got < want {
                let n = f
                    .read(&mut block[got..want])
                    .map_err(|e| Error::io(path.display().to_string(), e))?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            if got < want {
                return Err(Error::Invalid(format!(
                    "{}: file shrank while being copied",
                    path.display()
                )));
            }
            // A file of at most 8 KiB gets one record of its own size
            // (rounded to 16); everything else whole buffers.
            let len = if off == 0 && size <= HAMMER_HBUFSIZE {
                data_doalign(size)
            } else {
                bsize
            };
            if block[..want].iter().any(|&b| b != 0) {
                self.write_data_record(obj_id, off, &block[..len as usize])?;
                self.stats.data_bytes += len;
            }
            off += bsize;
        }
        Ok(size)
    }

    fn write_data_record(&mut self, obj_id: i64, file_off: u64, data: &[u8]) -> Result<()> {
        let len = data.len() as u64;
        let zone = data_zone_index(len);
        let at = self.set.alloc(zone, len)?;
        self.set.write_fresh(at, data)?;
        let mut elm = self.leaf(
            HAMMER_LOCALIZE_MISC,
            obj_id,
            HAMMER_RECTYPE_DATA,
            (file_off + len) as i64,
            HAMMER_OBJTYPE_REGFILE,
        );
        elm.data_offset = at;
        elm.data_len = len as i32;
        elm.data_crc = leaf_data_crc(self.set.crc_kind(), HAMMER_RECTYPE_DATA, data);
        self.insert(elm)
    }

    /// Writes every inode (now that link counts are known), then all
    /// buffers, then the header.
    fn finish(mut self) -> Result<ImportStats> {
        let inodes = std::mem::take(&mut self.inodes);
        for (obj_id, mut ino) in inodes {
            ino.nlinks = self.nlinks.get(&obj_id).copied().unwrap_or(1);
            let elm = self.leaf(
                HAMMER_LOCALIZE_INODE,
                obj_id,
                HAMMER_RECTYPE_INODE,
                0,
                ino.obj_type,
            );
            let elm = self.with_meta_data(elm, ino.as_bytes())?;
            self.insert(elm)?;
            self.stats.inodes += 1;
        }
        // The root inode replaced its old version, so it does not add one.
        let added = self.stats.inodes as i64 - 1;
        let last_id = (self.next_objid - 1) as u64;
        let kind = self.set.crc_kind();
        let h = self.set.header_mut();
        h.vol0_stat_inodes += added;
        h.vol0_next_tid = h.vol0_next_tid.max(self.tid).max(last_id);
        for bm in h.vol0_blockmap.iter_mut() {
            if bm.phys_offset != 0
                || bm.first_offset != 0
                || bm.next_offset != 0
                || bm.alloc_offset != 0
            {
                bm.set_crc(kind);
            }
        }
        self.set.write_dirty()?;
        self.set.write_header(0)?;
        Ok(self.stats)
    }
}
