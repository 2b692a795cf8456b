//! `newfs_hammer` against DragonFly's own: for every golden fixture the
//! image it makes must equal the fixture's once the per-run fields
//! (fsid, times and the CRCs over them; VARIANCE.md) are zeroed, and its
//! stdout, stderr and exit status must be the same with the fsid masked.
//! Every recorded error/warning case of `cli-cases/newfs-cases.json` is
//! replayed too.
//!
//! The binary runs as a subprocess with argv[0] `newfs_hammer` (glibc's
//! getopt messages name argv[0]) in a fresh folder holding sparse files of
//! the recorded sizes under the recorded names.

mod support;

use sha2::{Digest, Sha256};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

const FSTYPE: &str = "61dc63ac-6e38-11dc-8513-01301bb8a9f5";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_newfs(dir: &Path, argv: &[String]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_newfs_hammer"))
        .arg0(&argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .env_remove("POSIXLY_CORRECT")
        .output()
        .expect("run newfs_hammer");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Replaces every UUID but the fstype's with `<FSID>`.
fn mask_fsid(s: &str) -> String {
    fn is_uuid(w: &[u8]) -> bool {
        w.len() == 36
            && w.iter().enumerate().all(|(i, &c)| match i {
                8 | 13 | 18 | 23 => c == b'-',
                _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
            })
    }
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if i + 36 <= b.len() && is_uuid(&b[i..i + 36]) && &s[i..i + 36] != FSTYPE {
            out.push_str("<FSID>");
            i += 36;
        } else {
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn sparse_file(dir: &Path, name: &str, size: u64) -> PathBuf {
    let p = dir.join(name);
    File::create(&p).unwrap().set_len(size).unwrap();
    p
}

fn read_at(f: &File, off: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    f.read_exact_at(&mut b, off).unwrap();
    b
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// The fields VARIANCE.md lists, found by following the image's own
/// pointers: (file offset, length) per volume.
fn varying_ranges(paths: &[PathBuf]) -> Vec<Vec<(u64, u64)>> {
    let mut out: Vec<Vec<(u64, u64)>> = paths.iter().map(|_| vec![(0x30, 16)]).collect();
    let f = File::open(&paths[0]).unwrap();
    let h = read_at(&f, 0, 1928);
    let buf_beg = u64_at(&h, 24);
    let file_off = |a: u64| buf_beg + (a & 0x000F_FFFF_FFFF_FFFF);
    let node = file_off(u64_at(&h, 0xF0));
    let nb = read_at(&f, node, 4096);
    assert_eq!(i32::from_le_bytes(nb[16..20].try_into().unwrap()), 2);
    out[0].push((node, 4));
    for e in 0..2usize {
        let elm = 0x40 + 0x40 * e;
        out[0].push((node + elm as u64 + 0x28, 4));
        out[0].push((node + elm as u64 + 0x3C, 4));
        let data = file_off(u64_at(&nb, elm + 0x30));
        match u16::from_le_bytes(nb[elm + 0x20..elm + 0x22].try_into().unwrap()) {
            0x0001 => out[0].extend([(data + 0x10, 8), (data + 0x70, 8), (data + 0x78, 8)]),
            0x0015 => out[0].extend([(data + 0x28, 16), (data + 0x38, 16)]),
            t => panic!("unexpected record type {t:#x}"),
        }
    }
    out
}

/// SHA-256 of the first `len` bytes with the `ranges` zeroed.
fn normalized_sha256(path: &Path, ranges: &[(u64, u64)], len: u64) -> String {
    let f = File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 8 << 20];
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(buf.len() as u64) as usize;
        let b = &mut buf[..n];
        f.read_exact_at(b, pos).unwrap();
        for &(o, l) in ranges {
            let (lo, hi) = (o.max(pos), (o + l).min(pos + n as u64));
            if lo < hi {
                b[(lo - pos) as usize..(hi - pos) as usize].fill(0);
            }
        }
        h.update(&*b);
        pos += n as u64;
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The first non-zero byte at or after `from`, looking only at the file's
/// data regions (SEEK_DATA/SEEK_HOLE), so huge sparse files are cheap.
fn first_nonzero_after(path: &Path, from: u64) -> Option<u64> {
    let f = File::open(path).unwrap();
    let fd = f.as_raw_fd();
    let size = f.metadata().unwrap().len();
    let mut pos = from;
    let mut buf = vec![0u8; 1 << 20];
    while pos < size {
        // SAFETY: plain lseek on a descriptor we own.
        let data = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            return None; // ENXIO: only a hole is left
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) } as u64;
        let mut p = data as u64;
        while p < hole {
            let n = (hole - p).min(buf.len() as u64) as usize;
            f.read_exact_at(&mut buf[..n], p).unwrap();
            if let Some(i) = buf[..n].iter().position(|&c| c != 0) {
                return Some(p + i as u64);
            }
            p += n as u64;
        }
        pos = hole;
    }
    None
}

/// Formats fresh sparse volumes with the fixture's command line and
/// compares image, stdout, stderr and exit status.
fn check_fixture(name: &str) {
    let m = meta(name);
    let dir = tempfile::Builder::new()
        .prefix("hammerfs-newfs-")
        .tempdir()
        .unwrap();
    let vols = m["volumes"].as_array().unwrap();
    let paths: Vec<PathBuf> = vols
        .iter()
        .map(|v| {
            sparse_file(
                dir.path(),
                v["file"].as_str().unwrap(),
                v["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let argv: Vec<String> = m["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let r = run_newfs(dir.path(), &argv);
    assert_eq!(
        r.code, m["outputs"]["newfs"]["exit"],
        "{name}: exit status; stderr:\n{}",
        r.stderr
    );
    let exp_out = String::from_utf8(read_text(name, "newfs.stdout.txt")).unwrap();
    let exp_err = String::from_utf8(read_text(name, "newfs.stderr.txt")).unwrap();
    assert_eq!(mask_fsid(&r.stdout), mask_fsid(&exp_out), "{name}: stdout");
    assert_eq!(r.stderr, exp_err, "{name}: stderr");

    // The printed fsid is the one stored in every header.
    let printed = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("fsid:"))
        .unwrap()
        .trim()
        .to_string();
    for p in &paths {
        let raw = read_at(&File::open(p).unwrap(), 0x30, 16);
        let d = |r: std::ops::Range<usize>| {
            let mut v: Vec<u8> = raw[r].to_vec();
            v.reverse();
            v.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let rest: String = raw[8..].iter().map(|b| format!("{b:02x}")).collect();
        let text = format!(
            "{}-{}-{}-{}-{}",
            d(0..4),
            d(4..6),
            d(6..8),
            &rest[..4],
            &rest[4..]
        );
        assert_eq!(text, printed, "{name}: fsid in {}", p.display());
    }

    let ranges = varying_ranges(&paths);
    for (i, v) in vols.iter().enumerate() {
        let len = v["stored_len"].as_u64().unwrap();
        assert_eq!(
            normalized_sha256(&paths[i], &ranges[i], len),
            v["normalized_sha256"].as_str().unwrap(),
            "{name}: normalised image of {}",
            v["file"]
        );
        assert_eq!(
            first_nonzero_after(&paths[i], len),
            None,
            "{name}: {} has data after stored_len",
            v["file"]
        );
        assert_eq!(
            std::fs::metadata(&paths[i]).unwrap().len(),
            v["size"].as_u64().unwrap(),
            "{name}: newfs must not change a volume's length"
        );
    }
}

macro_rules! fixture_tests {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_fixture($name);
            }
        )*

        /// Every fixture folder has its test above.
        #[test]
        fn every_fixture_is_covered() {
            let mut listed = vec![$($name),*];
            listed.sort();
            assert_eq!(all_fixtures(), listed);
        }
    };
}

fixture_tests! {
    fixture_v1_1g => "v1-1g",
    fixture_v5_1g => "v5-1g",
    fixture_v6_2g_default => "v6-2g-default",
    fixture_v7_2g_default => "v7-2g-default",
    fixture_v7_2t_noforce => "v7-2t-noforce",
    fixture_v7_4t_2layer1 => "v7-4t-2layer1",
    fixture_v7_600g_noforce => "v7-600g-noforce",
    fixture_v7_60g => "v7-60g",
    fixture_v7_60g_noforce => "v7-60g-noforce",
    fixture_v7_custom_bmu => "v7-custom-bmu",
    fixture_v7_longlabel => "v7-longlabel",
    fixture_v7_minimal => "v7-minimal",
    fixture_v7_multi_1g_3g => "v7-multi-1g-3g",
    fixture_v7_oddsize => "v7-oddsize",
}

fn cli_cases() -> Vec<serde_json::Value> {
    let p = fixtures_dir().join("cli-cases/newfs-cases.json");
    serde_json::from_reader(File::open(p).unwrap()).unwrap()
}

/// Creates a case's files and folders and runs it.
fn run_case(case: &serde_json::Value) -> (Run, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("hammerfs-newfs-case-")
        .tempdir()
        .unwrap();
    for s in case["setup"].as_array().unwrap() {
        if let Some(d) = s["dir"].as_str() {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        } else {
            sparse_file(
                dir.path(),
                s["file"].as_str().unwrap(),
                s["size"].as_u64().unwrap(),
            );
        }
    }
    let argv: Vec<String> = case["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    (run_newfs(dir.path(), &argv), dir)
}

const ABORT_CASE: &str = "too-small-assert";

/// Every recorded case but the one where DragonFly dies on an assertion:
/// same stdout, stderr and exit status, fsid masked.
#[test]
fn cli_cases_match() {
    let cases = cli_cases();
    assert_eq!(cases.len(), 36);
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        if id == ABORT_CASE {
            continue;
        }
        let (r, _dir) = run_case(case);
        let exp = (
            case["exit"].as_i64().unwrap() as i32,
            case["stdout"].as_str().unwrap().to_string(),
            case["stderr"].as_str().unwrap().to_string(),
        );
        let got = (r.code, mask_fsid(&r.stdout), mask_fsid(&r.stderr));
        if got != exp {
            failures.push(format!("case {id}:\n expected {exp:?}\n      got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// DragonFly's newfs dies of SIGABRT (an allocator assertion) when the root
/// volume has room for the freemap and the UNDO FIFO but not for both root
/// directory big-blocks. We end with a clear error and exit status 1
/// instead; everything printed before that point is the same, and nothing
/// is written to the volume.
#[test]
fn too_small_for_root_directory_exits_cleanly() {
    let cases = cli_cases();
    let case = cases.iter().find(|c| c["id"] == ABORT_CASE).unwrap();
    assert_eq!(case["exit"], -6, "the recorded run was killed by SIGABRT");
    let (r, dir) = run_case(case);
    assert_eq!(r.code, 1, "stderr:\n{}", r.stderr);
    assert_eq!(mask_fsid(&r.stdout), case["stdout"].as_str().unwrap());
    let exp_err = case["stderr"].as_str().unwrap();
    let (before_assert, _) = exp_err.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(
        r.stderr,
        format!(
            "{before_assert}\nnewfs_hammer: Ran out of room for the root directory's meta data, filesystem too small\n"
        )
    );
    assert_eq!(first_nonzero_after(&dir.path().join("vol0.img"), 0), None);
}

/// `-E` on a regular file with `-f` only warns: the image is the one made
/// without `-E`.
#[test]
fn trim_on_regular_file_does_not_change_the_image() {
    let mut hashes = Vec::new();
    for trim in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let p = sparse_file(dir.path(), "vol0.img", 1 << 30);
        let mut argv: Vec<String> = ["newfs_hammer", "-f", "-u", "8M", "-L", "X", "vol0.img"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if trim {
            argv.insert(1, "-E".into());
        }
        let r = run_newfs(dir.path(), &argv);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            r.stderr
                .contains("WARNING: Cannot TRIM regular file vol0.img\n"),
            trim
        );
        let ranges = varying_ranges(std::slice::from_ref(&p));
        hashes.push(normalized_sha256(&p, &ranges[0], 34127872));
    }
    assert_eq!(hashes[0], hashes[1]);
}

/// On a volume that held data before, the bytes newfs never writes (the
/// boot area, the memory log, free big-blocks, the rest of the B-Tree and
/// meta buffers) keep their old contents, as with DragonFly's tool.
#[test]
fn unwritten_regions_keep_their_contents() {
    let dir = tempfile::tempdir().unwrap();
    let p = sparse_file(dir.path(), "vol0.img", 1 << 30);
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    let junk = vec![0xA5u8; 64 << 10];
    // Boot area (0x40000), meta buffer tail (inode at 0x2088000 + 0x1B0),
    // a free big-block.
    for off in [0x40000u64, 0x2088000 + 0x200, 0x3000000] {
        f.write_all_at(&junk[..4096], off).unwrap();
    }
    let argv: Vec<String> = ["newfs_hammer", "-f", "-u", "8M", "-L", "X", "vol0.img"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = run_newfs(dir.path(), &argv);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let g = File::open(&p).unwrap();
    for off in [0x40000u64, 0x2088000 + 0x200, 0x3000000] {
        assert_eq!(read_at(&g, off, 4096), &junk[..4096], "at {off:#x}");
    }
}
