//! Directory name keys. A directory's `cap_flags & 3` picks the algorithm:
//! ALG0 (the 31-bit CRC-32 of the name in the top half) or ALG1 (v6+: the
//! sum of the CRCs of the name's `.`/`-`/`_`/`~`-separated segments in the
//! top half, bits 16..31 from the whole name's CRC), so that names sharing
//! segments land near each other. Always the ISO CRC-32, on every version.

use crate::crc::crc32;

/// Iteration space for ALG0 collisions.
pub const HAMMER_DIRHASH_ALG0_MAX_ITER: i64 = 0xFFFF_FFFF;
/// Iteration space for ALG1 collisions.
pub const HAMMER_DIRHASH_ALG1_MAX_ITER: i64 = 0x00FF_FFFF;

/// ALG0 key of `name`.
pub fn namekey_alg0(name: &[u8]) -> i64 {
    let mut key = ((crc32(name) & 0x7FFF_FFFF) as i64) << 32;
    if key == 0 {
        key = 0x1_0000_0000;
    }
    key
}

/// ALG1 key of `name`.
pub fn namekey_alg1(name: &[u8]) -> i64 {
    let mut m: u32 = 0;
    for seg in name.split(|c| matches!(c, b'.' | b'-' | b'_' | b'~')) {
        if !seg.is_empty() {
            m = m.wrapping_add(crc32(seg));
        }
    }
    let mut key = ((m & 0x7FFF_FFFF) as i64) << 32;
    let mut c = crc32(name);
    c ^= c << 16;
    key |= (c & 0xFFFF_0000) as i64;
    if key >> 32 == 0 {
        key |= 0x1_0000_0000;
    }
    key
}

/// The key for `name` in a directory with `cap_flags`, and how many keys
/// above it a colliding name may take.
pub fn dirhash(cap_flags: u8, name: &[u8]) -> (i64, i64) {
    match cap_flags & crate::HAMMER_INODE_CAP_DIRHASH_MASK {
        crate::HAMMER_INODE_CAP_DIRHASH_ALG1 => (namekey_alg1(name), HAMMER_DIRHASH_ALG1_MAX_ITER),
        _ => (namekey_alg0(name), HAMMER_DIRHASH_ALG0_MAX_ITER),
    }
}

/// `hammer namekey32`: the 31-bit CRC alone.
pub fn namekey32(name: &[u8]) -> u32 {
    crc32(name) & 0x7FFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_doc_values() {
        assert_eq!(namekey_alg0(b"hello.txt") as u64, 0x1260CEBB00000000);
        assert_eq!(namekey_alg1(b"hello.txt") as u64, 0x524805CBDCDB0000);
        assert_eq!(namekey_alg0(b"a") as u64, 0x68B7BE4300000000);
        assert_eq!(namekey_alg1(b"a") as u64, 0x68B7BE4356F40000);
        assert_eq!(namekey_alg0(b"README") as u64, 0x77CD417500000000);
        assert_eq!(namekey_alg1(b"README") as u64, 0x77CD417536B80000);
        assert_eq!(namekey_alg1(b"foo-bar_baz.c") as u64, 0x0250D5D2C4A00000);
        assert_eq!(namekey_alg0(b"") as u64, 0x100000000);
        assert_eq!(namekey_alg1(b"") as u64, 0x100000000);
    }
}
