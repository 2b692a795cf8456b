//! Blockmap entries (one per zone in the volume header) and the two-level
//! freemap (zone 4): layer1 entries each cover 4 TiB and point at a layer2
//! big-block whose 16-byte entries describe one 8 MiB big-block each.

use crate::crc::{crc_test, CrcKind};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct hammer_blockmap`: a zone's allocation state, kept in the volume header.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerBlockmap {
    pub phys_offset: u64,
    pub first_offset: u64,
    pub next_offset: u64,
    pub alloc_offset: u64,
    pub reserved01: u32,
    pub entry_crc: u32,
}
crate::assert_size!(HammerBlockmap, 40);
crate::assert_offset!(HammerBlockmap, entry_crc, 36);
pub const HAMMER_BLOCKMAP_CRCSIZE: usize = 36;

/// `struct hammer_blockmap_layer1`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerBlockmapLayer1 {
    pub blocks_free: i64,
    pub phys_offset: u64,
    pub reserved01: u64,
    pub layer2_crc: u32,
    pub layer1_crc: u32,
}
crate::assert_size!(HammerBlockmapLayer1, 32);
crate::assert_offset!(HammerBlockmapLayer1, layer1_crc, 28);
pub const HAMMER_LAYER1_CRCSIZE: usize = 28;

/// `struct hammer_blockmap_layer2`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerBlockmapLayer2 {
    pub zone: u8,
    pub reserved01: u8,
    pub reserved02: u16,
    pub append_off: u32,
    pub bytes_free: i32,
    pub entry_crc: u32,
}
crate::assert_size!(HammerBlockmapLayer2, 16);
crate::assert_offset!(HammerBlockmapLayer2, bytes_free, 8);
pub const HAMMER_LAYER2_CRCSIZE: usize = 12;

impl HammerBlockmap {
    pub fn compute_crc(&self, kind: CrcKind) -> u32 {
        kind.compute(&self.as_bytes()[..HAMMER_BLOCKMAP_CRCSIZE])
    }
    pub fn set_crc(&mut self, kind: CrcKind) {
        self.entry_crc = self.compute_crc(kind);
    }
    pub fn crc_ok(&self, version: u32) -> Option<CrcKind> {
        crc_test(version, self.entry_crc, |k| self.compute_crc(k))
    }
}

impl HammerBlockmapLayer1 {
    pub fn compute_crc(&self, kind: CrcKind) -> u32 {
        kind.compute(&self.as_bytes()[..HAMMER_LAYER1_CRCSIZE])
    }
    pub fn set_crc(&mut self, kind: CrcKind) {
        self.layer1_crc = self.compute_crc(kind);
    }
    pub fn crc_ok(&self, version: u32) -> Option<CrcKind> {
        crc_test(version, self.layer1_crc, |k| self.compute_crc(k))
    }
}

impl HammerBlockmapLayer2 {
    pub fn compute_crc(&self, kind: CrcKind) -> u32 {
        kind.compute(&self.as_bytes()[..HAMMER_LAYER2_CRCSIZE])
    }
    pub fn set_crc(&mut self, kind: CrcKind) {
        self.entry_crc = self.compute_crc(kind);
    }
    pub fn crc_ok(&self, version: u32) -> Option<CrcKind> {
        crc_test(version, self.entry_crc, |k| self.compute_crc(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offset::HAMMER_BLOCKMAP_UNAVAIL;

    #[test]
    fn crc_vectors_from_format_doc() {
        let l1 = HammerBlockmapLayer1 {
            phys_offset: HAMMER_BLOCKMAP_UNAVAIL,
            ..Default::default()
        };
        assert_eq!(l1.compute_crc(CrcKind::Crc32), 0x631EA731);
        assert_eq!(l1.compute_crc(CrcKind::Crc32c), 0x097C0BBD);
        let free = HammerBlockmapLayer2 {
            bytes_free: 8388608,
            ..Default::default()
        };
        assert_eq!(free.compute_crc(CrcKind::Crc32), 0x40565E24);
        assert_eq!(free.compute_crc(CrcKind::Crc32c), 0xD0A34FA4);
        let z4 = HammerBlockmapLayer2 {
            zone: 4,
            append_off: 8388608,
            ..Default::default()
        };
        assert_eq!(z4.compute_crc(CrcKind::Crc32), 0x6663E9C8);
        assert_eq!(z4.compute_crc(CrcKind::Crc32c), 0xF2AF524B);
        let z15 = HammerBlockmapLayer2 {
            zone: 15,
            append_off: 8388608,
            ..Default::default()
        };
        assert_eq!(z15.compute_crc(CrcKind::Crc32), 0x17F14DC6);
        assert_eq!(z15.compute_crc(CrcKind::Crc32c), 0x2F5FF96A);
        let bm = HammerBlockmap {
            first_offset: 0xA000_0000_0000_0000,
            next_offset: 0xA000_0000_0000_0000,
            alloc_offset: 0xAFFF_FFFF_FFFF_FFFF,
            ..Default::default()
        };
        assert_eq!(bm.compute_crc(CrcKind::Crc32), 0xFA3DB281);
        assert_eq!(bm.compute_crc(CrcKind::Crc32c), 0xC67FF111);
    }
}
