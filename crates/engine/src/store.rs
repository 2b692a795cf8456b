//! B-tree nodes on a volume set: zone-8 space from the allocator, read and
//! written through the buffer layer with the version's CRC.

use crate::btree::NodeStore;
use crate::error::Result;
use crate::volume::VolumeSet;
use hammer_ondisk::*;
use zerocopy::IntoBytes;

impl NodeStore for VolumeSet {
    fn read(&self, off: u64) -> Result<HammerNodeOndisk> {
        self.read_node(off)
    }
    fn write(&mut self, off: u64, node: &HammerNodeOndisk) -> Result<()> {
        let mut n = *node;
        n.set_crc(self.crc_kind());
        VolumeSet::write(self, off, n.as_bytes())
    }
    fn alloc(&mut self) -> Result<u64> {
        VolumeSet::alloc(self, HAMMER_ZONE_BTREE_INDEX, HAMMER_NODE_SIZE as u64)
    }
    fn free(&mut self, off: u64) -> Result<()> {
        VolumeSet::free(self, off, HAMMER_NODE_SIZE as u64)
    }
}
