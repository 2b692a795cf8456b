//! Mirror-stream records (`hammer_ioc_mrecord_*`), the wire format of
//! `mirror-read`/`mirror-write`. Each record starts with a 16-byte head and is
//! padded with zeros to a multiple of 8 on the wire; `rec_crc` is always the
//! ISO CRC-32 of bytes `[8, rec_size)`.

use crate::btree::{HammerBaseElm, HammerBtreeLeafElm};
use crate::crc::crc32;
use crate::records::HammerPseudofsData;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const HAMMER_IOC_MIRROR_SIGNATURE: u32 = 0x4DD9_7272;
pub const HAMMER_IOC_MIRROR_SIGNATURE_REV: u32 = 0x7272_D94D;

pub const HAMMER_MREC_TYPE_RESERVED: u32 = 0;
pub const HAMMER_MREC_TYPE_REC: u32 = 1;
pub const HAMMER_MREC_TYPE_PFSD: u32 = 2;
pub const HAMMER_MREC_TYPE_UPDATE: u32 = 3;
pub const HAMMER_MREC_TYPE_SYNC: u32 = 4;
pub const HAMMER_MREC_TYPE_SKIP: u32 = 5;
pub const HAMMER_MREC_TYPE_PASS: u32 = 6;
pub const HAMMER_MREC_TYPE_TERM: u32 = 7;
pub const HAMMER_MREC_TYPE_IDLE: u32 = 8;
pub const HAMMER_MRECF_TYPE_MASK: u32 = 0x8000_00FF;
pub const HAMMER_MRECF_CRC_ERROR: u32 = 0x8000_0000;
pub const HAMMER_MRECF_DATA_CRC_BAD: u32 = 0x4000_0000;
pub const HAMMER_MRECF_RECD_CRC_BAD: u32 = 0x2000_0000;
pub const HAMMER_MRECF_NODATA: u32 = 0x1000_0000;
/// Largest record: the biggest fixed part plus 64 KiB of data.
pub const HAMMER_MREC_MAX_SIZE: usize = 96 + 65536;

/// `struct hammer_ioc_mrecord_head`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerIocMrecordHead {
    pub signature: u32,
    pub rec_crc: u32,
    pub rec_size: u32,
    pub type_: u32,
}
crate::assert_size!(HammerIocMrecordHead, 16);

/// REC and PASS: a leaf element; REC is followed by `data_len` bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerIocMrecordRec {
    pub head: HammerIocMrecordHead,
    pub leaf: HammerBtreeLeafElm,
}
crate::assert_size!(HammerIocMrecordRec, 80);

/// SKIP: a key range the target keeps as it is.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerIocMrecordSkip {
    pub head: HammerIocMrecordHead,
    pub skip_beg: HammerBaseElm,
    pub skip_end: HammerBaseElm,
}
crate::assert_size!(HammerIocMrecordSkip, 96);

/// UPDATE, SYNC, TERM, IDLE.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerIocMrecordUpdate {
    pub head: HammerIocMrecordHead,
    pub tid: u64,
}
crate::assert_size!(HammerIocMrecordUpdate, 24);

/// PFSD: the source PFS descriptor.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct HammerIocMrecordPfs {
    pub head: HammerIocMrecordHead,
    pub version: u32,
    pub reserved01: u32,
    pub pfsd: HammerPseudofsData,
}
crate::assert_size!(HammerIocMrecordPfs, 316);

/// `rec_crc` of a record whose first `rec_size` bytes are `rec`.
pub fn mrecord_crc(rec: &[u8]) -> u32 {
    crc32(&rec[8..])
}

/// Why a stream record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MrecordDefect {
    Short,
    OtherEndian,
    BadSignature,
    BadSize,
    BadCrc,
}

/// Decodes one record from the front of `buf`: its head, the `rec_size`
/// bytes, and how much the record takes on the wire (padded to 8).
pub fn mrecord_decode(buf: &[u8]) -> Result<(HammerIocMrecordHead, &[u8], usize), MrecordDefect> {
    let (head, _) =
        HammerIocMrecordHead::read_from_prefix(buf).map_err(|_| MrecordDefect::Short)?;
    if head.signature == HAMMER_IOC_MIRROR_SIGNATURE_REV {
        return Err(MrecordDefect::OtherEndian);
    }
    if head.signature != HAMMER_IOC_MIRROR_SIGNATURE {
        return Err(MrecordDefect::BadSignature);
    }
    let size = head.rec_size as usize;
    if !(16..=HAMMER_MREC_MAX_SIZE).contains(&size) {
        return Err(MrecordDefect::BadSize);
    }
    let wire = crate::head_doalign(size as u64) as usize;
    if buf.len() < wire {
        return Err(MrecordDefect::Short);
    }
    let rec = &buf[..size];
    if mrecord_crc(rec) != head.rec_crc {
        return Err(MrecordDefect::BadCrc);
    }
    Ok((head, rec, wire))
}

/// Encodes a record: fills in signature, size and CRC of `rec` (whose first
/// 16 bytes are the head with `type_` set) and pads it to 8 bytes.
pub fn mrecord_encode(type_: u32, body: &[u8]) -> Vec<u8> {
    let size = 16 + body.len();
    let mut out = vec![0u8; crate::head_doalign(size as u64) as usize];
    let head = HammerIocMrecordHead {
        signature: HAMMER_IOC_MIRROR_SIGNATURE,
        rec_crc: 0,
        rec_size: size as u32,
        type_,
    };
    out[..16].copy_from_slice(head.as_bytes());
    out[16..size].copy_from_slice(body);
    let crc = mrecord_crc(&out[..size]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roundtrip_update() {
        let wire = mrecord_encode(HAMMER_MREC_TYPE_UPDATE, &0x1_0000_0001u64.to_le_bytes());
        assert_eq!(wire.len(), 24);
        let (h, rec, n) = mrecord_decode(&wire).unwrap();
        assert_eq!(h.type_, HAMMER_MREC_TYPE_UPDATE);
        assert_eq!(rec.len(), 24);
        assert_eq!(n, 24);
        let mut bad = wire.clone();
        bad[20] ^= 1;
        assert_eq!(mrecord_decode(&bad).unwrap_err(), MrecordDefect::BadCrc);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = mrecord_decode(&bytes);
        }

        #[test]
        fn roundtrip_any_body(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let wire = mrecord_encode(HAMMER_MREC_TYPE_REC, &body);
            let (_, rec, n) = mrecord_decode(&wire).unwrap();
            prop_assert_eq!(&rec[16..], &body[..]);
            prop_assert_eq!(n, wire.len());
        }
    }
}
