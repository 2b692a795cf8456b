//! Record data (`union hammer_data_ondisk`): inode data, directory entries,
//! symlink targets, PFS descriptors, snapshots and the cleanup config, with
//! record and object type numbers.

use crate::crc::{crc_test, CrcKind};
use crate::uuid::HammerUuid;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

pub const HAMMER_RECTYPE_UNKNOWN: u16 = 0x0000;
pub const HAMMER_RECTYPE_INODE: u16 = 0x0001;
pub const HAMMER_RECTYPE_DATA: u16 = 0x0010;
pub const HAMMER_RECTYPE_DIRENTRY: u16 = 0x0011;
pub const HAMMER_RECTYPE_DB: u16 = 0x0012;
pub const HAMMER_RECTYPE_EXT: u16 = 0x0013;
pub const HAMMER_RECTYPE_FIX: u16 = 0x0014;
pub const HAMMER_RECTYPE_PFS: u16 = 0x0015;
pub const HAMMER_RECTYPE_SNAPSHOT: u16 = 0x0016;
pub const HAMMER_RECTYPE_CONFIG: u16 = 0x0017;
pub const HAMMER_RECTYPE_MAX: u16 = 0xFFFF;
pub const HAMMER_FIXKEY_SYMLINK: i64 = 1;

pub const HAMMER_OBJTYPE_UNKNOWN: u8 = 0;
pub const HAMMER_OBJTYPE_DIRECTORY: u8 = 1;
pub const HAMMER_OBJTYPE_REGFILE: u8 = 2;
pub const HAMMER_OBJTYPE_DBFILE: u8 = 3;
pub const HAMMER_OBJTYPE_FIFO: u8 = 4;
pub const HAMMER_OBJTYPE_CDEV: u8 = 5;
pub const HAMMER_OBJTYPE_BDEV: u8 = 6;
pub const HAMMER_OBJTYPE_SOFTLINK: u8 = 7;
pub const HAMMER_OBJTYPE_PSEUDOFS: u8 = 8;
pub const HAMMER_OBJTYPE_SOCKET: u8 = 9;

pub const HAMMER_INODE_DATA_VERSION: u16 = 1;
pub const HAMMER_OBJID_ROOT: i64 = 1;
pub const HAMMER_INODE_BASESYMLEN: usize = 24;
pub const HAMMER_INODE_CAP_DIRHASH_MASK: u8 = 0x03;
pub const HAMMER_INODE_CAP_DIRHASH_ALG0: u8 = 0x00;
pub const HAMMER_INODE_CAP_DIRHASH_ALG1: u8 = 0x01;
pub const HAMMER_INODE_CAP_DIR_LOCAL_INO: u8 = 0x04;
/// chflags bits that turn history off for an inode.
pub const UF_NOHISTORY: u32 = 0x0000_0040;
pub const SF_NOHISTORY: u32 = 0x0040_0000;

pub const HAMMER_PFSD_SLAVE: i32 = 0x0000_0001;
pub const HAMMER_PFSD_DELETED: i32 = 0x8000_0000u32 as i32;
pub const HAMMER_ROOT_PFSID: u32 = 0;

/// `struct hammer_inode_data`, 128 bytes; the CRC covers the first 112
/// (mtime and atime are updated in place).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerInodeData {
    pub version: u16,
    pub mode: u16,
    pub uflags: u32,
    pub rmajor: u32,
    pub rminor: u32,
    pub ctime: u64,
    pub parent_obj_id: i64,
    pub uid: HammerUuid,
    pub gid: HammerUuid,
    pub obj_type: u8,
    pub cap_flags: u8,
    pub reserved01: u16,
    pub reserved02: u32,
    pub nlinks: u64,
    pub size: u64,
    pub ext: [u8; 24],
    pub mtime: u64,
    pub atime: u64,
}
crate::assert_size!(HammerInodeData, 128);
crate::assert_offset!(HammerInodeData, obj_type, 64);
crate::assert_offset!(HammerInodeData, nlinks, 72);
crate::assert_offset!(HammerInodeData, ext, 88);
crate::assert_offset!(HammerInodeData, mtime, 112);
pub const HAMMER_INODE_CRCSIZE: usize = 112;

impl HammerInodeData {
    pub fn compute_crc(&self, kind: CrcKind) -> u32 {
        kind.compute(&self.as_bytes()[..HAMMER_INODE_CRCSIZE])
    }
}

/// `struct hammer_direntry_data` head; the name (no NUL) follows at byte 16.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerDirentryHead {
    pub obj_id: i64,
    pub localization: u32,
    pub reserved01: u32,
}
crate::assert_size!(HammerDirentryHead, 16);
pub const HAMMER_ENTRY_NAME_OFF: usize = 16;

/// `struct hammer_pseudofs_data` (packed, 292 bytes; 64-bit kernels from
/// before the packing wrote 296, which readers accept).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct HammerPseudofsData {
    pub sync_low_tid: u64,
    pub sync_beg_tid: u64,
    pub sync_end_tid: u64,
    pub sync_beg_ts: u64,
    pub sync_end_ts: u64,
    pub shared_uuid: HammerUuid,
    pub unique_uuid: HammerUuid,
    pub reserved01: i32,
    pub mirror_flags: i32,
    pub label: [u8; 64],
    pub snapshots: [u8; 64],
    pub reserved02: i32,
    pub reserved03: i32,
    pub reserved04: i32,
    pub prune_min: i32,
    pub prune_max: i32,
    pub reserved: [i32; 16],
}
crate::assert_size!(HammerPseudofsData, 292);
crate::assert_offset!(HammerPseudofsData, shared_uuid, 40);
crate::assert_offset!(HammerPseudofsData, mirror_flags, 76);
crate::assert_offset!(HammerPseudofsData, label, 80);
crate::assert_offset!(HammerPseudofsData, snapshots, 144);
crate::assert_offset!(HammerPseudofsData, prune_min, 220);
pub const HAMMER_PFSD_SIZE: usize = 292;
pub const HAMMER_PFSD_SIZE_UNPACKED: usize = 296;

impl Default for HammerPseudofsData {
    fn default() -> Self {
        HammerPseudofsData::new_zeroed()
    }
}

impl HammerPseudofsData {
    /// Decodes a PFS record's data, accepting both the 292- and the padded
    /// 296-byte form.
    pub fn parse(data: &[u8]) -> Option<HammerPseudofsData> {
        if data.len() != HAMMER_PFSD_SIZE && data.len() != HAMMER_PFSD_SIZE_UNPACKED {
            return None;
        }
        HammerPseudofsData::read_from_prefix(data)
            .ok()
            .map(|(p, _)| p)
    }
}

/// `struct hammer_snapshot_data` (128 bytes; the snapshot TID is the key).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct HammerSnapshotData {
    pub tid: u64,
    pub ts: u64,
    pub reserved01: u64,
    pub reserved02: u64,
    pub label: [u8; 64],
    pub reserved03: [u64; 4],
}
crate::assert_size!(HammerSnapshotData, 128);
crate::assert_offset!(HammerSnapshotData, label, 32);

/// `struct hammer_config_data`: the cleanup configuration text.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct HammerConfigData {
    pub text: [u8; 1024],
}
crate::assert_size!(HammerConfigData, 1024);

/// CRC of a leaf's data as the kernel defines it: an INODE record covers only
/// the first 112 bytes (and is 0 unless the data is a whole inode); empty data
/// has CRC 0.
pub fn leaf_data_crc(kind: CrcKind, rec_type: u16, data: &[u8]) -> u32 {
    if data.is_empty() {
        return 0;
    }
    if rec_type == HAMMER_RECTYPE_INODE {
        if data.len() != core::mem::size_of::<HammerInodeData>() {
            return 0;
        }
        return kind.compute(&data[..HAMMER_INODE_CRCSIZE]);
    }
    kind.compute(data)
}

/// Checks a leaf's stored `data_crc` the way a volume of `version` reads it.
pub fn leaf_data_crc_ok(version: u32, rec_type: u16, data: &[u8], stored: u32) -> Option<CrcKind> {
    crc_test(version, stored, |k| leaf_data_crc(k, rec_type, data))
}

/// Name of a record type as `hammer show` prints it (`rt=` has the number).
pub fn rectype_name(rt: u16) -> &'static str {
    match rt {
        HAMMER_RECTYPE_INODE => "inode",
        HAMMER_RECTYPE_DATA => "data",
        HAMMER_RECTYPE_DIRENTRY => "dir-entry",
        HAMMER_RECTYPE_DB => "db",
        HAMMER_RECTYPE_EXT => "ext",
        HAMMER_RECTYPE_FIX => "fix",
        HAMMER_RECTYPE_PFS => "pfs",
        HAMMER_RECTYPE_SNAPSHOT => "snapshot",
        HAMMER_RECTYPE_CONFIG => "config",
        _ => "unknown",
    }
}
