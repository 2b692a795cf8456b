//! Mount options on a live mount: `mount_hammer -u` switching a mount
//! between read-write and read-only (also one mounted `-o ro`, whose
//! volumes are then reopened for writing) and turning no-history on,
//! access times (relatime by default, `noatime`), `master=<id>` TIDs, and
//! the refusals (`-u -o rw` on an as-of mount, bad values). Each test ends
//! with an unmount and a clean checkmap.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::mount::*;

const HAMMER: &str = env!("CARGO_BIN_EXE_hammer");

fn mount_u(mnt: &Path, opts: &str) -> (i32, String) {
    let o = Command::new(MOUNT)
        .args(["-u", "-o", opts])
        .arg(mnt)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn synctid(mnt: &Path) -> u64 {
    let o = Command::new(HAMMER)
        .arg("synctid")
        .arg(mnt)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8_lossy(&o.stdout);
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).unwrap()
}

fn errno<T>(r: std::io::Result<T>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

#[test]
fn update_between_rw_and_ro() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("update_between_rw_and_ro") {
        return;
    }
    let v = volume();
    let m = mount(&v, &["-o", "flush_interval=0"]);
    let d = v.mnt.as_path();
    fs::write(d.join("a"), "written rw\n").unwrap();

    assert_eq!(mount_u(d, "ro"), (0, String::new()));
    assert_eq!(errno(fs::write(d.join("b"), "x")), libc::EROFS);
    assert_eq!(errno(fs::write(d.join("a"), "x")), libc::EROFS);
    assert_eq!(fs::read_to_string(d.join("a")).unwrap(), "written rw\n");
    let flags = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = flags
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(d.to_str().unwrap()))
        .unwrap()
        .to_string();
    assert!(line.split(' ').nth(5).unwrap().starts_with("ro"), "{line}");

    assert_eq!(mount_u(d, "rw"), (0, String::new()));
    fs::write(d.join("b"), "written after -u rw\n").unwrap();
    // No-history from now on: the old version of `a` is replaced.
    assert_eq!(mount_u(d, "nohistory"), (0, String::new()));
    let t0 = synctid(d);
    fs::write(d.join("a"), "second\n").unwrap();
    synctid(d);
    let old = d.join(format!("a@@0x{t0:016x}"));
    assert_ne!(
        fs::read_to_string(&old).ok().as_deref(),
        Some("written rw\n"),
        "the old version is gone"
    );

    let (code, err) = mount_u(d, "bogus");
    assert_eq!(code, 1);
    assert!(err.contains("bogus"), "{err}");
    m.unmount();
    checkmap(&v.img);

    // Mounted read-only, then made writable: the volumes are reopened
    // for writing (with the exclusive lock).
    let m = mount(&v, &["-o", "ro,flush_interval=0"]);
    assert_eq!(errno(fs::write(d.join("c"), "x")), libc::EROFS);
    assert_eq!(mount_u(d, "rw"), (0, String::new()));
    fs::write(d.join("c"), "after ro -> rw\n").unwrap();
    synctid(d);
    m.unmount();
    checkmap(&v.img);
    let m = mount(&v, &["-o", "ro"]);
    assert_eq!(fs::read_to_string(d.join("c")).unwrap(), "after ro -> rw\n");
    assert_eq!(
        fs::read_to_string(d.join("b")).unwrap(),
        "written after -u rw\n"
    );
    m.unmount();

    // An as-of mount stays read-only.
    let tid = format!("0x{:016x}", last_tid(&v.img));
    let m = mount(&v, &["-T", &tid]);
    let (code, err) = mount_u(d, "rw");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Read-only"), "{err}");
    m.unmount();
    checkmap(&v.img);
}

#[test]
fn access_times_and_master_tids() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !fuse_ok("access_times_and_master_tids") {
        return;
    }
    let v = volume();
    let d = v.mnt.as_path();
    // relatime (the default): the first read after a write moves atime.
    let m = mount(&v, &["-o", "flush_interval=0,master=5"]);
    fs::write(d.join("f"), "data\n").unwrap();
    let t = synctid(d);
    assert_eq!(t % 16, 5, "master 5's TID: {t:#x}");
    let before = fs::metadata(d.join("f")).unwrap().atime_nsec()
        + fs::metadata(d.join("f")).unwrap().atime() * 1_000_000_000;
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(fs::read_to_string(d.join("f")).unwrap(), "data\n");
    let t2 = synctid(d);
    assert_eq!(t2 % 16, 5);
    // The kernel keeps attributes for a second.
    std::thread::sleep(Duration::from_millis(1100));
    let md = fs::metadata(d.join("f")).unwrap();
    let after = md.atime_nsec() + md.atime() * 1_000_000_000;
    assert!(after > before, "atime {after} not after {before}");
    // In place: no new version for a read.
    let h = Command::new(HAMMER)
        .args(["history", d.join("f").to_str().unwrap()])
        .output()
        .unwrap();
    let versions = String::from_utf8_lossy(&h.stdout).lines().count() - 2;
    assert_eq!(versions, 1, "{}", String::from_utf8_lossy(&h.stdout));
    m.unmount();
    checkmap(&v.img);

    // noatime: reads leave it.
    let m = mount(&v, &["-o", "flush_interval=0,noatime"]);
    let a0 = fs::metadata(d.join("f")).unwrap().atime();
    fs::write(d.join("g"), "g\n").unwrap();
    synctid(d);
    std::thread::sleep(Duration::from_millis(1100));
    fs::read(d.join("f")).unwrap();
    synctid(d);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(fs::metadata(d.join("f")).unwrap().atime(), a0);
    m.unmount();
    checkmap(&v.img);

    // Bad values are refused before mounting.
    for bad in [
        "master=16",
        "cache=1",
        "master=x",
        "threads=0",
        "threads=x",
        "readahead=1g",
        "readahead=x",
    ] {
        let o = Command::new(MOUNT)
            .args(["-f", "-o", bad, &v.img])
            .arg(d)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{bad}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(bad),
            "{bad}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    // One FUSE thread and many serve alike.
    for threads in ["threads=1", "threads=8"] {
        let m = mount(&v, &["-o", threads]);
        fs::write(d.join(threads), threads).unwrap();
        assert_eq!(fs::read_to_string(d.join(threads)).unwrap(), threads);
        m.unmount();
        checkmap(&v.img);
    }

    // The kernel's readahead window for the mount: 1 MiB by default, as
    // asked, or the kernel's own with readahead=0.
    let canon = fs::canonicalize(d).unwrap();
    let window = || {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dev = info
            .lines()
            .rev()
            .find(|l| l.split(' ').nth(4) == Some(canon.to_str().unwrap()))
            .and_then(|l| l.split(' ').nth(2))
            .expect("the mount")
            .to_string();
        fs::read_to_string(format!("/sys/class/bdi/{dev}/read_ahead_kb"))
            .unwrap()
            .trim()
            .to_string()
    };
    let kernel_default = {
        let m = mount(&v, &["-o", "readahead=0"]);
        let w = window();
        m.unmount();
        w
    };
    for (opts, want) in [
        (vec![], "1024".to_string()),
        (vec!["-o", "readahead=256k"], "256".to_string()),
        (vec!["-o", "readahead=0"], kernel_default),
    ] {
        let m = mount(&v, &opts);
        assert_eq!(window(), want, "{opts:?}");
        m.unmount();
    }
    checkmap(&v.img);
}
