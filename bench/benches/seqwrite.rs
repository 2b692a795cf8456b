//! Sequential write benchmark: 1 GiB (× `HAMMERFS_BENCH_SCALE`) written
//! through the library — `Fs::create` of one file in the root directory,
//! `Fs::write` in 1 MiB chunks, then `Fs::sync` — into a fresh 4 GiB image
//! made by `target/release/newfs_hammer -f -L BENCH`, against the raw disk
//! speed measured in the same run with
//! `dd if=/dev/zero of=FILE bs=1M count=1024 oflag=direct` into the same
//! directory (run before and after ours; the baseline is their mean).
//! Target (engine issue): at least 80% of raw. Timed: create + writes +
//! sync (the volume open is reported separately). Contents are
//! pseudo-random so nothing can be elided. A failing write or sync is
//! reported with its exact error, never a panic.

use hammer_bench::*;
use hammer_engine::fs::{Fs, NewObject};
use hammer_ondisk::*;
use std::process::Command;
use std::time::{Duration, Instant};

const CHUNK: u64 = MIB;

fn dd(path: &std::path::Path, mib: u64) -> Result<Duration, String> {
    let _ = std::fs::remove_file(path);
    sync_all();
    let r = run_timed(
        Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", path.display()))
            .arg("bs=1M")
            .arg(format!("count={mib}"))
            .arg("oflag=direct"),
    );
    let _ = std::fs::remove_file(path);
    r
}

struct Ours {
    open: Duration,
    create: Duration,
    writes: Duration,
    sync: Duration,
}

fn ours(img: &str, bytes: u64, chunk: &mut [u8]) -> Result<Ours, String> {
    let t = Instant::now();
    let mut fs =
        Fs::open(&[img.to_string()], false).map_err(|e| format!("Fs::open: {e} ({e:?})"))?;
    let open = t.elapsed();

    let t0 = Instant::now();
    let attr = fs
        .create(
            HAMMER_OBJID_ROOT,
            b"seqwrite.bin",
            NewObject::File,
            0o644,
            0,
            0,
        )
        .map_err(|e| format!("Fs::create: {e} ({e:?})"))?;
    let create = t0.elapsed();
    let mut off = 0u64;
    while off < bytes {
        // Vary each chunk cheaply so no two are equal.
        chunk[..8].copy_from_slice(&off.to_le_bytes());
        match fs.write(attr.ino, off, chunk) {
            Ok(n) if n == chunk.len() => {}
            Ok(n) => return Err(format!("Fs::write at {off}: short write of {n} bytes")),
            Err(e) => {
                return Err(format!(
                    "Fs::write of {} bytes at offset {off} ({} MiB written): {e} ({e:?})",
                    chunk.len(),
                    off / MIB
                ))
            }
        }
        off += chunk.len() as u64;
    }
    let writes = t0.elapsed() - create;
    let t = Instant::now();
    fs.sync()
        .map_err(|e| format!("Fs::sync after {} MiB: {e} ({e:?})", bytes / MIB))?;
    let sync = t.elapsed();

    // Untimed spot check: the first and last chunk read back.
    for at in [0, bytes - CHUNK] {
        let got = fs
            .read(attr.ino, at, CHUNK as usize, HAMMER_MAX_TID)
            .map_err(|e| format!("read-back at {at}: {e}"))?;
        chunk[..8].copy_from_slice(&at.to_le_bytes());
        if got != *chunk {
            return Err(format!("read-back at {at}: contents differ"));
        }
    }
    Ok(Ours {
        open,
        create,
        writes,
        sync,
    })
}

fn main() {
    let bytes = scaled(GIB, 16 * MIB, MIB);
    let mib = bytes / MIB;
    let img_size = (4 * GIB).max(bytes * 2);
    let dir = work_dir();
    let img = dir.join("seqwrite.img");
    let raw = dir.join("seqwrite-raw.bin");
    let img_s = img.to_string_lossy().into_owned();
    println!(
        "== sequential write: {mib} MiB in 1 MiB chunks, image {} GiB in {} ==",
        img_size / GIB,
        dir.display()
    );

    let newfs = release_bin("newfs_hammer");
    sparse_file(&img, img_size);
    match run_timed(Command::new(&newfs).args(["-f", "-L", "BENCH"]).arg(&img)) {
        Ok(d) => println!("newfs_hammer -f -L BENCH: {:.2} s", d.as_secs_f64()),
        Err(e) => {
            println!("FAILED: newfs_hammer: {e}");
            fail(&format!("newfs_hammer: {e}"));
            return;
        }
    }
    let mut chunk = vec![0u8; CHUNK as usize];
    Rng::new(7).fill(&mut chunk);

    let raw1 = dd(&raw, mib);
    sync_all();
    let res = ours(&img_s, bytes, &mut chunk);
    sync_all();
    let raw2 = dd(&raw, mib);
    if !keep_files() {
        let _ = std::fs::remove_file(&img);
    }

    let raws: Vec<Duration> = [&raw1, &raw2]
        .into_iter()
        .filter_map(|r| match r {
            Ok(d) => Some(*d),
            Err(e) => {
                println!("dd FAILED: {e}");
                None
            }
        })
        .collect();
    for (i, d) in raws.iter().enumerate() {
        println!(
            "raw dd oflag=direct run {}: {:.2} s = {:.0} MiB/s",
            i + 1,
            d.as_secs_f64(),
            mib_s(bytes, *d)
        );
    }
    let raw_rate = if raws.is_empty() {
        None
    } else {
        Some(raws.iter().map(|d| mib_s(bytes, *d)).sum::<f64>() / raws.len() as f64)
    };

    match res {
        Err(e) => {
            println!("hammerfs write FAILED: {e}");
            fail(&e);
        }
        Ok(o) => {
            let total = o.create + o.writes + o.sync;
            let r = mib_s(bytes, total);
            println!(
                "hammerfs: open {:.3} s (untimed), create {:.4} s, writes {:.2} s, final sync {:.2} s; \
                 total {:.2} s = {:.0} MiB/s",
                o.open.as_secs_f64(),
                o.create.as_secs_f64(),
                o.writes.as_secs_f64(),
                o.sync.as_secs_f64(),
                total.as_secs_f64(),
                r
            );
            let (base, ratio, ok) = match raw_rate {
                Some(b) => (
                    format!("{b:.0} MiB/s"),
                    format!("{:.3}", r / b),
                    r >= 0.8 * b,
                ),
                None => ("n/a".into(), "n/a".into(), false),
            };
            println!(
                "ratio hammerfs/raw = {ratio}; target >= 0.80: {}",
                if ok { "met" } else { "MISSED" }
            );
            Summary {
                bench: "seqwrite",
                metric: &format!("{mib} MiB write+sync"),
                ours: format!("{r:.0} MiB/s"),
                baseline_name: "dd oflag=direct",
                baseline: base,
                ratio,
                target: ">= 0.80 of raw",
                verdict: verdict(ok),
            }
            .print();
        }
    }
}

fn fail(e: &str) {
    Summary {
        bench: "seqwrite",
        metric: "write+sync",
        ours: "-".into(),
        baseline_name: "dd oflag=direct",
        baseline: "-".into(),
        ratio: "-".into(),
        target: ">= 0.80 of raw",
        verdict: format!("FAILED: {}", e.replace(['\t', '\n'], " ")),
    }
    .print();
}
