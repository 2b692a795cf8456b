//! The UNDO/REDO FIFO (zone 3): record heads and tails, UNDO and REDO
//! records, and the rules a record must meet to be trusted. Since version 4
//! no record crosses a 512-byte boundary and every 512-byte sector starts
//! with a sequenced record; newfs fills the whole FIFO with 512-byte DUMMY
//! records numbered 0, 1, 2, …

use crate::crc::{crc_test, CrcKind};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const HAMMER_HEAD_SIGNATURE: u16 = 0xC84E;
pub const HAMMER_TAIL_SIGNATURE: u16 = 0xC74F;
pub const HAMMER_HEAD_TYPE_PAD: u16 = 0x0040 | 0x8000;
pub const HAMMER_HEAD_TYPE_DUMMY: u16 = 0x0041;
pub const HAMMER_HEAD_TYPE_UNDO: u16 = 0x0043;
pub const HAMMER_HEAD_TYPE_REDO: u16 = 0x0044;
pub const HAMMER_HEAD_ALIGN: u64 = 8;
pub const HAMMER_UNDO_ALIGN: u64 = 512;
pub const HAMMER_UNDO_MASK: u64 = HAMMER_UNDO_ALIGN - 1;

pub const HAMMER_REDO_WRITE: u32 = 0x01;
pub const HAMMER_REDO_TRUNC: u32 = 0x02;
pub const HAMMER_REDO_TERM_WRITE: u32 = 0x04;
pub const HAMMER_REDO_TERM_TRUNC: u32 = 0x08;
pub const HAMMER_REDO_SYNC: u32 = 0x10;

/// `struct hammer_fifo_head`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerFifoHead {
    pub hdr_signature: u16,
    pub hdr_type: u16,
    pub hdr_size: u32,
    pub hdr_seq: u32,
    pub hdr_crc: u32,
}
crate::assert_size!(HammerFifoHead, 16);
pub const HAMMER_FIFO_HEAD_CRCOFF: usize = 12;

/// `struct hammer_fifo_tail`, the last 8 bytes of every record.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerFifoTail {
    pub tail_signature: u16,
    pub tail_type: u16,
    pub tail_size: u32,
}
crate::assert_size!(HammerFifoTail, 8);

/// `struct hammer_fifo_undo`: the old bytes at `undo_offset` follow.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerFifoUndo {
    pub head: HammerFifoHead,
    pub undo_offset: u64,
    pub undo_data_bytes: i32,
    pub undo_reserved01: i32,
}
crate::assert_size!(HammerFifoUndo, 32);

/// `struct hammer_fifo_redo`: file data to replay follows.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerFifoRedo {
    pub head: HammerFifoHead,
    pub redo_objid: i64,
    pub redo_offset: u64,
    pub redo_data_bytes: i32,
    pub redo_flags: u32,
    pub redo_localization: u32,
    pub redo_reserved01: u32,
    /// `redo_mtime` in the kernel.
    pub redo_reserved02: u64,
}
crate::assert_size!(HammerFifoRedo, 56);

/// CRC of a FIFO record: everything but the CRC field itself, head and
/// payload and tail (`rec` is the whole record, `hdr_size` bytes).
pub fn fifo_crc(kind: CrcKind, rec: &[u8]) -> u32 {
    kind.compute_xor(
        &rec[..HAMMER_FIFO_HEAD_CRCOFF],
        &rec[HAMMER_FIFO_HEAD_CRCOFF + 4..],
    )
}

/// Why a FIFO record is not trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FifoDefect {
    BadHeadSignature,
    BadSize,
    CrossesBuffer,
    BadTail,
    BadCrc,
}

impl core::fmt::Display for FifoDefect {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FifoDefect::BadHeadSignature => "bad head signature",
            FifoDefect::BadSize => "bad record size",
            FifoDefect::CrossesBuffer => "record crosses a 16 KiB buffer",
            FifoDefect::BadTail => "bad tail",
            FifoDefect::BadCrc => "bad CRC",
        })
    }
}

/// Validates the record starting at `buf[0]`, where `buf` runs to the end of
/// its 16 KiB buffer. Returns its head and size.
pub fn fifo_validate(version: u32, buf: &[u8]) -> Result<(HammerFifoHead, usize), FifoDefect> {
    // An 8-byte PAD may sit in the last 8 bytes of a buffer, so read the
    // first 8 bytes of the head on their own.
    if buf.len() < 8 {
        return Err(FifoDefect::BadSize);
    }
    let mut h16 = [0u8; 16];
    let n = buf.len().min(16);
    h16[..n].copy_from_slice(&buf[..n]);
    let head = HammerFifoHead::read_from_bytes(&h16).expect("16 bytes");
    if head.hdr_signature != HAMMER_HEAD_SIGNATURE {
        return Err(FifoDefect::BadHeadSignature);
    }
    let size = head.hdr_size as usize;
    if size < 8 || !size.is_multiple_of(8) {
        return Err(FifoDefect::BadSize);
    }
    if size > buf.len() {
        return Err(FifoDefect::CrossesBuffer);
    }
    if head.hdr_type == HAMMER_HEAD_TYPE_PAD && size == 8 {
        return Ok((head, size));
    }
    if size < 24 {
        return Err(FifoDefect::BadSize);
    }
    let (tail, _) =
        HammerFifoTail::read_from_prefix(&buf[size - 8..]).map_err(|_| FifoDefect::BadTail)?;
    if tail.tail_signature != HAMMER_TAIL_SIGNATURE
        || tail.tail_type != head.hdr_type
        || tail.tail_size as usize != size
    {
        return Err(FifoDefect::BadTail);
    }
    if head.hdr_type != HAMMER_HEAD_TYPE_PAD
        && crc_test(version, head.hdr_crc, |k| fifo_crc(k, &buf[..size])).is_none()
    {
        return Err(FifoDefect::BadCrc);
    }
    Ok((head, size))
}

/// A 512-byte DUMMY record with sequence number `seq`, as newfs writes them.
pub fn dummy_record(kind: CrcKind, seq: u32) -> [u8; 512] {
    let mut rec = [0u8; 512];
    let head = HammerFifoHead {
        hdr_signature: HAMMER_HEAD_SIGNATURE,
        hdr_type: HAMMER_HEAD_TYPE_DUMMY,
        hdr_size: 512,
        hdr_seq: seq,
        hdr_crc: 0,
    };
    rec[..16].copy_from_slice(head.as_bytes());
    let tail = HammerFifoTail {
        tail_signature: HAMMER_TAIL_SIGNATURE,
        tail_type: HAMMER_HEAD_TYPE_DUMMY,
        tail_size: 512,
    };
    rec[504..].copy_from_slice(tail.as_bytes());
    let crc = fifo_crc(kind, &rec);
    rec[12..16].copy_from_slice(&crc.to_le_bytes());
    rec
}

/// Name of a record type as `hammer show-undo` prints it.
pub fn fifo_type_name(t: u16) -> &'static str {
    match t {
        HAMMER_HEAD_TYPE_PAD => "PAD",
        HAMMER_HEAD_TYPE_DUMMY => "DUMMY",
        HAMMER_HEAD_TYPE_UNDO => "UNDO",
        HAMMER_HEAD_TYPE_REDO => "REDO",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dummy_crc_vectors() {
        let d6 = dummy_record(CrcKind::Crc32, 0);
        let d7 = dummy_record(CrcKind::Crc32c, 0);
        assert_eq!(
            u32::from_le_bytes(d6[12..16].try_into().unwrap()),
            0x4A45FC5A
        );
        assert_eq!(
            u32::from_le_bytes(d7[12..16].try_into().unwrap()),
            0x317FE32E
        );
        assert_eq!(
            &d7[504..512],
            &[0x4f, 0xc7, 0x41, 0x00, 0x00, 0x02, 0x00, 0x00]
        );
        assert!(fifo_validate(7, &d7).is_ok());
        assert!(fifo_validate(7, &d6).is_ok());
        assert_eq!(fifo_validate(6, &d7), Err(FifoDefect::BadCrc));
    }

    #[test]
    fn eight_byte_pad_at_buffer_end() {
        let pad = HammerFifoHead {
            hdr_signature: HAMMER_HEAD_SIGNATURE,
            hdr_type: HAMMER_HEAD_TYPE_PAD,
            hdr_size: 8,
            ..Default::default()
        };
        assert_eq!(
            fifo_validate(7, &pad.as_bytes()[..8]).map(|(_, n)| n),
            Ok(8)
        );
    }

    proptest! {
        #[test]
        fn validate_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
            let _ = fifo_validate(7, &bytes);
        }

        #[test]
        fn mutated_dummy_is_rejected_or_equal(pos in 0usize..512, bit in 0u8..8) {
            let mut d = dummy_record(CrcKind::Crc32c, 7);
            d[pos] ^= 1 << bit;
            prop_assert!(fifo_validate(7, &d).is_err());
        }
    }
}
