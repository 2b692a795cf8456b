//! The volume header (`struct hammer_volume_ondisk`), 1928 bytes at offset 0
//! of every volume, read and written as one 16 KiB buffer. The `vol0_*`
//! fields, the zone blockmaps and the UNDO array are meaningful on volume 0
//! only.

use crate::crc::{crc_test, CrcKind};
use crate::freemap::HammerBlockmap;
use crate::uuid::HammerUuid;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

pub const HAMMER_FSBUF_VOLUME: u64 = 0xC841_4D4D_C552_3031;
pub const HAMMER_FSBUF_VOLUME_REV: u64 = 0x3130_52C5_4D4D_41C8;
pub const HAMMER_VOLF_NEEDFLUSH: u32 = 0x0004;
pub const HAMMER_ROOT_VOLNO: u32 = 0;

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct HammerVolumeOndisk {
    pub vol_signature: u64,
    pub vol_bot_beg: i64,
    pub vol_mem_beg: i64,
    pub vol_buf_beg: i64,
    pub vol_buf_end: i64,
    pub vol_reserved01: i64,
    pub vol_fsid: HammerUuid,
    pub vol_fstype: HammerUuid,
    pub vol_label: [u8; 64],
    pub vol_no: i32,
    pub vol_count: i32,
    pub vol_version: u32,
    pub vol_crc: u32,
    pub vol_flags: u32,
    pub vol_rootvol: u32,
    pub vol_reserved: [u32; 8],
    pub vol0_stat_bigblocks: i64,
    pub vol0_stat_freebigblocks: i64,
    pub vol0_reserved01: i64,
    pub vol0_stat_inodes: i64,
    pub vol0_reserved02: i64,
    pub vol0_btree_root: u64,
    pub vol0_next_tid: u64,
    pub vol0_reserved03: u64,
    pub vol0_blockmap: [HammerBlockmap; 16],
    pub vol0_undo_array: [u64; 128],
}
crate::assert_size!(HammerVolumeOndisk, 1928);
crate::assert_offset!(HammerVolumeOndisk, vol_fsid, 0x30);
crate::assert_offset!(HammerVolumeOndisk, vol_fstype, 0x40);
crate::assert_offset!(HammerVolumeOndisk, vol_label, 0x50);
crate::assert_offset!(HammerVolumeOndisk, vol_no, 0x90);
crate::assert_offset!(HammerVolumeOndisk, vol_version, 0x98);
crate::assert_offset!(HammerVolumeOndisk, vol_crc, 0x9C);
crate::assert_offset!(HammerVolumeOndisk, vol_flags, 0xA0);
crate::assert_offset!(HammerVolumeOndisk, vol0_stat_bigblocks, 0xC8);
crate::assert_offset!(HammerVolumeOndisk, vol0_btree_root, 0xF0);
crate::assert_offset!(HammerVolumeOndisk, vol0_next_tid, 0xF8);
crate::assert_offset!(HammerVolumeOndisk, vol0_blockmap, 0x108);
crate::assert_offset!(HammerVolumeOndisk, vol0_undo_array, 0x388);

pub const HAMMER_VOL_CRCSIZE1: usize = 0x9C;
pub const HAMMER_VOL_CRCSIZE2_OFF: usize = 0xA0;

impl Default for HammerVolumeOndisk {
    fn default() -> Self {
        HammerVolumeOndisk::new_zeroed()
    }
}

impl HammerVolumeOndisk {
    /// The label up to its first NUL (lossy for non-UTF-8 bytes).
    pub fn label(&self) -> String {
        cstr_lossy(&self.vol_label)
    }

    pub fn compute_crc(&self, kind: CrcKind) -> u32 {
        let b = self.as_bytes();
        kind.compute_xor(&b[..HAMMER_VOL_CRCSIZE1], &b[HAMMER_VOL_CRCSIZE2_OFF..])
    }

    pub fn crc_ok(&self) -> Option<CrcKind> {
        crc_test(self.vol_version, self.vol_crc, |k| self.compute_crc(k))
    }

    /// Size of the raw-buffer (zone-2) space of this volume.
    pub fn buf_size(&self) -> u64 {
        (self.vol_buf_end - self.vol_buf_beg) as u64
    }
}

/// Bytes up to the first NUL as text, invalid UTF-8 replaced.
pub fn cstr_lossy(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}
