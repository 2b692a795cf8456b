//! Property tests: volume headers with random and mutated bytes never make
//! `VolumeSet` panic, and whatever opens can be walked with bounded,
//! checked translation.

use hammer_engine::{Device, MemDevice, OpenOptions, VolumeSet};
use hammer_ondisk::*;
use proptest::prelude::*;
use std::sync::Arc;
use zerocopy::IntoBytes;

const SIZE: usize = 48 << 20;

fn valid_header() -> HammerVolumeOndisk {
    let mut undo = [u64::MAX; 128];
    undo[0] = 0x2000_0000_0100_0000;
    let mut bm = [HammerBlockmap::default(); 16];
    bm[3].alloc_offset = 0x3000_0000_0080_0000;
    bm[4].phys_offset = 0x2000_0000_0000_0000;
    HammerVolumeOndisk {
        vol_signature: HAMMER_FSBUF_VOLUME,
        vol_bot_beg: 16384,
        vol_mem_beg: 16384,
        vol_buf_beg: 16384,
        vol_buf_end: SIZE as i64,
        vol_fstype: HAMMER_FSTYPE_UUID,
        vol_count: 1,
        vol_version: 7,
        vol0_btree_root: 0x8000_0000_0180_0000,
        vol0_blockmap: bm,
        vol0_undo_array: undo,
        ..Default::default()
    }
}

fn open(bytes: &[u8]) -> hammer_engine::Result<VolumeSet> {
    let dev = MemDevice::new(SIZE);
    dev.write_at(bytes, 0).unwrap();
    VolumeSet::open_devices(
        vec![("mem.img".into(), Arc::new(dev))],
        &OpenOptions {
            cache_bytes: 1 << 20,
            ..Default::default()
        },
    )
}

fn exercise(set: &VolumeSet, probes: &[u64]) {
    let _ = set.read_node(set.header().vol0_btree_root);
    for &p in probes {
        let _ = set.read(p, 64);
        let _ = set.layer2(p);
        let _ = set.to_zone2(p);
    }
}

#[test]
fn valid_header_opens() {
    let set = open(valid_header().as_bytes()).expect("valid header");
    assert_eq!(set.version(), 7);
    assert!(set.read_node(0x8000_0000_0180_0000).is_ok());
    assert!(set.read(0x3000_0000_0000_0000, 512).is_ok());
    assert!(
        set.read(0x3000_0000_0080_0000, 1).is_err(),
        "past the UNDO FIFO"
    );
    assert!(
        set.read_node(0x8000_0000_0300_0000).is_err(),
        "past the volume"
    );
    assert!(set.read_node(0x8010_0000_0000_0000).is_err(), "no volume 1");
}

proptest! {
    #[test]
    fn mutated_headers_never_panic(
        flips in proptest::collection::vec((0usize..1928, any::<u8>()), 1..16),
        probes in proptest::collection::vec(any::<u64>(), 0..8),
    ) {
        let mut b = valid_header().as_bytes().to_vec();
        for (i, v) in flips {
            b[i] = v;
        }
        if let Ok(set) = open(&b) {
            exercise(&set, &probes);
        }
    }

    #[test]
    fn random_headers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 1928)) {
        if let Ok(set) = open(&bytes) {
            exercise(&set, &[0, u64::MAX, 0x8000_0000_0000_0000]);
        }
    }
}
