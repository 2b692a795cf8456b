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
    let mut images = 0;
    for c in 0..total {
        let dev = Arc::new(CrashDevice::new(base.clone()));
        dev.crash_after_barriers(c);
        assert!(
            maintenance(dev.clone(), &kept).is_err(),
            "crash point {c} did not stop the work"
        );
        let all = (1u64 << dev.pending_writes().min(63)) - 1;
        for (keep, tear) in [
            (0, false),
            (all, false),
            (all, true),
            (all & 0x5555_5555_5555_5555, false),
        ] {
            let fs = open_dev(Arc::new(dev.after_crash(keep, tear)))
                .unwrap_or_else(|e| panic!("crash point {c}: recovery failed: {e}"));
            for (t, v) in &views {
                assert!(
                    &dump(&fs, *t) == v,
                    "crash point {c} keep {keep:x} tear {tear}: view as of {t:#x} changed"
                );
            }
            let mut set = fs.into_volumes();
            let report = hammer_cli::cmd_checkmap::collect(&set).unwrap();
            assert_eq!(
                report.error_count(),
                0,
                "crash point {c}: checkmap mismatches"
            );
            assert!(report.bad_nodes.is_empty(), "crash point {c}: bad nodes");
            let root = set.header().vol0_btree_root;
            BTree::new(&mut set, root).check().unwrap();
            images += 1;
        }
    }
    eprintln!("{images} crash images over {total} barriers");
}
