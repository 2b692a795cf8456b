//! Engine behaviours behind mount options, through the library: access
//! and modification times written in place (no new inode version, the
//! record's CRC untouched), orphans (no link left, nothing holding them
//! open) reaped by prune, multi-master TIDs (`master=<id>`), and
//! `nomirror` leaving node `mirror_tid`s alone. Each ends with checkmap
//! and the B-tree checks.

mod support;

use hammer_engine::fs::{AtimeMode, Fs, NewObject, PruneElm};
use hammer_engine::{OpenOptions, VolumeSet};
use hammer_ondisk::*;
use support::*;

#[test]
fn access_times_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let paths = new_volume(dir.path(), "MODES", 1 << 30);
    let mut fs = Fs::open(&paths, false).unwrap();
    fs.clock = Some(1_700_000_000_000_000);
    let ino = root_file(&mut fs, "a", b"hello");
    fs.sync().unwrap();
    let versions = fs.history(ino).unwrap();

    // Off: reading changes nothing.
    fs.clock = Some(1_700_000_010_000_000);
    fs.read(ino, 0, 5, HAMMER_MAX_TID).unwrap();
    fs.note_access(ino).unwrap();
    assert!(!fs.is_dirty(ino));

    // relatime: the first read after a change moves atime, in place.
    fs.atime = AtimeMode::Relative;
    fs.note_access(ino).unwrap();
    assert_eq!(
        fs.getattr(ino, HAMMER_MAX_TID).unwrap().atime,
        1_700_000_010_000_000
    );
    fs.sync().unwrap();
    assert_eq!(fs.history(ino).unwrap(), versions, "no new inode version");
    // Then not again within a day.
    fs.clock = Some(1_700_000_020_000_000);
    fs.note_access(ino).unwrap();
    assert!(!fs.is_dirty(ino));
    // A day later, yes.
    fs.clock = Some(1_700_000_010_000_000 + 86_400_000_000);
    fs.note_access(ino).unwrap();
    assert!(fs.is_dirty(ino));
    fs.sync().unwrap();
    // atime mode: every read.
    fs.atime = AtimeMode::Always;
    fs.clock = Some(1_700_200_000_000_000);
    fs.note_access(ino).unwrap();
    fs.sync().unwrap();
    assert_eq!(fs.history(ino).unwrap(), versions, "still no new version");
    // A real change still makes a version.
    fs.write(ino, 0, b"HELLO").unwrap();
    fs.sync().unwrap();
    assert_eq!(fs.history(ino).unwrap().len(), versions.len() + 1);
    drop(fs);
    check_clean(&paths);

    // Durable, and the record's CRC (which leaves atime out) still holds:
    // `show` flags nothing.
    let fs = Fs::open(&paths, false).unwrap();
    assert_eq!(
        fs.getattr(ino, HAMMER_MAX_TID).unwrap().atime,
        1_700_200_000_000_000
    );
    drop(fs);
    let args: Vec<String> = ["-f", &paths[0], "show"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        hammer_cli::hammer::main("hammer", &args, &mut out, &mut err),
        0
    );
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("BAD"), "show flags something:\n{text}");
}

#[test]
fn prune_reaps_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let paths = new_volume(dir.path(), "MODES", 1 << 30);
    let mut fs = Fs::open(&paths, false).unwrap();
    let kept = root_file(&mut fs, "kept", b"stays");
    let orphan = root_file(&mut fs, "orphan", &vec![7u8; 100_000]);
    let open = root_file(&mut fs, "open", b"held open");
    fs.sync().unwrap();
    // Unlinked while open; the daemon "dies" before the last close.
    fs.open_ref(orphan).unwrap();
    fs.open_ref(open).unwrap();
    fs.unlink(HAMMER_OBJID_ROOT, b"orphan").unwrap();
    fs.unlink(HAMMER_OBJID_ROOT, b"open").unwrap();
    fs.sync().unwrap();
    drop(fs);

    let mut fs = Fs::open(&paths, false).unwrap();
    assert_eq!(fs.getattr(orphan, HAMMER_MAX_TID).unwrap().nlinks, 0);
    // Still open in this process: not an orphan.
    fs.open_ref(open).unwrap();
    let elm = PruneElm {
        beg_tid: 1,
        end_tid: HAMMER_MAX_TID,
        mod_tid: 0,
    };
    let st = fs.prune(&[elm], &mut |_, _| {}).unwrap();
    assert_eq!(st.orphans, 1);
    assert!(
        fs.getattr(orphan, HAMMER_MAX_TID).is_err(),
        "the orphan is gone"
    );
    assert!(
        fs.getattr(open, HAMMER_MAX_TID).is_ok(),
        "an open object stays"
    );
    assert_eq!(fs.read(kept, 0, 5, HAMMER_MAX_TID).unwrap(), b"stays");
    // A second prune-everything removes its history too; space comes back.
    let free = fs.statfs().1;
    let st = fs.prune(&[elm], &mut |_, _| {}).unwrap();
    assert_eq!(st.orphans, 0);
    assert!(st.bytes >= 100_000 || fs.statfs().1 >= free);
    fs.release(open).unwrap();
    fs.sync().unwrap();
    drop(fs);
    check_clean(&paths);
}

#[test]
fn master_ids_and_nomirror() {
    let dir = tempfile::tempdir().unwrap();
    let paths = new_volume(dir.path(), "MODES", 1 << 30);
    let mut fs = Fs::open(&paths, false).unwrap();
    assert!(fs.set_master_id(Some(16)).is_err());
    fs.set_master_id(Some(3)).unwrap();
    let mut last = 0;
    for i in 0..5 {
        root_file(&mut fs, &format!("f{i}"), b"x");
        let tid = fs.sync().unwrap();
        assert_eq!(tid % 16, 3, "TID {tid:#x} of master 3");
        assert!(tid > last);
        last = tid;
    }
    // Every record made here carries a TID of master 3.
    let names = fs.readdir(HAMMER_OBJID_ROOT, HAMMER_MAX_TID).unwrap();
    for e in &names {
        for t in fs.history(e.obj_id).unwrap() {
            assert_eq!(t % 16, 3, "{t:#x}");
        }
    }
    // The default is master 0: TIDs are multiples of 16, as DragonFly's.
    fs.set_master_id(Some(0)).unwrap();
    root_file(&mut fs, "zero", b"0");
    assert_eq!(fs.sync().unwrap() % 16, 0);
    // Enough records for a tree of two levels.
    for i in 0..200 {
        root_file(&mut fs, &format!("g{i}"), b"y");
    }
    fs.sync().unwrap();
    let root = fs.volumes().header().vol0_btree_root;
    let before = fs.volumes().read_node(root).unwrap();
    assert_eq!(before.type_, HAMMER_BTREE_TYPE_INTERNAL);

    // No-mirror mode (master -1): consecutive TIDs, and a change raises
    // only the changed leaf's mirror_tid, not the root's.
    fs.set_master_id(None).unwrap();
    root_file(&mut fs, "quiet", b"no mirror_tid");
    let t1 = fs.sync().unwrap();
    root_file(&mut fs, "quiet2", b"no mirror_tid");
    let t2 = fs.sync().unwrap();
    assert!(t2 - t1 < 16, "consecutive: {t1:#x} {t2:#x}");
    let set = fs.into_volumes();
    let root = set.header().vol0_btree_root;
    assert_eq!(set.read_node(root).unwrap().mirror_tid, before.mirror_tid);
    drop(set);
    // (DragonFly's own `show` flags such leaves, as ours does: checkmap's
    // space accounting must still be exact.)
    let set = VolumeSet::open_paths(&paths, &OpenOptions::default()).unwrap();
    let report = hammer_cli::cmd_checkmap::collect(&set).unwrap();
    assert_eq!(report.error_count(), 0, "checkmap mismatches");
}

/// Object ids come in windows of 1,024 per directory, as DragonFly's
/// kernel hands them out: the objects of one directory share a window
/// (ids placed by the top bits of their name keys), another directory
/// gets another window, no id is ever a TID or reused, and a window three
/// quarters full makes way for a new one.
#[test]
fn object_id_windows() {
    let dir = tempfile::tempdir().unwrap();
    let paths = new_volume(dir.path(), "MODES", 1 << 30);
    let mut fs = Fs::open(&paths, false).unwrap();
    let a = fs
        .create(HAMMER_OBJID_ROOT, b"a", NewObject::Dir, 0o755, 0, 0)
        .unwrap()
        .ino;
    let b = fs
        .create(HAMMER_OBJID_ROOT, b"b", NewObject::Dir, 0o755, 0, 0)
        .unwrap()
        .ino;
    let mut ids_a = Vec::new();
    let mut ids_b = Vec::new();
    for i in 0..100 {
        let n = format!("file{i}");
        ids_a.push(
            fs.create(a, n.as_bytes(), NewObject::File, 0o644, 0, 0)
                .unwrap()
                .ino,
        );
        ids_b.push(
            fs.create(b, n.as_bytes(), NewObject::File, 0o644, 0, 0)
                .unwrap()
                .ino,
        );
    }
    let window = |id: i64| id as u64 / 1024;
    assert!(
        ids_a.iter().all(|&i| window(i) == window(ids_a[0])),
        "one window for a/"
    );
    assert!(
        ids_b.iter().all(|&i| window(i) == window(ids_b[0])),
        "one window for b/"
    );
    assert_ne!(window(ids_a[0]), window(ids_b[0]));
    let tid = fs.sync().unwrap();
    // Ids and TIDs never meet: every TID handed out later is above them.
    let top = *ids_a.iter().chain(&ids_b).max().unwrap() as u64;
    root_file(&mut fs, "later", b"x");
    let later = fs.sync().unwrap();
    assert!(later > top && later > tid);
    // 768 objects fill a window to three quarters: the next opens another.
    let c = fs
        .create(HAMMER_OBJID_ROOT, b"c", NewObject::Dir, 0o755, 0, 0)
        .unwrap()
        .ino;
    let mut seen = std::collections::BTreeSet::new();
    let mut windows = std::collections::BTreeSet::new();
    for i in 0..800 {
        let n = format!("n{i}");
        let id = fs
            .create(c, n.as_bytes(), NewObject::File, 0o644, 0, 0)
            .unwrap()
            .ino;
        assert!(seen.insert(id), "id {id:#x} handed out twice");
        windows.insert(window(id));
    }
    assert_eq!(windows.len(), 2, "{windows:?}");
    fs.sync().unwrap();
    drop(fs);
    // After a reopen, new ids are still new.
    let mut fs = Fs::open(&paths, false).unwrap();
    for i in 0..10 {
        let id = fs
            .create(c, format!("m{i}").as_bytes(), NewObject::File, 0o644, 0, 0)
            .unwrap()
            .ino;
        assert!(seen.insert(id) && id as u64 > top);
    }
    fs.sync().unwrap();
    drop(fs);
    check_clean(&paths);
}
