//! Block devices and image files behind one trait, so the engine runs the
//! same on a real disk, an image file, memory (tests) or the
//! crash-simulating device. A file device also owns a write-behind thread:
//! record data in fresh space is written from aligned memory with O_DIRECT
//! while the engine goes on, and `drain` is where a flush waits for it
//! (DragonFly's flusher likewise lets data buffers go out asynchronously
//! and waits for them before the UNDO FIFO and the header).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::sync::{mpsc, Arc, Condvar, Mutex, RwLock};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// One 4 KiB page, aligned as O_DIRECT wants it.
#[repr(C, align(4096))]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Page([u8; 4096]);

/// Record data on its way to disk: whole 4 KiB pages in 4 KiB-aligned
/// memory, so an O_DIRECT write takes it as it is, without a staging copy.
pub struct DataBlock {
    pages: Vec<Page>,
}

impl DataBlock {
    /// A copy of `src`, which must be a whole number of 4 KiB pages.
    pub fn from_bytes(src: &[u8]) -> Option<DataBlock> {
        if !src.len().is_multiple_of(4096) {
            return None;
        }
        let n = src.len() / 4096;
        let mut pages: Vec<Page> = Vec::with_capacity(n);
        // SAFETY: the spare capacity holds at least `n` pages, i.e.
        // `src.len()` bytes; the copy initialises every byte of the first
        // `n` pages (any bit pattern is a valid `Page`) before `set_len`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                pages.spare_capacity_mut().as_mut_ptr() as *mut u8,
                src.len(),
            );
            pages.set_len(n);
        }
        Some(DataBlock { pages })
    }

    /// `len` zero bytes (a whole number of 4 KiB pages).
    pub fn zeroed(len: usize) -> Option<DataBlock> {
        if !len.is_multiple_of(4096) {
            return None;
        }
        Some(DataBlock {
            pages: vec![Page([0; 4096]); len / 4096],
        })
    }

    /// Grows it to `len` bytes (a whole number of pages; it never
    /// shrinks), the new pages zero.
    pub fn grow_to(&mut self, len: usize) {
        let n = len / 4096;
        if n > self.pages.len() {
            self.pages.resize(n, Page([0; 4096]));
        }
    }

    pub fn bytes(&self) -> &[u8] {
        self.pages.as_bytes()
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.pages.as_mut_bytes()
    }

    pub fn len(&self) -> usize {
        self.pages.len() * 4096
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
}

impl std::ops::Deref for DataBlock {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl std::ops::DerefMut for DataBlock {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes_mut()
    }
}

/// A volume's backing store: positioned reads and writes, a size, a barrier.
pub trait Device: Send + Sync {
    /// Reads exactly `buf.len()` bytes at `off`; reading past the end is an error.
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()>;
    /// Reads exactly `len` bytes at `off` into a new vector. Devices that
    /// can read into uninitialized memory skip zeroing it first (for a
    /// 64 KiB record that is a measurable part of a random 4 KiB read).
    fn read_vec(&self, len: usize, off: u64) -> io::Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read_at(&mut v, off)?;
        Ok(v)
    }
    /// Writes all of `buf` at `off`.
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()>;
    /// Writes the buffers one after another from `off` (one system call
    /// where the device allows).
    fn write_vectored_at(&self, bufs: &[&[u8]], off: u64) -> io::Result<()> {
        let mut at = off;
        for b in bufs {
            self.write_at(b, at)?;
            at += b.len() as u64;
        }
        Ok(())
    }
    /// Starts writing `block` at `off`: it may still be in flight when
    /// this returns (the block is kept alive until it is written). `drain`
    /// waits for every write started so. Devices without a writer of their
    /// own write at once.
    fn write_behind(&self, block: Arc<DataBlock>, off: u64) -> io::Result<()> {
        self.write_at(block.bytes(), off)
    }
    /// Waits until every `write_behind` has reached the device; returns the
    /// first error any of them met (then forgotten: the caller writes again).
    fn drain(&self) -> io::Result<()> {
        Ok(())
    }
    /// Whether a `write_behind` has failed since the last `drain` (without
    /// waiting for anything).
    fn behind_failed(&self) -> bool {
        false
    }
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Makes every completed write durable (a write barrier).
    fn sync(&self) -> io::Result<()>;
    /// What `newfs_hammer` calls the volume's type: `REGFILE` or `BLKDEV`.
    fn kind(&self) -> &'static str;
}

/// An image file or a block device.
pub struct FileDevice {
    file: File,
    /// The same file opened with O_DIRECT (when writable and the
    /// filesystem under it allows): large aligned runs go through it,
    /// skipping the page cache's copy and its write-back work. Headers and
    /// small or unaligned writes take the plain descriptor; the kernel
    /// keeps the two coherent, and `sync` covers both.
    direct: Option<File>,
    /// The aligned copy O_DIRECT writes go from, kept between writes (a
    /// fresh one would cost its page faults every time).
    staging: std::sync::Mutex<Staging>,
    /// The thread that writes data blocks while the caller goes on
    /// (`write_behind`), started on first use.
    behind: Mutex<Option<Behind>>,
    size: u64,
    kind: &'static str,
}

/// A write-behind thread and what it owes.
struct Behind {
    tx: Option<mpsc::Sender<(Arc<DataBlock>, u64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<BehindState>,
}

/// Writes queued and not yet done, and the first error met.
#[derive(Default)]
struct BehindState {
    owed: Mutex<(usize, Option<io::Error>)>,
    done: Condvar,
}

/// The most one write-behind system call carries (adjacent blocks are
/// joined up to this).
const BEHIND_RUN: usize = 4 << 20;

/// The write-behind thread: takes blocks in the order they were queued,
/// joins those adjacent on disk, writes them through O_DIRECT (the plain
/// descriptor if the kernel refuses), and reports each write done.
fn behind_loop(
    rx: mpsc::Receiver<(Arc<DataBlock>, u64)>,
    direct: File,
    plain: File,
    state: Arc<BehindState>,
) {
    let mut next: Option<(Arc<DataBlock>, u64)> = None;
    loop {
        let first = match next.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        let off = first.1;
        let mut total = first.0.len();
        let mut run = vec![first.0];
        while total < BEHIND_RUN {
            match rx.try_recv() {
                Ok(j) if j.1 == off + total as u64 => {
                    total += j.0.len();
                    run.push(j.0);
                }
                Ok(j) => {
                    next = Some(j);
                    break;
                }
                Err(_) => break,
            }
        }
        let bufs: Vec<&[u8]> = run.iter().map(|b| b.bytes()).collect();
        let r = match pwritev_all(&direct, &bufs, off) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => pwritev_all(&plain, &bufs, off),
            r => r,
        };
        let mut g = state.owed.lock().unwrap_or_else(|e| e.into_inner());
        g.0 -= run.len();
        if let Err(e) = r {
            g.1.get_or_insert(e);
        }
        state.done.notify_all();
    }
}

/// Writes the buffers one after another from `off` with `pwritev`,
/// finishing a short write.
fn pwritev_all(file: &File, bufs: &[&[u8]], off: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    let iov: Vec<libc::iovec> = bufs
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut _,
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: the iovecs point into live slices for the whole call.
    let n = unsafe {
        libc::pwritev(
            file.as_raw_fd(),
            iov.as_ptr(),
            iov.len() as i32,
            off as libc::off_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if (n as usize) < total {
        // A short write: finish the rest plainly.
        let mut skip = n as usize;
        let mut at = off + n as u64;
        for b in bufs {
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            file.write_all_at(&b[skip..], at)?;
            at += (b.len() - skip) as u64;
            skip = 0;
        }
    }
    Ok(())
}

/// A 4 KiB-aligned byte buffer.
struct Staging {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the buffer is plain memory owned by the struct; access goes
// through the device's mutex.
unsafe impl Send for Staging {}

impl Staging {
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(len, DIRECT_ALIGN).expect("valid layout")
    }

    /// At least `len` bytes (a multiple of 4 KiB, more than 0).
    fn get(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.len < len {
            self.free();
            // SAFETY: a non-zero size with a valid alignment.
            let p = unsafe { std::alloc::alloc(Self::layout(len)) };
            if p.is_null() {
                return None;
            }
            self.ptr = p;
            self.len = len;
        }
        // SAFETY: `ptr` holds `self.len >= len` bytes owned here; callers
        // write before they read.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr, len) })
    }

    fn free(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: allocated in `get` with this layout.
            unsafe { std::alloc::dealloc(self.ptr, Self::layout(self.len)) };
            self.ptr = std::ptr::null_mut();
            self.len = 0;
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.free();
    }
}

/// Writes at least this long (and 4 KiB-aligned) go through O_DIRECT.
const DIRECT_MIN: usize = 256 << 10;
/// O_DIRECT's alignment for buffers, offsets and lengths.
const DIRECT_ALIGN: usize = 4096;

impl FileDevice {
    pub fn open(path: &str, writable: bool) -> io::Result<FileDevice> {
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        let meta = file.metadata()?;
        let ft = meta.file_type();
        let (size, kind) = if ft.is_block_device() {
            (block_device_size(&file)?, "BLKDEV")
        } else if ft.is_char_device() {
            (block_device_size(&file)?, "CHRDEV")
        } else if ft.is_file() {
            (meta.len(), "REGFILE")
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file or block device",
            ));
        };
        let direct = if writable && std::env::var_os("HAMMERFS_NO_DIRECT_IO").is_none() {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
                .ok()
        } else {
            None
        };
        Ok(FileDevice {
            file,
            direct,
            staging: std::sync::Mutex::new(Staging {
                ptr: std::ptr::null_mut(),
                len: 0,
            }),
            behind: Mutex::new(None),
            size,
            kind,
        })
    }

    /// Writes `bufs` at `off` through the O_DIRECT descriptor, from an
    /// aligned copy; `Ok(false)` when this write cannot go that way.
    fn write_direct(&self, bufs: &[&[u8]], total: usize, off: u64) -> io::Result<bool> {
        let Some(direct) = &self.direct else {
            return Ok(false);
        };
        if total < DIRECT_MIN
            || !total.is_multiple_of(DIRECT_ALIGN)
            || !off.is_multiple_of(DIRECT_ALIGN as u64)
        {
            return Ok(false);
        }
        let mut st = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        let Some(staged) = st.get(total) else {
            return Ok(false);
        };
        let mut at = 0;
        for b in bufs {
            staged[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        }
        match direct.write_all_at(staged, off) {
            Ok(()) => Ok(true),
            // Not allowed here after all: the plain way.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for FileDevice {
    /// Every write-behind reaches the device before the descriptors (and
    /// the volume lock with them) go.
    fn drop(&mut self) {
        let b = self
            .behind
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut b) = b {
            drop(b.tx.take());
            if let Some(t) = b.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn block_device_size(file: &File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = file;
    let n = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    Ok(n)
}

impl Device for FileDevice {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        crate::stats::DISK_READ_BYTES.add(buf.len() as u64);
        self.file.read_exact_at(buf, off)
    }
    fn read_vec(&self, len: usize, off: u64) -> io::Result<Vec<u8>> {
        crate::stats::DISK_READ_BYTES.add(len as u64);
        let mut v: Vec<u8> = Vec::with_capacity(len);
        while v.len() < len {
            let done = v.len();
            let at = off
                .checked_add(done as u64)
                .and_then(|a| libc::off_t::try_from(a).ok())
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            let spare = v.spare_capacity_mut();
            // SAFETY: the kernel writes at most `len - done` bytes to the
            // spare capacity, which holds at least that many; only the
            // bytes it reports written are then counted as initialized.
            let n = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    spare.as_mut_ptr().cast(),
                    len - done,
                    at,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            // SAFETY: `n` more bytes were written by pread (n <= len - done).
            unsafe { v.set_len(done + n as usize) };
        }
        Ok(v)
    }
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        crate::stats::DISK_WRITE_BYTES.add(buf.len() as u64);
        self.file.write_all_at(buf, off)
    }
    fn write_vectored_at(&self, bufs: &[&[u8]], off: u64) -> io::Result<()> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        crate::stats::DISK_WRITE_BYTES.add(total as u64);
        if self.write_direct(bufs, total, off)? {
            return Ok(());
        }
        pwritev_all(&self.file, bufs, off)
    }
    fn write_behind(&self, block: Arc<DataBlock>, off: u64) -> io::Result<()> {
        let Some(direct) = &self.direct else {
            return self.write_at(block.bytes(), off);
        };
        if !off.is_multiple_of(DIRECT_ALIGN as u64) {
            return self.write_at(block.bytes(), off);
        }
        crate::stats::DISK_WRITE_BYTES.add(block.len() as u64);
        let mut g = self.behind.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            let state = Arc::new(BehindState::default());
            let (tx, rx) = mpsc::channel();
            let (d, p) = (direct.try_clone()?, self.file.try_clone()?);
            let st = state.clone();
            let thread = std::thread::Builder::new()
                .name("hammer-wb".into())
                .spawn(move || behind_loop(rx, d, p, st))?;
            *g = Some(Behind {
                tx: Some(tx),
                thread: Some(thread),
                state,
            });
        }
        let b = g.as_mut().expect("started above");
        b.state.owed.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
        let tx = b.tx.as_ref().expect("taken only when the device drops");
        if let Err(mpsc::SendError((block, off))) = tx.send((block, off)) {
            // The thread is gone (only a panic ends it early): write here.
            b.state.owed.lock().unwrap_or_else(|e| e.into_inner()).0 -= 1;
            return self.file.write_all_at(block.bytes(), off);
        }
        Ok(())
    }
    fn drain(&self) -> io::Result<()> {
        let state = match &*self.behind.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(b) => b.state.clone(),
            None => return Ok(()),
        };
        let mut g = state.owed.lock().unwrap_or_else(|e| e.into_inner());
        while g.0 > 0 {
            g = state.done.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        match g.1.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
    fn behind_failed(&self) -> bool {
        match &*self.behind.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(b) => b
                .state
                .owed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .1
                .is_some(),
            None => false,
        }
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
}

/// A volume held in memory, for tests.
pub struct MemDevice {
    data: RwLock<Vec<u8>>,
}

impl MemDevice {
    pub fn new(size: usize) -> MemDevice {
        MemDevice {
            data: RwLock::new(vec![0; size]),
        }
    }
    pub fn from_vec(v: Vec<u8>) -> MemDevice {
        MemDevice {
            data: RwLock::new(v),
        }
    }
    pub fn snapshot(&self) -> Vec<u8> {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Device for MemDevice {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let d = self.data.read().unwrap_or_else(|e| e.into_inner());
        let end = off
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= d.len() as u64);
        match end {
            Some(e) => {
                buf.copy_from_slice(&d[off as usize..e as usize]);
                Ok(())
            }
            None => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
        }
    }
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        let mut d = self.data.write().unwrap_or_else(|e| e.into_inner());
        let end = off
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= d.len() as u64);
        match end {
            Some(e) => {
                d[off as usize..e as usize].copy_from_slice(buf);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past end of device",
            )),
        }
    }
    fn size(&self) -> u64 {
        self.data.read().unwrap_or_else(|e| e.into_inner()).len() as u64
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "REGFILE"
    }
}
