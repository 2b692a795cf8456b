//! Shared helpers of the hammerfs benchmarks (measures nothing itself):
//! the size scale (`HAMMERFS_BENCH_SCALE`), where scratch files go
//! (`HAMMERFS_BENCH_DIR`), where the release binaries are, a deterministic
//! pseudo-random generator for keys and file contents, timing of external
//! commands, and the one-line `SUMMARY` format that `bench/run.sh` gathers
//! into its table.
//!
//! No benchmark asserts on time: each prints its numbers, the baseline's
//! numbers from the same run, their ratio and whether the target was
//! met.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// `HAMMERFS_BENCH_SCALE` (default 1): multiplies every size. 0.05 gives a
/// quick run of well under a minute.
pub fn scale() -> f64 {
    match std::env::var("HAMMERFS_BENCH_SCALE") {
        Ok(s) => match s.trim().parse::<f64>() {
            Ok(v) if v > 0.0 && v.is_finite() => v,
            _ => {
                eprintln!("HAMMERFS_BENCH_SCALE={s:?} is not a positive number; using 1");
                1.0
            }
        },
        Err(_) => 1.0,
    }
}

/// `base * scale()`, at least `min`, rounded down to a multiple of `unit`.
pub fn scaled(base: u64, min: u64, unit: u64) -> u64 {
    let v = ((base as f64) * scale()) as u64;
    (v.max(min) / unit).max(1) * unit
}

/// The workspace root (this crate lives in `<root>/bench`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench crate has a parent directory")
        .to_path_buf()
}

/// Scratch directory for images and trees, on the local disk:
/// `HAMMERFS_BENCH_DIR`, else `<root>/target/bench-tmp`.
pub fn work_dir() -> PathBuf {
    let d = std::env::var_os("HAMMERFS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("bench-tmp"));
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("creating {}: {e}", d.display()));
    d
}

/// Whether to keep the scratch files (`HAMMERFS_BENCH_KEEP=1`).
pub fn keep_files() -> bool {
    std::env::var("HAMMERFS_BENCH_KEEP").is_ok_and(|v| v == "1")
}

/// A release binary of the workspace (`HAMMERFS_BIN_DIR` overrides
/// `<root>/target/release`).
pub fn release_bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("HAMMERFS_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("release"));
    let p = dir.join(name);
    if !p.is_file() {
        eprintln!(
            "{} is missing: run `cargo build --release -p hammer-cli` first (bench/run.sh does)",
            p.display()
        );
        std::process::exit(2);
    }
    p
}

/// Finds a program on PATH.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Runs a command and times it (wall clock). Fails with its stderr.
pub fn run_timed(cmd: &mut Command) -> Result<Duration, String> {
    let t = Instant::now();
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let el = t.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(el)
}

/// Makes a sparse file of `size` bytes (replacing any old one).
pub fn sparse_file(path: &Path, size: u64) {
    let _ = std::fs::remove_file(path);
    std::fs::File::create(path)
        .and_then(|f| f.set_len(size))
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
}

/// fsync of a whole file, timed.
pub fn fsync_file(path: &Path) -> Duration {
    let t = Instant::now();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.sync_all())
        .unwrap_or_else(|e| panic!("fsync {}: {e}", path.display()));
    t.elapsed()
}

/// Writes back every dirty page of the system, so earlier work does not
/// slow the next measurement down.
pub fn sync_all() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// xorshift64*: deterministic, fast, good enough for keys and contents.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// Operations per second.
pub fn rate(ops: u64, d: Duration) -> f64 {
    ops as f64 / d.as_secs_f64().max(1e-9)
}

/// Bytes per second as MiB/s.
pub fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64().max(1e-9)
}

/// Human number: 1234567 → "1.23M".
pub fn human(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

/// One result line for `bench/run.sh`'s table, tab separated:
/// `SUMMARY bench metric ours baseline-name baseline ratio target verdict`.
/// `verdict` is "met", "MISSED" or "FAILED: …".
pub struct Summary<'a> {
    pub bench: &'a str,
    pub metric: &'a str,
    pub ours: String,
    pub baseline_name: &'a str,
    pub baseline: String,
    pub ratio: String,
    pub target: &'a str,
    pub verdict: String,
}

impl Summary<'_> {
    pub fn print(&self) {
        println!(
            "SUMMARY\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.bench,
            self.metric,
            self.ours,
            self.baseline_name,
            self.baseline,
            self.ratio,
            self.target,
            self.verdict
        );
    }
}

/// "met" or "MISSED".
pub fn verdict(ok: bool) -> String {
    if ok { "met" } else { "MISSED" }.to_string()
}
