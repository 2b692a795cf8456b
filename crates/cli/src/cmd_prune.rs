//! `hammer prune <softlink-dir>` and `hammer prune-everything <fs>`:
//! physically remove history no snapshot can see, as DragonFly's
//! `cmd_softprune.c` drives its kernel's prune.
//!
//! The kept points are the snapshots: the TIDs of the `@@0x…` softlinks in
//! the directory (the first usable link also names the filesystem) and the
//! filesystem's snapshot records. Sorted newest first and deduplicated,
//! they make windows `[older, newer)`; snapshots younger than the PFS's
//! `prune_min` are left alone, the window above the newest snapshot is
//! dropped (history since the last snapshot stays whole), and a window
//! from TID 1 to the oldest is added. Each window is one step
//! (`mod_tid = end - beg`), so only its ends are retained views. The
//! windows are printed (`TID <beg> - <end>`), then the summary lines, then
//! the daemon prunes (`prune` over the control channel) and we print
//! `Pruned <records>/<scanned> records (<dirents> directory entries) and
//! <bytes> bytes`. `prune-everything` deletes every snapshot record first
//! and removes every deleted record. `-t` limits the time (the prune stops
//! and says where; `-c cyclefile` keeps that position so the next run
//! continues below it). Progress goes to stderr when it is a terminal.

use crate::common::{strtoull0, Opts, Progress};
use crate::control::{errtext, hex, resolve, unhex};
use hammer_ondisk::{HammerBaseElm, HAMMER_MAX_TID};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use zerocopy::{FromBytes, IntoBytes};

const USAGE: &str = "Badly formed prune command, use:\n\
hammer prune <softlink-dir>\n\
hammer prune-everything <filesystem>\n";

/// One snapshot found: its TID and when it was taken (seconds, 0 unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    pub tid: u64,
    pub ts: i64,
}

/// The windows for the kept points, newest first: `(beg, end)`, plus what
/// prune_min held back (the number of snapshots left alone).
pub fn windows(points: &[Point], prune_min: i64, now: i64) -> (Vec<(u64, u64)>, Option<usize>) {
    let mut pts: Vec<Point> = points.to_vec();
    pts.sort_by_key(|p| std::cmp::Reverse(p.tid));
    pts.dedup_by_key(|p| p.tid);
    if pts.is_empty() {
        return (Vec::new(), None);
    }
    // elm[i] = [pts[i], end of the newer one).
    let mut elms: Vec<(u64, u64, i64)> = Vec::new();
    for (i, p) in pts.iter().enumerate() {
        let end = if i == 0 {
            HAMMER_MAX_TID
        } else {
            pts[i - 1].tid
        };
        elms.push((p.tid, end, p.ts));
    }
    let mut held = None;
    if prune_min > 0 {
        // From the oldest up, the first snapshot too young stops the walk:
        // it and everything newer stay untouched.
        let mut cut = None;
        for i in (0..elms.len()).rev() {
            let ts = elms[i].2;
            if ts == 0 {
                continue;
            }
            if now - ts < prune_min {
                cut = Some(i);
                break;
            }
        }
        if let Some(i) = cut {
            held = Some(i + 1);
            elms.drain(..=i);
            if let Some(first) = elms.first_mut() {
                first.1 = HAMMER_MAX_TID;
            }
        }
    }
    if !elms.is_empty() {
        elms.remove(0);
    }
    // As DragonFly's tool: with a single snapshot nothing is left here,
    // and nothing is pruned.
    if let Some(last) = elms.last() {
        let lowest = last.0;
        if lowest > 1 {
            elms.push((1, lowest, 0));
        }
    }
    (elms.into_iter().map(|(b, e, _)| (b, e)).collect(), held)
}

/// The snapshot softlinks of `dir`: (filesystem path text before `@@`,
/// point).
fn scan_links(dir: &str) -> std::io::Result<Vec<(String, Point)>> {
    let mut v = Vec::new();
    for ent in std::fs::read_dir(dir)? {
        let ent = ent?;
        let path = ent.path();
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !md.file_type().is_symlink() {
            continue;
        }
        let Ok(target) = std::fs::read_link(&path) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        let Some(i) = target.rfind('@') else { continue };
        if i == 0 || target.as_bytes()[i - 1] != b'@' {
            continue;
        }
        let fs_text = &target[..i - 1];
        let fs_path = if fs_text.starts_with('/') {
            fs_text.to_string()
        } else {
            format!("{dir}/{fs_text}")
        };
        if std::fs::metadata(if fs_path.is_empty() { "." } else { &fs_path }).is_err() {
            continue;
        }
        let tid = strtoull0(&target[i + 1..]);
        let ts = md.ctime().min(md.mtime());
        v.push((fs_path, Point { tid, ts }));
    }
    Ok(v)
}

fn dhms(secs: i64) -> String {
    format!(
        "{}d/{:02}:{:02}:{:02}",
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

pub fn run(
    opts: &Opts,
    everything: bool,
    args: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    if args.len() != 1 {
        let _ = err.write_all(USAGE.as_bytes());
        return 1;
    }
    let arg = args[0].trim_end_matches('/').to_string();
    let arg = if arg.is_empty() { "/".to_string() } else { arg };
    // Which filesystem, and the name printed for it.
    let (fs_path, name, links) = if everything {
        (
            arg.clone(),
            format!("{}/", args[0].trim_end_matches('/')),
            Vec::new(),
        )
    } else {
        let links = match scan_links(&args[0]) {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(err, "hammer: {}: {}", args[0], errtext(&e));
                return 1;
            }
        };
        match links.first() {
            Some((fs, _)) => {
                let fs_name = if fs.ends_with('/') {
                    fs.clone()
                } else {
                    format!("{fs}/")
                };
                (fs.clone(), fs_name, links)
            }
            None => (
                arg.clone(),
                format!("{}/", args[0].trim_end_matches('/')),
                Vec::new(),
            ),
        }
    };
    let fs_open = if fs_path.is_empty() { "." } else { &fs_path };
    let t = match resolve(fs_open) {
        Ok(t) => t,
        Err((true, e)) => {
            let _ = writeln!(err, "hammer: Unable to open {fs_open}: {}", errtext(&e));
            return 1;
        }
        Err((false, _)) => {
            let _ = writeln!(err, "hammer: Filesystem {fs_open} is not HAMMER");
            return 1;
        }
    };
    // All links must be on one filesystem.
    let dev = std::fs::metadata(fs_open).map(|m| m.dev()).ok();
    for (p, _) in &links {
        let d = std::fs::metadata(if p.is_empty() { "." } else { p })
            .map(|m| m.dev())
            .ok();
        if d != dev {
            let _ = writeln!(
                err,
                "hammer: Currently only one HAMMER filesystem may be specified in the softlink scan"
            );
            return 1;
        }
    }
    let prune_min = t
        .call("pfs-get")
        .ok()
        .and_then(|r| r.num("prune_min").ok())
        .unwrap_or(0);
    let snaps = match crate::cmd_snapshot::list(&t) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(
                out,
                "hammer prune: Unable to access meta-data snaps: {}",
                errtext(&e)
            );
            let _ = writeln!(
                err,
                "hammer: Filesystem {fs_open} could not scan meta-data snaps"
            );
            Vec::new()
        }
    };
    let mut elms: Vec<(u64, u64)> = Vec::new();
    if everything {
        for s in &snaps {
            let _ = t.call(&format!("snap-del 0x{:016x}", s.tid));
        }
    } else {
        let mut points: Vec<Point> = links.iter().map(|(_, p)| *p).collect();
        points.extend(snaps.iter().map(|s| Point {
            tid: s.tid,
            ts: (s.ts_us / 1_000_000) as i64,
        }));
        let (w, held) = windows(&points, prune_min, crate::timefmt::now_secs());
        if let Some(k) = held {
            let _ = writeln!(
                out,
                "Prune {name}: prune_min: Will not clean between the teeth of the first {k} snapshots"
            );
        }
        for (b, e) in &w {
            let _ = writeln!(out, "TID {b:016x} - {e:016x}");
        }
        elms = w;
        let _ = writeln!(out, "Prune {name}: {} snapshots", elms.len());
        if elms.is_empty() {
            let _ = out.flush();
            let _ = writeln!(err, "No snapshots found");
            return 0;
        }
    }
    if everything {
        let _ = writeln!(out, "Prune {name}: EVERYTHING");
    }
    // Where an earlier run stopped (cycle file), and its display.
    let below = opts.cyclefile.as_ref().and_then(|p| read_cycle(p, err));
    let (end_obj, end_loc) = match &below {
        Some(k) => (k.obj_id as u64, k.localization & 0xffff),
        None => (0x7fff_ffff_ffff_ffff, 0xffff),
    };
    let _ = writeln!(
        out,
        "Prune {name}: objspace 8000000000000000:0000 {end_obj:016x}:{end_loc:04x} pfs_id 0"
    );
    let _ = writeln!(out, "Prune {name}: prune_min is {}", dhms(prune_min));
    let _ = out.flush();
    let mut line = String::from("prune");
    if let Some(s) = opts.timeout {
        line.push_str(&format!(" deadline={s}"));
    }
    if let Some(k) = &below {
        line.push_str(&format!(" below={}", hex(k.as_bytes())));
    }
    if everything {
        line.push_str(&format!(" 0:0x{:x}:0", HAMMER_MAX_TID));
    }
    for (b, e) in &elms {
        line.push_str(&format!(" 0x{b:x}:0x{e:x}:0x{:x}", e - b));
    }
    let mut progress = Progress::new("prune");
    let r = t.call_progress(&line, &mut |d, n| progress.update(d, n));
    progress.done();
    let mut rc = 0;
    let (mut pruned, mut scanned, mut dirents, mut bytes) = (0, 0, 0, 0);
    match r {
        Ok(r) => {
            let n = |k: &str| r.num(k).unwrap_or(0);
            scanned = n("scanned");
            dirents = n("dirents");
            pruned = n("pruned") - dirents;
            bytes = n("bytes");
            match r.get("interrupted").and_then(unhex) {
                Some(raw) => {
                    let k = HammerBaseElm::read_from_bytes(&raw[..]).ok();
                    if let Some(k) = k {
                        let _ = writeln!(
                            out,
                            "Prune {name} interrupted by timer at {:016x} {:04x}",
                            k.obj_id as u64,
                            k.localization & 0xffff
                        );
                        if let Some(p) = &opts.cyclefile {
                            write_cycle(p, &k);
                        }
                    }
                }
                None => {
                    if let Some(p) = &opts.cyclefile {
                        let _ = std::fs::remove_file(p);
                    }
                    let _ = writeln!(out, "Prune {name} succeeded");
                }
            }
        }
        Err(e) => {
            let _ = writeln!(out, "Prune {name} failed: {}", errtext(&e));
            rc = 2;
        }
    }
    let _ = writeln!(
        out,
        "Pruned {pruned}/{scanned} records ({dirents} directory entries) and {bytes} bytes"
    );
    let _ = out.flush();
    rc
}

/// A cycle file: a 40-byte `hammer_base_elm` and 8 spare bytes.
pub fn read_cycle(path: &str, err: &mut dyn Write) -> Option<HammerBaseElm> {
    let b = std::fs::read(path).ok()?;
    if b.len() < 48 {
        let _ = writeln!(err, "cycle-file {path}: clearing old version");
        let _ = std::fs::remove_file(path);
        return None;
    }
    HammerBaseElm::read_from_bytes(&b[..40]).ok()
}

pub fn write_cycle(path: &str, k: &HammerBaseElm) {
    let mut b = k.as_bytes().to_vec();
    b.extend_from_slice(&[0u8; 8]);
    let _ = std::fs::write(path, b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(tid: u64, ts: i64) -> Point {
        Point { tid, ts }
    }

    #[test]
    fn windows_from_snapshots() {
        let (w, held) = windows(&[p(300, 3), p(100, 1), p(200, 2), p(200, 2)], 0, 10);
        assert_eq!(w, vec![(200, 300), (100, 200), (1, 100)]);
        assert_eq!(held, None);
        // One snapshot: DragonFly's tool prunes nothing.
        let (w, _) = windows(&[p(100, 1)], 0, 10);
        assert_eq!(w, vec![]);
        // prune_min keeps the young snapshots' teeth.
        let (w, held) = windows(&[p(300, 95), p(200, 50), p(100, 10)], 20, 100);
        assert_eq!(held, Some(1));
        assert_eq!(w, vec![(100, 200), (1, 100)]);
        assert_eq!(dhms(86400 + 3661), "1d/01:01:01");
        assert_eq!(strtoull0("0x10b40f540"), 0x10b40f540);
    }
}
