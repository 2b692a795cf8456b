//! Rebalancing: packing B-tree nodes so sparse trees (left by splits and
//! deletions) shrink — DragonFly's `HAMMERIOC_REBALANCE`. First each
//! internal node whose children are leaves is handled on its own
//! (`BTree::rebalance_leaves`): its records are spread evenly over as few
//! leaves as the saturation allows and the emptied leaves are freed; then
//! the levels above, lowest first, the same way
//! (`BTree::rebalance_internal`). Each step leaves a valid tree, so the
//! work is flushed in as many flushes as the UNDO FIFO needs and may stop
//! at a deadline (a resumed run starts at the leaf parent it stopped at).

use super::Fs;
use crate::btree::BTree;
use crate::error::Result;
use crate::store::ReadOnlyStore;
use hammer_ondisk::{
    btree_cmp, HammerBaseElm, HAMMER_BUFSIZE, HAMMER_OFF_LONG_MASK, HAMMER_ZONE_UNDO_INDEX,
};

/// What a rebalance did, as the tool prints it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RebalanceStats {
    pub scanned: u64,
    pub deleted: u64,
    pub rebalanced: u64,
    /// Where it stopped when the deadline passed: the left bound of the
    /// first part of the tree not rebalanced (for the cycle file).
    pub interrupted_at: Option<HammerBaseElm>,
}

impl Fs {
    /// Rebalances the tree with `saturation` records per leaf (at most 63).
    pub fn rebalance(
        &mut self,
        saturation: usize,
        deadline: Option<std::time::Instant>,
        start: Option<&HammerBaseElm>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RebalanceStats> {
        self.sync()?;
        let mut st = RebalanceStats::default();
        let (parents, visited) = {
            let mut store = ReadOnlyStore(&self.set);
            BTree::new(&mut store, self.root()).leaf_parents()?
        };
        st.scanned = visited;
        let total = parents.len() as u64;
        let mut done = 0usize;
        for (i, off) in parents.into_iter().enumerate() {
            if i % 64 == 0 {
                progress(i as u64, total);
            }
            let left = self.set.read_node(off)?.elms[0].base;
            // A resumed rebalance skips what lies before the cycle position.
            if start.is_some_and(|s| btree_cmp(&left, s) < 0) {
                continue;
            }
            // At least one step per call: stepping callers always progress.
            if done > 0 && matches!(deadline, Some(d) if std::time::Instant::now() >= d) {
                st.interrupted_at = Some(left);
                break;
            }
            done += 1;
            let _ = self.tid();
            let root = self.root();
            let (w, f) = BTree::new(&mut self.set, root).rebalance_leaves(off, saturation)?;
            st.rebalanced += w;
            st.deleted += f;
            self.maybe_sync()?;
        }
        // The upper levels are few nodes: done in one go once the leaf
        // level is through (a deadline does not split them).
        if st.interrupted_at.is_none() {
            self.rebalance_upper(saturation, &mut st)?;
        }
        self.sync()?;
        progress(total, total);
        Ok(st)
    }

    /// The levels above the leaves' parents, lowest first. A step rewrites
    /// a node's children and may move grandchildren; steps too big for
    /// the UNDO FIFO are skipped (there are few such nodes and nothing is
    /// wrong with leaving them).
    fn rebalance_upper(&mut self, saturation: usize, st: &mut RebalanceStats) -> Result<()> {
        let fifo = self.set.header().vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize].alloc_offset
            & HAMMER_OFF_LONG_MASK;
        // Each node write may log a whole 16 KiB buffer plus record heads.
        let max_writes = (fifo / 4 / (HAMMER_BUFSIZE + 2048)) as usize;
        let levels = {
            let mut store = ReadOnlyStore(&self.set);
            BTree::new(&mut store, self.root()).upper_levels()?
        };
        for level in levels {
            for off in level {
                let _ = self.tid();
                let root = self.root();
                let (w, f) = BTree::new(&mut self.set, root)
                    .rebalance_internal(off, saturation, max_writes)?;
                st.rebalanced += w;
                st.deleted += f;
                self.maybe_sync()?;
            }
        }
        Ok(())
    }
}
