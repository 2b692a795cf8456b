//! `newfs_hammer --from DIR`: the binary end to end, including a tree that
//! does not fit.

use hammer_engine::fsread::FsReader;
use hammer_engine::{OpenOptions, VolumeSet};
use hammer_ondisk::*;
use std::fs;
use std::process::Command;

fn newfs(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_newfs_hammer"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn hammer(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hammer"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn from_dir_end_to_end() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("docs/deeper")).unwrap();
    fs::write(src.join("hello.txt"), b"hello, hammer\n").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(src.join("docs/big.bin"), &big).unwrap();
    fs::write(src.join("docs/deeper/x"), b"x").unwrap();
    fs::File::create(t.path().join("vol0.img"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let (code, out, err) = newfs(
        t.path(),
        &["-f", "-u", "8M", "-L", "FROM", "--from", "src", "vol0.img"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("Copied src: 3 directories, 3 files, 0 symlinks"),
        "{out}"
    );

    let (code, show) = hammer(t.path(), &["-v", "-f", "vol0.img", "show"]);
    assert_eq!(code, 0);
    assert!(
        show.ends_with("0 bad nodes\n0 bad elms\n0 bad records\n"),
        "{}",
        &show[show.len().saturating_sub(300)..]
    );
    let (code, check) = hammer(t.path(), &["-v", "-f", "vol0.img", "checkmap"]);
    assert_eq!(code, 0);
    assert!(
        check.ends_with("0 bad nodes\n0 errors\n"),
        "{}",
        &check[check.len().saturating_sub(300)..]
    );

    let set = VolumeSet::open_paths(
        &[t.path().join("vol0.img").to_string_lossy().into_owned()],
        &OpenOptions::default(),
    )
    .unwrap();
    let r = FsReader::new(&set, 0);
    let hello = r
        .lookup(HAMMER_OBJID_ROOT, b"hello.txt", HAMMER_MAX_TID)
        .unwrap()
        .unwrap();
    assert_eq!(
        r.read_file(hello.obj_id, HAMMER_MAX_TID).unwrap(),
        b"hello, hammer\n"
    );
    let docs = r
        .lookup(HAMMER_OBJID_ROOT, b"docs", HAMMER_MAX_TID)
        .unwrap()
        .unwrap();
    let bigf = r
        .lookup(docs.obj_id, b"big.bin", HAMMER_MAX_TID)
        .unwrap()
        .unwrap();
    assert_eq!(r.read_file(bigf.obj_id, HAMMER_MAX_TID).unwrap(), big);
}

#[test]
fn from_dir_that_does_not_fit() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), vec![7u8; 100_000]).unwrap();
    // The smallest volume: no free big-block at all.
    fs::File::create(t.path().join("vol0.img"))
        .unwrap()
        .set_len(41959424)
        .unwrap();
    let (code, _, err) = newfs(
        t.path(),
        &[
            "-f", "-d", "-j", "16K", "-b", "0K", "-m", "0K", "-u", "8M", "-L", "MINI", "--from",
            "src", "vol0.img",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("--from src:") && err.contains("no space left on device"),
        "{err}"
    );
    // The volume is the empty filesystem newfs made, intact.
    let (code, check) = hammer(t.path(), &["-v", "-f", "vol0.img", "checkmap"]);
    assert_eq!(code, 0);
    assert!(check.ends_with("0 bad nodes\n0 errors\n"), "{check}");
    let set = VolumeSet::open_paths(
        &[t.path().join("vol0.img").to_string_lossy().into_owned()],
        &OpenOptions::default(),
    )
    .unwrap();
    assert!(FsReader::new(&set, 0)
        .readdir(HAMMER_OBJID_ROOT, HAMMER_MAX_TID)
        .unwrap()
        .is_empty());
}

#[test]
fn from_missing_dir_refused_before_formatting() {
    let t = tempfile::tempdir().unwrap();
    fs::File::create(t.path().join("vol0.img"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let (code, out, err) = newfs(t.path(), &["-f", "-L", "X", "--from", "nope", "vol0.img"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, "newfs_hammer: --from nope: not a directory\n");
    assert_eq!(
        fs::read(t.path().join("vol0.img"))
            .unwrap()
            .iter()
            .filter(|&&b| b != 0)
            .count(),
        0
    );
}
