//! UUIDs as HAMMER stores and prints them. The 16 bytes on disk are whatever
//! the creating system produced; DragonFly prints them through its `uuid_t`,
//! whose first three groups are little-endian integers. The fstype UUID
//! `61dc63ac-6e38-11dc-8513-01301bb8a9f5` is therefore stored as
//! `ac 63 dc 61 38 6e dc 11 85 13 …`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HammerUuid {
    pub uuid: [u8; 16],
}
crate::assert_size!(HammerUuid, 16);

/// "DragonFly HAMMER", on-disk bytes.
pub const HAMMER_FSTYPE_UUID: HammerUuid = HammerUuid {
    uuid: [
        0xac, 0x63, 0xdc, 0x61, 0x38, 0x6e, 0xdc, 0x11, 0x85, 0x13, 0x01, 0x30, 0x1b, 0xb8, 0xa9,
        0xf5,
    ],
};
pub const HAMMER_FSTYPE_STRING: &str = "DragonFly HAMMER";

impl HammerUuid {
    /// Text form as DragonFly's `uuid_to_string` gives it.
    pub fn to_dfly_string(&self) -> String {
        let b = &self.uuid;
        format!(
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }

    /// Parses the printed form back into on-disk bytes.
    pub fn parse_dfly(s: &str) -> Option<HammerUuid> {
        let hex: String = s.chars().filter(|&c| c != '-').collect();
        if s.len() != 36 || hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let mut raw = [0u8; 16];
        for (i, r) in raw.iter_mut().enumerate() {
            *r = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        raw[0..4].reverse();
        raw[4..6].reverse();
        raw[6..8].reverse();
        Some(HammerUuid { uuid: raw })
    }

    /// A HAMMER uid/gid UUID carries the unix id in bytes 12..16.
    pub fn from_unix_id(id: u32) -> HammerUuid {
        let mut u = HammerUuid::default();
        u.uuid[12..16].copy_from_slice(&id.to_le_bytes());
        u
    }

    pub fn unix_id(&self) -> u32 {
        u32::from_le_bytes([self.uuid[12], self.uuid[13], self.uuid[14], self.uuid[15]])
    }

    pub fn is_nil(&self) -> bool {
        self.uuid == [0; 16]
    }
}

impl core::fmt::Debug for HammerUuid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_dfly_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstype_prints_as_dragonfly() {
        assert_eq!(
            HAMMER_FSTYPE_UUID.to_dfly_string(),
            "61dc63ac-6e38-11dc-8513-01301bb8a9f5"
        );
        assert_eq!(
            HammerUuid::parse_dfly("61dc63ac-6e38-11dc-8513-01301bb8a9f5"),
            Some(HAMMER_FSTYPE_UUID)
        );
    }

    #[test]
    fn variance_doc_example() {
        let u = HammerUuid {
            uuid: [
                0x5c, 0x61, 0x99, 0x89, 0x7a, 0xc2, 0x44, 0xd9, 0x99, 0x1a, 0xf9, 0xb8, 0xa9, 0x7a,
                0xc5, 0x60,
            ],
        };
        assert_eq!(u.to_dfly_string(), "8999615c-c27a-d944-991a-f9b8a97ac560");
    }
}
