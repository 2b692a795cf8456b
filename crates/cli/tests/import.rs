//! `newfs --from`'s engine half: a directory tree copied into a fresh
//! fixture volume reads back identically through the B-tree, and the
//! volume's B-tree invariants hold.

mod support;

use hammer_engine::btree::BTree;
use hammer_engine::fsread::FsReader;
use hammer_engine::import::import_tree;
use hammer_engine::{OpenOptions, VolumeSet};
use hammer_ondisk::*;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use support::*;

fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    let sizes = [
        0usize,
        1,
        100,
        8191,
        8192,
        8193,
        16384,
        16385,
        20000,
        1 << 20,
        (1 << 20) + 1,
        1_500_000,
    ];
    for (i, &n) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..n).map(|j| ((j * 31 + i * 7) % 251) as u8 + 1).collect();
        fs::write(root.join(format!("a/file{i}.bin")), data).unwrap();
    }
    // A sparse file: a hole, a byte at 3 MiB, a hole to 5 MiB.
    let f = fs::File::create(root.join("a/b/sparse")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"x", 3 << 20).unwrap();
    f.set_len(5 << 20).unwrap();
    fs::write(root.join("a/b/c/deep.txt"), b"deep\n").unwrap();
    symlink("file1.bin", root.join("a/short-link")).unwrap();
    symlink(
        "../../../a/this/is/a/rather/long/symlink/target/that/does/not/exist",
        root.join("a/b/long-link"),
    )
    .unwrap();
    fs::hard_link(root.join("a/file2.bin"), root.join("a/b/hardlink-to-file2")).unwrap();
    fs::set_permissions(root.join("a/file3.bin"), fs::Permissions::from_mode(0o4751)).unwrap();
    let fifo = std::ffi::CString::new(root.join("a/fifo").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    // Many names in one directory: several leaves, collisions unlikely but
    // key order across splits exercised.
    for i in 0..300 {
        fs::write(
            root.join(format!("empty/../many-{i:04}.txt")),
            format!("{i}\n"),
        )
        .unwrap();
    }
}

fn compare_dir(r: &FsReader, dir_id: i64, path: &Path, seen: &mut u64) {
    let mut want: Vec<String> = fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    want.sort();
    let ents = r.readdir(dir_id, HAMMER_MAX_TID).unwrap();
    let mut got: Vec<String> = ents
        .iter()
        .map(|e| String::from_utf8(e.name.clone()).unwrap())
        .collect();
    got.sort();
    assert_eq!(got, want, "entries of {}", path.display());
    for e in ents {
        *seen += 1;
        let p = path.join(String::from_utf8(e.name.clone()).unwrap());
        let m = fs::symlink_metadata(&p).unwrap();
        let ino = r.inode(e.obj_id, HAMMER_MAX_TID).unwrap().expect("inode");
        assert_eq!(ino.obj_type, e.obj_type, "{}", p.display());
        assert_eq!(ino.mode as u32, m.mode() & 0o7777, "{}", p.display());
        assert_eq!(ino.uid.unix_id(), m.uid());
        assert_eq!(ino.mtime / 1_000_000, m.mtime() as u64, "{}", p.display());
        if m.nlink() == 1 || m.is_dir() {
            assert_eq!(ino.parent_obj_id, dir_id, "{}", p.display());
        }
        let ft = m.file_type();
        if ft.is_dir() {
            compare_dir(r, e.obj_id, &p, seen);
        } else if ft.is_file() {
            assert_eq!(ino.size, m.len());
            assert_eq!(
                r.read_file(e.obj_id, HAMMER_MAX_TID).unwrap(),
                fs::read(&p).unwrap(),
                "{}",
                p.display()
            );
            assert_eq!(ino.nlinks, m.nlink(), "{}", p.display());
        } else if ft.is_symlink() {
            assert_eq!(
                r.readlink(e.obj_id, HAMMER_MAX_TID).unwrap(),
                fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            );
        } else {
            assert_eq!(ino.obj_type, HAMMER_OBJTYPE_FIFO);
        }
    }
}

fn import_and_check(fixture: &str) {
    let img = materialize(fixture).unwrap();
    let src = tempfile::tempdir().unwrap();
    make_tree(src.path());
    let paths: Vec<String> = img
        .files
        .iter()
        .map(|f| img.path(f).to_string_lossy().into_owned())
        .collect();
    {
        let mut set = VolumeSet::open_paths(
            &paths,
            &OpenOptions {
                writable: true,
                ..Default::default()
            },
        )
        .unwrap();
        let stats = import_tree(&mut set, src.path()).unwrap();
        assert!(
            stats.files >= 300 && stats.hardlinks == 1 && stats.symlinks == 2,
            "{stats:?}"
        );
    }
    let mut set = VolumeSet::open_paths(&paths, &OpenOptions::default()).unwrap();
    let root = set.header().vol0_btree_root;
    let records = BTree::new(&mut set, root).check().unwrap();
    assert!(records > 300, "{records} records");
    let r = FsReader::new(&set, 0);
    let mut seen = 0;
    compare_dir(&r, HAMMER_OBJID_ROOT, src.path(), &mut seen);
    assert!(seen > 300);
    // The newfs root inode is history now; the current one is new.
    let versions = BTree::new(&mut set, root)
        .versions(HAMMER_LOCALIZE_INODE, 1, HAMMER_RECTYPE_INODE, 0)
        .unwrap();
    assert_eq!(versions.len(), 2);
    assert_ne!(versions[0].base.delete_tid, 0);
    // Our own checker agrees with the freemap.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let spec = img.spec_in(img.dir.path());
    let code = hammer_cli::hammer::main(
        "hammer",
        &["-f".into(), spec, "checkmap".into()],
        &mut out,
        &mut err,
    );
    let text = String::from_utf8_lossy(&out);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    assert!(
        !text.contains("BM\t") && !text.contains("BZ\t"),
        "checkmap found mismatches:\n{text}"
    );
}

#[test]
fn import_v7() {
    import_and_check("v7-longlabel");
}

#[test]
fn import_v5_alg0_dirs() {
    import_and_check("v5-1g");
}
