//! Reblocking: moving record data out of sparsely used big-blocks so they
//! empty and return to the freemap — DragonFly's `HAMMERIOC_REBLOCK`
//! (`hammer_reblock.c`) for record data. Records are classed as the kernel
//! classes them (INODE/SNAPSHOT/CONFIG: inodes; EXT/FIX/PFS/DIRENTRY:
//! dirs; DATA/DB: data); a selected record's data moves when its big-block
//! has at least `free_level` bytes free (0 moves everything, which is
//! `recopy`), except out of the big-block its zone is filling now unless
//! everything moves. A move allocates in the same zone, copies, repoints
//! the leaf (same key, same TIDs: every view of history is unchanged) and
//! frees the old copy, which the allocator reuses only once the flush is
//! final. B-tree nodes move the same way (`BTree::relocate`: the parent's
//! element or the header's root pointer and the children's parent
//! pointers follow).

use super::Fs;
use crate::btree::BTree;
use crate::error::Result;
use hammer_ondisk::*;
use std::ops::ControlFlow;

/// Which records move, and from how empty a big-block.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReblockOpts {
    pub btree: bool,
    pub inodes: bool,
    pub dirs: bool,
    pub data: bool,
    /// Bytes a big-block must have free for its records to move.
    pub free_level: u64,
    pub deadline: Option<std::time::Instant>,
    /// Resume an interrupted reblock (a cycle file): only records at or
    /// after this key; its localization is taken within the PFS.
    pub start: Option<HammerBaseElm>,
}

/// What a reblock did: moved/checked pairs, as the tool prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReblockStats {
    pub btree_moves: u64,
    pub btree_count: u64,
    pub data_moves: u64,
    pub data_count: u64,
    pub data_byte_moves: u64,
    pub data_byte_count: u64,
    /// The first record not reblocked when the deadline passed.
    pub interrupted_at: Option<HammerBaseElm>,
}

fn selected(o: &ReblockOpts, rt: u16) -> bool {
    match rt {
        HAMMER_RECTYPE_INODE | HAMMER_RECTYPE_SNAPSHOT | HAMMER_RECTYPE_CONFIG => o.inodes,
        HAMMER_RECTYPE_EXT | HAMMER_RECTYPE_FIX | HAMMER_RECTYPE_PFS | HAMMER_RECTYPE_DIRENTRY => {
            o.dirs
        }
        HAMMER_RECTYPE_DATA | HAMMER_RECTYPE_DB => o.data,
        _ => false,
    }
}

impl Fs {
    /// Reblocks this PFS's records as `o` says.
    pub fn reblock(
        &mut self,
        o: &ReblockOpts,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ReblockStats> {
        self.sync()?;
        let mut st = ReblockStats::default();
        let (first, to) = self.pfs_bounds();
        let from = o.start.map_or(first, |k| self.in_pfs(k));
        let mut work = Vec::new();
        self.ro_tree(|t| {
            t.scan(&from, &to, &mut |e| {
                if e.data_len > 0 && selected(o, e.base.rec_type) {
                    work.push(*e);
                }
                ControlFlow::Continue(())
            })
        })?;
        // Nodes are few: a resumed reblock goes over them again.
        if o.btree {
            self.reblock_nodes(o, &mut st)?;
        }
        if st.interrupted_at.is_some() {
            work.clear();
        }
        let total = work.len() as u64;
        for (i, e) in work.into_iter().enumerate() {
            // Every call makes progress before the deadline may stop it,
            // so a caller stepping with short deadlines always gets there.
            if i > 0 && matches!(o.deadline, Some(d) if std::time::Instant::now() >= d) {
                st.interrupted_at = Some(e.base);
                break;
            }
            let len = e.data_len as u64;
            st.data_count += 1;
            st.data_byte_count += len;
            let zone = zone_of(e.data_offset);
            let Some((l2, ..)) = self.set.layer2(e.data_offset)? else {
                continue;
            };
            let filling = self.set.header().vol0_blockmap[zone as usize].next_offset
                & !HAMMER_BIGBLOCK_MASK
                == e.data_offset & !HAMMER_BIGBLOCK_MASK;
            if (l2.bytes_free.max(0) as u64) < o.free_level || (filling && o.free_level != 0) {
                continue;
            }
            let _ = self.tid();
            let data = self.set.read(e.data_offset, e.data_len as usize)?;
            let new_off = self.set.alloc(zone, len)?;
            self.set.write_fresh(new_off, &data)?;
            let mut moved = e;
            moved.data_offset = new_off;
            let root = self.root();
            BTree::new(&mut self.set, root).update(&moved)?;
            self.set.free(e.data_offset, len)?;
            st.data_moves += 1;
            st.data_byte_moves += len;
            self.maybe_sync()?;
            if i % 4096 == 0 {
                progress(i as u64, total);
            }
        }
        self.sync()?;
        progress(total, total);
        Ok(st)
    }

    /// Moves B-tree nodes out of sparse big-blocks (the same test as
    /// record data), parents first; a moved root is recorded in the
    /// volume header, which the flush writes with UNDO like any change.
    fn reblock_nodes(&mut self, o: &ReblockOpts, st: &mut ReblockStats) -> Result<()> {
        let nodes = {
            let mut store = crate::store::ReadOnlyStore(&self.set);
            BTree::new(&mut store, self.root()).all_nodes()?
        };
        for off in nodes {
            if matches!(o.deadline, Some(d) if std::time::Instant::now() >= d) {
                // Stopped among the nodes: the records start from the top.
                st.interrupted_at = Some(HammerBaseElm {
                    localization: self.pfs_lo,
                    obj_id: HAMMER_MIN_OBJID,
                    key: HAMMER_MIN_KEY,
                    create_tid: 1,
                    ..Default::default()
                });
                break;
            }
            st.btree_count += 1;
            let Some((l2, ..)) = self.set.layer2(off)? else {
                continue;
            };
            let filling = self.set.header().vol0_blockmap[HAMMER_ZONE_BTREE_INDEX as usize]
                .next_offset
                & !HAMMER_BIGBLOCK_MASK
                == off & !HAMMER_BIGBLOCK_MASK;
            if (l2.bytes_free.max(0) as u64) < o.free_level || (filling && o.free_level != 0) {
                continue;
            }
            let _ = self.tid();
            let root = self.root();
            let mut t = BTree::new(&mut self.set, root);
            t.relocate(off)?;
            let new_root = t.root();
            if new_root != root {
                self.set.header_mut().vol0_btree_root = new_root;
            }
            st.btree_moves += 1;
            self.maybe_sync()?;
        }
        Ok(())
    }
}
