//! Model-based test of the filesystem API: random operations (create,
//! mkdir, symlink, link, write, truncate, unlink, rmdir, rename) against an
//! in-memory reference tree, with syncs and reopens in between. After every
//! sync the whole tree must read back equal to the model, and at the end
//! every synced TID must still show the model's state as of that sync —
//! history is kept. The volume must also pass our checkmap and B-tree checks.

mod support;

use hammer_engine::btree::BTree;
use hammer_engine::error::{Error, FsError};
use hammer_engine::fs::{Fs, NewObject};
use hammer_engine::{OpenOptions, VolumeSet};
use hammer_ondisk::*;
use std::collections::BTreeMap;
use support::*;

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    File(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, usize>),
    Symlink(Vec<u8>),
}

#[derive(Clone, Debug)]
struct MNode {
    kind: Kind,
    ino: i64,
    nlinks: u64,
}

#[derive(Clone, Debug, Default)]
struct Model {
    nodes: Vec<Option<MNode>>,
}

impl Model {
    fn dir(&self, i: usize) -> &BTreeMap<Vec<u8>, usize> {
        match &self.nodes[i].as_ref().unwrap().kind {
            Kind::Dir(m) => m,
            _ => panic!("not a dir"),
        }
    }
    fn dir_mut(&mut self, i: usize) -> &mut BTreeMap<Vec<u8>, usize> {
        match &mut self.nodes[i].as_mut().unwrap().kind {
            Kind::Dir(m) => m,
            _ => panic!("not a dir"),
        }
    }
    fn dirs(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| matches!(self.nodes[i].as_ref().map(|n| &n.kind), Some(Kind::Dir(_))))
            .collect()
    }
    fn files(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| matches!(self.nodes[i].as_ref().map(|n| &n.kind), Some(Kind::File(_))))
            .collect()
    }
    /// (dir, name) pairs of every entry.
    fn entries(&self) -> Vec<(usize, Vec<u8>)> {
        let mut v = Vec::new();
        for d in self.dirs() {
            for n in self.dir(d).keys() {
                v.push((d, n.clone()));
            }
        }
        v
    }
    fn is_ancestor(&self, a: usize, mut b: usize) -> bool {
        // Walk up from b by searching parents (small trees).
        for _ in 0..64 {
            if a == b {
                return true;
            }
            let Some(p) = self
                .dirs()
                .into_iter()
                .find(|&d| self.dir(d).values().any(|&c| c == b))
            else {
                return false;
            };
            b = p;
        }
        false
    }
}

const NAMES: [&[u8]; 8] = [
    b"a",
    b"b",
    b"file.txt",
    b"dir",
    b"x-y_z.c",
    b"README",
    b"longer-name-with.some~parts",
    b"q",
];

fn fs_err(e: Error) -> FsError {
    match e {
        Error::Fs(f) => f,
        other => panic!("unexpected engine error: {other}"),
    }
}

/// Compares the filesystem as of `asof` with the model, from the root.
fn compare(fs: &Fs, m: &Model, asof: u64, what: &str) {
    fn walk(fs: &Fs, m: &Model, node: usize, ino: i64, asof: u64, path: &str) {
        let n = m.nodes[node].as_ref().unwrap();
        let a = fs
            .getattr(ino, asof)
            .unwrap_or_else(|e| panic!("{path}: getattr: {e}"));
        match &n.kind {
            Kind::Dir(children) => {
                assert_eq!(a.obj_type, HAMMER_OBJTYPE_DIRECTORY, "{path}");
                let mut got: Vec<(Vec<u8>, i64)> = fs
                    .readdir(ino, asof)
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.name, e.obj_id))
                    .collect();
                got.sort();
                let want: Vec<Vec<u8>> = children.keys().cloned().collect();
                assert_eq!(
                    got.iter().map(|g| g.0.clone()).collect::<Vec<_>>(),
                    want,
                    "{path}: entries"
                );
                for (name, child_ino) in got {
                    let child = children[&name];
                    assert_eq!(
                        m.nodes[child].as_ref().unwrap().ino,
                        child_ino,
                        "{path}/{}: inode number",
                        String::from_utf8_lossy(&name)
                    );
                    walk(
                        fs,
                        m,
                        child,
                        child_ino,
                        asof,
                        &format!("{path}/{}", String::from_utf8_lossy(&name)),
                    );
                }
            }
            Kind::File(data) => {
                assert_eq!(a.obj_type, HAMMER_OBJTYPE_REGFILE, "{path}");
                assert_eq!(a.size, data.len() as u64, "{path}: size");
                assert_eq!(a.nlinks, n.nlinks, "{path}: nlinks");
                let got = fs.read(ino, 0, data.len() + 10, asof).unwrap();
                assert!(got == *data, "{path}: contents differ");
            }
            Kind::Symlink(t) => {
                assert_eq!(a.obj_type, HAMMER_OBJTYPE_SOFTLINK, "{path}");
                assert_eq!(&fs.readlink(ino, asof).unwrap(), t, "{path}");
            }
        }
    }
    let _ = what;
    walk(fs, m, 0, HAMMER_OBJID_ROOT, asof, "");
}

fn step(fs: &mut Fs, m: &mut Model, rng: &mut Rng) {
    let op = rng.below(100);
    let dirs = m.dirs();
    let d = rng.pick(&dirs).unwrap();
    let dino = m.nodes[d].as_ref().unwrap().ino;
    let name = NAMES[rng.below(NAMES.len())].to_vec();
    let exists = m.dir(d).contains_key(&name);
    match op {
        0..=19 => {
            // create a file
            let r = fs.create(dino, &name, NewObject::File, 0o644, 0, 0);
            if exists {
                assert_eq!(fs_err(r.unwrap_err()), FsError::Exists);
            } else {
                let a = r.unwrap();
                m.nodes.push(Some(MNode {
                    kind: Kind::File(Vec::new()),
                    ino: a.ino,
                    nlinks: 1,
                }));
                let i = m.nodes.len() - 1;
                m.dir_mut(d).insert(name, i);
            }
        }
        20..=27 => {
            let r = fs.create(dino, &name, NewObject::Dir, 0o755, 0, 0);
            if exists {
                assert_eq!(fs_err(r.unwrap_err()), FsError::Exists);
            } else {
                let a = r.unwrap();
                m.nodes.push(Some(MNode {
                    kind: Kind::Dir(BTreeMap::new()),
                    ino: a.ino,
                    nlinks: 1,
                }));
                let i = m.nodes.len() - 1;
                m.dir_mut(d).insert(name, i);
            }
        }
        28..=31 => {
            let target: Vec<u8> = if rng.below(2) == 0 {
                b"short".to_vec()
            } else {
                vec![b'L'; 30 + rng.below(100)]
            };
            let r = fs.create(dino, &name, NewObject::Symlink(&target), 0o777, 0, 0);
            if exists {
                assert_eq!(fs_err(r.unwrap_err()), FsError::Exists);
            } else {
                let a = r.unwrap();
                m.nodes.push(Some(MNode {
                    kind: Kind::Symlink(target),
                    ino: a.ino,
                    nlinks: 1,
                }));
                let i = m.nodes.len() - 1;
                m.dir_mut(d).insert(name, i);
            }
        }
        32..=59 => {
            // write into a file
            let Some(f) = rng.pick(&m.files()) else {
                return;
            };
            let ino = m.nodes[f].as_ref().unwrap().ino;
            let off = match rng.below(4) {
                0 => rng.below(100) as u64,
                1 => rng.below(40_000) as u64,
                2 => (1 << 20) - 1000 + rng.below(3000) as u64,
                _ => rng.below(3 << 20) as u64,
            };
            let len = match rng.below(3) {
                0 => 1 + rng.below(50),
                1 => 1 + rng.below(20_000),
                _ => 1 + rng.below(150_000),
            };
            let byte = rng.next() as u8;
            let data: Vec<u8> = (0..len).map(|i| byte.wrapping_add(i as u8)).collect();
            assert_eq!(fs.write(ino, off, &data).unwrap(), len);
            let Kind::File(c) = &mut m.nodes[f].as_mut().unwrap().kind else {
                unreachable!()
            };
            let end = off as usize + len;
            if c.len() < end {
                c.resize(end, 0);
            }
            c[off as usize..end].copy_from_slice(&data);
        }
        60..=67 => {
            let Some(f) = rng.pick(&m.files()) else {
                return;
            };
            let ino = m.nodes[f].as_ref().unwrap().ino;
            let Kind::File(c) = &mut m.nodes[f].as_mut().unwrap().kind else {
                unreachable!()
            };
            let size = match rng.below(3) {
                0 => 0,
                1 => rng.below(c.len() + 1),
                _ => rng.below(c.len() + 70_000),
            };
            fs.truncate(ino, size as u64).unwrap();
            c.resize(size, 0);
        }
        68..=79 => {
            // unlink or rmdir
            let Some((pd, pname)) = rng.pick(&m.entries()) else {
                return;
            };
            let pino = m.nodes[pd].as_ref().unwrap().ino;
            let child = m.dir(pd)[&pname];
            let is_dir = matches!(m.nodes[child].as_ref().unwrap().kind, Kind::Dir(_));
            if is_dir {
                let r = fs.rmdir(pino, &pname);
                if m.dir(child).is_empty() {
                    r.unwrap();
                    m.dir_mut(pd).remove(&pname);
                    m.nodes[child] = None;
                } else {
                    assert_eq!(fs_err(r.unwrap_err()), FsError::NotEmpty);
                }
            } else {
                fs.unlink(pino, &pname).unwrap();
                m.dir_mut(pd).remove(&pname);
                let n = m.nodes[child].as_mut().unwrap();
                n.nlinks -= 1;
                if n.nlinks == 0 {
                    m.nodes[child] = None;
                }
            }
        }
        80..=84 => {
            // hard link a file
            let Some(f) = rng.pick(&m.files()) else {
                return;
            };
            let ino = m.nodes[f].as_ref().unwrap().ino;
            let r = fs.link(ino, dino, &name);
            if exists {
                assert_eq!(fs_err(r.unwrap_err()), FsError::Exists);
            } else {
                r.unwrap();
                m.nodes[f].as_mut().unwrap().nlinks += 1;
                m.dir_mut(d).insert(name, f);
            }
        }
        _ => {
            // rename
            let Some((sd, sname)) = rng.pick(&m.entries()) else {
                return;
            };
            let sino = m.nodes[sd].as_ref().unwrap().ino;
            let src = m.dir(sd)[&sname];
            let src_dir = matches!(m.nodes[src].as_ref().unwrap().kind, Kind::Dir(_));
            let r = fs.rename(sino, &sname, dino, &name);
            if src_dir && m.is_ancestor(src, d) {
                assert_eq!(fs_err(r.unwrap_err()), FsError::Invalid);
                return;
            }
            if let Some(&dst) = m.dir(d).get(&name) {
                if dst == src {
                    r.unwrap();
                    return;
                }
                let dst_dir = matches!(m.nodes[dst].as_ref().unwrap().kind, Kind::Dir(_));
                match (src_dir, dst_dir) {
                    (true, false) => return assert_eq!(fs_err(r.unwrap_err()), FsError::NotDir),
                    (false, true) => return assert_eq!(fs_err(r.unwrap_err()), FsError::IsDir),
                    (true, true) if !m.dir(dst).is_empty() => {
                        return assert_eq!(fs_err(r.unwrap_err()), FsError::NotEmpty)
                    }
                    _ => {}
                }
                r.unwrap();
                m.dir_mut(d).remove(&name);
                let n = m.nodes[dst].as_mut().unwrap();
                n.nlinks -= 1;
                if n.nlinks == 0 {
                    m.nodes[dst] = None;
                }
            } else {
                r.unwrap();
            }
            m.dir_mut(sd).remove(&sname);
            m.dir_mut(d).insert(name, src);
        }
    }
}

fn run_model(seed: u64, nohistory: bool) {
    let img = materialize("v7-longlabel").unwrap();
    let paths = vec![img.path("vol0.img").to_string_lossy().into_owned()];
    let mut fs = Fs::open(&paths, nohistory).unwrap();
    let mut m = Model {
        nodes: vec![Some(MNode {
            kind: Kind::Dir(BTreeMap::new()),
            ino: 1,
            nlinks: 1,
        })],
    };
    let mut rng = Rng(seed);
    let mut snapshots: Vec<(u64, Model)> = Vec::new();
    for round in 0..12 * scale() {
        for _ in 0..40 {
            step(&mut fs, &mut m, &mut rng);
        }
        // Unsynced changes are visible already.
        compare(&fs, &m, HAMMER_MAX_TID, "before sync");
        let tid = fs.sync().unwrap();
        compare(&fs, &m, HAMMER_MAX_TID, "after sync");
        compare(&fs, &m, tid, "as of the sync TID");
        snapshots.push((tid, m.clone()));
        if round % 4 == 3 {
            drop(fs);
            fs = Fs::open(&paths, nohistory).unwrap();
            compare(&fs, &m, HAMMER_MAX_TID, "after reopen");
        }
    }
    let live = m.nodes.iter().flatten().count();
    eprintln!(
        "{} syncs, {live} live objects, {} files",
        snapshots.len(),
        m.files().len()
    );
    assert!(live > 5, "the workload should leave a tree behind");
    if !nohistory {
        for (tid, snap) in &snapshots {
            compare(&fs, snap, *tid, "history");
        }
    }
    drop(fs);
    let mut set = VolumeSet::open_paths(&paths, &OpenOptions::default()).unwrap();
    let report = hammer_cli::cmd_checkmap::collect(&set).unwrap();
    assert_eq!(report.error_count(), 0, "checkmap mismatches");
    assert!(report.bad_nodes.is_empty());
    let root = set.header().vol0_btree_root;
    BTree::new(&mut set, root).check().unwrap();
}

#[test]
fn fs_matches_model_with_history() {
    run_model(0x1234_5678_9abc_def1, false);
}

#[test]
fn fs_matches_model_nohistory() {
    run_model(0x0fed_cba9_8765_4321, true);
}

/// `tid_at`: the newest transaction stamped at or before a time.
#[test]
fn transaction_at_a_time() {
    let img = materialize("v7-longlabel").unwrap();
    let paths = vec![img.path("vol0.img").to_string_lossy().into_owned()];
    let mut fs = Fs::open(&paths, false).unwrap();
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1000;
    fs.clock = Some(base * 1_000_000);
    let f = fs
        .create(1, b"f", NewObject::File, 0o644, 0, 0)
        .unwrap()
        .ino;
    fs.write(f, 0, b"one").unwrap();
    let t1 = fs.sync().unwrap();
    // The index is built from the B-tree here, then kept current by sync.
    assert_eq!(fs.tid_at(base).unwrap(), Some(t1));
    fs.clock = Some((base + 100) * 1_000_000);
    fs.write(f, 0, b"two").unwrap();
    let t2 = fs.sync().unwrap();
    assert_eq!(fs.tid_at(base + 99).unwrap(), Some(t1));
    assert_eq!(fs.tid_at(base + 100).unwrap(), Some(t2));
    assert_eq!(fs.tid_at(u64::MAX).unwrap(), Some(t2));
    assert_eq!(fs.tid_at(0).unwrap(), None);
    let mid = fs.tid_at(base + 50).unwrap().unwrap();
    assert_eq!(fs.read(f, 0, 10, mid).unwrap(), b"one");
    // After a reopen the index comes from the records alone.
    drop(fs);
    let mut fs = Fs::open(&paths, false).unwrap();
    assert_eq!(fs.tid_at(base + 99).unwrap(), Some(t1));
    assert_eq!(fs.tid_at(base + 100).unwrap(), Some(t2));
}
