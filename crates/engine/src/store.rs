//! B-tree nodes on a volume set: zone-8 space from the allocator, read in
//! place from the buffer cache and changed in place in copy-on-write dirty
//! buffers, with the version's CRC kept right on every change.

use crate::btree::NodeStore;
use crate::cache::{RecordBytes, BUFSIZE};
use crate::error::{Error, Result};
use crate::volume::VolumeSet;
use hammer_ondisk::*;
use std::sync::Arc;
use zerocopy::{FromBytes, IntoBytes};

impl VolumeSet {
    /// A file data record's bytes (`record_data`), through the record
    /// cache: held whole in memory after the first read, and shared, not
    /// copied.
    pub fn file_data(&self, e: &HammerBtreeLeafElm) -> Result<RecordBytes> {
        self.file_data_as(e, false)
    }

    /// A record's bytes for a rewrite of its block: the cached copy is
    /// taken out of the cache, and one read from disk is not kept, since
    /// the block's new record replaces this one at the next flush.
    pub fn file_data_for_rewrite(&self, e: &HammerBtreeLeafElm) -> Result<RecordBytes> {
        self.file_data_as(e, true)
    }

    fn file_data_as(&self, e: &HammerBtreeLeafElm, rewrite: bool) -> Result<RecordBytes> {
        let len = e.data_len.max(0) as usize;
        let Some(key) = self.cacheable_key(e)? else {
            return Ok(RecordBytes::Read(Arc::new(self.record_data(e)?)));
        };
        if let Some((b, 0)) = self.behind_block(key.0, key.1) {
            if b.len() >= len {
                return Ok(RecordBytes::Block(b.clone(), len));
            }
        }
        if rewrite {
            if let Some(r) = self.records.take(key, len, e.data_crc) {
                return Ok(r);
            }
            return Ok(RecordBytes::Read(Arc::new(self.record_data(e)?)));
        }
        if let Some(r) = self.records.get(key, len, e.data_crc) {
            return Ok(r);
        }
        let r = RecordBytes::Read(Arc::new(self.record_data(e)?));
        self.records.insert(key, r.clone(), Some(e.data_crc));
        Ok(r)
    }

    /// A file data record's bytes, checked, into `dst` (exactly the
    /// record's length): for a read that wants the whole record. From
    /// memory when it is there; otherwise read from the disk straight into
    /// `dst` and not kept in the record cache: a reader taking whole
    /// records (sequential reads, which the kernel sends as large
    /// requests) gets them kept by the kernel's page cache above FUSE, and
    /// keeping them here too would cost a copy and evict the records that
    /// small reads inside large records need.
    pub fn file_data_into(&self, e: &HammerBtreeLeafElm, dst: &mut [u8]) -> Result<()> {
        let len = e.data_len.max(0) as usize;
        if dst.len() != len {
            return Err(Error::corrupt(
                "btree",
                format!("record data length {len}, {} wanted", dst.len()),
                e.data_offset,
            ));
        }
        if let Some(key) = self.cacheable_key(e)? {
            if let Some((b, 0)) = self.behind_block(key.0, key.1) {
                if b.len() >= len {
                    dst.copy_from_slice(&b.bytes()[..len]);
                    return Ok(());
                }
            }
            if let Some(r) = self.records.get(key, len, e.data_crc) {
                dst.copy_from_slice(&r);
                return Ok(());
            }
            if self.read_through_into(e.data_offset, dst)? {
                if leaf_data_crc_ok(self.version(), e.base.rec_type, dst, e.data_crc).is_none() {
                    return Err(Error::corrupt(
                        "btree",
                        "record data CRC mismatch",
                        e.data_offset,
                    ));
                }
                return Ok(());
            }
        }
        dst.copy_from_slice(&self.record_data(e)?);
        Ok(())
    }

    /// Where a file data record's bytes may be found in memory (the
    /// write-behind blocks, the record cache): its device key, unless it
    /// is empty, longer than a record can be, outside the data zones, or
    /// changed in place since (a dirty buffer over it wins over both, so
    /// it is read the plain way).
    fn cacheable_key(&self, e: &HammerBtreeLeafElm) -> Result<Option<(u32, u64)>> {
        let len = e.data_len.max(0) as u64;
        if len == 0 || len > HAMMER_XBUFSIZE || !is_data_zone(zone_of(e.data_offset)) {
            return Ok(None);
        }
        let key = self.device_key(self.to_zone2(e.data_offset)?)?;
        let overlaid = !self.dirty.is_empty()
            && self
                .dirty
                .range((key.0, key.1 & !HAMMER_BUFMASK)..(key.0, key.1 + len))
                .next()
                .is_some();
        Ok((!overlaid).then_some(key))
    }

    /// A leaf's record data, bounds- and CRC-checked.
    pub fn record_data(&self, e: &HammerBtreeLeafElm) -> Result<Vec<u8>> {
        if e.data_len < 0 || e.data_len as u64 > HAMMER_XBUFSIZE {
            return Err(Error::corrupt(
                "btree",
                format!("record data length {}", e.data_len),
                e.data_offset,
            ));
        }
        if e.data_len == 0 {
            return Ok(Vec::new());
        }
        let d = self.read(e.data_offset, e.data_len as usize)?;
        if leaf_data_crc_ok(self.version(), e.base.rec_type, &d, e.data_crc).is_none() {
            return Err(Error::corrupt(
                "btree",
                "record data CRC mismatch",
                e.data_offset,
            ));
        }
        Ok(d)
    }

    /// Runs `f` on the node at `off`, borrowed from its cached buffer.
    pub fn with_node<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R> {
        let z2 = node_zone2(self, off)?;
        let b = self.buffer(z2)?;
        Ok(on_node(&b[..], z2, f))
    }

    /// As `with_node`, but `f` may run under the buffer cache's lock (no
    /// reference taken on the buffer): for searches whose closure only
    /// looks at the node.
    pub fn peek_node<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R> {
        let z2 = node_zone2(self, off)?;
        self.peek_buffer(z2, |b| on_node(&b[..], z2, f))
    }

    /// Changes the node at `off` in place in its dirty buffer, then
    /// refreshes its CRC.
    pub fn modify_node<R>(
        &mut self,
        off: u64,
        f: impl FnOnce(&mut HammerNodeOndisk) -> R,
    ) -> Result<R> {
        if off & (HAMMER_NODE_SIZE as u64 - 1) != 0 {
            return Err(Error::BadAddress {
                what: "B-tree node not 4096-aligned",
                offset: off,
            });
        }
        let kind = self.crc_kind();
        let mut result = None;
        self.update_buffer(off, |buf| {
            let at = (off & HAMMER_BUFMASK) as usize;
            let bytes = &mut buf[at..at + HAMMER_NODE_SIZE];
            let r = match HammerNodeOndisk::mut_from_bytes(bytes) {
                Ok(n) => {
                    let r = f(n);
                    n.set_crc(kind);
                    r
                }
                Err(_) => {
                    let mut n = HammerNodeOndisk::read_from_bytes(bytes).expect("4096 bytes");
                    let r = f(&mut n);
                    n.set_crc(kind);
                    bytes.copy_from_slice(n.as_bytes());
                    r
                }
            };
            result = Some(r);
        })?;
        Ok(result.expect("closure ran"))
    }

    /// Applies `f` to the dirty copy of the 16 KiB buffer holding `off`.
    pub(crate) fn update_buffer(
        &mut self,
        off: u64,
        f: impl FnOnce(&mut [u8; BUFSIZE]),
    ) -> Result<()> {
        if !self.writable {
            return Err(Error::Invalid("volume set is open read-only".into()));
        }
        let z2 = self.to_zone2(off)?;
        let aligned = z2 & !HAMMER_BUFMASK;
        let (vol_no, phys) = self.device_key(aligned)?;
        self.generation = self.generation.wrapping_add(1);
        if is_data_zone(zone_of(off)) {
            self.records.invalidate(vol_no, phys, phys + BUFSIZE as u64);
        }
        let mut buf = match self.dirty.remove(&(vol_no, phys)) {
            Some(b) => b,
            None => {
                let b = self.buffer(aligned)?;
                self.note_dirty((vol_no, phys), Some(b.clone()), zone_of(off));
                b
            }
        };
        f(Arc::make_mut(&mut buf));
        self.dirty.insert((vol_no, phys), buf);
        Ok(())
    }
}

impl NodeStore for VolumeSet {
    fn with_node<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R> {
        VolumeSet::with_node(self, off, f)
    }
    fn peek_node<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R> {
        VolumeSet::peek_node(self, off, f)
    }
    fn modify<R>(&mut self, off: u64, f: impl FnOnce(&mut HammerNodeOndisk) -> R) -> Result<R> {
        self.modify_node(off, f)
    }
    fn write(&mut self, off: u64, node: &HammerNodeOndisk) -> Result<()> {
        let mut n = *node;
        n.set_crc(self.crc_kind());
        VolumeSet::write(self, off, n.as_bytes())
    }
    fn alloc(&mut self) -> Result<u64> {
        VolumeSet::alloc(self, HAMMER_ZONE_BTREE_INDEX, HAMMER_NODE_SIZE as u64)
    }
    fn free(&mut self, off: u64) -> Result<()> {
        VolumeSet::free(self, off, HAMMER_NODE_SIZE as u64)
    }
    fn mirror_tids(&self) -> bool {
        !self.nomirror
    }
}

/// Read-only B-tree access through a shared volume set (scans and lookups
/// from `&self`); changes are refused.
pub struct ReadOnlyStore<'a>(pub &'a VolumeSet);

impl NodeStore for ReadOnlyStore<'_> {
    fn with_node<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R> {
        self.0.with_node(off, f)
    }
    fn peek_node<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R> {
        self.0.peek_node(off, f)
    }
    fn modify<R>(&mut self, off: u64, _: impl FnOnce(&mut HammerNodeOndisk) -> R) -> Result<R> {
        Err(Error::BadAddress {
            what: "change through a read-only store",
            offset: off,
        })
    }
    fn write(&mut self, off: u64, _: &HammerNodeOndisk) -> Result<()> {
        Err(Error::BadAddress {
            what: "write through a read-only store",
            offset: off,
        })
    }
    fn alloc(&mut self) -> Result<u64> {
        Err(Error::Invalid(
            "allocation through a read-only store".into(),
        ))
    }
    fn free(&mut self, off: u64) -> Result<()> {
        Err(Error::BadAddress {
            what: "free through a read-only store",
            offset: off,
        })
    }
}

/// The zone-2 address of the B-tree node at `off`, which must be aligned.
fn node_zone2(set: &VolumeSet, off: u64) -> Result<u64> {
    if off & (HAMMER_NODE_SIZE as u64 - 1) != 0 {
        return Err(Error::BadAddress {
            what: "B-tree node not 4096-aligned",
            offset: off,
        });
    }
    set.to_zone2(off)
}

/// Runs `f` on the node at `z2` inside its buffer's bytes `buf`.
fn on_node<R>(buf: &[u8], z2: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> R {
    let i = (z2 & HAMMER_BUFMASK) as usize;
    let bytes = &buf[i..i + HAMMER_NODE_SIZE];
    // Buffers are 8-byte aligned in practice; copy if one is not.
    match HammerNodeOndisk::ref_from_bytes(bytes) {
        Ok(n) => f(n),
        Err(_) => f(&HammerNodeOndisk::read_from_bytes(bytes).expect("4096 bytes")),
    }
}
