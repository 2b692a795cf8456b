//! The filesystem API the mount and the CLI share: objects (inodes,
//! directories, files, symlinks, devices) of one PFS, read as of any TID and
//! changed in transactions that `sync` makes durable — DragonFly's
//! `hammer_vnops.c`/`hammer_object.c` layer, without the VFS.
//!
//! Transactions: every change between two syncs belongs to one flush and is
//! stamped with that flush's TID. Because `create_tid` is part of the
//! B-tree key, a record created in the current transaction is replaced or
//! removed physically (it never reached disk), while a record from an older
//! flush gets `delete_tid` set and stays as history — so two versions of one
//! key never share a TID. Inodes are kept in memory while dirty and written
//! once per flush, as the kernel does. Object ids come from the TID space
//! (above the transaction's TID) so they never collide with later TIDs.
//! With `nohistory` (volume-wide or per-inode flag) old versions are removed
//! instead of kept.

mod history;
mod meta;
mod objid;
mod pfs;
pub use history::HistoryReply;
pub use pfs::PFS_ID_MAX;
mod prune;
mod rebalance;
mod reblock;
pub use meta::{Snapshot, CONFIG_TEXT_MAX, SNAPSHOT_LABEL_MAX};
pub use prune::{judge, PruneElm, PruneLimits, PruneOutcome, PruneStats, Verdict};
pub use rebalance::RebalanceStats;
pub use reblock::{ReblockOpts, ReblockStats};

use crate::btree::{record_range, BTree};
use crate::cache::RecordBytes;
use crate::device::DataBlock;
use crate::error::{Error, FsError, Result};
use crate::flush::RedoRecord;
use crate::fsread::{dirent_from, DirEntry, FsReader};
use crate::store::ReadOnlyStore;
use crate::volume::{OpenOptions, VolumeSet};
use hammer_ondisk::*;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use zerocopy::IntoBytes;

/// Longest name a directory entry may carry.
pub const NAME_MAX: usize = 255;
/// The least memory changes may hold before a flush is forced, whatever
/// the cache budget.
const MIN_DIRTY_BYTES: u64 = 32 << 20;
/// How far what pending data holds may drift before the record cache is
/// told (each telling takes its lock).
const RESERVE_STEP: u64 = 4 << 20;

/// Masters of a multi-master set (`HAMMER_MAX_MASTERS`).
pub const MAX_MASTERS: u64 = 16;

/// Largest file offset we accept (keys are signed 64-bit end offsets).
pub const MAX_FILE_SIZE: u64 = (i64::MAX as u64) - HAMMER_XBUFSIZE;

/// Attributes of an object, as getattr reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: i64,
    pub obj_type: u8,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub nlinks: u64,
    pub size: u64,
    pub rdev: (u32, u32),
    pub uflags: u32,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
    pub parent: i64,
}

/// Changes setattr can make; `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<u64>,
    pub mtime: Option<u64>,
    pub uflags: Option<u32>,
}

/// When reading an object updates its access time (the mount's
/// `noatime`, `relatime`, `atime`/`strictatime`). The time is written in
/// place at the next flush (no new inode version), as DragonFly does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AtimeMode {
    /// Never.
    #[default]
    Never,
    /// When the access time is not later than the modification or change
    /// time, or is a day old (Linux's default).
    Relative,
    /// At every read.
    Always,
}

/// What a new object is.
#[derive(Clone, Debug)]
pub enum NewObject<'a> {
    File,
    Dir,
    Symlink(&'a [u8]),
    Fifo,
    Socket,
    CharDev(u32, u32),
    BlockDev(u32, u32),
}

#[derive(Clone, Copy, Debug)]
enum RedoOp {
    Write(u64, u64),
    Trunc(u64),
}

struct DirtyInode {
    data: HammerInodeData,
    /// Delete every record of the object at the next flush.
    destroy: bool,
}

/// An opened HAMMER filesystem (one PFS of a volume set).
pub struct Fs {
    set: VolumeSet,
    pfs_lo: u32,
    /// TID of the transaction in progress, once something changed.
    /// When the current transaction's TID was handed out (seconds).
    tid_time: u32,
    tid: Option<u64>,
    /// The highest TID or object id handed out (the kernel's
    /// `hmp->next_tid`); written as `vol0_next_tid` at each flush.
    next_tid: u64,
    /// Object-id windows per directory.
    objids: objid::Windows,
    inodes: BTreeMap<(u32, i64), DirtyInode>,
    nohistory: bool,
    /// Writes and truncations per file since the last flush, for fsync's
    /// REDO records.
    redo_ops: BTreeMap<(u32, i64), Vec<RedoOp>>,
    /// Open handles per object: an object whose last name goes while it is
    /// open lives on (with no links) until its last close.
    open_refs: BTreeMap<(u32, i64), u32>,
    /// TID → the earliest time (seconds) a record carries for it; built on
    /// the first date lookup, kept current by sync.
    time_index: Option<BTreeMap<u64, u32>>,
    /// File blocks written in this transaction (16 or 64 KiB), by
    /// (object, block offset): they become records once, at the flush, so
    /// rewriting a block many times between flushes costs one record — as
    /// the kernel's buffer cache does — instead of leaving freed fragments.
    /// A block may hold fewer pages than its size: the rest is zeros (a
    /// block past the end of its file gets pages as far as it is written).
    /// `dirty_block_bytes` counts every block at its full size, which is
    /// the disk space its record may take.
    dirty_blocks: BTreeMap<(u32, i64, u64), DataBlock>,
    /// When each dirty block was first written (its place in the flush).
    block_order: std::collections::HashMap<(u32, i64, u64), u64>,
    /// Blocks already stored whole in this transaction. Written whole
    /// again, they wait in `dirty_blocks` instead: the space of a record
    /// replaced within a transaction only comes back after its flush, so
    /// storing each rewrite at once would take new space every time.
    stored_whole: std::collections::HashSet<(u32, i64, u64)>,
    block_seq: u64,
    dirty_block_bytes: u64,
    /// Memory changes may hold before a flush is forced: half the cache
    /// budget, which they share with clean buffers and records.
    dirty_limit: u64,
    /// What the record cache was last told pending data holds.
    reserved_pending: u64,
    /// Current inodes as last read from the B-tree, valid while the
    /// volume set's metadata generation is the one noted: a random read
    /// looks its file's inode up on every request.
    inode_cache: std::cell::RefCell<InodeCache>,
    /// Where current file data lies, under the same rule as
    /// `inode_cache`: a random read inside a record finds the record here
    /// instead of descending the B-tree on every request.
    record_index: std::cell::RefCell<RecordIndex>,
    /// Clock override for tests (microseconds).
    pub clock: Option<u64>,
    /// Whether reads update access times.
    pub atime: AtimeMode,
    /// The mount's master id (`master=<id>`, 0–15, 0 by default as in
    /// DragonFly): every TID it hands out is ≡ id (mod 16), so masters
    /// never make the same TID. `None` is no-mirror mode (`nomirror`,
    /// DragonFly's master id -1): consecutive TIDs and no `mirror_tid`
    /// propagation above the changed node.
    master_id: Option<u8>,
}

/// What `Fs::read_shared` answers: bytes of its own, or a range of a
/// record shared with the record cache.
pub enum ReadData {
    Owned(Vec<u8>),
    Shared(RecordBytes, std::ops::Range<usize>),
}

impl std::ops::Deref for ReadData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ReadData::Owned(v) => v,
            ReadData::Shared(r, range) => &r[range.clone()],
        }
    }
}

/// Inodes the inode cache holds at most (about 200 bytes each).
const INODE_CACHE_MAX: usize = 16384;

/// See `Fs::inode_cache`.
type InodeCache = PerGeneration<std::collections::HashMap<(u32, i64), HammerInodeData>>;

/// A map of what the B-tree says now, valid for one metadata generation
/// (`VolumeSet::generation`, moved on by every change to a buffer): it is
/// emptied when the generation moves on, so no change can leave it stale.
#[derive(Default)]
struct PerGeneration<M> {
    generation: u64,
    map: M,
}

impl<M: Emptied> PerGeneration<M> {
    /// The map, emptied first if it was filled at another generation.
    fn at(&mut self, generation: u64) -> &mut M {
        if self.generation != generation {
            self.map.empty();
            self.generation = generation;
        }
        &mut self.map
    }
}

/// Maps `PerGeneration` can empty (keeping their room).
trait Emptied {
    fn empty(&mut self);
}

impl<K, V, S> Emptied for std::collections::HashMap<K, V, S> {
    fn empty(&mut self) {
        self.clear();
    }
}

impl<K, V> Emptied for BTreeMap<K, V> {
    fn empty(&mut self) {
        self.clear();
    }
}

/// Records `RecordIndex` holds at most (about 100 bytes each).
const RECORD_INDEX_MAX: usize = 65536;

/// See `Fs::record_index`. Each entry is a current data record that is
/// the only visible record overlapping its own byte range (checked by a
/// scan of that range when it is added), keyed by (PFS localization,
/// inode, end offset) as the B-tree keys it. Any B-tree change moves the
/// metadata generation on and empties it.
type RecordIndex = PerGeneration<BTreeMap<(u32, i64, u64), HammerBtreeLeafElm>>;

/// What a block's new record is made from: bytes the caller lends (a
/// block written whole) or a dirty block handed over.
enum BlockContent<'a> {
    Slice(&'a [u8]),
    Owned(&'a mut Option<DataBlock>),
}

/// A copy of `src` (a whole block) in aligned memory.
fn copy_block(src: &[u8]) -> Result<DataBlock> {
    Ok(DataBlock::from_bytes(src).ok_or(FsError::Invalid)?)
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The first and past-the-last keys of the records of the PFS whose
/// localization is `pfs_lo`.
fn pfs_range(pfs_lo: u32) -> (HammerBaseElm, HammerBaseElm) {
    let lo = HammerBaseElm {
        localization: pfs_lo,
        obj_id: HAMMER_MIN_OBJID,
        rec_type: 0,
        key: HAMMER_MIN_KEY,
        create_tid: 1,
        ..Default::default()
    };
    let hi = HammerBaseElm {
        localization: pfs_lo | !HAMMER_LOCALIZE_PSEUDOFS_MASK,
        obj_id: HAMMER_MAX_OBJID,
        rec_type: u16::MAX,
        key: HAMMER_MAX_KEY,
        create_tid: 0,
        ..Default::default()
    };
    (lo, hi)
}

/// File offset → (block start, block size) as the kernel lays files out.
pub fn block_of(off: u64) -> (u64, u64) {
    if off < HAMMER_XDEMARC {
        (off & !HAMMER_BUFMASK, HAMMER_BUFSIZE)
    } else {
        (off & !(HAMMER_XBUFSIZE - 1), HAMMER_XBUFSIZE)
    }
}

/// `n` bytes rounded up to whole 4 KiB pages (a dirty block's length).
fn page_up(n: u64) -> usize {
    n.div_ceil(4096) as usize * 4096
}

impl Fs {
    /// Opens volumes read-write (recovering an unfinished flush first).
    pub fn open(paths: &[String], nohistory: bool) -> Result<Fs> {
        let set = VolumeSet::open_paths(
            paths,
            &OpenOptions {
                writable: true,
                recover: true,
                ..Default::default()
            },
        )?;
        Fs::from_set(set, 0, nohistory)
    }

    pub fn from_set(set: VolumeSet, pfs_id: u32, nohistory: bool) -> Result<Fs> {
        if set.version() < 6 {
            return Err(Error::Invalid(format!(
                "volume version {} can only be opened read-only; upgrade it with `hammer version-upgrade`",
                set.version()
            )));
        }
        let mut fs = Fs {
            set,
            pfs_lo: pfs_to_lo(pfs_id),
            tid: None,
            tid_time: 0,
            next_tid: 0,
            objids: Default::default(),
            inodes: BTreeMap::new(),
            nohistory,
            redo_ops: BTreeMap::new(),
            open_refs: BTreeMap::new(),
            time_index: None,
            dirty_blocks: BTreeMap::new(),
            block_order: Default::default(),
            stored_whole: Default::default(),
            block_seq: 0,
            dirty_block_bytes: 0,
            dirty_limit: 0,
            reserved_pending: 0,
            inode_cache: Default::default(),
            record_index: Default::default(),
            clock: None,
            atime: AtimeMode::Never,
            master_id: Some(0),
        };
        fs.dirty_limit = (fs.set.cache_budget() as u64 / 2).max(MIN_DIRTY_BYTES);
        let redo = fs.set.take_pending_redo();
        if !redo.is_empty() {
            fs.replay_redo(redo)?;
            fs.sync()?;
        }
        Ok(fs)
    }

    /// Recovery stage 2: re-applies the fsynced writes and truncations a
    /// crash left only in REDO records.
    fn replay_redo(&mut self, list: Vec<RedoRecord>) -> Result<()> {
        let cur = self.pfs_lo;
        let r = list.into_iter().try_for_each(|r| {
            // Each record replays into its own PFS.
            self.pfs_lo = r.localization & HAMMER_LOCALIZE_PSEUDOFS_MASK;
            // An object that no longer exists has nothing to replay into.
            if self.inode(r.objid, HAMMER_MAX_TID).is_err() {
                return Ok(());
            }
            if r.flags & HAMMER_REDO_WRITE != 0 {
                self.write(r.objid, r.offset, &r.data)?;
            } else if r.flags & HAMMER_REDO_TRUNC != 0 {
                self.truncate(r.objid, r.offset)?;
            }
            Ok(())
        });
        self.pfs_lo = cur;
        r
    }

    /// Makes one file's data durable. When its inode is on disk and only its
    /// data, size and times changed, this logs REDO records (no metadata
    /// is written — DragonFly's fast fsync); otherwise it syncs everything.
    pub fn fsync(&mut self, ino: i64) -> Result<()> {
        let cur = self.inode(ino, HAMMER_MAX_TID)?;
        let durable = self.reader().inode(ino, self.last_tid())?;
        let Some(durable) = durable else {
            return self.sync().map(|_| ());
        };
        let strip = |mut d: HammerInodeData| {
            d.size = 0;
            d.mtime = 0;
            d.atime = 0;
            d.ctime = 0;
            d
        };
        if cur.obj_type != HAMMER_OBJTYPE_REGFILE || strip(cur) != strip(durable) {
            return self.sync().map(|_| ());
        }
        let ops = self
            .redo_ops
            .remove(&(self.pfs_lo, ino))
            .unwrap_or_default();
        if ops.is_empty() {
            return Ok(());
        }
        let mut records = Vec::new();
        for op in ops {
            match op {
                RedoOp::Write(off, len) => {
                    let data = self.read(ino, off, len as usize, HAMMER_MAX_TID)?;
                    if !data.is_empty() {
                        records.push(RedoRecord {
                            objid: ino,
                            localization: self.pfs_lo,
                            flags: HAMMER_REDO_WRITE,
                            offset: off,
                            mtime: cur.mtime,
                            data,
                        });
                    }
                }
                RedoOp::Trunc(size) => {
                    records.push(RedoRecord {
                        objid: ino,
                        localization: self.pfs_lo,
                        flags: HAMMER_REDO_TRUNC,
                        offset: size,
                        mtime: cur.mtime,
                        data: Vec::new(),
                    });
                }
            }
        }
        // The size a sequence of writes implies may fall short of the real
        // one (a truncate that extended); end with the exact size.
        records.push(RedoRecord {
            objid: ino,
            localization: self.pfs_lo,
            flags: HAMMER_REDO_TRUNC,
            offset: cur.size,
            mtime: cur.mtime,
            data: Vec::new(),
        });
        self.set.log_redo(&records)
    }

    /// The PFS the object ids of later calls belong to (`pfs_id`, 0 to
    /// 65535). One `Fs` serves every PFS of the volumes, as one DragonFly
    /// mount serves the PFSs reached through it: changes to all of them
    /// share one transaction and one flush. Entering a PFS that does not
    /// exist (no descriptor, or a destroyed one) fails with ENOENT; PFS #0
    /// always exists.
    pub fn enter_pfs(&mut self, pfs_id: u32) -> Result<()> {
        let lo = pfs_to_lo(pfs_id);
        if lo == self.pfs_lo {
            return Ok(());
        }
        if pfs_id > PFS_ID_MAX {
            return Err(FsError::Invalid.into());
        }
        if pfs_id != 0 && self.pfs_get(pfs_id)?.is_none() {
            return Err(FsError::NotFound.into());
        }
        self.pfs_lo = lo;
        Ok(())
    }

    /// Whether history is off for the whole filesystem (the `nohistory`
    /// mount option).
    pub fn nohistory(&self) -> bool {
        self.nohistory
    }

    /// Turns volume-wide no-history on or off (`mount -u -o nohistory`);
    /// changes from now on follow it.
    pub fn set_nohistory(&mut self, on: bool) {
        self.nohistory = on;
    }

    /// The master id: `Some(id)` (0–15; 0 is the default) makes every TID
    /// ≡ id (mod 16); `None` is no-mirror mode (consecutive TIDs, no
    /// `mirror_tid` propagation).
    pub fn set_master_id(&mut self, id: Option<u8>) -> Result<()> {
        if id.is_some_and(|m| m as u64 >= MAX_MASTERS) {
            return Err(FsError::Invalid.into());
        }
        self.master_id = id;
        self.set.nomirror = id.is_none();
        Ok(())
    }

    /// The master id ([`Fs::set_master_id`]).
    pub fn master_id(&self) -> Option<u8> {
        self.master_id
    }

    /// The PFS entered last ([`Fs::enter_pfs`]).
    pub fn pfs_id(&self) -> u32 {
        lo_to_pfs(self.pfs_lo)
    }

    pub fn volumes(&self) -> &VolumeSet {
        &self.set
    }

    pub fn into_volumes(self) -> VolumeSet {
        self.set
    }

    fn now(&self) -> u64 {
        self.clock.unwrap_or_else(now_us)
    }

    fn reader(&self) -> FsReader<'_> {
        FsReader::new(&self.set, lo_to_pfs(self.pfs_lo))
    }

    /// The TID the current transaction stamps its records with.
    fn tid(&mut self) -> u64 {
        if let Some(t) = self.tid {
            return t;
        }
        // Above every TID handed out; newfs stamps the root records with
        // 0x100000001 while leaving vol0_next_tid at 0x100000000. A master
        // takes the next TID of its own residue class, as the kernel's
        // hammer_alloc_tid does.
        let t = self.alloc_tids(1);
        self.tid = Some(t);
        self.tid_time = (self.now() / 1_000_000) as u32;
        t
    }

    /// The second a record made or deleted now carries: one per
    /// transaction, as DragonFly stamps every record of a flush with the
    /// flush's time, so that all of a TID's records (an entry made at
    /// `create`, the data and inode written at the flush) agree on when it
    /// happened, and `undo` and `hammer history` print the same date.
    fn stamp(&self) -> u32 {
        match self.tid {
            Some(_) => self.tid_time,
            None => (self.now() / 1_000_000) as u32,
        }
    }

    /// The TID a read as of `asof` really uses: a TID no flush has
    /// committed yet (the current transaction's, or later) sees the newest
    /// committed state, as on DragonFly, never changes still in memory —
    /// those may yet be undone within the transaction.
    pub fn view(&self, asof: u64) -> u64 {
        if asof != HAMMER_MAX_TID && asof > self.last_tid() {
            self.last_tid()
        } else {
            asof
        }
    }

    /// Whether a view as of `asof` may still change (a TID not committed
    /// yet): the FUSE layer does not let the kernel cache such answers.
    pub fn view_unsettled(&self, asof: u64) -> bool {
        asof != HAMMER_MAX_TID && asof > self.last_tid()
    }

    /// The first and past-the-last keys of this PFS's records; a cycle
    /// position `k` (its localization taken within the PFS) replaces one.
    fn pfs_bounds(&self) -> (HammerBaseElm, HammerBaseElm) {
        pfs_range(self.pfs_lo)
    }

    /// A cycle-file position moved into this PFS.
    fn in_pfs(&self, k: HammerBaseElm) -> HammerBaseElm {
        HammerBaseElm {
            localization: self.pfs_lo | (k.localization & !HAMMER_LOCALIZE_PSEUDOFS_MASK),
            ..k
        }
    }

    /// The highest TID that is durable (what as-of reads of "now" see after
    /// a sync).
    pub fn last_tid(&self) -> u64 {
        self.set.header().vol0_next_tid
    }

    fn root(&self) -> u64 {
        self.set.header().vol0_btree_root
    }

    // ----------------------------------------------------------------
    // Reads

    /// An inode as of `asof`, current state including unsynced changes for
    /// `HAMMER_MAX_TID`.
    fn inode(&self, ino: i64, asof: u64) -> Result<HammerInodeData> {
        if asof == HAMMER_MAX_TID {
            if let Some(d) = self.inodes.get(&(self.pfs_lo, ino)) {
                if d.destroy {
                    return Err(FsError::NotFound.into());
                }
                return Ok(d.data);
            }
        }
        if asof != HAMMER_MAX_TID {
            return self
                .reader()
                .inode(ino, asof)?
                .ok_or(Error::Fs(FsError::NotFound));
        }
        let key = (self.pfs_lo, ino);
        let generation = self.set.generation;
        if let Some(d) = self.inode_cache.borrow_mut().at(generation).get(&key) {
            return Ok(*d);
        }
        let d = self
            .reader()
            .inode(ino, asof)?
            .ok_or(Error::Fs(FsError::NotFound))?;
        let mut c = self.inode_cache.borrow_mut();
        let map = c.at(generation);
        if map.len() >= INODE_CACHE_MAX {
            map.clear();
        }
        map.insert(key, d);
        Ok(d)
    }

    pub fn getattr(&self, ino: i64, asof: u64) -> Result<Attr> {
        let asof = self.view(asof);
        let d = self.inode(ino, asof)?;
        Ok(Attr {
            ino,
            obj_type: d.obj_type,
            mode: d.mode,
            uid: d.uid.unix_id(),
            gid: d.gid.unix_id(),
            nlinks: d.nlinks,
            size: d.size,
            rdev: (d.rmajor, d.rminor),
            uflags: d.uflags,
            atime: d.atime,
            mtime: d.mtime,
            ctime: d.ctime,
            parent: d.parent_obj_id,
        })
    }

    pub fn readdir(&self, dir: i64, asof: u64) -> Result<Vec<DirEntry>> {
        let asof = self.view(asof);
        let d = self.inode(dir, asof)?;
        if d.obj_type != HAMMER_OBJTYPE_DIRECTORY {
            return Err(FsError::NotDir.into());
        }
        self.scan_dir(dir, &d, asof)
    }

    /// How many entries of directory `dir` name directories, as of
    /// `asof`: Linux tools expect a directory's link count to be 2 plus
    /// that, where HAMMER's inode keeps 1. An entry's B-tree element
    /// carries its object's type, so no entry's data is read.
    pub fn subdirs(&self, dir: i64, asof: u64) -> Result<u64> {
        let asof = self.view(asof);
        let d = self.inode(dir, asof)?;
        if d.obj_type != HAMMER_OBJTYPE_DIRECTORY {
            return Err(FsError::NotDir.into());
        }
        let entries = self.dir_entries(dir, &d, asof)?;
        Ok(entries
            .iter()
            .filter(|e| e.base.obj_type == HAMMER_OBJTYPE_DIRECTORY)
            .count() as u64)
    }

    /// The B-tree elements of directory `dir`'s visible entries.
    fn dir_entries(
        &self,
        dir: i64,
        d: &HammerInodeData,
        asof: u64,
    ) -> Result<Vec<HammerBtreeLeafElm>> {
        let (from, to) = record_range(
            self.dirent_lo(d),
            dir,
            HAMMER_RECTYPE_DIRENTRY,
            HAMMER_MIN_KEY,
        );
        self.scan_visible(&from, &to, asof)
    }

    fn scan_dir(&self, dir: i64, d: &HammerInodeData, asof: u64) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for e in self.dir_entries(dir, d, asof)? {
            let data = self.record_data(&e)?;
            out.push(dirent_from(&e, &data)?);
        }
        Ok(out)
    }

    pub fn lookup(&self, dir: i64, name: &[u8], asof: u64) -> Result<Option<DirEntry>> {
        let asof = self.view(asof);
        let d = self.inode(dir, asof)?;
        if d.obj_type != HAMMER_OBJTYPE_DIRECTORY {
            return Err(FsError::NotDir.into());
        }
        Ok(self.find_entry(dir, &d, name, asof)?.map(|(e, _)| e))
    }

    /// Reads up to `len` bytes at `off` as of `asof`.
    pub fn read(&self, ino: i64, off: u64, len: usize, asof: u64) -> Result<Vec<u8>> {
        self.read_as(ino, off, len, asof, false)
    }

    /// `read` for a reader that only looks at the bytes, and then notes
    /// the access (`note_access`) when `access` is set. A range inside
    /// one record comes back as a share of the record itself (no copy:
    /// a small read inside a cached 64 KiB record costs a lookup, not a
    /// copy), anything else as `read` gives it. The inode is looked up
    /// once for both the read and the access time.
    pub fn read_shared(
        &mut self,
        ino: i64,
        off: u64,
        len: usize,
        asof: u64,
        access: bool,
    ) -> Result<ReadData> {
        let asof = self.view(asof);
        let d = self.inode(ino, asof)?;
        let out = self.read_one_record(ino, &d, off, len, asof)?;
        let out = match out {
            Some(r) => r,
            None => ReadData::Owned(self.read_as(ino, off, len, asof, false)?),
        };
        if access && asof == HAMMER_MAX_TID {
            // The bytes are read: an access time that cannot be noted
            // (say, a full volume) does not fail the read.
            let _ = self.note_access_of(ino, &d);
        }
        Ok(out)
    }

    /// The share of one record holding all of `off..off+len` (clipped at
    /// the end of the file), if one does and nothing written since the
    /// flush lies over it.
    fn read_one_record(
        &self,
        ino: i64,
        d: &HammerInodeData,
        off: u64,
        len: usize,
        asof: u64,
    ) -> Result<Option<ReadData>> {
        if !matches!(d.obj_type, HAMMER_OBJTYPE_REGFILE | HAMMER_OBJTYPE_DBFILE)
            || off >= d.size
            || len == 0
        {
            return Ok(None);
        }
        let end = d.size.min(off.saturating_add(len as u64));
        if asof == HAMMER_MAX_TID
            && self
                .dirty_blocks
                .range((self.pfs_lo, ino, block_of(off).0)..(self.pfs_lo, ino, end))
                .next()
                .is_some()
        {
            return Ok(None);
        }
        let (e, start) = match self.indexed_record(ino, off, end, asof) {
            Some(found) => found,
            None => match self.only_record(ino, off, end, asof)? {
                Some((e, start)) => {
                    if asof == HAMMER_MAX_TID {
                        self.index_record(ino, &e, start)?;
                    }
                    (e, start)
                }
                None => return Ok(None),
            },
        };
        let data = self.set.file_data(&e)?;
        let (a, b) = ((off - start) as usize, (end - start) as usize);
        if b > data.len() {
            return Ok(None);
        }
        Ok(Some(ReadData::Shared(data, a..b)))
    }

    /// The one visible data record overlapping `off..end`, and where it
    /// starts, if exactly one does and it holds all of that range.
    fn only_record(
        &self,
        ino: i64,
        off: u64,
        end: u64,
        asof: u64,
    ) -> Result<Option<(HammerBtreeLeafElm, u64)>> {
        let (from, to) = self.data_keys(ino, off, end);
        let mut covering = None;
        for e in self.scan_visible(&from, &to, asof)? {
            let rlen = e.data_len.max(0) as u64;
            let start = (e.base.key as u64).saturating_sub(rlen);
            if start >= end || start + rlen <= off {
                continue;
            }
            if covering.is_some() || start > off || start + rlen < end {
                return Ok(None);
            }
            covering = Some((e, start));
        }
        Ok(covering)
    }

    /// The record `record_index` knows to hold all of `off..end`.
    fn indexed_record(
        &self,
        ino: i64,
        off: u64,
        end: u64,
        asof: u64,
    ) -> Option<(HammerBtreeLeafElm, u64)> {
        if asof != HAMMER_MAX_TID {
            return None;
        }
        let mut idx = self.record_index.borrow_mut();
        let map = idx.at(self.set.generation);
        let (&(lo, i, key_end), e) = map.range((self.pfs_lo, ino, off + 1)..).next()?;
        let start = key_end.saturating_sub(e.data_len.max(0) as u64);
        (lo == self.pfs_lo && i == ino && start <= off && end <= key_end).then_some((*e, start))
    }

    /// Adds `e` (found holding a read's range) to `record_index` once a
    /// scan of its own whole range shows no other record overlaps it:
    /// only then may any read inside it take it without a scan.
    fn index_record(&self, ino: i64, e: &HammerBtreeLeafElm, start: u64) -> Result<()> {
        let end = start + e.data_len.max(0) as u64;
        match self.only_record(ino, start, end, HAMMER_MAX_TID)? {
            Some((only, _)) if only.data_offset == e.data_offset && only.base == e.base => {}
            _ => return Ok(()),
        }
        let mut idx = self.record_index.borrow_mut();
        let map = idx.at(self.set.generation);
        if map.len() >= RECORD_INDEX_MAX {
            map.clear();
        }
        map.insert((self.pfs_lo, ino, end), *e);
        Ok(())
    }

    /// `read` for the start of a block rewritten in part: the records it
    /// reads are about to be replaced, so they leave the record cache.
    fn read_as(&self, ino: i64, off: u64, len: usize, asof: u64, rewrite: bool) -> Result<Vec<u8>> {
        let asof = self.view(asof);
        let d = self.inode(ino, asof)?;
        match d.obj_type {
            HAMMER_OBJTYPE_REGFILE | HAMMER_OBJTYPE_DBFILE => {}
            HAMMER_OBJTYPE_DIRECTORY => return Err(FsError::IsDir.into()),
            _ => return Err(FsError::Invalid.into()),
        }
        if off >= d.size {
            return Ok(Vec::new());
        }
        let end = d.size.min(off.saturating_add(len as u64));
        let mut out = vec![0u8; (end - off) as usize];
        let (from, to) = self.data_keys(ino, off, end);
        for e in self.scan_visible(&from, &to, asof)? {
            let len = e.data_len.max(0) as u64;
            let start = (e.base.key as u64).saturating_sub(len);
            if start >= end || start + len <= off {
                continue;
            }
            let a = start.max(off);
            let b = (start + len).min(end);
            if asof == HAMMER_MAX_TID {
                // A block rewritten since the last flush holds every byte of
                // this range (it is laid over the result below): the record
                // under it need not be read at all.
                let (bs, bsize) = block_of(a);
                if b <= bs + bsize && self.dirty_blocks.contains_key(&(self.pfs_lo, ino, bs)) {
                    continue;
                }
            }
            if !rewrite && a == start && b == start + len {
                // The whole record is wanted: it goes straight into the
                // answer (see `file_data_into`).
                self.set
                    .file_data_into(&e, &mut out[(a - off) as usize..(b - off) as usize])?;
                continue;
            }
            let data = if rewrite {
                self.set.file_data_for_rewrite(&e)?
            } else {
                self.set.file_data(&e)?
            };
            out[(a - off) as usize..(b - off) as usize]
                .copy_from_slice(&data[(a - start) as usize..(b - start) as usize]);
        }
        if asof == HAMMER_MAX_TID {
            // Blocks written since the last flush hold the current bytes
            // (zeros past a block's pages: see `dirty_blocks`).
            let first = block_of(off).0;
            for (&(_, _, bstart), block) in self
                .dirty_blocks
                .range((self.pfs_lo, ino, first)..(self.pfs_lo, ino, end))
            {
                let a = bstart.max(off);
                let held = (bstart + block.len() as u64).min(end);
                if a < held {
                    out[(a - off) as usize..(held - off) as usize]
                        .copy_from_slice(&block[(a - bstart) as usize..(held - bstart) as usize]);
                }
                let b = (bstart + block_of(bstart).1).min(end);
                let z = a.max(held);
                if z < b {
                    out[(z - off) as usize..(b - off) as usize].fill(0);
                }
            }
        }
        Ok(out)
    }

    pub fn readlink(&self, ino: i64, asof: u64) -> Result<Vec<u8>> {
        let asof = self.view(asof);
        let d = self.inode(ino, asof)?;
        if d.obj_type != HAMMER_OBJTYPE_SOFTLINK {
            return Err(FsError::Invalid.into());
        }
        let len = d.size as usize;
        if len <= HAMMER_INODE_BASESYMLEN {
            let text = &d.ext[..len];
            // A PFS link (`@@PFS<5 digits>`, what `pfs-master` makes) read
            // in PFS #0 now shows where the PFS is reached, as the kernel
            // shows it: `@@-1:<id>` for a master, `@@0x<sync_end_tid>:<id>`
            // for a slave; a PFS that is gone leaves the text as it is.
            if self.pfs_lo == 0 && asof == HAMMER_MAX_TID {
                if let Some(t) = self.pfs_link_target(text)? {
                    return Ok(t);
                }
            }
            return Ok(text.to_vec());
        }
        let lo = self.pfs_lo | HAMMER_LOCALIZE_MISC;
        let e = self
            .tree_lookup(lo, ino, HAMMER_RECTYPE_FIX, HAMMER_FIXKEY_SYMLINK, asof)?
            .ok_or_else(|| Error::corrupt("btree", "long symlink without its FIX record", 0))?;
        self.record_data(&e)
    }

    fn pfs_link_target(&self, text: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(digits) = text.strip_prefix(b"@@PFS") else {
            return Ok(None);
        };
        if digits.len() != 5 || !digits.iter().all(u8::is_ascii_digit) {
            return Ok(None);
        }
        let id: u32 = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(self.pfs_get(id)?.map(|d| {
            if d.mirror_flags & HAMMER_PFSD_SLAVE != 0 {
                format!("@@0x{:016x}:{id:05}", { d.sync_end_tid })
            } else {
                format!("@@-1:{id:05}")
            }
            .into_bytes()
        }))
    }

    /// Notes a read of `ino` (its data, or a directory's entries): its
    /// access time moves as [`Fs::atime`] says.
    pub fn note_access(&mut self, ino: i64) -> Result<()> {
        if self.atime == AtimeMode::Never {
            return Ok(());
        }
        let d = self.inode(ino, HAMMER_MAX_TID)?;
        self.note_access_of(ino, &d)
    }

    /// `note_access` with the current inode already in hand.
    fn note_access_of(&mut self, ino: i64, d: &HammerInodeData) -> Result<()> {
        if self.atime == AtimeMode::Never {
            return Ok(());
        }
        let now = self.now();
        const DAY_US: u64 = 86_400 * 1_000_000;
        let due = match self.atime {
            AtimeMode::Never => false,
            AtimeMode::Always => d.atime != now,
            AtimeMode::Relative => {
                d.atime <= d.mtime || d.atime <= d.ctime || now.saturating_sub(d.atime) >= DAY_US
            }
        };
        if due {
            self.dirty(ino)?.atime = now;
        }
        Ok(())
    }

    /// Every TID at which the object's inode changed (its history).
    pub fn history(&self, ino: i64) -> Result<Vec<u64>> {
        let lo = self.pfs_lo | HAMMER_LOCALIZE_INODE;
        let mut set = std::collections::BTreeSet::new();
        for e in self.versions(lo, ino, HAMMER_RECTYPE_INODE, 0)? {
            set.insert(e.base.create_tid);
            if e.base.delete_tid != 0 {
                set.insert(e.base.delete_tid);
            }
        }
        Ok(set.into_iter().collect())
    }

    // ----------------------------------------------------------------
    // B-tree helpers

    fn ro_tree<T>(&self, f: impl FnOnce(&BTree<ReadOnlyStore<'_>>) -> Result<T>) -> Result<T> {
        let mut store = ReadOnlyStore(&self.set);
        let t = BTree::new(&mut store, self.root());
        f(&t)
    }

    fn scan_visible(
        &self,
        from: &HammerBaseElm,
        to: &HammerBaseElm,
        asof: u64,
    ) -> Result<Vec<HammerBtreeLeafElm>> {
        self.ro_tree(|t| t.visible(from, to, asof))
    }

    fn versions(&self, lo: u32, obj: i64, rt: u16, key: i64) -> Result<Vec<HammerBtreeLeafElm>> {
        self.ro_tree(|t| t.versions(lo, obj, rt, key))
    }

    fn tree_lookup(
        &self,
        lo: u32,
        obj: i64,
        rt: u16,
        key: i64,
        asof: u64,
    ) -> Result<Option<HammerBtreeLeafElm>> {
        self.ro_tree(|t| t.lookup(lo, obj, rt, key, asof))
    }

    fn record_data(&self, e: &HammerBtreeLeafElm) -> Result<Vec<u8>> {
        self.set.record_data(e)
    }

    fn dirent_lo(&self, dir: &HammerInodeData) -> u32 {
        self.pfs_lo
            | if dir.cap_flags & HAMMER_INODE_CAP_DIR_LOCAL_INO != 0 {
                HAMMER_LOCALIZE_INODE
            } else {
                HAMMER_LOCALIZE_MISC
            }
    }

    /// The visible entry named `name`, and its leaf.
    fn find_entry(
        &self,
        dir: i64,
        d: &HammerInodeData,
        name: &[u8],
        asof: u64,
    ) -> Result<Option<(DirEntry, HammerBtreeLeafElm)>> {
        let lo = self.dirent_lo(d);
        let (key, iter) = dirhash(d.cap_flags, name);
        let from = HammerBaseElm {
            localization: lo,
            obj_id: dir,
            rec_type: HAMMER_RECTYPE_DIRENTRY,
            key,
            create_tid: 1,
            ..Default::default()
        };
        let to = HammerBaseElm {
            key: key.saturating_add(iter).saturating_add(1),
            ..from
        };
        for e in self.scan_visible(&from, &to, asof)? {
            if e.data_len as usize != HAMMER_ENTRY_NAME_OFF + name.len() {
                continue;
            }
            let data = self.record_data(&e)?;
            if &data[HAMMER_ENTRY_NAME_OFF..] == name {
                return Ok(Some((dirent_from(&e, &data)?, e)));
            }
        }
        Ok(None)
    }

    fn history_kept(&self, d: &HammerInodeData) -> bool {
        !self.nohistory && d.uflags & (UF_NOHISTORY | SF_NOHISTORY) == 0
    }

    fn leaf(&self, lo: u32, obj: i64, rt: u16, key: i64, ot: u8, tid: u64) -> HammerBtreeLeafElm {
        HammerBtreeLeafElm {
            base: HammerBaseElm {
                obj_id: obj,
                key,
                create_tid: tid,
                delete_tid: 0,
                rec_type: rt,
                obj_type: ot,
                btype: HAMMER_BTREE_TYPE_RECORD,
                localization: lo,
            },
            create_ts: self.stamp(),
            ..Default::default()
        }
    }

    /// Stores record data in its zone and inserts the leaf.
    fn insert_record(&mut self, e: HammerBtreeLeafElm, data: &[u8]) -> Result<()> {
        let e = self.store_data(e, data)?;
        let root = self.root();
        BTree::new(&mut self.set, root).insert(&e)
    }

    /// Allocates and writes a record's data, filling in the leaf's data
    /// fields; the tree is not touched yet, so running out of space here
    /// changes nothing.
    fn store_data(&mut self, mut e: HammerBtreeLeafElm, data: &[u8]) -> Result<HammerBtreeLeafElm> {
        if !data.is_empty() {
            let zone = match e.base.rec_type {
                HAMMER_RECTYPE_DATA | HAMMER_RECTYPE_DB => data_zone_index(data.len() as u64),
                _ => HAMMER_ZONE_META_INDEX,
            };
            let off = self.set.alloc(zone, data.len() as u64)?;
            self.set.write_fresh(off, data)?;
            e.data_offset = off;
            e.data_len = data.len() as i32;
            e.data_crc = leaf_data_crc(self.set.crc_kind(), e.base.rec_type, data);
        }
        Ok(e)
    }

    /// As `store_data` for a whole aligned block, which is handed to the
    /// disk's write-behind itself instead of a copy. It leaves `slot` only
    /// once queued: on an error (no space) the caller still holds it.
    fn store_block(
        &mut self,
        mut e: HammerBtreeLeafElm,
        slot: &mut Option<DataBlock>,
    ) -> Result<HammerBtreeLeafElm> {
        let Some(b) = slot.as_ref() else {
            return Err(FsError::Invalid.into());
        };
        let zone = data_zone_index(b.len() as u64);
        let off = self.set.alloc(zone, b.len() as u64)?;
        e.data_offset = off;
        e.data_len = b.len() as i32;
        e.data_crc = leaf_data_crc(self.set.crc_kind(), e.base.rec_type, b);
        self.set.write_fresh_block(off, slot)?;
        Ok(e)
    }

    /// Ends a record's life at this transaction: removed outright if it was
    /// made in this transaction or history is off, else marked deleted.
    fn retire(&mut self, e: &HammerBtreeLeafElm, keep_history: bool) -> Result<()> {
        let tid = self.tid();
        let root = self.root();
        if e.base.create_tid == tid || !keep_history {
            BTree::new(&mut self.set, root).remove(&e.base)?;
            if e.data_len > 0 {
                self.set.free(e.data_offset, e.data_len as u64)?;
            }
        } else {
            let mut d = *e;
            d.base.delete_tid = tid;
            d.delete_ts = self.stamp();
            BTree::new(&mut self.set, root).update(&d)?;
        }
        Ok(())
    }

    fn dirty(&mut self, ino: i64) -> Result<&mut HammerInodeData> {
        if !self.inodes.contains_key(&(self.pfs_lo, ino)) {
            let d = self
                .reader()
                .inode(ino, HAMMER_MAX_TID)?
                .ok_or(Error::Fs(FsError::NotFound))?;
            self.inodes.insert(
                (self.pfs_lo, ino),
                DirtyInode {
                    data: d,
                    destroy: false,
                },
            );
        }
        let di = self.inodes.get_mut(&(self.pfs_lo, ino)).expect("inserted");
        if di.destroy {
            return Err(FsError::NotFound.into());
        }
        Ok(&mut di.data)
    }

    // ----------------------------------------------------------------
    // Changes

    fn check_name(name: &[u8]) -> Result<()> {
        if name.is_empty()
            || name == b"."
            || name == b".."
            || name.contains(&b'/')
            || name.contains(&0)
        {
            return Err(FsError::Invalid.into());
        }
        if name.len() > NAME_MAX {
            return Err(FsError::NameTooLong.into());
        }
        Ok(())
    }

    fn dir_inode(&self, dir: i64) -> Result<HammerInodeData> {
        let d = self.inode(dir, HAMMER_MAX_TID)?;
        if d.obj_type != HAMMER_OBJTYPE_DIRECTORY {
            return Err(FsError::NotDir.into());
        }
        Ok(d)
    }

    fn add_entry(&mut self, dir: i64, name: &[u8], target: i64, obj_type: u8) -> Result<()> {
        let d = self.dir_inode(dir)?;
        let lo = self.dirent_lo(&d);
        let (base, max_iter) = dirhash(d.cap_flags, name);
        let mut key = base;
        while self
            .tree_lookup(lo, dir, HAMMER_RECTYPE_DIRENTRY, key, HAMMER_MAX_TID)?
            .is_some()
        {
            if key - base >= max_iter {
                return Err(FsError::NoSpace.into());
            }
            key += 1;
        }
        let tid = self.tid();
        let mut data = HammerDirentryHead {
            obj_id: target,
            localization: self.pfs_lo,
            reserved01: 0,
        }
        .as_bytes()
        .to_vec();
        data.extend_from_slice(name);
        let e = self.leaf(lo, dir, HAMMER_RECTYPE_DIRENTRY, key, obj_type, tid);
        self.insert_record(e, &data)?;
        let now = self.now();
        let di = self.dirty(dir)?;
        di.mtime = now;
        di.ctime = now;
        Ok(())
    }

    fn remove_entry(&mut self, dir: i64, name: &[u8]) -> Result<DirEntry> {
        let d = self.dir_inode(dir)?;
        let (ent, leaf) = self
            .find_entry(dir, &d, name, HAMMER_MAX_TID)?
            .ok_or(Error::Fs(FsError::NotFound))?;
        let keep = self.history_kept(&d);
        self.retire(&leaf, keep)?;
        let now = self.now();
        let di = self.dirty(dir)?;
        di.mtime = now;
        di.ctime = now;
        Ok(ent)
    }

    /// Creates an object named `name` in `dir`.
    pub fn create(
        &mut self,
        dir: i64,
        name: &[u8],
        what: NewObject<'_>,
        mode: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Attr> {
        self.maybe_sync()?;
        Self::check_name(name)?;
        let parent = self.dir_inode(dir)?;
        if self
            .find_entry(dir, &parent, name, HAMMER_MAX_TID)?
            .is_some()
        {
            return Err(FsError::Exists.into());
        }
        let tid = self.tid();
        let ino = self.alloc_objid(dir, dirhash(parent.cap_flags, name).0);
        let now = self.now();
        let version = self.set.version();
        let mut d = HammerInodeData {
            version: HAMMER_INODE_DATA_VERSION,
            mode: mode & 0o7777,
            ctime: now,
            mtime: now,
            atime: now,
            parent_obj_id: dir,
            uid: HammerUuid::from_unix_id(uid),
            gid: HammerUuid::from_unix_id(gid),
            nlinks: 1,
            // No-history is inherited from the directory, as the kernel
            // does, so flagging a directory covers what is made in it.
            uflags: parent.uflags & (UF_NOHISTORY | SF_NOHISTORY),
            ..Default::default()
        };
        d.obj_type = match what {
            NewObject::File => HAMMER_OBJTYPE_REGFILE,
            NewObject::Dir => {
                d.cap_flags = if version >= 6 {
                    HAMMER_INODE_CAP_DIRHASH_ALG1 | HAMMER_INODE_CAP_DIR_LOCAL_INO
                } else {
                    HAMMER_INODE_CAP_DIR_LOCAL_INO
                };
                HAMMER_OBJTYPE_DIRECTORY
            }
            NewObject::Symlink(target) => {
                if target.is_empty() || target.len() > 4095 {
                    return Err(FsError::Invalid.into());
                }
                d.size = target.len() as u64;
                if target.len() <= HAMMER_INODE_BASESYMLEN {
                    d.ext[..target.len()].copy_from_slice(target);
                } else {
                    let e = self.leaf(
                        self.pfs_lo | HAMMER_LOCALIZE_MISC,
                        ino,
                        HAMMER_RECTYPE_FIX,
                        HAMMER_FIXKEY_SYMLINK,
                        HAMMER_OBJTYPE_SOFTLINK,
                        tid,
                    );
                    self.insert_record(e, target)?;
                }
                HAMMER_OBJTYPE_SOFTLINK
            }
            NewObject::Fifo => HAMMER_OBJTYPE_FIFO,
            NewObject::Socket => HAMMER_OBJTYPE_SOCKET,
            NewObject::CharDev(ma, mi) => {
                d.rmajor = ma;
                d.rminor = mi;
                HAMMER_OBJTYPE_CDEV
            }
            NewObject::BlockDev(ma, mi) => {
                d.rmajor = ma;
                d.rminor = mi;
                HAMMER_OBJTYPE_BDEV
            }
        };
        self.add_entry(dir, name, ino, d.obj_type)?;
        self.inodes.insert(
            (self.pfs_lo, ino),
            DirtyInode {
                data: d,
                destroy: false,
            },
        );
        self.set.header_mut().vol0_stat_inodes += 1;
        self.getattr(ino, HAMMER_MAX_TID)
    }

    /// A new name for an existing non-directory.
    pub fn link(&mut self, ino: i64, dir: i64, name: &[u8]) -> Result<Attr> {
        self.maybe_sync()?;
        Self::check_name(name)?;
        let d = self.inode(ino, HAMMER_MAX_TID)?;
        if d.obj_type == HAMMER_OBJTYPE_DIRECTORY {
            return Err(Error::Fs(FsError::IsDir));
        }
        let parent = self.dir_inode(dir)?;
        if self
            .find_entry(dir, &parent, name, HAMMER_MAX_TID)?
            .is_some()
        {
            return Err(FsError::Exists.into());
        }
        self.add_entry(dir, name, ino, d.obj_type)?;
        let now = self.now();
        let di = self.dirty(ino)?;
        di.nlinks += 1;
        di.ctime = now;
        self.getattr(ino, HAMMER_MAX_TID)
    }

    fn drop_link(&mut self, ino: i64) -> Result<()> {
        let now = self.now();
        let di = self.dirty(ino)?;
        di.nlinks = di.nlinks.saturating_sub(1);
        di.ctime = now;
        if di.nlinks == 0 && !self.open_refs.contains_key(&(self.pfs_lo, ino)) {
            self.inodes
                .get_mut(&(self.pfs_lo, ino))
                .expect("dirty")
                .destroy = true;
        }
        Ok(())
    }

    /// Notes an open handle on `ino` (see `release`).
    pub fn open_ref(&mut self, ino: i64) -> Result<()> {
        self.inode(ino, HAMMER_MAX_TID)?;
        *self.open_refs.entry((self.pfs_lo, ino)).or_default() += 1;
        Ok(())
    }

    /// Drops an open handle; the last close of an object without links
    /// destroys it (at the next flush).
    pub fn release(&mut self, ino: i64) -> Result<()> {
        self.release_n(ino, 1)
    }

    /// Drops `k` references (handles, or the mount's lookup references).
    pub fn release_n(&mut self, ino: i64, k: u64) -> Result<()> {
        let Some(n) = self.open_refs.get_mut(&(self.pfs_lo, ino)) else {
            return Ok(());
        };
        *n = n.saturating_sub(k.min(u32::MAX as u64) as u32);
        if *n > 0 {
            return Ok(());
        }
        self.open_refs.remove(&(self.pfs_lo, ino));
        match self.inode(ino, HAMMER_MAX_TID) {
            Ok(d) if d.nlinks == 0 => {
                self.dirty(ino)?;
                self.inodes
                    .get_mut(&(self.pfs_lo, ino))
                    .expect("dirty")
                    .destroy = true;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Closes every handle (unmount): unlinked objects go now.
    pub fn release_all(&mut self) -> Result<()> {
        let open: Vec<(u32, i64)> = self.open_refs.keys().copied().collect();
        let cur = self.pfs_lo;
        let r = open.into_iter().try_for_each(|(lo, ino)| {
            self.pfs_lo = lo;
            self.open_refs.insert((lo, ino), 1);
            self.release(ino)
        });
        self.pfs_lo = cur;
        r
    }

    /// Removes a non-directory name.
    pub fn unlink(&mut self, dir: i64, name: &[u8]) -> Result<()> {
        self.maybe_sync()?;
        let parent = self.dir_inode(dir)?;
        let (ent, _) = self
            .find_entry(dir, &parent, name, HAMMER_MAX_TID)?
            .ok_or(Error::Fs(FsError::NotFound))?;
        if ent.obj_type == HAMMER_OBJTYPE_DIRECTORY {
            return Err(FsError::IsDir.into());
        }
        self.remove_entry(dir, name)?;
        self.drop_link(ent.obj_id)
    }

    /// Removes an empty directory.
    pub fn rmdir(&mut self, dir: i64, name: &[u8]) -> Result<()> {
        self.maybe_sync()?;
        let parent = self.dir_inode(dir)?;
        let (ent, _) = self
            .find_entry(dir, &parent, name, HAMMER_MAX_TID)?
            .ok_or(Error::Fs(FsError::NotFound))?;
        if ent.obj_type != HAMMER_OBJTYPE_DIRECTORY {
            return Err(FsError::NotDir.into());
        }
        if !self.readdir(ent.obj_id, HAMMER_MAX_TID)?.is_empty() {
            return Err(FsError::NotEmpty.into());
        }
        self.remove_entry(dir, name)?;
        self.drop_link(ent.obj_id)
    }

    /// Renames, replacing a target of a compatible type.
    pub fn rename(&mut self, sdir: i64, sname: &[u8], ddir: i64, dname: &[u8]) -> Result<()> {
        self.maybe_sync()?;
        Self::check_name(dname)?;
        let sd = self.dir_inode(sdir)?;
        let (src, _) = self
            .find_entry(sdir, &sd, sname, HAMMER_MAX_TID)?
            .ok_or(Error::Fs(FsError::NotFound))?;
        let dd = self.dir_inode(ddir)?;
        if src.obj_type == HAMMER_OBJTYPE_DIRECTORY {
            // A directory cannot move below itself.
            let mut p = ddir;
            for _ in 0..4096 {
                if p == src.obj_id {
                    return Err(FsError::Invalid.into());
                }
                if p == HAMMER_OBJID_ROOT || p == 0 {
                    break;
                }
                p = self.inode(p, HAMMER_MAX_TID)?.parent_obj_id;
            }
        }
        if let Some((dst, _)) = self.find_entry(ddir, &dd, dname, HAMMER_MAX_TID)? {
            if dst.obj_id == src.obj_id {
                return Ok(());
            }
            match (
                src.obj_type == HAMMER_OBJTYPE_DIRECTORY,
                dst.obj_type == HAMMER_OBJTYPE_DIRECTORY,
            ) {
                (true, false) => return Err(FsError::NotDir.into()),
                (false, true) => return Err(FsError::IsDir.into()),
                (true, true) if !self.readdir(dst.obj_id, HAMMER_MAX_TID)?.is_empty() => {
                    return Err(FsError::NotEmpty.into())
                }
                _ => {}
            }
            self.remove_entry(ddir, dname)?;
            self.drop_link(dst.obj_id)?;
        }
        self.remove_entry(sdir, sname)?;
        self.add_entry(ddir, dname, src.obj_id, src.obj_type)?;
        let now = self.now();
        let di = self.dirty(src.obj_id)?;
        di.ctime = now;
        if di.obj_type == HAMMER_OBJTYPE_DIRECTORY {
            di.parent_obj_id = ddir;
        }
        Ok(())
    }

    /// Changes attributes; a size change truncates or extends.
    pub fn setattr(&mut self, ino: i64, a: &SetAttr) -> Result<Attr> {
        self.maybe_sync()?;
        if let Some(size) = a.size {
            self.truncate(ino, size)?;
        }
        let now = self.now();
        let di = self.dirty(ino)?;
        if let Some(m) = a.mode {
            di.mode = m & 0o7777;
        }
        if let Some(u) = a.uid {
            di.uid = HammerUuid::from_unix_id(u);
        }
        if let Some(g) = a.gid {
            di.gid = HammerUuid::from_unix_id(g);
        }
        if let Some(t) = a.atime {
            di.atime = t;
        }
        if let Some(t) = a.mtime {
            di.mtime = t;
        }
        if let Some(f) = a.uflags {
            di.uflags = f;
        }
        di.ctime = now;
        self.getattr(ino, HAMMER_MAX_TID)
    }

    /// The visible DATA records of `ino` that overlap `[from, to)`.
    fn data_records(&self, ino: i64, from: u64, to: u64) -> Result<Vec<HammerBtreeLeafElm>> {
        let (a, b) = self.data_keys(ino, from, to);
        Ok(self
            .scan_visible(&a, &b, HAMMER_MAX_TID)?
            .into_iter()
            .filter(|e| {
                let start = (e.base.key as u64).saturating_sub(e.data_len.max(0) as u64);
                start < to && (e.base.key as u64) > from
            })
            .collect())
    }

    /// The B-tree range holding every data record of `ino` that may
    /// overlap bytes `from..to`: records are keyed by their end offset, so
    /// the first that can cover `from` has a key above it, and none longer
    /// than 64 KiB starts below `to` with a key past `to + 64 KiB`.
    fn data_keys(&self, ino: i64, from: u64, to: u64) -> (HammerBaseElm, HammerBaseElm) {
        let a = HammerBaseElm {
            localization: self.pfs_lo | HAMMER_LOCALIZE_MISC,
            obj_id: ino,
            rec_type: HAMMER_RECTYPE_DATA,
            key: from.saturating_add(1).min(i64::MAX as u64) as i64,
            create_tid: 1,
            ..Default::default()
        };
        let b = HammerBaseElm {
            key: to.saturating_add(HAMMER_XBUFSIZE).min(i64::MAX as u64) as i64,
            ..a
        };
        (a, b)
    }

    /// What a block holds now, as the start of its rewrite in part: when
    /// one record is exactly the block (the usual case), a single copy of
    /// it, taken out of the record cache; otherwise a read of the range.
    /// Bytes past the end of the file read as zeros either way.
    fn block_for_rewrite(&self, ino: i64, bstart: u64, bsize: u64) -> Result<DataBlock> {
        let size = self.inode(ino, HAMMER_MAX_TID)?.size;
        if let [e] = self.data_records(ino, bstart, bstart + bsize)?.as_slice() {
            let len = e.data_len.max(0) as u64;
            if len == bsize && e.base.key as u64 == bstart + bsize && bstart < size {
                let mut b = match self.set.file_data_for_rewrite(e)? {
                    // The block this one was flushed from, out of the
                    // record cache and held nowhere else: it is reused as
                    // it is, without a copy.
                    RecordBytes::Block(arc, n) if n == bsize as usize => {
                        match std::sync::Arc::try_unwrap(arc) {
                            Ok(b) => b,
                            Err(arc) => copy_block(&arc.bytes()[..n])?,
                        }
                    }
                    r => copy_block(&r)?,
                };
                if bstart + bsize > size {
                    b[(size - bstart) as usize..].fill(0);
                }
                return Ok(b);
            }
        }
        let mut b = DataBlock::zeroed(bsize as usize).ok_or(FsError::Invalid)?;
        let v = self.read_as(ino, bstart, bsize as usize, HAMMER_MAX_TID, true)?;
        let n = v.len().min(b.len());
        b[..n].copy_from_slice(&v[..n]);
        Ok(b)
    }

    /// Rewrites the block holding `block_off` with `content` (which is the
    /// whole block, `bsize` bytes), replacing whatever record covered it.
    fn put_block(
        &mut self,
        ino: i64,
        block_off: u64,
        bsize: u64,
        content: BlockContent<'_>,
        file_size: u64,
    ) -> Result<()> {
        let keep = {
            let d = self.inode(ino, HAMMER_MAX_TID)?;
            self.history_kept(&d)
        };
        // A file of at most half a buffer keeps one small record.
        let len = if block_off == 0 && file_size <= HAMMER_HBUFSIZE {
            data_doalign(file_size.max(1))
        } else {
            bsize
        };
        let tid = self.tid();
        let e = self.leaf(
            self.pfs_lo | HAMMER_LOCALIZE_MISC,
            ino,
            HAMMER_RECTYPE_DATA,
            (block_off + len) as i64,
            HAMMER_OBJTYPE_REGFILE,
            tid,
        );
        // The new data first: if there is no room, the old block stays.
        let e = match content {
            BlockContent::Slice(b) => self.store_data(e, &b[..len as usize])?,
            BlockContent::Owned(slot) => {
                let b = slot.as_mut().ok_or(FsError::Invalid)?;
                // A dirty block may stop short of the block's end (zeros
                // past its pages): the record gets the zeros.
                b.grow_to(page_up(len));
                if b.len() as u64 == len {
                    self.store_block(e, slot)?
                } else {
                    let e = self.store_data(e, &b[..len as usize])?;
                    *slot = None;
                    e
                }
            }
        };
        for old in self.data_records(ino, block_off, block_off + bsize)? {
            self.retire(&old, keep)?;
        }
        let root = self.root();
        BTree::new(&mut self.set, root).insert(&e)
    }

    /// Writes `data` at `off`; returns the bytes written.
    pub fn write(&mut self, ino: i64, off: u64, data: &[u8]) -> Result<usize> {
        self.maybe_sync()?;
        let d = self.inode(ino, HAMMER_MAX_TID)?;
        match d.obj_type {
            HAMMER_OBJTYPE_REGFILE => {}
            HAMMER_OBJTYPE_DIRECTORY => return Err(FsError::IsDir.into()),
            _ => return Err(FsError::Invalid.into()),
        }
        let end = off
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(Error::Fs(FsError::TooBig))?;
        let new_size = d.size.max(end);
        let mut pos = off;
        while pos < end {
            let (bstart, bsize) = block_of(pos);
            let n = (bstart + bsize).min(end) - pos;
            let src = &data[(pos - off) as usize..(pos - off + n) as usize];
            let key = (self.pfs_lo, ino, bstart);
            if !self.dirty_blocks.contains_key(&key) {
                // The block becomes a new record at the flush: make sure the
                // space will be there, so the flush cannot run out of it.
                if self.dirty_block_bytes + bsize > self.data_space() {
                    if pos == off {
                        return Err(FsError::NoSpace.into());
                    }
                    // Keep what fit; report the short write.
                    let written = pos - off;
                    let di = self.dirty(ino)?;
                    di.size = di.size.max(pos);
                    return Ok(written as usize);
                }
                let whole = pos == bstart && end >= bstart + bsize;
                if whole && self.stored_whole.insert(key) {
                    // A block written whole becomes its record now: its
                    // data goes to the disk's write-behind while the caller
                    // goes on, instead of waiting in memory for the flush
                    // (the record itself is in the tree's dirty buffers,
                    // part of the same transaction as before).
                    match self.put_block(ino, bstart, bsize, BlockContent::Slice(src), new_size) {
                        Ok(()) => {}
                        Err(Error::Fs(FsError::NoSpace)) if pos > off => {
                            // Keep what fit; report the short write.
                            let di = self.dirty(ino)?;
                            di.size = di.size.max(pos);
                            return Ok((pos - off) as usize);
                        }
                        Err(e) => return Err(e),
                    }
                    pos += n;
                    if pos < end && self.pending_bytes() > self.dirty_limit {
                        let di = self.dirty(ino)?;
                        di.size = di.size.max(pos);
                        self.sync()?;
                    }
                    continue;
                }
                // A block written in part starts from what it holds now;
                // one written whole needs none of it. A block wholly past
                // the end of the file holds zeros but for what is written:
                // it gets pages up to the end of the write only (a 1 KiB
                // file holds 4 KiB until its flush, not 16).
                let block = if whole {
                    DataBlock::zeroed(bsize as usize).ok_or(FsError::Invalid)?
                } else if bstart >= d.size {
                    DataBlock::zeroed(page_up(pos - bstart + n)).ok_or(FsError::Invalid)?
                } else {
                    self.block_for_rewrite(ino, bstart, bsize)?
                };
                self.dirty_blocks.insert(key, block);
                self.note_block_order(key);
                self.dirty_block_bytes += bsize;
            }
            let block = self.dirty_blocks.get_mut(&key).expect("inserted");
            let at = (pos - bstart) as usize;
            block.grow_to(page_up(at as u64 + n));
            block[at..at + n as usize].copy_from_slice(src);
            pos += n;
            if pos < end && self.pending_bytes() > self.dirty_limit {
                // A long write becomes several flushes, each with the size
                // written so far.
                let di = self.dirty(ino)?;
                di.size = di.size.max(pos);
                self.sync()?;
            }
        }
        self.redo_ops
            .entry((self.pfs_lo, ino))
            .or_default()
            .push(RedoOp::Write(off, data.len() as u64));
        let now = self.now();
        let di = self.dirty(ino)?;
        di.size = new_size;
        di.mtime = now;
        di.ctime = now;
        Ok(data.len())
    }

    /// Sets a file's size: records wholly past it go, the block straddling it
    /// is rewritten with zeros past the end.
    pub fn truncate(&mut self, ino: i64, size: u64) -> Result<()> {
        self.maybe_sync()?;
        let d = self.inode(ino, HAMMER_MAX_TID)?;
        match d.obj_type {
            HAMMER_OBJTYPE_REGFILE => {}
            HAMMER_OBJTYPE_DIRECTORY => return Err(FsError::IsDir.into()),
            _ => return Err(FsError::Invalid.into()),
        }
        if size > MAX_FILE_SIZE {
            return Err(FsError::TooBig.into());
        }
        if size < d.size {
            let keep = self.history_kept(&d);
            for e in self.data_records(ino, size, u64::MAX - HAMMER_XBUFSIZE)? {
                let start = (e.base.key as u64).saturating_sub(e.data_len.max(0) as u64);
                if start >= size {
                    self.retire(&e, keep)?;
                }
            }
            // Dirty blocks wholly past the new end go; the one straddling it
            // keeps only what lies below.
            let lo = self.pfs_lo;
            let gone: Vec<(u32, i64, u64)> = self
                .dirty_blocks
                .range((lo, ino, size)..=(lo, ino, u64::MAX))
                .map(|(k, _)| *k)
                .filter(|k| k.2 >= size)
                .collect();
            for k in gone {
                if self.dirty_blocks.remove(&k).is_some() {
                    self.dirty_block_bytes -= block_of(k.2).1;
                }
            }
            if size > 0 {
                let (bstart, bsize) = block_of(size - 1);
                let key = (self.pfs_lo, ino, bstart);
                if !self.dirty_blocks.contains_key(&key)
                    && !self.data_records(ino, bstart, bstart + bsize)?.is_empty()
                {
                    // `read` clips at the old size, so the tail is zero.
                    let v = self.read(ino, bstart, bsize as usize, HAMMER_MAX_TID)?;
                    let mut block = DataBlock::zeroed(bsize as usize).ok_or(FsError::Invalid)?;
                    let n = v.len().min(block.len());
                    block[..n].copy_from_slice(&v[..n]);
                    self.dirty_blocks.insert(key, block);
                    self.note_block_order(key);
                    self.dirty_block_bytes += bsize;
                }
                if let Some(tail) = self
                    .dirty_blocks
                    .get_mut(&key)
                    .and_then(|block| block.get_mut((size - bstart) as usize..))
                {
                    tail.fill(0);
                }
            }
        }
        self.redo_ops
            .entry((self.pfs_lo, ino))
            .or_default()
            .push(RedoOp::Trunc(size));
        let now = self.now();
        let di = self.dirty(ino)?;
        di.size = size;
        di.mtime = now;
        di.ctime = now;
        Ok(())
    }

    /// Turns the blocks written in this transaction into records, one per
    /// block (objects destroyed meanwhile, and blocks past a file's end,
    /// are dropped).
    fn write_dirty_blocks(&mut self) -> Result<()> {
        let cur = self.pfs_lo;
        let r = self.write_dirty_blocks_all();
        self.pfs_lo = cur;
        r
    }

    fn write_dirty_blocks_all(&mut self) -> Result<()> {
        // In the order they were first written: data lands on disk as it
        // came, so removing the oldest files empties whole big-blocks
        // (which is when HAMMER gets space back), whatever their ids.
        let mut order: Vec<((u32, i64, u64), u64)> = self
            .dirty_blocks
            .keys()
            .map(|k| (*k, self.block_order.get(k).copied().unwrap_or(0)))
            .collect();
        order.sort_by_key(|&(k, seq)| (seq, k));
        for ((lo, ino, bstart), _) in order {
            // Each block is written in its own PFS.
            self.pfs_lo = lo;
            let size = match self.inode(ino, HAMMER_MAX_TID) {
                Ok(d) => d.size,
                Err(_) => 0,
            };
            let Some(block) = self.dirty_blocks.remove(&(lo, ino, bstart)) else {
                continue;
            };
            let bsize = block_of(bstart).1;
            self.dirty_block_bytes -= bsize;
            if bstart < size {
                let mut slot = Some(block);
                let r = self.put_block(ino, bstart, bsize, BlockContent::Owned(&mut slot), size);
                if let Err(e) = r {
                    // The block stays queued (unless the disk already has
                    // it): nothing is lost.
                    if let Some(block) = slot {
                        self.dirty_block_bytes += bsize;
                        self.dirty_blocks.insert((lo, ino, bstart), block);
                    }
                    return Err(e);
                }
            }
            self.block_order.remove(&(lo, ino, bstart));
        }
        self.block_order.clear();
        Ok(())
    }

    /// Remembers when a block was first written in this transaction.
    fn note_block_order(&mut self, key: (u32, i64, u64)) {
        self.block_seq += 1;
        let seq = self.block_seq;
        self.block_order.entry(key).or_insert(seq);
    }

    /// Bytes file data may still take: free big-blocks beyond the metadata
    /// reserve (space left in the data zones' current big-blocks is not
    /// counted, so this errs on the safe side).
    fn data_space(&self) -> u64 {
        let free = self.set.header().vol0_stat_freebigblocks - crate::alloc::DATA_RESERVE_BIGBLOCKS;
        free.max(0) as u64 * HAMMER_BIGBLOCK_SIZE
    }

    /// Writes the dirty inodes of this transaction into the B-tree: a new
    /// version per changed inode; destroyed objects lose every record.
    fn write_inodes(&mut self) -> Result<()> {
        let inodes = std::mem::take(&mut self.inodes);
        let tid = self.tid();
        crate::stats::INODE_FLUSHES.add(inodes.len() as u64);
        let cur = self.pfs_lo;
        let r = inodes.into_iter().try_for_each(|((pfs_lo, ino), di)| {
            // Each inode is written in its own PFS.
            self.pfs_lo = pfs_lo;
            self.write_inode(ino, di, tid)
        });
        self.pfs_lo = cur;
        r
    }

    fn write_inode(&mut self, ino: i64, di: DirtyInode, tid: u64) -> Result<()> {
        let lo = self.pfs_lo | HAMMER_LOCALIZE_INODE;
        {
            let keep = self.history_kept(&di.data);
            let old = self.tree_lookup(lo, ino, HAMMER_RECTYPE_INODE, 0, HAMMER_MAX_TID)?;
            if let (Some(old), false) = (old, di.destroy) {
                // As the kernel does: when only mtime and atime changed
                // (the bytes the record's CRC leaves out), the current
                // version takes them in place (its buffer is logged in
                // the UNDO FIFO like any metadata) instead of a new
                // version; when nothing changed, nothing is written.
                let new = di.data.as_bytes();
                let cur = self.record_data(&old)?;
                if cur.len() == new.len()
                    && cur[..HAMMER_INODE_CRCSIZE] == new[..HAMMER_INODE_CRCSIZE]
                {
                    if cur[HAMMER_INODE_CRCSIZE..] != new[HAMMER_INODE_CRCSIZE..] {
                        self.set.write(
                            old.data_offset + HAMMER_INODE_CRCSIZE as u64,
                            &new[HAMMER_INODE_CRCSIZE..],
                        )?;
                    }
                    return Ok(());
                }
            }
            if let Some(old) = old {
                self.retire(&old, keep)?;
            }
            if di.destroy {
                self.destroy_records(ino, keep)?;
                self.set.header_mut().vol0_stat_inodes -= 1;
                return Ok(());
            }
            let e = self.leaf(lo, ino, HAMMER_RECTYPE_INODE, 0, di.data.obj_type, tid);
            self.insert_record(e, di.data.as_bytes())?;
        }
        Ok(())
    }

    /// Ends every record of an object (data, symlink target, entries of an
    /// empty directory are already gone).
    fn destroy_records(&mut self, ino: i64, keep: bool) -> Result<()> {
        let lo = self.pfs_lo | HAMMER_LOCALIZE_MISC;
        let from = HammerBaseElm {
            localization: lo,
            obj_id: ino,
            rec_type: 0,
            key: HAMMER_MIN_KEY,
            create_tid: 1,
            ..Default::default()
        };
        let to = HammerBaseElm {
            obj_id: ino + 1,
            ..from
        };
        for e in self.scan_visible(&from, &to, HAMMER_MAX_TID)? {
            self.retire(&e, keep)?;
        }
        Ok(())
    }

    /// Makes everything changed so far durable and final; returns the TID
    /// of the flush (reads as of it see exactly this state).
    pub fn sync(&mut self) -> Result<u64> {
        if self.tid.is_none() && self.inodes.is_empty() && self.dirty_blocks.is_empty() {
            return Ok(self.last_tid());
        }
        let tid = self.tid();
        self.write_dirty_blocks()?;
        self.write_inodes()?;
        let top = tid.max(self.next_tid);
        self.set.header_mut().vol0_next_tid = top;
        self.set.flush()?;
        self.tid = None;
        self.redo_ops.clear();
        self.stored_whole.clear();
        self.note_pending();
        // The time its records carry (`stamp`).
        let when = self.tid_time;
        if let Some(index) = self.time_index.as_mut() {
            index.insert(tid, when);
        }
        Ok(tid)
    }

    /// File data held in memory until the next flush: blocks written in
    /// part, and whole blocks already stored and being written behind.
    fn pending_bytes(&self) -> u64 {
        self.dirty_block_bytes + self.set.behind_bytes()
    }

    /// Flushes early when the pending change would not fit comfortably in
    /// the UNDO FIFO or holds too much memory: a long write or a big tree
    /// copy becomes several flushes, each final and consistent on its own.
    fn maybe_sync(&mut self) -> Result<()> {
        let fifo = self.set.header().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize].alloc_offset
            & HAMMER_OFF_LONG_MASK;
        // Worst case per metadata buffer: all of it logged, plus record heads.
        let undo_worst = self.set.dirty_meta_buffers() as u64 * (HAMMER_BUFSIZE + 2048);
        let memory = self.set.dirty_buffers() as u64 * HAMMER_BUFSIZE + self.pending_bytes();
        if undo_worst * 2 > fifo || memory > self.dirty_limit {
            self.sync()?;
        }
        self.note_pending();
        Ok(())
    }

    /// Memory changes may hold before a flush is forced.
    pub fn dirty_limit(&self) -> u64 {
        self.dirty_limit
    }

    /// Keeps the record cache's room in step with the data waiting for
    /// the flush, so that both stay within one budget.
    fn note_pending(&mut self) {
        let pending = self.pending_bytes();
        if pending.abs_diff(self.reserved_pending) >= RESERVE_STEP
            || (pending == 0) != (self.reserved_pending == 0)
        {
            self.set.reserve_for_pending(pending);
            self.reserved_pending = pending;
        }
    }

    /// The newest TID committed at or before `secs` (Unix time), for
    /// `name@@<date>` paths. Where it comes from: every B-tree record
    /// carries the second its transaction was stamped (`create_ts`,
    /// `delete_ts`) next to the TID. The first call scans every leaf once
    /// (O(records)) and keeps one entry per transaction; later calls walk
    /// that small list (one entry per flush) from the newest end, and each
    /// sync adds its own TID.
    pub fn tid_at(&mut self, secs: u64) -> Result<Option<u64>> {
        if self.time_index.is_none() {
            let mut index: BTreeMap<u64, u32> = BTreeMap::new();
            let from = HammerBaseElm {
                localization: 0,
                obj_id: HAMMER_MIN_OBJID,
                rec_type: 0,
                key: HAMMER_MIN_KEY,
                create_tid: 1,
                ..Default::default()
            };
            let to = HammerBaseElm {
                localization: u32::MAX,
                obj_id: HAMMER_MAX_OBJID,
                rec_type: u16::MAX,
                key: HAMMER_MAX_KEY,
                create_tid: 0,
                ..Default::default()
            };
            let mut note = |tid: u64, ts: u32| {
                // Snapshot and config records carry no time.
                if ts == 0 {
                    return;
                }
                let e = index.entry(tid).or_insert(ts);
                *e = (*e).min(ts);
            };
            self.ro_tree(|t| {
                t.scan(&from, &to, &mut |e| {
                    note(e.base.create_tid, e.create_ts);
                    if e.base.delete_tid != 0 {
                        note(e.base.delete_tid, e.delete_ts);
                    }
                    ControlFlow::Continue(())
                })
            })?;
            self.time_index = Some(index);
        }
        let index = self.time_index.as_ref().expect("built above");
        // TIDs grow with time, so the newest TID stamped no later than
        // `secs` is the last such entry in TID order.
        Ok(index
            .iter()
            .rev()
            .find(|(_, &ts)| ts as u64 <= secs)
            .map(|(&tid, _)| tid))
    }

    /// statfs figures: (total bytes, free bytes, inodes).
    pub fn statfs(&self) -> (u64, u64, u64) {
        let h = self.set.header();
        let bb = HAMMER_BIGBLOCK_SIZE;
        (
            h.vol0_stat_bigblocks as u64 * bb,
            h.vol0_stat_freebigblocks as u64 * bb,
            h.vol0_stat_inodes as u64,
        )
    }
}
