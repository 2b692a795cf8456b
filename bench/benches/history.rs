//! History benchmark (history issue), release build, figures only:
//!
//! 1. `hammer history` and `undo -a` on files with 1,000, 5,000 and 10,000
//!    versions (× `HAMMERFS_BENCH_SCALE`), through a real mount: wall time,
//!    time per version and linearity (time ratio ÷ version ratio between
//!    the smallest and largest file; 1.0 is perfectly linear). Target:
//!    under 1 s at 10,000 versions. Baseline for `undo -a`: `cat` of the
//!    current file as many times as undo reads versions, on the same mount
//!    in the same run (the reads undo cannot avoid).
//! 2. Reading `file@@<tid>` against reading the current version of the
//!    same 64 MiB file (both cold: page cache dropped; and warm). Target:
//!    as-of read at most 1.5× the current read.
//! 3. `prune-everything` and a full reblock (recopy) through the library
//!    on a volume of about 1,000,000 B-tree records: time and records/s.
//!
//! Versions and the 1M-record volume are made through the engine library
//! (`hammer_engine::fs::Fs`), which is what the mount runs, so the setup
//! takes seconds instead of minutes of FUSE round trips.

use hammer_bench::*;
use hammer_engine::fs::{Fs, NewObject, PruneElm, ReblockOpts};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn newfs(img: &Path, size: u64) {
    sparse_file(img, size);
    run_timed(
        Command::new(release_bin("newfs_hammer"))
            .args(["-f", "-L", "BENCH"])
            .arg(img)
            .stdout(Stdio::null()),
    )
    .unwrap_or_else(|e| panic!("newfs: {e}"));
}

/// Times a command with its output discarded; returns (time, output bytes).
fn timed_out(cmd: &mut Command) -> (Duration, usize) {
    let t = Instant::now();
    let out = cmd.stderr(Stdio::inherit()).output().expect("run");
    let el = t.elapsed();
    assert!(out.status.success(), "{cmd:?} failed");
    (el, out.stdout.len())
}

fn drop_caches() {
    sync_all();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

struct Mounted {
    mnt: std::path::PathBuf,
}

impl Mounted {
    fn new(img: &Path, mnt: &Path) -> Mounted {
        std::fs::create_dir_all(mnt).unwrap();
        run_timed(Command::new(release_bin("mount_hammer")).arg(img).arg(mnt))
            .unwrap_or_else(|e| panic!("mount: {e}"));
        Mounted {
            mnt: mnt.to_path_buf(),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for _ in 0..20 {
            if Command::new("umount")
                .arg(&self.mnt)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // The daemon keeps the volume locked until its last write.
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn main() {
    let dir = work_dir().join("history");
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("hist.img");
    let mnt = dir.join("mnt");
    newfs(&img, 16 * GIB);
    let counts: Vec<u64> = [1000u64, 5000, 10000]
        .iter()
        .map(|&n| ((n as f64 * scale()) as u64).max(50))
        .collect();

    // Versions: one small overwrite + one flush each.
    let mut asof_tid = 0;
    {
        let path = img.to_string_lossy().into_owned();
        let mut fs = Fs::open(&[path], false).expect("open");
        let t = Instant::now();
        for &n in &counts {
            let name = format!("v{n}");
            let ino = fs
                .create(1, name.as_bytes(), NewObject::File, 0o644, 0, 0)
                .unwrap()
                .ino;
            for v in 0..n {
                fs.write(ino, 0, format!("version {v:08}\n").as_bytes())
                    .unwrap();
                fs.sync().unwrap();
            }
        }
        // A 64 MiB file, synced, then rewritten whole.
        let big = fs
            .create(1, b"big", NewObject::File, 0o644, 0, 0)
            .unwrap()
            .ino;
        let mut rng = Rng::new(7);
        let mut buf = vec![0u8; MIB as usize];
        for i in 0..64u64 {
            rng.fill(&mut buf);
            fs.write(big, i * MIB, &buf).unwrap();
        }
        asof_tid = asof_tid.max(fs.sync().unwrap());
        for i in 0..64u64 {
            rng.fill(&mut buf);
            fs.write(big, i * MIB, &buf).unwrap();
        }
        fs.sync().unwrap();
        eprintln!(
            "setup: {} versions in {:.1?}",
            counts.iter().sum::<u64>(),
            t.elapsed()
        );
    }

    {
        let m = Mounted::new(&img, &mnt);
        let hammer = release_bin("hammer");
        let undo = release_bin("undo");
        // FUSE costs swing with placement: measure with the daemon and the
        // tools free to run anywhere, then with both pinned to CPU 0.
        let daemon = Command::new("pgrep")
            .arg("-f")
            .arg(format!("mount_hammer {}", img.display()))
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            });
        for pinned in [false, true] {
            let wrap = |prog: &Path| -> Command {
                if pinned {
                    let mut c = Command::new("taskset");
                    c.arg("-c").arg("0").arg(prog);
                    c
                } else {
                    Command::new(prog)
                }
            };
            if pinned {
                let Some(pid) = &daemon else {
                    println!("(daemon not found: no pinned run)");
                    break;
                };
                let _ = Command::new("taskset")
                    .args(["-a", "-p", "-c", "0", pid])
                    .stdout(Stdio::null())
                    .status();
            }
            let placement = if pinned {
                "pinned to CPU 0"
            } else {
                "unpinned"
            };
            println!("== hammer history / undo -a ({placement}) ==");
            println!(
                "{:>8} {:>12} {:>12} {:>14} {:>14}",
                "versions", "history", "undo -a", "cat ×versions", "undo/cat"
            );
            let mut hist = Vec::new();
            let mut undo_t = Vec::new();
            let mut cat_t = Vec::new();
            for &n in &counts {
                let f = m.mnt.join(format!("v{n}"));
                let (th, bytes) = timed_out(wrap(&hammer).arg("history").arg(&f));
                assert!(bytes as u64 > n * 30, "history printed too little");
                let (tu, _) = timed_out(wrap(&undo).arg("-a").arg(&f));
                // Baseline: read the current file as many times as undo
                // reads versions (a pinned shell loop of cat for the
                // pinned run would add fork costs; this process reads).
                if pinned {
                    // SAFETY: sched_setaffinity on ourselves with a valid set.
                    unsafe {
                        let mut set: libc::cpu_set_t = std::mem::zeroed();
                        libc::CPU_SET(0, &mut set);
                        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                    }
                }
                let t = Instant::now();
                for _ in 0..n {
                    let _ = std::fs::read(&f).unwrap();
                }
                let tc = t.elapsed();
                println!(
                    "{n:>8} {:>10.3} s {:>10.3} s {:>12.3} s {:>14.2}",
                    th.as_secs_f64(),
                    tu.as_secs_f64(),
                    tc.as_secs_f64(),
                    tu.as_secs_f64() / tc.as_secs_f64()
                );
                hist.push(th);
                undo_t.push(tu);
                cat_t.push(tc);
            }
            let (n0, n1) = (counts[0] as f64, *counts.last().unwrap() as f64);
            let lin =
                |v: &[Duration]| (v.last().unwrap().as_secs_f64() / v[0].as_secs_f64()) / (n1 / n0);
            println!(
                "linearity (time ratio / version ratio, {}→{}): history {:.2}, undo -a {:.2}",
                n0,
                n1,
                lin(&hist),
                lin(&undo_t)
            );
            let th = hist.last().unwrap().as_secs_f64();
            let tu = undo_t.last().unwrap().as_secs_f64();
            let tc = cat_t.last().unwrap().as_secs_f64();
            let m1 = format!("history, max versions, {placement} (s)");
            let m2 = format!("undo -a, max versions, {placement} (s)");
            Summary {
                bench: "history",
                metric: &m1,
                ours: format!("{th:.3}"),
                baseline_name: "1 s",
                baseline: "1.000".into(),
                ratio: format!("{th:.2}"),
                target: "<1 s",
                verdict: verdict(th < 1.0),
            }
            .print();
            Summary {
                bench: "history",
                metric: &m2,
                ours: format!("{tu:.3}"),
                baseline_name: "cat ×versions",
                baseline: format!("{tc:.3}"),
                ratio: format!("{:.2}", tu / tc),
                target: "<1 s",
                verdict: verdict(tu < 1.0),
            }
            .print();
        }
        // Back to every CPU for the rest.
        // SAFETY: as above, with every CPU of the machine.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for c in 0..libc::CPU_SETSIZE as usize {
                libc::CPU_SET(c, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
        if let Some(pid) = &daemon {
            let _ = Command::new("taskset")
                .args(["-a", "-p", "-c", "0-1023", pid])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }

        println!("== reading file@@<tid> vs the current file (64 MiB) ==");
        let cur = m.mnt.join("big");
        let old = m.mnt.join(format!("big@@0x{asof_tid:016x}"));
        let read = |p: &Path| {
            let t = Instant::now();
            let b = std::fs::read(p).unwrap();
            assert_eq!(b.len() as u64, 64 * MIB);
            t.elapsed()
        };
        let mut rows = Vec::new();
        for cold in [true, false] {
            let mut best = (Duration::MAX, Duration::MAX);
            for _ in 0..3 {
                if cold {
                    drop_caches();
                }
                let c = read(&cur);
                if cold {
                    drop_caches();
                }
                let o = read(&old);
                best = (best.0.min(c), best.1.min(o));
            }
            let what = if cold { "cold" } else { "warm" };
            println!(
                "{what}: current {:.1} MiB/s, as of TID {:.1} MiB/s, ratio {:.2}",
                mib_s(64 * MIB, best.0),
                mib_s(64 * MIB, best.1),
                best.1.as_secs_f64() / best.0.as_secs_f64()
            );
            rows.push((what, best));
        }
        for (what, (c, o)) in rows {
            let r = o.as_secs_f64() / c.as_secs_f64();
            Summary {
                bench: "history",
                metric: if what == "cold" {
                    "as-of read time, cold"
                } else {
                    "as-of read time, warm"
                },
                ours: format!("{:.3}", o.as_secs_f64()),
                baseline_name: "current read",
                baseline: format!("{:.3}", c.as_secs_f64()),
                ratio: format!("{r:.2}"),
                target: "<=1.5",
                verdict: verdict(r <= 1.5),
            }
            .print();
        }
        drop(m);
    }

    // prune-everything + reblock on ~1M records.
    println!("== prune-everything + reblock, ~1M B-tree records ==");
    let img2 = dir.join("records.img");
    newfs(&img2, 64 * GIB);
    let files = ((330_000f64 * scale()) as u64).max(1000);
    let path = img2.to_string_lossy().into_owned();
    let mut fs = Fs::open(&[path], false).expect("open");
    let t = Instant::now();
    let dirs: Vec<i64> = (0..(files / 1000).max(1))
        .map(|d| {
            fs.create(1, format!("d{d}").as_bytes(), NewObject::Dir, 0o755, 0, 0)
                .unwrap()
                .ino
        })
        .collect();
    for i in 0..files {
        let d = dirs[(i as usize) % dirs.len()];
        let ino = fs
            .create(d, format!("f{i}").as_bytes(), NewObject::File, 0o644, 0, 0)
            .unwrap()
            .ino;
        fs.write(ino, 0, b"x").unwrap();
        if i % 50_000 == 49_999 {
            fs.sync().unwrap();
        }
    }
    fs.sync().unwrap();
    // Remove every other file: their records stay as history.
    for i in (0..files).step_by(2) {
        let d = dirs[(i as usize) % dirs.len()];
        fs.unlink(d, format!("f{i}").as_bytes()).unwrap();
        if i % 100_000 == 99_998 {
            fs.sync().unwrap();
        }
    }
    let top = fs.sync().unwrap();
    eprintln!("setup: {files} files in {:.1?}", t.elapsed());
    let t = Instant::now();
    let st = fs
        .prune(
            &[PruneElm {
                beg_tid: 0,
                end_tid: top.saturating_add(1),
                mod_tid: 0,
            }],
            &mut |_, _| {},
        )
        .unwrap();
    let tp = t.elapsed();
    println!(
        "prune-everything: {} records scanned, {} pruned in {:.2?} = {} records/s",
        st.scanned,
        st.pruned,
        tp,
        human(rate(st.scanned, tp))
    );
    let t = Instant::now();
    let rs = fs
        .reblock(
            &ReblockOpts {
                btree: true,
                inodes: true,
                dirs: true,
                data: true,
                free_level: 0,
                deadline: None,
                start: None,
            },
            &mut |_, _| {},
        )
        .unwrap();
    let tr = t.elapsed();
    println!(
        "reblock (recopy): {}/{} nodes, {}/{} data elements in {:.2?} = {} records/s",
        rs.btree_moves,
        rs.btree_count,
        rs.data_moves,
        rs.data_count,
        tr,
        human(rate(rs.data_count, tr))
    );
    let t = Instant::now();
    let rb = fs.rebalance(52, None, None, &mut |_, _| {}).unwrap();
    println!("rebalance: {rb:?} in {:.2?}", t.elapsed());
    for (m, v, r) in [
        ("prune-everything records/s", st.scanned, tp),
        ("reblock records/s", rs.data_count, tr),
    ] {
        Summary {
            bench: "history",
            metric: m,
            ours: human(rate(v, r)),
            baseline_name: "-",
            baseline: "-".into(),
            ratio: "-".into(),
            target: "reported",
            verdict: "measured".into(),
        }
        .print();
    }
    drop(fs);
    if !keep_files() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
