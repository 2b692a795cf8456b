//! `hammer reblock|reblock-btree|reblock-inodes|reblock-dirs|reblock-data
//! <filesystem> [fill_percentage]`: move record data out of big-blocks
//! that are at most `fill_percentage` full (default 100: everything), as
//! DragonFly's tool asks its kernel to (`reblock` over the control
//! channel; see `hammer_engine::fs::reblock`). Output as the current
//! tool's: `reblock start …`, `free level N/8388608`, the result line and
//! the moved/checked counts. `-t secs` stops the work and `-c cyclefile`
//! keeps where it stopped so the next run continues there. `recopy` (a
//! cleanup directive) is reblock at 100%.

use crate::common::{Opts, Progress};
use crate::control::{errtext, hex, resolve};
use hammer_ondisk::HammerBaseElm;
use std::io::Write;
use zerocopy::{FromBytes, IntoBytes};

const USAGE: &str = "hammer reblock <filesystem> [fill_percentage]\n\
hammer reblock-btree <filesystem> [fill_percentage]\n\
hammer reblock-inodes <filesystem> [fill_percentage]\n\
hammer reblock-dirs <filesystem> [fill_percentage]\n\
hammer reblock-data <filesystem> [fill_percentage]\n\
By default 100% is used.\n";

const BIGBLOCK: i64 = 8_388_608;

/// The start position: the cycle file's (`-c`), else the beginning.
fn start_of(opts: &Opts, err: &mut dyn Write) -> Option<HammerBaseElm> {
    opts.cyclefile
        .as_ref()
        .and_then(|p| crate::cmd_prune::read_cycle(p, err))
}

/// `obj_id:localization` as the tool prints a position.
fn pos(k: Option<&HammerBaseElm>) -> String {
    match k {
        Some(k) => format!("{:016x}:{:04x}", k.obj_id as u64, k.localization & 0xffff),
        None => "8000000000000000:0000".into(),
    }
}

/// The localization DragonFly's tool forces for each reblock directive
/// (inodes live in 1, directory entries and data in 2, the B-tree spans
/// both), printed in the start line whatever the cycle file held.
fn class_localization(cls: u32) -> u32 {
    match cls {
        2 => 1,
        4 | 8 => 2,
        _ => 0,
    }
}

/// The leading number of a percentage as C's `strtol(s, NULL, 0)` reads
/// it (`90%` is 90); `None` when there is no number at all.
fn leading_number(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if t.len() > 1 && t.starts_with('0') {
        (&t[1..], 8)
    } else {
        (t, 10)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 {
        return if radix == 8 { Some(0) } else { None };
    }
    let v = i64::from_str_radix(&digits[..end], radix).ok()?;
    Some(if neg { -v } else { v })
}

/// Sends a reblock or rebalance request (with the `-t` deadline and the
/// cycle position) to the daemon of the mount holding `fs`, showing
/// progress on a terminal. `Err(1)` when `fs` cannot be opened, as the
/// original exits; other failures are the reply's error.
fn ask(
    opts: &Opts,
    fs: &str,
    mut line: String,
    start: Option<&HammerBaseElm>,
    err: &mut dyn Write,
) -> Result<std::io::Result<crate::control::Reply>, i32> {
    if let Some(t) = opts.timeout {
        line.push_str(&format!(" deadline={t}"));
    }
    if let Some(k) = start {
        line.push_str(&format!(" from={}", hex(k.as_bytes())));
    }
    let t = match resolve(fs) {
        Ok(t) => t,
        Err((true, e)) => {
            let _ = writeln!(err, "hammer: Unable to open {fs}: {}", errtext(&e));
            return Err(1);
        }
        Err((false, e)) => return Ok(Err(e)),
    };
    let what = line.split(' ').next().unwrap_or("").to_string();
    let mut progress = Progress::new(&what);
    let r = t.call_progress(&line, &mut |d, n| progress.update(d, n));
    progress.done();
    Ok(r)
}

/// After the run: the interruption position goes to the cycle file, a
/// completed run removes it. Returns the position when interrupted.
fn finish_cycle(opts: &Opts, r: &crate::control::Reply) -> Option<HammerBaseElm> {
    let at = r
        .get("interrupted")
        .and_then(crate::control::unhex)
        .and_then(|b| HammerBaseElm::read_from_bytes(&b[..]).ok());
    if let Some(p) = &opts.cyclefile {
        match &at {
            Some(k) => crate::cmd_prune::write_cycle(p, k),
            None => {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    at
}

/// Class bits of the control request: 1 B-tree, 2 inodes, 4 dirs, 8 data.
pub fn classes(directive: &str) -> Option<u32> {
    Some(match directive {
        "reblock" => 15,
        "reblock-btree" => 1,
        "reblock-inodes" => 2,
        "reblock-dirs" => 4,
        "reblock-data" => 8,
        _ => return None,
    })
}

pub fn run(
    opts: &Opts,
    directive: &str,
    args: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let Some(cls) = classes(directive) else {
        let _ = err.write_all(USAGE.as_bytes());
        return 1;
    };
    if args.is_empty() || args.len() > 2 {
        let _ = err.write_all(USAGE.as_bytes());
        return 1;
    }
    let perc = match args.get(1) {
        None => 100,
        Some(p) => match leading_number(p) {
            Some(v) if (0..=100).contains(&v) => v,
            _ => {
                let _ = err.write_all(USAGE.as_bytes());
                return 1;
            }
        },
    };
    let free_level = (BIGBLOCK - perc * BIGBLOCK / 100).max(0);
    let fs = &args[0];
    let start = start_of(opts, err);
    let shown = HammerBaseElm {
        localization: class_localization(cls),
        ..start.unwrap_or(HammerBaseElm {
            obj_id: i64::MIN,
            ..Default::default()
        })
    };
    let _ = writeln!(out, "reblock start {}", pos(Some(&shown)));
    let _ = writeln!(out, "free level {free_level}/{BIGBLOCK}");
    let _ = out.flush();
    let r = match ask(
        opts,
        fs,
        format!("reblock {cls} {free_level}"),
        start.as_ref(),
        err,
    ) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let n = |r: &crate::control::Reply, k: &str| r.num(k).unwrap_or(0);
    let (bm, bc, dm, dc, ym, yc) = match &r {
        Ok(r) => {
            match finish_cycle(opts, r) {
                Some(k) => {
                    let _ = writeln!(
                        out,
                        "Reblock {fs} interrupted by timer at {}",
                        pos(Some(&k))
                    );
                }
                None => {
                    let _ = writeln!(out, "Reblock {fs} succeeded");
                }
            }
            (
                n(r, "btree_moves"),
                n(r, "btree_count"),
                n(r, "data_moves"),
                n(r, "data_count"),
                n(r, "data_byte_moves"),
                n(r, "data_byte_count"),
            )
        }
        Err(e) => {
            let _ = writeln!(out, "Reblock {fs} failed: {}", errtext(e));
            (0, 0, 0, 0, 0, 0)
        }
    };
    let _ = writeln!(out, "Reblocked:");
    let _ = writeln!(out, "    {bm}/{bc} B-Tree nodes");
    let _ = writeln!(out, "    {}/{} B-Tree bytes", bm * 4096, bc * 4096);
    let _ = writeln!(out, "    {dm}/{dc} data elements");
    let _ = writeln!(out, "    {ym}/{yc} data bytes");
    let _ = out.flush();
    0
}

const REBALANCE_USAGE: &str = "hammer rebalance <filesystem> [saturation_percentage]\n\
saturation_percentage is 50%-100%, default is 85%.\n";

/// `hammer rebalance <filesystem> [saturation_percentage]`: packs the
/// B-tree's leaves to about `62 * percentage / 100` records each (see
/// `hammer_engine::fs::rebalance`). Output as DragonFly's tool prints it.
pub fn rebalance(opts: &Opts, args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if args.is_empty() || args.len() > 2 {
        let _ = err.write_all(REBALANCE_USAGE.as_bytes());
        return 1;
    }
    let perc = match args.get(1) {
        None => 85,
        Some(p) => match leading_number(p) {
            Some(v) if (50..=100).contains(&v) => v,
            _ => {
                let _ = err.write_all(REBALANCE_USAGE.as_bytes());
                return 1;
            }
        },
    };
    let saturation = 62 * perc / 100;
    let fs = &args[0];
    let start = start_of(opts, err);
    let _ = writeln!(out, "rebalance start {}", pos(start.as_ref()));
    let _ = out.flush();
    let r = match ask(
        opts,
        fs,
        format!("rebalance {saturation}"),
        start.as_ref(),
        err,
    ) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let n = |r: &crate::control::Reply, k: &str| r.num(k).unwrap_or(0);
    let (sc, de, rb) = match &r {
        Ok(r) => {
            match finish_cycle(opts, r) {
                Some(k) => {
                    let _ = writeln!(
                        out,
                        "Rebalance {fs} interrupted by timer at {}",
                        pos(Some(&k))
                    );
                }
                None => {
                    let _ = writeln!(out, "Rebalance {fs} succeeded");
                }
            }
            (n(r, "scanned"), n(r, "deleted"), n(r, "rebalanced"))
        }
        Err(e) => {
            let _ = writeln!(out, "Rebalance {fs} failed: {}", errtext(e));
            (0, 0, 0)
        }
    };
    let _ = writeln!(out, "Rebalance:");
    let _ = writeln!(out, "    {sc} B-Tree nodes scanned");
    let _ = writeln!(out, "    {de} B-Tree nodes deleted");
    let _ = writeln!(out, "    0 collision retries");
    let _ = writeln!(out, "    {rb} B-Tree nodes rebalanced");
    let _ = out.flush();
    0
}
