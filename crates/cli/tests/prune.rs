//! Prune as a property: random histories (files written, rewritten,
//! truncated, renamed and removed, with a sync per round), a random set of
//! kept points (snapshots) among the synced TIDs, then a prune built the
//! way `hammer prune` builds it from snapshots. Afterwards every kept
//! point's view of the tree and the current state must be unchanged
//! (contents of every file), no deleted record may survive unless a kept
//! point sees it (versions between kept points are gone), space must have
//! come back, and the volume must pass checkmap and the B-tree checks.
//! Then a reblock that moves every record's data and a rebalance that
//! packs the leaves must each leave every kept view unchanged again, and
//! the volume clean.

mod support;

use hammer_engine::btree::BTree;
use hammer_engine::fs::{Fs, NewObject, PruneElm, ReblockOpts};
use hammer_engine::store::ReadOnlyStore;
use hammer_engine::{OpenOptions, VolumeSet};
use hammer_ondisk::*;
use std::ops::ControlFlow;
use support::*;

/// One round of random changes in two directories.
fn churn(fs: &mut Fs, rng: &mut Rng, dirs: &[i64]) {
    for _ in 0..12 {
        let dir = dirs[rng.below(dirs.len())];
        let name = format!("f{}", rng.below(10));
        let existing = fs.lookup(dir, name.as_bytes(), HAMMER_MAX_TID).unwrap();
        match (existing, rng.below(6)) {
            (None, _) => {
                let ino = fs
                    .create(dir, name.as_bytes(), NewObject::File, 0o644, 0, 0)
                    .unwrap()
                    .ino;
                let len = rng.below(200_000) + 1;
                let fill = rng.next() as u8;
                fs.write(ino, 0, &vec![fill; len]).unwrap();
            }
            (Some(_), 0) => fs.unlink(dir, name.as_bytes()).unwrap(),
            (Some(e), 1) => {
                let to = format!("f{}", rng.below(10));
                let other = dirs[rng.below(dirs.len())];
                if fs
                    .lookup(other, to.as_bytes(), HAMMER_MAX_TID)
                    .unwrap()
                    .is_none()
                {
                    fs.rename(dir, name.as_bytes(), other, to.as_bytes())
                        .unwrap();
                } else {
                    fs.truncate(e.obj_id, rng.below(50_000) as u64).unwrap();
                }
            }
            (Some(e), _) => {
                let off = rng.below(150_000) as u64;
                let len = rng.below(40_000) + 1;
                fs.write(e.obj_id, off, &vec![rng.next() as u8; len])
                    .unwrap();
            }
        }
    }
}

/// Every leaf of the tree.
fn leaves(set: &VolumeSet) -> Vec<HammerBtreeLeafElm> {
    let mut store = ReadOnlyStore(set);
    let t = BTree::new(&mut store, set.header().vol0_btree_root);
    let lo = hammer_engine::btree::min_bound();
    let hi = hammer_engine::btree::max_bound();
    let mut v = Vec::new();
    t.scan(&lo, &hi, &mut |e| {
        v.push(*e);
        ControlFlow::Continue(())
    })
    .unwrap();
    v
}

/// The elements `hammer prune` makes from snapshots: from each snapshot
/// to the next (one step), from TID 1 to the first, from the last to `top`.
fn elements(kept: &[u64], top: u64) -> Vec<PruneElm> {
    let mut pts = vec![1];
    pts.extend_from_slice(kept);
    pts.push(top);
    pts.windows(2)
        .rev()
        .map(|w| PruneElm {
            beg_tid: w[0],
            end_tid: w[1],
            mod_tid: w[1] - w[0],
        })
        .collect()
}

fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let paths = new_volume(dir.path(), "PRUNE", 1 << 30);
    let mut fs = Fs::open(&paths, false).unwrap();
    let a = fs.create(1, b"a", NewObject::Dir, 0o755, 0, 0).unwrap().ino;
    let b = fs.create(1, b"b", NewObject::Dir, 0o755, 0, 0).unwrap().ino;
    let mut rng = Rng(seed);
    let mut tids = Vec::new();
    for _ in 0..16 * scale() {
        churn(&mut fs, &mut rng, &[1, a, b]);
        tids.push(fs.sync().unwrap());
    }
    let kept: Vec<u64> = tids.iter().copied().filter(|_| rng.below(3) == 0).collect();
    let views: Vec<(u64, Tree)> = kept.iter().map(|&t| (t, dump(&fs, t))).collect();
    let now = dump(&fs, HAMMER_MAX_TID);
    let before_records = leaves(fs.volumes()).len();
    let free_before = fs.statfs().1;

    let top = fs.sync().unwrap();
    let stats = fs.prune(&elements(&kept, top), &mut |_, _| {}).unwrap();
    eprintln!("kept {} of {} points: {stats:?}", kept.len(), tids.len());
    assert!(stats.pruned > 0 && stats.bytes > 0, "{stats:?}");

    for (t, v) in &views {
        assert_eq!(&dump(&fs, *t), v, "view as of kept TID {t:#x} changed");
    }
    assert_eq!(dump(&fs, HAMMER_MAX_TID), now, "current state changed");
    drop(fs);

    let mut set = VolumeSet::open_paths(&paths, &OpenOptions::default()).unwrap();
    let after = leaves(&set);
    assert_eq!(after.len() as u64 + stats.pruned, before_records as u64);
    // No deleted record survives unless a kept point sees it.
    for e in after.iter().filter(|e| e.base.delete_tid != 0) {
        let seen = kept
            .iter()
            .any(|&k| e.base.create_tid <= k && k < e.base.delete_tid);
        assert!(seen, "record kept that no kept point sees: {:?}", e.base);
    }
    let report = hammer_cli::cmd_checkmap::collect(&set).unwrap();
    assert_eq!(report.error_count(), 0, "checkmap mismatches");
    assert!(report.bad_nodes.is_empty(), "bad nodes");
    let root = set.header().vol0_btree_root;
    BTree::new(&mut set, root).check().unwrap();
    drop(set);
    let mut fs = Fs::open(&paths, false).unwrap();
    assert!(
        fs.statfs().1 >= free_before,
        "free space shrank: {free_before} -> {}",
        fs.statfs().1
    );
    for (t, v) in &views {
        assert_eq!(
            &dump(&fs, *t),
            v,
            "view as of kept TID {t:#x} changed after reopen"
        );
    }

    // Reblock (recopy: everything moves): every kept view stays the same.
    let opts = ReblockOpts {
        btree: true,
        inodes: true,
        dirs: true,
        data: true,
        free_level: 0,
        deadline: None,
        start: None,
    };
    let rs = fs.reblock(&opts, &mut |_, _| {}).unwrap();
    assert!(
        rs.data_moves > 0 && rs.data_moves == rs.data_count,
        "{rs:?}"
    );
    assert!(
        rs.btree_moves > 0 && rs.btree_moves == rs.btree_count,
        "{rs:?}"
    );
    for (t, v) in &views {
        assert_eq!(
            &dump(&fs, *t),
            v,
            "view as of kept TID {t:#x} changed by reblock"
        );
    }
    assert_eq!(
        dump(&fs, HAMMER_MAX_TID),
        now,
        "current state changed by reblock"
    );

    // Rebalance packs the leaves pruning left sparse; views stay the same.
    let inodes_before = fs.volumes().header().vol0_stat_inodes;
    let rb = fs.rebalance(52, None, None, &mut |_, _| {}).unwrap();
    eprintln!("rebalance: {rb:?}");
    assert!(rb.scanned > 0);
    for (t, v) in &views {
        assert_eq!(
            &dump(&fs, *t),
            v,
            "view as of kept TID {t:#x} changed by rebalance"
        );
    }
    assert_eq!(
        dump(&fs, HAMMER_MAX_TID),
        now,
        "current state changed by rebalance"
    );
    assert_eq!(fs.volumes().header().vol0_stat_inodes, inodes_before);
    drop(fs);
    let mut set = VolumeSet::open_paths(&paths, &OpenOptions::default()).unwrap();
    let report = hammer_cli::cmd_checkmap::collect(&set).unwrap();
    assert_eq!(report.error_count(), 0, "checkmap mismatches after reblock");
    let root = set.header().vol0_btree_root;
    BTree::new(&mut set, root).check().unwrap();
}

#[test]
fn prune_keeps_every_kept_view() {
    for seed in 0..(3 * scale() as u64) {
        run(0x9e37_79b9_7f4a_7c15 ^ (seed * 0x1000_0001));
    }
}

/// prune-everything: no history is left, the current state stands.
#[test]
fn prune_everything_leaves_only_the_present() {
    let dir = tempfile::tempdir().unwrap();
    let paths = new_volume(dir.path(), "PRUNE", 1 << 30);
    let mut fs = Fs::open(&paths, false).unwrap();
    let mut rng = Rng(77);
    for _ in 0..10 {
        churn(&mut fs, &mut rng, &[1]);
        fs.sync().unwrap();
    }
    let now = dump(&fs, HAMMER_MAX_TID);
    let top = fs.sync().unwrap();
    let elms = [PruneElm {
        beg_tid: 1,
        end_tid: top,
        mod_tid: 0,
    }];
    let stats = fs.prune(&elms, &mut |_, _| {}).unwrap();
    assert!(stats.pruned > 0);
    assert_eq!(dump(&fs, HAMMER_MAX_TID), now);
    assert!(leaves(fs.volumes()).iter().all(|e| e.base.delete_tid == 0));
}

/// `-t` and `-c`: a reblock or rebalance stopped by its deadline says where,
/// and one started there finishes the work; views stay the same.
#[test]
fn reblock_and_rebalance_resume_where_they_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let paths = new_volume(dir.path(), "PRUNE", 1 << 30);
    let mut fs = Fs::open(&paths, false).unwrap();
    let mut rng = Rng(5);
    for _ in 0..8 {
        churn(&mut fs, &mut rng, &[1]);
        fs.sync().unwrap();
    }
    let now = dump(&fs, HAMMER_MAX_TID);
    let past = std::time::Instant::now();
    let mut o = ReblockOpts {
        btree: false,
        inodes: true,
        dirs: true,
        data: true,
        free_level: 0,
        deadline: Some(past),
        start: None,
    };
    // A passed deadline still lets each call do one record.
    let first = fs.reblock(&o, &mut |_, _| {}).unwrap();
    let at = first.interrupted_at.expect("the deadline had passed");
    assert_eq!(first.data_moves, 1);
    o.deadline = None;
    o.start = Some(at);
    let rest = fs.reblock(&o, &mut |_, _| {}).unwrap();
    assert!(rest.interrupted_at.is_none());
    assert!(rest.data_moves > 0 && rest.data_moves == rest.data_count);
    assert_eq!(dump(&fs, HAMMER_MAX_TID), now);

    let r1 = fs.rebalance(40, Some(past), None, &mut |_, _| {}).unwrap();
    if let Some(at) = r1.interrupted_at {
        let r2 = fs.rebalance(40, None, Some(&at), &mut |_, _| {}).unwrap();
        assert!(r2.interrupted_at.is_none());
    }
    assert_eq!(dump(&fs, HAMMER_MAX_TID), now);
    let mut set = fs.into_volumes();
    let root = set.header().vol0_btree_root;
    BTree::new(&mut set, root).check().unwrap();
}
