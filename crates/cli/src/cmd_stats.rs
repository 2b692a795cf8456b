//! `hammer bstats|iostats|stats [interval]`: B-tree and I/O counters as
//! DragonFly prints its `vfs.hammer.stats_*` sysctls: every `interval`
//! seconds (default 1; strtol-style, below 1 taken as 1) a line of the
//! changes since the previous line, the column header before the first
//! line and again every 16 lines, until interrupted. Like the sysctls the
//! counters are global: the sum over every hammerfs mount of this
//! namespace whose daemon answers on the control channel (the meaning of
//! each counter is in `hammer_engine::stats`). With no mount the lines are
//! zeros, as DragonFly's Linux build prints them without the sysctls.

use crate::control::{hammer_mounts, request};
use std::io::Write;
use std::time::Duration;

pub const BSTATS_TITLE: &str =
    "   lookups   searches    inserts    deletes   elements     splits iterations  rootiters   reciters";
pub const IOSTATS_TITLE: &str =
    "   f_read   f_write    d_read   d_write i_flushes   commits      undo      redo";

/// Which of the three directives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Btree,
    Io,
    Both,
}

/// C `strtol(s, NULL, 0)`: leading blanks, a sign, `0x` hex or `0`
/// octal, digits up to the first that does not fit; 0 when none.
fn strtol(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s)
    };
    let mut v: i64 = 0;
    for c in digits.chars() {
        match c.to_digit(radix) {
            Some(d) => v = v.saturating_mul(radix as i64).saturating_add(d as i64),
            None => break,
        }
    }
    if neg {
        -v
    } else {
        v
    }
}

/// The counters summed over every mount that answers.
pub fn totals() -> [i64; 17] {
    let mut t = [0i64; 17];
    for sock in hammer_mounts().values() {
        let Ok(r) = request(sock, "stats") else {
            continue;
        };
        for (i, v) in r.get("stats").unwrap_or("").split(' ').take(17).enumerate() {
            t[i] = t[i].wrapping_add(v.parse::<u64>().unwrap_or(0) as i64);
        }
    }
    t
}

/// One line of changes.
pub fn line(kind: Kind, now: &[i64; 17], prev: &[i64; 17]) -> String {
    let d: Vec<i64> = (0..17).map(|i| now[i].wrapping_sub(prev[i])).collect();
    let b: Vec<String> = d[..9].iter().map(|v| format!("{v:10}")).collect();
    let io: Vec<String> = d[9..].iter().map(|v| format!("{v:9}")).collect();
    match kind {
        Kind::Btree => b.join(" "),
        Kind::Io => io.join(" "),
        Kind::Both => format!("{}\t{}", b.join(" "), io.join(" ")),
    }
}

pub fn title(kind: Kind) -> String {
    match kind {
        Kind::Btree => BSTATS_TITLE.into(),
        Kind::Io => IOSTATS_TITLE.into(),
        Kind::Both => format!("{BSTATS_TITLE}\t{IOSTATS_TITLE}"),
    }
}

/// Runs until interrupted (or after `lines` lines, for tests).
pub fn run(kind: Kind, args: &[String], out: &mut dyn Write, lines: Option<u64>) -> i32 {
    let delay = args.first().map(|a| strtol(a)).unwrap_or(1).max(1) as u64;
    let mut prev = [0i64; 17];
    let mut count: u64 = 0;
    loop {
        let now = totals();
        if count > 0 {
            let mut s = String::new();
            if count & 15 == 1 {
                s.push_str(&title(kind));
                s.push('\n');
            }
            s.push_str(&line(kind, &now, &prev));
            s.push('\n');
            if out
                .write_all(s.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                return 1;
            }
            if lines.is_some_and(|n| count >= n) {
                return 0;
            }
        }
        prev = now;
        count += 1;
        std::thread::sleep(Duration::from_secs(delay));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_strtol() {
        let z = [0i64; 17];
        assert_eq!(
            line(Kind::Btree, &z, &z),
            "         0          0          0          0          0          0          0          0          0"
        );
        assert_eq!(
            line(Kind::Io, &z, &z),
            "        0         0         0         0         0         0         0         0"
        );
        assert!(line(Kind::Both, &z, &z).contains("0\t        0"));
        assert_eq!(strtol("5"), 5);
        assert_eq!(strtol("0x10"), 16);
        assert_eq!(strtol("010"), 8);
        assert_eq!(strtol("3s"), 3);
        assert_eq!(strtol("x"), 0);
    }
}
