//! CRCs. HAMMER versions up to 6 use the ISO CRC-32 (zlib's); version 7
//! switched every on-media CRC to CRC-32C, and a v7 reader still accepts the
//! old one for structures written before an upgrade. Mirror-stream record
//! CRCs and directory name hashes are always CRC-32, whatever the version.

/// Which CRC a structure was checked or written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrcKind {
    /// ISO CRC-32 (`crc32()` in DragonFly), versions 1..=6.
    Crc32,
    /// CRC-32C (`iscsi_crc32()`), version 7.
    Crc32c,
}

/// ISO CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Continues an ISO CRC-32: `crc32_ext(b, crc32(a)) == crc32(a ‖ b)`.
pub fn crc32_ext(data: &[u8], prev: u32) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(prev);
    h.update(data);
    h.finalize()
}

/// CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continues a CRC-32C.
pub fn crc32c_ext(data: &[u8], prev: u32) -> u32 {
    crc32c::crc32c_append(prev, data)
}

impl CrcKind {
    /// The CRC that writers of volume version `version` use.
    pub fn for_version(version: u32) -> CrcKind {
        if version >= 7 {
            CrcKind::Crc32c
        } else {
            CrcKind::Crc32
        }
    }

    pub fn compute(self, data: &[u8]) -> u32 {
        match self {
            CrcKind::Crc32 => crc32(data),
            CrcKind::Crc32c => crc32c(data),
        }
    }

    /// CRC of the concatenation of two slices.
    pub fn compute2(self, a: &[u8], b: &[u8]) -> u32 {
        match self {
            CrcKind::Crc32 => crc32_ext(b, crc32(a)),
            CrcKind::Crc32c => crc32c_ext(b, crc32c(a)),
        }
    }

    /// CRC of two ranges XORed, as the volume header and FIFO records use.
    pub fn compute_xor(self, a: &[u8], b: &[u8]) -> u32 {
        self.compute(a) ^ self.compute(b)
    }
}

/// Checks a stored CRC the way a volume of `version` is read: v7 tries
/// CRC-32C and then CRC-32; older versions only CRC-32. Returns the kind that
/// matched, or `None`.
pub fn crc_test(version: u32, stored: u32, f: impl Fn(CrcKind) -> u32) -> Option<CrcKind> {
    if version >= 7 && f(CrcKind::Crc32c) == stored {
        return Some(CrcKind::Crc32c);
    }
    if f(CrcKind::Crc32) == stored {
        return Some(CrcKind::Crc32);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_from_format_doc() {
        assert_eq!(crc32(b"123456789"), 0xCBF43926);
        assert_eq!(crc32c(b"123456789"), 0xE3069283);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32(&[0u8; 32]), 0x190A55AD);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A9136AA);
        let fox = b"The quick brown fox jumps over the lazy dog";
        assert_eq!(crc32(fox), 0x414FA339);
        assert_eq!(crc32c(fox), 0x22620404);
    }

    #[test]
    fn ext_chains() {
        let (a, b) = (b"hello ".as_slice(), b"world".as_slice());
        assert_eq!(crc32_ext(b, crc32(a)), crc32(b"hello world"));
        assert_eq!(crc32c_ext(b, crc32c(a)), crc32c(b"hello world"));
        assert_eq!(crc32_ext(a, 0), crc32(a));
        assert_eq!(crc32c_ext(a, 0), crc32c(a));
    }
}
