//! The HAMMER (v1) on-disk format, as DragonFly BSD's `hammer_disk.h`,
//! `hammer_btree.h` and `hammer_ioctl.h` define it: every structure with the
//! C field names, checked at compile time for size and field offsets, the
//! 64-bit zone/volume/offset encoding, the CRCs chosen by volume version,
//! B-tree key order and directory name keys.
//!
//! This crate is pure: no I/O, no allocation beyond what a caller asks for.
//! Every multi-byte integer on disk is little-endian; the structures here use
//! native integers, so the crate refuses to build on a big-endian target
//! rather than silently misreading volumes.

#[cfg(target_endian = "big")]
compile_error!(
    "hammer-ondisk reads little-endian structures in place; big-endian hosts are not supported"
);

pub mod btree;
pub mod crc;
pub mod fifo;
pub mod freemap;
pub mod mirror;
pub mod namekey;
pub mod offset;
pub mod records;
pub mod uuid;
pub mod volume;

pub use btree::*;
pub use crc::*;
pub use fifo::*;
pub use freemap::*;
pub use mirror::*;
pub use namekey::*;
pub use offset::*;
pub use records::*;
pub use uuid::*;
pub use volume::*;

/// Asserts at compile time that `$field` of `$ty` sits at byte `$off`.
#[macro_export]
macro_rules! assert_offset {
    ($ty:ty, $field:ident, $off:expr) => {
        const _: () = assert!(core::mem::offset_of!($ty, $field) == $off);
    };
}

/// Asserts at compile time that `$ty` is `$size` bytes.
#[macro_export]
macro_rules! assert_size {
    ($ty:ty, $size:expr) => {
        const _: () = assert!(core::mem::size_of::<$ty>() == $size);
    };
}

/// The I/O unit of every metadata read and write.
pub const HAMMER_BUFSIZE: u64 = 16384;
pub const HAMMER_BUFMASK: u64 = HAMMER_BUFSIZE - 1;
/// File data at offsets of 1 MiB and above uses 64 KiB buffers.
pub const HAMMER_XBUFSIZE: u64 = 65536;
pub const HAMMER_XDEMARC: u64 = 1024 * 1024;
pub const HAMMER_HBUFSIZE: u64 = HAMMER_BUFSIZE / 2;

pub const HAMMER_BIGBLOCK_SIZE: u64 = 8 * 1024 * 1024;
pub const HAMMER_BIGBLOCK_MASK: u64 = HAMMER_BIGBLOCK_SIZE - 1;
pub const HAMMER_BIGBLOCK_BITS: u32 = 23;

pub const HAMMER_MAX_VOLUMES: usize = 256;
pub const HAMMER_MIN_VOL_JUNK: u64 = HAMMER_BUFSIZE * 16;
pub const HAMMER_MAX_VOL_JUNK: u64 = HAMMER_MIN_VOL_JUNK;
pub const HAMMER_BOOT_MINBYTES: u64 = 32 * 1024;
pub const HAMMER_BOOT_NOMBYTES: u64 = 64 * 1024 * 1024;
pub const HAMMER_BOOT_MAXBYTES: u64 = 256 * 1024 * 1024;
pub const HAMMER_MEM_MINBYTES: u64 = 256 * 1024;
pub const HAMMER_MEM_NOMBYTES: u64 = 1024 * 1024 * 1024;
pub const HAMMER_MEM_MAXBYTES: u64 = 64 * 1024 * 1024 * 1024;
pub const HAMMER_MIN_UNDO_BIGBLOCKS: u64 = 64;
pub const HAMMER_MAX_UNDO_BIGBLOCKS: u64 = 128;
pub const HAMMER_UNDO_LAYER2: usize = 128;

pub const HAMMER_MIN_TID: u64 = 0;
pub const HAMMER_MAX_TID: u64 = u64::MAX;
pub const HAMMER_MIN_KEY: i64 = i64::MIN;
pub const HAMMER_MAX_KEY: i64 = i64::MAX;
pub const HAMMER_MIN_OBJID: i64 = i64::MIN;
pub const HAMMER_MAX_OBJID: i64 = i64::MAX;
pub const HAMMER_MIN_RECTYPE: u16 = 0;
pub const HAMMER_MAX_RECTYPE: u16 = 0xFFFF;
pub const HAMMER_MIN_LOCALIZATION: u32 = 0;
pub const HAMMER_MAX_LOCALIZATION: u32 = 0xFFFF_FFFF;
pub const HAMMER_MAX_MASTERS: u32 = 16;
pub const HAMMER_MAX_PFS: u32 = 65536;

pub const HAMMER_VOL_VERSION_MIN: u32 = 1;
pub const HAMMER_VOL_VERSION_DEFAULT: u32 = 7;
pub const HAMMER_VOL_VERSION_WIP: u32 = 8;
pub const HAMMER_VOL_VERSION_MAX: u32 = 7;

/// Rounds `n` up to the 16-byte data allocation granularity.
pub const fn data_doalign(n: u64) -> u64 {
    (n + 15) & !15
}

/// Rounds `n` up to the 8-byte FIFO head alignment.
pub const fn head_doalign(n: u64) -> u64 {
    (n + 7) & !7
}
