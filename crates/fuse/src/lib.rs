//! The FUSE adapter of hammerfs: a thin layer between the kernel's FUSE
//! requests (through `fuser`) and the engine's filesystem API
//! (`hammer_engine::fs::Fs`). It translates arguments and replies, keeps
//! the inode numbers of history views (see [`history`]), and refuses writes
//! to read-only mounts and past states; every filesystem rule lives in the
//! engine. The engine is not thread-safe for writes, so it sits behind one
//! mutex shared with the daemon's periodic flusher ([`FsHandle`]).

pub mod attr;
pub mod history;

use attr::{errno, file_attr, BLOCK_SIZE};
use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use hammer_engine::fs::{Attr, Fs, NewObject, SetAttr};
use hammer_engine::Error;
use hammer_ondisk::{HAMMER_MAX_TID, HAMMER_OBJID_ROOT, HAMMER_OBJTYPE_DIRECTORY};
use history::{split_asof_name, AsOf, InodeTable, Node};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// How long the kernel may cache attributes and entries. The mount is the
/// only writer, and the kernel invalidates what its own operations change,
/// so a short timeout is only a safety net.
const TTL: Duration = Duration::from_secs(1);

/// The mounted filesystem, shared by the FUSE handlers, the periodic
/// flusher and the signal handler. `None` once the mount has ended. A
/// handle also names the PFS its [`FsHandle::with`] calls work in (PFS #0,
/// the mounted one, unless made by [`FsHandle::in_pfs`]).
#[derive(Clone)]
pub struct FsHandle {
    fs: Arc<Mutex<Option<Fs>>>,
    pfs: u32,
    /// Whether the mount takes changes: [`RW`], [`RO`] (`-o ro`;
    /// `mount_hammer -u` may change it) or [`RO_PINNED`] (an as-of mount).
    mode: Arc<AtomicU8>,
    /// Open file and directory handles by PFS: what DragonFly counts as a
    /// PFS in use when it refuses to destroy, upgrade or downgrade one
    /// (the kernel's lookup references are not counted: any cached name
    /// holds one).
    handles: Arc<Mutex<HashMap<u32, u64>>>,
}

const RW: u8 = 0;
const RO: u8 = 1;
const RO_PINNED: u8 = 2;

impl FsHandle {
    pub fn new(fs: Fs) -> Self {
        let ro = !fs.volumes().is_writable();
        FsHandle {
            fs: Arc::new(Mutex::new(Some(fs))),
            pfs: 0,
            mode: Arc::new(AtomicU8::new(if ro { RO } else { RW })),
            handles: Arc::default(),
        }
    }

    /// Open handles in PFS `pfs` now.
    pub fn open_handles(&self, pfs: u32) -> u64 {
        let g = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        g.get(&pfs).copied().unwrap_or(0)
    }

    /// Counts a handle opened in `pfs`; returns the file handle to give
    /// the kernel, which names the PFS for the release.
    fn handle_opened(&self, pfs: u32) -> FileHandle {
        let mut g = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        *g.entry(pfs).or_default() += 1;
        FileHandle(u64::from(pfs) + 1)
    }

    fn handle_released(&self, fh: FileHandle) {
        let Some(pfs) = fh.0.checked_sub(1).and_then(|p| u32::try_from(p).ok()) else {
            return;
        };
        let mut g = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = g.get_mut(&pfs) {
            *n -= 1;
            if *n == 0 {
                g.remove(&pfs);
            }
        }
    }

    /// Makes the mount read-only for good (a view as of a TID).
    pub fn pin_read_only(&self) {
        self.mode.store(RO_PINNED, Ordering::SeqCst);
    }

    /// The same filesystem, with `with` working in PFS `pfs`.
    pub fn in_pfs(&self, pfs: u32) -> FsHandle {
        FsHandle {
            pfs,
            ..self.clone()
        }
    }

    /// Whether the mount refuses changes now.
    pub fn read_only(&self) -> bool {
        self.mode.load(Ordering::SeqCst) != RW
    }

    /// Makes the mount read-only (after a sync: what was written stays)
    /// or read-write again. Volumes opened read-only are reopened for
    /// writing first (with crash recovery and the exclusive lock); if that
    /// fails the mount stays read-only and serves on.
    pub fn set_read_only(&self, ro: bool) -> Result<(), Error> {
        let mut g = self.lock();
        let Some(fs) = g.as_mut() else {
            return Ok(());
        };
        if self.mode.load(Ordering::SeqCst) == RO_PINNED {
            return if ro {
                Ok(())
            } else {
                Err(hammer_engine::error::FsError::ReadOnly.into())
            };
        }
        if ro {
            fs.sync()?;
            self.mode.store(RO, Ordering::SeqCst);
            return Ok(());
        }
        if !fs.volumes().is_writable() {
            let paths: Vec<String> = fs.volumes().iter().map(|v| v.name.clone()).collect();
            let (nohistory, atime, master) = (fs.nohistory(), fs.atime, fs.master_id());
            // The read-only open holds a shared lock: it goes first.
            let old = g.take().expect("checked above");
            drop(old);
            match Fs::open(&paths, nohistory) {
                Ok(mut fs) => {
                    fs.atime = atime;
                    fs.set_master_id(master)?;
                    *g = Some(fs);
                }
                Err(e) => {
                    let back = hammer_engine::VolumeSet::open_paths(
                        &paths,
                        &hammer_engine::OpenOptions {
                            writable: false,
                            recover: true,
                            ..Default::default()
                        },
                    )
                    .and_then(|set| Fs::from_set(set, 0, nohistory));
                    *g = back.ok();
                    return Err(e);
                }
            }
        }
        self.mode.store(RW, Ordering::SeqCst);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Option<Fs>> {
        // A panic in a handler leaves the engine as it was between calls;
        // later requests may still be served.
        self.fs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes everything written so far durable; `None` once closed.
    pub fn sync(&self) -> Result<Option<u64>, Error> {
        match self.lock().as_mut() {
            Some(fs) => fs.sync().map(Some),
            None => Ok(None),
        }
    }

    /// Syncs, then drops the engine, which releases the volumes' lock
    /// after the last write. Later calls do nothing.
    pub fn close(&self) -> Result<(), Error> {
        let mut g = self.lock();
        let r = match g.as_mut() {
            Some(fs) => fs.release_all().and_then(|_| fs.sync()).map(|_| ()),
            None => Ok(()),
        };
        *g = None;
        r
    }

    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    /// Runs `f` on the filesystem under the lock (the control channel's
    /// directives), in this handle's PFS; `None` once closed, or once that
    /// PFS is gone.
    pub fn with<T>(&self, f: impl FnOnce(&mut Fs) -> T) -> Option<T> {
        let mut g = self.lock();
        let fs = g.as_mut()?;
        fs.enter_pfs(self.pfs).ok()?;
        Some(f(fs))
    }
}

/// Starts a thread that syncs every `interval` until the handle closes,
/// so unsynced changes do not pile up between fsyncs.
pub fn spawn_flusher(fs: FsHandle, interval: Duration) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("hammer-flush".into())
        .spawn(move || {
            let step = Duration::from_millis(100).min(interval);
            let mut waited = Duration::ZERO;
            while fs.is_open() {
                std::thread::sleep(step);
                waited += step;
                if waited >= interval {
                    waited = Duration::ZERO;
                    if let Err(e) = fs.sync() {
                        eprintln!("mount_hammer: periodic flush: {e}");
                    }
                }
            }
        })
        .expect("spawn the flusher thread")
}

/// What the mount shows.
#[derive(Clone, Copy, Debug)]
pub struct MountView {
    /// Refuse every change (`-o ro`, or implied by `asof`).
    pub read_only: bool,
    /// The TID the mount shows (`-T`); `HAMMER_MAX_TID` for the current state.
    pub asof: u64,
    /// Let the kernel cache writes (FUSE writeback caching, `-o writeback`).
    pub writeback: bool,
}

impl Default for MountView {
    fn default() -> Self {
        MountView {
            read_only: false,
            writeback: false,
            asof: HAMMER_MAX_TID,
        }
    }
}

/// The `fuser::Filesystem` over a HAMMER filesystem.
pub struct HammerFuse {
    fs: FsHandle,
    inodes: Mutex<InodeTable>,
    read_only: bool,
    writeback: bool,
}

type R<T> = Result<T, Errno>;

impl HammerFuse {
    pub fn new(fs: FsHandle, view: MountView) -> Self {
        if view.asof != HAMMER_MAX_TID {
            fs.pin_read_only();
        }
        HammerFuse {
            fs,
            inodes: Mutex::new(InodeTable::new(view.asof)),
            read_only: view.read_only,
            writeback: view.writeback,
        }
    }

    /// Whether changes are refused now (`-o ro` at mount time decides
    /// writeback; `mount_hammer -u` may flip the handle's mode since).
    fn ro(&self) -> bool {
        self.fs.read_only()
    }

    fn inodes(&self) -> MutexGuard<'_, InodeTable> {
        self.inodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the engine with object ids of PFS `pfs` (EIO once the
    /// mount has ended).
    fn with_fs<T>(&self, pfs: u32, f: impl FnOnce(&mut Fs) -> Result<T, Error>) -> R<T> {
        let mut g = self.fs.lock();
        let fs = g.as_mut().ok_or(Errno::EIO)?;
        fs.enter_pfs(pfs).map_err(|e| errno(&e))?;
        f(fs).map_err(|e| errno(&e))
    }

    fn node(&self, ino: INodeNo) -> R<Node> {
        self.inodes().node(ino.0).ok_or(Errno::ESTALE)
    }

    /// A node that may be changed (a slave PFS is only ever seen as of a
    /// TID, so it is refused here too).
    fn writable(&self, node: Node) -> R<Node> {
        if self.ro() || node.asof != HAMMER_MAX_TID {
            return Err(Errno::EROFS);
        }
        Ok(node)
    }

    fn writable_ino(&self, ino: INodeNo) -> R<Node> {
        self.writable(self.node(ino)?)
    }

    /// Attributes and link count as `stat` shows them: a directory counts
    /// `.`, its entry in the parent and each subdirectory's `..` (Linux
    /// tools expect this; the inode on disk keeps what DragonFly stores).
    fn stat(fs: &Fs, node: Node) -> Result<(Attr, u64), Error> {
        let a = fs.getattr(node.obj_id, node.asof)?;
        let nlink = if a.obj_type == HAMMER_OBJTYPE_DIRECTORY {
            2 + fs.subdirs(node.obj_id, node.asof)?
        } else {
            a.nlinks
        };
        Ok((a, nlink))
    }

    /// Attributes of a node under its inode number, counting a kernel
    /// reference when `entry` (lookup-like replies). A reference to a
    /// current object also keeps it alive in the engine (like an open
    /// handle) until the kernel forgets it: with writeback caching the
    /// kernel may still write back pages and times of a file whose last
    /// name and handle are gone.
    fn attr_for(&self, fs: &mut Fs, node: Node, entry: bool) -> Result<fuser::FileAttr, Error> {
        let (a, nlink) = Self::stat(fs, node)?;
        if entry && node.asof == HAMMER_MAX_TID {
            fs.open_ref(node.obj_id)?;
        }
        let mut t = self.inodes();
        let ino = if entry { t.acquire(node) } else { t.peek(node) };
        Ok(file_attr(ino, &a, nlink))
    }

    /// A read of a live object moves its access time (as the mount's atime
    /// option says; the engine decides). A failure there does not fail
    /// the read.
    fn accessed(&self, fs: &mut Fs, node: Node) {
        if node.asof == HAMMER_MAX_TID && !self.ro() {
            let _ = fs.note_access(node.obj_id);
        }
    }

    /// The kernel dropped `n` references to inode `ino`.
    fn forget_refs(&self, ino: u64, n: u64) {
        let node = self.inodes().node(ino);
        self.inodes().forget(ino, n);
        if let Some(node) = node {
            if node.asof == HAMMER_MAX_TID {
                let _ = self.with_fs(node.pfs, |fs| fs.release_n(node.obj_id, n));
            }
        }
    }

    /// How long the kernel may keep an answer about `node`: not at all for
    /// a view as of a TID not committed yet (it changes at the next flush).
    fn ttl(fs: &Fs, node: Node) -> Duration {
        if fs.view_unsettled(node.asof) {
            Duration::ZERO
        } else {
            TTL
        }
    }

    /// A directory's entries and attributes, for READDIR and READDIRPLUS;
    /// a read from the start counts as an access.
    fn listing(
        &self,
        fs: &mut Fs,
        dir: Node,
        offset: u64,
    ) -> Result<(Vec<hammer_engine::fsread::DirEntry>, Attr), Error> {
        let entries = fs.readdir(dir.obj_id, dir.asof)?;
        if offset == 0 {
            self.accessed(fs, dir);
        }
        Ok((entries, fs.getattr(dir.obj_id, dir.asof)?))
    }

    /// The entry reply for a node (a lookup reference is taken).
    fn entry(&self, node: Node, reply: ReplyEntry) {
        match self.with_fs(node.pfs, |fs| {
            Ok((self.attr_for(fs, node, true)?, Self::ttl(fs, node)))
        }) {
            Ok((a, ttl)) => reply.entry(&ttl, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    /// Owner of a new object: the caller, with the group of a set-group-ID
    /// parent (and new directories inheriting that bit), as BSD and Linux do.
    fn new_owner(fs: &Fs, parent: i64, req: &Request, mode: u32, dir: bool) -> R<(u16, u32)> {
        let p = fs.getattr(parent, HAMMER_MAX_TID).map_err(|e| errno(&e))?;
        let mut mode = (mode & 0o7777) as u16;
        let gid = if p.mode & libc::S_ISGID as u16 != 0 {
            if dir {
                mode |= libc::S_ISGID as u16;
            }
            p.gid
        } else {
            req.gid()
        };
        Ok((mode, gid))
    }

    /// Creates an object in `parent` and returns its attributes.
    fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        what: NewObject<'_>,
        mode: u32,
    ) -> R<fuser::FileAttr> {
        let dirnode = self.writable_ino(parent)?;
        let dir = dirnode.obj_id;
        let is_dir = matches!(what, NewObject::Dir);
        let mut g = self.fs.lock();
        let fs = g.as_mut().ok_or(Errno::EIO)?;
        fs.enter_pfs(dirnode.pfs).map_err(|e| errno(&e))?;
        let (mode, gid) = Self::new_owner(fs, dir, req, mode, is_dir)?;
        let a = fs
            .create(dir, name.as_bytes(), what, mode, req.uid(), gid)
            .map_err(|e| errno(&e))?;
        let node = Node {
            obj_id: a.ino,
            ..dirnode
        };
        self.attr_for(fs, node, true).map_err(|e| errno(&e))
    }

    fn lookup_node(&self, parent: INodeNo, name: &OsStr) -> R<Node> {
        let dir = self.node(parent)?;
        let name = name.as_bytes();
        self.with_fs(dir.pfs, |fs| {
            if name == b"." {
                return Ok(dir);
            }
            if name == b".." {
                return Ok(Node {
                    obj_id: parent_of(&fs.getattr(dir.obj_id, dir.asof)?),
                    ..dir
                });
            }
            // `name@@0x<tid>`: the entry as the directory held it at that
            // TID; `@@0x<tid>` alone is the directory itself.
            let (name, asof) = match split_asof_name(name) {
                Some((base, what)) => {
                    let tid = match what {
                        AsOf::Tid(tid) => tid,
                        // The newest transaction committed by then.
                        AsOf::Time(secs) => fs
                            .tid_at(secs)?
                            .ok_or(hammer_engine::error::FsError::NotFound)?,
                        // A PFS root (what `/pfs/<name>` links point at).
                        AsOf::PfsRoot { tid, pfs } => {
                            let asof = fs.pfs_root_view(pfs, tid)?;
                            // `@@-1:00000` is the mount's own root: the live
                            // one already has a name, and the kernel refuses
                            // a second name for one directory inode, so it
                            // shows PFS #0 as of its newest flush, read-only.
                            let asof = if pfs == 0 && asof == HAMMER_MAX_TID {
                                fs.last_tid()
                            } else {
                                asof
                            };
                            fs.enter_pfs(pfs)?;
                            fs.getattr(HAMMER_OBJID_ROOT, asof)?;
                            return Ok(Node {
                                pfs,
                                obj_id: HAMMER_OBJID_ROOT,
                                asof,
                            });
                        }
                    };
                    if base.is_empty() {
                        fs.getattr(dir.obj_id, tid)?;
                        return Ok(Node { asof: tid, ..dir });
                    }
                    (base, tid)
                }
                None => (name, dir.asof),
            };
            // The kernel lets FUSE names reach 1024 bytes; ours stop at 255.
            if name.len() > hammer_engine::fs::NAME_MAX {
                return Err(hammer_engine::error::FsError::NameTooLong.into());
            }
            match fs.lookup(dir.obj_id, name, asof)? {
                Some(e) => Ok(Node {
                    pfs: dir.pfs,
                    obj_id: e.obj_id,
                    asof,
                }),
                None => Err(hammer_engine::error::FsError::NotFound.into()),
            }
        })
    }
}

/// The object ".." names (a PFS root's parent is its own root).
fn parent_of(a: &Attr) -> i64 {
    match a.parent {
        0 => HAMMER_OBJID_ROOT,
        p => p,
    }
}

fn ok_or_reply(r: R<()>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for HammerFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Writeback caching (`-o writeback`): the kernel keeps written
        // pages and sends them later in large writes (or at fsync, syncfs,
        // unmount), as a local filesystem's page cache does. Every
        // directive that flushes runs syncfs first, so what the user wrote
        // is in the flush. Off by default: it doubles random-write IOPS but
        // costs metadata-heavy work (deferred small writes and time
        // updates) in the same benchmark run (bench/README.md).
        if self.writeback && !self.read_only {
            let _ = config.add_capabilities(fuser::InitFlags::FUSE_WRITEBACK_CACHE);
        }
        // READDIRPLUS where the kernel judges it pays (the first read of a
        // directory, and later ones when its names were looked up).
        let _ = config.add_capabilities(
            fuser::InitFlags::FUSE_DO_READDIRPLUS | fuser::InitFlags::FUSE_READDIRPLUS_AUTO,
        );
        Ok(())
    }

    fn destroy(&mut self) {
        if let Err(e) = self.fs.close() {
            eprintln!("mount_hammer: final flush: {e}");
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.lookup_node(parent, name) {
            Ok(node) => self.entry(node, reply),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.forget_refs(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = self.node(ino).and_then(|node| {
            self.with_fs(node.pfs, |fs| {
                Ok((self.attr_for(fs, node, false)?, Self::ttl(fs, node)))
            })
        });
        match r {
            Ok((a, ttl)) => reply.attr(&ttl, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = self.node(ino).and_then(|node| {
            let obj = self.writable(node)?.obj_id;
            let change = SetAttr {
                mode: mode.map(|m| (m & 0o7777) as u16),
                uid,
                gid,
                size,
                atime: atime.map(attr::micros),
                mtime: mtime.map(attr::micros),
                uflags: None,
            };
            self.with_fs(node.pfs, |fs| {
                fs.setattr(obj, &change)?;
                self.attr_for(fs, node, false)
            })
        });
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .node(ino)
            .and_then(|n| self.with_fs(n.pfs, |fs| fs.readlink(n.obj_id, n.asof)))
        {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let (ma, mi) = attr::decode_dev(rdev);
        let what = match mode & libc::S_IFMT {
            libc::S_IFREG | 0 => NewObject::File,
            libc::S_IFIFO => NewObject::Fifo,
            libc::S_IFSOCK => NewObject::Socket,
            libc::S_IFCHR => NewObject::CharDev(ma, mi),
            libc::S_IFBLK => NewObject::BlockDev(ma, mi),
            _ => return reply.error(Errno::EINVAL),
        };
        match self.make(req, parent, name, what, mode) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        match self.make(req, parent, name, NewObject::Dir, mode) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self
            .writable_ino(parent)
            .and_then(|dir| self.with_fs(dir.pfs, |fs| fs.unlink(dir.obj_id, name.as_bytes())));
        ok_or_reply(r, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self
            .writable_ino(parent)
            .and_then(|dir| self.with_fs(dir.pfs, |fs| fs.rmdir(dir.obj_id, name.as_bytes())));
        ok_or_reply(r, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let target = target.as_os_str().as_bytes();
        match self.make(req, parent, link_name, NewObject::Symlink(target), 0o777) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            let snode = self.writable_ino(parent)?;
            let dnode = self.writable_ino(newparent)?;
            if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
                // RENAME_EXCHANGE and RENAME_WHITEOUT are not supported.
                return Err(Errno::EINVAL);
            }
            // Each PFS is a filesystem of its own.
            if snode.pfs != dnode.pfs {
                return Err(Errno::EXDEV);
            }
            let (sdir, ddir) = (snode.obj_id, dnode.obj_id);
            self.with_fs(snode.pfs, |fs| {
                if flags.contains(RenameFlags::RENAME_NOREPLACE)
                    && fs
                        .lookup(ddir, newname.as_bytes(), HAMMER_MAX_TID)?
                        .is_some()
                {
                    return Err(hammer_engine::error::FsError::Exists.into());
                }
                fs.rename(sdir, name.as_bytes(), ddir, newname.as_bytes())
            })
        })();
        ok_or_reply(r, reply);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            let node = self.writable_ino(ino)?;
            let dir = self.writable_ino(newparent)?;
            if node.pfs != dir.pfs {
                return Err(Errno::EXDEV);
            }
            self.with_fs(node.pfs, |fs| {
                fs.link(node.obj_id, dir.obj_id, newname.as_bytes())?;
                self.attr_for(fs, node, true)
            })
        })();
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let r = self.node(ino).and_then(|node| {
            if flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
                self.writable(node)?;
            }
            if node.asof == HAMMER_MAX_TID {
                self.with_fs(node.pfs, |fs| fs.open_ref(node.obj_id))?;
                // The kernel keeps the file's pages from one open to the
                // next, as a local filesystem's page cache does. That is
                // coherent because the current state of a file changes
                // only through this mount: the volumes are locked to this
                // daemon, every write and truncation comes through the
                // kernel (which updates or drops its pages itself), a
                // slave PFS (the one thing `mirror-write` changes) is only
                // ever seen as of a TID, and object ids are never reused,
                // so no other file can inherit cached pages.
                return Ok((
                    node.pfs,
                    FopenFlags::FOPEN_NOFLUSH | FopenFlags::FOPEN_KEEP_CACHE,
                ));
            }
            // A committed past state never changes: the kernel may keep
            // its pages from one open to the next.
            let settled = self.with_fs(node.pfs, |fs| Ok(!fs.view_unsettled(node.asof)))?;
            Ok(if settled {
                (
                    node.pfs,
                    FopenFlags::FOPEN_NOFLUSH | FopenFlags::FOPEN_KEEP_CACHE,
                )
            } else {
                (node.pfs, FopenFlags::FOPEN_NOFLUSH)
            })
        });
        match r {
            // FLUSH (at every close) has nothing to do here: data becomes
            // durable by fsync and the flusher, and the kernel sends
            // writeback-cached pages itself (it ignores NOFLUSH then).
            Ok((pfs, f)) => reply.opened(self.fs.handle_opened(pfs), f),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.node(ino) {
            Ok(node) => reply.opened(self.fs.handle_opened(node.pfs), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.handle_released(fh);
        reply.ok();
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        hammer_engine::stats::FILE_READS.inc();
        // The answer may share a cached record: it is sent after the
        // engine's lock is let go, without copying it first.
        match self.node(ino).and_then(|n| {
            let access = n.asof == HAMMER_MAX_TID && !self.ro();
            self.with_fs(n.pfs, |fs| {
                fs.read_shared(n.obj_id, offset, size as usize, n.asof, access)
            })
        }) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        hammer_engine::stats::FILE_WRITES.inc();
        match self
            .writable_ino(ino)
            .and_then(|n| self.with_fs(n.pfs, |fs| fs.write(n.obj_id, offset, data)))
        {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) does not make data durable; fsync and the flusher do.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // A file's data goes to REDO records when that is enough (fast
        // fsync); anything else makes the engine flush everything.
        let r = self.node(ino).and_then(|n| {
            if n.asof != HAMMER_MAX_TID {
                return Ok(());
            }
            self.with_fs(n.pfs, |fs| fs.fsync(n.obj_id))
        });
        ok_or_reply(r, reply);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.handle_released(fh);
        let r = self.node(ino).and_then(|n| {
            if n.asof == HAMMER_MAX_TID {
                self.with_fs(n.pfs, |fs| fs.release(n.obj_id))?;
            }
            Ok(())
        });
        ok_or_reply(r, reply);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let r = self.node(ino).and_then(|dir| {
            self.with_fs(dir.pfs, |fs| {
                let (entries, attr) = self.listing(fs, dir, offset)?;
                Ok((dir, entries, parent_of(&attr)))
            })
        });
        let (dir, entries, parent) = match r {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        // Cookies: 1 after ".", 2 after "..", key + 1 after an entry (HAMMER
        // directory keys are at least 2^32, so the ranges never meet).
        let t = self.inodes();
        let ino_of = |obj_id: i64| t.peek(Node { obj_id, ..dir });
        let dirkind = fuser::FileType::Directory;
        if offset < 1 && reply.add(INodeNo(ino_of(dir.obj_id)), 1, dirkind, ".") {
            return reply.ok();
        }
        if offset < 2 && reply.add(INodeNo(ino_of(parent)), 2, dirkind, "..") {
            return reply.ok();
        }
        for e in entries {
            let cookie = (e.key as u64).wrapping_add(1);
            if cookie <= offset {
                continue;
            }
            let full = reply.add(
                INodeNo(ino_of(e.obj_id)),
                cookie,
                attr::kind(e.obj_type),
                OsStr::from_bytes(&e.name),
            );
            if full {
                break;
            }
        }
        reply.ok();
    }

    /// READDIRPLUS: the entries with their attributes, so that `ls -l`,
    /// `find` and `du` over a cold directory need no LOOKUP per name. The
    /// kernel takes a lookup reference on every entry in the reply except
    /// "." and ".." (whether or not it fits the caller's buffer), so each
    /// such entry is counted here as a lookup would be.
    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let Ok(dir) = self.node(ino) else {
            return reply.error(Errno::ESTALE);
        };
        let r = self.with_fs(dir.pfs, |fs| {
            let (entries, da) = self.listing(fs, dir, offset)?;
            let ttl = Self::ttl(fs, dir);
            // The directory's link count from the entries in hand (what
            // `stat` would read them all again for).
            let subdirs = entries
                .iter()
                .filter(|e| e.obj_type == HAMMER_OBJTYPE_DIRECTORY)
                .count();
            let (dn, parent) = (2 + subdirs as u64, parent_of(&da));
            let mut t = self.inodes();
            // The kernel links neither "." nor ".." from these replies;
            // they carry the directory's attributes and the right numbers.
            let dot = file_attr(t.peek(dir), &da, dn);
            if offset < 1 && reply.add(dot.ino, 1, ".", &ttl, &dot, Generation(0)) {
                return Ok(());
            }
            let dotdot = fuser::FileAttr {
                ino: INodeNo(t.peek(Node {
                    obj_id: parent,
                    ..dir
                })),
                ..dot
            };
            if offset < 2 && reply.add(dotdot.ino, 2, "..", &ttl, &dotdot, Generation(0)) {
                return Ok(());
            }
            for e in entries {
                let cookie = (e.key as u64).wrapping_add(1);
                if cookie <= offset {
                    continue;
                }
                let node = Node {
                    obj_id: e.obj_id,
                    ..dir
                };
                let ino = t.peek(node);
                let (attr, ttl) = match Self::stat(fs, node) {
                    Ok((a, nlink)) => (file_attr(ino, &a, nlink), Self::ttl(fs, node)),
                    // An entry whose inode cannot be read still lists;
                    // with nothing cached, the next access asks again and
                    // gets the error.
                    Err(_) => (
                        fuser::FileAttr {
                            ino: INodeNo(ino),
                            kind: attr::kind(e.obj_type),
                            perm: 0,
                            nlink: 1,
                            ..dot
                        },
                        Duration::ZERO,
                    ),
                };
                let name = OsStr::from_bytes(&e.name);
                if reply.add(attr.ino, cookie, name, &ttl, &attr, Generation(0)) {
                    break;
                }
                // In the reply: the kernel now holds a reference, as after
                // a lookup (`attr_for` with `entry`).
                // (An inode that cannot be read takes no engine reference;
                // its forget then finds none to drop.)
                t.acquire(node);
                if node.asof == HAMMER_MAX_TID {
                    let _ = fs.open_ref(node.obj_id);
                }
            }
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        ok_or_reply(self.with_fs(0, |fs| fs.sync().map(|_| ())), reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.with_fs(0, |fs| Ok(fs.statfs())) {
            Ok((total, free, inodes)) => {
                let bs = BLOCK_SIZE as u64;
                let (blocks, bfree) = (total / bs, free / bs);
                // Inodes take no fixed space: as many more fit as blocks.
                reply.statfs(
                    blocks,
                    bfree,
                    bfree,
                    inodes + bfree,
                    bfree,
                    BLOCK_SIZE,
                    hammer_engine::fs::NAME_MAX as u32,
                    BLOCK_SIZE,
                )
            }
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        // HAMMER v1 has no extended attributes.
        reply.error(Errno::ENOTSUP);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOTSUP);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOTSUP);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOTSUP);
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        // Called only without default_permissions: the kernel then checks
        // nothing, and neither do we beyond read-only views.
        let r = self.node(ino).and_then(|node| {
            if mask.contains(AccessFlags::W_OK) {
                self.writable(node)?;
            }
            Ok(())
        });
        ok_or_reply(r, reply);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self
            .make(req, parent, name, NewObject::File, mode)
            .and_then(|a| {
                let n = self.node(a.ino)?;
                self.with_fs(n.pfs, |fs| fs.open_ref(n.obj_id))?;
                Ok((a, n.pfs))
            });
        match r {
            Ok((a, pfs)) => reply.created(
                &TTL,
                &a,
                Generation(0),
                self.fs.handle_opened(pfs),
                FopenFlags::FOPEN_NOFLUSH,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        // Plain allocation only: HAMMER has no reservations, so growing the
        // size (the new range reads as zeros) is all it can mean.
        if mode != 0 {
            return reply.error(Errno::EOPNOTSUPP);
        }
        let r = self.writable_ino(ino).and_then(|n| {
            let obj = n.obj_id;
            self.with_fs(n.pfs, |fs| {
                let end = offset
                    .checked_add(length)
                    .ok_or(hammer_engine::error::FsError::TooBig)?;
                if end > fs.getattr(obj, HAMMER_MAX_TID)?.size {
                    fs.truncate(obj, end)?;
                }
                Ok(())
            })
        });
        ok_or_reply(r, reply);
    }
}
