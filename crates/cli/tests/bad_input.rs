//! Bad input to the offline directives: truncated, zero-filled, foreign and
//! byte-swapped volumes, incomplete or mixed volume sets. Each must give one
//! `hammer: …` line naming what is wrong, exit status 1, no panic, and never
//! a write to the image.

mod support;

use std::fs;
use std::path::Path;
use support::*;

const DIRECTIVES: [&str; 4] = ["show", "blockmap", "checkmap", "show-undo"];

fn run(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hammer_cli::hammer::main("hammer", &args, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Runs every directive on `spec` and checks each fails with exactly the
/// one-line error `want` (a prefix match when `prefix`).
fn expect_error(spec: &str, want: &str, prefix: bool) {
    for d in DIRECTIVES {
        let (code, out, err) = run(&["-f", spec, d]);
        assert_eq!(
            code, 1,
            "{d} on {spec}: exit (stdout {out:?}, stderr {err:?})"
        );
        assert!(
            out.is_empty(),
            "{d}: nothing on stdout before the error, got {out:?}"
        );
        assert_eq!(
            err.lines().count(),
            1,
            "{d}: one line on stderr, got {err:?}"
        );
        let line = err.trim_end();
        if prefix {
            assert!(
                line.starts_with(want),
                "{d}: got {line:?}, want prefix {want:?}"
            );
        } else {
            assert_eq!(line, want, "{d}");
        }
    }
}

fn digest(p: &Path) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut f = fs::File::open(p).unwrap();
    std::io::copy(&mut f, &mut h).unwrap();
    h.finalize().to_vec()
}

#[test]
fn truncated_below_header() {
    let img = materialize("v7-minimal").unwrap();
    let p = img.path("vol0.img");
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let spec = p.to_string_lossy().into_owned();
    expect_error(
        &spec,
        &format!("hammer: load_volume: {spec}: Read failed at offset 0:"),
        true,
    );
}

#[test]
fn truncated_inside_data() {
    let img = materialize("v7-minimal").unwrap();
    let p = img.path("vol0.img");
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(20 << 20)
        .unwrap();
    let spec = p.to_string_lossy().into_owned();
    expect_error(&spec, &format!("hammer: {spec}: volume is truncated"), true);
}

#[test]
fn zero_filled() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("zero.img");
    fs::File::create(&p).unwrap().set_len(1 << 20).unwrap();
    expect_error(
        &p.to_string_lossy(),
        "hammer: verify_volume: Invalid volume signature 0000000000000000",
        false,
    );
}

#[test]
fn foreign_filesystem() {
    // An ext2/3/4 superblock: magic 0xEF53 at byte 1080.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ext4.img");
    let mut b = vec![0u8; 1 << 20];
    b[1080] = 0x53;
    b[1081] = 0xEF;
    b[0..8].copy_from_slice(b"\xeb\x3c\x90MSWIN");
    fs::write(&p, &b).unwrap();
    expect_error(
        &p.to_string_lossy(),
        "hammer: verify_volume: Invalid volume signature 4e4957534d903ceb",
        false,
    );
}

#[test]
fn wrong_endianness() {
    let img = materialize("v7-minimal").unwrap();
    let p = img.path("vol0.img");
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    use std::os::unix::fs::FileExt;
    let mut sig = [0u8; 8];
    f.read_exact_at(&mut sig, 0).unwrap();
    sig.reverse();
    f.write_all_at(&sig, 0).unwrap();
    expect_error(
        &p.to_string_lossy(),
        "hammer: verify_volume: Invalid volume signature 313052c54d4d41c8 (byte-swapped: written with the other endianness)",
        false,
    );
}

#[test]
fn missing_file() {
    expect_error(
        "/nonexistent/vol0.img",
        "hammer: alloc_volume: Failed to open /nonexistent/vol0.img: No such file or directory",
        false,
    );
}

#[test]
fn missing_volume_of_a_set() {
    let img = materialize("v7-multi-1g-3g").unwrap();
    expect_error(
        &img.path("vol0.img").to_string_lossy(),
        "hammer: Volume header says 2 volumes, but 1 specified.",
        false,
    );
    expect_error(
        &img.path("vol1.img").to_string_lossy(),
        "hammer: Volume header says 2 volumes, but 1 specified.",
        false,
    );
}

#[test]
fn duplicated_volume() {
    let img = materialize("v7-multi-1g-3g").unwrap();
    let v0 = img.path("vol0.img").to_string_lossy().into_owned();
    expect_error(
        &format!("{v0}:{v0}"),
        &format!("hammer: add_volume: {v0}: Duplicate volume number 0 against {v0}"),
        false,
    );
}

#[test]
fn foreign_volume_in_set() {
    let multi = materialize("v7-multi-1g-3g").unwrap();
    let other = materialize("v7-longlabel").unwrap();
    let v0 = multi.path("vol0.img").to_string_lossy().into_owned();
    let foreign = other.path("vol0.img").to_string_lossy().into_owned();
    expect_error(
        &format!("{v0}:{foreign}"),
        &format!("hammer: verify_volume: {foreign}: fsid does not match other volumes!"),
        false,
    );
}

#[test]
fn volumes_in_any_order() {
    let img = materialize("v7-multi-1g-3g").unwrap();
    let fwd = format!(
        "{}:{}",
        img.path("vol0.img").display(),
        img.path("vol1.img").display()
    );
    let rev = format!(
        "{}:{}",
        img.path("vol1.img").display(),
        img.path("vol0.img").display()
    );
    for d in DIRECTIVES {
        let a = run(&["-f", &fwd, d]);
        let b = run(&["-f", &rev, d]);
        assert_eq!(a.0, 0, "{d}: {}", a.2);
        assert_eq!(a, b, "{d}: volume order must not matter");
    }
}

#[test]
fn no_blkdevs() {
    for d in DIRECTIVES {
        let (code, out, err) = run(&[d]);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (
                1,
                "",
                "hammer: A -f blkdevs specification is required for this command\n"
            )
        );
    }
}

#[test]
fn unsupported_version() {
    let img = materialize("v7-minimal").unwrap();
    let p = img.path("vol0.img");
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(&8u32.to_le_bytes(), 0x98).unwrap();
    let spec = p.to_string_lossy().into_owned();
    expect_error(
        &spec,
        &format!("hammer: verify_volume: {spec}: Invalid volume version 8"),
        false,
    );
}

#[test]
fn never_writes() {
    // Run every directive on an intact and on a damaged image; the bytes
    // must not change.
    let img = materialize("v7-multi-1g-3g").unwrap();
    let (p0, p1) = (img.path("vol0.img"), img.path("vol1.img"));
    let before = (digest(&p0), digest(&p1));
    let spec = img.spec_in(img.dir.path());
    for d in DIRECTIVES {
        let (code, _, err) = run(&["-v", "-f", &spec, d]);
        assert_eq!(code, 0, "{d}: {err}");
    }
    assert_eq!((digest(&p0), digest(&p1)), before);
}
