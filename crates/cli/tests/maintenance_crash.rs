//! Crash safety of the history maintenance directives: a volume with
//! history and kept points (snapshots) goes through prune, reblock (every
//! record and node moves) and rebalance on a crash-simulating device that
//! stops at every write barrier, with the writes in flight dropped, kept,
//! torn or half kept. None of these changes any kept view or the current
//! state, so after recovery every kept view and the current tree must be
//! exactly as before — wherever the crash hit — and the volume must pass
//! checkmap and the B-tree checks.

mod support;

use hammer_engine::btree::BTree;
use hammer_engine::crashdev::CrashDevice;
use hammer_engine::fs::{Fs, NewObject, PruneElm, ReblockOpts};
use hammer_engine::{Device, FileDevice, OpenOptions, VolumeSet};
use hammer_ondisk::*;
use std::sync::Arc;
use support::*;

fn open_dev(dev: Arc<dyn Device>) -> hammer_engine::Result<Fs> {
    let set = VolumeSet::open_devices(
        vec![("crash.img".into(), dev)],
        &OpenOptions {
            writable: true,
            recover: true,
            cache_bytes: 8 << 20,
        },
    )?;
    Fs::from_set(set, 0, false)
}

/// prune (kept points from `kept`), recopy, rebalance.
fn maintenance(dev: Arc<dyn Device>, kept: &[u64]) -> hammer_engine::Result<()> {
    let mut fs = open_dev(dev)?;
    let top = fs.sync()?;
    let mut pts = vec![1];
    pts.extend_from_slice(kept);
    pts.push(top);
    let elms: Vec<PruneElm> = pts
        .windows(2)
        .rev()
        .map(|w| PruneElm {
            beg_tid: w[0],
            end_tid: w[1],
            mod_tid: w[1] - w[0],
        })
        .collect();
    fs.prune(&elms, &mut |_, _| {})?;
    let all = ReblockOpts {
        btree: true,
        inodes: true,
        dirs: true,
        data: true,
        free_level: 0,
        deadline: None,
        start: None,
    };
    fs.reblock(&all, &mut |_, _| {})?;
    fs.rebalance(52, None, None, &mut |_, _| {})?;
    Ok(())
}

/// Runs `work` on a fresh crash device over `base` once per barrier of
/// its `total`, stopping there; for each crash, recovers the volume with
/// the writes in flight dropped, kept, torn and half kept, and hands the
/// recovered filesystem to `check` (with a name for the case). Every image
/// must then also pass checkmap and the B-tree checks. Returns how many
/// images were checked.
fn each_crash_image(
    base: &Arc<dyn Device>,
    total: usize,
    work: impl Fn(Arc<dyn Device>) -> hammer_engine::Result<()>,
    mut check: impl FnMut(&mut Fs, &str),
) -> usize {
    let mut images = 0;
    for c in 0..total {
        let dev = Arc::new(CrashDevice::new(base.clone()));
        dev.crash_after_barriers(c);
        assert!(
            work(dev.clone()).is_err(),
            "crash point {c} did not stop the work"
        );
        let all = (1u64 << dev.pending_writes().min(63)) - 1;
        for (keep, tear) in [
            (0, false),
            (all, false),
            (all, true),
            (all & 0x5555_5555_5555_5555, false),
        ] {
            let what = format!("crash point {c} keep {keep:x} tear {tear}");
            let mut fs = open_dev(Arc::new(dev.after_crash(keep, tear)))
                .unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
            check(&mut fs, &what);
            let mut set = fs.into_volumes();
            let report = hammer_cli::cmd_checkmap::collect(&set).unwrap();
            assert_eq!(report.error_count(), 0, "{what}: checkmap mismatches");
            assert!(report.bad_nodes.is_empty(), "{what}: bad nodes");
            let root = set.header().vol0_btree_root;
            BTree::new(&mut set, root).check().unwrap();
            images += 1;
        }
    }
    images
}

#[test]
fn crash_during_prune_reblock_rebalance() {
    let img = materialize("v7-longlabel").unwrap();
    let path = img.path("vol0.img").to_string_lossy().into_owned();
    // History first, on the image itself.
    let mut kept = Vec::new();
    let mut views = Vec::new();
    {
        let mut fs = Fs::open(std::slice::from_ref(&path), false).unwrap();
        let mut rng = Rng(0x5eed);
        let d = fs.create(1, b"d", NewObject::Dir, 0o755, 0, 0).unwrap().ino;
        for round in 0..10 {
            for i in 0..8 {
                let dir = if i % 2 == 0 { 1 } else { d };
                let name = format!("f{i}");
                let ino = match fs.lookup(dir, name.as_bytes(), HAMMER_MAX_TID).unwrap() {
                    Some(e) if rng.below(4) == 0 => {
                        fs.unlink(dir, name.as_bytes()).unwrap();
                        let _ = e;
                        continue;
                    }
                    Some(e) => e.obj_id,
                    None => {
                        fs.create(dir, name.as_bytes(), NewObject::File, 0o644, 0, 0)
                            .unwrap()
                            .ino
                    }
                };
                let len = 1000 + rng.below(60_000);
                fs.write(
                    ino,
                    rng.below(20_000) as u64,
                    &vec![(round * 8 + i) as u8; len],
                )
                .unwrap();
            }
            let tid = fs.sync().unwrap();
            if round % 3 == 1 {
                kept.push(tid);
                views.push((tid, dump(&fs, tid)));
            }
        }
        views.push((HAMMER_MAX_TID, dump(&fs, HAMMER_MAX_TID)));
    }
    let base: Arc<dyn Device> = Arc::new(FileDevice::open(&path, false).unwrap());
    let clean = Arc::new(CrashDevice::new(base.clone()));
    maintenance(clean.clone(), &kept).unwrap();
    let total = clean.barriers();
    assert!(
        total >= 12,
        "expected several flushes, saw {total} barriers"
    );
    let images = each_crash_image(
        &base,
        total,
        |dev| maintenance(dev, &kept),
        |fs, what| {
            for (t, v) in &views {
                assert!(&dump(fs, *t) == v, "{what}: view as of {t:#x} changed");
            }
        },
    );
    eprintln!("{images} crash images over {total} barriers");
}

/// A fresh master descriptor.
fn master() -> HammerPseudofsData {
    let mut d = <HammerPseudofsData as zerocopy::FromZeros>::new_zeroed();
    d.sync_beg_tid = 1;
    d.sync_end_tid = 1;
    d
}

/// Files of one PFS root: a directory and some files of a few sizes.
fn populate(fs: &mut Fs, tag: u8) -> hammer_engine::Result<()> {
    let d = fs.create(1, b"dir", NewObject::Dir, 0o755, 0, 0)?.ino;
    for i in 0..12u32 {
        let dir = if i % 3 == 0 { d } else { 1 };
        let ino = fs
            .create(
                dir,
                format!("f{i}").as_bytes(),
                NewObject::File,
                0o644,
                0,
                0,
            )?
            .ino;
        fs.write(
            ino,
            0,
            &vec![tag.wrapping_add(i as u8); 500 + i as usize * 7000],
        )?;
    }
    Ok(())
}

/// Make PFS #1 with files, update access times in place, destroy it, make
/// PFS #2 with files.
fn pfs_work(dev: Arc<dyn Device>) -> hammer_engine::Result<()> {
    let mut fs = open_dev(dev)?;
    fs.clock = Some(1_800_000_000_000_000);
    fs.pfs_set(1, &master(), 0, 0)?;
    fs.enter_pfs(1)?;
    populate(&mut fs, 10)?;
    fs.sync()?;
    fs.atime = hammer_engine::fs::AtimeMode::Always;
    fs.clock = Some(1_800_000_100_000_000);
    for e in fs.readdir(1, HAMMER_MAX_TID)? {
        fs.note_access(e.obj_id)?;
    }
    fs.sync()?;
    fs.enter_pfs(0)?;
    fs.pfs_destroy(1)?;
    fs.pfs_set(2, &master(), 0, 0)?;
    fs.enter_pfs(2)?;
    populate(&mut fs, 20)?;
    fs.sync()?;
    Ok(())
}

/// The trees the PFSs may hold after a crash: each PFS is made in one
/// flush and goes in one flush, so it is either absent or whole.
#[test]
fn crash_during_pfs_create_atime_destroy() {
    let img = materialize("v7-longlabel").unwrap();
    let path = img.path("vol0.img").to_string_lossy().into_owned();
    let base_tree = {
        let mut fs = Fs::open(std::slice::from_ref(&path), false).unwrap();
        fs.create(1, b"zero", NewObject::File, 0o644, 0, 0).unwrap();
        fs.sync().unwrap();
        dump(&fs, HAMMER_MAX_TID)
    };
    let base: Arc<dyn Device> = Arc::new(FileDevice::open(&path, false).unwrap());
    // The whole trees, from a run without a crash.
    let clean = Arc::new(CrashDevice::new(base.clone()));
    let tree1 = {
        // PFS #1's tree as it was made (it is gone at the end).
        let mut fs = open_dev(Arc::new(CrashDevice::new(base.clone()))).unwrap();
        fs.pfs_set(1, &master(), 0, 0).unwrap();
        fs.enter_pfs(1).unwrap();
        populate(&mut fs, 10).unwrap();
        dump(&fs, HAMMER_MAX_TID)
    };
    pfs_work(clean.clone()).unwrap();
    let total = clean.barriers();
    let tree2 = {
        let mut fs = open_dev(Arc::new(clean.after_crash(u64::MAX, false))).unwrap();
        assert!(fs.pfs_get(1).unwrap().is_none());
        fs.enter_pfs(2).unwrap();
        dump(&fs, HAMMER_MAX_TID)
    };
    assert!(
        total >= 12,
        "expected several flushes, saw {total} barriers"
    );
    let images = each_crash_image(&base, total, pfs_work, |fs, what| {
        assert_eq!(
            dump(fs, HAMMER_MAX_TID),
            base_tree,
            "{what}: PFS #0 changed"
        );
        for (id, tree) in [(1u32, &tree1), (2, &tree2)] {
            if fs.pfs_get(id).unwrap().is_some() {
                fs.enter_pfs(id).unwrap();
                assert_eq!(
                    &dump(fs, HAMMER_MAX_TID),
                    tree,
                    "{what}: PFS #{id} half made"
                );
                fs.enter_pfs(0).unwrap();
            }
        }
        // A PFS made again under a free id starts empty, whatever a
        // cut-short destroy left.
        if fs.pfs_get(1).unwrap().is_none() {
            fs.pfs_set(1, &master(), 0, 0).unwrap();
            fs.enter_pfs(1).unwrap();
            assert!(
                fs.readdir(1, HAMMER_MAX_TID).unwrap().is_empty(),
                "{what}: leftovers"
            );
            fs.sync().unwrap();
            fs.enter_pfs(0).unwrap();
        }
    });
    eprintln!("{images} crash images over {total} barriers");
}
