//! `mount_hammer` end to end: each test makes its own volume image and
//! mount point, mounts with the built binary, works through the mount with
//! ordinary system calls and tools, unmounts (a guard unmounts in every
//! outcome), and checks the image offline with `hammer checkmap`. The tests
//! run one at a time (a lock here for `cargo test`, a nextest test group in
//! `.config/nextest.toml`). Without /dev/fuse they are skipped with a
//! message.

mod support;

use support::mount::*;

use hammer_engine::{OpenOptions, VolumeSet};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirEntryExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn errno_of<T>(r: std::io::Result<T>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

fn sh(cmd: &str, args: &[&Path]) -> std::process::Output {
    Command::new(cmd).args(args).output().unwrap()
}

#[test]
fn file_and_directory_operations() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("file_and_directory_operations") {
        return;
    }
    let v = volume();
    let m = mount(&v, &[]);
    let d = &v.mnt;

    // Create, write, read back (small, then crossing the 1 MiB boundary
    // where HAMMER's blocks grow to 64 KiB).
    let small = d.join("small.txt");
    fs::write(&small, b"hello hammer\n").unwrap();
    assert_eq!(fs::read(&small).unwrap(), b"hello hammer\n");
    let big: Vec<u8> = (0..1_700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(d.join("big.bin"), &big).unwrap();
    assert_eq!(fs::read(d.join("big.bin")).unwrap(), big);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(d.join("big.bin"))
        .unwrap();
    f.seek(SeekFrom::Start(1_000_000)).unwrap();
    f.write_all(&[0xAA; 100_000]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let mut want = big.clone();
    want[1_000_000..1_100_000].fill(0xAA);
    assert_eq!(fs::read(d.join("big.bin")).unwrap(), want);

    // O_APPEND.
    let mut f = fs::OpenOptions::new().append(true).open(&small).unwrap();
    f.write_all(b"more\n").unwrap();
    drop(f);
    assert_eq!(fs::read(&small).unwrap(), b"hello hammer\nmore\n");

    // mkdir, readdir, directory link counts.
    fs::create_dir(d.join("dir")).unwrap();
    fs::create_dir(d.join("dir/sub1")).unwrap();
    fs::create_dir(d.join("dir/sub2")).unwrap();
    fs::write(d.join("dir/file"), b"x").unwrap();
    let mut names: Vec<String> = fs::read_dir(d.join("dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["file", "sub1", "sub2"]);
    assert_eq!(fs::metadata(d.join("dir")).unwrap().nlink(), 4);
    assert_eq!(fs::metadata(d.join("dir/sub1")).unwrap().nlink(), 2);
    let ls = sh("ls", &[&d.join("dir")]);
    assert_eq!(String::from_utf8_lossy(&ls.stdout), "file\nsub1\nsub2\n");
    assert_eq!(errno_of(fs::create_dir(d.join("dir"))), libc::EEXIST);
    assert_eq!(errno_of(fs::remove_dir(d.join("dir"))), libc::ENOTEMPTY);
    fs::remove_dir(d.join("dir/sub2")).unwrap();
    assert_eq!(fs::metadata(d.join("dir")).unwrap().nlink(), 3);

    // Rename over an existing file, and across directories.
    fs::write(d.join("a"), b"AAA").unwrap();
    fs::write(d.join("b"), b"BBB").unwrap();
    fs::rename(d.join("a"), d.join("b")).unwrap();
    assert!(!d.join("a").exists());
    assert_eq!(fs::read(d.join("b")).unwrap(), b"AAA");
    fs::rename(d.join("b"), d.join("dir/sub1/b")).unwrap();
    assert_eq!(fs::read(d.join("dir/sub1/b")).unwrap(), b"AAA");
    fs::rename(d.join("dir/sub1"), d.join("moved")).unwrap();
    assert_eq!(fs::read(d.join("moved/b")).unwrap(), b"AAA");
    assert_eq!(fs::metadata(d.join("dir")).unwrap().nlink(), 2);

    // renameat2 flags: NOREPLACE refuses an existing target, EXCHANGE is
    // not supported.
    fs::write(d.join("c"), b"C").unwrap();
    let cpath = |p: &Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let (c, mb) = (cpath(&d.join("c")), cpath(&d.join("moved/b")));
    let r = |flags| unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_FDCWD,
            mb.as_ptr(),
            flags,
        )
    };
    assert_eq!(r(libc::RENAME_NOREPLACE), -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EEXIST)
    );
    assert_eq!(r(libc::RENAME_EXCHANGE), -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EINVAL)
    );
    assert_eq!(fs::read(d.join("moved/b")).unwrap(), b"AAA");

    // Hard link.
    fs::hard_link(d.join("c"), d.join("c2")).unwrap();
    let (m1, m2) = (
        fs::metadata(d.join("c")).unwrap(),
        fs::metadata(d.join("c2")).unwrap(),
    );
    assert_eq!((m1.ino(), m1.nlink()), (m2.ino(), 2));
    fs::write(d.join("c2"), b"via c2").unwrap();
    assert_eq!(fs::read(d.join("c")).unwrap(), b"via c2");

    // Symlink.
    std::os::unix::fs::symlink("moved/b", d.join("link")).unwrap();
    assert_eq!(
        fs::read_link(d.join("link")).unwrap(),
        PathBuf::from("moved/b")
    );
    assert_eq!(fs::read(d.join("link")).unwrap(), b"AAA");
    let long = "x/".repeat(300) + "end";
    std::os::unix::fs::symlink(&long, d.join("longlink")).unwrap();
    assert_eq!(
        fs::read_link(d.join("longlink")).unwrap(),
        PathBuf::from(&long)
    );

    // Truncate down and up.
    let f = fs::OpenOptions::new()
        .write(true)
        .open(d.join("big.bin"))
        .unwrap();
    f.set_len(20_000).unwrap();
    assert_eq!(fs::read(d.join("big.bin")).unwrap(), &want[..20_000]);
    f.set_len(50_000).unwrap();
    let got = fs::read(d.join("big.bin")).unwrap();
    assert_eq!(&got[..20_000], &want[..20_000]);
    assert!(got[20_000..].iter().all(|&b| b == 0) && got.len() == 50_000);
    drop(f);

    // chmod, chown, utimes.
    fs::set_permissions(&small, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&small, Some(1234), Some(5678)).unwrap();
    let md = fs::metadata(&small).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid()),
        (0o640, 1234, 5678)
    );
    let out = sh(
        "touch",
        &[Path::new("-d"), Path::new("@1000000000"), &small],
    );
    assert!(out.status.success());
    assert_eq!(fs::metadata(&small).unwrap().mtime(), 1_000_000_000);

    // Unlink.
    fs::remove_file(d.join("c")).unwrap();
    assert!(!d.join("c").exists());
    assert_eq!(fs::metadata(d.join("c2")).unwrap().nlink(), 1);
    assert_eq!(errno_of(fs::remove_file(d.join("c"))), libc::ENOENT);

    // Special files, extended attributes, statfs.
    let fifo = std::ffi::CString::new(d.join("fifo").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &fs::symlink_metadata(d.join("fifo")).unwrap().file_type()
    ));
    let name = c"user.test";
    let file = std::ffi::CString::new(small.to_str().unwrap()).unwrap();
    let rc = unsafe { libc::setxattr(file.as_ptr(), name.as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    assert_eq!(rc, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENOTSUP)
    );
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let root = std::ffi::CString::new(d.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::statvfs(root.as_ptr(), &mut st) }, 0);
    assert_eq!(st.f_bsize, 16384);
    assert!(st.f_blocks > 0 && st.f_bfree > 0 && st.f_bfree <= st.f_blocks);

    m.unmount();
    checkmap(&v.img);

    // Everything is still there after a remount.
    let m = mount(&v, &[]);
    assert_eq!(
        fs::read(d.join("small.txt")).unwrap(),
        b"hello hammer\nmore\n"
    );
    assert_eq!(fs::metadata(d.join("small.txt")).unwrap().uid(), 1234);
    assert_eq!(fs::read(d.join("moved/b")).unwrap(), b"AAA");
    assert_eq!(fs::read(d.join("c2")).unwrap(), b"via c2");
    assert_eq!(
        fs::read_link(d.join("longlink")).unwrap(),
        PathBuf::from(&long)
    );
    assert_eq!(fs::metadata(d.join("big.bin")).unwrap().len(), 50_000);
    m.unmount();
    checkmap(&v.img);
}

/// A small tree with the usual kinds of things in it.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    for (i, size) in [0usize, 1, 100, 16384, 16385, 70_000, 1_200_000]
        .iter()
        .enumerate()
    {
        let data: Vec<u8> = (0..*size).map(|j| ((i * 31 + j) % 253) as u8).collect();
        fs::write(root.join(format!("a/f{i}")), &data).unwrap();
        fs::write(root.join(format!("a/b/c/g{i}")), &data[..size / 2]).unwrap();
    }
    fs::hard_link(root.join("a/f2"), root.join("a/b/hard")).unwrap();
    std::os::unix::fs::symlink("../f3", root.join("a/b/sym")).unwrap();
    fs::set_permissions(root.join("a/f1"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(root.join("a/b"), fs::Permissions::from_mode(0o750)).unwrap();
    // A sparse file.
    let mut f = fs::File::create(root.join("sparse")).unwrap();
    f.seek(SeekFrom::Start(3_000_000)).unwrap();
    f.write_all(b"tail").unwrap();
}

fn diff_r(a: &Path, b: &Path) {
    let out = sh("diff", &[Path::new("-r"), a, b]);
    assert!(
        out.status.success(),
        "diff -r {a:?} {b:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cp_a_tree_survives_remount() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("cp_a_tree_survives_remount") {
        return;
    }
    let v = volume();
    let src = v.tmp.path().join("src");
    make_tree(&src);
    let m = mount(&v, &[]);
    let out = sh("cp", &[Path::new("-a"), &src, &v.mnt]);
    assert!(
        out.status.success(),
        "cp -a: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dst = v.mnt.join("src");
    diff_r(&src, &dst);
    let (s, d) = (
        fs::metadata(src.join("a/f1")).unwrap(),
        fs::metadata(dst.join("a/f1")).unwrap(),
    );
    assert_eq!(
        (s.mode(), s.mtime(), s.mtime_nsec() / 1000),
        (d.mode(), d.mtime(), d.mtime_nsec() / 1000)
    );
    assert_eq!(
        fs::metadata(dst.join("a/f2")).unwrap().ino(),
        fs::metadata(dst.join("a/b/hard")).unwrap().ino()
    );
    m.unmount();
    checkmap(&v.img);
    let m = mount(&v, &[]);
    diff_r(&src, &dst);
    m.unmount();
    checkmap(&v.img);
}

#[test]
fn history_paths_and_asof_mount() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("history_paths_and_asof_mount") {
        return;
    }
    let v = volume();
    let d = &v.mnt;
    let m = mount(&v, &[]);
    fs::create_dir(d.join("dir")).unwrap();
    fs::write(d.join("dir/f"), b"version one\n").unwrap();
    fs::write(d.join("gone"), b"removed later\n").unwrap();
    m.unmount();
    let tid = last_tid(&v.img);
    let at = |name: &str| d.join(format!("{name}@@0x{tid:016x}"));

    let m = mount(&v, &[]);
    fs::write(d.join("dir/f"), b"version two, longer\n").unwrap();
    fs::remove_file(d.join("gone")).unwrap();
    fs::write(d.join("dir/new"), b"new").unwrap();

    assert_eq!(fs::read(d.join("dir/f")).unwrap(), b"version two, longer\n");
    assert_eq!(fs::read(at("dir/f")).unwrap(), b"version one\n");
    assert_eq!(fs::read(at("gone")).unwrap(), b"removed later\n");
    let out = sh("diff", &[&d.join("dir/f"), &at("dir/f")]);
    assert_eq!(out.status.code(), Some(1), "diff exits 1 when they differ");
    // A whole directory as of the TID, and `dir/@@0x…`.
    let mut names: Vec<String> = fs::read_dir(at("dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["f"]);
    assert_eq!(
        fs::read(d.join(format!("dir/@@0x{tid:016x}/f"))).unwrap(),
        b"version one\n"
    );
    assert_eq!(fs::read(at("dir").join("f")).unwrap(), b"version one\n");
    // Inode numbers of their own.
    let cur = fs::metadata(d.join("dir/f")).unwrap().ino();
    let old = fs::metadata(at("dir/f")).unwrap().ino();
    assert_ne!(cur, old);
    assert_eq!(old, fs::metadata(at("dir").join("f")).unwrap().ino());
    // Read-only.
    assert_eq!(errno_of(fs::write(at("dir/f"), b"x")), libc::EROFS);
    assert_eq!(errno_of(fs::write(at("dir").join("x"), b"x")), libc::EROFS);
    assert_eq!(errno_of(fs::remove_file(at("dir").join("f"))), libc::EROFS);
    // A name that only looks like a history path is an ordinary name.
    fs::write(d.join("x@@0x12"), b"plain").unwrap();
    assert_eq!(fs::read(d.join("x@@0x12")).unwrap(), b"plain");
    m.unmount();
    checkmap(&v.img);

    // A whole mount as of the TID (-T): read-only, the old state.
    let m = mount(&v, &["-T", &format!("0x{tid:016x}")]);
    assert_eq!(fs::read(d.join("dir/f")).unwrap(), b"version one\n");
    assert_eq!(fs::read(d.join("gone")).unwrap(), b"removed later\n");
    assert!(!d.join("dir/new").exists());
    assert_eq!(errno_of(fs::write(d.join("z"), b"z")), libc::EROFS);
    m.unmount();
    checkmap(&v.img);
}

#[test]
fn daemon_mode_and_signals() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("daemon_mode_and_signals") {
        return;
    }
    let v = volume();
    let d = &v.mnt;

    // Daemonized: the command returns once the mount works. Its later
    // messages go to syslog and to $HAMMERFS_DAEMON_LOG.
    let log = v.tmp.path().join("daemon.log");
    let out = Command::new(MOUNT)
        .env("HAMMERFS_DAEMON_LOG", &log)
        .arg(&v.img)
        .arg(d)
        .output()
        .unwrap();
    let guard = Mounted {
        mnt: d.clone(),
        child: None,
        log: v.tmp.path().join("none"),
    };
    assert!(
        out.status.success(),
        "mount_hammer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_mounted(d));
    fs::write(d.join("f"), b"from the daemon").unwrap();
    // A second mount of the same volume is refused: the volume is locked.
    let other = v.tmp.path().join("mnt2");
    fs::create_dir(&other).unwrap();
    let out = Command::new(MOUNT)
        .arg(&v.img)
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.starts_with("mount_hammer: "), "{msg}");
    assert!(!is_mounted(&other));
    assert!(unmount_cmd(d, false));
    drop(guard);
    // The daemon releases the lock after its last write.
    let start = Instant::now();
    while VolumeSet::open_paths(
        std::slice::from_ref(&v.img),
        &OpenOptions {
            writable: true,
            ..Default::default()
        },
    )
    .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "lock never released"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    checkmap(&v.img);
    // The daemon writes its last line as it exits, after the lock.
    let mp = d.canonicalize().unwrap();
    let ended = format!("mount_hammer: {} unmounted", mp.display());
    let start = Instant::now();
    let mut text = String::new();
    while start.elapsed() < Duration::from_secs(10) {
        text = fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&ended) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        text.contains(&format!(
            "mount_hammer: serving {} on {}",
            v.img,
            mp.display()
        )),
        "daemon log: {text:?}"
    );
    assert!(
        text.contains(&format!("mount_hammer: {} unmounted", mp.display())),
        "daemon log: {text:?}"
    );

    // SIGTERM: sync, unmount, exit 0.
    let mut m = mount(&v, &[]);
    assert_eq!(fs::read(d.join("f")).unwrap(), b"from the daemon");
    fs::write(d.join("g"), b"before SIGTERM").unwrap();
    let pid = m.child.as_ref().unwrap().id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let st = wait_timeout(m.child.as_mut().unwrap(), Duration::from_secs(30)).expect("exits");
    m.child = None;
    assert!(st.success(), "{st:?}: {}", m.log());
    assert!(!is_mounted(d));
    drop(m);
    checkmap(&v.img);
    let m = mount(&v, &["-o", "ro"]);
    let mut s = String::new();
    fs::File::open(d.join("g"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "before SIGTERM");
    assert_eq!(errno_of(fs::write(d.join("h"), b"h")), libc::EROFS);
    m.unmount();
}

/// An open file whose last name is removed lives on until its last close,
/// then goes; fsync of a file already on disk goes through REDO.
#[test]
fn unlinked_open_file_and_fsync() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("unlinked_open_file_and_fsync") {
        return;
    }
    let v = volume();
    let m = mount(&v, &["-o", "flush_interval=0"]);
    let p = v.mnt.join("ghost");
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    f.write_all(b"still here").unwrap();
    fs::remove_file(&p).unwrap();
    assert!(!p.exists());
    f.write_all(b", after unlink").unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "still here, after unlink");
    assert_eq!(f.metadata().unwrap().nlink(), 0);
    drop(f);

    let q = v.mnt.join("kept");
    fs::write(&q, b"first").unwrap();
    m.unmount();
    let m = mount(&v, &["-o", "flush_interval=0"]);
    let mut f = fs::OpenOptions::new().write(true).open(&q).unwrap();
    f.write_all(b"FIRST, then more").unwrap();
    f.sync_all().unwrap();
    drop(f);
    m.unmount();
    checkmap(&v.img);
    let m = mount(&v, &[]);
    assert_eq!(fs::read(&q).unwrap(), b"FIRST, then more");
    assert!(!v.mnt.join("ghost").exists());
    m.unmount();
}

/// The POSIX conformance suite on a mount made as root with no options.
/// CI installs pjdfstest; elsewhere the test says it is skipped.
#[test]
fn pjdfstest_suite() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("pjdfstest_suite") {
        return;
    }
    let bin = std::env::var("PJDFSTEST").unwrap_or_else(|_| "pjdfstest".into());
    if Command::new(&bin).arg("--help").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "pjdfstest is not installed but CI must run it"
        );
        eprintln!(
            "SKIPPED pjdfstest_suite: no pjdfstest binary (cargo install --locked pjdfstest@0.2.2)"
        );
        return;
    }
    let config = support::fixtures_dir().join("../docs/pjdfstest.toml");
    let v = volume();
    let m = mount(&v, &[]);
    let dir = v.mnt.join("pjd");
    fs::create_dir(&dir).unwrap();
    let out = Command::new(&bin)
        .arg("-c")
        .arg(&config)
        .arg("-p")
        .arg(&dir)
        .current_dir(&dir)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let summary = text
        .lines()
        .rev()
        .find(|l| l.starts_with("Summary:"))
        .unwrap_or_else(|| panic!("no summary:\n{text}"))
        .to_string();
    eprintln!("pjdfstest {summary}");
    let failed: u64 = summary
        .trim_start_matches("Summary: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        failed,
        0,
        "pjdfstest failures:\n{}",
        text.lines()
            .filter(|l| l.contains("FAILED") || l.contains("failed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(dir);
    m.unmount();
    checkmap(&v.img);
}

fn tool_ok(name: &str, test: &str) -> bool {
    if Command::new(name).arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "{name} is not installed but CI must run {test}"
    );
    eprintln!("SKIPPED {test}: {name} is not installed");
    false
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Real tools on the mount: tar, rsync, git, find, du, ln, mv.
#[test]
fn real_tools() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("real_tools") || !tool_ok("rsync", "real_tools") || !tool_ok("git", "real_tools") {
        return;
    }
    let v = volume();
    let m = mount(&v, &[]);
    let d = &v.mnt;
    // A real source tree: this workspace's crates and docs.
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let tarball = v.tmp.path().join("src.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&ws)
            .arg("-cf")
            .arg(&tarball)
            .args(["crates", "docs", "README.md"]),
    );
    fs::create_dir(d.join("untar")).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(d.join("untar"))
            .arg("-xf")
            .arg(&tarball),
    );
    for part in ["crates", "docs"] {
        diff_r(&ws.join(part), &d.join("untar").join(part));
    }
    // rsync -a, then again (nothing to do), then diff.
    run_ok(
        Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", ws.join("docs").display()))
            .arg(d.join("rs")),
    );
    run_ok(
        Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", ws.join("docs").display()))
            .arg(d.join("rs")),
    );
    diff_r(&ws.join("docs"), &d.join("rs"));
    // git: init, add, commit, branch, checkout, fsck.
    let repo = d.join("repo");
    fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        run_ok(
            Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@example.org",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args),
        )
    };
    git(&["init", "-q"]);
    fs::write(repo.join("a.txt"), b"one\n").unwrap();
    git(&["add", "a.txt"]);
    git(&["commit", "-qm", "one"]);
    git(&["checkout", "-qb", "side"]);
    fs::write(repo.join("a.txt"), b"two\n").unwrap();
    git(&["commit", "-qam", "two"]);
    git(&["checkout", "-q", "main"]);
    assert_eq!(fs::read(repo.join("a.txt")).unwrap(), b"one\n");
    git(&["fsck", "--no-progress"]);
    // find and du agree with the source.
    let count = |dir: &Path| {
        run_ok(Command::new("find").arg(dir).arg("-type").arg("f"))
            .lines()
            .count()
    };
    assert_eq!(count(&d.join("untar/crates")), count(&ws.join("crates")));
    run_ok(Command::new("du").arg("-s").arg(d));
    // ln and mv.
    run_ok(
        Command::new("ln")
            .arg(d.join("untar/README.md"))
            .arg(d.join("hard")),
    );
    run_ok(
        Command::new("ln")
            .arg("-s")
            .arg("untar/README.md")
            .arg(d.join("soft")),
    );
    run_ok(
        Command::new("mv")
            .arg(d.join("untar/docs"))
            .arg(d.join("moved-docs")),
    );
    assert_eq!(
        fs::read(d.join("soft")).unwrap(),
        fs::read(ws.join("README.md")).unwrap()
    );
    assert_eq!(fs::metadata(d.join("hard")).unwrap().nlink(), 2);
    diff_r(&ws.join("docs"), &d.join("moved-docs"));
    m.unmount();
    checkmap(&v.img);
}

/// Four writers at once, each checking every byte of its own file against
/// a model after random writes, truncations and fsyncs; then a remount.
#[test]
fn parallel_random_writers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("parallel_random_writers") {
        return;
    }
    let v = volume();
    let m = mount(&v, &[]);
    let models: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let path = v.mnt.join(format!("w{t}"));
                s.spawn(move || {
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ ((t + 1) * 0x1234_5678);
                    let mut next = move || {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng
                    };
                    let mut f = fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&path)
                        .unwrap();
                    let mut model: Vec<u8> = Vec::new();
                    for op in 0..150 {
                        match next() % 10 {
                            0 => {
                                let size = (next() % 300_000) as usize;
                                f.set_len(size as u64).unwrap();
                                model.resize(size, 0);
                            }
                            1 => f.sync_all().unwrap(),
                            _ => {
                                let off = (next() % 1_200_000) as usize;
                                let len = 1 + (next() % 70_000) as usize;
                                let b = (next() & 0xFF) as u8;
                                let data: Vec<u8> =
                                    (0..len).map(|i| b.wrapping_add(i as u8)).collect();
                                f.seek(SeekFrom::Start(off as u64)).unwrap();
                                f.write_all(&data).unwrap();
                                if model.len() < off + len {
                                    model.resize(off + len, 0);
                                }
                                model[off..off + len].copy_from_slice(&data);
                            }
                        }
                        if op % 25 == 24 {
                            let mut got = Vec::new();
                            f.seek(SeekFrom::Start(0)).unwrap();
                            f.read_to_end(&mut got).unwrap();
                            assert!(got == model, "writer {t}: contents differ after op {op}");
                        }
                    }
                    model
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    m.unmount();
    checkmap(&v.img);
    let m = mount(&v, &[]);
    for (t, model) in models.iter().enumerate() {
        assert!(
            fs::read(v.mnt.join(format!("w{t}"))).unwrap() == *model,
            "writer {t}: contents differ after remount"
        );
    }
    m.unmount();
}

/// SIGKILL the daemon in the middle of a workload: on the next mount
/// recovery runs, everything fsynced is there, the volume checks clean.
#[test]
fn killed_daemon_recovers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("killed_daemon_recovers") {
        return;
    }
    let v = volume();
    let mut m = mount(&v, &["-o", "flush_interval=1"]);
    let d = v.mnt.clone();
    let mut synced = Vec::new();
    for i in 0..20 {
        let p = d.join(format!("s{i}"));
        let data = vec![i as u8; 10_000 + i * 3000];
        let mut f = fs::File::create(&p).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
        synced.push((p, data));
    }
    // Unsynced work in flight when the daemon dies.
    let writer = {
        let d = d.clone();
        std::thread::spawn(move || {
            for i in 0..2000 {
                if fs::write(d.join(format!("u{}", i % 50)), vec![7u8; 50_000]).is_err() {
                    break;
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let pid = m.child.as_ref().unwrap().id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let _ = m.child.take().unwrap().wait();
    let _ = writer.join();
    unmount_cmd(&d, true);
    drop(m);
    let m = mount(&v, &[]);
    for (p, data) in &synced {
        assert!(
            fs::read(p).unwrap() == *data,
            "{}: fsynced data lost",
            p.display()
        );
    }
    m.unmount();
    checkmap(&v.img);
}

/// Called as `mount.hammer SPEC DIR -o OPTS` (what mount(8) runs for
/// `mount -t hammer` and fstab lines), the binary mounts like mount_hammer.
#[test]
fn mount_helper_name() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("mount_helper_name") {
        return;
    }
    let v = volume();
    let helper = v.tmp.path().join("mount.hammer");
    std::os::unix::fs::symlink(MOUNT, &helper).unwrap();
    let out = Command::new(&helper)
        .arg(&v.img)
        .arg(&v.mnt)
        .args(["-n", "-o", "defaults,noauto,ro,x-systemd.automount"])
        .output()
        .unwrap();
    let guard = Mounted {
        mnt: v.mnt.clone(),
        child: None,
        log: v.tmp.path().join("none"),
    };
    assert!(
        out.status.success(),
        "mount.hammer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_mounted(&v.mnt));
    assert_eq!(
        errno_of(fs::write(v.mnt.join("x"), b"x")),
        libc::EROFS,
        "ro came through"
    );
    assert!(unmount_cmd(&v.mnt, false));
    drop(guard);
    // -f (fake) checks the arguments only.
    let out = Command::new(&helper)
        .arg(&v.img)
        .arg(&v.mnt)
        .arg("-f")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!is_mounted(&v.mnt));
}

/// The newest TID of a mounted volume, through `hammer synctid`.
fn last_tid_of_mount(v: &Volume) -> u64 {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hammer_cli::hammer::main(
        "hammer",
        &["synctid".into(), v.mnt.to_string_lossy().into_owned()],
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    u64::from_str_radix(
        String::from_utf8_lossy(&out)
            .trim()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap()
}

/// `name@@YYYY-MM-DDTHH:MM:SS` (local time) reads the name as of the newest
/// transaction committed by then.
#[test]
fn date_history_paths() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("date_history_paths") {
        return;
    }
    let v = volume();
    let m = mount(&v, &["-o", "flush_interval=0"]);
    let f = v.mnt.join("f");
    let mut h = fs::File::create(&f).unwrap();
    h.write_all(b"version one").unwrap();
    h.sync_all().unwrap(); // a new file: a full flush
    drop(h);
    std::thread::sleep(Duration::from_millis(1100));
    let between = String::from_utf8(
        Command::new("date")
            .arg("+%Y-%m-%dT%H:%M:%S")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(&f, b"version two").unwrap();
    m.unmount();
    let m = mount(&v, &[]);
    assert_eq!(fs::read(&f).unwrap(), b"version two");
    assert_eq!(
        fs::read(v.mnt.join(format!("f@@{between}"))).unwrap(),
        b"version one"
    );
    assert_eq!(
        errno_of(fs::read(v.mnt.join("f@@1999-01-01T00:00:00"))),
        libc::ENOENT,
        "before the filesystem existed"
    );
    assert_eq!(
        errno_of(fs::write(v.mnt.join(format!("f@@{between}")), b"x")),
        libc::EROFS
    );
    // PFS-root names, as PFS softlinks point at them (PFS #0 only, for now).
    assert_eq!(
        fs::read(v.mnt.join("@@-1:00000/f")).unwrap(),
        b"version two"
    );
    let tid = last_tid_of_mount(&v);
    assert_eq!(
        fs::read(v.mnt.join(format!("@@0x{tid:016x}:00000/f"))).unwrap(),
        b"version two"
    );
    assert_eq!(
        errno_of(fs::read_dir(v.mnt.join("@@-1:00001"))),
        libc::ENOENT
    );
    m.unmount();
}

/// Listing a directory with cold kernel caches hands the kernel every
/// entry's attributes (READDIRPLUS): what `stat` then reports for each name
/// must be the entry's own, for the live tree and for a directory as of a
/// TID, and removing or changing a listed entry must show at once.
#[test]
fn listing_gives_each_entry_its_attributes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("listing_gives_each_entry_its_attributes") {
        return;
    }
    let v = volume();
    let d = v.mnt.join("dir");
    let m = mount(&v, &[]);
    fs::create_dir(&d).unwrap();
    for i in 0..300u32 {
        let p = d.join(format!("f{i}"));
        fs::write(&p, vec![b'x'; (i * 37) as usize]).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600 + (i % 8))).unwrap();
    }
    fs::create_dir(d.join("sub")).unwrap();
    fs::create_dir(d.join("sub/inner")).unwrap();
    std::os::unix::fs::symlink("f1", d.join("link")).unwrap();
    m.unmount();
    let tid = last_tid(&v.img);

    let m = mount(&v, &[]);
    // A change after the TID, so the two views differ.
    fs::write(d.join("f5"), b"now five bytes longer than before").unwrap();
    let check = |dir: &Path, f5: u64| {
        let mut seen = 0;
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let md = fs::symlink_metadata(e.path()).unwrap();
            assert_eq!(md.ino(), e.ino(), "{name}: the listing's and stat's inode");
            if let Some(i) = name.strip_prefix('f') {
                let i: u32 = i.parse().unwrap();
                let size = if i == 5 { f5 } else { u64::from(i * 37) };
                assert_eq!(md.len(), size, "{name}: size");
                assert_eq!(md.mode() & 0o7777, 0o600 + (i % 8), "{name}: mode");
                assert!(md.is_file());
            } else if name == "sub" {
                assert!(md.is_dir());
                assert_eq!(md.nlink(), 3, "sub: 2 + one subdirectory");
            } else {
                assert_eq!(name, "link");
                assert!(md.file_type().is_symlink());
                assert_eq!(md.len(), 2);
            }
            seen += 1;
        }
        assert_eq!(seen, 302, "entries of {dir:?}");
    };
    check(&d, 33);
    check(&v.mnt.join(format!("dir@@0x{tid:016x}")), 5 * 37);
    // Listed entries are not stale: a removal and a new size show at once.
    fs::remove_file(d.join("f7")).unwrap();
    assert_eq!(errno_of(fs::metadata(d.join("f7"))), libc::ENOENT);
    fs::write(d.join("f8"), b"").unwrap();
    assert_eq!(fs::metadata(d.join("f8")).unwrap().len(), 0);
    m.unmount();
    checkmap(&v.img);
}
