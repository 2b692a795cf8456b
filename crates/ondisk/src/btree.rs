//! B-tree nodes and elements (`hammer_btree.h`) and the key order
//! (`hammer_btree_cmp`): localization, obj_id, rec_type, key, then
//! create_tid with 0 meaning +infinity. `delete_tid`, `obj_type` and `btype`
//! are not part of the key.

use crate::crc::{crc_test, CrcKind};
use core::cmp::Ordering;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

pub const HAMMER_BTREE_TYPE_INTERNAL: u8 = b'I';
pub const HAMMER_BTREE_TYPE_LEAF: u8 = b'L';
pub const HAMMER_BTREE_TYPE_RECORD: u8 = b'R';
pub const HAMMER_BTREE_TYPE_DELETED: u8 = b'D';
pub const HAMMER_BTREE_TYPE_NONE: u8 = 0;
pub const HAMMER_BTREE_LEAF_ELMS: usize = 63;
pub const HAMMER_BTREE_INT_ELMS: usize = HAMMER_BTREE_LEAF_ELMS - 1;
pub const HAMMER_NODE_SIZE: usize = 4096;
pub const HAMMER_BTREE_CRCSIZE: usize = HAMMER_NODE_SIZE - 4;

pub const HAMMER_LOCALIZE_INODE: u32 = 0x0000_0001;
pub const HAMMER_LOCALIZE_MISC: u32 = 0x0000_0002;
pub const HAMMER_LOCALIZE_MASK: u32 = 0x0000_FFFF;
pub const HAMMER_LOCALIZE_PSEUDOFS_MASK: u32 = 0xFFFF_0000;

pub const fn lo_to_pfs(lo: u32) -> u32 {
    (lo & HAMMER_LOCALIZE_PSEUDOFS_MASK) >> 16
}
pub const fn pfs_to_lo(pfs: u32) -> u32 {
    (pfs << 16) & HAMMER_LOCALIZE_PSEUDOFS_MASK
}

/// `struct hammer_base_elm`: the key part shared by every element.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerBaseElm {
    pub obj_id: i64,
    pub key: i64,
    pub create_tid: u64,
    pub delete_tid: u64,
    pub rec_type: u16,
    pub obj_type: u8,
    pub btype: u8,
    pub localization: u32,
}
crate::assert_size!(HammerBaseElm, 40);
crate::assert_offset!(HammerBaseElm, rec_type, 0x20);
crate::assert_offset!(HammerBaseElm, localization, 0x24);

/// `struct hammer_btree_leaf_elm`: a record.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerBtreeLeafElm {
    pub base: HammerBaseElm,
    pub create_ts: u32,
    pub delete_ts: u32,
    pub data_offset: u64,
    pub data_len: i32,
    pub data_crc: u32,
}
crate::assert_size!(HammerBtreeLeafElm, 64);
crate::assert_offset!(HammerBtreeLeafElm, data_offset, 48);
crate::assert_offset!(HammerBtreeLeafElm, data_crc, 60);

/// `struct hammer_btree_internal_elm`: a child pointer with its left bound.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerBtreeInternalElm {
    pub base: HammerBaseElm,
    pub mirror_tid: u64,
    pub subtree_offset: u64,
    pub reserved01: i32,
    pub reserved02: i32,
}
crate::assert_size!(HammerBtreeInternalElm, 64);
crate::assert_offset!(HammerBtreeInternalElm, subtree_offset, 48);

/// `union hammer_btree_elm`, kept as the leaf layout; `internal()` views the
/// same 64 bytes as an internal element.
pub type HammerBtreeElm = HammerBtreeLeafElm;

impl HammerBtreeLeafElm {
    pub fn internal(&self) -> HammerBtreeInternalElm {
        zerocopy::transmute!(*self)
    }
    pub fn from_internal(i: HammerBtreeInternalElm) -> Self {
        zerocopy::transmute!(i)
    }
}

/// `struct hammer_node_ondisk`, 4096 bytes.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct HammerNodeOndisk {
    pub crc: u32,
    pub reserved01: u32,
    pub parent: u64,
    pub count: i32,
    pub type_: u8,
    pub reserved02: u8,
    pub reserved03: u16,
    pub reserved04: u64,
    pub reserved05: u64,
    pub reserved06: u64,
    pub reserved07: u64,
    pub mirror_tid: u64,
    pub elms: [HammerBtreeElm; HAMMER_BTREE_LEAF_ELMS],
}
crate::assert_size!(HammerNodeOndisk, HAMMER_NODE_SIZE);
crate::assert_offset!(HammerNodeOndisk, count, 16);
crate::assert_offset!(HammerNodeOndisk, type_, 20);
crate::assert_offset!(HammerNodeOndisk, mirror_tid, 56);
crate::assert_offset!(HammerNodeOndisk, elms, 64);

impl Default for HammerNodeOndisk {
    fn default() -> Self {
        HammerNodeOndisk::new_zeroed()
    }
}

impl HammerNodeOndisk {
    pub fn compute_crc(&self, kind: CrcKind) -> u32 {
        kind.compute(&self.as_bytes()[4..])
    }
    pub fn set_crc(&mut self, kind: CrcKind) {
        self.crc = self.compute_crc(kind);
    }
    pub fn crc_ok(&self, version: u32) -> Option<CrcKind> {
        crc_test(version, self.crc, |k| self.compute_crc(k))
    }
    /// Most elements a node of this type may hold (internal nodes keep one
    /// more slot for the right boundary).
    pub fn max_elements(type_: u8) -> Option<usize> {
        match type_ {
            HAMMER_BTREE_TYPE_LEAF => Some(HAMMER_BTREE_LEAF_ELMS),
            HAMMER_BTREE_TYPE_INTERNAL => Some(HAMMER_BTREE_INT_ELMS),
            _ => None,
        }
    }
}

/// `hammer_btree_cmp`: compares two keys, returning which field decided as
/// a signed magnitude like the kernel does (±5 localization, ±4 obj_id,
/// ±3 rec_type, ±2 key, ±1 create_tid, 0 equal). Negative: `a < b`.
pub fn btree_cmp(a: &HammerBaseElm, b: &HammerBaseElm) -> i32 {
    if a.localization != b.localization {
        return if a.localization < b.localization {
            -5
        } else {
            5
        };
    }
    if a.obj_id != b.obj_id {
        return if a.obj_id < b.obj_id { -4 } else { 4 };
    }
    if a.rec_type != b.rec_type {
        return if a.rec_type < b.rec_type { -3 } else { 3 };
    }
    if a.key != b.key {
        return if a.key < b.key { -2 } else { 2 };
    }
    // create_tid 0 sorts as +infinity: shifting by one maps 0 to u64::MAX.
    match a
        .create_tid
        .wrapping_sub(1)
        .cmp(&b.create_tid.wrapping_sub(1))
    {
        Ordering::Less => -1,
        Ordering::Greater => 1,
        Ordering::Equal => 0,
    }
}

/// `btree_cmp` as an `Ordering`.
pub fn btree_ord(a: &HammerBaseElm, b: &HammerBaseElm) -> Ordering {
    btree_cmp(a, b).cmp(&0)
}

/// Whether a record is visible as of `asof` (`hammer_btree_chkts`):
/// created at or before it and not yet deleted then. `asof == 0` means "any
/// time": visible iff not deleted.
pub fn visible_at(create_tid: u64, delete_tid: u64, asof: u64) -> bool {
    if asof == 0 {
        return delete_tid == 0;
    }
    create_tid <= asof && (delete_tid == 0 || asof < delete_tid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn elm(lo: u32, obj: i64, rt: u16, key: i64, tid: u64) -> HammerBaseElm {
        HammerBaseElm {
            localization: lo,
            obj_id: obj,
            rec_type: rt,
            key,
            create_tid: tid,
            ..Default::default()
        }
    }

    #[test]
    fn field_priority() {
        assert_eq!(btree_cmp(&elm(1, 9, 9, 9, 9), &elm(2, 0, 0, 0, 0)), -5);
        assert_eq!(btree_cmp(&elm(1, -1, 9, 9, 9), &elm(1, 0, 0, 0, 0)), -4);
        assert_eq!(btree_cmp(&elm(1, 0, 1, 9, 9), &elm(1, 0, 2, 0, 0)), -3);
        assert_eq!(
            btree_cmp(&elm(1, 0, 1, i64::MIN, 9), &elm(1, 0, 1, 0, 0)),
            -2
        );
        assert_eq!(
            btree_cmp(&elm(1, 0, 1, 0, u64::MAX), &elm(1, 0, 1, 0, 0)),
            -1
        );
        assert_eq!(btree_cmp(&elm(1, 0, 1, 0, 0), &elm(1, 0, 1, 0, 0)), 0);
    }

    proptest! {
        #[test]
        fn cmp_is_antisymmetric(a in any::<(u32, i64, u16, i64, u64)>(), b in any::<(u32, i64, u16, i64, u64)>()) {
            let ea = elm(a.0, a.1, a.2, a.3, a.4);
            let eb = elm(b.0, b.1, b.2, b.3, b.4);
            prop_assert_eq!(btree_cmp(&ea, &eb), -btree_cmp(&eb, &ea));
        }

        #[test]
        fn node_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            if let Ok((n, _)) = HammerNodeOndisk::read_from_prefix(&bytes) {
                let _ = n.crc_ok(7);
                let _ = HammerNodeOndisk::max_elements(n.type_);
            }
        }
    }

    #[test]
    fn visibility() {
        assert!(visible_at(5, 0, 5));
        assert!(!visible_at(5, 0, 4));
        assert!(visible_at(5, 8, 7));
        assert!(!visible_at(5, 8, 8));
        assert!(visible_at(5, 0, u64::MAX));
        assert!(!visible_at(5, 8, u64::MAX));
        assert!(visible_at(5, 0, 0));
        assert!(!visible_at(5, 8, 0));
    }
}
