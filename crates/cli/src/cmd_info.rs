//! `hammer info [dirpath …]`: a summary of each mounted filesystem, laid
//! out as DragonFly's tool of the seed's era prints it (volume
//! identification, big-block information, space information, the PFS
//! table). The figures come from the mount's daemon over the control
//! channel: label, volume count, fsid and version from the root volume
//! header; total and free big-blocks and the inode count from its
//! `vol0_stat_*` fields as the allocator keeps them; reserved big-blocks as
//! the kernel's write-space check counts them (see `control_server`); one
//! PFS line per PFS record of the B-tree. Sizes use BSD `humanize_number`
//! (4 columns, decimal point below 10, `B` suffix, powers of 1024). With
//! no path every hammerfs mount is shown, separated by blank lines. A path
//! off hammerfs fails as DragonFly's libhammer does (`perror`):
//! `libhammer_get_fsinfo: Inappropriate ioctl for device`, exit 1.

use crate::control::{errtext, hammer_mounts, resolve, Reply};
use hammer_ondisk::HAMMER_BIGBLOCK_SIZE;
use std::io::Write;

/// BSD `humanize_number(buf, len, n, "", HN_AUTOSCALE, HN_DECIMAL |
/// HN_NOSPACE | HN_B)` with `len` bytes of buffer (NUL included).
pub fn humanize(n: i64, len: usize) -> String {
    const PREFIX: [&str; 7] = ["B", "K", "M", "G", "T", "P", "E"];
    let sign = if n < 0 { -1 } else { 1 };
    let mut q = n.unsigned_abs() as i128;
    let baselen = if n < 0 { 3 } else { 2 };
    if len < baselen + 1 {
        return String::new();
    }
    let mut max: i128 = 1;
    for _ in 0..len - baselen {
        max *= 10;
    }
    let (divisor, deccut) = (1024i128, 973i128);
    let mut rem = 0i128;
    let mut i = 0;
    while (q >= max || (q == max - 1 && rem >= deccut)) && i < PREFIX.len() - 1 {
        rem = q % divisor;
        q /= divisor;
        i += 1;
    }
    let s = if ((q == 9 && rem < deccut) || q < 9) && i > 0 {
        let s1 = q + ((rem * 10 + divisor / 2) / divisor / 10);
        let s2 = ((rem * 10 + divisor / 2) / divisor) % 10;
        format!("{}.{}{}", sign * s1 as i64, s2, PREFIX[i])
    } else {
        format!(
            "{}{}",
            sign * (q + (rem + divisor / 2) / divisor) as i64,
            PREFIX[i]
        )
    };
    // snprintf truncates to len - 1 characters.
    s.chars().take(len - 1).collect()
}

fn percent(v: i64, total: i64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    v as f64 * 100.0 / total as f64
}

/// Prints one filesystem's summary from its `info` reply.
/// `mounted(id)`: where PFS `id` (other than #0) is mounted, if anywhere.
pub fn print_info(
    r: &Reply,
    mounted: &dyn Fn(u32) -> Option<String>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let n = |k: &str| r.num(k).unwrap_or(0);
    writeln!(out, "Volume identification")?;
    writeln!(
        out,
        "\tLabel               {}",
        r.get("label").unwrap_or("")
    )?;
    writeln!(out, "\tNo. Volumes         {}", n("nvolumes"))?;
    writeln!(out, "\tFSID                {}", r.get("fsid").unwrap_or(""))?;
    writeln!(out, "\tHAMMER Version      {}", n("version"))?;
    let (total, free, rsv) = (n("bigblocks"), n("freebigblocks"), n("rsvbigblocks"));
    let used = total - free;
    writeln!(out, "Big block information")?;
    writeln!(out, "\tTotal      {total:10}")?;
    writeln!(out, "\tUsed       {used:10} ({:.2}%)", percent(used, total))?;
    writeln!(out, "\tReserved   {rsv:10} ({:.2}%)", percent(rsv, total))?;
    writeln!(
        out,
        "\tFree       {:10} ({:.2}%)",
        free - rsv,
        percent(free - rsv, total)
    )?;
    writeln!(out, "Space information")?;
    let bb = HAMMER_BIGBLOCK_SIZE as i64;
    let (tb, ub, rb, fb) = (total * bb, used * bb, rsv * bb, (free - rsv) * bb);
    let h = |v: i64| humanize(v, if v < 0 { 6 } else { 5 });
    writeln!(out, "\tNo. Inodes {:10}", n("inodes"))?;
    writeln!(out, "\tTotal size     {:>6} ({tb} bytes)", h(tb))?;
    writeln!(
        out,
        "\tUsed           {:>6} ({:.2}%)",
        h(ub),
        percent(ub, tb)
    )?;
    writeln!(
        out,
        "\tReserved       {:>6} ({:.2}%)",
        h(rb),
        percent(rb, tb)
    )?;
    writeln!(
        out,
        "\tFree           {:>6} ({:.2}%)",
        h(fb),
        percent(fb, tb)
    )?;
    writeln!(out, "PFS information")?;
    writeln!(out, "\tPFS ID  Mode    Snaps  Mounted on")?;
    let mp = r.get("mountpoint").unwrap_or("");
    for p in r.all("pfs") {
        let mut w = p.split(' ');
        let id: u32 = w.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let mode = w.next().unwrap_or("MASTER");
        let snaps = w.next().unwrap_or("-");
        let on = if id == 0 {
            mp.to_string()
        } else {
            mounted(id).unwrap_or_else(|| "not mounted".into())
        };
        writeln!(out, "\t{id:6}  {mode:<6} {snaps:>6}  {on}")?;
    }
    Ok(())
}

pub fn main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let paths: Vec<String> = if args.is_empty() {
        let all = hammer_mounts();
        if all.is_empty() {
            let _ = writeln!(out, "No mounted HAMMER filesystems found");
            let _ = out.flush();
            return 0;
        }
        all.keys()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    } else {
        args.to_vec()
    };
    for (i, p) in paths.iter().enumerate() {
        let r = resolve(p)
            .map_err(|(_, e)| e)
            .and_then(|t| t.call("info").map(|r| (t, r)));
        match r {
            Ok((t, r)) => {
                if i > 0 {
                    let _ = writeln!(out);
                }
                // A PFS is mounted where a bind mount of its root is (the
                // counterpart of DragonFly's null mount of its link).
                let all = crate::control::mounts();
                let mounted = |id: u32| {
                    all.iter()
                        .rev()
                        .find(|m| {
                            m.dev == t.mount.dev
                                && crate::control::pfs_id_of_root(&m.root) == Some(id)
                        })
                        .map(|m| m.mount_point.to_string_lossy().into_owned())
                };
                if let Err(e) = print_info(&r, &mounted, out) {
                    let _ = writeln!(err, "hammer: {e}");
                    return 1;
                }
            }
            Err(e) => {
                let _ = out.flush();
                let _ = writeln!(err, "libhammer_get_fsinfo: {}", errtext(&e));
                return 1;
            }
        }
    }
    let _ = out.flush();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_like_bsd() {
        // The seed's figures.
        assert_eq!(humanize(579132719104, 5), "539G");
        assert_eq!(humanize(590 << 23, 5), "4.6G");
        assert_eq!(humanize(39 << 23, 5), "312M");
        assert_eq!(humanize(68409 << 23, 5), "534G");
        assert_eq!(humanize(0, 5), "0B");
        assert_eq!(humanize(1 << 30, 5), "1.0G");
        assert_eq!(humanize(1000, 5), "1.0K");
        assert_eq!(humanize(999, 5), "999B");
    }

    #[test]
    fn seed_layout() {
        let r = Reply(
            [
                ("status", "0"),
                ("label", "ROOT"),
                ("nvolumes", "1"),
                ("fsid", "5c95cbb8-302f-11e2-8c0e-b9ac6f12aafc"),
                ("version", "6"),
                ("bigblocks", "69038"),
                ("freebigblocks", "68448"),
                ("rsvbigblocks", "39"),
                ("inodes", "110799"),
                ("mountpoint", "/"),
                ("pfs", "0 MASTER 9"),
                ("pfs", "8 MASTER -"),
                ("pfs", "9 SLAVE -"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let mut o = Vec::new();
        print_info(&r, &|id| (id == 9).then(|| "/negi".to_string()), &mut o).unwrap();
        let want = "Volume identification
\tLabel               ROOT
\tNo. Volumes         1
\tFSID                5c95cbb8-302f-11e2-8c0e-b9ac6f12aafc
\tHAMMER Version      6
Big block information
\tTotal           69038
\tUsed              590 (0.85%)
\tReserved           39 (0.06%)
\tFree            68409 (99.09%)
Space information
\tNo. Inodes     110799
\tTotal size       539G (579132719104 bytes)
\tUsed             4.6G (0.85%)
\tReserved         312M (0.06%)
\tFree             534G (99.09%)
PFS information
\tPFS ID  Mode    Snaps  Mounted on
\t     0  MASTER      9  /
\t     8  MASTER      -  not mounted
\t     9  SLAVE       -  /negi
";
        assert_eq!(String::from_utf8(o).unwrap(), want);
    }
}
