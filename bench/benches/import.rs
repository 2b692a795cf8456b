//! Tree import benchmark: `newfs_hammer -f -L BENCH --from DIR IMG` of a
//! generated tree of at least 1 GiB (× `HAMMERFS_BENCH_SCALE`) against
//! `mkfs.btrfs -f -q --rootdir DIR IMG` of the same tree onto an image of
//! the same size, in the same run. Target (engine issue): no slower than
//! mkfs.btrfs.
//!
//! The tree is deterministic: ~25% of the bytes in many small files
//! (0–32 KiB, 256 to a directory, some empty), ~10% in medium files
//! (256 KiB–2 MiB), the rest in 64 MiB files; contents pseudo-random (no
//! holes, nothing compressible). It is written and `sync`ed before the
//! timed runs, so both tools read it from the page cache. Each tool's time
//! is its wall time plus an fsync of the image afterwards (so both end with
//! the image durable); the two are also shown apart.
//! `HAMMERFS_BENCH_REPEAT=N` runs each tool N times, alternating, and keeps
//! the best.

use hammer_bench::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct TreeStats {
    files: u64,
    dirs: u64,
    bytes: u64,
}

fn write_file(path: &Path, size: u64, seed: u64, buf: &mut [u8]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(buf.len(), std::fs::File::create(path)?);
    let mut rng = Rng::new(seed);
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

fn generate(root: &Path, total: u64) -> std::io::Result<TreeStats> {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root)?;
    let mut buf = vec![0u8; MIB as usize];
    let mut rng = Rng::new(42);
    let mut st = TreeStats {
        files: 0,
        dirs: 1,
        bytes: 0,
    };
    let mut seed = 1000u64;

    // Small files.
    let small_budget = total / 4;
    let mut small = 0u64;
    let mut dir = PathBuf::new();
    let mut i = 0u64;
    while small < small_budget {
        if i % 256 == 0 {
            dir = root.join("small").join(format!("d{:04}", i / 256));
            std::fs::create_dir_all(&dir)?;
            st.dirs += 1;
        }
        let size = if i % 50 == 0 {
            0
        } else {
            rng.below(32 * KIB + 1)
        };
        seed += 1;
        write_file(&dir.join(format!("f{i:06}.dat")), size, seed, &mut buf)?;
        small += size;
        st.files += 1;
        i += 1;
    }
    st.bytes += small;

    // Medium files.
    let medium_dir = root.join("medium");
    std::fs::create_dir_all(&medium_dir)?;
    st.dirs += 1;
    let medium_budget = total / 10;
    let mut medium = 0u64;
    let mut j = 0;
    while medium < medium_budget {
        let size = 256 * KIB + rng.below(2 * MIB - 256 * KIB + 1);
        seed += 1;
        write_file(
            &medium_dir.join(format!("m{j:04}.bin")),
            size,
            seed,
            &mut buf,
        )?;
        medium += size;
        st.files += 1;
        j += 1;
    }
    st.bytes += medium;

    // Large files fill the rest.
    let large_dir = root.join("large");
    std::fs::create_dir_all(&large_dir)?;
    st.dirs += 1;
    let mut k = 0;
    while st.bytes < total {
        let size = (total - st.bytes).min(64 * MIB);
        seed += 1;
        write_file(
            &large_dir.join(format!("big{k:03}.bin")),
            size,
            seed,
            &mut buf,
        )?;
        st.bytes += size;
        st.files += 1;
        k += 1;
    }
    Ok(st)
}

/// One timed run: (tool wall time, fsync time).
fn run_tool(img: &Path, size: u64, cmd: &mut Command) -> Result<(Duration, Duration), String> {
    sparse_file(img, size);
    sync_all();
    let r = run_timed(cmd).map(|d| (d, fsync_file(img)));
    let _ = std::fs::remove_file(img);
    r
}

fn main() {
    let total = scaled(GIB, 32 * MIB, MIB);
    let img_size = (4 * GIB).max(total * 4);
    let repeat: usize = std::env::var("HAMMERFS_BENCH_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let dir = work_dir();
    let src = dir.join("import-src");
    let img = dir.join("import.img");
    println!(
        "== tree import: {} MiB tree, images of {} GiB in {} ==",
        total / MIB,
        img_size / GIB,
        dir.display()
    );

    let newfs = release_bin("newfs_hammer");
    let Some(mkfs_btrfs) = which("mkfs.btrfs") else {
        println!("mkfs.btrfs not found: install btrfs-progs (apt-get install -y btrfs-progs)");
        fail("mkfs.btrfs not installed");
        return;
    };

    let t = std::time::Instant::now();
    let st = match generate(&src, total) {
        Ok(st) => st,
        Err(e) => {
            println!("generating {}: {e}", src.display());
            fail(&format!("generating the tree: {e}"));
            return;
        }
    };
    sync_all();
    println!(
        "generated {} files, {} directories, {} MiB in {:.1} s",
        st.files,
        st.dirs,
        st.bytes / MIB,
        t.elapsed().as_secs_f64()
    );

    let mut best_h: Option<(Duration, Duration)> = None;
    let mut best_b: Option<(Duration, Duration)> = None;
    let mut errors = Vec::new();
    let better = |best: &mut Option<(Duration, Duration)>, r: (Duration, Duration)| {
        if best.is_none_or(|b| r.0 + r.1 < b.0 + b.1) {
            *best = Some(r);
        }
    };
    for round in 1..=repeat {
        let h = run_tool(
            &img,
            img_size,
            Command::new(&newfs)
                .args(["-f", "-L", "BENCH", "--from"])
                .arg(&src)
                .arg(&img),
        );
        let b = run_tool(
            &img,
            img_size,
            Command::new(&mkfs_btrfs)
                .args(["-f", "-q", "--rootdir"])
                .arg(&src)
                .arg(&img),
        );
        for (name, r, best) in [
            ("newfs_hammer --from", h, &mut best_h),
            ("mkfs.btrfs --rootdir", b, &mut best_b),
        ] {
            match r {
                Ok(r) => {
                    println!(
                        "round {round}: {name:<22} {:.2} s + fsync {:.2} s = {:.2} s ({:.0} MiB/s)",
                        r.0.as_secs_f64(),
                        r.1.as_secs_f64(),
                        (r.0 + r.1).as_secs_f64(),
                        mib_s(st.bytes, r.0 + r.1)
                    );
                    better(best, r);
                }
                Err(e) => {
                    println!("round {round}: {name} FAILED: {e}");
                    errors.push(format!("{name}: {e}"));
                }
            }
        }
    }
    if !keep_files() {
        let _ = std::fs::remove_dir_all(&src);
    }

    match (best_h, best_b) {
        (Some(h), Some(b)) => {
            let (th, tb) = ((h.0 + h.1).as_secs_f64(), (b.0 + b.1).as_secs_f64());
            // Ratio of speeds (>= 1 means hammer is at least as fast).
            let ratio = tb / th;
            let ok = th <= tb;
            println!(
                "newfs_hammer --from {th:.2} s vs mkfs.btrfs --rootdir {tb:.2} s: speed ratio {ratio:.3}; \
                 tool time alone {:.2} s vs {:.2} s; target no slower: {}",
                h.0.as_secs_f64(),
                b.0.as_secs_f64(),
                if ok { "met" } else { "MISSED" }
            );
            Summary {
                bench: "import",
                metric: &format!("{} MiB tree, {} files", st.bytes / MIB, st.files),
                ours: format!("{th:.2} s"),
                baseline_name: "mkfs.btrfs --rootdir",
                baseline: format!("{tb:.2} s"),
                ratio: format!("{ratio:.3}"),
                target: "ratio >= 1.0",
                verdict: verdict(ok),
            }
            .print();
        }
        _ => fail(&errors.join("; ")),
    }
}

fn fail(e: &str) {
    Summary {
        bench: "import",
        metric: "tree import",
        ours: "-".into(),
        baseline_name: "mkfs.btrfs --rootdir",
        baseline: "-".into(),
        ratio: "-".into(),
        target: "ratio >= 1.0",
        verdict: format!("FAILED: {}", e.replace(['\t', '\n'], " ")),
    }
    .print();
}
