//! The 64-bit `hammer_off_t`: zone (bits 60–63), volume (52–59) and a 52-bit
//! offset. Zones 2, 4 and 8–15 are "direct translated": the address with the
//! zone nibble replaced by 2 is the raw-buffer address, and the freemap only
//! records which zone owns each 8 MiB big-block. Zone 3 (UNDO) goes through
//! `vol0_undo_array`.

pub type HammerOff = u64;
pub type HammerTid = u64;

pub const HAMMER_OFF_ZONE_MASK: u64 = 0xF000_0000_0000_0000;
pub const HAMMER_OFF_VOL_MASK: u64 = 0x0FF0_0000_0000_0000;
pub const HAMMER_OFF_SHORT_MASK: u64 = 0x000F_FFFF_FFFF_FFFF;
pub const HAMMER_OFF_LONG_MASK: u64 = 0x0FFF_FFFF_FFFF_FFFF;
pub const HAMMER_OFF_BAD: u64 = u64::MAX;
pub const HAMMER_BLOCKMAP_UNAVAIL: u64 = u64::MAX;

pub const HAMMER_ZONE_RAW_VOLUME_INDEX: u32 = 1;
pub const HAMMER_ZONE_RAW_BUFFER_INDEX: u32 = 2;
pub const HAMMER_ZONE_UNDO_INDEX: u32 = 3;
pub const HAMMER_ZONE_FREEMAP_INDEX: u32 = 4;
pub const HAMMER_ZONE_BTREE_INDEX: u32 = 8;
pub const HAMMER_ZONE_META_INDEX: u32 = 9;
pub const HAMMER_ZONE_LARGE_DATA_INDEX: u32 = 10;
pub const HAMMER_ZONE_SMALL_DATA_INDEX: u32 = 11;
pub const HAMMER_ZONE_UNAVAIL_INDEX: u32 = 15;
pub const HAMMER_MAX_ZONES: usize = 16;

pub const HAMMER_ZONE_RAW_VOLUME: u64 = 0x1000_0000_0000_0000;
pub const HAMMER_ZONE_RAW_BUFFER: u64 = 0x2000_0000_0000_0000;
pub const HAMMER_ZONE_UNDO: u64 = 0x3000_0000_0000_0000;
pub const HAMMER_ZONE_FREEMAP: u64 = 0x4000_0000_0000_0000;
pub const HAMMER_ZONE_BTREE: u64 = 0x8000_0000_0000_0000;
pub const HAMMER_ZONE_META: u64 = 0x9000_0000_0000_0000;
pub const HAMMER_ZONE_LARGE_DATA: u64 = 0xA000_0000_0000_0000;
pub const HAMMER_ZONE_SMALL_DATA: u64 = 0xB000_0000_0000_0000;
pub const HAMMER_ZONE_UNAVAIL: u64 = 0xF000_0000_0000_0000;

/// Each layer1 entry covers 4 TiB; each layer2 entry one big-block.
pub const HAMMER_BLOCKMAP_RADIX1: u64 = 1 << 18;
pub const HAMMER_BLOCKMAP_RADIX2: u64 = 1 << 19;
pub const HAMMER_BLOCKMAP_LAYER2: u64 = HAMMER_BLOCKMAP_RADIX2 * crate::HAMMER_BIGBLOCK_SIZE;
pub const HAMMER_BLOCKMAP_LAYER2_MASK: u64 = HAMMER_BLOCKMAP_LAYER2 - 1;
pub const HAMMER_BLOCKMAP_LAYER1: u64 = HAMMER_BLOCKMAP_RADIX1 * HAMMER_BLOCKMAP_LAYER2;
pub const HAMMER_BLOCKMAP_LAYER1_MASK: u64 = HAMMER_BLOCKMAP_LAYER1.wrapping_sub(1);

/// The zone index (0..=15) of an offset.
pub const fn zone_of(off: u64) -> u32 {
    (off >> 60) as u32
}

/// The volume number (0..=255) of an offset.
pub const fn vol_of(off: u64) -> u32 {
    ((off >> 52) & 255) as u32
}

/// The 52-bit offset within the volume's zone space.
pub const fn short_of(off: u64) -> u64 {
    off & HAMMER_OFF_SHORT_MASK
}

pub const fn encode(zone: u32, vol_no: u32, offset: u64) -> u64 {
    ((zone as u64) << 60) | ((vol_no as u64) << 52) | (offset & HAMMER_OFF_SHORT_MASK)
}

pub const fn encode_raw_buffer(vol_no: u32, offset: u64) -> u64 {
    encode(HAMMER_ZONE_RAW_BUFFER_INDEX, vol_no, offset)
}

/// Whether a zone maps onto raw-buffer space by swapping the zone nibble.
pub const fn is_index_direct_xlated(zone: u32) -> bool {
    zone == HAMMER_ZONE_RAW_BUFFER_INDEX
        || zone == HAMMER_ZONE_FREEMAP_INDEX
        || zone >= HAMMER_ZONE_BTREE_INDEX
}

/// Whether a zone holds record data (B-tree leaf `data_offset` targets).
pub const fn is_index_record(zone: u32) -> bool {
    zone >= HAMMER_ZONE_BTREE_INDEX && zone < HAMMER_MAX_ZONES as u32 - 1
}

pub const fn xlate_to_zone2(off: u64) -> u64 {
    (off & !HAMMER_OFF_ZONE_MASK) | HAMMER_ZONE_RAW_BUFFER
}

pub const fn xlate_to_zone_x(zone: u32, off: u64) -> u64 {
    (off & !HAMMER_OFF_ZONE_MASK) | ((zone as u64) << 60)
}

/// Whether `zone` holds record data (large or small), not metadata.
pub const fn is_data_zone(zone: u32) -> bool {
    zone == HAMMER_ZONE_LARGE_DATA_INDEX || zone == HAMMER_ZONE_SMALL_DATA_INDEX
}

/// The data zone DragonFly picks for a record of `len` bytes.
pub const fn data_zone_index(len: u64) -> u32 {
    if len >= crate::HAMMER_BUFSIZE {
        HAMMER_ZONE_LARGE_DATA_INDEX
    } else {
        HAMMER_ZONE_SMALL_DATA_INDEX
    }
}

/// Layer1 entry index (bits 42..59) of a zone-2 offset.
pub const fn layer1_index(zone2: u64) -> u64 {
    (zone2 & HAMMER_BLOCKMAP_LAYER1_MASK) / HAMMER_BLOCKMAP_LAYER2
}

/// Layer2 entry index (bits 23..41) of a zone-2 offset.
pub const fn layer2_index(zone2: u64) -> u64 {
    (zone2 & HAMMER_BLOCKMAP_LAYER2_MASK) / crate::HAMMER_BIGBLOCK_SIZE
}

/// Byte offset of the layer1 entry within the layer1 big-block.
pub const fn layer1_offset(zone2: u64) -> u64 {
    layer1_index(zone2) * 32
}

/// Byte offset of the layer2 entry within its layer2 big-block.
pub const fn layer2_offset(zone2: u64) -> u64 {
    layer2_index(zone2) * 16
}

/// The zone name DragonFly's tools print (`zone 8  btree`).
pub fn zone_label(zone: u32) -> &'static str {
    match zone {
        1 => "raw_volume",
        2 => "raw_buffer",
        3 => "undo",
        4 => "freemap",
        8 => "btree",
        9 => "meta",
        10 => "large_data",
        11 => "small_data",
        15 => "unavail",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode() {
        let o = encode(8, 3, 0x1234_5678);
        assert_eq!(zone_of(o), 8);
        assert_eq!(vol_of(o), 3);
        assert_eq!(short_of(o), 0x1234_5678);
        assert_eq!(xlate_to_zone2(o), encode(2, 3, 0x1234_5678));
    }

    #[test]
    fn freemap_indices() {
        // Volume 1, as the two-volume fixture has it: layer1 entry #1024.
        let o = 0x2010_0000_0000_0000u64;
        assert_eq!(layer1_index(o), 1024);
        assert_eq!(layer2_index(o), 0);
        assert_eq!(layer2_index(0x2000_0000_0180_0000), 3);
        assert_eq!(layer2_offset(0x2000_0000_0180_0000), 48);
    }
}
