//! A volume set: the one to 256 volumes of a HAMMER filesystem, opened and
//! checked the way DragonFly's tools check them (signature, root volume,
//! fstype, a common fsid, version range, duplicate volumes, volume count),
//! plus sanity checks of the layout against the device so that later
//! translation can trust `vol_buf_beg`/`vol_buf_end`. Reads go through a
//! bounded buffer cache in 16 KiB units.

use crate::cache::{Buffer, BufferCache, RecordCache, BUFSIZE};
use crate::device::{DataBlock, Device, FileDevice};
use crate::error::{Error, Result};
use hammer_ondisk::*;
use std::sync::Arc;
use zerocopy::{FromBytes, IntoBytes};

/// One opened volume.
pub struct Volume {
    pub name: String,
    pub dev: Arc<dyn Device>,
    pub ondisk: HammerVolumeOndisk,
}

impl Volume {
    pub fn vol_no(&self) -> u32 {
        self.ondisk.vol_no as u32
    }
}

#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub writable: bool,
    /// Buffer cache size in bytes.
    pub cache_bytes: usize,
    /// Run crash recovery (stage 1) on open: in memory for a read-only
    /// open, on disk for a read-write one. The offline dump directives
    /// leave it off to show the volume exactly as it is.
    pub recover: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            writable: false,
            cache_bytes: default_cache_bytes(),
            recover: false,
        }
    }
}

/// The cache budget when none is given: a sixteenth of the machine's
/// memory, at least 256 MiB and at most 1 GiB. It bounds everything the
/// engine keeps of the volume's contents: clean metadata buffers, file
/// data records, and file data written and not yet flushed (which may take
/// up to half of it before a flush is forced). A bigger budget lets random
/// writes into a large file gather in memory until the periodic flush
/// instead of forcing a flush per budget's worth of 64 KiB blocks.
pub fn default_cache_bytes() -> usize {
    const MIN: usize = 256 << 20;
    const MAX: usize = 1 << 30;
    // SAFETY: sysconf only reads system configuration.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages <= 0 || page <= 0 {
        return MIN;
    }
    let ram = (pages as u128 * page as u128).min(usize::MAX as u128) as usize;
    (ram / 16).clamp(MIN, MAX)
}

pub struct VolumeSet {
    pub(crate) vols: Vec<Option<Volume>>,
    /// Volume numbers in the order the volumes were given.
    order: Vec<u32>,
    pub(crate) cache: BufferCache,
    /// Whole file data records, checked (half of the cache budget).
    pub(crate) records: Arc<RecordCache>,
    /// The whole cache budget (`OpenOptions::cache_bytes`).
    cache_budget: usize,
    /// Buffers changed in memory and not yet written, by (volume, device
    /// offset). Copy-on-write: readers holding an older `Buffer` keep it.
    pub(crate) dirty: std::collections::BTreeMap<(u32, u64), Buffer>,
    /// Record data in fresh space, handed to the devices' write-behind
    /// when it was stored (`write_fresh`) and kept here, by (volume, device
    /// offset), until the flush that makes it reachable is over: reads in
    /// between find it here, and a flush waits for these writes before its
    /// first barrier. They skip the buffer cache (file data is the kernel
    /// page cache's to keep).
    pub(crate) behind: std::collections::BTreeMap<(u32, u64), Arc<DataBlock>>,
    /// The blocks of `behind` that go to the record cache once on disk:
    /// file blocks rewritten in part (the next such rewrite of the block
    /// takes its memory back without a copy). Blocks written whole go
    /// there only into spare room (`RecordCache::insert_written`): the
    /// kernel's page cache above FUSE keeps what was written, and dropping
    /// them lets the next blocks reuse their memory instead of taking
    /// fresh pages.
    pub(crate) behind_cached: std::collections::HashSet<(u32, u64)>,
    /// The keys of `behind` in the order their writes were queued: blocks
    /// whose write is done leave `behind` from the front
    /// (`reap_behind`), long before the flush.
    pub(crate) behind_order: std::collections::VecDeque<(u32, u64)>,
    /// Bytes held in `behind`.
    pub(crate) behind_bytes: u64,
    /// Counts changes to metadata in memory (every dirty-buffer update):
    /// what a cache of decoded B-tree contents checks to know it still
    /// holds (`Fs`'s inode cache).
    pub(crate) generation: u64,
    /// A write-behind failed: the next flush writes every block in
    /// `behind` again itself.
    pub(crate) behind_failed: bool,
    pub(crate) writable: bool,
    /// What the flusher needs to know about the dirty buffers.
    pub(crate) fl: crate::flush::FlushState,
    /// Leave B-tree nodes' `mirror_tid` alone (the `nomirror` mount
    /// option): fewer node writes, but incremental mirroring can no longer
    /// skip unchanged subtrees.
    pub nomirror: bool,
}

/// Splits DragonFly's `vol0:vol1:…` volume list.
pub fn split_volume_list(spec: &str) -> Vec<String> {
    spec.split(':')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl VolumeSet {
    /// Whether the volumes were opened for writing.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Opens image files or block devices by path.
    pub fn open_paths(paths: &[String], opts: &OpenOptions) -> Result<VolumeSet> {
        let mut devs: Vec<(String, Arc<dyn Device>)> = Vec::new();
        for p in paths {
            let dev = FileDevice::open(p, opts.writable).map_err(|e| {
                Error::Invalid(format!("alloc_volume: Failed to open {p}: {}", io_text(&e)))
            })?;
            // A writer holds every volume exclusively until it is done; a
            // reader shares. The lock goes with the file when the set is
            // dropped, after its last write.
            let locked = if opts.writable {
                dev.file().try_lock()
            } else {
                dev.file().try_lock_shared()
            };
            if let Err(e) = locked {
                return Err(Error::Invalid(match e {
                    std::fs::TryLockError::WouldBlock => format!(
                        "{p}: volume is in use: {} (a mount or a tool is writing to it)",
                        if opts.writable {
                            "another user holds it"
                        } else {
                            "it is locked for writing"
                        }
                    ),
                    std::fs::TryLockError::Error(e) => {
                        format!("{p}: cannot lock the volume: {}", io_text(&e))
                    }
                }));
            }
            devs.push((p.clone(), Arc::new(dev)));
        }
        Self::open_devices(devs, opts)
    }

    /// Opens already-made devices (tests use memory devices).
    pub fn open_devices(
        devs: Vec<(String, Arc<dyn Device>)>,
        opts: &OpenOptions,
    ) -> Result<VolumeSet> {
        let records = Arc::new(RecordCache::new(opts.cache_bytes));
        let mut set = VolumeSet {
            vols: (0..HAMMER_MAX_VOLUMES).map(|_| None).collect(),
            order: Vec::new(),
            // One budget for both: metadata buffers take up to half as
            // they are needed, and file data records use the rest (every
            // record that stays cached spares a whole-record read and CRC
            // check for each 4 KiB read inside it).
            cache: BufferCache::with_records(opts.cache_bytes, records.clone()),
            records,
            cache_budget: opts.cache_bytes,
            dirty: Default::default(),
            behind: Default::default(),
            behind_cached: Default::default(),
            behind_order: Default::default(),
            generation: 0,
            behind_bytes: 0,
            behind_failed: false,
            writable: opts.writable,
            fl: Default::default(),
            nomirror: false,
        };
        let mut fsid: Option<HammerUuid> = None;
        for (name, dev) in devs {
            let ondisk = read_header(&name, dev.as_ref())?;
            verify_header(&name, &ondisk, &mut fsid)?;
            let vol_no = ondisk.vol_no as u32;
            if let Some(prev) = &set.vols[vol_no as usize] {
                return Err(Error::Invalid(format!(
                    "add_volume: {name}: Duplicate volume number {vol_no} against {}",
                    prev.name
                )));
            }
            check_layout(&name, &ondisk, dev.as_ref())?;
            set.order.push(vol_no);
            set.vols[vol_no as usize] = Some(Volume { name, dev, ondisk });
        }
        let given = set.order.len();
        let Some(&first) = set.order.first() else {
            return Err(Error::Invalid(
                "A -f blkdevs specification is required for this command".into(),
            ));
        };
        let count = set.vols[first as usize]
            .as_ref()
            .map(|v| v.ondisk.vol_count)
            .unwrap_or(0);
        if count as usize != given {
            return Err(Error::Invalid(format!(
                "Volume header says {count} volumes, but {given} specified."
            )));
        }
        for v in set.iter() {
            if v.ondisk.vol_count != count {
                return Err(Error::Invalid(format!(
                    "{}: vol_count {} differs from the other volumes' {count}",
                    v.name, v.ondisk.vol_count
                )));
            }
            if v.ondisk.vol_no as usize >= given {
                return Err(Error::Invalid(format!(
                    "{}: volume number {} is outside a set of {given} volumes",
                    v.name, v.ondisk.vol_no
                )));
            }
        }
        if set.vols[0].is_none() {
            return Err(Error::Invalid(
                "the root volume (volume 0) is missing".into(),
            ));
        }
        set.check_root()?;
        if opts.recover {
            set.recover()?;
        }
        Ok(set)
    }

    /// Checks the root volume's zone blockmaps and UNDO array enough that
    /// later walks cannot be led outside the volume set.
    fn check_root(&self) -> Result<()> {
        let root = self.root();
        let bm = &root.ondisk.vol0_blockmap;
        let undo = &bm[HAMMER_ZONE_UNDO_INDEX as usize];
        let undo_len = undo.alloc_offset & HAMMER_OFF_LONG_MASK;
        let nblocks = undo_len / HAMMER_BIGBLOCK_SIZE;
        if zone_of(undo.alloc_offset) != 3 && undo.alloc_offset != 0
            || nblocks > HAMMER_UNDO_LAYER2 as u64
            || !undo_len.is_multiple_of(HAMMER_BIGBLOCK_SIZE)
        {
            return Err(Error::corrupt(
                &root.name,
                format!(
                    "UNDO blockmap alloc_offset {:016x} is invalid",
                    undo.alloc_offset
                ),
                0x108 + 40 * 3 + 24,
            ));
        }
        Ok(())
    }

    pub fn root(&self) -> &Volume {
        self.vols[0].as_ref().expect("checked at open")
    }

    /// Volume `vol_no`, which `offset` (for the error) lies in.
    pub(crate) fn volume_at(&self, vol_no: u32, offset: u64) -> Result<&Volume> {
        self.volume(vol_no).ok_or(Error::BadAddress {
            what: "no such volume",
            offset,
        })
    }

    pub fn volume(&self, vol_no: u32) -> Option<&Volume> {
        self.vols.get(vol_no as usize).and_then(|v| v.as_ref())
    }

    /// Volumes in volume-number order.
    pub fn iter(&self) -> impl Iterator<Item = &Volume> {
        self.vols.iter().filter_map(|v| v.as_ref())
    }

    /// The whole cache budget, in bytes.
    pub fn cache_budget(&self) -> usize {
        self.cache_budget
    }

    /// Tells the record cache how much of the budget file data waiting
    /// for its flush holds now (it gives that room up).
    pub(crate) fn reserve_for_pending(&self, bytes: u64) {
        self.records.reserve(bytes.min(usize::MAX as u64) as usize);
    }

    pub fn version(&self) -> u32 {
        self.root().ondisk.vol_version
    }

    pub fn header(&self) -> &HammerVolumeOndisk {
        &self.root().ondisk
    }

    /// Translates a zone-2 address to (volume, byte offset on its device),
    /// checking it lies inside the volume's buffer space.
    pub fn zone2_to_phys(&self, zone2: u64) -> Result<(&Volume, u64)> {
        let vol = self.volume_at(vol_of(zone2), zone2)?;
        let off = short_of(zone2);
        let beg = vol.ondisk.vol_buf_beg as u64;
        let end = vol.ondisk.vol_buf_end as u64;
        let phys = beg
            .checked_add(off)
            .filter(|&p| p < end)
            .ok_or(Error::BadAddress {
                what: "beyond the end of the volume",
                offset: zone2,
            })?;
        Ok((vol, phys))
    }

    /// (volume number, device offset) of a zone-2 address: how dirty
    /// buffers, write-behind blocks and cached records are keyed.
    pub(crate) fn device_key(&self, zone2: u64) -> Result<(u32, u64)> {
        let (v, p) = self.zone2_to_phys(zone2)?;
        Ok((v.vol_no(), p))
    }

    /// Translates any readable address (zones 2, 3, 4, 8–15) to zone 2.
    pub fn to_zone2(&self, off: u64) -> Result<u64> {
        let zone = zone_of(off);
        if zone == HAMMER_ZONE_UNDO_INDEX {
            let bm = &self.header().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize];
            let short = off & HAMMER_OFF_LONG_MASK;
            if off & HAMMER_OFF_VOL_MASK != 0 || short >= (bm.alloc_offset & HAMMER_OFF_LONG_MASK) {
                return Err(Error::BadAddress {
                    what: "beyond the UNDO FIFO",
                    offset: off,
                });
            }
            let i = (short / HAMMER_BIGBLOCK_SIZE) as usize;
            let base = self.header().vol0_undo_array[i];
            if zone_of(base) != HAMMER_ZONE_RAW_BUFFER_INDEX {
                return Err(Error::BadAddress {
                    what: "UNDO big-block not mapped",
                    offset: off,
                });
            }
            return Ok(base + (short & HAMMER_BIGBLOCK_MASK));
        }
        if is_index_direct_xlated(zone) {
            return Ok(xlate_to_zone2(off));
        }
        Err(Error::BadAddress {
            what: "not a readable zone",
            offset: off,
        })
    }

    /// The 16 KiB buffer holding `zone2` (aligned down), through the cache.
    pub fn buffer(&self, zone2: u64) -> Result<Buffer> {
        let aligned = zone2 & !HAMMER_BUFMASK;
        let (vol, phys) = self.zone2_to_phys(aligned)?;
        let vol_no = vol.vol_no();
        if let Some(b) = self.dirty.get(&(vol_no, phys)) {
            return Ok(b.clone());
        }
        if let Some(b) = self.behind_buffer(vol_no, phys) {
            return Ok(b);
        }
        if let Some(b) = self.cache.get(vol_no, phys) {
            return Ok(b);
        }
        let mut buf = Box::new([0u8; BUFSIZE]);
        // A buffer may run past a volume that is not a multiple of 16 KiB
        // only if the header lies; zone2_to_phys checked the start.
        vol.dev.read_at(&mut buf[..], phys).map_err(|e| {
            Error::Invalid(format!(
                "Failed to read {}:{:016x} at {:016x}: {}",
                vol.name,
                aligned,
                phys,
                io_text(&e)
            ))
        })?;
        let b: Buffer = Arc::from(buf);
        self.cache.insert(vol_no, phys, b.clone());
        Ok(b)
    }

    /// Runs `f` on the 16 KiB buffer holding `zone2` without taking a
    /// reference to it when it is cached. `f` may run under the buffer
    /// cache's lock: it must not call back into the set.
    pub(crate) fn peek_buffer<R>(
        &self,
        zone2: u64,
        f: impl FnOnce(&[u8; BUFSIZE]) -> R,
    ) -> Result<R> {
        let aligned = zone2 & !HAMMER_BUFMASK;
        let (vol_no, phys) = self.device_key(aligned)?;
        if let Some(b) = self.dirty.get(&(vol_no, phys)) {
            return Ok(f(b));
        }
        if let Some(b) = self.behind_buffer(vol_no, phys) {
            return Ok(f(&b));
        }
        match self.cache.peek(vol_no, phys, f) {
            Ok(r) => Ok(r),
            Err(f) => Ok(f(&*self.buffer(aligned)?)),
        }
    }

    /// The write-behind block holding the 16 KiB buffer at device offset
    /// `phys` of volume `vol_no`, if any.
    pub(crate) fn behind_block(&self, vol_no: u32, phys: u64) -> Option<(&Arc<DataBlock>, usize)> {
        if self.behind.is_empty() {
            return None;
        }
        let (&(v, start), b) = self.behind.range(..=(vol_no, phys)).next_back()?;
        (v == vol_no && phys < start + b.len() as u64).then(|| (b, (phys - start) as usize))
    }

    /// A copy of the 16 KiB buffer at `phys` when write-behind data covers
    /// it (rare: data is read back before its flush is over).
    fn behind_buffer(&self, vol_no: u32, phys: u64) -> Option<Buffer> {
        let (b, at) = self.behind_block(vol_no, phys)?;
        let bytes = b.bytes().get(at..at + BUFSIZE)?;
        Some(crate::cache::buffer_from(bytes))
    }

    /// Whether write-behind data overlaps device bytes `[from, to)`.
    pub(crate) fn behind_overlaps(&self, vol_no: u32, from: u64, to: u64) -> bool {
        if self.behind.is_empty() {
            return false;
        }
        if self.behind_block(vol_no, from).is_some() {
            return true;
        }
        self.behind
            .range((vol_no, from)..(vol_no, to))
            .next()
            .is_some()
    }

    /// Reads `len` bytes at any readable address. Data may span buffers
    /// (records up to 64 KiB are contiguous in zone-2 space).
    pub fn read(&self, off: u64, len: usize) -> Result<Vec<u8>> {
        if len > BUFSIZE {
            if let Some(v) = self.read_through(off, len)? {
                return Ok(v);
            }
        }
        let mut out = Vec::with_capacity(len);
        let mut cur = off;
        while out.len() < len {
            let z2 = self.to_zone2(cur)?;
            let b = self.buffer(z2)?;
            let in_buf = (z2 & HAMMER_BUFMASK) as usize;
            let n = (BUFSIZE - in_buf).min(len - out.len());
            out.extend_from_slice(&b[in_buf..in_buf + n]);
            cur = cur.checked_add(n as u64).ok_or(Error::BadAddress {
                what: "address overflow",
                offset: off,
            })?;
        }
        Ok(out)
    }

    /// A read spanning several buffers, none of them in memory, in one
    /// system call and without filling the buffer cache (file data is the
    /// kernel page cache's to keep); `None` when it cannot go that way.
    fn read_through(&self, off: u64, len: usize) -> Result<Option<Vec<u8>>> {
        let Some((vol, z2, phys)) = self.through_target(off, len)? else {
            return Ok(None);
        };
        let out = vol
            .dev
            .read_vec(len, phys)
            .map_err(|e| read_error(vol, z2, phys, &e))?;
        Ok(Some(out))
    }

    /// As `read_through`, into `dst` (all of it); false when it cannot go
    /// that way.
    pub(crate) fn read_through_into(&self, off: u64, dst: &mut [u8]) -> Result<bool> {
        if dst.is_empty() {
            return Ok(false);
        }
        let Some((vol, z2, phys)) = self.through_target(off, dst.len())? else {
            return Ok(false);
        };
        vol.dev
            .read_at(dst, phys)
            .map_err(|e| read_error(vol, z2, phys, &e))?;
        Ok(true)
    }

    /// Where a read of `len` bytes at `off` can go straight to the device:
    /// one contiguous run of one volume, no part of it dirty, being
    /// written behind, or in the buffer cache.
    fn through_target(&self, off: u64, len: usize) -> Result<Option<(&Volume, u64, u64)>> {
        let z2 = self.to_zone2(off)?;
        let Some(end) = z2.checked_add(len as u64 - 1) else {
            return Ok(None);
        };
        // Within one big-block the zone-2 range is contiguous on disk.
        if z2 / HAMMER_BIGBLOCK_SIZE != end / HAMMER_BIGBLOCK_SIZE {
            return Ok(None);
        }
        let (vol, phys) = self.zone2_to_phys(z2)?;
        let vol_no = vol.vol_no();
        // The end must be inside the same volume's buffer area too.
        let (evol, ephys) = self.zone2_to_phys(end)?;
        if evol.vol_no() != vol_no || ephys != phys + len as u64 - 1 {
            return Ok(None);
        }
        let first = phys & !HAMMER_BUFMASK;
        let last = (phys + len as u64 - 1) & !HAMMER_BUFMASK;
        if self
            .dirty
            .range((vol_no, first)..=(vol_no, last))
            .next()
            .is_some()
            || self.behind_overlaps(vol_no, first, last + BUFSIZE as u64)
        {
            return Ok(None);
        }
        let mut b = first;
        while b <= last {
            if self.cache.contains(vol_no, b) {
                return Ok(None);
            }
            b += BUFSIZE as u64;
        }
        Ok(Some((vol, z2, phys)))
    }

    /// Reads a B-tree node (4096 bytes, never crossing a buffer).
    pub fn read_node(&self, off: u64) -> Result<HammerNodeOndisk> {
        if off & (HAMMER_NODE_SIZE as u64 - 1) != 0 {
            return Err(Error::BadAddress {
                what: "B-tree node not 4096-aligned",
                offset: off,
            });
        }
        let z2 = self.to_zone2(off)?;
        let b = self.buffer(z2)?;
        let i = (z2 & HAMMER_BUFMASK) as usize;
        Ok(HammerNodeOndisk::read_from_bytes(&b[i..i + HAMMER_NODE_SIZE]).expect("4096 bytes"))
    }

    /// The layer1 entry covering a zone-2/4/8–15 address, and its zone-2 address.
    pub fn layer1(&self, off: u64) -> Result<(HammerBlockmapLayer1, u64)> {
        let fm = &self.header().vol0_blockmap[HAMMER_ZONE_FREEMAP_INDEX as usize];
        let z2 = xlate_to_zone2(off);
        let l1_off = fm
            .phys_offset
            .checked_add(layer1_offset(z2))
            .ok_or(Error::BadAddress {
                what: "freemap overflow",
                offset: off,
            })?;
        let b = self.read(l1_off, 32)?;
        Ok((
            HammerBlockmapLayer1::read_from_bytes(&b).expect("32 bytes"),
            l1_off,
        ))
    }

    /// The layer2 entry of the big-block holding `off`, with its layer1
    /// entry, or `None` when the layer1 entry has no layer2 (UNAVAIL).
    #[allow(clippy::type_complexity)]
    pub fn layer2(
        &self,
        off: u64,
    ) -> Result<Option<(HammerBlockmapLayer2, u64, HammerBlockmapLayer1, u64)>> {
        let (l1, l1_off) = self.layer1(off)?;
        if l1.phys_offset == HAMMER_BLOCKMAP_UNAVAIL {
            return Ok(None);
        }
        let z2 = xlate_to_zone2(off);
        let l2_off = l1
            .phys_offset
            .checked_add(layer2_offset(z2))
            .ok_or(Error::BadAddress {
                what: "freemap overflow",
                offset: off,
            })?;
        let b = self.read(l2_off, 16)?;
        Ok(Some((
            HammerBlockmapLayer2::read_from_bytes(&b).expect("16 bytes"),
            l2_off,
            l1,
            l1_off,
        )))
    }
}

fn io_text(e: &std::io::Error) -> String {
    // Match the C library's wording ("No such file or directory") without
    // Rust's " (os error N)" suffix.
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn read_header(name: &str, dev: &dyn Device) -> Result<HammerVolumeOndisk> {
    let mut b = vec![0u8; core::mem::size_of::<HammerVolumeOndisk>()];
    dev.read_at(&mut b, 0).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Invalid(format!("load_volume: {name}: Read failed at offset 0: volume is only {} bytes, shorter than a volume header", dev.size()))
        } else {
            Error::Invalid(format!("load_volume: {name}: Read failed at offset 0: {}", io_text(&e)))
        }
    })?;
    Ok(HammerVolumeOndisk::read_from_bytes(&b).expect("header size"))
}

fn verify_header(name: &str, h: &HammerVolumeOndisk, fsid: &mut Option<HammerUuid>) -> Result<()> {
    if h.vol_signature != HAMMER_FSBUF_VOLUME {
        let hint = if h.vol_signature == HAMMER_FSBUF_VOLUME_REV {
            " (byte-swapped: written with the other endianness)"
        } else {
            ""
        };
        return Err(Error::Invalid(format!(
            "verify_volume: Invalid volume signature {:016x}{hint}",
            h.vol_signature
        )));
    }
    if h.vol_rootvol != HAMMER_ROOT_VOLNO {
        return Err(Error::Invalid(format!(
            "verify_volume: Invalid root volume# {}",
            h.vol_rootvol as i32
        )));
    }
    if h.vol_fstype != HAMMER_FSTYPE_UUID {
        return Err(Error::Invalid(format!(
            "verify_volume: {name}: fstype {} does not indicate this is a HAMMER volume",
            h.vol_fstype.to_dfly_string()
        )));
    }
    match fsid {
        Some(f) if *f != h.vol_fsid => {
            return Err(Error::Invalid(format!(
                "verify_volume: {name}: fsid does not match other volumes!"
            )));
        }
        Some(_) => {}
        None => *fsid = Some(h.vol_fsid),
    }
    if h.vol_version < HAMMER_VOL_VERSION_MIN || h.vol_version >= HAMMER_VOL_VERSION_WIP {
        return Err(Error::Invalid(format!(
            "verify_volume: {name}: Invalid volume version {}",
            h.vol_version
        )));
    }
    if h.vol_no < 0 || h.vol_no as usize >= HAMMER_MAX_VOLUMES {
        return Err(Error::corrupt(
            name,
            format!("volume number {} out of range", h.vol_no),
            0x90,
        ));
    }
    if h.vol_count < 1 || h.vol_count as usize > HAMMER_MAX_VOLUMES {
        return Err(Error::corrupt(
            name,
            format!("volume count {} out of range", h.vol_count),
            0x94,
        ));
    }
    Ok(())
}

fn check_layout(name: &str, h: &HammerVolumeOndisk, dev: &dyn Device) -> Result<()> {
    let hdr = core::mem::size_of::<HammerVolumeOndisk>() as i64;
    let ok = h.vol_bot_beg >= hdr
        && h.vol_mem_beg >= h.vol_bot_beg
        && h.vol_buf_beg >= h.vol_mem_beg
        && h.vol_buf_end >= h.vol_buf_beg
        && (h.vol_buf_beg as u64) & HAMMER_BUFMASK == 0
        && (h.vol_buf_end - h.vol_buf_beg) as u64 <= HAMMER_OFF_SHORT_MASK;
    if !ok {
        return Err(Error::corrupt(
            name,
            format!(
                "volume layout is inconsistent (bot_beg {:#x}, mem_beg {:#x}, buf_beg {:#x}, buf_end {:#x})",
                h.vol_bot_beg, h.vol_mem_beg, h.vol_buf_beg, h.vol_buf_end
            ),
            0x08,
        ));
    }
    if h.vol_buf_end as u64 > dev.size() {
        return Err(Error::corrupt(
            name,
            format!("volume is truncated: header says it ends at {:#x} but the device has only {:#x} bytes", h.vol_buf_end, dev.size()),
            0x20,
        ));
    }
    let _ = h.as_bytes();
    Ok(())
}

/// The error of a failed device read, as DragonFly's tools word it.
fn read_error(vol: &Volume, z2: u64, phys: u64, e: &std::io::Error) -> Error {
    Error::Invalid(format!(
        "Failed to read {}:{:016x} at {:016x}: {}",
        vol.name,
        z2,
        phys,
        io_text(e)
    ))
}
