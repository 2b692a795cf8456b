//! Access to the golden fixtures made by DragonFly's real tools
//! (`../shared/fixtures`, or `$HAMMERFS_FIXTURES`): their metadata, their
//! reference dumps, and their images decompressed into a temporary folder
//! and extended to full size (sparse).
#![allow(dead_code)]

pub mod mount;

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

pub fn fixtures_dir() -> PathBuf {
    if let Ok(p) = std::env::var("HAMMERFS_FIXTURES") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

/// Every fixture folder name, sorted.
pub fn all_fixtures() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures folder (set HAMMERFS_FIXTURES)")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub fn meta(name: &str) -> serde_json::Value {
    let p = fixtures_dir().join(name).join("meta.json");
    serde_json::from_reader(File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

/// Reads a fixture text file, decompressing `.xz` transparently.
pub fn read_text(name: &str, file: &str) -> Vec<u8> {
    let p = fixtures_dir().join(name).join(file);
    let f = File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut out = Vec::new();
    if file.ends_with(".xz") {
        xz2::read::XzDecoder::new(BufReader::new(f))
            .read_to_end(&mut out)
            .unwrap();
    } else {
        BufReader::new(f).read_to_end(&mut out).unwrap();
    }
    out
}

/// The reference output stored under `outputs.<key>` in meta.json.
pub fn expected_output(name: &str, key: &str) -> Option<Vec<u8>> {
    let m = meta(name);
    let file = m["outputs"][key]["file"].as_str()?;
    Some(read_text(name, file))
}

/// A fixture's images, decompressed into a fresh temporary folder under
/// their own names (`vol0.img`, …) and extended to their full size.
pub struct Materialized {
    pub dir: tempfile::TempDir,
    pub files: Vec<String>,
}

impl Materialized {
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
    /// `vol0.img:vol1.img`, as the fixture commands name them.
    pub fn spec(&self) -> String {
        self.files.join(":")
    }
}

/// None for TEXT ONLY fixtures.
pub fn materialize(name: &str) -> Option<Materialized> {
    let m = meta(name);
    if !m["image_stored"].as_bool().unwrap_or(false) {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("hammerfs-fixture-")
        .tempdir()
        .unwrap();
    let mut files = Vec::new();
    for v in m["volumes"].as_array().unwrap() {
        let file = v["file"].as_str().unwrap().to_string();
        let stored = v["stored"].as_str().unwrap();
        let size = v["size"].as_u64().unwrap();
        let src = File::open(fixtures_dir().join(name).join(stored)).unwrap();
        let mut dec = xz2::read::XzDecoder::new(BufReader::with_capacity(1 << 20, src));
        let out_path = dir.path().join(&file);
        let mut out = File::create(&out_path).unwrap();
        // Write non-zero 64 KiB chunks only, so the image stays sparse.
        let mut buf = vec![0u8; 1 << 16];
        let mut pos = 0u64;
        loop {
            let mut n = 0;
            while n < buf.len() {
                let k = dec.read(&mut buf[n..]).unwrap();
                if k == 0 {
                    break;
                }
                n += k;
            }
            if n == 0 {
                break;
            }
            if buf[..n].iter().any(|&b| b != 0) {
                use std::io::{Seek, SeekFrom};
                out.seek(SeekFrom::Start(pos)).unwrap();
                out.write_all(&buf[..n]).unwrap();
            }
            pos += n as u64;
        }
        assert_eq!(
            pos,
            v["stored_len"].as_u64().unwrap(),
            "{name}/{stored}: decompressed length"
        );
        out.set_len(size).unwrap();
        files.push(file);
    }
    Some(Materialized { dir, files })
}

impl Materialized {
    /// The volume list with absolute paths under `dir`.
    pub fn spec_in(&self, dir: &Path) -> String {
        self.files
            .iter()
            .map(|f| dir.join(f).to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// A small deterministic generator (xorshift64) for seeded test workloads.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn pick<T: Clone>(&mut self, v: &[T]) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[self.below(v.len())].clone())
        }
    }
}

/// `HAMMERFS_TEST_SCALE` (at least 1): multiplies workload sizes for
/// longer local runs.
pub fn scale() -> usize {
    std::env::var("HAMMERFS_TEST_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Everything visible from the root of a filesystem as of a TID: path →
/// (type, file contents or symlink target).
pub type Tree = std::collections::BTreeMap<String, (u8, Vec<u8>)>;

/// The whole tree as of `asof` (`HAMMER_MAX_TID`: now), for comparing
/// views before and after a change.
pub fn dump(fs: &hammer_engine::fs::Fs, asof: u64) -> Tree {
    use hammer_ondisk::*;
    let mut out = Tree::new();
    let mut stack = vec![(HAMMER_OBJID_ROOT, String::new())];
    while let Some((dir, path)) = stack.pop() {
        for e in fs.readdir(dir, asof).unwrap() {
            let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
            let a = fs.getattr(e.obj_id, asof).unwrap();
            let body = match a.obj_type {
                HAMMER_OBJTYPE_DIRECTORY => {
                    stack.push((e.obj_id, p.clone()));
                    Vec::new()
                }
                HAMMER_OBJTYPE_REGFILE => fs.read(e.obj_id, 0, a.size as usize, asof).unwrap(),
                HAMMER_OBJTYPE_SOFTLINK => fs.readlink(e.obj_id, asof).unwrap(),
                _ => Vec::new(),
            };
            out.insert(p, (a.obj_type, body));
        }
    }
    out
}

/// Makes a sparse file of `size` bytes at `path` and runs our
/// `newfs_hammer <options> <path>` on it, which must succeed; the path.
pub fn newfs(path: &Path, size: u64, options: &[&str]) -> String {
    File::create(path).unwrap().set_len(size).unwrap();
    let path = path.to_string_lossy().into_owned();
    let args: Vec<String> = options
        .iter()
        .copied()
        .chain([path.as_str()])
        .map(str::to_string)
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(
        hammer_cli::newfs::main("newfs_hammer", &args, &mut out, &mut err),
        0,
        "newfs: {}",
        String::from_utf8_lossy(&err)
    );
    path
}

/// A fresh volume of `size` bytes made by our `newfs_hammer -f -L label`
/// in `dir` (file `<label>.img`); its path list, for `Fs::open`.
pub fn new_volume(dir: &Path, label: &str, size: u64) -> Vec<String> {
    let p = dir.join(format!("{label}.img"));
    vec![newfs(&p, size, &["-f", "-L", label])]
}

/// A regular file named `name` in the root of the entered PFS, holding
/// `body`; its object id.
pub fn root_file(fs: &mut hammer_engine::fs::Fs, name: &str, body: &[u8]) -> i64 {
    use hammer_engine::fs::NewObject;
    let a = fs
        .create(
            hammer_ondisk::HAMMER_OBJID_ROOT,
            name.as_bytes(),
            NewObject::File,
            0o644,
            0,
            0,
        )
        .unwrap();
    fs.write(a.ino, 0, body).unwrap();
    a.ino
}

/// The volumes pass our checkmap (no mismatch, no bad node) and the
/// B-tree checks.
pub fn check_clean(paths: &[String]) {
    use hammer_engine::{btree::BTree, OpenOptions, VolumeSet};
    let mut set = VolumeSet::open_paths(paths, &OpenOptions::default()).unwrap();
    let report = hammer_cli::cmd_checkmap::collect(&set).unwrap();
    assert_eq!(report.error_count(), 0, "checkmap mismatches");
    assert!(report.bad_nodes.is_empty(), "bad nodes");
    let root = set.header().vol0_btree_root;
    BTree::new(&mut set, root).check().unwrap();
}
