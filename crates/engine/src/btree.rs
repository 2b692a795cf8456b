//! The HAMMER B-tree: one tree per filesystem holding every record of every
//! PFS, keyed by (localization, obj_id, rec_type, key, create_tid). This
//! module owns search, in-order range scans with as-of filtering, insertion
//! with node splits, in-place updates (setting `delete_tid` keeps history),
//! physical removal with empty-node removal, parent pointers and
//! `mirror_tid` propagation — the operations of DragonFly's
//! `hammer_btree.c`, written against a `NodeStore` so the same code runs on
//! a volume (through the flusher) and in memory (tests).
//!
//! Shape rules (format notes §5): a leaf holds up to 63 records; an internal
//! node holds `count` ≤ 62 children in `elms[0..count]` and a right boundary
//! in `elms[count]`; child `i` covers `[elms[i], elms[i+1])`. We keep each
//! internal child's own bounds equal to its parent's separators, so a key
//! always lies inside the node it is routed to and `hammer show` finds no
//! element out of range.

use crate::error::{Error, Result};
use hammer_ondisk::*;
use std::cmp::Ordering;
use std::ops::ControlFlow;

/// Deepest tree we descend before calling the tree corrupt. A full tree of
/// 2^64 records is 11 levels deep; anything deeper is a cycle or garbage.
pub const MAX_DEPTH: usize = 40;

/// Where B-tree nodes live. Offsets are zone-8 addresses. Hot paths
/// borrow nodes in place (`with_node`, `modify`); whole copies (`read`,
/// `write`) serve the rare structural changes.
pub trait NodeStore {
    /// Runs `f` on the node at `off` without copying it.
    fn with_node<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R>;
    /// As `with_node`, for closures that only look at the node: the store
    /// may hold its own locks while `f` runs, so `f` must not call back
    /// into it (searches use this; scans, whose visitors may read data,
    /// use `with_node`).
    fn peek_node<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R> {
        self.with_node(off, f)
    }
    /// Changes the node at `off` in place (the store keeps its CRC right).
    fn modify<R>(&mut self, off: u64, f: impl FnOnce(&mut HammerNodeOndisk) -> R) -> Result<R>;
    /// Stores a whole node (the store computes its CRC).
    fn write(&mut self, off: u64, node: &HammerNodeOndisk) -> Result<()>;
    /// A fresh node address.
    fn alloc(&mut self) -> Result<u64>;
    /// Gives back a node that no longer belongs to the tree.
    fn free(&mut self, off: u64) -> Result<()>;
    /// A copy of the node at `off`.
    fn read(&self, off: u64) -> Result<HammerNodeOndisk> {
        self.with_node(off, |n| *n)
    }
    /// Whether changes raise `mirror_tid` up to the root.
    fn mirror_tids(&self) -> bool {
        true
    }
}

/// The left and right bounds of the whole tree (what a root split writes).
pub fn min_bound() -> HammerBaseElm {
    HammerBaseElm {
        localization: HAMMER_MIN_LOCALIZATION,
        obj_id: HAMMER_MIN_OBJID,
        rec_type: HAMMER_MIN_RECTYPE,
        key: HAMMER_MIN_KEY,
        create_tid: 1,
        delete_tid: 1,
        ..Default::default()
    }
}

pub fn max_bound() -> HammerBaseElm {
    HammerBaseElm {
        localization: HAMMER_MAX_LOCALIZATION,
        obj_id: HAMMER_MAX_OBJID,
        rec_type: HAMMER_MAX_RECTYPE,
        key: HAMMER_MAX_KEY,
        create_tid: HAMMER_MAX_TID,
        delete_tid: 0,
        ..Default::default()
    }
}

/// A separator `s` with `k1 < s <= k2`: `k2` with its first field that
/// differs from `k1` replaced by the midpoint, so later keys between the two
/// halves have room on both sides.
pub fn separator(k1: &HammerBaseElm, k2: &HammerBaseElm) -> HammerBaseElm {
    fn mid_u(a: u64, b: u64) -> u64 {
        a + ((b - a + 1) >> 1)
    }
    fn mid_i(a: i64, b: i64) -> i64 {
        (a as i128 + ((b as i128 - a as i128 + 1) >> 1)) as i64
    }
    let mut s = *k2;
    s.delete_tid = 0;
    s.btype = 0;
    s.obj_type = 0;
    if k1.localization != k2.localization {
        s.localization = mid_u(k1.localization as u64, k2.localization as u64) as u32;
    } else if k1.obj_id != k2.obj_id {
        s.obj_id = mid_i(k1.obj_id, k2.obj_id);
    } else if k1.rec_type != k2.rec_type {
        s.rec_type = mid_u(k1.rec_type as u64, k2.rec_type as u64) as u16;
    } else if k1.key != k2.key {
        s.key = mid_i(k1.key, k2.key);
    }
    s
}

/// The keys of object `obj_id`'s records of type `rec_type` at `lo`, from
/// key `key_from` on: the `[from, to)` range a scan takes.
pub fn record_range(
    lo: u32,
    obj_id: i64,
    rec_type: u16,
    key_from: i64,
) -> (HammerBaseElm, HammerBaseElm) {
    let from = HammerBaseElm {
        localization: lo,
        obj_id,
        rec_type,
        key: key_from,
        create_tid: 1,
        ..Default::default()
    };
    let to = HammerBaseElm {
        rec_type: rec_type + 1,
        key: HAMMER_MIN_KEY,
        ..from
    };
    (from, to)
}

/// Index of the child of internal node `n` that covers `k` (clamped to the
/// first/last child for keys outside the node's bounds).
fn child_index(n: &HammerNodeOndisk, k: &HammerBaseElm) -> usize {
    // Last i < count with elms[i] <= k.
    let count = n.count as usize;
    node_partition(n, |e| btree_cmp(e, k) <= 0)
        .saturating_sub(1)
        .min(count.saturating_sub(1))
}

/// First index in leaf `n` whose key is >= `k`.
fn leaf_lower_bound(n: &HammerNodeOndisk, k: &HammerBaseElm) -> usize {
    node_partition(n, |e| btree_cmp(e, k) < 0)
}

/// Elements per group of the two-stage node search.
const SEARCH_STRIDE: usize = 8;

/// The partition point of `pred` over the node's `count` elements (the
/// first index where it is false; it must be true then false in key
/// order).
///
/// Why not a plain binary search: every element is a 64-byte cache line
/// of its own, so in a cold node each of a binary search's six probes is
/// a memory miss that waits for the one before it. Here the search looks
/// first at every eighth element, then at the eight elements of one
/// group; the addresses of each stage are known before any of its
/// comparisons, so their misses overlap (two memory round trips per node
/// instead of six). Same answer as `partition_point`.
#[inline]
fn node_partition(n: &HammerNodeOndisk, pred: impl Fn(&HammerBaseElm) -> bool) -> usize {
    prefetch_samples(n);
    let count = (n.count.max(0) as usize).min(n.elms.len());
    let elms = &n.elms[..count];
    // The group holding the partition point: after the last sampled
    // element for which `pred` holds.
    let mut start = 0;
    let mut j = SEARCH_STRIDE - 1;
    while j < count && pred(&elms[j].base) {
        start = j + 1;
        j += SEARCH_STRIDE;
    }
    let end = (start + SEARCH_STRIDE).min(count);
    for e in &elms[start..end] {
        prefetch(e);
    }
    start + elms[start..end].partition_point(|e| pred(&e.base))
}

/// Requests the lines of the elements the first search stage compares.
/// Called on a node before its header is read (`count`, `type_`): the
/// addresses do not depend on it, so the header's miss overlaps theirs.
#[inline]
fn prefetch_samples(n: &HammerNodeOndisk) {
    for e in n.elms.iter().skip(SEARCH_STRIDE - 1).step_by(SEARCH_STRIDE) {
        prefetch(e);
    }
}

/// Asks the CPU to start loading the cache line at `p` (no effect on
/// results; a hint only, and a no-op where we have no such instruction).
#[inline(always)]
fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch never faults and changes no memory; SSE,
        // which provides it, is part of every x86-64 CPU.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const T as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

fn check_node(off: u64, n: &HammerNodeOndisk) -> Result<()> {
    let ok = match n.type_ {
        HAMMER_BTREE_TYPE_LEAF => (0..=HAMMER_BTREE_LEAF_ELMS as i32).contains(&n.count),
        HAMMER_BTREE_TYPE_INTERNAL => (1..=HAMMER_BTREE_INT_ELMS as i32).contains(&n.count),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::corrupt(
            "btree",
            format!("node type {:#x} with count {}", n.type_, n.count),
            off,
        ))
    }
}

/// Where an exact key was found: the path of (internal node, child index)
/// from the root, the leaf, and the index in it.
type Found = (Vec<(u64, usize)>, u64, usize);

/// A B-tree rooted at `root` in a `NodeStore`.
pub struct BTree<'s, S: NodeStore> {
    pub store: &'s mut S,
    pub root: u64,
}

/// Makes an empty root leaf in `store`.
pub fn create_empty<S: NodeStore>(store: &mut S) -> Result<u64> {
    let off = store.alloc()?;
    let n = HammerNodeOndisk {
        type_: HAMMER_BTREE_TYPE_LEAF,
        ..Default::default()
    };
    store.write(off, &n)?;
    Ok(off)
}

impl<'s, S: NodeStore> BTree<'s, S> {
    pub fn new(store: &'s mut S, root: u64) -> Self {
        BTree { store, root }
    }

    fn read(&self, off: u64) -> Result<HammerNodeOndisk> {
        let n = self.store.read(off)?;
        check_node(off, &n)?;
        Ok(n)
    }

    /// Runs `f` on a checked node, borrowed in place.
    fn with<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R> {
        self.store
            .with_node(off, |n| check_node(off, n).map(|_| f(n)))?
    }

    /// `with` for closures that only look at the node (see
    /// `NodeStore::peek_node`).
    fn peek<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R> {
        self.store.peek_node(off, |n| {
            prefetch_samples(n);
            check_node(off, n).map(|_| f(n))
        })?
    }

    /// Visits, in key order, every leaf element with key in `[from, to)`
    /// (full keys, create_tid included). The visitor may stop early.
    pub fn scan(
        &self,
        from: &HammerBaseElm,
        to: &HammerBaseElm,
        visit: &mut dyn FnMut(&HammerBtreeLeafElm) -> ControlFlow<()>,
    ) -> Result<()> {
        crate::stats::BTREE_SEARCHES.inc();
        self.scan_node(self.root, from, to, visit, 0).map(|_| ())
    }

    fn scan_node(
        &self,
        off: u64,
        from: &HammerBaseElm,
        to: &HammerBaseElm,
        visit: &mut dyn FnMut(&HammerBtreeLeafElm) -> ControlFlow<()>,
        depth: usize,
    ) -> Result<ControlFlow<()>> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt(
                "btree",
                "tree deeper than any valid tree (cycle?)",
                off,
            ));
        }
        crate::stats::BTREE_ITERATIONS.inc();
        if depth == 0 {
            crate::stats::BTREE_ROOT_ITERATIONS.inc();
        }
        // The node stays borrowed while its children are visited: no copy.
        self.with(off, |n| -> Result<ControlFlow<()>> {
            let count = n.count as usize;
            if n.type_ == HAMMER_BTREE_TYPE_LEAF {
                for e in &n.elms[leaf_lower_bound(n, from)..count] {
                    crate::stats::BTREE_ELEMENTS.inc();
                    if btree_cmp(&e.base, to) >= 0 {
                        return Ok(ControlFlow::Break(()));
                    }
                    crate::stats::RECORD_ITERATIONS.inc();
                    if visit(e).is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                return Ok(ControlFlow::Continue(()));
            }
            let first = child_index(n, from);
            for i in first..count {
                if btree_cmp(&n.elms[i].base, to) >= 0 {
                    return Ok(ControlFlow::Break(()));
                }
                let child = n.elms[i].internal().subtree_offset;
                if self
                    .scan_node(child, from, to, visit, depth + 1)?
                    .is_break()
                {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok(ControlFlow::Continue(()))
        })?
    }

    /// The leaf elements in `[from, to)` visible as of `asof`, in key order.
    /// Elements are read in order, but a key met with many versions (a
    /// file block rewritten thousands of times) is resolved by one seek to
    /// its version as of `asof` and the scan resumes after it, so the cost
    /// does not grow with a key's history.
    pub fn visible(
        &self,
        from: &HammerBaseElm,
        to: &HammerBaseElm,
        asof: u64,
    ) -> Result<Vec<HammerBtreeLeafElm>> {
        const RUN: usize = 16;
        type Prefix = (u32, i64, u16, i64);
        let prefix =
            |b: &HammerBaseElm| -> Prefix { (b.localization, b.obj_id, b.rec_type, b.key) };
        let mut v = Vec::new();
        let mut start = *from;
        loop {
            let mut run: Option<(Prefix, usize)> = None;
            let mut jump = None;
            self.scan(&start, to, &mut |e| {
                let p = prefix(&e.base);
                run = match run {
                    Some((q, n)) if q == p => Some((q, n + 1)),
                    _ => Some((p, 1)),
                };
                if matches!(run, Some((_, n)) if n > RUN) {
                    jump = Some(p);
                    return ControlFlow::Break(());
                }
                if visible_at(e.base.create_tid, e.base.delete_tid, asof) {
                    v.push(*e);
                }
                ControlFlow::Continue(())
            })?;
            let Some(p) = jump else { break };
            while v.last().is_some_and(|e| prefix(&e.base) == p) {
                v.pop();
            }
            if let Some(e) = self.lookup(p.0, p.1, p.2, p.3, asof)? {
                if btree_cmp(&e.base, from) >= 0 && btree_cmp(&e.base, to) < 0 {
                    v.push(e);
                }
            }
            // create_tid 0 sorts after every version: resume at the next key.
            start = HammerBaseElm {
                localization: p.0,
                obj_id: p.1,
                rec_type: p.2,
                key: p.3,
                create_tid: 0,
                ..Default::default()
            };
            if btree_cmp(&start, to) >= 0 {
                break;
            }
        }
        Ok(v)
    }

    /// Every version of (lo, obj_id, rec_type, key), oldest first.
    pub fn versions(
        &self,
        lo: u32,
        obj_id: i64,
        rec_type: u16,
        key: i64,
    ) -> Result<Vec<HammerBtreeLeafElm>> {
        // create_tid 1 is the smallest TID and 0 sorts as +infinity, so
        // [from, to) holds every version of this key and nothing else.
        let from = HammerBaseElm {
            localization: lo,
            obj_id,
            rec_type,
            key,
            create_tid: 1,
            ..Default::default()
        };
        let to = HammerBaseElm {
            create_tid: 0,
            ..from
        };
        let mut out = Vec::new();
        self.scan(&from, &to, &mut |e| {
            out.push(*e);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// The version of a key visible as of `asof` (`HAMMER_MAX_TID` for now).
    pub fn lookup(
        &self,
        lo: u32,
        obj_id: i64,
        rec_type: u16,
        key: i64,
        asof: u64,
    ) -> Result<Option<HammerBtreeLeafElm>> {
        crate::stats::BTREE_LOOKUPS.inc();
        let from = HammerBaseElm {
            localization: lo,
            obj_id,
            rec_type,
            key,
            create_tid: 1,
            ..Default::default()
        };
        // A key's versions have disjoint lifetimes ordered by create_tid,
        // so only the newest one created by `asof` can be visible: seek to
        // it directly (O(log n), however many versions the key has).
        let bound = HammerBaseElm {
            create_tid: if asof == HAMMER_MAX_TID { 0 } else { asof + 1 },
            ..from
        };
        let Some(e) = self.last_before(self.root, &bound, 0)? else {
            return Ok(None);
        };
        let b = &e.base;
        if (b.localization, b.obj_id, b.rec_type, b.key) != (lo, obj_id, rec_type, key) {
            return Ok(None);
        }
        Ok(visible_at(b.create_tid, b.delete_tid, asof).then_some(e))
    }

    /// The last leaf element ordered before `bound` in the subtree at `off`.
    fn last_before(
        &self,
        off: u64,
        bound: &HammerBaseElm,
        depth: usize,
    ) -> Result<Option<HammerBtreeLeafElm>> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt(
                "btree",
                "tree deeper than any valid tree (cycle?)",
                off,
            ));
        }
        let step = self.peek(off, |n| {
            if n.type_ == HAMMER_BTREE_TYPE_LEAF {
                let i = leaf_lower_bound(n, bound);
                Err((i > 0).then(|| n.elms[i - 1]))
            } else {
                let c = child_index(n, bound);
                Ok((c, n.elms[c].internal().subtree_offset))
            }
        })?;
        match step {
            Err(found) => Ok(found),
            Ok((c, child)) => {
                // The child holding `bound` first; earlier children lie
                // wholly before it (only empty ones make us go further).
                if let Some(e) = self.last_before(child, bound, depth + 1)? {
                    return Ok(Some(e));
                }
                for j in (0..c).rev() {
                    let k = self.peek(off, |n| n.elms[j].internal().subtree_offset)?;
                    if let Some(e) = self.last_before(k, bound, depth + 1)? {
                        return Ok(Some(e));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Finds the leaf holding exactly `k` (create_tid included).
    fn find_exact(&self, k: &HammerBaseElm) -> Result<Option<Found>> {
        let mut path = Vec::new();
        let mut off = self.root;
        for _ in 0..=MAX_DEPTH {
            let step = self.peek(off, |n| {
                if n.type_ == HAMMER_BTREE_TYPE_LEAF {
                    let i = leaf_lower_bound(n, k);
                    let hit = i < n.count as usize && btree_cmp(&n.elms[i].base, k) == 0;
                    Err(hit.then_some(i))
                } else {
                    let i = child_index(n, k);
                    Ok((i, n.elms[i].internal().subtree_offset))
                }
            })?;
            match step {
                Err(hit) => return Ok(hit.map(|i| (path, off, i))),
                Ok((i, child)) => {
                    path.push((off, i));
                    off = child;
                }
            }
        }
        Err(Error::corrupt(
            "btree",
            "tree deeper than any valid tree (cycle?)",
            off,
        ))
    }

    /// Raises `mirror_tid` to `tid` along `path` (root first) and in the node
    /// at its end, so incremental mirroring can skip unchanged subtrees.
    /// Ancestors always carry at least their children's TIDs, so the climb
    /// stops at the first level that already has `tid`.
    fn propagate_mirror_tid(
        &mut self,
        path: &[(u64, usize)],
        leaf_off: u64,
        tid: u64,
    ) -> Result<()> {
        if self.peek(leaf_off, |n| n.mirror_tid >= tid)? {
            return Ok(());
        }
        self.store.modify(leaf_off, |n| n.mirror_tid = tid)?;
        // In no-mirror mode the kernel raises only the node that changed.
        if !self.store.mirror_tids() {
            return Ok(());
        }
        for &(off, i) in path.iter().rev() {
            let done = self.peek(off, |p| {
                p.elms[i].internal().mirror_tid >= tid && p.mirror_tid >= tid
            })?;
            if done {
                break;
            }
            self.store.modify(off, |p| {
                let mut ie = p.elms[i].internal();
                ie.mirror_tid = ie.mirror_tid.max(tid);
                p.elms[i] = HammerBtreeLeafElm::from_internal(ie);
                p.mirror_tid = p.mirror_tid.max(tid);
            })?;
        }
        Ok(())
    }

    /// Inserts a record. Fails if the exact key (create_tid included) exists.
    pub fn insert(&mut self, elm: &HammerBtreeLeafElm) -> Result<()> {
        crate::stats::BTREE_INSERTS.inc();
        let k = elm.base;
        // Split a full root first so the descent always has room above.
        if self.peek(self.root, is_full)? {
            self.split_root()?;
        }
        let mut path: Vec<(u64, usize)> = Vec::new();
        let mut off = self.root;
        for _ in 0..=MAX_DEPTH {
            let step = self.peek(off, |n| {
                if n.type_ == HAMMER_BTREE_TYPE_LEAF {
                    None
                } else {
                    let i = child_index(n, &k);
                    Some((i, n.elms[i].internal().subtree_offset))
                }
            })?;
            let Some((mut i, child_off)) = step else {
                let mut rec = *elm;
                rec.base.btype = HAMMER_BTREE_TYPE_RECORD;
                let inserted = self.store.modify(off, |n| {
                    let i = leaf_lower_bound(n, &k);
                    let count = n.count as usize;
                    if i < count && btree_cmp(&n.elms[i].base, &k) == 0 {
                        return false;
                    }
                    n.elms.copy_within(i..count, i + 1);
                    n.elms[i] = rec;
                    n.count += 1;
                    true
                })?;
                if !inserted {
                    return Err(Error::Invalid(format!(
                        "duplicate B-tree key lo={:08x} obj={:016x} rt={:02x} key={:016x} tid={:016x}",
                        k.localization, k.obj_id, k.rec_type, k.key, k.create_tid
                    )));
                }
                let tid = k.create_tid.max(k.delete_tid);
                return self.propagate_mirror_tid(&path, off, tid);
            };
            if self.peek(child_off, is_full)? {
                self.split_child(off, i)?;
                let (ni, next) = self.peek(off, |n| {
                    let i = child_index(n, &k);
                    (i, n.elms[i].internal().subtree_offset)
                })?;
                i = ni;
                path.push((off, i));
                off = next;
            } else {
                path.push((off, i));
                off = child_off;
            }
        }
        Err(Error::corrupt(
            "btree",
            "tree deeper than any valid tree (cycle?)",
            off,
        ))
    }

    /// Replaces the record with the same full key (for example to set its
    /// `delete_tid`, which keeps it as history).
    pub fn update(&mut self, elm: &HammerBtreeLeafElm) -> Result<bool> {
        let Some((path, off, i)) = self.find_exact(&elm.base)? else {
            return Ok(false);
        };
        let mut rec = *elm;
        rec.base.btype = HAMMER_BTREE_TYPE_RECORD;
        self.store.modify(off, |n| n.elms[i] = rec)?;
        let tid = elm.base.create_tid.max(elm.base.delete_tid);
        self.propagate_mirror_tid(&path, off, tid)?;
        Ok(true)
    }

    /// Physically removes the record with this full key (prune, no-history
    /// deletes). Empty leaves and internal nodes are removed on the way up.
    pub fn remove(&mut self, k: &HammerBaseElm) -> Result<Option<HammerBtreeLeafElm>> {
        let Some((path, off, i)) = self.find_exact(k)? else {
            return Ok(None);
        };
        crate::stats::BTREE_DELETES.inc();
        let (old, left) = self.store.modify(off, |n| {
            let old = n.elms[i];
            let count = n.count as usize;
            n.elms.copy_within(i + 1..count, i);
            n.elms[count - 1] = HammerBtreeLeafElm::default();
            n.count -= 1;
            (old, n.count)
        })?;
        if left == 0 && !path.is_empty() {
            self.remove_empty(&path, off)?;
        }
        Ok(Some(old))
    }

    /// Removes the empty node `off` whose parent chain is `path`.
    fn remove_empty(&mut self, path: &[(u64, usize)], off: u64) -> Result<()> {
        let (parent_off, i) = *path.last().expect("non-root");
        let mut p = self.read(parent_off)?;
        let count = p.count as usize;
        self.store.free(off)?;
        if count == 1 {
            if path.len() == 1 {
                // The root lost its only child: it becomes an empty leaf.
                let n = HammerNodeOndisk {
                    type_: HAMMER_BTREE_TYPE_LEAF,
                    mirror_tid: p.mirror_tid,
                    ..Default::default()
                };
                return self.store.write(parent_off, &n);
            }
            return self.remove_empty(&path[..path.len() - 1], parent_off);
        }
        if i == 0 {
            // Child 1 inherits the left bound.
            let left = p.elms[0].base;
            p.elms.copy_within(1..=count, 0);
            p.elms[0].base = HammerBaseElm {
                btype: p.elms[0].base.btype,
                obj_type: 0,
                ..left
            };
            let child1 = p.elms[0].internal().subtree_offset;
            self.set_left_bound(child1, &left, 0)?;
        } else {
            // Child i-1 extends right to child i's right bound.
            let right = p.elms[i + 1].base;
            p.elms.copy_within(i + 1..=count, i);
            let prev = p.elms[i - 1].internal().subtree_offset;
            self.set_right_bound(prev, &right, 0)?;
        }
        p.elms[count] = HammerBtreeLeafElm::default();
        p.count -= 1;
        self.store.write(parent_off, &p)
    }

    /// Lowers the left bound of an internal subtree (and its leftmost spine).
    fn set_left_bound(&mut self, off: u64, b: &HammerBaseElm, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt(
                "btree",
                "tree deeper than any valid tree (cycle?)",
                off,
            ));
        }
        let mut n = self.read(off)?;
        if n.type_ != HAMMER_BTREE_TYPE_INTERNAL {
            return Ok(());
        }
        let btype = n.elms[0].base.btype;
        n.elms[0].base = HammerBaseElm {
            btype,
            obj_type: 0,
            ..*b
        };
        self.store.write(off, &n)?;
        let child = n.elms[0].internal().subtree_offset;
        self.set_left_bound(child, b, depth + 1)
    }

    /// Raises the right bound of an internal subtree (and its rightmost spine).
    fn set_right_bound(&mut self, off: u64, b: &HammerBaseElm, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt(
                "btree",
                "tree deeper than any valid tree (cycle?)",
                off,
            ));
        }
        let mut n = self.read(off)?;
        if n.type_ != HAMMER_BTREE_TYPE_INTERNAL {
            return Ok(());
        }
        let count = n.count as usize;
        n.elms[count] = HammerBtreeLeafElm {
            base: HammerBaseElm {
                btype: 0,
                obj_type: 0,
                ..*b
            },
            ..Default::default()
        };
        self.store.write(off, &n)?;
        let child = n.elms[count - 1].internal().subtree_offset;
        self.set_right_bound(child, b, depth + 1)
    }

    /// Splits a full root: its contents move to a new node under a new
    /// internal root covering the whole key space, which is then split as
    /// an ordinary child.
    fn split_root(&mut self) -> Result<()> {
        crate::stats::BTREE_SPLITS.inc();
        let old = self.read(self.root)?;
        let moved = self.store.alloc()?;
        let mut copy = old;
        copy.parent = self.root;
        self.store.write(moved, &copy)?;
        self.reparent_children(&copy, moved)?;
        let mut root = HammerNodeOndisk {
            type_: HAMMER_BTREE_TYPE_INTERNAL,
            count: 1,
            mirror_tid: old.mirror_tid,
            ..Default::default()
        };
        root.elms[0] = HammerBtreeLeafElm::from_internal(HammerBtreeInternalElm {
            base: HammerBaseElm {
                btype: old.type_,
                ..min_bound()
            },
            mirror_tid: old.mirror_tid,
            subtree_offset: moved,
            ..Default::default()
        });
        root.elms[1] = HammerBtreeLeafElm {
            base: max_bound(),
            ..Default::default()
        };
        if old.type_ == HAMMER_BTREE_TYPE_INTERNAL {
            // The moved node keeps its own bounds; make them the whole space.
            let mut m = copy;
            let c = m.count as usize;
            m.elms[0].base = HammerBaseElm {
                btype: m.elms[0].base.btype,
                ..min_bound()
            };
            m.elms[c].base = max_bound();
            self.store.write(moved, &m)?;
        }
        self.store.write(self.root, &root)?;
        self.split_child(self.root, 0)
    }

    fn reparent_children(&mut self, n: &HammerNodeOndisk, new_parent: u64) -> Result<()> {
        if n.type_ != HAMMER_BTREE_TYPE_INTERNAL {
            return Ok(());
        }
        for i in 0..n.count as usize {
            let c = n.elms[i].internal().subtree_offset;
            let mut cn = self.read(c)?;
            cn.parent = new_parent;
            self.store.write(c, &cn)?;
        }
        Ok(())
    }

    /// Splits child `i` of internal node `parent_off` (which has room).
    fn split_child(&mut self, parent_off: u64, i: usize) -> Result<()> {
        crate::stats::BTREE_SPLITS.inc();
        let mut p = self.read(parent_off)?;
        let pcount = p.count as usize;
        if pcount >= HAMMER_BTREE_INT_ELMS {
            return Err(Error::corrupt(
                "btree",
                "split into a full parent",
                parent_off,
            ));
        }
        let left_off = p.elms[i].internal().subtree_offset;
        let mut left = self.read(left_off)?;
        let right_off = self.store.alloc()?;
        let mut right = HammerNodeOndisk {
            type_: left.type_,
            parent: parent_off,
            mirror_tid: left.mirror_tid,
            ..Default::default()
        };
        let count = left.count as usize;
        let sep;
        if left.type_ == HAMMER_BTREE_TYPE_LEAF {
            let s = count / 2;
            right.elms[..count - s].copy_from_slice(&left.elms[s..count]);
            right.count = (count - s) as i32;
            for e in &mut left.elms[s..count] {
                *e = HammerBtreeLeafElm::default();
            }
            left.count = s as i32;
            sep = separator(&left.elms[s - 1].base, &right.elms[0].base);
        } else {
            // Children [0, s) stay, [s, count) move; elms[s] becomes both the
            // left node's right bound and the right node's left bound.
            let s = count.div_ceil(2);
            right.elms[..=count - s].copy_from_slice(&left.elms[s..=count]);
            right.count = (count - s) as i32;
            sep = left.elms[s].base;
            left.elms[s] = HammerBtreeLeafElm {
                base: HammerBaseElm {
                    btype: 0,
                    obj_type: 0,
                    ..sep
                },
                ..Default::default()
            };
            for e in &mut left.elms[s + 1..=count] {
                *e = HammerBtreeLeafElm::default();
            }
            left.count = s as i32;
        }
        self.store.write(left_off, &left)?;
        self.store.write(right_off, &right)?;
        self.reparent_children(&right, right_off)?;
        // Make room in the parent: new child i+1 starts at the separator.
        p.elms.copy_within(i + 1..=pcount, i + 2);
        p.elms[i + 1] = HammerBtreeLeafElm::from_internal(HammerBtreeInternalElm {
            base: HammerBaseElm {
                btype: right.type_,
                obj_type: 0,
                ..sep
            },
            mirror_tid: right.mirror_tid,
            subtree_offset: right_off,
            ..Default::default()
        });
        p.count += 1;
        self.store.write(parent_off, &p)
    }

    /// Every node of the tree, parents before children.
    pub fn all_nodes(&self) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let mut stack = vec![(self.root, 0usize)];
        while let Some((off, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(Error::corrupt("btree", "tree too deep", off));
            }
            out.push(off);
            let n = self.read(off)?;
            if n.type_ == HAMMER_BTREE_TYPE_INTERNAL {
                let count = (n.count.max(0) as usize).min(HAMMER_BTREE_INT_ELMS);
                for i in (0..count).rev() {
                    stack.push((n.elms[i].internal().subtree_offset, depth + 1));
                }
            }
        }
        Ok(out)
    }

    /// Moves node `off` to a freshly allocated node (reblocking): its
    /// parent's element (or the tree's root, which the caller must then
    /// record in the volume header) and its children's parent pointers
    /// follow; the old node is freed. Returns the new address.
    pub fn relocate(&mut self, off: u64) -> Result<u64> {
        let n = self.read(off)?;
        let new = self.store.alloc()?;
        self.store.write(new, &n)?;
        if off == self.root {
            self.root = new;
        } else {
            let parent = n.parent;
            let mut p = self.read(parent)?;
            let count = (p.count.max(0) as usize).min(HAMMER_BTREE_INT_ELMS);
            let Some(i) = (0..count).find(|&i| p.elms[i].internal().subtree_offset == off) else {
                return Err(Error::corrupt("btree", "node missing from its parent", off));
            };
            let mut ie = p.elms[i].internal();
            ie.subtree_offset = new;
            p.elms[i] = HammerBtreeLeafElm::from_internal(ie);
            self.store.write(parent, &p)?;
        }
        self.reparent_children(&n, new)?;
        self.store.free(off)?;
        Ok(new)
    }

    /// The root's address (it changes when the root is relocated).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The internal nodes whose children are leaves, in key order (what
    /// rebalancing works on), and the number of nodes visited.
    pub fn leaf_parents(&self) -> Result<(Vec<u64>, u64)> {
        let mut out = Vec::new();
        let mut visited = 0u64;
        let mut stack = vec![(self.root, 0usize)];
        while let Some((off, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(Error::corrupt("btree", "tree too deep", off));
            }
            visited += 1;
            let n = self.read(off)?;
            if n.type_ != HAMMER_BTREE_TYPE_INTERNAL {
                continue;
            }
            let count = (n.count.max(0) as usize).min(HAMMER_BTREE_INT_ELMS);
            if count > 0 && n.elms[0].base.btype == HAMMER_BTREE_TYPE_LEAF {
                out.push(off);
                visited += count as u64;
                continue;
            }
            for i in (0..count).rev() {
                stack.push((n.elms[i].internal().subtree_offset, depth + 1));
            }
        }
        Ok((out, visited))
    }

    /// The internal nodes whose children are internal too, grouped by
    /// height above the leaves' parents (lowest first), each in key order:
    /// the order in which rebalancing packs the upper levels.
    pub fn upper_levels(&self) -> Result<Vec<Vec<u64>>> {
        // (node, height) where height 0 = parent of leaves.
        fn walk<S: NodeStore>(
            t: &BTree<'_, S>,
            off: u64,
            depth: usize,
            out: &mut Vec<(u64, usize)>,
        ) -> Result<usize> {
            if depth > MAX_DEPTH {
                return Err(Error::corrupt("btree", "tree too deep", off));
            }
            let n = t.read(off)?;
            if n.type_ != HAMMER_BTREE_TYPE_INTERNAL {
                return Ok(usize::MAX);
            }
            let count = (n.count.max(0) as usize).min(HAMMER_BTREE_INT_ELMS);
            if count == 0 || n.elms[0].base.btype == HAMMER_BTREE_TYPE_LEAF {
                return Ok(0);
            }
            let mut h = 0;
            for i in 0..count {
                let c = walk(t, n.elms[i].internal().subtree_offset, depth + 1, out)?;
                if c != usize::MAX {
                    h = h.max(c + 1);
                }
            }
            out.push((off, h));
            Ok(h)
        }
        let mut all = Vec::new();
        walk(self, self.root, 0, &mut all)?;
        let top = all.iter().map(|x| x.1).max().unwrap_or(0);
        let mut levels = vec![Vec::new(); top];
        for (off, h) in all {
            if h >= 1 {
                levels[h - 1].push(off);
            }
        }
        Ok(levels)
    }

    /// Packs the internal children of internal node `parent_off` as
    /// [`BTree::rebalance_leaves`] packs leaves: their children (the
    /// grandchildren) are spread evenly over as few nodes as `saturation`
    /// allows, separators and boundaries follow the grandchildren's own
    /// bounds, moved grandchildren get their new parent, emptied nodes are
    /// freed. `max_writes` bounds the node writes one step may make (the
    /// UNDO FIFO must hold them); a bigger step is skipped. Returns (nodes
    /// rewritten, nodes freed).
    pub fn rebalance_internal(
        &mut self,
        parent_off: u64,
        saturation: usize,
        max_writes: usize,
    ) -> Result<(u64, u64)> {
        let sat = saturation.clamp(2, HAMMER_BTREE_INT_ELMS);
        let mut p = self.read(parent_off)?;
        let n = p.count.max(0) as usize;
        if !(2..=HAMMER_BTREE_INT_ELMS).contains(&n) {
            return Ok((0, 0));
        }
        let mut kids = Vec::with_capacity(n);
        // (element, the child it came from)
        let mut grand: Vec<(HammerBtreeLeafElm, usize)> = Vec::new();
        for i in 0..n {
            let off = p.elms[i].internal().subtree_offset;
            let c = self.read(off)?;
            if c.type_ != HAMMER_BTREE_TYPE_INTERNAL {
                return Ok((0, 0));
            }
            let cnt = (c.count.max(0) as usize).min(HAMMER_BTREE_INT_ELMS);
            grand.extend(c.elms[..cnt].iter().map(|e| (*e, i)));
            kids.push(off);
        }
        let total = grand.len();
        if total == 0 {
            return Ok((0, 0));
        }
        let want = total.div_ceil(sat).max(1);
        if want >= n {
            return Ok((0, 0));
        }
        let per = total.div_ceil(want);
        // Grandchildren that change parent, plus the nodes rewritten.
        let moves = (0..total).filter(|&g| g / per != grand[g].1).count();
        if moves + want + 1 > max_writes {
            return Ok((0, 0));
        }
        let right_bound = p.elms[n].base;
        let mut at = 0;
        for (j, &off) in kids.iter().enumerate().take(want) {
            let take = per.min(total - at);
            let slice = &grand[at..at + take];
            let mut node = HammerNodeOndisk {
                type_: HAMMER_BTREE_TYPE_INTERNAL,
                parent: parent_off,
                count: take as i32,
                ..Default::default()
            };
            for (k, (e, _)) in slice.iter().enumerate() {
                node.elms[k] = *e;
            }
            let bound = if at + take < total {
                grand[at + take].0.base
            } else {
                right_bound
            };
            node.elms[take] = HammerBtreeLeafElm {
                base: HammerBaseElm {
                    btype: 0,
                    obj_type: 0,
                    ..bound
                },
                ..Default::default()
            };
            node.mirror_tid = slice
                .iter()
                .map(|(e, _)| e.internal().mirror_tid)
                .max()
                .unwrap_or(0);
            self.store.write(off, &node)?;
            for (e, from) in slice {
                if *from != j {
                    let g = e.internal().subtree_offset;
                    let mut gn = self.read(g)?;
                    gn.parent = off;
                    self.store.write(g, &gn)?;
                }
            }
            let left = slice[0].0.base;
            p.elms[j] = HammerBtreeLeafElm::from_internal(HammerBtreeInternalElm {
                base: HammerBaseElm {
                    btype: HAMMER_BTREE_TYPE_INTERNAL,
                    obj_type: 0,
                    ..left
                },
                mirror_tid: node.mirror_tid,
                subtree_offset: off,
                ..Default::default()
            });
            at += take;
        }
        p.elms[want] = HammerBtreeLeafElm {
            base: right_bound,
            ..Default::default()
        };
        for e in &mut p.elms[want + 1..=n] {
            *e = HammerBtreeLeafElm::default();
        }
        p.count = want as i32;
        self.store.write(parent_off, &p)?;
        for &off in &kids[want..] {
            self.store.free(off)?;
        }
        Ok((want as u64 + 1, (n - want) as u64))
    }

    /// Packs the leaf children of internal node `parent_off` so each holds
    /// about the same number of records and, when they are emptier than
    /// `saturation` on average, into fewer leaves (emptied ones are
    /// freed) — DragonFly's rebalance at the leaf level. Records keep their
    /// order; only node boundaries move, so every search gives the same
    /// answer. Returns (nodes rewritten, nodes freed).
    pub fn rebalance_leaves(&mut self, parent_off: u64, saturation: usize) -> Result<(u64, u64)> {
        let sat = saturation.clamp(1, HAMMER_BTREE_LEAF_ELMS);
        let mut p = self.read(parent_off)?;
        let n = p.count.max(0) as usize;
        if !(2..=HAMMER_BTREE_INT_ELMS).contains(&n) {
            return Ok((0, 0));
        }
        let mut kids = Vec::with_capacity(n);
        let mut elms = Vec::new();
        for i in 0..n {
            let off = p.elms[i].internal().subtree_offset;
            let c = self.read(off)?;
            if c.type_ != HAMMER_BTREE_TYPE_LEAF {
                return Ok((0, 0));
            }
            let cnt = (c.count.max(0) as usize).min(HAMMER_BTREE_LEAF_ELMS);
            elms.extend_from_slice(&c.elms[..cnt]);
            kids.push(off);
        }
        let total = elms.len();
        if total == 0 {
            return Ok((0, 0));
        }
        let want = total.div_ceil(sat).max(1);
        if want >= n {
            return Ok((0, 0));
        }
        let per = total.div_ceil(want);
        let right_bound = p.elms[n].base;
        let mut at = 0;
        for (j, &off) in kids.iter().enumerate().take(want) {
            let take = per.min(total - at);
            let chunk = &elms[at..at + take];
            let mut leaf = HammerNodeOndisk {
                type_: HAMMER_BTREE_TYPE_LEAF,
                parent: parent_off,
                count: take as i32,
                ..Default::default()
            };
            leaf.elms[..take].copy_from_slice(chunk);
            leaf.mirror_tid = chunk
                .iter()
                .map(|e| e.base.create_tid.max(e.base.delete_tid))
                .max()
                .unwrap_or(0);
            self.store.write(off, &leaf)?;
            let left = if j == 0 {
                p.elms[0].base
            } else {
                separator(&elms[at - 1].base, &elms[at].base)
            };
            p.elms[j] = HammerBtreeLeafElm::from_internal(HammerBtreeInternalElm {
                base: HammerBaseElm {
                    btype: HAMMER_BTREE_TYPE_LEAF,
                    obj_type: 0,
                    ..left
                },
                mirror_tid: leaf.mirror_tid,
                subtree_offset: off,
                ..Default::default()
            });
            at += take;
        }
        p.elms[want] = HammerBtreeLeafElm {
            base: right_bound,
            ..Default::default()
        };
        for e in &mut p.elms[want + 1..=n] {
            *e = HammerBtreeLeafElm::default();
        }
        p.count = want as i32;
        self.store.write(parent_off, &p)?;
        for &off in &kids[want..] {
            self.store.free(off)?;
        }
        Ok((want as u64 + 1, (n - want) as u64))
    }

    /// Checks the structural invariants of the whole tree: key order, node
    /// bounds, parent pointers, mirror_tid, counts. Returns the number of
    /// records.
    pub fn check(&self) -> Result<u64> {
        let mut last: Option<HammerBaseElm> = None;
        self.check_node(self.root, 0, &min_bound(), &max_bound(), 0, &mut last)
    }

    fn check_node(
        &self,
        off: u64,
        parent: u64,
        lo: &HammerBaseElm,
        hi: &HammerBaseElm,
        depth: usize,
        last: &mut Option<HammerBaseElm>,
    ) -> Result<u64> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt("btree", "tree too deep", off));
        }
        let n = self.read(off)?;
        let bad = |what: String| Err(Error::corrupt("btree", what, off));
        if n.parent != parent {
            return bad(format!(
                "parent {:016x}, expected {:016x}",
                n.parent, parent
            ));
        }
        let count = n.count as usize;
        if n.type_ == HAMMER_BTREE_TYPE_LEAF {
            for e in &n.elms[..count] {
                if btree_cmp(&e.base, lo) < 0 || btree_cmp(&e.base, hi) >= 0 {
                    return bad("leaf element outside its node's bounds".into());
                }
                if let Some(l) = last {
                    if btree_ord(l, &e.base) != Ordering::Less {
                        return bad("leaf elements out of order".into());
                    }
                }
                // newfs leaves the root leaf's mirror_tid at 0.
                if n.mirror_tid != 0 && e.base.create_tid.max(e.base.delete_tid) > n.mirror_tid {
                    return bad("record newer than the node's mirror_tid".into());
                }
                *last = Some(e.base);
            }
            return Ok(count as u64);
        }
        if btree_cmp(&n.elms[0].base, lo) != 0 || btree_cmp(&n.elms[count].base, hi) != 0 {
            return bad("internal node bounds differ from its parent's separators".into());
        }
        let mut total = 0;
        for i in 0..count {
            let ie = n.elms[i].internal();
            if btree_cmp(&n.elms[i].base, &n.elms[i + 1].base) >= 0 {
                return bad("separators out of order".into());
            }
            if ie.mirror_tid > n.mirror_tid {
                return bad("child mirror_tid above the node's".into());
            }
            let child = self.read(ie.subtree_offset)?;
            if child.mirror_tid > ie.mirror_tid {
                return bad("child node's mirror_tid above its element's".into());
            }
            total += self.check_node(
                ie.subtree_offset,
                off,
                &n.elms[i].base,
                &n.elms[i + 1].base,
                depth + 1,
                last,
            )?;
        }
        Ok(total)
    }
}

fn is_full(n: &HammerNodeOndisk) -> bool {
    match n.type_ {
        HAMMER_BTREE_TYPE_LEAF => n.count as usize >= HAMMER_BTREE_LEAF_ELMS,
        _ => n.count as usize >= HAMMER_BTREE_INT_ELMS,
    }
}

/// Nodes in memory, for tests and for building trees before they are
/// written out. CRCs are not kept: nothing here reaches a disk.
#[derive(Default)]
pub struct MemNodeStore {
    pub nodes: crate::hash::OffsetMap<u64, Box<HammerNodeOndisk>>,
    next: u64,
    pub freed: Vec<u64>,
}

impl NodeStore for MemNodeStore {
    fn with_node<R>(&self, off: u64, f: impl FnOnce(&HammerNodeOndisk) -> R) -> Result<R> {
        self.nodes.get(&off).map(|n| f(n)).ok_or(Error::BadAddress {
            what: "no such node",
            offset: off,
        })
    }
    fn modify<R>(&mut self, off: u64, f: impl FnOnce(&mut HammerNodeOndisk) -> R) -> Result<R> {
        self.nodes
            .get_mut(&off)
            .map(|n| f(n))
            .ok_or(Error::BadAddress {
                what: "no such node",
                offset: off,
            })
    }
    fn write(&mut self, off: u64, node: &HammerNodeOndisk) -> Result<()> {
        self.nodes.insert(off, Box::new(*node));
        Ok(())
    }
    fn alloc(&mut self) -> Result<u64> {
        self.next += 1;
        Ok(HAMMER_ZONE_BTREE | (self.next * HAMMER_NODE_SIZE as u64))
    }
    fn free(&mut self, off: u64) -> Result<()> {
        self.nodes.remove(&off);
        self.freed.push(off);
        Ok(())
    }
}
