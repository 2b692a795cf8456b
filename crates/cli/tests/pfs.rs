//! PFSs through the engine: one `Fs` serving several PFSs at once (object
//! ids that coincide in different PFSs, above all every PFS's root, must
//! never meet in memory or on disk), descriptors as DragonFly's ioctls
//! keep them (master `sync_end_tid`, lowest free id, links expanded by
//! readlink), snapshots and config per PFS, slaves seen as of their
//! `sync_end_tid`, destroy, upgrade and downgrade — each ending with
//! checkmap and the B-tree checks clean, and the state surviving a reopen.

mod support;

use hammer_engine::btree::BTree;
use hammer_engine::fs::{Fs, NewObject};
use hammer_engine::{OpenOptions, VolumeSet};
use hammer_ondisk::*;
use support::*;
use zerocopy::FromZeros;

fn pfsd(slave: bool, label: &str) -> HammerPseudofsData {
    let mut d = HammerPseudofsData::new_zeroed();
    d.sync_beg_tid = 1;
    d.sync_end_tid = 1;
    d.shared_uuid.uuid = [7; 16];
    d.unique_uuid.uuid = [9; 16];
    if slave {
        d.mirror_flags = HAMMER_PFSD_SLAVE;
    }
    d.label[..label.len()].copy_from_slice(label.as_bytes());
    d
}

#[test]
fn several_pfs_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let paths = new_volume(dir.path(), "PFS", 1 << 30);
    let mut fs = Fs::open(&paths, false).unwrap();
    assert_eq!(fs.pfs_free_id().unwrap(), Some(1));
    assert!(fs.pfs_get(0).unwrap().is_some(), "newfs writes PFS #0");
    fs.pfs_set(1, &pfsd(false, "one"), 0, 0).unwrap();
    fs.pfs_set(2, &pfsd(false, "two"), 0, 0).unwrap();
    assert_eq!(fs.pfs_free_id().unwrap(), Some(3));

    // The same names, and the same root object id, in three PFSs within
    // one transaction.
    let mut trees = Vec::new();
    for pfs in 0..3u32 {
        fs.enter_pfs(pfs).unwrap();
        let body = format!("pfs {pfs}\n").repeat(1000 * (pfs as usize + 1));
        root_file(&mut fs, "same-name", body.as_bytes());
        fs.create(HAMMER_OBJID_ROOT, b"d", NewObject::Dir, 0o755, 0, 0)
            .unwrap();
        let mut t = Tree::new();
        t.insert("/same-name".into(), (HAMMER_OBJTYPE_REGFILE, body.into()));
        t.insert("/d".into(), (HAMMER_OBJTYPE_DIRECTORY, vec![]));
        trees.push(t);
    }
    for pfs in 0..3u32 {
        fs.enter_pfs(pfs).unwrap();
        assert_eq!(
            dump(&fs, HAMMER_MAX_TID),
            trees[pfs as usize],
            "PFS {pfs} before sync"
        );
    }
    let tid = fs.sync().unwrap();
    for pfs in 0..3u32 {
        fs.enter_pfs(pfs).unwrap();
        assert_eq!(
            dump(&fs, tid),
            trees[pfs as usize],
            "PFS {pfs} as of the flush"
        );
    }
    // A master reports the newest committed TID as its sync_end_tid.
    let end = fs.pfs_get(1).unwrap().unwrap().sync_end_tid;
    assert!(end >= tid && end == fs.last_tid());
    assert!(fs.enter_pfs(3).is_err(), "no PFS #3");
    drop(fs);
    check_clean(&paths);

    let mut fs = Fs::open(&paths, false).unwrap();
    for pfs in 0..3u32 {
        fs.enter_pfs(pfs).unwrap();
        assert_eq!(
            dump(&fs, HAMMER_MAX_TID),
            trees[pfs as usize],
            "PFS {pfs} reopened"
        );
    }
    let ids: Vec<u32> = fs.pfs_list().unwrap().iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![0, 1, 2]);
    // Snapshots and config belong to the PFS they were made in.
    fs.enter_pfs(1).unwrap();
    fs.add_snapshot(tid, 1, b"one").unwrap();
    fs.set_config(b"snapshots 1d 60d\n").unwrap();
    fs.enter_pfs(0).unwrap();
    assert!(fs.snapshots().unwrap().is_empty());
    assert_eq!(fs.config().unwrap(), None);
    fs.enter_pfs(1).unwrap();
    assert_eq!(fs.snapshots().unwrap().len(), 1);
    fs.sync().unwrap();

    // PFS links: the stored text is expanded when read in PFS #0 now.
    fs.enter_pfs(0).unwrap();
    let l = fs
        .create(
            HAMMER_OBJID_ROOT,
            b"one",
            NewObject::Symlink(b"@@PFS00001"),
            0o755,
            0,
            0,
        )
        .unwrap();
    assert_eq!(fs.readlink(l.ino, HAMMER_MAX_TID).unwrap(), b"@@-1:00001");
    let gone = fs
        .create(
            HAMMER_OBJID_ROOT,
            b"nine",
            NewObject::Symlink(b"@@PFS00009"),
            0o755,
            0,
            0,
        )
        .unwrap();
    assert_eq!(
        fs.readlink(gone.ino, HAMMER_MAX_TID).unwrap(),
        b"@@PFS00009"
    );

    // Destroy: every record of the PFS goes, the id becomes free again,
    // the other PFSs are untouched.
    fs.pfs_destroy(1).unwrap();
    assert!(fs.pfs_get(1).unwrap().is_none());
    assert!(fs.enter_pfs(1).is_err());
    assert_eq!(fs.pfs_free_id().unwrap(), Some(1));
    assert_eq!(fs.readlink(l.ino, HAMMER_MAX_TID).unwrap(), b"@@PFS00001");
    for pfs in [0u32, 2] {
        fs.enter_pfs(pfs).unwrap();
        let mut t = dump(&fs, HAMMER_MAX_TID);
        t.remove("/one");
        t.remove("/nine");
        assert_eq!(t, trees[pfs as usize], "PFS {pfs} after destroying #1");
    }
    assert!(fs.pfs_destroy(0).is_err(), "PFS #0 cannot be destroyed");
    drop(fs);
    let set = VolumeSet::open_paths(&paths, &OpenOptions::default()).unwrap();
    let lo1 = pfs_to_lo(1);
    let mut left = 0;
    {
        let mut store = hammer_engine::store::ReadOnlyStore(&set);
        let root = set.header().vol0_btree_root;
        let t = BTree::new(&mut store, root);
        let from = HammerBaseElm {
            localization: lo1,
            obj_id: HAMMER_MIN_OBJID,
            key: HAMMER_MIN_KEY,
            create_tid: 1,
            ..Default::default()
        };
        let to = HammerBaseElm {
            localization: lo1 | 0xffff,
            obj_id: HAMMER_MAX_OBJID,
            rec_type: u16::MAX,
            key: HAMMER_MAX_KEY,
            ..Default::default()
        };
        t.scan(&from, &to, &mut |_| {
            left += 1;
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    }
    assert_eq!(left, 0, "records of the destroyed PFS remain");
    drop(set);
    check_clean(&paths);
}

#[test]
fn slaves_upgrade_and_downgrade() {
    let dir = tempfile::tempdir().unwrap();
    let paths = new_volume(dir.path(), "PFS", 1 << 30);
    let mut fs = Fs::open(&paths, false).unwrap();
    fs.pfs_set(1, &pfsd(true, "slave"), 0, 0).unwrap();
    fs.sync().unwrap();
    // A fresh slave has no root until a mirror-write brings one.
    fs.enter_pfs(1).unwrap();
    assert!(fs.getattr(HAMMER_OBJID_ROOT, HAMMER_MAX_TID).is_err());
    assert!(fs.pfs_is_slave(1).unwrap());
    assert_eq!({ fs.pfs_get(1).unwrap().unwrap().sync_end_tid }, 1);
    // Snapshot records may be kept on a slave.
    let t0 = fs.last_tid();
    fs.add_snapshot(t0, 5, b"on a slave").unwrap();
    fs.sync().unwrap();
    assert_eq!(fs.snapshots().unwrap().len(), 1);

    // Upgrade: a master, whose root the next SET creates.
    fs.pfs_upgrade(1).unwrap();
    assert!(!fs.pfs_is_slave(1).unwrap());
    let d = fs.pfs_get(1).unwrap().unwrap();
    fs.pfs_set(1, &d, 0, 0).unwrap();
    fs.enter_pfs(1).unwrap();
    root_file(&mut fs, "kept", b"before the downgrade");
    let synced = fs.sync().unwrap();
    let a = fs.getattr(HAMMER_OBJID_ROOT, HAMMER_MAX_TID).unwrap();
    assert_eq!((a.mode, a.nlinks), (0o755, 1));

    // Downgrade: sync_end_tid at least the newest committed TID.
    fs.pfs_downgrade(1).unwrap();
    assert!(fs.pfs_is_slave(1).unwrap());
    let end = fs.pfs_get(1).unwrap().unwrap().sync_end_tid;
    assert!(end >= synced);
    // Changes made after sync_end_tid are rolled back by an upgrade.
    fs.enter_pfs(1).unwrap();
    root_file(&mut fs, "later", b"after the downgrade");
    fs.sync().unwrap();
    fs.pfs_upgrade(1).unwrap();
    fs.enter_pfs(1).unwrap();
    let names: Vec<Vec<u8>> = fs
        .readdir(HAMMER_OBJID_ROOT, HAMMER_MAX_TID)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec![b"kept".to_vec()]);
    drop(fs);
    check_clean(&paths);
}
