//! Formatting shared by the `hammer` directives, reproducing the C tools'
//! printf output: `sizetostr`, `%g`, the volume-header preamble that `show`,
//! `show-undo`, `blockmap` and `checkmap` print first, and the zone
//! statistics table of `-v`.

use crate::{CliError, CliResult};
use hammer_engine::{OpenOptions, VolumeSet};
use hammer_ondisk::*;
use std::collections::HashSet;
use std::io::Write;

/// Global options of `hammer` that the offline directives use.
#[derive(Clone, Debug, Default)]
pub struct Opts {
    pub verbose: i32,
    pub quiet: i32,
    pub blkdevs: Option<String>,
    pub yes: bool,
    /// `-C cachesize[:readahead]`, in bytes.
    pub cache_bytes: Option<usize>,
    /// `-t seconds`: time limit of prune, reblock, rebalance and cleanup's
    /// directives.
    pub timeout: Option<u64>,
    /// `-c cyclefile`.
    pub cyclefile: Option<String>,
    /// `-F`: cleanup runs every directive whatever its period.
    pub force: bool,
    /// `-d`: debugging; `pfs-destroy` skips its countdown.
    pub debug: bool,
}

/// Parses a size with an optional k/m/g/t suffix (either case), as `-C` takes it.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        't' | 'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// C's `strtoull(s, NULL, 0)`: leading blanks and a `+` skipped, `0x` hex,
/// a leading `0` octal, else decimal, stopping at the first character that
/// is not a digit; 0 when there is no number.
pub fn strtoull0(s: &str) -> u64 {
    let s = s.trim_start();
    let s = s.strip_prefix('+').unwrap_or(s);
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    u64::from_str_radix(&digits[..end], radix).unwrap_or(0)
}

/// Progress of long work on stderr, only when stderr is a terminal (so
/// scripts and logs see nothing): `\r<what>: <pct>% (<done>/<total>)`,
/// with an estimate of the time left, at most five times a second, and a
/// cleared line at the end.
pub struct Progress {
    what: String,
    tty: bool,
    start: std::time::Instant,
    last: Option<std::time::Instant>,
}

impl Progress {
    pub fn new(what: &str) -> Progress {
        // SAFETY: isatty has no preconditions.
        let tty = unsafe { libc::isatty(2) } == 1;
        Progress {
            what: what.to_string(),
            tty,
            start: std::time::Instant::now(),
            last: None,
        }
    }

    pub fn update(&mut self, done: u64, total: u64) {
        if !self.tty || total == 0 {
            return;
        }
        if matches!(self.last, Some(t) if t.elapsed().as_millis() < 200) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        let pct = done.min(total) * 100 / total;
        let el = self.start.elapsed().as_secs_f64();
        let eta = if done > 0 {
            format!(
                ", about {:.0}s left",
                el * (total - done.min(total)) as f64 / done as f64
            )
        } else {
            String::new()
        };
        eprint!("\r{}: {pct}% ({done}/{total}){eta}\x1b[K", self.what);
    }

    pub fn done(&mut self) {
        if self.tty && self.last.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

/// DragonFly's `sizetostr`: two decimals, a unit chosen at 512 of the
/// next smaller one.
pub fn sizetostr(size: i64) -> String {
    let s = size as f64;
    if size < 512 {
        format!("{:6.2}B", s)
    } else if size < 512 * 1024 {
        format!("{:6.2}KB", s / 1024.0)
    } else if size < 512 * 1024 * 1024 {
        format!("{:6.2}MB", s / (1024.0 * 1024.0))
    } else if size < 512 * 1024 * 1024 * 1024 {
        format!("{:6.2}GB", s / (1024.0 * 1024.0 * 1024.0))
    } else {
        format!("{:6.2}TB", s / (1024.0 * 1024.0 * 1024.0 * 1024.0))
    }
}

/// C's `%g` (precision 6).
pub fn fmt_g(x: f64) -> String {
    fmt_g_prec(x, 6)
}

/// C's `%.<prec>g`.
pub fn fmt_g_prec(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let p = prec.max(1);
    let e = format!("{:.*e}", p - 1, x);
    let (mant, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if exp < -4 || exp >= p as i32 {
        let m = strip_zeros(mant);
        format!("{}e{}{:02}", m, if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Resolves a volume name as DragonFly's `getdevpath` does for plain names:
/// a bare name that exists under `/dev` means that device.
fn devpath(name: &str) -> String {
    if name.starts_with('/') || name.starts_with('.') || name.is_empty() {
        return name.to_string();
    }
    let dev = format!("/dev/{name}");
    if std::fs::symlink_metadata(&dev).is_ok() {
        dev
    } else {
        name.to_string()
    }
}

/// Opens the `-f` volumes read-only, or fails with DragonFly's message.
pub fn open_volumes(opts: &Opts) -> CliResult<VolumeSet> {
    let spec = opts.blkdevs.as_deref().ok_or_else(|| {
        CliError("A -f blkdevs specification is required for this command".into())
    })?;
    let paths: Vec<String> = spec.split(':').map(devpath).collect();
    let mut o = OpenOptions::default();
    if let Some(c) = opts.cache_bytes {
        o.cache_bytes = c;
    }
    Ok(VolumeSet::open_paths(&paths, &o)?)
}

/// The volume-header preamble (`print_blockmap`), from the root volume.
pub fn print_preamble(out: &mut dyn Write, set: &VolumeSet) -> std::io::Result<()> {
    let h = set.header();
    writeln!(out, "vol_label\t{}", h.label())?;
    writeln!(out, "vol_count\t{}", h.vol_count)?;
    let fstype = h.vol_fstype.to_dfly_string();
    if h.vol_fstype == HAMMER_FSTYPE_UUID {
        writeln!(out, "vol_fstype\t{fstype} \"{HAMMER_FSTYPE_STRING}\"")?;
    } else {
        writeln!(out, "vol_fstype\t{fstype}")?;
    }
    writeln!(out, "vol_fsid\t{}", h.vol_fsid.to_dfly_string())?;
    writeln!(out, "vol_bot_beg\t{}", sizetostr(h.vol_bot_beg))?;
    writeln!(out, "vol_mem_beg\t{}", sizetostr(h.vol_mem_beg))?;
    writeln!(out, "vol_buf_beg\t{}", sizetostr(h.vol_buf_beg))?;
    writeln!(out, "vol_buf_end\t{}", sizetostr(h.vol_buf_end))?;
    writeln!(out, "vol0_next_tid\t{:016x}", h.vol0_next_tid)?;
    let undo = &h.vol0_blockmap[HAMMER_ZONE_UNDO_INDEX as usize];
    let size = undo.alloc_offset & HAMMER_OFF_LONG_MASK;
    let used = if undo.first_offset <= undo.next_offset {
        undo.next_offset.wrapping_sub(undo.first_offset)
    } else {
        undo.alloc_offset
            .wrapping_sub(undo.first_offset)
            .wrapping_add(undo.next_offset & HAMMER_OFF_LONG_MASK)
    };
    writeln!(out, "undo_size\t{}", sizetostr(size as i64))?;
    writeln!(out, "undo_used\t{}", sizetostr(used as i64))?;
    writeln!(
        out,
        "zone #             phys             first            next             alloc"
    )?;
    for (i, bm) in h.vol0_blockmap.iter().enumerate() {
        writeln!(
            out,
            "zone {:<2} {:<10} {:016x} {:016x} {:016x} {:016x}",
            i,
            zone_label(i as u32),
            bm.phys_offset,
            bm.first_offset,
            bm.next_offset,
            bm.alloc_offset
        )?;
    }
    Ok(())
}

/// Per-zone totals for the `-v` statistics table.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZoneStat {
    pub blocks: i64,
    pub items: i64,
    pub used: i64,
}

/// The zone statistics of `-v`, accumulated either per layer2 entry
/// (blockmap, checkmap) or per item (show, show-undo), where a big-block
/// counts once however many items it holds.
pub struct ZoneStats {
    pub zones: [ZoneStat; HAMMER_MAX_ZONES],
    seen: HashSet<(u32, u64, u64)>,
}

impl Default for ZoneStats {
    fn default() -> Self {
        ZoneStats {
            zones: [ZoneStat::default(); HAMMER_MAX_ZONES],
            seen: HashSet::new(),
        }
    }
}

impl ZoneStats {
    /// Counts one layer2 entry.
    pub fn add_layer2(&mut self, zone: u8, bytes_free: i32) {
        if let Some(z) = self.zones.get_mut(zone as usize) {
            z.blocks += 1;
            // DragonFly subtracts in `int`, so absurd free counts wrap.
            z.used += (HAMMER_BIGBLOCK_SIZE as i32).wrapping_sub(bytes_free) as i64;
        }
    }

    /// Counts an item of `bytes` at `offset`.
    pub fn add_item(&mut self, offset: u64, bytes: i64) {
        let zone = zone_of(offset) as usize;
        let key = (
            vol_of(offset),
            short_of(offset) >> 42,
            (offset >> 23) & ((1 << 19) - 1),
        );
        let first = self.seen.insert(key);
        let z = &mut self.zones[zone];
        z.items += 1;
        z.used += bytes;
        if first {
            z.blocks += 1;
        }
    }

    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        fn pct(used: i64, blocks: i64) -> String {
            if blocks == 0 {
                "0".into()
            } else {
                fmt_g(used.wrapping_mul(100) as f64 / (blocks << HAMMER_BIGBLOCK_BITS) as f64)
            }
        }
        writeln!(out, "HAMMER zone statistics")?;
        writeln!(
            out,
            "zone #             blocks       items              used[B]             used[%]"
        )?;
        let mut t = ZoneStat::default();
        for (i, z) in self.zones.iter().enumerate() {
            writeln!(
                out,
                "zone {:<2} {:<10} {:<12} {:<18} {:<19} {}",
                i,
                zone_label(i as u32),
                z.blocks as u64,
                z.items as u64,
                z.used as u64,
                pct(z.used, z.blocks)
            )?;
            t.blocks += z.blocks;
            t.items += z.items;
            t.used += z.used;
        }
        writeln!(out, "{}", "-".repeat(80))?;
        writeln!(
            out,
            "total              {:<12} {:<18} {:<19} {}",
            t.blocks as u64,
            t.items as u64,
            t.used as u64,
            pct(t.used, t.blocks)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizetostr_like_c() {
        assert_eq!(sizetostr(0), "  0.00B");
        assert_eq!(sizetostr(16384), " 16.00KB");
        assert_eq!(sizetostr(262144), "256.00KB");
        assert_eq!(sizetostr(0x88000), "  0.53MB");
        assert_eq!(sizetostr(1 << 30), "  1.00GB");
        assert_eq!(sizetostr(41959424), " 40.02MB");
        assert_eq!(sizetostr(1 << 41), "  2.00TB");
    }

    #[test]
    fn g_like_c() {
        assert_eq!(fmt_g(0.0), "0");
        assert_eq!(fmt_g(100.0), "100");
        assert_eq!(fmt_g(4096.0 * 100.0 / 8388608.0), "0.0488281");
        assert_eq!(fmt_g(432.0 * 100.0 / 8388608.0), "0.00514984");
        assert_eq!(fmt_g(25170352.0 * 100.0 / (5.0 * 8388608.0)), "60.0108");
        assert_eq!(fmt_g(100.0 / 8388608.0), "1.19209e-05");
        assert_eq!(fmt_g(1234567.0), "1.23457e+06");
        assert_eq!(fmt_g(123456.0), "123456");
    }
}
