//! Rebalancing: packing B-tree leaves so sparse trees (left by splits and
//! deletions) shrink — DragonFly's `HAMMERIOC_REBALANCE`, done here at the
//! leaf level, where nearly all nodes are. Each internal node whose
//! children are leaves is handled on its own (`BTree::rebalance_leaves`):
//! its records are spread evenly over as few leaves as the saturation
//! allows and the emptied leaves are freed. Each such step leaves a valid
//! tree, so the work is flushed in as many flushes as the UNDO FIFO needs
//! and may stop at a deadline.

use super::Fs;
use crate::btree::BTree;
use crate::error::Result;
use crate::store::ReadOnlyStore;
use hammer_ondisk::{btree_cmp, HammerBaseElm};

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
        for (i, off) in parents.into_iter().enumerate() {
            if i % 64 == 0 {
                progress(i as u64, total);
            }
            let left = self.set.read_node(off)?.elms[0].base;
            // A resumed rebalance skips what lies before the cycle position.
            if start.is_some_and(|s| btree_cmp(&left, s) < 0) {
                continue;
            }
            if matches!(deadline, Some(d) if std::time::Instant::now() >= d) {
                st.interrupted_at = Some(left);
                break;
            }
            let _ = self.tid();
            let root = self.root();
            let (w, f) = BTree::new(&mut self.set, root).rebalance_leaves(off, saturation)?;
            st.rebalanced += w;
            st.deleted += f;
            self.maybe_sync()?;
        }
        self.sync()?;
        progress(total, total);
        Ok(st)
    }
}
