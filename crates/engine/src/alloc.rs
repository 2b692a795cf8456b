//! The blockmap allocator (DragonFly's `hammer_blockmap_alloc` /
//! `hammer_blockmap_free`): zones 8 (B-tree), 9 (meta), 10 (large data) and
//! 11 (small data) hand out space append-only within 8 MiB big-blocks they
//! claim from the freemap; freed space is counted in `bytes_free` and a
//! big-block returns to the free pool when it is wholly empty.
//!
//! Rules kept from the kernel: allocations are rounded to 16 bytes; one of up
//! to 16 KiB never crosses a 16 KiB buffer and a larger one never crosses a
//! big-block; a zone's iterator `next_offset` wraps once before ENOSPC.

use crate::error::{Error, Result};
use crate::volume::VolumeSet;
use hammer_ondisk::*;
use zerocopy::{FromBytes, IntoBytes};

/// Free big-blocks that file data may not take: they are kept for the
/// metadata a flush writes.
pub const DATA_RESERVE_BIGBLOCKS: i64 = 2;

/// Errors the allocator adds.
pub fn enospc(_zone: u32) -> Error {
    Error::Fs(crate::error::FsError::NoSpace)
}

impl VolumeSet {
    fn read_l1(&self, l1_off: u64) -> Result<HammerBlockmapLayer1> {
        Ok(HammerBlockmapLayer1::read_from_bytes(&self.read(l1_off, 32)?).expect("32 bytes"))
    }

    fn read_l2(&self, l2_off: u64) -> Result<HammerBlockmapLayer2> {
        Ok(HammerBlockmapLayer2::read_from_bytes(&self.read(l2_off, 16)?).expect("16 bytes"))
    }

    /// Allocates `bytes` (1..=65536) in `zone` and returns the zone address.
    pub fn alloc(&mut self, zone: u32, bytes: u64) -> Result<u64> {
        if !(HAMMER_ZONE_BTREE_INDEX..HAMMER_ZONE_UNAVAIL_INDEX).contains(&zone)
            || bytes == 0
            || bytes > HAMMER_XBUFSIZE
        {
            return Err(Error::Invalid(format!(
                "bad allocation of {bytes} bytes in zone {zone}"
            )));
        }
        let bytes = data_doalign(bytes);
        let kind = self.crc_kind();
        let zone_base = (zone as u64) << 60;
        let zone_end = zone_base.wrapping_add(1 << 60);
        let mut next = self.header().vol0_blockmap[zone as usize].next_offset;
        if zone_of(next) != zone {
            next = zone_base;
        }
        let mut wraps = 0;
        loop {
            if next == zone_end || zone_of(next) != zone {
                wraps += 1;
                if wraps > 1 {
                    return Err(enospc(zone));
                }
                next = zone_base;
            }
            // Alignment rules: small allocations stay inside one 16 KiB
            // buffer, larger ones inside one big-block.
            if bytes <= HAMMER_BUFSIZE {
                if (next & HAMMER_BUFMASK) + bytes > HAMMER_BUFSIZE {
                    next = (next | HAMMER_BUFMASK).wrapping_add(1);
                    continue;
                }
            } else if (next & HAMMER_BIGBLOCK_MASK) + bytes > HAMMER_BIGBLOCK_SIZE {
                next = (next | HAMMER_BIGBLOCK_MASK).wrapping_add(1);
                continue;
            }
            let fm = self.header().vol0_blockmap[HAMMER_ZONE_FREEMAP_INDEX as usize].phys_offset;
            let z2 = xlate_to_zone2(next);
            let l1_off = fm + layer1_offset(z2);
            let mut l1 = self.read_l1(l1_off)?;
            if l1.phys_offset == HAMMER_BLOCKMAP_UNAVAIL || self.volume(vol_of(next)).is_none() {
                // No such 4 TiB region: go to the next one.
                next = (next | (HAMMER_BLOCKMAP_LAYER2 - 1)).wrapping_add(1);
                continue;
            }
            let l2_off = l1.phys_offset + layer2_offset(z2);
            let mut l2 = self.read_l2(l2_off)?;
            let in_bb = next & HAMMER_BIGBLOCK_MASK;
            let bb_next = (next | HAMMER_BIGBLOCK_MASK).wrapping_add(1);
            if l2.zone as u32 == HAMMER_ZONE_UNAVAIL_INDEX {
                // Past the end of this volume: the rest of the region is too.
                next = (next | (HAMMER_BLOCKMAP_LAYER2 - 1)).wrapping_add(1);
                continue;
            }
            if l2.zone != 0 && l2.zone as u32 != zone {
                next = bb_next;
                continue;
            }
            if l2.zone == 0 && l1.blocks_free == 0 {
                next = (next | (HAMMER_BLOCKMAP_LAYER2 - 1)).wrapping_add(1);
                continue;
            }
            if l2.zone as u32 == zone && in_bb < l2.append_off as u64 {
                next = (next & !HAMMER_BIGBLOCK_MASK) + l2.append_off as u64;
                continue;
            }
            if l2.zone as u32 == zone && l2.append_off as u64 >= HAMMER_BIGBLOCK_SIZE {
                next = bb_next;
                continue;
            }
            if l2.zone == 0
                && is_data_zone(zone)
                && self.header().vol0_stat_freebigblocks <= DATA_RESERVE_BIGBLOCKS
            {
                // The last big-blocks are kept for metadata, so that a flush
                // (inodes, B-tree splits, freemap) never runs out half-way.
                return Err(enospc(zone));
            }
            if l2.zone == 0 {
                // Claim the free big-block for this zone.
                l2.zone = zone as u8;
                l2.append_off = 0;
                l2.bytes_free = HAMMER_BIGBLOCK_SIZE as i32;
                l1.blocks_free -= 1;
                l1.set_crc(kind);
                self.write(l1_off, l1.as_bytes())?;
                self.header_mut().vol0_stat_freebigblocks -= 1;
            }
            l2.bytes_free -= bytes as i32;
            l2.append_off = (in_bb + bytes) as u32;
            l2.set_crc(kind);
            self.write(l2_off, l2.as_bytes())?;
            let h = self.header_mut();
            h.vol0_blockmap[zone as usize].next_offset = next + bytes;
            return Ok(next);
        }
    }

    /// Gives back `bytes` at `off`. A big-block whose every byte is free
    /// (and that is not where its zone is appending) returns to the pool.
    pub fn free(&mut self, off: u64, bytes: u64) -> Result<()> {
        let zone = zone_of(off);
        let bytes = data_doalign(bytes);
        let kind = self.crc_kind();
        let fm = self.header().vol0_blockmap[HAMMER_ZONE_FREEMAP_INDEX as usize].phys_offset;
        let z2 = xlate_to_zone2(off);
        let l1_off = fm + layer1_offset(z2);
        let l1 = self.read_l1(l1_off)?;
        if l1.phys_offset == HAMMER_BLOCKMAP_UNAVAIL {
            return Err(Error::BadAddress {
                what: "free of unmapped space",
                offset: off,
            });
        }
        let l2_off = l1.phys_offset + layer2_offset(z2);
        let mut l2 = self.read_l2(l2_off)?;
        if l2.zone as u32 != zone {
            return Err(Error::BadAddress {
                what: "free in a big-block of another zone",
                offset: off,
            });
        }
        l2.bytes_free = l2
            .bytes_free
            .checked_add(bytes as i32)
            .ok_or(Error::BadAddress {
                what: "bytes_free overflow",
                offset: off,
            })?;
        let appending_here = {
            let n = self.header().vol0_blockmap[zone as usize].next_offset;
            (n & !HAMMER_BIGBLOCK_MASK) == (off & !HAMMER_BIGBLOCK_MASK)
        };
        if l2.bytes_free as u64 == HAMMER_BIGBLOCK_SIZE && !appending_here {
            // The big-block is empty, but the B-tree on disk may still point
            // into it until this flush is final: returning it to the free
            // pool now could let new data overwrite bytes a rollback would
            // need. It is released after the flush (see `release_freed`).
            self.fl.pending_release.push(z2 & !HAMMER_BIGBLOCK_MASK);
        }
        l2.set_crc(kind);
        self.write(l2_off, l2.as_bytes())
    }

    /// Returns to the free pool the big-blocks that the last, now final,
    /// flush emptied, unless they have been used again since.
    pub fn release_freed(&mut self) -> Result<usize> {
        let pending = std::mem::take(&mut self.fl.pending_release);
        let kind = self.crc_kind();
        let fm = self.header().vol0_blockmap[HAMMER_ZONE_FREEMAP_INDEX as usize].phys_offset;
        let mut released = 0;
        for z2 in pending {
            let l1_off = fm + layer1_offset(z2);
            let mut l1 = self.read_l1(l1_off)?;
            if l1.phys_offset == HAMMER_BLOCKMAP_UNAVAIL {
                continue;
            }
            let l2_off = l1.phys_offset + layer2_offset(z2);
            let mut l2 = self.read_l2(l2_off)?;
            let zone = l2.zone as u32;
            if !(HAMMER_ZONE_BTREE_INDEX..HAMMER_ZONE_UNAVAIL_INDEX).contains(&zone)
                || l2.bytes_free as u64 != HAMMER_BIGBLOCK_SIZE
            {
                continue;
            }
            let n = self.header().vol0_blockmap[zone as usize].next_offset;
            if xlate_to_zone2(n) & !HAMMER_BIGBLOCK_MASK == z2 {
                continue;
            }
            l2.zone = 0;
            l2.append_off = 0;
            l2.set_crc(kind);
            self.write(l2_off, l2.as_bytes())?;
            l1.blocks_free += 1;
            l1.set_crc(kind);
            self.write(l1_off, l1.as_bytes())?;
            self.header_mut().vol0_stat_freebigblocks += 1;
            released += 1;
        }
        Ok(released)
    }
}
